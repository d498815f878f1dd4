//! The inbound ESL client against a scripted server that answers with the fixtures' frames:
//! one test per client-side protocol fact of fixtures/esl/README.md, named after the fact.

#[path = "support/esl_server.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use support::{Act, EslServer, Greeting, PASSWORD};
use switchboard::media::freeswitch::codec::{Command, EventFormat, JobUuid, OwnedEvent};
use switchboard::media::freeswitch::{ClientConfig, ClientError, EslClient};

fn config(server: &EslServer, password: &str) -> ClientConfig {
    let mut c = ClientConfig::new(&server.address(), password);
    c.api_timeout = Duration::from_millis(500);
    c.connect_timeout = Duration::from_secs(2);
    c
}

fn replay(frames: Vec<Bytes>) -> Vec<Act> {
    frames.into_iter().map(Act::Send).collect()
}

/// Frames of a capture between the client block containing `after` and the next client block.
fn answers_to(name: &str, after: &str) -> Vec<Bytes> {
    let log = std::fs::read(support::fixtures_dir().join(format!("{name}.log"))).unwrap();
    let t = switchboard::media::freeswitch::transcript::Transcript::parse(&log).unwrap();
    let mut out = Vec::new();
    let mut on = false;
    for e in &t.entries {
        match e {
            switchboard::media::freeswitch::transcript::Entry::Client { bytes, .. } => {
                if on {
                    break;
                }
                on = String::from_utf8_lossy(bytes).contains(after);
            }
            switchboard::media::freeswitch::transcript::Entry::Server { bytes, .. } if on => {
                out.push(Bytes::from(bytes.clone()))
            }
            _ => {}
        }
    }
    assert!(!out.is_empty(), "no answer to {after:?} in {name}");
    out
}

#[tokio::test]
async fn auth_request_greeting_then_auth_accepted() {
    let server = EslServer::start(
        Greeting::Auth,
        support::standard(EventFormat::Plain, support::idle()),
    )
    .await;
    let (client, _events) = EslClient::connect(&config(&server, PASSWORD))
        .await
        .unwrap();
    assert_eq!(
        server.received(),
        vec![Command::Auth {
            password: PASSWORD.into()
        }]
    );
    // `exit`: +OK bye, then the disconnect notice, then close (auth_ok_exit).
    client.exit().await.unwrap();
}

#[tokio::test]
async fn wrong_password_gets_err_invalid_then_disconnect_notice() {
    let script: support::Script = Arc::new(|cmd, _| match cmd {
        Command::Auth { .. } => replay(answers_to("auth_bad_password", "auth WrongPassword")),
        _ => vec![],
    });
    let server = EslServer::start(Greeting::Auth, script).await;
    let err = EslClient::connect(&config(&server, "WrongPassword"))
        .await
        .unwrap_err();
    match &err {
        ClientError::AuthFailed { reply, .. } => assert_eq!(reply, "invalid"),
        other => panic!("expected AuthFailed, got {other:?}"),
    }
    assert!(
        err.to_string().contains("password"),
        "the error names the password: {err}"
    );
}

#[tokio::test]
async fn acl_rude_rejection_comes_instead_of_auth_request() {
    let server = EslServer::start(Greeting::Rude, support::idle()).await;
    let err = EslClient::connect(&config(&server, PASSWORD))
        .await
        .unwrap_err();
    match err {
        ClientError::Rejected { reason, .. } => assert_eq!(reason, "Access Denied, go away."),
        other => panic!("expected Rejected, got {other:?}"),
    }
}

#[tokio::test]
async fn api_response_carries_the_result_in_the_body_without_newline() {
    let script: support::Script = Arc::new(|cmd, _| match cmd {
        Command::Api { command } if command == "global_getvar domain" => {
            replay(answers_to("api_bgapi", "api global_getvar domain"))
        }
        Command::Api { command } if command == "show calls count" => {
            replay(answers_to("api_bgapi", "api show calls count"))
        }
        _ => vec![],
    });
    let server = EslServer::start(
        Greeting::Auth,
        support::standard(EventFormat::Plain, script),
    )
    .await;
    let (client, _events) = EslClient::connect(&config(&server, PASSWORD))
        .await
        .unwrap();
    assert_eq!(
        client.api("global_getvar domain").await.unwrap(),
        "127.0.0.1"
    );
    let count = client.api("show calls count").await.unwrap();
    assert!(count.starts_with('\n'), "{count:?}");
}

