//! The dashboard's answers to the password life cycle's engine errors
//! (`verify-email`, `send-verification-email`, `reset-password`,
//! `change-password`). Failures no caller can fix (storage, a full mail or
//! password queue) keep the common mapping: 503 with `Retry-After`.
//!
//! | engine error | status | code |
//! |---|---|---|
//! | `InvalidToken` (unknown, forged, malformed, used, for another purpose, address or password since) | 400 | `invalid_token` |
//! | `TokenExpired` | 400 | `token_expired` |
//! | `WeakPassword` | 400 | `weak_password` |
//! | `InvalidCredentials` (wrong current password) | 400 | `invalid_credentials` |
//! | `NoEmail` | 400 | `no_email` |
//! | `EmailAlreadyVerified` | 409 | `email_already_verified` |
//!
//! A wrong current password is a 400, not the 401 of `/login`: on a bearer
//! route a 401 means "the access token is no good", and the dashboard's
//! client answers every 401 with a silent refresh and a retry, which would
//! spend a second password attempt and then look like a signed-out session.

use http::StatusCode;
use tachigo_engine::EngineError;

use crate::common::ApiError;

/// 400 `invalid_token`.
pub fn invalid_token() -> ApiError {
    ApiError::bad_request(
        "invalid_token",
        "the link is invalid or has already been used",
    )
}

/// Maps an engine error of the password life cycle to its answer.
pub fn lifecycle_error(e: EngineError) -> ApiError {
    match e {
        EngineError::InvalidToken => invalid_token(),
        EngineError::TokenExpired => {
            ApiError::bad_request("token_expired", "the link has expired; ask for a new one")
        }
        EngineError::WeakPassword(why) => ApiError::bad_request("weak_password", why),
        EngineError::InvalidCredentials => {
            ApiError::bad_request("invalid_credentials", "the current password is wrong")
        }
        EngineError::NoEmail => {
            ApiError::bad_request("no_email", "this account has no email address")
        }
        EngineError::EmailAlreadyVerified => ApiError::new(
            StatusCode::CONFLICT,
            "email_already_verified",
            "the email address is already verified",
        ),
        other => other.into(),
    }
}

/// Like [`lifecycle_error`], for a mailed token: a token whose user has since
/// been deleted is as invalid as any other.
pub fn token_error(e: EngineError) -> ApiError {
    match e {
        EngineError::UserNotFound => invalid_token(),
        other => lifecycle_error(other),
    }
}
