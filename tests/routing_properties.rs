//! The router never panics on any sequence of calls, and after every step: no slot holds two
//! contacts, no contact is offered to two agents at once (ring-all aside, where exactly one
//! wins), every contact ends exactly once, and no contact waits while a free slot that matches
//! it exists (`Router::check_invariants` checks the state from scratch).

use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use switchboard::model::{
    AgentId, ContactId, CustomerId, Level, MediaType, Priority, QueueId, SkillId, TagId, TenantId,
    Timestamp,
};
use switchboard::routing::spec::{RelaxAction, RelaxStep};
use switchboard::routing::{
    AgentSpec, ContactSpec, Criterion, Fairness, Membership, Modifier, Output, OverflowTarget,
    QueueSpec, Router, RouterSettings, Strategy as Routing,
};

const TENANT: TenantId = TenantId(0);
const QUEUES: u32 = 3;
const AGENTS: u32 = 6;
const KEYS: u32 = 4;

#[derive(Debug, Clone)]
struct QueuePlan {
    strategy: Routing,
    offer_timeout_s: u64,
    max_wait_s: Option<u64>,
    overflow: u8,
    affinity_s: u64,
    relax: Vec<(u64, u32, Option<i64>)>,
    tiers: Option<(u32, u64)>,
}

#[derive(Debug, Clone)]
struct AgentPlan {
    skills: Vec<(u32, i64)>,
    chat_slots: u8,
    callback_slots: u8,
    memberships: Vec<(u32, u32)>,
}

#[derive(Debug, Clone)]
enum Op {
    Arrive {
        queue: u32,
        media: u8,
        priority: i32,
        criteria: Vec<(u32, i64, bool)>,
        customer: Option<u64>,
    },
    Accept {
        pick: usize,
    },
    Reject {
        pick: usize,
    },
    LateAccept {
        pick: usize,
        agent: u32,
    },
    Abandon {
        pick: usize,
    },
    Complete {
        pick: usize,
    },
    BackToQueue {
        pick: usize,
    },
    /// Its switch went down.
    Hold {
        pick: usize,
    },
    /// Its switch came back.
    Release {
        pick: usize,
    },
    /// An administrator gives a queue new rules.
    UpdateQueue {
        queue: u32,
        plan: QueuePlan,
    },
    SetAvailable {
        agent: u32,
        media: Option<u8>,
        available: bool,
    },
    LogIn {
        agent: u32,
    },
    LogOut {
        agent: u32,
    },
    SetPriority {
        pick: usize,
        priority: i32,
    },
    Callback {
        pick: usize,
    },
    SetSkills {
        agent: u32,
        skills: Vec<(u32, i64)>,
    },
    Wait {
        secs: u64,
    },
}

fn strategy() -> impl proptest::strategy::Strategy<Value = Routing> {
    proptest::sample::select(Routing::ALL.to_vec())
}

fn queue_plan() -> impl proptest::strategy::Strategy<Value = QueuePlan> {
    (
        strategy(),
        5u64..60,
        proptest::option::of(10u64..200),
        0u8..5,
        prop_oneof![Just(0u64), 5u64..60],
        proptest::collection::vec((0u64..120, 0..KEYS, proptest::option::of(1i64..=10)), 0..3),
        proptest::option::of((0u32..2, 5u64..40)),
    )
        .prop_map(
            |(strategy, offer_timeout_s, max_wait_s, overflow, affinity_s, relax, tiers)| {
                QueuePlan {
                    strategy,
                    offer_timeout_s,
                    max_wait_s,
                    overflow,
                    affinity_s,
                    relax,
                    tiers,
                }
            },
        )
}

fn agent_plan() -> impl proptest::strategy::Strategy<Value = AgentPlan> {
    (
        proptest::collection::vec((0..KEYS, 1i64..=10), 0..4),
        0u8..3,
        0u8..2,
        proptest::collection::vec((0..QUEUES, 0u32..3), 1..3),
    )
        .prop_map(
            |(skills, chat_slots, callback_slots, memberships)| AgentPlan {
                skills,
                chat_slots,
                callback_slots,
                memberships,
            },
        )
}

