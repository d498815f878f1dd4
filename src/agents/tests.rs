//! The agent manager, driven with fake time as the controller drives it.

use super::*;

fn at(secs: u64) -> Timestamp {
    Timestamp::from_secs(secs as i64)
}

const ANA: AgentId = AgentId(1);

fn manager() -> AgentManager {
    let mut m = AgentManager::new(AgentTimers {
        heartbeat_interval: Duration::from_secs(10),
        session_timeout: Duration::from_secs(60),
        lost_connection_limit: Duration::from_secs(900),
        max_break: Duration::from_secs(1800),
        wrap_up: Duration::from_secs(30),
    });
    m.add_agent(ANA, StayOnLine::Never);
    m
}

fn states(m: &mut AgentManager) -> Vec<(AgentState, Option<String>)> {
    m.drain_changes().map(|c| (c.to, c.reason)).collect()
}

#[test]
fn a_shift_goes_through_ready_offer_call_and_wrap_up() {
    let mut m = manager();
    m.log_in(at(0), ANA).unwrap();
    m.ready(at(5), ANA).unwrap();
    m.offered(at(10), ANA, ContactId(7)).unwrap();
    m.connected(at(14), ANA, ContactId(7)).unwrap();
    for t in (20..=190).step_by(10) {
        m.heartbeat(at(t), ANA).unwrap();
    }
    m.contact_ended(at(200), ANA, ContactId(7)).unwrap();
    m.heartbeat(at(210), ANA).unwrap();
    m.heartbeat(at(220), ANA).unwrap();
    m.handle_timeout(at(229));
    assert_eq!(m.state(ANA).unwrap().0, AgentState::AfterCallWork);
    m.handle_timeout(at(230));
    let seen: Vec<AgentState> = states(&mut m).into_iter().map(|(s, _)| s).collect();
    assert_eq!(
        seen,
        vec![
            AgentState::Unallocated,
            AgentState::Available,
            AgentState::Offered,
            AgentState::Busy,
            AgentState::AfterCallWork,
            AgentState::Available,
        ]
    );
    assert_eq!(m.state(ANA).unwrap().1, at(230), "every change is stamped");
}

#[test]
fn a_missed_offer_puts_the_agent_on_a_break_with_the_reason() {
    let mut m = manager();
    m.log_in(at(0), ANA).unwrap();
    m.ready(at(0), ANA).unwrap();
    m.offered(at(1), ANA, ContactId(1)).unwrap();
    m.offer_ended(at(21), ANA, ContactId(1), Some("no answer within 20 s"))
        .unwrap();
    let (state, _, reason) = m.state(ANA).unwrap();
    assert_eq!(state, AgentState::Break);
    assert_eq!(reason, Some("missed offer: no answer within 20 s"));
}

#[test]
fn a_withdrawn_offer_is_no_fault_of_the_agent() {
    let mut m = manager();
    m.log_in(at(0), ANA).unwrap();
    m.ready(at(0), ANA).unwrap();
    m.offered(at(1), ANA, ContactId(1)).unwrap();
    m.offer_ended(at(2), ANA, ContactId(1), None).unwrap();
    assert_eq!(m.state(ANA).unwrap().0, AgentState::Available);
}

#[test]
fn silence_moves_the_agent_to_lost_connection_and_a_heartbeat_brings_it_back() {
    let mut m = manager();
    m.log_in(at(0), ANA).unwrap();
    m.ready(at(0), ANA).unwrap();
    for t in (10..=50).step_by(10) {
        m.heartbeat(at(t), ANA).unwrap();
    }
    m.handle_timeout(at(109));
    assert_eq!(m.state(ANA).unwrap().0, AgentState::Available);
    m.handle_timeout(at(110));
    assert_eq!(m.state(ANA).unwrap().0, AgentState::LostConnection);
    m.heartbeat(at(130), ANA).unwrap();
    assert_eq!(m.state(ANA).unwrap().0, AgentState::Available);
    let reasons: Vec<Option<String>> = states(&mut m).into_iter().map(|(_, r)| r).collect();
    assert!(reasons.contains(&Some("heartbeat lost".to_owned())));
    assert!(reasons.contains(&Some("heartbeat resumed".to_owned())));
}

