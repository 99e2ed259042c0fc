//! Task transfers: the worker SDK's `Task.transfer` and `OutgoingTransfer.cancel` (eb §4.3, §3.5).
//!
//! Twilio has transfers on the event bridge only (the public REST API has no Transfers resource) and
//! documents what the SDK sees, not the rules behind it; those are chosen here and written down:
//! - A worker transfers a task it holds: its reservation is accepted and the task assigned. One transfer
//!   at a time per task.
//! - To a worker (`WK…`, type WORKER): that worker is offered the task at once, whatever its queues, if it
//!   is available with room for it; otherwise the transfer is refused (400), nothing changed. To a task
//!   queue (`WQ…`, type QUEUE): the task joins that queue and waits for its next worker like any task.
//! - The task goes back to pending with the target as its `routing_target` (and, for a queue, the queue as
//!   its queue); `Attributes` and `Priority` replace the task's. A reservation a transfer makes carries the
//!   transfer (`task_transfer`), and does not count towards the task's assignment limit.
//! - Cold: the transferring worker's reservation goes to wrapping at once and its leg leaves the task's
//!   conference. Warm: it stays accepted, on the call, until the new worker accepts; it then goes to
//!   wrapping (its leg stays until it hangs up).
//! - The new worker's accept completes the transfer (`task.transfer-completed`); its `conference`
//!   instruction joins the task's conference rather than starting one.
//! - A reject or timeout is a failed attempt (`task.transfer-attempt-failed`). To a worker, that fails the
//!   transfer (`task.transfer-failed`); in a queue, the next worker is tried.
//! - A failed or canceled transfer gives the task back: warm, to the transferring worker, assigned as
//!   before; cold (that worker has left the call), to its workflow from the start, or its queue when it has
//!   no workflow. A task canceled meanwhile (the caller hung up) fails the transfer, and a warm transferring
//!   worker's reservation goes to wrapping.
//! - A reservation whose task went on to another worker (cold, or a completed warm transfer) is completed
//!   by its own worker, alone: completing the task later does not complete it.

use super::space::Space;
use super::{space_mut, Core, Effects, Key, Reply};
use crate::command::{Command, TransferParams};
use crate::core::space::parse_attributes;
use crate::core::tasks::checked_priority;
use crate::error::Error;
use crate::event::{EventType, Field, Part};
use crate::model::*;
use crate::sid::{Prefix, Sid};
use crate::time::Timestamp;

/// How a transfer that did not complete ended.
enum Ending<'a> {
    /// With the reason given.
    Failed(&'a str),
    Canceled,
}

impl Core {
    /// `CreateTransfer` and `CancelTransfer`; answers the initiating reservation, which holds the transfer.
    pub(crate) fn apply_transfer(&mut self, now: Timestamp, cmd: Command) -> Result<Reply, Error> {
        let Core { spaces, out, .. } = self;
        let (ws, from, leaves) = match cmd {
            Command::CreateTransfer { workspace_sid: ws, worker_sid, params } => {
                let sp = space_mut(spaces, ws)?;
                let from = sp.create_transfer(out, now, worker_sid, *params)?;
                let cold = sp.transfer(from).is_some_and(|t| t.transfer_mode == TransferMode::Cold);
                let task = sp.reservations.get(&from).and_then(|r| sp.tasks.get(&r.task_sid));
                (ws, from, task.and_then(|t| t.conference()).filter(|_| cold))
            }
            Command::CancelTransfer { workspace_sid: ws, worker_sid, task_sid, sid } => {
                let from = space_mut(spaces, ws)?.cancel_transfer(out, now, worker_sid, task_sid, sid)?;
                (ws, from, None)
            }
            _ => return Err(Error::illegal("not a transfer command")),
        };
        if let Some(c) = leaves {
            // A cold transfer: the worker leaves the call at once. Its leg is dropped without the rules of a
            // leg that hangs up, so the caller's conference stays up for the next worker.
            self.drop_leg(c.sid, c.worker);
        }
        let res = self.spaces.get(&ws).and_then(|s| s.reservations.get(&from));
        res.cloned().map(Reply::Reservation).ok_or_else(|| Error::not_found(from.to_string()))
    }
}

impl Space {
    /// The transfer reservation `from` made, if any.
    pub(crate) fn transfer(&self, from: Sid) -> Option<&Transfer> {
        self.reservations.get(&from)?.outgoing_transfer.as_deref()
    }

