//! The real `switchboard serve` is killed with SIGKILL in the middle of the day (no shutdown,
//! nothing flushed) and started again on the same config and store, with an Asterisk emulator
//! in the test process carrying the calls through it all. The caller who was talking to the
//! agent goes on talking and is written down whole, with the agent, when the call ends; the
//! callers who were waiting are waiting again, in their order; and once every caller has hung
//! up, every contact has ended in exactly one terminal state. Runs on a SQLite file, and on
//! PostgreSQL when `SWITCHBOARD_TEST_POSTGRES_URL` names a server.

#[path = "support/center.rs"]
mod center;
#[path = "support/store_harness.rs"]
mod harness;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use switchboard::emulator::asterisk::{Emulator, EmulatorOptions, InboundCall};
use switchboard::model::Disposition;
use switchboard::store::Store;

/// Emulated time runs 20 × faster than real time.
const SCALE: f64 = 0.05;

/// How long any one step may take before the test fails.
const STEP: Duration = Duration::from_secs(30);

/// The waiting callers, in the order they call.
const WAITING: [&str; 3] = ["+4930002", "+4930003", "+4930004"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_switchboard_comes_back_with_its_calls_and_its_queue_on_sqlite() {
    let file = harness::SqliteFile::new();
    killed_and_restarted(file.url.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_switchboard_comes_back_with_its_calls_and_its_queue_on_postgres() {
    harness::on_postgres(killed_and_restarted).await;
}

async fn killed_and_restarted(store_url: String) {
    let mut options = EmulatorOptions::capture(center::PASSWORD);
    options.time_scale = SCALE;
    options.rtp = false;
    let emu = Emulator::start("127.0.0.1:0".parse().expect("address"), options)
        .await
        .expect("the Asterisk emulator starts");
    let dir = tempfile::tempdir().expect("temporary directory");
    let listen = free_address();
    let config = write_config(dir.path(), &listen, &store_url, &emu.base_url());
    let token = first_admin_key(&config);
    let api = Api::new(&listen, &token);

    let mut first = Serve::start(&config, dir.path(), "first");
    api.wait_healthy(&mut first).await;
    wait_until("the first run's ARI socket", || emu.sockets() >= 1).await;
    for action in ["login", "ready"] {
        api.post(&format!("agents/ann/{action}")).await;
    }

    // Talking: hangs up 300 emulated seconds (15 s) after dialling.
    emu.place_call(&caller("+4930001", 300)).expect("placed");
    wait_until("the first caller is bridged to ann", || {
        !emu.bridges().is_empty()
    })
    .await;
    // Waiting, in this order: ann is busy; each gives up after a while.
    for (i, number) in WAITING.into_iter().enumerate() {
        emu.place_call(&caller(number, 360 + 20 * i as u64))
            .expect("placed");
        wait_until_async("the caller is in the queue", || async {
            waiting_callers(&api.live().await).len() == i + 1
        })
        .await;
    }
    let before = api.live().await;
    assert_eq!(waiting_callers(&before), WAITING, "{before:#}");
    let talking_id = contact_of(&before, "+4930001")["id"].clone();

    // SIGKILL: no shutdown of any kind.
    first.kill9();
    assert_eq!(
        emu.channels().len(),
        2 + WAITING.len(),
        "the switch keeps every call: {:?}",
        emu.channels()
    );

    let mut second = Serve::start(&config, dir.path(), "second");
    api.wait_healthy(&mut second).await;
    // The waiting callers are back in their order (the first caller's contact keeps its id).
    // The store gives the contacts back at once, held; they wait again once the switch has
    // been asked what is still there, which takes longer on a loaded machine.
    let start = Instant::now();
    let after = loop {
        let live = api.live().await;
        let settled = live["contacts"]
            .as_array()
            .is_some_and(|c| c.len() == 1 + WAITING.len())
            && waiting_callers(&live) == WAITING;
        if settled {
            break live;
        }
        if start.elapsed() > STEP {
            let log = std::fs::read_to_string(&second.log).unwrap_or_default();
            panic!(
                "not within {STEP:?}: the restarted switchboard holds every call again, the \
                 waiting callers waiting: {live:#}\nits log:\n{log}"
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(waiting_callers(&after), WAITING, "{after:#}");
    let talking = contact_of(&after, "+4930001");
    assert_eq!(talking["id"], talking_id, "{after:#}");
    assert_eq!(talking["phase"], "connected", "{after:#}");
    assert_eq!(talking["agents"], serde_json::json!(["ann"]), "{after:#}");

    // Every caller hangs up in time; every contact ends once, nothing stays open.
    let store = Store::open(&store_url)
        .await
        .unwrap_or_else(|e| panic!("opening {store_url}: {e}"));
    let records = center::records(&store, 1 + WAITING.len(), STEP).await;
    assert_eq!(records.len(), 1 + WAITING.len(), "{records:#?}");
    let mut contacts: Vec<_> = records.iter().map(|c| c.record.contact).collect();
    contacts.sort();
    contacts.dedup();
    assert_eq!(
        contacts.len(),
        records.len(),
        "one record per contact: {records:#?}"
    );
    let talked = &records
        .iter()
        .find(|c| c.record.caller == "+4930001")
        .unwrap_or_else(|| panic!("no record of the first caller: {records:#?}"))
        .record;
    assert_eq!(talked.disposition, Disposition::Answered, "{talked:#?}");
    assert_eq!(talked.agent.as_deref(), Some("ann"), "{talked:#?}");
    assert!(
        talked.talk_ms >= 10_000,
        "the call went on across the kill to its end: {talked:#?}"
    );
    for cdr in &records {
        assert!(
            matches!(
                cdr.record.disposition,
                Disposition::Answered | Disposition::Abandoned
            ),
            "{cdr:#?}"
        );
    }
    let counts = store.counts_by_state("acme").await.expect("counts");
    assert_eq!(counts.open(), 0, "nothing left open: {counts:?}");
    wait_until("the switch is empty", || emu.channels().is_empty()).await;
    store.close().await;
    second.kill9();
}

/// The center: ann (the emulator's `agent` endpoint) serves `sales`, which every number
/// reaches, on the Asterisk emulator at `ari_url`; a short wrap-up; trunks for every caller.
fn write_config(dir: &Path, listen: &str, store_url: &str, ari_url: &str) -> PathBuf {
    let text = format!(
        r#"[server]
listen = "{listen}"

[store]
url = "{store_url}"

[log]
level = "info"

[agent_states]
wrap_up_s = 1

[[clients]]
name = "acme"
after_hours_trunks = 20

[[queues]]
name = "sales"
tenant = "acme"
offer_timeout_s = 20

[[agents]]
name = "ann"
tenant = "acme"
queues = ["sales"]
sip = "agent"

[[handlers]]
name = "ast1"
kind = "asterisk"
url = "{ari_url}"
user = "cc"
password = "{password}"
app = "cc"

[[numbers]]
number = "*"
queue = "sales"
"#,
        password = center::PASSWORD
    );
    let path = dir.join("switchboard.toml");
    std::fs::write(&path, text).expect("writing the config");
    path
}

/// An address nobody listens on now.
fn free_address() -> String {
    let socket = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    socket.local_addr().expect("its address").to_string()
}

fn switchboard(config: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    // The tests' own variables must not leak into the configuration.
    for (name, _) in std::env::vars() {
        if name.starts_with("SWITCHBOARD_") {
            command.env_remove(name);
        }
    }
    command.env_remove("RUST_LOG").arg("--config").arg(config);
    command
}

/// `switchboard keys --tenant acme`: the first administrator key.
fn first_admin_key(config: &Path) -> String {
    let out = switchboard(config)
        .args(["keys", "--tenant", "acme"])
        .output()
        .expect("switchboard keys runs");
    assert!(out.status.success(), "switchboard keys: {out:?}");
    let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(token.starts_with("sb_"), "not a key: {token}");
    token
}

/// A `switchboard serve` process, its output in a log file.
struct Serve {
    child: Child,
    log: PathBuf,
}

impl Serve {
    fn start(config: &Path, dir: &Path, name: &str) -> Serve {
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let child = switchboard(config)
            .arg("serve")
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .stdin(Stdio::null())
            .spawn()
            .expect("switchboard serve starts");
        Serve { child, log }
    }

    /// SIGKILL, then reap.
    fn kill9(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }

    /// Panics with the log when the process has exited.
    fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            panic!("switchboard serve exited ({status}):\n{log}");
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The HTTP API as the administrator key sees it.
struct Api {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Api {
    fn new(listen: &str, token: &str) -> Api {
        Api {
            base: format!("http://{listen}"),
            token: token.to_owned(),
            http: reqwest::Client::new(),
        }
    }

    async fn wait_healthy(&self, serve: &mut Serve) {
        let start = Instant::now();
        loop {
            serve.assert_running();
            let up = self
                .http
                .get(format!("{}/health", self.base))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if up {
                return;
            }
            assert!(start.elapsed() < STEP, "switchboard serve did not come up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn post(&self, path: &str) {
        let url = format!("{}/api/v1/{path}", self.base);
        let reply = self
            .http
            .post(&url)
            .bearer_auth(&self.token)
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        let status = reply.status();
        let body = reply.text().await.unwrap_or_default();
        assert!(status.is_success(), "POST {url}: {status}: {body}");
    }

    /// `GET /api/v1/contacts`: the live contacts, oldest first.
    async fn live(&self) -> Value {
        let url = format!("{}/api/v1/contacts", self.base);
        let reply = self
            .http
            .get(&url)
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let status = reply.status();
        let body: Value = reply
            .json()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: not JSON: {e}"));
        assert!(status.is_success(), "GET {url}: {status}: {body}");
        body
    }
}

/// The callers of the waiting contacts, in the listing's order.
fn waiting_callers(live: &Value) -> Vec<String> {
    live["contacts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["phase"] == "waiting")
        .filter_map(|c| c["attributes"]["caller"].as_str().map(str::to_owned))
        .collect()
}

fn contact_of<'a>(live: &'a Value, caller: &str) -> &'a Value {
    live["contacts"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["attributes"]["caller"] == caller)
        .unwrap_or_else(|| panic!("no live contact of {caller}: {live:#}"))
}

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

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < STEP, "not within {STEP:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_until_async<F: std::future::Future<Output = bool>>(
    what: &str,
    mut done: impl FnMut() -> F,
) {
    let start = Instant::now();
    while !done().await {
        assert!(start.elapsed() < STEP, "not within {STEP:?}: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
