//! The bearer of the event bridge: a token in the WebSocket query or the envelope's body (eb §2).
//!
//! Accepted, each signed HS256 with the engine's auth token:
//! - an AccessToken with a TaskRouter grant naming the workspace and the worker, `sub` the engine's account
//!   and `iss` an `SK…` key or the account SID itself. A key of the engine's API Keys resource is checked
//!   with its secret; any other `SK…` issuer, and the account, with the auth token (how tokens were made
//!   before the engine had keys, and what the SDK test does). A grant whose role is `admin` may name no
//!   worker: that is the SDK's `Workspace` class (eb §2), which reads the workspace through the envelope
//!   and has no channel;
//! - a worker capability token (the original app's, `twilio::token::WorkerCapability`), whose `channel` is
//!   the worker.
//!
//! Times are the engine's clock, so a manual clock moves token expiry with everything else.

use axum::http::StatusCode;
use engine::{Prefix, Sid, Timestamp};
use twilio::token::{unverified_issuer, verify_access_token_signature, verify_worker_token, TokenError};

use crate::{ApiError, ApiResult, ServerState};

/// Who a valid token speaks for, and until when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Bearer {
    pub workspace_sid: Sid,
    pub worker_sid: Sid,
    /// Expiry, unix seconds.
    pub exp: u64,
    /// The grant's role is `supervisor` (Flex's, the SDK's `Supervisor`) or `admin`: it may also read the
    /// workspace's workers, queues and tasks and set another worker's activity and attributes (eb §4.3).
    pub supervisor: bool,
}

/// A valid token: a worker's, or a workspace-level one (role `admin`, no worker).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Grant {
    Worker(Bearer),
    /// The workspace the token is for.
    Workspace(Sid),
}

impl Grant {
    pub fn workspace_sid(&self) -> Sid {
        match self {
            Grant::Worker(b) => b.workspace_sid,
            Grant::Workspace(workspace_sid) => *workspace_sid,
        }
    }
}

impl Bearer {
    /// Milliseconds the token has left at `now` (the `token_lifetime` of `init`, eb §2).
    pub fn lifetime_ms(&self, now: Timestamp) -> i64 {
        i64::try_from(self.exp).unwrap_or(i64::MAX).saturating_mul(1000).saturating_sub(now.millis()).max(0)
    }
}

/// 401 with what was wrong with the token.
pub(super) fn unauthorized(why: impl std::fmt::Display) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, crate::error::AUTHENTICATE, format!("Invalid token: {why}"))
}

/// Checks `token` at `now` and requires that it names a worker: the event channel is a worker's.
pub(super) async fn verify(state: &ServerState, token: &str, now: Timestamp) -> ApiResult<Bearer> {
    match verify_grant(state, token, now).await? {
        Grant::Worker(bearer) => Ok(bearer),
        Grant::Workspace(_) => Err(unauthorized(
            "its TaskRouter grant names no worker_sid; a worker's event channel needs one (a workspace token, \
             role admin, may only use the envelope)",
        )),
    }
}

/// Checks `token` against the engine's credentials and API keys at `now`.
pub(super) async fn verify_grant(state: &ServerState, token: &str, now: Timestamp) -> ApiResult<Grant> {
    let credentials = state.credentials();
    let secs = u64::try_from(now.secs()).unwrap_or(0);
    let key = match unverified_issuer(token).and_then(|iss| Sid::parse_as(&iss, Prefix::ApiKey).ok()) {
        Some(key) => state.engine().api_key_secret(key).await,
        None => None,
    };
    let secret = key.as_deref().unwrap_or(&credentials.auth_token);
    let access = verify_access_token_signature(token, secret, secs);
    let grant = match access {
        Ok(claims) => {
            if claims.sub != credentials.account_sid {
                return Err(unauthorized(format!(
                    "it is for account {}, this engine serves {}",
                    claims.sub, credentials.account_sid
                )));
            }
            if !(claims.iss.starts_with("SK") || claims.iss == credentials.account_sid) {
                return Err(unauthorized(format!(
                    "its issuer {} is neither an API key (SK…) nor the account",
                    claims.iss
                )));
            }
            let grant = claims.grants.task_router.unwrap_or_default();
            let role = grant.role.as_deref();
            let Some(ws) = grant.workspace_sid else {
                return Err(unauthorized("its TaskRouter grant names no workspace_sid"));
            };
            let workspace_sid = parse(&ws, Prefix::Workspace)?;
            match grant.worker_sid {
                Some(wk) => Grant::Worker(Bearer {
                    workspace_sid,
                    worker_sid: parse(&wk, Prefix::Worker)?,
                    exp: claims.exp,
                    supervisor: matches!(role, Some("supervisor" | "admin")),
                }),
                None if role == Some("admin") => Grant::Workspace(workspace_sid),
                None => {
                    return Err(unauthorized(
                        "its TaskRouter grant names no worker_sid (only a grant with role admin may leave it out)",
                    ))
                }
            }
        }
        // Not an AccessToken's claims: perhaps a worker capability token.
        Err(TokenError::Malformed(_)) => {
            let claims = verify_worker_token(token, &credentials.auth_token, secs).map_err(unauthorized)?;
            if claims.account_sid != credentials.account_sid {
                return Err(unauthorized(format!(
                    "it is for account {}, this engine serves {}",
                    claims.account_sid, credentials.account_sid
                )));
            }
            Grant::Worker(Bearer {
                workspace_sid: parse(&claims.workspace_sid, Prefix::Workspace)?,
                worker_sid: parse(&claims.worker_sid, Prefix::Worker)?,
                exp: claims.exp,
                supervisor: false,
            })
        }
        Err(e) => return Err(unauthorized(e)),
    };
    Ok(grant)
}

