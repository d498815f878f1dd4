//! The event loop: simulated time in µs since 00:00, one heap of events (arrivals, answers,
//! ends of handling and after-call work, patience, shifts, agents ready again) merged with the
//! router's own deadlines. Every router call is timed with the wall clock and followed by a
//! drain of the router's outputs, which schedule what happens next.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, Exp1};
use smallvec::SmallVec;

use crate::model::{AgentId, ContactId, MediaType, Outcome, Priority, Timestamp};
use crate::routing::{ContactSpec, Output, OverflowTarget, Router, RouterError};

use super::RunOptions;
use super::error::SimError;
use super::metrics::{AgentTime, Call, Latency, Tally};
use super::progress::Progress;
use super::rng::derive_seed;
use super::scenario::{Patience, Scenario};

/// Something that happens at an instant of the simulated day.
#[derive(Debug, Clone, Copy)]
enum Event {
    /// The next contact of a stream arrives.
    Arrival { stream: u32 },
    /// An agent answers an offer (`offer` tells this ringing from earlier ones).
    Answer {
        contact: ContactId,
        agent: AgentId,
        offer: u64,
    },
    /// The customer and the agent are done.
    HandleDone { contact: ContactId },
    /// An agent finished after-call work.
    AcwDone { agent: AgentId },
    /// A customer's patience runs out.
    Patience { contact: ContactId },
    /// An agent's shift starts.
    ShiftStart { agent: AgentId },
    /// An agent's shift ends.
    ShiftEnd { agent: AgentId },
    /// An agent who missed an offer may be ready again for the media type.
    ReadyAgain { agent: AgentId, media: MediaType },
}

/// An event in the heap, ordered by time, then by scheduling order (ties are deterministic).
#[derive(Debug)]
struct Scheduled {
    at: Timestamp,
    seq: u64,
    event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// Where a contact is, as the simulator follows it from the router's outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Waiting,
    Ringing,
    Connected,
    Done,
}

/// A contact the simulator made.
#[derive(Debug, Clone)]
struct ContactRec {
    /// Index of the queue it arrived in (its figures count there).
    queue: u32,
    arrival: Timestamp,
    media: MediaType,
    handle: Duration,
    wants_callback: bool,
    callback: bool,
    phase: Phase,
    agent: Option<AgentId>,
}

/// One agent: its time, and the offers ringing it.
#[derive(Debug)]
struct AgentRec {
    group: usize,
    time: AgentTime,
    ringing: SmallVec<[(ContactId, u64); 4]>,
}

/// A run in progress.
pub(super) struct Engine<'s> {
    scenario: &'s Scenario,
    router: Router,
    now: Timestamp,
    heap: BinaryHeap<Reverse<Scheduled>>,
    seq: u64,
    stream_rngs: Vec<Xoshiro256PlusPlus>,
    behaviour_rng: Xoshiro256PlusPlus,
    contacts: Vec<ContactRec>,
    agents: Vec<AgentRec>,
    pub(super) tallies: Vec<Tally>,
    pub(super) latency: Latency,
    outbox: Vec<Output>,
    offers: u64,
    pub(super) offers_missed: u64,
    pub(super) events: u64,
    progress: Progress,
    /// Tests: check the router's invariants after every call (slow).
    #[cfg(test)]
    check_invariants: bool,
}

