//! The FreeSWITCH handler's sans-IO core: [`MediaCommand`]s planned as ESL `api` command lines,
//! their replies checked against the reply forms of the captures, ESL events normalised into
//! [`MediaEvent`]s, the leg table, and resync from `show channels as json`.
//!
//! No socket, no task, no clock: [`FsState`] takes events and replies and returns events.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use crate::media::AmdResult;
use crate::media::{
    CONTACT_VARIABLE, ConferenceAction, ConferenceMember, HangupCause, LegDirection, LegId,
    LegSnapshot, MediaCommand, MediaEvent, OriginateRequest, OriginateTarget, PlaySource,
    RecordFormat, RecordTarget,
};
use crate::model::ContactId;

use super::codec::{Event, Reply};

/// The events the handler subscribes to (`event json …`): every one [`FsState::on_event`]
/// reads, and BACKGROUND_JOB for bgapi results.
pub const SUBSCRIBED_EVENTS: &[&str] = &[
    "CHANNEL_CREATE",
    "CHANNEL_ANSWER",
    "CHANNEL_BRIDGE",
    "CHANNEL_UNBRIDGE",
    "CHANNEL_HANGUP",
    "CHANNEL_HANGUP_COMPLETE",
    "CHANNEL_DESTROY",
    "CHANNEL_EXECUTE_COMPLETE",
    "DTMF",
    "PLAYBACK_START",
    "PLAYBACK_STOP",
    "RECORD_START",
    "RECORD_STOP",
    "BACKGROUND_JOB",
    "CUSTOM",
    "conference::maintenance",
    "avmd::beep",
];

/// The dialplan context conference rooms are created in (`conference <room>@<profile>`).
pub const CONFERENCE_PROFILE: &str = "default";

/// A command could not be planned (before any IO).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// A value would break the api command line (a blank in a uuid, a path with spaces, …).
    #[error("{what} {value:?} cannot be sent to FreeSWITCH: {reason}")]
    Invalid {
        /// Which argument.
        what: &'static str,
        /// The value (cut).
        value: String,
        /// Why.
        reason: &'static str,
    },
    /// A conference operation on a leg that is not a member of the room.
    #[error("leg {leg} is not a member of conference {room}")]
    NotAMember {
        /// The room.
        room: String,
        /// The leg.
        leg: String,
    },
}

/// What a reply must look like to count as success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// `+OK …` (uuid_* commands, conference member commands).
    Ok,
    /// Anything but `-ERR …` (listings, values).
    NotErr,
}

/// One `api` command line and the reply it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiCall {
    /// The command line after `api ` (or `bgapi `).
    pub command: String,
    /// What success looks like.
    pub expect: Expect,
    /// Send as `bgapi` (originate: it blocks until answered).
    pub background: bool,
}

impl ApiCall {
    fn ok(command: String) -> Self {
        ApiCall {
            command,
            expect: Expect::Ok,
            background: false,
        }
    }
}

/// What the plan's result means for the command's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanKind {
    /// Done when every call succeeded.
    Plain,
    /// An originate of this leg.
    Originate(LegId),
    /// A conference listing of this room.
    ListConference(String),
}

/// The api calls that carry out one command, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The calls.
    pub calls: Vec<ApiCall>,
    /// How to read the result.
    pub kind: PlanKind,
}

/// Why a reply is a failure: `-ERR` text, or the text that is not the `+OK` expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyFailure {
    /// FreeSWITCH has no such channel (`-ERR No such channel!`, `-ERR invalid session id`).
    NoSuchChannel(String),
    /// Any other refusal, in FreeSWITCH's words.
    Refused(String),
}

