//! Contact lifecycle states and priorities.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A contact's priority: higher is served first. Default 0.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Priority(pub i32);

/// Where a contact is in its life, as stored (short stable codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContactState {
    /// Waiting in a queue (including callbacks waiting off the line).
    Queued,
    /// Offered to one or more agents, who have not answered yet.
    Offered,
    /// Connected to an agent.
    Connected,
    /// Served and finished.
    Completed,
    /// The customer left before being connected.
    Abandoned,
    /// Left the queue for its overflow target (voicemail, hang-up); moves between queues stay queued.
    Overflowed,
}

impl ContactState {
    /// Every state, in lifecycle order.
    pub const ALL: [ContactState; 6] = [
        ContactState::Queued,
        ContactState::Offered,
        ContactState::Connected,
        ContactState::Completed,
        ContactState::Abandoned,
        ContactState::Overflowed,
    ];

    /// The short stable code stored in the database.
    pub fn code(self) -> &'static str {
        match self {
            ContactState::Queued => "queued",
            ContactState::Offered => "offered",
            ContactState::Connected => "connected",
            ContactState::Completed => "completed",
            ContactState::Abandoned => "abandoned",
            ContactState::Overflowed => "overflowed",
        }
    }

    /// Whether the contact's life is over in this state.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            ContactState::Completed | ContactState::Abandoned | ContactState::Overflowed
        )
    }
}

impl FromStr for ContactState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ContactState::ALL
            .into_iter()
            .find(|st| st.code() == s)
            .ok_or_else(|| format!("unknown contact state {s:?}"))
    }
}

impl fmt::Display for ContactState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// How a contact's life in the router ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Served by an agent.
    Completed,
    /// The customer left first.
    Abandoned,
    /// Sent to an overflow target outside the queues.
    Overflowed,
}

impl Outcome {
    /// The final state this outcome stores.
    pub fn state(self) -> ContactState {
        match self {
            Outcome::Completed => ContactState::Completed,
            Outcome::Abandoned => ContactState::Abandoned,
            Outcome::Overflowed => ContactState::Overflowed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_codes_round_trip() {
        for state in ContactState::ALL {
            assert_eq!(state.code().parse::<ContactState>().unwrap(), state);
        }
        assert!("Queued ".parse::<ContactState>().is_err());
    }
}

/// How a contact ended, for its call detail record; stored by its short stable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    /// An agent answered and served it.
    Answered,
    /// The customer left before an agent answered.
    Abandoned,
    /// Admission refused it: the client had no trunk left.
    Rejected,
    /// It overflowed to voicemail.
    OverflowedVoicemail,
    /// It overflowed to a callback.
    OverflowedCallback,
    /// It overflowed to a hang-up (with an announcement, if the flow has one).
    OverflowedDisconnect,
    /// It was transferred out of Switchboard (to an outside number or system).
    Transferred,
    /// The switch or Switchboard failed to carry it.
    Failed,
}

impl Disposition {
    /// Every disposition.
    pub const ALL: [Disposition; 8] = [
        Disposition::Answered,
        Disposition::Abandoned,
        Disposition::Rejected,
        Disposition::OverflowedVoicemail,
        Disposition::OverflowedCallback,
        Disposition::OverflowedDisconnect,
        Disposition::Transferred,
        Disposition::Failed,
    ];

    /// The short stable code stored in the database and shown in the API.
    pub fn code(self) -> &'static str {
        match self {
            Disposition::Answered => "answered",
            Disposition::Abandoned => "abandoned",
            Disposition::Rejected => "rejected",
            Disposition::OverflowedVoicemail => "overflowed_voicemail",
            Disposition::OverflowedCallback => "overflowed_callback",
            Disposition::OverflowedDisconnect => "overflowed_disconnect",
            Disposition::Transferred => "transferred",
            Disposition::Failed => "failed",
        }
    }
}

impl fmt::Display for Disposition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Disposition {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Disposition::ALL
            .into_iter()
            .find(|d| d.code() == s)
            .ok_or_else(|| format!("unknown disposition {s:?}"))
    }
}
