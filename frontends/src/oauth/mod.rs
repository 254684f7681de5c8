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
//! One file per endpoint family (`sign_in`, `callback`, `get_session`,
//! `sign_out`, `sessions`, `accounts`) plus what they share: `authorization`
//! (starting a provider flow), `callback_urls` (the open-redirect rules),
//! `session_cookie`, `state_cookie` and `wire` (the JSON shapes).

mod accounts;
mod authorization;
mod callback;
mod callback_urls;
mod get_session;
mod session_cookie;
mod sessions;
mod sign_in;
mod sign_out;
mod state_cookie;
mod wire;

use std::collections::HashSet;
use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;

use serde::de::IgnoredAny;
use tachigo_engine::oauth_providers::{PendingAuthorizations, Providers};
use tachigo_engine::Engine;
use warp::{Filter, Rejection, Reply};

use crate::common::cookies::CookieSettings;
use crate::common::cors::CorsPolicy;
use crate::common::dispatcher::Mount;
use crate::common::error::{recover, ErrorStyle};
use crate::common::rate_limit::{KeyedLimiter, Limit};
use crate::common::route_table::RouteTable;
use crate::common::{json_body, optional_json_body, request_context};
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

/// What this contract serves (metric labels, CORS methods).
pub fn route_table() -> RouteTable {
    RouteTable::new(&[
        (Method::GET, "/api/auth/get-session"),
        (Method::POST, "/api/auth/sign-in/social"),
        (Method::GET, "/api/auth/sign-in/social/{provider}"),
        (Method::GET, "/api/auth/callback/{provider}"),
        (Method::POST, "/api/auth/sign-out"),
        (Method::GET, "/api/auth/list-sessions"),
        (Method::POST, "/api/auth/revoke-session"),
        (Method::POST, "/api/auth/revoke-sessions"),
        (Method::POST, "/api/auth/revoke-other-sessions"),
        (Method::GET, "/api/auth/list-accounts"),
        (Method::POST, "/api/auth/link-social"),
        (Method::POST, "/api/auth/unlink-account"),
        (Method::GET, "/api/auth/ok"),
    ])
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
            state.trusted_origins.clone(),
            config.limits.max_callback_url_bytes,
        ),
        trusted_providers: config.oauth.trusted_providers.iter().cloned().collect(),
        starts_per_ip: KeyedLimiter::new(Limit {
            per_minute: config.limits.oauth_starts_per_minute,
            burst: config.limits.oauth_starts_burst,
        }),
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
        .boxed();
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
        table: route_table(),
        routes,
    }
}
