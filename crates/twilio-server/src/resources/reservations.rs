//! Reservations, in both views: `/Tasks/{WT}/Reservations[/{Sid}]` and `/Workers/{WK}/Reservations[/{Sid}]`.
//! Update carries the accept/reject/instruction parameters of reference §7, with `If-Match`.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use engine::{Prefix, Sid};
use serde::Deserialize;
use serde_json::{json, Value};

use super::base;
use crate::conferences::MEDIA_OPTIONS;
use crate::extract::{if_match, json_etag, opt_sid, sid, Segments};
use crate::handle::Parent as View;
use crate::page::{Envelope, List};
use crate::params::{Form, Params, Query};
use crate::{ApiResult, ServerState};
use engine::command::{Command, UpdateReservationParams};
use engine::model::{Reservation, ReservationStatus};

pub fn router() -> Router<ServerState> {
    Router::new()
        .route("/v1/Workspaces/{ws}/Tasks/{task}/Reservations", get(list))
        .route("/v1/Workspaces/{ws}/Tasks/{task}/Reservations/{sid}", get(fetch).post(update))
        .route("/v1/Workspaces/{ws}/Workers/{worker}/Reservations", get(list))
        .route("/v1/Workspaces/{ws}/Workers/{worker}/Reservations/{sid}", get(fetch).post(update))
}

const STATUSES: [&str; 8] =
    ["pending", "accepted", "rejected", "timeout", "canceled", "rescinded", "wrapping", "completed"];

/// The spec's reservation update parameters of the dequeue and call instructions that the simulated
/// telephony accepts without acting on them; the conference instruction's are [`MEDIA_OPTIONS`].
const IGNORED: &[&str] = &[
    "DequeueRecord",
    "DequeueTimeout",
    "DequeueStatusCallbackUrl",
    "DequeueStatusCallbackEvent",
    "CallRecord",
    "CallTimeout",
    "CallStatusCallbackUrl",
    "BeepOnCustomerEntrance",
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
        // The spec has the supervise instruction's parameters on the task's view only; on the worker's they
        // are unknown parameters. Their values are the engine's to check.
        supervisor: if matches!(view, View::Task(_)) { p.str("Supervisor") } else { None },
        supervisor_mode: if matches!(view, View::Task(_)) { p.str("SupervisorMode") } else { None },
    };
    p.ignore(MEDIA_OPTIONS);
    p.ignore(IGNORED);
    Ok(params)
}

/// Where a reservation route points: the workspace, the view (`{task}` or `{worker}`), and `{sid}` when it
/// names one reservation. Both views' routes share the handlers.
#[derive(Deserialize)]
struct ReservationPath {
    ws: String,
    task: Option<String>,
    worker: Option<String>,
    sid: Option<String>,
}

impl ReservationPath {
    /// The workspace and the view.
    fn view(&self) -> ApiResult<(Sid, View)> {
        let view = match (&self.task, &self.worker) {
            (Some(task), _) => View::Task(sid(task, Prefix::Task, "TaskSid")?),
            (None, worker) => {
                View::Worker(sid(worker.as_deref().unwrap_or_default(), Prefix::Worker, "WorkerSid")?)
            }
        };
        Ok((sid(&self.ws, Prefix::Workspace, "WorkspaceSid")?, view))
    }

    /// The workspace, the view and the reservation.
    fn reservation(&self) -> ApiResult<(Sid, View, Sid)> {
        let (ws, view) = self.view()?;
        Ok((ws, view, sid(self.sid.as_deref().unwrap_or_default(), Prefix::Reservation, "Sid")?))
    }
}

async fn fetch(
    State(state): State<ServerState>,
    Segments(path): Segments<ReservationPath>,
) -> ApiResult<Response> {
    let (ws, view, sid) = path.reservation()?;
    let r = state.engine().reservation(ws, view, sid).await?;
    Ok(json_etag(StatusCode::OK, render(&state, view, &r), r.version))
}

async fn update(
    State(state): State<ServerState>,
    Segments(path): Segments<ReservationPath>,
    headers: HeaderMap,
    Form(mut p): Form,
) -> ApiResult<Response> {
    let (ws, view, sid) = path.reservation()?;
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

async fn list(
    State(state): State<ServerState>,
    Segments(path): Segments<ReservationPath>,
    Query(mut p): Query,
) -> ApiResult<Response> {
    let (ws, view) = path.view()?;
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
