//! [`OwnerCache`]: which user a session id belongs to, remembered.
//!
//! Every opaque token names its session, and the engine must find the
//! session's user (its actor) before anything else. A session never changes
//! owner, so a found owner can be kept: on sled the index read is cheap, on
//! PostgreSQL it is a round trip per request, which the cache removes from
//! the hot paths (get-session, refresh). Only owners found in storage are
//! kept, so what a caller invents never enters it, and it is bounded: a full
//! shard is cleared and refilled from storage on demand. The actor stays the
//! authority on whether the session is live.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;

const SHARDS: usize = 16;

pub(crate) struct OwnerCache {
    shards: Vec<Mutex<HashMap<String, String>>>,
    hasher: RandomState,
    per_shard: usize,
}

impl OwnerCache {
    /// Holds at most about `capacity` entries.
    pub(crate) fn new(capacity: usize) -> OwnerCache {
        OwnerCache {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
            per_shard: (capacity / SHARDS).max(1),
        }
    }

    fn shard(&self, session_id: &str) -> &Mutex<HashMap<String, String>> {
        let index = self.hasher.hash_one(session_id) as usize % SHARDS;
        &self.shards[index]
    }

    pub(crate) fn get(&self, session_id: &str) -> Option<String> {
        self.shard(session_id)
            .lock()
            .expect("owner cache lock")
            .get(session_id)
            .cloned()
    }

    pub(crate) fn insert(&self, session_id: &str, owner: &str) {
        let mut shard = self.shard(session_id).lock().expect("owner cache lock");
        if shard.len() >= self.per_shard {
            shard.clear();
        }
        shard.insert(session_id.to_string(), owner.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_owners_and_stays_bounded() {
        let cache = OwnerCache::new(64);
        cache.insert("s1", "u1");
        assert_eq!(cache.get("s1").as_deref(), Some("u1"));
        assert_eq!(cache.get("s2"), None);
        for i in 0..10_000 {
            cache.insert(&format!("session-{i}"), "u");
        }
        let held: usize = cache.shards.iter().map(|s| s.lock().unwrap().len()).sum();
        assert!(held <= 64, "held {held}");
    }
}
