//! The dispatcher: one hyper service per listener that picks the contract by
//! path prefix and wraps every request in what all contracts share: the request
//! context and its tracing span, CORS (per contract), `Cache-Control: no-store`,
//! `x-request-id` on every response, and request metrics per route and status.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use http::header::{self, HeaderValue};
use hyper::server::conn::Http;
use hyper::service::{service_fn, Service};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::Instrument;
use warp::filters::BoxedFilter;
use warp::http::{Request, Response};
use warp::hyper::Body;

use super::cors::CorsPolicy;
use super::RequestContext;

type Handler = Arc<dyn Fn(Request<Body>) -> BoxFuture<'static, Response<Body>> + Send + Sync>;

/// One contract (or the system endpoints) mounted under a path prefix.
pub struct Mount {
    /// A short name for logs and metrics (`dashboard`, `extension`, `oauth`, `system`).
    pub name: &'static str,
    /// e.g. `/api/v1/auth/`; the empty prefix matches everything (the fallback).
    pub prefix: &'static str,
    pub cors: Option<CorsPolicy>,
    /// The contract's routes, with its recover step already applied.
    pub routes: BoxedFilter<(Response<Body>,)>,
}

struct MountedService {
    name: &'static str,
    prefix: &'static str,
    cors: Option<CorsPolicy>,
    handler: Handler,
}

/// Routes requests to mounts; cheap to clone.
#[derive(Clone)]
pub struct Dispatcher {
    mounts: Arc<Vec<MountedService>>,
    trust_proxy: bool,
}

fn handler_of(routes: BoxedFilter<(Response<Body>,)>) -> Handler {
    let service = warp::service(routes);
    Arc::new(move |request| {
        let mut service = service.clone();
        Box::pin(async move {
            match service.call(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            }
        })
    })
}

/// Replaces id-like path segments so route labels stay few.
fn route_label(path: &str) -> String {
    path.split('/')
        .map(|seg| {
            let looks_like_id = seg.len() >= 16
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if looks_like_id {
                "{id}"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

impl Dispatcher {
    /// Mounts are matched longest prefix first.
    pub fn new(mounts: Vec<Mount>, trust_proxy: bool) -> Dispatcher {
        let mut mounted: Vec<MountedService> = mounts
            .into_iter()
            .map(|m| MountedService {
                name: m.name,
                prefix: m.prefix,
                cors: m.cors,
                handler: handler_of(m.routes),
            })
            .collect();
        mounted.sort_by_key(|m| std::cmp::Reverse(m.prefix.len()));
        Dispatcher {
            mounts: Arc::new(mounted),
            trust_proxy,
        }
    }

    fn mount_for(&self, path: &str) -> Option<&MountedService> {
        self.mounts
            .iter()
            .find(|m| path.starts_with(m.prefix) || path == m.prefix.trim_end_matches('/'))
    }

    /// Handles one request from `remote`.
    pub async fn handle(&self, mut request: Request<Body>, remote: SocketAddr) -> Response<Body> {
        let started = Instant::now();
        let context = RequestContext::from_request(request.headers(), remote, self.trust_proxy);
        let request_id = context.request_id.clone();
        let method = request.method().clone();
        let path = request.uri().path().to_string();
        let request_headers = request.headers().clone();
        let mount = self.mount_for(&path);
        let contract = mount.map_or("none", |m| m.name);
        let span = tracing::info_span!("request", request_id = %request_id, %method, path = %path, contract);

        let mut response = match mount {
            Some(m) if m.cors.is_some() && CorsPolicy::is_preflight(&method, &request_headers) => m
                .cors
                .as_ref()
                .expect("checked above")
                .preflight(&request_headers),
            Some(m) => {
                request.extensions_mut().insert(context);
                let mut response = (m.handler)(request).instrument(span.clone()).await;
                if let Some(cors) = &m.cors {
                    cors.decorate(&request_headers, response.headers_mut());
                }
                response
            }
            None => super::ApiError::not_found("not_found", "no such route")
                .into_response(super::ErrorStyle::V1),
        };

        let headers = response.headers_mut();
        headers
            .entry(header::CACHE_CONTROL)
            .or_insert(HeaderValue::from_static("no-store"));
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            headers.insert("x-request-id", v);
        }
        let status = response.status().as_u16();
        let elapsed = started.elapsed();
        let route = if status == 404 {
            "unmatched".to_string()
        } else {
            route_label(&path)
        };
        let labels = [
            ("contract", contract.to_string()),
            ("method", method.to_string()),
            ("route", route),
            ("status", status.to_string()),
        ];
        metrics::counter!("tachigo_http_requests_total", &labels).increment(1);
        metrics::histogram!("tachigo_http_request_duration_seconds", &labels[..3])
            .record(elapsed.as_secs_f64());
        span.in_scope(|| {
            tracing::debug!(
                status,
                elapsed_us = elapsed.as_micros() as u64,
                "request finished"
            )
        });
        response
    }

    /// Serves on `listener` until `shutdown` resolves. Then it stops accepting,
    /// asks every open connection to finish its request in flight and close
    /// (idle keep-alive connections close at once), and after `drain_limit`
    /// closes those still open. The returned future ends only once no
    /// connection is left, so nothing this dispatcher reaches (the engine and
    /// its database) is held after it.
    pub fn serve(
        self,
        listener: std::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
        drain_limit: Duration,
    ) -> std::io::Result<impl Future<Output = ()> + Send> {
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        Ok(async move {
            let (closing, closing_watch) = watch::channel(false);
            let mut connections = JoinSet::new();
            tokio::pin!(shutdown);
            loop {
                tokio::select! {
                    _ = &mut shutdown => break,
                    accepted = listener.accept() => match accepted {
                        Ok((stream, remote)) => {
                            connections.spawn(self.clone().connection(stream, remote, closing_watch.clone()));
                        }
                        Err(e) => {
                            // Out of file descriptors and the like: back off, keep serving.
                            tracing::warn!(error = %e, "accepting a connection failed");
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    },
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
            drop(listener);
            let _ = closing.send(true);
            let drained = tokio::time::timeout(drain_limit, async {
                while connections.join_next().await.is_some() {}
            })
            .await;
            if drained.is_err() {
                tracing::warn!(
                    open = connections.len(),
                    limit = ?drain_limit,
                    "connections still open after the drain limit; closing them"
                );
                connections.abort_all();
                while connections.join_next().await.is_some() {}
            }
        })
    }

    /// One connection (HTTP/1.1 or HTTP/2), served until the client closes it
    /// or, once `closing` turns true, gracefully shut down.
    async fn connection(
        self,
        stream: tokio::net::TcpStream,
        remote: SocketAddr,
        mut closing: watch::Receiver<bool>,
    ) {
        let _ = stream.set_nodelay(true);
        let service = service_fn(move |request| {
            let dispatcher = self.clone();
            async move { Ok::<_, Infallible>(dispatcher.handle(request, remote).await) }
        });
        let connection = Http::new().serve_connection(stream, service);
        tokio::pin!(connection);
        tokio::select! {
            _ = connection.as_mut() => return,
            _ = closing.wait_for(|c| *c) => {}
        }
        connection.as_mut().graceful_shutdown();
        let _ = connection.await;
    }
}

#[cfg(test)]
mod tests {
    use super::route_label;

    #[test]
    fn id_segments_are_folded() {
        assert_eq!(
            route_label("/api/v1/auth/sessions/3f2c9a4e-0000-4000-8000-000000000000"),
            "/api/v1/auth/sessions/{id}"
        );
        assert_eq!(
            route_label("/api/auth/get-session"),
            "/api/auth/get-session"
        );
    }
}
