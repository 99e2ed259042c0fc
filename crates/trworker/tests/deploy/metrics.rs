//! `/metrics`: HTTP requests by route template, reservations by outcome, event callbacks, WebSockets and
//! the engine's queues, moving as a real server works.

use crate::helpers::{
    activity_sid, admin, create_task, get, metrics_until, sample, sign_in, socket, worker_sid, Proc,
};

const PASSWORD: &str = "metrics-test-password";

#[tokio::test]
async fn requests_are_counted_by_route_template_never_by_raw_path() {
    let (_dir, server) = Proc::start_in("metrics-http", &["serve"], &[("TOKEN_PASSWORD", PASSWORD)]);
    let healthz = r#"route="/healthz",method="GET",status="200""#;
    let (_, before) = get(&server.url("/metrics")).await;
    let seen_before = sample(&before, "trworker_http_requests_total", healthz).unwrap_or(0.0);
    for _ in 0..3 {
        assert_eq!(get(&server.url("/healthz")).await.0, 200);
    }
    // Public: the page reads it before sign-in; the app reads it from the engine's REST API.
    assert_eq!(get(&server.url("/api/workspace")).await.0, 200);
    let refused = reqwest::Client::new()
        .post(server.url("/api/worker/activity"))
        .json(&serde_json::json!({ "activity_sid": "WA0" }))
        .send()
        .await
        .expect("activity");
    assert_eq!(refused.status().as_u16(), 401, "no token");
    assert_eq!(get(&server.url("/no/such/WT0123456789abcdef0123456789abcdef")).await.0, 404);

    let (status, page) = get(&server.url("/metrics")).await;
    assert_eq!(status, 200);
    assert_eq!(sample(&page, "trworker_http_requests_total", healthz), Some(seen_before + 3.0), "{page}");
    let count = sample(&page, "trworker_http_request_duration_seconds_count", healthz);
    assert_eq!(count, Some(seen_before + 3.0));
    let inf = format!("{healthz},le=\"+Inf\"");
    assert_eq!(sample(&page, "trworker_http_request_duration_seconds_bucket", &inf), count);
    let unauthorized = r#"route="/api/worker/activity",method="POST",status="401""#;
    assert_eq!(sample(&page, "trworker_http_requests_total", unauthorized), Some(1.0), "{page}");
    let unmatched = r#"route="unmatched",method="GET",status="404""#;
    assert_eq!(sample(&page, "trworker_http_requests_total", unmatched), Some(1.0), "{page}");
    assert!(!page.contains("WT0123456789abcdef"), "a raw path became a label:\n{page}");
    // The engine's REST API (which the app itself calls in local mode) is counted by its templates too.
    assert!(page.contains(r#"route="/v1/Workspaces/{ws}/Activities""#), "{page}");
    assert_eq!(sample(&page, "trworker_engine_poisoned", ""), Some(0.0));
    assert!(sample(&page, "trworker_engine_mailbox", "").is_some());
    assert!(sample(&page, "trworker_engine_unsaved_batches", "").is_some());
    assert_eq!(sample(&page, "trworker_assignment_callbacks_delivered_total", ""), Some(0.0), "{page}");
    assert!(page.contains("# TYPE trworker_http_request_duration_seconds histogram"));
    server.stop_cleanly();
}

#[tokio::test]
async fn reservations_callbacks_and_sockets_move_their_metrics() {
    let (dir, server) = Proc::start_in("metrics-events", &["serve"], &[("TOKEN_PASSWORD", PASSWORD)]);
    let client = admin(&dir.0);

    // A signed-in worker with its page open.
    let token = sign_in(&server, "charles", PASSWORD).await;
    let _page = socket(&server, &token).await;
    let page = metrics_until(&server, "one connected worker", |page| {
        sample(page, "trworker_connected_workers", "") == Some(1.0)
    })
    .await;
    assert_eq!(sample(&page, "trworker_websocket_connections", ""), Some(1.0));

    // Event callbacks to the app's own webhook, then a call that charles rejects.
    let update = twilio::client::taskrouter::UpdateWorkspace {
        event_callback_url: Some(server.url("/twilio/events")),
        ..Default::default()
    };
    client.update_workspace(&update).await.expect("set the EventCallbackUrl");
    let charles = worker_sid(&client, "charles").await;
    let available = activity_sid(&client, "Available").await;
    let to_available =
        twilio::client::taskrouter::UpdateWorker { activity_sid: Some(available), ..Default::default() };
    client.update_worker(&charles, &to_available).await.expect("charles available");
    let task = create_task(&client).await;
    // Routing happens as the task is created: the reservation exists when the create is answered.
    let reservations =
        client.list_task_reservations(&task.sid, &Default::default()).all().await.expect("reservations");
    let reservation = reservations.into_iter().next().expect("charles was offered the call");
    let reject = twilio::client::taskrouter::UpdateReservation {
        reservation_status: Some(twilio::models::ReservationStatus::Rejected),
        ..Default::default()
    };
    client.update_task_reservation(&task.sid, &reservation.sid, &reject).await.expect("reject");

    let page =
        metrics_until(&server, "the reservation's creation, rejection and delivered callbacks", |page| {
            sample(page, "trworker_reservations_total", r#"outcome="created""#).unwrap_or(0.0) >= 1.0
                && sample(page, "trworker_reservations_total", r#"outcome="rejected""#).unwrap_or(0.0) >= 1.0
                && sample(page, "trworker_event_callbacks_delivered_total", "").unwrap_or(0.0) >= 1.0
        })
        .await;
    assert_eq!(sample(&page, "trworker_reservations_total", r#"outcome="accepted""#), Some(0.0));
    assert_eq!(sample(&page, "trworker_event_callbacks_given_up_total", ""), Some(0.0));
    let webhook = r#"route="/twilio/events",method="POST",status="204""#;
    assert!(sample(&page, "trworker_http_requests_total", webhook).unwrap_or(0.0) >= 1.0, "{page}");
    server.stop_cleanly();
}

#[tokio::test]
async fn the_engine_alone_is_observable_too() {
    let (dir, server) = Proc::start_in("metrics-engine", &["engine"], &[]);
    assert_eq!(get(&server.url("/readyz")).await.0, 200);
    let client = admin(&dir.0);
    let charles = worker_sid(&client, "charles").await;
    let available = activity_sid(&client, "Available").await;
    let to_available =
        twilio::client::taskrouter::UpdateWorker { activity_sid: Some(available), ..Default::default() };
    client.update_worker(&charles, &to_available).await.expect("charles available");
    create_task(&client).await;
    // No worker app here: reservations are counted from the engine's own events.
    let page = metrics_until(&server, "the reservation", |page| {
        sample(page, "trworker_reservations_total", r#"outcome="created""#) == Some(1.0)
    })
    .await;
    assert!(
        page.contains(r#"trworker_build_info{version="#) && page.contains(r#"mode="engine"} 1"#),
        "{page}"
    );
    let created = r#"route="/v1/Workspaces/{ws}/Tasks",method="POST",status="201""#;
    assert_eq!(sample(&page, "trworker_http_requests_total", created), Some(1.0), "{page}");
    assert!(
        sample(&page, "trworker_engine_timers", "").unwrap_or(0.0) >= 1.0,
        "the reservation's timeout runs"
    );
    assert_eq!(sample(&page, "trworker_connected_workers", ""), None, "no worker app, no socket gauge");
    server.stop_cleanly();
}
