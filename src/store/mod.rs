//! Durable records: contacts and their lifecycle, call detail records, agent state history,
//! the credentials of the HTTP API and the catalog administrators edit, in SQLite (the embedded default) or PostgreSQL
//! (production), through one code path.
//!
//! "One code path": every operation is written once, as SQL both databases accept (`$N` binds,
//! `RETURNING`, integer instants, text codes) and Rust that `on_pool!` compiles once per
//! backend. The schema lives in two migration trees, `migrations/sqlite` and
//! `migrations/postgres`, embedded in the binary and applied by [`Store::open`].
//!
//! Conventions: instants are BIGINT microseconds ([`Timestamp`](crate::model::Timestamp)`.0`),
//! states and media types are their short stable codes, JSON is TEXT. Inputs are validated at
//! this boundary (see the limits in [`MAX_NAME_CHARS`] and its neighbours), so both backends
//! accept and refuse the same things.

mod agent_history;
mod catalog;
mod cdrs;
mod contacts;
mod credentials;
mod error;
mod location;
mod records;
mod validate;

use std::fmt;
use std::time::Duration;

use sqlx::Connection;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use credentials::{ARGON2_M_COST_KIB, ARGON2_P_COST, ARGON2_T_COST, MAX_CONCURRENT_HASHES};
pub use error::StoreError;
pub use records::{
    AgentStateChange, AgentStateTotals, ApiKeyInfo, CatalogItem, CatalogKind, Cdr, CdrCursor,
    CdrFilter, CdrId, CdrPage, ContactEvent, Credential, Disposition, KeyId, LastAgent, NewApiKey,
    NewCdr, NewContact, Principal, Role, ShownOnce, StateCounts, StoredContact, Transition,
    WebUserInfo,
};
pub use validate::{
    DEFAULT_LIST_LIMIT, MAX_ADDRESS_CHARS, MAX_AGENT_STATE_BATCH, MAX_ATTRIBUTE_VALUE_CHARS,
    MAX_ATTRIBUTES, MAX_CAUSE_CHARS, MAX_CRITERIA_BYTES, MAX_DEFINITION_BYTES, MAX_DETAIL_CHARS,
    MAX_LIST_LIMIT, MAX_NAME_CHARS, MAX_PASSWORD_CHARS, MAX_PATH_CHARS, MIN_PASSWORD_CHARS,
    attributes as check_attributes,
};

use location::Location;

/// The SQLite schema, embedded at build time.
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
/// The PostgreSQL schema, embedded at build time.
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

/// How long to wait for a pooled connection before giving up.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections held by [`Store::open`] (the configuration's default for `store.max_connections`).
pub const DEFAULT_MAX_CONNECTIONS: u32 = 8;

/// Which database a [`Store`] is backed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoreKind {
    /// SQLite, a file or in memory.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl fmt::Display for StoreKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StoreKind::Sqlite => "SQLite",
            StoreKind::Postgres => "PostgreSQL",
        })
    }
}

/// The connection pool of one backend.
#[derive(Debug, Clone)]
enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the store's pool: the same code, compiled for each backend.
macro_rules! on_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.backend {
            $crate::store::Backend::Sqlite($pool) => $body,
            $crate::store::Backend::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// Switchboard's durable store. Cheap to clone (clones share one connection pool).
#[derive(Debug, Clone)]
pub struct Store {
    backend: Backend,
    /// The URL it was opened with, password redacted.
    url: String,
}

impl Store {
    /// Opens the store at `url` and applies any pending migrations.
    ///
    /// - `postgres://…` or `postgresql://…`: PostgreSQL (the database must exist);
    /// - `sqlite::memory:`: a private in-memory SQLite database (for tests);
    /// - `sqlite://PATH`, `sqlite:PATH` or a plain file path: a SQLite file, created with its
    ///   directory if missing, in WAL mode with foreign keys enforced.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        Store::open_with(url, DEFAULT_MAX_CONNECTIONS).await
    }

    /// As [`open`](Self::open), holding at most `max_connections` connections (at least one;
    /// `store.max_connections` in the configuration).
    pub async fn open_with(url: &str, max_connections: u32) -> Result<Store, StoreError> {
        let max_connections = max_connections.max(1);
        let location = location::parse(url)?;
        let redacted = location::redact(url);
        let backend = match location {
            Location::SqliteFile(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    tokio::fs::create_dir_all(dir).await.map_err(|source| {
                        StoreError::CreateDir {
                            url: redacted.clone(),
                            path: dir.to_owned(),
                            source,
                        }
                    })?;
                }
                let options = SqliteConnectOptions::new()
                    .filename(&path)
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    // FULL: a committed contact survives a power cut, not only a crash.
                    .synchronous(SqliteSynchronous::Full)
                    .foreign_keys(true);
                let pool = SqlitePoolOptions::new()
                    .max_connections(max_connections)
                    // A local file's connection does not go away: a ping before every use
                    // would only add a round trip to the database thread per statement.
                    .test_before_acquire(false)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect_with(options)
                    .await
                    .map_err(|source| StoreError::Connect {
                        kind: StoreKind::Sqlite,
                        url: redacted.clone(),
                        source,
                    })?;
                Backend::Sqlite(pool)
            }
            Location::SqliteMemory => {
                // Each in-memory database lives as long as a connection to it: keep exactly one,
                // forever.
                let options = SqliteConnectOptions::new()
                    .in_memory(true)
                    .foreign_keys(true);
                let pool = SqlitePoolOptions::new()
                    .max_connections(1)
                    .min_connections(1)
                    // No ping before use: a round trip saved per statement, and an acquire
                    // that is cancelled cannot drop the one connection (and the database).
                    .test_before_acquire(false)
                    .idle_timeout(None)
                    .max_lifetime(None)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect_with(options)
                    .await
                    .map_err(|source| StoreError::Connect {
                        kind: StoreKind::Sqlite,
                        url: redacted.clone(),
                        source,
                    })?;
                Backend::Sqlite(pool)
            }
            Location::Postgres(url) => {
                let options: PgConnectOptions =
                    url.parse()
                        .map_err(|e: sqlx::Error| StoreError::InvalidUrl {
                            url: redacted.clone(),
                            reason: e.to_string(),
                        })?;
                let connect_error = |source| StoreError::Connect {
                    kind: StoreKind::Postgres,
                    url: redacted.clone(),
                    source,
                };
                // One direct connection first: the pool would retry a refused connection until
                // its timeout and then report only "timed out"; this reports the cause at once.
                let probe = PgConnection::connect_with(&options)
                    .await
                    .map_err(connect_error)?;
                probe.close().await.map_err(connect_error)?;
                let pool = PgPoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect_lazy_with(options);
                Backend::Postgres(pool)
            }
        };
        let store = Store {
            backend,
            url: redacted,
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Applies the embedded migrations that the database lacks; does nothing if it is current.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let result = match &self.backend {
            Backend::Sqlite(pool) => SQLITE_MIGRATIONS.run(pool).await,
            Backend::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await,
        };
        result.map_err(|source| StoreError::Migrate {
            kind: self.kind(),
            url: self.url.clone(),
            source,
        })
    }

    /// Which database backs this store.
    pub fn kind(&self) -> StoreKind {
        match self.backend {
            Backend::Sqlite(_) => StoreKind::Sqlite,
            Backend::Postgres(_) => StoreKind::Postgres,
        }
    }

    /// The URL the store was opened with, password redacted (for logs).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Closes every connection, waiting for work in progress; later calls fail.
    pub async fn close(&self) {
        on_pool!(self, |pool| pool.close().await)
    }
}
