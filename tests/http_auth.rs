//! Authentication, tenant scoping and roles of the HTTP API, over the wire: every `/api/v1`
//! request needs an API key or a web user's password, sees only its own tenant, and may do
//! only what its role allows; every error is JSON that says what was wrong.

use base64::Engine;
use serde_json::{Value, json};
use switchboard::config::Config;
use switchboard::controller::{Controller, DurableRouter};
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
queues = [{ queue = "support", position = 1 }]

[[agents]]
name = "bob"
tenant = "acme"
queues = [{ queue = "support", position = 2 }]

[[agents]]
name = "gina"
tenant = "globex"
queues = [{ queue = "sales", position = 1 }]
"#;

struct Server {
    base: String,
    http: reqwest::Client,
    store: Store,
    acme: String,
    globex: String,
}

/// How a request authenticates.
#[derive(Clone, Copy)]
enum As<'a> {
    Nobody,
    Key(&'a str),
    User(&'a str, &'a str),
    Header(&'a str),
}

impl Server {
    async fn start() -> Server {
        let config = Config::load_from_str(CENTER, "auth.toml", Vec::<(String, String)>::new())
            .expect("valid");
        let resolved = config.resolve().expect("resolves");
        let store = Store::open("sqlite::memory:").await.expect("store");
        let acme = switchboard::web::bootstrap_admin_key(&store, "acme")
            .await
            .expect("acme's admin key");
        let globex = switchboard::web::bootstrap_admin_key(&store, "globex")
            .await
            .expect("globex's admin key");
        let (router, _) = DurableRouter::open(resolved.clone(), store.clone(), Timestamp::now())
            .await
            .expect("router");
        let (controller, _task) = Controller::spawn(router);
        let app = switchboard::web::router(controller, &resolved, store.clone());
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
            store,
            acme,
            globex,
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        who: As<'_>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        request = match who {
            As::Nobody => request,
            As::Key(token) => request.bearer_auth(token),
            As::User(name, password) => request.basic_auth(name, Some(password)),
            As::Header(value) => request.header("authorization", value),
        };
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        let value = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("{status}: body is not JSON: {text:?}"));
        (status, value)
    }

    async fn get(&self, path: &str, who: As<'_>) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, who, None).await
    }

    async fn post(&self, path: &str, who: As<'_>, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, who, Some(body))
            .await
    }

    async fn delete(&self, path: &str, who: As<'_>) -> u16 {
        let mut request = self.http.delete(format!("{}{path}", self.base));
        if let As::Key(token) = who {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request").status().as_u16()
    }

    /// A new key of `role` made by `admin`; returns (key id, token).
    async fn key(&self, admin: &str, role: &str) -> (String, String) {
        let (status, body) = self
            .post(
                "/api/v1/keys",
                As::Key(admin),
                json!({"label": "test", "role": role}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        (
            body["key_id"].as_str().expect("key id").to_owned(),
            body["token"].as_str().expect("token").to_owned(),
        )
    }
}

fn error(body: &Value) -> &str {
    body["error"].as_str().unwrap_or("")
}

#[tokio::test]
async fn requests_without_a_valid_credential_get_401_saying_what_is_wrong() {
    let server = Server::start().await;
    let (status, body) = server.get("/api/v1/queues", As::Nobody).await;
    assert_eq!(status, 401);
    assert!(
        error(&body).contains("missing Authorization header"),
        "{body}"
    );

    let (status, body) = server.get("/api/v1/queues", As::Header("Token abc")).await;
    assert_eq!(status, 401);
    assert!(
        error(&body).contains("malformed Authorization header"),
        "{body}"
    );
    assert!(error(&body).contains("unknown scheme"), "{body}");

    let (status, body) = server.get("/api/v1/queues", As::Key("sb_nothex")).await;
    assert_eq!(status, 401);
    assert!(error(&body).contains("malformed API key"), "{body}");

    let (status, body) = server.get("/api/v1/queues", As::Header("Basic %%%")).await;
    assert_eq!(status, 401);
    assert!(error(&body).contains("not base64"), "{body}");

    // A well-formed key nobody issued, and a real key id with a wrong secret: the same message.
    let unknown = format!("sb_{}_{}", "0".repeat(16), "0".repeat(64));
    let (status, body) = server.get("/api/v1/queues", As::Key(&unknown)).await;
    assert_eq!(status, 401);
    assert_eq!(error(&body), "unknown or revoked API key");
    let wrong_secret = format!("{}{}", &server.acme[..20], "0".repeat(64));
    let (status, body) = server.get("/api/v1/queues", As::Key(&wrong_secret)).await;
    assert_eq!((status, error(&body)), (401, "unknown or revoked API key"));

    let (status, body) = server
        .get("/api/v1/queues", As::User("nobody", "password123"))
        .await;
    assert_eq!(status, 401);
    assert!(
        error(&body).contains("wrong username or password"),
        "{body}"
    );

    // 401s name the accepted schemes.
    let response = server
        .http
        .get(format!("{}/api/v1/queues", server.base))
        .send()
        .await
        .expect("request");
    let challenge = response
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(
        challenge.contains("Bearer") && challenge.contains("Basic"),
        "{challenge}"
    );

    // /health stays open.
    let (status, _) = server.get("/health", As::Nobody).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_revoked_key_or_disabled_user_is_refused_at_once_despite_the_cache() {
    let server = Server::start().await;
    let (key_id, token) = server.key(&server.acme, "supervisor").await;
    assert_eq!(server.get("/api/v1/agents", As::Key(&token)).await.0, 200);
    assert_eq!(
        server
            .delete(&format!("/api/v1/keys/{key_id}"), As::Key(&server.acme))
            .await,
        204
    );
    let (status, body) = server.get("/api/v1/agents", As::Key(&token)).await;
    assert_eq!((status, error(&body)), (401, "unknown or revoked API key"));
    assert_eq!(
        server
            .delete(&format!("/api/v1/keys/{key_id}"), As::Key(&server.acme))
            .await,
        404,
        "already revoked"
    );
    let (_, keys) = server.get("/api/v1/keys", As::Key(&server.acme)).await;
    let listed = keys["keys"]
        .as_array()
        .and_then(|k| k.iter().find(|k| k["key_id"] == key_id.as_str()))
        .cloned()
        .unwrap_or_default();
    assert!(listed["revoked_at_us"].is_i64(), "{keys}");
    assert!(
        !keys.to_string().contains(&token[20..]),
        "no secret in listings"
    );

    let (status, body) = server
        .post(
            "/api/v1/users",
            As::Key(&server.acme),
            json!({"username": "ana", "password": "correct horse", "role": "client"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let ana = As::User("ana", "correct horse");
    assert_eq!(
        server
            .post("/api/v1/agents/ana/heartbeat", ana, json!({}))
            .await
            .0,
        200
    );
    let (status, body) = server
        .get("/api/v1/queues", As::User("ana", "wrong horse"))
        .await;
    assert_eq!(status, 401);
    assert!(
        error(&body).contains("wrong username or password"),
        "{body}"
    );
    assert_eq!(
        server
            .delete("/api/v1/users/ana", As::Key(&server.acme))
            .await,
        204
    );
    let (status, _) = server
        .post("/api/v1/agents/ana/heartbeat", ana, json!({}))
        .await;
    assert_eq!(status, 401, "a disabled user is refused at once");
}

#[tokio::test]
async fn a_tenant_never_sees_or_changes_another_tenants_things() {
    let server = Server::start().await;
    let acme = As::Key(&server.acme);
    let globex = As::Key(&server.globex);

    let (_, queues) = server.get("/api/v1/queues", globex).await;
    let names: Vec<&str> = queues["queues"]
        .as_array()
        .map(|q| q.iter().filter_map(|q| q["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, vec!["sales"]);
    let (_, agents) = server.get("/api/v1/agents", globex).await;
    assert_eq!(
        agents["agents"].as_array().map(Vec::len),
        Some(1),
        "{agents}"
    );
    assert_eq!(agents["agents"][0]["name"], "gina");

    // Acme's agents and queues do not exist for Globex.
    let (status, body) = server
        .post("/api/v1/agents/ana/login", globex, json!({}))
        .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(error(&body), "no agent named \"ana\"");
    let (status, body) = server
        .post("/api/v1/contacts", globex, json!({"queue": "support"}))
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        error(&body).contains("no queue is named \"support\""),
        "{body}"
    );

    // Acme's contact is invisible to Globex.
    let (status, body) = server
        .post("/api/v1/contacts", acme, json!({"queue": "support"}))
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_u64().expect("an id");
    let (status, _) = server
        .get(&format!("/api/v1/contacts/{id}/explain"), globex)
        .await;
    assert_eq!(status, 404);
    let (status, _) = server
        .post(&format!("/api/v1/contacts/{id}/abandon"), globex, json!({}))
        .await;
    assert_eq!(status, 404);
    let (status, _) = server
        .post(
            &format!("/api/v1/contacts/{id}/priority"),
            acme,
            json!({"priority": 3}),
        )
        .await;
    assert_eq!(status, 200, "its own tenant may");

    // Keys: Globex neither lists nor revokes Acme's.
    let (acme_key, acme_token) = server.key(&server.acme, "client").await;
    let (_, keys) = server.get("/api/v1/keys", globex).await;
    assert!(!keys.to_string().contains(&acme_key), "{keys}");
    assert_eq!(
        server
            .delete(&format!("/api/v1/keys/{acme_key}"), globex)
            .await,
        404
    );
    assert_eq!(
        server.get("/api/v1/queues", As::Key(&acme_token)).await.0,
        200
    );
}

#[tokio::test]
async fn roles_limit_what_a_credential_may_do() {
    let server = Server::start().await;
    let (_, client) = server.key(&server.acme, "client").await;
    let (_, supervisor) = server.key(&server.acme, "supervisor").await;
    let client = As::Key(&client);
    let supervisor = As::Key(&supervisor);

    let (status, body) = server
        .post(
            "/api/v1/keys",
            client,
            json!({"label": "mine", "role": "admin"}),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(error(&body).contains("needs the admin role"), "{body}");
    assert_eq!(server.get("/api/v1/keys", client).await.0, 403);
    assert_eq!(server.get("/api/v1/users", supervisor).await.0, 403);
    let (status, body) = server.get("/api/v1/agents", client).await;
    assert_eq!(status, 403);
    assert!(error(&body).contains("needs the supervisor role"), "{body}");
    assert_eq!(server.get("/api/v1/agents", supervisor).await.0, 200);
    assert_eq!(
        server
            .post("/api/v1/agents/bob/login", client, json!({}))
            .await
            .0,
        403,
        "a client key is not an agent"
    );
    assert_eq!(
        server
            .post("/api/v1/agents/bob/login", supervisor, json!({}))
            .await
            .0,
        200
    );

    // A web user named after an agent acts for that agent only.
    let (status, _) = server
        .post(
            "/api/v1/users",
            As::Key(&server.acme),
            json!({"username": "ana", "password": "correct horse", "role": "client"}),
        )
        .await;
    assert_eq!(status, 201);
    let ana = As::User("ana", "correct horse");
    assert_eq!(
        server
            .post("/api/v1/agents/ana/login", ana, json!({}))
            .await
            .0,
        200
    );
    let (status, body) = server
        .post("/api/v1/agents/bob/logout", ana, json!({}))
        .await;
    assert_eq!(status, 403);
    assert!(error(&body).contains("only agent \"bob\""), "{body}");
    let encoded = base64::engine::general_purpose::STANDARD.encode("ana:correct horse");
    let basic = format!("basic {encoded}");
    assert_eq!(
        server
            .post(
                "/api/v1/agents/ana/break",
                As::Header(&basic),
                json!({"reason": "lunch"})
            )
            .await
            .0,
        200,
        "the scheme is case-insensitive"
    );

    // Bad admin bodies say what is wrong.
    let (status, body) = server
        .post(
            "/api/v1/keys",
            As::Key(&server.acme),
            json!({"label": "x", "role": "boss"}),
        )
        .await;
    assert_eq!(status, 422);
    assert!(error(&body).contains("role"), "{body}");
    let (status, body) = server
        .post(
            "/api/v1/users",
            As::Key(&server.acme),
            json!({"username": "ana", "password": "another one", "role": "client"}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = server
        .post(
            "/api/v1/users",
            As::Key(&server.acme),
            json!({"username": "carl", "password": "short", "role": "client"}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(error(&body).contains("password"), "{body}");
}

#[tokio::test]
async fn every_error_is_json_and_bodies_are_bounded() {
    let server = Server::start().await;
    let admin = As::Key(&server.acme);
    let (status, body) = server.get("/nowhere", As::Nobody).await;
    assert_eq!(status, 404);
    assert!(error(&body).contains("/nowhere"), "{body}");
    let (status, body) = server.get("/api/v1/unknown", admin).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = server
        .call(reqwest::Method::PUT, "/api/v1/queues", admin, None)
        .await;
    assert_eq!(status, 405);
    assert!(error(&body).contains("PUT"), "{body}");
    let (status, body) = server.get("/api/v1/contacts/abc/explain", admin).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = server
        .post("/api/v1/agents/ana/break", admin, json!({"reason": 7}))
        .await;
    assert_eq!(status, 422);
    assert!(error(&body).contains("reason"), "{body}");
    let response = server
        .http
        .post(format!("{}/api/v1/contacts", server.base))
        .bearer_auth(&server.acme)
        .body(vec![b' '; 100 * 1024])
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 413);
    let body: Value = response.json().await.expect("JSON");
    assert!(body["error"].is_string(), "{body}");
    let (status, body) = server
        .post("/api/v1/agents/ana/accept", admin, json!({}))
        .await;
    assert_eq!(status, 400);
    assert!(error(&body).contains("contact"), "{body}");
}

#[tokio::test]
async fn live_events_need_the_calls_side() {
    let server = Server::start().await;
    let (status, body) = server
        .get("/api/v1/agents/ana/events", As::Key(&server.acme))
        .await;
    assert_eq!(status, 404);
    assert!(error(&body).contains("calls side"), "{body}");
    let (status, _) = server
        .get("/api/v1/agents/gina/events", As::Key(&server.acme))
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn bootstrap_makes_one_admin_key_per_tenant() {
    let server = Server::start().await;
    let again = switchboard::web::bootstrap_admin_key(&server.store, "acme").await;
    let error = again.expect_err("acme has an admin key");
    assert!(
        error
            .to_string()
            .contains("already has an active admin key"),
        "{error}"
    );
    let initech = switchboard::web::bootstrap_admin_key(&server.store, "initech")
        .await
        .expect("a new tenant gets one");
    assert!(initech.starts_with("sb_"));
}