impl<'s> Engine<'s> {
    /// A router loaded with the scenario's queues and agents (all logged out), and the first
    /// events of the day scheduled.
    pub(super) fn new(scenario: &'s Scenario, options: &RunOptions) -> Result<Self, SimError> {
        let seed = options.seed.unwrap_or(scenario.seed);
        let mut settings = scenario.settings.clone();
        settings.seed = derive_seed(seed, settings.seed ^ 0x0A0B_0C0D);
        let mut router = Router::new(settings);
        let open = scenario.open;
        let router_error = |call, source| SimError::Router {
            call,
            at: open,
            source,
        };
        for queue in &scenario.queues {
            router
                .add_queue(queue.spec.clone())
                .map_err(|e| router_error("add_queue", e))?;
        }
        for agent in &scenario.agents {
            router
                .add_agent(open, agent.spec.clone())
                .map_err(|e| router_error("add_agent", e))?;
        }
        router.drain_outputs().for_each(drop);
        let stream_rngs = (0..scenario.streams.len())
            .map(|i| Xoshiro256PlusPlus::seed_from_u64(derive_seed(seed, 1_000 + i as u64)))
            .collect();
        let mut engine = Engine {
            scenario,
            router,
            now: open,
            heap: BinaryHeap::new(),
            seq: 0,
            stream_rngs,
            behaviour_rng: Xoshiro256PlusPlus::seed_from_u64(derive_seed(seed, 2)),
            contacts: Vec::new(),
            agents: scenario
                .agents
                .iter()
                .map(|a| AgentRec {
                    group: a.group,
                    time: AgentTime::new(open),
                    ringing: SmallVec::new(),
                })
                .collect(),
            tallies: vec![Tally::default(); scenario.queues.len()],
            latency: Latency::default(),
            outbox: Vec::new(),
            offers: 0,
            offers_missed: 0,
            events: 0,
            progress: Progress::new(options.progress, open, scenario.close),
            #[cfg(test)]
            check_invariants: false,
        };
        // Shifts first: agents whose shift starts at opening are in before the first contact.
        for (i, agent) in scenario.agents.iter().enumerate() {
            let id = AgentId(i as u32);
            if agent.shift_start < agent.shift_end {
                engine.schedule(agent.shift_start, Event::ShiftStart { agent: id });
                engine.schedule(agent.shift_end, Event::ShiftEnd { agent: id });
            }
        }
        for stream in 0..scenario.streams.len() {
            engine.schedule_arrival(stream as u32, open);
        }
        Ok(engine)
    }

    /// Runs the day to closing time.
    pub(super) fn run(&mut self) -> Result<(), SimError> {
        let close = self.scenario.close;
        loop {
            let event_at = self.heap.peek().map(|Reverse(s)| s.at);
            let timer_at = self.router.poll_timeout();
            let (at, is_timer) = match (event_at, timer_at) {
                (None, None) => break,
                (Some(e), Some(t)) if t <= e => (t, true),
                (None, Some(t)) => (t, true),
                (Some(e), _) => (e, false),
            };
            if at >= close {
                break;
            }
            self.now = at.max(self.now);
            if is_timer {
                self.call(Call::Timeout, None, |r, now| {
                    r.handle_timeout(now);
                    Ok(())
                })?;
            } else if let Some(Reverse(scheduled)) = self.heap.pop() {
                self.handle(scheduled.event)?;
            }
            self.events += 1;
            if self.events.is_multiple_of(4096) {
                self.progress.tick(self.now);
            }
        }
        self.finish(close);
        self.progress.finish();
        Ok(())
    }

    fn schedule(&mut self, at: Timestamp, event: Event) {
        self.seq += 1;
        self.heap.push(Reverse(Scheduled {
            at,
            seq: self.seq,
            event,
        }));
    }

    /// Schedules the next arrival of a stream after `from`: a Poisson process at the peak rate,
    /// thinned to the profile's rate at each instant (Lewis and Shedler).
    fn schedule_arrival(&mut self, stream: u32, from: Timestamp) {
        let plan = &self.scenario.streams[stream as usize];
        let peak = plan.profile.max();
        let rate = plan.per_second * peak;
        if rate <= 0.0 {
            return;
        }
        let rng = &mut self.stream_rngs[stream as usize];
        let close = self.scenario.close.0 as f64 / 1e6;
        let mut t = from.0 as f64 / 1e6;
        loop {
            let gap: f64 = Exp1.sample(rng);
            t += gap / rate;
            if t >= close {
                return;
            }
            if rng.random::<f64>() * peak < plan.profile.at(t / 3600.0) {
                break;
            }
        }
        let at = Timestamp((t * 1e6) as i64).max(Timestamp(from.0 + 1));
        self.schedule(at, Event::Arrival { stream });
    }

