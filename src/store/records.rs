//! What the store takes and gives back: contacts, transitions, events, call detail records,
//! agent state changes, catalog items and credentials.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::agents::AgentState;
use crate::media::HandlerId;
pub use crate::model::Disposition;
use crate::model::{ContactId, ContactState, MediaType, Priority, Timestamp};

/// A contact as it arrives, before the store gives it an id. It is stored in state `queued`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewContact {
    /// The client (tenant) that owns the contact: 1 to 200 characters.
    pub tenant: String,
    /// The queue it waits in: 1 to 200 characters.
    pub queue: String,
    /// Its media type.
    pub media: MediaType,
    /// Its priority; higher is served first.
    pub priority: Priority,
    /// When it arrived; its waiting time counts from here, across restarts.
    pub arrived_at: Timestamp,
    /// Routing attributes (`language` → `es`): at most 64, keys 1 to 200 characters,
    /// values at most 1,000 characters.
    pub attributes: BTreeMap<String, String>,
    /// The router's matching criteria as JSON text, stored verbatim (at most 64 KiB).
    pub criteria_json: String,
    /// The tenant's reference for the customer, if known (for affinity): 1 to 200 characters.
    pub customer: Option<String>,
}

/// One step in a contact's life, written by [`super::Store::record`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The contact that moves.
    pub contact: ContactId,
    /// The state it moves to (may equal the current one, e.g. a move to another queue).
    pub state: ContactState,
    /// When it happened.
    pub at: Timestamp,
    /// The agent involved. `None` keeps the contact's agent, except that a move to `queued`
    /// clears it (the contact waits for anyone again).
    pub agent: Option<String>,
    /// A move to another queue.
    pub queue: Option<String>,
    /// A change of media type (e.g. conversion to a callback).
    pub media: Option<MediaType>,
    /// A change of priority.
    pub priority: Option<Priority>,
    /// Free text for the event log (a reason, a handler's cause code): at most 1,000 characters.
    pub detail: Option<String>,
    /// New routing attributes, replacing the stored ones (what a flow's menus collected); the
    /// same limits as [`NewContact::attributes`].
    pub attributes: Option<BTreeMap<String, String>>,
}

impl Transition {
    /// A transition of `contact` to `state` at `at` that changes nothing else.
    pub fn new(contact: ContactId, state: ContactState, at: Timestamp) -> Self {
        Transition {
            contact,
            state,
            at,
            agent: None,
            queue: None,
            media: None,
            priority: None,
            detail: None,
            attributes: None,
        }
    }
}

/// A contact as stored: every column of its row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredContact {
    /// Its id, assigned by the store.
    pub id: ContactId,
    /// The client that owns it.
    pub tenant: String,
    /// The queue it is (or was last) in.
    pub queue: String,
    /// Its media type now.
    pub media: MediaType,
    /// Its priority now.
    pub priority: Priority,
    /// When it arrived.
    pub arrived_at: Timestamp,
    /// Its routing attributes.
    pub attributes: BTreeMap<String, String>,
    /// The router's matching criteria, verbatim.
    pub criteria_json: String,
    /// The tenant's customer reference, if known.
    pub customer: Option<String>,
    /// Its state now.
    pub state: ContactState,
    /// Its agent now, if any.
    pub agent: Option<String>,
    /// When it was first connected to an agent.
    pub connected_at: Option<Timestamp>,
    /// When it reached a final state.
    pub ended_at: Option<Timestamp>,
    /// When its row last changed.
    pub updated_at: Timestamp,
}

/// One entry of a contact's event log: the state it entered and what it looked like after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactEvent {
    /// The contact.
    pub contact: ContactId,
    /// The state it entered.
    pub state: ContactState,
    /// When.
    pub at: Timestamp,
    /// Its agent after the event.
    pub agent: Option<String>,
    /// Its queue after the event.
    pub queue: String,
    /// Its media type after the event.
    pub media: MediaType,
    /// Its priority after the event.
    pub priority: Priority,
    /// The transition's free text.
    pub detail: Option<String>,
}

