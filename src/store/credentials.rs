//! Credentials of the HTTP API and the web faces: clients' API keys and web users.
//!
//! An API key is presented as the token `sb_<key id>_<secret>`: the key id (16 hexadecimal
//! digits) is public and finds the row, the secret (64 hexadecimal digits, 256 random bits) is
//! checked against its argon2id hash. The store keeps only PHC strings
//! (`$argon2id$v=19$m=…,t=…,p=…$<salt>$<hash>`), which carry their own parameters and salt, so
//! changing [`ARGON2_M_COST_KIB`] and its neighbours affects new credentials only.
//!
//! Hashing is slow by design (see [`ARGON2_M_COST_KIB`]): it runs on tokio's blocking pool, never
//! on a runtime worker, at most [`MAX_CONCURRENT_HASHES`] at a time (each takes 19 MiB), and
//! callers that verify on every request should cache successes.

use std::sync::OnceLock;

use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};
use rand::TryRng;
use rand::rngs::SysRng;
use sqlx::FromRow;
use tokio::sync::Semaphore;

use crate::model::Timestamp;

use super::records::{
    ApiKeyInfo, Credential, KeyId, NewApiKey, Principal, Role, ShownOnce, WebUserInfo,
};
use super::{MAX_LIST_LIMIT, Store, StoreError, on_pool, validate};

/// Argon2id memory cost in KiB (19 MiB: OWASP's recommended minimum with `t = 2`, `p = 1`).
/// With [`ARGON2_T_COST`] and [`ARGON2_P_COST`], one hash or verification takes about 25 ms on
/// an idle core of the 2-core development machine, 50 to 70 ms while both cores are busy
/// (argon2 optimised, as the dev profile builds it too).
pub const ARGON2_M_COST_KIB: u32 = 19 * 1024;
/// Argon2id passes over memory.
pub const ARGON2_T_COST: u32 = 2;
/// Argon2id lanes.
pub const ARGON2_P_COST: u32 = 1;
/// The most argon2 computations at once, process-wide; more wait their turn. Bounds memory to
/// this many times [`ARGON2_M_COST_KIB`] under a flood of bad tokens.
pub const MAX_CONCURRENT_HASHES: usize = 4;

/// Permits for argon2 computations.
static HASHING: Semaphore = Semaphore::const_new(MAX_CONCURRENT_HASHES);

/// The prefix of every API key token.
const TOKEN_PREFIX: &str = "sb_";
/// Random bytes in a key id (hex-encoded to [`KeyId::LEN`] digits).
const KEY_ID_BYTES: usize = KeyId::LEN / 2;
/// Random bytes in a secret.
const SECRET_BYTES: usize = 32;
/// Hexadecimal digits in a secret.
const SECRET_LEN: usize = SECRET_BYTES * 2;
/// Bytes of random salt per hash (the PHC recommendation).
const SALT_BYTES: usize = 16;
/// The length of every well-formed token.
const TOKEN_LEN: usize = TOKEN_PREFIX.len() + KeyId::LEN + 1 + SECRET_LEN;

const INSERT_API_KEY: &str = "\
    INSERT INTO api_keys (key_id, tenant, secret_hash, label, role, created_at) \
    VALUES ($1, $2, $3, $4, $5, $6)";

const API_KEY_BY_ID: &str = "\
    SELECT tenant, role, secret_hash AS hash, revoked_at FROM api_keys WHERE key_id = $1";

const REVOKE_API_KEY: &str = "\
    UPDATE api_keys SET revoked_at = $3 \
    WHERE tenant = $1 AND key_id = $2 AND revoked_at IS NULL \
    RETURNING id";

const API_KEYS_OF_TENANT: &str = "\
    SELECT id, key_id, tenant, label, role, created_at, revoked_at FROM api_keys \
    WHERE tenant = $1 ORDER BY id LIMIT $2";

