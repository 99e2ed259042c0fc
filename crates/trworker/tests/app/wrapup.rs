//! Wrap-up after a call: its countdown (enforced by the server, whose clock is the app's), "Extend",
//! "Complete" with a disposition and notes saved on the task, and one completion per task.

use std::time::Duration;

use serde_json::json;
use trworker::app::WrapUpPolicy;

use crate::helpers::{spawn_app, spawn_app_with, TestApp};

/// Alice signs in, takes a call and its conference ends: the task is wrapping (unless the policy already
/// acted). Her token and the task.
async fn call_ended(app: &TestApp) -> (String, String) {
    let token = app.sign_in("alice").await;
    let task = app.on_call(&token, &app.alice, "+15551230006").await;
    let (status, body) = app.post(&format!("/api/conferences/{}/end", task.sid), &token, json!({})).await;
    assert_eq!(status, 200, "{body}");
    (token, task.sid)
}

async fn status_now(app: &TestApp, task: &str) -> String {
    let task = app.admin.fetch_task(task).await.expect("task");
    task.assignment_status.map(|s| s.as_str().to_owned()).unwrap_or_default()
}

#[tokio::test]
async fn by_default_the_server_completes_the_task_a_minute_after_the_call() {
    let app = spawn_app().await;
    let (_, task) = call_ended(&app).await;
    app.task_status(&task, "wrapping").await;
    app.state.reconcile().await;
    // 60 s of countdown, then a 5 s grace for an open page to complete with its notes first.
    app.clock.advance_millis(64_000);
    app.state.reconcile().await;
    assert_eq!(status_now(&app, &task).await, "wrapping", "not yet due");
    app.clock.advance_millis(1_000);
    app.state.reconcile().await;
    app.completed_for(&task, "Was stuck in wrapping").await;
}

#[tokio::test]
async fn the_state_shows_the_countdown_and_extend_moves_it_up_to_the_limit() {
    let app = spawn_app_with(|config| config.wrap_up = WrapUpPolicy::seconds(30)).await;
    let (token, task) = call_ended(&app).await;
    app.task_status(&task, "wrapping").await;
    let mut socket = app.socket(&token, None).await;
    let state =
        socket.state_where("a wrapping reservation", |s| s["reservations"][0]["status"] == "wrapping").await;
    assert_eq!(state["reservations"][0]["task"]["queue"], "support", "the page shows the queue");
    let wrap_up = &state["reservations"][0]["wrap_up"];
    let started = wrap_up["started_at"].as_i64().expect("started_at");
    assert_eq!(wrap_up["ends_at"].as_i64(), Some(started + 30_000));
    assert_eq!(wrap_up["limit_at"].as_i64(), Some(started + 600_000), "ten minutes at most");

    let extend = format!("/api/tasks/{task}/wrap-up/extend");
    let (status, body) = app.post(&extend, &token, json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["wrap_up"]["ends_at"].as_i64(), Some(started + 90_000), "a minute more");
    socket
        .state_where("the extended countdown", |s| {
            s["reservations"][0]["wrap_up"]["ends_at"].as_i64() == Some(started + 90_000)
        })
        .await;
    for _ in 0..9 {
        app.post(&extend, &token, json!({})).await;
    }
    let (status, body) = app.post(&extend, &token, json!({})).await;
    assert_eq!(status, 409, "{body}");
    assert!(body["error"]["message"].as_str().unwrap_or_default().contains("10 minutes"), "{body}");

    // The extended time is the server's too.
    app.clock.advance_millis(100_000);
    app.state.reconcile().await;
    assert_eq!(status_now(&app, &task).await, "wrapping");

    // Someone else's task is not Alice's to extend.
    let bob = app.sign_in("bob").await;
    let (status, _) = app.post(&extend, &bob, json!({})).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn complete_saves_the_disposition_and_notes_on_the_task() {
    let app = spawn_app().await;
    let (token, task) = call_ended(&app).await;
    app.task_status(&task, "wrapping").await;
    let notes = "Wants a callback on Monday. \u{202e}RTL and \u{0007} stay as sent.";
    let (status, body) = app
        .post(
            &format!("/api/tasks/{task}/complete"),
            &token,
            json!({ "disposition": "Follow-up needed", "notes": notes }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let done = app.completed_for(&task, "Completed by the worker").await;
    let attributes = done.attributes_json().expect("attributes");
    assert_eq!(attributes["wrap_up"], json!({ "disposition": "Follow-up needed", "notes": notes }));
    assert_eq!(attributes["from"], "+15551230006", "the call's attributes are kept");

    // Completing again is harmless without notes, and says the notes were not saved with them.
    let (status, _) = app.post(&format!("/api/tasks/{task}/complete"), &token, json!({})).await;
    assert_eq!(status, 200);
    let (status, body) =
        app.post(&format!("/api/tasks/{task}/complete"), &token, json!({ "notes": "late" })).await;
    assert_eq!(status, 409, "{body}");
}

#[tokio::test]
async fn notes_over_the_attribute_limit_are_refused_before_anything_changes() {
    let app = spawn_app().await;
    let (token, task) = call_ended(&app).await;
    app.task_status(&task, "wrapping").await;
    let (status, body) =
        app.post(&format!("/api/tasks/{task}/complete"), &token, json!({ "notes": "n".repeat(4_100) })).await;
    assert_eq!(status, 400, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("4096") && message.contains("Shorten them by"), "{message}");
    assert_eq!(status_now(&app, &task).await, "wrapping", "nothing was completed");
    let (status, body) = app
        .post(&format!("/api/tasks/{task}/complete"), &token, json!({ "disposition": "d".repeat(101) }))
        .await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn not_for_workers_who_are_not_signed_in() {
    let app = spawn_app_with(|config| config.wrap_up = WrapUpPolicy::seconds(1)).await;
    let (_, task) = call_ended(&app).await;
    app.task_status(&task, "wrapping").await;
    // Alice's token runs out; the task stays for her (or an administrator) to deal with.
    app.clock.advance_millis(9 * 3600 * 1000);
    app.state.reconcile().await;
    assert_eq!(status_now(&app, &task).await, "wrapping");
}

/// What the app logs while it is held, as text (current-thread runtime: the app's tasks log on this thread).
struct Logs {
    text: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

impl Logs {
    fn capture() -> Logs {
        let text = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = text.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .with_writer(move || Sink(sink.clone()))
            .finish();
        Logs { text, _guard: tracing::subscriber::set_default(subscriber) }
    }

    fn lines_with(&self, needle: &str) -> usize {
        let text = self.text.lock().map(|t| String::from_utf8_lossy(&t).into_owned()).unwrap_or_default();
        text.lines().filter(|line| line.contains(needle)).count()
    }
}

struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut text) = self.0.lock() {
            text.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_call_end_completes_the_task_once_without_a_warning() {
    // Without a countdown the task is completed as soon as the call ends. The end of a call brings
    // task.wrapup, reservation.wrapup and worker.activity.update at once; each used to start a check that
    // read the task as wrapping and then tried to complete it.
    let logs = Logs::capture();
    let app = spawn_app_with(|config| config.wrap_up = WrapUpPolicy::seconds(0)).await;
    let (_, task) = call_ended(&app).await;
    app.task_status(&task, "completed").await;
    // Every check the events started has run by now (each is a few local requests).
    tokio::time::sleep(Duration::from_millis(500)).await;
    app.state.reconcile().await;
    assert_eq!(logs.lines_with("could not complete"), 0, "a second completion was tried");
    assert_eq!(logs.lines_with("completed a task stuck in wrapping"), 1);
}
