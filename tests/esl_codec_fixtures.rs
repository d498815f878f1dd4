//! The ESL codec against every capture in fixtures/esl: each `.raw` splits into exactly the
//! frames its `.log` lists, however the bytes arrive; every event parses; and the encoders
//! write the captured frames and commands back byte for byte.

use std::path::PathBuf;

use bytes::Bytes;
use switchboard::media::freeswitch::codec::{
    Command, CommandDecoder, ContentType, Decoder, DisconnectNotice, EventFormat, Frame, Limits,
    LogRecord, ServerFrame, split_frames,
};
use switchboard::media::freeswitch::transcript::{Entry, Transcript};

/// fixtures/esl, beside the repository (or where SWITCHBOARD_ESL_FIXTURES says).
fn fixtures_dir() -> PathBuf {
    std::env::var_os("SWITCHBOARD_ESL_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/esl"))
}

/// Every capture's name, sorted; the suite fails loudly if the fixtures are missing.
fn scenarios() -> Vec<String> {
    let dir = fixtures_dir();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("ESL fixtures not found at {}: {e}", dir.display()))
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".raw").map(str::to_owned)
        })
        .collect();
    names.sort();
    assert!(
        names.len() >= 19,
        "expected the 19 ESL captures, found {names:?}"
    );
    names
}

fn raw(name: &str) -> Vec<u8> {
    std::fs::read(fixtures_dir().join(format!("{name}.raw"))).expect("read .raw")
}

fn transcript(name: &str) -> Transcript {
    let log = std::fs::read(fixtures_dir().join(format!("{name}.log"))).expect("read .log");
    Transcript::parse(&log).unwrap_or_else(|e| panic!("{name}.log: {e}"))
}

/// Decode `chunks` in order with one decoder, feeding only what fits.
fn decode_chunks<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Vec<Frame> {
    let mut decoder = Decoder::default();
    let mut frames = Vec::new();
    for chunk in chunks {
        let mut rest = chunk;
        loop {
            let taken = decoder.feed(rest);
            rest = &rest[taken..];
            while let Some(frame) = decoder.decode().expect("fixture frames decode") {
                frames.push(frame);
            }
            if rest.is_empty() {
                break;
            }
        }
    }
    assert_eq!(decoder.buffered(), 0, "bytes left over");
    frames
}

fn server_entries(t: &Transcript) -> Vec<&Entry> {
    t.server_frames().collect()
}

/// The label the capture tool prints in brackets: the event name, with the subclass for CUSTOM.
fn event_label(frame: &Frame) -> Option<String> {
    let event = frame.event().ok()?;
    let name = event.name()?.to_owned();
    Some(match event.subclass() {
        Some(sub) if name == "CUSTOM" => format!("CUSTOM {sub}"),
        _ => name,
    })
}

#[test]
fn every_capture_parses_into_the_frames_its_log_lists() {
    let mut total = 0;
    for name in scenarios() {
        let raw = raw(&name);
        let t = transcript(&name);
        assert_eq!(
            t.server_bytes(),
            raw,
            "{name}: the log's S->C blocks are the .raw"
        );
        let frames = decode_chunks([raw.as_slice()]);
        let entries = server_entries(&t);
        assert_eq!(frames.len(), entries.len(), "{name}: frame count");
        let mut joined = Vec::new();
        for (frame, entry) in frames.iter().zip(entries) {
            let Entry::Server {
                index,
                bytes,
                header_len,
                body_len,
                content_type,
                event,
                ..
            } = entry
            else {
                unreachable!()
            };
            let at = format!("{name} frame #{index}");
            assert_eq!(frame.as_bytes().as_ref(), bytes.as_slice(), "{at}: bytes");
            assert_eq!(
                frame.header_block().len(),
                *header_len,
                "{at}: header block"
            );
            assert_eq!(frame.body().len(), *body_len, "{at}: body");
            assert_eq!(frame.content_type_str(), content_type, "{at}: content type");
            assert_ne!(
                frame.content_type(),
                ContentType::Other,
                "{at}: a known type"
            );
            assert_eq!(&event_label(frame), event, "{at}: event name");
            joined.extend_from_slice(frame.as_bytes());
            total += 1;
        }
        assert_eq!(
            joined, raw,
            "{name}: joining the frames gives the file back"
        );
    }
    assert!(total > 1000, "only {total} frames");
}

