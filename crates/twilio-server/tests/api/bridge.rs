//! The event bridge (v2 addressing) as Twilio's worker SDK uses it: the channel's upgrade, `init`,
//! heartbeats and events over a real WebSocket, and the REST envelope, with the token's policies.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use twilio::token::{AccessToken, TaskRouterGrant, WorkerCapability};

use crate::helpers::{spawn_bridge_app as app, TestApp, ACCOUNT, NOW, TOKEN};

pub(crate) type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The API key SID the tests' AccessTokens name (signed with the auth token unless a test says otherwise).
const KEY: &str = "SK00000000000000000000000000000009";

/// A TaskRouter grant for worker `wk` of `ws`, with no role.
fn grant(ws: &str, wk: &str) -> TaskRouterGrant {
    TaskRouterGrant { workspace_sid: Some(ws.into()), worker_sid: Some(wk.into()), role: None }
}

/// An AccessToken for `ws` whose grant has `role` and names worker `wk` if given (a workspace token,
/// role `admin`, names none), valid for an hour from [`NOW`].
pub(crate) fn role_token(ws: &str, wk: Option<&str>, role: &str) -> String {
    let grant = TaskRouterGrant { worker_sid: wk.map(Into::into), role: Some(role.into()), ..grant(ws, "") };
    AccessToken::new(ACCOUNT, KEY, TOKEN).task_router_grant(grant).to_jwt(NOW).unwrap()
}

/// A worker's AccessToken as the SDK gets it, valid for `ttl` seconds from [`NOW`].
fn token(ws: &str, wk: &str, ttl: u64) -> String {
    AccessToken::new(ACCOUNT, KEY, TOKEN)
        .identity("alice")
        .ttl(Duration::from_secs(ttl))
        .task_router_grant(TaskRouterGrant { role: Some("worker".into()), ..grant(ws, wk) })
        .to_jwt(NOW)
        .unwrap()
}

fn ws_url(app: &TestApp, query: &str) -> String {
    format!("{}/v1/wschannels?{query}", app.base.replacen("http", "ws", 1))
}

pub(crate) async fn connect(app: &TestApp, token: &str, extra: &str) -> Socket {
    let url = ws_url(app, &format!("token={token}&closeExistingSessions=false&clientVersion=2.1.1{extra}"));
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

/// The next frame that is not a heartbeat, as JSON; or the close frame's code and reason as `{close}`.
pub(crate) async fn next_event(socket: &mut Socket) -> Value {
    // One deadline for the frame, heartbeats or not: a frame that never comes fails the test.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let message = tokio::time::timeout_at(deadline, socket.next()).await.expect("no frame within 10 s");
        match message {
            Some(Ok(Message::Text(text))) if text.trim().is_empty() => continue,
            Some(Ok(Message::Text(text))) => return serde_json::from_str(&text).unwrap(),
            Some(Ok(Message::Close(frame))) => {
                let frame = frame.unwrap();
                return json!({ "close": u16::from(frame.code), "reason": frame.reason.as_str() });
            }
            Some(Ok(_)) => continue,
            other => panic!("socket ended: {other:?}"),
        }
    }
}

/// The next event of type `event_type`, skipping others.
pub(crate) async fn wait_for(socket: &mut Socket, event_type: &str) -> Value {
    loop {
        let event = next_event(socket).await;
        if event["event_type"] == event_type {
            return event["payload"].clone();
        }
        assert!(event.get("close").is_none(), "closed while waiting for {event_type}: {event}");
    }
}

/// Posts an envelope; answers the status and body.
async fn envelope(app: &TestApp, body: Value, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut request =
        app.client.post(app.url("/v1/wschannels")).header("content-type", "text/plain;charset=UTF-8");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.body(body.to_string()).send().await.unwrap();
    crate::helpers::read(response).await
}

pub(crate) async fn call(app: &TestApp, token: &str, method: &str, url: &str, params: Value) -> (u16, Value) {
    envelope(app, json!({ "url": url, "method": method, "params": params, "token": token }), &[]).await
}