const INSERT_WEB_USER: &str = "\
    INSERT INTO web_users (username, tenant, password_hash, role, created_at) \
    VALUES ($1, $2, $3, $4, $5) \
    ON CONFLICT (username) DO NOTHING \
    RETURNING id";

const WEB_USER_BY_NAME: &str = "\
    SELECT tenant, role, password_hash AS hash, disabled_at AS revoked_at \
    FROM web_users WHERE username = $1";

const DISABLE_WEB_USER: &str = "\
    UPDATE web_users SET disabled_at = $3 \
    WHERE tenant = $1 AND username = $2 AND disabled_at IS NULL \
    RETURNING id";

const WEB_USERS_OF_TENANT: &str = "\
    SELECT id, username, tenant, role, created_at, disabled_at FROM web_users \
    WHERE tenant = $1 ORDER BY id LIMIT $2";

/// What verification needs of a credential's row.
#[derive(FromRow)]
struct SecretRow {
    tenant: String,
    role: String,
    hash: String,
    revoked_at: Option<i64>,
}

#[derive(FromRow)]
struct ApiKeyRow {
    id: i64,
    key_id: String,
    tenant: String,
    label: String,
    role: String,
    created_at: i64,
    revoked_at: Option<i64>,
}

#[derive(FromRow)]
struct WebUserRow {
    id: i64,
    username: String,
    tenant: String,
    role: String,
    created_at: i64,
    disabled_at: Option<i64>,
}

impl Store {
    /// Creates an API key for `tenant` with `label` (1 to 200 characters) and `role`; returns
    /// its public id and the token to present, which the store cannot show again.
    pub async fn create_api_key(
        &self,
        tenant: &str,
        label: &str,
        role: Role,
    ) -> Result<NewApiKey, StoreError> {
        validate::name("tenant", tenant)?;
        validate::name("label", label)?;
        let operation = format!("creating an API key for tenant {tenant:?}");
        let key_id = KeyId(hex(&random::<KEY_ID_BYTES>(&operation)?));
        let secret = hex(&random::<SECRET_BYTES>(&operation)?);
        let token = format!("{TOKEN_PREFIX}{key_id}_{secret}");
        let hash = hash_secret(secret, operation.clone()).await?;
        let now = Timestamp::now();
        on_pool!(self, |pool| {
            sqlx::query(INSERT_API_KEY)
                .bind(key_id.as_str())
                .bind(tenant)
                .bind(&hash)
                .bind(label)
                .bind(role.code())
                .bind(now.0)
                .execute(pool)
                .await
                .map_err(|e| StoreError::database(&operation, e))?;
        });
        Ok(NewApiKey {
            key_id,
            token: ShownOnce(token),
        })
    }

    /// Who presented `token`, if it is a well-formed, known, unrevoked API key with the right
    /// secret; `None` otherwise, malformed input included (never an error, never a panic).
    ///
    /// Takes one argon2 verification (see [`ARGON2_M_COST_KIB`]) for every well-formed token,
    /// known or not, so that timing does not tell which key ids exist.
    pub async fn verify_api_key(&self, token: &str) -> Result<Option<Principal>, StoreError> {
        let Some((key_id, secret)) = parse_token(token) else {
            return Ok(None);
        };
        let row: Option<SecretRow> = on_pool!(self, |pool| {
            sqlx::query_as(API_KEY_BY_ID)
                .bind(key_id.as_str())
                .fetch_optional(pool)
                .await
                .map_err(|e| StoreError::database(format!("looking up API key {key_id}"), e))?
        });
        let what = format!("api_keys row of key {key_id}");
        let Some(valid) = check_secret(row, secret.to_owned(), &what).await? else {
            return Ok(None);
        };
        Ok(Some(Principal {
            tenant: valid.tenant,
            role: valid.role,
            credential: Credential::ApiKey(key_id),
        }))
    }

