//! The supervisor page's API: what the people running the contact centre see and do (issue #25; the
//! original app's `workerStatus.js`, live).
//!
//! | route | who | what |
//! |---|---|---|
//! | `POST /api/supervisor/token` | anyone, rate-limited as the worker sign-in | `{"name"?,"password"}` -> token, expiry, name |
//! | `GET /api/supervisor/picture` | supervisor | workers, queues, totals, chart ([`board`]) |
//! | `GET /api/supervisor/workers/{WK}/reservations` | supervisor | the worker's last reservations and their outcomes |
//! | `POST /api/supervisor/workers/{WK}/activity` | supervisor, rate-limited | `{"activity_sid"}` -> the worker |
//! | `GET /api/supervisor/ws` | supervisor (hello) | the live picture ([`live`]) |
//!
//! The password is `SUPERVISOR_PASSWORD`; a wrong one gets the worker sign-in's answer from the same limiter.
//! A worker's token on any of these routes is a 403, and a supervisor's token is no worker token
//! ([`auth::verify_supervisor`]). Setting a worker's activity is logged with the supervisor's name, and the
//! worker's open pages get `{"type":"notice","text":"Supervisor Grace set you to Offline"}`.

pub mod board;
pub mod live;

use std::net::IpAddr;

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::StreamExt as _;
use serde::Deserialize;
use serde_json::{json, Value};
use twilio::client::taskrouter::{ActivityFilter, ReservationFilter};
use twilio::models::Reservation;
use twilio_server::limit::{client_key, KeyedLimiter};

pub use live::attach_local;

use super::api::{require_sid, ActivityRequest, JsonBody};
use super::auth::{self, ClientIp, Supervisor};
use super::snapshot::{self, parse_date_ms};
use super::{AppError, AppState, RateLimit};

/// The longest name a supervisor may give.
const MAX_NAME_CHARS: usize = 64;
/// Reservations shown for a worker.
const RECENT_RESERVATIONS: usize = 20;
/// Per-address buckets of the action limit kept at most.
const MAX_ADDRESSES: usize = 10_000;

/// The supervisor page's share of the app state.
pub(crate) struct Supervisors {
    pub(crate) live: live::Live,
    /// Actions per client address.
    actions: KeyedLimiter<IpAddr>,
}

impl Supervisors {
    pub(crate) fn new(action_limit: RateLimit) -> Supervisors {
        Supervisors { live: live::Live::new(), actions: KeyedLimiter::new(action_limit, MAX_ADDRESSES) }
    }
}

impl AppState {
    /// Supervisor pages connected now, and whether the workspace's event channel is open for them.
    pub fn supervisor_pages(&self) -> (usize, bool) {
        let live = &self.inner.supervisor.live;
        (live.sockets(), live.is_open())
    }
}

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/supervisor/token", post(post_token))
        .route("/api/supervisor/picture", get(get_picture))
        .route("/api/supervisor/workers/{worker_sid}/reservations", get(get_reservations))
        .route("/api/supervisor/workers/{worker_sid}/activity", post(post_activity))
        .route("/api/supervisor/ws", get(live::upgrade))
}

#[derive(Deserialize)]
struct TokenRequest {
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
}

async fn post_token(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    JsonBody(request): JsonBody<TokenRequest>,
) -> Result<Json<Value>, AppError> {
    if request.name.chars().count() > MAX_NAME_CHARS {
        return Err(AppError::BadRequest(format!(
            "The name is longer than {MAX_NAME_CHARS} characters; give a shorter one."
        )));
    }
    let name = board::clean(request.name.trim());
    let limiter = &state.inner.limiter;
    limiter.admit(state.now(), ip)?;
    if state.config().supervisor_password.is_empty() {
        limiter.failed(state.now());
        return Err(AppError::Forbidden(
            "The supervisor page is off on this server: its operator has not set SUPERVISOR_PASSWORD.".into(),
        ));
    }
    if !auth::password_matches(&state.config().supervisor_password, &request.password) {
        limiter.failed(state.now());
        return Err(AppError::BadCredentials);
    }
    let issued = auth::issue_supervisor(&state, &name)?;
    limiter.succeeded(state.now(), ip);
    tracing::info!(supervisor = %name, "a supervisor signed in");
    Ok(Json(json!({
        "token": issued.token,
        "expires_at": snapshot::rfc3339(issued.exp),
        "name": name,
    })))
}

async fn get_picture(State(state): State<AppState>, _: Supervisor) -> Result<Json<Value>, AppError> {
    let mut board = Box::pin(board::load(&state)).await?;
    board.sample(state.now().millis());
    Ok(Json(board.to_json()))
}

