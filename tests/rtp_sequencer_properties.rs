//! Property tests of the sans-IO rewrite: for any sequence of source switches, input loss,
//! reordering, duplication, telephone-events, stalls and 16-/32-bit wrap-around, what the agent
//! receives has one SSRC, sequence numbers that continue +1 across every switch and filler
//! packet, timestamps that never go backwards (in sequence order), and within one source's run
//! the source's own gaps and order (loss and reordering stay visible).

use proptest::prelude::*;
use std::collections::HashSet;
use std::time::Duration;

use switchboard::model::Timestamp;
use switchboard::rtp::{
    Codec, Filler, PayloadType, RtpTime, SeqNo, Sequencer, SourceId, SourceSpec, Ssrc,
    StreamConfig, TransmitKind, Verdict,
};

const T0: i64 = 1_700_000_000_000_000;
const SOURCES: usize = 3;

#[derive(Debug, Clone)]
enum Op {
    /// The source's next packet, perhaps lost, duplicated or held back behind the next one.
    Send {
        src: usize,
        lose: bool,
        dup: bool,
        hold: bool,
    },
    /// An RFC 4733 event of three packets (same timestamp, growing duration).
    Event { src: usize },
    /// Switch the active source (or to none).
    Switch(Option<usize>),
    /// Time passes with nothing from any source.
    Idle(u16),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (0..SOURCES, prop::bool::weighted(0.08), prop::bool::weighted(0.05), prop::bool::weighted(0.05))
            .prop_map(|(src, lose, dup, hold)| Op::Send { src, lose, dup, hold }),
        1 => (0..SOURCES).prop_map(|src| Op::Event { src }),
        2 => prop::option::weighted(0.85, 0..SOURCES).prop_map(Op::Switch),
        1 => (1u16..400).prop_map(Op::Idle),
    ]
}

#[derive(Debug, Clone)]
struct Src {
    ssrc: u32,
    seq: u16,
    ts: u32,
    held: Option<Vec<u8>>,
}

