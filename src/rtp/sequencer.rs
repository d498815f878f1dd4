//! The rewrite for one agent stream (sans-IO): packets and time in, rewritten packets out.
//!
//! Per stream the sequencer keeps one output SSRC for life and one output clock: the extended
//! sequence number and timestamp of the last packet it sent, and the wall-clock time it sent
//! it. Each source that becomes active starts an *epoch*: its first packet gets the next output
//! sequence number and a timestamp that advances the output clock by the wall-clock time that
//! passed (never less than the media the previous packet covered). Every later packet of the
//! epoch keeps the source's own spacing through two fixed offsets, so loss and reordering
//! within a source stay visible to the receiver (RFC 3550 §5.1: the sequence number "may be
//! used by the receiver to detect packet loss and to restore packet sequence").

use std::time::Duration;

use rtp_types::RtpPacketMut;

use super::RtpError;
use super::rtcp::{self, NtpTime, ReceptionStats, SenderInfo};
use super::types::{Codec, PayloadType, RtpTime, SeqNo, SourceId, Ssrc, ticks};
use crate::model::Timestamp;

/// Most sources one stream holds at once (bounded memory per stream).
pub const MAX_SOURCES: usize = 16;

/// How far behind the newest packet a reordered packet may arrive and still be forwarded; the
/// bitmap of forwarded packets that detects duplicates has this many bits.
const REORDER_WINDOW: u64 = 64;

/// A step in a source's sequence numbers (either way) larger than this is a restart of its sequence,
/// not loss (RFC 3550 appendix A.1, MAX_DROPOUT).
const MAX_DROPOUT: u64 = 3000;

/// How far a source's timestamps may run ahead of the wall clock between two of its packets
/// before the sequencer takes it as a discontinuity and re-anchors the output clock.
const TIMESTAMP_SLACK: Duration = Duration::from_secs(5);

/// Largest step the output clock takes at once: half of what a 32-bit receiver can still tell
/// from a step backwards (RFC 3550 §5.1 timestamps are compared modulo 2^32).
const MAX_CLOCK_STEP: u64 = 1 << 30;

/// Longest CNAME an SDES item carries (RFC 3550 §6.5: an 8-bit length).
const MAX_CNAME: usize = 255;

/// What the stream sends while no source feeds it, so NAT bindings and the phone's jitter
/// buffer stay warm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Filler {
    /// Nothing: the stream pauses between sources.
    None,
    /// Frames of the codec's silence (G.711 only: RFC 3551 §4.5.14), one per packet time.
    Silence,
    /// RFC 3389 comfort-noise packets, one per packet time, carrying only the noise level.
    ComfortNoise {
        /// Noise level in −dBov (RFC 3389 §3: 0 is the loudest, 127 the quietest).
        level_dbov: u8,
    },
}

/// How one agent stream is rewritten.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamConfig {
    /// The codec and payload type number the agent's phone negotiated.
    pub codec: Codec,
    /// The agent's payload type for RFC 4733 telephone-events, if it takes them.
    pub telephone_event: Option<PayloadType>,
    /// The agent's payload type for RFC 3389 comfort noise, if it takes it.
    pub comfort_noise: Option<PayloadType>,
    /// What to send while no source feeds the stream.
    pub filler: Filler,
    /// Set the marker bit on the first packet after a switch (RFC 3551 §4.1 marks the start of
    /// a talkspurt). Some WebRTC receivers mishandle it: turn it off for them.
    pub marker_on_switch: bool,
    /// An active source silent this long is taken as stalled: the filler takes over and the
    /// source's next packet starts a new epoch.
    pub stall_after: Duration,
    /// Mean interval between RTCP sender reports (RFC 3550 §6.2 recommends at least 5 s);
    /// `None` sends none.
    pub rtcp_interval: Option<Duration>,
    /// The SDES CNAME the sender reports carry (RFC 3550 §6.5.1).
    pub cname: String,
}

impl StreamConfig {
    /// Defaults for a stream of `codec`: telephone-events on PT 101, no comfort noise, silence
    /// filler, marker on switch, stall after 250 ms, sender reports every 5 s.
    pub fn new(codec: Codec) -> Self {
        StreamConfig {
            codec,
            telephone_event: Some(PayloadType::TELEPHONE_EVENT_101),
            comfort_noise: None,
            filler: Filler::Silence,
            marker_on_switch: true,
            stall_after: Duration::from_millis(250),
            rtcp_interval: Some(Duration::from_secs(5)),
            cname: String::from("switchboard"),
        }
    }

    /// Checks the codec and that the filler can be produced for it.
    pub fn validate(&self) -> Result<(), RtpError> {
        self.codec.validate()?;
        match self.filler {
            Filler::None => {}
            Filler::Silence => {
                if self.codec.encoding.silence_byte().is_none() {
                    return Err(RtpError::BadConfig(format!(
                        "filler = silence needs a codec with a silence frame (PCMU, PCMA); {} has \
                         none: use comfort noise or no filler",
                        self.codec.encoding
                    )));
                }
            }
            Filler::ComfortNoise { level_dbov } => {
                if self.comfort_noise.is_none() {
                    return Err(RtpError::BadConfig(
                        "filler = comfort noise needs the agent's comfort-noise payload type \
                         (RFC 3389)"
                            .into(),
                    ));
                }
                if level_dbov > 127 {
                    return Err(RtpError::BadConfig(format!(
                        "comfort noise level {level_dbov} −dBov is outside 0..=127 (RFC 3389 §3)"
                    )));
                }
            }
        }
        if self.stall_after < self.codec.packet_time {
            return Err(RtpError::BadConfig(format!(
                "stall_after {:?} is shorter than the packet time {:?}",
                self.stall_after, self.codec.packet_time
            )));
        }
        if let Some(i) = self.rtcp_interval
            && i < Duration::from_millis(100)
        {
            return Err(RtpError::BadConfig(format!(
                "rtcp_interval {i:?} is below 100 ms"
            )));
        }
        if self.cname.is_empty() || self.cname.len() > MAX_CNAME {
            return Err(RtpError::BadConfig(format!(
                "cname must have 1..={MAX_CNAME} bytes, has {}",
                self.cname.len()
            )));
        }
        Ok(())
    }
}

