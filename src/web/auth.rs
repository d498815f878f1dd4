//! Who is calling: `Authorization: Bearer sb_…` (an API key) or `Basic` (a web user), checked
//! on every `/api/v1` request, with a bounded cache of successful verifications because argon2
//! costs tens of milliseconds by design.
//!
//! The cache is keyed by a 128-bit keyed hash of the whole header value (SipHash with this
//! process's random keys), so it holds no secret and a guess cannot be matched against it
//! offline. Only successes are cached; a revocation through this API drops the credential's
//! entries at once, one made elsewhere (another process, the CLI) takes effect within
//! [`CACHE_TTL`].

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Request, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;

use crate::store::{Credential, KeyId, Principal, Role, Store, StoreError};

use super::App;
use super::error::ApiError;

/// How long a successful verification is trusted without asking the store again.
pub const CACHE_TTL: Duration = Duration::from_secs(60);
/// Most cached verifications; past it, expired entries go first, then everything.
pub const CACHE_CAPACITY: usize = 10_000;
/// Longest `Authorization` header looked at (a token is 84 bytes; Basic allows long passwords).
const MAX_HEADER_BYTES: usize = 1024;

/// The prefix and lengths of an API key token (`sb_<16 hex>_<64 hex>`), checked here so that a
/// malformed token gets its own message before the store is asked.
const TOKEN_PREFIX: &str = "sb_";
const SECRET_LEN: usize = 64;

/// Successful verifications, by keyed hash of the header value.
pub(crate) struct AuthCache {
    keys: (RandomState, RandomState),
    entries: Mutex<HashMap<u128, (Principal, Instant)>>,
}

impl AuthCache {
    /// An empty cache with fresh random hash keys.
    pub(crate) fn new() -> Self {
        AuthCache {
            keys: (RandomState::new(), RandomState::new()),
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn digest(&self, header: &str) -> u128 {
        (u128::from(self.keys.0.hash_one(header)) << 64) | u128::from(self.keys.1.hash_one(header))
    }

    fn get(&self, digest: u128, now: Instant) -> Option<Principal> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(&digest)
            .filter(|(_, expiry)| *expiry > now)
            .map(|(principal, _)| principal.clone())
    }

    fn put(&self, digest: u128, principal: Principal, now: Instant) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= CACHE_CAPACITY {
            entries.retain(|_, (_, expiry)| *expiry > now);
            if entries.len() >= CACHE_CAPACITY {
                // Still full of live entries: start over rather than grow (costs re-verification).
                entries.clear();
            }
        }
        entries.insert(digest, (principal, now + CACHE_TTL));
    }

    /// Forgets every cached verification of `credential` (after a revocation).
    pub(crate) fn forget(&self, credential: &Credential) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.retain(|_, (principal, _)| principal.credential != *credential);
    }
}

