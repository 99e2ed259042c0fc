//! The facade over the real engine core: the seed's whole call story over HTTP, reservation timeout with an
//! injected clock, reject, statistics and events.

use serde_json::Value;

use super::helpers::*;

async fn worker_sid(app: &TestApp, ws: &str, name: &str) -> String {
    let (status, body) = app.get(&format!("/v1/Workspaces/{ws}/Workers?FriendlyName={name}")).await;
    assert_eq!(status, 200, "{body}");
    body["workers"][0]["sid"].as_str().unwrap().to_owned()
}

async fn go_available(app: &TestApp, ws: &str, worker: &str) {
    let available = app.activity(ws, "Available").await;
    let body = app
        .post_expecting(
            &format!("/v1/Workspaces/{ws}/Workers/{worker}"),
            &[("ActivitySid", available.as_str())],
            200,
        )
        .await;
    assert_eq!(body["available"], true);
}

async fn call_task(app: &TestApp, ws: &str) -> Value {
    let attributes =
        r#"{"call_sid":"CA00000000000000000000000000000abc","from":"+15551234567","type":"support"}"#;
    let body =
        app.post_expecting(&format!("/v1/Workspaces/{ws}/Tasks"), &[("Attributes", attributes)], 201).await;
    body
}

/// The seed's worker charles, available, and a call task reserved for him.
struct Call {
    charles: String,
    task: Value,
    task_sid: String,
    reservation: String,
}

async fn call_for_charles(app: &TestApp, ws: &str) -> Call {
    let charles = worker_sid(app, ws, "charles").await;
    go_available(app, ws, &charles).await;
    let task = call_task(app, ws).await;
    let task_sid = task["sid"].as_str().unwrap().to_owned();
    let reservation = app.first_reservation(ws, &task_sid).await;
    Call { charles, task, task_sid, reservation }
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

    let unavailable = app.activity(&ws, "Unavailable").await;
    let conference = [("Instruction", "conference"), ("From", "+15005550000")];
    let post_work = [("PostWorkActivitySid", unavailable.as_str())];
    let form = [&conference[..], &post_work].concat();
    let body = app.update_reservation(&ws, &format!("Tasks/{task_sid}/Reservations/{res}"), &form, 200).await;
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

    let ended = app.end_conference(&cf).await;
    assert_eq!(ended["status"], "completed");
    let (_, t) = app.get(&format!("/v1/Workspaces/{ws}/Tasks/{task_sid}")).await;
    assert_eq!(t["assignment_status"], "wrapping");
    let (_, w) = app.get(&format!("/v1/Workspaces/{ws}/Workers/{charles}")).await;
    assert_eq!(w["activity_name"], "Unavailable");

    let t = app
        .post_expecting(
            &format!("/v1/Workspaces/{ws}/Tasks/{task_sid}"),
            &[("AssignmentStatus", "completed"), ("Reason", "done")],
            200,
        )
        .await;
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
    let Call { charles, task_sid, reservation: res, .. } = call_for_charles(app, &ws).await;

    // The demo workflow's reservation timeout is 10 s.
    real.clock.advance_millis(11_000);
    real.engine.handle().tick().await.unwrap();
    let (_, r) = app.get(&format!("/v1/Workspaces/{ws}/Tasks/{task_sid}/Reservations/{res}")).await;
    assert_eq!(r["reservation_status"], "timeout");
    let (_, w) = app.get(&format!("/v1/Workspaces/{ws}/Workers/{charles}")).await;
    assert_eq!(w["activity_name"], "Unavailable", "moved to the workspace's timeout activity");

    go_available(app, &ws, &charles).await;
    let (_, list) = app
        .get(&format!("/v1/Workspaces/{ws}/Tasks/{task_sid}/Reservations?ReservationStatus=pending"))
        .await;
    let res2 = list["reservations"][0]["sid"].as_str().unwrap().to_owned();
    let offline = app.activity(&ws, "Offline").await;
    let rejected = [("ReservationStatus", "rejected"), ("WorkerActivitySid", offline.as_str())];
    let at_charles = format!("Workers/{charles}/Reservations/{res2}");
    let r = app.update_reservation(&ws, &at_charles, &rejected, 200).await;
    assert_eq!(r["reservation_status"], "rejected");
    let body = app.update_reservation(&ws, &at_charles, &[("ReservationStatus", "accepted")], 400).await;
    assert_twilio_error(&body, 400, 20001);

    // Engine-side validation comes back as Twilio errors naming the parameter.
    let body = app
        .post_expecting(
            &format!("/v1/Workspaces/{ws}/TaskQueues"),
            &[("FriendlyName", "q"), ("TargetWorkers", "skills HAS")],
            400,
        )
        .await;
    assert!(assert_twilio_error(&body, 400, 20001).contains("TargetWorkers"));
}

