//! The errors of the email/password endpoints, in one place: Better Auth's
//! codes with Better Auth's messages (its client and the apps built on it
//! branch on `code` and show `message`), plus the few this server adds
//! (`WEAK_PASSWORD`, `NO_FIELDS_TO_UPDATE`). The shared renderer upper-cases the code.

use std::time::Duration;

use http::StatusCode;
use tachigo_engine::EngineError;

use crate::common::rate_limit::retry_after;
use crate::common::ApiError;

/// 400 `VALIDATION_ERROR` naming the field as Better Auth does (`[body.email] …`).
pub(crate) fn validation_error(field: &str, message: impl std::fmt::Display) -> ApiError {
    let place = if field.is_empty() || field == "." {
        "body".to_string()
    } else {
        format!("body.{field}")
    };
    ApiError::bad_request("validation_error", format!("[{place}] {message}"))
}

pub(crate) fn invalid_email_address() -> ApiError {
    validation_error("email", "Invalid email address")
}

/// `sign-in/email` checks the address itself (Better Auth's `INVALID_EMAIL`).
pub(crate) fn invalid_email() -> ApiError {
    ApiError::bad_request("invalid_email", "Invalid email")
}

pub(crate) fn invalid_email_or_password() -> ApiError {
    ApiError::unauthorized("invalid_email_or_password", "Invalid email or password")
}

/// `oauth.allow_email_signup = false` (Better Auth's `disableSignUp` answer).
pub(crate) fn sign_up_disabled() -> ApiError {
    ApiError::bad_request(
        "email_password_sign_up_disabled",
        "Email and password sign up is not enabled",
    )
}

pub(crate) fn user_already_exists() -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "user_already_exists_use_another_email",
        "User already exists. Use another email.",
    )
}

pub(crate) fn password_too_short() -> ApiError {
    ApiError::bad_request("password_too_short", "Password too short")
}

pub(crate) fn password_too_long() -> ApiError {
    ApiError::bad_request("password_too_long", "Password too long")
}

/// A wrong current password (change-password, delete-user): 400, as Better Auth.
pub(crate) fn invalid_password() -> ApiError {
    ApiError::bad_request("invalid_password", "Invalid password")
}

pub(crate) fn credential_account_not_found() -> ApiError {
    ApiError::bad_request(
        "credential_account_not_found",
        "Credential account not found",
    )
}

pub(crate) fn invalid_token(status: StatusCode) -> ApiError {
    ApiError::new(status, "invalid_token", "Invalid token")
}

pub(crate) fn token_expired(status: StatusCode) -> ApiError {
    ApiError::new(status, "token_expired", "Token expired")
}

pub(crate) fn user_not_found(status: StatusCode) -> ApiError {
    ApiError::new(status, "user_not_found", "User not found")
}

pub(crate) fn email_mismatch() -> ApiError {
    ApiError::bad_request("email_mismatch", "Email mismatch")
}

pub(crate) fn email_already_verified() -> ApiError {
    ApiError::bad_request("email_already_verified", "Email is already verified")
}

pub(crate) fn email_can_not_be_updated() -> ApiError {
    ApiError::bad_request("email_can_not_be_updated", "Email can not be updated")
}

pub(crate) fn no_fields_to_update() -> ApiError {
    ApiError::bad_request("no_fields_to_update", "No fields to update")
}

pub(crate) fn session_expired() -> ApiError {
    ApiError::bad_request(
        "session_expired",
        "Session expired. Re-authenticate to perform this action.",
    )
}

/// `redirectTo` refused by the callback URL rules: Better Auth's code for that field.
pub(crate) fn invalid_redirect_url(mut refused: ApiError) -> ApiError {
    refused.code = "invalid_redirect_url";
    refused
}

/// 429 with `Retry-After`; `route` (a fixed name) labels the refusal counter.
pub(crate) fn too_many_requests(route: &'static str, wait: Duration) -> ApiError {
    metrics::counter!("tachigo_oauth_email_requests_refused_total", "route" => route).increment(1);
    let (name, value) = retry_after(wait);
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_requests",
        "Too many requests. Please try again later.",
    )
    .with_header(name, value)
}

/// The engine's password policy beyond length (too repetitive, the address itself).
fn weak_password(why: std::borrow::Cow<'static, str>) -> ApiError {
    ApiError::bad_request("weak_password", why)
}

/// What a new password's engine call may refuse; anything else is the server's.
pub(crate) fn from_password_policy(e: EngineError) -> ApiError {
    match e {
        EngineError::WeakPassword(why) => weak_password(why),
        other => other.into(),
    }
}
