//! `/v1/Workspaces/{WS}/Workflows[/{Sid}]`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use engine::{Prefix, Sid};
use serde_json::{json, Value};

use super::{base, friendly_name, list_query, url_param, v1_list};
use crate::extract::{deleted, json, sid, Segments};
use crate::params::{Form, Params, Query};
use crate::{ApiError, ApiResult, AppState};
use engine::command::{Command, WorkflowParams};
use engine::model::Workflow;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/Workspaces/{ws}/Workflows", get(list_workflows).post(create_workflow)).route(
        "/v1/Workspaces/{ws}/Workflows/{workflow}",
        get(fetch_workflow).post(update_workflow).delete(delete_workflow),
    )
}

fn render(state: &AppState, w: &Workflow) -> Value {
    let url = state.urls().workspace(w.workspace_sid, &format!("/Workflows/{}", w.sid));
    let mut m = base(state, Some(w.workspace_sid), w.sid, (w.date_created, w.date_updated), url.clone());
    m.insert("friendly_name".into(), json!(w.friendly_name));
    m.insert("configuration".into(), json!(w.configuration));
    m.insert("assignment_callback_url".into(), json!(w.assignment_callback_url));
    m.insert("fallback_assignment_callback_url".into(), json!(w.fallback_assignment_callback_url));
    m.insert("task_reservation_timeout".into(), json!(w.task_reservation_timeout));
    m.insert("document_content_type".into(), json!(w.document_content_type));
    let link = |rest: &str| format!("{url}/{rest}");
    m.insert(
        "links".into(),
        json!({
            "statistics": link("Statistics"),
            "real_time_statistics": link("RealTimeStatistics"),
            "cumulative_statistics": link("CumulativeStatistics"),
        }),
    );
    Value::Object(m)
}

fn params(p: &mut Params, create: bool) -> ApiResult<WorkflowParams> {
    let configuration = if create { Some(p.required("Configuration")?) } else { p.str("Configuration") };
    if let Some(c) = &configuration {
        serde_json::from_str::<serde_json::Map<String, Value>>(c).map_err(|e| {
            ApiError::invalid(format!("Invalid parameter Configuration: it must be a JSON object ({e})"))
        })?;
    }
    Ok(WorkflowParams {
        friendly_name: friendly_name(p, create)?,
        configuration,
        assignment_callback_url: url_param(p, "AssignmentCallbackUrl")?,
        fallback_assignment_callback_url: url_param(p, "FallbackAssignmentCallbackUrl")?,
        task_reservation_timeout: p.int("TaskReservationTimeout", 1, 86_400)?,
        re_evaluate_tasks: if create { None } else { p.bool("ReEvaluateTasks") },
    })
}

fn ids(ws: &str, s: &str) -> ApiResult<(Sid, Sid)> {
    Ok((sid(ws, Prefix::Workspace, "WorkspaceSid")?, sid(s, Prefix::Workflow, "Sid")?))
}

async fn create_workflow(
    State(state): State<AppState>,
    Segments(ws): Segments<String>,
    Form(mut p): Form,
) -> ApiResult<Response> {
    let ws = sid(&ws, Prefix::Workspace, "WorkspaceSid")?;
    let params = params(&mut p, true)?;
    p.finish()?;
    let w = state.engine().apply::<Workflow>(Command::CreateWorkflow { workspace_sid: ws, params }).await?;
    Ok(json(StatusCode::CREATED, render(&state, &w)))
}

async fn fetch_workflow(
    State(state): State<AppState>,
    Segments((ws, s)): Segments<(String, String)>,
) -> ApiResult<Response> {
    let (ws, sid) = ids(&ws, &s)?;
    let w = state.engine().workflow(ws, sid).await?;
    Ok(json(StatusCode::OK, render(&state, &w)))
}

async fn update_workflow(
    State(state): State<AppState>,
    Segments((ws, s)): Segments<(String, String)>,
    Form(mut p): Form,
) -> ApiResult<Response> {
    let (ws, sid) = ids(&ws, &s)?;
    let params = params(&mut p, false)?;
    p.finish()?;
    let w =
        state.engine().apply::<Workflow>(Command::UpdateWorkflow { workspace_sid: ws, sid, params }).await?;
    Ok(json(StatusCode::OK, render(&state, &w)))
}

async fn delete_workflow(
    State(state): State<AppState>,
    Segments((ws, s)): Segments<(String, String)>,
) -> ApiResult<Response> {
    let (ws, sid) = ids(&ws, &s)?;
    deleted(state.engine().apply(Command::DeleteWorkflow { workspace_sid: ws, sid }).await?)
}

async fn list_workflows(
    State(state): State<AppState>,
    Segments(ws): Segments<String>,
    Query(mut p): Query,
) -> ApiResult<Response> {
    let ws = sid(&ws, Prefix::Workspace, "WorkspaceSid")?;
    let (req, filters) = list_query(&mut p)?;
    let friendly_name = p.str("FriendlyName");
    p.finish()?;
    let items = state.engine().workflows(ws, friendly_name).await?;
    Ok(v1_list(
        state.urls().workspace(ws, "/Workflows"),
        &filters,
        "workflows",
        &req,
        &items,
        |w| w.sid.to_string(),
        |w| render(&state, w),
    ))
}