/// The agent who last served a customer: one row of [`super::Store::last_agents`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastAgent {
    /// The client.
    pub tenant: String,
    /// The client's customer reference.
    pub customer: String,
    /// The agent of the customer's most recent connection.
    pub agent: String,
    /// When that connection was made.
    pub at: Timestamp,
}

/// How many contacts are in each state (zero where none are).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StateCounts([u64; ContactState::ALL.len()]);

impl StateCounts {
    /// The number of contacts in `state`.
    pub fn get(&self, state: ContactState) -> u64 {
        self.0[slot(state)]
    }

    /// Every state with its count, in lifecycle order.
    pub fn iter(&self) -> impl Iterator<Item = (ContactState, u64)> + '_ {
        ContactState::ALL
            .into_iter()
            .map(|state| (state, self.get(state)))
    }

    /// The number of contacts in all states.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// The number of contacts not in a final state.
    pub fn open(&self) -> u64 {
        self.iter()
            .filter(|(state, _)| !state.is_final())
            .map(|(_, n)| n)
            .sum()
    }

    /// Adds `n` contacts in `state`.
    pub(crate) fn add(&mut self, state: ContactState, n: u64) {
        self.0[slot(state)] += n;
    }
}

/// The index of `state` in [`ContactState::ALL`] (which lists the states in declaration order).
fn slot(state: ContactState) -> usize {
    state as usize
}

// ---------------------------------------------------------------------------------------------
// Call detail records

/// A call detail record as the controller writes it when a contact ends
/// ([`super::Store::insert_cdr`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCdr {
    /// The client (tenant) that owns the contact: 1 to 200 characters.
    pub tenant: String,
    /// The contact; one CDR per contact.
    pub contact: ContactId,
    /// Its media type (when it ended).
    pub media: MediaType,
    /// The queue it was (last) in: 1 to 200 characters.
    pub queue: String,
    /// Who called ("from"): a number, SIP URI, address or chat handle; at most 256 characters,
    /// empty if unknown.
    pub caller: String,
    /// What was called ("to"): at most 256 characters, empty if unknown.
    pub called: String,
    /// The agent who served it, if any: 1 to 200 characters.
    pub agent: Option<String>,
    /// The media handler that carried it, if any.
    pub handler: Option<HandlerId>,
    /// When it arrived.
    pub arrived_at: Timestamp,
    /// When an agent answered, if one did: not before `arrived_at`, not after `ended_at`.
    pub answered_at: Option<Timestamp>,
    /// When it ended: not before `arrived_at`.
    pub ended_at: Timestamp,
    /// Milliseconds it waited for an agent.
    pub wait_ms: u64,
    /// Milliseconds it talked (or chatted) with agents.
    pub talk_ms: u64,
    /// Milliseconds of after-call work it caused.
    pub wrap_up_ms: u64,
    /// Where its recording is, on the media handler: at most 1,024 characters.
    pub recording: Option<String>,
    /// How it ended.
    pub disposition: Disposition,
    /// Why, in words: an admission explanation, a hangup cause (`NORMAL_CLEARING`); at most
    /// 1,000 characters.
    pub cause: Option<String>,
    /// The contact's attributes when it ended (the caller's number, what it chose in the flow's
    /// menus); the same limits as [`NewContact::attributes`].
    pub attributes: BTreeMap<String, String>,
}

/// A stored call detail record: what was written, with the id the store gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cdr {
    /// Its id, assigned by the store (ids increase).
    pub id: CdrId,
    /// Everything that was written.
    pub record: NewCdr,
}

impl Cdr {
    /// The cursor that continues a listing after this record.
    pub fn cursor(&self) -> CdrCursor {
        CdrCursor {
            ended_at: self.record.ended_at,
            id: self.id,
        }
    }
}

/// The id of a stored call detail record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CdrId(pub u64);

