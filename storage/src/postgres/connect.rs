//! Reaching PostgreSQL: parsing the configured URL, and the connection pool
//! with its timeouts. Connections are plain TCP or Unix sockets (`NoTls`):
//! TLS is not supported yet, so the database belongs on loopback or a trusted
//! private network.

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use super::redacted_url;
use crate::{PostgresConfig, StorageError};

/// The driver configuration for `config`: its URL, the connect timeout, and a
/// `statement_timeout` every session starts with (sent in the startup
/// packet, so it costs no round trip).
pub(crate) fn driver_config(
    config: &PostgresConfig,
) -> Result<tokio_postgres::Config, StorageError> {
    // The driver's reason may quote a character of the password: not repeated.
    let mut pg: tokio_postgres::Config = config.url.parse().map_err(|_| {
        StorageError::Unavailable(format!(
            "the PostgreSQL URL {} is not valid: expected postgres://user:password@host:port/database \
             or libpq key=value pairs",
            redacted_url(&config.url)
        ))
    })?;
    let timeout = format!(
        "-c statement_timeout={}",
        config.statement_timeout.as_millis().max(1)
    );
    let options = match pg.get_options() {
        Some(existing) if !existing.trim().is_empty() => format!("{existing} {timeout}"),
        _ => timeout,
    };
    pg.options(&options);
    pg.connect_timeout(config.connect_timeout);
    if pg.get_application_name().is_none() {
        pg.application_name("tachigo-auth");
    }
    Ok(pg)
}

/// A pool of at most `pool_size` connections; waiting for one and opening
/// one are each bounded by the connect timeout.
pub(crate) fn pool(config: &PostgresConfig) -> Result<Pool, StorageError> {
    let manager = Manager::from_config(
        driver_config(config)?,
        NoTls,
        ManagerConfig {
            // A closed connection is noticed without a query; a broken one
            // fails its next statement and is dropped.
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(config.pool_size.max(1))
        .wait_timeout(Some(config.connect_timeout))
        .create_timeout(Some(config.connect_timeout))
        .recycle_timeout(Some(config.connect_timeout))
        .runtime(Runtime::Tokio1)
        .build()
        .map_err(|e| StorageError::Backend(format!("building the connection pool: {e}")))
}
