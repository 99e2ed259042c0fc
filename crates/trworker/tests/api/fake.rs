//! TEST DOUBLE ONLY: an in-memory stand-in for the engine behind the facade's port, so the HTTP layer can be
//! tested while the real engine is built elsewhere. It speaks the engine's real types (`Command`, model,
//! `Event`) but has just enough behaviour to exercise the wire format: CRUD, one-step "routing" (a new task is
//! reserved to the first available worker), accept/reject, a conference per conference instruction, If-Match,
//! and events. It holds no real domain rules and must never be used outside tests.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use engine::command::Command;
use engine::error::Error;
use engine::event::{Event, EventType};
use engine::model::*;
use engine::{Prefix, Sid, Timestamp};
use futures_util::future::BoxFuture;
use serde_json::Value;
use tokio::sync::broadcast;
use trworker::api::port::{Engine, Failure, Op, Out};

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
    events: broadcast::Sender<Arc<Event>>,
    account: Sid,
}

const NOW: Timestamp = Timestamp(1_700_000_000_000);

fn nf(what: &str, sid: &dyn std::fmt::Display) -> Failure {
    Error::NotFound { what: format!("/{what}/{sid}") }.into()
}

fn invalid(param: &str, message: &str) -> Failure {
    Error::InvalidParameter { param: param.into(), message: message.into() }.into()
}

fn check_version(if_match: &Option<String>, version: u64) -> Result<(), Failure> {
    match if_match {
        Some(given) if *given != version.to_string() => {
            Err(Error::PreconditionFailed { given: given.clone(), current: version }.into())
        }
        _ => Ok(()),
    }
}

impl FakeEngine {
    pub fn new(account_sid: &str) -> FakeEngine {
        FakeEngine {
            state: Mutex::new(State::default()),
            next: AtomicU64::new(1),
            events: broadcast::channel(1024).0,
            account: Sid::parse(account_sid).unwrap(),
        }
    }

    fn sid(&self, p: Prefix) -> Sid {
        Sid::new(p, u128::from(self.next.fetch_add(1, Ordering::SeqCst)))
    }

    fn emit(&self, s: &State, ws: Sid, event_type: EventType, resource: Sid, fields: Vec<(String, String)>) {
        let seq = self.next.fetch_add(1, Ordering::SeqCst);
        let resource_type = event_type.as_str().split('.').next().unwrap_or("").replace('-', "");
        let _ = self.events.send(Arc::new(Event {
            seq,
            sid: Sid::new(Prefix::Event, u128::from(seq)),
            event_type,
            description: format!("{} {resource}", event_type.as_str()),
            at: NOW,
            workspace_sid: ws,
            workspace_name: s.workspaces.get(&ws).map(|w| w.friendly_name.clone()).unwrap_or_default(),
            resource_type,
            resource_sid: resource,
            fields,
        }));
    }

