//! Newtype ids, extended (wrap-free) RTP counters and codec descriptions.
//!
//! RTP's sequence numbers (16 bits) and timestamps (32 bits) wrap. The sequencer never compares
//! wrapped values: each one is extended at the edge to a 64-bit counter relative to the highest
//! value seen so far, the way RFC 3550 appendix A.1 extends sequence numbers with a cycle count.

use std::fmt;
use std::time::Duration;

use super::RtpError;

/// A synchronization source identifier (RFC 3550 §5.1): names one RTP stream on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ssrc(pub u32);

impl fmt::Display for Ssrc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ssrc:{:08x}", self.0)
    }
}

/// One agent's output stream in the relay (the stream keeps its [`Ssrc`] for life).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId(pub u32);

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stream#{}", self.0)
    }
}

/// One source of an agent stream: a media handler leg, a prompt, hold music.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SourceId(pub u32);

impl fmt::Display for SourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "source#{}", self.0)
    }
}

/// An RTP payload type number, 0–127 (RFC 3550 §5.1; static ones in RFC 3551 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PayloadType(u8);

impl PayloadType {
    /// PCMU (G.711 μ-law), static (RFC 3551 §6).
    pub const PCMU: PayloadType = PayloadType(0);
    /// PCMA (G.711 A-law), static (RFC 3551 §6).
    pub const PCMA: PayloadType = PayloadType(8);
    /// G.722, static (RFC 3551 §6).
    pub const G722: PayloadType = PayloadType(9);
    /// Comfort noise, static (RFC 3389 §4).
    pub const CN: PayloadType = PayloadType(13);
    /// G.729, static (RFC 3551 §6).
    pub const G729: PayloadType = PayloadType(18);
    /// The dynamic number Asterisk and FreeSWITCH give RFC 4733 telephone-events by default.
    pub const TELEPHONE_EVENT_101: PayloadType = PayloadType(101);

    /// A payload type number; anything above 127 does not fit the 7-bit field.
    pub fn new(pt: u8) -> Result<Self, RtpError> {
        if pt > 127 {
            return Err(RtpError::BadPayloadType(pt));
        }
        Ok(PayloadType(pt))
    }

    /// The 7-bit value.
    #[inline]
    pub fn get(self) -> u8 {
        self.0
    }
}

impl fmt::Display for PayloadType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PT {}", self.0)
    }
}

/// The first extended value: one full cycle above zero, so that a packet from just before the
/// first one (reordering across the very first packet) still extends to a positive number.
const SEQ_BASE: u64 = 1 << 16;
const TS_BASE: u64 = 1 << 32;

/// A sequence number extended to 64 bits (RFC 3550 A.1: cycle count × 2^16 + sequence number).
/// The wire carries only its low 16 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeqNo(pub u64);

impl SeqNo {
    /// Extends a 16-bit wire value next to `max`, the highest extended value seen so far (or
    /// `None` for the first packet): the result is the extended value closest to `max`, so a
    /// step of less than half the sequence space in either direction is read correctly across a
    /// wrap of the 16-bit counter.
    #[inline]
    pub fn extend(max: Option<SeqNo>, wire: u16) -> SeqNo {
        match max {
            None => SeqNo(SEQ_BASE + u64::from(wire)),
            Some(max) => {
                let diff = wire.wrapping_sub(max.0 as u16) as i16;
                SeqNo(max.0.wrapping_add_signed(i64::from(diff)))
            }
        }
    }

    /// The low 16 bits, as written on the wire.
    #[inline]
    pub fn wire(self) -> u16 {
        self.0 as u16
    }
}

impl fmt::Display for SeqNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "seq:{}", self.0)
    }
}

/// An RTP timestamp extended to 64 bits, in the codec's clock rate. The wire carries its low
/// 32 bits (RFC 3550 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RtpTime(pub u64);