impl fmt::Display for CdrId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cdr#{}", self.0)
    }
}

/// Where a listing of CDRs stopped: the (end time, id) of its last record. Its text form
/// `<ended_at micros>.<id>` (e.g. `1700000000000000.42`) is what the API hands out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CdrCursor {
    /// The end time of the last record seen.
    pub ended_at: Timestamp,
    /// The id of the last record seen.
    pub id: CdrId,
}

impl fmt::Display for CdrCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.ended_at.0, self.id.0)
    }
}

impl FromStr for CdrCursor {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("cursor {s:?} is not <micros>.<id>");
        let (ended, id) = s.split_once('.').ok_or_else(bad)?;
        Ok(CdrCursor {
            ended_at: Timestamp(ended.parse().map_err(|_| bad())?),
            id: CdrId(id.parse().map_err(|_| bad())?),
        })
    }
}

/// Which CDRs [`super::Store::cdrs`] lists; the default lists the first 100 of all.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CdrFilter {
    /// Only CDRs that ended at or after this instant.
    pub from: Option<Timestamp>,
    /// Only CDRs that ended before this instant.
    pub to: Option<Timestamp>,
    /// Only this queue.
    pub queue: Option<String>,
    /// Only this agent.
    pub agent: Option<String>,
    /// Only this disposition.
    pub disposition: Option<Disposition>,
    /// At most this many: 1 to [`MAX_LIST_LIMIT`](super::MAX_LIST_LIMIT), default
    /// [`DEFAULT_LIST_LIMIT`](super::DEFAULT_LIST_LIMIT).
    pub limit: Option<u32>,
    /// Only CDRs after this cursor (the `next` of the previous page).
    pub after: Option<CdrCursor>,
}

/// One page of CDRs, ordered by end time then id.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CdrPage {
    /// The records.
    pub cdrs: Vec<Cdr>,
    /// Where the next page starts, if this one was full (there may be more).
    pub next: Option<CdrCursor>,
}

// ---------------------------------------------------------------------------------------------
// Agent state history

/// One change of an agent's state, as the agent manager reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentStateChange {
    /// The client (tenant) the agent works for: 1 to 200 characters.
    pub tenant: String,
    /// The agent's name: 1 to 200 characters.
    pub agent: String,
    /// The state entered.
    pub state: AgentState,
    /// Why (a break's reason, "missed offer"): at most 1,000 characters.
    pub reason: Option<String>,
    /// When.
    pub at: Timestamp,
}

/// How long each agent spent in each state over a window ([`super::Store::agent_state_totals`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentStateTotals {
    /// The agent.
    pub agent: String,
    /// Time per state, indexed like [`AgentState::ALL`].
    durations: [Duration; AgentState::ALL.len()],
}

impl AgentStateTotals {
    /// No time in any state yet.
    pub(crate) fn new(agent: String) -> Self {
        AgentStateTotals {
            agent,
            durations: [Duration::ZERO; AgentState::ALL.len()],
        }
    }

    /// Time spent in `state`.
    pub fn get(&self, state: AgentState) -> Duration {
        self.durations[agent_slot(state)]
    }

    /// Every state with its time, in [`AgentState::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (AgentState, Duration)> + '_ {
        AgentState::ALL
            .into_iter()
            .map(|state| (state, self.get(state)))
    }

    /// Time accounted for in all states.
    pub fn total(&self) -> Duration {
        self.durations.iter().sum()
    }

    /// Adds `d` in `state`.
    pub(crate) fn add(&mut self, state: AgentState, d: Duration) {
        let slot = &mut self.durations[agent_slot(state)];
        *slot = slot.saturating_add(d);
    }
}

/// The index of `state` in [`AgentState::ALL`] (which lists the states in declaration order).
fn agent_slot(state: AgentState) -> usize {
    state as usize
}

// ---------------------------------------------------------------------------------------------
// Catalog items