    /// Revokes `tenant`'s API key `key_id`: true if it was active, false if it was already
    /// revoked, is unknown or belongs to another tenant. A revoked key never verifies again.
    pub async fn revoke_api_key(&self, tenant: &str, key_id: &KeyId) -> Result<bool, StoreError> {
        validate::name("tenant", tenant)?;
        let revoked: Option<i64> = on_pool!(self, |pool| {
            sqlx::query_scalar(REVOKE_API_KEY)
                .bind(tenant)
                .bind(key_id.as_str())
                .bind(Timestamp::now().0)
                .fetch_optional(pool)
                .await
                .map_err(|e| {
                    StoreError::database(
                        format!("revoking API key {key_id} of tenant {tenant:?}"),
                        e,
                    )
                })?
        });
        Ok(revoked.is_some())
    }

    /// `tenant`'s API keys, revoked ones included, oldest first (at most
    /// [`MAX_LIST_LIMIT`]); never their secrets or hashes.
    pub async fn list_api_keys(&self, tenant: &str) -> Result<Vec<ApiKeyInfo>, StoreError> {
        validate::name("tenant", tenant)?;
        let rows: Vec<ApiKeyRow> = on_pool!(self, |pool| {
            sqlx::query_as(API_KEYS_OF_TENANT)
                .bind(tenant)
                .bind(i64::from(MAX_LIST_LIMIT))
                .fetch_all(pool)
                .await
                .map_err(|e| {
                    StoreError::database(format!("listing the API keys of tenant {tenant:?}"), e)
                })?
        });
        rows.into_iter()
            .map(|row| {
                let where_ = format!("api_keys row {}", row.id);
                Ok(ApiKeyInfo {
                    key_id: row.key_id.parse().map_err(|reason| StoreError::Corrupt {
                        row: where_.clone(),
                        column: "key_id",
                        value: row.key_id.clone(),
                        reason,
                    })?,
                    tenant: row.tenant,
                    label: row.label,
                    role: role_code(&where_, &row.role)?,
                    created_at: Timestamp(row.created_at),
                    revoked_at: row.revoked_at.map(Timestamp),
                })
            })
            .collect()
    }

    /// Creates web user `username` (1 to 200 characters, unique across tenants) of `tenant`
    /// with `password` (8 to 256 characters) and `role`. A taken name is refused with
    /// [`StoreError::DuplicateUser`].
    pub async fn create_web_user(
        &self,
        tenant: &str,
        username: &str,
        password: &str,
        role: Role,
    ) -> Result<(), StoreError> {
        validate::name("tenant", tenant)?;
        validate::name("username", username)?;
        validate::password(password)?;
        let operation = format!("creating web user {username:?} of tenant {tenant:?}");
        let hash = hash_secret(password.to_owned(), operation.clone()).await?;
        let created: Option<i64> = on_pool!(self, |pool| {
            sqlx::query_scalar(INSERT_WEB_USER)
                .bind(username)
                .bind(tenant)
                .bind(&hash)
                .bind(role.code())
                .bind(Timestamp::now().0)
                .fetch_optional(pool)
                .await
                .map_err(|e| StoreError::database(&operation, e))?
        });
        match created {
            Some(_) => Ok(()),
            None => Err(StoreError::DuplicateUser {
                username: username.to_owned(),
            }),
        }
    }

