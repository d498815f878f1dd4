//! Events: one typed view over the three formats FreeSWITCH writes (plain, JSON, XML).
//!
//! Whatever the format, an [`Event`] has the same header names and (decoded) values, and the
//! same body: the plain inner `Content-Length` + body, JSON's `"Content-Length"` + `"_body"`,
//! XML's `<Content-Length>` + `<body>` (README, "bgapi": the three forms of BACKGROUND_JOB).
//! The view shares the frame's bytes; values are URL-decoded only when asked.

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;

use super::error::CodecError;
use super::header::{self, HeaderSpan, Span};
use super::ids::JobUuid;
use super::server::OwnedEvent;
use super::urlcode;
use crate::media::LegId;

/// The three event formats of `event plain|json|xml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventFormat {
    /// `text/event-plain`: `Name: value` lines, values URL-encoded.
    Plain,
    /// `text/event-json`: one JSON object, values not encoded.
    Json,
    /// `text/event-xml`: `<event><headers><Name>value</Name>…`, values URL-encoded.
    Xml,
}

impl EventFormat {
    /// The word in `event <format> …` and `myevents <format>`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventFormat::Plain => "plain",
            EventFormat::Json => "json",
            EventFormat::Xml => "xml",
        }
    }

    /// The format named by a word of `event`/`myevents` (FreeSWITCH compares without case).
    pub fn from_word(word: &str) -> Option<Self> {
        [EventFormat::Plain, EventFormat::Json, EventFormat::Xml]
            .into_iter()
            .find(|f| f.as_str().eq_ignore_ascii_case(word))
    }

    /// The Content-Type of frames carrying this format.
    pub fn content_type(self) -> &'static str {
        match self {
            EventFormat::Plain => "text/event-plain",
            EventFormat::Json => "text/event-json",
            EventFormat::Xml => "text/event-xml",
        }
    }
}

impl fmt::Display for EventFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A span whose start has this bit set points into the event's `extra` text (values that had
/// to be unescaped or built) instead of the shared bytes. Frames stay below 2 GiB
/// ([`Limits`](super::Limits)), so the bit is free.
const EXTRA: u32 = 1 << 31;

/// One event, in any of the three formats.
#[derive(Clone)]
pub struct Event {
    format: EventFormat,
    raw: Bytes,
    offset: u64,
    headers: Vec<HeaderSpan>,
    extra: String,
    body: Option<Span>,
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("format", &self.format)
            .field("offset", &self.offset)
            .field("headers", &self.headers().collect::<Vec<_>>())
            .field("body", &self.body().map(String::from_utf8_lossy))
            .finish()
    }
}

impl Event {
    /// The format it arrived in.
    pub fn format(&self) -> EventFormat {
        self.format
    }

    /// Where its body starts in the stream.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// `Event-Name` (`CHANNEL_ANSWER`, `CUSTOM`, ...). Event names are plain identifiers, which
    /// URL encoding leaves alone, so this is the value as received.
    pub fn name(&self) -> Option<&str> {
        self.header_raw("Event-Name")
    }

