//! Fuzzes the ARI event decoder, the ARI timestamp parser and the error-body reader: whatever
//! the events WebSocket or a reply carries, they return a value or an error, never panic.
//!   cargo +nightly fuzz run ari_events -- -max_total_time=60
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard::media::asterisk::client::error_message;
use switchboard::media::asterisk::event::{EventDecoder, decode_event};
use switchboard::media::asterisk::time::AriTime;

fuzz_target!(|data: &[u8]| {
    if let Ok(event) = decode_event(data) {
        // What decoded writes back as JSON.
        let _ = serde_json::to_vec(&event);
    }
    let mut decoder = EventDecoder::new();
    let _ = decoder.decode(data);
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(t) = AriTime::parse(text) {
            let _ = AriTime::parse(&t.to_string());
        }
    }
    let _ = error_message(data);
});
