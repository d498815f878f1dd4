//! The HTTP API over the wire: a client on 127.0.0.1 drives a contact from arrival to
//! completion, reads the queue and the router's explanation, and gets clear errors. Every
//! request carries the tenant's bootstrap admin key.

use serde_json::{Value, json};
use switchboard::config::Config;
use switchboard::controller::{Controller, DurableRouter};
use switchboard::model::Timestamp;
use switchboard::store::Store;

const CENTER: &str = r#"
[[queues]]
name = "support"
tenant = "acme"
strategy = "top-down"
[[queues.attributes]]
name = "language"
modifier = "required"
min_level = 5

[[agents]]
name = "ana"
tenant = "acme"
attributes = { language = ["es", "en"] }
slots = { voice = 1, chat = 2, email = 1 }
queues = [{ queue = "support", position = 1 }]

[[agents]]
name = "bob"
tenant = "acme"
attributes = { language = ["en"] }
queues = [{ queue = "support", position = 2 }]
"#;

struct Server {
    base: String,
    http: reqwest::Client,
    token: String,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start() -> Server {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}", dir.path().join("api.db").display());
        let config = Config::load_from_str(CENTER, "api.toml", Vec::<(String, String)>::new())
            .expect("valid");
        let resolved = config.resolve().expect("resolves");
        let store = Store::open(&url).await.expect("store");
        let token = switchboard::web::bootstrap_admin_key(&store, "acme")
            .await
            .expect("an admin key");
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
            token,
            _dir: dir,
        }
    }

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
        let text = response.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("request");
        (
            response.status().as_u16(),
            response.text().await.expect("body"),
        )
    }
}

