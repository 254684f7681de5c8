//! [`TokenCipher`]: seals the tokens providers issue before they reach
//! storage, with AES-256-GCM (the `aes-gcm` crate).
//!
//! Every seal draws a fresh random 96-bit nonce. The associated data binds a
//! ciphertext to the account and field it belongs to (user id, provider,
//! subject, `access_token`/`refresh_token`/`id_token`), so a ciphertext copied
//! into another account's record, or into another field, fails to open. Each
//! sealed secret carries the id of the key that sealed it (the first 8 bytes
//! of a SHA-256 of the key under a fixed label, which says nothing about the
//! key): the current key seals and opens, old keys only open, so the key can
//! be rotated and stored secrets move to the current key at their next write.

use std::sync::Arc;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use sha2::{Digest, Sha256};
use tachigo_storage::SealedSecret;

use crate::config::token_keys::{read_token_keys, TokenKey};
use crate::config::{ConfigError, OAuthConfig};

/// The label in front of every associated data (and of the key id digest).
const AAD_LABEL: &[u8] = b"tachigo provider token v1";
const KEY_ID_LABEL: &[u8] = b"tachigo provider token key id v1";

/// Which token of an account a secret is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenField {
    Access,
    Refresh,
    Id,
}

impl TokenField {
    fn as_str(self) -> &'static str {
        match self {
            TokenField::Access => "access_token",
            TokenField::Refresh => "refresh_token",
            TokenField::Id => "id_token",
        }
    }
}

/// The account a sealed secret belongs to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Binding<'a> {
    pub user_id: &'a str,
    pub provider: &'a str,
    pub subject: &'a str,
}

impl Binding<'_> {
    /// Label, then each part length-prefixed, so no two bindings read alike.
    fn associated_data(&self, field: TokenField) -> Vec<u8> {
        let mut aad = AAD_LABEL.to_vec();
        for part in [self.user_id, self.provider, self.subject, field.as_str()] {
            aad.extend_from_slice(&(part.len() as u32).to_be_bytes());
            aad.extend_from_slice(part.as_bytes());
        }
        aad
    }
}

/// Why a sealed secret did not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpenError {
    /// Sealed by a key that is no longer configured.
    UnknownKey,
    /// Altered, or moved from another account or field.
    Rejected,
}

struct SealingKey {
    id: [u8; 8],
    aead: Aes256Gcm,
}

impl SealingKey {
    fn new(key: &TokenKey) -> SealingKey {
        SealingKey {
            id: key_id(key),
            aead: Aes256Gcm::new_from_slice(&key.0).expect("a 32-byte key"),
        }
    }
}

/// The id stored with every secret a key seals.
pub fn key_id(key: &TokenKey) -> [u8; 8] {
    let digest = Sha256::new()
        .chain_update(KEY_ID_LABEL)
        .chain_update(key.0)
        .finalize();
    let mut id = [0u8; 8];
    id.copy_from_slice(&digest[..8]);
    id
}

/// The configured token keys. Cheap to clone; never prints a key.
#[derive(Clone)]
pub struct TokenCipher {
    keys: Arc<(SealingKey, Vec<SealingKey>)>,
}

impl std::fmt::Debug for TokenCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCipher")
            .field("old_keys", &self.keys.1.len())
            .finish_non_exhaustive()
    }
}

impl TokenCipher {
    pub fn new(current: &TokenKey, old: &[TokenKey]) -> TokenCipher {
        TokenCipher {
            keys: Arc::new((
                SealingKey::new(current),
                old.iter().map(SealingKey::new).collect(),
            )),
        }
    }

    /// The cipher of `oauth.token_encryption_key_file` (and the old key
    /// files), `None` when no key is configured; a bad key file is refused.
    pub fn from_config(oauth: &OAuthConfig) -> Result<Option<TokenCipher>, ConfigError> {
        Ok(read_token_keys(oauth)?.map(|(current, old)| TokenCipher::new(&current, &old)))
    }

    /// Seals `plaintext` as `field` of the account `binding` names.
    pub(crate) fn seal(
        &self,
        binding: Binding<'_>,
        field: TokenField,
        plaintext: &str,
    ) -> SealedSecret {
        let key = &self.keys.0;
        let nonce: [u8; 12] = rand::random();
        let aad = binding.associated_data(field);
        let ciphertext = key
            .aead
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: &aad,
                },
            )
            .expect("AES-GCM seals any message this size");
        SealedSecret {
            key_id: key.id,
            nonce,
            ciphertext,
        }
    }

    /// Opens a secret sealed as `field` of the account `binding` names.
    pub(crate) fn open(
        &self,
        binding: Binding<'_>,
        field: TokenField,
        sealed: &SealedSecret,
    ) -> Result<String, OpenError> {
        let (current, old) = &*self.keys;
        let key = std::iter::once(current)
            .chain(old.iter())
            .find(|k| k.id == sealed.key_id)
            .ok_or(OpenError::UnknownKey)?;
        let aad = binding.associated_data(field);
        let plaintext = key
            .aead
            .decrypt(
                &Nonce::from(sealed.nonce),
                Payload {
                    msg: &sealed.ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| OpenError::Rejected)?;
        String::from_utf8(plaintext).map_err(|_| OpenError::Rejected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: Binding<'static> = Binding {
        user_id: "alice",
        provider: "corp",
        subject: "a-1",
    };

    #[test]
    fn seals_open_only_for_their_account_field_and_keys() {
        let old = TokenKey([1; 32]);
        let new = TokenKey([2; 32]);
        let before = TokenCipher::new(&old, &[]);
        let sealed = before.seal(ALICE, TokenField::Access, "at-secret");
        assert!(!sealed.ciphertext.windows(9).any(|w| w == b"at-secret"));
        assert_eq!(
            before.open(ALICE, TokenField::Access, &sealed).unwrap(),
            "at-secret"
        );
        // Fresh nonces: the same secret seals differently every time.
        assert_ne!(before.seal(ALICE, TokenField::Access, "at-secret"), sealed);

        let bob = Binding {
            user_id: "bob",
            ..ALICE
        };
        assert_eq!(
            before.open(bob, TokenField::Access, &sealed),
            Err(OpenError::Rejected)
        );
        assert_eq!(
            before.open(ALICE, TokenField::Refresh, &sealed),
            Err(OpenError::Rejected)
        );
        let mut tampered = sealed.clone();
        tampered.ciphertext[0] ^= 1;
        assert_eq!(
            before.open(ALICE, TokenField::Access, &tampered),
            Err(OpenError::Rejected)
        );

        // Rotated: the old key still opens, the new one seals.
        let rotated = TokenCipher::new(&new, std::slice::from_ref(&old));
        assert_eq!(
            rotated.open(ALICE, TokenField::Access, &sealed).unwrap(),
            "at-secret"
        );
        assert_eq!(sealed.key_id, key_id(&old));
        let resealed = rotated.seal(ALICE, TokenField::Access, "at-secret");
        assert_eq!(resealed.key_id, key_id(&new));
        // Without the old key, its secrets are unreadable.
        let forgotten = TokenCipher::new(&new, &[]);
        assert_eq!(
            forgotten.open(ALICE, TokenField::Access, &sealed),
            Err(OpenError::UnknownKey)
        );
        assert!(!format!("{rotated:?}").contains("[2"));
    }
}
