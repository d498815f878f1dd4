//! Agent state history: every change of an agent's state, stamped, and the time per state that
//! supervisors read from it.
//!
//! Every statement here runs unchanged on SQLite and PostgreSQL.

use std::collections::BTreeMap;

use futures_util::TryStreamExt;
use sqlx::FromRow;

use crate::agents::AgentState;
use crate::model::Timestamp;

use super::records::{AgentStateChange, AgentStateTotals};
use super::{Store, StoreError, on_pool, validate};

const INSERT_AGENT_STATE: &str = "\
    INSERT INTO agent_states (tenant, agent, state, reason, at) VALUES ($1, $2, $3, $4, $5)";

/// One agent's changes in `[$3, $4)`, in the order they happened (ties: the order written).
const AGENT_STATES: &str = "\
    SELECT id, tenant, agent, state, reason, at FROM agent_states \
    WHERE tenant = $1 AND agent = $2 AND at >= $3 AND at < $4 \
    ORDER BY at, id \
    LIMIT $5";

/// Per agent of a tenant, the last change before `$2`: the state each was in when a window opens.
const STATES_AT: &str = "\
    SELECT id, tenant, agent, state, reason, at FROM ( \
        SELECT id, tenant, agent, state, reason, at, \
               ROW_NUMBER() OVER (PARTITION BY agent ORDER BY at DESC, id DESC) AS recency \
        FROM agent_states WHERE tenant = $1 AND at < $2 \
    ) latest WHERE recency = 1";

/// A tenant's changes in `[$2, $3)`, by agent and then in the order they happened.
const CHANGES_IN_WINDOW: &str = "\
    SELECT id, tenant, agent, state, reason, at FROM agent_states \
    WHERE tenant = $1 AND at >= $2 AND at < $3 \
    ORDER BY agent, at, id";

/// An `agent_states` row as the driver reads it.
#[derive(FromRow)]
struct AgentStateRow {
    id: i64,
    tenant: String,
    agent: String,
    state: String,
    reason: Option<String>,
    at: i64,
}

impl Store {
    /// Writes a batch of agent state changes in one transaction: all of them, or none.
    ///
    /// At most [`MAX_AGENT_STATE_BATCH`](super::MAX_AGENT_STATE_BATCH) changes per batch; each is
    /// checked (names 1 to 200 characters, reason at most 1,000) before anything is written.
    pub async fn record_agent_states(
        &self,
        changes: &[AgentStateChange],
    ) -> Result<(), StoreError> {
        validate::agent_state_batch(changes.len())?;
        for (index, change) in changes.iter().enumerate() {
            validate::agent_state_change(index, change)?;
        }
        if changes.is_empty() {
            return Ok(());
        }
        let failed = |c: &AgentStateChange, e| {
            StoreError::database(
                format!(
                    "recording agent {:?} of tenant {:?} in state {}",
                    c.agent, c.tenant, c.state
                ),
                e,
            )
        };
        let batch_failed = |e| {
            StoreError::database(
                format!("writing a batch of {} agent state changes", changes.len()),
                e,
            )
        };
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await.map_err(batch_failed)?;
            for c in changes {
                sqlx::query(INSERT_AGENT_STATE)
                    .bind(&c.tenant)
                    .bind(&c.agent)
                    .bind(c.state.code())
                    .bind(&c.reason)
                    .bind(c.at.0)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| failed(c, e))?;
            }
            tx.commit().await.map_err(batch_failed)?;
        });
        Ok(())
    }

    /// The state changes of `agent` of `tenant` at or after `from` and before `to`, oldest
    /// first (ties in the order written), at most `limit` (1 to
    /// [`MAX_LIST_LIMIT`](super::MAX_LIST_LIMIT), default
    /// [`DEFAULT_LIST_LIMIT`](super::DEFAULT_LIST_LIMIT)). To read on, ask again from the `at`
    /// of the last change returned.
    pub async fn agent_states(
        &self,
        tenant: &str,
        agent: &str,
        from: Timestamp,
        to: Timestamp,
        limit: Option<u32>,
    ) -> Result<Vec<AgentStateChange>, StoreError> {
        validate::name("tenant", tenant)?;
        validate::name("agent", agent)?;
        validate::window("from", from, to)?;
        let limit = validate::limit("limit", limit)?;
        let rows: Vec<AgentStateRow> = on_pool!(self, |pool| {
            sqlx::query_as(AGENT_STATES)
                .bind(tenant)
                .bind(agent)
                .bind(from.0)
                .bind(to.0)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await
                .map_err(|e| {
                    StoreError::database(
                        format!("reading the states of agent {agent:?} of tenant {tenant:?}"),
                        e,
                    )
                })?
        });
        rows.into_iter().map(AgentStateRow::into_change).collect()
    }

    /// How long each of `tenant`'s agents spent in each state from `from` to `to`, sorted by
    /// agent (byte order). An agent's state at `from` is its last change before it; time before
    /// an agent's first change is not counted. Pass `to` = now for a window that is still open.
    ///
    /// Memory is bounded by the number of agents: the window's changes are streamed, not
    /// loaded.
    pub async fn agent_state_totals(
        &self,
        tenant: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<AgentStateTotals>, StoreError> {
        validate::name("tenant", tenant)?;
        validate::window("from", from, to)?;
        let failed = |e| {
            StoreError::database(
                format!("summing the agent states of tenant {tenant:?} from {from} to {to}"),
                e,
            )
        };
        let mut summary = Summary::new(from);
        on_pool!(self, |pool| {
            let initial: Vec<AgentStateRow> = sqlx::query_as(STATES_AT)
                .bind(tenant)
                .bind(from.0)
                .fetch_all(pool)
                .await
                .map_err(failed)?;
            for row in initial {
                let change = row.into_change()?;
                summary.enter(change.agent, change.state, from);
            }
            let mut rows = sqlx::query_as::<_, AgentStateRow>(CHANGES_IN_WINDOW)
                .bind(tenant)
                .bind(from.0)
                .bind(to.0)
                .fetch(pool);
            while let Some(row) = rows.try_next().await.map_err(failed)? {
                let change = row.into_change()?;
                summary.enter(change.agent, change.state, change.at);
            }
        });
        Ok(summary.close(to))
    }
}