#[tokio::test]
async fn every_spec_operation_answers_without_a_5xx_on_the_real_engine() {
    let (real, ws) = spawn_real().await;
    super::sweep::sweep(&real.app, &ws).await;
    let _keep = real.engine.clone();
}

/// Every GET of the specs answers 200 on real resources (a conference in progress, its task, reservation,
/// worker, channels, queue, workflow, events, statistics).
#[tokio::test]
async fn every_get_operation_answers_200_on_real_resources() {
    let (real, ws) = spawn_real().await;
    let app = &real.app;
    let Call { charles, task_sid, reservation: res, .. } = call_for_charles(app, &ws).await;
    let conference = [("Instruction", "conference"), ("From", "+15005550000")];
    app.update_reservation(&ws, &format!("Tasks/{task_sid}/Reservations/{res}"), &conference, 200).await;
    // The first item of each list: `field` of `body[key][0]`.
    let first = |path: String, key: &'static str, field: &'static str| async move {
        let (_, body) = app.get(&path).await;
        body[key][0][field].as_str().unwrap_or_default().to_owned()
    };
    let v1 = |rest: &str| format!("/v1/Workspaces/{ws}/{rest}");
    let activity = first(v1("Activities"), "activities", "sid").await;
    let channel = first(v1("TaskChannels"), "channels", "sid").await;
    let worker_channel = first(v1(&format!("Workers/{charles}/Channels")), "channels", "sid").await;
    let queue = first(v1("TaskQueues"), "task_queues", "sid").await;
    let workflow = first(v1("Workflows"), "workflows", "sid").await;
    let event = first(v1("Events"), "events", "sid").await;
    let conferences = format!("/2010-04-01/Accounts/{ACCOUNT}/Conferences");
    let conference = first(format!("{conferences}.json"), "conferences", "sid").await;
    let call =
        first(format!("{conferences}/{conference}/Participants.json"), "participants", "call_sid").await;
    for s in [&activity, &channel, &worker_channel, &queue, &workflow, &event, &conference, &call] {
        assert_eq!(s.len(), 34, "every resource was found");
    }

    let value = |name: &str, previous: &str| -> String {
        match (name, previous) {
            ("WorkspaceSid", _) | ("Sid", "Workspaces") => ws.clone(),
            ("AccountSid", _) => ACCOUNT.to_owned(),
            ("TaskSid", _) | ("Sid", "Tasks") => task_sid.clone(),
            ("WorkerSid", _) | ("Sid", "Workers") => charles.clone(),
            ("TaskQueueSid", _) | ("Sid", "TaskQueues") => queue.clone(),
            ("WorkflowSid", _) | ("Sid", "Workflows") => workflow.clone(),
            ("ConferenceSid", _) | ("Sid", "Conferences") => conference.clone(),
            ("CallSid", _) => call.clone(),
            ("Sid", "Activities") => activity.clone(),
            ("Sid", "TaskChannels") => channel.clone(),
            ("Sid", "Channels") => worker_channel.clone(),
            ("Sid", "Reservations") => res.clone(),
            ("Sid", "Events") => event.clone(),
            _ => "RE00000000000000000000000000000001".to_owned(),
        }
    };
    let mut checked = 0;
    for (method, template) in super::sweep::OPERATIONS {
        if method != "GET" || template.contains("/Recordings/") {
            continue;
        }
        let path = super::sweep::fill_with(template, &value);
        let (status, body) = app.get(&path).await;
        assert_eq!(status, 200, "GET {path} -> {body}");
        checked += 1;
    }
    assert_eq!(checked, 41, "every GET of the specs but the recording fetch");
}

