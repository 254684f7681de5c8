//! A provider's endpoints: fixed for the built-in providers, or read from the
//! issuer's OpenID Connect discovery document
//! (`{issuer}/.well-known/openid-configuration`), fetched on first use and
//! cached for an hour. A failed refresh keeps serving the last good document;
//! a document whose `issuer` is not the configured one is refused.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::Mutex;

use super::http::{check_endpoint, get_json};
use super::ProviderError;

const DISCOVERY_TTL: Duration = Duration::from_secs(3600);

/// The subset of a discovery document this server uses.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Endpoints {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
    pub jwks_uri: String,
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
}

impl Endpoints {
    /// Every endpoint must be https (http only on loopback).
    fn check(&self) -> Result<(), ProviderError> {
        check_endpoint("authorization endpoint", &self.authorization_endpoint)?;
        check_endpoint("token endpoint", &self.token_endpoint)?;
        check_endpoint("JWKS URI", &self.jwks_uri)?;
        if let Some(userinfo) = &self.userinfo_endpoint {
            check_endpoint("userinfo endpoint", userinfo)?;
        }
        Ok(())
    }
}

/// Where a provider's endpoints come from.
pub(crate) enum EndpointSource {
    Fixed(Arc<Endpoints>),
    Discovered(Discovery),
}

impl EndpointSource {
    pub(crate) fn discover(issuer: &str) -> EndpointSource {
        EndpointSource::Discovered(Discovery {
            issuer: issuer.to_string(),
            cached: Mutex::new(None),
        })
    }

    pub(crate) async fn endpoints(
        &self,
        http: &reqwest::Client,
    ) -> Result<Arc<Endpoints>, ProviderError> {
        match self {
            EndpointSource::Fixed(endpoints) => Ok(endpoints.clone()),
            EndpointSource::Discovered(discovery) => discovery.endpoints(http).await,
        }
    }
}

pub(crate) struct Discovery {
    issuer: String,
    cached: Mutex<Option<(Instant, Arc<Endpoints>)>>,
}

fn same_issuer(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

impl Discovery {
    async fn endpoints(&self, http: &reqwest::Client) -> Result<Arc<Endpoints>, ProviderError> {
        // Held across the fetch: concurrent callers wait for one request.
        let mut cached = self.cached.lock().await;
        if let Some((at, endpoints)) = cached.as_ref() {
            if at.elapsed() < DISCOVERY_TTL {
                return Ok(endpoints.clone());
            }
        }
        match self.fetch(http).await {
            Ok(fresh) => {
                let fresh = Arc::new(fresh);
                *cached = Some((Instant::now(), fresh.clone()));
                Ok(fresh)
            }
            Err(e) => match cached.as_ref() {
                Some((_, stale)) => {
                    tracing::warn!(issuer = %self.issuer, error = %e, "OIDC discovery refresh failed; keeping the previous document");
                    Ok(stale.clone())
                }
                None => Err(e),
            },
        }
    }

    async fn fetch(&self, http: &reqwest::Client) -> Result<Endpoints, ProviderError> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.issuer.trim_end_matches('/')
        );
        check_endpoint("issuer", &url)?;
        let endpoints: Endpoints = get_json(http, "discovery document", &url, None)
            .await?
            .map_err(|status| {
                ProviderError::Unavailable(format!("discovery document: status {status}"))
            })?;
        if !same_issuer(&endpoints.issuer, &self.issuer) {
            return Err(ProviderError::Misconfigured(
                "the discovery document names a different issuer".into(),
            ));
        }
        endpoints.check()?;
        Ok(endpoints)
    }
}
