//! Request parameters as the Twilio helper libraries send them: `application/x-www-form-urlencoded` bodies and
//! query strings with PascalCase names, repeated keys, `true|1|yes` booleans, comma-joined or repeated arrays
//! and JSON documents inside a string.
//!
//! A handler takes the parameters it knows one by one and then calls [`Params::finish`], which rejects
//! whatever is left with a 400 naming the parameter: a typo such as `FriendlyNmae` must not be silently
//! ignored. Decoding is strict (a bad `%` escape or invalid UTF-8 is a 400), unlike the lenient decoders of
//! the `url` crate, because a malformed body is a client bug worth reporting.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;

use super::error::{ApiError, ApiResult};

/// The largest form body accepted. Workflow configurations may be up to about 1 MB (Twilio's limit), plus
/// the other fields and their escaping.
pub const BODY_LIMIT: usize = 3 * 1024 * 1024;

/// Parsed parameters, in the order they came, with each taken parameter removed.
#[derive(Debug, Default, Clone)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Parses `name=value&...` strictly: `+` is a space, `%XX` must be a valid escape, the result must be
    /// UTF-8. An empty string is no parameters.
    pub fn parse(raw: &str) -> ApiResult<Params> {
        let mut pairs = Vec::new();
        for part in raw.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = part.split_once('=').unwrap_or((part, ""));
            let name = decode(name)?;
            let value = decode(value)?;
            if name.is_empty() {
                return Err(ApiError::invalid(
                    "A parameter has an empty name; check how the form is encoded",
                ));
            }
            pairs.push((name, value));
        }
        Ok(Params { pairs })
    }

    /// Parameters given as name/value pairs (the event bridge's envelope, whose parameters are JSON).
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Params {
        Params { pairs }
    }

    /// Adds a parameter (an alias the caller resolved to the name the parser takes).
    pub fn push(&mut self, name: &str, value: String) {
        self.pairs.push((name.to_owned(), value));
    }

    /// Parses a body given as bytes.
    pub fn parse_bytes(raw: &[u8]) -> ApiResult<Params> {
        let text = std::str::from_utf8(raw).map_err(|_| {
            ApiError::invalid("The form body is not valid UTF-8; percent-encode non-ASCII text")
        })?;
        Params::parse(text)
    }

    /// All parameters not yet taken, as pairs (used to echo list filters into page URLs).
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// The parameters as a form body or query string, encoded as the helper libraries encode them (what
    /// [`Params::parse`] reads back).
    pub fn encode(&self) -> String {
        use crate::page::encode_component as enc;
        let pairs = self.pairs.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v)));
        pairs.collect::<Vec<_>>().join("&")
    }

    /// Removes and returns every value of `name`.
    pub fn take_all(&mut self, name: &str) -> Vec<String> {
        let mut values = Vec::new();
        self.pairs.retain(|(n, v)| {
            if n == name {
                values.push(v.clone());
                false
            } else {
                true
            }
        });
        values
    }

    /// The value of an optional single-valued parameter; the last one wins when repeated, as in Twilio.
    pub fn str(&mut self, name: &str) -> Option<String> {
        self.take_all(name).pop()
    }

    /// A value `parse` reads (absent: `None`), or a 400 saying that the value is not `expected`, e.g. "an
    /// ISO-8601 time".
    pub fn parsed<T>(
        &mut self,
        name: &str,
        parse: impl Fn(&str) -> Option<T>,
        expected: &str,
    ) -> ApiResult<Option<T>> {
        self.str(name)
            .map(|v| {
                parse(&v).ok_or_else(|| {
                    ApiError::invalid(format!("Invalid parameter {name}: '{v}' is not {expected}"))
                })
            })
            .transpose()
    }

    /// A value that must be one of `allowed` (see [`one_of`]).
    pub fn choice(&mut self, name: &str, allowed: &[&str]) -> ApiResult<Option<String>> {
        one_of(name, self.str(name), allowed)
    }

    /// The value of a required parameter (400 naming it when absent).
    pub fn required(&mut self, name: &str) -> ApiResult<String> {
        self.str(name)
            .ok_or_else(|| ApiError::invalid(format!("Missing required parameter {name} in the post body")))
    }

    /// A boolean: `true`, `1` and `yes` (any case) are true, anything else is false, as Twilio documents.
    pub fn bool(&mut self, name: &str) -> Option<bool> {
        self.str(name).map(|v| truthy(&v))
    }

    /// An integer within `min..=max`.
    pub fn int(&mut self, name: &str, min: i64, max: i64) -> ApiResult<Option<i64>> {
        let Some(raw) = self.str(name) else { return Ok(None) };
        let value: i64 = raw
            .trim()
            .parse()
            .map_err(|_| ApiError::invalid(format!("Invalid parameter {name}: '{raw}' is not an integer")))?;
        if value < min || value > max {
            return Err(ApiError::invalid(format!(
                "Invalid parameter {name}: {value} is out of range, it must be between {min} and {max}"
            )));
        }
        Ok(Some(value))
    }

    /// An integer of any value: its range is the engine's rule (Timeout, Priority, ...), checked there.
    pub fn integer(&mut self, name: &str) -> ApiResult<Option<i64>> {
        self.int(name, i64::MIN, i64::MAX)
    }

    /// A list given as repeated keys, comma-joined values, or a JSON array string; empty items are dropped.
    pub fn list(&mut self, name: &str) -> Vec<String> {
        let mut out = Vec::new();
        for value in self.take_all(name) {
            let trimmed = value.trim();
            if trimmed.starts_with('[') {
                if let Ok(items) = serde_json::from_str::<Vec<String>>(trimmed) {
                    out.extend(items);
                    continue;
                }
            }
            out.extend(trimmed.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()));
        }
        out
    }

    /// A JSON document sent as a string (`Attributes`, `Configuration`); 400 naming the parameter when it is
    /// not valid JSON. Returns the text as sent, after checking it parses.
    pub fn json_object(&mut self, name: &str) -> ApiResult<Option<String>> {
        let Some(raw) = self.str(name) else { return Ok(None) };
        // Checked without building the document (the engine parses what it keeps): a JSON text that starts
        // with `{` and parses is an object.
        match serde_json::from_str::<serde::de::IgnoredAny>(&raw) {
            Ok(_) if raw.trim_start().starts_with('{') => Ok(Some(raw)),
            Ok(_) => Err(ApiError::invalid(format!("Invalid parameter {name}: it must be a JSON object"))),
            Err(e) => Err(ApiError::invalid(format!("Invalid parameter {name}: it is not valid JSON ({e})"))),
        }
    }

    /// Drops parameters the spec has but the engine does not act on (telephony options of a simulated call).
    pub fn ignore(&mut self, names: &[&str]) {
        self.pairs.retain(|(n, _)| !names.contains(&n.as_str()));
    }

    /// Rejects whatever was not taken, naming it.
    pub fn finish(self) -> ApiResult<()> {
        match self.pairs.first() {
            None => Ok(()),
            Some((name, _)) => {
                let mut names: Vec<&str> = self.pairs.iter().map(|(n, _)| n.as_str()).collect();
                names.dedup();
                Err(ApiError::invalid(format!(
                    "Unknown parameter {name}: this operation does not accept {}; check the spelling (names are \
                     PascalCase)",
                    names.join(", ")
                )))
            }
        }
    }
}

