//! The contact center end to end in front of the FreeSWITCH emulator: a caller dials in, is
//! queued, reaches the agent whose softphone (a directory user) rings and answers, is bridged and
//! recorded, and the call's record is in the store; a caller who gives up is abandoned.

#[path = "support/center.rs"]
mod center;

use std::sync::Arc;
use std::time::Duration;

use switchboard::controller::AgentAction;
use switchboard::emulator::freeswitch::{Emulator, EmulatorOptions, InboundCall};
use switchboard::media::HandlerId;
use switchboard::media::freeswitch::{FreeswitchConfig, FreeswitchHandler};
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

async fn start() -> (Emulator, Store, switchboard::controller::Controller) {
    let mut options = EmulatorOptions::new("ClueCon");
    options.time_scale = 0.05;
    let emu = Emulator::start("127.0.0.1:0".parse().expect("address"), options)
        .await
        .expect("emulator starts");
    let store = Store::open("sqlite::memory:").await.expect("store opens");
    let address = emu.local_addr().to_string();
    let (controller, _task) =
        center::controller_with(store.clone(), CENTER, &[("ann", "1000")], move |events| {
            let mut config = FreeswitchConfig::new(&address, "ClueCon");
            config.backoff.initial = Duration::from_millis(50);
            let handler =
                FreeswitchHandler::start(HandlerId(1), config, events).expect("handler starts");
            Arc::new(handler)
        })
        .await;
    // The handler is connected once the emulator counts its connection.
    let begun = std::time::Instant::now();
    while emu.connections() == 0 && begun.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    (emu, store, controller)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_reaches_the_agent_over_freeswitch_and_the_call_is_written_down() {
    let (emu, store, controller) = start().await;
    for action in [AgentAction::LogIn, AgentAction::Ready(None)] {
        controller.agent("ann", action).await.expect("agent step");
    }
    let mut call = InboundCall::new("+4930777", "8001");
    call.hangup_after = Some(Duration::from_secs(100));
    emu.place_call(&call).expect("placed");
    let found = center::records(&store, 1, Duration::from_secs(20)).await;
    assert_eq!(found.len(), 1, "{found:#?}");
    let r = &found[0].record;
    assert_eq!(r.disposition, Disposition::Answered, "{r:#?}");
    assert_eq!(r.agent.as_deref(), Some("ann"));
    assert_eq!(r.caller, "+4930777");
    assert!(r.talk_ms > 1000, "{r:#?}");
    assert!(r.recording.is_some(), "{r:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_who_gives_up_over_freeswitch_is_abandoned() {
    let (emu, store, _controller) = start().await;
    let mut call = InboundCall::new("+4930888", "8001");
    call.hangup_after = Some(Duration::from_secs(40));
    emu.place_call(&call).expect("placed");
    let found = center::records(&store, 1, Duration::from_secs(20)).await;
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].record.disposition, Disposition::Abandoned);
}
