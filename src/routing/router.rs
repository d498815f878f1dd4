//! The router: one state machine for the universal queue.
//!
//! Inputs are method calls that take `now`; outputs are queued [`Output`]s drained with
//! [`Router::poll_output`]. Deadlines (offer timeouts, relaxation steps, maximum waits) are
//! reported by [`Router::poll_timeout`] and handled by [`Router::handle_timeout`]; every input
//! first handles the timers that are due, so the router's view is always current.

use rand::rngs::Xoshiro256PlusPlus;
use rand::{Rng, SeedableRng};
use rustc_hash::FxHashMap;
use smallvec::SmallVec;
use std::cmp::Reverse;
use std::collections::VecDeque;
use std::time::Duration;

use crate::model::{
    AgentId, ContactId, CustomerId, Level, MediaType, Outcome, Priority, QueueId, SkillId,
    Timestamp,
};

use super::catalog::MAX_CRITERIA;
use super::error::RouterError;
use super::history::CustomerHistory;
use super::output::{MissReason, Output, WithdrawReason};
use super::relax::{allowed_tier, effective_min, next_tier_step, required_mask};
use super::roster::{AgentState, Member, QueueState};
use super::setup::Fairness;
use super::spec::{
    AgentSpec, ContactSpec, Criterion, Membership, Modifier, OverflowTarget, QueueSpec,
    RouterSettings,
};
use super::strategy::Behaviour;
use super::timers::{TimerKind, Timers};
use super::waiting::{BucketClass, BucketId, Signature, Waiting};

/// Where a live contact is.
#[derive(Debug, Clone)]
pub(super) enum Phase {
    /// In a bucket of the waiting index.
    Waiting(BucketId),
    /// Waiting for one agent during its affinity window.
    Targeted(AgentId),
    /// Ringing one or more agents.
    Offered(SmallVec<[Leg; 2]>),
    /// With an agent.
    Connected { agent: AgentId, since: Timestamp },
    /// Waiting, but set aside: nothing can reach it now (its switch is down). It keeps its
    /// arrival, so it takes back its place when released.
    Held,
    /// In no index, for the moment of a move within one input.
    Detached,
}

impl Phase {
    pub(super) fn name(&self) -> &'static str {
        match self {
            Phase::Waiting(_) => "waiting",
            Phase::Targeted(_) => "waiting for its previous agent",
            Phase::Offered(_) => "offered",
            Phase::Connected { .. } => "connected",
            Phase::Held => "held",
            Phase::Detached => "moving",
        }
    }
}

/// One agent an offer rings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Leg {
    pub(super) agent: AgentId,
    pub(super) expires_at: Timestamp,
}

/// A contact the router holds.
#[derive(Debug, Clone)]
pub(super) struct Live {
    pub(super) spec: ContactSpec,
    /// Required criteria (the queue's and the contact's), sorted.
    pub(super) signature: Signature,
    /// Preferred criteria.
    pub(super) preferred: SmallVec<[Criterion; 4]>,
    /// Filter of the keys the signature always requires.
    pub(super) mask: u128,
    pub(super) phase: Phase,
    /// When the contact entered its current queue (maximum wait counts from here).
    pub(super) queue_entered: Timestamp,
    /// Queues it overflowed from (each at most once).
    pub(super) overflowed_from: SmallVec<[QueueId; 2]>,
    /// Counts the offers made of this contact, so that a ring-progressively step of an earlier
    /// offer does not widen a later one.
    pub(super) offer_round: u32,
}

/// Counters of what the router did, for metrics and the simulator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RouterCounters {
    /// Contacts that arrived.
    pub arrived: u64,
    /// Offers made (one per contact offer, however many agents ring).
    pub offers: u64,
    /// Offer legs missed (rejected or timed out).
    pub missed: u64,
    /// Contacts connected.
    pub connected: u64,
    /// Contacts completed.
    pub completed: u64,
    /// Contacts abandoned.
    pub abandoned: u64,
    /// Overflow decisions.
    pub overflowed: u64,
    /// Contacts set aside because nothing could reach them.
    pub held: u64,
}

/// Ordering of candidates within a decision: lower is better.
type RankClass = (bool, Reverse<u32>, u32);
type StrategyKey = (u64, u64);
/// Claim of a waiting contact on an agent: lower is better.
type ClaimKey = (Reverse<u32>, Reverse<Priority>, Reverse<i128>, ContactId);

#[inline]
fn biased(t: Timestamp) -> u64 {
    (t.0 as u64) ^ (1 << 63)
}

/// The universal queue and skills-based router.
pub struct Router {
    pub(super) settings: RouterSettings,
    pub(super) queues: Vec<Option<QueueState>>,
    pub(super) agents: Vec<Option<AgentState>>,
    pub(super) contacts: FxHashMap<ContactId, Live>,
    pub(super) waiting: Waiting,
    timers: Timers,
    outputs: VecDeque<Output>,
    rng: Xoshiro256PlusPlus,
    pub(super) history: CustomerHistory,
    /// Whether any logged-in member could ever serve a signature; cleared when the roster changes.
    servable: FxHashMap<(QueueId, MediaType, Signature), bool>,
    counters: RouterCounters,
    /// Contacts waiting for one agent in their affinity window.
    targeted: usize,
    /// Before this instant, contacts do not overflow because nobody logged in could serve them.
    pub(super) grace_until: Timestamp,
    last_now: Timestamp,
}

/// Entries of the servability cache before it is cleared wholesale (bounds memory).
const SERVABLE_CACHE_LIMIT: usize = 65_536;

impl Router {
    /// A router with no queues and no agents.
    pub fn new(settings: RouterSettings) -> Self {
        let rng = Xoshiro256PlusPlus::seed_from_u64(settings.seed);
        let history = CustomerHistory::new(settings.history_capacity);
        Router {
            settings,
            queues: Vec::new(),
            agents: Vec::new(),
            contacts: FxHashMap::default(),
            waiting: Waiting::new(),
            timers: Timers::new(),
            outputs: VecDeque::new(),
            rng,
            history,
            servable: FxHashMap::default(),
            counters: RouterCounters::default(),
            targeted: 0,
            grace_until: Timestamp::ZERO,
            last_now: Timestamp::ZERO,
        }
    }

    // ----- configuration -------------------------------------------------------------------

    /// Adds a queue. Overflow targets must be queues of the same tenant (added before or after).
    pub fn add_queue(&mut self, mut spec: QueueSpec) -> Result<(), RouterError> {
        if self.queue(spec.id).is_ok() {
            return Err(RouterError::DuplicateQueue(spec.id));
        }
        spec.relax.sort_by_key(|step| step.after);
        spec.criteria.retain(|c| c.modifier == Modifier::Required);
        let index = spec.id.index();
        if self.queues.len() <= index {
            self.queues.resize_with(index + 1, || None);
        }
        self.queues[index] = Some(QueueState::new(spec));
        Ok(())
    }

    /// Replaces a queue's rules while it runs. Its waiting contacts leave the waiting index,
    /// take the new rules (criteria, strategy, overflow, relaxation, tiers) and come back at
    /// their places (arrival and priority kept, oldest first), which may offer them at once or
    /// overflow them if the new maximum wait is already over; offered and connected contacts
    /// go on, under the new rules should they come back.
    pub fn update_queue(&mut self, now: Timestamp, mut spec: QueueSpec) -> Result<(), RouterError> {
        self.advance(now);
        let queue = self.queue(spec.id)?;
        if queue.spec.tenant != spec.tenant {
            return Err(RouterError::TenantMismatch {
                what: "queue",
                expected: queue.spec.tenant,
                found: spec.tenant,
            });
        }
        if let OverflowTarget::Queue(target) = spec.overflow {
            self.queue(target)?;
        }
        spec.relax.sort_by_key(|step| step.after);
        spec.criteria.retain(|c| c.modifier == Modifier::Required);
        let id = spec.id;
        // An offer that rings several agents cannot go on in a queue that rings one: it is
        // withdrawn and made again under the new rules.
        let single = !matches!(
            spec.strategy.behaviour(),
            Behaviour::RingAll | Behaviour::RingProgressively
        );
        let mut waiting: Vec<(Reverse<Priority>, Timestamp, ContactId)> = self
            .contacts
            .iter()
            .filter(|(_, l)| {
                l.spec.queue == id
                    && match &l.phase {
                        Phase::Waiting(_) | Phase::Targeted(_) => true,
                        Phase::Offered(legs) => single && legs.len() > 1,
                        _ => false,
                    }
            })
            .map(|(c, l)| (Reverse(l.spec.priority), l.spec.arrival, *c))
            .collect();
        waiting.sort_unstable();
        let mut freed: SmallVec<[AgentId; 4]> = SmallVec::new();
        for &(_, _, contact) in &waiting {
            freed.extend(self.unplace(now, contact, WithdrawReason::QueueChanged));
        }
        let Some(queue) = self.queues.get_mut(id.index()).and_then(Option::as_mut) else {
            return Err(RouterError::UnknownQueue(id));
        };
        queue.spec = spec;
        // Whether anyone could ever serve a contact depends on the queue's rules too.
        self.servable.clear();
        let Some(queue) = self.queues.get(id.index()).and_then(Option::as_ref) else {
            return Err(RouterError::UnknownQueue(id));
        };
        let queue_spec = &queue.spec;
        for live in self.contacts.values_mut().filter(|l| l.spec.queue == id) {
            let (signature, preferred) = split_criteria(queue_spec, &live.spec.criteria);
            live.mask = required_mask(queue_spec, &signature);
            live.signature = signature;
            live.preferred = preferred;
        }
        // The new relaxation, tier and wait timers, for every contact that may wait again.
        let queued: Vec<ContactId> = self
            .contacts
            .iter()
            .filter(|(_, l)| l.spec.queue == id && !matches!(l.phase, Phase::Connected { .. }))
            .map(|(c, _)| *c)
            .collect();
        for contact in queued {
            self.schedule_queue_timers(now, contact);
        }
        for (_, _, contact) in waiting {
            self.replace(now, contact);
        }
        for agent in freed {
            self.dispatch_agent(now, agent);
        }
        Ok(())
    }

