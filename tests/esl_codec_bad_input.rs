//! Bad input: a clear error naming what and where, never a panic, never more memory than the
//! limit, and a way on (resync) or out (close).

use bytes::Bytes;
use proptest::prelude::*;
use switchboard::media::freeswitch::codec::{
    AppArg, CallCommand, Check, CodecError, Command, CommandDecoder, ContentType, Decoder,
    EventFormat, Frame, Limits, OwnedEvent, SendMsg, ServerFrame, check,
};

const REPLY: &[u8] = b"Content-Type: command/reply\nReply-Text: +OK accepted\n\n";

fn small() -> Limits {
    Limits::new(256, 1024)
}

/// Feed everything, collecting frames and errors; resync after each error.
fn run(decoder: &mut Decoder, input: &[u8], chunk: usize) -> (Vec<Frame>, Vec<CodecError>) {
    let (mut frames, mut errors) = (Vec::new(), Vec::new());
    for piece in input.chunks(chunk.max(1)) {
        let mut rest = piece;
        loop {
            let n = decoder.feed(rest);
            rest = &rest[n..];
            assert!(decoder.buffered() <= decoder.limits().max_frame());
            loop {
                match decoder.decode() {
                    Ok(Some(f)) => frames.push(f),
                    Ok(None) => break,
                    Err(e) => {
                        assert!(decoder.is_failed());
                        // The same error again until the connection chooses.
                        assert_eq!(decoder.decode().err(), Some(e.clone()));
                        errors.push(e);
                        assert!(decoder.resync());
                    }
                }
            }
            if rest.is_empty() {
                break;
            }
        }
    }
    (frames, errors)
}

#[test]
fn a_content_length_that_is_not_a_number_is_named_with_its_offset() {
    let mut input = REPLY.to_vec();
    input.extend_from_slice(b"Content-Type: api/response\nContent-Length: 12x\n\nhello world!");
    input.extend_from_slice(REPLY);
    let mut d = Decoder::default();
    let (frames, errors) = run(&mut d, &input, input.len());
    let start = REPLY.len() as u64;
    assert_eq!(
        errors,
        [CodecError::BadContentLength {
            offset: start,
            at: start + 43,
            value: "12x".into()
        }]
    );
    assert!(
        errors[0]
            .to_string()
            .contains(&format!("at byte {}", start + 43)),
        "{}",
        errors[0]
    );
    // Resync found the next frame.
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[1].as_bytes().as_ref(), REPLY);
}

#[test]
fn a_body_type_without_content_length_is_refused() {
    let mut input = b"Content-Type: api/response\n\n+OK done\n".to_vec();
    input.extend_from_slice(REPLY);
    let (frames, errors) = run(&mut Decoder::default(), &input, 7);
    assert!(matches!(
        &errors[0],
        CodecError::MissingContentLength { offset: 0, content_type } if content_type == "api/response"
    ));
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].as_bytes().as_ref(), REPLY);
}

#[test]
fn conflicting_content_lengths_are_refused() {
    let input = b"Content-Length: 3\nContent-Type: api/response\nContent-Length: 4\n\nabcd";
    let e = check(input, &Limits::default()).expect_err("conflict");
    assert_eq!(
        e,
        CodecError::ConflictingContentLength {
            offset: 0,
            first: 3,
            second: 4
        }
    );
}

#[test]
fn a_header_block_without_its_blank_line_stops_at_the_limit() {
    let mut d = Decoder::new(small());
    let line = b"X-Header: aaaaaaaaaaaaaaaaaaaaaaaa\n";
    let mut fed = 0;
    let error = loop {
        fed += d.feed(line);
        assert!(d.buffered() <= d.limits().max_frame());
        match d.decode() {
            Ok(None) => continue,
            Ok(Some(_)) => panic!("no frame here"),
            Err(e) => break e,
        }
    };
    assert_eq!(
        error,
        CodecError::HeaderBlockTooLong {
            offset: 0,
            limit: 256
        }
    );
    assert!(fed >= 256 && fed <= 256 + line.len());
    assert!(error.to_string().contains("no blank line within 256 bytes"));
    // The connection may resync: the junk is dropped, the next frame comes through.
    assert!(d.resync());
    let (frames, _) = run(&mut d, REPLY, REPLY.len());
    assert_eq!(frames.len(), 1);
    assert!(d.buffered() == 0);
}

