//! The Ed25519 keys that sign tachigo JWTs, and their JWKS rendering.
//!
//! A key is made on first start and kept in storage (inside the data directory).
//! Rotation makes a new active key and retires the old one; a retired key stays
//! published, and keeps verifying, until every token it signed has expired.

use std::sync::{Arc, RwLock};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use rand::RngCore;
use serde::{de::DeserializeOwned, Serialize};
use sha2::{Digest, Sha256};
use tachigo_storage::{SigningKeyRecord, Store};

use crate::model::UnixMillis;

use crate::EngineError;

struct PublishedKey {
    kid: String,
    x: String,
    decoding: DecodingKey,
}

struct KeySet {
    active_kid: String,
    /// The active private key, parsed once (parsing derives the public half,
    /// the costly part of Ed25519, so it must not happen per token).
    signing: ed25519_dalek::SigningKey,
    /// `base64url({"alg":"EdDSA","typ":"JWT","kid":...})`, the same for every token.
    encoded_header: String,
    published: Vec<PublishedKey>,
    jwks: Arc<str>,
}

/// The signing keys, shared by every frontend. Cheap to clone.
#[derive(Clone)]
pub struct KeyRing {
    keys: Arc<RwLock<KeySet>>,
}

fn kid_of(public_key: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(&Sha256::digest(public_key)[..12])
}

fn generate(now: UnixMillis) -> SigningKeyRecord {
    let mut seed = [0u8; 32];
    rand::rng().fill_bytes(&mut seed);
    let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
    let public_key = signing.verifying_key().to_bytes().to_vec();
    SigningKeyRecord {
        kid: kid_of(&public_key),
        private_pkcs8: signing
            .to_pkcs8_der()
            .expect("encoding an Ed25519 key")
            .as_bytes()
            .to_vec(),
        public_key,
        created_at: now,
        retired_at: None,
    }
}

fn build(records: &[SigningKeyRecord], now: UnixMillis, max_token_ttl_ms: i64) -> KeySet {
    let active = records
        .iter()
        .filter(|r| r.retired_at.is_none())
        .max_by_key(|r| r.created_at)
        .expect("a key ring always has an active key");
    let published: Vec<PublishedKey> = records
        .iter()
        .filter(|r| r.retired_at.is_none_or(|at| at + max_token_ttl_ms > now))
        .map(|r| {
            let x = URL_SAFE_NO_PAD.encode(&r.public_key);
            PublishedKey {
                kid: r.kid.clone(),
                decoding: DecodingKey::from_ed_components(&x).expect("a stored public key"),
                x,
            }
        })
        .collect();
    let jwks = serde_json::json!({
        "keys": published.iter().map(|k| serde_json::json!({
            "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": k.kid, "x": k.x,
        })).collect::<Vec<_>>()
    });
    KeySet {
        active_kid: active.kid.clone(),
        signing: ed25519_dalek::SigningKey::from_pkcs8_der(&active.private_pkcs8)
            .expect("a stored Ed25519 key"),
        encoded_header: URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&Header {
                kid: Some(active.kid.clone()),
                ..Header::new(Algorithm::EdDSA)
            })
            .expect("a JWT header serialises"),
        ),
        published,
        jwks: jwks.to_string().into(),
    }
}

impl KeyRing {
    /// Loads the keys from storage, making the first one if there is none.
    pub(crate) async fn load_or_create(
        store: &dyn Store,
        now: UnixMillis,
        max_token_ttl_ms: i64,
    ) -> Result<KeyRing, EngineError> {
        let mut records = store.signing_keys().await?;
        if !records.iter().any(|r| r.retired_at.is_none()) {
            let key = generate(now);
            store.put_signing_key(&key).await?;
            tracing::info!(kid = %key.kid, "created the first signing key");
            records.push(key);
        }
        Ok(KeyRing {
            keys: Arc::new(RwLock::new(build(&records, now, max_token_ttl_ms))),
        })
    }

    /// Makes a new active key and retires the current one. Returns the new kid.
    pub(crate) async fn rotate(store: &dyn Store, now: UnixMillis) -> Result<String, EngineError> {
        let mut records = store.signing_keys().await?;
        for record in records.iter_mut().filter(|r| r.retired_at.is_none()) {
            record.retired_at = Some(now);
            store.put_signing_key(record).await?;
        }
        let key = generate(now);
        store.put_signing_key(&key).await?;
        Ok(key.kid)
    }

    pub fn active_kid(&self) -> String {
        self.keys.read().expect("key ring lock").active_kid.clone()
    }

    /// The JWKS document (`{"keys":[...]}`) of every key still in circulation.
    pub fn jwks_json(&self) -> Arc<str> {
        self.keys.read().expect("key ring lock").jwks.clone()
    }

    /// Signs `claims` with the active key (EdDSA, with `kid`).
    /// The JWS compact form is built here rather than by `jsonwebtoken::encode`,
    /// which would parse the PKCS#8 key again for every token.
    pub fn sign<T: Serialize>(&self, claims: &T) -> String {
        use ed25519_dalek::Signer;
        let keys = self.keys.read().expect("key ring lock");
        let claims = serde_json::to_vec(claims).expect("claims serialise");
        let mut token =
            String::with_capacity(keys.encoded_header.len() + claims.len() * 4 / 3 + 90);
        token.push_str(&keys.encoded_header);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&claims, &mut token);
        let signature = keys.signing.sign(token.as_bytes());
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature.to_bytes(), &mut token);
        token
    }

    /// Verifies a token signed by one of our published keys, for `audience`,
    /// unexpired at `now_s` (the engine's clock, in seconds). Only EdDSA with a
    /// known `kid` is accepted; `exp` is required.
    pub fn verify<T: DeserializeOwned + HasExpiry>(
        &self,
        token: &str,
        audience: &str,
        now_s: i64,
    ) -> Result<T, EngineError> {
        if token.len() > 4096 {
            return Err(EngineError::InvalidToken);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| EngineError::InvalidToken)?;
        if header.alg != Algorithm::EdDSA {
            return Err(EngineError::InvalidToken);
        }
        let kid = header.kid.ok_or(EngineError::InvalidToken)?;
        let keys = self.keys.read().expect("key ring lock");
        let key = keys
            .published
            .iter()
            .find(|k| k.kid == kid)
            .ok_or(EngineError::InvalidToken)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "aud", "sub"]);
        // Expiry is checked below against the engine's clock, not the system's.
        validation.validate_exp = false;
        let claims = jsonwebtoken::decode::<T>(token, &key.decoding, &validation)
            .map_err(|_| EngineError::InvalidToken)?
            .claims;
        if claims.expires_at() <= now_s {
            return Err(EngineError::TokenExpired);
        }
        Ok(claims)
    }
}

/// Claims that carry an `exp` (seconds since the Unix epoch).
pub trait HasExpiry {
    fn expires_at(&self) -> i64;
}

impl HasExpiry for crate::access_token::AccessClaims {
    fn expires_at(&self) -> i64 {
        self.exp
    }
}
