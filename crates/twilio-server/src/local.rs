//! The facade's port answered by the engine: [`reply`] turns a command's reply into the facade's answer,
//! [`query`] answers the reads from the engine's [`Core`], and [`HandleEngine`] runs both through the engine
//! actor ([`Handle`]), so reads are ordered with the commands and nothing else touches the core.

use std::sync::Arc;

use engine::core::{
    order_by, ActivityFilter, QueueRealTime, RealTimeStats, TaskFilter as CoreTaskFilter, TaskQueueFilter,
    WorkerFilter as CoreWorkerFilter,
};
use engine::handle::{self, Handle};
use engine::model::{ConferenceStatus, ReservationStatus, Task};
use engine::{Core, Event, Prefix, Reply, Sid, Timestamp};
use futures_util::future::BoxFuture;
use serde_json::{json, Map, Value};
use tokio::sync::broadcast;

use super::port::{ConferenceFilter, Engine, EventFilter, Failure, Op, Out, StatisticsQuery, TaskFilter};
use super::render::iso8601;
use super::stats::{tally, Scope, Tally, TallyJson, Window};

/// A command's reply as the facade's answer.
pub fn reply(r: Reply) -> Out {
    match r {
        Reply::Workspace(x) => Out::Workspace(x),
        Reply::Activity(x) => Out::Activity(x),
        Reply::TaskChannel(x) => Out::TaskChannel(x),
        Reply::Worker(x) => Out::Worker(x),
        Reply::WorkerChannel(x) => Out::WorkerChannel(x),
        Reply::TaskQueue(x) => Out::TaskQueue(x),
        Reply::Workflow(x) => Out::Workflow(x),
        Reply::Task(x) => Out::Task(x),
        Reply::Reservation(x) => Out::Reservation(x),
        Reply::Conference(x) => Out::Conference(x),
        Reply::Participant(x) => Out::Participant(x),
        Reply::Deleted => Out::Deleted,
    }
}

fn owned<T: Clone>(v: Vec<&T>) -> Vec<T> {
    v.into_iter().cloned().collect()
}

fn bad(param: &str, message: impl Into<String>) -> Failure {
    engine::Error::InvalidParameter { param: param.into(), message: message.into() }.into()
}

