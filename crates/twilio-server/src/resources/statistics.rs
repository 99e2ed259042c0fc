//! The statistics resources of workspaces, task queues, workflows and workers. The engine computes the
//! documents; this module routes, checks parameters and adds `account_sid`, `workspace_sid` and `url`.

use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use engine::{Prefix, Sid};
use serde_json::{json, Value};

use super::{list_query, v1_list};
use crate::extract::{call, expect_out, json, sid, Segments};
use crate::params::{Params, Query, BODY_LIMIT};
use crate::port::{Op, Out, StatisticsQuery};
use crate::{ApiError, ApiResult, AppState};

pub fn router() -> Router<AppState> {
    let ws = "/v1/Workspaces/{ws}";
    Router::new()
        .route(&format!("{ws}/Statistics"), get(workspace_statistics))
        .route(&format!("{ws}/RealTimeStatistics"), get(workspace_real_time))
        .route(&format!("{ws}/CumulativeStatistics"), get(workspace_cumulative))
        .route(&format!("{ws}/TaskQueues/Statistics"), get(list_task_queues_statistics))
        .route(&format!("{ws}/TaskQueues/RealTimeStatistics"), axum::routing::post(bulk_task_queue_real_time))
        .route(&format!("{ws}/TaskQueues/{{queue}}/Statistics"), get(task_queue_statistics))
        .route(&format!("{ws}/TaskQueues/{{queue}}/RealTimeStatistics"), get(task_queue_real_time))
        .route(&format!("{ws}/TaskQueues/{{queue}}/CumulativeStatistics"), get(task_queue_cumulative))
        .route(&format!("{ws}/Workflows/{{workflow}}/Statistics"), get(workflow_statistics))
        .route(&format!("{ws}/Workflows/{{workflow}}/RealTimeStatistics"), get(workflow_real_time))
        .route(&format!("{ws}/Workflows/{{workflow}}/CumulativeStatistics"), get(workflow_cumulative))
        .route(&format!("{ws}/Workers/Statistics"), get(workers_statistics))
        .route(&format!("{ws}/Workers/RealTimeStatistics"), get(workers_real_time))
        .route(&format!("{ws}/Workers/CumulativeStatistics"), get(workers_cumulative))
        .route(&format!("{ws}/Workers/{{worker}}/Statistics"), get(worker_statistics))
}

const WINDOW: [&str; 5] = ["Minutes", "StartDate", "EndDate", "TaskChannel", "SplitByWaitTime"];
const REAL_TIME: [&str; 1] = ["TaskChannel"];
const WORKER_WINDOW: [&str; 4] = ["Minutes", "StartDate", "EndDate", "TaskChannel"];
const WORKERS: [&str; 7] =
    ["Minutes", "StartDate", "EndDate", "TaskQueueSid", "TaskQueueName", "FriendlyName", "TaskChannel"];

fn take(p: &mut Params, allowed: &[&str]) -> ApiResult<Vec<(String, String)>> {
    let mut out = Vec::new();
    for name in allowed {
        for v in p.take_all(name) {
            out.push(((*name).to_owned(), v));
        }
    }
    if let Some((_, m)) = out.iter().find(|(n, _)| n == "Minutes") {
        if m.parse::<u32>().is_err() {
            return Err(ApiError::invalid(format!("Invalid parameter Minutes: '{m}' is not a whole number")));
        }
    }
    Ok(out)
}

async fn document(
    state: &AppState,
    ws: &str,
    scope: String,
    kind: &str,
    mut p: Params,
    allowed: &[&str],
) -> ApiResult<Response> {
    let ws: Sid = sid(ws, Prefix::Workspace, "WorkspaceSid")?;
    let params = take(&mut p, allowed)?;
    p.finish()?;
    let query = StatisticsQuery { kind: kind.to_owned(), params };
    let doc =
        expect_out!(call(state, Op::Statistics { ws, scope: scope.clone(), query }).await?, Out::Statistics);
    let path = if scope.is_empty() { format!("/{kind}") } else { format!("/{scope}/{kind}") };
    Ok(json(StatusCode::OK, decorate(state, ws, doc, state.urls().workspace(ws, &path))))
}

fn decorate(state: &AppState, ws: Sid, doc: Value, url: String) -> Value {
    let mut m = match doc {
        Value::Object(m) => m,
        other => {
            let mut m = serde_json::Map::new();
            m.insert("data".into(), other);
            m
        }
    };
    m.insert("account_sid".into(), json!(state.credentials().account_sid));
    m.insert("workspace_sid".into(), json!(ws.to_string()));
    m.insert("url".into(), json!(url));
    Value::Object(m)
}

macro_rules! workspace_doc {
    ($name:ident, $kind:literal, $allowed:expr) => {
        async fn $name(
            State(state): State<AppState>,
            Segments(ws): Segments<String>,
            Query(p): Query,
        ) -> ApiResult<Response> {
            document(&state, &ws, String::new(), $kind, p, &$allowed).await
        }
    };
}

