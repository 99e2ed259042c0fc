//! The command line: one `clap` definition, so flags, environment variables and `--help` come from one place,
//! and the commands that run a server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};

use twilio_server::http::Limits;

use crate::app::channels::Source;
use crate::app::{AppConfig, Mode, WrapUpPolicy};
use crate::config::vars;
use crate::embedded::{self, Embedded, Seed};
use crate::obs::log::LogFormat;
use crate::ops;
use crate::start::{start, Role, Settings, Started};

/// A TaskRouter worker app with its own TaskRouter.
#[derive(Debug, Parser)]
#[command(name = "trworker", version, about, propagate_version = true)]
pub struct Cli {
    /// What to run; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Action>,
    /// Log lines as human-readable text or as one JSON object per line (level from RUST_LOG).
    #[arg(long, global = true, env = vars::LOG_FORMAT, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Action {
    /// Run the worker app: the page, its API and live events; with its own embedded engine in local mode.
    Serve(ServeArgs),
    /// Run the local TaskRouter engine alone: Twilio's REST API for any Twilio program on this machine.
    Engine(EngineArgs),
    /// Every worker with its activity and how long it has been in it.
    Workers(ops::workers::WorkersArgs),
    /// Tasks: list them with reservations and conference, fix those stuck in wrapping, delete them all.
    Tasks(ops::tasks::TasksArgs),
    /// Conferences: list those in progress, end one.
    Conferences(ops::conferences::ConferencesArgs),
    /// Place a simulated incoming call (a voice task as Studio's Enqueue creates it), or hang one up.
    Call(ops::call::CallArgs),
    /// Create or check the seed's workspace setup: activities, support queue and workflow, a worker, the
    /// event callback URL.
    Setup(ops::setup::SetupArgs),
    /// Print a worker capability token for a worker, found by its friendly name.
    Token(ops::token::TokenArgs),
    /// Check a running server's readiness (`/readyz`), or liveness with `--live`; exit 0 when it answers 200.
    /// For container health checks: needs no curl.
    Health(HealthArgs),
}

/// `trworker health`.
#[derive(Debug, Clone, Args)]
pub struct HealthArgs {
    /// The server's base URL (default http://127.0.0.1:PORT).
    #[arg(long)]
    pub url: Option<String>,
    /// The port of a server on this machine, when --url is not given.
    #[arg(long, env = vars::PORT, default_value_t = 8080)]
    pub port: u16,
    /// Check liveness (`/healthz`) instead of readiness.
    #[arg(long)]
    pub live: bool,
}

/// Where a server listens and keeps its state.
#[derive(Debug, Clone, Args)]
pub struct ListenArgs {
    /// Port to listen on (0 picks a free one).
    #[arg(long, env = vars::PORT, default_value_t = 8080)]
    pub port: u16,
    /// Address to bind (0.0.0.0 to accept connections from other machines).
    #[arg(long, env = vars::BIND, default_value = "127.0.0.1")]
    pub bind: String,
    /// Directory for state, generated credentials and local.env.
    #[arg(long, env = vars::DATA_DIR, default_value = "data")]
    pub data_dir: PathBuf,
    /// The address clients use to reach this server, used in every `url` it returns and in signatures
    /// (default http://127.0.0.1:PORT).
    #[arg(long, env = vars::PUBLIC_URL)]
    pub public_url: Option<String>,
    /// Connections served at once, WebSockets included; one more gets 503 (lowered to fit the open-files
    /// limit).
    #[arg(long, env = vars::MAX_CONNECTIONS, default_value_t = 16_384,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// Seconds a new connection has to send its first request's headers.
    #[arg(long, env = vars::HEADER_TIMEOUT, default_value_t = Limits::default().header_timeout.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub header_timeout_seconds: u64,
    /// Seconds a keep-alive connection may wait for its next request.
    #[arg(long, env = vars::IDLE_TIMEOUT, default_value_t = Limits::default().idle_timeout.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..=86400))]
    pub idle_timeout_seconds: u64,
}

impl ListenArgs {
    /// The connection limits these arguments ask for, fitted to the open-files limit.
    fn limits(&self) -> Limits {
        let mut limits = Limits {
            max_connections: usize::try_from(self.max_connections).unwrap_or(usize::MAX),
            header_timeout: Duration::from_secs(self.header_timeout_seconds),
            idle_timeout: Duration::from_secs(self.idle_timeout_seconds),
            ..Limits::default()
        };
        limits.fit_to_open_files_limit();
        limits
    }

