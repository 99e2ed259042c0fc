//! Sign-in and bearer credentials.
//!
//! - The password is compared in constant time over SHA-256 digests, so neither its content nor its length
//!   leaks through timing. It is checked before the identity is looked up: a wrong password costs no REST
//!   call, and a wrong password and an unknown identity get the same answer.
//! - The worker token is the `twilio::token` worker capability JWT (what TaskRouter.js takes) and is also
//!   the bearer credential of the app's own API and WebSocket, verified with the same module: signature,
//!   expiry, issuer, and this app's account and workspace.
//! - Sign-in attempts are limited with token buckets per client address and per identity, on the injected
//!   clock. Every attempt counts, so hammering with the right password is limited too.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use engine::Timestamp;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{AppError, AppState};

/// A token bucket: `burst` attempts at once, then one more every `refill_every`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Attempts allowed in a row.
    pub burst: u32,
    /// Time for one attempt to be given back.
    pub refill_every: Duration,
}

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

/// Issues the worker capability token (activity and reservation updates allowed) for `worker_sid`.
pub(crate) fn issue(state: &AppState, worker_sid: &str) -> Result<Issued, AppError> {
    let config = state.config();
    let now = state.now_secs();
    let capability = twilio::token::WorkerCapability::new(
        &config.account_sid,
        &config.auth_token,
        &config.workspace_sid,
        worker_sid,
    )
    .ttl(config.token_ttl)
    .allow_activity_updates(true)
    .allow_reservation_updates(true);
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

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Timestamp,
}

/// Token buckets per client address and per identity. A std mutex: held for a map update only.
pub(crate) struct Limiter {
    per_ip: RateLimit,
    per_identity: RateLimit,
    buckets: Mutex<HashMap<String, Bucket>>,
}

/// Buckets kept before full (idle) ones are dropped.
const MAX_BUCKETS: usize = 10_000;

impl Limiter {
    pub(crate) fn new(per_ip: RateLimit, per_identity: RateLimit) -> Limiter {
        Limiter { per_ip, per_identity, buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes one attempt from the client's and the identity's buckets, or says how many seconds to wait.
    pub(crate) fn attempt(&self, now: Timestamp, ip: Option<IpAddr>, identity: &str) -> Result<(), AppError> {
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        let mut keys = vec![(format!("id:{}", identity.to_lowercase()), self.per_identity)];
        if let Some(ip) = ip {
            keys.push((format!("ip:{ip}"), self.per_ip));
        }
        let mut wait = 0u64;
        for (key, limit) in &keys {
            let bucket = refill(buckets.get(key).copied(), *limit, now);
            if bucket.tokens < 1.0 {
                let per = limit.refill_every.as_secs_f64();
                wait = wait.max(((1.0 - bucket.tokens) * per).ceil().max(1.0) as u64);
            }
        }
        if wait > 0 {
            return Err(AppError::RateLimited { retry_after: wait });
        }
        for (key, limit) in keys {
            let mut bucket = refill(buckets.get(&key).copied(), limit, now);
            bucket.tokens -= 1.0;
            buckets.insert(key, bucket);
        }
        if buckets.len() > MAX_BUCKETS {
            let (ip, identity) = (self.per_ip, self.per_identity);
            buckets.retain(|key, bucket| {
                let limit = if key.starts_with("ip:") { ip } else { identity };
                refill(Some(*bucket), limit, now).tokens < f64::from(limit.burst)
            });
        }
        Ok(())
    }
}

fn refill(bucket: Option<Bucket>, limit: RateLimit, now: Timestamp) -> Bucket {
    let full = f64::from(limit.burst);
    let Some(bucket) = bucket else {
        return Bucket { tokens: full, at: now };
    };
    let per_ms = limit.refill_every.as_millis().max(1) as f64;
    let gained = now.millis_since(bucket.at) as f64 / per_ms;
    Bucket { tokens: (bucket.tokens + gained).min(full), at: now }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_compare_by_content_only() {
        assert!(password_matches("s3cret", "s3cret"));
        assert!(!password_matches("s3cret", "s3cre"));
        assert!(!password_matches("s3cret", "S3cret"));
        assert!(!password_matches("", ""), "an empty configured password never matches");
    }

    #[test]
    fn buckets_empty_then_refill() {
        let limit = RateLimit { burst: 2, refill_every: Duration::from_secs(10) };
        let limiter = Limiter::new(limit, limit);
        let t0 = Timestamp::from_secs(1000);
        let ip = Some(IpAddr::from([127, 0, 0, 1]));
        assert!(limiter.attempt(t0, ip, "alice").is_ok());
        assert!(limiter.attempt(t0, ip, "Alice").is_ok());
        match limiter.attempt(t0, ip, "alice") {
            Err(AppError::RateLimited { retry_after }) => assert_eq!(retry_after, 10),
            other => panic!("expected a rate limit, got {other:?}"),
        }
        // The address is spent too, so another identity from it waits as well.
        assert!(limiter.attempt(t0, ip, "bob").is_err());
        assert!(limiter.attempt(t0.plus_secs(10), ip, "alice").is_ok());
        assert!(limiter.attempt(t0.plus_secs(10), None, "carol").is_ok());
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
