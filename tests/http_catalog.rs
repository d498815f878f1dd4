//! Administrators manage their client's queues, agents and flows over the HTTP API: changes
//! apply to the live router at once, are stored, and survive a restart (laid over the config
//! file's catalog); every definition is checked with a 422 naming the field; a client's admin
//! never sees or touches another client's catalog.

use std::time::Duration;

use serde_json::{Value, json};
use switchboard::config::Config;
use switchboard::controller::{Controller, ControllerTask, DurableRouter};
use switchboard::model::Timestamp;
use switchboard::store::Store;

const CENTER: &str = r#"
[[queues]]
name = "support"
tenant = "acme"

[[queues]]
name = "sales"
tenant = "globex"

[[agents]]
name = "ana"
tenant = "acme"
queues = ["support"]

[[agents]]
name = "gus"
tenant = "globex"
queues = ["sales"]
"#;

struct Server {
    base: String,
    http: reqwest::Client,
    url: String,
    acme: String,
    globex: String,
    serve: tokio::task::JoinHandle<()>,
    task: Option<ControllerTask>,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start() -> Server {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}", dir.path().join("catalog.db").display());
        let store = Store::open(&url).await.expect("store");
        let acme = switchboard::web::bootstrap_admin_key(&store, "acme")
            .await
            .expect("acme's admin key");
        let globex = switchboard::web::bootstrap_admin_key(&store, "globex")
            .await
            .expect("globex's admin key");
        let (base, serve, task) = serve(store).await;
        Server {
            base,
            // No idle connections: a restart stops the old server and its controller for good.
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .expect("client"),
            url,
            acme,
            globex,
            serve,
            task: Some(task),
            _dir: dir,
        }
    }

    /// Stops the server and its controller, and starts both again on the same store.
    async fn restart(&mut self) {
        self.serve.abort();
        let _ = (&mut self.serve).await;
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(5), task.join())
                .await
                .expect("the controller stops");
        }
        let store = Store::open(&self.url).await.expect("store opens again");
        let (base, serve, task) = serve(store).await;
        self.base = base;
        self.serve = serve;
        self.task = Some(task);
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
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
        let text = response.text().await.expect("body");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .unwrap_or_else(|_| panic!("{status}: body is not JSON: {text:?}"))
        };
        (status, value)
    }

    async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, token, None).await
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, token, Some(body))
            .await
    }

    async fn put(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::PUT, path, token, Some(body))
            .await
    }

    async fn delete(&self, path: &str, token: &str) -> (u16, Value) {
        self.call(reqwest::Method::DELETE, path, token, None).await
    }

    /// A new key of `role` made by `admin`.
    async fn key(&self, admin: &str, role: &str) -> String {
        let (status, body) = self
            .post("/api/v1/keys", admin, json!({"label": "t", "role": role}))
            .await;
        assert_eq!(status, 201, "{body}");
        body["token"].as_str().expect("token").to_owned()
    }
}

async fn serve(store: Store) -> (String, tokio::task::JoinHandle<()>, ControllerTask) {
    let config = Config::load_from_str(CENTER, "catalog.toml", Vec::<(String, String)>::new())
        .expect("valid");
    let resolved = config.resolve().expect("resolves");
    let (router, _) = DurableRouter::open(resolved.clone(), store.clone(), Timestamp::now())
        .await
        .expect("router");
    let (controller, task) = Controller::spawn(router);
    let app = switchboard::web::router(controller, &resolved, store);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let address = listener.local_addr().expect("address");
    let serve = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{address}"), serve, task)
}

fn error(body: &Value) -> &str {
    body["error"].as_str().unwrap_or("")
}

