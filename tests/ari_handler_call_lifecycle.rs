//! The Asterisk handler over the wire, against the emulator: an originated leg and an inbound
//! call go through their lives as normalised events, commands become ARI calls, and the
//! leg→bridge map stays inside the adapter.

#[path = "support/ari.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use switchboard::emulator::asterisk::InboundCall;
use switchboard::media::{
    CONTACT_VARIABLE, CommandOutcome, HangupCause, LegDirection, LegId, MediaCommand, MediaError,
    MediaEvent, MediaHandler, OriginateRequest, OriginateTarget, PlaySource, RecordFormat,
    RecordTarget,
};
use switchboard::model::ContactId;

fn originate(leg: &str, extension: &str, contact: u64) -> MediaCommand {
    MediaCommand::Originate(OriginateRequest {
        target: OriginateTarget::Local {
            extension: extension.into(),
            context: "cc-test".into(),
        },
        contact: ContactId(contact),
        leg: LegId::new(leg),
        caller_id_number: Some("7000".into()),
        caller_id_name: Some("CC".into()),
        variables: BTreeMap::new(),
        timeout: Duration::from_secs(3),
    })
}

#[tokio::test]
async fn an_originated_leg_is_created_answered_tagged_and_hung_up() {
    let emu = support::emulator(0.05).await;
    let (h, mut rx) = support::handler(&emu, false).await;
    let out = h.execute(originate("out-1", "300", 42)).await.unwrap();
    assert_eq!(
        out,
        CommandOutcome::Originated {
            leg: LegId::new("out-1")
        }
    );
    let seen = support::wait_for(&mut rx, |e| matches!(e, MediaEvent::Answered { .. })).await;
    assert!(seen.iter().any(|e| matches!(e, MediaEvent::LegCreated { leg, contact: Some(ContactId(42)), direction: LegDirection::Outbound, .. } if leg.as_str() == "out-1")), "{seen:#?}");
    // The leg carries its contact on the switch.
    let var = h
        .client()
        .get_variable("out-1", CONTACT_VARIABLE)
        .await
        .unwrap();
    assert_eq!(var, "42");
    h.execute(MediaCommand::Hangup {
        leg: LegId::new("out-1"),
        cause: HangupCause::normal_clearing(),
    })
    .await
    .unwrap();
    let seen = support::wait_for(&mut rx, |e| matches!(e, MediaEvent::Destroyed { .. })).await;
    assert!(
        seen.contains(&MediaEvent::HungUp {
            leg: LegId::new("out-1"),
            cause: HangupCause::normal_clearing()
        }),
        "{seen:#?}"
    );
    assert!(emu.channels().is_empty(), "{:?}", emu.channels());
    h.shutdown().await;
    emu.shutdown().await;
}

#[tokio::test]
async fn a_far_end_that_never_answers_ends_with_no_answer() {
    let emu = support::emulator(0.05).await;
    let (h, mut rx) = support::handler(&emu, false).await;
    h.execute(originate("noans-1", "400", 7)).await.unwrap();
    let seen = support::wait_for(&mut rx, |e| matches!(e, MediaEvent::Destroyed { .. })).await;
    assert!(
        seen.contains(&MediaEvent::HungUp {
            leg: LegId::new("noans-1"),
            cause: HangupCause::no_answer()
        }),
        "{seen:#?}"
    );
    assert!(
        !seen
            .iter()
            .any(|e| matches!(e, MediaEvent::Answered { .. }))
    );
    h.shutdown().await;
    emu.shutdown().await;
}

