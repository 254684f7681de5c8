//! From the operators' `[storage]` settings to the store the engine opens.

use tachigo_storage::{PostgresConfig, StoreConfig};

use crate::config::{Config, DurabilityMode, PostgresSettings, StorageBackend};
use crate::EngineError;

/// The store `config` names: sled in `server.data_dir`, or PostgreSQL.
pub(crate) fn store_config(config: &Config) -> Result<StoreConfig, EngineError> {
    Ok(match config.storage.backend {
        StorageBackend::Sled => StoreConfig::Sled {
            path: config.database_path(),
            durable: config.storage.durability == DurabilityMode::GroupCommit,
        },
        StorageBackend::Postgres => {
            StoreConfig::Postgres(postgres_config(&config.storage.postgres)?)
        }
    })
}

/// The PostgreSQL connection settings (the URL already read from `url_file`).
pub(crate) fn postgres_config(pg: &PostgresSettings) -> Result<PostgresConfig, EngineError> {
    let url = pg
        .url
        .clone()
        .filter(|u| !u.is_empty())
        .ok_or_else(|| EngineError::Storage("storage.postgres.url is not set".into()))?;
    Ok(PostgresConfig {
        url,
        pool_size: pg.pool_size,
        statement_timeout: pg.statement_timeout.0,
        connect_timeout: pg.connect_timeout.0,
    })
}
