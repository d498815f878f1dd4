//! The RTP sequencer bridge: one continuous RTP stream per agent, whatever feeds it.
//!
//! An agent who stays on line keeps one audio stream for a whole shift while its source changes:
//! a prompt, customer A on one media handler, hold music, customer B on another. Softphones drop
//! audio, reset jitter buffers or click when the SSRC, the sequence numbers or the timestamps of
//! what they receive jump, so the bridge rewrites every packet's header:
//!
//! - [`Sequencer`] (sans-IO): the rewrite for one agent stream. Packets come in with the time
//!   they arrived; it rewrites them in place, fills gaps between sources with silence or comfort
//!   noise, writes RTCP sender reports and reads the receiver reports that come back. It never
//!   touches a socket or a clock.
//! - [`relay`] (IO): UDP sockets per agent stream and per source, or two per worker shared by
//!   all its streams (told apart by the peers' addresses), batched receive and send, symmetric
//!   RTP, one worker per core, and the control interface the controller drives.
//!
//! Wire behaviour follows RFC 3550 (RTP/RTCP), RFC 3551 (audio profile), RFC 3389 (comfort
//! noise) and RFC 4733 (telephone-events); comments cite the section they encode.
//!
//! ```
//! use switchboard::model::Timestamp;
//! use switchboard::rtp::{Codec, Sequencer, SourceId, SourceSpec, Ssrc, StreamConfig, Verdict};
//!
//! let t0 = Timestamp(1_000_000);
//! let mut agent = Sequencer::new(StreamConfig::new(Codec::PCMU_20MS), Ssrc(7), 100, 0, t0)?;
//! agent.add_source(SourceId(1), SourceSpec::new(Codec::PCMU_20MS))?;
//! agent.switch_to(t0, Some(SourceId(1)))?;
//! // A packet from the source (SSRC 0xAB, sequence 9000) arrives 5 ms later…
//! let mut packet = [0x80, 0, 0x23, 0x28, 0, 0, 0, 0, 0, 0, 0, 0xAB, 0xFF, 0xFF];
//! assert_eq!(agent.rewrite(Timestamp(1_005_000), SourceId(1), &mut packet), Verdict::Forward);
//! // …and leaves as the agent stream's packet 100, SSRC 7, marked as a new talkspurt.
//! assert_eq!(&packet[..4], &[0x80, 0x80, 0, 100]);
//! assert_eq!(&packet[8..12], &[0, 0, 0, 7]);
//! # Ok::<(), switchboard::rtp::RtpError>(())
//! ```

mod rtcp;
mod sequencer;
mod types;

pub mod relay;

pub use rtcp::{NtpTime, ReceptionStats, is_rtcp};
pub use sequencer::{
    DropReason, Filler, MAX_SOURCES, Sequencer, SourceSpec, StreamConfig, StreamStats, Transmit,
    TransmitKind, Verdict,
};
pub use types::{
    Codec, Encoding, MAX_PACKET_TIME, PayloadType, RtpTime, SeqNo, SourceId, Ssrc, StreamId, ticks,
};

/// What the sequencer refuses: bad configuration, unknown sources, a codec that cannot pass
/// through, malformed RTCP.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RtpError {
    /// A payload type number above 127 (the RTP field has 7 bits, RFC 3550 §5.1).
    #[error("payload type {0} does not fit RTP's 7-bit field (0..=127)")]
    BadPayloadType(u8),
    /// A codec description the sequencer cannot pace or time.
    #[error("bad codec: {0}")]
    BadCodec(String),
    /// A stream configuration that contradicts itself.
    #[error("bad stream configuration: {0}")]
    BadConfig(String),
    /// The stream has no source with this id.
    #[error("{0} is not a source of this stream")]
    UnknownSource(SourceId),
    /// A source with this id was already added.
    #[error("{0} was already added to this stream")]
    DuplicateSource(SourceId),
    /// The stream already has as many sources as it may hold.
    #[error("a stream holds at most {max} sources")]
    TooManySources {
        /// The limit.
        max: usize,
    },
    /// Switching to a source whose codec differs from the stream's: packets cannot pass through.
    #[error(
        "{source_id} sends {source_codec} but the agent's stream carries {stream_codec}: \
         the bridge passes payloads through and does not transcode; \
         give the source the agent's codec"
    )]
    CodecMismatch {
        /// The source that was refused.
        source_id: SourceId,
        /// What it sends.
        source_codec: Codec,
        /// What the agent's stream carries.
        stream_codec: Codec,
    },
    /// An RTCP packet that does not parse (RFC 3550 §6).
    #[error("malformed RTCP: {0}")]
    Rtcp(#[from] rtcp_types::RtcpParseError),
    /// An output buffer too small for the packet to be written.
    #[error("output buffer holds {have} bytes, the packet needs {need}")]
    BufferTooSmall {
        /// Bytes needed.
        need: usize,
        /// Bytes available.
        have: usize,
    },
}
