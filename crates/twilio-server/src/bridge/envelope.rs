//! The REST envelope (eb §4): `POST /v1/wschannels` with the JSON body `{url, method, params, token}`,
//! answered `{"payload": …}` in the SDK's internal format, or a non-2xx `{message}`.
//!
//! The body is JSON whatever its Content-Type (the SDK sends none, or `text/plain`). `url` is relative to
//! the workspace list (`Workspaces/WS…/Workers/WK…`); a leading `/`, `v1/` or a scheme and host are
//! stripped, so a client that names Twilio's host or the engine's base is routed by path. The parameters
//! become the form parameters of the REST resource and go through that resource's own parser and engine
//! command, so the rules are the REST API's. A worker token may act on its own worker, its own
//! reservations and the tasks reserved to it, nothing else (403). A supervisor's token (grant role
//! `supervisor` or `admin`) may also read the workspace's workers, task queues and tasks (the SDK's
//! `Workspace` class) and set another worker's activity and attributes (`Supervisor`), and monitor, whisper
//! to or barge into a call (`Supervisor.monitor`: the `supervise` instruction on a task's reservation). A
//! workspace token (role `admin` with no worker) may do what a supervisor may, except what needs a worker
//! of its own.
//!
//! Besides the Worker flow, the participant calls of a task's conference (`WorkerParticipant`,
//! `CustomerParticipant`, `HoldWorkerParticipant`, `KickWorkerParticipant`) act on the legs the engine's
//! `conference` instruction created, which it records in the task's attributes. `Transfers` and
//! `Transfers/{TT}` start and cancel the engine's task transfers.
//!
//! An updated token: the SDK's `updateToken` sends nothing on the socket (it keeps the new token for later
//! envelopes and reconnects, eb §2), so the envelope is where the engine learns of it. Once verified, an
//! envelope's token moves the expiry of its worker's open channels to the token's, if later. A bad, expired
//! or other-account token is refused here with 401 and `{message}` and moves nothing; a valid token for
//! another worker moves only that worker's channels (and gets 403 on this worker's routes).

use axum::body::Body;
use axum::extract::State;
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_MAX_AGE, ORIGIN, VARY,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use engine::command::{Command, TransferParams, UpdateParticipantParams, UpdateReservationParams};
use engine::core::ActivityFilter;
use engine::model::{Participant, Reservation, Task, TaskConference, TaskQueue, Worker};
use engine::{Prefix, Sid};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::format;
use super::token::{self, Grant};
use crate::extract::{if_match, json as json_response, sid};
use crate::handle::Parent;
use crate::params::{one_of, truthy, Params};
use crate::resources::{reservation_params, Editable, Resource};
use crate::{ApiError, ApiResult, ServerState};

/// The largest envelope accepted: a task's attributes may be 4,096 characters, escaped up to six bytes
/// each in JSON, plus the rest; 64 KiB is well above any call of the SDK.
pub const ENVELOPE_LIMIT: usize = 64 * 1024;

/// The most items one page carries (the SDK asks for 1,000).
const MAX_PAGE: usize = 1000;

/// The envelope's body (v1's adds `event_type`).
#[derive(Deserialize)]
pub(super) struct Envelope {
    pub url: String,
    pub method: String,
    #[serde(default)]
    pub params: Option<Map<String, Value>>,
    pub token: String,
}

/// `OPTIONS /v1/wschannels`: the CORS preflight of a browser's envelope (eb §4.1).
pub(super) async fn preflight(headers: HeaderMap) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let h = response.headers_mut();
    allow_origin(h, &headers);
    h.insert(ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("POST, OPTIONS"));
    h.insert(
        ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("clientversion, apiversion, if-match, content-type"),
    );
    h.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    response
}

/// `Access-Control-Allow-Origin`: the request's origin (so a page served from anywhere works, as with
/// Twilio's bridge), or `*` without one. No credentials are involved: the token is in the body.
pub(super) fn allow_origin(h: &mut HeaderMap, request: &HeaderMap) {
    let origin = request.get(ORIGIN).cloned().unwrap_or(HeaderValue::from_static("*"));
    h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    h.insert(VARY, HeaderValue::from_static("Origin"));
}