/// What a [`CatalogItem`] describes; stored by its short stable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CatalogKind {
    /// A queue (its definition is a queue setup as JSON).
    Queue,
    /// An agent (an agent setup as JSON).
    Agent,
    /// The flow of the queue the item is named after (a flow file as JSON).
    Flow,
    /// A called number (`{"queue": …}`: the queue it reaches).
    Number,
    /// A client's trunk rules (`{"trunk_ratio": …, "after_hours_trunks": …}`), set by the
    /// operator; named after the client.
    Client,
}

impl CatalogKind {
    /// Every kind.
    pub const ALL: [CatalogKind; 5] = [
        CatalogKind::Queue,
        CatalogKind::Agent,
        CatalogKind::Flow,
        CatalogKind::Number,
        CatalogKind::Client,
    ];

    /// The short stable code stored in the database.
    pub fn code(self) -> &'static str {
        match self {
            CatalogKind::Queue => "queue",
            CatalogKind::Agent => "agent",
            CatalogKind::Flow => "flow",
            CatalogKind::Number => "number",
            CatalogKind::Client => "client",
        }
    }
}

impl fmt::Display for CatalogKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for CatalogKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CatalogKind::ALL
            .into_iter()
            .find(|k| k.code() == s)
            .ok_or_else(|| {
                format!(
                    "unknown catalog kind {s:?} (expected queue, agent, flow, number or client)"
                )
            })
    }
}

/// A queue, agent or flow as an administrator last left it through the API
/// ([`super::Store::put_catalog_item`]); laid over the config file's catalog at startup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogItem {
    /// What it is.
    pub kind: CatalogKind,
    /// The queue's or agent's name (a flow: its queue's name): 1 to 200 characters.
    pub name: String,
    /// The client that owns it: 1 to 200 characters.
    pub tenant: String,
    /// Its definition as JSON text (at most 64 KiB); `None`: deleted.
    pub definition: Option<String>,
    /// When it was last written.
    pub updated_at: Timestamp,
}

// ---------------------------------------------------------------------------------------------
// Credentials

/// What a credential may do in the HTTP API; stored by its short stable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A client's own campaigns, contacts and records.
    Client,
    /// A client's queues and agents, live, besides what a client may do.
    Supervisor,
    /// Everything of its own client: credentials, queues, agents and flows.
    Admin,
    /// The installation's operator, above the clients: creates clients, sets their trunk rules
    /// (R, T) and their first keys, and reads none of their data. Not ordered above [`Admin`]
    /// for a client's data: [`Caller::require`](crate::web::Caller::require) keeps them apart.
    ///
    /// [`Admin`]: Role::Admin
    Operator,
}

impl Role {
    /// Every role, least powerful first.
    pub const ALL: [Role; 4] = [Role::Client, Role::Supervisor, Role::Admin, Role::Operator];

    /// The short stable code stored in the database.
    pub fn code(self) -> &'static str {
        match self {
            Role::Client => "client",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
            Role::Operator => "operator",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.code() == s)
            .ok_or_else(|| {
                format!("unknown role {s:?} (expected client, supervisor, admin or operator)")
            })
    }
}

/// The public id of an API key: 16 lowercase hexadecimal digits, the middle of
/// `sb_<key id>_<secret>`. Safe to show and log.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct KeyId(pub(crate) String);

impl KeyId {
    /// Hexadecimal digits in a key id.
    pub const LEN: usize = 16;

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `s` has the form of a key id.
    pub(crate) fn is_valid(s: &str) -> bool {
        s.len() == Self::LEN && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for KeyId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if KeyId::is_valid(s) {
            Ok(KeyId(s.to_owned()))
        } else {
            Err(format!(
                "key id {:?} is not {} lowercase hexadecimal digits",
                s.chars().take(40).collect::<String>(),
                KeyId::LEN
            ))
        }
    }
}

impl TryFrom<String> for KeyId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<KeyId> for String {
    fn from(id: KeyId) -> String {
        id.0
    }
}

