//! The codec's one error type: what went wrong and where (a byte offset in the stream).

use thiserror::Error;

/// A frame, event or command the codec cannot read or write. Offsets count bytes from the
/// start of the stream a [`Decoder`](super::Decoder) was fed (or from the start of the buffer
/// given to [`check`](super::check) / [`Frame::parse`](super::Frame::parse)).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodecError {
    /// No blank line ended the header block within the header limit.
    #[error("header block starting at byte {offset} has no blank line within {limit} bytes")]
    HeaderBlockTooLong {
        /// Where the frame starts.
        offset: u64,
        /// The configured header block limit.
        limit: usize,
    },
    /// Content-Length announces a body larger than the body limit.
    #[error(
        "frame at byte {offset}: Content-Length {length} is over the body limit of {limit} bytes"
    )]
    BodyTooLong {
        /// Where the frame starts.
        offset: u64,
        /// The announced length.
        length: u64,
        /// The configured body limit.
        limit: usize,
    },
    /// Content-Length is not a decimal number.
    #[error("frame at byte {offset}: Content-Length {value:?} at byte {at} is not a number")]
    BadContentLength {
        /// Where the frame starts.
        offset: u64,
        /// Where the value starts.
        at: u64,
        /// The value as received (cut to 40 characters).
        value: String,
    },
    /// Two Content-Length headers disagree (a body could be framed two ways).
    #[error("frame at byte {offset}: two Content-Length headers disagree ({first} and {second})")]
    ConflictingContentLength {
        /// Where the frame starts.
        offset: u64,
        /// The first value.
        first: u64,
        /// The second value.
        second: u64,
    },
    /// A content type that always carries a body came without Content-Length.
    #[error("frame at byte {offset}: {content_type} without Content-Length")]
    MissingContentLength {
        /// Where the frame starts.
        offset: u64,
        /// The frame's content type.
        content_type: String,
    },
    /// The header block has no Content-Type (FreeSWITCH sends one in every frame).
    #[error("frame at byte {offset}: no Content-Type header")]
    MissingContentType {
        /// Where the frame starts.
        offset: u64,
    },
    /// A header line without a colon, or with an empty name.
    #[error("malformed header line at byte {offset}: {line:?}")]
    MalformedHeader {
        /// Where the line starts.
        offset: u64,
        /// The line (cut to 60 characters).
        line: String,
    },
    /// Bytes that must be text are not UTF-8.
    #[error("invalid UTF-8 in {what} at byte {offset}")]
    InvalidUtf8 {
        /// Where the first invalid byte is.
        offset: u64,
        /// What was being read ("header block", "event headers", ...).
        what: &'static str,
    },
    /// A whole frame was expected but the bytes end before it does.
    #[error("frame at byte {offset} is incomplete: {needed} more bytes needed")]
    Incomplete {
        /// Where the frame starts.
        offset: u64,
        /// How many bytes are missing (at least).
        needed: usize,
    },
    /// Bytes follow a whole frame where none were expected.
    #[error("{extra} unexpected bytes after the frame ending at byte {offset}")]
    TrailingBytes {
        /// Where the frame ends.
        offset: u64,
        /// How many bytes follow.
        extra: usize,
    },
    /// A `text/event-plain` body is malformed.
    #[error("plain event at byte {offset}: {reason}")]
    BadPlainEvent {
        /// Where the problem is.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A `text/event-json` body is not the JSON object FreeSWITCH writes.
    #[error("JSON event at byte {offset}: {reason}")]
    BadJsonEvent {
        /// Where the event body starts.
        offset: u64,
        /// serde_json's message (with line and column in the body).
        reason: String,
    },
    /// A `text/event-xml` body is not the XML FreeSWITCH writes.
    #[error("XML event at byte {offset}: {reason}")]
    BadXmlEvent {
        /// Where the problem is.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// An event was asked of a frame that does not carry one.
    #[error("frame at byte {offset} is {content_type}, not an event")]
    NotAnEvent {
        /// Where the frame starts.
        offset: u64,
        /// The frame's content type.
        content_type: String,
    },
    /// A client command frame is malformed (server side).
    #[error("command at byte {offset}: {reason}")]
    BadCommand {
        /// Where the command starts.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A client command whose verb FreeSWITCH does not know (it answers `-ERR command not found`).
    #[error("command at byte {offset}: unknown command {verb:?}")]
    UnknownCommand {
        /// Where the command starts.
        offset: u64,
        /// The first word of the command line.
        verb: String,
    },
    /// A value cannot be written without breaking the framing (a newline in a command line
    /// or a header, a space inside a single-word argument, ...).
    #[error("cannot encode {what}: {reason}")]
    Unencodable {
        /// Which field.
        what: &'static str,
        /// Why.
        reason: &'static str,
    },
}

impl CodecError {
    /// Where in the stream the error is (None for encoding errors, which have no position).
    pub fn offset(&self) -> Option<u64> {
        match self {
            CodecError::HeaderBlockTooLong { offset, .. }
            | CodecError::BodyTooLong { offset, .. }
            | CodecError::BadContentLength { offset, .. }
            | CodecError::ConflictingContentLength { offset, .. }
            | CodecError::MissingContentLength { offset, .. }
            | CodecError::MissingContentType { offset }
            | CodecError::MalformedHeader { offset, .. }
            | CodecError::InvalidUtf8 { offset, .. }
            | CodecError::Incomplete { offset, .. }
            | CodecError::TrailingBytes { offset, .. }
            | CodecError::BadPlainEvent { offset, .. }
            | CodecError::BadJsonEvent { offset, .. }
            | CodecError::BadXmlEvent { offset, .. }
            | CodecError::NotAnEvent { offset, .. }
            | CodecError::BadCommand { offset, .. }
            | CodecError::UnknownCommand { offset, .. } => Some(*offset),
            CodecError::Unencodable { .. } => None,
        }
    }

    /// Shift the error's offset by `base` (a frame parsed on its own reports offsets from its
    /// first byte; the decoder adds where that frame sits in the stream).
    pub(crate) fn shifted(mut self, base: u64) -> Self {
        match &mut self {
            CodecError::HeaderBlockTooLong { offset, .. }
            | CodecError::BodyTooLong { offset, .. }
            | CodecError::ConflictingContentLength { offset, .. }
            | CodecError::MissingContentLength { offset, .. }
            | CodecError::MissingContentType { offset }
            | CodecError::MalformedHeader { offset, .. }
            | CodecError::InvalidUtf8 { offset, .. }
            | CodecError::Incomplete { offset, .. }
            | CodecError::TrailingBytes { offset, .. }
            | CodecError::BadPlainEvent { offset, .. }
            | CodecError::BadJsonEvent { offset, .. }
            | CodecError::BadXmlEvent { offset, .. }
            | CodecError::NotAnEvent { offset, .. }
            | CodecError::BadCommand { offset, .. }
            | CodecError::UnknownCommand { offset, .. } => *offset += base,
            CodecError::BadContentLength { offset, at, .. } => {
                *offset += base;
                *at += base;
            }
            CodecError::Unencodable { .. } => {}
        }
        self
    }
}

/// A short, printable excerpt of bytes for an error message.
pub(crate) fn excerpt(bytes: &[u8], max: usize) -> String {
    let cut = &bytes[..bytes.len().min(max)];
    String::from_utf8_lossy(cut).into_owned()
}