/// What one source sends: its codec and the payload type numbers its side negotiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceSpec {
    /// The source's codec and its payload type number.
    pub codec: Codec,
    /// The source's payload type for RFC 4733 telephone-events, if it sends them.
    pub telephone_event: Option<PayloadType>,
    /// The source's payload type for RFC 3389 comfort noise, if it sends it.
    pub comfort_noise: Option<PayloadType>,
}

impl SourceSpec {
    /// A source of `codec` that sends telephone-events on PT 101 and comfort noise on PT 13.
    pub fn new(codec: Codec) -> Self {
        SourceSpec {
            codec,
            telephone_event: Some(PayloadType::TELEPHONE_EVENT_101),
            comfort_noise: Some(PayloadType::CN),
        }
    }
}

/// Why a packet was not forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DropReason {
    /// Not an RTP version 2 packet, or truncated (RFC 3550 §5.1).
    Malformed,
    /// From a source this stream does not have.
    UnknownSource,
    /// From a source that is not the active one (late packets after a switch land here).
    Inactive,
    /// A sequence number already forwarded.
    Duplicate,
    /// Reordered further back than the reorder window.
    TooOld,
    /// Would go backwards in output sequence: from before the point where the source's epoch
    /// started (a late packet just after a switch).
    BeforeSwitch,
    /// A payload type the source did not declare, or one the agent's side does not take.
    PayloadType,
}

/// What became of one packet handed to [`Sequencer::rewrite`].
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The packet was rewritten in place: send it to the agent.
    Forward,
    /// The packet must not be sent.
    Drop(DropReason),
}

/// Which kind of datagram [`Sequencer::poll_transmit`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransmitKind {
    /// An RTP filler packet (silence or comfort noise).
    Rtp,
    /// A compound RTCP packet (sender report and CNAME).
    Rtcp,
}

/// A datagram the sequencer wrote into the caller's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    /// RTP or RTCP.
    pub kind: TransmitKind,
    /// Bytes written from the start of the buffer.
    pub len: usize,
}

/// Counters of one stream (monotonic; read them as a snapshot).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// Source packets rewritten and forwarded.
    pub forwarded: u64,
    /// Payload octets of forwarded packets.
    pub forwarded_octets: u64,
    /// Filler packets sent.
    pub filler: u64,
    /// RTP packets sent in all (forwarded + filler), as sender reports count them.
    pub rtp_sent: u64,
    /// Payload octets sent in all (RFC 3550 §6.4.1 sender's octet count).
    pub octets_sent: u64,
    /// Dropped: not RTP or truncated.
    pub dropped_malformed: u64,
    /// Dropped: from an unknown source.
    pub dropped_unknown_source: u64,
    /// Dropped: from a source that was not active.
    pub dropped_inactive: u64,
    /// Dropped: duplicates.
    pub dropped_duplicate: u64,
    /// Dropped: reordered beyond the window.
    pub dropped_too_old: u64,
    /// Dropped: would have gone backwards after a switch.
    pub dropped_before_switch: u64,
    /// Dropped: a payload type that cannot pass.
    pub dropped_payload_type: u64,
    /// Switches of the active source.
    pub switches: u64,
    /// Epochs started (first packets of a source after a switch, a stall or a discontinuity).
    pub epochs: u64,
    /// A source changed its SSRC mid-stream (its next packet started a new epoch).
    pub ssrc_changes: u64,
    /// A source's sequence numbers jumped by more than RFC 3550's MAX_DROPOUT.
    pub seq_jumps: u64,
    /// A source's timestamps went backwards or ran far ahead of the wall clock.
    pub ts_jumps: u64,
    /// The active source went silent for `stall_after` and the filler took over.
    pub stalls: u64,
    /// RTCP sender reports sent.
    pub rtcp_sent: u64,
    /// RTCP packets received from the agent.
    pub rtcp_received: u64,
    /// RTCP packets from the agent that did not parse.
    pub rtcp_malformed: u64,
    /// When the active source last changed.
    pub last_switch: Option<Timestamp>,
    /// What the agent's receiver reports say.
    pub reception: ReceptionStats,
}

impl StreamStats {
    /// All drops, whatever the reason.
    pub fn dropped(&self) -> u64 {
        self.dropped_malformed
            + self.dropped_unknown_source
            + self.dropped_inactive
            + self.dropped_duplicate
            + self.dropped_too_old
            + self.dropped_before_switch
            + self.dropped_payload_type
    }

    fn count_drop(&mut self, reason: DropReason) {
        let c = match reason {
            DropReason::Malformed => &mut self.dropped_malformed,
            DropReason::UnknownSource => &mut self.dropped_unknown_source,
            DropReason::Inactive => &mut self.dropped_inactive,
            DropReason::Duplicate => &mut self.dropped_duplicate,
            DropReason::TooOld => &mut self.dropped_too_old,
            DropReason::BeforeSwitch => &mut self.dropped_before_switch,
            DropReason::PayloadType => &mut self.dropped_payload_type,
        };
        *c += 1;
    }
}

/// One source's mapping onto the output, from its first packet after activation.
#[derive(Debug, Clone, Copy)]
struct Epoch {
    /// Output extended sequence number = input + this (wrapping).
    seq_offset: u64,
    /// Output extended timestamp = input + this (wrapping).
    ts_offset: u64,
    /// Output sequence number of the epoch's first packet: nothing lower may be sent.
    floor: SeqNo,
    /// Highest input sequence number seen.
    in_max: SeqNo,
    /// Input timestamp of that packet.
    in_ts_max: RtpTime,
    /// Bit i set: input `in_max − i` was forwarded.
    window: u64,
    /// When the source's newest packet arrived.
    last_in: Timestamp,
}

