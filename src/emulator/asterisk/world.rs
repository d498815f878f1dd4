//! The simulated Asterisk: channels, bridges, playbacks, recordings, a small dialplan, SIP
//! endpoints with scripted behaviour, and the Stasis applications with their subscriptions.
//! Sans-IO: every operation takes the current time and returns a [`Reply`]; events for the
//! sockets and timers to arm pile up in an outbox that the server drains after each call.
//!
//! Event sequences follow the transcripts of `fixtures/ari/` (Asterisk 22.10.1); the comments
//! name the scenario each sequence was read from.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Duration;

use serde_json::{Value, json};

use crate::media::asterisk::cause::cause_text;
use crate::media::asterisk::event::{AriEvent, EventKind};
use crate::media::asterisk::model::{
    Bridge, CallerId, Channel, ChannelState, DeviceState, DialplanCep, LiveRecording, Playback,
};
use crate::media::asterisk::time::AriTime;

/// How a SIP endpoint answers when Asterisk dials it.
#[derive(Debug, Clone, PartialEq)]
pub enum DialBehaviour {
    /// Rings, then answers.
    Answer {
        /// How long it rings.
        ring: Duration,
    },
    /// Answers 486 Busy Here.
    Busy,
    /// Rings forever (until the dial timeout).
    NoAnswer,
}

/// A PJSIP endpoint of the simulated switch.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointConfig {
    /// Resource name (`agent`, `customer`).
    pub resource: String,
    /// The dialplan context of its calls.
    pub context: String,
    /// What it does when dialled.
    pub behaviour: DialBehaviour,
}

/// A step of the emulated dialplan.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// `NoOp(text)`.
    NoOp(String),
    /// `Answer()`.
    Answer,
    /// `Ringing()`.
    Ringing,
    /// `Playback(sound)`.
    Playback(String),
    /// `Wait(seconds)`.
    Wait(u64),
    /// `MusicOnHold(class,seconds)`.
    MusicOnHold(String, u64),
    /// `Stasis(app,args…)`; `${EXTEN}` in an argument is replaced.
    Stasis(String, Vec<String>),
}

/// The emulated dialplan: context → extension (`_X.` matches any digits) → steps.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Dialplan {
    /// Contexts.
    pub contexts: BTreeMap<String, BTreeMap<String, Vec<Step>>>,
}

impl Dialplan {
    /// The dialplan the fixtures were captured with (fixtures README, "Setup").
    pub fn capture() -> Self {
        let mut d = Dialplan::default();
        let mut add = |ctx: &str, exten: &str, steps: Vec<Step>| {
            d.contexts
                .entry(ctx.to_owned())
                .or_default()
                .insert(exten.to_owned(), steps);
        };
        add(
            "cc-test",
            "100",
            vec![
                Step::NoOp("cc-test 100: into Stasis unanswered".into()),
                Step::Stasis("cc".into(), vec!["inbound".into(), "${EXTEN}".into()]),
            ],
        );
        add(
            "cc-test",
            "200",
            vec![
                Step::NoOp("cc-test 200: far end answers and talks".into()),
                Step::Answer,
                Step::Playback("hello-world".into()),
                Step::MusicOnHold("default".into(), 60),
            ],
        );
        add("cc-test", "300", vec![Step::Answer, Step::Wait(60)]);
        add("cc-test", "400", vec![Step::Ringing, Step::Wait(60)]);
        add("cc-park", "s", vec![Step::Answer, Step::Wait(60)]);
        add(
            "cc-after",
            "s",
            vec![
                Step::NoOp("continued from ARI into dialplan".into()),
                Step::Playback("beep".into()),
                Step::Stasis("cc".into(), vec!["returned".into()]),
            ],
        );
        add(
            "cc-inbound",
            "_X.",
            vec![
                Step::NoOp(
                    "Inbound SIP call to ${EXTEN} from \"${CALLERID(name)}\" <${CALLERID(num)}>"
                        .into(),
                ),
                Step::Stasis("cc".into(), vec!["sip-inbound".into(), "${EXTEN}".into()]),
            ],
        );
        d
    }

    fn find(&self, context: &str, exten: &str) -> Option<Vec<Step>> {
        let ctx = self.contexts.get(context)?;
        if let Some(steps) = ctx.get(exten) {
            return Some(steps.clone());
        }
        ctx.iter()
            .find(|(pattern, _)| {
                pattern.strip_prefix("_X.").is_some()
                    && !exten.is_empty()
                    && exten.chars().all(|c| c.is_ascii_digit())
            })
            .map(|(_, s)| s.clone())
    }
}

/// The emulated switch's configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct WorldConfig {
    /// ari.conf users: (user, password).
    pub users: Vec<(String, String)>,
    /// `asterisk_id` / entity id.
    pub asterisk_id: String,
    /// Version string (`22.10.1`).
    pub version: String,
    /// PJSIP endpoints.
    pub endpoints: Vec<EndpointConfig>,
    /// Sounds that exist, with their length.
    pub sounds: BTreeMap<String, Duration>,
    /// The dialplan.
    pub dialplan: Dialplan,
    /// Unix seconds that prefix generated channel ids.
    pub epoch_secs: i64,
    /// The address externalMedia channels receive RTP on (`UNICASTRTP_LOCAL_ADDRESS`).
    pub rtp_address: String,
}

impl WorldConfig {
    /// A switch like the one the fixtures were captured on: user `cc`, PJSIP endpoints
    /// `customer` and `agent` (answers after 2 s), the capture dialplan.
    pub fn capture(password: &str, epoch_secs: i64) -> Self {
        let mut sounds = BTreeMap::new();
        sounds.insert("hello-world".to_owned(), Duration::from_millis(1400));
        sounds.insert("beep".to_owned(), Duration::from_millis(250));
        sounds.insert("silence/1".to_owned(), Duration::from_secs(1));
        sounds.insert("vm-goodbye".to_owned(), Duration::from_millis(900));
        WorldConfig {
            users: vec![("cc".to_owned(), password.to_owned())],
            asterisk_id: "02:fc:00:00:00:01".into(),
            version: "22.10.1".into(),
            endpoints: vec![
                EndpointConfig {
                    resource: "customer".into(),
                    context: "cc-inbound".into(),
                    behaviour: DialBehaviour::Answer {
                        ring: Duration::from_secs(2),
                    },
                },
                EndpointConfig {
                    resource: "agent".into(),
                    context: "cc-inbound".into(),
                    behaviour: DialBehaviour::Answer {
                        ring: Duration::from_secs(2),
                    },
                },
            ],
            sounds,
            dialplan: Dialplan::capture(),
            epoch_secs,
            rtp_address: "127.0.0.1".into(),
        }
    }
}

/// An HTTP reply of the emulated ARI.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Reason phrase, as Asterisk spells it.
    pub reason: &'static str,
    /// JSON body (`None`: empty, as 204s are).
    pub body: Option<Value>,
    /// `Location` header (201s).
    pub location: Option<String>,
    /// `Allow` header (405s).
    pub allow: Option<&'static str>,
    /// A non-JSON body and its content type (recording files).
    pub raw: Option<(&'static str, Vec<u8>)>,
}

impl Reply {
    fn json(status: u16, reason: &'static str, body: Value) -> Self {
        Reply {
            status,
            reason,
            body: Some(body),
            location: None,
            allow: None,
            raw: None,
        }
    }
    /// 200 with a JSON body.
    pub fn ok(body: Value) -> Self {
        Self::json(200, "OK", body)
    }
    /// 204, empty.
    pub fn no_content() -> Self {
        Reply {
            status: 204,
            reason: "No Content",
            body: None,
            location: None,
            allow: None,
            raw: None,
        }
    }
    /// 201 with a `Location`.
    fn created(body: Value, location: String) -> Self {
        let mut r = Self::json(201, "Created", body);
        r.location = Some(location);
        r
    }
    /// An ARI error: `{"message": …}`.
    pub fn error(status: u16, message: &str) -> Self {
        let reason = match status {
            400 => "Bad Request",
            401 => "Unauthorized",
            404 => "Not Found",
            405 => "Method Not Allowed",
            409 => "Conflict",
            412 => "Precondition Failed",
            422 => "Unprocessable Entity",
            500 => "Internal Server Error",
            503 => "Service Unavailable",
            _ => "Error",
        };
        Self::json(status, reason, json!({ "message": message }))
    }
    fn with_reason(mut self, reason: &'static str) -> Self {
        self.reason = reason;
        self
    }
}

/// Something the server must do after a world call.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Send this text to that socket.
    Send {
        /// Socket id.
        socket: u64,
        /// The JSON text.
        text: String,
    },
    /// Fire `timer` after `after` (emulated time).
    Arm {
        /// Delay.
        after: Duration,
        /// What.
        timer: Timer,
    },
    /// Start streaming RTP for an externalMedia channel.
    RtpStart {
        /// Channel id.
        channel: String,
        /// Where to send (`host:port`).
        to: String,
    },
    /// Stop streaming RTP for a channel.
    RtpStop {
        /// Channel id.
        channel: String,
    },
}

/// Something that happens later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Timer {
    /// The current item of a playback ends.
    PlaybackItemDone {
        /// Playback id.
        playback: String,
        /// Generation (pauses and stops make older timers stale).
        epoch: u64,
    },
    /// A recording reaches its maximum duration.
    RecordingMax {
        /// Name.
        name: String,
    },
    /// A dialplan step finished (Playback, Wait, MusicOnHold).
    DialplanNext {
        /// Channel.
        channel: String,
        /// Generation.
        epoch: u64,
    },
    /// A dialled endpoint answers.
    DialAnswer {
        /// Channel.
        channel: String,
    },
    /// A dial timed out.
    DialTimeout {
        /// Channel.
        channel: String,
    },
    /// An originate into a Local extension that never answers timed out.
    OriginateTimeout {
        /// The `;1` half.
        channel: String,
    },
    /// A DTMF digit arrives on a channel.
    Dtmf {
        /// Channel.
        channel: String,
        /// Digit.
        digit: char,
        /// Duration.
        duration_ms: i64,
    },
    /// A scripted caller hangs up.
    CallerHangup {
        /// Channel.
        channel: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum Tech {
    Local { half: u8, peer: String },
    Pjsip { endpoint: String },
    UnicastRtp { device: String },
    Snoop { spied: String },
}

#[derive(Debug, Clone)]
struct Chan {
    ch: Channel,
    tech: Tech,
    /// The app whose Stasis it is in.
    stasis: Option<String>,
    /// Originated or created through ARI into an app: its subscription survives StasisEnd.
    app_owned: bool,
    /// Enter this app (with args) once answered (originate with `app=`).
    app_on_answer: Option<(String, Vec<String>)>,
    vars: BTreeMap<String, String>,
    bridge: Option<String>,
    program: Option<(String, String, Vec<Step>, usize)>,
    epoch: u64,
    snoops: Vec<String>,
    /// Snoop channel DELETEd: waits for its spied channel to leave Stasis.
    zombie: bool,
    answered_once: bool,
    dialling: bool,
}

#[derive(Debug, Clone)]
struct Br {
    bridge: Bridge,
    /// Entry order (the channels list of the JSON is sorted).
    order: Vec<String>,
    recorder: Option<String>,
}

#[derive(Debug, Clone)]
struct Pb {
    playback: Playback,
    media: Vec<String>,
    index: usize,
    epoch: u64,
    app: String,
    paused: bool,
}

#[derive(Debug, Clone)]
struct Rec {
    rec: LiveRecording,
    app: String,
    started_at: i64,
    bridge: Option<String>,
}

#[derive(Debug, Clone)]
struct Sock {
    app: String,
    subscribe_all: bool,
    active: bool,
}

#[derive(Debug, Clone, Default)]
struct AppSubs {
    channels: HashSet<String>,
    bridges: HashMap<String, u32>,
}

/// Where an event goes.
#[derive(Debug, Clone)]
enum Route {
    /// About a channel (and maybe a bridge).
    Channel(String, Option<String>),
    /// About a bridge.
    Bridge(String),
    /// Device state: subscribeAll sockets only.
    Device,
    /// Belongs to an app (playbacks, recordings, Stasis events); `twice` with subscribeAll.
    Owner(String, bool),
}

/// Parameters of a request (query, form or JSON body merged), as ARI reads them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Params {
    /// Single values by name (the last one wins; lists are comma-joined).
    pub values: BTreeMap<String, String>,
    /// `variables` of a JSON body.
    pub variables: BTreeMap<String, String>,
}

impl Params {
    fn get(&self, k: &str) -> Option<&str> {
        self.values
            .get(k)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
    fn list(&self, k: &str) -> Vec<String> {
        self.get(k)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }
    fn int(&self, k: &str) -> Option<i64> {
        self.get(k).and_then(|v| v.trim().parse().ok())
    }
}

/// A scripted inbound SIP call.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundCall {
    /// The PJSIP endpoint it comes from (`customer`).
    pub endpoint: String,
    /// The number dialled (`1000`).
    pub extension: String,
    /// Caller name.
    pub caller_name: String,
    /// Caller number.
    pub caller_number: String,
    /// DTMF the caller sends once answered: (delay after answer, digits).
    pub dtmf: Vec<(Duration, String)>,
    /// The caller hangs up this long after the call starts.
    pub hangup_after: Option<Duration>,
}

/// The simulated switch.
#[derive(Debug)]
pub struct World {
    config: WorldConfig,
    now: AriTime,
    channels: BTreeMap<String, Chan>,
    bridges: BTreeMap<String, Br>,
    playbacks: HashMap<String, Pb>,
    recordings: HashMap<String, Rec>,
    stored: BTreeMap<String, (String, usize)>,
    sockets: BTreeMap<u64, Sock>,
    apps: HashMap<String, u64>,
    subs: HashMap<String, AppSubs>,
    globals: BTreeMap<String, String>,
    next_socket: u64,
    next_uid: u64,
    local_seq: u64,
    pjsip_seq: u64,
    snoop_seq: u64,
    next_epoch: u64,
    next_rtp_port: u16,
    rng: u64,
    outbox: Vec<Output>,
    reply_mark: Option<usize>,
}

