//! The client reads everything Asterisk 22.10.1 sent in the captures: every event decodes into
//! its typed model (none is "unknown"), writes back to the same JSON, and has exactly the fields
//! `api-docs/` documents; every reply body decodes into the model its path returns.

#[path = "support/ari.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use switchboard::media::asterisk::event::{EventKind, decode_event};
use switchboard::media::asterisk::model::{
    Application, AsteriskInfo, AsteriskPing, Bridge, Channel, Endpoint, LiveRecording, Module,
    Playback, RtpStat, Sound, StoredRecording, Variable,
};

#[test]
fn every_captured_event_decodes_typed_and_writes_back_the_same_json() {
    let payloads = support::all_event_payloads();
    assert!(payloads.len() > 700, "{}", payloads.len());
    for (file, text) in payloads {
        let event = decode_event(text.as_bytes()).unwrap_or_else(|e| panic!("{file}: {e}: {text}"));
        assert!(
            !matches!(
                event.kind,
                EventKind::Unknown { .. } | EventKind::Other { .. }
            ),
            "{file}: {} is not modelled",
            event.kind.type_name()
        );
        let original: Value = serde_json::from_str(&text).unwrap();
        let written: Value = serde_json::to_value(&event).unwrap();
        assert_eq!(
            written,
            original,
            "{file}: round trip of {}",
            event.kind.type_name()
        );
    }
}

/// Properties of every model in api-docs (model name → (all, required)).
fn swagger_models() -> BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)> {
    let mut models = BTreeMap::new();
    let dir = support::fixtures_dir().join("api-docs");
    for entry in std::fs::read_dir(&dir).expect("api-docs") {
        let path = entry.unwrap().path();
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let Some(ms) = doc["models"].as_object() else {
            continue;
        };
        for (name, m) in ms {
            let props = m["properties"].as_object().cloned().unwrap_or_default();
            let all = props.keys().cloned().collect();
            let required = props
                .iter()
                .filter(|(_, p)| p["required"] == true)
                .map(|(k, _)| k.clone())
                .collect();
            models.insert(name.clone(), (all, required));
        }
    }
    models
}

fn check_object(
    models: &BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)>,
    model: &str,
    v: &Value,
    at: &str,
) {
    let (mut all, mut required) = models
        .get(model)
        .cloned()
        .unwrap_or_else(|| panic!("no model {model}"));
    if models.get("Event").is_some()
        && ![
            "Channel",
            "Bridge",
            "Playback",
            "LiveRecording",
            "DeviceState",
            "CallerID",
            "DialplanCEP",
        ]
        .contains(&model)
    {
        // Events extend Event, which extends Message.
        for base in ["Event", "Message"] {
            let (a, r) = &models[base];
            all.extend(a.iter().cloned());
            required.extend(r.iter().cloned());
        }
    }
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("{at}: not an object"));
    for k in obj.keys() {
        assert!(
            all.contains(k),
            "{at}: {model} has no field {k:?} in api-docs"
        );
    }
    for k in &required {
        assert!(obj.contains_key(k), "{at}: {model} lacks required {k:?}");
    }
    let nested = [
        ("channel", "Channel"),
        ("peer", "Channel"),
        ("caller", "Channel"),
        ("bridge", "Bridge"),
        ("playback", "Playback"),
        ("recording", "LiveRecording"),
        ("device_state", "DeviceState"),
    ];
    for (field, sub) in nested {
        if let Some(x) = obj.get(field)
            && x.is_object()
            && !(model == "Channel" && field == "caller")
        {
            check_object(models, sub, x, &format!("{at}.{field}"));
        }
    }
    if model == "Channel" {
        check_object(models, "CallerID", &obj["caller"], &format!("{at}.caller"));
        check_object(
            models,
            "CallerID",
            &obj["connected"],
            &format!("{at}.connected"),
        );
        check_object(
            models,
            "DialplanCEP",
            &obj["dialplan"],
            &format!("{at}.dialplan"),
        );
    }
}

