//! Checked by a second receiver no one here wrote: GStreamer's rtpjitterbuffer (Debian's
//! gstreamer1.0-plugins-good) receives an agent stream from the relay while three G.711 sources
//! switch every two seconds, with a pause on silence filler, and must neither reset nor see a
//! gap, a too-old or too-new packet, or timestamps that go backwards. Its debug log is the
//! evidence. Fails (does not skip) when gst-launch-1.0 is not installed.

mod rtp_support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rtp_support::{Source, SourcePlan};
use switchboard::rtp::relay::{AgentAddr, Relay, RelayConfig, StreamSpec};
use switchboard::rtp::{Codec, SourceId, SourceSpec, StreamConfig};

/// Lines of rtpjitterbuffer's log (GST_DEBUG=rtpjitterbuffer:5) that mean the receiver saw a
/// discontinuity: a reset, lost packets, a big gap either way, timestamps going backwards or
/// jumping, a skew reset. Strings from gst-plugins-good's gstrtpjitterbuffer.c and
/// rtpjitterbuffer.c.
const TROUBLE: &[&str] = &[
    "reset jitterbuffer",
    "- resetting",
    "missing packets",
    "buffer too old",
    "buffer too new",
    "Had big gap",
    "backward timestamps",
    "backwards",
    "reset skew",
    "too far",
    "Packet #",
    "lost",
    "duplicate",
];

#[test]
fn gstreamer_rtpjitterbuffer_sees_no_discontinuity() {
    let gst = rtp_support::require_tool(
        "gst-launch-1.0",
        "gstreamer1.0-tools gstreamer1.0-plugins-good",
    );

    let port = UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("finding a free port")
        .port();
    let dir = tempfile::tempdir().expect("temporary directory");
    let log_path = dir.path().join("gst.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let pipeline = format!(
        "udpsrc address=127.0.0.1 port={port} \
         caps=application/x-rtp,media=audio,clock-rate=8000,encoding-name=PCMU,payload=0 \
         ! rtpjitterbuffer latency=200 ! rtppcmudepay ! mulawdec ! fakesink sync=true"
    );
    let mut child = Command::new(gst)
        .args(pipeline.split_whitespace())
        .env("GST_DEBUG", "rtpjitterbuffer:5")
        .env("GST_DEBUG_NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("starting gst-launch-1.0");
    std::thread::sleep(Duration::from_millis(1500));

    let relay = Relay::start(RelayConfig {
        bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
        workers: 1,
        ..RelayConfig::default()
    })
    .expect("starting the relay");
    let mut config = StreamConfig::new(Codec::PCMU_20MS);
    // A plain (non-WebRTC) receiver: no RTCP multiplexed on its RTP port, no events.
    config.rtcp_interval = None;
    config.telephone_event = None;
    let stream = relay
        .create_stream(StreamSpec {
            config,
            agent: AgentAddr::Fixed(SocketAddr::from(([127, 0, 0, 1], port))),
            ssrc: None,
        })
        .expect("creating the stream");
    let plans = [
        (0x0A0A_0A0A, 65_500, 4_294_966_000, 440.0),
        (0x0B0B_0B0B, 100, 1_000, 660.0),
        (0x0C0C_0C0C, 40_000, 3_000_000_000, 880.0),
    ];
    let mut sources = Vec::new();
    for (i, (ssrc, first_seq, first_ts, tone_hz)) in plans.into_iter().enumerate() {
        let local = relay
            .add_source(
                stream.id,
                SourceId(i as u32),
                SourceSpec::new(Codec::PCMU_20MS),
                None,
            )
            .expect("adding a source");
        sources.push(Source::start(
            SourcePlan {
                ssrc,
                first_seq,
                first_ts,
                tone_hz,
                dtmf_at: None,
            },
            local,
        ));
    }
    let schedule = [Some(0), Some(1), None, Some(2), Some(0)];
    let start = Instant::now();
    for (k, to) in schedule.iter().enumerate() {
        relay
            .switch(stream.id, to.map(SourceId))
            .expect("switching");
        let until = start + Duration::from_secs(2) * (k as u32 + 1);
        std::thread::sleep(until.saturating_duration_since(Instant::now()));
    }
    let stats = relay.stats(stream.id).expect("stats");
    for s in &mut sources {
        s.stop();
    }
    std::thread::sleep(Duration::from_millis(500));
    // The pipeline runs until killed (udpsrc never ends on its own).
    let _ = child.kill();
    let _ = child.wait();
    drop(relay);

    let text = std::fs::read_to_string(&log_path).expect("reading gst log");
    let received = text.matches("Received packet #").count() as u64;
    let sent = stats.sent;
    assert!(sent > 400, "relay sent {sent}: {stats:?}");
    assert!(
        received + 2 >= sent,
        "rtpjitterbuffer logged {received} packets of {sent} sent (is GST_DEBUG honoured?)\n{}",
        &text[..text.len().min(3000)]
    );
    // Start-up flushes and skew resets come before the first packet; judge what follows it.
    let trouble: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.contains("Received packet #"))
        .filter(|l| TROUBLE.iter().any(|t| l.contains(t)))
        .take(20)
        .collect();
    assert!(
        trouble.is_empty(),
        "rtpjitterbuffer saw a discontinuity:\n{}",
        trouble.join("\n")
    );
    // Every packet after the first was the one expected next (gap 0).
    let gaps = text
        .lines()
        .filter(|l| l.contains("gap of") && !l.contains("gap of 0"))
        .count();
    assert_eq!(gaps, 0, "rtpjitterbuffer saw sequence gaps");
    println!("rtpjitterbuffer: {received} packets, no reset, no gap ({sent} sent by the relay)");
}
