//! Asterisk's externalMedia RTP, as captured from Asterisk 22 (`fixtures/ari`, scenario d):
//! PT 0, 160-byte payloads every 20 ms, random SSRC and sequence number, timestamps from 160,
//! no marker on the first packet. Two such channels feed one agent stream through the sans-IO
//! sequencer on the capture's own clock; the agent sees one stream that starts with a marker,
//! continues +1 across the switch, and keeps Asterisk's spacing within each channel.

use std::path::PathBuf;

use switchboard::model::Timestamp;
use switchboard::rtp::{
    Codec, Filler, Sequencer, SourceId, SourceSpec, Ssrc, StreamConfig, Verdict,
};

fn fixture() -> PathBuf {
    std::env::var_os("SWITCHBOARD_ARI_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/ari"))
        .join("d_external_media_rtp.jsonl")
}

/// (arrival in µs since the scenario started, header) of every RTP packet Asterisk sent.
fn asterisk_packets() -> Vec<(i64, serde_json::Value)> {
    let path = fixture();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["kind"] == "rtp_rx")
        .map(|v| {
            (
                (v["t"].as_f64().unwrap_or(0.0) * 1e6) as i64,
                v["header"].clone(),
            )
        })
        .collect()
}

fn packet(h: &serde_json::Value, ssrc_xor: u32) -> Vec<u8> {
    let field = |k: &str| h[k].as_u64().unwrap_or(0);
    let mut p = vec![
        0x80,
        field("payload_type") as u8 | if h["marker"] == true { 0x80 } else { 0 },
    ];
    p.extend_from_slice(&(field("seq") as u16).to_be_bytes());
    p.extend_from_slice(&(field("timestamp") as u32).to_be_bytes());
    p.extend_from_slice(&((field("ssrc") as u32) ^ ssrc_xor).to_be_bytes());
    p.resize(12 + field("payload_len") as usize, 0xFF);
    p
}

#[test]
fn two_asterisk_channels_make_one_stream() {
    let recorded = asterisk_packets();
    assert_eq!(
        recorded.len(),
        12,
        "the fixture records Asterisk's first 12 headers"
    );
    assert!(
        recorded
            .iter()
            .all(|(_, h)| h["payload_type"] == 0 && h["payload_len"] == 160)
    );
    assert_eq!(
        recorded[0].1["marker"], false,
        "Asterisk sends no marker on its first packet"
    );

    let t0 = Timestamp(1_795_295_616_000_000);
    let mut config = StreamConfig::new(Codec::PCMU_20MS);
    config.filler = Filler::None;
    let mut seq = Sequencer::new(config, Ssrc(0x5B0A_4D00), 4242, 99_000, t0)
        .unwrap_or_else(|e| panic!("{e}"));
    for id in [1, 2] {
        seq.add_source(SourceId(id), SourceSpec::new(Codec::PCMU_20MS))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    seq.switch_to(t0, Some(SourceId(1)))
        .unwrap_or_else(|e| panic!("{e}"));

    let mut out = Vec::new();
    // Channel 1 plays its 12 packets; channel 2 (same timing, another SSRC) sends the same
    // shape 300 ms later and becomes active after channel 1's sixth packet.
    let mut events: Vec<(i64, u32, Vec<u8>)> = Vec::new();
    for (t, h) in &recorded {
        events.push((*t, 1, packet(h, 0)));
        events.push((t + 300_000, 2, packet(h, 0x00FF_00FF)));
    }
    events.sort_by_key(|e| e.0);
    let switch_after = recorded[5].0;
    let mut switched = false;
    for (t, src, mut p) in events {
        let now = Timestamp(t0.0 + t);
        if !switched && t > switch_after {
            seq.switch_to(now, Some(SourceId(2)))
                .unwrap_or_else(|e| panic!("{e}"));
            switched = true;
        }
        if seq.rewrite(now, SourceId(src), &mut p) == Verdict::Forward {
            out.push((src, p));
        }
    }
    let h: Vec<(u32, bool, u16, u32, u32)> = out
        .iter()
        .map(|(s, p)| {
            (
                *s,
                p[1] & 0x80 != 0,
                u16::from_be_bytes([p[2], p[3]]),
                u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
                u32::from_be_bytes([p[8], p[9], p[10], p[11]]),
            )
        })
        .collect();
    // Channel 1's first six packets, then channel 2 from the first packet it sends after the
    // switch to its last: 6 + (12 − k) packets, where channel 2's packets before the switch
    // were dropped as inactive.
    assert!(h.iter().all(|x| x.4 == 0x5B0A_4D00), "one SSRC");
    assert_eq!(h[0].2, 4242);
    assert!(h[0].1, "the bridge marks the start of the stream");
    for w in h.windows(2) {
        assert_eq!(w[1].2, w[0].2.wrapping_add(1), "consecutive: {w:?}");
        if w[0].0 == w[1].0 {
            assert_eq!(
                w[1].3.wrapping_sub(w[0].3),
                160,
                "Asterisk's own spacing: {w:?}"
            );
        } else {
            assert!(w[1].1, "marker on the first packet after the switch");
            // 20 ms of wall clock passed between the two packets or less: never less than the
            // 160 ticks the previous packet covers.
            assert!(w[1].3.wrapping_sub(w[0].3) >= 160, "{w:?}");
        }
    }
    assert!(h.iter().filter(|x| x.0 == 1).count() == 6);
    assert!(h.iter().filter(|x| x.0 == 2).count() >= 6);
    assert!(seq.stats().dropped_inactive >= 6);
}
