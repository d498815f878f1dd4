//! An agent's own actions: log in and out, heartbeat, ready, break, accept, reject, hang up.
//! Allowed to the web user whose name is the agent's, and to supervisors of its tenant.

use axum::Json;
use axum::extract::{Path, State};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::controller::{AgentAction, ContactAction};
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
) -> Result<Json<Value>, ApiError> {
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
            if let Some(reason) = &body.reason {
                if reason.chars().count() > MAX_REASON_CHARS {
                    return Err(ApiError::Unprocessable(format!(
                        "reason: longer than {MAX_REASON_CHARS} characters"
                    )));
                }
                // The controller's break command carries no reason yet: the log keeps it.
                tracing::info!(agent = %name, reason, "break requested");
            }
            AgentAction::Break
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
                    // Until the calls side hangs up legs on request, ending the contact is it.
                    ContactAction::Complete
                }
            };
            let outputs = app
                .controller
                .contact(ContactId(id), contact_action)
                .await?;
            return Ok(Json(json!({ "events": events(&app, &outputs) })));
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
    Ok(Json(json!({ "events": events(&app, &outputs) })))
}