    /// The reservation whose transfer of `task` is in progress, if any.
    pub(crate) fn active_transfer(&self, task: Sid) -> Option<Sid> {
        let initiated =
            |r: &&Sid| self.transfer(**r).is_some_and(|t| t.transfer_status == TransferStatus::Initiated);
        self.task_reservations.get(&task)?.iter().find(initiated).copied()
    }

    /// Whether reservation `r`'s task has gone on to another worker: a cold transfer (whatever became of
    /// it: the worker left the call), or a warm one that completed.
    pub(crate) fn handed_off(&self, r: Sid) -> bool {
        self.transfer(r).is_some_and(|t| {
            t.transfer_mode == TransferMode::Cold || t.transfer_status == TransferStatus::Complete
        })
    }

    /// Emits `ty` for the transfer reservation `from` made: the task's fields, the transfer's, and the
    /// transferring worker and reservation (whose channel the worker SDK expects it on).
    fn emit_transfer(&self, out: &mut Effects, now: Timestamp, ty: EventType, from: Sid) {
        let Some(tr) = self.transfer(from) else { return };
        let Some(t) = self.tasks.get(&tr.task_sid) else { return };
        let mut data = Self::task_data(t, 8);
        let what = ty.as_str().trim_start_matches("task.transfer-");
        data.desc(&[
            Part::S("Transfer "),
            Part::Sid(tr.sid),
            Part::S(" of task "),
            Part::Sid(t.sid),
            Part::S(" "),
            Part::S(what),
        ]);
        self.push_task_fields(t, now, &mut data);
        data.sid(Field::TransferSid, tr.sid)
            .fixed(Field::TransferMode, tr.transfer_mode.as_str())
            .fixed(Field::TransferType, tr.transfer_type())
            .sid(Field::TransferTo, tr.transfer_to)
            .fixed(Field::TransferStatus, tr.transfer_status.as_str())
            .sid(Field::ReservationSid, from)
            .sid(Field::WorkerSid, tr.initiating_worker_sid);
        if let Some(reason) = &tr.transfer_failed_reason {
            data.text(Field::TransferFailedReason, reason);
        }
        out.emit(&self.ws, now, ty, "task", t.sid, data);
    }

    /// Validates and starts a transfer; returns the initiating reservation.
    fn create_transfer(
        &mut self,
        out: &mut Effects,
        now: Timestamp,
        worker: Sid,
        p: TransferParams,
    ) -> Result<Sid, Error> {
        let (r, task) = (p.reservation_sid, p.task_sid);
        let res = self.reservations.get(&r).filter(|x| x.worker_sid == worker && x.task_sid == task);
        let res = res.ok_or_else(|| self.missing(&format!("Workers/{worker}/Reservations"), r))?;
        if res.reservation_status != ReservationStatus::Accepted {
            return Err(Error::illegal(format!(
                "Cannot transfer task {task} from reservation {r}: the reservation is {}, and a worker transfers \
                 a task it has accepted",
                res.reservation_status.as_str()
            )));
        }
        if let Some(tr) = self.active_transfer(task).and_then(|f| self.transfer(f)) {
            return Err(Error::illegal(format!(
                "Cannot transfer task {task}: its transfer {} is in progress; cancel it first",
                tr.sid
            )));
        }
        let t = self.tasks.get(&task).ok_or_else(|| self.missing("Tasks", task))?;
        if t.assignment_status != TaskStatus::Assigned {
            return Err(Error::illegal(format!(
                "Cannot transfer task {task}: it is {}, not assigned",
                t.assignment_status.as_str()
            )));
        }
        let mode = match p.mode.as_deref().map(str::to_ascii_uppercase).as_deref() {
            None | Some("WARM") => TransferMode::Warm,
            Some("COLD") => TransferMode::Cold,
            Some(other) => {
                return Err(Error::invalid("Mode", format!("must be WARM or COLD, not '{other}'")))
            }
        };
        let to = Sid::parse(&p.to).ok().filter(|s| match s.prefix() {
            Prefix::Worker => self.workers.contains_key(s),
            Prefix::TaskQueue => self.queues.contains_key(s),
            _ => false,
        });
        let to = to.ok_or_else(|| {
            Error::invalid(
                "To",
                format!(
                    "'{}' is not a worker (WK…) or a task queue (WQ…) of workspace {}",
                    p.to, self.ws.sid
                ),
            )
        })?;
        if to == worker {
            return Err(Error::invalid("To", "names the transferring worker itself"));
        }
        if t.task_queue_sid.is_none() {
            return Err(Error::illegal(format!("Cannot transfer task {task}: it is in no task queue")));
        }
        // The offer must be one routing will make: else the task would wait for a worker who cannot take it.
        if let Some(w) = self.workers.get(&to).filter(|w| !self.can_take(t, w)) {
            return Err(Error::illegal(format!(
                "Cannot transfer task {task} to worker {to}: it is {} and cannot take the task now; transfer \
                 to a task queue to let its next worker take it",
                if w.available { "busy" } else { &w.activity_name }
            )));
        }
        let attributes = match p.attributes {
            Some(text) => {
                parse_attributes(&text)?;
                Some(text)
            }
            None => None,
        };
        let priority = p.priority.map(checked_priority).transpose()?;
        // Validated; start it.
        let wsid = self.ws.sid;
        let transfer = Transfer {
            sid: out.sid(Prefix::Transfer),
            task_sid: task,
            initiating_reservation_sid: r,
            initiating_worker_sid: worker,
            initiating_queue_sid: t.task_queue_sid,
            initiating_workflow_sid: t.workflow_sid,
            transfer_to: to,
            transfer_mode: mode,
            transfer_status: TransferStatus::Initiated,
            transfer_failed_reason: None,
            previous_routing_target: t.routing_target,
            date_created: now,
            date_updated: now,
        };
        if let Some(res) = self.reservations.get_mut(&r) {
            res.outgoing_transfer = Some(Box::new(transfer));
            res.version += 1;
            res.date_updated = now;
        }
        out.touch(Key::Reservation(wsid, r));
        if let Some(t) = self.tasks.get_mut(&task) {
            if let Some(text) = attributes {
                t.attributes = text.into_boxed_str();
            }
            if let Some(priority) = priority {
                t.priority = priority;
            }
        }
        let queue = (to.prefix() == Prefix::TaskQueue).then_some(to);
        self.reroute(out, now, task, TaskStatus::Pending, Some(to), queue, " transferred");
        self.emit_transfer(out, now, EventType::TaskTransferInitiated, r);
        if mode == TransferMode::Cold {
            self.wrap_reservation(out, now, r);
        }
        out.route_tasks.push_back((wsid, task));
        Ok(r)
    }

