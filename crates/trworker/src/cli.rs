//! The command line: one `clap` definition, so flags, environment variables and `--help` come from one place.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

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
    /// Run the local TaskRouter engine alone: Twilio's REST API for any Twilio program on this machine.
    Engine(EngineArgs),
}

/// Where and how the engine listens.
#[derive(Debug, Clone, Args)]
pub struct EngineArgs {
    /// Port to listen on (0 picks a free one).
    #[arg(long, env = "PORT", default_value_t = 8080)]
    pub port: u16,
    /// Address to bind.
    #[arg(long, env = "TRWORKER_BIND", default_value = "127.0.0.1")]
    pub bind: String,
    /// Directory for the engine's state, generated credentials and local.env.
    #[arg(long, env = "TRWORKER_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    /// What to create in a new, empty data directory.
    #[arg(long, value_enum, default_value_t = Seed::Demo)]
    pub seed: Seed,
    /// The address clients use to reach this engine, used in every `url` and link it returns
    /// (default http://127.0.0.1:PORT).
    #[arg(long, env = "PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Let time move only through `POST /trworker/v1/Clock` (for tests of timeouts that must not sleep).
    #[arg(long)]
    pub manual_clock: bool,
}

/// The initial content of a new engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Seed {
    /// The demo contact centre: workspace "writers", a support and a sales queue, four workers.
    Demo,
    /// Nothing: create workspaces through the API.
    None,
}
