//! The code exchange: the authorization code and PKCE verifier go to the
//! token endpoint through the `oauth2` crate, authenticated with the client
//! secret the way the provider wants it. A refusal sent with status 200 (as
//! GitHub sends `{"error":"bad_verification_code"}`) is a refusal too.

use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
};
use oauth2::{
    AuthorizationCode, Client, ClientId, ClientSecret, EndpointNotSet, EndpointSet,
    PkceCodeVerifier, RedirectUrl, RequestTokenError, StandardRevocableToken, TokenUrl,
};

use super::discovery::Endpoints;
use super::token_response::ProviderTokenResponse;
use super::{Flavor, ProviderError};

pub(super) type TokenClient = Client<
    BasicErrorResponse,
    ProviderTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

pub(crate) struct ExchangeParams<'a> {
    pub flavor: Flavor,
    pub client_id: &'a str,
    pub client_secret: &'a str,
    pub redirect_uri: &'a str,
}

pub(crate) async fn exchange_code(
    http: &reqwest::Client,
    endpoints: &Endpoints,
    params: &ExchangeParams<'_>,
    code: &str,
    pkce_verifier: Option<&str>,
) -> Result<ProviderTokenResponse, ProviderError> {
    let token_url = TokenUrl::new(endpoints.token_endpoint.clone())
        .map_err(|_| ProviderError::Misconfigured("the token endpoint is not a URL".into()))?;
    let redirect_url = RedirectUrl::new(params.redirect_uri.to_string())
        .map_err(|_| ProviderError::Misconfigured("the redirect URI is not a URL".into()))?;
    let client: TokenClient = Client::new(ClientId::new(params.client_id.to_string()))
        .set_client_secret(ClientSecret::new(params.client_secret.to_string()))
        .set_auth_type(params.flavor.token_auth(endpoints))
        .set_token_uri(token_url)
        .set_redirect_uri(redirect_url);
    let mut request = client.exchange_code(AuthorizationCode::new(code.to_string()));
    if let Some(verifier) = pkce_verifier {
        request = request.set_pkce_verifier(PkceCodeVerifier::new(verifier.to_string()));
    }
    request.request_async(http).await.map_err(|e| match e {
        RequestTokenError::ServerResponse(refusal) => {
            ProviderError::InvalidCode(format!("token endpoint answered `{}`", refusal.error()))
        }
        RequestTokenError::Request(_) => {
            ProviderError::Unavailable("token endpoint: request failed".into())
        }
        // The body is never logged: it may hold tokens.
        RequestTokenError::Parse(_, body) => {
            match serde_json::from_slice::<BasicErrorResponse>(&body) {
                Ok(refusal) => ProviderError::InvalidCode(format!(
                    "token endpoint answered `{}`",
                    refusal.error()
                )),
                Err(_) => ProviderError::Unavailable("token endpoint: unreadable response".into()),
            }
        }
        RequestTokenError::Other(_) => {
            ProviderError::Unavailable("token endpoint: unexpected response".into())
        }
    })
}
