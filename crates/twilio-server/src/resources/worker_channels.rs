//! `/v1/Workspaces/{WS}/Workers/{WK}/Channels[/{Sid}]`; the path `Sid` may be a WC SID or a channel's unique
//! name.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use engine::{Prefix, Sid};
use serde_json::{json, Value};

use super::base;
use crate::extract::{json, sid, Segments};
use crate::page::{Envelope, List};
use crate::params::{Form, Query};
use crate::{ApiResult, ServerState};
use engine::command::Command;
use engine::model::WorkerChannel;

pub fn router() -> Router<ServerState> {
    Router::new().route("/v1/Workspaces/{ws}/Workers/{worker}/Channels", get(list_worker_channels)).route(
        "/v1/Workspaces/{ws}/Workers/{worker}/Channels/{sid}",
        get(fetch_worker_channel).post(update_worker_channel),
    )
}

pub(crate) fn render(state: &ServerState, c: &WorkerChannel) -> Value {
    let urls = state.urls();
    let url = urls.workspace(c.workspace_sid, &format!("/Workers/{}/Channels/{}", c.worker_sid, c.sid));
    let own = json!({
        "worker_sid": c.worker_sid.to_string(),
        "task_channel_sid": c.task_channel_sid.to_string(),
        "task_channel_unique_name": c.task_channel_unique_name,
        "configured_capacity": c.configured_capacity,
        "assigned_tasks": c.assigned_tasks,
        "available": c.available,
        "available_capacity_percentage": c.available_capacity_percentage(),
    });
    base(state, Some(c.workspace_sid), c.sid, (c.date_created, c.date_updated), url, own)
}

fn ids(ws: &str, worker: &str) -> ApiResult<(Sid, Sid)> {
    Ok((sid(ws, Prefix::Workspace, "WorkspaceSid")?, sid(worker, Prefix::Worker, "WorkerSid")?))
}

async fn fetch_worker_channel(
    State(state): State<ServerState>,
    Segments((ws, worker, key)): Segments<(String, String, String)>,
) -> ApiResult<Response> {
    let (ws, worker) = ids(&ws, &worker)?;
    let c = state.engine().worker_channel(ws, worker, key).await?;
    Ok(json(StatusCode::OK, render(&state, &c)))
}

async fn update_worker_channel(
    State(state): State<ServerState>,
    Segments((ws, worker, key)): Segments<(String, String, String)>,
    Form(mut p): Form,
) -> ApiResult<Response> {
    let (ws, worker) = ids(&ws, &worker)?;
    let capacity = p.int("Capacity", 0, 50)?;
    let available = p.bool("Available");
    p.finish()?;
    let op =
        Command::UpdateWorkerChannel { workspace_sid: ws, worker_sid: worker, sid: key, capacity, available };
    let c = state.engine().apply::<WorkerChannel>(op).await?;
    Ok(json(StatusCode::OK, render(&state, &c)))
}

async fn list_worker_channels(
    State(state): State<ServerState>,
    Segments((ws, worker)): Segments<(String, String)>,
    Query(mut p): Query,
) -> ApiResult<Response> {
    let (ws, worker) = ids(&ws, &worker)?;
    let list = List::from_params(&mut p)?;
    p.finish()?;
    let items = state.engine().worker_channels(ws, worker).await?;
    Ok(list.respond(
        Envelope::V1,
        &state.urls().workspace(ws, &format!("/Workers/{worker}/Channels")),
        "channels",
        &items,
        |c| c.sid.to_string(),
        |c| render(&state, c),
    ))
}
