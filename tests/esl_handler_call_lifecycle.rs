//! The FreeSWITCH handler against a scripted server: each MediaCommand becomes the FreeSWITCH
//! command line it should, replies are read in the captures' forms (`-ERR …` names the command
//! and the reason), and the captures' events become the MediaEvents of a call's life.

#[path = "support/esl_server.rs"]
mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use support::{Act, EslServer, Greeting, PASSWORD};
use switchboard::media::freeswitch::codec::{Command, EventFormat, OwnedEvent};
use switchboard::media::freeswitch::{FreeswitchConfig, FreeswitchHandler};
use switchboard::media::{
    CommandOutcome, ConferenceAction, HandlerEvent, HandlerId, HangupCause, LegDirection, LegId,
    MediaCommand, MediaError, MediaEvent, MediaHandler, OriginateRequest, OriginateTarget,
    PlaySource, RecordFormat, RecordTarget,
};
use switchboard::model::ContactId;
use tokio::sync::mpsc;

fn config(server: &EslServer) -> FreeswitchConfig {
    let mut c = FreeswitchConfig::new(&server.address(), PASSWORD);
    c.api_timeout = Duration::from_millis(800);
    c.capacity = 10;
    c
}

async fn next(rx: &mut mpsc::Receiver<HandlerEvent>) -> MediaEvent {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("an event in time")
        .expect("channel open")
        .event
}

async fn up(
    script: support::Script,
) -> (EslServer, FreeswitchHandler, mpsc::Receiver<HandlerEvent>) {
    let server =
        EslServer::start(Greeting::Auth, support::standard(EventFormat::Json, script)).await;
    let (tx, mut rx) = mpsc::channel(1024);
    let handler = FreeswitchHandler::start(HandlerId(7), config(&server), tx).unwrap();
    assert_eq!(next(&mut rx).await, MediaEvent::HandlerUp);
    (server, handler, rx)
}

