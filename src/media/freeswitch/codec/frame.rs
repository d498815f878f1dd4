//! Frames as FreeSWITCH sends them: a header block ended by a blank line, then exactly
//! Content-Length body bytes (fixtures/esl/README.md, "Framing").
//!
//! [`check`] says whether a buffer starts with a whole frame and how long it is; [`Frame::parse`]
//! indexes one. Frames share the input buffer (`bytes::Bytes`): nothing is copied, header
//! values are URL-decoded only when asked, event bodies are parsed only when asked.

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;
use smallvec::SmallVec;

use super::error::{CodecError, excerpt};
use super::event::{Event, EventFormat};
use super::header::{self, HeaderSpan, Span};
use super::ids::JobUuid;
use super::urlcode;
use crate::media::LegId;

/// How large a frame may be. A frame over a limit is an error, and a [`Decoder`](super::Decoder)
/// never buffers more than [`Limits::max_frame`] bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    max_header_block: usize,
    max_body: usize,
}

impl Limits {
    /// The largest total a frame may have: offsets inside frames are kept as `u32`.
    const CEILING: usize = (u32::MAX / 2) as usize;

    /// Limits on the header block (blank line included) and on the body. Both are at least 64
    /// bytes and together at most 2 GiB.
    pub fn new(max_header_block: usize, max_body: usize) -> Self {
        let max_header_block = max_header_block.clamp(64, Self::CEILING / 2);
        let max_body = max_body.clamp(64, Self::CEILING / 2);
        Limits {
            max_header_block,
            max_body,
        }
    }

    /// The header block limit, blank line included.
    pub fn max_header_block(&self) -> usize {
        self.max_header_block
    }

    /// The body limit.
    pub fn max_body(&self) -> usize {
        self.max_body
    }

    /// The largest frame: header block plus body.
    pub fn max_frame(&self) -> usize {
        self.max_header_block + self.max_body
    }
}

impl Default for Limits {
    /// 256 KiB of headers (the outbound `connect` reply, the largest header block in the
    /// fixtures, is 3.5 KB: every channel variable is a header) and 32 MiB of body (`show
    /// channels as json` on a busy switch is the largest body a client asks for: some 2 KB a
    /// channel).
    fn default() -> Self {
        Limits::new(256 * 1024, 32 * 1024 * 1024)
    }
}

/// The Content-Type of a frame: every type the fixtures show, and any other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ContentType {
    /// `auth/request`: the greeting of an inbound connection.
    AuthRequest,
    /// `command/reply`: the answer to a command, in `Reply-Text`.
    CommandReply,
    /// `api/response`: the answer to `api`, in the body.
    ApiResponse,
    /// `text/event-plain`: an event as `Name: url-encoded value` lines.
    EventPlain,
    /// `text/event-json`: an event as a JSON object.
    EventJson,
    /// `text/event-xml`: an event as XML.
    EventXml,
    /// `log/data`: a log line (after `log N`).
    LogData,
    /// `text/disconnect-notice`: the server is about to close, or to linger.
    DisconnectNotice,
    /// `text/rude-rejection`: the ACL refused the connection.
    RudeRejection,
    /// Anything else (the text is in the `Content-Type` header).
    Other,
}

impl ContentType {
    /// The content type named by a `Content-Type` value (compared exactly, as FreeSWITCH's
    /// libesl does).
    pub fn from_value(value: &str) -> Self {
        match value {
            "auth/request" => ContentType::AuthRequest,
            "command/reply" => ContentType::CommandReply,
            "api/response" => ContentType::ApiResponse,
            "text/event-plain" => ContentType::EventPlain,
            "text/event-json" => ContentType::EventJson,
            "text/event-xml" => ContentType::EventXml,
            "log/data" => ContentType::LogData,
            "text/disconnect-notice" => ContentType::DisconnectNotice,
            "text/rude-rejection" => ContentType::RudeRejection,
            _ => ContentType::Other,
        }
    }