#[test]
fn captured_events_have_exactly_the_fields_api_docs_describe() {
    let models = swagger_models();
    for (file, text) in support::all_event_payloads() {
        let v: Value = serde_json::from_str(&text).unwrap();
        let t = v["type"].as_str().unwrap();
        check_object(&models, t, &v, &format!("{file} {t}"));
    }
}

#[test]
fn every_reply_body_decodes_into_the_model_of_its_path() {
    let mut decoded = 0;
    for name in support::transcripts() {
        let records = support::load(&name);
        let requests: BTreeMap<u64, &Value> = records
            .iter()
            .filter(|r| r["kind"] == "http_request")
            .map(|r| (r["id"].as_u64().unwrap(), r))
            .collect();
        for r in records.iter().filter(|r| r["kind"] == "http_response") {
            let req = requests[&r["id"].as_u64().unwrap()];
            let status = r["status"].as_u64().unwrap();
            let body = &r["body"];
            if body.is_null() || body.get("_binary_body_omitted").is_some() {
                continue;
            }
            let text = body.to_string();
            if status >= 400 {
                let msg = switchboard::media::asterisk::client::error_message(text.as_bytes());
                assert!(!msg.is_empty(), "{name}: error without words: {text}");
                continue;
            }
            let path = req["path"].as_str().unwrap().trim_start_matches("/ari/");
            let method = req["method"].as_str().unwrap();
            let seg: Vec<&str> = path.split('/').collect();
            let ok = match (method, seg.as_slice()) {
                ("GET", ["channels"]) => serde_json::from_str::<Vec<Channel>>(&text).is_ok(),
                (_, ["channels", _, "variable"]) | ("GET", ["asterisk", "variable"]) => {
                    serde_json::from_str::<Variable>(&text).is_ok()
                }
                (_, ["channels", _, "rtp_statistics"]) => {
                    serde_json::from_str::<RtpStat>(&text).is_ok()
                }
                (_, ["channels", _, "play", ..]) | (_, ["playbacks", _]) => {
                    serde_json::from_str::<Playback>(&text).is_ok()
                }
                (_, ["channels", _, "record"])
                | (_, ["bridges", _, "record"])
                | (_, ["recordings", "live", _]) => {
                    serde_json::from_str::<LiveRecording>(&text).is_ok()
                }
                (_, ["channels", ..]) => serde_json::from_str::<Channel>(&text).is_ok(),
                ("GET", ["bridges"]) => serde_json::from_str::<Vec<Bridge>>(&text).is_ok(),
                (_, ["bridges", ..]) => serde_json::from_str::<Bridge>(&text).is_ok(),
                ("GET", ["recordings", "stored"]) => {
                    serde_json::from_str::<Vec<StoredRecording>>(&text).is_ok()
                }
                ("GET", ["recordings", "stored", _]) => {
                    serde_json::from_str::<StoredRecording>(&text).is_ok()
                }
                ("GET", ["endpoints"]) | ("GET", ["endpoints", _]) => {
                    serde_json::from_str::<Vec<Endpoint>>(&text).is_ok()
                }
                ("GET", ["endpoints", _, _]) => serde_json::from_str::<Endpoint>(&text).is_ok(),
                ("GET", ["asterisk", "info"]) => {
                    serde_json::from_str::<AsteriskInfo>(&text).is_ok()
                }
                ("GET", ["asterisk", "ping"]) => {
                    serde_json::from_str::<AsteriskPing>(&text).is_ok()
                }
                ("GET", ["asterisk", "modules", _]) => {
                    serde_json::from_str::<Module>(&text).is_ok()
                }
                ("GET", ["applications"]) => {
                    serde_json::from_str::<Vec<Application>>(&text).is_ok()
                }
                ("GET", ["applications", _]) => serde_json::from_str::<Application>(&text).is_ok(),
                ("GET", ["sounds", _]) => serde_json::from_str::<Sound>(&text).is_ok(),
                ("GET", ["deviceStates"]) => serde_json::from_str::<Vec<Value>>(&text).is_ok(),
                other => panic!("{name}: no model for {other:?}"),
            };
            assert!(ok, "{name}: {method} {path} body does not decode: {text}");
            decoded += 1;
        }
    }
    assert!(decoded > 80, "{decoded}");
}
