//! The load scenarios, one per file; each implements `driver::Scenario`.

pub mod baseline;
pub mod cluster;
pub mod dashboard;
pub mod engine;
pub mod extension;
pub mod forgot_password;
pub mod get_session;
pub mod oauth_callback;
pub mod provider_token;
pub mod readyz;
pub mod siwe;
pub mod token_refresh;
