//! The command line: one `clap` definition, so flags, environment variables and `--help` come from one place,
//! and the commands that run a server.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};

use crate::embedded::{self, Embedded, Seed};
use crate::ops;

/// A TaskRouter worker app with its own TaskRouter.
#[derive(Debug, Parser)]
#[command(name = "trworker", version, about, propagate_version = true)]
pub struct Cli {
    /// What to run; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run trworker (today: the embedded engine with the demo workspace; the worker page is on its way).
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
}

/// Where a server listens and keeps its state.
#[derive(Debug, Clone, Args)]
pub struct ListenArgs {
    /// Port to listen on (0 picks a free one).
    #[arg(long, env = "PORT", default_value_t = 8080)]
    pub port: u16,
    /// Address to bind (0.0.0.0 to accept connections from other machines).
    #[arg(long, env = "TRWORKER_BIND", default_value = "127.0.0.1")]
    pub bind: String,
    /// Directory for state, generated credentials and local.env.
    #[arg(long, env = "TRWORKER_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    /// The address clients use to reach this server, used in every `url` it returns and in signatures
    /// (default http://127.0.0.1:PORT).
    #[arg(long, env = "PUBLIC_URL")]
    pub public_url: Option<String>,
}

/// `trworker serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub listen: ListenArgs,
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
        Some(Command::Engine(args)) => run_engine(args, "engine").await,
        Some(Command::Workers(args)) => ops::workers::run(args).await,
        Some(Command::Tasks(args)) => ops::tasks::run(args).await,
        Some(Command::Conferences(args)) => ops::conferences::run(args).await,
        Some(Command::Call(args)) => ops::call::run(args).await,
        Some(Command::Setup(args)) => ops::setup::run(args).await,
        Some(Command::Token(args)) => ops::token::run(args).await,
        Some(Command::Serve(args)) => {
            run_engine(EngineArgs { listen: args.listen, seed: Seed::Demo, manual_clock: false }, "serve")
                .await
        }
        None => {
            let listen = ListenArgs::parse_from_env();
            run_engine(EngineArgs { listen, seed: Seed::Demo, manual_clock: false }, "serve").await
        }
    }
}

impl ListenArgs {
    /// The defaults and environment of `serve`, for `trworker` with no subcommand.
    fn parse_from_env() -> ListenArgs {
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            listen: ListenArgs,
        }
        Only::parse_from(["trworker"]).listen
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

async fn run_engine(args: EngineArgs, command: &str) -> anyhow::Result<()> {
    let listen = args.listen;
    let embedded = Embedded::open(embedded::Settings {
        data_dir: listen.data_dir.clone(),
        account_sid: env("ACCOUNT_SID"),
        auth_token: env("AUTH_TOKEN"),
        seed: args.seed,
        manual_clock: args.manual_clock,
    })
    .await
    .with_context(|| format!("cannot start the engine in {}", listen.data_dir.display()))?;

    let addr: SocketAddr = format!("{}:{}", listen.bind, listen.port)
        .parse()
        .or_else(|_| format!("[{}]:{}", listen.bind, listen.port).parse())
        .with_context(|| format!("TRWORKER_BIND/--bind '{}' is not an IP address", listen.bind))?;
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
        format!("cannot listen on {addr}: is another program using port {}?", listen.port)
    })?;
    let bound = listener.local_addr().context("cannot read the bound address")?;
    let public_url = listen
        .public_url
        .clone()
        .unwrap_or_else(|| embedded::default_public_url(bound))
        .trim_end_matches('/')
        .to_owned();

    let app = embedded.routes(&public_url).fallback(crate::api::not_found);
    let env_file = embedded.write_local_env(&public_url, &[])?;

    println!("trworker {command}: local TaskRouter engine at {public_url}");
    println!("  account SID    {}", embedded.credentials.account_sid);
    println!("  auth token     {}", embedded.credentials.auth_token);
    if let Some(ws) = embedded.workspace_sid {
        println!("  workspace SID  {ws}");
    }
    println!("  data           {}", embedded.data_dir.display());
    println!("  settings for the CLI and scripts: {}", env_file.display());
    if args.manual_clock {
        println!("  manual clock: POST {public_url}/trworker/v1/Clock AdvanceSeconds=N moves time");
    }
    if command == "serve" {
        println!("  (the worker page is not part of this build yet: this runs the engine only)");
    }

    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("the server failed")?;
    embedded.handle.stop().await.context("could not save the engine's state on shutdown")?;
    println!("trworker {command}: stopped, state saved");
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
