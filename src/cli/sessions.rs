//! `tachigo-auth sessions list | revoke`.

use clap::Subcommand;
use tachigo_engine::{EngineError, RevokeScope};

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

fn format_time(ms: i64) -> String {
    humantime_like(ms)
}

/// RFC 3339 (UTC, seconds) without pulling a date crate into the binary.
fn humantime_like(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

pub async fn run(cmd: SessionsCommand) -> anyhow::Result<()> {
    match cmd {
        SessionsCommand::List { common, email } => {
            let engine = open_engine(&common).await?;
            let result = async {
                let id = user_id_for(&engine, &email)?;
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
                    format_time(s.created_at),
                    format_time(s.last_seen_at),
                    format_time(s.expires_at),
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
                let user_id = user_id_for(&engine, &email)?;
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

#[cfg(test)]
mod tests {
    #[test]
    fn formats_utc_times() {
        assert_eq!(super::humantime_like(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            super::humantime_like(1_795_392_000_000),
            "2026-11-23T00:00:00Z"
        );
    }
}