/// Answers a read [`Op`] from the core and the retained events (oldest first). `Op::Apply` is refused: it
/// goes to `Core::apply`.
pub fn query<'a>(
    core: &Core,
    events: impl Iterator<Item = &'a Event>,
    now: Timestamp,
    op: Op,
) -> Result<Out, Failure> {
    Ok(match op {
        Op::Apply(_) => return Err(bad("Command", "a command is not a read; apply it to the core")),
        Op::FetchWorkspace(ws) => Out::Workspace(core.workspace(ws)?.clone()),
        Op::ListWorkspaces { friendly_name } => {
            Out::Workspaces(owned(core.workspaces(friendly_name.as_deref())))
        }
        Op::FetchActivity { ws, sid } => Out::Activity(core.activity(ws, sid)?.clone()),
        Op::ListActivities { ws, friendly_name, available } => {
            Out::Activities(owned(core.activities(ws, &ActivityFilter { friendly_name, available })?))
        }
        Op::FetchTaskChannel { ws, key } => Out::TaskChannel(core.task_channel(ws, &key)?.clone()),
        Op::ListTaskChannels { ws } => Out::TaskChannels(owned(core.task_channels(ws)?)),
        Op::FetchWorker { ws, sid } => Out::Worker(core.worker(ws, sid)?.clone()),
        Op::ListWorkers { ws, filter } => {
            let f = CoreWorkerFilter {
                activity_name: filter.activity_name,
                activity_sid: filter.activity_sid,
                available: filter.available,
                friendly_name: filter.friendly_name,
                target_workers_expression: filter.target_workers_expression,
                task_queue_name: filter.task_queue_name,
                task_queue_sid: filter.task_queue_sid,
            };
            let mut workers = owned(core.workers(ws, &f)?);
            order_by(&mut workers, filter.ordering.as_deref().unwrap_or_default())?;
            Out::Workers(workers)
        }
        Op::FetchWorkerChannel { ws, worker, key } => {
            Out::WorkerChannel(core.worker_channel(ws, worker, &key)?.clone())
        }
        Op::ListWorkerChannels { ws, worker } => {
            Out::WorkerChannels(owned(core.worker_channels(ws, worker)?))
        }
        Op::FetchTaskQueue { ws, sid } => Out::TaskQueue(core.task_queue(ws, sid)?.clone()),
        Op::ListTaskQueues { ws, friendly_name, evaluate_worker_attributes, worker_sid, ordering } => {
            let f = TaskQueueFilter { friendly_name, evaluate_worker_attributes, worker_sid };
            let mut queues = owned(core.task_queues(ws, &f)?);
            order_by(&mut queues, ordering.as_deref().unwrap_or_default())?;
            Out::TaskQueues(queues)
        }
        Op::FetchWorkflow { ws, sid } => Out::Workflow(core.workflow(ws, sid)?.clone()),
        Op::ListWorkflows { ws, friendly_name } => {
            Out::Workflows(owned(core.workflows(ws, friendly_name.as_deref())?))
        }
        Op::FetchTask { ws, sid } => Out::Task(core.task(ws, sid)?.clone()),
        Op::ListTasks { ws, filter } => Out::Tasks(list_tasks(core, ws, filter)?),
        Op::FetchReservation { ws, task, worker, sid } => {
            let r = core.reservation(ws, sid)?;
            let parent_ok = task.is_none_or(|t| t == r.task_sid) && worker.is_none_or(|w| w == r.worker_sid);
            if !parent_ok {
                let parent = match (task, worker) {
                    (Some(t), _) => format!("Tasks/{t}"),
                    (_, Some(w)) => format!("Workers/{w}"),
                    _ => String::new(),
                };
                return Err(Failure::not_found(format!("/Workspaces/{ws}/{parent}/Reservations/{sid}")));
            }
            Out::Reservation(r.clone())
        }
        Op::ListReservations { ws, task, worker, reservation_status, worker_sid } => {
            let status = reservation_status
                .map(|s| {
                    ReservationStatus::parse(&s)
                        .ok_or_else(|| bad("ReservationStatus", format!("'{s}' is unknown")))
                })
                .transpose()?;
            let list = match (task, worker) {
                (Some(t), _) => core.task_reservations(ws, t, status, worker_sid)?,
                (None, Some(w)) => core.worker_reservations(ws, w, status)?,
                (None, None) => return Err(bad("TaskSid", "a reservation list needs a task or a worker")),
            };
            Out::Reservations(owned(list))
        }
        Op::FetchEvent { ws, sid } => {
            core.workspace(ws)?;
            let found = events.filter(|e| e.workspace_sid == ws).find(|e| e.sid == sid);
            Out::Event(
                found.cloned().ok_or_else(|| Failure::not_found(format!("/Workspaces/{ws}/Events/{sid}")))?,
            )
        }
        Op::ListEvents { ws, filter } => {
            core.workspace(ws)?;
            Out::Events(list_events(events, ws, &filter, now))
        }
        Op::Statistics { ws, scope, query } => statistics(core, events, ws, &scope, &query, now)?,
        Op::FetchConference { key } => Out::Conference(conference(core, &key)?.clone()),
        Op::ListConferences { filter } => Out::Conferences(list_conferences(core, &filter)?),
        Op::FetchParticipant { conference: key, call } => {
            let cf = conference(core, &key)?.sid;
            Out::Participant(core.participant(cf, &call)?.clone())
        }
        Op::ListParticipants { conference: key, muted, hold, coaching } => {
            let cf = conference(core, &key)?.sid;
            let list = core
                .participants(cf)?
                .into_iter()
                .filter(|p| muted.is_none_or(|m| p.muted == m))
                .filter(|p| hold.is_none_or(|h| p.hold == h))
                .filter(|p| coaching.is_none_or(|c| p.coaching == c))
                .cloned()
                .collect();
            Out::Participants(list)
        }
    })
}

/// A conference by SID or friendly name; by name, the live one wins over ended ones, then the newest.
fn conference<'a>(core: &'a Core, key: &str) -> Result<&'a engine::model::Conference, Failure> {
    if let Ok(sid) = Sid::parse_as(key, Prefix::Conference) {
        return Ok(core.conference(sid)?);
    }
    let named = core.conferences(None, Some(key));
    named
        .iter()
        .rev()
        .find(|c| c.status != ConferenceStatus::Completed)
        .or_else(|| named.last())
        .copied()
        .ok_or_else(|| {
            Failure::not_found(format!(
                "/2010-04-01/Accounts/{}/Conferences/{key}.json (no conference has that SID or friendly name)",
                core.account_sid()
            ))
        })
}

