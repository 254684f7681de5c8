//! [`StoreConfig`] and [`open`]: which backend to open, and opening it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::{StorageError, Store};

/// Where the data lives.
#[derive(Debug, Clone)]
pub enum StoreConfig {
    /// Embedded sled in a local directory (one node).
    Sled {
        path: PathBuf,
        /// `false` only for throw-away benchmarks: writes are acknowledged
        /// before they are durable.
        durable: bool,
    },
    /// A shared PostgreSQL database (one or many nodes).
    Postgres(PostgresConfig),
}

/// How to reach PostgreSQL.
#[derive(Clone)]
pub struct PostgresConfig {
    /// A libpq-style URL or key=value string; it may hold a password, so it is
    /// never printed (see the `Debug` impl).
    pub url: String,
    /// Connections kept open at most.
    pub pool_size: usize,
    /// Longest a statement may run before the server cancels it.
    pub statement_timeout: Duration,
    /// Longest to wait for a connection (from the pool or a new one).
    pub connect_timeout: Duration,
}

impl std::fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("url", &crate::postgres::redacted_url(&self.url))
            .field("pool_size", &self.pool_size)
            .field("statement_timeout", &self.statement_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

/// Opens the configured store: sled's directory (created if missing), or the
/// PostgreSQL database with its schema migrated to this build's version.
pub async fn open(config: &StoreConfig) -> Result<Arc<dyn Store>, StorageError> {
    match config {
        StoreConfig::Sled { path, durable } => {
            let path = path.clone();
            let durable = *durable;
            let store = tokio::task::spawn_blocking(move || {
                crate::sled_store::SledStore::open(&path, durable)
            })
            .await
            .map_err(|e| StorageError::Backend(format!("opening sled: {e}")))??;
            Ok(Arc::new(store))
        }
        StoreConfig::Postgres(pg) => Ok(Arc::new(crate::postgres::PostgresStore::open(pg).await?)),
    }
}
