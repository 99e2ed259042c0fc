//! The JSON API under `/api`, and the operations behind it that the legacy URLs share.
//!
//! | route | who | what |
//! |---|---|---|
//! | `GET /api/workspace` | anyone | workspace SID, name, mode, activities |
//! | `POST /api/token` | anyone, rate-limited | `{"identity","password"}` -> token, expiry, worker |
//! | `POST /api/token/refresh` | bearer | a new token for the same worker |
//! | `POST /api/worker/activity` | bearer | `{"activity_sid"}` -> the worker |
//! | `POST /api/reservations/{WR}/accept` | bearer, own | conference instruction, then the accept activity |
//! | `POST /api/reservations/{WR}/reject` | bearer, own | `{"activity_sid"?}` -> the reservation |
//! | `POST /api/tasks/{WT}/complete` | bearer, own | -> the task |
//! | `POST /api/conferences/{CF or name}/end` | bearer, own | -> the conference |
//! | `POST /api/tasks/{WT}/fix-wrapping` | bearer, own | completes it if wrapping -> the task |
//!
//! "Own": the reservation is under the worker's own reservations, the task has a reservation of the worker,
//! the conference is named after such a task (TaskRouter names it by the task SID). Anything else is 403,
//! whether or not it exists, so nothing about other workers leaks.

use std::net::IpAddr;

use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Request, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use twilio::client::conference::ConferenceFilter;
use twilio::client::taskrouter::{
    ConferenceInstruction, Instruction, ReservationFilter, UpdateReservation, UpdateTask, UpdateWorker,
    WorkerFilter,
};
use twilio::models::{
    Conference, ConferenceStatus, Reservation, ReservationStatus, TaskAssignmentStatus, Worker,
};

use super::auth::{self, Bearer, ClientIp};
use super::{live, snapshot, wrapup, AppError, AppState};

/// Reason given when a worker completes a task.
const COMPLETED_REASON: &str = "Completed by the worker";

/// The API routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/workspace", get(get_workspace))
        .route("/api/token", post(post_token))
        .route("/api/token/refresh", post(refresh_token))
        .route("/api/worker/activity", post(post_activity))
        .route("/api/reservations/{reservation_sid}/accept", post(accept_reservation))
        .route("/api/reservations/{reservation_sid}/reject", post(reject_reservation))
        .route("/api/tasks/{task_sid}/complete", post(complete_task))
        .route("/api/tasks/{task_sid}/fix-wrapping", post(fix_wrapping))
        .route("/api/conferences/{conference}/end", post(end_conference))
}

/// A JSON body whose problems come back in the app's error shape. An empty body reads as `{}`.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| AppError::BadRequest(format!("Could not read the request body: {e}")))?;
        let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) { b"{}" } else { &bytes };
        serde_json::from_slice(bytes)
            .map(JsonBody)
            .map_err(|e| AppError::BadRequest(format!("The request body is not the expected JSON: {e}")))
    }
}

async fn get_workspace(State(state): State<AppState>) -> Result<Json<Value>, AppError> {
    let workspace = snapshot::workspace(&state).await?;
    Ok(Json(workspace.to_json(state.config().mode.as_str())))
}

#[derive(Deserialize)]
struct TokenRequest {
    #[serde(default)]
    identity: String,
    #[serde(default)]
    password: String,
}

/// A worker token with the worker it was issued for.
pub(crate) struct SignedIn {
    pub(crate) token: String,
    pub(crate) exp: u64,
    pub(crate) worker: Worker,
}

/// Checks the password (constant time, before anything else is looked at), finds the worker named
/// `identity` and issues its token. Wrong password and unknown identity are the same error.
pub(crate) async fn sign_in(
    state: &AppState,
    ip: Option<IpAddr>,
    identity: &str,
    password: &str,
) -> Result<SignedIn, AppError> {
    state.inner.limiter.attempt(state.now(), ip, identity)?;
    let password_ok = auth::password_matches(&state.config().token_password, password);
    if !password_ok || identity.trim().is_empty() {
        return Err(AppError::BadCredentials);
    }
    let filter = WorkerFilter { friendly_name: Some(identity.to_owned()), ..Default::default() };
    let workers = state
        .client()
        .list_workers(&filter)
        .all()
        .await
        .map_err(|e| AppError::upstream("look up the worker", e))?;
    let worker = workers
        .into_iter()
        .find(|w| w.friendly_name.as_deref() == Some(identity))
        .ok_or(AppError::BadCredentials)?;
    let issued = auth::issue(state, &worker.sid)?;
    Ok(SignedIn { token: issued.token, exp: issued.exp, worker })
}

async fn token_json(state: &AppState, signed_in: SignedIn) -> Json<Value> {
    let workspace = snapshot::workspace(state).await.ok();
    Json(json!({
        "token": signed_in.token,
        "expires_at": snapshot::rfc3339(signed_in.exp),
        "worker": snapshot::worker_json(&signed_in.worker, workspace.as_ref()),
    }))
}

