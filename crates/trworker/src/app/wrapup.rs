//! Wrap-up: after a call the task is `wrapping` while the worker writes notes and picks a disposition; the
//! worker ends it with "Complete" (the notes go on the task's attributes), may "Extend" it (bounded), and
//! when its time runs out the server completes the task itself, with the seed's reason "Was stuck in
//! wrapping", so that nobody stays stuck in wrap-up (the seed's users did: a closed tab never pressed
//! "Complete"). The countdown is [`WrapUpPolicy`]'s; `fix-wrapping` and the seed's
//! `taskReservationTaskFix.php` use the same [`fix_task`].
//!
//! A task's wrap-up starts when the app first sees it wrapping (a `*.wrapup` event, a state built for its
//! worker, or a reconciliation round): its [`WrapUp`] (start, end, limit) is kept in memory and shown to
//! the page in the worker's state. A timer completes it at the end (plus [`GRACE`] when there is a
//! countdown, so that an open page, which completes at zero with the notes, goes first); every
//! reconciliation round ([`sweep`]) checks again, which also covers a worker who was not signed in at the
//! end. A restarted server starts the countdown again, so it never cuts a wrap-up short. Time is the app's
//! injected clock.
//!
//! Only one completion of a task is tried at a time ([`Tracker::claim`]): the end of a call brings
//! `task.wrapup` and `reservation.wrapup` together, and each used to start a check that read the task as
//! wrapping and tried to complete it, the second one failing with a warning.
//!
//! Several instances of the app may see the same wrap-up (a worker with tabs on two, or "Extend" answered
//! by another instance than the one holding the socket). Each keeps its own countdown, so "Extend" also
//! writes the new end on the task's attributes (`wrap_up.ends_at`, ms since the epoch), TaskRouter being
//! the one state instances share; before completing a due task, an instance reads that end and, when it
//! is later than its own, adopts it and waits ([`Tracker::adopt`]). A task another instance completed
//! first is not an error ([`fix_task`]).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use engine::Timestamp;
use serde_json::{json, Value};
use twilio::client::taskrouter::{ReservationFilter, TaskFilter, UpdateTask};
use twilio::models::{ReservationStatus, Task, TaskAssignmentStatus};

use super::{AppError, AppState, WrapUpPolicy};

/// The reason the seed gave, kept for whoever reads the task's history.
pub const STUCK_REASON: &str = "Was stuck in wrapping";

/// How long after a countdown's end the server completes the task, when an open page has not: the page
/// completes at zero with the worker's notes, which the server cannot know.
pub const GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// One task's wrap-up, in the app's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WrapUp {
    /// When the app first saw the task wrapping.
    pub(crate) started_at: Timestamp,
    /// When the countdown reaches zero (moved by "Extend").
    pub(crate) ends_at: Timestamp,
    /// How far "Extend" may move `ends_at`.
    pub(crate) limit_at: Timestamp,
}

impl WrapUp {
    fn new(now: Timestamp, policy: WrapUpPolicy) -> WrapUp {
        let ends_at = now.plus_millis(millis(policy.countdown));
        WrapUp { started_at: now, ends_at, limit_at: now.plus_millis(millis(policy.limit)).max(ends_at) }
    }

    /// When the server completes the task.
    pub(crate) fn due_at(&self) -> Timestamp {
        match self.ends_at > self.started_at {
            true => self.ends_at.plus_millis(millis(GRACE)),
            false => self.ends_at,
        }
    }

    /// `{"started_at","ends_at","limit_at"}` in ms since the epoch, as the page reads it.
    pub(crate) fn to_json(self) -> Value {
        json!({
            "started_at": self.started_at.millis(),
            "ends_at": self.ends_at.millis(),
            "limit_at": self.limit_at.millis(),
        })
    }
}

fn millis(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX / 4)
}

/// The wrap-ups under way and the completions in flight. Std mutexes: map updates only.
#[derive(Default)]
pub(crate) struct Tracker {
    tasks: Mutex<HashMap<String, WrapUp>>,
    completing: Mutex<HashSet<String>>,
}

