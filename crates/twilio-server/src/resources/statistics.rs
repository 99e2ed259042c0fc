//! The statistics resources of workspaces, task queues, workflows and workers. The engine computes the
//! figures; this module routes, checks parameters, renders them ([`crate::stats`]) and adds `account_sid`,
//! `workspace_sid` and `url`.

use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use engine::{Prefix, Sid};
use serde_json::{json, Map, Value};

use crate::extract::{json, sid, Segments};
use crate::page::{Envelope, List};
use crate::params::{Params, Query, BODY_LIMIT};
use crate::stats;
use crate::{ApiError, ApiResult, ServerState};

pub fn router() -> Router<ServerState> {
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

/// Which document of a scope a request asks for.
#[derive(Clone, Copy)]
enum Kind {
    /// Both, as `{"realtime": ..., "cumulative": ...}`.
    Statistics,
    RealTime,
    Cumulative,
}

impl Kind {
    /// The last segment of the resource's path.
    fn path(self) -> &'static str {
        match self {
            Kind::Statistics => "Statistics",
            Kind::RealTime => "RealTimeStatistics",
            Kind::Cumulative => "CumulativeStatistics",
        }
    }

    fn pick(self, realtime: Map<String, Value>, cumulative: Map<String, Value>) -> Map<String, Value> {
        match self {
            Kind::RealTime => realtime,
            Kind::Cumulative => cumulative,
            Kind::Statistics => {
                let mut m = Map::new();
                m.insert("realtime".into(), Value::Object(realtime));
                m.insert("cumulative".into(), Value::Object(cumulative));
                m
            }
        }
    }
}

/// Whose statistics.
#[derive(Clone, Copy)]
enum Target {
    Workspace,
    TaskQueue(Sid),
    Workflow(Sid),
    Workers,
    Worker(Sid),
}

async fn document(
    state: &ServerState,
    ws: &str,
    target: Target,
    kind: Kind,
    mut p: Params,
    allowed: &[&str],
) -> ApiResult<Response> {
    let ws: Sid = sid(ws, Prefix::Workspace, "WorkspaceSid")?;
    let params = take(&mut p, allowed)?;
    p.finish()?;
    let engine = state.engine();
    let window = stats::window(&params, engine.now())?;
    let (scope, doc) = match target {
        Target::Workspace => {
            let s = engine.workspace_statistics(ws, window).await?;
            (String::new(), kind.pick(stats::realtime(&s.realtime), stats::cumulative(&s.cumulative)))
        }
        Target::TaskQueue(queue) => {
            let s = engine.task_queue_statistics(ws, queue, window).await?;
            let mut doc = kind.pick(stats::queue_realtime(&s.realtime), stats::cumulative(&s.cumulative));
            doc.insert("task_queue_sid".into(), json!(queue));
            (format!("TaskQueues/{queue}"), doc)
        }
        Target::Workflow(workflow) => {
            let s = engine.workflow_statistics(ws, workflow, window).await?;
            let mut doc = kind.pick(stats::realtime(&s.realtime), stats::cumulative(&s.cumulative));
            doc.insert("workflow_sid".into(), json!(workflow));
            (format!("Workflows/{workflow}"), doc)
        }
        Target::Workers => {
            let (realtime, cumulative) = engine.workers_statistics(ws, window).await?;
            let doc =
                kind.pick(stats::workers_realtime(&realtime), stats::workers_cumulative(&cumulative, false));
            ("Workers".to_owned(), doc)
        }
        Target::Worker(worker) => {
            // One worker: its cumulative figures only (FetchWorkerInstanceStatistics).
            let cumulative = engine.worker_statistics(ws, worker, window).await?;
            let mut doc = Map::new();
            doc.insert("cumulative".into(), Value::Object(stats::workers_cumulative(&cumulative, true)));
            doc.insert("worker_sid".into(), json!(worker));
            (format!("Workers/{worker}"), doc)
        }
    };
    let path =
        if scope.is_empty() { format!("/{}", kind.path()) } else { format!("/{scope}/{}", kind.path()) };
    Ok(json(StatusCode::OK, decorate(state, ws, doc, Some(state.urls().workspace(ws, &path)))))
}

/// Adds `account_sid`, `workspace_sid` and (but for list items) `url`.
fn decorate(state: &ServerState, ws: Sid, mut m: Map<String, Value>, url: Option<String>) -> Value {
    m.insert("account_sid".into(), json!(state.credentials().account_sid));
    m.insert("workspace_sid".into(), json!(ws));
    if let Some(url) = url {
        m.insert("url".into(), json!(url));
    }
    Value::Object(m)
}

/// A handler for a document of the whole workspace or of all its workers (`$target`).
macro_rules! workspace_doc {
    ($name:ident, $target:expr, $kind:expr, $allowed:expr) => {
        async fn $name(
            State(state): State<ServerState>,
            Segments(ws): Segments<String>,
            Query(p): Query,
        ) -> ApiResult<Response> {
            document(&state, &ws, $target, $kind, p, &$allowed).await
        }
    };
}

