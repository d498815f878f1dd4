//! The simulated FreeSWITCH: channels and their applications (answer, park, playback with a
//! duration, conference, outbound socket), bridges, recordings, conferences, directory users
//! (and their softphones' SIP registrations) and gateways with scripted behaviour, the log
//! streamed to sessions after `log <level>`, and the event socket sessions with their
//! subscriptions and filters. Sans-IO: every call takes the current time (set with
//! [`World::set_now`]); frames for the connections, connections to open and timers to arm
//! pile up in an outbox the server drains after each call ([`World::drain`]).
//!
//! Event sequences and reply texts follow the captures in `fixtures/esl/` (FreeSWITCH
//! 1.10.12); comments name the capture a sequence was read from.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::time::Duration;

use crate::media::LegId;
use crate::media::freeswitch::codec::{
    ApplicationUuid, CallCommand, Command, DisconnectNotice, Disposition, EventFormat, GOODBYE,
    JobUuid, OwnedEvent, SendMsg, ServerFrame,
};

use super::dial::{Endpoint, Then, parse_dial_string, parse_then, split_command, tone_duration};
use super::log::{self as logs, LogLevel, Site};
use super::registry::{self, Reg, Registration};

/// Commands a session may queue while a blocking `api` runs, before it is dropped.
const MAX_QUEUED_COMMANDS: usize = 1024;
/// Channels the switch holds at most (FreeSWITCH's `max-sessions` default).
const MAX_CHANNELS: usize = 1000;
/// Filters one session may hold.
const MAX_FILTERS: usize = 256;

/// How a directory user's softphone or a gateway answers when dialled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialBehaviour {
    /// Rings for `ring`, then answers.
    Answer {
        /// How long it rings.
        ring: Duration,
    },
    /// Answers 486 Busy Here: the originate fails with USER_BUSY.
    Busy,
    /// Rings until the originate times out: NO_ANSWER.
    NoAnswer,
}

/// One dialplan application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum App {
    /// `answer`.
    Answer,
    /// `park`: wait for a controller.
    Park,
    /// `playback <file>`: lasts the file's duration.
    Playback(String),
    /// `hangup [<cause>]`.
    Hangup(Option<String>),
    /// `conference <name>[@<profile>]`.
    Conference(String),
    /// `socket <host:port> async full`: hand the channel to an outbound event socket server.
    Socket {
        /// `host:port`.
        target: String,
    },
    /// `set <var>=<value>`.
    Set(String, String),
    /// `bridge <dial string>`.
    Bridge(String),
    /// Any other application: runs at once and completes.
    Other(String, String),
}

impl App {
    /// The application from its name and argument, as sendmsg and dialplans give them.
    pub fn from_parts(name: &str, arg: &str) -> App {
        match name {
            "answer" | "pre_answer" => App::Answer,
            "park" => App::Park,
            "playback" => App::Playback(arg.to_owned()),
            "hangup" => App::Hangup((!arg.trim().is_empty()).then(|| arg.trim().to_owned())),
            "conference" => App::Conference(arg.to_owned()),
            "socket" => App::Socket {
                target: arg.split_whitespace().next().unwrap_or("").to_owned(),
            },
            "set" => match arg.split_once('=') {
                Some((k, v)) => App::Set(k.to_owned(), v.to_owned()),
                None => App::Other(name.to_owned(), arg.to_owned()),
            },
            "bridge" => App::Bridge(arg.to_owned()),
            _ => App::Other(name.to_owned(), arg.to_owned()),
        }
    }

    fn name(&self) -> &str {
        match self {
            App::Answer => "answer",
            App::Park => "park",
            App::Playback(_) => "playback",
            App::Hangup(_) => "hangup",
            App::Conference(_) => "conference",
            App::Socket { .. } => "socket",
            App::Set(..) => "set",
            App::Bridge(_) => "bridge",
            App::Other(n, _) => n,
        }
    }

    fn arg(&self) -> String {
        match self {
            App::Answer | App::Park => String::new(),
            App::Playback(a) | App::Conference(a) | App::Bridge(a) | App::Other(_, a) => a.clone(),
            App::Hangup(c) => c.clone().unwrap_or_default(),
            App::Socket { target } => format!("{target} async full"),
            App::Set(k, v) => format!("{k}={v}"),
        }
    }
}

/// The emulated switch's configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct WorldConfig {
    /// The event socket password (`ClueCon` by default, as FreeSWITCH ships).
    pub password: String,
    /// `apply-inbound-acl` denies every client: connections get a rude rejection.
    pub acl_deny: bool,
    /// `FreeSWITCH-Hostname` in events.
    pub hostname: String,
    /// The SIP domain (`domain` global variable).
    pub domain: String,
    /// Directory users (`user/<name>`): how each softphone answers. Other names are not in
    /// the directory (SUBSCRIBER_ABSENT).
    pub users: BTreeMap<String, DialBehaviour>,
    /// Every directory user's softphone is registered from the start (and keeps
    /// re-registering); false: none is until a scripted [`Registration`], and `user/<name>`
    /// of an unregistered user fails with USER_NOT_REGISTERED.
    pub softphones_registered: bool,
    /// Gateways (`sofia/gateway/<name>/<number>`): how the far end answers.
    pub gateways: BTreeMap<String, DialBehaviour>,
    /// Dialplan of context `default`: extension → applications.
    pub dialplan: BTreeMap<String, Vec<App>>,
    /// Applications for inbound numbers the dialplan does not name.
    pub inbound: Vec<App>,
    /// Playback durations per file; tone_stream durations come from the tone itself.
    pub playback_durations: BTreeMap<String, Duration>,
    /// Duration of any other file.
    pub default_playback: Duration,
    /// How long an unanswered originate rings before NO_ANSWER (`originate_timeout`).
    pub originate_timeout: Duration,
}

impl WorldConfig {
    /// A switch like the capture machine's (fixtures/esl/README.md): password `password`,
    /// users 1000-1019 answering after a second, and extensions 7200-7210. Inbound numbers
    /// the dialplan does not name go to `outbound_target` (`socket … async full`) when given,
    /// else are answered and parked.
    pub fn capture(password: &str, outbound_target: Option<&str>) -> Self {
        let mut dialplan = BTreeMap::new();
        dialplan.insert("7200".to_owned(), vec![App::Answer, App::Park]);
        dialplan.insert(
            "7201".to_owned(),
            vec![
                App::Answer,
                App::Playback("tone_stream://%(1000,0,440)".into()),
                App::Hangup(None),
            ],
        );
        dialplan.insert(
            "7202".to_owned(),
            vec![
                App::Set("interop_tag".into(), "outbound-esl".into()),
                App::Socket {
                    target: outbound_target.unwrap_or("127.0.0.1:8084").to_owned(),
                },
            ],
        );
        dialplan.insert(
            "7203".to_owned(),
            vec![App::Answer, App::Conference("cc-1@default".into())],
        );
        dialplan.insert(
            "7205".to_owned(),
            vec![
                App::Answer,
                App::Playback("tone_stream://%(1000,1000,440);loops=-1".into()),
            ],
        );
        dialplan.insert("7210".to_owned(), vec![App::Answer, App::Park]);
        let users = (1000..1020)
            .map(|n| {
                (
                    n.to_string(),
                    DialBehaviour::Answer {
                        ring: Duration::from_secs(1),
                    },
                )
            })
            .collect();
        // `carrier` as in freeswitch-conf/sip_profiles/external/switchboard-carrier.xml.
        let mut gateways = BTreeMap::new();
        for name in ["carrier", "pstn"] {
            gateways.insert(
                name.to_owned(),
                DialBehaviour::Answer {
                    ring: Duration::from_secs(2),
                },
            );
        }
        let inbound = match outbound_target {
            Some(target) => vec![App::Socket {
                target: target.to_owned(),
            }],
            None => vec![
                App::Set("switchboard_inbound".into(), "true".into()),
                App::Answer,
                App::Park,
            ],
        };
        WorldConfig {
            password: password.to_owned(),
            acl_deny: false,
            hostname: "switchboard-emulator".to_owned(),
            domain: "127.0.0.1".to_owned(),
            users,
            softphones_registered: true,
            gateways,
            dialplan,
            inbound,
            playback_durations: BTreeMap::new(),
            default_playback: Duration::from_secs(3),
            originate_timeout: Duration::from_secs(60),
        }
    }
}

/// An event socket connection, inbound (a client connected) or outbound (the `socket`
/// application connected out).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u64);

/// A scripted inbound SIP call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundCall {
    /// The caller's number (`15551230000`).
    pub caller_number: String,
    /// The caller's name.
    pub caller_name: String,
    /// The number dialled (`5000`).
    pub destination: String,
    /// Channel variables the call arrives with (from SIP headers, say).
    pub vars: Vec<(String, String)>,
    /// DTMF the caller presses once answered: (delay after answer, digits).
    pub dtmf: Vec<(Duration, String)>,
    /// The caller hangs up this long after the call arrives.
    pub hangup_after: Option<Duration>,
}

impl InboundCall {
    /// A call from `caller_number` to `destination` that waits forever and presses nothing.
    pub fn new(caller_number: &str, destination: &str) -> Self {
        InboundCall {
            caller_number: caller_number.to_owned(),
            caller_name: caller_number.to_owned(),
            destination: destination.to_owned(),
            vars: Vec::new(),
            dtmf: Vec::new(),
            hangup_after: None,
        }
    }
}

/// What the server must do after a call into the world.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Write these bytes to that session's connection.
    Send {
        /// The session.
        session: SessionId,
        /// One or more whole frames.
        bytes: Vec<u8>,
    },
    /// Close that session's connection once what was sent before is written.
    Close {
        /// The session.
        session: SessionId,
    },
    /// Open an outbound event socket connection to `target` for `session`, then call
    /// [`World::outbound_connected`] or [`World::outbound_failed`].
    Connect {
        /// The new session.
        session: SessionId,
        /// `host:port`.
        target: String,
    },
    /// Call [`World::fire`] with `timer` after `after` (emulated time).
    Arm {
        /// The delay.
        after: Duration,
        /// What.
        timer: Timer,
    },
}

/// A timer the world armed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Timer {
    /// The running application of a channel ends (playback done).
    AppDone {
        /// The channel.
        uuid: LegId,
        /// The application's generation; older timers are stale.
        token: u64,
    },
    /// A ringing leg answers.
    Answer {
        /// The channel.
        uuid: LegId,
    },
    /// A ringing leg gives up.
    NoAnswer {
        /// The channel.
        uuid: LegId,
    },
    /// A scripted caller presses digits.
    CallerDtmf {
        /// The channel.
        uuid: LegId,
        /// The digits.
        digits: String,
    },
    /// A scripted caller hangs up.
    CallerHangup {
        /// The channel.
        uuid: LegId,
    },
    /// A lingering session's time is up.
    Linger {
        /// The session.
        session: SessionId,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChanState {
    Init,
    Routing,
    Execute,
    ConsumeMedia,
    Hangup,
    Reporting,
}

impl ChanState {
    fn name(self) -> &'static str {
        match self {
            ChanState::Init => "CS_INIT",
            ChanState::Routing => "CS_ROUTING",
            ChanState::Execute => "CS_EXECUTE",
            ChanState::ConsumeMedia => "CS_CONSUME_MEDIA",
            ChanState::Hangup => "CS_HANGUP",
            ChanState::Reporting => "CS_REPORTING",
        }
    }

    fn number(self) -> u32 {
        match self {
            ChanState::Init => 1,
            ChanState::Routing => 2,
            ChanState::Execute => 4,
            ChanState::ConsumeMedia => 7,
            ChanState::Hangup => 10,
            ChanState::Reporting => 11,
        }
    }
}

/// One application run: the app, its `Event-UUID` and its remaining loops.
#[derive(Debug, Clone)]
struct Exec {
    app: App,
    app_uuid: Option<ApplicationUuid>,
    loops: u32,
}

impl Exec {
    fn new(app: App) -> Self {
        Exec {
            app,
            app_uuid: None,
            loops: 1,
        }
    }
}

/// What a channel is blocked in.
#[derive(Debug, Clone)]
enum Running {
    /// A playback whose timer carries `token`; `None`: endless.
    Playback { exec: Exec, token: u64 },
    /// A conference membership.
    Conference { exec: Exec },
    /// A bridge to another leg.
    Bridge { exec: Exec, peer: LegId },
    /// Waiting for an originated leg (the `bridge` app).
    Dialing { exec: Exec },
}

/// Who waits for an originate's answer.
#[derive(Debug, Clone)]
enum Origin {
    /// A blocking `api originate` of a session.
    Api(SessionId),
    /// A `bgapi originate`.
    Job { job: JobUuid, arg: String },
    /// `conference <name> dial`, from a blocking api.
    ConferenceDial { session: SessionId },
    /// The `bridge` application of a channel.
    Bridge { caller: LegId },
}

#[derive(Debug, Clone)]
struct Chan {
    uuid: LegId,
    name: String,
    outbound: bool,
    state: ChanState,
    call_state: &'static str,
    answer_state: &'static str,
    answered: bool,
    hit_dialplan: bool,
    created_us: i64,
    answered_us: i64,
    caller_name: String,
    caller_number: String,
    dest: String,
    context: String,
    source: &'static str,
    codec: (&'static str, u32, u32),
    vars: Vec<(String, String)>,
    cause: Option<String>,
    queue: VecDeque<Exec>,
    running: Option<Running>,
    /// The park (or socket) application the channel sits in; other apps run inside it.
    parked: Option<Exec>,
    socket: Option<SessionId>,
    loopback_peer: Option<LegId>,
    /// A leg that answers only when this (loopback B) leg answers.
    answer_with: Option<LegId>,
    originate: Option<(Origin, Option<Then>)>,
    recordings: Vec<(String, i64)>,
    held: bool,
    session_seq: u64,
    caller_script: Vec<(Duration, String)>,
    conference: Option<(String, u32)>,
    /// The `hangup` application that is ending the channel (completed after CHANNEL_HANGUP).
    hanging: Option<Exec>,
    /// An async outbound socket parked the channel (CHANNEL_UNPARK on hangup).
    socket_parked: bool,
    /// `Caller-Callee-ID-Number`: the context for a loopback A-leg (capture
    /// events_plain_loopback_call), else the destination.
    callee_number: String,
}

impl Chan {
    fn var(&self, name: &str) -> Option<&str> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn set_var(&mut self, name: &str, value: &str) {
        if let Some(slot) = self.vars.iter_mut().find(|(n, _)| n == name) {
            slot.1 = value.to_owned();
        } else {
            self.vars.push((name.to_owned(), value.to_owned()));
        }
    }

    fn unset_var(&mut self, name: &str) {
        self.vars.retain(|(n, _)| n != name);
    }

    fn alive(&self) -> bool {
        !matches!(self.state, ChanState::Hangup | ChanState::Reporting)
    }
}

#[derive(Debug, Clone)]
struct Member {
    uuid: LegId,
    can_speak: bool,
    joined_us: i64,
}

#[derive(Debug, Clone)]
struct Conf {
    uuid: String,
    created_us: i64,
    members: BTreeMap<u32, Member>,
    next_member: u32,
    floor: Option<u32>,
}

#[derive(Debug, Clone, Default)]
struct Subscription {
    format: Option<EventFormat>,
    all: bool,
    names: HashSet<String>,
    subclasses: HashSet<String>,
    nixed: HashSet<String>,
}

impl Subscription {
    fn wants(&self, name: &str, subclass: Option<&str>) -> bool {
        if self.format.is_none() || self.nixed.contains(name) {
            return false;
        }
        if self.all {
            return true;
        }
        match subclass {
            Some(sub) => self.names.contains("CUSTOM") && self.subclasses.contains(sub),
            None => self.names.contains(name),
        }
    }
}

#[derive(Debug, Clone)]
struct Session {
    authed: bool,
    outbound: Option<LegId>,
    connected: bool,
    parked_announced: bool,
    subs: Subscription,
    filters: Vec<(String, String)>,
    myevents: Option<LegId>,
    linger: Option<u32>,
    resume: bool,
    blocked: bool,
    queued: VecDeque<Command>,
    /// The bound channel ended: no more events.
    detached: bool,
    closing: bool,
    /// `log <level>`: log lines at this level or below come as `log/data` frames.
    log_level: Option<LogLevel>,
}

impl Session {
    fn new(outbound: Option<LegId>) -> Self {
        Session {
            authed: outbound.is_some(),
            outbound,
            connected: false,
            parked_announced: false,
            subs: Subscription::default(),
            filters: Vec::new(),
            myevents: None,
            linger: None,
            resume: false,
            blocked: false,
            queued: VecDeque::new(),
            detached: false,
            closing: false,
            log_level: None,
        }
    }
}

/// The simulated FreeSWITCH.
#[derive(Debug)]
pub struct World {
    config: WorldConfig,
    now_us: i64,
    started_us: i64,
    core_uuid: String,
    channels: BTreeMap<LegId, Chan>,
    conferences: BTreeMap<String, Conf>,
    sessions: BTreeMap<SessionId, Session>,
    globals: BTreeMap<String, String>,
    next_session: u64,
    event_seq: u64,
    session_count: u64,
    token: u64,
    rng: u64,
    refuse: bool,
    outbox: Vec<Output>,
    /// Where the running api command's reply belongs in the outbox.
    api_mark: Option<(SessionId, usize)>,
    /// Directory user → its softphone's registration (bounded by the directory).
    registrations: BTreeMap<String, Reg>,
    /// Directory user → when its last MESSAGE_QUERY fired (the registrar's debounce).
    mwi_sent: BTreeMap<String, i64>,
}

/// A FreeSWITCH-looking UUID from 128 random bits.
fn format_uuid(hi: u64, lo: u64) -> String {
    let b = ((hi as u128) << 64) | lo as u128;
    let h = format!("{b:032x}");
    format!(
        "{}-{}-4{}-{:x}{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        8 | (u8::from_str_radix(&h[16..17], 16).unwrap_or(0) & 3),
        &h[17..20],
        &h[20..32]
    )
}

impl World {
    /// A switch with `config`; `seed` makes its UUIDs reproducible; `now_us` is the current
    /// time (microseconds since 1970).
    pub fn new(config: WorldConfig, seed: u64, now_us: i64) -> Self {
        let mut globals = BTreeMap::new();
        globals.insert("domain".to_owned(), config.domain.clone());
        globals.insert("hostname".to_owned(), config.hostname.clone());
        globals.insert("switch_serial".to_owned(), "emulated".to_owned());
        let registrations = if config.softphones_registered {
            config
                .users
                .keys()
                .map(|u| (u.clone(), Reg::standing(u, &config.domain)))
                .collect()
        } else {
            BTreeMap::new()
        };
        let mut w = World {
            config,
            now_us,
            started_us: now_us,
            core_uuid: String::new(),
            channels: BTreeMap::new(),
            conferences: BTreeMap::new(),
            sessions: BTreeMap::new(),
            globals,
            next_session: 1,
            event_seq: 0,
            session_count: 0,
            token: 0,
            rng: seed | 1,
            refuse: false,
            outbox: Vec::new(),
            api_mark: None,
            registrations,
            mwi_sent: BTreeMap::new(),
        };
        w.core_uuid = w.uuid();
        w
    }