#[test]
fn invalid_utf8_in_a_header_block_is_named_with_its_offset() {
    let mut input = REPLY.to_vec();
    input.extend_from_slice(b"Content-Type: command/reply\nReply-Text: +OK \xff\xfe\n\n");
    input.extend_from_slice(REPLY);
    let (frames, errors) = run(&mut Decoder::default(), &input, 5);
    let at = REPLY.len() as u64 + 28 + 16;
    assert_eq!(
        errors,
        [CodecError::InvalidUtf8 {
            offset: at,
            what: "header block"
        }]
    );
    assert_eq!(frames.len(), 2);
}

#[test]
fn a_body_over_the_limit_is_refused_before_it_arrives_and_skipped_without_buffering() {
    let mut d = Decoder::new(small());
    let header = b"Content-Type: api/response\nContent-Length: 1000000\n\n";
    assert_eq!(d.feed(header), header.len());
    let e = d.decode().expect_err("too long");
    assert_eq!(
        e,
        CodecError::BodyTooLong {
            offset: 0,
            length: 1_000_000,
            limit: 1024
        }
    );
    assert!(d.resync());
    // A megabyte of body streams through a 1.3 KB buffer, then the next frame decodes.
    let body = vec![b'x'; 1_000_000];
    let mut stream = body;
    stream.extend_from_slice(REPLY);
    let (frames, errors) = run(&mut d, &stream, 4096);
    assert!(errors.is_empty());
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].offset(), (header.len() + 1_000_000) as u64);
    assert_eq!(d.skipped(), (header.len() + 1_000_000) as u64);
}

#[test]
fn a_malformed_header_line_and_a_missing_content_type_are_named() {
    let e = check(
        b"Content-Type: command/reply\nno colon here\n\n",
        &Limits::default(),
    )
    .expect_err("malformed");
    assert_eq!(
        e,
        CodecError::MalformedHeader {
            offset: 28,
            line: "no colon here".into()
        }
    );
    let e = check(b"Reply-Text: +OK\n\n", &Limits::default()).expect_err("no type");
    assert_eq!(e, CodecError::MissingContentType { offset: 0 });
}

#[test]
fn an_incomplete_frame_is_not_an_error() {
    for cut in [0, 10, 27, 28, 40, 47, 50] {
        let frame = b"Content-Type: api/response\nContent-Length: 5\n\nhello";
        assert_eq!(
            check(&frame[..cut], &Limits::default()),
            Ok(Check::Incomplete),
            "{cut}"
        );
    }
    let e = Frame::parse(
        Bytes::from_static(b"Content-Type: api/response\nContent-Length: 5\n\nhel"),
        &Limits::default(),
    );
    assert_eq!(
        e.err(),
        Some(CodecError::Incomplete {
            offset: 0,
            needed: 2
        })
    );
}

#[test]
fn a_plain_event_with_a_wrong_inner_content_length_is_named() {
    let body = b"Event-Name: BACKGROUND_JOB\nContent-Length: 10\n\n+OK\n";
    let mut frame = format!(
        "Content-Length: {}\nContent-Type: text/event-plain\n\n",
        body.len()
    )
    .into_bytes();
    let offset = frame.len() as u64;
    frame.extend_from_slice(body);
    let f = Frame::parse(Bytes::from(frame), &Limits::default()).expect("framing is fine");
    let e = f.event().expect_err("inner length");
    assert!(
        matches!(&e, CodecError::BadPlainEvent { offset: o, reason } if *o == offset + 47 && reason.contains("10") && reason.contains('4')),
        "{e}"
    );
}