/// Tasks remembered before old entries are dropped.
const MAX_TRACKED: usize = 100_000;

/// The right to complete a task, released on drop.
pub(crate) struct Claim<'a> {
    tracker: &'a Tracker,
    task_sid: String,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        if let Ok(mut completing) = self.tracker.completing.lock() {
            completing.remove(&self.task_sid);
        }
    }
}

impl Tracker {
    /// The wrap-up of `task_sid`, started at `now` if it is new (then `true`).
    pub(crate) fn start(&self, task_sid: &str, now: Timestamp, policy: WrapUpPolicy) -> (WrapUp, bool) {
        let Ok(mut tasks) = self.tasks.lock() else { return (WrapUp::new(now, policy), false) };
        if let Some(found) = tasks.get(task_sid) {
            return (*found, false);
        }
        if tasks.len() > MAX_TRACKED {
            tasks.clear();
        }
        let wrap_up = WrapUp::new(now, policy);
        tasks.insert(task_sid.to_owned(), wrap_up);
        (wrap_up, true)
    }

    /// Moves the end of `task_sid`'s wrap-up by the policy's extension, up to its limit: the new wrap-up,
    /// `Err` with the unchanged one when it is at the limit already, `None` when the task is not known.
    pub(crate) fn extend(&self, task_sid: &str, policy: WrapUpPolicy) -> Option<Result<WrapUp, WrapUp>> {
        let mut tasks = self.tasks.lock().ok()?;
        let wrap_up = tasks.get_mut(task_sid)?;
        if wrap_up.ends_at >= wrap_up.limit_at {
            return Some(Err(*wrap_up));
        }
        wrap_up.ends_at = wrap_up.ends_at.plus_millis(millis(policy.extension)).min(wrap_up.limit_at);
        Some(Ok(*wrap_up))
    }

    /// Moves the end of `task_sid`'s wrap-up to `ends_at` when that is later (an extension made elsewhere),
    /// within its limit: the new wrap-up when it moved.
    pub(crate) fn adopt(&self, task_sid: &str, ends_at: Timestamp) -> Option<WrapUp> {
        let mut tasks = self.tasks.lock().ok()?;
        let wrap_up = tasks.get_mut(task_sid)?;
        let ends_at = ends_at.min(wrap_up.limit_at);
        if ends_at <= wrap_up.ends_at {
            return None;
        }
        wrap_up.ends_at = ends_at;
        Some(*wrap_up)
    }

    /// Takes the right to complete `task_sid`; `None` while another completion of it is in flight.
    pub(crate) fn claim(&self, task_sid: &str) -> Option<Claim<'_>> {
        let mut completing = self.completing.lock().ok()?;
        completing.insert(task_sid.to_owned()).then(|| Claim { tracker: self, task_sid: task_sid.to_owned() })
    }

    pub(crate) fn forget(&self, task_sid: &str) {
        if let Ok(mut tasks) = self.tasks.lock() {
            tasks.remove(task_sid);
        }
    }

    fn retain(&self, keep: impl Fn(&str) -> bool) {
        if let Ok(mut tasks) = self.tasks.lock() {
            tasks.retain(|task, _| keep(task));
        }
    }
}

/// The wrap-up of `task_sid`, which is wrapping: started now if it is new, with a timer that completes the
/// task when it is due.
pub(crate) fn started(state: &AppState, task_sid: &str) -> WrapUp {
    let (wrap_up, new) = state.inner.wrapping.start(task_sid, state.now(), state.config().wrap_up);
    if new {
        schedule(state, task_sid, wrap_up.due_at());
    }
    wrap_up
}