    /// Sets the current time (microseconds since 1970).
    pub fn set_now(&mut self, now_us: i64) {
        self.now_us = now_us.max(self.now_us);
    }

    /// Takes what the server must do.
    pub fn drain(&mut self) -> Vec<Output> {
        self.api_mark = None;
        std::mem::take(&mut self.outbox)
    }

    /// Fault: answer every command after auth with `-ERR` (`false`: stop).
    pub fn set_refuse(&mut self, refuse: bool) {
        self.refuse = refuse;
    }

    /// The channels that exist now.
    pub fn channel_ids(&self) -> Vec<LegId> {
        self.channels.keys().cloned().collect()
    }

    /// A channel variable of a live channel.
    pub fn channel_var(&self, uuid: &LegId, name: &str) -> Option<String> {
        self.channels
            .get(uuid)
            .and_then(|c| c.var(name).map(str::to_owned))
    }

    /// The sessions open now.
    pub fn session_ids(&self) -> Vec<SessionId> {
        self.sessions.keys().copied().collect()
    }

    /// Conferences that exist now.
    pub fn conference_names(&self) -> Vec<String> {
        self.conferences.keys().cloned().collect()
    }

    fn next_rand(&mut self) -> u64 {
        // xorshift64*: reproducible ids without a clock or an OS source.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn uuid(&mut self) -> String {
        let (a, b) = (self.next_rand(), self.next_rand());
        format_uuid(a, b)
    }

    fn send(&mut self, session: SessionId, frame: ServerFrame) {
        let mut bytes = Vec::new();
        match frame.encode(&mut bytes) {
            Ok(()) => self.outbox.push(Output::Send { session, bytes }),
            Err(e) => tracing::warn!(error = %e, "emulator: frame not encodable, dropped"),
        }
    }

    fn reply(&mut self, session: SessionId, text: impl Into<String>) {
        self.send(
            session,
            ServerFrame::CommandReply {
                reply_text: text.into(),
            },
        );
    }

    fn api_reply(&mut self, session: SessionId, body: impl Into<String>) {
        let mut bytes = Vec::new();
        if let Err(e) = (ServerFrame::ApiResponse { body: body.into() }).encode(&mut bytes) {
            tracing::warn!(error = %e, "emulator: api reply not encodable");
            return;
        }
        let out = Output::Send { session, bytes };
        // The api's own reply goes before the events it caused (captures
        // filter_myevents_nixevent_noevents, call_control…: `+OK` then CHANNEL_HANGUP).
        match self.api_mark.take() {
            Some((s, at)) if s == session && at <= self.outbox.len() => self.outbox.insert(at, out),
            _ => self.outbox.push(out),
        }
    }

    fn arm(&mut self, after: Duration, timer: Timer) {
        self.outbox.push(Output::Arm { after, timer });
    }

    fn goodbye(&mut self, session: SessionId, controlled: Option<LegId>) {
        let disposition = controlled.as_ref().map(|_| Disposition::Disconnect);
        self.send(
            session,
            ServerFrame::Disconnect(DisconnectNotice {
                controlled_session: controlled,
                disposition,
                channel_name: None,
                linger_time: None,
                body: GOODBYE.to_owned(),
            }),
        );
        self.close(session);
    }

    fn close(&mut self, session: SessionId) {
        if let Some(s) = self.sessions.get_mut(&session) {
            s.closing = true;
        }
        self.outbox.push(Output::Close { session });
    }

    // ---- sessions ------------------------------------------------------------------------

    /// A client connected to the event socket: greet it (`auth/request`) or, when the ACL
    /// denies it, send the rude rejection and the goodbye and close (capture
    /// `acl_rude_rejection`: no `auth/request` is sent).
    pub fn accept(&mut self) -> SessionId {
        let id = SessionId(self.next_session);
        self.next_session += 1;
        if self.config.acl_deny {
            self.sessions.insert(id, Session::new(None));
            self.send(id, ServerFrame::RudeRejection);
            self.goodbye(id, None);
            return id;
        }
        self.sessions.insert(id, Session::new(None));
        self.send(id, ServerFrame::AuthRequest);
        id
    }

    /// The connection of `session` closed (by the peer, a fault, or after a goodbye).
    pub fn closed(&mut self, session: SessionId) {
        let Some(s) = self.sessions.remove(&session) else {
            return;
        };
        // An outbound socket that ends without `resume` ends its call (mod_event_socket
        // hangs the channel up when the socket application returns).
        if let Some(uuid) = s.outbound {
            let alive = self.channels.get(&uuid).is_some_and(Chan::alive);
            if alive {
                if s.resume {
                    self.socket_returns(&uuid);
                } else {
                    self.hangup(&uuid, "NORMAL_CLEARING");
                }
            }
        }
    }

    /// The outbound connection of `session` is open: it now waits for `connect`.
    pub fn outbound_connected(&mut self, session: SessionId) {
        if let Some(s) = self.sessions.get_mut(&session) {
            s.connected = true;
        }
    }

    /// The outbound connection of `session` could not be opened: the call fails as
    /// FreeSWITCH fails it (the socket application returns and the dialplan ends).
    pub fn outbound_failed(&mut self, session: SessionId) {
        if let Some(s) = self.sessions.remove(&session)
            && let Some(uuid) = s.outbound
        {
            self.hangup(&uuid, "DESTINATION_OUT_OF_ORDER");
        }
    }

    /// A line the codec could not read as a command: FreeSWITCH answers `-ERR command not
    /// found` and keeps the connection.
    pub fn unreadable_command(&mut self, session: SessionId) {
        if self.sessions.contains_key(&session) {
            self.reply(session, "-ERR command not found");
        }
    }

    /// A command from the client of `session`.
    pub fn command(&mut self, session: SessionId, command: Command) {
        let Some(s) = self.sessions.get_mut(&session) else {
            return;
        };
        if s.closing {
            return;
        }
        if s.blocked {
            if s.queued.len() >= MAX_QUEUED_COMMANDS {
                tracing::warn!(?session, "emulator: too many queued commands, closing");
                self.close(session);
            } else {
                s.queued.push_back(command);
            }
            return;
        }
        self.run_command(session, command);
    }

    fn unblock(&mut self, session: SessionId) {
        loop {
            let Some(s) = self.sessions.get_mut(&session) else {
                return;
            };
            s.blocked = false;
            let Some(next) = s.queued.pop_front() else {
                return;
            };
            self.run_command(session, next);
            if self.sessions.get(&session).is_none_or(|s| s.blocked) {
                return;
            }
        }
    }

    fn run_command(&mut self, session: SessionId, command: Command) {
        let Some(s) = self.sessions.get(&session) else {
            return;
        };
        let outbound = s.outbound.clone();
        if !s.authed {
            // Capture auth_command_before_auth: everything but auth is "not found".
            match command {
                Command::Auth { password } => {
                    if password == self.config.password {
                        if let Some(s) = self.sessions.get_mut(&session) {
                            s.authed = true;
                        }
                        self.reply(session, "+OK accepted");
                    } else {
                        self.reply(session, "-ERR invalid");
                        self.goodbye(session, None);
                    }
                }
                _ => self.reply(session, "-ERR command not found"),
            }
            return;
        }
        if self.refuse && !matches!(command, Command::Exit | Command::Auth { .. }) {
            match command {
                Command::Api { .. } => self.api_reply(session, "-ERR emulator refuses commands\n"),
                _ => self.reply(session, "-ERR emulator refuses commands"),
            }
            return;
        }
        match command {
            Command::Auth { .. } => self.reply(session, "+OK accepted"),
            Command::Exit => {
                self.reply(session, "+OK bye");
                self.goodbye(session, None);
            }
            Command::Api { command } => self.api(session, &command),
            Command::BgApi { command, job_uuid } => {
                let job = job_uuid.unwrap_or_else(|| JobUuid::new(self.uuid()));
                self.send(
                    session,
                    ServerFrame::BgApiAccepted {
                        job_uuid: job.clone(),
                    },
                );
                self.bgapi(job, &command);
            }
            Command::Event { format, events } => {
                let s = self.session_mut(session);
                s.subs.format = Some(format);
                let mut custom = false;
                for e in events {
                    if e.eq_ignore_ascii_case("ALL") {
                        s.subs.all = true;
                    } else if e.contains("::") {
                        s.subs.subclasses.insert(e);
                    } else {
                        if e == "CUSTOM" {
                            custom = true;
                        }
                        s.subs.nixed.remove(&e);
                        s.subs.names.insert(e);
                    }
                }
                if custom || !s.subs.subclasses.is_empty() {
                    s.subs.names.insert("CUSTOM".to_owned());
                }
                self.reply(
                    session,
                    format!("+OK event listener enabled {}", format.as_str()),
                );
            }
            Command::NixEvent { events } => {
                let s = self.session_mut(session);
                for e in events {
                    s.subs.names.remove(&e);
                    s.subs.subclasses.remove(&e);
                    if s.subs.all {
                        s.subs.nixed.insert(e);
                    }
                }
                self.reply(session, "+OK events nixed");
            }
            Command::NoEvents => {
                let s = self.session_mut(session);
                s.subs = Subscription::default();
                self.reply(session, "+OK no longer listening for events");
            }
            Command::Filter { header, value } => {
                let s = self.session_mut(session);
                if s.filters.len() < MAX_FILTERS {
                    s.filters.push((header.clone(), value.clone()));
                }
                self.reply(session, format!("+OK filter added. [{header}]=[{value}]"));
            }
            Command::FilterDelete { header, value } => {
                let s = self.session_mut(session);
                s.filters
                    .retain(|(h, v)| !(h == &header && value.as_ref().is_none_or(|x| x == v)));
                self.reply(
                    session,
                    format!(
                        "+OK filter deleted. [{header}][{}]",
                        value.unwrap_or_default()
                    ),
                );
            }
            Command::FilterDeleteAll => {
                self.session_mut(session).filters.clear();
                self.reply(session, "+OK filter deleted. [all][]");
            }
            Command::MyEvents { uuid, format } => {
                let target = uuid.or(outbound);
                match target {
                    Some(uuid) if self.channels.contains_key(&uuid) => {
                        let s = self.session_mut(session);
                        s.myevents = Some(uuid);
                        s.subs.format = Some(format.unwrap_or(EventFormat::Plain));
                        s.subs.all = false;
                        s.subs
                            .names
                            .extend(MYEVENTS.iter().map(|n| (*n).to_owned()));
                        self.reply(session, "+OK Events Enabled");
                    }
                    _ => self.reply(session, "-ERR invalid uuid"),
                }
            }
            Command::DivertEvents { on } => {
                self.reply(
                    session,
                    if on {
                        "+OK events diverted"
                    } else {
                        "+OK events not diverted"
                    },
                );
            }
            Command::Linger { seconds } => {
                let secs = seconds.unwrap_or(600);
                self.session_mut(session).linger = Some(secs);
                self.reply(session, format!("+OK will linger {secs} seconds"));
            }
            Command::NoLinger => {
                self.session_mut(session).linger = None;
                self.reply(session, "+OK will not linger");
            }
            Command::Log { level } => {
                // mod_event_socket: no argument means debug; the reply echoes the argument as
                // given, then the level it read (capture log_level7: `+OK log level 7 [7]`).
                let text = level.unwrap_or_default();
                let parsed = if text.is_empty() {
                    Some(LogLevel::DEBUG)
                } else {
                    logs::parse_level(&text)
                };
                match parsed {
                    Some(l) => {
                        self.session_mut(session).log_level = Some(l);
                        self.reply(session, format!("+OK log level {text} [{}]", l.0));
                    }
                    None => self.reply(session, "-ERR invalid log level"),
                }
            }
            Command::NoLog => {
                // mod_event_socket drops the lines still queued, and says so only if it logged.
                if self.session_mut(session).log_level.take().is_some() {
                    self.reply(session, "+OK no longer logging");
                } else {
                    self.reply(session, "-ERR not loging");
                }
            }
            Command::SendMsg(msg) => self.sendmsg(session, msg, outbound),
            Command::Connect => match outbound {
                Some(uuid) => {
                    let Some(mut channel) = self.chan_event("CHANNEL_DATA", &uuid, &[], &[], &[])
                    else {
                        self.reply(session, "-ERR no channel");
                        return;
                    };
                    // The connect reply is a serialized event without Event-Name's twin
                    // Content-Type; the codec appends the command/reply tail.
                    channel.headers.retain(|(n, _)| n != "Content-Length");
                    self.send(
                        session,
                        ServerFrame::ConnectReply {
                            channel,
                            async_mode: true,
                            full_control: true,
                        },
                    );
                }
                None => self.reply(session, "-ERR command not found"),
            },
            Command::Resume => {
                self.session_mut(session).resume = true;
                self.reply(session, "+OK");
            }
            Command::GetVar { name } => {
                let value = outbound
                    .as_ref()
                    .and_then(|u| self.channel_var(u, &name))
                    .unwrap_or_default();
                self.reply(session, value);
            }
        }
    }

    fn session_mut(&mut self, session: SessionId) -> &mut Session {
        // Callers checked that the session exists; an absent one gets a throwaway.
        self.sessions
            .entry(session)
            .or_insert_with(|| Session::new(None))
    }

    fn sendmsg(&mut self, session: SessionId, msg: SendMsg, outbound: Option<LegId>) {
        let Some(uuid) = msg.uuid.clone().or(outbound.clone()) else {
            self.reply(session, "-ERR invalid session id [-]");
            return;
        };
        if !self.channels.get(&uuid).is_some_and(Chan::alive) {
            self.reply(session, format!("-ERR invalid session id [{uuid}]"));
            return;
        }
        self.reply(session, "+OK");
        // Capture outbound_socket_async_full_linger: an async socket's channel parks at the
        // first message.
        if outbound.as_ref() == Some(&uuid) {
            let first = {
                let s = self.session_mut(session);
                !std::mem::replace(&mut s.parked_announced, true)
            };
            if first {
                if let Some(c) = self.channels.get_mut(&uuid) {
                    c.socket_parked = true;
                }
                self.chan_emit("CHANNEL_PARK", &uuid, &[], &[], &[]);
            }
        }
        match msg.command {
            CallCommand::Execute { app, arg, loops } => {
                let arg = arg.map(|a| a.as_str().to_owned()).unwrap_or_default();
                let exec = Exec {
                    app: App::from_parts(&app, &arg),
                    app_uuid: msg.event_uuid,
                    loops: loops.unwrap_or(1).clamp(1, 1000),
                };
                if let Some(c) = self.channels.get_mut(&uuid) {
                    c.queue.push_back(exec);
                }
                self.advance(&uuid);
            }
            CallCommand::Hangup { cause } => {
                self.hangup(&uuid, cause.as_deref().unwrap_or("NORMAL_CLEARING"));
            }
            CallCommand::Unicast { .. } => {}
        }
    }

    // ---- events --------------------------------------------------------------------------

    fn base_event(&mut self, name: &str, subclass: Option<&str>, calling: &str) -> OwnedEvent {
        self.event_seq += 1;
        let mut e = OwnedEvent::default();
        if let Some(sub) = subclass {
            e.push("Event-Subclass", sub);
        }
        e.push("Event-Name", name);
        e.push("Core-UUID", self.core_uuid.clone());
        e.push("FreeSWITCH-Hostname", self.config.hostname.clone());
        e.push("FreeSWITCH-Switchname", self.config.hostname.clone());
        e.push("FreeSWITCH-IPv4", "127.0.0.1");
        e.push("FreeSWITCH-IPv6", "::1");
        let ts =
            jiff::Timestamp::from_microsecond(self.now_us).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        e.push(
            "Event-Date-Local",
            ts.strftime("%Y-%m-%d %H:%M:%S").to_string(),
        );
        e.push(
            "Event-Date-GMT",
            ts.strftime("%a, %d %b %Y %H:%M:%S GMT").to_string(),
        );
        e.push("Event-Date-Timestamp", self.now_us.to_string());
        let (file, func, line) = match calling.split_once(':') {
            Some((f, rest)) => match rest.split_once(':') {
                Some((func, line)) => (f, func, line),
                None => (f, rest, "1"),
            },
            None => ("switch_channel.c", calling, "1"),
        };
        e.push("Event-Calling-File", file);
        e.push("Event-Calling-Function", func);
        e.push("Event-Calling-Line-Number", line);
        e.push("Event-Sequence", self.event_seq.to_string());
        e
    }

