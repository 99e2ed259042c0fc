//! The WebSocket: state on connect, events and states pushed, reconnect with the last sequence number,
//! several sockets of one worker, refused tokens.

use serde_json::{json, Value};
use trworker::app::{EventIntake, TaskRouterEvent};

use crate::helpers::{spawn_app, spawn_app_with, texts};

/// Only the events these tests feed in reach the app: the upstream's callbacks are signed for another
/// URL and refused.
/// No events reach the app but those a test feeds in: webhooks are signed for another URL, and there are
/// no event channels.
fn webhooks_elsewhere(config: &mut trworker::app::AppConfig) {
    config.public_url = "https://elsewhere.example".into();
    config.event_source = Some(trworker::app::channels::Source::Off);
}

fn pending(state: &Value) -> Option<&Value> {
    state["reservations"].as_array()?.iter().find(|r| r["status"] == "pending")
}

#[tokio::test]
async fn a_socket_gets_the_state_then_the_call_as_an_event_frame() {
    let app = spawn_app().await;
    let token = app.sign_in("alice").await;
    let mut socket = app.socket(&token, None).await;
    let first = socket.next().await.expect("state");
    assert_eq!(first["type"], "state", "{first}");
    assert_eq!(first["worker"]["sid"], app.alice.as_str());
    assert_eq!(first["worker"]["activity_name"], "Offline");
    assert!(
        first["worker"]["activity_changed_at"].is_number()
            || first["worker"]["activity_changed_at"].is_null()
    );
    assert_eq!(first["reservations"], json!([]));
    assert_eq!(first["conference"], Value::Null);
    assert!(first["seq"].is_u64() && first["server_time"].is_i64());

    app.set_activity(&token, "Available").await;
    socket.state_where("Available", |s| s["worker"]["activity_name"] == "Available").await;

    // Reconciliation (the background loop's first round, or a workflow event) loads the workflows'
    // reservation timeouts.
    app.state.reconcile().await;
    let task = app.incoming_call("+15551239999").await;
    // The event frame alone shows the call: no state needs to follow it.
    let event = socket.until("the call", |m| m["event_type"] == "reservation.created").await;
    assert!(event["seq"].as_u64() > first["seq"].as_u64(), "{event}");
    assert!(event["at"].is_i64() && event["description"].is_string(), "{event}");
    let reservation = &event["reservation"];
    assert!(reservation["sid"].as_str().is_some_and(|s| s.starts_with("WR")));
    assert_eq!(reservation["status"], "pending");
    assert_eq!(reservation["task"]["sid"], task.sid.as_str());
    assert_eq!(reservation["task"]["attributes"]["from"], "+15551239999");
    assert!(reservation["task"]["priority"].is_i64() && reservation["task"]["age"].is_u64());
    let created = reservation["created_at"].as_i64().expect("created_at");
    assert_eq!(reservation["timeout_at"].as_i64(), Some(created + 10_000), "the workflow's 10 s timeout");

    // Accept: the state shows the conference with both legs.
    let sid = reservation["sid"].as_str().expect("sid").to_owned();
    let (status, body) = app.accept(&token, &sid).await;
    assert_eq!(status, 200, "{body}");
    let state = socket.state_where("a conference", |s| s["conference"].is_object()).await;
    let conference = &state["conference"];
    assert!(conference["sid"].as_str().is_some_and(|s| s.starts_with("CF")), "{conference}");
    assert_eq!(conference["friendly_name"], task.sid.as_str());
    assert!(conference["started_at"].is_i64(), "{conference}");
    let roles = texts(&conference["participants"], "role");
    assert!(roles.contains(&"customer"), "{conference}");
}

