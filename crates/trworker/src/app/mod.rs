//! The worker app's server side: what the worker page (and the seed's old pages) talk to.
//!
//! The app talks to TaskRouter and to the Conference API only through [`twilio::Client`], so the same code
//! runs against real Twilio and against trworker's embedded engine; only base URLs and credentials differ.
//! It holds no routing state: what a worker sees is always rebuilt from the REST API.
//!
//! # Layout
//!
//! - this file: [`AppConfig`], [`AppState`] and [`router`] (served by [`crate::start`]).
//! - [`error`]: [`AppError`], the one error type of every handler, and its `{"error":{"message"}}` body.
//! - [`auth`]: passwords, worker tokens as bearer credentials, and the sign-in rate limiter.
//! - [`api`]: the JSON API under `/api` (workspace, token, activity, reservations, tasks, conferences).
//! - [`snapshot`]: a worker's whole state (worker, reservations with their tasks, conference) built over
//!   REST, the payload of the WebSocket's `state` messages.
//! - [`live`]: the per-worker hub (sequence numbers, bounded event buffer, broadcast to every socket of a
//!   worker) and the WebSocket at `/api/ws`.
//! - [`events`]: event intake: the [`EventIntake`] trait, the signed `EventCallbackUrl` webhook at
//!   `/twilio/events`, and the periodic reconciliation that is the safety net when an event is lost.
//! - [`channels`]: one event channel per signed-in worker (TaskRouter's event bridge, or the embedded
//!   engine in process), so that no public webhook is needed.
//! - [`wrapup`]: the wrap-up after a call: its countdown, "Extend", and the server completing the task at
//!   its end, per [`WrapUpPolicy`].
//! - [`leave`]: moving a worker who signs out, or whose page has been closed past a grace, to the leave
//!   activity.
//! - [`legacy`]: the seed's `*.php` URLs in the seed's plain-text formats.
//! - [`supervisor`]: the supervisor page's API under `/api/supervisor`: its sign-in, the whole picture of
//!   workers, queues and totals, a worker's recent reservations, setting a worker's activity, and the live
//!   picture on its WebSocket from the workspace's event channel.
//! - [`assets`]: the page under `crates/trworker/web/`, embedded in the binary.
//! - [`headers`]: the security headers (Content-Security-Policy, no framing, no referrer, no sniffing) on
//!   every response.

pub mod api;
pub mod assets;
pub mod auth;
pub mod channels;
pub mod error;
pub mod events;
pub mod headers;
pub mod leave;
pub mod legacy;
pub mod live;
pub mod snapshot;
pub mod supervisor;
pub mod wrapup;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use engine::{Clock, Timestamp};

pub use auth::RateLimit;
pub use error::AppError;
pub use events::{EventIntake, TaskRouterEvent};

/// Where the TaskRouter the app talks to lives. Only reported to the page (`GET /api/workspace`) and in
/// logs: both modes run the same code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The embedded engine in the same process.
    Local,
    /// Real Twilio (or a separate `trworker engine`).
    Twilio,
}

impl Mode {
    /// `local` or `twilio`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Local => "local",
            Mode::Twilio => "twilio",
        }
    }
}

/// How long a worker has for wrap-up after a call before the server completes the task itself (reason
/// "Was stuck in wrapping"), so that nobody stays stuck in wrap-up: the seed's users did, when a closed tab
/// never pressed "Complete". Applies to signed-in workers' tasks ([`wrapup`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WrapUpPolicy {
    /// The countdown a wrap-up starts with (default 60 s). Zero: no wrap-up, the task is completed as
    /// soon as the call ends.
    pub countdown: Duration,
    /// What each "Extend" adds (default 60 s).
    pub extension: Duration,
    /// The longest a wrap-up may last, extensions included (default 10 minutes, or the countdown if that
    /// is longer).
    pub limit: Duration,
}

impl WrapUpPolicy {
    /// The default countdown, in seconds.
    pub const DEFAULT_SECONDS: u64 = 60;

    /// A countdown of `seconds` (0: none), with the default extension and limit.
    pub fn seconds(seconds: u64) -> WrapUpPolicy {
        let countdown = Duration::from_secs(seconds);
        WrapUpPolicy {
            countdown,
            extension: Duration::from_secs(60),
            limit: countdown.max(Duration::from_secs(600)),
        }
    }
}

impl Default for WrapUpPolicy {
    fn default() -> WrapUpPolicy {
        WrapUpPolicy::seconds(WrapUpPolicy::DEFAULT_SECONDS)
    }
}

