//! Task transfers through the event bridge (`Task.transfer`, `OutgoingTransfer.cancel`): the envelope's
//! answers, the transfer events on the transferring worker's channel, the transfer on the new worker's
//! reservation, and the refusals.

use serde_json::json;

use crate::bridge::{call, connect, role_token as token, wait_for, Socket};
use crate::bridge_roles::{call_expecting, message};
use crate::helpers::{spawn_app, TestApp};

/// A worker's channel, past its `init`.
async fn channel(app: &TestApp, token: &str) -> Socket {
    let mut socket = connect(app, token, "").await;
    wait_for(&mut socket, "init").await;
    socket
}

#[tokio::test]
async fn a_warm_transfer_to_a_worker_through_the_envelope_and_both_channels() {
    let app = spawn_app().await;
    let (ws, _, [a, b]) = app.staffed_centre(["alice", "bob"]).await;
    app.move_worker(&ws, &b, "Offline").await;
    let (token_a, token_b) = (token(&ws, Some(&a), "worker"), token(&ws, Some(&b), "worker"));
    let (mut socket_a, mut socket_b) = (channel(&app, &token_a).await, channel(&app, &token_b).await);
    let attributes = r#"{"type":"support","call_sid":"CA00000000000000000000000000000c01"}"#;
    let (_, task) = app.post(&format!("/v1/Workspaces/{ws}/Tasks"), &[("Attributes", attributes)]).await;
    let wt = task["sid"].as_str().unwrap().to_owned();
    let wr = app.first_reservation(&ws, &wt).await;
    let on_a = |rest: &str| format!("Workspaces/{ws}/Workers/{a}/{rest}");
    let answer = json!({"Instruction": "conference", "To": "client:alice"});
    call_expecting(&app, &token_a, ("POST", &on_a(&format!("Reservations/{wr}"))), answer, 200).await;
    app.move_worker(&ws, &b, "Available").await;

    // Bad transfers are refused and change nothing.
    let transfer = |to: &str| json!({"ReservationSid": wr, "TaskSid": wt, "To": to});
    let refusals = [
        (token_b.as_str(), transfer(&b), 403, "not"),
        (token_a.as_str(), json!({"ReservationSid": wr, "TaskSid": wt}), 400, "To"),
        (token_a.as_str(), transfer("WK00000000000000000000000000000bad"), 400, "is not a worker"),
        (
            token_a.as_str(),
            json!({"ReservationSid": wr, "TaskSid": wt, "To": b, "Mode": "HOT"}),
            400,
            "WARM or COLD",
        ),
    ];
    for (bearer, params, expected, why) in refusals {
        let (status, body) = call(&app, bearer, "POST", &on_a("Transfers"), params).await;
        assert_eq!(status, expected, "{body}");
        assert!(message(&body).contains(why), "{why}: {body}");
    }

    // Task.transfer: the answer is the transfer, with the task's SID the SDK needs.
    let (status, body) = call(&app, &token_a, "POST", &on_a("Transfers"), transfer(&b)).await;
    assert_eq!(status, 200, "{body}");
    let tr = body["payload"].clone();
    let tt = tr["sid"].as_str().unwrap().to_owned();
    assert!(tt.starts_with("TT"), "{tr}");
    assert_eq!(
        (tr["task_sid"].as_str(), tr["initiating_reservation_sid"].as_str()),
        (Some(wt.as_str()), Some(wr.as_str()))
    );
    assert_eq!((tr["transfer_mode"].as_str(), tr["transfer_type"].as_str()), (Some("WARM"), Some("WORKER")));
    assert_eq!(tr["transfer_status"], "initiated");

    // Alice's channel: the transfer's initiation. Bob's: a reservation that carries the transfer.
    let initiated = wait_for(&mut socket_a, "task.transfer-initiated").await;
    assert_eq!(
        (initiated["sid"].as_str(), initiated["transfer_status"].as_str()),
        (Some(tt.as_str()), Some("initiated"))
    );
    let offered = wait_for(&mut socket_b, "reservation.created").await;
    assert_eq!(offered["task_transfer"]["sid"], tt.as_str(), "{offered}");
    let wr_b = offered["sid"].as_str().unwrap().to_owned();

    // Alice cannot end her part while the transfer is under way.
    let ending = json!({"ReservationStatus": "completed"});
    call_expecting(&app, &token_a, ("POST", &on_a(&format!("Reservations/{wr}"))), ending, 400).await;

    // Bob answers into the caller's conference: the transfer is complete, Alice's part goes to wrap-up.
    let on_b = format!("Workspaces/{ws}/Workers/{b}/Reservations/{wr_b}");
    let (status, body) =
        call(&app, &token_b, "POST", &on_b, json!({"Instruction": "conference", "To": "client:bob"})).await;
    assert_eq!(status, 200, "{body}");
    let completed = wait_for(&mut socket_a, "task.transfer-completed").await;
    assert_eq!(completed["transfer_status"], "complete");
    let wrapup = wait_for(&mut socket_a, "reservation.wrapup").await;
    assert_eq!(wrapup["sid"], wr.as_str());
    assert!(
        wrapup.get("task_transfer").is_none(),
        "only a reservation a transfer made carries one: {wrapup}"
    );

    // A finished transfer cannot be canceled; a cancel says canceled or nothing.
    let cancel = |status: &str| json!({"TaskSid": wt, "TransferStatus": status});
    let (status, body) =
        call(&app, &token_a, "POST", &on_a(&format!("Transfers/{tt}")), cancel("completed")).await;
    assert_eq!(status, 400, "{body}");
    assert!(message(&body).contains("TransferStatus: 'completed' is not canceled"), "{body}");
    let (status, body) =
        call(&app, &token_a, "POST", &on_a(&format!("Transfers/{tt}")), cancel("canceled")).await;
    assert_eq!(status, 400, "{body}");
    assert!(message(&body).contains("complete"), "{body}");
    let (_, task) = app.get(&format!("/v1/Workspaces/{ws}/Tasks/{wt}")).await;
    assert_eq!(task["assignment_status"], "assigned");
}