/// Running totals per agent: the state each is in since when, and the time so far.
struct Summary {
    agents: BTreeMap<String, (AgentStateTotals, Option<(AgentState, Timestamp)>)>,
    from: Timestamp,
}

impl Summary {
    fn new(from: Timestamp) -> Self {
        Summary {
            agents: BTreeMap::new(),
            from,
        }
    }

    /// `agent` entered `state` at `at` (changes of one agent arrive in time order).
    fn enter(&mut self, agent: String, state: AgentState, at: Timestamp) {
        let at = at.max(self.from);
        let (totals, current) = self
            .agents
            .entry(agent)
            .or_insert_with_key(|agent| (AgentStateTotals::new(agent.clone()), None));
        if let Some((previous, since)) = current.take() {
            totals.add(previous, at.since(since));
        }
        *current = Some((state, at));
    }

    /// The totals with every agent's current state counted until `to`.
    fn close(self, to: Timestamp) -> Vec<AgentStateTotals> {
        self.agents
            .into_values()
            .map(|(mut totals, current)| {
                if let Some((state, since)) = current {
                    totals.add(state, to.since(since));
                }
                totals
            })
            .collect()
    }
}

impl AgentStateRow {
    fn into_change(self) -> Result<AgentStateChange, StoreError> {
        let state = self.state.parse().map_err(|reason| StoreError::Corrupt {
            row: format!("agent_states row {}", self.id),
            column: "state",
            value: self.state.clone(),
            reason,
        })?;
        Ok(AgentStateChange {
            tenant: self.tenant,
            agent: self.agent,
            state,
            reason: self.reason,
            at: Timestamp(self.at),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn totals_count_from_the_window_start_to_its_end() {
        let secs = Timestamp::from_secs;
        let mut summary = Summary::new(secs(100));
        // In a break since before the window: counted from 100.
        summary.enter("ana".into(), AgentState::Break, secs(100));
        summary.enter("ana".into(), AgentState::Available, secs(130));
        summary.enter("ana".into(), AgentState::Busy, secs(140));
        summary.enter("bo".into(), AgentState::Available, secs(150));
        let totals = summary.close(secs(200));
        assert_eq!(totals.len(), 2);
        let ana = &totals[0];
        assert_eq!(ana.agent, "ana");
        assert_eq!(ana.get(AgentState::Break), Duration::from_secs(30));
        assert_eq!(ana.get(AgentState::Available), Duration::from_secs(10));
        assert_eq!(ana.get(AgentState::Busy), Duration::from_secs(60));
        assert_eq!(ana.total(), Duration::from_secs(100));
        assert_eq!(
            totals[1].get(AgentState::Available),
            Duration::from_secs(50)
        );
        assert_eq!(totals[1].total(), Duration::from_secs(50));
    }
}
