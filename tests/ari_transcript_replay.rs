//! Replays every captured transcript against the emulator and compares what comes back with
//! what the real Asterisk 22.10.1 sent: the status code of every request, the JSON shape of
//! every reply body and of every event (keys and value types, recursively; ids, timestamps and
//! other values aside), and the sequence of events on each socket (type, channel kind and
//! state, variable, dial status, playback/recording state, device state).
//!
//! The driver sends each request once the emulator has produced as many events as Asterisk had
//! before it in the capture (so replies and events interleave as captured), and plays the far
//! ends that the capture had as real SIP user agents (sipp): when the next captured event is
//! one only a far end causes (an inbound call, RFC 4733 DTMF, a BYE), it makes the emulator's
//! scripted caller do it. Ids Asterisk generated are learned as they appear and substituted.

#[path = "support/ari.rs"]
mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use switchboard::emulator::asterisk::{EmulatorOptions, InboundCall, Step};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// Emulated time runs this much faster than real time.
const SCALE: f64 = 0.1;

/// A JSON value's shape: keys and types, recursively (array: the first element's shape).
fn shape(v: &Value) -> Value {
    match v {
        Value::Null => Value::String("null".into()),
        Value::Bool(_) => Value::String("bool".into()),
        Value::Number(n) if n.is_f64() => Value::String("float".into()),
        Value::Number(_) => Value::String("int".into()),
        Value::String(_) => Value::String("string".into()),
        Value::Array(items) => match items.first() {
            Some(first) => Value::Array(vec![shape(first)]),
            None => Value::Array(vec![]),
        },
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), shape(v))).collect())
        }
    }
}

/// Differences between two shapes, as paths (empty arrays match any array).
fn shape_diff(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, va) in x {
                match y.get(k) {
                    Some(vb) => shape_diff(&format!("{path}.{k}"), va, vb, out),
                    None => out.push(format!("{path}.{k} missing in emulator")),
                }
            }
            for k in y.keys() {
                if !x.contains_key(k) {
                    out.push(format!("{path}.{k} extra in emulator"));
                }
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            if let (Some(va), Some(vb)) = (x.first(), y.first()) {
                shape_diff(&format!("{path}[]"), va, vb, out);
            }
        }
        (x, y) if x == y => {}
        // Asterisk writes some floats as integers (rtp_statistics `txmes`).
        (Value::String(x), Value::String(y))
            if (x == "int" && y == "float") || (x == "float" && y == "int") => {}
        (x, y) => out.push(format!("{path}: captured {x}, emulator {y}")),
    }
}

fn normalise_name(name: &str) -> String {
    if name.starts_with("Snoop/") {
        return "Snoop".into();
    }
    if name.starts_with("UnicastRTP/") {
        return "UnicastRTP".into();
    }
    if name.starts_with("Recorder/") {
        return "Recorder".into();
    }
    let (base, half) = match name.rsplit_once(';') {
        Some((b, h)) => (b, format!(";{h}")),
        None => (name, String::new()),
    };
    let base = match base.rsplit_once('-') {
        Some((b, suffix)) if suffix.len() == 8 && suffix.chars().all(|c| c.is_ascii_hexdigit()) => {
            b
        }
        _ => base,
    };
    format!("{base}{half}")
}

