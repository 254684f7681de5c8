//! What every handler may know about its request beyond the request itself: the
//! request id (echoed or made), the client IP (the socket address, or
//! `X-Forwarded-For` only behind a trusted proxy) and the user agent. The
//! dispatcher computes it once and hands it to the contract filters.
//!
//! The dispatcher also runs each request inside a [`RequestScope`] (a task
//! local): the log formatter reads it to put the request id, method, route and
//! contract on every line the request logs, which costs nothing for the lines
//! never written (a tracing span per request was formatted whether or not
//! anything logged inside it).

use std::convert::Infallible;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use http::header::{HeaderName, USER_AGENT};
use http::{HeaderMap, HeaderValue};
use rand::RngCore;
use warp::Filter;

/// A request's id: the caller's `x-request-id` when it is sane, else a new one.
/// Cheap to clone (it is the header value the response carries).
#[derive(Clone, PartialEq, Eq)]
pub struct RequestId(HeaderValue);

impl RequestId {
    /// 128 random bits from the thread's CSPRNG, as 32 hex digits.
    pub fn new() -> RequestId {
        let mut bytes = [0u8; 16];
        rand::rng().fill_bytes(&mut bytes);
        let mut hex = [0u8; 32];
        for (i, b) in bytes.iter().enumerate() {
            hex[2 * i] = HEX[(b >> 4) as usize];
            hex[2 * i + 1] = HEX[(b & 0xf) as usize];
        }
        RequestId(HeaderValue::from_bytes(&hex).expect("hex digits are a header value"))
    }

    /// The caller's id when it is 1–128 plain characters.
    fn echoed(value: &HeaderValue) -> Option<RequestId> {
        let bytes = value.as_bytes();
        let sane = (1..=128).contains(&bytes.len())
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
        sane.then(|| RequestId(value.clone()))
    }

    pub fn as_str(&self) -> &str {
        self.0.to_str().expect("request ids are plain ASCII")
    }

    /// The `x-request-id` value of the response.
    pub fn header_value(&self) -> HeaderValue {
        self.0.clone()
    }
}

impl Default for RequestId {
    fn default() -> Self {
        RequestId::new()
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// `x-request-id`, parsed once.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The longest user agent kept (in characters).
const MAX_USER_AGENT_CHARS: usize = 256;

#[derive(Debug, Clone)]
pub struct RequestContext {
    pub request_id: RequestId,
    pub client_ip: IpAddr,
    /// The raw header; [`RequestContext::user_agent`] reads it.
    user_agent: Option<HeaderValue>,
}

impl Default for RequestContext {
    fn default() -> Self {
        RequestContext {
            request_id: RequestId::new(),
            client_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            user_agent: None,
        }
    }
}

impl RequestContext {
    pub fn from_request(
        headers: &HeaderMap,
        remote: SocketAddr,
        trust_proxy: bool,
    ) -> RequestContext {
        let request_id = headers
            .get(&X_REQUEST_ID)
            .and_then(RequestId::echoed)
            .unwrap_or_default();
        let forwarded = trust_proxy
            // The right-most entry of the last field is the one our trusted proxy
            // appended (some proxies add a field of their own rather than extend
            // the client's); everything before it came from the client and could
            // be forged.
            .then(|| headers.get_all(&X_FORWARDED_FOR).iter().next_back())
            .flatten()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|ip| ip.trim().parse::<IpAddr>().ok());
        RequestContext {
            request_id,
            client_ip: forwarded.unwrap_or(remote.ip()),
            user_agent: headers.get(USER_AGENT).cloned(),
        }
    }

    /// The caller's `User-Agent` (its first 256 characters), when it is text.
    pub fn user_agent(&self) -> Option<String> {
        let ua = self.user_agent.as_ref()?.to_str().ok()?;
        Some(ua.chars().take(MAX_USER_AGENT_CHARS).collect())
    }
}

/// The context the dispatcher attached to this request.
pub fn request_context() -> impl Filter<Extract = (RequestContext,), Error = Infallible> + Clone {
    warp::ext::optional::<RequestContext>().map(|c: Option<RequestContext>| c.unwrap_or_default())
}

/// Which request the running task serves, for the log lines it writes.
#[derive(Debug, Clone)]
pub struct RequestScope {
    pub request_id: RequestId,
    pub method: &'static str,
    pub route: &'static str,
    pub contract: &'static str,
}

tokio::task_local! {
    static REQUEST_SCOPE: RequestScope;
}

impl RequestScope {
    /// Runs `work` inside this scope.
    pub async fn run<F: std::future::Future>(self, work: F) -> F::Output {
        REQUEST_SCOPE.scope(self, work).await
    }

    /// The scope of the request the current task serves, if any; `with` sees it.
    pub fn with_current<R>(with: impl FnOnce(Option<&RequestScope>) -> R) -> R {
        let mut with = Some(with);
        match REQUEST_SCOPE.try_with(|scope| (with.take().expect("called once"))(Some(scope))) {
            Ok(r) => r,
            Err(_) => (with.take().expect("called once"))(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_are_32_hex_digits_and_distinct() {
        let a = RequestId::new();
        let b = RequestId::new();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 32);
        assert!(a.as_str().bytes().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn only_sane_ids_are_echoed() {
        let mut headers = HeaderMap::new();
        let remote: SocketAddr = "127.0.0.1:1".parse().unwrap();
        headers.insert("x-request-id", HeaderValue::from_static("abc-123_x.y:z"));
        let c = RequestContext::from_request(&headers, remote, false);
        assert_eq!(c.request_id.as_str(), "abc-123_x.y:z");
        for bad in ["", "has space", "ü"] {
            let mut headers = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_str(bad) {
                headers.insert("x-request-id", v);
            }
            let c = RequestContext::from_request(&headers, remote, false);
            assert_ne!(c.request_id.as_str(), bad);
            assert_eq!(c.request_id.as_str().len(), 32);
        }
        headers.insert(
            "x-request-id",
            HeaderValue::from_str(&"a".repeat(129)).unwrap(),
        );
        let c = RequestContext::from_request(&headers, remote, false);
        assert_eq!(c.request_id.as_str().len(), 32);
    }

    #[tokio::test]
    async fn the_scope_is_seen_inside_and_only_inside() {
        assert!(RequestScope::with_current(|s| s.is_none()));
        let scope = RequestScope {
            request_id: RequestId::new(),
            method: "GET",
            route: "/x",
            contract: "system",
        };
        let id = scope.request_id.clone();
        let seen = scope
            .run(async { RequestScope::with_current(|s| s.map(|s| s.request_id.clone())) })
            .await;
        assert_eq!(seen, Some(id));
    }
}