    /// The rules of a queue.
    pub fn queue_spec(&self, queue: QueueId) -> Result<&QueueSpec, RouterError> {
        self.queue(queue).map(|q| &q.spec)
    }

    /// Adds an agent (logged out) with its memberships.
    pub fn add_agent(&mut self, now: Timestamp, spec: AgentSpec) -> Result<(), RouterError> {
        self.advance(now);
        if self.agent(spec.id).is_ok() {
            return Err(RouterError::DuplicateAgent(spec.id));
        }
        for membership in &spec.memberships {
            let queue = self.queue(membership.queue)?;
            if queue.spec.tenant != spec.tenant {
                return Err(RouterError::TenantMismatch {
                    what: "queue",
                    expected: spec.tenant,
                    found: queue.spec.tenant,
                });
            }
        }
        let mut spec = spec;
        spec.skills
            .sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        spec.skills.dedup_by_key(|(key, _)| *key);
        let id = spec.id;
        let memberships = std::mem::take(&mut spec.memberships);
        let index = id.index();
        if self.agents.len() <= index {
            self.agents.resize_with(index + 1, || None);
        }
        self.agents[index] = Some(AgentState::new(spec));
        for membership in memberships {
            self.set_membership(now, id, membership)?;
        }
        Ok(())
    }

    /// Adds the agent to a queue, or changes its tier level and position there.
    pub fn set_membership(
        &mut self,
        now: Timestamp,
        agent: AgentId,
        membership: Membership,
    ) -> Result<(), RouterError> {
        self.advance(now);
        let tenant = self.agent(agent)?.spec.tenant;
        let queue = self.queue(membership.queue)?;
        if queue.spec.tenant != tenant {
            return Err(RouterError::TenantMismatch {
                what: "queue",
                expected: tenant,
                found: queue.spec.tenant,
            });
        }
        let existing = self
            .agent(agent)?
            .member_of
            .iter()
            .find(|(q, _)| *q == membership.queue)
            .map(|(_, i)| *i);
        let free = self.agent(agent)?.free;
        let Some(q) = self
            .queues
            .get_mut(membership.queue.index())
            .and_then(Option::as_mut)
        else {
            return Err(RouterError::UnknownQueue(membership.queue));
        };
        match existing {
            Some(index) => {
                if let Some(Some(member)) = q.members.get_mut(index as usize) {
                    member.level = membership.level;
                    member.position = membership.position;
                }
                q.max_member_level = q.members().map(|(_, m)| m.level).max().unwrap_or(0);
            }
            None => {
                let index = q.add_member(Member {
                    agent,
                    level: membership.level,
                    position: membership.position,
                    completed: 0,
                    last_end: Timestamp::ZERO,
                });
                for media in free.iter() {
                    q.free.get_mut(media).insert(index);
                }
                if let Some(a) = self.agent_mut_opt(agent) {
                    a.member_of.push((membership.queue, index));
                    a.spec.memberships.push(membership);
                }
            }
        }
        if let Some(a) = self.agent_mut_opt(agent)
            && let Some(m) = a
                .spec
                .memberships
                .iter_mut()
                .find(|m| m.queue == membership.queue)
        {
            *m = membership;
        }
        self.roster_changed();
        self.dispatch_agent(now, agent);
        Ok(())
    }

    /// Takes the agent out of a queue (contacts it holds from there stay with it).
    pub fn remove_membership(
        &mut self,
        now: Timestamp,
        agent: AgentId,
        queue: QueueId,
    ) -> Result<(), RouterError> {
        self.advance(now);
        let a = self.agent_mut(agent)?;
        let Some(pos) = a.member_of.iter().position(|(q, _)| *q == queue) else {
            return Err(RouterError::NotMember { agent, queue });
        };
        let (_, index) = a.member_of.remove(pos);
        a.spec.memberships.retain(|m| m.queue != queue);
        if let Some(q) = self.queues.get_mut(queue.index()).and_then(Option::as_mut) {
            q.remove_member(index);
        }
        self.roster_changed();
        self.sweep_unservable(now, &[queue]);
        Ok(())
    }

    /// Replaces an agent's skills (keys and levels).
    pub fn set_skills(
        &mut self,
        now: Timestamp,
        agent: AgentId,
        mut skills: Vec<(SkillId, Level)>,
    ) -> Result<(), RouterError> {
        self.advance(now);
        skills.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        skills.dedup_by_key(|(key, _)| *key);
        let a = self.agent_mut(agent)?;
        a.set_skills(skills);
        let queues: Vec<QueueId> = a.member_of.iter().map(|(q, _)| *q).collect();
        self.roster_changed();
        self.release_targets(now, agent, false);
        self.sweep_unservable(now, &queues);
        self.dispatch_agent(now, agent);
        Ok(())
    }

    /// Sets how many contacts of `media` the agent can hold at once.
    pub fn set_slots(
        &mut self,
        now: Timestamp,
        agent: AgentId,
        media: MediaType,
        slots: u8,
    ) -> Result<(), RouterError> {
        self.advance(now);
        let a = self.agent_mut(agent)?;
        *a.spec.slots.get_mut(media) = slots;
        let queues: Vec<QueueId> = a.member_of.iter().map(|(q, _)| *q).collect();
        self.refresh_agent(agent);
        self.roster_changed();
        self.sweep_unservable(now, &queues);
        self.dispatch_agent(now, agent);
        Ok(())
    }

    /// Removes an agent that holds no contacts.
    pub fn remove_agent(&mut self, now: Timestamp, agent: AgentId) -> Result<(), RouterError> {
        self.advance(now);
        let held = self.agent(agent)?.connected.len();
        if held > 0 {
            return Err(RouterError::AgentBusy {
                agent,
                contacts: held,
            });
        }
        self.log_out(now, agent)?;
        let queues: Vec<QueueId> = self
            .agent(agent)?
            .member_of
            .iter()
            .map(|(q, _)| *q)
            .collect();
        for queue in &queues {
            self.remove_membership(now, agent, *queue)?;
        }
        if let Some(slot) = self.agents.get_mut(agent.index()) {
            *slot = None;
        }
        self.roster_changed();
        Ok(())
    }

    // ----- agent availability --------------------------------------------------------------

    /// Logs the agent in, available for every media type it has slots for.
    pub fn log_in(&mut self, now: Timestamp, agent: AgentId) -> Result<(), RouterError> {
        self.advance(now);
        let a = self.agent_mut(agent)?;
        a.logged_in = true;
        a.available = MediaType::ALL.into_iter().collect();
        self.refresh_agent(agent);
        self.roster_changed();
        self.dispatch_agent(now, agent);
        Ok(())
    }

    /// Logs the agent out: ringing offers are withdrawn (their contacts go back to their
    /// place), contacts waiting for this agent by affinity are released; connected contacts stay.
    pub fn log_out(&mut self, now: Timestamp, agent: AgentId) -> Result<(), RouterError> {
        self.advance(now);
        let a = self.agent_mut(agent)?;
        if !a.logged_in {
            return Ok(());
        }
        a.logged_in = false;
        a.available = crate::model::MediaSet::EMPTY;
        let offered: SmallVec<[ContactId; 4]> = a.offered.clone();
        let queues: Vec<QueueId> = a.member_of.iter().map(|(q, _)| *q).collect();
        self.refresh_agent(agent);
        for contact in offered {
            self.end_leg(
                now,
                contact,
                agent,
                LegEnd::Withdrawn(WithdrawReason::AgentLeft),
            );
        }
        self.roster_changed();
        self.release_targets(now, agent, true);
        self.sweep_unservable(now, &queues);
        Ok(())
    }