macro_rules! scoped_doc {
    ($name:ident, $collection:literal, $prefix:expr, $param:literal, $kind:literal, $allowed:expr) => {
        async fn $name(
            State(state): State<AppState>,
            Segments((ws, id)): Segments<(String, String)>,
            Query(p): Query,
        ) -> ApiResult<Response> {
            let id = sid(&id, $prefix, $param)?;
            document(&state, &ws, format!("{}/{id}", $collection), $kind, p, &$allowed).await
        }
    };
}

macro_rules! workers_doc {
    ($name:ident, $kind:literal, $allowed:expr) => {
        async fn $name(
            State(state): State<AppState>,
            Segments(ws): Segments<String>,
            Query(p): Query,
        ) -> ApiResult<Response> {
            document(&state, &ws, "Workers".to_owned(), $kind, p, &$allowed).await
        }
    };
}

workspace_doc!(workspace_statistics, "Statistics", WINDOW);
workspace_doc!(workspace_real_time, "RealTimeStatistics", REAL_TIME);
workspace_doc!(workspace_cumulative, "CumulativeStatistics", WINDOW);
scoped_doc!(task_queue_statistics, "TaskQueues", Prefix::TaskQueue, "TaskQueueSid", "Statistics", WINDOW);
scoped_doc!(
    task_queue_real_time,
    "TaskQueues",
    Prefix::TaskQueue,
    "TaskQueueSid",
    "RealTimeStatistics",
    REAL_TIME
);
scoped_doc!(
    task_queue_cumulative,
    "TaskQueues",
    Prefix::TaskQueue,
    "TaskQueueSid",
    "CumulativeStatistics",
    WINDOW
);
scoped_doc!(workflow_statistics, "Workflows", Prefix::Workflow, "WorkflowSid", "Statistics", WINDOW);
scoped_doc!(
    workflow_real_time,
    "Workflows",
    Prefix::Workflow,
    "WorkflowSid",
    "RealTimeStatistics",
    REAL_TIME
);
scoped_doc!(
    workflow_cumulative,
    "Workflows",
    Prefix::Workflow,
    "WorkflowSid",
    "CumulativeStatistics",
    WINDOW
);
scoped_doc!(worker_statistics, "Workers", Prefix::Worker, "WorkerSid", "Statistics", WORKER_WINDOW);
workers_doc!(workers_statistics, "Statistics", WORKERS);
workers_doc!(workers_real_time, "RealTimeStatistics", REAL_TIME);
workers_doc!(workers_cumulative, "CumulativeStatistics", WORKER_WINDOW);

async fn list_task_queues_statistics(
    State(state): State<AppState>,
    Segments(ws): Segments<String>,
    Query(mut p): Query,
) -> ApiResult<Response> {
    let ws: Sid = sid(&ws, Prefix::Workspace, "WorkspaceSid")?;
    let (req, filters) = list_query(&mut p)?;
    let mut params = take(&mut p, &WINDOW)?;
    if let Some(f) = p.str("FriendlyName") {
        params.push(("FriendlyName".into(), f));
    }
    p.finish()?;
    let query = StatisticsQuery { kind: "Statistics".into(), params };
    let op = Op::Statistics { ws, scope: "TaskQueues".into(), query };
    let items = expect_out!(call(&state, op).await?, Out::StatisticsList);
    let key = |v: &Value| v.get("task_queue_sid").and_then(Value::as_str).unwrap_or_default().to_owned();
    Ok(v1_list(
        state.urls().workspace(ws, "/TaskQueues/Statistics"),
        &filters,
        "task_queues_statistics",
        &req,
        &items,
        key,
        |v| {
            let mut v = decorate(&state, ws, v.clone(), String::new());
            if let Value::Object(m) = &mut v {
                m.remove("url");
            }
            v
        },
    ))
}

/// `POST /TaskQueues/RealTimeStatistics` takes a JSON body (`{"TaskQueueSids":[...]}` style); it is checked
/// to be JSON and handed to the engine as the `Body` parameter.
async fn bulk_task_queue_real_time(
    State(state): State<AppState>,
    Segments(ws): Segments<String>,
    body: Body,
) -> ApiResult<Response> {
    let ws: Sid = sid(&ws, Prefix::Workspace, "WorkspaceSid")?;
    let body = axum::body::to_bytes(body, BODY_LIMIT).await.map_err(|_| ApiError::too_large(BODY_LIMIT))?;
    let text =
        std::str::from_utf8(&body).map_err(|_| ApiError::invalid("The JSON body is not valid UTF-8"))?;
    serde_json::from_str::<Value>(text).map_err(|e| {
        ApiError::invalid(format!("The body must be a JSON document listing task queues ({e})"))
    })?;
    let query =
        StatisticsQuery { kind: "RealTimeStatistics".into(), params: vec![("Body".into(), text.to_owned())] };
    let op = Op::Statistics { ws, scope: "TaskQueues".into(), query };
    let doc = expect_out!(call(&state, op).await?, Out::Statistics);
    Ok(json(
        StatusCode::OK,
        decorate(&state, ws, doc, state.urls().workspace(ws, "/TaskQueues/RealTimeStatistics")),
    ))
}
