//! Operator work on the store itself, outside a running engine: what
//! `tachigo-auth check` says about storage, and `store copy`, which moves a
//! single-node (sled) deployment into PostgreSQL with nothing lost.

use std::path::Path;

use tachigo_storage::StoreConfig;

use crate::config::{Config, PostgresSettings, StorageBackend};
use crate::store_config::postgres_config;
use crate::EngineError;

/// What `check` found about the configured store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageCheck {
    /// Whether the server can start on it as it is.
    pub ok: bool,
    /// One line for the operator.
    pub summary: String,
}

/// Looks at the configured store without changing it: sled's directory, or
/// whether PostgreSQL is reachable and its schema current (a missing schema
/// is fine: the first start creates it; a newer one is not).
pub async fn check_storage(config: &Config) -> StorageCheck {
    match config.storage.backend {
        StorageBackend::Sled => {
            let path = config.database_path();
            let summary = if path.exists() {
                format!("storage: sled database in {}", path.display())
            } else {
                format!(
                    "storage: sled database in {} (created at first start)",
                    path.display()
                )
            };
            StorageCheck { ok: true, summary }
        }
        StorageBackend::Postgres => {
            let pg = match postgres_config(&config.storage.postgres) {
                Ok(pg) => pg,
                Err(e) => {
                    return StorageCheck {
                        ok: false,
                        summary: format!("storage: {e}"),
                    }
                }
            };
            let target = tachigo_storage::postgres::redacted_url(&pg.url);
            match tachigo_storage::postgres::check(&pg).await {
                Ok(status) if status.applied == status.known => StorageCheck {
                    ok: true,
                    summary: format!(
                        "storage: PostgreSQL at {target} is reachable; schema is current (version {})",
                        status.known
                    ),
                },
                Ok(status) if status.applied < status.known => StorageCheck {
                    ok: true,
                    summary: format!(
                        "storage: PostgreSQL at {target} is reachable; schema is at version {} and will be migrated to {} at start",
                        status.applied, status.known
                    ),
                },
                Ok(status) => StorageCheck {
                    ok: false,
                    summary: format!(
                        "storage: PostgreSQL at {target}: schema version {} is newer than this build's {}; run a release that knows it",
                        status.applied, status.known
                    ),
                },
                Err(e) => StorageCheck {
                    ok: false,
                    summary: format!("storage: PostgreSQL at {target}: {e}"),
                },
            }
        }
    }
}

/// How much `store copy` moved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyReport {
    pub users: usize,
    pub sessions: usize,
    pub refresh_families: usize,
    pub retired_tokens: usize,
    pub signing_keys: usize,
    pub audit_events: usize,
}

/// Copies everything durable from the sled database in `data_dir` into the
/// PostgreSQL database `postgres` (its schema created first), in one
/// transaction, then reads the target back and compares. Refuses a target
/// that already holds users or keys; the source is not changed. The server
/// must be stopped (it holds the sled directory's lock).
pub async fn copy_sled_to_postgres(
    data_dir: &Path,
    postgres: &PostgresSettings,
) -> Result<CopyReport, EngineError> {
    let db = data_dir.join("db");
    if !db.exists() {
        return Err(EngineError::Storage(format!(
            "there is no database in {} (expected {})",
            data_dir.display(),
            db.display()
        )));
    }
    let source = tachigo_storage::open(&StoreConfig::Sled {
        path: db,
        durable: true,
    })
    .await?;
    let snapshot = source.export().await?;
    let target = tachigo_storage::open(&StoreConfig::Postgres(postgres_config(postgres)?)).await?;
    target.import(&snapshot).await?;
    let written = target.export().await?;
    if written != snapshot {
        return Err(EngineError::Storage(
            "the copy read back differently from the source; the target must be emptied before trying again".into(),
        ));
    }
    Ok(CopyReport {
        users: snapshot.users.len(),
        sessions: snapshot.sessions.len(),
        refresh_families: snapshot.families.len(),
        retired_tokens: snapshot.retired_tokens.len(),
        signing_keys: snapshot.signing_keys.len(),
        audit_events: snapshot.audit.len(),
    })
}