#[test]
fn split_frames_over_shared_bytes_gives_the_same_frames() {
    for name in scenarios() {
        let raw = raw(&name);
        let shared = Bytes::from(raw.clone());
        let frames: Vec<Frame> = split_frames(shared.clone(), Limits::default())
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let decoded = decode_chunks([raw.as_slice()]);
        assert_eq!(frames.len(), decoded.len(), "{name}");
        for (a, b) in frames.iter().zip(&decoded) {
            assert_eq!(a.as_bytes(), b.as_bytes());
            assert_eq!(a.offset(), b.offset());
            // Zero copy: the frame's bytes are a window of the input.
            let base = shared.as_ptr() as usize;
            assert_eq!(a.as_bytes().as_ptr() as usize - base, a.offset() as usize);
        }
    }
}

fn same_frames(a: &[Frame], b: &[Frame], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: frame count");
    for (x, y) in a.iter().zip(b) {
        assert_eq!(
            x.as_bytes(),
            y.as_bytes(),
            "{what}: frame at {}",
            x.offset()
        );
        assert_eq!(x.offset(), y.offset(), "{what}: offset");
        assert_eq!(
            x.headers().collect::<Vec<_>>(),
            y.headers().collect::<Vec<_>>(),
            "{what}: headers"
        );
    }
}

#[test]
fn two_parts_split_at_every_byte_give_the_same_frames_small_captures() {
    // The whole transcript fed in two parts, at every boundary, for the captures small
    // enough to do literally (the test below covers every boundary of every capture).
    for name in scenarios() {
        let raw = raw(&name);
        if raw.len() > 8 * 1024 {
            continue;
        }
        let whole = decode_chunks([raw.as_slice()]);
        for k in 0..=raw.len() {
            let parts = decode_chunks([&raw[..k], &raw[k..]]);
            same_frames(&whole, &parts, &format!("{name} split at {k}"));
        }
    }
}

#[test]
fn two_parts_split_at_every_byte_inside_every_frame() {
    // Once a frame is out, a decoder holds nothing of it (buffer, scan position and pending
    // header all reset), so feeding a transcript in two parts at byte k gives the frames before
    // k's frame unchanged, and then what a fresh decoder gives for [frame start..k] followed
    // by the rest. That is checked here for every k of every capture, the frame that follows
    // included, at a cost linear in each frame rather than in the transcript.
    for name in scenarios() {
        let raw = raw(&name);
        let whole = decode_chunks([raw.as_slice()]);
        for (i, frame) in whole.iter().enumerate() {
            let start = frame.offset() as usize;
            let end = whole
                .get(i + 1)
                .map_or(raw.len(), |f| f.offset() as usize + f.as_bytes().len());
            let window = &raw[start..end];
            let expected = &whole[i..(i + 2).min(whole.len())];
            for k in 1..frame.as_bytes().len() {
                let mut decoder = Decoder::default();
                assert_eq!(decoder.feed(&window[..k]), k);
                assert!(
                    decoder.decode().expect("first part").is_none(),
                    "{name}: frame at {start} complete after {k} bytes"
                );
                assert_eq!(decoder.feed(&window[k..]), window.len() - k);
                for want in expected {
                    let got = decoder
                        .decode()
                        .expect("second part")
                        .unwrap_or_else(|| panic!("{name}: frame at {start} split at {k} lost"));
                    assert_eq!(
                        got.as_bytes(),
                        want.as_bytes(),
                        "{name}: split at {start}+{k}"
                    );
                    assert_eq!(got.header_count(), want.header_count());
                }
                assert!(decoder.decode().expect("nothing more").is_none());
            }
        }
    }
}