    /// Calls the router, timing the call, then reacts to what it output.
    fn call(
        &mut self,
        call: Call,
        queue: Option<usize>,
        f: impl FnOnce(&mut Router, Timestamp) -> Result<(), RouterError>,
    ) -> Result<(), SimError> {
        let start = Instant::now();
        let result = f(&mut self.router, self.now);
        let nanos = u32::try_from(start.elapsed().as_nanos()).unwrap_or(u32::MAX);
        self.latency.record(call, nanos);
        if let Some(queue) = queue {
            self.tallies[queue].arrive_ns.push(nanos);
        }
        result.map_err(|source| SimError::Router {
            call: call.name(),
            at: self.now,
            source,
        })?;
        #[cfg(test)]
        if self.check_invariants
            && let Err(violation) = self.router.check_invariants(self.now)
        {
            panic!("after {} at {}: {violation}", call.name(), self.now);
        }
        let mut outbox = std::mem::take(&mut self.outbox);
        outbox.extend(self.router.drain_outputs());
        for output in outbox.drain(..) {
            self.on_output(output);
        }
        self.outbox = outbox;
        Ok(())
    }

    fn handle(&mut self, event: Event) -> Result<(), SimError> {
        match event {
            Event::Arrival { stream } => self.arrive(stream),
            Event::Answer {
                contact,
                agent,
                offer,
            } => {
                let ringing = &self.agents[agent.index()].ringing;
                if !ringing.contains(&(contact, offer)) {
                    return Ok(()); // withdrawn, timed out or abandoned meanwhile
                }
                self.call(Call::Accept, None, |r, now| r.accept(now, contact, agent))
            }
            Event::HandleDone { contact } => self.handle_done(contact),
            Event::AcwDone { agent } => {
                let now = self.now;
                let a = &mut self.agents[agent.index()];
                a.time.flush(now);
                a.time.acw -= 1;
                if a.time.acw == 0 && a.time.logged_in {
                    self.make_ready(agent)?;
                }
                Ok(())
            }
            Event::Patience { contact } => {
                let rec = &self.contacts[contact_index(contact)];
                if rec.callback || !matches!(rec.phase, Phase::Waiting | Phase::Ringing) {
                    return Ok(());
                }
                if rec.phase == Phase::Waiting && rec.wants_callback {
                    self.call(Call::Callback, None, |r, now| {
                        r.request_callback(now, contact)
                    })
                } else {
                    self.call(Call::Abandon, None, |r, now| r.abandon(now, contact))
                }
            }
            Event::ShiftStart { agent } => {
                let now = self.now;
                let a = &mut self.agents[agent.index()];
                a.time.flush(now);
                a.time.logged_in = true;
                a.time.not_ready_until = Default::default();
                self.call(Call::LogIn, None, |r, now| r.log_in(now, agent))
            }
            Event::ShiftEnd { agent } => {
                let now = self.now;
                let a = &mut self.agents[agent.index()];
                a.time.flush(now);
                a.time.logged_in = false;
                self.call(Call::LogOut, None, |r, now| r.log_out(now, agent))
            }
            Event::ReadyAgain { agent, media } => {
                let a = &self.agents[agent.index()].time;
                if self.now < *a.not_ready_until.get(media) || !a.logged_in || a.acw > 0 {
                    return Ok(()); // missed again since, logged out, or after-call work will do it
                }
                self.call(Call::Available, None, |r, now| {
                    r.set_available(now, agent, Some(media), true)
                })
            }
        }
    }

