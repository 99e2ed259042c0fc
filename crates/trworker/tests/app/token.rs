//! Sign-in, refresh, bearer verification and the sign-in rate limits.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{spawn_app, spawn_app_with, TestApp, PASSWORD};

#[tokio::test]
async fn the_right_password_gets_a_worker_token_for_eight_hours() {
    let app = spawn_app().await;
    let (status, body, _) = app.post_token("alice", PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().expect("token");
    let claims = twilio::token::verify_worker_token(token, &app.upstream.auth_token, unix_now(&app))
        .expect("a valid worker token");
    assert_eq!(claims.worker_sid, app.alice);
    assert_eq!(claims.workspace_sid, app.workspace_sid);
    assert_eq!(claims.exp, unix_now(&app) + 8 * 3600);
    let methods: Vec<_> =
        claims.policies.iter().map(|p| (p.method.as_str(), p.url.ends_with(&app.alice))).collect();
    assert!(methods.contains(&("POST", true)), "activity updates allowed: {methods:?}");
    let subresources = format!("/Workers/{}/**", app.alice);
    assert!(
        claims.policies.iter().any(|p| p.method == "GET" && p.url.ends_with(&subresources) && p.allow),
        "the original's page reads the worker's channels and statistics: {:?}",
        claims.policies
    );
    assert_eq!(body["worker"]["sid"], app.alice.as_str());
    assert_eq!(body["worker"]["friendly_name"], "alice");
    assert_eq!(body["worker"]["activity_name"], "Offline");
    assert_eq!(body["worker"]["available"], false);
    assert_eq!(body["worker"]["attributes"]["contact_uri"], "client:alice");
    let expires = body["expires_at"].as_str().expect("expires_at");
    let parsed = time::OffsetDateTime::parse(expires, &time::format_description::well_known::Rfc3339)
        .expect("RFC 3339");
    assert_eq!(parsed.unix_timestamp() as u64, claims.exp);
}

fn unix_now(app: &crate::helpers::TestApp) -> u64 {
    use engine::Clock;
    app.clock.now().secs() as u64
}

#[tokio::test]
async fn wrong_password_and_unknown_identity_get_the_same_401() {
    let app = spawn_app().await;
    let (wrong_status, wrong_body, _) = app.post_token("alice", "guess").await;
    let (unknown_status, unknown_body, _) = app.post_token("mallory", PASSWORD).await;
    assert_eq!((wrong_status, unknown_status), (401, 401));
    assert_eq!(wrong_body, unknown_body, "the answers must not tell which was wrong");
    let message = wrong_body["error"]["message"].as_str().expect("message");
    assert!(!message.contains(PASSWORD) && !message.contains("guess"), "{message}");
    let (empty_status, empty_body, _) = app.post_token("", PASSWORD).await;
    assert_eq!((empty_status, &empty_body), (401, &wrong_body));
    // Malformed JSON comes back in the app's error shape.
    let response = app
        .http
        .post(app.url("/api/token"))
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 400);
    let body: serde_json::Value = response.json().await.expect("json");
    assert!(body["error"]["message"].is_string(), "{body}");
}

/// `POST /api/token` from the client address `from` (the app trusts `X-Forwarded-For` in these tests).
async fn sign_in_from(app: &TestApp, from: &str, identity: &str, password: &str) -> (u16, Option<String>) {
    let response = app
        .http
        .post(app.url("/api/token"))
        .header("x-forwarded-for", from)
        .json(&json!({ "identity": identity, "password": password }))
        .send()
        .await
        .expect("request");
    let retry = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
    (response.status().as_u16(), retry)
}

#[tokio::test]
async fn hammering_one_identity_does_not_lock_the_worker_out() {
    let app = spawn_app_with(|config| config.trust_forwarded_for = true).await;
    let burst = app.state.config().sign_in_limit_per_ip.burst;
    for _ in 0..burst {
        assert_eq!(sign_in_from(&app, "192.0.2.66", "alice", "guess").await.0, 401);
    }
    let (status, retry_after) = sign_in_from(&app, "192.0.2.66", "alice", PASSWORD).await;
    assert_eq!(status, 429, "the hammering address waits, even with the right password");
    assert!(retry_after.is_some_and(|s| s.parse::<u64>().is_ok_and(|s| s >= 1)));
    // The real alice, from her own desk, is not held up.
    assert_eq!(sign_in_from(&app, "198.51.100.7", "alice", PASSWORD).await.0, 200);
}

#[tokio::test]
async fn guesses_from_many_addresses_meet_an_overall_budget_that_spares_known_desks() {
    let app = spawn_app_with(|config| {
        config.trust_forwarded_for = true;
        config.sign_in_limit_overall.burst = 5;
        config.sign_in_limit_overall.refill_every = Duration::from_secs(30);
    })
    .await;
    // The office signed in this morning.
    assert_eq!(sign_in_from(&app, "198.51.100.7", "alice", PASSWORD).await.0, 200);
    for n in 0..5 {
        assert_eq!(sign_in_from(&app, &format!("203.0.113.{n}"), "alice", "guess").await.0, 401);
    }
    let (status, retry_after) = sign_in_from(&app, "203.0.113.77", "alice", "guess").await;
    assert_eq!((status, retry_after.as_deref()), (429, Some("30")), "a sixth address is held up");
    assert_eq!(sign_in_from(&app, "203.0.113.78", "bob", PASSWORD).await.0, 429, "newcomers wait");
    assert_eq!(sign_in_from(&app, "198.51.100.7", "bob", PASSWORD).await.0, 200, "the office does not");
    app.clock.advance_millis(30_000);
    assert_eq!(sign_in_from(&app, "203.0.113.78", "bob", PASSWORD).await.0, 200, "the budget refills");
}

