//! Email verification on the dashboard:
//!
//! - `POST /api/v1/auth/verify-email` `{token}`: redeems the token of a
//!   verification mail's link (unauthenticated: the link is the credential).
//!   200 `{user}`; 400 `invalid_token` (unknown, forged, malformed, already
//!   used, or the address changed since) / `token_expired`. A token works once.
//! - `POST /api/v1/auth/send-verification-email` (bearer): mails a fresh link
//!   to the caller's unverified address. 202 `{}`; 409
//!   `email_already_verified`; 400 `no_email`; 429 `too_many_requests` over
//!   the per-IP mail limit. Within `email.per_address_interval` of the last
//!   verification mail to the address, the answer is the same and nothing is
//!   sent. No body is read.
//!
//! Registration sends the first verification mail itself (see `register`).
//! Neither route carries a cookie credential, so neither needs the origin check.

use std::sync::Arc;

use http::HeaderMap;
use warp::http::Response;
use warp::{Rejection, Reply};

use super::access::authenticate;
use super::lifecycle_errors::{lifecycle_error, token_error};
use super::wire::{AcceptedReply, UserReply, VerifyEmailBody};
use super::Dashboard;
use crate::common::{ApiError, Body, RequestContext};

fn count_verification(outcome: &'static str) {
    metrics::counter!("tachigo_dashboard_email_verifications_total", "outcome" => outcome)
        .increment(1);
}

pub async fn verify(
    dashboard: Arc<Dashboard>,
    body: VerifyEmailBody,
) -> Result<Response<Body>, Rejection> {
    let user = dashboard
        .engine
        .verify_email(&body.token)
        .await
        .map_err(|e| {
            let error = token_error(e);
            count_verification(match error.code {
                "invalid_token" => "invalid",
                "token_expired" => "expired",
                _ => "failed",
            });
            error.reject()
        })?;
    count_verification("verified");
    tracing::info!(user_id = %user.id, "email verified from the dashboard");
    Ok(warp::reply::json(&UserReply { user: user.into() }).into_response())
}

pub async fn send(
    dashboard: Arc<Dashboard>,
    context: RequestContext,
    headers: HeaderMap,
) -> Result<Response<Body>, Rejection> {
    send_mail(&dashboard, &context, &headers)
        .await
        .map_err(ApiError::reject)
}

async fn send_mail(
    dashboard: &Dashboard,
    context: &RequestContext,
    headers: &HeaderMap,
) -> Result<Response<Body>, ApiError> {
    let caller = authenticate(dashboard, headers).await?;
    dashboard.mail_limits.admit(context.client_ip)?;
    let link = |token: &str| dashboard.links.verify(token);
    dashboard
        .engine
        .send_verification_email(&caller.user.id, &link)
        .await
        .map_err(lifecycle_error)?;
    tracing::info!(user_id = %caller.user.id, "verification mail requested from the dashboard");
    Ok(AcceptedReply::response())
}
