//! Scripted inbound callers: a SIP call to a number arrives, presses digits after a delay and
//! hangs up after a delay; it is parked and announced by events on inbound connections, or
//! handed to Switchboard's outbound event socket server. Scripted softphones: a directory
//! user registers, is then reachable as `user/<n>`, and unregisters.

mod esl_emulator_support;

use std::time::Duration;

use esl_emulator_support::*;
use switchboard::emulator::freeswitch::{
    EmulatorError, EmulatorOptions, InboundCall, Registration,
};
use switchboard::media::LegId;
use switchboard::media::freeswitch::codec::ContentType;
use tokio::net::TcpListener;

fn call() -> InboundCall {
    let mut call = InboundCall::new("15551230000", "5000");
    call.caller_name = "Ada Caller".into();
    call.vars.push(("sip_h_X-Campaign".into(), "spring".into()));
    call.dtmf.push((Duration::from_millis(100), "12#".into()));
    call.hangup_after = Some(Duration::from_millis(600));
    call
}

#[tokio::test]
async fn scripted_caller_is_parked_announced_presses_digits_and_hangs_up() {
    let emu = emulator(EmulatorOptions::default()).await;
    let mut c = Client::connect(emu.local_addr()).await;
    c.login("ClueCon").await;
    c.command("event json ALL").await;
    let uuid = emu.place_call(&call()).expect("placed");
    assert_eq!(
        emu.channel_var(&uuid, "switchboard_inbound").as_deref(),
        Some("true")
    );
    c.until(Duration::from_secs(5), |f| {
        event_name(f).as_deref() == Some("CHANNEL_DESTROY")
    })
    .await
    .expect("the call ends");
    let ours: Vec<String> = c
        .seen
        .iter()
        .filter(|f| event_header(f, "Unique-ID").as_deref() == Some(uuid.as_str()))
        .filter_map(event_name)
        .filter(|n| MODELLED.contains(&n.as_str()))
        .collect();
    assert_eq!(
        ours,
        [
            "CHANNEL_CREATE",
            "CHANNEL_EXECUTE",
            "CHANNEL_EXECUTE_COMPLETE",
            "CHANNEL_EXECUTE",
            "CHANNEL_ANSWER",
            "CHANNEL_EXECUTE_COMPLETE",
            "CHANNEL_EXECUTE",
            "CHANNEL_PARK",
            "DTMF",
            "DTMF",
            "DTMF",
            "CHANNEL_HANGUP",
            "CHANNEL_UNPARK",
            "CHANNEL_EXECUTE_COMPLETE",
            "CHANNEL_HANGUP_COMPLETE",
            "CHANNEL_DESTROY"
        ]
    );
    let create = c
        .seen
        .iter()
        .find(|f| event_name(f).as_deref() == Some("CHANNEL_CREATE"))
        .unwrap();
    assert_eq!(create.content_type(), ContentType::EventJson);
    assert_eq!(
        event_header(create, "Channel-Name").as_deref(),
        Some("sofia/internal/15551230000@127.0.0.1")
    );
    assert_eq!(
        event_header(create, "Caller-Destination-Number").as_deref(),
        Some("5000")
    );
    assert_eq!(
        event_header(create, "variable_sip_h_X-Campaign").as_deref(),
        Some("spring")
    );
    let digits: String = c
        .seen
        .iter()
        .filter_map(|f| event_header(f, "DTMF-Digit"))
        .collect();
    assert_eq!(digits, "12#");
    emu.shutdown().await;
}

