//! `--log-format json` gives one JSON object per line, and no secret reaches stdout or stderr during a run
//! that signs in, uses the API, the WebSocket, the legacy token URL and a refused webhook.

use base64::Engine as _;

use crate::helpers::{get, local_env, sign_in, socket, Proc};

const PASSWORD: &str = "logs-test-password-7f3a";
const AUTH_TOKEN: &str = "5ec2e7a0b1c2d3e4f5a6b7c8d9e0f1a2";

#[tokio::test]
async fn json_logs_are_json_lines_and_carry_no_secret() {
    let (dir, server) = Proc::start_in(
        "logs",
        &["serve", "--log-format", "json"],
        &[("TOKEN_PASSWORD", PASSWORD), ("AUTH_TOKEN", AUTH_TOKEN), ("RUST_LOG", "debug")],
    );
    let token = sign_in(&server, "charles", PASSWORD).await;
    let _page = socket(&server, &token).await;
    let http = reqwest::Client::new();
    let workspace =
        http.get(server.url("/api/workspace")).bearer_auth(&token).send().await.expect("workspace");
    assert_eq!(workspace.status().as_u16(), 200);
    let wrong = http
        .post(server.url("/api/token"))
        .json(&serde_json::json!({ "identity": "charles", "password": "not-it" }))
        .send()
        .await
        .expect("wrong password");
    assert_eq!(wrong.status().as_u16(), 401);
    // The seed's URL puts the password in the query string: it must not be logged either.
    let legacy = format!("/generateTrToken.php?clientid=charles&tokenPassword={PASSWORD}");
    assert_eq!(get(&server.url(&legacy)).await.0, 200);
    let webhook = http
        .post(server.url("/twilio/events"))
        .header("X-Twilio-Signature", "forged")
        .form(&[("EventType", "task.created")])
        .send()
        .await
        .expect("webhook");
    assert_eq!(webhook.status().as_u16(), 403);
    let account_sid = local_env(&dir.0)["ACCOUNT_SID"].clone();
    let exit = server.stop_cleanly();

    assert!(exit.stdout.trim().is_empty(), "no banner with JSON logs: {}", exit.stdout);
    let mut messages = Vec::new();
    for line in exit.stderr.lines().filter(|l| !l.trim().is_empty()) {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        assert!(value["level"].is_string() && value["timestamp"].is_string(), "{line}");
        messages.push(value["message"].as_str().unwrap_or_default().to_owned());
    }
    assert!(messages.iter().any(|m| m == "trworker serve started"), "{messages:?}");
    assert!(messages.iter().any(|m| m.contains("X-Twilio-Signature")), "the refused webhook is logged");
    assert!(messages.iter().any(|m| m == "stopped"), "{messages:?}");

    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{account_sid}:{AUTH_TOKEN}"));
    let everything = format!("{}\n{}", exit.stdout, exit.stderr);
    for (what, secret) in [
        ("the auth token", AUTH_TOKEN),
        ("the workers' password", PASSWORD),
        ("a worker token", token.as_str()),
        ("a Basic Authorization header", basic.as_str()),
    ] {
        assert!(!everything.contains(secret), "{what} was logged:\n{everything}");
    }
}
