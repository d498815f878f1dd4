//! What can go wrong when the router is asked to do something.

use crate::model::{AgentId, ContactId, QueueId, TenantId};

/// A router input that could not be applied; the router's state is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RouterError {
    /// The queue id was never added.
    #[error("unknown {0}")]
    UnknownQueue(QueueId),
    /// The agent id was never added, or was removed.
    #[error("unknown {0}")]
    UnknownAgent(AgentId),
    /// The contact is not live in the router (never arrived, or already ended).
    #[error("unknown or ended {0}")]
    UnknownContact(ContactId),
    /// A contact with this id is already live.
    #[error("{0} is already in the router")]
    DuplicateContact(ContactId),
    /// An agent with this id already exists.
    #[error("{0} already exists")]
    DuplicateAgent(AgentId),
    /// A queue with this id already exists.
    #[error("{0} already exists")]
    DuplicateQueue(QueueId),
    /// Something of one tenant was combined with something of another.
    #[error("{what} belongs to {found}, expected {expected}")]
    TenantMismatch {
        /// What was mismatched.
        what: &'static str,
        /// The tenant required.
        expected: TenantId,
        /// The tenant found.
        found: TenantId,
    },
    /// The agent has no live offer of this contact.
    #[error("{contact} is not offered to {agent}")]
    NotOffered {
        /// The contact.
        contact: ContactId,
        /// The agent.
        agent: AgentId,
    },
    /// The contact is in a phase that does not allow this input.
    #[error("{contact} is {phase}; this needs it {expected}")]
    WrongPhase {
        /// The contact.
        contact: ContactId,
        /// Its phase.
        phase: &'static str,
        /// The phase the input needs.
        expected: &'static str,
    },
    /// The agent still holds contacts.
    #[error("{agent} still holds {contacts} contact(s)")]
    AgentBusy {
        /// The agent.
        agent: AgentId,
        /// How many contacts it holds.
        contacts: usize,
    },
    /// The contact carries more criteria than the router accepts.
    #[error("{contact} carries {count} criteria; at most {max} are accepted")]
    TooManyCriteria {
        /// The contact.
        contact: ContactId,
        /// Criteria given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The agent is not a member of the queue.
    #[error("{agent} is not a member of {queue}")]
    NotMember {
        /// The agent.
        agent: AgentId,
        /// The queue.
        queue: QueueId,
    },
}

impl RouterError {
    /// The message with names from the catalog instead of ids (for people).
    pub fn render(&self, catalog: &super::Catalog) -> String {
        let agent = |a: &AgentId| format!("agent {}", catalog.agent_name(*a));
        let queue = |q: &QueueId| format!("queue {}", catalog.queue_name(*q));
        let tenant = |t: &TenantId| format!("tenant {}", catalog.tenant_name(*t));
        match self {
            RouterError::UnknownQueue(q) => format!("unknown {}", queue(q)),
            RouterError::UnknownAgent(a) => format!("unknown {}", agent(a)),
            RouterError::DuplicateAgent(a) => format!("{} already exists", agent(a)),
            RouterError::DuplicateQueue(q) => format!("{} already exists", queue(q)),
            RouterError::TenantMismatch {
                what,
                expected,
                found,
            } => {
                format!(
                    "{what} belongs to {}, expected {}",
                    tenant(found),
                    tenant(expected)
                )
            }
            RouterError::NotOffered { contact, agent: a } => {
                format!("{contact} is not offered to {}", agent(a))
            }
            RouterError::AgentBusy { agent: a, contacts } => {
                format!("{} still holds {contacts} contact(s)", agent(a))
            }
            RouterError::NotMember { agent: a, queue: q } => {
                format!("{} is not a member of {}", agent(a), queue(q))
            }
            other => other.to_string(),
        }
    }
}