fn list_conferences(core: &Core, f: &ConferenceFilter) -> Result<Vec<engine::model::Conference>, Failure> {
    let status = match f.status.as_deref() {
        None => None,
        Some("init") => Some(ConferenceStatus::Init),
        Some("in-progress") => Some(ConferenceStatus::InProgress),
        Some("completed") => Some(ConferenceStatus::Completed),
        Some(other) => return Err(bad("Status", format!("'{other}' is not init, in-progress or completed"))),
    };
    let within = |t: Timestamp, from: Option<Timestamp>, until: Option<Timestamp>| {
        from.is_none_or(|f| t >= f) && until.is_none_or(|u| t <= u)
    };
    Ok(core
        .conferences(status, f.friendly_name.as_deref())
        .into_iter()
        .filter(|c| within(c.date_created, f.created_from, f.created_until))
        .filter(|c| within(c.date_updated, f.updated_from, f.updated_until))
        .cloned()
        .collect())
}

fn list_tasks(core: &Core, ws: Sid, f: TaskFilter) -> Result<Vec<Task>, Failure> {
    let routing_target = f
        .routing_target
        .filter(|t| !t.is_empty())
        .map(|t| Sid::parse(&t).map_err(|e| bad("RoutingTarget", e.to_string())))
        .transpose()?;
    let cf = CoreTaskFilter {
        priority: f.priority,
        assignment_status: f.assignment_status,
        workflow_sid: f.workflow_sid,
        workflow_name: f.workflow_name,
        task_queue_sid: f.task_queue_sid,
        task_queue_name: f.task_queue_name,
        evaluate_task_attributes: f.evaluate_task_attributes,
        routing_target,
        has_addons: f.has_addons,
    };
    let mut tasks = owned(core.tasks(ws, &cf)?);
    order_by(&mut tasks, f.ordering.as_deref().unwrap_or_default())?;
    Ok(tasks)
}

fn list_events<'a>(
    events: impl Iterator<Item = &'a Event>,
    ws: Sid,
    f: &EventFilter,
    now: Timestamp,
) -> Vec<Event> {
    let start = f.start_date.or_else(|| {
        let minutes = i64::from(f.minutes.unwrap_or(15));
        (f.end_date.is_none()).then(|| now.plus_millis(-minutes * 60_000))
    });
    let field_is = |e: &Event, name: &str, sid: Option<Sid>| {
        sid.is_none_or(|s| e.resource_sid == s || e.field(name) == Some(s.to_string().as_str()))
    };
    events
        .filter(|e| e.workspace_sid == ws)
        .filter(|e| start.is_none_or(|s| e.at >= s) && f.end_date.is_none_or(|end| e.at <= end))
        .filter(|e| f.event_type.as_deref().is_none_or(|t| e.event_type.as_str() == t))
        .filter(|e| f.sid.is_none_or(|s| e.sid == s))
        .filter(|e| field_is(e, "TaskSid", f.task_sid))
        .filter(|e| field_is(e, "WorkerSid", f.worker_sid))
        .filter(|e| field_is(e, "ReservationSid", f.reservation_sid))
        .filter(|e| field_is(e, "TaskQueueSid", f.task_queue_sid))
        .filter(|e| field_is(e, "WorkflowSid", f.workflow_sid))
        .filter(|e| {
            f.task_channel.as_deref().is_none_or(|c| {
                e.field("TaskChannelUniqueName") == Some(c) || e.field("TaskChannelSid") == Some(c)
            })
        })
        .cloned()
        .collect()
}

fn realtime_json(rt: &RealTimeStats) -> Map<String, Value> {
    let mut m = Map::new();
    let activities: Vec<Value> = rt
        .activity_statistics
        .iter()
        .map(|a| json!({"sid": a.sid.to_string(), "friendly_name": a.friendly_name, "workers": a.workers}))
        .collect();
    m.insert("activity_statistics".into(), Value::Array(activities));
    m.insert("longest_task_waiting_age".into(), json!(rt.longest_task_waiting_age));
    m.insert("longest_task_waiting_sid".into(), json!(rt.longest_task_waiting_sid.map(|s| s.to_string())));
    m.insert("tasks_by_priority".into(), json!(rt.tasks_by_priority));
    m.insert("tasks_by_status".into(), json!(rt.tasks_by_status));
    m.insert("total_tasks".into(), json!(rt.total_tasks));
    m.insert("total_workers".into(), json!(rt.total_workers));
    m
}

