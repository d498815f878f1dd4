//! ARI events from the `/ari/events` WebSocket: typed models (`events.json`) and a sans-IO
//! decoder. Decoding is one pass over the text into a flat envelope that holds every field the
//! common events carry, then a match on `type`; only rare shapes (a `peer` that is not a
//! channel, documented events Switchboard does not model, unknown types) take a second pass.
//!
//! Bad input never panics: [`decode_event`] returns a [`DecodeError`] that names the event type
//! and field where it can; [`EventDecoder`] logs it with the start of the payload and moves on,
//! and logs each unknown event type once.

use std::collections::HashSet;

use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

use super::model::{Bridge, Channel, DeviceState, Endpoint, LiveRecording, Playback};
use super::time::AriTime;

/// The reply to a REST request sent over the events WebSocket (`RESTResponse`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestResponse {
    /// The client's transaction id.
    pub transaction_id: String,
    /// The client's request id.
    pub request_id: String,
    /// HTTP status code.
    pub status_code: u16,
    /// Reason phrase, as Asterisk spells it (`Bad request`).
    pub reason_phrase: String,
    /// The request's URI (relative, no leading slash).
    pub uri: String,
    /// The body's content type, when there is a body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// The body: JSON text inside a JSON string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_body: Option<String>,
}

/// What an ARI event says, by type.
#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    /// A channel entered the application.
    StasisStart {
        /// The application arguments (`[]` when none).
        args: Vec<String>,
        /// The channel.
        channel: Channel,
        /// The channel it replaces (after a masquerade).
        replace_channel: Option<Box<Channel>>,
    },
    /// A channel left the application.
    StasisEnd {
        /// The channel.
        channel: Channel,
    },
    /// A channel was created.
    ChannelCreated {
        /// The channel.
        channel: Channel,
    },
    /// A channel is gone. `cause`/`cause_txt` are Q.850.
    ChannelDestroyed {
        /// Q.850 cause code.
        cause: i64,
        /// Its text (`Normal Clearing`).
        cause_txt: String,
        /// The technology's cause (a SIP status such as 486).
        tech_cause: Option<i64>,
        /// The channel.
        channel: Channel,
    },
    /// A channel's state changed.
    ChannelStateChange {
        /// The channel, in its new state.
        channel: Channel,
    },
    /// A DTMF digit was received.
    ChannelDtmfReceived {
        /// The digit.
        digit: String,
        /// How long it lasted.
        duration_ms: i64,
        /// The channel.
        channel: Channel,
    },
    /// A hangup was requested. With `soft: true` the `cause` is Asterisk's soft-hangup flag
    /// bitmask (32 = explicit), not Q.850; a remote hangup has no `cause` at all.
    ChannelHangupRequest {
        /// Cause (see above).
        cause: Option<i64>,
        /// The technology's cause (486).
        tech_cause: Option<i64>,
        /// Whether it was a soft hangup.
        soft: Option<bool>,
        /// The channel.
        channel: Channel,
    },
    /// A channel entered a bridge.
    ChannelEnteredBridge {
        /// The bridge, with its channels after the entry.
        bridge: Bridge,
        /// The channel.
        channel: Option<Channel>,
    },
    /// A channel left a bridge.
    ChannelLeftBridge {
        /// The bridge, with its channels after the exit.
        bridge: Bridge,
        /// The channel.
        channel: Channel,
    },
    /// A channel variable was set.
    ChannelVarset {
        /// Name.
        variable: String,
        /// Value.
        value: String,
        /// The channel (absent for global variables).
        channel: Option<Channel>,
    },
    /// A channel moved in the dialplan.
    ChannelDialplan {
        /// Application.
        dialplan_app: String,
        /// Its data.
        dialplan_app_data: String,
        /// The channel.
        channel: Channel,
    },
    /// A channel's caller id changed.
    ChannelCallerId {
        /// Presentation code.
        caller_presentation: i64,
        /// Its text.
        caller_presentation_txt: String,
        /// The channel.
        channel: Channel,
    },
    /// A channel's connected line changed.
    ChannelConnectedLine {
        /// The channel.
        channel: Channel,
    },
    /// The far end put the channel on hold.
    ChannelHold {
        /// The channel.
        channel: Channel,
        /// Music class suggested.
        musicclass: Option<String>,
    },
    /// The far end took the channel off hold.
    ChannelUnhold {
        /// The channel.
        channel: Channel,
    },
    /// Talking was detected.
    ChannelTalkingStarted {
        /// The channel.
        channel: Channel,
    },
    /// Talking stopped.
    ChannelTalkingFinished {
        /// The channel.
        channel: Channel,
        /// How long it lasted (ms).
        duration: i64,
    },
    /// A tone was detected.
    ChannelToneDetected {
        /// The channel.
        channel: Channel,
    },
    /// Dialling progressed. `/channels/{id}/dial` gives only `peer`, never `caller`.
    Dial {
        /// The calling channel, if any.
        caller: Option<Box<Channel>>,
        /// The dialled channel.
        peer: Channel,
        /// Forwarding target.
        forward: Option<String>,
        /// The forwarded channel.
        forwarded: Option<Box<Channel>>,
        /// The dial string (`""` on RINGING/ANSWER from `/dial`).
        dialstring: Option<String>,
        /// `""`, `RINGING`, `ANSWER`, `BUSY`, …
        dialstatus: String,
    },
    /// A playback started (also after unpause, and for each item of a media list).
    PlaybackStarted {
        /// The playback.
        playback: Playback,
    },
    /// A media list moves to its next item.
    PlaybackContinuing {
        /// The playback.
        playback: Playback,
    },
    /// A playback ended (`done` or `failed`).
    PlaybackFinished {
        /// The playback.
        playback: Playback,
    },
    /// A recording started.
    RecordingStarted {
        /// The recording.
        recording: LiveRecording,
    },
    /// A recording finished.
    RecordingFinished {
        /// The recording.
        recording: LiveRecording,
    },
    /// A recording failed.
    RecordingFailed {
        /// The recording.
        recording: LiveRecording,
    },
    /// A bridge was created.
    BridgeCreated {
        /// The bridge.
        bridge: Bridge,
    },
    /// A bridge was destroyed.
    BridgeDestroyed {
        /// The bridge.
        bridge: Bridge,
    },
    /// Two bridges merged.
    BridgeMerged {
        /// The surviving bridge.
        bridge: Bridge,
        /// The bridge merged into it.
        bridge_from: Box<Bridge>,
    },
    /// A device's state changed.
    DeviceStateChanged {
        /// The device.
        device_state: DeviceState,
    },
    /// An endpoint's state changed.
    EndpointStateChange {
        /// The endpoint.
        endpoint: Endpoint,
    },
    /// Another WebSocket registered the same application: this socket gets nothing more.
    ApplicationReplaced,
    /// The application was registered.
    ApplicationRegistered,
    /// The application was unregistered.
    ApplicationUnregistered,
    /// The reply to a REST request sent over the WebSocket.
    RestResponse(RestResponse),
    /// The socket was opened without required parameters.
    MissingParams {
        /// Which.
        params: Vec<String>,
    },
    /// An event type `events.json` documents but Switchboard does not model (transfers, text
    /// messages, user events, …), kept whole.
    Other {
        /// Its `type`.
        type_name: String,
        /// The whole message.
        body: serde_json::Value,
    },
    /// An event type this build does not know, kept whole.
    Unknown {
        /// Its `type`.
        type_name: String,
        /// The whole message.
        body: serde_json::Value,
    },
}

