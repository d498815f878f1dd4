//! Calls driven as the controller drives them: a handler's events, the router's outputs, agent
//! actions and time in; commands, router steps and records out.

use std::time::Duration;

use smallvec::smallvec;

use crate::admission::{Admission, AdmissionSettings, ClientTrunks};
use crate::agents::{AgentManager, AgentTimers, StayOnLine};
use crate::flow::{Flow, FlowEngine};
use crate::media::{
    HandlerId, HangupCause, LegId, LegSnapshot, MediaCommand, MediaEvent, OriginateTarget,
    RecordTarget,
};
use crate::model::{AgentId, ContactId, Outcome, TenantId, Timestamp};
use crate::routing::{MissReason, Output};

use super::*;

const FLOW: &str = r#"
name = "sales"
[[steps]]
queue = { name = "sales", music = "default", bridge_timeout_s = 10 }
"#;

const T: TenantId = TenantId(0);
const ANN: AgentId = AgentId(1);
const BOB: AgentId = AgentId(2);

fn at(secs: f64) -> Timestamp {
    Timestamp((1_800_000_000.0 * 1e6 + secs * 1e6) as i64)
}

fn fs() -> HandlerId {
    HandlerId(1)
}

fn line(user: &str, stay: StayOnLine) -> AgentLine {
    AgentLine {
        target: OriginateTarget::SipUser {
            user: user.to_owned(),
            domain: None,
        },
        stay_on_line: stay,
    }
}

/// A core with one client (R = 2, T = `after_hours`) and agents Ann and Bob, logged in and
/// ready at t = 0.
fn center(after_hours: u32, ann: StayOnLine) -> Calls {
    let mut flows = FlowEngine::new();
    flows.add_flow(Flow::from_toml(FLOW, "sales.toml").unwrap());
    // Heartbeats are not the point here: the portal is taken to be alive for the hour.
    let timers = AgentTimers {
        wrap_up: Duration::from_secs(20),
        session_timeout: Duration::from_secs(3600),
        ..AgentTimers::default()
    };
    let mut admission = Admission::new(AdmissionSettings::default());
    admission.set_client(
        T,
        ClientTrunks {
            ratio: 2.0,
            after_hours,
        },
    );
    let mut calls = Calls::new(
        CallSettings {
            recordings: Some("/rec/".to_owned()),
            ..CallSettings::default()
        },
        flows,
        AgentManager::new(timers),
        admission,
    );
    calls.add_agent(ANN, T, line("ann", ann));
    calls.add_agent(BOB, T, line("bob", StayOnLine::Never));
    for agent in [ANN, BOB] {
        calls.log_in(at(0.0), agent, &fs()).unwrap();
        calls.ready(at(0.0), agent).unwrap();
    }
    calls
}

fn drain(calls: &mut Calls) -> Vec<CallAction> {
    calls.drain_actions().collect()
}

fn commands(actions: &[CallAction]) -> Vec<MediaCommand> {
    actions
        .iter()
        .filter_map(|a| match a {
            CallAction::Media { command, .. } => Some(command.clone()),
            _ => None,
        })
        .collect()
}

fn router_steps(actions: &[CallAction]) -> Vec<(ContactId, RouterStep)> {
    actions
        .iter()
        .filter_map(|a| match a {
            CallAction::Router { contact, step } => Some((*contact, step.clone())),
            _ => None,
        })
        .collect()
}

