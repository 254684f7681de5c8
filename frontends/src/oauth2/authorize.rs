//! `GET /oauth2/authorize`: authorization code with PKCE S256 for a
//! registered client (RFC 6749 §4.1 as OAuth 2.1 narrows it).
//!
//! Until the client and its redirect URI are known good, errors are an HTML
//! page and the browser goes nowhere; after that, every error goes back to
//! the client's redirect URI with `error`, `state` and `iss` (RFC 9207). A
//! caller without a web session is sent to the frontend's sign-in page,
//! which returns here; nothing is stored for it.

use std::sync::Arc;

use http::StatusCode;
use tachigo_engine::clients::Client;
use tachigo_engine::oauth2_grants::{CodeRequest, GrantError};
use url::Url;
use warp::http::Response;
use warp::Rejection;

use super::form::Form;
use super::html::error_page;
use super::OAuth2;
use crate::common::Body;
use crate::oauth::session_cookie;

/// The longest authorization request accepted (the whole query string).
const MAX_QUERY_BYTES: usize = 4096;
/// The longest `state` and `nonce`.
const MAX_ECHOED_BYTES: usize = 512;

/// A 302 with no body.
fn found(location: &str) -> Response<Body> {
    crate::oauth::callback_urls::redirect_to(location, Vec::new())
}

/// Sends an error back to a client's (checked) redirect URI.
struct ClientRedirect<'a> {
    redirect_uri: &'a str,
    state: Option<&'a str>,
    issuer: &'a str,
}

impl ClientRedirect<'_> {
    fn to(&self, params: &[(&str, &str)]) -> Response<Body> {
        let Ok(mut url) = Url::parse(self.redirect_uri) else {
            return error_page(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "the redirect URI cannot be parsed",
            );
        };
        {
            let mut query = url.query_pairs_mut();
            for (name, value) in params {
                query.append_pair(name, value);
            }
            if let Some(state) = self.state {
                query.append_pair("state", state);
            }
            query.append_pair("iss", self.issuer);
        }
        found(url.as_str())
    }

    fn error(&self, error: &str, description: &str) -> Response<Body> {
        metrics::counter!("tachigo_oauth2_authorize_refused_total", "error" => error_label(error))
            .increment(1);
        self.to(&[("error", error), ("error_description", description)])
    }
}

/// `error` as a metric label, from a fixed set.
fn error_label(error: &str) -> &'static str {
    match error {
        "invalid_request" => "invalid_request",
        "unsupported_response_type" => "unsupported_response_type",
        "invalid_scope" => "invalid_scope",
        "login_required" => "login_required",
        "temporarily_unavailable" => "temporarily_unavailable",
        _ => "other",
    }
}