/// The part of an event the sequence comparison looks at.
fn signature(e: &Value) -> String {
    let t = e["type"].as_str().unwrap_or("?");
    let ch = if e["channel"].is_object() {
        &e["channel"]
    } else {
        &e["peer"]
    };
    let mut s = t.to_owned();
    if let Some(name) = ch["name"].as_str() {
        s += &format!(
            " {}:{}",
            normalise_name(name),
            ch["state"].as_str().unwrap_or("")
        );
    }
    match t {
        "ChannelVarset" => s += &format!(" {}", e["variable"].as_str().unwrap_or("")),
        "Dial" => s += &format!(" {:?}", e["dialstatus"].as_str().unwrap_or("")),
        "ChannelHangupRequest" => s += &format!(" cause={} soft={}", e["cause"], e["soft"]),
        "ChannelDestroyed" => s += &format!(" cause={}", e["cause"]),
        "PlaybackStarted" | "PlaybackContinuing" | "PlaybackFinished" => {
            s += &format!(
                " {} {}",
                e["playback"]["media_uri"].as_str().unwrap_or(""),
                e["playback"]["state"].as_str().unwrap_or("")
            )
        }
        "RecordingStarted" | "RecordingFinished" => {
            s += &format!(" {}", e["recording"]["state"].as_str().unwrap_or(""))
        }
        "ChannelEnteredBridge" | "ChannelLeftBridge" | "BridgeCreated" | "BridgeDestroyed" => {
            s += &format!(
                " n={}",
                e["bridge"]["channels"]
                    .as_array()
                    .map(|a| a.len())
                    .unwrap_or(0)
            )
        }
        "DeviceStateChanged" => {
            let n = e["device_state"]["name"].as_str().unwrap_or("");
            let n = n.split('/').next().unwrap_or(n);
            s += &format!(" {n} {}", e["device_state"]["state"].as_str().unwrap_or(""))
        }
        "RESTResponse" => s += &format!(" {}", e["status_code"]),
        "StasisStart" => s += &format!(" {}", e["args"]),
        _ => {}
    }
    s
}

