//! The store's contract: one suite of behaviours, each a function over a [`Store`], run against
//! a SQLite file and SQLite in memory always, and against PostgreSQL when
//! `SWITCHBOARD_TEST_POSTGRES_URL` names a server (each test gets a fresh database there, dropped
//! afterwards). Without that variable the PostgreSQL tests pass after saying loudly that they
//! were skipped; see DEVELOPERS.md.

#[path = "support/store_harness.rs"]
mod harness;

use std::collections::BTreeMap;

use switchboard::agents::AgentState;
use switchboard::media::HandlerId;
use switchboard::model::{ContactId, ContactState, MediaType, Priority, Timestamp};
use switchboard::store::{
    ARGON2_M_COST_KIB, ARGON2_P_COST, ARGON2_T_COST, AgentStateChange, CatalogItem, CatalogKind,
    Cdr, CdrFilter, CdrId, Credential, Disposition, KeyId, LastAgent, MAX_ADDRESS_CHARS,
    MAX_AGENT_STATE_BATCH, MAX_ATTRIBUTE_VALUE_CHARS, MAX_ATTRIBUTES, MAX_CAUSE_CHARS,
    MAX_DEFINITION_BYTES, MAX_LIST_LIMIT, MAX_NAME_CHARS, MAX_PATH_CHARS, NewCdr, NewContact,
    Principal, Role, Store, StoreError, StoreKind, StoredContact, Transition,
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

/// What a flow's menus collected replaces the contact's attributes, in the same batch as its
/// step; a transition without attributes keeps them; bad attributes refuse the whole batch.
async fn attributes_from_a_transition_are_stored_with_the_contact(store: &Store) {
    let id = insert(store, contact("acme", "sales", 0, 100)).await;
    let chosen = BTreeMap::from([
        ("caller".to_owned(), "+34911234567".to_owned()),
        (
            "topic".to_owned(),
            "billing'); DROP TABLE contacts;--".to_owned(),
        ),
    ]);
    record(
        store,
        &[Transition {
            attributes: Some(chosen.clone()),
            detail: Some("queued by its flow".to_owned()),
            ..to(id, Queued, 110)
        }],
    )
    .await;
    assert_eq!(stored(store, id).await.attributes, chosen);
    record(store, &[to_agent(id, Offered, 120, "ana")]).await;
    assert_eq!(stored(store, id).await.attributes, chosen, "kept");
    let open = store.open_contacts().await.unwrap();
    assert_eq!(open[0].attributes, chosen, "a restart reads them back");

    let too_many: BTreeMap<String, String> = (0..=MAX_ATTRIBUTES)
        .map(|i| (format!("k{i}"), "v".to_owned()))
        .collect();
    for bad in [
        too_many,
        BTreeMap::from([("k".to_owned(), "x".repeat(MAX_ATTRIBUTE_VALUE_CHARS + 1))]),
        BTreeMap::from([(String::new(), "v".to_owned())]),
        BTreeMap::from([("k".to_owned(), "nul\0".to_owned())]),
    ] {
        let batch = [
            to(id, Queued, 130),
            Transition {
                attributes: Some(bad),
                ..to(id, Queued, 131)
            },
        ];
        assert_invalid(store.record(&batch).await, "transitions[1].attributes");
    }
    assert_eq!(
        stored(store, id).await.state,
        Offered,
        "nothing of the batch"
    );
    assert_eq!(stored(store, id).await.attributes, chosen);
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
            "attributes[",
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
// Records of issue 5: call detail records

/// A CDR of `tenant`'s contact `contact`, answered by `agent`, arrived at second `arrived` and
/// ended at second `ended`.
fn cdr(tenant: &str, contact: ContactId, agent: Option<&str>, arrived: i64, ended: i64) -> NewCdr {
    NewCdr {
        tenant: tenant.to_owned(),
        contact,
        media: MediaType::Voice,
        queue: "sales".to_owned(),
        caller: "+34911234567".to_owned(),
        called: "sip:sales@acme.example".to_owned(),
        agent: agent.map(str::to_owned),
        handler: Some(HandlerId(2)),
        arrived_at: at(arrived),
        answered_at: agent.map(|_| at(arrived + 1)),
        ended_at: at(ended),
        wait_ms: 1_000,
        talk_ms: u64::try_from(ended - arrived - 1).unwrap_or(0) * 1_000,
        wrap_up_ms: 15_000,
        recording: agent.map(|_| format!("/var/lib/switchboard/recordings/{}.wav", contact.0)),
        disposition: if agent.is_some() {
            Disposition::Answered
        } else {
            Disposition::Abandoned
        },
        cause: Some("NORMAL_CLEARING".to_owned()),
        // What the flow's menu set, with the caller's number.
        attributes: BTreeMap::from([
            ("caller".to_owned(), "+34911234567".to_owned()),
            ("language".to_owned(), "es".to_owned()),
        ]),
    }
}

async fn insert_cdr(store: &Store, new: &NewCdr) -> CdrId {
    store
        .insert_cdr(new)
        .await
        .unwrap_or_else(|e| panic!("inserting {new:?}: {e}"))
}

async fn list_cdrs(store: &Store, tenant: &str, filter: &CdrFilter) -> Vec<ContactId> {
    store
        .cdrs(tenant, filter)
        .await
        .unwrap_or_else(|e| panic!("listing {tenant:?} {filter:?}: {e}"))
        .cdrs
        .iter()
        .map(|c| c.record.contact)
        .collect()
}

fn assert_invalid<T: std::fmt::Debug>(result: Result<T, StoreError>, field: &str) {
    match result {
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

async fn a_cdr_reads_back_whole_once_per_contact(store: &Store) {
    let contact = insert(store, contact("acme", "sales", 0, 100)).await;
    let new = NewCdr {
        cause: Some("admission: permitted 4 = max(⌊2×1.5⌋, 2+2), outstanding 4".to_owned()),
        ..cdr("acme", contact, Some("ana"), 100, 160)
    };
    let id = insert_cdr(store, &new).await;
    let back = store.cdr("acme", contact).await.unwrap().expect("the CDR");
    assert_eq!(
        back,
        Cdr {
            id,
            record: new.clone()
        }
    );

    // A second write for the same contact is refused and changes nothing, whoever writes it.
    let again = NewCdr {
        disposition: Disposition::Failed,
        ..new.clone()
    };
    for second in [
        again,
        NewCdr {
            tenant: "beta".to_owned(),
            ..new.clone()
        },
    ] {
        let err = store.insert_cdr(&second).await.unwrap_err();
        assert!(
            matches!(err, StoreError::DuplicateCdr { contact: c } if c == contact),
            "{err:?}"
        );
        assert!(err.to_string().contains(&contact.to_string()), "{err}");
    }
    assert_eq!(
        store.cdr("acme", contact).await.unwrap().unwrap().record,
        new
    );

    // Nullable fields stay null; no contact, no CDR.
    let bare = NewCdr {
        agent: None,
        handler: None,
        answered_at: None,
        recording: None,
        cause: None,
        caller: String::new(),
        media: MediaType::Chat,
        disposition: Disposition::Rejected,
        attributes: BTreeMap::new(),
        ..cdr("acme", ContactId(contact.0 + 1_000), None, 5, 5)
    };
    insert_cdr(store, &bare).await;
    assert_eq!(
        store
            .cdr("acme", bare.contact)
            .await
            .unwrap()
            .unwrap()
            .record,
        bare
    );
    assert_eq!(
        store
            .cdr("acme", ContactId(contact.0 + 2_000))
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.cdr("acme", ContactId(u64::MAX)).await.unwrap(), None);
}

async fn cdrs_are_scoped_by_tenant(store: &Store) {
    let acme = ContactId(1);
    let beta = ContactId(2);
    insert_cdr(store, &cdr("acme", acme, Some("ana"), 10, 20)).await;
    insert_cdr(store, &cdr("beta", beta, Some("ana"), 10, 20)).await;
    let all = CdrFilter::default();
    assert_eq!(list_cdrs(store, "acme", &all).await, [acme]);
    assert_eq!(list_cdrs(store, "beta", &all).await, [beta]);
    assert!(list_cdrs(store, "gamma", &all).await.is_empty());
    assert_eq!(store.cdr("beta", acme).await.unwrap(), None);
    assert_eq!(store.cdr("acme", beta).await.unwrap(), None);
    let by_agent = CdrFilter {
        agent: Some("ana".to_owned()),
        ..CdrFilter::default()
    };
    assert_eq!(list_cdrs(store, "acme", &by_agent).await, [acme]);
    // A tenant name that would widen a query built by formatting matches nothing.
    for hostile in HOSTILE {
        assert!(
            list_cdrs(store, hostile, &all).await.is_empty(),
            "{hostile:?}"
        );
    }
}

async fn cdrs_list_in_end_order_filtered_and_paged(store: &Store) {
    // (contact, agent, queue, arrived, ended), written out of end order; 3 and 4 end together.
    let rows = [
        (1, Some("ana"), "sales", 0, 50),
        (2, None, "sales", 0, 10),
        (3, Some("bo"), "support", 0, 30),
        (4, Some("ana"), "sales", 0, 30),
        (5, Some("ana"), "support", 0, 70),
        (6, None, "support", 0, 20),
    ];
    for (contact, agent, queue, arrived, ended) in rows {
        let new = NewCdr {
            queue: queue.to_owned(),
            ..cdr("acme", ContactId(contact), agent, arrived, ended)
        };
        insert_cdr(store, &new).await;
    }
    let ids = |list: &[u64]| list.iter().map(|&c| ContactId(c)).collect::<Vec<_>>();
    let all = CdrFilter::default();
    assert_eq!(
        list_cdrs(store, "acme", &all).await,
        ids(&[2, 6, 3, 4, 1, 5])
    );

    let filters = [
        (
            CdrFilter {
                from: Some(at(20)),
                to: Some(at(50)),
                ..CdrFilter::default()
            },
            ids(&[6, 3, 4]),
        ),
        (
            CdrFilter {
                queue: Some("support".to_owned()),
                ..CdrFilter::default()
            },
            ids(&[6, 3, 5]),
        ),
        (
            CdrFilter {
                agent: Some("ana".to_owned()),
                ..CdrFilter::default()
            },
            ids(&[4, 1, 5]),
        ),
        (
            CdrFilter {
                disposition: Some(Disposition::Abandoned),
                ..CdrFilter::default()
            },
            ids(&[2, 6]),
        ),
        (
            CdrFilter {
                queue: Some("sales".to_owned()),
                agent: Some("ana".to_owned()),
                from: Some(at(31)),
                ..CdrFilter::default()
            },
            ids(&[1]),
        ),
        (
            CdrFilter {
                disposition: Some(Disposition::Rejected),
                ..CdrFilter::default()
            },
            ids(&[]),
        ),
    ];
    for (filter, expected) in filters {
        assert_eq!(
            list_cdrs(store, "acme", &filter).await,
            expected,
            "{filter:?}"
        );
    }

    // Pages of 2 walk the whole list in order, ties on the end time included.
    let mut walked = Vec::new();
    let mut filter = CdrFilter {
        limit: Some(2),
        ..CdrFilter::default()
    };
    let mut pages = 0;
    loop {
        let page = store.cdrs("acme", &filter).await.unwrap();
        pages += 1;
        assert!(page.cdrs.len() <= 2);
        walked.extend(page.cdrs.iter().map(|c| c.record.contact));
        match page.next {
            Some(next) => {
                assert_eq!(Some(next), page.cdrs.last().map(Cdr::cursor));
                let text = next.to_string();
                filter.after = Some(text.parse().unwrap());
            }
            None => break,
        }
        assert!(pages < 10, "paging does not end");
    }
    assert_eq!(walked, ids(&[2, 6, 3, 4, 1, 5]));
    let tail = store
        .cdrs(
            "acme",
            &CdrFilter {
                limit: Some(10),
                ..CdrFilter::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((tail.cdrs.len(), tail.next), (6, None));
}

async fn cdr_input_is_bounded_and_named(store: &Store) {
    let long = |n: usize| "é".repeat(n);
    let base = || cdr("acme", ContactId(7), Some("ana"), 100, 200);
    let cases: Vec<(&str, NewCdr)> = vec![
        (
            "tenant",
            NewCdr {
                tenant: long(MAX_NAME_CHARS + 1),
                ..base()
            },
        ),
        (
            "tenant",
            NewCdr {
                tenant: " ".to_owned(),
                ..base()
            },
        ),
        (
            "queue",
            NewCdr {
                queue: String::new(),
                ..base()
            },
        ),
        (
            "caller",
            NewCdr {
                caller: long(MAX_ADDRESS_CHARS + 1),
                ..base()
            },
        ),
        (
            "called",
            NewCdr {
                called: "to\0".to_owned(),
                ..base()
            },
        ),
        (
            "agent",
            NewCdr {
                agent: Some(long(MAX_NAME_CHARS + 1)),
                ..base()
            },
        ),
        (
            "recording",
            NewCdr {
                recording: Some(long(MAX_PATH_CHARS + 1)),
                ..base()
            },
        ),
        (
            "cause",
            NewCdr {
                cause: Some(long(MAX_CAUSE_CHARS + 1)),
                ..base()
            },
        ),
        (
            "ended_at",
            NewCdr {
                ended_at: at(99),
                ..base()
            },
        ),
        (
            "answered_at",
            NewCdr {
                answered_at: Some(at(201)),
                ..base()
            },
        ),
        (
            "answered_at",
            NewCdr {
                answered_at: Some(at(99)),
                ..base()
            },
        ),
        (
            "wait_ms",
            NewCdr {
                wait_ms: u64::MAX,
                ..base()
            },
        ),
        (
            "talk_ms",
            NewCdr {
                talk_ms: 1 << 63,
                ..base()
            },
        ),
        (
            "wrap_up_ms",
            NewCdr {
                wrap_up_ms: u64::MAX,
                ..base()
            },
        ),
        (
            "contact",
            NewCdr {
                contact: ContactId(u64::MAX),
                ..base()
            },
        ),
    ];
    for (field, new) in &cases {
        assert_invalid(store.insert_cdr(new).await, field);
    }
    let at_the_limits = NewCdr {
        caller: long(MAX_ADDRESS_CHARS),
        cause: Some(long(MAX_CAUSE_CHARS)),
        recording: Some(long(MAX_PATH_CHARS)),
        wait_ms: i64::MAX as u64,
        ..base()
    };
    insert_cdr(store, &at_the_limits).await;
    assert_eq!(
        list_cdrs(store, "acme", &CdrFilter::default()).await,
        [ContactId(7)]
    );

    for limit in [0, MAX_LIST_LIMIT + 1, u32::MAX] {
        let filter = CdrFilter {
            limit: Some(limit),
            ..CdrFilter::default()
        };
        assert_invalid(store.cdrs("acme", &filter).await, "filter.limit");
    }
    let max = CdrFilter {
        limit: Some(MAX_LIST_LIMIT),
        ..CdrFilter::default()
    };
    assert_eq!(store.cdrs("acme", &max).await.unwrap().cdrs.len(), 1);
    let filter = CdrFilter {
        queue: Some(long(MAX_NAME_CHARS + 1)),
        ..CdrFilter::default()
    };
    assert_invalid(store.cdrs("acme", &filter).await, "filter.queue");
    assert_invalid(store.cdrs("", &CdrFilter::default()).await, "tenant");
    let backwards = CdrFilter {
        from: Some(at(10)),
        to: Some(at(5)),
        ..CdrFilter::default()
    };
    assert_invalid(store.cdrs("acme", &backwards).await, "filter.from");
}

async fn concurrent_cdr_writers_cannot_both_win(store: &Store) {
    let contact = ContactId(42);
    let writers: Vec<_> = (0..6)
        .map(|i| {
            let store = store.clone();
            let new = NewCdr {
                cause: Some(format!("writer {i}")),
                ..cdr("acme", contact, Some("ana"), 1, 9)
            };
            tokio::spawn(async move { store.insert_cdr(&new).await })
        })
        .collect();
    let mut won = 0;
    for writer in writers {
        match writer.await.unwrap() {
            Ok(_) => won += 1,
            Err(StoreError::DuplicateCdr { .. }) => {}
            Err(other) => panic!("a writer failed unexpectedly: {other}"),
        }
    }
    assert_eq!(won, 1, "exactly one CDR per contact");
    let listed = list_cdrs(store, "acme", &CdrFilter::default()).await;
    assert_eq!(listed, [contact]);
}

async fn hostile_text_in_records_is_stored_verbatim(store: &Store) {
    for (i, text) in HOSTILE.into_iter().enumerate() {
        let new = NewCdr {
            queue: text.to_owned(),
            caller: text.to_owned(),
            called: text.to_owned(),
            recording: Some(text.to_owned()),
            cause: Some(text.to_owned()),
            ..cdr(text, ContactId(i as u64 + 1), Some(text), 1, 2)
        };
        insert_cdr(store, &new).await;
        assert_eq!(
            store.cdr(text, new.contact).await.unwrap().unwrap().record,
            new
        );
        let filter = CdrFilter {
            queue: Some(text.to_owned()),
            agent: Some(text.to_owned()),
            ..CdrFilter::default()
        };
        assert_eq!(list_cdrs(store, text, &filter).await, [new.contact]);

        let change = AgentStateChange {
            tenant: text.to_owned(),
            agent: text.to_owned(),
            state: AgentState::Break,
            reason: Some(text.to_owned()),
            at: at(1),
        };
        store
            .record_agent_states(std::slice::from_ref(&change))
            .await
            .unwrap();
        assert_eq!(
            store
                .agent_states(text, text, at(0), at(2), None)
                .await
                .unwrap(),
            [change]
        );

        let key = store
            .create_api_key(text, text, Role::Client)
            .await
            .unwrap();
        let listed = store.list_api_keys(text).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(
            (listed[0].label.as_str(), listed[0].key_id.clone()),
            (text, key.key_id)
        );
    }
    assert_eq!(
        store
            .cdrs(HOSTILE[0], &CdrFilter::default())
            .await
            .unwrap()
            .cdrs
            .len(),
        1,
        "the tables are still there"
    );
}

// ---------------------------------------------------------------------------------------------
// Records of issue 5: agent state history

fn change(tenant: &str, agent: &str, state: AgentState, secs: i64) -> AgentStateChange {
    AgentStateChange {
        tenant: tenant.to_owned(),
        agent: agent.to_owned(),
        state,
        reason: None,
        at: at(secs),
    }
}

async fn agent_states_come_back_in_order(store: &Store) {
    use AgentState::{AfterCallWork, Available, Break, Busy, LoggedOut, Offered, Unallocated};
    let batch = [
        change("acme", "ana", Unallocated, 100),
        change("acme", "ana", Available, 110),
        change("acme", "bo", Available, 105),
        change("beta", "ana", Available, 101),
        change("acme", "ana", Offered, 120),
        change("acme", "ana", Busy, 121),
        AgentStateChange {
            reason: Some("lunch".to_owned()),
            ..change("acme", "ana", Break, 180)
        },
        // Written after, stamped the same: comes after the break.
        change("acme", "ana", LoggedOut, 180),
    ];
    store.record_agent_states(&batch).await.unwrap();
    store
        .record_agent_states(&[change("acme", "ana", AfterCallWork, 150)])
        .await
        .unwrap();
    store.record_agent_states(&[]).await.unwrap();

    let states =
        |list: &[AgentStateChange]| list.iter().map(|c| (c.state, c.at)).collect::<Vec<_>>();
    let ana = store
        .agent_states("acme", "ana", at(0), at(1_000), None)
        .await
        .unwrap();
    assert_eq!(
        states(&ana),
        [
            (Unallocated, at(100)),
            (Available, at(110)),
            (Offered, at(120)),
            (Busy, at(121)),
            (AfterCallWork, at(150)),
            (Break, at(180)),
            (LoggedOut, at(180)),
        ]
    );
    assert!(ana.iter().all(|c| c.tenant == "acme" && c.agent == "ana"));
    assert_eq!(ana[5].reason.as_deref(), Some("lunch"));
    assert_eq!(ana[4].reason, None);

    let window = store
        .agent_states("acme", "ana", at(110), at(150), None)
        .await
        .unwrap();
    assert_eq!(
        states(&window),
        [(Available, at(110)), (Offered, at(120)), (Busy, at(121))]
    );
    let first_two = store
        .agent_states("acme", "ana", at(0), at(1_000), Some(2))
        .await
        .unwrap();
    assert_eq!(
        states(&first_two),
        [(Unallocated, at(100)), (Available, at(110))]
    );

    // Another tenant's agent of the same name is another agent.
    let beta = store
        .agent_states("beta", "ana", at(0), at(1_000), None)
        .await
        .unwrap();
    assert_eq!(states(&beta), [(Available, at(101))]);
    assert!(
        store
            .agent_states("gamma", "ana", at(0), at(1_000), None)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn agent_state_batches_are_all_or_nothing_and_bounded(store: &Store) {
    let long = |n: usize| "é".repeat(n);
    let ok = || change("acme", "ana", AgentState::Available, 10);
    let cases: Vec<(&str, AgentStateChange)> = vec![
        (
            "changes[2].tenant",
            AgentStateChange {
                tenant: String::new(),
                ..ok()
            },
        ),
        (
            "changes[2].agent",
            AgentStateChange {
                agent: long(MAX_NAME_CHARS + 1),
                ..ok()
            },
        ),
        (
            "changes[2].reason",
            AgentStateChange {
                reason: Some(long(MAX_CAUSE_CHARS + 1)),
                ..ok()
            },
        ),
        (
            "changes[2].reason",
            AgentStateChange {
                reason: Some("a\0b".to_owned()),
                ..ok()
            },
        ),
    ];
    for (field, bad) in cases {
        assert_invalid(store.record_agent_states(&[ok(), ok(), bad]).await, field);
    }
    let too_many = vec![ok(); MAX_AGENT_STATE_BATCH + 1];
    assert_invalid(store.record_agent_states(&too_many).await, "changes");
    assert!(
        store
            .agent_states("acme", "ana", at(0), at(100), None)
            .await
            .unwrap()
            .is_empty(),
        "nothing of a refused batch was written"
    );

    for limit in [0, MAX_LIST_LIMIT + 1] {
        assert_invalid(
            store
                .agent_states("acme", "ana", at(0), at(100), Some(limit))
                .await,
            "limit",
        );
    }
    assert_invalid(
        store
            .agent_states("acme", "ana", at(100), at(0), None)
            .await,
        "from",
    );
    assert_invalid(
        store.agent_states("acme", "", at(0), at(100), None).await,
        "agent",
    );
    assert_invalid(
        store
            .agent_state_totals(&long(MAX_NAME_CHARS + 1), at(0), at(1))
            .await,
        "tenant",
    );

    let full = vec![ok(); MAX_LIST_LIMIT as usize + 5];
    store.record_agent_states(&full).await.unwrap();
    let read = store
        .agent_states("acme", "ana", at(0), at(100), Some(MAX_LIST_LIMIT))
        .await
        .unwrap();
    assert_eq!(
        read.len(),
        MAX_LIST_LIMIT as usize,
        "at most the limit comes back"
    );
}

async fn agent_state_totals_sum_time_per_state(store: &Store) {
    use AgentState::{Available, Break, Busy, LoggedOut};
    use std::time::Duration;
    store
        .record_agent_states(&[
            // ana: on a break since before the window.
            change("acme", "ana", Break, 50),
            change("acme", "ana", Available, 130),
            change("acme", "ana", Busy, 140),
            change("acme", "ana", LoggedOut, 190),
            // bo: logs in during the window; after it, nothing counts.
            change("acme", "bo", Available, 150),
            change("acme", "bo", Busy, 250),
            // cy: logged out before the window, and stays so.
            change("acme", "cy", LoggedOut, 10),
            // Another tenant's ana.
            change("beta", "ana", Busy, 100),
        ])
        .await
        .unwrap();
    let totals = store
        .agent_state_totals("acme", at(100), at(200))
        .await
        .unwrap();
    let secs = Duration::from_secs;
    let got: Vec<(&str, Vec<(AgentState, Duration)>)> = totals
        .iter()
        .map(|t| {
            (
                t.agent.as_str(),
                t.iter().filter(|(_, d)| !d.is_zero()).collect(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "ana",
                vec![
                    (LoggedOut, secs(10)),
                    (Available, secs(10)),
                    (Busy, secs(50)),
                    (Break, secs(30)),
                ],
            ),
            ("bo", vec![(Available, secs(50))]),
            ("cy", vec![(LoggedOut, secs(100))]),
        ]
    );
    assert_eq!(totals[0].total(), secs(100));
    let beta = store
        .agent_state_totals("beta", at(100), at(200))
        .await
        .unwrap();
    assert_eq!(beta.len(), 1);
    assert_eq!(beta[0].get(Busy), secs(100));
    assert!(
        store
            .agent_state_totals("gamma", at(0), at(1))
            .await
            .unwrap()
            .is_empty()
    );
}

// ---------------------------------------------------------------------------------------------
// Records of issue 5: credentials

// ---------------------------------------------------------------------------------------------
// The catalog administrators edit

fn item(kind: CatalogKind, name: &str, tenant: &str, definition: Option<&str>) -> CatalogItem {
    CatalogItem {
        kind,
        name: name.to_owned(),
        tenant: tenant.to_owned(),
        definition: definition.map(str::to_owned),
        updated_at: at(1),
    }
}

/// Items are written, replaced and deleted per client; a name another client holds is refused
/// (atomically); a deleted name is free; they come back in the order first written.
async fn catalog_items_are_owned_by_one_client(store: &Store) {
    assert!(store.catalog_items().await.unwrap().is_empty());
    let sales = item(
        CatalogKind::Queue,
        "sales",
        "acme",
        Some(r#"{"name":"sales"}"#),
    );
    store.put_catalog_item(&sales).await.unwrap();
    let ann = item(CatalogKind::Agent, "ann", "acme", Some(r#"{"name":"ann"}"#));
    store.put_catalog_item(&ann).await.unwrap();
    // A flow is named after its queue: the same name as a queue, another kind.
    let flow = item(CatalogKind::Flow, "sales", "acme", Some(r#"{"steps":[]}"#));
    store.put_catalog_item(&flow).await.unwrap();
    let changed = CatalogItem {
        definition: Some(r#"{"name":"sales","offer_timeout_s":30}"#.to_owned()),
        updated_at: at(2),
        ..sales.clone()
    };
    store.put_catalog_item(&changed).await.unwrap();
    assert_eq!(
        store.catalog_items().await.unwrap(),
        vec![changed.clone(), ann.clone(), flow.clone()],
        "replaced in place, listed in the order first written"
    );

    // Another client cannot take the name, nor delete it.
    for theirs in [
        item(CatalogKind::Queue, "sales", "globex", Some("{}")),
        item(CatalogKind::Queue, "sales", "globex", None),
    ] {
        let err = store.put_catalog_item(&theirs).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::NotOwned { kind: CatalogKind::Queue, name } if name == "sales"),
            "{err:?}"
        );
    }
    assert_eq!(store.catalog_items().await.unwrap()[0], changed);

    // Deleted, the name is anyone's.
    let deleted = item(CatalogKind::Queue, "sales", "acme", None);
    store.put_catalog_item(&deleted).await.unwrap();
    assert_eq!(store.catalog_items().await.unwrap()[0].definition, None);
    let taken = item(
        CatalogKind::Queue,
        "sales",
        "globex",
        Some(r#"{"name":"sales"}"#),
    );
    store.put_catalog_item(&taken).await.unwrap();
    assert_eq!(store.catalog_items().await.unwrap()[0], taken);

    // Text that looks like SQL is a name like any other.
    let hostile = "x'); DELETE FROM catalog_items;--";
    store
        .put_catalog_item(&item(CatalogKind::Agent, hostile, "acme", Some("{}")))
        .await
        .unwrap();
    let names: Vec<String> = store
        .catalog_items()
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert_eq!(names, vec!["sales", "ann", "sales", hostile]);
}

async fn catalog_input_is_bounded_and_named(store: &Store) {
    let big = format!("\"{}\"", "x".repeat(MAX_DEFINITION_BYTES));
    for (bad, field) in [
        (item(CatalogKind::Queue, "", "acme", Some("{}")), "name"),
        (item(CatalogKind::Queue, "q", " ", Some("{}")), "tenant"),
        (
            item(
                CatalogKind::Queue,
                &"q".repeat(MAX_NAME_CHARS + 1),
                "acme",
                None,
            ),
            "name",
        ),
        (
            item(CatalogKind::Agent, "a", "acme", Some("{not json")),
            "definition",
        ),
        (
            item(CatalogKind::Agent, "a", "acme", Some(&big)),
            "definition",
        ),
        (
            item(CatalogKind::Flow, "f", "acme", Some("\"\0\"")),
            "definition",
        ),
    ] {
        assert_invalid(store.put_catalog_item(&bad).await, field);
    }
    assert!(store.catalog_items().await.unwrap().is_empty());
}

async fn api_keys_verify_until_revoked(store: &Store) {
    let key = store
        .create_api_key("acme", "CRM sync", Role::Client)
        .await
        .unwrap();
    let token = key.token.expose().to_owned();
    assert!(token.starts_with(&format!("sb_{}_", key.key_id)), "{token}");
    assert!(
        !format!("{key:?}").contains(&token[20..]),
        "Debug shows no secret"
    );

    let expected = Principal {
        tenant: "acme".to_owned(),
        role: Role::Client,
        credential: Credential::ApiKey(key.key_id.clone()),
    };
    assert_eq!(
        store.verify_api_key(&token).await.unwrap(),
        Some(expected.clone())
    );

    // The right key id with another secret, and an unknown key id with the right secret.
    let last = token.chars().last().unwrap();
    let flipped = if last == '0' { '1' } else { '0' };
    let wrong_secret = format!("{}{flipped}", &token[..token.len() - 1]);
    assert_eq!(store.verify_api_key(&wrong_secret).await.unwrap(), None);
    let other = store
        .create_api_key("beta", "ops", Role::Supervisor)
        .await
        .unwrap();
    let swapped = format!("sb_{}_{}", other.key_id, &token[token.len() - 64..]);
    assert_eq!(store.verify_api_key(&swapped).await.unwrap(), None);
    let unknown = format!("sb_{}_{}", "f".repeat(16), &token[token.len() - 64..]);
    assert_eq!(store.verify_api_key(&unknown).await.unwrap(), None);

    // Another tenant cannot revoke it; its own tenant can, once.
    assert!(!store.revoke_api_key("beta", &key.key_id).await.unwrap());
    assert_eq!(store.verify_api_key(&token).await.unwrap(), Some(expected));
    assert!(store.revoke_api_key("acme", &key.key_id).await.unwrap());
    assert!(!store.revoke_api_key("acme", &key.key_id).await.unwrap());
    assert_eq!(store.verify_api_key(&token).await.unwrap(), None);
    let listed = store.list_api_keys("acme").await.unwrap();
    assert!(listed[0].revoked_at.is_some(), "{listed:?}");

    // The other key still works.
    let beta = store
        .verify_api_key(other.token.expose())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (beta.tenant.as_str(), beta.role),
        ("beta", Role::Supervisor)
    );
}

async fn malformed_tokens_are_refused_without_panic(store: &Store) {
    let key = store
        .create_api_key("acme", "CRM", Role::Admin)
        .await
        .unwrap();
    let token = key.token.expose();
    let huge = "x".repeat(1 << 20);
    let malformed = [
        "",
        "sb_",
        "sb__",
        "Bearer sb_",
        "sb_0123_abc",
        &token[..token.len() - 1],
        &format!("{token}0"),
        &format!(" {token}"),
        &token.to_uppercase(),
        &token.replacen("sb_", "sk_", 1),
        &token.replacen('_', "-", 2),
        &format!("sb_{}_{}", key.key_id, "é".repeat(32)),
        "sb_'); DROP TABLE api_keys; --_0000000000000000000000000000000000000000000000000000000000",
        &huge,
        "\0\0\0",
    ];
    for bad in malformed {
        assert_eq!(
            store.verify_api_key(bad).await.unwrap(),
            None,
            "{:?}",
            bad.chars().take(80).collect::<String>()
        );
    }
    assert!(
        store.verify_api_key(token).await.unwrap().is_some(),
        "the table is intact"
    );
}

async fn api_keys_are_listed_per_tenant_without_secrets(store: &Store) {
    let a1 = store
        .create_api_key("acme", "first", Role::Client)
        .await
        .unwrap();
    let b1 = store
        .create_api_key("beta", "theirs", Role::Client)
        .await
        .unwrap();
    let a2 = store
        .create_api_key("acme", "second", Role::Supervisor)
        .await
        .unwrap();
    let acme = store.list_api_keys("acme").await.unwrap();
    let summary: Vec<(KeyId, &str, Role, &str)> = acme
        .iter()
        .map(|k| {
            (
                k.key_id.clone(),
                k.label.as_str(),
                k.role,
                k.tenant.as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (a1.key_id.clone(), "first", Role::Client, "acme"),
            (a2.key_id.clone(), "second", Role::Supervisor, "acme"),
        ]
    );
    assert!(
        acme.iter()
            .all(|k| k.revoked_at.is_none() && k.created_at > Timestamp::ZERO)
    );
    let shown = format!("{acme:?}");
    for secret in [a1.token.expose(), a2.token.expose()] {
        assert!(!shown.contains(&secret[20..]), "{shown}");
    }
    assert!(!shown.contains("$argon2"), "{shown}");
    assert_eq!(
        store.list_api_keys("beta").await.unwrap()[0].key_id,
        b1.key_id
    );
    assert!(store.list_api_keys("gamma").await.unwrap().is_empty());

    assert_invalid(
        store.create_api_key("acme", "", Role::Client).await,
        "label",
    );
    assert_invalid(
        store
            .create_api_key("acme", &"l".repeat(MAX_NAME_CHARS + 1), Role::Client)
            .await,
        "label",
    );
    assert_invalid(store.create_api_key(" ", "x", Role::Client).await, "tenant");
}

async fn web_users_sign_in_until_disabled(store: &Store) {
    store
        .create_web_user("acme", "sam", "correct horse battery", Role::Supervisor)
        .await
        .unwrap();
    let sam = store
        .verify_web_user("sam", "correct horse battery")
        .await
        .unwrap();
    assert_eq!(
        sam,
        Some(Principal {
            tenant: "acme".to_owned(),
            role: Role::Supervisor,
            credential: Credential::WebUser("sam".to_owned()),
        })
    );
    for (user, password) in [
        ("sam", "correct horse battery "),
        ("sam", ""),
        ("Sam", "correct horse battery"),
        ("nobody", "correct horse battery"),
        ("", "x"),
        ("sam", &"x".repeat(10_000)),
    ] {
        assert_eq!(
            store.verify_web_user(user, password).await.unwrap(),
            None,
            "{user:?}"
        );
    }
    let err = store
        .create_web_user("beta", "sam", "another password", Role::Client)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::DuplicateUser { username } if username == "sam"),
        "{err:?}"
    );
    assert_invalid(
        store
            .create_web_user("acme", "short", "1234567", Role::Client)
            .await,
        "password",
    );
    assert_invalid(
        store
            .create_web_user("acme", "", "12345678", Role::Client)
            .await,
        "username",
    );

    let listed = store.list_web_users("acme").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].username.as_str(), listed[0].role),
        ("sam", Role::Supervisor)
    );
    assert!(!format!("{listed:?}").contains("$argon2"));
    assert!(store.list_web_users("beta").await.unwrap().is_empty());

    assert!(!store.disable_web_user("beta", "sam").await.unwrap());
    assert!(store.disable_web_user("acme", "sam").await.unwrap());
    assert_eq!(
        store
            .verify_web_user("sam", "correct horse battery")
            .await
            .unwrap(),
        None
    );
    assert!(
        store.list_web_users("acme").await.unwrap()[0]
            .disabled_at
            .is_some()
    );
}

/// A database that has only the first migration (as an older Switchboard left it) takes the
/// new ones on open, keeps its contacts, and the new tables work.
async fn records_arrive_on_a_store_of_the_first_migration(url: &str, kind: StoreKind) {
    let tree = match kind {
        StoreKind::Sqlite => "sqlite",
        StoreKind::Postgres => "postgres",
    };
    let dir = tempfile::tempdir().unwrap();
    let first = format!(
        "{}/migrations/{tree}/0001_contacts.sql",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::copy(&first, dir.path().join("0001_contacts.sql")).unwrap();
    let only_first = sqlx::migrate::Migrator::new(dir.path()).await.unwrap();
    let insert_old = "INSERT INTO contacts (tenant, queue, media, priority, arrived_at, attributes, \
                      criteria_json, state, updated_at) \
                      VALUES ('acme', 'sales', 'voice', 0, 1, '{}', '{}', 'queued', 1)";
    // Through a one-connection pool: a `&mut` connection makes the future not `Send`.
    match kind {
        StoreKind::Sqlite => {
            let options: sqlx::sqlite::SqliteConnectOptions = url.parse().unwrap();
            let pool = sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(options.create_if_missing(true))
                .await
                .unwrap();
            only_first.run(&pool).await.unwrap();
            sqlx::query(insert_old).execute(&pool).await.unwrap();
            pool.close().await;
        }
        StoreKind::Postgres => {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .connect(url)
                .await
                .unwrap();
            only_first.run(&pool).await.unwrap();
            sqlx::query(insert_old).execute(&pool).await.unwrap();
            pool.close().await;
        }
    }

    let store = Store::open(url).await.unwrap();
    let open = store.open_contacts().await.unwrap();
    assert_eq!(open.len(), 1, "the old contact is kept");
    let old = open[0].id;
    let new = insert(&store, contact("acme", "sales", 0, 2)).await;
    assert!(old < new);
    insert_cdr(&store, &cdr("acme", new, Some("ana"), 2, 9)).await;
    assert!(store.cdr("acme", new).await.unwrap().is_some());
    store
        .record_agent_states(&[change("acme", "ana", AgentState::Available, 3)])
        .await
        .unwrap();
    assert_eq!(
        store
            .agent_states("acme", "ana", at(0), at(9), None)
            .await
            .unwrap()
            .len(),
        1
    );
    let key = store
        .create_api_key("acme", "after upgrade", Role::Client)
        .await
        .unwrap();
    assert!(
        store
            .verify_api_key(key.token.expose())
            .await
            .unwrap()
            .is_some()
    );
    store.migrate().await.unwrap();
    assert!(
        store.cdr("acme", new).await.unwrap().is_some(),
        "migrating again changes nothing"
    );
    store.close().await;

    // What is kept of the key: an argon2id PHC string with the documented parameters, never
    // the secret.
    let read_hash = "SELECT secret_hash FROM api_keys";
    let kept: String = match kind {
        StoreKind::Sqlite => {
            let pool = sqlx::SqlitePool::connect(url).await.unwrap();
            let kept = sqlx::query_scalar(read_hash)
                .fetch_one(&pool)
                .await
                .unwrap();
            pool.close().await;
            kept
        }
        StoreKind::Postgres => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            let kept = sqlx::query_scalar(read_hash)
                .fetch_one(&pool)
                .await
                .unwrap();
            pool.close().await;
            kept
        }
    };
    let params =
        format!("$argon2id$v=19$m={ARGON2_M_COST_KIB},t={ARGON2_T_COST},p={ARGON2_P_COST}$");
    assert!(kept.starts_with(&params), "{kept}");
    let secret = &key.token.expose()[key.token.expose().len() - 64..];
    assert!(!kept.contains(secret), "{kept}");
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

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn records_arrive_on_a_store_of_the_first_migration() {
                let file = harness::SqliteFile::new();
                super::records_arrive_on_a_store_of_the_first_migration(
                    &file.url,
                    StoreKind::Sqlite,
                )
                .await;
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

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn records_arrive_on_a_store_of_the_first_migration() {
                harness::on_postgres(|url| async move {
                    super::records_arrive_on_a_store_of_the_first_migration(
                        &url,
                        StoreKind::Postgres,
                    )
                    .await;
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
    attributes_from_a_transition_are_stored_with_the_contact,
    concurrent_finishers_cannot_both_win,
    last_agents_rebuild_customer_affinity,
    counts_are_per_tenant_and_state,
    hostile_text_is_stored_verbatim,
    oversize_and_malformed_input_is_refused,
    migrating_again_changes_nothing,
    a_cdr_reads_back_whole_once_per_contact,
    cdrs_are_scoped_by_tenant,
    cdrs_list_in_end_order_filtered_and_paged,
    cdr_input_is_bounded_and_named,
    concurrent_cdr_writers_cannot_both_win,
    hostile_text_in_records_is_stored_verbatim,
    agent_states_come_back_in_order,
    agent_state_batches_are_all_or_nothing_and_bounded,
    agent_state_totals_sum_time_per_state,
    api_keys_verify_until_revoked,
    malformed_tokens_are_refused_without_panic,
    api_keys_are_listed_per_tenant_without_secrets,
    web_users_sign_in_until_disabled,
    catalog_items_are_owned_by_one_client,
    catalog_input_is_bounded_and_named,
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
