//! `Name: value` lines: an index of byte spans into a shared buffer, read without copying.

use std::ops::Range;

use super::error::{CodecError, excerpt};

/// A byte range in a frame or event buffer. Frames are bounded by [`Limits`](super::Limits),
/// which keeps every offset below `u32::MAX`; four bytes per bound halve the index of a
/// 2.4 KB event (about 60 headers) compared with `usize`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        Span {
            start: start as u32,
            end: end as u32,
        }
    }

    pub fn range(self) -> Range<usize> {
        self.start as usize..self.end as usize
    }

    pub fn len(self) -> usize {
        (self.end - self.start) as usize
    }
}

/// One header line: where its name and its value are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HeaderSpan {
    pub name: Span,
    pub value: Span,
}

/// Index the header lines of `buf[from..to]`, where `to` is just past the last line's `\n` (or
/// the end of the bytes when the last line has none). Each line is `Name:value`; blanks and tabs
/// after the colon are skipped, as FreeSWITCH's readers do (`esl_recv_event`, `read_packet`),
/// and everything else up to the newline is the value, colons included. With `strip_cr`, a
/// `\r` before the newline is dropped (clients typing commands over telnet send CRLF, and
/// mod_event_socket accepts it); FreeSWITCH itself never sends CR in a header line.
///
/// Offsets in errors are from the start of `buf`.
pub(crate) fn index_lines(
    buf: &[u8],
    from: usize,
    to: usize,
    strip_cr: bool,
    mut push: impl FnMut(HeaderSpan),
) -> Result<(), CodecError> {
    let mut pos = from;
    while pos < to {
        let end = memchr::memchr(b'\n', &buf[pos..to]).map_or(to, |i| pos + i);
        let mut line_end = end;
        if strip_cr && line_end > pos && buf[line_end - 1] == b'\r' {
            line_end -= 1;
        }
        let line = &buf[pos..line_end];
        let colon = match memchr::memchr(b':', line) {
            Some(c) if c > 0 => c,
            _ => {
                return Err(CodecError::MalformedHeader {
                    offset: pos as u64,
                    line: excerpt(line, 60),
                });
            }
        };
        let mut value = colon + 1;
        while value < line.len() && (line[value] == b' ' || line[value] == b'\t') {
            value += 1;
        }
        push(HeaderSpan {
            name: Span::new(pos, pos + colon),
            value: Span::new(pos + value, line_end),
        });
        pos = end + 1;
    }
    Ok(())
}

/// The first header named `name`. Names are compared whole (never as a prefix) and without
/// regard to ASCII case, as FreeSWITCH's `switch_event_get_header` does: clients send
/// `content-length` in `sendmsg`, FreeSWITCH sends `Content-Length`.
pub(crate) fn find<'h>(
    buf: &[u8],
    headers: &'h [HeaderSpan],
    name: &str,
) -> Option<&'h HeaderSpan> {
    let name = name.as_bytes();
    headers
        .iter()
        .find(|h| h.name.len() == name.len() && buf[h.name.range()].eq_ignore_ascii_case(name))
}

/// Text of a span of a buffer already checked to be UTF-8 ("" if it is not, which cannot
/// happen for spans the parsers produced).
pub(crate) fn text(buf: &[u8], span: Span) -> &str {
    std::str::from_utf8(&buf[span.range()]).unwrap_or_default()
}

/// Parse a Content-Length value: ASCII digits only, no sign, no blanks, at most 19 digits.
pub(crate) fn parse_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 19 {
        return None;
    }
    let mut n: u64 = 0;
    for &b in value {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u64::from(b - b'0');
    }
    Some(n)
}

/// Whether `bytes` are UTF-8; on error, where the first bad byte is. Header text from
/// FreeSWITCH is ASCII, which is checked a word at a time before the full UTF-8 check.
pub(crate) fn check_utf8(bytes: &[u8]) -> Result<(), usize> {
    if bytes.is_ascii() {
        return Ok(());
    }
    std::str::from_utf8(bytes)
        .map(drop)
        .map_err(|e| e.valid_up_to())
}

