//! `/v1/Workspaces/{WS}/Tasks[/{Sid}]`, with `ETag` and `If-Match`.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use engine::{Prefix, Sid};
use serde_json::{json, Value};

use super::{base, list_query, v1_list};
use crate::api::extract::{call, deleted, expect_out, if_match, json_etag, opt_sid, sid, Segments};
use crate::api::params::{Form, Params, Query};
use crate::api::port::{Op, Out, TaskFilter};
use crate::api::render::{iso8601, parse_iso8601};
use crate::api::{ApiError, ApiResult, AppState};
use engine::command::{Command, CreateTaskParams, UpdateTaskParams};
use engine::model::Task;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/Workspaces/{ws}/Tasks", get(list_tasks).post(create_task))
        .route("/v1/Workspaces/{ws}/Tasks/{task}", get(fetch_task).post(update_task).delete(delete_task))
}

const STATUSES: [&str; 6] = ["pending", "reserved", "assigned", "canceled", "completed", "wrapping"];

pub(crate) fn render(state: &AppState, t: &Task) -> Value {
    let urls = state.urls();
    let ws = t.workspace_sid;
    let url = urls.workspace(ws, &format!("/Tasks/{}", t.sid));
    let mut m = base(state, Some(ws), t.sid, (t.date_created, t.date_updated), url.clone());
    let s = |x: Option<Sid>| x.map(|x| x.to_string());
    let age = t.age(state.engine().now());
    m.insert("assignment_status".into(), json!(t.assignment_status.as_str()));
    m.insert("attributes".into(), json!(t.attributes));
    m.insert("addons".into(), json!(t.addons));
    m.insert("age".into(), json!(age));
    m.insert("priority".into(), json!(t.priority));
    m.insert("reason".into(), json!(t.reason));
    m.insert("timeout".into(), json!(t.timeout));
    m.insert("task_queue_sid".into(), json!(s(t.task_queue_sid)));
    m.insert("task_queue_friendly_name".into(), json!(t.task_queue_friendly_name));
    m.insert("task_queue_entered_date".into(), json!(t.task_queue_entered_date.map(iso8601)));
    m.insert("workflow_sid".into(), json!(s(t.workflow_sid)));
    m.insert("workflow_friendly_name".into(), json!(t.workflow_friendly_name));
    m.insert("task_channel_sid".into(), json!(t.task_channel_sid.to_string()));
    m.insert("task_channel_unique_name".into(), json!(t.task_channel_unique_name));
    m.insert("virtual_start_time".into(), json!(iso8601(t.virtual_start_time)));
    m.insert("routing_target".into(), json!(s(t.routing_target)));
    m.insert("ignore_capacity".into(), json!(t.ignore_capacity));
    m.insert(
        "links".into(),
        json!({
            "task_queue": t.task_queue_sid.map(|q| urls.workspace(ws, &format!("/TaskQueues/{q}"))),
            "workflow": t.workflow_sid.map(|w| urls.workspace(ws, &format!("/Workflows/{w}"))),
            "workspace": urls.workspace(ws, ""),
            "reservations": format!("{url}/Reservations"),
        }),
    );
    Value::Object(m)
}

fn virtual_start_time(p: &mut Params) -> ApiResult<Option<engine::Timestamp>> {
    p.str("VirtualStartTime")
        .map(|v| {
            parse_iso8601(&v).ok_or_else(|| {
                ApiError::invalid(format!(
                    "Invalid parameter VirtualStartTime: '{v}' is not an ISO-8601 time like 2024-01-31T12:00:00Z"
                ))
            })
        })
        .transpose()
}

fn status(value: Option<String>, name: &str) -> ApiResult<Option<String>> {
    match value {
        Some(v) if !STATUSES.contains(&v.as_str()) => Err(ApiError::invalid(format!(
            "Invalid parameter {name}: '{v}' is not one of {}",
            STATUSES.join(", ")
        ))),
        other => Ok(other),
    }
}

fn ids(ws: &str, s: &str) -> ApiResult<(Sid, Sid)> {
    Ok((sid(ws, Prefix::Workspace, "WorkspaceSid")?, sid(s, Prefix::Task, "Sid")?))
}

