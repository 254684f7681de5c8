//! A provider's signing keys (JWKS), fetched on first use and cached for an
//! hour. An id_token signed with a key id the cache does not know triggers one
//! refetch (providers rotate keys), at most every 30 seconds, so forged key ids
//! cannot turn this server into a request amplifier.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use tokio::sync::Mutex;

use super::http::get_json;
use super::ProviderError;

const JWKS_TTL: Duration = Duration::from_secs(3600);
const MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(30);

struct Fetched {
    uri: String,
    at: Instant,
    keys: Arc<Vec<Jwk>>,
}

/// The keys of one provider.
#[derive(Default)]
pub(crate) struct JwksCache {
    fetched: Mutex<Option<Fetched>>,
}

/// A JWKS as published; keys this library cannot read are skipped, not fatal.
#[derive(Deserialize)]
struct RawKeySet {
    keys: Vec<serde_json::Value>,
}

/// Whether `jwk` may verify a signature made with `alg` (RS256 or ES256 only).
fn usable_for(jwk: &Jwk, alg: Algorithm) -> bool {
    let use_ok = matches!(
        jwk.common.public_key_use,
        None | Some(PublicKeyUse::Signature)
    );
    let alg_ok = match jwk.common.key_algorithm {
        None => true,
        Some(KeyAlgorithm::RS256) => alg == Algorithm::RS256,
        Some(KeyAlgorithm::ES256) => alg == Algorithm::ES256,
        Some(_) => false,
    };
    let family_ok = match (&jwk.algorithm, alg) {
        (AlgorithmParameters::RSA(_), Algorithm::RS256) => true,
        (AlgorithmParameters::EllipticCurve(p), Algorithm::ES256) => p.curve == EllipticCurve::P256,
        _ => false,
    };
    use_ok && alg_ok && family_ok
}

/// The key for a token header: by `kid`, or the only usable key when the
/// header names none.
fn select(keys: &[Jwk], kid: Option<&str>, alg: Algorithm) -> Option<DecodingKey> {
    let mut candidates = keys.iter().filter(|k| usable_for(k, alg));
    let jwk = match kid {
        Some(kid) => candidates.find(|k| k.common.key_id.as_deref() == Some(kid))?,
        None => {
            let first = candidates.next()?;
            if candidates.next().is_some() {
                return None;
            }
            first
        }
    };
    DecodingKey::from_jwk(jwk).ok()
}

impl JwksCache {
    /// The decoding key for a token signed with `alg` under `kid`, from `uri`.
    pub(crate) async fn key(
        &self,
        http: &reqwest::Client,
        uri: &str,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<DecodingKey, ProviderError> {
        let mut fetched = self.fetched.lock().await;
        let current = fetched.as_ref().filter(|f| f.uri == uri);
        if let Some(f) = current.filter(|f| f.at.elapsed() < JWKS_TTL) {
            if let Some(key) = select(&f.keys, kid, alg) {
                return Ok(key);
            }
        }
        let may_refetch = current.is_none_or(|f| f.at.elapsed() >= MIN_REFETCH_INTERVAL);
        if may_refetch {
            match fetch(http, uri).await {
                Ok(keys) => {
                    *fetched = Some(Fetched {
                        uri: uri.to_string(),
                        at: Instant::now(),
                        keys: Arc::new(keys),
                    });
                }
                // Without any keys for this URI there is nothing to verify with.
                Err(e) if fetched.as_ref().is_none_or(|f| f.uri != uri) => return Err(e),
                Err(e) => {
                    tracing::warn!(error = %e, "JWKS refresh failed; keeping the previous keys")
                }
            }
        }
        let f = fetched
            .as_ref()
            .filter(|f| f.uri == uri)
            .ok_or_else(|| ProviderError::Unavailable("JWKS: no keys".into()))?;
        select(&f.keys, kid, alg).ok_or_else(|| {
            ProviderError::InvalidIdToken("no published key matches the token's key id".into())
        })
    }
}

async fn fetch(http: &reqwest::Client, uri: &str) -> Result<Vec<Jwk>, ProviderError> {
    let raw: RawKeySet = get_json(http, "JWKS", uri, None)
        .await?
        .map_err(|status| ProviderError::Unavailable(format!("JWKS: status {status}")))?;
    Ok(raw
        .keys
        .into_iter()
        .filter_map(|k| serde_json::from_value(k).ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rsa_jwk(kid: &str) -> Jwk {
        serde_json::from_value(serde_json::json!({
            "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
            "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw",
            "e": "AQAB"
        }))
        .unwrap()
    }

    #[test]
    fn keys_are_chosen_by_kid_and_algorithm() {
        let keys = vec![rsa_jwk("a"), rsa_jwk("b")];
        assert!(select(&keys, Some("b"), Algorithm::RS256).is_some());
        assert!(select(&keys, Some("c"), Algorithm::RS256).is_none());
        // An RSA key never verifies an ES256 header.
        assert!(select(&keys, Some("a"), Algorithm::ES256).is_none());
        // Without a kid, only an unambiguous key is used.
        assert!(select(&keys, None, Algorithm::RS256).is_none());
        assert!(select(&keys[..1], None, Algorithm::RS256).is_some());
    }
}
