//! The `switchboard` binary as an administrator runs it: help on every command, a bad config
//! refused with the file and the key, `migrate` creating the database, `serve` answering HTTP
//! and stopping cleanly on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn switchboard() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    // The tests' own variables must not leak into the configuration.
    command.env_remove("SWITCHBOARD_CONFIG");
    command
}

#[test]
fn every_command_has_help() {
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["migrate", "--help"],
        vec!["check", "--help"],
        vec!["emulate", "asterisk", "--help"],
        vec!["emulate", "freeswitch", "--help"],
        vec!["keys", "--help"],
    ] {
        let out = switchboard().args(&args).output().expect("runs");
        assert!(out.status.success(), "{args:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Usage"), "{args:?}: {text}");
    }
    let out = switchboard().arg("--help").output().expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    for command in ["serve", "migrate", "check"] {
        assert!(
            text.contains(command),
            "{command} missing from --help:\n{text}"
        );
    }
}

#[test]
fn a_bad_config_is_refused_with_the_file_and_the_key() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[[queues]]\nname = \"sales\"\noffer_timeout_s = -3\n",
    )
    .expect("writes");
    let out = switchboard()
        .arg("--config")
        .arg(&path)
        .arg("check")
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("bad.toml") && text.contains("queues[0].offer_timeout_s"),
        "{text}"
    );
}

#[test]
fn the_shipped_example_config_passes_check() {
    let out = switchboard()
        .args(["--config", "switchboard.toml", "check"])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("configuration OK"));
}

#[test]
fn migrate_creates_the_sqlite_database() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let db = dir.path().join("data").join("switchboard.db");
    let out = switchboard()
        .arg("migrate")
        .env(
            "SWITCHBOARD_STORE_URL",
            format!("sqlite://{}", db.display()),
        )
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(db.exists(), "the database file was created");
}

#[cfg(unix)]
#[test]
fn serve_answers_http_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
        probe.local_addr().expect("address").port()
    };
    let mut child = switchboard()
        .args(["--log-format", "json", "serve"])
        .env("SWITCHBOARD_SERVER_LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "SWITCHBOARD_STORE_URL",
            format!("sqlite://{}", dir.path().join("s.db").display()),
        )
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let started = Instant::now();
    let mut serving = false;
    for line in lines.by_ref() {
        let line = line.expect("log line");
        let entry: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        if entry.to_string().contains("serving the HTTP API") {
            serving = true;
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "serve did not start"
        );
    }
    assert!(serving);
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connects");
    use std::io::{Read, Write};
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("writes");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("reads");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    // SIGTERM asks for a graceful stop, as systemd and docker send it.
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let waited = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("waits") {
            assert!(status.success(), "serve exited with {status}");
            break;
        }
        assert!(
            waited.elapsed() < Duration::from_secs(15),
            "serve did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l.contains("shutting down")), "{rest:?}");
}

#[test]
fn simulate_prints_the_day_and_the_same_seed_gives_the_same_figures() {
    let run = |seed: &str| {
        let out = switchboard()
            .args([
                "simulate",
                "examples/small-inbound.toml",
                "--hours",
                "3",
                "--json",
                "--seed",
                seed,
            ])
            .output()
            .expect("runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        let overall = report["overall"].clone();
        assert!(overall["offered"].as_u64().unwrap_or(0) > 0, "{report}");
        // Decision latency is wall-clock; everything else is the seed's.
        if let Some(map) = report.as_object_mut() {
            map.retain(|k, _| !k.contains("latency") && !k.contains("wall"));
        }
        report
    };
    assert_eq!(run("5"), run("5"));
    assert_ne!(
        run("5")["overall"],
        run("6")["overall"],
        "another seed, another day"
    );
    let out = switchboard()
        .args(["simulate", "examples/blended.toml"])
        .output()
        .expect("runs");
    let table = String::from_utf8_lossy(&out.stdout);
    for column in [
        "offered",
        "handled",
        "abandoned",
        "SL",
        "ASA",
        "AHT",
        "occupancy",
        "decision latency",
    ] {
        assert!(table.contains(column), "{column} missing:\n{table}");
    }
}

#[test]
fn a_bad_scenario_is_refused_with_the_field_named() {
    let out = switchboard()
        .args(["simulate", "tests/data/scenarios/negative-rate.toml"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("negative-rate.toml") && text.contains("per_hour"),
        "{text}"
    );
}

#[test]
fn emulate_asterisk_serves_ari_to_its_user_only() {
    let mut child = switchboard()
        .args(["emulate", "asterisk", "--listen", "127.0.0.1:0"])
        .args(["--user", "cc", "--password", "s3cret"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut first = String::new();
    BufReader::new(stdout)
        .read_line(&mut first)
        .expect("prints where it listens");
    // "Asterisk emulator: ARI at http://127.0.0.1:PORT/ari (WebSocket …)"
    let base = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {first:?}"))
        .to_owned();
    let status = |user: &str, password: &str| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            reqwest::Client::new()
                .get(format!("{base}/asterisk/info"))
                .basic_auth(user, Some(password))
                .send()
                .await
                .expect("answers")
                .status()
                .as_u16()
        })
    };
    let ok = status("cc", "s3cret");
    let refused = status("cc", "wrong");
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!((ok, refused), (200, 401));
}

#[test]
fn keys_prints_a_first_administrator_key_once() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = dir.path().join("switchboard.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\nurl = \"sqlite://{}\"\n",
            dir.path().join("sb.db").display()
        ),
    )
    .expect("writes");
    let run = |args: &[&str]| {
        switchboard()
            .arg("--config")
            .arg(&config)
            .arg("keys")
            .args(args)
            .output()
            .expect("runs")
    };
    let first = run(&["--tenant", "acme"]);
    assert!(first.status.success(), "{first:?}");
    let token = String::from_utf8_lossy(&first.stdout);
    assert!(token.trim().starts_with("sb_"), "{token}");
    // A tenant that has an administrator key gets no second one this way.
    let second = run(&["--tenant", "acme"]);
    assert!(!second.status.success());
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("acme"),
        "{second:?}"
    );
    // The operator's first key, likewise once.
    let operator = run(&["--operator"]);
    assert!(operator.status.success(), "{operator:?}");
    let token = String::from_utf8_lossy(&operator.stdout);
    assert!(token.trim().starts_with("sb_"), "{token}");
    let again = run(&["--operator"]);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("operator"),
        "{again:?}"
    );
    let both = run(&["--operator", "--tenant", "acme"]);
    assert!(
        !both.status.success(),
        "a key is the operator's or a client's"
    );
}
