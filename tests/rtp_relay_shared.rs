//! The relay in shared-port mode over real UDP on 127.0.0.1: every stream of a worker is
//! reached on one agent-facing port and every source on one source-facing port, and packets
//! find their stream by the address they come from. Sources switch with the stream continuous,
//! the agent's audio reaches the active source from the shared port, streams on one port keep
//! their packets apart, strangers are dropped and counted, filler and RTCP go through the shared
//! ports, and a stream or source without a known address, or with another's, is refused.

mod rtp_support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use rtcp_types::{ReceiverReport, ReportBlock, RtcpPacketWriterExt};
use rtp_support::{Header, header, quiet_config, rtp, socket};
use switchboard::rtp::relay::{
    AgentAddr, Peer, Relay, RelayConfig, RelayError, RelayStreamStats, SharedPortStats, Sharing,
    StreamInfo, StreamSpec,
};
use switchboard::rtp::{Codec, NtpTime, SourceId, SourceSpec, StreamConfig, StreamId, is_rtcp};

fn relay(workers: usize) -> Relay {
    Relay::start(RelayConfig {
        bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
        workers,
        sharing: Sharing::Shared,
        ..RelayConfig::default()
    })
    .expect("starting the relay")
}

fn addr(s: &UdpSocket) -> SocketAddr {
    s.local_addr().expect("local address")
}

fn stream_for(relay: &Relay, agent: &UdpSocket, config: StreamConfig) -> StreamInfo {
    relay
        .create_stream(StreamSpec {
            config,
            agent: AgentAddr::Fixed(addr(agent)),
            ssrc: None,
        })
        .expect("stream")
}

fn add_source(relay: &Relay, id: StreamId, source: u32, from: &UdpSocket) -> SocketAddr {
    relay
        .add_source(
            id,
            SourceId(source),
            SourceSpec::new(Codec::PCMU_20MS),
            Some(addr(from)),
        )
        .expect("source")
}

/// The next datagram on `s` and where it came from, or None after the timeout.
fn next(s: &UdpSocket) -> Option<(Vec<u8>, SocketAddr)> {
    let mut buf = [0u8; 2048];
    let (n, from) = s.recv_from(&mut buf).ok()?;
    Some((buf[..n].to_vec(), from))
}

/// The next RTP packet on `s` (RTCP skipped), or None after the timeout.
fn next_rtp(s: &UdpSocket) -> Option<Header> {
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        let (data, _) = next(s)?;
        if !is_rtcp(&data) {
            return header(&data);
        }
    }
    None
}

fn nothing_for(s: &UdpSocket, d: Duration) -> bool {
    let mut buf = [0u8; 2048];
    s.set_read_timeout(Some(d)).expect("timeout");
    let r = s.recv_from(&mut buf).is_err();
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    r
}

