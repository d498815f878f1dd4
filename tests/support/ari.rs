//! Shared by the ARI tests: where the fixtures are, transcript loading, and an emulator on
//! 127.0.0.1:0 with a fast clock.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;

use serde_json::Value;
use switchboard::emulator::asterisk::{Emulator, EmulatorOptions};

/// The ARI user's password in tests.
pub const PASSWORD: &str = "secret";

/// fixtures/ari, beside the repository (or where SWITCHBOARD_ARI_FIXTURES says).
pub fn fixtures_dir() -> PathBuf {
    std::env::var_os("SWITCHBOARD_ARI_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/ari"))
}

/// Every transcript's file name, sorted; fails loudly if the fixtures are missing.
pub fn transcripts() -> Vec<String> {
    let dir = fixtures_dir();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("ARI fixtures not found at {}: {e}", dir.display()))
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.ends_with(".jsonl").then_some(name)
        })
        .collect();
    names.sort();
    assert!(
        names.len() >= 11,
        "expected the 11 ARI transcripts, found {names:?}"
    );
    names
}

/// The records of one transcript.
pub fn load(name: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(fixtures_dir().join(name)).expect("read transcript");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("transcript line is JSON"))
        .collect()
}

/// Every `ws_event` payload of every transcript, as the text Asterisk sent.
pub fn all_event_payloads() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for name in transcripts() {
        for r in load(&name) {
            if r["kind"] == "ws_event" {
                out.push((name.clone(), r["data"].to_string()));
            }
        }
    }
    out
}

/// An emulator like the capture machine, `scale` times real time.
pub async fn emulator(scale: f64) -> Emulator {
    let mut options = EmulatorOptions::capture(PASSWORD);
    options.time_scale = scale;
    options.rtp = false;
    // Far ends that wait in the dialplan (Wait(60)) outlast any test.
    for steps in options
        .world
        .dialplan
        .contexts
        .values_mut()
        .flat_map(|c| c.values_mut())
    {
        for step in steps.iter_mut() {
            if let switchboard::emulator::asterisk::Step::Wait(secs) = step {
                *secs *= 100;
            }
        }
    }
    Emulator::start(SocketAddr::from(([127, 0, 0, 1], 0)), options)
        .await
        .expect("emulator starts")
}

/// An emulator with custom options.
pub async fn emulator_with(options: EmulatorOptions) -> Emulator {
    Emulator::start(SocketAddr::from(([127, 0, 0, 1], 0)), options)
        .await
        .expect("emulator starts")
}

use std::time::Duration;

use switchboard::media::asterisk::{AsteriskConfig, AsteriskHandler, BackoffPolicy, Credentials};
use switchboard::media::{HandlerEvent, HandlerId, MediaEvent};
use tokio::sync::mpsc;

/// A handler connected to `emu`, and its event channel (already past `HandlerUp`).
pub async fn handler(
    emu: &Emulator,
    subscribe_all: bool,
) -> (AsteriskHandler, mpsc::Receiver<HandlerEvent>) {
    let (tx, mut rx) = mpsc::channel(256);
    let mut config = AsteriskConfig::new(
        HandlerId(1),
        &emu.base_url(),
        "cc",
        Credentials::Basic {
            user: "cc".into(),
            password: PASSWORD.into(),
        },
    );
    config.subscribe_all = subscribe_all;
    config.request_timeout = Duration::from_secs(2);
    config.backoff = BackoffPolicy {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(400),
    };
    let h = AsteriskHandler::start(config, tx).expect("handler starts");
    wait_for(&mut rx, |e| matches!(e, MediaEvent::HandlerUp)).await;
    (h, rx)
}

/// Waits (up to 5 s) for an event matching `pred`; returns every event seen until then.
pub async fn wait_for(
    rx: &mut mpsc::Receiver<HandlerEvent>,
    mut pred: impl FnMut(&MediaEvent) -> bool,
) -> Vec<MediaEvent> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(e)) => {
                let hit = pred(&e.event);
                seen.push(e.event);
                if hit {
                    return seen;
                }
            }
            Ok(None) => panic!("event channel closed; seen {seen:#?}"),
            Err(_) => panic!("no matching event within 5 s; seen {seen:#?}"),
        }
    }
}

/// Every event that arrives within `d`.
pub async fn drain_for(rx: &mut mpsc::Receiver<HandlerEvent>, d: Duration) -> Vec<MediaEvent> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + d;
    while let Ok(Some(e)) = tokio::time::timeout_at(deadline, rx.recv()).await {
        seen.push(e.event);
    }
    seen
}

/// A handler on `emu` whose channel has not been read yet (to see the resync's events).
pub async fn handler_collecting(emu: &Emulator) -> (AsteriskHandler, mpsc::Receiver<HandlerEvent>) {
    let (tx, rx) = mpsc::channel(256);
    let mut config = AsteriskConfig::new(
        HandlerId(2),
        &emu.base_url(),
        "cc",
        Credentials::ApiKey {
            user: "cc".into(),
            password: PASSWORD.into(),
        },
    );
    config.request_timeout = Duration::from_secs(2);
    (
        AsteriskHandler::start(config, tx).expect("handler starts"),
        rx,
    )
}
