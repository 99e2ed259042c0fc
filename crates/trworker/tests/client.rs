//! The `twilio` client against the real local engine over HTTP: the seed's whole call flow, paging, errors
//! and tokens. No mock server: the engine is the Twilio these calls speak to.

use serde_json::json;
use trworker::embedded::Seed;
use twilio::client::conference::ConferenceFilter;
use twilio::client::taskrouter::{
    ActivityFilter, ConferenceInstruction, CreateTask, Instruction, ReservationFilter, TaskFilter,
    UpdateReservation, UpdateTask, UpdateWorker, WorkerFilter, WorkflowFilter,
};
use twilio::models::{ConferenceStatus, ReservationStatus, TaskAssignmentStatus};
use twilio::{Client, Config, Error};

#[path = "support/mod.rs"]
mod support;

use support::Engine;

async fn start_engine() -> Engine {
    support::start_engine_in_temp("client", Seed::Demo).await
}

fn client(engine: &Engine) -> Client {
    engine.client().with_workspace(&engine.workspace_sid)
}

async fn advance(engine: &Engine, seconds: u32) {
    engine.advance(seconds).await;
}

#[tokio::test]
async fn the_seed_call_flow_through_the_client() {
    let engine = start_engine().await;
    let client = client(&engine);
    let workspace = client.fetch_workspace().await.expect("workspace");
    assert_eq!(workspace.friendly_name.as_deref(), Some("writers"));

    let activities = client.list_activities(&ActivityFilter::default()).all().await.expect("activities");
    let activity = |name: &str| {
        activities
            .iter()
            .find(|a| a.friendly_name.as_deref() == Some(name))
            .map(|a| a.sid.clone())
            .unwrap_or_else(|| panic!("no activity {name}"))
    };
    let workers = client
        .list_workers(&WorkerFilter { friendly_name: Some("charles".into()), ..Default::default() })
        .all()
        .await
        .expect("workers");
    let charles = workers.first().expect("charles exists").sid.clone();
    let updated = client
        .update_worker(
            &charles,
            &UpdateWorker { activity_sid: Some(activity("Available")), ..Default::default() },
        )
        .await
        .expect("go online");
    assert_eq!(updated.activity_name.as_deref(), Some("Available"));

    let workflows = client.list_workflows(&WorkflowFilter::default()).all().await.expect("workflows");
    let support = workflows.iter().find(|w| w.friendly_name.as_deref() == Some("support")).expect("support");
    let task = client
        .create_task(&CreateTask {
            workflow_sid: Some(support.sid.clone()),
            attributes: Some(json!({"from": "+15551230001", "to": "+15559870000",
                "call_sid": "CA0000000000000000000000000000abcd", "selected_product": "support"})),
            ..Default::default()
        })
        .await
        .expect("task");
    let reservations = client
        .list_task_reservations(&task.sid, &ReservationFilter::default())
        .all()
        .await
        .expect("reservations");
    assert_eq!(reservations.len(), 1);
    let reservation = &reservations[0];
    assert_eq!(reservation.worker_sid.as_deref(), Some(charles.as_str()));
    assert_eq!(reservation.reservation_status, Some(ReservationStatus::Pending));
    let mine = client
        .list_worker_reservations(&charles, &ReservationFilter::default())
        .all()
        .await
        .expect("worker reservations");
    assert!(mine.iter().any(|r| r.sid == reservation.sid));

    client
        .update_task_reservation(
            &task.sid,
            &reservation.sid,
            &UpdateReservation {
                instruction: Some(Instruction::Conference(ConferenceInstruction {
                    from: Some("+15005550006".into()),
                    post_work_activity_sid: Some(activity("Offline")),
                    ..Default::default()
                })),
                ..Default::default()
            },
        )
        .await
        .expect("conference instruction");
    advance(&engine, 5).await;
    let assigned = client.fetch_task(&task.sid).await.expect("task");
    assert_eq!(assigned.assignment_status, Some(TaskAssignmentStatus::Assigned));
    let attributes = assigned.attributes_json().expect("attributes");
    let conference_sid = attributes["conference"]["sid"].as_str().expect("conference sid").to_owned();

    let live = client
        .list_conferences(&ConferenceFilter {
            status: Some(ConferenceStatus::InProgress),
            ..Default::default()
        })
        .all()
        .await
        .expect("conferences");
    assert_eq!(live.iter().map(|c| c.sid.as_str()).collect::<Vec<_>>(), vec![conference_sid.as_str()]);
    let participants =
        client.list_participants(&conference_sid, &Default::default()).all().await.expect("participants");
    assert_eq!(participants.len(), 2);

    let ended = client.end_conference(&conference_sid).await.expect("end");
    assert_eq!(ended.status, Some(ConferenceStatus::Completed));
    let wrapping = client.fetch_task(&task.sid).await.expect("task");
    assert_eq!(wrapping.assignment_status, Some(TaskAssignmentStatus::Wrapping));
    let stuck = client
        .list_tasks(&TaskFilter {
            assignment_status: vec![TaskAssignmentStatus::Wrapping],
            ..Default::default()
        })
        .all()
        .await
        .expect("wrapping tasks");
    assert_eq!(stuck.len(), 1);
    let done = client
        .update_task(
            &task.sid,
            &UpdateTask {
                assignment_status: Some(TaskAssignmentStatus::Completed),
                reason: Some("Was stuck in wrapping".into()),
                ..Default::default()
            },
        )
        .await
        .expect("complete");
    assert_eq!(done.assignment_status, Some(TaskAssignmentStatus::Completed));
    let charles_now = client.fetch_worker(&charles).await.expect("worker");
    assert_eq!(charles_now.activity_name.as_deref(), Some("Offline"), "PostWorkActivitySid applied");
}

