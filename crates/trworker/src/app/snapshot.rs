//! A worker's whole state, rebuilt from the REST API: the worker and its activity, its pending, accepted and
//! wrapping reservations with their tasks (a wrapping one with its `wrap_up`: `started_at`, `ends_at`,
//! `limit_at`), and the conference of an accepted task.
//!
//! This is the payload of the WebSocket's `state` message. Rebuilding it whole on every change keeps the
//! protocol idempotent: a client that missed anything is right again after the next state. Times are
//! milliseconds since the Unix epoch, what the page computes with.
//!
//! Also here: the short-lived caches of what rarely changes (the workspace's activities, workflows'
//! reservation timeouts), so a state costs the worker, reservation, task and conference reads only.

use std::collections::HashMap;
use std::sync::Mutex;

use engine::Timestamp;
use futures_util::future::try_join_all;
use serde_json::{json, Value};
use time::format_description::well_known::{Rfc2822, Rfc3339};
use time::OffsetDateTime;
use twilio::client::conference::{ConferenceFilter, ParticipantFilter};
use twilio::client::taskrouter::{ActivityFilter, ReservationFilter, TaskQueueFilter, WorkflowFilter};
use twilio::models::{Activity, ConferenceStatus, Reservation, ReservationStatus, Task, Worker};

use super::{AppError, AppState};

/// How long the activity list is trusted (ms).
const ACTIVITIES_TTL_MS: i64 = 60_000;

/// Caches of rarely changing resources. Std mutexes: held for a clone or an insert, never across an await.
#[derive(Default)]
pub(crate) struct Cache {
    workspace: Mutex<Option<(Timestamp, WorkspaceView)>>,
    /// Workflow SID -> `task_reservation_timeout` in seconds.
    pub(crate) workflows: Mutex<HashMap<String, u32>>,
    /// Whether a reload of `workflows` runs, and whether another was asked for meanwhile.
    workflows_reload: Mutex<(bool, bool)>,
    /// Worker SID -> (when read, the worker's attributes then, the names of the queues that take it): one
    /// entry per worker, read again when the attributes change or after [`QUEUES_TTL_MS`].
    queues: Mutex<HashMap<String, QueuesRead>>,
}

/// A worker's queue list as read: when, the worker's attributes then, and the queues' names.
type QueuesRead = (Timestamp, String, Vec<String>);

/// How long a worker's queue list is reused while its attributes stay the same: queues' expressions change
/// rarely, and the list is only shown.
const QUEUES_TTL_MS: i64 = 5 * 60 * 1000;

/// The workspace and its activities, as `GET /api/workspace` shows them.
#[derive(Debug, Clone)]
pub struct WorkspaceView {
    /// `WS…`.
    pub sid: String,
    /// The workspace's name.
    pub friendly_name: String,
    /// Its activities, in the API's order.
    pub activities: Vec<ActivityView>,
}

/// An activity.
#[derive(Debug, Clone)]
pub struct ActivityView {
    /// `WA…`.
    pub sid: String,
    /// E.g. "Offline".
    pub friendly_name: String,
    /// Whether workers in it get reservations.
    pub available: bool,
}

impl WorkspaceView {
    /// The activity named `name` (case-insensitive).
    pub fn activity_named(&self, name: &str) -> Option<&ActivityView> {
        self.activities.iter().find(|a| a.friendly_name.eq_ignore_ascii_case(name))
    }

    /// The activity `sid`.
    pub fn activity(&self, sid: &str) -> Option<&ActivityView> {
        self.activities.iter().find(|a| a.sid == sid)
    }

    /// The JSON of `GET /api/workspace`.
    pub fn to_json(&self, mode: &str) -> Value {
        json!({
            "sid": self.sid,
            "friendly_name": self.friendly_name,
            "mode": mode,
            "activities": self.activities.iter().map(|a| json!({
                "sid": a.sid, "friendly_name": a.friendly_name, "available": a.available,
            })).collect::<Vec<_>>(),
        })
    }
}

fn activity_view(activity: Activity) -> ActivityView {
    ActivityView {
        friendly_name: activity.friendly_name.unwrap_or_else(|| activity.sid.clone()),
        available: activity.available.unwrap_or(false),
        sid: activity.sid,
    }
}

