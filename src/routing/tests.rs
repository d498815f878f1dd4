//! Scenario tests of the router: each drives it with fake time and checks what a caller (and
//! through it a customer, an agent or an administrator) would see.

use std::time::Duration;

use crate::model::{
    AgentId, ContactId, CustomerId, Level, MediaType, Outcome, Priority, QueueId, SkillId, TagId,
    TenantId, Timestamp,
};

use super::spec::{RelaxAction, RelaxStep};
use super::*;

const T: TenantId = TenantId(0);

fn at(secs: f64) -> Timestamp {
    Timestamp((secs * 1e6) as i64)
}

fn level(n: i64) -> Level {
    Level::new(n).unwrap()
}

fn queue(id: u32, strategy: Strategy) -> QueueSpec {
    let mut q = QueueSpec::new(QueueId(id), T);
    q.strategy = strategy;
    // Long enough that offers in these scenarios only time out where a test wants them to.
    q.offer_timeout = Duration::from_secs(1000);
    q
}

fn agent(id: u32, queues: &[(u32, u32, u32)]) -> AgentSpec {
    let mut a = AgentSpec::new(AgentId(id), T);
    a.memberships = queues
        .iter()
        .map(|(q, level, position)| Membership {
            queue: QueueId(*q),
            level: *level,
            position: *position,
        })
        .collect();
    a
}

fn skilled(mut a: AgentSpec, skills: &[(u32, i64)]) -> AgentSpec {
    a.skills = skills
        .iter()
        .map(|(k, l)| (SkillId(*k), level(*l)))
        .collect();
    a
}

fn contact(id: u64, queue: u32, arrival: Timestamp) -> ContactSpec {
    ContactSpec::new(ContactId(id), T, QueueId(queue), arrival)
}

fn required(key: u32, min: i64) -> Criterion {
    Criterion {
        key: SkillId(key),
        tag: TagId(key),
        min_level: level(min),
        modifier: Modifier::Required,
    }
}

fn preferred(key: u32, min: i64, weight: u32) -> Criterion {
    Criterion {
        key: SkillId(key),
        tag: TagId(key),
        min_level: level(min),
        modifier: Modifier::Preferred { weight },
    }
}

/// A router with the given queues and agents, all logged in at t=0.
fn center(queues: Vec<QueueSpec>, agents: Vec<AgentSpec>) -> Router {
    let mut r = Router::new(RouterSettings::default());
    for q in queues {
        r.add_queue(q).unwrap();
    }
    let ids: Vec<AgentId> = agents.iter().map(|a| a.id).collect();
    for a in agents {
        r.add_agent(at(0.0), a).unwrap();
    }
    for id in ids {
        r.log_in(at(0.0), id).unwrap();
    }
    r.drain_outputs().for_each(drop);
    r
}

fn outputs(r: &mut Router, now: Timestamp) -> Vec<Output> {
    let out: Vec<Output> = r.drain_outputs().collect();
    if let Err(violation) = r.check_invariants(now) {
        panic!("invariant violated: {violation}\noutputs: {out:#?}");
    }
    out
}

/// The offers among outputs, as (contact, agents).
fn offers(out: &[Output]) -> Vec<(u64, Vec<u32>)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Offered {
                contact, agents, ..
            } => Some((contact.0, agents.iter().map(|a| a.0).collect())),
            Output::OfferExtended { contact, agent, .. } => Some((contact.0, vec![agent.0])),
            _ => None,
        })
        .collect()
}

fn arrive(r: &mut Router, now: Timestamp, spec: ContactSpec) -> Vec<Output> {
    r.arrive(now, spec).unwrap();
    outputs(r, now)
}

/// Arrives a contact and returns the agent it was offered to (if one).
fn arrive_offer(r: &mut Router, now: Timestamp, spec: ContactSpec) -> Option<u32> {
    let id = spec.id.0;
    offers(&arrive(r, now, spec))
        .into_iter()
        .find(|(c, _)| *c == id)
        .map(|(_, a)| a[0])
}

/// Accepts and completes a contact on an agent at `start` and `end`.
fn serve(r: &mut Router, contact: u64, agent: u32, start: f64, end: f64) -> Vec<Output> {
    r.accept(at(start), ContactId(contact), AgentId(agent))
        .unwrap();
    outputs(r, at(start));
    r.complete(at(end), ContactId(contact)).unwrap();
    outputs(r, at(end))
}

// ----- both directions ----------------------------------------------------------------------------

#[test]
fn a_new_contact_takes_the_free_agent_and_a_freed_slot_takes_the_oldest_waiting() {
    let mut r = center(
        vec![queue(0, Strategy::LongestIdleAgent)],
        vec![agent(0, &[(0, 1, 0)])],
    );
    assert_eq!(
        arrive_offer(&mut r, at(1.0), contact(1, 0, at(1.0))),
        Some(0)
    );
    assert_eq!(
        arrive_offer(&mut r, at(2.0), contact(2, 0, at(2.0))),
        None,
        "the only agent is ringing"
    );
    assert_eq!(arrive_offer(&mut r, at(3.0), contact(3, 0, at(3.0))), None);
    r.accept(at(4.0), ContactId(1), AgentId(0)).unwrap();
    outputs(&mut r, at(4.0));
    r.complete(at(60.0), ContactId(1)).unwrap();
    let out = outputs(&mut r, at(60.0));
    assert!(out.contains(&Output::Ended {
        contact: ContactId(1),
        outcome: Outcome::Completed,
        agent: Some(AgentId(0)),
        at: at(60.0)
    }));
    assert_eq!(
        offers(&out),
        vec![(2, vec![0])],
        "the freed slot takes the contact waiting longest"
    );
}

#[test]
fn priority_comes_before_waiting_time_and_a_change_takes_effect_at_once() {
    let mut r = center(
        vec![queue(0, Strategy::LongestIdleAgent)],
        vec![agent(0, &[(0, 1, 0)])],
    );
    arrive(&mut r, at(0.0), contact(1, 0, at(0.0)));
    let mut urgent = contact(2, 0, at(5.0));
    urgent.priority = Priority(5);
    arrive(&mut r, at(5.0), urgent);
    arrive(&mut r, at(6.0), contact(3, 0, at(6.0)));
    arrive(&mut r, at(7.0), contact(4, 0, at(7.0)));
    // Contact 4 becomes urgent too; it keeps its arrival, so it stays behind contact 2.
    r.set_priority(at(8.0), ContactId(4), Priority(5)).unwrap();
    outputs(&mut r, at(8.0));
    let mut order = Vec::new();
    let mut current = 1;
    let mut t = 10.0;
    while let Some((next, _)) = offers(&serve(&mut r, current, 0, t, t + 1.0))
        .first()
        .cloned()
    {
        order.push(next);
        current = next;
        t += 2.0;
    }
    assert_eq!(order, vec![2, 4, 3]);
}

#[test]
fn lowering_a_priority_keeps_the_contact_s_waiting_time() {
    let mut r = center(
        vec![queue(0, Strategy::LongestIdleAgent)],
        vec![agent(0, &[(0, 1, 0)])],
    );
    arrive(&mut r, at(0.0), contact(1, 0, at(0.0)));
    let mut high = contact(2, 0, at(1.0));
    high.priority = Priority(3);
    arrive(&mut r, at(1.0), high);
    arrive(&mut r, at(2.0), contact(3, 0, at(2.0)));
    r.set_priority(at(3.0), ContactId(2), Priority(0)).unwrap();
    let out = serve(&mut r, 1, 0, 4.0, 5.0);
    assert_eq!(
        offers(&out),
        vec![(2, vec![0])],
        "contact 2 arrived before contact 3"
    );
}

// ----- matching ------------------------------------------------------------------------------------

