//! Small extractors and helpers every resource module shares: path segments with Twilio errors, SID parsing,
//! `If-Match` and `ETag`.

use axum::extract::{FromRequestParts, Path};
use axum::http::header::{CONTENT_TYPE, ETAG};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use engine::{Prefix, Sid};
use serde::de::DeserializeOwned;

use super::error::{ApiError, ApiResult};

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

/// 204 No Content, once the engine has deleted (the `()` a delete answers).
pub fn deleted((): ()) -> ApiResult<Response> {
    Ok(StatusCode::NO_CONTENT.into_response())
}
