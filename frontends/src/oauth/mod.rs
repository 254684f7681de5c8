//! The backend-first OAuth contract, `/api/auth/*`, Better Auth wire-compatible
//! (CONTRACTS.md §3; as built: `docs/contracts/oauth.md`).
//!
//! A Next.js frontend starts social sign-in with the Better Auth client
//! (`sign-in/social`), the provider calls back into this backend
//! (`callback/{provider}`), which verifies everything, finds or creates the
//! user, sets the session cookie and redirects back — never an intermediate
//! page. The frontend then only reads `get-session` with credentials.
//! CORS allows `server.trusted_origins` with credentials (the dispatcher
//! answers preflights and decorates responses); cookie-authenticated changes
//! pass the CSRF origin check. Errors are Better Auth's `{"code","message"}`.
//!
//! Email and password, as Better Auth's `emailAndPassword` speaks it, sit
//! beside social sign-in on the same users, sessions and session cookie:
//! sign-up, sign-in, address verification, forgot/reset password, change
//! password, profile updates and account deletion, the mails going through
//! the engine's durable mail queue.
//!
//! One file per endpoint family (`sign_in`, `callback`, `form_post_callback`, `get_session`,
//! `sign_out`, `sessions`, `accounts`, `sign_up_email`, `sign_in_email`,
//! `verification`, `password_reset`, `change_password`, `update_user`,
//! `delete_user`, `siwe`) plus what they share: `authorization` (starting a provider
//! flow), `callback_urls` (the open-redirect rules), `session_cookie`,
//! `state_cookie`, `web_session` (a password sign-in's session),
//! `browser_origin` (login CSRF), `email_limits`, `password_rules`,
//! `validated_body`, `email_errors` and `wire` (the JSON shapes). The
//! provider's tokens of linked accounts (`get-access-token`, `refresh-token`,
//! `account-info`) are `provider_tokens`.

mod accounts;
mod authorization;
mod browser_origin;
mod callback;
pub(crate) mod callback_urls;
mod change_password;
mod delete_user;
mod email_errors;
mod email_limits;
mod form_post_callback;
mod get_session;
mod password_reset;
mod password_rules;
mod provider_tokens;
pub(crate) mod session_cookie;
mod sessions;
mod sign_in;
mod sign_in_email;
mod sign_out;
mod sign_up_email;
mod siwe;
mod state_cookie;
mod update_user;
mod validated_body;
mod verification;
mod web_session;
mod wire;

use std::collections::HashSet;
use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;

use serde::de::IgnoredAny;
use tachigo_engine::oauth_providers::{PendingAuthorizations, Providers};
use tachigo_engine::siwe::SiweVerifier;
use tachigo_engine::Engine;
use warp::http::Response;
use warp::{Filter, Rejection, Reply};

use crate::common::cookies::CookieSettings;
use crate::common::cors::CorsPolicy;
use crate::common::dispatcher::{DirectRoutes, Mount};
use crate::common::error::{recover, ErrorStyle};
use crate::common::rate_limit::{KeyedLimiter, Limit};
use crate::common::route_table::RouteTable;
use crate::common::{json_body, optional_json_body, request_context, Body};
use crate::AppState;
use http::Method;

pub use session_cookie::COOKIE_NAME as SESSION_COOKIE;
pub use state_cookie::{COOKIE_NAME as STATE_COOKIE, STATE_TTL_SECS};

pub const PREFIX: &str = "/api/auth/";

/// What the contract's handlers share, built once at mount.
pub(crate) struct OAuth {
    engine: Engine,
    providers: Providers,
    pending: PendingAuthorizations,
    cookies: CookieSettings,
    trusted_origins: Arc<HashSet<String>>,
    redirects: callback_urls::RedirectPolicy,
    /// Providers whose verified emails may join an existing user.
    trusted_providers: HashSet<String>,
    /// Provider flows started per client IP (`sign-in/social`, `link-social`).
    starts_per_ip: KeyedLimiter<IpAddr>,
    /// Password attempts and mail requests of the email/password endpoints.
    email_limits: email_limits::EmailLimits,
    /// `{server.public_url}/api/auth`, where mailed links point.
    auth_base: String,
    /// `oauth.allow_email_signup`.
    allow_email_signup: bool,
    /// Sign-In with Ethereum for `oauth.frontend_url` (`siwe/nonce`, `siwe/verify`).
    siwe: SiweVerifier,
}

