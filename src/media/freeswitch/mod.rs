//! FreeSWITCH over the Event Socket (ESL): the sans-IO codec (framing, parsing, encoding),
//! and a reader of the byte-exact capture transcripts that are the protocol's ground truth.
//!
//! The connection (reconnect, backoff, resync), the `MediaHandler` and the outbound server sit
//! on top of [`codec`] and never parse bytes themselves.

pub mod codec;
pub mod transcript;
