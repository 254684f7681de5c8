//! The tokens providers issue, kept with the linked account they came with
//! and sealed at rest ([`crate::token_cipher`]): stored at every provider
//! sign-in or link, handed to the account's owner, and refreshed at the
//! provider when the access token has expired.
//!
//! Writes go through the user's actor, which stores them only for an account
//! the user still has (an unlink it handled first leaves nothing behind).
//! Refreshes of one account take turns ([`RefreshLocks`]): callers that find
//! the access token expired at once refresh it once, the others read what that
//! refresh stored. A refusal (`invalid_grant`) changes nothing: the account
//! stays linked and its tokens stay as they were.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use tachigo_storage::ProviderTokensRecord;

use crate::messages::UserRequest;
use crate::model::LinkedAccount;
use crate::oauth_providers::{Provider, ProviderTokens, RefreshError};
use crate::token_cipher::{Binding, OpenError, TokenCipher, TokenField};
use crate::{Engine, EngineError};

/// An access token with less than this left is refreshed first (as Better Auth does).
const REFRESH_MARGIN_MS: i64 = 5_000;

/// Past this many entries, entries no refresh holds any more are dropped.
const LOCKS_BEFORE_CLEANUP: usize = 64;

/// The lock of one account's refreshes, held by its callers only.
type RefreshLock = Weak<tokio::sync::Mutex<()>>;

/// One lock per linked account being refreshed; an entry lives only while
/// some caller holds or waits for it, so the map stays as small as the
/// refreshes in flight.
#[derive(Default)]
pub(crate) struct RefreshLocks {
    locks: Mutex<HashMap<(String, String), RefreshLock>>,
}

impl RefreshLocks {
    fn lock_for(&self, provider: &str, subject: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        if locks.len() >= LOCKS_BEFORE_CLEANUP {
            locks.retain(|_, lock| lock.strong_count() > 0);
        }
        let key = (provider.to_string(), subject.to_string());
        if let Some(lock) = locks.get(&key).and_then(Weak::upgrade) {
            return lock;
        }
        let lock = Arc::new(tokio::sync::Mutex::new(()));
        locks.insert(key, Arc::downgrade(&lock));
        lock
    }
}

fn binding<'a>(user_id: &'a str, provider: &'a str, subject: &'a str) -> Binding<'a> {
    Binding {
        user_id,
        provider,
        subject,
    }
}

fn seal(
    cipher: &TokenCipher,
    user_id: &str,
    account: (&str, &str),
    tokens: &ProviderTokens,
    now: i64,
) -> ProviderTokensRecord {
    let (provider, subject) = account;
    let bound = binding(user_id, provider, subject);
    ProviderTokensRecord {
        user_id: user_id.to_string(),
        provider: provider.to_string(),
        subject: subject.to_string(),
        access_token: cipher.seal(bound, TokenField::Access, &tokens.access_token),
        refresh_token: tokens
            .refresh_token
            .as_deref()
            .map(|t| cipher.seal(bound, TokenField::Refresh, t)),
        id_token: tokens
            .id_token
            .as_deref()
            .map(|t| cipher.seal(bound, TokenField::Id, t)),
        access_token_expires_at: tokens.access_token_expires_at,
        refresh_token_expires_at: tokens.refresh_token_expires_at,
        scopes: tokens.scopes.clone(),
        updated_at: now,
    }
}

fn unseal(
    cipher: &TokenCipher,
    record: &ProviderTokensRecord,
) -> Result<ProviderTokens, OpenError> {
    let bound = binding(&record.user_id, &record.provider, &record.subject);
    let open = |field, sealed| cipher.open(bound, field, sealed);
    Ok(ProviderTokens {
        access_token: open(TokenField::Access, &record.access_token)?,
        refresh_token: record
            .refresh_token
            .as_ref()
            .map(|s| open(TokenField::Refresh, s))
            .transpose()?,
        id_token: record
            .id_token
            .as_ref()
            .map(|s| open(TokenField::Id, s))
            .transpose()?,
        access_token_expires_at: record.access_token_expires_at,
        refresh_token_expires_at: record.refresh_token_expires_at,
        scopes: record.scopes.clone(),
    })
}

impl Engine {
    /// Whether provider tokens are kept (a token key is configured).
    pub fn keeps_provider_tokens(&self) -> bool {
        self.shared.options.token_cipher.is_some()
    }

    fn token_cipher(&self) -> Result<&TokenCipher, EngineError> {
        self.shared
            .options
            .token_cipher
            .as_ref()
            .ok_or(EngineError::ProviderTokensNotKept)
    }

    /// One of the user's linked accounts: `account_id` is its listed id
    /// (`<provider>:<subject>`) or its subject; with `provider` only that
    /// provider's accounts count, and without `account_id` its first one.
    pub async fn find_linked_account(
        &self,
        user_id: &str,
        provider: Option<&str>,
        account_id: Option<&str>,
    ) -> Result<LinkedAccount, EngineError> {
        if provider.is_none() && account_id.is_none() {
            return Err(EngineError::AccountNotFound);
        }
        let user = self.user(user_id).await?;
        user.accounts
            .into_iter()
            .filter(|a| provider.is_none_or(|p| p == a.provider))
            .find(|a| {
                account_id.is_none_or(|id| {
                    id == a.subject
                        || id
                            .split_once(':')
                            .is_some_and(|(p, s)| p == a.provider && s == a.subject)
                })
            })
            .ok_or(EngineError::AccountNotFound)
    }

