//! `/v1/Workspaces/{WS}/Workers[/{Sid}]`, with `ETag` and `If-Match`.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use engine::{Prefix, Sid};
use serde_json::{json, Value};

use super::{base, friendly_name, list_query, v1_list};
use crate::extract::{deleted, if_match, json_etag, opt_sid, sid, Segments};
use crate::params::{Form, Params, Query};
use crate::render::iso8601;
use crate::{ApiResult, AppState};
use engine::command::{Command, WorkerParams};
use engine::core::WorkerFilter;
use engine::model::Worker;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/Workspaces/{ws}/Workers", get(list_workers).post(create_worker)).route(
        "/v1/Workspaces/{ws}/Workers/{worker}",
        get(fetch_worker).post(update_worker).delete(delete_worker),
    )
}

fn render(state: &AppState, w: &Worker) -> Value {
    let urls = state.urls();
    let url = urls.workspace(w.workspace_sid, &format!("/Workers/{}", w.sid));
    let mut m = base(state, Some(w.workspace_sid), w.sid, (w.date_created, w.date_updated), url.clone());
    m.insert("friendly_name".into(), json!(w.friendly_name));
    m.insert("activity_sid".into(), json!(w.activity_sid.to_string()));
    m.insert("activity_name".into(), json!(w.activity_name));
    m.insert("available".into(), json!(w.available));
    m.insert("attributes".into(), json!(w.attributes));
    m.insert("date_status_changed".into(), json!(iso8601(w.date_status_changed)));
    let link = |rest: &str| format!("{url}/{rest}");
    m.insert(
        "links".into(),
        json!({
            "channels": link("Channels"),
            "worker_channels": link("Channels"),
            "reservations": link("Reservations"),
            "statistics": link("Statistics"),
            "worker_statistics": link("Statistics"),
            "real_time_statistics": urls.workspace(w.workspace_sid, "/Workers/RealTimeStatistics"),
            "cumulative_statistics": urls.workspace(w.workspace_sid, "/Workers/CumulativeStatistics"),
            "activity": urls.workspace(w.workspace_sid, &format!("/Activities/{}", w.activity_sid)),
            "workspace": urls.workspace(w.workspace_sid, ""),
        }),
    );
    Value::Object(m)
}

fn params(p: &mut Params, create: bool) -> ApiResult<WorkerParams> {
    Ok(WorkerParams {
        friendly_name: friendly_name(p, create)?,
        activity_sid: opt_sid(p.str("ActivitySid"), Prefix::Activity, "ActivitySid")?,
        attributes: p.json_object("Attributes")?,
        reject_pending_reservations: if create { None } else { p.bool("RejectPendingReservations") },
    })
}

fn ids(ws: &str, s: &str) -> ApiResult<(Sid, Sid)> {
    Ok((sid(ws, Prefix::Workspace, "WorkspaceSid")?, sid(s, Prefix::Worker, "Sid")?))
}

async fn create_worker(
    State(state): State<AppState>,
    Segments(ws): Segments<String>,
    Form(mut p): Form,
) -> ApiResult<Response> {
    let ws = sid(&ws, Prefix::Workspace, "WorkspaceSid")?;
    let params = params(&mut p, true)?;
    p.finish()?;
    let w = state.engine().apply::<Worker>(Command::CreateWorker { workspace_sid: ws, params }).await?;
    Ok(json_etag(StatusCode::CREATED, render(&state, &w), w.version))
}

async fn fetch_worker(
    State(state): State<AppState>,
    Segments((ws, s)): Segments<(String, String)>,
) -> ApiResult<Response> {
    let (ws, sid) = ids(&ws, &s)?;
    let w = state.engine().worker(ws, sid).await?;
    Ok(json_etag(StatusCode::OK, render(&state, &w), w.version))
}

async fn update_worker(
    State(state): State<AppState>,
    Segments((ws, s)): Segments<(String, String)>,
    headers: HeaderMap,
    Form(mut p): Form,
) -> ApiResult<Response> {
    let (ws, sid) = ids(&ws, &s)?;
    let params = params(&mut p, false)?;
    p.finish()?;
    let update = Command::UpdateWorker { workspace_sid: ws, sid, params, if_match: if_match(&headers) };
    let w = state.engine().apply::<Worker>(update).await?;
    Ok(json_etag(StatusCode::OK, render(&state, &w), w.version))
}

async fn delete_worker(
    State(state): State<AppState>,
    Segments((ws, s)): Segments<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (ws, sid) = ids(&ws, &s)?;
    deleted(
        state
            .engine()
            .apply(Command::DeleteWorker { workspace_sid: ws, sid, if_match: if_match(&headers) })
            .await?,
    )
}

async fn list_workers(
    State(state): State<AppState>,
    Segments(ws): Segments<String>,
    Query(mut p): Query,
) -> ApiResult<Response> {
    let ws = sid(&ws, Prefix::Workspace, "WorkspaceSid")?;
    let (req, filters) = list_query(&mut p)?;
    let filter = WorkerFilter {
        activity_name: p.str("ActivityName"),
        activity_sid: opt_sid(p.str("ActivitySid"), Prefix::Activity, "ActivitySid")?,
        available: p.bool("Available"),
        friendly_name: p.str("FriendlyName"),
        target_workers_expression: p.str("TargetWorkersExpression"),
        task_queue_name: p.str("TaskQueueName"),
        task_queue_sid: opt_sid(p.str("TaskQueueSid"), Prefix::TaskQueue, "TaskQueueSid")?,
    };
    let ordering = p.str("Ordering").unwrap_or_default();
    p.finish()?;
    let items = state.engine().workers(ws, filter, ordering).await?;
    Ok(v1_list(
        state.urls().workspace(ws, "/Workers"),
        &filters,
        "workers",
        &req,
        &items,
        |w| w.sid.to_string(),
        |w| render(&state, w),
    ))
}
