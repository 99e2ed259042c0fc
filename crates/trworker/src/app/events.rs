//! Event intake: how the app learns that something changed.
//!
//! - [`EventIntake`] is the one door. [`AppState`] implements it: an event is numbered and pushed at once to
//!   the sockets of the worker it concerns (found by `WorkerSid`, or by the task's last known worker) as an
//!   `event` frame built from the event's own fields ([`frame`]: a new reservation with its task, a new
//!   activity), then that worker's state is rebuilt over REST unless the frame said it all (a new
//!   reservation: the hot path of an incoming call costs no REST call), and a `*.wrapup` event starts the
//!   task's wrap-up countdown.
//! - `POST /twilio/events` is TaskRouter's `EventCallbackUrl`: form-encoded, signed with `X-Twilio-Signature`
//!   over the configured public URL (403 on a bad signature), answered 204 at once.
//! - Workers' event channels ([`super::channels`]) bring the events of signed-in workers without a webhook,
//!   in both modes, through the same [`EventIntake::ingest`]. A webhook event for a worker whose channel is
//!   connected is not ingested again.
//! - [`reconcile`] is the safety net for lost events: connected workers' states are rebuilt and pushed
//!   where they changed, and wrapping tasks are checked against the wrap-up policy. It also reloads the
//!   workflows' reservation timeouts (as do `workflow.*` events), which new reservations' frames need.

use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};

use super::{channels, leave, live, snapshot, wrapup, AppError, AppState};
use crate::metrics::EventSource;

/// One TaskRouter event, as the `EventCallbackUrl` form carries it (reference §9.2): the fields the app
/// routes by, and those the page needs to show a reservation without asking the REST API.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskRouterEvent {
    /// `reservation.created`, `worker.activity.update`, ...
    pub event_type: String,
    /// TaskRouter's human description (`EventDescription`).
    pub description: String,
    /// When it happened, ms since the epoch (`TimestampMs`, else `Timestamp` in seconds).
    pub at_ms: Option<i64>,
    /// `WorkerSid`, when the event names a worker.
    pub worker_sid: Option<String>,
    /// `TaskSid`, when it names a task.
    pub task_sid: Option<String>,
    /// `ReservationSid`, when it names a reservation.
    pub reservation_sid: Option<String>,
    /// `WorkerActivityName`, on worker and reservation events.
    pub worker_activity_name: Option<String>,
    /// `WorkerActivitySid`, on worker and reservation events.
    pub worker_activity_sid: Option<String>,
    /// `TaskAttributes` (JSON text), on task and reservation events.
    pub task_attributes: Option<String>,
    /// `TaskAssignmentStatus`, on task and reservation events.
    pub task_assignment_status: Option<String>,
    /// `TaskPriority`.
    pub task_priority: Option<i64>,
    /// `TaskAge`, in seconds.
    pub task_age: Option<u64>,
    /// `WorkflowSid`, on task and reservation events.
    pub workflow_sid: Option<String>,
}

impl TaskRouterEvent {
    /// Reads the form fields of an event callback (PascalCase names, any order; the first of a repeated
    /// name counts, empty values count as absent). `None` without an `EventType`.
    pub fn from_fields(fields: &[(String, String)]) -> Option<TaskRouterEvent> {
        let mut event = TaskRouterEvent::default();
        let (mut description, mut timestamp_ms, mut timestamp) = (None, None, None);
        for (name, value) in fields {
            if value.is_empty() {
                continue;
            }
            let slot = match name.as_str() {
                "EventType" if event.event_type.is_empty() => {
                    event.event_type = value.clone();
                    continue;
                }
                "EventDescription" => &mut description,
                "TimestampMs" => &mut timestamp_ms,
                "Timestamp" => &mut timestamp,
                "WorkerSid" => &mut event.worker_sid,
                "TaskSid" => &mut event.task_sid,
                "ReservationSid" => &mut event.reservation_sid,
                "WorkerActivityName" => &mut event.worker_activity_name,
                "WorkerActivitySid" => &mut event.worker_activity_sid,
                "TaskAttributes" => &mut event.task_attributes,
                "TaskAssignmentStatus" => &mut event.task_assignment_status,
                "WorkflowSid" => &mut event.workflow_sid,
                "TaskPriority" => {
                    event.task_priority = event.task_priority.or_else(|| value.parse().ok());
                    continue;
                }
                "TaskAge" => {
                    event.task_age = event.task_age.or_else(|| value.parse().ok());
                    continue;
                }
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(value.clone());
            }
        }
        if event.event_type.is_empty() {
            return None;
        }
        event.at_ms = timestamp_ms
            .and_then(|v| v.parse::<i64>().ok())
            .or_else(|| timestamp.and_then(|v| v.parse::<i64>().ok()).map(|s| s.saturating_mul(1000)));
        event.description = description.unwrap_or_else(|| event.event_type.clone());
        Some(event)
    }

