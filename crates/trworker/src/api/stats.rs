//! Cumulative statistics, counted from the event log over the window a client asks for.
//!
//! TaskRouter's cumulative statistics (reference §4.12) cover a window: the last `Minutes` (default 15), or
//! `StartDate`..`EndDate`, optionally one `TaskChannel`, with `SplitByWaitTime` thresholds. Every figure they
//! hold is a count or a duration that some event of reference §9 records (`reservation.accepted` with its
//! `TaskAge`, `task.canceled`, `worker.activity.update` with `WorkerTimeInPreviousActivityMs`, ...), so they
//! are computed here from the engine's retained event log rather than from counters: windows come for free,
//! and the figures survive a restart because the log does.
//!
//! Limits, chosen and written down:
//! - Only the retained log is counted: the newest events the engine keeps in memory (100,000 by default,
//!   reloaded from disk at start). A window reaching further back counts what is retained.
//! - Scope: a queue counts the events whose `TaskQueueSid` is that queue, a workflow those whose
//!   `WorkflowSid` is that workflow, a worker those whose `WorkerSid` is that worker.
//! - Activity durations count every stretch of time in an activity that overlaps the window, clipped to it:
//!   stretches that ended (from `worker.activity.update`) and each worker's current one (up to the window's
//!   end).

use std::collections::BTreeMap;

use engine::model::{Activity, Worker};
use engine::{Event, EventType, Sid, Timestamp};
use serde_json::{json, Map, Value};

use super::port::{Failure, StatisticsQuery};
use super::render::{iso8601, parse_iso8601};

/// Twilio's default window.
const DEFAULT_MINUTES: i64 = 15;

fn bad(param: &str, message: impl Into<String>) -> Failure {
    engine::Error::InvalidParameter { param: param.into(), message: message.into() }.into()
}

/// The window and options of one statistics request.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub start: Timestamp,
    pub end: Timestamp,
    /// A task channel's SID or unique name.
    pub task_channel: Option<String>,
    /// `SplitByWaitTime` thresholds in seconds, ascending, without duplicates.
    pub split_by_wait_time: Vec<i64>,
}

impl Window {
    /// Reads `Minutes`, `StartDate`, `EndDate`, `TaskChannel` and `SplitByWaitTime`. `StartDate` wins over
    /// `Minutes`; without either the window is the 15 minutes before `EndDate` (default now).
    pub fn from_query(q: &StatisticsQuery, now: Timestamp) -> Result<Window, Failure> {
        let param =
            |n: &str| q.params.iter().find(|(k, _)| k == n).map(|(_, v)| v.trim()).filter(|v| !v.is_empty());
        let date = |name: &str| {
            param(name)
                .map(|v| {
                    parse_iso8601(v).ok_or_else(|| {
                        bad(name, format!("'{v}' is not an ISO 8601 date-time such as 2026-11-24T09:00:00Z"))
                    })
                })
                .transpose()
        };
        let end = date("EndDate")?.unwrap_or(now);
        let minutes = param("Minutes")
            .map(|v| match v.parse::<i64>() {
                Ok(m) if m > 0 => Ok(m),
                _ => Err(bad("Minutes", format!("'{v}' is not a positive whole number of minutes"))),
            })
            .transpose()?;
        let start = match date("StartDate")? {
            Some(start) => start,
            None => end.plus_millis(-minutes.unwrap_or(DEFAULT_MINUTES).saturating_mul(60_000)),
        };
        if start > end {
            return Err(bad("StartDate", "the window starts after it ends (StartDate is after EndDate)"));
        }
        let mut split_by_wait_time = Vec::new();
        if let Some(list) = param("SplitByWaitTime") {
            for part in list.split(',') {
                let part = part.trim();
                match part.parse::<i64>() {
                    Ok(s) if s >= 0 => split_by_wait_time.push(s),
                    _ => {
                        return Err(bad(
                            "SplitByWaitTime",
                            format!("'{part}' is not a number of seconds (expected e.g. 5,30)"),
                        ))
                    }
                }
            }
            split_by_wait_time.sort_unstable();
            split_by_wait_time.dedup();
        }
        Ok(Window { start, end, task_channel: param("TaskChannel").map(str::to_owned), split_by_wait_time })
    }

    fn contains(&self, at: Timestamp) -> bool {
        self.start <= at && at <= self.end
    }

