//! The supervisor's picture of the workspace: every worker with its activity, current call and pending
//! reservation; every queue's figures; the workspace's totals; the last hour of tasks waiting and workers
//! available.
//!
//! It is built whole over REST ([`load`]: workers, the tasks not yet finished and their live reservations,
//! then [`load_stats`]: TaskRouter's real-time statistics of the workspace and of each queue), then kept
//! right by the workspace channel's events ([`Board::apply`]): a worker's, task's or reservation's event
//! carries the resource as it is now, so the rows it touches are replaced and only those go to the pages.
//! Queue figures (eligible workers need the queues' expressions) are not derived from events: an event
//! that may change them asks for the statistics again ([`Change::stats`]).

use std::collections::{BTreeMap, HashMap, VecDeque};

use futures_util::{StreamExt as _, TryStreamExt as _};
use serde_json::{json, Value};
use twilio::client::statistics::{TaskQueueRealTimeStatistics, WorkspaceRealTimeStatistics};
use twilio::client::taskrouter::{ReservationFilter, TaskFilter, TaskQueueFilter, WorkerFilter};
use twilio::eventbridge::{ChannelEvent, EventPayload};
use twilio::models::{Reservation, ReservationStatus, Task, TaskAssignmentStatus, Worker};

use crate::app::snapshot::{self, parse_date_ms};
use crate::app::{AppError, AppState};

/// Items per page of a list: TaskRouter's largest, so 1,000 workers are one request.
const PAGE: u32 = 1000;
/// REST reads made at once while a picture is built.
const CONCURRENT_READS: usize = 8;
/// Samples of the chart kept: one hour at one sample per [`SAMPLE_EVERY_MS`]. Samples are taken while a
/// supervisor page is open (the channel is); the chart leaves a gap where nobody watched.
const HISTORY: usize = 240;
/// The chart's resolution: a new sample at most this often (the latest one is updated in between).
const SAMPLE_EVERY_MS: i64 = 15_000;
/// The longest caller text kept for a row.
const MAX_CALLER_CHARS: usize = 64;

/// A worker's row.
#[derive(Debug, Clone, PartialEq)]
struct WorkerRow {
    name: String,
    activity_sid: Option<String>,
    activity_name: Option<String>,
    available: bool,
    /// When the worker entered its activity, ms since the epoch.
    activity_since: Option<i64>,
}

/// A task that is not finished.
#[derive(Debug, Clone, PartialEq)]
struct TaskRow {
    status: String,
    caller: Option<String>,
    queue: Option<String>,
    created_at: Option<i64>,
}

/// A reservation that is pending, accepted or wrapping.
#[derive(Debug, Clone, PartialEq)]
struct ReservationRow {
    task_sid: String,
    worker_sid: String,
    status: String,
    /// When it last changed: when it was offered, accepted or went to wrap-up.
    since: Option<i64>,
}

/// One point of the chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sample {
    /// Ms since the epoch.
    pub(crate) at: i64,
    /// Tasks pending or reserved.
    pub(crate) waiting: u64,
    /// Workers in an available activity.
    pub(crate) available: u64,
}

/// The statistics part of the picture, as read.
#[derive(Debug, Clone, Default)]
pub(crate) struct Stats {
    queues: Vec<(String, String, TaskQueueRealTimeStatistics)>,
    workspace: WorkspaceRealTimeStatistics,
}

/// The whole picture.
#[derive(Debug, Default)]
pub(crate) struct Board {
    workspace_name: String,
    activities: Vec<Value>,
    workers: BTreeMap<String, WorkerRow>,
    tasks: HashMap<String, TaskRow>,
    reservations: HashMap<String, ReservationRow>,
    stats: Stats,
    history: VecDeque<Sample>,
}

/// What an event changed, for the pages.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Change {
    /// Workers whose row is new or changed.
    pub(crate) workers: Vec<String>,
    /// Workers that are gone.
    pub(crate) removed: Vec<String>,
    /// Whether queue and workspace figures may have changed.
    pub(crate) stats: bool,
}

