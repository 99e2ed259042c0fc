//! The event bridge's v1 addressing as taskrouter.js v1 uses it (eb §7): a client that opens
//! `/v1/wschannels/{AC}/{channel}` with a capability token, posts its `ready` envelope, takes its events in
//! public REST JSON and sends REST calls as envelopes naming Twilio's hosts, with the token's policies
//! enforced.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;
use twilio::token::{ChannelCapability, WorkerCapability};

use crate::bridge::{next_event, wait_for, Socket};
use crate::helpers::{spawn_bridge_app as app, TestApp, ACCOUNT, NOW, TOKEN};

/// The TaskRouter base taskrouter.js v1 puts in envelopes unless `apiBaseUrl` is given.
const TWILIO: &str = "https://taskrouter.twilio.com/v1";

/// A worker's token as the original app made it: reservation and activity updates allowed.
fn worker_token(ws: &str, wk: &str) -> String {
    WorkerCapability::new(ACCOUNT, TOKEN, ws, wk)
        .allow_activity_updates(true)
        .allow_reservation_updates(true)
        .to_jwt(NOW)
        .unwrap()
}

/// The channel's URL, as the SDK builds it from `eventBridgeBaseUrl`.
fn channel_url(app: &TestApp, channel: &str) -> String {
    format!("{}/v1/wschannels/{ACCOUNT}/{channel}", app.base)
}

async fn connect(app: &TestApp, channel: &str, token: &str, extra: &str) -> Socket {
    let url = format!("{}?token={token}&closeExistingSessions=false{extra}", channel_url(app, channel))
        .replacen("http", "ws", 1);
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

/// The upgrade's status when it is refused.
async fn refused(app: &TestApp, channel: &str, token: &str) -> u16 {
    let url = format!("{}?token={token}&closeExistingSessions=false", channel_url(app, channel))
        .replacen("http", "ws", 1);
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        other => panic!("the upgrade was not refused: {:?}", other.map(|(_, r)| r.status())),
    }
}

/// Posts an envelope to `channel`'s URL, as the SDK's XHR does (a string body, no JSON content type).
async fn envelope(app: &TestApp, channel: &str, body: Value) -> (u16, Value) {
    let response = app.client.post(channel_url(app, channel)).body(body.to_string()).send().await.unwrap();
    crate::helpers::read(response).await
}

async fn call(
    app: &TestApp,
    channel: &str,
    token: &str,
    method: &str,
    url: &str,
    params: Value,
) -> (u16, Value) {
    envelope(app, channel, json!({ "url": url, "method": method, "params": params, "token": token })).await
}

/// A workspace with the support queue and two available workers A and B; B goes offline so tasks go to A.
async fn call_centre(app: &TestApp) -> (String, String, String, String) {
    let (ws, centre, [a, b]) = app.staffed_centre(["alice", "bob"]).await;
    app.move_worker(&ws, &b, "Offline").await;
    (ws, centre.queue, a, b)
}