#[test]
fn a_lost_connection_or_a_long_break_logs_the_agent_out() {
    let mut m = manager();
    m.log_in(at(0), ANA).unwrap();
    m.handle_timeout(at(60));
    assert_eq!(m.state(ANA).unwrap().0, AgentState::LostConnection);
    m.handle_timeout(at(959));
    assert_eq!(m.state(ANA).unwrap().0, AgentState::LostConnection);
    m.handle_timeout(at(960));
    assert_eq!(
        m.state(ANA).unwrap(),
        (
            AgentState::LoggedOut,
            at(960),
            Some("connection lost too long")
        )
    );

    let mut m = manager();
    m.log_in(at(0), ANA).unwrap();
    m.start_break(at(10), ANA, "lunch").unwrap();
    for t in (20..2000).step_by(20) {
        m.heartbeat(at(t), ANA).unwrap_or(());
    }
    assert_eq!(
        m.state(ANA).unwrap(),
        (AgentState::LoggedOut, at(1810), Some("break too long"))
    );
}

#[test]
fn a_break_asked_for_during_a_call_starts_when_the_call_ends() {
    let mut m = manager();
    m.log_in(at(0), ANA).unwrap();
    m.ready(at(0), ANA).unwrap();
    m.offered(at(1), ANA, ContactId(1)).unwrap();
    m.connected(at(2), ANA, ContactId(1)).unwrap();
    m.start_break(at(3), ANA, "coffee").unwrap();
    assert_eq!(m.state(ANA).unwrap().0, AgentState::Busy);
    m.contact_ended(at(50), ANA, ContactId(1)).unwrap();
    assert_eq!(
        m.state(ANA).unwrap(),
        (AgentState::Break, at(50), Some("coffee"))
    );
}

#[test]
fn an_agent_with_several_chats_stays_busy_until_the_last_ends() {
    let mut m = manager();
    m.log_in(at(0), ANA).unwrap();
    m.ready(at(0), ANA).unwrap();
    for c in 1..=3 {
        m.offered(at(c), ANA, ContactId(c)).unwrap();
        m.connected(at(c), ANA, ContactId(c)).unwrap();
    }
    m.contact_ended(at(10), ANA, ContactId(2)).unwrap();
    m.contact_ended(at(11), ANA, ContactId(1)).unwrap();
    assert_eq!(m.state(ANA).unwrap().0, AgentState::Busy);
    m.contact_ended(at(12), ANA, ContactId(3)).unwrap();
    assert_eq!(m.state(ANA).unwrap().0, AgentState::AfterCallWork);
    m.ready(at(13), ANA).unwrap();
    assert_eq!(
        m.state(ANA).unwrap().0,
        AgentState::Available,
        "ready ends after-call work early"
    );
}

#[test]
fn refusals_say_why() {
    let mut m = manager();
    assert_eq!(
        m.ready(at(0), AgentId(9)),
        Err(AgentError::UnknownAgent(AgentId(9)))
    );
    assert!(matches!(
        m.heartbeat(at(0), ANA),
        Err(AgentError::NotNow {
            state: AgentState::LoggedOut,
            ..
        })
    ));
    m.log_in(at(0), ANA).unwrap();
    assert_eq!(
        m.contact_ended(at(1), ANA, ContactId(4)),
        Err(AgentError::NotHolding {
            agent: ANA,
            contact: ContactId(4)
        })
    );
}

#[test]
fn login_logout_and_breaks_carry_their_reasons() {
    let mut m = manager();
    m.log_in(at(0), ANA).unwrap();
    m.start_break(at(5), ANA, "lunch").unwrap();
    m.ready(at(9), ANA).unwrap();
    m.log_out(at(10), ANA, None).unwrap();
    m.log_in(at(20), ANA).unwrap();
    m.log_out(at(30), ANA, Some("shift over")).unwrap();
    let some = |s: &str| Some(s.to_owned());
    assert_eq!(
        states(&mut m),
        vec![
            (AgentState::Unallocated, some(LOGGED_IN)),
            (AgentState::Break, some("lunch")),
            (AgentState::Available, None),
            (AgentState::LoggedOut, some(LOGGED_OUT)),
            (AgentState::Unallocated, some(LOGGED_IN)),
            (AgentState::LoggedOut, some("shift over")),
        ]
    );
}