impl RtpTime {
    /// Extends a 32-bit wire timestamp next to `max`, the highest extended timestamp seen (or
    /// `None` for the first packet): the closest extended value, so steps of less than 2^31
    /// ticks in either direction survive a wrap of the 32-bit counter.
    #[inline]
    pub fn extend(max: Option<RtpTime>, wire: u32) -> RtpTime {
        match max {
            None => RtpTime(TS_BASE + u64::from(wire)),
            Some(max) => {
                let diff = wire.wrapping_sub(max.0 as u32) as i32;
                RtpTime(max.0.wrapping_add_signed(i64::from(diff)))
            }
        }
    }

    /// The low 32 bits, as written on the wire.
    #[inline]
    pub fn wire(self) -> u32 {
        self.0 as u32
    }

    /// This time plus `ticks`.
    #[inline]
    pub fn plus(self, ticks: u64) -> RtpTime {
        RtpTime(self.0.wrapping_add(ticks))
    }
}

/// What a codec's payload is, independent of the payload type number that names it in one SDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Encoding {
    /// G.711 μ-law (RFC 3551 §4.5.14).
    Pcmu,
    /// G.711 A-law (RFC 3551 §4.5.14).
    Pcma,
    /// G.722 (RFC 3551 §4.5.2; its RTP clock runs at 8000 Hz although it samples at 16 kHz).
    G722,
    /// G.729 (RFC 3551 §4.5.6).
    G729,
    /// Opus (RFC 7587; its RTP clock is always 48000 Hz).
    Opus,
}

