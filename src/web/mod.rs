//! The HTTP API (axum): contacts in, offers and state out. Handlers only talk to the
//! [`Controller`]; they hold no state of their own.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::controller::{AgentAction, CommandError, ContactAction, Controller, OutputView};
use crate::model::{ContactId, MediaType, Priority};
use crate::routing::{Catalog, ContactSetup, Output};

/// Names for rendering outputs, shared read-only with the handlers.
#[derive(Clone)]
struct App {
    controller: Controller,
    catalog: std::sync::Arc<Catalog>,
}

/// The API's routes, served by `switchboard serve`.
pub fn router(controller: Controller, catalog: Catalog) -> Router {
    let app = App {
        controller,
        catalog: std::sync::Arc::new(catalog),
    };
    Router::new()
        .route("/health", get(health))
        .route("/api/v1/queues", get(queues))
        .route("/api/v1/contacts", post(arrive))
        .route("/api/v1/contacts/{id}/explain", get(explain))
        .route("/api/v1/contacts/{id}/{action}", post(contact_action))
        .route("/api/v1/agents/{name}/{action}", post(agent_action))
        .with_state(app)
}

/// An API error: a status and a message that says what failed.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<CommandError> for ApiError {
    fn from(error: CommandError) -> Self {
        let status = match &error {
            CommandError::NotFound(_) => StatusCode::NOT_FOUND,
            CommandError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            CommandError::Conflict(_) => StatusCode::CONFLICT,
            CommandError::Store(_) | CommandError::Stopped => StatusCode::SERVICE_UNAVAILABLE,
        };
        ApiError(status, error.to_string())
    }
}

fn events(app: &App, outputs: &[Output]) -> Vec<OutputView> {
    outputs
        .iter()
        .map(|o| OutputView::of(o, &app.catalog))
        .collect()
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

async fn queues(State(app): State<App>) -> Result<Json<serde_json::Value>, ApiError> {
    let views = app
        .controller
        .queues()
        .await
        .map_err(|_| ApiError::from(CommandError::Stopped))?;
    Ok(Json(json!({ "queues": views })))
}

async fn arrive(
    State(app): State<App>,
    Json(setup): Json<ContactSetup>,
) -> Result<Response, ApiError> {
    let (id, outputs) = app.controller.arrive(setup).await?;
    let body = json!({ "id": id.0, "events": events(&app, &outputs) });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

async fn explain(State(app): State<App>, Path(id): Path<u64>) -> Result<String, ApiError> {
    Ok(app.controller.explain(ContactId(id)).await?)
}

/// Body of contact actions that need one.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ContactBody {
    agent: Option<String>,
    priority: Option<i32>,
}

async fn contact_action(
    State(app): State<App>,
    Path((id, action)): Path<(u64, String)>,
    body: Option<Json<ContactBody>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let body = body.map(|Json(b)| b).unwrap_or_default();
    let need_agent = || {
        body.agent.clone().ok_or_else(|| {
            ApiError(
                StatusCode::BAD_REQUEST,
                format!("{action} needs {{\"agent\": \"name\"}}"),
            )
        })
    };
    let action = match action.as_str() {
        "accept" => ContactAction::Accept(need_agent()?),
        "reject" => ContactAction::Reject(need_agent()?),
        "abandon" => ContactAction::Abandon,
        "complete" => ContactAction::Complete,
        "callback" => ContactAction::Callback,
        "priority" => ContactAction::Priority(Priority(body.priority.ok_or_else(|| {
            ApiError(
                StatusCode::BAD_REQUEST,
                "priority needs {\"priority\": n}".to_owned(),
            )
        })?)),
        other => {
            return Err(ApiError(
                StatusCode::NOT_FOUND,
                format!(
                    "unknown contact action {other:?}; expected accept, reject, abandon, complete, callback or priority"
                ),
            ));
        }
    };
    let outputs = app.controller.contact(ContactId(id), action).await?;
    Ok(Json(json!({ "events": events(&app, &outputs) })))
}

/// Body of agent actions: an optional media type.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentBody {
    media: Option<MediaType>,
}

async fn agent_action(
    State(app): State<App>,
    Path((name, action)): Path<(String, String)>,
    body: Option<Json<AgentBody>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let media = body.and_then(|Json(b)| b.media);
    let action = match action.as_str() {
        "login" => AgentAction::LogIn,
        "logout" => AgentAction::LogOut,
        "ready" => AgentAction::Ready(media),
        "not-ready" => AgentAction::NotReady(media),
        other => {
            return Err(ApiError(
                StatusCode::NOT_FOUND,
                format!(
                    "unknown agent action {other:?}; expected login, logout, ready or not-ready"
                ),
            ));
        }
    };
    let outputs = app.controller.agent(&name, action).await?;
    Ok(Json(json!({ "events": events(&app, &outputs) })))
}