/// The caller of an `/api/v1` request, as the auth layer verified it.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl Caller {
    /// The caller's tenant: every request is scoped to it.
    pub fn tenant(&self) -> &str {
        &self.0.tenant
    }

    /// Refuses with 403 unless the caller's role is at least `needed`. The operator's keys and a
    /// client's keys do not stand in for each other: the operator manages clients and reads
    /// none of their data; no client's key manages clients.
    pub fn require(&self, needed: Role) -> Result<(), ApiError> {
        let operator = self.0.role == Role::Operator;
        if operator != (needed == Role::Operator) {
            return Err(ApiError::Forbidden(if operator {
                format!(
                    "{} is the operator's: it manages clients (/api/v1/clients) and reads none of                      their data; use one of the client's own keys",
                    self.describe()
                )
            } else {
                format!(
                    "this needs the operator's key; {} belongs to client {:?}",
                    self.describe(),
                    self.tenant()
                )
            }));
        }
        if self.0.role >= needed {
            return Ok(());
        }
        Err(ApiError::Forbidden(format!(
            "this needs the {needed} role; {} has the {} role",
            self.describe(),
            self.0.role
        )))
    }

    /// Refuses with 403 unless the caller manages keys where it is: a client's admin, or the
    /// operator (for the operator's own keys).
    pub fn require_key_manager(&self) -> Result<(), ApiError> {
        match self.0.role {
            Role::Operator => Ok(()),
            _ => self.require(Role::Admin),
        }
    }

    /// Whether the caller is the operator.
    pub fn is_operator(&self) -> bool {
        self.0.role == Role::Operator
    }

    /// Refuses with 403 unless the caller is the web user named `agent` or a supervisor.
    pub fn require_agent(&self, agent: &str) -> Result<(), ApiError> {
        if (self.0.role >= Role::Supervisor && self.0.role != Role::Operator)
            || matches!(&self.0.credential, Credential::WebUser(name) if name == agent)
        {
            return Ok(());
        }
        Err(ApiError::Forbidden(format!(
            "only agent {agent:?} (signed in as web user {agent:?}) or a supervisor may do this; \
             {} is neither",
            self.describe()
        )))
    }

    fn describe(&self) -> String {
        match &self.0.credential {
            Credential::ApiKey(id) => format!("API key {id}"),
            Credential::WebUser(name) => format!("web user {name:?}"),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        // Set by `authenticate`, which guards every /api/v1 route.
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| ApiError::Unauthorized("this route is not authenticated".to_owned()))
    }
}

/// What the `Authorization` header holds.
enum Presented<'a> {
    ApiKey(&'a str),
    WebUser(String, String),
}

/// The credential in `value`, or why it cannot be one (never saying which part was right).
fn parse_header(value: &str) -> Result<Presented<'_>, ApiError> {
    let malformed = |what: &str| {
        ApiError::Unauthorized(format!(
            "malformed Authorization header: {what}; expected `Bearer sb_<key id>_<secret>` \
             (API key) or `Basic <base64 of username:password>` (web user)"
        ))
    };
    let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
    let rest = rest.trim();
    // RFC 9110 §11.1: the scheme is case-insensitive.
    if scheme.eq_ignore_ascii_case("bearer") {
        if rest.is_empty() {
            return Err(malformed("the Bearer scheme has no token"));
        }
        let well_formed = rest.len() == TOKEN_PREFIX.len() + KeyId::LEN + 1 + SECRET_LEN
            && rest.starts_with(TOKEN_PREFIX)
            && rest.as_bytes()[TOKEN_PREFIX.len() + KeyId::LEN] == b'_'
            && rest[TOKEN_PREFIX.len()..]
                .bytes()
                .enumerate()
                .all(|(i, b)| i == KeyId::LEN || matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !well_formed {
            return Err(ApiError::Unauthorized(
                "malformed API key: a key has the form sb_<16 hex digits>_<64 hex digits>"
                    .to_owned(),
            ));
        }
        return Ok(Presented::ApiKey(rest));
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .map_err(|_| malformed("the Basic credentials are not base64"))?;
        let text = String::from_utf8(decoded)
            .map_err(|_| malformed("the Basic credentials are not UTF-8"))?;
        let (user, password) = text.split_once(':').ok_or_else(|| {
            malformed("the Basic credentials have no ':' between name and password")
        })?;
        return Ok(Presented::WebUser(user.to_owned(), password.to_owned()));
    }
    Err(malformed("unknown scheme"))
}

/// Verifies the `Authorization` header of an `/api/v1` request and records its [`Caller`]; 401
/// with a message that says what was wrong otherwise.
pub(crate) async fn authenticate(
    State(app): State<App>,
    mut request: Request<Body>,
    next: Next,
) -> Response {
    // Owned, so that no borrow of the (non-`Sync`) request lives across the store's await.
    let header = request.headers().get(header::AUTHORIZATION).cloned();
    match verify(&app, header).await {
        Ok(principal)
            if principal.role == Role::Operator && !operator_path(request.uri().path()) =>
        {
            // Every route of a client's data is closed to the operator, whether or not the
            // handler checks roles itself.
            ApiError::Forbidden(
                "the operator's key manages clients (/api/v1/clients) and its own keys \
                 (/api/v1/keys); a client's data needs one of the client's keys"
                    .to_owned(),
            )
            .into_response()
        }
        Ok(principal) => {
            request.extensions_mut().insert(Caller(principal));
            next.run(request).await
        }
        Err(error) => error.into_response(),
    }
}

