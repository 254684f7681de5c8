//! A memo of access tokens that have already verified, so a client that sends
//! the same bearer token on every API call pays for one Ed25519 verification
//! per token instead of one per request (verification is most of the CPU cost
//! of an authenticated read).
//!
//! Entries are keyed by the SHA-256 of the token's exact bytes: only a token
//! that verified in full is ever stored, and no other string maps to its entry.
//! Expiry is checked again on every hit (against the caller's clock, with the
//! verifier's rule: valid while `exp > now`); an expired entry is dropped and the
//! token verified afresh, which then reports the expiry. Failures are never
//! stored. The memo is bounded: each of its shards holds at most
//! `capacity / SHARDS` tokens and, when full, drops expired entries, or all of
//! them if none has expired. What the token's *session* allows is not cached:
//! callers still check that on every request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

const SHARDS: usize = 16;

type Shard<C> = Mutex<HashMap<[u8; 32], Arc<C>>>;

pub struct VerifiedTokens<C> {
    shards: Box<[Shard<C>]>,
    per_shard: usize,
    expires_at: fn(&C) -> i64,
}

impl<C> VerifiedTokens<C> {
    /// A memo of at most about `capacity` tokens; `expires_at` reads a token's
    /// `exp` (seconds since the epoch) from its claims.
    pub fn new(capacity: usize, expires_at: fn(&C) -> i64) -> VerifiedTokens<C> {
        VerifiedTokens {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
            expires_at,
        }
    }

    fn shard(&self, key: &[u8; 32]) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Arc<C>>> {
        self.shards[usize::from(key[0]) % SHARDS]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The claims of `token`: from the memo while it is unexpired at `now_s`,
    /// else from `verify` (remembered when it succeeds).
    pub fn verify<E>(
        &self,
        token: &str,
        now_s: i64,
        verify: impl FnOnce() -> Result<C, E>,
    ) -> Result<Arc<C>, E> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        {
            let mut shard = self.shard(&key);
            if let Some(claims) = shard.get(&key) {
                if (self.expires_at)(claims) > now_s {
                    return Ok(claims.clone());
                }
                shard.remove(&key);
            }
        }
        let claims = Arc::new(verify()?);
        let mut shard = self.shard(&key);
        if shard.len() >= self.per_shard {
            shard.retain(|_, c| (self.expires_at)(c) > now_s);
            if shard.len() >= self.per_shard {
                shard.clear();
            }
        }
        shard.insert(key, claims.clone());
        Ok(claims)
    }

    /// Tokens remembered right now.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map_or(0, |s| s.len()))
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Claims {
        sub: &'static str,
        exp: i64,
    }

    fn memo(capacity: usize) -> VerifiedTokens<Claims> {
        VerifiedTokens::new(capacity, |c| c.exp)
    }

    #[test]
    fn a_verified_token_is_not_verified_again_until_it_expires() {
        let memo = memo(64);
        let mut calls = 0;
        let mut verify = |exp| {
            calls += 1;
            Ok::<_, ()>(Claims { sub: "u", exp })
        };
        assert_eq!(memo.verify("t", 100, || verify(110)).unwrap().sub, "u");
        assert_eq!(memo.verify("t", 109, || verify(110)).unwrap().exp, 110);
        assert_eq!(calls, 1);
        // At exp the memo no longer answers; the verifier decides (here: expired).
        assert_eq!(
            memo.verify("t", 110, || Err::<Claims, _>("expired"))
                .unwrap_err(),
            "expired"
        );
        assert!(memo.is_empty());
    }

    #[test]
    fn failures_are_not_remembered_and_tokens_are_told_apart() {
        let memo = memo(64);
        assert!(memo.verify("bad", 0, || Err::<Claims, _>(())).is_err());
        assert!(memo.is_empty());
        memo.verify("a", 0, || Ok::<_, ()>(Claims { sub: "a", exp: 10 }))
            .unwrap();
        let b = memo
            .verify("b", 0, || Ok::<_, ()>(Claims { sub: "b", exp: 10 }))
            .unwrap();
        assert_eq!(b.sub, "b");
        assert_eq!(memo.verify("a", 0, || Err(())).unwrap().sub, "a");
    }

    #[test]
    fn the_memo_stays_bounded() {
        let memo = memo(SHARDS * 4);
        for i in 0..10_000 {
            memo.verify(&format!("token-{i}"), 0, || {
                Ok::<_, ()>(Claims { sub: "u", exp: 10 })
            })
            .unwrap();
        }
        assert!(memo.len() <= SHARDS * 4, "{}", memo.len());
    }
}
