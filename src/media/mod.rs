//! The media interface: what the controller asks of a media handler (a FreeSWITCH or an
//! Asterisk), and what handlers report back. The controller never knows which switch it drives:
//! it sends [`MediaCommand`]s through the [`MediaHandler`] trait and reads [`HandlerEvent`]s
//! from one bounded channel shared by every handler (backpressure, never a silent drop).
//!
//! Every leg Switchboard creates or adopts carries its contact id in the channel variable
//! [`CONTACT_VARIABLE`], so that after a restart or a reconnect a handler can list what exists
//! ([`MediaHandler::legs`]) and the controller can re-adopt it.

pub mod asterisk;
mod command;
mod event;
mod event_sender;
pub mod freeswitch;
mod handler;
mod pool;

pub use command::{
    ConferenceAction, HangupCause, MediaCommand, OriginateRequest, OriginateTarget, PlaySource,
    RecordFormat, RecordTarget,
};
pub use event::{AmdResult, HandlerEvent, LegDirection, MediaEvent};
pub use event_sender::EventSender;
pub use handler::{
    CommandOutcome, ConferenceMember, HandlerId, HandlerKind, HandlerLoad, LegId, LegSnapshot,
    MediaError, MediaFuture, MediaHandler,
};
pub use pool::{HandlerPool, PoolMember};

/// The channel variable that carries a leg's contact id on every switch (FreeSWITCH channel
/// variable, Asterisk channel variable).
pub const CONTACT_VARIABLE: &str = "switchboard_contact_id";

/// Events a handler may have queued for the controller before its reader waits (backpressure).
pub const EVENT_QUEUE: usize = 4096;