    /// Who signs in with `username` and `password`, if the user exists, is not disabled and the
    /// password is right; `None` otherwise (never an error for bad input, never a panic).
    pub async fn verify_web_user(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Option<Principal>, StoreError> {
        if validate::name("username", username).is_err()
            || password.chars().count() > validate::MAX_PASSWORD_CHARS
        {
            return Ok(None);
        }
        let row: Option<SecretRow> = on_pool!(self, |pool| {
            sqlx::query_as(WEB_USER_BY_NAME)
                .bind(username)
                .fetch_optional(pool)
                .await
                .map_err(|e| StoreError::database(format!("looking up web user {username:?}"), e))?
        });
        let what = format!("web_users row of {username:?}");
        let Some(valid) = check_secret(row, password.to_owned(), &what).await? else {
            return Ok(None);
        };
        Ok(Some(Principal {
            tenant: valid.tenant,
            role: valid.role,
            credential: Credential::WebUser(username.to_owned()),
        }))
    }

    /// Disables `tenant`'s web user `username`: true if it was active, false if it was already
    /// disabled, is unknown or belongs to another tenant.
    pub async fn disable_web_user(&self, tenant: &str, username: &str) -> Result<bool, StoreError> {
        validate::name("tenant", tenant)?;
        validate::name("username", username)?;
        let disabled: Option<i64> = on_pool!(self, |pool| {
            sqlx::query_scalar(DISABLE_WEB_USER)
                .bind(tenant)
                .bind(username)
                .bind(Timestamp::now().0)
                .fetch_optional(pool)
                .await
                .map_err(|e| {
                    StoreError::database(
                        format!("disabling web user {username:?} of tenant {tenant:?}"),
                        e,
                    )
                })?
        });
        Ok(disabled.is_some())
    }

    /// `tenant`'s web users, disabled ones included, oldest first (at most
    /// [`MAX_LIST_LIMIT`]); never their password hashes.
    pub async fn list_web_users(&self, tenant: &str) -> Result<Vec<WebUserInfo>, StoreError> {
        validate::name("tenant", tenant)?;
        let rows: Vec<WebUserRow> = on_pool!(self, |pool| {
            sqlx::query_as(WEB_USERS_OF_TENANT)
                .bind(tenant)
                .bind(i64::from(MAX_LIST_LIMIT))
                .fetch_all(pool)
                .await
                .map_err(|e| {
                    StoreError::database(format!("listing the web users of tenant {tenant:?}"), e)
                })?
        });
        rows.into_iter()
            .map(|row| {
                Ok(WebUserInfo {
                    role: role_code(&format!("web_users row {}", row.id), &row.role)?,
                    username: row.username,
                    tenant: row.tenant,
                    created_at: Timestamp(row.created_at),
                    disabled_at: row.disabled_at.map(Timestamp),
                })
            })
            .collect()
    }
}

/// A credential whose secret matched.
struct Valid {
    tenant: String,
    role: Role,
}

/// Checks `secret` against `row`'s hash; `None` if there is no row, the secret is wrong or the
/// credential is revoked. Without a row, verifies against a dummy hash so that an unknown name
/// costs the same time as a known one.
async fn check_secret(
    row: Option<SecretRow>,
    secret: String,
    what: &str,
) -> Result<Option<Valid>, StoreError> {
    let Some(row) = row else {
        verify_secret(secret, None).await;
        return Ok(None);
    };
    let Some(matches) = verify_secret(secret, Some(row.hash)).await else {
        return Err(StoreError::Corrupt {
            row: what.to_owned(),
            column: "hash",
            value: "(not shown)".to_owned(),
            reason: "is not an argon2 PHC string".to_owned(),
        });
    };
    if !matches || row.revoked_at.is_some() {
        return Ok(None);
    }
    Ok(Some(Valid {
        role: role_code(what, &row.role)?,
        tenant: row.tenant,
    }))
}

/// `sb_<key id>_<secret>` split into its key id and secret, if it has exactly that form.
fn parse_token(token: &str) -> Option<(KeyId, &str)> {
    if token.len() != TOKEN_LEN {
        return None;
    }
    let rest = token.strip_prefix(TOKEN_PREFIX)?;
    let (key_id, secret) = rest.split_once('_')?;
    let is_hex = |s: &str| s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !KeyId::is_valid(key_id) || secret.len() != SECRET_LEN || !is_hex(secret) {
        return None;
    }
    Some((KeyId(key_id.to_owned()), secret))
}

/// The hasher with Switchboard's parameters.
fn hasher() -> Result<Argon2<'static>, argon2::Error> {
    let params = Params::new(ARGON2_M_COST_KIB, ARGON2_T_COST, ARGON2_P_COST, None)?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// The PHC string of `secret` hashed with a fresh random salt, computed off the runtime.
async fn hash_secret(secret: String, operation: String) -> Result<String, StoreError> {
    let crypto = |reason: String| StoreError::Crypto {
        operation: operation.clone(),
        reason,
    };
    let salt = random::<SALT_BYTES>(&operation)?;
    let _permit = HASHING.acquire().await.map_err(|e| crypto(e.to_string()))?;
    tokio::task::spawn_blocking(move || {
        let hasher = hasher().map_err(|e| e.to_string())?;
        hasher
            .hash_password_with_salt(secret.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| crypto(e.to_string()))?
    .map_err(crypto)
}

/// Whether `secret` matches the PHC string `hash` (the dummy hash if `None`), computed off the
/// runtime; `None` if `hash` is not a PHC string or the computation failed.
async fn verify_secret(secret: String, hash: Option<String>) -> Option<bool> {
    let _permit = HASHING.acquire().await.ok()?;
    tokio::task::spawn_blocking(move || {
        let hash = match &hash {
            Some(hash) => PasswordHash::new(hash),
            None => PasswordHash::new(dummy_hash()),
        }
        .ok()?;
        // The algorithm, version and parameters come from the PHC string.
        let verifier = Argon2::default();
        match verifier.verify_password(secret.as_bytes(), &hash) {
            Ok(()) => Some(true),
            Err(argon2::password_hash::Error::PasswordInvalid) => Some(false),
            Err(_) => None,
        }
    })
    .await
    .ok()
    .flatten()
}

/// A valid hash of nothing anyone can present, with Switchboard's parameters: what unknown
/// names are verified against.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        // On failure, empty: verifying against it then fails at once, which only costs timing.
        hasher()
            .ok()
            .and_then(|h| {
                h.hash_password_with_salt(b"\0no such credential\0", b"switchboard-dummy")
                    .ok()
            })
            .map(|hash| hash.to_string())
            .unwrap_or_default()
    })
}

