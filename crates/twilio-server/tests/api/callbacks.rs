//! Event callbacks reach a receiver signed, in order, filtered by EventsFilter, and retried after a failure.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{post, MethodRouter};
use axum::Router;
use tokio::sync::mpsc;
use twilio_server::callbacks;

use super::helpers::*;

struct Receiver {
    url: String,
    rx: mpsc::UnboundedReceiver<(Vec<(String, String)>, String)>,
}

#[derive(Clone)]
struct Rx {
    tx: mpsc::UnboundedSender<(Vec<(String, String)>, String)>,
    fail_first: Arc<Mutex<u32>>,
}

async fn receive(State(rx): State<Rx>, headers: HeaderMap, body: String) -> StatusCode {
    {
        let mut left = rx.fail_first.lock().unwrap();
        if *left > 0 {
            *left -= 1;
            return StatusCode::SERVICE_UNAVAILABLE;
        }
    }
    let fields: Vec<(String, String)> = url_pairs(&body);
    let signature =
        headers.get("x-twilio-signature").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    let _ = rx.tx.send((fields, signature));
    StatusCode::NO_CONTENT
}

fn url_pairs(body: &str) -> Vec<(String, String)> {
    let mut p = twilio_server::params::Params::parse(body).unwrap();
    let names: Vec<String> = p.pairs().iter().map(|(k, _)| k.clone()).collect();
    names.into_iter().filter_map(|n| p.str(&n).map(|v| (n, v))).collect()
}

async fn receiver(fail_first: u32) -> Receiver {
    receiver_at("/events", post(receive), fail_first).await
}

/// A receiver on a port of its own that answers at `path` with `answer`.
async fn receiver_at(path: &str, answer: MethodRouter<Rx>, fail_first: u32) -> Receiver {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}{path}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::unbounded_channel();
    let app =
        Router::new().route(path, answer).with_state(Rx { tx, fail_first: Arc::new(Mutex::new(fail_first)) });
    tokio::spawn(async move { axum::serve(listener, app).await });
    Receiver { url, rx }
}

/// Makes the seed's worker charles available; his SID.
async fn charles_available(app: &TestApp, ws: &str) -> String {
    let (_, workers) = app.get(&format!("/v1/Workspaces/{ws}/Workers?FriendlyName=charles")).await;
    let charles = workers["workers"][0]["sid"].as_str().unwrap().to_owned();
    let available = app.activity(ws, "Available").await;
    app.post(&format!("/v1/Workspaces/{ws}/Workers/{charles}"), &[("ActivitySid", available.as_str())]).await;
    charles
}

/// Waits for the engine's `reservation.accepted`: an assignment instruction is carried out after the answer.
async fn accepted(events: &mut tokio::sync::broadcast::Receiver<Arc<engine::event::Event>>) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while events.recv().await.unwrap().event_type != engine::event::EventType::ReservationAccepted {}
    })
    .await
    .expect("the reservation is accepted");
}

fn fast() -> callbacks::Options {
    callbacks::Options {
        backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        ..callbacks::Options::default()
    }
}

async fn next(r: &mut Receiver) -> (Vec<(String, String)>, String) {
    tokio::time::timeout(Duration::from_secs(10), r.rx.recv()).await.expect("a callback arrives").unwrap()
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or("")
}

#[tokio::test]
async fn events_are_signed_ordered_filtered_and_retried() {
    let app = spawn_app().await;
    let mut rec = receiver(2).await;
    callbacks::spawn(app.engine.clone(), credentials(), fast());
    let ws = app
        .workspace(&[
            ("EventCallbackUrl", rec.url.as_str()),
            ("EventsFilter", "task.created,reservation.created"),
        ])
        .await;
    app.call_centre(&ws, &[]).await;
    app.available_worker(&ws, "dave").await;
    let first = app.task(&ws).await;
    let second = app.task(&ws).await;

    let mut got = Vec::new();
    for _ in 0..3 {
        let (fields, signature) = next(&mut rec).await;
        assert!(
            twilio::signature::validate(TOKEN, &rec.url, &fields, &signature),
            "signature must validate: {fields:?}"
        );
        assert!(!twilio::signature::validate("other-token", &rec.url, &fields, &signature));
        assert_eq!(field(&fields, "AccountSid"), ACCOUNT);
        assert_eq!(field(&fields, "WorkspaceSid"), ws);
        got.push((field(&fields, "EventType").to_owned(), field(&fields, "ResourceSid").to_owned()));
    }
    assert_eq!(got[0], ("task.created".to_owned(), first["sid"].as_str().unwrap().to_owned()));
    assert_eq!(got[1].0, "reservation.created");
    assert_eq!(got[2], ("task.created".to_owned(), second["sid"].as_str().unwrap().to_owned()));

    // reservation.accepted is not in the filter; the next callback is the following task.created.
    let first_sid = first["sid"].as_str().unwrap();
    let res = app.first_reservation(&ws, first_sid).await;
    let accepted = [("ReservationStatus", "accepted")];
    app.update_reservation(&ws, &format!("Tasks/{first_sid}/Reservations/{res}"), &accepted, 200).await;
    let third = app.task(&ws).await;
    let (fields, _) = next(&mut rec).await;
    assert_eq!(field(&fields, "EventType"), "task.created");
    assert_eq!(field(&fields, "ResourceSid"), third["sid"].as_str().unwrap());

    // A new EventsFilter applies to the events after the update.
    app.post_expecting(
        &format!("/v1/Workspaces/{ws}"),
        &[("EventsFilter", "reservation.created,task.created,workspace.updated")],
        200,
    )
    .await;
    let (fields, _) = next(&mut rec).await;
    assert_eq!(field(&fields, "EventType"), "workspace.updated");
}

