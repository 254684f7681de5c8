//! `POST /oauth2/device_authorization` (RFC 8628 §3.1–3.2): a device code
//! for the client to poll with and a user code for the user to type on
//! another screen. Starts are limited per client IP and in total; past
//! either, 429 `slow_down` with `Retry-After` and nothing stored.

use std::sync::Arc;

use http::header::HeaderMap;
use http::StatusCode;
use serde::Serialize;
use tachigo_engine::oauth2_grants::GrantError;
use warp::http::Response;
use warp::{Rejection, Reply};

use super::client_auth::authenticate;
use super::form::Form;
use super::OAuth2;
use crate::common::rate_limit::{client_key, retry_after};
use crate::common::{ApiError, Body, RequestContext};

#[derive(Serialize)]
struct DeviceAuthorization {
    device_code: String,
    user_code: String,
    verification_uri: String,
    verification_uri_complete: String,
    expires_in: i64,
    interval: u32,
}

fn too_many(wait: std::time::Duration) -> ApiError {
    let (name, value) = retry_after(wait);
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "slow_down",
        "too many device sign-ins were started; try again later",
    )
    .with_header(name, value)
}

pub(crate) async fn handle(
    oauth2: Arc<OAuth2>,
    context: RequestContext,
    headers: HeaderMap,
    form: Form,
) -> Result<Response<Body>, Rejection> {
    start(&oauth2, &context, &headers, &form)
        .await
        .map_err(ApiError::reject)
}

async fn start(
    oauth2: &OAuth2,
    context: &RequestContext,
    headers: &HeaderMap,
    form: &Form,
) -> Result<Response<Body>, ApiError> {
    let client = authenticate(oauth2, headers, form)?;
    if !client.may_use_device_grant() {
        return Err(ApiError::bad_request(
            "unauthorized_client",
            "this client may not use the device grant",
        ));
    }
    let scope = client.grant_scopes(form.get("scope")).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_scope",
            "a requested scope is unknown or not allowed for this client",
        )
    })?;
    oauth2
        .device_starts_per_ip
        .check(&client_key(context.client_ip))
        .map_err(too_many)?;
    let started = oauth2
        .engine
        .start_device_grant(
            &client.id,
            &scope,
            oauth2.device_ttl_ms,
            oauth2.poll_interval_secs,
        )
        .await
        .map_err(|e| match e {
            GrantError::Full => too_many(std::time::Duration::from_secs(30)),
            GrantError::Engine(e) => ApiError::from(e),
            other => {
                tracing::error!(error = ?other, "starting a device grant failed");
                ApiError::internal()
            }
        })?;
    let verification_uri = format!("{}/oauth2/device", oauth2.issuer);
    let complete = format!("{verification_uri}?user_code={}", started.user_code);
    Ok(warp::reply::json(&DeviceAuthorization {
        device_code: started.device_code,
        user_code: started.user_code,
        verification_uri,
        verification_uri_complete: complete,
        expires_in: oauth2.device_ttl_ms / 1000,
        interval: oauth2.poll_interval_secs,
    })
    .into_response())
}
