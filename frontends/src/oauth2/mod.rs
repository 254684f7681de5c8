//! The OAuth 2.1 authorization server for first-party clients, `/oauth2/*`
//! (as built: `docs/contracts/oauth2.md`): native apps, browser extensions,
//! tools and services sign in on the same engine, users and refresh-token
//! families as the three contracts.
//!
//! One file per endpoint: `authorize` (code + PKCE), `token` (the three
//! grants) with `token_response` (access and ID tokens), `device_authorization`
//! and `device_page` (RFC 8628), `revoke` (RFC 7009), `introspect` (RFC 7662),
//! `userinfo`, `metadata` (RFC 8414, OpenID discovery); and what they share:
//! `form` (bounded urlencoded bodies), `client_auth`, `access_tokens` (reading
//! a client's JWT) and `html` (the server's own small pages).
//! Errors are RFC 6749 §5.2 JSON ([`ErrorStyle::OAuth2`]), except where a
//! browser is at the other end: redirects and HTML pages.

mod access_tokens;
mod authorize;
mod client_auth;
mod device_authorization;
mod device_page;
mod form;
mod html;
mod introspect;
mod metadata;
mod revoke;
mod token;
mod token_response;
mod userinfo;

use std::collections::HashSet;
use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;

use http::Method;
use tachigo_engine::clients::ClientRegistry;
use tachigo_engine::Engine;
use warp::{Filter, Rejection};

use crate::common::cookies::CookieSettings;
use crate::common::cors::CorsPolicy;
use crate::common::dispatcher::Mount;
use crate::common::error::{recover, ErrorStyle};
use crate::common::origin_check::origin_of;
use crate::common::rate_limit::{KeyedLimiter, Limit};
use crate::common::request_context;
use crate::common::route_table::RouteTable;
use crate::AppState;

pub const PREFIX: &str = "/oauth2/";
pub const AUTHORIZATION_SERVER_METADATA: &str = "/.well-known/oauth-authorization-server";
pub const OPENID_CONFIGURATION: &str = "/.well-known/openid-configuration";

/// What the endpoints share, built once at mount.
pub(crate) struct OAuth2 {
    engine: Engine,
    clients: ClientRegistry,
    /// `server.public_url` without a trailing slash: `iss` and the endpoints' base.
    issuer: String,
    /// The frontend page that signs users in and returns to `callbackURL`.
    sign_in_url: String,
    code_ttl_ms: i64,
    device_ttl_ms: i64,
    poll_interval_secs: u32,
    /// Authorization codes issued per signed-in user.
    codes_per_user: KeyedLimiter<String>,
    /// Device flows started per client IP.
    device_starts_per_ip: KeyedLimiter<IpAddr>,
    /// User-code look-ups and decisions per signed-in user.
    device_lookups_per_user: KeyedLimiter<String>,
    /// Origins the device page's form may be posted from: this server's own
    /// and `server.trusted_origins`.
    page_origins: HashSet<String>,
    /// The metadata document, rendered once.
    metadata: String,
    /// To re-set the web session cookie when a read slid its expiry.
    cookies: CookieSettings,
}

fn with_oauth2(
    o: &Arc<OAuth2>,
) -> impl Filter<Extract = (Arc<OAuth2>,), Error = Infallible> + Clone {
    let o = o.clone();
    warp::any().map(move || o.clone())
}

/// The query string as sent, or `""` without one.
fn raw_query() -> impl Filter<Extract = (String,), Error = Infallible> + Clone {
    warp::query::raw().or(warp::any().map(String::new)).unify()
}

/// What `/oauth2/*` serves (metric labels, CORS methods).
pub fn route_table() -> RouteTable {
    RouteTable::new(&[
        (Method::GET, "/oauth2/authorize"),
        (Method::POST, "/oauth2/token"),
        (Method::POST, "/oauth2/device_authorization"),
        (Method::GET, "/oauth2/device"),
        (Method::POST, "/oauth2/device"),
        (Method::POST, "/oauth2/revoke"),
        (Method::POST, "/oauth2/introspect"),
        (Method::GET, "/oauth2/userinfo"),
        (Method::POST, "/oauth2/userinfo"),
    ])
}

