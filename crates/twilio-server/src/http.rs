//! The HTTP server loop of every trworker server (`serve` and `engine`): what a stranger's connection may
//! cost, whatever it sends or does not send.
//!
//! `axum::serve` accepts every connection and keeps it as long as the client likes: a socket that sends
//! nothing, or half a request line, stays open for ever, and enough of them exhaust the open-files limit, at
//! which point even `/healthz` stops answering. This loop serves the same router with hyper's HTTP/1
//! connection directly, and adds:
//!
//! - **A connection cap** ([`Limits::max_connections`]). A connection over it gets a short `503` with
//!   `Retry-After` and is closed, so the server always has descriptors left for its own files and for the
//!   connections it serves. An upgraded WebSocket keeps its place until it closes.
//! - **A header timeout** ([`Limits::header_timeout`]): a new connection must deliver its first request's
//!   head within it, or it is closed.
//! - **An idle timeout** ([`Limits::idle_timeout`]): between requests on a keep-alive connection (hyper's
//!   header-read timer, which runs from the end of one response until the next request's head is read, so
//!   it also bounds the head of every later request).
//! - **A header size cap** ([`MAX_HEADER_BYTES`]): a larger head gets `431`.
//! - **A throttle on failed authentication** ([`Limits::auth_failures`]): an address whose requests keep
//!   failing Basic authentication (the handler marks the response with [`AuthFailed`]) gets `429` with
//!   `Retry-After` for a while, before any handler runs.
//! - **Small WebSocket clients** ([`small_client_socket`]): the size limits and read buffer of every
//!   WebSocket these servers accept.
//!
//! Shutdown is graceful, as with `axum::serve`: the listener closes, each connection finishes the request
//! it is serving, and the loop returns when they are all done.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::future::RouteFuture;
use axum::Router;
use engine::Clock;
use futures_util::future::{ready, Either, Ready};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tower::Service;

use crate::limit::{client_key, KeyedLimiter, RateLimit};

/// The largest request head (request line and headers) a client may send; a larger one gets `431`. Twilio's
/// own requests and browsers' stay far below it (a worker token is about 1 KiB); hyper's default, about
/// 400 KiB, would let every open connection hold that much.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// Descriptors kept free for the server's own files (the database, its WAL, logs) and for the short answers
/// to connections over the cap.
const RESERVED_DESCRIPTORS: u64 = 128;

/// Connections over the cap answered with a `503` at once; beyond, they are closed without an answer.
const MAX_REFUSALS: usize = 256;

/// Addresses the failed-authentication throttle remembers at most.
const MAX_THROTTLED_ADDRESSES: usize = 10_000;

/// What a connection may cost. [`Limits::default`] gives the documented defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once, upgraded WebSockets included (default 16,384, lowered at start to what
    /// the open-files limit allows: [`Limits::fit_to_open_files_limit`]).
    pub max_connections: usize,
    /// Time a new connection has to deliver its first request's head (default 10 s).
    pub header_timeout: Duration,
    /// Time a keep-alive connection may wait for its next request (default 60 s).
    pub idle_timeout: Duration,
    /// Failed Basic authentications an address may make before its requests get `429` (default 50 at
    /// once, then one every 2 s).
    pub auth_failures: RateLimit,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 16_384,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            auth_failures: RateLimit::new(50, Duration::from_secs(2)),
        }
    }
}

impl Limits {
    /// Raises the process's open-files limit to its hard limit (as Go's runtime does), then lowers
    /// `max_connections` to fit under it with [`RESERVED_DESCRIPTORS`] to spare. Returns the open-files
    /// limit now in force, when it could be read.
    pub fn fit_to_open_files_limit(&mut self) -> Option<u64> {
        use rustix::process::{getrlimit, setrlimit, Resource};
        let mut limit = getrlimit(Resource::Nofile);
        if limit.current < limit.maximum {
            let raised = rustix::process::Rlimit { current: limit.maximum, maximum: limit.maximum };
            if setrlimit(Resource::Nofile, raised).is_ok() {
                limit = raised;
            }
        }
        let current = limit.current?;
        let room = current.saturating_sub(RESERVED_DESCRIPTORS).max(1);
        let room = usize::try_from(room).unwrap_or(usize::MAX);
        if self.max_connections > room {
            tracing::warn!(
                open_files_limit = current,
                max_connections = room,
                "the open-files limit allows fewer connections than configured; raise it (ulimit -n) to serve more"
            );
            self.max_connections = room;
        }
        Some(current)
    }
}

