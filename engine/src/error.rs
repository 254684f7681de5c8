//! What can go wrong inside the engine, in terms a frontend can map to its contract.

use std::borrow::Cow;

use tachigo_storage::StorageError;
use thiserror::Error;

/// Serializable, so an answer forwarded from the node that owns a user keeps
/// its error exactly.
#[derive(Debug, Error, serde::Serialize, serde::Deserialize)]
pub enum EngineError {
    #[error("no such user")]
    UserNotFound,
    #[error("the email address is already registered")]
    EmailTaken,
    #[error("the email address is not valid")]
    InvalidEmail,
    #[error("{0}")]
    WeakPassword(Cow<'static, str>),
    #[error("role names are 1-32 characters of a-z, 0-9, '_' and '-'")]
    InvalidRole,
    #[error("invalid email or password")]
    InvalidCredentials,
    #[error("the refresh token is unknown, expired or revoked")]
    InvalidRefreshToken,
    #[error("the refresh token was already used; its session has been revoked")]
    RefreshTokenReused,
    #[error("the session is no longer valid")]
    SessionInvalid,
    #[error("no such session")]
    SessionNotFound,
    #[error("the token is invalid")]
    InvalidToken,
    #[error("the token has expired")]
    TokenExpired,
    #[error("this provider account is already linked to another user")]
    AccountTaken,
    #[error(
        "an account with this email exists; sign in with it and link this provider from there"
    )]
    AccountNotLinked,
    #[error("this is the last way to sign in to the account")]
    LastSignInMethod,
    #[error("no such linked account")]
    AccountNotFound,
    #[error("the engine is shutting down or overloaded; try again")]
    Unavailable,
    #[error("too many requests are waiting for this kind of work; try again in a moment")]
    Overloaded,
    /// A setting cannot work (an unreadable template, an SMTP URL lettre refuses).
    #[error("configuration: {0}")]
    Config(String),
    #[error("the email address is already verified")]
    EmailAlreadyVerified,
    #[error("the user has no email address")]
    NoEmail,
    /// A profile field out of bounds: which one, and why.
    #[error("{reason}")]
    InvalidProfile {
        field: Cow<'static, str>,
        reason: Cow<'static, str>,
    },
    /// No `oauth.token_encryption_key_file`: provider tokens are not kept.
    #[error("this server does not keep provider tokens (no oauth.token_encryption_key_file)")]
    ProviderTokensNotKept,
    /// None are kept for the account (linked before keys were configured), or
    /// they were sealed by a key no longer configured.
    #[error("no provider tokens are kept for this account")]
    ProviderTokensNotFound,
    #[error("the provider issued no refresh token for this account")]
    NoProviderRefreshToken,
    /// The provider refused the refresh token (e.g. `invalid_grant`); the
    /// account stays linked and its tokens unchanged.
    #[error("the provider refused to refresh the tokens: `{0}`")]
    ProviderRefusedRefresh(String),
    /// The provider could not be reached or answered nonsense.
    #[error("the provider is unavailable: {0}")]
    ProviderUnavailable(String),
    /// Storage could not answer (unreachable, timed out, failing, or a record
    /// it could not read). The request fails with 503; nothing is assumed.
    #[error("storage failure: {0}")]
    Storage(String),
    /// In a cluster: another node claimed the user while this node's actor
    /// was answering; nothing was written. The engine routes the request
    /// again, so callers never see it.
    #[error("another node owns this user now; try again")]
    Fenced,
}

impl From<StorageError> for EngineError {
    fn from(e: StorageError) -> EngineError {
        match e {
            StorageError::EmailTaken => EngineError::EmailTaken,
            StorageError::AccountTaken => EngineError::AccountTaken,
            StorageError::Fenced => EngineError::Fenced,
            other => EngineError::Storage(other.to_string()),
        }
    }
}
