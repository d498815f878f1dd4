//! The store's contract: one suite of behaviours, each a function over a [`Store`], run against
//! a SQLite file and SQLite in memory always, and against PostgreSQL when
//! `SWITCHBOARD_TEST_POSTGRES_URL` names a server (each test gets a fresh database there, dropped
//! afterwards). Without that variable the PostgreSQL tests pass after saying loudly that they
//! were skipped; see DEVELOPERS.md.

#[path = "support/store_harness.rs"]
mod harness;

use std::collections::BTreeMap;

use switchboard::model::{ContactId, ContactState, MediaType, Priority, Timestamp};
use switchboard::store::{
    LastAgent, MAX_ATTRIBUTE_VALUE_CHARS, MAX_ATTRIBUTES, MAX_NAME_CHARS, NewContact, Store,
    StoreError, StoreKind, StoredContact, Transition,
};

use ContactState::{Abandoned, Completed, Connected, Offered, Overflowed, Queued};

// ---------------------------------------------------------------------------------------------
// Building blocks

fn at(secs: i64) -> Timestamp {
    Timestamp::from_secs(secs)
}

/// A voice contact of `tenant` in `queue` with `priority`, arrived at second `arrived`.
fn contact(tenant: &str, queue: &str, priority: i32, arrived: i64) -> NewContact {
    NewContact {
        tenant: tenant.to_owned(),
        queue: queue.to_owned(),
        media: MediaType::Voice,
        priority: Priority(priority),
        arrived_at: at(arrived),
        attributes: BTreeMap::from([("language".to_owned(), "es".to_owned())]),
        criteria_json: r#"{"all":[{"skill":"spanish","min":3}]}"#.to_owned(),
        customer: None,
    }
}

fn with_customer(mut new: NewContact, customer: &str) -> NewContact {
    new.customer = Some(customer.to_owned());
    new
}

fn to(contact: ContactId, state: ContactState, secs: i64) -> Transition {
    Transition::new(contact, state, at(secs))
}

fn to_agent(contact: ContactId, state: ContactState, secs: i64, agent: &str) -> Transition {
    Transition {
        agent: Some(agent.to_owned()),
        ..to(contact, state, secs)
    }
}

async fn insert(store: &Store, new: NewContact) -> ContactId {
    store
        .insert_contact(&new)
        .await
        .unwrap_or_else(|e| panic!("inserting {new:?}: {e}"))
}

async fn record(store: &Store, transitions: &[Transition]) {
    store
        .record(transitions)
        .await
        .unwrap_or_else(|e| panic!("recording {transitions:?}: {e}"));
}

async fn stored(store: &Store, id: ContactId) -> StoredContact {
    store
        .contact(id)
        .await
        .unwrap_or_else(|e| panic!("reading {id}: {e}"))
        .unwrap_or_else(|| panic!("{id} is missing"))
}

async fn event_states(store: &Store, id: ContactId) -> Vec<ContactState> {
    store
        .contact_events(id)
        .await
        .unwrap_or_else(|e| panic!("reading the events of {id}: {e}"))
        .into_iter()
        .map(|e| e.state)
        .collect()
}

fn ids(contacts: &[StoredContact]) -> Vec<ContactId> {
    contacts.iter().map(|c| c.id).collect()
}

// ---------------------------------------------------------------------------------------------
// The contract

async fn ids_are_assigned_and_increase(store: &Store) {
    let mut assigned = Vec::new();
    for second in 0..5 {
        assigned.push(insert(store, contact("acme", "sales", 0, second)).await);
    }
    for pair in assigned.windows(2) {
        assert!(pair[0] < pair[1], "ids must increase: {assigned:?}");
    }
    for id in &assigned {
        assert_eq!(stored(store, *id).await.id, *id);
    }
}