/// Whether the operator may reach `path` (as seen inside `/api/v1`).
fn operator_path(path: &str) -> bool {
    let path = path.strip_prefix("/api/v1").unwrap_or(path);
    ["/clients", "/keys"].iter().any(|root| {
        path.strip_prefix(root)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

async fn verify(app: &App, header: Option<HeaderValue>) -> Result<Principal, ApiError> {
    let Some(value) = header else {
        return Err(ApiError::Unauthorized(
            "missing Authorization header: send `Bearer <API key>` or HTTP Basic (web user)"
                .to_owned(),
        ));
    };
    if value.len() > MAX_HEADER_BYTES {
        return Err(ApiError::Unauthorized(format!(
            "malformed Authorization header: longer than {MAX_HEADER_BYTES} bytes"
        )));
    }
    let value = value.to_str().map_err(|_| {
        ApiError::Unauthorized("malformed Authorization header: not visible ASCII".to_owned())
    })?;
    let now = Instant::now();
    let digest = app.auth.digest(value);
    if let Some(principal) = app.auth.get(digest, now) {
        return Ok(principal);
    }
    let principal = match parse_header(value)? {
        Presented::ApiKey(token) => app
            .store
            .verify_api_key(token)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| ApiError::Unauthorized("unknown or revoked API key".to_owned()))?,
        Presented::WebUser(user, password) => app
            .store
            .verify_web_user(&user, &password)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| {
                ApiError::Unauthorized(
                    "wrong username or password, or the user is disabled".to_owned(),
                )
            })?,
    };
    app.auth.put(digest, principal.clone(), now);
    Ok(principal)
}

fn unavailable(error: StoreError) -> ApiError {
    tracing::error!(%error, "could not verify a credential");
    ApiError::Unavailable(
        "could not verify the credential now: the store is unavailable".to_owned(),
    )
}

/// Why [`bootstrap_admin_key`] made no key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BootstrapError {
    /// The tenant already has an active admin key: use it to make more.
    #[error(
        "tenant {tenant:?} already has an active admin key ({key_id}); create further keys with it \
         (POST /api/v1/keys) or revoke it first"
    )]
    HasAdminKey {
        /// The tenant.
        tenant: String,
        /// Its first active admin key.
        key_id: KeyId,
    },
    /// The operator already has an active key: use it to make more.
    #[error(
        "the operator already has an active key ({key_id}); create further keys with it \
         (POST /api/v1/keys) or revoke it first"
    )]
    HasOperatorKey {
        /// Its first active key.
        key_id: KeyId,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The tenant operator keys are stored under: no client can be named so (the API refuses it
/// and the configuration's names are checked against it).
pub const OPERATOR_TENANT: &str = "*";

/// Creates the first admin API key of `tenant` and returns its token (shown once), unless the
/// tenant already has an active admin key. For `switchboard keys`.
pub async fn bootstrap_admin_key(store: &Store, tenant: &str) -> Result<String, BootstrapError> {
    match first_key(store, tenant, Role::Admin).await? {
        Ok(token) => Ok(token),
        Err(key_id) => Err(BootstrapError::HasAdminKey {
            tenant: tenant.to_owned(),
            key_id,
        }),
    }
}

/// Creates the operator's first API key and returns its token (shown once), unless the operator
/// has an active key. For `switchboard keys --operator`.
pub async fn bootstrap_operator_key(store: &Store) -> Result<String, BootstrapError> {
    first_key(store, OPERATOR_TENANT, Role::Operator)
        .await?
        .map_err(|key_id| BootstrapError::HasOperatorKey { key_id })
}

/// A new key of `role` for `tenant` (its token), or the id of the active key it has already.
async fn first_key(
    store: &Store,
    tenant: &str,
    role: Role,
) -> Result<Result<String, KeyId>, StoreError> {
    let keys = store.list_api_keys(tenant).await?;
    if let Some(key) = keys
        .into_iter()
        .find(|k| k.role == role && k.revoked_at.is_none())
    {
        return Ok(Err(key.key_id));
    }
    let label = format!("bootstrap {role}");
    let key = store.create_api_key(tenant, &label, role).await?;
    Ok(Ok(key.token.expose().to_owned()))
}

/// Shared by the router: a fresh cache behind an `Arc`.
pub(crate) fn cache() -> Arc<AuthCache> {
    Arc::new(AuthCache::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operator_reaches_the_clients_and_its_keys_only() {
        for path in [
            "/clients",
            "/clients/initech",
            "/clients/initech/keys",
            "/keys/abc",
        ] {
            assert!(operator_path(path), "{path}");
            assert!(operator_path(&format!("/api/v1{path}")), "{path}");
        }
        for path in ["/queues", "/clientsx", "/keysafe", "/cdrs", "/"] {
            assert!(!operator_path(path), "{path}");
        }
    }

    #[test]
    fn headers_parse_or_say_what_is_wrong() {
        let token = format!("sb_{}_{}", "0123456789abcdef", "a".repeat(64));
        assert!(matches!(
            parse_header(&format!("Bearer {token}")),
            Ok(Presented::ApiKey(_))
        ));
        assert!(matches!(
            parse_header(&format!("bearer  {token} ")),
            Ok(Presented::ApiKey(_))
        ));
        let basic = base64::engine::general_purpose::STANDARD.encode("ana:pass:word");
        match parse_header(&format!("Basic {basic}")) {
            Ok(Presented::WebUser(u, p)) => {
                assert_eq!((u.as_str(), p.as_str()), ("ana", "pass:word"))
            }
            _ => panic!("basic credentials parse"),
        }
        for (bad, says) in [
            ("Bearer", "no token"),
            ("Bearer sb_xyz", "malformed API key"),
            (
                &format!("Bearer {}", token.replace("_a", "-a")),
                "malformed API key",
            ),
            (
                &format!("Bearer {}é", &token[..token.len() - 2]),
                "malformed API key",
            ),
            ("Basic !!!", "not base64"),
            ("Basic YW5h", "no ':'"),
            ("Digest x", "unknown scheme"),
            ("", "unknown scheme"),
        ] {
            match parse_header(bad) {
                Err(e) => assert!(e.to_string().contains(says), "{bad:?}: {e}"),
                Ok(_) => panic!("{bad:?} parsed"),
            }
        }
    }

    #[test]
    fn the_cache_stays_bounded_and_forgets_revoked_credentials() {
        let cache = AuthCache::new();
        let now = Instant::now();
        let principal = |n: usize| Principal {
            tenant: "acme".to_owned(),
            role: Role::Client,
            credential: Credential::WebUser(format!("u{n}")),
        };
        for n in 0..CACHE_CAPACITY + 10 {
            cache.put(cache.digest(&format!("h{n}")), principal(n), now);
        }
        let len = cache.entries.lock().map(|e| e.len()).unwrap_or(usize::MAX);
        assert!(len <= CACHE_CAPACITY, "{len}");
        let last = CACHE_CAPACITY + 9;
        let digest = cache.digest(&format!("h{last}"));
        assert!(cache.get(digest, now).is_some());
        assert!(cache.get(digest, now + CACHE_TTL).is_none(), "expired");
        cache.forget(&principal(last).credential);
        assert!(cache.get(digest, now).is_none(), "forgotten");
    }
}
