//! `trworker token IDENTITY`: a token for that worker, for trying Twilio's worker SDKs or scripts against a
//! workspace, real or local:
//!
//! - `--sdk v1` (the default): the worker capability token of taskrouter.js v1, signed with `AUTH_TOKEN`:
//!   what the original app's page used and what trworker's own page holds.
//! - `--sdk v2`: an AccessToken with a TaskRouter grant, as twilio-taskrouter 2.x/3.x takes it, signed with
//!   an API key (`--api-key SK…` and `--api-secret`, or `TWILIO_API_KEY` and `TWILIO_API_SECRET`), as
//!   Twilio's helper libraries make them. `--role supervisor` makes it the SDK's `Supervisor`'s.

use std::time::Duration;

use clap::Args;
use serde::Serialize;
use twilio::client::taskrouter::WorkerFilter;
use twilio::token::{AccessToken, TaskRouterGrant, WorkerCapability};

use super::{unix_now, Error, OpsArgs, Settings};

/// `trworker token`.
#[derive(Debug, Clone, Args)]
pub struct TokenArgs {
    /// The worker's friendly name (the identity it logs in with).
    pub identity: String,
    /// How long the token is valid: seconds, or a number with s, m or h (default 8h, one shift).
    #[arg(long, default_value = "8h", value_parser = parse_ttl)]
    pub ttl: Duration,
    /// Which worker SDK the token is for: v1 (taskrouter.js v1: a capability token signed with AUTH_TOKEN)
    /// or v2 (twilio-taskrouter 2.x/3.x: an AccessToken signed with an API key).
    #[arg(long, value_enum, default_value_t = Sdk::V1)]
    pub sdk: Sdk,
    /// The v2 token's role: worker, or supervisor (the SDK's `Supervisor`, which may also set other workers'
    /// activity and attributes and monitor their calls).
    #[arg(long, value_enum, default_value_t = Role::Worker)]
    pub role: Role,
    /// The API key (`SK…`) that signs a v2 token.
    #[arg(long, env = "TWILIO_API_KEY")]
    pub api_key: Option<String>,
    /// That API key's secret.
    #[arg(long, env = "TWILIO_API_SECRET", hide_env_values = true)]
    pub api_secret: Option<String>,
    #[command(flatten)]
    pub ops: OpsArgs,
}

/// The worker SDK generation a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Sdk {
    /// taskrouter.js v1: a worker capability token.
    V1,
    /// twilio-taskrouter 2.x and 3.x: an AccessToken with a TaskRouter grant.
    V2,
}

/// The role a v2 token's TaskRouter grant names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    Worker,
    Supervisor,
}

/// What `token --json` prints.
#[derive(Debug, Serialize)]
pub struct Issued {
    /// The identity asked for.
    pub identity: String,
    /// `WK…`.
    pub worker_sid: String,
    /// The JWT.
    pub token: String,
    /// Unix seconds.
    pub expires_at: u64,
}

/// `90`, `90s`, `15m`, `8h` -> a duration of at least one second and at most 24 hours (Twilio's limit).
pub fn parse_ttl(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&text[..i], c.to_ascii_lowercase()),
        _ => (text, 's'),
    };
    let scale = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        _ => return Err(format!("unknown unit in {text:?}: use s, m or h, e.g. 8h")),
    };
    let value: u64 =
        number.trim().parse().map_err(|_| format!("{text:?} is not a duration like 3600, 30m or 8h"))?;
    let seconds = value.saturating_mul(scale);
    if !(1..=24 * 3600).contains(&seconds) {
        return Err(format!("{text:?} is out of range: from 1s to 24h"));
    }
    Ok(Duration::from_secs(seconds))
}

/// Runs `trworker token`.
pub async fn run(args: TokenArgs) -> anyhow::Result<()> {
    if args.sdk == Sdk::V1 && args.role != Role::Worker {
        return Err(Error::Usage(
            "a supervisor's token is a v2 one (an AccessToken for twilio-taskrouter's Supervisor): add --sdk v2"
                .to_owned(),
        )
        .into());
    }
    let settings = Settings::resolve(&args.ops)?;
    let filter = WorkerFilter { friendly_name: Some(args.identity.clone()), ..Default::default() };
    let workers = settings.all("looking up the worker", settings.client.list_workers(&filter)).await?;
    let worker = workers
        .into_iter()
        .find(|w| w.friendly_name.as_deref() == Some(args.identity.as_str()))
        .ok_or_else(|| {
            Error::Usage(format!(
                "no worker named {:?} in workspace {}; `trworker workers` lists them",
                args.identity, settings.workspace_sid
            ))
        })?;
    let now = u64::try_from(unix_now()).unwrap_or(0);
    let config = settings.client.config();
    let token = match args.sdk {
        Sdk::V1 => WorkerCapability::new(
            &config.account_sid,
            &settings.auth_token,
            &settings.workspace_sid,
            &worker.sid,
        )
        .ttl(args.ttl)
        .allow_worker_page()
        .to_jwt(now),
        Sdk::V2 => {
            let (Some(key), Some(secret)) = (&args.api_key, &args.api_secret) else {
                return Err(Error::Usage(
                    "a v2 token is signed with an API key: pass --api-key SK… and --api-secret (or set \
                     TWILIO_API_KEY and TWILIO_API_SECRET); create one in the Twilio Console, or with \
                     POST /2010-04-01/Accounts/{AccountSid}/Keys.json on a trworker engine"
                        .to_owned(),
                )
                .into());
            };
            let grant = TaskRouterGrant {
                workspace_sid: Some(settings.workspace_sid.clone()),
                worker_sid: Some(worker.sid.clone()),
                role: Some(match args.role {
                    Role::Worker => "worker".to_owned(),
                    Role::Supervisor => "supervisor".to_owned(),
                }),
            };
            AccessToken::new(&config.account_sid, key, secret)
                .identity(&args.identity)
                .ttl(args.ttl)
                .task_router_grant(grant)
                .to_jwt(now)
        }
    }
    .map_err(|e| Error::Usage(format!("cannot sign the token: {e}")))?;
    let issued = Issued {
        identity: args.identity,
        worker_sid: worker.sid,
        token,
        expires_at: now.saturating_add(args.ttl.as_secs()),
    };
    if settings.out.json {
        return settings.out.json(&issued);
    }
    println!("{}", issued.token);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_take_units_and_stay_in_range() {
        assert_eq!(parse_ttl("3600"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_ttl("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_ttl("8H"), Ok(Duration::from_secs(8 * 3600)));
        assert!(parse_ttl("0").is_err());
        assert!(parse_ttl("25h").is_err());
        assert!(parse_ttl("1d").is_err());
        assert!(parse_ttl("soon").is_err());
        assert!(parse_ttl("é").is_err());
    }
}
