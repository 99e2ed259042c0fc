//! The embedded engine: opens the data directory, settles the engine's credentials, seeds a new engine, and
//! builds the Twilio-compatible router with callback delivery. `trworker engine` serves exactly this;
//! `trworker serve` in local mode serves it beside the worker app on the same port.

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use engine::handle::{self, Handle, Options};
use engine::{Clock, CoreConfig, ManualClock, RandomSids, Sid, SystemClock};

use crate::config;
use twilio_server::Credentials;
use twilio_server::{self, ApiError, ServerState};

/// What a new, empty engine is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Seed {
    /// The demo contact centre of the original app: workspace "writers", a support and a sales queue, four
    /// workers.
    Demo,
    /// Nothing: create workspaces through the API.
    None,
}

/// How to open the embedded engine.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where state, generated credentials and `local.env` live.
    pub data_dir: PathBuf,
    /// `ACCOUNT_SID` from the environment, if set.
    pub account_sid: Option<String>,
    /// `AUTH_TOKEN` from the environment, if set.
    pub auth_token: Option<String>,
    /// What a new engine gets.
    pub seed: Seed,
    /// Time moves only through `POST /trworker/v1/Clock`.
    pub manual_clock: bool,
}

/// Why the embedded engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration file.
    #[error(transparent)]
    Config(#[from] config::Error),
    /// `ACCOUNT_SID` is not an account SID.
    #[error("ACCOUNT_SID '{0}' is not an account SID (AC followed by 32 hexadecimal digits); unset it to use generated credentials")]
    AccountSid(String),
    /// The data directory.
    #[error(transparent)]
    Open(#[from] handle::OpenError),
    /// Seeding the demo workspace.
    #[error("could not create the demo workspace: {0}")]
    Seed(handle::Error),
    /// Reading the state.
    #[error("the engine stopped while starting: {0}")]
    Engine(#[from] handle::Error),
}

/// A running embedded engine.
pub struct Embedded {
    /// The engine.
    pub handle: Handle,
    /// Its account SID and auth token.
    pub credentials: Credentials,
    /// The workspace to show first: the demo one, or the oldest.
    pub workspace_sid: Option<Sid>,
    /// Present when time is moved by hand.
    pub manual_clock: Option<ManualClock>,
    /// The data directory.
    pub data_dir: PathBuf,
    /// Counts of the event callbacks delivered by [`Embedded::routes`]' deliverer, for `/metrics`.
    pub callback_stats: Arc<twilio_server::callbacks::DeliveryStats>,
    /// Counts of the assignment callbacks (workflows' `AssignmentCallbackUrl`), for `/metrics`.
    pub assignment_stats: Arc<twilio_server::callbacks::DeliveryStats>,
}

impl Embedded {
    /// Opens (or creates) the engine in `settings.data_dir`.
    pub async fn open(settings: Settings) -> Result<Embedded, Error> {
        let credentials =
            config::local_credentials(&settings.data_dir, settings.account_sid, settings.auth_token)?;
        let account_sid = Sid::parse_as(&credentials.account_sid, engine::Prefix::Account)
            .map_err(|_| Error::AccountSid(credentials.account_sid.clone()))?;
        let manual_clock = settings.manual_clock.then(|| ManualClock::new(SystemClock.now()));
        let clock: Arc<dyn Clock> = match &manual_clock {
            Some(manual) => Arc::new(manual.clone()),
            None => Arc::new(SystemClock),
        };
        let (handle, fresh) = handle::open(
            &settings.data_dir,
            account_sid,
            Box::new(RandomSids::new()),
            CoreConfig::default(),
            clock,
            Options::default(),
        )?;
        let workspace_sid = if fresh && settings.seed == Seed::Demo {
            Some(handle.seed_demo().await.map_err(Error::Seed)?)
        } else {
            handle.read(|state| state.core.workspaces(None).into_iter().map(|w| w.sid).next()).await?
        };
        Ok(Embedded {
            handle,
            credentials,
            workspace_sid,
            manual_clock,
            data_dir: settings.data_dir,
            callback_stats: Arc::default(),
            assignment_stats: Arc::default(),
        })
    }

    /// The engine as the Twilio-compatible server drives it.
    pub fn engine(&self) -> twilio_server::Engine {
        twilio_server::Engine::new(self.handle.clone())
    }

    /// The Twilio-compatible routes (behind Basic auth) plus, with a manual clock, `POST /trworker/v1/Clock`.
    /// Starts the event and assignment callback deliverers.
    pub fn routes(&self, public_url: &str) -> Router {
        let engine = self.engine();
        let credentials = self.credentials.clone();
        let options = twilio_server::callbacks::Options {
            stats: self.callback_stats.clone(),
            ..twilio_server::callbacks::Options::default()
        };
        twilio_server::callbacks::spawn(engine.clone(), credentials.clone(), options);
        twilio_server::assignment::spawn(
            engine.clone(),
            credentials.clone(),
            twilio_server::assignment::TIMEOUT,
            self.assignment_stats.clone(),
        );
        let state = ServerState::new(engine, credentials, public_url);
        let mut routes = twilio_server::routes(state.clone());
        if let Some(clock) = &self.manual_clock {
            let clock_routes = Router::new()
                .route("/trworker/v1/Clock", post(advance_clock))
                .with_state(ClockState { clock: clock.clone(), handle: self.handle.clone() })
                .layer(twilio_server::auth::RequireAuth::new(state));
            routes = routes.merge(clock_routes);
        }
        routes
    }

    /// Writes `DIR/local.env` so the CLI, scripts and the conformance suite find this engine.
    pub fn write_local_env(&self, base_url: &str, extra: &[(&str, &str)]) -> Result<PathBuf, Error> {
        let path = self.data_dir.join("local.env");
        let workspace = self.workspace_sid.map(|s| s.to_string()).unwrap_or_default();
        let mut entries = vec![
            ("ACCOUNT_SID", self.credentials.account_sid.as_str()),
            ("AUTH_TOKEN", self.credentials.auth_token.as_str()),
            ("WORKSPACE_SID", workspace.as_str()),
            ("TWILIO_TASKROUTER_URL", base_url),
            ("TWILIO_API_URL", base_url),
        ];
        entries.extend_from_slice(extra);
        config::write_env_file(&path, &entries)?;
        Ok(path)
    }
}

#[derive(Clone)]
struct ClockState {
    clock: ManualClock,
    handle: Handle,
}

/// `POST /trworker/v1/Clock` with `AdvanceSeconds=N` (0..=2,678,400, fractions allowed): moves the engine's
/// manual clock forward and fires every timer that became due. Answers `{"now": <ms>, "now_iso": …}`.
async fn advance_clock(
    State(state): State<ClockState>,
    body: String,
) -> Result<Json<serde_json::Value>, ApiError> {
    let params: Vec<(String, String)> = serde_urlencoded::from_str(&body)
        .map_err(|_| ApiError::invalid("the body must be form-encoded: AdvanceSeconds=N"))?;
    if let Some((name, _)) = params.iter().find(|(name, _)| name != "AdvanceSeconds") {
        return Err(ApiError::invalid(format!(
            "Unknown parameter {name}; the only parameter is AdvanceSeconds"
        )));
    }
    let seconds: f64 = params
        .iter()
        .find_map(|(_, value)| value.trim().parse().ok())
        .filter(|s: &f64| s.is_finite() && (0.0..=2_678_400.0).contains(s))
        .ok_or_else(|| ApiError::invalid("AdvanceSeconds must be a number of seconds from 0 to 2678400"))?;
    state.clock.advance_millis((seconds * 1000.0).round() as i64);
    state.handle.tick().await.map_err(|e| ApiError::unavailable(e.to_string()))?;
    let now = state.clock.now();
    Ok(Json(serde_json::json!({ "now": now.millis(), "now_iso": twilio_server::render::iso8601(now) })))
}

/// The default public URL of a server bound to `addr`: loopback when bound to every interface.
pub fn default_public_url(addr: std::net::SocketAddr) -> String {
    let host = if addr.ip().is_unspecified() { "127.0.0.1".to_owned() } else { addr.ip().to_string() };
    match addr.ip() {
        std::net::IpAddr::V6(_) if !addr.ip().is_unspecified() => format!("http://[{host}]:{}", addr.port()),
        _ => format!("http://{host}:{}", addr.port()),
    }
}
