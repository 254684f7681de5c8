//! [`AppState`]: what every contract's handlers share: the engine and the
//! configuration, plus settings derived from it once at start.

use std::collections::HashSet;
use std::sync::Arc;

use tachigo_engine::config::Config;
use tachigo_engine::Engine;

use crate::common::cookies::CookieSettings;

#[derive(Clone)]
pub struct AppState {
    pub engine: Engine,
    pub config: Arc<Config>,
    pub cookies: CookieSettings,
    /// `server.trusted_origins`, for CORS and the CSRF origin check.
    pub trusted_origins: Arc<HashSet<String>>,
}

impl AppState {
    pub fn new(engine: Engine, config: Arc<Config>) -> AppState {
        AppState {
            cookies: CookieSettings::from_config(&config.cookies),
            trusted_origins: Arc::new(config.server.trusted_origins.iter().cloned().collect()),
            engine,
            config,
        }
    }
}