#[test]
fn byte_by_byte_gives_the_same_frames() {
    for name in [
        "auth_ok_exit",
        "api_bgapi",
        "sip_unregister_events",
        "outbound_socket_async_full_linger",
        "events_json_loopback_call",
    ] {
        let raw = raw(name);
        let whole = decode_chunks([raw.as_slice()]);
        let bytes = decode_chunks(raw.chunks(1));
        same_frames(&whole, &bytes, name);
    }
}

#[test]
fn every_event_of_every_capture_parses_in_its_format() {
    let mut counts = [0usize; 3];
    for name in scenarios() {
        for frame in decode_chunks([raw(&name).as_slice()]) {
            let Some(format) = frame.content_type().event_format() else {
                assert!(
                    frame.event().is_err(),
                    "{name}: a non-event frame is no event"
                );
                continue;
            };
            let event = frame
                .event()
                .unwrap_or_else(|e| panic!("{name} frame at {}: {e}", frame.offset()));
            assert_eq!(event.format(), format);
            assert!(event.name().is_some(), "{name}: event without Event-Name");
            assert!(event.header("Core-UUID").is_some());
            assert!(event.header("Event-Sequence").is_some());
            counts[format as usize] += 1;
        }
    }
    // 13 BACKGROUND_JOB plain events among hundreds; 59-frame json and xml calls.
    assert!(counts[0] > 400, "plain events: {}", counts[0]);
    assert_eq!(counts[1], 50, "json events");
    assert_eq!(counts[2], 50, "xml events");
}

/// Re-encode every event frame of the captures in its own format: the emulator's encoder must
/// write what FreeSWITCH wrote, byte for byte.
#[test]
fn events_reencode_byte_for_byte_in_all_three_formats() {
    let mut checked = 0;
    for name in scenarios() {
        for frame in decode_chunks([raw(&name).as_slice()]) {
            let Some(format) = frame.content_type().event_format() else {
                continue;
            };
            let event = frame.event().expect("event");
            let out = ServerFrame::Event {
                format,
                event: event.to_owned_event(),
            }
            .to_bytes()
            .expect("encodes");
            assert_eq!(
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(frame.as_bytes()),
                "{name}: {format} event at {}",
                frame.offset()
            );
            checked += 1;
        }
    }
    assert!(checked > 500);
}

/// Re-encode every other frame of the captures from what the codec read of it.
#[test]
fn server_frames_reencode_byte_for_byte() {
    let mut seen = std::collections::BTreeSet::new();
    for name in scenarios() {
        for frame in decode_chunks([raw(&name).as_slice()]) {
            let rebuilt = match frame.content_type() {
                ContentType::AuthRequest => ServerFrame::AuthRequest,
                ContentType::CommandReply if frame.is_serialized_event() => {
                    let mut channel = frame
                        .channel_data()
                        .expect("connect reply")
                        .expect("channel data parses")
                        .to_owned_event();
                    let tail: Vec<(String, String)> =
                        channel.headers.split_off(channel.headers.len() - 4);
                    let names: Vec<&str> = tail.iter().map(|(n, _)| n.as_str()).collect();
                    assert_eq!(
                        names,
                        ["Content-Type", "Reply-Text", "Socket-Mode", "Control"]
                    );
                    ServerFrame::ConnectReply {
                        channel,
                        async_mode: tail[2].1 == "async",
                        full_control: tail[3].1 == "full",
                    }
                }
                ContentType::CommandReply => match frame.job_uuid() {
                    Some(job_uuid) => ServerFrame::BgApiAccepted { job_uuid },
                    None => ServerFrame::CommandReply {
                        reply_text: frame.header("Reply-Text").expect("Reply-Text").to_owned(),
                    },
                },
                ContentType::ApiResponse => ServerFrame::ApiResponse {
                    body: String::from_utf8(frame.body().to_vec()).expect("text"),
                },
                ContentType::LogData => {
                    let log: LogRecord = frame.log().expect("log");
                    ServerFrame::Log(log)
                }
                ContentType::DisconnectNotice => {
                    let notice: DisconnectNotice = frame.disconnect_notice().expect("notice");
                    ServerFrame::Disconnect(notice)
                }
                ContentType::RudeRejection => ServerFrame::RudeRejection,
                _ => continue,
            };
            seen.insert(frame.content_type_str().to_owned());
            let out = rebuilt.to_bytes().expect("encodes");
            assert_eq!(
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(frame.as_bytes()),
                "{name}: frame at {}",
                frame.offset()
            );
        }
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        [
            "api/response",
            "auth/request",
            "command/reply",
            "log/data",
            "text/disconnect-notice",
            "text/rude-rejection"
        ]
    );
}

