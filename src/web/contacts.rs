//! Contacts and queues: a client's contacts arrive, supervisors and agents act on them, and
//! everyone reads their tenant's queues.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::controller::{ContactAction, OutputView};
use crate::model::{ContactId, Priority};
use crate::routing::{ContactSetup, Output};
use crate::store::Role;

use super::{ApiError, App, Caller, parse_body};

/// Renders router outputs with names.
pub(crate) fn events(app: &App, outputs: &[Output]) -> Vec<OutputView> {
    outputs
        .iter()
        .map(|o| OutputView::of(o, &app.catalog))
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
