//! Starting a provider flow, shared by `sign-in/social` (POST and GET) and
//! `link-social`: the provider must be configured (404 `PROVIDER_NOT_FOUND`),
//! every callback URL must pass the redirect rules (403
//! `INVALID_CALLBACK_URL`), then the provider builds the authorization URL and
//! the flow is saved under its `state`, bound to a fresh state cookie.

use http::{HeaderValue, StatusCode};
use tachigo_engine::oauth_providers::{valid_login_hint, valid_scope, STATE_TTL_MS};
use tachigo_engine::storage::OAuthStateRecord;

use super::{state_cookie, OAuth};
use crate::common::ApiError;

const MAX_EXTRA_SCOPES: usize = 16;

pub(crate) struct StartRequest<'a> {
    pub provider: &'a str,
    pub callback_url: Option<&'a str>,
    pub error_callback_url: Option<&'a str>,
    pub new_user_callback_url: Option<&'a str>,
    pub extra_scopes: &'a [String],
    pub login_hint: Option<&'a str>,
    /// Set by `link-social`: the callback adds the account to this user.
    pub link_user_id: Option<String>,
}

/// A started flow: where to send the browser, and the cookie that binds it.
pub(crate) struct Started {
    pub url: String,
    pub state_cookie: HeaderValue,
}

pub(crate) fn provider_not_found() -> ApiError {
    ApiError::not_found("provider_not_found", "no such provider is configured")
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

    let started = provider.start(request.extra_scopes, request.login_hint).await.map_err(|e| {
        tracing::warn!(provider = provider.name(), error = %e, "could not start an authorization");
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "provider_unavailable",
            "the provider cannot be reached right now; try again",
        )
    })?;
    let binding = state_cookie::new_binding();
    let now = oauth.engine.now();
    let record = OAuthStateRecord {
        provider: provider.name().to_string(),
        pkce_verifier: started.pkce_verifier,
        nonce: Some(started.nonce),
        binding_hash: binding.hash,
        callback_url,
        error_callback_url,
        new_user_callback_url,
        link_user_id: request.link_user_id,
        created_at: now,
        expires_at: now + STATE_TTL_MS,
    };
    oauth.pending.save(&started.state, &record).await?;
    metrics::counter!("tachigo_oauth_authorizations_started_total", "provider" => provider.name().to_string())
        .increment(1);
    Ok(Started {
        url: started.url,
        state_cookie: state_cookie::set(&oauth.cookies, &binding),
    })
}
