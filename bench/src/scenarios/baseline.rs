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
use crate::{http, Options};

const BODY_LEN: usize = 600;

pub struct Baseline {
    client: Client,
    url: Url,
    server: AbortHandle,
}

/// A JSON object of exactly `BODY_LEN` bytes.
fn body() -> Bytes {
    let shape = |pad: &str| serde_json::json!({ "ok": true, "pad": pad }).to_string();
    let body = shape(&"x".repeat(BODY_LEN - shape("").len()));
    assert_eq!(body.len(), BODY_LEN);
    Bytes::from(body)
}

impl Scenario for Baseline {
    const NAME: &'static str = "baseline";

    async fn setup(options: &Options) -> anyhow::Result<Self> {
        let body = body();
        let route = warp::get().and(warp::path("baseline")).map(move || {
            warp::http::Response::builder()
                .header(warp::http::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
        });
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(warp::serve(route).incoming(listener).run()).abort_handle();
        Ok(Baseline {
            client: http::client(options.concurrency)?,
            url: Url::parse(&format!("http://{addr}/baseline"))?,
            server,
        })
    }

    async fn step(&self, _worker: usize, _iteration: u64) -> Result<(), String> {
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
