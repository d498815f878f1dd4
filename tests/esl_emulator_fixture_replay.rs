//! Every inbound capture of fixtures/esl replayed against the emulator: the client's bytes
//! are sent at their captured times, and the replies (command/reply texts, api bodies; uuids
//! masked) and each channel's event sequence (names, applications, conference actions) must
//! be what FreeSWITCH 1.10.12 sent.

mod esl_emulator_support;

use std::collections::BTreeMap;
use std::time::Duration;

use esl_emulator_support::*;
use switchboard::emulator::freeswitch::EmulatorOptions;
use switchboard::media::freeswitch::codec::{ContentType, Frame};
use switchboard::media::freeswitch::transcript::Entry;

/// Replays a scenario's client blocks on one inbound connection; returns the frames the
/// emulator sent and whether it closed the connection.
async fn replay(name: &str, options: EmulatorOptions) -> (Vec<Frame>, Vec<Frame>, bool) {
    let t = transcript(name);
    let captured = captured_frames(&t);
    let emu = emulator(options).await;
    let mut client = Client::connect(emu.local_addr()).await;
    let start = tokio::time::Instant::now();
    let mut closed = false;
    for e in &t.entries {
        if let Entry::Client { at, bytes, .. } = e {
            let when = start + *at;
            loop {
                let left = when.saturating_duration_since(tokio::time::Instant::now());
                if left.is_zero() {
                    break;
                }
                if client.next(left).await.is_none() && tokio::time::Instant::now() < when {
                    closed = true;
                    break;
                }
            }
            client.send(bytes).await;
        }
    }
    closed |= client.drain(Duration::from_millis(1500)).await;
    emu.shutdown().await;
    (captured, client.seen, closed)
}

fn content_types(frames: &[Frame]) -> Vec<String> {
    frames
        .iter()
        .filter(|f| {
            !matches!(
                f.content_type(),
                ContentType::EventPlain | ContentType::EventJson | ContentType::EventXml
            )
        })
        .map(|f| f.content_type().as_str().to_owned())
        .collect()
}

/// Compares replies, skipping the indexes whose bodies depend on the machine (uptime,
/// profile tables) and comparing only the first word there.
fn assert_replies(name: &str, captured: &[Frame], emulated: &[Frame], loose: &[usize]) {
    assert_replies_skipping(name, captured, emulated, loose, &[]);
}

fn assert_replies_skipping(
    name: &str,
    captured: &[Frame],
    emulated: &[Frame],
    loose: &[usize],
    skip: &[usize],
) {
    let want = replies(captured);
    let got = replies(emulated);
    assert_eq!(
        want.len(),
        got.len(),
        "{name}: reply count\nwant {want:#?}\ngot {got:#?}"
    );
    for (i, (w, g)) in want.iter().zip(&got).enumerate() {
        if skip.contains(&i) {
            continue;
        }
        if loose.contains(&i) {
            let first = |s: &str| s.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
            assert_eq!(first(w), first(g), "{name}: reply #{i} (loose)");
        } else {
            assert_eq!(w, g, "{name}: reply #{i}");
        }
    }
}

fn assert_channels(name: &str, captured: &[Frame], emulated: &[Frame]) {
    let want: BTreeMap<_, _> = per_channel(captured).into_iter().collect();
    let got: BTreeMap<_, _> = per_channel(emulated).into_iter().collect();
    for (k, w) in &want {
        assert_eq!(Some(w), got.get(k), "{name}: events of {k}");
    }
    assert_eq!(want.len(), got.len(), "{name}: channels");
}

#[tokio::test]
async fn auth_ok_exit_replays() {
    let (captured, emulated, closed) = replay("auth_ok_exit", EmulatorOptions::default()).await;
    assert!(closed, "the server closes after exit");
    assert_eq!(content_types(&captured), content_types(&emulated));
    assert_replies("auth_ok_exit", &captured, &emulated, &[]);
    assert_eq!(
        captured.last().map(|f| f.body().to_vec()),
        emulated.last().map(|f| f.body().to_vec())
    );
}

#[tokio::test]
async fn auth_bad_password_replays() {
    let (captured, emulated, closed) =
        replay("auth_bad_password", EmulatorOptions::default()).await;
    assert!(closed);
    assert_eq!(content_types(&captured), content_types(&emulated));
    assert_replies("auth_bad_password", &captured, &emulated, &[]);
}

#[tokio::test]
async fn auth_command_before_auth_replays() {
    let (captured, emulated, closed) =
        replay("auth_command_before_auth", EmulatorOptions::default()).await;
    assert!(closed);
    assert_eq!(content_types(&captured), content_types(&emulated));
    assert_replies("auth_command_before_auth", &captured, &emulated, &[]);
}

#[tokio::test]
async fn acl_rude_rejection_replays() {
    let mut options = EmulatorOptions::default();
    options.world.acl_deny = true;
    let (captured, emulated, closed) = replay("acl_rude_rejection", options).await;
    assert!(closed);
    let bytes = |fs: &[Frame]| fs.iter().map(|f| f.as_bytes().to_vec()).collect::<Vec<_>>();
    assert_eq!(bytes(&captured), bytes(&emulated), "byte for byte");
}