#[derive(Debug, Clone)]
struct Source {
    id: SourceId,
    spec: SourceSpec,
    ssrc: Option<Ssrc>,
    epoch: Option<Epoch>,
}

/// The newest packet sent: the output clock.
#[derive(Debug, Clone, Copy)]
struct Last {
    seq: SeqNo,
    ts: RtpTime,
    wall: Timestamp,
}

/// What a payload is to the rewrite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Audio,
    Event,
    ComfortNoise,
}

/// The sans-IO rewrite of one agent stream: one SSRC for life, consecutive sequence numbers
/// and continuous timestamps across source switches, filler between sources, RTCP.
///
/// Drive it with [`rewrite`](Self::rewrite) for every packet from a source,
/// [`handle_rtcp`](Self::handle_rtcp) for RTCP from the agent, and
/// [`poll_transmit`](Self::poll_transmit) whenever [`poll_timeout`](Self::poll_timeout) is due.
#[derive(Debug, Clone)]
pub struct Sequencer {
    config: StreamConfig,
    ssrc: Ssrc,
    sources: Vec<Source>,
    active: Option<SourceId>,
    last: Last,
    /// End of the media the packets sent so far cover: the next epoch starts no earlier.
    media_end: RtpTime,
    next_report: Timestamp,
    rng: u32,
    stats: StreamStats,
}

impl Sequencer {
    /// Smallest buffer [`poll_transmit`](Self::poll_transmit) writes into: an RTP header with
    /// the longest filler frame, or a sender report with the longest CNAME.
    pub const MIN_TRANSMIT_BUFFER: usize = 12 + 960 + 64;

    /// A stream with output SSRC `ssrc` whose first packet will carry sequence number
    /// `first_seq` and a timestamp counted from `first_ts` at `now` (RFC 3550 §5.1: both
    /// should be random).
    pub fn new(
        config: StreamConfig,
        ssrc: Ssrc,
        first_seq: u16,
        first_ts: u32,
        now: Timestamp,
    ) -> Result<Self, RtpError> {
        config.validate()?;
        let first = SeqNo::extend(None, first_seq);
        let ts = RtpTime::extend(None, first_ts);
        let mut seq = Sequencer {
            ssrc,
            sources: Vec::with_capacity(2),
            active: None,
            last: Last {
                seq: SeqNo(first.0 - 1),
                ts,
                wall: now,
            },
            media_end: ts,
            next_report: now,
            rng: ssrc.0 | 1,
            stats: StreamStats::default(),
            config,
        };
        seq.next_report = seq.report_after(now);
        Ok(seq)
    }

    /// The output SSRC (constant for the stream's life).
    pub fn ssrc(&self) -> Ssrc {
        self.ssrc
    }

    /// The stream's configuration.
    pub fn config(&self) -> &StreamConfig {
        &self.config
    }

    /// The active source, if any.
    pub fn active(&self) -> Option<SourceId> {
        self.active
    }

    /// The sources, in the order they were added.
    pub fn sources(&self) -> impl Iterator<Item = SourceId> + '_ {
        self.sources.iter().map(|s| s.id)
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> StreamStats {
        self.stats
    }

    /// The sequence number the next packet sent will carry.
    pub fn next_seq(&self) -> u16 {
        (self.last.seq.0 + 1) as u16
    }

    /// Adds a source (inactive until [`switch_to`](Self::switch_to) names it). Its codec is
    /// checked at switch time.
    pub fn add_source(&mut self, id: SourceId, spec: SourceSpec) -> Result<(), RtpError> {
        if self.sources.iter().any(|s| s.id == id) {
            return Err(RtpError::DuplicateSource(id));
        }
        if self.sources.len() >= MAX_SOURCES {
            return Err(RtpError::TooManySources { max: MAX_SOURCES });
        }
        spec.codec.validate()?;
        self.sources.push(Source {
            id,
            spec,
            ssrc: None,
            epoch: None,
        });
        Ok(())
    }

    /// Removes a source; if it was active the stream falls back to filler.
    pub fn remove_source(&mut self, id: SourceId) -> Result<SourceSpec, RtpError> {
        let idx = self.index(id)?;
        if self.active == Some(id) {
            self.active = None;
        }
        Ok(self.sources.swap_remove(idx).spec)
    }

    /// Makes `to` the active source (or none). Takes effect with the next packet: the new
    /// source's first packet starts an epoch; the old source's packets are dropped from now on.
    /// Refused when the source's codec is not the stream's.
    pub fn switch_to(&mut self, now: Timestamp, to: Option<SourceId>) -> Result<(), RtpError> {
        if self.active == to {
            return Ok(());
        }
        if let Some(id) = to {
            let idx = self.index(id)?;
            let src = &mut self.sources[idx];
            if !src.spec.codec.same_media(&self.config.codec) {
                return Err(RtpError::CodecMismatch {
                    source_id: id,
                    source_codec: src.spec.codec,
                    stream_codec: self.config.codec,
                });
            }
            src.epoch = None;
        }
        if let Some(old) = self.active
            && let Ok(idx) = self.index(old)
        {
            self.sources[idx].epoch = None;
        }
        self.active = to;
        self.stats.switches += 1;
        self.stats.last_switch = Some(now);
        Ok(())
    }

    fn index(&self, id: SourceId) -> Result<usize, RtpError> {
        self.sources
            .iter()
            .position(|s| s.id == id)
            .ok_or(RtpError::UnknownSource(id))
    }

    /// Rewrites one packet from `source` that arrived at `now`, in place: SSRC, sequence
    /// number, timestamp, payload type and marker bit. Header extensions, CSRCs, payload and
    /// padding are left as they are. Never panics, whatever the bytes.
    pub fn rewrite(&mut self, now: Timestamp, source: SourceId, packet: &mut [u8]) -> Verdict {
        match self.rewrite_inner(now, source, packet) {
            Ok(()) => Verdict::Forward,
            Err(reason) => {
                self.stats.count_drop(reason);
                Verdict::Drop(reason)
            }
        }
    }

