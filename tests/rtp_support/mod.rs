//! Shared by the RTP relay tests: real G.711 sources on real UDP sockets, an agent phone that
//! records what it receives, a pcap writer, and the outside receivers (tshark, GStreamer).
#![allow(dead_code)]

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub const PTIME: Duration = Duration::from_millis(20);

/// A stream config without filler or sender reports: only what the test sends comes out.
pub fn quiet_config() -> switchboard::rtp::StreamConfig {
    let mut c = switchboard::rtp::StreamConfig::new(switchboard::rtp::Codec::PCMU_20MS);
    c.filler = switchboard::rtp::Filler::None;
    c.rtcp_interval = None;
    c
}

/// A UDP socket on 127.0.0.1 that gives up reading after 500 ms.
pub fn socket() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    s
}

/// ITU-T G.711 μ-law encoding of one 16-bit linear sample (the classic segment/bias method).
pub fn ulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32_635;
    let mut s = i32::from(sample);
    let sign = if s < 0 { 0x80 } else { 0 };
    if s < 0 {
        s = -s;
    }
    s = s.min(CLIP) + BIAS;
    let mut exponent = 7;
    let mut mask = 0x4000;
    while exponent > 0 && s & mask == 0 {
        exponent -= 1;
        mask >>= 1;
    }
    let mantissa = (s >> (exponent + 3)) & 0x0F;
    !(sign | (exponent << 4) | mantissa) as u8
}

/// One RTP packet: fixed header (RFC 3550 §5.1) and payload.
pub fn rtp(pt: u8, marker: bool, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(12 + payload.len());
    p.push(0x80);
    p.push(pt | if marker { 0x80 } else { 0 });
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// A header as the tests read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub marker: bool,
    pub pt: u8,
    pub seq: u16,
    pub ts: u32,
    pub ssrc: u32,
}

pub fn header(p: &[u8]) -> Option<Header> {
    if p.len() < 12 || p[0] >> 6 != 2 {
        return None;
    }
    Some(Header {
        marker: p[1] & 0x80 != 0,
        pt: p[1] & 0x7F,
        seq: u16::from_be_bytes([p[2], p[3]]),
        ts: u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
        ssrc: u32::from_be_bytes([p[8], p[9], p[10], p[11]]),
    })
}

/// What a source sends.
#[derive(Debug, Clone)]
pub struct SourcePlan {
    pub ssrc: u32,
    pub first_seq: u16,
    pub first_ts: u32,
    /// Tone frequency in Hz (each source its own, so a listener could tell them apart).
    pub tone_hz: f64,
    /// RFC 4733 digit sent as telephone-events (PT 101) from this many packets in, if any.
    pub dtmf_at: Option<u32>,
}

