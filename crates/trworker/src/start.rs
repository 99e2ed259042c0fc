//! The one way to start trworker: [`start`] takes a bound listener, [`Settings`] and a shutdown signal, and
//! runs what they ask for: the engine alone (`trworker engine`), or the worker app with its embedded engine
//! (local mode) or against a TaskRouter elsewhere (twilio mode). The command line, the benchmark example and
//! every test harness start trworker through it, so they all run the same composition.
//!
//! In local mode:
//! - the engine's routes are served on the public port (for the CLI, scripts and anyone's Twilio code) and
//!   on a private loopback listener that only the app's own client uses, outside the public port's
//!   connection cap, so a flood of strangers' connections cannot cut the app off from its engine;
//! - the engine's events reach the app in process, as applied (one disk sync before they are durable, so
//!   the page shows a call as soon as a read would: `engine::handle` docs), through the same intake the
//!   `/twilio/events` webhook feeds;
//! - `DATA_DIR/local.env` tells the CLI and scripts where the server is.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use engine::{Clock, SystemClock};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use twilio_server::http::{self, Limits};
use twilio_server::worker_feed::{WorkerFeed, WorkspaceFeed};

use crate::app::{AppConfig, AppState};
use crate::config::{self, vars};
use crate::embedded::{self, Embedded};
use crate::metrics::Metrics;
use crate::obs::{self, Observer};

/// What to run.
pub enum Role {
    /// The engine alone, as `trworker engine`: the Twilio-compatible REST API and callbacks.
    Engine,
    /// The worker app, configured by this. With [`Settings::engine`] (local mode), [`start`] fills in the
    /// account, auth token, workspace, base URLs and (when empty) the password from the embedded engine;
    /// without it they are used as given. `mode` is what the app reports ([`crate::app::Mode`]).
    Serve(Box<AppConfig>),
}

/// Everything [`start`] needs besides the listener.
pub struct Settings {
    /// What to run.
    pub role: Role,
    /// The embedded engine to open: needed by [`Role::Engine`]. With [`Role::Serve`] it makes the local-mode
    /// composition (the app's account, token, workspace and base URLs come from it; the CLI gives it in
    /// local mode only); without it the app talks to the TaskRouter its configuration names (twilio mode,
    /// or the test harnesses' upstream engine with the app reporting local mode).
    pub engine: Option<embedded::Settings>,
    /// The address clients use to reach this server (default: the bound address on loopback).
    pub public_url: Option<String>,
    /// What a connection may cost ([`Limits::fit_to_open_files_limit`] is the caller's choice).
    pub limits: Limits,
    /// The app's clock; by default the engine's (a manual one when the engine has one), else the system's.
    pub app_clock: Option<Arc<dyn Clock>>,
    /// Which of the embedded engine's event streams the app follows in local mode.
    pub feed: Feed,
    /// Whether the app reconciles every `reconcile_interval` in the background (the CLI: always). Tests
    /// that move a manual clock call [`AppState::reconcile`] themselves, so that nothing happens on a real
    /// timer while they look.
    pub reconcile: bool,
}

impl Settings {
    /// `role` (with `engine`, see [`Settings::engine`]) as the CLI runs it: on the bound address, default
    /// limits, the engine's clock, the applied feed and reconciliation in the background. Change a field
    /// with struct update syntax.
    pub fn new(role: Role, engine: Option<embedded::Settings>) -> Settings {
        Settings {
            role,
            engine,
            public_url: None,
            limits: Limits::default(),
            app_clock: None,
            feed: Feed::Applied,
            reconcile: true,
        }
    }
}

/// Which of the engine's event streams feeds the app in local mode (`engine::handle` docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Feed {
    /// Events as applied, one disk sync before they are durable: the page shows a call as soon as a read
    /// would. What `trworker serve` does.
    #[default]
    Applied,
    /// Events released after the durable commit: for `ws_bench --durable-feed`, which measures what the
    /// applied feed saves.
    Durable,
}

/// A started server: where it is and its parts, for banners and tests.
pub struct Started {
    /// The public URL (no trailing slash).
    pub url: String,
    /// The bound address as a URL on loopback, for this machine's clients.
    pub listening: String,
    /// The bound address.
    pub addr: SocketAddr,
    /// The worker app, when serving it.
    pub app: Option<AppState>,
    /// The embedded engine, when there is one.
    pub engine: Option<Arc<Embedded>>,
    /// `DATA_DIR/local.env`, when written.
    pub local_env: Option<PathBuf>,
    /// The server's metrics registry.
    pub metrics: Arc<Metrics>,
    done: JoinHandle<anyhow::Result<()>>,
}