    fn channel_matches(&self, e: &Event) -> bool {
        self.task_channel.as_deref().is_none_or(|c| {
            e.field("TaskChannelUniqueName") == Some(c) || e.field("TaskChannelSid") == Some(c)
        })
    }
}

/// Which events count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Workspace,
    Queue(Sid),
    Workflow(Sid),
    /// One worker, or every worker (`None`).
    Workers(Option<Sid>),
}

impl Scope {
    /// The event field that must name the scope's resource, and that resource's SID as text; `None` when
    /// every event of the workspace counts.
    fn field(self) -> Option<(&'static str, String)> {
        match self {
            Scope::Workspace | Scope::Workers(None) => None,
            Scope::Queue(q) => Some(("TaskQueueSid", q.to_string())),
            Scope::Workflow(wf) => Some(("WorkflowSid", wf.to_string())),
            Scope::Workers(Some(wk)) => Some(("WorkerSid", wk.to_string())),
        }
    }
}

/// Durations in seconds, summarised as Twilio does (`avg`, `min`, `max`, `total`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Durations {
    count: i64,
    min: i64,
    max: i64,
    total: i64,
}

impl Durations {
    fn add(&mut self, secs: i64) {
        self.min = if self.count == 0 { secs } else { self.min.min(secs) };
        self.max = self.max.max(secs);
        self.total += secs;
        self.count += 1;
    }

    fn avg(&self) -> i64 {
        if self.count == 0 {
            0
        } else {
            self.total / self.count
        }
    }

    fn json(&self) -> Value {
        json!({"avg": self.avg(), "min": self.min, "max": self.max, "total": self.total})
    }
}

/// Counts of one split threshold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Split {
    below_accepted: u64,
    below_canceled: u64,
    above_accepted: u64,
    above_canceled: u64,
}

/// What the window holds for one scope.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    pub reservations_created: u64,
    pub reservations_accepted: u64,
    pub reservations_rejected: u64,
    pub reservations_timed_out: u64,
    pub reservations_canceled: u64,
    pub reservations_rescinded: u64,
    pub tasks_created: u64,
    pub tasks_canceled: u64,
    pub tasks_completed: u64,
    pub tasks_deleted: u64,
    pub tasks_moved: u64,
    pub tasks_entered_queue: u64,
    pub tasks_entered_workflow: u64,
    pub tasks_timed_out_in_workflow: u64,
    /// Task age at acceptance.
    pub wait_until_accepted: Durations,
    /// Task age at cancellation.
    pub wait_until_canceled: Durations,
    /// Time in the queue at acceptance.
    pub wait_in_queue_until_accepted: Durations,
    splits: Vec<(i64, Split)>,
    /// Activity SID -> time spent in it, per stretch.
    activity_durations: BTreeMap<Sid, Durations>,
}

fn secs_field(e: &Event, name: &str) -> Option<i64> {
    e.field(name).and_then(|v| v.parse::<i64>().ok())
}

