//! One client connection (HTTP/1.1 or HTTP/2 with prior knowledge, told apart
//! by hyper-util's auto builder), served under bounds that no client can
//! stretch: the time to send a request head (`limits.header_read_timeout`,
//! from its first bytes, and for the first request from the connection
//! opening), the time a connection may sit with no request in flight
//! (`limits.keep_alive_idle_timeout`, for both protocols), the size of a
//! request head (64 KiB) and the streams one HTTP/2 connection may run at once.
//!
//! Both clocks are one watchdog per connection that reads what the connection
//! records as it goes (requests starting and ending, bytes arriving), so a
//! request costs a few atomic stores and no timer of its own. One [`Protocol`]
//! (hyper's settings) is built per listener and shared by its connections.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
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

/// "No head is being read" in [`Activity::head_since_ms`].
const NO_HEAD: u64 = u64::MAX;

/// Requests in flight on one connection and when that last changed.
struct Activity {
    opened: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds since `opened` at the last request start or end.
    changed_ms: AtomicU64,
    /// Milliseconds since `opened` when bytes of a request head began to
    /// arrive with no request in flight ([`NO_HEAD`] once a request started on
    /// them). It starts at 0: the first request must begin within the header
    /// timeout of the connection opening.
    head_since_ms: AtomicU64,
    /// Whether a request has started on this connection.
    started: AtomicBool,
    /// The connection opened with the HTTP/2 preface: once its first request
    /// has started, its frames are bounded by HTTP/2's own limits, not here.
    http2: AtomicBool,
    /// Whether anything was read yet (the first bytes tell the protocol).
    read_any: AtomicBool,
}

/// Why the watchdog ends a connection.
enum Expiry {
    /// No request in flight for `keep_alive_idle_timeout`: close gracefully.
    Idle,
    /// A request head not complete within `header_read_timeout`: drop it.
    SlowHead,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            opened: Instant::now(),
            in_flight: AtomicUsize::new(0),
            changed_ms: AtomicU64::new(0),
            head_since_ms: AtomicU64::new(0),
            started: AtomicBool::new(false),
            http2: AtomicBool::new(false),
            read_any: AtomicBool::new(false),
        }
    }

    fn now_ms(&self) -> u64 {
        self.opened.elapsed().as_millis() as u64
    }

    fn touch(&self) {
        self.changed_ms.store(self.now_ms(), Ordering::Release);
    }

    fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// The connection read `bytes` from the client.
    fn read(&self, bytes: &[u8]) {
        if !self.read_any.swap(true, Ordering::AcqRel) {
            self.http2
                .store(bytes.starts_with(b"PRI "), Ordering::Release);
        }
        if self.in_flight() == 0 && self.head_since_ms.load(Ordering::Acquire) == NO_HEAD {
            self.head_since_ms.store(self.now_ms(), Ordering::Release);
        }
    }

    /// Resolves when the connection has been idle for `idle`, or a request
    /// head has taken longer than `head` from its first bytes. (Bytes that
    /// arrive while a request is in flight may be its body: a head pipelined
    /// behind a request is bounded by the idle clock instead.) It wakes at
    /// least every `head`, so a head that began while it slept is cut on time.
    async fn expiry(&self, idle: Duration, head: Duration) -> Expiry {
        let (idle_ms, head_ms) = (idle.as_millis() as u64, head.as_millis() as u64);
        loop {
            let now = self.now_ms();
            let mut due = now + head_ms.min(idle_ms);
            if self.in_flight() == 0 {
                // Requests in flight bound their own reads (bodies by the
                // body filter's timeout); only between them does a clock run.
                let changed = self.changed_ms.load(Ordering::Acquire);
                let idle_at = changed + idle_ms;
                let since = self.head_since_ms.load(Ordering::Acquire);
                let http2_running =
                    self.http2.load(Ordering::Acquire) && self.started.load(Ordering::Acquire);
                let head_at = if since == NO_HEAD || http2_running {
                    u64::MAX
                } else {
                    since.max(changed) + head_ms
                };
                if now >= head_at {
                    return Expiry::SlowHead;
                }
                if now >= idle_at {
                    return Expiry::Idle;
                }
                due = due.min(idle_at).min(head_at);
            }
            let wake = self.opened + Duration::from_millis(due);
            tokio::time::sleep_until(wake.into()).await;
        }
    }
}

/// The client's stream, telling [`Activity`] when bytes arrive (the start of
/// a request head), so slow heads are bounded without a timer per request.
struct WatchedStream {
    stream: tokio::net::TcpStream,
    activity: Arc<Activity>,
}

impl tokio::io::AsyncRead for WatchedStream {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = std::pin::Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(polled, std::task::Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.read(&buf.filled()[before..]);
        }
        polled
    }
}

impl tokio::io::AsyncWrite for WatchedStream {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Counts a request as in flight until it is dropped (answered or abandoned).
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(activity: &Arc<Activity>) -> InFlight {
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        activity.started.store(true, Ordering::Release);
        activity.head_since_ms.store(NO_HEAD, Ordering::Release);
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
    /// hyper's half of the bounds, for every connection of one listener. It
    /// has no timer: the head timeout is the connection watchdog's, which
    /// costs nothing per request, where hyper's arms a timer for every head.
    pub(crate) fn protocol(&self) -> Protocol {
        let mut protocol = auto::Builder::new(TokioExecutor::new());
        protocol.http1().max_buf_size(MAX_HEAD_BYTES);
        protocol
            .http2()
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
        let activity = Arc::new(Activity::new());
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
        let stream = WatchedStream {
            stream,
            activity: activity.clone(),
        };
        let connection = protocol.serve_connection(TokioIo::new(stream), service);
        tokio::pin!(connection);
        let idle = tokio::select! {
            _ = connection.as_mut() => return,
            _ = closing.wait_for(|c| *c) => false,
            expiry = activity.expiry(self.keep_alive_idle_timeout, self.header_read_timeout) => match expiry {
                Expiry::Idle => true,
                // Closed without an answer, as hyper does past its header timeout.
                Expiry::SlowHead => return,
            },
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
