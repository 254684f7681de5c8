//! `tachigo-auth keys rotate`: a new signing key; the old one stays published
//! until its last token has expired.

use clap::Subcommand;
use tachigo_engine::keyring::KeyRing;

use super::Common;

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
            let config = common.load()?;
            let store = crate::server::open_store(&config)?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_millis() as i64;
            let kid = KeyRing::rotate(&store, now).await?;
            store.flush_blocking()?;
            println!("new signing key {kid} is active; restart the server to use it");
        }
    }
    Ok(())
}
