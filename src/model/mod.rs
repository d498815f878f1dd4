//! Ids and plain domain types that every part of Switchboard shares.

mod contact;
mod ids;
mod level;
mod media;
mod names;
mod time;

pub use contact::{ContactState, Disposition, Outcome, Priority};
pub use ids::{AgentId, ContactId, CustomerId, QueueId, SkillId, TagId, TenantId};
pub use level::{Level, LevelError};
pub use media::{MediaMap, MediaSet, MediaType, UnknownMedia};
pub use names::Names;
pub use time::Timestamp;
