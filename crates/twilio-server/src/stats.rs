//! Statistics over HTTP: the window a request asks for, and the JSON of the figures the engine returns.
//!
//! The counting itself (which events count for which scope and window, durations, wait-time splits) is the
//! engine's, in [`engine::cumulative`]; this module reads `Minutes`, `StartDate`, `EndDate`, `TaskChannel` and
//! `SplitByWaitTime` into a [`Window`] and renders the engine's [`RealTimeStats`], [`QueueRealTime`] and
//! [`Tally`] with TaskRouter's field names.

use engine::core::{QueueRealTime, RealTimeStats};
use engine::cumulative::Durations;
pub use engine::cumulative::{Scope, Tally, Window};
use engine::model::Activity;
use engine::Timestamp;
use serde_json::{json, Map, Value};

use super::handle::{Cumulative, WorkersCumulative};
use super::render::{iso8601, parse_iso8601};
use super::ApiResult;

/// Twilio's default window.
const DEFAULT_MINUTES: i64 = 15;

fn bad(param: &str, message: impl Into<String>) -> super::ApiError {
    engine::Error::InvalidParameter { param: param.into(), message: message.into() }.into()
}

/// Reads `Minutes`, `StartDate`, `EndDate`, `TaskChannel` and `SplitByWaitTime`. `StartDate` wins over
/// `Minutes`; without either the window is the 15 minutes before `EndDate` (default now).
pub fn window(params: &[(String, String)], now: Timestamp) -> ApiResult<Window> {
    let param =
        |n: &str| params.iter().find(|(k, _)| k == n).map(|(_, v)| v.trim()).filter(|v| !v.is_empty());
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

/// `{"avg", "min", "max", "total"}` in seconds.
fn durations_json(d: &Durations) -> Value {
    json!({"avg": d.avg(), "min": d.min(), "max": d.max(), "total": d.total()})
}

/// A [`Tally`] as the JSON of TaskRouter's statistics resources.
pub trait TallyJson {
    /// `activity_durations`: one entry per activity of the workspace, zeros where nobody spent time in it.
    fn activity_durations_json<'a>(&self, activities: impl Iterator<Item = &'a Activity>) -> Value;
    /// The `reservations_*` counters.
    fn reservations_json(&self, m: &mut Map<String, Value>);
    /// The cumulative document of a workspace, queue or workflow.
    fn cumulative_json(&self, scope: Scope, window: &Window) -> Map<String, Value>;
}

impl TallyJson for Tally {
    /// `activity_durations`: one entry per activity of the workspace, zeros where nobody spent time in it.
    fn activity_durations_json<'a>(&self, activities: impl Iterator<Item = &'a Activity>) -> Value {
        let list: Vec<Value> = activities
            .map(|a| {
                let d = self.activity_durations.get(&a.sid).cloned().unwrap_or_default();
                json!({
                    "sid": a.sid.to_string(),
                    "friendly_name": a.friendly_name,
                    "avg": d.avg(),
                    "min": d.min(),
                    "max": d.max(),
                    "total": d.total(),
                })
            })
            .collect();
        Value::Array(list)
    }

    /// The `reservations_*` counters.
    fn reservations_json(&self, m: &mut Map<String, Value>) {
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
    fn cumulative_json(&self, scope: Scope, window: &Window) -> Map<String, Value> {
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
        m.insert("split_by_wait_time".into(), splits_json(self));
        m.insert("wait_duration_until_accepted".into(), durations_json(&self.wait_until_accepted));
        m.insert("wait_duration_until_canceled".into(), durations_json(&self.wait_until_canceled));
        if let Scope::Queue(_) = scope {
            m.insert(
                "wait_duration_in_queue_until_accepted".into(),
                durations_json(&self.wait_in_queue_until_accepted),
            );
        }
        m
    }
}

/// `{"5": {"above": {...}, "below": {...}}, ...}`, or null without `SplitByWaitTime`.
fn splits_json(t: &Tally) -> Value {
    if t.splits.is_empty() {
        return Value::Null;
    }
    let side =
        |accepted: u64, canceled: u64| json!({"reservations_accepted": accepted, "tasks_canceled": canceled});
    let m: Map<String, Value> = t
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

/// The real-time document of a workspace or workflow: the engine's figures, field for field.
pub fn realtime(rt: &RealTimeStats) -> Map<String, Value> {
    match serde_json::to_value(rt) {
        Ok(Value::Object(m)) => m,
        // A struct of numbers, strings and string-keyed maps always serializes to an object.
        _ => Map::new(),
    }
}

/// The real-time document of a task queue: the common figures, the queue's workers and its oldest task.
pub fn queue_realtime(q: &QueueRealTime) -> Map<String, Value> {
    let mut m = realtime(&q.stats);
    m.insert("total_available_workers".into(), json!(q.total_available_workers));
    m.insert("total_eligible_workers".into(), json!(q.total_eligible_workers));
    m.insert("longest_relative_task_age_in_queue".into(), json!(q.stats.longest_task_waiting_age));
    m.insert("longest_relative_task_sid_in_queue".into(), json!(q.stats.longest_task_waiting_sid));
    m
}

/// The real-time document of the workers: workers per activity and in all.
pub fn workers_realtime(rt: &RealTimeStats) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("activity_statistics".into(), json!(rt.activity_statistics));
    m.insert("total_workers".into(), json!(rt.total_workers));
    m
}

/// The cumulative document of a workspace, queue or workflow.
pub fn cumulative(c: &Cumulative) -> Map<String, Value> {
    c.tally.cumulative_json(c.scope, &c.window)
}

/// The cumulative document of the workers, or of one worker (which adds `tasks_assigned`).
pub fn workers_cumulative(c: &WorkersCumulative, one_worker: bool) -> Map<String, Value> {
    let mut m = Map::new();
    c.tally.reservations_json(&mut m);
    m.insert("activity_durations".into(), c.tally.activity_durations_json(c.activities.iter()));
    m.insert("start_time".into(), json!(iso8601(c.window.start)));
    m.insert("end_time".into(), json!(iso8601(c.window.end)));
    if one_worker {
        m.insert("tasks_assigned".into(), json!(c.tally.reservations_accepted));
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(params: &[(&str, &str)]) -> Vec<(String, String)> {
        params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    const NOW: Timestamp = Timestamp(1_800_000_000_000);

    #[test]
    fn the_default_window_is_the_last_15_minutes() {
        let w = window(&query(&[]), NOW).unwrap();
        assert_eq!((w.start, w.end), (NOW.plus_millis(-15 * 60_000), NOW));
        let w = window(&query(&[("Minutes", "60")]), NOW).unwrap();
        assert_eq!(w.start, NOW.plus_millis(-3_600_000));
    }

    #[test]
    fn start_date_wins_over_minutes_and_must_precede_the_end() {
        let w = window(
            &query(&[
                ("Minutes", "5"),
                ("StartDate", "2027-01-15T08:00:00Z"),
                ("EndDate", "2027-01-15T09:00:00Z"),
            ]),
            NOW,
        )
        .unwrap();
        assert_eq!(w.end.millis_since(w.start), 3_600_000);
        let err = window(
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
            let err = window(&query(&[(param, value)]), NOW).unwrap_err();
            assert_eq!(err.status, 400);
            assert!(err.message.contains(param), "{param}: {}", err.message);
        }
    }

    #[test]
    fn split_thresholds_are_sorted_and_unique() {
        let w = window(&query(&[("SplitByWaitTime", "30, 5,30")]), NOW).unwrap();
        assert_eq!(w.split_by_wait_time, vec![5, 30]);
    }
}