#[test]
fn required_criteria_filter_and_preferred_criteria_score() {
    let agents = vec![
        skilled(agent(0, &[(0, 1, 0)]), &[(1, 3)]), // Spanish at 3
        skilled(agent(1, &[(0, 1, 1)]), &[(1, 8)]), // Spanish at 8
        skilled(agent(2, &[(0, 1, 2)]), &[(1, 9), (2, 5)]), // Spanish at 9, mortgages
        skilled(agent(3, &[(0, 1, 3)]), &[(2, 10)]), // mortgages, no Spanish
    ];
    let mut r = center(vec![queue(0, Strategy::TopDown)], agents);
    let mut c = contact(1, 0, at(1.0));
    c.criteria = vec![required(1, 5), preferred(2, 1, 10)];
    assert_eq!(
        arrive_offer(&mut r, at(1.0), c),
        Some(2),
        "only 1 and 2 speak Spanish at 5; 2 also knows mortgages"
    );
    let mut c = contact(2, 0, at(2.0));
    c.criteria = vec![required(1, 5), preferred(2, 1, 10)];
    assert_eq!(arrive_offer(&mut r, at(2.0), c), Some(1));
    let mut c = contact(3, 0, at(3.0));
    c.criteria = vec![required(1, 5)];
    assert_eq!(
        arrive_offer(&mut r, at(3.0), c),
        None,
        "agent 0's Spanish is too weak, agent 3 has none"
    );
    let explanation = r.explain(at(3.0), ContactId(3)).unwrap();
    let verdict = |a: u32| {
        explanation
            .candidates
            .iter()
            .find(|c| c.agent == AgentId(a))
            .unwrap()
            .verdict
            .clone()
    };
    assert_eq!(
        verdict(0),
        Verdict::MissingKey {
            key: SkillId(1),
            needs: level(5),
            has: Some(level(3))
        }
    );
    assert_eq!(
        verdict(3),
        Verdict::MissingKey {
            key: SkillId(1),
            needs: level(5),
            has: None
        }
    );
    assert_eq!(verdict(1), Verdict::Busy);
}

#[test]
fn requirements_relax_with_waiting_time() {
    let mut q = queue(0, Strategy::LongestIdleAgent);
    q.relax = vec![
        RelaxStep {
            after: Duration::from_secs(30),
            action: RelaxAction::MinLevel {
                tag: TagId(1),
                level: level(3),
            },
        },
        RelaxStep {
            after: Duration::from_secs(90),
            action: RelaxAction::Drop { tag: TagId(1) },
        },
    ];
    let agents = vec![
        skilled(agent(0, &[(0, 1, 0)]), &[(1, 3)]),
        agent(1, &[(0, 1, 1)]),
    ];
    let mut r = center(vec![q], agents);
    let mut c = contact(1, 0, at(0.0));
    c.criteria = vec![required(1, 5)];
    assert_eq!(arrive_offer(&mut r, at(0.0), c), None);
    assert_eq!(r.poll_timeout(), Some(at(30.0)));
    r.handle_timeout(at(29.9));
    assert!(offers(&outputs(&mut r, at(29.9))).is_empty());
    r.handle_timeout(at(30.0));
    assert_eq!(
        offers(&outputs(&mut r, at(30.0))),
        vec![(1, vec![0])],
        "after 30 s level 3 is enough"
    );

    // A second contact: agent 0 is busy; after 90 s the language is dropped and agent 1 takes it.
    let mut c = contact(2, 0, at(31.0));
    c.criteria = vec![required(1, 5)];
    assert_eq!(arrive_offer(&mut r, at(31.0), c), None);
    r.handle_timeout(at(61.0));
    assert!(
        offers(&outputs(&mut r, at(61.0))).is_empty(),
        "agent 1 has no Spanish at all"
    );
    r.handle_timeout(at(121.0));
    assert_eq!(offers(&outputs(&mut r, at(121.0))), vec![(2, vec![1])]);
}

#[test]
fn a_freed_agent_skips_contacts_it_cannot_serve_and_takes_the_best_it_can() {
    let agents = vec![skilled(agent(0, &[(0, 1, 0)]), &[(2, 5)])];
    let mut r = center(vec![queue(0, Strategy::LongestIdleAgent)], agents);
    arrive(&mut r, at(0.0), contact(1, 0, at(0.0)));
    let mut spanish = contact(2, 0, at(1.0));
    spanish.criteria = vec![required(1, 1)];
    arrive(&mut r, at(1.0), spanish);
    let mut mortgage = contact(3, 0, at(2.0));
    mortgage.criteria = vec![required(2, 4)];
    arrive(&mut r, at(2.0), mortgage);
    let out = serve(&mut r, 1, 0, 3.0, 4.0);
    assert_eq!(
        offers(&out),
        vec![(3, vec![0])],
        "contact 2 needs Spanish, which agent 0 lacks"
    );
}

// ----- offers ---------------------------------------------------------------------------------------

#[test]
fn ring_all_offers_to_every_eligible_agent_and_exactly_one_wins() {
    let agents = (0..3).map(|i| agent(i, &[(0, 1, i)])).collect();
    let mut r = center(vec![queue(0, Strategy::RingAll)], agents);
    let out = arrive(&mut r, at(1.0), contact(1, 0, at(1.0)));
    assert_eq!(offers(&out), vec![(1, vec![0, 1, 2])]);
    r.accept(at(2.0), ContactId(1), AgentId(1)).unwrap();
    let out = outputs(&mut r, at(2.0));
    let withdrawn: Vec<u32> = out
        .iter()
        .filter_map(|o| match o {
            Output::OfferWithdrawn {
                agent,
                reason: WithdrawReason::AnsweredElsewhere,
                ..
            } => Some(agent.0),
            _ => None,
        })
        .collect();
    assert_eq!(withdrawn, vec![0, 2]);
    assert_eq!(
        r.accept(at(2.1), ContactId(1), AgentId(0)),
        Err(RouterError::WrongPhase {
            contact: ContactId(1),
            phase: "connected",
            expected: "offered"
        }),
        "a second answer loses (app_queue's double-answer bug)"
    );
    // The withdrawn agents are free again and take the next contact as a group.
    let out = arrive(&mut r, at(3.0), contact(2, 0, at(3.0)));
    assert_eq!(offers(&out), vec![(2, vec![0, 2])]);
}

#[test]
fn ringall_rings_only_the_lowest_penalty_available() {
    let agents = vec![
        agent(0, &[(0, 0, 0)]),
        agent(1, &[(0, 0, 1)]),
        agent(2, &[(0, 5, 2)]),
    ];
    let mut r = center(vec![queue(0, Strategy::Ringall)], agents);
    assert_eq!(
        offers(&arrive(&mut r, at(1.0), contact(1, 0, at(1.0)))),
        vec![(1, vec![0, 1])]
    );
    assert_eq!(
        offers(&arrive(&mut r, at(2.0), contact(2, 0, at(2.0)))),
        vec![(2, vec![2])],
        "penalty 5 rings when nobody at 0 is free"
    );
}

#[test]
fn a_rejected_offer_puts_the_contact_back_at_its_place_and_reports_the_agent() {
    let agents = vec![agent(0, &[(0, 1, 0)]), agent(1, &[(0, 1, 1)])];
    let mut r = center(vec![queue(0, Strategy::TopDown)], agents);
    assert_eq!(
        arrive_offer(&mut r, at(1.0), contact(1, 0, at(1.0))),
        Some(0)
    );
    assert_eq!(
        arrive_offer(&mut r, at(2.0), contact(2, 0, at(2.0))),
        Some(1)
    );
    arrive(&mut r, at(3.0), contact(3, 0, at(3.0)));
    r.reject(at(4.0), ContactId(1), AgentId(0)).unwrap();
    let out = outputs(&mut r, at(4.0));
    assert!(out.contains(&Output::OfferMissed {
        contact: ContactId(1),
        agent: AgentId(0),
        media: MediaType::Voice,
        reason: MissReason::Rejected,
        at: at(4.0)
    }));
    assert!(out.contains(&Output::Requeued {
        contact: ContactId(1),
        at: at(4.0)
    }));
    assert!(
        offers(&out).is_empty(),
        "agent 0 is not ready after rejecting; agent 1 is ringing"
    );
    // Agent 1 frees: contact 1 (back at its place) comes before contact 3.
    r.reject(at(5.0), ContactId(2), AgentId(1)).unwrap();
    outputs(&mut r, at(5.0));
    r.set_available(at(6.0), AgentId(1), None, true).unwrap();
    assert_eq!(offers(&outputs(&mut r, at(6.0))), vec![(1, vec![1])]);
}

