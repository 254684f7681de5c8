//! The schema: embedded, versioned migrations applied at open, and the
//! read-only [`check`] behind `tachigo-auth check`.
//!
//! Several nodes may start at once, so migrating runs in one transaction that
//! first takes a transaction-scoped advisory lock: the others wait, then find
//! the work done. A database migrated by a newer release is refused
//! ([`StorageError::SchemaTooNew`]) rather than used with a schema this build
//! does not know.

use tokio_postgres::{Client, NoTls};

use super::connect::driver_config;
use super::errors::classify;
use crate::{PostgresConfig, StorageError};

/// Every migration, in order: (version, SQL).
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("migrations/0001_initial.sql")),
    (2, include_str!("migrations/0002_mail.sql")),
    (3, include_str!("migrations/0003_oauth2.sql")),
    (4, include_str!("migrations/0004_provider_tokens.sql")),
    (5, include_str!("migrations/0005_actor_owners.sql")),
];

/// The newest schema version this build knows.
pub const KNOWN_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// The advisory lock key that serialises migrations ("tachigo" in ASCII).
const MIGRATION_LOCK: i64 = 0x74_61_63_68_69_67_6f;

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS tachigo_schema_migrations (
    version int PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
)";

/// Where a database's schema stands against this build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemaStatus {
    /// The newest migration applied (0 for a database never migrated).
    pub applied: i64,
    /// The newest migration this build knows.
    pub known: i64,
}

impl SchemaStatus {
    /// Whether this build can use the database (possibly after migrating it).
    pub fn is_compatible(&self) -> bool {
        self.applied <= self.known
    }
}

/// Applies every migration the database lacks, all in one transaction.
pub(crate) async fn migrate(client: &mut Client) -> Result<(), StorageError> {
    let tx = client.transaction().await.map_err(classify)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(classify)?;
    tx.batch_execute(CREATE_TABLE).await.map_err(classify)?;
    let applied = applied_version(&tx).await?;
    if applied > KNOWN_VERSION {
        return Err(StorageError::SchemaTooNew {
            found: applied,
            known: KNOWN_VERSION,
        });
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > applied) {
        tx.batch_execute(sql).await.map_err(classify)?;
        tx.execute(
            "INSERT INTO tachigo_schema_migrations (version) VALUES ($1)",
            &[&(*version as i32)],
        )
        .await
        .map_err(classify)?;
        tracing::info!(version, "applied a PostgreSQL schema migration");
    }
    tx.commit().await.map_err(classify)
}

async fn applied_version(client: &impl tokio_postgres::GenericClient) -> Result<i64, StorageError> {
    let row = client
        .query_one(
            "SELECT coalesce(max(version), 0)::bigint FROM tachigo_schema_migrations",
            &[],
        )
        .await
        .map_err(classify)?;
    Ok(row.get(0))
}

/// Connects without migrating and reports the schema version found (0 when
/// the database was never migrated) against this build's.
pub async fn check(config: &PostgresConfig) -> Result<SchemaStatus, StorageError> {
    let (client, connection) =
        driver_config(config)?
            .connect(NoTls)
            .await
            .map_err(|e| match classify(e) {
                StorageError::Backend(message) => StorageError::Unavailable(message),
                other => other,
            })?;
    let connection = tokio::spawn(connection);
    let result = async {
        let row = client
            .query_one(
                "SELECT to_regclass('tachigo_schema_migrations') IS NOT NULL",
                &[],
            )
            .await
            .map_err(classify)?;
        let applied = if row.get::<_, bool>(0) {
            applied_version(&client).await?
        } else {
            0
        };
        Ok(SchemaStatus {
            applied,
            known: KNOWN_VERSION,
        })
    }
    .await;
    drop(client);
    let _ = connection.await;
    result
}
