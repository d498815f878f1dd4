//! Shared by the call-center tests: a controller with the calls side in front of the Asterisk
//! emulator, on SQLite in memory.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use switchboard::admission::{Admission, AdmissionSettings, ClientTrunks};
use switchboard::agents::{AgentManager, AgentTimers, StayOnLine};
use switchboard::config::Config;
use switchboard::controller::calls::{AgentLine, CallSettings, Calls};
use switchboard::controller::telephony::TelephonySetup;
use switchboard::controller::{Controller, ControllerTask, DurableRouter};
use switchboard::emulator::asterisk::{Emulator, EmulatorOptions};
use switchboard::flow::{Flow, FlowEngine};
use switchboard::media::asterisk::{AsteriskConfig, AsteriskHandler, BackoffPolicy, Credentials};
use switchboard::media::{HandlerEvent, HandlerId, MediaHandler, OriginateTarget};
use switchboard::model::Timestamp;
use switchboard::store::{Cdr, CdrFilter, Store};
use tokio::sync::mpsc;

/// The ARI user's password.
pub const PASSWORD: &str = "secret";

/// The flow every caller of `sales` hears: hold music until an agent answers.
pub const FLOW: &str = r#"
name = "sales"
[[steps]]
queue = { name = "sales", music = "default", bridge_timeout_s = 10 }
"#;

/// A running center.
pub struct Center {
    /// The emulated Asterisk.
    pub emu: Emulator,
    /// The store.
    pub store: Store,
    /// The controller.
    pub controller: Controller,
    /// Its task.
    pub task: ControllerTask,
}

/// A center for `config` (queues and agents of tenant `acme`) whose agents' phones are the
/// emulator's PJSIP endpoints named in `phones` (agent name → endpoint).
pub async fn center(options: EmulatorOptions, config: &str, phones: &[(&str, &str)]) -> Center {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "off".into()))
        .with_test_writer()
        .try_init();
    let emu = Emulator::start(std::net::SocketAddr::from(([127, 0, 0, 1], 0)), options)
        .await
        .expect("emulator starts");
    let store = Store::open("sqlite::memory:").await.expect("store opens");
    let (controller, task) = controller(&emu, store.clone(), config, phones).await;
    Center {
        emu,
        store,
        controller,
        task,
    }
}

/// An Asterisk emulator on 127.0.0.1 (user `cc`, [`PASSWORD`]) at 1/20 of real time, without
/// RTP: what the center tests drive.
pub async fn fast_asterisk() -> Emulator {
    let mut options = EmulatorOptions::capture(PASSWORD);
    options.time_scale = 0.05;
    options.rtp = false;
    Emulator::start(std::net::SocketAddr::from(([127, 0, 0, 1], 0)), options)
        .await
        .expect("emulator starts")
}

/// A controller (with the calls side) for `config` on `store`, driving `emu`; returns once
/// the emulator sees its events socket.
pub async fn controller(
    emu: &Emulator,
    store: Store,
    config: &str,
    phones: &[(&str, &str)],
) -> (Controller, ControllerTask) {
    let sockets_before = emu.sockets();
    let base_url = emu.base_url();
    let started = controller_with(store, config, phones, move |events_tx| {
        let mut ari = AsteriskConfig::new(
            HandlerId(1),
            &base_url,
            "cc",
            Credentials::Basic {
                user: "cc".into(),
                password: PASSWORD.into(),
            },
        );
        ari.backoff = BackoffPolicy {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(400),
        };
        let handler = AsteriskHandler::start(ari, events_tx).expect("handler starts");
        Arc::new(handler)
    })
    .await;
    // Asterisk sends a call into Stasis only while the application's socket is connected.
    let start = std::time::Instant::now();
    while emu.sockets() <= sockets_before && start.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    started
}

/// A controller (with the calls side) for `config` on `store`, with the one handler `start`
/// makes from the events channel.
pub async fn controller_with(
    store: Store,
    config: &str,
    phones: &[(&str, &str)],
    start: impl FnOnce(mpsc::Sender<HandlerEvent>) -> Arc<dyn MediaHandler>,
) -> (Controller, ControllerTask) {
    let lines: Vec<(&str, &str, StayOnLine)> = phones
        .iter()
        .map(|(agent, endpoint)| (*agent, *endpoint, StayOnLine::Never))
        .collect();
    controller_with_handlers(store, config, &lines, move |events_tx| {
        vec![(start(events_tx), 1.0)]
    })
    .await
}

