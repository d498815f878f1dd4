//! Contact flows (sans-IO): what a caller hears and does before and while waiting, and the
//! event handler that compares what each contact's flow expects with what the switch reports.
//!
//! A flow per queue is a TOML file (see `examples/flows/`): greeting, digit menus that set
//! contact attributes, waiting in a queue with music and announcements of position and expected
//! wait, voicemail, hang-up, business hours. [`FlowEngine`] runs them: media events, router
//! outputs and time in; [`FlowAction`]s out (media commands, enqueue, abandon, voicemail).

mod definition;
mod engine;
mod hours;

pub use definition::{Choice, Flow, FlowError, FlowFile, Step, StepIndex, StepSetup};
pub use engine::{FlowAction, FlowEngine, FlowRunError, number_prompts};
pub use hours::{BusinessHours, HoursSetup, PeriodSetup};

#[cfg(test)]
mod tests;
