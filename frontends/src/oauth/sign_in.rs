//! Social sign-in:
//!
//! - `POST /sign-in/social {provider, callbackURL?, errorCallbackURL?,
//!   newUserCallbackURL?, disableRedirect?, scopes?, loginHint?}` → 200 `{url, redirect}`
//!   (what Better Auth's `signIn.social` expects: it then navigates to `url`);
//! - `GET /sign-in/social/{provider}?callbackURL=…` → 302 to the provider, for
//!   plain links without JavaScript.
//!
//! Both set the state cookie. Sign-in with a client-held `idToken` is not
//! offered (400 `ID_TOKEN_NOT_SUPPORTED`): every sign-in goes through the
//! backend's own code exchange.

use std::sync::Arc;

use http::header::SET_COOKIE;
use warp::http::Response;
use warp::{Rejection, Reply};

use super::authorization::{self, StartRequest};
use super::callback_urls::redirect_to;
use super::wire::{RedirectJson, SocialSignInBody, SocialSignInQuery};
use super::OAuth;
use crate::common::{ApiError, Body, RequestContext};

pub async fn post(
    oauth: Arc<OAuth>,
    context: RequestContext,
    body: SocialSignInBody,
) -> Result<Response<Body>, Rejection> {
    if body.id_token.is_some() {
        return Err(ApiError::bad_request(
            "id_token_not_supported",
            "sign in through the provider redirect; idToken sign-in is not supported",
        )
        .reject());
    }
    let started = authorization::start(
        &oauth,
        StartRequest {
            provider: &body.provider,
            callback_url: body.callback_url.as_deref(),
            error_callback_url: body.error_callback_url.as_deref(),
            new_user_callback_url: body.new_user_callback_url.as_deref(),
            extra_scopes: body.scopes.as_deref().unwrap_or_default(),
            login_hint: body.login_hint.as_deref(),
            client_ip: context.client_ip,
            link: None,
        },
    )
    .await
    .map_err(ApiError::reject)?;
    let reply = warp::reply::json(&RedirectJson {
        url: started.url,
        redirect: !body.disable_redirect.unwrap_or(false),
    });
    Ok(warp::reply::with_header(reply, SET_COOKIE, started.state_cookie).into_response())
}

pub async fn get(
    provider: String,
    oauth: Arc<OAuth>,
    context: RequestContext,
    query: SocialSignInQuery,
) -> Result<Response<Body>, Rejection> {
    let started = authorization::start(
        &oauth,
        StartRequest {
            provider: &provider,
            callback_url: query.callback_url.as_deref(),
            error_callback_url: query.error_callback_url.as_deref(),
            new_user_callback_url: query.new_user_callback_url.as_deref(),
            extra_scopes: &[],
            login_hint: None,
            client_ip: context.client_ip,
            link: None,
        },
    )
    .await
    .map_err(ApiError::reject)?;
    Ok(redirect_to(&started.url, vec![started.state_cookie]))
}
