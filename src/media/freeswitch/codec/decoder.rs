//! Incremental decoding (sans-IO): bytes in, whole frames out, check → parse → advance.
//!
//! The connection feeds whatever the socket gave ([`Decoder::feed`] or [`Decoder::read_buf`]),
//! then calls [`Decoder::decode`] until it returns `Ok(None)` ("read more"). The buffer never
//! holds more than [`Limits::max_frame`] bytes: a whole frame always fits, so once it is full
//! a frame is ready or the input is refused with an error. After an error the decoder stops
//! (every call returns the same error) until the connection chooses: close, or
//! [`Decoder::resync`] to skip to the next plausible frame.

use bytes::buf::Limit;
use bytes::{BufMut, Bytes, BytesMut};

use super::command::CommandFrame;
use super::error::CodecError;
use super::frame::{BlockKind, Frame, Head, Limits, find_block_end, scan_head};

/// Where a decoder stands.
#[derive(Debug, Clone)]
enum State {
    /// Reading frames.
    Ready,
    /// Stopped on an error; `resume` says how [`Framer::resync`] goes on.
    Failed { error: CodecError, resume: Resume },
    /// Dropping the rest of a known-length frame.
    Skipping { remaining: u64 },
    /// Dropping bytes until something that looks like the start of a frame, searching from
    /// `from` in the buffer.
    Seeking { from: usize },
}

/// How to get past a bad frame.
#[derive(Debug, Clone, Copy)]
enum Resume {
    /// Drop exactly this many bytes: the whole bad frame, when its length is known (a body over
    /// the limit: dropped as it streams in, never buffered), or a bad command's header block.
    Skip(u64),
    /// Search for the next frame start from this offset in the buffer: past the bad frame's
    /// header block when it was whole (none of its lines can start a frame), else past its
    /// first byte.
    Seek(usize),
}

/// Shared by the frame and command decoders.
#[derive(Debug)]
struct Framer {
    buf: BytesMut,
    limits: Limits,
    kind: BlockKind,
    /// Stream offset of `buf[0]`.
    consumed: u64,
    /// Bytes dropped by resyncs.
    skipped: u64,
    /// Where to resume looking for the blank line.
    scan_from: usize,
    /// The current frame's header block, once read, while its body arrives.
    pending: Option<Head>,
    state: State,
}

/// How far [`Decoder::read_buf`] grows the buffer at once.
const READ_CHUNK: usize = 64 * 1024;

impl Framer {
    fn new(limits: Limits, kind: BlockKind) -> Self {
        Framer {
            buf: BytesMut::new(),
            limits,
            kind,
            consumed: 0,
            skipped: 0,
            scan_from: 0,
            pending: None,
            state: State::Ready,
        }
    }

    fn room(&self) -> usize {
        self.limits.max_frame().saturating_sub(self.buf.len())
    }

    fn feed(&mut self, input: &[u8]) -> usize {
        let n = input.len().min(self.room());
        self.buf.extend_from_slice(&input[..n]);
        n
    }

    fn read_buf(&mut self) -> Limit<&mut BytesMut> {
        let room = self.room();
        self.buf.reserve(room.min(READ_CHUNK));
        (&mut self.buf).limit(room)
    }

    fn discard(&mut self, n: usize) {
        let _ = self.buf.split_to(n);
        self.consumed += n as u64;
        self.skipped += n as u64;
    }

    fn fail(&mut self, error: CodecError, resume: Resume) -> CodecError {
        self.state = State::Failed {
            error: error.clone(),
            resume,
        };
        error
    }

