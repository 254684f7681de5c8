//! The refresh grant (RFC 6749 §6): a kept refresh token goes to the
//! provider's token endpoint through the `oauth2` crate, authenticated as the
//! code exchange is, over the shared HTTP client (its timeouts bound the call).

use oauth2::basic::BasicErrorResponse;
use oauth2::{ClientId, ClientSecret, RefreshToken, RequestTokenError, TokenUrl};

use super::exchange::TokenClient;
use super::tokens::{system_now_ms, ProviderTokens};
use super::{Provider, ProviderError};

/// Why a refresh gave no new tokens.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// The provider answered with an OAuth error (`invalid_grant`: the
    /// refresh token was revoked or expired): only a new sign-in helps.
    #[error("the provider refused the refresh token: `{0}`")]
    Refused(String),
    /// The provider could not be reached or answered nonsense.
    #[error(transparent)]
    Provider(#[from] ProviderError),
}

impl Provider {
    /// Trades `refresh_token` for new tokens. The answer's missing parts (no
    /// new refresh token, no id_token) are the caller's to keep from before.
    pub async fn refresh(&self, refresh_token: &str) -> Result<ProviderTokens, RefreshError> {
        let endpoints = self.endpoints.endpoints(&self.http).await?;
        let token_url = TokenUrl::new(endpoints.token_endpoint.clone())
            .map_err(|_| ProviderError::Misconfigured("the token endpoint is not a URL".into()))?;
        let client: TokenClient = oauth2::Client::new(ClientId::new(self.client_id.clone()))
            .set_client_secret(ClientSecret::new(self.client_secret.clone()))
            .set_auth_type(self.flavor.token_auth(&endpoints))
            .set_token_uri(token_url);
        let response = client
            .exchange_refresh_token(&RefreshToken::new(refresh_token.to_string()))
            .request_async(&self.http)
            .await
            .map_err(|e| match e {
                RequestTokenError::ServerResponse(refusal) => {
                    RefreshError::Refused(refusal.error().to_string())
                }
                RequestTokenError::Request(_) => RefreshError::Provider(
                    ProviderError::Unavailable("token endpoint: request failed".into()),
                ),
                // A refusal sent with status 200 (GitHub's way) is still a
                // refusal. The body is never logged: it may hold tokens.
                RequestTokenError::Parse(_, body) => {
                    match serde_json::from_slice::<BasicErrorResponse>(&body) {
                        Ok(refusal) => RefreshError::Refused(refusal.error().to_string()),
                        Err(_) => RefreshError::Provider(ProviderError::Unavailable(
                            "token endpoint: unreadable refresh response".into(),
                        )),
                    }
                }
                RequestTokenError::Other(_) => RefreshError::Provider(ProviderError::Unavailable(
                    "token endpoint: unreadable refresh response".into(),
                )),
            })?;
        Ok(ProviderTokens::from_response(&response, system_now_ms()))
    }
}