#[test]
fn an_unanswered_offer_times_out_and_the_contact_goes_to_the_next_agent() {
    let mut q = queue(0, Strategy::TopDown);
    q.offer_timeout = Duration::from_secs(15);
    let agents = vec![agent(0, &[(0, 1, 0)]), agent(1, &[(0, 1, 1)])];
    let mut r = center(vec![q], agents);
    r.set_available(at(0.0), AgentId(1), None, false).unwrap();
    assert_eq!(
        arrive_offer(&mut r, at(1.0), contact(1, 0, at(1.0))),
        Some(0)
    );
    r.set_available(at(2.0), AgentId(1), None, true).unwrap();
    assert!(
        offers(&outputs(&mut r, at(2.0))).is_empty(),
        "contact 1 is ringing agent 0"
    );
    assert_eq!(r.poll_timeout(), Some(at(16.0)));
    r.handle_timeout(at(16.0));
    let out = outputs(&mut r, at(16.0));
    assert!(out.iter().any(|o| matches!(
        o,
        Output::OfferMissed {
            agent: AgentId(0),
            reason: MissReason::TimedOut,
            ..
        }
    )));
    assert_eq!(offers(&out), vec![(1, vec![1])]);
}

#[test]
fn ring_progressively_adds_the_next_agent_while_the_first_keeps_ringing() {
    let mut q = queue(0, Strategy::RingProgressively);
    q.ring_progressively_delay = Duration::from_secs(5);
    q.offer_timeout = Duration::from_secs(60);
    let agents = (0..3).map(|i| agent(i, &[(0, 1, i)])).collect();
    let mut r = center(vec![q], agents);
    assert_eq!(
        offers(&arrive(&mut r, at(0.0), contact(1, 0, at(0.0)))),
        vec![(1, vec![0])]
    );
    r.handle_timeout(at(5.0));
    assert_eq!(offers(&outputs(&mut r, at(5.0))), vec![(1, vec![1])]);
    r.handle_timeout(at(10.0));
    assert_eq!(offers(&outputs(&mut r, at(10.0))), vec![(1, vec![2])]);
    r.accept(at(11.0), ContactId(1), AgentId(1)).unwrap();
    let out = outputs(&mut r, at(11.0));
    assert_eq!(
        out.iter()
            .filter(|o| matches!(o, Output::OfferWithdrawn { .. }))
            .count(),
        2
    );
    assert_eq!(r.contact_agents(ContactId(1)).to_vec(), vec![AgentId(1)]);
}

#[test]
fn an_abandoned_contact_ends_once_and_frees_the_ringing_agent() {
    let mut r = center(
        vec![queue(0, Strategy::LongestIdleAgent)],
        vec![agent(0, &[(0, 1, 0)])],
    );
    arrive(&mut r, at(0.0), contact(1, 0, at(0.0)));
    arrive(&mut r, at(1.0), contact(2, 0, at(1.0)));
    r.abandon(at(2.0), ContactId(1)).unwrap();
    let out = outputs(&mut r, at(2.0));
    assert!(out.contains(&Output::Ended {
        contact: ContactId(1),
        outcome: Outcome::Abandoned,
        agent: None,
        at: at(2.0)
    }));
    assert_eq!(
        offers(&out),
        vec![(2, vec![0])],
        "the agent who was ringing takes the next contact"
    );
    assert_eq!(
        r.abandon(at(3.0), ContactId(1)),
        Err(RouterError::UnknownContact(ContactId(1)))
    );
    r.abandon(at(3.0), ContactId(2)).unwrap();
    assert!(r.complete(at(4.0), ContactId(2)).is_err());
}

// ----- fairness ----------------------------------------------------------------------------------

#[test]
fn an_agent_of_several_queues_takes_the_best_claim_over_all_of_them() {
    let agents = vec![agent(0, &[(0, 1, 0), (1, 1, 0)])];
    let mut r = center(
        vec![
            queue(0, Strategy::LongestIdleAgent),
            queue(1, Strategy::LongestIdleAgent),
        ],
        agents,
    );
    arrive(&mut r, at(0.0), contact(1, 0, at(0.0)));
    arrive(&mut r, at(1.0), contact(2, 1, at(1.0)));
    arrive(&mut r, at(2.0), contact(3, 0, at(2.0)));
    let mut vip = contact(4, 1, at(3.0));
    vip.priority = Priority(1);
    arrive(&mut r, at(3.0), vip);
    let first = offers(&serve(&mut r, 1, 0, 4.0, 5.0));
    assert_eq!(first, vec![(4, vec![0])], "priority over all queues first");
    let second = offers(&serve(&mut r, 4, 0, 6.0, 7.0));
    assert_eq!(
        second,
        vec![(2, vec![0])],
        "then the longest wait over all queues"
    );
}

#[test]
fn aging_counts_a_queue_s_waiting_time_more() {
    let mut fast = queue(1, Strategy::LongestIdleAgent);
    fast.wait_factor_permille = 3000;
    let agents = vec![agent(0, &[(0, 1, 0), (1, 1, 0)])];
    let mut r = center(vec![queue(0, Strategy::LongestIdleAgent), fast], agents);
    arrive(&mut r, at(0.0), contact(1, 0, at(0.0)));
    arrive(&mut r, at(10.0), contact(2, 0, at(10.0)));
    arrive(&mut r, at(40.0), contact(3, 1, at(40.0)));
    // At t=50: contact 2 waited 40 s, contact 3 waited 10 s × 3 = 30 s effective.
    assert_eq!(offers(&serve(&mut r, 1, 0, 45.0, 50.0)), vec![(2, vec![0])]);
    r.accept(at(51.0), ContactId(2), AgentId(0)).unwrap();
    outputs(&mut r, at(51.0));
    arrive(&mut r, at(52.0), contact(4, 0, at(52.0)));
    // At t=60: contact 4 waited 8 s, contact 3 waited 20 s × 3.
    r.complete(at(60.0), ContactId(2)).unwrap();
    assert_eq!(offers(&outputs(&mut r, at(60.0))), vec![(3, vec![0])]);
}

#[test]
fn queue_weight_first_serves_the_heavier_queue_first() {
    let mut r = Router::new(RouterSettings {
        fairness: Fairness::QueueWeightFirst,
        ..RouterSettings::default()
    });
    let light = queue(0, Strategy::LongestIdleAgent);
    let mut heavy = queue(1, Strategy::LongestIdleAgent);
    heavy.weight = 10;
    r.add_queue(light).unwrap();
    r.add_queue(heavy).unwrap();
    r.add_agent(at(0.0), agent(0, &[(0, 1, 0), (1, 1, 0)]))
        .unwrap();
    arrive(&mut r, at(0.0), contact(1, 0, at(0.0)));
    arrive(&mut r, at(1.0), contact(2, 0, at(1.0)));
    arrive(&mut r, at(2.0), contact(3, 1, at(2.0)));
    r.log_in(at(3.0), AgentId(0)).unwrap();
    assert_eq!(offers(&outputs(&mut r, at(3.0))), vec![(3, vec![0])]);
}

// ----- callbacks, overflow, affinity -------------------------------------------------------------

