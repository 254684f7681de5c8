//! `GET /oauth2/device` and `POST /oauth2/device` (RFC 8628 §3.3): the page
//! where a signed-in user types the user code a device shows, sees which
//! client asks, and approves or denies.
//!
//! The decision is a cookie-authenticated change, so it needs both an origin
//! on this server (or a trusted one) and a CSRF token derived from the
//! session cookie, which a cross-site page can neither read nor compute.
//! Look-ups and decisions are limited per user, so nobody can walk the code
//! space. A caller without a session is sent to sign in and comes back here.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use http::header::HeaderMap;
use http::StatusCode;
use sha2::{Digest, Sha256};
use tachigo_engine::oauth2_grants::{normalize_user_code, GrantError};
use warp::http::Response;
use warp::Rejection;

use super::authorize::sign_in_url_with_callback;
use super::form::Form;
use super::html::{escape, page};
use super::OAuth2;
use crate::common::origin_check::require_trusted_origin;
use crate::common::Body;
use crate::oauth::callback_urls::redirect_to;
use crate::oauth::session_cookie::{self, Caller};

const TITLE: &str = "Sign in on another device";

/// The CSRF token of the device form for the session a cookie token names.
fn csrf_token(session_token: &str) -> String {
    let digest = Sha256::digest(format!("tachigo device form\0{session_token}").as_bytes());
    URL_SAFE_NO_PAD.encode(digest)
}

fn csrf_matches(session_token: &str, presented: &str) -> bool {
    use subtle::ConstantTimeEq;
    let expected = csrf_token(session_token);
    expected.len() == presented.len() && bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
}

fn code_form(status: StatusCode, message: Option<&str>, prefill: &str) -> Response<Body> {
    let message = message
        .map(|m| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(m)))
        .unwrap_or_default();
    page(
        status,
        TITLE,
        &format!(
            "{message}<form method=\"get\" action=\"/oauth2/device\">\
<label for=\"user_code\">Enter the code shown on your device</label>\
<input type=\"text\" id=\"user_code\" name=\"user_code\" value=\"{}\" autocomplete=\"off\" \
autocapitalize=\"characters\" spellcheck=\"false\" maxlength=\"12\" required>\
<div><button type=\"submit\">Continue</button></div></form>",
            escape(prefill)
        ),
    )
}

fn confirm_page(
    caller: &Caller,
    client_name: &str,
    scope: &str,
    user_code: &str,
) -> Response<Body> {
    let who = caller
        .read
        .user
        .email
        .as_deref()
        .or(caller.read.user.name.as_deref())
        .unwrap_or("your account");
    page(
        StatusCode::OK,
        TITLE,
        &format!(
            "<p><strong>{client}</strong> asks to sign in as <strong>{who}</strong>.</p>\
<p class=\"muted\">Code {code}. Access: {scope}. Approve only if you started this on your own device.</p>\
<form method=\"post\" action=\"/oauth2/device\">\
<input type=\"hidden\" name=\"user_code\" value=\"{code}\">\
<input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
<button type=\"submit\" name=\"action\" value=\"approve\">Approve</button>\
<button type=\"submit\" name=\"action\" value=\"deny\">Deny</button></form>",
            client = escape(client_name),
            who = escape(who),
            code = escape(user_code),
            scope = escape(if scope.is_empty() { "sign-in only" } else { scope }),
            csrf = csrf_token(&caller.token),
        ),
    )
}

fn unavailable() -> Response<Body> {
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        TITLE,
        "<p class=\"error\">The server is busy. Try again in a moment.</p>",
    )
}

fn too_many() -> Response<Body> {
    code_form(
        StatusCode::TOO_MANY_REQUESTS,
        Some("Too many attempts. Wait a minute and try again."),
        "",
    )
}

fn sign_in_first(oauth2: &OAuth2, user_code: Option<&str>) -> Response<Body> {
    let mut back = format!("{}/oauth2/device", oauth2.issuer);
    if let Some(code) = user_code.and_then(normalize_user_code) {
        back.push_str(&format!("?user_code={}-{}", &code[..4], &code[4..]));
    }
    redirect_to(
        &sign_in_url_with_callback(&oauth2.sign_in_url, &back),
        Vec::new(),
    )
}

