//! The token endpoint's success: an access token (the engine's EdDSA JWT for
//! the client's audience), the refresh token of the session's family, and
//! with `openid` an ID token (OpenID Connect Core §2) signed by the same key.

use serde::Serialize;
use tachigo_engine::clients::Client;
use tachigo_engine::{Session, User};
use warp::http::Response;
use warp::Reply;

use super::OAuth2;
use crate::common::Body;

#[derive(Serialize)]
struct TokenResponse<'a> {
    access_token: String,
    token_type: &'static str,
    expires_in: i64,
    refresh_token: &'a str,
    scope: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id_token: Option<String>,
}

#[derive(Serialize)]
struct IdTokenClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
    auth_time: i64,
    sid: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email_verified: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    picture: Option<&'a str>,
}

/// Whether a space-separated scope string holds `scope`.
pub(crate) fn has_scope(scopes: &str, scope: &str) -> bool {
    scopes.split(' ').any(|s| s == scope)
}

/// What the tokens are for: who, which session, which scopes.
pub(crate) struct Issue<'a> {
    pub client: &'a Client,
    pub user: &'a User,
    pub session: &'a Session,
    pub scope: &'a str,
    pub refresh_token: &'a str,
    pub nonce: Option<&'a str>,
    /// Unix milliseconds.
    pub auth_time: i64,
}

pub(crate) fn respond(oauth2: &OAuth2, issue: Issue<'_>) -> Response<Body> {
    let engine = &oauth2.engine;
    let mut extra = serde_json::Map::new();
    extra.insert("client_id".into(), issue.client.id.clone().into());
    extra.insert("scope".into(), issue.scope.into());
    let (access_token, claims) = engine.mint_session_access_token_with_ttl(
        &issue.user.id,
        issue.session,
        &issue.client.audience,
        &issue.user.roles,
        extra,
        issue.client.access_ttl_ms,
    );
    let id_token = has_scope(issue.scope, "openid").then(|| {
        let with_email = has_scope(issue.scope, "email");
        let with_profile = has_scope(issue.scope, "profile");
        engine.keys().sign(&IdTokenClaims {
            iss: &oauth2.issuer,
            sub: &issue.user.id,
            aud: &issue.client.id,
            iat: claims.iat,
            exp: claims.exp,
            auth_time: issue.auth_time / 1000,
            sid: &issue.session.id,
            nonce: issue.nonce,
            email: issue.user.email.as_deref().filter(|_| with_email),
            email_verified: with_email.then_some(issue.user.email_verified),
            name: issue.user.name.as_deref().filter(|_| with_profile),
            picture: issue.user.image.as_deref().filter(|_| with_profile),
        })
    });
    let body = TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: (claims.exp - claims.iat).max(0),
        refresh_token: issue.refresh_token,
        scope: issue.scope,
        id_token,
    };
    let mut response = warp::reply::json(&body).into_response();
    response
        .headers_mut()
        .insert("pragma", http::HeaderValue::from_static("no-cache"));
    response
}
