//! `trworker setup`: dry run, creation, idempotence, the callback URL, and what it cannot fix.

use serde_json::Value;

use super::helpers::*;

fn states(report: &Value) -> Vec<(String, String, String)> {
    report["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let text = |k: &str| i[k].as_str().unwrap_or_default().to_owned();
            (text("kind"), text("name"), text("state"))
        })
        .collect()
}

fn state_of<'a>(states: &'a [(String, String, String)], kind: &str) -> &'a str {
    states.iter().find(|(k, _, _)| k == kind).map(|(_, _, s)| s.as_str()).unwrap_or("absent")
}

#[tokio::test]
async fn setup_creates_what_is_missing_once_and_dry_run_changes_nothing() {
    let local = Local::empty().await;
    let dry = local.run(&["setup", "--dry-run", "--json"]).await.json();
    assert_eq!(dry["dry_run"], true);
    let s = states(&dry);
    assert_eq!(state_of(&s, "task_queue"), "would_create");
    assert_eq!(state_of(&s, "workflow"), "would_create");
    assert_eq!(state_of(&s, "worker"), "would_create");
    assert_eq!(state_of(&s, "workspace"), "would_change", "the default timeout activity is Offline");
    assert!(local.client.list_task_queues(&Default::default()).all().await.unwrap().is_empty());
    assert!(local.client.list_workers(&Default::default()).all().await.unwrap().is_empty());

    let done = local.run(&["setup", "--json", "--callback-url", "http://127.0.0.1:9/events"]).await.json();
    let s = states(&done);
    assert_eq!(state_of(&s, "activity"), "found", "every workspace starts with these activities");
    assert_eq!(state_of(&s, "task_queue"), "created");
    assert_eq!(state_of(&s, "workflow"), "created");
    assert_eq!(state_of(&s, "worker"), "created");
    assert_eq!(state_of(&s, "workspace"), "changed");
    assert_eq!(state_of(&s, "event_callback_url"), "changed");

    let queue = local.client.list_task_queues(&Default::default()).all().await.unwrap();
    assert_eq!(queue[0].target_workers.as_deref(), Some(r#"skills HAS "support""#));
    assert_eq!(queue[0].max_reserved_workers, 1);
    let workflow = local.client.list_workflows(&Default::default()).all().await.unwrap();
    assert_eq!(workflow[0].task_reservation_timeout, 10);
    let workspace = local.client.fetch_workspace().await.unwrap();
    assert_eq!(workspace.event_callback_url.as_deref(), Some("http://127.0.0.1:9/events"));
    assert_eq!(workspace.timeout_activity_name.as_deref(), Some("Unavailable"));

    let again = local.run(&["setup", "--json", "--callback-url", "http://127.0.0.1:9/events"]).await.json();
    assert!(states(&again).iter().all(|(_, _, state)| state == "found"), "{again}");

    // The created workspace takes calls: a call to it reaches the created worker once available.
    let placed = local.call_for("charles", "+15551230009").await;
    assert_eq!(placed["reservation"]["worker_name"], "charles", "{placed}");
}

#[tokio::test]
async fn the_demo_workspace_is_already_set_up() {
    let local = Local::demo().await;
    let report = local.run(&["setup", "--json"]).await.json();
    assert!(states(&report).iter().all(|(_, _, state)| state == "found"), "{report}");
    let table = local.run(&["setup"]).await;
    assert!(table.stdout.contains("task queue") && table.stdout.contains("found"), "{}", table.stdout);
}

#[tokio::test]
async fn a_queue_that_differs_is_reported_and_fails_the_command() {
    let local = Local::empty().await;
    local
        .client
        .create_task_queue(&twilio::client::taskrouter::CreateTaskQueue {
            friendly_name: "support".into(),
            target_workers: Some("1==1".into()),
            max_reserved_workers: Some(3),
            ..Default::default()
        })
        .await
        .unwrap();
    let run = local.run(&["setup", "--json"]).await;
    assert_ne!(run.code, 0);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    let queue = report["items"].as_array().unwrap().iter().find(|i| i["kind"] == "task_queue").unwrap();
    assert_eq!(queue["state"], "differs");
    assert!(queue["detail"].as_str().unwrap().contains("max reserved workers 3"), "{queue}");
    assert!(
        run.stderr.contains("1 differ from the seed's setup") && run.stderr.contains("support"),
        "{}",
        run.stderr
    );
}