/// A workspace with a support queue and two available workers, A and B.
async fn call_centre(app: &TestApp) -> (String, String, String) {
    let (ws, _, [a, b]) = app.staffed_centre(["alice", "bob"]).await;
    (ws, a, b)
}

/// [`call_centre`] with B busy elsewhere (Offline), so the tasks go to A.
async fn call_centre_for_a(app: &TestApp) -> (String, String, String) {
    let (ws, a, b) = call_centre(app).await;
    app.move_worker(&ws, &b, "Offline").await;
    (ws, a, b)
}

#[tokio::test]
async fn a_worker_gets_init_heartbeats_and_its_reservation_and_accepts_through_the_envelope() {
    let app = app().await;
    let (ws, a, _) = call_centre_for_a(&app).await;
    let token = token(&ws, &a, 3600);
    let mut socket = connect(&app, &token, "").await;
    // A's calls through the envelope, on `rest` under the workspace.
    let in_ws = |method: &'static str, rest: String, params: Value| {
        let (app, token, url) = (&app, &token, format!("Workspaces/{ws}/{rest}"));
        async move { call(app, token, method, &url, params).await }
    };

    let first = socket.next().await.unwrap().unwrap();
    let init: Value = serde_json::from_str(first.to_text().unwrap()).unwrap();
    assert_eq!(init["event_type"], "init");
    assert_eq!(init["payload"]["channel_id"], a.as_str());
    assert_eq!(init["payload"]["account_sid"], ACCOUNT);
    assert_eq!(init["payload"]["workspace_sid"], ws.as_str());
    assert_eq!(init["payload"]["token_lifetime"], 3_600_000);
    let beat = socket.next().await.unwrap().unwrap();
    assert!(beat.is_text() && beat.to_text().unwrap().trim().is_empty(), "{beat:?}");

    // What the SDK fetches at init, in its format.
    let (status, worker) = in_ws("GET", format!("Workers/{a}"), json!({})).await;
    assert_eq!(status, 200, "{worker}");
    assert_eq!(worker["payload"]["sid"], a.as_str());
    assert!(
        worker["payload"]["attributes"].is_string() && worker["payload"]["date_created"].is_i64(),
        "{worker}"
    );
    let (status, list) = in_ws("GET", "Activities".into(), json!({"PageSize": 2})).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["payload"]["contents"].as_array().unwrap().len(), 2);
    let after = list["payload"]["after_sid"].as_str().unwrap().to_owned();
    let (_, rest) = in_ws("GET", "Activities".into(), json!({"PageSize": 1000, "AfterSid": after})).await;
    assert!(rest["payload"]["after_sid"].is_null(), "{rest}");
    let (status, channels) =
        in_ws("GET", format!("Workers/{a}/WorkerChannels"), json!({"PageSize": 1000})).await;
    assert_eq!(status, 200, "{channels}");
    assert!(channels["payload"]["contents"][0]["sid"].as_str().unwrap().starts_with("WC"));

    let task = app.task(&ws).await;
    let task_sid = task["sid"].as_str().unwrap();
    let created = wait_for(&mut socket, "reservation.created").await;
    assert_eq!(created["reservation_status"], "pending");
    assert_eq!(created["worker_sid"], a.as_str());
    assert_eq!(created["task"]["sid"], task_sid);
    assert!(created["task"]["attributes"].is_string(), "{created}");
    let wr = created["sid"].as_str().unwrap().to_owned();

    let active_only = json!({"Active": "true", "PageSize": 1000});
    let (status, active) = in_ws("GET", format!("Workers/{a}/Reservations"), active_only).await;
    assert_eq!(status, 200, "{active}");
    assert_eq!(active["payload"]["contents"][0]["sid"], wr.as_str());

    // If-Match with a stale version is refused and changes nothing.
    let path = format!("Workspaces/{ws}/Workers/{a}/Reservations/{wr}");
    let accept =
        json!({"url": path, "method": "POST", "params": {"ReservationStatus": "accepted"}, "token": token});
    let (status, stale) = envelope(&app, accept.clone(), &[("if-match", "99")]).await;
    assert_eq!(status, 412, "{stale}");
    assert!(stale["message"].is_string());
    let (status, accepted) =
        envelope(&app, accept, &[("apiversion", "v1"), ("clientversion", "2.1.1")]).await;
    assert_eq!(status, 200, "{accepted}");
    assert_eq!(accepted["payload"]["reservation_status"], "accepted");
    assert_eq!(accepted["payload"]["task"]["assignment_status"], "assigned");
    let event = wait_for(&mut socket, "reservation.accepted").await;
    assert_eq!(event["sid"], wr.as_str());

    // The task, now the worker's: read and completed through the envelope.
    let (status, t) = in_ws("GET", format!("Tasks/{task_sid}"), json!({})).await;
    assert_eq!(status, 200, "{t}");
    let complete = json!({"AssignmentStatus": "completed", "Reason": "done"});
    let (status, done) = in_ws("POST", format!("Tasks/{task_sid}"), complete).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["payload"]["assignment_status"], "completed");
    let completed = wait_for(&mut socket, "task.completed").await;
    assert_eq!(completed["sid"], task_sid);
}

