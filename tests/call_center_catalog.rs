//! The catalog changed over the API drives real calls, across a restart, in front of the
//! Asterisk emulator: an administrator adds an agent (with its SIP target) and a flow whose
//! digit menu sets a contact attribute; the caller's choice is stored with its contact, shown
//! in the live contacts, kept when Switchboard restarts (with the agent and the flow), and
//! written on the call's record after the agent hangs up over the API.

#[path = "support/center.rs"]
mod center;

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use switchboard::config::Config;
use switchboard::controller::ControllerTask;
use switchboard::emulator::asterisk::{Emulator, InboundCall};
use switchboard::model::{ContactId, Disposition};
use switchboard::store::Store;

const CENTER: &str = r#"
[[queues]]
name = "sales"
tenant = "acme"
offer_timeout_s = 20
"#;

/// The web API in front of one controller.
struct Api {
    base: String,
    token: String,
    http: reqwest::Client,
    serve: tokio::task::JoinHandle<()>,
    task: ControllerTask,
}

impl Api {
    async fn start(emu: &Emulator, store: Store, token: &str) -> Api {
        let (controller, task) = center::controller(emu, store.clone(), CENTER, &[]).await;
        let resolved = Config::load_from_str(CENTER, "test.toml", Vec::<(String, String)>::new())
            .expect("valid")
            .resolve()
            .expect("resolves");
        let app = switchboard::web::router(controller, &resolved, store);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let serve = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Api {
            base,
            token: token.to_owned(),
            // No idle connections: stopping the server lets go of the controller at once.
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .expect("client"),
            serve,
            task,
        }
    }

    /// Stops the server and the controller (Switchboard goes away; the switch's calls go on).
    async fn stop(self) {
        self.serve.abort();
        let _ = self.serve.await;
        tokio::time::timeout(Duration::from_secs(5), self.task.join())
            .await
            .expect("the controller stops");
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.send_as(&self.token, method, path, body).await
    }

