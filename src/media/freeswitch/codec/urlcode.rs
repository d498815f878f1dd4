//! FreeSWITCH's URL encoding of event header values (`switch_url_encode` /
//! `switch_url_decode` in `switch_utils.c`).
//!
//! `text/event-plain` frames, the values inside `text/event-xml`, and the outbound `connect`
//! reply carry every header value URL-encoded (`Event-Date-Local: 2026-11-21%2021%3A07%3A38`,
//! `Reply-Text: %2BOK%0A`); JSON events and ordinary replies do not.

use std::borrow::Cow;

/// FreeSWITCH's `SWITCH_URL_UNSAFE` (`switch_utils.h`); every byte below `' '` or above `'~'` is
/// encoded too (so are all non-ASCII bytes: a UTF-8 name arrives as `%C3%A9`).
const UNSAFE: &[u8] = b"\r\n #%&+:;<=>?@[\\]^`{|}\"";

/// `ENCODE[b]` is true when FreeSWITCH writes byte `b` as `%XX`.
static ENCODE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = b < 0x20 || b > 0x7e;
        b += 1;
    }
    let mut i = 0;
    while i < UNSAFE.len() {
        table[UNSAFE[i] as usize] = true;
        i += 1;
    }
    table
};

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Whether FreeSWITCH would encode this byte in an event header value.
pub fn is_unsafe(byte: u8) -> bool {
    ENCODE[byte as usize]
}

/// Append `value` URL-encoded the way FreeSWITCH serializes event header values.
///
/// One difference, on purpose: FreeSWITCH leaves an existing `%XX` (upper-case hex) alone
/// (`switch_url_encode_opt` with `double_encode = false`), which loses information (`%41` and
/// `A` decode alike). This encoder always encodes `%`, so decoding gives back exactly what went
/// in. For every value that holds no such sequence, the bytes are the same as FreeSWITCH's.
pub fn encode_into(value: &[u8], out: &mut Vec<u8>) {
    let mut start = 0;
    for (i, &b) in value.iter().enumerate() {
        if ENCODE[b as usize] {
            out.extend_from_slice(&value[start..i]);
            out.extend_from_slice(&[b'%', HEX[(b >> 4) as usize], HEX[(b & 0x0f) as usize]]);
            start = i + 1;
        }
    }
    out.extend_from_slice(&value[start..]);
}

/// `value` URL-encoded as FreeSWITCH writes event header values (borrowed when nothing needs it).
pub fn encode(value: &str) -> Cow<'_, str> {
    if !value.bytes().any(is_unsafe) {
        return Cow::Borrowed(value);
    }
    let mut out = Vec::with_capacity(value.len() + 16);
    encode_into(value.as_bytes(), &mut out);
    // Only ASCII was added and whole UTF-8 sequences were replaced by ASCII escapes.
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decode `%XX` escapes into bytes, as `switch_url_decode` does: a `%` not followed by two hex
/// digits stays as it is, and `+` is not a space (FreeSWITCH encodes a space as `%20`).
pub fn decode_bytes(raw: &[u8]) -> Cow<'_, [u8]> {
    let Some(first) = memchr::memchr(b'%', raw) else {
        return Cow::Borrowed(raw);
    };
    let mut out = Vec::with_capacity(raw.len());
    out.extend_from_slice(&raw[..first]);
    let mut i = first;
    while i < raw.len() {
        let b = raw[i];
        let escaped = if b == b'%' && i + 2 < raw.len() {
            hex_value(raw[i + 1]).zip(hex_value(raw[i + 2]))
        } else {
            None
        };
        if let Some((h, l)) = escaped {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(b);
        i += 1;
    }
    Cow::Owned(out)
}

/// Decode `%XX` escapes into text. Bytes that do not form UTF-8 after decoding (FreeSWITCH never
/// produces them: it encodes whole UTF-8 sequences) become U+FFFD; use [`decode_bytes`] for
/// the exact bytes.
pub fn decode(raw: &str) -> Cow<'_, str> {
    match decode_bytes(raw.as_bytes()) {
        Cow::Borrowed(_) => Cow::Borrowed(raw),
        Cow::Owned(bytes) => match String::from_utf8(bytes) {
            Ok(text) => Cow::Owned(text),
            Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_the_fixtures() {
        // events_plain_loopback_call.raw: Event-Date-Local, Job-Command-Arg, FreeSWITCH-IPv6.
        assert_eq!(encode("2026-11-21 21:07:38"), "2026-11-21%2021%3A07%3A38");
        assert_eq!(
            encode("{origination_uuid=x,a=b}loopback/7201/default &park()"),
            "%7Borigination_uuid%3Dx,a%3Db%7Dloopback/7201/default%20%26park()"
        );
        assert_eq!(encode("fd00::2"), "fd00%3A%3A2");
        assert_eq!(
            encode("tone_stream://%(1000,0,440)"),
            "tone_stream%3A//%25(1000,0,440)"
        );
        // outbound_socket_async_full_linger.raw: the connect reply's Reply-Text.
        assert_eq!(encode("+OK\n"), "%2BOK%0A");
        assert_eq!(encode("José"), "Jos%C3%A9");
    }

    #[test]
    fn decodes_like_switch_url_decode() {
        assert_eq!(decode("Sat,%2021%20Nov"), "Sat, 21 Nov");
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%zz%4"), "%zz%4");
        assert_eq!(decode("a+b"), "a+b");
        assert_eq!(decode("%c3%a9"), "é");
        assert_eq!(decode("%FF"), "\u{FFFD}");
        assert!(matches!(decode("plain"), Cow::Borrowed(_)));
    }
}
