//! One of two switches dies in the middle of the day and comes back. Switchboard drives a
//! FreeSWITCH (handler#1, over ESL) and an Asterisk (handler#2, over ARI) at once, and every
//! agent's phone is reachable on both. The FreeSWITCH process goes away with a caller talking to
//! an agent: new callers keep reaching agents over the Asterisk, and an agent who keeps a line
//! open gets it there; once the FreeSWITCH is back (empty, as a restarted switch is), the call
//! that died with it is closed with a record, its callers reach agents again, and it takes
//! agents' lines again. Asserted on the records in the store and on the channels each switch
//! holds. Runs on a SQLite file, and on PostgreSQL when `SWITCHBOARD_TEST_POSTGRES_URL` names a
//! server.

#[path = "support/center.rs"]
mod center;
#[path = "support/store_harness.rs"]
mod harness;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use switchboard::agents::StayOnLine;
use switchboard::controller::telephony::AgentNotice;
use switchboard::controller::{AgentAction, Controller};
use switchboard::emulator::{asterisk, freeswitch};
use switchboard::media::HandlerId;
use switchboard::model::Disposition;
use switchboard::store::{Cdr, Store};
use tokio::sync::broadcast;

/// Callers dial `sales` (ann, bob, cid); dora and eve keep a line open for `support`, which
/// nobody calls.
const CENTER: &str = r#"
[[queues]]
name = "sales"
tenant = "acme"
offer_timeout_s = 20

[[queues]]
name = "support"
tenant = "acme"
offer_timeout_s = 20

[[agents]]
name = "ann"
tenant = "acme"
queues = ["sales"]

[[agents]]
name = "bob"
tenant = "acme"
queues = ["sales"]

[[agents]]
name = "cid"
tenant = "acme"
queues = ["sales"]

[[agents]]
name = "dora"
tenant = "acme"
queues = ["support"]

[[agents]]
name = "eve"
tenant = "acme"
queues = ["support"]
"#;

/// Agent → SIP user: FreeSWITCH directory users 1000–1019 exist on the emulator; the Asterisk
/// emulator gets PJSIP endpoints of the same names.
const LINES: [(&str, &str, StayOnLine); 5] = [
    ("ann", "1000", StayOnLine::Never),
    ("bob", "1001", StayOnLine::Never),
    ("cid", "1002", StayOnLine::Never),
    ("dora", "1003", StayOnLine::Always),
    ("eve", "1004", StayOnLine::Always),
];

const FREESWITCH: HandlerId = HandlerId(1);
const ASTERISK: HandlerId = HandlerId(2);

/// Emulated time runs 20 × faster than real time.
const SCALE: f64 = 0.05;