/// A media handler's leg: sends 20 ms G.711 μ-law packets to the relay from its own socket, and
/// counts what comes back (the agent's audio, relayed while this source is active).
pub struct Source {
    pub local: SocketAddr,
    pub received: Arc<AtomicU64>,
    pub sent: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Source {
    pub fn start(plan: SourcePlan, to: SocketAddr) -> Source {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("binding a source socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(1)))
            .expect("read timeout");
        let local = socket.local_addr().expect("local address");
        let stop = Arc::new(AtomicBool::new(false));
        let received = Arc::new(AtomicU64::new(0));
        let sent = Arc::new(AtomicU64::new(0));
        let (st, rx, tx) = (Arc::clone(&stop), Arc::clone(&received), Arc::clone(&sent));
        let thread = std::thread::spawn(move || {
            let start = Instant::now();
            let mut seq = plan.first_seq;
            let mut ts = plan.first_ts;
            let mut phase = 0.0f64;
            let mut n: u32 = 0;
            let mut buf = [0u8; 2048];
            while !st.load(Ordering::Relaxed) {
                let due = start + PTIME * n;
                while Instant::now() < due {
                    if let Ok((len, _)) = socket.recv_from(&mut buf)
                        && len >= 12
                    {
                        rx.fetch_add(1, Ordering::Relaxed);
                    }
                }
                let dtmf = plan.dtmf_at.filter(|at| n >= *at && n < at + 8);
                let packet = if let Some(at) = dtmf {
                    // RFC 4733 §2.3: event 5, volume 10; the event keeps the timestamp of its
                    // start; duration grows by one packet time; the end bit is on the last
                    // three packets (the final packet sent three times, §2.5.1.4).
                    let k = n - at;
                    let start_ts = ts.wrapping_sub(160 * k);
                    let duration = (160 * (k + 1)).min(160 * 6) as u16;
                    let end = if k >= 5 { 0x80 } else { 0 };
                    let payload = [5u8, end | 10, (duration >> 8) as u8, duration as u8];
                    rtp(101, k == 0, seq, start_ts, plan.ssrc, &payload)
                } else {
                    let mut payload = [0u8; 160];
                    for b in payload.iter_mut() {
                        *b = ulaw((phase.sin() * 8000.0) as i16);
                        phase += 2.0 * std::f64::consts::PI * plan.tone_hz / 8000.0;
                    }
                    rtp(0, n == 0, seq, ts, plan.ssrc, &payload)
                };
                if socket.send_to(&packet, to).is_ok() {
                    tx.fetch_add(1, Ordering::Relaxed);
                }
                seq = seq.wrapping_add(1);
                ts = ts.wrapping_add(160);
                n += 1;
            }
        });
        Source {
            local,
            received,
            sent,
            stop,
            thread: Some(thread),
        }
    }

    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Source {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One datagram the agent's phone received.
#[derive(Debug, Clone)]
pub struct Received {
    pub at: Duration,
    pub from: SocketAddr,
    pub data: Vec<u8>,
}

/// The agent's phone: receives on its own socket and records everything with its arrival time;
/// optionally sends its own audio to the relay every 20 ms (symmetric RTP learning and the
/// reverse direction).
pub struct Agent {
    pub local: SocketAddr,
    pub received: Arc<Mutex<Vec<Received>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    pub started: Instant,
}

impl Agent {
    pub fn start(talk_to: Option<SocketAddr>) -> Agent {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("binding the agent socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(2)))
            .expect("read timeout");
        let local = socket.local_addr().expect("local address");
        let stop = Arc::new(AtomicBool::new(false));
        let received = Arc::new(Mutex::new(Vec::new()));
        let started = Instant::now();
        let (st, rec) = (Arc::clone(&stop), Arc::clone(&received));
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            let mut next_talk = Instant::now();
            let mut seq: u16 = 7;
            while !st.load(Ordering::Relaxed) {
                if let Some(to) = talk_to
                    && Instant::now() >= next_talk
                {
                    let p = rtp(0, false, seq, u32::from(seq) * 160, 0xA6E1, &[0xFF; 160]);
                    let _ = socket.send_to(&p, to);
                    seq = seq.wrapping_add(1);
                    next_talk += PTIME;
                }
                if let Ok((len, from)) = socket.recv_from(&mut buf)
                    && let Ok(mut r) = rec.lock()
                {
                    r.push(Received {
                        at: started.elapsed(),
                        from,
                        data: buf[..len].to_vec(),
                    });
                }
            }
        });
        Agent {
            local,
            received,
            stop,
            thread: Some(thread),
            started,
        }
    }

    pub fn stop(&mut self) -> Vec<Received> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.received.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

fn ipv4(addr: SocketAddr) -> SocketAddrV4 {
    match addr {
        SocketAddr::V4(a) => a,
        SocketAddr::V6(_) => SocketAddrV4::new(Ipv4Addr::LOCALHOST, addr.port()),
    }
}

fn ip_checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for pair in header.chunks(2) {
        sum += u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]));
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    !(sum as u16)
}

/// Writes the datagrams as a classic pcap file (Ethernet / IPv4 / UDP), as a capture on the
/// agent's side of the wire would hold them.
pub fn write_pcap(path: &Path, packets: &[Received], to: SocketAddr) {
    let mut out = Vec::new();
    // pcap global header: magic, v2.4, GMT offset 0, accuracy 0, snaplen, LINKTYPE_ETHERNET.
    out.extend_from_slice(&0xA1B2_C3D4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&65_535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    let dst = ipv4(to);
    let base = 1_795_000_000u64;
    for (i, p) in packets.iter().enumerate() {
        let src = ipv4(p.from);
        let udp_len = 8 + p.data.len();
        let ip_len = 20 + udp_len;
        let mut frame = Vec::with_capacity(14 + ip_len);
        frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00]);
        let mut ip = [0u8; 20];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
        ip[4..6].copy_from_slice(&(i as u16).to_be_bytes());
        ip[8] = 64;
        ip[9] = 17;
        ip[12..16].copy_from_slice(&src.ip().octets());
        ip[16..20].copy_from_slice(&dst.ip().octets());
        let sum = ip_checksum(&ip);
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
        frame.extend_from_slice(&ip);
        frame.extend_from_slice(&src.port().to_be_bytes());
        frame.extend_from_slice(&dst.port().to_be_bytes());
        frame.extend_from_slice(&(udp_len as u16).to_be_bytes());
        frame.extend_from_slice(&0u16.to_be_bytes()); // no UDP checksum (allowed on IPv4)
        frame.extend_from_slice(&p.data);
        let secs = base + p.at.as_secs();
        out.extend_from_slice(&(secs as u32).to_le_bytes());
        out.extend_from_slice(&p.at.subsec_micros().to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&frame);
    }
    let mut f = std::fs::File::create(path).expect("creating the pcap file");
    f.write_all(&out).expect("writing the pcap file");
}

