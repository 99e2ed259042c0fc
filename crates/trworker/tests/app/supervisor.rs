//! The supervisor page's API and socket (issue #25): its sign-in and permissions, the picture, setting a
//! worker's activity, live changes from the workspace's event channel, and workers or activities that are
//! gone.

use std::time::Duration;

use futures_util::SinkExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;
use trworker::app::{AppConfig, Mode, RateLimit};
use twilio::client::taskrouter::{ActivityFilter, UpdateWorker, WorkerFilter};

use crate::helpers::{spawn_app, spawn_app_with, texts, Socket, TestApp, PASSWORD};

const SUPERVISOR_PASSWORD: &str = "watch the floor";

async fn spawn() -> TestApp {
    spawn_with(|_| {}).await
}

/// The app with a supervisor password, and its configuration `adjust`ed.
async fn spawn_with(adjust: impl FnOnce(&mut AppConfig)) -> TestApp {
    spawn_app_with(|config| {
        config.supervisor_password = SUPERVISOR_PASSWORD.into();
        adjust(config);
    })
    .await
}

/// `POST /api/supervisor/token`: status, body, `Retry-After`.
async fn post_supervisor_token(app: &TestApp, name: &str, password: &str) -> (u16, Value, Option<String>) {
    app.post_unsigned("/api/supervisor/token", json!({ "name": name, "password": password })).await
}

async fn supervisor_token(app: &TestApp, name: &str) -> String {
    let (status, body, _) = post_supervisor_token(app, name, SUPERVISOR_PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], name);
    body["token"].as_str().expect("token").to_owned()
}

async fn get(app: &TestApp, path: &str, token: &str) -> (u16, Value) {
    let response = app.http.get(app.url(path)).bearer_auth(token).send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Opens `/api/supervisor/ws` of the app at `base` and says hello with `token`.
async fn supervisor_socket(base: &str, token: &str) -> Socket {
    let url = format!("{}/api/supervisor/ws", base.replacen("http", "ws", 1));
    let (mut stream, _) = tokio_tungstenite::connect_async(url).await.expect("connect");
    let hello = json!({ "type": "hello", "token": token });
    stream.send(Message::Text(hello.to_string().into())).await.expect("hello");
    Socket { stream }
}

/// Supervisor `name` signed in with a page open: the token, the socket and the first picture on it.
async fn open_page(app: &TestApp, name: &str) -> (String, Socket, Value) {
    let supervisor = supervisor_token(app, name).await;
    let mut socket = supervisor_socket(&app.base, &supervisor).await;
    let picture = socket.until("the picture", |m| m["type"] == "picture").await;
    (supervisor, socket, picture)
}

fn worker<'a>(picture: &'a Value, sid: &str) -> &'a Value {
    let workers = picture["workers"].as_array().expect("workers");
    workers.iter().find(|w| w["sid"] == sid).unwrap_or_else(|| panic!("{sid} is not in {picture}"))
}

#[tokio::test]
async fn a_worker_token_is_refused_on_every_supervisor_route_and_the_reverse() {
    let app = spawn().await;
    let worker_token = app.sign_in("alice").await;
    let worker_path = format!("/api/supervisor/workers/{}", app.alice);
    for path in ["/api/supervisor/picture".to_owned(), format!("{worker_path}/reservations")] {
        let (status, body) = get(&app, &path, &worker_token).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert!(body["error"]["message"].as_str().unwrap_or_default().contains("supervisor"), "{body}");
    }
    let offline = app.activity("Offline").await;
    let (status, body) =
        app.post(&format!("{worker_path}/activity"), &worker_token, json!({ "activity_sid": offline })).await;
    assert_eq!(status, 403, "{body}");
    let mut socket = supervisor_socket(&app.base, &worker_token).await;
    let refused = socket.next().await.expect("an error first");
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(socket.next().await.err(), Some(Some(4403)));
    // No token at all, or a made-up one: 401.
    let (status, _) = get(&app, "/api/supervisor/picture", "sv1.e30.AAAA").await;
    assert_eq!(status, 401);
    let response = app.http.get(app.url("/api/supervisor/picture")).send().await.expect("request");
    assert_eq!(response.status().as_u16(), 401);

    // A supervisor's token is no worker's.
    let supervisor = supervisor_token(&app, "Grace").await;
    let (status, body) =
        app.post("/api/worker/activity", &supervisor, json!({ "activity_sid": offline })).await;
    assert_eq!(status, 401, "{body}");
    let mut socket = app.socket(&supervisor, None).await;
    socket.next().await.expect("an error first");
    assert_eq!(socket.next().await.err(), Some(Some(4401)));
}