#[tokio::test]
async fn a_transfer_to_a_queue_is_canceled_and_the_task_comes_back() {
    let app = spawn_app().await;
    let (ws, _, [a]) = app.staffed_centre(["alice"]).await;
    let token_a = token(&ws, Some(&a), "worker");
    let mut socket_a = channel(&app, &token_a).await;
    let (_, queue) = app
        .post(
            &format!("/v1/Workspaces/{ws}/TaskQueues"),
            &[("FriendlyName", "sales"), ("TargetWorkers", "skills HAS 'sales'")],
        )
        .await;
    let wq = queue["sid"].as_str().unwrap().to_owned();
    let task = app.task(&ws).await;
    let wt = task["sid"].as_str().unwrap().to_owned();
    let wr = app.first_reservation(&ws, &wt).await;
    let on_a = |rest: &str| format!("Workspaces/{ws}/Workers/{a}/{rest}");
    let accept = json!({"ReservationStatus": "accepted"});
    call_expecting(&app, &token_a, ("POST", &on_a(&format!("Reservations/{wr}"))), accept, 200).await;

    let params = json!({"ReservationSid": wr, "TaskSid": wt, "To": wq, "Priority": 5, "Attributes": {"type": "sales"}});
    let (status, body) = call(&app, &token_a, "POST", &on_a("Transfers"), params).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["payload"]["transfer_type"], "QUEUE");
    let tt = body["payload"]["sid"].as_str().unwrap().to_owned();
    let (_, waiting) = app.get(&format!("/v1/Workspaces/{ws}/Tasks/{wt}")).await;
    assert_eq!(
        (waiting["assignment_status"].as_str(), waiting["task_queue_sid"].as_str()),
        (Some("pending"), Some(wq.as_str()))
    );
    assert_eq!(waiting["priority"], 5);
    let (status, body) = call(&app, &token_a, "GET", &on_a(&format!("Reservations/{wr}")), json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["payload"]["active_outgoing_task_transfer"]["sid"], tt.as_str(), "{body}");

    // Nobody in sales: Alice takes it back.
    let (status, body) = call(
        &app,
        &token_a,
        "POST",
        &on_a(&format!("Transfers/{tt}")),
        json!({"TaskSid": wt, "TransferStatus": "canceled"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["payload"]["transfer_status"], "canceled");
    assert_eq!(wait_for(&mut socket_a, "task.transfer-canceled").await["sid"], tt.as_str());
    let (_, back) = app.get(&format!("/v1/Workspaces/{ws}/Tasks/{wt}")).await;
    assert_eq!(back["assignment_status"], "assigned");
    assert_ne!(back["task_queue_sid"], wq.as_str());
}
