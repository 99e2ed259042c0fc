//! Sign-in and bearer credentials.
//!
//! - The password is compared in constant time over SHA-256 digests, so neither its content nor its length
//!   leaks through timing. It is checked before the identity is looked up: a wrong password costs no REST
//!   call, and a wrong password and an unknown identity get the same answer.
//! - The worker token is the `twilio::token` worker capability JWT (what TaskRouter.js takes) and is also
//!   the bearer credential of the app's own API and WebSocket, verified with the same module: signature,
//!   expiry, issuer, and this app's account and workspace.
//! - Sign-in attempts are limited per client address and by an overall budget of failures, on the injected
//!   clock ([`Limiter`] says why there is no per-identity limit).
//! - Supervisors (`SUPERVISOR_PASSWORD`) get a token of another kind ([`issue_supervisor`]): signed with a
//!   key derived from the auth token for this use only, so it never verifies as a worker token and a worker
//!   token never verifies as a supervisor's; a worker's token on a supervisor route is a 403.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use engine::Timestamp;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{AppError, AppState};
pub use twilio_server::limit::RateLimit;
use twilio_server::limit::{client_key, Bucket, KeyedLimiter};

/// Whether `given` is the configured password, in time that depends on neither.
pub(crate) fn password_matches(configured: &str, given: &str) -> bool {
    let a = Sha256::digest(configured.as_bytes());
    let b = Sha256::digest(given.as_bytes());
    bool::from(a.ct_eq(&b)) && !configured.is_empty()
}

/// A verified bearer token: the worker it speaks for.
#[derive(Debug, Clone)]
pub struct Bearer {
    /// The worker (`WK…`).
    pub worker_sid: String,
    /// Expiry, unix seconds.
    pub exp: u64,
}

/// A freshly issued worker token.
pub(crate) struct Issued {
    pub(crate) token: String,
    pub(crate) exp: u64,
}

/// Issues the worker capability token for `worker_sid`, with the original app's policies: fetching the
/// worker's sub-resources, activity updates and reservation updates.
pub(crate) fn issue(state: &AppState, worker_sid: &str) -> Result<Issued, AppError> {
    let config = state.config();
    let now = state.now_secs();
    let capability = config
        .worker_capability(worker_sid)
        .ttl(config.token_ttl)
        // The page's SDK also reads the worker's channels and statistics.
        .allow_worker_page();
    let claims =
        capability.claims(now).map_err(|e| AppError::Config(format!("could not issue a token: {e}")))?;
    let token =
        capability.to_jwt(now).map_err(|e| AppError::Config(format!("could not issue a token: {e}")))?;
    state.note_signed_in(worker_sid, claims.exp);
    Ok(Issued { token, exp: claims.exp })
}

/// Verifies `token` as a worker token of this app's account and workspace.
pub(crate) fn verify(state: &AppState, token: &str) -> Result<Bearer, AppError> {
    let config = state.config();
    let claims = twilio::token::verify_worker_token(token, &config.auth_token, state.now_secs())
        .map_err(|e| AppError::Unauthorized(format!("Sign in again: {e}")))?;
    if claims.account_sid != config.account_sid || claims.workspace_sid != config.workspace_sid {
        return Err(AppError::Unauthorized(
            "Sign in again: the token is for another account or workspace.".to_owned(),
        ));
    }
    if !claims.worker_sid.starts_with("WK") {
        return Err(AppError::Unauthorized("Sign in again: the token is not a worker token.".to_owned()));
    }
    state.note_signed_in(&claims.worker_sid, claims.exp);
    Ok(Bearer { worker_sid: claims.worker_sid, exp: claims.exp })
}

/// The token of an `Authorization: Bearer …` header, if there is one.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

impl FromRequestParts<AppState> for Bearer {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = bearer_token(&parts.headers).ok_or_else(|| {
            AppError::Unauthorized("Sign in first: this needs an Authorization: Bearer token.".to_owned())
        })?;
        verify(state, token)
    }
}