    /// Makes the agent available or unavailable for one media type (`Some`) or all (`None`).
    /// Unavailable agents keep what they hold and may still accept offers already ringing.
    pub fn set_available(
        &mut self,
        now: Timestamp,
        agent: AgentId,
        media: Option<MediaType>,
        available: bool,
    ) -> Result<(), RouterError> {
        self.advance(now);
        let a = self.agent_mut(agent)?;
        let kinds: SmallVec<[MediaType; 7]> = match media {
            Some(m) => smallvec::smallvec![m],
            None => MediaType::ALL.into_iter().collect(),
        };
        for m in kinds {
            if available {
                a.available.insert(m);
            } else {
                a.available.remove(m);
            }
        }
        self.refresh_agent(agent);
        if available {
            self.dispatch_agent(now, agent);
        } else {
            // Contacts waiting for this agent by affinity should not wait for a break to end.
            self.release_targets(now, agent, false);
        }
        Ok(())
    }

    /// Starts the startup grace at `now` (see `RoutingSettings::startup_grace_s`): until it
    /// ends, contacts wait instead of overflowing because no agent is logged in yet; when it
    /// ends, those nobody logged in could ever serve overflow.
    pub fn start_grace(&mut self, now: Timestamp) {
        self.grace_until = now.plus(self.settings.startup_grace);
        self.timers
            .set(self.grace_until, ContactId(0), TimerKind::GraceOver);
    }

    /// Resets the per-day statistics (contacts handled, talk time) of every agent.
    pub fn reset_daily_stats(&mut self) {
        for agent in self.agents.iter_mut().flatten() {
            agent.handled_today = 0;
            agent.talk_today = Duration::ZERO;
        }
    }

    /// Remembers that `agent` served `customer` at `at` (rebuilding affinity after a restart).
    pub fn remember_customer(&mut self, customer: CustomerId, agent: AgentId, at: Timestamp) {
        self.history.record(customer, agent, at);
    }

    // ----- contacts --------------------------------------------------------------------------

    /// A new contact arrives (or is restored with its original arrival time): it takes the best
    /// free agent slot, or waits at its place.
    pub fn arrive(&mut self, now: Timestamp, spec: ContactSpec) -> Result<(), RouterError> {
        self.advance(now);
        if self.contacts.contains_key(&spec.id) {
            return Err(RouterError::DuplicateContact(spec.id));
        }
        if spec.criteria.len() > MAX_CRITERIA {
            return Err(RouterError::TooManyCriteria {
                contact: spec.id,
                count: spec.criteria.len(),
                max: MAX_CRITERIA,
            });
        }
        let queue = self.queue(spec.queue)?;
        if queue.spec.tenant != spec.tenant {
            return Err(RouterError::TenantMismatch {
                what: "queue",
                expected: spec.tenant,
                found: queue.spec.tenant,
            });
        }
        let (signature, preferred) = split_criteria(&queue.spec, &spec.criteria);
        let mask = required_mask(&queue.spec, &signature);
        let id = spec.id;
        let queue_id = spec.queue;
        let arrival = spec.arrival;
        self.contacts.insert(
            id,
            Live {
                spec,
                signature,
                preferred,
                mask,
                phase: Phase::Detached,
                queue_entered: arrival.min(now),
                overflowed_from: SmallVec::new(),
                offer_round: 0,
            },
        );
        self.counters.arrived += 1;
        self.outputs.push_back(Output::Queued {
            contact: id,
            queue: queue_id,
            at: now,
        });
        self.schedule_queue_timers(now, id);
        self.place(now, id, true);
        // A restored contact may already be past its maximum wait.
        self.advance(now);
        Ok(())
    }

    /// Restores a contact that was connected to `agent` before a restart.
    pub fn restore_connected(
        &mut self,
        now: Timestamp,
        spec: ContactSpec,
        agent: AgentId,
        since: Timestamp,
    ) -> Result<(), RouterError> {
        self.advance(now);
        if self.contacts.contains_key(&spec.id) {
            return Err(RouterError::DuplicateContact(spec.id));
        }
        let queue = self.queue(spec.queue)?;
        let (signature, preferred) = split_criteria(&queue.spec, &spec.criteria);
        let mask = required_mask(&queue.spec, &signature);
        let a = self.agent_mut(agent)?;
        if a.spec.tenant != spec.tenant {
            return Err(RouterError::TenantMismatch {
                what: "agent",
                expected: spec.tenant,
                found: a.spec.tenant,
            });
        }
        *a.used.get_mut(spec.media) += 1;
        a.connected.push(spec.id);
        let id = spec.id;
        self.contacts.insert(
            id,
            Live {
                spec,
                signature,
                preferred,
                mask,
                phase: Phase::Connected { agent, since },
                queue_entered: since,
                overflowed_from: SmallVec::new(),
                offer_round: 0,
            },
        );
        self.refresh_agent(agent);
        Ok(())
    }

    /// The agent accepted the offer: the contact is connected, other ringing legs are withdrawn.
    pub fn accept(
        &mut self,
        now: Timestamp,
        contact: ContactId,
        agent: AgentId,
    ) -> Result<(), RouterError> {
        self.advance(now);
        let legs = self.ringing(contact, agent)?;
        let others: SmallVec<[AgentId; 4]> = legs
            .iter()
            .map(|l| l.agent)
            .filter(|a| *a != agent)
            .collect();
        let Some(live) = self.contacts.get_mut(&contact) else {
            return Err(RouterError::UnknownContact(contact));
        };
        let media = live.spec.media;
        live.phase = Phase::Connected { agent, since: now };
        if let Some(a) = self.agent_mut_opt(agent) {
            a.offered.retain(|c| *c != contact);
            a.connected.push(contact);
        }
        for other in &others {
            self.release_slot(*other, contact, media);
            self.outputs.push_back(Output::OfferWithdrawn {
                contact,
                agent: *other,
                reason: WithdrawReason::AnsweredElsewhere,
                at: now,
            });
        }
        self.counters.connected += 1;
        self.outputs.push_back(Output::Connected {
            contact,
            agent,
            at: now,
        });
        for other in others {
            self.dispatch_agent(now, other);
        }
        Ok(())
    }

    /// The agent declined: the agent becomes unavailable for the media type (reported), and the
    /// contact goes back to its place if no other leg rings.
    pub fn reject(
        &mut self,
        now: Timestamp,
        contact: ContactId,
        agent: AgentId,
    ) -> Result<(), RouterError> {
        self.advance(now);
        self.ringing(contact, agent)?;
        self.end_leg(now, contact, agent, LegEnd::Missed(MissReason::Rejected));
        Ok(())
    }

    /// The legs of a contact that is ringing `agent`, or why it is not.
    fn ringing(
        &self,
        contact: ContactId,
        agent: AgentId,
    ) -> Result<SmallVec<[Leg; 2]>, RouterError> {
        let live = self
            .contacts
            .get(&contact)
            .ok_or(RouterError::UnknownContact(contact))?;
        let Phase::Offered(legs) = &live.phase else {
            return Err(RouterError::WrongPhase {
                contact,
                phase: live.phase.name(),
                expected: "offered",
            });
        };
        if !legs.iter().any(|leg| leg.agent == agent) {
            return Err(RouterError::NotOffered { contact, agent });
        }
        Ok(legs.clone())
    }

    /// The customer left before being connected.
    pub fn abandon(&mut self, now: Timestamp, contact: ContactId) -> Result<(), RouterError> {
        self.advance(now);
        let live = self
            .contacts
            .get(&contact)
            .ok_or(RouterError::UnknownContact(contact))?;
        if let Phase::Connected { .. } = live.phase {
            return Err(RouterError::WrongPhase {
                contact,
                phase: "connected",
                expected: "waiting or offered",
            });
        }
        let freed = self.unplace(now, contact, WithdrawReason::Abandoned);
        self.counters.abandoned += 1;
        self.end(now, contact, Outcome::Abandoned, None);
        for agent in freed {
            self.dispatch_agent(now, agent);
        }
        Ok(())
    }

