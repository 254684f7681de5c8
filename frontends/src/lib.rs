//! The three HTTP contracts of tachigo-auth as warp filter trees, each in its own
//! module, the OAuth 2.1 authorization server for every other client
//! (`oauth2`), plus the system endpoints and the HTTP pieces they share.
//!
//! A frontend never touches storage: it parses the request, asks the
//! [`Engine`](tachigo_engine::Engine), and renders the reply in its contract's shape.

pub mod admin;
pub mod common;
pub mod dashboard;
pub mod extension;
pub mod oauth;
pub mod oauth2;
pub mod system;

mod app_state;

pub use app_state::AppState;