/// A verified supervisor token: who signed in.
#[derive(Debug, Clone)]
pub struct Supervisor {
    /// The name the supervisor gave at sign-in ("a supervisor" when none): what a worker is told.
    pub name: String,
    /// Expiry, unix seconds.
    pub exp: u64,
}

/// What a supervisor token says. `kind` is always [`SUPERVISOR_KIND`].
#[derive(Debug, Serialize, Deserialize)]
struct SupervisorClaims {
    kind: String,
    account_sid: String,
    workspace_sid: String,
    name: String,
    exp: u64,
}

/// The prefix of every supervisor token, and the `kind` of its claims.
const SUPERVISOR_KIND: &str = "sv1";

/// The key supervisor tokens are signed with: derived from the auth token for this one use, so that no
/// token signed with the auth token itself (a worker's) can pass for a supervisor's, and the reverse.
fn supervisor_key(auth_token: &str) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(b"trworker supervisor token\0");
    hash.update(auth_token.as_bytes());
    hash.finalize().into()
}

fn supervisor_mac(auth_token: &str) -> Result<Hmac<Sha256>, AppError> {
    Hmac::<Sha256>::new_from_slice(&supervisor_key(auth_token))
        .map_err(|e| AppError::Config(format!("could not sign a supervisor token: {e}")))
}

/// Issues a supervisor token for `name`, valid as long as a worker token (`token_ttl`):
/// `sv1.{claims}.{signature}`, both base64url.
pub(crate) fn issue_supervisor(state: &AppState, name: &str) -> Result<Issued, AppError> {
    let config = state.config();
    let exp = state.now_secs().saturating_add(config.token_ttl.as_secs());
    let claims = SupervisorClaims {
        kind: SUPERVISOR_KIND.to_owned(),
        account_sid: config.account_sid.clone(),
        workspace_sid: config.workspace_sid.clone(),
        name: name.to_owned(),
        exp,
    };
    let body = serde_json::to_vec(&claims)
        .map_err(|e| AppError::Config(format!("could not issue a supervisor token: {e}")))?;
    let signed = format!("{SUPERVISOR_KIND}.{}", URL_SAFE_NO_PAD.encode(body));
    let mut mac = supervisor_mac(&config.auth_token)?;
    mac.update(signed.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    Ok(Issued { token: format!("{signed}.{signature}"), exp })
}

/// Verifies `token` as a supervisor token of this app's account and workspace. A valid worker token is a
/// 403 (signed in, but not as a supervisor); anything else that does not verify is a 401.
pub(crate) fn verify_supervisor(state: &AppState, token: &str) -> Result<Supervisor, AppError> {
    let config = state.config();
    let now = state.now_secs();
    let again = |why: &str| AppError::Unauthorized(format!("Sign in again as a supervisor: {why}."));
    let Some((signed, signature)) = token.rsplit_once('.') else {
        return Err(worker_or(state, token, again("the token is not a supervisor token")));
    };
    let Some(body) = signed.strip_prefix("sv1.") else {
        return Err(worker_or(state, token, again("the token is not a supervisor token")));
    };
    let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| again("the token is malformed"))?;
    let mut mac = supervisor_mac(&config.auth_token)?;
    mac.update(signed.as_bytes());
    mac.verify_slice(&signature).map_err(|_| again("the token's signature is not this server's"))?;
    let body = URL_SAFE_NO_PAD.decode(body).map_err(|_| again("the token is malformed"))?;
    let claims: SupervisorClaims =
        serde_json::from_slice(&body).map_err(|_| again("the token is malformed"))?;
    if claims.kind != SUPERVISOR_KIND {
        return Err(again("the token is not a supervisor token"));
    }
    if claims.account_sid != config.account_sid || claims.workspace_sid != config.workspace_sid {
        return Err(again("the token is for another account or workspace"));
    }
    if claims.exp <= now {
        return Err(again("the token has expired"));
    }
    Ok(Supervisor { name: claims.name, exp: claims.exp })
}

