//! The ops command line (DESIGN §5): the seed's utility programs, simulated calls, workspace setup and worker
//! tokens, as subcommands of `trworker`.
//!
//! Every command talks to TaskRouter only through [`twilio::Client`], never to the engine directly, so the
//! same command works against real Twilio and against a local `trworker serve`/`trworker engine`.
//!
//! # Layout
//!
//! - this file: [`OpsArgs`] (the flags every command shares), [`Settings::resolve`] (the one place where
//!   the environment and `DIR/local.env` become a client) and [`Error`] (one line per failure, saying what
//!   to do).
//! - [`output`]: aligned tables, ANSI colours (only on a terminal, never with `NO_COLOR`), `--json`, and the
//!   progress line of bulk operations.
//! - one module per command group: [`workers`], [`tasks`], [`conferences`], [`call`], [`setup`], [`token`].

pub mod call;
pub mod conferences;
pub mod output;
pub mod setup;
pub mod tasks;
pub mod token;
pub mod workers;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use serde::Serialize;
use twilio::client::Paged;

use crate::config;

/// The flags every ops command shares: where to find TaskRouter and how to print. They are `global`, so they
/// may come before or after a sub-subcommand (`trworker tasks --json list` and `trworker tasks list --json`).
#[derive(Debug, Clone, Args)]
pub struct OpsArgs {
    /// Print JSON (stable field names) instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    /// Data directory of a local server, whose `local.env` supplies whatever the environment does not.
    #[arg(long, env = "TRWORKER_DATA_DIR", default_value = "data", global = true)]
    pub data_dir: PathBuf,
    /// Account SID (`AC…`) of the Twilio to talk to, real or local.
    #[arg(long, env = "ACCOUNT_SID", global = true)]
    pub account_sid: Option<String>,
    /// Auth token of that account.
    #[arg(long, env = "AUTH_TOKEN", hide_env_values = true, global = true)]
    pub auth_token: Option<String>,
    /// The TaskRouter workspace (`WS…`).
    #[arg(long, env = "WORKSPACE_SID", global = true)]
    pub workspace_sid: Option<String>,
    /// TaskRouter base URL (default Twilio's, or the local server's from `local.env`).
    #[arg(long, env = "TWILIO_TASKROUTER_URL", global = true)]
    pub taskrouter_url: Option<String>,
    /// API 2010 base URL for conferences (default Twilio's, or the local server's from `local.env`).
    #[arg(long, env = "TWILIO_API_URL", global = true)]
    pub api_url: Option<String>,
}

/// Why an ops command failed. Each message is one line: what failed and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A required setting is in neither the environment nor `local.env`.
    #[error(
        "{name} is not set: set it in the environment (or .env), or start `trworker serve` so that {} \
         exists (--data-dir or TRWORKER_DATA_DIR to look in another directory)",
        env_file.display()
    )]
    Missing {
        /// The variable.
        name: &'static str,
        /// The `local.env` that was looked for.
        env_file: PathBuf,
    },
    /// `local.env` exists but cannot be read.
    #[error("cannot read the local server's settings: {0}")]
    Config(#[from] config::Error),
    /// The server did not answer.
    #[error("cannot reach {url}: {reason}; is the server running (`trworker serve`), and is the URL right?")]
    Unreachable {
        /// The base URL that was tried.
        url: String,
        /// What the network said.
        reason: String,
    },
    /// HTTP 401.
    #[error("{url} refused the credentials (HTTP 401): check ACCOUNT_SID/AUTH_TOKEN")]
    Unauthorized {
        /// The base URL.
        url: String,
    },
    /// HTTP 404 for something the user named.
    #[error("{what} not found ({message}); check the SID{hint}")]
    NotFound {
        /// What was looked for, e.g. "task WT…".
        what: String,
        /// The server's message.
        message: String,
        /// A suggestion of the command that lists candidates.
        hint: String,
    },
    /// Any other failure of a request.
    #[error("{what}: {cause}")]
    Request {
        /// What was being done.
        what: String,
        /// The client's error, whose message already names the status and code (kept out of the error
        /// chain, so `{:#}` prints it once).
        cause: twilio::Error,
    },
    /// The command was used in a way that cannot work; the message says what to do instead.
    #[error("{0}")]
    Usage(String),
}

