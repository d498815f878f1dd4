//! Contacts and queues: a client's contacts arrive, supervisors and agents act on them,
//! supervisors list the live ones, and everyone reads their tenant's queues and contacts.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::controller::{ContactAction, OutputView};
use crate::model::{ContactId, Priority};
use crate::routing::{ContactSetup, Output};
use crate::store::Role;

use super::{ApiError, App, Caller, parse_body, parse_query};

/// Live contacts listed when the caller does not say how many.
pub const DEFAULT_CONTACTS: usize = 100;
/// Most live contacts one listing returns.
pub const MAX_CONTACTS: usize = 1_000;

/// Renders router outputs with names.
pub(crate) fn events(app: &App, outputs: &[Output]) -> Vec<OutputView> {
    let names = app.catalog();
    outputs
        .iter()
        .map(|o| OutputView::of(o, &names.catalog))
        .collect()
}

/// `GET /health`: unauthenticated liveness.
pub async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /api/v1/queues`: the caller's tenant's queues with their waiting contacts.
pub(crate) async fn queues(
    State(app): State<App>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let views: Vec<_> = app
        .controller
        .queues()
        .await?
        .into_iter()
        .filter(|q| q.tenant == caller.tenant())
        .collect();
    Ok(Json(json!({ "queues": views })))
}

/// `POST /api/v1/contacts`: a new contact in one of the caller's queues.
pub(crate) async fn arrive(
    State(app): State<App>,
    caller: Caller,
    body: Bytes,
) -> Result<Response, ApiError> {
    let setup: ContactSetup = parse_body::<Option<ContactSetup>>(&body)?.ok_or_else(|| {
        ApiError::Unprocessable("a contact needs a JSON body: {\"queue\": \"name\"}".to_owned())
    })?;
    if app
        .catalog()
        .queue_tenant(&setup.queue)
        .is_some_and(|tenant| tenant != caller.tenant())
    {
        // Another tenant's queue reads exactly like a missing one.
        return Err(ApiError::Unprocessable(format!(
            "queue: no queue is named {:?}",
            setup.queue
        )));
    }
    let (id, outputs) = app.controller.arrive(setup).await?;
    let body = json!({ "id": id.0, "events": events(&app, &outputs) });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `GET /api/v1/contacts?limit=`: the tenant's live contacts (waiting, offered, connected),
/// oldest first, with their queue, phase, agents and attributes; for supervisors.
pub(crate) async fn list(
    State(app): State<App>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Supervisor)?;
    let mut params = parse_query(query.as_deref(), &["limit"])?;
    let limit = match params.remove("limit") {
        None => DEFAULT_CONTACTS,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_CONTACTS).contains(n))
            .ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "parameter limit: {:?} is not a whole number from 1 to {MAX_CONTACTS}",
                    text.chars().take(32).collect::<String>()
                ))
            })?,
    };
    let contacts = app.controller.contacts(caller.tenant(), limit).await?;
    Ok(Json(json!({ "contacts": contacts })))
}

/// `GET /api/v1/contacts/{id}`: one of the tenant's contacts as stored (state, times,
/// attributes) and, while it is live, as the router holds it (phase, agents).
pub(crate) async fn contact(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<u64>,
) -> Result<Json<Value>, ApiError> {
    let missing = || ApiError::NotFound(format!("no contact {id}"));
    let stored = app
        .store
        .contact(ContactId(id))
        .await?
        .filter(|c| c.tenant == caller.tenant())
        .ok_or_else(missing)?;
    let live = app
        .controller
        .contact_info(ContactId(id))
        .await?
        .filter(|v| v.tenant == caller.tenant());
    Ok(Json(json!({
        "id": id,
        "queue": stored.queue,
        "media": stored.media.code(),
        "priority": stored.priority.0,
        "state": stored.state.code(),
        "agent": stored.agent,
        "customer": stored.customer,
        "attributes": live.as_ref().map_or(&stored.attributes, |v| &v.attributes),
        "arrived_at_us": stored.arrived_at.0,
        "connected_at_us": stored.connected_at.map(|t| t.0),
        "ended_at_us": stored.ended_at.map(|t| t.0),
        "live": live.map(|v| json!({ "phase": v.phase, "agents": v.agents })),
    })))
}

/// `GET /api/v1/contacts/{id}/explain`: the router's reasoning, for supervisors.
pub(crate) async fn explain(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<u64>,
) -> Result<String, ApiError> {
    caller.require(Role::Supervisor)?;
    app.own_contact(&caller, id).await?;
    Ok(app.controller.explain(ContactId(id)).await?)
}

/// Body of contact actions that need one.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ContactBody {
    agent: Option<String>,
    priority: Option<i32>,
}

/// `POST /api/v1/contacts/{id}/{action}`: accept, reject (the named agent or a supervisor),
/// complete (a supervisor), abandon, callback, priority (the client too).
pub(crate) async fn action(
    State(app): State<App>,
    caller: Caller,
    Path((id, action)): Path<(u64, String)>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let body: ContactBody = parse_body(&body)?;
    let need_agent = || {
        let agent = body.agent.clone().ok_or_else(|| {
            ApiError::BadRequest(format!("{action} needs {{\"agent\": \"name\"}}"))
        })?;
        caller.require_agent(&agent)?;
        app.own_agent(&caller, &agent)?;
        Ok::<_, ApiError>(agent)
    };
    let action =
        match action.as_str() {
            "accept" => ContactAction::Accept(need_agent()?),
            "reject" => ContactAction::Reject(need_agent()?),
            "complete" => {
                caller.require(Role::Supervisor)?;
                ContactAction::Complete
            }
            "abandon" => ContactAction::Abandon,
            "callback" => ContactAction::Callback,
            "priority" => ContactAction::Priority(Priority(body.priority.ok_or_else(|| {
                ApiError::BadRequest("priority needs {\"priority\": n}".to_owned())
            })?)),
            other => {
                return Err(ApiError::NotFound(format!(
                    "unknown contact action {:?}; expected accept, reject, abandon, complete, \
                 callback or priority",
                    other.chars().take(64).collect::<String>()
                )));
            }
        };
    app.own_contact(&caller, id).await?;
    let outputs = app.controller.contact(ContactId(id), action).await?;
    Ok(Json(json!({ "events": events(&app, &outputs) })))
}
