//! `POST /oauth2/introspect` (RFC 7662): a service client asks whether a
//! token is live. Only service clients, with their secret. An access token
//! is active while it verifies and its session is live; a refresh token
//! while it is the current token of a live family (asking never rotates it).

use std::sync::Arc;

use http::header::HeaderMap;
use http::StatusCode;
use serde_json::json;
use tachigo_engine::app_session::{client_of, scope_of};
use tachigo_engine::EngineError;
use warp::http::Response;
use warp::{Rejection, Reply};

use super::access_tokens::{self, looks_like_jwt};
use super::client_auth::authenticate;
use super::form::Form;
use super::OAuth2;
use crate::common::{ApiError, Body};

fn inactive() -> Response<Body> {
    warp::reply::json(&json!({"active": false})).into_response()
}

pub(crate) async fn handle(
    oauth2: Arc<OAuth2>,
    headers: HeaderMap,
    form: Form,
) -> Result<Response<Body>, Rejection> {
    introspect(&oauth2, &headers, &form)
        .await
        .map_err(ApiError::reject)
}

async fn introspect(
    oauth2: &OAuth2,
    headers: &HeaderMap,
    form: &Form,
) -> Result<Response<Body>, ApiError> {
    let caller = authenticate(oauth2, headers, form)?;
    if !caller.is_confidential() {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "only service clients may introspect tokens",
        )
        .with_header(
            http::header::WWW_AUTHENTICATE,
            http::HeaderValue::from_static("Basic realm=\"tachigo\""),
        ));
    }
    let token = form.require("token")?;
    if looks_like_jwt(token) {
        let Some(access) = access_tokens::verify(oauth2, token) else {
            return Ok(inactive());
        };
        let claims = &access.claims;
        let sid = claims.sid.as_deref().unwrap_or_default();
        return match oauth2.engine.live_session(&claims.sub, sid).await {
            Ok(_) => Ok(warp::reply::json(&json!({
                "active": true,
                "token_type": "access_token",
                "client_id": access.client.id,
                "sub": claims.sub,
                "scope": access.scope(),
                "sid": sid,
                "iss": claims.iss,
                "aud": claims.aud,
                "iat": claims.iat,
                "exp": claims.exp,
            }))
            .into_response()),
            Err(EngineError::SessionInvalid) => Ok(inactive()),
            Err(e) => Err(e.into()),
        };
    }
    if token.len() > 512 {
        return Ok(inactive());
    }
    match oauth2.engine.inspect_app_refresh_token(token).await? {
        Some(session) => {
            let context = session.context.as_deref();
            let audience = client_of(context)
                .and_then(|id| oauth2.clients.get(id))
                .map(|c| c.audience.clone());
            Ok(warp::reply::json(&json!({
                "aud": audience,
                "active": true,
                "token_type": "refresh_token",
                "client_id": client_of(context),
                "sub": session.user_id,
                "scope": scope_of(context),
                "sid": session.id,
                "iss": oauth2.issuer,
                "iat": session.updated_at / 1000,
                "exp": session.expires_at / 1000,
            }))
            .into_response())
        }
        None => Ok(inactive()),
    }
}