    /// An event about a channel, headers in FreeSWITCH's order: the base, `lead` (conference
    /// data), the channel's state, `app` (Application-*, member flags), the caller profile,
    /// `post` (DTMF-*, Playback-*, …), then every `variable_*`.
    fn chan_event(
        &mut self,
        name: &str,
        uuid: &LegId,
        lead: &[(&str, String)],
        app: &[(&str, String)],
        post: &[(&str, String)],
    ) -> Option<OwnedEvent> {
        self.chan_event_sub(name, None, uuid, lead, app, post)
    }

    fn chan_event_sub(
        &mut self,
        name: &str,
        subclass: Option<&str>,
        uuid: &LegId,
        lead: &[(&str, String)],
        app: &[(&str, String)],
        post: &[(&str, String)],
    ) -> Option<OwnedEvent> {
        if !self.channels.contains_key(uuid) {
            return None;
        }
        let calling = calling_site(name);
        let mut e = self.base_event(name, subclass, calling);
        let c = self.channels.get(uuid)?;
        for (k, v) in lead {
            e.push(*k, v.clone());
        }
        let dir = if c.outbound { "outbound" } else { "inbound" };
        e.push("Channel-State", c.state.name());
        e.push("Channel-Call-State", c.call_state);
        e.push("Channel-State-Number", c.state.number().to_string());
        e.push("Channel-Name", c.name.clone());
        e.push("Unique-ID", c.uuid.as_str());
        e.push("Call-Direction", dir);
        e.push("Presence-Call-Direction", dir);
        e.push(
            "Channel-HIT-Dialplan",
            if c.hit_dialplan { "true" } else { "false" },
        );
        if let Some(p) = c.var("presence_id") {
            e.push("Channel-Presence-ID", p);
        }
        e.push("Channel-Call-UUID", c.uuid.as_str());
        e.push("Answer-State", c.answer_state);
        if let Some(cause) = &c.cause {
            e.push("Hangup-Cause", cause.clone());
        }
        let (codec, rate, bits) = c.codec;
        for dir in ["Read", "Write"] {
            e.push(format!("Channel-{dir}-Codec-Name"), codec);
            e.push(format!("Channel-{dir}-Codec-Rate"), rate.to_string());
            e.push(format!("Channel-{dir}-Codec-Bit-Rate"), bits.to_string());
        }
        for (k, v) in app {
            e.push(*k, v.clone());
        }
        let created = c.created_us.to_string();
        let answered = c.answered_us.to_string();
        // Capture sip_register_inbound_call_dtmf_outbound_user: an inbound SIP leg has
        // Caller-Username and Caller-Network-Addr and no callee; a loopback or originated leg
        // (events_plain_loopback_call) the callee and neither of the others.
        let sip_inbound = c.source == "mod_sofia" && !c.outbound;
        let mut caller: Vec<(&str, String)> = vec![
            ("Caller-Direction", dir.to_owned()),
            ("Caller-Logical-Direction", dir.to_owned()),
        ];
        if sip_inbound {
            caller.push(("Caller-Username", c.caller_number.clone()));
        }
        caller.extend([
            ("Caller-Dialplan", "XML".to_owned()),
            ("Caller-Caller-ID-Name", c.caller_name.clone()),
            ("Caller-Caller-ID-Number", c.caller_number.clone()),
            ("Caller-Orig-Caller-ID-Name", c.caller_name.clone()),
            ("Caller-Orig-Caller-ID-Number", c.caller_number.clone()),
        ]);
        if sip_inbound {
            caller.push(("Caller-Network-Addr", "127.0.0.1".to_owned()));
        } else {
            caller.push(("Caller-Callee-ID-Name", "Outbound Call".to_owned()));
            caller.push(("Caller-Callee-ID-Number", c.callee_number.clone()));
        }
        caller.extend([
            ("Caller-ANI", c.caller_number.clone()),
            ("Caller-Destination-Number", c.dest.clone()),
            ("Caller-Unique-ID", c.uuid.as_str().to_owned()),
            ("Caller-Source", c.source.to_owned()),
            ("Caller-Context", c.context.clone()),
            ("Caller-Channel-Name", c.name.clone()),
            ("Caller-Profile-Index", "1".to_owned()),
            ("Caller-Profile-Created-Time", created.clone()),
            ("Caller-Channel-Created-Time", created),
            ("Caller-Channel-Answered-Time", answered),
            ("Caller-Channel-Progress-Time", "0".to_owned()),
            ("Caller-Channel-Progress-Media-Time", "0".to_owned()),
            ("Caller-Channel-Hangup-Time", "0".to_owned()),
            ("Caller-Channel-Transfer-Time", "0".to_owned()),
            ("Caller-Channel-Resurrect-Time", "0".to_owned()),
            ("Caller-Channel-Bridged-Time", "0".to_owned()),
            ("Caller-Channel-Last-Hold", "0".to_owned()),
            ("Caller-Channel-Hold-Accum", "0".to_owned()),
            ("Caller-Screen-Bit", "true".to_owned()),
            ("Caller-Privacy-Hide-Name", "false".to_owned()),
            ("Caller-Privacy-Hide-Number", "false".to_owned()),
        ]);
        for (k, v) in caller {
            e.push(k, v);
        }
        for (k, v) in post {
            e.push(*k, v.clone());
        }
        for (k, v) in &c.vars {
            e.push(format!("variable_{k}"), v.clone());
        }
        Some(e)
    }

    fn chan_emit(
        &mut self,
        name: &str,
        uuid: &LegId,
        lead: &[(&str, String)],
        app: &[(&str, String)],
        post: &[(&str, String)],
    ) {
        if !self.listened(name, Some(uuid)) {
            return;
        }
        if let Some(e) = self.chan_event(name, uuid, lead, app, post) {
            self.emit_owned(e);
        }
    }

    /// As [`World::chan_emit`], with `tail` after the channel variables: where FreeSWITCH
    /// puts Playback-* and Record-* (captures events_plain_loopback_call, call_control…).
    fn chan_emit_tail(&mut self, name: &str, uuid: &LegId, tail: &[(&str, String)]) {
        if !self.listened(name, Some(uuid)) {
            return;
        }
        if let Some(mut e) = self.chan_event(name, uuid, &[], &[], &[]) {
            for (k, v) in tail {
                e.push(*k, v.clone());
            }
            self.emit_owned(e);
        }
    }

    /// Whether some session would take event `name` (of channel `uuid`, if it is a channel's)
    /// by its subscription. An event nobody takes is not built (its headers cost more than the
    /// rest of the step), but still counts in `Event-Sequence`, as FreeSWITCH numbers every
    /// event it fires (a channel's only while the channel exists).
    fn listened(&mut self, name: &str, uuid: Option<&LegId>) -> bool {
        let listened = self.sessions.values().any(|s| {
            !(s.closing || s.detached || !s.authed || (s.outbound.is_some() && !s.connected))
                && s.subs.wants(name, None)
        });
        if !listened && uuid.is_none_or(|u| self.channels.contains_key(u)) {
            self.event_seq += 1;
        }
        listened
    }

    /// As [`World::emit`], without a copy of the event for the last session that takes it.
    fn emit_owned(&mut self, event: OwnedEvent) {
        let mut deliveries = self.deliveries(&event);
        let last = deliveries.pop();
        for (id, format) in deliveries {
            self.send(
                id,
                ServerFrame::Event {
                    format,
                    event: event.clone(),
                },
            );
        }
        if let Some((id, format)) = last {
            self.send(id, ServerFrame::Event { format, event });
        }
    }

    /// Delivers `event` to every session that subscribed to it and whose filters pass it.
    fn emit(&mut self, event: &OwnedEvent) {
        for (id, format) in self.deliveries(event) {
            self.send(
                id,
                ServerFrame::Event {
                    format,
                    event: event.clone(),
                },
            );
        }
    }

    /// The sessions (and their formats) `event` goes to.
    fn deliveries(&self, event: &OwnedEvent) -> Vec<(SessionId, EventFormat)> {
        let name = event.header("Event-Name").unwrap_or("").to_owned();
        let subclass = event.header("Event-Subclass").map(str::to_owned);
        let unique = event.header("Unique-ID").map(str::to_owned);
        let mut deliveries = Vec::new();
        for (id, s) in &self.sessions {
            if s.closing || s.detached || !s.authed {
                continue;
            }
            if s.outbound.is_some() && !s.connected {
                continue;
            }
            if !s.subs.wants(&name, subclass.as_deref()) {
                continue;
            }
            // myevents (and an outbound socket's own channel): that channel's events only.
            if let Some(own) = &s.myevents {
                let other = event.header("Other-Leg-Unique-ID");
                if unique.as_deref() != Some(own.as_str()) && other != Some(own.as_str()) {
                    continue;
                }
            }
            if !s.filters.is_empty()
                && !s
                    .filters
                    .iter()
                    .any(|(h, v)| event.header(h).is_some_and(|x| x == v))
            {
                continue;
            }
            if let Some(format) = s.subs.format {
                deliveries.push((*id, format));
            }
        }
        deliveries
    }

    // ---- api -----------------------------------------------------------------------------

    fn api_event(&mut self, cmd: &str, arg: &str) {
        if !self.listened("API", None) {
            return;
        }
        let mut e = self.base_event(
            "API",
            None,
            "switch_loadable_module.c:switch_api_execute:2954",
        );
        e.push("API-Command", cmd);
        e.push("API-Command-Argument", arg);
        self.emit_owned(e);
    }

    fn api(&mut self, session: SessionId, line: &str) {
        let (cmd, arg) = split_command(line);
        // Blocked before running: a loopback originate may answer (and unblock) at once.
        self.session_mut(session).blocked = true;
        self.api_mark = Some((session, self.outbox.len()));
        let result = self.execute_api(cmd, arg, Some(session));
        if matches!(result, ApiResult::Later) {
            // Answered later: the reply follows what happens meanwhile.
            self.api_mark = None;
        }
        // switch_api_execute fires the API event once the command has run.
        self.api_event(cmd, arg);
        match result {
            ApiResult::Now(body) => {
                self.api_reply(session, body);
                self.unblock(session);
            }
            ApiResult::Later => {}
        }
    }

    fn bgapi(&mut self, job: JobUuid, line: &str) {
        let (cmd, arg) = split_command(line);
        if cmd == "originate" {
            let origin = Origin::Job {
                job: job.clone(),
                arg: arg.to_owned(),
            };
            if let Err(body) = self.originate(arg, origin) {
                self.api_event(cmd, arg);
                self.job_done(&job, "originate", arg, &body);
            }
            return;
        }
        let body = match self.execute_api(cmd, arg, None) {
            ApiResult::Now(body) => body,
            ApiResult::Later => "-ERR cannot run in the background\n".to_owned(),
        };
        // Capture events_plain_loopback_call: API, then BACKGROUND_JOB.
        self.api_event(cmd, arg);
        self.job_done(&job, cmd, arg, &body);
    }

    fn job_done(&mut self, job: &JobUuid, cmd: &str, arg: &str, body: &str) {
        let mut e = self.base_event("BACKGROUND_JOB", None, "mod_event_socket.c:api_exec:1572");
        e.push("Job-UUID", job.as_str());
        e.push("Job-Command", cmd);
        e.push("Job-Command-Arg", arg);
        e.body = Some(body.to_owned());
        self.emit_owned(e);
    }

    fn execute_api(&mut self, cmd: &str, arg: &str, session: Option<SessionId>) -> ApiResult {
        let words: Vec<&str> = arg.split_whitespace().collect();
        let no_channel = || ApiResult::Now("-ERR No such channel!\n".to_owned());
        let leg = |i: usize| words.get(i).map(|w| LegId::new(*w));
        match cmd {
            "status" => ApiResult::Now(self.status()),
            "version" => {
                ApiResult::Now("FreeSWITCH Version 1.10.12-release~64bit ( 64bit)\n".to_owned())
            }
            "originate" => {
                let Some(session) = session else {
                    return ApiResult::Now("-ERR cannot run here\n".to_owned());
                };
                match self.originate(arg, Origin::Api(session)) {
                    Ok(()) => ApiResult::Later,
                    Err(body) => ApiResult::Now(body),
                }
            }
            "global_getvar" => {
                ApiResult::Now(self.globals.get(arg.trim()).cloned().unwrap_or_default())
            }
            "global_setvar" => {
                if let Some((k, v)) = arg.split_once('=') {
                    self.globals
                        .insert(k.trim().to_owned(), v.trim().to_owned());
                }
                ApiResult::Now("+OK\n".to_owned())
            }
            "uuid_exists" => ApiResult::Now(
                match leg(0) {
                    Some(u) if self.channels.contains_key(&u) => "true",
                    _ => "false",
                }
                .to_owned(),
            ),
            "uuid_getvar" => match (leg(0), words.get(1)) {
                (Some(u), Some(var)) => match self.channels.get(&u) {
                    Some(c) => ApiResult::Now(c.var(var).unwrap_or("_undef_").to_owned()),
                    None => no_channel(),
                },
                _ => ApiResult::Now("-USAGE: <uuid> <var>\n".to_owned()),
            },
            "uuid_setvar" => match (leg(0), words.get(1)) {
                (Some(u), Some(var)) => match self.channels.get_mut(&u) {
                    Some(c) => {
                        // The value is the rest of the line (it may hold spaces).
                        let value = arg
                            .splitn(3, char::is_whitespace)
                            .nth(2)
                            .map(str::trim)
                            .unwrap_or("");
                        if value.is_empty() {
                            c.unset_var(var);
                        } else {
                            c.set_var(var, value);
                        }
                        ApiResult::Now("+OK\n".to_owned())
                    }
                    None => no_channel(),
                },
                _ => ApiResult::Now("-USAGE: <uuid> <var> [value]\n".to_owned()),
            },
            "uuid_dump" => match leg(0) {
                Some(u) => match self.chan_event("CHANNEL_DATA", &u, &[], &[], &[]) {
                    Some(e) => {
                        let mut out = Vec::new();
                        let _ = e.encode_plain(&mut out);
                        ApiResult::Now(String::from_utf8_lossy(&out).into_owned())
                    }
                    None => no_channel(),
                },
                None => no_channel(),
            },
            "uuid_kill" => match leg(0) {
                Some(u) if self.channels.get(&u).is_some_and(Chan::alive) => {
                    let cause = words
                        .get(1)
                        .copied()
                        .unwrap_or("NORMAL_CLEARING")
                        .to_owned();
                    self.hangup(&u, &cause);
                    ApiResult::Now("+OK\n".to_owned())
                }
                _ => no_channel(),
            },
            "hupall" => {
                let cause = words
                    .first()
                    .copied()
                    .unwrap_or("MANAGER_REQUEST")
                    .to_owned();
                for u in self.channel_ids() {
                    if self.channels.get(&u).is_some_and(Chan::alive) {
                        self.hangup(&u, &cause);
                    }
                }
                ApiResult::Now(format!("+OK hangup all channels with cause {cause}\n"))
            }
            "uuid_answer" => match leg(0) {
                Some(u) if self.channels.contains_key(&u) => {
                    self.answer(&u);
                    ApiResult::Now("+OK\n".to_owned())
                }
                _ => no_channel(),
            },
            "uuid_park" => match leg(0) {
                Some(u) if self.channels.contains_key(&u) => {
                    self.interrupt(&u);
                    if let Some(c) = self.channels.get_mut(&u) {
                        c.queue.clear();
                        c.queue.push_back(Exec::new(App::Park));
                    }
                    self.advance(&u);
                    ApiResult::Now("+OK\n".to_owned())
                }
                _ => no_channel(),
            },
            "uuid_bridge" => match (leg(0), leg(1)) {
                (Some(a), Some(b)) => {
                    let ok = |c: Option<&Chan>| c.is_some_and(Chan::alive);
                    if !ok(self.channels.get(&a)) {
                        return ApiResult::Now(format!("-ERR Invalid uuid {a}\n"));
                    }
                    if !ok(self.channels.get(&b)) {
                        return ApiResult::Now(format!("-ERR Invalid uuid {b}\n"));
                    }
                    self.bridge(&a, &b);
                    ApiResult::Now(format!("+OK {b}\n"))
                }
                _ => ApiResult::Now("-USAGE: <uuid> <other_uuid>\n".to_owned()),
            },
            "uuid_transfer" => self.api_transfer(&words),
            "uuid_broadcast" => self.api_broadcast(arg),
            "uuid_record" => self.api_record(&words),
            "uuid_displace" => match leg(0) {
                Some(u) if self.channels.contains_key(&u) => {
                    match words.get(1).copied() {
                        Some("start") => self.chan_emit("MEDIA_BUG_START", &u, &[], &[], &[]),
                        Some("stop") => self.chan_emit("MEDIA_BUG_STOP", &u, &[], &[], &[]),
                        _ => {}
                    }
                    ApiResult::Now("+OK Success\n".to_owned())
                }
                _ => no_channel(),
            },
            "uuid_hold" => {
                let (mode, uuid) = match words.as_slice() {
                    ["off", u, ..] => (Some(false), LegId::new(*u)),
                    ["toggle", u, ..] => (None, LegId::new(*u)),
                    [u, ..] => (Some(true), LegId::new(*u)),
                    [] => return ApiResult::Now("-USAGE: [off|toggle] <uuid>\n".to_owned()),
                };
                let Some(c) = self.channels.get_mut(&uuid) else {
                    return no_channel();
                };
                let hold = mode.unwrap_or(!c.held);
                if hold != c.held {
                    c.held = hold;
                    c.call_state = if hold { "HELD" } else { "ACTIVE" };
                    let name = if hold {
                        "CHANNEL_HOLD"
                    } else {
                        "CHANNEL_UNHOLD"
                    };
                    self.chan_emit(name, &uuid, &[], &[], &[]);
                }
                ApiResult::Now("+OK Success\n".to_owned())
            }
            "uuid_send_dtmf" => match (leg(0), words.get(1)) {
                (Some(u), Some(digits)) if self.channels.contains_key(&u) => {
                    // The far end of a loopback leg is the other leg: it hears the digits.
                    let peer = self.channels.get(&u).and_then(|c| c.loopback_peer.clone());
                    if let Some(peer) = peer {
                        self.dtmf(&peer, digits, "INBAND_AUDIO");
                    }
                    ApiResult::Now(format!("+OK {u} sent DTMF {digits}.\n"))
                }
                (Some(_), Some(_)) => no_channel(),
                _ => ApiResult::Now("-USAGE: <uuid> <dtmf_data>\n".to_owned()),
            },
            "show" => ApiResult::Now(self.show(arg)),
            "conference" => self.api_conference(&words, session),
            "sofia_contact" => ApiResult::Now(self.sofia_contact(arg)),
            "sofia" => ApiResult::Now(self.sofia(&words)),
            _ => ApiResult::Now(format!("-ERR {cmd} Command not found!\n")),
        }
    }