async fn a_new_contact_reads_back_whole(store: &Store) {
    let new = NewContact {
        tenant: "acme".to_owned(),
        queue: "mortgages".to_owned(),
        media: MediaType::Chat,
        priority: Priority(5),
        arrived_at: Timestamp(1_700_000_000_123_456),
        attributes: BTreeMap::from([
            ("language".to_owned(), "es".to_owned()),
            ("tier".to_owned(), "gold".to_owned()),
        ]),
        criteria_json: r#"{"all":[{"skill":"mortgage","min":7}],"relax_after_s":30}"#.to_owned(),
        customer: Some("C-991".to_owned()),
    };
    let id = insert(store, new.clone()).await;
    assert_eq!(
        stored(store, id).await,
        StoredContact {
            id,
            tenant: new.tenant.clone(),
            queue: new.queue.clone(),
            media: new.media,
            priority: new.priority,
            arrived_at: new.arrived_at,
            attributes: new.attributes.clone(),
            criteria_json: new.criteria_json.clone(),
            customer: new.customer.clone(),
            state: Queued,
            agent: None,
            connected_at: None,
            ended_at: None,
            updated_at: new.arrived_at,
        }
    );
    let events = store.contact_events(id).await.unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].state, Queued);
    assert_eq!(events[0].at, new.arrived_at);
    assert_eq!(events[0].queue, "mortgages");
    assert_eq!(events[0].media, MediaType::Chat);

    assert_eq!(store.contact(ContactId(id.0 + 1_000)).await.unwrap(), None);
    assert_eq!(store.contact(ContactId(u64::MAX)).await.unwrap(), None);
    assert!(
        store
            .contact_events(ContactId(id.0 + 1_000))
            .await
            .unwrap()
            .is_empty()
    );
}

/// Inserts contacts out of order and ends some; returns the open ones in serving order.
async fn fill_queue(store: &Store) -> Vec<ContactId> {
    let low_early = insert(store, contact("acme", "sales", 0, 10)).await;
    let high_late = insert(store, contact("acme", "sales", 5, 50)).await;
    let mid = insert(store, contact("acme", "support", 2, 30)).await;
    let high_early = insert(store, contact("beta", "sales", 5, 20)).await;
    let mid_same_arrival = insert(store, contact("acme", "sales", 2, 30)).await;
    let done = insert(store, contact("acme", "sales", 9, 1)).await;
    let gone = insert(store, contact("acme", "sales", 9, 2)).await;
    let overflowed = insert(store, contact("acme", "sales", 9, 3)).await;
    let talking = insert(store, contact("acme", "sales", 1, 5)).await;
    let negative = insert(store, contact("acme", "sales", -1, 0)).await;
    record(
        store,
        &[
            to_agent(done, Offered, 60, "ana"),
            to(done, Connected, 61),
            to(done, Completed, 90),
            to(gone, Abandoned, 62),
            to(overflowed, Overflowed, 63),
            to_agent(talking, Offered, 64, "bo"),
            to(talking, Connected, 65),
        ],
    )
    .await;
    vec![
        high_early,
        high_late,
        mid,
        mid_same_arrival,
        talking,
        low_early,
        negative,
    ]
}

async fn open_contacts_come_in_serving_order(store: &Store) {
    let expected = fill_queue(store).await;
    let open = store.open_contacts().await.unwrap();
    assert_eq!(ids(&open), expected);
    assert!(open.iter().all(|c| !c.state.is_final()));
}

/// A restart: open, fill, drop the store, open again; the queue comes back the same.
async fn open_contacts_survive_a_restart(url: &str) {
    let store = Store::open(url).await.unwrap();
    let expected = fill_queue(&store).await;
    let before = store.open_contacts().await.unwrap();
    drop(store);

    let store = Store::open(url).await.unwrap();
    let after = store.open_contacts().await.unwrap();
    assert_eq!(ids(&after), expected);
    assert_eq!(
        after, before,
        "every column, arrival times included, survives"
    );
    let next = insert(&store, contact("acme", "sales", 0, 100)).await;
    assert!(
        expected.iter().all(|id| *id < next),
        "ids keep increasing after a restart: {next} after {expected:?}"
    );
    store.close().await;
}