/// One message from the events WebSocket.
#[derive(Debug, Clone, PartialEq)]
pub struct AriEvent {
    /// The application it was sent to.
    pub application: String,
    /// When Asterisk sent it (absent on `MissingParams`).
    pub timestamp: Option<AriTime>,
    /// The Asterisk entity id.
    pub asterisk_id: Option<String>,
    /// What happened.
    pub kind: EventKind,
}

/// Event types `events.json` documents that [`EventKind`] keeps as [`EventKind::Other`].
const DOCUMENTED_OTHER: &[&str] = &[
    "ApplicationMoveFailed",
    "BridgeBlindTransfer",
    "BridgeAttendedTransfer",
    "BridgeVideoSourceChanged",
    "ChannelUserevent",
    "ContactStatusChange",
    "PeerStatusChange",
    "TextMessageReceived",
    "ChannelTransfer",
    "CallBroadcast",
    "CallClaimed",
];

impl EventKind {
    /// The event's `type` as ARI writes it.
    pub fn type_name(&self) -> &str {
        match self {
            EventKind::StasisStart { .. } => "StasisStart",
            EventKind::StasisEnd { .. } => "StasisEnd",
            EventKind::ChannelCreated { .. } => "ChannelCreated",
            EventKind::ChannelDestroyed { .. } => "ChannelDestroyed",
            EventKind::ChannelStateChange { .. } => "ChannelStateChange",
            EventKind::ChannelDtmfReceived { .. } => "ChannelDtmfReceived",
            EventKind::ChannelHangupRequest { .. } => "ChannelHangupRequest",
            EventKind::ChannelEnteredBridge { .. } => "ChannelEnteredBridge",
            EventKind::ChannelLeftBridge { .. } => "ChannelLeftBridge",
            EventKind::ChannelVarset { .. } => "ChannelVarset",
            EventKind::ChannelDialplan { .. } => "ChannelDialplan",
            EventKind::ChannelCallerId { .. } => "ChannelCallerId",
            EventKind::ChannelConnectedLine { .. } => "ChannelConnectedLine",
            EventKind::ChannelHold { .. } => "ChannelHold",
            EventKind::ChannelUnhold { .. } => "ChannelUnhold",
            EventKind::ChannelTalkingStarted { .. } => "ChannelTalkingStarted",
            EventKind::ChannelTalkingFinished { .. } => "ChannelTalkingFinished",
            EventKind::ChannelToneDetected { .. } => "ChannelToneDetected",
            EventKind::Dial { .. } => "Dial",
            EventKind::PlaybackStarted { .. } => "PlaybackStarted",
            EventKind::PlaybackContinuing { .. } => "PlaybackContinuing",
            EventKind::PlaybackFinished { .. } => "PlaybackFinished",
            EventKind::RecordingStarted { .. } => "RecordingStarted",
            EventKind::RecordingFinished { .. } => "RecordingFinished",
            EventKind::RecordingFailed { .. } => "RecordingFailed",
            EventKind::BridgeCreated { .. } => "BridgeCreated",
            EventKind::BridgeDestroyed { .. } => "BridgeDestroyed",
            EventKind::BridgeMerged { .. } => "BridgeMerged",
            EventKind::DeviceStateChanged { .. } => "DeviceStateChanged",
            EventKind::EndpointStateChange { .. } => "EndpointStateChange",
            EventKind::ApplicationReplaced => "ApplicationReplaced",
            EventKind::ApplicationRegistered => "ApplicationRegistered",
            EventKind::ApplicationUnregistered => "ApplicationUnregistered",
            EventKind::RestResponse(_) => "RESTResponse",
            EventKind::MissingParams { .. } => "MissingParams",
            EventKind::Other { type_name, .. } | EventKind::Unknown { type_name, .. } => type_name,
        }
    }

