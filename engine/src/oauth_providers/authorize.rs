//! The authorization request: the URL the browser is sent to, built by the
//! `oauth2` crate with a fresh 256-bit `state`, a PKCE S256 challenge (unless
//! a plain OAuth 2.0 provider has PKCE turned off) and, for OpenID Connect, a
//! `nonce`. The caller keeps the state, verifier and nonce server-side.

use oauth2::basic::BasicClient;
use oauth2::{AuthUrl, ClientId, CsrfToken, PkceCodeChallenge, RedirectUrl, Scope};

use super::discovery::Endpoints;
use super::{Flavor, ProviderError};
use crate::opaque_token::random_urlsafe_256;

/// A started authorization: `url` goes to the browser, the rest stays on the server.
pub struct AuthorizationStart {
    pub url: String,
    /// The `state` parameter (256 random bits, base64url).
    pub state: String,
    /// The PKCE code verifier matching the S256 challenge in `url` (empty
    /// when the provider does not use PKCE).
    pub pkce_verifier: String,
    /// The OIDC `nonce` the id_token must echo (kept, not sent, for plain OAuth 2.0).
    pub nonce: String,
}

impl std::fmt::Debug for AuthorizationStart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthorizationStart { .. }")
    }
}

pub(crate) struct AuthorizeParams<'a> {
    pub flavor: Flavor,
    pub client_id: &'a str,
    pub redirect_uri: &'a str,
    pub scopes: &'a [String],
    /// OIDC `login_hint`: which account the provider should suggest.
    pub login_hint: Option<&'a str>,
    /// Whether the provider speaks OpenID Connect (then a `nonce` is sent).
    pub openid: bool,
    /// Whether to send a PKCE S256 challenge.
    pub pkce: bool,
    /// `response_mode`, when the provider is asked for one (`form_post`).
    pub response_mode: Option<&'static str>,
}

pub(crate) fn build(
    endpoints: &Endpoints,
    params: &AuthorizeParams<'_>,
) -> Result<AuthorizationStart, ProviderError> {
    let auth_url = AuthUrl::new(endpoints.authorization_endpoint.clone()).map_err(|_| {
        ProviderError::Misconfigured("the authorization endpoint is not a URL".into())
    })?;
    let redirect_url = RedirectUrl::new(params.redirect_uri.to_string())
        .map_err(|_| ProviderError::Misconfigured("the redirect URI is not a URL".into()))?;
    let client = BasicClient::new(ClientId::new(params.client_id.to_string()))
        .set_auth_uri(auth_url)
        .set_redirect_uri(redirect_url);

    let state = random_urlsafe_256();
    let nonce = random_urlsafe_256();
    let mut request = client
        .authorize_url(|| CsrfToken::new(state.clone()))
        .add_scopes(params.scopes.iter().cloned().map(Scope::new));
    if params.openid {
        request = request.add_extra_param("nonce", nonce.clone());
    }
    let mut pkce_verifier = String::new();
    if params.pkce {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        request = request.set_pkce_challenge(challenge);
        pkce_verifier = verifier.secret().clone();
    }
    if let Some(mode) = params.response_mode {
        request = request.add_extra_param("response_mode", mode);
    }
    for (name, value) in params.flavor.extra_authorize_params() {
        request = request.add_extra_param(*name, *value);
    }
    if let Some(hint) = params.login_hint {
        request = request.add_extra_param("login_hint", hint.to_string());
    }
    let (url, _) = request.url();
    Ok(AuthorizationStart {
        url: url.to_string(),
        state,
        pkce_verifier,
        nonce,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_carries_pkce_state_nonce_and_scopes() {
        let endpoints = Flavor::Twitch.well_known().unwrap();
        let scopes = vec!["openid".to_string(), "user:read:email".to_string()];
        let start = build(
            &endpoints,
            &AuthorizeParams {
                flavor: Flavor::Twitch,
                client_id: "cid",
                redirect_uri: "https://api.example/api/auth/callback/twitch",
                scopes: &scopes,
                login_hint: Some("viewer@example.com"),
                openid: true,
                pkce: true,
                response_mode: None,
            },
        )
        .unwrap();
        let url = url::Url::parse(&start.url).unwrap();
        assert!(start
            .url
            .starts_with("https://id.twitch.tv/oauth2/authorize?"));
        let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["client_id"], "cid");
        assert_eq!(q["state"], start.state);
        assert_eq!(q["nonce"], start.nonce);
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["scope"], "openid user:read:email");
        assert!(q["claims"].contains("email_verified"));
        assert_eq!(q["login_hint"], "viewer@example.com");
        assert_eq!(start.state.len(), 43, "256 bits in base64url");
        assert!(!q.contains_key("response_mode"));
    }

    #[test]
    fn plain_oauth2_sends_no_nonce_and_pkce_only_when_used() {
        let endpoints = Flavor::Twitch.well_known().unwrap();
        let scopes = vec!["read:user".to_string()];
        let build_with = |pkce: bool| {
            build(
                &endpoints,
                &AuthorizeParams {
                    flavor: Flavor::Generic,
                    client_id: "cid",
                    redirect_uri: "https://api.example/api/auth/callback/github",
                    scopes: &scopes,
                    login_hint: None,
                    openid: false,
                    pkce,
                    response_mode: Some("form_post"),
                },
            )
            .unwrap()
        };
        let with_pkce = build_with(true);
        let q: std::collections::HashMap<_, _> = url::Url::parse(&with_pkce.url)
            .unwrap()
            .query_pairs()
            .into_owned()
            .collect();
        assert!(!q.contains_key("nonce"));
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["response_mode"], "form_post");
        assert_eq!(q["scope"], "read:user");
        let without = build_with(false);
        assert!(!without.url.contains("code_challenge"));
        assert!(without.pkce_verifier.is_empty());
    }
}