    /// `Event-Subclass` of a CUSTOM event, decoded (`callcenter%3A%3Ainfo` →
    /// `callcenter::info`).
    pub fn subclass(&self) -> Option<Cow<'_, str>> {
        self.header("Event-Subclass")
    }

    /// `Unique-ID`: the channel the event is about.
    pub fn unique_id(&self) -> Option<LegId> {
        self.header("Unique-ID").map(|v| LegId::new(v.as_ref()))
    }

    /// `Job-UUID` (BACKGROUND_JOB events).
    pub fn job_uuid(&self) -> Option<JobUuid> {
        self.header("Job-UUID").map(|v| JobUuid::new(v.as_ref()))
    }

    /// A header's value, decoded as the format requires (URL-decoded for plain and XML, as is
    /// for JSON), so that it is the same whatever the format. Names match whole, ignoring ASCII
    /// case (as `switch_event_get_header` does).
    pub fn header(&self, name: &str) -> Option<Cow<'_, str>> {
        let raw = self.header_raw(name)?;
        Some(self.decode(raw))
    }

    /// A header's value as carried (URL-encoded in plain and XML events).
    pub fn header_raw(&self, name: &str) -> Option<&str> {
        let name = name.as_bytes();
        self.headers
            .iter()
            .find(|h| h.name.len() == name.len() && self.bytes(h.name).eq_ignore_ascii_case(name))
            .map(|h| self.text(h.value))
    }

    /// Every header in order, values decoded.
    pub fn headers(&self) -> impl Iterator<Item = (&str, Cow<'_, str>)> + '_ {
        self.headers
            .iter()
            .map(move |h| (self.text(h.name), self.decode(self.text(h.value))))
    }

    /// Every header in order, values as carried.
    pub fn headers_raw(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.headers
            .iter()
            .map(move |h| (self.text(h.name), self.text(h.value)))
    }

    /// How many headers it has.
    pub fn header_count(&self) -> usize {
        self.headers.len()
    }

    /// The body (BACKGROUND_JOB's result, RECV_INFO's SIP body, ...), if any.
    pub fn body(&self) -> Option<&[u8]> {
        self.body.map(|span| self.bytes(span))
    }

    /// An owned copy with decoded values, ready to encode in any format. The `Content-Length`
    /// header that accompanies a body is left out: encoders write it from the body.
    pub fn to_owned_event(&self) -> OwnedEvent {
        let has_body = self.body.is_some();
        OwnedEvent {
            headers: self
                .headers()
                .filter(|(name, _)| !(has_body && name.eq_ignore_ascii_case("Content-Length")))
                .map(|(name, value)| (name.to_owned(), value.into_owned()))
                .collect(),
            body: self.body().map(|b| String::from_utf8_lossy(b).into_owned()),
        }
    }

    fn decode<'a>(&self, raw: &'a str) -> Cow<'a, str> {
        match self.format {
            EventFormat::Plain | EventFormat::Xml => urlcode::decode(raw),
            EventFormat::Json => Cow::Borrowed(raw),
        }
    }

    fn bytes(&self, span: Span) -> &[u8] {
        if span.start & EXTRA != 0 {
            let range = (span.start & !EXTRA) as usize..(span.end & !EXTRA) as usize;
            self.extra.as_bytes().get(range).unwrap_or_default()
        } else {
            self.raw.get(span.range()).unwrap_or_default()
        }
    }

    fn text(&self, span: Span) -> &str {
        if span.start & EXTRA != 0 {
            let range = (span.start & !EXTRA) as usize..(span.end & !EXTRA) as usize;
            self.extra.get(range).unwrap_or_default()
        } else {
            header::text(&self.raw, span)
        }
    }

    /// Keep `text` in the event's own text and return its span.
    fn keep(extra: &mut String, text: &str) -> Span {
        let start = extra.len();
        extra.push_str(text);
        Span {
            start: start as u32 | EXTRA,
            end: extra.len() as u32 | EXTRA,
        }
    }

    // ---- plain ----------------------------------------------------------------------------

    /// Parse a `text/event-plain` body (`offset`: where it starts in the stream). Its header
    /// section is `Name: url-encoded value` lines ended by a blank line; with an inner
    /// `Content-Length: N`, exactly N body bytes follow (switch_event_serialize). The same form
    /// is the header block of the outbound `connect` reply.
    pub fn parse_plain(raw: Bytes, offset: u64) -> Result<Event, CodecError> {
        let buf = &raw[..];
        let bad = |at: usize, reason: String| CodecError::BadPlainEvent {
            offset: offset + at as u64,
            reason,
        };
        // Values are URL-encoded, so the first blank line ends the headers even when the body
        // is full of newlines (RECV_INFO's SIP body) or colons.
        let mut headers = Vec::with_capacity(buf.len() / 40 + 4);
        let (body_start, ascii) = match header::index_section(buf, &mut headers) {
            Ok(found) => found,
            Err((start, end)) => {
                return Err(CodecError::MalformedHeader {
                    offset: offset + start as u64,
                    line: super::error::excerpt(&buf[start..end], 60),
                });
            }
        };
        // FreeSWITCH encodes every byte above '~', so the section is ASCII (the scan saw that
        // on the way); the full UTF-8 check runs only when it is not, to say where.
        if !ascii && let Err(at) = header::check_utf8(&buf[..body_start]) {
            return Err(CodecError::InvalidUtf8 {
                offset: offset + at as u64,
                what: "plain event headers",
            });
        }
        let rest = buf.len() - body_start;
        let body = match header::find(buf, &headers, "Content-Length") {
            Some(h) => {
                let value = &buf[h.value.range()];
                let Some(n) = header::parse_length(value) else {
                    return Err(bad(
                        h.value.start as usize,
                        format!(
                            "inner Content-Length {:?} is not a number",
                            String::from_utf8_lossy(value)
                        ),
                    ));
                };
                if n != rest as u64 {
                    return Err(bad(
                        body_start,
                        format!("inner Content-Length is {n} but {rest} bytes follow the headers"),
                    ));
                }
                Some(Span::new(body_start, buf.len()))
            }
            None if rest > 0 => {
                return Err(bad(
                    body_start,
                    format!("{rest} bytes follow the headers without a Content-Length"),
                ));
            }
            None => None,
        };
        Ok(Event {
            format: EventFormat::Plain,
            raw,
            offset,
            headers,
            extra: String::new(),
            body,
        })
    }

    // ---- JSON -----------------------------------------------------------------------------

    /// Parse a `text/event-json` body: one object of string values (switch_event_serialize_json,
    /// cJSON unformatted). An array value (a FreeSWITCH array header) reads as the plain form
    /// `ARRAY::a|:b`; `_body` is the body.
    pub fn parse_json(raw: Bytes, offset: u64) -> Result<Event, CodecError> {
        let parsed = {
            let mut de = serde_json::Deserializer::from_slice(&raw);
            let parsed = <json::Object<'_> as serde::Deserialize>::deserialize(&mut de)
                .and_then(|o| de.end().map(|()| o));
            match parsed {
                Ok(object) => Ok(json::lay_out(&raw, object)),
                Err(e) => Err(CodecError::BadJsonEvent {
                    offset,
                    reason: e.to_string(),
                }),
            }
        }?;
        Ok(Event {
            format: EventFormat::Json,
            raw,
            offset,
            headers: parsed.headers,
            extra: parsed.extra,
            body: parsed.body,
        })
    }

    // ---- XML ------------------------------------------------------------------------------

    /// Parse a `text/event-xml` body (switch_event_xmlize + switch_xml_toxml): `<event>`, then
    /// `<headers>` with one element per header (URL-encoded text), then for a body
    /// `<Content-Length>` and `<body>`.
    pub fn parse_xml(raw: Bytes, offset: u64) -> Result<Event, CodecError> {
        let parsed = xml::parse(&raw, offset)?;
        Ok(Event {
            format: EventFormat::Xml,
            raw,
            offset,
            headers: parsed.headers,
            extra: parsed.extra,
            body: parsed.body,
        })
    }
}