    /// The reservation status this event leaves its reservation in (`reservation.*` events only).
    pub fn reservation_status(&self) -> Option<&'static str> {
        let status = match self.event_type.strip_prefix("reservation.")? {
            "created" => "pending",
            "accepted" => "accepted",
            "rejected" => "rejected",
            "timeout" => "timeout",
            "canceled" => "canceled",
            "rescinded" => "rescinded",
            "completed" => "completed",
            "wrapup" => "wrapping",
            _ => return None,
        };
        Some(status)
    }
}

/// What an `event` frame carries beyond `type`, `seq`, `at`, `event_type` and `description`, built from
/// the event alone (plus the caches of rarely changing resources), so that the page can show the change at
/// once, before (or without) a state rebuilt over REST.
pub(crate) struct Frame {
    /// The extra members of the frame.
    pub(crate) extra: serde_json::Map<String, Value>,
    /// Whether the frame says all a worker's state gains from the event, so that no rebuild over REST is
    /// needed (a `reservation.created` whose task and reservation timeout are known).
    pub(crate) complete: bool,
}

/// The frame members of `event`, which happened at `at_ms`:
/// - `worker_sid`, `task_sid`, `reservation_sid` when the event names them;
/// - `reservation` on `reservation.*` events: `sid`, `status` (the status the event leaves it in), and the
///   `task` (`sid`, `assignment_status`, `priority`, `age`, `attributes`) when the event carries its
///   attributes; on `reservation.created` also `created_at` and `timeout_at` (the latter when the workflow's
///   reservation timeout is cached), the shape of a `state` message's `reservations[]` item;
/// - `worker` on `worker.activity.update`: `activity_sid`, `activity_name`, `activity_changed_at` and
///   `available` (when the activity is known).
pub(crate) fn frame(state: &AppState, event: &TaskRouterEvent, at_ms: i64) -> Frame {
    let mut extra = serde_json::Map::new();
    let mut complete = false;
    for (name, value) in [
        ("worker_sid", &event.worker_sid),
        ("task_sid", &event.task_sid),
        ("reservation_sid", &event.reservation_sid),
    ] {
        if let Some(value) = value {
            extra.insert(name.to_owned(), Value::String(value.clone()));
        }
    }
    if let (Some(status), Some(sid)) = (event.reservation_status(), &event.reservation_sid) {
        let mut reservation = serde_json::Map::new();
        reservation.insert("sid".into(), Value::String(sid.clone()));
        reservation.insert("status".into(), Value::String(status.to_owned()));
        let attributes =
            event.task_attributes.as_deref().and_then(|text| serde_json::from_str::<Value>(text).ok());
        if let (Some(task_sid), Some(attributes)) = (&event.task_sid, attributes) {
            reservation.insert(
                "task".into(),
                json!({
                    "sid": task_sid,
                    "assignment_status": event.task_assignment_status,
                    "priority": event.task_priority,
                    "age": event.task_age,
                    "attributes": attributes,
                }),
            );
            if status == "pending" {
                let timeout = event
                    .workflow_sid
                    .as_deref()
                    .and_then(|workflow| snapshot::cached_reservation_timeout(state, workflow));
                let timeout_at = timeout.map(|secs| at_ms.saturating_add(i64::from(secs) * 1000));
                reservation.insert("created_at".into(), json!(at_ms));
                reservation.insert("timeout_at".into(), json!(timeout_at));
                complete = timeout_at.is_some();
            }
        }
        extra.insert("reservation".into(), Value::Object(reservation));
    }
    if event.event_type == "worker.activity.update" {
        if let (Some(sid), Some(name)) = (&event.worker_activity_sid, &event.worker_activity_name) {
            let mut worker = serde_json::Map::new();
            worker.insert("activity_sid".into(), Value::String(sid.clone()));
            worker.insert("activity_name".into(), Value::String(name.clone()));
            worker.insert("activity_changed_at".into(), json!(at_ms));
            if let Some(available) = snapshot::cached_activity_available(state, sid) {
                worker.insert("available".into(), Value::Bool(available));
            }
            extra.insert("worker".into(), Value::Object(worker));
        }
    }
    Frame { extra, complete }
}