/// Twilio's truthiness for boolean parameters.
pub fn truthy(value: &str) -> bool {
    matches!(value.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes")
}

fn decode(raw: &str) -> ApiResult<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = bytes.get(i + 1).and_then(|c| (*c as char).to_digit(16));
                let lo = bytes.get(i + 2).and_then(|c| (*c as char).to_digit(16));
                match (hi, lo) {
                    (Some(hi), Some(lo)) => out.push((hi * 16 + lo) as u8),
                    _ => {
                        return Err(ApiError::invalid(format!(
                        "Malformed form encoding near '{}': '%' must be followed by two hexadecimal digits",
                        raw.get(i..).unwrap_or("").chars().take(8).collect::<String>()
                    )))
                    }
                }
                i += 2;
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8(out)
        .map_err(|_| ApiError::invalid("A form value decodes to invalid UTF-8; percent-encode text as UTF-8"))
}

/// The form body of a POST. An absent or empty body is no parameters.
pub struct Form(pub Params);

impl<S: Send + Sync> FromRequest<S> for Form {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Form, ApiError> {
        if let Some(content_type) = req.headers().get(CONTENT_TYPE) {
            let ct = content_type.to_str().unwrap_or("").to_ascii_lowercase();
            if !ct.starts_with("application/x-www-form-urlencoded") {
                return Err(ApiError::invalid(format!(
                    "Content-Type '{ct}' is not supported; send parameters as application/x-www-form-urlencoded"
                )));
            }
        }
        let bytes: Bytes = axum::body::to_bytes(req.into_body(), BODY_LIMIT)
            .await
            .map_err(|_| ApiError::too_large(BODY_LIMIT))?;
        Ok(Form(Params::parse_bytes(&bytes)?))
    }
}

/// The query string. Parsed with the same rules as a form.
pub struct Query(pub Params);

impl<S: Send + Sync> FromRequestParts<S> for Query {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Query, ApiError> {
        Ok(Query(Params::parse(parts.uri.query().unwrap_or(""))?))
    }
}

