//! Datagrams from outside into the RTP sequencer: any bytes, from any source, as RTP from a
//! media handler or RTCP from an agent's phone, interleaved with switches and timers, are
//! rewritten or dropped — never a panic — and whatever goes out keeps the stream's SSRC, with
//! sequence numbers that never repeat.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use switchboard::model::Timestamp;
use switchboard::rtp::{
    Codec, Filler, RtpTime, SeqNo, Sequencer, SourceId, SourceSpec, Ssrc, StreamConfig,
    TransmitKind, Verdict, is_rtcp,
};

const SSRC: u32 = 0xF022_F022;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, mut rest)) = data.split_first() else {
        return;
    };
    let mut config = StreamConfig::new(Codec::PCMU_20MS);
    config.filler = match flags & 3 {
        0 => Filler::None,
        1 => Filler::Silence,
        _ => {
            config.comfort_noise = switchboard::rtp::PayloadType::new(13).ok();
            Filler::ComfortNoise { level_dbov: 80 }
        }
    };
    config.marker_on_switch = flags & 4 != 0;
    let mut now = Timestamp(1_800_000_000_000_000);
    let Ok(mut seq) = Sequencer::new(config, Ssrc(SSRC), 65_500, u32::MAX - 1000, now) else {
        return;
    };
    for id in 0..3 {
        let codec = if id == 2 {
            Codec::PCMA_20MS
        } else {
            Codec::PCMU_20MS
        };
        let _ = seq.add_source(SourceId(id), SourceSpec::new(codec));
    }
    let _ = seq.switch_to(now, Some(SourceId(0)));

    let mut sent = HashSet::new();
    let mut max_seq: Option<SeqNo> = None;
    let mut max_ts: Option<RtpTime> = None;
    let mut out = vec![0u8; Sequencer::MIN_TRANSMIT_BUFFER];
    let mut check = |p: &[u8]| {
        assert_eq!(u32::from_be_bytes([p[8], p[9], p[10], p[11]]), SSRC);
        let s = SeqNo::extend(max_seq, u16::from_be_bytes([p[2], p[3]]));
        let t = RtpTime::extend(max_ts, u32::from_be_bytes([p[4], p[5], p[6], p[7]]));
        assert!(sent.insert(s), "sequence number {s} sent twice");
        if max_seq.is_none_or(|m| s > m) {
            max_seq = Some(s);
            max_ts = Some(t);
        }
    };

    // Records: [op, advance_ms, len, bytes…].
    while let [op, advance, len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let (chunk, next) = tail.split_at(n);
        rest = next;
        now = now.plus(std::time::Duration::from_millis(u64::from(*advance)));
        match op % 8 {
            0..=3 => {
                let mut packet = chunk.to_vec();
                let source = SourceId(u32::from(op % 4 % 3));
                if seq.rewrite(now, source, &mut packet) == Verdict::Forward {
                    check(&packet);
                }
            }
            4 => {
                let to = chunk.first().map(|b| SourceId(u32::from(b % 4)));
                let _ = seq.switch_to(now, to.filter(|s| s.0 < 3));
            }
            5 => {
                let _ = seq.handle_rtcp(now, chunk);
            }
            6 => {
                if let Some(b) = chunk.first() {
                    let _ = seq.remove_source(SourceId(u32::from(b % 3)));
                    let _ = seq.add_source(
                        SourceId(u32::from(b % 3)),
                        SourceSpec::new(Codec::PCMU_20MS),
                    );
                }
            }
            _ => {}
        }
        while let Ok(Some(tx)) = seq.poll_transmit(now, &mut out) {
            match tx.kind {
                TransmitKind::Rtp => check(&out[..tx.len]),
                TransmitKind::Rtcp => assert!(is_rtcp(&out[..tx.len])),
            }
        }
    }
});