#[tokio::test]
async fn lists_follow_next_page_url_to_the_end() {
    let engine = start_engine().await;
    let client = client(&engine);
    let all = client.list_workers(&WorkerFilter::default()).all().await.expect("workers");
    let paged = client
        .list_workers(&WorkerFilter { page_size: Some(1), ..Default::default() })
        .all()
        .await
        .expect("paged");
    assert!(all.len() >= 4, "the demo has four workers");
    assert_eq!(
        paged.iter().map(|w| &w.sid).collect::<Vec<_>>(),
        all.iter().map(|w| &w.sid).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn errors_carry_twilio_codes() {
    let engine = start_engine().await;
    let client = client(&engine);
    match client.fetch_task("WT00000000000000000000000000000000").await {
        Err(Error::Api { status: 404, code: 20404, .. }) => {}
        other => panic!("expected 404/20404, got {other:?}"),
    }
    let stranger = Client::new(
        Config::new(&engine.account_sid, "wrong-token")
            .workspace(&engine.workspace_sid)
            .base_urls(&engine.url, &engine.url),
    )
    .expect("client");
    match stranger.fetch_workspace().await {
        Err(Error::Api { status: 401, code: 20003, .. }) => {}
        other => panic!("expected 401/20003, got {other:?}"),
    }
    let worker = client.list_workers(&WorkerFilter::default()).all().await.expect("workers").remove(0);
    let stale = UpdateWorker {
        attributes: Some(json!({"skills": ["support"]})),
        if_match: Some("999999".into()),
        ..Default::default()
    };
    match client.update_worker(&worker.sid, &stale).await {
        Err(Error::Api { status: 412, .. }) => {}
        other => panic!("expected 412 on a stale If-Match, got {other:?}"),
    }
}

#[tokio::test]
async fn a_worker_token_signed_with_the_engine_token_verifies() {
    let engine = start_engine().await;
    let client = client(&engine);
    let worker = client.list_workers(&WorkerFilter::default()).all().await.expect("workers").remove(0);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
    let token = twilio::token::WorkerCapability::new(
        &engine.account_sid,
        &engine.auth_token,
        &engine.workspace_sid,
        &worker.sid,
    )
    .allow_activity_updates(true)
    .allow_reservation_updates(true)
    .to_jwt(now)
    .expect("token");
    let claims = twilio::token::verify_worker_token(&token, &engine.auth_token, now).expect("verifies");
    assert_eq!(claims.worker_sid, worker.sid);
    assert!(twilio::token::verify_worker_token(&token, "another-token", now).is_err());
}

#[tokio::test]
async fn queues_and_workflows_are_created_and_listed() {
    let engine = start_engine().await;
    let client = client(&engine);
    // A queue without reservation/assignment activities: its links must still decode.
    let queue = client
        .create_task_queue(&twilio::client::taskrouter::CreateTaskQueue {
            friendly_name: "billing".into(),
            target_workers: Some(r#"skills HAS "billing""#.into()),
            max_reserved_workers: Some(2),
            ..Default::default()
        })
        .await
        .expect("queue");
    assert_eq!(queue.max_reserved_workers, 2);
    let queues = client
        .list_task_queues(&twilio::client::taskrouter::TaskQueueFilter::default())
        .all()
        .await
        .expect("queues");
    assert!(queues.iter().any(|q| q.sid == queue.sid));
    let workflow = client
        .create_workflow(&twilio::client::taskrouter::CreateWorkflow {
            friendly_name: "billing".into(),
            configuration: json!({"task_routing": {"default_filter": {"queue": queue.sid}}}),
            task_reservation_timeout: Some(30),
            ..Default::default()
        })
        .await
        .expect("workflow");
    assert_eq!(workflow.task_reservation_timeout, 30);
    let bad = client
        .create_task_queue(&twilio::client::taskrouter::CreateTaskQueue {
            friendly_name: "broken".into(),
            target_workers: Some("skills HAS".into()),
            ..Default::default()
        })
        .await;
    match bad {
        Err(Error::Api { status: 400, message, .. }) => {
            assert!(message.contains("TargetWorkers"), "{message}")
        }
        other => panic!("expected a 400 naming TargetWorkers, got {other:?}"),
    }
}

#[tokio::test]
async fn api_keys_are_kept_across_a_restart_and_their_secret_signs_access_tokens() {
    let dir = support::TempDir::new("client-keys");
    let engine = support::start_engine(dir.path(), Seed::Demo).await;
    let client = engine.client();
    let key = client.create_key(Some("sdk")).await.expect("key");
    assert!(twilio::models::is_sid("SK", &key.sid), "{key:?}");
    assert_eq!(key.secret.len(), 32);
    assert!(!format!("{key:?}").contains(&key.secret), "Debug hides the secret");
    let unnamed = client.create_key(None).await.expect("a key without a name");
    assert_eq!(unnamed.friendly_name, None);
    let renamed = client.update_key(&key.sid, "bridge").await.expect("rename");
    assert_eq!(renamed.friendly_name.as_deref(), Some("bridge"));
    client.delete_key(&unnamed.sid).await.expect("delete");
    match client.fetch_key(&unnamed.sid).await {
        Err(Error::Api { status: 404, code: 20404, .. }) => {}
        other => panic!("expected 404/20404 for a deleted key, got {other:?}"),
    }
    engine.stop().await;

    let engine = support::start_engine(dir.path(), Seed::Demo).await;
    let client = engine.client();
    let listed = client.list_keys(Some(1)).all().await.expect("keys");
    let listed: Vec<(&str, Option<&str>)> =
        listed.iter().map(|k| (k.sid.as_str(), k.friendly_name.as_deref())).collect();
    assert_eq!(listed, [(key.sid.as_str(), Some("bridge"))]);
    assert_eq!(client.fetch_key(&key.sid).await.expect("fetch").date_created, key.date_created);
    // What the event bridge verifies an AccessToken with: the secret the create answered, still known.
    let sid = key.sid.parse().expect("an SK SID");
    let secret = twilio_server::Engine::new(engine.server.engine().handle.clone()).api_key_secret(sid).await;
    assert_eq!(secret.as_deref(), Some(key.secret.as_str()));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
    let token = twilio::token::AccessToken::new(&engine.account_sid, &key.sid, &key.secret)
        .identity("alice")
        .to_jwt(now)
        .expect("token");
    let claims = twilio::token::verify_access_token(&token, secret.as_deref().unwrap_or_default(), now);
    assert_eq!(claims.expect("verifies").iss, key.sid);
    engine.stop().await;
}