/// An error as the SDK reads it: the status and `{message}` (Twilio's `code` and `status` beside it).
pub(super) fn error_response(e: ApiError, request: Option<&HeaderMap>) -> Response {
    let body = json!({ "message": e.message, "code": e.code, "status": e.status.as_u16() });
    let mut response = json_response(e.status, body);
    if let Some(request) = request {
        allow_origin(response.headers_mut(), request);
    }
    response
}

/// `POST /v1/wschannels`.
pub(super) async fn post_envelope(
    State(state): State<ServerState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let answer = match axum::body::to_bytes(body, ENVELOPE_LIMIT).await {
        Ok(bytes) => answer(&state, &headers, &bytes).await,
        Err(_) => Err(ApiError::too_large(ENVELOPE_LIMIT)),
    };
    match answer {
        Ok(payload) => {
            let mut response = json_response(StatusCode::OK, json!({ "payload": payload }));
            allow_origin(response.headers_mut(), &headers);
            response
        }
        Err(e) => error_response(e, Some(&headers)),
    }
}

async fn answer(state: &ServerState, headers: &HeaderMap, body: &[u8]) -> ApiResult<Value> {
    let envelope: Envelope = serde_json::from_slice(body).map_err(|e| {
        ApiError::invalid(format!(
            "The envelope must be JSON {{\"url\",\"method\",\"params\",\"token\"}} with string url, method and token ({e})"
        ))
    })?;
    let now = state.engine().now();
    let grant = token::verify_grant(state, &envelope.token, now).await?;
    // The SDK's `updateToken` sends nothing on the socket: the new token arrives here (`Sessions::extend`).
    if let Grant::Worker(bearer) = grant {
        let deadline = super::deadline_in(u64::try_from(bearer.lifetime_ms(now)).unwrap_or(0));
        state.bridge().sessions.extend(bearer.worker_sid, super::Addressing::V2, deadline);
    }
    let p = params(envelope.params.unwrap_or_default());
    let path = relative(&envelope.url);
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let method = envelope.method.to_ascii_uppercase();
    let Some((&"Workspaces", rest)) = segments.split_first() else {
        return Err(unknown(&method, &envelope.url));
    };
    let Some((ws, rest)) = rest.split_first() else { return Err(unknown(&method, &envelope.url)) };
    let ws = sid(ws, Prefix::Workspace, "WorkspaceSid")?;
    if ws != grant.workspace_sid() {
        return Err(forbidden(format!("the token is for workspace {}, not {ws}", grant.workspace_sid())));
    }
    let call = Call { state, grant, p, if_match: if_match(headers) };
    match (method.as_str(), rest) {
        ("GET", ["Activities"]) => call.activities().await,
        ("GET", ["Workers"]) => call.list::<Worker>("workers", |w| w.sid, format::worker).await,
        ("GET", ["Workers", wk]) => call.worker(wk).await,
        ("POST", ["Workers", wk]) => call.update_worker(wk).await,
        ("GET", ["Workers", wk, "WorkerChannels"] | ["Workers", wk, "Channels"]) => {
            call.worker_channels(wk).await
        }
        ("GET", ["Workers", wk, "Reservations"]) => call.reservations(wk).await,
        ("GET", ["Workers", wk, "Reservations", wr]) => call.reservation(wk, wr).await,
        ("POST", ["Workers", wk, "Reservations", wr]) => call.update_reservation(wk, wr).await,
        ("POST", ["Workers", wk, "WorkerParticipant"]) => call.worker_participant(wk).await,
        ("POST", ["Workers", wk, "CustomerParticipant"]) => call.customer_participant(wk).await,
        ("POST", ["Workers", wk, "HoldWorkerParticipant"]) => call.target_participant(wk, Leg::Hold).await,
        ("POST", ["Workers", wk, "KickWorkerParticipant"]) => call.target_participant(wk, Leg::Kick).await,
        ("POST", ["Workers", wk, "Transfers"]) => call.transfer(wk).await,
        ("POST", ["Workers", wk, "Transfers", tt]) => call.cancel_transfer(wk, tt).await,
        ("POST", ["Tasks"]) => call.create_task().await,
        ("GET", ["Tasks", wt]) => call.task(wt).await,
        ("POST", ["Tasks", wt]) => call.update_task(wt).await,
        ("POST", ["Tasks", wt, "Reservations", wr]) => call.supervise(wt, wr).await,
        ("GET", ["TaskQueues"]) => call.list::<TaskQueue>("task queues", |q| q.sid, format::task_queue).await,
        ("GET", ["TaskQueues", wq]) => call.task_queue(wq).await,
        _ => Err(unknown(&method, &envelope.url)),
    }
}