fn op() -> impl proptest::strategy::Strategy<Value = Op> {
    prop_oneof![
        6 => (0..QUEUES, 0u8..3, 0i32..3, proptest::collection::vec((0..KEYS, 1i64..=10, any::<bool>()), 0..3), proptest::option::of(0u64..4))
            .prop_map(|(queue, media, priority, criteria, customer)| Op::Arrive { queue, media, priority, criteria, customer }),
        4 => any::<usize>().prop_map(|pick| Op::Accept { pick }),
        2 => any::<usize>().prop_map(|pick| Op::Reject { pick }),
        1 => (any::<usize>(), 0..AGENTS).prop_map(|(pick, agent)| Op::LateAccept { pick, agent }),
        2 => any::<usize>().prop_map(|pick| Op::Abandon { pick }),
        4 => any::<usize>().prop_map(|pick| Op::Complete { pick }),
        1 => any::<usize>().prop_map(|pick| Op::BackToQueue { pick }),
        1 => any::<usize>().prop_map(|pick| Op::Hold { pick }),
        2 => any::<usize>().prop_map(|pick| Op::Release { pick }),
        1 => (0..QUEUES, queue_plan()).prop_map(|(queue, plan)| Op::UpdateQueue { queue, plan }),
        2 => (0..AGENTS, proptest::option::of(0u8..3), any::<bool>()).prop_map(|(agent, media, available)| Op::SetAvailable { agent, media, available }),
        1 => (0..AGENTS).prop_map(|agent| Op::LogIn { agent }),
        1 => (0..AGENTS).prop_map(|agent| Op::LogOut { agent }),
        1 => (any::<usize>(), 0i32..4).prop_map(|(pick, priority)| Op::SetPriority { pick, priority }),
        1 => any::<usize>().prop_map(|pick| Op::Callback { pick }),
        1 => (0..AGENTS, proptest::collection::vec((0..KEYS, 1i64..=10), 0..4)).prop_map(|(agent, skills)| Op::SetSkills { agent, skills }),
        4 => (0u64..90).prop_map(|secs| Op::Wait { secs }),
    ]
}

fn level(n: i64) -> Level {
    Level::new(n).expect("generated levels are 1..=10")
}

fn media(code: u8) -> MediaType {
    [MediaType::Voice, MediaType::Chat, MediaType::Callback][code as usize % 3]
}

/// Queue `i`'s rules as `plan` says.
fn queue_spec(i: usize, plan: &QueuePlan) -> QueueSpec {
    let mut q = QueueSpec::new(QueueId(i as u32), TENANT);
    q.strategy = plan.strategy;
    q.offer_timeout = Duration::from_secs(plan.offer_timeout_s);
    q.max_wait = plan.max_wait_s.map(Duration::from_secs);
    q.weight = i as u32;
    q.wait_factor_permille = 500 + 500 * i as u32;
    q.overflow = match plan.overflow {
        0 => OverflowTarget::None,
        1 => OverflowTarget::Voicemail,
        2 => OverflowTarget::Callback,
        3 => OverflowTarget::Queue(QueueId((i as u32 + 1) % QUEUES)),
        _ => OverflowTarget::Disconnect,
    };
    q.affinity = Duration::from_secs(plan.affinity_s);
    q.ring_progressively_delay = Duration::from_secs(3);
    q.relax = plan
        .relax
        .iter()
        .map(|(after, tag, to)| RelaxStep {
            after: Duration::from_secs(*after),
            action: match to {
                Some(l) => RelaxAction::MinLevel {
                    tag: TagId(*tag),
                    level: level(*l),
                },
                None => RelaxAction::Drop { tag: TagId(*tag) },
            },
        })
        .collect();
    if let Some((base, step)) = plan.tiers {
        q.max_tier_level = Some(base);
        q.tier_step = Some(Duration::from_secs(step));
    }
    q
}

