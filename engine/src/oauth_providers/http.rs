//! The HTTP client every provider call goes through: short timeouts, no
//! redirects followed (an endpoint that redirects is misconfigured, and following
//! redirects from provider responses is a request-forgery risk), bounded
//! response bodies, and endpoints that must be https unless they are on a
//! loopback host (local test providers).

use std::time::Duration;

use serde::de::DeserializeOwned;

use super::ProviderError;

/// The most any provider document (discovery, JWKS, userinfo) may weigh.
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

/// Builds the client shared by all providers (it pools connections per host).
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("tachigo-auth/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the provider HTTP client builds with static settings")
}

/// Whether `url` is https, or http on a loopback host.
pub(crate) fn acceptable_endpoint(url: &str) -> bool {
    let Ok(parsed) = url::Url::parse(url) else {
        return false;
    };
    match parsed.scheme() {
        "https" => parsed.host().is_some(),
        "http" => match parsed.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        },
        _ => false,
    }
}

/// Checks an endpoint named `what` before it is used.
pub(crate) fn check_endpoint(what: &str, url: &str) -> Result<(), ProviderError> {
    if acceptable_endpoint(url) {
        Ok(())
    } else {
        Err(ProviderError::Misconfigured(format!(
            "the {what} must be an https URL (http only on loopback)"
        )))
    }
}

/// Maps a transport failure to [`ProviderError::Unavailable`] naming `what`.
pub(crate) fn unavailable(what: &str, error: &reqwest::Error) -> ProviderError {
    let why = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    ProviderError::Unavailable(format!("{what}: {why}"))
}

/// GETs a JSON document (optionally with a bearer token). A non-2xx answer is
/// `Err(status)` so callers can decide what it means; transport failures and
/// oversized or malformed bodies are [`ProviderError::Unavailable`].
pub(crate) async fn get_json<T: DeserializeOwned>(
    client: &reqwest::Client,
    what: &str,
    url: &str,
    bearer: Option<&str>,
) -> Result<Result<T, reqwest::StatusCode>, ProviderError> {
    let mut request = client
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json");
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let mut response = request.send().await.map_err(|e| unavailable(what, &e))?;
    let status = response.status();
    if !status.is_success() {
        return Ok(Err(status));
    }
    if response
        .content_length()
        .is_some_and(|n| n > MAX_DOCUMENT_BYTES as u64)
    {
        return Err(ProviderError::Unavailable(format!(
            "{what}: response too large"
        )));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| unavailable(what, &e))? {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err(ProviderError::Unavailable(format!(
                "{what}: response too large"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map(Ok).map_err(|_| {
        ProviderError::Unavailable(format!("{what}: response is not the expected JSON"))
    })
}

#[cfg(test)]
mod tests {
    use super::acceptable_endpoint;

    #[test]
    fn https_everywhere_http_only_on_loopback() {
        assert!(acceptable_endpoint(
            "https://accounts.google.com/o/oauth2/v2/auth"
        ));
        assert!(acceptable_endpoint("http://127.0.0.1:4444/token"));
        assert!(acceptable_endpoint("http://localhost:4444/token"));
        assert!(acceptable_endpoint("http://[::1]:4444/token"));
        assert!(!acceptable_endpoint("http://idp.example/token"));
        assert!(!acceptable_endpoint("ftp://127.0.0.1/token"));
        assert!(!acceptable_endpoint("not a url"));
    }
}
