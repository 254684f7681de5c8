//! What every handler may know about its request beyond the request itself: the
//! request id (echoed or made), the client IP (the socket address, or
//! `X-Forwarded-For` only behind a trusted proxy) and the user agent. The
//! dispatcher computes it once and hands it to the contract filters.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use http::HeaderMap;
use warp::Filter;

#[derive(Debug, Clone)]
pub struct RequestContext {
    pub request_id: Arc<str>,
    pub client_ip: IpAddr,
    pub user_agent: Option<String>,
}

impl Default for RequestContext {
    fn default() -> Self {
        RequestContext {
            request_id: new_request_id().into(),
            client_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            user_agent: None,
        }
    }
}

fn new_request_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// A caller's request id is echoed only when it is short and plain.
fn sane_request_id(value: &str) -> bool {
    (1..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

impl RequestContext {
    pub fn from_request(
        headers: &HeaderMap,
        remote: SocketAddr,
        trust_proxy: bool,
    ) -> RequestContext {
        let request_id = headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| sane_request_id(v))
            .map(str::to_string)
            .unwrap_or_else(new_request_id);
        let forwarded = trust_proxy
            // The right-most entry of the last field is the one our trusted proxy
            // appended (some proxies add a field of their own rather than extend
            // the client's); everything before it came from the client and could
            // be forged.
            .then(|| headers.get_all("x-forwarded-for").iter().next_back())
            .flatten()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|ip| ip.trim().parse::<IpAddr>().ok());
        let user_agent = headers
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(256).collect());
        RequestContext {
            request_id: request_id.into(),
            client_ip: forwarded.unwrap_or(remote.ip()),
            user_agent,
        }
    }
}

/// The context the dispatcher attached to this request.
pub fn request_context() -> impl Filter<Extract = (RequestContext,), Error = Infallible> + Clone {
    warp::ext::optional::<RequestContext>().map(|c: Option<RequestContext>| c.unwrap_or_default())
}