/// The workspace and its activities, from the cache when fresh.
pub(crate) async fn workspace(state: &AppState) -> Result<WorkspaceView, AppError> {
    let now = state.now();
    if let Ok(cached) = state.inner.cache.workspace.lock() {
        if let Some((at, view)) = cached.as_ref() {
            if now.millis_since(*at) < ACTIVITIES_TTL_MS && *at <= now {
                return Ok(view.clone());
            }
        }
    }
    let client = state.client();
    let (workspace, activities) = futures_util::try_join!(
        async { client.fetch_workspace().await.map_err(|e| AppError::upstream("read the workspace", e)) },
        async {
            client
                .list_activities(&ActivityFilter::default())
                .all()
                .await
                .map_err(|e| AppError::upstream("list the workspace's activities", e))
        },
    )?;
    let view = WorkspaceView {
        friendly_name: workspace.friendly_name.unwrap_or_else(|| workspace.sid.clone()),
        sid: workspace.sid,
        activities: activities.into_iter().map(activity_view).collect(),
    };
    if let Ok(mut cached) = state.inner.cache.workspace.lock() {
        *cached = Some((now, view.clone()));
    }
    Ok(view)
}

/// Milliseconds since the epoch of an ISO-8601 (TaskRouter) or RFC 2822 (API 2010) date.
pub(crate) fn parse_date_ms(text: Option<&str>) -> Option<i64> {
    let text = text?.trim();
    let parsed =
        OffsetDateTime::parse(text, &Rfc3339).or_else(|_| OffsetDateTime::parse(text, &Rfc2822)).ok()?;
    i64::try_from(parsed.unix_timestamp_nanos() / 1_000_000).ok()
}

/// RFC 3339 of unix seconds.
pub(crate) fn rfc3339(secs: u64) -> String {
    i64::try_from(secs)
        .ok()
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// The worker as the API and the socket show it.
pub(crate) fn worker_json(worker: &Worker, workspace: Option<&WorkspaceView>) -> Value {
    let activity = worker.activity_sid.as_deref().and_then(|sid| workspace.and_then(|w| w.activity(sid)));
    let activity_name = worker.activity_name.clone().or_else(|| activity.map(|a| a.friendly_name.clone()));
    let available = worker.available.or_else(|| activity.map(|a| a.available)).unwrap_or(false);
    let attributes = worker.attributes_json().unwrap_or_else(|_| json!({}));
    json!({
        "sid": worker.sid,
        "friendly_name": worker.friendly_name,
        "activity_sid": worker.activity_sid,
        "activity_name": activity_name,
        "available": available,
        "attributes": attributes,
        "activity_changed_at": parse_date_ms(worker.date_status_changed.as_deref()),
    })
}

/// A task as the API and the socket show it.
pub(crate) fn task_json(task: &Task) -> Value {
    json!({
        "sid": task.sid,
        "assignment_status": task.assignment_status.as_ref().map(|s| s.as_str()),
        "priority": task.priority,
        "age": task.age,
        "queue": task.task_queue_friendly_name,
        "attributes": task.attributes_json().unwrap_or_else(|_| json!({})),
    })
}

/// A reservation as the API shows it after an action.
pub(crate) fn reservation_json(reservation: &Reservation) -> Value {
    json!({
        "sid": reservation.sid,
        "status": reservation.reservation_status.as_ref().map(|s| s.as_str()),
        "task_sid": reservation.task_sid,
        "worker_sid": reservation.worker_sid,
        "created_at": parse_date_ms(reservation.date_created.as_deref()),
    })
}

/// The reservation timeout of `workflow_sid`, in seconds, from the cache or the workflow list.
async fn reservation_timeout(state: &AppState, workflow_sid: &str) -> Option<u32> {
    if let Some(found) = state.inner.cache.workflows.lock().ok().and_then(|m| m.get(workflow_sid).copied()) {
        return Some(found);
    }
    let workflows = state.client().list_workflows(&WorkflowFilter::default()).all().await.ok()?;
    let mut map = state.inner.cache.workflows.lock().ok()?;
    for workflow in workflows {
        map.insert(workflow.sid, workflow.task_reservation_timeout);
    }
    map.get(workflow_sid).copied()
}

/// Reloads every workflow's reservation timeout into the cache (one listing), so that frames of new
/// reservations can say when they time out without a state rebuild. A failure keeps the cache as it was.
pub(crate) async fn load_workflows(state: &AppState) {
    let listed = state.client().list_workflows(&WorkflowFilter::default()).all().await;
    let workflows = match listed {
        Ok(workflows) => workflows,
        Err(error) => {
            tracing::debug!(%error, "could not list the workflows; their reservation timeouts stay as cached");
            return;
        }
    };
    if let Ok(mut map) = state.inner.cache.workflows.lock() {
        map.clear();
        for workflow in workflows {
            map.insert(workflow.sid, workflow.task_reservation_timeout);
        }
    }
}

/// [`load_workflows`] in the background (a workflow was created, changed or deleted). Coalesced: while one
/// reload runs, further requests make it run once more when it is done.
pub(crate) fn reload_workflows(state: &AppState) {
    {
        let Ok(mut reload) = state.inner.cache.workflows_reload.lock() else { return };
        if reload.0 {
            reload.1 = true;
            return;
        }
        *reload = (true, false);
    }
    let state = state.clone();
    tokio::spawn(async move {
        loop {
            load_workflows(&state).await;
            let Ok(mut reload) = state.inner.cache.workflows_reload.lock() else { return };
            if reload.1 {
                reload.1 = false;
            } else {
                reload.0 = false;
                return;
            }
        }
    });
}

/// The reservation timeout of `workflow_sid` in seconds, if the cache holds it (no I/O: for building a frame
/// on the hot path).
pub(crate) fn cached_reservation_timeout(state: &AppState, workflow_sid: &str) -> Option<u32> {
    state.inner.cache.workflows.lock().ok()?.get(workflow_sid).copied()
}

/// Whether activity `activity_sid` makes a worker available, if the cached workspace knows it (no I/O).
/// The cache's age does not matter: an activity's availability cannot change after it is created.
pub(crate) fn cached_activity_available(state: &AppState, activity_sid: &str) -> Option<bool> {
    let cached = state.inner.cache.workspace.lock().ok()?;
    cached.as_ref()?.1.activity(activity_sid).map(|a| a.available)
}

/// A worker's whole state (without `type`, `seq` and `server_time`, which the hub adds).
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// The worker.
    pub worker: Value,
    /// Pending, accepted and wrapping reservations with their tasks, oldest first.
    pub reservations: Vec<Value>,
    /// The conference of an accepted task, or `Value::Null`.
    pub conference: Value,
    /// Task SIDs of the reservations, so task events can be routed to the worker.
    pub task_sids: Vec<String>,
}

