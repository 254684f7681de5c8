//! The caller's linked sign-in methods, for a live session cookie (else 401
//! `UNAUTHORIZED`):
//!
//! - `GET /list-accounts`: Better Auth's account list — each linked provider
//!   account, plus `credential` for a user with a password;
//! - `POST /link-social {provider, callbackURL?, errorCallbackURL?}`: starts a
//!   provider flow whose callback adds that account to the signed-in user
//!   (`{url, redirect}` like `sign-in/social`). The user is signed in already,
//!   so the provider's email need not match; an account another user owns is
//!   refused at the callback (`account_already_linked_to_different_user`);
//! - `POST /unlink-account {providerId, accountId?}`: removes one, 400
//!   `FAILED_TO_UNLINK_LAST_ACCOUNT` when it is the last way to sign in, 400
//!   `ACCOUNT_NOT_FOUND` for an account the user does not have.
//!
//! `link-social` and `unlink-account` pass the CSRF origin check first.

use std::sync::Arc;

use http::header::SET_COOKIE;
use http::HeaderMap;
use tachigo_engine::EngineError;
use warp::http::Response;
use warp::{Rejection, Reply};

use super::authorization::{self, LinkTarget, StartRequest};
use super::session_cookie;
use super::wire::{AccountJson, LinkSocialBody, RedirectJson, StatusJson, UnlinkAccountBody};
use super::OAuth;
use crate::common::{ApiError, Body, RequestContext};

pub async fn list(
    oauth: Arc<OAuth>,
    cookie_header: Option<String>,
) -> Result<Response<Body>, Rejection> {
    let caller = session_cookie::require(&oauth.engine, cookie_header.as_deref())
        .await
        .map_err(ApiError::reject)?;
    let user = &caller.read.user;
    let mut accounts: Vec<AccountJson> = user
        .accounts
        .iter()
        .map(|a| AccountJson::linked(a, &user.id))
        .collect();
    if user.has_password {
        accounts.insert(0, AccountJson::credential(user));
    }
    let mut response = warp::reply::json(&accounts).into_response();
    caller.refresh_cookie(&oauth.cookies, &mut response);
    Ok(response)
}

pub async fn link(
    oauth: Arc<OAuth>,
    context: RequestContext,
    headers: HeaderMap,
    body: LinkSocialBody,
) -> Result<Response<Body>, Rejection> {
    let caller =
        session_cookie::require_for_change(&oauth.engine, &oauth.trusted_origins, &headers)
            .await
            .map_err(ApiError::reject)?;
    let started = authorization::start(
        &oauth,
        StartRequest {
            provider: &body.provider,
            callback_url: body.callback_url.as_deref(),
            error_callback_url: body.error_callback_url.as_deref(),
            new_user_callback_url: None,
            extra_scopes: body.scopes.as_deref().unwrap_or_default(),
            login_hint: None,
            client_ip: context.client_ip,
            link: Some(LinkTarget {
                user_id: caller.user_id().to_string(),
                session_id: caller.session_id().to_string(),
            }),
        },
    )
    .await
    .map_err(ApiError::reject)?;
    let mut response = warp::reply::json(&RedirectJson {
        url: started.url,
        redirect: !body.disable_redirect.unwrap_or(false),
    })
    .into_response();
    response
        .headers_mut()
        .append(SET_COOKIE, started.state_cookie);
    caller.refresh_cookie(&oauth.cookies, &mut response);
    Ok(response)
}

pub async fn unlink(
    oauth: Arc<OAuth>,
    headers: HeaderMap,
    body: UnlinkAccountBody,
) -> Result<Response<Body>, Rejection> {
    let caller =
        session_cookie::require_for_change(&oauth.engine, &oauth.trusted_origins, &headers)
            .await
            .map_err(ApiError::reject)?;
    oauth
        .engine
        .unlink_account(
            caller.user_id(),
            &body.provider_id,
            body.account_id.as_deref(),
        )
        .await
        .map_err(|e| match e {
            EngineError::LastSignInMethod => ApiError::bad_request(
                "failed_to_unlink_last_account",
                "this is the last way to sign in to the account; link another first",
            ),
            EngineError::AccountNotFound => {
                ApiError::bad_request("account_not_found", "no such linked account")
            }
            other => other.into(),
        })
        .map_err(ApiError::reject)?;
    let mut response = warp::reply::json(&StatusJson { status: true }).into_response();
    caller.refresh_cookie(&oauth.cookies, &mut response);
    Ok(response)
}
