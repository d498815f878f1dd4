//! Commands: what the controller asks a media handler to do.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::model::ContactId;

use super::handler::LegId;

/// A Q.850 hangup cause by its name, as FreeSWITCH names them (`NORMAL_CLEARING`, `USER_BUSY`);
/// the Asterisk adapter maps names to cause codes and back.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HangupCause(pub String);

/// The name of [`HangupCause::switch_lost`].
const SWITCH_LOST: &str = "SWITCH_LOST";

impl HangupCause {
    /// Q.850 16: the normal end of a call.
    pub fn normal_clearing() -> Self {
        HangupCause("NORMAL_CLEARING".to_owned())
    }
    /// Q.850 17: the far end is busy.
    pub fn user_busy() -> Self {
        HangupCause("USER_BUSY".to_owned())
    }
    /// Q.850 19: the far end rang and did not answer.
    pub fn no_answer() -> Self {
        HangupCause("NO_ANSWER".to_owned())
    }
    /// Q.850 21: the call was rejected.
    pub fn call_rejected() -> Self {
        HangupCause("CALL_REJECTED".to_owned())
    }
    /// Q.850 34: no circuit (trunk) available.
    pub fn no_circuit() -> Self {
        HangupCause("NORMAL_CIRCUIT_CONGESTION".to_owned())
    }
    /// The caller hung up before the call was answered.
    pub fn originator_cancel() -> Self {
        HangupCause("ORIGINATOR_CANCEL".to_owned())
    }
    /// Not a Q.850 cause: the leg was gone when Switchboard reconnected to its switch (the
    /// switch went down or restarted with it, so the real cause was never reported).
    pub fn switch_lost() -> Self {
        HangupCause(SWITCH_LOST.to_owned())
    }
    /// Whether this is [`HangupCause::switch_lost`].
    pub fn is_switch_lost(&self) -> bool {
        self.0 == SWITCH_LOST
    }
    /// The cause as written (`NORMAL_CLEARING`).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for HangupCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whom an originate calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginateTarget {
    /// A SIP user registered on the handler (an agent's softphone): `user/1000` on FreeSWITCH,
    /// `PJSIP/1000` on Asterisk.
    SipUser {
        /// The user (extension).
        user: String,
        /// The domain, if the handler serves several.
        domain: Option<String>,
    },
    /// A number through a gateway or trunk.
    Gateway {
        /// The gateway or trunk name.
        gateway: String,
        /// The number to dial.
        number: String,
    },
    /// A loopback/local channel into the handler's own dialplan.
    Local {
        /// The extension.
        extension: String,
        /// The dialplan context.
        context: String,
    },
    /// A dial string in the handler's own syntax, passed through.
    Raw(String),
}

/// A new leg to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginateRequest {
    /// Whom to call.
    pub target: OriginateTarget,
    /// The contact the leg belongs to (set as [`super::CONTACT_VARIABLE`]).
    pub contact: ContactId,
    /// The leg id Switchboard chooses, so that events can be correlated before any reply.
    pub leg: LegId,
    /// Caller id number shown to the called party.
    pub caller_id_number: Option<String>,
    /// Caller id name shown to the called party.
    pub caller_id_name: Option<String>,
    /// Further channel variables.
    pub variables: BTreeMap<String, String>,
    /// How long to ring before giving up.
    pub timeout: Duration,
}

/// What to play.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlaySource {
    /// A sound file on the handler (path or sound name).
    File(String),
    /// A tone (`%(1000,0,440)` style on FreeSWITCH, `tone:ring` on Asterisk).
    Tone(String),
    /// Music on hold of a class.
    Music(String),
}

/// What to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordTarget {
    /// One leg (both directions mixed).
    Leg(LegId),
    /// Everything said on a bridge (FreeSWITCH: the A-leg of the bridge; Asterisk: the bridge).
    Bridge {
        /// One leg of the bridge.
        leg: LegId,
    },
}

/// A recording's file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordFormat {
    /// PCM WAV.
    Wav,
    /// MP3, where the handler supports it.
    Mp3,
}

/// A conference operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConferenceAction {
    /// Put a leg into a conference room (created on first join).
    Join {
        /// The leg.
        leg: LegId,
    },
    /// Take a leg out of the room.
    Leave {
        /// The leg.
        leg: LegId,
    },
    /// Mute a leg in the room.
    Mute {
        /// The leg.
        leg: LegId,
    },
    /// Unmute a leg in the room.
    Unmute {
        /// The leg.
        leg: LegId,
    },
    /// Remove a leg from the room and hang it up.
    Kick {
        /// The leg.
        leg: LegId,
    },
    /// List the room's members ([`super::CommandOutcome::Members`]).
    List,
}

/// One thing the controller asks of a media handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaCommand {
    /// Create a leg ([`super::CommandOutcome::Originated`] once the handler accepted it).
    Originate(OriginateRequest),
    /// Answer an inbound leg.
    Answer {
        /// The leg.
        leg: LegId,
    },
    /// Hang a leg up.
    Hangup {
        /// The leg.
        leg: LegId,
        /// Why.
        cause: HangupCause,
    },
    /// Park a leg, with music on hold of a class (or silence).
    Park {
        /// The leg.
        leg: LegId,
        /// Music class; `None`: silence.
        music: Option<String>,
    },
    /// Play to a leg.
    Play {
        /// The leg.
        leg: LegId,
        /// What.
        source: PlaySource,
        /// An id Switchboard chooses, reported back in the playback events.
        playback: String,
    },
    /// Stop what is playing to a leg.
    StopPlayback {
        /// The leg.
        leg: LegId,
        /// The playback started with [`MediaCommand::Play`].
        playback: String,
    },
    /// Start recording.
    StartRecording {
        /// What.
        target: RecordTarget,
        /// Where, on the handler.
        path: String,
        /// Format.
        format: RecordFormat,
    },
    /// Stop a recording started with [`MediaCommand::StartRecording`].
    StopRecording {
        /// What.
        target: RecordTarget,
        /// The path it records to.
        path: String,
    },
    /// Bridge two legs.
    Bridge {
        /// One leg.
        a: LegId,
        /// The other.
        b: LegId,
    },
    /// Take a leg out of its bridge (it stays up, parked).
    Unbridge {
        /// The leg.
        leg: LegId,
    },
    /// A conference operation in a room.
    Conference {
        /// The room.
        room: String,
        /// What.
        action: ConferenceAction,
    },
    /// Send a leg to an extension of the handler's dialplan.
    Transfer {
        /// The leg.
        leg: LegId,
        /// The extension.
        extension: String,
        /// The dialplan context.
        context: String,
    },
    /// Send DTMF digits to a leg.
    SendDtmf {
        /// The leg.
        leg: LegId,
        /// Digits: 0-9, *, #, A-D.
        digits: String,
    },
    /// Set a channel variable on a leg (an adopted inbound leg learns its contact this way).
    SetVariable {
        /// The leg.
        leg: LegId,
        /// Variable name.
        name: String,
        /// Its value.
        value: String,
    },
}