#[test]
fn a_callback_keeps_its_place_and_waiting_time() {
    let mut a = agent(0, &[(0, 1, 0)]);
    *a.slots.get_mut(MediaType::Callback) = 1;
    let mut r = center(vec![queue(0, Strategy::LongestIdleAgent)], vec![a]);
    arrive(&mut r, at(0.0), contact(1, 0, at(0.0)));
    arrive(&mut r, at(5.0), contact(2, 0, at(5.0)));
    arrive(&mut r, at(6.0), contact(3, 0, at(6.0)));
    r.request_callback(at(7.0), ContactId(2)).unwrap();
    let out = outputs(&mut r, at(7.0));
    assert!(out.contains(&Output::BecameCallback {
        contact: ContactId(2),
        at: at(7.0)
    }));
    assert_eq!(
        r.contact_status(ContactId(2)).unwrap().1,
        MediaType::Callback
    );
    // The agent frees: the callback (arrived at 5 s) comes before contact 3 (6 s).
    assert_eq!(offers(&serve(&mut r, 1, 0, 8.0, 9.0)), vec![(2, vec![0])]);
    assert_eq!(
        r.explain(at(9.5), ContactId(2)).unwrap().waited,
        Duration::from_micros(4_500_000)
    );
}

#[test]
fn after_the_maximum_wait_a_contact_overflows_to_the_target_queue_keeping_its_arrival() {
    let mut first = queue(0, Strategy::LongestIdleAgent);
    first.max_wait = Some(Duration::from_secs(60));
    first.overflow = OverflowTarget::Queue(QueueId(1));
    let second = queue(1, Strategy::LongestIdleAgent);
    let agents = vec![agent(0, &[(0, 1, 0)]), agent(1, &[(1, 1, 0)])];
    let mut r = center(vec![first, second], agents);
    assert_eq!(
        arrive_offer(&mut r, at(0.0), contact(1, 0, at(0.0))),
        Some(0)
    );
    r.accept(at(1.0), ContactId(1), AgentId(0)).unwrap();
    r.set_available(at(1.0), AgentId(1), None, false).unwrap();
    outputs(&mut r, at(1.0));
    arrive(&mut r, at(10.0), contact(2, 0, at(10.0)));
    r.handle_timeout(at(70.0));
    let out = outputs(&mut r, at(70.0));
    assert!(out.contains(&Output::Overflowed {
        contact: ContactId(2),
        from: QueueId(0),
        target: OverflowTarget::Queue(QueueId(1)),
        at: at(70.0)
    }));
    assert_eq!(r.contact_status(ContactId(2)).unwrap().0, QueueId(1));
    arrive(&mut r, at(71.0), contact(3, 1, at(71.0)));
    r.set_available(at(72.0), AgentId(1), None, true).unwrap();
    assert_eq!(
        offers(&outputs(&mut r, at(72.0))),
        vec![(2, vec![1])],
        "it kept its arrival time in the new queue"
    );
}

#[test]
fn a_contact_nobody_logged_in_could_ever_serve_overflows_at_once() {
    let mut q = queue(0, Strategy::LongestIdleAgent);
    q.overflow = OverflowTarget::Voicemail;
    let agents = vec![
        skilled(agent(0, &[(0, 1, 0)]), &[(1, 5)]),
        skilled(agent(1, &[(0, 1, 1)]), &[(2, 5)]),
    ];
    let mut r = center(vec![q], agents);
    let mut c = contact(1, 0, at(0.0));
    c.criteria = vec![required(3, 1)];
    let out = arrive(&mut r, at(0.0), c);
    assert!(out.contains(&Output::Overflowed {
        contact: ContactId(1),
        from: QueueId(0),
        target: OverflowTarget::Voicemail,
        at: at(0.0)
    }));
    assert!(out.contains(&Output::Ended {
        contact: ContactId(1),
        outcome: Outcome::Overflowed,
        agent: None,
        at: at(0.0)
    }));
    // A contact only agent 1 can serve waits while agent 1 is busy, and overflows when it logs out.
    assert_eq!(
        arrive_offer(&mut r, at(1.0), {
            let mut c = contact(2, 0, at(1.0));
            c.criteria = vec![required(2, 1)];
            c
        }),
        Some(1)
    );
    let mut c = contact(3, 0, at(2.0));
    c.criteria = vec![required(2, 1)];
    assert_eq!(arrive_offer(&mut r, at(2.0), c), None);
    r.log_out(at(3.0), AgentId(1)).unwrap();
    let out = outputs(&mut r, at(3.0));
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Ended {
            contact: ContactId(3),
            outcome: Outcome::Overflowed,
            ..
        }
    )));
    assert!(
        out.iter().any(|o| matches!(
            o,
            Output::Ended {
                contact: ContactId(2),
                outcome: Outcome::Overflowed,
                ..
            }
        )),
        "contact 2 was ringing agent 1, went back to its place, and nobody else can serve it"
    );
}

#[test]
fn overflow_to_callback_keeps_the_place_and_does_not_loop() {
    let mut q = queue(0, Strategy::LongestIdleAgent);
    q.max_wait = Some(Duration::from_secs(30));
    q.overflow = OverflowTarget::Callback;
    let mut a = agent(0, &[(0, 1, 0)]);
    *a.slots.get_mut(MediaType::Callback) = 1;
    let mut r = center(vec![q], vec![a]);
    arrive(&mut r, at(0.0), contact(1, 0, at(0.0)));
    arrive(&mut r, at(1.0), contact(2, 0, at(1.0)));
    r.handle_timeout(at(100.0));
    let out = outputs(&mut r, at(100.0));
    assert!(out.contains(&Output::BecameCallback {
        contact: ContactId(2),
        at: at(31.0)
    }));
    assert_eq!(
        r.contact_status(ContactId(2)).unwrap().1,
        MediaType::Callback
    );
    assert!(r.poll_timeout().is_none_or(|t| t > at(100.0)));
}

#[test]
fn a_returning_customer_waits_for_their_previous_agent_for_the_affinity_window() {
    let mut q = queue(0, Strategy::LongestIdleAgent);
    q.affinity = Duration::from_secs(20);
    let agents = vec![agent(0, &[(0, 1, 0)]), agent(1, &[(0, 1, 1)])];
    let mut r = center(vec![q], agents);
    let customer = CustomerId(77);
    r.remember_customer(customer, AgentId(1), at(0.0));
    // Agent 1 is free: the customer goes to agent 1 even though agent 0 has been idle longer.
    let mut c = contact(1, 0, at(1.0));
    c.customer = Some(customer);
    assert_eq!(arrive_offer(&mut r, at(1.0), c), Some(1));
    r.accept(at(2.0), ContactId(1), AgentId(1)).unwrap();
    outputs(&mut r, at(2.0));
    // The same customer calls again while agent 1 is busy: they wait for agent 1 …
    let mut c = contact(2, 0, at(3.0));
    c.customer = Some(customer);
    assert_eq!(
        arrive_offer(&mut r, at(3.0), c),
        None,
        "agent 0 is free but the customer waits for agent 1"
    );
    let explanation = r.explain(at(3.0), ContactId(2)).unwrap();
    assert!(
        explanation
            .candidates
            .iter()
            .any(|c| c.agent == AgentId(1) && c.previous_agent)
    );
    // … up to 20 s of waiting, then anyone may take them.
    r.handle_timeout(at(22.9));
    assert!(offers(&outputs(&mut r, at(22.9))).is_empty());
    r.handle_timeout(at(23.0));
    assert_eq!(offers(&outputs(&mut r, at(23.0))), vec![(2, vec![0])]);
}

#[test]
fn the_previous_agent_takes_a_waiting_returning_customer_when_it_frees() {
    let mut q = queue(0, Strategy::LongestIdleAgent);
    q.affinity = Duration::from_secs(60);
    let agents = vec![agent(0, &[(0, 1, 0)]), agent(1, &[(0, 1, 1)])];
    let mut r = center(vec![q], agents);
    r.remember_customer(CustomerId(5), AgentId(0), at(0.0));
    assert_eq!(
        arrive_offer(&mut r, at(1.0), contact(1, 0, at(1.0))),
        Some(0)
    );
    assert_eq!(
        arrive_offer(&mut r, at(2.0), contact(2, 0, at(2.0))),
        Some(1)
    );
    arrive(&mut r, at(3.0), contact(3, 0, at(3.0)));
    let mut returning = contact(4, 0, at(4.0));
    returning.customer = Some(CustomerId(5));
    arrive(&mut r, at(4.0), returning);
    // Agent 1 frees first: it takes contact 3, not the customer waiting for agent 0.
    assert_eq!(offers(&serve(&mut r, 2, 1, 5.0, 6.0)), vec![(3, vec![1])]);
    assert_eq!(offers(&serve(&mut r, 1, 0, 7.0, 8.0)), vec![(4, vec![0])]);
}

