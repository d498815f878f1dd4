//! Frames as FreeSWITCH writes them, for the emulator: the same bytes, header order and
//! quirks the captures show (fixtures/esl/*.raw), down to `_undef_` for an empty plain value.

use super::error::CodecError;
use super::event::EventFormat;
use super::frame::{ACCESS_DENIED, DisconnectNotice, LogRecord};
use super::ids::JobUuid;
use super::urlcode;

/// An event to send: headers in the order FreeSWITCH would write them, and an optional body.
/// Encoders add the body's `Content-Length` themselves (as switch_event_serialize does), so
/// `headers` should not hold one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OwnedEvent {
    /// Headers in order, values not encoded (the encoder encodes as the format requires).
    pub headers: Vec<(String, String)>,
    /// The body (BACKGROUND_JOB's result, ...).
    pub body: Option<String>,
}

impl OwnedEvent {
    /// An event whose first header is `Event-Name: name`.
    pub fn new(name: &str) -> Self {
        OwnedEvent {
            headers: vec![("Event-Name".to_owned(), name.to_owned())],
            body: None,
        }
    }

    /// Add a header at the end.
    pub fn push(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.headers.push((name.into(), value.into()));
    }

    /// With a header added at the end.
    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.push(name, value);
        self
    }

    /// With a body.
    pub fn with_body(mut self, body: impl Into<String>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// The first header named `name` (ASCII case ignored).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn check_names(&self, xml: bool) -> Result<(), CodecError> {
        for (name, _) in &self.headers {
            if name.is_empty() {
                return Err(unencodable("event header name", "empty"));
            }
            if name.contains([':', '\n', '\r']) {
                return Err(unencodable(
                    "event header name",
                    "contains ':' or a line break (names are not encoded)",
                ));
            }
            if xml
                && name.contains(|c: char| {
                    c.is_whitespace() || matches!(c, '<' | '>' | '/' | '&' | '"' | '\'' | '=')
                })
            {
                return Err(unencodable(
                    "event header name",
                    "is not an XML element name",
                ));
            }
        }
        Ok(())
    }

    /// The serialized event (switch_event_serialize with encoding): `Name: url-encoded value`
    /// lines, then `Content-Length: N`, a blank line and the body, or just a blank line.
    /// An empty value is written `_undef_`, and an empty body is no body, as FreeSWITCH does.
    pub fn encode_plain(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        self.check_names(false)?;
        self.write_plain_headers(out);
        self.write_plain_tail(out);
        Ok(())
    }

    fn write_plain_headers(&self, out: &mut Vec<u8>) {
        for (name, value) in &self.headers {
            write_plain_header(out, name, value);
        }
    }

    fn write_plain_tail(&self, out: &mut Vec<u8>) {
        match self.body.as_deref() {
            Some(body) if !body.is_empty() => {
                out.extend_from_slice(format!("Content-Length: {}\n\n", body.len()).as_bytes());
                out.extend_from_slice(body.as_bytes());
            }
            _ => out.push(b'\n'),
        }
    }

    /// The event as FreeSWITCH's JSON (switch_event_serialize_json, cJSON unformatted): values
    /// not encoded, an `ARRAY::a|:b` value as a JSON array, and for a body
    /// `"Content-Length":"N","_body":"…"` at the end.
    pub fn encode_json(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        out.push(b'{');
        let mut first = true;
        let mut member = |out: &mut Vec<u8>, name: &str| {
            if !first {
                out.push(b',');
            }
            first = false;
            json_string(out, name);
            out.push(b':');
        };
        for (name, value) in &self.headers {
            member(out, name);
            match array_items(value) {
                Some(items) => {
                    out.push(b'[');
                    for (i, item) in items.enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        json_string(out, item);
                    }
                    out.push(b']');
                }
                None => json_string(out, value),
            }
        }
        if let Some(body) = &self.body {
            member(out, "Content-Length");
            json_string(out, &body.len().to_string());
            member(out, "_body");
            json_string(out, body);
        }
        out.push(b'}');
        Ok(())
    }

    /// The event as FreeSWITCH's XML (switch_event_xmlize + switch_xml_toxml): two-space
    /// indents, URL-encoded values, each item of an array header as its own element, and for a
    /// non-empty body `<Content-Length>` and `<body>` after `</headers>`.
    pub fn encode_xml(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        self.check_names(true)?;
        out.extend_from_slice(b"<event>\n  <headers>");
        let mut any = false;
        for (name, value) in &self.headers {
            let items: Vec<&str> = match array_items(value) {
                Some(items) => items.collect(),
                None => vec![value.as_str()],
            };
            for item in items {
                if !any {
                    out.push(b'\n');
                    any = true;
                }
                out.extend_from_slice(b"    <");
                out.extend_from_slice(name.as_bytes());
                out.push(b'>');
                urlcode::encode_into(item.as_bytes(), out);
                out.extend_from_slice(b"</");
                out.extend_from_slice(name.as_bytes());
                out.extend_from_slice(b">\n");
            }
        }
        if any {
            out.extend_from_slice(b"  ");
        }
        out.extend_from_slice(b"</headers>\n");
        if let Some(body) = self.body.as_deref().filter(|b| !b.is_empty()) {
            out.extend_from_slice(
                format!(
                    "  <Content-Length>{}</Content-Length>\n  <body>",
                    body.len()
                )
                .as_bytes(),
            );
            xml_text(out, body);
            // switch_xml_toxml indents a closing tag that follows a newline.
            if body.ends_with('\n') {
                out.extend_from_slice(b"  ");
            }
            out.extend_from_slice(b"</body>\n");
        }
        out.extend_from_slice(b"</event>\n");
        Ok(())
    }

    /// The event in `format`, as the body of an event frame.
    pub fn encode(&self, format: EventFormat, out: &mut Vec<u8>) -> Result<(), CodecError> {
        match format {
            EventFormat::Plain => self.encode_plain(out),
            EventFormat::Json => self.encode_json(out),
            EventFormat::Xml => self.encode_xml(out),
        }
    }
}

