//! Workflow `AssignmentCallbackUrl` (reference §6): when a reservation is created, POST the reservation's
//! parameters to the workflow's assignment callback, signed like every Twilio webhook, and carry out the
//! instruction the answer holds by updating the reservation through the engine.
//!
//! The answer must come within 5 s as a 2xx; otherwise the `FallbackAssignmentCallbackUrl` is tried the
//! same way. A 2xx with an empty body (or without `instruction`) leaves the reservation pending for a REST
//! accept or reject ("manual" mode). Each callback runs in its own task, so a slow receiver delays only its
//! own reservation; the reservation timeout in the engine still applies.

use std::sync::Arc;
use std::time::Duration;

use engine::{Prefix, Sid};
use serde_json::Value;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use super::callbacks::form_body;
use engine::command::{Command, UpdateReservationParams};
use engine::event::{Event, EventType};
use engine::model::Reservation;

use super::auth::Credentials;
use super::callbacks::{event_fields, DeliveryStats};
use super::handle::Engine;

/// The parameters of the assignment POST, taken from the `reservation.created` event's fields.
const FIELDS: [&str; 12] = [
    "Timestamp",
    "AccountSid",
    "WorkspaceSid",
    "WorkflowSid",
    "TaskQueueSid",
    "WorkerSid",
    "WorkerAttributes",
    "TaskSid",
    "TaskAttributes",
    "TaskAge",
    "TaskPriority",
    "ReservationSid",
];

/// How long the receiver has to answer, as Twilio documents.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// Starts assignment callbacks for every reservation created from now on, counting them in `stats`
/// (delivered: a 2xx; failed attempts: each URL that failed; given up: both URLs failed; dropped: skipped
/// because the deliverer fell behind the engine).
pub fn spawn(
    engine: Engine,
    credentials: Credentials,
    timeout: Duration,
    stats: Arc<DeliveryStats>,
) -> JoinHandle<()> {
    let events = engine.subscribe();
    tokio::spawn(run(engine, events, Arc::new(credentials), timeout, stats))
}

async fn run(
    engine: Engine,
    mut events: broadcast::Receiver<Arc<Event>>,
    credentials: Arc<Credentials>,
    timeout: Duration,
    stats: Arc<DeliveryStats>,
) {
    let client = match reqwest::Client::builder().timeout(timeout).build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "assignment callbacks are disabled: cannot build the HTTP client");
            return;
        }
    };
    loop {
        let event = match events.recv().await {
            Ok(e) => e,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(skipped = n, "assignment callbacks fell behind; {n} events were skipped");
                stats.count_dropped(n);
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if event.event_type != EventType::ReservationCreated {
            continue;
        }
        tokio::spawn(assign(engine.clone(), client.clone(), credentials.clone(), event, stats.clone()));
    }
}

async fn assign(
    engine: Engine,
    client: reqwest::Client,
    credentials: Arc<Credentials>,
    event: Arc<Event>,
    stats: Arc<DeliveryStats>,
) {
    let ws = event.workspace_sid;
    let reservation = event.resource_sid;
    let all = event_fields(&credentials.account_sid, &event);
    let field = |name: &str| all.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let sid = |name: &str, prefix: Prefix| field(name).and_then(|v| Sid::parse_as(v, prefix).ok());
    let (Some(workflow), Some(task)) = (sid("WorkflowSid", Prefix::Workflow), sid("TaskSid", Prefix::Task))
    else {
        return;
    };
    let Ok(wf) = engine.workflow(ws, workflow).await else { return };
    let mut params: Vec<(String, String)> =
        FIELDS.iter().filter_map(|name| field(name).map(|v| ((*name).to_owned(), v.to_owned()))).collect();
    if field("ReservationSid").is_none() {
        params.push(("ReservationSid".into(), reservation.to_string()));
    }
    let urls = [wf.assignment_callback_url, wf.fallback_assignment_callback_url];
    let mut tried = false;
    for url in urls.into_iter().flatten().filter(|u| !u.is_empty()) {
        tried = true;
        let answer = post(&client, &credentials.auth_token, &url, &params).await;
        match &answer {
            Ok(_) => stats.count_delivered(),
            Err(_) => stats.count_failed_attempt(),
        }
        match answer {
            Ok(Some(change)) => {
                let instruction = Command::UpdateReservation {
                    workspace_sid: ws,
                    task_sid: Some(task),
                    worker_sid: None,
                    sid: reservation,
                    params: Box::new(change),
                    if_match: None,
                };
                if let Err(e) = engine.apply::<Reservation>(instruction).await {
                    tracing::warn!(%url, %reservation, error = %e, "the assignment instruction could not be carried out");
                }
                return;
            }
            Ok(None) => return,
            Err(e) => tracing::warn!(%url, %reservation, error = %e, "assignment callback failed"),
        }
    }
    if tried {
        stats.count_given_up();
    }
}

