//! Read-only views for the facade: fetch by SID, filtered lists (ordered by creation) and statistics.
//!
//! Lists are computed on demand; they are not on the routing hot path. Real-time statistics are computed here
//! from the current state; cumulative statistics are windows over the event log, counted by
//! [`crate::cumulative`], so the core keeps no counters on the routing path.

use super::space::Space;
use super::{Core, Reply, Timer};
use crate::error::{quote, Error};
use crate::expr::{Expr, WorkerScope};
use crate::model::*;
use crate::sid::{Prefix, Sid};
use crate::time::Timestamp;
use serde_json::Value;
use std::collections::BTreeMap;

/// Activity list filters.
#[derive(Debug, Clone, Default)]
pub struct ActivityFilter {
    pub friendly_name: Option<String>,
    pub available: Option<bool>,
}

/// Worker list filters (reference §4.4).
#[derive(Debug, Clone, Default)]
pub struct WorkerFilter {
    pub activity_name: Option<String>,
    pub activity_sid: Option<Sid>,
    pub available: Option<bool>,
    pub friendly_name: Option<String>,
    pub target_workers_expression: Option<String>,
    pub task_queue_name: Option<String>,
    pub task_queue_sid: Option<Sid>,
}

/// TaskQueue list filters (reference §4.6).
#[derive(Debug, Clone, Default)]
pub struct TaskQueueFilter {
    pub friendly_name: Option<String>,
    /// A worker-attributes JSON object: queues whose `target_workers` match it.
    pub evaluate_worker_attributes: Option<String>,
    pub worker_sid: Option<Sid>,
}

/// Sorts by an `Ordering` parameter (reference §4.8): `Attribute:asc|desc` pairs, comma-separated, the first
/// pair deciding first; the sort is stable, so ties keep the list's order (creation). Tasks accept
/// `DateCreated`, `Priority` and `VirtualStartTime` (the first and last cannot be combined, per the spec).
/// The spec names no attributes for Workers and TaskQueues ("Sorting parameter"); [INFER] they accept the dates
/// every resource has and the friendly name (and Workers `DateStatusChanged`).
pub trait Ordered: Sized + 'static {
    /// The attributes `Ordering` may name, with how each compares two items.
    const ORDERING: &'static [(&'static str, Compare<Self>)];

    /// Checks combinations of attributes the resource refuses (none unless overridden).
    fn check_ordering(_names: &[&str]) -> Result<(), Error> {
        Ok(())
    }
}

/// How one `Ordering` attribute compares two items.
pub type Compare<T> = fn(&T, &T) -> std::cmp::Ordering;

impl Ordered for Task {
    const ORDERING: &'static [(&'static str, Compare<Task>)] = &[
        ("DateCreated", |a, b| a.date_created.cmp(&b.date_created)),
        ("Priority", |a, b| a.priority.cmp(&b.priority)),
        ("VirtualStartTime", |a, b| a.virtual_start_time.cmp(&b.virtual_start_time)),
    ];

    fn check_ordering(names: &[&str]) -> Result<(), Error> {
        if names.contains(&"DateCreated") && names.contains(&"VirtualStartTime") {
            return Err(bad_ordering("DateCreated and VirtualStartTime cannot be combined"));
        }
        Ok(())
    }
}

impl Ordered for Worker {
    const ORDERING: &'static [(&'static str, Compare<Worker>)] = &[
        ("DateCreated", |a, b| a.date_created.cmp(&b.date_created)),
        ("DateUpdated", |a, b| a.date_updated.cmp(&b.date_updated)),
        ("DateStatusChanged", |a, b| a.date_status_changed.cmp(&b.date_status_changed)),
        ("FriendlyName", |a, b| a.friendly_name.cmp(&b.friendly_name)),
    ];
}

impl Ordered for TaskQueue {
    const ORDERING: &'static [(&'static str, Compare<TaskQueue>)] = &[
        ("DateCreated", |a, b| a.date_created.cmp(&b.date_created)),
        ("DateUpdated", |a, b| a.date_updated.cmp(&b.date_updated)),
        ("FriendlyName", |a, b| a.friendly_name.cmp(&b.friendly_name)),
    ];
}

fn bad_ordering(message: impl Into<String>) -> Error {
    Error::InvalidParameter { param: "Ordering".into(), message: message.into() }
}

