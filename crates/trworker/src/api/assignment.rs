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
use super::port::{CallbackEvent, Engine, Op, Out, ReservationChange};

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

/// Starts assignment callbacks for every reservation created from now on.
pub fn spawn(engine: Arc<dyn Engine>, auth_token: String, timeout: Duration) -> JoinHandle<()> {
    let events = engine.subscribe();
    tokio::spawn(run(engine, events, Arc::new(auth_token), timeout))
}

async fn run(
    engine: Arc<dyn Engine>,
    mut events: broadcast::Receiver<Arc<CallbackEvent>>,
    auth_token: Arc<String>,
    timeout: Duration,
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
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if event.event_type != "reservation.created" {
            continue;
        }
        tokio::spawn(assign(engine.clone(), client.clone(), auth_token.clone(), event));
    }
}

fn field<'a>(event: &'a CallbackEvent, name: &str) -> Option<&'a str> {
    event.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

async fn assign(
    engine: Arc<dyn Engine>,
    client: reqwest::Client,
    auth_token: Arc<String>,
    event: Arc<CallbackEvent>,
) {
    let ws = event.workspace_sid;
    let sid = |name: &str, prefix: Prefix| field(&event, name).and_then(|v| Sid::parse_as(v, prefix).ok());
    let (Some(workflow), Some(task), Some(reservation)) = (
        sid("WorkflowSid", Prefix::Workflow),
        sid("TaskSid", Prefix::Task),
        sid("ReservationSid", Prefix::Reservation),
    ) else {
        return;
    };
    let Ok(Out::Workflow(wf)) = engine.call(Op::FetchWorkflow { ws, sid: workflow }).await else { return };
    let params: Vec<(String, String)> = FIELDS
        .iter()
        .filter_map(|name| field(&event, name).map(|v| ((*name).to_owned(), v.to_owned())))
        .collect();
    let urls = [wf.assignment_callback_url, wf.fallback_assignment_callback_url];
    for url in urls.into_iter().flatten().filter(|u| !u.is_empty()) {
        match post(&client, &auth_token, &url, &params).await {
            Ok(Some(change)) => {
                let op = Op::UpdateReservation {
                    ws,
                    task: Some(task),
                    worker: None,
                    sid: reservation,
                    change,
                    if_match: None,
                };
                if let Err(e) = engine.call(op).await {
                    tracing::warn!(%url, %reservation, error = %e, "the assignment instruction could not be carried out");
                }
                return;
            }
            Ok(None) => return,
            Err(e) => tracing::warn!(%url, %reservation, error = %e, "assignment callback failed"),
        }
    }
}

/// Posts the assignment and reads the instruction: `Ok(None)` is a 2xx without an instruction.
async fn post(
    client: &reqwest::Client,
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
) -> Result<Option<ReservationChange>, String> {
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
pub fn instruction(body: &Value) -> Result<Option<ReservationChange>, String> {
    let Some(kind) = body.get("instruction").and_then(Value::as_str) else { return Ok(None) };
    let text = |k: &str| {
        body.get(k).and_then(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        })
    };
    let activity = |k: &str| text(k).and_then(|v| Sid::parse_as(&v, Prefix::Activity).ok());
    let mut change = ReservationChange::default();
    match kind {
        "accept" => change.reservation_status = Some("accepted".into()),
        "reject" => {
            change.reservation_status = Some("rejected".into());
            change.worker_activity_sid = activity("activity_sid");
        }
        "conference" | "dequeue" | "call" | "redirect" => {
            change.instruction = Some(kind.to_owned());
            change.to = text("to");
            change.from = text("from");
            change.post_work_activity_sid = activity("post_work_activity_sid");
            let names: &[(&str, &str)] = match kind {
                "dequeue" => &[
                    ("record", "DequeueRecord"),
                    ("timeout", "DequeueTimeout"),
                    ("status_callback_url", "DequeueStatusCallbackUrl"),
                    ("status_callback_events", "DequeueStatusCallbackEvent"),
                ],
                "call" => &[
                    ("url", "CallUrl"),
                    ("accept", "CallAccept"),
                    ("record", "CallRecord"),
                    ("timeout", "CallTimeout"),
                    ("status_callback_url", "CallStatusCallbackUrl"),
                ],
                "redirect" => {
                    &[("call_sid", "RedirectCallSid"), ("url", "RedirectUrl"), ("accept", "RedirectAccept")]
                }
                _ => &[("timeout", "Timeout"), ("record", "Record")],
            };
            for (json_name, param) in names {
                if let Some(v) = text(json_name) {
                    change.options.push(((*param).to_owned(), v));
                }
            }
        }
        other => return Err(format!("unknown instruction '{other}'")),
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
        assert_eq!(conf.options, vec![("Timeout".to_owned(), "30".to_owned())]);
        assert!(instruction(&json!({})).unwrap().is_none());
        assert!(instruction(&json!({"instruction": "dance"})).is_err());
    }
}
