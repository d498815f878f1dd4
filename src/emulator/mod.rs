//! Protocol-faithful emulators of the media switches Switchboard drives, for users without a
//! switch, for `simulate` and load tests, and for the adapters' wire tests. Their ground truth
//! is the captured transcripts in `fixtures/`.

#![warn(missing_docs)]

pub mod asterisk;
pub mod freeswitch;
mod timers;
