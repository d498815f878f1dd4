//! The outbound server against a fake FreeSWITCH that connects like the dialplan's
//! `socket 127.0.0.1:8084 async full` and answers with the capture's frames byte for byte
//! (fixtures outbound_socket_async_full_linger / _nolinger).

#[path = "support/esl_server.rs"]
mod support;

use std::time::Duration;

use bytes::Bytes;
use support::{EslServer, Greeting, PASSWORD};
use switchboard::media::freeswitch::codec::{Command, CommandDecoder, EventFormat, Limits};
use switchboard::media::freeswitch::{
    FreeswitchConfig, FreeswitchHandler, OutboundConfig, OutboundServer,
};
use switchboard::media::{HandlerId, LegDirection, LegId, MediaEvent};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

const LEG: &str = "dbbc2036-cc4c-431a-8d21-fa4405450e0f";

/// Plays FreeSWITCH's side of an outbound session: answers `connect`, `myevents` and `linger`
/// with the capture's replies, then sends the rest of the capture (events, notices). Returns
/// the commands received and whether the server closed the socket after the notice.
async fn fake_freeswitch(addr: std::net::SocketAddr, capture: &str) -> (Vec<Command>, bool) {
    let frames = support::fixture_frames(capture);
    let mut socket = TcpStream::connect(addr).await.unwrap();
    let mut decoder = CommandDecoder::new(Limits::default());
    let mut received = Vec::new();
    let mut replies = frames.iter().take(3).cloned();
    let mut buf = vec![0u8; 4096];
    // FreeSWITCH sends nothing until `connect`.
    while received.len() < 3 {
        // A server without linger sends two commands only: a quiet 300 ms ends the exchange.
        let wait = if received.len() < 2 { 5000 } else { 300 };
        let Ok(n) = tokio::time::timeout(Duration::from_millis(wait), socket.read(&mut buf)).await
        else {
            break;
        };
        let n = n.unwrap();
        if n == 0 {
            break;
        }
        decoder.feed(&buf[..n]);
        while let Some(frame) = decoder.decode().unwrap() {
            let cmd = frame.command().unwrap();
            let answer: Bytes = match (&cmd, received.len()) {
                (Command::Connect, 0)
                | (Command::MyEvents { .. }, 1)
                | (Command::Linger { .. }, 2) => replies.next().unwrap(),
                (Command::MyEvents { .. }, _) => frames[1].clone(),
                (Command::Linger { .. }, _) => frames[2].clone(),
                other => panic!("unexpected {other:?}"),
            };
            socket.write_all(&answer).await.unwrap();
            received.push(cmd);
        }
    }
    for f in frames.iter().skip(3) {
        socket.write_all(f).await.unwrap();
    }
    let closed = matches!(
        tokio::time::timeout(Duration::from_secs(5), socket.read(&mut buf)).await,
        Ok(Ok(0))
    );
    (received, closed)
}

