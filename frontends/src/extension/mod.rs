//! The Twitch Extension contract, `/api/v1/extension/*` (CONTRACTS.md §2).

use warp::{Filter, Reply};

use crate::common::cors::CorsPolicy;
use crate::common::dispatcher::Mount;
use crate::common::error::{recover, ErrorStyle};
use crate::AppState;

pub const PREFIX: &str = "/api/v1/extension/";

pub fn mount(state: &AppState) -> Mount {
    let mut allowed = state.trusted_origins.as_ref().clone();
    for id in &state.config.extension.client_ids {
        allowed.insert(format!("https://{id}.ext-twitch.tv"));
    }
    let routes = warp::path!("api" / "v1" / "extension" / "healthz")
        .map(|| warp::reply().into_response())
        .recover(|r| recover(ErrorStyle::V1, r))
        .unify()
        .boxed();
    Mount {
        name: "extension",
        prefix: PREFIX,
        cors: Some(CorsPolicy::without_credentials(allowed)),
        routes,
    }
}