/// 403 when `token` is a valid worker token of this app (a worker on a supervisor route), else `otherwise`.
/// Checked without noting the worker as signed in: a supervisor route must not open its event channel.
fn worker_or(state: &AppState, token: &str, otherwise: AppError) -> AppError {
    let config = state.config();
    match twilio::token::verify_worker_token(token, &config.auth_token, state.now_secs()) {
        Ok(claims) if claims.account_sid == config.account_sid => AppError::Forbidden(
            "This needs a supervisor's sign-in: a worker's token cannot use the supervisor page.".to_owned(),
        ),
        _ => otherwise,
    }
}

impl FromRequestParts<AppState> for Supervisor {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = bearer_token(&parts.headers).ok_or_else(|| {
            AppError::Unauthorized(
                "Sign in as a supervisor first: this needs an Authorization: Bearer token.".to_owned(),
            )
        })?;
        verify_supervisor(state, token)
    }
}

/// The client's address: the connection's peer, or the last `X-Forwarded-For` entry when configured to
/// trust a proxy. `None` when the server was started without connect info.
pub(crate) fn client_ip(
    parts_headers: &HeaderMap,
    peer: Option<&ConnectInfo<SocketAddr>>,
    trust_forwarded: bool,
) -> Option<IpAddr> {
    if trust_forwarded {
        let forwarded = parts_headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|ip| ip.trim().parse::<IpAddr>().ok())
            .next_back();
        if forwarded.is_some() {
            return forwarded;
        }
    }
    peer.map(|ConnectInfo(addr)| addr.ip())
}

/// The client address of a request, as [`client_ip`] decides it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientIp(pub(crate) Option<IpAddr>);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>();
        Ok(ClientIp(client_ip(&parts.headers, peer, state.config().trust_forwarded_for)))
    }
}

/// Addresses remembered as having signed in, at most this many (the oldest forgotten first).
const MAX_KNOWN_GOOD: usize = 10_000;
/// How long an address that signed in stays exempt from the overall budget.
const KNOWN_GOOD_FOR_SECS: i64 = 12 * 3600;
/// Per-address buckets kept at most; see [`KeyedLimiter`] for what happens beyond.
const MAX_ADDRESSES: usize = 10_000;

/// The sign-in limits, built so that an attacker cannot turn them against a worker:
///
/// - **Per client address**, every attempt counts (right password or not): one address cannot guess fast.
///   IPv6 clients are counted per /64 ([`client_key`]).
/// - **An overall budget of failed attempts**, across all addresses: many addresses together cannot guess
///   fast either. When it is spent, attempts are refused, except from addresses that signed in
///   successfully in the last 12 hours: a distributed attack keeps out newcomers, never the office whose
///   workers are already signing in.
/// - **Nothing per identity.** Every worker signs in with the same password (`TOKEN_PASSWORD`), so an
///   identity is not a secret to protect, and a per-identity lockout would let anyone lock a named worker
///   out by hammering their name.
///
/// Memory is bounded: buckets are keyed by address (16 bytes), never by what a client typed, and both maps
/// have a capacity.
pub(crate) struct Limiter {
    per_address: KeyedLimiter<IpAddr>,
    overall: RateLimit,
    /// The overall budget of failed attempts. A std mutex: held for an arithmetic update only.
    failures: Mutex<Bucket>,
    /// Addresses with a recent successful sign-in, and when.
    known_good: Mutex<HashMap<IpAddr, Timestamp>>,
}

impl Limiter {
    pub(crate) fn new(per_address: RateLimit, overall: RateLimit, now: Timestamp) -> Limiter {
        Limiter {
            per_address: KeyedLimiter::new(per_address, MAX_ADDRESSES),
            overall,
            failures: Mutex::new(Bucket::full(overall, now)),
            known_good: Mutex::new(HashMap::new()),
        }
    }

