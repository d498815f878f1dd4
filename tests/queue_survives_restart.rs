//! Durable before reported, and rebuilt after a restart: every lifecycle change is in the store
//! when the router's decision reaches the caller, and a new process rebuilds the queue from the
//! store in the same order with the same waiting times. Runs on SQLite and on PostgreSQL.

#[path = "support/store_harness.rs"]
mod harness;

use std::collections::BTreeMap;
use std::time::Duration;

use switchboard::config::Config;
use switchboard::controller::DurableRouter;
use switchboard::model::{ContactId, ContactState, MediaType, Priority, Timestamp};
use switchboard::routing::{ContactSetup, Output};
use switchboard::store::Store;

const CENTER: &str = r#"
[[queues]]
name = "sales"
tenant = "acme"
strategy = "longest-idle-agent"
max_wait_s = 3600
overflow = "voicemail"
[[queues.attributes]]
name = "language"
modifier = "required"
min_level = 5

[[agents]]
name = "ana"
tenant = "acme"
attributes = { language = ["es", "en"] }
queues = ["sales"]

[[agents]]
name = "bob"
tenant = "acme"
attributes = { language = ["en"] }
queues = ["sales"]
"#;

fn config() -> Config {
    Config::load_from_str(CENTER, "test.toml", Vec::<(String, String)>::new())
        .expect("the test center is valid")
}

fn t(secs: i64) -> Timestamp {
    Timestamp::from_secs(1_800_000_000 + secs)
}

fn call(language: &str, priority: i32, customer: &str) -> ContactSetup {
    ContactSetup {
        queue: "sales".into(),
        media: MediaType::Voice,
        priority: Priority(priority),
        attributes: BTreeMap::from([
            ("language".to_owned(), language.to_owned()),
            ("customer".to_owned(), customer.to_owned()),
        ]),
        criteria: vec![],
    }
}

async fn open(store: Store, now: Timestamp) -> DurableRouter {
    let resolved = config().resolve().expect("resolves");
    let (router, _) = DurableRouter::open(resolved, store, now)
        .await
        .expect("opens");
    router
}

fn offered(outputs: &[Output]) -> Vec<ContactId> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Offered { contact, .. } => Some(*contact),
            _ => None,
        })
        .collect()
}

async fn state(store: &Store, id: ContactId) -> ContactState {
    store
        .contact(id)
        .await
        .expect("reads")
        .expect("stored")
        .state
}

/// The whole behaviour, on one store reachable at `url`.
async fn survives_a_restart(url: String) {
    let store = Store::open(&url).await.expect("store opens");
    let mut router = open(store.clone(), t(0)).await;

    // Ana serves one Spanish caller; the others wait.
    router.log_in(t(0), "ana").await.expect("ana logs in");
    let (first, outputs) = router
        .arrive(t(1), &call("es", 0, "C-1"))
        .await
        .expect("arrives");
    assert_eq!(offered(&outputs), vec![first]);
    assert_eq!(
        state(&store, first).await,
        ContactState::Offered,
        "stored before it was reported"
    );
    router
        .accept(t(2), first, "ana")
        .await
        .expect("ana answers");
    assert_eq!(state(&store, first).await, ContactState::Connected);

    let (a, _) = router
        .arrive(t(10), &call("es", 0, "C-2"))
        .await
        .expect("arrives");
    let (b, _) = router
        .arrive(t(20), &call("en", 0, "C-3"))
        .await
        .expect("arrives");
    let (c, _) = router
        .arrive(t(30), &call("es", 2, "C-4"))
        .await
        .expect("arrives");
    let (d, _) = router
        .arrive(t(40), &call("es", 0, "C-5"))
        .await
        .expect("arrives");
    for id in [a, b, c, d] {
        assert_eq!(state(&store, id).await, ContactState::Queued);
    }
    drop(router);
    store.close().await;

    // A new process, 100 s later.
    let store = Store::open(&url).await.expect("store reopens");
    let mut router = open(store.clone(), t(100)).await;
    assert_eq!(
        router.router().waiting_contacts(),
        4,
        "every waiting contact is back"
    );
    assert_eq!(
        router.router().live_contacts(),
        5,
        "and the connected one too"
    );
    let waited = router
        .router()
        .explain(t(100), a)
        .expect("contact a is live")
        .waited;
    assert_eq!(
        waited,
        Duration::from_secs(90),
        "waiting time counts from the original arrival"
    );

    // Ana logs back in (still on her call), finishes it, and takes the highest priority, then
    // the longest waiting Spanish caller.
    let outputs = router
        .log_in(t(100), "ana")
        .await
        .expect("ana logs back in");
    assert!(
        offered(&outputs).is_empty(),
        "ana is still on the call she had before the restart"
    );
    let outputs = router.complete(t(101), first).await.expect("completes");
    assert_eq!(offered(&outputs), vec![c]);
    assert_eq!(state(&store, first).await, ContactState::Completed);
    router.accept(t(102), c, "ana").await.expect("answers");
    let outputs = router.complete(t(103), c).await.expect("completes");
    assert_eq!(
        offered(&outputs),
        vec![a],
        "then the longest waiting Spanish caller"
    );
    // Bob (English only) takes the English caller at once.
    let outputs = router.log_in(t(104), "bob").await.expect("bob logs in");
    assert_eq!(offered(&outputs), vec![b]);
    // The customer who talked to Ana before the restart is remembered (affinity data rebuilt).
    let events = store.contact_events(first).await.expect("events");
    let states: Vec<ContactState> = events.iter().map(|e| e.state).collect();
    assert_eq!(
        states,
        vec![
            ContactState::Queued,
            ContactState::Offered,
            ContactState::Connected,
            ContactState::Completed
        ]
    );
    assert_eq!(events[2].agent.as_deref(), Some("ana"));
    // d still waits; abandoning it is stored as its end.
    router.abandon(t(105), d).await.expect("abandons");
    assert_eq!(state(&store, d).await, ContactState::Abandoned);
    assert!(
        router.abandon(t(106), d).await.is_err(),
        "a contact ends once"
    );
    store.close().await;
}

