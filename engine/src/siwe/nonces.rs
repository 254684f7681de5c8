//! SIWE nonces, issued by this server for one address on one chain, kept five
//! minutes and taken exactly once: a replayed message finds nothing, an expired
//! nonce is gone too. They live in the store's bounded table of pending
//! provider flows (`limits.max_pending_oauth_states` in total, swept like the
//! flows): past the bound a new nonce is refused and nothing is stored.
//!
//! A nonce is saved under the SHA-256 of `siwe-nonce:` ‖ nonce (never the value
//! itself), a key no OAuth `state` derives to; the record names provider
//! `siwe` and carries the CAIP-10 account the nonce was issued for, and no
//! state cookie binding (so an OAuth callback can never complete one).

use std::sync::Arc;

use rand::distr::{Alphanumeric, SampleString};
use tachigo_storage::{OAuthStateRecord, Store, TokenHash};

use crate::model::UnixMillis;
use crate::opaque_token::hash_secret;
use crate::{Engine, EngineError};

use super::verifier::SIWE_PROVIDER;

/// How long an issued nonce may wait for its signed message.
pub const SIWE_NONCE_TTL_MS: i64 = 5 * 60 * 1000;
/// 32 letters and digits: about 190 bits.
const NONCE_CHARS: usize = 32;

/// What a nonce taken back turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TakenNonce {
    /// Live, now consumed: the CAIP-10 account it was issued for, and when.
    Live {
        account: String,
        issued_at: UnixMillis,
    },
    /// Never issued, already used, expired (consumed as well) or swept.
    Unknown,
}

#[derive(Clone)]
pub struct SiweNonces {
    store: Arc<dyn Store>,
    engine: Engine,
    max_pending: usize,
}

fn key(nonce: &str) -> TokenHash {
    hash_secret(format!("siwe-nonce:{nonce}").as_bytes())
}

impl SiweNonces {
    pub fn new(engine: &Engine, max_pending: usize) -> SiweNonces {
        SiweNonces {
            store: engine.store_handle(),
            engine: engine.clone(),
            max_pending,
        }
    }

    /// A new nonce for `account` (`eip155:<chainId>:<address>`), durable
    /// before it returns. `Ok(None)`: the bound is reached and nothing was saved.
    pub async fn issue(&self, account: &str) -> Result<Option<String>, EngineError> {
        let nonce = Alphanumeric.sample_string(&mut rand::rng(), NONCE_CHARS);
        let now = self.engine.now();
        let record = OAuthStateRecord {
            provider: SIWE_PROVIDER.to_string(),
            pkce_verifier: String::new(),
            nonce: Some(account.to_string()),
            binding_hash: [0u8; 32],
            callback_url: String::new(),
            error_callback_url: String::new(),
            new_user_callback_url: None,
            link_user_id: None,
            link_session_id: None,
            created_at: now,
            expires_at: now + SIWE_NONCE_TTL_MS,
        };
        let saved = self
            .store
            .put_oauth_state(&key(&nonce), &record, self.max_pending)
            .await?;
        Ok(saved.then_some(nonce))
    }

    /// Takes `nonce` back, whatever its fate, so it never works twice.
    pub(crate) async fn take(&self, nonce: &str) -> Result<TakenNonce, EngineError> {
        let Some(record) = self.store.take_oauth_state(&key(nonce)).await? else {
            return Ok(TakenNonce::Unknown);
        };
        Ok(match record.nonce {
            Some(account)
                if record.provider == SIWE_PROVIDER && record.expires_at > self.engine.now() =>
            {
                TakenNonce::Live {
                    account,
                    issued_at: record.created_at,
                }
            }
            _ => TakenNonce::Unknown,
        })
    }
}
