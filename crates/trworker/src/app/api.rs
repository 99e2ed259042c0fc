//! The JSON API under `/api`, and the operations behind it that the legacy URLs share.
//!
//! | route | who | what |
//! |---|---|---|
//! | `GET /api/workspace` | anyone | workspace SID, name, mode, activities |
//! | `POST /api/token` | anyone, rate-limited | `{"identity","password"}` -> token, expiry, worker |
//! | `POST /api/token/refresh` | bearer | a new token for the same worker |
//! | `POST /api/token/sign-out` | bearer | moves the worker to the leave activity -> `{"activity"}` |
//! | `POST /api/worker/activity` | bearer | `{"activity_sid"}` -> the worker |
//! | `POST /api/reservations/{WR}/accept` | bearer, own | conference instruction, then the accept activity |
//! | `POST /api/reservations/{WR}/reject` | bearer, own | `{"activity_sid"?}` -> the reservation |
//! | `POST /api/tasks/{WT}/complete` | bearer, own | `{"disposition"?,"notes"?}` saved as the attributes' `wrap_up` -> the task |
//! | `POST /api/tasks/{WT}/wrap-up/extend` | bearer, own | adds time to the wrap-up, up to its limit -> `{"wrap_up"}` |
//! | `POST /api/conferences/{CF or name}/end` | bearer, own | -> the conference |
//! | `GET /api/conferences/{CF or name}` | bearer, own | the call's legs: role, status, `muted`, `hold` |
//! | `POST /api/conferences/{CF or name}/hold` | bearer, own | `{"hold"}`: holds or resumes the caller -> the legs |
//! | `POST /api/conferences/{CF or name}/mute` | bearer, own | `{"muted"}`: mutes or unmutes the worker -> the legs |
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
use twilio::client::conference::{ConferenceFilter, ParticipantFilter, UpdateParticipant};
use twilio::client::taskrouter::{
    ConferenceInstruction, Instruction, ReservationFilter, UpdateReservation, UpdateTask, UpdateWorker,
    WorkerFilter,
};
use twilio::models::{
    Conference, ConferenceStatus, Participant, Reservation, ReservationStatus, TaskAssignmentStatus, Worker,
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
        .route("/api/token/sign-out", post(sign_out))
        .route("/api/worker/activity", post(post_activity))
        .route("/api/reservations/{reservation_sid}/accept", post(accept_reservation))
        .route("/api/reservations/{reservation_sid}/reject", post(reject_reservation))
        .route("/api/tasks/{task_sid}/complete", post(complete_task))
        .route("/api/tasks/{task_sid}/wrap-up/extend", post(extend_wrap_up))
        .route("/api/tasks/{task_sid}/fix-wrapping", post(fix_wrapping))
        .route("/api/conferences/{conference}", get(get_call))
        .route("/api/conferences/{conference}/end", post(end_conference))
        .route("/api/conferences/{conference}/hold", post(hold_caller))
        .route("/api/conferences/{conference}/mute", post(mute_worker))
}

/// A JSON body whose problems come back in the app's error shape. An empty body reads as `{}`.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        // A body must say it is JSON. A cross-site form may POST `text/plain` without a CORS preflight; read
        // as JSON regardless, it would reach sign-in from any web page a worker opens.
        let declared_json = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(is_json_media_type);
        let bytes = Bytes::from_request(req, state).await.map_err(|e| match e.status() {
            axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                AppError::PayloadTooLarge(format!("The request body is too large: {e}"))
            }
            _ => AppError::BadRequest(format!("Could not read the request body: {e}")),
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return serde_json::from_slice(b"{}")
                .map(JsonBody)
                .map_err(|e| AppError::BadRequest(format!("The request needs a JSON body: {e}")));
        }
        if !declared_json {
            return Err(AppError::UnsupportedMediaType(
                "Send the body as JSON with Content-Type: application/json.".to_owned(),
            ));
        }
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| AppError::BadRequest(format!("The request body is not the expected JSON: {e}")))
    }
}

