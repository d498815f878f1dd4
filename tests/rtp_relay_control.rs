//! The relay's control interface over real UDP on 127.0.0.1: streams and sources come and go,
//! a switch takes effect with the very next packet, a source of another codec is refused with
//! a message that names both codecs, symmetric RTP latches onto the agent and ignores strangers,
//! the agent's receiver reports become statistics, and ports come from the configured range.

mod rtp_support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use rtcp_types::{ReceiverReport, ReportBlock, RtcpPacketWriterExt};
use rtp_support::{Header, header, quiet_config, rtp, socket};
use switchboard::rtp::relay::{AgentAddr, Relay, RelayConfig, RelayError, StreamSpec};
use switchboard::rtp::{
    Codec, Filler, NtpTime, RtpError, SourceId, SourceSpec, StreamConfig, StreamId, is_rtcp,
};

fn relay() -> Relay {
    Relay::start(RelayConfig {
        bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
        workers: 2,
        ..RelayConfig::default()
    })
    .expect("starting the relay")
}

/// The next RTP packet on `s` (RTCP skipped), or None after the timeout.
fn next_rtp(s: &UdpSocket) -> Option<Header> {
    let mut buf = [0u8; 2048];
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        let (n, _) = s.recv_from(&mut buf).ok()?;
        if !is_rtcp(&buf[..n]) {
            return header(&buf[..n]);
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

/// Polls the stream's stats until `f` holds (the worker applies packets asynchronously).
fn wait_stats(
    relay: &Relay,
    id: StreamId,
    f: impl Fn(&switchboard::rtp::relay::RelayStreamStats) -> bool,
) -> switchboard::rtp::relay::RelayStreamStats {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let s = relay.stats(id).expect("stats");
        if f(&s) || Instant::now() > deadline {
            return s;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_switch_takes_effect_with_the_next_packet() {
    let relay = relay();
    let agent = socket();
    let info = relay
        .create_stream(StreamSpec {
            config: quiet_config(),
            agent: AgentAddr::Fixed(agent.local_addr().expect("addr")),
            ssrc: None,
        })
        .expect("stream");
    let a = relay
        .add_source(
            info.id,
            SourceId(1),
            SourceSpec::new(Codec::PCMU_20MS),
            None,
        )
        .expect("source a");
    let b = relay
        .add_source(
            info.id,
            SourceId(2),
            SourceSpec::new(Codec::PCMU_20MS),
            None,
        )
        .expect("source b");
    let (sa, sb) = (socket(), socket());
    relay.switch(info.id, Some(SourceId(1))).expect("switch");
    for i in 0..3u16 {
        sa.send_to(
            &rtp(0, false, 100 + i, 160 * u32::from(i), 0xA, &[0xFF; 160]),
            a,
        )
        .expect("send");
    }
    let first: Vec<Header> = (0..3).filter_map(|_| next_rtp(&agent)).collect();
    assert_eq!(first.len(), 3);
    relay.switch(info.id, Some(SourceId(2))).expect("switch");
    // Straight after the switch: A's packet is dropped, B's is the next in sequence.
    sa.send_to(&rtp(0, false, 103, 480, 0xA, &[0xFF; 160]), a)
        .expect("send");
    sb.send_to(&rtp(0, false, 9000, 777, 0xB, &[0xFF; 160]), b)
        .expect("send");
    let next = next_rtp(&agent).expect("B's first packet");
    assert_eq!(next.seq, first[2].seq.wrapping_add(1));
    assert!(next.marker, "marker on the first packet after a switch");
    assert_eq!(next.ssrc, info.ssrc.0);
    assert_eq!(next.ssrc, first[0].ssrc);
    assert!(next.ts.wrapping_sub(first[2].ts) >= 160);
    let stats = wait_stats(&relay, info.id, |s| s.stream.dropped_inactive >= 1);
    assert_eq!(stats.stream.dropped_inactive, 1);
    assert_eq!(stats.stream.forwarded, 4);
    assert_eq!(stats.stream.switches, 2);
}

#[test]
fn another_codec_is_refused_at_switch_time_with_a_clear_error() {
    let relay = relay();
    let info = relay
        .create_stream(StreamSpec {
            config: quiet_config(),
            agent: AgentAddr::Learn,
            ssrc: None,
        })
        .expect("stream");
    relay
        .add_source(
            info.id,
            SourceId(1),
            SourceSpec::new(Codec::PCMU_20MS),
            None,
        )
        .expect("source");
    relay
        .add_source(
            info.id,
            SourceId(2),
            SourceSpec::new(Codec::PCMA_20MS),
            None,
        )
        .expect("a source of another codec may be added");
    relay.switch(info.id, Some(SourceId(1))).expect("switch");
    let err = relay
        .switch(info.id, Some(SourceId(2)))
        .expect_err("PCMA into a PCMU stream");
    assert!(matches!(
        err,
        RelayError::Rtp(RtpError::CodecMismatch { .. })
    ));
    let msg = err.to_string();
    assert!(
        msg.contains("source#2") && msg.contains("PCMA/8000") && msg.contains("PCMU/8000"),
        "{msg}"
    );
    let stats = relay.stats(info.id).expect("stats");
    assert_eq!(
        stats.stream.switches, 1,
        "the refused switch changed nothing"
    );

    assert!(matches!(
        relay.switch(StreamId(9999), None),
        Err(RelayError::UnknownStream(StreamId(9999)))
    ));
    assert!(matches!(
        relay.switch(info.id, Some(SourceId(7))),
        Err(RelayError::Rtp(RtpError::UnknownSource(SourceId(7))))
    ));
    let last = relay.remove_stream(info.id).expect("remove");
    assert_eq!(last.stream.switches, 1);
    assert!(matches!(
        relay.stats(info.id),
        Err(RelayError::UnknownStream(_))
    ));
}

#[test]
fn symmetric_rtp_latches_onto_the_agent_and_relays_it_to_the_active_source() {
    let relay = relay();
    let info = relay
        .create_stream(StreamSpec {
            config: quiet_config(),
            agent: AgentAddr::Learn,
            ssrc: None,
        })
        .expect("stream");
    let src_addr = relay
        .add_source(
            info.id,
            SourceId(1),
            SourceSpec::new(Codec::PCMU_20MS),
            None,
        )
        .expect("source");
    relay.switch(info.id, Some(SourceId(1))).expect("switch");
    let (agent, stranger, source) = (socket(), socket(), socket());

    // Before the agent spoke, there is nowhere to send.
    source
        .send_to(&rtp(0, false, 1, 0, 5, &[0xFF; 160]), src_addr)
        .expect("send");
    let s = wait_stats(&relay, info.id, |s| s.no_agent_address == 1);
    assert_eq!(s.no_agent_address, 1);

    // The agent speaks: its address is learned, and its audio reaches the source.
    agent
        .send_to(&rtp(0, false, 50, 0, 0xA6, &[0x7F; 160]), info.local)
        .expect("send");
    let mut buf = [0u8; 2048];
    let (n, from) = source
        .recv_from(&mut buf)
        .expect("the agent's audio at the source");
    assert_eq!(
        from, src_addr,
        "relayed from the source's own port (symmetric)"
    );
    assert_eq!(header(&buf[..n]).map(|h| h.ssrc), Some(0xA6));
    source
        .send_to(&rtp(0, false, 2, 160, 5, &[0xFF; 160]), src_addr)
        .expect("send");
    let h = next_rtp(&agent).expect("rewritten packet at the agent");
    assert_eq!(h.ssrc, info.ssrc.0);

    // A stranger cannot take the stream over while the agent is talking.
    stranger
        .send_to(&rtp(0, false, 1, 0, 0xBAD, &[0; 160]), info.local)
        .expect("send");
    let s = wait_stats(&relay, info.id, |s| s.foreign == 1);
    assert_eq!(s.foreign, 1);
    assert_eq!(s.agent, Some(agent.local_addr().expect("addr")));
    source
        .send_to(&rtp(0, false, 3, 320, 5, &[0xFF; 160]), src_addr)
        .expect("send");
    assert!(next_rtp(&agent).is_some());
    assert!(nothing_for(&stranger, Duration::from_millis(100)));
}

#[test]
fn receiver_reports_from_the_agent_become_statistics() {
    let relay = relay();
    let agent = socket();
    let mut config = StreamConfig::new(Codec::PCMU_20MS);
    config.filler = Filler::None;
    config.rtcp_interval = Some(Duration::from_millis(200));
    let info = relay
        .create_stream(StreamSpec {
            config,
            agent: AgentAddr::Fixed(agent.local_addr().expect("addr")),
            ssrc: None,
        })
        .expect("stream");
    let src = relay
        .add_source(
            info.id,
            SourceId(1),
            SourceSpec::new(Codec::PCMU_20MS),
            None,
        )
        .expect("source");
    relay.switch(info.id, Some(SourceId(1))).expect("switch");
    let source = socket();
    for i in 0..5u16 {
        source
            .send_to(&rtp(0, false, i, 160 * u32::from(i), 1, &[0xFF; 160]), src)
            .expect("send");
    }
    // Wait for a sender report; it must count the 5 packets, 800 payload octets.
    let mut buf = [0u8; 2048];
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut sr = None;
    while Instant::now() < deadline && sr.is_none() {
        if let Ok((n, _)) = agent.recv_from(&mut buf)
            && is_rtcp(&buf[..n])
            && buf[1] == 200
        {
            sr = Some(buf[..n].to_vec());
        }
    }
    let sr = sr.expect("a sender report within 3 s");
    assert_eq!(
        u32::from_be_bytes([sr[4], sr[5], sr[6], sr[7]]),
        info.ssrc.0
    );
    assert_eq!(u32::from_be_bytes([sr[20], sr[21], sr[22], sr[23]]), 5);
    assert_eq!(u32::from_be_bytes([sr[24], sr[25], sr[26], sr[27]]), 800);
    let ntp = u64::from_be_bytes([sr[8], sr[9], sr[10], sr[11], sr[12], sr[13], sr[14], sr[15]]);

    // The phone answers with a receiver report about our SSRC (RFC 3550 §6.4.2).
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
    let s = wait_stats(&relay, info.id, |s| s.stream.reception.reports > 0);
    let r = s.stream.reception;
    assert_eq!(r.reports, 1);
    assert_eq!(r.fraction_lost, 26);
    assert_eq!(r.cumulative_lost, 3);
    assert_eq!(r.jitter, 40);
    assert_eq!(r.jitter_us, 5_000);
    let rtt = r.rtt_us.expect("round-trip time from LSR");
    assert!(rtt < 2_000_000, "rtt {rtt} µs");
    assert!(s.stream.rtcp_sent >= 1);
}

#[test]
fn removing_the_active_source_falls_back_to_filler() {
    let relay = relay();
    let agent = socket();
    let mut config = StreamConfig::new(Codec::PCMU_20MS);
    config.rtcp_interval = None;
    let info = relay
        .create_stream(StreamSpec {
            config,
            agent: AgentAddr::Fixed(agent.local_addr().expect("addr")),
            ssrc: None,
        })
        .expect("stream");
    // No source yet: silence every 20 ms.
    let a = next_rtp(&agent).expect("filler");
    let b = next_rtp(&agent).expect("filler");
    assert_eq!(b.seq, a.seq.wrapping_add(1));
    assert_eq!(b.ts.wrapping_sub(a.ts), 160);
    let src = relay
        .add_source(
            info.id,
            SourceId(1),
            SourceSpec::new(Codec::PCMU_20MS),
            None,
        )
        .expect("source");
    relay.switch(info.id, Some(SourceId(1))).expect("switch");
    relay
        .remove_source(info.id, SourceId(1))
        .expect("remove source");
    let s = socket();
    s.send_to(&rtp(0, false, 1, 0, 1, &[0; 160]), src)
        .expect("send");
    let stats = wait_stats(&relay, info.id, |s| s.stream.filler > 5);
    assert!(stats.stream.filler > 5);
    assert_eq!(
        stats.stream.forwarded, 0,
        "a removed source's socket is closed"
    );
}

#[test]
fn ports_come_from_the_configured_range_even_numbers_first() {
    let relay = Relay::start(RelayConfig {
        bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
        workers: 1,
        ports: Some(41_000..=41_099),
        ..RelayConfig::default()
    })
    .expect("relay");
    let mut seen: Vec<SocketAddr> = Vec::new();
    for _ in 0..5 {
        let info = relay
            .create_stream(StreamSpec {
                config: quiet_config(),
                agent: AgentAddr::Learn,
                ssrc: None,
            })
            .expect("stream");
        let s = relay
            .add_source(
                info.id,
                SourceId(1),
                SourceSpec::new(Codec::PCMU_20MS),
                None,
            )
            .expect("source");
        seen.push(info.local);
        seen.push(s);
    }
    for a in &seen {
        assert!((41_000..=41_099).contains(&a.port()), "{a}");
        assert_eq!(a.port() % 2, 0, "{a}");
    }
    let bad = Relay::start(RelayConfig {
        ports: Some(0..=10),
        ..RelayConfig::default()
    });
    assert!(matches!(bad, Err(RelayError::BadConfig(_))));
}