    /// Admits one attempt from `ip`, or says how many seconds to wait.
    pub(crate) fn admit(&self, now: Timestamp, ip: Option<IpAddr>) -> Result<(), AppError> {
        let key = ip.map(client_key);
        if let Some(key) = &key {
            self.per_address.take(key, now).map_err(|retry_after| AppError::RateLimited { retry_after })?;
        }
        let budget = self.failures.lock().map(|b| b.refilled(self.overall, now)).ok();
        match budget {
            Some(budget) if !budget.has_one() && !key.is_some_and(|k| self.is_known_good(k, now)) => {
                Err(AppError::RateLimited { retry_after: budget.wait_secs(self.overall) })
            }
            _ => Ok(()),
        }
    }

    /// Spends one token of the overall budget for a failed attempt.
    pub(crate) fn failed(&self, now: Timestamp) {
        if let Ok(mut budget) = self.failures.lock() {
            *budget = budget.refilled(self.overall, now);
            budget.take();
        }
    }

    /// Remembers that `ip` signed in.
    pub(crate) fn succeeded(&self, now: Timestamp, ip: Option<IpAddr>) {
        let (Some(ip), Ok(mut known)) = (ip, self.known_good.lock()) else { return };
        let key = client_key(ip);
        if !known.contains_key(&key) && known.len() >= MAX_KNOWN_GOOD {
            known.retain(|_, at| now.millis_since(*at) < KNOWN_GOOD_FOR_SECS * 1000);
            if known.len() >= MAX_KNOWN_GOOD {
                if let Some(oldest) = known.iter().min_by_key(|(_, at)| **at).map(|(k, _)| *k) {
                    known.remove(&oldest);
                }
            }
        }
        known.insert(key, now);
    }

    fn is_known_good(&self, key: IpAddr, now: Timestamp) -> bool {
        self.known_good.lock().is_ok_and(|known| {
            known.get(&key).is_some_and(|at| now.millis_since(*at) < KNOWN_GOOD_FOR_SECS * 1000)
        })
    }

