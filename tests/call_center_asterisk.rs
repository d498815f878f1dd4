//! The contact center end to end in front of the Asterisk emulator: a caller dials in, is
//! admitted, queued, offered to the agent whose phone rings and answers, bridged and recorded;
//! the caller hangs up, the agent wraps up, and the call's record is in the store with who,
//! how long and why. A caller who hangs up while waiting is written down as abandoned.

#[path = "support/center.rs"]
mod center;

use std::time::Duration;

use center::{PASSWORD, center, records};
use switchboard::controller::AgentAction;
use switchboard::emulator::asterisk::{EmulatorOptions, InboundCall};
use switchboard::model::{Disposition, Timestamp};

const CENTER: &str = r#"
[[queues]]
name = "sales"
tenant = "acme"
offer_timeout_s = 20

[[agents]]
name = "ann"
tenant = "acme"
queues = ["sales"]
"#;

/// The capture machine's switch at 20 × real time; Ann's phone is its `agent` endpoint.
async fn start() -> center::Center {
    let mut options = EmulatorOptions::capture(PASSWORD);
    options.time_scale = 0.05;
    options.rtp = false;
    center(options, CENTER, &[("ann", "agent")]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_reaches_the_agent_and_the_call_is_written_down_after_wrap_up() {
    let c = start().await;
    let mut portal = c.controller.notices().expect("the calls side runs");
    for action in [AgentAction::LogIn, AgentAction::Ready(None)] {
        c.controller.agent("ann", action).await.expect("agent step");
    }
    // The caller hangs up 100 emulated seconds (5 s) after dialling.
    c.emu
        .place_call(&InboundCall {
            endpoint: "customer".into(),
            extension: "8001".into(),
            caller_name: "Customer".into(),
            caller_number: "+4930123".into(),
            dtmf: Vec::new(),
            hangup_after: Some(Duration::from_secs(100)),
        })
        .expect("the call is placed");
    let found = records(&c.store, 1, Duration::from_secs(20)).await;
    assert_eq!(found.len(), 1, "one record: {found:#?}");
    let r = &found[0].record;
    assert_eq!(r.disposition, Disposition::Answered, "{r:#?}");
    assert_eq!(r.agent.as_deref(), Some("ann"));
    assert_eq!(r.queue, "sales");
    assert_eq!(r.caller, "+4930123");
    assert!(r.answered_at.is_some());
    assert!(r.talk_ms > 1000, "talked for a while: {r:#?}");
    assert!(r.wrap_up_ms >= 250, "wrap-up counted: {r:#?}");
    let recording = r.recording.as_deref().expect("recorded");
    assert!(
        recording.contains(&r.contact.0.to_string()),
        "named after the contact: {recording}"
    );
    // Ann's day is in the store: offered, busy, after-call work, available.
    let states: Vec<&str> = c
        .store
        .agent_states(
            "acme",
            "ann",
            Timestamp::from_secs(0),
            Timestamp::now().plus(Duration::from_secs(60)),
            None,
        )
        .await
        .expect("history")
        .iter()
        .map(|s| s.state.code())
        .collect();
    for state in ["offered", "busy", "acw"] {
        assert!(states.contains(&state), "{state} missing from {states:?}");
    }
    // Ann's portal popped the caller, then followed the call.
    let mut seen = Vec::new();
    while let Ok(notice) = portal.try_recv() {
        assert_eq!(notice.agent, "ann");
        seen.push((notice.event, notice.caller.clone()));
    }
    assert_eq!(
        seen.first(),
        Some(&("offered", Some("+4930123".to_owned()))),
        "{seen:?}"
    );
    assert!(seen.iter().any(|(e, _)| *e == "connected"), "{seen:?}");
    assert!(seen.iter().any(|(e, _)| *e == "ended"), "{seen:?}");
    // Nothing is left on the switch.
    assert!(c.emu.channels().is_empty(), "{:?}", c.emu.channels());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_who_gives_up_while_waiting_is_written_down_as_abandoned() {
    let c = start().await;
    // Nobody logged in: the caller waits with music, then hangs up after 40 emulated seconds.
    c.emu
        .place_call(&InboundCall {
            endpoint: "customer".into(),
            extension: "8001".into(),
            caller_name: "Customer".into(),
            caller_number: "+4930999".into(),
            dtmf: Vec::new(),
            hangup_after: Some(Duration::from_secs(40)),
        })
        .expect("the call is placed");
    let found = records(&c.store, 1, Duration::from_secs(20)).await;
    assert_eq!(found.len(), 1, "{found:#?}");
    let r = &found[0].record;
    assert_eq!(r.disposition, Disposition::Abandoned, "{r:#?}");
    assert_eq!(r.agent, None);
    assert!(r.wait_ms >= 1500, "waited about 2 s: {r:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_goes_on_when_the_switch_connection_drops_and_is_readopted() {
    let c = start().await;
    for action in [AgentAction::LogIn, AgentAction::Ready(None)] {
        c.controller.agent("ann", action).await.expect("agent step");
    }
    c.emu
        .place_call(&InboundCall {
            endpoint: "customer".into(),
            extension: "8001".into(),
            caller_name: "Customer".into(),
            caller_number: "+4930555".into(),
            dtmf: Vec::new(),
            hangup_after: Some(Duration::from_secs(120)),
        })
        .expect("the call is placed");
    // Wait for the bridge (Ann answers after 2 emulated seconds), then cut the socket.
    let start = std::time::Instant::now();
    while c.emu.bridges().is_empty() && start.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!c.emu.bridges().is_empty(), "the call was bridged");
    c.emu.drop_sockets();
    // The handler reconnects and resyncs; the caller hangs up later, on the new socket.
    let found = records(&c.store, 1, Duration::from_secs(20)).await;
    assert_eq!(found.len(), 1, "{found:#?}");
    let r = &found[0].record;
    assert_eq!(r.disposition, Disposition::Answered, "{r:#?}");
    assert_eq!(r.agent.as_deref(), Some("ann"));
    assert!(r.talk_ms > 4000, "the call went on to its end: {r:#?}");
    // The recording asked for as the socket dropped was sent once the handler was back.
    assert!(r.recording.is_some(), "{r:#?}");
    assert!(c.emu.sockets() >= 1, "reconnected");
}