    /// Sets a waiting or offered contact aside while nothing can reach it (its switch is
    /// down): offers to it are withdrawn, no agent is offered it, it overflows no more, and
    /// it keeps its arrival. Returns whether it was set aside (a connected or already held
    /// contact is left as it is).
    pub fn hold(&mut self, now: Timestamp, contact: ContactId) -> Result<bool, RouterError> {
        self.advance(now);
        let live = self
            .contacts
            .get(&contact)
            .ok_or(RouterError::UnknownContact(contact))?;
        if matches!(live.phase, Phase::Connected { .. } | Phase::Held) {
            return Ok(false);
        }
        let freed = self.unplace(now, contact, WithdrawReason::Unreachable);
        if let Some(live) = self.contacts.get_mut(&contact) {
            live.phase = Phase::Held;
        }
        self.counters.held += 1;
        for agent in freed {
            self.dispatch_agent(now, agent);
        }
        Ok(true)
    }

    /// Puts a held contact back at its place (or to its overflow, if its wait ran out while
    /// it was held). Returns whether it was held.
    pub fn release(&mut self, now: Timestamp, contact: ContactId) -> Result<bool, RouterError> {
        self.advance(now);
        let live = self
            .contacts
            .get(&contact)
            .ok_or(RouterError::UnknownContact(contact))?;
        if !matches!(live.phase, Phase::Held) {
            return Ok(false);
        }
        self.schedule_queue_timers(now, contact);
        self.replace(now, contact);
        Ok(true)
    }

    /// A connected contact whose media never joined the agent (the bridge failed): the agent's
    /// slot is freed (the agent stays available) and the contact goes back to its place.
    pub fn back_to_queue(&mut self, now: Timestamp, contact: ContactId) -> Result<(), RouterError> {
        self.advance(now);
        let live = self
            .contacts
            .get(&contact)
            .ok_or(RouterError::UnknownContact(contact))?;
        let Phase::Connected { agent, .. } = live.phase else {
            return Err(RouterError::WrongPhase {
                contact,
                phase: live.phase.name(),
                expected: "connected",
            });
        };
        let media = live.spec.media;
        if let Some(a) = self.agent_mut_opt(agent) {
            a.connected.retain(|c| *c != contact);
        }
        self.release_slot(agent, contact, media);
        // Relax and tier timers that fell due while it was connected were dropped: re-arm.
        self.schedule_queue_timers(now, contact);
        self.requeue(now, contact);
        self.dispatch_agent(now, agent);
        Ok(())
    }

    /// The agent finished the contact: its slot is free and takes the best waiting contact.
    pub fn complete(&mut self, now: Timestamp, contact: ContactId) -> Result<(), RouterError> {
        self.advance(now);
        let live = self
            .contacts
            .get(&contact)
            .ok_or(RouterError::UnknownContact(contact))?;
        let Phase::Connected { agent, since } = live.phase else {
            return Err(RouterError::WrongPhase {
                contact,
                phase: live.phase.name(),
                expected: "connected",
            });
        };
        let media = live.spec.media;
        let queue = live.spec.queue;
        let customer = live.spec.customer;
        let handled = now.since(since);
        if let Some(a) = self.agent_mut_opt(agent) {
            a.connected.retain(|c| *c != contact);
            let used = a.used.get_mut(media);
            *used = used.saturating_sub(1);
            a.last_end = now;
            a.handled_today += 1;
            a.talk_today += handled;
            a.record_handle_time(media, handled.as_secs_f64());
            let member_index = a
                .member_of
                .iter()
                .find(|(q, _)| *q == queue)
                .map(|(_, i)| *i);
            if let (Some(index), Some(q)) = (
                member_index,
                self.queues.get_mut(queue.index()).and_then(Option::as_mut),
            ) && let Some(Some(member)) = q.members.get_mut(index as usize)
            {
                member.completed += 1;
                member.last_end = now;
            }
            self.refresh_agent(agent);
        }
        if let Some(customer) = customer {
            self.history.record(customer, agent, now);
        }
        self.counters.completed += 1;
        self.end(now, contact, Outcome::Completed, Some(agent));
        self.dispatch_agent(now, agent);
        Ok(())
    }

    /// Changes a contact's priority at once; it keeps its arrival time, so its place among
    /// contacts of the new priority is where its waiting time puts it.
    pub fn set_priority(
        &mut self,
        now: Timestamp,
        contact: ContactId,
        priority: Priority,
    ) -> Result<(), RouterError> {
        self.advance(now);
        let live = self
            .contacts
            .get_mut(&contact)
            .ok_or(RouterError::UnknownContact(contact))?;
        if live.spec.priority == priority {
            return Ok(());
        }
        let bucket = match live.phase {
            Phase::Waiting(bucket) => Some(bucket),
            _ => None,
        };
        let (arrival, old_priority) = (live.spec.arrival, live.spec.priority);
        live.spec.priority = priority;
        if let Some(bucket) = bucket {
            let live = &self.contacts[&contact];
            self.waiting.remove(bucket, arrival, contact);
            let _ = old_priority;
            let new_bucket = self.waiting.insert(
                &BucketClass {
                    queue: live.spec.queue,
                    media: live.spec.media,
                    priority,
                    signature: &live.signature,
                    mask: live.mask,
                },
                arrival,
                contact,
            );
            if let Some(live) = self.contacts.get_mut(&contact) {
                live.phase = Phase::Waiting(new_bucket);
            }
        }
        self.outputs.push_back(Output::PriorityChanged {
            contact,
            priority,
            at: now,
        });
        Ok(())
    }

    /// The caller asked to be called back: the contact becomes a callback and keeps its place
    /// and waiting time.
    pub fn request_callback(
        &mut self,
        now: Timestamp,
        contact: ContactId,
    ) -> Result<(), RouterError> {
        self.advance(now);
        let live = self
            .contacts
            .get(&contact)
            .ok_or(RouterError::UnknownContact(contact))?;
        match live.phase {
            Phase::Waiting(_) | Phase::Targeted(_) => {}
            _ => {
                return Err(RouterError::WrongPhase {
                    contact,
                    phase: live.phase.name(),
                    expected: "waiting",
                });
            }
        }
        if live.spec.media == MediaType::Callback {
            return Ok(());
        }
        self.unplace(now, contact, WithdrawReason::Abandoned);
        if let Some(live) = self.contacts.get_mut(&contact) {
            live.spec.media = MediaType::Callback;
        }
        self.outputs
            .push_back(Output::BecameCallback { contact, at: now });
        self.place(now, contact, true);
        Ok(())
    }

    // ----- time ---------------------------------------------------------------------------------