/// `N` bytes from the operating system's random source.
fn random<const N: usize>(operation: &str) -> Result<[u8; N], StoreError> {
    let mut bytes = [0u8; N];
    SysRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| StoreError::Crypto {
            operation: operation.to_owned(),
            reason: format!("the system's random source failed: {e}"),
        })?;
    Ok(bytes)
}

/// Lowercase hexadecimal.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

fn role_code(row: &str, code: &str) -> Result<Role, StoreError> {
    code.parse().map_err(|reason| StoreError::Corrupt {
        row: row.to_owned(),
        column: "role",
        value: code.to_owned(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_parse_only_in_their_exact_form() {
        let key = "0123456789abcdef";
        let secret = "a".repeat(SECRET_LEN);
        let good = format!("sb_{key}_{secret}");
        let (id, s) = parse_token(&good).unwrap();
        assert_eq!((id.as_str(), s), (key, secret.as_str()));
        for bad in [
            String::new(),
            "sb_".to_owned(),
            "sb__".to_owned(),
            format!("xb_{key}_{secret}"),
            format!("sb_{key}-{secret}"),
            format!("sb_{}_{secret}", key.to_uppercase()),
            format!("sb_{key}_{}", "A".repeat(SECRET_LEN)),
            format!("sb_{key}_{secret}a"),
            format!("sb_{key}_{}é", &secret[..SECRET_LEN - 2]),
            format!("sb_{key}__{}", &secret[1..]),
            "é".repeat(TOKEN_LEN / 2),
        ] {
            assert!(parse_token(&bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn hex_is_lowercase_and_two_digits_per_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
    }

    #[test]
    fn the_dummy_hash_is_a_real_argon2id_hash() {
        let dummy = dummy_hash();
        assert!(
            dummy.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{dummy}"
        );
    }
}
