//! Prediction: when a matching slot is expected to free for a waiting contact, and how long a
//! new contact of a queue is expected to wait. Used for announcements, callbacks and overflow.
//!
//! The estimate is a queueing approximation: the agents who could serve the contact complete
//! contacts at a rate of Σ slots / handle time (each agent's own running average, or the queue's
//! default before it has one), shared among the queues with waiting contacts that the agent
//! serves; the contact needs everyone ahead of it, plus itself, to be taken.

use std::time::Duration;

use crate::model::{ContactId, MediaType, Priority, QueueId, Timestamp};

use super::error::RouterError;
use super::relax::allowed_tier;
use super::roster::QueueState;
use super::router::{Phase, Router};
use super::waiting::Signature;

impl Router {
    /// A waiting contact's place in its queue and media (1 = next), for announcements;
    /// `None` when it is not waiting (offered, connected, between queues, unknown).
    pub fn queue_position(&self, contact: ContactId) -> Option<u32> {
        self.ahead_of(contact)
            .map(|ahead| u32::try_from(ahead + 1).unwrap_or(u32::MAX))
    }

    /// Contacts ahead of a waiting contact in its lane.
    fn ahead_of(&self, contact: ContactId) -> Option<usize> {
        let live = self.contacts.get(&contact)?;
        let Phase::Waiting(_) = live.phase else {
            return None;
        };
        let (priority, arrival) = (live.spec.priority, live.spec.arrival);
        Some(
            self.waiting
                .lane(live.spec.queue, live.spec.media)
                .map(|(_, b)| {
                    if b.priority > priority {
                        b.entries.len()
                    } else if b.priority == priority {
                        b.rank_of(arrival, contact)
                    } else {
                        0
                    }
                })
                .sum(),
        )
    }

    /// Expected time from `now` until a waiting contact is offered; `Some(0)` if it is already
    /// offered or connected, `None` if no logged-in agent could serve it.
    pub fn expected_wait(
        &self,
        now: Timestamp,
        contact: ContactId,
    ) -> Result<Option<Duration>, RouterError> {
        let live = self
            .contacts
            .get(&contact)
            .ok_or(RouterError::UnknownContact(contact))?;
        let queue = self.queue(live.spec.queue)?;
        let bucket = match live.phase {
            Phase::Waiting(bucket) => bucket,
            Phase::Targeted(_) | Phase::Held | Phase::Detached => {
                return Ok(self.rate_estimate(
                    now,
                    queue,
                    live.spec.media,
                    Some(&live.signature),
                    live.spec.arrival,
                    0,
                ));
            }
            Phase::Offered(_) | Phase::Connected { .. } => return Ok(Some(Duration::ZERO)),
        };
        let _ = bucket;
        let arrival = live.spec.arrival;
        let ahead = self.ahead_of(contact).unwrap_or(0);
        Ok(self.rate_estimate(
            now,
            queue,
            live.spec.media,
            Some(&live.signature),
            arrival,
            ahead,
        ))
    }

    /// Expected wait of a new contact arriving now in `queue` with `media` and `priority` and
    /// no criteria beyond the queue's; `None` if no logged-in agent could serve it.
    pub fn expected_wait_new(
        &self,
        now: Timestamp,
        queue: QueueId,
        media: MediaType,
        priority: Priority,
    ) -> Result<Option<Duration>, RouterError> {
        let state = self.queue(queue)?;
        let ahead: usize = self
            .waiting
            .lane(queue, media)
            .filter(|(_, b)| b.priority >= priority)
            .map(|(_, b)| b.entries.len())
            .sum();
        let signature: Signature = state.spec.criteria.iter().copied().collect();
        if ahead == 0 {
            let free_now = state.free.get(media).as_slice().iter().any(|&index| {
                state
                    .member(index)
                    .and_then(|m| self.agent(m.agent).ok())
                    .is_some_and(|agent| {
                        agent
                            .meets(&signature, &state.spec, Duration::ZERO)
                            .is_none()
                    })
            });
            if free_now {
                return Ok(Some(Duration::ZERO));
            }
        }
        Ok(self.rate_estimate(now, state, media, Some(&signature), now, ahead))
    }

    fn rate_estimate(
        &self,
        now: Timestamp,
        queue: &QueueState,
        media: MediaType,
        signature: Option<&Signature>,
        arrival: Timestamp,
        ahead: usize,
    ) -> Option<Duration> {
        let wait = now.since(arrival);
        let allowed = allowed_tier(&queue.spec, wait);
        let mut rate = 0.0f64;
        for (_, member) in queue.members() {
            let Ok(agent) = self.agent(member.agent) else {
                continue;
            };
            let slots = *agent.spec.slots.get(media);
            if !agent.logged_in || slots == 0 || member.level > allowed {
                continue;
            }
            if signature.is_some_and(|s| agent.meets(s, &queue.spec, wait).is_some()) {
                continue;
            }
            let busy_queues = agent
                .member_of
                .iter()
                .filter(|(q, _)| self.waiting.lane_len(*q, media) > 0)
                .count()
                .max(1);
            let handle = agent.handle_time(media, queue.spec.default_handle);
            rate += f64::from(slots) / handle / busy_queues as f64;
        }
        if rate <= 0.0 {
            return None;
        }
        let seconds = (ahead as f64 + 1.0) / rate;
        Some(Duration::from_secs_f64(seconds.min(1e9)))
    }
}