impl Started {
    /// Waits until the server has stopped after its shutdown signal: connections drained, the engine's
    /// state saved and its directory released.
    pub async fn stopped(self) -> anyhow::Result<()> {
        self.done.await.context("the server task failed")?
    }
}

/// Starts what `settings` asks for on `listener`, serving until `shutdown` resolves. Returns once the server
/// is up (engine opened and seeded, app state built, `local.env` written); [`Started::stopped`] waits for the
/// end.
pub async fn start(
    listener: TcpListener,
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Started> {
    let addr = listener.local_addr().context("cannot read the bound address")?;
    let listening = embedded::default_public_url(addr);
    let url =
        settings.public_url.clone().unwrap_or_else(|| listening.clone()).trim_end_matches('/').to_owned();
    match settings.role {
        Role::Engine => {
            let engine = settings.engine.context("the engine alone needs Settings::engine")?;
            start_engine(listener, engine, settings.limits, url, listening, addr, shutdown).await
        }
        Role::Serve(config) => {
            let parts = Parts {
                limits: settings.limits,
                url,
                listening,
                addr,
                app_clock: settings.app_clock,
                feed: settings.feed,
                reconcile: settings.reconcile,
            };
            start_serve(listener, *config, settings.engine, parts, shutdown).await
        }
    }
}

/// Where [`start_serve`] serves, besides the listener.
struct Parts {
    limits: Limits,
    url: String,
    listening: String,
    addr: SocketAddr,
    app_clock: Option<Arc<dyn Clock>>,
    feed: Feed,
    reconcile: bool,
}

async fn open_engine(settings: embedded::Settings) -> anyhow::Result<Arc<Embedded>> {
    let dir = settings.data_dir.clone();
    let embedded = Embedded::open(settings)
        .await
        .with_context(|| format!("cannot start the engine in {}", dir.display()))?;
    Ok(Arc::new(embedded))
}

async fn start_engine(
    listener: TcpListener,
    engine: embedded::Settings,
    limits: Limits,
    url: String,
    listening: String,
    addr: SocketAddr,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Started> {
    let embedded = open_engine(engine).await?;
    let metrics = Metrics::new();
    let observer = Observer::builder(metrics.clone(), "engine")
        .engine(embedded.handle.clone(), embedded.callback_stats.clone())
        .assignments(embedded.assignment_stats.clone())
        .build();
    // No worker app here to see the events: reservation outcomes are counted straight from the engine.
    let mut events = embedded.handle.subscribe();
    let counting = metrics.clone();
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(event) => counting.count_event(event.event_type.as_str()),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    });
    let router = embedded
        .routes(&url)
        .merge(obs::router(observer))
        .fallback(twilio_server::not_found)
        .layer(crate::app::headers::layer())
        .layer(obs::Track::new(metrics.clone()));
    let local_env = embedded.write_local_env(&listening, &[])?;
    let clock: Arc<dyn Clock> = match &embedded.manual_clock {
        Some(manual) => Arc::new(manual.clone()),
        None => Arc::new(SystemClock),
    };
    let engine = embedded.clone();
    // Without connect info: nothing behind these routes asks for the peer's address (only the worker app's
    // sign-in does), and recording it costs an extension map per request.
    let done = tokio::spawn(async move {
        http::serve(listener, router, limits, clock, false, async move {
            shutdown.await;
            tracing::info!("shutting down");
        })
        .await
        .context("the server failed")?;
        engine.handle.stop().await.context("could not save the engine's state on shutdown")?;
        Ok(())
    });
    Ok(Started {
        url,
        listening,
        addr,
        app: None,
        engine: Some(embedded),
        local_env: Some(local_env),
        metrics,
        done,
    })
}

