//! The engine's typed errors, each mapped to Twilio's error code and HTTP status (reference §3).
//!
//! A command that fails changes nothing: the core validates before it mutates.

/// Why a command or query was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// An unknown SID or name; `what` is the Twilio path, e.g. `/Workspaces/WS…/Tasks/WT…`.
    #[error("The requested resource {what} was not found")]
    NotFound {
        /// The resource path.
        what: String,
    },
    /// A parameter is missing, malformed or out of range.
    #[error("Invalid parameter {param}: {message}")]
    InvalidParameter {
        /// The PascalCase parameter name.
        param: String,
        /// What is wrong and what would be valid.
        message: String,
    },
    /// The resource is not in a state that allows the change (wording as Twilio's).
    #[error("{message}")]
    IllegalTransition {
        /// Twilio-style sentence, e.g. "Cannot cancel task WT… because it is not pending or reserved."
        message: String,
    },
    /// `If-Match` does not name the current version.
    #[error("If-Match '{given}' does not match the current version {current}; fetch the resource and retry")]
    PreconditionFailed {
        /// The ETag the caller sent.
        given: String,
        /// The current version.
        current: u64,
    },
    /// The reservation is no longer available (e.g. rescinded, timed out).
    #[error("{message}")]
    Gone {
        /// What happened to it.
        message: String,
    },
    /// A unique name is taken.
    #[error("{message}")]
    Conflict {
        /// What clashes.
        message: String,
    },
}

impl Error {
    /// The Twilio error code.
    pub fn code(&self) -> u32 {
        match self {
            Error::NotFound { .. } => 20404,
            Error::Conflict { .. } => 20001,
            _ => 20001,
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            Error::NotFound { .. } => 404,
            Error::InvalidParameter { .. } | Error::IllegalTransition { .. } => 400,
            Error::PreconditionFailed { .. } => 412,
            Error::Gone { .. } => 410,
            Error::Conflict { .. } => 409,
        }
    }

    pub(crate) fn invalid(param: &str, message: impl Into<String>) -> Error {
        Error::InvalidParameter { param: param.to_owned(), message: message.into() }
    }

    pub(crate) fn not_found(what: impl Into<String>) -> Error {
        Error::NotFound { what: what.into() }
    }

    pub(crate) fn illegal(message: impl Into<String>) -> Error {
        Error::IllegalTransition { message: message.into() }
    }
}

/// Most characters of a caller's text that [`quote`] repeats.
const QUOTE_CHARS: usize = 100;

/// A caller's text (an expression, a filter name, a number as given) quoted for an error message: whole when
/// it is short, else its first [`QUOTE_CHARS`] characters, `…` and its length. An expression may be 16 KiB
/// and a workflow configuration 1 MB; repeating them whole made error bodies as large, while the parse
/// error itself already says where the mistake is and shows the text there.
pub(crate) fn quote(text: &str) -> String {
    match text.char_indices().nth(QUOTE_CHARS) {
        None => format!("\"{text}\""),
        Some((cut, _)) => format!("\"{}…\" ({} characters)", &text[..cut], text.chars().count()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_repeats_short_text_whole_and_long_text_in_part() {
        assert_eq!(quote("a == 1"), "\"a == 1\"");
        assert_eq!(quote(""), "\"\"");
        let exact = "x".repeat(QUOTE_CHARS);
        assert_eq!(quote(&exact), format!("\"{exact}\""));
        let long = format!("{} == 1", vec!["a"; 9_000].join("."));
        let quoted = quote(&long);
        assert_eq!(quoted, format!("\"{}…\" ({} characters)", &long[..QUOTE_CHARS], long.len()));
        assert!(quoted.len() < 150, "{quoted}");
        // Cut at a character, not a byte: multi-byte text neither panics nor splits a character.
        let wide = "é".repeat(QUOTE_CHARS + 1);
        assert_eq!(
            quote(&wide),
            format!("\"{}…\" ({} characters)", "é".repeat(QUOTE_CHARS), QUOTE_CHARS + 1)
        );
    }
}