/// A contact that was ringing when the process stopped goes back to its place.
async fn a_lost_offer_goes_back_to_its_place(url: String) {
    let store = Store::open(&url).await.expect("store opens");
    let mut router = open(store.clone(), t(0)).await;
    let (early, _) = router
        .arrive(t(1), &call("en", 0, "C-1"))
        .await
        .expect("arrives");
    router.log_in(t(2), "bob").await.expect("logs in");
    assert_eq!(state(&store, early).await, ContactState::Offered);
    let (late, _) = router
        .arrive(t(3), &call("en", 0, "C-2"))
        .await
        .expect("arrives");
    drop(router);

    let mut router = open(store.clone(), t(50)).await;
    assert_eq!(
        state(&store, early).await,
        ContactState::Queued,
        "the lost offer is written back as queued"
    );
    let outputs = router.log_in(t(51), "bob").await.expect("logs in");
    assert_eq!(
        offered(&outputs),
        vec![early],
        "it kept its place ahead of the later caller"
    );
    assert_eq!(router.router().waiting_contacts(), 1);
    let _ = late;
    store.close().await;
}

/// An arrival the configuration cannot route is refused before anything is stored.
async fn bad_arrivals_store_nothing(url: String) {
    let store = Store::open(&url).await.expect("store opens");
    let mut router = open(store.clone(), t(0)).await;
    let mut bad = call("es", 0, "C-1");
    bad.queue = "nowhere".into();
    let error = router.arrive(t(1), &bad).await.expect_err("unknown queue");
    assert!(error.to_string().contains("nowhere"), "{error}");
    assert!(store.open_contacts().await.expect("reads").is_empty());
    store.close().await;
}

#[tokio::test]
async fn sqlite_queue_survives_a_restart() {
    let file = harness::SqliteFile::new();
    survives_a_restart(file.url.clone()).await;
}

#[tokio::test]
async fn sqlite_lost_offer_goes_back_to_its_place() {
    let file = harness::SqliteFile::new();
    a_lost_offer_goes_back_to_its_place(file.url.clone()).await;
}

#[tokio::test]
async fn sqlite_bad_arrivals_store_nothing() {
    let file = harness::SqliteFile::new();
    bad_arrivals_store_nothing(file.url.clone()).await;
}

#[tokio::test]
async fn postgres_queue_survives_a_restart() {
    harness::on_postgres(survives_a_restart).await;
}

#[tokio::test]
async fn postgres_lost_offer_goes_back_to_its_place() {
    harness::on_postgres(a_lost_offer_goes_back_to_its_place).await;
}

#[tokio::test]
async fn postgres_bad_arrivals_store_nothing() {
    harness::on_postgres(bad_arrivals_store_nothing).await;
}
