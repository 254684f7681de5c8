//! Sign-In with Ethereum (EIP-4361) as Better Auth's `siwe` plugin speaks it:
//!
//! - `POST /siwe/nonce {walletAddress, chainId}` → `{nonce}`: a single-use
//!   nonce, stored server-side for five minutes and bound to that address on
//!   that chain. Counted against the client IP's allowance of started sign-ins
//!   (429 `TOO_MANY_REQUESTS`), and against the bound of pending flows (429
//!   `TOO_MANY_REQUESTS` too, nothing stored).
//! - `POST /siwe/verify {message, signature, walletAddress?, chainId?, email?}`
//!   → `{token, success: true, user: {id, walletAddress, chainId}}` with the
//!   session cookie. The message is checked as
//!   [`SiweVerifier::verify`](tachigo_engine::siwe::SiweVerifier::verify)
//!   says; `walletAddress` and `chainId`, when sent, must be the message's.
//!   The account is `(siwe, eip155:<chainId>:<address>)`: found, or a new user
//!   is made for it — never joined by email. An `email` is only kept on the
//!   account, unverified. A caller already signed in links the wallet to their
//!   own user instead (no new session; `token` is their session's id), and
//!   a wallet another user holds is refused.
//!
//! Both are browser POSTs no session authenticates: from a browser, they must
//! come from a trusted origin ([`browser_origin`]). Any refusal after the
//! message parsed has spent its nonce, and nothing else is stored.

use std::sync::Arc;

use http::header::SET_COOKIE;
use http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use tachigo_engine::siwe::{parse_address, SiweError, VerifiedWallet};
use tachigo_engine::{normalize_email, EngineError, NewSession, Surface, User};
use warp::http::Response;
use warp::{Rejection, Reply};

use super::authorization::{too_many_requests, PENDING_FULL_RETRY};
use super::email_errors::invalid_email;
use super::session_cookie::{self, Caller};
use super::{browser_origin, OAuth};
use crate::common::rate_limit::client_key;
use crate::common::{ApiError, Body, RequestContext};

/// `{walletAddress, chainId}` of `siwe/nonce`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SiweNonceBody {
    pub wallet_address: String,
    pub chain_id: u64,
}

#[derive(Serialize)]
struct NonceReply<'a> {
    nonce: &'a str,
}

/// The body of `siwe/verify`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SiweVerifyBody {
    pub message: String,
    pub signature: String,
    #[serde(default)]
    pub wallet_address: Option<String>,
    #[serde(default)]
    pub chain_id: Option<u64>,
    #[serde(default)]
    pub email: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WalletUser<'a> {
    id: &'a str,
    wallet_address: &'a str,
    chain_id: u64,
}

#[derive(Serialize)]
struct VerifyReply<'a> {
    token: &'a str,
    success: bool,
    user: WalletUser<'a>,
}

fn count(step: &'static str, outcome: &'static str) {
    metrics::counter!("tachigo_oauth_siwe_total", "step" => step, "outcome" => outcome)
        .increment(1);
}

fn invalid_wallet_address() -> ApiError {
    ApiError::bad_request(
        "invalid_wallet_address",
        "walletAddress must be 0x and 40 hex digits (a mixed-case address must be its EIP-55 checksum)",
    )
}

fn invalid_chain_id() -> ApiError {
    ApiError::bad_request(
        "invalid_chain_id",
        "chainId must be a positive EIP-155 chain id",
    )
}

/// A refusal of the engine's checks, as the contract answers it.
fn refusal(e: SiweError) -> ApiError {
    let code = e.code();
    let status = match &e {
        SiweError::InvalidMessage(_)
        | SiweError::MalformedSignature(_)
        | SiweError::ContractWallet => StatusCode::BAD_REQUEST,
        SiweError::Engine(_) => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::UNAUTHORIZED,
    };
    let message = match &e {
        SiweError::ContractWallet => "contract wallet signatures (EIP-1271, EIP-6492) need an Ethereum node to check and are not accepted: sign with an externally owned account".to_string(),
        other => other.to_string(),
    };
    ApiError::new(status, code, message)
}

pub async fn nonce(
    oauth: Arc<OAuth>,
    context: RequestContext,
    headers: HeaderMap,
    body: SiweNonceBody,
) -> Result<Response<Body>, Rejection> {
    issue(&oauth, &context, &headers, body)
        .await
        .inspect_err(|e| count("nonce", e.code))
        .map_err(ApiError::reject)
}