fn records(actions: &[CallAction]) -> Vec<CallRecord> {
    actions
        .iter()
        .filter_map(|a| match a {
            CallAction::Record(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

fn customer(n: u64) -> LegId {
    LegId::new(format!("cust-{n}"))
}

fn arrive(calls: &mut Calls, now: Timestamp, n: u64) -> bool {
    calls
        .inbound(
            now,
            InboundCall {
                handler: fs(),
                leg: customer(n),
                contact: ContactId(n),
                tenant: T,
                queue: "sales".to_owned(),
                flow: "sales".to_owned(),
                caller: Some(format!("+4930{n}")),
                destination: Some("+498001234".to_owned()),
            },
        )
        .unwrap()
        .admitted()
}

fn offered(contact: u64, agent: AgentId, now: Timestamp) -> Output {
    Output::Offered {
        contact: ContactId(contact),
        agents: smallvec![agent],
        expires_at: now.plus(Duration::from_secs(20)),
        at: now,
    }
}

fn connected(contact: u64, agent: AgentId, now: Timestamp) -> Output {
    Output::Connected {
        contact: ContactId(contact),
        agent,
        at: now,
    }
}

/// The leg the core originated to reach an agent.
fn originated(actions: &[CallAction]) -> Option<(LegId, OriginateTarget, ContactId)> {
    commands(actions).into_iter().find_map(|c| match c {
        MediaCommand::Originate(r) => Some((r.leg, r.target, r.contact)),
        _ => None,
    })
}

#[test]
fn an_admitted_call_is_answered_tagged_with_its_contact_and_queued() {
    let mut calls = center(5, StayOnLine::Never);
    drain(&mut calls);
    assert!(arrive(&mut calls, at(1.0), 7));
    let out = drain(&mut calls);
    let cmds = commands(&out);
    assert!(cmds.contains(&MediaCommand::Answer { leg: customer(7) }));
    assert!(cmds.contains(&MediaCommand::SetVariable {
        leg: customer(7),
        name: crate::media::CONTACT_VARIABLE.to_owned(),
        value: "7".to_owned(),
    }));
    assert!(out.iter().any(|a| matches!(
        a,
        CallAction::Enqueue { contact: ContactId(7), queue, attributes, .. }
            if queue == "sales" && attributes.get("caller").map(String::as_str) == Some("+49307")
    )));
}

#[test]
fn a_call_over_the_clients_limit_hears_busy_and_is_recorded_as_rejected_with_the_rule() {
    // No agent available for this client: A = 0, so permitted = max(0, 0 + T) = 1.
    let mut calls = center(1, StayOnLine::Never);
    for agent in [ANN, BOB] {
        calls.start_break(at(0.5), agent, "lunch").unwrap();
    }
    drain(&mut calls);
    assert!(arrive(&mut calls, at(1.0), 1));
    assert!(!arrive(&mut calls, at(2.0), 2));
    let out = drain(&mut calls);
    assert!(commands(&out).contains(&MediaCommand::Hangup {
        leg: customer(2),
        cause: HangupCause::user_busy(),
    }));
    let rejected = records(&out);
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].contact, ContactId(2));
    assert_eq!(rejected[0].disposition, Disposition::Rejected);
    assert!(
        rejected[0].cause.contains("over-client-limit")
            && rejected[0].cause.contains("=1 active=1"),
        "{}",
        rejected[0].cause
    );
    // The refused call never reached the queue.
    assert!(!out.iter().any(|a| matches!(
        a,
        CallAction::Enqueue {
            contact: ContactId(2),
            ..
        }
    )));
}

#[test]
fn an_offer_rings_the_agents_phone_on_the_callers_handler_and_the_answer_bridges_and_records() {
    let mut calls = center(5, StayOnLine::Never);
    arrive(&mut calls, at(1.0), 7);
    drain(&mut calls);
    calls.on_router(at(2.0), &offered(7, ANN, at(2.0)));
    let out = drain(&mut calls);
    let (agent_leg, target, contact) = originated(&out).expect("Ann's phone rings");
    assert_eq!(
        target,
        OriginateTarget::SipUser {
            user: "ann".to_owned(),
            domain: None
        }
    );
    assert_eq!(contact, ContactId(7), "the agent's leg carries the contact");
    assert!(out.iter().all(|a| match a {
        CallAction::Media { handler, .. } => *handler == fs(),
        _ => true,
    }));
    // Ann's portal pops the caller.
    assert!(out.iter().any(|a| matches!(
        a,
        CallAction::Notice(Notice { agent: ANN, contact: ContactId(7), kind: NoticeKind::Offered, caller: Some(c), queue, .. })
            if c == "+49307" && queue == "sales"
    )));

    calls.on_media(
        at(6.0),
        &fs(),
        &MediaEvent::Answered {
            leg: agent_leg.clone(),
        },
    );
    let out = drain(&mut calls);
    assert_eq!(
        router_steps(&out),
        vec![(ContactId(7), RouterStep::Accept(ANN))]
    );
    assert!(commands(&out).contains(&MediaCommand::Bridge {
        a: customer(7),
        b: agent_leg.clone(),
    }));
    calls.on_router(at(6.0), &connected(7, ANN, at(6.0)));
    calls.on_media(
        at(6.1),
        &fs(),
        &MediaEvent::Bridged {
            a: customer(7),
            b: agent_leg.clone(),
        },
    );
    let out = drain(&mut calls);
    assert!(commands(&out).iter().any(|c| matches!(
        c,
        MediaCommand::StartRecording { target: RecordTarget::Bridge { leg }, path, .. }
            if *leg == customer(7) && path == "/rec/7.wav"
    )));
}

/// Arrives contact 7, offers it to Ann, answers and bridges; returns Ann's leg.
fn talking(calls: &mut Calls) -> LegId {
    arrive(calls, at(1.0), 7);
    calls.on_router(at(2.0), &offered(7, ANN, at(2.0)));
    let (leg, _, _) = originated(&drain(calls)).expect("rings");
    calls.on_media(at(6.0), &fs(), &MediaEvent::Answered { leg: leg.clone() });
    calls.on_router(at(6.0), &connected(7, ANN, at(6.0)));
    calls.on_media(
        at(6.1),
        &fs(),
        &MediaEvent::Bridged {
            a: customer(7),
            b: leg.clone(),
        },
    );
    drain(calls);
    leg
}

#[test]
fn the_customer_hanging_up_ends_the_agents_leg_and_the_record_waits_for_wrap_up() {
    let mut calls = center(5, StayOnLine::Never);
    let agent_leg = talking(&mut calls);
    calls.on_media(
        at(66.0),
        &fs(),
        &MediaEvent::HungUp {
            leg: customer(7),
            cause: HangupCause::normal_clearing(),
        },
    );
    let out = drain(&mut calls);
    assert!(commands(&out).contains(&MediaCommand::Hangup {
        leg: agent_leg,
        cause: HangupCause::normal_clearing(),
    }));
    assert_eq!(
        router_steps(&out),
        vec![(ContactId(7), RouterStep::Complete)]
    );
    // Ann's after-call work reaches the router before the slot the call frees, so that the
    // router does not offer her the next caller at once.
    let unavailable = out.iter().position(|a| {
        matches!(
            a,
            CallAction::Agent {
                agent: ANN,
                step: AgentStep::Available(false)
            }
        )
    });
    let complete = out.iter().position(|a| {
        matches!(
            a,
            CallAction::Router {
                step: RouterStep::Complete,
                ..
            }
        )
    });
    assert!(unavailable.is_some() && unavailable < complete, "{out:#?}");
    assert!(
        records(&out).is_empty(),
        "written after the wrap-up: {out:#?}"
    );
    assert_eq!(
        calls.agents().state(ANN).map(|s| s.0),
        Some(AgentState::AfterCallWork)
    );
    // Wrap-up is 20 s: then Ann is available again and the record is complete.
    calls.handle_timeout(at(86.0));
    let out = drain(&mut calls);
    let record = records(&out).pop().expect("record written");
    assert_eq!(record.disposition, Disposition::Answered);
    assert_eq!(record.agent, Some(ANN));
    assert_eq!(record.wait, Duration::from_secs(5));
    assert_eq!(record.talk, Duration::from_secs(60));
    assert_eq!(record.wrap_up, Duration::from_secs(20));
    assert_eq!(record.recording.as_deref(), Some("/rec/7.wav"));
    assert_eq!(record.cause, "NORMAL_CLEARING");
    assert!(out.iter().any(|a| matches!(
        a,
        CallAction::Agent {
            agent: ANN,
            step: AgentStep::Available(true)
        }
    )));
    assert_eq!(calls.live_calls(), 0);
}

#[test]
fn the_agent_hanging_up_ends_the_customers_call() {
    let mut calls = center(5, StayOnLine::Never);
    let agent_leg = talking(&mut calls);
    calls.on_media(
        at(30.0),
        &fs(),
        &MediaEvent::HungUp {
            leg: agent_leg,
            cause: HangupCause::normal_clearing(),
        },
    );
    let out = drain(&mut calls);
    assert!(commands(&out).contains(&MediaCommand::Hangup {
        leg: customer(7),
        cause: HangupCause::normal_clearing(),
    }));
    assert_eq!(
        router_steps(&out),
        vec![(ContactId(7), RouterStep::Complete)]
    );
}

#[test]
fn hanging_up_on_request_hangs_up_the_callers_leg_and_the_record_says_why() {
    let mut calls = center(5, StayOnLine::Never);
    let agent_leg = talking(&mut calls);
    assert!(matches!(
        calls.hang_up(ContactId(7), BOB, "hung up by bob"),
        Err(CallError::NotConnected { .. })
    ));
    assert_eq!(calls.hang_up(ContactId(99), ANN, "x"), Ok(false), "no call");
    assert_eq!(calls.hang_up(ContactId(7), ANN, "hung up by ann"), Ok(true));
    let out = drain(&mut calls);
    assert_eq!(
        commands(&out),
        vec![MediaCommand::Hangup {
            leg: customer(7),
            cause: HangupCause::normal_clearing(),
        }]
    );
    assert!(
        router_steps(&out).is_empty(),
        "nothing ends before the switch says so"
    );
    // The switch reports the caller's leg gone: the call ends the usual way.
    calls.on_media(
        at(40.0),
        &fs(),
        &MediaEvent::HungUp {
            leg: customer(7),
            cause: HangupCause::normal_clearing(),
        },
    );
    let out = drain(&mut calls);
    assert!(commands(&out).contains(&MediaCommand::Hangup {
        leg: agent_leg,
        cause: HangupCause::normal_clearing(),
    }));
    assert_eq!(
        router_steps(&out),
        vec![(ContactId(7), RouterStep::Complete)]
    );
    calls.handle_timeout(at(60.0));
    let record = records(&drain(&mut calls)).pop().expect("record written");
    assert_eq!(record.disposition, Disposition::Answered);
    assert_eq!(record.cause, "hung up by ann");
    assert_eq!(
        record.attributes.get("caller").map(String::as_str),
        Some("+49307")
    );
}

#[test]
fn a_removed_agent_is_logged_out_with_the_reason_and_forgotten() {
    let mut calls = center(5, StayOnLine::Never);
    talking(&mut calls);
    assert!(
        calls.remove_agent(at(7.0), ANN, "deleted").is_err(),
        "Ann is on a call"
    );
    calls.remove_agent(at(7.0), BOB, "deleted").unwrap();
    let out = drain(&mut calls);
    assert!(out.iter().any(|a| matches!(
        a,
        CallAction::AgentState(StateChange { agent: BOB, to: AgentState::LoggedOut, reason: Some(r), .. })
            if r == "deleted"
    )));
    assert!(out.iter().any(|a| matches!(
        a,
        CallAction::Agent {
            agent: BOB,
            step: AgentStep::LogOut
        }
    )));
    assert_eq!(calls.agents().state(BOB), None);
    assert_eq!(calls.agent_tenant(BOB), None);
}

#[test]
fn a_phone_that_does_not_answer_is_a_missed_offer_and_the_agent_is_not_ready_with_the_reason() {
    let mut calls = center(5, StayOnLine::Never);
    arrive(&mut calls, at(1.0), 7);
    calls.on_router(at(2.0), &offered(7, BOB, at(2.0)));
    let (leg, _, _) = originated(&drain(&mut calls)).expect("rings");
    calls.on_media(
        at(22.0),
        &fs(),
        &MediaEvent::HungUp {
            leg,
            cause: HangupCause::no_answer(),
        },
    );
    let out = drain(&mut calls);
    assert_eq!(
        router_steps(&out),
        vec![(ContactId(7), RouterStep::Reject(BOB))]
    );
    let (state, _, reason) = calls.agents().state(BOB).expect("known");
    assert_eq!(state, AgentState::Break);
    assert!(
        reason.is_some_and(|r| r.contains("NO_ANSWER")),
        "{reason:?}"
    );
}

#[test]
fn an_offer_the_router_times_out_stops_the_ringing() {
    let mut calls = center(5, StayOnLine::Never);
    arrive(&mut calls, at(1.0), 7);
    calls.on_router(at(2.0), &offered(7, BOB, at(2.0)));
    let (leg, _, _) = originated(&drain(&mut calls)).expect("rings");
    calls.on_router(
        at(22.0),
        &Output::OfferMissed {
            contact: ContactId(7),
            agent: BOB,
            media: crate::model::MediaType::Voice,
            reason: MissReason::TimedOut,
            at: at(22.0),
        },
    );
    let out = drain(&mut calls);
    assert!(commands(&out).contains(&MediaCommand::Hangup {
        leg,
        cause: HangupCause::originator_cancel(),
    }));
}

#[test]
fn a_caller_who_hangs_up_while_waiting_is_abandoned_and_recorded() {
    let mut calls = center(5, StayOnLine::Never);
    arrive(&mut calls, at(1.0), 7);
    drain(&mut calls);
    calls.on_media(
        at(31.0),
        &fs(),
        &MediaEvent::HungUp {
            leg: customer(7),
            cause: HangupCause("ORIGINATOR_CANCEL".to_owned()),
        },
    );
    let out = drain(&mut calls);
    assert_eq!(
        router_steps(&out),
        vec![(ContactId(7), RouterStep::Abandon)]
    );
    let record = records(&out).pop().expect("recorded at once: no agent");
    assert_eq!(record.disposition, Disposition::Abandoned);
    assert_eq!(record.wait, Duration::from_secs(30));
    assert_eq!(record.agent, None);
    // Its trunk is free again: the client's active calls went back to zero.
    assert_eq!(calls.admission().active(T), 0);
}

#[test]
fn an_agent_on_line_is_parked_between_contacts_and_bridged_without_ringing() {
    let mut calls = center(5, StayOnLine::Always);
    let out = drain(&mut calls);
    let (line_leg, target, _) = originated(&out).expect("Ann's line is rung at login");
    assert_eq!(
        target,
        OriginateTarget::SipUser {
            user: "ann".to_owned(),
            domain: None
        }
    );
    calls.on_media(
        at(0.5),
        &fs(),
        &MediaEvent::Answered {
            leg: line_leg.clone(),
        },
    );
    assert!(
        commands(&drain(&mut calls))
            .iter()
            .any(|c| matches!(c, MediaCommand::Park { leg, .. } if *leg == line_leg))
    );

    arrive(&mut calls, at(1.0), 7);
    drain(&mut calls);
    calls.on_router(at(2.0), &offered(7, ANN, at(2.0)));
    let out = drain(&mut calls);
    assert!(originated(&out).is_none(), "no ringing");
    assert_eq!(
        router_steps(&out),
        vec![(ContactId(7), RouterStep::Accept(ANN))]
    );
    assert!(commands(&out).contains(&MediaCommand::Bridge {
        a: customer(7),
        b: line_leg.clone(),
    }));

    calls.on_router(at(2.0), &connected(7, ANN, at(2.0)));
    calls.on_media(
        at(40.0),
        &fs(),
        &MediaEvent::HungUp {
            leg: customer(7),
            cause: HangupCause::normal_clearing(),
        },
    );
    let cmds = commands(&drain(&mut calls));
    assert!(
        cmds.iter()
            .any(|c| matches!(c, MediaCommand::Park { leg, .. } if *leg == line_leg)),
        "back on hold: {cmds:?}"
    );
    assert!(
        !cmds
            .iter()
            .any(|c| matches!(c, MediaCommand::Hangup { leg, .. } if *leg == line_leg)),
        "the line stays up: {cmds:?}"
    );
}

#[test]
fn a_bridge_that_never_happens_sends_the_contact_back_to_its_place() {
    let mut calls = center(5, StayOnLine::Never);
    arrive(&mut calls, at(1.0), 7);
    calls.on_router(at(2.0), &offered(7, ANN, at(2.0)));
    let (leg, _, _) = originated(&drain(&mut calls)).expect("rings");
    calls.on_media(at(6.0), &fs(), &MediaEvent::Answered { leg: leg.clone() });
    calls.on_router(at(6.0), &connected(7, ANN, at(6.0)));
    drain(&mut calls);
    // bridge_timeout_s = 10 and no Bridged event.
    calls.handle_timeout(at(16.5));
    let out = drain(&mut calls);
    assert_eq!(
        router_steps(&out),
        vec![(ContactId(7), RouterStep::BackToQueue)]
    );
    assert!(commands(&out).contains(&MediaCommand::Hangup {
        leg,
        cause: HangupCause::normal_clearing(),
    }));
    assert_eq!(calls.live_calls(), 1, "the caller still waits");
}

#[test]
fn a_call_that_died_with_its_handler_is_ended_with_that_cause_on_resync() {
    let mut calls = center(5, StayOnLine::Never);
    arrive(&mut calls, at(1.0), 7);
    arrive(&mut calls, at(1.0), 8);
    drain(&mut calls);
    calls.on_media(
        at(5.0),
        &fs(),
        &MediaEvent::HandlerDown {
            reason: "connection reset".to_owned(),
        },
    );
    // Back: only contact 8's leg survived.
    let survivor = LegSnapshot {
        leg: customer(8),
        contact: Some(ContactId(8)),
        answered: true,
        bridged_to: None,
    };
    // While it is down, both callers are set aside: no agent is offered them.
    assert_eq!(
        router_steps(&drain(&mut calls)),
        vec![
            (ContactId(7), RouterStep::Hold),
            (ContactId(8), RouterStep::Hold)
        ]
    );
    calls.on_resync(at(9.0), &fs(), &[survivor], at(8.0));
    let out = drain(&mut calls);
    let ended = records(&out);
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].contact, ContactId(7));
    assert_eq!(ended[0].disposition, Disposition::Failed);
    assert!(
        ended[0]
            .cause
            .starts_with("SWITCH_LOST: the call was gone when handler#1 came back"),
        "{}",
        ended[0].cause
    );
    // The lost caller leaves the queue; the survivor waits at its place again.
    assert_eq!(
        router_steps(&out),
        vec![
            (ContactId(7), RouterStep::Abandon),
            (ContactId(8), RouterStep::Release)
        ]
    );
    assert_eq!(calls.live_calls(), 1);
}