async fn a_batch_is_all_or_nothing(store: &Store) {
    let a = insert(store, contact("acme", "sales", 0, 1)).await;
    let b = insert(store, contact("acme", "sales", 0, 2)).await;
    let missing = ContactId(b.0 + 1_000_000);

    let err = store
        .record(&[
            to_agent(a, Offered, 10, "ana"),
            to(a, Connected, 11),
            to(missing, Offered, 12),
        ])
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::UnknownContact { contact, requested: Offered } if contact == missing),
        "{err:?}"
    );
    assert!(err.to_string().contains(&missing.to_string()), "{err}");
    let a_now = stored(store, a).await;
    assert_eq!(
        (a_now.state, a_now.agent, a_now.connected_at),
        (Queued, None, None)
    );
    assert_eq!(event_states(store, a).await, [Queued]);

    record(store, &[to(b, Abandoned, 20)]).await;
    let err = store
        .record(&[to_agent(a, Offered, 21, "ana"), to(b, Queued, 22)])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::FinalState { .. }), "{err:?}");
    assert_eq!(stored(store, a).await.state, Queued);
    assert_eq!(event_states(store, a).await, [Queued]);

    record(
        store,
        &[to_agent(a, Offered, 23, "ana"), to(a, Connected, 24)],
    )
    .await;
    assert_eq!(stored(store, a).await.state, Connected);
    assert_eq!(event_states(store, a).await, [Queued, Offered, Connected]);
}

async fn final_states_are_final(store: &Store) {
    for final_state in [Completed, Abandoned, Overflowed] {
        let id = insert(store, contact("acme", "sales", 0, 1)).await;
        record(
            store,
            &[
                to_agent(id, Offered, 2, "ana"),
                to(id, Connected, 3),
                to(id, final_state, 4),
            ],
        )
        .await;
        let before = stored(store, id).await;
        assert_eq!(before.ended_at, Some(at(4)));
        for next in ContactState::ALL {
            let err = store
                .record(&[to_agent(id, next, 5, "bo")])
                .await
                .unwrap_err();
            match &err {
                StoreError::FinalState {
                    contact,
                    current,
                    requested,
                } => assert_eq!((*contact, *current, *requested), (id, final_state, next)),
                other => panic!("{final_state} then {next}: expected FinalState, got {other:?}"),
            }
            let message = err.to_string();
            for part in [id.to_string(), final_state.to_string(), next.to_string()] {
                assert!(message.contains(&part), "{message:?} lacks {part:?}");
            }
        }
        assert_eq!(stored(store, id).await, before);
        assert_eq!(
            event_states(store, id).await,
            [Queued, Offered, Connected, final_state]
        );
    }
}

async fn a_life_is_logged_in_order(store: &Store) {
    let id = insert(
        store,
        with_customer(contact("acme", "sales", 1, 100), "C-1"),
    )
    .await;
    record(store, &[to_agent(id, Offered, 110, "ana")]).await;
    record(
        store,
        &[Transition {
            detail: Some("no answer from ana".to_owned()),
            ..to(id, Queued, 120)
        }],
    )
    .await;
    assert_eq!(
        stored(store, id).await.agent,
        None,
        "back in the queue, no agent"
    );
    record(
        store,
        &[Transition {
            queue: Some("billing".to_owned()),
            priority: Some(Priority(3)),
            ..to(id, Queued, 130)
        }],
    )
    .await;
    record(
        store,
        &[Transition {
            media: Some(MediaType::Callback),
            detail: Some("caller chose a callback".to_owned()),
            ..to(id, Queued, 140)
        }],
    )
    .await;
    record(
        store,
        &[to_agent(id, Offered, 150, "bo"), to(id, Connected, 160)],
    )
    .await;
    record(store, &[to_agent(id, Connected, 165, "cy")]).await;
    record(store, &[to(id, Completed, 170)]).await;

    let events = store.contact_events(id).await.unwrap();
    let log: Vec<_> = events
        .iter()
        .map(|e| {
            (
                e.state,
                e.at.as_micros() / 1_000_000,
                e.agent.as_deref(),
                e.queue.as_str(),
                e.media,
                e.priority.0,
            )
        })
        .collect();
    use MediaType::{Callback, Voice};
    assert_eq!(
        log,
        [
            (Queued, 100, None, "sales", Voice, 1),
            (Offered, 110, Some("ana"), "sales", Voice, 1),
            (Queued, 120, None, "sales", Voice, 1),
            (Queued, 130, None, "billing", Voice, 3),
            (Queued, 140, None, "billing", Callback, 3),
            (Offered, 150, Some("bo"), "billing", Callback, 3),
            (Connected, 160, Some("bo"), "billing", Callback, 3),
            (Connected, 165, Some("cy"), "billing", Callback, 3),
            (Completed, 170, Some("cy"), "billing", Callback, 3),
        ]
    );
    assert!(events.iter().all(|e| e.contact == id));
    assert_eq!(events[2].detail.as_deref(), Some("no answer from ana"));
    assert_eq!(events[4].detail.as_deref(), Some("caller chose a callback"));
    assert_eq!(events[5].detail, None);

    let row = stored(store, id).await;
    assert_eq!(row.state, Completed);
    assert_eq!(row.agent.as_deref(), Some("cy"));
    assert_eq!(
        (row.queue.as_str(), row.media, row.priority),
        ("billing", Callback, Priority(3))
    );
    assert_eq!(row.arrived_at, at(100));
    assert_eq!(
        row.connected_at,
        Some(at(160)),
        "the first connection counts"
    );
    assert_eq!(row.ended_at, Some(at(170)));
    assert_eq!(row.updated_at, at(170));
}

