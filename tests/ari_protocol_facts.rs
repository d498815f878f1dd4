//! Every protocol fact of `fixtures/ari/README.md`, one test each, checked over the wire
//! against the emulator (and, where the fact is about reading Asterisk, against the client).
//! The test names follow the README's wording.

#[path = "support/ari.rs"]
mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use switchboard::emulator::asterisk::{Emulator, InboundCall};
use switchboard::media::asterisk::{AriClient, AriConfig, AriError, Credentials, OriginateParams};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// A raw ARI peer: HTTP requests and one events socket.
struct Ari {
    emu: Emulator,
    http: reqwest::Client,
    events: Arc<Mutex<Vec<Value>>>,
    send: mpsc::Sender<String>,
}

impl Ari {
    async fn start(subscribe_all: bool) -> Ari {
        let emu = support::emulator(0.02).await;
        let (events, send) = Self::socket(&emu, subscribe_all).await;
        Ari {
            emu,
            http: reqwest::Client::new(),
            events,
            send,
        }
    }

    async fn socket(
        emu: &Emulator,
        subscribe_all: bool,
    ) -> (Arc<Mutex<Vec<Value>>>, mpsc::Sender<String>) {
        let url = format!(
            "ws://{}/ari/events?app=cc&subscribeAll={subscribe_all}&api_key=cc:{}",
            emu.local_addr(),
            support::PASSWORD
        );
        let (ws, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .expect("ws");
        let (mut write, mut read) = ws.split();
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        tokio::spawn(async move {
            while let Some(Ok(m)) = read.next().await {
                if let Message::Text(t) = m
                    && let Ok(v) = serde_json::from_str::<Value>(t.as_str())
                {
                    sink.lock().unwrap().push(v);
                }
            }
        });
        let (send, mut rx) = mpsc::channel::<String>(16);
        tokio::spawn(async move {
            while let Some(t) = rx.recv().await {
                if write.send(Message::text(t)).await.is_err() {
                    return;
                }
            }
        });
        (events, send)
    }

    async fn call(&self, method: &str, path: &str) -> (u16, Value, reqwest::header::HeaderMap) {
        self.call_body(method, path, None).await
    }

    async fn call_body(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, &str)>,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let url = format!("http://{}/ari/{path}", self.emu.local_addr());
        let mut req = self
            .http
            .request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url)
            .basic_auth("cc", Some(support::PASSWORD));
        if let Some((ct, b)) = body {
            req = req.header("Content-Type", ct).body(b.to_owned());
        }
        let resp = req.send().await.expect("reply");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.unwrap_or_default();
        let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, v, headers)
    }

    async fn post(&self, path: &str) -> (u16, Value) {
        let (s, v, _) = self.call("POST", path).await;
        (s, v)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let (s, v, _) = self.call("GET", path).await;
        (s, v)
    }

    async fn delete(&self, path: &str) -> (u16, Value) {
        let (s, v, _) = self.call("DELETE", path).await;
        (s, v)
    }

    /// Waits until an event matches, returns every event so far.
    async fn until(&self, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
        for _ in 0..250 {
            let ev = self.events.lock().unwrap().clone();
            if ev.iter().any(&pred) {
                return ev;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("no such event: {:#?}", self.types());
    }

    fn types(&self) -> Vec<String> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .map(|e| {
                format!(
                    "{} {}",
                    e["type"].as_str().unwrap_or(""),
                    e["channel"]["id"]
                        .as_str()
                        .or(e["peer"]["id"].as_str())
                        .unwrap_or("")
                )
            })
            .collect()
    }

    fn clear(&self) {
        self.events.lock().unwrap().clear();
    }

    async fn settle(&self) {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    /// An answered Local/300 leg in the app, with the id `id`.
    async fn leg(&self, id: &str) {
        let (s, _) = self
            .post(&format!("channels/{id}?endpoint=Local/300@cc-test&app=cc"))
            .await;
        assert_eq!(s, 200);
        self.until(|e| e["type"] == "StasisStart" && e["channel"]["id"] == id)
            .await;
    }

    /// An inbound SIP call in Stasis, unanswered.
    async fn inbound(&self) -> String {
        let id = self
            .emu
            .place_call(&InboundCall {
                endpoint: "customer".into(),
                extension: "1000".into(),
                caller_name: "Customer".into(),
                caller_number: "customer".into(),
                dtmf: vec![],
                hangup_after: None,
            })
            .unwrap();
        self.until(|e| e["type"] == "StasisStart" && e["channel"]["id"] == id.as_str())
            .await;
        id
    }
}

fn of_type<'a>(events: &'a [Value], t: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == t).collect()
}

fn seq(events: &[Value], channel: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["channel"]["id"] == channel || e["peer"]["id"] == channel)
        .map(|e| e["type"].as_str().unwrap_or("").to_owned())
        .collect()
}

// ---------------------------------------------------------------- ids and formats

#[tokio::test]
async fn generated_channel_ids_are_unix_seconds_dot_counter_and_any_chosen_id_is_accepted() {
    let a = Ari::start(false).await;
    let (_, ch) = a.post("channels?endpoint=Local/300@cc-test&app=cc").await;
    let id = ch["id"].as_str().unwrap();
    let (secs, n) = id.split_once('.').unwrap();
    assert!(
        secs.len() >= 10 && secs.chars().all(|c| c.is_ascii_digit()),
        "{id}"
    );
    assert!(n.chars().all(|c| c.is_ascii_digit()), "{id}");
    assert_eq!(
        a.post("channels/my-own-id?endpoint=Local/300@cc-test&app=cc")
            .await
            .1["id"],
        "my-own-id"
    );
    a.until(|e| e["type"] == "StasisStart" && e["channel"]["id"] == "my-own-id")
        .await;
    assert_eq!(
        a.post("channels/my-own-id/snoop/my-snoop?app=cc&spy=in")
            .await
            .1["id"],
        "my-snoop"
    );
    assert_eq!(
        a.post("channels/my-own-id/play/my-pb?media=tone:ring")
            .await
            .1["id"],
        "my-pb"
    );
    assert_eq!(
        a.post("bridges?bridgeId=my-bridge").await.1["id"],
        "my-bridge"
    );
    let pb = a.post("channels/my-own-id/play?media=tone:ring").await.1["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        pb.len() == 36 && pb.matches('-').count() == 4,
        "generated playback ids are UUIDs: {pb}"
    );
}

