//! Encode, then parse, gives back what went in: client commands, server frames, events in
//! all three formats, and any split of a stream into reads. Values include `:` `%` blanks,
//! newlines and non-ASCII text wherever the wire can carry them.

use bytes::Bytes;
use proptest::prelude::*;
use switchboard::media::LegId;
use switchboard::media::freeswitch::codec::{
    AppArg, ApplicationUuid, CallCommand, Command, CommandDecoder, ContentType, Decoder,
    DisconnectNotice, Disposition, EventFormat, Frame, JobUuid, Limits, LogRecord, OwnedEvent,
    SendMsg, ServerFrame, encode_frame, urlcode,
};

// ---- strategies ------------------------------------------------------------------------------

/// Any text, newlines, colons, percents and non-ASCII included.
fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 :%/@+=&?#;<>\"'{}\\[\\]|^`~\\\\\n\r\t.,éü€漢-]{0,40}"
}

/// Text without line breaks (one line of a command or a header).
fn line() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 :%/@+=&?#;<>\"'{}\\[\\]|^`~\\\\\t.,éü€漢-]{0,40}"
}

/// One line that a header value carries exactly: no leading blank (readers skip it).
fn value_line() -> impl Strategy<Value = String> {
    line().prop_map(|s| s.trim_start_matches([' ', '\t']).to_owned())
}

/// A line that is not all blank.
fn nonblank_line() -> impl Strategy<Value = String> {
    line().prop_filter("not blank", |s| !s.trim().is_empty())
}

/// One word: no whitespace.
fn word() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_:%@./{}=&+-]{1,24}"
}

fn uuid() -> impl Strategy<Value = String> {
    "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
}

fn format() -> impl Strategy<Value = EventFormat> {
    prop_oneof![
        Just(EventFormat::Plain),
        Just(EventFormat::Json),
        Just(EventFormat::Xml)
    ]
}

fn app_arg() -> impl Strategy<Value = AppArg> {
    prop_oneof![
        value_line().prop_map(AppArg::Header),
        text().prop_map(AppArg::Body),
        text().prop_map(AppArg::new),
    ]
}

fn call_command() -> impl Strategy<Value = CallCommand> {
    prop_oneof![
        (
            word(),
            proptest::option::of(app_arg()),
            proptest::option::of(any::<u32>())
        )
            .prop_map(|(app, arg, loops)| CallCommand::Execute { app, arg, loops }),
        proptest::option::of(word()).prop_map(|cause| CallCommand::Hangup { cause }),
        (
            word(),
            any::<u16>(),
            word(),
            any::<u16>(),
            word(),
            proptest::option::of(word())
        )
            .prop_map(
                |(local_ip, local_port, remote_ip, remote_port, transport, flags)| {
                    CallCommand::Unicast {
                        local_ip,
                        local_port,
                        remote_ip,
                        remote_port,
                        transport,
                        flags,
                    }
                }
            ),
    ]
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        nonblank_line().prop_map(|password| Command::Auth { password }),
        nonblank_line().prop_map(|command| Command::Api { command }),
        (nonblank_line(), proptest::option::of(value_line())).prop_map(|(command, job)| {
            Command::BgApi {
                command,
                job_uuid: job.map(JobUuid::new),
            }
        }),
        (format(), proptest::collection::vec(word(), 0..6))
            .prop_map(|(format, events)| Command::Event { format, events }),
        (proptest::option::of(uuid()), proptest::option::of(format())).prop_map(
            |(uuid, format)| Command::MyEvents {
                uuid: uuid.map(LegId::new),
                format
            }
        ),
        proptest::collection::vec(word(), 0..6).prop_map(|events| Command::NixEvent { events }),
        Just(Command::NoEvents),
        (
            word().prop_filter("not delete", |w| !w.eq_ignore_ascii_case("delete")),
            line()
        )
            .prop_map(|(header, value)| Command::Filter { header, value }),
        (word(), proptest::option::of(line()))
            .prop_filter("not `filter delete all`", |(h, v)| {
                !(h.eq_ignore_ascii_case("all") && v.is_none())
            })
            .prop_map(|(header, value)| Command::FilterDelete { header, value }),
        Just(Command::FilterDeleteAll),
        any::<bool>().prop_map(|on| Command::DivertEvents { on }),
        proptest::option::of(any::<u32>()).prop_map(|seconds| Command::Linger { seconds }),
        Just(Command::NoLinger),
        proptest::option::of(word()).prop_map(|level| Command::Log { level }),
        Just(Command::NoLog),
        (
            proptest::option::of(uuid()),
            call_command(),
            any::<bool>(),
            any::<bool>(),
            proptest::option::of(word())
        )
            .prop_map(|(uuid, command, event_lock, asynchronous, event_uuid)| {
                Command::SendMsg(SendMsg {
                    uuid: uuid.map(LegId::new),
                    command,
                    event_lock,
                    asynchronous,
                    event_uuid: event_uuid.map(ApplicationUuid::new),
                })
            }),
        Just(Command::Connect),
        Just(Command::Resume),
        word().prop_map(|name| Command::GetVar { name }),
        Just(Command::Exit),
    ]
}

