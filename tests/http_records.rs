//! Records over the HTTP API: CDRs listed with filters and a cursor, one CDR and where its
//! recording is, agents' state history and totals; each tenant sees only its own, and bad
//! parameters get a 400 that names the parameter.

use serde_json::Value;
use switchboard::agents::AgentState;
use switchboard::config::Config;
use switchboard::controller::{Controller, DurableRouter};
use switchboard::media::HandlerId;
use switchboard::model::{ContactId, MediaType, Timestamp};
use switchboard::store::{AgentStateChange, Disposition, NewCdr, Store};

const CENTER: &str = r#"
[[queues]]
name = "support"
tenant = "acme"

[[queues]]
name = "billing"
tenant = "acme"

[[queues]]
name = "sales"
tenant = "globex"

[[agents]]
name = "ana"
tenant = "acme"
queues = [{ queue = "support", position = 1 }]

[[agents]]
name = "bob"
tenant = "acme"
queues = [{ queue = "billing", position = 1 }]

[[agents]]
name = "gina"
tenant = "globex"
queues = [{ queue = "sales", position = 1 }]
"#;

/// The instant the records are laid out from (2026-11-21T00:00:00Z, in microseconds).
const T0: i64 = 1_795_219_200_000_000;
const MINUTE: i64 = 60_000_000;

struct Server {
    base: String,
    http: reqwest::Client,
    acme: String,
    globex: String,
}

impl Server {
    async fn start() -> Server {
        let config = Config::load_from_str(CENTER, "records.toml", Vec::<(String, String)>::new())
            .expect("valid");
        let resolved = config.resolve().expect("resolves");
        let store = Store::open("sqlite::memory:").await.expect("store");
        let acme = switchboard::web::bootstrap_admin_key(&store, "acme")
            .await
            .expect("acme's key");
        let globex = switchboard::web::bootstrap_admin_key(&store, "globex")
            .await
            .expect("globex's key");
        seed(&store).await;
        let (router, _) = DurableRouter::open(resolved.clone(), store.clone(), Timestamp::now())
            .await
            .expect("router");
        let (controller, _task) = Controller::spawn(router);
        let app = switchboard::web::router(controller, &resolved, store);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Server {
            base: format!("http://{address}"),
            http: reqwest::Client::new(),
            acme,
            globex,
        }
    }

    async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        let value = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("{status}: body is not JSON: {text:?}"));
        (status, value)
    }
}

