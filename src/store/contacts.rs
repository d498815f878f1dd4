//! Contacts and their event log.
//!
//! Every statement here runs unchanged on SQLite and PostgreSQL. The final states appear in the
//! SQL as literals (`'completed', 'abandoned', 'overflowed'`, as in the migrations' partial
//! index); a test below keeps them in step with [`ContactState::is_final`].

use std::collections::BTreeMap;

use sqlx::FromRow;

use crate::model::{ContactId, ContactState, MediaType, Priority, Timestamp};

use super::records::{ContactEvent, LastAgent, NewContact, StateCounts, StoredContact, Transition};
use super::{Store, StoreError, on_pool, validate};

/// The columns of `contacts`, in [`ContactRow`]'s order.
macro_rules! contact_columns {
    () => {
        "id, tenant, queue, media, priority, arrived_at, attributes, criteria_json, customer, \
         state, agent, connected_at, ended_at, updated_at"
    };
}

const INSERT_CONTACT: &str = "\
    INSERT INTO contacts (tenant, queue, media, priority, arrived_at, attributes, criteria_json, \
                          customer, state, updated_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'queued', $5) \
    RETURNING id";

const INSERT_EVENT: &str = "\
    INSERT INTO contact_events (contact_id, state, at, agent, queue, media, priority, detail) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

/// Moves a contact that is not in a final state; no row changes if it is final or missing.
/// The guard and the write are one statement, so two writers cannot both move a contact out of
/// the same state; the database's trigger (migration 0004) appends the event row from the
/// contact's new values in the same statement.
const APPLY_TRANSITION: &str = "\
    UPDATE contacts SET \
        state = $2, \
        agent = CASE WHEN $2 = 'queued' THEN $3 ELSE COALESCE($3, agent) END, \
        queue = COALESCE($4, queue), \
        media = COALESCE($5, media), \
        priority = COALESCE($6, priority), \
        attributes = COALESCE($8, attributes), \
        updated_at = $7, \
        connected_at = CASE WHEN $2 = 'connected' THEN COALESCE(connected_at, $7) \
                            ELSE connected_at END, \
        ended_at = CASE WHEN $2 IN ('completed', 'abandoned', 'overflowed') THEN $7 \
                        ELSE ended_at END, \
        last_detail = $9 \
    WHERE id = $1 AND state NOT IN ('completed', 'abandoned', 'overflowed')";

const CONTACT_STATE: &str = "SELECT state FROM contacts WHERE id = $1";

const OPEN_CONTACTS: &str = concat!(
    "SELECT ",
    contact_columns!(),
    " FROM contacts \
      WHERE state NOT IN ('completed', 'abandoned', 'overflowed') \
      ORDER BY priority DESC, arrived_at ASC, id ASC"
);

const CONTACT_BY_ID: &str = concat!(
    "SELECT ",
    contact_columns!(),
    " FROM contacts WHERE id = $1"
);

const EVENTS_OF_CONTACT: &str = "\
    SELECT id, contact_id, state, at, agent, queue, media, priority, detail \
    FROM contact_events WHERE contact_id = $1 ORDER BY id";

/// Per (tenant, customer), the latest connection since `$1`; ties on time go to the later event.
const LAST_AGENTS: &str = "\
    SELECT tenant, customer, agent, at FROM ( \
        SELECT c.tenant, c.customer, e.agent, e.at, \
               ROW_NUMBER() OVER (PARTITION BY c.tenant, c.customer \
                                  ORDER BY e.at DESC, e.id DESC) AS recency \
        FROM contact_events e JOIN contacts c ON c.id = e.contact_id \
        WHERE e.state = 'connected' AND e.at >= $1 \
          AND e.agent IS NOT NULL AND c.customer IS NOT NULL \
    ) latest WHERE recency = 1";

const COUNTS_BY_STATE: &str =
    "SELECT state, COUNT(*) AS n FROM contacts WHERE tenant = $1 GROUP BY state";

/// A `contacts` row as the driver reads it.
#[derive(FromRow)]
struct ContactRow {
    id: i64,
    tenant: String,
    queue: String,
    media: String,
    priority: i32,
    arrived_at: i64,
    attributes: String,
    criteria_json: String,
    customer: Option<String>,
    state: String,
    agent: Option<String>,
    connected_at: Option<i64>,
    ended_at: Option<i64>,
    updated_at: i64,
}

