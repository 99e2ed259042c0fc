//! Reservations: creating one for a task and a worker, and its lifecycle (reference §6, §7).

use super::space::Space;
use super::{parse_param, Effects, Key, Timer};
use crate::command::*;
use crate::error::Error;
use crate::event::{EventData, EventType, Field, Part};
use crate::model::*;
use crate::sid::{Prefix, Sid};
use crate::time::Timestamp;

impl Space {
    pub(crate) fn emit_reservation(&self, out: &mut Effects, now: Timestamp, ty: EventType, r: Sid) {
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

    /// Creates a pending reservation (reference §6). Returns false if the task was canceled instead (max
    /// assignment count).
    pub(crate) fn create_reservation(
        &mut self,
        out: &mut Effects,
        now: Timestamp,
        task: Sid,
        worker: Sid,
    ) -> bool {
        let wsid = self.ws.sid;
        let max = out.config.max_assignment_count;
        // A transfer's offer carries it, and does not count towards the task's assignment limit.
        let transfer = self.active_transfer(task);
        let Some(t) = self.tasks.get_mut(&task) else { return false };
        if t.assignment_status == TaskStatus::Pending && transfer.is_none() {
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
            outgoing_transfer: None,
            transferred_from: transfer,
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

    /// Moves a pending reservation to `status`: its timeout canceled and, when multitasking, the worker's
    /// reserved slot on the channel freed (taken as an assigned one if accepted). Returns its task, worker
    /// and queue.
    fn settle(
        &mut self,
        out: &mut Effects,
        now: Timestamp,
        r: Sid,
        status: ReservationStatus,
    ) -> Option<(Sid, Sid, Option<Sid>)> {
        let wsid = self.ws.sid;
        let res = self.reservations.get_mut(&r)?;
        res.reservation_status = status;
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
                if status == ReservationStatus::Accepted {
                    wc.assigned_tasks += 1;
                }
                out.touch(Key::WorkerChannel(wsid, wc.sid));
            }
        }
        Some((task, worker, queue))
    }

    /// Ends a pending reservation without acceptance; the task goes back to pending when none is left.
    fn end_pending(
        &mut self,
        out: &mut Effects,
        now: Timestamp,
        r: Sid,
        status: ReservationStatus,
        ty: EventType,
    ) {
        let wsid = self.ws.sid;
        let Some(res) = self.reservations.get(&r) else { return };
        if res.reservation_status != ReservationStatus::Pending {
            return;
        }
        let Some((task, worker, _)) = self.settle(out, now, r, status) else { return };
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
    pub(crate) fn reservation_timed_out(&mut self, out: &mut Effects, now: Timestamp, r: Sid) {
        if self.reservations.get(&r).map(|res| res.reservation_status) != Some(ReservationStatus::Pending) {
            return;
        }
        let timeout_activity = self.ws.timeout_activity_sid;
        self.decline(out, now, r, ReservationStatus::Timeout, Some(timeout_activity));
    }

    /// Reject: worker to `activity`, else (when `use_previous`) back to its activity before the reservation.
    pub(crate) fn reject_reservation(
        &mut self,
        out: &mut Effects,
        now: Timestamp,
        r: Sid,
        activity: Option<Sid>,
        use_previous: bool,
    ) {
        let previous = self.reservations.get(&r).and_then(|res| res.worker_previous_activity_sid);
        let target = activity.or(if use_previous { previous } else { None });
        self.decline(out, now, r, ReservationStatus::Rejected, target);
    }

    /// A pending reservation rejected or timed out (`status`): ended, its worker moved to `activity` if
    /// given, and then, if a transfer made it, the transfer told (after the move, so a task given back to
    /// its workflow is not offered to that worker again).
    fn decline(
        &mut self,
        out: &mut Effects,
        now: Timestamp,
        r: Sid,
        status: ReservationStatus,
        activity: Option<Sid>,
    ) {
        let Some(worker) = self.reservations.get(&r).map(|res| res.worker_sid) else { return };
        let ty = match status {
            ReservationStatus::Timeout => EventType::ReservationTimeout,
            _ => EventType::ReservationRejected,
        };
        self.end_pending(out, now, r, status, ty);
        if let Some(a) = activity {
            self.set_worker_activity(out, now, worker, a);
        }
        self.transfer_attempt_ended(out, now, r, status);
    }

    /// Cancels (or rescinds) every pending reservation of a task, reverting reservation-activity switches.
    pub(crate) fn withdraw_pending(
        &mut self,
        out: &mut Effects,
        now: Timestamp,
        task: Sid,
        status: ReservationStatus,
    ) {
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
    pub(crate) fn accept(&mut self, out: &mut Effects, now: Timestamp, r: Sid) -> Result<(), Error> {
        self.check_pending(r, "accept")?;
        let wsid = self.ws.sid;
        let Some((task, worker, queue)) = self.settle(out, now, r, ReservationStatus::Accepted) else {
            return Err(Error::not_found(r.to_string()));
        };
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
        self.transfer_accepted(out, now, r);
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

    /// Places the call to the worker (the `dequeue` and `call` instructions): its SID goes into the task's
    /// attributes as `worker_call_sid`.
    fn call_worker(&mut self, out: &mut Effects, now: Timestamp, task: Sid) {
        let call = out.sid(Prefix::Call);
        self.merge_task_attributes(out, now, task, serde_json::json!({"worker_call_sid": call.to_string()}));
    }

    /// Reservation update other than the conference instruction (reference §7).
    pub(crate) fn update_reservation(
        &mut self,
        out: &mut Effects,
        now: Timestamp,
        r: Sid,
        p: &UpdateReservationParams,
    ) -> Result<(), Error> {
        let res = self.reservations.get(&r).ok_or_else(|| Error::not_found(r.to_string()))?.clone();
        let status = parse_param(
            "ReservationStatus",
            p.reservation_status.as_deref(),
            ReservationStatus::parse,
            "one of accepted, rejected, wrapping, completed",
        )?;
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
                self.call_worker(out, now, res.task_sid);
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
                self.call_worker(out, now, res.task_sid);
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
            (None, Some(ReservationStatus::Wrapping | ReservationStatus::Completed))
                if self.transfer(r).is_some_and(|t| t.transfer_status == TransferStatus::Initiated) =>
            {
                Err(Error::illegal(format!(
                    "Cannot end reservation {r} in workspace {}: its transfer of task {} is in progress; cancel \
                     the transfer first",
                    self.ws.sid, res.task_sid
                )))
            }
            (None, Some(ReservationStatus::Completed)) if self.handed_off(r) => {
                // The task went on to another worker: this worker's part ends alone.
                self.complete_reservation(out, now, r);
                Ok(())
            }
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
