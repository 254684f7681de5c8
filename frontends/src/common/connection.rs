//! One client connection (HTTP/1.1 or HTTP/2 with prior knowledge), served under
//! bounds that no client can stretch: the time to send a request head
//! (`limits.header_read_timeout`, enforced by hyper for HTTP/1.1), the time a
//! connection may sit with no request in flight (`limits.keep_alive_idle_timeout`,
//! watched here for both protocols, which also ends a client that opens a
//! connection and never sends a request line), the size of a request head
//! (64 KiB) and the streams one HTTP/2 connection may run at once.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::server::conn::Http;
use hyper::service::service_fn;
use tokio::sync::watch;

use super::dispatcher::Dispatcher;

/// Largest request head (request line and headers) accepted, per protocol.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Streams one HTTP/2 connection may have open at once.
pub const MAX_CONCURRENT_STREAMS: u32 = 128;
/// How long an idle connection gets to close gracefully before it is dropped.
const IDLE_CLOSE_GRACE: Duration = Duration::from_secs(1);

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
    fn protocol(&self) -> Http {
        let mut http = Http::new();
        http.http1_header_read_timeout(self.header_read_timeout)
            .max_buf_size(MAX_HEAD_BYTES)
            .http2_max_header_list_size(MAX_HEAD_BYTES as u32)
            .http2_max_concurrent_streams(MAX_CONCURRENT_STREAMS);
        http
    }

    /// Serves `stream` until the client closes it, it idles past the limit, or,
    /// once `closing` turns true, it is gracefully shut down.
    pub(crate) async fn serve(
        self,
        dispatcher: Dispatcher,
        stream: tokio::net::TcpStream,
        remote: SocketAddr,
        mut closing: watch::Receiver<bool>,
    ) {
        let _open = OpenConnection::start();
        let _ = stream.set_nodelay(true);
        let activity = Arc::new(Activity {
            opened: Instant::now(),
            in_flight: AtomicUsize::new(0),
            changed_ms: AtomicU64::new(0),
        });
        let requests = activity.clone();
        let service = service_fn(move |request| {
            let dispatcher = dispatcher.clone();
            let in_flight = InFlight::start(&requests);
            async move {
                let response = dispatcher.handle(request, remote).await;
                drop(in_flight);
                Ok::<_, Infallible>(response)
            }
        });
        let connection = self.protocol().serve_connection(stream, service);
        tokio::pin!(connection);
        let idle = tokio::select! {
            _ = connection.as_mut() => return,
            _ = closing.wait_for(|c| *c) => false,
            _ = activity.idle_for(self.keep_alive_idle_timeout) => true,
        };
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