#[tokio::test]
async fn a_reconnecting_socket_gets_what_it_missed() {
    let app = spawn_app_with(webhooks_elsewhere).await;
    let token = app.sign_in("alice").await;
    let mut socket = app.socket(&token, None).await;
    let first = socket.next().await.expect("state");
    let seq = first["seq"].as_u64().expect("seq");
    drop(socket);

    // Two events while away, fed through the intake as the webhook would.
    for description in ["one", "two"] {
        app.state.ingest(TaskRouterEvent {
            event_type: "worker.attributes.update".into(),
            description: description.into(),
            at_ms: Some(1),
            worker_sid: Some(app.alice.clone()),
            ..Default::default()
        });
    }
    let mut socket = app.socket(&token, Some(seq)).await;
    let one = socket.next().await.expect("missed event");
    let two = socket.next().await.expect("missed event");
    assert_eq!((one["type"].as_str(), one["description"].as_str()), (Some("event"), Some("one")));
    assert_eq!(two["description"], "two");
    assert_eq!(one["seq"].as_u64(), Some(seq + 1));
    assert_eq!(two["seq"].as_u64(), Some(seq + 2));
    let state = socket.next().await.expect("state");
    assert_eq!(state["type"], "state");
    assert_eq!(state["seq"].as_u64(), Some(seq + 2));

    // A number the buffer cannot serve (from an earlier server, or too old): just a fresh state.
    let mut socket = app.socket(&token, Some(3)).await;
    assert_eq!(socket.next().await.expect("state")["type"], "state");
    let mut socket = app.socket(&token, Some(u64::MAX / 2)).await;
    assert_eq!(socket.next().await.expect("state")["type"], "state");
}

#[tokio::test]
async fn every_socket_of_a_worker_gets_the_same_pushes() {
    let app = spawn_app().await;
    let token = app.sign_in("alice").await;
    let mut one = app.socket(&token, None).await;
    let mut two = app.socket(&token, None).await;
    one.next().await.expect("state");
    two.next().await.expect("state");
    let (bob, mut bobs) = app.connect("bob").await;

    app.set_activity(&token, "Available").await;
    for socket in [&mut one, &mut two] {
        socket.state_where("Available", |s| s["worker"]["activity_name"] == "Available").await;
    }
    // Bob's socket hears nothing of alice: the next thing it gets is its own change.
    app.set_activity(&bob, "Unavailable").await;
    let next = bobs.until("bob's state", |m| m["type"] == "state").await;
    assert_eq!(next["worker"]["sid"], app.bob.as_str());
    assert_eq!(next["worker"]["activity_name"], "Unavailable");
}

#[tokio::test]
async fn a_bad_token_or_hello_is_refused() {
    let app = spawn_app().await;
    let mut socket = app.socket("not-a-token", None).await;
    let error = socket.next().await.expect("error message");
    assert_eq!(error["type"], "error");
    assert!(error["message"].is_string());
    assert_eq!(socket.next().await.err(), Some(Some(4401)));

    // A token of another workspace (same secret) is refused too.
    let elsewhere = twilio::token::WorkerCapability::new(
        &app.upstream.account_sid,
        &app.upstream.auth_token,
        "WS0000000000000000000000000000dead",
        &app.alice,
    )
    .to_jwt(engine::Clock::now(app.clock.as_ref()).secs() as u64)
    .expect("jwt");
    let mut socket = app.socket(&elsewhere, None).await;
    assert_eq!(socket.next().await.expect("error")["type"], "error");
    assert_eq!(socket.next().await.err(), Some(Some(4401)));
}

#[tokio::test]
async fn shutdown_is_announced() {
    let app = spawn_app().await;
    let (_, mut socket) = app.connect("alice").await;
    app.state.shutdown();
    let message = socket.until("shutdown", |m| m["type"] == "shutdown").await;
    assert_eq!(message, json!({ "type": "shutdown" }));
}

fn event(event_type: &str, worker: Option<&str>, task: &str) -> TaskRouterEvent {
    TaskRouterEvent {
        event_type: event_type.into(),
        description: format!("{event_type} of {task}"),
        at_ms: None,
        worker_sid: worker.map(str::to_owned),
        task_sid: Some(task.into()),
        ..Default::default()
    }
}

#[tokio::test]
async fn task_events_reach_the_worker_the_task_was_reserved_for() {
    let app = spawn_app_with(webhooks_elsewhere).await;
    let (_, mut socket) = app.connect("alice").await;
    let task = "WT00000000000000000000000000000abc";
    app.state.ingest(event("reservation.created", Some(&app.alice), task));
    // Task events carry no worker: the app remembers whose task it is.
    app.state.ingest(event("task.updated", None, task));
    app.state.ingest(event("task.completed", None, task));
    app.state.ingest(event("task.updated", None, task));
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let message = socket.until("an event", |m| m["type"] == "event").await;
        seen.push(message["event_type"].as_str().unwrap_or_default().to_owned());
    }
    assert_eq!(seen, ["reservation.created", "task.updated", "task.completed"]);
    // After completion the task is forgotten: a later event for it goes nowhere. Prove it with a marker.
    app.state.ingest(TaskRouterEvent { worker_sid: Some(app.alice.clone()), ..event("marker", None, "WT1") });
    let next = socket.until("the marker", |m| m["type"] == "event").await;
    assert_eq!(next["event_type"], "marker");
}

