//! Log output through `tracing`: text for people (coloured on a terminal), or one JSON object per line for
//! log collectors (`--log-format json`, `TRWORKER_LOG_FORMAT=json`). The level comes from `RUST_LOG`
//! (default `info`).
//!
//! Secrets: no log line carries the auth token, the workers' password, a worker token or an Authorization
//! header. Requests are not logged with their URLs at `info`, and the code logs SIDs, event types and
//! error messages only.

use std::io::IsTerminal as _;

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines on stderr, coloured when stderr is a terminal (and `NO_COLOR` is unset).
    #[default]
    Text,
    /// One JSON object per line on stderr: `timestamp`, `level`, `target`, `message` and the event's fields.
    Json,
}

/// The filter used when `RUST_LOG` is unset or invalid.
pub const DEFAULT_FILTER: &str = "info,tower_http=warn";

/// Installs the global subscriber. Call once, before anything logs.
pub fn init(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
            .try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).try_init(),
    };
    if let Err(e) = result {
        eprintln!("trworker: logging is not available: {e}");
    }
}
