//! Tasks: their event fields, the task commands, and the lifecycle after assignment (wrap, complete,
//! cancel, TTL, purge).

use super::space::{parse_attributes, Space};
use super::{check_if_match, parse_param, Effects, Key, Reply, Timer};
use crate::command::*;
use crate::error::Error;
use crate::event::{EventData, EventType, Field, Part};
use crate::model::*;
use crate::sid::{Prefix, Sid};
use crate::time::Timestamp;
use serde_json::Value;

/// Earliest accepted `VirtualStartTime`: 1900-01-01.
const MIN_VIRTUAL_START_MS: i64 = -2_208_988_800_000;

/// A task's `Priority`, 0 to 2^31-1 as Twilio allows: in a create, an update and the list filter.
pub(crate) fn checked_priority(priority: i64) -> Result<i64, Error> {
    if (0..=i64::from(i32::MAX)).contains(&priority) {
        Ok(priority)
    } else {
        Err(Error::invalid("Priority", format!("must be between 0 and 2147483647, not {priority}")))
    }
}

impl Space {
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
    pub(crate) fn task_data(t: &Task, extra: usize) -> EventData {
        EventData::with_capacity(24 + extra, 256 + t.attributes.len())
    }

    pub(crate) fn emit_task(
        &self,
        out: &mut Effects,
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

    /// Emits `ty` for task `t`, described as "Task {t}{what}" (`what` starts with a space).
    fn emit_task_change(&self, out: &mut Effects, now: Timestamp, ty: EventType, t: Sid, what: &str) {
        self.emit_task_sid(out, now, ty, t, &[Part::S("Task "), Part::Sid(t), Part::S(what)]);
    }

    /// The task `sid`, or a 404 naming its path.
    fn task_or_404(&self, sid: Sid) -> Result<&Task, Error> {
        self.tasks.get(&sid).map(|t| &**t).ok_or_else(|| self.missing("Tasks", sid))
    }

    pub(crate) fn emit_task_sid(
        &self,
        out: &mut Effects,
        now: Timestamp,
        ty: EventType,
        t: Sid,
        description: &[Part<'_>],
    ) {
        if let Some(task) = self.tasks.get(&t) {
            self.emit_task(out, now, ty, task, description);
        }
    }

    pub(crate) fn create_task(
        &mut self,
        out: &mut Effects,
        now: Timestamp,
        p: CreateTaskParams,
    ) -> Result<Reply, Error> {
        let attributes = p.attributes.unwrap_or_else(|| "{}".into());
        let value = parse_attributes(&attributes)?;
        let priority = checked_priority(p.priority.unwrap_or(0))?;
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
        self.emit_task_change(out, now, EventType::TaskCreated, sid, " created");
        if wf.is_some() {
            self.emit_task_change(out, now, EventType::WorkflowEntered, sid, " entered workflow");
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
        self.task_reply(sid)
    }

    /// The task as it is now, for a command's reply.
    fn task_reply(&self, sid: Sid) -> Result<Reply, Error> {
        let t = self.tasks.get(&sid).ok_or_else(|| Error::not_found(sid.to_string()))?;
        Ok(Reply::Task(Task::clone(t)))
    }

    pub(crate) fn update_task(
        &mut self,
        out: &mut Effects,
        now: Timestamp,
        sid: Sid,
        p: UpdateTaskParams,
        if_match: Option<String>,
    ) -> Result<Reply, Error> {
        let t = self.task_or_404(sid)?;
        check_if_match(&if_match, t.version)?;
        let value = match &p.attributes {
            Some(a) => Some(parse_attributes(a)?),
            None => None,
        };
        if let Some(pr) = p.priority {
            checked_priority(pr)?;
        }
        let status = parse_param(
            "AssignmentStatus",
            p.assignment_status.as_deref(),
            TaskStatus::parse,
            "one of canceled, wrapping, completed",
        )?;
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
        // A task being transferred is routed to its transfer's target, not through its workflow.
        let in_transfer = self.active_transfer(sid).is_some();
        let mut changed = false;
        let mut reeval = false;
        if let Some(t) = self.tasks.get_mut(&sid) {
            if let (Some(text), Some(_)) = (p.attributes, value) {
                t.attributes = text.into_boxed_str();
                changed = true;
                reeval = t.assignment_status == TaskStatus::Pending && !in_transfer;
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
            self.emit_task_change(out, now, EventType::TaskUpdated, sid, " updated");
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
        self.task_reply(sid)
    }

    pub(crate) fn delete_task(
        &mut self,
        out: &mut Effects,
        now: Timestamp,
        sid: Sid,
        if_match: Option<String>,
    ) -> Result<Reply, Error> {
        let t = self.task_or_404(sid)?;
        check_if_match(&if_match, t.version)?;
        self.drop_task(out, now, sid, EventType::TaskDeleted);
        Ok(Reply::Deleted)
    }

    /// Deletes a task in any state: pending reservations canceled, capacity of accepted ones released.
    fn drop_task(&mut self, out: &mut Effects, now: Timestamp, sid: Sid, ty: EventType) {
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
        self.emit_task_change(out, now, ty, sid, " deleted");
        self.remove_task(out, sid);
        out.touch(Key::Task(wsid, sid));
    }

    /// Merges `patch` (an object) into the task's attributes; emits `task.updated`.
    pub(crate) fn merge_task_attributes(
        &mut self,
        out: &mut Effects,
        now: Timestamp,
        task: Sid,
        patch: Value,
    ) {
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
        self.emit_task_change(out, now, EventType::TaskUpdated, task, " updated");
    }

    fn illegal_task(&self, verb: &str, t: Sid, why: &str) -> Error {
        Error::illegal(format!(
            "Cannot {verb} task {t} in workspace {} for account {} because {why}",
            self.ws.sid, self.ws.account_sid
        ))
    }

    /// Task and its accepted reservation to wrapping.
    pub(crate) fn wrap_task(&mut self, out: &mut Effects, now: Timestamp, task: Sid) -> Result<(), Error> {
        let t = self.task_or_404(task)?;
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
        self.emit_task_change(out, now, EventType::TaskWrapup, task, " wrapping up");
        for r in self.task_reservations.get(&task).cloned().unwrap_or_default() {
            self.wrap_reservation(out, now, r);
        }
        Ok(())
    }

    /// An accepted reservation to wrapping (anything else is left as it is).
    pub(crate) fn wrap_reservation(&mut self, out: &mut Effects, now: Timestamp, r: Sid) {
        let Some(res) = self.reservations.get_mut(&r) else { return };
        if res.reservation_status != ReservationStatus::Accepted {
            return;
        }
        res.reservation_status = ReservationStatus::Wrapping;
        res.version += 1;
        res.date_updated = now;
        out.touch(Key::Reservation(self.ws.sid, r));
        self.emit_reservation(out, now, EventType::ReservationWrapup, r);
    }

    /// Task and its reservation to completed; capacity freed; purge scheduled.
    pub(crate) fn complete_task(
        &mut self,
        out: &mut Effects,
        now: Timestamp,
        task: Sid,
        reason: Option<String>,
    ) -> Result<(), Error> {
        let t = self.task_or_404(task)?;
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
        self.emit_task_change(out, now, EventType::TaskCompleted, task, " completed");
        for r in self.task_reservations.get(&task).cloned().unwrap_or_default() {
            // A worker the task was transferred from ends its part itself.
            if !self.handed_off(r) {
                self.complete_reservation(out, now, r);
            }
        }
        Ok(())
    }

    /// An accepted or wrapping reservation to completed: its worker's capacity freed and offered work.
    pub(crate) fn complete_reservation(&mut self, out: &mut Effects, now: Timestamp, r: Sid) {
        let wsid = self.ws.sid;
        let Some(res) = self.reservations.get_mut(&r) else { return };
        if !matches!(res.reservation_status, ReservationStatus::Accepted | ReservationStatus::Wrapping) {
            return;
        }
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

    fn release_assigned(&mut self, out: &mut Effects, worker: Sid, channel: Sid) {
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
        out: &mut Effects,
        now: Timestamp,
        task: Sid,
        reason: String,
    ) -> Result<(), Error> {
        let t = self.task_or_404(task)?;
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
        self.transfer_task_canceled(out, now, task);
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
    pub(crate) fn task_ttl(&mut self, out: &mut Effects, now: Timestamp, task: Sid) {
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
    pub(crate) fn purge_task(&mut self, out: &mut Effects, task: Sid) {
        let wsid = self.ws.sid;
        if !self.tasks.get(&task).is_some_and(|t| t.assignment_status.is_terminal()) {
            return;
        }
        self.remove_task(out, task);
        out.touch(Key::Task(wsid, task));
    }

    fn remove_task(&mut self, out: &mut Effects, task: Sid) {
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
}