#[tokio::test]
async fn a_socket_lives_as_long_as_its_latest_token() {
    let app = spawn_app_with(webhooks_elsewhere).await;
    let (token, mut socket) = app.connect("alice").await;
    let poke = |description: &str| TaskRouterEvent {
        worker_sid: Some(app.alice.clone()),
        description: description.into(),
        ..event("worker.attributes.update", None, "WT1")
    };

    app.clock.advance_millis(3600 * 1000);
    let (status, body) = app.post("/api/token/refresh", &token, json!({})).await;
    assert_eq!(status, 200, "{body}");
    let fresh = body["token"].as_str().expect("token").to_owned();
    let hello = json!({ "type": "hello", "token": fresh, "last_seq": null }).to_string();
    futures_util::SinkExt::send(
        &mut socket.stream,
        tokio_tungstenite::tungstenite::Message::Text(hello.into()),
    )
    .await
    .expect("send");
    socket.until("the acknowledging state", |m| m["type"] == "state").await;

    // Past the first token's expiry, within the second's: still open.
    app.clock.advance_millis(7 * 3600 * 1000 + 1000);
    app.state.ingest(poke("still here"));
    let message = socket.until("an event", |m| m["type"] == "event").await;
    assert_eq!(message["description"], "still here");

    // Past the second's: told, then closed with 4401.
    app.clock.advance_millis(3600 * 1000);
    app.state.ingest(poke("last one"));
    let error = socket.until("the expiry", |m| m["type"] == "error").await;
    assert!(error["message"].as_str().is_some_and(|m| m.contains("expired")), "{error}");
    assert_eq!(socket.next().await.err(), Some(Some(4401)));
}

#[tokio::test]
async fn a_call_frame_carries_the_reservation_as_the_state_shows_it() {
    let app = spawn_app().await;
    // Alice's call makes the app learn the workflow's reservation timeout (from the state it rebuilds).
    let (alice, mut alices) = app.connect("alice").await;
    app.set_activity(&alice, "Available").await;
    app.incoming_call("+15551230001").await;
    alices.state_where("alice's call", |s| pending(s).is_some()).await;

    let (bob, mut bobs) = app.connect("bob").await;
    app.set_activity(&bob, "Available").await;
    bobs.state_where("Available", |s| s["worker"]["activity_name"] == "Available").await;
    let task = app.incoming_call("+15551230002").await;
    let frame = bobs.until("bob's call", |m| m["event_type"] == "reservation.created").await;
    assert_eq!(frame["task_sid"], task.sid.as_str(), "{frame}");
    assert_eq!(frame["worker_sid"], app.bob.as_str(), "{frame}");
    let reservation = &frame["reservation"];
    assert_eq!(frame["reservation_sid"], reservation["sid"], "{frame}");
    assert_eq!(reservation["status"], "pending", "{frame}");
    assert_eq!(reservation["task"]["sid"], task.sid.as_str(), "{frame}");
    assert_eq!(reservation["task"]["attributes"]["from"], "+15551230002", "{frame}");
    let created = reservation["created_at"].as_i64().expect("created_at");
    assert_eq!(reservation["timeout_at"].as_i64(), Some(created + 10_000), "the workflow's 10 s: {frame}");

    // A state rebuilt over REST (a new socket's first) shows the same reservation.
    let mut fresh = app.socket(&bob, None).await;
    let state = fresh.next().await.expect("state");
    let item = pending(&state).expect("the reservation in the state");
    assert_eq!(item["sid"], reservation["sid"]);
    for field in ["sid", "attributes", "priority", "assignment_status"] {
        assert_eq!(item["task"][field], reservation["task"][field], "task.{field}: {item} vs {reservation}");
    }
    // The state's dates come from ISO-8601 seconds, the event's from its millisecond timestamp.
    let state_created = item["created_at"].as_i64().expect("created_at");
    assert!((created - state_created).abs() < 1000, "{created} vs {state_created}");
}