    /// The next instant at which [`handle_timeout`](Self::handle_timeout) has work.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.timers.next_deadline()
    }

    /// Handles every timer due at `now`, each at its own deadline.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.advance(now);
    }

    /// The next output, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// Every pending output, in order.
    pub fn drain_outputs(&mut self) -> impl Iterator<Item = Output> + '_ {
        self.outputs.drain(..)
    }

    /// What the router has done so far.
    pub fn counters(&self) -> RouterCounters {
        self.counters
    }

    /// Number of live contacts (waiting, offered or connected).
    pub fn live_contacts(&self) -> usize {
        self.contacts.len()
    }

    /// The live contacts' ids, in no particular order.
    pub fn live_contact_ids(&self) -> impl Iterator<Item = ContactId> + '_ {
        self.contacts.keys().copied()
    }

    /// Number of contacts waiting in queues (not offered, not connected).
    pub fn waiting_contacts(&self) -> usize {
        self.waiting.len() + self.targeted
    }

    /// Number of contacts waiting in one queue for one media type (targeted ones excluded).
    pub fn lane_len(&self, queue: QueueId, media: MediaType) -> usize {
        self.waiting.lane_len(queue, media)
    }

    /// The contact's current queue, media type and phase name.
    pub fn contact_status(&self, contact: ContactId) -> Option<(QueueId, MediaType, &'static str)> {
        self.contacts
            .get(&contact)
            .map(|c| (c.spec.queue, c.spec.media, c.phase.name()))
    }

    /// The agents a contact is offered to, or the agent it is connected to.
    pub fn contact_agents(&self, contact: ContactId) -> SmallVec<[AgentId; 2]> {
        match self.contacts.get(&contact).map(|c| &c.phase) {
            Some(Phase::Offered(legs)) => legs.iter().map(|l| l.agent).collect(),
            Some(Phase::Connected { agent, .. }) => smallvec::smallvec![*agent],
            _ => SmallVec::new(),
        }
    }

    fn advance(&mut self, now: Timestamp) {
        self.last_now = self.last_now.max(now);
        while let Some(timer) = self.timers.pop_due(now) {
            self.fire(timer.at, timer.contact, timer.kind);
        }
        // Timers of contacts that moved on stay in the heap; drop them from its head so that
        // `poll_timeout` names a deadline with work, and shed them all when they dominate.
        while let Some(timer) = self.timers.peek() {
            if self.timer_matters(&timer) {
                break;
            }
            self.timers.pop_due(Timestamp::MAX);
        }
        if self.timers.len() > 4 * self.contacts.len() + 4096 {
            let mut timers = std::mem::take(&mut self.timers);
            timers.retain(|t| self.timer_matters(t));
            self.timers = timers;
        }
    }

    fn fire(&mut self, at: Timestamp, contact: ContactId, kind: TimerKind) {
        if kind == TimerKind::GraceOver {
            let queues: Vec<QueueId> = self.queue_ids().collect();
            self.sweep_unservable(at, &queues);
            return;
        }
        let Some(live) = self.contacts.get(&contact) else {
            return;
        };
        match kind {
            TimerKind::Relax => {
                // Tier steps chain: each schedules the next, whatever the contact is doing now.
                self.schedule_tier_step(at, contact);
                match self.contacts.get(&contact).map(|c| c.phase.clone()) {
                    Some(Phase::Waiting(_)) => self.try_serve_waiting(at, contact),
                    Some(Phase::Targeted(agent)) if self.agent_can_take_now(at, agent, contact) => {
                        self.untarget(contact, agent);
                        self.offer(at, contact, &[agent]);
                    }
                    _ => {}
                }
            }
            TimerKind::AffinityEnd => {
                if let Phase::Targeted(agent) = live.phase {
                    self.untarget(contact, agent);
                    self.place(at, contact, false);
                }
            }
            TimerKind::MaxWait(queue) => {
                let due = self
                    .queue(queue)
                    .ok()
                    .and_then(|q| q.spec.max_wait)
                    .is_some_and(|max| live.queue_entered.plus(max) <= at);
                let waiting = matches!(live.phase, Phase::Waiting(_) | Phase::Targeted(_));
                let callback = live.spec.media == MediaType::Callback;
                if live.spec.queue == queue && waiting && due && !callback {
                    self.overflow(at, contact);
                }
            }
            TimerKind::OfferExpiry(agent) => {
                if let Phase::Offered(legs) = &live.phase
                    && legs.iter().any(|l| l.agent == agent && l.expires_at <= at)
                {
                    self.end_leg(at, contact, agent, LegEnd::Missed(MissReason::TimedOut));
                }
            }
            // Handled above, before looking up a contact.
            TimerKind::GraceOver => {}
            TimerKind::RingNext(round) => {
                let Phase::Offered(legs) = &live.phase else {
                    return;
                };
                let Ok(queue) = self.queue(live.spec.queue) else {
                    return;
                };
                // Only the offer that set this step, still in a ring-progressively queue.
                if round != live.offer_round
                    || queue.spec.strategy.behaviour() != Behaviour::RingProgressively
                {
                    return;
                }
                let ringing: SmallVec<[AgentId; 4]> = legs.iter().map(|l| l.agent).collect();
                let delay = queue.spec.ring_progressively_delay;
                if let Some(&next) = self.choose_agents(at, contact, &ringing).first() {
                    self.add_leg(at, contact, next);
                    self.outputs.push_back(Output::OfferExtended {
                        contact,
                        agent: next,
                        expires_at: self.leg_expiry(contact, next),
                        at,
                    });
                }
                self.timers
                    .set(at.plus(delay), contact, TimerKind::RingNext(round));
            }
        }
    }

    /// Whether firing `timer` could still do something.
    fn timer_matters(&self, timer: &super::timers::Timer) -> bool {
        if timer.kind == TimerKind::GraceOver {
            return true;
        }
        let Some(live) = self.contacts.get(&timer.contact) else {
            return false;
        };
        match (timer.kind, &live.phase) {
            (TimerKind::OfferExpiry(agent), Phase::Offered(legs)) => legs
                .iter()
                .any(|l| l.agent == agent && l.expires_at == timer.at),
            (TimerKind::RingNext(round), Phase::Offered(_)) => round == live.offer_round,
            (TimerKind::AffinityEnd, Phase::Targeted(_)) => true,
            (TimerKind::MaxWait(queue), _) => {
                live.spec.queue == queue && live.spec.media != MediaType::Callback
            }
            (TimerKind::Relax, phase) => !matches!(phase, Phase::Connected { .. }),
            _ => false,
        }
    }

    fn leg_expiry(&self, contact: ContactId, agent: AgentId) -> Timestamp {
        match self.contacts.get(&contact).map(|c| &c.phase) {
            Some(Phase::Offered(legs)) => legs
                .iter()
                .find(|l| l.agent == agent)
                .map(|l| l.expires_at)
                .unwrap_or(Timestamp::MAX),
            _ => Timestamp::MAX,
        }
    }

    // ----- placement ----------------------------------------------------------------------------

    /// Puts a contact that is in no index anywhere it belongs: to its previous agent (affinity),
    /// to the best free agent, to its overflow target if nobody could ever serve it, or waiting.
    fn place(&mut self, now: Timestamp, contact: ContactId, allow_affinity: bool) {
        let Some(live) = self.contacts.get(&contact) else {
            return;
        };
        let queue_id = live.spec.queue;
        let media = live.spec.media;
        if allow_affinity && let Some(agent) = self.affinity_target(now, contact) {
            if self.agent_can_take_now(now, agent, contact) {
                self.offer(now, contact, &[agent]);
            } else {
                let Some(live) = self.contacts.get_mut(&contact) else {
                    return;
                };
                live.phase = Phase::Targeted(agent);
                let until = live.spec.arrival.plus(
                    self.queue(queue_id)
                        .map(|q| q.spec.affinity)
                        .unwrap_or_default(),
                );
                if let Some(a) = self.agents.get_mut(agent.index()).and_then(Option::as_mut) {
                    a.targeted.push(contact);
                    self.targeted += 1;
                }
                self.timers.set(until, contact, TimerKind::AffinityEnd);
            }
            return;
        }
        let signature = live.signature.clone();
        let overflow = self
            .queue(queue_id)
            .map(|q| q.spec.overflow)
            .unwrap_or(OverflowTarget::None);
        if overflow != OverflowTarget::None
            && now >= self.grace_until
            && !self.could_ever_serve(queue_id, media, &signature)
        {
            self.overflow(now, contact);
            return;
        }
        let chosen = self.choose_agents(now, contact, &[]);
        if !chosen.is_empty() {
            self.offer(now, contact, &chosen);
            return;
        }
        let Some(live) = self.contacts.get(&contact) else {
            return;
        };
        let bucket = self.waiting.insert(
            &BucketClass {
                queue: queue_id,
                media,
                priority: live.spec.priority,
                signature: &signature,
                mask: live.mask,
            },
            live.spec.arrival,
            contact,
        );
        if let Some(live) = self.contacts.get_mut(&contact) {
            live.phase = Phase::Waiting(bucket);
        }
    }

    /// Takes a contact out of whatever index holds it; withdraws ringing legs with `reason`.
    /// Returns the agents whose slots were freed.
    fn unplace(
        &mut self,
        now: Timestamp,
        contact: ContactId,
        reason: WithdrawReason,
    ) -> SmallVec<[AgentId; 4]> {
        let mut freed = SmallVec::new();
        let Some(live) = self.contacts.get(&contact) else {
            return freed;
        };
        match live.phase.clone() {
            Phase::Waiting(bucket) => {
                self.waiting.remove(bucket, live.spec.arrival, contact);
            }
            Phase::Targeted(agent) => self.untarget(contact, agent),
            Phase::Offered(legs) => {
                let media = live.spec.media;
                for leg in legs {
                    self.release_slot(leg.agent, contact, media);
                    self.outputs.push_back(Output::OfferWithdrawn {
                        contact,
                        agent: leg.agent,
                        reason,
                        at: now,
                    });
                    freed.push(leg.agent);
                }
            }
            Phase::Connected { .. } | Phase::Held | Phase::Detached => {}
        }
        if let Some(live) = self.contacts.get_mut(&contact) {
            live.phase = Phase::Detached;
        }
        freed
    }

    fn untarget(&mut self, contact: ContactId, agent: AgentId) {
        if let Some(a) = self.agents.get_mut(agent.index()).and_then(Option::as_mut) {
            let before = a.targeted.len();
            a.targeted.retain(|c| *c != contact);
            let removed = before - a.targeted.len();
            self.targeted -= removed;
        }
    }

    /// Sends contacts waiting for `agent` by affinity back to the general queue.
    fn release_targets(&mut self, now: Timestamp, agent: AgentId, all: bool) {
        let Some(a) = self.agent_mut_opt(agent) else {
            return;
        };
        if a.targeted.is_empty() {
            return;
        }
        let targeted = std::mem::take(&mut a.targeted);
        self.targeted -= targeted.len();
        let mut keep = Vec::new();
        for contact in targeted {
            let still_fine = !all && self.affinity_target(now, contact) == Some(agent);
            if still_fine {
                keep.push(contact);
            } else {
                if let Some(live) = self.contacts.get_mut(&contact) {
                    live.phase = Phase::Detached;
                }
                self.place(now, contact, false);
            }
        }
        if let Some(a) = self.agents.get_mut(agent.index()).and_then(Option::as_mut) {
            self.targeted += keep.len();
            a.targeted.extend(keep);
        }
    }

    /// A waiting contact whose requirements loosened: serve it if a free agent now matches.
    fn try_serve_waiting(&mut self, now: Timestamp, contact: ContactId) {
        let chosen = self.choose_agents(now, contact, &[]);
        if chosen.is_empty() {
            return;
        }
        if let Some(live) = self.contacts.get(&contact)
            && let Phase::Waiting(bucket) = live.phase
        {
            self.waiting.remove(bucket, live.spec.arrival, contact);
        }
        self.offer(now, contact, &chosen);
    }

    fn schedule_queue_timers(&mut self, now: Timestamp, contact: ContactId) {
        let Some(live) = self.contacts.get(&contact) else {
            return;
        };
        let Some(queue) = self
            .queues
            .get(live.spec.queue.index())
            .and_then(Option::as_ref)
        else {
            return;
        };
        let arrival = live.spec.arrival;
        for step in &queue.spec.relax {
            let at = arrival.plus(step.after);
            if at > now {
                self.timers.set(at, contact, TimerKind::Relax);
            }
        }
        if let (Some(max_wait), true) = (
            queue.spec.max_wait,
            queue.spec.overflow != OverflowTarget::None,
        ) && live.spec.media != MediaType::Callback
        {
            let at = live.queue_entered.plus(max_wait).max(now);
            self.timers
                .set(at, contact, TimerKind::MaxWait(live.spec.queue));
        }
        self.schedule_tier_step(now, contact);
    }

    fn schedule_tier_step(&mut self, now: Timestamp, contact: ContactId) {
        let Some(live) = self.contacts.get(&contact) else {
            return;
        };
        let Some(queue) = self
            .queues
            .get(live.spec.queue.index())
            .and_then(Option::as_ref)
        else {
            return;
        };
        let wait = now.since(live.spec.arrival);
        if let Some(next) = next_tier_step(&queue.spec, wait, queue.max_member_level) {
            self.timers
                .set(live.spec.arrival.plus(next), contact, TimerKind::Relax);
        }
    }

    // ----- offers --------------------------------------------------------------------------------

    fn offer(&mut self, now: Timestamp, contact: ContactId, agents: &[AgentId]) {
        let Some(live) = self.contacts.get(&contact) else {
            return;
        };
        let queue_id = live.spec.queue;
        let Ok(queue) = self.queue(queue_id) else {
            return;
        };
        let timeout = queue.spec.offer_timeout;
        let progressive = queue.spec.strategy.behaviour() == Behaviour::RingProgressively;
        let delay = queue.spec.ring_progressively_delay;
        let mut round = 0;
        if let Some(live) = self.contacts.get_mut(&contact) {
            live.phase = Phase::Offered(SmallVec::new());
            live.offer_round = live.offer_round.wrapping_add(1);
            round = live.offer_round;
        }
        for agent in agents {
            self.add_leg(now, contact, *agent);
        }
        if progressive {
            self.timers
                .set(now.plus(delay), contact, TimerKind::RingNext(round));
        }
        self.counters.offers += 1;
        self.outputs.push_back(Output::Offered {
            contact,
            agents: agents.iter().copied().collect(),
            expires_at: now.plus(timeout),
            at: now,
        });
    }

    fn add_leg(&mut self, now: Timestamp, contact: ContactId, agent: AgentId) {
        let Some(live) = self.contacts.get(&contact) else {
            return;
        };
        let media = live.spec.media;
        let queue_id = live.spec.queue;
        let timeout = self
            .queue(queue_id)
            .map(|q| q.spec.offer_timeout)
            .unwrap_or(Duration::from_secs(20));
        let expires_at = now.plus(timeout);
        if let Some(live) = self.contacts.get_mut(&contact)
            && let Phase::Offered(legs) = &mut live.phase
        {
            legs.push(Leg { agent, expires_at });
        }
        let mut position = None;
        if let Some(a) = self.agent_mut_opt(agent) {
            *a.used.get_mut(media) += 1;
            a.offered.push(contact);
            position = a
                .spec
                .memberships
                .iter()
                .find(|m| m.queue == queue_id)
                .map(|m| m.position);
        }
        if let (Some(position), Some(q)) = (
            position,
            self.queues
                .get_mut(queue_id.index())
                .and_then(Option::as_mut),
        ) {
            q.last_offered_position = Some(position);
        }
        self.refresh_agent(agent);
        self.timers
            .set(expires_at, contact, TimerKind::OfferExpiry(agent));
    }

    fn release_slot(&mut self, agent: AgentId, contact: ContactId, media: MediaType) {
        if let Some(a) = self.agent_mut_opt(agent) {
            a.offered.retain(|c| *c != contact);
            let used = a.used.get_mut(media);
            *used = used.saturating_sub(1);
        }
        self.refresh_agent(agent);
    }

    /// Ends one ringing leg; when it was the last, the contact goes back to its place.
    fn end_leg(&mut self, now: Timestamp, contact: ContactId, agent: AgentId, how: LegEnd) {
        let Some(live) = self.contacts.get_mut(&contact) else {
            return;
        };
        let Phase::Offered(legs) = &mut live.phase else {
            return;
        };
        let Some(pos) = legs.iter().position(|l| l.agent == agent) else {
            return;
        };
        legs.remove(pos);
        let none_left = legs.is_empty();
        let media = live.spec.media;
        self.release_slot(agent, contact, media);
        match how {
            LegEnd::Missed(reason) => {
                if let Some(a) = self.agent_mut_opt(agent) {
                    a.available.remove(media);
                }
                self.refresh_agent(agent);
                self.counters.missed += 1;
                self.outputs.push_back(Output::OfferMissed {
                    contact,
                    agent,
                    media,
                    reason,
                    at: now,
                });
            }
            LegEnd::Withdrawn(reason) => {
                self.outputs.push_back(Output::OfferWithdrawn {
                    contact,
                    agent,
                    reason,
                    at: now,
                });
            }
        }
        if none_left {
            self.requeue(now, contact);
        }
        // The freed slot may unblock other media types the agent is still available for.
        self.dispatch_agent(now, agent);
    }

    /// A contact whose offer ended unanswered: back at its place (or overflow if its wait is up).
    fn requeue(&mut self, now: Timestamp, contact: ContactId) {
        if !self.contacts.contains_key(&contact) {
            return;
        }
        self.outputs
            .push_back(Output::Requeued { contact, at: now });
        self.replace(now, contact);
    }

    /// Places a contact again: to its overflow if its wait is up, else at its place.
    fn replace(&mut self, now: Timestamp, contact: ContactId) {
        let Some(live) = self.contacts.get_mut(&contact) else {
            return;
        };
        live.phase = Phase::Detached;
        let entered = live.queue_entered;
        let queue_id = live.spec.queue;
        let is_callback = live.spec.media == MediaType::Callback;
        let wait_is_up = self.queue(queue_id).ok().is_some_and(|q| {
            q.spec.overflow != OverflowTarget::None
                && !is_callback
                && q.spec.max_wait.is_some_and(|max| entered.plus(max) <= now)
        });
        if wait_is_up {
            self.overflow(now, contact);
        } else {
            self.place(now, contact, true);
        }
    }

    // ----- the two decisions -----------------------------------------------------------------------

    /// Arrival direction: the best free agent slots for a contact (several for ring-all).
    fn choose_agents(
        &mut self,
        now: Timestamp,
        contact: ContactId,
        exclude: &[AgentId],
    ) -> SmallVec<[AgentId; 4]> {
        let mut chosen: SmallVec<[AgentId; 4]> = SmallVec::new();
        let Some(live) = self.contacts.get(&contact) else {
            return chosen;
        };
        let Some(queue) = self
            .queues
            .get(live.spec.queue.index())
            .and_then(Option::as_ref)
        else {
            return chosen;
        };
        let media = live.spec.media;
        let wait = now.since(live.spec.arrival);
        let allowed = allowed_tier(&queue.spec, wait);
        let behaviour = queue.spec.strategy.behaviour();
        let affinity = if queue.spec.affinity.is_zero() {
            None
        } else {
            live.spec
                .customer
                .and_then(|c| self.history.last_agent(c))
                .map(|(a, _)| a)
        };
        let mut best: Option<(RankClass, StrategyKey, AgentId)> = None;
        for &index in queue.free.get(media).as_slice() {
            let Some(member) = queue.member(index) else {
                continue;
            };
            if member.level > allowed || exclude.contains(&member.agent) {
                continue;
            }
            let Some(agent) = self
                .agents
                .get(member.agent.index())
                .and_then(Option::as_ref)
            else {
                continue;
            };
            if live.mask & !agent.key_mask != 0
                || agent.meets(&live.signature, &queue.spec, wait).is_some()
            {
                continue;
            }
            let score = preference_score(agent, &live.preferred, &queue.spec, wait);
            let level = if behaviour == Behaviour::WeightedRandom {
                0
            } else {
                member.level
            };
            let class: RankClass = (affinity != Some(member.agent), Reverse(score), level);
            if behaviour == Behaviour::RingAll {
                match best {
                    Some((best_class, _, _)) if class > best_class => {}
                    Some((best_class, _, _)) if class == best_class => chosen.push(member.agent),
                    _ => {
                        best = Some((class, (0, 0), member.agent));
                        chosen.clear();
                        chosen.push(member.agent);
                    }
                }
                continue;
            }
            let key = strategy_key(behaviour, &mut self.rng, queue, member, agent, live);
            let candidate = (class, key, member.agent);
            if best.is_none_or(|b| candidate < b) {
                best = Some(candidate);
            }
        }
        if behaviour != Behaviour::RingAll {
            if let Some((_, _, agent)) = best {
                chosen.push(agent);
            }
        } else {
            chosen.sort();
        }
        chosen
    }

    /// Freed direction: while the agent has free slots, it takes the best waiting contact it can
    /// serve over all its queues (and contacts waiting for it by affinity).
    fn dispatch_agent(&mut self, now: Timestamp, agent: AgentId) {
        loop {
            let Some(contact) = self.best_contact_for(now, agent) else {
                return;
            };
            if let Some(live) = self.contacts.get(&contact) {
                match live.phase {
                    Phase::Waiting(bucket) => {
                        self.waiting.remove(bucket, live.spec.arrival, contact);
                    }
                    Phase::Targeted(target) => self.untarget(contact, target),
                    _ => return,
                }
            }
            self.offer(now, contact, &[agent]);
        }
    }

    fn best_contact_for(&self, now: Timestamp, agent_id: AgentId) -> Option<ContactId> {
        let agent = self.agents.get(agent_id.index()).and_then(Option::as_ref)?;
        let free = agent.free;
        if free.is_empty() {
            return None;
        }
        let weight_first = self.settings.fairness == Fairness::QueueWeightFirst;
        let mut best: Option<(ClaimKey, ContactId)> = None;
        for &contact in &agent.targeted {
            let Some(live) = self.contacts.get(&contact) else {
                continue;
            };
            if !free.contains(live.spec.media) {
                continue;
            }
            let Some(queue) = self
                .queues
                .get(live.spec.queue.index())
                .and_then(Option::as_ref)
            else {
                continue;
            };
            let Some(member) = agent
                .member_of
                .iter()
                .find(|(q, _)| *q == live.spec.queue)
                .and_then(|(_, i)| queue.member(*i))
            else {
                continue;
            };
            let wait = now.since(live.spec.arrival);
            if member.level <= allowed_tier(&queue.spec, wait)
                && agent.meets(&live.signature, &queue.spec, wait).is_none()
            {
                let key = claim_key(
                    &queue.spec,
                    weight_first,
                    live.spec.priority,
                    live.spec.arrival,
                    contact,
                    now,
                );
                if best.is_none_or(|(b, _)| key < b) {
                    best = Some((key, contact));
                }
            }
        }
        for &(queue_id, index) in &agent.member_of {
            let Some(queue) = self.queues.get(queue_id.index()).and_then(Option::as_ref) else {
                continue;
            };
            let Some(member) = queue.member(index) else {
                continue;
            };
            for media in free.iter() {
                for (_, bucket) in self.waiting.lane(queue_id, media) {
                    let Some((arrival, contact)) = bucket.head() else {
                        continue;
                    };
                    let key = claim_key(
                        &queue.spec,
                        weight_first,
                        bucket.priority,
                        arrival,
                        contact,
                        now,
                    );
                    if best.is_some_and(|(b, _)| key >= b) {
                        break;
                    }
                    if bucket.mask & !agent.key_mask != 0 {
                        continue;
                    }
                    let wait = now.since(arrival);
                    if member.level <= allowed_tier(&queue.spec, wait)
                        && agent.meets(&bucket.signature, &queue.spec, wait).is_none()
                    {
                        best = Some((key, contact));
                        break;
                    }
                }
            }
        }
        best.map(|(_, contact)| contact)
    }

    // ----- overflow and endings -----------------------------------------------------------------

    fn overflow(&mut self, now: Timestamp, contact: ContactId) {
        let Some(live) = self.contacts.get(&contact) else {
            return;
        };
        let from = live.spec.queue;
        let target = self
            .queue(from)
            .map(|q| q.spec.overflow)
            .unwrap_or(OverflowTarget::None);
        if target == OverflowTarget::None {
            return;
        }
        let repeated = live.overflowed_from.contains(&from);
        self.unplace(now, contact, WithdrawReason::Abandoned);
        self.counters.overflowed += 1;
        self.outputs.push_back(Output::Overflowed {
            contact,
            from,
            target,
            at: now,
        });
        if repeated {
            self.end(now, contact, Outcome::Overflowed, None);
            return;
        }
        if let Some(live) = self.contacts.get_mut(&contact) {
            live.overflowed_from.push(from);
        }
        match target {
            OverflowTarget::Queue(to) => {
                let Some(spec) = self.queue(to).ok().map(|q| q.spec.clone()) else {
                    self.end(now, contact, Outcome::Overflowed, None);
                    return;
                };
                if let Some(live) = self.contacts.get_mut(&contact) {
                    live.spec.queue = to;
                    live.queue_entered = now;
                    let (signature, preferred) = split_criteria(&spec, &live.spec.criteria);
                    live.mask = required_mask(&spec, &signature);
                    live.signature = signature;
                    live.preferred = preferred;
                }
                self.schedule_queue_timers(now, contact);
                self.place(now, contact, true);
            }
            OverflowTarget::Callback => {
                if let Some(live) = self.contacts.get_mut(&contact) {
                    live.spec.media = MediaType::Callback;
                }
                self.outputs
                    .push_back(Output::BecameCallback { contact, at: now });
                self.place(now, contact, true);
            }
            OverflowTarget::Voicemail | OverflowTarget::Disconnect | OverflowTarget::None => {
                self.end(now, contact, Outcome::Overflowed, None);
            }
        }
    }

    fn end(
        &mut self,
        now: Timestamp,
        contact: ContactId,
        outcome: Outcome,
        agent: Option<AgentId>,
    ) {
        if self.contacts.remove(&contact).is_some() {
            self.outputs.push_back(Output::Ended {
                contact,
                outcome,
                agent,
                at: now,
            });
        }
    }

    /// After the roster lost capability, contacts nobody logged in could ever serve overflow.
    fn sweep_unservable(&mut self, now: Timestamp, queues: &[QueueId]) {
        if now < self.grace_until {
            return;
        }
        for &queue_id in queues {
            let overflow = self
                .queue(queue_id)
                .map(|q| q.spec.overflow)
                .unwrap_or(OverflowTarget::None);
            if overflow == OverflowTarget::None {
                continue;
            }
            let mut stranded = Vec::new();
            for media in MediaType::ALL {
                let buckets: Vec<(Signature, Vec<ContactId>)> = self
                    .waiting
                    .lane(queue_id, media)
                    .map(|(_, b)| {
                        (
                            b.signature.clone(),
                            b.entries.iter().map(|(_, c)| *c).collect(),
                        )
                    })
                    .collect();
                for (signature, contacts) in buckets {
                    if !self.could_ever_serve(queue_id, media, &signature) {
                        stranded.extend(contacts);
                    }
                }
            }
            for contact in stranded {
                self.overflow(now, contact);
            }
        }
    }

    // ----- roster helpers ------------------------------------------------------------------------

    fn roster_changed(&mut self) {
        self.servable.clear();
    }

    /// Whether any logged-in member of the queue could serve the signature once fully relaxed.
    fn could_ever_serve(
        &mut self,
        queue_id: QueueId,
        media: MediaType,
        signature: &Signature,
    ) -> bool {
        if let Some(known) = self.servable.get(&(queue_id, media, signature.clone())) {
            return *known;
        }
        let Some(queue) = self.queues.get(queue_id.index()).and_then(Option::as_ref) else {
            return false;
        };
        let forever = Duration::from_secs(u64::MAX / 4_000_000);
        let reachable = allowed_tier(&queue.spec, forever);
        let tiers_grow = queue.spec.tier_step.is_some();
        let answer = queue.members().any(|(_, member)| {
            let Some(agent) = self
                .agents
                .get(member.agent.index())
                .and_then(Option::as_ref)
            else {
                return false;
            };
            agent.logged_in
                && *agent.spec.slots.get(media) > 0
                && (tiers_grow || member.level <= reachable)
                && agent.meets(signature, &queue.spec, forever).is_none()
        });
        if self.servable.len() >= SERVABLE_CACHE_LIMIT {
            self.servable.clear();
        }
        self.servable
            .insert((queue_id, media, signature.clone()), answer);
        answer
    }

    /// The agent a returning customer waits for, if the queue has affinity and that agent is
    /// logged in, available for the media type and could serve the contact.
    fn affinity_target(&self, now: Timestamp, contact: ContactId) -> Option<AgentId> {
        let live = self.contacts.get(&contact)?;
        let queue = self
            .queues
            .get(live.spec.queue.index())
            .and_then(Option::as_ref)?;
        if queue.spec.affinity.is_zero() || now.since(live.spec.arrival) >= queue.spec.affinity {
            return None;
        }
        let (agent_id, _) = self.history.last_agent(live.spec.customer?)?;
        let agent = self.agents.get(agent_id.index()).and_then(Option::as_ref)?;
        let media = live.spec.media;
        let is_member = agent.member_of.iter().any(|(q, _)| *q == live.spec.queue);
        let forever = Duration::from_secs(u64::MAX / 4_000_000);
        (is_member
            && agent.logged_in
            && agent.available.contains(media)
            && *agent.spec.slots.get(media) > 0
            && agent.meets(&live.signature, &queue.spec, forever).is_none())
        .then_some(agent_id)
    }

    fn agent_can_take_now(&self, now: Timestamp, agent_id: AgentId, contact: ContactId) -> bool {
        let (Some(live), Some(agent)) = (
            self.contacts.get(&contact),
            self.agents.get(agent_id.index()).and_then(Option::as_ref),
        ) else {
            return false;
        };
        let Some(queue) = self
            .queues
            .get(live.spec.queue.index())
            .and_then(Option::as_ref)
        else {
            return false;
        };
        let Some(member) = agent
            .member_of
            .iter()
            .find(|(q, _)| *q == live.spec.queue)
            .and_then(|(_, i)| queue.member(*i))
        else {
            return false;
        };
        let wait = now.since(live.spec.arrival);
        agent.free.contains(live.spec.media)
            && member.level <= allowed_tier(&queue.spec, wait)
            && agent.meets(&live.signature, &queue.spec, wait).is_none()
    }

    /// Recomputes what the agent is free for and updates the queues' free sets.
    fn refresh_agent(&mut self, agent_id: AgentId) {
        let blocks = self.settings.blocks;
        let Some(agent) = self
            .agents
            .get_mut(agent_id.index())
            .and_then(Option::as_mut)
        else {
            return;
        };
        let old = agent.free;
        let new = agent.compute_free(&blocks);
        if old == new {
            return;
        }
        agent.free = new;
        for &(queue_id, index) in &agent.member_of {
            let Some(queue) = self
                .queues
                .get_mut(queue_id.index())
                .and_then(Option::as_mut)
            else {
                continue;
            };
            for media in MediaType::ALL {
                match (old.contains(media), new.contains(media)) {
                    (false, true) => {
                        queue.free.get_mut(media).insert(index);
                    }
                    (true, false) => {
                        queue.free.get_mut(media).remove(index);
                    }
                    _ => {}
                }
            }
        }
    }

    pub(super) fn queue(&self, id: QueueId) -> Result<&QueueState, RouterError> {
        self.queues
            .get(id.index())
            .and_then(Option::as_ref)
            .ok_or(RouterError::UnknownQueue(id))
    }

    pub(super) fn agent(&self, id: AgentId) -> Result<&AgentState, RouterError> {
        self.agents
            .get(id.index())
            .and_then(Option::as_ref)
            .ok_or(RouterError::UnknownAgent(id))
    }

    fn agent_mut(&mut self, id: AgentId) -> Result<&mut AgentState, RouterError> {
        self.agents
            .get_mut(id.index())
            .and_then(Option::as_mut)
            .ok_or(RouterError::UnknownAgent(id))
    }

    fn agent_mut_opt(&mut self, id: AgentId) -> Option<&mut AgentState> {
        self.agents.get_mut(id.index()).and_then(Option::as_mut)
    }

    /// The settings the router runs with.
    pub fn settings(&self) -> &RouterSettings {
        &self.settings
    }

    /// Ids of every agent.
    pub fn agent_ids(&self) -> impl Iterator<Item = AgentId> + '_ {
        self.agents.iter().flatten().map(|a| a.spec.id)
    }

    /// Ids of every queue.
    pub fn queue_ids(&self) -> impl Iterator<Item = QueueId> + '_ {
        self.queues.iter().flatten().map(|q| q.spec.id)
    }
}

