//! [`AppError`]: every way a request to the app can fail, as an HTTP status and `{"error":{"message"}}`.
//!
//! Twilio's answers are sorted by whose fault they are: a 404 is the worker's (the reservation or task is
//! gone), a 400/409/412 means TaskRouter refused the action in the current state (409 here, with Twilio's
//! message), and everything else (5xx, timeouts, unreachable, unreadable answers, our own credentials
//! refused) is an upstream failure: 502 with a message saying so, logged where it is converted.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request itself is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// Sign-in failed: wrong password or unknown identity, deliberately indistinguishable.
    #[error("The identity or password is not right. Check both and try again.")]
    BadCredentials,
    /// The bearer token is missing, malformed, expired or not for this workspace.
    #[error("{0}")]
    Unauthorized(String),
    /// The worker may not act on this resource.
    #[error("{0}")]
    Forbidden(String),
    /// The resource does not exist.
    #[error("{0}")]
    NotFound(String),
    /// TaskRouter refused the action in the resource's current state.
    #[error("{0}")]
    Conflict(String),
    /// The body is not in a media type the endpoint reads.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The body is larger than the endpoint reads.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// Too many sign-in attempts.
    #[error("Too many sign-in attempts. Wait {retry_after} seconds and try again.")]
    RateLimited {
        /// Seconds until the next attempt is allowed.
        retry_after: u64,
    },
    /// Too many supervisor actions from one address.
    #[error("Too many supervisor actions. Wait {retry_after} seconds and try again.")]
    TooManyActions {
        /// Seconds until the next action is allowed.
        retry_after: u64,
    },
    /// The server's own configuration cannot work (e.g. a SID of the wrong kind).
    #[error("The server is misconfigured: {0}")]
    Config(String),
    /// Twilio (or the local engine) failed or could not be reached.
    #[error("Could not {action}: {source}")]
    Upstream {
        /// What the app was doing, e.g. "accept the reservation".
        action: String,
        /// The client's error.
        #[source]
        source: twilio::Error,
    },
}

impl AppError {
    /// Sorts a client error of `action` (a verb phrase such as "accept the reservation").
    pub fn upstream(action: &str, source: twilio::Error) -> AppError {
        match &source {
            twilio::Error::Api { status: 404, message, .. } => {
                AppError::NotFound(format!("Could not {action}: Twilio says: {message}"))
            }
            twilio::Error::Api { status: 400 | 409 | 412 | 422, message, .. } => {
                AppError::Conflict(format!("Could not {action}: Twilio refused: {message}"))
            }
            _ => AppError::Upstream { action: action.to_owned(), source },
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::BadCredentials | AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::RateLimited { .. } | AppError::TooManyActions { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Config(_) => StatusCode::INTERNAL_SERVER_ERROR,
            // The engine (or Twilio) says it cannot take changes now (a full disk): so is this server.
            AppError::Upstream { source: twilio::Error::Api { status: 503, .. }, .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            AppError::Upstream { .. } => StatusCode::BAD_GATEWAY,
        }
    }

    /// The message the client gets.
    pub fn message(&self) -> String {
        match self {
            AppError::Upstream { action, source } => match source {
                twilio::Error::Api { status: 401 | 403, .. } => format!(
                    "Could not {action}: Twilio refused this server's credentials. The server's \
                     ACCOUNT_SID, AUTH_TOKEN or WORKSPACE_SID must be fixed by its operator."
                ),
                other => format!("Could not {action}: Twilio failed ({other}). Try again in a moment."),
            },
            other => other.to_string(),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(error = %self, "request failed on the server side");
        }
        let body = serde_json::json!({ "error": { "message": self.message() } });
        let mut response = (status, Json(body)).into_response();
        let retry_after = match self {
            AppError::RateLimited { retry_after } | AppError::TooManyActions { retry_after } => {
                Some(retry_after)
            }
            _ if status == StatusCode::SERVICE_UNAVAILABLE => Some(5),
            _ => None,
        };
        if let Some(value) = retry_after.and_then(|s| HeaderValue::from_str(&s.to_string()).ok()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

/// Puts an error response that is not JSON (the 400 of a refused WebSocket upgrade, a 405, a path that is not
/// UTF-8: what axum and its extractors answer themselves) into the app's `{"error":{"message"}}` shape, keeping
/// its status and headers, so a client of the JSON API reads every failure the same way.
pub(crate) async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    // These bodies are a line of text; anything longer is not a message worth passing on.
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let message = match text.trim() {
        "" => status.canonical_reason().unwrap_or("The request failed.").to_owned(),
        text => text.to_owned(),
    };
    let body = serde_json::json!({ "error": { "message": message } }).to_string();
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(body))
}

/// `value` cut to 64 characters for an error message, so a hostile input is not echoed whole.
pub(crate) fn shorten(value: &str) -> String {
    const MAX: usize = 64;
    match value.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &value[..cut]),
        None => value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn plain_text_failures_are_put_in_the_json_shape() {
        let plain = (StatusCode::BAD_REQUEST, "Connection header did not include 'upgrade'").into_response();
        let response = json_errors(plain).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let bytes = axum::body::to_bytes(response.into_body(), 4096).await.unwrap_or_default();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        assert_eq!(body["error"]["message"], "Connection header did not include 'upgrade'");
        let empty = json_errors(StatusCode::METHOD_NOT_ALLOWED.into_response()).await;
        let bytes = axum::body::to_bytes(empty.into_body(), 4096).await.unwrap_or_default();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        assert_eq!(body["error"]["message"], "Method Not Allowed");
        let fine = json_errors(StatusCode::OK.into_response()).await;
        assert_eq!(fine.status(), StatusCode::OK);
    }

    fn api(status: u16) -> twilio::Error {
        twilio::Error::Api { status, code: 20001, message: "nope".into(), more_info: None }
    }

    #[test]
    fn twilio_errors_are_sorted_by_whose_fault() {
        assert_eq!(AppError::upstream("x", api(404)).status(), StatusCode::NOT_FOUND);
        assert_eq!(AppError::upstream("x", api(400)).status(), StatusCode::CONFLICT);
        assert_eq!(AppError::upstream("x", api(500)).status(), StatusCode::BAD_GATEWAY);
        let refused = AppError::upstream("end the conference", api(401));
        assert_eq!(refused.status(), StatusCode::BAD_GATEWAY);
        assert!(refused.message().contains("credentials"), "{}", refused.message());
    }
}