#[tokio::test]
async fn a_worker_gets_ready_its_reservation_and_accepts_through_the_envelope() {
    let app = app().await;
    let (ws, _, a, _) = call_centre(&app).await;
    let token = worker_token(&ws, &a);
    let mut socket = connect(&app, &a, &token, "").await;
    // A's calls through the envelope of its channel; `w` is the workspace's URL as the SDK names it.
    let w = format!("{TWILIO}/Workspaces/{ws}");
    let as_a = |method: &'static str, url: String, params: Value| {
        let (app, a, token) = (&app, &a, &token);
        async move { call(app, a, token, method, &url, params).await }
    };

    // v1's `ready`: the envelope fetches the worker and echoes the event type; no `init` frame.
    let ready = json!({"url": format!("{w}/Workers/{a}"), "method": "GET",
        "event_type": "ready", "token": token});
    let (status, body) = envelope(&app, &a, ready).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["event_type"], "ready");
    assert_eq!(body["payload"]["sid"], a.as_str());
    // Public REST JSON: ISO dates and the engine's own URLs, not the SDK v2 format.
    assert!(body["payload"]["date_created"].as_str().unwrap().contains('T'), "{body}");
    assert!(body["payload"]["url"].as_str().unwrap().starts_with(&app.base), "{body}");
    // Without `event_type` there is no echo.
    let (_, plain) = as_a("GET", format!("{w}/Workers/{a}"), json!({})).await;
    assert!(plain.get("event_type").is_none(), "{plain}");

    // A list, paged the v1 way: `meta.key` and a `next_page_url` on the engine's base, posted back as is.
    let (status, page) = as_a("GET", format!("{w}/Activities"), json!({"PageSize": 1})).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["payload"]["meta"]["key"], "activities");
    let next = page["payload"]["meta"]["next_page_url"].as_str().unwrap().to_owned();
    let (status, second) = as_a("GET", next, json!({})).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["payload"]["meta"]["page"], 1);
    assert_ne!(second["payload"]["activities"][0]["sid"], page["payload"]["activities"][0]["sid"]);

    // A task: the reservation arrives as v1 has it, the task with `reservation_sid`.
    let task = app.task(&ws).await;
    let wt = task["sid"].as_str().unwrap();
    let created = wait_for(&mut socket, "reservation.created").await;
    assert_eq!(created["sid"], wt);
    let wr = created["reservation_sid"].as_str().unwrap().to_owned();
    assert!(wr.starts_with("WR"), "{created}");
    assert!(created["attributes"].is_string(), "{created}");

    // The SDK fetches the reservation, then accepts it at the task's reservation URL.
    let reservation = format!("{w}/Tasks/{wt}/Reservations/{wr}");
    let (status, fetched) = as_a("GET", reservation.clone(), json!({})).await;
    assert_eq!(status, 200, "{fetched}");
    assert_eq!(fetched["payload"]["reservation_status"], "pending");
    let (status, accepted) = as_a("POST", reservation, json!({"ReservationStatus": "accepted"})).await;
    assert_eq!(status, 200, "{accepted}");
    assert_eq!(accepted["payload"]["reservation_status"], "accepted");
    let event = wait_for(&mut socket, "reservation.accepted").await;
    assert_eq!(event["reservation_sid"], wr.as_str());

    // The worker changes its activity (its token's post_filter needs ActivitySid); the event follows.
    let offline = app.activity(&ws, "Offline").await;
    let (status, worker) = as_a("POST", format!("{w}/Workers/{a}"), json!({"ActivitySid": offline})).await;
    assert_eq!(status, 200, "{worker}");
    let update = wait_for(&mut socket, "worker.activity.update").await;
    assert_eq!(update["activity_sid"], offline.as_str());
}

#[tokio::test]
async fn policies_keep_a_worker_to_itself() {
    let app = app().await;
    let (ws, _, a, b) = call_centre(&app).await;
    // B is available, A offline: the task's reservation is B's.
    let idle = app.move_worker(&ws, &b, "Available").await;
    app.move_worker(&ws, &a, "Offline").await;
    let task = app.task(&ws).await;
    let wt = task["sid"].as_str().unwrap();
    let wr = app.first_reservation(&ws, wt).await;
    let a_token = worker_token(&ws, &a);
    let w = format!("{TWILIO}/Workspaces/{ws}");

    for (method, url, params) in [
        ("GET", format!("{w}/Workers/{b}"), json!({})),
        ("POST", format!("{w}/Workers/{b}"), json!({"ActivitySid": idle})),
        ("GET", format!("{w}/Workers/{b}/Reservations"), json!({})),
        ("POST", format!("{w}/Tasks/{wt}/Reservations/{wr}"), json!({"ReservationStatus": "accepted"})),
        ("POST", format!("{w}/Workers/{b}/Reservations/{wr}"), json!({"ReservationStatus": "accepted"})),
        ("POST", format!("{w}/Tasks/{wt}"), json!({"AssignmentStatus": "canceled"})),
        ("GET", format!("{w}/Workers"), json!({})),
        ("DELETE", format!("{w}/Workers/{a}"), json!({})),
    ] {
        let (status, body) = call(&app, &a, &a_token, method, &url, params).await;
        assert_eq!(status, 403, "{method} {url}: {body}");
        assert!(body["message"].as_str().unwrap().contains("Forbidden"), "{body}");
    }
    let (_, r) = app.get(&format!("/v1/Workspaces/{ws}/Tasks/{wt}/Reservations/{wr}")).await;
    assert_eq!(r["reservation_status"], "pending", "nothing changed");
    let (_, worker_b) = app.get(&format!("/v1/Workspaces/{ws}/Workers/{b}")).await;
    assert_eq!(worker_b["activity_sid"], idle.as_str());

    // A's token is for A's channel: not B's, on the socket or the envelope.
    assert_eq!(refused(&app, &b, &a_token).await, 401);
    let (status, body) = call(&app, &b, &a_token, "GET", &format!("{w}/Workers/{a}"), json!({})).await;
    assert_eq!(status, 401, "{body}");

    // A token whose policies have no POST on the worker cannot update it (the reads still work).
    let read_only = WorkerCapability::new(ACCOUNT, TOKEN, &ws, &a).to_jwt(NOW).unwrap();
    let (status, body) =
        call(&app, &a, &read_only, "POST", &format!("{w}/Workers/{a}"), json!({"ActivitySid": idle})).await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = call(&app, &a, &read_only, "GET", &format!("{w}/Workers/{a}"), json!({})).await;
    assert_eq!(status, 200);
    // With activity updates allowed, the post_filter still needs an ActivitySid.
    let (status, body) =
        call(&app, &a, &a_token, "POST", &format!("{w}/Workers/{a}"), json!({"Attributes": "{}"})).await;
    assert_eq!(status, 403, "{body}");
}

