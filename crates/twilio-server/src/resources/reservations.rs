//! Reservations, in both views: `/Tasks/{WT}/Reservations[/{Sid}]` and `/Workers/{WK}/Reservations[/{Sid}]`.
//! Update carries the accept/reject/instruction parameters of reference §7, with `If-Match`.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use engine::{Prefix, Sid};
use serde_json::{json, Value};

use super::base;
use crate::extract::{if_match, json_etag, opt_sid, sid, Segments};
use crate::handle::Parent as View;
use crate::page::{Envelope, List};
use crate::params::{Form, Params, Query};
use crate::{ApiResult, ServerState};
use engine::command::{Command, UpdateReservationParams};
use engine::model::{Reservation, ReservationStatus};

pub fn router() -> Router<ServerState> {
    Router::new()
        .route("/v1/Workspaces/{ws}/Tasks/{task}/Reservations", get(list_task_reservations))
        .route(
            "/v1/Workspaces/{ws}/Tasks/{task}/Reservations/{sid}",
            get(fetch_task_reservation).post(update_task_reservation),
        )
        .route("/v1/Workspaces/{ws}/Workers/{worker}/Reservations", get(list_worker_reservations))
        .route(
            "/v1/Workspaces/{ws}/Workers/{worker}/Reservations/{sid}",
            get(fetch_worker_reservation).post(update_worker_reservation),
        )
}

const STATUSES: [&str; 8] =
    ["pending", "accepted", "rejected", "timeout", "canceled", "rescinded", "wrapping", "completed"];

/// The spec's reservation update parameters the simulated telephony accepts without acting on them
/// (recording, status callbacks, SIP, media options).
const IGNORED: [&str; 31] = [
    "DequeueRecord",
    "DequeueTimeout",
    "DequeueStatusCallbackUrl",
    "DequeueStatusCallbackEvent",
    "CallRecord",
    "CallTimeout",
    "CallStatusCallbackUrl",
    "StatusCallback",
    "StatusCallbackMethod",
    "StatusCallbackEvent",
    "Record",
    "Beep",
    "WaitUrl",
    "WaitMethod",
    "EarlyMedia",
    "MaxParticipants",
    "ConferenceStatusCallback",
    "ConferenceStatusCallbackMethod",
    "ConferenceStatusCallbackEvent",
    "ConferenceRecord",
    "ConferenceTrim",
    "RecordingChannels",
    "RecordingStatusCallback",
    "RecordingStatusCallbackMethod",
    "ConferenceRecordingStatusCallback",
    "ConferenceRecordingStatusCallbackMethod",
    "Region",
    "SipAuthUsername",
    "SipAuthPassword",
    "BeepOnCustomerEntrance",
    "JitterBufferSize",
];

impl View {
    fn task(self) -> Option<Sid> {
        match self {
            View::Task(t) => Some(t),
            View::Worker(_) => None,
        }
    }

    fn worker(self) -> Option<Sid> {
        match self {
            View::Worker(w) => Some(w),
            View::Task(_) => None,
        }
    }
}

pub(crate) fn render(state: &ServerState, view: View, r: &Reservation) -> Value {
    let urls = state.urls();
    let ws = r.workspace_sid;
    let url = match view {
        View::Task(_) => urls.workspace(ws, &format!("/Tasks/{}/Reservations/{}", r.task_sid, r.sid)),
        View::Worker(_) => urls.workspace(ws, &format!("/Workers/{}/Reservations/{}", r.worker_sid, r.sid)),
    };
    let own = json!({
        "task_sid": r.task_sid.to_string(),
        "worker_sid": r.worker_sid.to_string(),
        "worker_name": r.worker_name,
        "reservation_status": r.reservation_status.as_str(),
        "links": {
            "task": urls.workspace(ws, &format!("/Tasks/{}", r.task_sid)),
            "worker": urls.workspace(ws, &format!("/Workers/{}", r.worker_sid)),
            "workspace": urls.workspace(ws, ""),
        },
    });
    base(state, Some(ws), r.sid, (r.date_created, r.date_updated), url, own)
}

/// The update parameters of a reservation (also the event bridge's envelope).
pub(crate) fn params(p: &mut Params, view: View) -> ApiResult<UpdateReservationParams> {
    let activity = |p: &mut Params, name: &str| opt_sid(p.str(name), Prefix::Activity, name);
    let params = UpdateReservationParams {
        reservation_status: p.choice("ReservationStatus", &STATUSES)?,
        worker_activity_sid: activity(p, "WorkerActivitySid")?,
        instruction: p.str("Instruction"),
        to: p.str("To"),
        from: p.str("From"),
        post_work_activity_sid: activity(p, "PostWorkActivitySid")?,
        timeout: p.int("Timeout", 1, 600)?,
        end_conference_on_exit: p.bool("EndConferenceOnExit"),
        end_conference_on_customer_exit: p.bool("EndConferenceOnCustomerExit"),
        start_conference_on_enter: p.bool("StartConferenceOnEnter"),
        muted: p.bool("Muted"),
        dequeue_from: p.str("DequeueFrom"),
        dequeue_to: p.str("DequeueTo"),
        dequeue_post_work_activity_sid: activity(p, "DequeuePostWorkActivitySid")?,
        call_from: p.str("CallFrom"),
        call_to: p.str("CallTo"),
        call_url: p.str("CallUrl"),
        call_accept: p.bool("CallAccept"),
        redirect_call_sid: opt_sid(p.str("RedirectCallSid"), Prefix::Call, "RedirectCallSid")?,
        redirect_url: p.str("RedirectUrl"),
        redirect_accept: p.bool("RedirectAccept"),
    };
    p.ignore(&IGNORED);
    if matches!(view, View::Task(_)) {
        // Supervising (SupervisorMode/Supervisor) needs real media; accepted on the task view, not acted on.
        p.ignore(&["SupervisorMode", "Supervisor"]);
    }
    Ok(params)
}