fn with_oauth(
    oauth: &Arc<OAuth>,
) -> impl Filter<Extract = (Arc<OAuth>,), Error = Infallible> + Clone {
    let oauth = oauth.clone();
    warp::any().map(move || oauth.clone())
}

fn cookie_header() -> impl Filter<Extract = (Option<String>,), Error = Rejection> + Clone {
    warp::header::optional::<String>("cookie")
}

const GET_SESSION: &str = "/api/auth/get-session";

/// What this contract serves (metric labels, CORS methods).
pub fn route_table() -> RouteTable {
    RouteTable::new(&[
        (Method::GET, GET_SESSION),
        (Method::POST, "/api/auth/sign-in/social"),
        (Method::GET, "/api/auth/sign-in/social/{provider}"),
        (Method::GET, "/api/auth/callback/{provider}"),
        (Method::POST, "/api/auth/callback/{provider}"),
        (Method::POST, "/api/auth/sign-out"),
        (Method::GET, "/api/auth/list-sessions"),
        (Method::POST, "/api/auth/revoke-session"),
        (Method::POST, "/api/auth/revoke-sessions"),
        (Method::POST, "/api/auth/revoke-other-sessions"),
        (Method::GET, "/api/auth/list-accounts"),
        (Method::POST, "/api/auth/link-social"),
        (Method::POST, "/api/auth/unlink-account"),
        (Method::GET, "/api/auth/ok"),
        (Method::POST, "/api/auth/sign-up/email"),
        (Method::POST, "/api/auth/sign-in/email"),
        (Method::POST, "/api/auth/send-verification-email"),
        (Method::GET, "/api/auth/verify-email"),
        (Method::POST, "/api/auth/request-password-reset"),
        (Method::GET, "/api/auth/reset-password/{token}"),
        (Method::POST, "/api/auth/reset-password"),
        (Method::POST, "/api/auth/change-password"),
        (Method::POST, "/api/auth/update-user"),
        (Method::POST, "/api/auth/delete-user"),
        (Method::POST, "/api/auth/siwe/nonce"),
        (Method::POST, "/api/auth/siwe/verify"),
        (Method::POST, "/api/auth/get-access-token"),
        (Method::POST, "/api/auth/refresh-token"),
        (Method::GET, "/api/auth/account-info"),
    ])
}

/// The query string as sent, or `""` without one.
fn raw_query() -> impl Filter<Extract = (String,), Error = Infallible> + Clone {
    warp::query::raw().or(warp::any().map(String::new)).unify()
}

/// The email/password routes (Better Auth's `emailAndPassword`), boxed as one.
fn email_routes(o: &Arc<OAuth>) -> warp::filters::BoxedFilter<(Response<Body>,)> {
    use validated_body::validated_body;
    let sign_up = warp::path!("api" / "auth" / "sign-up" / "email")
        .and(warp::post())
        .and(with_oauth(o))
        .and(request_context())
        .and(warp::header::headers_cloned())
        .and(validated_body())
        .and_then(sign_up_email::handle);
    let sign_in = warp::path!("api" / "auth" / "sign-in" / "email")
        .and(warp::post())
        .and(with_oauth(o))
        .and(request_context())
        .and(warp::header::headers_cloned())
        .and(validated_body())
        .and_then(sign_in_email::handle);
    let send_verification = warp::path!("api" / "auth" / "send-verification-email")
        .and(warp::post())
        .and(with_oauth(o))
        .and(request_context())
        .and(warp::header::headers_cloned())
        .and(validated_body())
        .and_then(verification::send);
    let verify = warp::path!("api" / "auth" / "verify-email")
        .and(warp::get())
        .and(with_oauth(o))
        .and(raw_query())
        .and_then(verification::verify);
    let request_reset = warp::path!("api" / "auth" / "request-password-reset")
        .and(warp::post())
        .and(with_oauth(o))
        .and(request_context())
        .and(warp::header::headers_cloned())
        .and(validated_body())
        .and_then(password_reset::request);
    let reset_link = warp::path!("api" / "auth" / "reset-password" / String)
        .and(warp::get())
        .and(with_oauth(o))
        .and(raw_query())
        .and_then(password_reset::open_link);
    let reset = warp::path!("api" / "auth" / "reset-password")
        .and(warp::post())
        .and(with_oauth(o))
        .and(warp::header::headers_cloned())
        .and(raw_query())
        .and(validated_body())
        .and_then(password_reset::reset);
    let change_password = warp::path!("api" / "auth" / "change-password")
        .and(warp::post())
        .and(with_oauth(o))
        .and(request_context())
        .and(warp::header::headers_cloned())
        .and(validated_body())
        .and_then(change_password::handle);
    let update_user = warp::path!("api" / "auth" / "update-user")
        .and(warp::post())
        .and(with_oauth(o))
        .and(warp::header::headers_cloned())
        .and(json_body())
        .and_then(update_user::handle);
    let delete_user = warp::path!("api" / "auth" / "delete-user")
        .and(warp::post())
        .and(with_oauth(o))
        .and(request_context())
        .and(warp::header::headers_cloned())
        .and(validated_body())
        .and_then(delete_user::handle);
    sign_up
        .or(sign_in)
        .unify()
        .or(send_verification)
        .unify()
        .or(verify)
        .unify()
        .or(request_reset)
        .unify()
        .or(reset_link)
        .unify()
        .or(reset)
        .unify()
        .or(change_password)
        .unify()
        .or(update_user)
        .unify()
        .or(delete_user)
        .unify()
        .boxed()
}

