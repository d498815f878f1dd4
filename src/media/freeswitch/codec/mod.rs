//! The ESL codec, sans-IO: frames from FreeSWITCH, events in three formats, commands from
//! clients, and the frames a server writes. No sockets, no tasks, no clock.
//!
//! Ground truth is the byte-exact captures in `fixtures/esl/` (FreeSWITCH 1.10.12): every
//! capture splits into frames with nothing left over, and every frame the encoders write has
//! the shape the captures show.
//!
//! - Reading (client side): [`Decoder`] (incremental: feed bytes, take [`Frame`]s; check →
//!   parse → advance; "incomplete" means read more) or [`split_frames`] (a buffer already in
//!   memory). A [`Frame`] shares the input bytes; [`Frame::event`] parses its [`Event`] when
//!   asked; values are URL-decoded when asked.
//! - Writing (client side): [`Command::encode`].
//! - Reading (server side, the emulator): [`CommandDecoder`] → [`CommandFrame::command`].
//! - Writing (server side): [`ServerFrame::encode`], [`OwnedEvent`].
//! - Bad input: a [`CodecError`] naming what and where (stream offset); memory stays within
//!   [`Limits`]; [`Decoder::resync`] skips to the next frame, or the connection closes.

mod command;
mod decoder;
mod error;
mod event;
mod frame;
mod header;
mod ids;
mod server;
pub mod urlcode;

pub use command::{AppArg, CallCommand, Command, CommandFrame, SendMsg};
pub use decoder::{CommandDecoder, Decoder, Frames, split_frames};
pub use error::CodecError;
pub use event::{Event, EventFormat};
pub use frame::{
    ACCESS_DENIED, Check, ContentType, DisconnectNotice, Disposition, Frame, GOODBYE, Limits,
    LogRecord, Reply, check,
};
pub use ids::{ApplicationUuid, JobUuid};
pub use server::{OwnedEvent, ServerFrame, encode_frame};
