//! `tachigo-auth keys rotate`: a new signing key, published at once and signing
//! from its activation time (`tokens.jwks_cache_lifetime` and the key reload
//! interval later); the old one stays published until its last token has expired.
//! The same rotation as `POST /api/v1/admin/keys/rotate`, for a stopped server
//! (sled) or from beside running ones (PostgreSQL: they pick it up by themselves).

use super::{open_engine, Common};
use clap::Subcommand;
use tachigo_engine::keyring::Rotation;
use tachigo_frontends::common::timestamps::rfc3339;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Publish a new signing key that takes over after the JWKS cache lifetime.
    Rotate {
        #[command(flatten)]
        common: Common,
    },
}

pub async fn run(cmd: KeysCommand) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::Rotate { common } => {
            let engine = open_engine(&common).await?;
            let rotated = engine.rotate_signing_key("the keys rotate command").await;
            engine.shutdown().await?;
            match rotated? {
                Rotation::Started(key) => println!(
                    "new signing key {} is published and signs from {}",
                    key.kid,
                    rfc3339(key.activates_at)
                ),
                Rotation::AlreadyPending(key) => anyhow::bail!(
                    "a rotation is already under way: key {} signs from {}",
                    key.kid,
                    rfc3339(key.activates_at)
                ),
            }
        }
    }
    Ok(())
}