    /// The channel the event is about, if any (`peer` for `Dial`).
    pub fn channel(&self) -> Option<&Channel> {
        match self {
            EventKind::StasisStart { channel, .. }
            | EventKind::StasisEnd { channel }
            | EventKind::ChannelCreated { channel }
            | EventKind::ChannelDestroyed { channel, .. }
            | EventKind::ChannelStateChange { channel }
            | EventKind::ChannelDtmfReceived { channel, .. }
            | EventKind::ChannelHangupRequest { channel, .. }
            | EventKind::ChannelLeftBridge { channel, .. }
            | EventKind::ChannelDialplan { channel, .. }
            | EventKind::ChannelCallerId { channel, .. }
            | EventKind::ChannelConnectedLine { channel }
            | EventKind::ChannelHold { channel, .. }
            | EventKind::ChannelUnhold { channel }
            | EventKind::ChannelTalkingStarted { channel }
            | EventKind::ChannelTalkingFinished { channel, .. }
            | EventKind::ChannelToneDetected { channel } => Some(channel),
            EventKind::ChannelEnteredBridge { channel, .. }
            | EventKind::ChannelVarset { channel, .. } => channel.as_ref(),
            EventKind::Dial { peer, .. } => Some(peer),
            _ => None,
        }
    }
}

/// An event that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Not JSON, or not a JSON object.
    #[error("not a JSON object: {reason}")]
    NotJson {
        /// The parser's words.
        reason: String,
    },
    /// An object without a string `type`.
    #[error("message has no \"type\"")]
    NoType,
    /// A known event type with a required field missing.
    #[error("{event} without its required field {field:?}")]
    MissingField {
        /// The event type.
        event: String,
        /// The field.
        field: &'static str,
    },
    /// A known event type with a field of the wrong shape.
    #[error("{event}: {reason}")]
    BadField {
        /// The event type.
        event: String,
        /// The parser's words (names the field).
        reason: String,
    },
}

/// `caller` is a Channel in `Dial` and a string in `CallBroadcast`.
#[derive(Debug)]
enum CallerField {
    Channel(Box<Channel>),
    Text,
}

impl<'de> Deserialize<'de> for CallerField {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = CallerField;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a channel or a string")
            }
            fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<CallerField, E> {
                Ok(CallerField::Text)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<CallerField, A::Error> {
                Channel::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(|c| CallerField::Channel(Box::new(c)))
            }
        }
        d.deserialize_any(V)
    }
}

