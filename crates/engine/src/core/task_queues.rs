//! TaskQueues and the membership and availability indexes over them.

use super::space::{parse_target_workers, validate_name, verb, QueueIndex, Space};
use super::{Effects, Key, Reply};
use crate::command::*;
use crate::error::Error;
use crate::event::{EventData, EventType, Field, Part};
use crate::expr::{Expr, Origin, WorkerScope};
use crate::model::*;
use crate::sid::{Prefix, Sid};
use crate::time::Timestamp;
use std::collections::BTreeSet;

impl Space {
    fn queue_matches(q: &TaskQueue, scope: &WorkerScope<'_>) -> bool {
        q.target_expr.as_ref().is_some_and(|e| e.eval(scope))
    }

    /// Evaluates `f` with the worker's expression scope (its attributes plus sid, names, activity).
    fn with_scope<R>(w: &Worker, f: impl FnOnce(&WorkerScope<'_>) -> R) -> R {
        let sid = w.sid.to_string();
        let act = w.activity_sid.to_string();
        f(&WorkerScope {
            attributes: &w.attributes_value,
            sid: &sid,
            friendly_name: &w.friendly_name,
            activity_sid: &act,
            activity_name: &w.activity_name,
        })
    }

    /// Recomputes which queues a worker belongs to and updates the queue indexes.
    pub(crate) fn refresh_membership(&mut self, worker: Sid) {
        let Some(w) = self.workers.get(&worker) else { return };
        let new: Vec<Sid> = Self::with_scope(w, |scope| {
            self.queues.values().filter(|q| Self::queue_matches(q, scope)).map(|q| q.sid).collect()
        });
        let old = self.worker_queues.remove(&worker).unwrap_or_default();
        let idle = self.idle_key.get(&worker).copied();
        for q in &old {
            if let Some(ix) = self.qidx.get_mut(q) {
                ix.members.remove(&worker);
                if let Some(t) = idle {
                    ix.available.remove(&(t, worker));
                }
            }
        }
        for q in &new {
            if let Some(ix) = self.qidx.get_mut(q) {
                ix.members.insert(worker);
                if let Some(t) = idle {
                    ix.available.insert((t, worker));
                }
            }
        }
        self.worker_queues.insert(worker, new);
    }

    /// Puts a worker into (or takes it out of) the `available` sets of its queues: a worker is routable
    /// when its activity is available and it has capacity left. Keyed by `last_idle_at`, so a worker that
    /// just got a reservation moves to the back (round robin by idle time).
    pub(crate) fn refresh_availability(&mut self, worker: Sid) {
        let Some(w) = self.workers.get(&worker) else { return };
        let want = if w.available && self.has_capacity(worker, None) { Some(w.last_idle_at) } else { None };
        let have = self.idle_key.get(&worker).copied();
        if want == have {
            return;
        }
        let Space { worker_queues, qidx, idle_key, .. } = self;
        for q in worker_queues.get(&worker).map(Vec::as_slice).unwrap_or(&[]) {
            if let Some(ix) = qidx.get_mut(q) {
                if let Some(t) = have {
                    ix.available.remove(&(t, worker));
                }
                if let Some(t) = want {
                    ix.available.insert((t, worker));
                }
            }
        }
        match want {
            Some(t) => idle_key.insert(worker, t),
            None => idle_key.remove(&worker),
        };
    }

    fn emit_queue(&self, out: &mut Effects, now: Timestamp, t: EventType, q: &TaskQueue) {
        let mut data = EventData::with_capacity(7, 64 + q.target_workers.len());
        data.desc(&[Part::S("TaskQueue "), Part::S(&q.friendly_name), Part::S(" "), Part::S(verb(t))])
            .sid(Field::TaskQueueSid, q.sid)
            .text(Field::TaskQueueName, &q.friendly_name)
            .text(Field::TaskQueueTargetExpression, &q.target_workers);
        out.emit(&self.ws, now, t, "taskqueue", q.sid, data);
    }

    fn queue_params(&self, p: &TaskQueueParams) -> Result<(Option<Option<Expr>>, Option<QueueOrder>), Error> {
        if let Some(n) = &p.friendly_name {
            validate_name("FriendlyName", n)?;
        }
        if let Some(m) = p.max_reserved_workers {
            if !(1..=50).contains(&m) {
                return Err(Error::invalid(
                    "MaxReservedWorkers",
                    format!("must be between 1 and 50, not {m}"),
                ));
            }
        }
        let order = match &p.task_order {
            Some(o) => Some(
                QueueOrder::parse(o)
                    .ok_or_else(|| Error::invalid("TaskOrder", format!("must be FIFO or LIFO, not '{o}'")))?,
            ),
            None => None,
        };
        for (param, a) in [
            ("ReservationActivitySid", p.reservation_activity_sid),
            ("AssignmentActivitySid", p.assignment_activity_sid),
        ] {
            if let Some(a) = a {
                self.activity(a, param)?;
            }
        }
        let expr = match &p.target_workers {
            Some(t) => Some(parse_target_workers(t, Origin::Input)?),
            None => None,
        };
        Ok((expr, order))
    }

    pub(crate) fn create_queue(
        &mut self,
        out: &mut Effects,
        now: Timestamp,
        p: TaskQueueParams,
    ) -> Result<TaskQueue, Error> {
        let name = p.friendly_name.clone().ok_or_else(|| Error::invalid("FriendlyName", "is required"))?;
        let (expr, order) = self.queue_params(&p)?;
        let target = p.target_workers.clone().unwrap_or_else(|| "1==1".into());
        let expr = match expr {
            Some(e) => e,
            None => parse_target_workers(&target, Origin::Input)?,
        };
        let act_name =
            |a: Option<Sid>| a.and_then(|a| self.activities.get(&a)).map(|a| a.friendly_name.clone());
        let sid = out.sid(Prefix::TaskQueue);
        let q = TaskQueue {
            account_sid: out.account_sid,
            workspace_sid: self.ws.sid,
            sid,
            friendly_name: name,
            target_workers: target,
            target_expr: expr,
            max_reserved_workers: p.max_reserved_workers.unwrap_or(1) as u32,
            task_order: order.unwrap_or_default(),
            reservation_activity_sid: p.reservation_activity_sid,
            reservation_activity_name: act_name(p.reservation_activity_sid),
            assignment_activity_sid: p.assignment_activity_sid,
            assignment_activity_name: act_name(p.assignment_activity_sid),
            date_created: now,
            date_updated: now,
        };
        self.emit_queue(out, now, EventType::TaskQueueCreated, &q);
        self.queues.insert(sid, q.clone());
        self.qidx.insert(sid, QueueIndex::default());
        out.touch(Key::TaskQueue(self.ws.sid, sid));
        self.rebuild_queue_members(out, sid);
        Ok(q)
    }

    /// Recomputes a queue's members over all workers (queue create / expression change only).
    fn rebuild_queue_members(&mut self, out: &mut Effects, queue: Sid) {
        let Some(q) = self.queues.get(&queue) else { return };
        let members: BTreeSet<Sid> = self
            .workers
            .values()
            .filter(|w| Self::with_scope(w, |scope| Self::queue_matches(q, scope)))
            .map(|w| w.sid)
            .collect();
        let mut ix =
            QueueIndex { members: members.clone(), available: BTreeSet::new(), waiting: BTreeSet::new() };
        if let Some(old) = self.qidx.remove(&queue) {
            ix.waiting = old.waiting;
        }
        for w in self.workers.keys() {
            let list = self.worker_queues.entry(*w).or_default();
            list.retain(|q| *q != queue);
            if members.contains(w) {
                list.push(queue);
                if let Some(t) = self.idle_key.get(w) {
                    ix.available.insert((*t, *w));
                }
                out.route_workers.push_back((self.ws.sid, *w));
            }
        }
        self.qidx.insert(queue, ix);
    }

    pub(crate) fn update_queue(
        &mut self,
        out: &mut Effects,
        now: Timestamp,
        sid: Sid,
        p: TaskQueueParams,
    ) -> Result<Reply, Error> {
        if !self.queues.contains_key(&sid) {
            return Err(self.missing("TaskQueues", sid));
        }
        let (expr, order) = self.queue_params(&p)?;
        let names: Vec<Option<String>> = [p.reservation_activity_sid, p.assignment_activity_sid]
            .iter()
            .map(|a| a.and_then(|a| self.activities.get(&a)).map(|a| a.friendly_name.clone()))
            .collect();
        let Some(q) = self.queues.get_mut(&sid) else { return Err(Error::not_found(sid.to_string())) };
        if let Some(n) = p.friendly_name {
            q.friendly_name = n;
        }
        if let Some(m) = p.max_reserved_workers {
            q.max_reserved_workers = m as u32;
        }
        if let Some(o) = order {
            q.task_order = o;
        }
        if let Some(a) = p.reservation_activity_sid {
            q.reservation_activity_sid = Some(a);
            q.reservation_activity_name = names[0].clone();
        }
        if let Some(a) = p.assignment_activity_sid {
            q.assignment_activity_sid = Some(a);
            q.assignment_activity_name = names[1].clone();
        }
        let expr_changed = if let (Some(t), Some(e)) = (p.target_workers, expr) {
            q.target_workers = t;
            q.target_expr = e;
            true
        } else {
            false
        };
        q.date_updated = now;
        let q = q.clone();
        out.touch(Key::TaskQueue(self.ws.sid, sid));
        if expr_changed {
            self.emit_queue(out, now, EventType::TaskQueueExpressionUpdated, &q);
            self.rebuild_queue_members(out, sid);
        }
        // Order or max reservations may have changed: re-key waiting tasks.
        let tasks: Vec<Sid> =
            self.qidx.get(&sid).map(|ix| ix.waiting.iter().map(|k| k.2).collect()).unwrap_or_default();
        for t in tasks {
            self.reindex_task(t);
            out.route_tasks.push_back((self.ws.sid, t));
        }
        Ok(Reply::TaskQueue(q))
    }

    pub(crate) fn delete_queue(
        &mut self,
        out: &mut Effects,
        now: Timestamp,
        sid: Sid,
    ) -> Result<Reply, Error> {
        let q = self.queues.get(&sid).ok_or_else(|| self.missing("TaskQueues", sid))?.clone();
        if self.tasks.values().any(|t| t.task_queue_sid == Some(sid) && !t.assignment_status.is_terminal()) {
            return Err(Error::illegal(format!(
                "Cannot delete TaskQueue {sid} because tasks are still routed against it; complete or cancel them first"
            )));
        }
        if let Some(wf) = self.workflows.values().find(|w| w.config.queues().any(|q| q == sid)) {
            return Err(Error::illegal(format!(
                "Cannot delete TaskQueue {sid} because Workflow {} ('{}') targets it; update the workflow first",
                wf.sid, wf.friendly_name
            )));
        }
        self.queues.remove(&sid);
        self.qidx.remove(&sid);
        for list in self.worker_queues.values_mut() {
            list.retain(|q| *q != sid);
        }
        out.touch(Key::TaskQueue(self.ws.sid, sid));
        self.emit_queue(out, now, EventType::TaskQueueDeleted, &q);
        Ok(Reply::Deleted)
    }
}