/// Extends `task_sid`'s wrap-up (the caller checked that the task is the worker's); 409 when the task is
/// not in wrap-up or the wrap-up is at its limit.
pub(crate) async fn extend(state: &AppState, task_sid: &str) -> Result<WrapUp, AppError> {
    let task = read_task(state, task_sid).await?;
    if task.assignment_status != Some(TaskAssignmentStatus::Wrapping) {
        return Err(AppError::Conflict(format!(
            "Task {task_sid} is not in wrap-up: there is nothing to extend."
        )));
    }
    started(state, task_sid);
    if let Some(ends_at) = extended_end(&task) {
        state.inner.wrapping.adopt(task_sid, ends_at);
    }
    let policy = state.config().wrap_up;
    match state.inner.wrapping.extend(task_sid, policy) {
        Some(Ok(wrap_up)) => {
            schedule(state, task_sid, wrap_up.due_at());
            share_end(state, &task, wrap_up.ends_at).await;
            Ok(wrap_up)
        }
        Some(Err(_)) => Err(AppError::Conflict(format!(
            "Wrap-up cannot be extended beyond {} minutes; complete the task.",
            policy.limit.as_secs().div_ceil(60)
        ))),
        None => {
            Err(AppError::Conflict(format!("Task {task_sid} is not in wrap-up: there is nothing to extend.")))
        }
    }
}

/// The end of the task's wrap-up as an "Extend" wrote it on its attributes (`wrap_up.ends_at`).
fn extended_end(task: &Task) -> Option<Timestamp> {
    let attributes = task.attributes_json().ok()?;
    attributes.get("wrap_up")?.get("ends_at")?.as_i64().map(Timestamp)
}

/// Writes `ends_at` on the task's attributes for the other instances. A failure costs only that another
/// instance may complete the task at its own, earlier end: logged, not the worker's error.
async fn share_end(state: &AppState, task: &Task, ends_at: Timestamp) {
    let mut attributes = match task.attributes_json() {
        Ok(Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    let wrap_up = attributes.entry("wrap_up").or_insert_with(|| json!({}));
    if !wrap_up.is_object() {
        *wrap_up = json!({});
    }
    wrap_up["ends_at"] = json!(ends_at.millis());
    let update = UpdateTask { attributes: Some(Value::Object(attributes)), ..Default::default() };
    if let Err(error) = state.client().update_task(&task.sid, &update).await {
        tracing::warn!(task_sid = %task.sid, %error, "could not note the wrap-up's new end on the task");
    }
}

/// Checks `task_sid` at `at` (and so completes it if it is due then).
fn schedule(state: &AppState, task_sid: &str, at: Timestamp) {
    let wait = u64::try_from(at.millis_since(state.now())).unwrap_or(0);
    let state = state.clone();
    let task = task_sid.to_owned();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
        check_task(&state, &task).await;
    });
}

/// Completes `task_sid` if it is wrapping; returns the task as it is afterwards. A task completed by
/// someone else meanwhile is not an error.
pub async fn fix_task(state: &AppState, task_sid: &str) -> Result<Task, AppError> {
    let task = read_task(state, task_sid).await?;
    complete_if_wrapping(state, task).await
}

/// The task as TaskRouter has it now.
pub(crate) async fn read_task(state: &AppState, task_sid: &str) -> Result<Task, AppError> {
    state.client().fetch_task(task_sid).await.map_err(|e| AppError::upstream("read the task", e))
}

/// [`fix_task`] for a task just read.
pub(crate) async fn complete_if_wrapping(state: &AppState, task: Task) -> Result<Task, AppError> {
    if task.assignment_status != Some(TaskAssignmentStatus::Wrapping) {
        return Ok(task);
    }
    let client = state.client();
    let update = UpdateTask {
        assignment_status: Some(TaskAssignmentStatus::Completed),
        reason: Some(STUCK_REASON.to_owned()),
        ..Default::default()
    };
    let task_sid = task.sid;
    let task = match client.update_task(&task_sid, &update).await {
        Ok(task) => task,
        Err(error) => {
            let now = client.fetch_task(&task_sid).await.ok();
            match now.filter(|t| t.assignment_status == Some(TaskAssignmentStatus::Completed)) {
                Some(completed) => return Ok(completed),
                None => return Err(AppError::upstream("complete the task stuck in wrapping", error)),
            }
        }
    };
    state.inner.wrapping.forget(&task_sid);
    tracing::info!(%task_sid, "completed a task stuck in wrapping");
    Ok(task)
}

