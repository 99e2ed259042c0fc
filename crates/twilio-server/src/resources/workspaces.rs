//! `/v1/Workspaces[/{Sid}]`: create, fetch, update, delete, list.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use engine::Prefix;
use serde_json::{json, Value};

use super::{base, friendly_name, url_param};
use crate::extract::{deleted, json, opt_sid, sid, Segments};
use crate::page::{Envelope, List};
use crate::params::{Form, Params, Query};
use crate::{ApiResult, ServerState};
use engine::command::{Command, WorkspaceParams};
use engine::model::Workspace;

pub fn router() -> Router<ServerState> {
    Router::new()
        .route("/v1/Workspaces", get(list_workspaces).post(create_workspace))
        .route("/v1/Workspaces/{ws}", get(fetch_workspace).post(update_workspace).delete(delete_workspace))
}

/// Renders a workspace with the spec's fields.
pub(crate) fn render(state: &ServerState, w: &Workspace) -> Value {
    let url = state.urls().workspace(w.sid, "");
    let link = |rest: &str| format!("{url}/{rest}");
    let own = json!({
        "friendly_name": w.friendly_name,
        "default_activity_sid": w.default_activity_sid.to_string(),
        "default_activity_name": w.default_activity_name,
        "timeout_activity_sid": w.timeout_activity_sid.to_string(),
        "timeout_activity_name": w.timeout_activity_name,
        "event_callback_url": w.event_callback_url,
        "events_filter": w.events_filter,
        "multi_task_enabled": w.multi_task_enabled,
        "prioritize_queue_order": w.prioritize_queue_order.as_str(),
        "links": {
            "activities": link("Activities"),
            "statistics": link("Statistics"),
            "real_time_statistics": link("RealTimeStatistics"),
            "cumulative_statistics": link("CumulativeStatistics"),
            "task_queues": link("TaskQueues"),
            "tasks": link("Tasks"),
            "workers": link("Workers"),
            "workflows": link("Workflows"),
            "task_channels": link("TaskChannels"),
            "events": link("Events"),
        },
    });
    base(state, None, w.sid, (w.date_created, w.date_updated), url, own)
}

/// The parameters of a create (`Template`) or an update (the default and timeout activities).
fn params(p: &mut Params, create: bool) -> ApiResult<WorkspaceParams> {
    let mut params = WorkspaceParams {
        friendly_name: friendly_name(p, create)?,
        event_callback_url: url_param(p, "EventCallbackUrl")?,
        events_filter: p.str("EventsFilter"),
        multi_task_enabled: p.bool("MultiTaskEnabled"),
        prioritize_queue_order: p.choice("PrioritizeQueueOrder", &["FIFO", "LIFO"])?,
        ..WorkspaceParams::default()
    };
    if create {
        params.template = p.choice("Template", &["NONE", "FIFO"])?;
    } else {
        let activity = |p: &mut Params, name: &str| opt_sid(p.str(name), Prefix::Activity, name);
        params.default_activity_sid = activity(p, "DefaultActivitySid")?;
        params.timeout_activity_sid = activity(p, "TimeoutActivitySid")?;
    }
    Ok(params)
}

async fn create_workspace(State(state): State<ServerState>, Form(mut p): Form) -> ApiResult<Response> {
    let params = params(&mut p, true)?;
    write(&state, p, Command::CreateWorkspace { params }, StatusCode::CREATED).await
}

/// Applies a create or an update once its parameters are all read, and answers with the workspace.
async fn write(state: &ServerState, p: Params, command: Command, status: StatusCode) -> ApiResult<Response> {
    p.finish()?;
    let w = state.engine().apply::<Workspace>(command).await?;
    Ok(json(status, render(state, &w)))
}

async fn fetch_workspace(
    State(state): State<ServerState>,
    Segments(ws): Segments<String>,
) -> ApiResult<Response> {
    let ws = sid(&ws, Prefix::Workspace, "Sid")?;
    let w = state.engine().workspace(ws).await?;
    Ok(json(StatusCode::OK, render(&state, &w)))
}

async fn update_workspace(
    State(state): State<ServerState>,
    Segments(ws): Segments<String>,
    Form(mut p): Form,
) -> ApiResult<Response> {
    let ws = sid(&ws, Prefix::Workspace, "Sid")?;
    let params = params(&mut p, false)?;
    write(&state, p, Command::UpdateWorkspace { workspace_sid: ws, params }, StatusCode::OK).await
}

async fn delete_workspace(
    State(state): State<ServerState>,
    Segments(ws): Segments<String>,
) -> ApiResult<Response> {
    let ws = sid(&ws, Prefix::Workspace, "Sid")?;
    deleted(state.engine().apply(Command::DeleteWorkspace { workspace_sid: ws }).await?)
}

async fn list_workspaces(State(state): State<ServerState>, Query(mut p): Query) -> ApiResult<Response> {
    let list = List::from_params(&mut p)?;
    let friendly_name = p.str("FriendlyName");
    p.finish()?;
    let items = state.engine().workspaces(friendly_name).await?;
    Ok(list.respond(
        Envelope::V1,
        &state.urls().v1("/Workspaces"),
        "workspaces",
        &items,
        |w| w.sid.to_string(),
        |w| render(&state, w),
    ))
}
