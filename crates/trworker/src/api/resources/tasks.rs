//! `/v1/Workspaces/{WS}/Tasks[/{Sid}]`, with `ETag` and `If-Match`.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use engine::{Prefix, Sid};
use serde_json::Value;

use super::{list_query, v1_list};
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

/// A Task as the API shows it. A typed body rather than a `serde_json::Value` map because task creates are the
/// API's hot path: building ~25 map entries (each key and value its own allocation) and serializing the map
/// took about a fifth of the HTTP threads' time per create. Fields are in alphabetical order, the order the
/// `Value` maps of the other resources serialize in, so every resource reads the same way.
#[derive(serde::Serialize)]
pub(crate) struct TaskBody<'a> {
    account_sid: &'a str,
    addons: &'a str,
    age: i64,
    assignment_status: &'static str,
    attributes: &'a str,
    date_created: String,
    date_updated: String,
    ignore_capacity: bool,
    links: TaskLinks,
    priority: i64,
    reason: Option<&'a str>,
    routing_target: Option<Sid>,
    sid: Sid,
    task_channel_sid: Sid,
    task_channel_unique_name: &'a str,
    task_queue_entered_date: Option<String>,
    task_queue_friendly_name: Option<&'a str>,
    task_queue_sid: Option<Sid>,
    timeout: i64,
    url: String,
    virtual_start_time: String,
    workflow_friendly_name: Option<&'a str>,
    workflow_sid: Option<Sid>,
    workspace_sid: Sid,
}

#[derive(serde::Serialize)]
struct TaskLinks {
    reservations: String,
    task_queue: Option<String>,
    workflow: Option<String>,
    workspace: String,
}

pub(crate) fn body<'a>(state: &'a AppState, t: &'a Task) -> TaskBody<'a> {
    let ws = t.workspace_sid;
    let workspace = state.urls().workspace(ws, "");
    let url = format!("{workspace}/Tasks/{}", t.sid);
    TaskBody {
        account_sid: &state.credentials().account_sid,
        addons: &t.addons,
        age: t.age(state.engine().now()),
        assignment_status: t.assignment_status.as_str(),
        attributes: &t.attributes,
        date_created: iso8601(t.date_created),
        date_updated: iso8601(t.date_updated),
        ignore_capacity: t.ignore_capacity,
        links: TaskLinks {
            reservations: format!("{url}/Reservations"),
            task_queue: t.task_queue_sid.map(|q| format!("{workspace}/TaskQueues/{q}")),
            workflow: t.workflow_sid.map(|w| format!("{workspace}/Workflows/{w}")),
            workspace,
        },
        priority: t.priority,
        reason: t.reason.as_deref(),
        routing_target: t.routing_target,
        sid: t.sid,
        task_channel_sid: t.task_channel_sid,
        task_channel_unique_name: &t.task_channel_unique_name,
        task_queue_entered_date: t.task_queue_entered_date.map(iso8601),
        task_queue_friendly_name: t.task_queue_friendly_name.as_deref(),
        task_queue_sid: t.task_queue_sid,
        timeout: t.timeout,
        url,
        virtual_start_time: iso8601(t.virtual_start_time),
        workflow_friendly_name: t.workflow_friendly_name.as_deref(),
        workflow_sid: t.workflow_sid,
        workspace_sid: ws,
    }
}

/// The task as a JSON value, for list pages.
pub(crate) fn render(state: &AppState, t: &Task) -> Value {
    // Cannot fail: `to_value` fails only for maps with non-string keys, and the body has none.
    serde_json::to_value(body(state, t)).unwrap_or(Value::Null)
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
    Ok(json_etag(StatusCode::CREATED, body(&state, &t), t.version))
}

async fn fetch_task(
    State(state): State<AppState>,
    Segments((ws, s)): Segments<(String, String)>,
) -> ApiResult<Response> {
    let (ws, sid) = ids(&ws, &s)?;
    let t = expect_out!(call(&state, Op::FetchTask { ws, sid }).await?, Out::Task);
    Ok(json_etag(StatusCode::OK, body(&state, &t), t.version))
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
    Ok(json_etag(StatusCode::OK, body(&state, &t), t.version))
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
