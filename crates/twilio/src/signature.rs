//! `X-Twilio-Signature`: computing and checking the signature Twilio puts on every webhook it sends.
//!
//! This module owns the one definition of the signing string, so the engine's outgoing callbacks and the
//! worker app's incoming-webhook check cannot disagree. The algorithm (reference §10):
//!
//! 1. Start with the full URL that was requested, query string included.
//! 2. Append every form parameter as `name + value`, no delimiters, names sorted byte-wise; a name that
//!    occurs more than once contributes each of its distinct values, sorted.
//! 3. HMAC-SHA1 over that UTF-8 string keyed with the account Auth Token, then standard Base64 with padding.
//!
//! JSON bodies are not part of the signing string: Twilio adds a `bodySHA256` query parameter (lowercase hex
//! SHA-256 of the raw body) to the URL and signs the URL alone ([`validate_json_body`]).
//!
//! Twilio's backend is inconsistent about whether the signed URL carries the default port, so
//! [`validate`] accepts a signature made over the URL as given, with the default port added, or with the
//! port removed, as the official helper libraries do.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The name of the HTTP header that carries the signature.
pub const HEADER: &str = "X-Twilio-Signature";

/// The query parameter Twilio adds to the URL of a request with a JSON body.
pub const BODY_SHA256_PARAM: &str = "bodySHA256";

/// Computes the `X-Twilio-Signature` value for a request to `url` with form parameters `params`.
///
/// `url` is used exactly as given (scheme, host, port if any, path and query). `params` may be in any order
/// and may repeat a name (array parameters such as `StatusCallbackEvent`); pass an empty slice for GET
/// requests and JSON bodies.
pub fn sign(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    STANDARD.encode(hmac_sha1(auth_token, &signing_string(url, params)))
}

/// Checks `signature` (the `X-Twilio-Signature` header) against a request to `url` with form parameters
/// `params`, in constant time.
///
/// The URL is tried as given, with the scheme's default port added when it has none, and with its port
/// removed when it has one (the port quirk of reference §10). A URL that does not parse is tried as given
/// only.
pub fn validate(auth_token: &str, url: &str, params: &[(String, String)], signature: &str) -> bool {
    let data_suffix = params_string(params);
    // Evaluate every candidate so the time taken does not depend on which one matched.
    url_variants(url).iter().fold(false, |matched, candidate| {
        let mut data = String::with_capacity(candidate.len() + data_suffix.len());
        data.push_str(candidate);
        data.push_str(&data_suffix);
        let expected = STANDARD.encode(hmac_sha1(auth_token, &data));
        constant_time_eq(expected.as_bytes(), signature.as_bytes()) | matched
    })
}

/// Checks a request whose body is `application/x-www-form-urlencoded` (how Twilio posts webhooks and
/// TaskRouter posts events): decodes `body` into its parameters and calls [`validate`]. A body that is not
/// valid form encoding fails validation.
pub fn validate_form_body(auth_token: &str, url: &str, body: &[u8], signature: &str) -> bool {
    match serde_urlencoded::from_bytes::<Vec<(String, String)>>(body) {
        Ok(params) => validate(auth_token, url, &params, signature),
        Err(_) => false,
    }
}

