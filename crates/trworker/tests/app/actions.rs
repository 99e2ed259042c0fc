//! The bearer actions: activity, accept -> conference -> end -> wrapping -> complete, reject, and the rule
//! that a worker acts only on itself.

use serde_json::json;
use twilio::models::{Reservation, ReservationStatus, Task};

use crate::helpers::{spawn_app, TestApp};

/// Posts the worker's `action` on `task` (`complete`, `fix-wrapping`) and checks that it answers the task
/// completed, and that the task was completed for `reason`.
async fn completes(app: &TestApp, token: &str, task: &str, action: &str, reason: &str) {
    let (status, body) = app.post(&format!("/api/tasks/{task}/{action}"), token, json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["assignment_status"], "completed");
    app.completed_for(task, reason).await;
}

/// Alice and bob signed in, and a call from `from` offered to alice: their tokens, the task and alice's
/// reservation.
async fn alice_offered_a_call(app: &TestApp, from: &str) -> (String, String, Task, Reservation) {
    let alice = app.sign_in("alice").await;
    let bob = app.sign_in("bob").await;
    let (task, reservation) = app.offer_call(&alice, &app.alice, from).await;
    (alice, bob, task, reservation)
}

#[tokio::test]
async fn a_worker_changes_its_activity() {
    let app = spawn_app().await;
    let token = app.sign_in("alice").await;
    let worker = app.set_activity(&token, "Available").await;
    assert_eq!(worker["sid"], app.alice.as_str());
    assert_eq!(worker["activity_name"], "Available");
    assert_eq!(worker["available"], true);
    assert_eq!(app.worker_activity(&app.alice).await, "Available");

    let (status, body) = app.post("/api/worker/activity", &token, json!({})).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = app.post("/api/worker/activity", &token, json!({ "activity_sid": "WAnope" })).await;
    assert!(status == 409 || status == 404, "TaskRouter refuses an unknown activity: {status} {body}");
    assert!(body["error"]["message"].is_string(), "{body}");
}

#[tokio::test]
async fn accept_conference_end_wrapping_complete() {
    let app = spawn_app().await;
    let token = app.sign_in("alice").await;
    let (task, reservation) = app.offer_call(&token, &app.alice, "+15551230001").await;
    assert_eq!(reservation.task_sid.as_deref(), Some(task.sid.as_str()));

    let (status, body) = app.accept(&token, &reservation.sid).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["sid"], reservation.sid.as_str());
    let assigned = app.task_status(&task.sid, "assigned").await;
    assert_eq!(app.worker_activity(&app.alice).await, "Unavailable", "busy while on the call");
    let attributes = assigned.attributes_json().expect("attributes");
    let conference = attributes["conference"]["sid"].as_str().expect("conference.sid written").to_owned();

    // By name (the task SID), as the seed's page did.
    let (status, body) = app.post(&format!("/api/conferences/{}/end", task.sid), &token, json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["sid"], conference.as_str());
    assert_eq!(body["status"], "completed");
    app.task_status(&task.sid, "wrapping").await;
    assert_eq!(app.worker_activity(&app.alice).await, "Offline", "PostWorkActivitySid is Offline");

    completes(&app, &token, &task.sid, "complete", "Completed by the worker").await;
}

#[tokio::test]
async fn a_worker_rejects_and_names_its_next_activity() {
    let app = spawn_app().await;
    let token = app.sign_in("alice").await;
    let (task, reservation) = app.offer_call(&token, &app.alice, "+15551230002").await;
    let (status, body) = app.reject(&token, &reservation.sid, Some("Offline")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "rejected");
    assert_eq!(app.worker_activity(&app.alice).await, "Offline");
    let task = app.admin.fetch_task(&task.sid).await.expect("task");
    assert_ne!(task.assignment_status.as_ref().map(|s| s.as_str()), Some("assigned"));

    // Rejecting it again: TaskRouter refuses, the app says so with a 4xx.
    let (status, body) = app.reject(&token, &reservation.sid, None).await;
    assert_eq!(status, 409, "{body}");
}