/// Index the header section of a serialized event (`Name: url-encoded value` lines ended by a
/// blank line) into `headers`; returns where the section ends (just past the blank line, or
/// the end of the bytes when there is none: a last line without its newline is still a
/// header), and whether every byte looked at was ASCII (when not, the caller checks UTF-8).
/// `Err((start, end))` is a line without a colon.
///
/// This is the hot loop of the codec (a plain event is about 70 such lines), so it classifies
/// sixty-four bytes at a time ([`separators`]) rather than calling a search per line: with
/// values URL-encoded, the only raw `:` of a line is its separator.
pub(crate) fn index_section(
    buf: &[u8],
    headers: &mut Vec<HeaderSpan>,
) -> Result<(usize, bool), (usize, usize)> {
    let mut scan = SectionScan {
        line_start: 0,
        colon: usize::MAX,
        high: 0,
    };
    let mut chunks = buf.chunks_exact(BLOCK);
    let mut base = 0;
    for chunk in &mut chunks {
        let block = <&[u8; BLOCK]>::try_from(chunk).unwrap_or(&[0; BLOCK]);
        if let Some(end) = scan.block(buf, headers, base, separators(block))? {
            return Ok((end, scan.high == 0));
        }
        base += BLOCK;
    }
    // The tail, padded with NUL, which is neither separator.
    let mut last = [0u8; BLOCK];
    last[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    if let Some(end) = scan.block(buf, headers, base, separators(&last))? {
        return Ok((end, scan.high == 0));
    }
    if scan.line_start < buf.len() {
        push_line(buf, headers, scan.line_start, scan.colon, buf.len())?;
    }
    Ok((buf.len(), scan.high == 0))
}

/// Bytes classified at once by [`index_section`]: four SSE2 vectors, one bit each in a `u64`.
const BLOCK: usize = 64;

/// Bit masks (bit n for byte n) of the newlines, of the newlines and colons, and of the bytes
/// above 0x7F, of [`BLOCK`] bytes.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn separators(block: &[u8; BLOCK]) -> (u64, u64, u64) {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };
    let (mut newlines, mut any, mut high) = (0u64, 0u64, 0u64);
    for (k, lane) in block.chunks_exact(16).enumerate() {
        // SAFETY: the load reads the 16 bytes of `lane` (unaligned loads are allowed); SSE2 is
        // part of the x86_64 baseline, so every intrinsic here is available.
        let (n, a, h) = unsafe {
            let v = _mm_loadu_si128(lane.as_ptr().cast());
            let nl = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\n' as i8));
            let colons = _mm_cmpeq_epi8(v, _mm_set1_epi8(b':' as i8));
            (
                _mm_movemask_epi8(nl) as u16,
                _mm_movemask_epi8(_mm_or_si128(nl, colons)) as u16,
                _mm_movemask_epi8(v) as u16,
            )
        };
        let shift = 16 * k;
        newlines |= u64::from(n) << shift;
        any |= u64::from(a) << shift;
        high |= u64::from(h) << shift;
    }
    (newlines, any, high)
}

/// Bit masks (bit n for byte n) of the newlines, of the newlines and colons, and of the bytes
/// above 0x7F, of [`BLOCK`] bytes.
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn separators(block: &[u8; BLOCK]) -> (u64, u64, u64) {
    let (mut newlines, mut any, mut high) = (0u64, 0u64, 0u64);
    for (n, &b) in block.iter().enumerate() {
        newlines |= u64::from(b == b'\n') << n;
        any |= u64::from(b == b'\n' || b == b':') << n;
        high |= u64::from(b > 0x7f) << n;
    }
    (newlines, any, high)
}

/// Where [`index_section`] is: the current line's start and its first colon, and any byte above
/// 0x7F seen so far.
struct SectionScan {
    line_start: usize,
    colon: usize,
    high: u64,
}

impl SectionScan {
    /// Handle the separators of the 16 bytes at `base`; `Some(end)` at the blank line.
    #[inline(always)]
    fn block(
        &mut self,
        buf: &[u8],
        headers: &mut Vec<HeaderSpan>,
        base: usize,
        (newlines, mut mask, high): (u64, u64, u64),
    ) -> Result<Option<usize>, (usize, usize)> {
        self.high |= high;
        while mask != 0 {
            let n = mask.trailing_zeros();
            mask &= mask - 1;
            let i = base + n as usize;
            if newlines & (1 << n) == 0 {
                if self.colon == usize::MAX {
                    self.colon = i;
                }
                continue;
            }
            if i == self.line_start {
                return Ok(Some(i + 1));
            }
            push_line(buf, headers, self.line_start, self.colon, i)?;
            self.line_start = i + 1;
            self.colon = usize::MAX;
        }
        Ok(None)
    }
}

#[inline(always)]
fn push_line(
    buf: &[u8],
    headers: &mut Vec<HeaderSpan>,
    start: usize,
    colon: usize,
    end: usize,
) -> Result<(), (usize, usize)> {
    if colon == usize::MAX || colon == start {
        return Err((start, end));
    }
    // switch_event_serialize writes exactly `Name: value`, and a value cannot begin with a raw
    // blank (it would be `%20`), so one optional space is all there is to skip.
    let value = if buf.get(colon + 1) == Some(&b' ') && colon + 1 < end {
        colon + 2
    } else {
        colon + 1
    };
    headers.push(HeaderSpan {
        name: Span::new(start, colon),
        value: Span::new(value, end),
    });
    Ok(())
}
