//! The HTTP API (axum): contacts in, offers, agents' actions, supervisors' views, records and
//! credentials out. Every `/api/v1` route is authenticated ([`auth`]) and scoped to the
//! caller's tenant. Handlers talk to the [`Controller`] and the [`Store`] and read the
//! catalog's names from the controller's published snapshot; the only state they keep of their
//! own is the bounded cache of verified credentials.
//!
//! Routes, by module: [`contacts`] (contacts and queues), [`agents`] (an agent's own actions),
//! [`events`] (an agent's live notices over SSE), [`supervisors`] (live views), [`records`]
//! (CDRs, agent history), [`admin`] (API keys and web users), [`catalog`] (queues, agents and
//! flows, for administrators).

pub mod admin;
pub mod agents;
pub mod auth;
pub mod catalog;
pub mod clients;
pub mod contacts;
pub mod error;
pub mod events;
pub mod records;
pub mod supervisors;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post, put};
use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::config::Resolved;
use crate::controller::{CatalogView, ContactView, Controller};
use crate::model::{ContactId, Timestamp};
use crate::store::Store;

pub use auth::{
    BootstrapError, Caller, OPERATOR_TENANT, bootstrap_admin_key, bootstrap_operator_key,
};
pub use error::ApiError;

/// Largest request body accepted (every body here is a small JSON object).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What every handler shares, read-only but for the auth cache.
#[derive(Clone)]
pub(crate) struct App {
    controller: Controller,
    store: Store,
    auth: Arc<auth::AuthCache>,
}

impl App {
    /// The catalog's names and owners as the controller last published them (administrators
    /// change them while running).
    fn catalog(&self) -> Arc<CatalogView> {
        self.controller.catalog()
    }

    /// Refuses with 404 unless agent `name` exists in the caller's tenant (another tenant's
    /// agent is reported exactly like a missing one).
    fn own_agent(&self, caller: &Caller, name: &str) -> Result<(), ApiError> {
        match self.catalog().agent_tenant(name) {
            Some(tenant) if tenant == caller.tenant() => Ok(()),
            _ => Err(ApiError::NotFound(format!("no agent named {name:?}"))),
        }
    }

    /// The live contact `id` if it belongs to the caller's tenant; 404 otherwise.
    async fn own_contact(&self, caller: &Caller, id: u64) -> Result<ContactView, ApiError> {
        match self.controller.contact_info(ContactId(id)).await? {
            Some(view) if view.tenant == caller.tenant() => Ok(view),
            _ => Err(ApiError::NotFound(format!("no live contact {id}"))),
        }
    }
}

/// The API's routes, served by `switchboard serve`. The catalog (queues, agents and their
/// clients) is the controller's: the configuration `_resolved` it was built from, with what
/// administrators changed over the API; `store` verifies credentials and holds the records.
pub fn router(controller: Controller, _resolved: &Resolved, store: Store) -> Router {
    let app = App {
        controller,
        store,
        auth: auth::cache(),
    };
    let api = Router::new()
        .route("/queues", get(contacts::queues))
        .route(
            "/queues/{name}",
            put(catalog::put_queue)
                .get(catalog::queue)
                .delete(catalog::delete_queue),
        )
        .route(
            "/queues/{name}/flow",
            put(catalog::put_flow)
                .get(catalog::flow)
                .delete(catalog::delete_flow),
        )
        .route("/catalog", get(catalog::definitions))
        .route("/numbers", get(catalog::numbers))
        .route(
            "/numbers/{number}",
            put(catalog::put_number).delete(catalog::delete_number),
        )
        .route("/contacts", post(contacts::arrive).get(contacts::list))
        .route("/contacts/{id}", get(contacts::contact))
        .route("/contacts/{id}/explain", get(contacts::explain))
        .route("/contacts/{id}/{action}", post(contacts::action))
        .route("/agents", get(supervisors::agents))
        .route(
            "/agents/{name}",
            put(catalog::put_agent)
                .get(catalog::agent)
                .delete(catalog::delete_agent),
        )
        .route("/agents/{name}/events", get(events::agent_events))
        .route("/agents/{name}/history", get(records::agent_history))
        .route("/agents/{name}/totals", get(records::agent_totals))
        .route("/agents/{name}/{action}", post(agents::action))
        .route("/cdrs", get(records::cdrs))
        .route("/cdrs/{contact}", get(records::cdr))
        .route("/cdrs/{contact}/recording", get(records::recording))
        .route("/clients", get(clients::clients))
        .route("/clients/{name}", put(clients::put_client))
        .route(
            "/clients/{name}/keys",
            post(clients::create_client_key).get(clients::client_keys),
        )
        .route(
            "/clients/{name}/keys/{key_id}",
            delete(clients::revoke_client_key),
        )
        .route("/clients/{name}/users", get(clients::client_users))
        .route(
            "/clients/{name}/users/{username}",
            delete(clients::disable_client_user),
        )
        .route("/keys", post(admin::create_key).get(admin::keys))
        .route("/keys/{key_id}", delete(admin::revoke_key))
        .route("/users", post(admin::create_user).get(admin::users))
        .route("/users/{username}", delete(admin::disable_user))
        // `route_layer`: only matched routes authenticate, so an unknown path is a plain 404.
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            auth::authenticate,
        ));
    Router::new()
        .route("/health", get(contacts::health))
        .nest("/api/v1", api)
        .fallback(error::no_route)
        .method_not_allowed_fallback(error::wrong_method)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(error::json_errors))
        .with_state(app)
}

/// `body` as a `T`: an empty body is `T::default()`; otherwise JSON, refused with 422 naming
/// the field at fault.
fn parse_body<T: DeserializeOwned + Default>(body: &Bytes) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let mut json = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut json).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || path.is_empty() {
            ApiError::Unprocessable(format!("invalid JSON body: {inner}"))
        } else {
            ApiError::Unprocessable(format!("invalid JSON body at {path}: {inner}"))
        }
    })
}

/// A query-string instant: RFC 3339 (`2026-11-22T08:00:00Z`) or microseconds since the epoch.
fn parse_instant(name: &str, value: &str) -> Result<Timestamp, ApiError> {
    if let Ok(micros) = value.parse::<i64>() {
        return Ok(Timestamp(micros));
    }
    value
        .parse::<jiff::Timestamp>()
        .map(|t| Timestamp(t.as_microsecond()))
        .map_err(|_| {
            ApiError::BadRequest(format!(
                "parameter {name}: {:?} is neither an RFC 3339 instant (2026-11-22T08:00:00Z) \
                 nor microseconds since the epoch",
                value.chars().take(64).collect::<String>()
            ))
        })
}

/// The pairs of a query string, refusing names outside `allowed` and repeated names with 400.
fn parse_query(raw: Option<&str>, allowed: &[&str]) -> Result<HashMap<String, String>, ApiError> {
    let mut out = HashMap::new();
    for (name, value) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        if !allowed.contains(&name.as_ref()) {
            return Err(ApiError::BadRequest(format!(
                "unknown parameter {:?}; expected {}",
                name.chars().take(64).collect::<String>(),
                allowed.join(", ")
            )));
        }
        if out
            .insert(name.clone().into_owned(), value.into_owned())
            .is_some()
        {
            return Err(ApiError::BadRequest(format!(
                "parameter {name} is given twice"
            )));
        }
    }
    Ok(out)
}
