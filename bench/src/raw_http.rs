//! A lean HTTP/1.1 client for the hot scenarios: one keep-alive connection
//! per worker, requests written as bytes, responses parsed with `httparse`.
//!
//! Load generator and server share the machine's two CPUs, so every
//! microsecond the generator spends is one the server cannot: a general
//! client (`reqwest`: pools, header maps, a task per connection) costs several
//! times what this does per request. Scenarios that measure the server's
//! ceiling (`--client raw`, the default for them) use this; both clients speak
//! to the same server, and the baseline is measured with the same client as
//! the scenario in every run.

use std::net::SocketAddr;

use anyhow::Context;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest response head or body this client accepts.
const MAX_RESPONSE: usize = 1 << 20;

/// One keep-alive connection to `addr`, reopened when the server closes it.
pub struct RawConnection {
    addr: SocketAddr,
    host: String,
    stream: Option<TcpStream>,
    request: Vec<u8>,
    buffer: Vec<u8>,
}

/// A response: status, the `Set-Cookie` values, and the body.
pub struct RawResponse {
    pub status: u16,
    pub set_cookies: Vec<String>,
    pub body: Vec<u8>,
}

impl RawConnection {
    pub fn new(addr: SocketAddr) -> RawConnection {
        RawConnection {
            addr,
            host: addr.to_string(),
            stream: None,
            request: Vec::with_capacity(1024),
            buffer: Vec::with_capacity(4096),
        }
    }

    /// Sends one request and reads its whole response. `headers` are written
    /// as given (`Host`, `Content-Length` and keep-alive are added). A
    /// connection the server closed is reopened once, before anything was sent.
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<RawResponse, String> {
        self.request.clear();
        let r = &mut self.request;
        r.extend_from_slice(method.as_bytes());
        r.push(b' ');
        r.extend_from_slice(path.as_bytes());
        r.extend_from_slice(b" HTTP/1.1\r\nhost: ");
        r.extend_from_slice(self.host.as_bytes());
        r.extend_from_slice(b"\r\n");
        for (name, value) in headers {
            r.extend_from_slice(name.as_bytes());
            r.extend_from_slice(b": ");
            r.extend_from_slice(value.as_bytes());
            r.extend_from_slice(b"\r\n");
        }
        if !body.is_empty() || method != "GET" {
            r.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
        }
        r.extend_from_slice(b"\r\n");
        r.extend_from_slice(body);
        for attempt in 0..2 {
            if self.stream.is_none() {
                let stream = TcpStream::connect(self.addr)
                    .await
                    .map_err(|_| "connect".to_string())?;
                stream
                    .set_nodelay(true)
                    .map_err(|_| "connect".to_string())?;
                self.stream = Some(stream);
            }
            match self.exchange().await {
                Ok(response) => return Ok(response),
                // A kept-alive connection the server closed meanwhile: once more on a new one.
                Err(Exchange::Closed) if attempt == 0 => self.stream = None,
                Err(Exchange::Closed) => return Err("closed".into()),
                Err(Exchange::Failed(kind)) => {
                    self.stream = None;
                    return Err(kind);
                }
            }
        }
        unreachable!("the loop returns")
    }

    async fn exchange(&mut self) -> Result<RawResponse, Exchange> {
        let stream = self.stream.as_mut().expect("connected above");
        stream
            .write_all(&self.request)
            .await
            .map_err(|_| Exchange::Closed)?;
        self.buffer.clear();
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut parsed = httparse::Response::new(&mut headers);
            match parsed.parse(&self.buffer) {
                Ok(httparse::Status::Complete(head_len)) => {
                    let status = parsed.code.unwrap_or(0);
                    let mut length = 0usize;
                    let mut close = false;
                    let mut set_cookies = Vec::new();
                    for h in parsed.headers.iter() {
                        if h.name.eq_ignore_ascii_case("content-length") {
                            length = std::str::from_utf8(h.value)
                                .ok()
                                .and_then(|v| v.trim().parse().ok())
                                .ok_or_else(|| Exchange::Failed("bad length".into()))?;
                        } else if h.name.eq_ignore_ascii_case("set-cookie") {
                            set_cookies.push(String::from_utf8_lossy(h.value).into_owned());
                        } else if h.name.eq_ignore_ascii_case("connection") {
                            close = h.value.eq_ignore_ascii_case(b"close");
                        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                            return Err(Exchange::Failed("chunked".into()));
                        }
                    }
                    if length > MAX_RESPONSE {
                        return Err(Exchange::Failed("too large".into()));
                    }
                    while self.buffer.len() < head_len + length {
                        self.read_more().await?;
                    }
                    let body = self.buffer[head_len..head_len + length].to_vec();
                    if close {
                        self.stream = None;
                    }
                    return Ok(RawResponse {
                        status,
                        set_cookies,
                        body,
                    });
                }
                Ok(httparse::Status::Partial) => {
                    if self.buffer.len() > MAX_RESPONSE {
                        return Err(Exchange::Failed("too large".into()));
                    }
                    let before = self.buffer.len();
                    self.read_more().await?;
                    if before == 0 && self.buffer.is_empty() {
                        return Err(Exchange::Closed);
                    }
                }
                Err(_) => return Err(Exchange::Failed("bad response".into())),
            }
        }
    }

    async fn read_more(&mut self) -> Result<(), Exchange> {
        let stream = self.stream.as_mut().ok_or(Exchange::Closed)?;
        let mut chunk = [0u8; 8192];
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|_| Exchange::Closed)?;
        if n == 0 {
            return Err(if self.buffer.is_empty() {
                Exchange::Closed
            } else {
                Exchange::Failed("truncated".into())
            });
        }
        self.buffer.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}

enum Exchange {
    /// Nothing of a response arrived: the connection was closed.
    Closed,
    Failed(String),
}

/// One connection per worker of `options` to `addr`.
pub fn per_worker(
    addr: SocketAddr,
    options: &crate::Options,
) -> Vec<tokio::sync::Mutex<RawConnection>> {
    (0..options.concurrency)
        .map(|_| tokio::sync::Mutex::new(RawConnection::new(addr)))
        .collect()
}

/// The socket address of a loopback `http://` URL.
pub fn address_of(url: &reqwest::Url) -> anyhow::Result<SocketAddr> {
    if url.scheme() != "http" {
        anyhow::bail!("--client raw speaks plain http only, not {url}");
    }
    url.socket_addrs(|| Some(80))?
        .into_iter()
        .next()
        .with_context(|| format!("{url} names no address"))
}

/// The value of cookie `name` in a `Set-Cookie` list, if set.
pub fn cookie_value<'a>(set_cookies: &'a [String], name: &str) -> Option<&'a str> {
    set_cookies.iter().find_map(|c| {
        let pair = c.split(';').next()?;
        let (n, v) = pair.split_once('=')?;
        (n.trim() == name).then(|| v.trim())
    })
}