fn queue_json(q: &QueueRealTime) -> Map<String, Value> {
    let mut m = realtime_json(&q.stats);
    m.insert("total_available_workers".into(), json!(q.total_available_workers));
    m.insert("total_eligible_workers".into(), json!(q.total_eligible_workers));
    m.insert("longest_relative_task_age_in_queue".into(), json!(q.stats.longest_task_waiting_age));
    m.insert(
        "longest_relative_task_sid_in_queue".into(),
        json!(q.stats.longest_task_waiting_sid.map(|s| s.to_string())),
    );
    m
}

fn with(mut m: Map<String, Value>, key: &str, value: Value) -> Value {
    m.insert(key.into(), value);
    Value::Object(m)
}

fn statistics<'a>(
    core: &Core,
    events: impl Iterator<Item = &'a Event>,
    ws: Sid,
    scope: &str,
    q: &StatisticsQuery,
    now: Timestamp,
) -> Result<Out, Failure> {
    core.workspace(ws)?;
    let kind = q.kind.as_str();
    let window = super::stats::window(q, now)?;
    let pick = |rt: Map<String, Value>, cum: Map<String, Value>| match kind {
        "RealTimeStatistics" => rt,
        "CumulativeStatistics" => cum,
        _ => {
            let mut m = Map::new();
            m.insert("realtime".into(), Value::Object(rt));
            m.insert("cumulative".into(), Value::Object(cum));
            m
        }
    };
    let (collection, id) = match scope.split_once('/') {
        Some((c, id)) => (c, Some(id)),
        None => (scope, None),
    };
    let doc = match (collection, id) {
        ("", _) => {
            let rt = realtime_json(&core.workspace_realtime(ws, now)?);
            let cum = tally(events, ws, Scope::Workspace, &window).cumulative_json(Scope::Workspace, &window);
            pick(rt, cum)
        }
        ("TaskQueues", Some(id)) => {
            let queue =
                Sid::parse_as(id, Prefix::TaskQueue).map_err(|e| bad("TaskQueueSid", e.to_string()))?;
            let rt = queue_json(&core.queue_realtime(ws, queue, now)?);
            let scope = Scope::Queue(queue);
            let cum = tally(events, ws, scope, &window).cumulative_json(scope, &window);
            return Ok(Out::Statistics(with(pick(rt, cum), "task_queue_sid", json!(queue.to_string()))));
        }
        ("TaskQueues", None) => return task_queues_statistics(core, events, ws, q, &window, now),
        ("Workflows", Some(id)) => {
            let wf = Sid::parse_as(id, Prefix::Workflow).map_err(|e| bad("WorkflowSid", e.to_string()))?;
            let rt = realtime_json(&core.workflow_realtime(ws, wf, now)?);
            let scope = Scope::Workflow(wf);
            let cum = tally(events, ws, scope, &window).cumulative_json(scope, &window);
            return Ok(Out::Statistics(with(pick(rt, cum), "workflow_sid", json!(wf.to_string()))));
        }
        ("Workers", worker) => {
            let worker = worker
                .map(|id| Sid::parse_as(id, Prefix::Worker).map_err(|e| bad("WorkerSid", e.to_string())))
                .transpose()?;
            let workers = match worker {
                Some(sid) => vec![core.worker(ws, sid)?],
                None => core.workers(ws, &CoreWorkerFilter::default())?,
            };
            let mut t = tally(events, ws, Scope::Workers(worker), &window);
            t.add_current_activities(workers.iter().copied(), &window);
            let activities = core.activities(ws, &ActivityFilter::default())?;
            let mut cum = Map::new();
            t.reservations_json(&mut cum);
            cum.insert("activity_durations".into(), t.activity_durations_json(activities.iter().copied()));
            cum.insert("start_time".into(), json!(iso8601(window.start)));
            cum.insert("end_time".into(), json!(iso8601(window.end)));
            if let Some(sid) = worker {
                // One worker: its cumulative figures only (FetchWorkerInstanceStatistics).
                cum.insert("tasks_assigned".into(), json!(t.reservations_accepted));
                let mut m = Map::new();
                m.insert("cumulative".into(), Value::Object(cum));
                m.insert("worker_sid".into(), json!(sid.to_string()));
                return Ok(Out::Statistics(Value::Object(m)));
            }
            let rt = core.workers_realtime(ws, now)?;
            let mut rt_json = Map::new();
            let activity_statistics: Vec<Value> = rt
                .activity_statistics
                .iter()
                .map(|a| json!({"sid": a.sid.to_string(), "friendly_name": a.friendly_name, "workers": a.workers}))
                .collect();
            rt_json.insert("activity_statistics".into(), Value::Array(activity_statistics));
            rt_json.insert("total_workers".into(), json!(rt.total_workers));
            pick(rt_json, cum)
        }
        _ => return Err(bad("Statistics", format!("no statistics at {scope}"))),
    };
    Ok(Out::Statistics(Value::Object(doc)))
}

