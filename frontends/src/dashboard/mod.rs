//! The dashboard contract, `/api/v1/auth/*` (CONTRACTS.md §1; as built:
//! `docs/contracts/dashboard.md`).
//!
//! The dashboard web app keeps its access token in memory only; the refresh
//! token lives in an httpOnly cookie this backend owns (`tachigo_refresh`, path
//! `/api/v1/auth`), and a page reload restores the session by calling `/refresh`.
//! CORS allows `server.trusted_origins` with credentials (the dispatcher answers
//! preflights and decorates responses); cookie-authenticated changes also pass
//! the CSRF origin check. Errors are `{"error":{"code","message"}}`.
//!
//! One file per endpoint family, plus the pieces they share: `refresh_cookie`
//! (where a refresh token comes from), `session_tokens` (what a login or refresh
//! hands out), `access` (bearer authentication), `login_limits`, `wire` (the
//! JSON shapes). The password life cycle (`email_verification`,
//! `password_reset`, `password_change`) shares `mail_links` (the dashboard
//! pages its mails link to), `mail_limits` (the per-IP brake on requests that
//! mail) and `lifecycle_errors`.

mod access;
mod email_verification;
mod lifecycle_errors;
mod login;
mod login_limits;
mod logout;
mod mail_limits;
mod mail_links;
mod me;
mod password_change;
mod password_reset;
mod refresh;
mod refresh_cookie;
mod register;
mod session_tokens;
mod sessions;
mod wire;

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::Arc;

use tachigo_engine::access_token::AccessClaims;
use tachigo_engine::Engine;
use warp::{Filter, Rejection};

use crate::common::cookies::CookieSettings;
use crate::common::cors::CorsPolicy;
use crate::common::dispatcher::Mount;
use crate::common::error::{recover, ErrorStyle};
use crate::common::route_table::RouteTable;
use crate::common::verified_tokens::VerifiedTokens;
use crate::common::{json_body, optional_json_body, request_context};
use crate::AppState;
use http::Method;

pub use login_limits::{PER_ACCOUNT as LOGIN_LIMIT_PER_ACCOUNT, PER_IP as LOGIN_LIMIT_PER_IP};
pub use refresh_cookie::{COOKIE_NAME as REFRESH_COOKIE, COOKIE_PATH as REFRESH_COOKIE_PATH};

pub(crate) use access::authenticate_bearer;

pub const PREFIX: &str = "/api/v1/auth/";

/// What the contract's handlers share, built once at mount.
pub(crate) struct Dashboard {
    engine: Engine,
    cookies: CookieSettings,
    trusted_origins: Arc<HashSet<String>>,
    allow_signup: bool,
    refresh_body_fallback: bool,
    refresh_idle_ttl_secs: i64,
    limits: login_limits::LoginLimits,
    /// Requests that may mail, per client IP (`email.requests_per_minute`).
    mail_limits: mail_limits::MailLimits,
    /// The dashboard pages mailed links point to.
    links: mail_links::MailLinks,
    /// Access tokens whose signature already verified (see `access`).
    verified_tokens: VerifiedTokens<AccessClaims>,
}

/// Access tokens remembered as verified, at most (about 400 bytes each).
const VERIFIED_TOKENS_CAPACITY: usize = 32_768;

fn with_dashboard(
    dashboard: &Arc<Dashboard>,
) -> impl Filter<Extract = (Arc<Dashboard>,), Error = Infallible> + Clone {
    let dashboard = dashboard.clone();
    warp::any().map(move || dashboard.clone())
}

/// What this contract serves (metric labels, CORS methods).
pub fn route_table() -> RouteTable {
    RouteTable::new(&[
        (Method::POST, "/api/v1/auth/register"),
        (Method::POST, "/api/v1/auth/login"),
        (Method::POST, "/api/v1/auth/refresh"),
        (Method::POST, "/api/v1/auth/logout"),
        (Method::GET, "/api/v1/auth/me"),
        (Method::GET, "/api/v1/auth/sessions"),
        (Method::POST, "/api/v1/auth/sessions/revoke-others"),
        (Method::DELETE, "/api/v1/auth/sessions/{id}"),
        (Method::POST, "/api/v1/auth/verify-email"),
        (Method::POST, "/api/v1/auth/send-verification-email"),
        (Method::POST, "/api/v1/auth/forgot-password"),
        (Method::POST, "/api/v1/auth/reset-password"),
        (Method::POST, "/api/v1/auth/change-password"),
    ])
}