    /// A new contact: its needs are drawn from its stream's generator, so the same customers
    /// arrive whatever the staffing.
    fn arrive(&mut self, stream: u32) -> Result<(), SimError> {
        let plan = &self.scenario.streams[stream as usize];
        let queue = &self.scenario.queues[plan.queue.index()];
        let rng = &mut self.stream_rngs[stream as usize];
        let mut criteria = Vec::new();
        for attribute in &queue.attributes {
            let draw: f64 = rng.random();
            if let Some((_, resolved)) = attribute.values.iter().find(|(p, _)| draw < *p) {
                criteria.extend_from_slice(resolved);
            }
        }
        let handle = Duration::from_secs_f64(plan.handle.sample(rng).clamp(0.001, 1e7));
        let patience = plan.patience.as_ref().map(|p| {
            let seconds = match p {
                Patience::Exponential(d) => d.sample(rng),
                Patience::Lognormal(d) => d.sample(rng),
            };
            Duration::from_secs_f64(seconds.clamp(0.0, 1e7))
        });
        let wants_callback = rng.random::<f64>() < plan.callback_share;
        let id = ContactId(self.contacts.len() as u64 + 1);
        let queue_index = plan.queue.index();
        self.contacts.push(ContactRec {
            queue: queue_index as u32,
            arrival: self.now,
            media: plan.media,
            handle,
            wants_callback,
            callback: false,
            phase: Phase::Waiting,
            agent: None,
        });
        self.tallies[queue_index].offered += 1;
        let spec = ContactSpec {
            id,
            tenant: queue.spec.tenant,
            queue: plan.queue,
            media: plan.media,
            priority: Priority::default(),
            arrival: self.now,
            customer: None,
            criteria,
        };
        if let Some(patience) = patience {
            self.schedule(self.now.plus(patience), Event::Patience { contact: id });
        }
        self.schedule_arrival(stream, self.now);
        self.call(Call::Arrive, Some(queue_index), |r, now| {
            r.arrive(now, spec)
        })
    }

    /// Handling ends: after-call work (if any) starts before the slot is freed, so that the
    /// router offers the agent nothing new until it ends.
    fn handle_done(&mut self, contact: ContactId) -> Result<(), SimError> {
        let now = self.now;
        let rec = &self.contacts[contact_index(contact)];
        let Some(agent) = rec.agent else {
            return Ok(());
        };
        let (queue, media, handle) = (rec.queue, rec.media, rec.handle);
        let a = &mut self.agents[agent.index()];
        let group = &self.scenario.groups[a.group];
        let acw = *group.after_call_work.get(media);
        a.time.flush(now);
        a.time.connected -= 1;
        a.time.add_work(queue, handle + acw);
        let tally = &mut self.tallies[queue as usize];
        tally.completed += 1;
        tally.work_us += (handle + acw).as_micros() as i128;
        if !acw.is_zero() {
            a.time.acw += 1;
            let first = a.time.acw == 1 && a.time.logged_in;
            self.schedule(now.plus(acw), Event::AcwDone { agent });
            if first {
                self.call(Call::Available, None, |r, now| {
                    r.set_available(now, agent, None, false)
                })?;
            }
        }
        self.call(Call::Complete, None, |r, now| r.complete(now, contact))
    }

    /// After-call work is over: available again for every media type not in a not-ready pause.
    fn make_ready(&mut self, agent: AgentId) -> Result<(), SimError> {
        let now = self.now;
        let paused: SmallVec<[MediaType; 7]> = MediaType::ALL
            .into_iter()
            .filter(|m| now < *self.agents[agent.index()].time.not_ready_until.get(*m))
            .collect();
        if paused.is_empty() {
            return self.call(Call::Available, None, |r, now| {
                r.set_available(now, agent, None, true)
            });
        }
        let slots = self.scenario.agents[agent.index()].spec.slots;
        for media in MediaType::ALL {
            if *slots.get(media) > 0 && !paused.contains(&media) {
                self.call(Call::Available, None, |r, now| {
                    r.set_available(now, agent, Some(media), true)
                })?;
            }
        }
        Ok(())
    }

    /// Rings an agent: it answers after its delay, unless it lets this offer ring out.
    fn ring(&mut self, contact: ContactId, agent: AgentId) {
        self.offers += 1;
        let offer = self.offers;
        let a = &mut self.agents[agent.index()];
        a.ringing.push((contact, offer));
        let group = &self.scenario.groups[a.group];
        let misses = group.miss_probability > 0.0
            && self.behaviour_rng.random::<f64>() < group.miss_probability;
        if !misses {
            let at = self.now.plus(group.answer_delay);
            self.schedule(
                at,
                Event::Answer {
                    contact,
                    agent,
                    offer,
                },
            );
        }
    }