    /// The next whole frame's bytes, stream offset and header block.
    fn next(&mut self) -> Result<Option<(Bytes, u64, Head)>, CodecError> {
        loop {
            match std::mem::replace(&mut self.state, State::Ready) {
                State::Ready => break,
                State::Failed { error, resume } => {
                    self.state = State::Failed {
                        error: error.clone(),
                        resume,
                    };
                    return Err(error);
                }
                State::Skipping { remaining } => {
                    let n = remaining.min(self.buf.len() as u64);
                    self.discard(n as usize);
                    if remaining > n {
                        self.state = State::Skipping {
                            remaining: remaining - n,
                        };
                        return Ok(None);
                    }
                }
                State::Seeking { from } => match self.seek(from) {
                    Ok(start) => self.discard(start),
                    Err(keep_from) => {
                        self.discard(keep_from);
                        self.state = State::Seeking { from: 0 };
                        return Ok(None);
                    }
                },
            }
        }

        if self.pending.is_none() {
            let mut resume = self.scan_from;
            match scan_head(
                &self.buf,
                self.scan_from,
                self.kind,
                &self.limits,
                &mut resume,
            ) {
                Ok(Some(head)) => self.pending = Some(head),
                Ok(None) => {
                    self.scan_from = resume;
                    return Ok(None);
                }
                Err(error) => {
                    let window = &self.buf[..self.buf.len().min(self.limits.max_header_block())];
                    let block = find_block_end(window, 0, self.kind).ok();
                    let resume = match (&error, block, self.kind) {
                        (CodecError::BodyTooLong { length, .. }, Some(header_len), _) => {
                            Resume::Skip(header_len as u64 + length)
                        }
                        (_, Some(header_len), BlockKind::Command) => {
                            Resume::Skip(header_len as u64)
                        }
                        (_, Some(header_len), BlockKind::Frame) => Resume::Seek(header_len),
                        (_, None, _) => Resume::Seek(1),
                    };
                    return Err(self.fail(error.shifted(self.consumed), resume));
                }
            }
        }
        let Some(head) = self.pending.as_ref() else {
            return Ok(None);
        };
        let total = head.header_len + head.body_len;
        if self.buf.len() < total {
            return Ok(None);
        }
        let Some(head) = self.pending.take() else {
            return Ok(None);
        };
        let bytes = self.buf.split_to(total).freeze();
        let offset = self.consumed;
        self.consumed += total as u64;
        self.scan_from = 0;
        Ok(Some((bytes, offset, head)))
    }

    /// Where the next plausible frame starts (`Ok`), or how many bytes can be dropped while
    /// waiting for more (`Err`).
    fn seek(&self, from: usize) -> Result<usize, usize> {
        let buf = &self.buf[..];
        let from = from.min(buf.len());
        match self.kind {
            BlockKind::Frame => {
                // Every FreeSWITCH frame starts with Content-Type (replies, notices, logs) or
                // Content-Length (events); bodies follow without a separator, so a start can
                // be anywhere (a JSON event ends in `}` and the next frame follows at once).
                const STARTS: [&[u8]; 2] = [b"Content-Type: ", b"Content-Length: "];
                for p in memchr::memmem::find_iter(&buf[from..], b"Content-") {
                    let tail = &buf[from + p..];
                    for start in STARTS {
                        if tail.starts_with(start) {
                            return Ok(from + p);
                        }
                        if tail.len() < start.len() && start.starts_with(tail) {
                            return Err(from + p);
                        }
                    }
                }
                // Keep what could be the beginning of a split "Content-".
                Err(buf.len().saturating_sub(7).max(from))
            }
            BlockKind::Command => match find_block_end(buf, from, BlockKind::Command) {
                Ok(end) => Ok(end),
                Err(next) => Err(next),
            },
        }
    }

    fn resync(&mut self) -> bool {
        let State::Failed { resume, .. } = &self.state else {
            return false;
        };
        self.state = match *resume {
            Resume::Skip(n) => State::Skipping { remaining: n },
            Resume::Seek(from) => State::Seeking { from },
        };
        self.pending = None;
        self.scan_from = 0;
        true
    }
}

/// Decodes frames from FreeSWITCH (client side).
#[derive(Debug)]
pub struct Decoder {
    framer: Framer,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(Limits::default())
    }
}

impl Decoder {
    /// A decoder with these limits.
    pub fn new(limits: Limits) -> Self {
        Decoder {
            framer: Framer::new(limits, BlockKind::Frame),
        }
    }

    /// Its limits.
    pub fn limits(&self) -> &Limits {
        &self.framer.limits
    }

    /// Buffer as much of `input` as there is room for; returns how many bytes were taken.
    /// Decode, then feed the rest.
    pub fn feed(&mut self, input: &[u8]) -> usize {
        self.framer.feed(input)
    }

    /// How many more bytes the buffer takes (never 0 after `decode` returned `Ok(None)`).
    pub fn room(&self) -> usize {
        self.framer.room()
    }

    /// How many bytes are buffered.
    pub fn buffered(&self) -> usize {
        self.framer.buf.len()
    }

    /// The buffer, for a socket to read into directly (tokio's `read_buf`), capped at
    /// [`room`](Self::room). Call it only after `decode` returned `Ok(None)`: after an error
    /// the room may be 0, and a read of 0 bytes looks like the end of the stream.
    pub fn read_buf(&mut self) -> Limit<&mut BytesMut> {
        self.framer.read_buf()
    }

