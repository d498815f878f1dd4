//! The Asterisk adapter: Switchboard's own thin ARI client (reqwest + tokio-tungstenite +
//! serde) and the Asterisk [`MediaHandler`](crate::media::MediaHandler).
//!
//! - [`model`], [`event`], [`time`]: typed ARI resources and events, checked against Asterisk
//!   22's `api-docs/` and the captured transcripts; [`event::decode_event`] is sans-IO.
//! - [`client`]: the REST client (basic auth or `api_key`); ARI error replies become errors that
//!   say what failed and why.
//! - [`socket`]: the events WebSocket and the reconnect backoff (with jitter).
//! - [`mapping`]: the handler's sans-IO core: commands to ARI calls, events to
//!   [`MediaEvent`](crate::media::MediaEvent)s, the leg→bridge map, resync.
//! - [`handler`]: [`AsteriskHandler`], the IO around the core.

#![warn(missing_docs)]

pub mod cause;
pub mod client;
pub mod event;
pub mod handler;
pub mod mapping;
pub mod model;
pub mod socket;
pub mod time;

pub use client::{
    AriClient, AriConfig, AriError, Credentials, ExternalMediaParams, OriginateParams, RecordParams,
};
pub use event::{AriEvent, DecodeError, EventDecoder, EventKind, decode_event};
pub use handler::{AsteriskConfig, AsteriskHandler, HandlerError};
pub use mapping::{AdapterState, AriCall, Plan};
pub use model::{Bridge, Channel, ChannelState, LiveRecording, Playback, StoredRecording};
pub use socket::{Backoff, BackoffPolicy, EventSocket, SocketError};
pub use time::AriTime;