/// Everything the app needs to know. Build with [`AppConfig::new`] and adjust the public fields.
#[derive(Clone)]
pub struct AppConfig {
    /// Local engine or Twilio; reported to the page.
    pub mode: Mode,
    /// The account (`AC…`) of the Twilio being talked to, real or local.
    pub account_sid: String,
    /// Its Auth Token: REST credentials, worker token signing key and webhook signature key.
    pub auth_token: String,
    /// The workspace (`WS…`) whose workers sign in.
    pub workspace_sid: String,
    /// The password every worker signs in with (the seed's `TOKEN_PASSWORD`). Never echoed.
    pub token_password: String,
    /// The password supervisors sign in with (`SUPERVISOR_PASSWORD`); empty: no supervisor can sign in.
    /// Never echoed.
    pub supervisor_password: String,
    /// Supervisor actions (setting a worker's activity) allowed per client address.
    pub supervisor_action_limit: RateLimit,
    /// Where TaskRouter reaches this server: scheme, host and port, no path (e.g. `https://app.example.com`).
    /// The webhook signature is checked against this plus the request's path and query, so the workspace's
    /// `EventCallbackUrl` must be `{public_url}/twilio/events`.
    pub public_url: String,
    /// TaskRouter base URL; `None` for Twilio's.
    pub taskrouter_url: Option<String>,
    /// API 2010 base URL; `None` for Twilio's.
    pub api_url: Option<String>,
    /// Where workers' event channels come from; `None`: the event bridge at `TWILIO_EVENT_BRIDGE_URL`'s
    /// default ([`AppConfig::event_source`]).
    pub event_source: Option<channels::Source>,
    /// Activity a worker is moved to after accepting, so it gets no other call (default "Unavailable").
    pub accept_activity: String,
    /// Activity named as the conference instruction's `PostWorkActivitySid` (default "Offline").
    pub post_work_activity: String,
    /// Caller ID (`From`) of the conference instruction; `None` lets TaskRouter use the task's `from`.
    pub caller_id: Option<String>,
    /// The wrap-up countdown after a call, at whose end the server completes the task.
    pub wrap_up: WrapUpPolicy,
    /// Activity a worker is moved to on sign-out, and when its page has been closed past `leave_grace`
    /// (default "Offline").
    pub leave_activity: String,
    /// How long a worker's last page may be closed before an available worker is moved to
    /// `leave_activity` (default 120 s; `None`: never).
    pub leave_grace: Option<Duration>,
    /// Lifetime of a worker token (default 8 h).
    pub token_ttl: Duration,
    /// How often connected workers' state is rebuilt over REST and wrapping tasks are checked (default 30 s).
    pub reconcile_interval: Duration,
    /// Sign-in attempts allowed per client IP address (an IPv6 client per /64), right password or not.
    pub sign_in_limit_per_ip: RateLimit,
    /// Failed sign-ins allowed across all addresses; when spent, only addresses that signed in recently may
    /// try ([`auth::Limiter`]).
    pub sign_in_limit_overall: RateLimit,
    /// Take the client IP from the last `X-Forwarded-For` entry (behind a proxy such as Heroku's router).
    pub trust_forwarded_for: bool,
    /// Check webhook signatures against the URL the request names (`X-Forwarded-Proto`, `X-Forwarded-Host`,
    /// else `Host`) instead of `public_url`: for a server whose `PUBLIC_URL` is not set, behind a router
    /// (Heroku's) that forwards the original scheme and host. Default false: `public_url` wins.
    pub public_url_from_headers: bool,
    /// Let the seed's `conferenceEndFn.php` and `taskReservationTaskFix.php` act without a worker token, as
    /// the seed did, for an unmodified old page on a trusted network. Default false: they need the token
    /// that `generateTrToken.php` issued ([`legacy`]). When true, the server logs a warning at start.
    pub legacy_open: bool,
    /// How long a new WebSocket has to send its hello before it is closed (default 10 s).
    pub ws_hello_timeout: Duration,
    /// The largest message (and frame) a client may send on the WebSocket (default 16 KiB; the page sends a
    /// hello with a token of about 1 KiB).
    pub ws_max_message_bytes: usize,
    /// Events kept per worker for a reconnecting socket (default 256).
    pub event_buffer: usize,
    /// How many times a failed TaskRouter or Conferences request is repeated; `None` (default) keeps the
    /// client's own default ([`twilio::Config`]). Tests of an unreachable upstream set 0.
    pub client_retries: Option<u32>,
}

