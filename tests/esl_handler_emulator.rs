//! A call's life through the FreeSWITCH handler against the FreeSWITCH emulator: an inbound
//! call arrives, is tagged with its contact, an agent leg is originated and bridged to it, the
//! bridge is recorded, a prompt is played, the connection drops and comes back (resync
//! re-adopts the tagged legs), and the caller hangs up.

use std::collections::BTreeMap;
use std::time::Duration;

use switchboard::emulator::freeswitch::{Emulator, EmulatorOptions, InboundCall};
use switchboard::media::freeswitch::{FreeswitchConfig, FreeswitchHandler};
use switchboard::media::{
    CommandOutcome, HandlerEvent, HandlerId, HangupCause, LegId, MediaCommand, MediaEvent,
    MediaHandler, OriginateRequest, OriginateTarget, PlaySource, RecordFormat, RecordTarget,
};
use switchboard::model::ContactId;
use tokio::sync::mpsc;

/// Waits (at most 10 s) for an event matching `want`; returns it and what came before.
async fn until(
    rx: &mut mpsc::Receiver<HandlerEvent>,
    what: &str,
    want: impl Fn(&MediaEvent) -> bool,
) -> (MediaEvent, Vec<MediaEvent>) {
    let mut before = Vec::new();
    loop {
        let e = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .unwrap_or_else(|_| panic!("no {what} within 10 s; saw {before:?}"))
            .expect("channel open")
            .event;
        if want(&e) {
            return (e, before);
        }
        before.push(e);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_call_agent_bridge_record_play_reconnect_hangup() {
    let mut options = EmulatorOptions::new("ClueCon");
    options.time_scale = 0.05;
    let emulator = Emulator::start("127.0.0.1:0".parse().unwrap(), options)
        .await
        .unwrap();
    let mut config = FreeswitchConfig::new(&emulator.local_addr().to_string(), "ClueCon");
    config.capacity = 20;
    config.backoff.initial = Duration::from_millis(50);
    let (tx, mut rx) = mpsc::channel(1024);
    let handler = FreeswitchHandler::start(HandlerId(1), config, tx).unwrap();
    until(&mut rx, "HandlerUp", |e| *e == MediaEvent::HandlerUp).await;

    // A customer calls in.
    let caller = emulator
        .place_call(&InboundCall::new("15551230000", "5000"))
        .unwrap();
    let (created, _) = until(
        &mut rx,
        "the inbound leg",
        |e| matches!(e, MediaEvent::LegCreated { leg, .. } if *leg == caller),
    )
    .await;
    let MediaEvent::LegCreated { caller: number, .. } = created else {
        unreachable!()
    };
    assert_eq!(number.as_deref(), Some("15551230000"));
    // The controller tags it with its contact.
    handler
        .execute(MediaCommand::SetVariable {
            leg: caller.clone(),
            name: "switchboard_contact_id".into(),
            value: "501".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        emulator
            .channel_var(&caller, "switchboard_contact_id")
            .as_deref(),
        Some("501")
    );

    // An agent leg (a loopback that answers and parks).
    let agent = LegId::new("9d8f3c9e-1111-4c2b-9a55-3a5f0c0e7701");
    let outcome = handler
        .execute(MediaCommand::Originate(OriginateRequest {
            target: OriginateTarget::Local {
                extension: "7200".into(),
                context: "default".into(),
            },
            contact: ContactId(501),
            leg: agent.clone(),
            caller_id_number: Some("15551230000".into()),
            caller_id_name: None,
            variables: BTreeMap::new(),
            timeout: Duration::from_secs(10),
        }))
        .await
        .unwrap();
    assert_eq!(outcome, CommandOutcome::Originated { leg: agent.clone() });
    let (created, _) = until(
        &mut rx,
        "the agent leg",
        |e| matches!(e, MediaEvent::LegCreated { leg, .. } if *leg == agent),
    )
    .await;
    assert!(
        matches!(
            created,
            MediaEvent::LegCreated {
                contact: Some(ContactId(501)),
                ..
            }
        ),
        "{created:?}"
    );
    until(&mut rx, "the agent's answer", |e| {
        *e == MediaEvent::Answered { leg: agent.clone() }
    })
    .await;

    handler
        .execute(MediaCommand::Answer {
            leg: caller.clone(),
        })
        .await
        .ok();
    handler
        .execute(MediaCommand::Bridge {
            a: caller.clone(),
            b: agent.clone(),
        })
        .await
        .unwrap();
    until(&mut rx, "the bridge", |e| {
        matches!(e, MediaEvent::Bridged { .. })
    })
    .await;

    handler
        .execute(MediaCommand::StartRecording {
            target: RecordTarget::Bridge {
                leg: caller.clone(),
            },
            path: "/tmp/switchboard-501".into(),
            format: RecordFormat::Wav,
        })
        .await
        .unwrap();
    let (started, _) = until(&mut rx, "the recording", |e| {
        matches!(e, MediaEvent::RecordingStarted { .. })
    })
    .await;
    assert_eq!(
        started,
        MediaEvent::RecordingStarted {
            leg: caller.clone(),
            path: "/tmp/switchboard-501.wav".into()
        }
    );

    handler
        .execute(MediaCommand::Play {
            leg: caller.clone(),
            source: PlaySource::Tone("%(200,0,440)".into()),
            playback: "beep".into(),
        })
        .await
        .unwrap();
    let (finished, _) = until(&mut rx, "the playback's end", |e| {
        matches!(e, MediaEvent::PlaybackFinished { .. })
    })
    .await;
    assert_eq!(
        finished,
        MediaEvent::PlaybackFinished {
            leg: caller.clone(),
            playback: Some("beep".into())
        }
    );
    // The caller, the agent leg, and the loopback's far half (a channel of its own).
    assert_eq!(handler.load().active_legs, 3);

    // The connection drops; the handler comes back and finds both legs.
    emulator.drop_connections();
    until(&mut rx, "HandlerDown", |e| {
        matches!(e, MediaEvent::HandlerDown { .. })
    })
    .await;
    until(&mut rx, "HandlerUp again", |e| *e == MediaEvent::HandlerUp).await;
    let legs = handler.legs().await.unwrap();
    // The loopback's far half inherits the originate's variables, so it may be tagged too.
    let tagged: Vec<&LegId> = legs
        .iter()
        .filter(|l| l.contact == Some(ContactId(501)))
        .map(|l| &l.leg)
        .collect();
    assert!(
        tagged.contains(&&caller) && tagged.contains(&&agent),
        "{legs:?}"
    );

    // The customer hangs up; the agent leg is ended by the controller.
    assert!(emulator.kill_channel(&caller, "NORMAL_CLEARING"));
    until(&mut rx, "the caller's hangup", |e| {
        *e == MediaEvent::HungUp {
            leg: caller.clone(),
            cause: HangupCause::normal_clearing(),
        }
    })
    .await;
    let _ = handler
        .execute(MediaCommand::Hangup {
            leg: agent.clone(),
            cause: HangupCause::normal_clearing(),
        })
        .await;
    until(&mut rx, "the agent leg's end", |e| {
        *e == MediaEvent::Destroyed { leg: agent.clone() }
    })
    .await;
    handler.shutdown().await;
    emulator.shutdown().await;
}
