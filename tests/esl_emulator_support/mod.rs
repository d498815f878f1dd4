//! Shared by the FreeSWITCH emulator tests: a small ESL client over the codec's client-side
//! Decoder, the fixture reader, and the normalisation that compares emulated frames with
//! captured ones (uuids, timestamps and hosts aside).

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use switchboard::emulator::freeswitch::{Emulator, EmulatorOptions};
use switchboard::media::freeswitch::codec::{ContentType, Decoder, Frame};
use switchboard::media::freeswitch::transcript::{Entry, Transcript};

/// fixtures/esl, beside the repository (or where SWITCHBOARD_ESL_FIXTURES says).
pub fn fixtures_dir() -> PathBuf {
    std::env::var_os("SWITCHBOARD_ESL_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/esl"))
}

/// A capture's log, read.
pub fn transcript(name: &str) -> Transcript {
    let path = fixtures_dir().join(format!("{name}.log"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Transcript::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The captured server frames of a scenario, decoded.
pub fn captured_frames(t: &Transcript) -> Vec<Frame> {
    let mut dec = Decoder::default();
    let mut out = Vec::new();
    for e in t.server_frames() {
        if let Entry::Server { bytes, .. } = e {
            dec.feed(bytes);
            while let Ok(Some(f)) = dec.decode() {
                out.push(f);
            }
        }
    }
    out
}

/// An emulator on 127.0.0.1:0.
pub async fn emulator(options: EmulatorOptions) -> Emulator {
    Emulator::start("127.0.0.1:0".parse().unwrap(), options)
        .await
        .expect("emulator starts")
}

/// A client connection: frames arrive on a channel from a reader task.
pub struct Client {
    write: tokio::net::tcp::OwnedWriteHalf,
    frames: mpsc::UnboundedReceiver<Frame>,
    /// Every frame received, in order.
    pub seen: Vec<Frame>,
}

impl Client {
    /// Connects to the emulator.
    pub async fn connect(addr: std::net::SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.expect("connects");
        Client::from_stream(stream)
    }

    /// Wraps an accepted stream (an outbound socket).
    pub fn from_stream(stream: TcpStream) -> Client {
        let (mut read, write) = stream.into_split();
        let (tx, frames) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut dec = Decoder::default();
            let mut buf = vec![0u8; 65536];
            loop {
                let n = match read.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                let mut fed = 0;
                while fed < n {
                    fed += dec.feed(&buf[fed..n]);
                    loop {
                        match dec.decode() {
                            Ok(Some(f)) => {
                                if tx.send(f).is_err() {
                                    return;
                                }
                            }
                            Ok(None) => break,
                            Err(e) => panic!("emulator sent an unreadable frame: {e}"),
                        }
                    }
                }
            }
        });
        Client {
            write,
            frames,
            seen: Vec::new(),
        }
    }

    /// Sends raw bytes.
    pub async fn send(&mut self, bytes: &[u8]) {
        let _ = self.write.write_all(bytes).await;
    }

    /// The next frame within `wait`; `None` on timeout or close.
    pub async fn next(&mut self, wait: Duration) -> Option<Frame> {
        let f = tokio::time::timeout(wait, self.frames.recv())
            .await
            .ok()??;
        self.seen.push(f.clone());
        Some(f)
    }

    /// Sends a command and reads up to its reply (command/reply or api/response).
    pub async fn command(&mut self, text: &str) -> Frame {
        self.send(format!("{text}\n\n").as_bytes()).await;
        self.reply().await
    }

    /// Reads up to the next reply frame.
    pub async fn reply(&mut self) -> Frame {
        loop {
            let f = self
                .next(Duration::from_secs(10))
                .await
                .expect("a reply within 10 s");
            if matches!(
                f.content_type(),
                ContentType::CommandReply | ContentType::ApiResponse
            ) {
                return f;
            }
        }
    }

    /// Reads frames until `pred` matches one (returned) or `wait` passes.
    pub async fn until(&mut self, wait: Duration, pred: impl Fn(&Frame) -> bool) -> Option<Frame> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let f = self.next(left).await?;
            if pred(&f) {
                return Some(f);
            }
        }
    }

    /// Reads until the connection is quiet for `quiet` or closes; true when it closed.
    pub async fn drain(&mut self, quiet: Duration) -> bool {
        loop {
            match tokio::time::timeout(quiet, self.frames.recv()).await {
                Ok(Some(f)) => self.seen.push(f),
                Ok(None) => return true,
                Err(_) => return false,
            }
        }
    }

    /// Logs in.
    pub async fn login(&mut self, password: &str) {
        let greeting = self.next(Duration::from_secs(5)).await.expect("greeting");
        assert_eq!(greeting.content_type(), ContentType::AuthRequest);
        let r = self.command(&format!("auth {password}")).await;
        assert_eq!(r.header("Reply-Text"), Some("+OK accepted"));
    }
}

