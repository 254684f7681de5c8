//! Forgot password, Better Auth's three steps:
//!
//! - `POST /request-password-reset {email, redirectTo?}` → always 200
//!   `{status: true, message}`, whether or not anyone has the address, no
//!   sooner than the engine's answer floor (no enumeration by content or
//!   time). `redirectTo` must pass the callback URL rules (403
//!   `INVALID_REDIRECT_URL`). The mail links to
//!   `{public_url}/api/auth/reset-password/<token>?callbackURL=<redirectTo>`.
//! - `GET /reset-password/{token}?callbackURL=…`: that link. A 302 to
//!   `callbackURL?token=<token>` — the token is *not* spent here (mail
//!   scanners open links), only checked for its form; a malformed one goes to
//!   `callbackURL?error=INVALID_TOKEN`. Without a `callbackURL` (the app gave no
//!   `redirectTo`) there is no page to reset on: 302 to the error callback
//!   (`oauth.error_callback`) with `?error=INVALID_TOKEN`, as Better Auth sends
//!   it to its error page. An untrusted `callbackURL` is a JSON 403.
//! - `POST /reset-password {newPassword, token}` (or `?token=`): sets the
//!   password and ends every session of the user (each old cookie then reads
//!   as `null`); 200 `{status: true}`, no new session. 400 `INVALID_TOKEN`
//!   for a missing, unknown, used, expired or superseded token (a password
//!   change since the mail voids it); the length and policy checks come
//!   first and leave the token usable.

use std::collections::HashMap;
use std::sync::Arc;

use http::{HeaderMap, StatusCode};
use tachigo_engine::{normalize_email, EngineError};
use warp::http::Response;
use warp::{Rejection, Reply};

use super::callback_urls::{redirect_to, with_error};
use super::email_errors::{
    from_password_policy, invalid_email_address, invalid_redirect_url, invalid_token,
    user_not_found,
};
use super::wire::{RequestPasswordResetBody, ResetPasswordBody, StatusJson, StatusMessageJson};
use super::{browser_origin, password_rules, OAuth};
use crate::common::{ApiError, Body, RequestContext};

const REQUESTED: &str = "If this email exists in our system, check your email for the reset link";

/// The reset link for a mailed token; `redirect_to` as the app gave it.
fn mail_link<'a>(oauth: &'a OAuth, redirect_to: &'a str) -> impl Fn(&str) -> String + Sync + 'a {
    move |token: &str| {
        let callback: String =
            url::form_urlencoded::byte_serialize(redirect_to.as_bytes()).collect();
        format!(
            "{}/reset-password/{token}?callbackURL={callback}",
            oauth.auth_base
        )
    }
}

/// Whether `token` has the form of a mailed token (256 bits, base64url).
fn well_formed(token: &str) -> bool {
    token.len() == 43
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub async fn request(
    oauth: Arc<OAuth>,
    context: RequestContext,
    headers: HeaderMap,
    body: RequestPasswordResetBody,
) -> Result<Response<Body>, Rejection> {
    request_reset(&oauth, &context, &headers, body)
        .await
        .map_err(ApiError::reject)
}

async fn request_reset(
    oauth: &OAuth,
    context: &RequestContext,
    headers: &HeaderMap,
    body: RequestPasswordResetBody,
) -> Result<Response<Body>, ApiError> {
    browser_origin::check(headers, &oauth.trusted_origins)?;
    oauth
        .redirects
        .resolve("redirectTo", body.redirect_to.as_deref())
        .map_err(invalid_redirect_url)?;
    let email = normalize_email(&body.email).map_err(|_| invalid_email_address())?;
    oauth
        .email_limits
        .mail_request("request_password_reset", context.client_ip)?;
    let redirect_to = body.redirect_to.as_deref().unwrap_or_default();
    oauth
        .engine
        .request_password_reset(&email, &mail_link(oauth, redirect_to))
        .await?;
    Ok(warp::reply::json(&StatusMessageJson {
        status: true,
        message: REQUESTED,
    })
    .into_response())
}

pub async fn open_link(
    token: String,
    oauth: Arc<OAuth>,
    raw_query: String,
) -> Result<Response<Body>, Rejection> {
    let params: HashMap<String, String> = url::form_urlencoded::parse(raw_query.as_bytes())
        .into_owned()
        .collect();
    let callback = oauth
        .redirects
        .resolve("callbackURL", params.get("callbackURL").map(String::as_str))
        .map_err(ApiError::reject)?;
    let location = match callback {
        None => with_error(oauth.redirects.default_error(), "INVALID_TOKEN"),
        Some(callback) if !well_formed(&token) => with_error(&callback, "INVALID_TOKEN"),
        Some(callback) => with_token(&callback, &token),
    };
    Ok(redirect_to(&location, Vec::new()))
}

/// `url` with `token=<token>` set in its query (replacing one already there).
fn with_token(url: &str, token: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return format!("{url}?token={token}");
    };
    let kept: Vec<(String, String)> = parsed
        .query_pairs()
        .filter(|(k, _)| k != "token")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    parsed
        .query_pairs_mut()
        .clear()
        .extend_pairs(kept)
        .append_pair("token", token);
    parsed.to_string()
}

pub async fn reset(
    oauth: Arc<OAuth>,
    headers: HeaderMap,
    raw_query: String,
    body: ResetPasswordBody,
) -> Result<Response<Body>, Rejection> {
    reset_password(&oauth, &headers, &raw_query, body)
        .await
        .map_err(ApiError::reject)
}

async fn reset_password(
    oauth: &OAuth,
    headers: &HeaderMap,
    raw_query: &str,
    body: ResetPasswordBody,
) -> Result<Response<Body>, ApiError> {
    browser_origin::check(headers, &oauth.trusted_origins)?;
    let token = body.token.filter(|t| !t.is_empty()).or_else(|| {
        url::form_urlencoded::parse(raw_query.as_bytes())
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned())
    });
    let Some(token) = token else {
        return Err(invalid_token(StatusCode::BAD_REQUEST));
    };
    password_rules::check_new(&body.new_password)?;
    let user = oauth
        .engine
        .reset_password(&token, &body.new_password)
        .await
        .map_err(|e| match e {
            EngineError::InvalidToken | EngineError::TokenExpired => {
                invalid_token(StatusCode::BAD_REQUEST)
            }
            EngineError::UserNotFound => user_not_found(StatusCode::BAD_REQUEST),
            other => from_password_policy(other),
        })?;
    tracing::info!(user_id = %user.id, "password reset through a mailed link");
    Ok(warp::reply::json(&StatusJson { status: true }).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_set_once_in_the_query() {
        assert_eq!(
            with_token("http://localhost:3000/reset?token=old&x=1", "abc"),
            "http://localhost:3000/reset?x=1&token=abc"
        );
        assert_eq!(
            with_token("http://localhost:3000/reset", "abc"),
            "http://localhost:3000/reset?token=abc"
        );
        assert!(well_formed(&"a".repeat(43)));
        assert!(!well_formed(&"a".repeat(42)));
        assert!(!well_formed(&format!("{}.", "a".repeat(42))));
    }
}