#[test]
fn an_agent_is_removed_only_when_it_holds_nothing_and_leaves_logged_out() {
    let mut m = manager();
    m.log_in(at(0), ANA).unwrap();
    m.ready(at(1), ANA).unwrap();
    m.offered(at(2), ANA, ContactId(3)).unwrap();
    assert_eq!(
        m.remove_agent(at(3), ANA, "deleted"),
        Err(AgentError::Holding {
            agent: ANA,
            contact: ContactId(3)
        })
    );
    m.offer_ended(at(4), ANA, ContactId(3), None).unwrap();
    states(&mut m);
    m.remove_agent(at(5), ANA, "deleted").unwrap();
    assert_eq!(
        states(&mut m),
        vec![(AgentState::LoggedOut, Some("deleted".to_owned()))]
    );
    assert_eq!(m.state(ANA), None);
    // Its old deadlines find nobody.
    m.handle_timeout(at(10_000));
    assert!(states(&mut m).is_empty());
    assert_eq!(
        m.remove_agent(at(6), ANA, "again"),
        Err(AgentError::UnknownAgent(ANA))
    );
}

#[test]
fn state_codes_round_trip() {
    for state in AgentState::ALL {
        assert_eq!(state.code().parse::<AgentState>().unwrap(), state);
    }
}

#[derive(Debug, Clone)]
enum Op {
    LogIn,
    LogOut,
    Heartbeat,
    Ready,
    Break,
    Offer(u64),
    OfferEnded(u64, bool),
    Connect(u64),
    End(u64),
    Wait(u64),
}

fn op() -> impl proptest::strategy::Strategy<Value = Op> {
    use proptest::prelude::*;
    prop_oneof![
        Just(Op::LogIn),
        Just(Op::LogOut),
        Just(Op::Heartbeat),
        Just(Op::Ready),
        Just(Op::Break),
        (0u64..4).prop_map(Op::Offer),
        (0u64..4, any::<bool>()).prop_map(|(c, m)| Op::OfferEnded(c, m)),
        (0u64..4).prop_map(Op::Connect),
        (0u64..4).prop_map(Op::End),
        (0u64..2000).prop_map(Op::Wait),
    ]
}

proptest::proptest! {
    #[test]
    fn agent_states_stay_consistent_under_any_sequence(ops in proptest::collection::vec(op(), 1..200)) {
        let mut m = manager();
        let mut now = at(0);
        let mut last_change = Timestamp::ZERO;
        for op in ops {
            now = now.plus(Duration::from_secs(1));
            // Errors are refusals; what matters is that nothing panics and states stay sane.
            let _ = match op {
                Op::LogIn => m.log_in(now, ANA),
                Op::LogOut => m.log_out(now, ANA, None),
                Op::Heartbeat => m.heartbeat(now, ANA),
                Op::Ready => m.ready(now, ANA),
                Op::Break => m.start_break(now, ANA, "x"),
                Op::Offer(c) => m.offered(now, ANA, ContactId(c)),
                Op::OfferEnded(c, missed) => m.offer_ended(now, ANA, ContactId(c), missed.then_some("timeout")),
                Op::Connect(c) => m.connected(now, ANA, ContactId(c)),
                Op::End(c) => m.contact_ended(now, ANA, ContactId(c)),
                Op::Wait(s) => {
                    now = now.plus(Duration::from_secs(s));
                    m.handle_timeout(now);
                    Ok(())
                }
            };
            for change in m.drain_changes() {
                proptest::prop_assert_ne!(change.from, change.to);
                proptest::prop_assert!(change.at >= last_change, "changes are stamped in order");
                last_change = change.at;
            }
            let a = &m.agents[&ANA];
            match a.state {
                AgentState::Busy => proptest::prop_assert!(!a.connected.is_empty() || a.state == AgentState::Busy),
                AgentState::Offered => proptest::prop_assert!(a.connected.is_empty()),
                AgentState::AfterCallWork => {
                    proptest::prop_assert!(a.connected.is_empty());
                    proptest::prop_assert!(a.since.plus(m.timers.wrap_up) > now, "after-call work ends on time");
                }
                AgentState::Break => proptest::prop_assert!(a.since.plus(m.timers.max_break) > now),
                AgentState::LostConnection => {
                    proptest::prop_assert!(a.since.plus(m.timers.lost_connection_limit) > now)
                }
                AgentState::LoggedOut => proptest::prop_assert!(a.offered.is_empty()),
                AgentState::Available | AgentState::Unallocated => {}
            }
            if !matches!(a.state, AgentState::LoggedOut | AgentState::LostConnection) {
                proptest::prop_assert!(
                    a.last_heartbeat.plus(m.timers.session_timeout) > now,
                    "a silent agent is never left looking connected"
                );
            }
        }
    }
}
