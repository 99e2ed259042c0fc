//! Workers' event channels in twilio mode: the app against a separate TaskRouter (the engine alone, as
//! `trworker engine`) whose workspace has no `EventCallbackUrl`, so that whatever reaches the page came
//! through the event bridge.

use std::sync::Arc;
use std::time::Duration;

use engine::{Clock, ManualClock, SystemClock};
use futures_util::StreamExt;
use serde_json::json;
use trworker::app::{AppConfig, AppState, Mode};
use twilio::client::taskrouter::UpdateWorkspace;
use twilio::models::ReservationStatus;

use crate::helpers::{spawn_app, Socket, TestApp, PASSWORD};

/// The app of `spawn_app`, with the workspace's webhook removed and Unavailable as its timeout activity
/// (as `trworker setup` makes it).
async fn app_without_webhook() -> TestApp {
    let app = spawn_app().await;
    let update = UpdateWorkspace {
        event_callback_url: Some(String::new()),
        timeout_activity_sid: Some(app.activity("Unavailable").await),
        ..Default::default()
    };
    let workspace = app.admin.update_workspace(&update).await.expect("clear the EventCallbackUrl");
    assert_eq!(workspace.event_callback_url.filter(|u| !u.is_empty()), None);
    app
}

/// Waits until `state` has `connected` of its event channels connected (and at least that many open).
async fn channels_connected(state: &AppState, connected: usize) {
    for _ in 0..1000 {
        if state.event_channels().1 == connected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("event channels never reached {connected} connected: {:?}", state.event_channels());
}

/// The next event frame of `event_type` on `socket`.
async fn event(socket: &mut Socket, event_type: &str) -> serde_json::Value {
    socket.until(event_type, |m| m["type"] == "event" && m["event_type"] == event_type).await
}

#[tokio::test]
async fn with_no_webhook_a_call_reaches_the_page_and_the_whole_call_works() {
    let app = app_without_webhook().await;
    let (token, mut socket) = app.connect("alice").await;
    channels_connected(&app.state, 1).await;
    app.state.reconcile().await; // the workflows' reservation timeouts, for the frame
    app.set_activity(&token, "Available").await;

    let task = app.incoming_call("+15551230101").await;
    let offered = event(&mut socket, "reservation.created").await;
    assert_eq!(offered["reservation"]["task"]["sid"], task.sid.as_str());
    assert_eq!(offered["reservation"]["task"]["attributes"]["from"], "+15551230101");
    assert!(offered["reservation"]["timeout_at"].is_i64(), "{offered}");
    let reservation = offered["reservation"]["sid"].as_str().expect("sid").to_owned();

    let (status, body) = app.accept(&token, &reservation).await;
    assert_eq!(status, 200, "{body}");
    event(&mut socket, "reservation.accepted").await;
    socket.state_where("the conference", |s| s["conference"].is_object()).await;
    let (status, body) = app.post(&format!("/api/conferences/{}/end", task.sid), &token, json!({})).await;
    assert_eq!(status, 200, "{body}");
    event(&mut socket, "reservation.wrapup").await;
    socket.state_where("wrap-up", |s| s["reservations"][0]["status"] == "wrapping").await;
    let (status, body) = app.post(&format!("/api/tasks/{}/complete", task.sid), &token, json!({})).await;
    assert_eq!(status, 200, "{body}");
    event(&mut socket, "reservation.completed").await;
    socket.state_where("no call left", |s| s["reservations"] == json!([])).await;

    // A call left ringing times out: the page shows the worker moved to Unavailable.
    app.set_activity(&token, "Available").await;
    app.incoming_call("+15551230102").await;
    event(&mut socket, "reservation.created").await;
    app.advance_engine(11).await;
    event(&mut socket, "reservation.timeout").await;
    socket.state_where("Unavailable", |s| s["worker"]["activity_name"] == "Unavailable").await;

    let metrics =
        app.http.get(app.url("/metrics")).send().await.expect("metrics").text().await.expect("text");
    let received = metrics
        .lines()
        .find(|l| l.starts_with("trworker_events_received_total{source=\"channel\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<u64>().ok());
    assert!(received.is_some_and(|n| n >= 6), "{metrics}");
    assert!(metrics.contains("trworker_event_channels_connected 1"), "{metrics}");
}

#[tokio::test]
async fn a_cut_channel_reconnects_and_no_call_is_missed() {
    let app = app_without_webhook().await;
    let (token, mut socket) = app.connect("alice").await;
    channels_connected(&app.state, 1).await;

    // Another session of alice's channel asks for the others to be closed: the bridge cuts the app's.
    let capability = twilio::token::WorkerCapability::new(
        &app.upstream.account_sid,
        &app.upstream.auth_token,
        &app.workspace_sid,
        &app.alice,
    );
    let mut intruder = app.close_other_sessions(&app.alice, |now| capability.to_jwt(now)).await;
    let lost =
        socket.until("the channel lost", |m| m["type"] == "channel" && m["status"] != "connected").await;
    assert_eq!(lost["status"], "reconnecting", "{lost}");
    assert!(lost["reason"].as_str().is_some_and(|r| !r.is_empty()), "{lost}");
    // A call comes in, perhaps while the app's channel is down (it retries within seconds).
    app.set_activity(&token, "Available").await;
    let task = app.incoming_call("+15551230103").await;
    app.reservation(&app.alice, ReservationStatus::Pending).await;
    // The channel comes back, and the page has the call: in a state (rebuilt after the activity change or
    // at the reconnect) or as an event after the reconnect, in whichever order they come.
    let (mut back, mut call) = (false, false);
    while !(back && call) {
        let m = socket.next().await.expect("a message");
        back |= m["type"] == "channel" && m["status"] == "connected";
        call |= m["type"] == "state" && m["reservations"][0]["task"]["sid"] == task.sid.as_str();
        call |= m["type"] == "event"
            && m["event_type"] == "reservation.created"
            && m["reservation"]["task"]["sid"] == task.sid.as_str();
    }
    let _ = intruder.close(None).await;
    while intruder.next().await.is_some() {}
}

/// A second instance of `app`'s server: the same configuration on another port, with a clock of its own.
async fn second_instance(app: &TestApp) -> (String, AppState, crate::support::Server) {
    let listener = crate::support::bind(0).await;
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let mut config = AppConfig::new(
        Mode::Twilio,
        &app.upstream.account_sid,
        &app.upstream.auth_token,
        &app.workspace_sid,
        PASSWORD,
        &base,
    );
    config.taskrouter_url = Some(app.upstream.url.clone());
    config.api_url = Some(app.upstream.url.clone());
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(SystemClock.now()));
    let server = crate::support::start_app(listener, config, clock).await;
    (base, server.app().clone(), server)
}

#[tokio::test]
async fn two_instances_each_show_the_call_and_an_accept_on_one_shows_on_the_other() {
    let app = app_without_webhook().await;
    let (second_base, second_state, _second) = second_instance(&app).await;
    // One worker, a tab on each instance (the second with the same token: no shared state is needed).
    let (token, mut first) = app.connect("alice").await;
    let ws = format!("{}/api/ws", second_base.replacen("http", "ws", 1));
    let (stream, _) = tokio_tungstenite::connect_async(ws).await.expect("connect to the second");
    let mut second = Socket { stream };
    let hello = json!({ "type": "hello", "token": token });
    futures_util::SinkExt::send(
        &mut second.stream,
        tokio_tungstenite::tungstenite::Message::Text(hello.to_string().into()),
    )
    .await
    .expect("hello");
    second.until("the state", |m| m["type"] == "state").await;
    channels_connected(&app.state, 1).await;
    channels_connected(&second_state, 1).await;

    app.set_activity(&token, "Available").await;
    let task = app.incoming_call("+15551230104").await;
    let on_first = event(&mut first, "reservation.created").await;
    let on_second = event(&mut second, "reservation.created").await;
    assert_eq!(on_first["reservation"]["sid"], on_second["reservation"]["sid"]);
    assert_eq!(on_second["reservation"]["task"]["sid"], task.sid.as_str());

    // Accepted through the first instance: the second's tab shows it too.
    let reservation = on_first["reservation"]["sid"].as_str().expect("sid").to_owned();
    let (status, body) = app.accept(&token, &reservation).await;
    assert_eq!(status, 200, "{body}");
    event(&mut second, "reservation.accepted").await;
    second.state_where("the accepted call", |s| s["reservations"][0]["status"] == "accepted").await;
}

/// `trworker_events_received_total{source=…}` on `app`'s `/metrics`.
async fn received(app: &TestApp, source: &str) -> u64 {
    let page = app.http.get(app.url("/metrics")).send().await.expect("metrics").text().await.expect("text");
    let series = format!("trworker_events_received_total{{source=\"{source}\"}} ");
    page.lines()
        .find_map(|l| l.strip_prefix(series.as_str()))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {series}in {page}"))
}

#[tokio::test]
async fn with_the_webhook_too_an_event_shows_once() {
    // spawn_app's workspace posts every event to the app as well.
    let app = spawn_app().await;
    let (_, mut socket) = app.connect("alice").await;
    channels_connected(&app.state, 1).await;
    let webhook_before = received(&app, "webhook").await;
    app.admin_set_activity(&app.alice, "Available").await;
    // Both copies have come in once the webhook's has (the channel's frame is on the socket, below).
    for _ in 0..1000 {
        if received(&app, "webhook").await > webhook_before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(received(&app, "webhook").await > webhook_before, "the webhook delivered the event");
    // A later change marks the end: every frame of the first is before it on the socket.
    app.admin_set_activity(&app.alice, "Unavailable").await;
    let mut shown = 0;
    loop {
        let m = socket.next().await.expect("a message");
        if m["type"] == "event" && m["event_type"] == "worker.activity.update" {
            if m["worker"]["activity_name"] == "Unavailable" {
                break;
            }
            shown += 1;
        }
    }
    assert_eq!(shown, 1, "the move to Available was shown once, not once per source");
}

#[tokio::test]
async fn an_extend_answered_by_another_instance_holds_on_this_one() {
    let app = app_without_webhook().await;
    let (second_base, second_state, _second) = second_instance(&app).await;
    let token = app.sign_in("alice").await;
    let task = app.on_call(&token, &app.alice, "+15551230105").await;
    let (status, body) = app.post(&format!("/api/conferences/{}/end", task.sid), &token, json!({})).await;
    assert_eq!(status, 200, "{body}");
    app.task_status(&task.sid, "wrapping").await;
    app.state.reconcile().await; // this instance's countdown: 60 s (and a 5 s grace)

    // "Extend" reaches the other instance (no sticky sessions): a minute more, written on the task.
    let extend =
        second_base_post(&second_base, &format!("/api/tasks/{}/wrap-up/extend", task.sid), &token).await;
    assert_eq!(extend.0, 200, "{}", extend.1);
    let written = app.admin.fetch_task(&task.sid).await.expect("task").attributes_json().expect("JSON");
    assert_eq!(written["wrap_up"]["ends_at"], extend.1["wrap_up"]["ends_at"], "{written}");
    assert_eq!(written["from"], "+15551230105", "the call's attributes are kept");

    // Past this instance's own end, the task stays in wrap-up: the extension holds.
    app.clock.advance_millis(70_000);
    app.state.reconcile().await;
    let now = app.admin.fetch_task(&task.sid).await.expect("task");
    assert_eq!(now.assignment_status.map(|s| s.as_str().to_owned()).as_deref(), Some("wrapping"));
    // Past the extended end, it is completed, once.
    app.clock.advance_millis(60_000);
    app.state.reconcile().await;
    second_state.reconcile().await;
    app.completed_for(&task.sid, "Was stuck in wrapping").await;
}

/// `POST path` with a bearer token on the instance at `base`: status and body.
async fn second_base_post(base: &str, path: &str, token: &str) -> (u16, serde_json::Value) {
    let response = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .bearer_auth(token)
        .json(&json!({}))
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

#[tokio::test]
async fn an_unreachable_bridge_shows_reconnecting_with_the_reason_and_readyz_says_so() {
    // Nothing listens on port 9 of this machine.
    let app = crate::helpers::spawn_app_with(|config| {
        config.event_source = Some(trworker::app::channels::Source::Bridge {
            base_url: "http://127.0.0.1:9/v1/wschannels".into(),
        })
    })
    .await;
    let ready = app.http.get(app.url("/readyz")).send().await.expect("readyz");
    assert_eq!(ready.status().as_u16(), 200, "no channel open yet: ready");
    let token = app.sign_in("alice").await;
    // Whether the failure came before or after the page opened, the page is told.
    let mut socket = app.socket(&token, None).await;
    let down = socket.until("the channel's state", |m| m["type"] == "channel").await;
    assert_eq!(down["status"], "reconnecting", "{down}");
    let reason = down["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("127.0.0.1:9") || reason.to_lowercase().contains("connect"), "{down}");
    let ready = app.http.get(app.url("/readyz")).send().await.expect("readyz");
    assert_eq!(ready.status().as_u16(), 503);
    let body: serde_json::Value = ready.json().await.expect("json");
    assert!(body["reason"].as_str().is_some_and(|r| r.contains("event channel")), "{body}");
    // The page still works over REST: the worker goes online.
    app.set_activity(&token, "Available").await;
    socket.state_where("Available", |s| s["worker"]["activity_name"] == "Available").await;
}

#[tokio::test]
async fn a_channel_lives_while_a_tab_is_open_and_closes_past_the_grace_or_at_sign_out() {
    let app = app_without_webhook().await;
    // A sign-in no page follows (a script): its channel goes once the grace (120 s) is over.
    let _script = app.sign_in("bob").await;
    let (token, socket) = app.connect("alice").await;
    channels_connected(&app.state, 2).await;
    app.clock.advance_millis(121_000);
    app.state.reconcile().await;
    assert_eq!(app.state.event_channels(), (1, 1), "alice's tab keeps hers; bob's is closed");
    // Alice's tab closes: her channel stays through the grace, for a reload, then goes.
    drop(socket);
    for _ in 0..1000 {
        if app.state.connections().1 == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    app.clock.advance_millis(60_000);
    app.state.reconcile().await;
    assert_eq!(app.state.event_channels().0, 1, "within the grace");
    app.clock.advance_millis(61_000);
    app.state.reconcile().await;
    assert_eq!(app.state.event_channels().0, 0, "past the grace");
    // Signing in again opens it; signing out closes it.
    let (_, _socket) = app.connect("alice").await;
    assert_eq!(app.state.event_channels().0, 1);
    let (status, body) = app.post("/api/token/sign-out", &token, json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(app.state.event_channels().0, 0);
}
