//! FreeSWITCH over the Event Socket (ESL): the sans-IO codec (framing, parsing, encoding),
//! a reader of the byte-exact capture transcripts that are the protocol's ground truth, and the
//! adapter built on them.
//!
//! - [`codec`]: frames, events, commands (sans-IO).
//! - [`client`]: the inbound connection: auth, subscription, `api`/`bgapi` matched to their
//!   replies, events through a bounded queue with a lag metric.
//! - [`mapping`]: the handler's sans-IO core: commands to api strings, events to
//!   [`MediaEvent`](crate::media::MediaEvent)s, the leg table, resync.
//! - [`handler`]: [`FreeswitchHandler`], the IO around the core (reconnect, backoff, resync).
//! - [`outbound`]: the server the dialplan's `socket` application connects to.
//!
//! None of them parse bytes themselves: that is [`codec`]'s job.

#![warn(missing_docs)]

pub mod client;
pub mod codec;
pub mod handler;
pub mod mapping;
pub mod outbound;
pub mod transcript;

pub use client::{ClientConfig, ClientError, EslClient, EventStream, Job, Lag, Received};
pub use handler::{FreeswitchConfig, FreeswitchHandler, HandlerError};
pub use mapping::{ApiCall, ChannelRow, FsState, Plan, PlanError, PlanKind};
pub use outbound::{OutboundCall, OutboundConfig, OutboundError, OutboundServer};