/// A controller (with the calls side) for `config` on `store`, whose agents' lines are
/// `lines` (agent name, SIP user, stay-on-line), with every handler (and its pool weight)
/// that `start` makes from the one events channel they share.
pub async fn controller_with_handlers(
    store: Store,
    config: &str,
    lines: &[(&str, &str, StayOnLine)],
    start: impl FnOnce(mpsc::Sender<HandlerEvent>) -> Vec<(Arc<dyn MediaHandler>, f64)>,
) -> (Controller, ControllerTask) {
    controller_with_flow(store, config, FLOW, lines, start).await
}

/// As [`controller_with_handlers`], with `flow` (the text of a flow file named `sales`) as
/// what the callers of `sales` hear.
pub async fn controller_with_flow(
    store: Store,
    config: &str,
    flow: &str,
    lines: &[(&str, &str, StayOnLine)],
    start: impl FnOnce(mpsc::Sender<HandlerEvent>) -> Vec<(Arc<dyn MediaHandler>, f64)>,
) -> (Controller, ControllerTask) {
    let config = Config::load_from_str(config, "test.toml", Vec::<(String, String)>::new())
        .expect("the test center is valid");
    let resolved = config.resolve().expect("resolves");
    let (router, _) = DurableRouter::open(resolved, store, Timestamp::now())
        .await
        .expect("router opens");
    let catalog = router.catalog().clone();
    let acme = catalog.tenant_id("acme").expect("acme exists");

    let mut flows = FlowEngine::new();
    flows.add_flow(Flow::from_toml(flow, "sales.toml").expect("flow parses"));
    let timers = AgentTimers {
        wrap_up: Duration::from_millis(300),
        ..AgentTimers::default()
    };
    let mut admission = Admission::new(AdmissionSettings::default());
    admission.set_client(
        acme,
        ClientTrunks {
            ratio: 2.0,
            after_hours: 1000,
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
    for (name, endpoint, stay_on_line) in lines {
        let agent = catalog.agent_id(name).expect("agent exists");
        calls.add_agent(
            agent,
            acme,
            AgentLine {
                target: OriginateTarget::SipUser {
                    user: (*endpoint).to_owned(),
                    domain: None,
                },
                stay_on_line: *stay_on_line,
            },
        );
    }
    let (events_tx, events) = mpsc::channel(4096);
    let handlers = start(events_tx);
    let setup = TelephonySetup {
        calls,
        handlers,
        numbers: BTreeMap::from([("*".to_owned(), "sales".to_owned())]),
        queue_flows: BTreeMap::from([("sales".to_owned(), "sales".to_owned())]),
        events,
    };
    Controller::spawn_with_calls(router, setup)
}

/// Every record of `acme`, once there are at least `n` (or `limit` has passed).
pub async fn records(store: &Store, n: usize, limit: Duration) -> Vec<Cdr> {
    records_of(store, "acme", n, limit).await
}

/// As [`records`], of client `tenant`.
pub async fn records_of(store: &Store, tenant: &str, n: usize, limit: Duration) -> Vec<Cdr> {
    let start = std::time::Instant::now();
    loop {
        let mut all = Vec::new();
        let mut filter = CdrFilter {
            limit: Some(1000),
            ..CdrFilter::default()
        };
        loop {
            let page = store.cdrs(tenant, &filter).await.expect("lists");
            all.extend(page.cdrs);
            match page.next {
                Some(next) => filter.after = Some(next),
                None => break,
            }
        }
        if all.len() >= n || start.elapsed() > limit {
            return all;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The FreeSWITCH (handler#1, ESL at `fs_addr`, password `ClueCon`) and the Asterisk
/// (handler#2, ARI at `ari_url`, user `cc`) of a center that drives both, reconnecting within
/// 50–400 ms: for [`controller_with_handlers`] and [`controller_with_flow`].
pub fn both_switches(
    fs_addr: &str,
    ari_url: &str,
    events: mpsc::Sender<HandlerEvent>,
) -> Vec<(Arc<dyn MediaHandler>, f64)> {
    use switchboard::media::freeswitch::{FreeswitchConfig, FreeswitchHandler};
    let backoff = BackoffPolicy {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(400),
    };
    let mut esl = FreeswitchConfig::new(fs_addr, "ClueCon");
    esl.backoff = backoff;
    let fs = FreeswitchHandler::start(HandlerId(1), esl, events.clone()).expect("ESL starts");
    let mut ari = AsteriskConfig::new(
        HandlerId(2),
        ari_url,
        "cc",
        Credentials::Basic {
            user: "cc".into(),
            password: PASSWORD.into(),
        },
    );
    ari.backoff = backoff;
    let ast = AsteriskHandler::start(ari, events).expect("ARI starts");
    vec![
        (Arc::new(fs) as Arc<dyn MediaHandler>, 1.0),
        (Arc::new(ast) as Arc<dyn MediaHandler>, 1.0),
    ]
}
