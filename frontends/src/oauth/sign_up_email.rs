//! `POST /sign-up/email {name, email, password, image?, callbackURL?,
//! rememberMe?}` (Better Auth's `signUp.email`): creates a password user with
//! an unverified address, mails a verification link
//! (`{public_url}/api/auth/verify-email?token=…&callbackURL=…`), starts a web
//! session and answers `{token, user}` with the session cookie, as Better
//! Auth's default configuration does (`autoSignIn`, no required verification).
//!
//! In order: the browser origin rule, `callbackURL` (403
//! `INVALID_CALLBACK_URL`), the address (400 `VALIDATION_ERROR`), the password
//! length (400 `PASSWORD_TOO_SHORT` / `PASSWORD_TOO_LONG`), the name and
//! image (400 `VALIDATION_ERROR`), the client's allowance (429), then the
//! engine: 422 `USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL`, 400 `WEAK_PASSWORD`.
//! The address is only ever proven by the mail: until then a verified sign-in
//! through a trusted provider may take it over (the engine's rule).

use std::sync::Arc;

use http::header::SET_COOKIE;
use http::HeaderMap;
use tachigo_engine::{normalize_email, EngineError, NewUser};
use warp::http::Response;
use warp::{Rejection, Reply};

use super::email_errors::{
    from_password_policy, invalid_email_address, sign_up_disabled, user_already_exists,
    validation_error,
};
use super::wire::{SignUpBody, TokenAndUser, UserJson};
use super::{browser_origin, password_rules, verification, web_session, OAuth};
use crate::common::{ApiError, Body, RequestContext};

pub async fn handle(
    oauth: Arc<OAuth>,
    context: RequestContext,
    headers: HeaderMap,
    body: SignUpBody,
) -> Result<Response<Body>, Rejection> {
    sign_up(&oauth, &context, &headers, body)
        .await
        .map_err(ApiError::reject)
}

/// The engine's profile bounds, checked before the user exists so that a
/// refused image leaves nothing behind.
fn check_profile(body: &SignUpBody) -> Result<(), ApiError> {
    let image = body.image.as_deref().filter(|i| !i.is_empty());
    tachigo_engine::check_profile(Some(&body.name), image).map_err(|e| match e {
        EngineError::InvalidProfile { field, reason } => validation_error(&field, reason),
        other => other.into(),
    })
}

async fn sign_up(
    oauth: &OAuth,
    context: &RequestContext,
    headers: &HeaderMap,
    body: SignUpBody,
) -> Result<Response<Body>, ApiError> {
    browser_origin::check(headers, &oauth.trusted_origins)?;
    if !oauth.allow_email_signup {
        return Err(sign_up_disabled());
    }
    oauth
        .redirects
        .resolve("callbackURL", body.callback_url.as_deref())?;
    let email = normalize_email(&body.email).map_err(|_| invalid_email_address())?;
    password_rules::check_new(&body.password)?;
    check_profile(&body)?;
    let limits = &oauth.email_limits;
    limits.password_attempt("sign_up", context.client_ip, None)?;
    limits.mail_request("sign_up", context.client_ip)?;

    let engine = &oauth.engine;
    let mut user = engine
        .create_user(NewUser {
            email: Some(email),
            name: Some(body.name),
            password: Some(body.password),
            roles: Vec::new(),
        })
        .await
        .map_err(|e| match e {
            EngineError::EmailTaken => user_already_exists(),
            EngineError::InvalidEmail => invalid_email_address(),
            other => from_password_policy(other),
        })?;
    if let Some(image) = body.image.filter(|i| !i.is_empty()) {
        user = engine
            .update_profile(&user.id, None, Some(Some(image)))
            .await?;
    }
    let callback = body.callback_url.as_deref().unwrap_or_default();
    if let Err(e) = engine
        .send_verification_email(&user.id, &verification::mail_link(oauth, callback))
        .await
    {
        // The account stands; `send-verification-email` can ask again.
        tracing::warn!(user_id = %user.id, error = %e, "could not queue the verification mail of a sign-up");
    }
    let started =
        web_session::start(oauth, &user.id, context, body.remember_me != Some(false)).await?;
    metrics::counter!("tachigo_oauth_email_sign_ups_total").increment(1);
    tracing::info!(user_id = %user.id, "signed up with email and password");
    let reply = TokenAndUser {
        token: Some(&started.session.id),
        user: UserJson::from_record(&user),
    };
    Ok(
        warp::reply::with_header(warp::reply::json(&reply), SET_COOKIE, started.cookie)
            .into_response(),
    )
}
