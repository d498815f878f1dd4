//! The universal queue and skills-based router (sans-IO).
//!
//! One queue for every media type. A contact carries criteria (required or preferred keys with
//! minimum levels) that relax over waiting time; agents carry keys with levels, media slots and
//! queue memberships. Both directions are one decision each: a new contact takes the best free
//! agent slot, a freed slot takes the best waiting contact it can serve.

pub mod catalog;
pub mod setup;
pub mod spec;
pub mod strategy;

pub use catalog::Catalog;
pub use setup::{AgentSetup, ContactSetup, Fairness, QueueSetup, RoutingSettings, SetupError};
pub use spec::{
    AgentSpec, ContactSpec, Criterion, Membership, Modifier, OverflowTarget, QueueSpec,
    RouterSettings,
};
pub use strategy::Strategy;

mod error;
mod explain;
mod history;
mod invariants;
mod output;
mod predict;
mod relax;
mod roster;
mod router;
mod timers;
mod waiting;

#[cfg(test)]
mod tests;

pub use error::RouterError;
pub use explain::{CandidateExplanation, CriterionExplanation, Explanation, Verdict};
pub use history::CustomerHistory;
pub use output::{MissReason, Output, WithdrawReason};
pub use router::{Router, RouterCounters};
