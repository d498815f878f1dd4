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
/// sixty-four bytes at a time ([`Separators`]) rather than calling a search per line: with
/// values URL-encoded, the only raw `:` of a line is its separator. The classification uses the
/// widest vectors the CPU has (AVX-512BW, AVX2, else SSE2), chosen at run time.
pub(crate) fn index_section(
    buf: &[u8],
    headers: &mut Vec<HeaderSpan>,
) -> Result<(usize, bool), (usize, usize)> {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512bw") {
            // SAFETY: the CPU has AVX-512BW (checked just above).
            return unsafe { x86::index_section_avx512(buf, headers) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above).
            return unsafe { x86::index_section_avx2(buf, headers) };
        }
    }
    scan_section(buf, headers, separators)
}

/// [`index_section`] with a given classification of [`BLOCK`] bytes.
#[inline(always)]
fn scan_section(
    buf: &[u8],
    headers: &mut Vec<HeaderSpan>,
    classify: impl Fn(&[u8; BLOCK]) -> Separators,
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
        if let Some(end) = scan.block(buf, headers, base, classify(block))? {
            return Ok((end, scan.high == 0));
        }
        base += BLOCK;
    }
    // The tail, padded with NUL, which is neither separator.
    let mut last = [0u8; BLOCK];
    last[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    if let Some(end) = scan.block(buf, headers, base, classify(&last))? {
        return Ok((end, scan.high == 0));
    }
    if scan.line_start < buf.len() {
        push_line(buf, headers, scan.line_start, scan.colon, buf.len())?;
    }
    Ok((buf.len(), scan.high == 0))
}

/// Bytes classified at once by [`index_section`]: one bit each in a `u64`.
const BLOCK: usize = 64;

/// Bit masks (bit n for byte n) of a block's newlines, of its newlines and colons, and of its
/// bytes above 0x7F.
type Separators = (u64, u64, u64);

/// The vector classifications of [`BLOCK`] bytes, each compiled for its instruction set.
#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::{
        _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_movemask_epi8, _mm256_or_si256,
        _mm256_set1_epi8, _mm512_cmpeq_epi8_mask, _mm512_loadu_si512, _mm512_movepi8_mask,
        _mm512_set1_epi8,
    };

    use super::{BLOCK, HeaderSpan, Separators, scan_section};

    /// [`super::index_section`] with AVX-512BW: one compare per character class per block.
    #[target_feature(enable = "avx512bw")]
    pub(super) fn index_section_avx512(
        buf: &[u8],
        headers: &mut Vec<HeaderSpan>,
    ) -> Result<(usize, bool), (usize, usize)> {
        scan_section(buf, headers, |block| separators_avx512(block))
    }

    #[target_feature(enable = "avx512bw")]
    fn separators_avx512(block: &[u8; BLOCK]) -> Separators {
        // SAFETY: the load reads the 64 bytes of `block` (unaligned loads are allowed).
        let v = unsafe { _mm512_loadu_si512(block.as_ptr().cast()) };
        let newlines = _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8(b'\n' as i8));
        let colons = _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8(b':' as i8));
        (newlines, newlines | colons, _mm512_movepi8_mask(v))
    }

    /// [`super::index_section`] with AVX2: two 32-byte halves per block.
    #[target_feature(enable = "avx2")]
    pub(super) fn index_section_avx2(
        buf: &[u8],
        headers: &mut Vec<HeaderSpan>,
    ) -> Result<(usize, bool), (usize, usize)> {
        scan_section(buf, headers, |block| separators_avx2(block))
    }

    #[target_feature(enable = "avx2")]
    fn separators_avx2(block: &[u8; BLOCK]) -> Separators {
        let (mut newlines, mut any, mut high) = (0u64, 0u64, 0u64);
        for (k, half) in block.chunks_exact(32).enumerate() {
            // SAFETY: the load reads the 32 bytes of `half` (unaligned loads are allowed).
            let v = unsafe { _mm256_loadu_si256(half.as_ptr().cast()) };
            let nl = _mm256_cmpeq_epi8(v, _mm256_set1_epi8(b'\n' as i8));
            let colons = _mm256_cmpeq_epi8(v, _mm256_set1_epi8(b':' as i8));
            let shift = 32 * k;
            newlines |= u64::from(_mm256_movemask_epi8(nl) as u32) << shift;
            any |= u64::from(_mm256_movemask_epi8(_mm256_or_si256(nl, colons)) as u32) << shift;
            high |= u64::from(_mm256_movemask_epi8(v) as u32) << shift;
        }
        (newlines, any, high)
    }
}