/// Every field the common events carry, in one flat struct: one pass, no buffering.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    timestamp: Option<std::borrow::Cow<'a, str>>,
    application: Option<String>,
    asterisk_id: Option<String>,
    // Only `channel` is inline: the rest are boxed so that the envelope stays small (it is
    // moved a few times per event; a large one costs more to copy than a box costs to allocate).
    channel: Option<Channel>,
    peer: Option<Box<Channel>>,
    caller: Option<CallerField>,
    replace_channel: Option<Box<Channel>>,
    forwarded: Option<Box<Channel>>,
    bridge: Option<Box<Bridge>>,
    bridge_from: Option<Box<Bridge>>,
    playback: Option<Box<Playback>>,
    recording: Option<Box<LiveRecording>>,
    device_state: Option<DeviceState>,
    endpoint: Option<Box<Endpoint>>,
    args: Option<Vec<String>>,
    cause: Option<i64>,
    cause_txt: Option<String>,
    tech_cause: Option<i64>,
    soft: Option<bool>,
    digit: Option<String>,
    duration_ms: Option<i64>,
    duration: Option<i64>,
    variable: Option<String>,
    value: Option<String>,
    dialplan_app: Option<String>,
    dialplan_app_data: Option<String>,
    caller_presentation: Option<i64>,
    caller_presentation_txt: Option<String>,
    dialstatus: Option<String>,
    dialstring: Option<String>,
    forward: Option<String>,
    musicclass: Option<String>,
    transaction_id: Option<String>,
    request_id: Option<String>,
    status_code: Option<u16>,
    reason_phrase: Option<String>,
    uri: Option<String>,
    content_type: Option<String>,
    message_body: Option<String>,
    params: Option<Vec<String>>,
}

/// Decodes one WebSocket text message (sans-IO: bytes in, event or error out).
pub fn decode_event(payload: &[u8]) -> Result<AriEvent, DecodeError> {
    // One UTF-8 check of the whole message, then a parse that need not check each string
    // again (a third of the time of a byte-slice parse).
    match std::str::from_utf8(payload) {
        Ok(text) => decode_event_str(text),
        Err(e) => Err(DecodeError::NotJson {
            reason: format!("not UTF-8: {e}"),
        }),
    }
}

/// Decodes one WebSocket text message already known to be UTF-8 (a WebSocket text frame).
pub fn decode_event_str(text: &str) -> Result<AriEvent, DecodeError> {
    match serde_json::from_str::<Envelope>(text) {
        Ok(envelope) => from_envelope(envelope, text.as_bytes()),
        Err(first) => decode_slow(text.as_bytes(), first),
    }
}

/// The second pass: a generic parse, for shapes the envelope does not take.
fn decode_slow(payload: &[u8], first: serde_json::Error) -> Result<AriEvent, DecodeError> {
    let body: serde_json::Value =
        serde_json::from_slice(payload).map_err(|e| DecodeError::NotJson {
            reason: e.to_string(),
        })?;
    let Some(object) = body.as_object() else {
        return Err(DecodeError::NotJson {
            reason: "top level is not an object".into(),
        });
    };
    let Some(type_name) = object.get("type").and_then(|t| t.as_str()) else {
        return Err(DecodeError::NoType);
    };
    let type_name = type_name.to_owned();
    if !is_documented_other(&type_name) && is_modelled(&type_name) {
        return Err(DecodeError::BadField {
            event: type_name,
            reason: first.to_string(),
        });
    }
    let text = |k: &str| object.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    let application = text("application").unwrap_or_default();
    let asterisk_id = text("asterisk_id");
    let timestamp = text("timestamp").and_then(|t| AriTime::parse(&t).ok());
    let kind = if is_documented_other(&type_name) {
        EventKind::Other { type_name, body }
    } else {
        EventKind::Unknown { type_name, body }
    };
    Ok(AriEvent {
        application,
        timestamp,
        asterisk_id,
        kind,
    })
}

fn is_documented_other(type_name: &str) -> bool {
    DOCUMENTED_OTHER.contains(&type_name)
}

fn is_modelled(type_name: &str) -> bool {
    matches!(
        type_name,
        "StasisStart"
            | "StasisEnd"
            | "ChannelCreated"
            | "ChannelDestroyed"
            | "ChannelStateChange"
            | "ChannelDtmfReceived"
            | "ChannelHangupRequest"
            | "ChannelEnteredBridge"
            | "ChannelLeftBridge"
            | "ChannelVarset"
            | "ChannelDialplan"
            | "ChannelCallerId"
            | "ChannelConnectedLine"
            | "ChannelHold"
            | "ChannelUnhold"
            | "ChannelTalkingStarted"
            | "ChannelTalkingFinished"
            | "ChannelToneDetected"
            | "Dial"
            | "PlaybackStarted"
            | "PlaybackContinuing"
            | "PlaybackFinished"
            | "RecordingStarted"
            | "RecordingFinished"
            | "RecordingFailed"
            | "BridgeCreated"
            | "BridgeDestroyed"
            | "BridgeMerged"
            | "DeviceStateChanged"
            | "EndpointStateChange"
            | "ApplicationReplaced"
            | "ApplicationRegistered"
            | "ApplicationUnregistered"
            | "RESTResponse"
            | "MissingParams"
    )
}

