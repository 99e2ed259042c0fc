//! `/healthz`, `/readyz` and `trworker health` in local and twilio mode, including the not-ready cases.

use serde_json::json;

use crate::helpers::{get_json, local_env, Proc, TempDir};

/// Runs `trworker health ARGS` and returns its exit code and output.
async fn health(args: &[&str]) -> (i32, String) {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_trworker"))
            .arg("health")
            .args(&args)
            .env_clear()
            .output()
            .expect("run trworker health");
        let text =
            format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        (output.status.code().unwrap_or(-1), text)
    })
    .await
    .expect("join")
}

/// The Twilio a twilio-mode server is pointed at: TaskRouter's (and the API's) URL and the credentials.
struct Twilio<'a> {
    url: &'a str,
    account_sid: &'a str,
    auth_token: &'a str,
    workspace_sid: &'a str,
    token_password: &'a str,
}

/// Starts `trworker serve` in twilio mode in `dir`, against `twilio`.
fn serve_twilio_mode(dir: &TempDir, twilio: Twilio) -> Proc {
    Proc::start(
        &dir.0,
        &["serve"],
        &[
            ("ACCOUNT_SID", twilio.account_sid),
            ("AUTH_TOKEN", twilio.auth_token),
            ("WORKSPACE_SID", twilio.workspace_sid),
            ("TOKEN_PASSWORD", twilio.token_password),
            ("TWILIO_TASKROUTER_URL", twilio.url),
            ("TWILIO_API_URL", twilio.url),
        ],
    )
}

#[tokio::test]
async fn local_mode_is_live_and_ready() {
    let (_dir, server) = Proc::start_in("health-local", &["serve"], &[]);
    assert_eq!(get_json(&server.url("/healthz")).await, (200, json!({ "status": "ok" })));
    assert_eq!(get_json(&server.url("/readyz")).await, (200, json!({ "status": "ready" })));
    let (code, output) = health(&["--url", &server.base]).await;
    assert_eq!(code, 0, "{output}");
    server.stop_cleanly();
}

#[tokio::test]
async fn twilio_mode_is_live_but_not_ready_while_taskrouter_is_unreachable() {
    let dir = TempDir::new("health-unreachable");
    // Port 1 on loopback: nothing listens there, so every request is refused.
    let nowhere = "http://127.0.0.1:1";
    let server = serve_twilio_mode(
        &dir,
        Twilio {
            url: nowhere,
            account_sid: "AC0123456789abcdef0123456789abcdef",
            auth_token: "0123456789abcdef0123456789abcdef",
            workspace_sid: "WS0123456789abcdef0123456789abcdef",
            token_password: "unreachable-test-password",
        },
    );
    assert_eq!(get_json(&server.url("/healthz")).await.0, 200, "liveness does not depend on Twilio");
    let (status, body) = get_json(&server.url("/readyz")).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "not ready");
    let reason = body["reason"].as_str().unwrap_or_default();
    assert!(reason.starts_with("TaskRouter is not usable"), "{reason}");

    let (code, output) = health(&["--url", &server.base]).await;
    assert_ne!(code, 0, "{output}");
    assert!(output.contains("503") && output.contains("TaskRouter is not usable"), "{output}");
    let (code, output) = health(&["--live", "--url", &server.base]).await;
    assert_eq!(code, 0, "{output}");
    server.stop_cleanly();
}

#[tokio::test]
async fn twilio_mode_is_ready_when_taskrouter_accepts_its_credentials() {
    // A local server is the "Twilio" of two twilio-mode servers: one with its credentials, one with a wrong
    // auth token.
    let (upstream_dir, upstream) = Proc::start_in("health-upstream", &["serve"], &[]);
    let env = local_env(&upstream_dir.0);
    let start = |dir: &TempDir, auth_token: &str| {
        let twilio = Twilio {
            url: &upstream.base,
            account_sid: &env["ACCOUNT_SID"],
            auth_token,
            workspace_sid: &env["WORKSPACE_SID"],
            token_password: "ready-test-password",
        };
        serve_twilio_mode(dir, twilio)
    };
    let good_dir = TempDir::new("health-good");
    let server = start(&good_dir, &env["AUTH_TOKEN"]);
    assert_eq!(get_json(&server.url("/readyz")).await, (200, json!({ "status": "ready" })));

    let wrong_dir = TempDir::new("health-wrong");
    let refused = start(&wrong_dir, "ffffffffffffffffffffffffffffffff");
    let (status, body) = get_json(&refused.url("/readyz")).await;
    assert_eq!(status, 503, "{body}");
    assert!(body["reason"].as_str().unwrap_or_default().contains("401"), "{body}");

    for proc in [server, refused] {
        let exit = proc.stop_cleanly();
        // Credentials given to a twilio-mode server are never printed or logged.
        for secret in ["ready-test-password", env["AUTH_TOKEN"].as_str(), "ffffffffffffffffffffffffffffffff"]
        {
            assert!(
                !exit.stdout.contains(secret) && !exit.stderr.contains(secret),
                "{secret} shown: {exit:?}"
            );
        }
    }
    upstream.stop_cleanly();
}
