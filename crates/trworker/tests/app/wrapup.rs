//! Server-side wrap-up: a signed-in worker's task left in wrapping is completed per the policy.

use std::time::Duration;

use serde_json::json;
use trworker::app::WrapUpPolicy;

use crate::helpers::{spawn_app, spawn_app_with, TestApp};

/// Alice signs in, takes a call and its conference ends: the task is wrapping (unless the policy already
/// acted).
async fn call_ended(app: &TestApp) -> String {
    let token = app.sign_in("alice").await;
    let task = app.on_call(&token, &app.alice, "+15551230006").await;
    let (status, body) = app.post(&format!("/api/conferences/{}/end", task.sid), &token, json!({})).await;
    assert_eq!(status, 200, "{body}");
    task.sid
}

#[tokio::test]
async fn after_a_delay_on_the_apps_clock() {
    let app = spawn_app_with(|config| config.wrap_up = WrapUpPolicy::After(Duration::from_secs(60))).await;
    let task = call_ended(&app).await;
    app.task_status(&task, "wrapping").await;
    app.state.reconcile().await;
    app.clock.advance_millis(59_000);
    app.state.reconcile().await;
    let still = app.admin.fetch_task(&task).await.expect("task");
    assert_eq!(still.assignment_status.as_ref().map(|s| s.as_str()), Some("wrapping"), "not yet due");
    app.clock.advance_millis(1_000);
    app.state.reconcile().await;
    let done = app.task_status(&task, "completed").await;
    assert_eq!(done.reason.as_deref(), Some("Was stuck in wrapping"));
}

#[tokio::test]
async fn by_default_when_the_worker_is_offline_as_the_seed_did() {
    // The conference instruction's post-work activity is Offline, so ending the call is enough.
    let app = spawn_app().await;
    let task = call_ended(&app).await;
    let done = app.task_status(&task, "completed").await;
    assert_eq!(done.reason.as_deref(), Some("Was stuck in wrapping"));
}

#[tokio::test]
async fn not_for_workers_who_are_not_signed_in() {
    let app = spawn_app_with(|config| config.wrap_up = WrapUpPolicy::After(Duration::from_secs(1))).await;
    let task = call_ended(&app).await;
    app.task_status(&task, "wrapping").await;
    // Alice's token runs out; the task stays for her (or an administrator) to deal with.
    app.clock.advance_millis(9 * 3600 * 1000);
    app.state.reconcile().await;
    let still = app.admin.fetch_task(&task).await.expect("task");
    assert_eq!(still.assignment_status.as_ref().map(|s| s.as_str()), Some("wrapping"));
}
