//! Small extractors and helpers every resource module shares: path segments with Twilio errors, SID parsing,
//! `If-Match`, `ETag`, and calling the engine.

use axum::extract::{FromRequestParts, Path};
use axum::http::header::{CONTENT_TYPE, ETAG};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use engine::{Prefix, Sid};
use serde::de::DeserializeOwned;

use super::error::{ApiError, ApiResult};
use super::port::{Failure, Op, Out};
use super::AppState;

/// Path parameters; a segment that is not valid percent-encoded UTF-8 is a Twilio 404 rather than axum's
/// plain-text rejection.
pub struct Segments<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Segments<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let path = super::twilio_path(parts.uri.path());
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(t)| Segments(t))
            .map_err(|_| ApiError::not_found(&path))
    }
}

/// Parses a SID from a path segment or parameter, naming the parameter when it is malformed.
pub fn sid(value: &str, prefix: Prefix, name: &str) -> ApiResult<Sid> {
    Sid::parse_as(value, prefix).map_err(|e| ApiError::invalid(format!("Invalid parameter {name}: {e}")))
}

/// An optional SID parameter.
pub fn opt_sid(value: Option<String>, prefix: Prefix, name: &str) -> ApiResult<Option<Sid>> {
    value.filter(|v| !v.is_empty()).map(|v| sid(&v, prefix, name)).transpose()
}

/// The `If-Match` header, without quotes.
pub fn if_match(headers: &HeaderMap) -> Option<String> {
    headers.get("if-match").and_then(|v| v.to_str().ok()).map(|v| v.trim().trim_matches('"').to_owned())
}

impl From<Failure> for ApiError {
    fn from(f: Failure) -> ApiError {
        let status = StatusCode::from_u16(f.status).unwrap_or(StatusCode::BAD_REQUEST);
        // The engine could not save a change (disk full, read-only, I/O error) or has stopped: the client
        // learns that, and when to come back, instead of a bare 500.
        if status == StatusCode::SERVICE_UNAVAILABLE {
            return ApiError::unavailable(f.message);
        }
        if status.is_server_error() {
            return ApiError::internal(&f.message);
        }
        ApiError::new(status, f.code, f.message)
    }
}

/// Runs an operation on the engine.
pub async fn call(state: &AppState, op: Op) -> ApiResult<Out> {
    Ok(state.engine().call(op).await?)
}

/// The error for an engine answer of the wrong kind (an adapter bug, never client input).
pub fn unexpected(out: &Out) -> ApiError {
    let kind = format!("{out:?}");
    ApiError::internal(&format!(
        "the engine answered with an unexpected result: {}",
        kind.split('(').next().unwrap_or("?")
    ))
}

/// Takes one variant out of an engine answer.
macro_rules! expect_out {
    ($out:expr, $variant:path) => {
        match $out {
            $variant(v) => v,
            other => return Err($crate::extract::unexpected(&other)),
        }
    };
}
pub(crate) use expect_out;

/// A JSON response with a status. The body is written into a buffer the size of a typical resource (a task
/// is about 1.5 KB), so most responses never grow it.
pub fn json(status: StatusCode, body: impl serde::Serialize) -> Response {
    let mut buf = Vec::with_capacity(2048);
    match serde_json::to_writer(&mut buf, &body) {
        Ok(()) => json_bytes(status, buf),
        // Only a map with non-string keys fails, and no body has one.
        Err(e) => {
            ApiError::internal(&format!("the response could not be written as JSON: {e}")).into_response()
        }
    }
}

/// A response with a status and a body that is already JSON.
pub fn json_bytes(status: StatusCode, body: Vec<u8>) -> Response {
    (status, [(CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response()
}

/// A JSON response with an `ETag` header carrying `version`.
pub fn json_etag(status: StatusCode, body: impl serde::Serialize, version: u64) -> Response {
    with_etag(json(status, body), version)
}

/// `response` with an `ETag` header carrying `version`.
pub fn with_etag(mut response: Response, version: u64) -> Response {
    response.headers_mut().insert(ETAG, HeaderValue::from(version));
    response
}

/// 204 No Content for deletes.
pub fn deleted(out: Out) -> ApiResult<Response> {
    match out {
        Out::Deleted => Ok(StatusCode::NO_CONTENT.into_response()),
        other => Err(unexpected(&other)),
    }
}