async fn fetch(state: ServerState, ws: String, view: View, s: String) -> ApiResult<Response> {
    let ws = sid(&ws, Prefix::Workspace, "WorkspaceSid")?;
    let sid = sid(&s, Prefix::Reservation, "Sid")?;
    let r = state.engine().reservation(ws, view, sid).await?;
    Ok(json_etag(StatusCode::OK, render(&state, view, &r), r.version))
}

async fn update(
    state: ServerState,
    ws: String,
    view: View,
    s: String,
    headers: HeaderMap,
    mut p: Params,
) -> ApiResult<Response> {
    let ws = sid(&ws, Prefix::Workspace, "WorkspaceSid")?;
    let sid = sid(&s, Prefix::Reservation, "Sid")?;
    let params = params(&mut p, view)?;
    p.finish()?;
    let op = Command::UpdateReservation {
        workspace_sid: ws,
        task_sid: view.task(),
        worker_sid: view.worker(),
        sid,
        params: Box::new(params),
        if_match: if_match(&headers),
    };
    let r = state.engine().apply::<Reservation>(op).await?;
    Ok(json_etag(StatusCode::OK, render(&state, view, &r), r.version))
}

async fn list(state: ServerState, ws: String, view: View, mut p: Params) -> ApiResult<Response> {
    let ws = sid(&ws, Prefix::Workspace, "WorkspaceSid")?;
    let list = List::from_params(&mut p)?;
    let reservation_status = p.choice("ReservationStatus", &STATUSES)?;
    let worker_sid = match view {
        View::Task(_) => opt_sid(p.str("WorkerSid"), Prefix::Worker, "WorkerSid")?,
        View::Worker(_) => None,
    };
    p.finish()?;
    let status = reservation_status.as_deref().and_then(ReservationStatus::parse);
    let items = state.engine().reservations(ws, view, status, worker_sid).await?;
    let list_url = match view {
        View::Task(t) => state.urls().workspace(ws, &format!("/Tasks/{t}/Reservations")),
        View::Worker(w) => state.urls().workspace(ws, &format!("/Workers/{w}/Reservations")),
    };
    Ok(list.respond(
        Envelope::V1,
        &list_url,
        "reservations",
        &items,
        |r| r.sid.to_string(),
        |r| render(&state, view, r),
    ))
}

fn task_view(task: &str) -> ApiResult<View> {
    Ok(View::Task(sid(task, Prefix::Task, "TaskSid")?))
}

fn worker_view(worker: &str) -> ApiResult<View> {
    Ok(View::Worker(sid(worker, Prefix::Worker, "WorkerSid")?))
}

async fn list_task_reservations(
    State(state): State<ServerState>,
    Segments((ws, task)): Segments<(String, String)>,
    Query(p): Query,
) -> ApiResult<Response> {
    list(state, ws, task_view(&task)?, p).await
}

async fn fetch_task_reservation(
    State(state): State<ServerState>,
    Segments((ws, task, s)): Segments<(String, String, String)>,
) -> ApiResult<Response> {
    fetch(state, ws, task_view(&task)?, s).await
}

async fn update_task_reservation(
    State(state): State<ServerState>,
    Segments((ws, task, s)): Segments<(String, String, String)>,
    headers: HeaderMap,
    Form(p): Form,
) -> ApiResult<Response> {
    update(state, ws, task_view(&task)?, s, headers, p).await
}

async fn list_worker_reservations(
    State(state): State<ServerState>,
    Segments((ws, worker)): Segments<(String, String)>,
    Query(p): Query,
) -> ApiResult<Response> {
    list(state, ws, worker_view(&worker)?, p).await
}

async fn fetch_worker_reservation(
    State(state): State<ServerState>,
    Segments((ws, worker, s)): Segments<(String, String, String)>,
) -> ApiResult<Response> {
    fetch(state, ws, worker_view(&worker)?, s).await
}

async fn update_worker_reservation(
    State(state): State<ServerState>,
    Segments((ws, worker, s)): Segments<(String, String, String)>,
    headers: HeaderMap,
    Form(p): Form,
) -> ApiResult<Response> {
    update(state, ws, worker_view(&worker)?, s, headers, p).await
}
