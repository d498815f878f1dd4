//! An agent's own actions: log in and out, heartbeat, ready, break, accept, reject, hang up.
//! Allowed to the web user whose name is the agent's, and to supervisors of its tenant.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;

use crate::controller::{AgentAction, ContactAction, HangupOutcome};
use crate::model::{ContactId, MediaType};

use super::contacts::events;
use super::{ApiError, App, Caller, parse_body};

/// Longest break reason accepted.
pub const MAX_REASON_CHARS: usize = 200;

/// Body of agent actions; which fields apply depends on the action.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentBody {
    /// `ready` / `not-ready`: one media type instead of all.
    media: Option<MediaType>,
    /// `break`: why.
    reason: Option<String>,
    /// `accept`, `reject`, `hangup`: the contact.
    contact: Option<u64>,
}

/// `POST /api/v1/agents/{name}/{action}`.
pub(crate) async fn action(
    State(app): State<App>,
    caller: Caller,
    Path((name, action)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body: AgentBody = parse_body(&body)?;
    caller.require_agent(&name)?;
    app.own_agent(&caller, &name)?;
    let contact = |action: &str| {
        body.contact.ok_or_else(|| {
            ApiError::BadRequest(format!("{action} needs {{\"contact\": id}} in the body"))
        })
    };
    let agent_action = match action.as_str() {
        "login" => AgentAction::LogIn,
        "logout" => AgentAction::LogOut,
        "heartbeat" => AgentAction::Heartbeat,
        "ready" => AgentAction::Ready(body.media),
        "not-ready" => AgentAction::NotReady(body.media),
        "break" => {
            let reason = body.reason.map(|r| r.trim().to_owned());
            if let Some(reason) = &reason {
                if reason.is_empty() {
                    return Err(ApiError::Unprocessable(
                        "reason: empty; give a reason (\"lunch\") or leave it out".to_owned(),
                    ));
                }
                if reason.chars().count() > MAX_REASON_CHARS {
                    return Err(ApiError::Unprocessable(format!(
                        "reason: longer than {MAX_REASON_CHARS} characters"
                    )));
                }
                if reason.chars().any(char::is_control) {
                    return Err(ApiError::Unprocessable(
                        "reason: contains control characters".to_owned(),
                    ));
                }
            }
            // The reason is stored with the break state in the agent's history.
            AgentAction::Break(reason)
        }
        "accept" | "reject" | "hangup" => {
            let id = contact(&action)?;
            let view = app.own_contact(&caller, id).await?;
            let contact_action = match action.as_str() {
                "accept" => ContactAction::Accept(name.clone()),
                "reject" => ContactAction::Reject(name.clone()),
                _ => {
                    if view.phase != "connected" || !view.agents.contains(&name) {
                        return Err(ApiError::Conflict(format!(
                            "contact {id} is not connected to agent {name:?} (it is {})",
                            view.phase
                        )));
                    }
                    return hang_up(&app, id, &name).await;
                }
            };
            let outputs = app
                .controller
                .contact(ContactId(id), contact_action)
                .await?;
            return Ok(Json(json!({ "events": events(&app, &outputs) })).into_response());
        }
        other => {
            return Err(ApiError::NotFound(format!(
                "unknown agent action {:?}; expected login, logout, heartbeat, ready, not-ready, \
                 break, accept, reject or hangup",
                other.chars().take(64).collect::<String>()
            )));
        }
    };
    let outputs = app.controller.agent(&name, agent_action).await?;
    Ok(Json(json!({ "events": events(&app, &outputs) })).into_response())
}

/// The agent hangs up its call: the caller's leg is hung up on the switch (202: the call ends,
/// and its record is written, when the switch reports it gone); a contact without a call (chat,
/// email) is completed at once (200).
async fn hang_up(app: &App, contact: u64, agent: &str) -> Result<Response, ApiError> {
    match app.controller.hang_up(ContactId(contact), agent).await? {
        HangupOutcome::OnTheSwitch => Ok((
            StatusCode::ACCEPTED,
            Json(json!({
                "contact": contact,
                "hangup": "requested",
                "note": "the caller's leg is being hung up; the call ends and its record is \
                         written when the switch reports it gone",
            })),
        )
            .into_response()),
        HangupOutcome::Completed(outputs) => {
            Ok(Json(json!({ "events": events(app, &outputs) })).into_response())
        }
    }
}