/// The path relative to the TaskRouter base: without scheme and host, a leading `/` or `v1/`.
fn relative(url: &str) -> &str {
    let path = super::url_path(url).trim_start_matches('/');
    path.strip_prefix("v1/").unwrap_or(path)
}

/// The envelope's JSON parameters as form parameters: strings as they are, numbers and booleans as their
/// text, objects and arrays (`Attributes`) as their JSON text, `null` as absent.
pub(super) fn params(map: Map<String, Value>) -> Params {
    let mut form = Vec::with_capacity(map.len());
    for (name, value) in map {
        let text = match value {
            Value::Null => continue,
            Value::String(s) => s,
            other => other.to_string(),
        };
        form.push((name, text));
    }
    Params::from_pairs(form)
}

fn unknown(method: &str, url: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        crate::error::NOT_FOUND,
        format!("The event bridge has no route for {method} {url}"),
    )
}

pub(super) fn forbidden(why: String) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, 20403, format!("Forbidden: {why}"))
}

/// One envelope call, checked against its bearer.
struct Call<'a> {
    state: &'a ServerState,
    grant: Grant,
    p: Params,
    if_match: Option<String>,
}

impl Call<'_> {
    fn ws(&self) -> Sid {
        self.grant.workspace_sid()
    }

    /// The bearer's worker; a workspace token has none.
    fn own(&self) -> ApiResult<Sid> {
        match self.grant {
            Grant::Worker(b) => Ok(b.worker_sid),
            Grant::Workspace(_) => Err(forbidden(
                "the token is a workspace token (role admin, no worker_sid), and this call acts as a worker: \
                 use a token whose TaskRouter grant names the worker"
                    .into(),
            )),
        }
    }

    /// A supervisor's, an admin's or a workspace token: it may read and set the workspace's workers.
    fn workspace_wide(&self) -> bool {
        match self.grant {
            Grant::Worker(b) => b.supervisor,
            Grant::Workspace(_) => true,
        }
    }

    /// Refuses a worker's token on a call that reads or changes the workspace beyond its worker.
    fn need_workspace_wide(&self, what: &str) -> ApiResult<()> {
        if self.workspace_wide() {
            return Ok(());
        }
        Err(forbidden(format!(
            "{what} needs a supervisor's or a workspace token (grant role supervisor or admin)"
        )))
    }

    /// The worker of the path, which must be the bearer's.
    fn own_worker(&self, wk: &str) -> ApiResult<Sid> {
        let wk = sid(wk, Prefix::Worker, "WorkerSid")?;
        let own = self.own()?;
        if wk != own {
            return Err(forbidden(format!("the token is for worker {own}, not {wk}")));
        }
        Ok(wk)
    }

    /// The worker of the path: the bearer's, or any for a workspace-wide token.
    fn readable_worker(&self, wk: &str) -> ApiResult<Sid> {
        if self.workspace_wide() {
            return sid(wk, Prefix::Worker, "WorkerSid");
        }
        self.own_worker(wk)
    }

    /// The task of the path, which must be reserved to the bearer's worker (now or before).
    async fn own_task(&self, wt: &str) -> ApiResult<Sid> {
        let wt = sid(wt, Prefix::Task, "TaskSid")?;
        let (ws, wk) = (self.ws(), self.own()?);
        let theirs = self.state.engine().reservations(ws, Parent::Task(wt), None, Some(wk)).await?;
        if theirs.is_empty() {
            return Err(forbidden(format!("task {wt} is not reserved to worker {wk}")));
        }
        Ok(wt)
    }

    /// `PageSize` and `AfterSid` of a list.
    /// `NextToken` is the same place: the SDK sends it instead of `AfterSid` when it orders a list, and this
    /// bridge's next token is the last SID of the page.
    fn page_request(&mut self) -> ApiResult<(usize, Option<String>)> {
        let size = self.p.int("PageSize", 1, MAX_PAGE as i64)?.unwrap_or(50);
        let (after, next) = (self.p.str("AfterSid"), self.p.str("NextToken"));
        let after = after.or(next);
        Ok((usize::try_from(size).unwrap_or(MAX_PAGE), after))
    }

    fn finish(self) -> ApiResult<()> {
        self.p.finish()
    }

    async fn activities(mut self) -> ApiResult<Value> {
        let (size, after) = self.page_request()?;
        let ws = self.ws();
        let engine = self.state.engine().clone();
        self.finish()?;
        let items = engine.activities(ws, ActivityFilter::default()).await?;
        page(&items, size, after, |a| a.sid, format::activity)
    }

    async fn worker(self, wk: &str) -> ApiResult<Value> {
        let wk = self.readable_worker(wk)?;
        let w = self.state.engine().worker(self.ws(), wk).await?;
        Ok(format::worker(&w))
    }

    /// `Workspace.fetchWorkers` and `fetchTaskQueues` (eb §4.3): the REST list's filters and `Ordering`,
    /// paged by `AfterSid` (or `NextToken`, which the SDK sends instead once it orders).
    async fn list<R: Resource>(
        mut self,
        what: &str,
        sid: impl Fn(&R) -> Sid,
        render: impl Fn(&R) -> Value,
    ) -> ApiResult<Value> {
        self.need_workspace_wide(&format!("Listing the workspace's {what}"))?;
        let (size, after) = self.page_request()?;
        let filter = R::filter(&mut self.p)?;
        let (ws, engine) = (self.ws(), self.state.engine().clone());
        self.finish()?;
        let items = R::list(&engine, ws, filter).await?;
        page(&items, size, after, sid, render)
    }

    /// `Workspace.fetchTaskQueue` (eb §4.3).
    async fn task_queue(self, wq: &str) -> ApiResult<Value> {
        self.need_workspace_wide("Reading a task queue")?;
        let wq = sid(wq, Prefix::TaskQueue, "TaskQueueSid")?;
        let engine = self.state.engine();
        let q = <TaskQueue as Resource>::fetch(engine, self.ws(), wq).await?;
        self.finish()?;
        Ok(format::task_queue(&q))
    }

    /// `Activity.setAsCurrent` and `Worker.setAttributes` on the bearer's worker;
    /// `Supervisor.setWorkerActivity` and `setWorkerAttributes` on another worker of the workspace, for a
    /// supervisor's token. The SDK's supervisor sends its own worker's version as `If-Match` there (eb §8,
    /// risk 11), which says nothing of the other worker, so it is not checked.
    async fn update_worker(mut self, wk: &str) -> ApiResult<Value> {
        let wk = self.readable_worker(wk)?;
        if self.own().ok() != Some(wk) {
            self.if_match = None;
        }
        let command = <Worker as Editable>::update(self.ws(), wk, &mut self.p, self.if_match.take())?;
        let engine = self.state.engine().clone();
        self.finish()?;
        let w = engine.apply::<Worker>(command).await?;
        Ok(format::worker(&w))
    }

    async fn worker_channels(mut self, wk: &str) -> ApiResult<Value> {
        let wk = self.own_worker(wk)?;
        let (size, after) = self.page_request()?;
        let ws = self.ws();
        let engine = self.state.engine().clone();
        self.finish()?;
        let items = engine.worker_channels(ws, wk).await?;
        page(&items, size, after, |c| c.sid, format::worker_channel)
    }

    /// The worker's reservations with their tasks; `Active=true` keeps pending, accepted and wrapping ones
    /// (those the SDK tracks), `ReservationStatus` one status.
    async fn reservations(mut self, wk: &str) -> ApiResult<Value> {
        let wk = self.own_worker(wk)?;
        let (size, after) = self.page_request()?;
        let active = self.p.bool("Active").unwrap_or(false);
        let status = match self.p.str("ReservationStatus") {
            Some(s) => Some(engine::model::ReservationStatus::parse(&s).ok_or_else(|| {
                ApiError::invalid(format!(
                    "Invalid parameter ReservationStatus: '{s}' is not a reservation status"
                ))
            })?),
            None => None,
        };
        let ws = self.ws();
        let engine = self.state.engine().clone();
        self.finish()?;
        let now = engine.now();
        let list = engine.handle().read(move |s| {
            let core = &s.core;
            let rs = core.worker_reservations(ws, wk, status)?;
            let rs = rs.into_iter().filter(|r| !active || r.reservation_status.is_active());
            Ok::<_, engine::Error>(
                rs.map(|r| (r.sid, format::reservation_of(core, r, now))).collect::<Vec<_>>(),
            )
        });
        let items = list.await??;
        page(&items, size, after, |(sid, _)| *sid, |(_, v)| v.clone())
    }

    async fn reservation(self, wk: &str, wr: &str) -> ApiResult<Value> {
        let wk = self.own_worker(wk)?;
        let wr = sid(wr, Prefix::Reservation, "ReservationSid")?;
        let r = self.state.engine().reservation(self.ws(), Parent::Worker(wk), wr).await?;
        with_task(self.state, &r).await
    }

    async fn update_reservation(mut self, wk: &str, wr: &str) -> ApiResult<Value> {
        let wk = self.own_worker(wk)?;
        let wr = sid(wr, Prefix::Reservation, "ReservationSid")?;
        let view = Parent::Worker(wk);
        let params = reservation_params(&mut self.p, view)?;
        self.apply_to_reservation((None, Some(wk)), wr, params).await
    }

    /// Updates reservation `wr` in the view `(task, worker)` names; answers it with its task.
    async fn apply_to_reservation(
        mut self,
        (task_sid, worker_sid): (Option<Sid>, Option<Sid>),
        wr: Sid,
        params: UpdateReservationParams,
    ) -> ApiResult<Value> {
        let command = Command::UpdateReservation {
            workspace_sid: self.ws(),
            task_sid,
            worker_sid,
            sid: wr,
            params: Box::new(params),
            if_match: self.if_match.take(),
        };
        let state = self.state;
        self.finish()?;
        let r = state.engine().apply::<Reservation>(command).await?;
        with_task(state, &r).await
    }

    async fn task(self, wt: &str) -> ApiResult<Value> {
        let wt = match self.workspace_wide() {
            true => sid(wt, Prefix::Task, "TaskSid")?,
            false => self.own_task(wt).await?,
        };
        let engine = self.state.engine();
        let t = engine.task(self.ws(), wt).await?;
        Ok(format::task(&t, engine.now()))
    }

    async fn update_task(mut self, wt: &str) -> ApiResult<Value> {
        let wt = self.own_task(wt).await?;
        let command = <Task as Editable>::update(self.ws(), wt, &mut self.p, self.if_match.take())?;
        let engine = self.state.engine().clone();
        self.finish()?;
        let t = engine.apply::<Task>(command).await?;
        Ok(format::task(&t, engine.now()))
    }

    /// `Supervisor.monitor` (eb §4.3): `POST Tasks/{WT}/Reservations/{WR}` with `Instruction=supervise`,
    /// `Supervisor` (the SDK sends its own worker) and `SupervisorMode`, for a supervisor's or a workspace
    /// token; a supervisor may name only itself. The SDK updates a reservation in no other way on this view
    /// (a worker's own reservation is at `Workers/{WK}/Reservations/{WR}`), so other updates are refused.
    async fn supervise(mut self, wt: &str, wr: &str) -> ApiResult<Value> {
        self.need_workspace_wide("Supervising a call")?;
        let wt = sid(wt, Prefix::Task, "TaskSid")?;
        let wr = sid(wr, Prefix::Reservation, "ReservationSid")?;
        let params = reservation_params(&mut self.p, Parent::Task(wt))?;
        if !params.instruction.as_deref().is_some_and(|i| i.eq_ignore_ascii_case("supervise")) {
            return Err(ApiError::invalid(
                "On a task's reservation the event bridge takes Instruction=supervise only; a worker updates its \
                 own reservation at Workspaces/{WS}/Workers/{WK}/Reservations/{WR}",
            ));
        }
        if let (Grant::Worker(b), Some(named)) = (self.grant, params.supervisor.as_deref()) {
            if named != b.worker_sid.to_string() {
                return Err(forbidden(format!(
                    "the token is for supervisor {}, which may supervise as itself only, not as {named}",
                    b.worker_sid
                )));
            }
        }
        self.apply_to_reservation((Some(wt), None), wr, params).await
    }

    /// `Reservation.updateParticipant` (eb §4.3, `WorkerParticipant`): mute the worker's leg in the
    /// conference of the reservation's task, or make it end the conference on exit. `BeepOnExit` is
    /// accepted and not acted on (the engine has no audio). Answers the reservation.
    async fn worker_participant(mut self, wk: &str) -> ApiResult<Value> {
        let wk = self.own_worker(wk)?;
        let wr = self.required_sid("ReservationSid", Prefix::Reservation)?;
        let params = UpdateParticipantParams {
            muted: self.p.bool("Mute"),
            end_conference_on_exit: self.p.bool("EndConferenceOnExit"),
            ..UpdateParticipantParams::default()
        };
        self.p.ignore(&["BeepOnExit"]);
        let state = self.state;
        let ws = self.ws();
        self.finish()?;
        let r = state.engine().reservation(ws, Parent::Worker(wk), wr).await?;
        let conference = conference_of(&state.engine().task(ws, r.task_sid).await?)?;
        update_leg(state, conference.sid, conference.worker, params).await?;
        with_task(state, &r).await
    }

    /// `Task.updateParticipant` (eb §4.3, `CustomerParticipant`): hold or resume the customer's leg of the
    /// task's conference. `HoldUrl` and `HoldMethod` are accepted and not acted on (no hold music in the
    /// engine). Answers the task.
    async fn customer_participant(mut self, wk: &str) -> ApiResult<Value> {
        self.own_worker(wk)?;
        let wt = self.p.required("TaskSid")?;
        let wt = self.own_task(&wt).await?;
        let params =
            UpdateParticipantParams { hold: self.p.bool("Hold"), ..UpdateParticipantParams::default() };
        self.p.ignore(&["HoldUrl", "HoldMethod"]);
        let state = self.state;
        let ws = self.ws();
        self.finish()?;
        let conference = conference_of(&state.engine().task(ws, wt).await?)?;
        update_leg(state, conference.sid, conference.customer, params).await?;
        let t = state.engine().task(ws, wt).await?;
        Ok(format::task(&t, state.engine().now()))
    }

    /// `Task.hold` and `Task.kick` (eb §4.3, `HoldWorkerParticipant`, `KickWorkerParticipant`): hold or
    /// remove the leg of `TargetWorkerSid` in the task's conference. The bearer must be on the task; the
    /// engine's conference has one worker leg, that of the worker whose reservation answered with the
    /// conference, so the target must be that worker. Answers the task.
    async fn target_participant(mut self, wk: &str, leg: Leg) -> ApiResult<Value> {
        self.own_worker(wk)?;
        let wt = self.p.required("TaskSid")?;
        let wt = self.own_task(&wt).await?;
        let target = self.required_sid("TargetWorkerSid", Prefix::Worker)?;
        let hold = match leg {
            Leg::Hold => Some(truthy(&self.p.required("Hold")?)),
            Leg::Kick => None,
        };
        if let Leg::Hold = leg {
            self.p.ignore(&["HoldUrl", "HoldMethod"]);
        }
        let state = self.state;
        let ws = self.ws();
        self.finish()?;
        let task = state.engine().task(ws, wt).await?;
        let conference = conference_of(&task)?;
        let holders = state.engine().reservations(ws, Parent::Task(wt), None, Some(target)).await?;
        if !holders.iter().any(|r| r.reservation_status.is_active()) {
            return Err(ApiError::invalid(format!(
                "Worker {target} has no leg in task {wt}'s conference: it holds no active reservation of the task"
            )));
        }
        match hold {
            Some(hold) => {
                let params =
                    UpdateParticipantParams { hold: Some(hold), ..UpdateParticipantParams::default() };
                update_leg(state, conference.sid, conference.worker, params).await?;
            }
            None => {
                let command = Command::DeleteParticipant {
                    conference_sid: conference.sid,
                    call_sid: conference.worker,
                };
                state.engine().apply::<()>(command).await?;
            }
        }
        let t = state.engine().task(ws, wt).await?;
        Ok(format::task(&t, state.engine().now()))
    }

    /// `Task.transfer` (eb §4.3): `ReservationSid`, `TaskSid`, `To`, and `Mode`, `Priority` and `Attributes`
    /// if given, for the bearer's own reservation; the rules are the engine's (`engine::core::transfers`).
    /// Answers the transfer.
    async fn transfer(mut self, wk: &str) -> ApiResult<Value> {
        let wk = self.own_worker(wk)?;
        let reservation_sid = self.required_sid("ReservationSid", Prefix::Reservation)?;
        let task_sid = self.required_sid("TaskSid", Prefix::Task)?;
        let params = TransferParams {
            reservation_sid,
            task_sid,
            to: self.p.required("To")?,
            mode: self.p.str("Mode"),
            priority: self.p.integer("Priority")?,
            attributes: self.p.json_object("Attributes")?,
        };
        let command =
            Command::CreateTransfer { workspace_sid: self.ws(), worker_sid: wk, params: Box::new(params) };
        self.settle_transfer(command).await
    }

    /// `OutgoingTransfer.cancel` (eb §4.3): `TaskSid` and `TransferStatus=canceled` on the bearer's own
    /// transfer. Answers the transfer.
    async fn cancel_transfer(mut self, wk: &str, tt: &str) -> ApiResult<Value> {
        let wk = self.own_worker(wk)?;
        let tt = sid(tt, Prefix::Transfer, "TransferSid")?;
        let task_sid = self.required_sid("TaskSid", Prefix::Task)?;
        // A transfer can only be canceled.
        one_of("TransferStatus", Some(self.p.required("TransferStatus")?), &["canceled"])?;
        let command = Command::CancelTransfer { workspace_sid: self.ws(), worker_sid: wk, task_sid, sid: tt };
        self.settle_transfer(command).await
    }

    /// Applies a transfer command; its reply is the initiating reservation, which holds the transfer.
    async fn settle_transfer(self, command: Command) -> ApiResult<Value> {
        let engine = self.state.engine().clone();
        self.finish()?;
        let r = engine.apply::<Reservation>(command).await?;
        let transfer = r.outgoing_transfer.as_deref().ok_or_else(|| {
            ApiError::internal(&format!("reservation {} holds no transfer after a transfer command", r.sid))
        })?;
        Ok(format::transfer(transfer))
    }

    /// A required SID parameter of the envelope.
    fn required_sid(&mut self, name: &str, prefix: Prefix) -> ApiResult<Sid> {
        sid(&self.p.required(name)?, prefix, name)
    }

    /// `Worker.createTask` (eb §4.3): the SDK names the channel `TaskChannelUniqueName` or `TaskChannelSid`
    /// where the REST API has `TaskChannel`.
    async fn create_task(mut self) -> ApiResult<Value> {
        for alias in ["TaskChannelUniqueName", "TaskChannelSid"] {
            if let Some(channel) = self.p.str(alias) {
                self.p.push("TaskChannel", channel);
            }
        }
        let command = <Task as Editable>::create(self.ws(), &mut self.p)?;
        let engine = self.state.engine().clone();
        self.finish()?;
        let t = engine.apply::<Task>(command).await?;
        Ok(format::task(&t, engine.now()))
    }
}