/// Polls until `f` holds (the worker applies packets asynchronously).
fn wait<T>(read: impl Fn() -> T, f: impl Fn(&T) -> bool) -> T {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let s = read();
        if f(&s) || Instant::now() > deadline {
            return s;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn stats(relay: &Relay, id: StreamId) -> RelayStreamStats {
    relay.stats(id).expect("stats")
}

fn ports(relay: &Relay) -> Vec<SharedPortStats> {
    relay.shared_port_stats().expect("shared port stats")
}

fn audio(seq: u16, ssrc: u32) -> Vec<u8> {
    rtp(0, false, seq, 160 * u32::from(seq), ssrc, &[0xFF; 160])
}

#[test]
fn two_sources_on_the_shared_port_make_one_stream_across_a_switch() {
    let relay = relay(1);
    let agent = socket();
    let info = stream_for(&relay, &agent, quiet_config());
    let (sa, sb) = (socket(), socket());
    let to_a = add_source(&relay, info.id, 1, &sa);
    let to_b = add_source(&relay, info.id, 2, &sb);
    let shared = ports(&relay);
    assert_eq!(shared.len(), 1);
    assert_eq!(
        info.local, shared[0].agent_port,
        "the stream is on the worker's agent port"
    );
    assert_eq!(
        to_a, shared[0].source_port,
        "sources send to the worker's source port"
    );
    assert_eq!(to_b, to_a);

    relay.switch(info.id, Some(SourceId(1))).expect("switch");
    for i in 0..3u16 {
        sa.send_to(&audio(100 + i, 0xA), to_a).expect("send");
    }
    let first: Vec<Header> = (0..3).filter_map(|_| next_rtp(&agent)).collect();
    assert_eq!(first.len(), 3);
    assert!(first.iter().all(|h| h.ssrc == info.ssrc.0));
    assert_eq!(first[1].seq, first[0].seq.wrapping_add(1));

    relay.switch(info.id, Some(SourceId(2))).expect("switch");
    // A's packet now is dropped (inactive); B's is the next in sequence, same SSRC.
    sa.send_to(&audio(103, 0xA), to_a).expect("send");
    sb.send_to(&audio(9000, 0xB), to_b).expect("send");
    let (data, from) = next(&agent).expect("B's first packet");
    assert_eq!(from, info.local, "sent from the shared agent port");
    let h = header(&data).expect("RTP");
    assert_eq!(h.seq, first[2].seq.wrapping_add(1));
    assert_eq!(h.ssrc, info.ssrc.0);
    assert!(h.marker, "marker on the first packet after a switch");
    assert!(h.ts.wrapping_sub(first[2].ts) >= 160);
    let s = wait(
        || stats(&relay, info.id),
        |s| s.stream.dropped_inactive >= 1,
    );
    assert_eq!(s.stream.dropped_inactive, 1);
    assert_eq!(s.stream.forwarded, 4);
    assert_eq!(s.sent, 4);
    assert_eq!(s.send_errors, 0);
}

#[test]
fn the_agents_audio_reaches_the_active_source_from_the_shared_port() {
    let relay = relay(1);
    let agent = socket();
    let info = stream_for(&relay, &agent, quiet_config());
    let (sa, sb) = (socket(), socket());
    let to_sources = add_source(&relay, info.id, 1, &sa);
    add_source(&relay, info.id, 2, &sb);

    // No active source: the agent's audio has nowhere to go.
    agent.send_to(&audio(1, 0xA6), info.local).expect("send");
    let s = wait(|| stats(&relay, info.id), |s| s.reverse_dropped == 1);
    assert_eq!(s.reverse_dropped, 1);

    relay.switch(info.id, Some(SourceId(1))).expect("switch");
    agent.send_to(&audio(2, 0xA6), info.local).expect("send");
    let (data, from) = next(&sa).expect("the agent's audio at source 1");
    assert_eq!(
        from, to_sources,
        "from the port the source sends to (symmetric RTP)"
    );
    assert_eq!(header(&data).map(|h| h.ssrc), Some(0xA6));
    assert!(nothing_for(&sb, Duration::from_millis(50)));

    relay.switch(info.id, Some(SourceId(2))).expect("switch");
    agent.send_to(&audio(3, 0xA6), info.local).expect("send");
    let (_, from) = next(&sb).expect("the agent's audio at source 2");
    assert_eq!(from, to_sources);
    assert!(nothing_for(&sa, Duration::from_millis(50)));
    let s = wait(|| stats(&relay, info.id), |s| s.reverse_forwarded == 2);
    assert_eq!(s.reverse_forwarded, 2);
    assert_eq!(s.from_agent, 3);
}

#[test]
fn streams_on_one_shared_port_keep_their_packets_apart() {
    let relay = relay(1);
    let (agent1, agent2) = (socket(), socket());
    let one = stream_for(&relay, &agent1, quiet_config());
    let two = stream_for(&relay, &agent2, quiet_config());
    assert_eq!(one.local, two.local);
    let (s1, s2) = (socket(), socket());
    let to = add_source(&relay, one.id, 1, &s1);
    add_source(&relay, two.id, 1, &s2);
    relay.switch(one.id, Some(SourceId(1))).expect("switch");
    relay.switch(two.id, Some(SourceId(1))).expect("switch");
    for i in 0..5u16 {
        s1.send_to(&audio(i, 1), to).expect("send");
        s2.send_to(&audio(500 + i, 2), to).expect("send");
    }
    for _ in 0..5 {
        assert_eq!(next_rtp(&agent1).map(|h| h.ssrc), Some(one.ssrc.0));
        assert_eq!(next_rtp(&agent2).map(|h| h.ssrc), Some(two.ssrc.0));
    }
    assert!(nothing_for(&agent1, Duration::from_millis(50)));
    assert!(nothing_for(&agent2, Duration::from_millis(50)));
    assert_eq!(stats(&relay, one.id).stream.forwarded, 5);
    assert_eq!(stats(&relay, two.id).stream.forwarded, 5);
}

#[test]
fn strangers_on_the_shared_ports_are_dropped_and_counted() {
    let relay = relay(1);
    let agent = socket();
    let info = stream_for(&relay, &agent, quiet_config());
    let source = socket();
    let to = add_source(&relay, info.id, 1, &source);
    relay.switch(info.id, Some(SourceId(1))).expect("switch");
    let stranger = socket();
    stranger.send_to(&audio(1, 0xBAD), to).expect("send");
    stranger
        .send_to(&audio(2, 0xBAD), info.local)
        .expect("send");
    let p = wait(
        || ports(&relay),
        |p| p[0].unknown_sources == 1 && p[0].unknown_agents == 1,
    );
    assert_eq!((p[0].unknown_sources, p[0].unknown_agents), (1, 1));
    assert!(nothing_for(&agent, Duration::from_millis(50)));
    assert!(nothing_for(&source, Duration::from_millis(50)));
    let s = stats(&relay, info.id);
    assert_eq!((s.stream.forwarded, s.from_agent), (0, 0));

    // The known source still gets through; once removed, it is a stranger too.
    source.send_to(&audio(3, 5), to).expect("send");
    assert!(next_rtp(&agent).is_some());
    relay.remove_source(info.id, SourceId(1)).expect("remove");
    source.send_to(&audio(4, 5), to).expect("send");
    let p = wait(|| ports(&relay), |p| p[0].unknown_sources == 2);
    assert_eq!(p[0].unknown_sources, 2);
}

#[test]
fn filler_and_rtcp_go_through_the_shared_ports() {
    let relay = relay(1);
    let agent = socket();
    let mut config = StreamConfig::new(Codec::PCMU_20MS);
    config.rtcp_interval = Some(Duration::from_millis(200));
    let info = stream_for(&relay, &agent, config);
    // No source yet: silence every 20 ms, from the shared agent port.
    let (data, from) = next(&agent).expect("filler");
    assert_eq!(from, info.local);
    let a = header(&data).expect("RTP");
    let b = next_rtp(&agent).expect("filler");
    assert_eq!(b.seq, a.seq.wrapping_add(1));
    assert_eq!(b.ts.wrapping_sub(a.ts), 160);

    // A sender report arrives on the same port (RFC 5761 multiplexing)…
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut sr = None;
    while Instant::now() < deadline && sr.is_none() {
        if let Some((data, _)) = next(&agent)
            && is_rtcp(&data)
            && data[1] == 200
        {
            sr = Some(data);
        }
    }
    let sr = sr.expect("a sender report within 3 s");
    assert_eq!(
        u32::from_be_bytes([sr[4], sr[5], sr[6], sr[7]]),
        info.ssrc.0
    );
    let ntp = u64::from_be_bytes([sr[8], sr[9], sr[10], sr[11], sr[12], sr[13], sr[14], sr[15]]);

    // …and the agent's receiver report, sent to the shared port, becomes statistics.
    let rr = ReceiverReport::builder(0xA6).add_report_block(
        ReportBlock::builder(info.ssrc.0)
            .fraction_lost(26)
            .cumulative_lost(3)
            .extended_sequence_number(70_004)
            .interarrival_jitter(40)
            .last_sender_report_timestamp(NtpTime(ntp).middle())
            .delay_since_last_sender_report_timestamp(0),
    );
    let mut out = [0u8; 64];
    let n = rr.write_into(&mut out).expect("writing an RR");
    agent.send_to(&out[..n], info.local).expect("send RR");
    let s = wait(
        || stats(&relay, info.id),
        |s| s.stream.reception.reports > 0,
    );
    assert_eq!(s.stream.reception.reports, 1);
    assert_eq!(s.stream.reception.fraction_lost, 26);
    assert_eq!(s.stream.reception.cumulative_lost, 3);
    assert!(s.stream.rtcp_sent >= 1);
    assert!(s.stream.filler > 2);
}

#[test]
fn unknown_or_taken_addresses_are_refused_with_a_clear_error() {
    let relay = relay(1);
    // An agent to be learned cannot share a port.
    let err = relay
        .create_stream(StreamSpec {
            config: quiet_config(),
            agent: AgentAddr::Learn,
            ssrc: None,
        })
        .expect_err("a learned agent on a shared port");
    assert!(matches!(err, RelayError::AgentAddressRequired), "{err}");
    assert!(err.to_string().contains("AgentAddr::Fixed"), "{err}");

    let agent = socket();
    let info = stream_for(&relay, &agent, quiet_config());
    // A source without the address it sends from.
    let err = relay
        .add_source(
            info.id,
            SourceId(4),
            SourceSpec::new(Codec::PCMU_20MS),
            None,
        )
        .expect_err("a source without remote");
    let refused = matches!(
        err,
        RelayError::SourceAddressRequired { stream, source_id: SourceId(4) } if stream == info.id
    );
    assert!(refused, "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("source#4") && msg.contains(&info.id.to_string()),
        "{msg}"
    );

    // The same agent address twice on one worker.
    let err = relay
        .create_stream(StreamSpec {
            config: quiet_config(),
            agent: AgentAddr::Fixed(addr(&agent)),
            ssrc: None,
        })
        .expect_err("a second stream for the same agent address");
    assert!(
        matches!(err, RelayError::AddressTaken { owner: Peer::Agent(id), .. } if id == info.id),
        "{err}"
    );
    assert!(err.to_string().contains(&addr(&agent).to_string()), "{err}");

    // The same source address twice, in this stream or another.
    let source = socket();
    add_source(&relay, info.id, 1, &source);
    let other = socket();
    let second = stream_for(&relay, &other, quiet_config());
    for (id, source_id) in [(info.id, SourceId(2)), (second.id, SourceId(1))] {
        let err = relay
            .add_source(
                id,
                source_id,
                SourceSpec::new(Codec::PCMU_20MS),
                Some(addr(&source)),
            )
            .expect_err("a second source with the same address");
        let taken = matches!(
            err,
            RelayError::AddressTaken { owner: Peer::Source(s, SourceId(1)), .. } if s == info.id
        );
        assert!(taken, "{err}");
        assert!(err.to_string().contains("source#1 of"), "{err}");
    }

    // Freed addresses can be used again.
    relay.remove_stream(info.id).expect("remove");
    stream_for(&relay, &agent, quiet_config());
    add_source(&relay, second.id, 1, &source);
}

#[test]
fn each_worker_has_its_own_shared_ports() {
    let relay = relay(2);
    let p = ports(&relay);
    assert_eq!(p.len(), 2);
    assert_ne!(p[0].agent_port, p[1].agent_port);
    assert_ne!(p[0].source_port, p[0].agent_port);
    // Streams are spread over the workers; each is on its worker's ports and forwards.
    let (a1, a2) = (socket(), socket());
    let one = stream_for(&relay, &a1, quiet_config());
    let two = stream_for(&relay, &a2, quiet_config());
    assert_ne!(one.local, two.local);
    for (info, agent) in [(one, &a1), (two, &a2)] {
        let source = socket();
        let to = add_source(&relay, info.id, 1, &source);
        relay.switch(info.id, Some(SourceId(1))).expect("switch");
        source.send_to(&audio(1, 9), to).expect("send");
        assert_eq!(next_rtp(agent).map(|h| h.ssrc), Some(info.ssrc.0));
    }
}