    /// Moves `task` to `status` with `routing_target` (and to `queue`, if given and still there), out of any
    /// workflow step, and says so with `task.updated` ("Task {task}{what}").
    #[allow(clippy::too_many_arguments)]
    fn reroute(
        &mut self,
        out: &mut Effects,
        now: Timestamp,
        task: Sid,
        status: TaskStatus,
        routing_target: Option<Sid>,
        queue: Option<Sid>,
        what: &str,
    ) {
        let queue_name = queue.and_then(|q| self.queues.get(&q)).map(|q| q.friendly_name.clone());
        let queue = queue_name.map(|name| (queue, self.names.get(&name)));
        if let Some(t) = self.tasks.get_mut(&task) {
            t.assignment_status = status;
            t.routing = None;
            t.routing_target = routing_target;
            if let Some((q, name)) = queue {
                t.task_queue_sid = q;
                t.task_queue_friendly_name = Some(name);
                t.task_queue_entered_date = Some(now);
            }
            t.version += 1;
            t.date_updated = now;
        }
        out.touch(Key::Task(self.ws.sid, task));
        self.emit_task_sid(
            out,
            now,
            EventType::TaskUpdated,
            task,
            &[Part::S("Task "), Part::Sid(task), Part::S(what)],
        );
        self.reindex_task(task);
    }

    /// `OutgoingTransfer.cancel`: the transferring worker takes it back; returns the initiating reservation.
    fn cancel_transfer(
        &mut self,
        out: &mut Effects,
        now: Timestamp,
        worker: Sid,
        task: Sid,
        transfer: Sid,
    ) -> Result<Sid, Error> {
        let theirs = |r: &&Sid| {
            self.transfer(**r).is_some_and(|t| t.sid == transfer && t.initiating_worker_sid == worker)
        };
        let from = self.task_reservations.get(&task).and_then(|rs| rs.iter().find(theirs).copied());
        let from = from.ok_or_else(|| self.missing(&format!("Workers/{worker}/Transfers"), transfer))?;
        let status = self.transfer(from).map(|t| t.transfer_status);
        if status != Some(TransferStatus::Initiated) {
            return Err(Error::illegal(format!(
                "Cannot cancel transfer {transfer}: it is {}, and only an initiated transfer can be canceled",
                status.map_or("gone", TransferStatus::as_str)
            )));
        }
        self.end_transfer(out, now, from, Ending::Canceled);
        Ok(from)
    }