/// A resolved configuration: the client and where its settings came from.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The client for the workspace.
    pub client: twilio::Client,
    /// `AUTH_TOKEN`, needed to sign worker tokens.
    pub auth_token: String,
    /// `WORKSPACE_SID`.
    pub workspace_sid: String,
    /// How to print.
    pub out: output::Output,
}

impl Settings {
    /// Builds the client from `args`: each of `ACCOUNT_SID`, `AUTH_TOKEN`, `WORKSPACE_SID`,
    /// `TWILIO_TASKROUTER_URL` and `TWILIO_API_URL` from the environment (or its flag), else from
    /// `DATA_DIR/local.env` of a running local server.
    ///
    /// When the environment names a complete Twilio account (account, token and workspace, DESIGN §6), the
    /// base URLs default to Twilio's instead of the local server's, so a stale `local.env` never redirects
    /// a Twilio configuration.
    pub fn resolve(args: &OpsArgs) -> Result<Settings, Error> {
        let env_file = args.data_dir.join("local.env");
        let local = config::read_env_file(&env_file)?;
        Settings::from_sources(args, &env_file, &local)
    }

    fn from_sources(
        args: &OpsArgs,
        env_file: &Path,
        local: &BTreeMap<String, String>,
    ) -> Result<Settings, Error> {
        let given =
            |v: &Option<String>| v.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned);
        let twilio_mode =
            [&args.account_sid, &args.auth_token, &args.workspace_sid].iter().all(|v| given(v).is_some());
        let pick = |value: &Option<String>, name: &'static str| -> Option<String> {
            given(value).or_else(|| local.get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()))
        };
        let required = |value: &Option<String>, name: &'static str| {
            pick(value, name).ok_or_else(|| Error::Missing { name, env_file: env_file.to_owned() })
        };
        let account_sid = required(&args.account_sid, "ACCOUNT_SID")?;
        let auth_token = required(&args.auth_token, "AUTH_TOKEN")?;
        let workspace_sid = required(&args.workspace_sid, "WORKSPACE_SID")?;
        let url = |value: &Option<String>, name: &'static str, default: &str| {
            let value = if twilio_mode { given(value) } else { pick(value, name) };
            value.unwrap_or_else(|| default.to_owned())
        };
        let taskrouter_url =
            url(&args.taskrouter_url, "TWILIO_TASKROUTER_URL", twilio::client::DEFAULT_TASKROUTER_URL);
        let api_url = url(&args.api_url, "TWILIO_API_URL", twilio::client::DEFAULT_API_URL);
        let mut config = twilio::Config::new(account_sid, auth_token.clone())
            .workspace(workspace_sid.clone())
            .base_urls(taskrouter_url, api_url);
        // A person is waiting: a few quick retries, not the library's patient defaults.
        config.max_retries = 2;
        config.retry_base_delay = Duration::from_millis(200);
        config.max_retry_delay = Duration::from_secs(5);
        config.timeout = Duration::from_secs(20);
        let client = twilio::Client::new(config).map_err(|e| Error::Usage(e.to_string()))?;
        Ok(Settings { client, auth_token, workspace_sid, out: output::Output::new(args.json) })
    }

    /// Every item of `listing`, read page by page; `what` says what was listed ("listing workers"), as the
    /// start of the error message.
    pub async fn all<T>(&self, what: impl Into<String>, listing: Paged<T>) -> Result<Vec<T>, Error> {
        listing.all().await.map_err(|e| self.fail(what, e))
    }

    /// Prints the workspace's `rows` of `kind` ("tasks", "workers") as `{"workspace_sid", kind: rows}` with
    /// `--json`, or says that there are none. `true` when that said it all, `false` when the caller prints
    /// its table.
    pub(crate) fn printed_json_or_none<T: Serialize>(&self, kind: &str, rows: &[T]) -> anyhow::Result<bool> {
        if self.out.json {
            self.out.json(&serde_json::json!({ "workspace_sid": self.workspace_sid, kind: rows }))?;
            return Ok(true);
        }
        if rows.is_empty() {
            println!("No {kind} in workspace {}.", self.workspace_sid);
            return Ok(true);
        }
        Ok(false)
    }

    /// Turns a client error into an ops error; `what` says what was being done ("listing tasks") or what
    /// was asked for ("task WT…"), as the start of the message.
    pub fn fail(&self, what: impl Into<String>, error: twilio::Error) -> Error {
        self.fail_on(what, error, "")
    }

    /// Like [`Settings::fail`], with a hint appended to a not-found message (e.g. the listing command).
    pub fn fail_on(&self, what: impl Into<String>, error: twilio::Error, hint: &str) -> Error {
        let what = what.into();
        let config = self.client.config();
        let base = |url: &str| {
            if url.starts_with(config.api_url.trim_end_matches('/')) && url.contains("/2010-04-01/") {
                config.api_url.clone()
            } else {
                config.taskrouter_url.clone()
            }
        };
        match error {
            twilio::Error::Transport { url, source, .. } => {
                let reason = if source.is_connect() {
                    "connection refused or no route".to_owned()
                } else {
                    source.to_string()
                };
                Error::Unreachable { url: base(&url), reason }
            }
            twilio::Error::Timeout { url, after, .. } => {
                Error::Unreachable { url: base(&url), reason: format!("no answer within {after:?}") }
            }
            twilio::Error::Api { status: 401, .. } => {
                Error::Unauthorized { url: config.taskrouter_url.clone() }
            }
            twilio::Error::Api { status: 404, message, .. } => {
                Error::NotFound { what, message, hint: hint.to_owned() }
            }
            cause => Error::Request { what, cause },
        }
    }
}

