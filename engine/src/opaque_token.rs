//! Opaque tokens (refresh tokens, session cookies): `<session id>.<secret>`.
//!
//! The secret is 32 random bytes (base64url); only its SHA-256 is stored and the
//! comparison is constant-time. The session id in front routes the token to its
//! user's actor through the session-owner index, without a scan.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tachigo_storage::TokenHash;

/// The longest token we even look at; anything longer is rejected unparsed.
pub const MAX_TOKEN_LEN: usize = 128;
const SECRET_LEN: usize = 32;

/// A freshly minted token: the plaintext for the client, the hash for storage.
pub struct MintedToken {
    pub token: String,
    pub hash: TokenHash,
}

/// A token taken apart; the hash is computed over the decoded secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedToken<'a> {
    pub session_id: &'a str,
    pub hash: TokenHash,
}

pub fn hash_secret(secret: &[u8]) -> TokenHash {
    Sha256::digest(secret).into()
}

/// Mints a new token for `session_id`.
pub fn mint(session_id: &str) -> MintedToken {
    let mut secret = [0u8; SECRET_LEN];
    rand::rng().fill_bytes(&mut secret);
    MintedToken {
        token: format!("{session_id}.{}", URL_SAFE_NO_PAD.encode(secret)),
        hash: hash_secret(&secret),
    }
}

/// Parses a presented token; `None` for anything that is not exactly our format.
pub fn parse(token: &str) -> Option<ParsedToken<'_>> {
    if token.len() > MAX_TOKEN_LEN {
        return None;
    }
    let (session_id, secret) = token.split_once('.')?;
    if !is_session_id(session_id) {
        return None;
    }
    // Room for more than a secret, so a longer one is seen (and refused), not cut.
    let mut decoded = [0u8; SECRET_LEN + 3];
    let len = URL_SAFE_NO_PAD.decode_slice(secret, &mut decoded).ok()?;
    if len != SECRET_LEN {
        return None;
    }
    Some(ParsedToken {
        session_id,
        hash: hash_secret(&decoded[..SECRET_LEN]),
    })
}

/// Constant-time equality of two token hashes.
pub fn hashes_equal(a: &TokenHash, b: &TokenHash) -> bool {
    a.ct_eq(b).into()
}

/// A new random id (users, sessions, token ids): a version 4 UUID, hyphenated.
/// Its 122 random bits come from the thread's CSPRNG (`rand::rng()`, seeded
/// and periodically reseeded from the OS), not a system call per id.
pub fn new_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string()
}

/// Whether `s` has the shape of an id made by [`new_id`].
pub fn is_session_id(s: &str) -> bool {
    s.len() == 36 && uuid::Uuid::parse_str(s).is_ok()
}

/// A random 256-bit value in base64url (OAuth state, nonce, PKCE-like secrets).
pub fn random_urlsafe_256() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_tokens_parse_back_to_their_hash() {
        let id = new_id();
        let minted = mint(&id);
        let parsed = parse(&minted.token).unwrap();
        assert_eq!(parsed.session_id, id);
        assert!(hashes_equal(&parsed.hash, &minted.hash));
        assert!(!hashes_equal(
            &parse(&mint(&id).token).unwrap().hash,
            &minted.hash
        ));
    }

    #[test]
    fn new_ids_are_version_4_uuids_and_distinct() {
        let ids: std::collections::HashSet<String> = (0..1000).map(|_| new_id()).collect();
        assert_eq!(ids.len(), 1000);
        for id in &ids {
            assert!(is_session_id(id), "{id}");
            assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 4);
        }
    }

    #[test]
    fn malformed_tokens_do_not_parse() {
        let id = new_id();
        let good = mint(&id).token;
        for bad in [
            String::new(),
            "abc".into(),
            format!("{id}."),
            format!("{id}.short"),
            good[..good.len() - 2].to_string(),
            format!("not-an-id.{}", &good[37..]),
            format!("{good}AAAA"),
            "x".repeat(400),
            good.replace('.', "!"),
        ] {
            assert!(parse(&bad).is_none(), "{bad:?} parsed");
        }
    }
}
