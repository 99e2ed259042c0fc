//! `POST /twilio/events`: signed event callbacks.

use serde_json::json;

use crate::helpers::{spawn_app_with, TestApp};

/// The app with the webhook as its only source of events (`TWILIO_EVENT_BRIDGE_URL=off`), so that these
/// tests see what the webhook brings.
async fn webhook_only() -> TestApp {
    spawn_app_with(|config| config.event_source = Some(trworker::app::channels::Source::Off)).await
}

fn form(worker: &str) -> Vec<(String, String)> {
    [
        ("EventType", "worker.attributes.update"),
        ("EventDescription", "Worker alice updated"),
        ("ResourceType", "worker"),
        ("ResourceSid", worker),
        ("WorkerSid", worker),
        ("Timestamp", "1700000000"),
        ("TimestampMs", "1700000000123"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

#[tokio::test]
async fn a_signed_event_is_taken_and_pushed_a_forged_one_is_403() {
    let app = webhook_only().await;
    let (_, mut socket) = app.connect("alice").await;

    let url = app.url("/twilio/events");
    let fields = form(&app.alice);
    let body = serde_urlencoded::to_string(&fields).expect("form");
    let post = |signature: Option<String>| {
        let mut request = app
            .http
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.clone());
        if let Some(signature) = signature {
            request = request.header("X-Twilio-Signature", signature);
        }
        request.send()
    };

    let forged = twilio::signature::sign("someone-else", &url, &fields);
    let response = post(Some(forged)).await.expect("request");
    assert_eq!(response.status().as_u16(), 403);
    let error: serde_json::Value = response.json().await.expect("json");
    assert!(error["error"]["message"].is_string());
    assert_eq!(post(None).await.expect("request").status().as_u16(), 403);
    // Signed over another URL (say, a tampered query): refused.
    let elsewhere = twilio::signature::sign(&app.upstream.auth_token, &format!("{url}?x=1"), &fields);
    assert_eq!(post(Some(elsewhere)).await.expect("request").status().as_u16(), 403);

    let good = twilio::signature::sign(&app.upstream.auth_token, &url, &fields);
    let response = post(Some(good)).await.expect("request");
    assert_eq!(response.status().as_u16(), 204);
    let event = socket
        .until("the event", |m| m["type"] == "event" && m["event_type"] == "worker.attributes.update")
        .await;
    assert_eq!(event["description"], "Worker alice updated");
    assert_eq!(event["at"], json!(1_700_000_000_123i64));
}

#[tokio::test]
async fn the_upstream_delivers_signed_events_that_reach_the_socket() {
    // The workspace's EventCallbackUrl is this app: the engine signs, the app validates.
    let app = webhook_only().await;
    let (_, mut socket) = app.connect("alice").await;
    // An activity change made behind the app's back (by an administrator) still reaches the page.
    app.admin_set_activity(&app.alice, "Available").await;
    socket
        .until("worker.activity.update", |m| {
            m["type"] == "event" && m["event_type"] == "worker.activity.update"
        })
        .await;
    socket.state_where("Available", |s| s["worker"]["activity_name"] == "Available").await;
}

#[tokio::test]
async fn reconciliation_pushes_changes_the_webhook_missed() {
    let app = spawn_app_with(|config| {
        config.event_source = Some(trworker::app::channels::Source::Off);
        // Callbacks arrive at a URL the app does not sign for, so they are all refused: only
        // reconciliation is left.
        config.public_url = "https://elsewhere.example".into();
    })
    .await;
    let (_, mut socket) = app.connect("alice").await;
    app.admin_set_activity(&app.alice, "Available").await;
    app.state.reconcile().await;
    socket.state_where("Available", |s| s["worker"]["activity_name"] == "Available").await;
}