impl AppConfig {
    /// A configuration with the defaults described on each field.
    pub fn new(
        mode: Mode,
        account_sid: impl Into<String>,
        auth_token: impl Into<String>,
        workspace_sid: impl Into<String>,
        token_password: impl Into<String>,
        public_url: impl Into<String>,
    ) -> AppConfig {
        AppConfig {
            mode,
            account_sid: account_sid.into(),
            auth_token: auth_token.into(),
            workspace_sid: workspace_sid.into(),
            token_password: token_password.into(),
            supervisor_password: String::new(),
            supervisor_action_limit: RateLimit::new(20, Duration::from_millis(500)),
            public_url: public_url.into(),
            taskrouter_url: None,
            api_url: None,
            event_source: None,
            accept_activity: "Unavailable".to_owned(),
            post_work_activity: "Offline".to_owned(),
            leave_activity: "Offline".to_owned(),
            leave_grace: Some(Duration::from_secs(120)),
            caller_id: None,
            wrap_up: WrapUpPolicy::default(),
            token_ttl: twilio::token::DEFAULT_WORKER_TTL,
            reconcile_interval: Duration::from_secs(30),
            sign_in_limit_per_ip: RateLimit::new(20, Duration::from_secs(3)),
            sign_in_limit_overall: RateLimit::new(100, Duration::from_secs(2)),
            trust_forwarded_for: false,
            public_url_from_headers: false,
            legacy_open: false,
            ws_hello_timeout: Duration::from_secs(10),
            ws_max_message_bytes: 16 * 1024,
            event_buffer: 256,
            client_retries: None,
        }
    }

    /// Checks what can be checked before talking to anyone: the SIDs' kinds, a non-empty password and an
    /// http(s) public URL. Each error names the environment variable to fix.
    pub fn validate(&self) -> Result<(), AppError> {
        let sid = |value: &str, prefix: &str| twilio::models::is_sid(prefix, value);
        if !sid(&self.account_sid, "AC") {
            return Err(AppError::Config("ACCOUNT_SID must be AC followed by 32 hexadecimal digits".into()));
        }
        if !sid(&self.workspace_sid, "WS") {
            return Err(AppError::Config(
                "WORKSPACE_SID must be WS followed by 32 hexadecimal digits".into(),
            ));
        }
        if self.auth_token.is_empty() {
            return Err(AppError::Config("AUTH_TOKEN is empty".into()));
        }
        if self.token_password.is_empty() {
            return Err(AppError::Config("TOKEN_PASSWORD is empty: no worker could sign in".into()));
        }
        if !(self.public_url.starts_with("http://") || self.public_url.starts_with("https://")) {
            return Err(AppError::Config("PUBLIC_URL must start with http:// or https://".into()));
        }
        if let channels::Source::Bridge { base_url } = self.event_source() {
            let schemes = ["http://", "https://", "ws://", "wss://"];
            if !schemes.iter().any(|scheme| base_url.starts_with(scheme)) {
                return Err(AppError::Config(format!(
                    "TWILIO_EVENT_BRIDGE_URL must start with https:// (or http://, ws://, wss://); it gives {base_url}"
                )));
            }
        }
        Ok(())
    }

    /// Where workers' event channels come from: `event_source` when set, else the event bridge beside a
    /// TaskRouter that is not Twilio's (`{taskrouter_url}/v1/wschannels`: `trworker engine` serves both on
    /// one port), else Twilio's event bridge.
    pub fn event_source(&self) -> channels::Source {
        if let Some(source) = &self.event_source {
            return source.clone();
        }
        let base = match &self.taskrouter_url {
            Some(url) => format!("{}/v1/wschannels", url.trim_end_matches('/')),
            None => twilio::token::EVENT_BRIDGE_URL.to_owned(),
        };
        channels::Source::Bridge { base_url: base }
    }

    /// The capability of `worker_sid` in this app's account and workspace, signed with its Auth Token: the
    /// base of the tokens workers sign in with and of the event channel's tokens.
    pub(crate) fn worker_capability(&self, worker_sid: &str) -> twilio::token::WorkerCapability {
        twilio::token::WorkerCapability::new(
            &self.account_sid,
            &self.auth_token,
            &self.workspace_sid,
            worker_sid,
        )
    }

    /// The client configuration for this app's TaskRouter and Conference calls.
    pub fn client_config(&self) -> twilio::Config {
        let mut config =
            twilio::Config::new(&self.account_sid, &self.auth_token).workspace(&self.workspace_sid);
        if let Some(url) = &self.taskrouter_url {
            config.taskrouter_url = url.clone();
        }
        if let Some(url) = &self.api_url {
            config.api_url = url.clone();
        }
        if let Some(retries) = self.client_retries {
            config.max_retries = retries;
        }
        config
    }
}

