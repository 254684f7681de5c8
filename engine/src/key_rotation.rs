//! Online signing-key rotation: its timing (from `tokens.jwks_cache_lifetime`,
//! `tokens.signing_key_rotation` and the longest token lifetime) and the
//! background task that keeps the key ring in step with storage.
//!
//! Every node reads the key records again every `reload interval` (a quarter
//! of the JWKS cache lifetime), so a key rotated in by any node (or by the
//! offline command on a shared PostgreSQL) is served by every node's JWKS
//! within that interval. A rotated-in key signs only after `lead = cache
//! lifetime + 2 × reload interval` (1.5 × the cache lifetime): by then every
//! verifier's cached JWKS, fetched from any node, has been refreshed at least
//! once since every node served it, with one whole reload interval to spare
//! for a late timer or a slow read.
//! The same task starts the scheduled rotations.

use std::sync::Weak;
use std::time::Duration;

use crate::engine::{EngineOptions, Shared};
use crate::keyring::{KeyRing, KeyTiming, Rotation};
use crate::EngineError;

/// The shortest JWKS cache lifetime (`max-age` counts whole seconds).
const MIN_CACHE_LIFETIME_MS: i64 = 1_000;

/// The rotation timing in milliseconds, checked.
#[derive(Debug, Clone, Copy)]
pub struct RotationTiming {
    pub jwks_cache_lifetime_ms: i64,
    pub reload_interval_ms: i64,
    pub activation_lead_ms: i64,
    pub max_token_ttl_ms: i64,
    /// The schedule, when on.
    pub rotation_interval_ms: Option<i64>,
}

impl RotationTiming {
    /// Derives the timing from the engine's settings; refuses a cache lifetime
    /// under a second and a schedule shorter than twice the cache lifetime
    /// (a key must be able to activate, and sign a while, before the next rotation).
    pub fn from_options(options: &EngineOptions) -> Result<RotationTiming, String> {
        let cache = options.jwks_cache_lifetime_ms;
        if cache < MIN_CACHE_LIFETIME_MS {
            return Err("tokens.jwks_cache_lifetime must be at least 1s".into());
        }
        if let Some(every) = options.signing_key_rotation_ms {
            if every < cache.saturating_mul(2) {
                return Err(format!(
                    "tokens.signing_key_rotation must be at least twice tokens.jwks_cache_lifetime ({}s)",
                    cache.saturating_mul(2) / 1000
                ));
            }
        }
        let reload_interval_ms = cache / 4;
        let max_token_ttl_ms = options
            .clients
            .iter()
            .map(|c| c.access_ttl_ms)
            .fold(options.access_ttl_ms, i64::max);
        Ok(RotationTiming {
            jwks_cache_lifetime_ms: cache,
            reload_interval_ms,
            activation_lead_ms: cache.saturating_add(reload_interval_ms.saturating_mul(2)),
            max_token_ttl_ms,
            rotation_interval_ms: options.signing_key_rotation_ms,
        })
    }

    pub fn key_timing(&self) -> KeyTiming {
        KeyTiming {
            max_token_ttl_ms: self.max_token_ttl_ms,
            activation_lead_ms: self.activation_lead_ms,
        }
    }
}

/// Starts a rotation now: a new key published at once, signing after the
/// activation lead. Re-reads the ring so this node serves the new key at once.
pub(crate) async fn rotate(
    shared: &Shared,
    keys: &KeyRing,
    by: &str,
) -> Result<Rotation, EngineError> {
    let now = shared.now();
    let rotation =
        KeyRing::rotate(shared.store.as_ref(), now, keys.timing().activation_lead_ms).await?;
    if let Rotation::Started(pending) = &rotation {
        // Stored: the rotation has happened whatever follows. This node
        // serves the new key now, or at its next periodic reload.
        if let Err(e) = keys.reload(shared.store.as_ref()).await {
            tracing::warn!(error = %e, "reloading the signing keys after a rotation failed");
        }
        tracing::info!(kid = %pending.kid, activates_at = pending.activates_at, by, "signing key rotation started");
        shared
            .audit(
                "signing_key_rotated",
                None,
                None,
                &format!(
                    "new key {} signs from {}, by {by}",
                    pending.kid, pending.activates_at
                ),
            )
            .await;
    }
    Ok(rotation)
}

/// Reloads the key records every reload interval and runs the schedule, until
/// the engine is dropped or stopping.
pub(crate) async fn run(shared: Weak<Shared>, keys: KeyRing, timing: RotationTiming) {
    let interval = Duration::from_millis(timing.reload_interval_ms.max(1) as u64);
    loop {
        tokio::time::sleep(interval).await;
        let Some(s) = shared.upgrade() else { return };
        if s.is_stopping() {
            return;
        }
        match keys.reload(s.store.as_ref()).await {
            Ok(true) => tracing::info!(kid = %keys.active_kid(), "signing keys reloaded"),
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "reloading the signing keys failed"),
        }
        if let Some(every) = timing.rotation_interval_ms {
            let due = keys.active_since().saturating_add(every) <= s.now();
            if due && keys.pending().is_none() {
                if let Err(e) = rotate(&s, &keys, "schedule").await {
                    tracing::warn!(error = %e, "the scheduled signing key rotation failed");
                }
            }
        }
        drop(s);
    }
}