    fn rewrite_inner(
        &mut self,
        now: Timestamp,
        source: SourceId,
        packet: &mut [u8],
    ) -> Result<(), DropReason> {
        let Sequencer {
            config,
            ssrc,
            sources,
            active,
            last,
            media_end,
            stats,
            ..
        } = self;
        let src = sources
            .iter_mut()
            .find(|s| s.id == source)
            .ok_or(DropReason::UnknownSource)?;
        let mut pkt = RtpPacketMut::parse(packet).map_err(|_| DropReason::Malformed)?;
        if *active != Some(source) {
            return Err(DropReason::Inactive);
        }

        // Payload type: the source's numbers map onto the agent's (RFC 3551 §3: dynamic
        // numbers are per session, so the same codec may carry different numbers).
        let pt = pkt.payload_type();
        let (out_pt, kind) = if pt == src.spec.codec.payload_type.get() {
            (config.codec.payload_type, Kind::Audio)
        } else if Some(pt) == src.spec.telephone_event.map(PayloadType::get) {
            (
                config.telephone_event.ok_or(DropReason::PayloadType)?,
                Kind::Event,
            )
        } else if Some(pt) == src.spec.comfort_noise.map(PayloadType::get) {
            (
                config.comfort_noise.ok_or(DropReason::PayloadType)?,
                Kind::ComfortNoise,
            )
        } else {
            return Err(DropReason::PayloadType);
        };

        // A new SSRC from the same source is a new stream (RFC 3550 §8.2): new epoch.
        let in_ssrc = Ssrc(pkt.ssrc());
        if src.ssrc != Some(in_ssrc) {
            if src.ssrc.is_some() {
                stats.ssrc_changes += 1;
                src.epoch = None;
            }
            src.ssrc = Some(in_ssrc);
        }

        let clock_rate = config.codec.clock_rate;
        let anchor_ts = |last: &Last, media_end: RtpTime| -> RtpTime {
            let step = ticks(now.since(last.wall), clock_rate).min(MAX_CLOCK_STEP);
            RtpTime(last.ts.0.saturating_add(step).max(media_end.0))
        };
        let wire_seq = pkt.sequence_number();
        let wire_ts = pkt.timestamp();
        let mut marker = pkt.marker_bit();
        let mut new_epoch = src.epoch.is_none();

        if let Some(e) = src.epoch.as_mut() {
            let in_seq = SeqNo::extend(Some(e.in_max), wire_seq);
            if in_seq > e.in_max {
                let step = in_seq.0 - e.in_max.0;
                if step > MAX_DROPOUT {
                    // The source restarted its numbering: continue after the last packet sent.
                    stats.seq_jumps += 1;
                    new_epoch = true;
                } else {
                    let in_ts = RtpTime::extend(Some(e.in_ts_max), wire_ts);
                    let allowed = ticks(now.since(e.last_in) + TIMESTAMP_SLACK, clock_rate);
                    e.window = if step >= REORDER_WINDOW {
                        1
                    } else {
                        (e.window << step) | 1
                    };
                    e.in_max = in_seq;
                    if in_ts < e.in_ts_max || in_ts.0 - e.in_ts_max.0 > allowed {
                        // Timestamps went backwards for a newer packet, or ran far ahead of the
                        // wall clock: re-anchor the clock here, keep the sequence numbering, and
                        // let nothing from before this point through (its timestamps belong to
                        // the old mapping).
                        stats.ts_jumps += 1;
                        let out_ts = anchor_ts(last, *media_end);
                        e.ts_offset = out_ts.0.wrapping_sub(in_ts.0);
                        e.floor = SeqNo(in_seq.0.wrapping_add(e.seq_offset));
                        e.window = 1;
                        marker = true;
                    }
                    e.in_ts_max = in_ts;
                    e.last_in = now;
                }
            } else if e.in_max.0 - in_seq.0 > MAX_DROPOUT {
                // Far behind is no late packet (it would be a minute old): the source restarted
                // its numbering lower, as after a re-INVITE. Continue after the last packet sent.
                stats.seq_jumps += 1;
                new_epoch = true;
            } else {
                let back = e.in_max.0 - in_seq.0;
                if back >= REORDER_WINDOW {
                    return Err(DropReason::TooOld);
                }
                let bit = 1u64 << back;
                if e.window & bit != 0 {
                    return Err(DropReason::Duplicate);
                }
                if SeqNo(in_seq.0.wrapping_add(e.seq_offset)) < e.floor {
                    return Err(DropReason::BeforeSwitch);
                }
                e.window |= bit;
            }
        }

        if new_epoch {
            // First packet of an epoch: the next sequence number, and a timestamp that advances
            // the output clock by the wall-clock time since the last packet sent.
            let in_seq = SeqNo::extend(None, wire_seq);
            let in_ts = RtpTime::extend(None, wire_ts);
            let out_seq = SeqNo(last.seq.0 + 1);
            let out_ts = anchor_ts(last, *media_end);
            src.epoch = Some(Epoch {
                seq_offset: out_seq.0.wrapping_sub(in_seq.0),
                ts_offset: out_ts.0.wrapping_sub(in_ts.0),
                floor: out_seq,
                in_max: in_seq,
                in_ts_max: in_ts,
                window: 1,
                last_in: now,
            });
            stats.epochs += 1;
            marker |= config.marker_on_switch;
        }

        let Some(e) = src.epoch else {
            return Err(DropReason::Malformed);
        };
        let in_seq = SeqNo::extend(Some(e.in_max), wire_seq);
        let in_ts = RtpTime::extend(Some(e.in_ts_max), wire_ts);
        let out_seq = SeqNo(in_seq.0.wrapping_add(e.seq_offset));
        let out_ts = RtpTime(in_ts.0.wrapping_add(e.ts_offset));

        pkt.set_ssrc(ssrc.0);
        pkt.set_sequence_number(out_seq.wire());
        pkt.set_timestamp(out_ts.wire());
        // PayloadType holds 0..=127 only, which set_payload_type accepts.
        let _ = pkt.set_payload_type(out_pt.get());
        pkt.set_marker_bit(marker);

        // RFC 4733 §2.3: an event packet's timestamp is the event's start and its duration
        // field (bytes 2–3) how long it has lasted; the media it covers ends there.
        let covers = match kind {
            Kind::Event => pkt
                .payload()
                .get(2..4)
                .map(|d| u64::from(u16::from_be_bytes([d[0], d[1]])))
                .unwrap_or(0),
            Kind::Audio | Kind::ComfortNoise => config.codec.ticks_per_packet(),
        };
        *media_end = RtpTime(media_end.0.max(out_ts.0.wrapping_add(covers)));
        if out_seq > last.seq {
            *last = Last {
                seq: out_seq,
                ts: out_ts,
                wall: now,
            };
        }
        let octets = pkt.payload_len() as u64;
        stats.forwarded += 1;
        stats.forwarded_octets += octets;
        stats.rtp_sent += 1;
        stats.octets_sent += octets;
        Ok(())
    }