/// Cumulative statistics are counted from the event log over the window asked for: acceptance waits, splits
/// by wait time, queue/workflow/worker scopes, and nothing outside the window.
#[tokio::test]
async fn cumulative_statistics_count_the_window_from_the_event_log() {
    let (real, ws) = spawn_real().await;
    let app = &real.app;
    let Call { charles, task, task_sid, reservation: res } = call_for_charles(app, &ws).await;
    let queue = task["task_queue_sid"].as_str().unwrap().to_owned();
    let workflow = task["workflow_sid"].as_str().unwrap().to_owned();
    real.clock.advance_millis(7_000);
    let accepted = [("ReservationStatus", "accepted")];
    app.update_reservation(&ws, &format!("Tasks/{task_sid}/Reservations/{res}"), &accepted, 200).await;
    // A second task, canceled after 40 s while nobody is free.
    let second = call_task(app, &ws).await;
    real.clock.advance_millis(40_000);
    let second_sid = second["sid"].as_str().unwrap();
    app.post_expecting(
        &format!("/v1/Workspaces/{ws}/Tasks/{second_sid}"),
        &[("AssignmentStatus", "canceled")],
        200,
    )
    .await;

    let (status, s) =
        app.get(&format!("/v1/Workspaces/{ws}/CumulativeStatistics?SplitByWaitTime=5,30")).await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["tasks_created"], 2);
    assert_eq!(s["reservations_created"], 1);
    assert_eq!(s["reservations_accepted"], 1);
    assert_eq!(s["tasks_canceled"], 1);
    assert_eq!(s["avg_task_acceptance_time"], 7);
    assert_eq!(
        s["wait_duration_until_accepted"],
        serde_json::json!({"avg": 7, "min": 7, "max": 7, "total": 7})
    );
    assert_eq!(s["wait_duration_until_canceled"]["max"], 40);
    assert_eq!(s["split_by_wait_time"]["5"]["above"]["reservations_accepted"], 1);
    assert_eq!(s["split_by_wait_time"]["30"]["below"]["reservations_accepted"], 1);
    assert_eq!(s["split_by_wait_time"]["30"]["above"]["tasks_canceled"], 1);

    let (_, q) = app.get(&format!("/v1/Workspaces/{ws}/TaskQueues/{queue}/CumulativeStatistics")).await;
    assert_eq!(q["task_queue_sid"], queue.as_str());
    assert_eq!(q["reservations_accepted"], 1);
    assert_eq!(q["tasks_entered"], 2);
    let (_, w) = app.get(&format!("/v1/Workspaces/{ws}/Workflows/{workflow}/CumulativeStatistics")).await;
    assert_eq!(w["tasks_entered"], 2);
    assert_eq!(w["tasks_canceled"], 1);
    let (_, wk) = app.get(&format!("/v1/Workspaces/{ws}/Workers/{charles}/Statistics")).await;
    assert_eq!(wk["cumulative"]["reservations_accepted"], 1);
    assert_eq!(wk["cumulative"]["tasks_assigned"], 1);
    let durations = wk["cumulative"]["activity_durations"].as_array().unwrap();
    let available = durations.iter().find(|d| d["friendly_name"] == "Available").unwrap();
    assert!(available["total"].as_i64().unwrap() >= 7, "{available}");

    // Twenty minutes on, the default 15-minute window holds none of it; a 60-minute one holds all of it.
    real.clock.advance_millis(20 * 60_000);
    let (_, s) = app.get(&format!("/v1/Workspaces/{ws}/CumulativeStatistics")).await;
    assert_eq!((s["tasks_created"].as_u64(), s["reservations_accepted"].as_u64()), (Some(0), Some(0)));
    let (_, s) = app.get(&format!("/v1/Workspaces/{ws}/CumulativeStatistics?Minutes=60")).await;
    assert_eq!(s["tasks_created"], 2);

    let (status, body) = app.get(&format!("/v1/Workspaces/{ws}/CumulativeStatistics?Minutes=soon")).await;
    assert_eq!(status, 400, "{body}");
    assert!(assert_twilio_error(&body, 400, 20001).contains("Minutes"));
}

/// `Ordering` sorts Workers and TaskQueues as it sorts Tasks, and names the parameter when it is wrong.
#[tokio::test]
async fn workers_and_queues_honour_ordering() {
    let (real, ws) = spawn_real().await;
    let app = &real.app;
    let names = |body: &Value, key: &str| -> Vec<String> {
        body[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["friendly_name"].as_str().unwrap().to_owned())
            .collect()
    };
    let (status, asc) = app.get(&format!("/v1/Workspaces/{ws}/Workers?Ordering=FriendlyName:asc")).await;
    assert_eq!(status, 200, "{asc}");
    let (_, desc) = app.get(&format!("/v1/Workspaces/{ws}/Workers?Ordering=FriendlyName:desc")).await;
    let mut sorted = names(&asc, "workers");
    assert!(sorted.len() > 1, "the demo has several workers");
    assert!(sorted.windows(2).all(|w| w[0] <= w[1]), "{sorted:?}");
    sorted.reverse();
    assert_eq!(names(&desc, "workers"), sorted);

    real.clock.advance_millis(1_000);
    app.post(&format!("/v1/Workspaces/{ws}/TaskQueues"), &[("FriendlyName", "aaa first")]).await;
    let (status, queues) =
        app.get(&format!("/v1/Workspaces/{ws}/TaskQueues?Ordering=DateCreated:desc")).await;
    assert_eq!(status, 200, "{queues}");
    assert_eq!(names(&queues, "task_queues")[0], "aaa first", "the newest queue first");

    for bad in ["Shoe:asc", "FriendlyName:up"] {
        let (status, body) = app.get(&format!("/v1/Workspaces/{ws}/Workers?Ordering={bad}")).await;
        assert_eq!(status, 400, "{body}");
        assert!(assert_twilio_error(&body, 400, 20001).contains("Ordering"));
    }
}
