//! Switchboard stops in the middle of the day (its process gone, the switch's calls going on)
//! and starts again on the same store: the caller who was talking to the agent goes on talking
//! and is written down whole when the call ends; the caller who was waiting waits again at its
//! place and reaches the agent; nothing is left open.

#[path = "support/center.rs"]
mod center;

use std::time::Duration;

use center::PASSWORD;
use switchboard::controller::AgentAction;
use switchboard::emulator::asterisk::InboundCall;
use switchboard::model::Disposition;
use switchboard::store::Store;

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

fn caller(number: &str, hangup_after_s: u64) -> InboundCall {
    InboundCall {
        endpoint: "customer".into(),
        extension: "8001".into(),
        caller_name: "Customer".into(),
        caller_number: number.into(),
        dtmf: Vec::new(),
        hangup_after: Some(Duration::from_secs(hangup_after_s)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_survive_a_restart_of_switchboard() {
    let emu = center::fast_asterisk().await;
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}", dir.path().join("switchboard.db").display());
    let phones = [("ann", "agent")];

    let store = Store::open(&url).await.expect("store opens");
    let (controller, task) = center::controller(&emu, store.clone(), CENTER, &phones).await;
    for action in [AgentAction::LogIn, AgentAction::Ready(None)] {
        controller.agent("ann", action).await.expect("agent step");
    }
    // Talking: hangs up 200 emulated seconds (10 s) after dialling.
    emu.place_call(&caller("+4930001", 200)).expect("placed");
    let start = std::time::Instant::now();
    while emu.bridges().is_empty() && start.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!emu.bridges().is_empty(), "the first call was bridged");
    // Waiting: Ann is busy; hangs up 300 emulated seconds (15 s) after dialling.
    emu.place_call(&caller("+4930002", 300)).expect("placed");
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Switchboard goes away; the switch's calls go on.
    drop(controller);
    task.join().await;
    store.close().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        emu.channels().len(),
        3,
        "both callers and Ann's leg are still up"
    );

    let store = Store::open(&url).await.expect("store opens again");
    let (controller, _task) = center::controller(&emu, store.clone(), CENTER, &phones).await;
    for action in [AgentAction::LogIn, AgentAction::Ready(None)] {
        controller.agent("ann", action).await.expect("agent step");
    }
    let found = center::records(&store, 2, Duration::from_secs(30)).await;
    assert_eq!(found.len(), 2, "{found:#?}");
    let first = found
        .iter()
        .find(|c| c.record.disposition == Disposition::Answered && c.record.talk_ms > 0)
        .map(|c| &c.record);
    assert!(first.is_some(), "{found:#?}");
    for cdr in &found {
        assert_eq!(cdr.record.disposition, Disposition::Answered, "{cdr:#?}");
        assert_eq!(cdr.record.agent.as_deref(), Some("ann"), "{cdr:#?}");
    }
    let counts = store.counts_by_state("acme").await.expect("counts");
    assert_eq!(counts.open(), 0, "nothing left open");
    let start = std::time::Instant::now();
    while !emu.channels().is_empty() && start.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(emu.channels().is_empty(), "{:?}", emu.channels());
}

/// A controller whose one Asterisk handler points at an address nothing answers on.
async fn controller_without_its_switch(
    store: Store,
    phones: &[(&str, &str)],
) -> (
    switchboard::controller::Controller,
    switchboard::controller::ControllerTask,
) {
    use std::sync::Arc;
    use switchboard::media::HandlerId;
    use switchboard::media::asterisk::{AsteriskConfig, AsteriskHandler, Credentials};
    center::controller_with(store, CENTER, phones, |events_tx| {
        let ari = AsteriskConfig::new(
            HandlerId(1),
            "http://127.0.0.1:1",
            "cc",
            Credentials::Basic {
                user: "cc".into(),
                password: PASSWORD.into(),
            },
        );
        Arc::new(AsteriskHandler::start(ari, events_tx).expect("handler starts"))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_whose_switch_is_not_reachable_after_a_restart_is_held_until_it_is() {
    let emu = center::fast_asterisk().await;
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}", dir.path().join("switchboard.db").display());
    let phones = [("ann", "agent")];

    // A caller waits (nobody is logged in); it would hang up after 30 s.
    let store = Store::open(&url).await.expect("store opens");
    let (controller, task) = center::controller(&emu, store.clone(), CENTER, &phones).await;
    emu.place_call(&caller("+4930003", 600)).expect("placed");
    let start = std::time::Instant::now();
    while controller
        .contacts("acme", 10)
        .await
        .expect("runs")
        .is_empty()
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the caller waits"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(controller);
    task.join().await;
    store.close().await;

    // Switchboard comes back, but its switch does not answer: the caller it rebuilt from the
    // store is held at its place; Ann, ready, is offered nothing that may not exist.
    let store = Store::open(&url).await.expect("store opens again");
    let (controller, task) = controller_without_its_switch(store.clone(), &phones).await;
    for action in [AgentAction::LogIn, AgentAction::Ready(None)] {
        controller.agent("ann", action).await.expect("agent step");
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let contacts = controller.contacts("acme", 10).await.expect("runs");
    assert_eq!(contacts.len(), 1, "{contacts:?}");
    assert_eq!(contacts[0].phase, "held", "{contacts:?}");
    assert!(contacts[0].agents.is_empty(), "{contacts:?}");
    assert!(emu.bridges().is_empty());
    drop(controller);
    task.join().await;
    store.close().await;

    // With its switch reachable again, the call is found, released at its place, and reaches
    // Ann.
    let store = Store::open(&url).await.expect("store opens again");
    let (controller, _task) = center::controller(&emu, store.clone(), CENTER, &phones).await;
    for action in [AgentAction::LogIn, AgentAction::Ready(None)] {
        controller.agent("ann", action).await.expect("agent step");
    }
    let start = std::time::Instant::now();
    while emu.bridges().is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "bridged to ann: {:?}",
            controller.contacts("acme", 10).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let contacts = controller.contacts("acme", 10).await.expect("runs");
    assert_eq!(contacts[0].phase, "connected", "{contacts:?}");
    assert_eq!(contacts[0].agents, ["ann"], "{contacts:?}");
}
