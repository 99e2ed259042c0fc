//! The client's one error type, and the parsing of Twilio's error bodies.
//!
//! Twilio answers errors with a legacy body `{code, message, more_info, status[, detail]}` (TaskRouter and
//! API 2010) or, on newer APIs, an RFC 9457 problem `{type, title, status, code, detail, instance}`. Both
//! become [`Error::Api`], so callers match on `status` and `code` without knowing which one arrived.

use std::time::Duration;

/// Everything a client call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Twilio (or the local engine) answered with an error status.
    #[error("Twilio API error: HTTP {status}, code {code}: {message}{}", more_info_suffix(more_info))]
    Api {
        /// The HTTP status.
        status: u16,
        /// Twilio's error code (e.g. 20404), or the HTTP status when the body carries none.
        code: u32,
        /// What went wrong, as Twilio says it.
        message: String,
        /// A link to Twilio's documentation of the code.
        more_info: Option<String>,
    },
    /// The request could not be sent or its response not received.
    #[error("could not reach {url} ({method}): {source}; check the base URL, the network and TLS")]
    Transport {
        /// The HTTP method.
        method: String,
        /// The URL requested.
        url: String,
        /// What the HTTP stack reported.
        #[source]
        source: reqwest::Error,
    },
    /// No complete response arrived within the configured timeout.
    #[error("{method} {url} timed out after {after:?}; the server is slow or unreachable, retry later")]
    Timeout {
        /// The HTTP method.
        method: String,
        /// The URL requested.
        url: String,
        /// The timeout that elapsed.
        after: Duration,
    },
    /// A response arrived but is not what the API documents.
    #[error("unexpected response to {url} (HTTP {status}): {reason}; body starts with {body_start:?}")]
    Decode {
        /// The URL requested.
        url: String,
        /// The HTTP status.
        status: u16,
        /// Why it could not be read.
        reason: String,
        /// The first bytes of the body, lossily decoded, to tell a proxy's HTML page from a truncated JSON.
        body_start: String,
    },
    /// The client was configured or called in a way that cannot work.
    #[error("invalid Twilio client configuration: {0}")]
    Config(String),
}

impl Error {
    /// The HTTP status of an API error, `None` for the other kinds.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } => Some(*status),
            Error::Decode { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// True for a 404 from the API: the resource does not exist (any more).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Api { status: 404, .. })
    }
}

fn more_info_suffix(more_info: &Option<String>) -> String {
    more_info.as_deref().map(|m| format!(" (see {m})")).unwrap_or_default()
}

/// How many bytes of an unreadable body an error keeps.
const BODY_START_LEN: usize = 200;

pub(crate) fn body_start(body: &[u8]) -> String {
    let cut = body.get(..BODY_START_LEN).unwrap_or(body);
    String::from_utf8_lossy(cut).into_owned()
}

/// Builds [`Error::Api`] from an error response, whatever its body.
pub(crate) fn api_error(status: u16, body: &[u8]) -> Error {
    let parsed: Option<serde_json::Map<String, serde_json::Value>> = serde_json::from_slice(body).ok();
    let Some(object) = parsed else {
        let text = body_start(body);
        let message = if text.trim().is_empty() {
            format!("HTTP {status} with an empty body")
        } else {
            format!("HTTP {status} with a non-JSON body: {}", text.trim())
        };
        return Error::Api { status, code: u32::from(status), message, more_info: None };
    };
    let text = |key: &str| object.get(key).and_then(|v| v.as_str()).filter(|s| !s.is_empty());
    let code = object
        .get("code")
        .and_then(|v| v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok())))
        .and_then(|c| u32::try_from(c).ok())
        .unwrap_or(u32::from(status));
    // twilio-python's test for an RFC 9457 body: all of type, title, status and code present.
    let is_problem = ["type", "title", "status", "code"].iter().all(|k| object.contains_key(*k));
    let (message, more_info) = if is_problem {
        let message = match (text("title"), text("detail")) {
            (Some(title), Some(detail)) => format!("{title}: {detail}"),
            (Some(one), None) | (None, Some(one)) => one.to_owned(),
            (None, None) => format!("HTTP {status}"),
        };
        (message, text("type").map(str::to_owned))
    } else {
        let message = text("message").or_else(|| text("detail")).unwrap_or("no message given");
        (message.to_owned(), text("more_info").map(str::to_owned))
    };
    Error::Api { status, code, message, more_info }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(error: Error) -> (u16, u32, String, Option<String>) {
        match error {
            Error::Api { status, code, message, more_info } => (status, code, message, more_info),
            other => (0, 0, other.to_string(), None),
        }
    }

    /// A legacy body and an RFC 9457 problem read the same way.
    #[test]
    fn legacy_and_rfc9457_bodies() {
        let legacy: &[u8] =
            br#"{"code": 20404, "message": "The requested resource /Workspaces/WS1 was not found",
            "more_info": "https://www.twilio.com/docs/errors/20404", "status": 404}"#;
        let rfc9457: &[u8] =
            br#"{"type": "https://www.twilio.com/docs/errors/20001", "title": "Invalid parameter",
            "status": 400, "code": 20001, "detail": "FriendlyName is required", "instance": "/v1/x"}"#;
        for (body, expected_status, expected_code, expected_message) in [
            (legacy, 404, 20404, "The requested resource /Workspaces/WS1 was not found"),
            (rfc9457, 400, 20001, "Invalid parameter: FriendlyName is required"),
        ] {
            let (status, code, message, more_info) = fields(api_error(expected_status, body));
            assert_eq!((status, code), (expected_status, expected_code));
            assert_eq!(message, expected_message);
            let link = format!("https://www.twilio.com/docs/errors/{expected_code}");
            assert_eq!(more_info.as_deref(), Some(link.as_str()));
        }
    }

    #[test]
    fn bodies_without_code_or_json_fall_back_to_status() {
        let (_, code, message, _) = fields(api_error(502, b"<html>Bad Gateway</html>"));
        assert_eq!(code, 502);
        assert!(message.contains("<html>Bad Gateway</html>"), "{message}");
        let (_, code, message, _) = fields(api_error(503, b""));
        assert_eq!(code, 503);
        assert!(message.contains("empty body"), "{message}");
        let (_, code, message, _) = fields(api_error(401, br#"{"detail": "Authenticate"}"#));
        assert_eq!((code, message.as_str()), (401, "Authenticate"));
    }

    #[test]
    fn display_tells_status_code_and_link() {
        let error = Error::Api {
            status: 404,
            code: 20404,
            message: "not found".into(),
            more_info: Some("https://www.twilio.com/docs/errors/20404".into()),
        };
        assert_eq!(
            error.to_string(),
            "Twilio API error: HTTP 404, code 20404: not found (see https://www.twilio.com/docs/errors/20404)"
        );
        assert!(error.is_not_found());
    }
}
