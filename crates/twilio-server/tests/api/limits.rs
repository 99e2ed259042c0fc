//! Expressions past the engine's limits (`engine::expr::MAX_*`): every way one reaches the engine answers 400
//! in Twilio's error shape, quickly and without a large allocation, and changes nothing.

use crate::helpers::{assert_twilio_error, read, spawn_app, CallCentre, TestApp, ACCOUNT, TOKEN};
use engine::expr::{MAX_DEPTH, MAX_EXPRESSION_BYTES, MAX_PATH_SEGMENTS};
use engine::workflow::MAX_CONFIGURATION_BYTES;
use serde_json::{json, Value};

/// The query that once took gigabytes: a reference of 9,000 segments, 18 KB.
fn long_path() -> String {
    format!("{} == 1", vec!["a"; 9_000].join("."))
}

/// A short text one segment past the path limit, so the segment limit (not the length) refuses it.
fn deep_path() -> String {
    format!("task.{} == 1", vec!["a"; MAX_PATH_SEGMENTS + 1].join("."))
}

/// One level of parentheses past the nesting limit.
fn deep_parentheses() -> String {
    format!("{}a == 1{}", "(".repeat(MAX_DEPTH + 1), ")".repeat(MAX_DEPTH + 1))
}

/// The three limits with the words their errors use.
fn over_limits() -> [(String, String); 3] {
    [
        (long_path(), format!("at most {MAX_EXPRESSION_BYTES} bytes")),
        (deep_path(), format!("at most {MAX_PATH_SEGMENTS} keys and indexes")),
        (deep_parentheses(), format!("at most {MAX_DEPTH} levels")),
    ]
}

/// A 400/20001 whose message names `param` and `limit`.
fn assert_limit_error(status: u16, body: &Value, param: &str, limit: &str) {
    assert_eq!(status, 400, "{body}");
    let message = assert_twilio_error(body, 400, 20001);
    assert!(message.contains(param), "{param} not named in {message:.300}");
    assert!(message.contains(limit), "{limit} not named in {message:.300}");
}

/// Posts `param` = `value` as an update of the item at `item` and as a new item (named `long`) of its
/// collection, asserting that both are refused over `limit`.
async fn assert_writes_refused(app: &TestApp, item: &str, param: &str, value: &str, limit: &str) {
    let (status, body) = app.post(item, &[(param, value)]).await;
    assert_limit_error(status, &body, param, limit);
    let (status, body) = app.post(collection_of(item), &[("FriendlyName", "long"), (param, value)]).await;
    assert_limit_error(status, &body, param, limit);
}

/// The collection of the item at `path`: the path without its last segment.
fn collection_of(path: &str) -> &str {
    path.rsplit_once('/').map_or(path, |(collection, _)| collection)
}

/// A fresh app with a workspace made a call centre (see [`TestApp::call_centre`]).
async fn spawn_centre() -> (TestApp, String, CallCentre) {
    let app = spawn_app().await;
    let ws = app.workspace(&[]).await;
    let centre = app.call_centre(&ws, &[]).await;
    (app, ws, centre)
}

async fn get_with_query(app: &TestApp, path: &str, query: &[(&str, &str)]) -> (u16, Value) {
    let r = app.client.get(app.url(path)).query(query).basic_auth(ACCOUNT, Some(TOKEN)).send().await.unwrap();
    read(r).await
}