/// Counts the events of `ws` in the window and scope. `events` are oldest first.
pub fn tally<'a>(events: impl Iterator<Item = &'a Event>, ws: Sid, scope: Scope, window: &Window) -> Tally {
    let mut t = Tally {
        splits: window.split_by_wait_time.iter().map(|&s| (s, Split::default())).collect(),
        ..Tally::default()
    };
    // The scope's SID as text once, not once per event.
    let wanted = scope.field();
    let in_scope = |e: &Event| wanted.as_ref().is_none_or(|(name, sid)| e.field(name) == Some(sid.as_str()));
    for e in events {
        if e.workspace_sid != ws || !window.contains(e.at) || !in_scope(e) {
            continue;
        }
        if e.event_type == EventType::WorkerActivityUpdate {
            // The stretch that just ended, clipped to the window's start.
            let (Some(previous), Some(ms)) = (
                e.field("WorkerPreviousActivitySid").and_then(|s| Sid::parse(s).ok()),
                secs_field(e, "WorkerTimeInPreviousActivityMs"),
            ) else {
                continue;
            };
            let clipped = ms.min(e.at.millis_since(window.start)).max(0);
            t.activity_durations.entry(previous).or_default().add(clipped / 1000);
            continue;
        }
        if !window.channel_matches(e) {
            continue;
        }
        let age = secs_field(e, "TaskAge").unwrap_or(0);
        match e.event_type {
            EventType::ReservationCreated => t.reservations_created += 1,
            EventType::ReservationAccepted => {
                t.reservations_accepted += 1;
                t.wait_until_accepted.add(age);
                let entered = secs_field(e, "TaskQueueEnteredDate").unwrap_or(e.at.secs());
                t.wait_in_queue_until_accepted.add((e.at.secs() - entered).max(0));
                t.split(age, true);
            }
            EventType::ReservationRejected => t.reservations_rejected += 1,
            EventType::ReservationTimeout => t.reservations_timed_out += 1,
            EventType::ReservationCanceled => t.reservations_canceled += 1,
            EventType::ReservationRescinded => t.reservations_rescinded += 1,
            EventType::TaskCreated => t.tasks_created += 1,
            EventType::TaskCanceled => {
                t.tasks_canceled += 1;
                t.wait_until_canceled.add(age);
                t.split(age, false);
            }
            EventType::TaskCompleted => t.tasks_completed += 1,
            EventType::TaskDeleted | EventType::TaskSystemDeleted => t.tasks_deleted += 1,
            EventType::TaskQueueMoved => t.tasks_moved += 1,
            EventType::TaskQueueEntered => t.tasks_entered_queue += 1,
            EventType::WorkflowEntered => t.tasks_entered_workflow += 1,
            EventType::WorkflowTimeout => t.tasks_timed_out_in_workflow += 1,
            _ => {}
        }
    }
    t
}

impl Tally {
    /// Counts an acceptance (or a cancellation) at task age `age` below or above every threshold.
    fn split(&mut self, age: i64, accepted: bool) {
        for (threshold, split) in &mut self.splits {
            let count = match (age < *threshold, accepted) {
                (true, true) => &mut split.below_accepted,
                (true, false) => &mut split.below_canceled,
                (false, true) => &mut split.above_accepted,
                (false, false) => &mut split.above_canceled,
            };
            *count += 1;
        }
    }

