//! The connection drops (mid-frame, on garbage, on a disconnect notice) and comes back: the
//! handler reports `HandlerDown`, reconnects with backoff, resyncs (`show channels as json`,
//! `uuid_getvar <uuid> switchboard_contact_id`), re-adopts tagged legs, ends legs that vanished,
//! and reports `HandlerUp`. A wrong password is a clear error and a backoff, not a tight loop.

#[path = "support/esl_server.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use support::{Act, EslServer, Greeting, PASSWORD};
use switchboard::media::asterisk::BackoffPolicy;
use switchboard::media::freeswitch::codec::{Command, EventFormat};
use switchboard::media::freeswitch::{FreeswitchConfig, FreeswitchHandler};
use switchboard::media::{
    HandlerEvent, HandlerId, HangupCause, LegDirection, LegId, MediaCommand, MediaError,
    MediaEvent, MediaHandler,
};
use switchboard::model::ContactId;
use tokio::sync::mpsc;

const TAGGED: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const UNTAGGED: &str = "bbbbbbbb-0000-4000-8000-000000000002";
const PARTNER: &str = "cccccccc-0000-4000-8000-000000000003";

fn channels_json(uuids: &[&str]) -> String {
    let rows: Vec<String> = uuids
        .iter()
        .map(|u| {
            format!(
                "{{\"uuid\":\"{u}\",\"direction\":\"inbound\",\"created\":\"2026-11-21 21:07:38\",\
                 \"name\":\"sofia/internal/1002@127.0.0.1\",\"state\":\"CS_EXECUTE\",\
                 \"cid_name\":\"\",\"cid_num\":\"1002\",\"dest\":\"7205\",\"callstate\":\"ACTIVE\"}}"
            )
        })
        .collect();
    if rows.is_empty() {
        "{\"row_count\": 0}".into()
    } else {
        format!(
            "{{\"row_count\":{},\"rows\":[{}]}}",
            rows.len(),
            rows.join(",")
        )
    }
}

fn config(server: &EslServer) -> FreeswitchConfig {
    let mut c = FreeswitchConfig::new(&server.address(), PASSWORD);
    c.api_timeout = Duration::from_millis(800);
    c.backoff = BackoffPolicy {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(400),
    };
    c
}

async fn next(rx: &mut mpsc::Receiver<HandlerEvent>) -> MediaEvent {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("an event in time")
        .expect("channel open")
        .event
}

/// First connection: a tagged leg bridged to a partner and an untagged one; later
/// connections: nothing left.
fn two_lives() -> support::Script {
    Arc::new(|cmd, conn| match cmd {
        Command::Api { command } if command == "show channels as json" => {
            if conn == 1 {
                vec![support::api(&channels_json(&[TAGGED, UNTAGGED]))]
            } else {
                vec![support::api(&channels_json(&[]))]
            }
        }
        Command::Api { command }
            if *command == format!("uuid_getvar {TAGGED} switchboard_contact_id") =>
        {
            vec![support::api("77")]
        }
        Command::Api { command } if *command == format!("uuid_getvar {TAGGED} bridge_uuid") => {
            vec![support::api(PARTNER)]
        }
        _ => vec![],
    })
}

