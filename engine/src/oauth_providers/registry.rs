//! [`Providers`]: every provider of `[oauth.providers]`, built once at start
//! without any network access (endpoints are discovered on first use).
//! `google` and `twitch` use their published endpoints unless an `issuer` is
//! configured (then they are discovered from it, keeping their quirks); any
//! other name is a generic OpenID Connect provider discovered from `issuer`,
//! unless it is plain OAuth 2.0 (`kind = "oauth2"`, `github`, `discord`:
//! built by [`plain::provider`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::discovery::EndpointSource;
use super::jwks::JwksCache;
use super::{http, plain, Flavor, Provider};
use crate::config::{OAuthConfig, ProviderKind, ResponseMode};

/// The `response_mode` parameter a configured mode asks for.
pub(crate) fn response_mode(mode: Option<ResponseMode>) -> Option<&'static str> {
    match mode {
        Some(ResponseMode::FormPost) => Some("form_post"),
        Some(ResponseMode::Query) | None => None,
    }
}

#[derive(Debug, Clone, Default)]
pub struct Providers {
    by_name: Arc<BTreeMap<String, Arc<Provider>>>,
}

impl Providers {
    /// Builds the providers of `config`; `callback_base` is the URL the
    /// provider name is appended to for each redirect URI (e.g.
    /// `https://api.example/api/auth/callback/`).
    pub fn from_config(config: &OAuthConfig, callback_base: &str) -> Providers {
        let client = http::client();
        let by_name = config
            .providers
            .iter()
            .map(|(name, settings)| {
                let redirect_uri = format!("{callback_base}{name}");
                if settings.kind_for(name) == ProviderKind::Oauth2 {
                    let provider = plain::provider(name, settings, redirect_uri, client.clone());
                    return (name.clone(), Arc::new(provider));
                }
                let flavor = Flavor::from_name(name);
                let endpoints = match (&settings.issuer, flavor.well_known()) {
                    (Some(issuer), _) => EndpointSource::discover(issuer),
                    (None, Some(known)) => EndpointSource::Fixed(Arc::new(known)),
                    // The loader refuses a generic provider without an issuer; a
                    // hand-built config gets a provider that reports itself unavailable.
                    (None, None) => EndpointSource::discover(""),
                };
                let mut scopes: Vec<String> = match &settings.scopes {
                    Some(configured) => configured.clone(),
                    None => flavor
                        .default_scopes()
                        .iter()
                        .map(|s| s.to_string())
                        .collect(),
                };
                if !scopes.iter().any(|s| s == "openid") {
                    scopes.insert(0, "openid".into());
                }
                let provider = Provider {
                    name: name.clone(),
                    flavor,
                    client_id: settings.client_id.clone(),
                    client_secret: settings.client_secret.clone(),
                    redirect_uri,
                    scopes,
                    endpoints,
                    jwks: JwksCache::default(),
                    http: client.clone(),
                    plain: None,
                    pkce: true,
                    response_mode: response_mode(settings.response_mode),
                };
                (name.clone(), Arc::new(provider))
            })
            .collect();
        Providers {
            by_name: Arc::new(by_name),
        }
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Provider>> {
        self.by_name.get(name)
    }

    /// The configured provider names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }
}
