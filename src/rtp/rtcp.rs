//! RTCP for one output stream (RFC 3550 §6): sender reports out, receiver reports in.

use rtcp_types::{
    Compound, Packet, ReportBlock, RtcpPacketWriterExt, Sdes, SdesChunk, SdesItem, SenderReport,
};

use super::{RtpError, Ssrc};
use crate::model::Timestamp;

/// Seconds from the NTP epoch (1900-01-01) to the Unix epoch (RFC 868, RFC 5905 §6).
const NTP_UNIX_OFFSET_SECS: u64 = 2_208_988_800;

/// A 64-bit NTP timestamp: seconds since 1900 in the high half, a binary fraction in the low
/// half (RFC 3550 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NtpTime(pub u64);

impl NtpTime {
    /// The NTP time of a wall-clock instant (instants before 1970 map to the Unix epoch).
    pub fn from_timestamp(t: Timestamp) -> NtpTime {
        let micros = u64::try_from(t.as_micros()).unwrap_or(0);
        let secs = micros / 1_000_000 + NTP_UNIX_OFFSET_SECS;
        let frac = ((micros % 1_000_000) << 32) / 1_000_000;
        NtpTime((secs << 32) | frac)
    }

    /// The middle 32 bits, as receiver reports echo them in LSR (RFC 3550 §6.4.1).
    pub fn middle(self) -> u32 {
        (self.0 >> 16) as u32
    }
}

/// What the agent's phone reports about the stream it receives (RFC 3550 §6.4.1 report
/// blocks), plus the round-trip time worked out from LSR and DLSR.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReceptionStats {
    /// Report blocks about this stream read so far.
    pub reports: u64,
    /// Fraction of packets lost since the previous report, in 1/256 (8-bit fixed point).
    pub fraction_lost: u8,
    /// Packets lost since reception began (24-bit signed on the wire; duplicates can make it
    /// negative).
    pub cumulative_lost: i32,
    /// Highest sequence number received, extended with the receiver's cycle count.
    pub highest_seq: u32,
    /// Interarrival jitter in RTP timestamp units.
    pub jitter: u32,
    /// Interarrival jitter in microseconds (at the stream's clock rate).
    pub jitter_us: u64,
    /// Round-trip time from the last report that echoed one of our sender reports.
    pub rtt_us: Option<u64>,
}

impl ReceptionStats {
    /// Takes in one report block about our SSRC, received at `now`.
    pub(crate) fn update(&mut self, block: &ReportBlock<'_>, now: Timestamp, clock_rate: u32) {
        self.reports += 1;
        self.fraction_lost = block.fraction_lost();
        // 24-bit two's complement (RFC 3550 §6.4.1 "cumulative number of packets lost").
        let raw = block.cumulative_lost() & 0x00FF_FFFF;
        self.cumulative_lost = ((raw << 8) as i32) >> 8;
        self.highest_seq = block.extended_sequence_number();
        self.jitter = block.interarrival_jitter();
        self.jitter_us = u64::from(self.jitter) * 1_000_000 / u64::from(clock_rate.max(1));
        let lsr = block.last_sender_report_timestamp();
        let dlsr = block.delay_since_last_sender_report_timestamp();
        if lsr != 0 {
            // RTT = A − LSR − DLSR, all in 1/65536 s (RFC 3550 §6.4.1, figure 2).
            let a = NtpTime::from_timestamp(now).middle();
            let rtt = a.wrapping_sub(lsr).wrapping_sub(dlsr);
            // A reply from before the report it echoes is garbage; ignore it.
            if rtt < 0x8000_0000 {
                self.rtt_us = Some(u64::from(rtt) * 1_000_000 / 65_536);
            }
        }
    }
}

/// The fields of one sender report (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SenderInfo {
    pub ssrc: Ssrc,
    pub ntp: NtpTime,
    pub rtp_time: u32,
    pub packets: u32,
    pub octets: u32,
}

/// Writes a compound packet, SR then SDES with the CNAME (RFC 3550 §6.1: every compound packet
/// starts with a report and carries a CNAME), into `buf`; returns its length.
pub(crate) fn write_sender_report(
    info: &SenderInfo,
    cname: &str,
    buf: &mut [u8],
) -> Result<usize, RtpError> {
    let sr = SenderReport::builder(info.ssrc.0)
        .ntp_timestamp(info.ntp.0)
        .rtp_timestamp(info.rtp_time)
        .packet_count(info.packets)
        .octet_count(info.octets);
    let sdes = Sdes::builder().add_chunk(
        SdesChunk::builder(info.ssrc.0).add_item(SdesItem::builder(SdesItem::CNAME, cname)),
    );
    let compound = Compound::builder().add_packet(sr).add_packet(sdes);
    compound.write_into(buf).map_err(|e| match e {
        rtcp_types::RtcpWriteError::OutputTooSmall(need) => RtpError::BufferTooSmall {
            need,
            have: buf.len(),
        },
        other => RtpError::BadConfig(format!("sender report: {other}")),
    })
}

