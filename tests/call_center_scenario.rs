//! A busy hour in front of the Asterisk emulator: many callers, some of whom give up while
//! waiting and some of whom hang up in the middle of their call; agents, a few of whose phones
//! never answer. Whatever happens, every call ends in exactly one record, every stored contact
//! is closed, no agent is left busy, and no channel is left open on the switch.
//!
//! SWITCHBOARD_SCENARIO_CALLERS and SWITCHBOARD_SCENARIO_AGENTS scale it (default 120 and 12,
//! which CI runs; 500 and 50 is the full size).

#[path = "support/center.rs"]
mod center;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use switchboard::controller::AgentAction;
use switchboard::emulator::asterisk::{
    DialBehaviour, EmulatorOptions, EndpointConfig, InboundCall,
};
use switchboard::model::{ContactState, Disposition, Timestamp};

fn scaled(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_of_a_busy_hour_ends_in_exactly_one_record_and_nothing_is_left_open() {
    let callers = scaled("SWITCHBOARD_SCENARIO_CALLERS", 120);
    let agents = scaled("SWITCHBOARD_SCENARIO_AGENTS", 12).max(2);
    // Emulated time runs 20 × faster than real time.
    let scale = 0.05;
    let mut rng = StdRng::seed_from_u64(7);

    let mut config =
        String::from("[[queues]]\nname = \"sales\"\ntenant = \"acme\"\noffer_timeout_s = 2\n");
    let mut options = EmulatorOptions::capture(center::PASSWORD);
    options.time_scale = scale;
    options.rtp = false;
    let mut phones = Vec::new();
    for i in 0..agents {
        let name = format!("agent{i}");
        let _ = write!(
            config,
            "\n[[agents]]\nname = \"{name}\"\ntenant = \"acme\"\nqueues = [\"sales\"]\n"
        );
        // One phone in six never answers: its offers time out and its agent is set not ready.
        let behaviour = if i % 6 == 5 {
            DialBehaviour::NoAnswer
        } else {
            DialBehaviour::Answer {
                ring: Duration::from_secs(rng.random_range(1..6)),
            }
        };
        options.world.endpoints.push(EndpointConfig {
            resource: format!("phone{i}"),
            context: "cc-inbound".into(),
            behaviour,
        });
        phones.push((name, format!("phone{i}")));
    }
    let phone_refs: Vec<(&str, &str)> = phones
        .iter()
        .map(|(a, p)| (a.as_str(), p.as_str()))
        .collect();
    let c = center::center(options, &config, &phone_refs).await;
    for (name, _) in &phones {
        for action in [AgentAction::LogIn, AgentAction::Ready(None)] {
            c.controller.agent(name, action).await.expect("agent step");
        }
    }

    // Callers arrive over about ten real seconds and hang up after 10 to 240 emulated seconds:
    // early ones give up in the queue, late ones in the middle of their call.
    for i in 0..callers {
        let hangup = Duration::from_secs(rng.random_range(10..240));
        c.emu
            .place_call(&InboundCall {
                endpoint: "customer".into(),
                extension: "8001".into(),
                caller_name: format!("Caller {i}"),
                caller_number: format!("+49301{i:04}"),
                dtmf: Vec::new(),
                hangup_after: Some(hangup),
            })
            .expect("the call is placed");
        tokio::time::sleep(Duration::from_millis(10_000 / callers as u64)).await;
    }

    let found = center::records(&c.store, callers, Duration::from_secs(60)).await;
    let mut by_disposition: BTreeMap<&str, usize> = BTreeMap::new();
    for cdr in &found {
        *by_disposition
            .entry(cdr.record.disposition.code())
            .or_default() += 1;
    }
    assert_eq!(
        found.len(),
        callers,
        "one record per call: {by_disposition:?}"
    );
    let mut contacts: Vec<u64> = found.iter().map(|c| c.record.contact.0).collect();
    contacts.sort_unstable();
    contacts.dedup();
    assert_eq!(contacts.len(), callers, "no call written twice");
    // The mix a busy hour has: served calls and callers who gave up.
    assert!(
        by_disposition.get("answered").copied().unwrap_or(0) > 0
            && by_disposition.get("abandoned").copied().unwrap_or(0) > 0,
        "{by_disposition:?}"
    );
    for cdr in &found {
        let r = &cdr.record;
        match r.disposition {
            // Recorded from the bridge on; a caller who hangs up as the agent answers is
            // answered but never bridged.
            Disposition::Answered => assert!(
                r.agent.is_some() && (r.recording.is_some() || r.talk_ms < 2000),
                "{r:#?}"
            ),
            Disposition::Abandoned => assert!(r.agent.is_none(), "{r:#?}"),
            other => panic!("unexpected {other:?}: {r:#?}"),
        }
    }

    // Every stored contact is closed.
    let counts = c.store.counts_by_state("acme").await.expect("counts");
    assert_eq!(
        counts.open(),
        0,
        "open contacts left: queued {} offered {} connected {}",
        counts.get(ContactState::Queued),
        counts.get(ContactState::Offered),
        counts.get(ContactState::Connected)
    );
    // No agent is left offered or busy (after-call work ends after 0.3 s).
    tokio::time::sleep(Duration::from_millis(600)).await;
    for (name, _) in &phones {
        let states = c
            .store
            .agent_states(
                "acme",
                name,
                Timestamp::from_secs(0),
                Timestamp::now().plus(Duration::from_secs(60)),
                None,
            )
            .await
            .expect("history");
        let last = states.last().map(|s| s.state.code());
        assert!(
            !matches!(last, Some("offered" | "busy")),
            "{name} left {last:?}"
        );
    }
    // Nothing is left open on the switch.
    let start = std::time::Instant::now();
    while !c.emu.channels().is_empty() && start.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(c.emu.channels().is_empty(), "{:?}", c.emu.channels());
    eprintln!("busy hour: {callers} callers, {agents} agents: {by_disposition:?}");
}
