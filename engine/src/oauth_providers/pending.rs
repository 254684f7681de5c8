//! Pending authorizations: the server-side half of `state`. A started flow is
//! saved under the SHA-256 of its `state` (the value itself is never stored)
//! for ten minutes, and taken exactly once by the callback: a replayed state
//! finds nothing, an expired one is reported as such and is gone too. At most
//! `limits.max_pending_oauth_states` flows wait at once: past that, a new one
//! is refused and nothing is stored.

use std::sync::Arc;

use tachigo_storage::{OAuthStateRecord, Store};

use crate::opaque_token::hash_secret;
use crate::{Engine, EngineError, PendingAuthorization};

/// How long a started authorization may take.
pub const STATE_TTL_MS: i64 = 10 * 60 * 1000;

/// What the callback's `state` turned out to be.
#[derive(Debug)]
pub enum TakenState {
    /// Live and now consumed.
    Live(Box<PendingAuthorization>),
    /// Known but past its ten minutes (consumed as well).
    Expired(Box<PendingAuthorization>),
    /// Never issued, already used, or swept.
    Unknown,
}

#[derive(Clone)]
pub struct PendingAuthorizations {
    store: Arc<dyn Store>,
    engine: Engine,
    max_pending: usize,
}

impl PendingAuthorizations {
    pub fn new(engine: &Engine, max_pending: usize) -> PendingAuthorizations {
        PendingAuthorizations {
            store: engine.store_handle(),
            engine: engine.clone(),
            max_pending,
        }
    }

    /// Saves a started flow under its `state`; durable before it returns.
    /// `Ok(false)`: the bound on pending flows is reached and nothing was saved.
    pub async fn save(
        &self,
        state: &str,
        pending: &PendingAuthorization,
    ) -> Result<bool, EngineError> {
        let record = OAuthStateRecord::from(pending);
        Ok(self
            .store
            .put_oauth_state(&hash_secret(state.as_bytes()), &record, self.max_pending)
            .await?)
    }

    /// Flows waiting for their callback now.
    pub fn pending(&self) -> usize {
        self.store.oauth_state_count()
    }

    /// Takes the flow saved under `state`, whatever its fate, so it never works twice.
    pub async fn take(&self, state: &str) -> Result<TakenState, EngineError> {
        // Issued states are base64url: anything else was never issued, and
        // cannot reach the keys other flows keep in the same table (SIWE
        // nonces are saved under `siwe-nonce:…`).
        let issued_alphabet = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
        if state.is_empty() || state.len() > 256 || !state.bytes().all(issued_alphabet) {
            return Ok(TakenState::Unknown);
        }
        let taken = self
            .store
            .take_oauth_state(&hash_secret(state.as_bytes()))
            .await?;
        Ok(match taken {
            Some(record) if record.expires_at > self.engine.now() => {
                TakenState::Live(Box::new(record.into()))
            }
            Some(record) => TakenState::Expired(Box::new(record.into())),
            None => TakenState::Unknown,
        })
    }
}