macro_rules! scoped_doc {
    ($name:ident, $target:path, $prefix:expr, $param:literal, $kind:expr, $allowed:expr) => {
        async fn $name(
            State(state): State<ServerState>,
            Segments((ws, id)): Segments<(String, String)>,
            Query(p): Query,
        ) -> ApiResult<Response> {
            let id = sid(&id, $prefix, $param)?;
            document(&state, &ws, $target(id), $kind, p, &$allowed).await
        }
    };
}

workspace_doc!(workspace_statistics, Target::Workspace, Kind::Statistics, WINDOW);
workspace_doc!(workspace_real_time, Target::Workspace, Kind::RealTime, REAL_TIME);
workspace_doc!(workspace_cumulative, Target::Workspace, Kind::Cumulative, WINDOW);
scoped_doc!(
    task_queue_statistics,
    Target::TaskQueue,
    Prefix::TaskQueue,
    "TaskQueueSid",
    Kind::Statistics,
    WINDOW
);
scoped_doc!(
    task_queue_real_time,
    Target::TaskQueue,
    Prefix::TaskQueue,
    "TaskQueueSid",
    Kind::RealTime,
    REAL_TIME
);
scoped_doc!(
    task_queue_cumulative,
    Target::TaskQueue,
    Prefix::TaskQueue,
    "TaskQueueSid",
    Kind::Cumulative,
    WINDOW
);
scoped_doc!(workflow_statistics, Target::Workflow, Prefix::Workflow, "WorkflowSid", Kind::Statistics, WINDOW);
scoped_doc!(workflow_real_time, Target::Workflow, Prefix::Workflow, "WorkflowSid", Kind::RealTime, REAL_TIME);
scoped_doc!(workflow_cumulative, Target::Workflow, Prefix::Workflow, "WorkflowSid", Kind::Cumulative, WINDOW);
scoped_doc!(worker_statistics, Target::Worker, Prefix::Worker, "WorkerSid", Kind::Statistics, WORKER_WINDOW);
workspace_doc!(workers_statistics, Target::Workers, Kind::Statistics, WORKERS);
workspace_doc!(workers_real_time, Target::Workers, Kind::RealTime, REAL_TIME);
workspace_doc!(workers_cumulative, Target::Workers, Kind::Cumulative, WORKER_WINDOW);

async fn list_task_queues_statistics(
    State(state): State<ServerState>,
    Segments(ws): Segments<String>,
    Query(mut p): Query,
) -> ApiResult<Response> {
    let ws: Sid = sid(&ws, Prefix::Workspace, "WorkspaceSid")?;
    let list = List::from_params(&mut p)?;
    let params = take(&mut p, &WINDOW)?;
    let friendly_name = p.str("FriendlyName");
    p.finish()?;
    let window = stats::window(&params, state.engine().now())?;
    let items = state.engine().task_queues_statistics(ws, friendly_name, window).await?;
    Ok(list.respond(
        Envelope::V1,
        &state.urls().workspace(ws, "/TaskQueues/Statistics"),
        "task_queues_statistics",
        &items,
        |(queue, _)| queue.to_string(),
        |(queue, s)| {
            let mut m = Map::new();
            m.insert("task_queue_sid".into(), json!(queue));
            m.insert("realtime".into(), Value::Object(stats::queue_realtime(&s.realtime)));
            m.insert("cumulative".into(), Value::Object(stats::cumulative(&s.cumulative)));
            decorate(&state, ws, m, None)
        },
    ))
}

/// `POST /TaskQueues/RealTimeStatistics` takes a JSON body listing queues (`{"TaskQueueSids":[...]}`, or
/// the list itself); anything else that is JSON means every queue.
async fn bulk_task_queue_real_time(
    State(state): State<ServerState>,
    Segments(ws): Segments<String>,
    body: Body,
) -> ApiResult<Response> {
    let ws: Sid = sid(&ws, Prefix::Workspace, "WorkspaceSid")?;
    let body = axum::body::to_bytes(body, BODY_LIMIT).await.map_err(|_| ApiError::too_large(BODY_LIMIT))?;
    let text =
        std::str::from_utf8(&body).map_err(|_| ApiError::invalid("The JSON body is not valid UTF-8"))?;
    let v = serde_json::from_str::<Value>(text).map_err(|e| {
        ApiError::invalid(format!("The body must be a JSON document listing task queues ({e})"))
    })?;
    let list = v.get("TaskQueueSids").or_else(|| v.get("task_queue_sids")).unwrap_or(&v);
    let wanted: Option<Vec<String>> =
        list.as_array().map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect());
    let queues = state.engine().task_queues_real_time(ws, wanted).await?;
    let data: Vec<Value> = queues
        .iter()
        .map(|(queue, realtime)| {
            let mut m = stats::queue_realtime(realtime);
            m.insert("task_queue_sid".into(), json!(queue));
            Value::Object(m)
        })
        .collect();
    let count = data.len();
    let mut doc = Map::new();
    doc.insert("task_queue_data".into(), Value::Array(data));
    doc.insert("task_queue_response_count".into(), json!(count));
    let url = state.urls().workspace(ws, "/TaskQueues/RealTimeStatistics");
    Ok(json(StatusCode::OK, decorate(&state, ws, doc, Some(url))))
}