/// Sorts `items` by `ordering` (see [`Ordered`]); a blank `ordering` leaves them as they are.
pub fn order_by<T: Ordered>(items: &mut [T], ordering: &str) -> Result<(), Error> {
    if ordering.trim().is_empty() {
        return Ok(());
    }
    let mut keys: Vec<(Compare<T>, bool)> = Vec::new();
    let mut names: Vec<&str> = Vec::new();
    for part in ordering.split(',') {
        let (field, dir) = part.trim().split_once(':').unwrap_or((part.trim(), "asc"));
        let descending = match dir.to_ascii_lowercase().as_str() {
            "asc" => false,
            "desc" => true,
            other => return Err(bad_ordering(format!("'{other}' is not asc or desc"))),
        };
        let Some((name, compare)) = T::ORDERING.iter().find(|(name, _)| *name == field) else {
            let names: Vec<&str> = T::ORDERING.iter().map(|(n, _)| *n).collect();
            return Err(bad_ordering(format!("'{field}' is not one of {}", names.join(", "))));
        };
        names.push(name);
        keys.push((*compare, descending));
    }
    T::check_ordering(&names)?;
    items.sort_by(|a, b| {
        keys.iter()
            .map(|(compare, descending)| if *descending { compare(a, b).reverse() } else { compare(a, b) })
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    Ok(())
}

/// Task list filters (reference §4.8).
#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    pub priority: Option<i64>,
    /// Any of these statuses (empty = all).
    pub assignment_status: Vec<String>,
    pub workflow_sid: Option<Sid>,
    pub workflow_name: Option<String>,
    pub task_queue_sid: Option<Sid>,
    pub task_queue_name: Option<String>,
    pub evaluate_task_attributes: Option<String>,
    pub routing_target: Option<Sid>,
    /// `HasAddons=true`: only tasks with add-on data (`false` or absent: no filter, as in Twilio).
    pub has_addons: Option<bool>,
}

/// Workers per activity.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ActivityStat {
    pub sid: Sid,
    pub friendly_name: String,
    pub workers: u64,
}

/// Real-time statistics (workspace, queue or workflow scope).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RealTimeStats {
    pub activity_statistics: Vec<ActivityStat>,
    pub longest_task_waiting_age: i64,
    pub longest_task_waiting_sid: Option<Sid>,
    /// priority (as text) -> count of pending/reserved tasks.
    pub tasks_by_priority: BTreeMap<String, u64>,
    /// status -> count.
    pub tasks_by_status: BTreeMap<String, u64>,
    pub total_tasks: u64,
    pub total_workers: u64,
}

/// Queue-only real-time figures.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct QueueRealTime {
    pub stats: RealTimeStats,
    pub total_available_workers: u64,
    pub total_eligible_workers: u64,
}

/// The reservations `sids` names, in `status` when given and passing `keep`, oldest first.
fn reservations_of<'a>(
    sp: &'a Space,
    sids: impl IntoIterator<Item = &'a Sid>,
    status: Option<ReservationStatus>,
    keep: impl Fn(&Reservation) -> bool,
) -> Vec<&'a Reservation> {
    let v = sids
        .into_iter()
        .filter_map(|r| sp.reservations.get(r))
        .filter(|r| status.is_none_or(|s| r.reservation_status == s) && keep(r))
        .collect();
    by_created(v, |r| (r.date_created, r.sid))
}

fn by_created<T>(mut v: Vec<&T>, key: impl Fn(&T) -> (Timestamp, Sid)) -> Vec<&T> {
    v.sort_by_key(|x| key(x));
    v
}

fn parse_filter_expr(param: &str, text: &str) -> Result<Expr, Error> {
    Expr::parse(text).map_err(|e| Error::invalid(param, format!("{} {e}", quote(text))))
}

impl Reply {
    /// The SID of the resource the reply carries (a participant's is its call SID); `None` after a delete.
    /// What a caller that created something usually wants next, whatever it created.
    pub fn sid(&self) -> Option<Sid> {
        Some(match self {
            Reply::Workspace(r) => r.sid,
            Reply::Activity(r) => r.sid,
            Reply::TaskChannel(r) => r.sid,
            Reply::Worker(r) => r.sid,
            Reply::WorkerChannel(r) => r.sid,
            Reply::TaskQueue(r) => r.sid,
            Reply::Workflow(r) => r.sid,
            Reply::Task(r) => r.sid,
            Reply::Reservation(r) => r.sid,
            Reply::Conference(r) => r.sid,
            Reply::Participant(r) => r.call_sid,
            Reply::ApiKey(r) => r.sid,
            Reply::Deleted => return None,
        })
    }
}

