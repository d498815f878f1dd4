//! `cargo bench --bench ari`: decodes a realistic stream of ARI events on one core and ends by
//! printing one line: `ari: events_per_s=… mb_per_s=…` (target: at least 200,000 events/s).
//!
//! The stream is every event captured from Asterisk 22.10.1 in `fixtures/ari` (the mix of a
//! contact center's calls: variable sets, dialplan steps, hangups, device states, dials, state
//! changes, bridges, playbacks, recordings), or, when the fixtures are not beside the
//! repository, a built-in sample of the same mix.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use switchboard::media::asterisk::event::{EventDecoder, EventKind};

/// Captured events in the proportions the fixtures show, for a checkout without fixtures.
const SAMPLE: &[(&str, usize)] = &[
    (
        r#"{"variable":"BRIDGEPEER","value":"PJSIP/agent-00000012","type":"ChannelVarset","timestamp":"2026-11-21T21:16:07.493+0000","channel":{"id":"1795295762.120","name":"PJSIP/customer-00000011","state":"Up","protocol_id":"1-5178@127.0.0.1","caller":{"name":"Customer","number":"customer"},"connected":{"name":"","number":""},"accountcode":"","dialplan":{"context":"cc-inbound","exten":"1000","priority":2,"app_name":"Stasis","app_data":"cc,sip-inbound,1000"},"creationtime":"2026-11-21T21:16:02.452+0000","language":"en"},"asterisk_id":"02:fc:00:00:00:01","application":"cc"}"#,
        24,
    ),
    (
        r#"{"type":"ChannelDialplan","timestamp":"2026-11-21T21:13:08.568+0000","dialplan_app":"AppDial2","dialplan_app_data":"(Outgoing Line)","channel":{"id":"1795295588.59","name":"Local/100@cc-test-00000018;1","state":"Down","protocol_id":"","caller":{"name":"","number":""},"connected":{"name":"","number":""},"accountcode":"","dialplan":{"context":"cc-test","exten":"100","priority":1,"app_name":"AppDial2","app_data":"(Outgoing Line)"},"creationtime":"2026-11-21T21:13:08.567+0000","language":"en"},"asterisk_id":"02:fc:00:00:00:01","application":"cc"}"#,
        9,
    ),
    (
        r#"{"cause":32,"soft":true,"type":"ChannelHangupRequest","timestamp":"2026-11-21T21:13:16.321+0000","channel":{"id":"1795295588.60","name":"Local/100@cc-test-00000018;2","state":"Up","protocol_id":"","caller":{"name":"Customer","number":"5551000"},"connected":{"name":"Customer","number":"5551000"},"accountcode":"","dialplan":{"context":"cc-test","exten":"100","priority":2,"app_name":"Stasis","app_data":"cc,inbound,100"},"creationtime":"2026-11-21T21:13:08.568+0000","language":"en"},"asterisk_id":"02:fc:00:00:00:01","application":"cc"}"#,
        9,
    ),
    (
        r#"{"type":"DeviceStateChanged","application":"cc","timestamp":"2026-11-21T21:13:08.570+0000","device_state":{"name":"Local/100@cc-test","state":"INUSE"},"asterisk_id":"02:fc:00:00:00:01"}"#,
        9,
    ),
    (
        r#"{"type":"Dial","timestamp":"2026-11-21T21:13:08.568+0000","dialstatus":"","forward":"","dialstring":"100@cc-test","peer":{"id":"1795295588.59","name":"Local/100@cc-test-00000018;1","state":"Down","protocol_id":"","caller":{"name":"Customer","number":"5551000"},"connected":{"name":"Customer","number":"5551000"},"accountcode":"","dialplan":{"context":"cc-test","exten":"100","priority":1,"app_name":"AppDial2","app_data":"(Outgoing Line)"},"creationtime":"2026-11-21T21:13:08.567+0000","language":"en"},"asterisk_id":"02:fc:00:00:00:01","application":"cc"}"#,
        6,
    ),
    (
        r#"{"type":"ChannelDestroyed","timestamp":"2026-11-21T21:13:16.321+0000","cause":16,"cause_txt":"Normal Clearing","channel":{"id":"1795295588.60","name":"Local/100@cc-test-00000018;2","state":"Up","protocol_id":"","caller":{"name":"Customer","number":"5551000"},"connected":{"name":"Customer","number":"5551000"},"accountcode":"","dialplan":{"context":"cc-test","exten":"100","priority":2,"app_name":"","app_data":""},"creationtime":"2026-11-21T21:13:08.568+0000","language":"en"},"asterisk_id":"02:fc:00:00:00:01","application":"cc"}"#,
        6,
    ),
    (
        r#"{"type":"StasisStart","timestamp":"2026-11-21T21:13:08.568+0000","args":["inbound","100"],"channel":{"id":"1795295588.60","name":"Local/100@cc-test-00000018;2","state":"Ring","protocol_id":"","caller":{"name":"Customer","number":"5551000"},"connected":{"name":"Customer","number":"5551000"},"accountcode":"","dialplan":{"context":"cc-test","exten":"100","priority":2,"app_name":"Stasis","app_data":"cc,inbound,100"},"creationtime":"2026-11-21T21:13:08.568+0000","language":"en"},"asterisk_id":"02:fc:00:00:00:01","application":"cc"}"#,
        4,
    ),
    (
        r#"{"type":"ChannelEnteredBridge","timestamp":"2026-11-21T21:13:17.837+0000","bridge":{"id":"bridge-1795295597","technology":"simple_bridge","bridge_type":"mixing","bridge_class":"stasis","creator":"Stasis","name":"call-1795295597","channels":["cust-1795295597"],"creationtime":"2026-11-21T21:13:17.836+0000","video_mode":"talker"},"channel":{"id":"cust-1795295597","name":"Local/200@cc-test-00000019;1","state":"Up","protocol_id":"","caller":{"name":"Customer","number":"5551000"},"connected":{"name":"Customer","number":"5551000"},"accountcode":"","dialplan":{"context":"cc-test","exten":"200","priority":1,"app_name":"Stasis","app_data":"cc,customer,leg-a"},"creationtime":"2026-11-21T21:13:17.831+0000","language":"en"},"asterisk_id":"02:fc:00:00:00:01","application":"cc"}"#,
        4,
    ),
    (
        r#"{"type":"PlaybackFinished","timestamp":"2026-11-21T21:13:10.979+0000","playback":{"id":"f5205abc-4902-43f7-b57f-2e570a06b0ae","media_uri":"sound:hello-world","target_uri":"channel:1795295588.60","language":"en","state":"done"},"asterisk_id":"02:fc:00:00:00:01","application":"cc"}"#,
        3,
    ),
];

