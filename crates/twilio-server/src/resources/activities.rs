//! `/v1/Workspaces/{WS}/Activities[/{Sid}]`.

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
use engine::core::ActivityFilter;
use engine::model::Activity;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/Workspaces/{ws}/Activities", get(list_activities).post(create_activity)).route(
        "/v1/Workspaces/{ws}/Activities/{sid}",
        get(fetch_activity).post(update_activity).delete(delete_activity),
    )
}

fn render(state: &AppState, a: &Activity) -> Value {
    let url = state.urls().workspace(a.workspace_sid, &format!("/Activities/{}", a.sid));
    let mut m = base(state, Some(a.workspace_sid), a.sid, (a.date_created, a.date_updated), url);
    m.insert("friendly_name".into(), json!(a.friendly_name));
    m.insert("available".into(), json!(a.available));
    m.insert("links".into(), json!({ "workspace": state.urls().workspace(a.workspace_sid, "") }));
    Value::Object(m)
}

async fn create_activity(
    State(state): State<AppState>,
    Segments(ws): Segments<String>,
    Form(mut p): Form,
) -> ApiResult<Response> {
    let ws = sid(&ws, Prefix::Workspace, "WorkspaceSid")?;
    let friendly_name = friendly_name(&mut p, true)?;
    let available = p.bool("Available");
    p.finish()?;
    let a = state
        .engine()
        .apply::<Activity>(Command::CreateActivity { workspace_sid: ws, friendly_name, available })
        .await?;
    Ok(json(StatusCode::CREATED, render(&state, &a)))
}

fn ids(ws: &str, s: &str) -> ApiResult<(engine::Sid, engine::Sid)> {
    Ok((sid(ws, Prefix::Workspace, "WorkspaceSid")?, sid(s, Prefix::Activity, "Sid")?))
}

async fn fetch_activity(
    State(state): State<AppState>,
    Segments((ws, s)): Segments<(String, String)>,
) -> ApiResult<Response> {
    let (ws, sid) = ids(&ws, &s)?;
    let a = state.engine().activity(ws, sid).await?;
    Ok(json(StatusCode::OK, render(&state, &a)))
}

async fn update_activity(
    State(state): State<AppState>,
    Segments((ws, s)): Segments<(String, String)>,
    Form(mut p): Form,
) -> ApiResult<Response> {
    let (ws, sid) = ids(&ws, &s)?;
    let friendly_name = friendly_name(&mut p, false)?;
    p.finish()?;
    let a = state
        .engine()
        .apply::<Activity>(Command::UpdateActivity { workspace_sid: ws, sid, friendly_name })
        .await?;
    Ok(json(StatusCode::OK, render(&state, &a)))
}

async fn delete_activity(
    State(state): State<AppState>,
    Segments((ws, s)): Segments<(String, String)>,
) -> ApiResult<Response> {
    let (ws, sid) = ids(&ws, &s)?;
    deleted(state.engine().apply(Command::DeleteActivity { workspace_sid: ws, sid }).await?)
}

async fn list_activities(
    State(state): State<AppState>,
    Segments(ws): Segments<String>,
    Query(mut p): Query,
) -> ApiResult<Response> {
    let ws = sid(&ws, Prefix::Workspace, "WorkspaceSid")?;
    let (req, filters) = list_query(&mut p)?;
    let friendly_name = p.str("FriendlyName");
    let available = p.bool("Available");
    p.finish()?;
    let items = state.engine().activities(ws, ActivityFilter { friendly_name, available }).await?;
    Ok(v1_list(
        state.urls().workspace(ws, "/Activities"),
        &filters,
        "activities",
        &req,
        &items,
        |a| a.sid.to_string(),
        |a| render(&state, a),
    ))
}