/// What `HoldWorkerParticipant` and `KickWorkerParticipant` do to the target worker's leg.
#[derive(Clone, Copy)]
enum Leg {
    Hold,
    Kick,
}

/// The task's conference as the engine's `conference` instruction recorded it, or a 400 saying to answer
/// with it first.
fn conference_of(task: &Task) -> ApiResult<TaskConference> {
    task.conference().ok_or_else(|| {
        ApiError::invalid(format!(
            "Task {} has no conference: its reservation must be answered with the conference instruction \
             (Reservation.conference()) first",
            task.sid
        ))
    })
}

/// Applies `params` to the leg on `call` of conference `cf`.
async fn update_leg(
    state: &ServerState,
    cf: Sid,
    call: Sid,
    params: UpdateParticipantParams,
) -> ApiResult<()> {
    let command = Command::UpdateParticipant { conference_sid: cf, call_sid: call, params };
    state.engine().apply::<Participant>(command).await.map(drop)
}

/// A reservation with its task as the engine has it now (the SDK validates the nested task too).
async fn with_task(state: &ServerState, r: &Reservation) -> ApiResult<Value> {
    let (ws, sid, now) = (r.workspace_sid, r.sid, state.engine().now());
    Ok(state.engine().handle().read(move |s| format::reservation_in(&s.core, ws, sid, now)).await??)
}

