//! `trworker call` and `trworker call hangup`, and `trworker token`.

use super::helpers::*;

#[tokio::test]
async fn a_call_becomes_a_voice_task_like_studio_enqueue_makes() {
    let local = Local::demo().await;
    let placed = local.call("+15551230001").await;
    assert!(placed["task_sid"].as_str().unwrap().starts_with("WT"));
    let call_sid = placed["call_sid"].as_str().unwrap();
    assert!(call_sid.starts_with("CA") && call_sid.len() == 34, "{placed}");
    assert_eq!(placed["queue"], "support");
    assert_eq!(placed["status"], "pending", "every worker is offline");
    assert_eq!(placed["reservation"], serde_json::Value::Null);

    let task = local.client.fetch_task(placed["task_sid"].as_str().unwrap()).await.unwrap();
    let attributes = task.attributes_json().unwrap();
    assert_eq!(attributes["from"], "+15551230001");
    assert_eq!(attributes["to"], "+15550100");
    assert_eq!(attributes["call_sid"], call_sid);
    assert_eq!(attributes["direction"], "inbound");
    assert_eq!(task.task_channel_unique_name.as_deref(), Some("voice"));
}

#[tokio::test]
async fn a_call_reports_the_reservation_and_extra_attributes_route_it() {
    let local = Local::demo().await;
    let placed = local.call_for("charles", "+15551230002").await;
    assert_eq!(placed["status"], "reserved", "{placed}");
    assert_eq!(placed["reservation"]["worker_name"], "charles");
    assert_eq!(placed["reservation"]["status"], "pending");

    let sales = local
        .run(&["call", "--from", "+1555", "--attributes", r#"{"selected_product":"sales"}"#, "--json"])
        .await
        .json();
    assert_eq!(sales["queue"], "sales", "{sales}");

    let error = local.run(&["call", "--from", "+1555", "--attributes", "[1]"]).await.error();
    assert!(error.contains("--attributes must be a JSON object"), "{error}");
    let error =
        local.run(&["call", "--from", "+1555", "--workflow", "WW0123456789abcdef0123456789abcdef"]).await;
    assert_ne!(error.code, 0);
    let usage = local.run(&["call"]).await;
    assert_ne!(usage.code, 0);
    assert!(usage.stderr.contains("--from"), "{}", usage.stderr);
}

#[tokio::test]
async fn hanging_up_a_waiting_call_cancels_its_task() {
    let local = Local::demo().await;
    let placed = local.call("+15551230003").await;
    let sid = placed["task_sid"].as_str().unwrap();
    let hung = local.run(&["call", "hangup", sid, "--json"]).await.json();
    assert_eq!(hung["action"], "canceled_task");
    assert_eq!(hung["status"], "canceled");
    let task = local.client.fetch_task(sid).await.unwrap();
    assert_eq!(task.reason.as_deref(), Some("Caller hung up"));
    let again = local.run(&["call", "hangup", sid, "--json"]).await.json();
    assert_eq!(again["action"], "none", "{again}");
}

#[tokio::test]
async fn hanging_up_a_call_in_a_conference_ends_the_conference() {
    let local = Local::demo().await;
    let placed = local.call_for("charles", "+15551230004").await;
    let sid = placed["task_sid"].as_str().unwrap();
    local.conference(sid).await;
    let hung = local.run(&["call", "hangup", sid, "--json"]).await.json();
    assert_eq!(hung["action"], "ended_conference", "{hung}");
    assert!(hung["conference_sid"].as_str().unwrap().starts_with("CF"));
    assert_eq!(hung["status"], "wrapping");
}

#[tokio::test]
async fn a_token_is_signed_for_the_named_worker() {
    let local = Local::demo().await;
    let issued = local.run(&["token", "ada", "--ttl", "30m", "--json"]).await.json();
    let token = issued["token"].as_str().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let claims = twilio::token::verify_worker_token(token, &local.auth_token, now).unwrap();
    assert_eq!(claims.worker_sid, local.worker_sid("ada").await);
    assert_eq!(claims.workspace_sid, local.workspace_sid);
    assert!(claims.exp > now + 1700 && claims.exp <= now + 1800 + 5, "{claims:?}");
    assert_eq!(issued["worker_sid"], claims.worker_sid);

    let plain = local.run(&["token", "ada"]).await;
    assert_eq!(plain.code, 0);
    assert_eq!(plain.stdout.trim().split('.').count(), 3, "just the JWT: {}", plain.stdout);

    let error = local.run(&["token", "nobody"]).await.error();
    assert!(error.contains("no worker named \"nobody\"") && error.contains("trworker workers"), "{error}");
    let bad = local.run(&["token", "ada", "--ttl", "2d"]).await;
    assert_ne!(bad.code, 0);
}

#[tokio::test]
async fn a_v2_token_is_an_access_token_signed_with_the_api_key() {
    let local = Local::demo().await;
    let key = "SK0123456789abcdef0123456789abcdef";
    let secret = "the-api-key-secret";
    let args = ["token", "ada", "--sdk", "v2", "--api-key", key, "--api-secret", secret, "--json"];
    let issued = local.run(&args).await.json();
    let token = issued["token"].as_str().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let claims = twilio::token::verify_access_token(token, secret, now).unwrap();
    assert_eq!(claims.iss, key);
    assert_eq!(claims.grants.identity.as_deref(), Some("ada"));
    let grant = claims.grants.task_router.expect("a TaskRouter grant");
    assert_eq!(grant.worker_sid, Some(local.worker_sid("ada").await));
    assert_eq!(grant.workspace_sid.as_deref(), Some(local.workspace_sid.as_str()));
    assert_eq!(grant.role.as_deref(), Some("worker"));
    assert!(twilio::token::verify_access_token(token, &local.auth_token, now).is_err());

    // A supervisor's, for the SDK's Supervisor; there is no v1 one.
    let supervisor = local.run(&[&args[..8], &["--role", "supervisor", "--json"]].concat()).await.json();
    let claims =
        twilio::token::verify_access_token(supervisor["token"].as_str().unwrap(), secret, now).unwrap();
    assert_eq!(claims.grants.task_router.and_then(|g| g.role).as_deref(), Some("supervisor"));
    let error = local.run(&["token", "ada", "--role", "supervisor"]).await.error();
    assert!(error.contains("--sdk v2"), "{error}");

    let error = local.run(&["token", "ada", "--sdk", "v2"]).await.error();
    assert!(error.contains("--api-key") && error.contains("Keys"), "{error}");
}

#[tokio::test]
async fn an_assigned_call_without_conference_cannot_be_hung_up() {
    let local = Local::demo().await;
    let placed = local.call_for("charles", "+15551230010").await;
    let task = placed["task_sid"].as_str().unwrap();
    let reservation = placed["reservation"]["sid"].as_str().unwrap();
    let accept = twilio::client::taskrouter::UpdateReservation {
        reservation_status: Some(twilio::models::ReservationStatus::Accepted),
        ..Default::default()
    };
    local.client.update_task_reservation(task, reservation, &accept).await.unwrap();
    let error = local.run(&["call", "hangup", task]).await.error();
    assert!(
        error.contains("assigned but has no conference") && error.contains("complete the task"),
        "{error}"
    );
    let task = local.client.fetch_task(task).await.unwrap();
    assert_eq!(task.assignment_status, Some(twilio::models::TaskAssignmentStatus::Assigned));
}
