//! `tachigo-auth keys rotate`: a new signing key; the old one stays published
//! until its last token has expired.

use super::{open_engine, Common};
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a new active signing key and retire the current one.
    Rotate {
        #[command(flatten)]
        common: Common,
    },
}

pub async fn run(cmd: KeysCommand) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::Rotate { common } => {
            let engine = open_engine(&common).await?;
            let rotated = engine.rotate_signing_key().await;
            engine.shutdown().await?;
            let kid = rotated?;
            println!("new signing key {kid} is active; restart the server to use it");
        }
    }
    Ok(())
}