async fn concurrent_finishers_cannot_both_win(store: &Store) {
    let id = insert(store, contact("acme", "sales", 0, 1)).await;
    record(
        store,
        &[to_agent(id, Offered, 2, "ana"), to(id, Connected, 3)],
    )
    .await;
    let racers: Vec<_> = [
        Completed, Abandoned, Overflowed, Completed, Abandoned, Completed,
    ]
    .into_iter()
    .enumerate()
    .map(|(i, state)| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .record(&[to_agent(id, state, 10 + i as i64, &format!("agent-{i}"))])
                .await
        })
    })
    .collect();
    let mut won = 0;
    for racer in racers {
        match racer.await.unwrap() {
            Ok(()) => won += 1,
            Err(StoreError::FinalState { .. }) => {}
            Err(other) => panic!("a racer failed unexpectedly: {other}"),
        }
    }
    assert_eq!(won, 1, "exactly one transition out of connected may win");
    assert_eq!(store.contact_events(id).await.unwrap().len(), 4);
}

async fn last_agents_rebuild_customer_affinity(store: &Store) {
    let connect = |id, secs, agent: &str| {
        [
            to_agent(id, Offered, secs - 1, agent),
            to(id, Connected, secs),
        ]
    };
    let first = insert(store, with_customer(contact("acme", "sales", 0, 1), "C-1")).await;
    record(store, &connect(first, 100, "ana")).await;
    record(store, &[to(first, Completed, 150)]).await;
    let again = insert(
        store,
        with_customer(contact("acme", "sales", 0, 190), "C-1"),
    )
    .await;
    record(store, &connect(again, 200, "bo")).await;
    let old = insert(store, with_customer(contact("acme", "sales", 0, 40), "C-2")).await;
    record(store, &connect(old, 50, "cy")).await;
    let never = insert(
        store,
        with_customer(contact("acme", "sales", 0, 290), "C-3"),
    )
    .await;
    record(store, &[to_agent(never, Offered, 300, "dee")]).await;
    let anonymous = insert(store, contact("acme", "sales", 0, 290)).await;
    record(store, &connect(anonymous, 300, "eve")).await;
    let other_tenant = insert(
        store,
        with_customer(contact("beta", "sales", 0, 140), "C-1"),
    )
    .await;
    record(store, &connect(other_tenant, 150, "fay")).await;
    let transferred = insert(store, with_customer(contact("acme", "sales", 0, 60), "C-4")).await;
    record(store, &connect(transferred, 70, "gus")).await;
    record(store, &[to_agent(transferred, Connected, 90, "hal")]).await;

    let row = |tenant: &str, customer: &str, agent: &str, secs| LastAgent {
        tenant: tenant.to_owned(),
        customer: customer.to_owned(),
        agent: agent.to_owned(),
        at: at(secs),
    };
    assert_eq!(
        store.last_agents(at(60)).await.unwrap(),
        [
            row("acme", "C-1", "bo", 200),
            row("acme", "C-4", "hal", 90),
            row("beta", "C-1", "fay", 150),
        ]
    );
    let since_start = store.last_agents(at(0)).await.unwrap();
    assert!(
        since_start.contains(&row("acme", "C-2", "cy", 50)),
        "{since_start:?}"
    );
    assert!(store.last_agents(at(201)).await.unwrap().is_empty());
}

