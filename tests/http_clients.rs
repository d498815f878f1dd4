//! The operator's API over the wire: the operator creates clients, sets their trunk rules,
//! makes their first keys and lists and revokes their keys; the operator's key reads none of a
//! client's data, and no client's key reaches another client or the operator's API. What the
//! operator set survives a restart.

use serde_json::{Value, json};
use switchboard::config::Config;
use switchboard::controller::{Controller, DurableRouter};
use switchboard::model::Timestamp;
use switchboard::store::Store;

const CENTER: &str = r#"
[[queues]]
name = "support"
tenant = "acme"

[[clients]]
name = "acme"
trunk_ratio = 1.2
after_hours_trunks = 3
"#;

struct Server {
    base: String,
    http: reqwest::Client,
    serve: tokio::task::JoinHandle<()>,
}

impl Server {
    async fn start(store: Store) -> Server {
        let config = Config::load_from_str(CENTER, "clients.toml", Vec::<(String, String)>::new())
            .expect("valid");
        let resolved = config.resolve().expect("resolves");
        let (router, _) = DurableRouter::open(resolved.clone(), store.clone(), Timestamp::now())
            .await
            .expect("router");
        let (controller, _task) = Controller::spawn(router);
        let app = switchboard::web::router(controller, &resolved, store);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let address = listener.local_addr().expect("address");
        let serve = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Server {
            base: format!("http://{address}"),
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .expect("client"),
            serve,
        }
    }

    async fn send(
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
        let text = response.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn get(&self, token: &str, path: &str) -> (u16, Value) {
        self.send(token, reqwest::Method::GET, path, None).await
    }

    async fn put(&self, token: &str, path: &str, body: Value) -> (u16, Value) {
        self.send(token, reqwest::Method::PUT, path, Some(body))
            .await
    }

    async fn post(&self, token: &str, path: &str, body: Value) -> (u16, Value) {
        self.send(token, reqwest::Method::POST, path, Some(body))
            .await
    }

    async fn delete(&self, token: &str, path: &str) -> (u16, Value) {
        self.send(token, reqwest::Method::DELETE, path, None).await
    }

    /// A GET as a web user (HTTP Basic): its status.
    async fn get_as_user(&self, username: &str, password: &str, path: &str) -> u16 {
        self.http
            .get(format!("{}{path}", self.base))
            .basic_auth(username, Some(password))
            .send()
            .await
            .expect("request")
            .status()
            .as_u16()
    }
}

/// The id of the key labelled `label` in a key list.
fn key_id(body: &Value, label: &str) -> String {
    body["keys"]
        .as_array()
        .and_then(|k| k.iter().find(|k| k["label"] == label))
        .and_then(|k| k["key_id"].as_str())
        .unwrap_or_else(|| panic!("no key {label:?} in {body}"))
        .to_owned()
}

fn client<'a>(body: &'a Value, name: &str) -> &'a Value {
    body["clients"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no client {name:?} in {body}"))
}