    /// Adds each worker's current stretch (from its last status change, clipped to the window) to the
    /// activity durations.
    pub fn add_current_activities<'a>(&mut self, workers: impl Iterator<Item = &'a Worker>, window: &Window) {
        for w in workers {
            let from = w.date_status_changed.max(window.start);
            if from <= window.end {
                self.activity_durations
                    .entry(w.activity_sid)
                    .or_default()
                    .add(window.end.millis_since(from) / 1000);
            }
        }
    }

    /// `activity_durations`: one entry per activity of the workspace, zeros where nobody spent time in it.
    pub fn activity_durations_json<'a>(&self, activities: impl Iterator<Item = &'a Activity>) -> Value {
        let list: Vec<Value> = activities
            .map(|a| {
                let d = self.activity_durations.get(&a.sid).cloned().unwrap_or_default();
                json!({
                    "sid": a.sid.to_string(),
                    "friendly_name": a.friendly_name,
                    "avg": d.avg(),
                    "min": d.min,
                    "max": d.max,
                    "total": d.total,
                })
            })
            .collect();
        Value::Array(list)
    }

    /// The `reservations_*` counters.
    pub fn reservations_json(&self, m: &mut Map<String, Value>) {
        for (k, v) in [
            ("reservations_created", self.reservations_created),
            ("reservations_accepted", self.reservations_accepted),
            ("reservations_rejected", self.reservations_rejected),
            ("reservations_timed_out", self.reservations_timed_out),
            ("reservations_canceled", self.reservations_canceled),
            ("reservations_rescinded", self.reservations_rescinded),
        ] {
            m.insert(k.into(), json!(v));
        }
    }

    /// The cumulative document of a workspace, queue or workflow (the scope decides which `tasks_*` apply:
    /// `tasks_entered` is the queue's or the workflow's).
    pub fn cumulative_json(&self, scope: Scope, window: &Window) -> Map<String, Value> {
        let mut m = Map::new();
        self.reservations_json(&mut m);
        let tasks_entered = match scope {
            Scope::Queue(_) => Some(self.tasks_entered_queue),
            Scope::Workflow(_) => Some(self.tasks_entered_workflow),
            _ => None,
        };
        for (k, v) in [
            ("tasks_created", Some(self.tasks_created).filter(|_| scope == Scope::Workspace)),
            ("tasks_canceled", Some(self.tasks_canceled)),
            ("tasks_completed", Some(self.tasks_completed)),
            ("tasks_deleted", Some(self.tasks_deleted)),
            ("tasks_moved", Some(self.tasks_moved)),
            ("tasks_entered", tasks_entered),
            (
                "tasks_timed_out_in_workflow",
                Some(self.tasks_timed_out_in_workflow).filter(|_| !matches!(scope, Scope::Queue(_))),
            ),
        ] {
            if let Some(v) = v {
                m.insert(k.into(), json!(v));
            }
        }
        m.insert("avg_task_acceptance_time".into(), json!(self.wait_until_accepted.avg()));
        m.insert("start_time".into(), json!(iso8601(window.start)));
        m.insert("end_time".into(), json!(iso8601(window.end)));
        m.insert("split_by_wait_time".into(), self.splits_json());
        m.insert("wait_duration_until_accepted".into(), self.wait_until_accepted.json());
        m.insert("wait_duration_until_canceled".into(), self.wait_until_canceled.json());
        if let Scope::Queue(_) = scope {
            m.insert(
                "wait_duration_in_queue_until_accepted".into(),
                self.wait_in_queue_until_accepted.json(),
            );
        }
        m
    }

    /// `{"5": {"above": {...}, "below": {...}}, ...}`, or null without `SplitByWaitTime`.
    fn splits_json(&self) -> Value {
        if self.splits.is_empty() {
            return Value::Null;
        }
        let side = |accepted: u64, canceled: u64| json!({"reservations_accepted": accepted, "tasks_canceled": canceled});
        let m: Map<String, Value> = self
            .splits
            .iter()
            .map(|(threshold, s)| {
                (
                    threshold.to_string(),
                    json!({
                        "above": side(s.above_accepted, s.above_canceled),
                        "below": side(s.below_accepted, s.below_canceled),
                    }),
                )
            })
            .collect();
        Value::Object(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(params: &[(&str, &str)]) -> StatisticsQuery {
        StatisticsQuery {
            kind: "CumulativeStatistics".into(),
            params: params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    const NOW: Timestamp = Timestamp(1_800_000_000_000);

    #[test]
    fn the_default_window_is_the_last_15_minutes() {
        let w = Window::from_query(&query(&[]), NOW).unwrap();
        assert_eq!((w.start, w.end), (NOW.plus_millis(-15 * 60_000), NOW));
        let w = Window::from_query(&query(&[("Minutes", "60")]), NOW).unwrap();
        assert_eq!(w.start, NOW.plus_millis(-3_600_000));
    }

    #[test]
    fn start_date_wins_over_minutes_and_must_precede_the_end() {
        let w = Window::from_query(
            &query(&[
                ("Minutes", "5"),
                ("StartDate", "2027-01-15T08:00:00Z"),
                ("EndDate", "2027-01-15T09:00:00Z"),
            ]),
            NOW,
        )
        .unwrap();
        assert_eq!(w.end.millis_since(w.start), 3_600_000);
        let err = Window::from_query(
            &query(&[("StartDate", "2027-01-15T10:00:00Z"), ("EndDate", "2027-01-15T09:00:00Z")]),
            NOW,
        )
        .unwrap_err();
        assert!(err.message.contains("StartDate"), "{}", err.message);
    }

    #[test]
    fn bad_values_name_their_parameter() {
        for (param, value) in
            [("Minutes", "0"), ("Minutes", "ten"), ("StartDate", "yesterday"), ("SplitByWaitTime", "5,x")]
        {
            let err = Window::from_query(&query(&[(param, value)]), NOW).unwrap_err();
            assert_eq!(err.status, 400);
            assert!(err.message.contains(param), "{param}: {}", err.message);
        }
    }

    #[test]
    fn split_thresholds_are_sorted_and_unique() {
        let w = Window::from_query(&query(&[("SplitByWaitTime", "30, 5,30")]), NOW).unwrap();
        assert_eq!(w.split_by_wait_time, vec![5, 30]);
    }

    #[test]
    fn durations_summarise_like_twilio() {
        let mut d = Durations::default();
        assert_eq!(d.json(), json!({"avg": 0, "min": 0, "max": 0, "total": 0}));
        for s in [4, 10, 1] {
            d.add(s);
        }
        assert_eq!(d.json(), json!({"avg": 5, "min": 1, "max": 10, "total": 15}));
    }
}
