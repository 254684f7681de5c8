//! The Ed25519 keys that sign tachigo JWTs, and their JWKS rendering.
//!
//! A key is made on first start and kept in storage. A rotation stores a new
//! key that is published at once but signs only from its activation time
//! (its `created_at`, set 1.5 × the JWKS cache lifetime ahead: see
//! `key_rotation`), so every verifier that caches the JWKS for the advertised time
//! knows it before it meets a token it signed. The key it replaces is retired
//! at that same instant and stays published, and keeps verifying, until every
//! token it signed has expired.
//!
//! Key states at a time `now`, derived from the stored record alone:
//! - pending: `created_at > now` (published, not signing);
//! - active: the newest key with `created_at <= now` not retired by `now`;
//! - retired: `retired_at <= now`, published until `retired_at + max token ttl`.

use std::sync::{Arc, RwLock, RwLockReadGuard};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use rand::RngCore;
use serde::{de::DeserializeOwned, Serialize};
use sha2::{Digest, Sha256};
use tachigo_storage::{SigningKeyRecord, Store};

use crate::clock::Clock;
use crate::model::UnixMillis;

use crate::EngineError;

struct PublishedKey {
    kid: String,
    x: String,
    decoding: DecodingKey,
}

struct KeySet {
    /// Every stored key, as last read from storage.
    records: Vec<SigningKeyRecord>,
    /// The first instant at which the rendering below stops being true (a
    /// pending key activates, a retired key's last token expires).
    changes_at: UnixMillis,
    active_kid: String,
    /// When the active key started signing.
    active_since: UnixMillis,
    /// The active private key, parsed once (parsing derives the public half,
    /// the costly part of Ed25519, so it must not happen per token).
    signing: ed25519_dalek::SigningKey,
    /// `base64url({"alg":"EdDSA","typ":"JWT","kid":...})`, the same for every token.
    encoded_header: String,
    published: Vec<PublishedKey>,
    jwks: Arc<str>,
    pending: Option<PendingKey>,
}

/// A key that is published and starts signing at `activates_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingKey {
    pub kid: String,
    pub activates_at: UnixMillis,
}

/// What a rotation request did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// A new key is published and signs from its activation time.
    Started(PendingKey),
    /// A rotation is already under way; nothing was changed.
    AlreadyPending(PendingKey),
}

/// How long keys wait and stay: the inputs of every rendering.
#[derive(Debug, Clone, Copy)]
pub struct KeyTiming {
    /// The longest lifetime of any token the keys sign.
    pub max_token_ttl_ms: i64,
    /// How long after its publication a rotated-in key starts signing.
    pub activation_lead_ms: i64,
}

/// The signing keys, shared by every frontend. Cheap to clone.
#[derive(Clone)]
pub struct KeyRing {
    keys: Arc<RwLock<KeySet>>,
    /// Held from a reload's read of storage to its swap, so an older read
    /// (the periodic reload) never replaces a newer one (a rotation's).
    reloading: Arc<tokio::sync::Mutex<()>>,
    clock: Arc<dyn Clock>,
    timing: KeyTiming,
}

fn kid_of(public_key: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(&Sha256::digest(public_key)[..12])
}

/// A fresh key that signs from `active_from`.
fn generate(active_from: UnixMillis) -> SigningKeyRecord {
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
        created_at: active_from,
        retired_at: None,
    }
}

fn is_active_candidate(r: &SigningKeyRecord, now: UnixMillis) -> bool {
    r.created_at <= now && r.retired_at.is_none_or(|at| at > now)
}

/// The key that signs at `now`: the newest activated, unretired one. A store
/// holding none (every key retired by a rotation whose new key was lost)
/// falls back to the newest activated key, then to the oldest one, so a
/// token is always signed by a published key.
fn signer_at(records: &[SigningKeyRecord], now: UnixMillis) -> Option<&SigningKeyRecord> {
    records
        .iter()
        .filter(|r| is_active_candidate(r, now))
        .max_by_key(|r| r.created_at)
        .or_else(|| {
            records
                .iter()
                .filter(|r| r.created_at <= now)
                .max_by_key(|r| r.created_at)
        })
        .or_else(|| records.iter().min_by_key(|r| r.created_at))
}

fn build(records: Vec<SigningKeyRecord>, now: UnixMillis, max_token_ttl_ms: i64) -> KeySet {
    let active = signer_at(&records, now).expect("a key ring always has a key");
    let active_kid = active.kid.clone();
    let signing = ed25519_dalek::SigningKey::from_pkcs8_der(&active.private_pkcs8)
        .expect("a stored Ed25519 key");
    let published: Vec<PublishedKey> = records
        .iter()
        .filter(|r| {
            r.kid == active_kid || r.retired_at.is_none_or(|at| at + max_token_ttl_ms > now)
        })
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
    let changes_at = records
        .iter()
        .flat_map(|r| {
            [
                Some(r.created_at),
                r.retired_at,
                r.retired_at.map(|at| at.saturating_add(max_token_ttl_ms)),
            ]
        })
        .flatten()
        .filter(|&at| at > now)
        .min()
        .unwrap_or(i64::MAX);
    let pending = records
        .iter()
        .filter(|r| r.created_at > now)
        .min_by_key(|r| r.created_at)
        .map(|r| PendingKey {
            kid: r.kid.clone(),
            activates_at: r.created_at,
        });
    KeySet {
        encoded_header: URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&Header {
                kid: Some(active_kid.clone()),
                ..Header::new(Algorithm::EdDSA)
            })
            .expect("a JWT header serialises"),
        ),
        active_since: active.created_at,
        active_kid,
        signing,
        published,
        jwks: jwks.to_string().into(),
        pending,
        changes_at,
        records,
    }
}

