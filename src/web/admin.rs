//! Credentials of the caller's tenant, for admins: API keys (the token is shown once, at
//! creation) and web users. Revoking or disabling drops the credential from the auth cache.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::store::{Credential, KeyId, Role};

use super::{ApiError, App, Caller, parse_body};

/// Body of `POST /api/v1/keys`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    label: Option<String>,
    role: Option<Role>,
}

/// Body of `POST /api/v1/users`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    username: Option<String>,
    password: Option<String>,
    role: Option<Role>,
}

fn required<T>(value: Option<T>, field: &str, example: &str) -> Result<T, ApiError> {
    value.ok_or_else(|| ApiError::Unprocessable(format!("{field} is missing: {example}")))
}

/// `POST /api/v1/keys` `{"label", "role"}` → 201 `{"key_id", "token"}`.
pub(crate) async fn create_key(
    State(app): State<App>,
    caller: Caller,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require_key_manager()?;
    let body: NewKey = parse_body(&body)?;
    let example = "{\"label\": \"crm\", \"role\": \"client\"}";
    let label = required(body.label, "label", example)?;
    let role = required(body.role, "role", example)?;
    check_key_role(&caller, role)?;
    let key = app
        .store
        .create_api_key(caller.tenant(), &label, role)
        .await?;
    let body = json!({
        "key_id": key.key_id,
        "token": key.token.expose(),
        "role": role,
        "label": label,
        "note": "the token is shown only now: store it",
    });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// Keys stay on their side: the operator makes operator keys here (a client's keys at
/// `POST /api/v1/clients/{name}/keys`), and a client's admin never makes an operator key.
fn check_key_role(caller: &Caller, role: Role) -> Result<(), ApiError> {
    match (caller.is_operator(), role == Role::Operator) {
        (true, false) => Err(ApiError::Unprocessable(format!(
            "the operator's keys are operator keys; make a {role} key of a client with \
             POST /api/v1/clients/{{name}}/keys"
        ))),
        (false, true) => Err(ApiError::Forbidden(
            "a client cannot make an operator key; the operator makes them".to_owned(),
        )),
        _ => Ok(()),
    }
}

/// `GET /api/v1/keys`: the tenant's keys, revoked ones included, without secrets.
pub(crate) async fn keys(State(app): State<App>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require_key_manager()?;
    let keys = key_list(&app, caller.tenant()).await?;
    Ok(Json(json!({ "keys": keys })))
}

/// A tenant's keys as the API shows them: revoked ones included, no secrets.
pub(crate) async fn key_list(app: &App, tenant: &str) -> Result<Vec<Value>, ApiError> {
    Ok(app
        .store
        .list_api_keys(tenant)
        .await?
        .into_iter()
        .map(|k| {
            json!({
                "key_id": k.key_id,
                "label": k.label,
                "role": k.role,
                "created_at_us": k.created_at.0,
                "revoked_at_us": k.revoked_at.map(|t| t.0),
            })
        })
        .collect())
}

/// `DELETE /api/v1/keys/{key_id}`: revokes an active key of the tenant (204), else 404.
pub(crate) async fn revoke_key(
    State(app): State<App>,
    caller: Caller,
    Path(key_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_key_manager()?;
    revoke(&app, caller.tenant(), &key_id).await
}

/// Revokes the active key `key_id` of `tenant` and drops it from the auth cache (204), else 404.
pub(crate) async fn revoke(app: &App, tenant: &str, key_id: &str) -> Result<StatusCode, ApiError> {
    let key_id: KeyId = key_id.parse().map_err(ApiError::BadRequest)?;
    if !app.store.revoke_api_key(tenant, &key_id).await? {
        return Err(ApiError::NotFound(format!("no active API key {key_id}")));
    }
    app.auth.forget(&Credential::ApiKey(key_id));
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/users` `{"username", "password", "role"}` → 201.
pub(crate) async fn create_user(
    State(app): State<App>,
    caller: Caller,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require(Role::Admin)?;
    let body: NewUser = parse_body(&body)?;
    let example = "{\"username\": \"ana\", \"password\": \"…\", \"role\": \"client\"}";
    let username = required(body.username, "username", example)?;
    let password = required(body.password, "password", example)?;
    let role = required(body.role, "role", example)?;
    if role == Role::Operator {
        return Err(ApiError::Forbidden(
            "web users belong to a client; the operator uses API keys".to_owned(),
        ));
    }
    app.store
        .create_web_user(caller.tenant(), &username, &password, role)
        .await?;
    let body = json!({ "username": username, "role": role });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `GET /api/v1/users`: the tenant's web users, disabled ones included, without passwords.
pub(crate) async fn users(State(app): State<App>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Admin)?;
    let users = user_list(&app, caller.tenant()).await?;
    Ok(Json(json!({ "users": users })))
}

/// A tenant's web users as the API shows them: disabled ones included, no passwords.
pub(crate) async fn user_list(app: &App, tenant: &str) -> Result<Vec<Value>, ApiError> {
    Ok(app
        .store
        .list_web_users(tenant)
        .await?
        .into_iter()
        .map(|u| {
            json!({
                "username": u.username,
                "role": u.role,
                "created_at_us": u.created_at.0,
                "disabled_at_us": u.disabled_at.map(|t| t.0),
            })
        })
        .collect())
}

/// `DELETE /api/v1/users/{username}`: disables an active user of the tenant (204), else 404.
pub(crate) async fn disable_user(
    State(app): State<App>,
    caller: Caller,
    Path(username): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Role::Admin)?;
    disable(&app, caller.tenant(), username).await
}

/// Disables the active web user `username` of `tenant` and drops it from the auth cache (204),
/// else 404.
pub(crate) async fn disable(
    app: &App,
    tenant: &str,
    username: String,
) -> Result<StatusCode, ApiError> {
    if !app.store.disable_web_user(tenant, &username).await? {
        return Err(ApiError::NotFound(format!(
            "no active web user {username:?}"
        )));
    }
    app.auth.forget(&Credential::WebUser(username));
    Ok(StatusCode::NO_CONTENT)
}