#[tokio::test]
async fn reconciliation_corrects_what_a_frame_alone_said() {
    let app = spawn_app_with(webhooks_elsewhere).await;
    // A state with bob's pending reservation teaches the app the workflow's reservation timeout.
    let bob = app.sign_in("bob").await;
    app.offer_call(&bob, &app.bob, "+15551230003").await;
    let mut bobs = app.socket(&bob, None).await;
    assert!(pending(&bobs.next().await.expect("state")).is_some());

    let alice = app.sign_in("alice").await;
    let mut socket = app.socket(&alice, None).await;
    let first = socket.next().await.expect("state");
    assert_eq!(first["reservations"], json!([]));
    // A reservation.created the engine never made (as if a webhook were forged past the signature, or the
    // reservation were gone before the app heard of it): its frame is complete, so no state follows.
    app.state.ingest(TaskRouterEvent {
        event_type: "reservation.created".into(),
        description: "phantom".into(),
        worker_sid: Some(app.alice.clone()),
        task_sid: Some("WT0000000000000000000000000000dead".into()),
        reservation_sid: Some("WR0000000000000000000000000000dead".into()),
        task_attributes: Some(r#"{"from":"+15550000000"}"#.into()),
        workflow_sid: Some(app.workflow_sid.clone()),
        ..Default::default()
    });
    let frame = socket.until("the phantom", |m| m["type"] == "event").await;
    assert!(frame["reservation"]["timeout_at"].is_i64(), "a complete frame: {frame}");
    // Reconciliation rebuilds alice's state, equal to the last one pushed, and sends it all the same: the
    // page had been told otherwise by the frame.
    app.state.reconcile().await;
    let next = socket.next().await.expect("the reconciled state");
    assert_eq!(next["type"], "state", "{next}");
    assert_eq!(next["reservations"], json!([]), "{next}");
    assert!(next["seq"].as_u64() >= frame["seq"].as_u64(), "the state reflects the frame's event: {next}");
}

#[tokio::test]
async fn a_new_workflows_timeout_reaches_the_first_frame_of_its_calls() {
    let app = spawn_app_with(webhooks_elsewhere).await;
    let existing = app.admin.list_workflows(&Default::default()).all().await.expect("workflows");
    let configuration = existing.first().expect("the seeded workflow").configuration_json().expect("JSON");
    let workflow = app
        .admin
        .create_workflow(&twilio::client::taskrouter::CreateWorkflow {
            friendly_name: "slow answers".into(),
            configuration,
            task_reservation_timeout: Some(42),
            ..Default::default()
        })
        .await
        .expect("create workflow");
    // Reconciliation reloads the workflows (so do workflow events, which this app does not receive here).
    app.state.reconcile().await;

    let (bob, mut bobs) = app.connect("bob").await;
    app.set_activity(&bob, "Available").await;
    bobs.state_where("Available", |s| s["worker"]["activity_name"] == "Available").await;
    let task = app
        .admin
        .create_task(&twilio::client::taskrouter::CreateTask {
            attributes: Some(json!({ "from": "+15551230042" })),
            workflow_sid: Some(workflow.sid.clone()),
            ..Default::default()
        })
        .await
        .expect("create task");
    let reservation = app.reservation(&app.bob, twilio::models::ReservationStatus::Pending).await;
    // What the engine would have sent, fed in as the webhook would.
    app.state.ingest(TaskRouterEvent {
        event_type: "reservation.created".into(),
        description: "bob's call".into(),
        at_ms: Some(1_000),
        worker_sid: Some(app.bob.clone()),
        task_sid: Some(task.sid.clone()),
        reservation_sid: Some(reservation.sid.clone()),
        task_attributes: Some(r#"{"from":"+15551230042"}"#.into()),
        workflow_sid: Some(workflow.sid.clone()),
        ..Default::default()
    });
    let frame = bobs.until("bob's call", |m| m["event_type"] == "reservation.created").await;
    assert_eq!(frame["reservation"]["timeout_at"].as_i64(), Some(43_000), "{frame}");
}