/// Header names as FreeSWITCH has them; never the body's own `Content-Length`.
fn header_name() -> impl Strategy<Value = String> {
    "[A-Za-z][A-Za-z0-9_-]{0,20}".prop_filter("not Content-Length", |n| {
        !n.eq_ignore_ascii_case("Content-Length")
    })
}

/// An event that reads back the same in every format: distinct names (XML writes an array
/// header as repeated elements, so repeated names would read as one array), non-empty values
/// (plain writes an empty value as `_undef_`), no value that is itself an `ARRAY::` list, and
/// a non-empty body if any (FreeSWITCH writes no empty body).
fn owned_event() -> impl Strategy<Value = OwnedEvent> {
    (
        proptest::collection::btree_map(
            header_name(),
            text().prop_filter("non-empty", |v| !v.is_empty() && !v.starts_with("ARRAY::")),
            0..12,
        ),
        proptest::option::of(text().prop_filter("non-empty", |b| !b.is_empty())),
        proptest::collection::vec(text(), 2..4),
    )
        .prop_map(|(headers, body, array)| {
            let mut event = OwnedEvent::new("CUSTOM")
                .with("Event-Subclass", "switchboard::test")
                .with("X-Array", format!("ARRAY::{}", array.join("|:")));
            for (name, value) in headers {
                if !matches!(name.as_str(), "Event-Name" | "Event-Subclass" | "X-Array") {
                    event.push(name, value);
                }
            }
            event.body = body;
            event
        })
}

fn server_frame() -> impl Strategy<Value = ServerFrame> {
    let disposition = prop_oneof![
        Just(Disposition::Linger),
        Just(Disposition::Disconnect),
        word()
            .prop_filter("other", |w| w != "linger" && w != "disconnect")
            .prop_map(Disposition::Other),
    ];
    prop_oneof![
        Just(ServerFrame::AuthRequest),
        value_line().prop_map(|reply_text| ServerFrame::CommandReply { reply_text }),
        uuid().prop_map(|j| ServerFrame::BgApiAccepted {
            job_uuid: JobUuid::new(j)
        }),
        text().prop_map(|body| ServerFrame::ApiResponse { body }),
        (format(), owned_event()).prop_map(|(format, event)| ServerFrame::Event { format, event }),
        (
            any::<u8>(),
            any::<u32>(),
            value_line(),
            value_line(),
            any::<u32>(),
            value_line(),
            text()
        )
            .prop_map(|(level, text_channel, file, func, line, user_data, body)| {
                ServerFrame::Log(LogRecord {
                    level,
                    text_channel,
                    file,
                    func,
                    line,
                    user_data,
                    body,
                })
            }),
        (
            proptest::option::of(uuid()),
            proptest::option::of(disposition),
            proptest::option::of(value_line()),
            proptest::option::of(any::<u32>()),
            text()
        )
            .prop_map(|(session, disposition, channel_name, linger_time, body)| {
                ServerFrame::Disconnect(DisconnectNotice {
                    controlled_session: session.map(LegId::new),
                    disposition,
                    channel_name,
                    linger_time,
                    body,
                })
            }),
        Just(ServerFrame::RudeRejection),
        (owned_event(), any::<bool>(), any::<bool>()).prop_map(|(mut channel, a, f)| {
            channel.headers[0].1 = "CHANNEL_DATA".into();
            channel.body = None;
            ServerFrame::ConnectReply {
                channel,
                async_mode: a,
                full_control: f,
            }
        }),
    ]
}

