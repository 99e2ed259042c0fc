//! The facade over the real engine core: the seed's whole call story over HTTP, reservation timeout with an
//! injected clock, reject, statistics and events.

use std::sync::Arc;

use serde_json::Value;

use super::helpers::*;

async fn worker_sid(app: &TestApp, ws: &str, name: &str) -> String {
    let (status, body) = app.get(&format!("/v1/Workspaces/{ws}/Workers?FriendlyName={name}")).await;
    assert_eq!(status, 200, "{body}");
    body["workers"][0]["sid"].as_str().unwrap().to_owned()
}

async fn activity_sid(app: &TestApp, ws: &str, name: &str) -> String {
    let (_, body) = app.get(&format!("/v1/Workspaces/{ws}/Activities?FriendlyName={name}")).await;
    body["activities"][0]["sid"].as_str().unwrap().to_owned()
}

async fn go_available(app: &TestApp, ws: &str, worker: &str) {
    let available = activity_sid(app, ws, "Available").await;
    let (status, body) = app
        .post(&format!("/v1/Workspaces/{ws}/Workers/{worker}"), &[("ActivitySid", available.as_str())])
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["available"], true);
}

async fn call_task(app: &TestApp, ws: &str) -> Value {
    let attributes =
        r#"{"call_sid":"CA00000000000000000000000000000abc","from":"+15551234567","type":"support"}"#;
    let (status, body) = app.post(&format!("/v1/Workspaces/{ws}/Tasks"), &[("Attributes", attributes)]).await;
    assert_eq!(status, 201, "{body}");
    body
}

#[tokio::test]
async fn the_seed_call_flow_end_to_end() {
    let (real, ws) = spawn_real().await;
    let app = &real.app;
    let charles = worker_sid(app, &ws, "charles").await;
    go_available(app, &ws, &charles).await;

    let task = call_task(app, &ws).await;
    let task_sid = task["sid"].as_str().unwrap();
    assert_eq!(task["assignment_status"], "reserved");
    let (_, list) = app
        .get(&format!("/v1/Workspaces/{ws}/Workers/{charles}/Reservations?ReservationStatus=pending"))
        .await;
    let res = list["reservations"][0]["sid"].as_str().unwrap().to_owned();

    let unavailable = activity_sid(app, &ws, "Unavailable").await;
    let (status, body) = app
        .post(
            &format!("/v1/Workspaces/{ws}/Tasks/{task_sid}/Reservations/{res}"),
            &[
                ("Instruction", "conference"),
                ("From", "+15005550000"),
                ("PostWorkActivitySid", unavailable.as_str()),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["reservation_status"], "accepted");

    let (_, t) = app.get(&format!("/v1/Workspaces/{ws}/Tasks/{task_sid}")).await;
    assert_eq!(t["assignment_status"], "assigned");
    let attrs: Value = serde_json::from_str(t["attributes"].as_str().unwrap()).unwrap();
    let cf = attrs["conference"]["sid"].as_str().unwrap().to_owned();

    let (status, confs) =
        app.get(&format!("/2010-04-01/Accounts/{ACCOUNT}/Conferences.json?Status=in-progress")).await;
    assert_eq!(status, 200, "{confs}");
    assert_eq!(confs["conferences"][0]["sid"], cf.as_str());
    assert_eq!(confs["conferences"][0]["friendly_name"], task_sid);
    let (status, parts) =
        app.get(&format!("/2010-04-01/Accounts/{ACCOUNT}/Conferences/{cf}/Participants.json")).await;
    assert_eq!(status, 200, "{parts}");
    assert_eq!(parts["participants"].as_array().unwrap().len(), 2);
    // The conference can also be named by its friendly name (the task SID).
    let (status, _) = app.get(&format!("/2010-04-01/Accounts/{ACCOUNT}/Conferences/{task_sid}.json")).await;
    assert_eq!(status, 200);

    let (status, ended) = app
        .post(&format!("/2010-04-01/Accounts/{ACCOUNT}/Conferences/{cf}.json"), &[("Status", "completed")])
        .await;
    assert_eq!(status, 200, "{ended}");
    assert_eq!(ended["status"], "completed");
    let (_, t) = app.get(&format!("/v1/Workspaces/{ws}/Tasks/{task_sid}")).await;
    assert_eq!(t["assignment_status"], "wrapping");
    let (_, w) = app.get(&format!("/v1/Workspaces/{ws}/Workers/{charles}")).await;
    assert_eq!(w["activity_name"], "Unavailable");

    let (status, t) = app
        .post(
            &format!("/v1/Workspaces/{ws}/Tasks/{task_sid}"),
            &[("AssignmentStatus", "completed"), ("Reason", "done")],
        )
        .await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["assignment_status"], "completed");
    assert_eq!(t["reason"], "done");

    let (status, events) =
        app.get(&format!("/v1/Workspaces/{ws}/Events?TaskSid={task_sid}&PageSize=5")).await;
    assert_eq!(status, 200, "{events}");
    assert_eq!(events["events"][0]["event_type"], "task.created");
    assert!(events["meta"]["next_page_url"].is_string(), "more than 5 events for one task");

    let (status, stats) = app.get(&format!("/v1/Workspaces/{ws}/CumulativeStatistics")).await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(stats["tasks_completed"], 1);
    assert_eq!(stats["account_sid"], ACCOUNT);
    let (status, rt) = app.get(&format!("/v1/Workspaces/{ws}/RealTimeStatistics")).await;
    assert_eq!(status, 200, "{rt}");
    assert!(rt["activity_statistics"].is_array());
}

