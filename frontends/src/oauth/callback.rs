//! `GET /callback/{provider}?code=&state=`: where the provider sends the
//! browser back. It never renders anything: success is a 302 to `callbackURL`
//! (or `newUserCallbackURL` for a user created just now) with the session
//! cookie set; any failure is a 302 to the error callback with
//! `?error=<code>`, and nothing is created. The state cookie is cleared either way.
//!
//! The `state` is taken first (single use, so a replay or a second tab's
//! callback finds nothing), then must have been started by this browser (its
//! state cookie) for this provider; only then is the provider's answer
//! believed. The tokens the provider issued are kept with the account
//! (sealed) when a token key is configured. Error codes:
//!
//! | code | why |
//! |---|---|
//! | the provider's own (`access_denied`, …) | the provider redirected with `error=` |
//! | `state_not_found` | no `state`, or one never issued or already used |
//! | `state_expired` | the flow took longer than ten minutes |
//! | `state_mismatch` | the state cookie is missing or another flow's, or another provider's callback |
//! | `no_code` | no `code` in the callback |
//! | `oauth_provider_not_found` | the provider is no longer configured |
//! | `provider_unavailable` | the provider could not be reached or answered nonsense |
//! | `invalid_code` | the token endpoint refused the code (or PKCE verifier) |
//! | `invalid_id_token` | missing id_token, or bad signature / `iss` / `aud` / `exp` / `nonce` |
//! | `unable_to_get_user_info` | userinfo failed or named another subject |
//! | `account_not_linked` | a user with that email exists and the linking rule does not allow joining it |
//! | `account_already_linked_to_different_user` | `link-social` for an account another user owns |
//! | `session_expired` | `link-social`'s session ended (sign-out, revocation) before the callback: nothing is linked |
//! | `unable_to_link_account` · `unable_to_create_user` · `unable_to_create_session` | the engine failed |

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use http::HeaderValue;
use tachigo_engine::oauth_providers::TakenState;
use tachigo_engine::PendingAuthorization;
use tachigo_engine::{EngineError, NewSession, ProviderIdentity, Surface};
use warp::http::Response;
use warp::Rejection;

use super::callback_urls::{redirect_to, with_error};
use super::{provider_tokens, session_cookie, state_cookie, OAuth};
use crate::common::log_sampling::LogSampler;
use crate::common::{Body, RequestContext};

struct Success {
    location: String,
    session_cookie: Option<HeaderValue>,
    outcome: &'static str,
}

struct Failure {
    error_url: String,
    code: Cow<'static, str>,
}

fn failure(error_url: &str, code: &'static str) -> Failure {
    Failure {
        error_url: error_url.to_string(),
        code: Cow::Borrowed(code),
    }
}

/// A provider's `error=` value, passed on only when it looks like an OAuth error code.
fn provider_error_code(raw: &str) -> Cow<'static, str> {
    let plain = (1..=64).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if plain {
        Cow::Owned(raw.to_string())
    } else {
        Cow::Borrowed("oauth_provider_error")
    }
}

pub async fn handle(
    provider: String,
    oauth: Arc<OAuth>,
    context: RequestContext,
    cookie_header: Option<String>,
    raw_query: String,
) -> Result<Response<Body>, Rejection> {
    let params: HashMap<String, String> = url::form_urlencoded::parse(raw_query.as_bytes())
        .into_owned()
        .collect();
    let outcome = complete(
        &oauth,
        &provider,
        &context,
        cookie_header.as_deref(),
        &params,
    )
    .await;
    // Only configured names become metric labels: the path segment is the caller's.
    let label = if oauth.providers.get(&provider).is_some() {
        provider.clone()
    } else {
        "unknown".to_string()
    };
    let clear_state = state_cookie::clear(&oauth.cookies);
    Ok(match outcome {
        Ok(success) => {
            metrics::counter!("tachigo_oauth_callbacks_total", "provider" => label, "outcome" => success.outcome)
                .increment(1);
            let mut cookies = vec![clear_state];
            cookies.extend(success.session_cookie);
            redirect_to(&success.location, cookies)
        }
        Err(failure) => {
            // A client error, and anyone can send one: the counter is the record.
            tracing::debug!(provider = %label, error = %failure.code, "OAuth callback failed");
            metrics::counter!("tachigo_oauth_callbacks_total", "provider" => label, "outcome" => "error")
                .increment(1);
            redirect_to(
                &with_error(&failure.error_url, &failure.code),
                vec![clear_state],
            )
        }
    })
}