    /// Keeps the tokens a sign-in or link brought for the user's account
    /// (an earlier refresh token stays when the provider sent none this time).
    /// `Ok(false)`: not kept (no token key, or the account is gone).
    pub async fn keep_provider_tokens(
        &self,
        user_id: &str,
        provider: &str,
        subject: &str,
        tokens: &ProviderTokens,
    ) -> Result<bool, EngineError> {
        let Ok(cipher) = self.token_cipher() else {
            return Ok(false);
        };
        let previous = self
            .stored_provider_tokens(cipher, user_id, provider, subject)
            .await
            .unwrap_or(None);
        let tokens = match previous {
            Some(previous) if tokens.refresh_token.is_none() => tokens.clone().or_from(&previous),
            _ => tokens.clone(),
        };
        self.write_provider_tokens(cipher, user_id, (provider, subject), &tokens)
            .await
    }

    /// The kept tokens of an account, `None` when none are kept for this user.
    async fn stored_provider_tokens(
        &self,
        cipher: &TokenCipher,
        user_id: &str,
        provider: &str,
        subject: &str,
    ) -> Result<Option<ProviderTokens>, EngineError> {
        let Some(record) = self.shared.store.provider_tokens(provider, subject).await? else {
            return Ok(None);
        };
        if record.user_id != user_id {
            return Ok(None);
        }
        match unseal(cipher, &record) {
            Ok(tokens) => Ok(Some(tokens)),
            Err(why) => {
                tracing::warn!(user_id, provider, error = ?why,
                    "kept provider tokens do not open with the configured keys (an old key file missing?)");
                Ok(None)
            }
        }
    }

    async fn write_provider_tokens(
        &self,
        cipher: &TokenCipher,
        user_id: &str,
        account: (&str, &str),
        tokens: &ProviderTokens,
    ) -> Result<bool, EngineError> {
        let record = seal(cipher, user_id, account, tokens, self.now());
        self.call(
            user_id,
            UserRequest::KeepProviderTokens {
                record: record.clone(),
            },
        )
        .await?
    }

    /// A valid access token of the user's `account`: the kept one, or, when
    /// it has expired (and a refresh token is kept), a new one from the
    /// provider, whose answer is kept in its place.
    pub async fn provider_access_token(
        &self,
        user_id: &str,
        account: &LinkedAccount,
        provider: &Provider,
    ) -> Result<ProviderTokens, EngineError> {
        let cipher = self.token_cipher()?;
        let (name, subject) = (account.provider.as_str(), account.subject.as_str());
        let kept = self
            .stored_provider_tokens(cipher, user_id, name, subject)
            .await?
            .ok_or(EngineError::ProviderTokensNotFound)?;
        if !kept.access_expires_within(self.now(), REFRESH_MARGIN_MS)
            || kept.refresh_token.is_none()
        {
            return Ok(kept);
        }
        let lock = self.shared.provider_refreshes.lock_for(name, subject);
        let _turn = lock.lock().await;
        // Another caller may have refreshed while this one waited its turn.
        let kept = self
            .stored_provider_tokens(cipher, user_id, name, subject)
            .await?
            .ok_or(EngineError::ProviderTokensNotFound)?;
        if !kept.access_expires_within(self.now(), REFRESH_MARGIN_MS) {
            return Ok(kept);
        }
        self.refresh_kept(cipher, user_id, account, provider, kept)
            .await
    }

    /// Refreshes the tokens of the user's `account` at the provider now.
    pub async fn refresh_provider_tokens(
        &self,
        user_id: &str,
        account: &LinkedAccount,
        provider: &Provider,
    ) -> Result<ProviderTokens, EngineError> {
        let cipher = self.token_cipher()?;
        let (name, subject) = (account.provider.as_str(), account.subject.as_str());
        let lock = self.shared.provider_refreshes.lock_for(name, subject);
        let _turn = lock.lock().await;
        let kept = self
            .stored_provider_tokens(cipher, user_id, name, subject)
            .await?
            .ok_or(EngineError::ProviderTokensNotFound)?;
        self.refresh_kept(cipher, user_id, account, provider, kept)
            .await
    }

    /// The refresh itself, with the account's refresh lock held.
    async fn refresh_kept(
        &self,
        cipher: &TokenCipher,
        user_id: &str,
        account: &LinkedAccount,
        provider: &Provider,
        kept: ProviderTokens,
    ) -> Result<ProviderTokens, EngineError> {
        let refresh_token = kept
            .refresh_token
            .as_deref()
            .ok_or(EngineError::NoProviderRefreshToken)?;
        let outcome = provider.refresh(refresh_token).await;
        let label = provider.name().to_string();
        let fresh = match outcome {
            Ok(fresh) => fresh.or_from(&kept),
            Err(RefreshError::Refused(code)) => {
                metrics::counter!("tachigo_provider_token_refreshes_total", "provider" => label, "outcome" => "refused")
                    .increment(1);
                tracing::info!(user_id, provider = provider.name(), error = %code,
                    "the provider refused to refresh an account's tokens; they are kept as they were");
                return Err(EngineError::ProviderRefusedRefresh(code));
            }
            Err(RefreshError::Provider(e)) => {
                metrics::counter!("tachigo_provider_token_refreshes_total", "provider" => label, "outcome" => "unavailable")
                    .increment(1);
                tracing::warn!(provider = provider.name(), error = %e, "refreshing provider tokens failed");
                return Err(EngineError::ProviderUnavailable(e.to_string()));
            }
        };
        let account_key = (account.provider.as_str(), account.subject.as_str());
        if !self
            .write_provider_tokens(cipher, user_id, account_key, &fresh)
            .await?
        {
            // Unlinked while the provider answered: nothing is kept.
            return Err(EngineError::AccountNotFound);
        }
        metrics::counter!("tachigo_provider_token_refreshes_total", "provider" => label, "outcome" => "refreshed")
            .increment(1);
        Ok(fresh)
    }
}