    /// What `serve` and `engine` start with: these arguments' public URL and limits, the engine's clock, the
    /// applied feed and reconciliation in the background.
    fn settings(&self, role: Role, engine: Option<embedded::Settings>) -> Settings {
        Settings { public_url: self.public_url.clone(), limits: self.limits(), ..Settings::new(role, engine) }
    }
}

/// `trworker serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub listen: ListenArgs,
    /// `local` (embedded engine) or `twilio`; by default twilio when ACCOUNT_SID, AUTH_TOKEN and WORKSPACE_SID
    /// are all set, else local.
    #[arg(long, env = vars::MODE, value_parser = ["local", "twilio"])]
    pub mode: Option<String>,
    /// The password workers sign in with; in local mode generated once and kept in the data directory.
    #[arg(long, env = vars::TOKEN_PASSWORD, hide_env_values = true)]
    pub token_password: Option<String>,
    /// The password supervisors sign in with at /supervisor; in local mode generated once and kept in the
    /// data directory; unset in twilio mode, the supervisor page is off.
    #[arg(long, env = vars::SUPERVISOR_PASSWORD, hide_env_values = true)]
    pub supervisor_password: Option<String>,
    /// Activity a worker is moved to after accepting a call.
    #[arg(long, env = vars::ACCEPT_ACTIVITY, default_value = "Unavailable")]
    pub accept_activity: String,
    /// Activity a worker is moved to on sign-out, and when its page has been closed past the grace.
    #[arg(long, env = vars::LEAVE_ACTIVITY, default_value = "Offline")]
    pub leave_activity: String,
    /// Seconds a worker's last page may be closed before an available worker is moved to the leave
    /// activity (0: never).
    #[arg(long, env = vars::LEAVE_GRACE, default_value_t = 120)]
    pub leave_grace_seconds: u64,
    /// Activity given as the conference instruction's PostWorkActivitySid.
    #[arg(long, env = vars::POST_WORK_ACTIVITY, default_value = "Offline")]
    pub post_work_activity: String,
    /// Seconds of wrap-up after a call ("Extend" adds a minute at a time, up to 10 minutes); at zero the
    /// server completes the task. 0: no wrap-up, the task is completed as soon as the call ends.
    #[arg(long, env = vars::WRAP_UP_SECONDS, default_value_t = WrapUpPolicy::DEFAULT_SECONDS)]
    pub wrap_up_seconds: u64,
    /// Behind a router (Heroku's, a load balancer): take client addresses from X-Forwarded-For for the
    /// sign-in rate limit.
    #[arg(long, env = vars::TRUST_PROXY)]
    pub trust_proxy: bool,
    /// TaskRouter base URL in twilio mode (e.g. a separate `trworker engine`).
    #[arg(long, env = vars::TASKROUTER_URL)]
    pub taskrouter_url: Option<String>,
    /// API 2010 base URL in twilio mode.
    #[arg(long, env = vars::API_URL)]
    pub api_url: Option<String>,
    /// Event bridge base URL in twilio mode (default Twilio's, or the TaskRouter URL when that is set);
    /// `off`: no event channels, events by the webhook only.
    #[arg(long, env = vars::EVENT_BRIDGE_URL)]
    pub event_bridge_url: Option<String>,
    /// Seconds a new worker WebSocket has to send its hello.
    #[arg(long, env = vars::WS_HELLO_TIMEOUT, default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub ws_hello_timeout_seconds: u64,
    /// Largest message in bytes a client may send on the worker WebSocket.
    #[arg(long, env = vars::WS_MAX_MESSAGE, default_value_t = 16 * 1024,
          value_parser = clap::value_parser!(u32).range(1024..=16 * 1024 * 1024))]
    pub ws_max_message_bytes: u32,
    /// Let the original app's conferenceEndFn.php and taskReservationTaskFix.php act without a worker token,
    /// as the original did: only for an unmodified old page on a trusted network.
    #[arg(long, env = vars::LEGACY_OPEN)]
    pub legacy_open: bool,
}

/// `trworker engine`.
#[derive(Debug, Clone, Args)]
pub struct EngineArgs {
    #[command(flatten)]
    pub listen: ListenArgs,
    /// What to create in a new, empty data directory.
    #[arg(long, value_enum, default_value_t = Seed::Demo)]
    pub seed: Seed,
    /// Let time move only through `POST /trworker/v1/Clock` (for tests of timeouts that must not sleep).
    #[arg(long)]
    pub manual_clock: bool,
}