async fn counts_are_per_tenant_and_state(store: &Store) {
    let mut acme = Vec::new();
    for second in 0..8 {
        acme.push(insert(store, contact("acme", "sales", 0, second)).await);
    }
    insert(store, contact("beta", "sales", 0, 1)).await;
    record(
        store,
        &[
            to_agent(acme[0], Offered, 10, "ana"),
            to_agent(acme[1], Offered, 10, "bo"),
            to(acme[1], Connected, 11),
            to_agent(acme[2], Offered, 10, "cy"),
            to(acme[2], Connected, 11),
            to(acme[2], Completed, 12),
            to_agent(acme[3], Offered, 10, "dee"),
            to(acme[3], Connected, 11),
            to(acme[3], Completed, 12),
            to(acme[4], Abandoned, 10),
        ],
    )
    .await;
    let counts = store.counts_by_state("acme").await.unwrap();
    let got: Vec<(ContactState, u64)> = counts.iter().collect();
    assert_eq!(
        got,
        [
            (Queued, 3),
            (Offered, 1),
            (Connected, 1),
            (Completed, 2),
            (Abandoned, 1),
            (Overflowed, 0),
        ]
    );
    assert_eq!((counts.total(), counts.open()), (8, 5));
    assert_eq!(store.counts_by_state("beta").await.unwrap().total(), 1);
    assert_eq!(store.counts_by_state("nobody").await.unwrap().total(), 0);
}

/// Text that would break SQL built by string formatting, and text that tests encodings.
const HOSTILE: [&str; 7] = [
    "'); DROP TABLE contacts; --",
    "Robert\"; DELETE FROM contact_events WHERE 1=1; --",
    "O'Brien & \"Sons\"; 100% \\ _ ? $1 :name @p1",
    "日本語のキュー 🎧📞",
    "Ünïcødé \u{202e}RTL\u{202c} zero\u{200b}width",
    "line\nbreak\ttab\r\n",
    "' OR '1'='1",
];

async fn hostile_text_is_stored_verbatim(store: &Store) {
    for (i, text) in HOSTILE.into_iter().enumerate() {
        let new = NewContact {
            tenant: text.to_owned(),
            queue: text.to_owned(),
            media: MediaType::Email,
            priority: Priority(1),
            arrived_at: at(i as i64),
            attributes: BTreeMap::from([
                (text.to_owned(), text.to_owned()),
                ("k'ey;--".to_owned(), format!("{text}{text}")),
            ]),
            criteria_json: serde_json::json!({ "note": text, "tags": [text] }).to_string(),
            customer: Some(text.to_owned()),
        };
        let id = insert(store, new.clone()).await;
        record(
            store,
            &[
                Transition {
                    detail: Some(text.to_owned()),
                    ..to_agent(id, Offered, 100, text)
                },
                to(id, Connected, 101),
            ],
        )
        .await;
        let back = stored(store, id).await;
        assert_eq!(back.tenant, text);
        assert_eq!(back.queue, text);
        assert_eq!(back.attributes, new.attributes);
        assert_eq!(back.criteria_json, new.criteria_json);
        assert_eq!(back.customer.as_deref(), Some(text));
        assert_eq!(back.agent.as_deref(), Some(text));
        let events = store.contact_events(id).await.unwrap();
        assert_eq!(events[1].detail.as_deref(), Some(text));
        assert_eq!(events[1].agent.as_deref(), Some(text));
        assert_eq!(store.counts_by_state(text).await.unwrap().get(Connected), 1);
        let affinity = store.last_agents(at(0)).await.unwrap();
        assert!(
            affinity
                .iter()
                .any(|a| a.tenant == text && a.customer == text && a.agent == text),
            "{affinity:?}"
        );
    }
    let open = store.open_contacts().await.unwrap();
    assert_eq!(
        open.len(),
        HOSTILE.len(),
        "every contact, and the tables, still there"
    );
}