/// `application/json`, or a `+json` type, with any parameters.
fn is_json_media_type(value: &str) -> bool {
    let essence = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// The largest JSON body the API reads (413 beyond): its requests carry an identity and a password, an
/// activity SID, at most a few notes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The longest identity sign-in looks up. Worker names are short; a longer one cannot be a worker's, and
/// nothing of it is kept, but it is refused before any work is done for it.
pub(crate) const MAX_IDENTITY_CHARS: usize = 256;

/// `value` as a SID of kind `prefix`, or a 400 naming what was expected, before it goes into a URL.
pub(crate) fn require_sid<'a>(what: &str, prefix: &str, value: &'a str) -> Result<&'a str, AppError> {
    match twilio::models::is_sid(prefix, value) {
        true => Ok(value),
        false => Err(AppError::BadRequest(format!(
            "{what} must be {prefix} followed by 32 hexadecimal digits; got {:?}.",
            crate::app::error::shorten(value)
        ))),
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
    if identity.chars().count() > MAX_IDENTITY_CHARS {
        return Err(AppError::BadRequest(format!(
            "The identity is longer than {MAX_IDENTITY_CHARS} characters; no worker has such a name."
        )));
    }
    let limiter = &state.inner.limiter;
    limiter.admit(state.now(), ip)?;
    let password_ok = auth::password_matches(&state.config().token_password, password);
    if !password_ok || identity.trim().is_empty() {
        limiter.failed(state.now());
        return Err(AppError::BadCredentials);
    }
    let filter = WorkerFilter { friendly_name: Some(identity.to_owned()), ..Default::default() };
    let workers = state
        .client()
        .list_workers(&filter)
        .all()
        .await
        .map_err(|e| AppError::upstream("look up the worker", e))?;
    let worker = workers.into_iter().find(|w| w.friendly_name.as_deref() == Some(identity));
    let Some(worker) = worker else {
        limiter.failed(state.now());
        return Err(AppError::BadCredentials);
    };
    let issued = auth::issue(state, &worker.sid)?;
    limiter.succeeded(state.now(), ip);
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

/// Sign-out: the worker leaves the desk, so TaskRouter stops offering it calls. The token itself stays valid
/// until it expires (it is a self-contained JWT; the page forgets it), so a task still in wrap-up is still
/// completed by the server.
async fn sign_out(State(state): State<AppState>, bearer: Bearer) -> Result<Json<Value>, AppError> {
    let activity = super::leave::leave(&state, &bearer.worker_sid).await?;
    live::refresh(&state, &bearer.worker_sid);
    Ok(Json(json!({ "activity": activity })))
}

/// `{"activity_sid"}`: the body of a worker's own activity change and of a supervisor's.
#[derive(Deserialize)]
pub(crate) struct ActivityRequest {
    #[serde(default)]
    pub(crate) activity_sid: String,
}

async fn post_activity(
    State(state): State<AppState>,
    bearer: Bearer,
    JsonBody(request): JsonBody<ActivityRequest>,
) -> Result<Json<Value>, AppError> {
    if request.activity_sid.is_empty() {
        return Err(AppError::BadRequest("Say which activity: {\"activity_sid\":\"WA…\"}.".to_owned()));
    }
    let worker =
        set_activity(&state, &bearer.worker_sid, &request.activity_sid, "change the activity").await?;
    live::refresh(&state, &bearer.worker_sid);
    let workspace = snapshot::workspace(&state).await.ok();
    Ok(Json(snapshot::worker_json(&worker, workspace.as_ref())))
}

/// Moves `worker_sid` to `activity_sid` (the worker's own change, and a supervisor's); a failure says it
/// could not `action` (e.g. "set the worker to Offline").
pub(crate) async fn set_activity(
    state: &AppState,
    worker_sid: &str,
    activity_sid: &str,
    action: &str,
) -> Result<Worker, AppError> {
    let update = UpdateWorker { activity_sid: Some(activity_sid.to_owned()), ..Default::default() };
    state.client().update_worker(worker_sid, &update).await.map_err(|e| AppError::upstream(action, e))
}

/// The worker's own reservation `reservation_sid`, or 403.
async fn own_reservation(
    state: &AppState,
    worker_sid: &str,
    reservation_sid: &str,
) -> Result<Reservation, AppError> {
    require_sid("A reservation SID", "WR", reservation_sid)?;
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

/// Whether the worker holds `task_sid`: it accepted the task's reservation (which is then `accepted`,
/// `wrapping` or `completed`); 403 if not. A reservation the worker was only offered (pending, rejected,
/// timed out, rescinded, canceled) does not count: the task went, or may go, to someone else. A malformed
/// SID is a 400.
pub(crate) async fn own_task(state: &AppState, worker_sid: &str, task_sid: &str) -> Result<(), AppError> {
    require_sid("A task SID", "WT", task_sid)?;
    let forbidden = || AppError::Forbidden(format!("Task {task_sid} is not one of your tasks."));
    let filter = ReservationFilter { worker_sid: Some(worker_sid.to_owned()), ..Default::default() };
    let holds = |r: &Reservation| {
        r.worker_sid.as_deref() == Some(worker_sid)
            && matches!(
                r.reservation_status,
                Some(
                    ReservationStatus::Accepted | ReservationStatus::Wrapping | ReservationStatus::Completed
                )
            )
    };
    match state.client().list_task_reservations(task_sid, &filter).all().await {
        Ok(list) if list.iter().any(holds) => Ok(()),
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
            let action = format!("move you to {}", activity.friendly_name);
            if let Err(error) = set_activity(&state, worker_sid, &activity.sid, &action).await {
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

/// What the worker wrote in wrap-up, saved on the task's attributes as `wrap_up` when completing.
#[derive(Deserialize)]
struct CompleteRequest {
    #[serde(default)]
    disposition: Option<String>,
    #[serde(default)]
    notes: Option<String>,
}

/// The longest disposition (a choice from a short list).
const MAX_DISPOSITION_CHARS: usize = 100;

/// TaskRouter's limit on a task's attributes, in characters of their JSON text.
pub const MAX_ATTRIBUTES_CHARS: usize = 4096;

/// `attributes` with `wrap_up: {disposition, notes}` (the non-empty ones) merged in, or `None` when there is
/// nothing to save; a 400 saying how much to cut when the result is over TaskRouter's limit.
fn with_wrap_up(attributes: Value, request: &CompleteRequest) -> Result<Option<Value>, AppError> {
    let text =
        |value: &Option<String>| value.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned);
    let (disposition, notes) = (text(&request.disposition), text(&request.notes));
    if disposition.as_ref().is_some_and(|d| d.chars().count() > MAX_DISPOSITION_CHARS) {
        return Err(AppError::BadRequest(format!(
            "The disposition is longer than {MAX_DISPOSITION_CHARS} characters."
        )));
    }
    if disposition.is_none() && notes.is_none() {
        return Ok(None);
    }
    let mut wrap_up = serde_json::Map::new();
    if let Some(disposition) = disposition {
        wrap_up.insert("disposition".into(), Value::String(disposition));
    }
    if let Some(notes) = notes {
        wrap_up.insert("notes".into(), Value::String(notes));
    }
    let mut attributes = match attributes {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    attributes.insert("wrap_up".into(), Value::Object(wrap_up));
    let merged = Value::Object(attributes);
    let length = merged.to_string().chars().count();
    if length > MAX_ATTRIBUTES_CHARS {
        return Err(AppError::BadRequest(format!(
            "The notes are too long: with them the task's attributes would be {length} characters, and \
             TaskRouter keeps at most {MAX_ATTRIBUTES_CHARS}. Shorten them by {} characters.",
            length - MAX_ATTRIBUTES_CHARS
        )));
    }
    Ok(Some(merged))
}

async fn complete_task(
    State(state): State<AppState>,
    bearer: Bearer,
    Path(task_sid): Path<String>,
    JsonBody(request): JsonBody<CompleteRequest>,
) -> Result<Json<Value>, AppError> {
    own_task(&state, &bearer.worker_sid, &task_sid).await?;
    let task = wrapup::read_task(&state, &task_sid).await?;
    let done = matches!(
        task.assignment_status,
        Some(TaskAssignmentStatus::Completed | TaskAssignmentStatus::Canceled)
    );
    let attributes = with_wrap_up(task.attributes_json().unwrap_or_else(|_| json!({})), &request)?;
    if done {
        // The wrap-up ran out (or another tab completed it) first: say so when the notes are not saved.
        if attributes.is_some() {
            return Err(AppError::Conflict(
                "The task was already completed (its wrap-up time ran out), so the notes could not be saved \
                 on it."
                    .to_owned(),
            ));
        }
        live::refresh(&state, &bearer.worker_sid);
        return Ok(Json(snapshot::task_json(&task)));
    }
    // Not completed by the wrap-up timer meanwhile, and not twice by two tabs.
    let _claim = state.inner.wrapping.claim(&task_sid);
    let client = state.client();
    if let Some(attributes) = attributes {
        // TaskRouter takes new attributes and the completion in two requests.
        let update = UpdateTask { attributes: Some(attributes), ..Default::default() };
        client.update_task(&task_sid, &update).await.map_err(|e| AppError::upstream("save the notes", e))?;
    }
    let update = UpdateTask {
        assignment_status: Some(TaskAssignmentStatus::Completed),
        reason: Some(COMPLETED_REASON.to_owned()),
        ..Default::default()
    };
    let task = client
        .update_task(&task_sid, &update)
        .await
        .map_err(|e| AppError::upstream("complete the task", e))?;
    state.inner.wrapping.forget(&task_sid);
    live::refresh(&state, &bearer.worker_sid);
    Ok(Json(snapshot::task_json(&task)))
}

async fn extend_wrap_up(
    State(state): State<AppState>,
    bearer: Bearer,
    Path(task_sid): Path<String>,
) -> Result<Json<Value>, AppError> {
    own_task(&state, &bearer.worker_sid, &task_sid).await?;
    let wrap_up = wrapup::extend(&state, &task_sid).await?;
    live::refresh(&state, &bearer.worker_sid);
    Ok(Json(json!({ "task_sid": task_sid, "wrap_up": wrap_up.to_json() })))
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
    if sid_or_name.chars().count() > MAX_IDENTITY_CHARS {
        return Err(AppError::BadRequest(format!(
            "A conference name is at most {MAX_IDENTITY_CHARS} characters (TaskRouter names them by task SID)."
        )));
    }
    if sid_or_name.starts_with("CF") && sid_or_name.len() == 34 {
        require_sid("A conference SID", "CF", sid_or_name)?;
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

/// The conference `sid_or_name` when it is the worker's call: named after a task whose reservation the worker
/// accepted (TaskRouter names it by the task SID); 403 otherwise.
async fn own_conference(
    state: &AppState,
    worker_sid: &str,
    sid_or_name: &str,
) -> Result<Conference, AppError> {
    let conference = find_conference(state, sid_or_name).await?;
    let task_sid = conference.friendly_name.clone().unwrap_or_default();
    own_task(state, worker_sid, &task_sid)
        .await
        .map_err(|_| AppError::Forbidden(format!("Conference {sid_or_name} is not one of your calls.")))?;
    Ok(conference)
}

/// Ends the conference `sid_or_name`; with `worker_sid`, only one named after a task of that worker.
pub(crate) async fn end_conference_of(
    state: &AppState,
    worker_sid: Option<&str>,
    sid_or_name: &str,
) -> Result<Conference, AppError> {
    let conference = match worker_sid {
        Some(worker_sid) => own_conference(state, worker_sid, sid_or_name).await?,
        None => find_conference(state, sid_or_name).await?,
    };
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

/// Which leg of a call is whose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Worker,
    Customer,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Worker => "worker",
            Role::Customer => "customer",
        }
    }
}

/// The role of the leg `call_sid` of a task's conference. TaskRouter's conference instruction writes the two
/// legs into the task's attributes (`conference.participants.worker` and `.customer`); the caller's leg is
/// also the task's `call_sid`. Without either, the participant's label (`worker`, `customer`) says.
fn role_of(attributes: &Value, participant: &Participant) -> Role {
    let leg = |pointer: &str| attributes.pointer(pointer).and_then(Value::as_str);
    let call = Some(participant.call_sid.as_str());
    let worker_leg = leg("/conference/participants/worker");
    let customer_leg = leg("/conference/participants/customer").or_else(|| leg("/call_sid"));
    let labelled_customer = participant.label.as_deref() == Some("customer");
    if call == worker_leg {
        Role::Worker
    } else if call == customer_leg || labelled_customer || worker_leg.is_some() {
        Role::Customer
    } else {
        Role::Worker
    }
}

/// The legs of the worker's own call `sid_or_name` that has not ended, each with its role; 409 once it has.
async fn call_legs(
    state: &AppState,
    worker_sid: &str,
    sid_or_name: &str,
) -> Result<(Conference, Vec<(Role, Participant)>), AppError> {
    let conference = own_conference(state, worker_sid, sid_or_name).await?;
    if conference.status == Some(ConferenceStatus::Completed) {
        return Err(AppError::Conflict("The call has ended.".to_owned()));
    }
    let client = state.client();
    let task_sid = conference.friendly_name.clone().unwrap_or_default();
    let task =
        client.fetch_task(&task_sid).await.map_err(|e| AppError::upstream("read the call's task", e))?;
    let attributes = task.attributes_json().unwrap_or_else(|_| json!({}));
    let participants = client
        .list_participants(&conference.sid, &ParticipantFilter::default())
        .all()
        .await
        .map_err(|e| AppError::upstream("read the call's participants", e))?;
    let legs = participants.into_iter().map(|p| (role_of(&attributes, &p), p)).collect();
    Ok((conference, legs))
}

fn legs_json(conference: &Conference, legs: &[(Role, Participant)]) -> Value {
    let participants: Vec<Value> = legs
        .iter()
        .map(|(role, p)| {
            json!({
                "call_sid": p.call_sid,
                "role": role.as_str(),
                "status": p.status.as_ref().map(|s| s.as_str()),
                "muted": p.muted.unwrap_or(false),
                "hold": p.hold.unwrap_or(false),
            })
        })
        .collect();
    json!({
        "sid": conference.sid,
        "friendly_name": conference.friendly_name,
        "status": conference.status.as_ref().map(|s| s.as_str()),
        "participants": participants,
    })
}

async fn get_call(
    State(state): State<AppState>,
    bearer: Bearer,
    Path(conference): Path<String>,
) -> Result<Json<Value>, AppError> {
    let (conference, legs) = call_legs(&state, &bearer.worker_sid, &conference).await?;
    Ok(Json(legs_json(&conference, &legs)))
}

/// Updates the leg of `role` in the worker's own call, then answers the call's legs.
async fn update_leg(
    state: &AppState,
    worker_sid: &str,
    sid_or_name: &str,
    role: Role,
    update: &UpdateParticipant,
) -> Result<Json<Value>, AppError> {
    let (conference, mut legs) = call_legs(state, worker_sid, sid_or_name).await?;
    let who = match role {
        Role::Worker => "your line",
        Role::Customer => "the caller",
    };
    let Some((_, leg)) = legs.iter_mut().find(|(r, _)| *r == role) else {
        return Err(AppError::Conflict(format!(
            "There is no {who} on this call (yet): try again in a moment."
        )));
    };
    *leg = state
        .client()
        .update_participant(&conference.sid, &leg.call_sid, update)
        .await
        .map_err(|e| AppError::upstream(&format!("update {who}"), e))?;
    live::refresh(state, worker_sid);
    Ok(Json(legs_json(&conference, &legs)))
}

#[derive(Deserialize)]
struct HoldRequest {
    hold: Option<bool>,
}

/// Holds the caller (who then hears hold music and is not heard) or resumes it.
async fn hold_caller(
    State(state): State<AppState>,
    bearer: Bearer,
    Path(conference): Path<String>,
    JsonBody(request): JsonBody<HoldRequest>,
) -> Result<Json<Value>, AppError> {
    let Some(hold) = request.hold else {
        return Err(AppError::BadRequest(
            "Say whether to hold the caller: {\"hold\":true} or false.".to_owned(),
        ));
    };
    let update = UpdateParticipant { hold: Some(hold), ..Default::default() };
    update_leg(&state, &bearer.worker_sid, &conference, Role::Customer, &update).await
}

#[derive(Deserialize)]
struct MuteRequest {
    muted: Option<bool>,
}

/// Mutes the worker (the caller no longer hears it) or unmutes it.
async fn mute_worker(
    State(state): State<AppState>,
    bearer: Bearer,
    Path(conference): Path<String>,
    JsonBody(request): JsonBody<MuteRequest>,
) -> Result<Json<Value>, AppError> {
    let Some(muted) = request.muted else {
        return Err(AppError::BadRequest("Say whether to mute: {\"muted\":true} or false.".to_owned()));
    };
    let update = UpdateParticipant { muted: Some(muted), ..Default::default() };
    update_leg(&state, &bearer.worker_sid, &conference, Role::Worker, &update).await
}
