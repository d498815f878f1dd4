//! A discrete-event simulator of a contact-center day that drives the real router.
//!
//! A scenario (TOML) describes the day: opening hours, the router's settings, queues (the
//! router's own queue keys plus arrival streams: a Poisson rate per media type following a
//! profile over the day, lognormal handle times, customer patience, contact attributes) and
//! agent groups (the router's agent keys plus a count, shifts, answer delay, after-call work
//! and the chance of missing an offer). [`run`] plays the day through a real
//! [`Router`](crate::routing::Router) in simulated time and returns a [`Report`]: per queue and
//! overall, offered, handled, abandoned, overflowed, service level, ASA, AHT, occupancy, and
//! the router's wall-clock decision latency.
//!
//! Everything but the latency depends only on the scenario and the seed. Each concern draws
//! from its own random stream (one per arrival stream, one for agent behaviour, one for the
//! roster), so that changing the staffing leaves the arriving customers unchanged.
//!
//! An agent who misses an offer (the router makes it unavailable for that media type) is not
//! ready for the group's `not_ready_s` (default 30 s), then available again. After-call work
//! makes the agent unavailable for every media type until it ends. `examples/README.md`
//! describes every key.

mod engine;
mod error;
mod file;
mod locate;
mod metrics;
mod progress;
mod report;
mod rng;
mod scenario;

use std::time::Instant;

pub use error::SimError;
pub use metrics::Percentiles;
pub use report::{CallLatency, Figures, GroupFigures, LatencyFigures, QueueFigures, Report};
pub use scenario::Scenario;

/// How to run a scenario.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Show a progress bar on stderr if the run takes longer than a second.
    pub progress: bool,
    /// Seed of the day's random draws, instead of the scenario's.
    pub seed: Option<u64>,
}

/// Simulates the scenario's day and reports its figures.
pub fn run(scenario: &Scenario, options: &RunOptions) -> Result<Report, SimError> {
    let started = Instant::now();
    let mut engine = engine::Engine::new(scenario, options)?;
    engine.run()?;
    let seed = options.seed.unwrap_or(scenario.seed);
    Ok(Report::build(scenario, engine, seed, started.elapsed()))
}