#[test]
fn a_ring_on_a_handler_that_goes_down_ends_without_costing_the_agent() {
    let mut calls = center(5, StayOnLine::Never);
    arrive(&mut calls, at(1.0), 7);
    drain(&mut calls);
    calls.on_router(at(2.0), &offered(7, ANN, at(2.0)));
    originated(&drain(&mut calls)).expect("Ann's phone rings");
    calls.on_media(
        at(3.0),
        &fs(),
        &MediaEvent::HandlerDown {
            reason: "connection reset".to_owned(),
        },
    );
    let out = drain(&mut calls);
    // The caller is held (the router withdraws the offer); Ann missed nothing.
    assert_eq!(router_steps(&out), vec![(ContactId(7), RouterStep::Hold)]);
    assert_eq!(
        calls.agents().state(ANN).map(|s| s.0),
        Some(AgentState::Available),
        "{out:#?}"
    );
}

#[test]
fn a_call_that_died_with_its_switch_while_talking_is_a_failure_not_a_normal_end() {
    let mut calls = center(5, StayOnLine::Never);
    let agent_leg = talking(&mut calls);
    calls.on_media(
        at(20.0),
        &fs(),
        &MediaEvent::HandlerDown {
            reason: "connection reset".to_owned(),
        },
    );
    drain(&mut calls);
    // Back and empty: the handler reports both legs gone, with no cause heard.
    for leg in [agent_leg, customer(7)] {
        calls.on_media(
            at(30.0),
            &fs(),
            &MediaEvent::HungUp {
                leg,
                cause: HangupCause::switch_lost(),
            },
        );
    }
    let out = drain(&mut calls);
    assert_eq!(
        router_steps(&out),
        vec![(ContactId(7), RouterStep::Complete)]
    );
    // The record follows Ann's wrap-up (20 s).
    calls.handle_timeout(at(50.0));
    let ended = records(&drain(&mut calls));
    assert_eq!(ended.len(), 1, "{ended:#?}");
    assert_eq!(ended[0].disposition, Disposition::Failed);
    assert!(
        ended[0]
            .cause
            .starts_with("SWITCH_LOST: the call was gone when handler#1 came back (down since"),
        "{}",
        ended[0].cause
    );
}

