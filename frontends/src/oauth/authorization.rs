//! Starting a provider flow, shared by `sign-in/social` (POST and GET) and
//! `link-social`: the provider must be configured (404 `PROVIDER_NOT_FOUND`),
//! every callback URL must pass the redirect rules (403 `INVALID_CALLBACK_URL`),
//! the client IP must have starts left (429 `TOO_MANY_REQUESTS` with
//! `Retry-After`, `limits.oauth_starts_per_minute`), then the provider builds the
//! authorization URL and the flow is saved under its `state`, bound to a fresh
//! state cookie — unless `limits.max_pending_oauth_states` flows are pending
//! already (429 with `Retry-After`, nothing stored). Nothing that needs no
//! session can store more than that bound.

use std::net::IpAddr;
use std::time::Duration;

use http::{HeaderValue, StatusCode};
use tachigo_engine::oauth_providers::{valid_login_hint, valid_scope, STATE_TTL_MS};
use tachigo_engine::PendingAuthorization;

use super::{state_cookie, OAuth};
use crate::common::log_sampling::LogSampler;
use crate::common::rate_limit::{client_key, retry_after};
use crate::common::ApiError;

const MAX_EXTRA_SCOPES: usize = 16;

/// What a client is told to wait when every pending slot is taken: the
/// expired flows are swept about once a minute.
pub(crate) const PENDING_FULL_RETRY: Duration = Duration::from_secs(60);

/// The signed-in user a link flow adds the account to, and the session that
/// asked: the callback links only while that session is still live.
pub(crate) struct LinkTarget {
    pub user_id: String,
    pub session_id: String,
}

pub(crate) struct StartRequest<'a> {
    pub provider: &'a str,
    pub callback_url: Option<&'a str>,
    pub error_callback_url: Option<&'a str>,
    pub new_user_callback_url: Option<&'a str>,
    pub extra_scopes: &'a [String],
    pub login_hint: Option<&'a str>,
    pub client_ip: IpAddr,
    /// Set by `link-social`: the callback adds the account to this user.
    pub link: Option<LinkTarget>,
}

/// A started flow: where to send the browser, and the cookie that binds it.
pub(crate) struct Started {
    pub url: String,
    pub state_cookie: HeaderValue,
}

pub(crate) fn provider_not_found() -> ApiError {
    ApiError::not_found("provider_not_found", "no such provider is configured")
}

pub(crate) fn too_many_requests(reason: &'static str, wait: Duration, message: &str) -> ApiError {
    metrics::counter!("tachigo_oauth_authorizations_refused_total", "reason" => reason)
        .increment(1);
    let (name, value) = retry_after(wait);
    ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_requests", message)
        .with_header(name, value)
}

pub(crate) async fn start(oauth: &OAuth, request: StartRequest<'_>) -> Result<Started, ApiError> {
    let provider = oauth
        .providers
        .get(request.provider)
        .ok_or_else(provider_not_found)?;
    let redirects = &oauth.redirects;
    let callback_url = redirects
        .resolve("callbackURL", request.callback_url)?
        .unwrap_or_else(|| redirects.default_callback().to_string());
    let error_callback_url = redirects
        .resolve("errorCallbackURL", request.error_callback_url)?
        .unwrap_or_else(|| redirects.default_error().to_string());
    let new_user_callback_url =
        redirects.resolve("newUserCallbackURL", request.new_user_callback_url)?;
    if request.extra_scopes.len() > MAX_EXTRA_SCOPES
        || !request.extra_scopes.iter().all(|s| valid_scope(s))
    {
        return Err(ApiError::bad_request(
            "invalid_scope",
            "scopes must be at most 16 OAuth scope tokens",
        ));
    }
    if request.login_hint.is_some_and(|h| !valid_login_hint(h)) {
        return Err(ApiError::bad_request(
            "invalid_login_hint",
            "loginHint must be 1-256 characters without control characters",
        ));
    }

    // Only a request that would store a flow spends the client's allowance.
    oauth
        .starts_per_ip
        .check(&client_key(request.client_ip))
        .map_err(|wait| {
            too_many_requests(
                "rate_limited",
                wait,
                "too many sign-ins started from this address; wait before trying again",
            )
        })?;
    let started = provider.start(request.extra_scopes, request.login_hint).await.map_err(|e| {
        static START_FAILED_LOG: LogSampler = LogSampler::every_secs(10);
        if let Some(skipped) = START_FAILED_LOG.admit() {
            tracing::warn!(provider = provider.name(), error = %e, failures_not_logged = skipped, "could not start an authorization");
        }
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "provider_unavailable",
            "the provider cannot be reached right now; try again",
        )
    })?;
    let binding = state_cookie::new_binding();
    let now = oauth.engine.now();
    let (link_user_id, link_session_id) = match request.link {
        Some(link) => (Some(link.user_id), Some(link.session_id)),
        None => (None, None),
    };
    let record = PendingAuthorization {
        provider: provider.name().to_string(),
        pkce_verifier: started.pkce_verifier,
        nonce: Some(started.nonce),
        binding_hash: binding.hash,
        callback_url,
        error_callback_url,
        new_user_callback_url,
        link_user_id,
        link_session_id,
        created_at: now,
        expires_at: now + STATE_TTL_MS,
    };
    if !oauth.pending.save(&started.state, &record).await? {
        return Err(too_many_requests(
            "pending_bound",
            PENDING_FULL_RETRY,
            "too many sign-ins are in progress; try again shortly",
        ));
    }
    metrics::counter!("tachigo_oauth_authorizations_started_total", "provider" => provider.name().to_string())
        .increment(1);
    Ok(Started {
        url: started.url,
        state_cookie: state_cookie::set(&oauth.cookies, &binding),
    })
}