fn caller_id(text: &str) -> CallerId {
    // `Name <number>`, `<number>` or `number`.
    let t = text.trim();
    if let (Some(open), Some(close)) = (t.find('<'), t.rfind('>'))
        && open < close
    {
        return CallerId {
            name: t[..open].trim().trim_matches('"').to_owned(),
            number: t[open + 1..close].trim().to_owned(),
        };
    }
    CallerId {
        name: String::new(),
        number: t.to_owned(),
    }
}

impl World {
    /// A switch with no channels.
    pub fn new(config: WorldConfig) -> Self {
        let seed = (config.epoch_secs as u64) ^ 0x9e37_79b9_7f4a_7c15;
        World {
            now: AriTime::from_unix_millis(config.epoch_secs * 1000),
            config,
            channels: BTreeMap::new(),
            bridges: BTreeMap::new(),
            playbacks: HashMap::new(),
            recordings: HashMap::new(),
            stored: BTreeMap::new(),
            sockets: BTreeMap::new(),
            apps: HashMap::new(),
            subs: HashMap::new(),
            globals: BTreeMap::new(),
            next_socket: 1,
            next_uid: 1,
            local_seq: 0x18,
            pjsip_seq: 0x11,
            snoop_seq: 1,
            next_epoch: 1,
            next_rtp_port: 10_000,
            rng: seed | 1,
            outbox: Vec::new(),
            reply_mark: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &WorldConfig {
        &self.config
    }

    /// Sets the clock (the server calls this before every operation).
    pub fn set_now(&mut self, now: AriTime) {
        self.now = now;
    }

    /// Takes what the server must do.
    pub fn drain(&mut self) -> Vec<Output> {
        self.reply_mark = None;
        std::mem::take(&mut self.outbox)
    }

    /// Where, among the outputs of the current operation, Asterisk would have sent its reply
    /// (g: REST over the WebSocket answers before the later events of the request).
    pub fn reply_mark(&self) -> Option<usize> {
        self.reply_mark
    }

    fn mark_reply(&mut self) {
        if self.reply_mark.is_none() {
            self.reply_mark = Some(self.outbox.len());
        }
    }

    /// Whether `user:password` is an ari.conf user.
    pub fn authenticates(&self, user: &str, password: &str) -> bool {
        self.config
            .users
            .iter()
            .any(|(u, p)| u == user && p == password)
    }

    /// Ids of the channels that exist.
    pub fn channel_ids(&self) -> Vec<String> {
        self.channels
            .iter()
            .filter(|(_, c)| !c.zombie || matches!(c.tech, Tech::Snoop { .. }))
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Ids of the bridges that exist.
    pub fn bridge_ids(&self) -> Vec<String> {
        self.bridges.keys().cloned().collect()
    }

    /// Names of the stored recordings.
    pub fn stored_recordings(&self) -> Vec<String> {
        self.stored.keys().cloned().collect()
    }

    fn random(&mut self) -> u64 {
        // xorshift64*: deterministic per run, good enough for ids and SSRCs.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn uuid(&mut self) -> String {
        let a = self.random();
        let b = self.random();
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0x0fff,
            0x8000 | ((b >> 48) & 0x3fff),
            b & 0xffff_ffff_ffff
        )
    }

    fn next_epoch(&mut self) -> u64 {
        self.next_epoch += 1;
        self.next_epoch
    }

    fn arm(&mut self, after: Duration, timer: Timer) {
        self.outbox.push(Output::Arm { after, timer });
    }

    // ---------------------------------------------------------------- sockets and delivery

    /// A WebSocket for `app` opened. A second socket for the same app replaces the first: the
    /// first gets `ApplicationReplaced` and nothing further (e).
    pub fn open_socket(&mut self, app: &str, subscribe_all: bool) -> u64 {
        let id = self.next_socket;
        self.next_socket += 1;
        if let Some(old) = self.apps.insert(app.to_owned(), id) {
            let event = self.event_for(EventKind::ApplicationReplaced, app);
            if let Ok(text) = serde_json::to_string(&event) {
                self.outbox.push(Output::Send { socket: old, text });
            }
            if let Some(s) = self.sockets.get_mut(&old) {
                s.active = false;
            }
        }
        self.sockets.insert(
            id,
            Sock {
                app: app.to_owned(),
                subscribe_all,
                active: true,
            },
        );
        self.subs.entry(app.to_owned()).or_default();
        id
    }

    /// A WebSocket closed.
    pub fn close_socket(&mut self, socket: u64) {
        if let Some(s) = self.sockets.remove(&socket)
            && self.apps.get(&s.app) == Some(&socket)
        {
            self.apps.remove(&s.app);
        }
    }

    /// Sockets open now.
    pub fn socket_ids(&self) -> Vec<u64> {
        self.sockets.keys().copied().collect()
    }

    fn event_for(&self, kind: EventKind, app: &str) -> AriEvent {
        AriEvent {
            application: app.to_owned(),
            timestamp: Some(self.now),
            asterisk_id: Some(self.config.asterisk_id.clone()),
            kind,
        }
    }

    fn emit(&mut self, kind: EventKind, route: Route) {
        let mut targets: Vec<(u64, String, usize)> = Vec::new();
        for (id, sock) in &self.sockets {
            if !sock.active {
                continue;
            }
            let subs = self.subs.get(&sock.app);
            let times = if sock.subscribe_all {
                match &route {
                    Route::Owner(_, true) => 2,
                    Route::Owner(app, false)
                        if matches!(
                            kind,
                            EventKind::StasisStart { .. } | EventKind::StasisEnd { .. }
                        ) =>
                    {
                        usize::from(app == &sock.app)
                    }
                    _ => 1,
                }
            } else {
                let hit = match &route {
                    Route::Channel(c, b) => {
                        subs.is_some_and(|s| s.channels.contains(c))
                            || b.as_ref().is_some_and(|b| {
                                subs.is_some_and(|s| s.bridges.get(b).is_some_and(|n| *n > 0))
                            })
                    }
                    Route::Bridge(b) => {
                        subs.is_some_and(|s| s.bridges.get(b).is_some_and(|n| *n > 0))
                    }
                    Route::Device => false,
                    Route::Owner(app, _) => app == &sock.app,
                };
                usize::from(hit)
            };
            if times > 0 {
                targets.push((*id, sock.app.clone(), times));
            }
        }
        for (socket, app, times) in targets {
            let event = self.event_for(kind.clone(), &app);
            if let Ok(text) = serde_json::to_string(&event) {
                for _ in 0..times {
                    self.outbox.push(Output::Send {
                        socket,
                        text: text.clone(),
                    });
                }
            }
        }
    }

    fn subscribe(&mut self, app: &str, channel: &str) {
        self.subs
            .entry(app.to_owned())
            .or_default()
            .channels
            .insert(channel.to_owned());
    }

    fn unsubscribe(&mut self, app: &str, channel: &str) {
        if let Some(s) = self.subs.get_mut(app) {
            s.channels.remove(channel);
        }
    }

    /// The application that owns what is done to a channel or bridge (its playbacks and
    /// recordings are reported to it).
    pub fn owner_app(&self, target: PlayTarget<'_>) -> String {
        let from_channel = |id: &str| {
            self.channels.get(id).and_then(|c| {
                c.stasis.clone().or_else(|| {
                    self.subs
                        .iter()
                        .find(|(_, s)| s.channels.contains(id))
                        .map(|(a, _)| a.clone())
                })
            })
        };
        let found = match target {
            PlayTarget::Channel(id) => from_channel(id),
            PlayTarget::Bridge(b) => self
                .bridges
                .get(b)
                .and_then(|b| b.order.iter().find_map(|c| from_channel(c))),
        };
        found
            .or_else(|| {
                let mut apps: Vec<&String> = self.apps.keys().collect();
                apps.sort();
                apps.first().map(|a| (*a).clone())
            })
            .unwrap_or_default()
    }

    // ---------------------------------------------------------------- channel helpers

    fn snapshot(&self, id: &str) -> Option<Channel> {
        self.channels.get(id).map(|c| c.ch.clone())
    }

    fn ev_channel(&mut self, id: &str, make: impl FnOnce(Channel) -> EventKind) {
        let Some(c) = self.channels.get(id) else {
            return;
        };
        let bridge = c.bridge.clone();
        let kind = make(c.ch.clone());
        self.emit(kind, Route::Channel(id.to_owned(), bridge));
    }

    fn device_name(&self, id: &str) -> Option<String> {
        let c = self.channels.get(id)?;
        Some(match &c.tech {
            Tech::Local { .. } => {
                let name = &c.ch.name;
                let base = name.rsplit_once('-').map(|(b, _)| b).unwrap_or(name);
                base.to_owned()
            }
            Tech::Pjsip { endpoint } => format!("PJSIP/{endpoint}"),
            Tech::UnicastRtp { device } => device.clone(),
            Tech::Snoop { spied } => format!("Snoop/{spied}"),
        })
    }

    fn device_state(&mut self, name: &str, state: &str) {
        self.emit(
            EventKind::DeviceStateChanged {
                device_state: DeviceState {
                    name: name.to_owned(),
                    state: state.to_owned(),
                },
            },
            Route::Device,
        );
    }

    fn set_state(&mut self, id: &str, state: ChannelState) {
        let changed = match self.channels.get_mut(id) {
            Some(c) if c.ch.state != state => {
                c.ch.state = state;
                if state == ChannelState::Up {
                    c.answered_once = true;
                }
                true
            }
            _ => false,
        };
        if changed {
            self.ev_channel(id, |channel| EventKind::ChannelStateChange { channel });
        }
    }

    fn varset(&mut self, id: &str, variable: &str, value: &str) {
        if let Some(c) = self.channels.get_mut(id) {
            if value.is_empty() {
                c.vars.remove(variable);
            } else {
                c.vars.insert(variable.to_owned(), value.to_owned());
            }
        }
        let (variable, value) = (variable.to_owned(), value.to_owned());
        self.ev_channel(id, |channel| EventKind::ChannelVarset {
            variable,
            value,
            channel: Some(channel),
        });
    }

    fn dialplan_event(
        &mut self,
        id: &str,
        context: &str,
        exten: &str,
        priority: i64,
        app: &str,
        data: &str,
    ) {
        if let Some(c) = self.channels.get_mut(id) {
            c.ch.dialplan = DialplanCep {
                context: context.to_owned(),
                exten: exten.to_owned(),
                priority,
                app_name: app.to_owned(),
                app_data: data.to_owned(),
            };
        }
        let (app, data) = (app.to_owned(), data.to_owned());
        self.ev_channel(id, |channel| EventKind::ChannelDialplan {
            dialplan_app: app,
            dialplan_app_data: data,
            channel,
        });
    }

    fn dial_event(&mut self, id: &str, status: &str, dialstring: &str) {
        let Some(peer) = self.snapshot(id) else {
            return;
        };
        let bridge = self.channels.get(id).and_then(|c| c.bridge.clone());
        self.emit(
            EventKind::Dial {
                caller: None,
                peer,
                forward: Some(String::new()),
                forwarded: None,
                dialstring: Some(dialstring.to_owned()),
                dialstatus: status.to_owned(),
            },
            Route::Channel(id.to_owned(), bridge),
        );
    }

    fn new_uid(&mut self) -> String {
        let id = format!("{}.{}", self.config.epoch_secs, self.next_uid);
        self.next_uid += 1;
        id
    }

    fn blank_channel(&self, id: String, name: String, state: ChannelState) -> Channel {
        Channel {
            id,
            name,
            state,
            protocol_id: String::new(),
            caller: CallerId::default(),
            connected: CallerId::default(),
            accountcode: String::new(),
            dialplan: DialplanCep {
                context: "default".into(),
                exten: "s".into(),
                priority: 1,
                app_name: String::new(),
                app_data: String::new(),
            },
            creationtime: self.now,
            language: "en".into(),
            channelvars: None,
            caller_rdnis: None,
            tenantid: None,
        }
    }

    fn insert(&mut self, ch: Channel, tech: Tech) {
        self.channels.insert(
            ch.id.clone(),
            Chan {
                ch,
                tech,
                stasis: None,
                app_owned: false,
                app_on_answer: None,
                vars: BTreeMap::new(),
                bridge: None,
                program: None,
                epoch: 0,
                snoops: Vec::new(),
                zombie: false,
                answered_once: false,
                dialling: false,
            },
        );
    }

    fn exists(&self, id: &str) -> bool {
        self.channels.get(id).is_some_and(|c| !c.zombie)
    }

    fn in_stasis(&self, id: &str) -> bool {
        self.channels.get(id).is_some_and(|c| c.stasis.is_some())
    }

    fn app_registered(&self, app: &str) -> bool {
        self.apps.contains_key(app)
    }

    fn enter_stasis(&mut self, id: &str, app: &str, args: Vec<String>) {
        self.varset(id, "STASISSTATUS", "");
        if let Some(c) = self.channels.get_mut(id) {
            c.stasis = Some(app.to_owned());
            c.epoch += 1;
        }
        self.subscribe(app, id);
        self.ev_channel(id, |channel| EventKind::StasisStart {
            args,
            channel,
            replace_channel: None,
        });
    }

    /// Leaves Stasis: `StasisEnd`, then `STASISSTATUS=SUCCESS`. A channel that came from the
    /// dialplan is unsubscribed right after `StasisEnd` (a), unless `keep` (f: DELETE while
    /// bridged).
    fn leave_stasis(&mut self, id: &str, keep: bool) {
        let Some(app) = self.channels.get_mut(id).and_then(|c| c.stasis.take()) else {
            return;
        };
        let owned = self.channels.get(id).is_some_and(|c| c.app_owned);
        self.ev_channel(id, |channel| EventKind::StasisEnd { channel });
        if !owned && !keep {
            self.unsubscribe(&app, id);
        }
        self.varset(id, "STASISSTATUS", "SUCCESS");
        // Snoops on a channel end when it leaves Stasis (c).
        let snoops = self
            .channels
            .get_mut(id)
            .map(|c| std::mem::take(&mut c.snoops))
            .unwrap_or_default();
        for s in snoops {
            self.destroy_snoop(&s);
        }
    }

    fn destroy_snoop(&mut self, id: &str) {
        if !self.channels.contains_key(id) {
            return;
        }
        if self.in_stasis(id) {
            self.ev_channel(id, |channel| EventKind::ChannelHangupRequest {
                cause: Some(32),
                tech_cause: None,
                soft: Some(true),
                channel,
            });
            self.leave_stasis(id, false);
        }
        self.destroy(id, 16, None);
        if let Some(device) = self.device_name(id) {
            self.device_state(&device, "INVALID");
        }
        self.channels.remove(id);
    }

    fn destroy(&mut self, id: &str, cause: i64, tech_cause: Option<i64>) {
        self.ev_channel(id, |channel| EventKind::ChannelDestroyed {
            cause,
            cause_txt: cause_text(cause).to_owned(),
            tech_cause,
            channel,
        });
    }

    fn remove_channel_record(&mut self, id: &str) {
        self.channels.remove(id);
        self.playbacks
            .retain(|_, p| p.playback.target_uri != format!("channel:{id}"));
        self.outbox.push(Output::RtpStop {
            channel: id.to_owned(),
        });
        for subs in self.subs.values_mut() {
            subs.channels.remove(id);
        }
    }

    // ---------------------------------------------------------------- dialplan

    fn substitute(&self, text: &str, id: &str, exten: &str) -> String {
        let caller = self
            .channels
            .get(id)
            .map(|c| c.ch.caller.clone())
            .unwrap_or_default();
        text.replace("${EXTEN}", exten)
            .replace("${CALLERID(name)}", &caller.name)
            .replace("${CALLERID(num)}", &caller.number)
    }

    fn start_program(&mut self, id: &str, context: &str, exten: &str) -> bool {
        let Some(steps) = self.config.dialplan.find(context, exten) else {
            return false;
        };
        if let Some(c) = self.channels.get_mut(id) {
            c.program = Some((context.to_owned(), exten.to_owned(), steps, 0));
        }
        self.run_program(id);
        true
    }

    /// Runs dialplan steps until one blocks (waits, plays, or enters Stasis).
    fn run_program(&mut self, id: &str) {
        loop {
            let Some(c) = self.channels.get_mut(id) else {
                return;
            };
            if c.stasis.is_some() || c.zombie {
                return;
            }
            let Some((context, exten, steps, pc)) = c.program.clone() else {
                return;
            };
            let Some(step) = steps.get(pc).cloned() else {
                // Falling off the end of the dialplan hangs up.
                if let Some(c) = self.channels.get_mut(id) {
                    c.program = None;
                }
                self.hangup(id, Hangup::Dialplan);
                return;
            };
            if let Some(c) = self.channels.get_mut(id) {
                c.program = Some((context.clone(), exten.clone(), steps.clone(), pc + 1));
            }
            let priority = pc as i64 + 1;
            match step {
                Step::NoOp(text) => {
                    let text = self.substitute(&text, id, &exten);
                    self.dialplan_event(id, &context, &exten, priority, "NoOp", &text);
                }
                Step::Answer => {
                    self.dialplan_event(id, &context, &exten, priority, "Answer", "");
                    self.answer_channel(id);
                }
                Step::Ringing => {
                    self.dialplan_event(id, &context, &exten, priority, "Ringing", "");
                    self.local_ringing(id);
                }
                Step::Playback(sound) => {
                    self.dialplan_event(id, &context, &exten, priority, "Playback", &sound);
                    let d = self
                        .sound_length(&sound)
                        .unwrap_or(Duration::from_millis(500));
                    let epoch = self.bump(id);
                    self.arm(
                        d,
                        Timer::DialplanNext {
                            channel: id.to_owned(),
                            epoch,
                        },
                    );
                    return;
                }
                Step::Wait(secs) => {
                    self.dialplan_event(id, &context, &exten, priority, "Wait", &secs.to_string());
                    let epoch = self.bump(id);
                    self.arm(
                        Duration::from_secs(secs),
                        Timer::DialplanNext {
                            channel: id.to_owned(),
                            epoch,
                        },
                    );
                    return;
                }
                Step::MusicOnHold(class, secs) => {
                    self.dialplan_event(
                        id,
                        &context,
                        &exten,
                        priority,
                        "MusicOnHold",
                        &format!("{class},{secs}"),
                    );
                    let epoch = self.bump(id);
                    self.arm(
                        Duration::from_secs(secs),
                        Timer::DialplanNext {
                            channel: id.to_owned(),
                            epoch,
                        },
                    );
                    return;
                }
                Step::Stasis(app, args) => {
                    let args: Vec<String> = args
                        .iter()
                        .map(|a| self.substitute(a, id, &exten))
                        .collect();
                    let mut data = vec![app.clone()];
                    data.extend(args.iter().cloned());
                    self.dialplan_event(id, &context, &exten, priority, "Stasis", &data.join(","));
                    if self.app_registered(&app) {
                        self.enter_stasis(id, &app, args);
                    } else {
                        // Stasis() fails without a connected application; the call ends.
                        self.varset(id, "STASISSTATUS", "FAILED");
                        self.hangup(id, Hangup::Dialplan);
                    }
                    return;
                }
            }
        }
    }

    fn bump(&mut self, id: &str) -> u64 {
        let epoch = self.next_epoch();
        if let Some(c) = self.channels.get_mut(id) {
            c.epoch = epoch;
        }
        epoch
    }

    fn sound_length(&self, sound: &str) -> Option<Duration> {
        self.config.sounds.get(sound).copied()
    }

    fn local_peer(&self, id: &str) -> Option<(u8, String)> {
        match &self.channels.get(id)?.tech {
            Tech::Local { half, peer } => Some((*half, peer.clone())),
            _ => None,
        }
    }

    /// `Ringing()` on a `;2` half: the `;1` half rings (a, h).
    fn local_ringing(&mut self, id: &str) {
        if let Some((2, one)) = self.local_peer(id) {
            self.set_state(&one, ChannelState::Ringing);
            let dialstring = self.local_dialstring(&one);
            self.dial_event(&one, "RINGING", &dialstring);
            if let Some(d) = self.device_name(&one) {
                self.device_state(&d, "INUSE");
            }
        }
    }

    fn local_dialstring(&self, one: &str) -> String {
        self.channels
            .get(one)
            .map(|c| {
                let name = c.ch.name.trim_start_matches("Local/");
                name.rsplit_once('-')
                    .map(|(b, _)| b.to_owned())
                    .unwrap_or_default()
            })
            .unwrap_or_default()
    }

    /// Answers a channel. A `;2` half answering brings its `;1` half up: the originate is
    /// answered, and `;1` enters its app or its dialplan (a, b).
    fn answer_channel(&mut self, id: &str) {
        let was_up = self
            .channels
            .get(id)
            .is_some_and(|c| c.ch.state == ChannelState::Up);
        self.set_state(id, ChannelState::Up);
        if was_up {
            return;
        }
        if let Some((2, one)) = self.local_peer(id) {
            self.set_state(&one, ChannelState::Up);
            self.mark_reply();
            let dialstring = self.local_dialstring(&one);
            let on_answer = self
                .channels
                .get_mut(&one)
                .and_then(|c| c.app_on_answer.take());
            if let Some(d) = self.device_name(&one) {
                match on_answer {
                    Some((app, args)) => {
                        self.dial_event(&one, "ANSWER", &dialstring);
                        self.enter_stasis(&one, &app, args);
                        self.device_state(&d, "INUSE");
                        self.device_state(&d, "INUSE");
                    }
                    None => {
                        self.device_state(&d, "INUSE");
                        self.device_state(&d, "INUSE");
                        self.dial_event(&one, "ANSWER", &dialstring);
                        self.run_program(&one);
                    }
                }
            }
        } else if let Some(Tech::Pjsip { endpoint }) = self.channels.get(id).map(|c| c.tech.clone())
        {
            let inbound = self.channels.get(id).is_some_and(|c| !c.app_owned);
            if inbound
                && !self
                    .channels
                    .get(id)
                    .is_some_and(|c| c.vars.contains_key("__RANG"))
            {
                self.device_state(&format!("PJSIP/{endpoint}"), "INUSE");
            }
        }
    }

    // ---------------------------------------------------------------- channel creation

    fn local_pair(
        &mut self,
        endpoint: &str,
        id1: Option<String>,
        id2: Option<String>,
    ) -> Result<(String, String, String, String), Box<Reply>> {
        let rest = endpoint.trim_start_matches("Local/");
        let (exten, context) = rest
            .split_once('@')
            .map(|(e, c)| (e.to_owned(), c.split('/').next().unwrap_or(c).to_owned()))
            .unwrap_or((rest.to_owned(), "default".to_owned()));
        if self.config.dialplan.find(&context, &exten).is_none() {
            return Err(Box::new(Reply::json(
                500,
                "Internal Server Error",
                json!({"error": "Allocation failed"}),
            )));
        }
        let one = id1.unwrap_or_else(|| self.new_uid());
        let two = id2.unwrap_or_else(|| {
            if self.next_uid > 1 && one.starts_with(&self.config.epoch_secs.to_string()) {
                self.new_uid()
            } else {
                format!("{one};2")
            }
        });
        let seq = self.local_seq;
        self.local_seq += 1;
        let base = format!("Local/{exten}@{context}-{seq:08x}");
        let mut c1 = self.blank_channel(one.clone(), format!("{base};1"), ChannelState::Down);
        c1.dialplan = DialplanCep {
            context: context.clone(),
            exten: exten.clone(),
            priority: 1,
            app_name: String::new(),
            app_data: String::new(),
        };
        let mut c2 = c1.clone();
        c2.id = two.clone();
        c2.name = format!("{base};2");
        c2.state = ChannelState::Ring;
        self.insert(
            c1,
            Tech::Local {
                half: 1,
                peer: two.clone(),
            },
        );
        self.insert(
            c2,
            Tech::Local {
                half: 2,
                peer: one.clone(),
            },
        );
        Ok((one, two, exten, context))
    }

    /// `POST /channels[/{id}]`.
    pub fn originate(&mut self, path_id: Option<&str>, p: &Params) -> Reply {
        let Some(endpoint) = p.get("endpoint") else {
            return Reply::error(400, "Endpoint must be specified");
        };
        let app = p.get("app").map(str::to_owned);
        let extension = p.get("extension").map(str::to_owned);
        if app.is_none() && extension.is_none() {
            return Reply::error(400, "Application or extension must be specified");
        }
        if p.get("originator").is_some() && p.get("formats").is_some() {
            return Reply::error(400, "Originator and formats can't both be specified");
        }
        let id = path_id
            .map(str::to_owned)
            .or_else(|| p.get("channelId").map(str::to_owned));
        if let Some(id) = &id
            && self.channels.contains_key(id)
        {
            return Reply::error(409, "Channel with given unique ID already exists");
        }
        let caller = p.get("callerId").map(caller_id);
        // A non-integer timeout is accepted (e): it falls back to the default 30 s.
        let timeout = p.int("timeout").filter(|t| *t > 0).unwrap_or(30);
        let args: Vec<String> = p
            .get("appArgs")
            .map(|a| a.split(',').map(str::to_owned).collect())
            .unwrap_or_default();
        if endpoint.starts_with("Local/") {
            let (one, two, exten, context) =
                match self.local_pair(endpoint, id, p.get("otherChannelId").map(str::to_owned)) {
                    Ok(ids) => ids,
                    Err(reply) => return *reply,
                };
            self.setup_local(
                &one, &two, &exten, &context, p, caller, app, args, extension, timeout,
            );
            // The reply shows the `;1` half as it is after setup.
            match self.channels.get(&one) {
                Some(c) => {
                    let mut ch = c.ch.clone();
                    ch.state = ChannelState::Down;
                    Reply::ok(json!(ch))
                }
                None => Reply::error(500, "Allocation failed"),
            }
        } else if let Some(resource) = endpoint.strip_prefix("PJSIP/") {
            let reply = self.create_pjsip(resource, id, p, app.clone(), args);
            if reply.status != 200 {
                return reply;
            }
            let Some(id) = reply
                .body
                .as_ref()
                .and_then(|b| b.get("id"))
                .and_then(|v| v.as_str())
                .map(str::to_owned)
            else {
                return reply;
            };
            if let Some(c) = self.channels.get_mut(&id) {
                if let Some(caller) = caller {
                    c.ch.caller = caller;
                }
                c.app_on_answer = app.map(|a| (a, Vec::new()));
            }
            self.start_dial(&id, Some(timeout));
            reply
        } else {
            Reply::json(
                500,
                "Internal Server Error",
                json!({"error": "Allocation failed"}),
            )
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn setup_local(
        &mut self,
        one: &str,
        two: &str,
        exten: &str,
        context: &str,
        p: &Params,
        caller: Option<CallerId>,
        app: Option<String>,
        args: Vec<String>,
        extension: Option<String>,
        timeout: i64,
    ) {
        // Variables from the JSON body; CALLERID(name) sets the caller name (b).
        let mut vars = p.variables.clone();
        let caller_name = vars.remove("CALLERID(name)");
        // a/b: ChannelCreated ;1 (Down), ;2 (Ring), ChannelDialplan ;1 AppDial2.
        self.ev_channel(one, |channel| EventKind::ChannelCreated { channel });
        self.ev_channel(two, |channel| EventKind::ChannelCreated { channel });
        self.dialplan_event(one, context, exten, 1, "AppDial2", "(Outgoing Line)");
        for (k, v) in &vars {
            self.varset(one, k, v);
        }
        if let Some(mut caller) = caller {
            if let Some(name) = &caller_name {
                // The caller name variable wins over callerId's name (b).
                let connected = caller.clone();
                caller.name = name.clone();
                for id in [one, two] {
                    if let Some(c) = self.channels.get_mut(id) {
                        c.ch.connected = connected.clone();
                    }
                }
            } else {
                for id in [one, two] {
                    if let Some(c) = self.channels.get_mut(id) {
                        c.ch.connected = caller.clone();
                    }
                }
            }
            if let Some(c) = self.channels.get_mut(one) {
                c.ch.caller = caller.clone();
            }
            self.ev_channel(one, |channel| EventKind::ChannelCallerId {
                caller_presentation: 0,
                caller_presentation_txt: "Presentation Allowed, Not Screened".into(),
                channel,
            });
            self.ev_channel(one, |channel| EventKind::ChannelConnectedLine { channel });
        }
        // From here on an app-owned pair is subscribed (b with subscribeAll=false).
        if let Some(app) = &app {
            for id in [one, two] {
                self.subscribe(app, id);
                if let Some(c) = self.channels.get_mut(id) {
                    c.app_owned = true;
                }
            }
            if let Some(c) = self.channels.get_mut(one) {
                c.app_on_answer = Some((app.clone(), args));
            }
        } else if let Some(c) = self.channels.get_mut(one) {
            // Dialplan originate: `;1` runs context/extension once answered (a).
            let ctx = p.get("context").unwrap_or("default").to_owned();
            let ext = extension.unwrap_or_else(|| "s".into());
            c.program = self
                .config
                .dialplan
                .find(&ctx, &ext)
                .map(|steps| (ctx, ext, steps, 0));
        }
        for (k, v) in &vars {
            self.varset(two, k, v);
        }
        let caller_now = self.channels.get(one).map(|c| c.ch.caller.clone());
        if let (Some(caller), true) = (
            caller_now,
            self.channels
                .get(one)
                .is_some_and(|c| !c.ch.caller.number.is_empty()),
        ) {
            if let Some(c) = self.channels.get_mut(two) {
                c.ch.caller = caller;
            }
            self.ev_channel(two, |channel| EventKind::ChannelCallerId {
                caller_presentation: 0,
                caller_presentation_txt: "Presentation Allowed, Not Screened".into(),
                channel,
            });
            self.ev_channel(two, |channel| EventKind::ChannelConnectedLine { channel });
        }
        let dialstring = format!("{exten}@{context}");
        self.dial_event(one, "", &dialstring);
        self.mark_reply();
        // The `;2` half runs the extension.
        self.start_program(two, context, exten);
        // An app originate that nobody answers ends after `timeout` (h1).
        let answered = self
            .channels
            .get(one)
            .is_some_and(|c| c.ch.state == ChannelState::Up);
        if !answered && self.channels.contains_key(one) {
            self.arm(
                Duration::from_secs(timeout.max(1) as u64),
                Timer::OriginateTimeout {
                    channel: one.to_owned(),
                },
            );
        }
    }

    fn endpoint_config(&self, resource: &str) -> Option<EndpointConfig> {
        self.config
            .endpoints
            .iter()
            .find(|e| e.resource == resource)
            .cloned()
    }

    fn create_pjsip(
        &mut self,
        resource: &str,
        id: Option<String>,
        p: &Params,
        app: Option<String>,
        args: Vec<String>,
    ) -> Reply {
        let resource = resource.split('@').next().unwrap_or(resource);
        let Some(endpoint) = self.endpoint_config(resource) else {
            return Reply::json(
                500,
                "Internal Server Error",
                json!({"error": "Allocation failed"}),
            );
        };
        let id = id.unwrap_or_else(|| self.new_uid());
        let seq = self.pjsip_seq;
        self.pjsip_seq += 1;
        let mut ch = self.blank_channel(
            id.clone(),
            format!("PJSIP/{resource}-{seq:08x}"),
            ChannelState::Down,
        );
        ch.protocol_id = self.uuid();
        ch.dialplan.context = endpoint.context.clone();
        self.insert(
            ch,
            Tech::Pjsip {
                endpoint: resource.to_owned(),
            },
        );
        for (k, v) in &p.variables {
            if let Some(c) = self.channels.get_mut(&id) {
                c.vars.insert(k.clone(), v.clone());
            }
        }
        self.ev_channel(&id, |channel| EventKind::ChannelCreated { channel });
        if let Some(app) = &app {
            self.subscribe(app, &id);
            if let Some(c) = self.channels.get_mut(&id) {
                c.app_owned = true;
            }
        }
        let reply = Reply::ok(json!(self.snapshot(&id)));
        if let Some(app) = app {
            let mut data = vec![app.clone()];
            data.extend(args.iter().cloned());
            let context = endpoint.context.clone();
            self.dialplan_event(&id, &context, "s", 1, "Stasis", &data.join(","));
            self.enter_stasis(&id, &app, args);
        }
        reply
    }

    /// `POST /channels/create`.
    pub fn create(&mut self, p: &Params) -> Reply {
        let Some(endpoint) = p.get("endpoint") else {
            return Reply::error(400, "Endpoint must be specified");
        };
        let Some(app) = p.get("app").map(str::to_owned) else {
            return Reply::error(400, "Application must be specified");
        };
        if p.get("originator").is_some() && p.get("formats").is_some() {
            return Reply::error(400, "Originator and formats can't both be specified");
        }
        let id = p.get("channelId").map(str::to_owned);
        if let Some(id) = &id
            && self.channels.contains_key(id)
        {
            return Reply::error(409, "Channel with given unique ID already exists");
        }
        let args: Vec<String> = p
            .get("appArgs")
            .map(|a| a.split(',').map(str::to_owned).collect())
            .unwrap_or_default();
        match endpoint.strip_prefix("PJSIP/") {
            Some(resource) => self.create_pjsip(resource, id, p, Some(app), args),
            None => Reply::json(
                500,
                "Internal Server Error",
                json!({"error": "Allocation failed"}),
            ),
        }
    }

    /// `POST /channels/{id}/dial`.
    pub fn dial(&mut self, id: &str, p: &Params) -> Reply {
        if !self.exists(id) {
            return Reply::error(404, "Channel not found");
        }
        if self
            .channels
            .get(id)
            .is_some_and(|c| c.dialling || c.answered_once)
        {
            return Reply::error(409, "Channel is already dialed");
        }
        let timeout = p.int("timeout").filter(|t| *t > 0);
        self.start_dial(id, timeout);
        Reply::no_content()
    }

    fn refresh_bridge_peers(&mut self, id: &str) {
        let Some(bridge) = self.channels.get(id).and_then(|c| c.bridge.clone()) else {
            return;
        };
        let order = self
            .bridges
            .get(&bridge)
            .map(|b| b.order.clone())
            .unwrap_or_default();
        if order.len() < 2 {
            return;
        }
        self.bridge_peer_vars(&order, false);
    }

    fn start_dial(&mut self, id: &str, timeout: Option<i64>) {
        let Some(Tech::Pjsip { endpoint }) = self.channels.get(id).map(|c| c.tech.clone()) else {
            return;
        };
        if let Some(c) = self.channels.get_mut(id) {
            c.dialling = true;
        }
        let behaviour = self
            .endpoint_config(&endpoint)
            .map(|e| e.behaviour)
            .unwrap_or(DialBehaviour::NoAnswer);
        // f: the bridge peer variables are refreshed before the Dial, again after ringing.
        self.refresh_bridge_peers(id);
        self.dial_event(id, "", &endpoint);
        match behaviour {
            DialBehaviour::Busy => {
                // h2: no Dial BUSY; a hangup request with 17/486, StasisEnd, destroyed 17.
                self.hangup(id, Hangup::Busy);
            }
            DialBehaviour::Answer { ring } => {
                self.set_state(id, ChannelState::Ringing);
                self.dial_event(id, "RINGING", "");
                self.device_state(&format!("PJSIP/{endpoint}"), "RINGING");
                self.refresh_bridge_peers(id);
                let limit = timeout.map(|t| Duration::from_secs(t as u64));
                if limit.is_some_and(|l| l <= ring) {
                    self.arm(
                        limit.unwrap_or(ring),
                        Timer::DialTimeout {
                            channel: id.to_owned(),
                        },
                    );
                } else {
                    self.arm(
                        ring,
                        Timer::DialAnswer {
                            channel: id.to_owned(),
                        },
                    );
                }
            }
            DialBehaviour::NoAnswer => {
                self.set_state(id, ChannelState::Ringing);
                self.dial_event(id, "RINGING", "");
                self.device_state(&format!("PJSIP/{endpoint}"), "RINGING");
                let t = timeout.unwrap_or(30).max(1) as u64;
                self.arm(
                    Duration::from_secs(t),
                    Timer::DialTimeout {
                        channel: id.to_owned(),
                    },
                );
            }
        }
    }

    /// A scripted SIP call arrives (f, h3): the channel runs the endpoint's context.
    pub fn inbound_call(&mut self, call: &InboundCall) -> Result<String, String> {
        let endpoint = self
            .endpoint_config(&call.endpoint)
            .ok_or_else(|| format!("no PJSIP endpoint {:?}", call.endpoint))?;
        if self
            .config
            .dialplan
            .find(&endpoint.context, &call.extension)
            .is_none()
        {
            return Err(format!(
                "no extension {} in context {}",
                call.extension, endpoint.context
            ));
        }
        let id = self.new_uid();
        let seq = self.pjsip_seq;
        self.pjsip_seq += 1;
        let mut ch = self.blank_channel(
            id.clone(),
            format!("PJSIP/{}-{seq:08x}", call.endpoint),
            ChannelState::Ring,
        );
        ch.protocol_id = format!("1-{}@127.0.0.1", 5000 + self.next_uid);
        ch.caller = CallerId {
            name: call.caller_name.clone(),
            number: call.caller_number.clone(),
        };
        ch.dialplan = DialplanCep {
            context: endpoint.context.clone(),
            exten: call.extension.clone(),
            priority: 1,
            app_name: String::new(),
            app_data: String::new(),
        };
        self.insert(
            ch,
            Tech::Pjsip {
                endpoint: call.endpoint.clone(),
            },
        );
        self.ev_channel(&id, |channel| EventKind::ChannelCreated { channel });
        self.varset(&id, "SIPDOMAIN", "127.0.0.1");
        self.start_program(&id, &endpoint.context, &call.extension);
        for (after, digits) in &call.dtmf {
            let mut at = *after;
            for digit in digits.chars() {
                self.arm(
                    at,
                    Timer::Dtmf {
                        channel: id.clone(),
                        digit,
                        duration_ms: 280,
                    },
                );
                at += Duration::from_millis(400);
            }
        }
        if let Some(after) = call.hangup_after {
            self.arm(
                after,
                Timer::CallerHangup {
                    channel: id.clone(),
                },
            );
        }
        Ok(id)
    }

    /// `POST /channels/externalMedia` (d).
    pub fn external_media(&mut self, p: &Params) -> Reply {
        let Some(app) = p.get("app").map(str::to_owned) else {
            return Reply::error(400, "app cannot be empty");
        };
        let Some(host) = p.get("external_host").map(str::to_owned) else {
            return Reply::error(
                400,
                "external_host is required for all but websocket connections",
            );
        };
        let Some(format) = p.get("format").map(str::to_owned) else {
            return Reply::error(400, "format cannot be empty");
        };
        if p.get("encapsulation")
            .is_some_and(|e| e != "rtp" && e != "audiosocket")
        {
            return Reply::error(400, "Unsupported encapsulation");
        }
        let id = p
            .get("channelId")
            .map(str::to_owned)
            .unwrap_or_else(|| self.new_uid());
        if self.channels.contains_key(&id) {
            return Reply::error(409, "Channel with given unique ID already exists");
        }
        let port = self.next_rtp_port;
        self.next_rtp_port = self.next_rtp_port.wrapping_add(2).max(10_000);
        let pointer = 0x7f35_2800_0000u64 | (self.random() & 0xf_fff0);
        let mut ch = self.blank_channel(
            id.clone(),
            format!("UnicastRTP/{host}-0x{pointer:x}"),
            ChannelState::Down,
        );
        ch.dialplan.app_name = "AppDial2".into();
        ch.dialplan.app_data = "(Outgoing Line)".into();
        self.insert(
            ch,
            Tech::UnicastRtp {
                device: format!("UnicastRTP/{host}"),
            },
        );
        let rtp_address = self.config.rtp_address.clone();
        if let Some(c) = self.channels.get_mut(&id) {
            c.app_owned = true;
            for (k, v) in &p.variables {
                c.vars.insert(k.clone(), v.clone());
            }
        }
        let mut reply_channel = self.snapshot(&id);
        if let Some(ch) = reply_channel.as_mut() {
            let mut vars = BTreeMap::new();
            vars.insert("UNICASTRTP_LOCAL_ADDRESS".to_owned(), rtp_address.clone());
            vars.insert("UNICASTRTP_LOCAL_PORT".to_owned(), port.to_string());
            ch.channelvars = Some(vars);
        }
        self.ev_channel(&id, |channel| EventKind::ChannelCreated { channel });
        self.subscribe(&app, &id);
        self.varset(&id, "UNICASTRTP_LOCAL_ADDRESS", &rtp_address);
        self.varset(&id, "UNICASTRTP_LOCAL_PORT", &port.to_string());
        self.dialplan_event(&id, "default", "s", 1, "AppDial2", "(Outgoing Line)");
        let dialstring = format!("{host}/c({format})");
        self.dial_event(&id, "", &dialstring);
        self.set_state(&id, ChannelState::Up);
        self.dial_event(&id, "ANSWER", &dialstring);
        self.device_state(&format!("UnicastRTP/{host}"), "INUSE");
        if let Some(c) = self.channels.get_mut(&id) {
            c.ch.dialplan.app_name = "Stasis".into();
            c.ch.dialplan.app_data = app.clone();
        }
        self.enter_stasis(&id, &app, Vec::new());
        self.outbox.push(Output::RtpStart {
            channel: id.clone(),
            to: host,
        });
        Reply::ok(json!(reply_channel))
    }

    /// `POST /channels/{id}/snoop[/{snoopId}]` (c).
    pub fn snoop(&mut self, id: &str, snoop_id: Option<&str>, p: &Params) -> Reply {
        let Some(app) = p.get("app").map(str::to_owned) else {
            return Reply::error(400, "Application name is required");
        };
        if !self.exists(id) {
            return Reply::error(404, "Channel not found");
        }
        let sid = snoop_id
            .map(str::to_owned)
            .or_else(|| p.get("snoopId").map(str::to_owned))
            .unwrap_or_else(|| self.new_uid());
        if self.channels.contains_key(&sid) {
            return Reply::error(409, "Channel with given unique ID already exists");
        }
        let seq = self.snoop_seq;
        self.snoop_seq += 1;
        let mut ch = self.blank_channel(
            sid.clone(),
            format!("Snoop/{id}-{seq:08x}"),
            ChannelState::Up,
        );
        ch.dialplan.app_name = String::new();
        self.insert(
            ch,
            Tech::Snoop {
                spied: id.to_owned(),
            },
        );
        if let Some(c) = self.channels.get_mut(id) {
            c.snoops.push(sid.clone());
        }
        if let Some(c) = self.channels.get_mut(&sid) {
            c.app_owned = true;
        }
        let reply = Reply::ok(json!(self.snapshot(&sid)));
        self.ev_channel(&sid, |channel| EventKind::ChannelCreated { channel });
        self.subscribe(&app, &sid);
        let args: Vec<String> = p
            .get("appArgs")
            .map(|a| a.split(',').map(str::to_owned).collect())
            .unwrap_or_default();
        let mut data = vec![app.clone()];
        data.extend(args.iter().cloned());
        self.dialplan_event(&sid, "default", "s", 1, "Stasis", &data.join(","));
        self.enter_stasis(&sid, &app, args);
        reply
    }

    // ---------------------------------------------------------------- hangups

    /// Hangs a channel up for `how`; the sequences follow a, b, d, f, h.
    pub fn hangup(&mut self, id: &str, how: Hangup) {
        let Some(c) = self.channels.get(id) else {
            return;
        };
        if c.zombie {
            return;
        }
        let tech = c.tech.clone();
        let was_bridged = c.bridge.clone();
        let was_up = c.answered_once;
        if let Some(c) = self.channels.get_mut(id) {
            c.epoch += 1;
            c.program = None;
        }
        // Snoop: DELETE ends Stasis but the channel lingers until its spied channel leaves
        // Stasis (c).
        if let Tech::Snoop { .. } = tech {
            self.ev_channel(id, |channel| EventKind::ChannelHangupRequest {
                cause: Some(32),
                tech_cause: None,
                soft: Some(true),
                channel,
            });
            self.leave_stasis(id, false);
            if let Some(c) = self.channels.get_mut(id) {
                c.zombie = true;
            }
            return;
        }
        let pjsip = matches!(tech, Tech::Pjsip { .. });
        let by_ari = matches!(how, Hangup::Ari(_));
        if pjsip && was_up && (was_bridged.is_some() || by_ari) {
            self.rtp_qos(id);
        }
        // f: a DELETEd SIP channel frees its device before leaving the bridge; h3: a SIP
        // caller that hangs up frees it at the very end.
        let device_early = pjsip && by_ari && was_bridged.is_some();
        match how {
            Hangup::Ari(_) => self.ev_channel(id, |channel| EventKind::ChannelHangupRequest {
                cause: Some(32),
                tech_cause: None,
                soft: Some(true),
                channel,
            }),
            Hangup::Remote => self.ev_channel(id, |channel| EventKind::ChannelHangupRequest {
                cause: None,
                tech_cause: None,
                soft: None,
                channel,
            }),
            Hangup::Busy => self.ev_channel(id, |channel| EventKind::ChannelHangupRequest {
                cause: Some(17),
                tech_cause: Some(486),
                soft: None,
                channel,
            }),
            Hangup::Kill(cause) => self.ev_channel(id, |channel| EventKind::ChannelHangupRequest {
                cause: Some(cause),
                tech_cause: None,
                soft: None,
                channel,
            }),
            Hangup::Dialplan | Hangup::NoAnswer => {}
        }
        let keep = matches!(how, Hangup::Ari(_)) && was_bridged.is_some();
        if let Some(bridge) = was_bridged {
            self.clear_bridge_vars(id);
            if let (true, Tech::Pjsip { endpoint }) = (device_early, &tech) {
                self.device_state(&format!("PJSIP/{endpoint}"), "NOT_INUSE");
            }
            self.leave_bridge(id, &bridge);
        }
        self.leave_stasis(id, keep);
        let (cause, tech_cause) = match how {
            Hangup::Busy => (17, Some(486)),
            Hangup::NoAnswer => (19, None),
            Hangup::Kill(c) => (c, None),
            Hangup::Ari(code) => (code.unwrap_or(16), None),
            _ => (16, None),
        };
        match tech {
            Tech::Local { half, peer } => {
                if half == 2 {
                    // a: ;2 then ;1.
                    self.ev_channel(id, |channel| EventKind::ChannelHangupRequest {
                        cause: Some(16),
                        tech_cause: None,
                        soft: Some(true),
                        channel,
                    });
                    self.ev_channel(&peer, |channel| EventKind::ChannelHangupRequest {
                        cause: Some(16),
                        tech_cause: None,
                        soft: None,
                        channel,
                    });
                    if let Some(d) = self.device_name(id) {
                        self.device_state(&d, "NOT_INUSE");
                        self.device_state(&d, "NOT_INUSE");
                    }
                    self.peer_leaves(&peer);
                    self.ev_channel(&peer, |channel| EventKind::ChannelHangupRequest {
                        cause: Some(16),
                        tech_cause: None,
                        soft: Some(true),
                        channel,
                    });
                    self.destroy(id, cause, tech_cause);
                    self.destroy(&peer, cause, tech_cause);
                } else {
                    // b: ;1 then ;2.
                    self.ev_channel(&peer, |channel| EventKind::ChannelHangupRequest {
                        cause: Some(16),
                        tech_cause: None,
                        soft: None,
                        channel,
                    });
                    self.peer_leaves(&peer);
                    self.destroy(id, cause, tech_cause);
                    self.ev_channel(&peer, |channel| EventKind::ChannelHangupRequest {
                        cause: Some(16),
                        tech_cause: None,
                        soft: Some(true),
                        channel,
                    });
                    self.destroy(&peer, cause, tech_cause);
                    if let Some(d) = self.device_name(id) {
                        self.device_state(&d, "NOT_INUSE");
                        self.device_state(&d, "NOT_INUSE");
                    }
                }
                self.remove_channel_record(&peer);
            }
            Tech::Pjsip { ref endpoint } => {
                if !matches!(how, Hangup::Busy) {
                    self.ev_channel(id, |channel| EventKind::ChannelHangupRequest {
                        cause: Some(16),
                        tech_cause: None,
                        soft: Some(true),
                        channel,
                    });
                }
                self.destroy(id, cause, tech_cause);
                if was_up && !device_early {
                    self.device_state(&format!("PJSIP/{endpoint}"), "NOT_INUSE");
                }
            }
            Tech::UnicastRtp { ref device } => {
                self.destroy(id, cause, tech_cause);
                self.device_state(device, "UNKNOWN");
            }
            Tech::Snoop { .. } => {}
        }
        self.remove_channel_record(id);
    }

    /// The other half of a Local pair goes: out of its bridge and Stasis first.
    fn peer_leaves(&mut self, peer: &str) {
        if let Some(bridge) = self.channels.get(peer).and_then(|c| c.bridge.clone()) {
            self.clear_bridge_vars(peer);
            self.leave_bridge(peer, &bridge);
        }
        if self.in_stasis(peer) {
            self.leave_stasis(peer, false);
        }
        if let Some(c) = self.channels.get_mut(peer) {
            c.epoch += 1;
            c.program = None;
        }
    }

    fn rtp_qos(&mut self, id: &str) {
        let ssrc = self.random() as u32;
        let peer = self
            .channels
            .get(id)
            .and_then(|c| c.bridge.clone())
            .and_then(|b| self.bridges.get(&b).map(|b| b.order.clone()))
            .and_then(|order| order.into_iter().find(|o| o != id));
        let values = [
            ("RTPAUDIOQOS", format!("ssrc={ssrc};themssrc=0;lp=0;rxjitter=0.000000;rxcount=0;txjitter=0.000000;txcount=0;rlp=0;rtt=0.000000;rxmes=0.000000;txmes=0.000000")),
            ("RTPAUDIOQOSJITTER", "minrxjitter=000.000000;maxrxjitter=000.000000;avgrxjitter=000.000000;stdevrxjitter=000.000000;mintxjitter=000.000000;maxtxjitter=000.000000;avgtxjitter=000.000000;stdevtxjitter=000.000000;".to_owned()),
            ("RTPAUDIOQOSLOSS", "  minrxlost=000.000000;  maxrxlost=000.000000;  avgrxlost=000.000000;  stdevrxlost=000.000000;  mintxlost=000.000000;  maxtxlost=000.000000;  avgtxlost=000.000000;  stdevtxlost=000.000000;".to_owned()),
            ("RTPAUDIOQOSRTT", "     minrtt=000.000000;     maxrtt=000.000000;     avgrtt=000.000000;     stdevrtt=000.000000;".to_owned()),
            ("RTPAUDIOQOSMES", "   minrxmes=000.000000;   maxrxmes=000.000000;   avgrxmes=000.000000;   stdevrxmes=000.000000;   mintxmes=000.000000;   maxtxmes=000.000000;   avgtxmes=000.000000;   stdevtxmes=000.000000;".to_owned()),
        ];
        for (name, value) in values {
            self.varset(id, name, &value);
            if let Some(p) = &peer {
                self.varset(p, &format!("{name}BRIDGED"), &value);
            }
        }
    }

    /// `DELETE /channels/{id}`.
    pub fn delete_channel(&mut self, id: &str, p: &Params) -> Reply {
        let Some(c) = self.channels.get(id) else {
            return Reply::error(404, "Channel not found");
        };
        if c.zombie {
            // A snoop waiting for its spied channel: already hung up.
            return Reply::error(404, "Channel not found");
        }
        let code = p.int("reason_code").or_else(|| {
            p.get("reason").map(|r| match r {
                "busy" => 17,
                "congestion" => 34,
                "no_answer" => 19,
                "timeout" => 19,
                "rejected" => 21,
                "unallocated" => 1,
                "normal_unspecified" => 31,
                "number_incomplete" => 28,
                "codec_mismatch" => 58,
                "interworking" => 127,
                "failure" => 38,
                "answered_elsewhere" => 26,
                _ => 16,
            })
        });
        self.mark_reply();
        self.hangup(id, Hangup::Ari(code));
        Reply::no_content()
    }

    // ---------------------------------------------------------------- channel operations

    fn need_stasis(&self, id: &str) -> Result<(), Box<Reply>> {
        if !self.exists(id) {
            return Err(Box::new(Reply::error(404, "Channel not found")));
        }
        if !self.in_stasis(id) {
            return Err(Box::new(Reply::error(
                409,
                "Channel not in Stasis application",
            )));
        }
        Ok(())
    }

    /// `GET /channels`.
    pub fn list_channels(&self) -> Reply {
        let list: Vec<&Channel> = self.channels.values().map(|c| &c.ch).collect();
        Reply::ok(json!(list))
    }

    /// `GET /channels/{id}`.
    pub fn get_channel(&self, id: &str) -> Reply {
        match self.channels.get(id) {
            Some(c) => Reply::ok(json!(c.ch)),
            None => Reply::error(404, "Channel not found"),
        }
    }

    /// `POST /channels/{id}/answer`.
    pub fn answer(&mut self, id: &str) -> Reply {
        if let Err(r) = self.need_stasis(id) {
            return *r;
        }
        self.answer_channel(id);
        Reply::no_content()
    }

    /// `POST /channels/{id}/ring` (a: the `;1` half rings; f: the SIP device is in use).
    pub fn ring(&mut self, id: &str) -> Reply {
        if let Err(r) = self.need_stasis(id) {
            return *r;
        }
        match self.channels.get(id).map(|c| c.tech.clone()) {
            Some(Tech::Local { half: 2, .. }) => self.local_ringing(id),
            Some(Tech::Pjsip { endpoint }) => {
                if let Some(c) = self.channels.get_mut(id) {
                    c.vars.insert("__RANG".into(), "1".into());
                }
                self.device_state(&format!("PJSIP/{endpoint}"), "INUSE");
            }
            _ => {}
        }
        Reply::no_content()
    }

    /// The silent operations: ring stop, hold, MOH, silence, mute (no ARI events; c).
    pub fn silent_op(&mut self, id: &str) -> Reply {
        if let Err(r) = self.need_stasis(id) {
            return *r;
        }
        Reply::no_content()
    }

    /// `POST /channels/{id}/dtmf` (a: on a `;2` half it arrives on `;1`).
    pub fn send_dtmf(&mut self, id: &str, p: &Params) -> Reply {
        if let Err(r) = self.need_stasis(id) {
            return *r;
        }
        let Some(dtmf) = p.get("dtmf").map(str::to_owned) else {
            return Reply::error(400, "DTMF is required");
        };
        let duration = p.int("duration").unwrap_or(100);
        let between = p.int("between").unwrap_or(100);
        if let Some((2, one)) = self.local_peer(id) {
            let mut at = Duration::from_millis(p.int("before").unwrap_or(0).max(0) as u64);
            for digit in dtmf.chars().filter(|c| *c != ',') {
                at += Duration::from_millis(duration.max(0) as u64);
                self.arm(
                    at,
                    Timer::Dtmf {
                        channel: one.clone(),
                        digit,
                        duration_ms: duration,
                    },
                );
                at += Duration::from_millis(between.max(0) as u64);
            }
        }
        Reply::no_content()
    }

    /// `POST /channels/{id}/continue` (c).
    pub fn continue_dialplan(&mut self, id: &str, p: &Params) -> Reply {
        if let Err(r) = self.need_stasis(id) {
            return *r;
        }
        let (context, exten) = {
            let c = &self.channels[id].ch.dialplan;
            (
                p.get("context").unwrap_or(&c.context).to_owned(),
                p.get("extension").unwrap_or(&c.exten).to_owned(),
            )
        };
        if let Some(bridge) = self.channels.get(id).and_then(|c| c.bridge.clone()) {
            self.clear_bridge_vars(id);
            self.leave_bridge(id, &bridge);
        }
        self.leave_stasis(id, false);
        if !self.start_program(id, &context, &exten) {
            self.hangup(id, Hangup::Dialplan);
        }
        Reply::no_content()
    }

    /// `POST /channels/{id}/redirect` (c: on a Local channel nothing observable happens).
    pub fn redirect(&mut self, id: &str, p: &Params) -> Reply {
        if p.get("endpoint").is_none() {
            return Reply::error(400, "Required parameter endpoint not provided");
        }
        if let Err(r) = self.need_stasis(id) {
            return *r;
        }
        Reply::no_content()
    }

    /// `GET /channels/{id}/variable` (c, f).
    pub fn get_variable(&self, id: &str, p: &Params) -> Reply {
        let Some(name) = p.get("variable") else {
            return Reply::error(400, "Variable name is required");
        };
        let Some(c) = self.channels.get(id) else {
            return Reply::error(404, "Channel not found");
        };
        let value = match name {
            "CHANNEL(state)" => Some(c.ch.state.as_str().to_owned()),
            "CHANNEL(pjsip,call-id)" if matches!(c.tech, Tech::Pjsip { .. }) => {
                Some(c.ch.protocol_id.clone())
            }
            "CHANNEL(name)" => Some(c.ch.name.clone()),
            "CHANNEL(uniqueid)" => Some(c.ch.id.clone()),
            "CALLERID(num)" => Some(c.ch.caller.number.clone()),
            "CALLERID(name)" => Some(c.ch.caller.name.clone()),
            other => c.vars.get(other).cloned(),
        };
        match value {
            Some(v) => Reply::ok(json!({ "value": v })),
            None => Reply::error(404, "Provided variable was not found")
                .with_reason("Variable Not Found"),
        }
    }

    /// `POST /channels/{id}/variable` (c: a ChannelVarset follows).
    pub fn set_variable(&mut self, id: &str, p: &Params) -> Reply {
        let Some(name) = p.get("variable").map(str::to_owned) else {
            return Reply::error(400, "Variable name is required");
        };
        if !self.exists(id) {
            return Reply::error(404, "Channel not found");
        }
        let value = p.values.get("value").cloned().unwrap_or_default();
        self.varset(id, &name, &value);
        Reply::no_content()
    }

    /// `GET /channels/{id}/rtp_statistics` (d: 404 for UnicastRTP; f: PJSIP works).
    pub fn rtp_statistics(&mut self, id: &str) -> Reply {
        let Some(c) = self.channels.get(id) else {
            return Reply::error(404, "Channel not found");
        };
        if !matches!(c.tech, Tech::Pjsip { .. }) {
            return Reply::error(404, "RTP info not found");
        }
        let local_ssrc = self.random() as u32;
        let mut stat = serde_json::Map::new();
        for (k, v) in [
            ("txcount", json!(0)),
            ("rxcount", json!(30)),
            ("txploss", json!(0)),
            ("rxploss", json!(0)),
            ("local_ssrc", json!(local_ssrc)),
            ("remote_ssrc", json!(235_223_118)),
            ("txoctetcount", json!(0)),
            ("rxoctetcount", json!(120)),
            ("channel_uniqueid", json!(id)),
        ] {
            stat.insert(k.to_owned(), v);
        }
        for k in [
            "txjitter",
            "rxjitter",
            "remote_maxjitter",
            "remote_minjitter",
            "remote_normdevjitter",
            "remote_stdevjitter",
            "local_maxjitter",
            "local_minjitter",
            "local_normdevjitter",
            "local_stdevjitter",
            "remote_maxrxploss",
            "remote_minrxploss",
            "remote_normdevrxploss",
            "remote_stdevrxploss",
            "local_maxrxploss",
            "local_minrxploss",
            "local_normdevrxploss",
            "local_stdevrxploss",
            "rtt",
            "maxrtt",
            "minrtt",
            "normdevrtt",
            "stdevrtt",
        ] {
            stat.insert(k.to_owned(), json!(0.0));
        }
        stat.insert("txmes".into(), json!(0));
        stat.insert("rxmes".into(), json!(0));
        for k in [
            "remote_maxmes",
            "remote_minmes",
            "remote_normdevmes",
            "remote_stdevmes",
            "local_maxmes",
            "local_minmes",
            "local_normdevmes",
            "local_stdevmes",
        ] {
            stat.insert(k.to_owned(), json!(0.0));
        }
        Reply::ok(Value::Object(stat))
    }

    // ---------------------------------------------------------------- playbacks

    fn media_known(&self, uri: &str) -> MediaKind {
        match uri.split_once(':') {
            Some(("sound", name)) => match self.sound_length(name) {
                Some(d) => MediaKind::Finite(d),
                None => MediaKind::Missing,
            },
            Some(("tone", _)) => MediaKind::Endless,
            Some(("recording", name)) => match self.stored.get(name) {
                Some((_, bytes)) => MediaKind::Finite(Duration::from_millis(
                    (bytes.saturating_sub(44) as u64) / 16,
                )),
                None => MediaKind::Missing,
            },
            Some(("digits" | "number" | "characters", text)) => {
                MediaKind::Finite(Duration::from_millis(600 * text.len().max(1) as u64))
            }
            _ => MediaKind::Stuck,
        }
    }

    /// `POST /channels/{id}/play[/{playbackId}]` and the bridge form (a, e).
    pub fn play(
        &mut self,
        target: PlayTarget<'_>,
        playback_id: Option<&str>,
        p: &Params,
        app: &str,
    ) -> Reply {
        let target_uri = match target {
            PlayTarget::Channel(id) => {
                if !self.exists(id) {
                    return Reply::error(404, "Channel not found");
                }
                if !self.in_stasis(id) {
                    return Reply::error(409, "Channel not in Stasis application");
                }
                format!("channel:{id}")
            }
            PlayTarget::Bridge(id) => {
                if !self.bridges.contains_key(id) {
                    return Reply::error(404, "Bridge not found").with_reason("Not found");
                }
                format!("bridge:{id}")
            }
        };
        let media = p.list("media");
        if media.is_empty() {
            // e: a missing (required) media is a 500, not a 400.
            return Reply::error(500, "Failed to queue media for playback");
        }
        let id = playback_id
            .map(str::to_owned)
            .or_else(|| p.get("playbackId").map(str::to_owned))
            .unwrap_or_else(|| self.uuid());
        if self.playbacks.contains_key(&id) {
            return Reply::error(409, "Playback with given id already exists");
        }
        let playback = Playback {
            id: id.clone(),
            media_uri: media[0].clone(),
            next_media_uri: media.get(1).cloned(),
            target_uri,
            language: Some(p.get("lang").unwrap_or("en").to_owned()),
            state: "queued".into(),
        };
        let reply = Reply::created(json!(playback), format!("/ari/playbacks/{id}"));
        self.mark_reply();
        self.playbacks.insert(
            id.clone(),
            Pb {
                playback,
                media,
                index: 0,
                epoch: 0,
                app: app.to_owned(),
                paused: false,
            },
        );
        self.start_item(&id);
        reply
    }

    fn pb_event(&mut self, id: &str, state: &str, make: fn(Playback) -> EventKind) {
        let Some(pb) = self.playbacks.get_mut(id) else {
            return;
        };
        pb.playback.state = state.to_owned();
        let kind = make(pb.playback.clone());
        let app = pb.app.clone();
        self.emit(kind, Route::Owner(app, false));
    }

    fn start_item(&mut self, id: &str) {
        let Some(pb) = self.playbacks.get_mut(id) else {
            return;
        };
        let uri = pb.media[pb.index].clone();
        pb.playback.media_uri = uri.clone();
        pb.playback.next_media_uri = pb.media.get(pb.index + 1).cloned();
        self.pb_event(id, "playing", |playback| EventKind::PlaybackStarted {
            playback,
        });
        match self.media_known(&uri) {
            MediaKind::Finite(d) => self.arm_item(id, d),
            MediaKind::Missing => {
                // e: an unknown sound starts, then fails at once.
                self.pb_event(id, "failed", |playback| EventKind::PlaybackFinished {
                    playback,
                });
                self.playbacks.remove(id);
            }
            // e: an unknown scheme never finishes; tones play until stopped.
            MediaKind::Stuck | MediaKind::Endless => {}
        }
    }

    fn arm_item(&mut self, id: &str, d: Duration) {
        let epoch = self.next_epoch();
        if let Some(pb) = self.playbacks.get_mut(id) {
            pb.epoch = epoch;
        }
        self.arm(
            d,
            Timer::PlaybackItemDone {
                playback: id.to_owned(),
                epoch,
            },
        );
    }

    fn item_done(&mut self, id: &str) {
        let more = self
            .playbacks
            .get(id)
            .is_some_and(|pb| pb.index + 1 < pb.media.len());
        if more {
            self.pb_event(id, "continuing", |playback| EventKind::PlaybackContinuing {
                playback,
            });
            if let Some(pb) = self.playbacks.get_mut(id) {
                pb.index += 1;
            }
            self.start_item(id);
        } else {
            if let Some(pb) = self.playbacks.get_mut(id) {
                pb.playback.next_media_uri = None;
            }
            self.pb_event(id, "done", |playback| EventKind::PlaybackFinished {
                playback,
            });
            self.playbacks.remove(id);
        }
    }

    /// `GET /playbacks/{id}`.
    pub fn get_playback(&self, id: &str) -> Reply {
        match self.playbacks.get(id) {
            Some(pb) => Reply::ok(json!(pb.playback)),
            None => Reply::error(404, "Playback not found"),
        }
    }

    /// `DELETE /playbacks/{id}` (a: it still finishes with state `done`).
    pub fn stop_playback(&mut self, id: &str) -> Reply {
        if !self.playbacks.contains_key(id) {
            return Reply::error(404, "Playback not found");
        }
        if let Some(pb) = self.playbacks.get_mut(id) {
            pb.playback.next_media_uri = None;
        }
        self.pb_event(id, "done", |playback| EventKind::PlaybackFinished {
            playback,
        });
        self.playbacks.remove(id);
        Reply::no_content()
    }

    /// `POST /playbacks/{id}/control` (a: unpause re-emits PlaybackStarted).
    pub fn control_playback(&mut self, id: &str, p: &Params) -> Reply {
        let Some(op) = p.get("operation").map(str::to_owned) else {
            return Reply::error(400, "operation is required");
        };
        let Some(pb) = self.playbacks.get_mut(id) else {
            return Reply::error(404, "Playback not found");
        };
        match op.as_str() {
            "pause" => {
                pb.paused = true;
                pb.epoch = 0;
            }
            "unpause" => {
                if !pb.paused {
                    return Reply::error(409, "Playback not paused");
                }
                pb.paused = false;
                let uri = pb.playback.media_uri.clone();
                self.pb_event(id, "playing", |playback| EventKind::PlaybackStarted {
                    playback,
                });
                if let MediaKind::Finite(d) = self.media_known(&uri) {
                    self.arm_item(id, d / 2);
                }
            }
            "restart" | "reverse" | "forward" => {}
            _ => return Reply::error(400, "Invalid operation"),
        }
        Reply::no_content()
    }

    // ---------------------------------------------------------------- recordings

    /// `POST /channels/{id}/record` and `POST /bridges/{id}/record` (b, c).
    pub fn record(&mut self, target: PlayTarget<'_>, p: &Params, app: &str) -> Reply {
        let Some(name) = p.get("name").map(str::to_owned) else {
            return Reply::error(400, "Recording name is required");
        };
        let Some(format) = p.get("format").map(str::to_owned) else {
            return Reply::error(400, "Recording format is required");
        };
        if !matches!(
            format.as_str(),
            "wav" | "gsm" | "ulaw" | "alaw" | "sln" | "g722"
        ) {
            return Reply::error(422, &format!("Unknown format: {format}"));
        }
        let (target_uri, bridge) = match target {
            PlayTarget::Channel(id) => {
                if let Err(r) = self.need_stasis(id) {
                    return *r;
                }
                (format!("channel:{id}"), None)
            }
            PlayTarget::Bridge(id) => {
                if !self.bridges.contains_key(id) {
                    return Reply::error(404, "Bridge not found").with_reason("Not found");
                }
                (format!("bridge:{id}"), Some(id.to_owned()))
            }
        };
        if self.recordings.contains_key(&name) {
            return Reply::error(409, "Recording with the same name is in progress");
        }
        let if_exists = p.get("ifExists").unwrap_or("fail");
        if self.stored.contains_key(&name) && if_exists == "fail" {
            return Reply::error(422, "Recording already exists");
        }
        let rec = LiveRecording {
            name: name.clone(),
            format,
            state: "queued".into(),
            target_uri,
            duration: None,
            talking_duration: None,
            silence_duration: None,
            cause: None,
        };
        let reply = Reply::created(json!(rec), format!("/ari/recordings/live/{name}"));
        let twice = bridge.is_some();
        if let Some(b) = &bridge {
            // b: a hidden Recorder joins; it shows only in BRIDGEPEER.
            let seq = self.local_seq;
            self.local_seq += 1;
            if let Some(br) = self.bridges.get_mut(b) {
                br.recorder = Some(format!("Recorder/ARI-{seq:08x};2"));
            }
            let order = self
                .bridges
                .get(b)
                .map(|b| b.order.clone())
                .unwrap_or_default();
            self.bridge_peer_vars(&order, true);
        }
        self.recordings.insert(
            name.clone(),
            Rec {
                rec,
                app: app.to_owned(),
                started_at: self.now.unix_millis,
                bridge,
            },
        );
        if let Some(r) = self.recordings.get_mut(&name) {
            r.rec.state = "recording".into();
            let kind = EventKind::RecordingStarted {
                recording: r.rec.clone(),
            };
            self.emit(kind, Route::Owner(app.to_owned(), twice));
        }
        if let Some(max) = p.int("maxDurationSeconds").filter(|m| *m > 0) {
            self.arm(
                Duration::from_secs(max as u64),
                Timer::RecordingMax { name },
            );
        }
        reply
    }

    fn finish_recording(&mut self, name: &str) {
        let Some(mut r) = self.recordings.remove(name) else {
            return;
        };
        let elapsed_ms = (self.now.unix_millis - r.started_at).max(0);
        r.rec.state = "done".into();
        r.rec.duration = Some(elapsed_ms / 1000);
        let twice = r.bridge.is_some();
        self.emit(
            EventKind::RecordingFinished {
                recording: r.rec.clone(),
            },
            Route::Owner(r.app.clone(), twice),
        );
        // 8 kHz, 16-bit mono: 16,000 bytes a second after a 44-byte header (b: ~4 s, 64,364 B).
        let bytes = 44 + (elapsed_ms as usize) * 16;
        self.stored
            .insert(name.to_owned(), (r.rec.format.clone(), bytes));
        if let Some(b) = r.bridge {
            let order = if let Some(br) = self.bridges.get_mut(&b) {
                br.recorder = None;
                br.order.clone()
            } else {
                Vec::new()
            };
            self.bridge_peer_vars(&order, true);
            self.device_state("Recorder/ARI", "INUSE");
            self.device_state("Recorder/ARI", "UNKNOWN");
        }
    }

    /// `GET /recordings/live/{name}`.
    pub fn get_live(&self, name: &str) -> Reply {
        match self.recordings.get(name) {
            Some(r) => Reply::ok(json!(r.rec)),
            None => Reply::error(404, "Recording not found"),
        }
    }

    /// `POST /recordings/live/{name}/stop`.
    pub fn stop_recording(&mut self, name: &str) -> Reply {
        if !self.recordings.contains_key(name) {
            return Reply::error(404, "Recording not found");
        }
        self.finish_recording(name);
        Reply::no_content()
    }

    /// `DELETE /recordings/live/{name}`: discard.
    pub fn cancel_recording(&mut self, name: &str) -> Reply {
        if self.recordings.remove(name).is_none() {
            return Reply::error(404, "Recording not found");
        }
        Reply::no_content()
    }

    /// `GET /recordings/stored`.
    pub fn list_stored(&self) -> Reply {
        let list: Vec<Value> = self
            .stored
            .iter()
            .map(|(name, (format, _))| json!({"name": name, "format": format}))
            .collect();
        Reply::ok(json!(list))
    }

    /// `GET /recordings/stored/{name}`.
    pub fn get_stored(&self, name: &str) -> Reply {
        match self.stored.get(name) {
            Some((format, _)) => Reply::ok(json!({"name": name, "format": format})),
            None => Reply::error(404, "Recording not found"),
        }
    }

    /// `GET /recordings/stored/{name}/file`: a WAV of silence of the recorded length.
    pub fn stored_file(&self, name: &str) -> Reply {
        let Some((_, bytes)) = self.stored.get(name) else {
            return Reply::error(404, "Recording not found");
        };
        let data_len = bytes.saturating_sub(44) as u32;
        let mut wav = Vec::with_capacity(*bytes);
        wav.extend_from_slice(b"RIFF");
        wav.extend_from_slice(&(36 + data_len).to_le_bytes());
        wav.extend_from_slice(b"WAVEfmt ");
        wav.extend_from_slice(&16u32.to_le_bytes());
        wav.extend_from_slice(&1u16.to_le_bytes());
        wav.extend_from_slice(&1u16.to_le_bytes());
        wav.extend_from_slice(&8000u32.to_le_bytes());
        wav.extend_from_slice(&16000u32.to_le_bytes());
        wav.extend_from_slice(&2u16.to_le_bytes());
        wav.extend_from_slice(&16u16.to_le_bytes());
        wav.extend_from_slice(b"data");
        wav.extend_from_slice(&data_len.to_le_bytes());
        wav.resize(*bytes, 0);
        Reply {
            status: 200,
            reason: "OK",
            body: None,
            location: None,
            allow: None,
            raw: Some(("audio/wav", wav)),
        }
    }

    /// `DELETE /recordings/stored/{name}`.
    pub fn delete_stored(&mut self, name: &str) -> Reply {
        if self.stored.remove(name).is_none() {
            return Reply::error(404, "Recording not found");
        }
        Reply::no_content()
    }

    // ---------------------------------------------------------------- bridges

    fn bridge_json(&self, id: &str) -> Option<Bridge> {
        self.bridges.get(id).map(|b| b.bridge.clone())
    }

    /// `POST /bridges[/{id}]` (b, e).
    pub fn create_bridge(&mut self, path_id: Option<&str>, p: &Params) -> Reply {
        let kind = p.get("type").unwrap_or("mixing");
        let mut bridge_type = "mixing";
        for flag in kind.split(',') {
            match flag {
                "mixing" | "dtmf_events" | "proxy_media" | "video_sfu" | "video_single"
                | "sdp_label" => {}
                "holding" => bridge_type = "holding",
                _ => {
                    return Reply::error(
                        500,
                        "Unable to create bridge. Possible duplicate bridge id '(null)'",
                    )
                    .with_reason("Internal Error");
                }
            }
        }
        let id = path_id
            .map(str::to_owned)
            .or_else(|| p.get("bridgeId").map(str::to_owned))
            .unwrap_or_else(|| self.uuid());
        if self.bridges.contains_key(&id) {
            return Reply::error(409, &format!("Bridge with id '{id}' already exists"));
        }
        let bridge = Bridge {
            id: id.clone(),
            technology: if bridge_type == "holding" {
                "holding_bridge"
            } else {
                "simple_bridge"
            }
            .into(),
            bridge_type: bridge_type.into(),
            bridge_class: "stasis".into(),
            creator: "Stasis".into(),
            name: p.get("name").unwrap_or("").to_owned(),
            channels: Vec::new(),
            creationtime: self.now,
            video_mode: Some("talker".into()),
            video_source_id: None,
            bridgevars: None,
        };
        self.bridges.insert(
            id.clone(),
            Br {
                bridge: bridge.clone(),
                order: Vec::new(),
                recorder: None,
            },
        );
        // subscribeAll only: an app-created bridge is subscribed after its creation.
        self.emit(
            EventKind::BridgeCreated {
                bridge: bridge.clone(),
            },
            Route::Bridge(id),
        );
        Reply::ok(json!(bridge))
    }

    /// `GET /bridges`.
    pub fn list_bridges(&self) -> Reply {
        let list: Vec<&Bridge> = self.bridges.values().map(|b| &b.bridge).collect();
        Reply::ok(json!(list))
    }

    /// `GET /bridges/{id}` (404 reason "Not found", lower-case f).
    pub fn get_bridge(&self, id: &str) -> Reply {
        match self.bridge_json(id) {
            Some(b) => Reply::ok(json!(b)),
            None => Reply::error(404, "Bridge not found").with_reason("Not found"),
        }
    }

    fn sync_bridge_channels(&mut self, id: &str) {
        if let Some(b) = self.bridges.get_mut(id) {
            let set: BTreeSet<String> = b.order.iter().cloned().collect();
            b.bridge.channels = set.into_iter().collect();
        }
    }

    /// Sets BRIDGEPEER (and BRIDGEPVTCALLID) on each channel of a bridge (b, f, h).
    fn bridge_peer_vars(&mut self, order: &[String], only_peer: bool) {
        let recorder = order
            .first()
            .and_then(|c| self.channels.get(c))
            .and_then(|c| c.bridge.clone())
            .and_then(|b| self.bridges.get(&b))
            .and_then(|b| b.recorder.clone());
        for id in order {
            let mut others: Vec<String> = Vec::new();
            if let Some(r) = &recorder {
                others.push(r.clone());
            }
            let mut call_id = None;
            for o in order.iter().filter(|o| *o != id) {
                if let Some(c) = self.channels.get(o) {
                    others.push(c.ch.name.clone());
                    if !c.ch.protocol_id.is_empty() {
                        call_id = Some(c.ch.protocol_id.clone());
                    }
                }
            }
            if others.is_empty() {
                continue;
            }
            self.varset(id, "BRIDGEPEER", &others.join(","));
            if !only_peer && let Some(call_id) = call_id {
                self.varset(id, "BRIDGEPVTCALLID", &call_id);
            }
        }
    }

    fn clear_bridge_vars(&mut self, id: &str) {
        for var in ["BRIDGEPEER", "BRIDGEPVTCALLID"] {
            let set = self
                .channels
                .get(id)
                .is_some_and(|c| c.vars.get(var).is_some_and(|v| !v.is_empty()));
            if set {
                self.varset(id, var, "");
            }
        }
    }

    fn leave_bridge(&mut self, id: &str, bridge: &str) {
        if let Some(b) = self.bridges.get_mut(bridge) {
            b.order.retain(|c| c != id);
        }
        self.sync_bridge_channels(bridge);
        let Some(b) = self.bridge_json(bridge) else {
            return;
        };
        if let Some(c) = self.channels.get_mut(id) {
            c.bridge = None;
        }
        let Some(channel) = self.snapshot(id) else {
            return;
        };
        self.emit(
            EventKind::ChannelLeftBridge { bridge: b, channel },
            Route::Channel(id.to_owned(), Some(bridge.to_owned())),
        );
    }

    fn enter_bridge(&mut self, id: &str, bridge: &str) {
        if let Some(b) = self.bridges.get_mut(bridge) {
            b.order.push(id.to_owned());
        }
        self.sync_bridge_channels(bridge);
        if let Some(c) = self.channels.get_mut(id) {
            c.bridge = Some(bridge.to_owned());
        }
        let (Some(b), Some(channel)) = (self.bridge_json(bridge), self.snapshot(id)) else {
            return;
        };
        self.emit(
            EventKind::ChannelEnteredBridge {
                bridge: b,
                channel: Some(channel),
            },
            Route::Channel(id.to_owned(), Some(bridge.to_owned())),
        );
    }

    /// `POST /bridges/{id}/addChannel` (b, e, f, h).
    pub fn add_channels(&mut self, bridge: &str, p: &Params, app: &str) -> Reply {
        let channels = p.list("channel");
        if channels.is_empty() {
            return Reply::error(400, "Missing parameter channel");
        }
        if !self.bridges.contains_key(bridge) {
            return Reply::error(404, "Bridge not found").with_reason("Not found");
        }
        for c in &channels {
            if !self.exists(c) {
                return Reply::error(400, "Channel not found");
            }
            if !self.in_stasis(c) {
                return Reply::error(422, "Channel not in Stasis application");
            }
        }
        for c in &channels {
            if let Some(s) = self.subs.get_mut(app) {
                *s.bridges.entry(bridge.to_owned()).or_insert(0) += 1;
            }
            let current = self.channels.get(c).and_then(|ch| ch.bridge.clone());
            if let Some(old) = current {
                // e: adding a channel already in the bridge: it leaves, then enters again.
                self.clear_bridge_vars(c);
                self.leave_bridge(c, &old);
            }
            self.enter_bridge(c, bridge);
        }
        let order = self
            .bridges
            .get(bridge)
            .map(|b| b.order.clone())
            .unwrap_or_default();
        if order.len() >= 2 {
            self.bridge_peer_vars(&order, false);
            // Connected line follows the peer's caller id, newest first (b, f, h).
            for id in order.iter().rev() {
                let peer_caller = order
                    .iter()
                    .find(|o| *o != id)
                    .and_then(|o| self.channels.get(o))
                    .map(|c| c.ch.caller.clone());
                let changed = match (self.channels.get_mut(id), peer_caller) {
                    (Some(c), Some(pc)) if c.ch.connected != pc => {
                        c.ch.connected = pc;
                        true
                    }
                    _ => false,
                };
                if changed {
                    self.ev_channel(id, |channel| EventKind::ChannelConnectedLine { channel });
                }
            }
        }
        Reply::no_content()
    }

    /// `POST /bridges/{id}/removeChannel` (b).
    pub fn remove_channels(&mut self, bridge: &str, p: &Params, app: &str) -> Reply {
        let channels = p.list("channel");
        if channels.is_empty() {
            return Reply::error(400, "Missing parameter channel");
        }
        if !self.bridges.contains_key(bridge) {
            return Reply::error(404, "Bridge not found").with_reason("Not found");
        }
        for c in &channels {
            if !self.exists(c) {
                return Reply::error(400, "Channel not found");
            }
            if self.channels.get(c).and_then(|ch| ch.bridge.as_deref()) != Some(bridge) {
                return Reply::error(422, "Channel not in this bridge");
            }
        }
        for c in &channels {
            if let Some(n) = self
                .subs
                .get_mut(app)
                .and_then(|s| s.bridges.get_mut(bridge))
            {
                *n = n.saturating_sub(1);
            }
            self.clear_bridge_vars(c);
            self.leave_bridge(c, bridge);
        }
        Reply::no_content()
    }

    /// `DELETE /bridges/{id}` (d, e: channels leave, newest first; then BridgeDestroyed).
    pub fn destroy_bridge(&mut self, bridge: &str) -> Reply {
        let Some(b) = self.bridges.get(bridge) else {
            return Reply::error(404, "Bridge not found").with_reason("Not found");
        };
        let order = b.order.clone();
        for c in &order {
            self.clear_bridge_vars(c);
        }
        for c in order.iter().rev() {
            self.leave_bridge(c, bridge);
        }
        if let Some(b) = self.bridge_json(bridge) {
            self.emit(
                EventKind::BridgeDestroyed { bridge: b },
                Route::Bridge(bridge.to_owned()),
            );
        }
        self.bridges.remove(bridge);
        for s in self.subs.values_mut() {
            s.bridges.remove(bridge);
        }
        Reply::no_content()
    }

    // ---------------------------------------------------------------- asterisk, endpoints

    /// `GET /asterisk/info` (e).
    pub fn info(&self, p: &Params) -> Reply {
        let only = p.list("only");
        let want = |k: &str| only.is_empty() || only.iter().any(|o| o == k);
        let mut m = serde_json::Map::new();
        let start = AriTime::from_unix_millis(self.config.epoch_secs * 1000).to_string();
        if want("build") {
            m.insert("build".into(), json!({"os": "Linux", "kernel": "6.18.44", "machine": "x86_64", "options": "OPTIONAL_API", "date": "2026-11-21 21:05:00 UTC", "user": "root"}));
        }
        if want("system") {
            m.insert(
                "system".into(),
                json!({"version": self.config.version, "entity_id": self.config.asterisk_id}),
            );
        }
        if want("config") {
            m.insert(
                "config".into(),
                json!({"name": "", "default_language": "en", "setid": {"user": "", "group": ""}}),
            );
        }
        if want("status") {
            m.insert(
                "status".into(),
                json!({"startup_time": start, "last_reload_time": start}),
            );
        }
        Reply::ok(Value::Object(m))
    }

    /// `GET /asterisk/ping`.
    pub fn ping(&self) -> Reply {
        Reply::ok(
            json!({"ping": "pong", "timestamp": self.now.to_string(), "asterisk_id": self.config.asterisk_id}),
        )
    }

    /// `GET /asterisk/variable`.
    pub fn global_variable(&self, p: &Params) -> Reply {
        let Some(name) = p.get("variable") else {
            return Reply::error(400, "Variable name is required");
        };
        let value = match name {
            "ASTETCDIR" => Some("/etc/asterisk".to_owned()),
            other => self.globals.get(other).cloned(),
        };
        match value {
            Some(v) => Reply::ok(json!({"value": v})),
            None => Reply::ok(json!({"value": ""})),
        }
    }

    /// `POST /asterisk/variable`.
    pub fn set_global_variable(&mut self, p: &Params) -> Reply {
        let Some(name) = p.get("variable").map(str::to_owned) else {
            return Reply::error(400, "Variable name is required");
        };
        let value = p.values.get("value").cloned().unwrap_or_default();
        self.globals.insert(name.clone(), value.clone());
        self.emit(
            EventKind::ChannelVarset {
                variable: name,
                value,
                channel: None,
            },
            Route::Device,
        );
        Reply::no_content()
    }

    fn endpoint_json(&self, e: &EndpointConfig) -> Value {
        let ids: Vec<&String> = self
            .channels
            .iter()
            .filter(|(_, c)| matches!(&c.tech, Tech::Pjsip { endpoint } if *endpoint == e.resource))
            .map(|(id, _)| id)
            .collect();
        json!({"technology": "PJSIP", "resource": e.resource, "state": "online", "channel_ids": ids})
    }

    /// `GET /endpoints[/{tech}[/{resource}]]` (e, f).
    pub fn endpoints(&self, tech: Option<&str>, resource: Option<&str>) -> Reply {
        if let Some(t) = tech
            && t != "PJSIP"
        {
            return Reply::error(404, "No Endpoints found - invalid tech");
        }
        match resource {
            Some(r) => match self.config.endpoints.iter().find(|e| e.resource == r) {
                Some(e) => Reply::ok(self.endpoint_json(e)),
                None => Reply::error(404, "Endpoint not found"),
            },
            None => Reply::ok(Value::Array(
                self.config
                    .endpoints
                    .iter()
                    .map(|e| self.endpoint_json(e))
                    .collect(),
            )),
        }
    }

    /// `GET /applications[/{name}]` (e).
    pub fn applications(&self, name: Option<&str>) -> Reply {
        let app_json = |app: &str| {
            let all = self
                .apps
                .get(app)
                .and_then(|s| self.sockets.get(s))
                .is_some_and(|s| s.subscribe_all);
            let subs = self.subs.get(app).cloned().unwrap_or_default();
            let (channels, bridges, endpoints, devices): (
                Vec<String>,
                Vec<String>,
                Vec<String>,
                Vec<String>,
            ) = if all {
                (
                    vec!["__AST_CHANNEL_ALL_TOPIC".into()],
                    vec!["__AST_BRIDGE_ALL_TOPIC".into()],
                    vec!["__AST_ENDPOINT_ALL_TOPIC".into()],
                    vec!["__AST_DEVICE_STATE_ALL_TOPIC".into()],
                )
            } else {
                (
                    subs.channels.iter().cloned().collect(),
                    subs.bridges
                        .iter()
                        .filter(|(_, n)| **n > 0)
                        .map(|(b, _)| b.clone())
                        .collect(),
                    Vec::new(),
                    Vec::new(),
                )
            };
            json!({"name": app, "channel_ids": channels, "bridge_ids": bridges, "endpoint_ids": endpoints, "device_names": devices, "events_allowed": [], "events_disallowed": []})
        };
        match name {
            Some(n) if self.apps.contains_key(n) => Reply::ok(app_json(n)),
            Some(_) => Reply::error(404, "Application not found"),
            None => {
                let mut names: Vec<&String> = self.apps.keys().collect();
                names.sort();
                Reply::ok(Value::Array(
                    names.into_iter().map(|n| app_json(n)).collect(),
                ))
            }
        }
    }

    /// `GET /sounds[/{id}]` (e: a filtered list is 404; hello-world is `slin`).
    pub fn sounds(&self, id: Option<&str>, p: &Params) -> Reply {
        match id {
            Some(id) => match self.config.sounds.get(id) {
                Some(_) => {
                    Reply::ok(json!({"id": id, "formats": [{"language": "en", "format": "slin"}]}))
                }
                None => Reply::error(404, "Sound not found"),
            },
            None if p.get("format").is_some() || p.get("lang").is_some() => {
                Reply::error(404, "No sounds found that matched the query")
            }
            None => Reply::ok(Value::Array(
                self.config
                    .sounds
                    .keys()
                    .map(|id| json!({"id": id, "formats": [{"language": "en", "format": "slin"}]}))
                    .collect(),
            )),
        }
    }

    /// `GET /asterisk/modules/{name}`.
    pub fn module(&self, name: &str) -> Reply {
        let description = match name {
            "res_ari.so" => "Asterisk RESTful Interface",
            "res_stasis.so" => "Stasis application support",
            "chan_pjsip.so" => "PJSIP Channel Driver",
            "app_stasis.so" => "Stasis dialplan application",
            _ => return Reply::error(404, "Module could not be found in running modules"),
        };
        Reply::ok(
            json!({"name": name, "description": description, "use_count": 12, "status": "Running", "support_level": "core"}),
        )
    }

    // ---------------------------------------------------------------- timers and faults

    /// A timer fired.
    pub fn fire(&mut self, timer: Timer) {
        match timer {
            Timer::PlaybackItemDone { playback, epoch } => {
                if self
                    .playbacks
                    .get(&playback)
                    .is_some_and(|p| p.epoch == epoch && !p.paused)
                {
                    self.item_done(&playback);
                }
            }
            Timer::RecordingMax { name } => self.finish_recording(&name),
            Timer::DialplanNext { channel, epoch } => {
                let current = self
                    .channels
                    .get(&channel)
                    .is_some_and(|c| c.epoch == epoch);
                if current {
                    let last = self
                        .channels
                        .get(&channel)
                        .and_then(|c| c.program.as_ref())
                        .and_then(|(_, _, steps, pc)| {
                            pc.checked_sub(1).and_then(|i| steps.get(i)).cloned()
                        });
                    if let Some(Step::Playback(_)) = last {
                        self.varset(&channel, "PLAYBACKSTATUS", "SUCCESS");
                    }
                    self.run_program(&channel);
                }
            }
            Timer::DialAnswer { channel } => {
                let Some(Tech::Pjsip { endpoint }) =
                    self.channels.get(&channel).map(|c| c.tech.clone())
                else {
                    return;
                };
                if self
                    .channels
                    .get(&channel)
                    .is_some_and(|c| c.ch.state == ChannelState::Up)
                {
                    return;
                }
                self.set_state(&channel, ChannelState::Up);
                self.dial_event(&channel, "ANSWER", "");
                self.device_state(&format!("PJSIP/{endpoint}"), "INUSE");
                if let Some((app, args)) = self
                    .channels
                    .get_mut(&channel)
                    .and_then(|c| c.app_on_answer.take())
                    && !self.in_stasis(&channel)
                {
                    self.enter_stasis(&channel, &app, args);
                }
            }
            Timer::DialTimeout { channel } => {
                if self
                    .channels
                    .get(&channel)
                    .is_some_and(|c| c.ch.state != ChannelState::Up)
                {
                    self.hangup(&channel, Hangup::NoAnswer);
                }
            }
            Timer::OriginateTimeout { channel } => {
                let ringing = self
                    .channels
                    .get(&channel)
                    .is_some_and(|c| c.ch.state != ChannelState::Up && c.app_on_answer.is_some());
                if ringing {
                    self.no_answer_local(&channel);
                }
            }
            Timer::Dtmf {
                channel,
                digit,
                duration_ms,
            } => {
                if self.exists(&channel) {
                    self.ev_channel(&channel, |ch| EventKind::ChannelDtmfReceived {
                        digit: digit.to_string(),
                        duration_ms,
                        channel: ch,
                    });
                }
            }
            Timer::CallerHangup { channel } => self.hangup(&channel, Hangup::Remote),
        }
    }

    /// h1: an app originate toward a Local extension that never answers.
    fn no_answer_local(&mut self, one: &str) {
        let Some((1, two)) = self.local_peer(one) else {
            return;
        };
        self.ev_channel(&two, |channel| EventKind::ChannelHangupRequest {
            cause: Some(19),
            tech_cause: None,
            soft: None,
            channel,
        });
        self.destroy(one, 19, None);
        self.ev_channel(&two, |channel| EventKind::ChannelHangupRequest {
            cause: Some(16),
            tech_cause: None,
            soft: Some(true),
            channel,
        });
        self.destroy(&two, 19, None);
        if let Some(d) = self.device_name(one) {
            self.device_state(&d, "NOT_INUSE");
            self.device_state(&d, "NOT_INUSE");
        }
        self.remove_channel_record(&two);
        self.remove_channel_record(one);
    }

    /// Fault: the far end of a channel hangs up now, with a Q.850 `cause` (16: a BYE).
    pub fn kill_channel(&mut self, id: &str, cause: i64) -> bool {
        if !self.exists(id) {
            return false;
        }
        if cause == 16 {
            self.hangup(id, Hangup::Remote);
        } else {
            self.hangup(id, Hangup::Kill(cause));
        }
        true
    }

    /// A scripted caller sends DTMF now.
    pub fn caller_dtmf(&mut self, id: &str, digits: &str) -> bool {
        if !self.exists(id) {
            return false;
        }
        let mut at = Duration::ZERO;
        for digit in digits.chars() {
            self.arm(
                at,
                Timer::Dtmf {
                    channel: id.to_owned(),
                    digit,
                    duration_ms: 280,
                },
            );
            at += Duration::from_millis(400);
        }
        true
    }
}

/// What `play` and `record` act on.
#[derive(Debug, Clone, Copy)]
pub enum PlayTarget<'a> {
    /// A channel.
    Channel(&'a str),
    /// A bridge.
    Bridge(&'a str),
}

enum MediaKind {
    Finite(Duration),
    Endless,
    Missing,
    Stuck,
}

/// Why a channel hangs up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hangup {
    /// `DELETE /channels/{id}` (a Q.850 reason code, if given).
    Ari(Option<i64>),
    /// The far end sent BYE.
    Remote,
    /// The far end answered 486.
    Busy,
    /// Nobody answered.
    NoAnswer,
    /// The dialplan ended.
    Dialplan,
    /// A fault: the channel dies with this cause.
    Kill(i64),
}
