//! The Twitch Extension contract, `/api/v1/extension/*` (CONTRACTS.md §2).
//!
//! The tachimint panel runs in a Twitch-controlled iframe
//! (`https://<client-id>.ext-twitch.tv`), holds no cookies, and trades its Twitch
//! Extension JWT for a tachigo token (`POST /auth/login`) that it then sends as a
//! bearer token (`GET /me`, and the watch services, which verify it offline
//! against `/.well-known/jwks.json`). CORS allows each configured client id's
//! origin plus `server.trusted_origins`, without credentials.

mod login;
mod me;
mod tachigo_token;
mod twitch_claims;
mod twitch_jwt;
mod wire;

use std::sync::Arc;

use tachigo_engine::Engine;
use warp::{Filter, Rejection};

use crate::common::cors::CorsPolicy;
use crate::common::dispatcher::Mount;
use crate::common::error::{recover, ErrorStyle};
use crate::common::route_table::RouteTable;
use crate::common::{optional_json_body, request_context};
use crate::AppState;
use http::Method;

pub use login::TWITCH_PROVIDER;
pub use tachigo_token::GUEST_ROLE;
pub use twitch_jwt::{EXP_LEEWAY_SECS, MAX_TOKEN_BYTES};

pub const PREFIX: &str = "/api/v1/extension/";

/// What the contract's handlers share.
pub(crate) struct Extension {
    engine: Engine,
    verifier: twitch_jwt::TwitchJwtVerifier,
    allow_anonymous: bool,
}

fn with_extension(
    extension: &Arc<Extension>,
) -> impl Filter<Extract = (Arc<Extension>,), Error = std::convert::Infallible> + Clone {
    let extension = extension.clone();
    warp::any().map(move || extension.clone())
}

/// What this contract serves (metric labels, CORS methods).
pub fn route_table() -> RouteTable {
    RouteTable::new(&[
        (Method::POST, "/api/v1/extension/auth/login"),
        (Method::GET, "/api/v1/extension/me"),
    ])
}

pub fn mount(state: &AppState) -> Mount {
    let config = &state.config.extension;
    let mut allowed = state.trusted_origins.as_ref().clone();
    for id in &config.client_ids {
        allowed.insert(format!("https://{id}.ext-twitch.tv"));
    }
    let extension = Arc::new(Extension {
        engine: state.engine.clone(),
        verifier: twitch_jwt::TwitchJwtVerifier::from_config(config),
        allow_anonymous: config.allow_anonymous,
    });

    let login = warp::path!("api" / "v1" / "extension" / "auth" / "login")
        .and(warp::post())
        .and(with_extension(&extension))
        .and(request_context())
        .and(warp::header::headers_cloned())
        .and(optional_json_body())
        .and_then(login::handle);
    let me = warp::path!("api" / "v1" / "extension" / "me")
        .and(warp::get())
        .and(with_extension(&extension))
        .and(warp::header::headers_cloned())
        .and_then(me::handle);
    let routes = login
        .or(me)
        .unify()
        .recover(|r: Rejection| recover(ErrorStyle::V1, r))
        .unify()
        .boxed();
    Mount {
        name: "extension",
        prefix: PREFIX,
        cors: Some(CorsPolicy::without_credentials(allowed)),
        table: route_table(),
        routes,
        direct: None,
    }
}
