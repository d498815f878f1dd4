//! The API's one error type: a status and a message that says what failed, always rendered
//! as JSON `{"error": "..."}`, and the layer that turns axum's own plain-text rejections
//! (bad paths, bodies too large, unknown routes) into the same shape.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, http::Request, middleware::Next};
use serde_json::json;

use crate::controller::{CommandError, Stopped};
use crate::store::StoreError;

/// Longest plain-text body the JSON layer rewraps; longer ones are cut (bounded memory).
const MAX_REWRAPPED_BYTES: usize = 4096;

/// What an API request failed with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// No valid credential was presented (401).
    #[error("{0}")]
    Unauthorized(String),
    /// The credential is valid but may not do this (403).
    #[error("{0}")]
    Forbidden(String),
    /// Nothing by that name or id in the caller's tenant (404).
    #[error("{0}")]
    NotFound(String),
    /// A parameter or body is malformed (400).
    #[error("{0}")]
    BadRequest(String),
    /// The body is well-formed but its content is refused (422).
    #[error("{0}")]
    Unprocessable(String),
    /// The target's state does not allow this now (409).
    #[error("{0}")]
    Conflict(String),
    /// The controller or the store cannot answer now (503).
    #[error("{0}")]
    Unavailable(String),
}

impl ApiError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = (status, Json(json!({ "error": self.to_string() }))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            // RFC 9110 §11.6.1: a 401 carries the schemes the server accepts.
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(
                    "Bearer realm=\"switchboard\", Basic realm=\"switchboard\"",
                ),
            );
        }
        response
    }
}

impl From<CommandError> for ApiError {
    fn from(error: CommandError) -> Self {
        let message = error.to_string();
        match error {
            CommandError::NotFound(_) => ApiError::NotFound(message),
            CommandError::Invalid(_) => ApiError::Unprocessable(message),
            CommandError::Conflict(_) => ApiError::Conflict(message),
            _ => ApiError::Unavailable(message),
        }
    }
}

impl From<Stopped> for ApiError {
    fn from(error: Stopped) -> Self {
        ApiError::Unavailable(error.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Invalid { .. } => ApiError::BadRequest(error.to_string()),
            StoreError::DuplicateUser { .. } | StoreError::NotOwned { .. } => {
                ApiError::Conflict(error.to_string())
            }
            other => {
                // Database and crypto failures name internals: log them, answer in general terms.
                tracing::error!(error = %other, "the store failed while serving an API request");
                ApiError::Unavailable("the store is unavailable; try again".to_owned())
            }
        }
    }
}

/// Rewraps every error response that is not JSON yet (axum's extractor rejections, the body
/// limit) as `{"error": "<its text>"}`, keeping its status.
pub(crate) async fn json_errors(request: Request<Body>, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, MAX_REWRAPPED_BYTES).await {
        Ok(bytes) if !bytes.is_empty() => String::from_utf8_lossy(&bytes).into_owned(),
        _ => status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_owned(),
    };
    let mut rewrapped = (status, Json(json!({ "error": text }))).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            rewrapped.headers_mut().append(name.clone(), value.clone());
        }
    }
    rewrapped
}

/// The answer to a path no route matches.
pub(crate) async fn no_route(request: Request<Body>) -> ApiError {
    ApiError::NotFound(format!(
        "no route for {} {}",
        request.method(),
        request.uri().path()
    ))
}

/// The answer to a known path with a method it does not take.
pub(crate) async fn wrong_method(request: Request<Body>) -> Response {
    let error = json!({
        "error": format!("{} is not allowed on {}", request.method(), request.uri().path())
    });
    (StatusCode::METHOD_NOT_ALLOWED, Json(error)).into_response()
}