#[tokio::test]
async fn queue_and_workspace_channels_get_their_events() {
    let app = app().await;
    let (ws, queue, a, _) = call_centre(&app).await;
    let queue_token = ChannelCapability::task_queue(ACCOUNT, TOKEN, &ws, &queue).to_jwt(NOW).unwrap();
    let ws_token =
        ChannelCapability::workspace(ACCOUNT, TOKEN, &ws).allow_fetch_subresources().to_jwt(NOW).unwrap();
    let mut queue_socket = connect(&app, &queue, &queue_token, "").await;
    let mut ws_socket = connect(&app, &ws, &ws_token, "").await;

    // Each `ready` fetches the channel's resource (the Workspace asks for `{ws}/`).
    let ready = |url: String, token: &str| json!({"url": url, "method": "GET", "event_type": "ready", "token": token});
    let (status, body) =
        envelope(&app, &queue, ready(format!("{TWILIO}/Workspaces/{ws}/TaskQueues/{queue}"), &queue_token))
            .await;
    assert_eq!((status, body["payload"]["sid"].as_str()), (200, Some(queue.as_str())), "{body}");
    let (status, body) = envelope(&app, &ws, ready(format!("{TWILIO}/Workspaces/{ws}/"), &ws_token)).await;
    assert_eq!((status, body["payload"]["sid"].as_str()), (200, Some(ws.as_str())), "{body}");
    // The workspace token may read below the workspace; the queue token may not.
    let (status, _) =
        call(&app, &ws, &ws_token, "GET", &format!("{TWILIO}/Workspaces/{ws}/Workers"), json!({})).await;
    assert_eq!(status, 200);
    let (status, _) =
        call(&app, &queue, &queue_token, "GET", &format!("{TWILIO}/Workspaces/{ws}/Workers"), json!({}))
            .await;
    assert_eq!(status, 403);

    let task = app.task(&ws).await;
    let wt = task["sid"].as_str().unwrap();
    // The queue's channel hears of the task once it is in the queue (`task.created` comes before that).
    let entered = wait_for(&mut queue_socket, "task-queue.entered").await;
    assert_eq!(entered["sid"], wt);
    let reservation = wait_for(&mut queue_socket, "reservation.created").await;
    assert!(reservation["sid"].as_str().unwrap().starts_with("WR"), "{reservation}");
    assert_eq!(reservation["task_sid"], wt);
    assert_eq!(reservation["worker_sid"], a.as_str());

    let created = wait_for(&mut ws_socket, "task.created").await;
    assert_eq!(created["sid"], wt);
    let reservation = wait_for(&mut ws_socket, "reservation.created").await;
    assert_eq!(reservation["task_sid"], wt);
    app.move_worker(&ws, &a, "Offline").await;
    let update = wait_for(&mut ws_socket, "worker.activity.update").await;
    assert_eq!(update["sid"], a.as_str());
}

