//! Every response carries the security headers: the page, JSON answers, errors and unknown paths.

use reqwest::Response;
use serde_json::json;

use crate::helpers::{spawn_app, TestApp};

/// Asserts the security headers on `response` (named `what` in failures) and returns it.
fn assert_secured(what: &str, response: Response) -> Response {
    let headers = response.headers();
    let value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let csp = value("content-security-policy");
    let directives: Vec<&str> = csp.split(';').map(str::trim).collect();
    for wanted in [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(directives.contains(&wanted), "{what}: {wanted:?} missing from the CSP {csp:?}");
    }
    assert!(!csp.contains("unsafe"), "{what}: the CSP allows something unsafe: {csp:?}");
    assert_eq!(value("x-frame-options"), "DENY", "{what}");
    assert_eq!(value("referrer-policy"), "no-referrer", "{what}");
    assert_eq!(value("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(value("cross-origin-opener-policy"), "same-origin", "{what}");
    // Set once, not appended to a value a handler set.
    assert_eq!(headers.get_all("content-security-policy").iter().count(), 1, "{what}");
    assert_eq!(headers.get_all("x-content-type-options").iter().count(), 1, "{what}");
    response
}

async fn get(app: &TestApp, path: &str) -> Response {
    app.http.get(app.url(path)).send().await.expect("request")
}

#[tokio::test]
async fn the_page_and_its_files_carry_the_security_headers() {
    let app = spawn_app().await;
    let page = assert_secured("GET /", get(&app, "/").await);
    assert_eq!(page.status(), 200);
    let script = assert_secured("GET /app.js", get(&app, "/app.js").await);
    assert_eq!(script.status(), 200);
}

#[tokio::test]
async fn json_answers_carry_the_security_headers() {
    let app = spawn_app().await;
    let workspace = assert_secured("GET /api/workspace", get(&app, "/api/workspace").await);
    assert_eq!(workspace.status(), 200);
    assert!(workspace.headers()["content-type"].to_str().unwrap_or("").starts_with("application/json"));
    let signed_in = app
        .http
        .post(app.url("/api/token"))
        .json(&json!({ "identity": "alice", "password": crate::helpers::PASSWORD }))
        .send()
        .await
        .expect("request");
    assert_eq!(assert_secured("POST /api/token", signed_in).status(), 200);
}

#[tokio::test]
async fn errors_carry_the_security_headers() {
    let app = spawn_app().await;
    let unauthorized = app
        .http
        .post(app.url("/api/worker/activity"))
        .json(&json!({ "activity_sid": "WA0123456789abcdef0123456789abcdef" }))
        .send()
        .await
        .expect("request");
    let unauthorized = assert_secured("POST /api/worker/activity without a token", unauthorized);
    assert_eq!(unauthorized.status(), 401);
    let body: serde_json::Value = unauthorized.json().await.expect("a JSON error");
    assert!(body["error"]["message"].is_string(), "{body}");

    let missing = assert_secured("GET /missing.js", get(&app, "/missing.js").await);
    assert_eq!(missing.status(), 404);
    let unrouted = assert_secured("GET /no/such/path", get(&app, "/no/such/path").await);
    assert_eq!(unrouted.status(), 404);
}