impl Core {
    fn space(&self, ws: Sid) -> Result<&Space, Error> {
        self.spaces.get(&ws).ok_or_else(|| Error::not_found(format!("/Workspaces/{ws}")))
    }

    /// One workspace.
    pub fn workspace(&self, ws: Sid) -> Result<&Workspace, Error> {
        Ok(&self.space(ws)?.ws)
    }

    /// Workspaces, optionally by friendly name.
    pub fn workspaces(&self, friendly_name: Option<&str>) -> Vec<&Workspace> {
        let v = self
            .spaces
            .values()
            .map(|s| &s.ws)
            .filter(|w| friendly_name.is_none_or(|n| w.friendly_name == n))
            .collect();
        by_created(v, |w| (w.date_created, w.sid))
    }

    /// One activity.
    pub fn activity(&self, ws: Sid, sid: Sid) -> Result<&Activity, Error> {
        let sp = self.space(ws)?;
        sp.activities.get(&sid).ok_or_else(|| sp.missing("Activities", sid))
    }

    /// Activities.
    pub fn activities(&self, ws: Sid, f: &ActivityFilter) -> Result<Vec<&Activity>, Error> {
        let sp = self.space(ws)?;
        let v = sp
            .activities
            .values()
            .filter(|a| f.friendly_name.as_ref().is_none_or(|n| &a.friendly_name == n))
            .filter(|a| f.available.is_none_or(|x| a.available == x))
            .collect();
        Ok(by_created(v, |a| (a.date_created, a.sid)))
    }

    /// One task channel, by SID or unique name.
    pub fn task_channel(&self, ws: Sid, sid_or_name: &str) -> Result<&TaskChannel, Error> {
        let sp = self.space(ws)?;
        sp.channel_by_name(sid_or_name).ok_or_else(|| sp.missing("TaskChannels", sid_or_name))
    }

    /// Task channels.
    pub fn task_channels(&self, ws: Sid) -> Result<Vec<&TaskChannel>, Error> {
        let sp = self.space(ws)?;
        Ok(by_created(sp.channels.values().collect(), |c| (c.date_created, c.sid)))
    }

    /// One worker.
    pub fn worker(&self, ws: Sid, sid: Sid) -> Result<&Worker, Error> {
        let sp = self.space(ws)?;
        sp.workers.get(&sid).ok_or_else(|| sp.missing("Workers", sid))
    }

    /// Workers.
    pub fn workers(&self, ws: Sid, f: &WorkerFilter) -> Result<Vec<&Worker>, Error> {
        let sp = self.space(ws)?;
        let expr = match &f.target_workers_expression {
            Some(t) => Some(parse_filter_expr("TargetWorkersExpression", t)?),
            None => None,
        };
        let queue =
            match (&f.task_queue_sid, &f.task_queue_name) {
                (Some(q), _) => Some(*q),
                (None, Some(n)) => {
                    Some(sp.queues.values().find(|q| &q.friendly_name == n).map(|q| q.sid).ok_or_else(
                        || Error::invalid("TaskQueueName", format!("no TaskQueue named '{n}'")),
                    )?)
                }
                _ => None,
            };
        let members = queue.map(|q| sp.qidx.get(&q).map(|ix| &ix.members));
        let v = sp
            .workers
            .values()
            .filter(|w| f.activity_name.as_ref().is_none_or(|n| &w.activity_name == n))
            .filter(|w| f.activity_sid.is_none_or(|a| w.activity_sid == a))
            .filter(|w| f.available.is_none_or(|a| w.available == a))
            .filter(|w| f.friendly_name.as_ref().is_none_or(|n| w.friendly_name.eq_ignore_ascii_case(n)))
            .filter(|w| match members {
                None => true,
                Some(None) => false,
                Some(Some(m)) => m.contains(&w.sid),
            })
            .filter(|w| {
                expr.as_ref().is_none_or(|e| {
                    let sid = w.sid.to_string();
                    let act = w.activity_sid.to_string();
                    e.eval(&WorkerScope {
                        attributes: &w.attributes_value,
                        sid: &sid,
                        friendly_name: &w.friendly_name,
                        activity_sid: &act,
                        activity_name: &w.activity_name,
                    })
                })
            })
            .collect();
        Ok(by_created(v, |w| (w.date_created, w.sid)))
    }

