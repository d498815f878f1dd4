//! ESL benchmark (`cargo bench --bench esl`), on one core.
//!
//! Codec half: the captures' events (fixtures/esl, plain and json), repeated into a large
//! in-memory stream, fed to the sans-IO [`Decoder`] in 64 KiB reads (as a socket would give
//! them); each frame's event is parsed and its name and Unique-ID read, which is what the
//! FreeSWITCH handler does with every event. The end-to-end half (Switchboard's client and
//! freeswitch-esl-tokio's over loopback TCP) comes with the client; its fields print NA.
//!
//! Ends with one line:
//! `esl: codec_plain_events_per_s=… codec_json_events_per_s=… codec_plain_mb_per_s=…
//! client_plain_events_per_s=NA peer_plain_events_per_s=NA esl_vs_freeswitch_esl_tokio=NA`

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use switchboard::media::freeswitch::codec::{ContentType, Decoder, Limits, split_frames};

/// fixtures/esl, beside the repository (or where SWITCHBOARD_ESL_FIXTURES says).
fn fixtures_dir() -> PathBuf {
    std::env::var_os("SWITCHBOARD_ESL_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/esl"))
}

/// Every event frame of the captures with this content type, in capture order.
fn event_frames(content_type: ContentType) -> Vec<Bytes> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .unwrap_or_else(|e| {
            panic!(
                "ESL fixtures not found at {}: {e}",
                fixtures_dir().display()
            )
        })
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "raw"))
        .collect();
    names.sort();
    let mut frames = Vec::new();
    for path in names {
        let raw = Bytes::from(std::fs::read(&path).expect("read capture"));
        for frame in split_frames(raw, Limits::default()) {
            let frame = frame.expect("captures parse");
            if frame.content_type() == content_type {
                frames.push(frame.as_bytes().clone());
            }
        }
    }
    frames
}

/// The frames repeated until the stream holds at least `target` bytes.
fn stream(frames: &[Bytes], target: usize) -> (Vec<u8>, usize) {
    let mut out = Vec::with_capacity(target + 64 * 1024);
    let mut count = 0;
    while out.len() < target {
        for f in frames {
            out.extend_from_slice(f);
            count += 1;
        }
    }
    (out, count)
}

/// Decode the whole stream as a connection would: 64 KiB reads, every event parsed, its name
/// and Unique-ID read. Returns the events seen.
fn decode_stream(stream: &[u8]) -> usize {
    let mut decoder = Decoder::default();
    let mut events = 0;
    for chunk in stream.chunks(64 * 1024) {
        let mut rest = chunk;
        while !rest.is_empty() {
            let n = decoder.feed(rest);
            rest = &rest[n..];
            while let Some(frame) = decoder.decode().expect("decodes") {
                let event = frame.event().expect("event parses");
                black_box(event.name());
                black_box(event.header_raw("Unique-ID"));
                events += 1;
            }
        }
    }
    events
}

/// Parse frames straight from shared memory (no copy into a decoder buffer).
fn split_stream(stream: &Bytes) -> usize {
    let mut events = 0;
    for frame in split_frames(stream.clone(), Limits::default()) {
        let event = frame.expect("frame").event().expect("event parses");
        black_box(event.name());
        black_box(event.header_raw("Unique-ID"));
        events += 1;
    }
    events
}

/// This thread's CPU time. The machine is shared (other builds run beside the benchmark), so
/// besides wall time the figures are given per second of CPU time of the one core used.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer to a local.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Throughput of one workload: per wall second and per CPU second, best run of several.
struct Rate {
    events_wall: f64,
    bytes_wall: f64,
    events_cpu: f64,
    bytes_cpu: f64,
}

/// Best of several runs lasting about `budget` in all.
fn measure(budget: Duration, bytes: usize, mut run: impl FnMut() -> usize) -> Rate {
    let start = Instant::now();
    let (mut wall, mut cpu) = (f64::INFINITY, f64::INFINITY);
    let mut events = 0;
    let mut runs = 0;
    while runs < 3 || (start.elapsed() < budget && runs < 50) {
        let (t, c) = (Instant::now(), thread_cpu_time());
        events = run();
        wall = wall.min(t.elapsed().as_secs_f64());
        cpu = cpu.min((thread_cpu_time() - c).as_secs_f64());
        runs += 1;
    }
    Rate {
        events_wall: events as f64 / wall,
        bytes_wall: bytes as f64 / wall,
        events_cpu: events as f64 / cpu,
        bytes_cpu: bytes as f64 / cpu,
    }
}

fn show(what: &str, r: &Rate) {
    println!(
        "{what}: {:.0} events/s, {:.0} MB/s (wall); {:.0} events/s, {:.0} MB/s (per CPU second)",
        r.events_wall,
        r.bytes_wall / 1e6,
        r.events_cpu,
        r.bytes_cpu / 1e6
    );
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument, if any, is ignored (one benchmark).
    let plain = event_frames(ContentType::EventPlain);
    let json = event_frames(ContentType::EventJson);
    assert!(
        !plain.is_empty() && !json.is_empty(),
        "no events in the captures"
    );
    let avg = |f: &[Bytes]| f.iter().map(Bytes::len).sum::<usize>() as f64 / f.len() as f64;
    println!(
        "captures: {} plain events (average {:.0} bytes), {} json events (average {:.0} bytes)",
        plain.len(),
        avg(&plain),
        json.len(),
        avg(&json)
    );

    // ESL_BENCH_MB shrinks the plain stream (the json one is a quarter of it), for example to
    // count instructions under valgrind, where hardware counters are missing.
    let mb: usize = std::env::var("ESL_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let (plain_stream, plain_count) = stream(&plain, mb * 1024 * 1024);
    let (json_stream, json_count) = stream(&json, mb * 256 * 1024);
    assert_eq!(decode_stream(&plain_stream), plain_count);
    assert_eq!(decode_stream(&json_stream), json_count);

    let budget = Duration::from_secs(if mb < 256 { 0 } else { 4 });
    let plain_rate = measure(budget, plain_stream.len(), || decode_stream(&plain_stream));
    let json_rate = measure(budget, json_stream.len(), || decode_stream(&json_stream));
    let shared = Bytes::from(plain_stream);
    let split_rate = measure(budget, shared.len(), || split_stream(&shared));

    println!(
        "streams: plain {} MB, json {} MB; load average {}",
        shared.len() / 1_000_000,
        json_stream.len() / 1_000_000,
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    show("codec plain (decoder, 64 KiB reads)", &plain_rate);
    show("codec json  (decoder, 64 KiB reads)", &json_rate);
    show("codec plain (split_frames, shared memory)", &split_rate);
    // The line's figures are per CPU second of the one core (see thread_cpu_time); on an idle
    // machine they equal the wall-clock figures above.
    println!(
        "esl: codec_plain_events_per_s={:.0} codec_json_events_per_s={:.0} codec_plain_mb_per_s={:.0} client_plain_events_per_s=NA peer_plain_events_per_s=NA esl_vs_freeswitch_esl_tokio=NA",
        plain_rate.events_cpu,
        json_rate.events_cpu,
        plain_rate.bytes_cpu / 1e6
    );
}