#[tokio::test]
async fn a_huge_identity_is_refused_before_any_work() {
    let app = spawn_app().await;
    let (status, body, _) = app.post_token(&"a".repeat(10_000), PASSWORD).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("256")), "{body}");
}

#[tokio::test]
async fn a_body_that_is_not_declared_json_is_not_read_as_json() {
    let app = spawn_app().await;
    // What a cross-site HTML form can send without a CORS preflight.
    let body = json!({ "identity": "alice", "password": PASSWORD }).to_string();
    let response = app
        .http
        .post(app.url("/api/token"))
        .header("content-type", "text/plain")
        .body(body)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 415);
    let body: serde_json::Value = response.json().await.expect("json");
    assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("application/json")), "{body}");
}

#[tokio::test]
async fn sign_in_attempts_are_limited_per_client_address() {
    let app = spawn_app_with(|config| {
        config.sign_in_limit_per_ip.burst = 3;
        config.sign_in_limit_per_ip.refill_every = Duration::from_secs(60);
    })
    .await;
    for name in ["a", "b", "c"] {
        assert_eq!(app.post_token(name, "guess").await.0, 401);
    }
    let (status, _, retry_after) = app.post_token("d", "guess").await;
    assert_eq!(status, 429);
    assert_eq!(retry_after.as_deref(), Some("60"));
}

#[tokio::test]
async fn refresh_gives_a_new_token_and_bad_bearers_get_401() {
    let app = spawn_app().await;
    let token = app.sign_in("alice").await;
    app.clock.advance_millis(60_000);
    let (status, body) = app.post("/api/token/refresh", &token, json!({})).await;
    assert_eq!(status, 200, "{body}");
    let fresh = body["token"].as_str().expect("token");
    assert_ne!(fresh, token);
    assert_eq!(body["worker"]["sid"], app.alice.as_str());

    let (status, body) = app.post("/api/token/refresh", "not-a-jwt", json!({})).await;
    assert_eq!(status, 401, "{body}");
    assert!(body["error"]["message"].is_string());
    let response = app.http.post(app.url("/api/token/refresh")).send().await.expect("request");
    assert_eq!(response.status().as_u16(), 401);

    // Signed with another secret.
    let forged = twilio::token::WorkerCapability::new(
        &app.upstream.account_sid,
        "another-secret",
        &app.workspace_sid,
        &app.alice,
    )
    .to_jwt(unix_now(&app))
    .expect("jwt");
    assert_eq!(app.post("/api/token/refresh", &forged, json!({})).await.0, 401);
    // Right secret, another workspace.
    let elsewhere = twilio::token::WorkerCapability::new(
        &app.upstream.account_sid,
        &app.upstream.auth_token,
        "WS0000000000000000000000000000dead",
        &app.alice,
    )
    .to_jwt(unix_now(&app))
    .expect("jwt");
    assert_eq!(app.post("/api/token/refresh", &elsewhere, json!({})).await.0, 401);
    // Expired: eight hours later.
    app.clock.advance_millis(8 * 3600 * 1000);
    assert_eq!(app.post("/api/token/refresh", &token, json!({})).await.0, 401);
}

#[tokio::test]
async fn the_workspace_lists_its_activities_without_sign_in() {
    let app = spawn_app().await;
    let response = app.http.get(app.url("/api/workspace")).send().await.expect("request");
    assert_eq!(response.status().as_u16(), 200);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["sid"], app.workspace_sid.as_str());
    assert_eq!(body["friendly_name"], "Tiger Support");
    assert_eq!(body["mode"], "local");
    let activities = body["activities"].as_array().expect("activities");
    let available = activities.iter().find(|a| a["friendly_name"] == "Available").expect("Available");
    assert_eq!(available["available"], true);
    assert!(available["sid"].as_str().is_some_and(|s| s.starts_with("WA")));
}

#[tokio::test]
async fn the_page_is_served() {
    let app = spawn_app().await;
    let body = app.served("/", "text/html").await;
    assert!(body.contains("<html") || body.contains("<!doctype") || body.contains("<!DOCTYPE"));
    app.served("/app.js", "text/javascript").await;
    assert_eq!(app.get_text("/style.css").await.0, 200);
    app.served("/theme.css", "text/css").await;
    assert_eq!(app.get_text("/nothing.js").await.0, 404);
}

#[tokio::test]
async fn every_api_failure_comes_in_the_apps_json_shape() {
    let app = spawn_app().await;
    let token = app.sign_in("alice").await;
    let too_big = json!({ "identity": "a".repeat(100 * 1024), "password": "x" });
    let cases = [
        (app.http.get(app.url("/api/ws")), 400),
        (app.http.put(app.url("/api/token")), 405),
        (app.http.post(app.url("/api/token")).json(&too_big), 413),
        (app.http.post(app.url("/api/tasks/%FF/complete")).bearer_auth(&token).json(&json!({})), 400),
    ];
    for (request, want) in cases {
        let response = request.send().await.expect("request");
        assert_eq!(response.status().as_u16(), want);
        let body: serde_json::Value = response.json().await.expect("a JSON body");
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{want}: {body}");
    }
}
