//! What can go wrong talking to a provider, each kind with the `?error=` code
//! the callback redirects with. Messages are for logs: they never carry a code,
//! token, secret or response body.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ProviderError {
    /// The provider could not be reached, timed out, or answered something that
    /// is not a usable OAuth response (discovery, JWKS, token endpoint).
    #[error("the provider is unavailable: {0}")]
    Unavailable(String),
    /// The token endpoint refused the authorization code (e.g. `invalid_grant`).
    #[error("the provider refused the authorization code: {0}")]
    InvalidCode(String),
    /// The `id_token` is missing, malformed, or fails signature, `iss`, `aud`,
    /// `exp` or `nonce` verification.
    #[error("the id_token is not valid: {0}")]
    InvalidIdToken(String),
    /// The provider did not tell who the user is (userinfo failed or disagreed).
    #[error("could not get the user's identity: {0}")]
    UserInfo(String),
    /// The provider's configuration cannot work (an endpoint that is not a URL).
    #[error("the provider is misconfigured: {0}")]
    Misconfigured(String),
}

impl ProviderError {
    /// The snake_case code the callback appends as `?error=`.
    pub fn code(&self) -> &'static str {
        match self {
            ProviderError::Unavailable(_) | ProviderError::Misconfigured(_) => {
                "provider_unavailable"
            }
            ProviderError::InvalidCode(_) => "invalid_code",
            ProviderError::InvalidIdToken(_) => "invalid_id_token",
            ProviderError::UserInfo(_) => "unable_to_get_user_info",
        }
    }
}
