//! Forgotten passwords on the dashboard:
//!
//! - `POST /api/v1/auth/forgot-password` `{email}`: mails a reset link if a
//!   user has that address. 202 `{}` whether or not one does, no sooner than
//!   `email.answer_floor` after the request arrived either way, so neither the
//!   answer nor its timing tells who is registered. An address that is not
//!   one at all is 400 `invalid_body` naming `email` (that says nothing about
//!   who exists). 429 `too_many_requests` over the per-IP mail limit.
//! - `POST /api/v1/auth/reset-password` `{token, password}`: redeems the
//!   link's token, sets the new password, marks the address verified (only
//!   its reader could follow the link) and ends every session and refresh
//!   family of the user, on every surface. 200 `{user}`; 400 `invalid_token`
//!   (unknown, used, or the password changed since the mail) / `token_expired`
//!   / `weak_password` (the token stays usable for a better password).
//!
//! A full mail queue answers a forgot-password request like any other (202,
//! logged and counted by the engine): a 503 there could only ever be the
//! answer for a registered address. Both routes carry no cookie credential,
//! so neither needs the origin check; the caller's refresh cookie, if any, is
//! left alone (its session, if it was the user's, has just ended anyway).

use std::sync::Arc;

use tachigo_engine::{normalize_email, EngineError};
use warp::http::Response;
use warp::{Rejection, Reply};

use super::lifecycle_errors::token_error;
use super::wire::{AcceptedReply, ForgotPasswordBody, ResetPasswordBody, UserReply};
use super::Dashboard;
use crate::common::{ApiError, Body, RequestContext};

fn count_request(outcome: &'static str) {
    metrics::counter!("tachigo_dashboard_password_reset_requests_total", "outcome" => outcome)
        .increment(1);
}

fn count_reset(outcome: &'static str) {
    metrics::counter!("tachigo_dashboard_password_resets_total", "outcome" => outcome).increment(1);
}

pub async fn forgot(
    dashboard: Arc<Dashboard>,
    context: RequestContext,
    body: ForgotPasswordBody,
) -> Result<Response<Body>, Rejection> {
    request_reset(&dashboard, &context, body)
        .await
        .map_err(ApiError::reject)
}

async fn request_reset(
    dashboard: &Dashboard,
    context: &RequestContext,
    body: ForgotPasswordBody,
) -> Result<Response<Body>, ApiError> {
    dashboard
        .mail_limits
        .admit(context.client_ip)
        .inspect_err(|_| count_request("rate_limited"))?;
    if normalize_email(&body.email).is_err() {
        count_request("invalid_address");
        return Err(ApiError::bad_request(
            "invalid_body",
            "field `email`: not a valid email address",
        ));
    }
    let link = |token: &str| dashboard.links.reset(token);
    match dashboard
        .engine
        .request_password_reset(&body.email, &link)
        .await
    {
        Ok(()) => count_request("accepted"),
        // Only a registered address can meet a full queue: answer as if sent.
        Err(EngineError::Overloaded) => count_request("queue_full"),
        Err(other) => return Err(other.into()),
    }
    Ok(AcceptedReply::response())
}

pub async fn reset(
    dashboard: Arc<Dashboard>,
    body: ResetPasswordBody,
) -> Result<Response<Body>, Rejection> {
    let user = dashboard
        .engine
        .reset_password(&body.token, &body.password)
        .await
        .map_err(|e| {
            let error = token_error(e);
            count_reset(match error.code {
                "invalid_token" => "invalid",
                "token_expired" => "expired",
                "weak_password" => "weak_password",
                _ => "failed",
            });
            error.reject()
        })?;
    count_reset("reset");
    tracing::info!(user_id = %user.id, "password reset from the dashboard");
    Ok(warp::reply::json(&UserReply { user: user.into() }).into_response())
}
