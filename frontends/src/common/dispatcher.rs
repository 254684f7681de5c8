//! The dispatcher: one request handler per listener (hyper serves it on every
//! connection) that picks the contract by path prefix and wraps every request
//! in what all contracts share: the request context and the request scope its
//! log lines are named by, every `Cookie` field joined into one, CORS (per
//! contract), `Cache-Control: no-store`, `x-request-id` on every response, and
//! request metrics labelled from the contract's route table (never from the
//! caller's path or method). A mount's direct routes answer before its filter
//! tree (see [`Mount::direct`]).
//! Its accept loop bounds the open connections; each connection is served
//! under the timeouts of [`super::connection`], with one hyper protocol
//! builder shared by all of them.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::header::{self, HeaderValue};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tower_service::Service;
use warp::filters::BoxedFilter;
use warp::http::{Request, Response};

use super::connection::ConnectionLimits;
use super::cookies::join_cookie_fields;
use super::cors::CorsPolicy;
use super::request_context::{RequestScope, X_REQUEST_ID};
use super::request_metrics::RequestMetrics;
use super::route_table::{method_index, RouteTable, METHOD_LABELS, UNMATCHED};
use super::{Body, RequestContext};

/// One contract (or the system endpoints) mounted under a path prefix.
pub struct Mount {
    /// A short name for logs and metrics (`dashboard`, `extension`, `oauth`, `system`).
    pub name: &'static str,
    /// e.g. `/api/v1/auth/`; the empty prefix matches everything (the fallback).
    pub prefix: &'static str,
    pub cors: Option<CorsPolicy>,
    /// What `routes` serves: the source of metric labels and CORS methods.
    pub table: RouteTable,
    /// The contract's routes, with its recover step already applied.
    pub routes: BoxedFilter<(Response<Body>,)>,
    /// Routes answered without the filter tree: given the row of `table` a
    /// request matched (method included) and its headers, the response, or
    /// `None` for the filters to serve. For the most frequent requests that
    /// read nothing but headers and answer without waiting: the system
    /// mount's probes and JWKS, and get-session from a published view.
    pub direct: Option<DirectRoutes>,
}

/// See [`Mount::direct`].
pub type DirectRoutes =
    Arc<dyn Fn(usize, &http::HeaderMap) -> Option<Response<Body>> + Send + Sync>;

struct MountedService {
    name: &'static str,
    prefix: &'static str,
    /// `prefix` without its trailing slash: that path is the mount's too.
    bare_prefix: &'static str,
    cors: Option<CorsPolicy>,
    table: RouteTable,
    metrics: RequestMetrics,
    routes: BoxedFilter<(Response<Body>,)>,
    direct: Option<DirectRoutes>,
}

impl MountedService {
    /// Serves `request` with the mount's filter tree, inside `scope`.
    async fn serve<B>(
        &self,
        mut request: Request<B>,
        context: RequestContext,
        scope: &RequestScope,
    ) -> Response<Body>
    where
        B: http_body::Body + Send + Sync + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let origin = request.headers().get(header::ORIGIN).cloned();
        request.extensions_mut().insert(context);
        // `warp::service` only wraps the filter: building it clones one Arc.
        let mut routes = warp::service(self.routes.clone());
        let mut response = match scope.clone().run(routes.call(request)).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        if let Some(cors) = &self.cors {
            cors.decorate(origin.as_ref(), response.headers_mut());
        }
        response
    }
}

/// Routes requests to mounts; cheap to clone.
#[derive(Clone)]
pub struct Dispatcher {
    mounts: Arc<Vec<MountedService>>,
    /// The series of requests no mount serves (a listener without a fallback).
    unmounted: Arc<RequestMetrics>,
    trust_proxy: bool,
}

impl Dispatcher {
    /// Mounts are matched longest prefix first.
    pub fn new(mounts: Vec<Mount>, trust_proxy: bool) -> Dispatcher {
        let mut mounted: Vec<MountedService> = mounts
            .into_iter()
            .map(|m| MountedService {
                name: m.name,
                prefix: m.prefix,
                bare_prefix: m.prefix.trim_end_matches('/'),
                cors: m.cors,
                metrics: RequestMetrics::new(m.name, &m.table),
                table: m.table,
                routes: m.routes,
                direct: m.direct,
            })
            .collect();
        mounted.sort_by_key(|m| std::cmp::Reverse(m.prefix.len()));
        Dispatcher {
            mounts: Arc::new(mounted),
            unmounted: Arc::new(RequestMetrics::new("none", &RouteTable::default())),
            trust_proxy,
        }
    }

    fn mount_for(&self, path: &str) -> Option<&MountedService> {
        self.mounts
            .iter()
            .find(|m| path.starts_with(m.prefix) || path == m.bare_prefix)
    }