/// A `contact_events` row as the driver reads it.
#[derive(FromRow)]
struct EventRow {
    id: i64,
    contact_id: i64,
    state: String,
    at: i64,
    agent: Option<String>,
    queue: String,
    media: String,
    priority: i32,
    detail: Option<String>,
}

/// Binds [`APPLY_TRANSITION`] for transition `t` of contact `id` (a macro: the query's
/// executor type differs per database and per transaction).
macro_rules! apply_transition {
    ($id:expr, $t:expr, $attributes:expr) => {{
        let (id, t, attributes): (i64, &Transition, &Option<String>) = ($id, $t, $attributes);
        sqlx::query(APPLY_TRANSITION)
            .bind(id)
            .bind(t.state.code())
            .bind(&t.agent)
            .bind(&t.queue)
            .bind(t.media.map(MediaType::code))
            .bind(t.priority.map(|p| p.0))
            .bind(t.at.0)
            .bind(attributes)
            .bind(&t.detail)
    }};
}

/// Why a transition moved nothing: its contact is missing, or (with its stored state code)
/// already final.
fn refusal(t: &Transition, current: Option<(i64, String)>) -> StoreError {
    match current {
        None => StoreError::UnknownContact {
            contact: t.contact,
            requested: t.state,
        },
        Some((id, code)) => match state_code("contacts", id, &code) {
            Ok(current) => StoreError::FinalState {
                contact: t.contact,
                current,
                requested: t.state,
            },
            Err(error) => error,
        },
    }
}

#[derive(FromRow)]
struct LastAgentRow {
    tenant: String,
    customer: String,
    agent: String,
    at: i64,
}

#[derive(FromRow)]
struct StateCountRow {
    state: String,
    n: i64,
}

impl Store {
    /// Stores a new contact in state `queued`, with its first event; returns the id the store
    /// assigned (ids increase).
    pub async fn insert_contact(&self, new: &NewContact) -> Result<ContactId, StoreError> {
        validate::new_contact(new)?;
        let attributes = serde_json::to_string(&new.attributes)
            .map_err(|e| StoreError::invalid("attributes", e.to_string()))?;
        let failed = |e| {
            StoreError::database(
                format!(
                    "inserting a contact for tenant {:?} in queue {:?}",
                    new.tenant, new.queue
                ),
                e,
            )
        };
        let id: i64 = on_pool!(self, |pool| {
            let mut tx = pool.begin().await.map_err(failed)?;
            let id: i64 = sqlx::query_scalar(INSERT_CONTACT)
                .bind(&new.tenant)
                .bind(&new.queue)
                .bind(new.media.code())
                .bind(new.priority.0)
                .bind(new.arrived_at.0)
                .bind(&attributes)
                .bind(&new.criteria_json)
                .bind(&new.customer)
                .fetch_one(&mut *tx)
                .await
                .map_err(failed)?;
            sqlx::query(INSERT_EVENT)
                .bind(id)
                .bind(ContactState::Queued.code())
                .bind(new.arrived_at.0)
                .bind(None::<String>)
                .bind(&new.queue)
                .bind(new.media.code())
                .bind(new.priority.0)
                .bind(None::<String>)
                .execute(&mut *tx)
                .await
                .map_err(failed)?;
            tx.commit().await.map_err(failed)?;
            id
        });
        contact_id("contacts", id)
    }

