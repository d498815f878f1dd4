//! Faults on demand: drop every connection, refuse commands, delay replies, kill a leg with
//! a cause; and legs that fail as SIP phones do (busy, no answer, not in the directory).

mod esl_emulator_support;

use std::time::{Duration, Instant};

use esl_emulator_support::*;
use switchboard::emulator::freeswitch::{DialBehaviour, Emulator, EmulatorOptions};
use switchboard::media::LegId;

async fn logged_in(options: EmulatorOptions) -> (Emulator, Client) {
    let emu = emulator(options).await;
    let mut c = Client::connect(emu.local_addr()).await;
    c.login("ClueCon").await;
    (emu, c)
}

fn fast() -> EmulatorOptions {
    EmulatorOptions {
        time_scale: 0.05,
        ..EmulatorOptions::default()
    }
}

#[tokio::test]
async fn fault_drop_connections_closes_every_socket_and_new_ones_work() {
    let (emu, mut a) = logged_in(fast()).await;
    let mut b = Client::connect(emu.local_addr()).await;
    b.login("ClueCon").await;
    assert_eq!(emu.connections(), 2);
    emu.drop_connections();
    assert!(a.drain(Duration::from_secs(5)).await, "a closed");
    assert!(b.drain(Duration::from_secs(5)).await, "b closed");
    // No notice: the connection just drops.
    assert!(
        a.seen
            .iter()
            .all(|f| f.header("Content-Type") != Some("text/disconnect-notice"))
    );
    let mut c = Client::connect(emu.local_addr()).await;
    c.login("ClueCon").await;
    emu.shutdown().await;
}

#[tokio::test]
async fn fault_refuse_commands_answers_err_until_lifted() {
    let (emu, mut c) = logged_in(fast()).await;
    emu.refuse_commands(true);
    let r = c.command("api status").await;
    assert!(r.body().starts_with(b"-ERR"));
    let r = c.command("event plain ALL").await;
    assert!(r.header("Reply-Text").unwrap_or("").starts_with("-ERR"));
    let r = c.command("bgapi status").await;
    assert!(r.header("Reply-Text").unwrap_or("").starts_with("-ERR"));
    emu.refuse_commands(false);
    let r = c.command("api version").await;
    assert!(r.body().starts_with(b"FreeSWITCH Version"));
    emu.shutdown().await;
}

#[tokio::test]
async fn fault_delay_replies_holds_every_command() {
    let (emu, mut c) = logged_in(fast()).await;
    emu.delay_replies(Some(Duration::from_millis(300)));
    let t = Instant::now();
    c.command("api version").await;
    assert!(t.elapsed() >= Duration::from_millis(300));
    emu.delay_replies(None);
    let t = Instant::now();
    c.command("api version").await;
    assert!(t.elapsed() < Duration::from_millis(300));
    emu.shutdown().await;
}

#[tokio::test]
async fn fault_kill_channel_hangs_the_leg_up_with_the_cause() {
    let (emu, mut c) = logged_in(fast()).await;
    c.command("event plain CHANNEL_HANGUP CHANNEL_HANGUP_COMPLETE")
        .await;
    c.command("api originate {origination_uuid=k-1}user/1000 &park()")
        .await;
    assert!(emu.kill_channel(&LegId::new("k-1"), "CALL_REJECTED"));
    let f = c
        .until(Duration::from_secs(5), |f| {
            event_name(f).as_deref() == Some("CHANNEL_HANGUP")
        })
        .await
        .expect("hangup");
    assert_eq!(
        event_header(&f, "Hangup-Cause").as_deref(),
        Some("CALL_REJECTED")
    );
    assert!(emu.channels().is_empty());
    assert!(!emu.kill_channel(&LegId::new("k-1"), "NORMAL_CLEARING"));
    emu.shutdown().await;
}

#[tokio::test]
async fn originate_to_a_busy_user_fails_with_user_busy() {
    let mut o = fast();
    o.world.users.insert("2000".into(), DialBehaviour::Busy);
    let (emu, mut c) = logged_in(o).await;
    let r = c.command("api originate user/2000 &park()").await;
    assert_eq!(r.body(), b"-ERR USER_BUSY\n");
    emu.shutdown().await;
}

#[tokio::test]
async fn originate_to_a_user_who_never_answers_fails_with_no_answer_after_the_timeout() {
    let mut o = fast();
    o.world.users.insert("2001".into(), DialBehaviour::NoAnswer);
    let (emu, mut c) = logged_in(o).await;
    c.command("event plain CHANNEL_PROGRESS").await;
    let r = c
        .command("api originate {originate_timeout=10}user/2001 &park()")
        .await;
    assert_eq!(r.body(), b"-ERR NO_ANSWER\n");
    assert!(
        c.seen
            .iter()
            .any(|f| event_name(f).as_deref() == Some("CHANNEL_PROGRESS"))
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn originate_to_an_unknown_user_or_unknown_gateway_fails_at_once() {
    let (emu, mut c) = logged_in(fast()).await;
    let r = c.command("api originate user/9999 &park()").await;
    assert_eq!(
        r.body(),
        b"-ERR SUBSCRIBER_ABSENT\n",
        "9999 is in no directory"
    );
    let r = c
        .command("api originate sofia/gateway/nosuch/123 &park()")
        .await;
    assert_eq!(r.body(), b"-ERR GATEWAY_DOWN\n");
    let r = c.command("api originate nosuch/123 &park()").await;
    assert_eq!(r.body(), b"-ERR CHAN_NOT_IMPLEMENTED\n");
    emu.shutdown().await;
}

#[tokio::test]
async fn garbage_and_oversized_commands_never_crash_the_emulator() {
    let (emu, mut c) = logged_in(fast()).await;
    c.send(b"\x00\xff\xfe nonsense\n\n").await;
    let r = c.reply().await;
    assert_eq!(r.header("Reply-Text"), Some("-ERR command not found"));
    c.send(b"sendmsg\ncall-command: execute\ncontent-length: 99999999999999999999\n\n")
        .await;
    // Whatever the emulator made of it, it still answers new connections.
    c.drain(Duration::from_millis(300)).await;
    let mut d = Client::connect(emu.local_addr()).await;
    d.login("ClueCon").await;
    let big = "x".repeat(200_000);
    d.send(format!("api {big}\n\n").as_bytes()).await;
    d.drain(Duration::from_millis(500)).await;
    let mut e = Client::connect(emu.local_addr()).await;
    e.login("ClueCon").await;
    emu.shutdown().await;
}