#[tokio::test]
async fn api_errors_are_body_text_not_a_header() {
    let script: support::Script = Arc::new(|cmd, _| match cmd {
        Command::Api { command } if command == "nosuchcmd" => {
            replay(answers_to("api_bgapi", "api nosuchcmd"))
        }
        _ => vec![],
    });
    let server = EslServer::start(
        Greeting::Auth,
        support::standard(EventFormat::Plain, script),
    )
    .await;
    let (client, _events) = EslClient::connect(&config(&server, PASSWORD))
        .await
        .unwrap();
    let body = client.api("nosuchcmd").await.unwrap();
    assert_eq!(body.trim_end(), "-ERR nosuchcmd Command not found!");
}

#[tokio::test]
async fn command_reply_err_becomes_refused_naming_the_command() {
    let script: support::Script = Arc::new(|cmd, _| match cmd {
        Command::SendMsg(_) => vec![support::reply(
            "-ERR invalid session id [00000000-0000-0000-0000-000000000000]",
        )],
        _ => vec![],
    });
    let server = EslServer::start(
        Greeting::Auth,
        support::standard(EventFormat::Plain, script),
    )
    .await;
    let (client, _events) = EslClient::connect(&config(&server, PASSWORD))
        .await
        .unwrap();
    let msg = switchboard::media::freeswitch::codec::SendMsg::new(
        Some(switchboard::media::LegId::new(
            "00000000-0000-0000-0000-000000000000",
        )),
        switchboard::media::freeswitch::codec::CallCommand::Hangup { cause: None },
    );
    let err = client.command(&Command::SendMsg(msg)).await.unwrap_err();
    match &err {
        ClientError::Refused { command, reply } => {
            assert!(command.starts_with("sendmsg"), "{command}");
            assert!(reply.starts_with("invalid session id"), "{reply}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn events_before_a_blocking_api_response_are_delivered_and_the_reply_still_matches() {
    // `api originate` in the capture: CHANNEL_* events arrive before its api/response.
    let frames = answers_to(
        "call_control_bridge_record_broadcast_transfer_conference",
        "api originate {origination_uuid=43e75a64",
    );
    let events_before = frames.iter().take_while(|f| !support::is_reply(f)).count();
    assert!(events_before > 0, "the capture has events before the reply");
    let script: support::Script = Arc::new(move |cmd, _| match cmd {
        Command::Api { command } if command.starts_with("originate") => replay(frames.clone()),
        _ => vec![],
    });
    let server = EslServer::start(
        Greeting::Auth,
        support::standard(EventFormat::Plain, script),
    )
    .await;
    let (client, mut events) = EslClient::connect(&config(&server, PASSWORD))
        .await
        .unwrap();
    let body = client
        .api("originate {origination_uuid=43e75a64-e99b-46ea-9bd6-e98fdee3412c}loopback/7200/default &park()")
        .await
        .unwrap();
    assert_eq!(body.trim_end(), "+OK 43e75a64-e99b-46ea-9bd6-e98fdee3412c");
    let first = events.recv().await.unwrap();
    assert_eq!(first.name(), Some("CHANNEL_EXECUTE"));
    for _ in 1..events_before {
        events.recv().await.unwrap();
    }
}

#[tokio::test]
async fn api_replies_are_fifo_among_reply_frames() {
    // Replies come in order of the commands, with an event and a log line between them.
    let script: support::Script = Arc::new(|cmd, _| match cmd {
        Command::Api { command } if command == "first" => vec![
            Act::Sleep(Duration::from_millis(50)),
            support::event(EventFormat::Plain, OwnedEvent::new("HEARTBEAT")),
            support::api("one"),
        ],
        Command::Api { command } if command == "second" => vec![support::api("two")],
        _ => vec![],
    });
    let server = EslServer::start(
        Greeting::Auth,
        support::standard(EventFormat::Plain, script),
    )
    .await;
    let (client, _events) = EslClient::connect(&config(&server, PASSWORD))
        .await
        .unwrap();
    let (a, b) = tokio::join!(client.api("first"), async {
        tokio::time::sleep(Duration::from_millis(5)).await;
        client.api("second").await
    });
    assert_eq!(a.unwrap(), "one");
    assert_eq!(b.unwrap(), "two");
}

#[tokio::test]
async fn api_timeout_leaves_later_replies_matched_to_their_own_commands() {
    let script: support::Script = Arc::new(|cmd, _| match cmd {
        Command::Api { command } if command == "slow" => vec![
            Act::Sleep(Duration::from_millis(700)),
            support::api("slow result"),
        ],
        Command::Api { command } if command == "fast" => vec![support::api("fast result")],
        _ => vec![],
    });
    let server = EslServer::start(
        Greeting::Auth,
        support::standard(EventFormat::Plain, script),
    )
    .await;
    let (client, _events) = EslClient::connect(&config(&server, PASSWORD))
        .await
        .unwrap();
    let err = client.api("slow").await.unwrap_err();
    assert!(matches!(err, ClientError::Timeout { .. }), "{err:?}");
    assert_eq!(client.api("fast").await.unwrap(), "fast result");
}

#[tokio::test]
async fn bgapi_is_accepted_at_once_with_the_client_supplied_job_uuid() {
    let server = EslServer::start(
        Greeting::Auth,
        support::standard(EventFormat::Plain, support::idle()),
    )
    .await;
    let (client, _events) = EslClient::connect(&config(&server, PASSWORD))
        .await
        .unwrap();
    let job = client.bgapi("status").await.unwrap();
    let sent = server.received();
    match sent.last() {
        Some(Command::BgApi {
            job_uuid: Some(j), ..
        }) => assert_eq!(j, job.uuid()),
        other => panic!("bgapi without Job-UUID: {other:?}"),
    }
}

async fn bgapi_result_in(format: EventFormat) {
    let script: support::Script = Arc::new(move |cmd, _| match cmd {
        Command::BgApi {
            job_uuid: Some(job),
            ..
        } => vec![
            support::frame(
                switchboard::media::freeswitch::codec::ServerFrame::BgApiAccepted {
                    job_uuid: job.clone(),
                },
            ),
            support::event(format, OwnedEvent::new("HEARTBEAT")),
            support::job_done(format, job, "originate", "-ERR USER_BUSY\n"),
        ],
        _ => vec![],
    });
    let server = EslServer::start(Greeting::Auth, support::standard(format, script)).await;
    let mut cfg = config(&server, PASSWORD);
    cfg.format = format;
    cfg.events = vec!["BACKGROUND_JOB".into(), "HEARTBEAT".into()];
    let (client, mut events) = EslClient::connect(&cfg).await.unwrap();
    let job = client
        .bgapi("originate error/USER_BUSY &park()")
        .await
        .unwrap();
    let result = job.result(Duration::from_secs(2)).await.unwrap();
    assert_eq!(result, "-ERR USER_BUSY\n");
    // The job's event went to the job; the unrelated one to the stream.
    assert_eq!(events.recv().await.unwrap().name(), Some("HEARTBEAT"));
    assert_eq!(client.pending_jobs(), 0);
}

#[tokio::test]
async fn bgapi_result_in_plain_background_job_inner_body() {
    bgapi_result_in(EventFormat::Plain).await;
}

#[tokio::test]
async fn bgapi_result_in_json_background_job_body_key() {
    bgapi_result_in(EventFormat::Json).await;
}

#[tokio::test]
async fn bgapi_result_in_xml_background_job_body_element() {
    bgapi_result_in(EventFormat::Xml).await;
}

#[tokio::test]
async fn bgapi_result_from_the_capture_is_matched_by_job_uuid() {
    // The capture's BACKGROUND_JOB for `bgapi originate error/USER_BUSY`, byte for byte: the
    // client's job id must be the capture's for it to match.
    let frames = answers_to("api_bgapi", "bgapi originate error/USER_BUSY");
    let script: support::Script = Arc::new(move |cmd, _| match cmd {
        Command::BgApi { .. } => replay(frames.clone()),
        _ => vec![],
    });
    let server = EslServer::start(
        Greeting::Auth,
        support::standard(EventFormat::Plain, script),
    )
    .await;
    let (client, mut events) = EslClient::connect(&config(&server, PASSWORD))
        .await
        .unwrap();
    // A job under another id: the capture's result is not ours, so it reaches the stream.
    let job = client
        .bgapi("originate error/USER_BUSY &park()")
        .await
        .unwrap();
    let ev = events.recv().await.unwrap();
    assert_eq!(ev.name(), Some("BACKGROUND_JOB"));
    assert_eq!(
        ev.job_uuid(),
        Some(JobUuid::new("ce274098-c9c3-4188-a89b-5c0c53ee62da"))
    );
    assert_eq!(ev.body(), Some(&b"-ERR USER_BUSY\n"[..]));
    let err = job.result(Duration::from_millis(100)).await.unwrap_err();
    assert!(matches!(err, ClientError::Timeout { .. }), "{err:?}");
    assert_eq!(client.pending_jobs(), 0, "a timed-out job leaves no trace");
}

#[tokio::test]
async fn bgapi_waiting_for_its_result_ends_on_disconnect() {
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
            Act::Sleep(Duration::from_millis(50)),
            Act::Close,
        ],
        _ => vec![],
    });
    let server = EslServer::start(
        Greeting::Auth,
        support::standard(EventFormat::Plain, script),
    )
    .await;
    let (client, _events) = EslClient::connect(&config(&server, PASSWORD))
        .await
        .unwrap();
    let job = client
        .bgapi("originate loopback/7200 &park()")
        .await
        .unwrap();
    let err = job.result(Duration::from_secs(5)).await.unwrap_err();
    assert!(matches!(err, ClientError::Disconnected { .. }), "{err:?}");
}

