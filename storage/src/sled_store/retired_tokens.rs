//! Where the sled backend keeps the hashes of retired refresh tokens.
//!
//! Reuse detection asks one question: did this family ever issue this token
//! hash? A presented refresh token names its session, so the answer can live
//! with the family. Every rotation retires one hash, and a second sled write
//! per rotation (the index keyed by hash alone that earlier builds kept) cost
//! as much CPU as the rotation's own write. So:
//!
//! - a family's value in `refresh_families` is the family's encoding followed by
//!   a **tail** of up to [`TAIL_MAX`] retired hashes, 32 bytes each (a record's
//!   reader ignores bytes after the record, so the family still reads the same);
//! - a rotation that finds the tail full first writes it whole as one **chunk**
//!   to `retired_refresh_chunks`, under `session id \0 sequence` (big-endian
//!   u64), then starts a new tail: 1 + 1/[`TAIL_MAX`] writes per rotation, and
//!   the chunk is written before the family that no longer holds those hashes;
//! - every other write of a family keeps the tail it finds.
//!
//! A spilled chunk's sequence is the generation of the family it was spilled
//! from (below 2³²): the tail at a generation is always the same, so writing it
//! again is harmless. Hashes imported from a snapshot, or migrated from the old
//! index when a database written by an earlier build opens, are merged into the
//! chunk at [`MERGED_SEQUENCE`].

use std::collections::BTreeMap;

use sled::Tree;

use crate::codec::{decode_prefix, encode};
use crate::records::{FamilyRecord, TokenHash};
use crate::StorageError;

/// Retired hashes a family's value holds before they move to a chunk.
pub const TAIL_MAX: usize = 8;

/// The chunk sequence of imported and migrated hashes (above any generation).
pub const MERGED_SEQUENCE: u64 = 1 << 32;

/// The tree of the index earlier builds kept (hash → session id).
pub const LEGACY_INDEX: &str = "retired_refresh_tokens";

const HASH_LEN: usize = 32;
const SEQUENCE_LEN: usize = 8;

/// A stored family value: the record and the retired hashes after it.
pub fn split(value: &[u8]) -> Result<(FamilyRecord, &[u8]), StorageError> {
    let (record, used) = decode_prefix(value)?;
    Ok((record, tail_after(value, used)?))
}

/// The tail of a stored family value whose record takes its first `record_len` bytes.
pub fn tail_after(value: &[u8], record_len: usize) -> Result<&[u8], StorageError> {
    let tail = value.get(record_len..).unwrap_or_default();
    if tail.len() % HASH_LEN != 0 {
        return Err(StorageError::Corrupt(format!(
            "a refresh family's retired tail is {} bytes, not a multiple of {HASH_LEN}",
            tail.len()
        )));
    }
    Ok(tail)
}

/// The value of `record` keeping `tail`.
pub fn compose(record: &FamilyRecord, tail: &[u8]) -> Vec<u8> {
    let mut value = encode(record);
    value.extend_from_slice(tail);
    value
}

/// The hashes in a tail or chunk.
pub fn hashes(bytes: &[u8]) -> impl Iterator<Item = TokenHash> + '_ {
    bytes
        .chunks_exact(HASH_LEN)
        .map(|h| h.try_into().expect("chunks_exact yields 32 bytes"))
}

/// Whether a tail or chunk holds `hash`. Not constant-time: these are hashes of
/// 256-bit secrets, and timing would tell only about the hash.
pub fn holds(bytes: &[u8], hash: &TokenHash) -> bool {
    bytes.chunks_exact(HASH_LEN).any(|h| h == hash)
}

/// Whether `tail` must move to a chunk before one more hash joins it.
pub fn is_full(tail: &[u8]) -> bool {
    tail.len() >= TAIL_MAX * HASH_LEN
}

/// The prefix of every chunk of `session_id`.
pub fn chunk_prefix(session_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(session_id.len() + 1 + SEQUENCE_LEN);
    key.extend_from_slice(session_id.as_bytes());
    key.push(0);
    key
}

/// The key of one chunk of `session_id`.
pub fn chunk_key(session_id: &str, sequence: u64) -> Vec<u8> {
    let mut key = chunk_prefix(session_id);
    key.extend_from_slice(&sequence.to_be_bytes());
    key
}