    fn status(&self) -> String {
        let up = ((self.now_us - self.started_us).max(0) / 1000) as u64;
        let (ms, s) = (up % 1000, up / 1000);
        format!(
            "UP 0 years, {} days, {} hours, {} minutes, {} seconds, {ms} milliseconds, 0 microseconds\nFreeSWITCH (Version 1.10.12-release  64bit) is ready\n{} session(s) since startup\n{} session(s) - peak {}, last 5min {} \n0 session(s) per Sec out of max 30, peak 1, last 5min 1 \n{MAX_CHANNELS} session(s) max\nmin idle cpu 0.00/99.00\nCurrent Stack Size/Max 240K/8192K\n",
            s / 86_400,
            s / 3600 % 24,
            s / 60 % 60,
            s % 60,
            self.session_count,
            self.channels.len(),
            self.channels.len(),
            self.channels.len(),
        )
    }

    /// `sofia_contact [<profile>/]<user>[@<domain>]`: the registered softphone's dial string,
    /// no newline (capture sip_register_inbound_call_dtmf_outbound_user), or
    /// `error/user_not_registered`.
    fn sofia_contact(&self, arg: &str) -> String {
        let who = arg.trim();
        let who = who.split_once('/').map_or(who, |(_, rest)| rest);
        let (user, domain) = who.split_once('@').unwrap_or((who, &self.config.domain));
        match self.registration(user) {
            Some(r) if domain == self.config.domain => {
                format!("sofia/internal/sip:{user}@{}", r.contact)
            }
            _ => "error/user_not_registered".to_owned(),
        }
    }

    fn sofia(&self, words: &[&str]) -> String {
        match words {
            ["status", "profile", "internal", "reg", filter @ ..] => registry::status_table(
                &self.registrations,
                filter.first().copied(),
                self.now_us,
                &self.config.hostname,
                &self.config.domain,
            ),
            ["status"] => format!(
                "                     Name\t   Type\t                                      Data\tState\n=================================================================================================\n                 internal\tprofile\t           sip:mod_sofia@{}:5060\tRUNNING (0)\n=================================================================================================\n1 profile 0 aliases\n",
                self.config.domain
            ),
            _ => "-ERR Unknown command!\n".to_owned(),
        }
    }

    /// `show channels [as json]|count`, `show calls count` (capture api_bgapi,
    /// sip_register_inbound_call_dtmf_outbound_user): rows as FreeSWITCH writes them.
    fn show(&self, arg: &str) -> String {
        let words: Vec<&str> = arg.split_whitespace().collect();
        let live: Vec<&Chan> = self.channels.values().filter(|c| c.alive()).collect();
        match words.as_slice() {
            ["channels", "count"] => format!("\n{} total.\n", live.len()),
            ["calls", "count"] => {
                let calls = live
                    .iter()
                    .filter(|c| matches!(c.running, Some(Running::Bridge { .. })))
                    .count()
                    / 2;
                format!("\n{calls} total.\n")
            }
            ["channels", "as", "json"] => {
                if live.is_empty() {
                    return "{\"row_count\": 0}\n".to_owned();
                }
                // Keys in FreeSWITCH's column order (serde_json's map would sort them).
                let rows: Vec<String> = live
                    .iter()
                    .map(|c| {
                        let row = self.show_row(c);
                        let cells: Vec<String> = SHOW_COLUMNS
                            .iter()
                            .map(|k| {
                                let v = row.get(*k).cloned().unwrap_or_default();
                                format!(
                                    "{}:{}",
                                    serde_json::Value::String((*k).to_owned()),
                                    serde_json::Value::String(v)
                                )
                            })
                            .collect();
                        format!("{{{}}}", cells.join(","))
                    })
                    .collect();
                let mut out = format!("{{\"row_count\":{},\"rows\":[", rows.len());
                out.push_str(&rows.join(","));
                out.push_str("]}\n");
                out
            }
            ["channels"] => {
                if live.is_empty() {
                    return "\n0 total.\n".to_owned();
                }
                let mut out = SHOW_COLUMNS.join(",");
                out.push('\n');
                for c in &live {
                    let row = self.show_row(c);
                    let cells: Vec<String> = SHOW_COLUMNS
                        .iter()
                        .map(|k| row.get(*k).cloned().unwrap_or_default())
                        .collect();
                    out.push_str(&cells.join(","));
                    out.push('\n');
                }
                out.push_str(&format!("\n{} total.\n", live.len()));
                out
            }
            _ => "-USAGE: show channels|calls [count|as json]\n".to_owned(),
        }
    }

