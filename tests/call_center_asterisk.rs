//! The contact center end to end in front of the Asterisk emulator: a caller dials in, is
//! admitted, queued, offered to the agent whose phone rings and answers, bridged and recorded;
//! the caller hangs up, the agent wraps up, and the call's record is in the store with who,
//! how long and why. A caller who hangs up while waiting is written down as abandoned.

#[path = "support/ari.rs"]
mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use switchboard::admission::{Admission, AdmissionSettings, ClientTrunks};
use switchboard::agents::{AgentManager, AgentTimers, StayOnLine};
use switchboard::config::Config;
use switchboard::controller::calls::{AgentLine, CallSettings, Calls};
use switchboard::controller::telephony::TelephonySetup;
use switchboard::controller::{AgentAction, Controller, DurableRouter};
use switchboard::emulator::asterisk::{Emulator, InboundCall};
use switchboard::flow::{Flow, FlowEngine};
use switchboard::media::asterisk::{AsteriskConfig, AsteriskHandler, BackoffPolicy, Credentials};
use switchboard::media::{HandlerId, MediaHandler, OriginateTarget};
use switchboard::model::{Disposition, Timestamp};
use switchboard::store::{CdrFilter, Store};
use tokio::sync::mpsc;

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

const FLOW: &str = r#"
name = "sales"
[[steps]]
queue = { name = "sales", music = "default", bridge_timeout_s = 10 }
"#;

struct Center {
    emu: Emulator,
    store: Store,
    controller: Controller,
}

/// The emulator at `scale` × real time, SQLite in memory, and a controller driving both, with
/// agent Ann (SIP user `agent` on the emulator, which answers after 2 emulated seconds).
async fn center(scale: f64) -> Center {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "off".into()))
        .with_test_writer()
        .try_init();
    let emu = support::emulator(scale).await;
    let config = Config::load_from_str(CENTER, "test.toml", Vec::<(String, String)>::new())
        .expect("the test center is valid");
    let resolved = config.resolve().expect("resolves");
    let store = Store::open("sqlite::memory:").await.expect("store opens");
    let (router, _) = DurableRouter::open(resolved.clone(), store.clone(), Timestamp::now())
        .await
        .expect("router opens");
    let catalog = router.catalog().clone();
    let ann = catalog.agent_id("ann").expect("ann exists");
    let acme = catalog.tenant_id("acme").expect("acme exists");

    let mut flows = FlowEngine::new();
    flows.add_flow(Flow::from_toml(FLOW, "sales.toml").expect("flow parses"));
    let timers = AgentTimers {
        wrap_up: Duration::from_millis(300),
        ..AgentTimers::default()
    };
    let mut admission = Admission::new(AdmissionSettings::default());
    admission.set_client(
        acme,
        ClientTrunks {
            ratio: 2.0,
            after_hours: 4,
        },
    );
    let mut calls = Calls::new(
        CallSettings {
            recordings: Some("/var/spool/switchboard".to_owned()),
            ring_timeout: Duration::from_secs(10),
            ..CallSettings::default()
        },
        flows,
        AgentManager::new(timers),
        admission,
    );
    calls.add_agent(
        ann,
        acme,
        AgentLine {
            target: OriginateTarget::SipUser {
                user: "agent".to_owned(),
                domain: None,
            },
            stay_on_line: StayOnLine::Never,
        },
    );

    let (events_tx, events) = mpsc::channel(4096);
    let mut ari = AsteriskConfig::new(
        HandlerId(1),
        &emu.base_url(),
        "cc",
        Credentials::Basic {
            user: "cc".into(),
            password: support::PASSWORD.into(),
        },
    );
    ari.backoff = BackoffPolicy {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(400),
    };
    let handler = AsteriskHandler::start(ari, events_tx).expect("handler starts");
    let handler: Arc<dyn MediaHandler> = Arc::new(handler);
    let setup = TelephonySetup {
        calls,
        handlers: vec![(handler, 1.0)],
        numbers: BTreeMap::from([("*".to_owned(), "sales".to_owned())]),
        queue_flows: BTreeMap::from([("sales".to_owned(), "sales".to_owned())]),
        events,
    };
    let (controller, _task) = Controller::spawn_with_calls(router, setup);
    // Asterisk sends a call into Stasis only while the application's socket is connected.
    let start = std::time::Instant::now();
    while emu.sockets() == 0 && start.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Center {
        emu,
        store,
        controller,
    }
}

/// Waits until `acme` has `n` records, or fails after `limit`.
async fn records(store: &Store, n: usize, limit: Duration) -> Vec<switchboard::store::Cdr> {
    let start = std::time::Instant::now();
    loop {
        let page = store
            .cdrs("acme", &CdrFilter::default())
            .await
            .expect("lists");
        if page.cdrs.len() >= n || start.elapsed() > limit {
            return page.cdrs;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_reaches_the_agent_and_the_call_is_written_down_after_wrap_up() {
    let c = center(0.05).await;
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
    let c = center(0.05).await;
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