    /// The wire text (`""` for [`ContentType::Other`]).
    pub fn as_str(self) -> &'static str {
        match self {
            ContentType::AuthRequest => "auth/request",
            ContentType::CommandReply => "command/reply",
            ContentType::ApiResponse => "api/response",
            ContentType::EventPlain => "text/event-plain",
            ContentType::EventJson => "text/event-json",
            ContentType::EventXml => "text/event-xml",
            ContentType::LogData => "log/data",
            ContentType::DisconnectNotice => "text/disconnect-notice",
            ContentType::RudeRejection => "text/rude-rejection",
            ContentType::Other => "",
        }
    }

    /// The event format carried by an event content type.
    pub fn event_format(self) -> Option<EventFormat> {
        match self {
            ContentType::EventPlain => Some(EventFormat::Plain),
            ContentType::EventJson => Some(EventFormat::Json),
            ContentType::EventXml => Some(EventFormat::Xml),
            _ => None,
        }
    }

    /// Types whose frames always carry a body, so a missing Content-Length is a broken frame
    /// (its body would be read as the next header block). `text/disconnect-notice` is not one:
    /// the linger notice has `Content-Length: 0`, and a notice without one is just a notice.
    fn requires_body(self) -> bool {
        matches!(
            self,
            ContentType::ApiResponse
                | ContentType::EventPlain
                | ContentType::EventJson
                | ContentType::EventXml
                | ContentType::LogData
                | ContentType::RudeRejection
        )
    }
}

impl fmt::Display for ContentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ContentType::Other => "an unknown content type",
            known => known.as_str(),
        })
    }
}

/// What [`check`] found at the start of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Not a whole frame yet: read more bytes.
    Incomplete,
    /// A whole frame of this many bytes.
    Complete {
        /// Header block length, blank line included.
        header_len: usize,
        /// Body length (Content-Length, or 0).
        body_len: usize,
    },
}

/// Which kind of header block is being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BlockKind {
    /// A frame from FreeSWITCH: every line is a header, LF only.
    Frame,
    /// A command from a client: the first line is the command; CRLF is accepted.
    Command,
}

/// A parsed header block, waiting for its body.
#[derive(Debug, Clone)]
pub(crate) struct Head {
    pub header_len: usize,
    pub body_len: usize,
    pub content_type: ContentType,
    /// The command line (commands only).
    pub line: Span,
    pub headers: SmallVec<[HeaderSpan; 6]>,
}

/// Where the blank line that ends a header block is. Returns the block length (blank line
/// included) or, when there is none yet, where to resume the search once more bytes arrive.
pub(crate) fn find_block_end(buf: &[u8], from: usize, kind: BlockKind) -> Result<usize, usize> {
    match kind {
        BlockKind::Frame => {
            // FreeSWITCH ends every header line with a bare LF (README: "CR never appears").
            // A frame's outer block is two or three short lines, so stepping from newline to
            // newline beats building a substring searcher for every frame.
            let rest = &buf[from..];
            match memchr::memchr_iter(b'\n', rest).find(|&i| rest.get(i + 1) == Some(&b'\n')) {
                Some(i) => Ok(from + i + 2),
                None => Err(buf.len().saturating_sub(1).max(from)),
            }
        }
        BlockKind::Command => {
            // mod_event_socket's read_packet counts newlines and ignores CR in between, so
            // `\n\n`, `\r\n\r\n` and `\n\r\n` all end a command's header block.
            let mut last_newline = None;
            for i in memchr::memchr_iter(b'\n', &buf[from..]) {
                let i = from + i;
                last_newline = Some(i);
                let mut j = i + 1;
                while j < buf.len() && buf[j] == b'\r' {
                    j += 1;
                }
                if j < buf.len() && buf[j] == b'\n' {
                    return Ok(j + 1);
                }
            }
            Err(last_newline.unwrap_or(buf.len()).max(from))
        }
    }
}