/// Checks an api reply body against what the call expects (README, "Replies": errors are body
/// text: `-ERR nosuchcmd Command not found!`, `-ERR No such channel!`).
pub fn check_reply(call: &ApiCall, body: &str) -> Result<(), ReplyFailure> {
    let reply = Reply::classify(body.into());
    let text = body.trim_end_matches(['\n', '\r']);
    match (&reply, call.expect) {
        (Reply::Ok(_), _) | (Reply::Value(_), Expect::NotErr) => Ok(()),
        (Reply::Err(reason), _) => {
            let lower = reason.to_ascii_lowercase();
            if lower.contains("no such channel") || lower.contains("invalid session id") {
                Err(ReplyFailure::NoSuchChannel(text.to_owned()))
            } else {
                Err(ReplyFailure::Refused(text.to_owned()))
            }
        }
        (Reply::Value(_), Expect::Ok) => Err(ReplyFailure::Refused(text.to_owned())),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Leg {
    contact: Option<ContactId>,
    answered: bool,
    bridged_to: Option<LegId>,
    hung_up: bool,
}

/// A channel as `show channels as json` lists it, with what resync asked per channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelRow {
    /// `uuid`.
    pub leg: LegId,
    /// `direction`.
    pub direction: LegDirection,
    /// `callstate` is ACTIVE or HELD.
    pub answered: bool,
    /// `cid_num`.
    pub caller: Option<String>,
    /// `dest`.
    pub destination: Option<String>,
    /// [`CONTACT_VARIABLE`], from `uuid_getvar` (resync fills it).
    pub contact: Option<ContactId>,
    /// `bridge_uuid`, from `uuid_getvar` (resync fills it).
    pub bridged_to: Option<LegId>,
}

/// `show channels as json` could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ListError {
    /// Not the JSON FreeSWITCH writes (`{"row_count": N, "rows": [...]}`).
    #[error(
        "`show channels as json` answered what is not a channel list: {reason} (in {excerpt:?})"
    )]
    NotAList {
        /// Why.
        reason: String,
        /// The start of the reply.
        excerpt: String,
    },
}

/// Reads `show channels as json` (0 rows: `{"row_count": 0}`, no `rows`).
pub fn parse_channels(body: &str) -> Result<Vec<ChannelRow>, ListError> {
    let bad = |reason: String| ListError::NotAList {
        reason,
        excerpt: body.chars().take(80).collect(),
    };
    let value: serde_json::Value =
        serde_json::from_str(body.trim()).map_err(|e| bad(e.to_string()))?;
    let Some(object) = value.as_object() else {
        return Err(bad("not an object".into()));
    };
    if !object.contains_key("row_count") {
        return Err(bad("no row_count".into()));
    }
    let Some(rows) = object.get("rows") else {
        return Ok(Vec::new());
    };
    let Some(rows) = rows.as_array() else {
        return Err(bad("rows is not an array".into()));
    };
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let text = |k: &str| {
            row.get(k)
                .and_then(|v| v.as_str())
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let Some(uuid) = text("uuid") else {
            return Err(bad("a row without uuid".into()));
        };
        let callstate = text("callstate").unwrap_or_default();
        out.push(ChannelRow {
            leg: LegId::new(uuid),
            direction: if text("direction").as_deref() == Some("inbound") {
                LegDirection::Inbound
            } else {
                LegDirection::Outbound
            },
            answered: matches!(callstate.as_str(), "ACTIVE" | "HELD"),
            caller: text("cid_num"),
            destination: text("dest"),
            contact: None,
            bridged_to: None,
        });
    }
    Ok(out)
}

/// A contact id from a channel variable's text; `_undef_` (uuid_getvar of an unset variable)
/// and `-ERR …` are no contact.
pub fn parse_contact(text: &str) -> Option<ContactId> {
    let t = text.trim();
    let t = t.strip_prefix("contact#").unwrap_or(t);
    t.parse().ok().map(ContactId)
}

/// A leg id from `uuid_getvar … bridge_uuid` (`_undef_` or an error: none).
pub fn parse_leg(text: &str) -> Option<LegId> {
    let t = text.trim();
    (!t.is_empty() && !t.starts_with("-ERR") && t != "_undef_" && !t.contains(char::is_whitespace))
        .then(|| LegId::new(t))
}

/// Reads `conference <room> list`: `id;name;uuid;cid_name;cid_num;flags;…` per line (fixture
/// call_control_…). A member without `speak` in its flags is muted.
pub fn parse_conference_list(body: &str) -> Vec<ConferenceMember> {
    body.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(';').collect();
            if f.len() < 6 || f[0].parse::<u32>().is_err() {
                return None;
            }
            Some(ConferenceMember {
                member: f[0].to_owned(),
                leg: LegId::new(f[2]),
                muted: !f[5].split('|').any(|x| x == "speak"),
            })
        })
        .collect()
}

fn word<'a>(what: &'static str, value: &'a str) -> Result<&'a str, PlanError> {
    if value.is_empty() {
        return Err(PlanError::Invalid {
            what,
            value: String::new(),
            reason: "is empty",
        });
    }
    if value.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return Err(PlanError::Invalid {
            what,
            value: value.chars().take(60).collect(),
            reason: "contains a blank or a control character (api arguments are split on blanks)",
        });
    }
    Ok(value)
}

