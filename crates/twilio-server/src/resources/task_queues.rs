//! `/v1/Workspaces/{WS}/TaskQueues[/{Sid}]`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use engine::{Prefix, Sid};
use serde_json::{json, Value};

use super::{base, friendly_name, list_query, v1_list};
use crate::extract::{deleted, json, opt_sid, sid, Segments};
use crate::params::{Form, Params, Query};
use crate::{ApiError, ApiResult, AppState};
use engine::command::{Command, TaskQueueParams};
use engine::core::TaskQueueFilter;
use engine::model::TaskQueue;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/Workspaces/{ws}/TaskQueues", get(list_task_queues).post(create_task_queue))
        .route(
            "/v1/Workspaces/{ws}/TaskQueues/{queue}",
            get(fetch_task_queue).post(update_task_queue).delete(delete_task_queue),
        )
}

fn render(state: &AppState, q: &TaskQueue) -> Value {
    let urls = state.urls();
    let url = urls.workspace(q.workspace_sid, &format!("/TaskQueues/{}", q.sid));
    let mut m = base(state, Some(q.workspace_sid), q.sid, (q.date_created, q.date_updated), url.clone());
    let sid_str = |s: Option<Sid>| s.map(|s| s.to_string());
    let activity = |s: Option<Sid>| s.map(|s| urls.workspace(q.workspace_sid, &format!("/Activities/{s}")));
    m.insert("friendly_name".into(), json!(q.friendly_name));
    m.insert("target_workers".into(), json!(q.target_workers));
    m.insert("max_reserved_workers".into(), json!(q.max_reserved_workers));
    m.insert("task_order".into(), json!(q.task_order.as_str()));
    m.insert("reservation_activity_sid".into(), json!(sid_str(q.reservation_activity_sid)));
    m.insert("reservation_activity_name".into(), json!(q.reservation_activity_name));
    m.insert("assignment_activity_sid".into(), json!(sid_str(q.assignment_activity_sid)));
    m.insert("assignment_activity_name".into(), json!(q.assignment_activity_name));
    let link = |rest: &str| format!("{url}/{rest}");
    let mut links = json!({
        "workspace": urls.workspace(q.workspace_sid, ""),
        "statistics": link("Statistics"),
        "real_time_statistics": link("RealTimeStatistics"),
        "cumulative_statistics": link("CumulativeStatistics"),
        "list_statistics": urls.workspace(q.workspace_sid, "/TaskQueues/Statistics"),
        "bulk_real_time_statistics": urls.workspace(q.workspace_sid, "/TaskQueues/RealTimeStatistics"),
    });
    // A link to an activity the queue does not have is left out rather than null: `links` is a map of URLs.
    for (name, sid) in [
        ("assignment_activity", q.assignment_activity_sid),
        ("reservation_activity", q.reservation_activity_sid),
    ] {
        if let (Some(url), Some(map)) = (activity(sid), links.as_object_mut()) {
            map.insert(name.into(), json!(url));
        }
    }
    m.insert("links".into(), links);
    Value::Object(m)
}

fn params(p: &mut Params, create: bool) -> ApiResult<TaskQueueParams> {
    Ok(TaskQueueParams {
        friendly_name: friendly_name(p, create)?,
        target_workers: p.str("TargetWorkers"),
        max_reserved_workers: p.int("MaxReservedWorkers", 1, 50)?,
        task_order: match p.str("TaskOrder") {
            None => None,
            Some(o) if o == "FIFO" || o == "LIFO" => Some(o),
            Some(o) => {
                return Err(ApiError::invalid(format!(
                    "Invalid parameter TaskOrder: '{o}' is not FIFO or LIFO"
                )))
            }
        },
        reservation_activity_sid: opt_sid(
            p.str("ReservationActivitySid"),
            Prefix::Activity,
            "ReservationActivitySid",
        )?,
        assignment_activity_sid: opt_sid(
            p.str("AssignmentActivitySid"),
            Prefix::Activity,
            "AssignmentActivitySid",
        )?,
    })
}

fn ids(ws: &str, s: &str) -> ApiResult<(Sid, Sid)> {
    Ok((sid(ws, Prefix::Workspace, "WorkspaceSid")?, sid(s, Prefix::TaskQueue, "Sid")?))
}

async fn create_task_queue(
    State(state): State<AppState>,
    Segments(ws): Segments<String>,
    Form(mut p): Form,
) -> ApiResult<Response> {
    let ws = sid(&ws, Prefix::Workspace, "WorkspaceSid")?;
    let params = params(&mut p, true)?;
    p.finish()?;
    let q = state.engine().apply::<TaskQueue>(Command::CreateTaskQueue { workspace_sid: ws, params }).await?;
    Ok(json(StatusCode::CREATED, render(&state, &q)))
}

async fn fetch_task_queue(
    State(state): State<AppState>,
    Segments((ws, s)): Segments<(String, String)>,
) -> ApiResult<Response> {
    let (ws, sid) = ids(&ws, &s)?;
    let q = state.engine().task_queue(ws, sid).await?;
    Ok(json(StatusCode::OK, render(&state, &q)))
}

async fn update_task_queue(
    State(state): State<AppState>,
    Segments((ws, s)): Segments<(String, String)>,
    Form(mut p): Form,
) -> ApiResult<Response> {
    let (ws, sid) = ids(&ws, &s)?;
    let params = params(&mut p, false)?;
    p.finish()?;
    let q = state
        .engine()
        .apply::<TaskQueue>(Command::UpdateTaskQueue { workspace_sid: ws, sid, params })
        .await?;
    Ok(json(StatusCode::OK, render(&state, &q)))
}

async fn delete_task_queue(
    State(state): State<AppState>,
    Segments((ws, s)): Segments<(String, String)>,
) -> ApiResult<Response> {
    let (ws, sid) = ids(&ws, &s)?;
    deleted(state.engine().apply(Command::DeleteTaskQueue { workspace_sid: ws, sid }).await?)
}

async fn list_task_queues(
    State(state): State<AppState>,
    Segments(ws): Segments<String>,
    Query(mut p): Query,
) -> ApiResult<Response> {
    let ws = sid(&ws, Prefix::Workspace, "WorkspaceSid")?;
    let (req, filters) = list_query(&mut p)?;
    let filter = TaskQueueFilter {
        friendly_name: p.str("FriendlyName"),
        evaluate_worker_attributes: p.json_object("EvaluateWorkerAttributes")?,
        worker_sid: opt_sid(p.str("WorkerSid"), Prefix::Worker, "WorkerSid")?,
    };
    let ordering = p.str("Ordering").unwrap_or_default();
    p.finish()?;
    let items = state.engine().task_queues(ws, filter, ordering).await?;
    Ok(v1_list(
        state.urls().workspace(ws, "/TaskQueues"),
        &filters,
        "task_queues",
        &req,
        &items,
        |q| q.sid.to_string(),
        |q| render(&state, q),
    ))
}