    /// As [`send`](Self::send), with another key.
    async fn send_as(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::PUT, path, Some(body)).await
    }

    /// The first live contact that `matches`, once there is one.
    async fn contact_where(&self, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
        let begun = Instant::now();
        loop {
            let (_, body) = self.get("/api/v1/contacts").await;
            if let Some(found) = body["contacts"]
                .as_array()
                .and_then(|c| c.iter().find(|c| matches(c)))
            {
                return found.clone();
            }
            assert!(
                begun.elapsed() < Duration::from_secs(20),
                "no contact {what}: {body}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_agent_and_flow_serve_a_call_whose_menu_choice_survives_a_restart() {
    let emu = center::fast_asterisk().await;
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}", dir.path().join("switchboard.db").display());
    let store = Store::open(&url).await.expect("store opens");
    let token = switchboard::web::bootstrap_admin_key(&store, "acme")
        .await
        .expect("an admin key");
    let api = Api::start(&emu, store.clone(), &token).await;

    // The config file has the queue only: the agent and the flow come over the API, live.
    let (status, body) = api
        .put(
            "/api/v1/agents/ann",
            json!({"sip": "agent", "queues": ["sales"]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let flow = json!({"steps": [
        {"menu": {"prompt": "ivr/choose", "timeout_s": 5, "options": {
            "1": {"set": {"topic": "billing"}},
            "2": {"set": {"topic": "orders"}}
        }}},
        {"queue": {"name": "sales", "music": "default"}}
    ]});
    let (status, body) = api.put("/api/v1/queues/sales/flow", flow).await;
    assert_eq!(status, 201, "{body}");

    // The caller presses 1 and waits (nobody is logged in); it would hang up after 25 s.
    emu.place_call(&InboundCall {
        endpoint: "customer".into(),
        extension: "8001".into(),
        caller_name: "Customer".into(),
        caller_number: "+4930777".into(),
        dtmf: vec![(Duration::from_secs(1), "1".into())],
        hangup_after: Some(Duration::from_secs(500)),
    })
    .expect("the call is placed");
    let waiting = api
        .contact_where("waiting with its choice", |c| {
            c["attributes"]["topic"] == "billing"
        })
        .await;
    let contact = waiting["id"].as_u64().expect("an id");
    assert_eq!(waiting["attributes"]["caller"], "+4930777", "{waiting}");
    let stored = store
        .contact(ContactId(contact))
        .await
        .expect("reads")
        .expect("stored");
    assert_eq!(
        stored.attributes.get("topic").map(String::as_str),
        Some("billing"),
        "stored with the contact, not only in memory"
    );

    // Switchboard goes away and comes back on the same store.
    api.stop().await;
    store.close().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let store = Store::open(&url).await.expect("store opens again");
    let api = Api::start(&emu, store.clone(), &token).await;
    let back = api
        .contact_where("back after the restart", |c| c["id"] == contact)
        .await;
    assert_eq!(back["attributes"]["topic"], "billing", "{back}");
    let (_, body) = api.get("/api/v1/queues/sales/flow").await;
    assert_eq!(body["source"], "api", "the flow came back: {body}");

    // The agent the API made takes the call, then hangs up over the API.
    for action in ["login", "ready"] {
        let (status, body) = api
            .post(&format!("/api/v1/agents/ann/{action}"), json!({}))
            .await;
        assert_eq!(status, 200, "{action}: {body}");
    }
    api.contact_where("connected to ann", |c| {
        c["id"] == contact && c["phase"] == "connected"
    })
    .await;
    let begun = Instant::now();
    while emu.bridges().is_empty() && begun.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!emu.bridges().is_empty(), "bridged to ann");
    let (status, body) = api
        .post("/api/v1/agents/ann/hangup", json!({"contact": contact}))
        .await;
    assert_eq!(status, 202, "{body}");

    let found = center::records(&store, 1, Duration::from_secs(20)).await;
    assert_eq!(found.len(), 1, "{found:#?}");
    let r = &found[0].record;
    assert_eq!(r.contact.0, contact);
    assert_eq!(r.disposition, Disposition::Answered, "{r:#?}");
    assert_eq!(r.agent.as_deref(), Some("ann"));
    assert_eq!(r.cause.as_deref(), Some("hung up by agent ann"), "{r:#?}");
    assert_eq!(r.caller, "+4930777", "{r:#?}");
    assert_eq!(
        r.attributes.get("topic").map(String::as_str),
        Some("billing")
    );
    let (status, body) = api.get(&format!("/api/v1/cdrs/{contact}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["attributes"]["topic"], "billing", "{body}");
    let begun = Instant::now();
    while !emu.channels().is_empty() && begun.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(emu.channels().is_empty(), "{:?}", emu.channels());

    // A number pointed at a new queue over the API takes calls at once.
    let (status, body) = api.put("/api/v1/queues/billing", json!({})).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = api
        .put("/api/v1/numbers/8002", json!({"queue": "billing"}))
        .await;
    assert_eq!(status, 201, "{body}");
    emu.place_call(&InboundCall {
        endpoint: "customer".into(),
        extension: "8002".into(),
        caller_name: "Customer".into(),
        caller_number: "+4930888".into(),
        dtmf: Vec::new(),
        hangup_after: Some(Duration::from_secs(100)),
    })
    .expect("the call is placed");
    let waiting = api
        .contact_where("calling 8002, in billing", |c| {
            c["attributes"]["caller"] == "+4930888"
        })
        .await;
    assert_eq!(waiting["queue"], "billing", "{waiting}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operators_new_client_takes_calls_within_the_trunk_rules_it_sets_live() {
    let emu = center::fast_asterisk().await;
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}", dir.path().join("switchboard.db").display());
    let store = Store::open(&url).await.expect("store opens");
    let operator = switchboard::web::bootstrap_operator_key(&store)
        .await
        .expect("the operator's key");
    let api = Api::start(&emu, store.clone(), &operator).await;

    // The operator creates a client that keeps no trunk after hours: with none of its agents
    // available, it may have no call at all (max(A×R, A+T) = max(0, 0)).
    let (status, body) = api
        .put(
            "/api/v1/clients/initech",
            json!({"trunk_ratio": 1, "after_hours_trunks": 0}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = api
        .post(
            "/api/v1/clients/initech/keys",
            json!({"label": "initech's admin"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let initech = body["token"].as_str().expect("a token").to_owned();
    let (status, body) = api
        .send_as(
            &initech,
            Method::PUT,
            "/api/v1/queues/help",
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 201, "the client's own key works: {body}");
    let (status, body) = api
        .send_as(
            &initech,
            Method::PUT,
            "/api/v1/numbers/8100",
            Some(json!({"queue": "help"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = api
        .send_as(&initech, Method::GET, "/api/v1/clients", None)
        .await;
    assert_eq!(status, 403, "a client does not see the others: {body}");

    let call = |number: &str| InboundCall {
        endpoint: "customer".into(),
        extension: "8100".into(),
        caller_name: "Customer".into(),
        caller_number: number.into(),
        dtmf: Vec::new(),
        hangup_after: Some(Duration::from_secs(100)),
    };
    emu.place_call(&call("+4930111"))
        .expect("the call is placed");
    let found = center::records_of(&store, "initech", 1, Duration::from_secs(20)).await;
    let r = &found[0].record;
    assert_eq!(r.disposition, Disposition::Rejected, "{r:#?}");
    assert_eq!(r.tenant, "initech", "{r:#?}");
    let cause = r.cause.as_deref().unwrap_or_default();
    assert!(
        cause.starts_with("admission"),
        "the record says why: {cause}"
    );

    // One after-hours trunk, live: the next call is admitted and waits in the client's queue.
    let (status, body) = api
        .put(
            "/api/v1/clients/initech",
            json!({"trunk_ratio": 1, "after_hours_trunks": 1}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    emu.place_call(&call("+4930222"))
        .expect("the call is placed");
    let begun = Instant::now();
    let client = loop {
        let (status, body) = api.get("/api/v1/clients").await;
        assert_eq!(status, 200, "{body}");
        let client = body["clients"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["name"] == "initech"))
            .cloned()
            .unwrap_or(Value::Null);
        if client["admission"]["calls"] == 1 {
            break client;
        }
        assert!(
            begun.elapsed() < Duration::from_secs(20),
            "the second call holds a trunk: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(client["after_hours_trunks"], 1, "{client}");
    assert_eq!(client["admission"]["permitted"], 1, "{client}");
    assert_eq!(client["set_by_operator"], true, "{client}");
    assert_eq!(client["queues"], 1, "{client}");
    let rejected = center::records_of(&store, "initech", 2, Duration::from_secs(1)).await;
    assert_eq!(
        rejected.len(),
        1,
        "the second call was not refused: {rejected:#?}"
    );

    // After a restart, admission has the operator's rules again (not the defaults: T = 2).
    api.stop().await;
    store.close().await;
    let store = Store::open(&url).await.expect("store opens again");
    let api = Api::start(&emu, store.clone(), &operator).await;
    let (status, body) = api.get("/api/v1/clients").await;
    assert_eq!(status, 200, "{body}");
    let client = body["clients"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "initech"))
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(client["admission"]["permitted"], 1, "{client}");
    assert_eq!(client["after_hours_trunks"], 1, "{client}");
}