    /// One worker channel, by WC SID or task channel unique name.
    pub fn worker_channel(&self, ws: Sid, worker: Sid, sid_or_name: &str) -> Result<&WorkerChannel, Error> {
        let sp = self.space(ws)?;
        let nf = || Error::not_found(sp.path(format!("Workers/{worker}/Channels/{sid_or_name}")));
        if let Ok(s) = Sid::parse_as(sid_or_name, Prefix::WorkerChannel) {
            return sp
                .worker_channels
                .get(&s)
                .map(|c| &**c)
                .filter(|c| c.worker_sid == worker)
                .ok_or_else(nf);
        }
        let ch = sp.channel_by_name(sid_or_name).ok_or_else(nf)?;
        sp.channel_of
            .get(&(worker, ch.sid))
            .and_then(|c| sp.worker_channels.get(c))
            .map(|c| &**c)
            .ok_or_else(nf)
    }

    /// A worker's channels.
    pub fn worker_channels(&self, ws: Sid, worker: Sid) -> Result<Vec<&WorkerChannel>, Error> {
        self.worker(ws, worker)?;
        let sp = self.space(ws)?;
        let v = sp.worker_channels.values().map(|c| &**c).filter(|c| c.worker_sid == worker).collect();
        Ok(by_created(v, |c| (c.date_created, c.sid)))
    }

    /// One queue.
    pub fn task_queue(&self, ws: Sid, sid: Sid) -> Result<&TaskQueue, Error> {
        let sp = self.space(ws)?;
        sp.queues.get(&sid).ok_or_else(|| sp.missing("TaskQueues", sid))
    }

    /// Queues.
    pub fn task_queues(&self, ws: Sid, f: &TaskQueueFilter) -> Result<Vec<&TaskQueue>, Error> {
        let sp = self.space(ws)?;
        let attrs: Option<Value> = match &f.evaluate_worker_attributes {
            Some(a) => Some(serde_json::from_str(a).map_err(|e| {
                Error::invalid("EvaluateWorkerAttributes", format!("is not a JSON object: {e}"))
            })?),
            None => None,
        };
        let v = sp
            .queues
            .values()
            .filter(|q| f.friendly_name.as_ref().is_none_or(|n| &q.friendly_name == n))
            .filter(|q| {
                f.worker_sid.is_none_or(|w| sp.worker_queues.get(&w).is_some_and(|l| l.contains(&q.sid)))
            })
            .filter(|q| attrs.as_ref().is_none_or(|a| q.target_expr.as_ref().is_some_and(|e| e.eval(a))))
            .collect();
        Ok(by_created(v, |q| (q.date_created, q.sid)))
    }

    /// One workflow.
    pub fn workflow(&self, ws: Sid, sid: Sid) -> Result<&Workflow, Error> {
        let sp = self.space(ws)?;
        sp.workflows.get(&sid).ok_or_else(|| sp.missing("Workflows", sid))
    }

    /// Workflows.
    pub fn workflows(&self, ws: Sid, friendly_name: Option<&str>) -> Result<Vec<&Workflow>, Error> {
        let sp = self.space(ws)?;
        let v =
            sp.workflows.values().filter(|w| friendly_name.is_none_or(|n| w.friendly_name == n)).collect();
        Ok(by_created(v, |w| (w.date_created, w.sid)))
    }

    /// One task.
    pub fn task(&self, ws: Sid, sid: Sid) -> Result<&Task, Error> {
        let sp = self.space(ws)?;
        sp.tasks.get(&sid).map(|t| &**t).ok_or_else(|| sp.missing("Tasks", sid))
    }