    fn on_output(&mut self, output: Output) {
        let now = self.now;
        match output {
            Output::Queued { .. } | Output::PriorityChanged { .. } => {}
            Output::Offered {
                contact, agents, ..
            } => {
                self.contacts[contact_index(contact)].phase = Phase::Ringing;
                for agent in agents {
                    self.ring(contact, agent);
                }
            }
            Output::OfferExtended { contact, agent, .. } => self.ring(contact, agent),
            Output::OfferWithdrawn { contact, agent, .. } => {
                self.agents[agent.index()]
                    .ringing
                    .retain(|(c, _)| *c != contact);
            }
            Output::OfferMissed {
                contact,
                agent,
                media,
                ..
            } => {
                self.offers_missed += 1;
                let a = &mut self.agents[agent.index()];
                a.ringing.retain(|(c, _)| *c != contact);
                let until = now.plus(self.scenario.groups[a.group].not_ready);
                let slot = a.time.not_ready_until.get_mut(media);
                *slot = (*slot).max(until);
                self.schedule(until, Event::ReadyAgain { agent, media });
            }
            Output::Requeued { contact, .. } => {
                self.contacts[contact_index(contact)].phase = Phase::Waiting;
            }
            Output::Connected { contact, agent, .. } => {
                let rec = &mut self.contacts[contact_index(contact)];
                rec.phase = Phase::Connected;
                rec.agent = Some(agent);
                let wait = now.since(rec.arrival);
                let (queue, handle) = (rec.queue as usize, rec.handle);
                let target = self.scenario.queues[queue].spec.service_level;
                let tally = &mut self.tallies[queue];
                tally.handled += 1;
                tally.wait_answered_us += wait.as_micros() as i128;
                if wait <= target {
                    tally.answered_in_target += 1;
                }
                tally.saw_wait(wait);
                let a = &mut self.agents[agent.index()];
                a.ringing.retain(|(c, _)| *c != contact);
                a.time.flush(now);
                a.time.connected += 1;
                a.time.handled += 1;
                self.schedule(now.plus(handle), Event::HandleDone { contact });
            }
            Output::Overflowed {
                contact, target, ..
            } => {
                let rec = &mut self.contacts[contact_index(contact)];
                rec.phase = Phase::Waiting;
                if let OverflowTarget::Queue(_) = target {
                    self.tallies[rec.queue as usize].rerouted += 1;
                }
            }
            Output::BecameCallback { contact, .. } => {
                let rec = &mut self.contacts[contact_index(contact)];
                rec.phase = Phase::Waiting;
                rec.callback = true;
                rec.media = MediaType::Callback;
                self.tallies[rec.queue as usize].callbacks += 1;
            }
            Output::Ended {
                contact, outcome, ..
            } => {
                let rec = &mut self.contacts[contact_index(contact)];
                let was_connected = rec.phase == Phase::Connected;
                rec.phase = Phase::Done;
                let wait = now.since(rec.arrival);
                let tally = &mut self.tallies[rec.queue as usize];
                match outcome {
                    Outcome::Completed => debug_assert!(was_connected),
                    Outcome::Abandoned => {
                        tally.abandoned += 1;
                        tally.saw_wait(wait);
                    }
                    Outcome::Overflowed => {
                        tally.overflowed += 1;
                        tally.saw_wait(wait);
                    }
                }
            }
        }
    }

    /// Closing time: contacts still in the router are counted, agents' time is closed.
    fn finish(&mut self, close: Timestamp) {
        self.now = close;
        for rec in &self.contacts {
            let tally = &mut self.tallies[rec.queue as usize];
            match rec.phase {
                Phase::Waiting | Phase::Ringing => {
                    tally.waiting_at_end += 1;
                    tally.saw_wait(close.since(rec.arrival));
                }
                Phase::Connected => tally.in_service_at_end += 1,
                Phase::Done => {}
            }
        }
        for agent in &mut self.agents {
            agent.time.flush(close);
        }
    }

    /// Each agent's group and time, for the report.
    pub(super) fn agent_times(&self) -> impl Iterator<Item = (usize, &AgentTime)> {
        self.agents.iter().map(|a| (a.group, &a.time))
    }
}

