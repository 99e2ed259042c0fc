//! Create/fetch/list/update/delete over HTTP, with the spec's field names, paging and ETag/If-Match.

use super::helpers::*;

#[tokio::test]
async fn workspace_lifecycle_with_absolute_urls_and_iso_dates() {
    let app = spawn_app().await;
    let ws = app.workspace(&[("EventsFilter", "task.created")]).await;
    let (status, body) = app.get(&format!("/v1/Workspaces/{ws}")).await;
    assert_eq!(status, 200);
    assert_eq!(body["account_sid"], ACCOUNT);
    assert_eq!(body["url"], app.url(&format!("/v1/Workspaces/{ws}")));
    assert_eq!(body["links"]["tasks"], app.url(&format!("/v1/Workspaces/{ws}/Tasks")));
    assert_eq!(body["date_created"], "2023-11-14T22:13:20Z");
    assert_eq!(body["events_filter"], "task.created");
    assert_eq!(body["default_activity_name"], "Offline");
    let (status, body) = app.post(&format!("/v1/Workspaces/{ws}"), &[("FriendlyName", "Renamed")]).await;
    assert_eq!(status, 200);
    assert_eq!(body["friendly_name"], "Renamed");
    let (status, body) = app.get("/v1/Workspaces").await;
    assert_eq!(status, 200);
    assert_eq!(body["meta"]["key"], "workspaces");
    assert_eq!(body["workspaces"][0]["sid"], ws.as_str());
    assert_eq!(app.delete(&format!("/v1/Workspaces/{ws}")).await, 204);
    let (status, _) = app.get(&format!("/v1/Workspaces/{ws}")).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn activity_worker_queue_workflow_crud() {
    let app = spawn_app().await;
    let ws = app.workspace(&[]).await;
    let base = format!("/v1/Workspaces/{ws}");

    let (status, a) =
        app.post(&format!("{base}/Activities"), &[("FriendlyName", "Lunch"), ("Available", "no")]).await;
    assert_eq!(status, 201);
    assert_eq!(a["available"], false);
    let a_sid = a["sid"].as_str().unwrap();
    let (status, a) = app.post(&format!("{base}/Activities/{a_sid}"), &[("FriendlyName", "Break")]).await;
    assert_eq!((status, a["friendly_name"].as_str()), (200, Some("Break")));
    assert_eq!(app.delete(&format!("{base}/Activities/{a_sid}")).await, 204);

    let worker = app.available_worker(&ws, "alice").await;
    let (status, w) = app.get(&format!("{base}/Workers/{worker}")).await;
    assert_eq!(status, 200);
    assert_eq!(w["available"], true);
    assert_eq!(w["attributes"], r#"{"skills":["support"]}"#);
    assert_eq!(w["links"]["reservations"], app.url(&format!("{base}/Workers/{worker}/Reservations")));
    let (_, list) = app.get(&format!("{base}/Workers?Available=1")).await;
    assert_eq!(list["workers"].as_array().unwrap().len(), 1);
    assert_eq!(app.delete(&format!("{base}/Workers/{worker}")).await, 204);

    let q = app.support_queue(&ws).await;
    assert_eq!(q["target_workers"], r#"skills HAS "support""#);
    assert_eq!(q["task_order"], "FIFO");
    let q_sid = q["sid"].as_str().unwrap();
    let (status, q) = app.post(&format!("{base}/TaskQueues/{q_sid}"), &[("TargetWorkers", "1==1")]).await;
    assert_eq!((status, q["target_workers"].as_str()), (200, Some("1==1")));
    let (status, body) =
        app.post(&format!("{base}/TaskQueues"), &[("FriendlyName", "x"), ("MaxReservedWorkers", "51")]).await;
    assert_eq!(status, 400, "{body}");

    let config = route_all_to(q_sid);
    let wf = app
        .post_expecting(
            &format!("{base}/Workflows"),
            &[("FriendlyName", "main"), ("Configuration", &config), ("TaskReservationTimeout", "10")],
            201,
        )
        .await;
    assert_eq!(wf["task_reservation_timeout"], 10);
    assert_eq!(wf["document_content_type"], "application/json");
    let wf_sid = wf["sid"].as_str().unwrap();
    let (status, _) = app.get(&format!("{base}/Workflows/{wf_sid}")).await;
    assert_eq!(status, 200);
    let (_, list) = app.get(&format!("{base}/Workflows")).await;
    assert_eq!(list["meta"]["key"], "workflows");
    assert_eq!(app.delete(&format!("{base}/Workflows/{wf_sid}")).await, 204);
    assert_eq!(app.delete(&format!("{base}/TaskQueues/{q_sid}")).await, 204);
}

/// The TaskQueue resource page's example: `EvaluateWorkerAttributes={"tech_support_skill": "6"}` lists the
/// `tech_support_skill > 5` queue, a numeric string compared with a number as a number.
#[tokio::test]
async fn evaluate_worker_attributes_compares_a_numeric_string_with_a_number() {
    let app = spawn_app().await;
    let ws = app.workspace(&[]).await;
    let base = format!("/v1/Workspaces/{ws}/TaskQueues");
    let mut sids = Vec::new();
    for (name, target) in [("over 5", "tech_support_skill > 5"), ("over 7", "tech_support_skill > 7")] {
        let q = app.post_expecting(&base, &[("FriendlyName", name), ("TargetWorkers", target)], 201).await;
        sids.push(q["sid"].as_str().unwrap().to_owned());
    }
    let query = serde_urlencoded::to_string([("EvaluateWorkerAttributes", r#"{"tech_support_skill": "6"}"#)])
        .unwrap();
    let (status, list) = app.get(&format!("{base}?{query}")).await;
    assert_eq!(status, 200, "{list}");
    let listed: Vec<&str> =
        list["task_queues"].as_array().unwrap().iter().map(|q| q["sid"].as_str().unwrap()).collect();
    assert_eq!(listed, [sids[0].as_str()]);
}

#[tokio::test]
async fn task_lifecycle_with_etag_and_if_match() {
    let app = spawn_app().await;
    let ws = app.workspace(&[]).await;
    let base = format!("/v1/Workspaces/{ws}");
    let centre = app.call_centre(&ws, &[]).await;
    let task = app.task(&ws).await;
    let sid = task["sid"].as_str().unwrap();
    assert_eq!(task["assignment_status"], "pending");
    // Without WorkflowSid the workspace's only workflow routes it, by its default filter.
    assert_eq!(task["workflow_sid"], centre.workflow.as_str());
    assert_eq!(task["task_queue_sid"], centre.queue.as_str());
    assert_eq!(task["age"], 0);
    assert_eq!(task["links"]["reservations"], app.url(&format!("{base}/Tasks/{sid}/Reservations")));
    // `age` is the engine's clock minus the creation date, not a stored number.
    app.clock.advance_millis(30_000);
    let (status, task) = app.get(&format!("{base}/Tasks/{sid}")).await;
    assert_eq!(status, 200, "{task}");
    assert_eq!(task["age"], 30);

    let r = app
        .client
        .get(app.url(&format!("{base}/Tasks/{sid}")))
        .basic_auth(ACCOUNT, Some(TOKEN))
        .send()
        .await
        .unwrap();
    // The ETag is the task's version, an integer that grows with every change (its start is the engine's).
    let etag = r.headers().get("etag").unwrap().to_str().unwrap().to_owned();
    let version: u64 = etag.parse().unwrap_or_else(|_| panic!("ETag {etag:?} is the version, an integer"));

    let r = app
        .post_if_match(&format!("{base}/Tasks/{sid}"), &(version + 41).to_string(), &[("Priority", "5")])
        .await;
    assert_eq!(r.status().as_u16(), 412);
    let r = app.post_if_match(&format!("{base}/Tasks/{sid}"), &etag, &[("Priority", "5")]).await;
    assert_eq!(r.status().as_u16(), 200);
    let new_etag = r.headers().get("etag").unwrap().to_str().unwrap().to_owned();
    assert!(new_etag.parse::<u64>().is_ok_and(|v| v > version), "{new_etag} after {etag}");
    let (_, body) = read(r).await;
    assert_eq!(body["priority"], 5);
    // The old version is now stale.
    let r = app.post_if_match(&format!("{base}/Tasks/{sid}"), &etag, &[("Priority", "6")]).await;
    assert_eq!(r.status().as_u16(), 412);

    app.post_expecting(&format!("{base}/Tasks/{sid}"), &[("AssignmentStatus", "nonsense")], 400).await;
    let (_, list) = app.get(&format!("{base}/Tasks?AssignmentStatus=pending,reserved")).await;
    assert_eq!(list["tasks"].as_array().unwrap().len(), 1);
    assert!(list["meta"]["url"].as_str().unwrap().contains("AssignmentStatus=pending%2Creserved"));
    assert_eq!(app.delete(&format!("{base}/Tasks/{sid}")).await, 204);
}

#[tokio::test]
async fn reservations_accept_and_reject_in_both_views() {
    let app = spawn_app().await;
    let (ws, _, [worker]) = app.staffed_centre(["bob"]).await;
    let base = format!("/v1/Workspaces/{ws}");
    let task = app.task(&ws).await;
    let task_sid = task["sid"].as_str().unwrap();
    assert_eq!(task["assignment_status"], "reserved");
    let res = app.first_reservation(&ws, task_sid).await;

    let (status, r) = app.get(&format!("{base}/Workers/{worker}/Reservations/{res}")).await;
    assert_eq!(status, 200);
    assert_eq!(r["url"], app.url(&format!("{base}/Workers/{worker}/Reservations/{res}")));
    assert_eq!(r["worker_name"], "bob");
    assert_eq!(r["reservation_status"], "pending");

    // Rejecting with an unavailable activity, as Twilio recommends: otherwise the task goes straight back to
    // the same worker.
    let offline = app.activity(&ws, "Offline").await;
    let rejected = [("ReservationStatus", "rejected"), ("WorkerActivitySid", &offline)];
    let r =
        app.update_reservation(&ws, &format!("Tasks/{task_sid}/Reservations/{res}"), &rejected, 200).await;
    assert_eq!(r["reservation_status"], "rejected");
    let (status, body) = app
        .post(&format!("{base}/Tasks/{task_sid}/Reservations/{res}"), &[("ReservationStatus", "accepted")])
        .await;
    assert_eq!(status, 400, "accepting a rejected reservation is refused: {body}");
    let (_, t) = app.get(&format!("{base}/Tasks/{task_sid}")).await;
    assert_eq!(t["assignment_status"], "pending", "a rejected task is routed again: {t}");

    // Back to Available, bob is offered the task again (a new reservation) and accepts it in the worker view.
    let available = app.available_activity(&ws).await;

    app.post_expecting(&format!("{base}/Workers/{worker}"), &[("ActivitySid", &available)], 200).await;
    let (status, list) =
        app.get(&format!("{base}/Workers/{worker}/Reservations?ReservationStatus=pending")).await;
    assert_eq!(status, 200, "{list}");
    let res2 = list["reservations"][0]["sid"].as_str().unwrap().to_owned();
    assert_ne!(res2, res);
    assert_eq!(list["reservations"][0]["task_sid"], task_sid);
    let accepted = [("ReservationStatus", "accepted")];
    let r =
        app.update_reservation(&ws, &format!("Workers/{worker}/Reservations/{res2}"), &accepted, 200).await;
    assert_eq!(r["reservation_status"], "accepted");
    let (_, t) = app.get(&format!("{base}/Tasks/{task_sid}")).await;
    assert_eq!(t["assignment_status"], "assigned");
    let (status, body) = app
        .post(&format!("{base}/Workers/{worker}/Reservations/{res2}"), &[("ReservationStatus", "maybe")])
        .await;
    assert_eq!(status, 400);
    assert!(assert_twilio_error(&body, 400, 20001).contains("ReservationStatus"));
}

#[tokio::test]
async fn following_next_page_url_reaches_the_end() {
    let app = spawn_app().await;
    let ws = app.workspace(&[]).await;
    app.call_centre(&ws, &[]).await;
    for _ in 0..7 {
        app.task(&ws).await;
    }
    let mut url = app.url(&format!("/v1/Workspaces/{ws}/Tasks?PageSize=3"));
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let r = app.client.get(&url).basic_auth(ACCOUNT, Some(TOKEN)).send().await.unwrap();
        let (status, body) = read(r).await;
        assert_eq!(status, 200, "{body}");
        pages += 1;
        assert_eq!(body["meta"]["page"], pages - 1);
        for t in body["tasks"].as_array().unwrap() {
            seen.push(t["sid"].as_str().unwrap().to_owned());
        }
        match body["meta"]["next_page_url"].as_str() {
            Some(next) => url = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let mut unique = seen.clone();
    unique.dedup();
    assert_eq!((seen.len(), unique.len()), (7, 7));
}

fn keys(v: &serde_json::Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

/// The field sets of the spec's response schemas (`shared/specs/`), exactly.
#[tokio::test]
async fn resources_have_exactly_the_spec_fields() {
    let app = spawn_app().await;
    let ws = app.workspace(&[]).await;
    let base = format!("/v1/Workspaces/{ws}");
    let (status, w) = app.get(&base).await;
    assert_eq!(status, 200, "{w}");
    assert_eq!(
        keys(&w),
        [
            "account_sid",
            "date_created",
            "date_updated",
            "default_activity_name",
            "default_activity_sid",
            "event_callback_url",
            "events_filter",
            "friendly_name",
            "links",
            "multi_task_enabled",
            "prioritize_queue_order",
            "sid",
            "timeout_activity_name",
            "timeout_activity_sid",
            "url",
        ]
    );
    let (status, a) = app.get(&format!("{base}/Activities")).await;
    assert_eq!(status, 200, "{a}");
    assert_eq!(
        keys(&a["activities"][0]),
        [
            "account_sid",
            "available",
            "date_created",
            "date_updated",
            "friendly_name",
            "links",
            "sid",
            "url",
            "workspace_sid"
        ]
    );
    let worker = app.available_worker(&ws, "frank").await;
    let (status, wk) = app.get(&format!("{base}/Workers/{worker}")).await;
    assert_eq!(status, 200, "{wk}");
    assert_eq!(
        keys(&wk),
        [
            "account_sid",
            "activity_name",
            "activity_sid",
            "attributes",
            "available",
            "date_created",
            "date_status_changed",
            "date_updated",
            "friendly_name",
            "links",
            "sid",
            "url",
            "workspace_sid",
        ]
    );
    let q = app.post_expecting(&format!("{base}/TaskQueues"), &[("FriendlyName", "q")], 201).await;
    assert_eq!(
        keys(&q),
        [
            "account_sid",
            "assignment_activity_name",
            "assignment_activity_sid",
            "date_created",
            "date_updated",
            "friendly_name",
            "links",
            "max_reserved_workers",
            "reservation_activity_name",
            "reservation_activity_sid",
            "sid",
            "target_workers",
            "task_order",
            "url",
            "workspace_sid",
        ]
    );
    let config = route_all_to(q["sid"].as_str().unwrap());
    let wf = app
        .post_expecting(
            &format!("{base}/Workflows"),
            &[("FriendlyName", "w"), ("Configuration", &config)],
            201,
        )
        .await;
    assert_eq!(
        keys(&wf),
        [
            "account_sid",
            "assignment_callback_url",
            "configuration",
            "date_created",
            "date_updated",
            "document_content_type",
            "fallback_assignment_callback_url",
            "friendly_name",
            "links",
            "sid",
            "task_reservation_timeout",
            "url",
            "workspace_sid",
        ]
    );
    let task = app.task(&ws).await;
    assert_eq!(
        keys(&task),
        [
            "account_sid",
            "addons",
            "age",
            "assignment_status",
            "attributes",
            "date_created",
            "date_updated",
            "ignore_capacity",
            "links",
            "priority",
            "reason",
            "routing_target",
            "sid",
            "task_channel_sid",
            "task_channel_unique_name",
            "task_queue_entered_date",
            "task_queue_friendly_name",
            "task_queue_sid",
            "timeout",
            "url",
            "virtual_start_time",
            "workflow_friendly_name",
            "workflow_sid",
            "workspace_sid",
        ]
    );
    let res = app.first_reservation(&ws, task["sid"].as_str().unwrap()).await;
    let (status, r) = app.get(&format!("{base}/Workers/{worker}/Reservations/{res}")).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(
        keys(&r),
        [
            "account_sid",
            "date_created",
            "date_updated",
            "links",
            "reservation_status",
            "sid",
            "task_sid",
            "url",
            "worker_name",
            "worker_sid",
            "workspace_sid",
        ]
    );
}
