//! Operating a running server: `GET /healthz` (liveness), `GET /readyz` (readiness), `GET /metrics`
//! (Prometheus text format), the middleware that times every HTTP request, and the log set-up.
//!
//! These routes need no credentials and reveal no secrets: counts, route templates (never raw paths, which
//! may carry SIDs or a legacy `tokenPassword`), and a readiness reason.
//!
//! # Layout
//!
//! - this file: [`Observer`] (what the three routes read), [`router`], [`Track`] (the timing layer).
//! - [`log`]: `tracing` output as text for people or JSON lines for log collectors.
//!
//! The registry of counters itself is [`crate::metrics`], below both this module and the app that counts
//! into it: `obs` depends on the parts it observes, never the reverse.

pub mod log;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use engine::Handle;
use tower::{Layer, Service};

use crate::app::AppState;
use crate::metrics::{self, Exposition, Metrics};
use twilio_server::callbacks::{DeliveryCounts, DeliveryStats};

/// How long a Twilio reachability answer is reused, so that probes cannot flood Twilio's API.
pub const TWILIO_CHECK_TTL: Duration = Duration::from_secs(10);
/// How long a readiness check may take before it counts as a failure.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// What the health, readiness and metrics routes look at. Cheap to clone.
#[derive(Clone)]
pub struct Observer {
    inner: Arc<Inner>,
}

struct Inner {
    metrics: Arc<Metrics>,
    mode: &'static str,
    started: SystemTime,
    app: Option<AppState>,
    engine: Option<Handle>,
    callbacks: Option<Arc<DeliveryStats>>,
    assignments: Option<Arc<DeliveryStats>>,
    twilio: Option<TwilioProbe>,
}

/// The cached "is TaskRouter reachable" answer of twilio mode.
struct TwilioProbe {
    client: twilio::Client,
    /// Held while a check runs, so concurrent probes wait for one check instead of each making their own.
    last: tokio::sync::Mutex<Option<(Instant, Result<(), String>)>>,
}

/// Why a server is not ready.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotReady {
    /// The embedded engine refuses changes after a failed write.
    #[error("the engine could not write to its data directory and accepts no more changes; check the disk and permissions, then restart")]
    Poisoned,
    /// The embedded engine has stopped.
    #[error("the engine has stopped")]
    Stopped,
    /// The engine did not answer in time.
    #[error("the engine did not answer within {0:?}; it may be overloaded")]
    Slow(Duration),
    /// TaskRouter could not be reached or refused the app's credentials.
    #[error("TaskRouter is not usable: {0}")]
    Twilio(String),
    /// Workers' event channels are open and none is connected: pages would not hear of new calls.
    #[error("{0}")]
    EventChannels(String),
}

impl Observer {
    /// An observer of a server in `mode` (`local`, `twilio` or `engine`, reported by `trworker_build_info`),
    /// counting into `metrics`. Without an engine or Twilio client it is always ready.
    pub fn builder(metrics: Arc<Metrics>, mode: &'static str) -> ObserverBuilder {
        ObserverBuilder {
            inner: Inner {
                metrics,
                mode,
                started: SystemTime::now(),
                app: None,
                engine: None,
                callbacks: None,
                assignments: None,
                twilio: None,
            },
        }
    }