fn build(queues: &[QueuePlan], agents: &[AgentPlan], fairness: bool, blend: bool) -> Router {
    let mut settings = RouterSettings::default();
    if fairness {
        settings.fairness = Fairness::QueueWeightFirst;
    }
    if blend {
        settings
            .blocks
            .get_mut(MediaType::Voice)
            .insert(MediaType::Chat);
    }
    let mut router = Router::new(settings);
    for (i, plan) in queues.iter().enumerate() {
        let q = queue_spec(i, plan);
        router.add_queue(q).expect("distinct queue ids");
    }
    for (i, plan) in agents.iter().enumerate() {
        let mut a = AgentSpec::new(AgentId(i as u32), TENANT);
        a.skills = plan
            .skills
            .iter()
            .map(|(k, l)| (SkillId(*k), level(*l)))
            .collect();
        *a.slots.get_mut(MediaType::Chat) = plan.chat_slots;
        *a.slots.get_mut(MediaType::Callback) = plan.callback_slots;
        let mut seen = BTreeSet::new();
        for (position, (queue, tier)) in plan.memberships.iter().enumerate() {
            if seen.insert(*queue) {
                a.memberships.push(Membership {
                    queue: QueueId(*queue),
                    level: *tier,
                    position: position as u32,
                });
            }
        }
        router.add_agent(Timestamp::ZERO, a).expect("valid agent");
        router
            .log_in(Timestamp::ZERO, AgentId(i as u32))
            .expect("known agent");
    }
    router
}

/// What the test has seen of each contact through the outputs.
#[derive(Default)]
struct Ledger {
    arrived: BTreeSet<ContactId>,
    ended: BTreeMap<ContactId, usize>,
    connected: BTreeMap<ContactId, usize>,
    offered: BTreeMap<ContactId, Vec<AgentId>>,
    was_offered_to: BTreeMap<ContactId, BTreeSet<AgentId>>,
    connected_to: BTreeMap<ContactId, AgentId>,
}

impl Ledger {
    fn absorb(&mut self, router: &mut Router) -> Result<(), TestCaseError> {
        for output in router.drain_outputs() {
            match output {
                Output::Offered {
                    contact, agents, ..
                } => {
                    prop_assert!(
                        !self.ended.contains_key(&contact),
                        "{contact} offered after it ended"
                    );
                    self.was_offered_to
                        .entry(contact)
                        .or_default()
                        .extend(agents.iter().copied());
                    self.offered.insert(contact, agents.to_vec());
                }
                Output::OfferExtended { contact, agent, .. } => {
                    self.was_offered_to
                        .entry(contact)
                        .or_default()
                        .insert(agent);
                    self.offered.entry(contact).or_default().push(agent);
                }
                Output::OfferWithdrawn { contact, agent, .. }
                | Output::OfferMissed { contact, agent, .. } => {
                    if let Some(legs) = self.offered.get_mut(&contact) {
                        legs.retain(|a| *a != agent);
                    }
                }
                Output::Connected { contact, agent, .. } => {
                    *self.connected.entry(contact).or_default() += 1;
                    prop_assert_eq!(self.connected[&contact], 1, "{} connected twice", contact);
                    self.connected_to.insert(contact, agent);
                    self.offered.remove(&contact);
                }
                // A connected contact whose bridge failed: it may be connected again.
                Output::Requeued { contact, .. }
                    if self.connected_to.remove(&contact).is_some() =>
                {
                    self.connected.remove(&contact);
                }
                Output::Ended { contact, .. } => {
                    *self.ended.entry(contact).or_default() += 1;
                    prop_assert_eq!(self.ended[&contact], 1, "{} ended twice", contact);
                    self.offered.remove(&contact);
                }
                _ => {}
            }
        }
        Ok(())
    }
}