/// How a ringing leg ended.
#[derive(Debug, Clone, Copy)]
enum LegEnd {
    Missed(MissReason),
    Withdrawn(WithdrawReason),
}

/// Splits a contact's criteria (plus the queue's) into the sorted required signature and the
/// preferred list.
pub(super) fn split_criteria(
    queue: &QueueSpec,
    criteria: &[Criterion],
) -> (Signature, SmallVec<[Criterion; 4]>) {
    let mut signature: Signature = queue
        .criteria
        .iter()
        .copied()
        .filter(|c| c.modifier == Modifier::Required)
        .collect();
    let mut preferred = SmallVec::new();
    for criterion in criteria {
        match criterion.modifier {
            Modifier::Required => signature.push(*criterion),
            Modifier::Preferred { .. } => preferred.push(*criterion),
        }
    }
    signature.sort();
    signature.dedup();
    (signature, preferred)
}

/// Sum of the weights of the preferred criteria the agent satisfies after relaxation.
pub(super) fn preference_score(
    agent: &AgentState,
    preferred: &[Criterion],
    queue: &QueueSpec,
    wait: Duration,
) -> u32 {
    let mut score = 0u32;
    for criterion in preferred {
        let Modifier::Preferred { weight } = criterion.modifier else {
            continue;
        };
        let Some(min) = effective_min(queue, criterion, wait) else {
            continue;
        };
        if agent
            .spec
            .level_of(criterion.key)
            .is_some_and(|level| level >= min)
        {
            score = score.saturating_add(weight);
        }
    }
    score
}

