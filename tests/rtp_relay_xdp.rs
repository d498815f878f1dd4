//! The relay's shared ports read through AF_XDP on lo (`RelayConfig::xdp`): what sources send
//! reaches each agent rewritten and on time, from the agent-facing port, with checksums the
//! kernel accepts (it drops a UDP datagram whose checksum is wrong); what an agent sends
//! reaches its active source from the source-facing port; strangers are dropped and counted;
//! and the frames really went through the XDP socket.
//!
//! AF_XDP needs root (CAP_BPF, CAP_NET_ADMIN), as `.ci/run` has; lo takes frames built this
//! way only with `accept_local` and `route_localnet`, which the test sets for its run.
//! One test: an interface takes one XDP program at a time.

mod rtp_support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use rtp_support::{header, quiet_config, rtp, socket};
use switchboard::rtp::relay::{AgentAddr, Relay, RelayConfig, RelayError, Sharing, StreamSpec};
use switchboard::rtp::{Codec, SourceId, SourceSpec, is_rtcp};

const LO_SETTINGS: [&str; 2] = [
    "/proc/sys/net/ipv4/conf/lo/accept_local",
    "/proc/sys/net/ipv4/conf/lo/route_localnet",
];

/// Sets the lo settings for the test and puts them back after.
struct LoSettings(Vec<(&'static str, String)>);

impl LoSettings {
    fn set() -> LoSettings {
        let mut old = Vec::new();
        for path in LO_SETTINGS {
            let value = std::fs::read_to_string(path).expect("reading a lo setting");
            std::fs::write(path, "1").expect("setting a lo setting (the test needs root)");
            old.push((path, value));
        }
        LoSettings(old)
    }
}

impl Drop for LoSettings {
    fn drop(&mut self) {
        for (path, value) in &self.0 {
            let _ = std::fs::write(path, value.trim());
        }
    }
}

fn addr(s: &UdpSocket) -> SocketAddr {
    s.local_addr().expect("local address")
}

fn xdp_config() -> RelayConfig {
    RelayConfig {
        bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
        workers: 1,
        sharing: Sharing::Shared,
        xdp: Some("lo".into()),
        ..RelayConfig::default()
    }
}

#[test]
fn shared_ports_through_af_xdp_on_lo_forward_both_ways_on_time() {
    let _lo = LoSettings::set();
    let relay = Relay::start(xdp_config()).expect("starting the relay with AF_XDP on lo");

    // Three streams, each with one source; every agent and source its own socket.
    let mut streams = Vec::new();
    for i in 0..3u32 {
        let agent = socket();
        let source = socket();
        let info = relay
            .create_stream(StreamSpec {
                config: quiet_config(),
                agent: AgentAddr::Fixed(addr(&agent)),
                ssrc: None,
            })
            .expect("stream");
        let to = relay
            .add_source(
                info.id,
                SourceId(1),
                SourceSpec::new(Codec::PCMU_20MS),
                Some(addr(&source)),
            )
            .expect("source");
        relay.switch(info.id, Some(SourceId(1))).expect("switch");
        streams.push((i, info, agent, source, to));
    }

    // 100 packets from each source, 5 ms apart, interleaved.
    let payload = [0xD5u8; 160];
    let mut worst = Duration::ZERO;
    let mut received = vec![Vec::new(); streams.len()];
    for n in 0..100u16 {
        for (i, _, agent, source, to) in &streams {
            let ssrc = 0x5000 + i;
            let sent_at = Instant::now();
            let p = rtp(
                0,
                false,
                1000 + n,
                8000 + u32::from(n) * 160,
                ssrc,
                &payload,
            );
            source.send_to(&p, to).expect("send");
            let mut buf = [0u8; 2048];
            let (len, from) = agent
                .recv_from(&mut buf)
                .expect("the agent receives the packet");
            worst = worst.max(sent_at.elapsed());
            let info = &streams[*i as usize].1;
            assert_eq!(from, info.local, "sent from the agent-facing port");
            assert!(!is_rtcp(&buf[..len]));
            assert_eq!(&buf[12..len], &payload[..], "payload untouched");
            received[*i as usize].push(header(&buf[..len]).expect("an RTP header"));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    for (i, headers) in received.iter().enumerate() {
        assert_eq!(headers.len(), 100, "stream {i}");
        let ssrc = headers[0].ssrc;
        assert_ne!(
            ssrc,
            0x5000 + i as u32,
            "the stream's own SSRC, not the source's"
        );
        for w in headers.windows(2) {
            assert_eq!(w[1].ssrc, ssrc);
            assert_eq!(
                w[1].seq,
                w[0].seq.wrapping_add(1),
                "stream {i}: consecutive"
            );
            assert_eq!(
                w[1].ts,
                w[0].ts.wrapping_add(160),
                "stream {i}: 20 ms apart"
            );
        }
    }
    assert!(
        worst < Duration::from_millis(50),
        "slowest packet took {worst:?}"
    );

    // The agent's audio reaches the active source, from the source-facing port.
    let (_, info, agent, source, to) = &streams[1];
    let p = rtp(0, false, 7, 160, 0xABCD, &payload);
    agent.send_to(&p, info.local).expect("agent sends");
    let mut buf = [0u8; 2048];
    let (len, from) = source
        .recv_from(&mut buf)
        .expect("the source receives the agent");
    assert_eq!(from, *to, "from the source-facing port");
    assert_eq!(&buf[..len], &p[..], "relayed as it was");

    // A stranger on the source-facing port is dropped and counted.
    let stranger = socket();
    stranger.send_to(&p, to).expect("stranger sends");
    std::thread::sleep(Duration::from_millis(100));
    let stats = relay.shared_port_stats().expect("stats");
    assert_eq!(stats[0].unknown_sources, 1);
    let xdp = stats[0].xdp.expect("the AF_XDP path's counters");
    assert_eq!(
        xdp.forwarded, 301,
        "every datagram went through the XDP socket"
    );
    assert_eq!((xdp.via_socket, xdp.dropped_in, xdp.not_sent), (0, 0, 0));
    for (_, info, ..) in &streams {
        let s = relay.stats(info.id).expect("stream stats");
        assert_eq!(s.send_errors, 0);
    }
    drop(relay);

    // Once the relay is gone its program is detached: a second one can attach to lo.
    let again = Relay::start(xdp_config()).expect("a second relay attaches after the first");
    drop(again);

    // Asked for what AF_XDP cannot do here, the relay says so before it starts.
    for config in [
        RelayConfig {
            workers: 2,
            ..xdp_config()
        },
        RelayConfig {
            bind: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            ..xdp_config()
        },
        RelayConfig {
            sharing: Sharing::PerStream,
            ..xdp_config()
        },
    ] {
        assert!(matches!(
            Relay::start(config),
            Err(RelayError::BadConfig(_))
        ));
    }
    let err = Relay::start(RelayConfig {
        xdp: Some("no-such-interface0".into()),
        ..xdp_config()
    })
    .expect_err("an interface that is not there");
    assert!(err.to_string().contains("no-such-interface0"), "{err}");
}
