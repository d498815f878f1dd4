//! Timers of the router: offer expiry, relaxation steps, affinity windows, maximum waits and
//! ring-progressively steps. The router never reads a clock; its caller asks for the next
//! deadline (`poll_timeout`) and reports the time (`handle_timeout`).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::model::{AgentId, ContactId, QueueId, Timestamp};

/// What a timer is for. A timer is checked against the contact's state when it fires, so
/// timers of contacts that moved on are harmless.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TimerKind {
    /// A relaxation or tier step: the contact may now match more agents.
    Relax,
    /// The customer-affinity window ends.
    AffinityEnd,
    /// The contact has waited the queue's maximum.
    MaxWait(QueueId),
    /// An offer leg rang for the queue's offer timeout.
    OfferExpiry(AgentId),
    /// ring-progressively adds the next agent to the contact's offer of this round.
    RingNext(u32),
    /// The startup grace ended: overflow contacts nobody logged in could ever serve (the
    /// timer's contact is unused).
    GraceOver,
}

/// A due timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timer {
    /// When it fires.
    pub at: Timestamp,
    seq: u64,
    /// The contact it concerns.
    pub contact: ContactId,
    /// What for.
    pub kind: TimerKind,
}

/// A min-heap of timers in deadline order (ties in the order they were set).
#[derive(Debug, Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<Timer>>,
    seq: u64,
}

impl Timers {
    /// No timers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a timer.
    pub fn set(&mut self, at: Timestamp, contact: ContactId, kind: TimerKind) {
        self.seq += 1;
        self.heap.push(Reverse(Timer {
            at,
            seq: self.seq,
            contact,
            kind,
        }));
    }

    /// The earliest timer, without taking it.
    pub fn peek(&self) -> Option<Timer> {
        self.heap.peek().map(|Reverse(t)| *t)
    }

    /// The earliest deadline.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.heap.peek().map(|Reverse(t)| t.at)
    }

    /// Takes the earliest timer if it is due at `now`.
    pub fn pop_due(&mut self, now: Timestamp) -> Option<Timer> {
        if self.heap.peek().is_some_and(|Reverse(t)| t.at <= now) {
            self.heap.pop().map(|Reverse(t)| t)
        } else {
            None
        }
    }

    /// Number of timers set (including ones that will turn out stale).
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Drops timers for which `keep` says no (used to shed stale timers of ended contacts).
    pub fn retain(&mut self, mut keep: impl FnMut(&Timer) -> bool) {
        self.heap.retain(|Reverse(t)| keep(t));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_fire_in_deadline_order_and_only_when_due() {
        let mut t = Timers::new();
        t.set(Timestamp(30), ContactId(1), TimerKind::Relax);
        t.set(Timestamp(10), ContactId(2), TimerKind::RingNext(1));
        t.set(Timestamp(10), ContactId(3), TimerKind::Relax);
        assert_eq!(t.next_deadline(), Some(Timestamp(10)));
        assert!(t.pop_due(Timestamp(9)).is_none());
        assert_eq!(t.pop_due(Timestamp(10)).unwrap().contact, ContactId(2));
        assert_eq!(t.pop_due(Timestamp(10)).unwrap().contact, ContactId(3));
        assert!(t.pop_due(Timestamp(29)).is_none());
        assert_eq!(t.pop_due(Timestamp(100)).unwrap().contact, ContactId(1));
        assert_eq!(t.len(), 0);
    }
}
