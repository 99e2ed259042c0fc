//! `worker_feed::WorkspaceFeed`, the v1 workspace channel in process: the same events as the bridge's
//! workspace channel, in the same order, each naming the same resource.

use serde_json::Value;
use twilio::token::ChannelCapability;
use twilio_server::worker_feed::WorkspaceFeed;
use twilio_server::ServerState;

use crate::bridge::{next_event, Socket};
use crate::helpers::{credentials, spawn_app, ACCOUNT, NOW, TOKEN};

/// The next event frame's type and its payload's `sid` (heartbeats are skipped by `next_event`).
async fn next_frame(socket: &mut Socket) -> (String, String) {
    let frame = next_event(socket).await;
    assert!(frame.get("close").is_none(), "the channel closed: {frame}");
    let sid = |v: &Value| v["payload"]["sid"].as_str().unwrap_or_default().to_owned();
    (frame["event_type"].as_str().unwrap_or_default().to_owned(), sid(&frame))
}

#[tokio::test]
async fn the_feed_sends_what_the_workspace_channel_sends() {
    let app = spawn_app().await;
    let (ws, _, [alice]) = app.staffed_centre(["alice"]).await;

    let state = ServerState::new(app.engine.clone(), credentials(), &app.base);
    let mut feed = WorkspaceFeed::durable(state, ws.parse().unwrap());
    let token = ChannelCapability::workspace(ACCOUNT, TOKEN, &ws).to_jwt(NOW).unwrap();
    let url = format!("{}/v1/wschannels/{ACCOUNT}/{ws}?token={token}", app.base).replacen("http", "ws", 1);
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();

    // A call is routed to alice, who then goes offline: task, queue, reservation and worker events.
    app.task(&ws).await;
    app.move_worker(&ws, &alice, "Offline").await;

    let mut seen = Vec::new();
    loop {
        let from_channel = next_frame(&mut socket).await;
        let event = feed.next().await.unwrap();
        let from_feed = (event.event_type, event.payload["sid"].as_str().unwrap_or_default().to_owned());
        assert_eq!(from_feed, from_channel, "after {seen:?}");
        let done = from_feed.0 == "worker.activity.update" && from_feed.1 == alice;
        seen.push(from_feed.0);
        if done {
            break;
        }
    }
    for expected in ["task.created", "task-queue.entered", "reservation.created"] {
        assert!(seen.iter().any(|s| s == expected), "{expected} in {seen:?}");
    }
}