#[tokio::test]
async fn scripted_caller_is_handed_to_the_outbound_socket_server() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = listener.local_addr().unwrap().to_string();
    let emu = emulator(EmulatorOptions::with_outbound("ClueCon", &target)).await;
    let mut c = call();
    c.hangup_after = None;
    let uuid = emu.place_call(&c).expect("placed");
    let (stream, _) = tokio::time::timeout(Duration::from_secs(5), listener.accept())
        .await
        .expect("connects out")
        .unwrap();
    let mut s = Client::from_stream(stream);
    let data = s.command("connect").await;
    assert_eq!(data.header("Unique-ID"), Some(uuid.as_str()));
    assert_eq!(data.header("Caller-Caller-ID-Number"), Some("15551230000"));
    assert_eq!(data.header("Caller-Caller-ID-Name"), Some("Ada%20Caller"));
    assert_eq!(data.header("Caller-Destination-Number"), Some("5000"));
    let r = s.command("myevents").await;
    assert_eq!(r.header("Reply-Text"), Some("+OK Events Enabled"));
    s.command("sendmsg\ncall-command: execute\nexecute-app-name: answer\nevent-lock: true")
        .await;
    s.until(Duration::from_secs(5), |f| {
        event_name(f).as_deref() == Some("CHANNEL_ANSWER")
    })
    .await
    .expect("answered");
    // The digits come 100 ms after the answer.
    let dtmf = s
        .until(Duration::from_secs(5), |f| {
            event_name(f).as_deref() == Some("DTMF")
        })
        .await
        .expect("dtmf");
    assert_eq!(event_header(&dtmf, "DTMF-Digit").as_deref(), Some("1"));
    assert!(emu.caller_dtmf(&uuid, "9"));
    s.command("sendmsg\ncall-command: hangup\nhangup-cause: NORMAL_CLEARING")
        .await;
    let notice = s
        .until(Duration::from_secs(5), |f| {
            f.content_type() == ContentType::DisconnectNotice
        })
        .await
        .expect("notice");
    assert_eq!(notice.header("Content-Disposition"), Some("disconnect"));
    assert_eq!(
        notice.header("Controlled-Session-UUID"),
        Some(uuid.as_str())
    );
    assert!(s.drain(Duration::from_secs(5)).await);
    assert!(emu.channels().is_empty());
    emu.shutdown().await;
}

#[tokio::test]
async fn outbound_socket_closed_without_resume_hangs_the_call_up() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = listener.local_addr().unwrap().to_string();
    let emu = emulator(EmulatorOptions::with_outbound("ClueCon", &target)).await;
    let mut c = call();
    c.hangup_after = None;
    emu.place_call(&c).expect("placed");
    let (stream, _) = listener.accept().await.unwrap();
    let mut s = Client::from_stream(stream);
    s.command("connect").await;
    drop(s);
    for _ in 0..50 {
        if emu.channels().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(emu.channels().is_empty());
    emu.shutdown().await;
}

#[tokio::test]
async fn scripted_softphone_registers_is_reachable_and_unregisters() {
    let mut options = EmulatorOptions::default();
    options.world.softphones_registered = false;
    options.time_scale = 0.05;
    let emu = emulator(options).await;
    let mut c = Client::connect(emu.local_addr()).await;
    c.login("ClueCon").await;
    c.command("event plain CUSTOM sofia::register sofia::unregister")
        .await;
    let r = c.command("api originate user/1005 &park()").await;
    assert_eq!(r.body(), b"-ERR USER_NOT_REGISTERED\n");
    let phone = Registration::new("1005", "127.0.0.1:5096".parse().unwrap());
    emu.register(&phone).expect("a directory user registers");
    let registered = c
        .until(Duration::from_secs(5), |f| {
            event_name(f).as_deref() == Some("CUSTOM sofia::register")
        })
        .await
        .expect("sofia::register");
    assert_eq!(
        event_header(&registered, "from-user").as_deref(),
        Some("1005")
    );
    assert_eq!(
        c.command("api sofia_contact 1005@127.0.0.1").await.body(),
        b"sofia/internal/sip:1005@127.0.0.1:5096"
    );
    let r = c
        .command("api originate {origination_uuid=s-1}user/1005 &park()")
        .await;
    assert_eq!(r.body(), b"+OK s-1\n");
    assert_eq!(
        emu.channel_var(&LegId::new("s-1"), "channel_name")
            .as_deref(),
        Some("sofia/internal/1005@127.0.0.1:5096")
    );
    emu.register(&Registration::unregistering("1005", phone.contact))
        .expect("unregisters");
    let gone = c
        .until(Duration::from_secs(5), |f| {
            event_name(f).as_deref() == Some("CUSTOM sofia::unregister")
        })
        .await
        .expect("sofia::unregister");
    assert_eq!(event_header(&gone, "expires").as_deref(), Some("0"));
    assert_eq!(
        c.command("api sofia_contact 1005@127.0.0.1").await.body(),
        b"error/user_not_registered"
    );
    // Only directory users register, with headers that fit in an event.
    let stranger = Registration::new("4711", phone.contact);
    assert!(matches!(
        emu.register(&stranger),
        Err(EmulatorError::Registration(_))
    ));
    let mut forged = phone.clone();
    forged.user_agent = "x\r\nEvent-Name: HEARTBEAT".into();
    assert!(emu.register(&forged).is_err());
    emu.shutdown().await;
}