/// Runs the command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Some(Action::Engine(args)) => run_engine(args, "engine", cli.log_format).await,
        Some(Action::Serve(args)) => run_serve(args, cli.log_format).await,
        Some(Action::Workers(args)) => ops::workers::run(args).await,
        Some(Action::Tasks(args)) => ops::tasks::run(args).await,
        Some(Action::Conferences(args)) => ops::conferences::run(args).await,
        Some(Action::Call(args)) => ops::call::run(args).await,
        Some(Action::Setup(args)) => ops::setup::run(args).await,
        Some(Action::Token(args)) => ops::token::run(args).await,
        Some(Action::Health(args)) => run_health(args).await,
        None => run_serve(ServeArgs::parse_from_env(), cli.log_format).await,
    }
}

impl ServeArgs {
    /// The defaults and environment of `serve`, for `trworker` with no subcommand.
    fn parse_from_env() -> ServeArgs {
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            serve: ServeArgs,
        }
        Only::parse_from(["trworker"]).serve
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

async fn bind(listen: &ListenArgs) -> anyhow::Result<tokio::net::TcpListener> {
    let addr: SocketAddr = format!("{}:{}", listen.bind, listen.port)
        .parse()
        .or_else(|_| format!("[{}]:{}", listen.bind, listen.port).parse())
        .with_context(|| format!("TRWORKER_BIND/--bind '{}' is not an IP address", listen.bind))?;
    tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}: is another program using port {}?", listen.port))
}

