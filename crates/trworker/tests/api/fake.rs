//! TEST DOUBLE ONLY: an in-memory stand-in for the engine behind the facade's port, so the HTTP layer can be
//! tested while the real engine is built elsewhere. It has just enough behaviour to exercise the wire format:
//! CRUD, one-step "routing" (a new task is reserved to the first available worker), accept/reject, a
//! conference per accepted task, If-Match on tasks, and events for callbacks. It holds no real domain rules
//! and must never be used outside tests.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use engine::{Prefix, Sid, Timestamp};
use futures_util::future::BoxFuture;
use tokio::sync::broadcast;
use trworker::api::port::*;

#[derive(Default)]
struct State {
    workspaces: BTreeMap<Sid, Workspace>,
    activities: BTreeMap<Sid, Activity>,
    workers: BTreeMap<Sid, Worker>,
    queues: BTreeMap<Sid, TaskQueue>,
    workflows: BTreeMap<Sid, Workflow>,
    tasks: BTreeMap<Sid, Task>,
    reservations: BTreeMap<Sid, Reservation>,
    conferences: BTreeMap<Sid, Conference>,
}

pub struct FakeEngine {
    state: Mutex<State>,
    next: AtomicU64,
    events: broadcast::Sender<Arc<CallbackEvent>>,
    pub account_sid: String,
}

const NOW: Timestamp = Timestamp(1_700_000_000_000);

impl FakeEngine {
    pub fn new(account_sid: &str) -> FakeEngine {
        FakeEngine {
            state: Mutex::new(State::default()),
            next: AtomicU64::new(1),
            events: broadcast::channel(1024).0,
            account_sid: account_sid.to_owned(),
        }
    }

    fn sid(&self, p: Prefix) -> Sid {
        Sid::new(p, u128::from(self.next.fetch_add(1, Ordering::SeqCst)))
    }

    fn dates() -> Dates {
        Dates { created: NOW, updated: NOW }
    }

    fn emit(&self, ws: Sid, event_type: &str, resource: Sid) {
        self.emit_with(ws, event_type, resource, Vec::new());
    }

    fn emit_with(&self, ws: Sid, event_type: &str, resource: Sid, extra: Vec<(String, String)>) {
        let seq = self.next.fetch_add(1, Ordering::SeqCst);
        let fields = vec![
            ("EventType".to_owned(), event_type.to_owned()),
            ("AccountSid".to_owned(), self.account_sid.clone()),
            ("WorkspaceSid".to_owned(), ws.to_string()),
            ("ResourceSid".to_owned(), resource.to_string()),
            ("Sid".to_owned(), Sid::new(Prefix::Event, u128::from(seq)).to_string()),
            ("Timestamp".to_owned(), NOW.secs().to_string()),
        ];
        let fields = fields.into_iter().chain(extra).collect();
        let _ = self.events.send(Arc::new(CallbackEvent {
            seq,
            workspace_sid: ws,
            event_type: event_type.to_owned(),
            fields,
        }));
    }

