//! `trworker workers`.

use super::helpers::*;

#[tokio::test]
async fn lists_every_worker_with_activity_and_time_in_it() {
    let local = Local::demo().await;
    local.set_activity("ada", "Available").await;
    let json = local.run(&["workers", "--json"]).await.json();
    assert_eq!(json["workspace_sid"], local.workspace_sid);
    let workers = json["workers"].as_array().unwrap();
    let names: Vec<&str> = workers.iter().map(|w| w["friendly_name"].as_str().unwrap()).collect();
    assert_eq!(names, ["ada", "charles", "grace", "linus"], "sorted by name");
    for w in workers {
        let ada = w["friendly_name"] == "ada";
        assert_eq!(w["activity"], if ada { "Available" } else { "Offline" }, "{w}");
        assert_eq!(w["available"], ada, "{w}");
        assert!(w["sid"].as_str().unwrap().starts_with("WK"));
        assert!(w["seconds_in_activity"].is_u64(), "{w}");
    }
    let table = local.run(&["workers"]).await;
    assert_eq!(table.code, 0);
    assert!(table.stdout.starts_with("WORKER"), "{}", table.stdout);
    assert!(!table.stdout.contains('\x1b'), "no colours when stdout is not a terminal");
}

#[tokio::test]
async fn an_empty_workspace_lists_no_workers() {
    let local = Local::empty().await;
    let json = local.run(&["workers", "--json"]).await.json();
    assert_eq!(json["workers"], serde_json::json!([]));
    let table = local.run(&["workers"]).await;
    assert!(table.stdout.starts_with("No workers"), "{}", table.stdout);
}
