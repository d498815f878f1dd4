//! ARI resources as Asterisk 22 describes them (`api-docs/*.json`, Swagger 1.1, apiVersion
//! 10.0.0). Field order follows what Asterisk writes, so that the emulator's JSON reads like the
//! captured transcripts. Optional Swagger fields are `Option`s that are left out when absent.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::time::AriTime;

/// A channel's state as ARI names it (`channels.json`, `Channel.state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ChannelState {
    /// Not yet dialled or answered.
    Down,
    /// Reserved.
    Rsrvd,
    /// Off hook.
    OffHook,
    /// Dialling.
    Dialing,
    /// Inbound and ringing (not yet answered).
    Ring,
    /// Outbound and the far end is ringing.
    Ringing,
    /// Answered.
    Up,
    /// The far end is busy.
    Busy,
    /// Dialling while off hook.
    #[serde(rename = "Dialing Offhook")]
    DialingOffhook,
    /// Before ringing.
    #[serde(rename = "Pre-ring")]
    PreRing,
    /// A state this build does not know.
    #[serde(other)]
    Unknown,
}

impl ChannelState {
    /// The name ARI uses.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelState::Down => "Down",
            ChannelState::Rsrvd => "Rsrvd",
            ChannelState::OffHook => "OffHook",
            ChannelState::Dialing => "Dialing",
            ChannelState::Ring => "Ring",
            ChannelState::Ringing => "Ringing",
            ChannelState::Up => "Up",
            ChannelState::Busy => "Busy",
            ChannelState::DialingOffhook => "Dialing Offhook",
            ChannelState::PreRing => "Pre-ring",
            ChannelState::Unknown => "Unknown",
        }
    }
}

impl fmt::Display for ChannelState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Caller identification (`CallerID`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallerId {
    /// Display name.
    pub name: String,
    /// Number.
    pub number: String,
}

/// A position in the dialplan (`DialplanCEP`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DialplanCep {
    /// Context.
    pub context: String,
    /// Extension.
    pub exten: String,
    /// Priority.
    pub priority: i64,
    /// The application running there (`Stasis`, `Wait`, `AppDial2`, or empty).
    pub app_name: String,
    /// Its arguments.
    pub app_data: String,
}

/// A channel (`Channel`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Channel {
    /// Unique id: `<unix-seconds>.<counter>` when Asterisk chose it, or the caller's string.
    pub id: String,
    /// Name (`PJSIP/agent-00000012`, `Local/100@cc-test-00000018;1`).
    pub name: String,
    /// State.
    pub state: ChannelState,
    /// The SIP Call-ID for PJSIP channels; empty for Local, UnicastRTP and Snoop.
    pub protocol_id: String,
    /// Caller id.
    pub caller: CallerId,
    /// Connected line.
    pub connected: CallerId,
    /// Account code.
    pub accountcode: String,
    /// Where in the dialplan it is.
    pub dialplan: DialplanCep,
    /// When it was created.
    pub creationtime: AriTime,
    /// Default language.
    pub language: String,
    /// Channel variables named in ari.conf `channelvars` (and externalMedia's RTP address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channelvars: Option<BTreeMap<String, String>>,
    /// Redirecting number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_rdnis: Option<String>,
    /// Tenant id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenantid: Option<String>,
}

/// A bridge (`Bridge`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bridge {
    /// Unique id.
    pub id: String,
    /// Technology (`simple_bridge`, `softmix`, `holding_bridge`).
    pub technology: String,
    /// `mixing` or `holding`.
    pub bridge_type: String,
    /// `stasis` for ARI bridges.
    pub bridge_class: String,
    /// `Stasis` for ARI bridges.
    pub creator: String,
    /// Name given at creation.
    pub name: String,
    /// Ids of the channels in it.
    pub channels: Vec<String>,
    /// When it was created.
    pub creationtime: AriTime,
    /// Video mode (`talker`, `sfu`, `none`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_mode: Option<String>,
    /// The channel that is the video source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_source_id: Option<String>,
    /// Bridge variables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridgevars: Option<BTreeMap<String, String>>,
}