impl Snapshot {
    /// A 64-bit fingerprint of what the page shows (worker, reservations, conference), to tell whether a
    /// new state differs from the last one pushed without keeping that one.
    pub(crate) fn fingerprint(&self) -> u64 {
        use std::hash::{Hash as _, Hasher as _};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        // serde_json writes a `Value` deterministically (its maps are ordered by key).
        let text =
            serde_json::to_string(&(&self.worker, &self.reservations, &self.conference)).unwrap_or_default();
        text.hash(&mut hasher);
        hasher.finish()
    }
}

/// Builds `worker_sid`'s state over REST.
pub(crate) async fn build(state: &AppState, worker_sid: &str) -> Result<Snapshot, AppError> {
    let client = state.client();
    let workspace = workspace(state).await.ok();
    let worker =
        client.fetch_worker(worker_sid).await.map_err(|e| AppError::upstream("read the worker", e))?;
    let statuses = [ReservationStatus::Pending, ReservationStatus::Accepted, ReservationStatus::Wrapping];
    let lists = try_join_all(statuses.into_iter().map(|status| {
        let filter = ReservationFilter { reservation_status: Some(status), ..Default::default() };
        client.list_worker_reservations(worker_sid, &filter).all()
    }))
    .await
    .map_err(|e| AppError::upstream("list the worker's reservations", e))?;
    let mut reservations: Vec<Reservation> = lists.into_iter().flatten().collect();
    reservations.sort_by_key(|r| parse_date_ms(r.date_created.as_deref()).unwrap_or(0));
    let tasks = try_join_all(reservations.iter().map(|r| async move {
        match r.task_sid.as_deref() {
            Some(task_sid) => match client.fetch_task(task_sid).await {
                Ok(task) => Ok(Some(task)),
                Err(e) if e.is_not_found() => Ok(None),
                Err(e) => Err(AppError::upstream("read a reserved task", e)),
            },
            None => Ok(None),
        }
    }))
    .await?;

    let mut items = Vec::with_capacity(reservations.len());
    let mut conference = Value::Null;
    let mut task_sids = Vec::new();
    for (reservation, task) in reservations.iter().zip(tasks) {
        let Some(task) = task else { continue };
        let created_at = parse_date_ms(reservation.date_created.as_deref());
        let status = reservation.reservation_status.clone().unwrap_or(ReservationStatus::Pending);
        let timeout_at = match (&status, created_at, task.workflow_sid.as_deref()) {
            (ReservationStatus::Pending, Some(created), Some(workflow)) => {
                reservation_timeout(state, workflow)
                    .await
                    .map(|secs| created.saturating_add(i64::from(secs) * 1000))
            }
            _ => None,
        };
        if conference.is_null() && status == ReservationStatus::Accepted {
            conference = conference_of(state, &task).await;
        }
        task_sids.push(task.sid.clone());
        let mut item = json!({
            "sid": reservation.sid,
            "status": status.as_str(),
            "created_at": created_at,
            "timeout_at": timeout_at,
            "task": task_json(&task),
        });
        if status == ReservationStatus::Wrapping {
            item["wrap_up"] = super::wrapup::started(state, &task.sid).to_json();
        }
        items.push(item);
    }
    let mut worker_value = worker_json(&worker, workspace.as_ref());
    worker_value["queues"] = json!(worker_queues(state, &worker).await);
    Ok(Snapshot { worker: worker_value, reservations: items, conference, task_sids })
}

