//! `POST /oauth2/revoke` (RFC 7009): a client ends the session of one of its
//! refresh or access tokens. Unknown, expired and malformed tokens are 200
//! too (§2.2): the client's goal is met. A token of another client is
//! refused and changes nothing.

use std::sync::Arc;

use http::header::HeaderMap;
use tachigo_engine::{EngineError, RevokeScope};
use warp::http::Response;
use warp::Rejection;

use super::access_tokens::{self, looks_like_jwt};
use super::client_auth::authenticate;
use super::form::Form;
use super::OAuth2;
use crate::common::{ApiError, Body};

fn not_yours() -> ApiError {
    ApiError::bad_request(
        "unauthorized_client",
        "the token was not issued to this client",
    )
}

fn revoked() -> Response<Body> {
    metrics::counter!("tachigo_oauth2_revocations_total").increment(1);
    Response::new(Body::default())
}

pub(crate) async fn handle(
    oauth2: Arc<OAuth2>,
    headers: HeaderMap,
    form: Form,
) -> Result<Response<Body>, Rejection> {
    revoke(&oauth2, &headers, &form)
        .await
        .map_err(ApiError::reject)
}

async fn revoke(
    oauth2: &OAuth2,
    headers: &HeaderMap,
    form: &Form,
) -> Result<Response<Body>, ApiError> {
    let client = authenticate(oauth2, headers, form)?;
    let token = form.require("token")?;
    if looks_like_jwt(token) {
        let Some(access) = access_tokens::verify(oauth2, token) else {
            return Ok(Response::new(Body::default()));
        };
        if access.client.id != client.id {
            return Err(not_yours());
        }
        let sid = access.claims.sid.clone().unwrap_or_default();
        return match oauth2
            .engine
            .revoke_sessions(&access.claims.sub, RevokeScope::One(sid))
            .await
        {
            Ok(_) => Ok(revoked()),
            Err(EngineError::SessionNotFound | EngineError::UserNotFound) => {
                Ok(Response::new(Body::default()))
            }
            Err(e) => Err(e.into()),
        };
    }
    match oauth2
        .engine
        .revoke_app_refresh_token(token, &client.id)
        .await
    {
        Ok(true) => Ok(revoked()),
        Ok(false) => Ok(Response::new(Body::default())),
        Err(EngineError::InvalidToken) => Err(not_yours()),
        Err(e) => Err(e.into()),
    }
}