#[test]
fn a_completed_contact_ended_by_the_router_is_not_completed_twice() {
    let mut calls = center(5, StayOnLine::Never);
    talking(&mut calls);
    calls.on_media(
        at(20.0),
        &fs(),
        &MediaEvent::HungUp {
            leg: customer(7),
            cause: HangupCause::normal_clearing(),
        },
    );
    let first = router_steps(&drain(&mut calls));
    calls.on_router(
        at(20.0),
        &Output::Ended {
            contact: ContactId(7),
            outcome: Outcome::Completed,
            agent: Some(ANN),
            at: at(20.0),
        },
    );
    let second = router_steps(&drain(&mut calls));
    assert_eq!(first, vec![(ContactId(7), RouterStep::Complete)]);
    assert!(second.is_empty(), "{second:?}");
}

#[test]
fn a_call_that_arrived_after_the_handler_listed_its_legs_is_not_ended_by_the_list() {
    let mut calls = center(5, StayOnLine::Never);
    // The handler was asked at 1 s and answered "nothing"; the call arrived at 2 s.
    arrive(&mut calls, at(2.0), 7);
    drain(&mut calls);
    calls.on_resync(at(3.0), &fs(), &[], at(1.0));
    assert!(records(&drain(&mut calls)).is_empty());
    assert_eq!(calls.live_calls(), 1);
}

