//! The tokens a provider issued, as the engine keeps them for a linked
//! account (sealed at rest by [`crate::token_cipher`]), and a finished
//! sign-in: the verified identity with the tokens that came with it.

use oauth2::TokenResponse;

use super::token_response::ProviderTokenResponse;
use crate::model::UnixMillis;
use crate::ProviderIdentity;

/// A provider's access token and what came with it. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct ProviderTokens {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub id_token: Option<String>,
    pub access_token_expires_at: Option<UnixMillis>,
    pub refresh_token_expires_at: Option<UnixMillis>,
    /// The scopes granted (empty when the provider did not say).
    pub scopes: Vec<String>,
}

impl std::fmt::Debug for ProviderTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderTokens")
            .field("has_refresh_token", &self.refresh_token.is_some())
            .field("has_id_token", &self.id_token.is_some())
            .field("access_token_expires_at", &self.access_token_expires_at)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

/// Now, on the system clock (the engine's clock in a running server).
pub(crate) fn system_now_ms() -> UnixMillis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl ProviderTokens {
    /// The tokens of a token endpoint's answer received at `now`.
    pub(crate) fn from_response(
        response: &ProviderTokenResponse,
        now: UnixMillis,
    ) -> ProviderTokens {
        ProviderTokens {
            access_token: response.access_token().secret().clone(),
            refresh_token: response.refresh_token().map(|t| t.secret().clone()),
            id_token: response.id_token().map(str::to_string),
            access_token_expires_at: response
                .expires_in()
                .map(|d| now.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))),
            refresh_token_expires_at: None,
            // GitHub separates its granted scopes with commas, not spaces.
            scopes: response
                .scopes()
                .map(|s| {
                    s.iter()
                        .flat_map(|s| s.split(','))
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// Whether the access token expires within `margin_ms` of `now` (one
    /// without an expiry never does).
    pub fn access_expires_within(&self, now: UnixMillis, margin_ms: i64) -> bool {
        self.access_token_expires_at
            .is_some_and(|at| at.saturating_sub(now) < margin_ms)
    }

    /// These tokens, completed from `previous` where the provider sent
    /// nothing new (a refresh answer often has no new refresh token, no
    /// id_token and no scopes).
    pub fn or_from(mut self, previous: &ProviderTokens) -> ProviderTokens {
        if self.refresh_token.is_none() {
            self.refresh_token = previous.refresh_token.clone();
            self.refresh_token_expires_at = previous.refresh_token_expires_at;
        }
        if self.id_token.is_none() {
            self.id_token = previous.id_token.clone();
        }
        if self.scopes.is_empty() {
            self.scopes = previous.scopes.clone();
        }
        self
    }
}

/// A completed provider sign-in.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub identity: ProviderIdentity,
    pub tokens: ProviderTokens,
}
