//! What the store takes and gives back: contacts, transitions, events.

use std::collections::BTreeMap;

use crate::model::{ContactId, ContactState, MediaType, Priority, Timestamp};

/// A contact as it arrives, before the store gives it an id. It is stored in state `queued`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewContact {
    /// The client (tenant) that owns the contact: 1 to 200 characters.
    pub tenant: String,
    /// The queue it waits in: 1 to 200 characters.
    pub queue: String,
    /// Its media type.
    pub media: MediaType,
    /// Its priority; higher is served first.
    pub priority: Priority,
    /// When it arrived; its waiting time counts from here, across restarts.
    pub arrived_at: Timestamp,
    /// Routing attributes (`language` → `es`): at most 64, keys 1 to 200 characters,
    /// values at most 1,000 characters.
    pub attributes: BTreeMap<String, String>,
    /// The router's matching criteria as JSON text, stored verbatim (at most 64 KiB).
    pub criteria_json: String,
    /// The tenant's reference for the customer, if known (for affinity): 1 to 200 characters.
    pub customer: Option<String>,
}

/// One step in a contact's life, written by [`super::Store::record`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The contact that moves.
    pub contact: ContactId,
    /// The state it moves to (may equal the current one, e.g. a move to another queue).
    pub state: ContactState,
    /// When it happened.
    pub at: Timestamp,
    /// The agent involved. `None` keeps the contact's agent, except that a move to `queued`
    /// clears it (the contact waits for anyone again).
    pub agent: Option<String>,
    /// A move to another queue.
    pub queue: Option<String>,
    /// A change of media type (e.g. conversion to a callback).
    pub media: Option<MediaType>,
    /// A change of priority.
    pub priority: Option<Priority>,
    /// Free text for the event log (a reason, a handler's cause code): at most 1,000 characters.
    pub detail: Option<String>,
}

impl Transition {
    /// A transition of `contact` to `state` at `at` that changes nothing else.
    pub fn new(contact: ContactId, state: ContactState, at: Timestamp) -> Self {
        Transition {
            contact,
            state,
            at,
            agent: None,
            queue: None,
            media: None,
            priority: None,
            detail: None,
        }
    }
}

/// A contact as stored: every column of its row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredContact {
    /// Its id, assigned by the store.
    pub id: ContactId,
    /// The client that owns it.
    pub tenant: String,
    /// The queue it is (or was last) in.
    pub queue: String,
    /// Its media type now.
    pub media: MediaType,
    /// Its priority now.
    pub priority: Priority,
    /// When it arrived.
    pub arrived_at: Timestamp,
    /// Its routing attributes.
    pub attributes: BTreeMap<String, String>,
    /// The router's matching criteria, verbatim.
    pub criteria_json: String,
    /// The tenant's customer reference, if known.
    pub customer: Option<String>,
    /// Its state now.
    pub state: ContactState,
    /// Its agent now, if any.
    pub agent: Option<String>,
    /// When it was first connected to an agent.
    pub connected_at: Option<Timestamp>,
    /// When it reached a final state.
    pub ended_at: Option<Timestamp>,
    /// When its row last changed.
    pub updated_at: Timestamp,
}

/// One entry of a contact's event log: the state it entered and what it looked like after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactEvent {
    /// The contact.
    pub contact: ContactId,
    /// The state it entered.
    pub state: ContactState,
    /// When.
    pub at: Timestamp,
    /// Its agent after the event.
    pub agent: Option<String>,
    /// Its queue after the event.
    pub queue: String,
    /// Its media type after the event.
    pub media: MediaType,
    /// Its priority after the event.
    pub priority: Priority,
    /// The transition's free text.
    pub detail: Option<String>,
}

/// The agent who last served a customer: one row of [`super::Store::last_agents`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastAgent {
    /// The client.
    pub tenant: String,
    /// The client's customer reference.
    pub customer: String,
    /// The agent of the customer's most recent connection.
    pub agent: String,
    /// When that connection was made.
    pub at: Timestamp,
}

/// How many contacts are in each state (zero where none are).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StateCounts([u64; ContactState::ALL.len()]);

impl StateCounts {
    /// The number of contacts in `state`.
    pub fn get(&self, state: ContactState) -> u64 {
        self.0[slot(state)]
    }

    /// Every state with its count, in lifecycle order.
    pub fn iter(&self) -> impl Iterator<Item = (ContactState, u64)> + '_ {
        ContactState::ALL
            .into_iter()
            .map(|state| (state, self.get(state)))
    }

    /// The number of contacts in all states.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// The number of contacts not in a final state.
    pub fn open(&self) -> u64 {
        self.iter()
            .filter(|(state, _)| !state.is_final())
            .map(|(_, n)| n)
            .sum()
    }

    /// Adds `n` contacts in `state`.
    pub(crate) fn add(&mut self, state: ContactState, n: u64) {
        self.0[slot(state)] += n;
    }
}

/// The index of `state` in [`ContactState::ALL`] (which lists the states in declaration order).
fn slot(state: ContactState) -> usize {
    state as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_slots_follow_the_lifecycle_order() {
        for (i, state) in ContactState::ALL.into_iter().enumerate() {
            assert_eq!(slot(state), i, "{state}");
        }
    }

    #[test]
    fn counts_add_up() {
        let mut counts = StateCounts::default();
        counts.add(ContactState::Queued, 3);
        counts.add(ContactState::Completed, 2);
        assert_eq!(counts.get(ContactState::Queued), 3);
        assert_eq!(counts.get(ContactState::Offered), 0);
        assert_eq!(counts.total(), 5);
        assert_eq!(counts.open(), 3);
    }
}