/// A secret to be shown once (a new API key's token): its `Debug` does not print it.
#[derive(Clone, PartialEq, Eq)]
pub struct ShownOnce(pub(crate) String);

impl ShownOnce {
    /// The secret itself, to hand to its owner.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ShownOnce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ShownOnce(***)")
    }
}

/// A new API key: its public id and the token (`sb_<key id>_<secret>`) its owner presents.
/// The store keeps only a hash of the secret: the token cannot be shown again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiKey {
    /// The public id.
    pub key_id: KeyId,
    /// The whole token to present, shown once.
    pub token: ShownOnce,
}

/// An API key as listed: everything but its secret and hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyInfo {
    /// The public id.
    pub key_id: KeyId,
    /// The client it belongs to.
    pub tenant: String,
    /// Its owner's label for it.
    pub label: String,
    /// What it may do.
    pub role: Role,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it was revoked, if it was.
    pub revoked_at: Option<Timestamp>,
}

/// Who presented a valid credential: what [`super::Store::verify_api_key`] and
/// [`super::Store::verify_web_user`] return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The client it acts for.
    pub tenant: String,
    /// What it may do.
    pub role: Role,
    /// Which credential: the API key's id, or the web user's name.
    pub credential: Credential,
}

/// Which credential a [`Principal`] presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// An API key.
    ApiKey(KeyId),
    /// A web user's name and password.
    WebUser(String),
}

/// A web user as listed: everything but the password hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebUserInfo {
    /// The sign-in name, unique across tenants.
    pub username: String,
    /// The client the user works for.
    pub tenant: String,
    /// What the user may do.
    pub role: Role,
    /// When the user was created.
    pub created_at: Timestamp,
    /// When the user was disabled, if they were.
    pub disabled_at: Option<Timestamp>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_slots_follow_the_lifecycle_order() {
        for (i, state) in ContactState::ALL.into_iter().enumerate() {
            assert_eq!(slot(state), i, "{state}");
        }
    }

    #[test]
    fn counts_add_up() {
        let mut counts = StateCounts::default();
        counts.add(ContactState::Queued, 3);
        counts.add(ContactState::Completed, 2);
        assert_eq!(counts.get(ContactState::Queued), 3);
        assert_eq!(counts.get(ContactState::Offered), 0);
        assert_eq!(counts.total(), 5);
        assert_eq!(counts.open(), 3);
    }

    #[test]
    fn agent_slots_follow_the_declaration_order() {
        for (i, state) in AgentState::ALL.into_iter().enumerate() {
            assert_eq!(agent_slot(state), i, "{state}");
        }
    }

    #[test]
    fn codes_round_trip() {
        for d in Disposition::ALL {
            assert_eq!(d.code().parse::<Disposition>(), Ok(d));
        }
        for r in Role::ALL {
            assert_eq!(r.code().parse::<Role>(), Ok(r));
        }
        for k in CatalogKind::ALL {
            assert_eq!(k.code().parse::<CatalogKind>(), Ok(k));
        }
        assert!("Answered".parse::<Disposition>().is_err());
    }

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let cursor = CdrCursor {
            ended_at: Timestamp(-5),
            id: CdrId(42),
        };
        assert_eq!(cursor.to_string().parse(), Ok(cursor));
        for bad in ["", "1", "1.", ".1", "a.1", "1.-1", "1.2.3"] {
            assert!(bad.parse::<CdrCursor>().is_err(), "{bad}");
        }
    }

    #[test]
    fn key_ids_are_sixteen_lowercase_hex_digits() {
        assert!("0123456789abcdef".parse::<KeyId>().is_ok());
        for bad in [
            "",
            "0123456789ABCDEF",
            "0123456789abcde",
            "0123456789abcdef0",
            "0123456789abcdeg",
        ] {
            assert!(bad.parse::<KeyId>().is_err(), "{bad}");
        }
        let token = ShownOnce("sb_x_secret".to_owned());
        assert!(!format!("{token:?}").contains("secret"));
    }
}