impl fmt::Debug for AppConfig {
    /// Never prints the Auth Token or the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppConfig")
            .field("mode", &self.mode)
            .field("account_sid", &self.account_sid)
            .field("workspace_sid", &self.workspace_sid)
            .field("public_url", &self.public_url)
            .field("taskrouter_url", &self.taskrouter_url)
            .field("api_url", &self.api_url)
            .field("event_source", &self.event_source)
            .field("accept_activity", &self.accept_activity)
            .field("post_work_activity", &self.post_work_activity)
            .field("caller_id", &self.caller_id)
            .field("wrap_up", &self.wrap_up)
            .field("token_ttl", &self.token_ttl)
            .field("reconcile_interval", &self.reconcile_interval)
            .finish_non_exhaustive()
    }
}

/// What every handler shares. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) config: AppConfig,
    pub(crate) client: twilio::Client,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) limiter: auth::Limiter,
    pub(crate) hub: live::Hub,
    pub(crate) cache: snapshot::Cache,
    /// Workers holding an unexpired token, with the latest expiry (unix seconds): the "signed-in" workers
    /// whose wrapping tasks the server completes. A std mutex: held for map operations only, never across
    /// an await.
    pub(crate) signed_in: Mutex<HashMap<String, u64>>,
    pub(crate) wrapping: wrapup::Tracker,
    /// Workers whose last socket closed, and when ([`leave`]). A std mutex: held for map operations only.
    pub(crate) departed: Mutex<HashMap<String, Timestamp>>,
    /// The workers' event channels of this instance.
    pub(crate) channels: channels::Registry,
    /// Ends the background loop and every socket.
    pub(crate) shutdown: tokio::sync::watch::Sender<bool>,
    /// Counters reported at `/metrics` (reservation outcomes are counted at event intake).
    pub(crate) metrics: Arc<crate::metrics::Metrics>,
    /// The supervisor page's live picture, its sockets and its action limit.
    pub(crate) supervisor: supervisor::Supervisors,
}

impl AppState {
    /// The state of an app configured by `config`, reading time from `clock` (the system clock in
    /// production, a manual one in tests: token expiry, rate limits and wrap-up delays follow it).
    /// Fails when [`AppConfig::validate`] does or the client cannot start.
    pub fn new(config: AppConfig, clock: Arc<dyn Clock>) -> Result<AppState, AppError> {
        config.validate()?;
        let client = twilio::Client::new(config.client_config())
            .map_err(|source| AppError::upstream("start the Twilio client", source))?;
        Ok(AppState::with_client(config, client, clock))
    }

    /// As [`AppState::new`] with a client built by the caller (its workspace must be `config`'s).
    pub fn with_client(config: AppConfig, client: twilio::Client, clock: Arc<dyn Clock>) -> AppState {
        let (shutdown, _) = tokio::sync::watch::channel(false);
        let inner = Inner {
            limiter: auth::Limiter::new(
                config.sign_in_limit_per_ip,
                config.sign_in_limit_overall,
                clock.now(),
            ),
            hub: live::Hub::new(config.event_buffer, clock.now()),
            cache: snapshot::Cache::default(),
            signed_in: Mutex::new(HashMap::new()),
            wrapping: wrapup::Tracker::default(),
            departed: Mutex::new(HashMap::new()),
            channels: channels::Registry::new(config.event_source()),
            supervisor: supervisor::Supervisors::new(config.supervisor_action_limit),
            config,
            client,
            clock,
            shutdown,
            metrics: crate::metrics::Metrics::new(),
        };
        AppState { inner: Arc::new(inner) }
    }

    /// The configuration.
    pub fn config(&self) -> &AppConfig {
        &self.inner.config
    }

    /// The Twilio client the app uses.
    pub fn client(&self) -> &twilio::Client {
        &self.inner.client
    }

    /// The app's metrics registry (the server also times its HTTP requests into it).
    pub fn metrics(&self) -> &Arc<crate::metrics::Metrics> {
        &self.inner.metrics
    }

    /// Workers' event channels open here, and how many of them are connected, counted now.
    pub fn event_channels(&self) -> (usize, usize) {
        self.inner.channels.counts()
    }

    /// `Err` with the reason while this instance has event channels open and none is connected.
    pub fn event_channels_health(&self) -> Result<(), String> {
        channels::health(self)
    }

    /// Connected workers and open sockets (signed-in WebSockets), counted now.
    pub fn connections(&self) -> (usize, usize) {
        self.inner.hub.connections()
    }

    /// Where TaskRouter events enter the app: the webhook uses it, and local mode may feed the engine's
    /// events into it in-process.
    pub fn intake(&self) -> Arc<dyn EventIntake> {
        Arc::new(self.clone())
    }