    /// The registry.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    /// Whether the server can do its work: the embedded engine answers and can write, or (twilio mode)
    /// TaskRouter answers the app's credentials. Twilio's answer is reused for [`TWILIO_CHECK_TTL`].
    pub async fn ready(&self) -> Result<(), NotReady> {
        if let Some(engine) = &self.inner.engine {
            if engine.stats().poisoned {
                return Err(NotReady::Poisoned);
            }
            match tokio::time::timeout(CHECK_TIMEOUT, engine.read(|_| ())).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(NotReady::Stopped),
                Err(_) => return Err(NotReady::Slow(CHECK_TIMEOUT)),
            }
        }
        if let Some(probe) = &self.inner.twilio {
            let mut last = probe.last.lock().await;
            let fresh =
                last.as_ref().filter(|(at, _)| at.elapsed() < TWILIO_CHECK_TTL).map(|(_, r)| r.clone());
            let result = match fresh {
                Some(result) => result,
                None => {
                    let result =
                        match tokio::time::timeout(CHECK_TIMEOUT, probe.client.fetch_workspace()).await {
                            Ok(Ok(_)) => Ok(()),
                            Ok(Err(e)) => Err(e.to_string()),
                            Err(_) => Err(format!("no answer within {CHECK_TIMEOUT:?}")),
                        };
                    *last = Some((Instant::now(), result.clone()));
                    result
                }
            };
            result.map_err(NotReady::Twilio)?;
        }
        if let Some(app) = &self.inner.app {
            app.event_channels_health().map_err(NotReady::EventChannels)?;
        }
        Ok(())
    }

    /// The whole `/metrics` page.
    pub async fn render(&self) -> String {
        let inner = &self.inner;
        let mut out = Exposition::default();
        out.header("trworker_build_info", "gauge", "Always 1; the labels say which trworker this is.");
        out.sample(
            "trworker_build_info",
            &format!("version=\"{}\",mode=\"{}\"", env!("CARGO_PKG_VERSION"), inner.mode),
            1,
        );
        let started = inner.started.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        out.gauge("process_start_time_seconds", "Start time of the process since the Unix epoch.", started);
        inner.metrics.render(&mut out);
        if let Some(app) = &inner.app {
            let (workers, sockets) = app.connections();
            out.gauge(
                "trworker_connected_workers",
                "Workers with at least one signed-in WebSocket open.",
                workers as u64,
            );
            out.gauge("trworker_websocket_connections", "Signed-in WebSockets open.", sockets as u64);
            let (open, connected) = app.event_channels();
            out.gauge("trworker_event_channels_open", "Workers' event channels open.", open as u64);
            out.gauge(
                "trworker_event_channels_connected",
                "Workers' event channels open and connected.",
                connected as u64,
            );
        }
        if let Some(callbacks) = &inner.callbacks {
            delivery_counters(
                &mut out,
                callbacks.snapshot(),
                [
                    (
                        "trworker_event_callbacks_delivered_total",
                        "Event callbacks (EventCallbackUrl) answered with a 2xx.",
                    ),
                    (
                        "trworker_event_callback_failures_total",
                        "Event callback posts that failed (transport error, timeout or non-2xx); each retry counts.",
                    ),
                    ("trworker_event_callbacks_given_up_total", "Event callbacks abandoned after the last retry."),
                    (
                        "trworker_event_callbacks_dropped_total",
                        "Event callbacks never sent: the workspace's queue was full or delivery fell behind.",
                    ),
                ],
            );
        }
        if let Some(assignments) = &inner.assignments {
            delivery_counters(
                &mut out,
                assignments.snapshot(),
                [
                    (
                        "trworker_assignment_callbacks_delivered_total",
                        "Assignment callbacks (AssignmentCallbackUrl or its fallback) answered with a 2xx.",
                    ),
                    (
                        "trworker_assignment_callback_failures_total",
                        "Assignment callback posts that failed (transport error, timeout or non-2xx), per URL tried.",
                    ),
                    (
                        "trworker_assignment_callbacks_given_up_total",
                        "Reservations whose assignment callback and fallback both failed.",
                    ),
                    (
                        "trworker_assignment_callbacks_dropped_total",
                        "Reservations skipped because assignment delivery fell behind the engine.",
                    ),
                ],
            );
        }
        if let Some(engine) = &inner.engine {
            let stats = engine.stats();
            out.gauge(
                "trworker_engine_mailbox",
                "Commands and reads waiting for the engine's actor.",
                stats.mailbox as u64,
            );
            out.gauge(
                "trworker_engine_unsaved_batches",
                "Batches of changes on their way to disk; their replies wait for them.",
                stats.unsaved_batches as u64,
            );
            out.gauge(
                "trworker_engine_poisoned",
                "1 when the engine could not reload its state after a failed write and refuses everything until restarted.",
                u64::from(stats.poisoned),
            );
            let timers = engine.read(|state| state.core.timer_count());
            if let Ok(Ok(timers)) = tokio::time::timeout(CHECK_TIMEOUT, timers).await {
                out.gauge(
                    "trworker_engine_timers",
                    "Running timers (reservation timeouts, task TTLs, workflow steps, ring delays).",
                    timers as u64,
                );
            }
        }
        out.finish()
    }
}

