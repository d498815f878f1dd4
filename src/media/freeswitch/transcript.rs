//! Reader of the ESL capture logs (`fixtures/esl/*.log`): both directions of a real
//! FreeSWITCH session, in order, each block with its exact byte count. The codec's tests and
//! the emulator's scenario replays read the captures through this.
//!
//! Format (fixtures/esl/README.md, "File format"): `=== C->S @+t, N bytes: b'…' [-- note] ===`
//! then the N bytes the client sent; `=== S->C @+t frame #k, N bytes (header block H + body
//! B): <Content-Type> [Event-Name] ===` then the N bytes of one frame; a newline the frame did
//! not have is added only in the log and flagged by `=== (frame did not end with a newline …`;
//! `### NOTE @+t: …` lines; `=== … CONNECTION CLOSED …` / `=== client closed socket …` ends.

use std::time::Duration;

use thiserror::Error;

/// A capture log that does not read as one.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TranscriptError {
    /// A line that is none of the markers.
    #[error("transcript line at byte {offset}: {reason}: {line:?}")]
    Malformed {
        /// Where the line starts.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
        /// The line (cut to 100 characters).
        line: String,
    },
    /// A block announces more bytes than the log has.
    #[error("transcript block at byte {offset} announces {announced} bytes, {available} remain")]
    Truncated {
        /// Where the block's bytes start.
        offset: usize,
        /// Its byte count.
        announced: usize,
        /// What the file has left.
        available: usize,
    },
}

/// One block of a capture log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// Bytes the client sent.
    Client {
        /// Time since the connection opened.
        at: Duration,
        /// The bytes.
        bytes: Vec<u8>,
        /// The capture tool's comment after `--`, if any.
        note: Option<String>,
    },
    /// One frame the server sent.
    Server {
        /// Time since the connection opened.
        at: Duration,
        /// The frame's number in the capture (from 0).
        index: usize,
        /// The frame's bytes.
        bytes: Vec<u8>,
        /// Header block length (blank line included).
        header_len: usize,
        /// Body length.
        body_len: usize,
        /// The Content-Type the capture tool read.
        content_type: String,
        /// The event name in brackets (`CHANNEL_ANSWER`, `CUSTOM callcenter::info`), if any.
        event: Option<String>,
    },
    /// An out-of-band action (`### NOTE`): "sipp sends REGISTER", ...
    Note {
        /// Time since the connection opened.
        at: Duration,
        /// The note.
        text: String,
    },
    /// The connection closed (by the server, or by the client).
    Closed {
        /// Whether the server closed it.
        by_peer: bool,
    },
}

/// A capture log, read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Transcript {
    /// The blocks in order.
    pub entries: Vec<Entry>,
}

impl Transcript {
    /// Read a capture log.
    pub fn parse(log: &[u8]) -> Result<Transcript, TranscriptError> {
        let mut entries = Vec::new();
        let mut pos = 0;
        while pos < log.len() {
            let line_end = memchr::memchr(b'\n', &log[pos..]).map_or(log.len(), |i| pos + i);
            let line = String::from_utf8_lossy(&log[pos..line_end]).into_owned();
            let here = pos;
            let malformed = |reason| TranscriptError::Malformed {
                offset: here,
                reason,
                line: line.chars().take(100).collect(),
            };
            let next = (line_end + 1).min(log.len());
            if line.is_empty() || line.starts_with("# ") || line == "#" {
                pos = next;
                continue;
            }
            // `=== (frame did not end with a newline; …) ===`, and `sent data` for the client.
            if line.starts_with("=== (") && line.contains("did not end with a newline") {
                pos = next;
                continue;
            }
            if let Some(rest) = line.strip_prefix("### NOTE @+") {
                let (at, text) = rest
                    .split_once("s: ")
                    .ok_or_else(|| malformed("bad note"))?;
                entries.push(Entry::Note {
                    at: seconds(at).ok_or_else(|| malformed("bad time"))?,
                    text: text.to_owned(),
                });
                pos = next;
                continue;
            }
            if line.starts_with("=== client closed socket") {
                entries.push(Entry::Closed { by_peer: false });
                pos = next;
                continue;
            }
            let Some(rest) = line.strip_prefix("=== ") else {
                return Err(malformed("not a marker"));
            };
            if rest.contains("CONNECTION CLOSED") {
                entries.push(Entry::Closed { by_peer: true });
                pos = next;
                continue;
            }
            let (direction, rest) = rest.split_once(" @+").ok_or_else(|| malformed("no time"))?;
            let (at, rest) = rest.split_once("s").ok_or_else(|| malformed("no time"))?;
            let at = seconds(at).ok_or_else(|| malformed("bad time"))?;
            let count = |text: &str| -> Option<usize> {
                text.split_once(" bytes")
                    .and_then(|(n, _)| n.rsplit(' ').next())
                    .and_then(|n| n.parse().ok())
            };
            let len = count(rest).ok_or_else(|| malformed("no byte count"))?;
            let start = next;
            if log.len() - start < len {
                return Err(TranscriptError::Truncated {
                    offset: start,
                    announced: len,
                    available: log.len() - start,
                });
            }
            let bytes = log[start..start + len].to_vec();
            pos = start + len;
            match direction {
                "C->S" => {
                    let note = rest
                        .rsplit_once(" -- ")
                        .map(|(_, n)| n.trim_end_matches(" ===").trim().to_owned());
                    entries.push(Entry::Client { at, bytes, note });
                }
                "S->C" => {
                    let index = rest
                        .split_once("frame #")
                        .and_then(|(_, r)| r.split_once(','))
                        .and_then(|(n, _)| n.parse().ok())
                        .ok_or_else(|| malformed("no frame number"))?;
                    let (header_len, body_len) = rest
                        .split_once("(header block ")
                        .and_then(|(_, r)| r.split_once(')'))
                        .and_then(|(r, _)| r.split_once(" + body "))
                        .and_then(|(h, b)| Some((h.parse().ok()?, b.parse().ok()?)))
                        .ok_or_else(|| malformed("no header/body lengths"))?;
                    let label = rest
                        .split_once("): ")
                        .map(|(_, r)| r.trim_end_matches(" ===").trim())
                        .ok_or_else(|| malformed("no content type"))?;
                    let (content_type, event) = match label.split_once(" [") {
                        Some((ct, ev)) => {
                            (ct.to_owned(), Some(ev.trim_end_matches(']').to_owned()))
                        }
                        None => (label.to_owned(), None),
                    };
                    entries.push(Entry::Server {
                        at,
                        index,
                        bytes,
                        header_len,
                        body_len,
                        content_type,
                        event,
                    });
                }
                _ => return Err(malformed("unknown direction")),
            }
        }
        Ok(Transcript { entries })
    }

    /// Every byte the server sent, in order (the capture's `.raw` file).
    pub fn server_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for e in &self.entries {
            if let Entry::Server { bytes, .. } = e {
                out.extend_from_slice(bytes);
            }
        }
        out
    }

    /// The server's frames, in order.
    pub fn server_frames(&self) -> impl Iterator<Item = &Entry> {
        self.entries
            .iter()
            .filter(|e| matches!(e, Entry::Server { .. }))
    }

    /// What the client sent, block by block.
    pub fn client_blocks(&self) -> impl Iterator<Item = &[u8]> {
        self.entries.iter().filter_map(|e| match e {
            Entry::Client { bytes, .. } => Some(bytes.as_slice()),
            _ => None,
        })
    }
}

/// `0.045` (seconds, as the capture tool prints them) as a duration.
fn seconds(text: &str) -> Option<Duration> {
    let secs: f64 = text.parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}
