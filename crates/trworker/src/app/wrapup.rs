//! Wrap-up: a task left in `wrapping` keeps its worker from the next call, and the seed's users got stuck
//! that way (a closed tab never pressed "Complete"). The server completes such tasks of signed-in workers
//! itself, per [`WrapUpPolicy`], with the seed's reason "Was stuck in wrapping"; `fix-wrapping` and the
//! seed's `taskReservationTaskFix.php` use the same [`fix_task`].
//!
//! It runs when an event may call for it (`*.wrapup`, `worker.activity.update`), after the worker changes
//! activity through the app, and on every reconciliation round ([`sweep`]), which is what makes a delay
//! policy fire. Time is the app's injected clock.

use std::collections::HashMap;
use std::sync::Mutex;

use engine::Timestamp;
use twilio::client::taskrouter::{ReservationFilter, TaskFilter, UpdateTask};
use twilio::models::{ReservationStatus, Task, TaskAssignmentStatus};

use super::{snapshot, AppError, AppState, WrapUpPolicy};

/// The reason the seed gave, kept for whoever reads the task's history.
pub const STUCK_REASON: &str = "Was stuck in wrapping";

/// When each task was first seen wrapping. A std mutex: map updates only.
#[derive(Default)]
pub(crate) struct Tracker {
    since: Mutex<HashMap<String, Timestamp>>,
}

/// Tasks remembered before old entries are dropped.
const MAX_TRACKED: usize = 100_000;

impl Tracker {
    /// Notes that `task_sid` is wrapping at `now` (keeps the first time).
    pub(crate) fn seen(&self, task_sid: &str, now: Timestamp) -> Timestamp {
        let Ok(mut since) = self.since.lock() else { return now };
        if since.len() > MAX_TRACKED {
            since.clear();
        }
        *since.entry(task_sid.to_owned()).or_insert(now)
    }

    pub(crate) fn forget(&self, task_sid: &str) {
        if let Ok(mut since) = self.since.lock() {
            since.remove(task_sid);
        }
    }

    fn retain(&self, keep: impl Fn(&str) -> bool) {
        if let Ok(mut since) = self.since.lock() {
            since.retain(|task, _| keep(task));
        }
    }
}

/// Completes `task_sid` if it is wrapping; returns the task as it is afterwards.
pub async fn fix_task(state: &AppState, task_sid: &str) -> Result<Task, AppError> {
    let client = state.client();
    let task = client.fetch_task(task_sid).await.map_err(|e| AppError::upstream("read the task", e))?;
    if task.assignment_status != Some(TaskAssignmentStatus::Wrapping) {
        return Ok(task);
    }
    let update = UpdateTask {
        assignment_status: Some(TaskAssignmentStatus::Completed),
        reason: Some(STUCK_REASON.to_owned()),
        ..Default::default()
    };
    let task = client
        .update_task(task_sid, &update)
        .await
        .map_err(|e| AppError::upstream("complete the task stuck in wrapping", e))?;
    state.inner.wrapping.forget(task_sid);
    tracing::info!(%task_sid, "completed a task stuck in wrapping");
    Ok(task)
}

/// Whether the policy says a task wrapping since `since` of a worker whose activity is `available` is due.
fn due(policy: WrapUpPolicy, since: Timestamp, now: Timestamp, available: bool) -> bool {
    match policy {
        WrapUpPolicy::Never => false,
        WrapUpPolicy::WhenOffline => !available,
        WrapUpPolicy::After(delay) => {
            now.millis_since(since) >= i64::try_from(delay.as_millis()).unwrap_or(i64::MAX)
        }
    }
}

/// Applies the policy to `worker_sid`'s wrapping tasks. Failures are logged: the next round retries.
pub(crate) async fn check_worker(state: &AppState, worker_sid: &str) {
    if state.config().wrap_up == WrapUpPolicy::Never {
        return;
    }
    let filter =
        ReservationFilter { reservation_status: Some(ReservationStatus::Wrapping), ..Default::default() };
    let reservations = match state.client().list_worker_reservations(worker_sid, &filter).all().await {
        Ok(list) => list,
        Err(error) => {
            tracing::warn!(%worker_sid, %error, "could not list wrapping reservations");
            return;
        }
    };
    let tasks: Vec<String> = reservations.into_iter().filter_map(|r| r.task_sid).collect();
    apply(state, worker_sid, &tasks).await;
}

