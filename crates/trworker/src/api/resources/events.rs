//! `/v1/Workspaces/{WS}/Events[/{Sid}]`: the engine's event log.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use engine::{Prefix, Sid};
use serde_json::{json, Value};

use super::{list_query, v1_list};
use crate::api::extract::{call, expect_out, json, opt_sid, sid, Segments};
use crate::api::params::{Params, Query};
use crate::api::port::{Event, EventFilter, Op, Out};
use crate::api::render::{iso8601, parse_iso8601};
use crate::api::{ApiError, ApiResult, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/Workspaces/{ws}/Events", get(list_events))
        .route("/v1/Workspaces/{ws}/Events/{sid}", get(fetch_event))
}

fn render(state: &AppState, e: &Event) -> Value {
    let urls = state.urls();
    let ws = e.workspace_sid;
    let abs = |p: &Option<String>| p.as_ref().map(|p| urls.workspace(ws, p));
    json!({
        "account_sid": state.credentials().account_sid,
        "workspace_sid": ws.to_string(),
        "sid": e.sid.to_string(),
        "event_type": e.event_type,
        "description": e.description,
        "event_date": iso8601(e.event_date),
        "event_date_ms": e.event_date.millis(),
        "event_data": e.event_data,
        "resource_type": e.resource_type,
        "resource_sid": e.resource_sid.map(|s| s.to_string()),
        "resource_url": abs(&e.resource_path),
        "actor_type": e.actor_type,
        "actor_sid": e.actor_sid.map(|s| s.to_string()),
        "actor_url": abs(&e.actor_path),
        "source": e.source,
        "source_ip_address": e.source_ip_address,
        "url": urls.workspace(ws, &format!("/Events/{}", e.sid)),
    })
}

fn date(p: &mut Params, name: &str) -> ApiResult<Option<engine::Timestamp>> {
    p.str(name)
        .map(|v| {
            parse_iso8601(&v).ok_or_else(|| {
                ApiError::invalid(format!("Invalid parameter {name}: '{v}' is not an ISO-8601 time"))
            })
        })
        .transpose()
}

async fn fetch_event(
    State(state): State<AppState>,
    Segments((ws, s)): Segments<(String, String)>,
) -> ApiResult<Response> {
    let ws = sid(&ws, Prefix::Workspace, "WorkspaceSid")?;
    let sid = sid(&s, Prefix::Event, "Sid")?;
    let e = expect_out!(call(&state, Op::FetchEvent { ws, sid }).await?, Out::Event);
    Ok(json(StatusCode::OK, render(&state, &e)))
}

async fn list_events(
    State(state): State<AppState>,
    Segments(ws): Segments<String>,
    Query(mut p): Query,
) -> ApiResult<Response> {
    let ws: Sid = sid(&ws, Prefix::Workspace, "WorkspaceSid")?;
    let (req, filters) = list_query(&mut p)?;
    let filter = EventFilter {
        start_date: date(&mut p, "StartDate")?,
        end_date: date(&mut p, "EndDate")?,
        event_type: p.str("EventType"),
        minutes: p.int("Minutes", 1, 43_200)?.map(|n| n as u32),
        reservation_sid: opt_sid(p.str("ReservationSid"), Prefix::Reservation, "ReservationSid")?,
        task_queue_sid: opt_sid(p.str("TaskQueueSid"), Prefix::TaskQueue, "TaskQueueSid")?,
        task_sid: opt_sid(p.str("TaskSid"), Prefix::Task, "TaskSid")?,
        worker_sid: opt_sid(p.str("WorkerSid"), Prefix::Worker, "WorkerSid")?,
        workflow_sid: opt_sid(p.str("WorkflowSid"), Prefix::Workflow, "WorkflowSid")?,
        task_channel: p.str("TaskChannel"),
        sid: opt_sid(p.str("Sid"), Prefix::Event, "Sid")?,
    };
    p.finish()?;
    let items = expect_out!(call(&state, Op::ListEvents { ws, filter }).await?, Out::Events);
    Ok(v1_list(
        state.urls().workspace(ws, "/Events"),
        &filters,
        "events",
        &req,
        &items,
        |e| e.sid.to_string(),
        |e| render(&state, e),
    ))
}