fn write_plain_header(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    if value.is_empty() {
        // switch_event_serialize: `*encode_buf == '\0' ? "_undef_" : encode_buf`.
        out.extend_from_slice(b"_undef_");
    } else {
        urlcode::encode_into(value.as_bytes(), out);
    }
    out.push(b'\n');
}

/// The items of a FreeSWITCH array value (`ARRAY::a|:b`), which switch_event_add_header
/// stores as an array.
fn array_items(value: &str) -> Option<std::str::Split<'_, &'static str>> {
    value.strip_prefix("ARRAY::").map(|rest| rest.split("|:"))
}

/// A JSON string as cJSON prints it: `"` `\` and control characters escaped (`\b \f \n \r \t`,
/// the others as `\u00XX`), everything else (`/`, non-ASCII) as is.
fn json_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: Option<&[u8]> = match b {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            0x08 => Some(b"\\b"),
            0x0c => Some(b"\\f"),
            b'\n' => Some(b"\\n"),
            b'\r' => Some(b"\\r"),
            b'\t' => Some(b"\\t"),
            0..=0x1f => None,
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        match escape {
            Some(e) => out.extend_from_slice(e),
            None => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Element text as switch_xml_ampencode writes it: `&` `<` `>` escaped, CR as `&#xD;`, every
/// non-ASCII character as `&#x…;` (USE_UTF_8_ENCODING). FreeSWITCH copies the rest of the text
/// verbatim after a `<!`; this encoder escapes that `<` too, so that the text reads back.
fn xml_text(out: &mut Vec<u8>, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.extend_from_slice(b"&amp;"),
            '<' => out.extend_from_slice(b"&lt;"),
            '>' => out.extend_from_slice(b"&gt;"),
            '\r' => out.extend_from_slice(b"&#xD;"),
            c if c.is_ascii() => out.push(c as u8),
            c => out.extend_from_slice(format!("&#x{:X};", u32::from(c)).as_bytes()),
        }
    }
}

fn unencodable(what: &'static str, reason: &'static str) -> CodecError {
    CodecError::Unencodable { what, reason }
}

/// A header value written as is must not break the line.
fn raw_value(what: &'static str, value: &str) -> Result<(), CodecError> {
    if value.contains(['\n', '\r']) {
        return Err(unencodable(what, "contains a line break"));
    }
    Ok(())
}

/// A frame the server sends, written as FreeSWITCH 1.10 writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerFrame {
    /// `auth/request`: the greeting of an inbound connection.
    AuthRequest,
    /// `command/reply` with `Reply-Text` (`+OK accepted`, `-ERR invalid`, ...).
    CommandReply {
        /// The reply text, written as is.
        reply_text: String,
    },
    /// `command/reply` accepting a bgapi: `Reply-Text: +OK Job-UUID: <id>` and `Job-UUID: <id>`.
    BgApiAccepted {
        /// The job.
        job_uuid: JobUuid,
    },
    /// `api/response` with the result as body (errors too: `-ERR …` is body text).
    ApiResponse {
        /// The result.
        body: String,
    },
    /// `text/event-plain|json|xml`.
    Event {
        /// The format the listener subscribed with.
        format: EventFormat,
        /// The event.
        event: OwnedEvent,
    },
    /// `log/data`.
    Log(LogRecord),
    /// `text/disconnect-notice`.
    Disconnect(DisconnectNotice),
    /// `text/rude-rejection` (the ACL refused the connection).
    RudeRejection,
    /// The answer to an outbound socket's `connect`: the channel's data as a serialized event,
    /// followed by `Content-Type: command/reply`, `Reply-Text: +OK\n`, `Socket-Mode` and
    /// `Control`, every value URL-encoded (fixture `outbound_socket_async_full_linger`).
    ConnectReply {
        /// The CHANNEL_DATA event (Event-Name, Core-UUID, … Channel-*, Caller-*, variable_*).
        channel: OwnedEvent,
        /// `Socket-Mode: async` (else `static`), from the dialplan's `socket … async`.
        async_mode: bool,
        /// `Control: full` (else `single-channel`), from the dialplan's `socket … full`.
        full_control: bool,
    },
}

