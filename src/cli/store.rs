//! `tachigo-auth store copy`: moves a single-node deployment (sled in a data
//! directory) into PostgreSQL with nothing lost — users, accounts, sessions,
//! refresh families and retired tokens, signing keys, audit. Refresh cookies
//! and web sessions issued before the copy work after it; a retired refresh
//! token is still detected as reuse. A target that holds data is refused.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use tachigo_engine::config::PostgresSettings;

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Copy a stopped server's sled data directory into an empty PostgreSQL database.
    Copy {
        /// The data directory of the stopped server (holding `db/`).
        #[arg(long = "from-data", value_name = "DIR")]
        from_data: PathBuf,
        /// The target database URL; prefer `--to-postgres-url-file` or the
        /// `TACHIGO_COPY_POSTGRES_URL` variable so no password shows in `ps`.
        #[arg(
            long = "to-postgres",
            value_name = "URL",
            env = "TACHIGO_COPY_POSTGRES_URL",
            hide_env_values = true,
            required_unless_present = "to_postgres_url_file"
        )]
        to_postgres: Option<String>,
        /// A file whose first line is the target database URL.
        #[arg(long = "to-postgres-url-file", value_name = "FILE")]
        to_postgres_url_file: Option<PathBuf>,
    },
}

pub async fn run(cmd: StoreCommand) -> anyhow::Result<()> {
    match cmd {
        StoreCommand::Copy {
            from_data,
            to_postgres,
            to_postgres_url_file,
        } => {
            let url = match (to_postgres, to_postgres_url_file) {
                (Some(url), None) => url,
                (None, Some(file)) => tachigo_engine::config::read_postgres_url_file(&file)?,
                _ => anyhow::bail!("give either --to-postgres or --to-postgres-url-file"),
            };
            let settings = PostgresSettings {
                url: Some(url),
                ..PostgresSettings::default()
            };
            let report = tachigo_engine::store_admin::copy_sled_to_postgres(&from_data, &settings)
                .await
                .context("copying into PostgreSQL")?;
            println!(
                "copied {} users, {} sessions, {} refresh families, {} retired refresh tokens, {} signing keys, {} audit events; read back and verified",
                report.users,
                report.sessions,
                report.refresh_families,
                report.retired_tokens,
                report.signing_keys,
                report.audit_events
            );
        }
    }
    Ok(())
}
