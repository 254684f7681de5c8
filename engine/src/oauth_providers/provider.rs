//! One configured provider and its two steps: [`Provider::start`] builds the
//! authorization URL; [`Provider::finish`] turns the returned code into a
//! verified identity (exchange → id_token verification → userinfo if needed;
//! for a plain OAuth 2.0 provider, exchange → userinfo).

use oauth2::TokenResponse;

use super::authorize::{self, AuthorizationStart, AuthorizeParams};
use super::discovery::EndpointSource;
use super::exchange::{self, ExchangeParams};
use super::id_token::{self, Expectations};
use super::jwks::JwksCache;
use super::plain::PlainOAuth2;
use super::tokens::{system_now_ms, ProviderTokens, SignedIn};
use super::{userinfo, Flavor, ProviderError};

/// The longest extra scope a sign-in request may add, and how many.
const MAX_EXTRA_SCOPES: usize = 16;
const MAX_SCOPE_LEN: usize = 128;
const MAX_LOGIN_HINT_CHARS: usize = 256;

pub struct Provider {
    pub(crate) name: String,
    pub(crate) flavor: Flavor,
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
    pub(crate) redirect_uri: String,
    pub(crate) scopes: Vec<String>,
    pub(crate) endpoints: EndpointSource,
    pub(crate) jwks: JwksCache,
    pub(crate) http: reqwest::Client,
    /// Set for a plain OAuth 2.0 provider: no id_token, the userinfo says who signed in.
    pub(crate) plain: Option<PlainOAuth2>,
    /// Whether authorizations use PKCE S256 (always, for OpenID Connect).
    pub(crate) pkce: bool,
    /// `response_mode` asked of the provider (`form_post`), if any.
    pub(crate) response_mode: Option<&'static str>,
}

/// Never prints the client secret.
impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("name", &self.name)
            .field("flavor", &self.flavor)
            .field("client_id", &self.client_id)
            .field("redirect_uri", &self.redirect_uri)
            .field("plain_oauth2", &self.plain.is_some())
            .finish_non_exhaustive()
    }
}

/// Whether `scope` is a well-formed OAuth scope token (RFC 6749 §3.3).
pub fn valid_scope(scope: &str) -> bool {
    (1..=MAX_SCOPE_LEN).contains(&scope.len())
        && scope
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

/// Whether `hint` may be passed on as an OIDC `login_hint`.
pub fn valid_login_hint(hint: &str) -> bool {
    (1..=MAX_LOGIN_HINT_CHARS).contains(&hint.chars().count())
        && !hint.chars().any(char::is_control)
}

impl Provider {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn flavor(&self) -> Flavor {
        self.flavor
    }

    /// The redirect URI registered with the provider (this server's callback).
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// Starts an authorization, asking for the configured scopes plus
    /// `extra_scopes` (each a valid scope token) and passing `login_hint` on
    /// (at most 256 characters, no control characters); invalid ones are refused.
    pub async fn start(
        &self,
        extra_scopes: &[String],
        login_hint: Option<&str>,
    ) -> Result<AuthorizationStart, ProviderError> {
        if extra_scopes.len() > MAX_EXTRA_SCOPES || !extra_scopes.iter().all(|s| valid_scope(s)) {
            return Err(ProviderError::Misconfigured("invalid extra scopes".into()));
        }
        if login_hint.is_some_and(|h| !valid_login_hint(h)) {
            return Err(ProviderError::Misconfigured("invalid login hint".into()));
        }
        let endpoints = self.endpoints.endpoints(&self.http).await?;
        let mut scopes = self.scopes.clone();
        for scope in extra_scopes {
            if !scopes.contains(scope) {
                scopes.push(scope.clone());
            }
        }
        authorize::build(
            &endpoints,
            &AuthorizeParams {
                flavor: self.flavor,
                client_id: &self.client_id,
                redirect_uri: &self.redirect_uri,
                scopes: &scopes,
                login_hint,
                openid: self.plain.is_none(),
                pkce: self.pkce,
                response_mode: self.response_mode,
            },
        )
    }

    /// Completes an authorization: exchanges `code` with the PKCE verifier,
    /// verifies the id_token against `nonce`, and reads the identity (a plain
    /// OAuth 2.0 provider: reads it from its userinfo; `nonce` is unused),
    /// with the tokens the exchange brought.
    pub async fn finish(
        &self,
        code: &str,
        pkce_verifier: &str,
        nonce: &str,
    ) -> Result<SignedIn, ProviderError> {
        let endpoints = self.endpoints.endpoints(&self.http).await?;
        let tokens = exchange::exchange_code(
            &self.http,
            &endpoints,
            &ExchangeParams {
                flavor: self.flavor,
                client_id: &self.client_id,
                client_secret: &self.client_secret,
                redirect_uri: &self.redirect_uri,
            },
            code,
            self.pkce.then_some(pkce_verifier),
        )
        .await?;
        if let Some(plain) = &self.plain {
            let identity = plain
                .identity(&self.http, tokens.access_token().secret(), &self.name)
                .await?;
            return Ok(SignedIn {
                identity,
                tokens: ProviderTokens::from_response(&tokens, system_now_ms()),
            });
        }
        let id_token = tokens.id_token().ok_or_else(|| {
            ProviderError::InvalidIdToken("the token response has no id_token".into())
        })?;
        let issuers = self.flavor.accepted_issuers(&endpoints.issuer);
        let mut claims = id_token::verify(
            &self.http,
            &self.jwks,
            id_token,
            &Expectations {
                issuers: &issuers,
                client_id: &self.client_id,
                nonce,
                jwks_uri: &endpoints.jwks_uri,
            },
        )
        .await?;
        if claims.lacks_profile() {
            if let Some(endpoint) = &endpoints.userinfo_endpoint {
                let extra = userinfo::fetch(
                    &self.http,
                    endpoint,
                    tokens.access_token().secret(),
                    &claims.sub,
                )
                .await?;
                claims.complete_with(extra);
            }
        }
        Ok(SignedIn {
            identity: claims.into_identity(&self.name),
            tokens: ProviderTokens::from_response(&tokens, system_now_ms()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{valid_login_hint, valid_scope};

    #[test]
    fn scope_tokens() {
        assert!(valid_scope("user:read:email"));
        assert!(valid_scope(
            "https://www.googleapis.com/auth/calendar.readonly"
        ));
        assert!(!valid_scope(""));
        assert!(!valid_scope("two words"));
        assert!(!valid_scope("quote\"d"));
        assert!(!valid_scope("back\\slash"));
        assert!(valid_login_hint("viewer@example.com"));
        assert!(!valid_login_hint(""));
        assert!(!valid_login_hint("line\nbreak"));
    }
}
