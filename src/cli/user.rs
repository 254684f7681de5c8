//! `tachigo-auth user create | set-roles | import`.

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use tachigo_engine::NewUser;

use super::{open_engine, user_id_for, Common};

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user (with a password read from standard input).
    Create {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: Option<String>,
        /// A role to give the user; repeat for several.
        #[arg(long = "role", value_name = "ROLE")]
        roles: Vec<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Replace a user's roles.
    SetRoles {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        email: String,
        /// The roles to set; repeat for several (none clears them).
        #[arg(long = "role", value_name = "ROLE")]
        roles: Vec<String>,
    },
    /// Import users from another system: one JSON object per line, password
    /// hashes kept as they are until each user's first login (see
    /// docs/operations.md, "Moving users in"). Exits 3 when some lines were
    /// refused and the rest imported.
    Import {
        #[command(flatten)]
        common: Common,
        /// The JSON Lines file to read.
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
        /// Check every line and say what would happen; store nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let password = line.trim_end_matches(['\n', '\r']).to_string();
    anyhow::ensure!(!password.is_empty(), "standard input held no password");
    Ok(password)
}

pub async fn run(cmd: UserCommand) -> anyhow::Result<()> {
    match cmd {
        UserCommand::Create {
            common,
            email,
            name,
            roles,
            password_stdin,
        } => {
            anyhow::ensure!(password_stdin, "--password-stdin is required: pipe the password in, it is never taken as an argument");
            // Check everything that needs no database before opening it.
            let email = tachigo_engine::normalize_email(&email)
                .with_context(|| format!("`{email}` is not a valid email address"))?;
            if let Some(bad) = roles.iter().find(|r| !tachigo_engine::valid_role(r)) {
                anyhow::bail!(
                    "`{bad}` is not a valid role: use 1-32 characters of a-z, 0-9, '_' and '-'"
                );
            }
            let password = read_password()?;
            tachigo_engine::password::check_policy(&password, Some(&email))?;
            let engine = open_engine(&common).await?;
            let created = engine
                .create_user(NewUser {
                    email: Some(email),
                    name,
                    password: Some(password),
                    roles,
                })
                .await;
            engine.shutdown().await?;
            let user = created?;
            println!(
                "created user {} <{}> roles=[{}]",
                user.id,
                user.email.unwrap_or_default(),
                user.roles.join(",")
            );
        }
        UserCommand::SetRoles {
            common,
            email,
            roles,
        } => {
            if let Some(bad) = roles.iter().find(|r| !tachigo_engine::valid_role(r)) {
                anyhow::bail!(
                    "`{bad}` is not a valid role: use 1-32 characters of a-z, 0-9, '_' and '-'"
                );
            }
            let engine = open_engine(&common).await?;
            let result = async {
                let id = user_id_for(&engine, &email).await?;
                Ok::<_, anyhow::Error>(engine.set_roles(&id, roles).await?)
            }
            .await;
            engine.shutdown().await?;
            let user = result?;
            println!("user {} roles=[{}]", user.id, user.roles.join(","));
        }
        UserCommand::Import {
            common,
            file,
            dry_run,
        } => super::user_import::run(&common, &file, dry_run).await?,
    }
    Ok(())
}