    /// Tasks, oldest first (the facade applies `Ordering`).
    pub fn tasks(&self, ws: Sid, f: &TaskFilter) -> Result<Vec<&Task>, Error> {
        let sp = self.space(ws)?;
        if let Some(priority) = f.priority {
            super::tasks::checked_priority(priority)?;
        }
        let statuses = f
            .assignment_status
            .iter()
            .map(|s| {
                TaskStatus::parse(s)
                    .ok_or_else(|| Error::invalid("AssignmentStatus", format!("'{s}' is not a task status")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let expr = match &f.evaluate_task_attributes {
            Some(t) => Some(parse_filter_expr("EvaluateTaskAttributes", t)?),
            None => None,
        };
        let v = sp
            .tasks
            .values()
            .map(|t| &**t)
            .filter(|t| f.priority.is_none_or(|p| t.priority == p))
            .filter(|t| statuses.is_empty() || statuses.contains(&t.assignment_status))
            .filter(|t| f.workflow_sid.is_none_or(|w| t.workflow_sid == Some(w)))
            .filter(|t| {
                f.workflow_name
                    .as_ref()
                    .is_none_or(|n| t.workflow_friendly_name.as_deref() == Some(n.as_str()))
            })
            .filter(|t| f.task_queue_sid.is_none_or(|q| t.task_queue_sid == Some(q)))
            .filter(|t| {
                f.task_queue_name
                    .as_ref()
                    .is_none_or(|n| t.task_queue_friendly_name.as_deref() == Some(n.as_str()))
            })
            .filter(|t| f.routing_target.is_none_or(|r| t.routing_target == Some(r)))
            .filter(|t| f.has_addons != Some(true) || !matches!(t.addons.trim(), "" | "{}"))
            .filter(|t| expr.as_ref().is_none_or(|e| e.eval(&t.attributes_value())))
            .collect();
        Ok(by_created(v, |t| (t.date_created, t.sid)))
    }

    /// One reservation (either view).
    pub fn reservation(&self, ws: Sid, sid: Sid) -> Result<&Reservation, Error> {
        let sp = self.space(ws)?;
        sp.reservations.get(&sid).ok_or_else(|| sp.missing("Reservations", sid))
    }

    /// A task's reservations.
    pub fn task_reservations(
        &self,
        ws: Sid,
        task: Sid,
        status: Option<ReservationStatus>,
        worker: Option<Sid>,
    ) -> Result<Vec<&Reservation>, Error> {
        self.task(ws, task)?;
        let sp = self.space(ws)?;
        let sids = sp.task_reservations.get(&task).into_iter().flatten();
        Ok(reservations_of(sp, sids, status, |r| worker.is_none_or(|w| r.worker_sid == w)))
    }

    /// A worker's reservations.
    pub fn worker_reservations(
        &self,
        ws: Sid,
        worker: Sid,
        status: Option<ReservationStatus>,
    ) -> Result<Vec<&Reservation>, Error> {
        self.worker(ws, worker)?;
        let sp = self.space(ws)?;
        let sids = sp.worker_reservations.get(&worker).into_iter().flatten();
        Ok(reservations_of(sp, sids, status, |_| true))
    }

    /// One conference.
    pub fn conference(&self, sid: Sid) -> Result<&Conference, Error> {
        self.tel.conferences.get(&sid).ok_or_else(|| {
            Error::not_found(format!("/2010-04-01/Accounts/{}/Conferences/{sid}.json", self.out.account_sid))
        })
    }

    /// Conferences, optionally by status and friendly name.
    pub fn conferences(
        &self,
        status: Option<ConferenceStatus>,
        friendly_name: Option<&str>,
    ) -> Vec<&Conference> {
        let v = self
            .tel
            .conferences
            .values()
            .filter(|c| status.is_none_or(|s| c.status == s))
            .filter(|c| friendly_name.is_none_or(|n| c.friendly_name == n))
            .collect();
        by_created(v, |c| (c.date_created, c.sid))
    }

    /// One live participant, by call SID or label.
    pub fn participant(&self, cf: Sid, call_or_label: &str) -> Result<&Participant, Error> {
        self.conference(cf)?;
        let found = match Sid::parse_as(call_or_label, Prefix::Call) {
            Ok(call) => self.tel.participants.get(&(cf, call)),
            Err(_) => self.participants(cf)?.into_iter().find(|p| p.label.as_deref() == Some(call_or_label)),
        };
        found.ok_or_else(|| {
            Error::not_found(format!(
                "/2010-04-01/Accounts/{}/Conferences/{cf}/Participants/{call_or_label}.json",
                self.out.account_sid
            ))
        })
    }

    /// A conference's live participants.
    pub fn participants(&self, cf: Sid) -> Result<Vec<&Participant>, Error> {
        self.conference(cf)?;
        let v = self
            .tel
            .participants
            .range((cf, Sid::new(Prefix::Call, 0))..)
            .take_while(|((c, _), _)| *c == cf)
            .map(|(_, p)| p)
            .collect();
        Ok(by_created(v, |p| (p.date_created, p.call_sid)))
    }

    /// When a pending reservation will time out (for views that show it).
    pub fn reservation_deadline(&self, ws: Sid, sid: Sid) -> Option<Timestamp> {
        self.out.timers.get(&Timer::ReservationTimeout(ws, sid))
    }

    /// Number of running timers (diagnostics, tests).
    pub fn timer_count(&self) -> usize {
        self.out.timers.len()
    }

    // ---- statistics -------------------------------------------------------------------------------------

    fn realtime<'a>(
        &'a self,
        sp: &'a Space,
        now: Timestamp,
        tasks: impl Iterator<Item = &'a Task>,
        workers: impl Iterator<Item = &'a Worker>,
    ) -> RealTimeStats {
        let mut by_status: BTreeMap<String, u64> =
            ["pending", "reserved", "assigned", "wrapping", "completed", "canceled"]
                .iter()
                .map(|s| (s.to_string(), 0))
                .collect();
        let mut by_priority: BTreeMap<String, u64> = BTreeMap::new();
        let mut total = 0;
        let mut oldest: Option<&Task> = None;
        for t in tasks {
            total += 1;
            *by_status.entry(t.assignment_status.as_str().into()).or_default() += 1;
            if matches!(t.assignment_status, TaskStatus::Pending | TaskStatus::Reserved) {
                *by_priority.entry(t.priority.to_string()).or_default() += 1;
                if oldest.is_none_or(|o| (t.date_created, t.sid) < (o.date_created, o.sid)) {
                    oldest = Some(t);
                }
            }
        }
        let mut per_activity: BTreeMap<Sid, u64> = sp.activities.keys().map(|a| (*a, 0)).collect();
        let mut total_workers = 0;
        for w in workers {
            total_workers += 1;
            *per_activity.entry(w.activity_sid).or_default() += 1;
        }
        let mut activity_statistics: Vec<ActivityStat> = per_activity
            .into_iter()
            .filter_map(|(a, n)| {
                sp.activities.get(&a).map(|act| ActivityStat {
                    sid: a,
                    friendly_name: act.friendly_name.clone(),
                    workers: n,
                })
            })
            .collect();
        activity_statistics.sort_by_key(|a| sp.activities.get(&a.sid).map(|x| (x.date_created, x.sid)));
        RealTimeStats {
            activity_statistics,
            longest_task_waiting_age: oldest.map(|t| t.age(now)).unwrap_or(0),
            longest_task_waiting_sid: oldest.map(|t| t.sid),
            tasks_by_priority: by_priority,
            tasks_by_status: by_status,
            total_tasks: total,
            total_workers,
        }
    }

    /// Workspace real-time statistics.
    pub fn workspace_realtime(&self, ws: Sid, now: Timestamp) -> Result<RealTimeStats, Error> {
        let sp = self.space(ws)?;
        Ok(self.realtime(sp, now, sp.tasks.values().map(|t| &**t), sp.workers.values()))
    }

    /// Workers real-time statistics (`activity_statistics`, `total_workers`).
    pub fn workers_realtime(&self, ws: Sid, now: Timestamp) -> Result<RealTimeStats, Error> {
        let sp = self.space(ws)?;
        Ok(self.realtime(sp, now, std::iter::empty(), sp.workers.values()))
    }

    /// Queue real-time statistics.
    pub fn queue_realtime(&self, ws: Sid, queue: Sid, now: Timestamp) -> Result<QueueRealTime, Error> {
        let sp = self.space(ws)?;
        self.task_queue(ws, queue)?;
        let members = sp.qidx.get(&queue);
        let workers = members.into_iter().flat_map(|ix| ix.members.iter()).filter_map(|w| sp.workers.get(w));
        let stats = self.realtime(
            sp,
            now,
            sp.tasks.values().map(|t| &**t).filter(|t| t.task_queue_sid == Some(queue)),
            workers,
        );
        Ok(QueueRealTime {
            total_available_workers: members
                .map(|ix| {
                    ix.members.iter().filter(|w| sp.workers.get(w).is_some_and(|w| w.available)).count()
                        as u64
                })
                .unwrap_or(0),
            total_eligible_workers: members.map(|ix| ix.members.len() as u64).unwrap_or(0),
            stats,
        })
    }

    /// Workflow real-time statistics.
    pub fn workflow_realtime(&self, ws: Sid, wf: Sid, now: Timestamp) -> Result<RealTimeStats, Error> {
        let sp = self.space(ws)?;
        self.workflow(ws, wf)?;
        Ok(self.realtime(
            sp,
            now,
            sp.tasks.values().map(|t| &**t).filter(|t| t.workflow_sid == Some(wf)),
            std::iter::empty(),
        ))
    }
}
