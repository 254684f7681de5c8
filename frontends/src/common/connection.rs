//! One client connection (HTTP/1.1 or HTTP/2 with prior knowledge, told apart
//! by hyper-util's auto builder), served under bounds that no client can
//! stretch: the time to send a request head (`limits.header_read_timeout`,
//! enforced by hyper for HTTP/1.1 heads, and here for the first request of a
//! connection, since no hyper timeout runs while the auto builder waits for the
//! first bytes to pick the protocol), the time a connection may sit with no
//! request in flight (`limits.keep_alive_idle_timeout`, watched here for both
//! protocols, which also ends a client that opens a connection and never sends
//! a byte), the size of a request head (64 KiB) and the streams one HTTP/2
//! connection may run at once. One [`Protocol`] (hyper's settings and timers)
//! is built per listener and shared by its connections.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::sync::watch;
use warp::http::Request;

use super::dispatcher::Dispatcher;

/// Largest request head (request line and headers) accepted, per protocol.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Streams one HTTP/2 connection may have open at once.
pub const MAX_CONCURRENT_STREAMS: u32 = 128;
/// How long an idle connection gets to close gracefully before it is dropped.
const IDLE_CLOSE_GRACE: Duration = Duration::from_secs(1);

/// hyper's settings for one listener: HTTP/1.1, or HTTP/2 when a connection
/// opens with its preface. Built once by [`ConnectionLimits::protocol`].
pub(crate) type Protocol = auto::Builder<TokioExecutor>;

/// The per-listener connection bounds, from `[limits]`.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub keep_alive_idle_timeout: Duration,
}

impl ConnectionLimits {
    pub fn from_config(limits: &tachigo_engine::config::LimitsConfig) -> ConnectionLimits {
        ConnectionLimits {
            max_connections: limits.max_connections,
            header_read_timeout: limits.header_read_timeout.0,
            keep_alive_idle_timeout: limits.keep_alive_idle_timeout.0,
        }
    }
}

/// Requests in flight on one connection and when that last changed.
struct Activity {
    opened: Instant,
    /// Whether a request has started on this connection.
    started: AtomicBool,
    in_flight: AtomicUsize,
    changed_ms: AtomicU64,
}

impl Activity {
    fn touch(&self) {
        let ms = self.opened.elapsed().as_millis() as u64;
        self.changed_ms.store(ms, Ordering::Release);
    }

    fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Resolves `wait` after the connection opened if no request has started by
    /// then; never otherwise. hyper bounds an HTTP/1.1 head from when it starts
    /// reading it, but the auto builder first reads the bytes that tell the
    /// protocol under no timeout: this bounds that phase and the first head.
    async fn no_request_within(&self, wait: Duration) {
        tokio::time::sleep_until((self.opened + wait).into()).await;
        if self.started.load(Ordering::Acquire) {
            std::future::pending::<()>().await;
        }
    }

    /// Resolves once no request has been in flight for `idle`. While requests
    /// are in flight it looks again an `idle` later (their own reads are
    /// bounded elsewhere: heads by the header timeout, bodies by the body
    /// filter's timeout).
    async fn idle_for(&self, idle: Duration) {
        loop {
            let changed = self.changed_ms.load(Ordering::Acquire);
            let deadline = self.opened + Duration::from_millis(changed) + idle;
            if self.in_flight() > 0 {
                tokio::time::sleep(idle).await;
                continue;
            }
            tokio::time::sleep_until(deadline.into()).await;
            if self.in_flight() == 0 && self.changed_ms.load(Ordering::Acquire) == changed {
                return;
            }
        }
    }
}

/// Counts a request as in flight until it is dropped (answered or abandoned).
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(activity: &Arc<Activity>) -> InFlight {
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        activity.started.store(true, Ordering::Release);
        activity.touch();
        InFlight(activity.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Counts an open connection in the `tachigo_http_connections_open` gauge.
struct OpenConnection;

impl OpenConnection {
    fn start() -> OpenConnection {
        metrics::gauge!("tachigo_http_connections_open").increment(1.0);
        OpenConnection
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        metrics::gauge!("tachigo_http_connections_open").decrement(1.0);
    }
}

impl ConnectionLimits {
    /// hyper's half of the bounds, for every connection of one listener (share
    /// it: each timer is an allocation).
    pub(crate) fn protocol(&self) -> Protocol {
        let mut protocol = auto::Builder::new(TokioExecutor::new());
        // hyper's header timeout needs a timer: without one it panics on the
        // first connection.
        protocol
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_read_timeout)
            .max_buf_size(MAX_HEAD_BYTES);
        protocol
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(MAX_HEAD_BYTES as u32)
            .max_concurrent_streams(MAX_CONCURRENT_STREAMS);
        protocol
    }

    /// Serves `stream` with `protocol` (from [`ConnectionLimits::protocol`])
    /// until the client closes it, it idles past the limit, or, once `closing`
    /// turns true, it is gracefully shut down.
    pub(crate) async fn serve(
        self,
        protocol: Arc<Protocol>,
        dispatcher: Dispatcher,
        stream: tokio::net::TcpStream,
        remote: SocketAddr,
        mut closing: watch::Receiver<bool>,
    ) {
        let _open = OpenConnection::start();
        let _ = stream.set_nodelay(true);
        let activity = Arc::new(Activity {
            opened: Instant::now(),
            started: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            changed_ms: AtomicU64::new(0),
        });
        let requests = activity.clone();
        let service = service_fn(move |request: Request<Incoming>| {
            let dispatcher = dispatcher.clone();
            let in_flight = InFlight::start(&requests);
            async move {
                let response = dispatcher.handle(request, remote).await;
                drop(in_flight);
                Ok::<_, Infallible>(response)
            }
        });
        let connection = protocol.serve_connection(TokioIo::new(stream), service);
        tokio::pin!(connection);
        let idle = tokio::select! {
            _ = connection.as_mut() => return,
            _ = closing.wait_for(|c| *c) => false,
            _ = activity.idle_for(self.keep_alive_idle_timeout) => true,
            // Closed without an answer, as hyper does past its header timeout.
            _ = activity.no_request_within(self.header_read_timeout) => return,
        };
        // While the protocol is still being picked this cancels the
        // connection: it then ends with an error, ignored like every other.
        connection.as_mut().graceful_shutdown();
        if idle {
            metrics::counter!("tachigo_http_connections_idle_closed_total").increment(1);
            let closed = tokio::time::timeout(IDLE_CLOSE_GRACE, connection.as_mut()).await;
            // A request that arrived just as the watchdog fired is finished, not cut.
            if closed.is_err() && activity.in_flight() > 0 {
                let _ = connection.await;
            }
        } else {
            let _ = connection.await;
        }
    }
}