#[tokio::test]
async fn api_waiting_for_its_reply_ends_on_disconnect() {
    let script: support::Script = Arc::new(|cmd, _| match cmd {
        Command::Api { .. } => vec![Act::Close],
        _ => vec![],
    });
    let server = EslServer::start(
        Greeting::Auth,
        support::standard(EventFormat::Plain, script),
    )
    .await;
    let (client, _events) = EslClient::connect(&config(&server, PASSWORD))
        .await
        .unwrap();
    let err = client.api("status").await.unwrap_err();
    assert!(matches!(err, ClientError::Disconnected { .. }), "{err:?}");
    assert!(client.is_closed());
    // And afterwards at once, not after a timeout.
    let err = client.api("status").await.unwrap_err();
    assert!(matches!(err, ClientError::Disconnected { .. }), "{err:?}");
}

#[tokio::test]
async fn subscribe_sends_event_json_and_reads_listener_enabled() {
    let server = EslServer::start(
        Greeting::Auth,
        support::standard(EventFormat::Json, support::idle()),
    )
    .await;
    let mut cfg = config(&server, PASSWORD);
    cfg.events = vec![
        "CHANNEL_CREATE".into(),
        "CUSTOM".into(),
        "conference::maintenance".into(),
    ];
    let (_client, _events) = EslClient::connect(&cfg).await.unwrap();
    assert_eq!(
        server.received()[1],
        Command::Event {
            format: EventFormat::Json,
            events: cfg.events.clone()
        }
    );
}