/// Reads a compound RTCP packet from the agent and feeds every report block about `ours` to
/// `stats`. Returns how many blocks were about us.
pub(crate) fn read_reports(
    data: &[u8],
    ours: Ssrc,
    now: Timestamp,
    clock_rate: u32,
    stats: &mut ReceptionStats,
) -> Result<usize, RtpError> {
    let mut n = 0;
    for packet in Compound::parse(data)? {
        match packet? {
            Packet::Rr(rr) => {
                for block in rr.report_blocks().filter(|b| b.ssrc() == ours.0) {
                    stats.update(&block, now, clock_rate);
                    n += 1;
                }
            }
            Packet::Sr(sr) => {
                for block in sr.report_blocks().filter(|b| b.ssrc() == ours.0) {
                    stats.update(&block, now, clock_rate);
                    n += 1;
                }
            }
            _ => {}
        }
    }
    Ok(n)
}

/// True when a datagram on an RTP port is RTCP: the second byte is an RTCP packet type
/// 192–223 (RFC 5761 §4, multiplexing RTP and RTCP on one port).
#[inline]
pub fn is_rtcp(datagram: &[u8]) -> bool {
    datagram.len() >= 2 && (192..=223).contains(&datagram[1])
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtcp_types::{ReceiverReport, RtcpPacketParser};

    #[test]
    fn ntp_time_of_the_unix_epoch_and_a_half_second() {
        let t = NtpTime::from_timestamp(Timestamp(1_500_000));
        assert_eq!(t.0 >> 32, NTP_UNIX_OFFSET_SECS + 1);
        assert_eq!(t.0 & 0xFFFF_FFFF, 1 << 31);
    }

    #[test]
    fn sender_report_round_trips_through_rtcp_types() {
        let info = SenderInfo {
            ssrc: Ssrc(0x1234_5678),
            ntp: NtpTime(0xAABB_CCDD_1122_3344),
            rtp_time: 160_000,
            packets: 1000,
            octets: 160_000,
        };
        let mut buf = [0u8; 256];
        let len = write_sender_report(&info, "agent@switchboard", &mut buf).unwrap_or(0);
        assert!(len > 28);
        let mut saw_sr = false;
        for p in Compound::parse(&buf[..len]).into_iter().flatten().flatten() {
            if let Packet::Sr(sr) = p {
                saw_sr = true;
                assert_eq!(sr.ssrc(), 0x1234_5678);
                assert_eq!(sr.ntp_timestamp(), 0xAABB_CCDD_1122_3344);
                assert_eq!(sr.rtp_timestamp(), 160_000);
                assert_eq!(sr.packet_count(), 1000);
                assert_eq!(sr.octet_count(), 160_000);
            }
        }
        assert!(saw_sr);
        assert!(is_rtcp(&buf[..len]));
        let mut small = [0u8; 8];
        assert!(matches!(
            write_sender_report(&info, "x", &mut small),
            Err(RtpError::BufferTooSmall { .. })
        ));
    }

    #[test]
    fn receiver_report_about_us_is_read_and_others_ignored() {
        let sent = Timestamp(10_000_000);
        let lsr = NtpTime::from_timestamp(sent).middle();
        let rr = ReceiverReport::builder(99)
            .add_report_block(
                ReportBlock::builder(7)
                    .fraction_lost(64)
                    .cumulative_lost(0x00FF_FFFE) // −2 in 24 bits
                    .extended_sequence_number(70_000)
                    .interarrival_jitter(80)
                    .last_sender_report_timestamp(lsr)
                    .delay_since_last_sender_report_timestamp(65_536 / 10), // 100 ms
            )
            .add_report_block(ReportBlock::builder(8).fraction_lost(255));
        let mut buf = [0u8; 128];
        let len = rr.write_into(&mut buf).unwrap_or(0);
        assert!(rtcp_types::ReceiverReport::parse(&buf[..len]).is_ok());
        let mut stats = ReceptionStats::default();
        let n = read_reports(
            &buf[..len],
            Ssrc(7),
            Timestamp(10_150_000),
            8000,
            &mut stats,
        );
        assert_eq!(n.ok(), Some(1));
        assert_eq!(stats.fraction_lost, 64);
        assert_eq!(stats.cumulative_lost, -2);
        assert_eq!(stats.highest_seq, 70_000);
        assert_eq!(stats.jitter_us, 10_000);
        let rtt = stats.rtt_us.unwrap_or(0);
        assert!((49_000..=51_000).contains(&rtt), "rtt {rtt}");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut stats = ReceptionStats::default();
        for bad in [&[][..], &[0x80, 201, 0xFF, 0xFF][..], &[0x00; 3][..]] {
            assert!(read_reports(bad, Ssrc(1), Timestamp(0), 8000, &mut stats).is_err());
        }
    }
}