/// What the JSON and XML readers produce: spans into the body or into `extra`.
struct Laid {
    headers: Vec<HeaderSpan>,
    extra: String,
    body: Option<Span>,
}

mod json {
    //! A serde visitor that keeps the object's order and borrows every string it can.

    use std::borrow::Cow;
    use std::fmt;

    use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

    use super::{Event, HeaderSpan, Laid, Span};

    /// A string, borrowed from the input when it had no escapes.
    pub(super) struct Text<'de>(pub Cow<'de, str>);

    impl<'de> de::Deserialize<'de> for Text<'de> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Text<'de>;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a string")
                }
                fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                    Ok(Text(Cow::Borrowed(v)))
                }
                fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                    Ok(Text(Cow::Owned(v.to_owned())))
                }
                fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                    Ok(Text(Cow::Owned(v)))
                }
            }
            d.deserialize_str(V)
        }
    }

    /// A header value: FreeSWITCH writes strings, and arrays of strings for array headers.
    pub(super) enum Value<'de> {
        Text(Cow<'de, str>),
        Array(Vec<String>),
    }

    impl<'de> de::Deserialize<'de> for Value<'de> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Value<'de>;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a string or an array of strings")
                }
                fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                    Ok(Value::Text(Cow::Borrowed(v)))
                }
                fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                    Ok(Value::Text(Cow::Owned(v.to_owned())))
                }
                fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                    Ok(Value::Text(Cow::Owned(v)))
                }
                // Not written by FreeSWITCH, read as their JSON text rather than refused.
                fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                    Ok(Value::Text(Cow::Owned(v.to_string())))
                }
                fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                    Ok(Value::Text(Cow::Owned(v.to_string())))
                }
                fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                    Ok(Value::Text(Cow::Owned(v.to_string())))
                }
                fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                    Ok(Value::Text(Cow::Owned(v.to_string())))
                }
                fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                    Ok(Value::Text(Cow::Borrowed("")))
                }
                fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                    let mut items = Vec::new();
                    while let Some(item) = seq.next_element::<Value<'de>>()? {
                        match item {
                            Value::Text(t) => items.push(t.into_owned()),
                            Value::Array(_) => {
                                return Err(de::Error::custom("nested arrays in an event"));
                            }
                        }
                    }
                    Ok(Value::Array(items))
                }
            }
            d.deserialize_any(V)
        }
    }

    /// The event object, in order.
    pub(super) struct Object<'de>(pub Vec<(Text<'de>, Value<'de>)>);

    impl<'de> de::Deserialize<'de> for Object<'de> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Object<'de>;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("an event object")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                    let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(64));
                    while let Some(entry) = map.next_entry::<Text<'de>, Value<'de>>()? {
                        entries.push(entry);
                    }
                    Ok(Object(entries))
                }
            }
            d.deserialize_map(V)
        }
    }

    /// Turn the parsed object into spans: borrowed strings point into `raw`, the others are
    /// kept in the event's own text.
    pub(super) fn lay_out(raw: &[u8], object: Object<'_>) -> Laid {
        let base = raw.as_ptr() as usize;
        let mut extra = String::new();
        let place = |extra: &mut String, text: &Cow<'_, str>| -> Span {
            if let Cow::Borrowed(s) = text {
                let at = (s.as_ptr() as usize).wrapping_sub(base);
                if at <= raw.len() && s.len() <= raw.len() - at {
                    return Span::new(at, at + s.len());
                }
            }
            Event::keep(extra, text)
        };
        let mut headers = Vec::with_capacity(object.0.len());
        let mut body = None;
        for (Text(name), value) in object.0 {
            let value = match value {
                Value::Text(t) => t,
                Value::Array(items) => Cow::Owned(format!("ARRAY::{}", items.join("|:"))),
            };
            // switch_event_create_json reads `_body` without regard to case.
            if name.eq_ignore_ascii_case("_body") {
                body = Some(place(&mut extra, &value));
                continue;
            }
            let name = place(&mut extra, &name);
            let value = place(&mut extra, &value);
            headers.push(HeaderSpan { name, value });
        }
        Laid {
            headers,
            extra,
            body,
        }
    }
}