fn packet(pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(12 + payload.len());
    p.extend_from_slice(&[0x80, pt]);
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// One packet as the agent saw it, plus what the harness knows about where it came from.
#[derive(Debug, Clone)]
struct Seen {
    seq: SeqNo,
    ts: RtpTime,
    ssrc: u32,
}

struct Agent {
    seen: Vec<Seen>,
    max_seq: Option<SeqNo>,
    max_ts: Option<RtpTime>,
}

impl Agent {
    fn take(&mut self, p: &[u8]) -> Seen {
        let seq = u16::from_be_bytes([p[2], p[3]]);
        let ts = u32::from_be_bytes([p[4], p[5], p[6], p[7]]);
        let ssrc = u32::from_be_bytes([p[8], p[9], p[10], p[11]]);
        let seq = SeqNo::extend(self.max_seq, seq);
        let ts = RtpTime::extend(self.max_ts, ts);
        if self.max_seq.is_none_or(|m| seq > m) {
            self.max_seq = Some(seq);
            self.max_ts = Some(ts);
        }
        let s = Seen { seq, ts, ssrc };
        self.seen.push(s.clone());
        s
    }
}

struct Run {
    seq: Sequencer,
    agent: Agent,
    now: i64,
    /// Set by a switch or a filler packet: the next packet the agent sees must be max + 1.
    expect_next: bool,
    /// Extended input → output sequence mapping of the current run of one source.
    run_offset: Option<(usize, u64, i128)>,
    in_ext: [Option<SeqNo>; SOURCES],
    failures: Vec<String>,
}

impl Run {
    fn now(&self) -> Timestamp {
        Timestamp(self.now)
    }

    fn check_next(&mut self, seen: &Seen, prev_max: Option<SeqNo>) {
        if self.expect_next
            && let Some(m) = prev_max
            && seen.seq.0 != m.0 + 1
        {
            self.failures.push(format!(
                "after a switch/filler expected seq {} got {}",
                m.0 + 1,
                seen.seq.0
            ));
        }
        self.expect_next = false;
    }

    fn poll(&mut self) {
        let mut buf = [0u8; Sequencer::MIN_TRANSMIT_BUFFER];
        while let Ok(Some(tx)) = self.seq.poll_transmit(self.now(), &mut buf) {
            if tx.kind == TransmitKind::Rtp {
                let prev = self.agent.max_seq;
                self.expect_next = true;
                let seen = self.agent.take(&buf[..tx.len]);
                self.check_next(&seen, prev);
                // A filler packet may end the active source's epoch (stall).
                self.run_offset = None;
                self.expect_next = true;
            }
        }
    }

    fn deliver(&mut self, src: usize, mut p: Vec<u8>) {
        let wire = u16::from_be_bytes([p[2], p[3]]);
        let ext = SeqNo::extend(self.in_ext[src], wire);
        if self.in_ext[src].is_none_or(|m| ext > m) {
            self.in_ext[src] = Some(ext);
        }
        let prev = self.agent.max_seq;
        if self.seq.rewrite(self.now(), SourceId(src as u32), &mut p) == Verdict::Forward {
            let seen = self.agent.take(&p);
            self.check_next(&seen, prev);
            let offset = i128::from(seen.seq.0) - i128::from(ext.0);
            let marker = p[1] & 0x80 != 0;
            match self.run_offset {
                Some((s, _, o)) if s == src && !marker => {
                    if o != offset {
                        self.failures.push(format!(
                            "within one run of source {src}: offset {o} became {offset}"
                        ));
                    }
                }
                _ => self.run_offset = Some((src, ext.0, offset)),
            }
        }
    }
}

fn run(
    ops: &[Op],
    starts: &[(u32, u16, u32); SOURCES],
    out_seq: u16,
    out_ts: u32,
    filler: bool,
) -> Run {
    let mut cfg = StreamConfig::new(Codec::PCMU_20MS);
    cfg.filler = if filler {
        Filler::Silence
    } else {
        Filler::None
    };
    cfg.rtcp_interval = Some(Duration::from_secs(1));
    let mut seq = match Sequencer::new(cfg, Ssrc(0x5EED), out_seq, out_ts, Timestamp(T0)) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    let mut srcs: Vec<Src> = Vec::new();
    for (i, (ssrc, s, ts)) in starts.iter().enumerate() {
        let mut spec = SourceSpec::new(Codec::PCMU_20MS);
        // Source 2 numbers telephone-events 96: the agent's 101 replaces it.
        if i == 2 {
            spec.telephone_event = PayloadType::new(96).ok();
        }
        assert!(seq.add_source(SourceId(i as u32), spec).is_ok());
        srcs.push(Src {
            ssrc: *ssrc,
            seq: *s,
            ts: *ts,
            held: None,
        });
    }
    let mut r = Run {
        seq,
        agent: Agent {
            seen: vec![],
            max_seq: None,
            max_ts: None,
        },
        now: T0,
        expect_next: true,
        run_offset: None,
        in_ext: [None; SOURCES],
        failures: vec![],
    };
    for op in ops {
        match *op {
            Op::Send {
                src,
                lose,
                dup,
                hold,
            } => {
                r.now += 20_000;
                r.poll();
                let s = &mut srcs[src];
                let p = packet(0, s.seq, s.ts, s.ssrc, &[0x7F; 160]);
                s.seq = s.seq.wrapping_add(1);
                s.ts = s.ts.wrapping_add(160);
                let held = s.held.take();
                if lose {
                    // lost on the way
                } else if hold && held.is_none() {
                    s.held = Some(p);
                } else {
                    r.deliver(src, p.clone());
                    if dup {
                        r.deliver(src, p);
                    }
                }
                if let Some(h) = held {
                    r.deliver(src, h);
                }
            }
            Op::Event { src } => {
                let s = &mut srcs[src];
                let pt = if src == 2 { 96 } else { 101 };
                let start = s.ts;
                let mut pkts = vec![];
                for (i, d) in [160u16, 320, 480].into_iter().enumerate() {
                    let end = if i == 2 { 0x80 } else { 0 };
                    let payload = [5u8, end | 10, (d >> 8) as u8, d as u8];
                    pkts.push(packet(pt, s.seq, start, s.ssrc, &payload));
                    s.seq = s.seq.wrapping_add(1);
                }
                s.ts = s.ts.wrapping_add(480);
                for p in pkts {
                    r.now += 20_000;
                    r.poll();
                    r.deliver(src, p);
                }
            }
            Op::Switch(to) => {
                let to = to.map(|i| SourceId(i as u32));
                // Switching to the active source changes nothing.
                if r.seq.active() != to && r.seq.switch_to(r.now(), to).is_ok() {
                    r.expect_next = true;
                    r.run_offset = None;
                }
            }
            Op::Idle(ms) => {
                r.now += i64::from(ms) * 1000;
                r.poll();
            }
        }
    }
    r
}

fn check(r: &Run) -> Result<(), TestCaseError> {
    prop_assert!(r.failures.is_empty(), "{:?}", r.failures);
    let mut seqs = HashSet::new();
    for s in &r.agent.seen {
        prop_assert_eq!(s.ssrc, 0x5EED, "SSRC changed");
        prop_assert!(
            seqs.insert(s.seq),
            "output sequence number {} sent twice",
            s.seq
        );
    }
    // Timestamps never go backwards in sequence order (RFC 3550 §5.1: they increase with
    // sampling time; telephone-event packets of one event repeat theirs).
    let mut sorted = r.agent.seen.clone();
    sorted.sort_by_key(|s| s.seq);
    for w in sorted.windows(2) {
        prop_assert!(
            w[1].ts >= w[0].ts,
            "timestamp went backwards: {:?} then {:?}",
            w[0],
            w[1]
        );
    }
    Ok(())
}

fn starts() -> impl Strategy<Value = [(u32, u16, u32); SOURCES]> {
    // Sequence numbers and timestamps near their wrap points half of the time.
    let seq = prop_oneof![Just(65_500u16), any::<u16>()];
    let ts = prop_oneof![Just(u32::MAX - 3_000), any::<u32>()];
    [
        (any::<u32>(), seq.clone(), ts.clone()),
        (any::<u32>(), seq.clone(), ts.clone()),
        (any::<u32>(), seq, ts),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn output_is_one_continuous_stream(
        ops in prop::collection::vec(op(), 1..400),
        starts in starts(),
        out_seq in prop_oneof![Just(65_530u16), any::<u16>()],
        out_ts in prop_oneof![Just(u32::MAX - 500), any::<u32>()],
        filler in any::<bool>(),
    ) {
        let r = run(&ops, &starts, out_seq, out_ts, filler);
        check(&r)?;
    }

    #[test]
    fn without_loss_or_reordering_sequence_numbers_are_exactly_consecutive(
        ops in prop::collection::vec(op(), 1..300),
        starts in starts(),
        out_seq in any::<u16>(),
        filler in any::<bool>(),
    ) {
        let clean: Vec<Op> = ops
            .into_iter()
            .map(|o| match o {
                Op::Send { src, dup, .. } => Op::Send { src, lose: false, dup, hold: false },
                o => o,
            })
            .collect();
        let r = run(&clean, &starts, out_seq, 0, filler);
        check(&r)?;
        for w in r.agent.seen.windows(2) {
            prop_assert_eq!(w[1].seq.0, w[0].seq.0 + 1, "gap or step back in {:?}", w);
        }
    }
}

#[test]
fn three_hours_of_switching_wrap_both_counters() {
    // 20 ms packets for 3 hours (540,000 packets, 8 sequence wraps) switching source every
    // 3 seconds; a 32-bit timestamp wraps after 6.2 days at 8 kHz, so everything starts near it.
    const HOURS: u64 = 3;
    let mut ops = Vec::new();
    for i in 0..(HOURS as usize * 3600 / 3) {
        ops.push(Op::Switch(Some(i % SOURCES)));
        for _ in 0..150 {
            ops.push(Op::Send {
                src: i % SOURCES,
                lose: false,
                dup: false,
                hold: false,
            });
        }
    }
    let starts = [
        (1, 65_000, u32::MAX - 1000),
        (2, 10, 5),
        (3, 40_000, 1 << 31),
    ];
    let r = run(&ops, &starts, 65_535, u32::MAX - 200, false);
    assert!(
        r.failures.is_empty(),
        "{:?}",
        &r.failures[..r.failures.len().min(5)]
    );
    let n = r.agent.seen.len();
    assert_eq!(n as u64, HOURS * 3600 * 50);
    let first = &r.agent.seen[0];
    let last = &r.agent.seen[n - 1];
    assert_eq!(last.seq.0 - first.seq.0, n as u64 - 1);
    // Output time advanced by the wall-clock time, in 8 kHz ticks (one packet time short: the
    // last packet starts 20 ms before the run ends).
    assert_eq!(last.ts.0 - first.ts.0, HOURS * 3600 * 8000 - 160);
    for w in r.agent.seen.windows(2) {
        assert_eq!(w[1].seq.0, w[0].seq.0 + 1);
        assert!(w[1].ts > w[0].ts);
    }
}