    /// Reservation `r` was accepted: if a transfer made it, the transfer is complete and the transferring
    /// worker's reservation goes to wrapping (already so when cold).
    pub(crate) fn transfer_accepted(&mut self, out: &mut Effects, now: Timestamp, r: Sid) {
        let Some(from) = self.reservations.get(&r).and_then(|x| x.transferred_from) else { return };
        if self.transfer(from).map(|t| t.transfer_status) != Some(TransferStatus::Initiated) {
            return;
        }
        self.set_transfer_status(out, now, from, TransferStatus::Complete, None);
        self.emit_transfer(out, now, EventType::TaskTransferCompleted, from);
        self.wrap_reservation(out, now, from);
    }

    /// Reservation `r` was rejected or timed out (`status`): if a transfer made it, a failed attempt, which
    /// fails a transfer to a worker. Called once the worker's activity has moved.
    pub(crate) fn transfer_attempt_ended(
        &mut self,
        out: &mut Effects,
        now: Timestamp,
        r: Sid,
        status: ReservationStatus,
    ) {
        let Some(from) = self.reservations.get(&r).and_then(|x| x.transferred_from) else { return };
        let Some(tr) = self.transfer(from) else { return };
        if tr.transfer_status != TransferStatus::Initiated {
            return;
        }
        let to_worker = tr.transfer_to.prefix() == Prefix::Worker;
        self.emit_transfer(out, now, EventType::TaskTransferAttemptFailed, from);
        if to_worker {
            let reason = match status {
                ReservationStatus::Rejected => "the worker rejected it",
                _ => "the worker did not answer in time",
            };
            self.end_transfer(out, now, from, Ending::Failed(reason));
        }
    }

    /// The task is being canceled: its transfer in progress, if any, fails.
    pub(crate) fn transfer_task_canceled(&mut self, out: &mut Effects, now: Timestamp, task: Sid) {
        if let Some(from) = self.active_transfer(task) {
            self.end_transfer(out, now, from, Ending::Failed("the task was canceled"));
        }
    }

    fn set_transfer_status(
        &mut self,
        out: &mut Effects,
        now: Timestamp,
        from: Sid,
        status: TransferStatus,
        reason: Option<&str>,
    ) {
        let wsid = self.ws.sid;
        let Some(res) = self.reservations.get_mut(&from) else { return };
        if let Some(tr) = res.outgoing_transfer.as_deref_mut() {
            tr.transfer_status = status;
            tr.transfer_failed_reason = reason.map(str::to_owned);
            tr.date_updated = now;
        }
        res.version += 1;
        res.date_updated = now;
        out.touch(Key::Reservation(wsid, from));
    }

    /// Ends a transfer that did not complete and gives the task back (see the module doc): its offers are
    /// withdrawn, then warm, to the transferring worker; cold, to its workflow.
    fn end_transfer(&mut self, out: &mut Effects, now: Timestamp, from: Sid, ending: Ending<'_>) {
        let (status, reason, ty) = match ending {
            Ending::Failed(why) => (TransferStatus::Failed, Some(why), EventType::TaskTransferFailed),
            Ending::Canceled => (TransferStatus::Canceled, None, EventType::TaskTransferCanceled),
        };
        self.set_transfer_status(out, now, from, status, reason);
        self.emit_transfer(out, now, ty, from);
        let Some(tr) = self.transfer(from).cloned() else { return };
        let task = tr.task_sid;
        // Its offers are withdrawn (their own hook sees the transfer ended and does nothing more).
        self.withdraw_pending(out, now, task, ReservationStatus::Canceled);
        let wsid = self.ws.sid;
        let Some(status) = self.tasks.get(&task).map(|t| t.assignment_status) else { return };
        if status.is_terminal() {
            self.wrap_reservation(out, now, from);
            return;
        }
        let warm = tr.transfer_mode == TransferMode::Warm;
        let has_workflow = tr.initiating_workflow_sid.is_some_and(|w| self.workflows.contains_key(&w));
        let status = if warm { TaskStatus::Assigned } else { TaskStatus::Pending };
        let (target, queue) = (tr.previous_routing_target, tr.initiating_queue_sid);
        self.reroute(out, now, task, status, target, queue, " back from its transfer");
        if !warm && has_workflow {
            self.reevaluate(out, now, task);
        } else if !warm {
            out.route_tasks.push_back((wsid, task));
        }
    }
}