/// The path of a tool, or a failure that says how to install it: these checks must not pass
/// silently on a machine without the receiver.
pub fn require_tool(name: &str, package: &str) -> String {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    match found {
        Some(path) if !path.is_empty() => path,
        _ => panic!(
            "{name} is not installed: this test checks the relay's output with a receiver no one \
             here wrote. Install it with `apt-get install -y --no-install-recommends {package}` \
             (.ci/run does this)."
        ),
    }
}

/// One row of `tshark -z rtp,streams`.
#[derive(Debug, Clone)]
pub struct TsharkStream {
    pub line: String,
    pub ssrc: u32,
    pub packets: u64,
    pub lost: i64,
    pub problem: bool,
}

/// Runs Wireshark's RTP stream analysis on a capture, decoding UDP `port` as RTP. Returns the
/// streams and tshark's whole report.
pub fn tshark_rtp_streams(pcap: &Path, port: u16) -> (Vec<TsharkStream>, String) {
    let tshark = require_tool("tshark", "tshark");
    let out = Command::new(tshark)
        .arg("-n")
        .arg("-r")
        .arg(pcap)
        .arg("-d")
        .arg(format!("udp.port=={port},rtp"))
        .args(["-q", "-z", "rtp,streams"])
        .env("HOME", std::env::temp_dir())
        .output()
        .expect("running tshark");
    let report = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "tshark failed: {}\n{report}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut streams = Vec::new();
    for line in report.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // Start End SrcIP SrcPort DstIP DstPort SSRC Payload Pkts Lost (pct) ... [X]
        let Some(ssrc_at) = fields.iter().position(|f| f.starts_with("0x")) else {
            continue;
        };
        let Ok(ssrc) = u32::from_str_radix(fields[ssrc_at].trim_start_matches("0x"), 16) else {
            continue;
        };
        // Payload names may hold spaces ("g711U, telephone-event"): find the packet count as
        // the first integer field followed by a lost count and a "(x%)" field.
        let mut packets = 0;
        let mut lost = 0;
        for i in ssrc_at + 1..fields.len().saturating_sub(2) {
            if let (Ok(p), Ok(l)) = (fields[i].parse::<u64>(), fields[i + 1].parse::<i64>())
                && fields[i + 2].starts_with('(')
            {
                packets = p;
                lost = l;
                break;
            }
        }
        streams.push(TsharkStream {
            line: line.to_string(),
            ssrc,
            packets,
            lost,
            problem: fields.last() == Some(&"X"),
        });
    }
    (streams, report)
}
