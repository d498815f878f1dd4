//! Supervisors' live views of their tenant: agents and their states (queues and explanations
//! live in [`super::contacts`]).

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::store::Role;

use super::{ApiError, App, Caller};

/// `GET /api/v1/agents`: the tenant's agents with their state, since when and why (`state` is
/// null only for an agent without a phone line when the calls side runs).
pub(crate) async fn agents(
    State(app): State<App>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Supervisor)?;
    let agents: Vec<Value> = app
        .controller
        .agents()
        .await?
        .into_iter()
        .filter(|a| a.tenant.as_deref() == Some(caller.tenant()))
        .map(|a| {
            json!({
                "name": a.name,
                "state": a.state,
                "since_us": a.since_us,
                "reason": a.reason,
            })
        })
        .collect();
    Ok(Json(json!({ "agents": agents })))
}