#[tokio::test]
async fn a_worker_token_cannot_read_or_act_on_another_worker() {
    let app = app().await;
    let (ws, a, b) = call_centre_for_a(&app).await;
    let offline = app.activity(&ws, "Offline").await;
    let task = app.task(&ws).await;
    let task_sid = task["sid"].as_str().unwrap();
    let wr = app.first_reservation(&ws, task_sid).await;
    let b_token = token(&ws, &b, 3600);

    for (method, url, params) in [
        ("GET", format!("Workspaces/{ws}/Workers/{a}"), json!({})),
        ("POST", format!("Workspaces/{ws}/Workers/{a}"), json!({"ActivitySid": offline})),
        ("GET", format!("Workspaces/{ws}/Workers/{a}/Reservations"), json!({})),
        (
            "POST",
            format!("Workspaces/{ws}/Workers/{a}/Reservations/{wr}"),
            json!({"ReservationStatus": "accepted"}),
        ),
        ("GET", format!("Workspaces/{ws}/Tasks/{task_sid}"), json!({})),
        ("POST", format!("Workspaces/{ws}/Tasks/{task_sid}"), json!({"AssignmentStatus": "canceled"})),
    ] {
        let (status, body) = call(&app, &b_token, method, &url, params).await;
        assert_eq!(status, 403, "{method} {url}: {body}");
        assert!(body["message"].as_str().unwrap().contains("Forbidden"), "{body}");
    }
    // B naming A's reservation under its own worker is not B's either.
    let (status, body) = call(
        &app,
        &b_token,
        "POST",
        &format!("Workspaces/{ws}/Workers/{b}/Reservations/{wr}"),
        json!({"ReservationStatus": "accepted"}),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    let (_, r) = app.get(&format!("/v1/Workspaces/{ws}/Tasks/{task_sid}/Reservations/{wr}")).await;
    assert_eq!(r["reservation_status"], "pending", "nothing changed");
}

#[tokio::test]
async fn bad_tokens_are_refused_on_upgrade_and_in_the_envelope() {
    let app = app().await;
    let (ws, a, _) = call_centre(&app).await;
    let other_secret = AccessToken::new(ACCOUNT, KEY, "not the auth token")
        .task_router_grant(grant(&ws, &a))
        .to_jwt(NOW)
        .unwrap();
    // Issued long enough ago to have expired by the engine's clock.
    let expired = AccessToken::new(ACCOUNT, KEY, TOKEN)
        .ttl(Duration::from_secs(10))
        .task_router_grant(grant(&ws, &a))
        .to_jwt(NOW - 3600)
        .unwrap();
    let unknown_worker = token(&ws, "WK000000000000000000000000000000ff", 3600);
    // A valid token for a worker the engine does not have opens no channel, and may not act on A (403).
    for (bad, in_envelope) in
        [(other_secret, 401), (expired, 401), (unknown_worker, 403), ("garbage".to_owned(), 401)]
    {
        let url = ws_url(&app, &format!("token={bad}&closeExistingSessions=false&clientVersion=2.1.1"));
        match tokio_tungstenite::connect_async(url).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 401);
                let body: Value = serde_json::from_slice(response.body().as_deref().unwrap()).unwrap();
                assert!(body["message"].as_str().unwrap().starts_with("Invalid token"), "{body}");
            }
            other => panic!("upgrade with a bad token: {other:?}"),
        }
        let (status, body) =
            call(&app, &bad, "GET", &format!("Workspaces/{ws}/Workers/{a}"), json!({})).await;
        assert_eq!(status, in_envelope, "{body}");
    }
    // A worker capability token signed with the auth token is a bearer too.
    let capability = WorkerCapability::new(ACCOUNT, TOKEN, &ws, &a).to_jwt(NOW).unwrap();
    let mut socket = connect(&app, &capability, "").await;
    assert_eq!(next_event(&mut socket).await["event_type"], "init");
}