fn pick<T: Clone>(items: &[T], index: usize) -> Option<T> {
    (!items.is_empty()).then(|| items[index % items.len()].clone())
}

proptest! {
    // 400 cases by default; PROPTEST_CASES=20000 for a longer hunt.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(400),
        max_shrink_iters: 4000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_router_keeps_its_invariants_under_any_interleaving(
        queues in proptest::collection::vec(queue_plan(), QUEUES as usize),
        agents in proptest::collection::vec(agent_plan(), AGENTS as usize),
        fairness in any::<bool>(),
        blend in any::<bool>(),
        ops in proptest::collection::vec(op(), 1..120),
    ) {
        let mut router = build(&queues, &agents, fairness, blend);
        router.drain_outputs().for_each(drop);
        let mut ledger = Ledger::default();
        let mut now = Timestamp::ZERO;
        let mut next_id = 1u64;
        // Contacts set aside (their switch is down): never offered, never connected.
        let mut held: BTreeSet<ContactId> = BTreeSet::new();
        for op in ops {
            now = now.plus(Duration::from_millis(500));
            // What is due by now happens first (an offer may time out just before an answer).
            router.handle_timeout(now);
            ledger.absorb(&mut router)?;
            let offered: Vec<(ContactId, AgentId)> = ledger
                .offered
                .iter()
                .flat_map(|(c, legs)| legs.iter().map(move |a| (*c, *a)))
                .collect();
            let live: Vec<ContactId> = ledger.arrived.iter().filter(|c| !ledger.ended.contains_key(c)).copied().collect();
            let connected: Vec<ContactId> = live.iter().filter(|c| ledger.connected.contains_key(c)).copied().collect();
            match op {
                Op::Arrive { queue, media: m, priority, criteria, customer } => {
                    let id = ContactId(next_id);
                    next_id += 1;
                    let mut spec = ContactSpec::new(id, TENANT, QueueId(queue), now);
                    spec.media = media(m);
                    spec.priority = Priority(priority);
                    spec.customer = customer.map(CustomerId);
                    spec.criteria = criteria
                        .iter()
                        .map(|(key, l, req)| Criterion {
                            key: SkillId(*key),
                            tag: TagId(*key),
                            min_level: level(*l),
                            modifier: if *req { Modifier::Required } else { Modifier::Preferred { weight: 1 + key } },
                        })
                        .collect();
                    router.arrive(now, spec).expect("a valid arrival is accepted");
                    ledger.arrived.insert(id);
                }
                Op::Accept { pick: i } => {
                    if let Some((contact, agent)) = pick(&offered, i) {
                        router.accept(now, contact, agent).expect("a live offer can be accepted");
                    }
                }
                Op::Reject { pick: i } => {
                    if let Some((contact, agent)) = pick(&offered, i) {
                        router.reject(now, contact, agent).expect("a live offer can be rejected");
                    }
                }
                Op::LateAccept { pick: i, agent } => {
                    // Only the agent it is connected to ever holds a connected contact.
                    if let Some(contact) = pick(&connected, i)
                        && ledger.connected_to.get(&contact) != Some(&AgentId(agent)) {
                            prop_assert!(router.accept(now, contact, AgentId(agent)).is_err());
                        }
                }
                Op::Abandon { pick: i } => {
                    if let Some(contact) = pick(&live, i) {
                        let result = router.abandon(now, contact);
                        prop_assert_eq!(result.is_ok(), !ledger.connected.contains_key(&contact));
                    }
                }
                Op::Complete { pick: i } => {
                    if let Some(contact) = pick(&connected, i) {
                        router.complete(now, contact).expect("a connected contact can complete");
                    }
                }
                Op::BackToQueue { pick: i } => {
                    if let Some(contact) = pick(&connected, i) {
                        router.back_to_queue(now, contact).expect("a connected contact can go back");
                    }
                }
                Op::Hold { pick: i } => {
                    if let Some(contact) = pick(&live, i) {
                        let set_aside = router.hold(now, contact).expect("a live contact can be held");
                        let connected = ledger.connected.contains_key(&contact);
                        prop_assert_eq!(set_aside, !connected && !held.contains(&contact));
                        if set_aside {
                            held.insert(contact);
                        }
                    }
                }
                Op::Release { pick: i } => {
                    let held_now: Vec<ContactId> = held.iter().copied().collect();
                    if let Some(contact) = pick(&held_now, i) {
                        prop_assert!(router.release(now, contact).expect("a held contact can be released"));
                        held.remove(&contact);
                    }
                }
                Op::UpdateQueue { queue, plan } => {
                    router.update_queue(now, queue_spec(queue as usize, &plan)).expect("a known queue of the client");
                }
                Op::SetAvailable { agent, media: m, available } => {
                    router.set_available(now, AgentId(agent), m.map(media), available).expect("known agent");
                }
                Op::LogIn { agent } => router.log_in(now, AgentId(agent)).expect("known agent"),
                Op::LogOut { agent } => router.log_out(now, AgentId(agent)).expect("known agent"),
                Op::SetPriority { pick: i, priority } => {
                    if let Some(contact) = pick(&live, i) {
                        router.set_priority(now, contact, Priority(priority)).expect("live contact");
                    }
                }
                Op::Callback { pick: i } => {
                    if let Some(contact) = pick(&live, i) {
                        // Allowed only while waiting; otherwise a clear error, never a panic.
                        let _ = router.request_callback(now, contact);
                    }
                }
                Op::SetSkills { agent, skills } => {
                    let skills = skills.iter().map(|(k, l)| (SkillId(*k), level(*l))).collect();
                    router.set_skills(now, AgentId(agent), skills).expect("known agent");
                }
                Op::Wait { secs } => {
                    now = now.plus(Duration::from_secs(secs));
                    router.handle_timeout(now);
                }
            }
            // Steps that did not call the router still let time pass.
            router.handle_timeout(now);
            ledger.absorb(&mut router)?;
            if let Err(violation) = router.check_invariants(now) {
                prop_assert!(false, "after {:?}: {}", now, violation);
            }
            held.retain(|c| !ledger.ended.contains_key(c));
            for contact in &held {
                prop_assert!(ledger.offered.get(contact).is_none_or(Vec::is_empty), "held {contact} is offered");
                prop_assert!(!ledger.connected.contains_key(contact), "held {contact} is connected");
                prop_assert_eq!(router.contact_status(*contact).map(|(_, _, phase)| phase), Some("held"));
            }
            for (contact, legs) in &ledger.offered {
                let multi = router
                    .contact_status(*contact)
                    .and_then(|(q, _, _)| router.queue_spec(q).ok().map(|spec| spec.strategy))
                    .is_some_and(|s| matches!(s, Routing::RingAll | Routing::Ringall | Routing::RingProgressively));
                prop_assert!(legs.len() <= 1 || multi, "{contact} rings {legs:?}");
            }
        }
        // Every contact that arrived is either still live in the router or ended exactly once.
        for contact in &ledger.arrived {
            let live = router.contact_status(*contact).is_some();
            prop_assert_eq!(live, !ledger.ended.contains_key(contact), "{} live={}", contact, live);
        }
        // Completing everything that is connected and abandoning the rest ends every contact.
        let live: Vec<ContactId> = ledger.arrived.iter().filter(|c| !ledger.ended.contains_key(c)).copied().collect();
        for contact in live {
            if router.complete(now, contact).is_err() {
                router.abandon(now, contact).expect("a contact that is not connected can be abandoned");
            }
            ledger.absorb(&mut router)?;
        }
        prop_assert_eq!(router.live_contacts(), 0);
        prop_assert_eq!(ledger.ended.len(), ledger.arrived.len());
        router.check_invariants(now).map_err(TestCaseError::fail)?;
    }
}
