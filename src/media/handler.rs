//! The `MediaHandler` trait: the controller's only view of a switch.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::model::ContactId;

use super::command::MediaCommand;

/// A leg's id on its handler: FreeSWITCH's channel UUID, Asterisk's channel id. Switchboard
/// chooses it when it originates, so that events can be matched before any reply.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LegId(pub Arc<str>);

impl LegId {
    /// A leg id from text.
    pub fn new(id: impl Into<Arc<str>>) -> Self {
        LegId(id.into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LegId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A media handler in the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HandlerId(pub u32);

impl fmt::Display for HandlerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "handler#{}", self.0)
    }
}

/// Which switch a handler drives (for logs and metrics; the controller does not branch on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HandlerKind {
    /// FreeSWITCH over the Event Socket.
    FreeSwitch,
    /// Asterisk over ARI.
    Asterisk,
}

/// How loaded a handler is, for the handler pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HandlerLoad {
    /// Legs up now.
    pub active_legs: u32,
    /// Legs it is configured to carry.
    pub capacity: u32,
    /// Whether it is connected and resynced.
    pub healthy: bool,
}

/// A leg as the handler lists it (for resync after a restart or reconnect).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegSnapshot {
    /// The leg.
    pub leg: LegId,
    /// The contact it carries, if tagged.
    pub contact: Option<ContactId>,
    /// Whether it is answered.
    pub answered: bool,
    /// The leg it is bridged to, if any.
    pub bridged_to: Option<LegId>,
}

/// A member of a conference room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConferenceMember {
    /// The member id the handler gave it.
    pub member: String,
    /// The leg.
    pub leg: LegId,
    /// Whether it is muted.
    pub muted: bool,
}

/// What a command produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandOutcome {
    /// Done (or accepted; its effects arrive as events).
    Done,
    /// The originate was accepted; the leg's events follow.
    Originated {
        /// The new leg.
        leg: LegId,
    },
    /// A conference room's members.
    Members(Vec<ConferenceMember>),
}

/// A command the handler could not carry out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    /// The handler is not connected.
    #[error("{handler} is not connected")]
    NotConnected {
        /// The handler.
        handler: HandlerId,
    },
    /// The leg does not exist on the handler.
    #[error("no leg {leg} on {handler}")]
    NoSuchLeg {
        /// The handler.
        handler: HandlerId,
        /// The leg.
        leg: String,
    },
    /// The switch refused the command; `reply` is what it said (`-ERR …`, an ARI error).
    #[error("{handler} refused {command}: {reply}")]
    Refused {
        /// The handler.
        handler: HandlerId,
        /// The command, in the switch's terms.
        command: String,
        /// The switch's reply.
        reply: String,
    },
    /// No reply came in time.
    #[error("{handler} did not answer {command} within {timeout_ms} ms")]
    Timeout {
        /// The handler.
        handler: HandlerId,
        /// The command.
        command: String,
        /// The time waited.
        timeout_ms: u64,
    },
    /// The connection dropped before the reply.
    #[error("{handler} disconnected before answering {command}")]
    Disconnected {
        /// The handler.
        handler: HandlerId,
        /// The command.
        command: String,
    },
    /// The handler does not support this command.
    #[error("{handler} does not support {command}")]
    Unsupported {
        /// The handler.
        handler: HandlerId,
        /// The command.
        command: String,
    },
}

/// The future a [`MediaHandler`] returns (boxed, so handlers of both switches fit one pool).
pub type MediaFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, MediaError>> + Send + 'a>>;

/// The control interface of one media handler (the seeds' "control interface"). Events come
/// from the channel the handler was started with, as [`super::HandlerEvent`]s.
pub trait MediaHandler: Send + Sync {
    /// This handler's id in the pool.
    fn id(&self) -> HandlerId;

    /// Which switch it drives.
    fn kind(&self) -> HandlerKind;

    /// Carries out one command.
    fn execute(&self, command: MediaCommand) -> MediaFuture<'_, CommandOutcome>;

    /// Every leg that exists on the handler now (for resync).
    fn legs(&self) -> MediaFuture<'_, Vec<LegSnapshot>>;

    /// Current load, for the handler pool.
    fn load(&self) -> HandlerLoad;
}
