//! The provider's tokens of the caller's own linked accounts, Better Auth's
//! account-token endpoints. Each needs a live session cookie (else 401
//! `UNAUTHORIZED`); the POSTs pass the CSRF origin check first.
//!
//! - `POST /get-access-token {providerId?, accountId?, userId?}`: a valid
//!   access token, refreshed at the provider first when it has expired →
//!   `{accessToken, accessTokenExpiresAt, scopes, idToken?}`;
//! - `POST /refresh-token {providerId?, accountId?, userId?}`: refreshes now →
//!   `{accessToken, refreshToken, accessTokenExpiresAt, refreshTokenExpiresAt,
//!   scope, idToken, providerId, accountId}`;
//! - `GET /account-info?accountId=&providerId=`: the provider's userinfo with
//!   a valid access token → `{user: {id, name, email, image, emailVerified},
//!   data: {…every claim…}, account: {id, providerId, accountId}}`.
//!
//! An account is named by `accountId` (its listed id `<provider>:<subject>`,
//! or its subject) and/or `providerId` (alone: the first account of that
//! provider). Only the caller's accounts are reachable: a `userId` other than
//! the caller's, or another user's account, is 400 `ACCOUNT_NOT_FOUND`.
//! Without `oauth.token_encryption_key_file` nothing is kept and every call is
//! 501 `PROVIDER_TOKENS_NOT_KEPT`. Also: 400 `ACCESS_TOKEN_NOT_FOUND` /
//! `REFRESH_TOKEN_NOT_FOUND` (none kept for the account), 400
//! `FAILED_TO_GET_ACCESS_TOKEN` / `FAILED_TO_REFRESH_ACCESS_TOKEN` (the provider
//! refused the refresh: the account stays linked, its tokens unchanged), 400
//! `PROVIDER_NOT_SUPPORTED` (its provider is no longer configured), 502
//! `PROVIDER_UNAVAILABLE` / `FAILED_TO_GET_USER_INFO`.

use std::collections::HashMap;
use std::sync::Arc;

use http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use tachigo_engine::oauth_providers::{Provider, ProviderTokens};
use tachigo_engine::{EngineError, LinkedAccount, ProviderIdentity};
use warp::http::Response;
use warp::{Filter, Rejection, Reply};

use super::email_errors::validation_error;
use super::session_cookie::{self, Caller};
use super::validated_body::validated_body;
use super::wire::Iso;
use super::{with_oauth, OAuth};
use crate::common::{ApiError, Body};

/// The longest `providerId`, `accountId` or `userId` accepted.
const MAX_SELECTOR_CHARS: usize = 512;

/// Which of the caller's accounts: the body of both POSTs, the query of `account-info`.
#[derive(Deserialize, Default)]
pub(crate) struct AccountSelection {
    #[serde(rename = "providerId", default)]
    provider_id: Option<String>,
    #[serde(rename = "accountId", default)]
    account_id: Option<String>,
    #[serde(rename = "userId", default)]
    user_id: Option<String>,
}

