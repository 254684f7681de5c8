//! `tachigo-auth sessions list | revoke`.

use clap::Subcommand;
use tachigo_engine::{EngineError, RevokeScope};

use tachigo_frontends::common::timestamps::rfc3339;

use super::{open_engine, user_id_for, Common};

#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// List a user's live sessions on every surface.
    List {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        email: String,
    },
    /// Revoke one session (`--id`) or all of a user's sessions.
    Revoke {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        email: String,
        #[arg(long)]
        id: Option<String>,
    },
}

pub async fn run(cmd: SessionsCommand) -> anyhow::Result<()> {
    match cmd {
        SessionsCommand::List { common, email } => {
            let engine = open_engine(&common).await?;
            let result = async {
                let id = user_id_for(&engine, &email).await?;
                Ok::<_, anyhow::Error>(engine.list_sessions(&id).await?)
            }
            .await;
            engine.shutdown().await?;
            let sessions = result?;
            if sessions.is_empty() {
                println!("no live sessions");
            }
            for s in sessions {
                println!(
                    "{}  {:<9}  created {}  last seen {}  expires {}  ip {}  agent {}",
                    s.id,
                    s.surface.as_str(),
                    rfc3339(s.created_at),
                    rfc3339(s.last_seen_at),
                    rfc3339(s.expires_at),
                    s.ip.as_deref().unwrap_or("-"),
                    s.user_agent.as_deref().unwrap_or("-"),
                );
            }
        }
        SessionsCommand::Revoke { common, email, id } => {
            if let Some(id) = &id {
                anyhow::ensure!(
                    tachigo_engine::opaque_token::is_session_id(id),
                    "`{id}` is not a session id"
                );
            }
            let engine = open_engine(&common).await?;
            let result = async {
                let user_id = user_id_for(&engine, &email).await?;
                let scope = id.clone().map_or(RevokeScope::All, RevokeScope::One);
                engine
                    .revoke_sessions(&user_id, scope)
                    .await
                    .map_err(|e| match e {
                        EngineError::SessionNotFound => {
                            anyhow::anyhow!("`{email}` has no live session with that id")
                        }
                        other => other.into(),
                    })
            }
            .await;
            engine.shutdown().await?;
            let ended = result?;
            println!("revoked {} session(s)", ended.len());
        }
    }
    Ok(())
}