fn last_api(server: &EslServer) -> String {
    server
        .received()
        .iter()
        .rev()
        .find_map(|c| match c {
            Command::Api { command } | Command::BgApi { command, .. } => Some(command.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn subscribes_to_json_events_the_mapping_reads() {
    let (server, handler, _rx) = up(support::idle()).await;
    let event = server
        .received()
        .into_iter()
        .find_map(|c| match c {
            Command::Event { format, events } => Some((format, events)),
            _ => None,
        })
        .unwrap();
    assert_eq!(event.0, EventFormat::Json);
    for needed in [
        "CHANNEL_CREATE",
        "CHANNEL_HANGUP",
        "BACKGROUND_JOB",
        "CUSTOM",
        "conference::maintenance",
    ] {
        assert!(event.1.iter().any(|e| e == needed), "{needed} subscribed");
    }
    assert!(handler.load().healthy);
    assert_eq!(handler.load().capacity, 10);
}

#[tokio::test]
async fn originate_sends_bgapi_with_leg_contact_and_variables_then_reports_the_leg() {
    let (server, handler, mut rx) = up(support::idle()).await;
    let leg = LegId::new("5b0c7a0e-6a43-4a4c-9d5c-2f5a0e2b9a11");
    let mut variables = BTreeMap::new();
    variables.insert("sip_h_X-Campaign".to_owned(), "spring".to_owned());
    let outcome = handler
        .execute(MediaCommand::Originate(OriginateRequest {
            target: OriginateTarget::SipUser {
                user: "1000".into(),
                domain: None,
            },
            contact: ContactId(42),
            leg: leg.clone(),
            caller_id_number: Some("5551000".into()),
            caller_id_name: None,
            variables,
            timeout: Duration::from_secs(20),
        }))
        .await
        .unwrap();
    assert_eq!(outcome, CommandOutcome::Originated { leg: leg.clone() });
    let sent = server.received();
    let Some(Command::BgApi { command, job_uuid }) = sent.last() else {
        panic!("bgapi expected: {sent:?}");
    };
    assert!(job_uuid.is_some(), "Switchboard chooses the Job-UUID");
    assert_eq!(
        command,
        "originate {origination_uuid=5b0c7a0e-6a43-4a4c-9d5c-2f5a0e2b9a11,switchboard_contact_id=42,\
         originate_timeout=20,origination_caller_id_number=5551000,sip_h_X-Campaign=spring}user/1000 &park()"
    );
    // FreeSWITCH's CHANNEL_CREATE for it: the leg with its contact, outbound.
    server.push(support::event(
        EventFormat::Json,
        OwnedEvent::new("CHANNEL_CREATE")
            .with("Unique-ID", leg.as_str())
            .with("Call-Direction", "outbound")
            .with("Caller-Destination-Number", "1000"),
    ));
    match next(&mut rx).await {
        MediaEvent::LegCreated {
            leg: l,
            contact,
            direction,
            destination,
            ..
        } => {
            assert_eq!(l, leg);
            assert_eq!(contact, Some(ContactId(42)));
            assert_eq!(direction, LegDirection::Outbound);
            assert_eq!(destination.as_deref(), Some("1000"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(handler.load().active_legs, 1);
}

#[tokio::test]
async fn originate_that_fails_in_its_background_job_ends_the_leg_with_the_cause() {
    let script: support::Script = Arc::new(|cmd, _| match cmd {
        Command::BgApi {
            job_uuid: Some(job),
            ..
        } => vec![
            support::frame(
                switchboard::media::freeswitch::codec::ServerFrame::BgApiAccepted {
                    job_uuid: job.clone(),
                },
            ),
            support::job_done(EventFormat::Json, job, "originate", "-ERR USER_BUSY\n"),
        ],
        _ => vec![],
    });
    let (_server, handler, mut rx) = up(script).await;
    let leg = LegId::new("busy-leg");
    handler
        .execute(MediaCommand::Originate(OriginateRequest {
            target: OriginateTarget::Raw("error/USER_BUSY".into()),
            contact: ContactId(1),
            leg: leg.clone(),
            caller_id_number: None,
            caller_id_name: None,
            variables: BTreeMap::new(),
            timeout: Duration::from_secs(5),
        }))
        .await
        .unwrap();
    assert_eq!(
        next(&mut rx).await,
        MediaEvent::HungUp {
            leg: leg.clone(),
            cause: HangupCause::user_busy()
        }
    );
    assert_eq!(next(&mut rx).await, MediaEvent::Destroyed { leg });
}

#[tokio::test]
async fn each_command_becomes_its_freeswitch_command_line() {
    let (server, handler, _rx) = up(support::idle()).await;
    let u1 = LegId::new("fef78736-d677-4351-bbe1-6862498df181");
    let u2 = LegId::new("43e75a64-e99b-46ea-9bd6-e98fdee3412c");
    let cases: Vec<(MediaCommand, &str)> = vec![
        (
            MediaCommand::Answer { leg: u1.clone() },
            "uuid_answer fef78736-d677-4351-bbe1-6862498df181",
        ),
        (
            MediaCommand::Hangup {
                leg: u1.clone(),
                cause: HangupCause::call_rejected(),
            },
            "uuid_kill fef78736-d677-4351-bbe1-6862498df181 CALL_REJECTED",
        ),
        (
            MediaCommand::Bridge {
                a: u1.clone(),
                b: u2.clone(),
            },
            "uuid_bridge fef78736-d677-4351-bbe1-6862498df181 43e75a64-e99b-46ea-9bd6-e98fdee3412c",
        ),
        (
            MediaCommand::StartRecording {
                target: RecordTarget::Leg(u1.clone()),
                path: "/var/rec/cc_1".into(),
                format: RecordFormat::Wav,
            },
            "uuid_record fef78736-d677-4351-bbe1-6862498df181 start /var/rec/cc_1.wav",
        ),
        (
            MediaCommand::StopRecording {
                target: RecordTarget::Bridge { leg: u1.clone() },
                path: "/var/rec/cc_1.wav".into(),
            },
            "uuid_record fef78736-d677-4351-bbe1-6862498df181 stop /var/rec/cc_1.wav",
        ),
        (
            MediaCommand::Play {
                leg: u1.clone(),
                source: PlaySource::Tone("%(800,0,600)".into()),
                playback: "p1".into(),
            },
            "uuid_broadcast fef78736-d677-4351-bbe1-6862498df181 playback::tone_stream://%(800,0,600) aleg",
        ),
        (
            MediaCommand::StopPlayback {
                leg: u1.clone(),
                playback: "p1".into(),
            },
            "uuid_break fef78736-d677-4351-bbe1-6862498df181 all",
        ),
        (
            MediaCommand::Transfer {
                leg: u1.clone(),
                extension: "7203".into(),
                context: "default".into(),
            },
            "uuid_transfer fef78736-d677-4351-bbe1-6862498df181 7203 XML default",
        ),
        (
            MediaCommand::SendDtmf {
                leg: u1.clone(),
                digits: "12#".into(),
            },
            "uuid_send_dtmf fef78736-d677-4351-bbe1-6862498df181 12#",
        ),
        (
            MediaCommand::Park {
                leg: u1.clone(),
                music: Some("default".into()),
            },
            "uuid_broadcast fef78736-d677-4351-bbe1-6862498df181 endless_playback::local_stream://moh aleg",
        ),
        (
            MediaCommand::Conference {
                room: "cc-1".into(),
                action: ConferenceAction::Join { leg: u2.clone() },
            },
            "uuid_transfer 43e75a64-e99b-46ea-9bd6-e98fdee3412c conference:cc-1@default inline",
        ),
        (
            MediaCommand::SetVariable {
                leg: u1.clone(),
                name: "switchboard_contact_id".into(),
                value: "9".into(),
            },
            "uuid_setvar fef78736-d677-4351-bbe1-6862498df181 switchboard_contact_id 9",
        ),
    ];
    for (command, line) in cases {
        let shown = format!("{command:?}");
        let outcome = handler
            .execute(command)
            .await
            .unwrap_or_else(|e| panic!("{shown}: {e}"));
        assert_eq!(outcome, CommandOutcome::Done, "{shown}");
        assert_eq!(last_api(&server), line, "{shown}");
    }
}

#[tokio::test]
async fn err_replies_become_media_errors_naming_the_command_and_the_reason() {
    let script: support::Script = Arc::new(|cmd, _| match cmd {
        Command::Api { command } if command.starts_with("uuid_answer") => {
            vec![support::api("-ERR No such channel!\n")]
        }
        Command::Api { command } if command.starts_with("uuid_record") => {
            vec![support::api("-ERR Cannot open file /nope/x.wav\n")]
        }
        Command::Api { command } if command.starts_with("uuid_kill") => {
            vec![
                Act::Sleep(Duration::from_millis(1500)),
                support::api("+OK\n"),
            ]
        }
        _ => vec![],
    });
    let (_server, handler, _rx) = up(script).await;
    let leg = LegId::new("00000000-0000-0000-0000-000000000000");
    let err = handler
        .execute(MediaCommand::Answer { leg: leg.clone() })
        .await
        .unwrap_err();
    assert_eq!(
        err,
        MediaError::NoSuchLeg {
            handler: HandlerId(7),
            leg: leg.to_string()
        }
    );
    let err = handler
        .execute(MediaCommand::StartRecording {
            target: RecordTarget::Leg(leg.clone()),
            path: "/nope/x.wav".into(),
            format: RecordFormat::Wav,
        })
        .await
        .unwrap_err();
    match &err {
        MediaError::Refused { command, reply, .. } => {
            assert!(command.starts_with("uuid_record "), "{command}");
            assert!(reply.contains("Cannot open file"), "{reply}");
        }
        other => panic!("{other:?}"),
    }
    let err = handler
        .execute(MediaCommand::Hangup {
            leg,
            cause: HangupCause::normal_clearing(),
        })
        .await
        .unwrap_err();
    assert!(matches!(err, MediaError::Timeout { .. }), "{err:?}");
}

#[tokio::test]
async fn unsafe_arguments_are_refused_before_anything_is_sent() {
    let (server, handler, _rx) = up(support::idle()).await;
    let before = server.received().len();
    let err = handler
        .execute(MediaCommand::Play {
            leg: LegId::new("u1"),
            source: PlaySource::File("/tmp/a file.wav".into()),
            playback: "p".into(),
        })
        .await
        .unwrap_err();
    assert!(matches!(err, MediaError::Refused { .. }), "{err:?}");
    let err = handler
        .execute(MediaCommand::SendDtmf {
            leg: LegId::new("u1"),
            digits: "1;exit".into(),
        })
        .await
        .unwrap_err();
    assert!(matches!(err, MediaError::Refused { .. }), "{err:?}");
    assert_eq!(server.received().len(), before);
}

#[tokio::test]
async fn conference_list_reads_members_from_the_capture_reply() {
    let script: support::Script = Arc::new(|cmd, _| match cmd {
        Command::Api { command } if command == "conference cc-1 list" => vec![support::api(
            "2;loopback/7200-a;43e75a64-e99b-46ea-9bd6-e98fdee3412c;;0000000000;hear|speak|floor;0;0;100\n\
             1;loopback/7200-a;fef78736-d677-4351-bbe1-6862498df181;Outbound Call;default;hear|speak;0;0;100\n",
        )],
        _ => vec![],
    });
    let (_server, handler, _rx) = up(script).await;
    let out = handler
        .execute(MediaCommand::Conference {
            room: "cc-1".into(),
            action: ConferenceAction::List,
        })
        .await
        .unwrap();
    let CommandOutcome::Members(m) = out else {
        panic!("{out:?}")
    };
    assert_eq!(m.len(), 2);
    assert_eq!(m[1].leg, LegId::new("fef78736-d677-4351-bbe1-6862498df181"));
}

/// The capture of two calls bridged, recorded, played to, transferred into a conference, muted,
/// kicked and hung up: every event frame, in order, through the handler.
#[tokio::test]
async fn captured_call_control_events_become_the_calls_media_events() {
    let (server, handler, mut rx) = up(support::idle()).await;
    let frames =
        support::fixture_events("call_control_bridge_record_broadcast_transfer_conference");
    for f in frames {
        server.push(Act::Send(f));
    }
    let u1 = LegId::new("fef78736-d677-4351-bbe1-6862498df181");
    let u2 = LegId::new("43e75a64-e99b-46ea-9bd6-e98fdee3412c");
    let mut seen = Vec::new();
    loop {
        let Ok(Some(e)) = tokio::time::timeout(Duration::from_millis(800), rx.recv()).await else {
            break;
        };
        seen.push(e.event);
    }
    let has = |want: &MediaEvent| seen.iter().any(|e| e == want);
    assert!(
        seen.iter()
            .any(|e| matches!(e, MediaEvent::LegCreated { leg, .. } if *leg == u1))
    );
    assert!(has(&MediaEvent::Answered { leg: u1.clone() }));
    assert!(has(&MediaEvent::Bridged {
        a: u1.clone(),
        b: u2.clone()
    }));
    let path = "/opt/pbxlabs/freeswitch/captures/recordings/cc_fef78736.wav".to_owned();
    assert!(has(&MediaEvent::RecordingStarted {
        leg: u1.clone(),
        path: path.clone()
    }));
    assert!(has(&MediaEvent::RecordingFinished {
        leg: u1.clone(),
        path,
        duration: Some(Duration::from_millis(2000))
    }));
    assert!(has(&MediaEvent::PlaybackStarted {
        leg: u1.clone(),
        playback: None
    }));
    assert!(has(&MediaEvent::PlaybackFinished {
        leg: u1.clone(),
        playback: None
    }));
    assert!(has(&MediaEvent::Unbridged { leg: u1.clone() }));
    assert!(seen.iter().any(
        |e| matches!(e, MediaEvent::ConferenceJoined { room, leg, member: Some(_) } if room == "cc-1" && *leg == u1)
    ));
    assert!(
        seen.iter()
            .any(|e| matches!(e, MediaEvent::ConferenceLeft { room, .. } if room == "cc-1"))
    );
    assert!(has(&MediaEvent::HungUp {
        leg: u2.clone(),
        cause: HangupCause::normal_clearing()
    }));
    assert!(has(&MediaEvent::Destroyed { leg: u1.clone() }));
    // One HungUp per leg although both CHANNEL_HANGUP and _COMPLETE came.
    let hangups = seen
        .iter()
        .filter(|e| matches!(e, MediaEvent::HungUp { leg, .. } if *leg == u1))
        .count();
    assert_eq!(hangups, 1);
    // Every leg ended: the load is back to zero.
    assert_eq!(handler.load().active_legs, 0);
}

#[tokio::test]
async fn captured_dtmf_events_carry_digit_and_duration() {
    let (server, _handler, mut rx) = up(support::idle()).await;
    for f in support::fixture_events("sip_register_inbound_call_dtmf_outbound_user") {
        server.push(Act::Send(f));
    }
    let mut digits = Vec::new();
    loop {
        let Ok(Some(e)) = tokio::time::timeout(Duration::from_millis(800), rx.recv()).await else {
            break;
        };
        if let MediaEvent::Dtmf {
            digit, duration, ..
        } = e.event
        {
            digits.push((digit, duration));
        }
    }
    assert_eq!(
        digits.iter().map(|d| d.0).collect::<String>(),
        "1#5",
        "{digits:?}"
    );
    // DTMF-Duration counts 8 kHz samples: 2240 = 280 ms.
    assert_eq!(digits[0].1, Duration::from_millis(280));
}

#[tokio::test]
async fn playback_ids_given_with_play_come_back_in_the_playback_events() {
    let (server, handler, mut rx) = up(support::idle()).await;
    let leg = LegId::new("u-play");
    handler
        .execute(MediaCommand::Play {
            leg: leg.clone(),
            source: PlaySource::File("ivr/ivr-welcome.wav".into()),
            playback: "greeting-1".into(),
        })
        .await
        .unwrap();
    for name in ["PLAYBACK_START", "PLAYBACK_STOP"] {
        server.push(support::event(
            EventFormat::Json,
            OwnedEvent::new(name).with("Unique-ID", leg.as_str()),
        ));
    }
    assert_eq!(
        next(&mut rx).await,
        MediaEvent::PlaybackStarted {
            leg: leg.clone(),
            playback: Some("greeting-1".into())
        }
    );
    assert_eq!(
        next(&mut rx).await,
        MediaEvent::PlaybackFinished {
            leg,
            playback: Some("greeting-1".into())
        }
    );
}