/// Lowercase hex SHA-256 of a request body, the value Twilio puts in the `bodySHA256` query parameter.
pub fn body_sha256(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    let mut hex = String::with_capacity(digest.len() * 2);
    for byte in digest {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    hex
}

/// Prepares a signed request with a JSON (or any non-form) body: returns the URL with `bodySHA256` appended
/// to its query and the signature over that URL.
///
/// Use the returned URL as the request URL and the signature as the `X-Twilio-Signature` header.
pub fn sign_json_body(auth_token: &str, url: &str, body: &[u8]) -> (String, String) {
    let separator = if url.contains('?') { '&' } else { '?' };
    let signed_url = format!("{url}{separator}{BODY_SHA256_PARAM}={}", body_sha256(body));
    let signature = sign(auth_token, &signed_url, &[]);
    (signed_url, signature)
}

/// Checks a request whose body is JSON (or otherwise not form-encoded): the signature must be valid for
/// `url` with no parameters (port quirk included), and the URL's `bodySHA256` query parameter must equal the
/// SHA-256 of `body`.
///
/// Returns false when the URL has no `bodySHA256` parameter: a JSON request without it cannot be checked,
/// and accepting it would leave the body unauthenticated.
pub fn validate_json_body(auth_token: &str, url: &str, body: &[u8], signature: &str) -> bool {
    let Some(claimed) = query_param(url, BODY_SHA256_PARAM) else {
        return false;
    };
    let body_ok = constant_time_eq(body_sha256(body).as_bytes(), claimed.to_ascii_lowercase().as_bytes());
    let signature_ok = validate(auth_token, url, &[], signature);
    body_ok & signature_ok
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hmac_sha1(key: &str, data: &str) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail; an empty MAC would only ever fail to validate.
    match Hmac::<Sha1>::new_from_slice(key.as_bytes()) {
        Ok(mut mac) => {
            mac.update(data.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    // `ct_eq` on slices of different lengths returns false without comparing, which only leaks the length
    // of the expected value: that is public (a Base64 SHA-1 or a hex SHA-256).
    bool::from(a.ct_eq(b))
}

/// The full string that is signed: the URL followed by the sorted parameters.
fn signing_string(url: &str, params: &[(String, String)]) -> String {
    let mut data = String::from(url);
    data.push_str(&params_string(params));
    data
}

/// `name + value` for every parameter: names sorted, each name's distinct values sorted.
fn params_string(params: &[(String, String)]) -> String {
    let mut pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    // Byte-wise order of UTF-8 equals code point order, which is what the helper libraries sort by.
    pairs.sort_unstable();
    pairs.dedup();
    let mut out = String::new();
    for (name, value) in pairs {
        out.push_str(name);
        out.push_str(value);
    }
    out
}

/// The URL as given, then with the default port added or the explicit port removed.
fn url_variants(raw: &str) -> Vec<String> {
    let mut variants = vec![raw.to_owned()];
    let Ok(parsed) = url::Url::parse(raw) else {
        return variants;
    };
    let default_port = match parsed.scheme() {
        "https" => 443,
        "http" => 80,
        _ => return variants,
    };
    let Some(authority_end) = authority_end(raw) else {
        return variants;
    };
    let (head, tail) = raw.split_at(authority_end);
    // Work on the original text rather than `Url::to_string`, which would re-encode the path and query
    // and so change the string Twilio signed.
    match port_split(head) {
        Some((without_port, _port)) => variants.push(format!("{without_port}{tail}")),
        None if parsed.host_str().is_some() => variants.push(format!("{head}:{default_port}{tail}")),
        None => {}
    }
    variants
}

/// Byte offset where the authority (`scheme://user@host:port`) ends: the first `/`, `?` or `#` after `//`.
fn authority_end(raw: &str) -> Option<usize> {
    let start = raw.find("://")? + 3;
    let rest = raw.get(start..)?;
    Some(start + rest.find(['/', '?', '#']).unwrap_or(rest.len()))
}

/// Splits `scheme://host:port` into `scheme://host` and the port, if the authority ends in a numeric port.
fn port_split(head: &str) -> Option<(&str, &str)> {
    let colon = head.rfind(':')?;
    let port = head.get(colon + 1..)?;
    // An IPv6 literal ends in `]`, and `https:` alone is the scheme's colon: neither is a port.
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((head.get(..colon)?, port))
}

/// The decoded value of the first query parameter called `name`, if any.
fn query_param(raw: &str, name: &str) -> Option<String> {
    let parsed = url::Url::parse(raw).ok()?;
    parsed.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    /// Twilio's documented example (webhooks security page): auth token `12345`.
    fn documented_example() -> (&'static str, Vec<(String, String)>) {
        (
            "https://mycompany.com/myapp.php?foo=1&bar=2",
            params(&[
                ("CallSid", "CA1234567890ABCDE"),
                ("Caller", "+14158675310"),
                ("Digits", "1234"),
                ("From", "+14158675310"),
                ("To", "+18005551212"),
            ]),
        )
    }

    const DOCUMENTED_SIGNATURE: &str = "GvWf1cFY/Q7PnoempGyD5oXAezc=";

    #[test]
    fn documented_vector_signs_and_validates() {
        let (url, p) = documented_example();
        assert_eq!(sign("12345", url, &p), DOCUMENTED_SIGNATURE);
        assert!(validate("12345", url, &p, DOCUMENTED_SIGNATURE));
    }

    #[test]
    fn parameter_order_does_not_matter() {
        let (url, mut p) = documented_example();
        p.reverse();
        assert_eq!(sign("12345", url, &p), DOCUMENTED_SIGNATURE);
    }

    #[test]
    fn tampering_is_rejected() {
        let (url, p) = documented_example();
        assert!(!validate("12346", url, &p, DOCUMENTED_SIGNATURE), "wrong token");
        let mut changed = p.clone();
        changed[2].1 = "9999".to_owned();
        assert!(!validate("12345", url, &changed, DOCUMENTED_SIGNATURE), "changed param");
        assert!(!validate("12345", "https://mycompany.com/myapp.php?foo=1&bar=3", &p, DOCUMENTED_SIGNATURE));
        assert!(!validate("12345", url, &p, "GvWf1cFY/Q7PnoempGyD5oXAezc"), "truncated signature");
        assert!(!validate("12345", url, &p, ""), "empty signature");
    }

    #[test]
    fn port_quirk_accepts_default_port_added_or_removed() {
        let p = params(&[("A", "1")]);
        let bare = "https://example.com/hook?x=1";
        let with_port = "https://example.com:443/hook?x=1";
        // Signed without the port, received with it, and the other way round.
        assert!(validate("tok", with_port, &p, &sign("tok", bare, &p)));
        assert!(validate("tok", bare, &p, &sign("tok", with_port, &p)));
        let http_bare = "http://example.com/hook";
        assert!(validate("tok", http_bare, &p, &sign("tok", "http://example.com:80/hook", &p)));
        // A non-default port as given still validates; a different port does not.
        let local = "http://127.0.0.1:3000/events";
        assert!(validate("tok", local, &p, &sign("tok", local, &p)));
        assert!(!validate("tok", local, &p, &sign("tok", "http://127.0.0.1:3001/events", &p)));
        // The added port is the scheme's default, not another one.
        assert!(!validate("tok", bare, &p, &sign("tok", "https://example.com:80/hook?x=1", &p)));
    }

    #[test]
    fn url_variants_keep_the_original_encoding() {
        let raw = "https://example.com/a%20b?q=x%2Fy";
        assert_eq!(
            url_variants(raw),
            vec![raw.to_owned(), "https://example.com:443/a%20b?q=x%2Fy".to_owned()]
        );
        assert_eq!(url_variants("https://[::1]:8443/x"), vec!["https://[::1]:8443/x", "https://[::1]/x"]);
        assert_eq!(url_variants("https://host"), vec!["https://host", "https://host:443"]);
        assert_eq!(url_variants("not a url"), vec!["not a url"]);
    }

    #[test]
    fn multi_valued_params_sort_values_and_drop_duplicates() {
        let url = "https://example.com/cb";
        let p = params(&[("Event", "start"), ("B", "2"), ("Event", "end"), ("Event", "start")]);
        // Names sorted (B before Event), Event's values sorted (end, start), the repeated start dropped.
        assert_eq!(signing_string(url, &p), "https://example.com/cbB2EventendEventstart");
        let expected = STANDARD.encode(hmac_sha1("tok", "https://example.com/cbB2EventendEventstart"));
        assert_eq!(sign("tok", url, &p), expected);
        assert!(validate("tok", url, &p, &expected));
    }

    #[test]
    fn form_body_is_decoded_before_validation() {
        let (url, p) = documented_example();
        let body = serde_urlencoded::to_string(&p).unwrap_or_default();
        assert!(body.contains("Caller=%2B14158675310"), "{body}");
        assert!(validate_form_body("12345", url, body.as_bytes(), DOCUMENTED_SIGNATURE));
        assert!(!validate_form_body("12345", url, b"Digits=1234", DOCUMENTED_SIGNATURE));
        assert!(!validate_form_body("12345", url, &[0xff, 0xfe], DOCUMENTED_SIGNATURE));
    }

    #[test]
    fn get_requests_sign_the_url_alone() {
        let url = "https://example.com/cb?b=2&a=1";
        assert_eq!(sign("tok", url, &[]), STANDARD.encode(hmac_sha1("tok", url)));
    }

    #[test]
    fn body_sha256_is_lowercase_hex() {
        assert_eq!(body_sha256(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn json_body_round_trip_and_tampering() {
        let body = br#"{"property": "value", "boolean": true}"#;
        let (url, signature) = sign_json_body("tok", "https://example.com/myapp?foo=1", body);
        assert!(url.starts_with("https://example.com/myapp?foo=1&bodySHA256="));
        assert!(validate_json_body("tok", &url, body, &signature));
        assert!(!validate_json_body("tok", &url, br#"{"property": "other"}"#, &signature), "changed body");
        assert!(!validate_json_body("other", &url, body, &signature), "wrong token");
        // The body hash is covered by the signature: swapping it for the hash of another body fails.
        let forged_url = format!("https://example.com/myapp?foo=1&bodySHA256={}", body_sha256(b"{}"));
        assert!(!validate_json_body("tok", &forged_url, b"{}", &signature));
        // No bodySHA256 at all: cannot be checked, so rejected.
        let plain = "https://example.com/myapp";
        assert!(!validate_json_body("tok", plain, body, &sign("tok", plain, &[])));
        // Port quirk applies to JSON requests too.
        let with_port = url.replacen("example.com", "example.com:443", 1);
        assert!(validate_json_body("tok", &with_port, body, &signature));
    }

    #[test]
    fn json_body_without_query_gets_question_mark() {
        let (url, _) = sign_json_body("tok", "https://example.com/myapp", b"{}");
        assert_eq!(url, format!("https://example.com/myapp?bodySHA256={}", body_sha256(b"{}")));
    }
}