fn from_envelope(e: Envelope<'_>, payload: &[u8]) -> Result<AriEvent, DecodeError> {
    let Some(type_name) = e.kind else {
        return Err(DecodeError::NoType);
    };
    let type_name: &str = &type_name;
    let missing = |field: &'static str| DecodeError::MissingField {
        event: type_name.to_owned(),
        field,
    };
    macro_rules! req {
        ($field:ident) => {
            e.$field.ok_or_else(|| missing(stringify!($field)))?
        };
    }
    let kind = match type_name {
        "StasisStart" => EventKind::StasisStart {
            args: req!(args),
            channel: req!(channel),
            replace_channel: e.replace_channel,
        },
        "StasisEnd" => EventKind::StasisEnd {
            channel: req!(channel),
        },
        "ChannelCreated" => EventKind::ChannelCreated {
            channel: req!(channel),
        },
        "ChannelDestroyed" => EventKind::ChannelDestroyed {
            cause: req!(cause),
            cause_txt: req!(cause_txt),
            tech_cause: e.tech_cause,
            channel: req!(channel),
        },
        "ChannelStateChange" => EventKind::ChannelStateChange {
            channel: req!(channel),
        },
        "ChannelDtmfReceived" => EventKind::ChannelDtmfReceived {
            digit: req!(digit),
            duration_ms: req!(duration_ms),
            channel: req!(channel),
        },
        "ChannelHangupRequest" => EventKind::ChannelHangupRequest {
            cause: e.cause,
            tech_cause: e.tech_cause,
            soft: e.soft,
            channel: req!(channel),
        },
        "ChannelEnteredBridge" => EventKind::ChannelEnteredBridge {
            bridge: *req!(bridge),
            channel: e.channel,
        },
        "ChannelLeftBridge" => EventKind::ChannelLeftBridge {
            bridge: *req!(bridge),
            channel: req!(channel),
        },
        "ChannelVarset" => EventKind::ChannelVarset {
            variable: req!(variable),
            value: req!(value),
            channel: e.channel,
        },
        "ChannelDialplan" => EventKind::ChannelDialplan {
            dialplan_app: req!(dialplan_app),
            dialplan_app_data: req!(dialplan_app_data),
            channel: req!(channel),
        },
        "ChannelCallerId" => EventKind::ChannelCallerId {
            caller_presentation: req!(caller_presentation),
            caller_presentation_txt: req!(caller_presentation_txt),
            channel: req!(channel),
        },
        "ChannelConnectedLine" => EventKind::ChannelConnectedLine {
            channel: req!(channel),
        },
        "ChannelHold" => EventKind::ChannelHold {
            channel: req!(channel),
            musicclass: e.musicclass,
        },
        "ChannelUnhold" => EventKind::ChannelUnhold {
            channel: req!(channel),
        },
        "ChannelTalkingStarted" => EventKind::ChannelTalkingStarted {
            channel: req!(channel),
        },
        "ChannelTalkingFinished" => EventKind::ChannelTalkingFinished {
            channel: req!(channel),
            duration: req!(duration),
        },
        "ChannelToneDetected" => EventKind::ChannelToneDetected {
            channel: req!(channel),
        },
        "Dial" => EventKind::Dial {
            caller: match e.caller {
                Some(CallerField::Channel(c)) => Some(c),
                _ => None,
            },
            peer: *req!(peer),
            forward: e.forward,
            forwarded: e.forwarded,
            dialstring: e.dialstring,
            dialstatus: req!(dialstatus),
        },
        "PlaybackStarted" => EventKind::PlaybackStarted {
            playback: *req!(playback),
        },
        "PlaybackContinuing" => EventKind::PlaybackContinuing {
            playback: *req!(playback),
        },
        "PlaybackFinished" => EventKind::PlaybackFinished {
            playback: *req!(playback),
        },
        "RecordingStarted" => EventKind::RecordingStarted {
            recording: *req!(recording),
        },
        "RecordingFinished" => EventKind::RecordingFinished {
            recording: *req!(recording),
        },
        "RecordingFailed" => EventKind::RecordingFailed {
            recording: *req!(recording),
        },
        "BridgeCreated" => EventKind::BridgeCreated {
            bridge: *req!(bridge),
        },
        "BridgeDestroyed" => EventKind::BridgeDestroyed {
            bridge: *req!(bridge),
        },
        "BridgeMerged" => EventKind::BridgeMerged {
            bridge: *req!(bridge),
            bridge_from: req!(bridge_from),
        },
        "DeviceStateChanged" => EventKind::DeviceStateChanged {
            device_state: req!(device_state),
        },
        "EndpointStateChange" => EventKind::EndpointStateChange {
            endpoint: *req!(endpoint),
        },
        "ApplicationReplaced" => EventKind::ApplicationReplaced,
        "ApplicationRegistered" => EventKind::ApplicationRegistered,
        "ApplicationUnregistered" => EventKind::ApplicationUnregistered,
        "RESTResponse" => EventKind::RestResponse(RestResponse {
            transaction_id: req!(transaction_id),
            request_id: req!(request_id),
            status_code: req!(status_code),
            reason_phrase: req!(reason_phrase),
            uri: req!(uri),
            content_type: e.content_type,
            message_body: e.message_body,
        }),
        "MissingParams" => EventKind::MissingParams {
            params: req!(params),
        },
        _ => {
            // Rare: keep the whole message (a second parse, for these types only).
            let body = serde_json::from_slice(payload).map_err(|err| DecodeError::NotJson {
                reason: err.to_string(),
            })?;
            let type_name = type_name.to_owned();
            if is_documented_other(&type_name) {
                EventKind::Other { type_name, body }
            } else {
                EventKind::Unknown { type_name, body }
            }
        }
    };
    Ok(AriEvent {
        application: e.application.unwrap_or_default(),
        timestamp: e.timestamp.and_then(|t| AriTime::parse(&t).ok()),
        asterisk_id: e.asterisk_id,
        kind,
    })
}

