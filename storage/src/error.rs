//! The storage error type: what a caller can act on, with the cause attached.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum StorageError {
    /// Another process (normally a running server) holds the database lock.
    #[error("the data directory {dir} is in use by another process (a running tachigo-auth server holds its lock); stop that process or use its admin API")]
    Locked { dir: String },
    #[error("storage I/O error: {0}")]
    Sled(#[from] sled::Error),
    #[error("a stored record could not be decoded: {0}")]
    Corrupt(String),
    #[error("the email address is already registered")]
    EmailTaken,
    #[error("the provider account is already linked to another user")]
    AccountTaken,
    #[error("no such record")]
    NotFound,
    #[error("the durability flusher has stopped; the database is closing")]
    FlusherStopped,
}