/// Builds an [`Observer`].
pub struct ObserverBuilder {
    inner: Inner,
}

impl ObserverBuilder {
    /// Reports the worker app's connected workers.
    pub fn app(mut self, app: AppState) -> Self {
        self.inner.app = Some(app);
        self
    }

    /// Reports the embedded engine's queues and callback deliveries, and makes readiness depend on it.
    pub fn engine(mut self, handle: Handle, callbacks: Arc<DeliveryStats>) -> Self {
        self.inner.engine = Some(handle);
        self.inner.callbacks = Some(callbacks);
        self
    }

    /// Reports the embedded engine's assignment callback deliveries.
    pub fn assignments(mut self, stats: Arc<DeliveryStats>) -> Self {
        self.inner.assignments = Some(stats);
        self
    }

    /// Makes readiness depend on TaskRouter answering `client` (its workspace is fetched).
    pub fn twilio(mut self, client: twilio::Client) -> Self {
        self.inner.twilio = Some(TwilioProbe { client, last: tokio::sync::Mutex::new(None) });
        self
    }

    /// The observer.
    pub fn build(self) -> Observer {
        Observer { inner: Arc::new(self.inner) }
    }
}

/// `GET /healthz`, `GET /readyz` and `GET /metrics`.
pub fn router(observer: Observer) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_page))
        .with_state(observer)
}

/// Liveness: the process serves HTTP. Never looks at anything else, so a slow dependency cannot get the
/// process restarted.
async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// Readiness: 200 `{"status":"ready"}`, or 503 `{"status":"not ready","reason":…}`.
async fn readyz(State(observer): State<Observer>) -> Response {
    match observer.ready().await {
        Ok(()) => Json(serde_json::json!({ "status": "ready" })).into_response(),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "status": "not ready", "reason": reason.to_string() })),
        )
            .into_response(),
    }
}

async fn metrics_page(State(observer): State<Observer>) -> Response {
    let body = observer.render().await;
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body).into_response()
}

/// Layer timing every request into `metrics` by route template (axum's [`MatchedPath`]), method and status.
/// Apply it with `Router::layer` after every route and the fallback are added: axum then wraps each route
/// (and the fallback) in it, after routing, so the route template is known.
///
/// Hand-written rather than `axum::middleware::from_fn` so that timing a request allocates nothing of its
/// own (see [`twilio_server::auth::RequireAuth`] for the measured cost of `from_fn`).
#[derive(Clone)]
pub struct Track {
    metrics: Arc<Metrics>,
}

impl Track {
    /// Records into `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> Track {
        Track { metrics }
    }
}

impl<S> Layer<S> for Track {
    type Service = TrackService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TrackService { inner, metrics: self.metrics.clone() }
    }
}

/// The service of [`Track`].
#[derive(Clone)]
pub struct TrackService<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S> Service<Request> for TrackService<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Tracked<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let started = Instant::now();
        let route = request.extensions().get::<MatchedPath>().cloned();
        let method = request.method().clone();
        Tracked { inner: self.inner.call(request), started, route, method, metrics: self.metrics.clone() }
    }
}

pin_project_lite::pin_project! {
    /// A request's response future, observed into the metrics when it completes.
    pub struct Tracked<F> {
        #[pin]
        inner: F,
        started: Instant,
        route: Option<MatchedPath>,
        method: Method,
        metrics: Arc<Metrics>,
    }
}

impl<F, E> Future for Tracked<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = std::task::ready!(this.inner.poll(cx));
        if let Ok(response) = &result {
            let route = this.route.as_ref().map_or(metrics::UNMATCHED_ROUTE, |r| r.as_str());
            this.metrics.observe_http(
                route,
                this.method.as_str(),
                response.status().as_u16(),
                this.started.elapsed(),
            );
        }
        Poll::Ready(result)
    }
}

/// The four counters of one kind of callback delivery (delivered, failed attempts, given up, dropped), each
/// with its name and help text.
fn delivery_counters(out: &mut Exposition, counts: DeliveryCounts, names: [(&str, &str); 4]) {
    let values = [counts.delivered, counts.failed_attempts, counts.given_up, counts.dropped];
    for ((name, help), value) in names.into_iter().zip(values) {
        out.counter(name, help, value);
    }
}