/// Read the header block at the start of `buf` (which ends at `block_len`).
pub(crate) fn read_head(
    buf: &[u8],
    block_len: usize,
    kind: BlockKind,
    limits: &Limits,
) -> Result<Head, CodecError> {
    if let Err(at) = header::check_utf8(&buf[..block_len]) {
        return Err(CodecError::InvalidUtf8 {
            offset: at as u64,
            what: "header block",
        });
    }
    let mut headers: SmallVec<[HeaderSpan; 6]> = SmallVec::new();
    let mut line = Span::default();
    // The lines end just before the blank line's own newline (and any CR before it).
    let mut lines_end = block_len - 1;
    while lines_end > 0 && buf[lines_end - 1] == b'\r' && kind == BlockKind::Command {
        lines_end -= 1;
    }
    let mut from = 0;
    if kind == BlockKind::Command {
        let end = memchr::memchr(b'\n', &buf[..lines_end]).map_or(lines_end, |i| i);
        let mut text_end = end;
        if text_end > 0 && buf[text_end - 1] == b'\r' {
            text_end -= 1;
        }
        line = Span::new(0, text_end);
        from = (end + 1).min(lines_end);
    }
    header::index_lines(buf, from, lines_end, kind == BlockKind::Command, |h| {
        headers.push(h)
    })?;

    let mut length: Option<(u64, HeaderSpan)> = None;
    for h in headers
        .iter()
        .filter(|h| buf[h.name.range()].eq_ignore_ascii_case(b"Content-Length"))
    {
        let value = &buf[h.value.range()];
        let Some(n) = header::parse_length(value) else {
            return Err(CodecError::BadContentLength {
                offset: 0,
                at: u64::from(h.value.start),
                value: excerpt(value, 40),
            });
        };
        match length {
            Some((first, _)) if first != n => {
                return Err(CodecError::ConflictingContentLength {
                    offset: 0,
                    first,
                    second: n,
                });
            }
            _ => length = Some((n, *h)),
        }
    }

    let content_type = match kind {
        BlockKind::Frame => {
            let Some(ct) = header::find(buf, &headers, "Content-Type") else {
                return Err(CodecError::MissingContentType { offset: 0 });
            };
            let ct = ContentType::from_value(header::text(buf, ct.value));
            if length.is_none() && ct.requires_body() {
                return Err(CodecError::MissingContentLength {
                    offset: 0,
                    content_type: ct.as_str().to_owned(),
                });
            }
            ct
        }
        BlockKind::Command => ContentType::Other,
    };

    let body_len = length.map_or(0, |(n, _)| n);
    if body_len > limits.max_body() as u64 {
        return Err(CodecError::BodyTooLong {
            offset: 0,
            length: body_len,
            limit: limits.max_body(),
        });
    }
    Ok(Head {
        header_len: block_len,
        body_len: body_len as usize,
        content_type,
        line,
        headers,
    })
}

/// Look for a whole header block at the start of `buf`, searching from `from`. `Ok(None)`:
/// not there yet (and `resume` says where to search next time).
pub(crate) fn scan_head(
    buf: &[u8],
    from: usize,
    kind: BlockKind,
    limits: &Limits,
    resume: &mut usize,
) -> Result<Option<Head>, CodecError> {
    let window = &buf[..buf.len().min(limits.max_header_block())];
    match find_block_end(window, from.min(window.len()), kind) {
        Ok(block_len) => read_head(buf, block_len, kind, limits).map(Some),
        Err(next) => {
            if buf.len() >= limits.max_header_block() {
                return Err(CodecError::HeaderBlockTooLong {
                    offset: 0,
                    limit: limits.max_header_block(),
                });
            }
            *resume = next;
            Ok(None)
        }
    }
}

