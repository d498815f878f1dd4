//! Agents (sans-IO): their states, heartbeats, breaks, after-call work and stay-on-line mode.
//!
//! The agent manager is the presence side of an agent; the router holds its slots. The
//! controller feeds the manager what agents do (log in, heartbeat, ready, break) and what the
//! router and the switch did with them (offered, connected, ended, missed), and applies the
//! manager's [`StateChange`]s: to the router's availability, to the store, to the agent portal.
//!
//! Timers (the seed's agent portal): a heartbeat older than the session timeout moves the agent
//! to lost connection, and a heartbeat afterwards brings it back to available; after the
//! lost-connection limit, or a break longer than the maximum break, the agent is logged out.
//! After-call work ends on its own after the wrap-up time, or earlier when the agent is ready.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::model::{AgentId, ContactId, Timestamp};

/// The reason of the change a login makes (logged out → unallocated).
pub const LOGGED_IN: &str = "logged in";
/// The reason of the change a logout makes when no other reason is given.
pub const LOGGED_OUT: &str = "logged out";

/// An agent's state, stored by its short stable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AgentState {
    /// Not logged in.
    LoggedOut,
    /// Logged in, not yet ready (the seed's "not allocated").
    Unallocated,
    /// Ready for contacts.
    Available,
    /// A contact is ringing the agent.
    Offered,
    /// With a contact.
    Busy,
    /// Wrapping up after a contact.
    AfterCallWork,
    /// Away, with a reason (a missed offer is a break with that reason).
    Break,
    /// The agent's portal stopped sending heartbeats.
    LostConnection,
}

impl AgentState {
    /// Every state.
    pub const ALL: [AgentState; 8] = [
        AgentState::LoggedOut,
        AgentState::Unallocated,
        AgentState::Available,
        AgentState::Offered,
        AgentState::Busy,
        AgentState::AfterCallWork,
        AgentState::Break,
        AgentState::LostConnection,
    ];

    /// The short stable code stored in the database.
    pub fn code(self) -> &'static str {
        match self {
            AgentState::LoggedOut => "logged-out",
            AgentState::Unallocated => "unallocated",
            AgentState::Available => "available",
            AgentState::Offered => "offered",
            AgentState::Busy => "busy",
            AgentState::AfterCallWork => "acw",
            AgentState::Break => "break",
            AgentState::LostConnection => "lost-connection",
        }
    }

    /// Whether the router may offer the agent new contacts in this state.
    pub fn takes_contacts(self) -> bool {
        matches!(
            self,
            AgentState::Available | AgentState::Offered | AgentState::Busy
        )
    }
}

impl fmt::Display for AgentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for AgentState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AgentState::ALL
            .into_iter()
            .find(|st| st.code() == s)
            .ok_or_else(|| format!("unknown agent state {s:?}"))
    }
}

/// Whether the agent's phone leg stays up between contacts (the seed's stay-on-line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum StayOnLine {
    /// Ring the agent's softphone for each contact; hang up after.
    #[default]
    Never,
    /// Keep the leg up while contacts are waiting for the agent's queues.
    WhenWorkWaiting,
    /// Keep the leg up from login to logout, parked with music between contacts.
    Always,
}

/// The agent manager's timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentTimers {
    /// How often the portal sends a heartbeat (reported to the portal).
    pub heartbeat_interval: Duration,
    /// A heartbeat older than this moves the agent to lost connection.
    pub session_timeout: Duration,
    /// Lost connection for longer than this logs the agent out.
    pub lost_connection_limit: Duration,
    /// A break longer than this logs the agent out.
    pub max_break: Duration,
    /// After-call work ends on its own after this (zero: no after-call work).
    pub wrap_up: Duration,
}