impl AccountSelection {
    fn check(&self) -> Result<(), ApiError> {
        for (field, value) in [
            ("providerId", &self.provider_id),
            ("accountId", &self.account_id),
            ("userId", &self.user_id),
        ] {
            if let Some(v) = value {
                if v.is_empty() || v.chars().count() > MAX_SELECTOR_CHARS {
                    return Err(validation_error(
                        field,
                        format!("must be 1 to {MAX_SELECTOR_CHARS} characters"),
                    ));
                }
            }
        }
        if self.provider_id.is_none() && self.account_id.is_none() {
            return Err(validation_error(
                "",
                "name the account: accountId or providerId",
            ));
        }
        Ok(())
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AccessTokenJson {
    access_token: String,
    access_token_expires_at: Option<Iso>,
    scopes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id_token: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RefreshedJson {
    access_token: String,
    refresh_token: Option<String>,
    access_token_expires_at: Option<Iso>,
    refresh_token_expires_at: Option<Iso>,
    /// Comma-separated, as Better Auth stores an account's scopes.
    scope: String,
    id_token: Option<String>,
    provider_id: String,
    /// The account's listed id.
    account_id: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct InfoUserJson {
    id: String,
    name: Option<String>,
    email: Option<String>,
    image: Option<String>,
    email_verified: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct InfoAccountJson {
    id: String,
    provider_id: String,
    account_id: String,
}

#[derive(Serialize)]
struct AccountInfoJson {
    user: InfoUserJson,
    data: serde_json::Map<String, serde_json::Value>,
    account: InfoAccountJson,
}

fn listed_id(account: &LinkedAccount) -> String {
    format!("{}:{}", account.provider, account.subject)
}

/// Which endpoint an engine failure is answered for.
#[derive(Clone, Copy)]
enum Endpoint {
    GetAccessToken,
    RefreshToken,
    AccountInfo,
}

fn answer(e: EngineError, endpoint: Endpoint) -> ApiError {
    match e {
        EngineError::ProviderTokensNotKept => ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "provider_tokens_not_kept",
            "this server does not keep provider tokens (no oauth.token_encryption_key_file is configured)",
        ),
        EngineError::AccountNotFound => {
            ApiError::bad_request("account_not_found", "no such linked account")
        }
        EngineError::ProviderTokensNotFound => match endpoint {
            Endpoint::RefreshToken => ApiError::bad_request(
                "refresh_token_not_found",
                "no provider tokens are kept for this account; sign in with the provider again",
            ),
            _ => ApiError::bad_request(
                "access_token_not_found",
                "no provider tokens are kept for this account; sign in with the provider again",
            ),
        },
        EngineError::NoProviderRefreshToken => ApiError::bad_request(
            "refresh_token_not_found",
            "the provider issued no refresh token for this account",
        ),
        EngineError::ProviderRefusedRefresh(code) => {
            let message = format!(
                "the provider refused to refresh the access token (`{code}`); the account stays linked: sign in with the provider again for new tokens"
            );
            match endpoint {
                Endpoint::RefreshToken => {
                    ApiError::bad_request("failed_to_refresh_access_token", message)
                }
                _ => ApiError::bad_request("failed_to_get_access_token", message),
            }
        }
        EngineError::ProviderUnavailable(_) => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "provider_unavailable",
            "the provider could not be reached; try again",
        ),
        other => other.into(),
    }
}

/// The caller's account the selection names, and its configured provider.
async fn resolve(
    oauth: &OAuth,
    caller: &Caller,
    selection: &AccountSelection,
    endpoint: Endpoint,
) -> Result<(LinkedAccount, Arc<Provider>), ApiError> {
    if !oauth.engine.keeps_provider_tokens() {
        return Err(answer(EngineError::ProviderTokensNotKept, endpoint));
    }
    if selection
        .user_id
        .as_deref()
        .is_some_and(|id| id != caller.user_id())
    {
        return Err(answer(EngineError::AccountNotFound, endpoint));
    }
    let account = oauth
        .engine
        .find_linked_account(
            caller.user_id(),
            selection.provider_id.as_deref(),
            selection.account_id.as_deref(),
        )
        .await
        .map_err(|e| answer(e, endpoint))?;
    let provider = oauth
        .providers
        .get(&account.provider)
        .cloned()
        .ok_or_else(|| {
            ApiError::bad_request(
                "provider_not_supported",
                format!("provider `{}` is no longer configured", account.provider),
            )
        })?;
    Ok((account, provider))
}

fn reply_json<T: Serialize>(oauth: &OAuth, caller: &Caller, body: &T) -> Response<Body> {
    let mut response = warp::reply::json(body).into_response();
    response.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    caller.refresh_cookie(&oauth.cookies, &mut response);
    response
}

/// The POSTs' common start: a live session from a trusted origin (CSRF), a
/// well-formed selection, and the caller's account it names.
async fn changing_caller_and_account(
    oauth: &OAuth,
    headers: &HeaderMap,
    selection: &AccountSelection,
    endpoint: Endpoint,
) -> Result<(Caller, LinkedAccount, Arc<Provider>), ApiError> {
    let caller =
        session_cookie::require_for_change(&oauth.engine, &oauth.trusted_origins, headers).await?;
    selection.check()?;
    let (account, provider) = resolve(oauth, &caller, selection, endpoint).await?;
    Ok((caller, account, provider))
}

async fn get_access_token(
    oauth: Arc<OAuth>,
    headers: HeaderMap,
    selection: AccountSelection,
) -> Result<Response<Body>, Rejection> {
    let endpoint = Endpoint::GetAccessToken;
    let (caller, account, provider) =
        changing_caller_and_account(&oauth, &headers, &selection, endpoint)
            .await
            .map_err(ApiError::reject)?;
    let tokens = oauth
        .engine
        .provider_access_token(caller.user_id(), &account, &provider)
        .await
        .map_err(|e| answer(e, endpoint).reject())?;
    Ok(reply_json(
        &oauth,
        &caller,
        &AccessTokenJson {
            access_token: tokens.access_token,
            access_token_expires_at: tokens.access_token_expires_at.map(Iso),
            scopes: tokens.scopes,
            id_token: tokens.id_token,
        },
    ))
}

async fn refresh_token(
    oauth: Arc<OAuth>,
    headers: HeaderMap,
    selection: AccountSelection,
) -> Result<Response<Body>, Rejection> {
    let endpoint = Endpoint::RefreshToken;
    let (caller, account, provider) =
        changing_caller_and_account(&oauth, &headers, &selection, endpoint)
            .await
            .map_err(ApiError::reject)?;
    let tokens: ProviderTokens = oauth
        .engine
        .refresh_provider_tokens(caller.user_id(), &account, &provider)
        .await
        .map_err(|e| answer(e, endpoint).reject())?;
    Ok(reply_json(
        &oauth,
        &caller,
        &RefreshedJson {
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
            access_token_expires_at: tokens.access_token_expires_at.map(Iso),
            refresh_token_expires_at: tokens.refresh_token_expires_at.map(Iso),
            scope: tokens.scopes.join(","),
            id_token: tokens.id_token,
            provider_id: account.provider.clone(),
            account_id: listed_id(&account),
        },
    ))
}

async fn account_info(
    oauth: Arc<OAuth>,
    cookie_header: Option<String>,
    raw_query: String,
) -> Result<Response<Body>, Rejection> {
    let caller = session_cookie::require(&oauth.engine, cookie_header.as_deref())
        .await
        .map_err(ApiError::reject)?;
    let mut query: HashMap<String, String> = HashMap::new();
    for (name, value) in url::form_urlencoded::parse(raw_query.as_bytes()) {
        if query
            .insert(name.into_owned(), value.into_owned())
            .is_some()
            || query.len() > 8
        {
            return Err(ApiError::bad_request(
                "validation_error",
                "[query] a parameter is repeated, or there are too many",
            )
            .reject());
        }
    }
    let selection = AccountSelection {
        provider_id: query.remove("providerId"),
        account_id: query.remove("accountId"),
        user_id: query.remove("userId"),
    };
    selection.check().map_err(ApiError::reject)?;
    let endpoint = Endpoint::AccountInfo;
    let (account, provider) = resolve(&oauth, &caller, &selection, endpoint)
        .await
        .map_err(ApiError::reject)?;
    let tokens = oauth
        .engine
        .provider_access_token(caller.user_id(), &account, &provider)
        .await
        .map_err(|e| answer(e, endpoint).reject())?;
    let info = provider
        .account_info(&tokens.access_token, &account.subject)
        .await
        .map_err(|e| {
            tracing::debug!(provider = provider.name(), error = %e, "account-info: userinfo failed");
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                "failed_to_get_user_info",
                "the provider did not describe the account",
            )
            .reject()
        })?;
    Ok(reply_json(
        &oauth,
        &caller,
        &AccountInfoJson {
            user: InfoUserJson {
                id: info.subject,
                name: info.name,
                email: info.email,
                image: info.image,
                email_verified: info.email_verified,
            },
            data: info.data,
            account: InfoAccountJson {
                id: listed_id(&account),
                provider_id: account.provider.clone(),
                account_id: account.subject.clone(),
            },
        },
    ))
}

/// After a provider sign-in or link: keeps the tokens it brought with the
/// account (sealed), when a token key is configured. A failure is logged and
/// never fails the sign-in.
pub(crate) async fn keep(oauth: &OAuth, identity: &ProviderIdentity, tokens: &ProviderTokens) {
    if !oauth.engine.keeps_provider_tokens() {
        return;
    }
    let owner = match oauth
        .engine
        .user_id_by_account(&identity.provider, &identity.subject)
        .await
    {
        Ok(Some(owner)) => owner,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(error = %e, provider = %identity.provider, "could not keep the provider's tokens");
            return;
        }
    };
    if let Err(e) = oauth
        .engine
        .keep_provider_tokens(&owner, &identity.provider, &identity.subject, tokens)
        .await
    {
        tracing::warn!(error = %e, provider = %identity.provider, "could not keep the provider's tokens");
    }
}

/// `get-access-token`, `refresh-token` and `account-info`, boxed as one.
pub(crate) fn routes(o: &Arc<OAuth>) -> warp::filters::BoxedFilter<(Response<Body>,)> {
    let get_access = warp::path!("api" / "auth" / "get-access-token")
        .and(warp::post())
        .and(with_oauth(o))
        .and(warp::header::headers_cloned())
        .and(validated_body())
        .and_then(get_access_token);
    let refresh = warp::path!("api" / "auth" / "refresh-token")
        .and(warp::post())
        .and(with_oauth(o))
        .and(warp::header::headers_cloned())
        .and(validated_body())
        .and_then(refresh_token);
    let info = warp::path!("api" / "auth" / "account-info")
        .and(warp::get())
        .and(with_oauth(o))
        .and(warp::header::optional::<String>("cookie"))
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and_then(account_info);
    get_access.or(refresh).unify().or(info).unify().boxed()
}