    fn show_row(&self, c: &Chan) -> std::collections::HashMap<&'static str, String> {
        let created =
            jiff::Timestamp::from_microsecond(c.created_us).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let (application, data) = match (&c.running, &c.parked) {
            (Some(Running::Playback { exec, .. }), _)
            | (Some(Running::Conference { exec, .. }), _)
            | (Some(Running::Bridge { exec, .. }), _)
            | (Some(Running::Dialing { exec }), _) => (exec.app.name().to_owned(), exec.app.arg()),
            (None, Some(exec)) => (exec.app.name().to_owned(), exec.app.arg()),
            (None, None) => (String::new(), String::new()),
        };
        let (codec, rate, bits) = c.codec;
        let mut row = std::collections::HashMap::new();
        let mut put = |k: &'static str, v: String| {
            row.insert(k, v);
        };
        put("uuid", c.uuid.as_str().to_owned());
        put(
            "direction",
            if c.outbound { "outbound" } else { "inbound" }.to_owned(),
        );
        put("created", created.strftime("%Y-%m-%d %H:%M:%S").to_string());
        put("created_epoch", (c.created_us / 1_000_000).to_string());
        put("name", c.name.clone());
        put("state", c.state.name().to_owned());
        put("cid_name", c.caller_name.clone());
        put("cid_num", c.caller_number.clone());
        put("ip_addr", "127.0.0.1".to_owned());
        put("dest", c.dest.clone());
        put("application", application);
        put("application_data", data);
        put("dialplan", "XML".to_owned());
        put("context", c.context.clone());
        put("read_codec", codec.to_owned());
        put("read_rate", rate.to_string());
        put("read_bit_rate", bits.to_string());
        put("write_codec", codec.to_owned());
        put("write_rate", rate.to_string());
        put("write_bit_rate", bits.to_string());
        put("secure", String::new());
        put("hostname", self.config.hostname.clone());
        put("presence_id", c.var("presence_id").unwrap_or("").to_owned());
        put("presence_data", String::new());
        put("accountcode", c.var("accountcode").unwrap_or("").to_owned());
        put("callstate", c.call_state.to_owned());
        put("callee_name", String::new());
        put("callee_num", String::new());
        put("callee_direction", String::new());
        put("call_uuid", String::new());
        put("sent_callee_name", String::new());
        put("sent_callee_num", String::new());
        put("initial_cid_name", c.caller_name.clone());
        put("initial_cid_num", c.caller_number.clone());
        put("initial_ip_addr", "127.0.0.1".to_owned());
        put("initial_dest", c.dest.clone());
        put("initial_dialplan", "XML".to_owned());
        put("initial_context", c.context.clone());
        row
    }

    fn api_transfer(&mut self, words: &[&str]) -> ApiResult {
        let Some(uuid) = words.first().map(|w| LegId::new(*w)) else {
            return ApiResult::Now("-USAGE: <uuid> [-bleg|-both] <dest-exten>\n".to_owned());
        };
        if !self.channels.get(&uuid).is_some_and(Chan::alive) {
            return ApiResult::Now("-ERR No such channel!\n".to_owned());
        }
        let mut rest = &words[1..];
        let mut which = "";
        if let Some(flag) = rest.first().filter(|w| w.starts_with('-')) {
            which = flag;
            rest = &rest[1..];
        }
        let Some(exten) = rest.first() else {
            return ApiResult::Now("-USAGE: <uuid> [-bleg|-both] <dest-exten>\n".to_owned());
        };
        let context = rest.get(2).copied().unwrap_or("default");
        let peer = match self.channels.get(&uuid).and_then(|c| c.running.clone()) {
            Some(Running::Bridge { peer, .. }) => Some(peer),
            _ => None,
        };
        let mut legs = Vec::new();
        match which {
            "-bleg" => legs.extend(peer.clone()),
            "-both" => {
                legs.push(uuid.clone());
                legs.extend(peer.clone());
            }
            _ => legs.push(uuid.clone()),
        }
        // Capture call_control…: CHANNEL_UNBRIDGE first, then each leg runs the extension.
        if peer.is_some() {
            self.unbridge(&uuid);
        }
        // An outbound leg transferred by name takes its callee's id as its caller id (capture
        // call_control…: `conference list` shows `Outbound Call;default` for it).
        if let Some(c) = self.channels.get_mut(&uuid)
            && c.outbound
        {
            c.caller_name = "Outbound Call".to_owned();
            c.caller_number = c.callee_number.clone();
        }
        for leg in legs {
            self.transfer(&leg, exten, context);
        }
        ApiResult::Now("+OK\n".to_owned())
    }

    fn transfer(&mut self, uuid: &LegId, exten: &str, context: &str) {
        self.interrupt(uuid);
        let apps = self.dialplan(exten);
        if let Some(c) = self.channels.get_mut(uuid) {
            c.queue = apps.into_iter().map(Exec::new).collect();
            c.dest = exten.to_owned();
            c.context = context.to_owned();
            c.hit_dialplan = true;
        }
        self.log_dialplan(uuid);
        self.advance(uuid);
    }

    fn api_broadcast(&mut self, arg: &str) -> ApiResult {
        let mut parts = arg.split_whitespace();
        let (Some(uuid), Some(what)) = (parts.next(), parts.next()) else {
            return ApiResult::Now("-USAGE: <uuid> <path> [aleg|bleg|holdb|both]\n".to_owned());
        };
        let leg = parts.next().unwrap_or("aleg");
        let uuid = LegId::new(uuid);
        if !self.channels.get(&uuid).is_some_and(Chan::alive) {
            return ApiResult::Now("-ERR No such channel!\n".to_owned());
        }
        let app = match what.split_once("::") {
            Some((name, arg)) => App::from_parts(name, arg),
            None => App::Playback(what.to_owned()),
        };
        let peer = match self.channels.get(&uuid).and_then(|c| c.running.clone()) {
            Some(Running::Bridge { peer, .. }) => Some(peer),
            _ => None,
        };
        let mut targets = Vec::new();
        if leg != "bleg" {
            targets.push(uuid.clone());
        }
        if leg == "bleg" || leg == "both" {
            targets.extend(peer);
        }
        for t in targets {
            self.inject(&t, Exec::new(app.clone()));
        }
        ApiResult::Now("+OK Message sent\n".to_owned())
    }

    /// Runs `exec` on a channel now, inside its park or bridge (as a broadcast does).
    fn inject(&mut self, uuid: &LegId, mut exec: Exec) {
        self.stamp(&mut exec);
        let Some(c) = self.channels.get_mut(uuid) else {
            return;
        };
        match &c.running {
            Some(Running::Playback { .. }) | None => {
                c.queue.push_front(exec);
                if c.running.is_some() {
                    // A broadcast interrupts a playback.
                    self.finish_running(uuid, "FILE PLAYED");
                }
                self.advance(uuid);
            }
            Some(Running::Bridge { .. })
            | Some(Running::Conference { .. })
            | Some(Running::Dialing { .. }) => {
                // Played to the leg while it stays bridged or conferenced.
                self.execute_event(uuid, &exec);
                self.start_media(uuid, exec);
            }
        }
    }

    fn api_record(&mut self, words: &[&str]) -> ApiResult {
        let (Some(uuid), Some(action)) = (words.first(), words.get(1)) else {
            return ApiResult::Now(
                "-USAGE: <uuid> [start|stop|mask|unmask] <path> [<limit>]\n".to_owned(),
            );
        };
        let uuid = LegId::new(*uuid);
        let path = words.get(2).copied().unwrap_or("").to_owned();
        let Some(c) = self.channels.get_mut(&uuid) else {
            return ApiResult::Now("-ERR No such channel!\n".to_owned());
        };
        match *action {
            "start" if !path.is_empty() => {
                c.recordings.push((path.clone(), self.now_us));
                self.chan_emit_tail("RECORD_START", &uuid, &[("Record-File-Path", path)]);
                self.chan_emit("MEDIA_BUG_START", &uuid, &[], &[], &[]);
                ApiResult::Now("+OK Success\n".to_owned())
            }
            "stop" => {
                let stopped: Vec<(String, i64)> = if path == "all" || path.is_empty() {
                    std::mem::take(&mut c.recordings)
                } else {
                    let (gone, kept) = std::mem::take(&mut c.recordings)
                        .into_iter()
                        .partition(|(p, _)| *p == path);
                    c.recordings = kept;
                    gone
                };
                if stopped.is_empty() {
                    return ApiResult::Now("-ERR Cannot stop record session!\n".to_owned());
                }
                for (path, started) in stopped {
                    self.record_stop(&uuid, &path, started, "success");
                }
                ApiResult::Now("+OK Success\n".to_owned())
            }
            "mask" | "unmask" => ApiResult::Now("+OK Success\n".to_owned()),
            _ => ApiResult::Now(
                "-USAGE: <uuid> [start|stop|mask|unmask] <path> [<limit>]\n".to_owned(),
            ),
        }
    }

    fn record_stop(&mut self, uuid: &LegId, path: &str, started_us: i64, cause: &str) {
        let ms = ((self.now_us - started_us).max(0) / 1000).to_string();
        let secs = ((self.now_us - started_us).max(0) / 1_000_000).to_string();
        if let Some(c) = self.channels.get_mut(uuid) {
            c.set_var("record_ms", &ms);
            c.set_var("record_seconds", &secs);
        }
        self.chan_emit_tail(
            "RECORD_STOP",
            uuid,
            &[
                ("Record-File-Path", path.to_owned()),
                ("Record-Completion-Cause", cause.to_owned()),
            ],
        );
        self.chan_emit("MEDIA_BUG_STOP", uuid, &[], &[], &[]);
    }

    // ---- conferences ---------------------------------------------------------------------

    fn api_conference(&mut self, words: &[&str], session: Option<SessionId>) -> ApiResult {
        let Some(name) = words.first() else {
            return ApiResult::Now("-ERR No conference name specified.\n".to_owned());
        };
        if *name == "list" {
            let mut out = String::new();
            for (cname, conf) in &self.conferences {
                out.push_str(&format!(
                    "+OK Conference {cname} ({} member{} rate: 8000 flags: running|answered|enforce_min|dynamic|exit_sound|enter_sound|json_status)\n",
                    conf.members.len(),
                    if conf.members.len() == 1 { "" } else { "s" }
                ));
                out.push_str(&self.member_lines(conf));
            }
            if out.is_empty() {
                out.push_str("+OK No active conferences.\n");
            }
            return ApiResult::Now(out);
        }
        let name = (*name).to_owned();
        let Some(verb) = words.get(1).copied() else {
            return ApiResult::Now("-ERR missing command\n".to_owned());
        };
        if verb == "dial" {
            let Some(dial) = words.get(2) else {
                return ApiResult::Now("-USAGE: dial <endpoint> [cid_num] [cid_name]\n".to_owned());
            };
            let mut dial = (*dial).to_owned();
            if let Some(num) = words.get(3) {
                dial = format!("{{origination_caller_id_number={num}}}{dial}");
            }
            let Some(session) = session else {
                return ApiResult::Now("-ERR cannot run here\n".to_owned());
            };
            return match self.originate_then(
                &dial,
                Origin::ConferenceDial { session },
                Some(Then::App {
                    name: "conference".into(),
                    arg: name,
                }),
            ) {
                Ok(()) => ApiResult::Later,
                Err(body) => ApiResult::Now(format!(
                    "+OK Call Requested: result: [{}]\n",
                    body.trim().trim_start_matches("-ERR ")
                )),
            };
        }
        let Some(conf) = self.conferences.get(&name) else {
            return ApiResult::Now(format!("-ERR Conference {name} not found\n"));
        };
        let target = words.get(2).copied().unwrap_or("");
        let members: Vec<u32> = match target {
            "all" => conf.members.keys().rev().copied().collect(),
            "last" => conf
                .members
                .keys()
                .next_back()
                .copied()
                .into_iter()
                .collect(),
            id => id
                .parse::<u32>()
                .ok()
                .filter(|id| conf.members.contains_key(id))
                .into_iter()
                .collect(),
        };
        match verb {
            "list" => {
                if target == "count" {
                    return ApiResult::Now(format!("{}\n", conf.members.len()));
                }
                ApiResult::Now(self.member_lines(conf))
            }
            "json_list" => ApiResult::Now(self.json_list(&name)),
            "mute" | "unmute" | "kick" | "hup" => {
                if members.is_empty() {
                    return ApiResult::Now(format!("-ERR Non-Existant ID {target}\n"));
                }
                let mut out = String::new();
                for id in members {
                    out.push_str(&self.member_action(&name, id, verb));
                }
                ApiResult::Now(out)
            }
            _ => ApiResult::Now(format!("-ERR Conference command '{verb}' not found.\n")),
        }
    }

    fn member_lines(&self, conf: &Conf) -> String {
        let mut out = String::new();
        for (id, m) in conf.members.iter().rev() {
            let Some(c) = self.channels.get(&m.uuid) else {
                continue;
            };
            let mut flags = String::from("hear");
            if m.can_speak {
                flags.push_str("|speak");
            }
            if conf.floor == Some(*id) {
                flags.push_str("|floor");
            }
            out.push_str(&format!(
                "{id};{};{};{};{};{flags};0;0;100\n",
                c.name, m.uuid, c.caller_name, c.caller_number
            ));
        }
        out
    }

    /// `conference <name> json_list`, written as cJSON_Print writes it (tabs).
    fn json_list(&self, name: &str) -> String {
        let Some(conf) = self.conferences.get(name) else {
            return format!("-ERR Conference {name} not found\n");
        };
        let run_time = (self.now_us - conf.created_us).max(0) / 1_000_000;
        let mut out = format!(
            "[{{\n\t\t\"conference_name\":\t\"{name}\",\n\t\t\"member_count\":\t{},\n\t\t\"ghost_count\":\t0,\n\t\t\"rate\":\t8000,\n\t\t\"run_time\":\t{run_time},\n\t\t\"conference_uuid\":\t\"{}\",\n\t\t\"canvas_count\":\t0,\n\t\t\"max_bw_in\":\t0,\n\t\t\"force_bw_in\":\t0,\n\t\t\"video_floor_packets\":\t0,\n\t\t\"locked\":\tfalse,\n\t\t\"destruct\":\tfalse,\n\t\t\"wait_mod\":\tfalse,\n\t\t\"audio_always\":\tfalse,\n\t\t\"running\":\ttrue,\n\t\t\"answered\":\ttrue,\n\t\t\"enforce_min\":\ttrue,\n\t\t\"bridge_to\":\tfalse,\n\t\t\"dynamic\":\ttrue,\n\t\t\"exit_sound\":\ttrue,\n\t\t\"enter_sound\":\ttrue,\n\t\t\"recording\":\tfalse,\n\t\t\"video_bridge\":\tfalse,\n\t\t\"video_floor_only\":\tfalse,\n\t\t\"video_rfc4579\":\tfalse,\n\t\t\"variables\":\t{{\n\t\t}},\n\t\t\"members\":\t[",
            conf.members.len(),
            conf.uuid
        );
        let mut first = true;
        for (id, m) in conf.members.iter().rev() {
            let Some(c) = self.channels.get(&m.uuid) else {
                continue;
            };
            if !first {
                out.push_str(", ");
            }
            first = false;
            let join_time = (self.now_us - m.joined_us).max(0) / 1_000_000;
            let esc = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
            out.push_str(&format!(
                "{{\n\t\t\t\t\"type\":\t\"caller\",\n\t\t\t\t\"id\":\t{id},\n\t\t\t\t\"flags\":\t{{\n\t\t\t\t\t\"can_hear\":\ttrue,\n\t\t\t\t\t\"can_see\":\ttrue,\n\t\t\t\t\t\"can_speak\":\t{},\n\t\t\t\t\t\"hold\":\tfalse,\n\t\t\t\t\t\"mute_detect\":\tfalse,\n\t\t\t\t\t\"talking\":\tfalse,\n\t\t\t\t\t\"has_video\":\tfalse,\n\t\t\t\t\t\"video_bridge\":\tfalse,\n\t\t\t\t\t\"has_floor\":\t{},\n\t\t\t\t\t\"is_moderator\":\tfalse,\n\t\t\t\t\t\"end_conference\":\tfalse,\n\t\t\t\t\t\"mandatory_member_end_conference\":\tfalse,\n\t\t\t\t\t\"pass_digits\":\tfalse\n\t\t\t\t}},\n\t\t\t\t\"uuid\":\t{},\n\t\t\t\t\"caller_id_name\":\t{},\n\t\t\t\t\"caller_id_number\":\t{},\n\t\t\t\t\"join_time\":\t{join_time},\n\t\t\t\t\"last_talking\":\t0,\n\t\t\t\t\"energy\":\t100,\n\t\t\t\t\"volume_in\":\t0,\n\t\t\t\t\"volume_out\":\t0,\n\t\t\t\t\"output-volume\":\t0,\n\t\t\t\t\"input-volume\":\t0\n\t\t\t}}",
                m.can_speak,
                conf.floor == Some(*id),
                esc(m.uuid.as_str()),
                esc(&c.caller_name),
                esc(&c.caller_number),
            ));
        }
        out.push_str("]\n\t}]");
        out
    }

    fn conf_lead(&self, name: &str) -> Vec<(&'static str, String)> {
        let Some(conf) = self.conferences.get(name) else {
            return Vec::new();
        };
        vec![
            ("Conference-Name", name.to_owned()),
            ("Conference-Domain", self.config.domain.clone()),
            ("Conference-Size", conf.members.len().to_string()),
            ("Conference-Ghosts", "0".to_owned()),
            ("Conference-Profile-Name", "default".to_owned()),
            ("Conference-Unique-ID", conf.uuid.clone()),
        ]
    }

    fn conf_event(&mut self, name: &str, action: &str, member: Option<u32>) {
        let mut lead = self.conf_lead(name);
        let member_info = member.and_then(|id| {
            let conf = self.conferences.get(name)?;
            let m = conf.members.get(&id)?;
            Some((m.clone(), conf.floor == Some(id)))
        });
        match member_info {
            Some((m, floor)) => {
                lead.push(("Floor", floor.to_string()));
                let app = vec![
                    ("Video", "false".to_owned()),
                    ("Hear", "true".to_owned()),
                    ("See", "true".to_owned()),
                    ("Speak", m.can_speak.to_string()),
                    ("Talking", "false".to_owned()),
                    ("Mute-Detect", "false".to_owned()),
                    ("Hold", "false".to_owned()),
                    ("Member-ID", member.unwrap_or(0).to_string()),
                    ("Member-Type", "member".to_owned()),
                    ("Member-Ghost", "false".to_owned()),
                    ("Energy-Level", "100".to_owned()),
                    ("Current-Energy", "0".to_owned()),
                    ("Action", action.to_owned()),
                ];
                if let Some(e) = self.chan_event_sub(
                    "CUSTOM",
                    Some("conference::maintenance"),
                    &m.uuid,
                    &lead,
                    &app,
                    &[],
                ) {
                    self.emit(&e);
                }
            }
            None => {
                let mut e = self.base_event(
                    "CUSTOM",
                    Some("conference::maintenance"),
                    "mod_conference.c:conference_new:3848",
                );
                for (k, v) in lead {
                    e.push(k, v);
                }
                e.push("Action", action);
                self.emit(&e);
            }
        }
    }

    fn join_conference(&mut self, uuid: &LegId, exec: Exec) {
        let full = exec.app.arg();
        let name = full.split('@').next().unwrap_or("").to_owned();
        if !self.conferences.contains_key(&name) {
            let conf_uuid = self.uuid();
            self.conferences.insert(
                name.clone(),
                Conf {
                    uuid: conf_uuid,
                    created_us: self.now_us,
                    members: BTreeMap::new(),
                    next_member: 1,
                    floor: None,
                },
            );
            self.conf_event(&name, "conference-create", None);
        }
        let Some(conf) = self.conferences.get_mut(&name) else {
            return;
        };
        let id = conf.next_member;
        conf.next_member += 1;
        conf.members.insert(
            id,
            Member {
                uuid: uuid.clone(),
                can_speak: true,
                joined_us: self.now_us,
            },
        );
        if let Some(c) = self.channels.get_mut(uuid) {
            c.running = Some(Running::Conference { exec });
            c.conference = Some((name.clone(), id));
        }
        self.conf_event(&name, "add-member", Some(id));
        // Capture call_control…: the first member gets no floor; the second takes it.
        let (floorless, count) = self
            .conferences
            .get(&name)
            .map(|c| (c.floor.is_none(), c.members.len()))
            .unwrap_or((false, 0));
        if floorless && count >= 2 {
            if let Some(conf) = self.conferences.get_mut(&name) {
                conf.floor = Some(id);
            }
            self.conf_event(&name, "floor-change", Some(id));
        }
    }

    fn member_action(&mut self, name: &str, id: u32, verb: &str) -> String {
        match verb {
            "mute" | "unmute" => {
                let speak = verb == "unmute";
                if let Some(m) = self
                    .conferences
                    .get_mut(name)
                    .and_then(|c| c.members.get_mut(&id))
                {
                    m.can_speak = speak;
                }
                self.conf_event(name, &format!("{verb}-member"), Some(id));
                format!("+OK {verb} {id}\n")
            }
            "kick" | "hup" => {
                self.conf_event(name, &format!("{verb}-member"), Some(id));
                let uuid = self
                    .conferences
                    .get(name)
                    .and_then(|c| c.members.get(&id))
                    .map(|m| m.uuid.clone());
                if let Some(uuid) = uuid {
                    // Capture call_control…: del-member, the conference app completes, then
                    // (hup) the leg hangs up or (kick) its dialplan ends.
                    self.leave_conference(&uuid);
                    self.finish_running(&uuid, "_none_");
                    if verb == "hup" {
                        self.hangup(&uuid, "NORMAL_CLEARING");
                    } else {
                        self.advance(&uuid);
                    }
                }
                if verb == "kick" {
                    format!("+OK kicked {id}\n")
                } else {
                    format!("+OK hup {id}\n")
                }
            }
            _ => String::new(),
        }
    }

    /// Removes a channel from its conference (del-member; the floor moves on; the
    /// conference ends when empty).
    fn leave_conference(&mut self, uuid: &LegId) {
        let Some((name, id)) = self
            .channels
            .get_mut(uuid)
            .and_then(|c| c.conference.take())
        else {
            return;
        };
        let had_floor = self
            .conferences
            .get(&name)
            .is_some_and(|c| c.floor == Some(id));
        if had_floor {
            if let Some(conf) = self.conferences.get_mut(&name) {
                conf.floor = None;
            }
            self.conf_event(&name, "floor-change", None);
        }
        self.conf_event(&name, "del-member", Some(id));
        let empty = match self.conferences.get_mut(&name) {
            Some(conf) => {
                conf.members.remove(&id);
                conf.members.is_empty()
            }
            None => false,
        };
        if empty {
            self.conf_event(&name, "conference-destroy", None);
            self.conferences.remove(&name);
        } else if had_floor {
            let next = self
                .conferences
                .get(&name)
                .and_then(|c| c.members.keys().next_back().copied());
            if let (Some(next), Some(conf)) = (next, self.conferences.get_mut(&name)) {
                conf.floor = Some(next);
                self.conf_event(&name, "floor-change", Some(next));
            }
        }
    }

    // ---- channels ------------------------------------------------------------------------

    fn dialplan(&self, exten: &str) -> Vec<App> {
        self.config
            .dialplan
            .get(exten)
            .cloned()
            .unwrap_or_else(|| self.config.inbound.clone())
    }

    #[allow(clippy::too_many_arguments)]
    fn new_channel(
        &mut self,
        uuid: LegId,
        name: String,
        outbound: bool,
        caller: (String, String),
        dest: &str,
        source: &'static str,
        vars: Vec<(String, String)>,
    ) -> LegId {
        self.session_count += 1;
        let codec = if source == "mod_loopback" {
            ("L16", 8000, 128_000)
        } else {
            ("PCMU", 8000, 64_000)
        };
        let mut c = Chan {
            uuid: uuid.clone(),
            name: name.clone(),
            outbound,
            state: ChanState::Init,
            call_state: "DOWN",
            answer_state: "ringing",
            answered: false,
            hit_dialplan: !outbound,
            created_us: self.now_us,
            answered_us: 0,
            caller_name: caller.0,
            caller_number: caller.1,
            dest: dest.to_owned(),
            context: "default".to_owned(),
            source,
            codec,
            vars: Vec::new(),
            cause: None,
            queue: VecDeque::new(),
            running: None,
            parked: None,
            socket: None,
            loopback_peer: None,
            answer_with: None,
            originate: None,
            recordings: Vec::new(),
            held: false,
            session_seq: self.session_count,
            caller_script: Vec::new(),
            conference: None,
            hanging: None,
            socket_parked: false,
            callee_number: dest.to_owned(),
        };
        c.set_var("direction", if outbound { "outbound" } else { "inbound" });
        if outbound {
            c.set_var("is_outbound", "true");
        }
        c.set_var("uuid", uuid.as_str());
        c.set_var("session_id", &c.session_seq.to_string());
        c.set_var("channel_name", &name);
        c.set_var("call_uuid", uuid.as_str());
        for (k, v) in vars {
            c.set_var(&k, &v);
        }
        self.channels.insert(uuid.clone(), c);
        self.log_new_channel(&uuid);
        uuid
    }

    fn originate(&mut self, arg: &str, origin: Origin) -> Result<(), String> {
        let words: Vec<&str> = arg.split_whitespace().collect();
        let Some(dial) = words.first() else {
            return Err("-USAGE: <call url> <exten>|&<application_name>(<app_args>)\n".into());
        };
        let then = parse_then(&words[1..]);
        if then.is_none() {
            return Err("-USAGE: <call url> <exten>|&<application_name>(<app_args>)\n".into());
        }
        self.originate_then(dial, origin, then)
    }

    /// Creates the legs of an originate; the origin hears of the answer or failure later.
    /// `Err` is a failure known at once (bad dial string, `error/…`, too many channels).
    fn originate_then(
        &mut self,
        dial: &str,
        origin: Origin,
        then: Option<Then>,
    ) -> Result<(), String> {
        self.log(&logs::ORIGINATE_START, "", "Parsing global variables");
        let Some(dial) = parse_dial_string(dial) else {
            return Err("-ERR CHAN_NOT_IMPLEMENTED\n".into());
        };
        if self.channels.len() >= MAX_CHANNELS {
            return Err("-ERR SYSTEM_SHUTDOWN\n".into());
        }
        let var = |k: &str| {
            dial.vars
                .iter()
                .rev()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
        };
        let uuid = LegId::new(var("origination_uuid").unwrap_or_else(|| self.uuid()));
        if self.channels.contains_key(&uuid) {
            return Err("-ERR DESTINATION_OUT_OF_ORDER\n".into());
        }
        let cid = (
            var("origination_caller_id_name").unwrap_or_default(),
            var("origination_caller_id_number").unwrap_or_else(|| "0000000000".into()),
        );
        let mut vars = dial.vars.clone();
        let (name, dest, source, behaviour) = match &dial.endpoint {
            Endpoint::Error { cause } => return Err(format!("-ERR {cause}\n")),
            Endpoint::Loopback { exten, .. } => (
                format!("loopback/{exten}-a"),
                exten.clone(),
                "mod_loopback",
                None,
            ),
            Endpoint::User { name, domain } => {
                let domain = domain.clone().unwrap_or_else(|| self.config.domain.clone());
                // mod_dptools' user endpoint: a name the directory lacks is SUBSCRIBER_ABSENT;
                // the directory's dial string is `${sofia_contact(...)}`, so a user without a
                // live registration resolves to error/user_not_registered.
                let Some(b) = self.config.users.get(name).cloned() else {
                    return Err("-ERR SUBSCRIBER_ABSENT\n".into());
                };
                let Some(contact) = self.registration(name).map(|r| r.contact.clone()) else {
                    return Err("-ERR USER_NOT_REGISTERED\n".into());
                };
                vars.push(("dialed_user".into(), name.clone()));
                vars.push(("dialed_domain".into(), domain.clone()));
                vars.push(("presence_id".into(), format!("{name}@{domain}")));
                // Capture sip_register…: the leg is named after the contact it calls.
                (
                    format!("sofia/internal/{name}@{contact}"),
                    name.clone(),
                    "mod_sofia",
                    Some(b),
                )
            }
            Endpoint::Gateway { gateway, number } => {
                let Some(b) = self.config.gateways.get(gateway).cloned() else {
                    return Err("-ERR GATEWAY_DOWN\n".into());
                };
                vars.push(("sip_gateway_name".into(), gateway.clone()));
                (
                    format!("sofia/gateway/{gateway}/{number}"),
                    number.clone(),
                    "mod_sofia",
                    Some(b),
                )
            }
            Endpoint::Sofia { profile, uri } => {
                let user = uri.split('@').next().unwrap_or("").to_owned();
                let b = self
                    .config
                    .users
                    .get(&user)
                    .cloned()
                    .unwrap_or(DialBehaviour::Answer {
                        ring: Duration::from_secs(1),
                    });
                (format!("sofia/{profile}/{uri}"), user, "mod_sofia", Some(b))
            }
        };
        vars.push((
            "originate_endpoint".into(),
            endpoint_kind(&dial.endpoint).into(),
        ));
        let a = self.new_channel(uuid.clone(), name, true, cid.clone(), &dest, source, vars);
        if let Some(c) = self.channels.get_mut(&a) {
            c.originate = Some((origin, then));
        }
        self.chan_emit("CHANNEL_CREATE", &a, &[], &[], &[]);
        self.chan_emit("CHANNEL_ORIGINATE", &a, &[], &[], &[]);
        match (&dial.endpoint, behaviour) {
            (Endpoint::Loopback { exten, context }, _) => {
                let b_uuid = LegId::new(self.uuid());
                // The B-leg inherits the originate's variables (capture
                // outbound_socket_async_full_linger: origination_caller_id_number and the
                // switchboard variables reach the socket), not its uuid.
                let inherited: Vec<(String, String)> = dial
                    .vars
                    .iter()
                    .filter(|(k, _)| k != "origination_uuid")
                    .cloned()
                    .chain([
                        ("other_loopback_leg_uuid".to_owned(), a.as_str().to_owned()),
                        ("loopback_leg".to_owned(), "B".to_owned()),
                    ])
                    .collect();
                let b = self.new_channel(
                    b_uuid,
                    format!("loopback/{exten}-b"),
                    false,
                    cid,
                    exten,
                    "mod_loopback",
                    inherited,
                );
                if let Some(c) = self.channels.get_mut(&a) {
                    c.callee_number = context.clone();
                    c.loopback_peer = Some(b.clone());
                    c.set_var("other_loopback_leg_uuid", b.as_str());
                    c.set_var("loopback_leg", "A");
                }
                let apps = self.dialplan(exten);
                if let Some(c) = self.channels.get_mut(&b) {
                    c.loopback_peer = Some(a.clone());
                    c.answer_with = Some(a.clone());
                    c.context = context.clone();
                    c.queue = apps.into_iter().map(Exec::new).collect();
                    c.state = ChanState::Execute;
                }
                self.chan_emit("CHANNEL_CREATE", &b, &[], &[], &[]);
                self.log_dialplan(&b);
                self.advance(&b);
            }
            (_, Some(DialBehaviour::Answer { ring })) => {
                self.progress(&a);
                self.arm(ring, Timer::Answer { uuid: a.clone() });
                self.arm_no_answer(&a);
            }
            (_, Some(DialBehaviour::NoAnswer)) => {
                self.progress(&a);
                self.arm_no_answer(&a);
            }
            (_, Some(DialBehaviour::Busy)) => {
                self.progress(&a);
                self.fail_originate(&a, "USER_BUSY");
            }
            (_, None) => self.fail_originate(&a, "CHAN_NOT_IMPLEMENTED"),
        }
        Ok(())
    }

    fn arm_no_answer(&mut self, uuid: &LegId) {
        let secs = self.channels.get(uuid).and_then(|c| {
            c.var("originate_timeout")
                .or(c.var("leg_timeout"))
                .and_then(|t| t.parse::<u64>().ok())
        });
        let after = secs
            .map(Duration::from_secs)
            .unwrap_or(self.config.originate_timeout);
        self.arm(after, Timer::NoAnswer { uuid: uuid.clone() });
    }

    fn progress(&mut self, uuid: &LegId) {
        if let Some(c) = self.channels.get_mut(uuid) {
            c.call_state = "RINGING";
            c.state = ChanState::Routing;
        }
        self.chan_emit("CHANNEL_PROGRESS", uuid, &[], &[], &[]);
    }

    fn fail_originate(&mut self, uuid: &LegId, cause: &str) {
        self.hangup(uuid, cause);
    }

    /// Answers a channel (and the loopback leg waiting for it); an originated leg then
    /// reports success to whoever waits and runs what the originate asked.
    fn answer(&mut self, uuid: &LegId) {
        let Some(c) = self.channels.get_mut(uuid) else {
            return;
        };
        if c.answered || !c.alive() {
            return;
        }
        let was = c.call_state;
        c.answered = true;
        c.answered_us = self.now_us;
        c.answer_state = "answered";
        c.call_state = "ACTIVE";
        if c.state != ChanState::Execute {
            c.state = ChanState::ConsumeMedia;
        }
        let partner = c.answer_with.take();
        let script = std::mem::take(&mut c.caller_script);
        // Capture sendmsg_execute_eventlock: the A-leg's CHANNEL_ANSWER comes first.
        if let Some(a) = &partner
            && let Some(ac) = self.channels.get_mut(a)
            && !ac.answered
        {
            let was_a = ac.call_state;
            ac.answered = true;
            ac.answered_us = self.now_us;
            ac.answer_state = "answered";
            ac.call_state = "ACTIVE";
            ac.state = ChanState::ConsumeMedia;
            self.chan_emit("CHANNEL_ANSWER", a, &[], &[], &[]);
            // Capture log_level7: mod_loopback answers the A-leg with the B-leg.
            self.chan_log(a, &logs::ANSWERED_BY_LOOPBACK, |c| {
                format!("Channel [{}] has been answered", c.name)
            });
            self.chan_log(a, &logs::CALLSTATE_ACTIVE, |c| {
                format!("({}) Callstate Change {was_a} -> ACTIVE", c.name)
            });
        }
        self.chan_emit("CHANNEL_ANSWER", uuid, &[], &[], &[]);
        self.chan_log(uuid, &logs::CALLSTATE_ACTIVE, |c| {
            format!("({}) Callstate Change {was} -> ACTIVE", c.name)
        });
        for (after, digits) in script {
            self.arm(
                after,
                Timer::CallerDtmf {
                    uuid: uuid.clone(),
                    digits,
                },
            );
        }
        if let Some(a) = partner {
            self.chan_emit("CALL_UPDATE", &a, &[], &[], &[]);
            self.originate_answered(&a);
        }
        self.originate_answered(uuid);
    }

    fn originate_answered(&mut self, uuid: &LegId) {
        let Some((origin, then)) = self.channels.get_mut(uuid).and_then(|c| c.originate.take())
        else {
            return;
        };
        if self.logging(logs::ORIGINATE_SUCCESS.level)
            && let Some(name) = self.channels.get(uuid).map(|c| c.name.clone())
        {
            let text = format!("Originate Resulted in Success: [{name}] Peer UUID: {uuid}");
            self.log(&logs::ORIGINATE_SUCCESS, uuid.as_str(), &text);
        }
        self.origin_done(origin, Ok(uuid.clone()));
        let apps = match then {
            Some(Then::App { name, arg }) => vec![App::from_parts(&name, &arg)],
            Some(Then::Exten { exten, .. }) => self.dialplan(&exten),
            None => Vec::new(),
        };
        if let Some(c) = self.channels.get_mut(uuid) {
            c.state = ChanState::Execute;
            c.hit_dialplan = true;
            c.queue.extend(apps.into_iter().map(Exec::new));
        }
        self.advance(uuid);
    }

    fn origin_done(&mut self, origin: Origin, result: Result<LegId, String>) {
        match origin {
            Origin::Api(session) => {
                let body = match &result {
                    Ok(u) => format!("+OK {u}\n"),
                    Err(cause) => format!("-ERR {cause}\n"),
                };
                self.api_reply(session, body);
                self.unblock(session);
            }
            Origin::Job { job, arg } => {
                let body = match &result {
                    Ok(u) => format!("+OK {u}\n"),
                    Err(cause) => format!("-ERR {cause}\n"),
                };
                self.api_event("originate", &arg);
                self.job_done(&job, "originate", &arg, &body);
            }
            Origin::ConferenceDial { session } => {
                // The dialled member shows its callee's id, as a transferred leg does.
                if let Ok(u) = &result
                    && let Some(c) = self.channels.get_mut(u)
                {
                    c.caller_name = "Outbound Call".to_owned();
                    c.caller_number = c.callee_number.clone();
                }
                let r = match &result {
                    Ok(_) => "SUCCESS".to_owned(),
                    Err(cause) => cause.clone(),
                };
                self.api_reply(session, format!("+OK Call Requested: result: [{r}]\n"));
                self.unblock(session);
            }
            Origin::Bridge { caller } => match result {
                Ok(peer) => {
                    let exec = match self
                        .channels
                        .get_mut(&caller)
                        .and_then(|c| c.running.take())
                    {
                        Some(Running::Dialing { exec }) => exec,
                        _ => Exec::new(App::Bridge(String::new())),
                    };
                    if let Some(c) = self.channels.get_mut(&caller) {
                        c.running = Some(Running::Dialing { exec });
                    }
                    self.bridge(&caller, &peer);
                }
                Err(cause) => {
                    if let Some(c) = self.channels.get_mut(&caller) {
                        c.set_var("originate_disposition", &cause);
                    }
                    self.finish_running(&caller, &cause);
                    self.advance(&caller);
                }
            },
        }
    }

    /// Runs the channel's queued applications until one blocks.
    fn advance(&mut self, uuid: &LegId) {
        for _ in 0..1000 {
            let Some(c) = self.channels.get_mut(uuid) else {
                return;
            };
            if !c.alive() || c.running.is_some() || c.originate.is_some() {
                return;
            }
            let Some(exec) = c.queue.pop_front() else {
                // The dialplan ran out: FreeSWITCH hangs up, unless something holds the
                // channel (park, an outbound socket, a bridge).
                if c.parked.is_none() && c.socket.is_none() && c.answer_with.is_none() {
                    self.hangup(uuid, "NORMAL_CLEARING");
                }
                return;
            };
            self.start(uuid, exec);
        }
    }

    /// Application headers as FreeSWITCH writes them after the caller profile (capture
    /// events_plain_loopback_call): Application, Application-Data when not empty,
    /// [Application-Response], Application-UUID.
    fn exec_headers(exec: &Exec, response: Option<&str>) -> Vec<(&'static str, String)> {
        let mut h = vec![("Application", exec.app.name().to_owned())];
        let data = exec.app.arg();
        if !data.is_empty() {
            h.push(("Application-Data", data));
        }
        if let Some(r) = response {
            h.push(("Application-Response", r.to_owned()));
        }
        if let Some(id) = &exec.app_uuid {
            h.push(("Application-UUID", id.as_str().to_owned()));
        }
        h
    }

    /// Gives an application run its `Application-UUID` (FreeSWITCH makes one up when the
    /// client gave no `Event-UUID`).
    fn stamp(&mut self, exec: &mut Exec) {
        if exec.app_uuid.is_none() {
            exec.app_uuid = Some(ApplicationUuid::new(self.uuid()));
        }
    }

    fn execute_event(&mut self, uuid: &LegId, exec: &Exec) {
        self.chan_log(uuid, &logs::EXECUTE, |c| {
            format!(
                "EXECUTE [depth=0] {} {}({})",
                c.name,
                exec.app.name(),
                exec.app.arg()
            )
        });
        let h = Self::exec_headers(exec, None);
        self.chan_emit("CHANNEL_EXECUTE", uuid, &[], &[], &h);
    }

    fn complete_event(&mut self, uuid: &LegId, exec: &Exec, response: &str) {
        let h = Self::exec_headers(exec, Some(response));
        self.chan_emit("CHANNEL_EXECUTE_COMPLETE", uuid, &[], &[], &h);
    }

    fn start(&mut self, uuid: &LegId, mut exec: Exec) {
        self.stamp(&mut exec);
        if let Some(c) = self.channels.get_mut(uuid) {
            c.state = ChanState::Execute;
            c.set_var("current_application", exec.app.name());
            c.set_var("current_application_data", &exec.app.arg());
        }
        match exec.app.clone() {
            App::Answer => {
                self.execute_event(uuid, &exec);
                self.answer(uuid);
                self.chan_log(uuid, &logs::ANSWERED_BY_APP, |c| {
                    format!("Channel [{}] has been answered", c.name)
                });
                self.complete_event(uuid, &exec, "_none_");
            }
            App::Park => {
                let parked = self.channels.get(uuid).is_some_and(|c| c.parked.is_some());
                self.execute_event(uuid, &exec);
                if parked {
                    // Capture sendmsg_execute_eventlock: park on a parked channel returns.
                    self.complete_event(uuid, &exec, "_none_");
                } else {
                    self.chan_emit("CHANNEL_PARK", uuid, &[], &[], &[]);
                    if let Some(c) = self.channels.get_mut(uuid) {
                        c.parked = Some(exec);
                    }
                }
            }
            App::Playback(_) => {
                self.execute_event(uuid, &exec);
                self.start_media(uuid, exec);
            }
            App::Hangup(cause) => {
                self.execute_event(uuid, &exec);
                if let Some(c) = self.channels.get_mut(uuid) {
                    c.hanging = Some(exec);
                }
                self.hangup(uuid, cause.as_deref().unwrap_or("NORMAL_CLEARING"));
            }
            App::Conference(_) => {
                self.execute_event(uuid, &exec);
                self.answer(uuid);
                self.join_conference(uuid, exec);
            }
            App::Socket { target } => {
                self.execute_event(uuid, &exec);
                let id = SessionId(self.next_session);
                self.next_session += 1;
                let mut s = Session::new(Some(uuid.clone()));
                s.myevents = None;
                self.sessions.insert(id, s);
                if let Some(c) = self.channels.get_mut(uuid) {
                    c.socket = Some(id);
                    c.parked = Some(exec);
                    c.set_var("socket_host", target.split(':').next().unwrap_or(""));
                }
                self.outbox.push(Output::Connect {
                    session: id,
                    target,
                });
            }
            App::Set(k, v) => {
                self.execute_event(uuid, &exec);
                if let Some(c) = self.channels.get_mut(uuid) {
                    c.set_var(&k, &v);
                }
                self.complete_event(uuid, &exec, "_none_");
            }
            App::Bridge(dial) => {
                self.execute_event(uuid, &exec);
                if let Some(c) = self.channels.get_mut(uuid) {
                    c.running = Some(Running::Dialing { exec });
                }
                if let Err(body) = self.originate_then(
                    &dial,
                    Origin::Bridge {
                        caller: uuid.clone(),
                    },
                    None,
                ) {
                    let cause = body.trim().trim_start_matches("-ERR ").to_owned();
                    self.origin_done(
                        Origin::Bridge {
                            caller: uuid.clone(),
                        },
                        Err(cause),
                    );
                }
            }
            App::Other(..) => {
                self.execute_event(uuid, &exec);
                self.complete_event(uuid, &exec, "_none_");
            }
        }
    }

    /// Starts a playback (PLAYBACK_START, and a timer for its end unless endless).
    fn start_media(&mut self, uuid: &LegId, exec: Exec) {
        let App::Playback(file) = &exec.app else {
            // Other media apps injected into a bridge just run.
            self.execute_event(uuid, &exec);
            self.complete_event(uuid, &exec, "_none_");
            return;
        };
        let file = file.clone();
        let endless = file.contains("loops=-1");
        let duration = tone_duration(&file)
            .or_else(|| self.config.playback_durations.get(&file).copied())
            .unwrap_or(self.config.default_playback);
        let kind = file
            .split("://")
            .next()
            .filter(|_| file.contains("://"))
            .unwrap_or("file");
        self.chan_emit_tail(
            "PLAYBACK_START",
            uuid,
            &[
                ("Playback-File-Type", kind.to_owned()),
                ("Playback-File-Path", file.clone()),
            ],
        );
        self.token += 1;
        let token = self.token;
        let Some(c) = self.channels.get_mut(uuid) else {
            return;
        };
        match c.running.take() {
            // Media on a bridged or conferenced leg keeps the leg where it is; its end is
            // reported, the leg stays.
            Some(other @ (Running::Bridge { .. } | Running::Conference { .. })) => {
                c.running = Some(other);
                if !endless {
                    self.arm(
                        duration,
                        Timer::AppDone {
                            uuid: uuid.clone(),
                            token: 0,
                        },
                    );
                }
                // The side playback's end: reported when the timer fires with token 0.
                if let Some(c) = self.channels.get_mut(uuid) {
                    c.queue.push_front(exec);
                }
                return;
            }
            other => c.running = other,
        }
        c.running = Some(Running::Playback { exec, token });
        if !endless {
            self.arm(
                duration,
                Timer::AppDone {
                    uuid: uuid.clone(),
                    token,
                },
            );
        }
    }

    /// Ends the running playback or conference: PLAYBACK_STOP and CHANNEL_EXECUTE_COMPLETE.
    fn finish_running(&mut self, uuid: &LegId, response: &str) {
        let Some(running) = self.channels.get_mut(uuid).and_then(|c| c.running.take()) else {
            return;
        };
        match running {
            Running::Playback { exec, .. } => {
                self.playback_stop(uuid, &exec);
                self.complete_event(uuid, &exec, response);
                // `loops: N`: capture sendmsg_execute_eventlock runs the app again.
                if exec.loops > 1 && response == "FILE PLAYED" {
                    let again = Exec {
                        loops: exec.loops - 1,
                        ..exec
                    };
                    if let Some(c) = self.channels.get_mut(uuid) {
                        c.queue.push_front(again);
                    }
                }
            }
            Running::Conference { exec, .. }
            | Running::Bridge { exec, .. }
            | Running::Dialing { exec } => self.complete_event(uuid, &exec, response),
        }
    }

    fn playback_stop(&mut self, uuid: &LegId, exec: &Exec) {
        let file = exec.app.arg();
        let ms = tone_duration(&file)
            .or_else(|| self.config.playback_durations.get(&file).copied())
            .unwrap_or(self.config.default_playback)
            .as_millis();
        if let Some(c) = self.channels.get_mut(uuid) {
            c.set_var("playback_ms", &ms.to_string());
            c.set_var("playback_seconds", &(ms / 1000).to_string());
        }
        self.chan_log(uuid, &logs::PLAYBACK_DONE, |_| {
            format!("done playing file {file}")
        });
        let kind = file
            .split("://")
            .next()
            .filter(|_| file.contains("://"))
            .unwrap_or("file")
            .to_owned();
        self.chan_emit_tail(
            "PLAYBACK_STOP",
            uuid,
            &[
                ("Playback-File-Type", kind),
                ("Playback-File-Path", file),
                ("Playback-Status", "done".to_owned()),
            ],
        );
    }

    /// Stops what holds a channel (park, playback, bridge, conference) before a transfer or
    /// a new park; the completions are reported as FreeSWITCH reports them.
    fn interrupt(&mut self, uuid: &LegId) {
        if let Some(Running::Bridge { .. }) =
            self.channels.get(uuid).and_then(|c| c.running.clone())
        {
            self.unbridge(uuid);
        }
        self.leave_conference(uuid);
        self.finish_running(uuid, "_none_");
        self.unpark(uuid);
        if let Some(c) = self.channels.get_mut(uuid) {
            c.queue.clear();
        }
    }

    fn unpark(&mut self, uuid: &LegId) {
        let Some(exec) = self.channels.get_mut(uuid).and_then(|c| c.parked.take()) else {
            return;
        };
        let socket_parked = self.channels.get(uuid).is_some_and(|c| c.socket_parked);
        if matches!(exec.app, App::Park) || socket_parked {
            self.chan_emit("CHANNEL_UNPARK", uuid, &[], &[], &[]);
        }
        self.complete_event(uuid, &exec, "_none_");
    }

    /// Capture call_control…: UNPARK and the park's completion on both legs, CHANNEL_EXECUTE
    /// uuid_bridge on both, then CHANNEL_BRIDGE on the first.
    fn bridge(&mut self, a: &LegId, b: &LegId) {
        let dialing = match self.channels.get_mut(a).and_then(|c| c.running.take()) {
            Some(Running::Dialing { exec }) => Some(exec),
            other => {
                if let Some(c) = self.channels.get_mut(a) {
                    c.running = other;
                }
                None
            }
        };
        for leg in [a, b] {
            if dialing.is_none() || leg == b {
                self.leave_conference(leg);
                self.finish_running(leg, "_none_");
                self.unpark(leg);
            }
        }
        let mut exec_a = dialing
            .unwrap_or_else(|| Exec::new(App::Other("uuid_bridge".into(), b.as_str().into())));
        let mut exec_b = Exec::new(App::Other("uuid_bridge".into(), a.as_str().into()));
        self.stamp(&mut exec_a);
        self.stamp(&mut exec_b);
        if matches!(exec_a.app, App::Other(..)) {
            self.execute_event(a, &exec_a);
        }
        self.execute_event(b, &exec_b);
        for (leg, peer, exec) in [(a, b, exec_a), (b, a, exec_b)] {
            if let Some(c) = self.channels.get_mut(leg) {
                c.set_var("bridge_uuid", peer.as_str());
                c.set_var("signal_bond", peer.as_str());
                c.running = Some(Running::Bridge {
                    exec,
                    peer: peer.clone(),
                });
            }
        }
        self.answer(a);
        self.answer(b);
        // Capture call_control…: Bridge-A/B lead the channel data, Other-* follow the caller.
        let lead = [
            ("Bridge-A-Unique-ID", a.as_str().to_owned()),
            ("Bridge-B-Unique-ID", b.as_str().to_owned()),
        ];
        let post = [
            ("Other-Type", "originatee".to_owned()),
            ("Other-Leg-Unique-ID", b.as_str().to_owned()),
        ];
        self.chan_emit("CHANNEL_BRIDGE", a, &lead, &[], &post);
    }

    fn unbridge(&mut self, uuid: &LegId) {
        let Some(Running::Bridge { peer, .. }) =
            self.channels.get(uuid).and_then(|c| c.running.clone())
        else {
            return;
        };
        let lead = [
            ("Bridge-A-Unique-ID", uuid.as_str().to_owned()),
            ("Bridge-B-Unique-ID", peer.as_str().to_owned()),
        ];
        self.chan_emit("CHANNEL_UNBRIDGE", uuid, &lead, &[], &[]);
        for leg in [uuid, &peer] {
            if let Some(c) = self.channels.get_mut(leg)
                && matches!(c.running, Some(Running::Bridge { .. }))
            {
                c.running = None;
            }
        }
    }

    fn dtmf(&mut self, uuid: &LegId, digits: &str, source: &str) {
        for d in digits
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '#' | '*'))
        {
            self.chan_emit(
                "DTMF",
                uuid,
                &[],
                &[],
                &[
                    ("DTMF-Digit", d.to_string()),
                    ("DTMF-Duration", "2000".to_owned()),
                    ("DTMF-Source", source.to_owned()),
                ],
            );
        }
    }

    /// Hangs a channel up with its loopback partner and bridged peer: CHANNEL_HANGUP (and
    /// the unpark and the running application's completion) for every leg, then
    /// CHANNEL_HANGUP_COMPLETE, then CHANNEL_DESTROY in reverse (captures
    /// sendmsg_execute_eventlock, events_plain_loopback_call).
    pub fn hangup(&mut self, uuid: &LegId, cause: &str) {
        let mut legs: Vec<LegId> = Vec::new();
        let mut todo = vec![uuid.clone()];
        while let Some(u) = todo.pop() {
            if legs.contains(&u) {
                continue;
            }
            let Some(c) = self.channels.get(&u) else {
                continue;
            };
            if !c.alive() {
                continue;
            }
            if let Some(p) = &c.loopback_peer {
                todo.push(p.clone());
            }
            if let Some(Running::Bridge { peer, .. }) = &c.running {
                todo.push(peer.clone());
            }
            legs.push(u);
        }
        if legs.is_empty() {
            return;
        }
        // Phase 1: each leg hangs up.
        for leg in &legs {
            let (origin, was) = {
                let Some(c) = self.channels.get_mut(leg) else {
                    continue;
                };
                let was = (c.state, c.call_state, c.hanging.is_some());
                c.state = ChanState::Hangup;
                c.call_state = "HANGUP";
                c.answer_state = "hangup";
                c.cause = Some(cause.to_owned());
                c.set_var("hangup_cause", cause);
                c.queue.clear();
                (c.originate.take(), was)
            };
            self.chan_emit("CHANNEL_HANGUP", leg, &[], &[], &[]);
            self.log_hangup(leg, leg != uuid, was, cause);
            // An inbound session bound with `myevents <uuid>` ends here (capture
            // filter_myevents_nixevent_noevents): notice right after CHANNEL_HANGUP.
            let bound: Vec<SessionId> = self
                .sessions
                .iter()
                .filter(|(_, s)| s.outbound.is_none() && s.myevents.as_ref() == Some(leg))
                .map(|(id, _)| *id)
                .collect();
            for s in bound {
                self.goodbye(s, Some(leg.clone()));
            }
            if let Some((origin, _)) = origin {
                self.origin_done(origin, Err(cause.to_owned()));
            }
            let recordings = self
                .channels
                .get_mut(leg)
                .map(|c| std::mem::take(&mut c.recordings))
                .unwrap_or_default();
            for (path, started) in recordings {
                self.record_stop(leg, &path, started, "success");
            }
            if let Some(Running::Bridge { .. }) =
                self.channels.get(leg).and_then(|c| c.running.clone())
            {
                self.unbridge(leg);
            }
            self.leave_conference(leg);
            let running = self.channels.get_mut(leg).and_then(|c| c.running.take());
            match running {
                Some(Running::Playback { exec, .. }) => {
                    self.playback_stop(leg, &exec);
                    self.complete_event(leg, &exec, "FILE PLAYED");
                }
                Some(Running::Conference { exec, .. })
                | Some(Running::Bridge { exec, .. })
                | Some(Running::Dialing { exec }) => self.complete_event(leg, &exec, "_none_"),
                None => {}
            }
            self.unpark(leg);
            // Capture events_plain_loopback_call: the hangup application completes after
            // CHANNEL_HANGUP.
            if let Some(exec) = self.channels.get_mut(leg).and_then(|c| c.hanging.take()) {
                self.complete_event(leg, &exec, "_none_");
            }
        }
        // Phase 2: HANGUP_COMPLETE; an outbound socket gets its notice after it.
        for leg in &legs {
            if let Some(c) = self.channels.get_mut(leg) {
                c.state = ChanState::Reporting;
            }
            if let Some(c) = self.channels.get_mut(leg) {
                c.set_var("end_uepoch", &self.now_us.to_string());
            }
            // Capture events_plain_loopback_call: the cause also leads the channel data.
            self.chan_emit(
                "CHANNEL_HANGUP_COMPLETE",
                leg,
                &[("Hangup-Cause", cause.to_owned())],
                &[],
                &[],
            );
            let socket = self.channels.get(leg).and_then(|c| c.socket);
            if let Some(session) = socket {
                self.socket_hangup(session, leg);
            }
            self.chan_log(leg, &logs::TO_REPORTING, |c| {
                format!("({}) State Change CS_HANGUP -> CS_REPORTING", c.name)
            });
            self.chan_log(leg, &logs::STANDARD_REPORTING, |c| {
                format!("{} Standard REPORTING, cause: {cause}", c.name)
            });
        }
        // Phase 3: the legs are destroyed.
        for leg in legs.iter().rev() {
            self.chan_emit("CHANNEL_DESTROY", leg, &[], &[], &[]);
            self.chan_log(leg, &logs::SESSION_ENDED, |c| {
                format!("Session {} ({}) Ended", c.session_seq, c.name)
            });
            self.chan_log(leg, &logs::CLOSE_CHANNEL, |c| {
                format!("Close Channel {} [CS_DESTROY]", c.name)
            });
            self.chan_log(leg, &logs::STANDARD_DESTROY, |c| {
                format!("{} Standard DESTROY", c.name)
            });
            self.channels.remove(leg);
        }
    }

    /// The log lines of a leg hanging up: who hung it up, when known from capture
    /// log_level7 (the `hangup` application, or a loopback partner), then the core's
    /// CS_HANGUP lines, which carry the cause. `was`: state, call state, hangup app running.
    fn log_hangup(
        &mut self,
        leg: &LegId,
        by_partner: bool,
        was: (ChanState, &'static str, bool),
        cause: &str,
    ) {
        let (state, call_state, by_app) = was;
        let loopback = self
            .channels
            .get(leg)
            .is_some_and(|c| c.loopback_peer.is_some());
        let who = if by_app {
            Some(&logs::HANGUP_BY_APP)
        } else if by_partner && loopback {
            Some(&logs::HANGUP_BY_LOOPBACK)
        } else {
            None
        };
        if let Some(site) = who {
            self.chan_log(leg, site, |c| {
                format!("Hangup {} [{}] [{cause}]", c.name, state.name())
            });
        }
        let (live, total) = (self.channels.len(), self.session_count);
        self.chan_log(leg, &logs::RUNNING_STATE, |c| {
            format!(
                "({}) Running State Change CS_HANGUP (Cur {live} Tot {total})",
                c.name
            )
        });
        self.chan_log(leg, &logs::CALLSTATE_HANGUP, |c| {
            format!("({}) Callstate Change {call_state} -> HANGUP", c.name)
        });
        self.chan_log(leg, &logs::STATE_HANGUP, |c| {
            format!("({}) State HANGUP", c.name)
        });
        self.chan_log(leg, &logs::STANDARD_HANGUP, |c| {
            format!("{} Standard HANGUP, cause: {cause}", c.name)
        });
    }

    /// The channel of an outbound socket hung up: with linger, a `linger` notice now and the
    /// goodbye after the linger time; else the goodbye now (captures
    /// outbound_socket_async_full_linger, _nolinger). No later event reaches the socket.
    fn socket_hangup(&mut self, session: SessionId, uuid: &LegId) {
        let Some(s) = self.sessions.get_mut(&session) else {
            return;
        };
        s.detached = true;
        let linger = s.linger;
        let name = self
            .channels
            .get(uuid)
            .map(|c| c.name.clone())
            .unwrap_or_default();
        match linger {
            Some(secs) => {
                self.send(
                    session,
                    ServerFrame::Disconnect(DisconnectNotice {
                        controlled_session: Some(uuid.clone()),
                        disposition: Some(Disposition::Linger),
                        channel_name: Some(name),
                        linger_time: Some(secs),
                        body: String::new(),
                    }),
                );
                self.arm(
                    Duration::from_secs(u64::from(secs)),
                    Timer::Linger { session },
                );
            }
            None => self.goodbye(session, Some(uuid.clone())),
        }
    }

    /// An outbound socket closed after `resume`: the dialplan goes on after `socket`.
    fn socket_returns(&mut self, uuid: &LegId) {
        if let Some(c) = self.channels.get_mut(uuid) {
            c.socket = None;
        }
        self.unpark(uuid);
        self.advance(uuid);
    }

    // ---- the log ---------------------------------------------------------------------------

    /// Whether some session logs at `level` (building a line costs nothing otherwise).
    fn logging(&self, level: LogLevel) -> bool {
        self.sessions
            .values()
            .any(|s| s.authed && !s.closing && s.log_level.is_some_and(|l| l >= level))
    }

    /// Sends one log line to every session logging at its level (mod_event_socket's
    /// socket_logger: `listener level >= line level`).
    fn log(&mut self, site: &Site, uuid: &str, text: &str) {
        let targets: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.authed && !s.closing)
            .filter(|(_, s)| s.log_level.is_some_and(|l| l >= site.level))
            .map(|(id, _)| *id)
            .collect();
        if targets.is_empty() {
            return;
        }
        let record = logs::record(site, self.now_us, uuid, text);
        for id in targets {
            self.send(id, ServerFrame::Log(record.clone()));
        }
    }

    /// A log line about a channel; `text` is only built when someone logs at that level.
    fn chan_log(&mut self, uuid: &LegId, site: &Site, text: impl FnOnce(&Chan) -> String) {
        if !self.logging(site.level) {
            return;
        }
        if let Some(text) = self.channels.get(uuid).map(text) {
            self.log(site, uuid.as_str(), &text);
        }
    }

    /// The dialplan lines of a channel about to run its queued applications (capture
    /// log_level7: the hunt, then one `Action` line per application).
    fn log_dialplan(&mut self, uuid: &LegId) {
        self.chan_log(uuid, &logs::DIALPLAN_HUNT, |c| {
            format!(
                "Processing {} <{}>->{} in context {}",
                c.caller_name, c.caller_number, c.dest, c.context
            )
        });
        if !self.logging(logs::DIALPLAN_ACTION.level) {
            return;
        }
        let lines: Vec<String> = self
            .channels
            .get(uuid)
            .map(|c| {
                c.queue
                    .iter()
                    .map(|e| {
                        format!(
                            "Dialplan: {} Action {}({}) ",
                            c.name,
                            e.app.name(),
                            e.app.arg()
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        for line in lines {
            self.log(&logs::DIALPLAN_ACTION, uuid.as_str(), &line);
        }
    }

    /// A channel exists: `New Channel`, then its state machine enters CS_INIT.
    fn log_new_channel(&mut self, uuid: &LegId) {
        let (live, total) = (self.channels.len(), self.session_count);
        self.chan_log(uuid, &logs::NEW_CHANNEL, |c| {
            format!("New Channel {} [{}]", c.name, c.uuid)
        });
        self.chan_log(uuid, &logs::RUNNING_STATE, |c| {
            format!(
                "({}) Running State Change CS_INIT (Cur {live} Tot {total})",
                c.name
            )
        });
        self.chan_log(uuid, &logs::STATE_INIT, |c| {
            format!("({}) State INIT", c.name)
        });
    }

    // ---- registrations -----------------------------------------------------------------------

    /// The live registration of directory user `user`.
    fn registration(&self, user: &str) -> Option<&Reg> {
        self.registrations.get(user).filter(|r| r.live(self.now_us))
    }

    /// A directory user's softphone sends REGISTER (digest authentication passes): with an
    /// expiry, CUSTOM sofia::pre_register, sofia::register_attempt and sofia::register, then
    /// MESSAGE_QUERY unless one went out for that user in the last 30 s (capture
    /// sip_register_inbound_call_dtmf_outbound_user); with `Expires: 0`, sofia::unregister,
    /// fired whether or not the user was registered (capture sip_unregister_events). Err: not
    /// a directory user, or text that cannot go into a header.
    pub fn register(&mut self, r: &Registration) -> Result<(), String> {
        r.check()?;
        if !self.config.users.contains_key(&r.user) {
            return Err(format!("{} is not a directory user", r.user));
        }
        let call_id = match &r.call_id {
            Some(id) => id.clone(),
            None => format!("{}@{}", self.uuid(), r.source.ip()),
        };
        let reg = Reg::from_register(r, call_id, self.now_us);
        let user = r.user.clone();
        let domain = self.config.domain.clone();
        let contact = reg.contact_header(&user);
        let expires = reg.expires.to_string();
        let net = [
            ("network-ip", reg.source_ip.clone()),
            ("network-port", reg.source_port.to_string()),
        ];
        let auth = [("username", user.clone()), ("realm", domain.clone())];
        let agent = ("user-agent", reg.user_agent.clone());
        let site = |line| format!("sofia_reg.c:sofia_reg_handle_register_token:{line}");
        if r.expires == 0 {
            self.registrations.remove(&user);
            let mut e = self.base_event("CUSTOM", Some("sofia::unregister"), &site(2213));
            e.push("profile-name", "internal");
            e.push(auth[0].0, auth[0].1.clone());
            e.push("from-user", user.clone());
            e.push("from-host", domain.clone());
            e.push("contact", contact);
            e.push("call-id", reg.call_id.clone());
            e.push("rpid", "unknown");
            e.push(auth[1].0, auth[1].1.clone());
            for (k, v) in net.iter().chain([&agent]).chain([&("expires", expires)]) {
                e.push(*k, v.clone());
            }
            for (k, v) in registry::directory_vars(&user, &domain) {
                e.push(k, v);
            }
            self.emit(&e);
            return Ok(());
        }
        let call_id = reg.call_id.clone();
        // The headers every sofia::*register* event opens with, `presence-hosts` aside.
        let lead = |with_hosts: bool| {
            let mut h = vec![
                ("profile-name", "internal".to_owned()),
                ("from-user", user.clone()),
                ("from-host", domain.clone()),
            ];
            if with_hosts {
                h.push(("presence-hosts", format!("{domain},{domain}")));
            }
            h.extend([
                ("contact", contact.clone()),
                ("call-id", call_id.clone()),
                ("rpid", "unknown".to_owned()),
                ("status", "Registered(UDP)".to_owned()),
                ("expires", expires.clone()),
                ("to-user", user.clone()),
                ("to-host", domain.clone()),
            ]);
            h.extend(net.iter().cloned());
            h
        };
        let mut pre = self.base_event("CUSTOM", Some("sofia::pre_register"), &site(1810));
        for (k, v) in lead(false).into_iter().chain([agent.clone()]) {
            pre.push(k, v);
        }
        self.emit(&pre);
        // Capture sip_register…: sipp's digest answer is reported as RENEWED.
        let mut attempt = self.base_event("CUSTOM", Some("sofia::register_attempt"), &site(1606));
        let attempt_tail = [agent.clone(), ("auth-result", "RENEWED".to_owned())];
        for (k, v) in lead(false)
            .into_iter()
            .chain(auth.clone())
            .chain(attempt_tail)
        {
            attempt.push(k, v);
        }
        self.emit(&attempt);
        self.registrations.insert(user.clone(), reg);
        let mut done = self.base_event("CUSTOM", Some("sofia::register"), &site(2059));
        let vars = registry::directory_vars(&user, &domain);
        for (k, v) in lead(true)
            .into_iter()
            .chain(auth)
            .chain([agent])
            .chain(vars)
        {
            done.push(k, v);
        }
        self.emit(&done);
        let recent = self
            .mwi_sent
            .get(&user)
            .is_some_and(|at| self.now_us - at < registry::MWI_DEBOUNCE_US);
        if !recent {
            self.mwi_sent.insert(user.clone(), self.now_us);
            let mut q = self.base_event("MESSAGE_QUERY", None, &site(2168));
            q.push("Message-Account", format!("sip:{user}@{domain}"));
            q.push("VM-Sofia-Profile", "internal");
            q.push("VM-Call-ID", call_id);
            self.emit(&q);
        }
        Ok(())
    }

    // ---- time and the outside --------------------------------------------------------------

    /// A timer armed earlier is due.
    pub fn fire(&mut self, timer: Timer) {
        match timer {
            Timer::AppDone { uuid, token } => {
                if token == 0 {
                    // A playback beside a bridge or conference ended.
                    let exec = self
                        .channels
                        .get_mut(&uuid)
                        .and_then(|c| c.queue.pop_front());
                    if let Some(exec) = exec {
                        self.playback_stop(&uuid, &exec);
                        self.complete_event(&uuid, &exec, "FILE PLAYED");
                    }
                    return;
                }
                let current = matches!(
                    self.channels.get(&uuid).and_then(|c| c.running.as_ref()),
                    Some(Running::Playback { token: t, .. }) if *t == token
                );
                if current {
                    self.finish_running(&uuid, "FILE PLAYED");
                    self.advance(&uuid);
                }
            }
            Timer::Answer { uuid } => {
                let ringing = self
                    .channels
                    .get(&uuid)
                    .is_some_and(|c| c.alive() && !c.answered);
                if ringing {
                    self.answer(&uuid);
                }
            }
            Timer::NoAnswer { uuid } => {
                let ringing = self
                    .channels
                    .get(&uuid)
                    .is_some_and(|c| c.alive() && !c.answered);
                if ringing {
                    self.hangup(&uuid, "NO_ANSWER");
                }
            }
            Timer::CallerDtmf { uuid, digits } => {
                if self.channels.get(&uuid).is_some_and(Chan::alive) {
                    self.dtmf(&uuid, &digits, "RTP");
                }
            }
            Timer::CallerHangup { uuid } => {
                if self.channels.get(&uuid).is_some_and(Chan::alive) {
                    self.hangup(&uuid, "NORMAL_CLEARING");
                }
            }
            Timer::Linger { session } => {
                let bound = self.sessions.get(&session).and_then(|s| s.outbound.clone());
                if self.sessions.contains_key(&session) {
                    self.goodbye(session, bound);
                }
            }
        }
    }

    /// A scripted SIP call arrives: a `sofia/internal/<caller>@<domain>` channel runs the
    /// dialplan for its destination. Returns its uuid.
    pub fn inbound_call(&mut self, call: &InboundCall) -> Result<LegId, String> {
        if self.channels.len() >= MAX_CHANNELS {
            return Err("too many channels".to_owned());
        }
        if call.caller_number.contains(['\n', '\r']) || call.destination.contains(['\n', '\r']) {
            return Err("caller number and destination must be one line".to_owned());
        }
        let uuid = LegId::new(self.uuid());
        let domain = self.config.domain.clone();
        let mut vars = vec![
            ("sip_from_user".to_owned(), call.caller_number.clone()),
            ("sip_to_user".to_owned(), call.destination.clone()),
            (
                "presence_id".to_owned(),
                format!("{}@{domain}", call.caller_number),
            ),
        ];
        vars.extend(call.vars.iter().cloned());
        let uuid = self.new_channel(
            uuid,
            format!("sofia/internal/{}@{domain}", call.caller_number),
            false,
            (call.caller_name.clone(), call.caller_number.clone()),
            &call.destination,
            "mod_sofia",
            vars,
        );
        let apps = self.dialplan(&call.destination);
        if let Some(c) = self.channels.get_mut(&uuid) {
            c.caller_script = call.dtmf.clone();
            c.queue = apps.into_iter().map(Exec::new).collect();
            c.state = ChanState::Routing;
            c.originate = None;
        }
        self.chan_emit("CHANNEL_CREATE", &uuid, &[], &[], &[]);
        self.log_dialplan(&uuid);
        if let Some(after) = call.hangup_after {
            self.arm(after, Timer::CallerHangup { uuid: uuid.clone() });
        }
        self.advance(&uuid);
        Ok(uuid)
    }

    /// Fault: the far end of a channel hangs up with `cause` (`NORMAL_CLEARING`,
    /// `USER_BUSY`, …). False when there is no such live channel.
    pub fn kill_channel(&mut self, uuid: &LegId, cause: &str) -> bool {
        if !self.channels.get(uuid).is_some_and(Chan::alive) {
            return false;
        }
        self.hangup(uuid, cause);
        true
    }

    /// The far end of a channel presses digits (DTMF events, source RTP).
    pub fn caller_dtmf(&mut self, uuid: &LegId, digits: &str) -> bool {
        if !self.channels.get(uuid).is_some_and(Chan::alive) {
            return false;
        }
        self.dtmf(uuid, digits, "RTP");
        true
    }
}

/// The events `myevents` subscribes to (mod_event_socket's list: no PLAYBACK_*, as the
/// captures filter_myevents_nixevent_noevents and outbound_socket_* show).
const MYEVENTS: [&str; 23] = [
    "CHANNEL_ANSWER",
    "CHANNEL_APPLICATION",
    "CHANNEL_BRIDGE",
    "CHANNEL_CREATE",
    "CHANNEL_DATA",
    "CHANNEL_DESTROY",
    "CHANNEL_EXECUTE",
    "CHANNEL_EXECUTE_COMPLETE",
    "CHANNEL_HANGUP",
    "CHANNEL_HANGUP_COMPLETE",
    "CHANNEL_ORIGINATE",
    "CHANNEL_UUID",
    "CHANNEL_OUTGOING",
    "CHANNEL_PARK",
    "CHANNEL_PROGRESS",
    "CHANNEL_PROGRESS_MEDIA",
    "CHANNEL_STATE",
    "CHANNEL_UNBRIDGE",
    "CHANNEL_UNPARK",
    "DETECTED_SPEECH",
    "DTMF",
    "NOTALK",
    "TALK",
];

/// What an api command produced: its body now, or later (a blocking originate).
enum ApiResult {
    Now(String),
    Later,
}

const SHOW_COLUMNS: [&str; 38] = [
    "uuid",
    "direction",
    "created",
    "created_epoch",
    "name",
    "state",
    "cid_name",
    "cid_num",
    "ip_addr",
    "dest",
    "application",
    "application_data",
    "dialplan",
    "context",
    "read_codec",
    "read_rate",
    "read_bit_rate",
    "write_codec",
    "write_rate",
    "write_bit_rate",
    "secure",
    "hostname",
    "presence_id",
    "presence_data",
    "accountcode",
    "callstate",
    "callee_name",
    "callee_num",
    "callee_direction",
    "call_uuid",
    "sent_callee_name",
    "sent_callee_num",
    "initial_cid_name",
    "initial_cid_num",
    "initial_ip_addr",
    "initial_dest",
    "initial_dialplan",
    "initial_context",
];

fn endpoint_kind(e: &Endpoint) -> &'static str {
    match e {
        Endpoint::Loopback { .. } => "loopback",
        Endpoint::User { .. } => "user",
        Endpoint::Gateway { .. } | Endpoint::Sofia { .. } => "sofia",
        Endpoint::Error { .. } => "error",
    }
}

/// `Event-Calling-File:Function:Line` as FreeSWITCH 1.10.12 reports them per event.
fn calling_site(name: &str) -> &'static str {
    match name {
        "CHANNEL_CREATE" => "switch_core_state_machine.c:switch_core_session_run:626",
        "CHANNEL_ANSWER" | "CHANNEL_PROGRESS" => {
            "switch_channel.c:switch_channel_perform_mark_answered:3906"
        }
        "CHANNEL_EXECUTE" | "CHANNEL_EXECUTE_COMPLETE" => {
            "switch_core_session.c:switch_core_session_exec:2967"
        }
        "CHANNEL_HANGUP" => "switch_channel.c:switch_channel_perform_hangup:3300",
        "CHANNEL_HANGUP_COMPLETE" => {
            "switch_core_state_machine.c:switch_core_session_reporting_state:946"
        }
        "CHANNEL_DESTROY" => "switch_core_session.c:switch_core_session_perform_destroy:1598",
        "CHANNEL_BRIDGE" | "CHANNEL_UNBRIDGE" => "switch_ivr_bridge.c:audio_bridge_thread:584",
        "CHANNEL_PARK" | "CHANNEL_UNPARK" => "switch_ivr.c:switch_ivr_park:1039",
        "PLAYBACK_START" | "PLAYBACK_STOP" => "switch_ivr_play_say.c:switch_ivr_play_file:1604",
        "RECORD_START" | "RECORD_STOP" => "switch_ivr_async.c:record_callback:1351",
        "DTMF" => "switch_channel.c:switch_channel_dequeue_dtmf:677",
        "CUSTOM" => "conference_member.c:conference_member_add:962",
        _ => "switch_channel.c:switch_channel_event_set_data:2769",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(outputs: &[Output]) -> String {
        outputs
            .iter()
            .filter_map(|o| match o {
                Output::Send { bytes, .. } => Some(String::from_utf8_lossy(bytes).into_owned()),
                _ => None,
            })
            .collect()
    }

    /// Time is an input: a ringing user answers when the world is told its timer fired, and
    /// only then does the blocking `api originate` get its reply.
    #[test]
    fn a_blocking_originate_answers_when_the_ring_timer_fires() {
        let mut w = World::new(WorldConfig::capture("ClueCon", None), 1, 1_000_000);
        let s = w.accept();
        w.command(
            s,
            Command::Auth {
                password: "ClueCon".into(),
            },
        );
        w.drain();
        w.command(
            s,
            Command::Api {
                command: "originate {origination_uuid=u1}user/1000 &park()".into(),
            },
        );
        let out = w.drain();
        assert!(!sent(&out).contains("api/response"));
        let timer = out.iter().find_map(|o| match o {
            Output::Arm {
                timer: t @ Timer::Answer { .. },
                after,
            } => Some((t.clone(), *after)),
            _ => None,
        });
        let (timer, after) = timer.expect("a ring timer");
        assert_eq!(after, Duration::from_secs(1));
        // Commands sent meanwhile wait for the originate, as on FreeSWITCH's socket.
        w.command(
            s,
            Command::Api {
                command: "version".into(),
            },
        );
        assert!(sent(&w.drain()).is_empty());
        w.set_now(2_000_000);
        w.fire(timer);
        let text = sent(&w.drain());
        let reply = text.find("+OK u1\n").expect("the originate's reply");
        let version = text
            .find("FreeSWITCH Version")
            .expect("the queued command ran");
        assert!(reply < version);
        assert_eq!(w.channel_ids(), [LegId::new("u1")]);
    }

    fn api(w: &mut World, s: SessionId, command: &str) -> String {
        w.command(
            s,
            Command::Api {
                command: command.into(),
            },
        );
        sent(&w.drain())
    }

    /// `user/<n>` reaches a directory user only while its softphone is registered, at the
    /// registered contact; `sofia_contact` and the registration table follow.
    #[test]
    fn user_legs_reach_only_registered_softphones() {
        let mut config = WorldConfig::capture("ClueCon", None);
        config.softphones_registered = false;
        let mut w = World::new(config, 1, 1_000_000);
        let s = w.accept();
        w.command(
            s,
            Command::Auth {
                password: "ClueCon".into(),
            },
        );
        w.drain();
        assert!(
            api(&mut w, s, "originate user/1000 &park()").ends_with("-ERR USER_NOT_REGISTERED\n")
        );
        assert!(
            api(&mut w, s, "originate user/9999 &park()").ends_with("-ERR SUBSCRIBER_ABSENT\n"),
            "a name the directory lacks"
        );
        assert!(
            api(&mut w, s, "sofia_contact 1000@127.0.0.1").ends_with("error/user_not_registered")
        );
        let contact = "127.0.0.1:5091".parse().unwrap();
        w.register(&Registration::new("1000", contact)).unwrap();
        assert!(w.register(&Registration::new("9999", contact)).is_err());
        w.set_now(1_500_000);
        assert!(
            api(&mut w, s, "sofia_contact internal/1000@127.0.0.1")
                .ends_with("\n\nsofia/internal/sip:1000@127.0.0.1:5091")
        );
        let table = api(&mut w, s, "sofia status profile internal reg");
        assert!(table.contains("Total items returned: 1\n"), "{table}");
        assert!(
            table.contains("EXP(1970-01-01 01:01:01) EXPSECS(3660)\n"),
            "{table}"
        );
        // A blocking originate holds this session until the softphone answers.
        api(
            &mut w,
            s,
            "originate {origination_uuid=u1}user/1000 &park()",
        );
        let s = w.accept();
        w.command(
            s,
            Command::Auth {
                password: "ClueCon".into(),
            },
        );
        w.drain();
        assert_eq!(
            w.channel_var(&LegId::new("u1"), "channel_name").as_deref(),
            Some("sofia/internal/1000@127.0.0.1:5091")
        );
        w.register(&Registration::unregistering("1000", contact))
            .unwrap();
        assert!(
            api(&mut w, s, "sofia_contact 1000@127.0.0.1").ends_with("error/user_not_registered")
        );
        // A registration lapses when its expiry passes without a new REGISTER.
        let mut short = Registration::new("1001", contact);
        short.expires = 10;
        w.register(&short).unwrap();
        assert!(api(&mut w, s, "sofia_contact 1001").ends_with(":5091"));
        w.set_now(12_000_000);
        assert!(api(&mut w, s, "sofia_contact 1001").ends_with("error/user_not_registered"));
    }

    #[test]
    fn uuids_look_like_freeswitch_uuids() {
        let mut w = World::new(WorldConfig::capture("ClueCon", None), 7, 0);
        let u = w.uuid();
        assert_eq!(u.len(), 36);
        assert_eq!(u.as_bytes()[14], b'4');
        assert_ne!(u, w.uuid());
    }
}
