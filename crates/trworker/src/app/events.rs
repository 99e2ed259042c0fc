//! Event intake: how the app learns that something changed.
//!
//! - [`EventIntake`] is the one door. [`AppState`] implements it: an event is numbered and pushed at once to
//!   the sockets of the worker it concerns (found by `WorkerSid`, or by the task's last known worker), that
//!   worker's state is rebuilt over REST, and the wrap-up policy is applied where the event may call for it.
//! - `POST /twilio/events` is TaskRouter's `EventCallbackUrl`: form-encoded, signed with `X-Twilio-Signature`
//!   over the configured public URL (403 on a bad signature), answered 204 at once.
//! - In local mode the engine's in-process event stream may be fed in with [`spawn_feed`] (the same fields,
//!   through [`EventIntake::ingest`]) instead of the HTTP hop; use one or the other, not both, or every
//!   event shows twice. The webhook path stays tested.
//! - [`reconcile`] is the safety net for lost webhooks: connected workers' states are rebuilt and pushed
//!   where they changed, and wrapping tasks are checked against the wrap-up policy.

use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use super::{live, wrapup, AppError, AppState};

/// One TaskRouter event, as the `EventCallbackUrl` form carries it (reference §9.2).
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// `WorkerActivityName`, on worker events.
    pub worker_activity_name: Option<String>,
}

impl TaskRouterEvent {
    /// Reads the form fields of an event callback (PascalCase names, any order). `None` without an
    /// `EventType`.
    pub fn from_fields(fields: &[(String, String)]) -> Option<TaskRouterEvent> {
        let get = |name: &str| {
            fields
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
                .filter(|v| !v.is_empty())
        };
        let event_type = get("EventType")?;
        let at_ms = get("TimestampMs")
            .and_then(|v| v.parse::<i64>().ok())
            .or_else(|| get("Timestamp").and_then(|v| v.parse::<i64>().ok()).map(|s| s.saturating_mul(1000)));
        Some(TaskRouterEvent {
            description: get("EventDescription").unwrap_or_else(|| event_type.clone()),
            event_type,
            at_ms,
            worker_sid: get("WorkerSid"),
            task_sid: get("TaskSid"),
            reservation_sid: get("ReservationSid"),
            worker_activity_name: get("WorkerActivityName"),
        })
    }
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
                self.inner.wrapping.seen(task, self.now());
            }
        }
        if let Some(worker) = &worker_sid {
            let at = event.at_ms.unwrap_or_else(|| self.now().millis());
            hub.push_event(worker, at, &event.event_type, &event.description);
            live::refresh(self, worker);
            let may_need_wrap_up =
                event.event_type.ends_with(".wrapup") || event.event_type == "worker.activity.update";
            if may_need_wrap_up && self.is_signed_in(worker) {
                let state = self.clone();
                let worker = worker.clone();
                tokio::spawn(async move { wrapup::check_worker(&state, &worker).await });
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
            state.ingest(event);
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

/// Feeds an in-process event stream (local mode: the embedded engine's broadcast) into the app, as the
/// webhook would, until the sender is gone. `to_fields` turns an event into its callback form fields
/// (e.g. `trworker::api::callbacks::event_fields`). Events of other workspaces are skipped; when the
/// receiver lags behind and events are lost, a reconciliation round puts every connected worker right.
pub fn spawn_feed<T, F>(state: AppState, mut events: broadcast::Receiver<T>, to_fields: F) -> JoinHandle<()>
where
    T: Clone + Send + 'static,
    F: Fn(&T) -> Vec<(String, String)> + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(event) => {
                    let fields = to_fields(&event);
                    if !for_this_workspace(&state, &fields) {
                        continue;
                    }
                    if let Some(event) = TaskRouterEvent::from_fields(&fields) {
                        state.ingest(event);
                    }
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "the app fell behind the engine's events; reconciling");
                    state.reconcile().await;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    })
}

/// Workers whose state is rebuilt at the same time during reconciliation.
const RECONCILE_CONCURRENCY: usize = 8;

/// One reconciliation round (see [`AppState::reconcile`]).
pub(crate) async fn reconcile(state: &AppState) {
    use futures_util::StreamExt as _;
    let workers = state.inner.hub.connected();
    // A few at a time: real Twilio rate-limits the account, and this is only the safety net.
    futures_util::stream::iter(workers)
        .for_each_concurrent(RECONCILE_CONCURRENCY, |worker| async move {
            live::refresh_now(state, &worker).await
        })
        .await;
    wrapup::sweep(state).await;
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
    fn the_signed_url_is_the_public_url_plus_path_and_query() {
        let uri: axum::http::Uri = "/twilio/events?x=1".parse().unwrap_or_default();
        assert_eq!(signed_url("https://app.example.com/", &uri), "https://app.example.com/twilio/events?x=1");
    }
}
