//! Ids the ESL protocol carries that are not legs: newtypes, never bare strings.

use std::fmt;
use std::sync::Arc;

/// The `Job-UUID` of a `bgapi` command: chosen by the client (FreeSWITCH honours a `Job-UUID:`
/// header) or by FreeSWITCH, and carried by the BACKGROUND_JOB event with the result.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobUuid(pub Arc<str>);

impl JobUuid {
    /// A job id from text.
    pub fn new(id: impl Into<Arc<str>>) -> Self {
        JobUuid(id.into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JobUuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The `Event-UUID` a client gives a `sendmsg` execute; FreeSWITCH echoes it as
/// `Application-UUID` on that application's CHANNEL_EXECUTE and CHANNEL_EXECUTE_COMPLETE
/// (fixture `sendmsg_execute_eventlock`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ApplicationUuid(pub Arc<str>);

impl ApplicationUuid {
    /// An application id from text.
    pub fn new(id: impl Into<Arc<str>>) -> Self {
        ApplicationUuid(id.into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ApplicationUuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
