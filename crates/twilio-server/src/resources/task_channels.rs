//! `/v1/Workspaces/{WS}/TaskChannels[/{Sid}]`; the path `Sid` may be a TC SID or the unique name.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use engine::Prefix;
use serde_json::{json, Value};

use super::{base, friendly_name, list_query, v1_list};
use crate::extract::{deleted, json, sid, Segments};
use crate::params::{Form, Query};
use crate::{ApiResult, AppState};
use engine::command::Command;
use engine::model::TaskChannel;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/Workspaces/{ws}/TaskChannels", get(list_task_channels).post(create_task_channel))
        .route(
            "/v1/Workspaces/{ws}/TaskChannels/{sid}",
            get(fetch_task_channel).post(update_task_channel).delete(delete_task_channel),
        )
}

fn render(state: &AppState, c: &TaskChannel) -> Value {
    let url = state.urls().workspace(c.workspace_sid, &format!("/TaskChannels/{}", c.sid));
    let mut m = base(state, Some(c.workspace_sid), c.sid, (c.date_created, c.date_updated), url);
    m.insert("friendly_name".into(), json!(c.friendly_name));
    m.insert("unique_name".into(), json!(c.unique_name));
    m.insert("channel_optimized_routing".into(), json!(c.channel_optimized_routing));
    m.insert("links".into(), json!({ "workspace": state.urls().workspace(c.workspace_sid, "") }));
    Value::Object(m)
}

async fn create_task_channel(
    State(state): State<AppState>,
    Segments(ws): Segments<String>,
    Form(mut p): Form,
) -> ApiResult<Response> {
    let ws = sid(&ws, Prefix::Workspace, "WorkspaceSid")?;
    let friendly_name = friendly_name(&mut p, true)?;
    let unique_name = Some(p.required("UniqueName")?);
    let channel_optimized_routing = p.bool("ChannelOptimizedRouting");
    p.finish()?;
    let op = Command::CreateTaskChannel {
        workspace_sid: ws,
        friendly_name,
        unique_name,
        channel_optimized_routing,
    };
    let c = state.engine().apply::<TaskChannel>(op).await?;
    Ok(json(StatusCode::CREATED, render(&state, &c)))
}

async fn fetch_task_channel(
    State(state): State<AppState>,
    Segments((ws, key)): Segments<(String, String)>,
) -> ApiResult<Response> {
    let ws = sid(&ws, Prefix::Workspace, "WorkspaceSid")?;
    let c = state.engine().task_channel(ws, key).await?;
    Ok(json(StatusCode::OK, render(&state, &c)))
}

async fn update_task_channel(
    State(state): State<AppState>,
    Segments((ws, key)): Segments<(String, String)>,
    Form(mut p): Form,
) -> ApiResult<Response> {
    let ws = sid(&ws, Prefix::Workspace, "WorkspaceSid")?;
    let friendly_name = friendly_name(&mut p, false)?;
    let channel_optimized_routing = p.bool("ChannelOptimizedRouting");
    p.finish()?;
    let op =
        Command::UpdateTaskChannel { workspace_sid: ws, sid: key, friendly_name, channel_optimized_routing };
    let c = state.engine().apply::<TaskChannel>(op).await?;
    Ok(json(StatusCode::OK, render(&state, &c)))
}

async fn delete_task_channel(
    State(state): State<AppState>,
    Segments((ws, key)): Segments<(String, String)>,
) -> ApiResult<Response> {
    let ws = sid(&ws, Prefix::Workspace, "WorkspaceSid")?;
    deleted(state.engine().apply(Command::DeleteTaskChannel { workspace_sid: ws, sid: key }).await?)
}

async fn list_task_channels(
    State(state): State<AppState>,
    Segments(ws): Segments<String>,
    Query(mut p): Query,
) -> ApiResult<Response> {
    let ws = sid(&ws, Prefix::Workspace, "WorkspaceSid")?;
    let (req, filters) = list_query(&mut p)?;
    p.finish()?;
    let items = state.engine().task_channels(ws).await?;
    Ok(v1_list(
        state.urls().workspace(ws, "/TaskChannels"),
        &filters,
        "channels",
        &req,
        &items,
        |c| c.sid.to_string(),
        |c| render(&state, c),
    ))
}