fn parse(value: &str, prefix: Prefix) -> ApiResult<Sid> {
    Sid::parse_as(value, prefix).map_err(|e| unauthorized(format!("{value} is not a {prefix:?} SID ({e})")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Credentials, Engine};
    use std::sync::Arc;
    use twilio::token::{AccessToken, TaskRouterGrant, WorkerCapability};

    const AC: &str = "AC00000000000000000000000000000001";
    const WS: &str = "WS00000000000000000000000000000002";
    const WK: &str = "WK00000000000000000000000000000003";
    const NOW: u64 = 1_700_000_000;

    fn state() -> ServerState {
        let core = engine::Core::new(
            Sid::parse(AC).unwrap(),
            Box::new(engine::SequentialSids::new()),
            engine::CoreConfig::default(),
        );
        let clock = engine::ManualClock::new(Timestamp::from_secs(NOW as i64));
        let handle = engine::Handle::start(core, None, Arc::new(clock), Default::default());
        let credentials = Credentials { account_sid: AC.into(), auth_token: "secret".into() };
        ServerState::new(Engine::new(handle), credentials, "http://localhost")
    }

    fn access(account: &str, secret: &str, worker: Option<&str>) -> String {
        with_role(account, secret, worker, "worker")
    }

    fn with_role(account: &str, secret: &str, worker: Option<&str>, role: &str) -> String {
        let grant = TaskRouterGrant {
            workspace_sid: Some(WS.into()),
            worker_sid: worker.map(Into::into),
            role: Some(role.into()),
        };
        AccessToken::new(account, "SK00000000000000000000000000000009", secret)
            .task_router_grant(grant)
            .to_jwt(NOW)
            .unwrap()
    }

    #[tokio::test]
    async fn accepts_access_and_capability_tokens_of_the_account_only() {
        let state = state();
        let now = Timestamp::from_secs(NOW as i64);
        let ok = verify(&state, &access(AC, "secret", Some(WK)), now).await.unwrap();
        assert_eq!(ok.worker_sid.to_string(), WK);
        assert_eq!(ok.lifetime_ms(now), 3_600_000);
        let cap = WorkerCapability::new(AC, "secret", WS, WK).to_jwt(NOW).unwrap();
        assert_eq!(verify(&state, &cap, now).await.unwrap().workspace_sid.to_string(), WS);

        let other = "AC00000000000000000000000000000099";
        for bad in [
            access(AC, "other secret", Some(WK)),
            access(other, "secret", Some(WK)),
            access(AC, "secret", None),
            "not a token".to_owned(),
        ] {
            let e = verify(&state, &bad, now).await.unwrap_err();
            assert_eq!(e.status, StatusCode::UNAUTHORIZED, "{e}");
        }
        // A workspace (admin) token names no worker: good for the envelope, not for a worker's channel.
        let admin = with_role(AC, "secret", None, "admin");
        let grant = verify_grant(&state, &admin, now).await.unwrap();
        assert!(matches!(grant, Grant::Workspace(ws) if ws.to_string() == WS), "{grant:?}");
        let e = verify(&state, &admin, now).await.unwrap_err();
        assert!(e.message.contains("names no worker_sid"), "{e}");
        let supervisor = verify(&state, &with_role(AC, "secret", Some(WK), "supervisor"), now).await.unwrap();
        assert!(supervisor.supervisor);
        assert!(!ok.supervisor);

        let later = Timestamp::from_secs(NOW as i64 + 3601);
        let e = verify(&state, &access(AC, "secret", Some(WK)), later).await.unwrap_err();
        assert!(e.message.contains("expired"), "{e}");
    }
}