/// [`Separators`] of [`BLOCK`] bytes with SSE2 (part of the x86_64 baseline): four vectors.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn separators(block: &[u8; BLOCK]) -> Separators {
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

/// [`Separators`] of [`BLOCK`] bytes, a byte at a time.
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn separators(block: &[u8; BLOCK]) -> Separators {
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
    /// Handle the separators of the block at `base`; `Some(end)` at the blank line.
    #[inline(always)]
    fn block(
        &mut self,
        buf: &[u8],
        headers: &mut Vec<HeaderSpan>,
        base: usize,
        (newlines, mut mask, high): Separators,
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    type Indexed = (Result<(usize, bool), (usize, usize)>, Vec<HeaderSpan>);

    fn with(
        run: impl FnOnce(&mut Vec<HeaderSpan>) -> Result<(usize, bool), (usize, usize)>,
    ) -> Indexed {
        let mut headers = Vec::new();
        let result = run(&mut headers);
        (result, headers)
    }

    /// A section line by line, the slow and obvious way.
    fn reference(buf: &[u8]) -> Indexed {
        let mut headers = Vec::new();
        let ascii = |end: usize| buf[..end].is_ascii();
        let mut start = 0;
        while start < buf.len() {
            let end = buf[start..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(buf.len(), |p| start + p);
            if end == start {
                return (Ok((end + 1, ascii(end + 1))), headers);
            }
            let colon = buf[start..end].iter().position(|&b| b == b':');
            match colon {
                Some(c) if c > 0 => {
                    let colon = start + c;
                    let value = if colon + 1 < end && buf[colon + 1] == b' ' {
                        colon + 2
                    } else {
                        colon + 1
                    };
                    headers.push(HeaderSpan {
                        name: Span::new(start, colon),
                        value: Span::new(value, end),
                    });
                }
                _ => return (Err((start, end)), headers),
            }
            start = end + 1;
        }
        (Ok((buf.len(), ascii(buf.len()))), headers)
    }

    /// Every classification this CPU can run, with its name.
    fn variants(buf: &[u8]) -> Vec<(&'static str, Indexed)> {
        let mut out = vec![("baseline", with(|h| scan_section(buf, h, separators)))];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2.
                out.push(("avx2", with(|h| unsafe { x86::index_section_avx2(buf, h) })));
            }
            if std::arch::is_x86_feature_detected!("avx512bw") {
                // SAFETY: the CPU has AVX-512BW.
                out.push((
                    "avx512",
                    with(|h| unsafe { x86::index_section_avx512(buf, h) }),
                ));
            }
        }
        out
    }

    /// Header sections with lines of every length around the 64-byte blocks, raw colons in
    /// values, bytes above 0x7F, lines without a colon and a blank line anywhere.
    fn section() -> impl Strategy<Value = Vec<u8>> {
        let line = prop_oneof![
            8 => ("[A-Za-z-]{1,20}", "[ -~]{0,90}").prop_map(|(n, v)| format!("{n}: {v}\n").into_bytes()),
            1 => "[a-z]{0,5}".prop_map(|n| format!("{n}\n").into_bytes()),
            1 => Just(b"X-Utf8: \xc3\xa9t\xc3\xa9\n".to_vec()),
            1 => Just(b":value\n".to_vec()),
        ];
        (
            prop::collection::vec(line, 0..40),
            any::<bool>(),
            "[ -~]{0,70}",
        )
            .prop_map(|(lines, newline_at_end, body)| {
                let mut buf = lines.concat();
                if !newline_at_end {
                    buf.pop();
                }
                buf.extend_from_slice(body.as_bytes());
                buf
            })
    }

    proptest! {
        #[test]
        fn every_vector_width_indexes_a_section_as_a_line_by_line_reading_does(buf in section()) {
            let (expected, expected_headers) = reference(&buf);
            let all = variants(&buf);
            for (name, (got, headers)) in &all {
                // The scan may look at bytes past the blank line: "not ASCII" only asks the
                // caller for the full UTF-8 check, but "ASCII" must be true of the section.
                match (got, &expected) {
                    (Ok((end, ascii)), Ok((expected_end, section_ascii))) => {
                        prop_assert_eq!(end, expected_end, "{} end", name);
                        prop_assert!(!ascii || *section_ascii, "{} said ASCII", name);
                        prop_assert_eq!(headers, &expected_headers, "{} headers", name);
                    }
                    _ => prop_assert_eq!(got, &expected, "{} result", name),
                }
                prop_assert_eq!(got, &all[0].1.0, "{} against the baseline", name);
            }
        }
    }
}