#[tokio::test]
async fn resync_readopts_tagged_legs_and_counts_untagged_ones() {
    let server = EslServer::start(
        Greeting::Auth,
        support::standard(EventFormat::Json, two_lives()),
    )
    .await;
    let (tx, mut rx) = mpsc::channel(64);
    let handler = FreeswitchHandler::start(HandlerId(1), config(&server), tx).unwrap();
    match next(&mut rx).await {
        MediaEvent::LegCreated {
            leg,
            contact,
            direction,
            caller,
            destination,
        } => {
            assert_eq!(leg, LegId::new(TAGGED));
            assert_eq!(contact, Some(ContactId(77)));
            assert_eq!(direction, LegDirection::Inbound);
            assert_eq!(caller.as_deref(), Some("1002"));
            assert_eq!(destination.as_deref(), Some("7205"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        next(&mut rx).await,
        MediaEvent::Answered {
            leg: LegId::new(TAGGED)
        }
    );
    assert_eq!(
        next(&mut rx).await,
        MediaEvent::Bridged {
            a: LegId::new(TAGGED),
            b: LegId::new(PARTNER)
        }
    );
    assert_eq!(next(&mut rx).await, MediaEvent::HandlerUp);
    // Both count for load; only the tagged one was adopted.
    assert_eq!(handler.load().active_legs, 2);
    let legs = handler.legs().await.unwrap();
    assert_eq!(legs.len(), 2);
    assert_eq!(
        legs.iter()
            .find(|l| l.leg.as_str() == UNTAGGED)
            .unwrap()
            .contact,
        None
    );
    // The contact was asked per channel with uuid_getvar.
    let asked = server.received();
    assert!(asked.contains(&Command::Api {
        command: format!("uuid_getvar {UNTAGGED} switchboard_contact_id")
    }));
}

#[tokio::test]
async fn connection_dropped_mid_frame_reconnects_and_resyncs() {
    let server = EslServer::start(
        Greeting::Auth,
        support::standard(EventFormat::Json, two_lives()),
    )
    .await;
    let (tx, mut rx) = mpsc::channel(64);
    let handler = FreeswitchHandler::start(HandlerId(1), config(&server), tx).unwrap();
    for _ in 0..4 {
        next(&mut rx).await; // LegCreated, Answered, Bridged, HandlerUp
    }
    // Half an event frame, then the connection drops.
    let frame = support::fixture_frame("events_json_loopback_call", &["CHANNEL_ANSWER"]);
    server.push(Act::Send(frame.slice(..frame.len() / 2)));
    server.push(Act::Close);
    match next(&mut rx).await {
        MediaEvent::HandlerDown { reason } => {
            assert!(reason.contains("middle of a frame"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert!(!handler.is_connected());
    let err = handler
        .execute(MediaCommand::Answer {
            leg: LegId::new(TAGGED),
        })
        .await
        .unwrap_err();
    assert_eq!(
        err,
        MediaError::NotConnected {
            handler: HandlerId(1)
        }
    );
    // Second life: the switch lists nothing, so the adopted legs ended meanwhile.
    let mut after = Vec::new();
    loop {
        let e = next(&mut rx).await;
        let done = e == MediaEvent::HandlerUp;
        after.push(e);
        if done {
            break;
        }
    }
    assert!(after.contains(&MediaEvent::HungUp {
        leg: LegId::new(TAGGED),
        cause: HangupCause::switch_lost()
    }));
    assert!(after.contains(&MediaEvent::Destroyed {
        leg: LegId::new(TAGGED)
    }));
    assert!(after.contains(&MediaEvent::Destroyed {
        leg: LegId::new(UNTAGGED)
    }));
    assert_eq!(server.connections(), 2);
    assert_eq!(handler.load().active_legs, 0);
    assert!(handler.is_connected());
}

#[tokio::test]
async fn malformed_stream_closes_and_the_handler_reconnects() {
    let server = EslServer::start(
        Greeting::Auth,
        support::standard(EventFormat::Json, support::idle()),
    )
    .await;
    let (tx, mut rx) = mpsc::channel(64);
    let _handler = FreeswitchHandler::start(HandlerId(1), config(&server), tx).unwrap();
    assert_eq!(next(&mut rx).await, MediaEvent::HandlerUp);
    for _ in 0..4 {
        server.push(Act::Send(Bytes::from_static(
            b"Content-Length: nope\n\nContent-Length: nope\n\n",
        )));
    }
    match next(&mut rx).await {
        MediaEvent::HandlerDown { reason } => assert!(reason.contains("bad frame"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(next(&mut rx).await, MediaEvent::HandlerUp);
}

#[tokio::test]
async fn wrong_password_is_an_error_and_a_backoff_not_a_tight_loop() {
    let attempts = Arc::new(AtomicUsize::new(0));
    let counted = attempts.clone();
    let script: support::Script = Arc::new(move |cmd, _| match cmd {
        Command::Auth { .. } => {
            counted.fetch_add(1, Ordering::SeqCst);
            vec![
                support::reply("-ERR invalid"),
                support::goodbye(),
                Act::Close,
            ]
        }
        _ => vec![],
    });
    let server = EslServer::start(Greeting::Auth, script).await;
    let (tx, mut rx) = mpsc::channel(64);
    let mut cfg = config(&server);
    cfg.password = "WrongPassword".into();
    let handler = FreeswitchHandler::start(HandlerId(1), cfg, tx).unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let n = attempts.load(Ordering::SeqCst);
    // 50 ms doubling to 400 ms with jitter: a handful in 1.2 s, never hundreds.
    assert!((2..=12).contains(&n), "{n} attempts in 1.2 s");
    assert!(!handler.is_connected());
    assert!(rx.try_recv().is_err(), "never up, so never down either");
    handler.shutdown().await;
}

#[tokio::test]
async fn acl_rejection_is_backed_off_too() {
    let server = EslServer::start(Greeting::Rude, support::idle()).await;
    let (tx, _rx) = mpsc::channel(64);
    let handler = FreeswitchHandler::start(HandlerId(1), config(&server), tx).unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let n = server.connections();
    assert!((2..=12).contains(&n), "{n} connections in 1.2 s");
    handler.shutdown().await;
}

#[tokio::test]
async fn disconnect_notice_ends_the_session_and_the_handler_comes_back() {
    let server = EslServer::start(
        Greeting::Auth,
        support::standard(EventFormat::Json, support::idle()),
    )
    .await;
    let (tx, mut rx) = mpsc::channel(64);
    let _handler = FreeswitchHandler::start(HandlerId(1), config(&server), tx).unwrap();
    assert_eq!(next(&mut rx).await, MediaEvent::HandlerUp);
    server.push(support::goodbye());
    server.push(Act::Close);
    match next(&mut rx).await {
        MediaEvent::HandlerDown { reason } => {
            assert!(reason.contains("disconnect notice"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(next(&mut rx).await, MediaEvent::HandlerUp);
}

#[tokio::test]
async fn bgapi_originate_pending_when_the_connection_drops_ends_with_disconnected() {
    let script: support::Script = Arc::new(|cmd, _| match cmd {
        Command::BgApi { .. } => vec![Act::Sleep(Duration::from_millis(50)), Act::Close],
        _ => vec![],
    });
    let server =
        EslServer::start(Greeting::Auth, support::standard(EventFormat::Json, script)).await;
    let (tx, mut rx) = mpsc::channel(64);
    let handler = FreeswitchHandler::start(HandlerId(1), config(&server), tx).unwrap();
    assert_eq!(next(&mut rx).await, MediaEvent::HandlerUp);
    let err = handler
        .execute(MediaCommand::Originate(
            switchboard::media::OriginateRequest {
                target: switchboard::media::OriginateTarget::Raw("loopback/7200".into()),
                contact: ContactId(5),
                leg: LegId::new("dropped-leg"),
                caller_id_number: None,
                caller_id_name: None,
                variables: Default::default(),
                timeout: Duration::from_secs(5),
            },
        ))
        .await
        .unwrap_err();
    assert!(matches!(err, MediaError::Disconnected { .. }), "{err:?}");
}