/// Whether `buf` starts with a whole frame, and how long it is. An incomplete frame is not an
/// error ("read more"); a frame over `limits` is, as soon as that is known (a too-long body
/// is refused from its header block, before any of it arrives).
pub fn check(buf: &[u8], limits: &Limits) -> Result<Check, CodecError> {
    let mut resume = 0;
    match scan_head(buf, 0, BlockKind::Frame, limits, &mut resume)? {
        None => Ok(Check::Incomplete),
        Some(head) if buf.len() < head.header_len + head.body_len => Ok(Check::Incomplete),
        Some(head) => Ok(Check::Complete {
            header_len: head.header_len,
            body_len: head.body_len,
        }),
    }
}

/// One frame from FreeSWITCH, sharing the bytes it was read from.
#[derive(Clone)]
pub struct Frame {
    bytes: Bytes,
    offset: u64,
    header_len: u32,
    content_type: ContentType,
    headers: SmallVec<[HeaderSpan; 6]>,
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frame")
            .field("offset", &self.offset)
            .field("content_type", &self.content_type_str())
            .field("headers", &self.headers().collect::<Vec<_>>())
            .field("body", &String::from_utf8_lossy(self.body()))
            .finish()
    }
}

impl Frame {
    /// Parse `bytes`, which must hold exactly one whole frame.
    pub fn parse(bytes: Bytes, limits: &Limits) -> Result<Frame, CodecError> {
        let mut resume = 0;
        let Some(head) = scan_head(&bytes, 0, BlockKind::Frame, limits, &mut resume)? else {
            return Err(CodecError::Incomplete {
                offset: 0,
                needed: 1,
            });
        };
        let total = head.header_len + head.body_len;
        if bytes.len() < total {
            return Err(CodecError::Incomplete {
                offset: 0,
                needed: total - bytes.len(),
            });
        }
        if bytes.len() > total {
            return Err(CodecError::TrailingBytes {
                offset: total as u64,
                extra: bytes.len() - total,
            });
        }
        Ok(Frame::from_head(bytes, 0, head))
    }

    pub(crate) fn from_head(bytes: Bytes, offset: u64, head: Head) -> Frame {
        Frame {
            bytes,
            offset,
            header_len: head.header_len as u32,
            content_type: head.content_type,
            headers: head.headers,
        }
    }

    /// Where the frame starts in the stream.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The whole frame as received (joining every frame's bytes gives the stream back).
    pub fn as_bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The header block, blank line included.
    pub fn header_block(&self) -> &[u8] {
        &self.bytes[..self.header_len as usize]
    }

    /// The content type.
    pub fn content_type(&self) -> ContentType {
        self.content_type
    }

    /// The `Content-Type` value as received.
    pub fn content_type_str(&self) -> &str {
        self.header("Content-Type").unwrap_or_default()
    }

    /// A header's value as received (not URL-decoded). Names match whole, ignoring ASCII case.
    pub fn header(&self, name: &str) -> Option<&str> {
        header::find(&self.bytes, &self.headers, name).map(|h| header::text(&self.bytes, h.value))
    }