fn event_names(body: &Value) -> Vec<String> {
    body["events"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .filter_map(|e| e["event"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_contact_goes_from_arrival_to_completion_over_http() {
    let server = Server::start().await;
    assert_eq!(server.get("/health").await.0, 200);
    let (status, _) = server.post("/api/v1/agents/bob/login", json!({})).await;
    assert_eq!(status, 200);

    // A Spanish caller: Bob speaks no Spanish, so it waits.
    let (status, body) = server
        .post(
            "/api/v1/contacts",
            json!({"queue": "support", "attributes": {"language": "es"}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_u64().expect("an id");
    assert_eq!(event_names(&body), vec!["queued"]);
    let (_, queues) = server.get("/api/v1/queues").await;
    let queues: Value = serde_json::from_str(&queues).expect("json");
    assert_eq!(queues["queues"][0]["waiting"]["voice"], 1);

    let (status, explanation) = server.get(&format!("/api/v1/contacts/{id}/explain")).await;
    assert_eq!(status, 200);
    assert!(
        explanation.contains("bob") && explanation.contains("lacks language=es"),
        "{explanation}"
    );

    // Ana logs in and gets the offer at once; she answers and finishes.
    let (_, body) = server.post("/api/v1/agents/ana/login", json!({})).await;
    assert_eq!(event_names(&body), vec!["offered"]);
    assert_eq!(body["events"][0]["agents"], json!(["ana"]));
    let (status, body) = server
        .post(
            &format!("/api/v1/contacts/{id}/accept"),
            json!({"agent": "ana"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(event_names(&body), vec!["connected"]);
    let (_, body) = server
        .post(&format!("/api/v1/contacts/{id}/complete"), json!({}))
        .await;
    assert_eq!(event_names(&body), vec!["ended"]);
    assert_eq!(body["events"][0]["detail"], "completed");
}

#[tokio::test]
async fn bad_requests_get_errors_that_say_what_is_wrong() {
    let server = Server::start().await;
    let (status, body) = server
        .post("/api/v1/contacts", json!({"queue": "nowhere"}))
        .await;
    assert_eq!(status, 422);
    assert!(
        body["error"].as_str().unwrap_or("").contains("nowhere"),
        "{body}"
    );
    let (status, body) = server
        .post(
            "/api/v1/contacts",
            json!({"queue": "support", "colour": "red"}),
        )
        .await;
    assert_eq!(status, 422);
    assert!(body.to_string().contains("colour"), "{body}");
    let (status, body) = server
        .post("/api/v1/contacts/999/accept", json!({"agent": "ana"}))
        .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = server.post("/api/v1/agents/zoe/login", json!({})).await;
    assert_eq!(status, 404, "{body}");
    assert!(
        body["error"].as_str().unwrap_or("").contains("zoe"),
        "{body}"
    );
    let (status, _) = server.post("/api/v1/agents/ana/dance", json!({})).await;
    assert_eq!(status, 404);
    let (status, body) = server
        .post("/api/v1/contacts", json!({"queue": "support"}))
        .await;
    let id = body["id"].as_u64().expect("an id");
    assert_eq!(status, 201);
    let (status, body) = server
        .post(
            &format!("/api/v1/contacts/{id}/accept"),
            json!({"agent": "ana"}),
        )
        .await;
    assert_eq!(status, 409, "nobody was offered it: {body}");
    assert!(
        body["error"].as_str().unwrap_or("").contains("is waiting"),
        "{body}"
    );
}

#[tokio::test]
async fn an_agent_accepts_and_hangs_up_through_its_own_routes() {
    let server = Server::start().await;
    let (status, _) = server.post("/api/v1/agents/ana/login", json!({})).await;
    assert_eq!(status, 200);
    let (status, body) = server.post("/api/v1/agents/ana/heartbeat", json!({})).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = server
        .post(
            "/api/v1/contacts",
            json!({"queue": "support", "attributes": {"language": "es"}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(event_names(&body), vec!["queued", "offered"]);
    let id = body["id"].as_u64().expect("an id");
    let (status, body) = server
        .post("/api/v1/agents/ana/accept", json!({"contact": id}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(event_names(&body), vec!["connected"]);
    let (status, body) = server
        .post("/api/v1/agents/bob/hangup", json!({"contact": id}))
        .await;
    assert_eq!(status, 409, "not bob's call: {body}");
    let (status, body) = server
        .post("/api/v1/agents/ana/hangup", json!({"contact": id}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(event_names(&body), vec!["ended"]);
    let (status, body) = server
        .post("/api/v1/agents/ana/break", json!({"reason": "coffee"}))
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = server
        .post("/api/v1/agents/ana/hangup", json!({"contact": id}))
        .await;
    assert_eq!(status, 404, "the contact is over: {body}");
}

#[tokio::test]
async fn chats_and_emails_leave_a_record_when_they_end() {
    let server = Server::start().await;
    let (status, _) = server.post("/api/v1/agents/ana/login", json!({})).await;
    assert_eq!(status, 200);

    // A chat Ana serves.
    let (status, body) = server
        .post(
            "/api/v1/contacts",
            json!({"queue": "support", "media": "chat",
                   "attributes": {"language": "en", "from": "ana.customer@example.com"}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let chat = body["id"].as_u64().expect("an id");
    let (status, body) = server
        .post(
            &format!("/api/v1/contacts/{chat}/accept"),
            json!({"agent": "ana"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = server
        .post(&format!("/api/v1/contacts/{chat}/complete"), json!({}))
        .await;
    assert_eq!(status, 200, "{body}");

    // The record is there as soon as the API said it ended.
    let (status, text) = server.get(&format!("/api/v1/cdrs/{chat}")).await;
    assert_eq!(status, 200, "{text}");
    let cdr: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(cdr["media"], "chat", "{cdr}");
    assert_eq!(cdr["disposition"], "answered", "{cdr}");
    assert_eq!(cdr["agent"], "ana", "{cdr}");
    assert_eq!(cdr["queue"], "support", "{cdr}");
    assert_eq!(cdr["caller"], "ana.customer@example.com", "{cdr}");

    // An email its sender withdrew before anyone took it.
    let (_, _) = server.post("/api/v1/agents/ana/logout", json!({})).await;
    let (status, body) = server
        .post(
            "/api/v1/contacts",
            json!({"queue": "support", "media": "email", "attributes": {"language": "en"}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let email = body["id"].as_u64().expect("an id");
    let (status, body) = server
        .post(&format!("/api/v1/contacts/{email}/abandon"), json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, text) = server.get(&format!("/api/v1/cdrs/{email}")).await;
    assert_eq!(status, 200, "{text}");
    let cdr: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(cdr["media"], "email", "{cdr}");
    assert_eq!(cdr["disposition"], "abandoned", "{cdr}");
    assert_eq!(cdr["agent"], Value::Null, "{cdr}");
}
