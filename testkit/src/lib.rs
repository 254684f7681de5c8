//! Test helpers for tachigo-auth: a real, throw-away PostgreSQL server, one per
//! test process, and a fresh database per test.
//!
//! [`postgres`] uses the server named by `TACHIGO_TEST_POSTGRES_URL` (a superuser
//! URL) when that is set; otherwise it starts one from the installed binaries
//! (`/usr/lib/postgresql/*/bin` or `PATH`) in a temporary directory, listening on
//! a free loopback port, with `fsync=on` so durability is what production gets.
//! The server dies with the test process (`PR_SET_PDEATHSIG`); its directory is
//! removed when the process exits normally, or by a later run if it was killed.
//!
//! PostgreSQL refuses to run as root, and CI runs as root: then the server runs
//! as the `postgres` system user that the Debian package creates.

mod ports;
mod server;

use std::sync::OnceLock;

pub use ports::free_port;
pub use server::TestPostgres;

/// The environment variable naming an already running server (a superuser URL).
pub const URL_VAR: &str = "TACHIGO_TEST_POSTGRES_URL";

/// The test process's PostgreSQL server, started on first use.
pub fn postgres() -> &'static TestPostgres {
    static SERVER: OnceLock<TestPostgres> = OnceLock::new();
    SERVER.get_or_init(|| match std::env::var(URL_VAR) {
        Ok(url) if !url.trim().is_empty() => TestPostgres::external(url),
        _ => TestPostgres::start(),
    })
}
