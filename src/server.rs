//! Starting and stopping the server: deployment check, storage, engine, the
//! contract mounts on their listeners, and a graceful shutdown that stops
//! accepting, drains in-flight requests, stops the actors and flushes storage.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context};
use tachigo_engine::cluster::ClusterSettings;
use tachigo_engine::config::{deployment, Config, DurabilityMode};
use tachigo_engine::Engine;
use tachigo_frontends::common::connection::ConnectionLimits;
use tachigo_frontends::common::dispatcher::{Dispatcher, Mount};
use tachigo_frontends::{admin, dashboard, extension, oauth, oauth2, system, AppState};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long a graceful shutdown waits for in-flight requests.
const DRAIN_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Where each listener ended up (ports chosen by the OS when configured as 0).
#[derive(Debug, Clone)]
pub struct BoundAddrs {
    pub main: SocketAddr,
    pub dashboard: Option<SocketAddr>,
    pub extension: Option<SocketAddr>,
    pub oauth: Option<SocketAddr>,
}

/// A started server.
pub struct RunningServer {
    pub addrs: BoundAddrs,
    pub engine: Engine,
    ready: Arc<AtomicBool>,
    stop: watch::Sender<bool>,
    listeners: Vec<JoinHandle<()>>,
}

fn bind(addr: SocketAddr) -> anyhow::Result<std::net::TcpListener> {
    std::net::TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr}"))
}

/// Starts everything and returns once every listener accepts connections.
pub async fn start(config: Config) -> anyhow::Result<RunningServer> {
    start_on(config, None).await
}

/// As [`start`], serving the main listener on `main` when given (bound by the
/// caller, who needed its port for `server.public_url` before the start)
/// instead of binding `server.listen`.
pub async fn start_on(
    config: Config,
    main: Option<std::net::TcpListener>,
) -> anyhow::Result<RunningServer> {
    // The recorder first: anything counted while storage opens and the node
    // joins its cluster (members, a peer's hello) would be lost before it.
    let metrics = tachigo_telemetry_renderer();
    let verdict = deployment::check(&config);
    for warning in &verdict.warnings {
        tracing::warn!("deployment check: {warning}");
    }
    if !verdict.is_ok() {
        bail!(
            "the configuration cannot work as deployed:\n  - {}",
            verdict.errors.join("\n  - ")
        );
    }
    if config.storage.durability == DurabilityMode::None {
        tracing::warn!("storage.durability = \"none\": acknowledged writes can be lost; use only for throw-away benchmarks");
    }
    let cluster = ClusterSettings::from_config(&config).context("reading [cluster]")?;
    let engine = Engine::open(&config).await.context("opening storage")?;
    if let Some(cluster) = cluster {
        engine
            .start_cluster(cluster)
            .await
            .context("joining the cluster")?;
    }
    engine
        .start_mail_delivery()
        .context("starting mail delivery")?;
    let config = Arc::new(config);
    let state = AppState::new(engine.clone(), config.clone());
    let ready = Arc::new(AtomicBool::new(false));
    let system = || system::mount(&state, ready.clone(), metrics.clone());

    let (stop, stopped) = watch::channel(false);
    let mut listeners = Vec::new();
    let mut serve = |mounts: Vec<Mount>,
                     addr: SocketAddr,
                     bound: Option<std::net::TcpListener>|
     -> anyhow::Result<SocketAddr> {
        let listener = match bound {
            Some(listener) => listener,
            None => bind(addr)?,
        };
        let local = listener.local_addr()?;
        let mut stopped = stopped.clone();
        let shutdown = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        let server = Dispatcher::new(mounts, config.server.trust_proxy).serve(
            listener,
            shutdown,
            DRAIN_LIMIT,
            ConnectionLimits::from_config(&config.limits),
        )?;
        listeners.push(tokio::spawn(server));
        Ok(local)
    };

    let dedicated = &config.listen;
    let mut main_mounts = vec![system(), admin::mount(&state)];
    main_mounts.extend(oauth2::mounts(&state));
    let mut addrs = BoundAddrs {
        main: config.server.listen,
        dashboard: None,
        extension: None,
        oauth: None,
    };
    let contracts: [(Option<SocketAddr>, Mount, &mut Option<SocketAddr>); 3] = [
        (
            dedicated.dashboard,
            dashboard::mount(&state),
            &mut addrs.dashboard,
        ),
        (
            dedicated.extension,
            extension::mount(&state),
            &mut addrs.extension,
        ),
        (dedicated.oauth, oauth::mount(&state), &mut addrs.oauth),
    ];
    for (own_listener, mount, bound) in contracts {
        match own_listener {
            Some(addr) => *bound = Some(serve(vec![mount, system()], addr, None)?),
            None => main_mounts.push(mount),
        }
    }
    addrs.main = serve(main_mounts, config.server.listen, main)?;
    ready.store(true, Ordering::Release);
    tracing::info!(listen = %addrs.main, ?addrs, data_dir = %config.server.data_dir.display(), "tachigo-auth is serving");
    Ok(RunningServer {
        addrs,
        engine,
        ready,
        stop,
        listeners,
    })
}

fn tachigo_telemetry_renderer() -> system::MetricsRenderer {
    let handle = crate::telemetry::metrics_handle();
    Arc::new(move || {
        handle.run_upkeep();
        handle.render()
    })
}

impl RunningServer {
    /// Stops accepting, drains in-flight requests, stops the actors, flushes storage.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        self.ready.store(false, Ordering::Release);
        // In a cluster, first hand this node's users to the others: requests
        // still in flight here are forwarded to them while the listeners drain.
        self.engine.leave_cluster().await;
        let _ = self.stop.send(true);
        // Each listener drains its connections for at most DRAIN_LIMIT, then
        // closes what is left, so a client holding a connection open cannot
        // hold the shutdown.
        for listener in &mut self.listeners {
            listener.await.context("a listener task failed")?;
        }
        self.engine.shutdown().await?;
        // Return only once the database is closed, so that its directory lock is
        // free for whoever opens it next (a restart in the same process included).
        let released = self.engine.storage_release();
        drop(self);
        if !released.await {
            tracing::warn!("the database is still held by unfinished tasks");
        }
        tracing::info!("tachigo-auth stopped cleanly");
        Ok(())
    }
}

impl RunningServer {
    /// Resolves with the reason once this node must stop on its own (in a
    /// cluster: a peer refused its settings before it joined); never otherwise.
    pub async fn failure(&self) -> String {
        match self.engine.cluster_failure() {
            Some(mut failure) => match failure.wait_for(|f| f.is_some()).await {
                Ok(reason) => reason.clone().unwrap_or_default(),
                Err(_) => std::future::pending().await,
            },
            None => std::future::pending().await,
        }
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn termination_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
