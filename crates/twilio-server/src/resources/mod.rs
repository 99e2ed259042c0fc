//! TaskRouter v1 resources under `/v1/Workspaces`, one module per resource, each with its own `router()`.

mod activities;
mod crud;
mod events;
mod reservations;
mod statistics;
mod task_channels;
mod task_queues;
mod tasks;
mod worker_channels;
mod workers;
mod workflows;
mod workspaces;

pub(crate) use crud::{Editable, Resource};
pub(crate) use reservations::params as reservation_params;
pub(crate) use reservations::render as render_reservation;
pub(crate) use worker_channels::render as render_worker_channel;
pub(crate) use workspaces::render as render_workspace;

use axum::Router;
use engine::{Sid, Timestamp};
use serde_json::{json, Map, Value};

use super::params::Params;
use super::render::iso8601;
use super::ServerState;
use super::{ApiError, ApiResult};

/// Every TaskRouter v1 route.
pub fn router() -> Router<ServerState> {
    Router::new()
        .merge(workspaces::router())
        .merge(activities::router())
        .merge(task_channels::router())
        .merge(workers::router())
        .merge(worker_channels::router())
        .merge(task_queues::router())
        .merge(workflows::router())
        .merge(tasks::router())
        .merge(reservations::router())
        .merge(events::router())
        .merge(statistics::router())
}

/// A v1 resource: the fields every one has (`account_sid`, `workspace_sid` when it is in a workspace, `sid`,
/// the dates and `url`) and `own`, a JSON object of the resource's own fields.
fn base(
    state: &ServerState,
    ws: Option<Sid>,
    sid: Sid,
    dates: (Timestamp, Timestamp),
    url: String,
    own: Value,
) -> Value {
    let mut m = match own {
        Value::Object(own) => own,
        _ => Map::new(),
    };
    m.insert("account_sid".into(), json!(state.credentials().account_sid));
    if let Some(ws) = ws {
        m.insert("workspace_sid".into(), json!(ws.to_string()));
    }
    m.insert("sid".into(), json!(sid.to_string()));
    m.insert("date_created".into(), json!(iso8601(dates.0)));
    m.insert("date_updated".into(), json!(iso8601(dates.1)));
    m.insert("url".into(), json!(url));
    Value::Object(m)
}

/// `FriendlyName`, at most 64 characters as Twilio allows.
pub(super) fn friendly_name(p: &mut Params, required: bool) -> ApiResult<Option<String>> {
    let name = if required { Some(p.required("FriendlyName")?) } else { p.str("FriendlyName") };
    if let Some(n) = &name {
        if n.chars().count() > 64 {
            return Err(ApiError::invalid(
                "Invalid parameter FriendlyName: it must be at most 64 characters",
            ));
        }
    }
    Ok(name)
}

/// An optional callback URL parameter: empty (to clear) or an http(s) URL.
pub(super) fn url_param(p: &mut Params, name: &str) -> ApiResult<Option<String>> {
    match p.str(name) {
        Some(u) if !(u.is_empty() || u.starts_with("http://") || u.starts_with("https://")) => {
            Err(ApiError::invalid(format!("Invalid parameter {name}: '{u}' is not an http or https URL")))
        }
        other => Ok(other),
    }
}
