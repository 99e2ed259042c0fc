//! `trworker tasks list`, `fix-wrapping` and `delete-all`.

use super::helpers::*;

#[tokio::test]
async fn an_empty_workspace_has_no_tasks_to_list_fix_or_delete() {
    let local = Local::demo().await;
    assert_eq!(local.run(&["tasks", "list", "--json"]).await.json()["tasks"], serde_json::json!([]));
    assert_eq!(local.run(&["tasks", "fix-wrapping", "--json"]).await.json()["tasks"], serde_json::json!([]));
    let deleted = local.run(&["tasks", "delete-all", "--json"]).await.json();
    assert_eq!(deleted, serde_json::json!({ "deleted": [], "failed": [] }));
    let table = local.run(&["tasks", "list"]).await;
    assert!(table.stdout.starts_with("No tasks"), "{}", table.stdout);
    let before_subcommand = local.run(&["tasks", "--json", "list"]).await.json();
    assert_eq!(before_subcommand["tasks"], serde_json::json!([]), "--json is global to the group");
}

#[tokio::test]
async fn lists_tasks_with_reservations_conference_and_wrapping_then_fixes_them() {
    let local = Local::demo().await;
    let waiting = local.call_for("charles", "+15551230006").await["task_sid"].as_str().unwrap().to_owned();
    local.conference(&waiting).await;
    let listed = local.run(&["tasks", "list", "--json"]).await.json();
    let task = &listed["tasks"][0];
    assert_eq!(task["sid"], waiting.as_str());
    assert_eq!(task["status"], "assigned");
    assert_eq!(task["from"], "+15551230006");
    assert_eq!(task["queue"], "support");
    assert!(task["conference_sid"].as_str().unwrap().starts_with("CF"), "{task}");
    assert!(task["customer_call_sid"].as_str().unwrap().starts_with("CA"), "{task}");
    assert_eq!(task["wrapping"], false);
    assert_eq!(task["reservations"][0]["worker_name"], "charles");
    assert_eq!(task["reservations"][0]["status"], "accepted");
    assert!(task["age"].is_u64());

    // The conference ends: the task wraps and stays so until something completes it.
    assert_eq!(local.run(&["conferences", "end", &waiting]).await.code, 0);
    let listed = local.run(&["tasks", "list", "--json"]).await.json();
    assert_eq!(listed["tasks"][0]["status"], "wrapping");
    assert_eq!(listed["tasks"][0]["wrapping"], true);
    let table = local.run(&["tasks", "list"]).await.stdout;
    assert!(table.contains("wrapping (!)") && table.contains("fix-wrapping"), "{table}");

    let fixed = local.run(&["tasks", "fix-wrapping", "--json"]).await.json();
    assert_eq!(
        fixed["tasks"],
        serde_json::json!([{ "sid": waiting, "status_before": "wrapping", "status": "completed", "changed": true }])
    );
    let task = local.client.fetch_task(&waiting).await.unwrap();
    assert_eq!(task.reason.as_deref(), Some("Was stuck in wrapping"));
    let one = local.run(&["tasks", "fix-wrapping", &waiting, "--json"]).await.json();
    assert_eq!(one["tasks"][0]["changed"], false);
    assert_eq!(one["tasks"][0]["status"], "completed");
}

#[tokio::test]
async fn delete_all_refuses_without_yes_and_without_a_terminal() {
    let local = Local::demo().await;
    let first = local.call("+15551230007").await["task_sid"].as_str().unwrap().to_owned();
    let second = local.call("+15551230008").await["task_sid"].as_str().unwrap().to_owned();
    let error = local.run(&["tasks", "delete-all"]).await.error();
    assert!(error.contains("refusing to delete 2 task(s)") && error.contains("--yes"), "{error}");
    assert_eq!(local.client.list_tasks(&Default::default()).all().await.unwrap().len(), 2);

    let deleted = local.run(&["tasks", "delete-all", "--yes", "--json"]).await.json();
    let mut sids: Vec<&str> =
        deleted["deleted"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    sids.sort();
    let mut expected = [first.as_str(), second.as_str()];
    expected.sort();
    assert_eq!(sids, expected);
    assert_eq!(deleted["failed"], serde_json::json!([]));
    assert!(local.client.list_tasks(&Default::default()).all().await.unwrap().is_empty());
}