#[tokio::test]
async fn malformed_envelopes_unknown_routes_and_preflight() {
    let app = app().await;
    let (ws, a, _) = call_centre(&app).await;
    let token = token(&ws, &a, 3600);
    for body in ["not json", "{}", r#"{"url":1,"method":"GET","token":"x"}"#] {
        let response = app.client.post(app.url("/v1/wschannels")).body(body).send().await.unwrap();
        let (status, error) = crate::helpers::read(response).await;
        assert_eq!(status, 400, "{body}: {error}");
        assert!(error["message"].is_string());
    }
    let (status, body) = call(&app, &token, "GET", &format!("Workspaces/{ws}/Nothing"), json!({})).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) =
        call(&app, &token, "DELETE", &format!("Workspaces/{ws}/Workers/{a}"), json!({})).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) =
        call(&app, &token, "POST", &format!("Workspaces/{ws}/Workers/{a}"), json!({"Nonsense": 1})).await;
    assert_eq!(status, 400, "{body}");
    let huge = "x".repeat(70 * 1024);
    let response = app.client.post(app.url("/v1/wschannels")).body(huge).send().await.unwrap();
    assert_eq!(response.status(), 413);

    let preflight = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/v1/wschannels"))
        .header("origin", "http://localhost:3000")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success());
    let h = preflight.headers();
    assert_eq!(h["access-control-allow-origin"], "http://localhost:3000");
    assert!(h["access-control-allow-headers"].to_str().unwrap().contains("if-match"));
    let (_, _) = (h, ());
    let response = app
        .client
        .post(app.url("/v1/wschannels"))
        .header("origin", "http://localhost:3000")
        .body(json!({"url": format!("Workspaces/{ws}/Workers/{a}"), "method": "GET", "params": {}, "token": token}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["access-control-allow-origin"], "http://localhost:3000");
    // Basic-auth REST is untouched.
    let (status, _) = app.get(&format!("/v1/Workspaces/{ws}/Workers/{a}")).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn sessions_close_existing_ones_set_offline_and_close_at_token_expiry() {
    let app = app().await;
    let (ws, a, _) = call_centre(&app).await;
    let token = token(&ws, &a, 3600);
    let mut first = connect(&app, &token, "").await;
    assert_eq!(next_event(&mut first).await["event_type"], "init");
    let url = ws_url(&app, &format!("token={token}&closeExistingSessions=true&clientVersion=2.1.1&setWorkerOfflineIfDisconnected=true"));
    let mut second = tokio_tungstenite::connect_async(url).await.unwrap().0;
    assert_eq!(next_event(&mut second).await["event_type"], "init");
    let closed = next_event(&mut first).await;
    assert_eq!(closed["close"], 4002, "{closed}");

    // The worker's last session goes: with setWorkerOfflineIfDisconnected it goes Offline.
    second.send(Message::Close(None)).await.unwrap();
    while second.next().await.is_some() {}
    let activity = app.poll_worker(&ws, &a, "activity_name", "Offline").await;
    assert_eq!(activity, "Offline");

    // A token with a second left: the channel closes with a reason when it runs out.
    let short = AccessToken::new(ACCOUNT, KEY, TOKEN)
        .ttl(Duration::from_secs(1))
        .task_router_grant(grant(&ws, &a))
        .to_jwt(NOW)
        .unwrap();
    let mut socket = connect(&app, &short, "").await;
    let init = next_event(&mut socket).await;
    assert_eq!(init["payload"]["token_lifetime"], 1000);
    let closed = next_event(&mut socket).await;
    assert_eq!(closed["close"], 4001, "{closed}");
    assert!(closed["reason"].as_str().unwrap().contains("expired"));
}

#[tokio::test]
async fn an_access_token_signed_with_an_api_key_opens_the_channel() {
    let app = app().await;
    let (ws, a, _) = call_centre(&app).await;
    let (status, key) =
        app.post(&format!("/2010-04-01/Accounts/{ACCOUNT}/Keys.json"), &[("FriendlyName", "sdk")]).await;
    assert_eq!(status, 201, "{key}");
    let signed = |secret: &str| {
        AccessToken::new(ACCOUNT, key["sid"].as_str().unwrap(), secret)
            .task_router_grant(grant(&ws, &a))
            .to_jwt(NOW)
            .unwrap()
    };
    let mut socket = connect(&app, &signed(key["secret"].as_str().unwrap()), "").await;
    assert_eq!(next_event(&mut socket).await["event_type"], "init");
    // The key's SID with the auth token is not the key.
    let (status, body) =
        call(&app, &signed(TOKEN), "GET", &format!("Workspaces/{ws}/Workers/{a}"), json!({})).await;
    assert_eq!(status, 401, "{body}");
}

/// Reads `n` heartbeats, skipping events; fails if the socket closes first. The server sends at most one
/// heartbeat per heartbeat period (50 ms here), so `n` of them prove the socket stayed open at least
/// `n` periods: a lower bound on time that no scheduling can shorten.
pub(crate) async fn stays_open_for_heartbeats(socket: &mut Socket, n: usize) {
    let mut seen = 0;
    while seen < n {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next()).await.unwrap();
        match message {
            Some(Ok(Message::Text(text))) if text.trim().is_empty() => seen += 1,
            Some(Ok(Message::Close(frame))) => panic!("closed after {seen} heartbeats: {frame:?}"),
            Some(Ok(_)) => {}
            other => panic!("socket ended after {seen} heartbeats: {other:?}"),
        }
    }
}