/// The names of the TaskQueues that take `worker` ("which calls come to me"), from the cache when fresh.
/// A failure reads as no change: the last list, or none.
async fn worker_queues(state: &AppState, worker: &Worker) -> Vec<String> {
    let attributes = worker.attributes.clone().unwrap_or_default();
    let now = state.now();
    let cached = state.inner.cache.queues.lock().ok().and_then(|q| q.get(&worker.sid).cloned());
    if let Some((at, seen, names)) = &cached {
        if *seen == attributes && now.millis_since(*at) < QUEUES_TTL_MS {
            return names.clone();
        }
    }
    let filter = TaskQueueFilter { worker_sid: Some(worker.sid.clone()), ..Default::default() };
    match state.client().list_task_queues(&filter).all().await {
        Ok(queues) => {
            let mut names: Vec<String> = queues.into_iter().filter_map(|q| q.friendly_name).collect();
            names.sort();
            if let Ok(mut cache) = state.inner.cache.queues.lock() {
                cache.insert(worker.sid.clone(), (now, attributes, names.clone()));
            }
            names
        }
        Err(error) => {
            tracing::debug!(worker_sid = %worker.sid, %error, "could not list the worker's queues");
            cached.map(|(_, _, names)| names).unwrap_or_default()
        }
    }
}

/// The conference of an accepted task: `attributes.conference.sid` when TaskRouter wrote it, else the
/// conference named after the task. `Null` when there is none or it has ended. Failures read as none: the
/// next state or reconciliation shows it.
async fn conference_of(state: &AppState, task: &Task) -> Value {
    let client = state.client();
    let attributes = task.attributes_json().unwrap_or_else(|_| json!({}));
    let by_attribute = attributes.pointer("/conference/sid").and_then(Value::as_str).map(str::to_owned);
    let conference = match by_attribute {
        Some(sid) => client.fetch_conference(&sid).await.ok(),
        None => {
            let filter = ConferenceFilter { friendly_name: Some(task.sid.clone()), ..Default::default() };
            client
                .list_conferences(&filter)
                .all()
                .await
                .ok()
                .and_then(|list| list.into_iter().find(|c| c.status != Some(ConferenceStatus::Completed)))
        }
    };
    let Some(conference) = conference else { return Value::Null };
    if conference.status == Some(ConferenceStatus::Completed) {
        return Value::Null;
    }
    let worker_leg = attributes.pointer("/conference/participants/worker").and_then(Value::as_str);
    let customer_leg = attributes
        .pointer("/conference/participants/customer")
        .or_else(|| attributes.get("call_sid"))
        .and_then(Value::as_str);
    let participants = client
        .list_participants(&conference.sid, &ParticipantFilter::default())
        .all()
        .await
        .unwrap_or_default();
    let participants: Vec<Value> = participants
        .iter()
        .map(|p| {
            let call = Some(p.call_sid.as_str());
            // A leg that is neither known one is the worker's when TaskRouter did not say which is.
            let role = if call == worker_leg || (call != customer_leg && worker_leg.is_none()) {
                "worker"
            } else {
                "customer"
            };
            json!({
                "call_sid": p.call_sid,
                "role": role,
                "status": p.status.as_ref().map(|s| s.as_str()),
            })
        })
        .collect();
    json!({
        "sid": conference.sid,
        "friendly_name": conference.friendly_name,
        "status": conference.status.as_ref().map(|s| s.as_str()),
        "started_at": parse_date_ms(conference.date_created.as_deref()),
        "participants": participants,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_of_both_apis_parse_to_millis() {
        assert_eq!(parse_date_ms(Some("2014-05-14T10:50:02Z")), Some(1_400_064_602_000));
        assert_eq!(parse_date_ms(Some("Wed, 14 May 2014 10:50:02 +0000")), Some(1_400_064_602_000));
        assert_eq!(parse_date_ms(Some("yesterday")), None);
        assert_eq!(parse_date_ms(None), None);
        assert_eq!(rfc3339(1_400_064_602), "2014-05-14T10:50:02Z");
    }
}