async fn oversize_and_malformed_input_is_refused(store: &Store) {
    let long = |n: usize| "é".repeat(n);
    let base = || contact("acme", "sales", 0, 1);
    let many_attributes: BTreeMap<String, String> = (0..=MAX_ATTRIBUTES)
        .map(|i| (format!("key{i}"), "v".to_owned()))
        .collect();
    let cases: Vec<(&str, NewContact)> = vec![
        (
            "tenant",
            NewContact {
                tenant: long(MAX_NAME_CHARS + 1),
                ..base()
            },
        ),
        (
            "tenant",
            NewContact {
                tenant: String::new(),
                ..base()
            },
        ),
        (
            "tenant",
            NewContact {
                tenant: "ac\0me".to_owned(),
                ..base()
            },
        ),
        (
            "queue",
            NewContact {
                queue: long(MAX_NAME_CHARS + 1),
                ..base()
            },
        ),
        (
            "queue",
            NewContact {
                queue: "  ".to_owned(),
                ..base()
            },
        ),
        (
            "customer",
            NewContact {
                customer: Some(long(MAX_NAME_CHARS + 1)),
                ..base()
            },
        ),
        (
            "attributes",
            NewContact {
                attributes: many_attributes,
                ..base()
            },
        ),
        (
            "attributes[\"note\"]",
            NewContact {
                attributes: BTreeMap::from([(
                    "note".to_owned(),
                    long(MAX_ATTRIBUTE_VALUE_CHARS + 1),
                )]),
                ..base()
            },
        ),
        (
            "attribute name",
            NewContact {
                attributes: BTreeMap::from([(long(MAX_NAME_CHARS + 1), "v".to_owned())]),
                ..base()
            },
        ),
        (
            "criteria_json",
            NewContact {
                criteria_json: "{not json".to_owned(),
                ..base()
            },
        ),
        (
            "criteria_json",
            NewContact {
                criteria_json: String::new(),
                ..base()
            },
        ),
        (
            "criteria_json",
            NewContact {
                criteria_json: format!("\"{}\"", "x".repeat(70_000)),
                ..base()
            },
        ),
    ];
    for (field, new) in &cases {
        match store.insert_contact(new).await {
            Err(err @ StoreError::Invalid { .. }) => {
                let StoreError::Invalid { field: named, .. } = &err else {
                    unreachable!()
                };
                assert!(named.starts_with(field), "{named:?} should name {field:?}");
                assert!(err.to_string().contains(field), "{err}");
            }
            other => panic!("{field}: expected Invalid, got {other:?}"),
        }
    }
    assert!(
        store.open_contacts().await.unwrap().is_empty(),
        "nothing was stored"
    );

    let at_the_limits = NewContact {
        tenant: long(MAX_NAME_CHARS),
        attributes: (0..MAX_ATTRIBUTES)
            .map(|i| (format!("key{i}"), long(MAX_ATTRIBUTE_VALUE_CHARS)))
            .collect(),
        ..base()
    };
    let id = insert(store, at_the_limits.clone()).await;
    assert_eq!(stored(store, id).await.attributes, at_the_limits.attributes);

    let err = store
        .record(&[
            to(id, Offered, 2),
            to_agent(id, Connected, 3, &long(MAX_NAME_CHARS + 1)),
        ])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Invalid { field, .. } if field.starts_with("transitions[1].agent")),
        "{err:?}"
    );
    assert_eq!(
        stored(store, id).await.state,
        Queued,
        "nothing of the batch was written"
    );
}

