//! The refresh-token family state machine (one family per dashboard login), as pure
//! functions so its rules can be tested exhaustively.
//!
//! Presenting the current token rotates it. Presenting the *immediate* predecessor
//! again within the grace window is answered with the current successor (two tabs,
//! a lost response). Presenting any other token of the family is reuse and revokes
//! the whole family. After revocation nothing works.

use tachigo_storage::{FamilyRecord, FamilyRevocation, RetiredToken, TokenHash, UnixMillis};

use crate::opaque_token::hashes_equal;

/// What a presented token means for its family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presentation {
    /// The current token: rotate.
    Current,
    /// The immediate predecessor within the grace window: answer with the successor.
    GraceReplay,
    /// A retired token outside the grace rule: revoke the family.
    Reuse,
    /// The family was already revoked.
    Revoked(FamilyRevocation),
    /// The family has passed its idle or absolute expiry.
    Expired,
    /// Not a token of this family (forged or corrupted): change nothing.
    Unknown,
}

/// Classifies `presented`. `retired_earlier` answers whether the hash is a token
/// this family retired before its immediate predecessor (looked up only if needed).
pub fn classify(
    family: &FamilyRecord,
    presented: &TokenHash,
    now: UnixMillis,
    grace_ms: i64,
    retired_earlier: impl FnOnce() -> bool,
) -> Presentation {
    let is_current = hashes_equal(&family.current, presented);
    let is_previous = family
        .previous
        .is_some_and(|p| hashes_equal(&p.hash, presented));
    if !is_current && !is_previous && !retired_earlier() {
        return Presentation::Unknown;
    }
    if let Some(reason) = family.revoked {
        return Presentation::Revoked(reason);
    }
    if now >= family.idle_expires_at || now >= family.absolute_expires_at {
        return Presentation::Expired;
    }
    if is_current {
        return Presentation::Current;
    }
    match family.previous {
        Some(p) if is_previous && now - p.retired_at <= grace_ms => Presentation::GraceReplay,
        _ => Presentation::Reuse,
    }
}

/// Whether classifying `presented` needs the retired-token lookup: only a
/// token that is neither the family's current one nor its immediate predecessor.
pub fn needs_retired_lookup(family: &FamilyRecord, presented: &TokenHash) -> bool {
    !hashes_equal(&family.current, presented)
        && !family
            .previous
            .is_some_and(|p| hashes_equal(&p.hash, presented))
}

/// Retires the current token in favour of `successor`.
pub fn rotate(family: &mut FamilyRecord, successor: TokenHash, now: UnixMillis, idle_ttl_ms: i64) {
    family.previous = Some(RetiredToken {
        hash: family.current,
        retired_at: now,
    });
    family.current = successor;
    family.generation += 1;
    family.last_rotated_at = now;
    family.idle_expires_at = (now + idle_ttl_ms).min(family.absolute_expires_at);
}

/// A new family for a login.
pub fn start(
    session_id: &str,
    user_id: &str,
    first: TokenHash,
    now: UnixMillis,
    idle_ttl_ms: i64,
    absolute_ttl_ms: i64,
) -> FamilyRecord {
    let absolute = now + absolute_ttl_ms;
    FamilyRecord {
        session_id: session_id.to_string(),
        user_id: user_id.to_string(),
        current: first,
        generation: 0,
        previous: None,
        revoked: None,
        last_rotated_at: now,
        idle_expires_at: (now + idle_ttl_ms).min(absolute),
        absolute_expires_at: absolute,
    }
}
