//! Events: what handlers report, normalised across switches.

use std::time::Duration;

use crate::model::{ContactId, Timestamp};

use super::command::HangupCause;
use super::handler::{HandlerId, LegId};

/// Which way a leg was set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegDirection {
    /// A call that came in to the handler.
    Inbound,
    /// A leg the handler placed (originate).
    Outbound,
}

/// What answering-machine detection decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AmdResult {
    /// A person answered.
    Human,
    /// A machine answered.
    Machine,
    /// Detection could not tell.
    NotSure,
}

/// One normalised thing that happened on a media handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaEvent {
    /// A leg exists.
    LegCreated {
        /// The leg.
        leg: LegId,
        /// The contact it carries, if tagged.
        contact: Option<ContactId>,
        /// Inbound or outbound.
        direction: LegDirection,
        /// The caller's number, if known.
        caller: Option<String>,
        /// The number or extension called, if known.
        destination: Option<String>,
    },
    /// The leg was answered.
    Answered {
        /// The leg.
        leg: LegId,
    },
    /// Two legs were bridged.
    Bridged {
        /// One leg.
        a: LegId,
        /// The other.
        b: LegId,
    },
    /// A leg left its bridge.
    Unbridged {
        /// The leg.
        leg: LegId,
    },
    /// The leg hung up.
    HungUp {
        /// The leg.
        leg: LegId,
        /// Why.
        cause: HangupCause,
    },
    /// The leg is gone; nothing more will be reported about it.
    Destroyed {
        /// The leg.
        leg: LegId,
    },
    /// A DTMF digit arrived from the leg.
    Dtmf {
        /// The leg.
        leg: LegId,
        /// The digit.
        digit: char,
        /// How long it was pressed.
        duration: Duration,
    },
    /// A playback started.
    PlaybackStarted {
        /// The leg.
        leg: LegId,
        /// The playback id given with the command, if known.
        playback: Option<String>,
    },
    /// A playback ended (completed or stopped).
    PlaybackFinished {
        /// The leg.
        leg: LegId,
        /// The playback id given with the command, if known.
        playback: Option<String>,
    },
    /// A recording started.
    RecordingStarted {
        /// The leg.
        leg: LegId,
        /// The file.
        path: String,
    },
    /// A recording ended.
    RecordingFinished {
        /// The leg.
        leg: LegId,
        /// The file.
        path: String,
        /// Its length, if the handler said.
        duration: Option<Duration>,
    },
    /// A leg joined a conference room.
    ConferenceJoined {
        /// The room.
        room: String,
        /// The leg.
        leg: LegId,
        /// The member id the handler gave it.
        member: Option<String>,
    },
    /// A leg left a conference room.
    ConferenceLeft {
        /// The room.
        room: String,
        /// The leg.
        leg: LegId,
    },
    /// Answering-machine detection decided.
    Amd {
        /// The leg.
        leg: LegId,
        /// What.
        result: AmdResult,
    },
    /// The handler is connected and ready for commands (after a connect or reconnect and its
    /// resync).
    HandlerUp,
    /// The handler's connection is lost; it is reconnecting.
    HandlerDown {
        /// Why, in words.
        reason: String,
    },
}

/// An event with the handler it came from and when it was received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerEvent {
    /// The handler.
    pub handler: HandlerId,
    /// When Switchboard received it.
    pub at: Timestamp,
    /// What happened.
    pub event: MediaEvent,
}