impl KeyRing {
    /// Loads the keys from storage, making the first one if there is none.
    pub(crate) async fn load_or_create(
        store: &dyn Store,
        clock: Arc<dyn Clock>,
        timing: KeyTiming,
    ) -> Result<KeyRing, EngineError> {
        let now = clock.now_ms();
        let mut records = store.signing_keys().await?;
        if !records.iter().any(|r| r.retired_at.is_none()) {
            let key = generate(now);
            store.put_signing_key(&key).await?;
            tracing::info!(kid = %key.kid, "created the first signing key");
            records.push(key);
        }
        Ok(KeyRing {
            keys: Arc::new(RwLock::new(build(records, now, timing.max_token_ttl_ms))),
            reloading: Arc::default(),
            clock,
            timing,
        })
    }

    /// Stores a new key that is published now and signs from `now + lead`,
    /// and retires every unretired key at that same instant. The new key is
    /// written first: a crash in between leaves the old key unretired (still
    /// published, no longer signing once the new one activates), never a
    /// store without a signer. Refused (nothing written) while a rotated-in
    /// key is still pending.
    pub(crate) async fn rotate(
        store: &dyn Store,
        now: UnixMillis,
        lead_ms: i64,
    ) -> Result<Rotation, EngineError> {
        let records = store.signing_keys().await?;
        if let Some(pending) = records
            .iter()
            .filter(|r| r.created_at > now)
            .min_by_key(|r| r.created_at)
        {
            return Ok(Rotation::AlreadyPending(PendingKey {
                kid: pending.kid.clone(),
                activates_at: pending.created_at,
            }));
        }
        let activates_at = now.saturating_add(lead_ms);
        let key = generate(activates_at);
        store.put_signing_key(&key).await?;
        for mut record in records.into_iter().filter(|r| r.retired_at.is_none()) {
            record.retired_at = Some(activates_at);
            store.put_signing_key(&record).await?;
        }
        Ok(Rotation::Started(PendingKey {
            kid: key.kid,
            activates_at,
        }))
    }

    /// Reads the key records from storage again (keys rotated by another
    /// node, or by an operator command). Returns whether anything changed.
    pub(crate) async fn reload(&self, store: &dyn Store) -> Result<bool, EngineError> {
        let _one_at_a_time = self.reloading.lock().await;
        let records = store.signing_keys().await?;
        if records.is_empty() {
            return Ok(false);
        }
        let now = self.clock.now_ms();
        let unchanged = {
            let keys = self.keys.read().expect("key ring lock");
            keys.records.len() == records.len()
                && keys.records.iter().zip(&records).all(|(a, b)| {
                    a.kid == b.kid && a.created_at == b.created_at && a.retired_at == b.retired_at
                })
        };
        if unchanged {
            return Ok(false);
        }
        let set = build(records, now, self.timing.max_token_ttl_ms);
        *self.keys.write().expect("key ring lock") = set;
        Ok(true)
    }

    pub fn timing(&self) -> KeyTiming {
        self.timing
    }

    /// The keys as they are at the clock's now: rebuilt (rarely: when a key
    /// activates or a retired one expires) only when the time has passed the
    /// instant the current rendering stops being true.
    fn current(&self) -> RwLockReadGuard<'_, KeySet> {
        let now = self.clock.now_ms();
        {
            let keys = self.keys.read().expect("key ring lock");
            if now < keys.changes_at {
                return keys;
            }
        }
        {
            let mut keys = self.keys.write().expect("key ring lock");
            if now >= keys.changes_at {
                let records = std::mem::take(&mut keys.records);
                *keys = build(records, now, self.timing.max_token_ttl_ms);
                if let Some(pending) = &keys.pending {
                    tracing::debug!(kid = %pending.kid, "a signing key is pending");
                }
                tracing::debug!(kid = %keys.active_kid, "signing keys re-rendered");
            }
        }
        self.keys.read().expect("key ring lock")
    }

    /// When the key that signs now started signing.
    pub fn active_since(&self) -> UnixMillis {
        self.current().active_since
    }

    /// The key published ahead of its activation, if a rotation is under way.
    pub fn pending(&self) -> Option<PendingKey> {
        self.current().pending.clone()
    }

    pub fn active_kid(&self) -> String {
        self.current().active_kid.clone()
    }

    /// The JWKS document (`{"keys":[...]}`) of every key still in circulation.
    pub fn jwks_json(&self) -> Arc<str> {
        self.current().jwks.clone()
    }

    /// Signs `claims` with the active key (EdDSA, with `kid`).
    /// The JWS compact form is built here rather than by `jsonwebtoken::encode`,
    /// which would parse the PKCS#8 key again for every token.
    pub fn sign<T: Serialize>(&self, claims: &T) -> String {
        use ed25519_dalek::Signer;
        let keys = self.current();
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
        let keys = self.current();
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
