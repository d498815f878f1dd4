//! Faults on the REST side: an HTTP error or a timeout becomes an error for that command alone,
//! and no command waits forever; the handler keeps working afterwards.

#[path = "support/ari.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use switchboard::media::{
    LegId, MediaCommand, MediaError, MediaEvent, MediaHandler, OriginateRequest, OriginateTarget,
};
use switchboard::model::ContactId;

fn originate(leg: &str) -> MediaCommand {
    MediaCommand::Originate(OriginateRequest {
        target: OriginateTarget::Local {
            extension: "300".into(),
            context: "cc-test".into(),
        },
        contact: ContactId(5),
        leg: LegId::new(leg),
        caller_id_number: None,
        caller_id_name: None,
        variables: BTreeMap::new(),
        timeout: Duration::from_secs(5),
    })
}

#[tokio::test]
async fn a_refused_request_fails_that_command_and_says_why() {
    let emu = support::emulator(0.05).await;
    let (h, mut rx) = support::handler(&emu, false).await;
    h.execute(originate("f-1")).await.unwrap();
    support::wait_for(&mut rx, |e| matches!(e, MediaEvent::Answered { .. })).await;
    emu.refuse_requests(Some(500));
    let err = h
        .execute(MediaCommand::SendDtmf {
            leg: LegId::new("f-1"),
            digits: "1".into(),
        })
        .await
        .unwrap_err();
    match &err {
        MediaError::Refused { command, reply, .. } => {
            assert_eq!(command, "POST /channels/f-1/dtmf");
            assert!(reply.contains("500"), "{reply}");
            assert!(reply.contains("Refused (emulator fault)"), "{reply}");
        }
        other => panic!("{other:?}"),
    }
    // A failed originate forgets its leg.
    let err = h.execute(originate("f-2")).await.unwrap_err();
    assert!(matches!(err, MediaError::Refused { .. }), "{err}");
    emu.refuse_requests(None);
    h.execute(MediaCommand::SendDtmf {
        leg: LegId::new("f-1"),
        digits: "1".into(),
    })
    .await
    .unwrap();
    h.execute(originate("f-2")).await.unwrap();
    h.shutdown().await;
    emu.shutdown().await;
}

#[tokio::test]
async fn a_slow_switch_times_the_command_out() {
    let emu = support::emulator(0.05).await;
    let (h, mut rx) = support::handler(&emu, false).await;
    h.execute(originate("t-1")).await.unwrap();
    support::wait_for(&mut rx, |e| matches!(e, MediaEvent::Answered { .. })).await;
    emu.delay_requests(Some(Duration::from_secs(4)));
    let started = Instant::now();
    let err = h
        .execute(MediaCommand::SendDtmf {
            leg: LegId::new("t-1"),
            digits: "1".into(),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            MediaError::Timeout {
                timeout_ms: 2000,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    emu.delay_requests(None);
    h.shutdown().await;
    emu.shutdown().await;
}

#[tokio::test]
async fn an_unreachable_switch_is_a_disconnection_not_a_hang() {
    // Nothing listens on this port: the handler keeps retrying and commands fail at once.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let (tx, _rx) = tokio::sync::mpsc::channel(16);
    let config = switchboard::media::asterisk::AsteriskConfig::new(
        switchboard::media::HandlerId(9),
        &format!("http://{addr}/ari"),
        "cc",
        switchboard::media::asterisk::Credentials::Basic {
            user: "cc".into(),
            password: "x".into(),
        },
    );
    let h = switchboard::media::asterisk::AsteriskHandler::start(config, tx).unwrap();
    let err = h
        .execute(MediaCommand::Answer {
            leg: LegId::new("x"),
        })
        .await
        .unwrap_err();
    assert!(matches!(err, MediaError::NotConnected { .. }), "{err}");
    assert!(!h.load().healthy);
    let err = h.legs().await.unwrap_err();
    assert!(matches!(err, MediaError::Disconnected { .. }), "{err}");
    h.shutdown().await;
}