#[tokio::test]
async fn the_operator_creates_a_client_sets_its_trunks_and_hands_it_a_key() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}", dir.path().join("clients.db").display());
    let store = Store::open(&url).await.expect("store");
    let operator = switchboard::web::bootstrap_operator_key(&store)
        .await
        .expect("the operator's key");
    assert!(
        switchboard::web::bootstrap_operator_key(&store)
            .await
            .is_err(),
        "a second bootstrap is refused while the first key is active"
    );
    let acme = switchboard::web::bootstrap_admin_key(&store, "acme")
        .await
        .expect("acme's key");
    let server = Server::start(store.clone()).await;

    // The config file's client, with its rules.
    let (status, body) = server.get(&operator, "/api/v1/clients").await;
    assert_eq!(status, 200, "{body}");
    let listed = client(&body, "acme");
    assert_eq!(listed["trunk_ratio"], 1.2, "{listed}");
    assert_eq!(listed["after_hours_trunks"], 3, "{listed}");
    assert_eq!(listed["set_by_operator"], false, "{listed}");
    assert_eq!(listed["queues"], 1, "{listed}");

    // A new client; the same rules again change nothing; bad rules and names say what is wrong.
    let rules = json!({"trunk_ratio": 2.0, "after_hours_trunks": 5});
    let (status, body) = server
        .put(&operator, "/api/v1/clients/initech", rules.clone())
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = server
        .put(&operator, "/api/v1/clients/initech", rules.clone())
        .await;
    assert_eq!(
        (status, &body["outcome"]),
        (200, &json!("unchanged")),
        "{body}"
    );
    let (status, body) = server
        .put(
            &operator,
            "/api/v1/clients/initech",
            json!({"trunk_ratio": 0}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("trunk_ratio"),
        "{body}"
    );
    let (status, body) = server
        .put(&operator, "/api/v1/clients/initech", json!({"trunks": 4}))
        .await;
    assert_eq!(status, 422, "an unknown field is refused: {body}");
    let (status, body) = server
        .put(&operator, "/api/v1/clients/*", rules.clone())
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = server
        .put(
            &operator,
            "/api/v1/clients/acme",
            json!({"after_hours_trunks": 4}),
        )
        .await;
    assert_eq!(
        (status, &body["outcome"]),
        (200, &json!("updated")),
        "{body}"
    );

    // The new client's first key, made by the operator, works for that client alone.
    let (status, body) = server
        .post(&operator, "/api/v1/clients/nobody/keys", json!({}))
        .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = server
        .post(
            &operator,
            "/api/v1/clients/initech/keys",
            json!({"role": "operator"}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = server
        .post(&operator, "/api/v1/clients/initech/keys", json!({}))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["role"], "admin", "{body}");
    let initech = body["token"].as_str().expect("a token").to_owned();
    let (status, body) = server
        .put(&initech, "/api/v1/queues/initech-help", json!({}))
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = server.get(&initech, "/api/v1/queues").await;
    assert_eq!(status, 200, "{body}");
    let names: Vec<&str> = body["queues"]
        .as_array()
        .map(|q| q.iter().filter_map(|q| q["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["initech-help"], "only its own queue: {body}");

    // Keys stay on their side.
    let (status, body) = server.get(&operator, "/api/v1/queues").await;
    assert_eq!(status, 403, "the operator reads no client's data: {body}");
    let (status, body) = server.get(&operator, "/api/v1/cdrs").await;
    assert_eq!(status, 403, "{body}");
    for token in [&acme, &initech] {
        let (status, body) = server.get(token, "/api/v1/clients").await;
        assert_eq!(status, 403, "{body}");
        let (status, body) = server
            .put(
                token,
                "/api/v1/clients/acme",
                json!({"after_hours_trunks": 99}),
            )
            .await;
        assert_eq!(status, 403, "a client cannot raise its own trunks: {body}");
        let (status, body) = server
            .post(
                token,
                "/api/v1/keys",
                json!({"label": "x", "role": "operator"}),
            )
            .await;
        assert_eq!(status, 403, "{body}");
    }
    let (status, body) = server
        .post(
            &operator,
            "/api/v1/keys",
            json!({"label": "backup", "role": "admin"}),
        )
        .await;
    assert_eq!(
        status, 422,
        "the operator's own keys are operator keys: {body}"
    );
    let (status, body) = server
        .post(
            &operator,
            "/api/v1/keys",
            json!({"label": "backup", "role": "operator"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");

    // A restart keeps what the operator set.
    server.serve.abort();
    let _ = server.serve.await;
    let server = Server::start(store.clone()).await;
    let (status, body) = server.get(&operator, "/api/v1/clients").await;
    assert_eq!(status, 200, "{body}");
    let initech_listed = client(&body, "initech");
    assert_eq!(initech_listed["trunk_ratio"], 2.0, "{body}");
    assert_eq!(initech_listed["after_hours_trunks"], 5, "{body}");
    assert_eq!(initech_listed["set_by_operator"], true, "{body}");
    assert_eq!(initech_listed["queues"], 1, "{body}");
    let acme_listed = client(&body, "acme");
    assert_eq!(
        acme_listed["after_hours_trunks"], 4,
        "the operator's rules over the file's: {body}"
    );
    assert_eq!(
        acme_listed["trunk_ratio"], 1.5,
        "left out: the default: {body}"
    );
}

/// A fresh store with the operator's key and acme's first admin key, a server over it, and
/// client initech created by the operator: `(dir, store, operator, acme, server)`.
async fn operator_with_two_clients() -> (tempfile::TempDir, Store, String, String, Server) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}", dir.path().join("center.db").display());
    let store = Store::open(&url).await.expect("store");
    let operator = switchboard::web::bootstrap_operator_key(&store)
        .await
        .expect("the operator's key");
    let acme = switchboard::web::bootstrap_admin_key(&store, "acme")
        .await
        .expect("acme's key");
    let server = Server::start(store.clone()).await;
    let (status, body) = server
        .put(&operator, "/api/v1/clients/initech", json!({}))
        .await;
    assert_eq!(status, 201, "{body}");
    (dir, store, operator, acme, server)
}

#[tokio::test]
async fn the_operator_lists_a_clients_keys_and_revokes_one_that_leaked() {
    let (_dir, store, operator, acme, server) = operator_with_two_clients().await;
    // A tenant whose first key was made from the command line, never declared a client.
    let globex = switchboard::web::bootstrap_admin_key(&store, "globex")
        .await
        .expect("globex's key");
    let (status, body) = server
        .post(
            &operator,
            "/api/v1/clients/acme/keys",
            json!({"label": "crm", "role": "client"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let crm = body["token"].as_str().expect("a token").to_owned();
    let (status, _) = server.get(&crm, "/api/v1/cdrs").await;
    assert_eq!(status, 200, "the new key works");

    // The list names each key, its role and label, and shows no secret.
    let (status, body) = server.get(&operator, "/api/v1/clients/acme/keys").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["client"], "acme", "{body}");
    let keys = body["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 2, "{body}");
    assert!(keys.iter().all(|k| k["revoked_at_us"].is_null()), "{body}");
    assert!(
        !body.to_string().contains(&crm) && !body.to_string().contains(&acme),
        "no token is shown again: {body}"
    );
    let crm_id = key_id(&body, "crm");
    let (status, body) = server.get(&operator, "/api/v1/clients/initech/keys").await;
    assert_eq!(
        (status, &body["keys"]),
        (200, &json!([])),
        "a client without keys: {body}"
    );

    // Only the client's own key is revoked under its name.
    let (status, body) = server
        .delete(&operator, &format!("/api/v1/clients/initech/keys/{crm_id}"))
        .await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = server.get(&crm, "/api/v1/cdrs").await;
    assert_eq!(status, 200, "acme's key still works");
    let (status, body) = server
        .delete(&operator, &format!("/api/v1/clients/acme/keys/{crm_id}"))
        .await;
    assert_eq!(status, 204, "{body}");
    let (status, _) = server.get(&crm, "/api/v1/cdrs").await;
    assert_eq!(status, 401, "a revoked key is refused at once");
    let (status, _) = server.get(&acme, "/api/v1/cdrs").await;
    assert_eq!(status, 200, "the client's other key goes on working");
    let (status, body) = server
        .delete(&operator, &format!("/api/v1/clients/acme/keys/{crm_id}"))
        .await;
    assert_eq!(status, 404, "already revoked: {body}");
    let (status, body) = server.get(&operator, "/api/v1/clients/acme/keys").await;
    assert_eq!(status, 200, "{body}");
    let revoked = body["keys"]
        .as_array()
        .and_then(|k| k.iter().find(|k| k["key_id"] == crm_id.as_str()))
        .expect("the revoked key stays listed");
    assert!(revoked["revoked_at_us"].is_i64(), "{body}");

    // A tenant that holds keys is reachable though it is no declared client.
    let (status, body) = server.get(&operator, "/api/v1/clients/globex/keys").await;
    assert_eq!(status, 200, "{body}");
    let globex_id = body["keys"][0]["key_id"]
        .as_str()
        .expect("a key")
        .to_owned();
    let (status, body) = server
        .delete(
            &operator,
            &format!("/api/v1/clients/globex/keys/{globex_id}"),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let (status, _) = server.get(&globex, "/api/v1/cdrs").await;
    assert_eq!(status, 401);

    // Wrong names and ids say so; a client's key reaches none of this.
    let (status, body) = server.get(&operator, "/api/v1/clients/nobody/keys").await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = server.get(&operator, "/api/v1/clients/*/keys").await;
    assert_eq!(
        status, 422,
        "the operator's own keys are at /api/v1/keys: {body}"
    );
    let (status, body) = server
        .delete(&operator, "/api/v1/clients/acme/keys/not-a-key")
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = server.get(&acme, "/api/v1/clients/acme/keys").await;
    assert_eq!(status, 403, "{body}");
    let acme_id = key_id(
        &server.get(&operator, "/api/v1/clients/acme/keys").await.1,
        "bootstrap admin",
    );
    let (status, body) = server
        .delete(&acme, &format!("/api/v1/clients/acme/keys/{acme_id}"))
        .await;
    assert_eq!(status, 403, "{body}");
}

#[tokio::test]
async fn the_operator_lists_a_clients_web_users_and_disables_one() {
    let (_dir, _store, operator, acme, server) = operator_with_two_clients().await;
    let password = "correct horse battery staple";
    let (status, body) = server
        .post(
            &acme,
            "/api/v1/users",
            json!({"username": "ana", "password": password, "role": "client"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        server.get_as_user("ana", password, "/api/v1/cdrs").await,
        200
    );

    let (status, body) = server.get(&operator, "/api/v1/clients/acme/users").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["users"][0]["username"], "ana", "{body}");
    assert_eq!(body["users"][0]["role"], "client", "{body}");
    assert!(body["users"][0]["disabled_at_us"].is_null(), "{body}");
    assert!(!body.to_string().contains(password), "no password: {body}");
    let (status, body) = server.get(&operator, "/api/v1/clients/initech/users").await;
    assert_eq!((status, &body["users"]), (200, &json!([])), "{body}");

    let (status, body) = server
        .delete(&operator, "/api/v1/clients/initech/users/ana")
        .await;
    assert_eq!(status, 404, "another client's user: {body}");
    assert_eq!(
        server.get_as_user("ana", password, "/api/v1/cdrs").await,
        200
    );
    let (status, body) = server
        .delete(&operator, "/api/v1/clients/acme/users/ana")
        .await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(
        server.get_as_user("ana", password, "/api/v1/cdrs").await,
        401,
        "a disabled user is refused at once"
    );
    let (status, body) = server
        .delete(&operator, "/api/v1/clients/acme/users/ana")
        .await;
    assert_eq!(status, 404, "already disabled: {body}");
    let (status, body) = server.get(&operator, "/api/v1/clients/acme/users").await;
    assert_eq!(status, 200, "{body}");
    assert!(body["users"][0]["disabled_at_us"].is_i64(), "{body}");

    let (status, body) = server.get(&operator, "/api/v1/clients/nobody/users").await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = server.get(&acme, "/api/v1/clients/acme/users").await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = server.delete(&acme, "/api/v1/clients/acme/users/ana").await;
    assert_eq!(status, 403, "{body}");
}
