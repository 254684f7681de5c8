//! What a successful login or refresh hands the dashboard: a short-lived access
//! token for the session (kept in memory by the client) and the refresh cookie.
//!
//! The cookie lives as long as the refresh token may sit unused
//! (`tokens.refresh_idle_ttl`), but never past the session's absolute end, so the
//! browser drops it no later than the server would refuse it.

use tachigo_engine::access_token::AUDIENCE_DASHBOARD;
use tachigo_engine::{Session, User};

use super::Dashboard;

/// The token type every reply names.
pub const TOKEN_TYPE: &str = "Bearer";

/// A signed access token and its lifetime in seconds.
pub struct AccessToken {
    pub token: String,
    pub expires_in: i64,
}

impl Dashboard {
    /// Signs a dashboard access token for `session`, carrying the user's roles.
    pub fn access_token(&self, user: &User, session: &Session) -> AccessToken {
        let (token, claims) = self.engine.mint_access_token(
            &user.id,
            Some(&session.id),
            AUDIENCE_DASHBOARD,
            &user.roles,
            serde_json::Map::new(),
        );
        AccessToken {
            token,
            expires_in: claims.exp - claims.iat,
        }
    }

    /// `Max-Age` of a refresh cookie for `session`, in seconds.
    pub fn refresh_cookie_max_age(&self, session: &Session) -> i64 {
        let left_ms = session.absolute_expires_at - self.engine.now();
        let left_secs = (left_ms.max(0) + 999) / 1000;
        self.refresh_idle_ttl_secs.min(left_secs)
    }
}
