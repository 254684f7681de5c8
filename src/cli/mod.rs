//! The command line: `serve`, `check`, and the operator commands that work on the
//! same data directory as the server (`user`, `sessions`, `keys`). Each command
//! only parses its arguments and calls the engine.

mod keys;
mod serve;
mod sessions;
mod store;
mod user;
mod user_import;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use tachigo_engine::config::{self, Config};
use tachigo_engine::Engine;

#[derive(Debug, Parser)]
#[command(
    name = "tachigo-auth",
    version,
    about = "Session and identity engine for every tachigo client"
)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(long, value_enum, default_value = "text", global = true)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Options every command takes.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// The TOML configuration file (every key optional).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The data directory (overrides `server.data_dir`).
    #[arg(long = "data", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

impl Common {
    /// Loads the configuration from the file and the `TACHIGO__*` environment.
    pub fn load(&self) -> anyhow::Result<Config> {
        let mut config = config::load(self.config.as_deref(), std::env::vars())?;
        if let Some(dir) = &self.data_dir {
            config.server.data_dir = dir.clone();
        }
        Ok(config)
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(serve::ServeArgs),
    /// Check the configuration and deployment topology without starting anything.
    Check {
        #[command(flatten)]
        common: Common,
    },
    /// Manage users.
    #[command(subcommand)]
    User(user::UserCommand),
    /// List or revoke a user's sessions.
    #[command(subcommand)]
    Sessions(sessions::SessionsCommand),
    /// Manage the JWT signing keys.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Move data between stores.
    #[command(subcommand)]
    Store(store::StoreCommand),
}

/// Runs a command; the error, if any, is printed by `main`.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve::run(args).await,
        Command::Check { common } => check(&common).await,
        Command::User(cmd) => user::run(cmd).await,
        Command::Sessions(cmd) => sessions::run(cmd).await,
        Command::Keys(cmd) => keys::run(cmd).await,
        Command::Store(cmd) => store::run(cmd).await,
    }
}

async fn check(common: &Common) -> anyhow::Result<()> {
    let config = common.load()?;
    let mut verdict = config::deployment::check(&config);
    for warning in &verdict.warnings {
        println!("warning: {warning}");
    }
    let storage = tachigo_engine::store_admin::check_storage(&config).await;
    if storage.ok {
        println!("{}", storage.summary);
    } else {
        verdict.errors.push(storage.summary);
    }
    if verdict.is_ok() {
        println!("ok: the configuration can be deployed as written");
        Ok(())
    } else {
        anyhow::bail!(
            "the configuration cannot work as deployed:\n  - {}",
            verdict.errors.join("\n  - ")
        )
    }
}

/// An engine over the data directory, for one operator command.
pub(crate) async fn open_engine(common: &Common) -> anyhow::Result<Engine> {
    let config = common.load()?;
    Engine::open(&config).await.context("opening storage")
}

/// The id of the user with `email`, or a clear error.
pub(crate) async fn user_id_for(engine: &Engine, email: &str) -> anyhow::Result<String> {
    engine
        .user_id_by_email(email)
        .await
        .with_context(|| format!("`{email}` is not a valid email address"))?
        .with_context(|| format!("no user has the email `{email}`"))
}
