//! The store's one error type.

use std::path::PathBuf;

use crate::model::{ContactId, ContactState};

use super::StoreKind;

/// Everything that can go wrong in the store. Each message says what failed and with which input;
/// store URLs in messages have their passwords replaced by `***`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store URL is neither a SQLite location nor a PostgreSQL URL.
    #[error(
        "store URL {url:?} is not usable: {reason} (expected sqlite://PATH, sqlite:PATH, a file \
         path, sqlite::memory:, postgres://… or postgresql://…)"
    )]
    InvalidUrl {
        /// The URL as given, password redacted.
        url: String,
        /// Why it was refused.
        reason: String,
    },

    /// The directory that should hold a SQLite database file could not be created.
    #[error("could not create directory {path:?} for the SQLite store {url:?}: {source}")]
    CreateDir {
        /// The store URL as given.
        url: String,
        /// The directory that could not be created.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },

    /// The database could not be opened or reached.
    #[error("could not open the {kind} store at {url:?}: {source}")]
    Connect {
        /// Which backend was being opened.
        kind: StoreKind,
        /// The store URL, password redacted.
        url: String,
        /// What the driver said.
        source: sqlx::Error,
    },

    /// Applying the embedded schema migrations failed.
    #[error("could not migrate the {kind} store at {url:?}: {source}")]
    Migrate {
        /// Which backend was being migrated.
        kind: StoreKind,
        /// The store URL, password redacted.
        url: String,
        /// What the migrator said.
        source: sqlx::migrate::MigrateError,
    },

    /// An input was refused at the store's boundary, before any SQL ran.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// Which field, e.g. `tenant`, `attributes["lang"]` or `transitions[2].agent`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A transition named a contact the store does not hold; the whole batch was rolled back.
    #[error("{contact} does not exist: transition to {requested} refused, batch rolled back")]
    UnknownContact {
        /// The contact the transition named.
        contact: ContactId,
        /// The state the transition asked for.
        requested: ContactState,
    },

    /// A transition tried to move a contact out of a final state; the whole batch was rolled back.
    #[error(
        "{contact} is already {current} (a final state): transition to {requested} refused, \
         batch rolled back"
    )]
    FinalState {
        /// The contact the transition named.
        contact: ContactId,
        /// The final state it is in.
        current: ContactState,
        /// The state the transition asked for.
        requested: ContactState,
    },

    /// A call detail record was written for a contact that already has one; the first is kept.
    #[error("{contact} already has a call detail record: the second write was refused")]
    DuplicateCdr {
        /// The contact.
        contact: ContactId,
    },

    /// A web user was created with a name that is taken (by any tenant).
    #[error("web user {username:?} already exists")]
    DuplicateUser {
        /// The name asked for.
        username: String,
    },

    /// A catalog item's name belongs to another client's item.
    #[error("{kind} {name:?} belongs to another client")]
    NotOwned {
        /// What the item is.
        kind: super::CatalogKind,
        /// Its name.
        name: String,
    },

    /// Hashing a secret, or drawing random bytes for one, failed.
    #[error("{operation} failed: {reason}")]
    Crypto {
        /// What the store was doing, e.g. `hashing the secret of a new API key for tenant "acme"`.
        operation: String,
        /// What the hashing library or the operating system said.
        reason: String,
    },

    /// A statement failed in the database.
    #[error("{operation} failed: {source}")]
    Database {
        /// What the store was doing, with its inputs.
        operation: String,
        /// What the driver said.
        source: sqlx::Error,
    },

    /// A stored row holds a value this build cannot read (e.g. an unknown state code).
    #[error("{row}: column {column} holds {value:?}, which {reason}")]
    Corrupt {
        /// The row, e.g. `contacts row 42`.
        row: String,
        /// The column.
        column: &'static str,
        /// The stored value, as text.
        value: String,
        /// Why it could not be read.
        reason: String,
    },
}

impl StoreError {
    /// A failed statement, described by `operation`.
    pub(crate) fn database(operation: impl Into<String>, source: sqlx::Error) -> Self {
        StoreError::Database {
            operation: operation.into(),
            source,
        }
    }

    /// An input refused at the boundary.
    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        StoreError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