    fn apply(&self, cmd: Command) -> Result<Out, Failure> {
        let mut guard = self.state.lock().map_err(|_| invalid("State", "poisoned"))?;
        let s = &mut *guard;
        let account_sid = self.account;
        Ok(match cmd {
            Command::CreateWorkspace { params } => {
                let sid = self.sid(Prefix::Workspace);
                let mut first = None;
                for (name, available) in [("Offline", false), ("Unavailable", false), ("Available", true)] {
                    let a = Activity {
                        account_sid,
                        workspace_sid: sid,
                        sid: self.sid(Prefix::Activity),
                        friendly_name: name.into(),
                        available,
                        date_created: NOW,
                        date_updated: NOW,
                    };
                    first.get_or_insert(a.sid);
                    s.activities.insert(a.sid, a);
                }
                let offline = first.unwrap();
                let w = Workspace {
                    account_sid,
                    sid,
                    friendly_name: params.friendly_name.unwrap_or_default(),
                    default_activity_sid: offline,
                    default_activity_name: "Offline".into(),
                    timeout_activity_sid: offline,
                    timeout_activity_name: "Offline".into(),
                    event_callback_url: params.event_callback_url,
                    events_filter: params.events_filter,
                    multi_task_enabled: params.multi_task_enabled.unwrap_or(true),
                    prioritize_queue_order: QueueOrder::Fifo,
                    date_created: NOW,
                    date_updated: NOW,
                };
                s.workspaces.insert(sid, w.clone());
                Out::Workspace(w)
            }
            Command::UpdateWorkspace { workspace_sid: ws, params } => {
                let w = s.workspaces.get_mut(&ws).ok_or(nf("Workspaces", &ws))?;
                if let Some(n) = params.friendly_name {
                    w.friendly_name = n;
                }
                if let Some(u) = params.event_callback_url {
                    w.event_callback_url = Some(u);
                }
                if let Some(f) = params.events_filter {
                    w.events_filter = Some(f);
                }
                let w = w.clone();
                self.emit(s, ws, EventType::WorkspaceUpdated, ws, Vec::new());
                Out::Workspace(w)
            }
            Command::DeleteWorkspace { workspace_sid: ws } => {
                s.workspaces.remove(&ws).ok_or(nf("Workspaces", &ws))?;
                Out::Deleted
            }
            Command::CreateActivity { workspace_sid: ws, friendly_name, available } => {
                s.workspaces.get(&ws).ok_or(nf("Workspaces", &ws))?;
                let a = Activity {
                    account_sid,
                    workspace_sid: ws,
                    sid: self.sid(Prefix::Activity),
                    friendly_name: friendly_name.unwrap_or_default(),
                    available: available.unwrap_or(false),
                    date_created: NOW,
                    date_updated: NOW,
                };
                s.activities.insert(a.sid, a.clone());
                Out::Activity(a)
            }
            Command::UpdateActivity { sid, friendly_name, .. } => {
                let a = s.activities.get_mut(&sid).ok_or(nf("Activities", &sid))?;
                if let Some(n) = friendly_name {
                    a.friendly_name = n;
                }
                Out::Activity(a.clone())
            }
            Command::DeleteActivity { sid, .. } => {
                s.activities.remove(&sid).ok_or(nf("Activities", &sid))?;
                Out::Deleted
            }
            Command::CreateWorker { workspace_sid: ws, params } => {
                let default = s.workspaces.get(&ws).ok_or(nf("Workspaces", &ws))?.default_activity_sid;
                let activity_sid = params.activity_sid.unwrap_or(default);
                let activity = s.activities.get(&activity_sid).ok_or(invalid("ActivitySid", "unknown"))?;
                let attributes = params.attributes.unwrap_or_else(|| "{}".into());
                let w = Worker {
                    account_sid,
                    workspace_sid: ws,
                    sid: self.sid(Prefix::Worker),
                    friendly_name: params.friendly_name.unwrap_or_default(),
                    activity_sid,
                    activity_name: activity.friendly_name.clone(),
                    available: activity.available,
                    attributes_value: serde_json::from_str(&attributes).unwrap_or(Value::Null),
                    attributes,
                    date_status_changed: NOW,
                    date_created: NOW,
                    date_updated: NOW,
                    version: 0,
                    last_idle_at: NOW,
                };
                s.workers.insert(w.sid, w.clone());
                Out::Worker(w)
            }
            Command::UpdateWorker { sid, params, if_match, .. } => {
                let activity = match params.activity_sid {
                    Some(a) => Some(s.activities.get(&a).cloned().ok_or(invalid("ActivitySid", "unknown"))?),
                    None => None,
                };
                let w = s.workers.get_mut(&sid).ok_or(nf("Workers", &sid))?;
                check_version(&if_match, w.version)?;
                if let Some(a) = activity {
                    w.activity_sid = a.sid;
                    w.activity_name = a.friendly_name;
                    w.available = a.available;
                }
                if let Some(attr) = params.attributes {
                    w.attributes = attr;
                }
                w.version += 1;
                Out::Worker(w.clone())
            }
            Command::DeleteWorker { sid, if_match, .. } => {
                let w = s.workers.get(&sid).ok_or(nf("Workers", &sid))?;
                check_version(&if_match, w.version)?;
                s.workers.remove(&sid);
                Out::Deleted
            }
            Command::CreateTaskQueue { workspace_sid: ws, params } => {
                let q = TaskQueue {
                    account_sid,
                    workspace_sid: ws,
                    sid: self.sid(Prefix::TaskQueue),
                    friendly_name: params.friendly_name.unwrap_or_default(),
                    target_workers: params.target_workers.unwrap_or_else(|| "1==1".into()),
                    target_expr: None,
                    max_reserved_workers: params.max_reserved_workers.unwrap_or(1) as u32,
                    task_order: QueueOrder::Fifo,
                    reservation_activity_sid: None,
                    reservation_activity_name: None,
                    assignment_activity_sid: None,
                    assignment_activity_name: None,
                    date_created: NOW,
                    date_updated: NOW,
                };
                s.queues.insert(q.sid, q.clone());
                Out::TaskQueue(q)
            }
            Command::UpdateTaskQueue { sid, params, .. } => {
                let q = s.queues.get_mut(&sid).ok_or(nf("TaskQueues", &sid))?;
                if let Some(t) = params.target_workers {
                    q.target_workers = t;
                }
                Out::TaskQueue(q.clone())
            }
            Command::DeleteTaskQueue { sid, .. } => {
                s.queues.remove(&sid).ok_or(nf("TaskQueues", &sid))?;
                Out::Deleted
            }
            Command::CreateWorkflow { workspace_sid: ws, params } => {
                let w = Workflow {
                    account_sid,
                    workspace_sid: ws,
                    sid: self.sid(Prefix::Workflow),
                    friendly_name: params.friendly_name.unwrap_or_default(),
                    configuration: params.configuration.unwrap_or_default(),
                    config: Default::default(),
                    assignment_callback_url: params.assignment_callback_url,
                    fallback_assignment_callback_url: params.fallback_assignment_callback_url,
                    task_reservation_timeout: params.task_reservation_timeout.unwrap_or(120) as u32,
                    document_content_type: "application/json".into(),
                    date_created: NOW,
                    date_updated: NOW,
                };
                s.workflows.insert(w.sid, w.clone());
                Out::Workflow(w)
            }
            Command::UpdateWorkflow { sid, params, .. } => {
                let w = s.workflows.get_mut(&sid).ok_or(nf("Workflows", &sid))?;
                if let Some(t) = params.task_reservation_timeout {
                    w.task_reservation_timeout = t as u32;
                }
                Out::Workflow(w.clone())
            }
            Command::DeleteWorkflow { sid, .. } => {
                s.workflows.remove(&sid).ok_or(nf("Workflows", &sid))?;
                Out::Deleted
            }
            Command::CreateTask { workspace_sid: ws, params } => {
                s.workspaces.get(&ws).ok_or(nf("Workspaces", &ws))?;
                let workflow = params.workflow_sid.or_else(|| s.workflows.keys().next().copied());
                let attributes = params.attributes.unwrap_or_else(|| "{}".into());
                let mut t = Task {
                    account_sid,
                    workspace_sid: ws,
                    sid: self.sid(Prefix::Task),
                    assignment_status: TaskStatus::Pending,
                    attributes_value: serde_json::from_str(&attributes).unwrap_or(Value::Null),
                    attributes,
                    priority: params.priority.unwrap_or(0),
                    timeout: params.timeout.unwrap_or(86_400),
                    reason: None,
                    task_queue_sid: s.queues.keys().next().copied(),
                    task_queue_friendly_name: s.queues.values().next().map(|q| q.friendly_name.clone()),
                    task_queue_entered_date: Some(NOW),
                    workflow_sid: workflow,
                    workflow_friendly_name: None,
                    task_channel_sid: Sid::new(Prefix::TaskChannel, 1),
                    task_channel_unique_name: "default".into(),
                    virtual_start_time: NOW,
                    routing_target: None,
                    ignore_capacity: false,
                    addons: "{}".into(),
                    date_created: NOW,
                    date_updated: NOW,
                    version: 0,
                    routing: None,
                    assignment_count: 0,
                    terminal_at: None,
                };
                let busy: Vec<Sid> = s
                    .reservations
                    .values()
                    .filter(|r| r.reservation_status.is_active())
                    .map(|r| r.worker_sid)
                    .collect();
                let free = s
                    .workers
                    .values()
                    .find(|w| w.workspace_sid == ws && w.available && !busy.contains(&w.sid));
                let reservation = free.map(|w| Reservation {
                    account_sid,
                    workspace_sid: ws,
                    sid: self.sid(Prefix::Reservation),
                    task_sid: t.sid,
                    worker_sid: w.sid,
                    worker_name: w.friendly_name.clone(),
                    reservation_status: ReservationStatus::Pending,
                    date_created: NOW,
                    date_updated: NOW,
                    version: 0,
                    task_queue_sid: t.task_queue_sid,
                    task_channel_sid: t.task_channel_sid,
                    timeout_at: None,
                    worker_previous_activity_sid: None,
                });
                if let Some(r) = &reservation {
                    t.assignment_status = TaskStatus::Reserved;
                    s.reservations.insert(r.sid, r.clone());
                }
                s.tasks.insert(t.sid, t.clone());
                self.emit(s, ws, EventType::TaskCreated, t.sid, vec![("TaskSid".into(), t.sid.to_string())]);
                if let Some(r) = reservation {
                    let mut fields = vec![
                        ("TaskSid".to_owned(), t.sid.to_string()),
                        ("WorkerSid".into(), r.worker_sid.to_string()),
                    ];
                    if let Some(wf) = t.workflow_sid {
                        fields.push(("WorkflowSid".to_owned(), wf.to_string()));
                    }
                    self.emit(s, ws, EventType::ReservationCreated, r.sid, fields);
                }
                Out::Task(t)
            }
            Command::UpdateTask { sid, params, if_match, .. } => {
                let t = s.tasks.get_mut(&sid).ok_or(nf("Tasks", &sid))?;
                check_version(&if_match, t.version)?;
                if let Some(a) = params.attributes {
                    t.attributes = a;
                }
                if let Some(p) = params.priority {
                    t.priority = p;
                }
                if let Some(st) = params.assignment_status {
                    t.assignment_status =
                        TaskStatus::parse(&st).ok_or(invalid("AssignmentStatus", "unknown"))?;
                    t.reason = params.reason;
                }
                t.version += 1;
                Out::Task(t.clone())
            }
            Command::DeleteTask { sid, if_match, .. } => {
                let t = s.tasks.get(&sid).ok_or(nf("Tasks", &sid))?;
                check_version(&if_match, t.version)?;
                s.tasks.remove(&sid);
                Out::Deleted
            }
            Command::UpdateReservation { workspace_sid: ws, task_sid, worker_sid, sid, params, if_match } => {
                let r = s
                    .reservations
                    .get_mut(&sid)
                    .filter(|r| {
                        task_sid.is_none_or(|t| t == r.task_sid)
                            && worker_sid.is_none_or(|w| w == r.worker_sid)
                    })
                    .ok_or(nf("Reservations", &sid))?;
                check_version(&if_match, r.version)?;
                if r.reservation_status != ReservationStatus::Pending {
                    return Err(Error::IllegalTransition {
                        message: format!("Reservation {sid} is not pending"),
                    }
                    .into());
                }
                let conference = params.instruction.as_deref() == Some("conference");
                let accept = params.reservation_status.as_deref() == Some("accepted") || conference;
                let reject = params.reservation_status.as_deref() == Some("rejected");
                if !accept && !reject {
                    return Err(invalid("ReservationStatus", "nothing to do"));
                }
                r.reservation_status =
                    if accept { ReservationStatus::Accepted } else { ReservationStatus::Rejected };
                r.version += 1;
                let r = r.clone();
                if let Some(t) = s.tasks.get_mut(&r.task_sid) {
                    t.assignment_status = if accept { TaskStatus::Assigned } else { TaskStatus::Pending };
                    t.version += 1;
                }
                if conference {
                    let c = Conference {
                        account_sid,
                        sid: self.sid(Prefix::Conference),
                        friendly_name: r.task_sid.to_string(),
                        status: ConferenceStatus::InProgress,
                        region: "us1".into(),
                        api_version: "2010-04-01".into(),
                        date_created: NOW,
                        date_updated: NOW,
                        reason_conference_ended: None,
                        call_sid_ending_conference: None,
                        workspace_sid: Some(ws),
                        task_sid: Some(r.task_sid),
                        reservation_sid: Some(r.sid),
                        post_work_activity_sid: None,
                    };
                    s.conferences.insert(c.sid, c);
                }
                let event =
                    if accept { EventType::ReservationAccepted } else { EventType::ReservationRejected };
                self.emit(s, ws, event, r.sid, vec![("TaskSid".into(), r.task_sid.to_string())]);
                Out::Reservation(r)
            }
            Command::UpdateConference { sid, .. } => {
                let c = s.conferences.get_mut(&sid).ok_or(nf("Conferences", &sid))?;
                c.status = ConferenceStatus::Completed;
                c.reason_conference_ended = Some("conference-ended-via-api".into());
                Out::Conference(c.clone())
            }
            other => {
                return Err(invalid("Command", &format!("the test engine does not implement {other:?}")))
            }
        })
    }