/// Sign-In with Ethereum (Better Auth's `siwe`), boxed as one.
fn siwe_routes(o: &Arc<OAuth>) -> warp::filters::BoxedFilter<(Response<Body>,)> {
    use validated_body::validated_body;
    let siwe_nonce = warp::path!("api" / "auth" / "siwe" / "nonce")
        .and(warp::post())
        .and(with_oauth(o))
        .and(request_context())
        .and(warp::header::headers_cloned())
        .and(validated_body())
        .and_then(siwe::nonce);
    let siwe_verify = warp::path!("api" / "auth" / "siwe" / "verify")
        .and(warp::post())
        .and(with_oauth(o))
        .and(request_context())
        .and(warp::header::headers_cloned())
        .and(validated_body())
        .and_then(siwe::verify);
    siwe_nonce.or(siwe_verify).unify().boxed()
}

/// Where a sign-in may send the browser afterwards: the trusted origins and
/// this server's own (the OAuth 2.1 authorization and device pages send users
/// to sign in with a `callbackURL` back to themselves).
fn callback_origins(state: &AppState) -> Arc<HashSet<String>> {
    let mut origins = state.trusted_origins.as_ref().clone();
    if let Some(own) = crate::common::origin_check::origin_of(&state.config.server.public_url) {
        origins.insert(own);
    }
    Arc::new(origins)
}