impl Default for AgentTimers {
    fn default() -> Self {
        AgentTimers {
            heartbeat_interval: Duration::from_secs(10),
            session_timeout: Duration::from_secs(60),
            lost_connection_limit: Duration::from_secs(15 * 60),
            max_break: Duration::from_secs(60 * 60),
            wrap_up: Duration::from_secs(30),
        }
    }
}

/// A change of an agent's state, with its reason, for the router, the store and the portal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateChange {
    /// The agent.
    pub agent: AgentId,
    /// The state it left.
    pub from: AgentState,
    /// The state it entered.
    pub to: AgentState,
    /// Why, in words (a break's reason, "missed offer: timed out", "heartbeat lost").
    pub reason: Option<String>,
    /// When.
    pub at: Timestamp,
}

/// An input the agent manager refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// The agent is not known.
    #[error("unknown {0}")]
    UnknownAgent(AgentId),
    /// The agent's state does not allow this.
    #[error("{agent} is {state}; cannot {action}")]
    NotNow {
        /// The agent.
        agent: AgentId,
        /// Its state.
        state: AgentState,
        /// What was asked.
        action: &'static str,
    },
    /// The agent still holds a contact (ringing or connected).
    #[error("{agent} still holds {contact}")]
    Holding {
        /// The agent.
        agent: AgentId,
        /// A contact it holds.
        contact: ContactId,
    },
    /// The agent does not hold this contact.
    #[error("{agent} does not hold {contact}")]
    NotHolding {
        /// The agent.
        agent: AgentId,
        /// The contact.
        contact: ContactId,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Deadline {
    Heartbeat,
    LostLimit,
    MaxBreak,
    WrapUp,
}

#[derive(Debug, Clone)]
struct Agent {
    state: AgentState,
    since: Timestamp,
    reason: Option<String>,
    last_heartbeat: Timestamp,
    stay_on_line: StayOnLine,
    /// Contacts ringing the agent.
    offered: Vec<ContactId>,
    /// Contacts connected to the agent.
    connected: Vec<ContactId>,
    /// A break asked for while busy: taken when the last contact ends.
    pending_break: Option<String>,
}

/// Agents' states and timers.
#[derive(Debug, Default)]
pub struct AgentManager {
    timers: AgentTimers,
    agents: FxHashMap<AgentId, Agent>,
    deadlines: BinaryHeap<Reverse<(Timestamp, AgentId, Deadline)>>,
    changes: VecDeque<StateChange>,
}

impl AgentManager {
    /// A manager with no agents.
    pub fn new(timers: AgentTimers) -> Self {
        AgentManager {
            timers,
            ..Self::default()
        }
    }

    /// Adds an agent (logged out); an agent already known keeps its state and takes the new
    /// stay-on-line mode (for its next login).
    pub fn add_agent(&mut self, agent: AgentId, stay_on_line: StayOnLine) {
        self.agents
            .entry(agent)
            .and_modify(|a| a.stay_on_line = stay_on_line)
            .or_insert(Agent {
                state: AgentState::LoggedOut,
                since: Timestamp::ZERO,
                reason: None,
                last_heartbeat: Timestamp::ZERO,
                stay_on_line,
                offered: Vec::new(),
                connected: Vec::new(),
                pending_break: None,
            });
    }

    /// Removes an agent that holds no contact: it is logged out first (with `reason`), so its
    /// last change says why it left. Refused while a contact rings it or is connected to it.
    pub fn remove_agent(
        &mut self,
        now: Timestamp,
        agent: AgentId,
        reason: &str,
    ) -> Result<(), AgentError> {
        self.advance(now);
        let a = self.agent(agent)?;
        if let Some(contact) = a.connected.first().or(a.offered.first()) {
            return Err(AgentError::Holding {
                agent,
                contact: *contact,
            });
        }
        self.set(now, agent, AgentState::LoggedOut, Some(reason.to_owned()));
        self.agents.remove(&agent);
        // Its deadlines stay in the heap and are skipped when they fire (`fire` finds no agent).
        Ok(())
    }

    /// An agent's state, since when, and why.
    pub fn state(&self, agent: AgentId) -> Option<(AgentState, Timestamp, Option<&str>)> {
        self.agents
            .get(&agent)
            .map(|a| (a.state, a.since, a.reason.as_deref()))
    }

    /// An agent's stay-on-line mode.
    pub fn stay_on_line(&self, agent: AgentId) -> Option<StayOnLine> {
        self.agents.get(&agent).map(|a| a.stay_on_line)
    }

    /// The timers in force.
    pub fn timers(&self) -> AgentTimers {
        self.timers
    }

    /// The next state change, if any.
    pub fn poll_change(&mut self) -> Option<StateChange> {
        self.changes.pop_front()
    }

    /// Every pending state change, in order.
    pub fn drain_changes(&mut self) -> impl Iterator<Item = StateChange> + '_ {
        self.changes.drain(..)
    }

    /// The next instant at which [`handle_timeout`](Self::handle_timeout) may have work.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.deadlines.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Logs the agent in: unallocated until it says it is ready.
    pub fn log_in(&mut self, now: Timestamp, agent: AgentId) -> Result<(), AgentError> {
        self.advance(now);
        let a = self.agent(agent)?;
        if a.state != AgentState::LoggedOut {
            return Ok(());
        }
        // The reason tells a login apart from other ways into unallocated in the stored history.
        self.set(
            now,
            agent,
            AgentState::Unallocated,
            Some(LOGGED_IN.to_owned()),
        );
        self.heartbeat(now, agent)
    }

    /// Logs the agent out (contacts it still holds stay with it until they end); the change's
    /// reason is `reason`, or [`LOGGED_OUT`].
    pub fn log_out(
        &mut self,
        now: Timestamp,
        agent: AgentId,
        reason: Option<&str>,
    ) -> Result<(), AgentError> {
        self.advance(now);
        self.agent(agent)?;
        let reason = reason.unwrap_or(LOGGED_OUT).to_owned();
        self.set(now, agent, AgentState::LoggedOut, Some(reason));
        Ok(())
    }

    /// A heartbeat from the agent's portal; brings a lost connection back to available.
    pub fn heartbeat(&mut self, now: Timestamp, agent: AgentId) -> Result<(), AgentError> {
        self.advance(now);
        let timeout = self.timers.session_timeout;
        let a = self.agent_mut(agent)?;
        if a.state == AgentState::LoggedOut {
            return Err(AgentError::NotNow {
                agent,
                state: a.state,
                action: "send heartbeats",
            });
        }
        a.last_heartbeat = now;
        let lost = a.state == AgentState::LostConnection;
        self.deadlines
            .push(Reverse((now.plus(timeout), agent, Deadline::Heartbeat)));
        if lost {
            let back = working_state(a_ref(&self.agents, agent));
            self.set(now, agent, back, Some("heartbeat resumed".to_owned()));
        }
        Ok(())
    }

    /// The agent is ready for contacts (from unallocated, a break or after-call work).
    pub fn ready(&mut self, now: Timestamp, agent: AgentId) -> Result<(), AgentError> {
        self.advance(now);
        let a = self.agent(agent)?;
        match a.state {
            AgentState::Unallocated | AgentState::Break | AgentState::AfterCallWork => {
                self.back_to_work(now, agent);
                Ok(())
            }
            AgentState::Available | AgentState::Offered | AgentState::Busy => Ok(()),
            state => Err(AgentError::NotNow {
                agent,
                state,
                action: "become ready",
            }),
        }
    }

    /// The agent takes a break with a reason; while it holds contacts, the break starts when
    /// the last one ends.
    pub fn start_break(
        &mut self,
        now: Timestamp,
        agent: AgentId,
        reason: &str,
    ) -> Result<(), AgentError> {
        self.advance(now);
        let a = self.agent_mut(agent)?;
        match a.state {
            AgentState::LoggedOut | AgentState::LostConnection => Err(AgentError::NotNow {
                agent,
                state: a.state,
                action: "take a break",
            }),
            AgentState::Offered | AgentState::Busy => {
                a.pending_break = Some(reason.to_owned());
                Ok(())
            }
            _ => {
                self.set(now, agent, AgentState::Break, Some(reason.to_owned()));
                Ok(())
            }
        }
    }

    /// The router offered the agent a contact.
    pub fn offered(
        &mut self,
        now: Timestamp,
        agent: AgentId,
        contact: ContactId,
    ) -> Result<(), AgentError> {
        self.advance(now);
        let a = self.agent_mut(agent)?;
        if a.state == AgentState::LoggedOut {
            return Err(AgentError::NotNow {
                agent,
                state: a.state,
                action: "be offered a contact",
            });
        }
        if !a.offered.contains(&contact) {
            a.offered.push(contact);
        }
        if a.state == AgentState::Available {
            self.set(now, agent, AgentState::Offered, None);
        }
        Ok(())
    }

    /// An offer to the agent ended without it answering: withdrawn (no blame) or missed (the
    /// agent is not ready, with `missed` as the reason).
    pub fn offer_ended(
        &mut self,
        now: Timestamp,
        agent: AgentId,
        contact: ContactId,
        missed: Option<&str>,
    ) -> Result<(), AgentError> {
        self.advance(now);
        let a = self.agent_mut(agent)?;
        let Some(i) = a.offered.iter().position(|c| *c == contact) else {
            return Err(AgentError::NotHolding { agent, contact });
        };
        a.offered.swap_remove(i);
        let idle = a.offered.is_empty() && a.connected.is_empty();
        let state = a.state;
        if let Some(reason) = missed {
            if matches!(state, AgentState::Offered | AgentState::Available)
                && a.connected.is_empty()
            {
                self.set(
                    now,
                    agent,
                    AgentState::Break,
                    Some(format!("missed offer: {reason}")),
                );
            }
        } else if idle && state == AgentState::Offered {
            self.back_to_work(now, agent);
        }
        Ok(())
    }

    /// The agent is connected to a contact it was offered.
    pub fn connected(
        &mut self,
        now: Timestamp,
        agent: AgentId,
        contact: ContactId,
    ) -> Result<(), AgentError> {
        self.advance(now);
        let a = self.agent_mut(agent)?;
        a.offered.retain(|c| *c != contact);
        if !a.connected.contains(&contact) {
            a.connected.push(contact);
        }
        // A contact answered is work, whatever the agent clicked meanwhile (an offer made just
        // before a break or wrap-up began can still be answered).
        if !matches!(a.state, AgentState::LoggedOut | AgentState::LostConnection) {
            self.set(now, agent, AgentState::Busy, None);
        }
        Ok(())
    }

    /// A contact of the agent ended; with the last one, after-call work starts (or a pending
    /// break, or availability when there is no wrap-up time).
    pub fn contact_ended(
        &mut self,
        now: Timestamp,
        agent: AgentId,
        contact: ContactId,
    ) -> Result<(), AgentError> {
        self.advance(now);
        let wrap_up = self.timers.wrap_up;
        let a = self.agent_mut(agent)?;
        let Some(i) = a.connected.iter().position(|c| *c == contact) else {
            return Err(AgentError::NotHolding { agent, contact });
        };
        a.connected.swap_remove(i);
        if !a.connected.is_empty() || a.state != AgentState::Busy {
            return Ok(());
        }
        if let Some(reason) = a.pending_break.take() {
            self.set(now, agent, AgentState::Break, Some(reason));
        } else if wrap_up.is_zero() {
            self.back_to_work(now, agent);
        } else {
            self.set(now, agent, AgentState::AfterCallWork, None);
        }
        Ok(())
    }

    /// Handles every deadline due at `now`.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.advance(now);
    }

    fn back_to_work(&mut self, now: Timestamp, agent: AgentId) {
        let Some(a) = self.agents.get(&agent) else {
            return;
        };
        let next = working_state(Some(a));
        self.set(now, agent, next, None);
    }

    fn advance(&mut self, now: Timestamp) {
        while let Some(Reverse((at, agent, deadline))) = self.deadlines.peek().copied() {
            if at > now {
                break;
            }
            self.deadlines.pop();
            self.fire(at, agent, deadline);
        }
    }

    fn fire(&mut self, at: Timestamp, agent: AgentId, deadline: Deadline) {
        let timers = self.timers;
        let Some(a) = self.agents.get(&agent) else {
            return;
        };
        match deadline {
            Deadline::Heartbeat => {
                let stale = a.last_heartbeat.plus(timers.session_timeout) <= at;
                if stale && !matches!(a.state, AgentState::LoggedOut | AgentState::LostConnection) {
                    self.set(
                        at,
                        agent,
                        AgentState::LostConnection,
                        Some("heartbeat lost".to_owned()),
                    );
                }
            }
            Deadline::LostLimit => {
                if a.state == AgentState::LostConnection
                    && a.since.plus(timers.lost_connection_limit) <= at
                {
                    self.set(
                        at,
                        agent,
                        AgentState::LoggedOut,
                        Some("connection lost too long".to_owned()),
                    );
                }
            }
            Deadline::MaxBreak => {
                if a.state == AgentState::Break && a.since.plus(timers.max_break) <= at {
                    self.set(
                        at,
                        agent,
                        AgentState::LoggedOut,
                        Some("break too long".to_owned()),
                    );
                }
            }
            Deadline::WrapUp => {
                if a.state == AgentState::AfterCallWork && a.since.plus(timers.wrap_up) <= at {
                    self.back_to_work(at, agent);
                }
            }
        }
    }

    /// Enters `to` (if it differs), records the change and sets the state's deadline.
    fn set(&mut self, now: Timestamp, agent: AgentId, to: AgentState, reason: Option<String>) {
        let timers = self.timers;
        let Some(a) = self.agents.get_mut(&agent) else {
            return;
        };
        if a.state == to {
            return;
        }
        let from = a.state;
        a.state = to;
        a.since = now;
        a.reason = reason.clone();
        if to == AgentState::LoggedOut {
            a.pending_break = None;
            a.offered.clear();
        }
        let deadline = match to {
            AgentState::LostConnection => Some((timers.lost_connection_limit, Deadline::LostLimit)),
            AgentState::Break => Some((timers.max_break, Deadline::MaxBreak)),
            AgentState::AfterCallWork => Some((timers.wrap_up, Deadline::WrapUp)),
            _ => None,
        };
        if let Some((after, kind)) = deadline {
            self.deadlines.push(Reverse((now.plus(after), agent, kind)));
        }
        self.changes.push_back(StateChange {
            agent,
            from,
            to,
            reason,
            at: now,
        });
    }

    fn agent(&self, agent: AgentId) -> Result<&Agent, AgentError> {
        self.agents
            .get(&agent)
            .ok_or(AgentError::UnknownAgent(agent))
    }

    fn agent_mut(&mut self, agent: AgentId) -> Result<&mut Agent, AgentError> {
        self.agents
            .get_mut(&agent)
            .ok_or(AgentError::UnknownAgent(agent))
    }
}

/// The state of a ready agent: busy while it holds contacts, offered while one rings.
fn working_state(agent: Option<&Agent>) -> AgentState {
    match agent {
        Some(a) if !a.connected.is_empty() => AgentState::Busy,
        Some(a) if !a.offered.is_empty() => AgentState::Offered,
        _ => AgentState::Available,
    }
}

fn a_ref(agents: &FxHashMap<AgentId, Agent>, agent: AgentId) -> Option<&Agent> {
    agents.get(&agent)
}

#[cfg(test)]
mod tests;