fn strategy_key(
    behaviour: Behaviour,
    rng: &mut Xoshiro256PlusPlus,
    queue: &QueueState,
    member: &Member,
    agent: &AgentState,
    live: &Live,
) -> StrategyKey {
    match behaviour {
        Behaviour::RingAll => (0, 0),
        Behaviour::LongestIdle => (biased(agent.last_end), 0),
        Behaviour::LeastRecentInQueue => (biased(member.last_end), 0),
        Behaviour::RoundRobin => {
            let start = queue.last_offered_position.map_or(0, |p| p.wrapping_add(1));
            (u64::from(member.position.wrapping_sub(start)), 0)
        }
        Behaviour::InOrder | Behaviour::RingProgressively => (u64::from(member.position), 0),
        Behaviour::LeastTalkTime => (agent.talk_today.as_micros() as u64, 0),
        Behaviour::FewestCalls => (u64::from(agent.handled_today), 0),
        Behaviour::FewestCallsInQueue => (u64::from(member.completed), 0),
        Behaviour::Random => (rng.next_u64(), 0),
        // app_queue's wrandom: metric = random % ((1 + penalty) * 1000), lowest wins.
        Behaviour::WeightedRandom => (rng.next_u64() % ((1 + u64::from(member.level)) * 1000), 0),
        Behaviour::BestSkill => {
            let total: u64 = live
                .signature
                .iter()
                .chain(live.preferred.iter())
                .map(|c| agent.spec.level_of(c.key).map_or(0, |l| u64::from(l.get())))
                .sum();
            (u64::MAX - total, biased(agent.last_end))
        }
    }
}

/// The claim a waiting contact has on a free agent, comparable across queues.
fn claim_key(
    queue: &QueueSpec,
    weight_first: bool,
    priority: Priority,
    arrival: Timestamp,
    contact: ContactId,
    now: Timestamp,
) -> ClaimKey {
    // Scaled by the factor in thousandths; comparisons need no division.
    let waited = i128::from(now.0.saturating_sub(arrival.0));
    let effective = waited * i128::from(queue.wait_factor_permille);
    let weight = if weight_first { queue.weight } else { 0 };
    (
        Reverse(weight),
        Reverse(priority),
        Reverse(effective),
        contact,
    )
}