// ---- reading back ------------------------------------------------------------------------------

fn decode_all(bytes: &[u8], chunk: usize) -> Vec<Frame> {
    let mut decoder = Decoder::new(Limits::default());
    let mut out = Vec::new();
    for piece in bytes.chunks(chunk.max(1)) {
        let mut rest = piece;
        while !rest.is_empty() {
            let n = decoder.feed(rest);
            rest = &rest[n..];
            while let Some(frame) = decoder.decode().expect("decodes") {
                out.push(frame);
            }
        }
    }
    assert_eq!(decoder.buffered(), 0);
    out
}

/// The server frame a decoded frame is, rebuilt from what the codec reads.
fn rebuild(frame: &Frame) -> ServerFrame {
    match frame.content_type() {
        ContentType::AuthRequest => ServerFrame::AuthRequest,
        ContentType::CommandReply if frame.is_serialized_event() => {
            let mut channel = frame
                .channel_data()
                .expect("connect reply")
                .expect("parses")
                .to_owned_event();
            let tail = channel.headers.split_off(channel.headers.len() - 4);
            assert_eq!(tail[0], ("Content-Type".into(), "command/reply".into()));
            assert_eq!(tail[1], ("Reply-Text".into(), "+OK\n".into()));
            ServerFrame::ConnectReply {
                channel,
                async_mode: tail[2].1 == "async",
                full_control: tail[3].1 == "full",
            }
        }
        ContentType::CommandReply => match frame.job_uuid() {
            Some(job_uuid) => ServerFrame::BgApiAccepted { job_uuid },
            None => ServerFrame::CommandReply {
                reply_text: frame.header("Reply-Text").expect("Reply-Text").into(),
            },
        },
        ContentType::ApiResponse => ServerFrame::ApiResponse {
            body: String::from_utf8(frame.body().to_vec()).expect("text"),
        },
        ContentType::LogData => ServerFrame::Log(frame.log().expect("log")),
        ContentType::DisconnectNotice => {
            ServerFrame::Disconnect(frame.disconnect_notice().expect("notice"))
        }
        ContentType::RudeRejection => ServerFrame::RudeRejection,
        other => {
            let format = other.event_format().expect("an event");
            ServerFrame::Event {
                format,
                event: frame.event().expect("event parses").to_owned_event(),
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn commands_read_back_as_written(cmd in command()) {
        let bytes = cmd.to_bytes().expect("encodes");
        let mut decoder = CommandDecoder::default();
        prop_assert_eq!(decoder.feed(&bytes), bytes.len());
        let frame = decoder.decode().expect("frames").expect("whole");
        prop_assert!(decoder.decode().expect("nothing more").is_none());
        prop_assert_eq!(frame.command().expect("parses"), cmd);
    }

    #[test]
    fn commands_in_one_stream_split_anywhere_read_back(
        cmds in proptest::collection::vec(command(), 1..8),
        chunk in 1usize..64,
    ) {
        let mut stream = Vec::new();
        for c in &cmds {
            c.encode(&mut stream).expect("encodes");
        }
        let mut decoder = CommandDecoder::default();
        let mut got = Vec::new();
        for piece in stream.chunks(chunk) {
            prop_assert_eq!(decoder.feed(piece), piece.len());
            while let Some(f) = decoder.decode().expect("frames") {
                got.push(f.command().expect("parses"));
            }
        }
        prop_assert_eq!(got, cmds);
    }

    #[test]
    fn server_frames_read_back_as_written(frame in server_frame(), chunk in 1usize..300) {
        let bytes = frame.to_bytes().expect("encodes");
        let decoded = decode_all(&bytes, chunk);
        prop_assert_eq!(decoded.len(), 1);
        prop_assert_eq!(decoded[0].as_bytes().as_ref(), bytes.as_slice());
        prop_assert_eq!(rebuild(&decoded[0]), frame);
    }

    #[test]
    fn a_stream_of_frames_splits_into_the_same_frames_at_any_read_size(
        frames in proptest::collection::vec(server_frame(), 1..10),
        chunk in 1usize..2000,
    ) {
        let encoded: Vec<Vec<u8>> = frames.iter().map(|f| f.to_bytes().expect("encodes")).collect();
        let stream = encoded.concat();
        let decoded = decode_all(&stream, chunk);
        prop_assert_eq!(decoded.len(), frames.len());
        for ((d, e), f) in decoded.iter().zip(&encoded).zip(&frames) {
            prop_assert_eq!(d.as_bytes().as_ref(), e.as_slice());
            prop_assert_eq!(&rebuild(d), f);
        }
    }

    #[test]
    fn an_event_reads_back_the_same_in_all_three_formats(event in owned_event()) {
        for format in [EventFormat::Plain, EventFormat::Json, EventFormat::Xml] {
            let bytes = ServerFrame::Event { format, event: event.clone() }
                .to_bytes()
                .expect("encodes");
            let frame = Frame::parse(Bytes::from(bytes), &Limits::default()).expect("frame");
            let parsed = frame.event().expect("event");
            prop_assert_eq!(parsed.format(), format);
            prop_assert_eq!(parsed.name(), Some("CUSTOM"));
            let subclass = parsed.subclass();
            prop_assert_eq!(subclass.as_deref(), Some("switchboard::test"));
            prop_assert_eq!(&parsed.to_owned_event(), &event, "{}", format);
            if let Some(body) = &event.body {
                prop_assert_eq!(parsed.body(), Some(body.as_bytes()));
                let len = body.len().to_string();
                let length = parsed.header("Content-Length");
                prop_assert_eq!(length.as_deref(), Some(len.as_str()));
            }
        }
    }

    #[test]
    fn any_frame_written_from_headers_reads_back(
        headers in proptest::collection::vec((header_name(), value_line()), 0..8),
        body in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let length = body.len().to_string();
        let mut all: Vec<(&str, &str)> = vec![("Content-Type", "api/response")];
        all.extend(headers.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        all.push(("Content-Length", length.as_str()));
        let mut bytes = Vec::new();
        encode_frame(&all, &body, &mut bytes).expect("encodes");
        let frame = Frame::parse(Bytes::from(bytes), &Limits::default()).expect("parses");
        prop_assert_eq!(frame.headers().collect::<Vec<_>>(), all);
        prop_assert_eq!(frame.body(), body.as_slice());
    }

    #[test]
    fn url_encoding_reads_back_and_leaves_only_safe_bytes(s in text()) {
        let encoded = urlcode::encode(&s);
        prop_assert!(encoded.bytes().all(|b| !urlcode::is_unsafe(b) || b == b'%'));
        prop_assert!(!encoded.contains([' ', ':', '\n', '\r']));
        let decoded = urlcode::decode(&encoded).into_owned();
        prop_assert_eq!(decoded, s);
    }
}