/// One `{name=value}` variable of an originate. Commas separate variables, so they are escaped;
/// a value with blanks is quoted; braces and quotes cannot be written safely.
fn originate_var(name: &str, value: &str) -> Result<String, PlanError> {
    word("variable name", name)?;
    if name.contains(['=', ',', '{', '}', '\'']) {
        return Err(PlanError::Invalid {
            what: "variable name",
            value: name.to_owned(),
            reason: "contains = , { } or '",
        });
    }
    if value.contains(['{', '}', '\'', '\n', '\r']) {
        return Err(PlanError::Invalid {
            what: "variable value",
            value: value.chars().take(60).collect(),
            reason: "contains { } ' or a line break",
        });
    }
    let escaped = value.replace(',', "\\,");
    if escaped.contains(char::is_whitespace) {
        Ok(format!("{name}='{escaped}'"))
    } else {
        Ok(format!("{name}={escaped}"))
    }
}

/// The dial string of an originate target (FreeSWITCH endpoints).
pub fn dial_string(target: &OriginateTarget) -> Result<String, PlanError> {
    Ok(match target {
        OriginateTarget::SipUser { user, domain: None } => format!("user/{}", word("user", user)?),
        OriginateTarget::SipUser {
            user,
            domain: Some(d),
        } => format!("user/{}@{}", word("user", user)?, word("domain", d)?),
        OriginateTarget::Gateway { gateway, number } => format!(
            "sofia/gateway/{}/{}",
            word("gateway", gateway)?,
            word("number", number)?
        ),
        OriginateTarget::Local { extension, context } => format!(
            "loopback/{}/{}",
            word("extension", extension)?,
            word("context", context)?
        ),
        OriginateTarget::Raw(s) => word("dial string", s)?.to_owned(),
    })
}

/// The `originate` command line: Switchboard's leg id as `origination_uuid`, the contact as
/// [`CONTACT_VARIABLE`], caller id and ring timeout, then the caller's variables; the leg
/// parks when answered (the controller decides what happens next).
pub fn originate_command(req: &OriginateRequest) -> Result<String, PlanError> {
    let mut vars = vec![
        originate_var("origination_uuid", word("leg", req.leg.as_str())?)?,
        originate_var(CONTACT_VARIABLE, &req.contact.0.to_string())?,
        originate_var(
            "originate_timeout",
            &req.timeout.as_secs().max(1).to_string(),
        )?,
    ];
    if let Some(n) = &req.caller_id_number {
        vars.push(originate_var("origination_caller_id_number", n)?);
    }
    if let Some(n) = &req.caller_id_name {
        vars.push(originate_var("origination_caller_id_name", n)?);
    }
    for (k, v) in &req.variables {
        if k == CONTACT_VARIABLE || k == "origination_uuid" {
            continue;
        }
        vars.push(originate_var(k, v)?);
    }
    Ok(format!(
        "originate {{{}}}{} &park()",
        vars.join(","),
        dial_string(&req.target)?
    ))
}

fn media_path(source: &PlaySource) -> Result<String, PlanError> {
    Ok(match source {
        PlaySource::File(f) => word("file", f)?.to_owned(),
        PlaySource::Tone(t) => {
            let t = word("tone", t)?;
            if t.starts_with("tone_stream://") {
                t.to_owned()
            } else {
                format!("tone_stream://{t}")
            }
        }
        PlaySource::Music(class) => moh(class)?,
    })
}

/// Music on hold of a class: `default` is FreeSWITCH's stock `local_stream://moh`.
fn moh(class: &str) -> Result<String, PlanError> {
    let class = word("music class", class)?;
    Ok(if class == "default" {
        "local_stream://moh".to_owned()
    } else if class.contains("://") {
        class.to_owned()
    } else {
        format!("local_stream://{class}")
    })
}

/// The handler's state: legs, pending originates and playbacks, conference members.
#[derive(Debug, Clone, Default)]
pub struct FsState {
    legs: HashMap<LegId, Leg>,
    /// Originated legs whose CHANNEL_CREATE has not come yet, with their contacts.
    originating: HashMap<LegId, ContactId>,
    /// Playback ids given with Play, in order, per leg: PLAYBACK_START takes the oldest.
    queued_playbacks: HashMap<LegId, VecDeque<String>>,
    /// The playback running on a leg.
    playing: HashMap<LegId, String>,
    /// Conference membership: leg → (room, member id).
    members: HashMap<LegId, (String, String)>,
}

/// At most this many playback ids wait per leg (bounded memory).
const MAX_QUEUED_PLAYBACKS: usize = 64;

impl FsState {
    /// An empty state.
    pub fn new() -> Self {
        FsState::default()
    }

    /// Legs up now (for load).
    pub fn leg_count(&self) -> usize {
        self.legs.len()
    }

    /// Whether a leg is known.
    pub fn knows(&self, leg: &LegId) -> bool {
        self.legs.contains_key(leg)
    }

