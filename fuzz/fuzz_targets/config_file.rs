//! `switchboard.toml` as anyone may write it: loading never panics, and a file that loads
//! resolves or is refused with an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard::config::Config;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let no_env: Vec<(String, String)> = Vec::new();
    if let Ok(config) = Config::load_from_str(&text, "fuzz.toml", no_env) {
        let _ = config.resolve();
    }
});
