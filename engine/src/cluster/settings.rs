//! [`ClusterSettings`]: `[cluster]` in the units the cluster works in, with
//! the secret read and the digest of the settings every node must share.

use std::net::SocketAddr;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::config::{ClusterTlsConfig, Config};
use crate::EngineError;

/// How this node joins and talks to the others.
#[derive(Clone)]
pub struct ClusterSettings {
    pub node_name: String,
    pub listen: SocketAddr,
    pub seeds: Vec<String>,
    pub(crate) secret: String,
    pub tls: Option<ClusterTlsConfig>,
    pub forward_timeout: Duration,
    pub join_timeout: Duration,
    /// The settings that must be equal on every node, one `key=value` each.
    pub(crate) shared_settings: Vec<String>,
    pub(crate) digest: [u8; 32],
}

impl std::fmt::Debug for ClusterSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterSettings")
            .field("node_name", &self.node_name)
            .field("listen", &self.listen)
            .field("seeds", &self.seeds)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl ClusterSettings {
    /// `None` without a `[cluster]` section.
    pub fn from_config(config: &Config) -> Result<Option<ClusterSettings>, EngineError> {
        let Some(cluster) = &config.cluster else {
            return Ok(None);
        };
        let secret = crate::config::read_cluster_secret(&cluster.secret_file)
            .map_err(|e| EngineError::Config(format!("cluster.secret_file: {e}")))?;
        let shared_settings = shared_settings(config);
        let mut hasher = Sha256::new();
        for line in &shared_settings {
            hasher.update(line.as_bytes());
            hasher.update([b'\n']);
        }
        Ok(Some(ClusterSettings {
            node_name: cluster.node_name.clone(),
            listen: cluster.listen,
            seeds: cluster.seeds.clone(),
            secret,
            tls: cluster.tls.clone(),
            forward_timeout: cluster.forward_timeout.0,
            join_timeout: cluster.join_timeout.0,
            shared_settings,
            digest: hasher.finalize().into(),
        }))
    }
}

/// What must not differ between nodes behind one load balancer: where the
/// server is, which origins it trusts, how its cookies are made and how long
/// they and the stale-read bound last. A node whose list differs from a
/// peer's is refused by it.
fn shared_settings(config: &Config) -> Vec<String> {
    let d = |d: crate::config::ConfigDuration| d.0.as_millis().to_string();
    let mut origins = config.server.trusted_origins.clone();
    origins.sort();
    let stale = config
        .cluster
        .as_ref()
        .map(|c| d(c.stale_read_bound))
        .unwrap_or_default();
    vec![
        format!("wire_version={}", super::wire::WIRE_VERSION),
        format!("server.public_url={}", config.server.public_url),
        format!("server.trusted_origins={}", origins.join(",")),
        format!("cookies.secure={}", config.cookies.secure),
        format!("cookies.domain={}", config.cookies.domain),
        format!(
            "tokens.refresh_idle_ttl={}",
            d(config.tokens.refresh_idle_ttl)
        ),
        format!(
            "tokens.session_absolute_ttl={}",
            d(config.tokens.session_absolute_ttl)
        ),
        format!("oauth.session_ttl={}", d(config.oauth.session_ttl)),
        format!("oauth.update_age={}", d(config.oauth.update_age)),
        format!("cluster.stale_read_bound={stale}"),
    ]
}

/// The lines of `theirs` that differ from `ours`, for the refusal's log line.
pub(crate) fn differences(ours: &[String], theirs: &[String]) -> Vec<String> {
    let mut out: Vec<String> = theirs
        .iter()
        .filter(|l| !ours.contains(l))
        .map(|l| format!("peer has {}", clip(l)))
        .collect();
    out.extend(
        ours.iter()
            .filter(|l| !theirs.contains(l))
            .map(|l| format!("this node has {}", clip(l))),
    );
    out.truncate(16);
    out
}

/// A peer's line, cut for the log.
fn clip(line: &str) -> &str {
    match line.char_indices().nth(200) {
        Some((i, _)) => &line[..i],
        None => line,
    }
}