#[tokio::test]
async fn disconnect_notice_after_exit_ends_the_stream_with_its_reason() {
    let server = EslServer::start(
        Greeting::Auth,
        support::standard(EventFormat::Plain, support::idle()),
    )
    .await;
    let (client, mut events) = EslClient::connect(&config(&server, PASSWORD))
        .await
        .unwrap();
    client.exit().await.unwrap();
    let err = events.recv().await.unwrap_err();
    assert!(err.to_string().contains("disconnect notice"), "{err}");
}

#[tokio::test]
async fn disconnect_notice_for_a_myevents_channel_closes_the_inbound_session() {
    // filter_myevents_nixevent_noevents: when u3 hangs up, FreeSWITCH sends a notice and closes.
    let frames = support::fixture_frames("filter_myevents_nixevent_noevents");
    let tail: Vec<Bytes> = frames
        .into_iter()
        .rev()
        .take_while(|f| !support::is_reply(f))
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let server = EslServer::start(
        Greeting::Auth,
        support::standard(EventFormat::Plain, support::idle()),
    )
    .await;
    let (_client, mut events) = EslClient::connect(&config(&server, PASSWORD))
        .await
        .unwrap();
    for f in tail {
        server.push(Act::Send(f));
    }
    server.push(Act::Close);
    let mut n = 0;
    let err = loop {
        match events.recv().await {
            Ok(_) => n += 1,
            Err(e) => break e,
        }
    };
    assert!(n > 0);
    assert!(err.to_string().contains("disconnect notice"), "{err}");
}

#[tokio::test]
async fn plain_event_values_are_url_decoded_json_values_are_not_encoded() {
    let plain = support::fixture_frame(
        "events_plain_loopback_call",
        &["Event-Name: CHANNEL_CREATE"],
    );
    let json = support::fixture_frame(
        "events_json_loopback_call",
        &["\"Event-Name\":\"CHANNEL_CREATE\""],
    );
    let server = EslServer::start(
        Greeting::Auth,
        support::standard(EventFormat::Plain, support::idle()),
    )
    .await;
    let (_client, mut events) = EslClient::connect(&config(&server, PASSWORD))
        .await
        .unwrap();
    server.push(Act::Send(plain));
    server.push(Act::Send(json));
    let a = events.recv().await.unwrap();
    let b = events.recv().await.unwrap();
    let date_a = a.header("Event-Date-Local").unwrap().into_owned();
    let date_b = b.header("Event-Date-Local").unwrap().into_owned();
    assert!(date_a.contains(' ') && date_a.contains(':'), "{date_a}");
    assert!(date_b.contains(' ') && date_b.contains(':'), "{date_b}");
}

