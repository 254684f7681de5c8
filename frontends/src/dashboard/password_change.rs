//! `POST /api/v1/auth/change-password` (bearer) `{current_password,
//! new_password, end_other_sessions?}`: changes the caller's password given
//! the current one. 200 `{user}`. With `end_other_sessions: true`, every other
//! session of the user (every surface) ends and the caller's stays; without
//! it, sessions are left alone. Either way, reset links mailed before the
//! change stop working (a reset token is bound to the password it replaces).
//!
//! 400 `invalid_credentials` for a wrong current password (400, not 401: see
//! `lifecycle_errors`), 400 `no_password` for an account that signs in only
//! through a provider (it can set one with forgot-password), 400
//! `weak_password`; nothing changes on any of them. Each attempt that checks a
//! password spends one attempt of the client IP and of the account on the
//! login limits (429 `too_many_attempts`), since a stolen access token must
//! not become a faster way to guess the password than `/login`.

use std::sync::Arc;

use http::HeaderMap;
use warp::http::Response;
use warp::{Rejection, Reply};

use super::access::authenticate;
use super::lifecycle_errors::lifecycle_error;
use super::wire::{ChangePasswordBody, UserReply};
use super::Dashboard;
use crate::common::{ApiError, Body, RequestContext};

fn count(outcome: &'static str) {
    metrics::counter!("tachigo_dashboard_password_changes_total", "outcome" => outcome)
        .increment(1);
}

pub async fn handle(
    dashboard: Arc<Dashboard>,
    context: RequestContext,
    headers: HeaderMap,
    body: ChangePasswordBody,
) -> Result<Response<Body>, Rejection> {
    change(&dashboard, &context, &headers, body)
        .await
        .map_err(ApiError::reject)
}

async fn change(
    dashboard: &Dashboard,
    context: &RequestContext,
    headers: &HeaderMap,
    body: ChangePasswordBody,
) -> Result<Response<Body>, ApiError> {
    let caller = authenticate(dashboard, headers).await?;
    if !caller.user.has_password {
        return Err(ApiError::bad_request(
            "no_password",
            "this account has no password; set one with forgot password",
        ));
    }
    dashboard
        .limits
        .admit(context.client_ip, caller.user.email.as_deref())
        .inspect_err(|_| count("rate_limited"))?;
    let keep = body
        .end_other_sessions
        .then_some(caller.session.id.as_str());
    let user = dashboard
        .engine
        .change_password(
            &caller.user.id,
            &body.current_password,
            &body.new_password,
            keep,
        )
        .await
        .map_err(|e| {
            let error = lifecycle_error(e);
            count(match error.code {
                "invalid_credentials" => "invalid_credentials",
                "weak_password" => "weak_password",
                _ => "failed",
            });
            error
        })?;
    count("changed");
    tracing::info!(
        user_id = %user.id,
        session_id = %caller.session.id,
        end_other_sessions = body.end_other_sessions,
        "password changed from the dashboard"
    );
    Ok(warp::reply::json(&UserReply { user: user.into() }).into_response())
}