pub(crate) async fn show(
    oauth2: Arc<OAuth2>,
    cookie_header: Option<String>,
    query: String,
) -> Result<Response<Body>, Rejection> {
    let query = Form::parse_first(query.as_bytes());
    let user_code = query.get("user_code");
    let caller = match session_cookie::current(&oauth2.engine, cookie_header.as_deref()).await {
        Ok(Some(caller)) => caller,
        Ok(None) => return Ok(sign_in_first(&oauth2, user_code)),
        Err(_) => return Ok(unavailable()),
    };
    let Some(user_code) = user_code else {
        return Ok(code_form(StatusCode::OK, None, ""));
    };
    if oauth2
        .device_lookups_per_user
        .check(&caller.user_id().to_string())
        .is_err()
    {
        return Ok(too_many());
    }
    let shown: String = user_code.chars().take(12).collect();
    match oauth2.engine.pending_device_grant(user_code).await {
        Ok(Some(view)) => {
            let name = oauth2
                .clients
                .get(&view.client_id)
                .map_or(view.client_id.as_str(), |c| c.name.as_str());
            let code = normalize_user_code(user_code).unwrap_or_default();
            let display = format!("{}-{}", &code[..4], &code[4..]);
            let mut response = confirm_page(&caller, name, &view.scope, &display);
            caller.refresh_cookie(&oauth2.cookies, &mut response);
            Ok(response)
        }
        Ok(None) => Ok(code_form(
            StatusCode::BAD_REQUEST,
            Some("That code is unknown, expired or already used. Check the code on your device."),
            &shown,
        )),
        Err(_) => Ok(unavailable()),
    }
}

pub(crate) async fn decide(
    oauth2: Arc<OAuth2>,
    headers: HeaderMap,
    form: Form,
) -> Result<Response<Body>, Rejection> {
    if require_trusted_origin(&headers, &oauth2.page_origins).is_err() {
        return Ok(page(
            StatusCode::FORBIDDEN,
            TITLE,
            "<p class=\"error\">This form was sent from another site and was refused.</p>",
        ));
    }
    let caller = match session_cookie::current(
        &oauth2.engine,
        session_cookie::cookie_header(&headers),
    )
    .await
    {
        Ok(Some(caller)) => caller,
        Ok(None) => return Ok(sign_in_first(&oauth2, form.get("user_code"))),
        Err(_) => return Ok(unavailable()),
    };
    if !form
        .get("csrf")
        .is_some_and(|presented| csrf_matches(&caller.token, presented))
    {
        return Ok(page(
            StatusCode::FORBIDDEN,
            TITLE,
            "<p class=\"error\">This form has expired. Open the page again and retry.</p>",
        ));
    }
    let approve = match form.get("action") {
        Some("approve") => true,
        Some("deny") => false,
        _ => {
            return Ok(code_form(
                StatusCode::BAD_REQUEST,
                Some("Choose Approve or Deny."),
                "",
            ))
        }
    };
    if oauth2
        .device_lookups_per_user
        .check(&caller.user_id().to_string())
        .is_err()
    {
        return Ok(too_many());
    }
    let user_code = form.get("user_code").unwrap_or("");
    match oauth2
        .engine
        .decide_device_grant(user_code, caller.user_id(), approve)
        .await
    {
        Ok(view) => {
            let name = oauth2
                .clients
                .get(&view.client_id)
                .map_or(view.client_id.as_str(), |c| c.name.as_str());
            let body = if approve {
                format!(
                    "<p role=\"status\">Approved. <strong>{}</strong> is signing in; you can return to your device.</p>",
                    escape(name)
                )
            } else {
                format!(
                    "<p role=\"status\">Denied. <strong>{}</strong> was not signed in.</p>",
                    escape(name)
                )
            };
            Ok(page(StatusCode::OK, TITLE, &body))
        }
        Err(GrantError::InvalidGrant(_)) => Ok(code_form(
            StatusCode::BAD_REQUEST,
            Some("That code is unknown, expired or already used. Check the code on your device."),
            "",
        )),
        Err(_) => Ok(unavailable()),
    }
}