fn build(state: &AppState) -> Arc<OAuth2> {
    let config = &state.config;
    let issuer = config.server.public_url.trim_end_matches('/').to_string();
    let clients = ClientRegistry::from_config(config).unwrap_or_else(|problem| {
        // The loader and the deployment check refuse such a configuration first.
        tracing::error!("{problem}");
        ClientRegistry::default()
    });
    let sign_in_url = if config.oauth2.sign_in_url.is_empty() {
        format!(
            "{}/sign-in",
            config.oauth.frontend_url.trim_end_matches('/')
        )
    } else {
        config.oauth2.sign_in_url.clone()
    };
    let mut page_origins: HashSet<String> = state.trusted_origins.as_ref().clone();
    if let Some(own) = origin_of(&issuer) {
        page_origins.insert(own);
    }
    Arc::new(OAuth2 {
        engine: state.engine.clone(),
        metadata: metadata::document(&issuer),
        clients,
        sign_in_url,
        code_ttl_ms: config.oauth2.code_ttl.as_millis_i64(),
        device_ttl_ms: config.oauth2.device_code_ttl.as_millis_i64(),
        poll_interval_secs: config.oauth2.device_poll_interval.0.as_secs().max(1) as u32,
        codes_per_user: KeyedLimiter::new(Limit {
            per_minute: 60,
            burst: 30,
        }),
        device_starts_per_ip: KeyedLimiter::new(Limit {
            per_minute: config.limits.device_starts_per_minute,
            burst: config.limits.device_starts_per_minute,
        }),
        device_lookups_per_user: KeyedLimiter::new(Limit {
            per_minute: 10,
            burst: 10,
        }),
        page_origins,
        issuer,
        cookies: state.cookies.clone(),
    })
}

/// The CORS policy of the token, revoke, userinfo and metadata endpoints:
/// `server.trusted_origins` and every client's origins, never with cookies.
fn cors(state: &AppState, o: &OAuth2) -> CorsPolicy {
    let mut origins: HashSet<String> = state.trusted_origins.as_ref().clone();
    origins.extend(o.clients.cors_origins());
    CorsPolicy::without_credentials(origins)
}

/// The `/oauth2/` mount and the two well-known metadata documents.
pub fn mounts(state: &AppState) -> Vec<Mount> {
    let oauth2 = build(state);
    let o = &oauth2;
    let authorize = warp::path!("oauth2" / "authorize")
        .and(warp::get())
        .and(with_oauth2(o))
        .and(warp::header::optional::<String>("cookie"))
        .and(raw_query())
        .and_then(authorize::handle);
    let token = warp::path!("oauth2" / "token")
        .and(warp::post())
        .and(with_oauth2(o))
        .and(request_context())
        .and(warp::header::headers_cloned())
        .and(form::form_body())
        .and_then(token::handle);
    let device_authorization = warp::path!("oauth2" / "device_authorization")
        .and(warp::post())
        .and(with_oauth2(o))
        .and(request_context())
        .and(warp::header::headers_cloned())
        .and(form::form_body())
        .and_then(device_authorization::handle);
    let device_page = warp::path!("oauth2" / "device")
        .and(warp::get())
        .and(with_oauth2(o))
        .and(warp::header::optional::<String>("cookie"))
        .and(raw_query())
        .and_then(device_page::show);
    let device_decision = warp::path!("oauth2" / "device")
        .and(warp::post())
        .and(with_oauth2(o))
        .and(warp::header::headers_cloned())
        .and(form::form_body())
        .and_then(device_page::decide);
    let revoke = warp::path!("oauth2" / "revoke")
        .and(warp::post())
        .and(with_oauth2(o))
        .and(warp::header::headers_cloned())
        .and(form::form_body())
        .and_then(revoke::handle);
    let introspect = warp::path!("oauth2" / "introspect")
        .and(warp::post())
        .and(with_oauth2(o))
        .and(warp::header::headers_cloned())
        .and(form::form_body())
        .and_then(introspect::handle);
    let userinfo = warp::path!("oauth2" / "userinfo")
        .and(warp::get().or(warp::post()).unify())
        .and(with_oauth2(o))
        .and(warp::header::headers_cloned())
        .and_then(userinfo::handle);
    let routes = authorize
        .or(token)
        .unify()
        .or(device_authorization)
        .unify()
        .or(device_page)
        .unify()
        .or(device_decision)
        .unify()
        .or(revoke)
        .unify()
        .or(introspect)
        .unify()
        .or(userinfo)
        .unify()
        .recover(|r: Rejection| recover(ErrorStyle::OAuth2, r))
        .unify()
        .boxed();
    let cors = cors(state, o);
    let mut mounts = vec![Mount {
        name: "oauth2",
        prefix: PREFIX,
        cors: Some(cors.clone()),
        table: route_table(),
        routes,
        direct: None,
    }];
    for path in [AUTHORIZATION_SERVER_METADATA, OPENID_CONFIGURATION] {
        mounts.push(Mount {
            name: "oauth2",
            prefix: path,
            cors: Some(cors.clone()),
            table: RouteTable::new(&[(Method::GET, path)]),
            routes: metadata::route(o, path),
            direct: None,
        });
    }
    mounts
}