#[tokio::test]
async fn a_wrong_password_gets_the_worker_sign_in_answer_and_limit() {
    let app =
        spawn_with(|config| config.sign_in_limit_per_ip = RateLimit::new(3, Duration::from_secs(3600))).await;
    let (worker_status, worker_body, _) = app.post_token("alice", "guess").await;
    let (status, body, _) = post_supervisor_token(&app, "Grace", "guess").await;
    assert_eq!((status, &body), (worker_status, &worker_body), "the same answer as the worker sign-in");
    // The worker's password is not the supervisors'.
    let (status, _, _) = post_supervisor_token(&app, "Grace", PASSWORD).await;
    assert_eq!(status, 401);
    // One limiter for both: the fourth attempt from this address, right password or not, waits.
    let (status, body, retry) = post_supervisor_token(&app, "Grace", SUPERVISOR_PASSWORD).await;
    assert_eq!(status, 429, "{body}");
    assert!(retry.is_some(), "Retry-After");
    let (status, _, _) = app.post_token("alice", PASSWORD).await;
    assert_eq!(status, 429);
}

#[tokio::test]
async fn without_a_supervisor_password_nobody_signs_in_as_a_supervisor() {
    let app = spawn_app().await;
    let (status, body, _) = post_supervisor_token(&app, "", "").await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"]["message"].as_str().unwrap_or_default().contains("SUPERVISOR_PASSWORD"), "{body}");
}

#[tokio::test]
async fn the_picture_has_every_worker_call_pending_reservation_queue_and_total() {
    let app = spawn().await;
    let alice = app.sign_in("alice").await;
    let bob = app.sign_in("bob").await;
    app.on_call(&alice, &app.alice, "+15550001").await;
    app.offer_call(&bob, &app.bob, "+15550002").await;
    app.incoming_call("+15550003").await;
    let supervisor = supervisor_token(&app, "Grace").await;
    let (status, picture) = get(&app, "/api/supervisor/picture", &supervisor).await;
    assert_eq!(status, 200, "{picture}");
    assert_eq!(picture["workspace"]["friendly_name"], "Tiger Support");
    let on_call = worker(&picture, &app.alice);
    assert_eq!(on_call["name"], "alice");
    assert_eq!(on_call["activity_name"], "Unavailable");
    assert!(on_call["activity_since"].is_i64(), "{on_call}");
    assert_eq!(on_call["call"]["caller"], "+15550001");
    assert_eq!(on_call["call"]["status"], "accepted");
    assert!(on_call["call"]["since"].is_i64(), "{on_call}");
    assert_eq!(on_call["pending"], Value::Null);
    let offered = worker(&picture, &app.bob);
    assert_eq!(offered["pending"]["caller"], "+15550002");
    assert_eq!(offered["call"], Value::Null);
    let queues = picture["queues"].as_array().expect("queues");
    let support = queues.iter().find(|q| q["name"] == "support").expect("the support queue");
    assert_eq!(support["workers_eligible"], 2, "{support}");
    assert_eq!(support["tasks_waiting"], 2, "one reserved for bob, one pending: {support}");
    assert_eq!(picture["totals"]["workers"], 2);
    assert_eq!(picture["totals"]["tasks"], 3);
    assert_eq!(picture["totals"]["tasks_waiting"], 2);
    assert_eq!(picture["totals"]["tasks_by_status"]["assigned"], 1);
    let names = texts(&picture["activities"], "friendly_name");
    assert!(names.contains(&"Offline") && names.contains(&"Available"), "{names:?}");
    assert_eq!(picture["history"].as_array().map(Vec::len), Some(1));

    // The worker's recent reservations, with their outcomes.
    let (status, body) =
        get(&app, &format!("/api/supervisor/workers/{}/reservations", app.alice), &supervisor).await;
    assert_eq!(status, 200, "{body}");
    let reservations = body["reservations"].as_array().expect("reservations");
    assert_eq!(reservations.len(), 1, "{body}");
    assert_eq!(reservations[0]["status"], "accepted");
    assert_eq!(reservations[0]["caller"], "+15550001");
}