/// How long any one step may take before the test fails.
const STEP: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_switch_loses_only_its_own_calls_and_takes_calls_again_when_back_on_sqlite() {
    let file = harness::SqliteFile::new();
    a_dead_switch_loses_only_its_own_calls(file.url.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_switch_loses_only_its_own_calls_and_takes_calls_again_when_back_on_postgres() {
    harness::on_postgres(a_dead_switch_loses_only_its_own_calls).await;
}

async fn a_dead_switch_loses_only_its_own_calls(url: String) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "off".into()))
        .with_test_writer()
        .try_init();
    let fs = start_freeswitch("127.0.0.1:0".parse().expect("address")).await;
    let fs_addr = fs.local_addr();
    let ast = start_asterisk().await;
    let store = Store::open(&url)
        .await
        .unwrap_or_else(|e| panic!("opening {url}: {e}"));
    let (controller, _task) = {
        let fs_addr = fs_addr.to_string();
        let ari_url = ast.base_url();
        center::controller_with_handlers(store.clone(), CENTER, &LINES, move |events| {
            center::both_switches(&fs_addr, &ari_url, events)
        })
        .await
    };
    wait_until("both switches see Switchboard", || {
        fs.connections() > 0 && ast.sockets() > 0
    })
    .await;
    let mut portal = controller.notices().expect("the calls side runs");
    for agent in ["ann", "bob"] {
        ready(&controller, agent).await;
    }

    // Before: one caller talks over each switch.
    fs.place_call(&fs_caller("+4930101", None))
        .expect("placed on FreeSWITCH");
    let talking_on_fs = connected(&mut portal, "+4930101").await;
    ast.place_call(&ast_caller("+4930201", 60))
        .expect("placed on Asterisk");
    let talking_on_ast = connected(&mut portal, "+4930201").await;
    assert_eq!(fs.channels().len(), 2, "the caller and the agent's leg");

    // The FreeSWITCH process dies, and its calls with it.
    fs.shutdown().await;

    // While it is away, new callers reach agents over the Asterisk; cid starts his shift.
    ready(&controller, "cid").await;
    ast.place_call(&ast_caller("+4930202", 160))
        .expect("placed on Asterisk");
    ast.place_call(&ast_caller("+4930203", 160))
        .expect("placed on Asterisk");
    for caller in ["+4930202", "+4930203"] {
        let agent = connected(&mut portal, caller).await;
        assert_ne!(
            agent, talking_on_fs,
            "{caller} went to the agent whose call is on the dead switch"
        );
    }
    // An agent who keeps a line open gets it on the switch that is up.
    controller
        .agent("dora", AgentAction::LogIn)
        .await
        .expect("dora logs in");
    wait_until("dora's line is up on the Asterisk", || {
        ast.channels().iter().any(|c| is_line(c))
    })
    .await;
    let during = center::records(&store, 3, STEP).await;
    for caller in ["+4930201", "+4930202", "+4930203"] {
        let r = record_of(&during, caller);
        assert_eq!(r.disposition, Disposition::Answered, "{r:#?}");
        assert_eq!(r.handler, Some(ASTERISK), "{r:#?}");
        assert!(r.agent.is_some(), "{r:#?}");
        assert!(r.talk_ms > 1000, "talked for a while: {r:#?}");
    }
    assert_eq!(
        record_of(&during, "+4930201").agent.as_deref(),
        Some(talking_on_ast.as_str())
    );
    assert_eq!(
        during.len(),
        3,
        "nothing of the dead switch is written yet: {during:#?}"
    );

    // The FreeSWITCH comes back (restarted: no channels) on the same address.
    let fs = start_freeswitch(fs_addr).await;
    let after = center::records(&store, 4, STEP).await;
    assert_eq!(after.len(), 4, "every call has one record: {after:#?}");
    // The call that died with the switch is closed, on the switch and the agent it had, as a
    // failure whose cause says so (not as a call that ended normally).
    let lost = record_of(&after, "+4930101");
    assert_eq!(lost.handler, Some(FREESWITCH), "{lost:#?}");
    assert_eq!(lost.agent.as_deref(), Some(talking_on_fs.as_str()));
    assert_eq!(lost.disposition, Disposition::Failed, "{lost:#?}");
    let cause = lost.cause.as_deref().unwrap_or_default();
    assert!(
        cause.starts_with("SWITCH_LOST: the call was gone when handler"),
        "{lost:#?}"
    );

    // Its callers reach agents again, the agent of the lost call among them.
    fs.place_call(&fs_caller("+4930103", Some(60)))
        .expect("placed on FreeSWITCH");
    connected(&mut portal, "+4930103").await;
    let last = center::records(&store, 5, STEP).await;
    let r = record_of(&last, "+4930103");
    assert_eq!(r.disposition, Disposition::Answered, "{r:#?}");
    assert_eq!(r.handler, Some(FREESWITCH), "{r:#?}");
    // The FreeSWITCH takes agents' lines again (healthy again; at equal load the pool picks
    // the lower id).
    controller
        .agent("eve", AgentAction::LogIn)
        .await
        .expect("eve logs in");
    wait_until("eve's line is up on the FreeSWITCH", || {
        fs.channels().iter().any(|c| is_line(c.as_str()))
    })
    .await;

    // Nothing is left open: every stored contact is closed, and the switches hold only the
    // two agents' lines.
    let counts = store.counts_by_state("acme").await.expect("counts");
    assert_eq!(counts.open(), 0, "nothing left open: {counts:?}");
    assert_eq!(ast.channels().len(), 1, "dora's line: {:?}", ast.channels());
    assert_eq!(fs.channels().len(), 1, "eve's line: {:?}", fs.channels());

    // The pool goes by the loads the switches have now: with a caller talking over the
    // FreeSWITCH (two legs) and only dora's line on the Asterisk (one), eve's line, opened
    // again, goes to the Asterisk though the FreeSWITCH has the lower id.
    controller
        .agent("eve", AgentAction::LogOut)
        .await
        .expect("eve logs out");
    wait_until("eve's line is gone", || fs.channels().is_empty()).await;
    fs.place_call(&fs_caller("+4930104", Some(200)))
        .expect("placed on FreeSWITCH");
    connected(&mut portal, "+4930104").await;
    assert_eq!(fs.channels().len(), 2, "the caller and the agent's leg");
    controller
        .agent("eve", AgentAction::LogIn)
        .await
        .expect("eve logs in");
    wait_until("eve's line is up on the Asterisk", || {
        ast.channels().iter().filter(|c| is_line(c)).count() == 2
    })
    .await;
    assert!(
        !fs.channels().iter().any(|c| is_line(c.as_str())),
        "{:?}",
        fs.channels()
    );
}