fn names(list: &Value, key: &str) -> Vec<String> {
    list[key]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The queue names of a `GET /api/v1/catalog` answer.
fn catalog_queues(body: &Value) -> Vec<String> {
    body["queues"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["setup"]["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_and_an_agent_an_admin_creates_work_at_once_and_after_a_restart() {
    let mut server = Server::start().await;
    let acme = server.acme.clone();
    let (status, body) = server
        .put(
            "/api/v1/queues/billing",
            &acme,
            json!({"offer_timeout_s": 15, "skills": {"invoices": 3}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["outcome"], "created");
    assert_eq!(body["queue"]["tenant"], "acme", "the caller's client");
    let (_, queues) = server.get("/api/v1/queues", &acme).await;
    assert_eq!(names(&queues, "queues"), vec!["billing", "support"]);

    let (status, body) = server
        .put(
            "/api/v1/agents/cy",
            &acme,
            json!({"skills": {"invoices": 5}, "queues": ["billing"], "sip": "1003@pbx.example"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = server
        .post("/api/v1/agents/cy/login", &acme, json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = server
        .post(
            "/api/v1/contacts",
            &acme,
            json!({"queue": "billing", "attributes": {"topic": "refund"}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let contact = body["id"].as_u64().expect("an id");
    assert!(event_names(&body).contains(&"offered".to_owned()), "{body}");

    // Supervisors list the live contacts with their attributes; one reads back whole.
    let (status, body) = server.get("/api/v1/contacts", &acme).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["contacts"][0]["id"], contact, "{body}");
    assert_eq!(body["contacts"][0]["phase"], "offered");
    assert_eq!(body["contacts"][0]["attributes"]["topic"], "refund");
    let (status, body) = server
        .get(&format!("/api/v1/contacts/{contact}"), &acme)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "offered");
    assert_eq!(body["live"]["agents"], json!(["cy"]));
    assert_eq!(body["attributes"]["topic"], "refund");

    // Without a calls side, hanging up completes the contact.
    let (status, body) = server
        .post(
            "/api/v1/agents/cy/accept",
            &acme,
            json!({"contact": contact}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = server
        .post(
            "/api/v1/agents/cy/hangup",
            &acme,
            json!({"contact": contact}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(event_names(&body).contains(&"ended".to_owned()), "{body}");
    let (_, body) = server
        .get(&format!("/api/v1/contacts/{contact}"), &acme)
        .await;
    assert_eq!(body["state"], "completed", "{body}");
    assert_eq!(body["live"], Value::Null);

    // Every change of cy's state is stamped and stored: login, break with its reason, logout.
    let (status, body) = server
        .post("/api/v1/agents/cy/break", &acme, json!({"reason": "lunch"}))
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = server
        .post("/api/v1/agents/cy/logout", &acme, json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = server.get("/api/v1/agents/cy/history", &acme).await;
    assert_eq!(status, 200, "{body}");
    let changes: Vec<(String, String)> = body["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| {
            (
                c["state"].as_str().unwrap_or("").to_owned(),
                c["reason"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(s, r)| ((*s).to_owned(), (*r).to_owned()))
            .collect()
    };
    assert_eq!(
        changes,
        pairs(&[
            ("available", "logged in"),
            ("break", "lunch"),
            ("logged-out", "logged out")
        ]),
        "{body}"
    );

    // New rules for a live queue apply at once.
    let (status, body) = server
        .put(
            "/api/v1/queues/support",
            &acme,
            json!({"offer_timeout_s": 40}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["outcome"], "updated");
    let (_, body) = server.get("/api/v1/queues/support", &acme).await;
    assert_eq!(body["queue"]["offer_timeout_s"], 40.0, "{body}");
    let (status, body) = server
        .put(
            "/api/v1/queues/support",
            &acme,
            json!({"offer_timeout_s": 40}),
        )
        .await;
    assert_eq!((status, &body["outcome"]), (200, &json!("unchanged")));
    // The config file's agent goes.
    let (status, _) = server.delete("/api/v1/agents/ana", &acme).await;
    assert_eq!(status, 204);
    let (status, _) = server
        .post("/api/v1/agents/ana/login", &acme, json!({}))
        .await;
    assert_eq!(status, 404);

    server.restart().await;
    let (_, body) = server.get("/api/v1/queues/support", &acme).await;
    assert_eq!(
        body["queue"]["offer_timeout_s"], 40.0,
        "kept over the restart: {body}"
    );
    let (status, body) = server.get("/api/v1/agents/cy", &acme).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["agent"]["sip"], "1003@pbx.example");
    assert_eq!(body["agent"]["skills"]["invoices"], 5);
    let (status, body) = server.get("/api/v1/agents", &acme).await;
    assert_eq!(status, 200);
    assert_eq!(
        names(&body, "agents"),
        vec!["cy"],
        "ana stays deleted: {body}"
    );
    let (status, _) = server
        .post("/api/v1/agents/ana/login", &acme, json!({}))
        .await;
    assert_eq!(status, 404);
    let (status, _) = server
        .post("/api/v1/agents/cy/login", &acme, json!({}))
        .await;
    assert_eq!(status, 200);
    let (status, body) = server
        .post("/api/v1/contacts", &acme, json!({"queue": "billing"}))
        .await;
    assert_eq!(status, 201, "{body}");
    assert!(event_names(&body).contains(&"offered".to_owned()), "{body}");
    let contact = body["id"].as_u64().expect("an id");
    for action in ["accept", "hangup"] {
        let (status, body) = server
            .post(
                &format!("/api/v1/agents/cy/{action}"),
                &acme,
                json!({"contact": contact}),
            )
            .await;
        assert_eq!(status, 200, "{action}: {body}");
    }
    // An agent's change applies live: cy serves support now, and its next contact.
    let (status, body) = server
        .put("/api/v1/agents/cy", &acme, json!({"queues": ["support"]}))
        .await;
    assert_eq!(
        (status, &body["outcome"]),
        (200, &json!("updated")),
        "{body}"
    );
    let (_, body) = server.get("/api/v1/agents/cy", &acme).await;
    assert_eq!(body["agent"]["queues"], json!(["support"]), "{body}");
    let (status, body) = server
        .post("/api/v1/contacts", &acme, json!({"queue": "support"}))
        .await;
    assert_eq!(status, 201, "{body}");
    assert!(event_names(&body).contains(&"offered".to_owned()), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn definitions_are_checked_and_a_422_names_the_field() {
    let server = Server::start().await;
    let acme = server.acme.clone();
    let cases = [
        (
            "/api/v1/queues/q",
            json!({"offer_timeout_s": -1}),
            "offer_timeout_s",
        ),
        (
            "/api/v1/queues/q",
            json!({"strategy": "loudest"}),
            "strategy",
        ),
        ("/api/v1/queues/q", json!({"tenant": "globex"}), "tenant"),
        ("/api/v1/queues/q", json!({"name": "other"}), "name"),
        ("/api/v1/queues/q", json!({"colour": "red"}), "colour"),
        ("/api/v1/queues/q", json!([1]), "JSON object"),
        (
            "/api/v1/queues/q",
            json!({"overflow": {"queue": "sales"}}),
            "overflow",
        ),
        ("/api/v1/queues/q", json!({"flow": "q.toml"}), "flow"),
        (
            "/api/v1/agents/a",
            json!({"queues": ["sales"]}),
            "queues[0]",
        ),
        (
            "/api/v1/agents/a",
            json!({"queues": ["support", "support"]}),
            "queues[1]",
        ),
        ("/api/v1/agents/a", json!({"sip": "user/1000"}), "sip"),
        (
            "/api/v1/agents/a",
            json!({"slots": {"voice": 200}}),
            "slots.voice",
        ),
        ("/api/v1/agents/a", json!({"skills": {"x": 11}}), "skills.x"),
        (
            "/api/v1/agents/a",
            json!({"stay_on_line": "always"}),
            "stay_on_line",
        ),
        ("/api/v1/queues/support/flow", json!({"steps": []}), "steps"),
        (
            "/api/v1/queues/support/flow",
            json!({"steps": [{"queue": {"name": "sales"}}]}),
            "steps[0].queue.name",
        ),
        (
            "/api/v1/queues/support/flow",
            json!({"steps": [{"menu": {"prompt": "p", "options": {"1": {"goto": "nowhere"}}}}]}),
            "steps[0]",
        ),
    ];
    for (path, body, field) in cases {
        let (status, answer) = server.put(path, &acme, body.clone()).await;
        assert_eq!(status, 422, "{path} {body}: {answer}");
        assert!(error(&answer).contains(field), "{path} {body}: {answer}");
        // Another client's queue is refused like a missing one, never named as theirs.
        if !body.to_string().contains("globex") {
            assert!(!error(&answer).contains("globex"), "{answer}");
        }
    }
    // Nothing of it was kept.
    let (_, body) = server.get("/api/v1/catalog", &acme).await;
    assert_eq!(catalog_queues(&body), vec!["support"], "{body}");
    assert_eq!(names(&body, "agents"), vec!["ana"], "{body}");
    assert_eq!(body["flows"], json!({}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clients_admin_never_sees_or_touches_another_clients_catalog() {
    let server = Server::start().await;
    let (acme, globex) = (server.acme.clone(), server.globex.clone());
    for path in [
        "/api/v1/queues/support",
        "/api/v1/agents/ana",
        "/api/v1/queues/support/flow",
    ] {
        let (status, body) = server.get(path, &globex).await;
        assert_eq!(status, 404, "{path}: {body}");
        let (status, body) = server.delete(path, &globex).await;
        assert_eq!(status, 404, "{path}: {body}");
    }
    // The names are one namespace: taken, without saying by whom.
    for path in ["/api/v1/queues/support", "/api/v1/agents/ana"] {
        let (status, body) = server.put(path, &globex, json!({})).await;
        assert_eq!(status, 409, "{path}: {body}");
        assert!(error(&body).contains("taken"), "{body}");
        assert!(!error(&body).contains("acme"), "{body}");
    }
    let (status, body) = server
        .put(
            "/api/v1/queues/support/flow",
            &globex,
            json!({"steps": [{"queue": {"name": "sales"}}]}),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    let (_, body) = server.get("/api/v1/catalog", &globex).await;
    assert_eq!(catalog_queues(&body), vec!["sales"]);
    assert_eq!(names(&body, "agents"), vec!["gus"]);

    // Roles: supervisors read, only admins change; clients do neither.
    let supervisor = server.key(&acme, "supervisor").await;
    let client = server.key(&acme, "client").await;
    let (status, _) = server.get("/api/v1/queues/support", &supervisor).await;
    assert_eq!(status, 200);
    let (status, body) = server
        .put("/api/v1/queues/support", &supervisor, json!({}))
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = server.delete("/api/v1/agents/ana", &supervisor).await;
    assert_eq!(status, 403);
    let (status, _) = server.get("/api/v1/catalog", &client).await;
    assert_eq!(status, 403);
    let (status, _) = server.get("/api/v1/contacts", &client).await;
    assert_eq!(status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_is_deleted_only_when_nothing_needs_it_and_its_client_may_open_it_again() {
    let mut server = Server::start().await;
    let acme = server.acme.clone();
    for name in ["q2", "q4"] {
        let (status, body) = server
            .put(&format!("/api/v1/queues/{name}"), &acme, json!({}))
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, body) = server
        .put(
            "/api/v1/queues/q3",
            &acme,
            json!({"overflow": {"queue": "q4"}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = server.delete("/api/v1/queues/q4", &acme).await;
    assert_eq!(status, 409, "{body}");
    assert!(error(&body).contains("q3"), "{body}");

    let (_, body) = server
        .post("/api/v1/contacts", &acme, json!({"queue": "q2"}))
        .await;
    let contact = body["id"].as_u64().expect("an id");
    let (status, body) = server.delete("/api/v1/queues/q2", &acme).await;
    assert_eq!(status, 409, "{body}");
    assert!(error(&body).contains("live contact"), "{body}");
    let (status, _) = server
        .post(
            &format!("/api/v1/contacts/{contact}/abandon"),
            &acme,
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    // An agent of the queue leaves it.
    let (status, body) = server
        .put(
            "/api/v1/agents/di",
            &acme,
            json!({"queues": ["q2", "support"]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = server.delete("/api/v1/queues/q2", &acme).await;
    assert_eq!(status, 204, "{body}");
    let (_, body) = server.get("/api/v1/agents/di", &acme).await;
    assert_eq!(body["agent"]["queues"], json!(["support"]), "{body}");
    let (status, body) = server
        .post("/api/v1/contacts", &acme, json!({"queue": "q2"}))
        .await;
    assert_eq!(status, 422, "{body}");
    let (_, queues) = server.get("/api/v1/queues", &acme).await;
    assert!(!names(&queues, "queues").contains(&"q2".to_owned()));
    // Its name stays acme's until a restart; acme may open it again at once.
    let (status, body) = server
        .put("/api/v1/queues/q2", &server.globex, json!({}))
        .await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = server
        .put("/api/v1/queues/q2", &acme, json!({"offer_timeout_s": 15}))
        .await;
    assert_eq!(
        (status, &body["outcome"]),
        (201, &json!("created")),
        "{body}"
    );
    let (_, queues) = server.get("/api/v1/queues", &acme).await;
    assert!(
        names(&queues, "queues").contains(&"q2".to_owned()),
        "{queues}"
    );
    let (status, body) = server
        .post("/api/v1/contacts", &acme, json!({"queue": "q2"}))
        .await;
    assert_eq!(status, 201, "open again: {body}");

    // A flow set through the API, then given back to the config file's.
    let flow = json!({"steps": [{"menu": {"prompt": "ivr/menu", "options": {"1": {"set": {"topic": "billing"}}}}}, {"queue": {"name": "support"}}]});
    let (status, body) = server.put("/api/v1/queues/support/flow", &acme, flow).await;
    assert_eq!(status, 201, "{body}");
    let (_, body) = server.get("/api/v1/queues/support/flow", &acme).await;
    assert_eq!(body["source"], "api", "{body}");
    assert_eq!(body["flow"]["name"], "support");
    assert_eq!(body["name"], "api:support");

    server.restart().await;
    let (_, body) = server.get("/api/v1/queues/support/flow", &acme).await;
    assert_eq!(body["source"], "api", "kept: {body}");
    let (status, _) = server.delete("/api/v1/queues/support/flow", &acme).await;
    assert_eq!(status, 204);
    let (_, body) = server.get("/api/v1/queues/support/flow", &acme).await;
    assert_eq!(body["source"], "config", "{body}");
    let (_, body) = server.get("/api/v1/queues/q2", &acme).await;
    assert_eq!(
        body["queue"]["offer_timeout_s"], 15.0,
        "reopened and kept: {body}"
    );
    let (_, body) = server.get("/api/v1/agents/di", &acme).await;
    assert_eq!(body["agent"]["queues"], json!(["support"]), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_points_the_clients_numbers_at_its_queues_and_they_stay_after_a_restart() {
    let mut server = Server::start().await;
    let (acme, globex) = (server.acme.clone(), server.globex.clone());
    let (status, body) = server
        .put(
            "/api/v1/numbers/+4930100",
            &acme,
            json!({"queue": "support"}),
        )
        .await;
    assert_eq!(
        (status, &body["outcome"]),
        (201, &json!("created")),
        "{body}"
    );
    let (status, body) = server
        .put(
            "/api/v1/numbers/+4930100",
            &acme,
            json!({"queue": "support"}),
        )
        .await;
    assert_eq!(
        (status, &body["outcome"]),
        (200, &json!("unchanged")),
        "{body}"
    );
    let (_, body) = server.get("/api/v1/numbers", &acme).await;
    assert_eq!(body["numbers"], json!({"+4930100": "support"}), "{body}");
    // Another client neither sees it nor takes it, and may not point at acme's queue.
    let (_, body) = server.get("/api/v1/numbers", &globex).await;
    assert_eq!(body["numbers"], json!({}), "{body}");
    let (status, body) = server
        .put(
            "/api/v1/numbers/+4930100",
            &globex,
            json!({"queue": "sales"}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(!error(&body).contains("acme"), "{body}");
    let (status, body) = server
        .put(
            "/api/v1/numbers/+4930200",
            &globex,
            json!({"queue": "support"}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(error(&body).starts_with("queue:"), "{body}");
    let (status, _) = server.delete("/api/v1/numbers/+4930100", &globex).await;
    assert_eq!(status, 404);
    // A number that is not one is refused with the field named.
    let (status, body) = server
        .put(
            "/api/v1/numbers/not%20a%20number",
            &acme,
            json!({"queue": "support"}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(error(&body).starts_with("number:"), "{body}");
    // A queue a number reaches is not deleted from under it.
    let (status, body) = server.put("/api/v1/queues/billing", &acme, json!({})).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = server
        .put(
            "/api/v1/numbers/+4930101",
            &acme,
            json!({"queue": "billing"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = server.delete("/api/v1/queues/billing", &acme).await;
    assert_eq!(status, 409, "{body}");
    assert!(error(&body).contains("+4930101"), "{body}");
    let (status, _) = server.delete("/api/v1/numbers/+4930101", &acme).await;
    assert_eq!(status, 204);
    let (status, body) = server
        .put(
            "/api/v1/numbers/+4930100",
            &acme,
            json!({"queue": "billing"}),
        )
        .await;
    assert_eq!(
        (status, &body["outcome"]),
        (200, &json!("updated")),
        "{body}"
    );

    server.restart().await;
    let (_, body) = server.get("/api/v1/numbers", &acme).await;
    assert_eq!(body["numbers"], json!({"+4930100": "billing"}), "{body}");
}