fn fixtures() -> Vec<Vec<u8>> {
    let dir = std::env::var_os("SWITCHBOARD_ARI_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/ari"));
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return out;
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            if v["kind"] == "ws_event" {
                // The compact text Asterisk puts on the wire.
                out.push(v["data"].to_string().into_bytes());
            }
        }
    }
    out
}

fn main() {
    let mut stream = fixtures();
    let source = if stream.is_empty() {
        for (text, weight) in SAMPLE {
            for _ in 0..*weight {
                stream.push(text.as_bytes().to_vec());
            }
        }
        "built-in sample"
    } else {
        "fixtures/ari"
    };
    let bytes_per_pass: usize = stream.iter().map(Vec::len).sum();
    eprintln!(
        "ari bench: {} events ({bytes_per_pass} bytes) from {source}, one core",
        stream.len()
    );
    let mut decoder = EventDecoder::new();
    // Warm up, and make sure the stream is what the product reads.
    let mut channels = 0usize;
    for payload in &stream {
        let event = decoder.decode(payload).expect("every event decodes");
        assert!(!matches!(event.kind, EventKind::Unknown { .. }));
        channels += usize::from(event.kind.channel().is_some());
    }
    std::hint::black_box(channels);
    let started = Instant::now();
    let mut events = 0u64;
    let mut bytes = 0u64;
    while started.elapsed() < Duration::from_secs(3) {
        for payload in &stream {
            let event = decoder.decode(std::hint::black_box(payload));
            std::hint::black_box(&event);
        }
        events += stream.len() as u64;
        bytes += bytes_per_pass as u64;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "ari: events_per_s={:.0} mb_per_s={:.1}",
        events as f64 / secs,
        bytes as f64 / secs / 1_000_000.0
    );
}