pub fn mount(state: &AppState) -> Mount {
    let config = &state.config;
    let callback_base = format!(
        "{}{PREFIX}callback/",
        config.server.public_url.trim_end_matches('/')
    );
    let oauth = Arc::new(OAuth {
        engine: state.engine.clone(),
        providers: Providers::from_config(&config.oauth, &callback_base),
        pending: PendingAuthorizations::new(&state.engine, config.limits.max_pending_oauth_states),
        cookies: state.cookies.clone(),
        trusted_origins: state.trusted_origins.clone(),
        redirects: callback_urls::RedirectPolicy::from_config(
            &config.oauth,
            callback_origins(state),
            config.limits.max_callback_url_bytes,
        ),
        trusted_providers: config.oauth.trusted_providers.iter().cloned().collect(),
        starts_per_ip: KeyedLimiter::new(Limit {
            per_minute: config.limits.oauth_starts_per_minute,
            burst: config.limits.oauth_starts_burst,
        }),
        email_limits: email_limits::EmailLimits::new(config.email.requests_per_minute),
        allow_email_signup: config.oauth.allow_email_signup,
        auth_base: format!(
            "{}{}",
            config.server.public_url.trim_end_matches('/'),
            PREFIX.trim_end_matches('/')
        ),
        siwe: SiweVerifier::new(
            &state.engine,
            &config.oauth.frontend_url,
            config.limits.max_pending_oauth_states,
        ),
    });
    let o = &oauth;

    // The hot path first, unboxed.
    let get_session = warp::path!("api" / "auth" / "get-session")
        .and(warp::get())
        .and(with_oauth(o))
        .and(cookie_header())
        .and_then(get_session::handle);
    let sign_in_post = warp::path!("api" / "auth" / "sign-in" / "social")
        .and(warp::post())
        .and(with_oauth(o))
        .and(request_context())
        .and(json_body())
        .and_then(sign_in::post);
    let sign_in_get = warp::path!("api" / "auth" / "sign-in" / "social" / String)
        .and(warp::get())
        .and(with_oauth(o))
        .and(request_context())
        .and(warp::query())
        .and_then(sign_in::get);
    let callback = warp::path!("api" / "auth" / "callback" / String)
        .and(warp::get())
        .and(with_oauth(o))
        .and(request_context())
        .and(cookie_header())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and_then(callback::handle);
    let form_post_callback = warp::path!("api" / "auth" / "callback" / String)
        .and(warp::post())
        .and(with_oauth(o))
        .and(warp::header::optional::<String>("content-type"))
        .and(crate::common::body::limited_bytes())
        .and_then(form_post_callback::handle);
    let sign_out = warp::path!("api" / "auth" / "sign-out")
        .and(warp::post())
        .and(with_oauth(o))
        .and(warp::header::headers_cloned())
        .and(optional_json_body::<IgnoredAny>())
        .and_then(sign_out::handle);
    let list_sessions = warp::path!("api" / "auth" / "list-sessions")
        .and(warp::get())
        .and(with_oauth(o))
        .and(cookie_header())
        .and_then(sessions::list);
    let revoke_session = warp::path!("api" / "auth" / "revoke-session")
        .and(warp::post())
        .and(with_oauth(o))
        .and(warp::header::headers_cloned())
        .and(json_body())
        .and_then(sessions::revoke_one);
    let revoke_sessions = warp::path!("api" / "auth" / "revoke-sessions")
        .and(warp::post())
        .and(with_oauth(o))
        .and(warp::header::headers_cloned())
        .and(optional_json_body::<IgnoredAny>())
        .and_then(sessions::revoke_all);
    let revoke_other_sessions = warp::path!("api" / "auth" / "revoke-other-sessions")
        .and(warp::post())
        .and(with_oauth(o))
        .and(warp::header::headers_cloned())
        .and(optional_json_body::<IgnoredAny>())
        .and_then(sessions::revoke_others);
    let list_accounts = warp::path!("api" / "auth" / "list-accounts")
        .and(warp::get())
        .and(with_oauth(o))
        .and(cookie_header())
        .and_then(accounts::list);
    let link_social = warp::path!("api" / "auth" / "link-social")
        .and(warp::post())
        .and(with_oauth(o))
        .and(request_context())
        .and(warp::header::headers_cloned())
        .and(json_body())
        .and_then(accounts::link);
    let unlink_account = warp::path!("api" / "auth" / "unlink-account")
        .and(warp::post())
        .and(with_oauth(o))
        .and(warp::header::headers_cloned())
        .and(json_body())
        .and_then(accounts::unlink);
    let email = email_routes(o);
    let siwe = siwe_routes(o);
    let ok = warp::path!("api" / "auth" / "ok")
        .and(warp::get())
        .map(|| warp::reply::json(&serde_json::json!({"ok": true})).into_response());

    // Everything but the hot path sits behind one box, so a get-session request
    // never carries (and moves) the much larger futures of the provider flows.
    let rest = sign_in_post
        .or(sign_in_get)
        .unify()
        .or(callback)
        .unify()
        .or(form_post_callback)
        .unify()
        .or(sign_out)
        .unify()
        .or(list_sessions)
        .unify()
        .or(revoke_session)
        .unify()
        .or(revoke_sessions)
        .unify()
        .or(revoke_other_sessions)
        .unify()
        .or(list_accounts)
        .unify()
        .or(link_social)
        .unify()
        .or(unlink_account)
        .unify()
        .or(ok)
        .unify()
        .or(email)
        .unify()
        .or(siwe)
        .unify()
        .or(provider_tokens::routes(o))
        .unify()
        .boxed();
    let table = route_table();
    let get_session_row = table
        .rows()
        .position(|(method, template)| method == Method::GET && template == GET_SESSION)
        .expect("get-session is in the table");
    let direct_oauth = oauth.clone();
    let direct: DirectRoutes = Arc::new(move |row, headers| {
        (row == get_session_row)
            .then(|| get_session::answer_now(&direct_oauth, headers))
            .flatten()
    });
    let routes = get_session
        .or(rest)
        .unify()
        .recover(|r: Rejection| recover(ErrorStyle::BetterAuth, r))
        .unify()
        .boxed();
    Mount {
        name: "oauth",
        prefix: PREFIX,
        cors: Some(CorsPolicy::with_credentials(
            state.trusted_origins.as_ref().clone(),
        )),
        table,
        routes,
        direct: Some(direct),
    }
}