/// A playback (`Playback`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Playback {
    /// Id (generated UUID or the caller's).
    pub id: String,
    /// What plays now.
    pub media_uri: String,
    /// What plays next, while a media list has more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_media_uri: Option<String>,
    /// `channel:<id>` or `bridge:<id>`.
    pub target_uri: String,
    /// Language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// `queued`, `playing`, `continuing`, `done`, `failed` (seen); `paused`, `canceled` (documented).
    pub state: String,
}

/// A recording in progress (`LiveRecording`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveRecording {
    /// Name (the file name without extension).
    pub name: String,
    /// Format (`wav`, …).
    pub format: String,
    /// `queued`, `recording`, `paused`, `done`, `failed`, `canceled`.
    pub state: String,
    /// `channel:<id>` or `bridge:<id>`.
    pub target_uri: String,
    /// Seconds recorded, once finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<i64>,
    /// Seconds of talking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub talking_duration: Option<i64>,
    /// Seconds of silence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub silence_duration: Option<i64>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

/// A finished recording on disk (`StoredRecording`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredRecording {
    /// Name.
    pub name: String,
    /// Format.
    pub format: String,
}

/// An endpoint (`Endpoint`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// Technology (`PJSIP`).
    pub technology: String,
    /// Resource (`agent`).
    pub resource: String,
    /// `online`, `offline`, `unknown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Channels on it now.
    pub channel_ids: Vec<String>,
}

/// A device's state (`DeviceState`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceState {
    /// Device name (`PJSIP/agent`).
    pub name: String,
    /// `NOT_INUSE`, `INUSE`, `RINGING`, `UNKNOWN`, `INVALID`, …
    pub state: String,
}

/// Build facts (`BuildInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildInfo {
    /// OS.
    pub os: String,
    /// Kernel.
    pub kernel: String,
    /// Machine.
    pub machine: String,
    /// Compile options.
    pub options: String,
    /// Build date.
    pub date: String,
    /// Who built it.
    pub user: String,
}

/// System facts (`SystemInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemInfo {
    /// Asterisk version (`22.10.1`).
    pub version: String,
    /// The entity id (`02:fc:00:00:00:01`), the `asterisk_id` of every event.
    pub entity_id: String,
}

/// Effective user and group (`SetId`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetId {
    /// User.
    pub user: String,
    /// Group.
    pub group: String,
}

/// Configuration facts (`ConfigInfo`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigInfo {
    /// System name.
    pub name: String,
    /// Default language.
    pub default_language: String,
    /// Channel limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_channels: Option<i64>,
    /// Open-files limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_open_files: Option<i64>,
    /// Load limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_load: Option<f64>,
    /// User and group.
    pub setid: SetId,
}

/// Start and reload times (`StatusInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusInfo {
    /// When Asterisk started.
    pub startup_time: AriTime,
    /// When it last reloaded.
    pub last_reload_time: AriTime,
}

/// `GET /asterisk/info` (`AsteriskInfo`); each part may be left out with `only=`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AsteriskInfo {
    /// Build facts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<BuildInfo>,
    /// System facts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<SystemInfo>,
    /// Configuration facts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ConfigInfo>,
    /// Start and reload times.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<StatusInfo>,
}

/// `GET /asterisk/ping` (`AsteriskPing`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AsteriskPing {
    /// Always `pong`.
    pub ping: String,
    /// When Asterisk answered (ARI's timestamp text).
    pub timestamp: String,
    /// The entity id.
    pub asterisk_id: String,
}

/// A variable's value (`Variable`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Variable {
    /// The value.
    pub value: String,
}