/// `value` when it is absent or one of `allowed`; otherwise a 400 for parameter `name` that lists them.
pub fn one_of(name: &str, value: Option<String>, allowed: &[&str]) -> ApiResult<Option<String>> {
    match value {
        Some(v) if !allowed.contains(&v.as_str()) => {
            let expected = match allowed {
                [a] => (*a).to_owned(),
                [a, b] => format!("{a} or {b}"),
                _ => format!("one of {}", allowed.join(", ")),
            };
            Err(ApiError::invalid(format!("Invalid parameter {name}: '{v}' is not {expected}")))
        }
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_choice_names_what_is_allowed() {
        let message = |allowed: &[&str]| {
            let mut p = Params::parse("Order=x").unwrap();
            p.choice("Order", allowed).map_err(|e| e.message)
        };
        assert_eq!(
            message(&["FIFO", "LIFO"]),
            Err("Invalid parameter Order: 'x' is not FIFO or LIFO".into())
        );
        assert_eq!(
            message(&["a", "b", "c"]),
            Err("Invalid parameter Order: 'x' is not one of a, b, c".into())
        );
        assert_eq!(message(&["x", "y"]), Ok(Some("x".into())));
        let mut p = Params::parse("When=soon").unwrap();
        let parsed = p.parsed("When", |_| None::<u8>, "a time").map_err(|e| e.message);
        assert_eq!(parsed, Err("Invalid parameter When: 'soon' is not a time".into()));
    }

    #[test]
    fn decodes_like_the_helper_libraries_encode() {
        let mut p = Params::parse("FriendlyName=Hello+W%C3%B6rld&Available=yes&Available=0&Empty=").unwrap();
        assert_eq!(p.str("FriendlyName").as_deref(), Some("Hello Wörld"));
        assert_eq!(p.bool("Available"), Some(false), "last value wins");
        assert_eq!(p.str("Empty").as_deref(), Some(""));
        assert_eq!(p.str("Missing"), None);
        p.finish().unwrap();
    }

    #[test]
    fn encode_is_read_back_by_parse() {
        let pairs =
            vec![("Attributes".to_owned(), r#"{"a": "b&c=d+é"}"#.to_owned()), ("X".into(), "".into())];
        let encoded = Params::from_pairs(pairs.clone()).encode();
        assert!(!encoded.contains(' ') && !encoded.contains('"'), "{encoded}");
        assert_eq!(Params::parse(&encoded).unwrap().pairs(), pairs.as_slice());
    }

    #[test]
    fn rejects_malformed_escapes_and_invalid_utf8() {
        assert!(Params::parse("A=%zz").is_err());
        assert!(Params::parse("A=%4").is_err());
        assert!(Params::parse("A=%ff").is_err());
        assert!(Params::parse("=x").is_err());
        assert!(Params::parse_bytes(&[0x41, 0x3d, 0xff]).is_err());
    }

    #[test]
    fn booleans_follow_twilio() {
        for yes in ["true", "1", "yes", "TRUE", "Yes"] {
            assert!(truthy(yes), "{yes}");
        }
        for no in ["false", "0", "no", "", "y"] {
            assert!(!truthy(no), "{no}");
        }
    }

    #[test]
    fn arrays_are_repeated_comma_joined_or_json() {
        let mut p = Params::parse("S=pending%2Creserved&S=assigned&T=%5B%22a%22%2C%22b%22%5D").unwrap();
        assert_eq!(p.list("S"), ["pending", "reserved", "assigned"]);
        assert_eq!(p.list("T"), ["a", "b"]);
    }

    #[test]
    fn unknown_parameters_are_named() {
        let mut p = Params::parse("FriendlyName=a&FriendlyNmae=b").unwrap();
        p.required("FriendlyName").unwrap();
        let err = p.finish().unwrap_err();
        assert!(err.message.contains("FriendlyNmae"), "{}", err.message);
    }

    #[test]
    fn json_strings_and_ranges_are_checked() {
        let mut p = Params::parse("Attributes=%7B%22a%22%3A1%7D&Bad=%7Bnope&Arr=%5B%5D&N=5&M=x").unwrap();
        assert_eq!(p.json_object("Attributes").unwrap().as_deref(), Some("{\"a\":1}"));
        assert!(p.json_object("Bad").unwrap_err().message.contains("Bad"));
        assert!(p.json_object("Arr").is_err());
        assert!(p.int("N", 1, 4).unwrap_err().message.contains("between 1 and 4"));
        assert!(p.int("M", 1, 4).unwrap_err().message.contains("not an integer"));
        assert!(p.required("Nope").unwrap_err().message.contains("Nope"));
    }

    #[test]
    fn only_a_whole_json_object_passes_as_one() {
        let check = |value: &str| {
            let mut p = Params { pairs: vec![("Attributes".into(), value.into())] };
            p.json_object("Attributes").map_err(|e| e.message)
        };
        assert_eq!(
            check(" \n{\"a\":[1,{\"b\":null}]} ").unwrap().as_deref(),
            Some(" \n{\"a\":[1,{\"b\":null}]} ")
        );
        assert_eq!(check("{}").unwrap().as_deref(), Some("{}"));
        for not_an_object in ["\"{}\"", "[{}]", "1", "null", "true"] {
            let message = check(not_an_object).unwrap_err();
            assert!(message.contains("must be a JSON object"), "{not_an_object}: {message}");
        }
        for not_json in ["{", "{} {}", "{\"a\":}", "{'a':1}", "\u{a0}{}", ""] {
            let message = check(not_json).unwrap_err();
            assert!(message.contains("is not valid JSON"), "{not_json:?}: {message}");
        }
    }
}
