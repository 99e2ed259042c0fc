//! Routing for one workspace: which worker may take which task, and offering tasks to workers. The
//! reservations it makes are in `reservations`; the workflow steps that put a task into a queue are in
//! `workflows`.
//!
//! Routing is index-driven: offering a task walks its queue's `available` set (longest idle first) and
//! stops after `max_reserved_workers - pending` reservations; offering a freed worker walks the `waiting` set
//! of each queue it belongs to and stops at the first task it may take. Neither scans all workers or tasks.

use super::space::{Space, TaskKey};
use super::Effects;
use crate::expr::{Path, Scope, TargetScope, WorkerScope};
use crate::model::*;
use crate::sid::{Prefix, Sid};
use crate::time::Timestamp;
use crate::workflow::{KnownWorker, Target, WorkflowConfig};
use serde_json::Value;
use std::borrow::Cow;
use std::cell::OnceCell;
use std::cmp::Reverse;
use std::sync::Arc;

/// Bound on tasks inspected per queue when offering a freed worker.
const MAX_SCAN: usize = 10_000;

/// Order of candidate tasks across a worker's queues: queue kind (the workspace's `prioritize_queue_order`
/// first), then the queue's own [`TaskKey`]. The kind comes first because a LIFO queue's key carries no
/// priority, so priorities can only be compared between queues of one kind; across kinds the workspace's
/// choice decides, as `prioritize_queue_order` is documented ("the type of TaskQueue to prioritize when
/// Workers are receiving Tasks from both types").
type Rank = (u8, Reverse<i64>, i64, Sid);

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

impl Space {
    pub(crate) fn pending_reservations(&self, task: Sid) -> impl Iterator<Item = &Reservation> + '_ {
        self.task_reservations
            .get(&task)
            .into_iter()
            .flatten()
            .filter_map(|r| self.reservations.get(r))
            .filter(|r| r.reservation_status == ReservationStatus::Pending)
    }

    /// A task's place in its queue's waiting set. FIFO: highest priority, then oldest. LIFO: newest, by age
    /// alone ("Unlike FIFO ordering, LIFO ordering does not consider the Task priority", Twilio's
    /// queue-ordering page), so its priority part is a constant.
    fn task_key(t: &Task, q: &TaskQueue) -> TaskKey {
        match q.task_order {
            QueueOrder::Fifo => (Reverse(t.priority), t.virtual_start_time.0, t.sid),
            QueueOrder::Lifo => (Reverse(0), t.virtual_start_time.0.saturating_neg(), t.sid),
        }
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
    pub(crate) fn unindex_task(&mut self, task: Sid) {
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

    pub(crate) fn config_of(&self, t: &Task) -> Option<Arc<WorkflowConfig>> {
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

    /// Whether worker `w` could be offered task `t` now, whatever the target's expression: not already on
    /// the task (offered it, or handling it while it is transferred), available, with room on its channel
    /// (unless the task ignores capacity for it). What routing checks first, and a transfer before it starts.
    pub(crate) fn can_take(&self, t: &Task, w: &Worker) -> bool {
        let reservations = self.task_reservations.get(&t.sid).into_iter().flatten();
        let on_it = |r: &Reservation| r.worker_sid == w.sid && r.reservation_status.is_active();
        if reservations.filter_map(|r| self.reservations.get(r)).any(on_it) {
            return false;
        }
        let bypass = t.ignore_capacity && t.routing_target == Some(w.sid);
        bypass || (w.available && self.has_capacity(w.sid, Some(t.task_channel_sid)))
    }

    fn eligible(&self, t: &Task, attrs: &TaskAttrs, target: Option<&Target>, w: &Worker) -> bool {
        if !self.can_take(t, w) {
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

    /// Offers a task to eligible workers; returns how many reservations were created.
    pub(crate) fn route_task(&mut self, out: &mut Effects, now: Timestamp, task: Sid) -> usize {
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
    pub(crate) fn route_worker(&mut self, out: &mut Effects, now: Timestamp, worker: Sid) {
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
                    let rank = (kind, key.0, key.1, key.2);
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
}