/// Applies the policy to `tasks`, all wrapping with `worker_sid`.
async fn apply(state: &AppState, worker_sid: &str, tasks: &[String]) {
    // Checked here, at decision time: a check started while the worker was signed in may run later.
    if tasks.is_empty() || !state.is_signed_in(worker_sid) {
        return;
    }
    let now = state.now();
    let available = match state.config().wrap_up {
        WrapUpPolicy::WhenOffline => match worker_available(state, worker_sid).await {
            Some(available) => available,
            None => return,
        },
        _ => true,
    };
    for task in tasks {
        let since = state.inner.wrapping.seen(task, now);
        if due(state.config().wrap_up, since, now, available) {
            if let Err(error) = fix_task(state, task).await {
                tracing::warn!(task_sid = %task, %error, "could not complete a task stuck in wrapping");
            }
        }
    }
}

async fn worker_available(state: &AppState, worker_sid: &str) -> Option<bool> {
    let worker = state.client().fetch_worker(worker_sid).await.ok()?;
    if let Some(available) = worker.available {
        return Some(available);
    }
    let workspace = snapshot::workspace(state).await.ok()?;
    worker.activity_sid.as_deref().and_then(|sid| workspace.activity(sid)).map(|a| a.available)
}

/// Every wrapping task of the workspace whose worker is signed in gets the policy applied. One list call,
/// plus one per wrapping task to find its worker.
pub(crate) async fn sweep(state: &AppState) {
    if state.config().wrap_up == WrapUpPolicy::Never {
        return;
    }
    let client = state.client();
    let filter = TaskFilter { assignment_status: vec![TaskAssignmentStatus::Wrapping], ..Default::default() };
    let tasks = match client.list_tasks(&filter).all().await {
        Ok(tasks) => tasks,
        Err(error) => {
            tracing::warn!(%error, "could not list wrapping tasks");
            return;
        }
    };
    let wrapping: Vec<String> = tasks.into_iter().map(|t| t.sid).collect();
    state.inner.wrapping.retain(|task| wrapping.iter().any(|w| w == task));
    let mut by_worker: HashMap<String, Vec<String>> = HashMap::new();
    for task in wrapping {
        let filter =
            ReservationFilter { reservation_status: Some(ReservationStatus::Wrapping), ..Default::default() };
        let Ok(reservations) = client.list_task_reservations(&task, &filter).all().await else { continue };
        if let Some(worker) = reservations.into_iter().find_map(|r| r.worker_sid) {
            if state.is_signed_in(&worker) {
                by_worker.entry(worker).or_default().push(task);
            } else {
                // Start the clock anyway: a worker who signs in later should not wait the delay again.
                state.inner.wrapping.seen(&task, state.now());
            }
        }
    }
    for (worker, tasks) in by_worker {
        apply(state, &worker, &tasks).await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn policies_decide_when_a_wrapping_task_is_due() {
        let t0 = Timestamp::from_secs(100);
        let after = WrapUpPolicy::After(Duration::from_secs(30));
        assert!(!due(after, t0, t0.plus_secs(29), false));
        assert!(due(after, t0, t0.plus_secs(30), true));
        assert!(due(WrapUpPolicy::WhenOffline, t0, t0, false));
        assert!(!due(WrapUpPolicy::WhenOffline, t0, t0.plus_secs(3600), true));
        assert!(!due(WrapUpPolicy::Never, t0, t0.plus_secs(3600), false));
    }

    #[test]
    fn the_tracker_keeps_the_first_sighting() {
        let tracker = Tracker::default();
        let t0 = Timestamp::from_secs(1);
        assert_eq!(tracker.seen("WT1", t0), t0);
        assert_eq!(tracker.seen("WT1", t0.plus_secs(5)), t0);
        tracker.forget("WT1");
        assert_eq!(tracker.seen("WT1", t0.plus_secs(5)), t0.plus_secs(5));
    }
}