impl Encoding {
    /// The encoding name as SDP writes it (`a=rtpmap`).
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Pcmu => "PCMU",
            Encoding::Pcma => "PCMA",
            Encoding::G722 => "G722",
            Encoding::G729 => "G729",
            Encoding::Opus => "opus",
        }
    }

    /// One byte that encodes silence, repeated for every sample, where the codec has one:
    /// G.711 μ-law 0xFF and A-law 0xD5 (ITU-T G.711 table 1/2, the codes for zero level).
    pub fn silence_byte(self) -> Option<u8> {
        match self {
            Encoding::Pcmu => Some(0xFF),
            Encoding::Pcma => Some(0xD5),
            _ => None,
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Longest packet time the sequencer accepts (RFC 3551 §4.5 keeps audio frames short; 120 ms
/// bounds the filler packet at 960 G.711 bytes).
pub const MAX_PACKET_TIME: Duration = Duration::from_millis(120);

/// A codec as one side negotiated it: encoding, payload type number, clock rate, packet time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Codec {
    /// What the payload is.
    pub encoding: Encoding,
    /// The number that names it on this side's wire.
    pub payload_type: PayloadType,
    /// RTP timestamp ticks per second.
    pub clock_rate: u32,
    /// Media time per packet (`a=ptime`), which paces filler packets.
    pub packet_time: Duration,
}

impl Codec {
    /// G.711 μ-law, PT 0, 8000 Hz, 20 ms: what Asterisk's externalMedia (`format=ulaw`) sends.
    pub const PCMU_20MS: Codec = Codec {
        encoding: Encoding::Pcmu,
        payload_type: PayloadType::PCMU,
        clock_rate: 8000,
        packet_time: Duration::from_millis(20),
    };

    /// G.711 A-law, PT 8, 8000 Hz, 20 ms.
    pub const PCMA_20MS: Codec = Codec {
        encoding: Encoding::Pcma,
        payload_type: PayloadType::PCMA,
        clock_rate: 8000,
        packet_time: Duration::from_millis(20),
    };

    /// Whether two sides carry the same media, so packets pass through without transcoding
    /// (payload type numbers may differ: the sequencer renumbers them).
    pub fn same_media(&self, other: &Codec) -> bool {
        self.encoding == other.encoding && self.clock_rate == other.clock_rate
    }

    /// RTP clock ticks in one packet time.
    pub fn ticks_per_packet(&self) -> u64 {
        ticks(self.packet_time, self.clock_rate)
    }

    /// Checks the values a sequencer relies on.
    pub fn validate(&self) -> Result<(), RtpError> {
        if self.clock_rate == 0 || self.clock_rate > 192_000 {
            return Err(RtpError::BadCodec(format!(
                "{} clock rate {} Hz is outside 1..=192000",
                self.encoding, self.clock_rate
            )));
        }
        if self.packet_time.is_zero() || self.packet_time > MAX_PACKET_TIME {
            return Err(RtpError::BadCodec(format!(
                "{} packet time {:?} is outside (0, {:?}]",
                self.encoding, self.packet_time, MAX_PACKET_TIME
            )));
        }
        if self.ticks_per_packet() == 0 {
            return Err(RtpError::BadCodec(format!(
                "{} packet time {:?} is less than one tick of {} Hz",
                self.encoding, self.packet_time, self.clock_rate
            )));
        }
        Ok(())
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{} ({}, {} ms)",
            self.encoding,
            self.clock_rate,
            self.payload_type,
            self.packet_time.as_millis()
        )
    }
}

/// Clock ticks in `d` at `rate` Hz, rounded down (saturating far beyond any real duration).
#[inline]
pub fn ticks(d: Duration, rate: u32) -> u64 {
    let t = d.as_micros().saturating_mul(u128::from(rate)) / 1_000_000;
    u64::try_from(t).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_extends_forward_across_the_16_bit_wrap() {
        let a = SeqNo::extend(None, 65534);
        let b = SeqNo::extend(Some(a), 65535);
        let c = SeqNo::extend(Some(b), 0);
        let d = SeqNo::extend(Some(c), 1);
        assert_eq!(b.0, a.0 + 1);
        assert_eq!(c.0, a.0 + 2);
        assert_eq!(d.0, a.0 + 3);
        assert_eq!(d.wire(), 1);
    }

    #[test]
    fn seq_extends_backward_across_the_16_bit_wrap() {
        let max = SeqNo::extend(None, 2);
        let late = SeqNo::extend(Some(max), 65533);
        assert_eq!(late.0, max.0 - 5);
        assert_eq!(late.wire(), 65533);
    }

    #[test]
    fn seq_extension_is_exact_for_steps_up_to_half_the_space() {
        let max = SeqNo::extend(None, 40_000);
        assert_eq!(
            SeqNo::extend(Some(max), 40_000u16.wrapping_add(32_767)).0,
            max.0 + 32_767
        );
        assert_eq!(SeqNo::extend(Some(max), 40_000 - 32_768).0, max.0 - 32_768);
    }

    #[test]
    fn timestamps_extend_across_the_32_bit_wrap_both_ways() {
        let a = RtpTime::extend(None, u32::MAX - 100);
        let b = RtpTime::extend(Some(a), 59);
        assert_eq!(b.0, a.0 + 160);
        let back = RtpTime::extend(Some(b), u32::MAX - 260);
        assert_eq!(back.0, a.0 - 160);
        assert_eq!(b.wire(), 59);
    }

    #[test]
    fn payload_type_refuses_eight_bits() {
        assert!(PayloadType::new(128).is_err());
        assert_eq!(PayloadType::new(101).map(PayloadType::get).ok(), Some(101));
    }

    #[test]
    fn ticks_round_down_and_saturate() {
        assert_eq!(ticks(Duration::from_millis(20), 8000), 160);
        assert_eq!(ticks(Duration::from_micros(20_124), 8000), 160);
        assert_eq!(ticks(Duration::MAX, 48_000), u64::MAX);
    }

    #[test]
    fn codec_validation_names_the_problem() {
        let mut c = Codec::PCMU_20MS;
        c.packet_time = Duration::from_millis(500);
        let err = c
            .validate()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("packet time"), "{err}");
        c.packet_time = Duration::from_millis(20);
        c.clock_rate = 0;
        assert!(c.validate().is_err());
        assert!(Codec::PCMA_20MS.validate().is_ok());
    }
}
