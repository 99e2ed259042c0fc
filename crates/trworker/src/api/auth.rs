//! HTTP Basic authentication with the engine's account SID and auth token, as Twilio does it.
//!
//! The comparison is constant-time so the response time does not leak how much of a guessed token matched.

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use subtle::ConstantTimeEq;

use super::error::ApiError;
use super::AppState;

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
    /// Whether an `Authorization` header value carries these credentials.
    pub fn accepts(&self, header: &str) -> bool {
        let Some(encoded) = header.strip_prefix("Basic ").or_else(|| header.strip_prefix("basic ")) else {
            return false;
        };
        let Ok(decoded) = STANDARD.decode(encoded.trim()) else { return false };
        let Some(colon) = decoded.iter().position(|b| *b == b':') else { return false };
        let (user, password) = decoded.split_at(colon);
        let password = password.get(1..).unwrap_or(&[]);
        let user_ok = user.ct_eq(self.account_sid.as_bytes());
        let password_ok = password.ct_eq(self.auth_token.as_bytes());
        bool::from(user_ok & password_ok)
    }
}

/// Middleware: 401/20003 unless the request carries the engine's credentials.
pub async fn require(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let ok = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| state.credentials().accepts(v));
    if ok {
        next.run(req).await
    } else {
        let mut response = ApiError::unauthenticated().into_response();
        response
            .headers_mut()
            .insert("WWW-Authenticate", axum::http::HeaderValue::from_static("Basic realm=\"Twilio API\""));
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_the_exact_pair() {
        let c = Credentials { account_sid: "AC1".into(), auth_token: "secret".into() };
        let header = |u: &str, p: &str| format!("Basic {}", STANDARD.encode(format!("{u}:{p}")));
        assert!(c.accepts(&header("AC1", "secret")));
        assert!(!c.accepts(&header("AC1", "secre")));
        assert!(!c.accepts(&header("AC2", "secret")));
        assert!(!c.accepts("Basic !!!"));
        assert!(!c.accepts("Bearer x"));
        assert!(!c.accepts(&format!("Basic {}", STANDARD.encode("AC1secret"))));
    }
}