/// How much of a bad payload goes into the log line.
const LOGGED_PAYLOAD_CHARS: usize = 160;

/// The start of a payload, for logs (never the whole of a large message).
pub fn payload_start(payload: &[u8]) -> String {
    let text = String::from_utf8_lossy(&payload[..payload.len().min(LOGGED_PAYLOAD_CHARS * 4)]);
    text.chars().take(LOGGED_PAYLOAD_CHARS).collect()
}

/// A decoder for one event stream: decodes, logs what it skips (with the payload's start), and
/// logs each unknown event type once. Sans-IO: the socket task feeds it bytes.
#[derive(Debug, Default)]
pub struct EventDecoder {
    unknown_seen: HashSet<String>,
    skipped: u64,
}

impl EventDecoder {
    /// A new decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes one message; `None` when it was skipped (already logged).
    pub fn decode(&mut self, payload: &[u8]) -> Option<AriEvent> {
        match decode_event(payload) {
            Ok(event) => {
                if let EventKind::Unknown { type_name, .. } = &event.kind
                    && self.unknown_seen.insert(type_name.clone())
                {
                    tracing::warn!(
                        event_type = %type_name,
                        "ARI event type unknown to this build: kept as is, not logged again"
                    );
                }
                Some(event)
            }
            Err(error) => {
                self.skipped += 1;
                tracing::warn!(%error, payload = %payload_start(payload), "ARI event skipped");
                None
            }
        }
    }

    /// Messages skipped so far.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Unknown event types seen so far.
    pub fn unknown_types(&self) -> impl Iterator<Item = &str> {
        self.unknown_seen.iter().map(String::as_str)
    }
}