/// `trworker serve`. With JSON logs the start-up banner is left out of stdout (the `started` log line says
/// the same, without secrets).
async fn run_serve(args: ServeArgs, log: LogFormat) -> anyhow::Result<()> {
    let text = log == LogFormat::Text;
    // Listen for SIGTERM/Ctrl-C from the start, so a signal during start-up also stops the server cleanly.
    let stop = shutdown_signal();
    let twilio_configured = env(vars::ACCOUNT_SID).is_some()
        && env(vars::AUTH_TOKEN).is_some()
        && env(vars::WORKSPACE_SID).is_some();
    let mode = match args.mode.as_deref() {
        Some("twilio") => Mode::Twilio,
        Some(_) => Mode::Local,
        None if twilio_configured => Mode::Twilio,
        None => Mode::Local,
    };
    let listener = bind(&args.listen).await?;
    let password_given = args.token_password.is_some();
    let mut app_config = match mode {
        // The account, token, workspace, base URLs and a generated password come from the embedded engine.
        Mode::Local => {
            AppConfig::new(Mode::Local, "", "", "", args.token_password.clone().unwrap_or_default(), "")
        }
        Mode::Twilio => {
            let need = |name: &str| {
                env(name).with_context(|| {
                    format!(
                        "{name} is not set: twilio mode needs ACCOUNT_SID, AUTH_TOKEN, WORKSPACE_SID and \
                         TOKEN_PASSWORD (or run with TRWORKER_MODE=local)"
                    )
                })
            };
            let mut config = AppConfig::new(
                Mode::Twilio,
                need(vars::ACCOUNT_SID)?,
                need(vars::AUTH_TOKEN)?,
                need(vars::WORKSPACE_SID)?,
                args.token_password
                    .clone()
                    .context("TOKEN_PASSWORD is not set: workers need it to sign in")?,
                "",
            );
            config.taskrouter_url = args.taskrouter_url.clone();
            config.api_url = args.api_url.clone();
            config.event_source = args.event_bridge_url.as_deref().map(|url| match url {
                "off" => Source::Off,
                url => Source::Bridge { base_url: format!("{}/v1/wschannels", url.trim_end_matches('/')) },
            });
            config
        }
    };
    let supervisor_password_given = args.supervisor_password.is_some();
    app_config.supervisor_password = args.supervisor_password.clone().unwrap_or_default();
    app_config.accept_activity = args.accept_activity.clone();
    app_config.post_work_activity = args.post_work_activity.clone();
    app_config.leave_activity = args.leave_activity.clone();
    app_config.leave_grace =
        (args.leave_grace_seconds > 0).then(|| Duration::from_secs(args.leave_grace_seconds));
    app_config.wrap_up = WrapUpPolicy::seconds(args.wrap_up_seconds);
    app_config.trust_forwarded_for = args.trust_proxy;
    app_config.ws_hello_timeout = Duration::from_secs(args.ws_hello_timeout_seconds);
    app_config.ws_max_message_bytes = usize::try_from(args.ws_max_message_bytes).unwrap_or(usize::MAX);
    app_config.legacy_open = args.legacy_open;
    // Without PUBLIC_URL the webhook's signed URL is the one the request names (a router's forwarded scheme
    // and host); with it, PUBLIC_URL wins.
    app_config.public_url_from_headers = args.listen.public_url.is_none();
    let engine = (mode == Mode::Local).then(|| engine_settings(&args.listen, Seed::Demo, false));
    let settings = args.listen.settings(Role::Serve(Box::new(app_config)), engine);
    let started = start(listener, settings, stop).await?;
    let (url, listening) = (started.url.as_str(), started.listening.as_str());
    let config = started.app.as_ref().map(|app| app.config().clone()).context("the app did not start")?;
    match &started.engine {
        Some(embedded) => {
            let identities = local_identities(embedded).await;
            // Where to read the sign-in password (never the password itself): the generated one's file, or
            // the variable that gave it.
            let password_from = match password_given {
                true => vars::TOKEN_PASSWORD.to_owned(),
                false => embedded.data_dir.join("token_password.env").display().to_string(),
            };
            let supervisor_password_from = match supervisor_password_given {
                true => vars::SUPERVISOR_PASSWORD.to_owned(),
                false => embedded.data_dir.join("supervisor_password.env").display().to_string(),
            };
            tracing::info!(
                url = %url, mode = "local", workspace_sid = %config.workspace_sid,
                data_dir = %embedded.data_dir.display(), identities = %identities.join(","), %password_from,
                %supervisor_password_from, listening = %listening, "trworker serve started"
            );
            if text {
                // The password is shown only when it was generated here: a password the operator gave is
                // never echoed (it may end up in a log collector).
                let password = match password_given {
                    true => "(from TOKEN_PASSWORD)".to_owned(),
                    false => config.token_password.clone(),
                };
                println!("trworker: worker app at {url} (local mode: embedded TaskRouter engine)");
                if url != listening {
                    println!("  listening on   {listening}");
                }
                println!("  sign in as     {}", identities.join(", "));
                println!("  password       {password}");
                let supervisor = match supervisor_password_given {
                    true => "(from SUPERVISOR_PASSWORD)".to_owned(),
                    false => config.supervisor_password.clone(),
                };
                println!("  supervisor     {url}/supervisor  password {supervisor}");
                println!("  account SID    {}", embedded.credentials.account_sid);
                println!("  workspace SID  {}", config.workspace_sid);
                println!("  data           {}", embedded.data_dir.display());
                if let Some(env_file) = &started.local_env {
                    println!("  settings for the CLI and scripts: {}", env_file.display());
                }
            }
        }
        None => {
            tracing::info!(
                url = %url, mode = "twilio", workspace_sid = %config.workspace_sid,
                listening = %listening, "trworker serve started"
            );
            if text {
                println!("trworker: worker app at {url} (twilio mode, workspace {})", config.workspace_sid);
                if url != listening {
                    println!("  listening on   {listening}");
                }
                println!("  TaskRouter events: set the workspace's EventCallbackUrl to {url}/twilio/events");
                match config.supervisor_password.is_empty() {
                    true => {
                        println!("  supervisor page off: set SUPERVISOR_PASSWORD to open {url}/supervisor")
                    }
                    false => {
                        println!("  supervisor     {url}/supervisor  password (from SUPERVISOR_PASSWORD)")
                    }
                }
            }
        }
    }
    stopped(started, text, "trworker").await
}

/// The embedded engine's settings from the command line and the environment.
fn engine_settings(listen: &ListenArgs, seed: Seed, manual_clock: bool) -> embedded::Settings {
    embedded::Settings {
        data_dir: listen.data_dir.clone(),
        account_sid: env(vars::ACCOUNT_SID),
        auth_token: env(vars::AUTH_TOKEN),
        seed,
        manual_clock,
    }
}

