//! Switchboard: a contact-center control plane.
//!
//! The cores (`routing`, …) are sans-IO state machines: they take events and `now` and return
//! decisions. Adapters (store, web, media handlers) surround them. `../DESIGN.md` of the
//! workspace is the map; the README is the user's guide.

pub mod admission;
pub mod agents;
pub mod config;
pub mod controller;
pub mod emulator;
pub mod flow;
pub mod logging;
pub mod media;
pub mod model;
pub mod routing;
pub mod rtp;
pub mod sim;
pub mod store;
pub mod web;