// ----- tiers and penalties -------------------------------------------------------------------------

#[test]
fn tier_rules_reach_the_next_level_after_waiting() {
    let mut q = queue(0, Strategy::LongestIdleAgent);
    q.max_tier_level = Some(1);
    q.tier_step = Some(Duration::from_secs(10));
    let agents = vec![
        agent(0, &[(0, 1, 0)]),
        agent(1, &[(0, 2, 0)]),
        agent(2, &[(0, 3, 0)]),
    ];
    let mut r = center(vec![q], agents);
    assert_eq!(
        arrive_offer(&mut r, at(0.0), contact(1, 0, at(0.0))),
        Some(0)
    );
    assert_eq!(
        arrive_offer(&mut r, at(1.0), contact(2, 0, at(1.0))),
        None,
        "level 2 is not reached yet"
    );
    r.handle_timeout(at(11.0));
    assert_eq!(offers(&outputs(&mut r, at(11.0))), vec![(2, vec![1])]);
    let explanation = r.explain(at(11.0), ContactId(2)).unwrap();
    assert_eq!(explanation.max_tier_level, Some(2));
}

#[test]
fn penalty_rules_open_higher_penalties_over_time() {
    let mut q = queue(0, Strategy::Linear);
    q.max_tier_level = Some(0);
    q.relax = vec![RelaxStep {
        after: Duration::from_secs(45),
        action: RelaxAction::MaxTierLevel(10),
    }];
    let agents = vec![agent(0, &[(0, 0, 0)]), agent(1, &[(0, 10, 1)])];
    let mut r = center(vec![q], agents);
    assert_eq!(
        arrive_offer(&mut r, at(0.0), contact(1, 0, at(0.0))),
        Some(0)
    );
    assert_eq!(arrive_offer(&mut r, at(0.0), contact(2, 0, at(0.0))), None);
    r.handle_timeout(at(45.0));
    assert_eq!(offers(&outputs(&mut r, at(45.0))), vec![(2, vec![1])]);
}

#[test]
fn lower_tier_levels_are_tried_first() {
    let agents = vec![agent(0, &[(0, 2, 0)]), agent(1, &[(0, 1, 9)])];
    let mut r = center(vec![queue(0, Strategy::TopDown)], agents);
    assert_eq!(
        arrive_offer(&mut r, at(0.0), contact(1, 0, at(0.0))),
        Some(1)
    );
}

// ----- strategies -------------------------------------------------------------------------------------

/// Runs contacts one at a time through a queue of `n` agents and returns who took each.
fn sequence(strategy: Strategy, n: u32, rounds: usize, prepare: impl Fn(&mut Router)) -> Vec<u32> {
    let agents = (0..n).map(|i| agent(i, &[(0, 1, i)])).collect();
    let mut r = center(vec![queue(0, strategy)], agents);
    prepare(&mut r);
    let mut who = Vec::new();
    let mut t = 100.0;
    for i in 0..rounds {
        let id = 1000 + i as u64;
        let chosen = arrive_offer(&mut r, at(t), contact(id, 0, at(t))).expect("an agent is free");
        serve(&mut r, id, chosen, t + 1.0, t + 2.0 + f64::from(chosen));
        who.push(chosen);
        t += 100.0;
    }
    who
}

#[test]
fn longest_idle_agent_rotates_through_idle_agents() {
    assert_eq!(
        sequence(Strategy::LongestIdleAgent, 3, 6, |_| {}),
        vec![0, 1, 2, 0, 1, 2]
    );
}

#[test]
fn top_down_and_linear_always_start_from_the_first_position() {
    assert_eq!(sequence(Strategy::TopDown, 3, 3, |_| {}), vec![0, 0, 0]);
    assert_eq!(sequence(Strategy::Linear, 3, 3, |_| {}), vec![0, 0, 0]);
    assert_eq!(
        sequence(Strategy::SequentiallyByAgentOrder, 3, 3, |_| {}),
        vec![0, 0, 0]
    );
}

#[test]
fn round_robin_strategies_continue_after_the_last_agent_offered() {
    for strategy in [
        Strategy::RoundRobin,
        Strategy::Rrmemory,
        Strategy::Rrordered,
    ] {
        assert_eq!(
            sequence(strategy, 3, 5, |_| {}),
            vec![0, 1, 2, 0, 1],
            "{strategy}"
        );
    }
}

#[test]
fn least_talk_time_and_fewest_calls_balance_the_load() {
    // Agent 2 talks longest per contact (see `sequence`), so least-talk-time avoids it.
    let who = sequence(Strategy::AgentWithLeastTalkTime, 3, 6, |_| {});
    assert_eq!(who, vec![0, 1, 2, 0, 0, 1]);
    assert_eq!(
        sequence(Strategy::AgentWithFewestCalls, 3, 6, |_| {}),
        vec![0, 1, 2, 0, 1, 2]
    );
    assert_eq!(
        sequence(Strategy::Fewestcalls, 3, 6, |_| {}),
        vec![0, 1, 2, 0, 1, 2]
    );
}

#[test]
fn fewestcalls_counts_this_queue_and_agent_with_fewest_calls_counts_all_queues() {
    let agents = vec![
        agent(0, &[(0, 1, 0), (1, 1, 0)]),
        agent(1, &[(0, 1, 1), (1, 1, 1)]),
    ];
    let run = |strategy: Strategy| {
        let mut r = center(vec![queue(0, strategy), queue(1, strategy)], agents.clone());
        // Agent 0 handles two contacts of queue 1.
        for (i, t) in [(1u64, 1.0), (2, 10.0)] {
            r.set_available(at(t), AgentId(1), None, false).unwrap();
            arrive(&mut r, at(t), contact(i, 1, at(t)));
            serve(&mut r, i, 0, t + 1.0, t + 2.0);
            r.set_available(at(t + 2.0), AgentId(1), None, true)
                .unwrap();
        }
        arrive_offer(&mut r, at(50.0), contact(9, 0, at(50.0)))
    };
    assert_eq!(
        run(Strategy::AgentWithFewestCalls),
        Some(1),
        "agent 0 handled more calls overall"
    );
    assert_eq!(
        run(Strategy::Fewestcalls),
        Some(0),
        "in queue 0 both have none; lower id wins"
    );
}

#[test]
fn leastrecent_uses_the_last_call_from_this_queue() {
    let agents = vec![
        agent(0, &[(0, 1, 0), (1, 1, 0)]),
        agent(1, &[(0, 1, 1), (1, 1, 1)]),
    ];
    let mut r = center(
        vec![
            queue(0, Strategy::Leastrecent),
            queue(1, Strategy::Leastrecent),
        ],
        agents,
    );
    // Agent 1 takes a queue-0 contact early; agent 0 takes a queue-1 contact later.
    r.set_available(at(1.0), AgentId(0), None, false).unwrap();
    arrive(&mut r, at(1.0), contact(1, 0, at(1.0)));
    serve(&mut r, 1, 1, 2.0, 3.0);
    r.set_available(at(3.0), AgentId(0), None, true).unwrap();
    r.set_available(at(4.0), AgentId(1), None, false).unwrap();
    arrive(&mut r, at(4.0), contact(2, 1, at(4.0)));
    serve(&mut r, 2, 0, 5.0, 6.0);
    r.set_available(at(6.0), AgentId(1), None, true).unwrap();
    outputs(&mut r, at(6.0));
    // In queue 0, agent 0 never took a contact: it is least recent there, though it worked last.
    assert_eq!(
        arrive_offer(&mut r, at(10.0), contact(3, 0, at(10.0))),
        Some(0)
    );
}

