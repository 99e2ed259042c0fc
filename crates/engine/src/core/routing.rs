//! Workflows, routing and the task/reservation lifecycles (reference §5, §7) for one workspace.
//!
//! Routing is index-driven: offering a task walks its queue's `available` set (longest idle first) and
//! stops after `max_reserved_workers - pending` reservations; offering a freed worker walks the `waiting` set
//! of each queue it belongs to and stops at the first task it may take. Neither scans all workers or tasks.

use super::space::{parse_attributes, Space, TaskKey};
use super::{check_if_match, Key, Out, Reply, Timer};
use crate::command::*;
use crate::error::Error;
use crate::event::{EventData, EventType, Field, Part};
use crate::expr::{Path, Scope, TargetScope, WorkerCounts, WorkerScope};
use crate::model::*;
use crate::sid::{Prefix, Sid};
use crate::time::Timestamp;
use crate::workflow::{KnownWorker, Target, WorkflowConfig};
use serde_json::Value;
use std::borrow::Cow;
use std::cell::OnceCell;
use std::cmp::Reverse;
use std::sync::Arc;

/// Earliest accepted `VirtualStartTime`: 1900-01-01.
const MIN_VIRTUAL_START_MS: i64 = -2_208_988_800_000;
/// Bound on tasks inspected per queue when offering a freed worker.
const MAX_SCAN: usize = 10_000;

/// Order of candidate tasks across a worker's queues: priority, queue kind, age key, SID.
type Rank = (Reverse<i64>, u8, i64, Sid);

/// A task's attributes as an expression scope, parsed from the text on first use (a task keeps only the
/// text): one per routing decision, so all the workers a decision looks at share one parse, and a target
/// whose expression never reads `task.…` never parses.
pub(crate) struct TaskAttrs<'a> {
    text: &'a str,
    value: OnceCell<Value>,
}

impl<'a> TaskAttrs<'a> {
    pub(crate) fn new(t: &'a Task) -> TaskAttrs<'a> {
        TaskAttrs { text: &t.attributes, value: OnceCell::new() }
    }

    /// The parsed attributes (`Null` if the text were not JSON, which the engine never stores).
    pub(crate) fn value(&self) -> &Value {
        self.value.get_or_init(|| serde_json::from_str(self.text).unwrap_or_default())
    }
}

impl Scope for TaskAttrs<'_> {
    fn resolve(&self, path: &Path) -> Option<Cow<'_, Value>> {
        self.value().resolve(path)
    }
}

/// How a pass over a filter's targets ended.
enum Exit {
    Entered,
    Exhausted { skipped: bool },
}

impl Space {
    // ---- event fields ---------------------------------------------------------------------------------

    /// Appends a task's event fields.
    pub(crate) fn push_task_fields(&self, t: &Task, now: Timestamp, f: &mut EventData) {
        f.sid(Field::TaskSid, t.sid)
            .text(Field::TaskAttributes, &t.attributes)
            .int(Field::TaskAge, t.age(now))
            .int(Field::TaskPriority, t.priority)
            .fixed(Field::TaskAssignmentStatus, t.assignment_status.as_str())
            .sid(Field::TaskChannelSid, t.task_channel_sid)
            .text(Field::TaskChannelUniqueName, &t.task_channel_unique_name)
            .int(Field::TaskDateCreated, t.date_created.secs())
            .int(Field::TaskVersion, t.version as i64)
            .int(Field::TaskVirtualStartTime, t.virtual_start_time.secs())
            .bool(Field::TaskIgnoreCapacity, t.ignore_capacity);
        if let Some(q) = t.task_queue_sid {
            f.sid(Field::TaskQueueSid, q);
            if let Some(n) = &t.task_queue_friendly_name {
                f.text(Field::TaskQueueName, n);
            }
            if let Some(d) = t.task_queue_entered_date {
                f.int(Field::TaskQueueEnteredDate, d.secs());
            }
            if let Some(q) = self.queues.get(&q) {
                f.text(Field::TaskQueueTargetExpression, &q.target_workers);
            }
        }
        if let Some(w) = t.workflow_sid {
            f.sid(Field::WorkflowSid, w);
            if let Some(n) = &t.workflow_friendly_name {
                f.text(Field::WorkflowName, n);
            }
        }
        if let Some(r) = &t.reason {
            match t.assignment_status {
                TaskStatus::Canceled => {
                    f.text(Field::TaskCanceledReason, r);
                }
                TaskStatus::Completed => {
                    f.text(Field::TaskCompletedReason, r);
                }
                _ => {}
            }
        }
    }

    /// A payload sized for a task's fields (11 fixed, up to 7 optional) plus `extra` more.
    fn task_data(t: &Task, extra: usize) -> EventData {
        EventData::with_capacity(24 + extra, 256 + t.attributes.len())
    }

