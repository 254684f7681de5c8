//! `POST /oauth2/token`: the three grants a first-party client may use —
//! `authorization_code` (with its PKCE verifier), `refresh_token` (rotation
//! with reuse detection and the immediate-predecessor grace, on the engine's
//! refresh families) and the device code (RFC 8628 §3.4). Anything else is
//! `unsupported_grant_type`; a failed grant changes nothing it should not.

use std::sync::Arc;

use http::header::HeaderMap;
use http::StatusCode;
use tachigo_engine::app_session::{scope_of, AppSessionStart};
use tachigo_engine::clients::Client;
use tachigo_engine::oauth2_grants::{GrantError, Granted};
use tachigo_engine::EngineError;
use warp::http::Response;
use warp::Rejection;

use super::client_auth::authenticate;
use super::form::Form;
use super::token_response::{respond, Issue};
use super::OAuth2;
use crate::common::{ApiError, Body, RequestContext};

pub(crate) const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

fn invalid_grant(message: &str) -> ApiError {
    ApiError::bad_request("invalid_grant", message)
}

/// A grant failure as RFC 6749 §5.2 / RFC 8628 §3.5 spell it.
pub(crate) fn grant_error(e: GrantError) -> ApiError {
    match e {
        GrantError::InvalidGrant(why) => invalid_grant(why),
        GrantError::AuthorizationPending => ApiError::bad_request(
            "authorization_pending",
            "the user has not approved the request yet",
        ),
        GrantError::SlowDown => ApiError::bad_request(
            "slow_down",
            "polling too fast: wait the interval (now 5 s longer) between polls",
        ),
        GrantError::AccessDenied => {
            ApiError::bad_request("access_denied", "the user denied the request")
        }
        GrantError::ExpiredToken => {
            ApiError::bad_request("expired_token", "the device code expired; start again")
        }
        GrantError::Full => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "too many sign-ins are in progress; try again later",
        )
        .with_header(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static("5"),
        ),
        GrantError::Engine(e) => ApiError::from(e),
    }
}

fn grant_label(grant_type: &str) -> &'static str {
    match grant_type {
        "authorization_code" => "authorization_code",
        "refresh_token" => "refresh_token",
        DEVICE_CODE_GRANT => "device_code",
        _ => "other",
    }
}

pub(crate) async fn handle(
    oauth2: Arc<OAuth2>,
    context: RequestContext,
    headers: HeaderMap,
    form: Form,
) -> Result<Response<Body>, Rejection> {
    let result = token(&oauth2, &context, &headers, &form).await;
    let grant = grant_label(form.get("grant_type").unwrap_or(""));
    let outcome = if result.is_ok() { "issued" } else { "refused" };
    metrics::counter!("tachigo_oauth2_token_requests_total", "grant" => grant, "outcome" => outcome)
        .increment(1);
    result.map_err(ApiError::reject)
}

async fn token(
    oauth2: &OAuth2,
    context: &RequestContext,
    headers: &HeaderMap,
    form: &Form,
) -> Result<Response<Body>, ApiError> {
    let grant_type = form.require("grant_type")?;
    let client = authenticate(oauth2, headers, form)?;
    let start = AppSessionStart {
        client_id: client.id.clone(),
        scope: String::new(),
        refresh_idle_ttl_ms: client.refresh_idle_ttl_ms,
        user_agent: context.user_agent(),
        ip: Some(context.client_ip.to_string()),
    };
    match grant_type {
        "authorization_code" => {
            let code = form.require("code")?;
            let redirect_uri = form.require("redirect_uri")?;
            let verifier = form.get("code_verifier").ok_or_else(|| {
                ApiError::bad_request("invalid_request", "PKCE is required: send code_verifier")
            })?;
            let granted = oauth2
                .engine
                .redeem_authorization_code(code, redirect_uri, verifier, start)
                .await
                .map_err(grant_error)?;
            Ok(respond_granted(oauth2, client, &granted))
        }
        DEVICE_CODE_GRANT => {
            if !client.may_use_device_grant() {
                return Err(ApiError::bad_request(
                    "unauthorized_client",
                    "this client may not use the device grant",
                ));
            }
            let device_code = form.require("device_code")?;
            let granted = oauth2
                .engine
                .poll_device_grant(device_code, start)
                .await
                .map_err(grant_error)?;
            Ok(respond_granted(oauth2, client, &granted))
        }
        "refresh_token" => refresh(oauth2, client, form).await,
        _ => Err(ApiError::bad_request(
            "unsupported_grant_type",
            "grant_type must be authorization_code, refresh_token or urn:ietf:params:oauth:grant-type:device_code",
        )),
    }
}

fn respond_granted(oauth2: &OAuth2, client: &Client, granted: &Granted) -> Response<Body> {
    let refresh_token = granted.session.token.as_deref().unwrap_or_default();
    respond(
        oauth2,
        Issue {
            client,
            user: &granted.session.user,
            session: &granted.session.session,
            scope: &granted.scope,
            refresh_token,
            nonce: granted.nonce.as_deref(),
            auth_time: granted.auth_time,
        },
    )
}

async fn refresh(
    oauth2: &OAuth2,
    client: &Client,
    form: &Form,
) -> Result<Response<Body>, ApiError> {
    let token = form.require("refresh_token")?;
    if token.len() > 512 {
        return Err(invalid_grant(
            "the refresh token is unknown, expired or revoked",
        ));
    }
    // Checked before the token is spent: a scope the client may never have.
    let asked = match form.get("scope") {
        None => None,
        Some(asked) => Some(client.grant_scopes(Some(asked)).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_scope",
                "a requested scope is not allowed for this client",
            )
        })?),
    };
    if let Some(asked) = &asked {
        // RFC 6749 §6: never more than the session was granted. Read without
        // spending the token, so a refused request changes nothing.
        if let Some(session) = oauth2.engine.inspect_app_refresh_token(token).await? {
            let granted = scope_of(session.context.as_deref());
            if !asked.split(' ').all(|s| granted.split(' ').any(|g| g == s)) {
                return Err(ApiError::bad_request(
                    "invalid_scope",
                    "the scope asked for exceeds what the session was granted",
                ));
            }
        }
    }
    let rotated = oauth2
        .engine
        .rotate_app_refresh_token(token, &client.id, client.refresh_idle_ttl_ms)
        .await
        .map_err(|e| match e {
            EngineError::InvalidRefreshToken => {
                invalid_grant("the refresh token is unknown, expired or revoked")
            }
            EngineError::RefreshTokenReused => {
                invalid_grant("the refresh token was already used; its session has been revoked")
            }
            other => ApiError::from(other),
        })?;
    let granted_scope = scope_of(rotated.session.context.as_deref());
    // A narrower scope may be asked for this access token (RFC 6749 §6); the
    // session keeps what it was granted, and never more is issued.
    let scope = match asked {
        None => granted_scope.to_string(),
        Some(asked) => asked
            .split(' ')
            .filter(|s| granted_scope.split(' ').any(|g| g == *s))
            .collect::<Vec<_>>()
            .join(" "),
    };
    Ok(respond(
        oauth2,
        Issue {
            client,
            user: &rotated.user,
            session: &rotated.session,
            scope: &scope,
            refresh_token: &rotated.refresh_token,
            nonce: None,
            auth_time: rotated.session.created_at,
        },
    ))
}