/// The session id a chunk key belongs to.
pub fn session_of(chunk_key: &[u8]) -> Result<&str, StorageError> {
    chunk_key
        .len()
        .checked_sub(1 + SEQUENCE_LEN)
        .filter(|&end| chunk_key[end] == 0)
        .and_then(|end| std::str::from_utf8(&chunk_key[..end]).ok())
        .ok_or_else(|| StorageError::Corrupt("a retired-token chunk key is malformed".into()))
}

/// Adds `new` to the chunk at `key`, keeping what it holds and no duplicate.
fn merge_into_chunk(chunks: &Tree, key: &[u8], new: &[TokenHash]) -> Result<(), StorageError> {
    loop {
        let old = chunks.get(key)?;
        let mut value = old.as_deref().unwrap_or_default().to_vec();
        for hash in new {
            if !holds(&value, hash) {
                value.extend_from_slice(hash);
            }
        }
        if chunks.compare_and_swap(key, old, Some(value))?.is_ok() {
            return Ok(());
        }
    }
}

/// Adds retired `(hash, session id)` pairs to each session's chunk at
/// [`MERGED_SEQUENCE`] (one write per session); returns how many there were.
pub fn merge_retired<S: AsRef<str> + Ord>(
    chunks: &Tree,
    retired: impl IntoIterator<Item = (TokenHash, S)>,
) -> Result<usize, StorageError> {
    let mut by_session: BTreeMap<S, Vec<TokenHash>> = BTreeMap::new();
    for (hash, session_id) in retired {
        by_session.entry(session_id).or_default().push(hash);
    }
    for (session_id, hashes) in &by_session {
        merge_into_chunk(
            chunks,
            &chunk_key(session_id.as_ref(), MERGED_SEQUENCE),
            hashes,
        )?;
    }
    Ok(by_session.values().map(Vec::len).sum())
}

/// Moves the index of earlier builds (hash → session id), if this database has
/// one, into chunks, then drops it. Safe to repeat after a crash: merging is
/// idempotent, and the old index goes only once everything is in chunks.
pub fn migrate_legacy_index(db: &sled::Db, chunks: &Tree) -> Result<usize, StorageError> {
    if !db.tree_names().iter().any(|n| n == LEGACY_INDEX.as_bytes()) {
        return Ok(0);
    }
    let legacy = db.open_tree(LEGACY_INDEX)?;
    let mut retired = Vec::new();
    for entry in legacy.iter() {
        let (hash, session_id) = entry?;
        let hash: TokenHash = hash.as_ref().try_into().map_err(|_| {
            StorageError::Corrupt("a retired token key of the old index is not 32 bytes".into())
        })?;
        let session_id = String::from_utf8(session_id.to_vec()).map_err(|_| {
            StorageError::Corrupt("a retired token's session id is not UTF-8".into())
        })?;
        retired.push((hash, session_id));
    }
    let moved = merge_retired(chunks, retired)?;
    db.flush()?;
    drop(legacy);
    db.drop_tree(LEGACY_INDEX)?;
    db.flush()?;
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn family() -> FamilyRecord {
        FamilyRecord {
            session_id: "s".into(),
            user_id: "u".into(),
            current: [1; 32],
            generation: 3,
            previous: None,
            revoked: None,
            last_rotated_at: 10,
            idle_expires_at: 20,
            absolute_expires_at: 30,
        }
    }

    #[test]
    fn a_value_splits_into_its_record_and_tail() {
        let tail: Vec<u8> = [[5u8; 32], [6u8; 32]].concat();
        let value = compose(&family(), &tail);
        let (record, back) = split(&value).unwrap();
        assert_eq!(record, family());
        assert_eq!(back, &tail[..]);
        assert!(holds(back, &[6; 32]));
        assert!(!holds(back, &[7; 32]));
        assert_eq!(hashes(back).collect::<Vec<_>>(), vec![[5; 32], [6; 32]]);
        // A value written before tails existed has none.
        assert_eq!(split(&encode(&family())).unwrap().1, &[] as &[u8]);
    }

    #[test]
    fn a_torn_tail_is_corruption() {
        let mut value = compose(&family(), &[5; 32]);
        value.pop();
        assert!(matches!(split(&value), Err(StorageError::Corrupt(_))));
    }

    #[test]
    fn chunk_keys_name_their_session() {
        let key = chunk_key("family-live", 7);
        assert!(key.starts_with(&chunk_prefix("family-live")));
        assert!(!key.starts_with(&chunk_prefix("family")));
        assert_eq!(session_of(&key).unwrap(), "family-live");
        assert!(session_of(b"short").is_err());
        assert!(session_of(&[b'x'; 12]).is_err());
    }
}