    /// The contact a leg carries.
    pub fn contact_of(&self, leg: &LegId) -> Option<ContactId> {
        self.legs.get(leg).and_then(|l| l.contact)
    }

    /// The leg a leg is bridged to.
    pub fn bridged_to(&self, leg: &LegId) -> Option<&LegId> {
        self.legs.get(leg).and_then(|l| l.bridged_to.as_ref())
    }

    /// The api calls for a command. Records what events of the command will need (the
    /// originate's contact, a playback id).
    pub fn plan(&mut self, command: &MediaCommand) -> Result<Plan, PlanError> {
        let plain = |calls: Vec<ApiCall>| Plan {
            calls,
            kind: PlanKind::Plain,
        };
        Ok(match command {
            MediaCommand::Originate(req) => {
                let line = originate_command(req)?;
                self.originating.insert(req.leg.clone(), req.contact);
                Plan {
                    calls: vec![ApiCall {
                        command: line,
                        expect: Expect::Ok,
                        background: true,
                    }],
                    kind: PlanKind::Originate(req.leg.clone()),
                }
            }
            MediaCommand::Answer { leg } => plain(vec![ApiCall::ok(format!(
                "uuid_answer {}",
                word("leg", leg.as_str())?
            ))]),
            MediaCommand::Hangup { leg, cause } => plain(vec![ApiCall::ok(format!(
                "uuid_kill {} {}",
                word("leg", leg.as_str())?,
                word("hangup cause", cause.as_str())?
            ))]),
            MediaCommand::Park { leg, music } => {
                let leg = word("leg", leg.as_str())?;
                let mut calls = self.keep_partner_up(leg);
                calls.push(ApiCall::ok(format!("uuid_park {leg}")));
                if let Some(class) = music {
                    calls.push(ApiCall::ok(format!(
                        "uuid_broadcast {leg} endless_playback::{} aleg",
                        moh(class)?
                    )));
                }
                plain(calls)
            }
            MediaCommand::Play {
                leg,
                source,
                playback,
            } => {
                let line = format!(
                    "uuid_broadcast {} playback::{} aleg",
                    word("leg", leg.as_str())?,
                    media_path(source)?
                );
                let queue = self.queued_playbacks.entry(leg.clone()).or_default();
                if queue.len() >= MAX_QUEUED_PLAYBACKS {
                    queue.pop_front();
                }
                queue.push_back(playback.clone());
                plain(vec![ApiCall::ok(line)])
            }
            MediaCommand::StopPlayback { leg, .. } => plain(vec![ApiCall::ok(format!(
                "uuid_break {} all",
                word("leg", leg.as_str())?
            ))]),
            MediaCommand::StartRecording {
                target,
                path,
                format,
            } => {
                let leg = record_leg(target);
                let path = word("recording path", path)?;
                let ext = match format {
                    RecordFormat::Wav => ".wav",
                    RecordFormat::Mp3 => ".mp3",
                };
                let path = if path.rsplit('/').next().is_some_and(|f| f.contains('.')) {
                    path.to_owned()
                } else {
                    format!("{path}{ext}")
                };
                plain(vec![ApiCall::ok(format!(
                    "uuid_record {} start {path}",
                    word("leg", leg.as_str())?
                ))])
            }
            MediaCommand::StopRecording { target, path } => {
                let leg = record_leg(target);
                plain(vec![ApiCall::ok(format!(
                    "uuid_record {} stop {}",
                    word("leg", leg.as_str())?,
                    word("recording path", path)?
                ))])
            }
            MediaCommand::Bridge { a, b } => plain(vec![ApiCall::ok(format!(
                "uuid_bridge {} {}",
                word("leg", a.as_str())?,
                word("leg", b.as_str())?
            ))]),
            MediaCommand::Unbridge { leg } => {
                let leg = word("leg", leg.as_str())?;
                let mut calls = self.keep_partner_up(leg);
                calls.push(ApiCall::ok(format!("uuid_park {leg}")));
                plain(calls)
            }
            MediaCommand::Conference { room, action } => self.plan_conference(room, action)?,
            MediaCommand::SetVariable { leg, name, value } => {
                let leg_word = word("leg", leg.as_str())?;
                let name = word("variable name", name)?;
                if value.contains(['\n', '\r']) {
                    return Err(PlanError::Invalid {
                        what: "variable value",
                        value: value.chars().take(60).collect(),
                        reason: "contains a line break",
                    });
                }
                if name == CONTACT_VARIABLE
                    && let Some(l) = self.legs.get_mut(leg)
                {
                    // An adopted leg learns its contact: resyncs will find it.
                    l.contact = parse_contact(value);
                }
                plain(vec![ApiCall::ok(format!(
                    "uuid_setvar {leg_word} {name} {value}"
                ))])
            }
            MediaCommand::Transfer {
                leg,
                extension,
                context,
            } => plain(vec![ApiCall::ok(format!(
                "uuid_transfer {} {} XML {}",
                word("leg", leg.as_str())?,
                word("extension", extension)?,
                word("context", context)?
            ))]),
            MediaCommand::SendDtmf { leg, digits } => {
                if digits.is_empty()
                    || !digits
                        .chars()
                        .all(|c| c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D'))
                {
                    return Err(PlanError::Invalid {
                        what: "digits",
                        value: digits.chars().take(60).collect(),
                        reason: "only 0-9 * # A-D",
                    });
                }
                plain(vec![ApiCall::ok(format!(
                    "uuid_send_dtmf {} {digits}",
                    word("leg", leg.as_str())?
                ))])
            }
        })
    }

    /// Leaving a bridge must not hang the partner up: `park_after_bridge` keeps it parked.
    fn keep_partner_up(&self, leg: &str) -> Vec<ApiCall> {
        self.legs
            .get(&LegId::new(leg))
            .and_then(|l| l.bridged_to.as_ref())
            .map(|p| {
                vec![ApiCall::ok(format!(
                    "uuid_setvar {} park_after_bridge true",
                    p.as_str()
                ))]
            })
            .unwrap_or_default()
    }

    fn plan_conference(&self, room: &str, action: &ConferenceAction) -> Result<Plan, PlanError> {
        let room = word("conference room", room)?;
        if room.contains(['@', ';']) {
            return Err(PlanError::Invalid {
                what: "conference room",
                value: room.to_owned(),
                reason: "contains @ or ;",
            });
        }
        let member_of = |leg: &LegId| -> Result<&str, PlanError> {
            match self.members.get(leg) {
                Some((r, m)) if r == room => Ok(m.as_str()),
                _ => Err(PlanError::NotAMember {
                    room: room.to_owned(),
                    leg: leg.to_string(),
                }),
            }
        };
        let plain = |line: String| Plan {
            calls: vec![ApiCall::ok(line)],
            kind: PlanKind::Plain,
        };
        Ok(match action {
            ConferenceAction::Join { leg } => plain(format!(
                "uuid_transfer {} conference:{room}@{CONFERENCE_PROFILE} inline",
                word("leg", leg.as_str())?
            )),
            ConferenceAction::Leave { leg } => plain(format!(
                "uuid_transfer {} park inline",
                word("leg", leg.as_str())?
            )),
            ConferenceAction::Mute { leg } => {
                plain(format!("conference {room} mute {}", member_of(leg)?))
            }
            ConferenceAction::Unmute { leg } => {
                plain(format!("conference {room} unmute {}", member_of(leg)?))
            }
            ConferenceAction::Kick { leg } => {
                plain(format!("conference {room} kick {}", member_of(leg)?))
            }
            ConferenceAction::List => Plan {
                calls: vec![ApiCall {
                    command: format!("conference {room} list"),
                    expect: Expect::NotErr,
                    background: false,
                }],
                kind: PlanKind::ListConference(room.to_owned()),
            },
        })
    }

    /// A bgapi originate's result (the BACKGROUND_JOB body). A failure before the channel
    /// existed (`-ERR USER_BUSY`) ends the leg for the controller: it was told `Originated`.
    pub fn on_originate_result(&mut self, leg: &LegId, result: &str) -> Vec<MediaEvent> {
        let reply = Reply::classify(result.into());
        if reply.is_ok() {
            return Vec::new();
        }
        self.on_originate_failed(leg, reply.text())
    }

    /// The originate failed with this text (`USER_BUSY`, a timeout, a disconnect).
    pub fn on_originate_failed(&mut self, leg: &LegId, text: &str) -> Vec<MediaEvent> {
        self.originating.remove(leg);
        if self.legs.contains_key(leg) {
            // The channel existed: its own HANGUP and DESTROY report the end.
            return Vec::new();
        }
        let cause = text
            .split_whitespace()
            .next()
            .filter(|w| w.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
            .unwrap_or("NORMAL_TEMPORARY_FAILURE");
        vec![
            MediaEvent::HungUp {
                leg: leg.clone(),
                cause: HangupCause(cause.to_owned()),
            },
            MediaEvent::Destroyed { leg: leg.clone() },
        ]
    }

    /// A call handed over by the outbound socket (its `connect` reply's channel data): a new
    /// leg, unless the inbound connection reported it already.
    pub fn on_outbound_call(&mut self, channel: &Event) -> Vec<MediaEvent> {
        let Some(leg) = channel.unique_id() else {
            return Vec::new();
        };
        if self.legs.contains_key(&leg) {
            return Vec::new();
        }
        self.created(leg, channel)
    }

    fn created(&mut self, leg: LegId, ev: &Event) -> Vec<MediaEvent> {
        let pending = self.originating.remove(&leg);
        let contact = ev
            .header(&format!("variable_{CONTACT_VARIABLE}"))
            .and_then(|v| parse_contact(&v))
            .or(pending);
        let direction = if pending.is_some() {
            LegDirection::Outbound
        } else {
            match ev
                .header("Call-Direction")
                .or_else(|| ev.header("Caller-Direction"))
                .as_deref()
            {
                Some("outbound") => LegDirection::Outbound,
                _ => LegDirection::Inbound,
            }
        };
        let answered = ev.header("Answer-State").as_deref() == Some("answered");
        self.legs.insert(
            leg.clone(),
            Leg {
                contact,
                answered,
                bridged_to: None,
                hung_up: false,
            },
        );
        vec![MediaEvent::LegCreated {
            leg,
            contact,
            direction,
            caller: non_empty(ev.header("Caller-Caller-ID-Number")),
            destination: non_empty(ev.header("Caller-Destination-Number")),
        }]
    }

    /// One ESL event, normalised. Events of legs this state does not know are still
    /// reported when they create or identify a leg; the rest are ignored.
    pub fn on_event(&mut self, ev: &Event) -> Vec<MediaEvent> {
        let Some(name) = ev.name() else {
            return Vec::new();
        };
        let uid = ev.unique_id();
        match (name, uid) {
            ("CHANNEL_CREATE", Some(leg)) => {
                if self.legs.contains_key(&leg) {
                    Vec::new()
                } else {
                    self.created(leg, ev)
                }
            }
            ("CHANNEL_ANSWER", Some(leg)) => {
                let leg_state = self.legs.get_mut(&leg);
                match leg_state {
                    Some(l) if l.answered => Vec::new(),
                    Some(l) => {
                        l.answered = true;
                        vec![MediaEvent::Answered { leg }]
                    }
                    None => vec![MediaEvent::Answered { leg }],
                }
            }
            ("CHANNEL_BRIDGE", uid) => {
                let a = ev
                    .header("Bridge-A-Unique-ID")
                    .map(|s| LegId::new(s.as_ref()))
                    .or(uid);
                let b = ev
                    .header("Bridge-B-Unique-ID")
                    .or_else(|| ev.header("Other-Leg-Unique-ID"))
                    .map(|s| LegId::new(s.as_ref()));
                let (Some(a), Some(b)) = (a, b) else {
                    return Vec::new();
                };
                if let Some(l) = self.legs.get_mut(&a) {
                    l.bridged_to = Some(b.clone());
                }
                if let Some(l) = self.legs.get_mut(&b) {
                    l.bridged_to = Some(a.clone());
                }
                vec![MediaEvent::Bridged { a, b }]
            }
            ("CHANNEL_UNBRIDGE", uid) => {
                let mut out = Vec::new();
                let ids = [
                    ev.header("Bridge-A-Unique-ID")
                        .map(|s| LegId::new(s.as_ref()))
                        .or(uid),
                    ev.header("Bridge-B-Unique-ID")
                        .or_else(|| ev.header("Other-Leg-Unique-ID"))
                        .map(|s| LegId::new(s.as_ref())),
                ];
                for leg in ids.into_iter().flatten() {
                    let was = self.legs.get_mut(&leg).map(|l| l.bridged_to.take());
                    // Unknown legs are reported too: the controller may know them.
                    if !matches!(was, Some(None)) {
                        out.push(MediaEvent::Unbridged { leg });
                    }
                }
                out
            }
            ("CHANNEL_HANGUP" | "CHANNEL_HANGUP_COMPLETE", Some(leg)) => {
                if let Some(l) = self.legs.get_mut(&leg) {
                    if l.hung_up {
                        return Vec::new();
                    }
                    l.hung_up = true;
                }
                let cause = ev
                    .header("Hangup-Cause")
                    .or_else(|| ev.header("variable_hangup_cause"))
                    .map(|c| c.into_owned())
                    .unwrap_or_else(|| "NORMAL_CLEARING".into());
                vec![MediaEvent::HungUp {
                    leg,
                    cause: HangupCause(cause),
                }]
            }
            ("CHANNEL_DESTROY", Some(leg)) => {
                self.forget(&leg);
                vec![MediaEvent::Destroyed { leg }]
            }
            ("DTMF", Some(leg)) => {
                let Some(digit) = ev.header("DTMF-Digit").and_then(|d| d.chars().next()) else {
                    return Vec::new();
                };
                // DTMF-Duration counts 8 kHz samples (1280 = 160 ms).
                let samples = ev
                    .header("DTMF-Duration")
                    .and_then(|d| d.parse::<u64>().ok())
                    .unwrap_or(0);
                vec![MediaEvent::Dtmf {
                    leg,
                    digit,
                    duration: Duration::from_millis(samples / 8),
                }]
            }
            ("PLAYBACK_START", Some(leg)) => {
                let id = self
                    .queued_playbacks
                    .get_mut(&leg)
                    .and_then(VecDeque::pop_front);
                if let Some(id) = &id {
                    self.playing.insert(leg.clone(), id.clone());
                }
                vec![MediaEvent::PlaybackStarted { leg, playback: id }]
            }
            ("PLAYBACK_STOP", Some(leg)) => {
                let id = self.playing.remove(&leg);
                vec![MediaEvent::PlaybackFinished { leg, playback: id }]
            }
            ("RECORD_START", Some(leg)) => {
                let path = ev
                    .header("Record-File-Path")
                    .unwrap_or_default()
                    .into_owned();
                vec![MediaEvent::RecordingStarted { leg, path }]
            }
            ("RECORD_STOP", Some(leg)) => {
                let path = ev
                    .header("Record-File-Path")
                    .unwrap_or_default()
                    .into_owned();
                let duration = ev
                    .header("variable_record_ms")
                    .and_then(|v| v.parse::<u64>().ok())
                    .map(Duration::from_millis)
                    .or_else(|| {
                        ev.header("variable_record_seconds")
                            .and_then(|v| v.parse::<u64>().ok())
                            .map(Duration::from_secs)
                    });
                vec![MediaEvent::RecordingFinished {
                    leg,
                    path,
                    duration,
                }]
            }
            ("CHANNEL_EXECUTE_COMPLETE", Some(leg)) => {
                // mod_amd leaves its verdict in `amd_result` when its application completes.
                if ev.header("Application").as_deref() != Some("amd") {
                    return Vec::new();
                }
                let result = match ev.header("variable_amd_result").as_deref() {
                    Some("HUMAN") => AmdResult::Human,
                    Some("MACHINE") => AmdResult::Machine,
                    _ => AmdResult::NotSure,
                };
                vec![MediaEvent::Amd { leg, result }]
            }
            ("CUSTOM", uid) => self.on_custom(ev, uid),
            _ => Vec::new(),
        }
    }

    fn on_custom(&mut self, ev: &Event, uid: Option<LegId>) -> Vec<MediaEvent> {
        let subclass = ev.subclass().map(|s| s.into_owned()).unwrap_or_default();
        let Some(leg) = uid else {
            return Vec::new();
        };
        match subclass.as_str() {
            "conference::maintenance" => {
                let room = ev
                    .header("Conference-Name")
                    .unwrap_or_default()
                    .into_owned();
                let member = non_empty(ev.header("Member-ID"));
                match ev.header("Action").as_deref() {
                    Some("add-member") => {
                        if let Some(m) = &member {
                            self.members.insert(leg.clone(), (room.clone(), m.clone()));
                        }
                        vec![MediaEvent::ConferenceJoined { room, leg, member }]
                    }
                    Some("del-member") => {
                        self.members.remove(&leg);
                        vec![MediaEvent::ConferenceLeft { room, leg }]
                    }
                    _ => Vec::new(),
                }
            }
            "avmd::beep" => vec![MediaEvent::Amd {
                leg,
                result: AmdResult::Machine,
            }],
            _ => Vec::new(),
        }
    }

    fn forget(&mut self, leg: &LegId) {
        self.legs.remove(leg);
        self.originating.remove(leg);
        self.queued_playbacks.remove(leg);
        self.playing.remove(leg);
        self.members.remove(leg);
    }

    /// After a (re)connect: the channels FreeSWITCH lists now. Legs that vanished meanwhile
    /// end (HungUp + Destroyed); new legs that carry a contact are adopted (LegCreated, and
    /// Answered / Bridged as they stand); untagged new legs are tracked for load and returned
    /// for the caller to report.
    pub fn resync(&mut self, channels: &[ChannelRow]) -> (Vec<MediaEvent>, Vec<LegId>) {
        let mut out = Vec::new();
        let mut untagged = Vec::new();
        let listed: HashMap<&LegId, &ChannelRow> = channels.iter().map(|c| (&c.leg, c)).collect();
        let mut gone: Vec<LegId> = self
            .legs
            .keys()
            .filter(|l| !listed.contains_key(l))
            .cloned()
            .collect();
        gone.sort();
        for leg in gone {
            let hung_up = self.legs.get(&leg).is_some_and(|l| l.hung_up);
            self.forget(&leg);
            if !hung_up {
                // Its switch took it down while Switchboard was away: the cause was never heard.
                out.push(MediaEvent::HungUp {
                    leg: leg.clone(),
                    cause: HangupCause::switch_lost(),
                });
            }
            out.push(MediaEvent::Destroyed { leg });
        }
        let mut bridges = Vec::new();
        for row in channels {
            if self.legs.contains_key(&row.leg) {
                continue;
            }
            self.originating.remove(&row.leg);
            self.legs.insert(
                row.leg.clone(),
                Leg {
                    contact: row.contact,
                    answered: row.answered,
                    bridged_to: row.bridged_to.clone(),
                    hung_up: false,
                },
            );
            if row.contact.is_none() {
                untagged.push(row.leg.clone());
                continue;
            }
            out.push(MediaEvent::LegCreated {
                leg: row.leg.clone(),
                contact: row.contact,
                direction: row.direction,
                caller: row.caller.clone(),
                destination: row.destination.clone(),
            });
            if row.answered {
                out.push(MediaEvent::Answered {
                    leg: row.leg.clone(),
                });
            }
            if let Some(b) = &row.bridged_to
                && row.leg < *b
            {
                bridges.push(MediaEvent::Bridged {
                    a: row.leg.clone(),
                    b: b.clone(),
                });
            }
        }
        out.extend(bridges);
        (out, untagged)
    }

    /// Every known leg.
    pub fn snapshot(&self) -> Vec<LegSnapshot> {
        let mut legs: Vec<LegSnapshot> = self
            .legs
            .iter()
            .map(|(id, l)| LegSnapshot {
                leg: id.clone(),
                contact: l.contact,
                answered: l.answered,
                bridged_to: l.bridged_to.clone(),
            })
            .collect();
        legs.sort_by(|a, b| a.leg.cmp(&b.leg));
        legs
    }
}

fn record_leg(target: &RecordTarget) -> &LegId {
    match target {
        RecordTarget::Leg(leg) | RecordTarget::Bridge { leg } => leg,
    }
}

fn non_empty(v: Option<std::borrow::Cow<'_, str>>) -> Option<String> {
    v.filter(|s| !s.is_empty()).map(|s| s.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn originate_line_carries_leg_contact_and_escaped_variables() {
        let mut variables = std::collections::BTreeMap::new();
        variables.insert("sip_h_X-Queue".to_owned(), "sales, east".to_owned());
        let req = OriginateRequest {
            target: OriginateTarget::SipUser {
                user: "1000".into(),
                domain: Some("127.0.0.1".into()),
            },
            contact: ContactId(42),
            leg: LegId::new("u-1"),
            caller_id_number: Some("5551000".into()),
            caller_id_name: None,
            variables,
            timeout: Duration::from_secs(20),
        };
        assert_eq!(
            originate_command(&req).unwrap(),
            "originate {origination_uuid=u-1,switchboard_contact_id=42,originate_timeout=20,\
             origination_caller_id_number=5551000,sip_h_X-Queue='sales\\, east'}user/1000@127.0.0.1 &park()"
        );
    }

    #[test]
    fn injection_through_a_leg_id_is_refused() {
        let mut s = FsState::new();
        let err = s
            .plan(&MediaCommand::Answer {
                leg: LegId::new("u1 \nexit"),
            })
            .unwrap_err();
        assert!(matches!(err, PlanError::Invalid { what: "leg", .. }));
    }

    #[test]
    fn reply_forms_of_the_captures() {
        let call = ApiCall::ok("uuid_kill x".into());
        assert_eq!(check_reply(&call, "+OK\n"), Ok(()));
        assert_eq!(
            check_reply(&call, "-ERR No such channel!\n"),
            Err(ReplyFailure::NoSuchChannel("-ERR No such channel!".into()))
        );
        assert!(matches!(
            check_reply(&call, "Conference cc-9 not found\n"),
            Err(ReplyFailure::Refused(_))
        ));
    }

    #[test]
    fn conference_list_reads_members_and_mute() {
        let list = "2;loopback/7200-a;43e7;;0000000000;hear|speak|floor;0;0;100\n\
                    1;loopback/7200-a;fef7;Outbound Call;default;hear;0;0;100\n";
        let m = parse_conference_list(list);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].member, "2");
        assert!(!m[0].muted);
        assert!(m[1].muted);
    }

    #[test]
    fn channel_list_with_zero_rows_has_no_rows_key() {
        assert_eq!(parse_channels("{\"row_count\": 0}").unwrap(), vec![]);
        assert!(parse_channels("-ERR oops").is_err());
    }
}