impl Serialize for AriEvent {
    /// Writes the event as Asterisk does, fields in Asterisk's order (the emulator's output).
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if let EventKind::Other { body, .. } | EventKind::Unknown { body, .. } = &self.kind {
            return body.serialize(s);
        }
        let mut m = s.serialize_map(None)?;
        let type_name = self.kind.type_name();
        let ts = self.timestamp.map(|t| t.to_string());
        // Head: most events start with type and timestamp; a few write their own fields first.
        match &self.kind {
            EventKind::ChannelHangupRequest {
                cause,
                tech_cause,
                soft,
                ..
            } => {
                if let Some(c) = cause {
                    m.serialize_entry("cause", c)?;
                }
                if let Some(c) = tech_cause {
                    m.serialize_entry("tech_cause", c)?;
                }
                if let Some(s) = soft {
                    m.serialize_entry("soft", s)?;
                }
            }
            EventKind::ChannelVarset {
                variable, value, ..
            } => {
                m.serialize_entry("variable", variable)?;
                m.serialize_entry("value", value)?;
            }
            _ => {}
        }
        m.serialize_entry("type", type_name)?;
        match &self.kind {
            EventKind::DeviceStateChanged { device_state } => {
                m.serialize_entry("application", &self.application)?;
                if let Some(ts) = &ts {
                    m.serialize_entry("timestamp", ts)?;
                }
                m.serialize_entry("device_state", device_state)?;
                if let Some(id) = &self.asterisk_id {
                    m.serialize_entry("asterisk_id", id)?;
                }
                return m.end();
            }
            EventKind::ApplicationReplaced
            | EventKind::ApplicationRegistered
            | EventKind::ApplicationUnregistered => {
                if let Some(ts) = &ts {
                    m.serialize_entry("timestamp", ts)?;
                }
                m.serialize_entry("application", &self.application)?;
                if let Some(id) = &self.asterisk_id {
                    m.serialize_entry("asterisk_id", id)?;
                }
                return m.end();
            }
            EventKind::RestResponse(r) => {
                m.serialize_entry("transaction_id", &r.transaction_id)?;
                m.serialize_entry("request_id", &r.request_id)?;
                m.serialize_entry("status_code", &r.status_code)?;
                m.serialize_entry("reason_phrase", &r.reason_phrase)?;
                m.serialize_entry("uri", &r.uri)?;
                if let Some(ct) = &r.content_type {
                    m.serialize_entry("content_type", ct)?;
                }
                if let Some(body) = &r.message_body {
                    m.serialize_entry("message_body", body)?;
                }
                m.serialize_entry("application", &self.application)?;
                if let Some(ts) = &ts {
                    m.serialize_entry("timestamp", ts)?;
                }
                if let Some(id) = &self.asterisk_id {
                    m.serialize_entry("asterisk_id", id)?;
                }
                return m.end();
            }
            EventKind::MissingParams { params } => {
                m.serialize_entry("params", params)?;
                return m.end();
            }
            _ => {}
        }
        if let Some(ts) = &ts {
            m.serialize_entry("timestamp", ts)?;
        }
        match &self.kind {
            EventKind::StasisStart {
                args,
                channel,
                replace_channel,
            } => {
                m.serialize_entry("args", args)?;
                m.serialize_entry("channel", channel)?;
                if let Some(r) = replace_channel {
                    m.serialize_entry("replace_channel", r)?;
                }
            }
            EventKind::ChannelDestroyed {
                cause,
                cause_txt,
                tech_cause,
                channel,
            } => {
                m.serialize_entry("cause", cause)?;
                m.serialize_entry("cause_txt", cause_txt)?;
                if let Some(t) = tech_cause {
                    m.serialize_entry("tech_cause", t)?;
                }
                m.serialize_entry("channel", channel)?;
            }
            EventKind::ChannelDtmfReceived {
                digit,
                duration_ms,
                channel,
            } => {
                m.serialize_entry("digit", digit)?;
                m.serialize_entry("duration_ms", duration_ms)?;
                m.serialize_entry("channel", channel)?;
            }
            EventKind::ChannelDialplan {
                dialplan_app,
                dialplan_app_data,
                channel,
            } => {
                m.serialize_entry("dialplan_app", dialplan_app)?;
                m.serialize_entry("dialplan_app_data", dialplan_app_data)?;
                m.serialize_entry("channel", channel)?;
            }
            EventKind::ChannelCallerId {
                caller_presentation,
                caller_presentation_txt,
                channel,
            } => {
                m.serialize_entry("caller_presentation", caller_presentation)?;
                m.serialize_entry("caller_presentation_txt", caller_presentation_txt)?;
                m.serialize_entry("channel", channel)?;
            }
            EventKind::ChannelEnteredBridge { bridge, channel } => {
                m.serialize_entry("bridge", bridge)?;
                if let Some(c) = channel {
                    m.serialize_entry("channel", c)?;
                }
            }
            EventKind::ChannelLeftBridge { bridge, channel } => {
                m.serialize_entry("bridge", bridge)?;
                m.serialize_entry("channel", channel)?;
            }
            EventKind::ChannelVarset { channel, .. } => {
                if let Some(c) = channel {
                    m.serialize_entry("channel", c)?;
                }
            }
            EventKind::ChannelHold {
                channel,
                musicclass,
            } => {
                m.serialize_entry("channel", channel)?;
                if let Some(mc) = musicclass {
                    m.serialize_entry("musicclass", mc)?;
                }
            }
            EventKind::ChannelTalkingFinished { channel, duration } => {
                m.serialize_entry("channel", channel)?;
                m.serialize_entry("duration", duration)?;
            }
            EventKind::Dial {
                caller,
                peer,
                forward,
                forwarded,
                dialstring,
                dialstatus,
            } => {
                m.serialize_entry("dialstatus", dialstatus)?;
                if let Some(f) = forward {
                    m.serialize_entry("forward", f)?;
                }
                if let Some(d) = dialstring {
                    m.serialize_entry("dialstring", d)?;
                }
                if let Some(c) = caller {
                    m.serialize_entry("caller", c)?;
                }
                m.serialize_entry("peer", peer)?;
                if let Some(f) = forwarded {
                    m.serialize_entry("forwarded", f)?;
                }
            }
            EventKind::PlaybackStarted { playback }
            | EventKind::PlaybackContinuing { playback }
            | EventKind::PlaybackFinished { playback } => {
                m.serialize_entry("playback", playback)?;
            }
            EventKind::RecordingStarted { recording }
            | EventKind::RecordingFinished { recording }
            | EventKind::RecordingFailed { recording } => {
                m.serialize_entry("recording", recording)?;
            }
            EventKind::BridgeCreated { bridge } | EventKind::BridgeDestroyed { bridge } => {
                m.serialize_entry("bridge", bridge)?;
            }
            EventKind::BridgeMerged {
                bridge,
                bridge_from,
            } => {
                m.serialize_entry("bridge", bridge)?;
                m.serialize_entry("bridge_from", bridge_from)?;
            }
            EventKind::EndpointStateChange { endpoint } => {
                m.serialize_entry("endpoint", endpoint)?;
            }
            other => {
                if let Some(channel) = other.channel() {
                    m.serialize_entry("channel", channel)?;
                }
            }
        }
        if let Some(id) = &self.asterisk_id {
            m.serialize_entry("asterisk_id", id)?;
        }
        m.serialize_entry("application", &self.application)?;
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STASIS_START: &str = r#"{"type": "StasisStart", "timestamp": "2026-11-21T21:13:08.568+0000", "args": ["inbound", "100"], "channel": {"id": "1795295588.60", "name": "Local/100@cc-test-00000018;2", "state": "Ring", "protocol_id": "", "caller": {"name": "Customer", "number": "5551000"}, "connected": {"name": "Customer", "number": "5551000"}, "accountcode": "", "dialplan": {"context": "cc-test", "exten": "100", "priority": 2, "app_name": "Stasis", "app_data": "cc,inbound,100"}, "creationtime": "2026-11-21T21:13:08.568+0000", "language": "en"}, "asterisk_id": "02:fc:00:00:00:01", "application": "cc"}"#;