/// Completes `task_sid`, due by this instance's countdown, unless its attributes say it was extended
/// beyond (elsewhere): then the later end is adopted and checked again then.
async fn complete_due(state: &AppState, task_sid: &str) -> Result<Task, AppError> {
    let task = read_task(state, task_sid).await?;
    if let Some(wrap_up) = extended_end(&task).and_then(|end| state.inner.wrapping.adopt(task_sid, end)) {
        if state.now() < wrap_up.due_at() {
            schedule(state, task_sid, wrap_up.due_at());
            return Ok(task);
        }
    }
    complete_if_wrapping(state, task).await
}

/// Finds the worker of the wrapping `task_sid` and applies the policy.
async fn check_task(state: &AppState, task_sid: &str) {
    let filter =
        ReservationFilter { reservation_status: Some(ReservationStatus::Wrapping), ..Default::default() };
    let Ok(reservations) = state.client().list_task_reservations(task_sid, &filter).all().await else {
        return;
    };
    if let Some(worker) = reservations.into_iter().find_map(|r| r.worker_sid) {
        apply(state, &worker, &[task_sid.to_owned()]).await;
    }
}

/// Completes those of `tasks`, all wrapping with `worker_sid`, that are due. Failures are logged: the next
/// round retries.
async fn apply(state: &AppState, worker_sid: &str, tasks: &[String]) {
    // Checked here, at decision time: a check started while the worker was signed in may run later.
    if tasks.is_empty() || !state.is_signed_in(worker_sid) {
        return;
    }
    for task in tasks {
        if state.now() < started(state, task).due_at() {
            continue;
        }
        // Another check is completing it: that one reports.
        let Some(_claim) = state.inner.wrapping.claim(task) else { continue };
        match complete_due(state, task).await {
            Ok(_) => super::live::refresh(state, worker_sid),
            Err(error) => {
                tracing::warn!(task_sid = %task, %error, "could not complete a task stuck in wrapping")
            }
        }
    }
}

/// Every wrapping task of the workspace whose worker is signed in gets the policy applied. One list call,
/// plus one per wrapping task to find its worker.
pub(crate) async fn sweep(state: &AppState) {
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
                // Start the clock anyway: a worker who signs in later should not wait the whole time again.
                started(state, &task);
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
    fn a_wrap_up_ends_after_the_countdown_and_extends_up_to_its_limit() {
        let policy = WrapUpPolicy {
            countdown: Duration::from_secs(60),
            extension: Duration::from_secs(60),
            limit: Duration::from_secs(150),
        };
        let tracker = Tracker::default();
        let t0 = Timestamp::from_secs(100);
        let (first, new) = tracker.start("WT1", t0, policy);
        assert!(new);
        assert_eq!((first.ends_at, first.limit_at), (t0.plus_secs(60), t0.plus_secs(150)));
        assert_eq!(first.due_at(), t0.plus_secs(65), "an open page completes first");
        assert_eq!(
            tracker.start("WT1", t0.plus_secs(5), policy),
            (first, false),
            "the first sighting counts"
        );
        let extended = tracker.extend("WT1", policy).and_then(Result::ok).map(|w| w.ends_at);
        assert_eq!(extended, Some(t0.plus_secs(120)));
        let capped = tracker.extend("WT1", policy).and_then(Result::ok).map(|w| w.ends_at);
        assert_eq!(capped, Some(t0.plus_secs(150)));
        assert!(matches!(tracker.extend("WT1", policy), Some(Err(_))), "at the limit");
        assert_eq!(tracker.extend("WT2", policy), None);
        tracker.forget("WT1");
        assert!(tracker.start("WT1", t0.plus_secs(5), policy).1);
    }

    #[test]
    fn no_countdown_means_due_at_once() {
        let none = WrapUpPolicy::seconds(0);
        let t0 = Timestamp::from_secs(100);
        assert_eq!(WrapUp::new(t0, none).due_at(), t0);
    }

    #[test]
    fn one_completion_at_a_time() {
        let tracker = Tracker::default();
        let claim = tracker.claim("WT1");
        assert!(claim.is_some());
        assert!(tracker.claim("WT1").is_none());
        assert!(tracker.claim("WT2").is_some());
        drop(claim);
        assert!(tracker.claim("WT1").is_some());
    }
}
