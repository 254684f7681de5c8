//! `POST /api/v1/auth/register`: creates a password user, when
//! `dashboard.allow_signup` is on (403 `signup_disabled` otherwise, before the
//! body is even read). It does not sign the user in: the dashboard follows with
//! `/login`, so there is one way a session starts.
//!
//! 409 `email_taken`; 400 `weak_password` (the engine's password policy: at
//! least 8 characters, at most 1024 bytes, not too repetitive, not the email);
//! 400 `invalid_body` naming `email` for an address that is not one. Each attempt
//! spends one per-IP password attempt, as a login does, since it costs a hash.
//!
//! A new user gets a verification mail (a link to `email.dashboard_verify_url`
//! with `?token=`, see `email_verification`). Failing to queue it (a full mail
//! queue, storage) is logged and does not fail the registration: the user
//! exists, and `/send-verification-email` asks again.

use std::sync::Arc;

use tachigo_engine::{EngineError, NewUser};
use warp::http::{Response, StatusCode};
use warp::{Filter, Rejection, Reply};

use super::wire::{RegisterBody, RegisterReply};
use super::Dashboard;
use crate::common::{ApiError, Body, RequestContext};

/// Passes only while sign-up is allowed.
pub fn signup_allowed(
    dashboard: &Arc<Dashboard>,
) -> impl Filter<Extract = (), Error = Rejection> + Clone {
    let allowed = dashboard.allow_signup;
    warp::any()
        .and_then(move || async move {
            if allowed {
                Ok(())
            } else {
                Err(
                    ApiError::forbidden("signup_disabled", "sign-up is disabled on this server")
                        .reject(),
                )
            }
        })
        .untuple_one()
}

pub async fn handle(
    dashboard: Arc<Dashboard>,
    context: RequestContext,
    body: RegisterBody,
) -> Result<Response<Body>, Rejection> {
    register(&dashboard, &context, body)
        .await
        .map_err(ApiError::reject)
}

async fn register(
    dashboard: &Dashboard,
    context: &RequestContext,
    body: RegisterBody,
) -> Result<Response<Body>, ApiError> {
    dashboard.limits.admit(context.client_ip, None)?;
    let user = dashboard
        .engine
        .create_user(NewUser {
            email: Some(body.email),
            name: body.name,
            password: Some(body.password),
            roles: Vec::new(),
        })
        .await
        .map_err(|e| match e {
            EngineError::EmailTaken => ApiError::new(
                StatusCode::CONFLICT,
                "email_taken",
                "an account with this email already exists",
            ),
            EngineError::WeakPassword(why) => ApiError::bad_request("weak_password", why),
            EngineError::InvalidEmail => {
                ApiError::bad_request("invalid_body", "field `email`: not a valid email address")
            }
            other => other.into(),
        })?;
    metrics::counter!("tachigo_dashboard_registrations_total").increment(1);
    tracing::info!(user_id = %user.id, "dashboard registration");
    let link = |token: &str| dashboard.links.verify(token);
    if let Err(e) = dashboard
        .engine
        .send_verification_email(&user.id, &link)
        .await
    {
        tracing::warn!(user_id = %user.id, error = %e, "the verification mail of a new user could not be queued");
    }
    let reply = RegisterReply { user: user.into() };
    Ok(warp::reply::with_status(warp::reply::json(&reply), StatusCode::CREATED).into_response())
}