/// What to say when TaskRouter does not know the worker.
fn worker_gone(worker_sid: &str) -> AppError {
    AppError::NotFound(format!(
        "Worker {worker_sid} no longer exists in this workspace: it was removed. The page drops it."
    ))
}

fn sort_key(reservation: &Reservation) -> (i64, String) {
    let at = parse_date_ms(reservation.date_created.as_deref()).unwrap_or(0);
    (at, reservation.sid.clone())
}

async fn get_reservations(
    State(state): State<AppState>,
    _: Supervisor,
    Path(worker_sid): Path<String>,
) -> Result<Json<Value>, AppError> {
    let worker_sid = require_sid("The worker", "WK", &worker_sid)?.to_owned();
    let client = state.client();
    let filter = ReservationFilter { page_size: Some(100), ..ReservationFilter::default() };
    let mut stream = client.list_worker_reservations(&worker_sid, &filter);
    // The newest few, whatever order the pages come in; only those are kept.
    let mut recent: Vec<Reservation> = Vec::with_capacity(RECENT_RESERVATIONS + 1);
    while let Some(reservation) = stream.next().await {
        let reservation = reservation.map_err(|e| match AppError::upstream("list the reservations", e) {
            AppError::NotFound(_) => worker_gone(&worker_sid),
            other => other,
        })?;
        recent.push(reservation);
        recent.sort_by_key(|r| std::cmp::Reverse(sort_key(r)));
        recent.truncate(RECENT_RESERVATIONS);
    }
    let tasks = futures_util::future::join_all(recent.iter().map(|r| async {
        match r.task_sid.as_deref() {
            Some(task) => client.fetch_task(task).await.ok(),
            None => None,
        }
    }))
    .await;
    let rows: Vec<Value> = recent
        .iter()
        .zip(tasks)
        .map(|(reservation, task)| {
            json!({
                "sid": reservation.sid,
                "task_sid": reservation.task_sid,
                "status": board::reservation_status(reservation.reservation_status.as_ref()),
                "caller": task.as_ref().and_then(board::caller),
                "queue": task.as_ref().and_then(|t| t.task_queue_friendly_name.clone()),
                "created_at": parse_date_ms(reservation.date_created.as_deref()),
                "updated_at": parse_date_ms(reservation.date_updated.as_deref()),
            })
        })
        .collect();
    Ok(Json(json!({ "worker_sid": worker_sid, "reservations": rows })))
}

async fn post_activity(
    State(state): State<AppState>,
    supervisor: Supervisor,
    ClientIp(ip): ClientIp,
    Path(worker_sid): Path<String>,
    JsonBody(request): JsonBody<ActivityRequest>,
) -> Result<Json<Value>, AppError> {
    let worker_sid = require_sid("The worker", "WK", &worker_sid)?.to_owned();
    let activity_sid = require_sid("activity_sid", "WA", &request.activity_sid)?.to_owned();
    if let Some(ip) = ip {
        state
            .inner
            .supervisor
            .actions
            .take(&client_key(ip), state.now())
            .map_err(|retry_after| AppError::TooManyActions { retry_after })?;
    }
    let workspace = snapshot::workspace(&state).await?;
    let activity = match workspace.activity(&activity_sid) {
        Some(activity) => activity.friendly_name.clone(),
        // The cached list may be older than the activity: ask TaskRouter before saying it is not there.
        None => state
            .client()
            .list_activities(&ActivityFilter::default())
            .all()
            .await
            .map_err(|e| AppError::upstream("list the workspace's activities", e))?
            .into_iter()
            .find(|a| a.sid == activity_sid)
            .map(|a| a.friendly_name.unwrap_or(a.sid))
            .ok_or_else(|| {
                AppError::Conflict(format!(
                    "Activity {activity_sid} no longer exists in this workspace. Reload the page for the \
                     current ones."
                ))
            })?,
    };
    let action = format!("set the worker to {activity}");
    let worker = match super::api::set_activity(&state, &worker_sid, &activity_sid, &action).await {
        Err(AppError::NotFound(_)) => return Err(worker_gone(&worker_sid)),
        other => other?,
    };
    let who = match supervisor.name.as_str() {
        "" => "A supervisor".to_owned(),
        name => format!("Supervisor {name}"),
    };
    tracing::info!(
        supervisor = %supervisor.name, %worker_sid, %activity,
        "a supervisor set a worker's activity"
    );
    let text = format!("{who} set you to {activity}");
    let notice =
        json!({ "type": "notice", "text": text, "by": supervisor.name, "activity_sid": activity_sid });
    state.inner.hub.push_message(&worker_sid, notice);
    Ok(Json(json!({ "worker": snapshot::worker_json(&worker, Some(&workspace)) })))
}
