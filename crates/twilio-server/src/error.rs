//! Twilio's error body, `{"code","message","more_info","status"}`, and the facade's one error type.
//!
//! Every failure a client can cause ends here, so every response, including the ones axum would otherwise
//! write itself (unknown path, wrong method, oversized body), has the shape the helper libraries parse.

use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

/// Twilio's code for an invalid parameter, an illegal transition or any other bad request.
pub const INVALID_PARAMETER: u32 = 20001;
/// Twilio's code for missing or wrong credentials.
pub const AUTHENTICATE: u32 = 20003;
/// Twilio's code for a resource that does not exist.
pub const NOT_FOUND: u32 = 20404;
/// Twilio's code for a service that cannot answer for now.
pub const UNAVAILABLE: u32 = 20503;

/// The `Retry-After` of a 503, in seconds. The engine cannot save changes until its operator has freed
/// disk space (or fixed the file system), which takes minutes, not milliseconds: a client that comes back
/// sooner only gets another 503. (The engine takes changes again by itself once there is room.)
pub const RETRY_AFTER_SECONDS: u32 = 30;

/// An error answered to an HTTP client in Twilio's format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The Twilio error code (`more_info` links to its page).
    pub code: u32,
    /// What was wrong and what to do, for a human.
    pub message: String,
}

impl ApiError {
    /// An error with any status and code.
    pub fn new(status: StatusCode, code: u32, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into() }
    }

    /// 400/20001: a parameter is missing, malformed, unknown or not allowed now.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, INVALID_PARAMETER, message)
    }

    /// 404/20404 for the resource at `path` (as Twilio words it).
    pub fn not_found(path: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            NOT_FOUND,
            format!("The requested resource {path} was not found"),
        )
    }

    /// 401/20003: no or wrong Basic credentials.
    pub fn unauthenticated() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            AUTHENTICATE,
            "Authenticate: send HTTP Basic credentials, the account SID as user name and the auth token as password",
        )
    }

    /// 405 for a method the path does not support.
    pub fn method_not_allowed(method: &str, path: &str) -> ApiError {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            20004,
            format!("Method {method} is not allowed on {path}"),
        )
    }

    /// 413: the body is larger than the facade accepts.
    pub fn too_large(limit: usize) -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            INVALID_PARAMETER,
            format!("The request body is larger than {limit} bytes; send fewer or shorter parameters"),
        )
    }

    /// 503/20503 with `Retry-After`: the engine cannot take the request for now, e.g. it could not save a
    /// change because its disk is full, read-only or failing (the change was not acknowledged). The message
    /// says what happened and is logged here, since the operator has to act on it.
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        let message = message.into();
        tracing::error!(cause = %message, "the engine is unavailable");
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, UNAVAILABLE, message)
    }

    /// 500 for a failure inside the process. The cause is logged here and not shown to the client.
    pub fn internal(cause: &dyn std::fmt::Display) -> ApiError {
        tracing::error!(%cause, "request failed inside the engine");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            20500,
            "An internal error occurred; the request may be retried, and the server log has the details",
        )
    }
}

/// A refused command or read keeps the engine's Twilio status and code.
impl From<engine::Error> for ApiError {
    fn from(e: engine::Error) -> ApiError {
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
        ApiError::new(status, e.code(), e.to_string())
    }
}

/// The actor's own failures. A disk that refused a write (full, read-only, I/O error), an engine that could
/// not reload after one, and a stopped engine are a 503 the client may retry once the operator has fixed the
/// cause; the message names no server path, and the cause (which does) is logged here. A damaged store is a
/// 500, its cause logged and not shown.
impl From<engine::handle::Error> for ApiError {
    fn from(e: engine::handle::Error) -> ApiError {
        use engine::handle::Error;
        match e {
            Error::Engine(e) => e.into(),
            Error::Store(ref cause) if cause.kind().is_exhaustion() => {
                tracing::error!(%cause, "a change could not be saved; the engine reloaded what is on disk");
                ApiError::unavailable(e.to_string())
            }
            Error::Store(cause) => ApiError::internal(&cause),
            Error::Halted(ref why) => {
                tracing::error!(cause = %why, "the engine could not reload its state after a failed write");
                ApiError::unavailable(e.to_string())
            }
            Error::Stopped => ApiError::unavailable(e.to_string()),
        }
    }
}

/// The JSON body, field for field as Twilio sends it.
#[derive(serde::Serialize)]
struct Body<'a> {
    code: u32,
    message: &'a str,
    more_info: String,
    status: u16,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            code: self.code,
            message: &self.message,
            more_info: format!("https://www.twilio.com/docs/errors/{}", self.code),
            status: self.status.as_u16(),
        };
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
        }
        response
    }
}

/// What every handler returns.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn body_has_twilios_four_fields() {
        let response = ApiError::not_found("/Workspaces/WS1").into_response();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let bytes = axum::body::to_bytes(response.into_body(), 10_000).await.unwrap();
        let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(json["code"], 20404);
        assert_eq!(json["status"], 404);
        assert_eq!(json["more_info"], "https://www.twilio.com/docs/errors/20404");
        assert_eq!(json["message"], "The requested resource /Workspaces/WS1 was not found");
    }

    #[tokio::test]
    async fn unavailable_is_a_503_with_retry_after_in_twilios_shape() {
        let response = ApiError::unavailable("the disk is full").into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[RETRY_AFTER], RETRY_AFTER_SECONDS.to_string().as_str());
        let bytes = axum::body::to_bytes(response.into_body(), 10_000).await.unwrap();
        let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "code": 20503,
                "message": "the disk is full",
                "more_info": "https://www.twilio.com/docs/errors/20503",
                "status": 503,
            })
        );
    }
}
