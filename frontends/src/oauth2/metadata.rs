//! `/.well-known/oauth-authorization-server` (RFC 8414) and
//! `/.well-known/openid-configuration` (OpenID Connect Discovery 1.0): one
//! document, rendered once at start, served at both paths.

use std::sync::Arc;

use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use serde_json::json;
use warp::filters::BoxedFilter;
use warp::http::Response;
use warp::{Filter, Rejection};

use super::OAuth2;
use crate::common::error::{recover, ErrorStyle};
use crate::common::Body;

/// The metadata of the server whose issuer is `issuer`.
pub(crate) fn document(issuer: &str) -> String {
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/oauth2/authorize"),
        "token_endpoint": format!("{issuer}/oauth2/token"),
        "device_authorization_endpoint": format!("{issuer}/oauth2/device_authorization"),
        "revocation_endpoint": format!("{issuer}/oauth2/revoke"),
        "introspection_endpoint": format!("{issuer}/oauth2/introspect"),
        "userinfo_endpoint": format!("{issuer}/oauth2/userinfo"),
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": [
            "authorization_code",
            "refresh_token",
            "urn:ietf:params:oauth:grant-type:device_code"
        ],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "scopes_supported": tachigo_engine::clients::KNOWN_SCOPES,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["EdDSA"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "sid", "email", "email_verified", "name", "picture"],
        "authorization_response_iss_parameter_supported": true,
        "prompt_values_supported": ["none", "login"],
    })
    .to_string()
}

/// The filter serving the document at `path` (one of the two well-known paths).
pub(crate) fn route(oauth2: &Arc<OAuth2>, path: &'static str) -> BoxedFilter<(Response<Body>,)> {
    let oauth2 = oauth2.clone();
    let name = path.trim_start_matches("/.well-known/");
    warp::path(".well-known")
        .and(warp::path(name))
        .and(warp::path::end())
        .and(warp::get())
        .map(move || {
            let mut response = Response::new(Body::from(oauth2.metadata.clone()));
            let headers = response.headers_mut();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            // Public and the same for every caller: clients may cache it.
            headers.insert(
                CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            );
            response
        })
        .recover(|r: Rejection| recover(ErrorStyle::OAuth2, r))
        .unify()
        .boxed()
}