#[tokio::test]
async fn limits_query_expressions_past_a_limit_are_400() {
    let app = spawn_app().await;
    let ws = app.workspace(&[]).await;
    app.available_worker(&ws, "alice").await;
    for (expression, limit) in over_limits() {
        for (list, param) in [("Workers", "TargetWorkersExpression"), ("Tasks", "EvaluateTaskAttributes")] {
            let path = format!("/v1/Workspaces/{ws}/{list}");
            let (status, body) = get_with_query(&app, &path, &[(param, expression.as_str())]).await;
            assert_limit_error(status, &body, param, &limit);
        }
    }
    // Within the limits the same kind of query works.
    let (status, body) = get_with_query(
        &app,
        &format!("/v1/Workspaces/{ws}/Workers"),
        &[("TargetWorkersExpression", "skills HAS 'support'")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["workers"].as_array().map(Vec::len), Some(1), "{body}");
}

#[tokio::test]
async fn limits_task_queue_target_workers_past_a_limit_is_400_and_changes_nothing() {
    let (app, ws, centre) = spawn_centre().await;
    let queue_path = format!("/v1/Workspaces/{ws}/TaskQueues/{}", centre.queue);
    let (_, before) = app.get(&queue_path).await;
    for (expression, limit) in over_limits() {
        assert_writes_refused(&app, &queue_path, "TargetWorkers", &expression, &limit).await;
    }
    let after = assert_unchanged(&app, &queue_path, "target_workers", &before, "task_queues").await;
    assert_eq!(after["target_workers"], r#"skills HAS "support""#);
}

#[tokio::test]
async fn limits_workflow_configuration_past_a_limit_is_400_and_changes_nothing() {
    let (app, ws, centre) = spawn_centre().await;
    let workflow_path = format!("/v1/Workspaces/{ws}/Workflows/{}", centre.workflow);
    let (_, before) = app.get(&workflow_path).await;
    let queue = centre.queue.as_str();
    let mut configs = Vec::new();
    for (expression, limit) in over_limits() {
        // Target expressions name `task.` or `worker.`; the deep path already does.
        let target = if expression.starts_with("task.") {
            expression.clone()
        } else {
            expression.replacen('a', "worker.a", 1)
        };
        let filter = |target: Value| json!({"task_routing": {"filters": [{"expression": "1 == 1", "targets": [target]}]}});
        configs.extend([
            (json!({"task_routing": {"filters": [{"expression": expression, "targets": [{"queue": queue}]}]}}), limit.clone()),
            (filter(json!({"queue": queue, "expression": target})), limit.clone()),
            (filter(json!({"queue": queue, "skip_if": expression})), limit),
        ]);
    }
    let order_by = format!("worker.{} DESC", vec!["a"; 9_000].join("."));
    let by_length = format!("at most {MAX_EXPRESSION_BYTES} bytes");
    configs.push((
        json!({"task_routing": {"default_filter": {"queue": queue, "order_by": order_by}}}),
        by_length,
    ));
    let known = format!("task.{}", vec!["a"; 9_000].join("."));
    configs.push((filter_known(queue, &known), format!("at most {MAX_EXPRESSION_BYTES} bytes")));
    for (config, limit) in configs {
        assert_writes_refused(&app, &workflow_path, "Configuration", &config.to_string(), &limit).await;
    }
    assert_unchanged(&app, &workflow_path, "configuration", &before, "workflows").await;
}

/// Asserts that `field` of the resource at `path` is `before`'s and that its collection (the path without the
/// SID) lists one item under `key`; the resource as it is now.
async fn assert_unchanged(app: &TestApp, path: &str, field: &str, before: &Value, key: &str) -> Value {
    let (status, after) = app.get(path).await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(after[field], before[field]);
    let (_, list) = app.get(collection_of(path)).await;
    assert_eq!(list[key].as_array().map(Vec::len), Some(1), "{list}");
    after
}

/// A configuration whose one target routes to the worker named by the task attribute at `reference`.
fn filter_known(queue: &str, reference: &str) -> Value {
    json!({"task_routing": {"filters": [{"expression": "1 == 1",
        "targets": [{"queue": queue, "known_worker_sid": reference}]}]}})
}

#[tokio::test]
async fn limits_workflow_configuration_size_is_bounded() {
    let (app, ws, centre) = spawn_centre().await;
    let padding = "x".repeat(MAX_CONFIGURATION_BYTES);
    let config = json!({"task_routing": {"default_filter": {"queue": centre.queue}}, "padding": padding});
    let (status, body) = app
        .post(
            &format!("/v1/Workspaces/{ws}/Workflows"),
            &[("FriendlyName", "big"), ("Configuration", config.to_string().as_str())],
        )
        .await;
    assert_limit_error(status, &body, "Configuration", &format!("the limit is {MAX_CONFIGURATION_BYTES}"));
}
