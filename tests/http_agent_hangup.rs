//! An agent hangs up over the HTTP API in front of the FreeSWITCH emulator: the caller's leg is
//! hung up on the switch, the call ends the usual way and its record says who hung up; the
//! agent's day (login, break with its reason, logout) is in its stored history.

#[path = "support/center.rs"]
mod center;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard::config::Config;
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

struct Api {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Api {
    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

async fn start() -> (Emulator, Store, Api) {
    let mut options = EmulatorOptions::new("ClueCon");
    options.time_scale = 0.05;
    let emu = Emulator::start("127.0.0.1:0".parse().expect("address"), options)
        .await
        .expect("emulator starts");
    let store = Store::open("sqlite::memory:").await.expect("store opens");
    let token = switchboard::web::bootstrap_admin_key(&store, "acme")
        .await
        .expect("an admin key");
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
    let begun = Instant::now();
    while emu.connections() == 0 && begun.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let resolved = Config::load_from_str(CENTER, "test.toml", Vec::<(String, String)>::new())
        .expect("valid")
        .resolve()
        .expect("resolves");
    let app = switchboard::web::router(controller, &resolved, store.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let api = Api {
        base,
        token,
        http: reqwest::Client::new(),
    };
    (emu, store, api)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agents_hangup_ends_the_call_on_the_switch_and_the_record_says_so() {
    let (emu, store, api) = start().await;
    for action in ["login", "ready"] {
        let (status, body) = api
            .post(&format!("/api/v1/agents/ann/{action}"), json!({}))
            .await;
        assert_eq!(status, 200, "{action}: {body}");
    }
    // The caller would talk for 100 real seconds: only the hang-up ends it sooner.
    let mut call = InboundCall::new("+4930555", "8001");
    call.hangup_after = Some(Duration::from_secs(2000));
    emu.place_call(&call).expect("placed");

    let begun = Instant::now();
    let contact = loop {
        let (_, body) = api.get("/api/v1/contacts").await;
        let connected = body["contacts"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["phase"] == "connected"))
            .and_then(|c| c["id"].as_u64());
        if let Some(id) = connected {
            break id;
        }
        assert!(
            begun.elapsed() < Duration::from_secs(20),
            "never connected: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Let the bridge settle: the call is talking.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(emu.channels().len(), 2, "{:?}", emu.channels());

    let (status, body) = api
        .post("/api/v1/agents/ann/hangup", json!({"contact": contact}))
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["hangup"], "requested");

    let found = center::records(&store, 1, Duration::from_secs(20)).await;
    assert_eq!(found.len(), 1, "{found:#?}");
    let r = &found[0].record;
    assert_eq!(r.contact.0, contact);
    assert_eq!(r.disposition, Disposition::Answered, "{r:#?}");
    assert_eq!(r.agent.as_deref(), Some("ann"));
    assert_eq!(r.cause.as_deref(), Some("hung up by agent ann"), "{r:#?}");
    assert_eq!(
        r.attributes.get("caller").map(String::as_str),
        Some("+4930555")
    );
    let begun = Instant::now();
    while !emu.channels().is_empty() && begun.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(emu.channels().is_empty(), "{:?}", emu.channels());
    // A contact that is over cannot be hung up again.
    let (status, body) = api
        .post("/api/v1/agents/ann/hangup", json!({"contact": contact}))
        .await;
    assert_eq!(status, 404, "{body}");

    for (action, body) in [
        ("break", json!({"reason": "coffee"})),
        ("ready", json!({})),
        ("logout", json!({})),
    ] {
        let (status, answer) = api
            .post(&format!("/api/v1/agents/ann/{action}"), body)
            .await;
        assert_eq!(status, 200, "{action}: {answer}");
    }
    let (status, body) = api.get("/api/v1/agents/ann/history").await;
    assert_eq!(status, 200, "{body}");
    let changes: Vec<(String, Option<String>)> = body["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| {
            (
                c["state"].as_str().unwrap_or("").to_owned(),
                c["reason"].as_str().map(str::to_owned),
            )
        })
        .collect();
    let has = |state: &str, reason: Option<&str>| {
        changes
            .iter()
            .any(|(s, r)| s == state && r.as_deref() == reason)
    };
    assert!(has("unallocated", Some("logged in")), "{changes:?}");
    assert!(has("busy", None), "{changes:?}");
    assert!(has("break", Some("coffee")), "{changes:?}");
    assert_eq!(
        changes.last(),
        Some(&("logged-out".to_owned(), Some("logged out".to_owned()))),
        "{changes:?}"
    );
}