    /// Writes a batch of transitions in one transaction: all of them, or none.
    ///
    /// Each moves its contact (state, agent, and queue, media, priority or attributes when
    /// given; `connected_at` on its first connection, `ended_at` on a final state) and appends an
    /// event. The batch fails, and nothing of it is written, if any transition names a contact
    /// that does not exist or one already in a final state. Transitions apply in order, so a
    /// batch may move one contact several times.
    pub async fn record(&self, transitions: &[Transition]) -> Result<(), StoreError> {
        for (index, transition) in transitions.iter().enumerate() {
            validate::transition(index, transition)?;
        }
        if transitions.is_empty() {
            return Ok(());
        }
        let failed = |t: &Transition, e| {
            StoreError::database(
                format!("recording the transition of {} to {}", t.contact, t.state),
                e,
            )
        };
        let batch_failed = |e| {
            StoreError::database(
                format!("writing a batch of {} transitions", transitions.len()),
                e,
            )
        };
        // Serialized before the transaction: a map of strings always serializes.
        let attributes: Vec<Option<String>> = transitions
            .iter()
            .map(|t| {
                t.attributes
                    .as_ref()
                    .map(|a| serde_json::to_string(a).unwrap_or_else(|_| "{}".to_owned()))
            })
            .collect();
        // Ids beyond i64 cannot have been assigned.
        let ids: Vec<Option<i64>> = transitions
            .iter()
            .map(|t| i64::try_from(t.contact.0).ok())
            .collect();
        on_pool!(self, |pool| {
            if let ([t], [id], [attributes]) = (transitions, ids.as_slice(), attributes.as_slice())
            {
                // One step: one statement, atomic with the event its trigger writes.
                let Some(id) = *id else {
                    return Err(refusal(t, None));
                };
                let moved = apply_transition!(id, t, attributes)
                    .execute(pool)
                    .await
                    .map_err(|e| failed(t, e))?
                    .rows_affected();
                if moved == 0 {
                    let current: Option<String> = sqlx::query_scalar(CONTACT_STATE)
                        .bind(id)
                        .fetch_optional(pool)
                        .await
                        .map_err(|e| failed(t, e))?;
                    return Err(refusal(t, current.map(|c| (id, c))));
                }
                return Ok(());
            }
            let mut tx = pool.begin().await.map_err(batch_failed)?;
            for ((t, id), attributes) in transitions.iter().zip(&ids).zip(&attributes) {
                let Some(id) = *id else {
                    return Err(refusal(t, None));
                };
                let moved = apply_transition!(id, t, attributes)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| failed(t, e))?
                    .rows_affected();
                if moved == 0 {
                    // Say why; dropping `tx` rolls the batch back.
                    let current: Option<String> = sqlx::query_scalar(CONTACT_STATE)
                        .bind(id)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(|e| failed(t, e))?;
                    return Err(refusal(t, current.map(|c| (id, c))));
                }
            }
            tx.commit().await.map_err(batch_failed)?;
        });
        Ok(())
    }

    /// Every contact not in a final state, in serving order: priority (highest first), then
    /// arrival (earliest first), then id. This is how the queue is rebuilt after a restart.
    pub async fn open_contacts(&self) -> Result<Vec<StoredContact>, StoreError> {
        let rows: Vec<ContactRow> = on_pool!(self, |pool| {
            sqlx::query_as(OPEN_CONTACTS)
                .fetch_all(pool)
                .await
                .map_err(|e| StoreError::database("listing open contacts", e))?
        });
        rows.into_iter().map(ContactRow::into_contact).collect()
    }

    /// The contact with id `id`, if the store holds it.
    pub async fn contact(&self, id: ContactId) -> Result<Option<StoredContact>, StoreError> {
        let Ok(key) = i64::try_from(id.0) else {
            return Ok(None);
        };
        let row: Option<ContactRow> = on_pool!(self, |pool| {
            sqlx::query_as(CONTACT_BY_ID)
                .bind(key)
                .fetch_optional(pool)
                .await
                .map_err(|e| StoreError::database(format!("reading {id}"), e))?
        });
        row.map(ContactRow::into_contact).transpose()
    }

    /// The events of contact `id`, oldest first (empty if there is no such contact).
    pub async fn contact_events(&self, id: ContactId) -> Result<Vec<ContactEvent>, StoreError> {
        let Ok(key) = i64::try_from(id.0) else {
            return Ok(Vec::new());
        };
        let rows: Vec<EventRow> = on_pool!(self, |pool| {
            sqlx::query_as(EVENTS_OF_CONTACT)
                .bind(key)
                .fetch_all(pool)
                .await
                .map_err(|e| StoreError::database(format!("reading the events of {id}"), e))?
        });
        rows.into_iter().map(EventRow::into_event).collect()
    }

    /// For each (tenant, customer) with a connection at or after `since`, the agent of its most
    /// recent one, sorted by tenant then customer (byte order): the customer affinity to rebuild
    /// after a restart. Contacts without a customer reference are not included.
    pub async fn last_agents(&self, since: Timestamp) -> Result<Vec<LastAgent>, StoreError> {
        let rows: Vec<LastAgentRow> = on_pool!(self, |pool| {
            sqlx::query_as(LAST_AGENTS)
                .bind(since.0)
                .fetch_all(pool)
                .await
                .map_err(|e| {
                    StoreError::database(format!("reading the last agents since {since}"), e)
                })?
        });
        // Sorted here, not in SQL: PostgreSQL's collation may not be byte order.
        let mut agents: Vec<LastAgent> = rows
            .into_iter()
            .map(|row| LastAgent {
                tenant: row.tenant,
                customer: row.customer,
                agent: row.agent,
                at: Timestamp(row.at),
            })
            .collect();
        agents.sort_by(|a, b| (&a.tenant, &a.customer).cmp(&(&b.tenant, &b.customer)));
        Ok(agents)
    }

    /// How many of `tenant`'s contacts are in each state.
    pub async fn counts_by_state(&self, tenant: &str) -> Result<StateCounts, StoreError> {
        validate::name("tenant", tenant)?;
        let rows: Vec<StateCountRow> = on_pool!(self, |pool| {
            sqlx::query_as(COUNTS_BY_STATE)
                .bind(tenant)
                .fetch_all(pool)
                .await
                .map_err(|e| {
                    StoreError::database(format!("counting the contacts of tenant {tenant:?}"), e)
                })?
        });
        let mut counts = StateCounts::default();
        for row in rows {
            let state: ContactState = row.state.parse().map_err(|reason| StoreError::Corrupt {
                row: format!("contacts of tenant {tenant:?}"),
                column: "state",
                value: row.state.clone(),
                reason,
            })?;
            counts.add(state, u64::try_from(row.n).unwrap_or(0));
        }
        Ok(counts)
    }
}