#[tokio::test]
async fn reservation_timeout_and_reject_follow_the_engine() {
    let (real, ws) = spawn_real().await;
    let app = &real.app;
    let charles = worker_sid(app, &ws, "charles").await;
    go_available(app, &ws, &charles).await;
    let task = call_task(app, &ws).await;
    let task_sid = task["sid"].as_str().unwrap().to_owned();
    let (_, list) = app.get(&format!("/v1/Workspaces/{ws}/Tasks/{task_sid}/Reservations")).await;
    let res = list["reservations"][0]["sid"].as_str().unwrap().to_owned();

    // The demo workflow's reservation timeout is 10 s.
    real.clock.advance_millis(11_000);
    real.engine.tick().unwrap();
    let (_, r) = app.get(&format!("/v1/Workspaces/{ws}/Tasks/{task_sid}/Reservations/{res}")).await;
    assert_eq!(r["reservation_status"], "timeout");
    let (_, w) = app.get(&format!("/v1/Workspaces/{ws}/Workers/{charles}")).await;
    assert_eq!(w["activity_name"], "Unavailable", "moved to the workspace's timeout activity");

    go_available(app, &ws, &charles).await;
    let (_, list) = app
        .get(&format!("/v1/Workspaces/{ws}/Tasks/{task_sid}/Reservations?ReservationStatus=pending"))
        .await;
    let res2 = list["reservations"][0]["sid"].as_str().unwrap().to_owned();
    let offline = activity_sid(app, &ws, "Offline").await;
    let (status, r) = app
        .post(
            &format!("/v1/Workspaces/{ws}/Workers/{charles}/Reservations/{res2}"),
            &[("ReservationStatus", "rejected"), ("WorkerActivitySid", offline.as_str())],
        )
        .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["reservation_status"], "rejected");
    let (status, body) = app
        .post(
            &format!("/v1/Workspaces/{ws}/Workers/{charles}/Reservations/{res2}"),
            &[("ReservationStatus", "accepted")],
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_twilio_error(&body, 400, 20001);

    // Engine-side validation comes back as Twilio errors naming the parameter.
    let (status, body) = app
        .post(
            &format!("/v1/Workspaces/{ws}/TaskQueues"),
            &[("FriendlyName", "q"), ("TargetWorkers", "skills HAS")],
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(assert_twilio_error(&body, 400, 20001).contains("TargetWorkers"));
}

#[tokio::test]
async fn every_spec_operation_answers_without_a_5xx_on_the_real_engine() {
    let (real, ws) = spawn_real().await;
    super::sweep::sweep(&real.app, &ws, false).await;
    let _keep: Arc<_> = real.engine.clone();
}
