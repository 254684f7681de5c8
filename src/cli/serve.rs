//! `tachigo-auth serve`: run until SIGTERM or Ctrl-C, then shut down gracefully.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use super::Common;

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub common: Common,
    /// Listen address of the main listener (overrides `server.listen`).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Write the bound main address to this file once serving (for scripts and tests).
    #[arg(long, value_name = "FILE", hide = true)]
    pub addr_file: Option<PathBuf>,
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = args.common.load()?;
    if let Some(listen) = args.listen {
        config.server.listen = listen;
    }
    let server = crate::server::start(config).await?;
    if let Some(path) = &args.addr_file {
        std::fs::write(path, server.addrs.main.to_string())?;
    }
    tokio::select! {
        _ = crate::server::termination_signal() => {}
        reason = server.failure() => {
            tracing::error!(reason, "refused by the cluster; stopping");
            server.shutdown().await?;
            anyhow::bail!("refused by the cluster: {reason}");
        }
    }
    tracing::info!("termination requested; draining");
    server.shutdown().await
}