#[tokio::test]
async fn log_data_frames_are_not_replies() {
    let log = support::fixture_frame("log_level7", &["Content-Type: log/data"]);
    let script: support::Script = Arc::new(move |cmd, _| match cmd {
        Command::Api { .. } => vec![Act::Send(log.clone()), support::api("after log")],
        _ => vec![],
    });
    let server = EslServer::start(
        Greeting::Auth,
        support::standard(EventFormat::Plain, script),
    )
    .await;
    let (client, _events) = EslClient::connect(&config(&server, PASSWORD))
        .await
        .unwrap();
    assert_eq!(client.api("status").await.unwrap(), "after log");
}

#[tokio::test]
async fn malformed_frame_is_reported_and_skipped_then_the_stream_goes_on() {
    let server = EslServer::start(
        Greeting::Auth,
        support::standard(EventFormat::Plain, support::idle()),
    )
    .await;
    let (client, mut events) = EslClient::connect(&config(&server, PASSWORD))
        .await
        .unwrap();
    server.push(Act::Send(Bytes::from_static(
        b"Content-Length: abc\nContent-Type: text/event-plain\n\n",
    )));
    server.push(support::event(
        EventFormat::Plain,
        OwnedEvent::new("HEARTBEAT"),
    ));
    let ev = events.recv().await.unwrap();
    assert_eq!(ev.name(), Some("HEARTBEAT"));
    assert_eq!(client.lag().malformed, 1);
    assert_eq!(client.api("status").await.unwrap(), "+OK");
}

#[tokio::test]
async fn garbage_stream_closes_the_connection_with_a_protocol_error() {
    let server = EslServer::start(
        Greeting::Auth,
        support::standard(EventFormat::Plain, support::idle()),
    )
    .await;
    let (_client, mut events) = EslClient::connect(&config(&server, PASSWORD))
        .await
        .unwrap();
    for _ in 0..5 {
        server.push(Act::Send(Bytes::from_static(
            b"Content-Length: zz\n\nContent-Length: yy\n\nContent-Length: xx\n\n",
        )));
    }
    let err = loop {
        match events.recv().await {
            Ok(_) => continue,
            Err(e) => break e,
        }
    };
    assert!(
        matches!(err, ClientError::Protocol { .. }),
        "expected a protocol error, got {err:?}"
    );
}

#[tokio::test]
async fn events_are_never_dropped_when_the_consumer_is_slow_and_lag_is_reported() {
    let server = EslServer::start(
        Greeting::Auth,
        support::standard(EventFormat::Plain, support::idle()),
    )
    .await;
    let mut cfg = config(&server, PASSWORD);
    cfg.events_queue = 8;
    let (client, mut events) = EslClient::connect(&cfg).await.unwrap();
    let frames = support::fixture_events("events_plain_loopback_call");
    let total = frames.len() * 10;
    for _ in 0..10 {
        for f in &frames {
            server.push(Act::Send(f.clone()));
        }
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let lag = client.lag();
    assert!(lag.events >= 8, "the queue is full and counted: {lag:?}");
    let mut n = 0;
    while n < total {
        events.recv().await.unwrap();
        n += 1;
    }
    assert_eq!(client.lag().events, 0);
    assert_eq!(client.lag().read as usize, total);
}

#[tokio::test]
async fn dropping_every_client_handle_closes_the_connection() {
    let server = EslServer::start(
        Greeting::Auth,
        support::standard(EventFormat::Plain, support::idle()),
    )
    .await;
    let (client, mut events) = EslClient::connect(&config(&server, PASSWORD))
        .await
        .unwrap();
    let other = client.clone();
    drop(client);
    assert_eq!(other.api("status").await.unwrap(), "+OK");
    drop(other);
    let err = tokio::time::timeout(Duration::from_secs(2), events.recv())
        .await
        .expect("the stream ends")
        .unwrap_err();
    assert!(err.to_string().contains("dropped"), "{err}");
}
