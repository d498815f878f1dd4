//! Simulator scenarios: any text loads or is refused with an error, never a panic; one that
//! loads runs its first hour without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard::sim::{run, RunOptions, Scenario};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(scenario) = Scenario::from_str(&text, "fuzz.toml") {
        // Keep each input cheap: a short day of a small center.
        if scenario.agent_count() <= 50 && scenario.queue_count() <= 10 {
            let _ = run(&scenario.first_hours(1.0), &RunOptions::default());
        }
    }
});