/// Posts the assignment and reads the instruction: `Ok(None)` is a 2xx without an instruction.
async fn post(
    client: &reqwest::Client,
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
) -> Result<Option<UpdateReservationParams>, String> {
    let response = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(twilio::signature::HEADER, twilio::signature::sign(auth_token, url, params))
        .body(form_body(params))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("the receiver answered {}", response.status()));
    }
    let text = response.text().await.map_err(|e| e.to_string())?;
    if text.trim().is_empty() {
        return Ok(None);
    }
    let body: Value = serde_json::from_str(&text).map_err(|e| format!("the answer is not JSON: {e}"))?;
    instruction(&body)
}

/// Turns an instruction body (`{"instruction":"accept"}`, `reject`, `conference`, `dequeue`, `call`,
/// `redirect`) into a reservation update.
pub fn instruction(body: &Value) -> Result<Option<UpdateReservationParams>, String> {
    let Some(kind) = body.get("instruction").and_then(Value::as_str) else { return Ok(None) };
    let text = |k: &str| {
        body.get(k).and_then(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        })
    };
    let flag = |k: &str| {
        body.get(k).map(|v| v.as_bool().unwrap_or_else(|| text(k).is_some_and(|t| super::params::truthy(&t))))
    };
    let activity = |k: &str| text(k).and_then(|v| Sid::parse_as(&v, Prefix::Activity).ok());
    let mut change = UpdateReservationParams::default();
    match kind {
        "accept" => change.reservation_status = Some("accepted".into()),
        "reject" => {
            change.reservation_status = Some("rejected".into());
            change.worker_activity_sid = activity("activity_sid");
        }
        "conference" => {
            change.to = text("to");
            change.from = text("from");
            change.post_work_activity_sid = activity("post_work_activity_sid");
            change.timeout = text("timeout").and_then(|t| t.parse().ok());
            change.end_conference_on_exit = flag("end_conference_on_exit");
            change.start_conference_on_enter = flag("start_conference_on_enter");
        }
        "dequeue" => {
            change.dequeue_to = text("to");
            change.dequeue_from = text("from");
            change.dequeue_post_work_activity_sid = activity("post_work_activity_sid");
        }
        "call" => {
            change.call_to = text("to");
            change.call_from = text("from");
            change.call_url = text("url");
            change.call_accept = flag("accept");
        }
        "redirect" => {
            change.redirect_call_sid = text("call_sid").and_then(|v| Sid::parse_as(&v, Prefix::Call).ok());
            change.redirect_url = text("url");
            change.redirect_accept = flag("accept");
        }
        other => return Err(format!("unknown instruction '{other}'")),
    }
    // Accept and reject are status changes; every other kind is sent as the reservation's instruction.
    if !matches!(kind, "accept" | "reject") {
        change.instruction = Some(kind.to_owned());
    }
    Ok(Some(change))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn instructions_map_to_reservation_updates() {
        let accept = instruction(&json!({"instruction": "accept"})).unwrap().unwrap();
        assert_eq!(accept.reservation_status.as_deref(), Some("accepted"));
        let wa = "WA00000000000000000000000000000001";
        let reject = instruction(&json!({"instruction": "reject", "activity_sid": wa})).unwrap().unwrap();
        assert_eq!(reject.worker_activity_sid.map(|s| s.to_string()).as_deref(), Some(wa));
        let conf = instruction(&json!({"instruction": "conference", "from": "+1555", "timeout": 30}))
            .unwrap()
            .unwrap();
        assert_eq!(conf.instruction.as_deref(), Some("conference"));
        assert_eq!(conf.from.as_deref(), Some("+1555"));
        assert_eq!(conf.timeout, Some(30));
        let call =
            instruction(&json!({"instruction": "call", "to": "+1", "accept": "true"})).unwrap().unwrap();
        assert_eq!((call.call_to.as_deref(), call.call_accept), (Some("+1"), Some(true)));
        assert!(instruction(&json!({})).unwrap().is_none());
        assert!(instruction(&json!({"instruction": "dance"})).is_err());
    }
}