    /// The next whole frame: `Ok(None)` means read more.
    pub fn decode(&mut self) -> Result<Option<Frame>, CodecError> {
        Ok(self
            .framer
            .next()?
            .map(|(bytes, offset, head)| Frame::from_head(bytes, offset, head)))
    }

    /// After an error: drop the bad frame (exactly, when its length is known, as for a body
    /// over the limit, without buffering it) or everything up to the next `Content-Type: ` /
    /// `Content-Length: ` after its header block, and go on decoding. A frame whose length was
    /// unknown may leave body bytes that fail again: each failure is reported, and a connection
    /// that sees several in a row should close and reconnect. Returns false when there was no
    /// error.
    pub fn resync(&mut self) -> bool {
        self.framer.resync()
    }

    /// Whether the decoder stopped on an error.
    pub fn is_failed(&self) -> bool {
        matches!(self.framer.state, State::Failed { .. })
    }

    /// Bytes consumed so far: the stream offset of the next frame.
    pub fn position(&self) -> u64 {
        self.framer.consumed
    }

    /// Bytes dropped by resyncs so far.
    pub fn skipped(&self) -> u64 {
        self.framer.skipped
    }
}

/// Decodes commands from a client (server side: the emulator).
#[derive(Debug)]
pub struct CommandDecoder {
    framer: Framer,
}

impl Default for CommandDecoder {
    fn default() -> Self {
        CommandDecoder::new(Limits::default())
    }
}

impl CommandDecoder {
    /// A decoder with these limits.
    pub fn new(limits: Limits) -> Self {
        CommandDecoder {
            framer: Framer::new(limits, BlockKind::Command),
        }
    }

    /// Buffer as much of `input` as there is room for; returns how many bytes were taken.
    pub fn feed(&mut self, input: &[u8]) -> usize {
        self.framer.feed(input)
    }

    /// How many more bytes the buffer takes.
    pub fn room(&self) -> usize {
        self.framer.room()
    }

    /// How many bytes are buffered.
    pub fn buffered(&self) -> usize {
        self.framer.buf.len()
    }

    /// The buffer, for a socket to read into directly (see [`Decoder::read_buf`]).
    pub fn read_buf(&mut self) -> Limit<&mut BytesMut> {
        self.framer.read_buf()
    }

    /// The next whole command: `Ok(None)` means read more.
    pub fn decode(&mut self) -> Result<Option<CommandFrame>, CodecError> {
        Ok(self
            .framer
            .next()?
            .map(|(bytes, offset, head)| CommandFrame::new(bytes, offset, head)))
    }

    /// After an error: drop the bad command (up to its blank line, or its known length) and go
    /// on. Returns false when there was no error.
    pub fn resync(&mut self) -> bool {
        self.framer.resync()
    }

    /// Whether the decoder stopped on an error.
    pub fn is_failed(&self) -> bool {
        matches!(self.framer.state, State::Failed { .. })
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> u64 {
        self.framer.consumed
    }
}

/// Frames of a buffer already in memory, sharing it (no copy): a capture, a test stream.
/// Stops at the first error; bytes left at the end that do not make a whole frame are an
/// [`CodecError::Incomplete`] error.
pub fn split_frames(bytes: Bytes, limits: Limits) -> Frames {
    Frames {
        bytes,
        pos: 0,
        limits,
        done: false,
    }
}

/// The iterator of [`split_frames`].
#[derive(Debug)]
pub struct Frames {
    bytes: Bytes,
    pos: usize,
    limits: Limits,
    done: bool,
}

impl Iterator for Frames {
    type Item = Result<Frame, CodecError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.pos >= self.bytes.len() {
            return None;
        }
        let rest = &self.bytes[self.pos..];
        let mut resume = 0;
        let offset = self.pos as u64;
        let result = match scan_head(rest, 0, BlockKind::Frame, &self.limits, &mut resume) {
            Ok(Some(head)) if head.header_len + head.body_len <= rest.len() => {
                let total = head.header_len + head.body_len;
                let frame =
                    Frame::from_head(self.bytes.slice(self.pos..self.pos + total), offset, head);
                self.pos += total;
                return Some(Ok(frame));
            }
            Ok(Some(head)) => CodecError::Incomplete {
                offset,
                needed: head.header_len + head.body_len - rest.len(),
            },
            Ok(None) => CodecError::Incomplete { offset, needed: 1 },
            Err(e) => e.shifted(offset),
        };
        self.done = true;
        Some(Err(result))
    }
}