    /// Buckets and remembered addresses held now: what the capacities bound.
    #[cfg(test)]
    pub(crate) fn entries(&self) -> usize {
        self.per_address.len() + self.known_good.lock().map(|k| k.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn passwords_compare_by_content_only() {
        assert!(password_matches("s3cret", "s3cret"));
        assert!(!password_matches("s3cret", "s3cre"));
        assert!(!password_matches("s3cret", "S3cret"));
        assert!(!password_matches("", ""), "an empty configured password never matches");
    }

    #[test]
    fn one_address_is_limited_and_others_are_not() {
        let limit = RateLimit::new(2, Duration::from_secs(10));
        let limiter =
            Limiter::new(limit, RateLimit::new(100, Duration::from_secs(1)), Timestamp::from_secs(0));
        let t0 = Timestamp::from_secs(1000);
        let (a, b) = (Some(IpAddr::from([192, 0, 2, 1])), Some(IpAddr::from([192, 0, 2, 2])));
        assert!(limiter.admit(t0, a).is_ok());
        assert!(limiter.admit(t0, a).is_ok());
        match limiter.admit(t0, a) {
            Err(AppError::RateLimited { retry_after }) => assert_eq!(retry_after, 10),
            other => panic!("expected a rate limit, got {other:?}"),
        }
        assert!(limiter.admit(t0, b).is_ok(), "another address is not held up");
        assert!(limiter.admit(t0.plus_secs(10), a).is_ok());
    }

    #[test]
    fn a_spent_overall_budget_keeps_out_newcomers_but_not_known_addresses() {
        let per_address = RateLimit::new(1000, Duration::from_secs(1));
        let overall = RateLimit::new(3, Duration::from_secs(5));
        let t0 = Timestamp::from_secs(1000);
        let limiter = Limiter::new(per_address, overall, t0);
        let office = Some(IpAddr::from([198, 51, 100, 1]));
        limiter.succeeded(t0, office);
        for n in 0..3u8 {
            assert!(limiter.admit(t0, Some(IpAddr::from([203, 0, 113, n]))).is_ok());
            limiter.failed(t0);
        }
        let newcomer = Some(IpAddr::from([203, 0, 113, 200]));
        assert!(matches!(limiter.admit(t0, newcomer), Err(AppError::RateLimited { retry_after: 5 })));
        assert!(limiter.admit(t0, office).is_ok(), "an address that signed in recently still may");
        assert!(limiter.admit(t0.plus_secs(5), newcomer).is_ok(), "the budget refills");
        let much_later = t0.plus_secs(KNOWN_GOOD_FOR_SECS + 1);
        for _ in 0..4 {
            limiter.failed(much_later);
        }
        assert!(limiter.admit(much_later, office).is_err(), "known addresses are forgotten after a while");
    }

    #[test]
    fn remembered_addresses_are_bounded() {
        let limit = RateLimit::new(5, Duration::from_secs(1));
        let t0 = Timestamp::from_secs(1000);
        let limiter = Limiter::new(limit, limit, t0);
        for n in 0..(MAX_KNOWN_GOOD as u32 + MAX_ADDRESSES as u32 + 500) {
            let ip = Some(IpAddr::from(n.to_be_bytes()));
            let _ = limiter.admit(t0, ip);
            limiter.succeeded(t0, ip);
        }
        assert!(limiter.entries() <= MAX_KNOWN_GOOD + MAX_ADDRESSES, "{}", limiter.entries());
    }

    fn state() -> (AppState, engine::ManualClock) {
        let config = crate::app::test_config();
        let client = twilio::Client::new(config.client_config()).unwrap_or_else(|e| panic!("{e}"));
        let clock = engine::ManualClock::new(Timestamp::from_secs(1_800_000_000));
        (AppState::with_client(config, client, std::sync::Arc::new(clock.clone())), clock)
    }

    #[test]
    fn a_supervisor_token_verifies_and_nothing_else_passes_for_one() {
        let (state, clock) = state();
        let issued = issue_supervisor(&state, "Grace").unwrap_or_else(|e| panic!("{e}"));
        let supervisor = verify_supervisor(&state, &issued.token).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((supervisor.name.as_str(), supervisor.exp), ("Grace", issued.exp));
        assert!(
            matches!(verify(&state, &issued.token), Err(AppError::Unauthorized(_))),
            "a supervisor token is no worker token"
        );
        let worker = issue(&state, "WK0123456789abcdef0123456789abcdef").unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(verify_supervisor(&state, &worker.token), Err(AppError::Forbidden(_))));
        let (signed, _) = issued.token.rsplit_once('.').unwrap_or_default();
        let forged = format!("{signed}.{}", URL_SAFE_NO_PAD.encode([0u8; 32]));
        assert!(matches!(verify_supervisor(&state, &forged), Err(AppError::Unauthorized(_))));
        let claims = r#"{"kind":"sv1","account_sid":"AC0123456789abcdef0123456789abcdef","workspace_sid":"WS0123456789abcdef0123456789abcdef","name":"","exp":99999999999}"#;
        let unsigned = format!("sv1.{}.", URL_SAFE_NO_PAD.encode(claims));
        assert!(matches!(verify_supervisor(&state, &unsigned), Err(AppError::Unauthorized(_))));
        for junk in ["", "sv1", "sv1..", "a.b.c", "sv1.!!!.###"] {
            assert!(matches!(verify_supervisor(&state, junk), Err(AppError::Unauthorized(_))), "{junk:?}");
        }
        clock.advance_millis(8 * 3600 * 1000);
        assert!(
            matches!(verify_supervisor(&state, &issued.token), Err(AppError::Unauthorized(_))),
            "expired"
        );
    }

    #[test]
    fn forwarded_for_only_when_trusted() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "10.0.0.1, 192.0.2.7".parse().unwrap_or(axum::http::HeaderValue::from_static("")),
        );
        let peer = ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 5000)));
        assert_eq!(client_ip(&headers, Some(&peer), false), Some(IpAddr::from([127, 0, 0, 1])));
        assert_eq!(client_ip(&headers, Some(&peer), true), Some(IpAddr::from([192, 0, 2, 7])));
        assert_eq!(client_ip(&HeaderMap::new(), None, true), None);
    }
}