async fn post_token(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    JsonBody(request): JsonBody<TokenRequest>,
) -> Result<Json<Value>, AppError> {
    let signed_in = sign_in(&state, ip, &request.identity, &request.password).await?;
    Ok(token_json(&state, signed_in).await)
}

async fn refresh_token(State(state): State<AppState>, bearer: Bearer) -> Result<Json<Value>, AppError> {
    let worker = match state.client().fetch_worker(&bearer.worker_sid).await {
        Ok(worker) => worker,
        Err(e) if e.is_not_found() => {
            return Err(AppError::Unauthorized("Sign in again: this worker no longer exists.".to_owned()))
        }
        Err(e) => return Err(AppError::upstream("read the worker", e)),
    };
    let issued = auth::issue(&state, &worker.sid)?;
    Ok(token_json(&state, SignedIn { token: issued.token, exp: issued.exp, worker }).await)
}

#[derive(Deserialize)]
struct ActivityRequest {
    #[serde(default)]
    activity_sid: String,
}

async fn post_activity(
    State(state): State<AppState>,
    bearer: Bearer,
    JsonBody(request): JsonBody<ActivityRequest>,
) -> Result<Json<Value>, AppError> {
    if request.activity_sid.is_empty() {
        return Err(AppError::BadRequest("Say which activity: {\"activity_sid\":\"WA…\"}.".to_owned()));
    }
    let worker = set_activity(&state, &bearer.worker_sid, &request.activity_sid).await?;
    live::refresh(&state, &bearer.worker_sid);
    spawn_wrap_up_check(&state, &bearer.worker_sid);
    let workspace = snapshot::workspace(&state).await.ok();
    Ok(Json(snapshot::worker_json(&worker, workspace.as_ref())))
}

async fn set_activity(state: &AppState, worker_sid: &str, activity_sid: &str) -> Result<Worker, AppError> {
    let update = UpdateWorker { activity_sid: Some(activity_sid.to_owned()), ..Default::default() };
    state
        .client()
        .update_worker(worker_sid, &update)
        .await
        .map_err(|e| AppError::upstream("change the activity", e))
}

fn spawn_wrap_up_check(state: &AppState, worker_sid: &str) {
    let state = state.clone();
    let worker = worker_sid.to_owned();
    tokio::spawn(async move { wrapup::check_worker(&state, &worker).await });
}

/// The worker's own reservation `reservation_sid`, or 403.
async fn own_reservation(
    state: &AppState,
    worker_sid: &str,
    reservation_sid: &str,
) -> Result<Reservation, AppError> {
    let forbidden =
        || AppError::Forbidden(format!("Reservation {reservation_sid} is not one of your reservations."));
    match state.client().fetch_worker_reservation(worker_sid, reservation_sid).await {
        // The worker view should only hold the worker's own; checking costs nothing.
        Ok(reservation) if reservation.worker_sid.as_deref() == Some(worker_sid) => Ok(reservation),
        Ok(_) => Err(forbidden()),
        Err(e) if e.is_not_found() => Err(forbidden()),
        Err(e) => Err(AppError::upstream("read the reservation", e)),
    }
}

/// Whether the worker has a reservation for `task_sid`; 403 if not.
pub(crate) async fn own_task(state: &AppState, worker_sid: &str, task_sid: &str) -> Result<(), AppError> {
    let forbidden = || AppError::Forbidden(format!("Task {task_sid} is not one of your tasks."));
    if !task_sid.starts_with("WT") {
        return Err(forbidden());
    }
    let filter = ReservationFilter { worker_sid: Some(worker_sid.to_owned()), ..Default::default() };
    match state.client().list_task_reservations(task_sid, &filter).all().await {
        Ok(list) if list.iter().any(|r| r.worker_sid.as_deref() == Some(worker_sid)) => Ok(()),
        Ok(_) => Err(forbidden()),
        Err(e) if e.is_not_found() => Err(forbidden()),
        Err(e) => Err(AppError::upstream("read the task's reservations", e)),
    }
}

async fn accept_reservation(
    State(state): State<AppState>,
    bearer: Bearer,
    Path(reservation_sid): Path<String>,
) -> Result<Json<Value>, AppError> {
    let worker_sid = bearer.worker_sid.as_str();
    own_reservation(&state, worker_sid, &reservation_sid).await?;
    let config = state.config();
    let workspace = snapshot::workspace(&state).await?;
    let post_work = workspace.activity_named(&config.post_work_activity).map(|a| a.sid.clone());
    let instruction = ConferenceInstruction {
        from: config.caller_id.clone(),
        post_work_activity_sid: post_work,
        ..Default::default()
    };
    let update =
        UpdateReservation { instruction: Some(Instruction::Conference(instruction)), ..Default::default() };
    let reservation = state
        .client()
        .update_worker_reservation(worker_sid, &reservation_sid, &update)
        .await
        .map_err(|e| AppError::upstream("accept the reservation", e))?;
    // Busy while on the call, as in the seed. The reservation is accepted already, so a failure here is
    // reported to the worker's sockets rather than as a failed accept.
    match workspace.activity_named(&config.accept_activity) {
        Some(activity) => {
            if let Err(error) = set_activity(&state, worker_sid, &activity.sid).await {
                tracing::warn!(%worker_sid, %error, "could not move the worker to the accept activity");
                state.inner.hub.push_message(
                    worker_sid,
                    json!({ "type": "error", "message": format!("Accepted, but {}", error.message()) }),
                );
            }
        }
        None => tracing::warn!(activity = %config.accept_activity, "the accept activity does not exist"),
    }
    live::refresh(&state, worker_sid);
    Ok(Json(snapshot::reservation_json(&reservation)))
}