mod xml {
    //! A reader for exactly the XML FreeSWITCH writes for events; not a general XML parser.

    use super::{CodecError, Event, HeaderSpan, Laid, Span};

    struct Reader<'a> {
        text: &'a str,
        pos: usize,
        offset: u64,
    }

    impl<'a> Reader<'a> {
        fn fail(&self, reason: impl Into<String>) -> CodecError {
            CodecError::BadXmlEvent {
                offset: self.offset + self.pos as u64,
                reason: reason.into(),
            }
        }

        fn rest(&self) -> &'a str {
            &self.text[self.pos..]
        }

        fn skip_blanks(&mut self) {
            let rest = self.rest();
            self.pos += rest.len() - rest.trim_start().len();
        }

        fn eat(&mut self, token: &str) -> bool {
            if self.rest().starts_with(token) {
                self.pos += token.len();
                true
            } else {
                false
            }
        }

        fn expect(&mut self, token: &str) -> Result<(), CodecError> {
            if self.eat(token) {
                Ok(())
            } else {
                Err(self.fail(format!("expected {token}")))
            }
        }

        /// `<name>` or `<name/>`: the name, and whether the element is empty.
        fn open_tag(&mut self) -> Result<(Span, bool), CodecError> {
            self.expect("<")?;
            let start = self.pos;
            let rest = self.rest();
            let end = rest
                .find(|c: char| c == '>' || c == '/' || c.is_whitespace())
                .ok_or_else(|| self.fail("unterminated tag"))?;
            if end == 0 {
                return Err(self.fail("empty element name"));
            }
            self.pos += end;
            let name = Span::new(start, start + end);
            if self.eat("/>") {
                return Ok((name, true));
            }
            self.expect(">")?;
            Ok((name, false))
        }

        /// Text up to `</name>`, consumed; returns the raw text's span.
        fn text_until_close(&mut self, name: &str) -> Result<Span, CodecError> {
            let start = self.pos;
            let close = format!("</{name}>");
            let end = memchr::memmem::find(self.rest().as_bytes(), close.as_bytes())
                .ok_or_else(|| self.fail(format!("no {close}")))?;
            let text = &self.rest()[..end];
            if text.contains('<') {
                return Err(self.fail(format!("markup inside <{name}>")));
            }
            self.pos += end + close.len();
            Ok(Span::new(start, start + end))
        }
    }

    /// Resolve the entities switch_xml_ampencode writes (`&amp;` `&lt;` `&gt;` `&quot;` `&apos;`
    /// and `&#xD;` for CR, `&#x…;` for every non-ASCII character of a body).
    fn unescape(text: &str) -> Result<String, String> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(amp) = rest.find('&') {
            out.push_str(&rest[..amp]);
            let tail = &rest[amp + 1..];
            let semi = tail
                .find(';')
                .filter(|&i| i <= 10)
                .ok_or_else(|| format!("unterminated entity {:?}", &tail[..tail.len().min(10)]))?;
            let entity = &tail[..semi];
            let c = match entity {
                "amp" => '&',
                "lt" => '<',
                "gt" => '>',
                "quot" => '"',
                "apos" => '\'',
                _ => {
                    let code = if let Some(hex) =
                        entity.strip_prefix("#x").or(entity.strip_prefix("#X"))
                    {
                        u32::from_str_radix(hex, 16).ok()
                    } else if let Some(dec) = entity.strip_prefix('#') {
                        dec.parse().ok()
                    } else {
                        None
                    };
                    code.and_then(char::from_u32)
                        .ok_or_else(|| format!("unknown entity &{entity};"))?
                }
            };
            out.push(c);
            rest = &tail[semi + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn span_text<'a>(text: &'a str, extra: &'a str, span: Span) -> &'a str {
        if span.start & super::EXTRA != 0 {
            let range = (span.start & !super::EXTRA) as usize..(span.end & !super::EXTRA) as usize;
            extra.get(range).unwrap_or_default()
        } else {
            text.get(span.range()).unwrap_or_default()
        }
    }

    pub(super) fn parse(raw: &[u8], offset: u64) -> Result<Laid, CodecError> {
        let text = std::str::from_utf8(raw).map_err(|e| CodecError::InvalidUtf8 {
            offset: offset + e.valid_up_to() as u64,
            what: "XML event",
        })?;
        let mut r = Reader {
            text,
            pos: 0,
            offset,
        };
        let mut extra = String::new();
        let mut headers = Vec::with_capacity(raw.len() / 60 + 4);
        let mut body = None;
        let mut content_length: Option<(u64, usize)> = None;
        let mut in_array = false;

        // A text span, unescaped into `extra` when it holds entities.
        let resolve =
            |r: &Reader<'_>, extra: &mut String, span: Span| -> Result<Span, CodecError> {
                let t = &r.text[span.range()];
                if !t.contains('&') {
                    return Ok(span);
                }
                let plain = unescape(t).map_err(|why| CodecError::BadXmlEvent {
                    offset: offset + u64::from(span.start),
                    reason: why,
                })?;
                Ok(Event::keep(extra, &plain))
            };

        r.skip_blanks();
        if r.rest().starts_with("<?xml") {
            let end = r
                .rest()
                .find("?>")
                .ok_or_else(|| r.fail("unterminated <?xml"))?;
            r.pos += end + 2;
            r.skip_blanks();
        }
        r.expect("<event>")?;
        loop {
            r.skip_blanks();
            if r.eat("</event>") {
                break;
            }
            let (name, empty) = r.open_tag()?;
            let tag = &text[name.range()];
            match tag {
                "headers" if !empty => loop {
                    r.skip_blanks();
                    if r.eat("</headers>") {
                        break;
                    }
                    let (hname, empty) = r.open_tag()?;
                    let value = if empty {
                        Span::new(r.pos, r.pos)
                    } else {
                        let span = r.text_until_close(&text[hname.range()])?;
                        resolve(&r, &mut extra, span)?
                    };
                    // switch_event_xmlize writes each item of an array header as its own
                    // element, one after another; read them back as the plain form
                    // `ARRAY::a|:b`, the same value a plain or JSON event gives.
                    let repeated = headers.last().is_some_and(|last: &HeaderSpan| {
                        text[last.name.range()] == text[hname.range()]
                    });
                    match headers.pop() {
                        Some(last) if repeated => {
                            let prev = span_text(text, &extra, last.value).to_owned();
                            let item = span_text(text, &extra, value);
                            let merged = if in_array {
                                format!("{prev}|:{item}")
                            } else {
                                format!("ARRAY::{prev}|:{item}")
                            };
                            let value = Event::keep(&mut extra, &merged);
                            headers.push(HeaderSpan {
                                name: last.name,
                                value,
                            });
                            in_array = true;
                        }
                        last => {
                            headers.extend(last);
                            headers.push(HeaderSpan { name: hname, value });
                            in_array = false;
                        }
                    }
                },
                "headers" => {}
                "Content-Length" if !empty => {
                    let span = r.text_until_close("Content-Length")?;
                    let n = super::header::parse_length(text[span.range()].as_bytes())
                        .ok_or_else(|| r.fail("<Content-Length> is not a number"))?;
                    content_length = Some((n, span.start as usize));
                    headers.push(HeaderSpan { name, value: span });
                }
                "body" if !empty => {
                    let span = r.text_until_close("body")?;
                    body = Some(resolve(&r, &mut extra, span)?);
                }
                "body" => body = Some(Span::new(r.pos, r.pos)),
                other => return Err(r.fail(format!("unexpected element <{other}>"))),
            }
        }
        r.skip_blanks();
        if !r.rest().is_empty() {
            return Err(r.fail("bytes after </event>"));
        }
        // switch_xml_toxml indents the closing tag when the text ends with a newline:
        // `<body>+OK …\n  </body>` (fixture events_xml_loopback_call). The body's
        // <Content-Length> says whether those two blanks are indentation or text.
        if let Some(span) = body.as_mut() {
            let indented = span_text(text, &extra, *span).ends_with("\n  ");
            let unindented = Span {
                start: span.start,
                end: span.end - 2,
            };
            match content_length {
                Some((n, _)) if n == span.len() as u64 => {}
                Some((n, _)) if indented && n == unindented.len() as u64 => *span = unindented,
                Some((n, at)) => {
                    return Err(CodecError::BadXmlEvent {
                        offset: offset + at as u64,
                        reason: format!(
                            "<Content-Length> is {n} but the body has {} bytes",
                            span.len()
                        ),
                    });
                }
                None if indented => *span = unindented,
                None => {}
            }
        }
        Ok(Laid {
            headers,
            extra,
            body,
        })
    }
}
