//! What the built-in providers do differently from a plain OpenID Connect
//! issuer: their well-known endpoints (used when no `issuer` is configured, so
//! no discovery round trip is needed), default scopes, how the token endpoint
//! wants the client secret, extra authorization parameters, and the issuer
//! spellings their id_tokens carry.

use oauth2::AuthType;

use super::discovery::Endpoints;

/// The kind of a configured provider, chosen by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Google,
    /// Twitch's OIDC: the subject is the Twitch user id, the same id the
    /// extension contract links, so both land on one user.
    Twitch,
    /// Any other name: everything comes from the issuer's discovery document.
    Generic,
}

/// Twitch returns profile claims only when asked for them by name.
const TWITCH_CLAIMS: &str = r#"{"id_token":{"email":null,"email_verified":null,"picture":null,"preferred_username":null},"userinfo":{"email":null,"email_verified":null,"picture":null,"preferred_username":null}}"#;

impl Flavor {
    pub fn from_name(name: &str) -> Flavor {
        match name {
            "google" => Flavor::Google,
            "twitch" => Flavor::Twitch,
            _ => Flavor::Generic,
        }
    }

    /// The provider's published endpoints, for a built-in provider without an
    /// `issuer` override.
    pub(crate) fn well_known(self) -> Option<Endpoints> {
        let endpoints =
            |issuer: &str, auth: &str, token: &str, userinfo: &str, jwks: &str| Endpoints {
                issuer: issuer.into(),
                authorization_endpoint: auth.into(),
                token_endpoint: token.into(),
                userinfo_endpoint: Some(userinfo.into()),
                jwks_uri: jwks.into(),
                token_endpoint_auth_methods_supported: None,
            };
        match self {
            Flavor::Google => Some(endpoints(
                "https://accounts.google.com",
                "https://accounts.google.com/o/oauth2/v2/auth",
                "https://oauth2.googleapis.com/token",
                "https://openidconnect.googleapis.com/v1/userinfo",
                "https://www.googleapis.com/oauth2/v3/certs",
            )),
            Flavor::Twitch => Some(endpoints(
                "https://id.twitch.tv/oauth2",
                "https://id.twitch.tv/oauth2/authorize",
                "https://id.twitch.tv/oauth2/token",
                "https://id.twitch.tv/oauth2/userinfo",
                "https://id.twitch.tv/oauth2/keys",
            )),
            Flavor::Generic => None,
        }
    }

    /// Scopes asked for when the configuration names none (`openid` is always added).
    pub(crate) fn default_scopes(self) -> &'static [&'static str] {
        match self {
            Flavor::Google | Flavor::Generic => &["openid", "email", "profile"],
            Flavor::Twitch => &["openid", "user:read:email"],
        }
    }

    /// How the client authenticates at the token endpoint. Google and Twitch take
    /// the secret in the form body; a generic issuer gets HTTP Basic unless its
    /// discovery document only offers `client_secret_post`.
    pub(crate) fn token_auth(self, endpoints: &Endpoints) -> AuthType {
        match self {
            Flavor::Google | Flavor::Twitch => AuthType::RequestBody,
            Flavor::Generic => match &endpoints.token_endpoint_auth_methods_supported {
                Some(methods)
                    if !methods.iter().any(|m| m == "client_secret_basic")
                        && methods.iter().any(|m| m == "client_secret_post") =>
                {
                    AuthType::RequestBody
                }
                _ => AuthType::BasicAuth,
            },
        }
    }

    /// Extra authorization request parameters.
    pub(crate) fn extra_authorize_params(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Flavor::Twitch => &[("claims", TWITCH_CLAIMS)],
            Flavor::Google | Flavor::Generic => &[],
        }
    }

    /// Every `iss` an id_token of this provider may carry, given the issuer in use.
    pub(crate) fn accepted_issuers(self, issuer: &str) -> Vec<String> {
        let mut issuers = vec![issuer.to_string()];
        // Google documents both spellings for its id_tokens.
        if self == Flavor::Google && issuer == "https://accounts.google.com" {
            issuers.push("accounts.google.com".into());
        }
        issuers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_names_have_endpoints_and_others_discover() {
        assert_eq!(Flavor::from_name("google"), Flavor::Google);
        assert_eq!(Flavor::from_name("twitch"), Flavor::Twitch);
        assert_eq!(Flavor::from_name("corp"), Flavor::Generic);
        assert!(Flavor::Generic.well_known().is_none());
        let twitch = Flavor::Twitch.well_known().unwrap();
        assert_eq!(twitch.issuer, "https://id.twitch.tv/oauth2");
        assert_eq!(
            Flavor::Google.accepted_issuers("https://accounts.google.com"),
            ["https://accounts.google.com", "accounts.google.com"]
        );
    }

    #[test]
    fn generic_token_auth_follows_discovery() {
        let mut endpoints = Flavor::Google.well_known().unwrap();
        assert!(matches!(
            Flavor::Generic.token_auth(&endpoints),
            AuthType::BasicAuth
        ));
        endpoints.token_endpoint_auth_methods_supported = Some(vec!["client_secret_post".into()]);
        assert!(matches!(
            Flavor::Generic.token_auth(&endpoints),
            AuthType::RequestBody
        ));
        assert!(matches!(
            Flavor::Twitch.token_auth(&endpoints),
            AuthType::RequestBody
        ));
    }
}
