//! HTTP Basic authentication with the engine's account SID and auth token, as Twilio does it.
//!
//! The comparison is constant-time so the response time does not leak how much of a guessed token matched.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use futures_util::future::{ready, BoxFuture, Either, Ready};
use subtle::ConstantTimeEq;
use tower::{Layer, Service};

use super::error::ApiError;
use super::ServerState;

/// The account the engine serves.
#[derive(Clone)]
pub struct Credentials {
    /// `AC…`: the Basic user name, and the account of every resource.
    pub account_sid: String,
    /// The Basic password, also the key of `X-Twilio-Signature`.
    pub auth_token: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("account_sid", &self.account_sid).finish_non_exhaustive()
    }
}

impl Credentials {
    /// The `Authorization` header value as the helper libraries send it: `Basic ` and the padded base64 of
    /// `sid:token`.
    pub fn basic_header(&self) -> String {
        format!("Basic {}", STANDARD.encode(format!("{}:{}", self.account_sid, self.auth_token)))
    }

    /// Whether an `Authorization` header value carries these credentials: [`basic_header`], or the same with
    /// `basic` in lower case or spaces around the base64.
    ///
    /// [`basic_header`]: Credentials::basic_header
    pub fn accepts(&self, header: &str) -> bool {
        let Some((user, password)) = basic_pair(header) else { return false };
        let user_ok = user.as_slice().ct_eq(self.account_sid.as_bytes());
        let password_ok = password.as_slice().ct_eq(self.auth_token.as_bytes());
        bool::from(user_ok & password_ok)
    }
}

/// The user name and password of a `Basic` `Authorization` header value (`basic` in lower case and spaces
/// around the base64 allowed).
fn basic_pair(header: &str) -> Option<(Vec<u8>, Vec<u8>)> {
    let encoded = header.strip_prefix("Basic ").or_else(|| header.strip_prefix("basic "))?;
    let mut decoded = STANDARD.decode(encoded.trim()).ok()?;
    let colon = decoded.iter().position(|b| *b == b':')?;
    let password = decoded.split_off(colon + 1);
    decoded.truncate(colon);
    Some((decoded, password))
}

/// The API key SID and the password of a `Basic` header whose user name is an API key (`SK…`): Twilio's
/// helper libraries authenticate this way with a key instead of the auth token.
fn api_key_pair(header: &str) -> Option<(engine::Sid, Vec<u8>)> {
    let (user, password) = basic_pair(header)?;
    let sid = engine::Sid::parse_as(std::str::from_utf8(&user).ok()?, engine::Prefix::ApiKey).ok()?;
    Some((sid, password))
}

/// Layer: 401/20003 unless the request carries the engine's credentials (the account SID and auth token, or
/// an API key's SID and secret, as Twilio accepts); apply it with `Router::route_layer`.
///
/// A hand-written service rather than `axum::middleware::from_fn`, which boxes a future and a clone of the
/// inner service on every request. With `from_fn`, this layer and the metrics one (trworker's `obs::Track`)
/// took about 6 of the 40 us of HTTP CPU a task create costs; written like this, about half as much
/// (docs/PERFORMANCE.md). It allocates nothing of its own for the usual header: an authorized request goes
/// straight to the inner service's future.
#[derive(Clone)]
pub struct RequireAuth {
    state: ServerState,
    /// The header as the helper libraries send it (`Basic ` and the padded base64 of `sid:token`), compared
    /// as bytes before anything is decoded; other spellings ([`Credentials::accepts`]) are decoded.
    usual: Arc<[u8]>,
}

impl RequireAuth {
    /// Checks requests against the credentials of `state`.
    pub fn new(state: ServerState) -> RequireAuth {
        let usual = state.credentials().basic_header().into_bytes().into();
        RequireAuth { state, usual }
    }
}

impl<S> Layer<S> for RequireAuth {
    type Service = RequireAuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireAuthService { inner, state: self.state.clone(), usual: self.usual.clone() }
    }
}

/// The service of [`RequireAuth`].
#[derive(Clone)]
pub struct RequireAuthService<S> {
    inner: S,
    state: ServerState,
    usual: Arc<[u8]>,
}

impl<S> Service<Request> for RequireAuthService<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    /// Refused at once, the inner service's future (the usual credentials: nothing allocated), or, for an
    /// API key, a boxed future that looks the key up on the engine first.
    type Future = Either<
        Ready<Result<Response, Infallible>>,
        Either<S::Future, BoxFuture<'static, Result<Response, Infallible>>>,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let ok = req.headers().get(AUTHORIZATION).is_some_and(|v| {
            bool::from(v.as_bytes().ct_eq(&self.usual))
                || v.to_str().is_ok_and(|v| self.state.credentials().accepts(v))
        });
        if ok {
            return Either::Right(Either::Left(self.inner.call(req)));
        }
        let key = req.headers().get(AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(api_key_pair);
        let Some((sid, password)) = key else {
            return Either::Left(ready(Ok(unauthenticated(req.headers().contains_key(AUTHORIZATION)))));
        };
        // The service that was made ready goes into the future; a clone takes its place (tower's pattern).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let state = self.state.clone();
        Either::Right(Either::Right(Box::pin(async move {
            let secret = state.engine().api_key_secret(sid).await;
            match secret.is_some_and(|secret| bool::from(secret.as_bytes().ct_eq(&password))) {
                true => inner.call(req).await,
                false => Ok(unauthenticated(true)),
            }
        })))
    }
}

/// The 401, with the challenge Twilio sends. When the request carried credentials (`guessed`), the response is marked so the server loop
/// (`crate::http`) counts it against the client's address and throttles an address that keeps guessing; a
/// request with none is not a guess (a client probing what needs auth) and is not counted.
fn unauthenticated(guessed: bool) -> Response {
    let mut response = ApiError::unauthenticated().into_response();
    response.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"Twilio API\""));
    if guessed {
        response.extensions_mut().insert(crate::http::AuthFailed);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_the_exact_pair() {
        let c = Credentials { account_sid: "AC1".into(), auth_token: "secret".into() };
        let header = |u: &str, p: &str| format!("Basic {}", STANDARD.encode(format!("{u}:{p}")));
        assert!(c.accepts(&header("AC1", "secret")));
        assert_eq!(c.basic_header(), header("AC1", "secret"));
        assert!(!c.accepts(&header("AC1", "secre")));
        assert!(!c.accepts(&header("AC2", "secret")));
        assert!(!c.accepts("Basic !!!"));
        assert!(!c.accepts("Bearer x"));
        assert!(!c.accepts(&format!("Basic {}", STANDARD.encode("AC1secret"))));
    }
}