/// An event frame's name (`CUSTOM conference::maintenance` for custom events).
pub fn event_name(f: &Frame) -> Option<String> {
    let e = f.event().ok()?;
    let name = e.name()?.to_owned();
    Some(match e.subclass() {
        Some(sub) if name == "CUSTOM" => format!("CUSTOM {sub}"),
        _ => name,
    })
}

/// A header of an event frame, decoded.
pub fn event_header(f: &Frame, name: &str) -> Option<String> {
    let e = f.event().ok()?;
    e.header(name).map(|v| v.into_owned())
}

/// Text with every UUID replaced by `<uuid>`.
pub fn mask_uuids(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        if i + 36 <= b.len() && is_uuid(&text[i..i + 36]) {
            out.push_str("<uuid>");
            i += 36;
        } else {
            let c = text[i..].chars().next().unwrap_or(' ');
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// A reply frame as text to compare: `reply: <Reply-Text>` or `api: <body>`, uuids masked.
pub fn reply_text(f: &Frame) -> Option<String> {
    match f.content_type() {
        ContentType::CommandReply => Some(format!(
            "reply: {}",
            mask_uuids(f.header("Reply-Text").unwrap_or(""))
        )),
        ContentType::ApiResponse => Some(format!(
            "api: {}",
            mask_uuids(&String::from_utf8_lossy(f.body()))
        )),
        _ => None,
    }
}

/// Events the emulator models, per channel.
pub const MODELLED: &[&str] = &[
    "CHANNEL_CREATE",
    "CHANNEL_ANSWER",
    "CHANNEL_BRIDGE",
    "CHANNEL_UNBRIDGE",
    "CHANNEL_EXECUTE",
    "CHANNEL_EXECUTE_COMPLETE",
    "CHANNEL_PARK",
    "CHANNEL_UNPARK",
    "CHANNEL_HANGUP",
    "CHANNEL_HANGUP_COMPLETE",
    "CHANNEL_DESTROY",
    "PLAYBACK_START",
    "PLAYBACK_STOP",
    "RECORD_START",
    "RECORD_STOP",
    "DTMF",
    "BACKGROUND_JOB",
];

/// Per channel (named by Channel-Name and the order its uuid first appeared with that name),
/// the modelled events it got, in order. Conference actions are listed as
/// `conference:<Action>`.
pub fn per_channel(frames: &[Frame]) -> HashMap<String, Vec<String>> {
    let mut order: HashMap<String, Vec<String>> = HashMap::new();
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for f in frames {
        let Some(name) = event_name(f) else { continue };
        let item = if name == "CUSTOM conference::maintenance" {
            match event_header(f, "Action").as_deref() {
                Some(
                    a @ ("add-member" | "del-member" | "kick-member" | "mute-member"
                    | "unmute-member" | "hup-member"),
                ) => format!("conference:{a}"),
                _ => continue,
            }
        } else if MODELLED.contains(&name.as_str()) {
            match event_header(f, "Application").as_deref() {
                Some(app) if name.starts_with("CHANNEL_EXECUTE") => format!("{name}({app})"),
                _ => name,
            }
        } else {
            continue;
        };
        let (Some(uuid), Some(chan)) = (
            event_header(f, "Unique-ID"),
            event_header(f, "Channel-Name"),
        ) else {
            continue;
        };
        let uuids = order.entry(chan.clone()).or_default();
        let idx = match uuids.iter().position(|u| *u == uuid) {
            Some(i) => i,
            None => {
                uuids.push(uuid);
                uuids.len() - 1
            }
        };
        out.entry(format!("{chan}#{idx}")).or_default().push(item);
    }
    for seq in out.values_mut() {
        canonical_hangup(seq);
    }
    out
}

/// A parked leg hung up because its partner did reports CHANNEL_UNPARK and the park's
/// completion before or after its CHANNEL_HANGUP, as FreeSWITCH's threads happen to run
/// (call_control… has one order, sendmsg_execute_eventlock the other): compare them as
/// HANGUP, UNPARK, COMPLETE.
fn canonical_hangup(seq: &mut [String]) {
    for i in 0..seq.len().saturating_sub(2) {
        if seq[i] == "CHANNEL_UNPARK"
            && seq[i + 1] == "CHANNEL_EXECUTE_COMPLETE(park)"
            && seq[i + 2] == "CHANNEL_HANGUP"
        {
            seq[i..i + 3].rotate_right(1);
        }
    }
}

/// The reply frames, as text.
pub fn replies(frames: &[Frame]) -> Vec<String> {
    frames.iter().filter_map(reply_text).collect()
}