/// Longest common subsequence of two signature lists: (matched pairs, indices).
fn lcs(a: &[String], b: &[String]) -> Vec<(usize, usize)> {
    let (n, m) = (a.len(), b.len());
    let mut t = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            t[i][j] = if a[i] == b[j] {
                t[i + 1][j + 1] + 1
            } else {
                t[i + 1][j].max(t[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < n && j < m {
        if a[i] == b[j] {
            out.push((i, j));
            i += 1;
            j += 1;
        } else if t[i + 1][j] >= t[i][j + 1] {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

struct Sock {
    events: Arc<Mutex<Vec<Value>>>,
    tx: mpsc::Sender<String>,
}

#[derive(Default)]
struct Report {
    statuses: Vec<String>,
    shapes: Vec<String>,
    skipped: Vec<String>,
    similarity: HashMap<String, (usize, usize, usize)>,
    event_diffs: Vec<String>,
}

struct Replay {
    file: String,
    records: Vec<Value>,
    emu: switchboard::emulator::asterisk::Emulator,
    http: reqwest::Client,
    ids: Vec<(String, String)>,
    sockets: HashMap<String, Sock>,
    report: Report,
}

fn looks_generated(id: &str) -> bool {
    // `<unix-seconds>.<counter>` (optionally `;2`) or a UUID.
    let core = id.split(';').next().unwrap_or(id);
    let dotted = core.split_once('.').is_some_and(|(a, b)| {
        a.len() >= 9
            && a.chars().all(|c| c.is_ascii_digit())
            && !b.is_empty()
            && b.chars().all(|c| c.is_ascii_digit())
    });
    let uuid = core.len() == 36 && core.chars().filter(|c| *c == '-').count() == 4;
    dotted || uuid
}

impl Replay {
    fn learn(&mut self, captured: &str, emulated: &str) {
        if captured.is_empty() || emulated.is_empty() || captured == emulated {
            return;
        }
        if self.ids.iter().any(|(c, _)| c == captured) {
            return;
        }
        self.ids.push((captured.to_owned(), emulated.to_owned()));
        self.ids.sort_by_key(|(c, _)| std::cmp::Reverse(c.len()));
    }

    fn learn_value(&mut self, captured: &Value, emulated: &Value) {
        // Lists are not aligned element by element: nothing is learnt from them.
        if let (Value::Object(a), Value::Object(b)) = (captured, emulated) {
            for key in ["id", "channel_uniqueid"] {
                if let (Some(Value::String(x)), Some(Value::String(y))) = (a.get(key), b.get(key))
                    && looks_generated(x)
                {
                    self.learn(x, y);
                }
            }
            for key in ["channel", "peer", "playback", "bridge", "replace_channel"] {
                if let (Some(x), Some(y)) = (a.get(key), b.get(key)) {
                    self.learn_value(x, y);
                }
            }
        }
    }

    fn subst(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for (c, e) in &self.ids {
            out = out.replace(c.as_str(), e.as_str());
        }
        out
    }

    fn unknown_generated_id(&self, text: &str) -> Option<String> {
        text.split(['/', '?', '&', '=', ',', '"'])
            .map(|t| t.split("%2C").next().unwrap_or(t))
            .find(|t| looks_generated(t) && !self.ids.iter().any(|(c, _)| c == t))
            .map(str::to_owned)
    }

    fn captured_events(&self, ws: &str, before_seq: u64) -> Vec<Value> {
        self.records
            .iter()
            .filter(|r| {
                r["kind"] == "ws_event"
                    && r["ws"] == ws
                    && r["seq"].as_u64().unwrap_or(0) < before_seq
            })
            .map(|r| r["data"].clone())
            .collect()
    }

    /// Waits until every socket has as many events as the capture had before `seq`, playing
    /// the far ends when the emulator waits for them.
    async fn sync(&mut self, seq: u64) {
        let names: Vec<String> = self.sockets.keys().cloned().collect();
        for name in names {
            let expected = self.captured_events(&name, seq);
            let mut last_len = usize::MAX;
            let mut idle = 0u32;
            for _ in 0..300 {
                let got: Vec<Value> = self.sockets[&name].events.lock().unwrap().clone();
                for (c, e) in expected.iter().zip(&got) {
                    if c["type"] == e["type"] {
                        self.learn_value(c, e);
                    }
                }
                if got.len() >= expected.len() {
                    break;
                }
                if got.len() == last_len {
                    idle += 1;
                } else {
                    idle = 0;
                    last_len = got.len();
                }
                if idle == 4 {
                    self.play_far_end(&expected[got.len()..]);
                }
                if idle > 25 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    /// Plays the far end the capture had (sipp): the first far-end action among the next
    /// captured events is made to happen.
    fn play_far_end(&mut self, upcoming: &[Value]) {
        for next in upcoming.iter().take(16) {
            let t = next["type"].as_str().unwrap_or("");
            let name = next["channel"]["name"].as_str().unwrap_or("");
            let id = next["channel"]["id"].as_str().unwrap_or("");
            let unknown = !self.ids.iter().any(|(c, _)| c == id);
            if name.starts_with("PJSIP/customer")
                && unknown
                && (t == "ChannelCreated" || t == "StasisStart")
            {
                let exten = match t {
                    "StasisStart" => next["args"][1].as_str().unwrap_or("1000"),
                    _ => next["channel"]["dialplan"]["exten"]
                        .as_str()
                        .unwrap_or("1000"),
                };
                let call = InboundCall {
                    endpoint: "customer".into(),
                    extension: exten.into(),
                    caller_name: next["channel"]["caller"]["name"]
                        .as_str()
                        .unwrap_or("Customer")
                        .into(),
                    caller_number: next["channel"]["caller"]["number"]
                        .as_str()
                        .unwrap_or("customer")
                        .into(),
                    dtmf: vec![],
                    hangup_after: None,
                };
                if let Ok(new_id) = self.emu.place_call(&call) {
                    self.learn(id, &new_id);
                }
                return;
            }
            if t == "ChannelDtmfReceived" && name.starts_with("PJSIP/") {
                let mapped = self.subst(id);
                self.emu
                    .caller_dtmf(&mapped, next["digit"].as_str().unwrap_or("1"));
                return;
            }
            if t == "ChannelHangupRequest"
                && next.get("cause").is_none()
                && name.starts_with("PJSIP/")
            {
                // The caller's BYE (h3).
                let mapped = self.subst(id);
                self.emu.kill_channel(&mapped, 16);
                return;
            }
        }
    }

    async fn connect(&mut self, r: &Value) -> Result<(), u16> {
        let url = r["url"].as_str().unwrap_or("");
        let url = url
            .replace("127.0.0.1:8088", &self.emu.local_addr().to_string())
            .replace("cc:<redacted>", &format!("cc:{}", support::PASSWORD));
        match tokio_tungstenite::connect_async(url.as_str()).await {
            Ok((stream, _)) => {
                let (mut write, mut read) = stream.split();
                let events = Arc::new(Mutex::new(Vec::new()));
                let sink = events.clone();
                tokio::spawn(async move {
                    while let Some(Ok(m)) = read.next().await {
                        if let Message::Text(t) = m
                            && let Ok(v) = serde_json::from_str::<Value>(t.as_str())
                        {
                            sink.lock().unwrap().push(v);
                        }
                    }
                });
                let (tx, mut rx) = mpsc::channel::<String>(64);
                tokio::spawn(async move {
                    while let Some(text) = rx.recv().await {
                        if write.send(Message::text(text)).await.is_err() {
                            return;
                        }
                    }
                });
                self.sockets.insert(
                    r["name"].as_str().unwrap_or("ws").to_owned(),
                    Sock { events, tx },
                );
                Ok(())
            }
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
            Err(_) => Err(0),
        }
    }

    async fn request(&mut self, r: &Value, response: Option<&Value>) {
        let path = r["path"].as_str().unwrap_or("");
        let raw_query = r["raw_query"].as_str().unwrap_or("");
        let label = format!(
            "#{} {} {}",
            r["id"],
            r["method"].as_str().unwrap_or(""),
            path
        );
        if let Some(unknown) = self.unknown_generated_id(&format!("{path}?{raw_query}")) {
            self.report.skipped.push(format!(
                "{label}: refers to {unknown}, a channel left over from before the capture"
            ));
            return;
        }
        let url = format!(
            "http://{}{}{}{}",
            self.emu.local_addr(),
            self.subst(path),
            if raw_query.is_empty() { "" } else { "?" },
            self.subst(raw_query)
        )
        .replace("cc:<redacted>", &format!("cc:{}", support::PASSWORD));
        let method = reqwest::Method::from_bytes(r["method"].as_str().unwrap_or("GET").as_bytes())
            .unwrap_or(reqwest::Method::GET);
        let mut req = self.http.request(method, url);
        match r["headers"]["Authorization"].as_str() {
            Some(a) if a.contains("WRONG") => req = req.basic_auth("cc", Some("wrong")),
            Some(_) => req = req.basic_auth("cc", Some(support::PASSWORD)),
            None => {}
        }
        if let Some(ct) = r["headers"]["Content-Type"].as_str() {
            req = req.header("Content-Type", ct);
        }
        match &r["body"] {
            Value::Null => {}
            Value::String(s) => req = req.body(self.subst(s)),
            other => req = req.body(self.subst(&other.to_string())),
        }
        let resp = match req.send().await {
            Ok(resp) => resp,
            Err(e) => {
                self.report.statuses.push(format!("{label}: no reply: {e}"));
                return;
            }
        };
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.unwrap_or_default();
        let Some(captured) = response else { return };
        let want = captured["status"].as_u64().unwrap_or(0) as u16;
        if want != status {
            self.report.statuses.push(format!(
                "{label}: captured {want}, emulator {status} {}",
                String::from_utf8_lossy(&bytes)
            ));
            return;
        }
        let body = &captured["body"];
        if body.get("_binary_body_omitted").is_some() {
            let first = body["first_bytes_hex"].as_str().unwrap_or("");
            let got: String = bytes
                .iter()
                .take(first.len() / 2)
                .map(|b| format!("{b:02x}"))
                .collect();
            // RIFF....WAVEfmt : the size field differs with the recorded length.
            if got.get(..8) != first.get(..8) || got.get(16..) != first.get(16..) {
                self.report
                    .shapes
                    .push(format!("{label}: file starts {got}, captured {first}"));
            }
            return;
        }
        if body.is_null() {
            if !bytes.is_empty() {
                self.report
                    .shapes
                    .push(format!("{label}: captured an empty body"));
            }
            return;
        }
        let Ok(got) = serde_json::from_slice::<Value>(&bytes) else {
            self.report
                .shapes
                .push(format!("{label}: body is not JSON"));
            return;
        };
        self.learn_value(body, &got);
        let mut diffs = Vec::new();
        shape_diff("", &shape(body), &shape(&got), &mut diffs);
        for d in diffs {
            self.report.shapes.push(format!("{label}: {d}"));
        }
    }

    fn compare_events(&mut self) {
        let names: Vec<String> = self.sockets.keys().cloned().collect();
        for name in names {
            let captured: Vec<Value> = self.captured_events(&name, u64::MAX);
            // Channels left over from before the capture are not the emulator's to reproduce.
            let captured: Vec<Value> = captured
                .into_iter()
                .filter(|e| {
                    let id = e["channel"]["id"].as_str().unwrap_or("");
                    !(looks_generated(id) && self.unknown_generated_id(id).is_some())
                })
                .collect();
            let got = self.sockets[&name].events.lock().unwrap().clone();
            let a: Vec<String> = captured.iter().map(signature).collect();
            let b: Vec<String> = got.iter().map(signature).collect();
            let pairs = lcs(&a, &b);
            for (i, j) in &pairs {
                let mut diffs = Vec::new();
                shape_diff("", &shape(&captured[*i]), &shape(&got[*j]), &mut diffs);
                for d in diffs {
                    self.report
                        .shapes
                        .push(format!("event {} ({}): {d}", a[*i], name));
                }
            }
            let matched_a: std::collections::HashSet<usize> = pairs.iter().map(|p| p.0).collect();
            let matched_b: std::collections::HashSet<usize> = pairs.iter().map(|p| p.1).collect();
            for (i, s) in a.iter().enumerate() {
                if !matched_a.contains(&i) {
                    self.report
                        .event_diffs
                        .push(format!("{name} missing #{i}: {s}"));
                }
            }
            for (j, s) in b.iter().enumerate() {
                if !matched_b.contains(&j) {
                    self.report
                        .event_diffs
                        .push(format!("{name} extra   #{j}: {s}"));
                }
            }
            self.report
                .similarity
                .insert(name, (pairs.len(), a.len(), b.len()));
        }
    }
}

async fn replay(file: &str) -> Report {
    let records = support::load(file);
    let mut options = EmulatorOptions::capture(support::PASSWORD);
    options.time_scale = SCALE;
    options.rtp = false;
    // The far ends that wait in the dialplan (Wait(60), MusicOnHold(default,60)) must outlast
    // the replay: at SCALE a minute is 6 s of real time, and a slow replay (every event the
    // emulator does not send costs `sync` half a second) took longer, so the emulator hung the
    // customer up itself and a captured DELETE found no channel.
    for steps in options
        .world
        .dialplan
        .contexts
        .values_mut()
        .flat_map(|c| c.values_mut())
    {
        for step in steps.iter_mut() {
            match step {
                Step::Wait(secs) | Step::MusicOnHold(_, secs) => *secs *= 10,
                _ => {}
            }
        }
    }
    if file.starts_with("h_") {
        // h2: the agent's UA answers 486 Busy Here.
        for e in &mut options.world.endpoints {
            if e.resource == "agent" {
                e.behaviour = switchboard::emulator::asterisk::DialBehaviour::Busy;
            }
        }
    }
    let emu = support::emulator_with(options).await;
    let mut rp = Replay {
        file: file.to_owned(),
        records: records.clone(),
        emu,
        http: reqwest::Client::new(),
        ids: Vec::new(),
        sockets: HashMap::new(),
        report: Report::default(),
    };
    let responses: HashMap<u64, Value> = records
        .iter()
        .filter(|r| r["kind"] == "http_response")
        .filter_map(|r| Some((r["id"].as_u64()?, r.clone())))
        .collect();
    for r in &records {
        let seq = r["seq"].as_u64().unwrap_or(0);
        match r["kind"].as_str().unwrap_or("") {
            "ws_connect" => {
                rp.sync(seq).await;
                if let Err(status) = rp.connect(r).await {
                    rp.report
                        .statuses
                        .push(format!("ws {}: captured 101, emulator {status}", r["name"]));
                }
                // Let a replaced socket get its ApplicationReplaced before going on.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            "ws_connect_failed" => {
                rp.sync(seq).await;
                let want = r["status"].as_u64().unwrap_or(0) as u16;
                match rp.connect(r).await {
                    Err(got) if got == want => {}
                    Err(got) => rp
                        .report
                        .statuses
                        .push(format!("ws {}: captured {want}, emulator {got}", r["name"])),
                    Ok(()) => rp
                        .report
                        .statuses
                        .push(format!("ws {}: captured {want}, emulator 101", r["name"])),
                }
            }
            "http_request" => {
                rp.sync(seq).await;
                let id = r["id"].as_u64().unwrap_or(0);
                rp.request(r, responses.get(&id)).await;
            }
            "ws_send" => {
                rp.sync(seq).await;
                let text = rp.subst(&r["data"].to_string());
                if let Some(s) = rp.sockets.get(r["ws"].as_str().unwrap_or("ws")) {
                    let _ = s.tx.send(text).await;
                }
            }
            _ => {}
        }
    }
    rp.sync(u64::MAX).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    rp.compare_events();
    let report = std::mem::take(&mut rp.report);
    println!("==== {}", rp.file);
    for s in &report.statuses {
        println!("  STATUS {s}");
    }
    for s in &report.skipped {
        println!("  SKIPPED {s}");
    }
    for s in report.shapes.iter().take(40) {
        println!("  SHAPE {s}");
    }
    for s in report.event_diffs.iter().take(80) {
        println!("  EVENT {s}");
    }
    for (name, (m, a, b)) in &report.similarity {
        println!(
            "  SEQUENCE {name}: {m} of {a} captured events matched in order; emulator sent {b}"
        );
    }
    rp.emu.shutdown().await;
    report
}

/// How much of each captured event sequence the emulator must reproduce, in order.
const MIN_SIMILARITY: f64 = 0.80;

async fn check(file: &str) {
    let report = replay(file).await;
    assert!(
        report.statuses.is_empty(),
        "{file}: status codes differ: {:#?}",
        report.statuses
    );
    assert!(
        report.shapes.is_empty(),
        "{file}: JSON shapes differ: {:#?}",
        report.shapes
    );
    for (name, (m, a, _)) in &report.similarity {
        let ratio = if *a == 0 { 1.0 } else { *m as f64 / *a as f64 };
        assert!(
            ratio >= MIN_SIMILARITY,
            "{file} socket {name}: only {m} of {a} events in order ({ratio:.2}): {:#?}",
            report.event_diffs
        );
    }
}

#[test]
fn every_transcript_is_replayed_here() {
    let files = support::transcripts();
    let here: String = include_str!("ari_transcript_replay.rs")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    for f in files {
        let test = f
            .trim_end_matches(".jsonl")
            .to_lowercase()
            .replace("__", "_");
        assert!(
            here.contains(&format!("replay_test!({test},\"{f}\")")),
            "no replay test for {f}"
        );
    }
}

macro_rules! replay_test {
    ($name:ident, $file:literal) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            check($file).await;
        }
    };
}

replay_test!(
    a_originate_answer_playback,
    "a_originate_answer_playback.jsonl"
);
replay_test!(
    a_originate_answer_playback_subscribeall_false,
    "a_originate_answer_playback__subscribeAll_false.jsonl"
);
replay_test!(b_bridge_recording, "b_bridge_recording.jsonl");
replay_test!(
    b_bridge_recording_subscribeall_false,
    "b_bridge_recording__subscribeAll_false.jsonl"
);
replay_test!(c_hold_moh_snoop_continue, "c_hold_moh_snoop_continue.jsonl");
replay_test!(d_external_media_rtp, "d_external_media_rtp.jsonl");
replay_test!(e_errors_and_queries, "e_errors_and_queries.jsonl");
replay_test!(
    f_sip_inbound_dtmf_dial_bridge,
    "f_sip_inbound_dtmf_dial_bridge.jsonl"
);
replay_test!(
    f_sip_inbound_dtmf_dial_bridge_subscribeall_false,
    "f_sip_inbound_dtmf_dial_bridge__subscribeAll_false.jsonl"
);
replay_test!(g_rest_over_websocket, "g_rest_over_websocket.jsonl");
replay_test!(h_failure_paths, "h_failure_paths.jsonl");
replay_test!(
    h_failure_paths_subscribeall_false,
    "h_failure_paths__subscribeAll_false.jsonl"
);
