//! Checked by a receiver no one here wrote: three G.711 sources (different SSRCs, sequence
//! numbers near the 16-bit wrap, timestamps near the 32-bit wrap) feed one agent stream through
//! the relay over real UDP on 127.0.0.1, switching every two seconds, with a pause on filler and
//! an RFC 4733 digit on the way. The agent's side is written to a pcap file and Wireshark's own
//! RTP analysis (`tshark -q -z rtp,streams`) must see one stream with no lost packets and no
//! sequence or timestamp problem. Runs with a socket per stream and source (the agent learned
//! by symmetric RTP) and on shared ports (every address configured). Fails (does not skip)
//! when tshark is not installed.

mod rtp_support;

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use rtp_support::{Agent, Source, SourcePlan, header};
use switchboard::rtp::relay::{AgentAddr, Relay, RelayConfig, Sharing, StreamSpec};
use switchboard::rtp::{Codec, SourceId, SourceSpec, StreamConfig};

#[test]
fn tshark_sees_one_clean_stream_across_switches() {
    one_clean_stream_across_switches(Sharing::PerStream);
}

#[test]
fn tshark_sees_one_clean_stream_across_switches_on_shared_ports() {
    one_clean_stream_across_switches(Sharing::Shared);
}

fn one_clean_stream_across_switches(sharing: Sharing) {
    // Fail early, with the install hint, rather than after the 13 seconds of traffic.
    rtp_support::require_tool("tshark", "tshark");

    let relay = Relay::start(RelayConfig {
        bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
        workers: 1,
        sharing,
        ..RelayConfig::default()
    })
    .expect("starting the relay");
    let mut config = StreamConfig::new(Codec::PCMU_20MS);
    config.rtcp_interval = Some(Duration::from_secs(1));
    // Shared ports are known before any stream (every stream of the worker is on them), and
    // every peer's address must be given: the agent's and the sources' sockets come first.
    let shared = relay
        .shared_port_stats()
        .expect("shared port stats")
        .first()
        .map(|p| (p.agent_port, p.source_port));
    let (stream, mut agent) = match shared {
        None => {
            let stream = relay
                .create_stream(StreamSpec {
                    config,
                    agent: AgentAddr::Learn,
                    ssrc: None,
                })
                .expect("creating the stream");
            // The agent's phone talks first: symmetric RTP learns its address from that.
            (stream, Agent::start(Some(stream.local)))
        }
        Some((agent_port, _)) => {
            let agent = Agent::start(Some(agent_port));
            let stream = relay
                .create_stream(StreamSpec {
                    config,
                    agent: AgentAddr::Fixed(agent.local),
                    ssrc: None,
                })
                .expect("creating the stream");
            (stream, agent)
        }
    };

    let plans = [
        SourcePlan {
            ssrc: 0x1111_1111,
            first_seq: 65_400,
            first_ts: 4_294_960_000,
            tone_hz: 440.0,
            dtmf_at: None,
        },
        SourcePlan {
            ssrc: 0x2222_2222,
            first_seq: 12,
            first_ts: 160,
            tone_hz: 660.0,
            dtmf_at: Some(130),
        },
        SourcePlan {
            ssrc: 0x3333_3333,
            first_seq: 30_000,
            first_ts: 2_000_000_000,
            tone_hz: 880.0,
            dtmf_at: None,
        },
    ];
    let mut sources = Vec::new();
    for (i, plan) in plans.into_iter().enumerate() {
        let id = SourceId(i as u32);
        let spec = SourceSpec::new(Codec::PCMU_20MS);
        let source = match shared {
            None => {
                let local = relay
                    .add_source(stream.id, id, spec, None)
                    .expect("adding a source");
                Source::start(plan, local)
            }
            Some((_, source_port)) => {
                // What it sends before it is added is dropped as a stranger's.
                let source = Source::start(plan, source_port);
                relay
                    .add_source(stream.id, id, spec, Some(source.local))
                    .expect("adding a source");
                source
            }
        };
        sources.push(source);
    }

    // Switch every two seconds; one gap with no source (silence filler keeps the stream up).
    let schedule = [Some(0), Some(1), Some(2), None, Some(1), Some(0)];
    let start = Instant::now();
    for (k, to) in schedule.iter().enumerate() {
        relay
            .switch(stream.id, to.map(SourceId))
            .expect("switching the source");
        let until = start + Duration::from_secs(2) * (k as u32 + 1);
        std::thread::sleep(until.saturating_duration_since(Instant::now()));
    }
    let stats = relay.stats(stream.id).expect("reading stats");
    let reverse: Vec<u64> = sources
        .iter()
        .map(|s| s.received.load(std::sync::atomic::Ordering::Relaxed))
        .collect();
    for s in &mut sources {
        s.stop();
    }
    std::thread::sleep(Duration::from_millis(100));
    let received = agent.stop();
    drop(relay);

    // What the phone got, in arrival order: RTP plus multiplexed RTCP (RFC 5761).
    let rtp: Vec<_> = received
        .iter()
        .filter(|r| !switchboard::rtp::is_rtcp(&r.data))
        .filter_map(|r| header(&r.data))
        .collect();
    let rtcp = received.len() - rtp.len();
    assert!(
        rtp.len() > 500,
        "only {} RTP packets reached the agent",
        rtp.len()
    );
    assert!(rtcp >= 5, "sender reports: {rtcp}");
    for w in rtp.windows(2) {
        assert_eq!(w[1].seq, w[0].seq.wrapping_add(1), "sequence break: {w:?}");
        assert!(
            (w[1].ts.wrapping_sub(w[0].ts) as i32) >= 0,
            "timestamp went backwards: {w:?}"
        );
        assert_eq!(w[1].ssrc, stream.ssrc.0);
    }
    assert!(
        rtp.iter().any(|h| h.pt == 101),
        "the DTMF digit did not pass"
    );
    assert!(stats.stream.filler > 20, "filler: {stats:?}");
    assert!(
        stats.stream.dropped_inactive > 500,
        "inactive drops: {stats:?}"
    );
    assert_eq!(stats.agent, Some(agent.local));
    assert!(stats.reverse_forwarded > 200, "reverse: {stats:?}");
    assert!(
        reverse[0] > 50 && reverse[1] > 50 && reverse[2] > 50,
        "reverse per source: {reverse:?}"
    );

    let dir = tempfile::tempdir().expect("temporary directory");
    let pcap = dir.path().join("agent.pcap");
    rtp_support::write_pcap(&pcap, &received, agent.local);
    if let Ok(keep) = std::env::var("SWITCHBOARD_KEEP_PCAP") {
        let _ = std::fs::copy(&pcap, keep);
    }
    let (streams, report) = rtp_support::tshark_rtp_streams(&pcap, stream.local.port());
    println!("{report}");
    assert_eq!(
        streams.len(),
        1,
        "tshark saw {} streams:\n{report}",
        streams.len()
    );
    let s = &streams[0];
    assert_eq!(s.ssrc, stream.ssrc.0, "{report}");
    assert_eq!(s.packets as usize, rtp.len(), "{report}");
    assert_eq!(s.lost, 0, "tshark counts lost packets:\n{report}");
    assert!(
        !s.problem,
        "tshark flags a sequence or timestamp problem:\n{report}"
    );
}
