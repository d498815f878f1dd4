//! The writer of what the controller writes down beside its routing decisions: call detail
//! records and agents' state changes.
//!
//! The contacts' own transitions are written before each step goes on (the durable router):
//! a restart rebuilds the queue from them. Records and agent states are history, read by people
//! and reports; the controller hands them to one task that writes them in order, so that taking
//! the next call event never waits for a disk sync. What is waiting when the writer wakes is
//! written together (one transaction per kind), so a busy center costs the store fewer syncs.

use tokio::sync::{mpsc, oneshot};

use crate::store::{AgentStateChange, MAX_AGENT_STATE_BATCH, NewCdr, Store, StoreError};

/// Notes waiting for the writer before the controller waits (backpressure).
pub const RECORD_QUEUE: usize = 4096;

/// Agent state changes kept while the store is down before the oldest are dropped.
pub const MAX_UNSTORED_STATES: usize = 10_000;

/// Notes the writer takes from its queue at once.
const NOTE_BATCH: usize = 256;

/// What the controller hands the writer.
enum Note {
    /// A contact's record.
    Cdr(Box<NewCdr>),
    /// Agents' state changes, in order.
    AgentStates(Vec<AgentStateChange>),
    /// Answered once every note before it was written (or given up on).
    Written(oneshot::Sender<()>),
}

/// The controller's end of the writer. Clones share the writer (and its order).
#[derive(Debug, Clone)]
pub struct RecordWriter {
    notes: mpsc::Sender<Note>,
    /// Whether this end handed over anything since it last waited for the writer.
    unsynced: bool,
}

impl RecordWriter {
    /// Starts the writing task on `store` (needs a tokio runtime).
    pub fn start(store: Store) -> RecordWriter {
        let (notes, inbox) = mpsc::channel(RECORD_QUEUE);
        tokio::spawn(write(store, inbox));
        RecordWriter {
            notes,
            unsynced: false,
        }
    }

    /// Hands a contact's record over.
    pub async fn cdr(&mut self, cdr: NewCdr) {
        self.note(Note::Cdr(Box::new(cdr))).await;
    }

    /// Hands agents' state changes over (nothing if empty).
    pub async fn agent_states(&mut self, changes: Vec<AgentStateChange>) {
        if !changes.is_empty() {
            self.note(Note::AgentStates(changes)).await;
        }
    }

    /// Waits until everything this end handed over was written (or given up on), so that what
    /// an API caller is told is done can be read back from the store. Returns at once when
    /// nothing was handed over since the last wait.
    pub async fn written(&mut self) {
        if !self.unsynced {
            return;
        }
        let (done, written) = oneshot::channel();
        self.note(Note::Written(done)).await;
        self.unsynced = false;
        // A writer that is gone has nothing left to write.
        let _ = written.await;
    }

    async fn note(&mut self, note: Note) {
        if self.notes.send(note).await.is_err() {
            tracing::error!("the writer of call records and agent states has stopped");
        }
        self.unsynced = true;
    }
}

/// Writes the notes as they come, until every sender is gone. Within what is waiting, agent
/// state changes go first, then records, so a record is never stored before a change noted
/// before it.
async fn write(store: Store, mut inbox: mpsc::Receiver<Note>) {
    let mut unstored: Vec<AgentStateChange> = Vec::new();
    let mut notes = Vec::with_capacity(NOTE_BATCH);
    while inbox.recv_many(&mut notes, NOTE_BATCH).await > 0 {
        let mut cdrs = Vec::new();
        let mut written = Vec::new();
        for note in notes.drain(..) {
            match note {
                Note::Cdr(cdr) => cdrs.push(*cdr),
                Note::AgentStates(changes) => unstored.extend(changes),
                Note::Written(done) => written.push(done),
            }
        }
        store_states(&store, &mut unstored).await;
        store_cdrs(&store, &cdrs).await;
        for done in written {
            let _ = done.send(());
        }
    }
}

/// Writes `cdrs` in one transaction; a batch the database fails is tried record by record, so
/// that one bad record does not take the others with it.
async fn store_cdrs(store: &Store, cdrs: &[NewCdr]) {
    if cdrs.is_empty() {
        return;
    }
    let answers = match store.insert_cdrs(cdrs).await {
        Ok(answers) => answers,
        Err(error) => {
            tracing::warn!(%error, "a batch of call records failed; writing them one by one");
            let mut answers = Vec::with_capacity(cdrs.len());
            for cdr in cdrs {
                answers.push(store.insert_cdr(cdr).await);
            }
            answers
        }
    };
    for (cdr, answer) in cdrs.iter().zip(answers) {
        match answer {
            Ok(_) => tracing::info!(
                contact = cdr.contact.0,
                disposition = cdr.disposition.code(),
                "call record written"
            ),
            // A replay after a restart: the first record stands.
            Err(StoreError::DuplicateCdr { .. }) => {
                tracing::debug!(contact = cdr.contact.0, "call record already written")
            }
            Err(error) => {
                tracing::error!(contact = cdr.contact.0, %error, "call record not written")
            }
        }
    }
}