/// The queue statistics list, and the bulk real-time POST (`Body` = `{"TaskQueueSids": [...]}` or every queue).
fn task_queues_statistics<'a>(
    core: &Core,
    events: impl Iterator<Item = &'a Event>,
    ws: Sid,
    q: &StatisticsQuery,
    window: &Window,
    now: Timestamp,
) -> Result<Out, Failure> {
    let param = |n: &str| q.params.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let queues = core
        .task_queues(ws, &TaskQueueFilter { friendly_name: param("FriendlyName"), ..Default::default() })?;
    if q.kind == "RealTimeStatistics" {
        let wanted: Option<Vec<String>> = param("Body").and_then(|b| {
            let v: Value = serde_json::from_str(&b).ok()?;
            let list = v.get("TaskQueueSids").or_else(|| v.get("task_queue_sids")).or(Some(&v))?;
            list.as_array().map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect())
        });
        let mut data = Vec::new();
        for queue in
            queues.iter().filter(|x| wanted.as_ref().is_none_or(|w| w.contains(&x.sid.to_string()))).take(50)
        {
            let m = queue_json(&core.queue_realtime(ws, queue.sid, now)?);
            data.push(with(m, "task_queue_sid", json!(queue.sid.to_string())));
        }
        let count = data.len();
        return Ok(Out::Statistics(json!({"task_queue_data": data, "task_queue_response_count": count})));
    }
    // One pass over the log for every queue.
    let mut tallies: Vec<(Sid, Tally)> = Vec::with_capacity(queues.len());
    let events: Vec<&Event> = events.filter(|e| e.workspace_sid == ws && e.at >= window.start).collect();
    for queue in &queues {
        tallies.push((queue.sid, tally(events.iter().copied(), ws, Scope::Queue(queue.sid), window)));
    }
    let mut list = Vec::new();
    for (sid, t) in tallies {
        let rt = queue_json(&core.queue_realtime(ws, sid, now)?);
        let cum = t.cumulative_json(Scope::Queue(sid), window);
        list.push(json!({"task_queue_sid": sid.to_string(), "realtime": rt, "cumulative": cum}));
    }
    Ok(Out::StatisticsList(list))
}

/// The facade's port over the engine actor: commands go to [`Handle::apply`], reads run inside
/// [`Handle::read`] against the core and the retained events, in order with the commands.
#[derive(Clone)]
pub struct HandleEngine {
    handle: Handle,
}

impl HandleEngine {
    /// Wraps a running engine.
    pub fn new(handle: Handle) -> HandleEngine {
        HandleEngine { handle }
    }

    /// The engine behind the port.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }
}

/// The actor's own failures: a refused command keeps its Twilio status. A disk that refused a write (full,
/// read-only, I/O error), an engine that could not reload after one, and a stopped engine are a 503 the
/// client may retry once the operator has fixed the cause; the message names no server path, and the cause
/// (which does) is logged here. A damaged store or a bug is a 500, logged where it becomes an `ApiError`.
fn failure(e: handle::Error) -> Failure {
    let unavailable = |message: String| Failure { status: 503, code: 20503, message };
    match e {
        handle::Error::Engine(e) => e.into(),
        handle::Error::Store(ref cause) if cause.kind().is_exhaustion() => {
            tracing::error!(%cause, "a change could not be saved; the engine reloaded what is on disk");
            unavailable(e.to_string())
        }
        handle::Error::Store(cause) => Failure { status: 500, code: 20500, message: cause.to_string() },
        handle::Error::Halted(ref why) => {
            tracing::error!(cause = %why, "the engine could not reload its state after a failed write");
            unavailable(e.to_string())
        }
        handle::Error::Stopped => unavailable(e.to_string()),
    }
}

impl Engine for HandleEngine {
    fn call(&self, op: Op) -> BoxFuture<'_, Result<Out, Failure>> {
        Box::pin(async move {
            match op {
                Op::Apply(cmd) => self.handle.apply(cmd).await.map(reply).map_err(failure),
                read => {
                    let now = self.handle.clock().now();
                    self.handle
                        .read(move |state| query(&state.core, state.events.iter().map(|e| &**e), now, read))
                        .await
                        .map_err(failure)?
                }
            }
        })
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.handle.subscribe()
    }

    fn now(&self) -> Timestamp {
        self.handle.clock().now()
    }
}