#[tokio::test]
async fn bad_tokens_envelopes_routes_and_frames_are_refused() {
    let app = app().await;
    let (ws, _, a, _) = call_centre(&app).await;
    let other_ws = app.workspace(&[]).await;
    let expired = WorkerCapability::new(ACCOUNT, TOKEN, &ws, &a)
        .ttl(Duration::from_secs(60))
        .to_jwt(NOW - 120)
        .unwrap();
    let other_secret = WorkerCapability::new(ACCOUNT, "not the auth token", &ws, &a).to_jwt(NOW).unwrap();
    let other_workspace = WorkerCapability::new(ACCOUNT, TOKEN, &other_ws, &a).to_jwt(NOW).unwrap();
    for token in [expired.as_str(), other_secret.as_str(), other_workspace.as_str(), "garbage"] {
        assert_eq!(refused(&app, &a, token).await, 401, "{token}");
    }
    let token = worker_token(&ws, &a);
    let worker = format!("{TWILIO}/Workspaces/{ws}/Workers/{a}");
    let (status, body) = call(&app, &a, &expired, "GET", &worker, json!({})).await;
    assert_eq!(status, 401, "{body}");
    assert!(body["message"].as_str().unwrap().contains("expired"), "{body}");

    // Malformed envelopes: 400 with a message.
    for body in [
        json!("not an object"),
        json!({"url": worker, "method": "GET"}),
        json!({"url": 1, "method": "GET", "token": token}),
    ] {
        let (status, answer) = envelope(&app, &a, body).await;
        assert_eq!(status, 400, "{answer}");
        assert!(answer["message"].is_string(), "{answer}");
    }
    let response = app.client.post(channel_url(&app, &a)).body("{").send().await.unwrap();
    assert_eq!(response.status().as_u16(), 400);

    // An unknown route the token's policies allow (the workspace token may GET anything below it): 404.
    let ws_token =
        ChannelCapability::workspace(ACCOUNT, TOKEN, &ws).allow_fetch_subresources().to_jwt(NOW).unwrap();
    let (status, body) =
        call(&app, &ws, &ws_token, "GET", &format!("{TWILIO}/Workspaces/{ws}/Nothing"), json!({})).await;
    assert_eq!(status, 404, "{body}");
    assert!(body["message"].is_string(), "{body}");

    // Oversized: an envelope past the limit, and a frame from the client.
    let big = json!({"url": worker, "method": "GET", "token": token, "params": {"X": "x".repeat(70 * 1024)}});
    let (status, _) = envelope(&app, &a, big).await;
    assert_eq!(status, 413);
    let mut socket = connect(&app, &a, &token, "").await;
    socket.send(Message::Text("x".repeat(4096).into())).await.unwrap();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), socket.next()).await.unwrap() {
            Some(Ok(Message::Close(frame))) => {
                assert_eq!(frame.map(|f| u16::from(f.code)), Some(1009));
                break;
            }
            Some(Ok(_)) => continue,
            None | Some(Err(_)) => break,
        }
    }
}

#[tokio::test]
async fn expiry_closes_the_socket_and_the_last_close_applies_disconnect_activity() {
    let app = app().await;
    let (ws, _, a, _) = call_centre(&app).await;
    let offline = app.activity(&ws, "Offline").await;
    let short =
        WorkerCapability::new(ACCOUNT, TOKEN, &ws, &a).ttl(Duration::from_secs(1)).to_jwt(NOW).unwrap();
    let mut socket = connect(&app, &a, &short, &format!("&disconnectActivitySid={offline}")).await;
    let closed = next_event(&mut socket).await;
    assert_eq!(closed["close"], 4001, "{closed}");
    assert!(closed["reason"].as_str().unwrap().contains("expired"), "{closed}");
    while socket.next().await.is_some() {}
    let activity = app.poll_worker(&ws, &a, "activity_sid", &offline).await;
    assert_eq!(activity, offline);
}

#[tokio::test]
async fn an_updated_token_in_an_envelope_moves_the_channels_expiry_and_a_bad_one_moves_nothing() {
    let app = app().await;
    let (ws, _, a, b) = call_centre(&app).await;
    let short =
        WorkerCapability::new(ACCOUNT, TOKEN, &ws, &a).ttl(Duration::from_secs(1)).to_jwt(NOW).unwrap();
    let worker_a = format!("{TWILIO}/Workspaces/{ws}/Workers/{a}");

    // Refused tokens, each good for an hour, move nothing: the channel closes when its second is up.
    let mut socket = connect(&app, &a, &short, "").await;
    let other_secret = WorkerCapability::new(ACCOUNT, "not the auth token", &ws, &a).to_jwt(NOW).unwrap();
    let other_channel = worker_token(&ws, &b);
    for (bad, status) in [(other_secret, 401), (other_channel, 401), ("garbage".to_owned(), 401)] {
        let (got, body) = call(&app, &a, &bad, "GET", &worker_a, json!({})).await;
        assert_eq!(got, status, "{body}");
    }
    let closed = next_event(&mut socket).await;
    assert_eq!(closed["close"], 4001, "{closed}");

    // taskrouter.js v1's `updateToken` sends the new token with its next envelope: the channel outlives the
    // first token's second (30 heartbeats of 50 ms).
    let mut socket = connect(&app, &a, &short, "").await;
    let (status, body) = call(&app, &a, &worker_token(&ws, &a), "GET", &worker_a, json!({})).await;
    assert_eq!(status, 200, "{body}");
    crate::bridge::stays_open_for_heartbeats(&mut socket, 30).await;
}