#[tokio::test]
async fn an_updated_token_in_an_envelope_moves_the_channels_expiry_and_a_bad_one_moves_nothing() {
    let app = app().await;
    let (ws, a, b) = call_centre(&app).await;
    let worker_a = format!("Workspaces/{ws}/Workers/{a}");
    let signed = |account: &str, secret: &str, wk: &str| {
        AccessToken::new(account, KEY, secret)
            .ttl(Duration::from_secs(3600))
            .task_router_grant(grant(&ws, wk))
            .to_jwt(NOW)
            .unwrap()
    };

    // A channel whose token has one second left. Bad tokens and another worker's token, each a long one,
    // arrive in envelopes: refused (or refused on A's routes), they leave A's channel to expire on time.
    let mut socket = connect(&app, &token(&ws, &a, 1), "").await;
    assert_eq!(next_event(&mut socket).await["payload"]["token_lifetime"], 1000);
    let other_account = "AC00000000000000000000000000000099";
    for (bad, status) in [
        (signed(ACCOUNT, "not the auth token", &a), 401),
        (signed(other_account, TOKEN, &a), 401),
        ("garbage".to_owned(), 401),
        (signed(ACCOUNT, TOKEN, &b), 403),
    ] {
        let (got, body) = call(&app, &bad, "GET", &worker_a, json!({})).await;
        assert_eq!(got, status, "{body}");
        assert!(body["message"].is_string(), "{body}");
    }
    let (status, _) =
        call(&app, &signed(ACCOUNT, TOKEN, &b), "GET", &format!("Workspaces/{ws}/Workers/{b}"), json!({}))
            .await;
    assert_eq!(status, 200, "B's own call moves only B's channels");
    let closed = next_event(&mut socket).await;
    assert_eq!(closed["close"], 4001, "{closed}");

    // The same, then A's updated token in A's next envelope, as the SDK sends it after `updateToken`: the
    // channel outlives the first token's second (30 heartbeats of 50 ms) and still carries A's events.
    let mut socket = connect(&app, &token(&ws, &a, 1), "").await;
    assert_eq!(next_event(&mut socket).await["payload"]["token_lifetime"], 1000);
    let (status, body) = call(&app, &signed(ACCOUNT, TOKEN, &a), "GET", &worker_a, json!({})).await;
    assert_eq!(status, 200, "{body}");
    stays_open_for_heartbeats(&mut socket, 30).await;
    app.move_worker(&ws, &b, "Offline").await;
    let task = app.task(&ws).await;
    let created = wait_for(&mut socket, "reservation.created").await;
    assert_eq!(created["task"]["sid"], task["sid"]);
}