#[derive(Deserialize)]
struct RejectRequest {
    #[serde(default)]
    activity_sid: Option<String>,
}

async fn reject_reservation(
    State(state): State<AppState>,
    bearer: Bearer,
    Path(reservation_sid): Path<String>,
    JsonBody(request): JsonBody<RejectRequest>,
) -> Result<Json<Value>, AppError> {
    let worker_sid = bearer.worker_sid.as_str();
    own_reservation(&state, worker_sid, &reservation_sid).await?;
    let update = UpdateReservation {
        reservation_status: Some(ReservationStatus::Rejected),
        worker_activity_sid: request.activity_sid.filter(|s| !s.is_empty()),
        ..Default::default()
    };
    let reservation = state
        .client()
        .update_worker_reservation(worker_sid, &reservation_sid, &update)
        .await
        .map_err(|e| AppError::upstream("reject the reservation", e))?;
    live::refresh(&state, worker_sid);
    Ok(Json(snapshot::reservation_json(&reservation)))
}

async fn complete_task(
    State(state): State<AppState>,
    bearer: Bearer,
    Path(task_sid): Path<String>,
) -> Result<Json<Value>, AppError> {
    own_task(&state, &bearer.worker_sid, &task_sid).await?;
    let update = UpdateTask {
        assignment_status: Some(TaskAssignmentStatus::Completed),
        reason: Some(COMPLETED_REASON.to_owned()),
        ..Default::default()
    };
    let task = state
        .client()
        .update_task(&task_sid, &update)
        .await
        .map_err(|e| AppError::upstream("complete the task", e))?;
    state.inner.wrapping.forget(&task_sid);
    live::refresh(&state, &bearer.worker_sid);
    Ok(Json(snapshot::task_json(&task)))
}

async fn fix_wrapping(
    State(state): State<AppState>,
    bearer: Bearer,
    Path(task_sid): Path<String>,
) -> Result<Json<Value>, AppError> {
    own_task(&state, &bearer.worker_sid, &task_sid).await?;
    let task = wrapup::fix_task(&state, &task_sid).await?;
    live::refresh(&state, &bearer.worker_sid);
    Ok(Json(snapshot::task_json(&task)))
}

/// The conference named by a SID (`CF…`) or a friendly name; a name finds one that has not ended.
pub(crate) async fn find_conference(state: &AppState, sid_or_name: &str) -> Result<Conference, AppError> {
    let client = state.client();
    let looks_like_sid = sid_or_name.len() == 34 && sid_or_name.starts_with("CF");
    if looks_like_sid {
        return client
            .fetch_conference(sid_or_name)
            .await
            .map_err(|e| AppError::upstream("read the conference", e));
    }
    let filter = ConferenceFilter { friendly_name: Some(sid_or_name.to_owned()), ..Default::default() };
    let list = client
        .list_conferences(&filter)
        .all()
        .await
        .map_err(|e| AppError::upstream("look up the conference", e))?;
    list.into_iter()
        .find(|c| c.status != Some(ConferenceStatus::Completed))
        .ok_or_else(|| AppError::NotFound(format!("No conference named {sid_or_name:?} is in progress.")))
}

/// Ends the conference `sid_or_name`; with `worker_sid`, only one named after a task of that worker.
pub(crate) async fn end_conference_of(
    state: &AppState,
    worker_sid: Option<&str>,
    sid_or_name: &str,
) -> Result<Conference, AppError> {
    let conference = find_conference(state, sid_or_name).await?;
    if let Some(worker_sid) = worker_sid {
        let task_sid = conference.friendly_name.clone().unwrap_or_default();
        own_task(state, worker_sid, &task_sid).await.map_err(|_| {
            AppError::Forbidden(format!("Conference {sid_or_name} is not one of your calls."))
        })?;
    }
    if conference.status == Some(ConferenceStatus::Completed) {
        return Ok(conference);
    }
    state
        .client()
        .end_conference(&conference.sid)
        .await
        .map_err(|e| AppError::upstream("end the conference", e))
}

async fn end_conference(
    State(state): State<AppState>,
    bearer: Bearer,
    Path(conference): Path<String>,
) -> Result<Json<Value>, AppError> {
    let ended = end_conference_of(&state, Some(&bearer.worker_sid), &conference).await?;
    live::refresh(&state, &bearer.worker_sid);
    Ok(Json(json!({
        "sid": ended.sid,
        "friendly_name": ended.friendly_name,
        "status": ended.status.as_ref().map(|s| s.as_str()),
    })))
}