/// Every command the capture clients sent reads back as a command, and encodes to the same
/// bytes.
#[test]
fn client_commands_of_the_captures_parse_and_reencode() {
    let mut count = 0;
    for name in scenarios() {
        for block in transcript(&name).client_blocks() {
            let mut decoder = CommandDecoder::default();
            assert_eq!(decoder.feed(block), block.len());
            let frame = decoder
                .decode()
                .expect("command frames")
                .unwrap_or_else(|| panic!("{name}: incomplete command {block:?}"));
            assert!(decoder.decode().expect("one").is_none());
            let command: Command = frame
                .command()
                .unwrap_or_else(|e| panic!("{name}: {e}: {:?}", String::from_utf8_lossy(block)));
            assert_eq!(
                String::from_utf8_lossy(&command.to_bytes().expect("encodes")),
                String::from_utf8_lossy(block),
                "{name}: {command:?}"
            );
            count += 1;
        }
    }
    assert!(count > 150, "{count} commands");
}

/// The three loopback captures are the same call in three formats: the same events (FreeSWITCH
/// delivers some in a different order from run to run), each name with the same header names
/// (values differ only by ids and clocks).
#[test]
fn the_three_formats_carry_the_same_events_and_headers() {
    use std::collections::{BTreeMap, BTreeSet};
    let events = |name: &str| -> BTreeMap<String, (usize, BTreeSet<String>)> {
        let mut by_name: BTreeMap<String, (usize, BTreeSet<String>)> = BTreeMap::new();
        for f in decode_chunks([raw(name).as_slice()]) {
            if f.content_type().event_format().is_none() {
                continue;
            }
            let e = f.event().expect("event");
            let entry = by_name
                .entry(e.name().unwrap_or_default().to_owned())
                .or_default();
            entry.0 += 1;
            entry.1.extend(e.headers().map(|(n, _)| n.to_owned()));
        }
        by_name
    };
    let plain = events("events_plain_loopback_call");
    let json = events("events_json_loopback_call");
    let xml = events("events_xml_loopback_call");
    assert_eq!(plain.len(), 20);
    assert_eq!(plain, json);
    assert_eq!(plain, xml);
    // And the decoded values agree wherever the call does not (ids, clocks).
    let by_format = |name: &str, format: EventFormat| {
        decode_chunks([raw(name).as_slice()])
            .into_iter()
            .filter(|f| f.content_type().event_format() == Some(format))
            .map(|f| f.event().expect("event"))
            .find(|e| e.name() == Some("CHANNEL_ORIGINATE"))
            .expect("CHANNEL_ORIGINATE")
    };
    let p = by_format("events_plain_loopback_call", EventFormat::Plain);
    let j = by_format("events_json_loopback_call", EventFormat::Json);
    let x = by_format("events_xml_loopback_call", EventFormat::Xml);
    for header in [
        "Caller-Caller-ID-Number",
        "Channel-Name",
        "Caller-Destination-Number",
    ] {
        assert_eq!(p.header(header), j.header(header), "{header}");
        assert_eq!(p.header(header), x.header(header), "{header}");
    }
}