/// Where TaskRouter events enter the app. Implemented by [`AppState`]; must be called within a Tokio
/// runtime (the state rebuild it triggers runs as a task). Never blocks on I/O.
pub trait EventIntake: Send + Sync + 'static {
    /// Takes one event.
    fn ingest(&self, event: TaskRouterEvent);
}

impl EventIntake for AppState {
    fn ingest(&self, event: TaskRouterEvent) {
        self.inner.metrics.count_event(&event.event_type);
        let hub = &self.inner.hub;
        let worker_sid =
            event.worker_sid.clone().or_else(|| event.task_sid.as_deref().and_then(|t| hub.task_owner(t)));
        if let (Some(worker), Some(task)) = (&worker_sid, &event.task_sid) {
            hub.learn_tasks(worker, std::slice::from_ref(task));
        }
        if let Some(task) = &event.task_sid {
            if event.event_type.ends_with(".wrapup") {
                // Starts the countdown, whose timer completes the task when it runs out.
                wrapup::started(self, task);
            }
        }
        if matches!(event.event_type.as_str(), "workflow.created" | "workflow.updated" | "workflow.deleted") {
            // Keeps the reservation timeouts that complete a new reservation's frame up to date.
            snapshot::reload_workflows(self);
        }
        if let Some(worker) = &worker_sid {
            let at = event.at_ms.unwrap_or_else(|| self.now().millis());
            let frame = frame(self, &event, at);
            hub.push_event(worker, at, &event.event_type, &event.description, frame.extra);
            if frame.complete {
                // The frame says it all: no rebuild over REST on the hot path. The next state pushed is
                // sent even if it equals the last one, and reconciliation stays the safety net.
                hub.state_changed(worker);
            } else {
                live::refresh(self, worker);
            }
        }
        if let Some(task) = &event.task_sid {
            if matches!(
                event.event_type.as_str(),
                "task.completed" | "task.canceled" | "task.deleted" | "task.system-deleted"
            ) {
                hub.forget_task(task);
                self.inner.wrapping.forget(task);
            }
        }
    }
}

/// `/twilio/events`.
pub fn router() -> Router<AppState> {
    Router::new().route("/twilio/events", post(receive))
}

/// The URL TaskRouter posted to: the public URL plus the path and query that reached this server.
fn signed_url(public_url: &str, uri: &axum::http::Uri) -> String {
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    format!("{}{path}", public_url.trim_end_matches('/'))
}

/// The scheme and host the client asked for, as a router in front of this server forwards them
/// (`X-Forwarded-Proto`, `X-Forwarded-Host`, first values), else the `Host` header over http. `None` without
/// any host. Only used when `PUBLIC_URL` is not set ([`super::AppConfig::public_url_from_headers`]).
fn forwarded_base(headers: &HeaderMap) -> Option<String> {
    let first = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let host = first("x-forwarded-host").or_else(|| first("host"))?;
    let scheme = match first("x-forwarded-proto") {
        Some(p) if p.eq_ignore_ascii_case("https") => "https",
        _ => "http",
    };
    // A host with a path, spaces or a user part is not a host: refuse it rather than sign something odd.
    if host.contains(['/', ' ', '@', '\\']) {
        return None;
    }
    Some(format!("{scheme}://{host}"))
}