#[test]
fn random_is_reproducible_with_the_same_seed_and_spreads_the_load() {
    let a = sequence(Strategy::Random, 4, 40, |_| {});
    let b = sequence(Strategy::Random, 4, 40, |_| {});
    assert_eq!(a, b);
    for agent in 0..4 {
        assert!(a.contains(&agent), "agent {agent} never chosen in {a:?}");
    }
}

#[test]
fn wrandom_favours_low_penalties_without_excluding_high_ones() {
    let agents = vec![agent(0, &[(0, 0, 0)]), agent(1, &[(0, 9, 1)])];
    let mut r = center(vec![queue(0, Strategy::Wrandom)], agents);
    let mut counts = [0u32; 2];
    for i in 0..400u64 {
        let t = f64::from(i as u32) * 10.0 + 1.0;
        let chosen = arrive_offer(&mut r, at(t), contact(i, 0, at(t))).unwrap();
        counts[chosen as usize] += 1;
        serve(&mut r, i, chosen, t + 1.0, t + 2.0);
    }
    assert!(counts[0] > counts[1] * 3, "{counts:?}");
    assert!(counts[1] > 0, "{counts:?}");
}

#[test]
fn best_skill_offers_to_the_highest_level_first() {
    let agents = vec![
        skilled(agent(0, &[(0, 1, 0)]), &[(1, 4)]),
        skilled(agent(1, &[(0, 1, 1)]), &[(1, 9)]),
        skilled(agent(2, &[(0, 1, 2)]), &[(1, 7)]),
    ];
    let mut r = center(vec![queue(0, Strategy::BestSkill)], agents);
    let with_skill = |id: u64, t: f64| {
        let mut c = contact(id, 0, at(t));
        c.criteria = vec![required(1, 1)];
        c
    };
    assert_eq!(arrive_offer(&mut r, at(1.0), with_skill(1, 1.0)), Some(1));
    assert_eq!(arrive_offer(&mut r, at(2.0), with_skill(2, 2.0)), Some(2));
    assert_eq!(arrive_offer(&mut r, at(3.0), with_skill(3, 3.0)), Some(0));
}

// ----- media slots and blending ------------------------------------------------------------------------

#[test]
fn chat_slots_take_several_contacts_and_voice_blocks_chat() {
    let mut a = agent(0, &[(0, 1, 0)]);
    *a.slots.get_mut(MediaType::Chat) = 3;
    let mut settings = RouterSettings::default();
    settings
        .blocks
        .get_mut(MediaType::Voice)
        .insert(MediaType::Chat);
    let mut r = Router::new(settings);
    r.add_queue(queue(0, Strategy::LongestIdleAgent)).unwrap();
    r.add_agent(at(0.0), a).unwrap();
    r.log_in(at(0.0), AgentId(0)).unwrap();
    let chat = |id: u64, t: f64| {
        let mut c = contact(id, 0, at(t));
        c.media = MediaType::Chat;
        c
    };
    for i in 1..=3 {
        assert_eq!(
            arrive_offer(&mut r, at(i as f64), chat(i, i as f64)),
            Some(0)
        );
        r.accept(at(i as f64), ContactId(i), AgentId(0)).unwrap();
    }
    assert_eq!(
        arrive_offer(&mut r, at(4.0), chat(4, 4.0)),
        None,
        "three chats fill three slots"
    );
    assert_eq!(
        arrive_offer(&mut r, at(5.0), contact(5, 0, at(5.0))),
        Some(0),
        "chat does not block voice"
    );
    r.accept(at(6.0), ContactId(5), AgentId(0)).unwrap();
    r.complete(at(7.0), ContactId(1)).unwrap();
    assert!(
        offers(&outputs(&mut r, at(7.0))).is_empty(),
        "no new chat while on voice"
    );
    r.complete(at(8.0), ContactId(5)).unwrap();
    assert_eq!(offers(&outputs(&mut r, at(8.0))), vec![(4, vec![0])]);
}

// ----- prediction and explanation ------------------------------------------------------------------------

#[test]
fn expected_wait_grows_with_the_position_and_is_none_without_agents() {
    let mut q = queue(0, Strategy::LongestIdleAgent);
    q.default_handle = Duration::from_secs(120);
    let agents = vec![agent(0, &[(0, 1, 0)]), agent(1, &[(0, 1, 1)])];
    let mut r = center(vec![q, queue(1, Strategy::LongestIdleAgent)], agents);
    assert_eq!(
        r.expected_wait_new(at(0.0), QueueId(0), MediaType::Voice, Priority(0))
            .unwrap(),
        Some(Duration::ZERO)
    );
    for i in 1..=6 {
        arrive(&mut r, at(i as f64), contact(i, 0, at(i as f64)));
    }
    // Two agents at 120 s each: one completion per minute; contact 3 is first in line.
    let first = r.expected_wait(at(7.0), ContactId(3)).unwrap().unwrap();
    let last = r.expected_wait(at(7.0), ContactId(6)).unwrap().unwrap();
    assert_eq!(first, Duration::from_secs(60));
    assert_eq!(last, Duration::from_secs(240));
    let new = r
        .expected_wait_new(at(7.0), QueueId(0), MediaType::Voice, Priority(0))
        .unwrap()
        .unwrap();
    assert_eq!(new, Duration::from_secs(300));
    assert_eq!(
        r.expected_wait_new(at(7.0), QueueId(1), MediaType::Voice, Priority(0))
            .unwrap(),
        None,
        "queue 1 has no agents"
    );
    assert_eq!(
        r.expected_wait(at(7.0), ContactId(1)).unwrap(),
        Some(Duration::ZERO),
        "contact 1 is ringing"
    );
}

#[test]
fn agents_own_handle_times_replace_the_default() {
    let mut q = queue(0, Strategy::LongestIdleAgent);
    q.default_handle = Duration::from_secs(600);
    let mut r = center(vec![q], vec![agent(0, &[(0, 1, 0)])]);
    arrive(&mut r, at(0.0), contact(1, 0, at(0.0)));
    serve(&mut r, 1, 0, 0.0, 30.0);
    r.accept(at(31.0), ContactId(2).max(ContactId(2)), AgentId(0))
        .unwrap_err();
    arrive(&mut r, at(31.0), contact(2, 0, at(31.0)));
    arrive(&mut r, at(32.0), contact(3, 0, at(32.0)));
    assert_eq!(
        r.expected_wait(at(32.0), ContactId(3)).unwrap(),
        Some(Duration::from_secs(30))
    );
}

#[test]
fn explain_names_the_winner_and_the_rule_that_decided() {
    let agents = vec![
        skilled(agent(0, &[(0, 1, 0)]), &[(1, 9)]),
        skilled(agent(1, &[(0, 1, 1)]), &[(1, 9), (2, 9)]),
        skilled(agent(2, &[(0, 1, 2)]), &[(1, 9)]),
        agent(3, &[(0, 1, 3)]),
    ];
    let mut r = center(vec![queue(0, Strategy::TopDown)], agents);
    let mut c = contact(1, 0, at(0.0));
    c.criteria = vec![required(1, 5), preferred(2, 1, 4)];
    assert_eq!(arrive_offer(&mut r, at(0.0), c), Some(1));
    let e = r.explain(at(0.0), ContactId(1)).unwrap();
    assert_eq!(e.candidates[0].agent, AgentId(1));
    assert_eq!(e.candidates[0].verdict, Verdict::Ringing);
    assert_eq!(e.candidates[0].score, 4);
    assert!(
        e.summary.contains("went to agent#1") && e.summary.contains("preference score 4 over"),
        "{}",
        e.summary
    );
    let missing = e.candidates.iter().find(|c| c.agent == AgentId(3)).unwrap();
    assert!(matches!(missing.verdict, Verdict::MissingKey { .. }));
    let mut catalog = Catalog::new();
    catalog.declare_queues(["sales"]);
    let text = e.render(&catalog);
    assert!(
        text.contains("required") && text.contains("preferred (weight 4)"),
        "{text}"
    );
}