async fn start_freeswitch(listen: SocketAddr) -> freeswitch::Emulator {
    let mut options = freeswitch::EmulatorOptions::new("ClueCon");
    options.time_scale = SCALE;
    freeswitch::Emulator::start(listen, options)
        .await
        .unwrap_or_else(|e| panic!("the FreeSWITCH emulator starts on {listen}: {e}"))
}

async fn start_asterisk() -> asterisk::Emulator {
    let mut options = asterisk::EmulatorOptions::capture(center::PASSWORD);
    options.time_scale = SCALE;
    options.rtp = false;
    for (_, user, _) in LINES {
        options.world.endpoints.push(asterisk::EndpointConfig {
            resource: user.to_owned(),
            context: "cc-inbound".into(),
            behaviour: asterisk::DialBehaviour::Answer {
                ring: Duration::from_secs(2),
            },
        });
    }
    asterisk::Emulator::start("127.0.0.1:0".parse().expect("address"), options)
        .await
        .expect("the Asterisk emulator starts")
}

/// A caller on the FreeSWITCH who hangs up `hangup_after_s` emulated seconds after dialling
/// (`None`: never).
fn fs_caller(number: &str, hangup_after_s: Option<u64>) -> freeswitch::InboundCall {
    let mut call = freeswitch::InboundCall::new(number, "8001");
    call.hangup_after = hangup_after_s.map(Duration::from_secs);
    call
}

/// A caller on the Asterisk who hangs up `hangup_after_s` emulated seconds after dialling.
fn ast_caller(number: &str, hangup_after_s: u64) -> asterisk::InboundCall {
    asterisk::InboundCall {
        endpoint: "customer".into(),
        extension: "8001".into(),
        caller_name: "Customer".into(),
        caller_number: number.into(),
        dtmf: Vec::new(),
        hangup_after: Some(Duration::from_secs(hangup_after_s)),
    }
}

/// Whether a switch's channel is an agent's open line (Switchboard names the legs it creates).
fn is_line(channel: &str) -> bool {
    channel.starts_with(&format!(
        "{}line-",
        switchboard::controller::calls::AGENT_LEG_PREFIX
    ))
}

async fn ready(controller: &Controller, agent: &str) {
    for action in [AgentAction::LogIn, AgentAction::Ready(None)] {
        controller
            .agent(agent, action)
            .await
            .unwrap_or_else(|e| panic!("{agent}: {e:?}"));
    }
}

/// Waits for the portal to show `caller` connected to an agent; returns the agent.
async fn connected(portal: &mut broadcast::Receiver<AgentNotice>, caller: &str) -> String {
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        match tokio::time::timeout_at(deadline, portal.recv()).await {
            Ok(Ok(n)) if n.event == "connected" && n.caller.as_deref() == Some(caller) => {
                return n.agent;
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("the portal's notices stopped while waiting for {caller}: {e}"),
            Err(_) => panic!("{caller} was not connected to an agent within {STEP:?}"),
        }
    }
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < STEP, "not within {STEP:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn record_of<'a>(cdrs: &'a [Cdr], caller: &str) -> &'a switchboard::store::NewCdr {
    let found: Vec<_> = cdrs.iter().filter(|c| c.record.caller == caller).collect();
    assert_eq!(found.len(), 1, "one record for {caller}: {cdrs:#?}");
    &found[0].record
}