#[tokio::test]
async fn outbound_session_sends_connect_myevents_linger_and_hands_the_call_over() {
    let server = OutboundServer::bind("127.0.0.1:0", OutboundConfig::default()).unwrap();
    let addr = server.local_addr();
    let (calls_tx, mut calls) = mpsc::channel(4);
    let (_stop, stopped) = watch::channel(false);
    tokio::spawn(server.run(calls_tx, stopped));
    let fs = tokio::spawn(fake_freeswitch(addr, "outbound_socket_async_full_linger"));
    let call = tokio::time::timeout(Duration::from_secs(5), calls.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(call.leg, LegId::new(LEG));
    assert_eq!(call.socket_mode.as_deref(), Some("async"));
    assert_eq!(call.control.as_deref(), Some("full"));
    assert_eq!(
        call.variables.get("interop_tag").map(String::as_str),
        Some("outbound-esl")
    );
    // URL-decoded values.
    assert_eq!(
        call.channel.header("Caller-Caller-ID-Number").as_deref(),
        Some("5553000")
    );
    let (received, closed) = fs.await.unwrap();
    assert_eq!(
        received,
        vec![
            Command::Connect,
            Command::MyEvents {
                uuid: None,
                format: None
            },
            Command::Linger { seconds: Some(3) },
        ]
    );
    assert!(closed, "the session closes after the disconnect notice");
}

#[tokio::test]
async fn outbound_session_without_linger_ends_on_the_single_disconnect_notice() {
    let config = OutboundConfig {
        linger: None,
        ..OutboundConfig::default()
    };
    let server = OutboundServer::bind("127.0.0.1:0", config).unwrap();
    let addr = server.local_addr();
    let (calls_tx, mut calls) = mpsc::channel(4);
    let (_stop, stopped) = watch::channel(false);
    tokio::spawn(server.run(calls_tx, stopped));
    let fs = tokio::spawn(fake_freeswitch(addr, "outbound_socket_async_full_nolinger"));
    let call = tokio::time::timeout(Duration::from_secs(5), calls.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(!call.leg.as_str().is_empty());
    let (received, closed) = fs.await.unwrap();
    assert_eq!(received.len(), 2, "{received:?}");
    assert!(closed);
}

#[tokio::test]
async fn outbound_calls_become_legs_of_the_handler() {
    let inbound = EslServer::start(
        Greeting::Auth,
        support::standard(EventFormat::Json, support::idle()),
    )
    .await;
    let mut config = FreeswitchConfig::new(&inbound.address(), PASSWORD);
    config.outbound_listen = Some("127.0.0.1:0".into());
    let (tx, mut rx) = mpsc::channel(64);
    let handler = FreeswitchHandler::start(HandlerId(3), config, tx).unwrap();
    let addr = handler.outbound_addr().unwrap();
    let mut seen = Vec::new();
    let fs = tokio::spawn(fake_freeswitch(addr, "outbound_socket_async_full_linger"));
    while seen.len() < 6 {
        let Ok(Some(e)) = tokio::time::timeout(Duration::from_secs(2), rx.recv()).await else {
            break;
        };
        let created = matches!(e.event, MediaEvent::LegCreated { .. });
        seen.push(e.event);
        if created {
            break;
        }
    }
    let created = seen
        .iter()
        .find_map(|e| match e {
            MediaEvent::LegCreated {
                leg,
                direction,
                caller,
                destination,
                contact,
            } => Some((
                leg.clone(),
                *direction,
                caller.clone(),
                destination.clone(),
                *contact,
            )),
            _ => None,
        })
        .expect("LegCreated");
    assert_eq!(created.0, LegId::new(LEG));
    assert_eq!(created.1, LegDirection::Inbound);
    assert_eq!(created.2.as_deref(), Some("5553000"));
    assert_eq!(created.3.as_deref(), Some("7202"));
    assert_eq!(created.4, None);
    let _ = fs.await;
}

#[tokio::test]
async fn a_peer_that_is_not_an_outbound_socket_gets_a_clear_error() {
    let server = OutboundServer::bind("127.0.0.1:0", OutboundConfig::default()).unwrap();
    let addr = server.local_addr();
    let (calls_tx, mut calls) = mpsc::channel(4);
    let (_stop, stopped) = watch::channel(false);
    tokio::spawn(server.run(calls_tx, stopped));
    let mut socket = TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 64];
    let _ = socket.read(&mut buf).await.unwrap();
    // A plain command/reply without channel data: the session ends, no call is made.
    socket
        .write_all(b"Content-Type: command/reply\nReply-Text: +OK\n\n")
        .await
        .unwrap();
    let n = tokio::time::timeout(Duration::from_secs(2), socket.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 0);
    assert!(calls.try_recv().is_err());
}

#[test]
fn binding_a_used_address_names_it() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let first = OutboundServer::bind("127.0.0.1:0", OutboundConfig::default()).unwrap();
        let addr = first.local_addr().to_string();
        let err = OutboundServer::bind(&addr, OutboundConfig::default()).unwrap_err();
        assert!(err.to_string().contains(&addr), "{err}");
    });
}