// ----- restarts and bad input ---------------------------------------------------------------------------

#[test]
fn a_router_rebuilt_from_stored_contacts_keeps_order_and_waiting_times() {
    let build = || {
        center(
            vec![queue(0, Strategy::LongestIdleAgent)],
            vec![agent(0, &[(0, 1, 0)])],
        )
    };
    let mut before = build();
    r_busy(&mut before);
    let arrivals = [(1u64, 3.0, 0), (2, 1.0, 0), (3, 2.0, 4), (4, 0.5, 0)];
    for (id, t, p) in arrivals {
        let mut c = contact(id, 0, at(t));
        c.priority = Priority(p);
        before.arrive(at(5.0), c).unwrap();
    }
    // "Restart": a new router gets the same contacts, in the order the store returns them.
    let mut after = build();
    r_busy(&mut after);
    let mut stored: Vec<(u64, f64, i32)> = arrivals.to_vec();
    stored.sort_by(|a, b| {
        b.2.cmp(&a.2)
            .then(a.1.partial_cmp(&b.1).unwrap())
            .then(a.0.cmp(&b.0))
    });
    for (id, t, p) in stored.iter().rev() {
        let mut c = contact(*id, 0, at(*t));
        c.priority = Priority(*p);
        after.arrive(at(100.0), c).unwrap();
    }
    let order = |r: &mut Router, now: f64| {
        let mut order = Vec::new();
        let mut current = 999;
        let mut t = now;
        loop {
            r.complete(at(t), ContactId(current)).unwrap();
            let out: Vec<Output> = r.drain_outputs().collect();
            let Some((next, _)) = offers(&out).first().cloned() else {
                break;
            };
            order.push((next, r.explain(at(t), ContactId(next)).unwrap().waited));
            r.accept(at(t), ContactId(next), AgentId(0)).unwrap();
            current = next;
            t += 1.0;
        }
        order
    };
    let a: Vec<u64> = order(&mut before, 200.0)
        .into_iter()
        .map(|(c, _)| c)
        .collect();
    let b = order(&mut after, 200.0);
    assert_eq!(a, vec![3, 4, 2, 1]);
    assert_eq!(b.iter().map(|(c, _)| *c).collect::<Vec<_>>(), a);
    assert_eq!(
        b[0].1,
        Duration::from_secs(198),
        "waiting time counts from the original arrival"
    );
}

fn r_busy(r: &mut Router) {
    r.arrive(at(0.0), contact(999, 0, at(0.0))).unwrap();
    r.accept(at(0.0), ContactId(999), AgentId(0)).unwrap();
    r.drain_outputs().for_each(drop);
}

#[test]
fn bad_inputs_are_errors_and_change_nothing() {
    let mut r = center(
        vec![queue(0, Strategy::LongestIdleAgent)],
        vec![agent(0, &[(0, 1, 0)])],
    );
    assert_eq!(
        r.accept(at(1.0), ContactId(5), AgentId(0)),
        Err(RouterError::UnknownContact(ContactId(5)))
    );
    assert_eq!(
        r.arrive(at(1.0), contact(1, 7, at(1.0))),
        Err(RouterError::UnknownQueue(QueueId(7)))
    );
    arrive(&mut r, at(1.0), contact(1, 0, at(1.0)));
    assert_eq!(
        r.arrive(at(1.0), contact(1, 0, at(1.0))),
        Err(RouterError::DuplicateContact(ContactId(1)))
    );
    assert_eq!(
        r.reject(at(1.0), ContactId(1), AgentId(3)),
        Err(RouterError::NotOffered {
            contact: ContactId(1),
            agent: AgentId(3)
        })
    );
    let mut other = contact(2, 0, at(1.0));
    other.tenant = TenantId(9);
    assert!(matches!(
        r.arrive(at(1.0), other),
        Err(RouterError::TenantMismatch { .. })
    ));
    let mut wrong = AgentSpec::new(AgentId(5), TenantId(9));
    wrong.memberships.push(Membership {
        queue: QueueId(0),
        level: 1,
        position: 0,
    });
    assert!(matches!(
        r.add_agent(at(1.0), wrong),
        Err(RouterError::TenantMismatch { .. })
    ));
    let mut many = contact(3, 0, at(1.0));
    many.criteria = (0..40).map(|k| required(k, 1)).collect();
    assert!(matches!(
        r.arrive(at(1.0), many),
        Err(RouterError::TooManyCriteria { .. })
    ));
    r.accept(at(2.0), ContactId(1), AgentId(0)).unwrap();
    assert_eq!(
        r.remove_agent(at(2.0), AgentId(0)),
        Err(RouterError::AgentBusy {
            agent: AgentId(0),
            contacts: 1
        })
    );
    outputs(&mut r, at(2.0));
}

#[test]
fn after_a_restart_contacts_wait_for_agents_to_log_back_in_until_the_grace_ends() {
    let mut q = queue(0, Strategy::LongestIdleAgent);
    q.overflow = OverflowTarget::Voicemail;
    let settings = RouterSettings {
        startup_grace: Duration::from_secs(120),
        ..RouterSettings::default()
    };
    let mut r = Router::new(settings);
    r.add_queue(q).unwrap();
    r.add_agent(at(0.0), agent(0, &[(0, 1, 0)])).unwrap();
    r.add_agent(at(0.0), skilled(agent(1, &[(0, 1, 1)]), &[(1, 5)]))
        .unwrap();
    r.start_grace(at(0.0));
    let mut spanish = contact(1, 0, at(-30.0));
    spanish.criteria = vec![required(1, 1)];
    r.arrive(at(0.0), spanish).unwrap();
    r.arrive(at(0.0), contact(2, 0, at(-20.0))).unwrap();
    let out = outputs(&mut r, at(0.0));
    assert!(
        !out.iter().any(|o| matches!(o, Output::Overflowed { .. })),
        "nobody is logged in yet: {out:?}"
    );
    // Agent 0 logs back in and takes the contact it can serve; nobody speaks Spanish …
    r.log_in(at(10.0), AgentId(0)).unwrap();
    assert_eq!(offers(&outputs(&mut r, at(10.0))), vec![(2, vec![0])]);
    // … so when the grace ends, the Spanish caller overflows.
    r.handle_timeout(at(120.0));
    let out = outputs(&mut r, at(120.0));
    assert!(out.contains(&Output::Ended {
        contact: ContactId(1),
        outcome: Outcome::Overflowed,
        agent: None,
        at: at(120.0)
    }));
}

#[test]
fn settings_with_non_numbers_resolve_without_panicking() {
    let setup = RoutingSettings {
        startup_grace_s: f64::NAN,
        ..RoutingSettings::default()
    };
    assert_eq!(
        RouterSettings::from_setup(&setup).startup_grace,
        Duration::ZERO
    );
}

#[test]
fn a_ring_progressively_step_never_widens_a_later_offer_of_another_queue() {
    // Found by the property test: the step timer of an offer in a ring-progressively queue
    // outlived the offer and added a second agent to an offer from a longest-idle queue.
    let mut first = queue(0, Strategy::RingProgressively);
    first.ring_progressively_delay = Duration::from_secs(3);
    first.offer_timeout = Duration::from_secs(7);
    first.max_wait = Some(Duration::from_secs(5));
    first.overflow = OverflowTarget::Queue(QueueId(1));
    let second = queue(1, Strategy::LongestIdleAgent);
    let agents = vec![
        agent(0, &[(0, 1, 0)]),
        agent(1, &[(1, 1, 0)]),
        agent(2, &[(1, 1, 1)]),
    ];
    let mut r = center(vec![first, second], agents);
    assert_eq!(
        arrive_offer(&mut r, at(0.0), contact(1, 0, at(0.0))),
        Some(0)
    );
    // Agent 0 lets it ring out at 7 s, past the maximum wait: it moves to queue 1 at once.
    r.handle_timeout(at(7.0));
    let out = outputs(&mut r, at(7.0));
    assert_eq!(offers(&out), vec![(1, vec![1])]);
    for t in 8..40 {
        r.handle_timeout(at(f64::from(t)));
        outputs(&mut r, at(f64::from(t)));
        assert!(
            r.contact_agents(ContactId(1)).len() <= 1,
            "{:?} at {t}s",
            r.contact_agents(ContactId(1))
        );
    }
}