    /// A header's value URL-decoded (for the outbound `connect` reply, whose headers are a
    /// serialized event; ordinary replies are not encoded).
    pub fn header_decoded(&self, name: &str) -> Option<Cow<'_, str>> {
        self.header(name).map(urlcode::decode)
    }

    /// Every header in order, values as received.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.headers.iter().map(move |h| {
            (
                header::text(&self.bytes, h.name),
                header::text(&self.bytes, h.value),
            )
        })
    }

    /// How many header lines the header block has.
    pub fn header_count(&self) -> usize {
        self.headers.len()
    }

    /// The body (empty when there is none).
    pub fn body(&self) -> &[u8] {
        &self.bytes[self.header_len as usize..]
    }

    /// The body, shared with the frame (no copy).
    pub fn body_bytes(&self) -> Bytes {
        self.bytes.slice(self.header_len as usize..)
    }

    /// Whether the header block is a serialized event (the outbound `connect` reply:
    /// `Event-Name: CHANNEL_DATA` and every channel variable, all URL-encoded).
    pub fn is_serialized_event(&self) -> bool {
        self.header("Event-Name").is_some()
    }

    /// The result a `command/reply` (in `Reply-Text`) or an `api/response` (the body) carries.
    /// `api/response` never marks errors in a header: `-ERR ...` is body text (README,
    /// "Replies").
    pub fn reply(&self) -> Option<Reply<'_>> {
        match self.content_type {
            ContentType::CommandReply => {
                let text = if self.is_serialized_event() {
                    // The connect reply's Reply-Text is encoded too: `%2BOK%0A`.
                    self.header_decoded("Reply-Text")?
                } else {
                    Cow::Borrowed(self.header("Reply-Text")?)
                };
                Some(Reply::classify(text))
            }
            ContentType::ApiResponse => Some(Reply::classify(String::from_utf8_lossy(self.body()))),
            _ => None,
        }
    }

    /// The `Job-UUID` of a `bgapi` reply.
    pub fn job_uuid(&self) -> Option<JobUuid> {
        self.header("Job-UUID").map(JobUuid::new)
    }

    /// The event a `text/event-plain|json|xml` frame carries, parsed now.
    pub fn event(&self) -> Result<Event, CodecError> {
        let body_offset = self.offset + u64::from(self.header_len);
        match self.content_type.event_format() {
            Some(EventFormat::Plain) => Event::parse_plain(self.body_bytes(), body_offset),
            Some(EventFormat::Json) => Event::parse_json(self.body_bytes(), body_offset),
            Some(EventFormat::Xml) => Event::parse_xml(self.body_bytes(), body_offset),
            None => Err(CodecError::NotAnEvent {
                offset: self.offset,
                content_type: self.content_type_str().to_owned(),
            }),
        }
    }

    /// The channel data of an outbound `connect` reply (a `command/reply` whose header block is
    /// a serialized CHANNEL_DATA event), as an event with URL-decoded values.
    pub fn channel_data(&self) -> Option<Result<Event, CodecError>> {
        if self.content_type != ContentType::CommandReply || !self.is_serialized_event() {
            return None;
        }
        Some(Event::parse_plain(
            self.bytes.slice(..self.header_len as usize),
            self.offset,
        ))
    }

    /// A `text/disconnect-notice`, read.
    pub fn disconnect_notice(&self) -> Option<DisconnectNotice> {
        if self.content_type != ContentType::DisconnectNotice {
            return None;
        }
        Some(DisconnectNotice {
            controlled_session: self.header("Controlled-Session-UUID").map(LegId::new),
            disposition: self
                .header("Content-Disposition")
                .map(Disposition::from_value),
            channel_name: self.header("Channel-Name").map(str::to_owned),
            linger_time: self.header("Linger-Time").and_then(|v| v.parse().ok()),
            body: String::from_utf8_lossy(self.body()).into_owned(),
        })
    }

    /// A `log/data` frame, read. Missing or non-numeric numbers read as 0.
    pub fn log(&self) -> Option<LogRecord> {
        if self.content_type != ContentType::LogData {
            return None;
        }
        let text = |name| self.header(name).unwrap_or_default().to_owned();
        let number = |name| {
            self.header(name)
                .and_then(|v| v.parse::<u32>().ok())
                .unwrap_or(0)
        };
        Some(LogRecord {
            level: number("Log-Level").min(u32::from(u8::MAX)) as u8,
            text_channel: number("Text-Channel"),
            file: text("Log-File"),
            func: text("Log-Func"),
            line: number("Log-Line"),
            user_data: text("User-Data"),
            body: String::from_utf8_lossy(self.body()).into_owned(),
        })
    }
}