fn status_of<T: serde::Serialize>(status: Option<&T>) -> String {
    status
        .and_then(|s| serde_json::to_value(s).ok())
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn is_live_task(status: &str) -> bool {
    matches!(status, "pending" | "reserved" | "assigned" | "wrapping")
}

fn is_live_reservation(status: &str) -> bool {
    matches!(status, "pending" | "accepted" | "wrapping")
}

/// Text from outside as a row shows it: control and direction characters removed (a U+202E would show a
/// number reversed), at most [`MAX_CALLER_CHARS`] characters.
pub(crate) fn clean(text: &str) -> String {
    let direction =
        |c: char| matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    text.chars().filter(|c| !c.is_control() && !direction(*c)).take(MAX_CALLER_CHARS).collect()
}

/// Who is calling, from a task's attributes: a name an integration gave, else the `from` number.
pub(crate) fn caller(task: &Task) -> Option<String> {
    let attributes = task.attributes_json().ok()?;
    ["caller_name", "customer_name", "name", "from_name", "from"]
        .iter()
        .find_map(|key| attributes.get(key).and_then(Value::as_str).filter(|s| !s.trim().is_empty()))
        .map(clean)
}

fn worker_row(worker: &Worker) -> WorkerRow {
    WorkerRow {
        name: clean(worker.friendly_name.as_deref().unwrap_or(&worker.sid)),
        activity_sid: worker.activity_sid.clone(),
        activity_name: worker.activity_name.clone(),
        available: worker.available.unwrap_or(false),
        activity_since: parse_date_ms(worker.date_status_changed.as_deref()),
    }
}

fn task_row(task: &Task) -> TaskRow {
    TaskRow {
        status: status_of(task.assignment_status.as_ref()),
        caller: caller(task),
        queue: task.task_queue_friendly_name.clone(),
        created_at: parse_date_ms(task.date_created.as_deref()),
    }
}

fn reservation_row(reservation: &Reservation) -> Option<ReservationRow> {
    Some(ReservationRow {
        task_sid: reservation.task_sid.clone()?,
        worker_sid: reservation.worker_sid.clone()?,
        status: status_of(reservation.reservation_status.as_ref()),
        since: parse_date_ms(reservation.date_updated.as_deref().or(reservation.date_created.as_deref())),
    })
}

/// Builds the picture over REST (statistics included).
pub(crate) async fn load(state: &AppState) -> Result<Board, AppError> {
    let client = state.client();
    let live = vec![
        TaskAssignmentStatus::Pending,
        TaskAssignmentStatus::Reserved,
        TaskAssignmentStatus::Assigned,
        TaskAssignmentStatus::Wrapping,
    ];
    let task_filter = TaskFilter { assignment_status: live, page_size: Some(PAGE), ..TaskFilter::default() };
    let worker_filter = WorkerFilter { page_size: Some(PAGE), ..WorkerFilter::default() };
    let (workspace, workers, tasks, stats) = futures_util::try_join!(
        snapshot::workspace(state),
        async {
            client
                .list_workers(&worker_filter)
                .all()
                .await
                .map_err(|e| AppError::upstream("list the workers", e))
        },
        async {
            client.list_tasks(&task_filter).all().await.map_err(|e| AppError::upstream("list the tasks", e))
        },
        load_stats(state),
    )?;
    let with_reservations: Vec<String> = tasks
        .iter()
        .filter(|t| !matches!(t.assignment_status, Some(TaskAssignmentStatus::Pending) | None))
        .map(|t| t.sid.clone())
        .collect();
    let reservations: Vec<Vec<Reservation>> = futures_util::stream::iter(with_reservations)
        .map(|task_sid: String| async move {
            client
                .list_task_reservations(&task_sid, &ReservationFilter::default())
                .all()
                .await
                .map_err(|e| AppError::upstream("list a task's reservations", e))
        })
        .buffer_unordered(CONCURRENT_READS)
        .try_collect()
        .await?;
    let mut board = Board {
        workspace_name: workspace.friendly_name.clone(),
        activities: workspace
            .activities
            .iter()
            .map(|a| json!({ "sid": a.sid, "friendly_name": a.friendly_name, "available": a.available }))
            .collect(),
        stats,
        ..Board::default()
    };
    for worker in &workers {
        board.workers.insert(worker.sid.clone(), worker_row(worker));
    }
    for task in &tasks {
        board.tasks.insert(task.sid.clone(), task_row(task));
    }
    for reservation in reservations.iter().flatten() {
        if let Some(row) = reservation_row(reservation).filter(|r| is_live_reservation(&r.status)) {
            board.reservations.insert(reservation.sid.clone(), row);
        }
    }
    Ok(board)
}

/// Reads the workspace's and every queue's real-time statistics.
pub(crate) async fn load_stats(state: &AppState) -> Result<Stats, AppError> {
    let client = state.client();
    let (workspace, queues) = futures_util::try_join!(
        async {
            client
                .fetch_workspace_real_time_statistics()
                .await
                .map_err(|e| AppError::upstream("read the workspace's statistics", e))
        },
        async {
            client
                .list_task_queues(&TaskQueueFilter { page_size: Some(PAGE), ..TaskQueueFilter::default() })
                .all()
                .await
                .map_err(|e| AppError::upstream("list the task queues", e))
        },
    )?;
    let mut read: Vec<(String, String, TaskQueueRealTimeStatistics)> = futures_util::stream::iter(queues)
        .map(|queue| async move {
            let figures = client
                .fetch_task_queue_real_time_statistics(&queue.sid)
                .await
                .map_err(|e| AppError::upstream("read a task queue's statistics", e))?;
            let name = clean(queue.friendly_name.as_deref().unwrap_or(&queue.sid));
            Ok::<_, AppError>((queue.sid, name, figures))
        })
        .buffer_unordered(CONCURRENT_READS)
        .try_collect()
        .await?;
    read.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    Ok(Stats { queues: read, workspace })
}

fn waiting(by_status: &BTreeMap<String, u64>) -> u64 {
    by_status.get("pending").copied().unwrap_or(0) + by_status.get("reserved").copied().unwrap_or(0)
}

impl Board {
    /// Replaces the statistics and notes a sample of the chart at `now_ms`.
    pub(crate) fn set_stats(&mut self, stats: Stats, now_ms: i64) {
        self.stats = stats;
        self.sample(now_ms);
    }

    /// Goes on with the chart's `history` (from the picture this one replaces, or kept while no page was
    /// open) and notes a sample at `now_ms`.
    pub(crate) fn continue_history(&mut self, history: VecDeque<Sample>, now_ms: i64) {
        self.history = history;
        self.sample(now_ms);
    }

    /// The chart's samples, taken out of this picture.
    pub(crate) fn take_history(&mut self) -> VecDeque<Sample> {
        std::mem::take(&mut self.history)
    }

    fn available_workers(&self) -> u64 {
        let available: Vec<&str> = self
            .activities
            .iter()
            .filter(|a| a["available"] == json!(true))
            .filter_map(|a| a["sid"].as_str())
            .collect();
        self.stats
            .workspace
            .activity_statistics
            .iter()
            .filter(|a| available.contains(&a.sid.as_str()))
            .map(|a| a.workers)
            .sum()
    }

    /// Notes the figures now as the chart's latest point.
    pub(crate) fn sample(&mut self, now_ms: i64) {
        let sample = Sample {
            at: now_ms,
            waiting: waiting(&self.stats.workspace.tasks_by_status),
            available: self.available_workers(),
        };
        let several = self.history.len() > 1;
        match self.history.back_mut() {
            Some(last) if now_ms - last.at < SAMPLE_EVERY_MS && several => {
                *last = sample;
            }
            _ => self.history.push_back(sample),
        }
        let hour_ago = now_ms - HISTORY as i64 * SAMPLE_EVERY_MS;
        while self.history.len() > HISTORY || self.history.front().is_some_and(|s| s.at < hour_ago) {
            self.history.pop_front();
        }
    }

    /// Applies one event of the workspace channel.
    pub(crate) fn apply(&mut self, event: &ChannelEvent) -> Change {
        let mut change = Change::default();
        let name = event.event_type.as_str();
        match &event.kind {
            EventPayload::Worker(worker) => {
                let row = worker_row(worker);
                if self.workers.get(&worker.sid) != Some(&row) {
                    self.workers.insert(worker.sid.clone(), row);
                    change.workers.push(worker.sid.clone());
                }
                change.stats = name == "worker.activity.update" || name == "worker.created";
            }
            EventPayload::Task(task) | EventPayload::Reservation { task, .. } => {
                self.apply_task(task, &mut change);
            }
            EventPayload::WorkerChannel(_) => change.stats = true,
            EventPayload::Other => {
                let sid = event.payload.get("sid").and_then(Value::as_str).unwrap_or_default();
                if sid.starts_with("WR") {
                    if let Ok(reservation) = serde_json::from_value::<Reservation>(event.payload.clone()) {
                        self.apply_reservation(&reservation, &mut change);
                    }
                } else if sid.starts_with("EV") {
                    // The object is gone: the Event resource names it.
                    let gone = event.payload.get("resource_sid").and_then(Value::as_str).unwrap_or_default();
                    self.forget(gone, &mut change);
                } else if sid.starts_with("WQ") || sid.starts_with("WA") {
                    change.stats = true;
                }
            }
        }
        change.workers.sort();
        change.workers.dedup();
        change
    }

    fn apply_task(&mut self, task: &Task, change: &mut Change) {
        change.stats = true;
        let row = task_row(task);
        if is_live_task(&row.status) {
            self.tasks.insert(task.sid.clone(), row);
            change.workers.extend(self.holders(&task.sid));
        } else {
            self.forget(&task.sid, change);
        }
    }

    fn apply_reservation(&mut self, reservation: &Reservation, change: &mut Change) {
        change.stats = true;
        let Some(row) = reservation_row(reservation) else { return };
        change.workers.push(row.worker_sid.clone());
        if is_live_reservation(&row.status) {
            self.reservations.insert(reservation.sid.clone(), row);
        } else {
            self.reservations.remove(&reservation.sid);
        }
    }

    /// Workers holding a live reservation of `task_sid`.
    fn holders(&self, task_sid: &str) -> Vec<String> {
        self.reservations.values().filter(|r| r.task_sid == task_sid).map(|r| r.worker_sid.clone()).collect()
    }

    /// Forgets a worker, task or reservation that is gone.
    fn forget(&mut self, sid: &str, change: &mut Change) {
        if self.workers.remove(sid).is_some() {
            change.removed.push(sid.to_owned());
            self.reservations.retain(|_, r| r.worker_sid != sid);
            change.stats = true;
        }
        if self.tasks.remove(sid).is_some() {
            change.workers.extend(self.holders(sid));
            self.reservations.retain(|_, r| r.task_sid != sid);
            change.stats = true;
        }
        if let Some(reservation) = self.reservations.remove(sid) {
            change.workers.push(reservation.worker_sid);
        }
    }

    /// Whether `worker_sid` is in the picture.
    #[cfg(test)]
    fn has_worker(&self, worker_sid: &str) -> bool {
        self.workers.contains_key(worker_sid)
    }

    /// A worker's row as the page shows it, `None` when the worker is not in the picture.
    pub(crate) fn worker_json(&self, worker_sid: &str) -> Option<Value> {
        let row = self.workers.get(worker_sid)?;
        let mine = self.reservations.iter().filter(|(_, r)| r.worker_sid == worker_sid);
        Some(self.render_worker(worker_sid, row, mine))
    }

    fn render_worker<'a>(
        &self,
        sid: &str,
        row: &WorkerRow,
        reservations: impl Iterator<Item = (&'a String, &'a ReservationRow)>,
    ) -> Value {
        let (mut call, mut pending) = (Value::Null, Value::Null);
        for (reservation_sid, reservation) in reservations {
            let task = self.tasks.get(&reservation.task_sid);
            let item = json!({
                "reservation_sid": reservation_sid,
                "task_sid": reservation.task_sid,
                "status": reservation.status,
                "caller": task.and_then(|t| t.caller.clone()),
                "queue": task.and_then(|t| t.queue.clone()),
                "since": reservation.since,
            });
            match reservation.status.as_str() {
                "pending" => pending = item,
                _ => call = item,
            }
        }
        json!({
            "sid": sid,
            "name": row.name,
            "activity_sid": row.activity_sid,
            "activity_name": row.activity_name,
            "available": row.available,
            "activity_since": row.activity_since,
            "call": call,
            "pending": pending,
        })
    }

    /// Every worker's row, by name.
    fn workers_json(&self) -> Vec<Value> {
        let mut by_worker: HashMap<&str, Vec<(&String, &ReservationRow)>> = HashMap::new();
        for (sid, reservation) in &self.reservations {
            by_worker.entry(reservation.worker_sid.as_str()).or_default().push((sid, reservation));
        }
        let mut rows: Vec<(&String, &WorkerRow)> = self.workers.iter().collect();
        rows.sort_by(|a, b| a.1.name.cmp(&b.1.name).then_with(|| a.0.cmp(b.0)));
        rows.into_iter()
            .map(|(sid, row)| {
                let mine = by_worker.remove(sid.as_str()).unwrap_or_default();
                self.render_worker(sid, row, mine.into_iter())
            })
            .collect()
    }

    /// The queues' and the workspace's figures and the chart, as the page shows them.
    pub(crate) fn stats_json(&self) -> Value {
        let queues: Vec<Value> = self
            .stats
            .queues
            .iter()
            .map(|(sid, name, figures)| {
                json!({
                    "sid": sid,
                    "name": name,
                    "tasks_waiting": waiting(&figures.tasks_by_status),
                    "longest_wait": figures.longest_task_waiting_age,
                    "workers_available": figures.total_available_workers,
                    "workers_eligible": figures.total_eligible_workers,
                })
            })
            .collect();
        let workspace = &self.stats.workspace;
        let history: Vec<Value> =
            self.history.iter().map(|s| json!([s.at, s.waiting, s.available])).collect();
        json!({
            "queues": queues,
            "totals": {
                "workers": workspace.total_workers,
                "workers_available": self.available_workers(),
                "tasks": workspace.total_tasks,
                "tasks_waiting": waiting(&workspace.tasks_by_status),
                "tasks_by_status": workspace.tasks_by_status,
                "longest_wait": workspace.longest_task_waiting_age,
                "activities": workspace.activity_statistics.iter().map(|a| json!({
                    "sid": a.sid, "friendly_name": a.friendly_name, "workers": a.workers,
                })).collect::<Vec<_>>(),
            },
            "history": history,
        })
    }

    /// The whole picture: workspace, activities, workers, and [`Board::stats_json`]'s members.
    pub(crate) fn to_json(&self) -> Value {
        let mut picture = self.stats_json();
        picture["workspace"] = json!({ "friendly_name": self.workspace_name });
        picture["activities"] = Value::Array(self.activities.clone());
        picture["workers"] = Value::Array(self.workers_json());
        picture
    }
}