/// Writes `changes` in batches; what the store could not take yet stays for the next try (the
/// oldest dropped beyond [`MAX_UNSTORED_STATES`]); changes it refuses are dropped alone.
async fn store_states(store: &Store, changes: &mut Vec<AgentStateChange>) {
    let mut stored = 0;
    let mut result = Ok(());
    for chunk in changes.chunks(MAX_AGENT_STATE_BATCH) {
        result = store.record_agent_states(chunk).await;
        if result.is_err() {
            break;
        }
        stored += chunk.len();
    }
    changes.drain(..stored);
    match result {
        Ok(()) => {}
        Err(StoreError::Invalid { .. }) => {
            // Retrying a batch the store refuses would block every later change: each of the
            // rest goes alone, and only what is refused is dropped.
            for change in std::mem::take(changes) {
                if let Err(error) = store
                    .record_agent_states(std::slice::from_ref(&change))
                    .await
                {
                    tracing::error!(%error, agent = change.agent, "agent state refused by the store; dropped");
                }
            }
        }
        Err(error) => {
            tracing::error!(%error, "agent states not stored yet; retrying with the next");
            // A store down for long must not grow memory without bound: the oldest go.
            let excess = changes.len().saturating_sub(MAX_UNSTORED_STATES);
            if excess > 0 {
                changes.drain(..excess);
                tracing::error!(
                    lost = excess,
                    "agent state changes dropped: the store is down"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::AgentState;
    use crate::model::{ContactId, Disposition, MediaType, Timestamp};
    use crate::store::CdrFilter;

    fn cdr(contact: u64) -> NewCdr {
        NewCdr {
            tenant: "acme".into(),
            contact: ContactId(contact),
            media: MediaType::Chat,
            queue: "sales".into(),
            caller: String::new(),
            called: String::new(),
            agent: None,
            handler: None,
            arrived_at: Timestamp(1_000_000),
            answered_at: None,
            ended_at: Timestamp(2_000_000),
            wait_ms: 1_000,
            talk_ms: 0,
            wrap_up_ms: 0,
            recording: None,
            disposition: Disposition::Abandoned,
            cause: None,
            attributes: Default::default(),
        }
    }

    fn change(agent: &str, state: AgentState, at: i64) -> AgentStateChange {
        AgentStateChange {
            tenant: "acme".into(),
            agent: agent.into(),
            state,
            reason: None,
            at: Timestamp(at),
        }
    }

    #[tokio::test]
    async fn what_was_handed_over_is_stored_once_written_returns() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        let mut writer = RecordWriter::start(store.clone());
        writer
            .agent_states(vec![
                change("ann", AgentState::Available, 1),
                change("ann", AgentState::Busy, 2),
            ])
            .await;
        for contact in 1..=300 {
            writer.cdr(cdr(contact)).await;
        }
        // A bad record (empty tenant) and a duplicate do not take the others with them.
        let mut bad = cdr(301);
        bad.tenant.clear();
        writer.cdr(bad).await;
        writer.cdr(cdr(7)).await;
        writer.cdr(cdr(302)).await;
        writer.written().await;

        let filter = CdrFilter {
            limit: Some(1000),
            ..CdrFilter::default()
        };
        let page = store.cdrs("acme", &filter).await.unwrap();
        let mut contacts: Vec<u64> = page.cdrs.iter().map(|c| c.record.contact.0).collect();
        contacts.sort_unstable();
        let expected: Vec<u64> = (1..=300).chain([302]).collect();
        assert_eq!(contacts, expected);
        let states = store
            .agent_states("acme", "ann", Timestamp(0), Timestamp(10), None)
            .await
            .unwrap();
        let states: Vec<AgentState> = states.iter().map(|c| c.state).collect();
        assert_eq!(states, [AgentState::Available, AgentState::Busy]);
    }

    #[tokio::test]
    async fn written_returns_at_once_when_nothing_was_handed_over() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        let mut writer = RecordWriter::start(store);
        tokio::time::timeout(std::time::Duration::from_secs(1), writer.written())
            .await
            .unwrap();
    }
}