fn cdr(
    tenant: &str,
    contact: u64,
    queue: &str,
    agent: Option<&str>,
    disposition: Disposition,
    ended_min: i64,
) -> NewCdr {
    let arrived = Timestamp(T0 + ended_min * MINUTE - 2 * MINUTE);
    NewCdr {
        tenant: tenant.to_owned(),
        contact: ContactId(contact),
        media: MediaType::Voice,
        queue: queue.to_owned(),
        caller: format!("+1555000{contact:04}"),
        called: "+18005550100".to_owned(),
        agent: agent.map(str::to_owned),
        handler: Some(HandlerId(1)),
        arrived_at: arrived,
        answered_at: agent.map(|_| Timestamp(arrived.0 + MINUTE)),
        ended_at: Timestamp(T0 + ended_min * MINUTE),
        wait_ms: 60_000,
        talk_ms: if agent.is_some() { 60_000 } else { 0 },
        wrap_up_ms: 0,
        recording: (contact == 1).then(|| "/var/spool/asterisk/recording/c1.wav".to_owned()),
        disposition,
        cause: None,
        attributes: [
            ("caller", format!("+1555000{contact:04}")),
            ("topic", "billing".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect(),
    }
}

async fn seed(store: &Store) {
    let records = [
        cdr("acme", 1, "support", Some("ana"), Disposition::Answered, 10),
        cdr("acme", 2, "support", None, Disposition::Abandoned, 20),
        cdr("acme", 3, "billing", Some("bob"), Disposition::Answered, 30),
        cdr("acme", 4, "support", Some("ana"), Disposition::Answered, 40),
        cdr("acme", 5, "billing", None, Disposition::Abandoned, 50),
        cdr(
            "globex",
            6,
            "sales",
            Some("gina"),
            Disposition::Answered,
            15,
        ),
    ];
    for record in &records {
        store.insert_cdr(record).await.expect("a CDR");
    }
    let change = |state, minute: i64, reason: Option<&str>| AgentStateChange {
        tenant: "acme".to_owned(),
        agent: "ana".to_owned(),
        state,
        reason: reason.map(str::to_owned),
        at: Timestamp(T0 + minute * MINUTE),
    };
    store
        .record_agent_states(&[
            change(AgentState::Available, 0, None),
            change(AgentState::Busy, 10, None),
            change(AgentState::Break, 30, Some("lunch")),
            change(AgentState::LoggedOut, 60, None),
        ])
        .await
        .expect("agent states");
}

fn contacts(body: &Value) -> Vec<u64> {
    body["cdrs"]
        .as_array()
        .map(|c| c.iter().filter_map(|c| c["contact"].as_u64()).collect())
        .unwrap_or_default()
}

fn error(body: &Value) -> &str {
    body["error"].as_str().unwrap_or("")
}

#[tokio::test]
async fn cdrs_are_listed_by_tenant_with_filters_and_a_cursor() {
    let server = Server::start().await;
    let acme = server.acme.as_str();
    let (status, body) = server.get("/api/v1/cdrs", acme).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(contacts(&body), vec![1, 2, 3, 4, 5]);
    assert_eq!(body["next"], Value::Null);
    assert_eq!(body["cdrs"][0]["caller"], "+15550000001");
    assert_eq!(body["cdrs"][0]["has_recording"], true);

    let (_, body) = server.get("/api/v1/cdrs?queue=support", acme).await;
    assert_eq!(contacts(&body), vec![1, 2, 4]);
    let (_, body) = server
        .get("/api/v1/cdrs?agent=ana&disposition=answered", acme)
        .await;
    assert_eq!(contacts(&body), vec![1, 4]);
    let (_, body) = server.get("/api/v1/cdrs?disposition=abandoned", acme).await;
    assert_eq!(contacts(&body), vec![2, 5]);
    let from = T0 + 20 * MINUTE;
    let (_, body) = server
        .get(
            &format!("/api/v1/cdrs?from={from}&to=2026-11-21T00:45:00Z"),
            acme,
        )
        .await;
    assert_eq!(
        contacts(&body),
        vec![2, 3, 4],
        "from inclusive, to exclusive"
    );

    // Pages of two, following the cursor.
    let mut seen = Vec::new();
    let mut path = "/api/v1/cdrs?limit=2".to_owned();
    for _ in 0..5 {
        let (status, body) = server.get(&path, acme).await;
        assert_eq!(status, 200, "{body}");
        seen.extend(contacts(&body));
        match body["next"].as_str() {
            Some(next) => path = format!("/api/v1/cdrs?limit=2&after={next}"),
            None => break,
        }
    }
    assert_eq!(seen, vec![1, 2, 3, 4, 5]);

    // Globex sees only its own.
    let (_, body) = server.get("/api/v1/cdrs", &server.globex).await;
    assert_eq!(contacts(&body), vec![6]);
    let (status, _) = server.get("/api/v1/cdrs/1", &server.globex).await;
    assert_eq!(status, 404);
    let (_, body) = server
        .get("/api/v1/cdrs?queue=support", &server.globex)
        .await;
    assert_eq!(contacts(&body), Vec::<u64>::new());
}

#[tokio::test]
async fn bad_cdr_parameters_get_a_400_naming_the_parameter() {
    let server = Server::start().await;
    let acme = server.acme.as_str();
    for (query, names) in [
        ("limit=abc", "limit"),
        ("limit=0", "limit"),
        ("limit=100000", "limit"),
        ("disposition=meh", "disposition"),
        ("from=yesterday", "from"),
        ("to=2026-13-01", "to"),
        ("after=zzz", "after"),
        ("colour=red", "colour"),
        ("queue=a&queue=b", "queue"),
        ("from=2026-11-22T00:00:00Z&to=2026-11-21T00:00:00Z", "from"),
    ] {
        let (status, body) = server.get(&format!("/api/v1/cdrs?{query}"), acme).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(error(&body).contains(names), "{query}: {body}");
    }
}

#[tokio::test]
async fn one_cdr_and_where_its_recording_is() {
    let server = Server::start().await;
    let acme = server.acme.as_str();
    let (status, body) = server.get("/api/v1/cdrs/3", acme).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["agent"], "bob");
    assert_eq!(body["disposition"], "answered");
    assert_eq!(body["talk_ms"], 60_000);
    // What the caller chose in the flow's menus is on the record.
    assert_eq!(body["attributes"]["topic"], "billing", "{body}");

    let (status, body) = server.get("/api/v1/cdrs/1/recording", acme).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["path"], "/var/spool/asterisk/recording/c1.wav");
    assert_eq!(body["handler"], 1);
    assert!(
        body["note"]
            .as_str()
            .unwrap_or("")
            .contains("media handler"),
        "{body}"
    );

    let (status, body) = server.get("/api/v1/cdrs/2/recording", acme).await;
    assert_eq!(status, 404);
    assert!(error(&body).contains("no recording"), "{body}");
    let (status, body) = server.get("/api/v1/cdrs/99", acme).await;
    assert_eq!(status, 404);
    assert!(error(&body).contains("99"), "{body}");
    let (status, _) = server.get("/api/v1/cdrs/x", acme).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn an_agents_history_and_totals_cover_the_window_asked_for() {
    let server = Server::start().await;
    let acme = server.acme.as_str();
    let window = format!("from={T0}&to={}", T0 + 90 * MINUTE);
    let (status, body) = server
        .get(&format!("/api/v1/agents/ana/history?{window}"), acme)
        .await;
    assert_eq!(status, 200, "{body}");
    let states: Vec<&str> = body["changes"]
        .as_array()
        .map(|c| c.iter().filter_map(|c| c["state"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(states, vec!["available", "busy", "break", "logged-out"]);
    assert_eq!(body["changes"][2]["reason"], "lunch");

    let (status, body) = server
        .get(&format!("/api/v1/agents/ana/totals?{window}"), acme)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ms"]["available"], 10 * 60_000);
    assert_eq!(body["ms"]["busy"], 20 * 60_000);
    assert_eq!(body["ms"]["break"], 30 * 60_000);

    let (status, body) = server
        .get("/api/v1/agents/ana/history?from=soon", acme)
        .await;
    assert_eq!(status, 400);
    assert!(error(&body).contains("from"), "{body}");
    let (status, _) = server
        .get(
            &format!("/api/v1/agents/ana/history?{window}"),
            &server.globex,
        )
        .await;
    assert_eq!(status, 404, "another tenant's agent");
}