/// A reply's result: FreeSWITCH's `+OK` / `-ERR` convention, or a bare value (an api result such
/// as `status`, or `getvar` in outbound mode, which answers with the variable's value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply<'a> {
    /// `+OK [text]`: the text after `+OK `, trailing newline removed.
    Ok(Cow<'a, str>),
    /// `-ERR [text]`: the text after `-ERR `, trailing newline removed.
    Err(Cow<'a, str>),
    /// Anything else, as received.
    Value(Cow<'a, str>),
}

impl<'a> Reply<'a> {
    /// Sort a reply text into `+OK`, `-ERR` or a value. The prefix counts only as a whole word
    /// (`+OK`, `+OK text`, `+OK\n`).
    pub fn classify(text: Cow<'a, str>) -> Reply<'a> {
        let split = |s: &str| -> Option<(bool, usize)> {
            for (ok, prefix) in [(true, "+OK"), (false, "-ERR")] {
                let whole_word =
                    |t: &&str| matches!(t.as_bytes().first(), None | Some(b' ' | b'\n' | b'\r'));
                if let Some(tail) = s.strip_prefix(prefix).filter(whole_word) {
                    return Some((ok, prefix.len() + usize::from(tail.starts_with(' '))));
                }
            }
            None
        };
        let Some((ok, start)) = split(&text) else {
            return Reply::Value(text);
        };
        let end = text.trim_end_matches(['\n', '\r']).len().max(start);
        let rest = match text {
            Cow::Borrowed(s) => Cow::Borrowed(&s[start..end]),
            Cow::Owned(s) => Cow::Owned(s[start..end].to_owned()),
        };
        if ok {
            Reply::Ok(rest)
        } else {
            Reply::Err(rest)
        }
    }

    /// Whether the reply is `+OK`.
    pub fn is_ok(&self) -> bool {
        matches!(self, Reply::Ok(_))
    }

    /// The text (without the `+OK` / `-ERR` prefix).
    pub fn text(&self) -> &str {
        match self {
            Reply::Ok(t) | Reply::Err(t) | Reply::Value(t) => t,
        }
    }
}

/// `Content-Disposition` of a disconnect notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// The channel hung up and the socket lingers (`linger` was asked); more events may follow.
    Linger,
    /// The socket is about to close.
    Disconnect,
    /// Another value.
    Other(String),
}

impl Disposition {
    /// Read a `Content-Disposition` value.
    pub fn from_value(value: &str) -> Self {
        match value {
            "linger" => Disposition::Linger,
            "disconnect" => Disposition::Disconnect,
            other => Disposition::Other(other.to_owned()),
        }
    }

    /// The wire text.
    pub fn as_str(&self) -> &str {
        match self {
            Disposition::Linger => "linger",
            Disposition::Disconnect => "disconnect",
            Disposition::Other(v) => v,
        }
    }
}

/// The body FreeSWITCH puts in every `disconnect` notice (Content-Length 67).
pub const GOODBYE: &str = "Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n";

/// The body of the ACL's `text/rude-rejection` (Content-Length 24).
pub const ACCESS_DENIED: &str = "Access Denied, go away.\n";

/// A `text/disconnect-notice` (README, "Disconnect notices").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisconnectNotice {
    /// `Controlled-Session-UUID`: the channel a bound session (outbound, or inbound after
    /// `myevents <uuid>`) controlled.
    pub controlled_session: Option<LegId>,
    /// `Content-Disposition` (bound sessions only).
    pub disposition: Option<Disposition>,
    /// `Channel-Name` (linger notices).
    pub channel_name: Option<String>,
    /// `Linger-Time` in seconds (linger notices).
    pub linger_time: Option<u32>,
    /// The body: [`GOODBYE`] for a disconnect, empty for a linger notice.
    pub body: String,
}

/// A `log/data` frame (after `log N`): header order as FreeSWITCH writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// `Log-Level` (0 console … 7 debug).
    pub level: u8,
    /// `Text-Channel`.
    pub text_channel: u32,
    /// `Log-File`: the C source file.
    pub file: String,
    /// `Log-Func`: the C function.
    pub func: String,
    /// `Log-Line`: the source line.
    pub line: u32,
    /// `User-Data`: usually the channel UUID, may be empty.
    pub user_data: String,
    /// The formatted log line.
    pub body: String,
}