#[tokio::test]
async fn a_worker_may_not_act_on_another_workers_call() {
    let app = spawn_app().await;
    let (alice, bob, task, reservation) = alice_offered_a_call(&app, "+15551230003").await;

    for verb in ["accept", "reject"] {
        let (status, body) =
            app.post(&format!("/api/reservations/{}/{verb}", reservation.sid), &bob, json!({})).await;
        assert_eq!(status, 403, "{verb}: {body}");
        assert!(body["error"]["message"].is_string());
    }
    let (status, _) =
        app.post("/api/reservations/WR0000000000000000000000000000beef/accept", &bob, json!({})).await;
    assert_eq!(status, 403, "a reservation that does not exist is not bob's either");

    let (status, _) = app.accept(&alice, &reservation.sid).await;
    assert_eq!(status, 200);
    app.task_status(&task.sid, "assigned").await;
    for path in [
        format!("/api/tasks/{}/complete", task.sid),
        format!("/api/tasks/{}/fix-wrapping", task.sid),
        format!("/api/conferences/{}/end", task.sid),
    ] {
        let (status, body) = app.post(&path, &bob, json!({})).await;
        assert_eq!(status, 403, "{path}: {body}");
    }
    // Nothing happened to alice's call.
    assert_eq!(
        app.admin.fetch_task(&task.sid).await.expect("task").assignment_status.as_ref().map(|s| s.as_str()),
        Some("assigned")
    );
    // Without a token at all: 401.
    let response = app
        .http
        .post(app.url(&format!("/api/tasks/{}/complete", task.sid)))
        .json(&json!({}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 401);
}

#[tokio::test]
async fn fix_wrapping_completes_only_a_wrapping_task() {
    let app = spawn_app().await;
    let token = app.sign_in("alice").await;
    let task = app.on_call(&token, &app.alice, "+15551230004").await;

    let (status, body) = app.post(&format!("/api/tasks/{}/fix-wrapping", task.sid), &token, json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["assignment_status"], "assigned", "not wrapping: left alone");

    app.post(&format!("/api/conferences/{}/end", task.sid), &token, json!({})).await;
    app.task_status(&task.sid, "wrapping").await;
    completes(&app, &token, &task.sid, "fix-wrapping", "Was stuck in wrapping").await;
}

#[tokio::test]
async fn twilio_failures_are_502_with_a_message() {
    // Nobody listens there.
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", dead.local_addr().expect("addr"));
    drop(dead);
    let (base, state, _server) = crate::helpers::spawn_detached(&url).await;
    let http = reqwest::Client::new();
    let response = http.get(format!("{base}/api/workspace")).send().await.expect("request");
    assert_eq!(response.status().as_u16(), 502);
    let body: serde_json::Value = response.json().await.expect("json");
    let message = body["error"]["message"].as_str().expect("message");
    assert!(message.contains("Could not read the workspace"), "{message}");
    assert!(!message.contains("secret"), "{message}");

    let response = http
        .post(format!("{base}/api/token"))
        .json(&json!({ "identity": "alice", "password": crate::helpers::PASSWORD }))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 502);

    let token = twilio::token::WorkerCapability::new(
        &state.config().account_sid,
        &state.config().auth_token,
        &state.config().workspace_sid,
        "WK0000000000000000000000000000a001",
    )
    // Issued a little earlier, so it is valid on the app's clock too.
    .to_jwt(engine::Clock::now(&engine::SystemClock).secs() as u64 - 5)
    .expect("jwt");
    let response = http
        .post(format!("{base}/api/reservations/WR0000000000000000000000000000a001/accept"))
        .bearer_auth(&token)
        .json(&json!({}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 502);

    let response = http.get(format!("{base}/getTrActivites.php")).send().await.expect("request");
    assert_eq!(response.status().as_u16(), 502);
    assert_eq!(response.text().await.expect("text"), "0");
}

#[tokio::test]
async fn a_worker_who_was_only_offered_a_task_cannot_act_on_it_later() {
    let app = spawn_app().await;
    let (alice, bob, task, offered) = alice_offered_a_call(&app, "+15551230009").await;
    let (status, body) = app.reject(&alice, &offered.sid, Some("Offline")).await;
    assert_eq!(status, 200, "{body}");
    app.set_activity(&bob, "Available").await;
    let reservation = app.reservation(&app.bob, ReservationStatus::Pending).await;
    assert_eq!(app.accept(&bob, &reservation.sid).await.0, 200);
    app.task_status(&task.sid, "assigned").await;

    // Alice's rejected reservation for the task does not make it hers.
    for path in [format!("/api/tasks/{}/complete", task.sid), format!("/api/conferences/{}/end", task.sid)] {
        let (status, body) = app.post(&path, &alice, json!({})).await;
        assert_eq!(status, 403, "{path}: {body}");
    }
    let (status, _) = app.post(&format!("/api/tasks/{}/fix-wrapping", task.sid), &alice, json!({})).await;
    assert_eq!(status, 403);
    // Bob's call goes on.
    let task = app.admin.fetch_task(&task.sid).await.expect("task");
    assert_eq!(task.assignment_status.as_ref().map(|s| s.as_str()), Some("assigned"));
}

#[tokio::test]
async fn malformed_sids_are_the_callers_mistake() {
    let app = spawn_app().await;
    let token = app.sign_in("alice").await;
    for path in [
        "/api/reservations/WRnope/accept",
        "/api/reservations/not-a-sid/reject",
        "/api/tasks/WT0123/complete",
        "/api/tasks/WTzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz/fix-wrapping",
        "/api/conferences/CFzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz/end",
    ] {
        let (status, body) = app.post(path, &token, json!({})).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("32 hexadecimal")), "{body}");
    }
}