async fn create_task(
    State(state): State<AppState>,
    Segments(ws): Segments<String>,
    Form(mut p): Form,
) -> ApiResult<Response> {
    let ws = sid(&ws, Prefix::Workspace, "WorkspaceSid")?;
    let params = CreateTaskParams {
        timeout: p.int("Timeout", 1, 1_209_600)?,
        priority: p.int("Priority", 0, i64::from(i32::MAX))?,
        task_channel: p.str("TaskChannel"),
        workflow_sid: opt_sid(p.str("WorkflowSid"), Prefix::Workflow, "WorkflowSid")?,
        attributes: p.json_object("Attributes")?,
        virtual_start_time: virtual_start_time(&mut p)?,
        routing_target: match p.str("RoutingTarget").filter(|v| !v.is_empty()) {
            None => None,
            Some(v) => Some(
                Sid::parse(&v)
                    .map_err(|e| ApiError::invalid(format!("Invalid parameter RoutingTarget: {e}")))?,
            ),
        },
        ignore_capacity: p.bool("IgnoreCapacity"),
        task_queue_sid: opt_sid(p.str("TaskQueueSid"), Prefix::TaskQueue, "TaskQueueSid")?,
    };
    if params.attributes.as_ref().is_some_and(|a| a.chars().count() > 4096) {
        return Err(ApiError::invalid("Invalid parameter Attributes: it must be at most 4096 characters"));
    }
    p.finish()?;
    let t = expect_out!(
        call(&state, Op::Apply(Command::CreateTask { workspace_sid: ws, params })).await?,
        Out::Task
    );
    Ok(json_etag(StatusCode::CREATED, render(&state, &t), t.version))
}

async fn fetch_task(
    State(state): State<AppState>,
    Segments((ws, s)): Segments<(String, String)>,
) -> ApiResult<Response> {
    let (ws, sid) = ids(&ws, &s)?;
    let t = expect_out!(call(&state, Op::FetchTask { ws, sid }).await?, Out::Task);
    Ok(json_etag(StatusCode::OK, render(&state, &t), t.version))
}

async fn update_task(
    State(state): State<AppState>,
    Segments((ws, s)): Segments<(String, String)>,
    headers: HeaderMap,
    Form(mut p): Form,
) -> ApiResult<Response> {
    let (ws, sid) = ids(&ws, &s)?;
    let params = UpdateTaskParams {
        attributes: p.json_object("Attributes")?,
        assignment_status: status(p.str("AssignmentStatus"), "AssignmentStatus")?,
        reason: p.str("Reason"),
        priority: p.int("Priority", 0, i64::from(i32::MAX))?,
        task_channel: p.str("TaskChannel"),
        virtual_start_time: virtual_start_time(&mut p)?,
    };
    p.finish()?;
    let op = Op::Apply(Command::UpdateTask { workspace_sid: ws, sid, params, if_match: if_match(&headers) });
    let t = expect_out!(call(&state, op).await?, Out::Task);
    Ok(json_etag(StatusCode::OK, render(&state, &t), t.version))
}

async fn delete_task(
    State(state): State<AppState>,
    Segments((ws, s)): Segments<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (ws, sid) = ids(&ws, &s)?;
    deleted(
        call(&state, Op::Apply(Command::DeleteTask { workspace_sid: ws, sid, if_match: if_match(&headers) }))
            .await?,
    )
}

async fn list_tasks(
    State(state): State<AppState>,
    Segments(ws): Segments<String>,
    Query(mut p): Query,
) -> ApiResult<Response> {
    let ws = sid(&ws, Prefix::Workspace, "WorkspaceSid")?;
    let (req, filters) = list_query(&mut p)?;
    let assignment_status = p.list("AssignmentStatus");
    for s in &assignment_status {
        status(Some(s.clone()), "AssignmentStatus")?;
    }
    let filter = TaskFilter {
        priority: p.int("Priority", 0, i64::from(i32::MAX))?,
        assignment_status,
        workflow_sid: opt_sid(p.str("WorkflowSid"), Prefix::Workflow, "WorkflowSid")?,
        workflow_name: p.str("WorkflowName"),
        task_queue_sid: opt_sid(p.str("TaskQueueSid"), Prefix::TaskQueue, "TaskQueueSid")?,
        task_queue_name: p.str("TaskQueueName"),
        evaluate_task_attributes: p.str("EvaluateTaskAttributes"),
        routing_target: p.str("RoutingTarget"),
        ordering: p.str("Ordering"),
        has_addons: p.bool("HasAddons"),
    };
    p.finish()?;
    let items = expect_out!(call(&state, Op::ListTasks { ws, filter }).await?, Out::Tasks);
    Ok(v1_list(
        state.urls().workspace(ws, "/Tasks"),
        &filters,
        "tasks",
        &req,
        &items,
        |t| t.sid.to_string(),
        |t| render(&state, t),
    ))
}