#[tokio::test]
async fn setting_an_activity_moves_the_worker_tells_its_page_who_did_it_and_is_limited() {
    let app =
        spawn_with(|config| config.supervisor_action_limit = RateLimit::new(1, Duration::from_secs(3600)))
            .await;
    let (_, mut page) = app.connect("alice").await;
    let supervisor = supervisor_token(&app, "Grace").await;
    let available = app.activity("Available").await;
    let path = format!("/api/supervisor/workers/{}/activity", app.alice);
    let (status, body) = app.post(&path, &supervisor, json!({ "activity_sid": available })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["worker"]["activity_name"], "Available");
    assert_eq!(app.worker_activity(&app.alice).await, "Available");
    let notice = page.until("the notice", |m| m["type"] == "notice").await;
    assert_eq!(notice["text"], "Supervisor Grace set you to Available");
    // Rate-limited: the next action from this address waits.
    let offline = app.activity("Offline").await;
    let response = app
        .http
        .post(app.url(&path))
        .bearer_auth(&supervisor)
        .json(&json!({ "activity_sid": offline }))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 429);
    assert!(response.headers().get("retry-after").is_some());
    assert_eq!(app.worker_activity(&app.alice).await, "Available", "nothing changed");
}

#[tokio::test]
async fn a_gone_worker_or_activity_gets_a_clear_message_and_bad_sids_a_400() {
    let app = spawn().await;
    let supervisor = supervisor_token(&app, "").await;
    let available = app.activity("Available").await;
    let deleted = reqwest::Client::new()
        .delete(format!("{}/v1/Workspaces/{}/Workers/{}", app.upstream.url, app.workspace_sid, app.bob))
        .basic_auth(&app.upstream.account_sid, Some(&app.upstream.auth_token))
        .send()
        .await
        .expect("delete bob");
    assert!(deleted.status().is_success(), "{}", deleted.status());
    let bob = format!("/api/supervisor/workers/{}", app.bob);
    let (status, body) =
        app.post(&format!("{bob}/activity"), &supervisor, json!({ "activity_sid": available })).await;
    assert_eq!(status, 404, "{body}");
    assert!(body["error"]["message"].as_str().unwrap_or_default().contains("no longer exists"), "{body}");
    let (status, body) = get(&app, &format!("{bob}/reservations"), &supervisor).await;
    assert_eq!(status, 404, "{body}");

    let alice = format!("/api/supervisor/workers/{}/activity", app.alice);
    let gone = "WA0123456789abcdef0123456789abcdef";
    let (status, body) = app.post(&alice, &supervisor, json!({ "activity_sid": gone })).await;
    assert_eq!(status, 409, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(gone) && message.contains("no longer exists"), "{message}");
    let (status, _) = app.post(&alice, &supervisor, json!({ "activity_sid": "Offline" })).await;
    assert_eq!(status, 400);
    let (status, _) = app
        .post("/api/supervisor/workers/alice/activity", &supervisor, json!({ "activity_sid": available }))
        .await;
    assert_eq!(status, 400);
    let (status, _, _) = post_supervisor_token(&app, &"x".repeat(65), SUPERVISOR_PASSWORD).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn the_socket_sends_the_picture_then_each_change_and_closes_the_channel_after_the_last_page() {
    let app = spawn().await;
    let (supervisor, mut socket, picture) = open_page(&app, "Grace").await;
    assert_eq!(picture["connected"], true);
    assert_eq!(worker(&picture, &app.bob)["activity_name"], "Offline");
    assert_eq!(app.state.supervisor_pages(), (1, true));

    app.admin_set_activity(&app.bob, "Available").await;
    let update = socket
        .until("bob available", |m| {
            m["type"] == "workers"
                && m["workers"].as_array().is_some_and(|w| w.iter().any(|w| w["sid"] == app.bob.as_str()))
        })
        .await;
    assert!(update["seq"].as_u64() > picture["seq"].as_u64(), "numbered after the picture");
    assert_eq!(update["workers"][0]["activity_name"], "Available");
    let stats =
        socket.until("the figures", |m| m["type"] == "stats" && m["totals"]["workers_available"] == 1).await;
    let support = stats["queues"].as_array().and_then(|q| q.first()).cloned().unwrap_or_default();
    assert_eq!(support["workers_available"], 1, "{stats}");

    // A call offered to bob shows as his pending reservation with the caller.
    app.incoming_call("+15550009").await;
    socket
        .until("bob's pending reservation", |m| {
            m["type"] == "workers"
                && m["workers"]
                    .as_array()
                    .is_some_and(|w| w.iter().any(|w| w["pending"]["caller"] == "+15550009"))
        })
        .await;

    // A second page gets the picture at once, from the live one.
    let mut second = supervisor_socket(&app.base, &supervisor).await;
    let picture = second.until("the picture", |m| m["type"] == "picture").await;
    assert_eq!(worker(&picture, &app.bob)["pending"]["caller"], "+15550009");
    assert_eq!(app.state.supervisor_pages(), (2, true));
    drop(second);
    drop(socket);
    let mut closed = false;
    for _ in 0..500 {
        closed = app.state.supervisor_pages() == (0, false);
        if closed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(closed, "the channel stayed open after the last page: {:?}", app.state.supervisor_pages());

    // The chart's samples outlive the pages: the next one's picture goes on from them.
    let mut again = supervisor_socket(&app.base, &supervisor).await;
    let picture = again.until("the picture", |m| m["type"] == "picture").await;
    let samples = picture["history"].as_array().map(Vec::len).unwrap_or(0);
    assert!(samples >= 2, "{}", picture["history"]);
}

#[tokio::test]
async fn a_lost_channel_is_told_and_the_picture_comes_back_whole_with_what_changed_meanwhile() {
    let app = spawn().await;
    let (_, mut socket, _) = open_page(&app, "Grace").await;

    // Another session of the workspace's channel asks for the others to be closed: the bridge cuts the app's.
    let capability = twilio::token::ChannelCapability::workspace(
        &app.upstream.account_sid,
        &app.upstream.auth_token,
        &app.workspace_sid,
    );
    let mut intruder = app.close_other_sessions(&app.workspace_sid, |now| capability.to_jwt(now)).await;
    let lost = socket.until("the channel lost", |m| m["type"] == "channel").await;
    assert_eq!(lost["status"], "reconnecting", "{lost}");
    assert!(lost["reason"].as_str().is_some_and(|r| !r.is_empty()), "{lost}");
    // A change while the channel may be down: in the picture sent when it is back, or after it.
    app.admin_set_activity(&app.alice, "Available").await;
    let back = socket.until("the picture again", |m| m["type"] == "picture" && m["connected"] == true).await;
    assert!(back["seq"].as_u64() > lost["seq"].as_u64());
    if worker(&back, &app.alice)["activity_name"] != "Available" {
        socket
            .until("alice available", |m| {
                m["type"] == "workers"
                    && m["workers"].as_array().is_some_and(|w| {
                        w.iter().any(|w| w["sid"] == app.alice.as_str() && w["activity_name"] == "Available")
                    })
            })
            .await;
    }
    let _ = intruder.close(None).await;
}

#[tokio::test]
async fn shutting_down_tells_the_supervisor_pages() {
    let app = spawn().await;
    let (_, mut socket, _) = open_page(&app, "").await;
    app.state.shutdown();
    socket.until("the goodbye", |m| m["type"] == "shutdown").await;
    assert_eq!(socket.next().await.err(), Some(Some(1001)));
}

#[tokio::test]
async fn local_mode_takes_the_same_path_with_the_engine_in_process_and_a_generated_password() {
    let dir = crate::support::TempDir::new("supervisor-local");
    let config = AppConfig::new(Mode::Local, "", "", "", PASSWORD, "");
    let server = crate::support::start_local(dir.path(), crate::support::bind(0).await, config).await;
    let password = server.app().config().supervisor_password.clone();
    assert_eq!(password.len(), 14, "generated, as the workers' one is");
    assert_ne!(password, PASSWORD);
    let token = crate::support::supervisor_token(&server.base, "Grace", &password).await;
    let mut socket = supervisor_socket(&server.base, &token).await;
    let picture = socket.until("the picture", |m| m["type"] == "picture").await;
    let names = texts(&picture["workers"], "name");
    assert!(names.contains(&"charles") && names.contains(&"ada"), "{names:?}");

    let engine = server.engine();
    let workspace = engine.workspace_sid.expect("the demo workspace").to_string();
    let admin = twilio::Client::new(
        twilio::Config::new(&engine.credentials.account_sid, &engine.credentials.auth_token)
            .base_urls(&server.base, &server.base),
    )
    .expect("client")
    .with_workspace(&workspace);
    let filter = WorkerFilter { friendly_name: Some("ada".into()), ..WorkerFilter::default() };
    let ada = admin.list_workers(&filter).all().await.expect("workers").remove(0).sid;
    let filter = ActivityFilter { friendly_name: Some("Available".into()), ..ActivityFilter::default() };
    let available = admin.list_activities(&filter).all().await.expect("activities").remove(0).sid;
    let update = UpdateWorker { activity_sid: Some(available), ..UpdateWorker::default() };
    admin.update_worker(&ada, &update).await.expect("ada available");
    socket
        .until("ada available", |m| {
            m["type"] == "workers"
                && m["workers"].as_array().is_some_and(|w| {
                    w.iter().any(|w| w["sid"] == ada.as_str() && w["activity_name"] == "Available")
                })
        })
        .await;
    server.stop().await;
}