fn is_pkce_challenge(s: &str) -> bool {
    s.len() == 43
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub(crate) async fn handle(
    oauth2: Arc<OAuth2>,
    cookie_header: Option<String>,
    query: String,
) -> Result<Response<Body>, Rejection> {
    if query.len() > MAX_QUERY_BYTES {
        return Ok(error_page(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the authorization request is too long",
        ));
    }
    let (form, repeated) = match Form::parse(query.as_bytes()) {
        Ok(form) => (form, false),
        // Repeated parameters: still find the client to say so properly.
        Err(_) => (Form::parse_first(query.as_bytes()), true),
    };
    let Some(client) = form.get("client_id").and_then(|id| oauth2.clients.get(id)) else {
        return Ok(error_page(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            "client_id is missing or names no registered client",
        ));
    };
    let Some(redirect_uri) = form
        .get("redirect_uri")
        .filter(|uri| client.accepts_redirect(uri))
    else {
        return Ok(error_page(
            StatusCode::BAD_REQUEST,
            "invalid_redirect_uri",
            "redirect_uri is missing or is not registered for this client",
        ));
    };
    let state = form.get("state");
    let back = ClientRedirect {
        redirect_uri,
        state: state.filter(|s| s.len() <= MAX_ECHOED_BYTES),
        issuer: &oauth2.issuer,
    };
    if repeated {
        return Ok(back.error("invalid_request", "a parameter is repeated"));
    }
    match authorize(
        &oauth2,
        client,
        redirect_uri,
        &form,
        &back,
        cookie_header.as_deref(),
        &query,
    )
    .await
    {
        Ok(response) | Err(response) => Ok(response),
    }
}

#[allow(clippy::too_many_arguments)]
async fn authorize(
    oauth2: &OAuth2,
    client: &Client,
    redirect_uri: &str,
    form: &Form,
    back: &ClientRedirect<'_>,
    cookie_header: Option<&str>,
    query: &str,
) -> Result<Response<Body>, Response<Body>> {
    if form.get("response_type") != Some("code") {
        return Err(back.error(
            "unsupported_response_type",
            "only response_type=code is supported",
        ));
    }
    if form
        .get("state")
        .is_some_and(|s| s.len() > MAX_ECHOED_BYTES)
        || form
            .get("nonce")
            .is_some_and(|s| s.len() > MAX_ECHOED_BYTES)
    {
        return Err(back.error("invalid_request", "state and nonce are at most 512 bytes"));
    }
    let Some(challenge) = form.get("code_challenge") else {
        return Err(back.error("invalid_request", "PKCE is required: send code_challenge"));
    };
    if form.get("code_challenge_method") != Some("S256") {
        return Err(back.error(
            "invalid_request",
            "code_challenge_method must be S256 (plain is not accepted)",
        ));
    }
    if !is_pkce_challenge(challenge) {
        return Err(back.error(
            "invalid_request",
            "code_challenge must be the 43-character base64url S256 digest",
        ));
    }
    let Some(scope) = client.grant_scopes(form.get("scope")) else {
        return Err(back.error(
            "invalid_scope",
            "a requested scope is unknown or not allowed for this client",
        ));
    };
    let prompt = form.get("prompt").unwrap_or("");
    let caller = if prompt.split(' ').any(|p| p == "login") {
        None
    } else {
        session_cookie::current(&oauth2.engine, cookie_header)
            .await
            .map_err(|_| back.error("temporarily_unavailable", "try again in a moment"))?
    };
    let Some(caller) = caller else {
        if prompt.split(' ').any(|p| p == "none") {
            return Err(back.error("login_required", "the user is not signed in"));
        }
        return Ok(found(&sign_in_redirect(oauth2, query)));
    };
    if let Err(wait) = oauth2.codes_per_user.check(&caller.user_id().to_string()) {
        tracing::info!(
            retry_after_s = wait.as_secs(),
            "authorization codes over the per-user limit"
        );
        return Err(back.error(
            "temporarily_unavailable",
            "too many requests; try again later",
        ));
    }
    let request = CodeRequest {
        client_id: client.id.clone(),
        redirect_uri: redirect_uri.to_string(),
        code_challenge: challenge.to_string(),
        scope,
        nonce: form.get("nonce").map(str::to_string),
        user_id: caller.user_id().to_string(),
        auth_time: caller.read.session.created_at,
        ttl_ms: oauth2.code_ttl_ms,
    };
    match oauth2.engine.issue_authorization_code(request).await {
        Ok(code) => {
            let mut response = back.to(&[("code", &code)]);
            caller.refresh_cookie(&oauth2.cookies, &mut response);
            Ok(response)
        }
        Err(GrantError::Full) => Err(back.error(
            "temporarily_unavailable",
            "too many sign-ins are in progress; try again later",
        )),
        Err(e) => {
            tracing::warn!(error = ?e, "issuing an authorization code failed");
            Err(back.error("temporarily_unavailable", "try again in a moment"))
        }
    }
}

/// The frontend's sign-in page, told to come back to this request (without
/// `prompt=login`, which the sign-in has just satisfied).
fn sign_in_redirect(oauth2: &OAuth2, query: &str) -> String {
    let kept: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .filter(|(name, value)| !(name == "prompt" && value.split(' ').any(|p| p == "login")))
        .map(|(n, v)| (n.into_owned(), v.into_owned()))
        .collect();
    let mut back = Url::parse(&format!("{}/oauth2/authorize", oauth2.issuer))
        .expect("the issuer is a valid URL");
    back.query_pairs_mut().extend_pairs(kept);
    sign_in_url_with_callback(&oauth2.sign_in_url, back.as_str())
}

/// `sign_in_url?callbackURL=<back>`.
pub(crate) fn sign_in_url_with_callback(sign_in_url: &str, back: &str) -> String {
    match Url::parse(sign_in_url) {
        Ok(mut url) => {
            url.query_pairs_mut().append_pair("callbackURL", back);
            url.to_string()
        }
        Err(_) => sign_in_url.to_string(),
    }
}
