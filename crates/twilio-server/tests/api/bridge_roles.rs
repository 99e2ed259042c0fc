//! The event bridge's envelope for tokens beyond a worker's own: a workspace token (role `admin`, no
//! worker: the SDK's `Workspace` class) reads the workspace, a supervisor's token supervises a call
//! (`Supervisor.monitor`), and a worker's token does neither.

use serde_json::{json, Value};

use crate::bridge::{call, role_token as token};
use crate::helpers::{spawn_app, TestApp, ACCOUNT};

/// [`call`], asserting its status; answers the body.
pub(crate) async fn call_expecting(
    app: &TestApp,
    token: &str,
    (method, url): (&str, &str),
    params: Value,
    expected: u16,
) -> Value {
    let (status, body) = call(app, token, method, url, params).await;
    assert_eq!(status, expected, "{method} {url}: {body}");
    body
}

pub(crate) fn message(body: &Value) -> &str {
    body["message"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn a_workspace_token_reads_workers_queues_and_tasks_and_a_workers_token_does_not() {
    let app = spawn_app().await;
    let (ws, _, [a, b]) = app.staffed_centre(["alice", "bob"]).await;
    let task = app.task(&ws).await;
    let wt = task["sid"].as_str().unwrap().to_owned();
    let admin = token(&ws, None, "admin");
    let on = |path: &str| format!("Workspaces/{ws}/{path}");

    // Workspace.fetchWorkers: every worker, paged by AfterSid, and by NextToken once ordered.
    let (status, body) = call(&app, &admin, "GET", &on("Workers"), json!({"PageSize": 1})).await;
    assert_eq!(status, 200, "{body}");
    let page = &body["payload"];
    assert_eq!(page["contents"].as_array().unwrap().len(), 1);
    let next = page["after_sid"].as_str().unwrap().to_owned();
    assert_eq!(page["meta"]["next_token"], next.as_str());
    let ordered = json!({"PageSize": 1, "Ordering": "DateCreated:asc", "NextToken": next});
    let (status, body) = call(&app, &admin, "GET", &on("Workers"), ordered).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["payload"]["contents"][0]["sid"], b.as_str());
    assert!(body["payload"]["after_sid"].is_null(), "the last page: {body}");
    // The REST list's filters apply.
    let (_, body) = call(&app, &admin, "GET", &on("Workers"), json!({"FriendlyName": "alice"})).await;
    let names: Vec<&str> =
        body["payload"]["contents"].as_array().unwrap().iter().map(|w| w["sid"].as_str().unwrap()).collect();
    assert_eq!(names, [a.as_str()]);

    // Workspace.fetchWorker, fetchTaskQueues, fetchTaskQueue and fetchTask, in the SDK's format.
    let (status, body) = call(&app, &admin, "GET", &on(&format!("Workers/{b}")), json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["payload"]["date_created"].is_i64(), "epoch seconds: {body}");
    let (status, body) = call(&app, &admin, "GET", &on("TaskQueues"), json!({"PageSize": 1000})).await;
    assert_eq!(status, 200, "{body}");
    let queue = body["payload"]["contents"][0].clone();
    for key in [
        "friendly_name",
        "reservation_activity_name",
        "assignment_activity_name",
        "target_workers",
        "max_reserved_workers",
        "task_order",
        "reservation_activity_sid",
        "assignment_activity_sid",
        "workspace_sid",
        "account_sid",
        "sid",
        "date_created",
        "date_updated",
        "lifo_queue",
    ] {
        assert!(queue.get(key).is_some(), "the SDK's TaskQueueDescriptor needs {key}: {queue}");
    }
    let wq = queue["sid"].as_str().unwrap();
    let (status, body) = call(&app, &admin, "GET", &on(&format!("TaskQueues/{wq}")), json!({})).await;
    assert_eq!((status, body["payload"]["friendly_name"].as_str()), (200, Some("support")), "{body}");
    let (status, body) = call(&app, &admin, "GET", &on(&format!("Tasks/{wt}")), json!({})).await;
    assert_eq!((status, body["payload"]["sid"].as_str()), (200, Some(wt.as_str())), "{body}");

    // A workspace token acts as no worker: a worker's calls and the channel are not for it.
    let (status, body) =
        call(&app, &admin, "GET", &on(&format!("Workers/{a}/Reservations")), json!({})).await;
    assert_eq!(status, 403, "{body}");
    assert!(message(&body).contains("workspace token"), "{body}");
    let url = format!("{}/v1/wschannels?token={admin}", app.base.replacen("http", "ws", 1));
    let refused = tokio_tungstenite::connect_async(url).await.unwrap_err();
    assert!(refused.to_string().contains("401"), "{refused}");
    // A grant with no worker and another role is no token at all.
    let (status, body) = call(&app, &token(&ws, None, "worker"), "GET", &on("Workers"), json!({})).await;
    assert_eq!(status, 401, "{body}");

    // A worker's token reads its own worker only: no list, no other worker, no queue, no other's task.
    let worker = token(&ws, Some(&b), "worker");
    for path in
        ["Workers".to_owned(), format!("Workers/{a}"), "TaskQueues".into(), format!("TaskQueues/{wq}")]
    {
        let (status, body) = call(&app, &worker, "GET", &on(&path), json!({})).await;
        assert_eq!(status, 403, "{path}: {body}");
    }
    let holder = app.first_reservation(&ws, &wt).await;
    let (_, r) = app.get(&format!("/v1/Workspaces/{ws}/Tasks/{wt}/Reservations/{holder}")).await;
    let other = if r["worker_sid"] == a.as_str() { &b } else { &a };
    let (status, body) =
        call(&app, &token(&ws, Some(other), "worker"), "GET", &on(&format!("Tasks/{wt}")), json!({})).await;
    assert_eq!(status, 403, "{body}");
}

#[tokio::test]
async fn a_supervisor_monitors_then_barges_into_a_call_as_itself_only() {
    let app = spawn_app().await;
    let (ws, _, [a]) = app.staffed_centre(["alice"]).await;
    // The supervisor is a worker of the workspace, not in the queue (no skills), reached at its contact_uri.
    let (status, s) = app
        .post(
            &format!("/v1/Workspaces/{ws}/Workers"),
            &[("FriendlyName", "sam"), ("Attributes", r#"{"contact_uri":"client:sam"}"#)],
        )
        .await;
    assert_eq!(status, 201, "{s}");
    let sup = s["sid"].as_str().unwrap().to_owned();
    let attributes = r#"{"type":"support","call_sid":"CA00000000000000000000000000000c01"}"#;
    let (_, task) = app.post(&format!("/v1/Workspaces/{ws}/Tasks"), &[("Attributes", attributes)]).await;
    let wt = task["sid"].as_str().unwrap().to_owned();
    let wr = app.first_reservation(&ws, &wt).await;
    let (supervisor, worker) = (token(&ws, Some(&sup), "supervisor"), token(&ws, Some(&a), "worker"));
    let on_task = format!("Workspaces/{ws}/Tasks/{wt}/Reservations/{wr}");
    let monitor = json!({"Instruction": "supervise", "Supervisor": sup, "SupervisorMode": "monitor"});

    // Before the call is answered there is nothing to supervise.
    let (status, body) = call(&app, &supervisor, "POST", &on_task, monitor.clone()).await;
    assert_eq!(status, 400, "{body}");
    assert!(message(&body).contains("40146"), "{body}");

    let accept = json!({"Instruction": "conference", "To": "client:alice"});
    let on_a = format!("Workspaces/{ws}/Workers/{a}/Reservations/{wr}");
    let (status, body) = call(&app, &worker, "POST", &on_a, accept).await;
    assert_eq!(status, 200, "{body}");
    let (_, t) = app.get(&format!("/v1/Workspaces/{ws}/Tasks/{wt}")).await;
    let attributes: Value = serde_json::from_str(t["attributes"].as_str().unwrap()).unwrap();
    let cf = attributes["conference"]["sid"].as_str().unwrap().to_owned();
    let legs = || async {
        let (_, list) =
            app.get(&format!("/2010-04-01/Accounts/{ACCOUNT}/Conferences/{cf}/Participants.json")).await;
        let legs = list["participants"].as_array().unwrap().clone();
        legs.into_iter().filter(|p| p["label"] == "supervisor").collect::<Vec<_>>()
    };

    // A worker cannot supervise, and a supervisor cannot supervise as someone else.
    let (status, body) = call(&app, &worker, "POST", &on_task, monitor.clone()).await;
    assert_eq!(status, 403, "{body}");
    let as_a = json!({"Instruction": "supervise", "Supervisor": a, "SupervisorMode": "monitor"});
    let (status, body) = call(&app, &supervisor, "POST", &on_task, as_a).await;
    assert_eq!(status, 403, "{body}");
    // Nor is the task's view of a reservation a way to accept or reject it.
    let (status, body) =
        call(&app, &supervisor, "POST", &on_task, json!({"ReservationStatus": "rejected"})).await;
    assert_eq!(status, 400, "{body}");
    assert!(legs().await.is_empty());

    // Supervisor.monitor: the supervisor's leg, muted, dialled at its contact_uri; then barge unmutes it.
    let (status, body) = call(&app, &supervisor, "POST", &on_task, monitor).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["payload"]["sid"], wr.as_str());
    let leg = legs().await;
    assert_eq!(leg.len(), 1, "{leg:?}");
    assert_eq!((leg[0]["muted"].as_bool(), leg[0]["coaching"].as_bool()), (Some(true), Some(false)));
    let barge = json!({"Instruction": "supervise", "Supervisor": sup, "SupervisorMode": "barge"});
    let (status, body) = call(&app, &supervisor, "POST", &on_task, barge).await;
    assert_eq!(status, 200, "{body}");
    let leg = legs().await;
    assert_eq!((leg.len(), leg[0]["muted"].as_bool()), (1, Some(false)), "{leg:?}");
}