#[test]
fn a_connected_contact_whose_bridge_failed_goes_back_before_later_arrivals() {
    let a0 = agent(0, &[(0, 1, 0)]);
    let a1 = agent(1, &[(0, 1, 0)]);
    let mut r = center(vec![queue(0, Strategy::LongestIdleAgent)], vec![a0, a1]);
    r.set_available(at(0.0), AgentId(1), None, false).unwrap();
    outputs(&mut r, at(0.0));
    assert_eq!(
        arrive_offer(&mut r, at(1.0), contact(1, 0, at(1.0))),
        Some(0)
    );
    r.accept(at(2.0), ContactId(1), AgentId(0)).unwrap();
    outputs(&mut r, at(2.0));
    r.set_available(at(2.5), AgentId(0), None, false).unwrap();
    outputs(&mut r, at(2.5));
    arrive(&mut r, at(3.0), contact(2, 0, at(3.0)));
    r.back_to_queue(at(4.0), ContactId(1)).unwrap();
    let out = outputs(&mut r, at(4.0));
    assert!(out.contains(&Output::Requeued {
        contact: ContactId(1),
        at: at(4.0)
    }));
    // The next free agent takes contact 1 (arrived at 1 s) before contact 2 (3 s), and the
    // wait counts from the first arrival.
    r.set_available(at(5.0), AgentId(1), None, true).unwrap();
    assert_eq!(offers(&outputs(&mut r, at(5.0))), vec![(1, vec![1])]);
    assert_eq!(
        r.explain(at(5.0), ContactId(1)).unwrap().waited,
        Duration::from_secs(4)
    );
    // Not connected any more: a second call is refused, naming the phase.
    assert!(r.back_to_queue(at(6.0), ContactId(1)).is_err());
}

#[test]
fn a_waiting_contact_knows_its_place_for_announcements() {
    let a0 = agent(0, &[(0, 1, 0)]);
    let mut r = center(vec![queue(0, Strategy::LongestIdleAgent)], vec![a0]);
    r.set_available(at(0.0), AgentId(0), None, false).unwrap();
    for (id, t) in [(1, 1.0), (2, 2.0), (3, 3.0)] {
        arrive(&mut r, at(t), contact(id, 0, at(t)));
    }
    let mut urgent = contact(4, 0, at(4.0));
    urgent.priority = Priority(5);
    arrive(&mut r, at(4.0), urgent);
    let places: Vec<Option<u32>> = (1..=4).map(|c| r.queue_position(ContactId(c))).collect();
    assert_eq!(places, vec![Some(2), Some(3), Some(4), Some(1)]);
    r.set_available(at(5.0), AgentId(0), None, true).unwrap();
    outputs(&mut r, at(5.0));
    // Contact 4 is offered now: it has no place; the others moved up.
    assert_eq!(r.queue_position(ContactId(4)), None);
    assert_eq!(r.queue_position(ContactId(1)), Some(1));
}

#[test]
fn a_held_contact_is_never_offered_and_takes_back_its_place_when_released() {
    let mut r = center(
        vec![queue(0, Strategy::LongestIdleAgent)],
        vec![agent(0, &[(0, 1, 0)])],
    );
    assert_eq!(
        arrive_offer(&mut r, at(1.0), contact(1, 0, at(1.0))),
        Some(0)
    );
    arrive(&mut r, at(2.0), contact(2, 0, at(2.0)));
    arrive(&mut r, at(3.0), contact(3, 0, at(3.0)));
    // Contact 2's switch goes down: the agent's next contact is 3, though 2 waited longer.
    assert!(r.hold(at(4.0), ContactId(2)).unwrap());
    assert!(!r.hold(at(4.0), ContactId(2)).unwrap(), "held once");
    assert_eq!(r.contact_status(ContactId(2)).map(|s| s.2), Some("held"));
    let out = serve(&mut r, 1, 0, 5.0, 10.0);
    assert_eq!(offers(&out), vec![(3, vec![0])]);
    // The switch comes back while 3 is served; 4 arrives after: 2 is next, at its old place.
    assert!(r.release(at(11.0), ContactId(2)).unwrap());
    arrive(&mut r, at(12.0), contact(4, 0, at(12.0)));
    let out = serve(&mut r, 3, 0, 13.0, 20.0);
    assert_eq!(
        offers(&out),
        vec![(2, vec![0])],
        "2 kept its place before 4"
    );
    // An offered contact that is held gives its agent back at once.
    assert!(r.hold(at(21.0), ContactId(2)).unwrap());
    let out = outputs(&mut r, at(21.0));
    assert!(out.contains(&Output::OfferWithdrawn {
        contact: ContactId(2),
        agent: AgentId(0),
        reason: WithdrawReason::Unreachable,
        at: at(21.0),
    }));
    assert_eq!(
        offers(&out),
        vec![(4, vec![0])],
        "the agent takes 4 instead"
    );
    // A held contact can still be abandoned.
    r.abandon(at(22.0), ContactId(2)).unwrap();
    outputs(&mut r, at(22.0));
    assert_eq!(r.contact_status(ContactId(2)), None);
}

#[test]
fn new_queue_rules_apply_to_the_callers_already_waiting_who_keep_their_places() {
    let mut strict = queue(0, Strategy::LongestIdleAgent);
    strict.criteria = vec![required(1, 5)];
    let mut r = center(
        vec![strict.clone()],
        vec![skilled(agent(0, &[(0, 1, 0)]), &[(1, 3)])],
    );
    // The only agent's level 3 is below the queue's 5: both callers wait.
    assert_eq!(arrive_offer(&mut r, at(1.0), contact(1, 0, at(1.0))), None);
    assert_eq!(arrive_offer(&mut r, at(2.0), contact(2, 0, at(2.0))), None);
    // The administrator lowers the requirement to 3: the longest waiting is offered at once.
    let mut relaxed = strict.clone();
    relaxed.criteria = vec![required(1, 3)];
    r.update_queue(at(10.0), relaxed).unwrap();
    let out = outputs(&mut r, at(10.0));
    assert_eq!(offers(&out), vec![(1, vec![0])]);
    assert_eq!(
        r.queue_spec(QueueId(0)).unwrap().criteria,
        vec![required(1, 3)]
    );
    // And the other is next, then a newcomer.
    arrive(&mut r, at(11.0), contact(3, 0, at(11.0)));
    let out = serve(&mut r, 1, 0, 12.0, 20.0);
    assert_eq!(
        offers(&out),
        vec![(2, vec![0])],
        "2 kept its place before 3"
    );

    // A maximum wait that is already over overflows the callers past it.
    let mut short = r.queue_spec(QueueId(0)).unwrap().clone();
    short.max_wait = Some(Duration::from_secs(5));
    short.overflow = OverflowTarget::Voicemail;
    r.update_queue(at(21.0), short).unwrap();
    let out = outputs(&mut r, at(21.0));
    assert!(out.contains(&Output::Overflowed {
        contact: ContactId(3),
        from: QueueId(0),
        target: OverflowTarget::Voicemail,
        at: at(21.0)
    }));
}

#[test]
fn a_queue_update_for_another_client_or_a_missing_queue_is_refused() {
    let mut r = center(vec![queue(0, Strategy::LongestIdleAgent)], vec![]);
    let mut other = queue(0, Strategy::LongestIdleAgent);
    other.tenant = TenantId(9);
    assert!(matches!(
        r.update_queue(at(1.0), other),
        Err(RouterError::TenantMismatch { .. })
    ));
    assert!(matches!(
        r.update_queue(at(1.0), queue(5, Strategy::LongestIdleAgent)),
        Err(RouterError::UnknownQueue(QueueId(5)))
    ));
}