#[test]
fn after_a_restart_a_waiting_caller_waits_again_and_a_connected_call_goes_on() {
    let mut calls = center(5, StayOnLine::Never);
    drain(&mut calls);
    calls
        .adopt(
            at(1.0),
            fs(),
            customer(7),
            ContactId(7),
            T,
            "sales".to_owned(),
            Adoption::Waiting {
                flow: "sales".to_owned(),
            },
            BTreeMap::new(),
        )
        .unwrap();
    let out = drain(&mut calls);
    // Hold music again, and no second queueing: the router kept its place.
    assert!(
        commands(&out)
            .iter()
            .any(|c| matches!(c, MediaCommand::Park { leg, .. } if *leg == customer(7)))
    );
    assert!(!out.iter().any(|a| matches!(a, CallAction::Enqueue { .. })));

    let ann_leg = LegId::new("sb-8-1-1");
    calls
        .adopt(
            at(1.0),
            fs(),
            customer(8),
            ContactId(8),
            T,
            "sales".to_owned(),
            Adoption::Connected {
                agent: ANN,
                agent_leg: Some(ann_leg.clone()),
                flow: "sales".to_owned(),
            },
            // As stored: the caller's number and what the menu set before the restart.
            BTreeMap::from([
                ("caller".to_owned(), "+4930888".to_owned()),
                ("language".to_owned(), "es".to_owned()),
            ]),
        )
        .unwrap();
    drain(&mut calls);
    // The caller hangs up: Ann's leg is hung up and the contact completes.
    calls.on_media(
        at(30.0),
        &fs(),
        &MediaEvent::HungUp {
            leg: customer(8),
            cause: HangupCause::normal_clearing(),
        },
    );
    let out = drain(&mut calls);
    assert!(commands(&out).contains(&MediaCommand::Hangup {
        leg: ann_leg,
        cause: HangupCause::normal_clearing(),
    }));
    assert_eq!(
        router_steps(&out),
        vec![(ContactId(8), RouterStep::Complete)]
    );
    let record = records(&out).pop().expect("written");
    assert_eq!(record.disposition, Disposition::Answered);
    assert_eq!(record.agent, Some(ANN));
    assert_eq!(record.caller.as_deref(), Some("+4930888"));
    assert_eq!(
        record.attributes.get("language").map(String::as_str),
        Some("es")
    );
}

#[test]
fn after_a_restart_a_call_whose_agent_leg_is_gone_goes_back_to_its_place() {
    let mut calls = center(5, StayOnLine::Never);
    drain(&mut calls);
    calls
        .adopt(
            at(1.0),
            fs(),
            customer(9),
            ContactId(9),
            T,
            "sales".to_owned(),
            Adoption::Connected {
                agent: ANN,
                agent_leg: None,
                flow: "sales".to_owned(),
            },
            BTreeMap::new(),
        )
        .unwrap();
    let out = drain(&mut calls);
    assert_eq!(
        router_steps(&out),
        vec![(ContactId(9), RouterStep::BackToQueue)]
    );
}