    /// Handles one request from `remote`. Any request body will do: hyper's
    /// `Incoming` on a connection, a ready-made one in a test.
    pub async fn handle<B>(&self, mut request: Request<B>, remote: SocketAddr) -> Response<Body>
    where
        B: http_body::Body + Send + Sync + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let started = Instant::now();
        join_cookie_fields(request.headers_mut());
        let context = RequestContext::from_request(request.headers(), remote, self.trust_proxy);
        let request_id = context.request_id.clone();
        let method = method_index(request.method());
        let http2 = request.version() == http::Version::HTTP_2;
        let mount = self.mount_for(request.uri().path());
        let route = mount.and_then(|m| m.table.route(request.method(), request.uri().path()));
        let scope = RequestScope {
            request_id: request_id.clone(),
            method: METHOD_LABELS[method],
            route: match (mount, route) {
                (Some(m), Some(route)) => m.table.template(route),
                _ => UNMATCHED,
            },
            contract: mount.map_or("none", |m| m.name),
        };

        let mut response = match mount {
            Some(m)
                if m.cors.is_some()
                    && CorsPolicy::is_preflight(request.method(), request.headers()) =>
            {
                let allowed_methods = m.table.allowed_methods(request.uri().path());
                m.cors
                    .as_ref()
                    .expect("checked above")
                    .preflight(request.headers(), &allowed_methods)
            }
            Some(m)
                if m.direct.is_some()
                    && route.is_some_and(|r| m.table.serves(r, request.method())) =>
            {
                let direct = m.direct.as_ref().expect("checked above");
                match direct(route.expect("checked above"), request.headers()) {
                    Some(mut response) => {
                        if let Some(cors) = &m.cors {
                            let origin = request.headers().get(header::ORIGIN);
                            cors.decorate(origin, response.headers_mut());
                        }
                        response
                    }
                    None => m.serve(request, context, &scope).await,
                }
            }
            Some(m) => m.serve(request, context, &scope).await,
            None => super::ApiError::not_found("not_found", "no such route")
                .into_response(super::ErrorStyle::V1),
        };

        let headers = response.headers_mut();
        if http2 {
            // Connection-specific headers are illegal in HTTP/2 (hyper would
            // drop it with a warning per response).
            headers.remove(header::CONNECTION);
        }
        headers
            .entry(header::CACHE_CONTROL)
            .or_insert(HeaderValue::from_static("no-store"));
        headers.insert(X_REQUEST_ID.clone(), request_id.header_value());
        let status = response.status().as_u16();
        let elapsed = started.elapsed();
        match mount {
            Some(m) => m.metrics.record(route, method, status, elapsed),
            None => self.unmounted.record(None, method, status, elapsed),
        }
        if tracing::enabled!(tracing::Level::DEBUG) {
            scope
                .run(async {
                    tracing::debug!(
                        status,
                        elapsed_us = elapsed.as_micros() as u64,
                        "request finished"
                    )
                })
                .await;
        }
        response
    }

    /// Serves on `listener` until `shutdown` resolves, with at most
    /// `limits.max_connections` connections open (past it, new connections wait
    /// in the kernel's accept queue). Then it stops accepting, asks every open
    /// connection to finish its request in flight and close (idle keep-alive
    /// connections close at once), and after `drain_limit` closes those still
    /// open. The returned future ends only once no connection is left, so
    /// nothing this dispatcher reaches (the engine and its database) is held
    /// after it.
    pub fn serve(
        self,
        listener: std::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
        drain_limit: Duration,
        limits: ConnectionLimits,
    ) -> std::io::Result<impl Future<Output = ()> + Send> {
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
        let protocol = Arc::new(limits.protocol());
        Ok(async move {
            let (closing, closing_watch) = watch::channel(false);
            let mut connections = JoinSet::new();
            tokio::pin!(shutdown);
            'serving: loop {
                // A slot first, then a connection: at the bound, the accept queue
                // holds new clients until an open connection ends.
                let slot = tokio::select! {
                    _ = &mut shutdown => break 'serving,
                    Ok(slot) = slots.clone().acquire_owned() => slot,
                    Some(_) = connections.join_next(), if !connections.is_empty() => continue,
                };
                let accepted = loop {
                    tokio::select! {
                        _ = &mut shutdown => break 'serving,
                        accepted = listener.accept() => break accepted,
                        Some(_) = connections.join_next(), if !connections.is_empty() => {}
                    }
                };
                match accepted {
                    Ok((stream, remote)) => {
                        let dispatcher = self.clone();
                        let closing = closing_watch.clone();
                        let protocol = protocol.clone();
                        connections.spawn(async move {
                            limits
                                .serve(protocol, dispatcher, stream, remote, closing)
                                .await;
                            drop(slot);
                        });
                    }
                    Err(e) => {
                        // Out of file descriptors and the like: back off, keep serving.
                        tracing::warn!(error = %e, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
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
}