async fn issue(
    oauth: &OAuth,
    context: &RequestContext,
    headers: &HeaderMap,
    body: SiweNonceBody,
) -> Result<Response<Body>, ApiError> {
    browser_origin::check(headers, &oauth.trusted_origins)?;
    let address = parse_address(&body.wallet_address).ok_or_else(invalid_wallet_address)?;
    if body.chain_id == 0 {
        return Err(invalid_chain_id());
    }
    oauth
        .starts_per_ip
        .check(&client_key(context.client_ip))
        .map_err(|wait| {
            too_many_requests(
                "rate_limited",
                wait,
                "too many sign-ins started from this address; wait before trying again",
            )
        })?;
    let Some(nonce) = oauth.siwe.issue_nonce(&address, body.chain_id).await? else {
        return Err(too_many_requests(
            "pending_bound",
            PENDING_FULL_RETRY,
            "too many sign-ins are in progress; try again shortly",
        ));
    };
    count("nonce", "issued");
    Ok(warp::reply::json(&NonceReply { nonce: &nonce }).into_response())
}

pub async fn verify(
    oauth: Arc<OAuth>,
    context: RequestContext,
    headers: HeaderMap,
    body: SiweVerifyBody,
) -> Result<Response<Body>, Rejection> {
    check_and_sign_in(&oauth, &context, &headers, body)
        .await
        .inspect_err(|e| count("verify", e.code))
        .map_err(ApiError::reject)
}

async fn check_and_sign_in(
    oauth: &OAuth,
    context: &RequestContext,
    headers: &HeaderMap,
    body: SiweVerifyBody,
) -> Result<Response<Body>, ApiError> {
    browser_origin::check(headers, &oauth.trusted_origins)?;
    let claimed_address = body
        .wallet_address
        .as_deref()
        .map(|a| parse_address(a).ok_or_else(invalid_wallet_address))
        .transpose()?;
    if body.chain_id == Some(0) {
        return Err(invalid_chain_id());
    }
    let email = body
        .email
        .as_deref()
        .map(|e| normalize_email(e).map_err(|_| invalid_email()))
        .transpose()?;
    let caller =
        session_cookie::current(&oauth.engine, session_cookie::cookie_header(headers)).await?;
    let wallet = oauth
        .siwe
        .verify(&body.message, &body.signature)
        .await
        .map_err(|e| match e {
            SiweError::Engine(e) => ApiError::from(e),
            refused => {
                tracing::debug!(error = %refused, "SIWE verification refused");
                refusal(refused)
            }
        })?;
    let claimed_other_address =
        claimed_address.is_some_and(|a| parse_address(&wallet.address) != Some(a));
    if claimed_other_address || body.chain_id.is_some_and(|c| c != wallet.chain_id) {
        return Err(refusal(SiweError::Mismatch(
            "walletAddress or chainId is not the signed message's",
        )));
    }
    match caller {
        Some(caller) => link(oauth, &caller, &wallet, email).await,
        None => sign_in(oauth, context, &wallet, email).await,
    }
}

fn reply(token: &str, user: &User, wallet: &VerifiedWallet) -> Response<Body> {
    warp::reply::json(&VerifyReply {
        token,
        success: true,
        user: WalletUser {
            id: &user.id,
            wallet_address: &wallet.address,
            chain_id: wallet.chain_id,
        },
    })
    .into_response()
}

/// A signed-in caller's wallet joins their own user; their session stays.
async fn link(
    oauth: &OAuth,
    caller: &Caller,
    wallet: &VerifiedWallet,
    email: Option<String>,
) -> Result<Response<Body>, ApiError> {
    let user = oauth
        .engine
        .link_account(caller.user_id(), &wallet.identity(email))
        .await
        .map_err(|e| match e {
            EngineError::AccountTaken => ApiError::bad_request(
                "account_already_linked_to_different_user",
                "this wallet already signs in another user",
            ),
            other => other.into(),
        })?;
    count("verify", "linked");
    tracing::info!(user_id = %user.id, account = %wallet.account_id(), "linked a wallet");
    let mut response = reply(caller.session_id(), &user, wallet);
    caller.refresh_cookie(&oauth.cookies, &mut response);
    Ok(response)
}

/// The wallet's user (made now for a new wallet), a web session and its cookie.
async fn sign_in(
    oauth: &OAuth,
    context: &RequestContext,
    wallet: &VerifiedWallet,
    email: Option<String>,
) -> Result<Response<Body>, ApiError> {
    let identity = wallet.identity(email);
    let (user, created) = oauth
        .engine
        .find_or_create_by_account(&identity, false)
        .await?;
    let started = oauth
        .engine
        .create_session(
            &user.id,
            NewSession {
                surface: Surface::Web,
                user_agent: context.user_agent(),
                ip: Some(context.client_ip.to_string()),
                context: Some(identity.provider.clone()),
            },
        )
        .await?;
    let Some(token) = started.token.as_deref() else {
        tracing::error!("a web session was created without a cookie token");
        return Err(ApiError::internal());
    };
    count("verify", if created { "signed_up" } else { "signed_in" });
    tracing::info!(user_id = %user.id, account = %wallet.account_id(), created, "signed in with Ethereum");
    let mut response = reply(&started.session.id, &user, wallet);
    response.headers_mut().append(
        SET_COOKIE,
        session_cookie::set(&oauth.cookies, token, &started.session),
    );
    Ok(response)
}
