//! What the router tells its caller: lifecycle changes (to be stored before they are reported)
//! and decisions (offers, overflows) for the caller to carry out.

use smallvec::SmallVec;

use crate::model::{AgentId, ContactId, MediaType, Outcome, Priority, QueueId, Timestamp};

use super::spec::OverflowTarget;

/// Why an offer leg was withdrawn by the router.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WithdrawReason {
    /// Another agent accepted the contact (ring-all, ring-progressively).
    AnsweredElsewhere,
    /// The customer left.
    Abandoned,
    /// The agent logged out or was removed.
    AgentLeft,
    /// Nothing can reach the contact for now (its switch is down); it is held.
    Unreachable,
    /// The queue's rules changed under the offer; it is made again under the new ones.
    QueueChanged,
}

/// Why an agent missed an offer. The router makes the agent unavailable for that media type
/// and reports it; the caller (the agent manager) decides when the agent is ready again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MissReason {
    /// The agent declined.
    Rejected,
    /// The offer rang for the queue's offer timeout.
    TimedOut,
}

/// One thing the router decided or one change of a contact's life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// A contact entered a queue (first arrival).
    Queued {
        /// The contact.
        contact: ContactId,
        /// Its queue.
        queue: QueueId,
        /// When.
        at: Timestamp,
    },
    /// Offer the contact to these agents; each slot stays reserved until accept, reject or timeout.
    Offered {
        /// The contact.
        contact: ContactId,
        /// Agents offered (several for ring-all).
        agents: SmallVec<[AgentId; 4]>,
        /// When the legs time out.
        expires_at: Timestamp,
        /// When.
        at: Timestamp,
    },
    /// ring-progressively added an agent to a ringing offer.
    OfferExtended {
        /// The contact.
        contact: ContactId,
        /// The agent added.
        agent: AgentId,
        /// When this leg times out.
        expires_at: Timestamp,
        /// When.
        at: Timestamp,
    },
    /// An offer leg ended without the agent doing anything wrong; its slot is free again.
    OfferWithdrawn {
        /// The contact.
        contact: ContactId,
        /// The agent.
        agent: AgentId,
        /// Why.
        reason: WithdrawReason,
        /// When.
        at: Timestamp,
    },
    /// An agent missed an offer; the router made it unavailable for `media`.
    OfferMissed {
        /// The contact.
        contact: ContactId,
        /// The agent.
        agent: AgentId,
        /// The media type the agent is now unavailable for.
        media: MediaType,
        /// Why.
        reason: MissReason,
        /// When.
        at: Timestamp,
    },
    /// Every leg of an offer was missed: the contact is back at its place in the queue.
    Requeued {
        /// The contact.
        contact: ContactId,
        /// When.
        at: Timestamp,
    },
    /// The contact is connected to an agent.
    Connected {
        /// The contact.
        contact: ContactId,
        /// The agent.
        agent: AgentId,
        /// When.
        at: Timestamp,
    },
    /// The queue's overflow rule fired for a contact (the caller's flow acts on the target).
    Overflowed {
        /// The contact.
        contact: ContactId,
        /// The queue it overflowed from.
        from: QueueId,
        /// Where it goes.
        target: OverflowTarget,
        /// When.
        at: Timestamp,
    },
    /// The contact's priority changed (place kept).
    PriorityChanged {
        /// The contact.
        contact: ContactId,
        /// The new priority.
        priority: Priority,
        /// When.
        at: Timestamp,
    },
    /// The contact became a callback, keeping its place and waiting time.
    BecameCallback {
        /// The contact.
        contact: ContactId,
        /// When.
        at: Timestamp,
    },
    /// The contact's life in the router ended (exactly once per contact).
    Ended {
        /// The contact.
        contact: ContactId,
        /// How.
        outcome: Outcome,
        /// The agent that served it, if any.
        agent: Option<AgentId>,
        /// When.
        at: Timestamp,
    },
}

impl Output {
    /// The contact this output is about.
    pub fn contact(&self) -> ContactId {
        match self {
            Output::Queued { contact, .. }
            | Output::Offered { contact, .. }
            | Output::OfferExtended { contact, .. }
            | Output::OfferWithdrawn { contact, .. }
            | Output::OfferMissed { contact, .. }
            | Output::Requeued { contact, .. }
            | Output::Connected { contact, .. }
            | Output::Overflowed { contact, .. }
            | Output::PriorityChanged { contact, .. }
            | Output::BecameCallback { contact, .. }
            | Output::Ended { contact, .. } => *contact,
        }
    }
}