/// One page of `items` after `after` (a SID of the list), at most `size`, as the SDK pages (eb §4.2).
fn page<T>(
    items: &[T],
    size: usize,
    after: Option<String>,
    sid: impl Fn(&T) -> Sid,
    render: impl Fn(&T) -> Value,
) -> ApiResult<Value> {
    let start = match after {
        None => 0,
        Some(after) => {
            let i = items.iter().position(|t| sid(t).to_string() == after).ok_or_else(|| {
                ApiError::invalid(format!("Invalid parameter AfterSid: {after} is not an item of this list"))
            })?;
            i + 1
        }
    };
    let end = start.saturating_add(size).min(items.len());
    let slice = items.get(start..end).unwrap_or(&[]);
    let more = (end < items.len()).then(|| slice.last().map(&sid)).flatten();
    Ok(format::page(slice.iter().map(render).collect(), more))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::bridge::v1::envelope::rest_path;

    #[test]
    fn urls_are_routed_by_path() {
        for url in [
            "Workspaces/WS1/Workers/WK1",
            "/v1/Workspaces/WS1/Workers/WK1",
            "https://taskrouter.twilio.com/v1/Workspaces/WS1/Workers/WK1",
            "http://127.0.0.1:8080/v1/Workspaces/WS1/Workers/WK1?x=1#top",
        ] {
            assert_eq!(relative(url), "Workspaces/WS1/Workers/WK1", "{url}");
            // v1 addressing's form of the same path.
            assert_eq!(rest_path(url), "/v1/Workspaces/WS1/Workers/WK1", "{url}");
        }
        assert_eq!(rest_path("/v1/Workspaces/WS1/Workers/WK1/"), "/v1/Workspaces/WS1/Workers/WK1");
        assert_eq!(super::super::url_path("https://event-bridge.twilio.com"), "");
    }

    #[test]
    fn json_params_become_form_params() {
        let map = json!({"ActivitySid": "WA1", "RejectPendingReservations": true, "PageSize": 1000,
            "Attributes": {"a": 1}, "Gone": null});
        let Value::Object(map) = map else { unreachable!() };
        let mut p = params(map);
        assert_eq!(p.str("ActivitySid").as_deref(), Some("WA1"));
        assert_eq!(p.bool("RejectPendingReservations"), Some(true));
        assert_eq!(p.int("PageSize", 1, 1000).unwrap(), Some(1000));
        assert_eq!(p.str("Attributes").as_deref(), Some(r#"{"a":1}"#));
        p.finish().unwrap();
    }
}