/// The demo identities to print at start: the workspace's worker names.
async fn local_identities(embedded: &Embedded) -> Vec<String> {
    let Some(ws) = embedded.workspace_sid else { return Vec::new() };
    embedded
        .handle
        .read(move |state| {
            state
                .core
                .workers(ws, &Default::default())
                .map(|workers| {
                    let mut names: Vec<String> =
                        workers.into_iter().map(|w| w.friendly_name.clone()).collect();
                    names.sort();
                    names
                })
                .unwrap_or_default()
        })
        .await
        .unwrap_or_default()
}

async fn run_engine(args: EngineArgs, command: &str, log: LogFormat) -> anyhow::Result<()> {
    let text = log == LogFormat::Text;
    let stop = shutdown_signal();
    let auth_token_given = env(vars::AUTH_TOKEN).is_some();
    let listener = bind(&args.listen).await?;
    let engine = engine_settings(&args.listen, args.seed, args.manual_clock);
    let settings = args.listen.settings(Role::Engine, Some(engine));
    let started = start(listener, settings, stop).await?;
    let url = started.url.as_str();
    let embedded = started.engine.as_ref().context("the engine did not start")?;
    tracing::info!(url = %url, data_dir = %embedded.data_dir.display(), "trworker {command} started");
    if text {
        let auth_token = match auth_token_given {
            true => "(from AUTH_TOKEN)",
            false => embedded.credentials.auth_token.as_str(),
        };
        println!("trworker {command}: local TaskRouter engine at {url}");
        println!("  account SID    {}", embedded.credentials.account_sid);
        println!("  auth token     {auth_token}");
        if let Some(ws) = embedded.workspace_sid {
            println!("  workspace SID  {ws}");
        }
        println!("  data           {}", embedded.data_dir.display());
        if let Some(env_file) = &started.local_env {
            println!("  settings for the CLI and scripts: {}", env_file.display());
        }
        if args.manual_clock {
            println!("  manual clock: POST {url}/trworker/v1/Clock AdvanceSeconds=N moves time");
        }
    }
    stopped(started, text, &format!("trworker {command}")).await
}

/// Waits for a started server to stop and says so.
async fn stopped(started: Started, text: bool, name: &str) -> anyhow::Result<()> {
    started.stopped().await?;
    tracing::info!("stopped");
    if text {
        println!("{name}: stopped, state saved");
    }
    Ok(())
}

/// `trworker health`: GET `/readyz` (or `/healthz`), success on 200.
async fn run_health(args: HealthArgs) -> anyhow::Result<()> {
    let base = args.url.unwrap_or_else(|| format!("http://127.0.0.1:{}", args.port));
    let url = format!("{}/{}", base.trim_end_matches('/'), if args.live { "healthz" } else { "readyz" });
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .context("cannot start an HTTP client")?;
    let response = client.get(&url).send().await.with_context(|| format!("{url} did not answer"))?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    if !status.is_success() {
        let reason = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("reason").and_then(|r| r.as_str()).map(str::to_owned))
            .unwrap_or(body);
        anyhow::bail!("{url} answered {status}: {reason}");
    }
    println!("{url}: {status}");
    Ok(())
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM. The handlers are installed when this is called, not when the
/// future is first polled, so call it early: a signal that arrives before the server runs is not lost.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate()).ok();
        let interrupt = signal(SignalKind::interrupt()).ok();
        async move {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = wait(term) => {},
                _ = wait(interrupt) => {},
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;
    use crate::config;

    /// Every environment variable `serve` takes through clap, plus those read directly.
    fn read_by_serve() -> Vec<String> {
        let cli = Cli::command();
        let serve = cli.find_subcommand("serve").map(|c| c.get_arguments().cloned().collect::<Vec<_>>());
        let mut names: Vec<String> = serve
            .unwrap_or_default()
            .iter()
            .chain(cli.get_arguments())
            .filter_map(|arg| arg.get_env().map(|e| e.to_string_lossy().into_owned()))
            .collect();
        // Read with `env(...)` in `run_serve`, and by the log set-up.
        for direct in [vars::ACCOUNT_SID, vars::AUTH_TOKEN, vars::WORKSPACE_SID, vars::RUST_LOG] {
            names.push(direct.to_owned());
        }
        names.sort();
        names.dedup();
        names
    }

    #[test]
    fn server_variables_are_exactly_what_serve_reads() {
        let mut listed: Vec<String> = config::SERVER_VARIABLES.iter().map(|v| v.name.to_owned()).collect();
        listed.sort();
        assert_eq!(read_by_serve(), listed);
    }
}