#[tokio::test]
async fn participant_calls_hold_mute_and_kick_the_legs_of_the_tasks_conference() {
    let app = app().await;
    let (ws, a, b) = call_centre_for_a(&app).await;
    let (token_a, token_b) = (token(&ws, &a, 3600), token(&ws, &b, 3600));
    // A call's task: the conference instruction puts the customer's call in the conference.
    let attributes = r#"{"type":"support","call_sid":"CA00000000000000000000000000000c01"}"#;
    let (status, task) = app.post(&format!("/v1/Workspaces/{ws}/Tasks"), &[("Attributes", attributes)]).await;
    assert_eq!(status, 201, "{task}");
    let wt = task["sid"].as_str().unwrap().to_owned();
    let wr = app.first_reservation(&ws, &wt).await;
    // A's own calls, on its worker's subresources.
    let post_a = |what: &str, params: Value| {
        let (app, token_a, url) = (&app, &token_a, format!("Workspaces/{ws}/Workers/{a}/{what}"));
        async move { call(app, token_a, "POST", &url, params).await }
    };

    // Before the conference instruction there is no leg to act on.
    let (status, body) = post_a("WorkerParticipant", json!({"ReservationSid": wr})).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("no conference"), "{body}");

    let conference = json!({"Instruction": "conference", "To": "client:alice"});
    let (status, body) = post_a(&format!("Reservations/{wr}"), conference).await;
    assert_eq!(status, 200, "{body}");
    let (_, t) = app.get(&format!("/v1/Workspaces/{ws}/Tasks/{wt}")).await;
    let attributes: Value = serde_json::from_str(t["attributes"].as_str().unwrap()).unwrap();
    let cf = attributes["conference"]["sid"].as_str().unwrap().to_owned();
    let leg = |who: &str| attributes["conference"]["participants"][who].as_str().unwrap().to_owned();
    let (worker_leg, customer_leg) = (leg("worker"), leg("customer"));
    let participant = |call: String| {
        let (app, cf) = (&app, cf.clone());
        async move {
            app.get(&format!("/2010-04-01/Accounts/{ACCOUNT}/Conferences/{cf}/Participants/{call}.json"))
                .await
        }
    };

    // Reservation.updateParticipant: the worker's own leg, muted.
    let mute = json!({"ReservationSid": wr, "Mute": true, "BeepOnExit": false});
    let (status, body) = post_a("WorkerParticipant", mute).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["payload"]["sid"], wr.as_str());
    assert_eq!(participant(worker_leg.clone()).await.1["muted"], true);

    // Task.updateParticipant: the customer on hold.
    let (status, body) = post_a("CustomerParticipant", json!({"TaskSid": wt, "Hold": true})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["payload"]["sid"], wt.as_str());
    assert_eq!(participant(customer_leg.clone()).await.1["hold"], true);

    // Task.hold: the target worker's leg; a worker with no reservation of the task has none.
    let hold = |target: &str| json!({"TaskSid": wt, "TargetWorkerSid": target, "Hold": true});
    let (status, body) = post_a("HoldWorkerParticipant", hold(&a)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(participant(worker_leg.clone()).await.1["hold"], true);
    let (status, body) = post_a("HoldWorkerParticipant", hold(&b)).await;
    assert_eq!(status, 400, "{body}");

    // B is not on A's task: every participant call on it is refused and changes nothing.
    let on_b = format!("Workspaces/{ws}/Workers/{b}/CustomerParticipant");
    let (status, body) = call(&app, &token_b, "POST", &on_b, json!({"TaskSid": wt, "Hold": false})).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(participant(customer_leg).await.1["hold"], true);

    // Task.kick: the worker's leg leaves the conference.
    let kick = json!({"TaskSid": wt, "TargetWorkerSid": a});
    let (status, body) = post_a("KickWorkerParticipant", kick).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(participant(worker_leg).await.0, 404);
}