/// The status names of a reservation TaskRouter reports (`accepted`, `timeout`, …).
pub(crate) fn reservation_status(status: Option<&ReservationStatus>) -> String {
    status_of(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(event_type: &str, payload: Value) -> ChannelEvent {
        match ChannelEvent::read(event_type.to_owned(), payload) {
            Ok(event) => event,
            Err(e) => panic!("{e}"),
        }
    }

    fn worker(sid: &str, activity: &str) -> Value {
        json!({ "sid": sid, "friendly_name": "ada", "activity_sid": "WA1", "activity_name": activity,
                "available": activity == "Available", "attributes": "{}" })
    }

    const WK: &str = "WK0123456789abcdef0123456789abcdef";
    const WT: &str = "WT0123456789abcdef0123456789abcdef";
    const WR: &str = "WR0123456789abcdef0123456789abcdef";

    #[test]
    fn events_replace_the_rows_they_name_and_say_which() {
        let mut board = Board::default();
        let change = board.apply(&event("worker.created", worker(WK, "Offline")));
        assert_eq!(change.workers, vec![WK.to_owned()]);
        let same = board.apply(&event("worker.attributes.update", worker(WK, "Offline")));
        assert!(same.workers.is_empty(), "an unchanged row is not sent again");
        let task = json!({ "sid": WT, "assignment_status": "reserved",
                           "attributes": "{\"from\":\"+15550100\u{202e}\"}", "age": 3, "priority": 0 });
        board.apply(&event("task.created", task.clone()));
        let reservation = json!({ "sid": WR, "task_sid": WT, "worker_sid": WK, "reservation_status": "pending",
                                  "date_updated": "2026-12-07T10:00:00Z" });
        let change = board.apply(&event("reservation.created", reservation.clone()));
        assert_eq!(change.workers, vec![WK.to_owned()]);
        assert!(change.stats);
        let row = board.worker_json(WK).unwrap_or_default();
        assert_eq!(row["pending"]["caller"], "+15550100", "direction controls are removed");
        assert_eq!(row["call"], Value::Null);
        let mut accepted = reservation;
        accepted["reservation_status"] = json!("accepted");
        board.apply(&event("reservation.accepted", accepted));
        let row = board.worker_json(WK).unwrap_or_default();
        assert_eq!(row["call"]["reservation_sid"], WR);
        assert_eq!(row["pending"], Value::Null);
        let mut done = task;
        done["assignment_status"] = json!("completed");
        let change = board.apply(&event("task.completed", done));
        assert_eq!(change.workers, vec![WK.to_owned()], "the task's holder is told");
        assert_eq!(board.worker_json(WK).unwrap_or_default()["call"], Value::Null);
        let gone = json!({ "sid": "EV0123456789abcdef0123456789abcdef", "resource_sid": WK,
                           "event_type": "worker.deleted" });
        let change = board.apply(&event("worker.deleted", gone));
        assert_eq!(change.removed, vec![WK.to_owned()]);
        assert!(!board.has_worker(WK));
    }

    #[test]
    fn the_chart_keeps_one_hour_at_its_resolution() {
        let mut board = Board::default();
        for n in 0..1000 {
            board.sample(n * SAMPLE_EVERY_MS);
        }
        assert_eq!(board.history.len(), HISTORY);
        board.sample(999 * SAMPLE_EVERY_MS + 10);
        assert_eq!(board.history.len(), HISTORY, "a sample within the resolution updates the last one");
    }
}
