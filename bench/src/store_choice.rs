//! `--store sled|postgres`: which store the engine and the spawned server use.
//!
//! PostgreSQL runs on a real server with `synchronous_commit = on` (its
//! default): a throw-away one started for the run (the test kit's), or the
//! server `TACHIGO_TEST_POSTGRES_URL` names; either way each run gets a fresh,
//! empty database, so figures never depend on what an earlier run left.

use std::sync::OnceLock;

use clap::ValueEnum;
use tachigo_engine::config::{Config, StorageBackend};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum StoreKind {
    /// Embedded sled in a temporary data directory (the default).
    #[default]
    Sled,
    /// A fresh database on a real PostgreSQL server.
    Postgres,
}

/// The database URL of this run, when the store is PostgreSQL.
static POSTGRES_URL: OnceLock<String> = OnceLock::new();

/// Prepares the chosen store once, before any scenario starts.
pub async fn prepare(kind: StoreKind) -> anyhow::Result<()> {
    if kind == StoreKind::Postgres {
        let url = tachigo_testkit::postgres().fresh_database().await;
        let _ = POSTGRES_URL.set(url);
    }
    Ok(())
}

/// Points an in-process engine's configuration at the chosen store.
pub fn configure(config: &mut Config) {
    if let Some(url) = POSTGRES_URL.get() {
        config.storage.backend = StorageBackend::Postgres;
        config.storage.postgres.url = Some(url.clone());
    }
}

/// The environment a spawned server needs for the chosen store.
pub fn server_env() -> Vec<(&'static str, String)> {
    match POSTGRES_URL.get() {
        Some(url) => vec![
            ("TACHIGO__STORAGE__BACKEND", "postgres".to_string()),
            ("TACHIGO__STORAGE__POSTGRES__URL", url.clone()),
        ],
        None => Vec::new(),
    }
}

/// The database URL of this run, when the store is PostgreSQL.
pub fn postgres_url() -> Option<&'static str> {
    POSTGRES_URL.get().map(String::as_str)
}

/// `"sled"` or `"postgres"`, for the report.
pub fn name() -> &'static str {
    if POSTGRES_URL.get().is_some() {
        "postgres"
    } else {
        "sled"
    }
}
