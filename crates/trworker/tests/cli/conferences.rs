//! `trworker conferences list` and `trworker conferences end`.

use super::helpers::*;

#[tokio::test]
async fn lists_conferences_in_progress_and_ends_one_by_name() {
    let local = Local::demo().await;
    let empty = local.run(&["conferences", "list", "--json"]).await.json();
    assert_eq!(empty["conferences"], serde_json::json!([]));
    let table = local.run(&["conferences", "list"]).await;
    assert_eq!(table.stdout.trim(), "No conferences in progress.");

    let task = local.call_for("charles", "+15551230005").await["task_sid"].as_str().unwrap().to_owned();
    local.conference(&task).await;
    let listed = local.run(&["conferences", "list", "--json"]).await.json();
    let conferences = listed["conferences"].as_array().unwrap();
    assert_eq!(conferences.len(), 1, "{listed}");
    assert_eq!(conferences[0]["friendly_name"], task.as_str());
    assert_eq!(conferences[0]["status"], "in-progress");
    let cf = conferences[0]["sid"].as_str().unwrap().to_owned();

    let ended = local.run(&["conferences", "end", &task, "--json"]).await.json();
    assert_eq!(ended["sid"], cf.as_str());
    assert_eq!(ended["status"], "completed");
    assert_eq!(ended["already_ended"], false);

    let listed = local.run(&["conferences", "list", "--json"]).await.json();
    assert_eq!(listed["conferences"], serde_json::json!([]));
    let all = local.run(&["conferences", "list", "--all", "--json"]).await.json();
    assert_eq!(all["conferences"][0]["status"], "completed");
    assert_eq!(all["conferences"][0]["reason_conference_ended"], "conference-ended-via-api");

    let again = local.run(&["conferences", "end", &cf, "--json"]).await.json();
    assert_eq!(again["already_ended"], true);
    let error = local.run(&["conferences", "end", "no-such-name"]).await.error();
    assert!(error.contains("no conference named no-such-name"), "{error}");
}
