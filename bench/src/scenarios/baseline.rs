//! The baseline: a bare warp endpoint in this process, driven over HTTP.
//!
//! `GET /baseline` on 127.0.0.1 (ephemeral port) answers a fixed 600-byte JSON
//! body built once. It measures what this machine, the HTTP stack and the
//! load generator can do with no application work, so every HTTP scenario is
//! reported as a ratio to the baseline measured in the same run.

use bytes::Bytes;
use reqwest::{Client, Url};
use tokio::task::AbortHandle;
use warp::Filter;

use crate::driver::Scenario;
use crate::raw_http::{self, RawConnection};
use crate::{http, ClientKind, Options};

const BODY_LEN: usize = 600;

pub struct Baseline {
    client: Client,
    url: Url,
    /// With `--client raw`: one connection per worker.
    raw: Option<Vec<tokio::sync::Mutex<RawConnection>>>,
    server: AbortHandle,
}

/// A JSON object of exactly `BODY_LEN` bytes.
fn body() -> Bytes {
    let shape = |pad: &str| serde_json::json!({ "ok": true, "pad": pad }).to_string();
    let body = shape(&"x".repeat(BODY_LEN - shape("").len()));
    assert_eq!(body.len(), BODY_LEN);
    Bytes::from(body)
}

/// `GET /baseline`: the fixed body, nothing else (also served alone by
/// `serve-baseline` for the `ceiling` scenario).
pub fn route() -> impl warp::Filter<Extract = (impl warp::Reply,), Error = warp::Rejection> + Clone
{
    let body = body();
    warp::get().and(warp::path("baseline")).map(move || {
        warp::http::Response::builder()
            .header(warp::http::header::CONTENT_TYPE, "application/json")
            .body(body.clone())
    })
}

impl Scenario for Baseline {
    const NAME: &'static str = "baseline";

    async fn setup(options: &Options) -> anyhow::Result<Self> {
        let route = route();
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(warp::serve(route).incoming(listener).run()).abort_handle();
        Ok(Baseline {
            client: http::client(options.concurrency)?,
            url: Url::parse(&format!("http://{addr}/baseline"))?,
            raw: (options.client == ClientKind::Raw).then(|| raw_http::per_worker(addr, options)),
            server,
        })
    }

    async fn step(&self, worker: usize, _iteration: u64) -> Result<(), String> {
        if let Some(raw) = &self.raw {
            let response = raw[worker]
                .lock()
                .await
                .send("GET", "/baseline", &[], b"")
                .await?;
            if response.status != 200 {
                return Err(format!("status {}", response.status));
            }
            if response.body.len() != BODY_LEN {
                return Err("body length".to_string());
            }
            return Ok(());
        }
        let body = http::fetch_ok(self.client.get(self.url.clone()), "status").await?;
        if body.len() != BODY_LEN {
            return Err("body length".to_string());
        }
        Ok(())
    }
}

impl Drop for Baseline {
    fn drop(&mut self) {
        self.server.abort();
    }
}