    /// When [`poll_transmit`](Self::poll_transmit) next has something to send: filler while no
    /// source flows, or a sender report.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        match (self.filler_due(), self.report_due()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn active_epoch(&self) -> Option<&Epoch> {
        let id = self.active?;
        self.sources
            .iter()
            .find(|s| s.id == id)
            .and_then(|s| s.epoch.as_ref())
    }

    fn filler_due(&self) -> Option<Timestamp> {
        if self.config.filler == Filler::None {
            return None;
        }
        Some(match self.active_epoch() {
            Some(e) => e.last_in.plus(self.config.stall_after),
            None => self.last.wall.plus(self.config.codec.packet_time),
        })
    }

    fn report_due(&self) -> Option<Timestamp> {
        (self.config.rtcp_interval.is_some() && self.stats.rtp_sent > 0).then_some(self.next_report)
    }

    /// The next report time after `now`: the interval randomized over [0.5, 1.5] of itself
    /// (RFC 3550 §6.3.1, so that streams created together do not report together).
    fn report_after(&mut self, now: Timestamp) -> Timestamp {
        let Some(interval) = self.config.rtcp_interval else {
            return Timestamp::MAX;
        };
        // xorshift32: deterministic per SSRC, no clock or global RNG inside the core.
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.rng = x;
        let micros = interval.as_micros() as u64;
        let jittered = micros / 2 + (u64::from(x) % micros.max(1));
        now.plus(Duration::from_micros(jittered))
    }

    /// Writes the next due datagram into `buf` (filler RTP first, then an RTCP sender report)
    /// and returns what it wrote; `Ok(None)` when nothing is due at `now`. Call until `None`.
    pub fn poll_transmit(
        &mut self,
        now: Timestamp,
        buf: &mut [u8],
    ) -> Result<Option<Transmit>, RtpError> {
        if let Some(due) = self.filler_due()
            && now >= due
        {
            return self.write_filler(now, due, buf).map(Some);
        }
        if let Some(due) = self.report_due()
            && now >= due
        {
            return self.write_report(now, buf).map(Some);
        }
        Ok(None)
    }

    fn write_filler(
        &mut self,
        now: Timestamp,
        due: Timestamp,
        buf: &mut [u8],
    ) -> Result<Transmit, RtpError> {
        let ptime = self.config.codec.packet_time;
        let per_packet = self.config.codec.ticks_per_packet();
        let (pt, payload_len, fill) = match self.config.filler {
            Filler::Silence => (
                self.config.codec.payload_type,
                per_packet as usize,
                self.config.codec.encoding.silence_byte().unwrap_or(0),
            ),
            Filler::ComfortNoise { level_dbov } => (
                self.config.comfort_noise.unwrap_or(PayloadType::CN),
                1,
                level_dbov & 0x7F,
            ),
            Filler::None => return Err(RtpError::BadConfig("no filler configured".into())),
        };
        let need = 12 + payload_len;
        if buf.len() < need {
            return Err(RtpError::BufferTooSmall {
                need,
                have: buf.len(),
            });
        }
        // The active source stalled: its next packet starts a new epoch.
        if let Some(id) = self.active
            && let Some(src) = self.sources.iter_mut().find(|s| s.id == id)
            && src.epoch.take().is_some()
        {
            self.stats.stalls += 1;
        }
        // Filler runs on a grid of packet times from the last packet sent; if the caller was
        // late by more than a packet time, it restarts from now rather than bursting.
        let at = if now.since(due) < ptime { due } else { now };
        let step =
            ticks(at.since(self.last.wall), self.config.codec.clock_rate).clamp(1, MAX_CLOCK_STEP);
        let seq = SeqNo(self.last.seq.0 + 1);
        let ts = RtpTime(self.last.ts.0.saturating_add(step).max(self.media_end.0));
        // RFC 3550 §5.1 fixed header: V=2, no padding, no extension, no CSRC, M=0.
        buf[0] = 0x80;
        buf[1] = pt.get();
        buf[2..4].copy_from_slice(&seq.wire().to_be_bytes());
        buf[4..8].copy_from_slice(&ts.wire().to_be_bytes());
        buf[8..12].copy_from_slice(&self.ssrc.0.to_be_bytes());
        // Silence: the codec's zero-level byte for every sample. Comfort noise: one byte, the
        // noise level in −dBov, no spectral parameters (RFC 3389 §3).
        buf[12..need].fill(fill);
        self.last = Last { seq, ts, wall: at };
        self.media_end = ts.plus(per_packet);
        self.stats.filler += 1;
        self.stats.rtp_sent += 1;
        self.stats.octets_sent += payload_len as u64;
        Ok(Transmit {
            kind: TransmitKind::Rtp,
            len: need,
        })
    }

    fn write_report(&mut self, now: Timestamp, buf: &mut [u8]) -> Result<Transmit, RtpError> {
        // RFC 3550 §6.4.1: the RTP timestamp "corresponds to the same time as the NTP
        // timestamp", in the units and offset of the data packets: the output clock
        // extrapolated from the last packet sent to now.
        let elapsed =
            ticks(now.since(self.last.wall), self.config.codec.clock_rate).min(MAX_CLOCK_STEP);
        let info = SenderInfo {
            ssrc: self.ssrc,
            ntp: NtpTime::from_timestamp(now),
            rtp_time: self.last.ts.plus(elapsed).wire(),
            // Both counts wrap modulo 2^32 on the wire (RFC 3550 §6.4.1).
            packets: self.stats.rtp_sent as u32,
            octets: self.stats.octets_sent as u32,
        };
        let len = rtcp::write_sender_report(&info, &self.config.cname, buf)?;
        self.next_report = self.report_after(now);
        self.stats.rtcp_sent += 1;
        Ok(Transmit {
            kind: TransmitKind::Rtcp,
            len,
        })
    }

    /// Reads an RTCP compound packet the agent sent (receiver reports about this stream feed
    /// [`StreamStats::reception`]). Returns how many report blocks were about this stream.
    pub fn handle_rtcp(&mut self, now: Timestamp, datagram: &[u8]) -> Result<usize, RtpError> {
        self.stats.rtcp_received += 1;
        let result = rtcp::read_reports(
            datagram,
            self.ssrc,
            now,
            self.config.codec.clock_rate,
            &mut self.stats.reception,
        );
        if result.is_err() {
            self.stats.rtcp_malformed += 1;
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Timestamp = Timestamp(1_000_000_000);

    fn ms(n: i64) -> Timestamp {
        Timestamp(T0.0 + n * 1000)
    }

    fn rtp(pt: u8, seq: u16, ts: u32, ssrc: u32, marker: bool) -> Vec<u8> {
        let mut p = vec![0u8; 12 + 160];
        p[0] = 0x80;
        p[1] = pt | if marker { 0x80 } else { 0 };
        p[2..4].copy_from_slice(&seq.to_be_bytes());
        p[4..8].copy_from_slice(&ts.to_be_bytes());
        p[8..12].copy_from_slice(&ssrc.to_be_bytes());
        p
    }

    fn header(p: &[u8]) -> (bool, u8, u16, u32, u32) {
        (
            p[1] & 0x80 != 0,
            p[1] & 0x7F,
            u16::from_be_bytes([p[2], p[3]]),
            u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
            u32::from_be_bytes([p[8], p[9], p[10], p[11]]),
        )
    }

    fn stream() -> Sequencer {
        let mut cfg = StreamConfig::new(Codec::PCMU_20MS);
        cfg.filler = Filler::None;
        let mut s = Sequencer::new(cfg, Ssrc(0xABCD), 1000, 5000, T0).unwrap_or_else(|e| {
            panic!("{e}");
        });
        for id in [1, 2] {
            assert!(
                s.add_source(SourceId(id), SourceSpec::new(Codec::PCMU_20MS))
                    .is_ok()
            );
        }
        s
    }

    #[test]
    fn switch_continues_sequence_and_clock() {
        let mut s = stream();
        assert!(s.switch_to(T0, Some(SourceId(1))).is_ok());
        let mut out = vec![];
        for i in 0..3u16 {
            let mut p = rtp(0, 60_000 + i, 160 * u32::from(i), 7, false);
            assert_eq!(
                s.rewrite(ms(20 * i64::from(i)), SourceId(1), &mut p),
                Verdict::Forward
            );
            out.push(header(&p));
        }
        assert!(s.switch_to(ms(50), Some(SourceId(2))).is_ok());
        // A late packet of the old source is dropped.
        let mut late = rtp(0, 60_003, 480, 7, false);
        assert_eq!(
            s.rewrite(ms(55), SourceId(1), &mut late),
            Verdict::Drop(DropReason::Inactive)
        );
        for i in 0..2u16 {
            let mut p = rtp(0, 5 + i, 9_999_000 + 160 * u32::from(i), 9, false);
            assert_eq!(
                s.rewrite(ms(100 + 20 * i64::from(i)), SourceId(2), &mut p),
                Verdict::Forward
            );
            out.push(header(&p));
        }
        let seqs: Vec<u16> = out.iter().map(|h| h.2).collect();
        assert_eq!(seqs, vec![1000, 1001, 1002, 1003, 1004]);
        assert!(out.iter().all(|h| h.4 == 0xABCD));
        // First packet: marker (epoch start); source 2's first: marker and the clock advanced by
        // the 60 ms of wall time since source 1's last packet (480 ticks).
        assert!(out[0].0 && !out[1].0 && out[3].0 && !out[4].0);
        assert_eq!(out[3].3.wrapping_sub(out[2].3), 480);
        assert_eq!(out[4].3.wrapping_sub(out[3].3), 160);
    }

    #[test]
    fn loss_and_reordering_within_a_source_stay_visible() {
        let mut s = stream();
        assert!(s.switch_to(T0, Some(SourceId(1))).is_ok());
        let mut seqs = vec![];
        for (i, n) in [0u16, 1, 3, 2, 2, 5].into_iter().enumerate() {
            let mut p = rtp(0, 65_534u16.wrapping_add(n), 160 * u32::from(n), 7, false);
            match s.rewrite(ms(20 * i as i64), SourceId(1), &mut p) {
                Verdict::Forward => seqs.push(header(&p).2),
                Verdict::Drop(r) => assert_eq!(r, DropReason::Duplicate),
            }
        }
        assert_eq!(seqs, vec![1000, 1001, 1003, 1002, 1005]);
        assert_eq!(s.stats().dropped_duplicate, 1);
    }

    #[test]
    fn late_packet_from_before_the_switch_point_is_dropped() {
        let mut s = stream();
        assert!(s.switch_to(T0, Some(SourceId(1))).is_ok());
        let mut p = rtp(0, 10, 1600, 7, false);
        assert_eq!(s.rewrite(T0, SourceId(1), &mut p), Verdict::Forward);
        let mut before = rtp(0, 9, 1440, 7, false);
        assert_eq!(
            s.rewrite(ms(1), SourceId(1), &mut before),
            Verdict::Drop(DropReason::BeforeSwitch)
        );
        assert_eq!(s.stats().dropped_before_switch, 1);
    }

    #[test]
    fn other_codec_is_refused_at_switch_time() {
        let mut s = stream();
        assert!(
            s.add_source(SourceId(3), SourceSpec::new(Codec::PCMA_20MS))
                .is_ok()
        );
        let err = s
            .switch_to(T0, Some(SourceId(3)))
            .err()
            .map(|e| e.to_string());
        let msg = err.unwrap_or_default();
        assert!(
            msg.contains("PCMA") && msg.contains("PCMU") && msg.contains("source#3"),
            "{msg}"
        );
        assert_eq!(s.active(), None);
    }

    #[test]
    fn garbage_is_dropped_not_a_panic() {
        let mut s = stream();
        assert!(s.switch_to(T0, Some(SourceId(1))).is_ok());
        for bad in [&mut [][..], &mut [0x80u8; 5][..], &mut [0x40u8; 20][..]] {
            assert_eq!(
                s.rewrite(T0, SourceId(1), bad),
                Verdict::Drop(DropReason::Malformed)
            );
        }
        let mut p = rtp(0, 1, 1, 1, false);
        assert_eq!(
            s.rewrite(T0, SourceId(9), &mut p),
            Verdict::Drop(DropReason::UnknownSource)
        );
    }

    #[test]
    fn silence_filler_runs_on_the_packet_grid_between_sources() {
        let mut cfg = StreamConfig::new(Codec::PCMU_20MS);
        cfg.rtcp_interval = None;
        let mut s = Sequencer::new(cfg, Ssrc(1), 0, 0, T0).unwrap_or_else(|e| panic!("{e}"));
        let mut buf = [0u8; Sequencer::MIN_TRANSMIT_BUFFER];
        assert_eq!(s.poll_timeout(), Some(ms(20)));
        assert_eq!(s.poll_transmit(ms(19), &mut buf).ok(), Some(None));
        let mut got = vec![];
        for t in [20, 41, 60, 200] {
            if let Ok(Some(tx)) = s.poll_transmit(ms(t), &mut buf) {
                assert_eq!(tx.len, 172);
                assert!(buf[12..172].iter().all(|b| *b == 0xFF));
                got.push(header(&buf));
            }
        }
        let seqs: Vec<u16> = got.iter().map(|h| h.2).collect();
        let tss: Vec<u32> = got.iter().map(|h| h.3).collect();
        assert_eq!(seqs, vec![0, 1, 2, 3]);
        // 20, 40 (41 is within a packet time of the grid), 60, then late: restart at 200.
        assert_eq!(tss, vec![160, 320, 480, 1600]);
    }

    #[test]
    fn telephone_events_are_renumbered_and_keep_one_timestamp_per_event() {
        let mut s = stream();
        let mut spec = SourceSpec::new(Codec::PCMU_20MS);
        spec.telephone_event = PayloadType::new(96).ok();
        assert!(s.add_source(SourceId(3), spec).is_ok());
        assert!(s.switch_to(T0, Some(SourceId(3))).is_ok());
        let mut p = rtp(0, 1, 0, 9, false);
        assert_eq!(s.rewrite(T0, SourceId(3), &mut p), Verdict::Forward);
        let mut ts = vec![];
        for (i, d) in [160u16, 320, 480].into_iter().enumerate() {
            // RFC 4733 §2.3: event 1, end bit on the last, duration so far.
            let mut e = rtp(96, 2 + i as u16, 160, 9, i == 0);
            e.truncate(12);
            e.extend_from_slice(&[1, if i == 2 { 0x8A } else { 0x0A }, (d >> 8) as u8, d as u8]);
            assert_eq!(
                s.rewrite(ms(20 + 20 * i as i64), SourceId(3), &mut e),
                Verdict::Forward
            );
            let h = header(&e);
            assert_eq!(h.1, 101, "the agent's telephone-event number");
            ts.push(h.3);
        }
        assert!(ts.iter().all(|t| *t == ts[0]), "{ts:?}");
        // A switch right after the event: the next source starts after the event's end.
        assert!(s.switch_to(ms(70), Some(SourceId(1))).is_ok());
        let mut q = rtp(0, 500, 0, 7, false);
        assert_eq!(s.rewrite(ms(70), SourceId(1), &mut q), Verdict::Forward);
        assert!(header(&q).3.wrapping_sub(ts[0]) >= 480);
    }

    #[test]
    fn comfort_noise_passes_only_when_the_agent_takes_it() {
        let mut s = stream();
        assert!(s.switch_to(T0, Some(SourceId(1))).is_ok());
        let mut cn = rtp(13, 1, 0, 7, false);
        assert_eq!(
            s.rewrite(T0, SourceId(1), &mut cn),
            Verdict::Drop(DropReason::PayloadType)
        );
        let mut cfg = StreamConfig::new(Codec::PCMU_20MS);
        cfg.comfort_noise = PayloadType::new(13).ok();
        cfg.filler = Filler::ComfortNoise { level_dbov: 70 };
        cfg.rtcp_interval = None;
        let mut s = Sequencer::new(cfg, Ssrc(2), 0, 0, T0).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            s.add_source(SourceId(1), SourceSpec::new(Codec::PCMU_20MS))
                .is_ok()
        );
        let mut buf = [0u8; Sequencer::MIN_TRANSMIT_BUFFER];
        let tx = s.poll_transmit(ms(20), &mut buf).ok().flatten();
        assert_eq!(
            tx.map(|t| t.len),
            Some(13),
            "RFC 3389: header and a level byte"
        );
        assert_eq!((header(&buf).1, buf[12]), (13, 70));
        assert!(s.switch_to(ms(25), Some(SourceId(1))).is_ok());
        let mut cn = rtp(13, 1, 0, 7, false);
        assert_eq!(s.rewrite(ms(30), SourceId(1), &mut cn), Verdict::Forward);
        assert_eq!(header(&cn).2, 1);
    }

    #[test]
    fn a_new_ssrc_or_a_restarted_sequence_starts_a_new_epoch() {
        let mut s = stream();
        assert!(s.switch_to(T0, Some(SourceId(1))).is_ok());
        let mut seqs = vec![];
        for (t, seq, ts, ssrc) in [
            (0, 10u16, 0u32, 7u32),
            (20, 11, 160, 7),
            (40, 5000, 99_999, 8), // a re-INVITE gave the leg a new SSRC
            (60, 5001, 100_159, 8),
            (80, 40_000, 100_319, 8), // sequence restart beyond MAX_DROPOUT
        ] {
            let mut p = rtp(0, seq, ts, ssrc, false);
            assert_eq!(s.rewrite(ms(t), SourceId(1), &mut p), Verdict::Forward);
            seqs.push((header(&p).2, header(&p).0));
        }
        let out: Vec<u16> = seqs.iter().map(|x| x.0).collect();
        assert_eq!(out, vec![1000, 1001, 1002, 1003, 1004]);
        let marks: Vec<bool> = seqs.iter().map(|x| x.1).collect();
        assert_eq!(marks, vec![true, false, true, false, true]);
        let st = s.stats();
        assert_eq!((st.ssrc_changes, st.seq_jumps, st.epochs), (1, 1, 3));
    }

    #[test]
    fn timestamps_that_go_backwards_are_re_anchored() {
        let mut s = stream();
        assert!(s.switch_to(T0, Some(SourceId(1))).is_ok());
        let mut out = vec![];
        for (t, seq, ts) in [
            (0, 1u16, 8000u32),
            (20, 2, 8160),
            (40, 3, 100),
            (60, 4, 260),
        ] {
            let mut p = rtp(0, seq, ts, 7, false);
            assert_eq!(s.rewrite(ms(t), SourceId(1), &mut p), Verdict::Forward);
            out.push(header(&p).3);
        }
        assert!(
            out.windows(2).all(|w| w[1].wrapping_sub(w[0]) as i32 > 0),
            "{out:?}"
        );
        assert_eq!(
            out[3].wrapping_sub(out[2]),
            160,
            "spacing kept after the jump"
        );
        assert_eq!(s.stats().ts_jumps, 1);
        // The packet before the jump point may not come back with the new mapping.
        let mut late = rtp(0, 2, 8160, 7, false);
        assert_eq!(
            s.rewrite(ms(70), SourceId(1), &mut late),
            Verdict::Drop(DropReason::BeforeSwitch)
        );
    }

    #[test]
    fn a_stalled_source_hands_over_to_filler_and_resumes_with_a_marker() {
        let mut cfg = StreamConfig::new(Codec::PCMU_20MS);
        cfg.rtcp_interval = None;
        let mut s = Sequencer::new(cfg, Ssrc(3), 0, 0, T0).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            s.add_source(SourceId(1), SourceSpec::new(Codec::PCMU_20MS))
                .is_ok()
        );
        assert!(s.switch_to(T0, Some(SourceId(1))).is_ok());
        let mut p = rtp(0, 1, 0, 7, false);
        assert_eq!(s.rewrite(T0, SourceId(1), &mut p), Verdict::Forward);
        assert_eq!(s.poll_timeout(), Some(ms(250)));
        let mut buf = [0u8; Sequencer::MIN_TRANSMIT_BUFFER];
        assert!(matches!(s.poll_transmit(ms(250), &mut buf), Ok(Some(_))));
        assert_eq!(header(&buf).2, 1);
        assert_eq!(s.stats().stalls, 1);
        assert_eq!(s.poll_timeout(), Some(ms(270)));
        let mut q = rtp(0, 2, 160, 7, false);
        assert_eq!(s.rewrite(ms(260), SourceId(1), &mut q), Verdict::Forward);
        assert_eq!(header(&q).2, 2);
        assert!(header(&q).0);
        assert!(header(&q).3 >= header(&buf).3 + 160);
    }

    #[test]
    fn sender_report_agrees_with_the_output_clock() {
        let mut cfg = StreamConfig::new(Codec::PCMU_20MS);
        cfg.filler = Filler::None;
        let mut s = Sequencer::new(cfg, Ssrc(5), 0, 0, T0).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            s.add_source(SourceId(1), SourceSpec::new(Codec::PCMU_20MS))
                .is_ok()
        );
        assert!(s.switch_to(T0, Some(SourceId(1))).is_ok());
        assert_eq!(s.poll_timeout(), None, "no report before anything was sent");
        let mut p = rtp(0, 1, 0, 7, false);
        assert_eq!(s.rewrite(T0, SourceId(1), &mut p), Verdict::Forward);
        let due = s.poll_timeout().unwrap_or(Timestamp::MAX);
        assert!(due >= ms(2500) && due <= ms(7500), "{due:?}");
        let mut buf = [0u8; Sequencer::MIN_TRANSMIT_BUFFER];
        let tx = s.poll_transmit(due, &mut buf).ok().flatten();
        assert_eq!(tx.map(|t| t.kind), Some(TransmitKind::Rtcp));
        let len = tx.map(|t| t.len).unwrap_or(0);
        let rtp_time = u32::from_be_bytes([buf[16], buf[17], buf[18], buf[19]]);
        let elapsed_ticks = (due.0 - T0.0) as u64 * 8000 / 1_000_000;
        assert_eq!(u64::from(rtp_time), elapsed_ticks);
        assert!(rtcp::is_rtcp(&buf[..len]));
    }
}
