//! The catalog of the caller's client, for administrators: queues, agents (skills, queues,
//! SIP target) and the flow of each queue. The config file gives the initial catalog; what is
//! changed here is stored and applied live by the controller, and survives a restart.
//!
//! `PUT` takes the whole definition, in the config file's terms as JSON (a `[[queues]]` or
//! `[[agents]]` table, a flow file); fields left out take their defaults. The name comes from
//! the path and the client from the caller: a body that says otherwise is refused with 422,
//! as is any invalid field, naming it. Reading needs the supervisor role, changing the admin
//! role.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::controller::{AdminChange, AdminOutcome, Definitions};
use crate::flow::FlowFile;
use crate::routing::{AgentSetup, QueueSetup};
use crate::store::Role;

use super::{ApiError, App, Caller};

/// `GET /api/v1/catalog`: every queue, agent and API-set flow of the caller's client.
pub(crate) async fn definitions(
    State(app): State<App>,
    caller: Caller,
) -> Result<Json<Definitions>, ApiError> {
    caller.require(Role::Supervisor)?;
    Ok(Json(app.controller.definitions(caller.tenant()).await?))
}

/// `GET /api/v1/queues/{name}`: a queue's definition and its flow's name.
pub(crate) async fn queue(
    State(app): State<App>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Supervisor)?;
    let definitions = app.controller.definitions(caller.tenant()).await?;
    let queue = definitions
        .queues
        .into_iter()
        .find(|q| q.setup.name == name)
        .ok_or_else(|| ApiError::NotFound(format!("no queue is named {name:?}")))?;
    Ok(Json(json!({
        "queue": queue.setup,
        "flow": queue.flow,
    })))
}

/// `PUT /api/v1/queues/{name}`: creates the queue (201), or gives it new rules at once (200,
/// `updated`: its waiting callers keep their places); 200 `unchanged` when nothing changed.
pub(crate) async fn put_queue(
    State(app): State<App>,
    caller: Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require(Role::Admin)?;
    let setup: QueueSetup = definition(&body, Some(&name), Some(caller.tenant()))?;
    let change = AdminChange::PutQueue {
        tenant: caller.tenant().to_owned(),
        setup: setup.clone(),
    };
    let outcome = app.controller.admin(change).await?;
    Ok(answer(outcome, json!({ "queue": setup })))
}

/// `DELETE /api/v1/queues/{name}`: closes an empty queue (204): no new contacts, its agents
/// leave it, its flow goes; the client may `PUT` it again at once, another client may take
/// the name after a restart.
pub(crate) async fn delete_queue(
    State(app): State<App>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Role::Admin)?;
    let change = AdminChange::DeleteQueue {
        tenant: caller.tenant().to_owned(),
        name,
    };
    app.controller.admin(change).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/agents/{name}`: an agent's definition (skills, slots, queues, SIP target).
pub(crate) async fn agent(
    State(app): State<App>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Supervisor)?;
    let definitions = app.controller.definitions(caller.tenant()).await?;
    let agent = definitions
        .agents
        .into_iter()
        .find(|a| a.name == name)
        .ok_or_else(|| ApiError::NotFound(format!("no agent is named {name:?}")))?;
    Ok(Json(json!({ "agent": agent })))
}

/// `PUT /api/v1/agents/{name}`: creates (201) or changes (200) an agent, live.
pub(crate) async fn put_agent(
    State(app): State<App>,
    caller: Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require(Role::Admin)?;
    let setup: AgentSetup = definition(&body, Some(&name), Some(caller.tenant()))?;
    let change = AdminChange::PutAgent {
        tenant: caller.tenant().to_owned(),
        setup: setup.clone(),
    };
    let outcome = app.controller.admin(change).await?;
    Ok(answer(outcome, json!({ "agent": setup })))
}

/// `DELETE /api/v1/agents/{name}`: logs the agent out and removes it (204); refused with 409
/// while a contact rings it or is connected to it.
pub(crate) async fn delete_agent(
    State(app): State<App>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Role::Admin)?;
    let change = AdminChange::DeleteAgent {
        tenant: caller.tenant().to_owned(),
        name,
    };
    app.controller.admin(change).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/queues/{name}/flow`: the flow set through the API for the queue, or the name
/// of the flow from the config file (`"source": "config"`).
pub(crate) async fn flow(
    State(app): State<App>,
    caller: Caller,
    Path(queue): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Supervisor)?;
    let mut definitions = app.controller.definitions(caller.tenant()).await?;
    let Some(definition) = definitions.queues.iter().find(|q| q.setup.name == queue) else {
        return Err(ApiError::NotFound(format!("no queue is named {queue:?}")));
    };
    let name = definition.flow.clone();
    Ok(Json(match definitions.flows.remove(&queue) {
        Some(flow) => json!({ "queue": queue, "source": "api", "name": name, "flow": flow }),
        None => json!({ "queue": queue, "source": "config", "name": name }),
    }))
}