    /// One reconciliation round: rebuilds the state of every connected worker over REST (pushing it where
    /// it changed) and applies the wrap-up policy to wrapping tasks of signed-in workers. The background
    /// loop calls it every `reconcile_interval`; tests call it directly after moving their clock.
    pub async fn reconcile(&self) {
        events::reconcile(self).await;
    }

    /// Starts the periodic reconciliation; it ends after [`AppState::shutdown`].
    pub fn spawn_background(&self) -> tokio::task::JoinHandle<()> {
        let state = self.clone();
        let mut stop = self.inner.shutdown.subscribe();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(state.inner.config.reconcile_interval);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = interval.tick() => state.reconcile().await,
                    _ = stop.changed() => break,
                }
            }
        })
    }

    /// Tells every connected socket `{"type":"shutdown"}`, closes them and the workers' event channels, and
    /// stops the background loop.
    pub fn shutdown(&self) {
        self.inner.hub.shutdown();
        channels::close_all(self);
        self.inner.shutdown.send_replace(true);
    }

    pub(crate) fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    /// Unix seconds, for tokens.
    pub(crate) fn now_secs(&self) -> u64 {
        u64::try_from(self.now().secs()).unwrap_or(0)
    }

    /// Notes that `worker_sid` holds a token valid until `exp`, and opens its event channel if need be.
    pub(crate) fn note_signed_in(&self, worker_sid: &str, exp: u64) {
        let now = self.now_secs();
        if let Ok(mut map) = self.inner.signed_in.lock() {
            map.retain(|_, until| *until > now);
            let until = map.entry(worker_sid.to_owned()).or_insert(exp);
            *until = (*until).max(exp);
        }
        if exp > now {
            channels::ensure(self, worker_sid);
        }
    }

    /// Whether `worker_sid` holds an unexpired token.
    pub(crate) fn is_signed_in(&self, worker_sid: &str) -> bool {
        let now = self.now_secs();
        self.inner
            .signed_in
            .lock()
            .map(|map| map.get(worker_sid).is_some_and(|until| *until > now))
            .unwrap_or(false)
    }
}

/// The whole app: the JSON API, the WebSocket, the webhook, the legacy URLs and the page, every response
/// with the [`headers`] (routes merged into it later do not get them: layer those with [`headers::layer`]).
///
/// Serve it with connect info (`ConnectInfo<SocketAddr>` in each request, as [`crate::start`] does) so that sign-in
/// attempts are limited per client address; without it only the overall budget applies.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(
            api::router()
                .merge(live::router())
                .merge(supervisor::router())
                // The page's bodies are a few hundred bytes; axum's default allows 2 MiB per request.
                .layer(axum::extract::DefaultBodyLimit::max(api::MAX_BODY_BYTES))
                .layer(axum::middleware::map_response(error::json_errors)),
        )
        .merge(events::router())
        .merge(legacy::router())
        .merge(assets::router())
        .with_state(state)
        .layer(headers::layer())
}

/// The unit tests' configuration: twilio mode, valid SIDs, password `pw`, at `https://app.example.com`.
#[cfg(test)]
pub(crate) fn test_config() -> AppConfig {
    AppConfig::new(
        Mode::Twilio,
        "AC0123456789abcdef0123456789abcdef",
        "token",
        "WS0123456789abcdef0123456789abcdef",
        "pw",
        "https://app.example.com",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> AppConfig {
        test_config()
    }

    #[test]
    fn validation_names_the_variable_to_fix() {
        assert!(config().validate().is_ok());
        type Break = fn(&mut AppConfig);
        let cases: [(Break, &str); 4] = [
            (|c| c.account_sid = "ACnope".into(), "ACCOUNT_SID"),
            (|c| c.workspace_sid = "WK0123456789abcdef0123456789abcdef".into(), "WORKSPACE_SID"),
            (|c| c.token_password.clear(), "TOKEN_PASSWORD"),
            (|c| c.public_url = "app.example.com".into(), "PUBLIC_URL"),
        ];
        for (break_it, variable) in cases {
            let mut config = config();
            break_it(&mut config);
            let message = config.validate().err().map(|e| e.to_string()).unwrap_or_default();
            assert!(message.contains(variable), "{message}");
        }
    }

    #[test]
    fn debug_hides_the_secrets() {
        let shown = format!("{:?}", AppConfig { auth_token: "s3cr3t-token".into(), ..config() });
        assert!(!shown.contains("s3cr3t-token") && !shown.contains("\"pw\""), "{shown}");
    }
}