/// A WebSocket upgrade for a client that sends little (a hello, a token, an envelope): no message or frame
/// over `max` bytes, whether or not the client has authenticated (tungstenite's defaults, 64 MiB messages
/// and 16 MiB frames, would let any socket make the server buffer that much; an oversized message closes
/// the socket with 1009), and a 1 KiB read buffer instead of the default 128 KiB (a longer frame is read in
/// several steps), which is what lets thousands of idle connections stay in little memory
/// (docs/PERFORMANCE.md).
pub fn small_client_socket(upgrade: WebSocketUpgrade, max: usize) -> WebSocketUpgrade {
    upgrade.max_message_size(max).max_frame_size(max).read_buffer_size(1024)
}

/// Marks a response as a failed authentication, for the throttle. Inserted by the handler that refused the
/// credentials (the Twilio-compatible server's Basic auth).
#[derive(Debug, Clone, Copy)]
pub struct AuthFailed;

/// Serves `router` on `listener` within `limits` until `shutdown` resolves, then drains: see the module doc.
/// Handlers may extract `ConnectInfo<SocketAddr>` (the peer's address) when `connect_info` is true; it is
/// off for the engine alone, where nothing asks for it and it costs an extension map per request.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    clock: Arc<dyn Clock>,
    connect_info: bool,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections.min(Semaphore::MAX_PERMITS)));
    let throttle = Arc::new(Throttle {
        limiter: KeyedLimiter::new(limits.auth_failures, MAX_THROTTLED_ADDRESSES),
        active: AtomicBool::new(false),
        clock,
    });
    // Closed when the loop stops accepting: every connection then finishes gracefully.
    let (stop_tx, stop_rx) = watch::channel(());
    // Each connection holds a receiver; the loop waits for them all to be dropped.
    let (done_tx, done_rx) = watch::channel(());
    let mut shutdown = pin!(shutdown);
    let mut over_cap_logged = false;
    let refusals = Arc::new(Semaphore::new(MAX_REFUSALS));
    let mut accept_error_logged = false;
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    if !is_connection_error(&error) {
                        // EMFILE and the like: back off instead of spinning; the connections that hold
                        // descriptors are timed out meanwhile. Logged once until a connection is accepted.
                        if !accept_error_logged {
                            tracing::error!(%error, "could not accept a connection; retrying every 100 ms");
                            accept_error_logged = true;
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        accept_error_logged = false;
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            if !over_cap_logged {
                tracing::warn!(max_connections = limits.max_connections, "connection cap reached; refusing");
                over_cap_logged = true;
            }
            // Each answer holds its socket for up to a second; past a bound, a flood of connections is
            // closed without one rather than holding a descriptor each.
            if let Ok(refusing) = refusals.clone().try_acquire_owned() {
                tokio::spawn(async move {
                    refuse(stream).await;
                    drop(refusing);
                });
            }
            continue;
        };
        over_cap_logged = false;
        let _ = stream.set_nodelay(true);
        let service = ConnectionService {
            router: router.clone(),
            peer,
            connect_info,
            throttle: throttle.clone(),
            started: Arc::new(AtomicBool::new(false)),
        };
        let started = service.started.clone();
        let io = TokioIo::new(Held { stream, _permit: permit });
        let mut stop = stop_rx.clone();
        let done = done_rx.clone();
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.idle_timeout)
                .max_header_size(MAX_HEADER_BYTES);
            let connection = builder.serve_connection(io, TowerToHyperService::new(service)).with_upgrades();
            let mut connection = pin!(connection);
            let first_head = tokio::time::sleep(limits.header_timeout);
            let mut first_head = pin!(first_head);
            let mut first_head_pending = true;
            let mut draining = false;
            loop {
                tokio::select! {
                    result = connection.as_mut() => {
                        if let Err(error) = result {
                            tracing::debug!(%error, %peer, "connection ended with an error");
                        }
                        break;
                    }
                    _ = &mut first_head, if first_head_pending => {
                        first_head_pending = false;
                        if !started.load(Ordering::Relaxed) {
                            tracing::debug!(%peer, "no request head in time; closing");
                            break;
                        }
                    }
                    // Once: after the loop has stopped accepting, `changed` answers at once every time.
                    _ = stop.changed(), if !draining => {
                        draining = true;
                        connection.as_mut().graceful_shutdown();
                    }
                }
            }
            drop(done);
        });
    }
    drop(listener);
    drop(stop_tx);
    drop(done_rx);
    done_tx.closed().await;
    Ok(())
}