async fn start_serve(
    listener: TcpListener,
    mut config: AppConfig,
    engine: Option<embedded::Settings>,
    parts: Parts,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Started> {
    let Parts { limits, url, listening, addr, app_clock, feed, reconcile } = parts;
    config.public_url = url.clone();
    let mut local = None;
    if let Some(engine) = engine {
        let data_dir = engine.data_dir.clone();
        let embedded = open_engine(engine).await?;
        config.account_sid = embedded.credentials.account_sid.clone();
        config.auth_token = embedded.credentials.auth_token.clone();
        config.workspace_sid = embedded.workspace_sid.map(|s| s.to_string()).context(
            "the local engine has no workspace; move the data directory aside to start with the demo one",
        )?;
        if config.token_password.is_empty() {
            config.token_password = config::local_token_password(&data_dir)?;
        }
        if config.supervisor_password.is_empty() {
            config.supervisor_password = config::local_supervisor_password(&data_dir)?;
        }
        let internal = TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
            .await
            .context("cannot listen on a loopback port for the app's own engine requests")?;
        let internal_url =
            embedded::default_public_url(internal.local_addr().context("cannot read the bound address")?);
        config.taskrouter_url = Some(internal_url.clone());
        config.api_url = Some(internal_url);
        // In process unless the configuration names another source (a test of an unreachable bridge).
        config.event_source.get_or_insert(crate::app::channels::Source::InProcess);
        local = Some((embedded, internal));
    }
    if config.legacy_open {
        tracing::warn!(
            "{}: conferenceEndFn.php and taskReservationTaskFix.php act without a worker token, as the original \
             app did; anyone who can reach this server can end calls and read tasks",
            vars::LEGACY_OPEN
        );
    }
    let engine_clock = local.as_ref().and_then(|(e, _)| e.manual_clock.clone());
    let clock: Arc<dyn Clock> = match (app_clock, engine_clock) {
        (Some(clock), _) => clock,
        (None, Some(manual)) => Arc::new(manual),
        (None, None) => Arc::new(SystemClock),
    };
    let state = AppState::new(config, clock.clone()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let metrics = state.metrics().clone();

    let observer = Observer::builder(metrics.clone(), state.config().mode.as_str()).app(state.clone());
    let observer = match &local {
        Some((embedded, _)) => observer
            .engine(embedded.handle.clone(), embedded.callback_stats.clone())
            .assignments(embedded.assignment_stats.clone()),
        None => observer.twilio(state.client().clone()),
    };
    let mut router = crate::app::router(state.clone()).merge(obs::router(observer.build()));
    let (internal_stop, internal_stopped) = tokio::sync::watch::channel(false);
    let mut internal_server = None;
    let mut local_env = None;
    let mut engine = None;
    if let Some((embedded, internal)) = local {
        let routes = embedded.routes(&url);
        router = router.merge(routes.clone());
        let routes = routes.fallback(twilio_server::not_found).layer(obs::Track::new(metrics.clone()));
        let mut stopped = internal_stopped.clone();
        let stop = async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        // Only this process connects here; its client keeps a handful of pooled connections.
        let internal_limits = Limits { max_connections: 1024, ..Limits::default() };
        internal_server =
            Some(tokio::spawn(http::serve(internal, routes, internal_limits, clock.clone(), false, stop)));
        // Workers' event channels, in process (`app::channels`), from the engine's own stream.
        let server = twilio_server::ServerState::new(embedded.engine(), embedded.credentials.clone(), &url);
        let workspace = embedded.workspace_sid.context("the local engine has no workspace")?;
        let (supervisor_server, supervisor_feed) = (server.clone(), feed);
        let feed = match feed {
            Feed::Applied => WorkerFeed::applied(server, workspace),
            Feed::Durable => WorkerFeed::durable(server, workspace),
        };
        crate::app::channels::spawn_local(state.clone(), feed);
        // The supervisor page's workspace channel, in process, opened while a supervisor page is open.
        crate::app::supervisor::attach_local(&state, move || match supervisor_feed {
            Feed::Applied => WorkspaceFeed::applied(supervisor_server.clone(), workspace),
            Feed::Durable => WorkspaceFeed::durable(supervisor_server.clone(), workspace),
        });
        let password = state.config().token_password.clone();
        local_env = Some(embedded.write_local_env(&listening, &[(vars::TOKEN_PASSWORD, password.as_str())])?);
        engine = Some(embedded);
    }
    let router = router
        .fallback(twilio_server::not_found)
        .layer(crate::app::headers::layer())
        .layer(obs::Track::new(metrics.clone()));

    let background = reconcile.then(|| state.spawn_background());
    let app = state.clone();
    let stopping = engine.clone();
    let done = tokio::spawn(async move {
        let on_shutdown = app.clone();
        http::serve(listener, router, limits, clock, true, async move {
            shutdown.await;
            tracing::info!("shutting down: no new connections; telling connected workers");
            on_shutdown.shutdown();
        })
        .await
        .context("the server failed")?;
        internal_stop.send_replace(true);
        if let Some(internal) = internal_server {
            internal
                .await
                .context("the app's engine listener failed")?
                .context("the app's engine listener failed")?;
        }
        // Upgraded WebSockets outlive the HTTP server: give them a moment to send their goodbye and close,
        // or the runtime's end would cut them off mid-frame.
        let closing = std::time::Instant::now();
        while app.connections().1 > 0 && closing.elapsed() < Duration::from_secs(2) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if let Some(background) = background {
            background.abort();
        }
        if let Some(embedded) = stopping {
            embedded.handle.stop().await.context("could not save the engine's state on shutdown")?;
        }
        Ok(())
    });
    Ok(Started { url, listening, addr, app: Some(state), engine, local_env, metrics, done })
}