async fn answer_accept(
    State(rx): State<Rx>,
    headers: HeaderMap,
    body: String,
) -> axum::Json<serde_json::Value> {
    let fields = url_pairs(&body);
    let signature =
        headers.get("x-twilio-signature").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    let _ = rx.tx.send((fields, signature));
    axum::Json(serde_json::json!({"instruction": "accept"}))
}

#[tokio::test]
async fn assignment_callback_instruction_accepts_the_reservation() {
    let app = spawn_app().await;
    let mut rec = receiver_at("/assign", post(answer_accept), 0).await;
    let url = rec.url.clone();

    let stats = Arc::new(callbacks::DeliveryStats::default());
    twilio_server::assignment::spawn(
        app.engine.clone(),
        credentials(),
        twilio_server::assignment::TIMEOUT,
        stats.clone(),
    );
    let ws = app.workspace(&[]).await;
    let base = format!("/v1/Workspaces/{ws}");
    let centre = app.call_centre(&ws, &[("AssignmentCallbackUrl", url.as_str())]).await;
    app.available_worker(&ws, "erin").await;
    let mut events = twilio_server::Engine::subscribe(&app.engine);
    let task = app.task(&ws).await;
    let task_sid = task["sid"].as_str().unwrap();

    let (fields, signature) = next(&mut rec).await;
    assert!(twilio::signature::validate(TOKEN, &url, &fields, &signature));
    assert_eq!(field(&fields, "TaskSid"), task_sid);
    assert_eq!(field(&fields, "WorkflowSid"), centre.workflow);
    let reservation = field(&fields, "ReservationSid").to_owned();

    accepted(&mut events).await;
    let (_, r) = app.get(&format!("{base}/Tasks/{task_sid}/Reservations/{reservation}")).await;
    assert_eq!(r["reservation_status"], "accepted");
    let counts = stats.snapshot();
    assert_eq!((counts.delivered, counts.failed_attempts, counts.given_up), (1, 0, 0), "{counts:?}");
}

#[tokio::test]
async fn real_engine_events_reach_the_callback_url_signed_and_in_order() {
    let (real, ws) = spawn_real().await;
    let app = &real.app;
    let mut rec = receiver(0).await;
    callbacks::spawn(real.engine.clone(), credentials(), fast());
    app.post_expecting(
        &format!("/v1/Workspaces/{ws}"),
        &[("EventCallbackUrl", rec.url.as_str()), ("EventsFilter", "task.created,reservation.created")],
        200,
    )
    .await;
    let charles = charles_available(app, &ws).await;
    let task = app.task(&ws).await;

    let (first, signature) = next(&mut rec).await;
    assert!(twilio::signature::validate(TOKEN, &rec.url, &first, &signature));
    assert_eq!(field(&first, "EventType"), "task.created");
    assert_eq!(field(&first, "WorkspaceName"), "writers");
    assert_eq!(field(&first, "AccountSid"), ACCOUNT);
    assert_eq!(field(&first, "TaskSid"), task["sid"].as_str().unwrap());
    let (second, signature) = next(&mut rec).await;
    assert!(twilio::signature::validate(TOKEN, &rec.url, &second, &signature));
    assert_eq!(field(&second, "EventType"), "reservation.created");
    assert_eq!(field(&second, "WorkerSid"), charles);
}

#[tokio::test]
async fn real_engine_carries_out_the_assignment_instruction() {
    let (real, ws) = spawn_real().await;
    let app = &real.app;
    let mut rec = receiver_at("/assign", post(answer_accept), 0).await;
    let url = rec.url.clone();
    twilio_server::assignment::spawn(
        real.engine.clone(),
        credentials(),
        twilio_server::assignment::TIMEOUT,
        Default::default(),
    );

    let (_, wfs) = app.get(&format!("/v1/Workspaces/{ws}/Workflows")).await;
    let wf = wfs["workflows"][0]["sid"].as_str().unwrap().to_owned();
    app.post_expecting(
        &format!("/v1/Workspaces/{ws}/Workflows/{wf}"),
        &[("AssignmentCallbackUrl", url.as_str())],
        200,
    )
    .await;
    let charles = charles_available(app, &ws).await;

    let mut events = twilio_server::Engine::subscribe(&real.engine);
    let (_, task) =
        app.post(&format!("/v1/Workspaces/{ws}/Tasks"), &[("Attributes", r#"{"type":"support"}"#)]).await;
    let task_sid = task["sid"].as_str().unwrap();
    let (fields, signature) = next(&mut rec).await;
    assert!(twilio::signature::validate(TOKEN, &url, &fields, &signature));
    assert_eq!(field(&fields, "TaskSid"), task_sid);
    assert_eq!(field(&fields, "WorkflowSid"), wf);
    assert_eq!(field(&fields, "WorkerSid"), charles);
    accepted(&mut events).await;
    let (_, t) = app.get(&format!("/v1/Workspaces/{ws}/Tasks/{task_sid}")).await;
    assert_eq!(t["assignment_status"], "assigned");
}