#[tokio::test]
async fn api_bgapi_replays() {
    let (captured, emulated, closed) = replay("api_bgapi", EmulatorOptions::default()).await;
    assert!(closed);
    // 1 status (uptime) and 4 sofia status (the profile table) differ by machine; 15 show
    // channels as json and 16 show channels: the capture's core db had not yet caught up
    // with the parked channel (0 rows), the emulator lists it.
    assert_replies_skipping("api_bgapi", &captured, &emulated, &[1, 4], &[15, 16]);
    let jobs = |fs: &[Frame]| {
        fs.iter()
            .filter(|f| event_name(f).as_deref() == Some("BACKGROUND_JOB"))
            .map(|f| {
                let e = f.event().unwrap();
                let body = String::from_utf8_lossy(e.body().unwrap_or_default()).into_owned();
                (
                    e.header("Job-Command").map(|v| v.into_owned()),
                    mask_uuids(&body)
                        .split('\n')
                        .next()
                        .unwrap_or("")
                        .split(' ')
                        .take(2)
                        .collect::<Vec<_>>()
                        .join(" "),
                )
            })
            .collect::<Vec<_>>()
    };
    let (w, g) = (jobs(&captured), jobs(&emulated));
    assert_eq!(w.len(), g.len());
    for (w, g) in w.iter().zip(&g) {
        assert_eq!(w.0, g.0);
        if w.0.as_deref() != Some("status") {
            assert_eq!(w.1, g.1);
        }
    }
}

#[tokio::test]
async fn events_plain_loopback_call_replays() {
    let (captured, emulated, _) =
        replay("events_plain_loopback_call", EmulatorOptions::default()).await;
    assert_replies("events_plain_loopback_call", &captured, &emulated, &[]);
    assert_channels("events_plain_loopback_call", &captured, &emulated);
    assert!(
        emulated
            .iter()
            .all(|f| f.content_type() != ContentType::EventJson)
    );
}

#[tokio::test]
async fn events_json_loopback_call_replays() {
    let (captured, emulated, _) =
        replay("events_json_loopback_call", EmulatorOptions::default()).await;
    assert_replies("events_json_loopback_call", &captured, &emulated, &[]);
    assert_channels("events_json_loopback_call", &captured, &emulated);
    assert!(
        emulated
            .iter()
            .any(|f| f.content_type() == ContentType::EventJson)
    );
}

#[tokio::test]
async fn events_xml_loopback_call_replays() {
    let (captured, emulated, _) =
        replay("events_xml_loopback_call", EmulatorOptions::default()).await;
    assert_replies("events_xml_loopback_call", &captured, &emulated, &[]);
    assert_channels("events_xml_loopback_call", &captured, &emulated);
    assert!(
        emulated
            .iter()
            .any(|f| f.content_type() == ContentType::EventXml)
    );
}

#[tokio::test]
async fn sendmsg_execute_eventlock_replays() {
    let (captured, emulated, _) =
        replay("sendmsg_execute_eventlock", EmulatorOptions::default()).await;
    assert_replies("sendmsg_execute_eventlock", &captured, &emulated, &[]);
    assert_channels("sendmsg_execute_eventlock", &captured, &emulated);
}

#[tokio::test]
async fn filter_myevents_nixevent_noevents_replays() {
    let (captured, emulated, closed) = replay(
        "filter_myevents_nixevent_noevents",
        EmulatorOptions::default(),
    )
    .await;
    assert!(
        closed,
        "the myevents channel's hangup closes the connection"
    );
    assert_replies(
        "filter_myevents_nixevent_noevents",
        &captured,
        &emulated,
        &[],
    );
    assert_channels("filter_myevents_nixevent_noevents", &captured, &emulated);
}

#[tokio::test]
async fn call_control_bridge_record_broadcast_transfer_conference_replays() {
    let name = "call_control_bridge_record_broadcast_transfer_conference";
    let (captured, emulated, _) = replay(name, EmulatorOptions::default()).await;
    assert_replies(name, &captured, &emulated, &[]);
    assert_channels(name, &captured, &emulated);
}

/// Header names of an event frame (plain), `variable_*` aside (which variables a channel
/// has depends on its history).
fn header_names(f: &Frame) -> Vec<String> {
    let e = f.event().expect("an event");
    e.headers()
        .map(|(n, _)| n.to_owned())
        .filter(|n| !n.starts_with("variable_"))
        .collect()
}

#[tokio::test]
async fn event_headers_keep_freeswitchs_names_and_order() {
    let (captured, emulated, _) =
        replay("events_plain_loopback_call", EmulatorOptions::default()).await;
    for name in [
        "CHANNEL_CREATE",
        "CHANNEL_ANSWER",
        "CHANNEL_EXECUTE",
        "CHANNEL_EXECUTE_COMPLETE",
        "PLAYBACK_START",
        "PLAYBACK_STOP",
        "CHANNEL_HANGUP",
        "CHANNEL_HANGUP_COMPLETE",
        "BACKGROUND_JOB",
    ] {
        let first = |fs: &[Frame]| {
            fs.iter()
                .find(|f| event_name(f).as_deref() == Some(name))
                .map(header_names)
                .unwrap_or_default()
        };
        let (want, got) = (first(&captured), first(&emulated));
        assert!(!want.is_empty(), "{name}: in the capture");
        // The same header names in the same order (values and `variable_*` aside).
        assert_eq!(want, got, "{name}");
    }
}
