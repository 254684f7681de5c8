//! `[cluster]`: several nodes over one PostgreSQL, on ractor_cluster. Its
//! checks: a node name the cluster can tell apart, a node-to-node address, and
//! a shared secret file that exists, is long enough and is not readable by
//! everyone. The deployment check adds the rest (no cluster on sled).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ConfigDuration;

/// The shortest cluster secret accepted, in bytes.
pub const MIN_CLUSTER_SECRET_BYTES: usize = 32;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// This node's name: unique in the cluster, 1–64 of `[a-z0-9-_]`.
    pub node_name: String,
    /// The node-to-node address this node listens on (not the HTTP one).
    pub listen: SocketAddr,
    /// Other nodes' node-to-node addresses (`host:port`). A node connects to
    /// each and meets their peers through them.
    #[serde(default)]
    pub seeds: Vec<String>,
    /// The shared secret that authenticates nodes to each other: at least 32
    /// bytes, not readable by everyone. Every node reads the same content.
    pub secret_file: PathBuf,
    /// Encrypts node-to-node traffic with TLS when set.
    #[serde(default)]
    pub tls: Option<ClusterTlsConfig>,
    /// How long a request forwarded to the owner of its user may take before
    /// it fails with 503 and `Retry-After`.
    #[serde(default = "default_forward_timeout")]
    pub forward_timeout: ConfigDuration,
    /// How long a starting node waits for one of its seeds before it forms a
    /// cluster alone (and `/readyz` turns true).
    #[serde(default = "default_join_timeout")]
    pub join_timeout: ConfigDuration,
    /// How long a node may answer reads for a user from memory without
    /// finding its claim on the user current again (see docs/architecture.md).
    #[serde(default = "default_stale_read_bound")]
    pub stale_read_bound: ConfigDuration,
}

/// `[cluster.tls]`: PEM files. Every node presents `cert_file` (with
/// `key_file`) and accepts peers whose certificate `ca_file` signed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterTlsConfig {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub ca_file: PathBuf,
    /// The name peers' certificates carry (their SAN); defaults to `localhost`.
    #[serde(default = "default_server_name")]
    pub server_name: String,
}

fn default_forward_timeout() -> ConfigDuration {
    ConfigDuration::from_secs(2)
}

fn default_join_timeout() -> ConfigDuration {
    ConfigDuration::from_secs(5)
}

fn default_stale_read_bound() -> ConfigDuration {
    ConfigDuration::from_secs(2)
}

fn default_server_name() -> String {
    "localhost".into()
}

/// Whether `name` is a valid node name.
pub fn valid_node_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// Reads the cluster secret, refusing a missing, short or world-readable file.
pub fn read_cluster_secret(path: &Path) -> Result<String, String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta =
            std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if meta.permissions().mode() & 0o004 != 0 {
            return Err(format!(
                "{} is readable by everyone; chmod o-r it (0600 is best)",
                path.display()
            ));
        }
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let secret = text.trim().to_string();
    if secret.len() < MIN_CLUSTER_SECRET_BYTES {
        return Err(format!(
            "{} holds {} bytes; a cluster secret needs at least {MIN_CLUSTER_SECRET_BYTES} (e.g. `openssl rand -hex 32`)",
            path.display(),
            secret.len()
        ));
    }
    Ok(secret)
}

/// The checks [`super::load`] runs on `[cluster]`: (key, problem) on failure.
pub(super) fn validate(cluster: &ClusterConfig) -> Result<(), (String, String)> {
    if !valid_node_name(&cluster.node_name) {
        return Err((
            "cluster.node_name".into(),
            format!(
                "`{}` is not a node name (1-64 of a-z, 0-9, '-' and '_')",
                cluster.node_name
            ),
        ));
    }
    if cluster.listen.port() == 0 {
        return Err((
            "cluster.listen".into(),
            "needs a fixed port: other nodes name it in their seeds".into(),
        ));
    }
    for (i, seed) in cluster.seeds.iter().enumerate() {
        let well_formed = seed.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
        });
        if !well_formed {
            return Err((
                format!("cluster.seeds[{i}]"),
                format!("`{seed}` is not host:port"),
            ));
        }
    }
    read_cluster_secret(&cluster.secret_file).map_err(|e| ("cluster.secret_file".into(), e))?;
    for (key, d) in [
        ("cluster.forward_timeout", cluster.forward_timeout),
        ("cluster.join_timeout", cluster.join_timeout),
        ("cluster.stale_read_bound", cluster.stale_read_bound),
    ] {
        if d.0.is_zero() {
            return Err((key.into(), "must be longer than zero".into()));
        }
    }
    if let Some(tls) = &cluster.tls {
        for (key, path) in [
            ("cluster.tls.cert_file", &tls.cert_file),
            ("cluster.tls.key_file", &tls.key_file),
            ("cluster.tls.ca_file", &tls.ca_file),
        ] {
            std::fs::metadata(path).map_err(|e| {
                (
                    key.to_string(),
                    format!("cannot read {}: {e}", path.display()),
                )
            })?;
        }
    }
    Ok(())
}
