//! Failures: one line saying what failed and what to do, and a non-zero exit.

use super::helpers::*;

#[tokio::test]
async fn without_local_env_or_environment_the_missing_variable_is_named() {
    let dir = temp_dir();
    let run = run_in(&dir, &["workers", "--json"]).await;
    let error = run.error();
    assert!(error.starts_with("trworker: ACCOUNT_SID is not set"), "{error}");
    assert!(error.contains("environment") && error.contains("local.env"), "{error}");
    assert!(run.stdout.is_empty());
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn an_unreachable_server_is_named_with_its_url() {
    let local = Local::demo().await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    local.write_env(&[("TWILIO_TASKROUTER_URL", &closed), ("TWILIO_API_URL", &closed)]);
    let error = local.run(&["tasks", "list"]).await.error();
    assert!(error.contains(&format!("cannot reach {closed}")), "{error}");
    assert!(error.contains("trworker serve"), "{error}");
}

#[tokio::test]
async fn a_wrong_auth_token_says_to_check_the_credentials() {
    let local = Local::demo().await;
    local.write_env(&[("AUTH_TOKEN", "0123456789abcdef0123456789abcdef")]);
    let error = local.run(&["workers"]).await.error();
    assert!(error.contains("HTTP 401") && error.ends_with("check ACCOUNT_SID/AUTH_TOKEN"), "{error}");
}

#[tokio::test]
async fn an_unknown_sid_is_reported_as_not_found() {
    let local = Local::demo().await;
    let sid = "WT0123456789abcdef0123456789abcdef";
    let error = local.run(&["tasks", "fix-wrapping", sid]).await.error();
    assert!(error.contains(&format!("task {sid} not found")), "{error}");
    let error = local.run(&["call", "hangup", sid]).await.error();
    assert!(error.contains("not found") && error.contains("tasks list"), "{error}");
    let error = local.run(&["conferences", "end", "CF0123456789abcdef0123456789abcdef"]).await.error();
    assert!(error.contains("not found"), "{error}");
}

#[tokio::test]
async fn the_environment_wins_over_local_env() {
    let local = Local::demo().await;
    let dir = local.dir.clone();
    let run = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_trworker"))
            .args(["workers", "--json", "--data-dir"])
            .arg(dir.join("data"))
            .env_clear()
            .env("AUTH_TOKEN", "wrong")
            .current_dir(&dir)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_ne!(run.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&run.stderr).contains("check ACCOUNT_SID/AUTH_TOKEN"));
}
