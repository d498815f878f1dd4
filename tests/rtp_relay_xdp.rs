//! The relay's shared ports read through AF_XDP on lo (`RelayConfig::xdp`): what sources send
//! reaches each agent rewritten and on time, from the agent-facing port, with checksums the
//! kernel accepts (it drops a UDP datagram whose checksum is wrong); what an agent sends
//! reaches its active source from the source-facing port; strangers are dropped and counted;
//! and the frames really went through the XDP socket.
//!
//! AF_XDP needs root (CAP_BPF, CAP_NET_ADMIN), as `.ci/run` has; lo takes frames built this
//! way only with `accept_local` and `route_localnet`, which the test sets for its run.
//! A second test runs the relay on one end of a veth pair with the peers in a network
//! namespace behind the other: real Ethernet, where the relay must learn each peer's next hop
//! from its frames and, until it has, send through the UDP socket (the kernel resolves it).
//!
//! One test per interface: an interface takes one XDP program at a time.

mod rtp_support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use rtp_support::{header, quiet_config, rtp, socket};
use switchboard::rtp::relay::{
    AgentAddr, Relay, RelayConfig, RelayError, Sharing, StreamInfo, StreamSpec,
};
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

/// A stream to `agent` whose one source, active, sends from `source`: the stream, and the
/// relay's address the source sends to.
fn stream_from_to(
    relay: &Relay,
    source: &UdpSocket,
    agent: &UdpSocket,
) -> (StreamInfo, SocketAddr) {
    let info = relay
        .create_stream(StreamSpec {
            config: quiet_config(),
            agent: AgentAddr::Fixed(addr(agent)),
            ssrc: None,
        })
        .expect("stream");
    let to = relay
        .add_source(
            info.id,
            SourceId(1),
            SourceSpec::new(Codec::PCMU_20MS),
            Some(addr(source)),
        )
        .expect("source");
    relay.switch(info.id, Some(SourceId(1))).expect("switch");
    (info, to)
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
        let (info, to) = stream_from_to(&relay, &source, &agent);
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
    assert_eq!(xdp.deferred, 0, "every flush sent everything");
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

/// A veth pair: `host` here with 10.77.0.1/24, its peer in namespace `ns` with 10.77.0.2/24.
/// Removed when dropped.
struct Veth {
    host: String,
    ns: String,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("running ip (Debian package iproute2)");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Veth {
    fn create() -> Veth {
        let id = std::process::id();
        let (host, peer, ns) = (format!("sbx{id}a"), format!("sbx{id}b"), format!("sbx{id}"));
        let veth = Veth { host, ns };
        ip(&["netns", "add", &veth.ns]);
        ip(&[
            "link", "add", &veth.host, "type", "veth", "peer", "name", &peer,
        ]);
        ip(&["link", "set", &peer, "netns", &veth.ns]);
        ip(&["addr", "add", "10.77.0.1/24", "dev", &veth.host]);
        ip(&["link", "set", &veth.host, "up"]);
        ip(&["-n", &veth.ns, "addr", "add", "10.77.0.2/24", "dev", &peer]);
        ip(&["-n", &veth.ns, "link", "set", &peer, "up"]);
        ip(&["-n", &veth.ns, "link", "set", "lo", "up"]);
        veth
    }

    /// A UDP socket on 10.77.0.2 inside the namespace (a socket keeps the namespace it was
    /// made in, so it is made on a thread that entered it).
    fn peer_socket(&self) -> UdpSocket {
        let path = format!("/var/run/netns/{}", self.ns);
        std::thread::spawn(move || {
            let ns = std::fs::File::open(&path).expect("the namespace");
            use std::os::fd::AsRawFd;
            // SAFETY: setns with a namespace descriptor; it changes this thread only.
            let r = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
            let s = UdpSocket::bind("10.77.0.2:0").expect("a socket in the namespace");
            s.set_read_timeout(Some(Duration::from_secs(2)))
                .expect("timeout");
            s
        })
        .join()
        .expect("the namespace thread")
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.host])
            .status();
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

#[test]
fn over_real_ethernet_the_relay_learns_next_hops_and_uses_the_socket_until_it_has() {
    let veth = Veth::create();
    let relay = Relay::start(RelayConfig {
        bind: IpAddr::V4(Ipv4Addr::new(10, 77, 0, 1)),
        xdp: Some(veth.host.clone()),
        ..xdp_config()
    })
    .expect("starting the relay with AF_XDP on a veth");
    let (agent, source) = (veth.peer_socket(), veth.peer_socket());
    let (info, to) = stream_from_to(&relay, &source, &agent);
    let xdp = |relay: &Relay| {
        relay.shared_port_stats().expect("stats")[0]
            .xdp
            .expect("the AF_XDP path's counters")
    };
    let payload = [0x55u8; 160];
    let mut buf = [0u8; 2048];

    // The agent has sent nothing: its next hop is unknown, so its audio goes by the socket.
    source
        .send_to(&rtp(0, false, 1, 160, 0x77, &payload), to)
        .expect("send");
    let (len, from) = agent
        .recv_from(&mut buf)
        .expect("the agent hears the source");
    assert_eq!((from, &buf[12..len]), (info.local, &payload[..]));
    let first = header(&buf[..len]).expect("RTP");
    assert_eq!((xdp(&relay).forwarded, xdp(&relay).via_socket), (0, 1));

    // The agent speaks: the source's next hop was learned from its frame, so the agent's
    // audio leaves as a frame; and the agent's is learned now too.
    let spoken = rtp(0, false, 9, 1600, 0xAB, &payload);
    agent.send_to(&spoken, info.local).expect("agent sends");
    let (len, from) = source
        .recv_from(&mut buf)
        .expect("the source hears the agent");
    assert_eq!((from, &buf[..len]), (to, &spoken[..]));
    assert_eq!((xdp(&relay).forwarded, xdp(&relay).via_socket), (1, 1));

    // From now on the source's audio leaves as frames, and the kernel on the far side takes
    // them (it checks the UDP checksum of what arrives over a veth).
    for n in 2..=20u16 {
        source
            .send_to(&rtp(0, false, n, u32::from(n) * 160, 0x77, &payload), to)
            .expect("send");
        let (len, from) = agent
            .recv_from(&mut buf)
            .expect("the agent hears the source");
        assert_eq!((from, &buf[12..len]), (info.local, &payload[..]));
        let h = header(&buf[..len]).expect("RTP");
        assert_eq!(h.seq, first.seq.wrapping_add(n - 1), "consecutive");
        assert_eq!(h.ssrc, first.ssrc);
    }
    let x = xdp(&relay);
    assert_eq!((x.forwarded, x.via_socket, x.not_sent), (20, 1, 0));
}