#[tokio::test]
async fn an_inbound_call_is_answered_bridged_and_outlived_by_its_agent() {
    let emu = support::emulator(0.05).await;
    let (h, mut rx) = support::handler(&emu, false).await;
    let customer = emu
        .place_call(&InboundCall {
            endpoint: "customer".into(),
            extension: "1000".into(),
            caller_name: "Customer".into(),
            caller_number: "5551000".into(),
            dtmf: vec![],
            hangup_after: None,
        })
        .unwrap();
    let cust = LegId::new(customer.as_str());
    let seen = support::wait_for(&mut rx, |e| matches!(e, MediaEvent::LegCreated { .. })).await;
    assert_eq!(
        seen.last(),
        Some(&MediaEvent::LegCreated {
            leg: cust.clone(),
            contact: None,
            direction: LegDirection::Inbound,
            caller: Some("5551000".into()),
            destination: Some("1000".into())
        })
    );
    h.execute(MediaCommand::Answer { leg: cust.clone() })
        .await
        .unwrap();
    support::wait_for(
        &mut rx,
        |e| matches!(e, MediaEvent::Answered { leg } if *leg == cust),
    )
    .await;
    // The caller presses keys (RFC 4733: 280 ms each).
    emu.caller_dtmf(&customer, "12#");
    let seen = support::wait_for(&mut rx, |e| {
        matches!(e, MediaEvent::Dtmf { digit: '#', .. })
    })
    .await;
    let digits: String = seen
        .iter()
        .filter_map(|e| match e {
            MediaEvent::Dtmf { digit, .. } => Some(*digit),
            _ => None,
        })
        .collect();
    assert_eq!(digits, "12#");
    // An agent leg, bridged with the caller.
    h.execute(originate("agent-1", "300", 42)).await.unwrap();
    support::wait_for(
        &mut rx,
        |e| matches!(e, MediaEvent::Answered { leg } if leg.as_str() == "agent-1"),
    )
    .await;
    h.execute(MediaCommand::Bridge {
        a: cust.clone(),
        b: LegId::new("agent-1"),
    })
    .await
    .unwrap();
    let seen = support::wait_for(&mut rx, |e| matches!(e, MediaEvent::Bridged { .. })).await;
    assert!(
        matches!(seen.last(), Some(MediaEvent::Bridged { a, b }) if *a == cust && b.as_str() == "agent-1"),
        "{seen:#?}"
    );
    assert_eq!(emu.bridges(), vec![format!("sb-br-{customer}")]);
    // Play to the agent while bridged, record the bridge.
    h.execute(MediaCommand::Play {
        leg: LegId::new("agent-1"),
        source: PlaySource::File("beep".into()),
        playback: "pb-1".into(),
    })
    .await
    .unwrap();
    let seen = support::wait_for(&mut rx, |e| {
        matches!(e, MediaEvent::PlaybackFinished { .. })
    })
    .await;
    assert!(seen.contains(&MediaEvent::PlaybackStarted {
        leg: LegId::new("agent-1"),
        playback: Some("pb-1".into())
    }));
    h.execute(MediaCommand::StartRecording {
        target: RecordTarget::Bridge { leg: cust.clone() },
        path: "call-42".into(),
        format: RecordFormat::Wav,
    })
    .await
    .unwrap();
    support::wait_for(&mut rx, |e| {
        matches!(e, MediaEvent::RecordingStarted { .. })
    })
    .await;
    h.execute(MediaCommand::StopRecording {
        target: RecordTarget::Bridge { leg: cust.clone() },
        path: "call-42".into(),
    })
    .await
    .unwrap();
    support::wait_for(
        &mut rx,
        |e| matches!(e, MediaEvent::RecordingFinished { path, .. } if path == "call-42"),
    )
    .await;
    // The caller hangs up first: the agent leaves nothing behind but stays up, unbridged.
    emu.kill_channel(&customer, 16);
    let seen = support::wait_for(
        &mut rx,
        |e| matches!(e, MediaEvent::Destroyed { leg } if *leg == cust),
    )
    .await;
    assert!(
        seen.contains(&MediaEvent::HungUp {
            leg: cust.clone(),
            cause: HangupCause::normal_clearing()
        }),
        "{seen:#?}"
    );
    let legs = h.legs().await.unwrap();
    assert_eq!(legs.len(), 1, "{legs:#?}");
    assert_eq!(legs[0].leg.as_str(), "agent-1");
    assert_eq!(legs[0].contact, Some(ContactId(42)));
    assert_eq!(legs[0].bridged_to, None);
    // The controller cleans up.
    h.execute(MediaCommand::Hangup {
        leg: LegId::new("agent-1"),
        cause: HangupCause::normal_clearing(),
    })
    .await
    .unwrap();
    support::wait_for(
        &mut rx,
        |e| matches!(e, MediaEvent::Destroyed { leg } if leg.as_str() == "agent-1"),
    )
    .await;
    h.shutdown().await;
    emu.shutdown().await;
}

#[tokio::test]
async fn commands_for_unknown_legs_are_refused_without_a_request() {
    let emu = support::emulator(0.05).await;
    let (h, _rx) = support::handler(&emu, false).await;
    let err = h
        .execute(MediaCommand::Answer {
            leg: LegId::new("ghost"),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, MediaError::NoSuchLeg { ref leg, .. } if leg == "ghost"),
        "{err}"
    );
    h.shutdown().await;
    emu.shutdown().await;
}

#[tokio::test]
async fn transfer_sends_the_leg_to_the_dialplan_and_it_comes_back() {
    let emu = support::emulator(0.05).await;
    let (h, mut rx) = support::handler(&emu, false).await;
    let customer = emu
        .place_call(&InboundCall {
            endpoint: "customer".into(),
            extension: "1000".into(),
            caller_name: "C".into(),
            caller_number: "1".into(),
            dtmf: vec![],
            hangup_after: None,
        })
        .unwrap();
    let cust = LegId::new(customer.as_str());
    support::wait_for(&mut rx, |e| matches!(e, MediaEvent::LegCreated { .. })).await;
    h.execute(MediaCommand::Answer { leg: cust.clone() })
        .await
        .unwrap();
    support::wait_for(&mut rx, |e| matches!(e, MediaEvent::Answered { .. })).await;
    h.execute(MediaCommand::Transfer {
        leg: cust.clone(),
        extension: "s".into(),
        context: "cc-after".into(),
    })
    .await
    .unwrap();
    // Not hung up: it plays a beep in the dialplan and re-enters Stasis.
    let seen = support::drain_for(&mut rx, Duration::from_millis(400)).await;
    assert!(
        !seen.iter().any(|e| matches!(e, MediaEvent::HungUp { .. })),
        "{seen:#?}"
    );
    assert_eq!(h.legs().await.unwrap().len(), 1);
    h.shutdown().await;
    emu.shutdown().await;
}
