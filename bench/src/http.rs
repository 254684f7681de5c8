//! The HTTP client every HTTP scenario uses, and the loopback-only URL check.
//!
//! One `reqwest::Client` per scenario, cloned into all workers (clones share
//! the pool): keep-alive, no proxy, idle pool sized to the concurrency, so the
//! figures measure the server and not connection setup. Targets are restricted
//! to loopback addresses: this tool must never load anything off the machine.

use std::net::IpAddr;
use std::time::Duration;

use bytes::Bytes;
use reqwest::{Client, RequestBuilder, Response, StatusCode, Url};

/// Builds the shared client for `concurrency` workers.
pub fn client(concurrency: u32) -> anyhow::Result<Client> {
    Ok(Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(concurrency as usize)
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .build()?)
}

/// `--url` parser: accepts only http(s) URLs whose host is a loopback address.
pub fn parse_loopback_url(s: &str) -> Result<Url, String> {
    let url = Url::parse(s).map_err(|e| e.to_string())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{s}: scheme must be http or https"));
    }
    let host = url.host_str().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if loopback {
        Ok(url)
    } else {
        Err(format!(
            "{s}: only loopback targets (127.0.0.0/8, ::1, localhost) are allowed"
        ))
    }
}

/// Maps a transport error to a short error kind for the report.
pub fn error_kind(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connect"
    } else if error.is_body() || error.is_decode() {
        "body"
    } else {
        "request"
    };
    kind.to_string()
}

/// Sends `request` and hands back a 200 answer; any other status is the error
/// `"<label> <status>"`, a transport failure its error kind.
pub async fn send_ok(request: RequestBuilder, label: &str) -> Result<Response, String> {
    let response = request.send().await.map_err(|e| error_kind(&e))?;
    if response.status() != StatusCode::OK {
        return Err(format!("{label} {}", response.status().as_u16()));
    }
    Ok(response)
}

/// The whole body of `response`.
pub async fn body(response: Response) -> Result<Bytes, String> {
    response.bytes().await.map_err(|e| error_kind(&e))
}

/// [`send_ok`], then the whole body.
pub async fn fetch_ok(request: RequestBuilder, label: &str) -> Result<Bytes, String> {
    body(send_ok(request, label).await?).await
}
