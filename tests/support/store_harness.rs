//! Where the store contract runs: a SQLite file in a temporary directory, SQLite in memory, and
//! a fresh database on the PostgreSQL server named by `SWITCHBOARD_TEST_POSTGRES_URL`.

#![allow(dead_code)]

use std::future::Future;
use std::io::Write;
use std::sync::Once;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::{AssertSqlSafe, Connection, PgConnection};
use switchboard::store::Store;
use tempfile::TempDir;

/// The variable that names a PostgreSQL server (an admin URL, e.g.
/// `postgres://postgres:PASSWORD@127.0.0.1:5432/postgres`) for the PostgreSQL half of the suite.
pub const POSTGRES_URL_VAR: &str = "SWITCHBOARD_TEST_POSTGRES_URL";

/// A SQLite database file in its own temporary directory, removed on drop.
pub struct SqliteFile {
    /// The store URL of the file.
    pub url: String,
    _dir: TempDir,
}

impl SqliteFile {
    /// A new, not yet created, database file.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("creating a temporary directory");
        let url = format!("sqlite://{}", dir.path().join("switchboard.db").display());
        SqliteFile { url, _dir: dir }
    }

    /// Opens (and on first use creates) the store.
    pub async fn open(&self) -> Store {
        Store::open(&self.url)
            .await
            .unwrap_or_else(|e| panic!("opening {}: {e}", self.url))
    }
}

/// Runs `test` with the URL of a fresh database on the PostgreSQL server named by
/// [`POSTGRES_URL_VAR`], then drops the database, whether `test` passed or panicked.
/// Without the variable, says loudly that the PostgreSQL tests were skipped, and returns.
pub async fn on_postgres<F, Fut>(test: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Ok(admin_url) = std::env::var(POSTGRES_URL_VAR) else {
        skipped_banner();
        return;
    };
    let name = fresh_database_name();
    let mut admin = PgConnection::connect(&admin_url)
        .await
        .unwrap_or_else(|e| panic!("connecting to {POSTGRES_URL_VAR}: {e}"));
    // `name` is made of [a-z0-9_] by fresh_database_name: safe to splice.
    sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut admin)
        .await
        .unwrap_or_else(|e| panic!("creating test database {name}: {e}"));

    let outcome = tokio::spawn(test(with_database(&admin_url, &name))).await;

    sqlx::raw_sql(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await
    .unwrap_or_else(|e| panic!("dropping test database {name}: {e}"));
    let _ = admin.close().await;
    if let Err(failure) = outcome {
        std::panic::resume_unwind(failure.into_panic());
    }
}

/// Prints, once per test binary and past the test harness's output capture, that the
/// PostgreSQL half of the contract did not run.
fn skipped_banner() {
    static BANNER: Once = Once::new();
    BANNER.call_once(|| {
        let line = "=".repeat(78);
        let _ = writeln!(
            std::io::stderr(),
            "\n{line}\nSKIPPED: PostgreSQL contract tests — set {POSTGRES_URL_VAR} \
             (see DEVELOPERS.md)\n{line}\n"
        );
    });
}

/// A database name no other test run uses: process, time and a counter.
fn fresh_database_name() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "switchboard_test_{}_{nanos}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// `admin_url` with its database replaced by `database`, keeping credentials and parameters.
fn with_database(admin_url: &str, database: &str) -> String {
    let (scheme, rest) = admin_url
        .split_once("://")
        .unwrap_or_else(|| panic!("{POSTGRES_URL_VAR} is not a URL"));
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let query = tail.find('?').map(|at| &tail[at..]).unwrap_or("");
    format!("{scheme}://{authority}/{database}{query}")
}

#[test]
fn test_database_urls_keep_credentials_and_parameters() {
    assert_eq!(
        with_database(
            "postgres://u:p@127.0.0.1:5432/postgres?sslmode=disable",
            "t1"
        ),
        "postgres://u:p@127.0.0.1:5432/t1?sslmode=disable"
    );
    assert_eq!(with_database("postgresql://h", "t2"), "postgresql://h/t2");
}