async fn complete(
    oauth: &OAuth,
    provider_name: &str,
    context: &RequestContext,
    cookie_header: Option<&str>,
    params: &HashMap<String, String>,
) -> Result<Success, Failure> {
    let default_error = oauth.redirects.default_error();
    let Some(state) = params.get("state") else {
        return Err(failure(default_error, "state_not_found"));
    };
    let record = match oauth.pending.take(state).await {
        Ok(TakenState::Live(record)) => *record,
        Ok(TakenState::Expired(record)) => {
            return Err(failure(&record.error_callback_url, "state_expired"))
        }
        Ok(TakenState::Unknown) => return Err(failure(default_error, "state_not_found")),
        Err(e) => {
            tracing::error!(error = %e, "could not read the OAuth state");
            return Err(failure(default_error, "internal_server_error"));
        }
    };
    let error_url = record.error_callback_url.as_str();
    if record.provider != provider_name
        || !state_cookie::presented_matches(cookie_header, &record.binding_hash)
    {
        return Err(failure(error_url, "state_mismatch"));
    }
    if let Some(error) = params.get("error") {
        return Err(Failure {
            error_url: error_url.to_string(),
            code: provider_error_code(error),
        });
    }
    let Some(code) = params.get("code").filter(|c| !c.is_empty()) else {
        return Err(failure(error_url, "no_code"));
    };
    let Some(provider) = oauth.providers.get(provider_name) else {
        return Err(failure(error_url, "oauth_provider_not_found"));
    };
    let nonce = record.nonce.as_deref().unwrap_or_default();
    let signed_in = provider
        .finish(code, &record.pkce_verifier, nonce)
        .await
        .map_err(|e| {
            // A provider that cannot be reached is the operator's concern; a
            // refused code or token is the caller's, and anyone can send one.
            static UNAVAILABLE_LOG: LogSampler = LogSampler::every_secs(10);
            if e.code() == "provider_unavailable" {
                if let Some(skipped) = UNAVAILABLE_LOG.admit() {
                    tracing::warn!(provider = provider_name, error = %e, failures_not_logged = skipped, "provider sign-in could not be completed");
                }
            } else {
                tracing::debug!(provider = provider_name, error = %e, "provider sign-in was refused");
            }
            failure(error_url, e.code())
        })?;
    let identity = &signed_in.identity;
    let outcome = match &record.link_user_id {
        Some(user_id) => link(oauth, &record, user_id, identity).await,
        None => sign_in(oauth, &record, context, identity).await,
    };
    if outcome.is_ok() {
        provider_tokens::keep(oauth, identity, &signed_in.tokens).await;
    }
    outcome
}

/// `link-social`'s callback: the account joins the user who asked, no new
/// session — and only while the session that asked is still live, so a flow
/// left behind by a signed-out user cannot link whoever completes it.
async fn link(
    oauth: &OAuth,
    record: &PendingAuthorization,
    user_id: &str,
    identity: &ProviderIdentity,
) -> Result<Success, Failure> {
    let Some(session_id) = record.link_session_id.as_deref() else {
        return Err(failure(&record.error_callback_url, "session_expired"));
    };
    match oauth.engine.live_session(user_id, session_id).await {
        Ok(_) => {}
        Err(EngineError::SessionInvalid | EngineError::SessionNotFound) => {
            return Err(failure(&record.error_callback_url, "session_expired"))
        }
        Err(e) => {
            tracing::error!(error = %e, "checking the linking session failed");
            return Err(failure(
                &record.error_callback_url,
                "unable_to_link_account",
            ));
        }
    }
    match oauth.engine.link_account(user_id, identity).await {
        Ok(_) => Ok(Success {
            location: record.callback_url.clone(),
            session_cookie: None,
            outcome: "linked",
        }),
        Err(EngineError::AccountTaken) => Err(failure(
            &record.error_callback_url,
            "account_already_linked_to_different_user",
        )),
        Err(e) => {
            tracing::error!(error = %e, "linking a provider account failed");
            Err(failure(
                &record.error_callback_url,
                "unable_to_link_account",
            ))
        }
    }
}

/// A sign-in: find or create the user (the linking rule decides whether a
/// verified email joins an existing one), then a web session and its cookie.
async fn sign_in(
    oauth: &OAuth,
    record: &PendingAuthorization,
    context: &RequestContext,
    identity: &ProviderIdentity,
) -> Result<Success, Failure> {
    let error_url = record.error_callback_url.as_str();
    let may_join_by_email = oauth.trusted_providers.contains(&identity.provider);
    let (user, created) = oauth
        .engine
        .find_or_create_by_account(identity, may_join_by_email)
        .await
        .map_err(|e| match e {
            EngineError::AccountNotLinked => failure(error_url, "account_not_linked"),
            other => {
                tracing::error!(error = %other, "finding or creating the user failed");
                failure(error_url, "unable_to_create_user")
            }
        })?;
    let created_session = oauth
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
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "creating the web session failed");
            failure(error_url, "unable_to_create_session")
        })?;
    let Some(token) = created_session.token.as_deref() else {
        tracing::error!("a web session was created without a cookie token");
        return Err(failure(error_url, "unable_to_create_session"));
    };
    tracing::info!(user_id = %user.id, provider = %identity.provider, created, "signed in through a provider");
    let location = match (&record.new_user_callback_url, created) {
        (Some(new_user), true) => new_user.clone(),
        _ => record.callback_url.clone(),
    };
    Ok(Success {
        location,
        session_cookie: Some(session_cookie::set(
            &oauth.cookies,
            token,
            &created_session.session,
        )),
        outcome: if created { "signed_up" } else { "signed_in" },
    })
}