    fn apply(&self, op: Op) -> Result<Out, Failure> {
        let mut guard = self.state.lock().map_err(|_| Failure::invalid("poisoned"))?;
        let s = &mut *guard;
        let nf = |what: &str, sid: &dyn std::fmt::Display| Failure::not_found(format!("/{what}/{sid}"));
        Ok(match op {
            Op::CreateWorkspace(c) => {
                let sid = self.sid(Prefix::Workspace);
                let mut names = Vec::new();
                for (name, available) in [("Offline", false), ("Unavailable", false), ("Available", true)] {
                    let a = Activity {
                        sid: self.sid(Prefix::Activity),
                        workspace_sid: sid,
                        friendly_name: name.into(),
                        available,
                        dates: Self::dates(),
                    };
                    names.push(a.sid);
                    s.activities.insert(a.sid, a);
                }
                let w = Workspace {
                    sid,
                    friendly_name: c.friendly_name.unwrap_or_default(),
                    default_activity_sid: names.first().copied(),
                    default_activity_name: Some("Offline".into()),
                    timeout_activity_sid: names.first().copied(),
                    timeout_activity_name: Some("Offline".into()),
                    event_callback_url: c.event_callback_url,
                    events_filter: c.events_filter,
                    multi_task_enabled: c.multi_task_enabled.unwrap_or(true),
                    prioritize_queue_order: c.prioritize_queue_order.unwrap_or_else(|| "FIFO".into()),
                    dates: Self::dates(),
                };
                s.workspaces.insert(sid, w.clone());
                Out::Workspace(w)
            }
            Op::FetchWorkspace(ws) => {
                Out::Workspace(s.workspaces.get(&ws).cloned().ok_or(nf("Workspaces", &ws))?)
            }
            Op::UpdateWorkspace(ws, c) => {
                let w = s.workspaces.get_mut(&ws).ok_or(nf("Workspaces", &ws))?;
                if let Some(n) = c.friendly_name {
                    w.friendly_name = n;
                }
                if let Some(u) = c.event_callback_url {
                    w.event_callback_url = Some(u);
                }
                if let Some(f) = c.events_filter {
                    w.events_filter = Some(f);
                }
                let w = w.clone();
                drop(guard);
                self.emit(ws, "workspace.updated", ws);
                Out::Workspace(w)
            }
            Op::DeleteWorkspace(ws) => {
                s.workspaces.remove(&ws).ok_or(nf("Workspaces", &ws))?;
                Out::Deleted
            }
            Op::ListWorkspaces { friendly_name } => Out::Workspaces(
                s.workspaces
                    .values()
                    .filter(|w| friendly_name.as_ref().is_none_or(|n| *n == w.friendly_name))
                    .cloned()
                    .collect(),
            ),
            Op::CreateActivity { ws, friendly_name, available } => {
                s.workspaces.get(&ws).ok_or(nf("Workspaces", &ws))?;
                let a = Activity {
                    sid: self.sid(Prefix::Activity),
                    workspace_sid: ws,
                    friendly_name,
                    available,
                    dates: Self::dates(),
                };
                s.activities.insert(a.sid, a.clone());
                Out::Activity(a)
            }
            Op::FetchActivity { ws, sid } => Out::Activity(
                s.activities
                    .get(&sid)
                    .filter(|a| a.workspace_sid == ws)
                    .cloned()
                    .ok_or(nf("Activities", &sid))?,
            ),
            Op::UpdateActivity { ws, sid, friendly_name } => {
                let a = s
                    .activities
                    .get_mut(&sid)
                    .filter(|a| a.workspace_sid == ws)
                    .ok_or(nf("Activities", &sid))?;
                if let Some(n) = friendly_name {
                    a.friendly_name = n;
                }
                Out::Activity(a.clone())
            }
            Op::DeleteActivity { sid, .. } => {
                s.activities.remove(&sid).ok_or(nf("Activities", &sid))?;
                Out::Deleted
            }
            Op::ListActivities { ws, available, .. } => Out::Activities(
                s.activities
                    .values()
                    .filter(|a| a.workspace_sid == ws && available.is_none_or(|v| v == a.available))
                    .cloned()
                    .collect(),
            ),
            Op::CreateWorker { ws, change } => {
                let w0 = s.workspaces.get(&ws).ok_or(nf("Workspaces", &ws))?;
                let activity_sid =
                    change.activity_sid.or(w0.default_activity_sid).ok_or(Failure::invalid("no activity"))?;
                let activity =
                    s.activities.get(&activity_sid).ok_or(Failure::invalid("ActivitySid is unknown"))?;
                let w = Worker {
                    sid: self.sid(Prefix::Worker),
                    workspace_sid: ws,
                    friendly_name: change.friendly_name.unwrap_or_default(),
                    activity_sid,
                    activity_name: activity.friendly_name.clone(),
                    available: activity.available,
                    attributes: change.attributes.unwrap_or_else(|| "{}".into()),
                    date_status_changed: NOW,
                    version: 0,
                    dates: Self::dates(),
                };
                s.workers.insert(w.sid, w.clone());
                Out::Worker(w)
            }
            Op::FetchWorker { sid, .. } => {
                Out::Worker(s.workers.get(&sid).cloned().ok_or(nf("Workers", &sid))?)
            }
            Op::UpdateWorker { sid, change, if_match, .. } => {
                let activity = match change.activity_sid {
                    Some(a) => Some(
                        s.activities.get(&a).cloned().ok_or(Failure::invalid("ActivitySid is unknown"))?,
                    ),
                    None => None,
                };
                let w = s.workers.get_mut(&sid).ok_or(nf("Workers", &sid))?;
                if let Some(m) = if_match {
                    if m != w.version.to_string() {
                        return Err(Failure::version_mismatch(w.version));
                    }
                }
                if let Some(a) = activity {
                    w.activity_sid = a.sid;
                    w.activity_name = a.friendly_name;
                    w.available = a.available;
                }
                if let Some(attr) = change.attributes {
                    w.attributes = attr;
                }
                w.version += 1;
                Out::Worker(w.clone())
            }
            Op::DeleteWorker { sid, .. } => {
                s.workers.remove(&sid).ok_or(nf("Workers", &sid))?;
                Out::Deleted
            }
            Op::ListWorkers { ws, filter } => Out::Workers(
                s.workers
                    .values()
                    .filter(|w| w.workspace_sid == ws && filter.available.is_none_or(|v| v == w.available))
                    .cloned()
                    .collect(),
            ),
            Op::CreateTaskQueue { ws, change } => {
                let q = TaskQueue {
                    sid: self.sid(Prefix::TaskQueue),
                    workspace_sid: ws,
                    friendly_name: change.friendly_name.unwrap_or_default(),
                    target_workers: change.target_workers.unwrap_or_else(|| "1==1".into()),
                    max_reserved_workers: change.max_reserved_workers.unwrap_or(1),
                    task_order: change.task_order.unwrap_or_else(|| "FIFO".into()),
                    reservation_activity_sid: None,
                    reservation_activity_name: None,
                    assignment_activity_sid: None,
                    assignment_activity_name: None,
                    dates: Self::dates(),
                };
                s.queues.insert(q.sid, q.clone());
                Out::TaskQueue(q)
            }
            Op::FetchTaskQueue { sid, .. } => {
                Out::TaskQueue(s.queues.get(&sid).cloned().ok_or(nf("TaskQueues", &sid))?)
            }
            Op::UpdateTaskQueue { sid, change, .. } => {
                let q = s.queues.get_mut(&sid).ok_or(nf("TaskQueues", &sid))?;
                if let Some(t) = change.target_workers {
                    q.target_workers = t;
                }
                Out::TaskQueue(q.clone())
            }
            Op::DeleteTaskQueue { sid, .. } => {
                s.queues.remove(&sid).ok_or(nf("TaskQueues", &sid))?;
                Out::Deleted
            }
            Op::ListTaskQueues { ws, .. } => {
                Out::TaskQueues(s.queues.values().filter(|q| q.workspace_sid == ws).cloned().collect())
            }
            Op::CreateWorkflow { ws, change } => {
                let w = Workflow {
                    sid: self.sid(Prefix::Workflow),
                    workspace_sid: ws,
                    friendly_name: change.friendly_name.unwrap_or_default(),
                    configuration: change.configuration.unwrap_or_default(),
                    assignment_callback_url: change.assignment_callback_url,
                    fallback_assignment_callback_url: change.fallback_assignment_callback_url,
                    task_reservation_timeout: change.task_reservation_timeout.unwrap_or(120),
                    dates: Self::dates(),
                };
                s.workflows.insert(w.sid, w.clone());
                Out::Workflow(w)
            }
            Op::FetchWorkflow { sid, .. } => {
                Out::Workflow(s.workflows.get(&sid).cloned().ok_or(nf("Workflows", &sid))?)
            }
            Op::UpdateWorkflow { sid, change, .. } => {
                let w = s.workflows.get_mut(&sid).ok_or(nf("Workflows", &sid))?;
                if let Some(t) = change.task_reservation_timeout {
                    w.task_reservation_timeout = t;
                }
                Out::Workflow(w.clone())
            }
            Op::DeleteWorkflow { sid, .. } => {
                s.workflows.remove(&sid).ok_or(nf("Workflows", &sid))?;
                Out::Deleted
            }
            Op::ListWorkflows { ws, .. } => {
                Out::Workflows(s.workflows.values().filter(|w| w.workspace_sid == ws).cloned().collect())
            }
            Op::CreateTask { ws, create } => {
                s.workspaces.get(&ws).ok_or(nf("Workspaces", &ws))?;
                let workflow = create.workflow_sid.or_else(|| s.workflows.keys().next().copied());
                let mut t = Task {
                    sid: self.sid(Prefix::Task),
                    workspace_sid: ws,
                    assignment_status: "pending".into(),
                    attributes: create.attributes.unwrap_or_else(|| "{}".into()),
                    priority: create.priority.unwrap_or(0),
                    timeout: create.timeout.unwrap_or(86_400),
                    reason: None,
                    task_queue_sid: s.queues.keys().next().copied(),
                    task_queue_friendly_name: s.queues.values().next().map(|q| q.friendly_name.clone()),
                    task_queue_entered_date: Some(NOW),
                    workflow_sid: workflow,
                    workflow_friendly_name: None,
                    task_channel_sid: None,
                    task_channel_unique_name: Some("default".into()),
                    virtual_start_time: NOW,
                    routing_target: None,
                    ignore_capacity: None,
                    addons: "{}".into(),
                    version: 0,
                    dates: Self::dates(),
                };
                let busy: Vec<Sid> = s
                    .reservations
                    .values()
                    .filter(|r| r.reservation_status == "pending" || r.reservation_status == "accepted")
                    .map(|r| r.worker_sid)
                    .collect();
                let free = s
                    .workers
                    .values()
                    .find(|w| w.workspace_sid == ws && w.available && !busy.contains(&w.sid));
                let reservation = free.map(|w| Reservation {
                    sid: self.sid(Prefix::Reservation),
                    workspace_sid: ws,
                    task_sid: t.sid,
                    worker_sid: w.sid,
                    worker_name: w.friendly_name.clone(),
                    reservation_status: "pending".into(),
                    version: 0,
                    dates: Self::dates(),
                });
                if let Some(r) = &reservation {
                    t.assignment_status = "reserved".into();
                    s.reservations.insert(r.sid, r.clone());
                }
                s.tasks.insert(t.sid, t.clone());
                drop(guard);
                self.emit(ws, "task.created", t.sid);
                if let Some(r) = reservation {
                    let mut extra = vec![
                        ("TaskSid".to_owned(), t.sid.to_string()),
                        ("ReservationSid".to_owned(), r.sid.to_string()),
                        ("WorkerSid".to_owned(), r.worker_sid.to_string()),
                    ];
                    if let Some(wf) = t.workflow_sid {
                        extra.push(("WorkflowSid".to_owned(), wf.to_string()));
                    }
                    self.emit_with(ws, "reservation.created", r.sid, extra);
                }
                Out::Task(t)
            }
            Op::FetchTask { sid, .. } => Out::Task(s.tasks.get(&sid).cloned().ok_or(nf("Tasks", &sid))?),
            Op::UpdateTask { sid, change, if_match, .. } => {
                let t = s.tasks.get_mut(&sid).ok_or(nf("Tasks", &sid))?;
                if let Some(m) = if_match {
                    if m != t.version.to_string() {
                        return Err(Failure::version_mismatch(t.version));
                    }
                }
                if let Some(a) = change.attributes {
                    t.attributes = a;
                }
                if let Some(p) = change.priority {
                    t.priority = p;
                }
                if let Some(st) = change.assignment_status {
                    t.assignment_status = st;
                    t.reason = change.reason;
                }
                t.version += 1;
                Out::Task(t.clone())
            }
            Op::DeleteTask { sid, if_match, .. } => {
                let t = s.tasks.get(&sid).ok_or(nf("Tasks", &sid))?;
                if let Some(m) = if_match {
                    if m != t.version.to_string() {
                        return Err(Failure::version_mismatch(t.version));
                    }
                }
                s.tasks.remove(&sid);
                Out::Deleted
            }
            Op::ListTasks { ws, filter } => Out::Tasks(
                s.tasks
                    .values()
                    .filter(|t| {
                        t.workspace_sid == ws
                            && (filter.assignment_status.is_empty()
                                || filter.assignment_status.contains(&t.assignment_status))
                    })
                    .cloned()
                    .collect(),
            ),
            Op::FetchReservation { sid, .. } => {
                Out::Reservation(s.reservations.get(&sid).cloned().ok_or(nf("Reservations", &sid))?)
            }
            Op::UpdateReservation { ws, task, worker, sid, change, if_match } => {
                let r = s
                    .reservations
                    .get_mut(&sid)
                    .filter(|r| {
                        task.is_none_or(|t| t == r.task_sid) && worker.is_none_or(|w| w == r.worker_sid)
                    })
                    .ok_or(nf("Reservations", &sid))?;
                if let Some(m) = if_match {
                    if m != r.version.to_string() {
                        return Err(Failure::version_mismatch(r.version));
                    }
                }
                if r.reservation_status != "pending" {
                    return Err(Failure::invalid(format!("Reservation {sid} is not pending")));
                }
                let accept = change.reservation_status.as_deref() == Some("accepted")
                    || change.instruction.as_deref() == Some("conference");
                let reject = change.reservation_status.as_deref() == Some("rejected");
                if !accept && !reject {
                    return Err(Failure::invalid("Nothing to do: set ReservationStatus or Instruction"));
                }
                r.reservation_status = if accept { "accepted" } else { "rejected" }.into();
                r.version += 1;
                let r = r.clone();
                if let Some(t) = s.tasks.get_mut(&r.task_sid) {
                    t.assignment_status = if accept { "assigned" } else { "pending" }.into();
                    t.version += 1;
                }
                if change.instruction.as_deref() == Some("conference") {
                    let c = Conference {
                        sid: self.sid(Prefix::Conference),
                        friendly_name: r.task_sid.to_string(),
                        status: "in-progress".into(),
                        region: "us1".into(),
                        reason_conference_ended: None,
                        call_sid_ending_conference: None,
                        dates: Self::dates(),
                    };
                    s.conferences.insert(c.sid, c);
                }
                drop(guard);
                self.emit(ws, if accept { "reservation.accepted" } else { "reservation.rejected" }, r.sid);
                Out::Reservation(r)
            }
            Op::ListReservations { task, worker, .. } => Out::Reservations(
                s.reservations
                    .values()
                    .filter(|r| {
                        task.is_none_or(|t| t == r.task_sid) && worker.is_none_or(|w| w == r.worker_sid)
                    })
                    .cloned()
                    .collect(),
            ),
            Op::FetchConference { key } => Out::Conference(
                s.conferences
                    .values()
                    .find(|c| c.sid.to_string() == key || c.friendly_name == key)
                    .cloned()
                    .ok_or(nf("Conferences", &key))?,
            ),
            Op::EndConference { key } => {
                let c = s
                    .conferences
                    .values_mut()
                    .find(|c| c.sid.to_string() == key || c.friendly_name == key)
                    .ok_or(nf("Conferences", &key))?;
                c.status = "completed".into();
                c.reason_conference_ended = Some("conference-ended-via-api".into());
                Out::Conference(c.clone())
            }
            Op::ListConferences { filter } => Out::Conferences(
                s.conferences
                    .values()
                    .filter(|c| filter.status.as_ref().is_none_or(|st| *st == c.status))
                    .cloned()
                    .collect(),
            ),
            other => return Err(Failure::invalid(format!("the test engine does not implement {other:?}"))),
        })
    }
}

impl Engine for FakeEngine {
    fn call(&self, op: Op) -> BoxFuture<'_, Result<Out, Failure>> {
        let result = self.apply(op);
        Box::pin(async move { result })
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<CallbackEvent>> {
        self.events.subscribe()
    }

    fn now(&self) -> Timestamp {
        NOW.plus_secs(30)
    }
}
