//! ESL benchmark (`cargo bench --bench esl`), on one core.
//!
//! Codec half: the captures' events (fixtures/esl, plain and json), repeated into a large
//! in-memory stream, fed to the sans-IO [`Decoder`] in 64 KiB reads (as a socket would give
//! them); each frame's event is parsed and its name and Unique-ID read, which is what the
//! FreeSWITCH handler does with every event.
//!
//! End-to-end half: a local TCP server (a thread of this benchmark) greets, accepts `auth`,
//! accepts the `event plain ALL` subscription, then streams the captures' plain events and
//! closes; Switchboard's [`EslClient`] and freeswitch-esl-tokio's client each read the whole
//! stream, counting events delivered to their consumer (name and Unique-ID read, as the
//! handler does). Neither may drop an event (the peer is told to block on overflow).
//!
//! Ends with one line:
//! `esl: codec_plain_events_per_s=… codec_json_events_per_s=… codec_plain_mb_per_s=…
//! client_plain_events_per_s=… peer_plain_events_per_s=… esl_vs_freeswitch_esl_tokio=…`

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::io::{Read, Write};

use bytes::Bytes;
use switchboard::media::freeswitch::codec::{
    ContentType, Decoder, EventFormat, Limits, split_frames,
};
use switchboard::media::freeswitch::{ClientConfig, EslClient};

/// fixtures/esl, beside the repository (or where SWITCHBOARD_ESL_FIXTURES says).
fn fixtures_dir() -> PathBuf {
    std::env::var_os("SWITCHBOARD_ESL_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/esl"))
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

/// Reads one command (up to its blank line) from a blocking socket.
fn read_command(s: &mut std::net::TcpStream) -> String {
    let mut out = Vec::new();
    let mut byte = [0u8; 1];
    while !out.ends_with(b"\n\n") {
        match s.read(&mut byte) {
            Ok(1) => out.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A one-connection ESL server on a thread: greeting, auth, subscription, then `stream`, then
/// close. Returns its port.
fn serve_once(stream: Arc<Vec<u8>>) -> (u16, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let thread = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        let _ = s.set_nodelay(true);
        s.write_all(b"Content-Type: auth/request\n\n")
            .expect("greet");
        let auth = read_command(&mut s);
        assert!(auth.starts_with("auth "), "{auth:?}");
        s.write_all(b"Content-Type: command/reply\nReply-Text: +OK accepted\n\n")
            .expect("auth reply");
        let sub = read_command(&mut s);
        assert!(sub.starts_with("event plain"), "{sub:?}");
        s.write_all(
            b"Content-Type: command/reply\nReply-Text: +OK event listener enabled plain\n\n",
        )
        .expect("subscribe reply");
        for chunk in stream.chunks(256 * 1024) {
            if s.write_all(chunk).is_err() {
                return;
            }
        }
        let _ = s.shutdown(std::net::Shutdown::Both);
    });
    (port, thread)
}

/// Switchboard's client over loopback: events per second delivered to the consumer.
async fn client_rate(stream: Arc<Vec<u8>>, expected: usize) -> f64 {
    let (port, server) = serve_once(stream);
    let mut config = ClientConfig::new(&format!("127.0.0.1:{port}"), "ClueCon");
    config.format = EventFormat::Plain;
    config.events = vec!["ALL".into()];
    let start = Instant::now();
    let (_client, mut events) = EslClient::connect(&config).await.expect("client connects");
    let mut n = 0usize;
    while let Ok(event) = events.recv().await {
        black_box(event.name());
        black_box(event.header_raw("Unique-ID"));
        n += 1;
    }
    let t = start.elapsed().as_secs_f64();
    server.join().expect("server");
    assert_eq!(n, expected, "Switchboard's client delivered every event");
    n as f64 / t
}

/// freeswitch-esl-tokio's client over loopback, told to block (not drop) on overflow.
async fn peer_rate(stream: Arc<Vec<u8>>, expected: usize) -> f64 {
    use freeswitch_esl_tokio::{EslConnectOptions, EventOverflow};
    let (port, server) = serve_once(stream);
    let options = EslConnectOptions::default()
        .with_event_queue_size(4096)
        .with_event_overflow(EventOverflow::BlockFor(Duration::from_secs(60)));
    let start = Instant::now();
    let (client, mut events) = freeswitch_esl_tokio::EslClient::connect_with_options(
        "127.0.0.1",
        port,
        "ClueCon",
        options,
    )
    .await
    .expect("peer connects");
    client
        .subscribe_events_raw(freeswitch_esl_tokio::EventFormat::Plain, "ALL")
        .await
        .expect("peer subscribes");
    let mut n = 0usize;
    while let Some(event) = events.recv().await {
        let Ok(event) = event else { break };
        black_box(event.header_str("Event-Name"));
        black_box(event.header_str("Unique-ID"));
        n += 1;
    }
    let t = start.elapsed().as_secs_f64();
    server.join().expect("server");
    assert_eq!(client.dropped_event_count(), 0, "the peer dropped events");
    assert_eq!(n, expected, "the peer delivered every event");
    n as f64 / t
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

    // End to end over loopback TCP, the same stream for both clients, best of three each.
    let e2e_events: usize = std::env::var("ESL_E2E_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let mut e2e = Vec::with_capacity(e2e_events * 2600);
    for f in plain.iter().cycle().take(e2e_events) {
        e2e.extend_from_slice(f);
    }
    let e2e = Arc::new(e2e);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (mut ours, mut peer) = (0f64, 0f64);
    for _ in 0..3 {
        ours = ours.max(rt.block_on(client_rate(e2e.clone(), e2e_events)));
        peer = peer.max(rt.block_on(peer_rate(e2e.clone(), e2e_events)));
    }
    println!(
        "end to end: {e2e_events} plain events, {} MB: Switchboard {ours:.0} events/s, freeswitch-esl-tokio {peer:.0} events/s (wall)",
        e2e.len() / 1_000_000
    );
    // The line's figures are per CPU second of the one core (see thread_cpu_time); on an idle
    // machine they equal the wall-clock figures above.
    println!(
        "esl: codec_plain_events_per_s={:.0} codec_json_events_per_s={:.0} codec_plain_mb_per_s={:.0} client_plain_events_per_s={ours:.0} peer_plain_events_per_s={peer:.0} esl_vs_freeswitch_esl_tokio={:.2}",
        plain_rate.events_cpu,
        json_rate.events_cpu,
        plain_rate.bytes_cpu / 1e6,
        ours / peer
    );
}