impl ServerFrame {
    /// Append the frame's bytes to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        match self {
            ServerFrame::AuthRequest => out.extend_from_slice(b"Content-Type: auth/request\n\n"),
            ServerFrame::CommandReply { reply_text } => {
                raw_value("Reply-Text", reply_text)?;
                out.extend_from_slice(b"Content-Type: command/reply\nReply-Text: ");
                out.extend_from_slice(reply_text.as_bytes());
                out.extend_from_slice(b"\n\n");
            }
            ServerFrame::BgApiAccepted { job_uuid } => {
                raw_value("Job-UUID", job_uuid.as_str())?;
                out.extend_from_slice(
                    format!(
                        "Content-Type: command/reply\nReply-Text: +OK Job-UUID: {job_uuid}\nJob-UUID: {job_uuid}\n\n"
                    )
                    .as_bytes(),
                );
            }
            ServerFrame::ApiResponse { body } => {
                out.extend_from_slice(
                    format!(
                        "Content-Type: api/response\nContent-Length: {}\n\n",
                        body.len()
                    )
                    .as_bytes(),
                );
                out.extend_from_slice(body.as_bytes());
            }
            ServerFrame::Event { format, event } => {
                let mut body = Vec::with_capacity(2048);
                event.encode(*format, &mut body)?;
                // mod_event_socket writes Content-Length before Content-Type for events.
                out.extend_from_slice(
                    format!(
                        "Content-Length: {}\nContent-Type: {}\n\n",
                        body.len(),
                        format.content_type()
                    )
                    .as_bytes(),
                );
                out.extend_from_slice(&body);
            }
            ServerFrame::Log(log) => {
                for (what, v) in [
                    ("Log-File", &log.file),
                    ("Log-Func", &log.func),
                    ("User-Data", &log.user_data),
                ] {
                    raw_value(what, v)?;
                }
                // Header order of fixture log_level7; an empty User-Data keeps its blank.
                out.extend_from_slice(
                    format!(
                        "Content-Type: log/data\nContent-Length: {}\nLog-Level: {}\nText-Channel: {}\nLog-File: {}\nLog-Func: {}\nLog-Line: {}\nUser-Data: {}\n\n",
                        log.body.len(),
                        log.level,
                        log.text_channel,
                        log.file,
                        log.func,
                        log.line,
                        log.user_data
                    )
                    .as_bytes(),
                );
                out.extend_from_slice(log.body.as_bytes());
            }
            ServerFrame::Disconnect(notice) => {
                out.extend_from_slice(b"Content-Type: text/disconnect-notice\n");
                if let Some(uuid) = &notice.controlled_session {
                    raw_value("Controlled-Session-UUID", uuid.as_str())?;
                    out.extend_from_slice(format!("Controlled-Session-UUID: {uuid}\n").as_bytes());
                }
                if let Some(d) = &notice.disposition {
                    raw_value("Content-Disposition", d.as_str())?;
                    out.extend_from_slice(
                        format!("Content-Disposition: {}\n", d.as_str()).as_bytes(),
                    );
                }
                if let Some(name) = &notice.channel_name {
                    raw_value("Channel-Name", name)?;
                    out.extend_from_slice(format!("Channel-Name: {name}\n").as_bytes());
                }
                if let Some(t) = notice.linger_time {
                    out.extend_from_slice(format!("Linger-Time: {t}\n").as_bytes());
                }
                out.extend_from_slice(
                    format!("Content-Length: {}\n\n", notice.body.len()).as_bytes(),
                );
                out.extend_from_slice(notice.body.as_bytes());
            }
            ServerFrame::RudeRejection => out.extend_from_slice(
                format!(
                    "Content-Type: text/rude-rejection\nContent-Length: {}\n\n{ACCESS_DENIED}",
                    ACCESS_DENIED.len()
                )
                .as_bytes(),
            ),
            ServerFrame::ConnectReply {
                channel,
                async_mode,
                full_control,
            } => {
                channel.check_names(false)?;
                channel.write_plain_headers(out);
                write_plain_header(out, "Content-Type", "command/reply");
                write_plain_header(out, "Reply-Text", "+OK\n");
                write_plain_header(
                    out,
                    "Socket-Mode",
                    if *async_mode { "async" } else { "static" },
                );
                write_plain_header(
                    out,
                    "Control",
                    if *full_control {
                        "full"
                    } else {
                        "single-channel"
                    },
                );
                out.push(b'\n');
            }
        }
        Ok(())
    }

    /// The frame's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, CodecError> {
        let mut out = Vec::new();
        self.encode(&mut out)?;
        Ok(out)
    }
}

/// Write a frame from headers given in order (values as is) and a body. The caller writes any
/// `Content-Length` header itself, where it wants it; no header may contain a line break.
pub fn encode_frame(
    headers: &[(&str, &str)],
    body: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    for (name, value) in headers {
        if name.is_empty() || name.contains([':', '\n', '\r']) {
            return Err(unencodable(
                "header name",
                "empty, or contains ':' or a line break",
            ));
        }
        raw_value("header value", value)?;
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
    out.extend_from_slice(body);
    Ok(())
}
