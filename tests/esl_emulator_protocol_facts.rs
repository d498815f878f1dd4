//! One test per server-side protocol fact of fixtures/esl/README.md ("Protocol facts
//! observed in these captures"), each named after its fact, against the emulator.

mod esl_emulator_support;

use std::time::Duration;

use esl_emulator_support::*;
use switchboard::emulator::freeswitch::{Emulator, EmulatorOptions};
use switchboard::media::freeswitch::codec::{ContentType, Frame, GOODBYE};

async fn logged_in() -> (Emulator, Client) {
    let options = EmulatorOptions {
        time_scale: 0.2,
        ..EmulatorOptions::default()
    };
    let emu = emulator(options).await;
    let mut c = Client::connect(emu.local_addr()).await;
    c.login("ClueCon").await;
    (emu, c)
}

async fn job(c: &mut Client) -> Frame {
    c.until(Duration::from_secs(10), |f| {
        event_name(f).as_deref() == Some("BACKGROUND_JOB")
    })
    .await
    .expect("a BACKGROUND_JOB")
}

#[tokio::test]
async fn framing_every_line_ends_in_bare_lf_and_cr_never_appears() {
    let (emu, mut c) = logged_in().await;
    c.command("event plain ALL").await;
    c.command("api originate loopback/7201/default &park()")
        .await;
    c.drain(Duration::from_millis(600)).await;
    c.command("api status").await;
    for f in &c.seen {
        assert!(!f.as_bytes().contains(&b'\r'), "{f:?}");
        assert!(f.header_block().ends_with(b"\n\n"));
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn framing_content_length_gives_exactly_the_body_and_nothing_separates_frames() {
    let (emu, mut c) = logged_in().await;
    c.command("event json ALL").await;
    c.command("api originate loopback/7200/default &park()")
        .await;
    c.drain(Duration::from_millis(300)).await;
    for f in &c.seen {
        if let Some(n) = f.header("Content-Length") {
            assert_eq!(n.parse::<usize>().unwrap(), f.body().len());
        }
    }
    // A JSON body ends in `}`: the next frame follows at once (the decoder read them all).
    assert!(
        c.seen
            .iter()
            .any(|f| f.content_type() == ContentType::EventJson && f.body().ends_with(b"}"))
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn framing_event_frames_put_content_length_before_content_type() {
    let (emu, mut c) = logged_in().await;
    c.command("event plain BACKGROUND_JOB").await;
    c.command("bgapi version").await;
    let f = job(&mut c).await;
    let names: Vec<&str> = f.headers().map(|(n, _)| n).collect();
    assert_eq!(names, ["Content-Length", "Content-Type"]);
    emu.shutdown().await;
}

#[tokio::test]
async fn replies_command_reply_carries_reply_text_and_no_body() {
    let (emu, mut c) = logged_in().await;
    let r = c.command("event plain CHANNEL_CREATE").await;
    assert_eq!(r.content_type(), ContentType::CommandReply);
    assert_eq!(
        r.header("Reply-Text"),
        Some("+OK event listener enabled plain")
    );
    assert!(r.body().is_empty());
    assert_eq!(r.header("Content-Length"), None);
    emu.shutdown().await;
}

#[tokio::test]
async fn replies_api_errors_are_body_text_not_marked_in_headers() {
    let (emu, mut c) = logged_in().await;
    let r = c.command("api nosuchcmd").await;
    assert_eq!(r.content_type(), ContentType::ApiResponse);
    assert_eq!(r.body(), b"-ERR nosuchcmd Command not found!\n");
    assert_eq!(r.header("Reply-Text"), None);
    let r = c
        .command("api uuid_getvar 00000000-0000-0000-0000-000000000000 foo")
        .await;
    assert_eq!(r.body(), b"-ERR No such channel!\n");
    emu.shutdown().await;
}

#[tokio::test]
async fn replies_api_bodies_may_or_may_not_end_in_newline() {
    let (emu, mut c) = logged_in().await;
    assert_eq!(
        c.command("api global_getvar domain").await.body(),
        b"127.0.0.1"
    );
    assert_eq!(
        c.command("api show calls count").await.body(),
        b"\n0 total.\n"
    );
    assert_eq!(
        c.command("api version").await.body(),
        b"FreeSWITCH Version 1.10.12-release~64bit ( 64bit)\n"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn replies_auth_exit_and_listener_texts_are_freeswitchs() {
    let (emu, mut c) = logged_in().await;
    let text = |f: Frame| f.header("Reply-Text").unwrap_or("").to_owned();
    assert_eq!(
        text(c.command("event json ALL").await),
        "+OK event listener enabled json"
    );
    assert_eq!(
        text(c.command("event xml ALL").await),
        "+OK event listener enabled xml"
    );
    assert_eq!(
        text(c.command("nixevent HEARTBEAT").await),
        "+OK events nixed"
    );
    assert_eq!(
        text(c.command("noevents").await),
        "+OK no longer listening for events"
    );
    assert_eq!(
        text(c.command("filter Unique-ID abc").await),
        "+OK filter added. [Unique-ID]=[abc]"
    );
    assert_eq!(
        text(c.command("filter delete Unique-ID abc").await),
        "+OK filter deleted. [Unique-ID][abc]"
    );
    assert_eq!(
        text(c.command("filter delete all").await),
        "+OK filter deleted. [all][]"
    );
    assert_eq!(text(c.command("log 7").await), "+OK log level 7 [7]");
    assert_eq!(text(c.command("nolog").await), "+OK no longer logging");
    assert_eq!(
        text(
            c.command("sendmsg 00000000-0000-0000-0000-000000000000\ncall-command: hangup")
                .await
        ),
        "-ERR invalid session id [00000000-0000-0000-0000-000000000000]"
    );
    assert_eq!(text(c.command("exit").await), "+OK bye");
    emu.shutdown().await;
}

#[tokio::test]
async fn auth_commands_before_auth_get_err_command_not_found_and_the_connection_stays() {
    let emu = emulator(EmulatorOptions::default()).await;
    let mut c = Client::connect(emu.local_addr()).await;
    c.next(Duration::from_secs(5)).await.expect("auth/request");
    for cmd in ["api status", "event plain ALL", "nosuch verb"] {
        let r = c.command(cmd).await;
        assert_eq!(
            r.header("Reply-Text"),
            Some("-ERR command not found"),
            "{cmd}"
        );
    }
    let r = c.command("auth ClueCon").await;
    assert_eq!(r.header("Reply-Text"), Some("+OK accepted"));
    emu.shutdown().await;
}

#[tokio::test]
async fn auth_bad_password_gets_err_invalid_then_goodbye_and_close() {
    let emu = emulator(EmulatorOptions::new("secret")).await;
    let mut c = Client::connect(emu.local_addr()).await;
    c.next(Duration::from_secs(5)).await.expect("auth/request");
    let r = c.command("auth ClueCon").await;
    assert_eq!(r.header("Reply-Text"), Some("-ERR invalid"));
    let n = c.next(Duration::from_secs(5)).await.expect("notice");
    assert_eq!(n.content_type(), ContentType::DisconnectNotice);
    assert!(c.drain(Duration::from_secs(5)).await, "closed");
    emu.shutdown().await;
}

#[tokio::test]
async fn acl_rejection_sends_rude_rejection_then_goodbye_and_no_auth_request() {
    let mut options = EmulatorOptions::default();
    options.world.acl_deny = true;
    let emu = emulator(options).await;
    let mut c = Client::connect(emu.local_addr()).await;
    let first = c.next(Duration::from_secs(5)).await.expect("rejection");
    assert_eq!(first.content_type(), ContentType::RudeRejection);
    assert_eq!(first.body(), b"Access Denied, go away.\n");
    let second = c.next(Duration::from_secs(5)).await.expect("notice");
    assert_eq!(second.content_type(), ContentType::DisconnectNotice);
    assert!(c.drain(Duration::from_secs(5)).await);
    emu.shutdown().await;
}

#[tokio::test]
async fn disconnect_notice_after_exit_has_content_length_67_and_the_goodbye_body() {
    let (emu, mut c) = logged_in().await;
    c.command("exit").await;
    let n = c.next(Duration::from_secs(5)).await.expect("notice");
    assert_eq!(n.content_type(), ContentType::DisconnectNotice);
    assert_eq!(n.header("Content-Length"), Some("67"));
    assert_eq!(n.body(), GOODBYE.as_bytes());
    assert_eq!(n.header("Content-Disposition"), None);
    assert!(c.drain(Duration::from_secs(5)).await);
    emu.shutdown().await;
}

#[tokio::test]
async fn disconnect_notice_of_a_myevents_bound_inbound_session_names_the_channel_and_closes() {
    let (emu, mut c) = logged_in().await;
    let r = c
        .command("api originate loopback/7200/default &park()")
        .await;
    let body = String::from_utf8_lossy(r.body()).into_owned();
    let uuid = body.trim().trim_start_matches("+OK ").to_owned();
    let r = c.command(&format!("myevents {uuid}")).await;
    assert_eq!(r.header("Reply-Text"), Some("+OK Events Enabled"));
    c.command(&format!("api uuid_kill {uuid}")).await;
    let n = c
        .until(Duration::from_secs(5), |f| {
            f.content_type() == ContentType::DisconnectNotice
        })
        .await
        .expect("notice");
    assert_eq!(n.header("Controlled-Session-UUID"), Some(uuid.as_str()));
    assert_eq!(n.header("Content-Disposition"), Some("disconnect"));
    assert!(c.drain(Duration::from_secs(5)).await);
    emu.shutdown().await;
}

#[tokio::test]
async fn bgapi_replies_at_once_with_job_uuid_in_reply_text_and_its_own_header() {
    let (emu, mut c) = logged_in().await;
    let r = c.command("bgapi status").await;
    let job = r.header("Job-UUID").expect("Job-UUID").to_owned();
    assert_eq!(
        r.header("Reply-Text"),
        Some(format!("+OK Job-UUID: {job}").as_str())
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn bgapi_honours_a_client_supplied_job_uuid() {
    let (emu, mut c) = logged_in().await;
    c.command("event plain BACKGROUND_JOB").await;
    let r = c
        .command("bgapi version\nJob-UUID: 2b1b7b95-4477-4adb-b0ef-b1ad751464b1")
        .await;
    assert_eq!(
        r.header("Job-UUID"),
        Some("2b1b7b95-4477-4adb-b0ef-b1ad751464b1")
    );
    let f = job(&mut c).await;
    assert_eq!(
        event_header(&f, "Job-UUID").as_deref(),
        Some("2b1b7b95-4477-4adb-b0ef-b1ad751464b1")
    );
    assert_eq!(event_header(&f, "Job-Command").as_deref(), Some("version"));
    emu.shutdown().await;
}

#[tokio::test]
async fn bgapi_result_arrives_only_when_subscribed_to_background_job() {
    let (emu, mut c) = logged_in().await;
    c.command("bgapi version").await;
    assert!(!c.drain(Duration::from_millis(400)).await);
    assert!(c.seen.iter().all(|f| event_name(f).is_none()));
    emu.shutdown().await;
}

#[tokio::test]
async fn bgapi_result_is_the_plain_body_json_body_and_xml_body() {
    let (emu, mut c) = logged_in().await;
    c.command("event plain BACKGROUND_JOB").await;
    c.command("bgapi originate error/USER_BUSY &park()").await;
    let f = job(&mut c).await;
    assert_eq!(f.event().unwrap().body(), Some(&b"-ERR USER_BUSY\n"[..]));
    assert!(String::from_utf8_lossy(f.body()).contains("Content-Length: 15\n\n-ERR USER_BUSY\n"));
    assert_eq!(
        event_header(&f, "Job-Command-Arg").as_deref(),
        Some("error/USER_BUSY &park()")
    );
    c.command("event json BACKGROUND_JOB").await;
    c.command("bgapi version").await;
    let f = job(&mut c).await;
    let v: serde_json::Value = serde_json::from_slice(f.body()).unwrap();
    assert_eq!(
        v["_body"],
        "FreeSWITCH Version 1.10.12-release~64bit ( 64bit)\n"
    );
    assert_eq!(v["Content-Length"], "50");
    c.command("event xml BACKGROUND_JOB").await;
    c.command("bgapi version").await;
    let f = job(&mut c).await;
    let text = String::from_utf8_lossy(f.body()).into_owned();
    assert!(
        text.contains("</headers>\n  <Content-Length>50</Content-Length>\n  <body>"),
        "{text}"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn encoding_plain_values_are_url_encoded_json_values_are_not_xml_values_are() {
    let (emu, mut c) = logged_in().await;
    c.command("event plain API").await;
    c.command("api global_getvar domain").await;
    let f = c
        .until(Duration::from_secs(5), |f| {
            event_name(f).as_deref() == Some("API")
        })
        .await
        .unwrap();
    let text = String::from_utf8_lossy(f.body()).into_owned();
    assert!(text.contains("Event-Date-GMT: "), "{text}");
    assert!(
        !text
            .lines()
            .any(|l| l.starts_with("Event-Date-Local: ") && l[18..].contains(' '))
    );
    assert!(text.contains("%3A"), "{text}");
    c.command("noevents").await;
    c.command("event json API").await;
    c.command("api global_getvar domain").await;
    let f = c
        .until(Duration::from_secs(5), |f| {
            f.content_type() == ContentType::EventJson
        })
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(f.body()).unwrap();
    assert!(v["Event-Date-Local"].as_str().unwrap().contains(' '));
    c.command("noevents").await;
    c.command("event xml API").await;
    c.command("api global_getvar domain").await;
    let f = c
        .until(Duration::from_secs(5), |f| {
            f.content_type() == ContentType::EventXml
        })
        .await
        .unwrap();
    let text = String::from_utf8_lossy(f.body()).into_owned();
    assert!(text.starts_with("<event>\n  <headers>\n"), "{text}");
    assert!(
        text.contains("<Event-Date-Local>") && text.contains("%20"),
        "{text}"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn events_interleave_with_replies_of_a_blocking_api_originate() {
    let (emu, mut c) = logged_in().await;
    c.command("event plain CHANNEL_CREATE CHANNEL_PROGRESS")
        .await;
    // user/1000 rings (1 s, scaled) before answering: its events come before the reply.
    let r = c.command("api originate user/1000 &park()").await;
    assert!(String::from_utf8_lossy(r.body()).starts_with("+OK "));
    let before: Vec<String> = c.seen.iter().filter_map(event_name).collect();
    assert_eq!(before, ["CHANNEL_CREATE", "CHANNEL_PROGRESS"]);
    emu.shutdown().await;
}

#[tokio::test]
async fn events_all_also_delivers_an_api_event_per_api_command() {
    let (emu, mut c) = logged_in().await;
    c.command("event plain ALL").await;
    c.command("api version").await;
    let f = c
        .until(Duration::from_secs(5), |f| {
            event_name(f).as_deref() == Some("API")
        })
        .await
        .expect("API event");
    assert_eq!(event_header(&f, "API-Command").as_deref(), Some("version"));
    emu.shutdown().await;
}

#[tokio::test]
async fn custom_events_carry_event_name_custom_and_the_subclass_url_encoded() {
    let (emu, mut c) = logged_in().await;
    c.command("event plain CUSTOM conference::maintenance")
        .await;
    c.command("api originate loopback/7203/default &park()")
        .await;
    let f = c
        .until(Duration::from_secs(5), |f| event_name(f).is_some())
        .await
        .expect("a conference event");
    let text = String::from_utf8_lossy(f.body()).into_owned();
    assert!(
        text.starts_with("Event-Subclass: conference%3A%3Amaintenance\nEvent-Name: CUSTOM\n"),
        "{text}"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn sendmsg_event_uuid_comes_back_as_application_uuid_on_execute_and_complete() {
    let (emu, mut c) = logged_in().await;
    c.command("event plain CHANNEL_EXECUTE CHANNEL_EXECUTE_COMPLETE")
        .await;
    let r = c
        .command("api originate loopback/7200/default &park()")
        .await;
    let uuid = String::from_utf8_lossy(r.body())
        .trim()
        .trim_start_matches("+OK ")
        .to_owned();
    c.drain(Duration::from_millis(200)).await;
    c.seen.clear();
    c.command(&format!(
        "sendmsg {uuid}\ncall-command: execute\nexecute-app-name: playback\nexecute-app-arg: tone_stream://%(200,0,440)\nevent-lock: true\nEvent-UUID: app-1"
    ))
    .await;
    c.drain(Duration::from_millis(400)).await;
    let ours: Vec<(String, Option<String>)> = c
        .seen
        .iter()
        .filter(|f| event_header(f, "Unique-ID").as_deref() == Some(uuid.as_str()))
        .filter_map(|f| Some((event_name(f)?, event_header(f, "Application-UUID"))))
        .collect();
    assert_eq!(
        ours,
        [
            ("CHANNEL_EXECUTE".to_owned(), Some("app-1".to_owned())),
            (
                "CHANNEL_EXECUTE_COMPLETE".to_owned(),
                Some("app-1".to_owned())
            )
        ]
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn sendmsg_app_argument_may_travel_as_a_body_with_loops() {
    let (emu, mut c) = logged_in().await;
    c.command("event plain PLAYBACK_START").await;
    let r = c
        .command("api originate loopback/7200/default &park()")
        .await;
    let uuid = String::from_utf8_lossy(r.body())
        .trim()
        .trim_start_matches("+OK ")
        .to_owned();
    let arg = "tone_stream://%(100,0,523)";
    // Sent as the capture's client sent it: the body right after the blank line, nothing after.
    c.send(
        format!(
            "sendmsg {uuid}\ncall-command: execute\nexecute-app-name: playback\nloops: 2\ncontent-type: text/plain\ncontent-length: {}\n\n{arg}",
            arg.len()
        )
        .as_bytes(),
    )
    .await;
    let r = c.reply().await;
    assert_eq!(r.header("Reply-Text"), Some("+OK"));
    c.drain(Duration::from_millis(500)).await;
    let starts = c
        .seen
        .iter()
        .filter(|f| event_header(f, "Playback-File-Path").as_deref() == Some(arg))
        .count();
    assert_eq!(starts, 2);
    emu.shutdown().await;
}

#[tokio::test]
async fn filters_pass_only_events_whose_header_has_the_value() {
    let (emu, mut c) = logged_in().await;
    c.command("filter Unique-ID u-1").await;
    c.command("event plain CHANNEL_CREATE").await;
    c.command("api originate {origination_uuid=u-1}loopback/7200/default &park()")
        .await;
    c.command("api originate {origination_uuid=u-2}loopback/7200/default &park()")
        .await;
    c.drain(Duration::from_millis(300)).await;
    let ids: Vec<String> = c
        .seen
        .iter()
        .filter_map(|f| event_header(f, "Unique-ID"))
        .collect();
    assert_eq!(ids, ["u-1"]);
    emu.shutdown().await;
}

#[tokio::test]
async fn show_channels_as_json_has_row_count_rows_and_uuid_getvar_recovers_variables() {
    let (emu, mut c) = logged_in().await;
    assert_eq!(
        c.command("api show channels as json").await.body(),
        b"{\"row_count\": 0}\n"
    );
    c.command("api originate {origination_uuid=u-9,switchboard_contact_id=c-42}user/1000 &park()")
        .await;
    let r = c.command("api show channels as json").await;
    let v: serde_json::Value = serde_json::from_slice(r.body()).unwrap();
    assert_eq!(v["row_count"], 1);
    assert_eq!(v["rows"][0]["uuid"], "u-9");
    assert_eq!(v["rows"][0]["state"], "CS_EXECUTE");
    assert_eq!(v["rows"][0]["name"], "sofia/internal/1000@127.0.0.1");
    assert!(String::from_utf8_lossy(r.body()).starts_with("{\"row_count\":1,\"rows\":[{\"uuid\":"));
    assert_eq!(
        c.command("api uuid_getvar u-9 switchboard_contact_id")
            .await
            .body(),
        b"c-42"
    );
    let dump = c.command("api uuid_dump u-9").await;
    assert!(
        String::from_utf8_lossy(dump.body()).contains("variable_switchboard_contact_id: c-42\n")
    );
    emu.shutdown().await;
}
