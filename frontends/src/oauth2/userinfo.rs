//! `GET|POST /oauth2/userinfo` (OpenID Connect Core §5.3): the claims of the
//! user an access token with `openid` speaks for, by scope. The token must
//! verify and its session must still be live; otherwise 401 with
//! `WWW-Authenticate: Bearer error="invalid_token"` (RFC 6750 §3).

use std::sync::Arc;

use http::header::{HeaderMap, HeaderValue, WWW_AUTHENTICATE};
use http::StatusCode;
use serde_json::{json, Map, Value};
use tachigo_engine::EngineError;
use warp::http::Response;
use warp::{Rejection, Reply};

use super::access_tokens;
use super::token_response::has_scope;
use super::OAuth2;
use crate::common::bearer::{bearer_token, Bearer};
use crate::common::{ApiError, Body};

fn refused(error: &'static str, description: &str) -> Response<Body> {
    let status = if error == "insufficient_scope" {
        StatusCode::FORBIDDEN
    } else {
        StatusCode::UNAUTHORIZED
    };
    let mut response =
        warp::reply::json(&json!({"error": error, "error_description": description}))
            .into_response();
    *response.status_mut() = status;
    let challenge = format!("Bearer realm=\"tachigo\", error=\"{error}\"");
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(WWW_AUTHENTICATE, value);
    }
    response
}

pub(crate) async fn handle(
    oauth2: Arc<OAuth2>,
    headers: HeaderMap,
) -> Result<Response<Body>, Rejection> {
    let token = match bearer_token(&headers) {
        Bearer::Token(token) => token,
        _ => {
            let mut response = refused("invalid_token", "send an access token as a bearer token");
            // RFC 6750 §3.1: no error code when no credentials were sent at all.
            if !headers.contains_key(http::header::AUTHORIZATION) {
                response.headers_mut().insert(
                    WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"tachigo\""),
                );
            }
            return Ok(response);
        }
    };
    let Some(access) = access_tokens::verify(&oauth2, token) else {
        return Ok(refused(
            "invalid_token",
            "the access token is invalid or expired",
        ));
    };
    let scope = access.scope().to_string();
    if !has_scope(&scope, "openid") {
        return Ok(refused(
            "insufficient_scope",
            "the token was not granted openid",
        ));
    }
    let claims = access.claims;
    let sid = claims.sid.as_deref().unwrap_or_default();
    let read = match oauth2.engine.live_session(&claims.sub, sid).await {
        Ok(read) => read,
        Err(EngineError::SessionInvalid) => {
            return Ok(refused(
                "invalid_token",
                "the session of this token has ended",
            ))
        }
        Err(e) => return Err(ApiError::from(e).reject()),
    };
    let user = read.user;
    let mut body = Map::new();
    body.insert("sub".into(), Value::from(user.id.clone()));
    if has_scope(&scope, "email") {
        body.insert("email".into(), json!(user.email));
        body.insert("email_verified".into(), json!(user.email_verified));
    }
    if has_scope(&scope, "profile") {
        body.insert("name".into(), json!(user.name));
        body.insert("picture".into(), json!(user.image));
    }
    Ok(warp::reply::json(&body).into_response())
}
