//! The storage error type: what a caller can act on, with the cause attached.
//! Callers match on variants, never on message text.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum StorageError {
    /// Another process (normally a running server) holds the database lock.
    #[error("the data directory {dir} is in use by another process (a running tachigo-auth server holds its lock); stop that process or use its admin API")]
    Locked { dir: String },
    #[error("storage I/O error: {0}")]
    Sled(#[from] sled::Error),
    /// The database server could not be reached, or did not answer in time.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// The database answered with an error.
    #[error("database error: {0}")]
    Backend(String),
    /// The database was migrated by a newer release than this one.
    #[error("the database schema is at version {found}, newer than this build's {known}; run a release that knows it (or restore a backup)")]
    SchemaTooNew { found: i64, known: i64 },
    #[error("a stored record could not be decoded: {0}")]
    Corrupt(String),
    #[error("the email address is already registered")]
    EmailTaken,
    #[error("the provider account is already linked to another user")]
    AccountTaken,
    /// An import target already holds data.
    #[error("the target store is not empty: it already holds {0}")]
    NotEmpty(String),
    #[error("the durability flusher has stopped; the database is closing")]
    FlusherStopped,
    /// A fenced write found that another node has claimed the user since
    /// (see [`crate::Fence`]): nothing was written.
    #[error("another node owns this user now; nothing was written")]
    Fenced,
}
