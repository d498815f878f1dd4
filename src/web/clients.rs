//! The operator's API, above every client's: the clients, their trunk rules (R, T), their keys
//! (the first one, a list without secrets, revocation) and their web users (a list, disabling).
//! Only the operator's key reaches it; the operator's key reaches nothing else of a client.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::controller::admin::AdminChange;
use crate::controller::clients::{ClientRules, check_name};
use crate::store::Role;

use super::{ApiError, App, Caller, parse_body};

/// `GET /api/v1/clients`: every client with its trunk rules, queues and agents, and (with a
/// calls side) its available agents, calls and permitted calls now.
pub(crate) async fn clients(
    State(app): State<App>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Operator)?;
    let clients = app.controller.clients().await?;
    Ok(Json(json!({ "clients": clients })))
}

/// `PUT /api/v1/clients/{name}` `{"trunk_ratio", "after_hours_trunks"}`: creates the client
/// (201) or gives it new trunk rules (200), live for its next call; rules left out take the
/// defaults.
pub(crate) async fn put_client(
    State(app): State<App>,
    caller: Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require(Role::Operator)?;
    let rules: ClientRules = parse_body(&body)?;
    let change = AdminChange::PutClient {
        name: name.clone(),
        rules,
    };
    let outcome = app.controller.admin(change).await?;
    Ok(super::catalog::answer(
        outcome,
        json!({
            "name": name,
            "trunk_ratio": rules.trunk_ratio,
            "after_hours_trunks": rules.after_hours_trunks,
        }),
    ))
}

/// Body of `POST /api/v1/clients/{name}/keys`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewClientKey {
    label: Option<String>,
    role: Option<Role>,
}

/// `POST /api/v1/clients/{name}/keys` `{"label", "role"}` → 201 `{"key_id", "token"}`: a key of
/// the client (its first admin key, usually), shown once.
pub(crate) async fn create_client_key(
    State(app): State<App>,
    caller: Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    operator_over(&caller, &name)?;
    let body: NewClientKey = parse_body(&body)?;
    let role = body.role.unwrap_or(Role::Admin);
    if role == Role::Operator {
        return Err(ApiError::Unprocessable(
            "role: a client's key is client, supervisor or admin; operator keys are the \
             operator's (POST /api/v1/keys)"
                .to_owned(),
        ));
    }
    if !known_client(&app, &name).await? {
        return Err(ApiError::NotFound(format!(
            "no client named {name:?}; create it first with PUT /api/v1/clients/{name}"
        )));
    }
    let label = body
        .label
        .unwrap_or_else(|| format!("{role} key from the operator"));
    let key = app.store.create_api_key(&name, &label, role).await?;
    let body = json!({
        "client": name,
        "key_id": key.key_id,
        "token": key.token.expose(),
        "role": role,
        "label": label,
        "note": "the token is shown only now: hand it to the client",
    });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `GET /api/v1/clients/{name}/keys`: the client's keys, revoked ones included, without
/// secrets; 404 for a name that is neither a client nor holds a key.
pub(crate) async fn client_keys(
    State(app): State<App>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    operator_over(&caller, &name)?;
    let keys = super::admin::key_list(&app, &name).await?;
    listing(&app, name, "keys", keys).await
}

/// `DELETE /api/v1/clients/{name}/keys/{key_id}`: revokes an active key of the client (204),
/// for a key that leaked or a client that left; else 404.
pub(crate) async fn revoke_client_key(
    State(app): State<App>,
    caller: Caller,
    Path((name, key_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    operator_over(&caller, &name)?;
    super::admin::revoke(&app, &name, &key_id).await
}

/// `GET /api/v1/clients/{name}/users`: the client's web users, disabled ones included, without
/// passwords; 404 for a name that is neither a client nor has a user.
pub(crate) async fn client_users(
    State(app): State<App>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    operator_over(&caller, &name)?;
    let users = super::admin::user_list(&app, &name).await?;
    listing(&app, name, "users", users).await
}

/// `DELETE /api/v1/clients/{name}/users/{username}`: disables an active web user of the client
/// (204), refused from that moment; else 404.
pub(crate) async fn disable_client_user(
    State(app): State<App>,
    caller: Caller,
    Path((name, username)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    operator_over(&caller, &name)?;
    super::admin::disable(&app, &name, username).await
}

/// Refuses anyone but the operator (403) and a name no client can have (422).
fn operator_over(caller: &Caller, name: &str) -> Result<(), ApiError> {
    caller.require(Role::Operator)?;
    check_name(name).map_err(|e| ApiError::Unprocessable(e.to_string()))
}

/// `{"client": name, field: items}`; 404 when there are none and `name` is no client. A
/// tenant with credentials but no client entry (its first key bootstrapped from the command
/// line) is still listed, so that they can be revoked.
async fn listing(
    app: &App,
    name: String,
    field: &str,
    items: Vec<Value>,
) -> Result<Json<Value>, ApiError> {
    if items.is_empty() && !known_client(app, &name).await? {
        return Err(ApiError::NotFound(format!("no client named {name:?}")));
    }
    let mut body = json!({ "client": name });
    body[field] = Value::Array(items);
    Ok(Json(body))
}

/// Whether `name` is a client (from the config file or the operator's API).
async fn known_client(app: &App, name: &str) -> Result<bool, ApiError> {
    Ok(app
        .controller
        .clients()
        .await?
        .iter()
        .any(|c| c.name == name))
}