/// Unix seconds now, from the system clock.
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Parses an ISO-8601 (RFC 3339) timestamp as TaskRouter sends it into unix seconds.
pub(crate) fn parse_iso(value: &str) -> Option<i64> {
    time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

/// `3725` -> `1h 02m 05s`; used for ages and times in an activity.
pub(crate) fn human_duration(seconds: u64) -> String {
    let (h, m, s) = (seconds / 3600, (seconds / 60) % 60, seconds % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m {s:02}s"),
        _ => format!("{h}h {m:02}m {s:02}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> OpsArgs {
        OpsArgs {
            json: false,
            data_dir: PathBuf::from("data"),
            account_sid: None,
            auth_token: None,
            workspace_sid: None,
            taskrouter_url: None,
            api_url: None,
        }
    }

    fn local() -> BTreeMap<String, String> {
        [
            ("ACCOUNT_SID", "AClocal"),
            ("AUTH_TOKEN", "localtoken"),
            ("WORKSPACE_SID", "WSlocal"),
            ("TWILIO_TASKROUTER_URL", "http://127.0.0.1:9"),
            ("TWILIO_API_URL", "http://127.0.0.1:9"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    #[test]
    fn local_env_fills_what_the_environment_lacks() {
        let mut a = args();
        a.auth_token = Some("fromenv".into());
        let s = Settings::from_sources(&a, Path::new("data/local.env"), &local()).unwrap();
        assert_eq!(s.auth_token, "fromenv");
        assert_eq!(s.workspace_sid, "WSlocal");
        assert_eq!(s.client.config().taskrouter_url, "http://127.0.0.1:9");
    }

    #[test]
    fn a_complete_twilio_environment_ignores_local_urls() {
        let mut a = args();
        a.account_sid = Some("AC1".into());
        a.auth_token = Some("t".into());
        a.workspace_sid = Some("WS1".into());
        let s = Settings::from_sources(&a, Path::new("data/local.env"), &local()).unwrap();
        assert_eq!(s.client.config().taskrouter_url, twilio::client::DEFAULT_TASKROUTER_URL);
        assert_eq!(s.client.config().api_url, twilio::client::DEFAULT_API_URL);
    }

    #[test]
    fn a_missing_variable_names_itself_and_both_remedies() {
        let mut local = local();
        local.insert("WORKSPACE_SID".into(), String::new());
        let err = Settings::from_sources(&args(), Path::new("x/local.env"), &local).unwrap_err().to_string();
        assert!(err.starts_with("WORKSPACE_SID is not set"), "{err}");
        assert!(err.contains("x/local.env") && err.contains("environment"), "{err}");
    }

    #[test]
    fn durations_read_like_a_clock() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(65), "1m 05s");
        assert_eq!(human_duration(3725), "1h 02m 05s");
        assert_eq!(parse_iso("2023-11-14T22:13:20Z"), Some(1_700_000_000));
        assert_eq!(parse_iso("yesterday"), None);
    }
}