async fn migrating_again_changes_nothing(store: &Store) {
    let id = insert(store, contact("acme", "sales", 0, 1)).await;
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    assert_eq!(stored(store, id).await.state, Queued);
}

// ---------------------------------------------------------------------------------------------
// Running the contract on every backend

macro_rules! contract {
    ($($behaviour:ident),+ $(,)?) => {
        mod sqlite_file {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $behaviour() {
                    let file = harness::SqliteFile::new();
                    let store = file.open().await;
                    assert_eq!(store.kind(), StoreKind::Sqlite);
                    super::$behaviour(&store).await;
                    store.close().await;
                }
            )+

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn open_contacts_survive_a_restart() {
                let file = harness::SqliteFile::new();
                super::open_contacts_survive_a_restart(&file.url).await;
            }
        }

        mod sqlite_memory {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $behaviour() {
                    let store = Store::open("sqlite::memory:").await.unwrap();
                    assert_eq!(store.kind(), StoreKind::Sqlite);
                    super::$behaviour(&store).await;
                }
            )+
        }

        mod postgres {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $behaviour() {
                    harness::on_postgres(|url| async move {
                        let store = Store::open(&url).await.unwrap();
                        assert_eq!(store.kind(), StoreKind::Postgres);
                        super::$behaviour(&store).await;
                        store.close().await;
                    })
                    .await;
                }
            )+

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn open_contacts_survive_a_restart() {
                harness::on_postgres(|url| async move {
                    super::open_contacts_survive_a_restart(&url).await;
                })
                .await;
            }
        }
    };
}

contract!(
    ids_are_assigned_and_increase,
    a_new_contact_reads_back_whole,
    open_contacts_come_in_serving_order,
    a_batch_is_all_or_nothing,
    final_states_are_final,
    a_life_is_logged_in_order,
    concurrent_finishers_cannot_both_win,
    last_agents_rebuild_customer_affinity,
    counts_are_per_tenant_and_state,
    hostile_text_is_stored_verbatim,
    oversize_and_malformed_input_is_refused,
    migrating_again_changes_nothing,
);

// ---------------------------------------------------------------------------------------------
// Opening

#[tokio::test]
async fn a_database_in_a_missing_directory_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("var/lib/switchboard/switchboard.db");
    let store = Store::open(path.to_str().unwrap()).await.unwrap();
    let id = insert(&store, contact("acme", "sales", 0, 1)).await;
    store.close().await;
    assert!(path.is_file(), "{} was not created", path.display());

    // The same file, by URL: the contact is there, and the file is in WAL mode.
    let url = format!("sqlite://{}", path.display());
    let store = Store::open(&url).await.unwrap();
    assert_eq!(stored(&store, id).await.state, Queued);
    store.close().await;
    use sqlx::Connection;
    let mut raw = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut raw)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn unusable_urls_are_refused_naming_them() {
    for url in [
        "mysql://db.example/switchboard",
        "postgress://localhost/switchboard",
        "http://example.com/switchboard.db",
        "sqlite://",
        "sqlite://switchboard.db?mode=ro",
        "postgres://switchboard@127.0.0.1:notaport/switchboard",
    ] {
        let err = Store::open(url).await.unwrap_err();
        assert!(
            matches!(err, StoreError::InvalidUrl { .. }),
            "{url}: {err:?}"
        );
        assert!(err.to_string().contains(url), "{url}: {err}");
    }
    let err = Store::open("").await.unwrap_err();
    assert!(err.to_string().contains("empty"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let not_a_file = dir.path().to_str().unwrap();
    let err = Store::open(not_a_file).await.unwrap_err();
    assert!(matches!(err, StoreError::Connect { .. }), "{err:?}");
    assert!(err.to_string().contains(not_a_file), "{err}");
}

#[tokio::test]
async fn an_unreachable_server_is_named_without_its_password() {
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    let err = Store::open("postgres://switchboard:hunter2@127.0.0.1:1/switchboard")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Connect { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("postgres://switchboard:***@127.0.0.1:1/switchboard"),
        "{message}"
    );
    assert!(!message.contains("hunter2"), "{message}");
}