#[tokio::test]
async fn local_originates_return_the_first_half_and_name_the_second() {
    let a = Ari::start(true).await;
    let (_, ch) = a
        .post("channels?endpoint=Local/300@cc-test&app=cc&channelId=X1")
        .await;
    assert_eq!(ch["id"], "X1");
    assert!(ch["name"].as_str().unwrap().ends_with(";1"));
    let ev = a
        .until(|e| {
            e["type"] == "ChannelCreated"
                && e["channel"]["name"].as_str().unwrap_or("").ends_with(";2")
        })
        .await;
    let two = of_type(&ev, "ChannelCreated")[1]["channel"]["id"].clone();
    assert_eq!(two, "X1;2", "only channelId given: the ;2 half is X;2");
    a.clear();
    let (_, ch) = a.post("channels?endpoint=Local/300@cc-test&app=cc").await;
    let one = ch["id"].as_str().unwrap().to_owned();
    let ev = a
        .until(|e| {
            e["type"] == "ChannelCreated"
                && e["channel"]["name"].as_str().unwrap_or("").ends_with(";2")
        })
        .await;
    let two = of_type(&ev, "ChannelCreated")[1]["channel"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let n1: u64 = one.split_once('.').unwrap().1.parse().unwrap();
    let n2: u64 = two.split_once('.').unwrap().1.parse().unwrap();
    assert_eq!(
        n2,
        n1 + 1,
        "no ids given: the ;2 half gets the next counter ({one}, {two})"
    );
}

#[tokio::test]
async fn timestamps_have_milliseconds_and_an_offset_without_a_colon() {
    let a = Ari::start(false).await;
    a.leg("t-1").await;
    let ev = a.events.lock().unwrap().clone();
    for e in &ev {
        let ts = e["timestamp"].as_str().unwrap();
        assert_eq!(ts.len(), 28, "{ts}");
        assert!(ts.ends_with("+0000"), "{ts}");
        assert_eq!(&ts[19..20], ".");
        switchboard::media::asterisk::AriTime::parse(ts).unwrap();
    }
}

#[tokio::test]
async fn every_event_carries_asterisk_id_and_application() {
    let a = Ari::start(true).await;
    a.leg("ids-1").await;
    for e in a.events.lock().unwrap().iter() {
        assert_eq!(e["asterisk_id"], "02:fc:00:00:00:01", "{e}");
        assert_eq!(e["application"], "cc", "{e}");
    }
}

#[tokio::test]
async fn protocol_id_is_the_sip_call_id_and_empty_for_local_rtp_and_snoop() {
    let a = Ari::start(false).await;
    let cust = a.inbound().await;
    let (_, ch) = a.get(&format!("channels/{cust}")).await;
    let call_id = ch["protocol_id"].as_str().unwrap().to_owned();
    assert!(
        call_id.contains('@'),
        "an inbound SIP call's Call-ID: {call_id}"
    );
    assert_eq!(
        a.get(&format!(
            "channels/{cust}/variable?variable=CHANNEL(pjsip,call-id)"
        ))
        .await
        .1["value"],
        call_id.as_str()
    );
    let (_, created) = a
        .post("channels/create?endpoint=PJSIP/agent&app=cc&channelId=ag-1")
        .await;
    let uuid = created["protocol_id"].as_str().unwrap();
    assert!(
        uuid.len() == 36 && uuid.matches('-').count() == 4,
        "/channels/create: a UUID Call-ID: {uuid}"
    );
    a.leg("loc-1").await;
    assert_eq!(a.get("channels/loc-1").await.1["protocol_id"], "");
    let (_, em) = a
        .post("channels/externalMedia?app=cc&external_host=127.0.0.1:9&format=ulaw")
        .await;
    assert_eq!(em["protocol_id"], "");
    let (_, sn) = a.post("channels/loc-1/snoop?app=cc&spy=in").await;
    assert_eq!(sn["protocol_id"], "");
}

#[tokio::test]
async fn replies_carry_server_and_cache_control_and_the_client_reads_content_type_in_any_case() {
    let a = Ari::start(false).await;
    let (_, _, headers) = a.call("GET", "asterisk/ping").await;
    assert_eq!(headers["server"], "Asterisk/22.10.1");
    assert_eq!(headers["cache-control"], "no-cache, no-store");
    assert_eq!(headers["content-type"], "application/json");
    // The typed client reads the `Content-type` reply like any other.
    let client = client(&a.emu);
    assert_eq!(client.ping().await.unwrap().ping, "pong");
    let (s, _, headers) = a.call("POST", "bridges?bridgeId=b0").await;
    assert_eq!(s, 200);
    let (s, body, headers204) = a.call("DELETE", "bridges/b0").await;
    assert_eq!(s, 204);
    assert!(headers204.get("content-type").is_none() && body.is_null());
    assert!(headers.get("content-type").is_some());
}

fn client(emu: &Emulator) -> AriClient {
    AriClient::new(&AriConfig {
        base_url: emu.base_url(),
        credentials: Credentials::Basic {
            user: "cc".into(),
            password: support::PASSWORD.into(),
        },
        request_timeout: Duration::from_secs(2),
    })
    .unwrap()
}

// ---------------------------------------------------------------- success codes

#[tokio::test]
async fn channel_creations_return_200_with_a_channel_down_and_snoops_up() {
    let a = Ari::start(false).await;
    let (s, ch) = a
        .post("channels/o-1?endpoint=Local/300@cc-test&app=cc")
        .await;
    assert_eq!((s, ch["state"].as_str()), (200, Some("Down")));
    let (s, ch) = a.post("channels/create?endpoint=PJSIP/agent&app=cc").await;
    assert_eq!((s, ch["state"].as_str()), (200, Some("Down")));
    let (s, ch) = a
        .post("channels/externalMedia?app=cc&external_host=127.0.0.1:9&format=ulaw")
        .await;
    assert_eq!((s, ch["state"].as_str()), (200, Some("Down")));
    a.until(|e| e["type"] == "StasisStart" && e["channel"]["id"] == "o-1")
        .await;
    let (s, ch) = a.post("channels/o-1/snoop?app=cc&spy=in").await;
    assert_eq!((s, ch["state"].as_str()), (200, Some("Up")));
}

#[tokio::test]
async fn play_and_record_return_201_queued_with_a_location() {
    let a = Ari::start(false).await;
    a.leg("p-1").await;
    let (s, pb, h) = a
        .call("POST", "channels/p-1/play/pb-9?media=sound:hello-world")
        .await;
    assert_eq!((s, pb["state"].as_str()), (201, Some("queued")));
    assert_eq!(h["location"], "/ari/playbacks/pb-9");
    let (s, rec, h) = a
        .call("POST", "channels/p-1/record?name=r-9&format=wav")
        .await;
    assert_eq!((s, rec["state"].as_str()), (201, Some("queued")));
    assert_eq!(h["location"], "/ari/recordings/live/r-9");
}

#[tokio::test]
async fn control_operations_return_204() {
    let a = Ari::start(false).await;
    let cust = a.inbound().await;
    assert_eq!(a.post(&format!("channels/{cust}/ring")).await.0, 204);
    assert_eq!(a.post(&format!("channels/{cust}/answer")).await.0, 204);
    for op in ["moh", "hold", "mute", "silence"] {
        assert_eq!(
            a.post(&format!("channels/{cust}/{op}")).await.0,
            204,
            "{op}"
        );
        assert_eq!(
            a.delete(&format!("channels/{cust}/{op}")).await.0,
            204,
            "{op}"
        );
    }
    assert_eq!(a.post(&format!("channels/{cust}/dtmf?dtmf=1")).await.0, 204);
    assert_eq!(
        a.post(&format!("channels/{cust}/variable?variable=X&value=1"))
            .await
            .0,
        204
    );
    assert_eq!(a.post("bridges?bridgeId=cb").await.0, 200);
    assert_eq!(
        a.post(&format!("bridges/cb/addChannel?channel={cust}"))
            .await
            .0,
        204
    );
    assert_eq!(
        a.post(&format!("bridges/cb/removeChannel?channel={cust}"))
            .await
            .0,
        204
    );
    assert_eq!(a.delete("bridges/cb").await.0, 204);
    a.post("channels/create?endpoint=PJSIP/agent&app=cc&channelId=d-1")
        .await;
    assert_eq!(a.post("channels/d-1/dial").await.0, 204);
    assert_eq!(
        a.post(&format!(
            "channels/{cust}/continue?context=cc-after&extension=s&priority=1"
        ))
        .await
        .0,
        204
    );
    assert_eq!(a.delete("channels/d-1").await.0, 204);
}

// ---------------------------------------------------------------- ordering

#[tokio::test]
async fn events_name_the_channel_id_switchboard_chose_whenever_the_reply_comes() {
    let a = Ari::start(true).await;
    let (_, ch) = a
        .post("channels/mine-1?endpoint=Local/300@cc-test&app=cc")
        .await;
    assert_eq!(ch["id"], "mine-1");
    let ev = a.until(|e| e["type"] == "StasisStart").await;
    assert_eq!(of_type(&ev, "ChannelCreated")[0]["channel"]["id"], "mine-1");
    assert_eq!(of_type(&ev, "StasisStart")[0]["channel"]["id"], "mine-1");
}

#[tokio::test]
async fn an_app_originate_gets_stasis_start_only_when_answered_and_never_if_unanswered() {
    let a = Ari::start(true).await;
    a.post("channels/ans-1?endpoint=Local/300@cc-test&app=cc")
        .await;
    let ev = a.until(|e| e["type"] == "StasisStart").await;
    let start = of_type(&ev, "StasisStart")[0];
    assert_eq!(start["channel"]["state"], "Up");
    let s = seq(&ev, "ans-1");
    let answer = s.iter().rposition(|t| t == "Dial").unwrap();
    assert!(
        answer < s.iter().position(|t| t == "StasisStart").unwrap(),
        "{s:?}"
    );
    a.clear();
    a.post("channels/noans-1?endpoint=Local/400@cc-test&app=cc&timeout=1")
        .await;
    let ev = a
        .until(|e| e["type"] == "ChannelDestroyed" && e["channel"]["id"] == "noans-1")
        .await;
    assert!(of_type(&ev, "StasisStart").is_empty());
    let d = of_type(&ev, "ChannelDestroyed")[0];
    assert_eq!(
        (d["cause"].as_i64(), d["cause_txt"].as_str()),
        (Some(19), Some("User alerting, no answer"))
    );
}

#[tokio::test]
async fn a_dialplan_stasis_entry_starts_in_ring_with_its_args() {
    let a = Ari::start(false).await;
    let cust = a.inbound().await;
    let ev = a.events.lock().unwrap().clone();
    let start = of_type(&ev, "StasisStart")[0];
    assert_eq!(start["channel"]["id"], cust.as_str());
    assert_eq!(start["channel"]["state"], "Ring");
    assert_eq!(start["args"], json!(["sip-inbound", "1000"]));
    // No args: an empty list.
    a.leg("noargs").await;
    let ev = a.events.lock().unwrap().clone();
    assert_eq!(of_type(&ev, "StasisStart")[1]["args"], json!([]));
}

#[tokio::test]
async fn a_local_originate_emits_created_created_dialplan_dial_then_ringing_and_answer() {
    let a = Ari::start(true).await;
    a.post("channels/lo-1?endpoint=Local/100@cc-test&extension=s&context=cc-park")
        .await;
    let ev = a.until(|e| e["type"] == "StasisStart").await;
    let head: Vec<String> = ev
        .iter()
        .filter(|e| e["type"] != "ChannelCallerId" && e["type"] != "ChannelConnectedLine")
        .take(4)
        .map(|e| {
            format!(
                "{} {}",
                e["type"].as_str().unwrap(),
                e["channel"]["state"]
                    .as_str()
                    .or(e["peer"]["state"].as_str())
                    .unwrap()
            )
        })
        .collect();
    assert_eq!(
        head,
        [
            "ChannelCreated Down",
            "ChannelCreated Ring",
            "ChannelDialplan Down",
            "Dial Down"
        ]
    );
    assert_eq!(of_type(&ev, "Dial")[0]["dialstatus"], "");
    a.post("channels/lo-1;2/ring").await;
    a.post("channels/lo-1;2/answer").await;
    let ev = a
        .until(|e| e["type"] == "Dial" && e["dialstatus"] == "ANSWER")
        .await;
    let dials: Vec<&str> = of_type(&ev, "Dial")
        .iter()
        .map(|d| d["dialstatus"].as_str().unwrap())
        .collect();
    assert_eq!(dials, ["", "RINGING", "ANSWER"]);
    let states: Vec<&str> = ev
        .iter()
        .filter(|e| e["type"] == "ChannelStateChange" && e["channel"]["id"] == "lo-1")
        .map(|e| e["channel"]["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["Ringing", "Up"]);
}

#[tokio::test]
async fn dial_events_of_channels_dial_carry_only_peer_and_busy_is_a_hangup_17_486() {
    let a = Ari::start(false).await;
    a.post("channels/create?endpoint=PJSIP/agent&app=cc&channelId=dl-1")
        .await;
    a.until(|e| e["type"] == "StasisStart").await;
    a.post("channels/dl-1/dial?caller=nobody&timeout=10").await;
    let ev = a
        .until(|e| e["type"] == "Dial" && e["dialstatus"] == "ANSWER")
        .await;
    for d in of_type(&ev, "Dial") {
        assert!(d.get("caller").is_none(), "{d}");
        assert_eq!(d["peer"]["id"], "dl-1");
        if d["dialstatus"] != "" {
            assert_eq!(d["dialstring"], "");
        }
    }
    // A busy agent.
    let mut options = switchboard::emulator::asterisk::EmulatorOptions::capture(support::PASSWORD);
    options.time_scale = 0.02;
    options.world.endpoints[1].behaviour = switchboard::emulator::asterisk::DialBehaviour::Busy;
    let emu = support::emulator_with(options).await;
    let (events, _send) = Ari::socket(&emu, false).await;
    let b = Ari {
        emu,
        http: reqwest::Client::new(),
        events,
        send: _send,
    };
    b.post("channels/create?endpoint=PJSIP/agent&app=cc&channelId=busy-1")
        .await;
    b.post("channels/busy-1/dial?timeout=10").await;
    let ev = b.until(|e| e["type"] == "ChannelDestroyed").await;
    let s = seq(&ev, "busy-1");
    let from_start = &s[s.iter().position(|t| t == "StasisStart").unwrap()..];
    assert_eq!(
        from_start,
        [
            "StasisStart",
            "Dial",
            "ChannelHangupRequest",
            "StasisEnd",
            "ChannelVarset",
            "ChannelDestroyed"
        ]
    );
    assert!(
        of_type(&ev, "Dial")
            .iter()
            .all(|d| d["dialstatus"] != "BUSY"),
        "no Dial BUSY"
    );
    let req = of_type(&ev, "ChannelHangupRequest")[0];
    assert_eq!(
        (req["cause"].as_i64(), req["tech_cause"].as_i64()),
        (Some(17), Some(486))
    );
    let d = of_type(&ev, "ChannelDestroyed")[0];
    assert_eq!(
        (
            d["cause"].as_i64(),
            d["cause_txt"].as_str(),
            d["tech_cause"].as_i64()
        ),
        (Some(17), Some("User busy"), Some(486))
    );
}

#[tokio::test]
async fn delete_channel_emits_soft_hangup_32_stasis_end_varset_then_destroyed_16() {
    let a = Ari::start(true).await;
    a.leg("del-1").await;
    a.clear();
    assert_eq!(a.delete("channels/del-1").await.0, 204);
    let ev = a
        .until(|e| e["type"] == "ChannelDestroyed" && e["channel"]["id"] == "del-1")
        .await;
    assert_eq!(
        seq(&ev, "del-1"),
        [
            "ChannelHangupRequest",
            "StasisEnd",
            "ChannelVarset",
            "ChannelDestroyed"
        ]
    );
    let req = of_type(&ev, "ChannelHangupRequest")[0];
    assert_eq!(
        (req["cause"].as_i64(), req["soft"].as_bool()),
        (Some(32), Some(true)),
        "a flag bitmask, not Q.850"
    );
    let var = of_type(&ev, "ChannelVarset")[0];
    assert_eq!(
        (var["variable"].as_str(), var["value"].as_str()),
        (Some("STASISSTATUS"), Some("SUCCESS"))
    );
    let d = ev
        .iter()
        .find(|e| e["type"] == "ChannelDestroyed" && e["channel"]["id"] == "del-1")
        .unwrap();
    assert_eq!(
        (d["cause"].as_i64(), d["cause_txt"].as_str()),
        (Some(16), Some("Normal Clearing"))
    );
}

#[tokio::test]
async fn a_caller_hanging_up_first_leaves_its_bridge_behind() {
    let a = Ari::start(true).await;
    let cust = a.inbound().await;
    a.post(&format!("channels/{cust}/answer")).await;
    a.leg("agent-h").await;
    a.post("bridges?bridgeId=hb").await;
    a.post(&format!("bridges/hb/addChannel?channel={cust},agent-h"))
        .await;
    a.clear();
    a.emu.kill_channel(&cust, 16);
    let ev = a.until(|e| e["type"] == "ChannelDestroyed").await;
    let mine: Vec<String> = seq(&ev, &cust)
        .into_iter()
        .filter(|t| t != "ChannelVarset")
        .collect();
    assert_eq!(
        mine,
        [
            "ChannelHangupRequest",
            "ChannelLeftBridge",
            "StasisEnd",
            "ChannelHangupRequest",
            "ChannelDestroyed"
        ]
    );
    let req = ev
        .iter()
        .find(|e| e["type"] == "ChannelHangupRequest")
        .unwrap();
    assert!(
        req.get("cause").is_none(),
        "a remote hangup has no cause: {req}"
    );
    let (_, bridge) = a.get("bridges/hb").await;
    assert_eq!(
        bridge["channels"],
        json!(["agent-h"]),
        "the bridge stays, holding the agent"
    );
}

#[tokio::test]
async fn deleting_a_bridge_with_channels_lets_them_leave_and_stay_in_stasis() {
    let a = Ari::start(true).await;
    a.leg("db-1").await;
    a.leg("db-2").await;
    a.post("bridges?bridgeId=dbb").await;
    a.post("bridges/dbb/addChannel?channel=db-1,db-2").await;
    a.clear();
    assert_eq!(a.delete("bridges/dbb").await.0, 204);
    let ev = a.until(|e| e["type"] == "BridgeDestroyed").await;
    assert_eq!(of_type(&ev, "ChannelLeftBridge").len(), 2);
    assert!(of_type(&ev, "StasisEnd").is_empty());
    assert_eq!(
        a.post("channels/db-1/answer").await.0,
        204,
        "still in Stasis"
    );
}

#[tokio::test]
async fn continue_ends_stasis_runs_the_dialplan_and_re_entry_gives_new_args() {
    let a = Ari::start(true).await;
    let cust = a.inbound().await;
    a.clear();
    a.post(&format!(
        "channels/{cust}/continue?context=cc-after&extension=s&priority=1"
    ))
    .await;
    let ev = a.until(|e| e["type"] == "StasisStart").await;
    let s = seq(&ev, &cust);
    assert_eq!(s.first().map(String::as_str), Some("StasisEnd"), "{s:?}");
    assert!(
        s.iter().filter(|t| *t == "ChannelDialplan").count() >= 2,
        "{s:?}"
    );
    assert_eq!(of_type(&ev, "StasisStart")[0]["args"], json!(["returned"]));
}

#[tokio::test]
async fn a_media_list_plays_started_continuing_started_finished() {
    let a = Ari::start(false).await;
    a.leg("ml-1").await;
    a.clear();
    let (_, pb) = a
        .post("channels/ml-1/play/list-1?media=sound:beep,sound:hello-world")
        .await;
    assert_eq!(pb["next_media_uri"], "sound:hello-world");
    let ev = a.until(|e| e["type"] == "PlaybackFinished").await;
    let steps: Vec<String> = ev
        .iter()
        .map(|e| {
            format!(
                "{} {} {}",
                e["type"].as_str().unwrap(),
                e["playback"]["state"].as_str().unwrap(),
                e["playback"]["next_media_uri"].as_str().unwrap_or("-")
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            "PlaybackStarted playing sound:hello-world",
            "PlaybackContinuing continuing sound:hello-world",
            "PlaybackStarted playing -",
            "PlaybackFinished done -"
        ]
    );
    assert_eq!(
        a.get("playbacks/list-1").await.0,
        404,
        "a finished playback is gone at once"
    );
}

#[tokio::test]
async fn a_stopped_tone_finishes_done_and_unpausing_restarts() {
    let a = Ari::start(false).await;
    a.leg("tn-1").await;
    a.clear();
    a.post("channels/tn-1/play/tone-1?media=tone:ring;tonezone=us")
        .await;
    assert_eq!(a.get("playbacks/tone-1").await.1["state"], "playing");
    assert_eq!(
        a.post("playbacks/tone-1/control?operation=pause").await.0,
        204
    );
    assert_eq!(
        a.post("playbacks/tone-1/control?operation=unpause").await.0,
        204
    );
    let ev = a.until(|e| e["type"] == "PlaybackStarted").await;
    a.settle().await;
    assert_eq!(
        of_type(&a.events.lock().unwrap(), "PlaybackStarted").len(),
        2,
        "unpause re-emits PlaybackStarted: {ev:?}"
    );
    assert_eq!(a.delete("playbacks/tone-1").await.0, 204);
    let ev = a.until(|e| e["type"] == "PlaybackFinished").await;
    assert_eq!(
        of_type(&ev, "PlaybackFinished")[0]["playback"]["state"],
        "done"
    );
}

#[tokio::test]
async fn dtmf_sent_to_a_second_half_arrives_on_the_first() {
    let a = Ari::start(true).await;
    a.post("channels/dt-1?endpoint=Local/100@cc-test&extension=s&context=cc-park")
        .await;
    a.until(|e| e["type"] == "StasisStart").await;
    a.post("channels/dt-1;2/answer").await;
    a.clear();
    a.post("channels/dt-1;2/dtmf?dtmf=12%23&duration=100&between=100")
        .await;
    let ev = a
        .until(|e| e["type"] == "ChannelDtmfReceived" && e["digit"] == "#")
        .await;
    let got: Vec<(String, i64, String)> = of_type(&ev, "ChannelDtmfReceived")
        .iter()
        .map(|e| {
            (
                e["digit"].as_str().unwrap().to_owned(),
                e["duration_ms"].as_i64().unwrap(),
                e["channel"]["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("1".into(), 100, "dt-1".into()),
            ("2".into(), 100, "dt-1".into()),
            ("#".into(), 100, "dt-1".into())
        ]
    );
}

#[tokio::test]
async fn moh_hold_silence_and_mute_produce_no_events() {
    let a = Ari::start(false).await;
    a.leg("q-1").await;
    a.clear();
    for op in [
        "moh?mohClass=default",
        "hold",
        "silence",
        "mute?direction=both",
    ] {
        a.post(&format!("channels/q-1/{op}")).await;
        a.delete(&format!("channels/q-1/{}", op.split('?').next().unwrap()))
            .await;
    }
    a.settle().await;
    assert!(a.events.lock().unwrap().is_empty(), "{:?}", a.types());
}

#[tokio::test]
async fn bridges_are_simple_mixing_stasis_bridges_and_bridge_events_list_channels() {
    let a = Ari::start(false).await;
    let (_, b) = a.post("bridges?type=mixing&bridgeId=bb&name=call").await;
    assert_eq!(
        (
            b["technology"].as_str(),
            b["bridge_type"].as_str(),
            b["bridge_class"].as_str(),
            b["creator"].as_str(),
            b["video_mode"].as_str()
        ),
        (
            Some("simple_bridge"),
            Some("mixing"),
            Some("stasis"),
            Some("Stasis"),
            Some("talker")
        )
    );
    a.leg("bb-1").await;
    a.post("bridges/bb/addChannel?channel=bb-1").await;
    let ev = a.until(|e| e["type"] == "ChannelEnteredBridge").await;
    assert_eq!(
        of_type(&ev, "ChannelEnteredBridge")[0]["bridge"]["channels"],
        json!(["bb-1"])
    );
    a.post("bridges/bb/removeChannel?channel=bb-1").await;
    let ev = a.until(|e| e["type"] == "ChannelLeftBridge").await;
    assert_eq!(
        of_type(&ev, "ChannelLeftBridge")[0]["bridge"]["channels"],
        json!([])
    );
}

#[tokio::test]
async fn a_bridge_recording_hides_its_recorder_and_stores_16000_bytes_a_second() {
    let a = Ari::start(true).await;
    a.leg("rc-1").await;
    a.leg("rc-2").await;
    a.post("bridges?bridgeId=rb").await;
    a.post("bridges/rb/addChannel?channel=rc-1,rc-2").await;
    a.until(|e| {
        e["type"] == "ChannelEnteredBridge"
            && e["bridge"]["channels"].as_array().map(Vec::len) == Some(2)
    })
    .await;
    a.settle().await;
    a.clear();
    a.post("bridges/rb/record?name=rb-rec&format=wav&ifExists=overwrite")
        .await;
    let ev = a.until(|e| e["type"] == "RecordingStarted").await;
    assert!(
        ev.iter().any(|e| e["variable"] == "BRIDGEPEER"
            && e["value"]
                .as_str()
                .unwrap_or("")
                .starts_with("Recorder/ARI-")),
        "the recorder shows in BRIDGEPEER"
    );
    assert!(of_type(&ev, "ChannelEnteredBridge").is_empty());
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.post("recordings/live/rb-rec/stop").await;
    let file = client(&a.emu)
        .stored_recording_file("rb-rec")
        .await
        .unwrap();
    assert_eq!(&file[..4], b"RIFF");
    assert_eq!(&file[8..16], b"WAVEfmt ");
    // 8 kHz, 16-bit: 44 bytes of header, then 16,000 bytes a (real, unscaled) second.
    let secs = (file.len() - 44) as f64 / 16_000.0;
    assert!((0.25..2.0).contains(&secs), "{secs}");
}

#[tokio::test]
async fn external_media_names_its_rtp_address_and_streams_ulaw_every_20_ms() {
    let mut options = switchboard::emulator::asterisk::EmulatorOptions::capture(support::PASSWORD);
    options.time_scale = 0.02;
    options.rtp = true;
    let emu = support::emulator_with(options).await;
    let (events, send) = Ari::socket(&emu, true).await;
    let a = Ari {
        emu,
        http: reqwest::Client::new(),
        events,
        send,
    };
    let rtp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let host = rtp.local_addr().unwrap().to_string();
    let (s, ch) = a.post(&format!("channels/externalMedia?app=cc&channelId=em-1&external_host={host}&format=ulaw&encapsulation=rtp&transport=udp&direction=both")).await;
    assert_eq!(s, 200);
    assert_eq!(ch["channelvars"]["UNICASTRTP_LOCAL_ADDRESS"], "127.0.0.1");
    assert!(
        ch["channelvars"]["UNICASTRTP_LOCAL_PORT"]
            .as_str()
            .unwrap()
            .parse::<u16>()
            .is_ok()
    );
    assert!(
        ch["name"]
            .as_str()
            .unwrap()
            .starts_with(&format!("UnicastRTP/{host}-0x"))
    );
    let ev = a.until(|e| e["type"] == "StasisStart").await;
    let dials: Vec<String> = of_type(&ev, "Dial")
        .iter()
        .map(|d| format!("{} {}", d["dialstatus"], d["dialstring"]))
        .collect();
    assert_eq!(
        dials,
        [
            format!("\"\" \"{host}/c(ulaw)\""),
            format!("\"ANSWER\" \"{host}/c(ulaw)\"")
        ]
    );
    let states: Vec<&str> = of_type(&ev, "ChannelStateChange")
        .iter()
        .map(|e| e["channel"]["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["Up"]);
    let mut buf = [0u8; 2048];
    let mut first = None;
    for _ in 0..3 {
        let (n, _) = tokio::time::timeout(Duration::from_secs(2), rtp.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(n, 12 + 160);
        assert_eq!(buf[0], 0x80, "RTP v2, no padding, no extension, no CSRC");
        assert_eq!(buf[1], 0x00, "PT 0 (PCMU), no marker");
        let ts = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
        first.get_or_insert(ts);
    }
    assert_eq!(first, Some(160), "timestamps start at 160");
    assert_eq!(
        a.get("channels/em-1/rtp_statistics").await,
        (404, json!({"message": "RTP info not found"}))
    );
}

#[tokio::test]
async fn a_second_socket_for_the_app_replaces_the_first_which_hears_nothing_more() {
    let a = Ari::start(true).await;
    let (second, _keep) = Ari::socket(&a.emu, true).await;
    a.until(|e| e["type"] == "ApplicationReplaced").await;
    a.clear();
    a.post("channels/rep-1?endpoint=Local/300@cc-test&app=cc")
        .await;
    for _ in 0..100 {
        if second
            .lock()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "StasisStart")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        second
            .lock()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "StasisStart")
    );
    assert!(a.events.lock().unwrap().is_empty(), "{:?}", a.types());
    assert_eq!(a.emu.sockets(), 2, "the first socket stays open");
}

// ---------------------------------------------------------------- subscribeAll

#[tokio::test]
async fn with_subscribe_all_bridge_recording_events_come_twice_without_once() {
    for (all, times) in [(true, 2), (false, 1)] {
        let a = Ari::start(all).await;
        a.leg("sa-1").await;
        a.post("bridges?bridgeId=sab").await;
        a.post("bridges/sab/addChannel?channel=sa-1").await;
        a.post("bridges/sab/record?name=sa-rec&format=wav").await;
        a.post("recordings/live/sa-rec/stop").await;
        a.until(|e| e["type"] == "RecordingFinished").await;
        a.settle().await;
        let ev = a.events.lock().unwrap().clone();
        assert_eq!(
            of_type(&ev, "RecordingStarted").len(),
            times,
            "subscribeAll={all}"
        );
        assert_eq!(
            of_type(&ev, "RecordingFinished").len(),
            times,
            "subscribeAll={all}"
        );
        assert_eq!(
            !of_type(&ev, "DeviceStateChanged").is_empty(),
            all,
            "subscribeAll={all}"
        );
        assert_eq!(
            !of_type(&ev, "BridgeCreated").is_empty(),
            all,
            "subscribeAll={all}"
        );
    }
}

#[tokio::test]
async fn without_subscribe_all_a_dialplan_channel_ends_at_stasis_end() {
    let a = Ari::start(false).await;
    a.post("channels?endpoint=Local/100@cc-test&extension=s&context=cc-park")
        .await;
    let ev = a.until(|e| e["type"] == "StasisStart").await;
    let id = of_type(&ev, "StasisStart")[0]["channel"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    a.clear();
    a.delete(&format!("channels/{id}")).await;
    a.until(|e| e["type"] == "StasisEnd").await;
    a.settle().await;
    assert_eq!(
        a.types().last().map(|t| t.starts_with("StasisEnd")),
        Some(true),
        "{:?}",
        a.types()
    );
}

#[tokio::test]
async fn without_subscribe_all_a_bridge_emptied_by_remove_channel_is_destroyed_silently() {
    let a = Ari::start(false).await;
    a.leg("bd-1").await;
    a.post("bridges?bridgeId=bdb").await;
    a.post("bridges/bdb/addChannel?channel=bd-1").await;
    a.post("bridges/bdb/removeChannel?channel=bd-1").await;
    a.delete("bridges/bdb").await;
    a.settle().await;
    assert!(of_type(&a.events.lock().unwrap(), "BridgeDestroyed").is_empty());
    // Emptied by a hangup instead, BridgeDestroyed comes.
    a.leg("bd-2").await;
    a.post("bridges?bridgeId=bdc").await;
    a.post("bridges/bdc/addChannel?channel=bd-2").await;
    a.delete("channels/bd-2").await;
    a.delete("bridges/bdc").await;
    a.until(|e| e["type"] == "BridgeDestroyed").await;
}

// ---------------------------------------------------------------- errors

#[tokio::test]
async fn not_found_errors_name_the_missing_object() {
    let a = Ari::start(false).await;
    assert_eq!(
        a.get("channels/nope").await,
        (404, json!({"message": "Channel not found"}))
    );
    assert_eq!(
        a.post("channels/nope/answer").await,
        (404, json!({"message": "Channel not found"}))
    );
    assert_eq!(
        a.get("playbacks/nope").await,
        (404, json!({"message": "Playback not found"}))
    );
    assert_eq!(
        a.get("recordings/stored/nope").await,
        (404, json!({"message": "Recording not found"}))
    );
    assert_eq!(
        a.post("recordings/live/nope/stop").await,
        (404, json!({"message": "Recording not found"}))
    );
    a.leg("v-1").await;
    assert_eq!(
        a.get("channels/v-1/variable?variable=NOT_SET_VAR").await,
        (404, json!({"message": "Provided variable was not found"}))
    );
    assert_eq!(
        a.get("channels/v-1/variable?variable=CHANNEL(state)").await,
        (200, json!({"value": "Up"}))
    );
    // The client says what failed and why.
    let err = client(&a.emu).answer("nope").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "POST /channels/nope/answer failed: 404 Not Found: Channel not found"
    );
}

#[tokio::test]
async fn originate_without_endpoint_or_destination_is_a_400() {
    let a = Ari::start(false).await;
    assert_eq!(
        a.post("channels").await,
        (400, json!({"message": "Endpoint must be specified"}))
    );
    assert_eq!(
        a.post("channels?endpoint=Local/100@cc-test").await,
        (
            400,
            json!({"message": "Application or extension must be specified"})
        )
    );
    let (s, v, _) = a
        .call_body("POST", "channels", Some(("application/json", "{not json")))
        .await;
    assert_eq!(
        (s, v),
        (400, json!({"message": "Error parsing request body"}))
    );
    let (s, v, _) = a
        .call_body("POST", "channels", Some(("text/plain", "{not json")))
        .await;
    assert_eq!(
        (s, v),
        (400, json!({"message": "Endpoint must be specified"})),
        "without the JSON type the body is ignored"
    );
}

#[tokio::test]
async fn conflicts_are_409_and_non_stasis_channels_are_409_or_422() {
    let a = Ari::start(false).await;
    a.leg("c-1").await;
    assert_eq!(
        a.post("channels/c-1?endpoint=Local/300@cc-test&app=cc")
            .await,
        (
            409,
            json!({"message": "Channel with given unique ID already exists"})
        )
    );
    a.post("bridges?bridgeId=cb-1").await;
    assert_eq!(
        a.post("bridges?bridgeId=cb-1").await,
        (
            409,
            json!({"message": "Bridge with id 'cb-1' already exists"})
        )
    );
    // The ;2 half of a Local channel runs the dialplan, outside Stasis.
    assert_eq!(
        a.post("channels/c-1;2/answer").await,
        (409, json!({"message": "Channel not in Stasis application"}))
    );
    assert_eq!(
        a.post("bridges/cb-1/addChannel?channel=c-1;2").await,
        (422, json!({"message": "Channel not in Stasis application"}))
    );
    assert_eq!(
        a.post("bridges/cb-1/addChannel?channel=no-such").await,
        (400, json!({"message": "Channel not found"}))
    );
    assert_eq!(
        a.post("bridges/cb-1/removeChannel?channel=no-such").await,
        (400, json!({"message": "Channel not found"}))
    );
    a.delete("bridges/cb-1").await;
    assert_eq!(
        a.post("bridges/cb-1/addChannel?channel=c-1").await,
        (404, json!({"message": "Bridge not found"}))
    );
}

#[tokio::test]
async fn originator_and_formats_together_are_a_400() {
    let a = Ari::start(false).await;
    let cust = a.inbound().await;
    assert_eq!(
        a.post(&format!(
            "channels/create?endpoint=PJSIP/agent&app=cc&originator={cust}&formats=ulaw"
        ))
        .await,
        (
            400,
            json!({"message": "Originator and formats can't both be specified"})
        )
    );
}

// ---------------------------------------------------------------- gaps in the Swagger docs

#[tokio::test]
async fn an_unknown_technology_is_a_500_under_the_key_error() {
    let a = Ari::start(false).await;
    assert_eq!(
        a.post("channels?endpoint=Bogus/xyz&app=cc").await,
        (500, json!({"error": "Allocation failed"}))
    );
    let err = client(&a.emu)
        .originate(&OriginateParams {
            endpoint: "Bogus/xyz".into(),
            app: Some("cc".into()),
            ..OriginateParams::default()
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&err, AriError::Status { status: 500, message, .. } if message == "Allocation failed"),
        "{err}"
    );
}

#[tokio::test]
async fn a_bad_bridge_type_and_play_without_media_are_500s() {
    let a = Ari::start(false).await;
    assert_eq!(
        a.post("bridges?type=nosuchtype").await,
        (
            500,
            json!({"message": "Unable to create bridge. Possible duplicate bridge id '(null)'"})
        )
    );
    a.leg("pm-1").await;
    assert_eq!(
        a.post("channels/pm-1/play").await,
        (
            500,
            json!({"message": "Failed to queue media for playback"})
        )
    );
}

#[tokio::test]
async fn an_unknown_sound_fails_at_once_and_an_unknown_scheme_never_finishes() {
    let a = Ari::start(false).await;
    a.leg("us-1").await;
    a.clear();
    assert_eq!(
        a.post("channels/us-1/play/nss?media=sound:no-such-sound")
            .await
            .0,
        201
    );
    let ev = a.until(|e| e["type"] == "PlaybackFinished").await;
    assert_eq!(
        of_type(&ev, "PlaybackFinished")[0]["playback"]["state"],
        "failed"
    );
    a.clear();
    assert_eq!(
        a.post("channels/us-1/play/bog?media=bogus:thing").await.0,
        201
    );
    a.until(|e| e["type"] == "PlaybackStarted").await;
    a.delete("channels/us-1").await;
    a.until(|e| e["type"] == "StasisEnd").await;
    a.settle().await;
    assert!(of_type(&a.events.lock().unwrap(), "PlaybackFinished").is_empty());
}

#[tokio::test]
async fn a_non_integer_timeout_is_accepted() {
    let a = Ari::start(false).await;
    assert_eq!(
        a.post("channels?endpoint=Local/300@cc-test&app=cc&timeout=notanumber")
            .await
            .0,
        200
    );
    let (s, _, _) = a
        .call_body(
            "POST",
            "channels",
            Some((
                "application/json",
                r#"{"endpoint": "Local/300@cc-test", "app": "cc", "timeout": "3"}"#,
            )),
        )
        .await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn adding_a_channel_twice_makes_it_leave_and_enter_again() {
    let a = Ari::start(false).await;
    a.leg("tw-1").await;
    a.post("bridges?bridgeId=twb").await;
    a.post("bridges/twb/addChannel?channel=tw-1").await;
    a.until(|e| e["type"] == "ChannelEnteredBridge").await;
    a.clear();
    assert_eq!(a.post("bridges/twb/addChannel?channel=tw-1").await.0, 204);
    let ev = a.until(|e| e["type"] == "ChannelEnteredBridge").await;
    let types: Vec<&str> = ev.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["ChannelLeftBridge", "ChannelEnteredBridge"]);
}

#[tokio::test]
async fn redirect_on_a_local_channel_does_nothing_observable() {
    let a = Ari::start(false).await;
    a.leg("rd-1").await;
    a.clear();
    assert_eq!(
        a.post("channels/rd-1/redirect?endpoint=Local/300@cc-test")
            .await
            .0,
        204
    );
    a.settle().await;
    assert!(a.events.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_deleted_snoop_lingers_until_its_spied_channel_leaves_stasis() {
    let a = Ari::start(true).await;
    let cust = a.inbound().await;
    a.post(&format!(
        "channels/{cust}/snoop/sn-1?spy=in&app=cc&appArgs=snoop"
    ))
    .await;
    a.until(|e| e["type"] == "StasisStart" && e["channel"]["id"] == "sn-1")
        .await;
    a.clear();
    a.delete("channels/sn-1").await;
    a.until(|e| e["type"] == "StasisEnd" && e["channel"]["id"] == "sn-1")
        .await;
    a.settle().await;
    assert!(
        a.events
            .lock()
            .unwrap()
            .iter()
            .all(|e| e["type"] != "ChannelDestroyed")
    );
    assert_eq!(a.get("channels/sn-1").await.0, 200, "still listed");
    a.post(&format!(
        "channels/{cust}/continue?context=cc-after&extension=s&priority=1"
    ))
    .await;
    let ev = a
        .until(|e| e["type"] == "ChannelDestroyed" && e["channel"]["id"] == "sn-1")
        .await;
    assert!(
        ev.iter()
            .any(|e| e["type"] == "DeviceStateChanged" && e["device_state"]["state"] == "INVALID")
    );
}

#[tokio::test]
async fn sounds_filtered_by_format_are_404_and_wav_prompts_are_slin() {
    let a = Ari::start(false).await;
    assert_eq!(
        a.get("sounds?lang=en&format=wav").await,
        (
            404,
            json!({"message": "No sounds found that matched the query"})
        )
    );
    assert_eq!(
        a.get("sounds/hello-world").await,
        (
            200,
            json!({"id": "hello-world", "formats": [{"language": "en", "format": "slin"}]})
        )
    );
}

// ---------------------------------------------------------------- REST over the WebSocket

async fn rest(a: &Ari, msg: Value) -> Value {
    let tid = msg["transaction_id"].clone();
    a.send.send(msg.to_string()).await.unwrap();
    let ev = a
        .until(|e| e["type"] == "RESTResponse" && e["transaction_id"] == tid)
        .await;
    ev.into_iter()
        .find(|e| e["type"] == "RESTResponse" && e["transaction_id"] == tid)
        .unwrap()
}

#[tokio::test]
async fn rest_requests_over_the_socket_get_rest_responses_with_a_string_body() {
    let a = Ari::start(false).await;
    let r = rest(&a, json!({"type": "RESTRequest", "transaction_id": "t1", "request_id": "r1", "method": "GET", "uri": "asterisk/ping"})).await;
    assert_eq!(
        (
            r["status_code"].as_u64(),
            r["reason_phrase"].as_str(),
            r["uri"].as_str()
        ),
        (Some(200), Some("OK"), Some("asterisk/ping"))
    );
    let body: Value =
        serde_json::from_str(r["message_body"].as_str().expect("a JSON string")).unwrap();
    assert_eq!(body["ping"], "pong");
    assert_eq!(r["content_type"], "application/json");
    let r = rest(&a, json!({"type": "RESTRequest", "transaction_id": "t2", "request_id": "r2", "method": "POST", "uri": "channels", "content_type": "application/x-www-form-urlencoded", "message_body": "endpoint=Local/300@cc-test&app=cc&channelId=wsf-1"})).await;
    assert_eq!(r["status_code"], 200);
    let r = rest(&a, json!({"type": "RESTRequest", "transaction_id": "t3", "request_id": "r3", "method": "POST", "uri": "channels/wsf-1/variable", "query_strings": [{"name": "variable", "value": "X"}, {"name": "value", "value": "1"}]})).await;
    assert_eq!(r["status_code"], 204);
    assert!(r.get("message_body").is_none());
}

#[tokio::test]
async fn rest_over_the_socket_takes_relative_uris_only_and_known_methods() {
    let a = Ari::start(false).await;
    for (i, uri) in ["/channels/x", "/ari/asterisk/ping"].iter().enumerate() {
        let r = rest(&a, json!({"type": "RESTRequest", "transaction_id": format!("u{i}"), "request_id": "r", "method": "GET", "uri": uri})).await;
        assert_eq!(
            (r["status_code"].as_u64(), r["message_body"].as_str()),
            (Some(405), Some(r#"{"message":"Invalid method"}"#))
        );
    }
    let r = rest(&a, json!({"type": "RESTRequest", "transaction_id": "m", "request_id": "r", "method": "BREW", "uri": "asterisk/ping"})).await;
    assert_eq!(
        (r["status_code"].as_u64(), r["reason_phrase"].as_str()),
        (Some(400), Some("Bad request"))
    );
    assert_eq!(
        r["message_body"],
        r#"{"message":"Unknown or missing 'method' property."}"#
    );
}

#[tokio::test]
async fn events_caused_by_a_socket_request_can_precede_its_response() {
    let a = Ari::start(true).await;
    rest(&a, json!({"type": "RESTRequest", "transaction_id": "o", "request_id": "r", "method": "POST", "uri": "channels/pre-1?endpoint=Local/300@cc-test&app=cc"})).await;
    let ev = a.events.lock().unwrap().clone();
    let response = ev.iter().position(|e| e["type"] == "RESTResponse").unwrap();
    let created = ev
        .iter()
        .position(|e| e["type"] == "ChannelCreated")
        .unwrap();
    assert!(created < response, "{:?}", a.types());
}