#[tokio::test]
async fn a_channel_opened_after_its_reservation_gets_its_tasks_events() {
    let app = app().await;
    let (ws, a, _) = call_centre_for_a(&app).await;
    // The reservation comes before any channel is open, so before the bridge reads the event stream at all.
    let task = app.task(&ws).await;
    let wt = task["sid"].as_str().unwrap();
    app.first_reservation(&ws, wt).await;
    let mut socket = connect(&app, &token(&ws, &a, 3600), "").await;
    assert_eq!(next_event(&mut socket).await["event_type"], "init");
    // A change of the task alone: no reservation event comes with it to say whose task it is.
    let attributes = r#"{"type":"support","note":"vip"}"#;
    let (status, body) =
        app.post(&format!("/v1/Workspaces/{ws}/Tasks/{wt}"), &[("Attributes", attributes)]).await;
    assert_eq!(status, 200, "{body}");
    let updated = wait_for(&mut socket, "task.updated").await;
    assert_eq!(updated["sid"], wt);
    assert!(updated["attributes"].as_str().unwrap().contains("vip"), "{updated}");
}

#[tokio::test]
async fn a_supervisors_token_sets_another_workers_activity_and_attributes() {
    let app = app().await;
    let (ws, a, b) = call_centre(&app).await;
    let offline = app.activity(&ws, "Offline").await;
    let supervisor = role_token(&ws, Some(&b), "supervisor");
    let on_a = format!("Workspaces/{ws}/Workers/{a}");
    // The SDK's Supervisor sends its own worker's version as If-Match: not A's, and not checked for A.
    let set = |params: Value| json!({"url": on_a, "method": "POST", "params": params, "token": supervisor});
    let (status, body) = envelope(&app, set(json!({"ActivitySid": offline})), &[("if-match", "999")]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["payload"]["activity_sid"], offline.as_str());
    let (status, body) =
        envelope(&app, set(json!({"Attributes": {"skills": ["support"], "desk": 4}})), &[]).await;
    assert_eq!(status, 200, "{body}");
    let (_, worker) = app.get(&format!("/v1/Workspaces/{ws}/Workers/{a}")).await;
    assert_eq!(worker["activity_sid"], offline.as_str());
    assert!(worker["attributes"].as_str().unwrap().contains(r#""desk":4"#), "{worker}");
}