/// Contacts are numbered from 1 in order of arrival.
#[inline]
fn contact_index(contact: ContactId) -> usize {
    (contact.0 - 1) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a shipped scenario (its first `hours`) with the router's invariants checked after
    /// every call, and the simulator's own view checked against the router's at closing.
    fn checked(file: &str, hours: f64) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples")
            .join(file);
        check(&Scenario::load(&path).unwrap().first_hours(hours), file);
    }

    fn check(scenario: &Scenario, file: &str) {
        let scenario = scenario.clone();
        let options = RunOptions::default();
        let mut engine = Engine::new(&scenario, &options).unwrap();
        engine.check_invariants = true;
        engine.run().unwrap();
        let live = engine
            .contacts
            .iter()
            .filter(|c| c.phase != Phase::Done)
            .count();
        assert_eq!(live, engine.router.live_contacts(), "{file}");
        for (i, rec) in engine.contacts.iter().enumerate() {
            let id = ContactId(i as u64 + 1);
            let agents = engine.router.contact_agents(id);
            match rec.phase {
                Phase::Connected => assert_eq!(agents.as_slice(), &[rec.agent.unwrap()]),
                Phase::Ringing => assert!(!agents.is_empty(), "{id} should ring someone"),
                Phase::Waiting | Phase::Done => assert!(agents.is_empty(), "{id}: {agents:?}"),
            }
        }
    }

    #[test]
    fn the_router_keeps_its_invariants_through_a_small_day() {
        checked("small-inbound.toml", 12.0);
    }

    #[test]
    fn the_router_keeps_its_invariants_through_a_blended_morning() {
        checked("blended.toml", 5.0);
    }

    #[test]
    fn the_router_keeps_its_invariants_in_a_large_center() {
        checked("large-2000-agents.toml", 0.05);
    }

    /// Every strategy, tiers that widen with waiting, overflow into another queue and into
    /// callbacks, agents that miss offers and log out with contacts waiting.
    const STRATEGIES: &str = r#"
seed = 11
hours = "09:00-11:00"

[[queues]]
name = "ring-all"
strategy = "ring-all"
offer_timeout_s = 8
max_wait_s = 90
overflow = { queue = "progressive" }
[[queues.arrivals]]
per_hour = 90
handle = { mean_s = 120, sd_s = 60 }
patience = { mean_s = 120 }

[[queues]]
name = "progressive"
strategy = "ring-progressively"
ring_progressively_delay_s = 2
offer_timeout_s = 6
max_wait_s = 60
overflow = "callback"
[[queues.arrivals]]
per_hour = 60
handle = { mean_s = 120 }
patience = { mean_s = 200 }
callback_share = 0.5

[[queues]]
name = "tiers"
strategy = "random"
tier_rules = { wait_per_level_s = 15 }
[[queues.arrivals]]
per_hour = 60
handle = { mean_s = 150 }
patience = { mean_s = 100, distribution = "lognormal", sd_s = 50 }

[[queues]]
name = "chat"
strategy = "agent-with-fewest-calls"
[[queues.arrivals]]
media = "chat"
per_hour = 80
handle = { mean_s = 300 }
patience = { mean_s = 150 }

[[agent_groups]]
name = "a"
count = 6
slots = { voice = 1, callback = 1, chat = 2 }
queues = ["ring-all", "progressive", { queue = "tiers", level = 1 }, "chat"]
shifts = ["09:00-10:00", "09:00-11:00", "09:30-10:30"]
answer_delay_s = 5
after_call_work_s = { voice = 10, chat = 5 }
miss_probability = 0.2
not_ready_s = 10

[[agent_groups]]
name = "b"
count = 4
slots = { voice = 1, chat = 3 }
queues = [{ queue = "tiers", level = 3 }, "chat", "ring-all"]
answer_delay_s = 1
miss_probability = 0.1
"#;

    #[test]
    fn the_router_keeps_its_invariants_with_every_kind_of_queue() {
        check(
            &Scenario::from_str(STRATEGIES, "strategies").unwrap(),
            "strategies",
        );
        for seed in 1..4 {
            let scenario = Scenario::from_str(STRATEGIES, "strategies").unwrap();
            let mut engine = Engine::new(
                &scenario,
                &RunOptions {
                    progress: false,
                    seed: Some(seed),
                },
            )
            .unwrap();
            engine.check_invariants = true;
            engine.run().unwrap();
        }
    }
}