    pub(crate) fn emit_task(
        &self,
        out: &mut Out,
        now: Timestamp,
        ty: EventType,
        t: &Task,
        description: &[Part<'_>],
    ) {
        let mut data = Self::task_data(t, 0);
        data.desc(description);
        self.push_task_fields(t, now, &mut data);
        out.emit(&self.ws, now, ty, "task", t.sid, data);
    }

    fn emit_task_sid(&self, out: &mut Out, now: Timestamp, ty: EventType, t: Sid, description: &[Part<'_>]) {
        if let Some(task) = self.tasks.get(&t) {
            self.emit_task(out, now, ty, task, description);
        }
    }

    pub(crate) fn emit_reservation(&self, out: &mut Out, now: Timestamp, ty: EventType, r: Sid) {
        let Some(res) = self.reservations.get(&r) else { return };
        let what = ty.as_str().trim_start_matches("reservation.");
        // Worker fields and the two reservation fields follow the task's.
        let extra = super::space::WORKER_FIELDS + 2;
        let task = self.tasks.get(&res.task_sid);
        let mut data = match task {
            Some(t) => Self::task_data(t, extra),
            None => EventData::with_capacity(16, 128),
        };
        data.desc(&[
            Part::S("Reservation "),
            Part::Sid(r),
            Part::S(" "),
            Part::S(what),
            Part::S(" for Worker "),
            Part::Sid(res.worker_sid),
        ]);
        match task {
            Some(t) => self.push_task_fields(t, now, &mut data),
            None => {
                data.sid(Field::TaskSid, res.task_sid);
            }
        }
        match self.workers.get(&res.worker_sid) {
            Some(w) => self.push_worker_fields(w, &mut data),
            None => {
                data.sid(Field::WorkerSid, res.worker_sid);
            }
        }
        data.sid(Field::ReservationSid, r).int(Field::ReservationVersion, res.version as i64);
        out.emit(&self.ws, now, ty, "reservation", r, data);
    }

    // ---- indexes --------------------------------------------------------------------------------------

    pub(crate) fn pending_reservations(&self, task: Sid) -> impl Iterator<Item = &Reservation> + '_ {
        self.task_reservations
            .get(&task)
            .into_iter()
            .flatten()
            .filter_map(|r| self.reservations.get(r))
            .filter(|r| r.reservation_status == ReservationStatus::Pending)
    }

    fn task_key(t: &Task, q: &TaskQueue) -> TaskKey {
        let age = match q.task_order {
            QueueOrder::Fifo => t.virtual_start_time.0,
            QueueOrder::Lifo => t.virtual_start_time.0.saturating_neg(),
        };
        (Reverse(t.priority), age, t.sid)
    }

    fn wants_more(&self, t: &Task) -> Option<(Sid, usize)> {
        if !matches!(t.assignment_status, TaskStatus::Pending | TaskStatus::Reserved) {
            return None;
        }
        let q = t.task_queue_sid?;
        let queue = self.queues.get(&q)?;
        let pending = self.pending_reservations(t.sid).count();
        let max = queue.max_reserved_workers as usize;
        (pending < max).then_some((q, max - pending))
    }

    #[cfg(test)]
    pub(crate) fn wants_more_pub(&self, t: &Task) -> bool {
        self.wants_more(t).is_some()
    }

    /// Puts a task into (or out of) its queue's waiting set, per its current state.
    pub(crate) fn reindex_task(&mut self, task: Sid) {
        self.unindex_task(task);
        let Some(t) = self.tasks.get(&task) else { return };
        let Some((q, _)) = self.wants_more(t) else { return };
        let Some(queue) = self.queues.get(&q) else { return };
        let key = Self::task_key(t, queue);
        if let Some(ix) = self.qidx.get_mut(&q) {
            ix.waiting.insert(key);
            if let Some(t) = self.tasks.get_mut(&task) {
                t.waiting = Some(Waiting { queue: q, key: (key.0, key.1) });
            }
        }
    }

    /// Takes a task out of the waiting index it is in, if any.
    fn unindex_task(&mut self, task: Sid) {
        let Some(w) = self.tasks.get_mut(&task).and_then(|t| t.waiting.take()) else { return };
        if let Some(ix) = self.qidx.get_mut(&w.queue) {
            ix.waiting.remove(&(w.key.0, w.key.1, task));
        }
    }

    fn current_target<'a>(&self, cfg: &'a WorkflowConfig, t: &Task) -> Option<&'a Target> {
        let pos = t.routing?;
        match pos.filter {
            Some(f) => cfg.filters.get(f as usize)?.targets.get(pos.target as usize),
            None => cfg.default_filter.as_ref(),
        }
    }

    fn config_of(&self, t: &Task) -> Option<Arc<WorkflowConfig>> {
        t.workflow_sid.and_then(|w| self.workflows.get(&w)).map(|w| w.config.clone())
    }

    /// `None`: any worker; `Some(None)`: nobody (unresolvable known worker); `Some(Some(w))`: only `w`.
    fn worker_constraint(&self, t: &Task, attrs: &TaskAttrs, target: Option<&Target>) -> Option<Option<Sid>> {
        if let Some(rt) = t.routing_target.filter(|s| s.prefix() == Prefix::Worker) {
            return Some(Some(rt));
        }
        let known = target?.known_worker.as_ref()?;
        Some(match known {
            KnownWorker::Sid(r) => r
                .resolve(attrs.value())
                .and_then(|s| Sid::parse_as(&s, Prefix::Worker).ok())
                .filter(|s| self.workers.contains_key(s)),
            KnownWorker::FriendlyName(r) => {
                r.resolve(attrs.value()).and_then(|n| self.worker_names.get(&n.to_lowercase()).copied())
            }
        })
    }

    /// Whether a worker can take one more task: single-tasking, no active reservation; multitasking, free
    /// capacity on `channel` (on any channel when `None`).
    pub(crate) fn has_capacity(&self, worker: Sid, channel: Option<Sid>) -> bool {
        if !self.ws.multi_task_enabled {
            return !self.worker_reservations.get(&worker).is_some_and(|v| {
                v.iter().any(|r| self.reservations.get(r).is_some_and(|r| r.reservation_status.is_active()))
            });
        }
        let free = |wc: &Sid| {
            self.worker_channels.get(wc).is_some_and(|wc| {
                wc.available && wc.assigned_tasks + wc.reserved_tasks < wc.configured_capacity
            })
        };
        match channel {
            Some(c) => self.channel_of.get(&(worker, c)).is_some_and(free),
            // The worker's own list, read once, rather than one lookup of the worker per workspace channel.
            None => {
                self.channel_of.of(worker).iter().any(|(c, wc)| self.channels.contains_key(c) && free(wc))
            }
        }
    }

    fn eligible(&self, t: &Task, attrs: &TaskAttrs, target: Option<&Target>, w: &Worker) -> bool {
        if self.pending_reservations(t.sid).any(|r| r.worker_sid == w.sid) {
            return false;
        }
        let bypass = t.ignore_capacity && t.routing_target == Some(w.sid);
        if !bypass && (!w.available || !self.has_capacity(w.sid, Some(t.task_channel_sid))) {
            return false;
        }
        if let Some(expr) = target.and_then(|t| t.expression.as_ref()) {
            let sid = w.sid.to_string();
            let act = w.activity_sid.to_string();
            let ws = WorkerScope {
                attributes: &w.attributes_value,
                sid: &sid,
                friendly_name: &w.friendly_name,
                activity_sid: &act,
                activity_name: &w.activity_name,
            };
            let scope = TargetScope { task: attrs, worker: &ws };
            if !expr.eval(&scope) {
                return false;
            }
        }
        true
    }

    // ---- routing --------------------------------------------------------------------------------------

    /// Offers a task to eligible workers; returns how many reservations were created.
    pub(crate) fn route_task(&mut self, out: &mut Out, now: Timestamp, task: Sid) -> usize {
        let Some(t) = self.tasks.get(&task) else { return 0 };
        let Some((q, need)) = self.wants_more(t) else { return 0 };
        let cfg = self.config_of(t);
        let target = cfg.as_deref().and_then(|c| self.current_target(c, t));
        let Some(ix) = self.qidx.get(&q) else { return 0 };
        let attrs = TaskAttrs::new(t);
        let mut chosen: Vec<Sid> = Vec::new();
        match self.worker_constraint(t, &attrs, target) {
            Some(only) => {
                if let Some(w) = only.and_then(|w| self.workers.get(&w)) {
                    let member = ix.members.contains(&w.sid) || t.routing_target == Some(w.sid);
                    if member && self.eligible(t, &attrs, target, w) {
                        chosen.push(w.sid);
                    }
                }
            }
            None => match target.and_then(|t| t.order_by.as_ref()) {
                Some(order) => {
                    let mut all: Vec<&Worker> = ix
                        .available
                        .iter()
                        .filter_map(|(_, w)| self.workers.get(w))
                        .filter(|w| self.eligible(t, &attrs, target, w))
                        .collect();
                    // Stable sort keeps longest-idle order among ties.
                    all.sort_by(|a, b| order.compare(&a.attributes_value, &b.attributes_value));
                    chosen.extend(all.into_iter().take(need).map(|w| w.sid));
                }
                None => {
                    for (_, w) in &ix.available {
                        if chosen.len() >= need {
                            break;
                        }
                        if let Some(worker) = self.workers.get(w) {
                            if self.eligible(t, &attrs, target, worker) {
                                chosen.push(*w);
                            }
                        }
                    }
                }
            },
        }
        let mut made = 0;
        for w in chosen {
            if self.tasks.get(&task).and_then(|t| self.wants_more(t)).is_none() {
                break;
            }
            if self.create_reservation(out, now, task, w) {
                made += 1;
            }
        }
        made
    }

    /// Offers waiting tasks to a worker that may have freed up.
    pub(crate) fn route_worker(&mut self, out: &mut Out, now: Timestamp, worker: Sid) {
        for _ in 0..64 {
            let Some(w) = self.workers.get(&worker) else { return };
            if !w.available {
                return;
            }
            if !self.has_capacity(worker, None) {
                return;
            }
            let queues = self.worker_queues.get(&worker).map(|v| v.as_slice()).unwrap_or(&[]);
            let mut best: Option<(Rank, Sid)> = None;
            for q in queues {
                let (Some(ix), Some(queue)) = (self.qidx.get(q), self.queues.get(q)) else { continue };
                let kind = u8::from(queue.task_order != self.ws.prioritize_queue_order);
                for key in ix.waiting.iter().take(MAX_SCAN) {
                    let rank = (key.0, kind, key.1, key.2);
                    if best.as_ref().is_some_and(|(b, _)| *b <= rank) {
                        break;
                    }
                    let Some(t) = self.tasks.get(&key.2) else { continue };
                    let cfg = self.config_of(t);
                    let target = cfg.as_deref().and_then(|c| self.current_target(c, t));
                    let attrs = TaskAttrs::new(t);
                    match self.worker_constraint(t, &attrs, target) {
                        Some(Some(only)) if only == worker => {}
                        Some(_) => continue,
                        None => {}
                    }
                    if self.eligible(t, &attrs, target, w) {
                        best = Some((rank, t.sid));
                        break;
                    }
                }
            }
            let Some((_, task)) = best else { return };
            if !self.create_reservation(out, now, task, worker) {
                return;
            }
        }
    }

    /// Creates a pending reservation (reference §6). Returns false if the task was canceled instead (max
    /// assignment count).
    fn create_reservation(&mut self, out: &mut Out, now: Timestamp, task: Sid, worker: Sid) -> bool {
        let wsid = self.ws.sid;
        let max = out.config.max_assignment_count;
        let Some(t) = self.tasks.get_mut(&task) else { return false };
        if t.assignment_status == TaskStatus::Pending {
            if t.assignment_count >= max {
                let _ = self.cancel_task(out, now, task, "Max assignment count exceeded".into());
                return false;
            }
            t.assignment_count += 1;
        }
        t.assignment_status = TaskStatus::Reserved;
        t.version += 1;
        t.date_updated = now;
        let channel = t.task_channel_sid;
        let queue = t.task_queue_sid;
        let wf = t.workflow_sid;
        out.touch(Key::Task(wsid, task));
        let timeout_s =
            wf.and_then(|w| self.workflows.get(&w)).map(|w| w.task_reservation_timeout).unwrap_or(120);
        let Some(w) = self.workers.get(&worker) else { return false };
        let sid = out.sid(Prefix::Reservation);
        let timeout_at = now.plus_secs(i64::from(timeout_s));
        let mut r = Reservation {
            account_sid: out.account_sid,
            workspace_sid: wsid,
            sid,
            task_sid: task,
            worker_sid: worker,
            worker_name: w.friendly_name.clone(),
            reservation_status: ReservationStatus::Pending,
            date_created: now,
            date_updated: now,
            version: 1,
            task_queue_sid: queue,
            task_channel_sid: channel,
            timeout_at: Some(timeout_at),
            worker_previous_activity_sid: None,
        };
        let reservation_activity = if self.ws.multi_task_enabled {
            None
        } else {
            queue.and_then(|q| self.queues.get(&q)).and_then(|q| q.reservation_activity_sid)
        };
        if reservation_activity.is_some() {
            r.worker_previous_activity_sid = Some(w.activity_sid);
        }
        self.reservations.insert(sid, r);
        self.task_reservations.entry(task).or_default().push(sid);
        self.worker_reservations.entry(worker).or_default().push(sid);
        out.touch(Key::Reservation(wsid, sid));
        out.timers.set(Timer::ReservationTimeout(wsid, sid), timeout_at);
        if self.ws.multi_task_enabled {
            if let Some(wc) =
                self.channel_of.get(&(worker, channel)).and_then(|c| self.worker_channels.get_mut(c))
            {
                wc.reserved_tasks += 1;
                out.touch(Key::WorkerChannel(wsid, wc.sid));
            }
        }
        if let Some(w) = self.workers.get_mut(&worker) {
            w.last_idle_at = now;
        }
        self.refresh_availability(worker);
        self.reindex_task(task);
        self.emit_reservation(out, now, EventType::ReservationCreated, sid);
        if let Some(a) = reservation_activity {
            self.set_worker_activity(out, now, worker, a);
        }
        true
    }

    /// Ends a pending reservation without acceptance; the task goes back to pending when none is left.
    fn end_pending(
        &mut self,
        out: &mut Out,
        now: Timestamp,
        r: Sid,
        status: ReservationStatus,
        ty: EventType,
    ) {
        let wsid = self.ws.sid;
        let Some(res) = self.reservations.get_mut(&r) else { return };
        if res.reservation_status != ReservationStatus::Pending {
            return;
        }
        res.reservation_status = status;
        res.version += 1;
        res.date_updated = now;
        res.timeout_at = None;
        let (task, worker, channel) = (res.task_sid, res.worker_sid, res.task_channel_sid);
        out.timers.cancel(Timer::ReservationTimeout(wsid, r));
        out.touch(Key::Reservation(wsid, r));
        if self.ws.multi_task_enabled {
            if let Some(wc) =
                self.channel_of.get(&(worker, channel)).and_then(|c| self.worker_channels.get_mut(c))
            {
                wc.reserved_tasks = wc.reserved_tasks.saturating_sub(1);
                out.touch(Key::WorkerChannel(wsid, wc.sid));
            }
        }
        let none_left = self.pending_reservations(task).next().is_none();
        if let Some(t) = self.tasks.get_mut(&task) {
            if none_left && t.assignment_status == TaskStatus::Reserved {
                t.assignment_status = TaskStatus::Pending;
                t.version += 1;
                t.date_updated = now;
                out.touch(Key::Task(wsid, task));
            }
        }
        self.reindex_task(task);
        self.refresh_availability(worker);
        self.emit_reservation(out, now, ty, r);
        out.route_tasks.push_back((wsid, task));
        out.route_workers.push_back((wsid, worker));
    }

    /// Reservation timeout (timer): worker to the workspace's timeout activity, task re-offered.
    pub(crate) fn reservation_timed_out(&mut self, out: &mut Out, now: Timestamp, r: Sid) {
        let Some(res) = self.reservations.get(&r) else { return };
        if res.reservation_status != ReservationStatus::Pending {
            return;
        }
        let worker = res.worker_sid;
        self.end_pending(out, now, r, ReservationStatus::Timeout, EventType::ReservationTimeout);
        let timeout_activity = self.ws.timeout_activity_sid;
        self.set_worker_activity(out, now, worker, timeout_activity);
    }

    /// Reject: worker to `activity`, else (when `use_previous`) back to its activity before the reservation.
    pub(crate) fn reject_reservation(
        &mut self,
        out: &mut Out,
        now: Timestamp,
        r: Sid,
        activity: Option<Sid>,
        use_previous: bool,
    ) {
        let Some(res) = self.reservations.get(&r) else { return };
        let worker = res.worker_sid;
        let previous = res.worker_previous_activity_sid;
        self.end_pending(out, now, r, ReservationStatus::Rejected, EventType::ReservationRejected);
        let target = activity.or(if use_previous { previous } else { None });
        if let Some(a) = target {
            self.set_worker_activity(out, now, worker, a);
        }
    }

    /// Cancels (or rescinds) every pending reservation of a task, reverting reservation-activity switches.
    fn withdraw_pending(&mut self, out: &mut Out, now: Timestamp, task: Sid, status: ReservationStatus) {
        let ty = if status == ReservationStatus::Rescinded {
            EventType::ReservationRescinded
        } else {
            EventType::ReservationCanceled
        };
        let pending: Vec<(Sid, Sid, Option<Sid>)> = self
            .pending_reservations(task)
            .map(|r| (r.sid, r.worker_sid, r.worker_previous_activity_sid))
            .collect();
        for (r, worker, prev) in pending {
            self.end_pending(out, now, r, status, ty);
            if let Some(a) = prev {
                self.set_worker_activity(out, now, worker, a);
            }
        }
    }

    /// Accepts a pending reservation: task assigned, others rescinded (reference §5.4).
    pub(crate) fn accept(&mut self, out: &mut Out, now: Timestamp, r: Sid) -> Result<(), Error> {
        self.check_pending(r, "accept")?;
        let wsid = self.ws.sid;
        let Some(res) = self.reservations.get_mut(&r) else { return Err(Error::not_found(r.to_string())) };
        res.reservation_status = ReservationStatus::Accepted;
        res.version += 1;
        res.date_updated = now;
        res.timeout_at = None;
        let (task, worker, channel, queue) =
            (res.task_sid, res.worker_sid, res.task_channel_sid, res.task_queue_sid);
        out.timers.cancel(Timer::ReservationTimeout(wsid, r));
        out.touch(Key::Reservation(wsid, r));
        if self.ws.multi_task_enabled {
            if let Some(wc) =
                self.channel_of.get(&(worker, channel)).and_then(|c| self.worker_channels.get_mut(c))
            {
                wc.reserved_tasks = wc.reserved_tasks.saturating_sub(1);
                wc.assigned_tasks += 1;
                out.touch(Key::WorkerChannel(wsid, wc.sid));
            }
        }
        if let Some(t) = self.tasks.get_mut(&task) {
            t.assignment_status = TaskStatus::Assigned;
            t.version += 1;
            t.date_updated = now;
            t.routing = None;
            t.assigned_at = Some(now);
            out.touch(Key::Task(wsid, task));
        }
        out.timers.cancel(Timer::TargetTimeout(wsid, task));
        out.timers.set(Timer::TaskTtl(wsid, task), now.plus_millis(out.config.assigned_task_ttl_ms));
        self.reindex_task(task);
        self.emit_reservation(out, now, EventType::ReservationAccepted, r);
        self.withdraw_pending(out, now, task, ReservationStatus::Rescinded);
        if !self.ws.multi_task_enabled {
            if let Some(a) = queue.and_then(|q| self.queues.get(&q)).and_then(|q| q.assignment_activity_sid) {
                self.set_worker_activity(out, now, worker, a);
            }
        }
        Ok(())
    }

    pub(crate) fn check_pending(&self, r: Sid, action: &str) -> Result<(), Error> {
        let res = self.reservations.get(&r).ok_or_else(|| Error::not_found(r.to_string()))?;
        match res.reservation_status {
            ReservationStatus::Pending => Ok(()),
            s @ (ReservationStatus::Rescinded | ReservationStatus::Canceled | ReservationStatus::Timeout) => {
                Err(Error::Gone {
                    message: format!(
                        "Cannot {action} reservation {r} in workspace {} because it was {}; it is no longer available",
                        self.ws.sid,
                        s.as_str()
                    ),
                })
            }
            s => Err(Error::illegal(format!(
                "Cannot {action} reservation {r} in workspace {} for account {} because it is {}, not pending",
                self.ws.sid,
                self.ws.account_sid,
                s.as_str()
            ))),
        }
    }

    fn illegal_task(&self, verb: &str, t: Sid, why: &str) -> Error {
        Error::illegal(format!(
            "Cannot {verb} task {t} in workspace {} for account {} because {why}",
            self.ws.sid, self.ws.account_sid
        ))
    }

    /// Task and its accepted reservation to wrapping.
    pub(crate) fn wrap_task(&mut self, out: &mut Out, now: Timestamp, task: Sid) -> Result<(), Error> {
        let t = self.tasks.get(&task).ok_or_else(|| Error::not_found(self.path(format!("Tasks/{task}"))))?;
        if t.assignment_status != TaskStatus::Assigned {
            return Err(Error::illegal(format!(
                "Cannot wrap up a task {task} in workspace {} for account {} because it's not currently assigned",
                self.ws.sid, self.ws.account_sid
            )));
        }
        let wsid = self.ws.sid;
        if let Some(t) = self.tasks.get_mut(&task) {
            t.assignment_status = TaskStatus::Wrapping;
            t.version += 1;
            t.date_updated = now;
        }
        out.touch(Key::Task(wsid, task));
        self.emit_task_sid(
            out,
            now,
            EventType::TaskWrapup,
            task,
            &[Part::S("Task "), Part::Sid(task), Part::S(" wrapping up")],
        );
        for r in self.task_reservations.get(&task).cloned().unwrap_or_default() {
            if let Some(res) = self.reservations.get_mut(&r) {
                if res.reservation_status == ReservationStatus::Accepted {
                    res.reservation_status = ReservationStatus::Wrapping;
                    res.version += 1;
                    res.date_updated = now;
                    out.touch(Key::Reservation(wsid, r));
                    self.emit_reservation(out, now, EventType::ReservationWrapup, r);
                }
            }
        }
        Ok(())
    }

    /// Task and its reservation to completed; capacity freed; purge scheduled.
    pub(crate) fn complete_task(
        &mut self,
        out: &mut Out,
        now: Timestamp,
        task: Sid,
        reason: Option<String>,
    ) -> Result<(), Error> {
        let t = self.tasks.get(&task).ok_or_else(|| Error::not_found(self.path(format!("Tasks/{task}"))))?;
        if !matches!(t.assignment_status, TaskStatus::Assigned | TaskStatus::Wrapping) {
            return Err(self.illegal_task("complete", task, "it is not assigned or wrapping."));
        }
        let wsid = self.ws.sid;
        if let Some(t) = self.tasks.get_mut(&task) {
            t.assignment_status = TaskStatus::Completed;
            t.reason = reason.map(String::into_boxed_str).or_else(|| t.reason.clone());
            t.version += 1;
            t.date_updated = now;
            t.terminal_at = Some(now);
        }
        out.touch(Key::Task(wsid, task));
        out.timers.cancel(Timer::TaskTtl(wsid, task));
        out.timers.set(Timer::Purge(wsid, task), now.plus_millis(out.config.terminal_task_purge_ms));
        self.emit_task_sid(
            out,
            now,
            EventType::TaskCompleted,
            task,
            &[Part::S("Task "), Part::Sid(task), Part::S(" completed")],
        );
        for r in self.task_reservations.get(&task).cloned().unwrap_or_default() {
            let Some(res) = self.reservations.get_mut(&r) else { continue };
            if matches!(res.reservation_status, ReservationStatus::Accepted | ReservationStatus::Wrapping) {
                res.reservation_status = ReservationStatus::Completed;
                res.version += 1;
                res.date_updated = now;
                let (worker, channel) = (res.worker_sid, res.task_channel_sid);
                out.touch(Key::Reservation(wsid, r));
                self.release_assigned(out, worker, channel);
                self.emit_reservation(out, now, EventType::ReservationCompleted, r);
                if let Some(w) = self.workers.get_mut(&worker) {
                    w.last_idle_at = now;
                }
                self.refresh_availability(worker);
                out.route_workers.push_back((wsid, worker));
            }
        }
        Ok(())
    }

    fn release_assigned(&mut self, out: &mut Out, worker: Sid, channel: Sid) {
        if let Some(wc) =
            self.channel_of.get(&(worker, channel)).and_then(|c| self.worker_channels.get_mut(c))
        {
            wc.assigned_tasks = wc.assigned_tasks.saturating_sub(1);
            out.touch(Key::WorkerChannel(self.ws.sid, wc.sid));
        }
    }

    /// Cancels a pending or reserved task.
    pub(crate) fn cancel_task(
        &mut self,
        out: &mut Out,
        now: Timestamp,
        task: Sid,
        reason: String,
    ) -> Result<(), Error> {
        let t = self.tasks.get(&task).ok_or_else(|| Error::not_found(self.path(format!("Tasks/{task}"))))?;
        if !matches!(t.assignment_status, TaskStatus::Pending | TaskStatus::Reserved) {
            return Err(self.illegal_task("cancel", task, "it is not pending or reserved."));
        }
        let wsid = self.ws.sid;
        // Mark canceled first so the withdrawn reservations do not put it back to pending.
        if let Some(t) = self.tasks.get_mut(&task) {
            t.assignment_status = TaskStatus::Canceled;
            t.reason = Some(reason.as_str().into());
            t.version += 1;
            t.date_updated = now;
            t.terminal_at = Some(now);
            t.routing = None;
        }
        self.withdraw_pending(out, now, task, ReservationStatus::Canceled);
        self.reindex_task(task);
        for timer in [Timer::TargetTimeout(wsid, task), Timer::TaskTtl(wsid, task)] {
            out.timers.cancel(timer);
        }
        out.timers.set(Timer::Purge(wsid, task), now.plus_millis(out.config.terminal_task_purge_ms));
        out.touch(Key::Task(wsid, task));
        self.emit_task_sid(
            out,
            now,
            EventType::TaskCanceled,
            task,
            &[Part::S("Task "), Part::Sid(task), Part::S(" canceled: "), Part::S(&reason)],
        );
        Ok(())
    }

    /// Task TTL timer: a waiting task is canceled; an assigned or wrapping one (24 h cap) is system-deleted.
    pub(crate) fn task_ttl(&mut self, out: &mut Out, now: Timestamp, task: Sid) {
        match self.tasks.get(&task).map(|t| t.assignment_status) {
            Some(TaskStatus::Pending | TaskStatus::Reserved) => {
                let _ = self.cancel_task(out, now, task, "Task TTL Exceeded".into());
            }
            Some(TaskStatus::Assigned | TaskStatus::Wrapping) => {
                self.drop_task(out, now, task, EventType::TaskSystemDeleted);
            }
            _ => {}
        }
    }

    /// Terminal task purge timer: the task and its reservations disappear (no event, as Twilio).
    pub(crate) fn purge_task(&mut self, out: &mut Out, task: Sid) {
        let wsid = self.ws.sid;
        if !self.tasks.get(&task).is_some_and(|t| t.assignment_status.is_terminal()) {
            return;
        }
        self.remove_task(out, task);
        out.touch(Key::Task(wsid, task));
    }

    fn remove_task(&mut self, out: &mut Out, task: Sid) {
        let wsid = self.ws.sid;
        self.unindex_task(task);
        let mut workers = Vec::new();
        for r in self.task_reservations.remove(&task).unwrap_or_default() {
            if let Some(res) = self.reservations.remove(&r) {
                if let Some(list) = self.worker_reservations.get_mut(&res.worker_sid) {
                    list.retain(|x| *x != r);
                }
                workers.push(res.worker_sid);
            }
            out.timers.cancel(Timer::ReservationTimeout(wsid, r));
            out.touch(Key::Reservation(wsid, r));
        }
        for w in workers {
            self.refresh_availability(w);
        }
        self.tasks.remove(&task);
        for timer in [Timer::TargetTimeout(wsid, task), Timer::TaskTtl(wsid, task), Timer::Purge(wsid, task)]
        {
            out.timers.cancel(timer);
        }
    }

    // ---- workflow ------------------------------------------------------------------------------------

    /// Runs a task through its workflow from `start_filter`. `timed_out`: a filter already timed out (the
    /// default filter is then no longer a fallback). `parsed`: the task's attributes if the caller has them
    /// parsed already (else they are parsed here, once, if a filter is evaluated).
    #[allow(clippy::too_many_arguments)]
    fn enter_workflow(
        &mut self,
        out: &mut Out,
        now: Timestamp,
        task: Sid,
        start_filter: usize,
        mut base: Timestamp,
        mut timed_out: bool,
        mut parsed: Option<Value>,
    ) {
        let Some(t) = self.tasks.get(&task) else { return };
        let Some(cfg) = self.config_of(t) else { return };
        let mut skipped_last = false;
        for fi in start_filter..cfg.filters.len() {
            if parsed.is_none() {
                parsed = self.tasks.get(&task).map(|t| t.attributes_value());
            }
            let matches = parsed.as_ref().is_some_and(|v| cfg.filters[fi].expression.eval(v));
            if !matches {
                continue;
            }
            let desc = &[
                Part::S("Task "),
                Part::Sid(task),
                Part::S(" matched filter '"),
                Part::S(&cfg.filters[fi].name),
                Part::S("'"),
            ];
            self.emit_task_sid(out, now, EventType::WorkflowTargetMatched, task, desc);
            match self.enter_targets(out, now, task, &cfg, Some(fi), 0, base) {
                Exit::Entered => return,
                Exit::Exhausted { skipped } => {
                    skipped_last = skipped;
                    timed_out |= !skipped;
                    base = now;
                }
            }
        }
        if !timed_out && cfg.default_filter.is_some() {
            if let Exit::Entered = self.enter_targets(out, now, task, &cfg, None, 0, base) {
                return;
            }
        }
        if skipped_last {
            self.emit_task_sid(
                out,
                now,
                EventType::WorkflowSkipped,
                task,
                &[Part::S("Task "), Part::Sid(task), Part::S(" skipped the workflow")],
            );
        } else {
            self.emit_task_sid(
                out,
                now,
                EventType::WorkflowTimeout,
                task,
                &[Part::S("Task "), Part::Sid(task), Part::S(" timed out of the workflow")],
            );
        }
        let _ = self.cancel_task(out, now, task, "Workflow Timeout".into());
    }

    #[allow(clippy::too_many_arguments)]
    fn enter_targets(
        &mut self,
        out: &mut Out,
        now: Timestamp,
        task: Sid,
        cfg: &WorkflowConfig,
        filter: Option<usize>,
        start: usize,
        base: Timestamp,
    ) -> Exit {
        let wsid = self.ws.sid;
        let targets: &[Target] = match filter {
            Some(f) => match cfg.filters.get(f) {
                Some(f) => &f.targets,
                None => return Exit::Exhausted { skipped: false },
            },
            None => cfg.default_filter.as_slice(),
        };
        let mut skipped = false;
        for (ti, target) in targets.iter().enumerate().skip(start) {
            let cumulative: i64 = targets[..=ti].iter().filter_map(|t| t.timeout).sum();
            let timeout_at = target.timeout.map(|_| base.plus_secs(cumulative));
            if timeout_at.is_some_and(|at| at <= now) {
                skipped = false;
                continue;
            }
            let Some(queue) = self.queues.get(&target.queue) else { continue };
            let qname = self.names.get(&queue.friendly_name);
            let Some(t) = self.tasks.get_mut(&task) else { return Exit::Entered };
            if let Some(p) = target.priority {
                t.priority = p;
            }
            let entered = t.task_queue_sid != Some(target.queue);
            t.task_queue_sid = Some(target.queue);
            t.task_queue_friendly_name = Some(qname);
            if entered || t.task_queue_entered_date.is_none() {
                t.task_queue_entered_date = Some(now);
            }
            let index = |i: usize| u32::try_from(i).unwrap_or(u32::MAX);
            t.routing = Some(RoutingPos {
                filter: filter.map(index),
                target: index(ti),
                timeout_at,
                filter_entered_at: base,
            });
            t.version += 1;
            t.date_updated = now;
            out.touch(Key::Task(wsid, task));
            self.reindex_task(task);
            self.emit_task_sid(
                out,
                now,
                EventType::TaskQueueEntered,
                task,
                &[Part::S("Task "), Part::Sid(task), Part::S(" entered queue "), Part::Sid(target.queue)],
            );
            let made = self.route_task(out, now, task);
            if made == 0 {
                if let Some(skip) = &target.skip_if {
                    let counts = self.worker_counts(target.queue);
                    if skip.eval(&counts) {
                        skipped = true;
                        if let Some(t) = self.tasks.get_mut(&task) {
                            t.routing = None;
                        }
                        self.reindex_task(task);
                        continue;
                    }
                }
            }
            if let Some(at) = timeout_at {
                out.timers.set(Timer::TargetTimeout(wsid, task), at);
            } else {
                out.timers.cancel(Timer::TargetTimeout(wsid, task));
            }
            return Exit::Entered;
        }
        Exit::Exhausted { skipped }
    }

    /// `skip_if` counters for a queue (members by activity).
    fn worker_counts(&self, queue: Sid) -> WorkerCounts {
        let mut counts = WorkerCounts::default();
        let Some(ix) = self.qidx.get(&queue) else { return counts };
        let mut by: std::collections::BTreeMap<String, u64> = Default::default();
        for w in ix.members.iter().filter_map(|w| self.workers.get(w)) {
            if w.available {
                counts.available += 1;
            } else {
                counts.unavailable += 1;
            }
            *by.entry(w.activity_sid.to_string()).or_default() += 1;
        }
        counts.by_activity = by.into_iter().collect();
        counts
    }

    /// Workflow target timeout (timer): withdraw pending reservations, move to the next target or filter.
    pub(crate) fn target_timed_out(&mut self, out: &mut Out, now: Timestamp, task: Sid) {
        let Some(t) = self.tasks.get(&task) else { return };
        if !matches!(t.assignment_status, TaskStatus::Pending | TaskStatus::Reserved) {
            return;
        }
        let Some(pos) = t.routing else { return };
        let Some(cfg) = self.config_of(t) else { return };
        let queue = t.task_queue_sid;
        self.withdraw_pending(out, now, task, ReservationStatus::Canceled);
        self.emit_task_sid(
            out,
            now,
            EventType::TaskQueueTimeout,
            task,
            &[Part::S("Task "), Part::Sid(task), Part::S(" timed out of its queue")],
        );
        let filter = pos.filter.map(|f| f as usize);
        match self.enter_targets(out, now, task, &cfg, filter, pos.target as usize + 1, pos.filter_entered_at)
        {
            Exit::Entered => {
                if self.tasks.get(&task).and_then(|t| t.task_queue_sid) != queue {
                    self.emit_task_sid(
                        out,
                        now,
                        EventType::TaskQueueMoved,
                        task,
                        &[Part::S("Task "), Part::Sid(task), Part::S(" moved queue")],
                    );
                }
            }
            Exit::Exhausted { .. } => {
                let next = filter.map(|f| f + 1).unwrap_or(usize::MAX);
                if let Some(t) = self.tasks.get_mut(&task) {
                    t.routing = None;
                }
                self.reindex_task(task);
                self.enter_workflow(out, now, task, next, now, true, None);
            }
        }
    }

    /// Re-runs filter matching for a pending task (attributes update, `ReEvaluateTasks`).
    pub(crate) fn reevaluate(&mut self, out: &mut Out, now: Timestamp, task: Sid) {
        let Some(t) = self.tasks.get_mut(&task) else { return };
        if t.assignment_status != TaskStatus::Pending || t.workflow_sid.is_none() {
            return;
        }
        t.routing = None;
        let created = t.date_created;
        out.timers.cancel(Timer::TargetTimeout(self.ws.sid, task));
        self.reindex_task(task);
        self.enter_workflow(out, now, task, 0, created, false, None);
    }

    // ---- task commands ---------------------------------------------------------------------------------

    pub(crate) fn create_task(
        &mut self,
        out: &mut Out,
        now: Timestamp,
        p: CreateTaskParams,
    ) -> Result<Reply, Error> {
        let attributes = p.attributes.unwrap_or_else(|| "{}".into());
        let value = parse_attributes(&attributes)?;
        let priority = p.priority.unwrap_or(0);
        if !(0..=i64::from(i32::MAX)).contains(&priority) {
            return Err(Error::invalid(
                "Priority",
                format!("must be between 0 and 2147483647, not {priority}"),
            ));
        }
        let timeout = p.timeout.unwrap_or(86_400);
        if !(1..=1_209_600).contains(&timeout) {
            return Err(Error::invalid(
                "Timeout",
                format!("must be between 1 and 1209600 seconds, not {timeout}"),
            ));
        }
        let channel_name = p.task_channel.unwrap_or_else(|| "default".into());
        let channel = self
            .channel_by_name(&channel_name)
            .ok_or_else(|| {
                Error::invalid("TaskChannel", format!("TaskChannel '{channel_name}' does not exist"))
            })?
            .clone();
        let vst = p.virtual_start_time.unwrap_or(now);
        if vst > now || vst.0 < MIN_VIRTUAL_START_MS {
            return Err(Error::invalid("VirtualStartTime", "must not be in the future nor before 1900"));
        }
        let mut workflow = p.workflow_sid;
        let mut queue = p.task_queue_sid;
        let mut ignore_capacity = false;
        if let Some(rt) = p.routing_target {
            match rt.prefix() {
                Prefix::Worker => {
                    if !self.workers.contains_key(&rt) {
                        return Err(Error::invalid("RoutingTarget", format!("Worker {rt} does not exist")));
                    }
                    ignore_capacity = p.ignore_capacity.unwrap_or(true);
                }
                Prefix::TaskQueue => queue = Some(rt),
                Prefix::Workflow => workflow = Some(rt),
                _ => {
                    return Err(Error::invalid(
                        "RoutingTarget",
                        "must be a Worker, TaskQueue or Workflow SID",
                    ))
                }
            }
        } else if p.ignore_capacity.is_some() {
            return Err(Error::invalid("IgnoreCapacity", "is only valid with a Worker RoutingTarget"));
        }
        if let Some(q) = queue {
            if !self.queues.contains_key(&q) {
                return Err(Error::invalid("TaskQueueSid", format!("TaskQueue {q} does not exist")));
            }
        }
        if workflow.is_none() && queue.is_none() {
            if self.workflows.len() == 1 {
                workflow = self.workflows.keys().next().copied();
            } else {
                return Err(Error::invalid(
                    "WorkflowSid",
                    "is required: the workspace has no single workflow to default to",
                ));
            }
        }
        let wf = match workflow {
            Some(w) if queue.is_none() => {
                let wf = self
                    .workflows
                    .get(&w)
                    .ok_or_else(|| Error::invalid("WorkflowSid", format!("Workflow {w} does not exist")))?;
                let unmatched = wf.config.default_filter.is_none()
                    && !wf.config.filters.iter().any(|f| f.expression.eval(&value));
                if unmatched {
                    return Err(Error::invalid(
                        "Attributes",
                        format!("the task matches no filter of workflow {w} and the workflow has no default_filter"),
                    ));
                }
                Some((w, wf.friendly_name.clone()))
            }
            _ => None,
        };
        let wsid = self.ws.sid;
        let sid = out.sid(Prefix::Task);
        let task = Task {
            account_sid: out.account_sid,
            workspace_sid: wsid,
            sid,
            assignment_status: TaskStatus::Pending,
            attributes: attributes.into_boxed_str(),
            priority,
            timeout,
            reason: None,
            task_queue_sid: None,
            task_queue_friendly_name: None,
            task_queue_entered_date: None,
            workflow_sid: wf.as_ref().map(|w| w.0),
            workflow_friendly_name: wf.as_ref().map(|w| self.names.get(&w.1)),
            task_channel_sid: channel.sid,
            task_channel_unique_name: self.names.get(&channel.unique_name),
            virtual_start_time: vst,
            routing_target: p.routing_target,
            ignore_capacity,
            addons: self.names.get("{}"),
            date_created: now,
            date_updated: now,
            version: 1,
            routing: None,
            assignment_count: 0,
            terminal_at: None,
            assigned_at: None,
            waiting: None,
        };
        self.tasks.insert(sid, Box::new(task));
        out.touch(Key::Task(wsid, sid));
        out.timers.set(Timer::TaskTtl(wsid, sid), now.plus_secs(timeout));
        self.emit_task_sid(
            out,
            now,
            EventType::TaskCreated,
            sid,
            &[Part::S("Task "), Part::Sid(sid), Part::S(" created")],
        );
        if wf.is_some() {
            self.emit_task_sid(
                out,
                now,
                EventType::WorkflowEntered,
                sid,
                &[Part::S("Task "), Part::Sid(sid), Part::S(" entered workflow")],
            );
            self.enter_workflow(out, now, sid, 0, now, false, Some(value));
        } else if let Some(q) = queue {
            let qname = self.queues.get(&q).map(|q| self.names.get(&q.friendly_name));
            if let Some(t) = self.tasks.get_mut(&sid) {
                t.task_queue_sid = Some(q);
                t.task_queue_friendly_name = qname;
                t.task_queue_entered_date = Some(now);
            }
            self.reindex_task(sid);
            self.emit_task_sid(
                out,
                now,
                EventType::TaskQueueEntered,
                sid,
                &[Part::S("Task "), Part::Sid(sid), Part::S(" entered queue "), Part::Sid(q)],
            );
            self.route_task(out, now, sid);
        }
        let t =
            self.tasks.get(&sid).map(|t| Task::clone(t)).ok_or_else(|| Error::not_found(sid.to_string()))?;
        Ok(Reply::Task(t))
    }

    pub(crate) fn update_task(
        &mut self,
        out: &mut Out,
        now: Timestamp,
        sid: Sid,
        p: UpdateTaskParams,
        if_match: Option<String>,
    ) -> Result<Reply, Error> {
        let t = self.tasks.get(&sid).ok_or_else(|| Error::not_found(self.path(format!("Tasks/{sid}"))))?;
        check_if_match(&if_match, t.version)?;
        let value = match &p.attributes {
            Some(a) => Some(parse_attributes(a)?),
            None => None,
        };
        if let Some(pr) = p.priority {
            if !(0..=i64::from(i32::MAX)).contains(&pr) {
                return Err(Error::invalid(
                    "Priority",
                    format!("must be between 0 and 2147483647, not {pr}"),
                ));
            }
        }
        let status = match &p.assignment_status {
            Some(s) => Some(TaskStatus::parse(s).ok_or_else(|| {
                Error::invalid(
                    "AssignmentStatus",
                    format!("'{s}' is not one of canceled, wrapping, completed"),
                )
            })?),
            None => None,
        };
        let channel = match &p.task_channel {
            Some(c) => Some(
                self.channel_by_name(c)
                    .ok_or_else(|| {
                        Error::invalid("TaskChannel", format!("TaskChannel '{c}' does not exist"))
                    })?
                    .clone(),
            ),
            None => None,
        };
        if let Some(v) = p.virtual_start_time {
            if v > now || v.0 < MIN_VIRTUAL_START_MS {
                return Err(Error::invalid("VirtualStartTime", "must not be in the future nor before 1900"));
            }
        }
        if let Some(s) = status {
            if value.is_some() && matches!(s, TaskStatus::Wrapping | TaskStatus::Completed) {
                return Err(Error::invalid(
                    "AssignmentStatus",
                    "cannot change the status to wrapping/completed and the attributes in one request; send two",
                ));
            }
            let cur = t.assignment_status;
            let ok = match s {
                TaskStatus::Canceled => matches!(cur, TaskStatus::Pending | TaskStatus::Reserved),
                TaskStatus::Wrapping => cur == TaskStatus::Assigned,
                TaskStatus::Completed => matches!(cur, TaskStatus::Assigned | TaskStatus::Wrapping),
                _ => {
                    return Err(Error::invalid(
                        "AssignmentStatus",
                        format!("can only be set to canceled, wrapping or completed, not '{}'", s.as_str()),
                    ))
                }
            };
            if !ok {
                return Err(match s {
                    TaskStatus::Canceled => self.illegal_task("cancel", sid, "it is not pending or reserved."),
                    TaskStatus::Wrapping => Error::illegal(format!(
                        "Cannot wrap up a task {sid} in workspace {} for account {} because it's not currently assigned",
                        self.ws.sid, self.ws.account_sid
                    )),
                    _ => self.illegal_task("complete", sid, "it is not assigned or wrapping."),
                });
            }
        }
        if (p.attributes.is_some()
            || p.priority.is_some()
            || channel.is_some()
            || p.virtual_start_time.is_some())
            && t.assignment_status.is_terminal()
        {
            return Err(self.illegal_task("update", sid, "it is canceled or completed."));
        }
        // Validated; mutate.
        let wsid = self.ws.sid;
        let mut changed = false;
        let mut reeval = false;
        if let Some(t) = self.tasks.get_mut(&sid) {
            if let (Some(text), Some(_)) = (p.attributes, value) {
                t.attributes = text.into_boxed_str();
                changed = true;
                reeval = t.assignment_status == TaskStatus::Pending;
            }
            if let Some(pr) = p.priority {
                t.priority = pr;
                changed = true;
            }
            if let Some(c) = channel {
                t.task_channel_sid = c.sid;
                t.task_channel_unique_name = self.names.get(&c.unique_name);
                changed = true;
            }
            if let Some(v) = p.virtual_start_time {
                t.virtual_start_time = v;
                changed = true;
            }
            if changed {
                t.version += 1;
                t.date_updated = now;
            }
        }
        if changed {
            out.touch(Key::Task(wsid, sid));
            self.emit_task_sid(
                out,
                now,
                EventType::TaskUpdated,
                sid,
                &[Part::S("Task "), Part::Sid(sid), Part::S(" updated")],
            );
            self.reindex_task(sid);
            if reeval {
                self.reevaluate(out, now, sid);
            } else {
                out.route_tasks.push_back((wsid, sid));
            }
        }
        match status {
            Some(TaskStatus::Canceled) => {
                let reason = p.reason.unwrap_or_else(|| "Task canceled".into());
                self.cancel_task(out, now, sid, reason)?;
            }
            Some(TaskStatus::Wrapping) => self.wrap_task(out, now, sid)?,
            Some(TaskStatus::Completed) => self.complete_task(out, now, sid, p.reason)?,
            _ => {}
        }
        let t =
            self.tasks.get(&sid).map(|t| Task::clone(t)).ok_or_else(|| Error::not_found(sid.to_string()))?;
        Ok(Reply::Task(t))
    }

    pub(crate) fn delete_task(
        &mut self,
        out: &mut Out,
        now: Timestamp,
        sid: Sid,
        if_match: Option<String>,
    ) -> Result<Reply, Error> {
        let t = self.tasks.get(&sid).ok_or_else(|| Error::not_found(self.path(format!("Tasks/{sid}"))))?;
        check_if_match(&if_match, t.version)?;
        self.drop_task(out, now, sid, EventType::TaskDeleted);
        Ok(Reply::Deleted)
    }

    /// Deletes a task in any state: pending reservations canceled, capacity of accepted ones released.
    fn drop_task(&mut self, out: &mut Out, now: Timestamp, sid: Sid, ty: EventType) {
        let wsid = self.ws.sid;
        let Some(t) = self.tasks.get(&sid) else { return };
        if matches!(t.assignment_status, TaskStatus::Pending | TaskStatus::Reserved) {
            if let Some(t) = self.tasks.get_mut(&sid) {
                t.assignment_status = TaskStatus::Canceled;
            }
            self.withdraw_pending(out, now, sid, ReservationStatus::Canceled);
        }
        for r in self.task_reservations.get(&sid).cloned().unwrap_or_default() {
            let Some(res) = self.reservations.get(&r) else { continue };
            if matches!(res.reservation_status, ReservationStatus::Accepted | ReservationStatus::Wrapping) {
                let (worker, channel) = (res.worker_sid, res.task_channel_sid);
                self.release_assigned(out, worker, channel);
                out.route_workers.push_back((wsid, worker));
            }
        }
        self.emit_task_sid(out, now, ty, sid, &[Part::S("Task "), Part::Sid(sid), Part::S(" deleted")]);
        self.remove_task(out, sid);
        out.touch(Key::Task(wsid, sid));
    }

    /// Merges `patch` (an object) into the task's attributes; emits `task.updated`.
    pub(crate) fn merge_task_attributes(&mut self, out: &mut Out, now: Timestamp, task: Sid, patch: Value) {
        let wsid = self.ws.sid;
        let Some(t) = self.tasks.get_mut(&task) else { return };
        let mut value = t.attributes_value();
        if let (Value::Object(dst), Value::Object(src)) = (&mut value, patch) {
            for (k, v) in src {
                dst.insert(k, v);
            }
        }
        t.attributes = value.to_string().into_boxed_str();
        t.version += 1;
        t.date_updated = now;
        out.touch(Key::Task(wsid, task));
        self.emit_task_sid(
            out,
            now,
            EventType::TaskUpdated,
            task,
            &[Part::S("Task "), Part::Sid(task), Part::S(" updated")],
        );
    }

    /// Reservation update other than the conference instruction (reference §7).
    pub(crate) fn update_reservation(
        &mut self,
        out: &mut Out,
        now: Timestamp,
        r: Sid,
        p: &UpdateReservationParams,
    ) -> Result<(), Error> {
        let res = self.reservations.get(&r).ok_or_else(|| Error::not_found(r.to_string()))?.clone();
        let status = match &p.reservation_status {
            Some(s) => Some(ReservationStatus::parse(s).ok_or_else(|| {
                Error::invalid(
                    "ReservationStatus",
                    format!("'{s}' is not one of accepted, rejected, wrapping, completed"),
                )
            })?),
            None => None,
        };
        let instruction = p.instruction.as_deref().map(str::to_ascii_lowercase);
        match (instruction.as_deref(), status) {
            (Some("accept"), _) | (None, Some(ReservationStatus::Accepted)) => self.accept(out, now, r),
            (Some("reject"), _) | (None, Some(ReservationStatus::Rejected)) => {
                self.check_pending(r, "reject")?;
                if let Some(a) = p.worker_activity_sid {
                    self.activity(a, "WorkerActivitySid")?;
                }
                self.reject_reservation(out, now, r, p.worker_activity_sid, true);
                Ok(())
            }
            (Some("dequeue"), _) => {
                self.check_pending(r, "dequeue")?;
                if p.dequeue_from.as_deref().is_none_or(str::is_empty) {
                    return Err(Error::invalid("DequeueFrom", "is required for the dequeue instruction"));
                }
                if let Some(a) = p.dequeue_post_work_activity_sid {
                    self.activity(a, "DequeuePostWorkActivitySid")?;
                }
                self.accept(out, now, r)?;
                let call = out.sid(Prefix::Call);
                self.merge_task_attributes(
                    out,
                    now,
                    res.task_sid,
                    serde_json::json!({"worker_call_sid": call.to_string()}),
                );
                Ok(())
            }
            (Some("call"), _) => {
                self.check_pending(r, "call")?;
                if p.call_from.as_deref().is_none_or(str::is_empty) {
                    return Err(Error::invalid("CallFrom", "is required for the call instruction"));
                }
                if p.call_url.as_deref().is_none_or(str::is_empty) {
                    return Err(Error::invalid("CallUrl", "is required for the call instruction"));
                }
                if p.call_accept == Some(true) {
                    self.accept(out, now, r)?;
                }
                let call = out.sid(Prefix::Call);
                self.merge_task_attributes(
                    out,
                    now,
                    res.task_sid,
                    serde_json::json!({"worker_call_sid": call.to_string()}),
                );
                Ok(())
            }
            (Some("redirect"), _) => {
                self.check_pending(r, "redirect")?;
                if p.redirect_call_sid.is_none() {
                    return Err(Error::invalid(
                        "RedirectCallSid",
                        "is required for the redirect instruction",
                    ));
                }
                if p.redirect_url.as_deref().is_none_or(str::is_empty) {
                    return Err(Error::invalid("RedirectUrl", "is required for the redirect instruction"));
                }
                if p.redirect_accept == Some(true) {
                    self.accept(out, now, r)?;
                }
                Ok(())
            }
            (Some(other), _) => Err(Error::invalid(
                "Instruction",
                format!("'{other}' is not one of accept, reject, conference, dequeue, call, redirect"),
            )),
            (None, Some(ReservationStatus::Wrapping)) => {
                if res.reservation_status != ReservationStatus::Accepted {
                    return Err(Error::illegal(format!(
                        "Cannot wrap up reservation {r} in workspace {} because it is {}, not accepted",
                        self.ws.sid,
                        res.reservation_status.as_str()
                    )));
                }
                self.wrap_task(out, now, res.task_sid)
            }
            (None, Some(ReservationStatus::Completed)) => {
                if !matches!(
                    res.reservation_status,
                    ReservationStatus::Accepted | ReservationStatus::Wrapping
                ) {
                    return Err(Error::illegal(format!(
                        "Cannot complete reservation {r} in workspace {} because it is {}, not accepted or wrapping",
                        self.ws.sid,
                        res.reservation_status.as_str()
                    )));
                }
                self.complete_task(out, now, res.task_sid, None)
            }
            (None, Some(s)) => Err(Error::invalid(
                "ReservationStatus",
                format!("cannot be set to '{}'; use accepted, rejected, wrapping or completed", s.as_str()),
            )),
            (None, None) => Ok(()),
        }
    }
}
