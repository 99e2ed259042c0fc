//! The Twilio-compatible server over trworker's engine: TaskRouter v1 at `/v1/Workspaces/...` and the API
//! 2010 Conference resources at `/2010-04-01/Accounts/{AccountSid}/Conferences...json` (and API Keys at
//! `.../Keys`), with the event and assignment callbacks Twilio sends. `trworker engine` serves it alone;
//! `trworker serve` in local mode next to the worker app. It depends on the engine and on the `twilio` crate's signatures, and knows nothing of
//! the worker app.
//!
//! The facade holds no domain rules. It authenticates, parses Twilio-style parameters into engine commands,
//! renders engine state back with the spec's field names, pages lists and turns every failure into Twilio's
//! error body. Event callbacks leave through [`callbacks`].
//!
//! # Layout
//!
//! - [`error`]: Twilio's error body and the facade's error type.
//! - [`params`]: form and query parsing with Twilio's conventions; unknown parameters are rejected.
//! - [`page`]: `PageSize`/`PageToken` and the v1 and API 2010 list envelopes.
//! - [`render`]: dates and absolute URLs.
//! - [`auth`]: Basic auth with the account SID and auth token.
//! - [`handle`]: [`Engine`], the engine actor with typed reads and commands: every read a closure run on the
//!   actor, in order with the commands; statistics as the engine's figures.
//! - one module per resource, each with its own `router()`; the v1 collections' shared list, create, fetch,
//!   update and delete are written once (`resources::crud`), and a resource module says what differs. API
//!   2010: `conferences` (Conferences, Participants) and `keys` (API Keys, whose secrets sign AccessTokens).
//! - [`stats`]: the window of a statistics request and the JSON of the engine's figures.
//! - [`callbacks`]: signed, ordered, retried delivery of events to each workspace's `EventCallbackUrl`.
//! - [`assignment`]: the workflow's `AssignmentCallbackUrl` and the instructions it answers with.
//! - [`http`]: the HTTP server loop of every trworker server: connection cap, header and idle timeouts,
//!   the throttle on failed authentication, graceful shutdown.
//! - [`limit`]: rate limits with bounded memory (the throttle; the worker app's sign-in).
//! - [`bridge`]: TaskRouter's event bridge for Twilio's worker SDKs: v2 addressing (the worker's event
//!   channel and the REST envelope at `/v1/wschannels`) and v1 addressing (taskrouter.js v1's worker, task
//!   queue and workspace channels at `/v1/wschannels/{AC}/{channel}`, with capability-token policies),
//!   authenticated by token, not Basic auth.
//! - [`worker_feed`]: what the v1 worker and workspace channels send, in process, for a consumer in the same
//!   process (the worker app's event channels and supervisor page in local mode); the bridge's v1 channels
//!   render through the same functions.
//!
//! # Wiring
//!
//! ```text
//! let engine = twilio_server::Engine::new(handle);
//! let credentials = twilio_server::Credentials { account_sid, auth_token };
//! twilio_server::callbacks::spawn(engine.clone(), credentials.clone(), Default::default());
//! twilio_server::assignment::spawn(engine.clone(), credentials.clone(), twilio_server::assignment::TIMEOUT, Default::default());
//! let state = twilio_server::ServerState::new(engine, credentials, &public_url);
//! twilio_server::serve(listener, state, shutdown).await?;
//! ```
//!
//! To mount the facade next to other routes (the worker app), merge [`routes`] (no fallback) into the app's
//! router.

pub mod assignment;
pub mod auth;
pub mod bridge;
pub mod callbacks;
pub mod error;
pub mod handle;
pub mod http;
pub mod limit;
pub mod page;
pub mod params;
pub mod render;
pub mod stats;
pub mod worker_feed;

mod conferences;
mod extract;
mod keys;
mod resources;

use std::future::Future;
use std::sync::Arc;

use axum::extract::Request;
use axum::response::IntoResponse;
use axum::Router;

pub use auth::Credentials;
pub use error::{ApiError, ApiResult};
pub use handle::Engine;
use render::Urls;

/// What every handler shares. Cheap to clone.
#[derive(Clone)]
pub struct ServerState {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    credentials: Credentials,
    urls: Urls,
    bridge: bridge::Bridge,
}

impl ServerState {
    /// The state of a facade over `engine`, answering for `credentials`, with `public_url` (scheme, host and
    /// port clients reach the engine at) as the base of every absolute URL it renders.
    pub fn new(engine: Engine, credentials: Credentials, public_url: &str) -> ServerState {
        ServerState::with_bridge(engine, credentials, public_url, bridge::Options::default())
    }

    /// [`ServerState::new`] with the event bridge's options (tests shorten the heartbeat).
    pub fn with_bridge(
        engine: Engine,
        credentials: Credentials,
        public_url: &str,
        bridge: bridge::Options,
    ) -> ServerState {
        let bridge = bridge::Bridge::new(bridge, engine.clone());
        ServerState { inner: Arc::new(Inner { engine, credentials, urls: Urls::new(public_url), bridge }) }
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// The account and its token.
    pub fn credentials(&self) -> &Credentials {
        &self.inner.credentials
    }

    /// URL builder.
    pub fn urls(&self) -> &Urls {
        &self.inner.urls
    }

    /// The event bridge's options and open channels.
    pub(crate) fn bridge(&self) -> &bridge::Bridge {
        &self.inner.bridge
    }
}

/// The whole facade: every TaskRouter v1 and Conference route behind Basic auth, with Twilio-style 404 and
/// 405 bodies for everything else, and request tracing.
pub fn router(state: ServerState) -> Router {
    routes(state).fallback(not_found).layer(tower_http::trace::TraceLayer::new_for_http())
}

/// The facade's routes behind Basic auth, and the event bridge's (whose credential is a token, see
/// [`bridge`]), without a fallback, for merging into a larger router (the worker app): axum allows one
/// fallback per router, and the app has its own.
pub fn routes(state: ServerState) -> Router {
    Router::new()
        .merge(resources::router())
        .merge(conferences::router())
        .merge(keys::router())
        .method_not_allowed_fallback(method_not_allowed)
        .route_layer(auth::RequireAuth::new(state.clone()))
        // After the auth layer, which applies only to the routes added before it.
        .merge(bridge::routes())
        .with_state(state)
}

/// The Twilio-style 404 for a path no route serves (public so a larger router can use it as its fallback).
pub async fn not_found(req: Request) -> impl IntoResponse {
    ApiError::not_found(&twilio_path(req.uri().path()))
}

pub(crate) async fn method_not_allowed(req: Request) -> impl IntoResponse {
    ApiError::method_not_allowed(req.method().as_str(), req.uri().path())
}

/// The path as Twilio names it in 404 messages: without the `/v1` prefix for TaskRouter.
pub(crate) fn twilio_path(path: &str) -> String {
    path.strip_prefix("/v1").filter(|p| !p.is_empty()).unwrap_or(path).to_owned()
}

/// Serves the facade on `listener` within the default [`crate::http::Limits`] until `shutdown` resolves.
/// The caller binds the socket, so tests use port 0.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: ServerState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let clock: Arc<dyn engine::Clock> = Arc::new(engine::SystemClock);
    let limits = crate::http::Limits::default();
    crate::http::serve(listener, router(state), limits, clock, false, shutdown).await
}