pub fn mount(state: &AppState) -> Mount {
    let config = &state.config;
    let dashboard = Arc::new(Dashboard {
        engine: state.engine.clone(),
        cookies: state.cookies.clone(),
        trusted_origins: state.trusted_origins.clone(),
        allow_signup: config.dashboard.allow_signup,
        refresh_body_fallback: config.dashboard.refresh_body_fallback,
        refresh_idle_ttl_secs: config.tokens.refresh_idle_ttl.as_millis_i64() / 1000,
        limits: login_limits::LoginLimits::default(),
        mail_limits: mail_limits::MailLimits::new(config.email.requests_per_minute),
        links: mail_links::MailLinks::from_config(&config.email),
        verified_tokens: VerifiedTokens::new(VERIFIED_TOKENS_CAPACITY, |claims| claims.exp),
    });
    let d = &dashboard;

    let register = warp::path!("api" / "v1" / "auth" / "register")
        .and(warp::post())
        .and(register::signup_allowed(d))
        .and(with_dashboard(d))
        .and(request_context())
        .and(json_body())
        .and_then(register::handle);
    let login = warp::path!("api" / "v1" / "auth" / "login")
        .and(warp::post())
        .and(with_dashboard(d))
        .and(request_context())
        .and(json_body())
        .and_then(login::handle);
    let refresh = warp::path!("api" / "v1" / "auth" / "refresh")
        .and(warp::post())
        .and(with_dashboard(d))
        .and(request_context())
        .and(warp::header::headers_cloned())
        .and(optional_json_body())
        .and_then(refresh::handle);
    let logout = warp::path!("api" / "v1" / "auth" / "logout")
        .and(warp::post())
        .and(with_dashboard(d))
        .and(request_context())
        .and(warp::header::headers_cloned())
        .and(optional_json_body())
        .and_then(logout::handle);
    let me = warp::path!("api" / "v1" / "auth" / "me")
        .and(warp::get())
        .and(with_dashboard(d))
        .and(warp::header::headers_cloned())
        .and_then(me::handle);
    let list_sessions = warp::path!("api" / "v1" / "auth" / "sessions")
        .and(warp::get())
        .and(with_dashboard(d))
        .and(warp::header::headers_cloned())
        .and_then(sessions::list);
    let revoke_others = warp::path!("api" / "v1" / "auth" / "sessions" / "revoke-others")
        .and(warp::post())
        .and(with_dashboard(d))
        .and(warp::header::headers_cloned())
        .and_then(sessions::revoke_others);
    let revoke_one = warp::path!("api" / "v1" / "auth" / "sessions" / String)
        .and(warp::delete())
        .and(with_dashboard(d))
        .and(warp::header::headers_cloned())
        .and_then(sessions::revoke_one);
    let verify_email = warp::path!("api" / "v1" / "auth" / "verify-email")
        .and(warp::post())
        .and(with_dashboard(d))
        .and(json_body())
        .and_then(email_verification::verify);
    let send_verification = warp::path!("api" / "v1" / "auth" / "send-verification-email")
        .and(warp::post())
        .and(with_dashboard(d))
        .and(request_context())
        .and(warp::header::headers_cloned())
        .and_then(email_verification::send);
    let forgot_password = warp::path!("api" / "v1" / "auth" / "forgot-password")
        .and(warp::post())
        .and(with_dashboard(d))
        .and(request_context())
        .and(json_body())
        .and_then(password_reset::forgot);
    let reset_password = warp::path!("api" / "v1" / "auth" / "reset-password")
        .and(warp::post())
        .and(with_dashboard(d))
        .and(json_body())
        .and_then(password_reset::reset);
    let change_password = warp::path!("api" / "v1" / "auth" / "change-password")
        .and(warp::post())
        .and(with_dashboard(d))
        .and(request_context())
        .and(warp::header::headers_cloned())
        .and(json_body())
        .and_then(password_change::handle);

    let routes = register
        .or(login)
        .unify()
        .or(refresh)
        .unify()
        .or(logout)
        .unify()
        .or(me)
        .unify()
        .or(list_sessions)
        .unify()
        .or(revoke_others)
        .unify()
        .or(revoke_one)
        .unify()
        .or(verify_email)
        .unify()
        .or(send_verification)
        .unify()
        .or(forgot_password)
        .unify()
        .or(reset_password)
        .unify()
        .or(change_password)
        .unify()
        .recover(|r: Rejection| recover(ErrorStyle::V1, r))
        .unify()
        .boxed();
    Mount {
        name: "dashboard",
        prefix: PREFIX,
        cors: Some(CorsPolicy::with_credentials(
            state.trusted_origins.as_ref().clone(),
        )),
        table: route_table(),
        routes,
        direct: None,
    }
}