#[test]
fn broken_json_and_xml_events_are_named() {
    let frame = |ct: &str, body: &str| {
        let bytes = format!(
            "Content-Length: {}\nContent-Type: {ct}\n\n{body}",
            body.len()
        );
        Frame::parse(Bytes::from(bytes), &Limits::default()).expect("frame")
    };
    let e = frame("text/event-json", "{\"Event-Name\":\"X\",")
        .event()
        .expect_err("json");
    assert!(
        matches!(e, CodecError::BadJsonEvent { offset: 50, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("line 1"), "{e}");
    let e = frame("text/event-json", "[1,2]")
        .event()
        .expect_err("json array");
    assert!(matches!(e, CodecError::BadJsonEvent { .. }), "{e}");
    let e = frame(
        "text/event-xml",
        "<event><headers><A>1</B></headers></event>",
    )
    .event()
    .expect_err("xml");
    assert!(matches!(e, CodecError::BadXmlEvent { .. }), "{e}");
    let e = frame(
        "text/event-xml",
        "<event><headers></headers><Content-Length>9</Content-Length><body>short</body></event>",
    )
    .event()
    .expect_err("xml length");
    assert!(
        e.to_string()
            .contains("<Content-Length> is 9 but the body has 5 bytes"),
        "{e}"
    );
    let e = frame(
        "text/event-plain",
        "Event-Name: A\nEvent-Date: \u{0}\u{0}\nbad line\n\n",
    )
    .event()
    .expect_err("plain");
    assert!(matches!(e, CodecError::MalformedHeader { .. }), "{e}");
    let e = frame("api/response", "x")
        .event()
        .expect_err("not an event");
    assert!(matches!(e, CodecError::NotAnEvent { .. }), "{e}");
    let body = b"Event-Name: A\xff\xfe\xfd\nX: 1\n\n";
    let mut invalid = format!(
        "Content-Length: {}\nContent-Type: text/event-plain\n\n",
        body.len()
    )
    .into_bytes();
    let at = invalid.len() as u64 + 13;
    invalid.extend_from_slice(body);
    let e = Frame::parse(Bytes::from(invalid), &Limits::default())
        .expect("frame")
        .event()
        .expect_err("utf8");
    assert_eq!(
        e,
        CodecError::InvalidUtf8 {
            offset: at,
            what: "plain event headers"
        }
    );
}

#[test]
fn encoders_refuse_values_that_would_inject_frames() {
    let api = Command::Api {
        command: "status\n\nexit".into(),
    };
    assert!(matches!(
        api.to_bytes(),
        Err(CodecError::Unencodable {
            what: "api command",
            ..
        })
    ));
    let header_arg = Command::SendMsg(SendMsg::new(
        None,
        CallCommand::Execute {
            app: "playback".into(),
            arg: Some(AppArg::Header("a\ncall-command: hangup".into())),
            loops: None,
        },
    ));
    assert!(header_arg.to_bytes().is_err());
    let event = Command::Event {
        format: EventFormat::Plain,
        events: vec!["CHANNEL_ANSWER HEARTBEAT".into()],
    };
    assert!(event.to_bytes().is_err());
    let reply = ServerFrame::CommandReply {
        reply_text: "+OK\n\nContent-Type: auth/request".into(),
    };
    assert!(reply.to_bytes().is_err());
    let bad_name = ServerFrame::Event {
        format: EventFormat::Plain,
        event: OwnedEvent::new("X").with("A: B", "v"),
    };
    assert!(bad_name.to_bytes().is_err());
    let xml_name = ServerFrame::Event {
        format: EventFormat::Xml,
        event: OwnedEvent::new("X").with("A B", "v"),
    };
    assert!(xml_name.to_bytes().is_err());
    // Nothing half-written on refusal.
    let mut out = Vec::new();
    assert!(api.encode(&mut out).is_err());
    assert!(out.is_empty());
}

#[test]
fn unknown_and_malformed_commands_are_named() {
    let mut d = CommandDecoder::default();
    let input =
        b"frobnicate now\n\nsendmsg abc\ncall-command: teleport\n\nlinger soon\n\napi status\n\n";
    assert_eq!(d.feed(input), input.len());
    let verdicts: Vec<Result<Command, CodecError>> =
        std::iter::from_fn(|| d.decode().expect("frames").map(|f| f.command())).collect();
    assert_eq!(
        verdicts[0],
        Err(CodecError::UnknownCommand {
            offset: 0,
            verb: "frobnicate".into()
        })
    );
    assert!(
        matches!(&verdicts[1], Err(CodecError::BadCommand { offset: 16, reason }) if reason.contains("teleport"))
    );
    assert!(
        matches!(&verdicts[2], Err(CodecError::BadCommand { reason, .. }) if reason.contains("soon"))
    );
    assert_eq!(
        verdicts[3],
        Ok(Command::Api {
            command: "status".into()
        })
    );
}

#[test]
fn commands_typed_over_telnet_with_crlf_are_read() {
    let mut d = CommandDecoder::default();
    let input = b"auth ClueCon\r\n\r\nbgapi status\r\nJob-UUID: j1\r\n\r\n";
    d.feed(input);
    let auth = d.decode().expect("ok").expect("auth");
    assert_eq!(
        auth.command(),
        Ok(Command::Auth {
            password: "ClueCon".into()
        })
    );
    let bg = d.decode().expect("ok").expect("bgapi");
    assert_eq!(bg.header("Job-UUID"), Some("j1"));
}

#[test]
fn resync_after_garbage_finds_the_next_frame() {
    let mut input = b"garbage without any structure\n\n".to_vec();
    input.extend_from_slice(REPLY);
    input.extend_from_slice(b"\n\n\nContent-Type: auth/request\n\n");
    let (frames, errors) = run(&mut Decoder::default(), &input, 3);
    assert!(!errors.is_empty());
    let types: Vec<ContentType> = frames.iter().map(Frame::content_type).collect();
    assert_eq!(types, [ContentType::CommandReply, ContentType::AuthRequest]);
}

/// Valid frames of the captures' kinds to mix into random input.
fn fragment() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(REPLY.to_vec()),
        Just(b"Content-Type: api/response\nContent-Length: 5\n\nhello".to_vec()),
        Just(b"Content-Length: 33\nContent-Type: text/event-plain\n\nEvent-Name: HEARTBEAT\nX: a%20b\n\n".to_vec()),
        Just(b"Content-Length: 20\nContent-Type: text/event-json\n\n{\"Event-Name\":\"API\"}".to_vec()),
        Just(b"Content-Length: 99999999\n".to_vec()),
        Just(b"\n\n".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..200),
        proptest::collection::vec(prop_oneof![Just(b'\n'), Just(b':'), Just(b' '), Just(b'C'), any::<u8>()], 0..200),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn arbitrary_bytes_in_arbitrary_reads_never_panic_or_outgrow_the_limit(
        parts in proptest::collection::vec(fragment(), 0..20),
        chunk in 1usize..700,
    ) {
        let input = parts.concat();
        let mut d = Decoder::new(small());
        let (frames, _errors) = run(&mut d, &input, chunk);
        for f in &frames {
            // Whatever a frame is, asking for its parts never panics.
            let _ = f.event().map(|e| (e.name().map(str::len), e.headers().count(), e.body().map(<[u8]>::len)));
            let _ = f.reply();
            let _ = f.channel_data();
            let _ = f.disconnect_notice();
            let _ = f.log();
            prop_assert!(f.as_bytes().len() <= small().max_frame());
        }
        let mut c = CommandDecoder::new(small());
        let mut rest = input.as_slice();
        while !rest.is_empty() {
            let n = c.feed(rest);
            rest = &rest[n..];
            prop_assert!(c.buffered() <= small().max_frame());
            loop {
                match c.decode() {
                    Ok(Some(f)) => { let _ = f.command(); }
                    Ok(None) => break,
                    Err(_) => { prop_assert!(c.resync()); }
                }
            }
        }
    }
}
