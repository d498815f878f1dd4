//! An agent's portal over HTTP in front of the Asterisk emulator: the agent signs in as a web
//! user, opens its server-sent event stream, logs in and gets ready over the API, and when a
//! customer calls, the stream pops the offer with the caller's number.

#[path = "support/center.rs"]
mod center;

use std::time::Duration;

use center::{PASSWORD, center};
use serde_json::Value;
use switchboard::config::Config;
use switchboard::emulator::asterisk::{EmulatorOptions, InboundCall};
use switchboard::store::Role;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agents_event_stream_pops_the_offer_with_the_callers_number() {
    let mut options = EmulatorOptions::capture(PASSWORD);
    options.time_scale = 0.05;
    options.rtp = false;
    let c = center(options, CENTER, &[("ann", "agent")]).await;
    let resolved = Config::load_from_str(CENTER, "test.toml", Vec::<(String, String)>::new())
        .expect("valid")
        .resolve()
        .expect("resolves");
    let admin = switchboard::web::bootstrap_admin_key(&c.store, "acme")
        .await
        .expect("admin key");
    c.store
        .create_web_user("acme", "ann", "ann's password", Role::Client)
        .await
        .expect("ann's web user");
    let app = switchboard::web::router(c.controller.clone(), &resolved, c.store.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let http = reqwest::Client::new();

    let mut stream = http
        .get(format!("{base}/api/v1/agents/ann/events"))
        .basic_auth("ann", Some("ann's password"))
        .send()
        .await
        .expect("the stream opens");
    assert_eq!(stream.status().as_u16(), 200);
    let content_type = stream
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );

    for action in ["login", "ready"] {
        let response = http
            .post(format!("{base}/api/v1/agents/ann/{action}"))
            .basic_auth("ann", Some("ann's password"))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status().as_u16(), 200, "{action}");
    }
    let agents: Value = http
        .get(format!("{base}/api/v1/agents"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("JSON");
    assert_eq!(agents["agents"][0]["name"], "ann", "{agents}");
    assert_eq!(agents["agents"][0]["state"], "available", "{agents}");

    c.emu
        .place_call(&InboundCall {
            endpoint: "customer".into(),
            extension: "8001".into(),
            caller_name: "Customer".into(),
            caller_number: "+4930123".into(),
            dtmf: Vec::new(),
            hangup_after: Some(Duration::from_secs(100)),
        })
        .expect("the call is placed");

    let mut received = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !(received.contains("event: offered") && received.contains("+4930123")) {
        match tokio::time::timeout_at(deadline, stream.chunk()).await {
            Ok(Ok(Some(chunk))) => received.push_str(&String::from_utf8_lossy(&chunk)),
            other => panic!("no offer on the stream ({other:?}); so far: {received:?}"),
        }
    }
    let offered = received
        .split("\n\n")
        .find(|event| event.contains("event: offered"))
        .unwrap_or("");
    let data = offered
        .lines()
        .find_map(|line| line.strip_prefix("data: "))
        .unwrap_or("");
    let notice: Value = serde_json::from_str(data).expect("the data is JSON");
    assert_eq!(notice["agent"], "ann");
    assert_eq!(notice["caller"], "+4930123");
    assert_eq!(notice["queue"], "sales");
}