    fn read(&self, op: Op) -> Result<Out, Failure> {
        let guard = self.state.lock().map_err(|_| invalid("State", "poisoned"))?;
        let s = &*guard;
        Ok(match op {
            Op::FetchWorkspace(ws) => {
                Out::Workspace(s.workspaces.get(&ws).cloned().ok_or(nf("Workspaces", &ws))?)
            }
            Op::ListWorkspaces { friendly_name } => Out::Workspaces(
                s.workspaces
                    .values()
                    .filter(|w| friendly_name.as_ref().is_none_or(|n| *n == w.friendly_name))
                    .cloned()
                    .collect(),
            ),
            Op::FetchActivity { ws, sid } => Out::Activity(
                s.activities
                    .get(&sid)
                    .filter(|a| a.workspace_sid == ws)
                    .cloned()
                    .ok_or(nf("Activities", &sid))?,
            ),
            Op::ListActivities { ws, available, .. } => Out::Activities(
                s.activities
                    .values()
                    .filter(|a| a.workspace_sid == ws && available.is_none_or(|v| v == a.available))
                    .cloned()
                    .collect(),
            ),
            Op::FetchWorker { sid, .. } => {
                Out::Worker(s.workers.get(&sid).cloned().ok_or(nf("Workers", &sid))?)
            }
            Op::ListWorkers { ws, filter } => Out::Workers(
                s.workers
                    .values()
                    .filter(|w| w.workspace_sid == ws && filter.available.is_none_or(|v| v == w.available))
                    .cloned()
                    .collect(),
            ),
            Op::FetchTaskQueue { sid, .. } => {
                Out::TaskQueue(s.queues.get(&sid).cloned().ok_or(nf("TaskQueues", &sid))?)
            }
            Op::ListTaskQueues { ws, .. } => {
                Out::TaskQueues(s.queues.values().filter(|q| q.workspace_sid == ws).cloned().collect())
            }
            Op::FetchWorkflow { sid, .. } => {
                Out::Workflow(s.workflows.get(&sid).cloned().ok_or(nf("Workflows", &sid))?)
            }
            Op::ListWorkflows { ws, .. } => {
                Out::Workflows(s.workflows.values().filter(|w| w.workspace_sid == ws).cloned().collect())
            }
            Op::FetchTask { sid, .. } => Out::Task(s.tasks.get(&sid).cloned().ok_or(nf("Tasks", &sid))?),
            Op::ListTasks { ws, filter } => Out::Tasks(
                s.tasks
                    .values()
                    .filter(|t| {
                        t.workspace_sid == ws
                            && (filter.assignment_status.is_empty()
                                || filter
                                    .assignment_status
                                    .iter()
                                    .any(|st| st == t.assignment_status.as_str()))
                    })
                    .cloned()
                    .collect(),
            ),
            Op::FetchReservation { sid, .. } => {
                Out::Reservation(s.reservations.get(&sid).cloned().ok_or(nf("Reservations", &sid))?)
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
            Op::ListConferences { filter } => Out::Conferences(
                s.conferences
                    .values()
                    .filter(|c| filter.status.as_ref().is_none_or(|st| st == c.status.as_str()))
                    .cloned()
                    .collect(),
            ),
            other => return Err(invalid("Op", &format!("the test engine does not implement {other:?}"))),
        })
    }
}

impl Engine for FakeEngine {
    fn call(&self, op: Op) -> BoxFuture<'_, Result<Out, Failure>> {
        let result = match op {
            Op::Apply(cmd) => self.apply(cmd),
            read => self.read(read),
        };
        Box::pin(async move { result })
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.events.subscribe()
    }

    fn now(&self) -> Timestamp {
        NOW.plus_secs(30)
    }
}