/// A Stasis application (`Application`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Application {
    /// Name.
    pub name: String,
    /// Channels it is subscribed to (`__AST_CHANNEL_ALL_TOPIC` with subscribeAll).
    pub channel_ids: Vec<String>,
    /// Bridges it is subscribed to.
    pub bridge_ids: Vec<String>,
    /// Endpoints it is subscribed to.
    pub endpoint_ids: Vec<String>,
    /// Devices it is subscribed to.
    pub device_names: Vec<String>,
    /// Event filter: allowed.
    pub events_allowed: Vec<serde_json::Value>,
    /// Event filter: disallowed.
    pub events_disallowed: Vec<serde_json::Value>,
}

/// A loaded module (`Module`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Module {
    /// File name (`res_ari.so`).
    pub name: String,
    /// Description.
    pub description: String,
    /// Users.
    pub use_count: i64,
    /// `Running`, …
    pub status: String,
    /// `core`, `extended`, …
    pub support_level: String,
}

/// A sound's language and format (`FormatLangPair`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormatLangPair {
    /// Language.
    pub language: String,
    /// Format (`slin` for 8 kHz 16-bit wav, as observed).
    pub format: String,
}

/// A sound (`Sound`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sound {
    /// Id (`hello-world`).
    pub id: String,
    /// Text of the prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Languages and formats.
    pub formats: Vec<FormatLangPair>,
}

/// RTP statistics of a channel (`RTPstat`); only the fields Switchboard reads are named, the rest
/// are kept in `other`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RtpStat {
    /// Packets sent.
    pub txcount: i64,
    /// Packets received.
    pub rxcount: i64,
    /// Packets lost, sent.
    pub txploss: i64,
    /// Packets lost, received.
    pub rxploss: i64,
    /// Our SSRC.
    pub local_ssrc: i64,
    /// Their SSRC.
    pub remote_ssrc: i64,
    /// Octets sent.
    pub txoctetcount: i64,
    /// Octets received.
    pub rxoctetcount: i64,
    /// The channel.
    pub channel_uniqueid: String,
    /// Every other (jitter, loss, rtt) figure.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// The RTP address Asterisk uses for an externalMedia channel (its `channelvars`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalMediaAddress {
    /// `UNICASTRTP_LOCAL_ADDRESS`.
    pub address: String,
    /// `UNICASTRTP_LOCAL_PORT`.
    pub port: u16,
}

impl Channel {
    /// Where to send RTP for an externalMedia channel, from its `channelvars`.
    pub fn external_media_address(&self) -> Option<ExternalMediaAddress> {
        let vars = self.channelvars.as_ref()?;
        Some(ExternalMediaAddress {
            address: vars.get("UNICASTRTP_LOCAL_ADDRESS")?.clone(),
            port: vars.get("UNICASTRTP_LOCAL_PORT")?.parse().ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_media_channels_say_where_to_send_rtp() {
        let json = r#"{"id": "em-1795295616", "name": "UnicastRTP/127.0.0.1:46615-0x7f3528004680", "state": "Down", "protocol_id": "", "caller": {"name": "", "number": ""}, "connected": {"name": "", "number": ""}, "accountcode": "", "dialplan": {"context": "default", "exten": "s", "priority": 1, "app_name": "AppDial2", "app_data": "(Outgoing Line)"}, "creationtime": "2026-11-21T21:13:36.461+0000", "language": "en", "channelvars": {"UNICASTRTP_LOCAL_PORT": "10372", "UNICASTRTP_LOCAL_ADDRESS": "127.0.0.1"}}"#;
        let channel: Channel = serde_json::from_str(json).unwrap();
        assert_eq!(
            channel.external_media_address(),
            Some(ExternalMediaAddress {
                address: "127.0.0.1".into(),
                port: 10372
            })
        );
    }

    #[test]
    fn unknown_channel_states_do_not_fail_decoding() {
        let s: ChannelState = serde_json::from_str("\"Frobnicating\"").unwrap();
        assert_eq!(s, ChannelState::Unknown);
        let s: ChannelState = serde_json::from_str("\"Dialing Offhook\"").unwrap();
        assert_eq!(s.as_str(), "Dialing Offhook");
    }
}
