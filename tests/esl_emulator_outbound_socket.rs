//! The dialplan's `socket <host:port> async full`: the emulator connects out, waits for
//! `connect`, answers with the channel's data, honours myevents / linger / divert_events /
//! getvar / resume / sendmsg, and ends with the disconnect notices of captures
//! outbound_socket_async_full_linger and _nolinger (driven as
//! outbound_socket_controller_inbound drove them).

mod esl_emulator_support;

use std::collections::BTreeMap;
use std::time::Duration;

use esl_emulator_support::*;
use switchboard::emulator::freeswitch::EmulatorOptions;
use switchboard::media::freeswitch::codec::{ContentType, Frame};
use switchboard::media::freeswitch::transcript::Entry;
use tokio::net::TcpListener;

/// Accepts the emulator's outbound connection and replays a capture's client blocks on it,
/// each once the emulator has sent as many frames as the capture had before it and no earlier
/// than its captured time; returns what the emulator sent. (Time alone is not enough: under
/// load the emulator ran late, and the capture's hangup, sent just after playback completed,
/// arrived while the emulated playback still ran.)
async fn replay_outbound(listener: &TcpListener, name: &str) -> (Vec<Frame>, Vec<Frame>) {
    let t = transcript(name);
    let captured = captured_frames(&t);
    let (stream, _) = tokio::time::timeout(Duration::from_secs(10), listener.accept())
        .await
        .expect("the emulator connects out")
        .expect("accept");
    let mut client = Client::from_stream(stream);
    // Outbound mode: nothing is sent before `connect`.
    assert!(client.next(Duration::from_millis(200)).await.is_none());
    let start = tokio::time::Instant::now();
    let mut frames_before = 0;
    for e in &t.entries {
        if let Entry::Server { .. } = e {
            frames_before += 1;
        }
        if let Entry::Client { at, bytes, .. } = e {
            let when = start + *at;
            while tokio::time::Instant::now() < when {
                let left = when.saturating_duration_since(tokio::time::Instant::now());
                if client.next(left).await.is_none() {
                    break;
                }
            }
            // A frame the emulator never sends must not stall the replay for long.
            while client.seen.len() < frames_before {
                if client.next(Duration::from_secs(2)).await.is_none() {
                    break;
                }
            }
            // The capture's client named its channel by uuid: use the emulated one.
            let mut bytes = bytes.clone();
            let ids = (
                captured.first().and_then(|f| f.header("Unique-ID")),
                client.seen.first().and_then(|f| f.header("Unique-ID")),
            );
            if let (Some(old), Some(new)) = ids {
                let text = String::from_utf8_lossy(&bytes).replace(old, new);
                bytes = text.into_bytes();
            }
            client.send(&bytes).await;
        }
    }
    let closed = client.drain(Duration::from_secs(6)).await;
    assert!(
        closed,
        "{name}: the emulator closes the outbound connection"
    );
    (captured, client.seen)
}

/// A disconnect notice's disposition, linger time, channel name and body length.
type Notice = (Option<String>, Option<String>, Option<String>, usize);

fn notices(frames: &[Frame]) -> Vec<Notice> {
    frames
        .iter()
        .filter(|f| f.content_type() == ContentType::DisconnectNotice)
        .map(|f| {
            (
                f.header("Content-Disposition").map(str::to_owned),
                f.header("Linger-Time").map(str::to_owned),
                f.header("Channel-Name").map(str::to_owned),
                f.body().len(),
            )
        })
        .collect()
}

fn compare(name: &str, captured: &[Frame], emulated: &[Frame]) {
    assert_eq!(replies(captured), replies(emulated), "{name}: replies");
    let want: BTreeMap<_, _> = per_channel(captured).into_iter().collect();
    let got: BTreeMap<_, _> = per_channel(emulated).into_iter().collect();
    assert_eq!(want, got, "{name}: events");
    assert_eq!(
        notices(captured),
        notices(emulated),
        "{name}: disconnect notices"
    );
    // No CHANNEL_DESTROY reaches an outbound socket.
    assert!(
        emulated
            .iter()
            .all(|f| event_name(f).as_deref() != Some("CHANNEL_DESTROY"))
    );
}

#[tokio::test]
async fn outbound_socket_async_full_linger_and_nolinger_replay() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = listener.local_addr().unwrap().to_string();
    let emu = emulator(EmulatorOptions::with_outbound("ClueCon", &target)).await;
    let mut controller = Client::connect(emu.local_addr()).await;
    controller.login("ClueCon").await;
    controller
        .command("event plain BACKGROUND_JOB CHANNEL_HANGUP_COMPLETE")
        .await;

    controller
        .command(
            "bgapi originate {origination_caller_id_number=5553000}loopback/7202/default &park()",
        )
        .await;
    let (captured, emulated) =
        replay_outbound(&listener, "outbound_socket_async_full_linger").await;
    compare("linger", &captured, &emulated);
    // The connect reply: a serialized CHANNEL_DATA, URL-encoded, ending in the reply tail.
    let connect = &emulated[0];
    assert_eq!(connect.header("Event-Name"), Some("CHANNEL_DATA"));
    assert_eq!(connect.header("Reply-Text"), Some("%2BOK%0A"));
    assert_eq!(connect.header("Socket-Mode"), Some("async"));
    assert_eq!(connect.header("Control"), Some("full"));
    assert_eq!(
        connect.header("variable_origination_caller_id_number"),
        Some("5553000")
    );

    controller
        .command(
            "bgapi originate {origination_caller_id_number=5553001}loopback/7202/default &park()",
        )
        .await;
    let (captured, emulated) =
        replay_outbound(&listener, "outbound_socket_async_full_nolinger").await;
    compare("nolinger", &captured, &emulated);

    // The controller saw both jobs succeed and both legs of each call end.
    controller.drain(Duration::from_millis(500)).await;
    let names: Vec<String> = controller.seen.iter().filter_map(event_name).collect();
    assert_eq!(
        names.iter().filter(|n| *n == "BACKGROUND_JOB").count(),
        2,
        "{names:?}"
    );
    assert_eq!(
        names
            .iter()
            .filter(|n| *n == "CHANNEL_HANGUP_COMPLETE")
            .count(),
        4
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn outbound_socket_unreachable_target_ends_the_call() {
    // A port nobody listens on: bind, note it, close.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap().port()
    };
    let emu = emulator(EmulatorOptions::with_outbound(
        "ClueCon",
        &format!("127.0.0.1:{port}"),
    ))
    .await;
    let mut c = Client::connect(emu.local_addr()).await;
    c.login("ClueCon").await;
    c.command("event plain BACKGROUND_JOB").await;
    c.command("bgapi originate loopback/5000/default &park()")
        .await;
    let job = c
        .until(Duration::from_secs(10), |f| {
            event_name(f).as_deref() == Some("BACKGROUND_JOB")
        })
        .await
        .expect("the job ends");
    let body =
        String::from_utf8_lossy(job.event().unwrap().body().unwrap_or_default()).into_owned();
    assert!(body.starts_with("-ERR "), "{body}");
    assert!(emu.channels().is_empty());
    emu.shutdown().await;
}