/// `PUT /api/v1/queues/{name}/flow`: the flow the queue's new callers hear (201 or 200),
/// a flow file as JSON (`{"steps": [{"menu": …}, {"queue": {"name": "sales"}}]}`); `name`
/// defaults to the queue's. The queues its steps name must be the client's own.
pub(crate) async fn put_flow(
    State(app): State<App>,
    caller: Caller,
    Path(queue): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require(Role::Admin)?;
    let mut object = object(&body)?;
    object
        .entry("name")
        .or_insert_with(|| Value::String(queue.clone()));
    let flow: FlowFile = typed(Value::Object(object))?;
    let change = AdminChange::PutFlow {
        tenant: caller.tenant().to_owned(),
        queue: queue.clone(),
        flow: flow.clone(),
    };
    let outcome = app.controller.admin(change).await?;
    Ok(answer(outcome, json!({ "queue": queue, "flow": flow })))
}

/// `DELETE /api/v1/queues/{name}/flow`: back to the config file's (or the built-in) flow (204).
pub(crate) async fn delete_flow(
    State(app): State<App>,
    caller: Caller,
    Path(queue): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Role::Admin)?;
    let change = AdminChange::DeleteFlow {
        tenant: caller.tenant().to_owned(),
        queue,
    };
    app.controller.admin(change).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/numbers`: the client's called numbers, each with the queue it reaches.
pub(crate) async fn numbers(
    State(app): State<App>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Supervisor)?;
    let definitions = app.controller.definitions(caller.tenant()).await?;
    Ok(Json(json!({ "numbers": definitions.numbers })))
}

/// What `PUT /api/v1/numbers/{number}` takes.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NumberBody {
    queue: String,
}

/// `PUT /api/v1/numbers/{number}` `{"queue"}`: callers of the number reach one of the client's
/// queues from their next call (201 new, 200 changed or unchanged); a number another client's
/// queue takes is refused (409).
pub(crate) async fn put_number(
    State(app): State<App>,
    caller: Caller,
    Path(number): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require(Role::Admin)?;
    let body: NumberBody = typed(Value::Object(object(&body)?))?;
    let change = AdminChange::PutNumber {
        tenant: caller.tenant().to_owned(),
        number: number.clone(),
        queue: body.queue.clone(),
    };
    let outcome = app.controller.admin(change).await?;
    Ok(answer(
        outcome,
        json!({ "number": number, "queue": body.queue }),
    ))
}

/// `DELETE /api/v1/numbers/{number}`: the client's number reaches no queue any more (204).
pub(crate) async fn delete_number(
    State(app): State<App>,
    caller: Caller,
    Path(number): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Role::Admin)?;
    let change = AdminChange::DeleteNumber {
        tenant: caller.tenant().to_owned(),
        number,
    };
    app.controller.admin(change).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The answer to a `PUT`: its status says what happened.
pub(super) fn answer(outcome: AdminOutcome, mut body: Value) -> Response {
    let status = match outcome {
        AdminOutcome::Created => StatusCode::CREATED,
        _ => StatusCode::OK,
    };
    if let Some(fields) = body.as_object_mut() {
        fields.insert("outcome".to_owned(), json!(outcome));
    }
    (status, Json(body)).into_response()
}

/// A body that must be a JSON object.
fn object(body: &Bytes) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(ApiError::Unprocessable(
            "the body must be a JSON object with the definition".to_owned(),
        )),
        Err(e) => Err(ApiError::Unprocessable(format!("invalid JSON body: {e}"))),
    }
}

/// A definition from a body: its `name` is `name` and its `tenant` the caller's (filled in
/// when left out, refused when different).
fn definition<T: DeserializeOwned>(
    body: &Bytes,
    name: Option<&str>,
    tenant: Option<&str>,
) -> Result<T, ApiError> {
    let mut object = object(body)?;
    for (field, expected, what) in [
        ("name", name, "the name in the path"),
        ("tenant", tenant, "the caller's client"),
    ] {
        let Some(expected) = expected else { continue };
        match object.get(field) {
            None => {
                object.insert(field.to_owned(), Value::String(expected.to_owned()));
            }
            Some(Value::String(given)) if given == expected => {}
            Some(given) => {
                let given = given.to_string();
                return Err(ApiError::Unprocessable(format!(
                    "{field}: {} differs from {what}, {expected:?}; leave it out",
                    given.chars().take(64).collect::<String>()
                )));
            }
        }
    }
    typed(Value::Object(object))
}

/// A JSON value as `T`, refused with 422 naming the field at fault.
fn typed<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || path.is_empty() {
            ApiError::Unprocessable(format!("definition: {inner}"))
        } else {
            ApiError::Unprocessable(format!("{path}: {inner}"))
        }
    })
}