async fn receive(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let signature = headers.get(twilio::signature::HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
    let base = match state.config().public_url_from_headers {
        true => forwarded_base(&headers).unwrap_or_else(|| state.config().public_url.clone()),
        false => state.config().public_url.clone(),
    };
    let url = signed_url(&base, &uri);
    if signature.is_empty()
        || !twilio::signature::validate_form_body(&state.config().auth_token, &url, &body, signature)
    {
        tracing::warn!(%url, "event callback with a bad or missing X-Twilio-Signature");
        return AppError::Forbidden(format!(
            "The X-Twilio-Signature does not match. Check that the workspace's EventCallbackUrl is {url} \
             and that PUBLIC_URL and AUTH_TOKEN are this account's."
        ))
        .into_response();
    }
    let fields: Vec<(String, String)> = match serde_urlencoded::from_bytes(&body) {
        Ok(fields) => fields,
        Err(_) => return AppError::BadRequest("The event is not form-encoded.".to_owned()).into_response(),
    };
    if !for_this_workspace(&state, &fields) {
        // Another workspace of the same account posts here too: not ours to show.
        return StatusCode::NO_CONTENT.into_response();
    }
    match TaskRouterEvent::from_fields(&fields) {
        Some(event) => {
            state.metrics().count_event_from(EventSource::Webhook);
            // A worker whose channel is connected here hears of it that way: shown once, not twice.
            let worker = event
                .worker_sid
                .clone()
                .or_else(|| event.task_sid.as_deref().and_then(|task| state.inner.hub.task_owner(task)));
            if worker.is_none_or(|worker| !channels::connected(&state, &worker)) {
                state.ingest(event);
            }
            StatusCode::NO_CONTENT.into_response()
        }
        None => AppError::BadRequest("The event has no EventType.".to_owned()).into_response(),
    }
}

/// False when the fields name another workspace (`WorkspaceSid`); events without one are kept.
fn for_this_workspace(state: &AppState, fields: &[(String, String)]) -> bool {
    fields
        .iter()
        .find(|(name, _)| name == "WorkspaceSid")
        .is_none_or(|(_, value)| *value == state.config().workspace_sid)
}

/// Workers whose state is rebuilt at the same time during reconciliation.
const RECONCILE_CONCURRENCY: usize = 8;

/// One reconciliation round (see [`AppState::reconcile`]).
pub(crate) async fn reconcile(state: &AppState) {
    use futures_util::StreamExt as _;
    snapshot::load_workflows(state).await;
    let workers = state.inner.hub.connected();
    // A few at a time: real Twilio rate-limits the account, and this is only the safety net.
    futures_util::stream::iter(workers)
        .for_each_concurrent(RECONCILE_CONCURRENCY, |worker| async move {
            live::refresh_now(state, &worker).await
        })
        .await;
    wrapup::sweep(state).await;
    leave::sweep(state).await;
    channels::sweep(state);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn events_read_from_callback_fields() {
        let event = TaskRouterEvent::from_fields(&fields(&[
            ("EventType", "reservation.created"),
            ("EventDescription", "Reservation WR1 created"),
            ("Timestamp", "1700000000"),
            ("WorkerSid", "WK1"),
            ("TaskSid", "WT1"),
            ("ReservationSid", "WR1"),
        ]));
        let Some(event) = event else { panic!("no event") };
        assert_eq!(event.at_ms, Some(1_700_000_000_000));
        assert_eq!(event.worker_sid.as_deref(), Some("WK1"));
        let with_ms = TaskRouterEvent::from_fields(&fields(&[
            ("EventType", "x"),
            ("TimestampMs", "5"),
            ("Timestamp", "9"),
        ]));
        assert_eq!(with_ms.map(|e| (e.at_ms, e.description)), Some((Some(5), "x".to_owned())));
        assert_eq!(TaskRouterEvent::from_fields(&fields(&[("WorkerSid", "WK1")])), None);
    }

    #[test]
    fn forwarded_headers_name_the_url_the_router_was_asked_for() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = HeaderMap::new();
            for (k, v) in pairs {
                map.insert(*k, axum::http::HeaderValue::from_static(v));
            }
            map
        };
        let behind_router = headers(&[
            ("host", "10.1.2.3:5000"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "app.example.com"),
        ]);
        assert_eq!(forwarded_base(&behind_router).as_deref(), Some("https://app.example.com"));
        let proto_only = headers(&[("host", "app.herokuapp.com"), ("x-forwarded-proto", "https, http")]);
        assert_eq!(forwarded_base(&proto_only).as_deref(), Some("https://app.herokuapp.com"));
        assert_eq!(
            forwarded_base(&headers(&[("host", "127.0.0.1:8080")])).as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(forwarded_base(&headers(&[("host", "evil/path")])), None);
        assert_eq!(forwarded_base(&HeaderMap::new()), None);
    }

    #[test]
    fn task_fields_are_read_and_the_first_of_a_repeated_name_counts() {
        let event = TaskRouterEvent::from_fields(&fields(&[
            ("EventType", "reservation.created"),
            ("TaskAttributes", r#"{"from":"+1555"}"#),
            ("TaskPriority", "7"),
            ("TaskAge", "3"),
            ("TaskAssignmentStatus", "reserved"),
            ("WorkflowSid", "WW1"),
            ("WorkerActivitySid", "WA1"),
            ("TaskPriority", "9"),
            ("TaskAge", "not a number"),
            ("EventType", "task.created"),
        ]));
        let Some(event) = event else { panic!("no event") };
        assert_eq!(event.event_type, "reservation.created");
        assert_eq!(event.task_attributes.as_deref(), Some(r#"{"from":"+1555"}"#));
        assert_eq!((event.task_priority, event.task_age), (Some(7), Some(3)));
        assert_eq!(event.task_assignment_status.as_deref(), Some("reserved"));
        assert_eq!(event.workflow_sid.as_deref(), Some("WW1"));
        assert_eq!(event.worker_activity_sid.as_deref(), Some("WA1"));
        assert_eq!(event.reservation_status(), Some("pending"));
        let wrapup = TaskRouterEvent { event_type: "reservation.wrapup".into(), ..event.clone() };
        assert_eq!(wrapup.reservation_status(), Some("wrapping"));
        let task = TaskRouterEvent { event_type: "task.created".into(), ..event };
        assert_eq!(task.reservation_status(), None);
    }

    fn app_state() -> AppState {
        let config = crate::app::test_config();
        let clock: std::sync::Arc<dyn engine::Clock> = std::sync::Arc::new(engine::SystemClock);
        match AppState::new(config, clock) {
            Ok(state) => state,
            Err(error) => panic!("{error}"),
        }
    }

    fn new_reservation() -> TaskRouterEvent {
        TaskRouterEvent {
            event_type: "reservation.created".into(),
            worker_sid: Some("WK1".into()),
            task_sid: Some("WT1".into()),
            reservation_sid: Some("WR1".into()),
            task_attributes: Some(r#"{"from":"+1555","call_sid":"CA1"}"#.into()),
            task_priority: Some(0),
            task_age: Some(0),
            task_assignment_status: Some("reserved".into()),
            workflow_sid: Some("WW1".into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_new_reservation_frame_is_complete_once_the_timeout_is_known() {
        let state = app_state();
        let unknown = frame(&state, &new_reservation(), 1_000);
        assert!(!unknown.complete, "the workflow's timeout is not cached: a state must follow");
        assert_eq!(unknown.extra["reservation"]["timeout_at"], Value::Null);

        if let Ok(mut workflows) = state.inner.cache.workflows.lock() {
            workflows.insert("WW1".into(), 10);
        }
        let known = frame(&state, &new_reservation(), 1_000);
        assert!(known.complete);
        assert_eq!(
            Value::Object(known.extra),
            json!({
                "worker_sid": "WK1", "task_sid": "WT1", "reservation_sid": "WR1",
                "reservation": {
                    "sid": "WR1", "status": "pending", "created_at": 1_000, "timeout_at": 11_000,
                    "task": {
                        "sid": "WT1", "assignment_status": "reserved", "priority": 0, "age": 0,
                        "attributes": { "from": "+1555", "call_sid": "CA1" },
                    },
                },
            })
        );

        // Attributes that are not JSON: no task to show, so the state must tell.
        let bad = TaskRouterEvent { task_attributes: Some("{nope".into()), ..new_reservation() };
        let bad = frame(&state, &bad, 1_000);
        assert!(!bad.complete && bad.extra["reservation"].get("task").is_none());
        // Other reservation events say the new status; a state follows them.
        let timeout = TaskRouterEvent { event_type: "reservation.timeout".into(), ..new_reservation() };
        let timeout = frame(&state, &timeout, 2_000);
        assert!(!timeout.complete);
        assert_eq!(timeout.extra["reservation"]["status"], "timeout");
    }

    #[test]
    fn an_activity_frame_says_the_new_activity() {
        let state = app_state();
        let event = TaskRouterEvent {
            event_type: "worker.activity.update".into(),
            worker_sid: Some("WK1".into()),
            worker_activity_sid: Some("WA1".into()),
            worker_activity_name: Some("Available".into()),
            ..Default::default()
        };
        let built = frame(&state, &event, 5);
        assert!(!built.complete);
        assert_eq!(
            built.extra["worker"],
            json!({ "activity_sid": "WA1", "activity_name": "Available", "activity_changed_at": 5 }),
            "availability unknown until the workspace is cached"
        );
    }

    #[test]
    fn the_signed_url_is_the_public_url_plus_path_and_query() {
        let uri: axum::http::Uri = "/twilio/events?x=1".parse().unwrap_or_default();
        assert_eq!(signed_url("https://app.example.com/", &uri), "https://app.example.com/twilio/events?x=1");
    }
}
