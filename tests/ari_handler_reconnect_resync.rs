//! The events socket drops and comes back: the handler reports `HandlerDown`, reconnects with
//! backoff, resyncs (lists channels and bridges, re-adopts legs tagged with a contact, ends
//! legs that vanished meanwhile) and reports `HandlerUp`. A second Switchboard taking the
//! application (ApplicationReplaced) is handled the same way.

#[path = "support/ari.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use switchboard::media::{
    HangupCause, LegId, MediaCommand, MediaError, MediaEvent, MediaHandler, OriginateRequest,
    OriginateTarget,
};
use switchboard::model::ContactId;

fn originate(leg: &str, contact: u64) -> MediaCommand {
    MediaCommand::Originate(OriginateRequest {
        target: OriginateTarget::Local {
            extension: "300".into(),
            context: "cc-test".into(),
        },
        contact: ContactId(contact),
        leg: LegId::new(leg),
        caller_id_number: None,
        caller_id_name: None,
        variables: BTreeMap::new(),
        timeout: Duration::from_secs(5),
    })
}

#[tokio::test]
async fn a_dropped_socket_is_reconnected_and_resynced() {
    let emu = support::emulator(0.05).await;
    let (h, mut rx) = support::handler(&emu, false).await;
    h.execute(originate("keep-1", 11)).await.unwrap();
    h.execute(originate("gone-1", 12)).await.unwrap();
    let mut answered = 0;
    support::wait_for(&mut rx, |e| {
        if matches!(e, MediaEvent::Answered { .. }) {
            answered += 1;
        }
        answered == 2
    })
    .await;
    // The socket drops; while it is down, one leg's far end hangs up.
    emu.refuse_requests(Some(503));
    emu.drop_sockets();
    let seen = support::wait_for(&mut rx, |e| matches!(e, MediaEvent::HandlerDown { .. })).await;
    assert!(matches!(seen.last(), Some(MediaEvent::HandlerDown { .. })));
    assert!(!h.is_connected());
    let err = h
        .execute(MediaCommand::Answer {
            leg: LegId::new("keep-1"),
        })
        .await
        .unwrap_err();
    assert!(matches!(err, MediaError::NotConnected { .. }), "{err}");
    emu.kill_channel("gone-1", 16);
    emu.refuse_requests(None);
    // Reconnect, resync: the vanished leg ends, the other one is still known.
    let seen = support::wait_for(&mut rx, |e| matches!(e, MediaEvent::HandlerUp)).await;
    assert!(
        seen.contains(&MediaEvent::HungUp {
            leg: LegId::new("gone-1"),
            cause: HangupCause::switch_lost()
        }),
        "{seen:#?}"
    );
    assert!(
        seen.contains(&MediaEvent::Destroyed {
            leg: LegId::new("gone-1")
        }),
        "{seen:#?}"
    );
    let legs = h.legs().await.unwrap();
    assert_eq!(
        legs.iter().map(|l| l.leg.as_str()).collect::<Vec<_>>(),
        vec!["keep-1"]
    );
    assert_eq!(legs[0].contact, Some(ContactId(11)));
    // Commands work again.
    h.execute(MediaCommand::Hangup {
        leg: LegId::new("keep-1"),
        cause: HangupCause::normal_clearing(),
    })
    .await
    .unwrap();
    support::wait_for(
        &mut rx,
        |e| matches!(e, MediaEvent::Destroyed { leg } if leg.as_str() == "keep-1"),
    )
    .await;
    h.shutdown().await;
    emu.shutdown().await;
}

#[tokio::test]
async fn a_new_handler_readopts_the_legs_tagged_with_a_contact() {
    let emu = support::emulator(0.05).await;
    let (first, mut rx1) = support::handler(&emu, false).await;
    first.execute(originate("adopt-1", 99)).await.unwrap();
    support::wait_for(&mut rx1, |e| matches!(e, MediaEvent::Answered { .. })).await;
    // Switchboard restarts: the old handler goes, a new one starts and resyncs.
    first.shutdown().await;
    let (second, mut rx2) = support::handler_collecting(&emu).await;
    let seen = support::wait_for(&mut rx2, |e| matches!(e, MediaEvent::HandlerUp)).await;
    assert!(seen.iter().any(|e| matches!(e, MediaEvent::LegCreated { leg, contact: Some(ContactId(99)), .. } if leg.as_str() == "adopt-1")), "{seen:#?}");
    assert!(
        seen.contains(&MediaEvent::Answered {
            leg: LegId::new("adopt-1")
        }),
        "{seen:#?}"
    );
    // The ;2 half of the Local channel carries the variable too, but is not a leg.
    let legs = second.legs().await.unwrap();
    assert_eq!(legs.len(), 1, "{legs:#?}");
    second.shutdown().await;
    emu.shutdown().await;
}

#[tokio::test]
async fn another_client_taking_the_application_makes_the_handler_reconnect() {
    let emu = support::emulator(0.05).await;
    let (h, mut rx) = support::handler(&emu, false).await;
    let url = format!(
        "ws://{}/ari/events?app=cc&api_key=cc:{}",
        emu.local_addr(),
        support::PASSWORD
    );
    let (intruder, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap();
    let seen = support::wait_for(&mut rx, |e| matches!(e, MediaEvent::HandlerDown { .. })).await;
    assert!(
        matches!(seen.last(), Some(MediaEvent::HandlerDown { reason }) if reason.contains("replaced")),
        "{seen:#?}"
    );
    // It takes the application back.
    support::wait_for(&mut rx, |e| matches!(e, MediaEvent::HandlerUp)).await;
    drop(intruder);
    h.shutdown().await;
    emu.shutdown().await;
}