/// Errors of one connection (the peer went away before it was accepted), not of the listener.
fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

/// The answer to a connection over the cap: a `503` written without reading the request, then a lingering
/// close (the request is read and dropped for a moment, so the client sees the answer rather than a reset).
async fn refuse(mut stream: TcpStream) {
    const BODY: &str = "{\"code\":20503,\"message\":\"The server is at its connection limit. Try again in a \
                        moment.\",\"more_info\":null,\"status\":503,\"error\":{\"message\":\"The server is at \
                        its connection limit. Try again in a moment.\"}}";
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let linger = async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        let mut drained = 0usize;
        while drained < 64 * 1024 {
            match stream.read(&mut sink).await? {
                0 => break,
                n => drained += n,
            }
        }
        io::Result::Ok(())
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), linger).await;
}

/// A connection's socket with its place under the cap: the place is given back when the socket is dropped,
/// which for an upgraded WebSocket is when the WebSocket closes.
struct Held {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
}

impl AsyncRead for Held {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Held {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        std::pin::Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        std::pin::Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// Addresses whose authentication keeps failing.
struct Throttle {
    limiter: KeyedLimiter<IpAddr>,
    /// Whether any address has failed yet: until then a request costs no lock.
    active: AtomicBool,
    clock: Arc<dyn Clock>,
}

/// The router as one connection sees it: the peer's address at hand for [`ConnectInfo`] and the throttle.
#[derive(Clone)]
struct ConnectionService {
    router: Router,
    peer: SocketAddr,
    connect_info: bool,
    throttle: Arc<Throttle>,
    /// Set at the first request: the header timeout no longer applies.
    started: Arc<AtomicBool>,
}

impl Service<Request<hyper::body::Incoming>> for ConnectionService {
    type Response = Response;
    type Error = Infallible;
    type Future = Either<Ready<Result<Response, Infallible>>, Observed<RouteFuture<Infallible>>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // A Router is always ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<hyper::body::Incoming>) -> Self::Future {
        self.started.store(true, Ordering::Relaxed);
        let mut request = request.map(Body::new);
        if self.connect_info {
            request.extensions_mut().insert(ConnectInfo(self.peer));
        }
        let key = client_key(self.peer.ip());
        if self.throttle.active.load(Ordering::Relaxed) {
            if let Err(retry_after) = self.throttle.limiter.check(&key, self.throttle.clock.now()) {
                return Either::Left(ready(Ok(throttled(retry_after))));
            }
        }
        let inner = self.router.call(request);
        Either::Right(Observed { inner, key, throttle: self.throttle.clone() })
    }
}

pin_project_lite::pin_project! {
    /// A response on its way: counted against its address when the handler marked it [`AuthFailed`]. A
    /// hand-written future rather than an `async` block, which would be boxed on every request.
    struct Observed<F> {
        #[pin]
        inner: F,
        key: IpAddr,
        throttle: Arc<Throttle>,
    }
}

impl<F: Future<Output = Result<Response, Infallible>>> Future for Observed<F> {
    type Output = Result<Response, Infallible>;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = std::task::ready!(this.inner.poll(cx));
        if let Ok(response) = &result {
            if response.extensions().get::<AuthFailed>().is_some() {
                this.throttle.active.store(true, Ordering::Relaxed);
                let _ = this.throttle.limiter.take(this.key, this.throttle.clock.now());
            }
        }
        Poll::Ready(result)
    }
}

/// `429` for a throttled address, in Twilio's error shape (the throttle guards the Twilio-compatible API).
fn throttled(retry_after: u64) -> Response {
    let body = serde_json::json!({
        "code": 20429,
        "message": format!(
            "Too many requests with wrong credentials from this address. Try again in {retry_after} seconds."
        ),
        "more_info": "https://www.twilio.com/docs/errors/20429",
        "status": 429,
    });
    let mut response = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&retry_after.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}
