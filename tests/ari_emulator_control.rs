//! The emulator run on its own (as `switchboard emulate asterisk` runs it): named like the
//! shipped configs, with scripted callers and faults reachable over HTTP.

#[path = "support/ari.rs"]
mod support;

use std::time::Duration;

use switchboard::emulator::asterisk::{Emulator, EmulatorOptions, InboundCall};
use switchboard::media::asterisk::{AsteriskConfig, AsteriskHandler, Credentials};
use switchboard::media::{HandlerId, LegDirection, MediaEvent};

async fn standalone() -> Emulator {
    let options = EmulatorOptions {
        time_scale: 0.02,
        rtp: false,
        ..EmulatorOptions::default()
    };
    support::emulator_with(options).await
}

#[tokio::test]
async fn a_scripted_caller_dials_in_presses_keys_and_hangs_up() {
    let emu = standalone().await;
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let config = AsteriskConfig::new(
        HandlerId(3),
        &emu.base_url(),
        "switchboard",
        Credentials::Basic {
            user: "switchboard".into(),
            password: "switchboard".into(),
        },
    );
    let h = AsteriskHandler::start(config, tx).unwrap();
    support::wait_for(&mut rx, |e| matches!(e, MediaEvent::HandlerUp)).await;
    let reply = reqwest::Client::new()
        .post(format!("http://{}/emulator/calls?endpoint=customer&extension=2000&caller_number=5551234&dtmf=42&dtmf_after=0&hangup_after=5", emu.local_addr()))
        .basic_auth("switchboard", Some("switchboard"))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status().as_u16(), 200);
    let body: serde_json::Value = reply.json().await.unwrap();
    let id = body["channel"].as_str().unwrap().to_owned();
    let seen = support::wait_for(&mut rx, |e| matches!(e, MediaEvent::Destroyed { .. })).await;
    assert!(seen.iter().any(|e| matches!(e, MediaEvent::LegCreated { leg, direction: LegDirection::Inbound, caller: Some(c), destination: Some(d), .. } if leg.as_str() == id && c == "5551234" && d == "2000")), "{seen:#?}");
    let digits: String = seen
        .iter()
        .filter_map(|e| match e {
            MediaEvent::Dtmf { digit, .. } => Some(*digit),
            _ => None,
        })
        .collect();
    assert_eq!(digits, "42");
    h.shutdown().await;
    emu.shutdown().await;
}

#[tokio::test]
async fn faults_are_switched_over_http_with_the_ari_credentials() {
    let emu = standalone().await;
    let http = reqwest::Client::new();
    let url = |p: &str| format!("http://{}{p}", emu.local_addr());
    let status = |r: reqwest::Response| r.status().as_u16();
    assert_eq!(
        status(
            http.post(url("/emulator/faults/refuse?status=503"))
                .send()
                .await
                .unwrap()
        ),
        401
    );
    assert_eq!(
        status(
            http.post(url("/emulator/faults/refuse?status=503"))
                .basic_auth("switchboard", Some("switchboard"))
                .send()
                .await
                .unwrap()
        ),
        204
    );
    assert_eq!(
        status(
            http.get(url("/ari/asterisk/ping"))
                .basic_auth("switchboard", Some("switchboard"))
                .send()
                .await
                .unwrap()
        ),
        503
    );
    assert_eq!(
        status(
            http.post(url("/emulator/faults/refuse"))
                .basic_auth("switchboard", Some("switchboard"))
                .send()
                .await
                .unwrap()
        ),
        204
    );
    assert_eq!(
        status(
            http.get(url("/ari/asterisk/ping"))
                .basic_auth("switchboard", Some("switchboard"))
                .send()
                .await
                .unwrap()
        ),
        200
    );
    let id = emu
        .place_call(&InboundCall {
            endpoint: "customer".into(),
            extension: "1000".into(),
            caller_name: "C".into(),
            caller_number: "1".into(),
            dtmf: vec![],
            hangup_after: None,
        })
        .unwrap();
    // Without a connected application, Stasis() fails and the call ends.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!emu.channels().contains(&id));
    assert_eq!(
        status(
            http.post(url("/emulator/channels/nope/hangup"))
                .basic_auth("switchboard", Some("switchboard"))
                .send()
                .await
                .unwrap()
        ),
        404
    );
    emu.shutdown().await;
}
