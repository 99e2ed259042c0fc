//! Workflows: their CRUD, and running a task through a workflow's filters and targets (reference §5).

use super::space::{validate_name, verb, Space};
use super::{Effects, Key, Reply, Timer};
use crate::command::*;
use crate::error::Error;
use crate::event::{EventData, EventType, Field, Part};
use crate::expr::WorkerCounts;
use crate::model::*;
use crate::sid::{Prefix, Sid};
use crate::time::Timestamp;
use crate::workflow::{Target, WorkflowConfig};
use serde_json::Value;

/// How a pass over a filter's targets ended.
enum Exit {
    Entered,
    Exhausted { skipped: bool },
}

impl Space {
    fn emit_workflow(&self, out: &mut Effects, now: Timestamp, t: EventType, w: &Workflow) {
        let mut data = EventData::with_capacity(6, 64);
        data.desc(&[Part::S("Workflow "), Part::S(&w.friendly_name), Part::S(" "), Part::S(verb(t))])
            .sid(Field::WorkflowSid, w.sid)
            .text(Field::WorkflowName, &w.friendly_name);
        out.emit(&self.ws, now, t, "workflow", w.sid, data);
    }

    fn parse_config(&self, text: &str) -> Result<WorkflowConfig, Error> {
        WorkflowConfig::parse(text, &|q| self.queues.contains_key(&q))
            .map_err(|e| Error::invalid("Configuration", e))
    }

    fn check_reservation_timeout(t: Option<i64>) -> Result<(), Error> {
        if let Some(t) = t {
            if !(1..=86_400).contains(&t) {
                return Err(Error::invalid(
                    "TaskReservationTimeout",
                    format!("must be between 1 and 86400 seconds, not {t}"),
                ));
            }
        }
        Ok(())
    }

    pub(crate) fn create_workflow(
        &mut self,
        out: &mut Effects,
        now: Timestamp,
        p: WorkflowParams,
    ) -> Result<Workflow, Error> {
        let name = p.friendly_name.ok_or_else(|| Error::invalid("FriendlyName", "is required"))?;
        validate_name("FriendlyName", &name)?;
        let text = p.configuration.ok_or_else(|| Error::invalid("Configuration", "is required"))?;
        let config = self.parse_config(&text)?;
        Self::check_reservation_timeout(p.task_reservation_timeout)?;
        let sid = out.sid(Prefix::Workflow);
        let w = Workflow {
            account_sid: out.account_sid,
            workspace_sid: self.ws.sid,
            sid,
            friendly_name: name,
            configuration: text,
            config: std::sync::Arc::new(config),
            assignment_callback_url: p.assignment_callback_url.filter(|u| !u.is_empty()),
            fallback_assignment_callback_url: p.fallback_assignment_callback_url.filter(|u| !u.is_empty()),
            task_reservation_timeout: p.task_reservation_timeout.unwrap_or(120) as u32,
            document_content_type: "application/json".into(),
            date_created: now,
            date_updated: now,
        };
        self.emit_workflow(out, now, EventType::WorkflowCreated, &w);
        self.workflows.insert(sid, w.clone());
        out.touch(Key::Workflow(self.ws.sid, sid));
        Ok(w)
    }

    pub(crate) fn update_workflow(
        &mut self,
        out: &mut Effects,
        now: Timestamp,
        sid: Sid,
        p: WorkflowParams,
    ) -> Result<Reply, Error> {
        if !self.workflows.contains_key(&sid) {
            return Err(self.missing("Workflows", sid));
        }
        if let Some(n) = &p.friendly_name {
            validate_name("FriendlyName", n)?;
        }
        let config = match &p.configuration {
            Some(t) => Some(self.parse_config(t)?),
            None => None,
        };
        Self::check_reservation_timeout(p.task_reservation_timeout)?;
        let Some(w) = self.workflows.get_mut(&sid) else { return Err(Error::not_found(sid.to_string())) };
        if let Some(n) = p.friendly_name {
            w.friendly_name = n;
        }
        if let (Some(t), Some(c)) = (p.configuration, config) {
            w.configuration = t;
            w.config = std::sync::Arc::new(c);
        }
        if let Some(u) = p.assignment_callback_url {
            w.assignment_callback_url = Some(u).filter(|u| !u.is_empty());
        }
        if let Some(u) = p.fallback_assignment_callback_url {
            w.fallback_assignment_callback_url = Some(u).filter(|u| !u.is_empty());
        }
        if let Some(t) = p.task_reservation_timeout {
            w.task_reservation_timeout = t as u32;
        }
        w.date_updated = now;
        let w = w.clone();
        out.touch(Key::Workflow(self.ws.sid, sid));
        self.emit_workflow(out, now, EventType::WorkflowUpdated, &w);
        if p.re_evaluate_tasks == Some(true) {
            let mut tasks: Vec<&Task> = self
                .tasks
                .values()
                .map(|t| &**t)
                .filter(|t| t.workflow_sid == Some(sid) && t.assignment_status == TaskStatus::Pending)
                .collect();
            tasks.sort_by_key(|t| (t.date_created, t.sid));
            let tasks: Vec<Sid> = tasks.into_iter().map(|t| t.sid).collect();
            for t in tasks {
                self.reevaluate(out, now, t);
            }
        }
        Ok(Reply::Workflow(w))
    }

    pub(crate) fn delete_workflow(
        &mut self,
        out: &mut Effects,
        now: Timestamp,
        sid: Sid,
    ) -> Result<Reply, Error> {
        let w = self.workflows.get(&sid).ok_or_else(|| self.missing("Workflows", sid))?.clone();
        if self.tasks.values().any(|t| t.workflow_sid == Some(sid) && !t.assignment_status.is_terminal()) {
            return Err(Error::illegal(format!(
                "Cannot delete Workflow {sid} because tasks are still in it; complete or cancel them first"
            )));
        }
        self.workflows.remove(&sid);
        out.touch(Key::Workflow(self.ws.sid, sid));
        self.emit_workflow(out, now, EventType::WorkflowDeleted, &w);
        Ok(Reply::Deleted)
    }

    /// Runs a task through its workflow from `start_filter`. `timed_out`: a filter already timed out (the
    /// default filter is then no longer a fallback). `parsed`: the task's attributes if the caller has them
    /// parsed already (else they are parsed here, once, if a filter is evaluated).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn enter_workflow(
        &mut self,
        out: &mut Effects,
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
        out: &mut Effects,
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
    pub(crate) fn target_timed_out(&mut self, out: &mut Effects, now: Timestamp, task: Sid) {
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
    pub(crate) fn reevaluate(&mut self, out: &mut Effects, now: Timestamp, task: Sid) {
        // A task being transferred is routed to its transfer's target, not through its workflow.
        if self.active_transfer(task).is_some() {
            return;
        }
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
}