    #[test]
    fn decodes_stasis_start_with_args() {
        let e = decode_event(STASIS_START.as_bytes()).unwrap();
        let EventKind::StasisStart { args, channel, .. } = &e.kind else {
            panic!("{e:?}")
        };
        assert_eq!(args, &["inbound", "100"]);
        assert_eq!(channel.id, "1795295588.60");
        assert_eq!(e.application, "cc");
        assert_eq!(e.asterisk_id.as_deref(), Some("02:fc:00:00:00:01"));
    }

    #[test]
    fn writes_back_what_it_read() {
        let e = decode_event(STASIS_START.as_bytes()).unwrap();
        let written = serde_json::to_string(&e).unwrap();
        let a: serde_json::Value = serde_json::from_str(&written).unwrap();
        let b: serde_json::Value = serde_json::from_str(STASIS_START).unwrap();
        assert_eq!(a, b);
        assert!(written.starts_with(r#"{"type":"StasisStart","timestamp":"#));
    }

    #[test]
    fn unknown_types_are_kept_and_logged_once() {
        let mut d = EventDecoder::new();
        let raw = br#"{"type":"ChannelFrobnicated","application":"cc","x":1}"#;
        for _ in 0..3 {
            let e = d.decode(raw).unwrap();
            assert!(
                matches!(&e.kind, EventKind::Unknown { type_name, .. } if type_name == "ChannelFrobnicated")
            );
        }
        assert_eq!(d.unknown_types().count(), 1);
    }

    #[test]
    fn bad_messages_are_errors_not_panics() {
        let cases: &[&[u8]] = &[
            b"",
            b"{not json",
            b"[1,2]",
            b"{}",
            br#"{"type":"StasisStart","application":"cc"}"#,
            br#"{"type":"ChannelDestroyed","cause":"sixteen","application":"cc"}"#,
            br#"{"type":7}"#,
        ];
        let mut d = EventDecoder::new();
        for c in cases {
            assert!(decode_event(c).is_err(), "{}", String::from_utf8_lossy(c));
            assert!(d.decode(c).is_none());
        }
        assert_eq!(d.skipped(), cases.len() as u64);
        let e = decode_event(br#"{"type":"StasisStart","application":"cc"}"#).unwrap_err();
        assert_eq!(
            e,
            DecodeError::MissingField {
                event: "StasisStart".into(),
                field: "args"
            }
        );
    }

    #[test]
    fn a_peer_status_change_takes_the_second_pass() {
        let raw = br#"{"type":"PeerStatusChange","application":"cc","timestamp":"2026-11-21T21:13:08.568+0000","endpoint":{"technology":"PJSIP","resource":"agent","channel_ids":[]},"peer":{"peer_status":"Reachable"}}"#;
        let e = decode_event(raw).unwrap();
        assert!(
            matches!(e.kind, EventKind::Other { ref type_name, .. } if type_name == "PeerStatusChange")
        );
        assert!(e.timestamp.is_some());
    }

    #[test]
    fn payload_start_is_short_and_safe() {
        let long = "é".repeat(1000);
        assert_eq!(
            payload_start(long.as_bytes()).chars().count(),
            LOGGED_PAYLOAD_CHARS
        );
        assert_eq!(payload_start(&[0xff, 0xfe]), "\u{fffd}\u{fffd}");
    }
}
