//! Cumulative statistics (reference §4.12), counted from the event log over a window.
//!
//! TaskRouter's cumulative statistics cover a window: the last `Minutes` (default 15), or
//! `StartDate`..`EndDate`, optionally one `TaskChannel`, with `SplitByWaitTime` thresholds. Every figure they
//! hold is a count or a duration that some event of reference §9 records (`reservation.accepted` with its
//! `TaskAge`, `task.canceled`, `worker.activity.update` with `WorkerTimeInPreviousActivityMs`, ...), so they
//! are computed from the log rather than from counters kept on the routing path: windows come for free, and
//! the figures survive a restart because the log does. The facade reads the window from the request and
//! renders a [`Tally`] as JSON; the counting is here.
//!
//! Limits, chosen and written down:
//! - Only the events handed in are counted: the actor's retained log (the newest events it keeps in memory,
//!   100,000 by default, reloaded from disk at start). A window reaching further back counts what is retained.
//! - Scope: a queue counts the events whose `TaskQueueSid` is that queue, a workflow those whose
//!   `WorkflowSid` is that workflow, a worker those whose `WorkerSid` is that worker.
//! - Activity durations count every stretch of time in an activity that overlaps the window, clipped to it:
//!   stretches that ended (from `worker.activity.update`) and each worker's current one (up to the window's
//!   end, [`Tally::add_current_activities`]).

use std::collections::BTreeMap;

use crate::model::Worker;
use crate::{Event, EventType, Sid, Timestamp};

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
    /// Whether `at` falls in the window (both ends included).
    pub fn contains(&self, at: Timestamp) -> bool {
        self.start <= at && at <= self.end
    }

    /// Whether the event is of the window's task channel (any without one).
    pub fn channel_matches(&self, e: &Event) -> bool {
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
    /// Counts one duration.
    pub fn add(&mut self, secs: i64) {
        self.min = if self.count == 0 { secs } else { self.min.min(secs) };
        self.max = self.max.max(secs);
        self.total += secs;
        self.count += 1;
    }

    /// The mean, in whole seconds, as Twilio rounds it (down); 0 without any.
    pub fn avg(&self) -> i64 {
        if self.count == 0 {
            0
        } else {
            self.total / self.count
        }
    }

    /// The shortest, in seconds (0 without any).
    pub fn min(&self) -> i64 {
        self.min
    }

    /// The longest, in seconds.
    pub fn max(&self) -> i64 {
        self.max
    }

    /// The sum, in seconds.
    pub fn total(&self) -> i64 {
        self.total
    }
}

/// Counts of one split threshold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Split {
    /// Reservations accepted before the threshold.
    pub below_accepted: u64,
    /// Tasks canceled before the threshold.
    pub below_canceled: u64,
    /// Reservations accepted at or after the threshold.
    pub above_accepted: u64,
    /// Tasks canceled at or after the threshold.
    pub above_canceled: u64,
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
    /// Per `SplitByWaitTime` threshold (seconds, ascending): the counts below and above it.
    pub splits: Vec<(i64, Split)>,
    /// Activity SID -> time spent in it, per stretch.
    pub activity_durations: BTreeMap<Sid, Durations>,
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::CreateTaskParams;
    use crate::core::{Core, CoreConfig};
    use crate::{Command, Prefix, SequentialSids};

    #[test]
    fn durations_summarise_like_twilio() {
        let mut d = Durations::default();
        assert_eq!((d.avg(), d.min(), d.max(), d.total()), (0, 0, 0, 0));
        for s in [4, 10, 1] {
            d.add(s);
        }
        assert_eq!((d.avg(), d.min(), d.max(), d.total()), (5, 1, 10, 15));
    }

    /// The demo workspace, one task created in it, and the events that produced.
    fn demo_with_a_task(at: Timestamp) -> (Sid, Vec<Event>) {
        let mut core =
            Core::new(Sid::new(Prefix::Account, 1), Box::new(SequentialSids::new()), CoreConfig::default());
        let ws = core.seed_demo(at).unwrap_or_else(|e| panic!("seed: {e}"));
        core.take_events();
        let params = CreateTaskParams {
            attributes: Some(r#"{"selected_product":"support"}"#.into()),
            ..Default::default()
        };
        core.apply(at, Command::CreateTask { workspace_sid: ws, params })
            .unwrap_or_else(|e| panic!("create: {e}"));
        (ws, core.take_events())
    }

    #[test]
    fn a_window_counts_the_events_inside_it_and_of_its_workspace_only() {
        let at = Timestamp::from_secs(1_800_000_000);
        let (ws, events) = demo_with_a_task(at);
        let window = |start: Timestamp, end: Timestamp| Window {
            start,
            end,
            task_channel: None,
            split_by_wait_time: vec![],
        };
        let t = tally(events.iter(), ws, Scope::Workspace, &window(at.plus_millis(-1000), at));
        assert_eq!((t.tasks_created, t.tasks_entered_workflow, t.tasks_entered_queue), (1, 1, 1));
        let before =
            tally(events.iter(), ws, Scope::Workspace, &window(at.plus_millis(-2000), at.plus_millis(-1)));
        assert_eq!(before, Tally::default());
        let other = tally(events.iter(), Sid::new(Prefix::Workspace, 999), Scope::Workspace, &window(at, at));
        assert_eq!(other.tasks_created, 0);
    }

    #[test]
    fn scope_and_channel_narrow_what_counts() {
        let at = Timestamp::from_secs(1_800_000_000);
        let (ws, events) = demo_with_a_task(at);
        let queue = events
            .iter()
            .find(|e| e.event_type == EventType::TaskQueueEntered)
            .and_then(|e| e.field("TaskQueueSid"))
            .and_then(|q| Sid::parse(q).ok())
            .unwrap_or_else(|| panic!("the task entered a queue"));
        let window = |channel: Option<&str>| Window {
            start: at,
            end: at,
            task_channel: channel.map(str::to_owned),
            split_by_wait_time: vec![5],
        };
        assert_eq!(tally(events.iter(), ws, Scope::Queue(queue), &window(None)).tasks_entered_queue, 1);
        let elsewhere = Scope::Queue(Sid::new(Prefix::TaskQueue, 999));
        assert_eq!(tally(events.iter(), ws, elsewhere, &window(None)).tasks_entered_queue, 0);
        assert_eq!(tally(events.iter(), ws, Scope::Workspace, &window(Some("default"))).tasks_created, 1);
        assert_eq!(tally(events.iter(), ws, Scope::Workspace, &window(Some("voice"))).tasks_created, 0);
        // Thresholds are kept even when nothing was accepted or canceled.
        let t = tally(events.iter(), ws, Scope::Workspace, &window(None));
        assert_eq!(t.splits, vec![(5, Split::default())]);
    }
}