impl ContactRow {
    fn into_contact(self) -> Result<StoredContact, StoreError> {
        let id = self.id;
        let attributes: BTreeMap<String, String> =
            serde_json::from_str(&self.attributes).map_err(|e| StoreError::Corrupt {
                row: format!("contacts row {id}"),
                column: "attributes",
                value: self.attributes.clone(),
                reason: format!("is not a JSON object of strings: {e}"),
            })?;
        Ok(StoredContact {
            id: contact_id("contacts", id)?,
            tenant: self.tenant,
            queue: self.queue,
            media: media_code("contacts", id, &self.media)?,
            priority: Priority(self.priority),
            arrived_at: Timestamp(self.arrived_at),
            attributes,
            criteria_json: self.criteria_json,
            customer: self.customer,
            state: state_code("contacts", id, &self.state)?,
            agent: self.agent,
            connected_at: self.connected_at.map(Timestamp),
            ended_at: self.ended_at.map(Timestamp),
            updated_at: Timestamp(self.updated_at),
        })
    }
}

impl EventRow {
    fn into_event(self) -> Result<ContactEvent, StoreError> {
        Ok(ContactEvent {
            contact: contact_id("contact_events", self.contact_id)?,
            state: state_code("contact_events", self.id, &self.state)?,
            at: Timestamp(self.at),
            agent: self.agent,
            queue: self.queue,
            media: media_code("contact_events", self.id, &self.media)?,
            priority: Priority(self.priority),
            detail: self.detail,
        })
    }
}

/// A stored id as a [`ContactId`]; ids are positive in both backends.
fn contact_id(table: &'static str, id: i64) -> Result<ContactId, StoreError> {
    u64::try_from(id)
        .map(ContactId)
        .map_err(|_| StoreError::Corrupt {
            row: format!("{table} row {id}"),
            column: "id",
            value: id.to_string(),
            reason: "is negative".to_owned(),
        })
}

fn state_code(table: &'static str, id: i64, code: &str) -> Result<ContactState, StoreError> {
    code.parse().map_err(|reason| StoreError::Corrupt {
        row: format!("{table} row {id}"),
        column: "state",
        value: code.to_owned(),
        reason,
    })
}

fn media_code(table: &'static str, id: i64, code: &str) -> Result<MediaType, StoreError> {
    code.parse()
        .map_err(|e: crate::model::UnknownMedia| StoreError::Corrupt {
            row: format!("{table} row {id}"),
            column: "media",
            value: code.to_owned(),
            reason: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SQL names the final states literally; they must be exactly the model's final states.
    #[test]
    fn sql_final_states_match_the_model() {
        let finals = "('completed', 'abandoned', 'overflowed')";
        for sql in [APPLY_TRANSITION, OPEN_CONTACTS] {
            assert!(sql.contains(finals), "{sql}");
        }
        let listed: Vec<ContactState> = ContactState::ALL
            .into_iter()
            .filter(|s| finals.contains(&format!("'{}'", s.code())))
            .collect();
        let model: Vec<ContactState> = ContactState::ALL
            .into_iter()
            .filter(|s| s.is_final())
            .collect();
        assert_eq!(listed, model);
        for schema in [
            include_str!("../../migrations/sqlite/0001_contacts.sql"),
            include_str!("../../migrations/postgres/0001_contacts.sql"),
        ] {
            assert!(schema.contains(&format!("NOT IN {finals}")));
        }
    }
}
