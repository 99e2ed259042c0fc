//! The engine as the server drives it: [`Engine`], a typed handle over the engine actor.
//!
//! Commands go to [`Handle::apply`] as the engine's own [`Command`]s and come back as the resource the caller
//! names ([`Engine::apply`]); reads are async methods with typed arguments and results, each a closure run on
//! the actor ([`Handle::read`]), so a read sees every command acknowledged before it and nothing else touches
//! the core. Statistics come back as the engine's figures ([`Statistics`], [`WorkersCumulative`]), which
//! [`crate::stats`] renders. Every failure is already an [`ApiError`] with Twilio's status and code.
//!
//! The facade owns the wire format and parameter syntax; the engine owns every rule (transitions,
//! immutability, uniqueness, ranges, filters and their expressions).

use std::sync::Arc;

use engine::command::Command;
use engine::core::{
    order_by, ActivityFilter, QueueRealTime, RealTimeStats, TaskFilter, TaskQueueFilter, WorkerFilter,
};
use engine::cumulative::{tally, Scope, Tally, Window};
use engine::handle::{Handle, State};
use engine::model::{
    Activity, ApiKey, Conference, ConferenceStatus, Participant, Reservation, ReservationStatus, Task,
    TaskChannel, TaskQueue, Worker, WorkerChannel, Workflow, Workspace,
};
use engine::{Core, Event, Prefix, Sid, Timestamp};
use tokio::sync::broadcast;

use crate::{ApiError, ApiResult};

/// A command's answer as the resource the caller expects (the engine's list of resources).
pub use engine::core::FromReply;

/// The engine actor with the reads and commands the facade needs. Cheap to clone (it is the actor's
/// [`Handle`]).
#[derive(Clone)]
pub struct Engine {
    handle: Handle,
}

/// Which view of a reservation: under its task or under its worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parent {
    Task(Sid),
    Worker(Sid),
}

/// List filters of the Events list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventFilter {
    pub start_date: Option<Timestamp>,
    pub end_date: Option<Timestamp>,
    pub event_type: Option<String>,
    pub minutes: Option<u32>,
    pub reservation_sid: Option<Sid>,
    pub task_queue_sid: Option<Sid>,
    pub task_sid: Option<Sid>,
    pub worker_sid: Option<Sid>,
    pub workflow_sid: Option<Sid>,
    pub task_channel: Option<String>,
    pub sid: Option<Sid>,
}

/// List filters of the Conferences list (dates are bounds in ms, inclusive).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConferenceFilter {
    pub status: Option<ConferenceStatus>,
    pub friendly_name: Option<String>,
    pub created_from: Option<Timestamp>,
    pub created_until: Option<Timestamp>,
    pub updated_from: Option<Timestamp>,
    pub updated_until: Option<Timestamp>,
}

/// What the engine counted in one scope over a window, and how (the scope decides which `tasks_*` figures
/// apply).
#[derive(Debug, Clone)]
pub struct Cumulative {
    pub tally: Tally,
    pub scope: Scope,
    pub window: Window,
}

/// The real-time and cumulative statistics of a workspace, queue or workflow. Both are always computed, so
/// a request for either fails the same way when the scope does not exist.
#[derive(Debug, Clone)]
pub struct Statistics<R> {
    pub realtime: R,
    pub cumulative: Cumulative,
}

/// The cumulative statistics of the workers (or one worker): reservations and time spent per activity.
#[derive(Debug, Clone)]
pub struct WorkersCumulative {
    pub tally: Tally,
    /// Every activity of the workspace, zeros included.
    pub activities: Vec<Activity>,
    pub window: Window,
}

impl Engine {
    /// Wraps a running engine.
    pub fn new(handle: Handle) -> Engine {
        Engine { handle }
    }

    /// The engine actor.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Follows the event stream from now on (for callback delivery).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.handle.subscribe()
    }

    /// The engine's current time (for `age` fields and statistics windows).
    pub fn now(&self) -> Timestamp {
        self.handle.clock().now()
    }

    /// Applies a command and answers the resource it created or changed (`()` for a delete).
    pub async fn apply<T: FromReply>(&self, command: Command) -> ApiResult<T> {
        let reply = self.handle.apply(command).await?;
        // A command answers with its own resource: another kind is an engine bug, not client input.
        T::from_reply(reply).ok_or_else(|| {
            ApiError::internal(&format!(
                "the engine answered a command with another kind of resource than {}",
                std::any::type_name::<T>()
            ))
        })
    }

    /// Runs `read` on the actor against the state and the current time.
    async fn read<R: Send + 'static>(
        &self,
        read: impl FnOnce(&State, Timestamp) -> Result<R, engine::Error> + Send + 'static,
    ) -> ApiResult<R> {
        let now = self.now();
        Ok(self.handle.read(move |state| read(state, now)).await??)
    }

    /// Runs `read` on the actor against the core.
    async fn core<R: Send + 'static>(
        &self,
        read: impl FnOnce(&Core) -> Result<R, engine::Error> + Send + 'static,
    ) -> ApiResult<R> {
        self.read(move |state, _| read(&state.core)).await
    }

    pub async fn workspace(&self, ws: Sid) -> ApiResult<Workspace> {
        self.core(move |core| Ok(core.workspace(ws)?.clone())).await
    }

    pub async fn workspaces(&self, friendly_name: Option<String>) -> ApiResult<Vec<Workspace>> {
        self.core(move |core| Ok(owned(core.workspaces(friendly_name.as_deref())))).await
    }

    pub async fn activity(&self, ws: Sid, sid: Sid) -> ApiResult<Activity> {
        self.core(move |core| Ok(core.activity(ws, sid)?.clone())).await
    }

    pub async fn activities(&self, ws: Sid, filter: ActivityFilter) -> ApiResult<Vec<Activity>> {
        self.core(move |core| Ok(owned(core.activities(ws, &filter)?))).await
    }

    /// A task channel by SID or unique name.
    pub async fn task_channel(&self, ws: Sid, key: String) -> ApiResult<TaskChannel> {
        self.core(move |core| Ok(core.task_channel(ws, &key)?.clone())).await
    }

    pub async fn task_channels(&self, ws: Sid) -> ApiResult<Vec<TaskChannel>> {
        self.core(move |core| Ok(owned(core.task_channels(ws)?))).await
    }

    pub async fn worker(&self, ws: Sid, sid: Sid) -> ApiResult<Worker> {
        self.core(move |core| Ok(core.worker(ws, sid)?.clone())).await
    }

    /// The workers `filter` selects, sorted by `ordering` (the `Ordering` parameter, empty for creation order).
    pub async fn workers(&self, ws: Sid, filter: WorkerFilter, ordering: String) -> ApiResult<Vec<Worker>> {
        self.core(move |core| sorted(owned(core.workers(ws, &filter)?), &ordering)).await
    }

    /// A worker's channel by SID or the task channel's unique name.
    pub async fn worker_channel(&self, ws: Sid, worker: Sid, key: String) -> ApiResult<WorkerChannel> {
        self.core(move |core| Ok(core.worker_channel(ws, worker, &key)?.clone())).await
    }

    pub async fn worker_channels(&self, ws: Sid, worker: Sid) -> ApiResult<Vec<WorkerChannel>> {
        self.core(move |core| Ok(owned(core.worker_channels(ws, worker)?))).await
    }

    pub async fn task_queue(&self, ws: Sid, sid: Sid) -> ApiResult<TaskQueue> {
        self.core(move |core| Ok(core.task_queue(ws, sid)?.clone())).await
    }

    pub async fn task_queues(
        &self,
        ws: Sid,
        filter: TaskQueueFilter,
        ordering: String,
    ) -> ApiResult<Vec<TaskQueue>> {
        self.core(move |core| sorted(owned(core.task_queues(ws, &filter)?), &ordering)).await
    }

    pub async fn workflow(&self, ws: Sid, sid: Sid) -> ApiResult<Workflow> {
        self.core(move |core| Ok(core.workflow(ws, sid)?.clone())).await
    }

    pub async fn workflows(&self, ws: Sid, friendly_name: Option<String>) -> ApiResult<Vec<Workflow>> {
        self.core(move |core| Ok(owned(core.workflows(ws, friendly_name.as_deref())?))).await
    }

    pub async fn task(&self, ws: Sid, sid: Sid) -> ApiResult<Task> {
        self.core(move |core| Ok(core.task(ws, sid)?.clone())).await
    }

    pub async fn tasks(&self, ws: Sid, filter: TaskFilter, ordering: String) -> ApiResult<Vec<Task>> {
        self.core(move |core| sorted(owned(core.tasks(ws, &filter)?), &ordering)).await
    }

    /// A reservation, which must belong to `parent`.
    pub async fn reservation(&self, ws: Sid, parent: Parent, sid: Sid) -> ApiResult<Reservation> {
        self.core(move |core| {
            let r = core.reservation(ws, sid)?;
            let (belongs, path) = match parent {
                Parent::Task(t) => (r.task_sid == t, format!("Tasks/{t}")),
                Parent::Worker(w) => (r.worker_sid == w, format!("Workers/{w}")),
            };
            if !belongs {
                return Err(not_found(format!("/Workspaces/{ws}/{path}/Reservations/{sid}")));
            }
            Ok(r.clone())
        })
        .await
    }

    /// A task's or a worker's reservations; `worker_sid` narrows a task's to one worker.
    pub async fn reservations(
        &self,
        ws: Sid,
        parent: Parent,
        status: Option<ReservationStatus>,
        worker_sid: Option<Sid>,
    ) -> ApiResult<Vec<Reservation>> {
        self.core(move |core| {
            Ok(owned(match parent {
                Parent::Task(t) => core.task_reservations(ws, t, status, worker_sid)?,
                Parent::Worker(w) => core.worker_reservations(ws, w, status)?,
            }))
        })
        .await
    }

    /// One of the retained events.
    pub async fn event(&self, ws: Sid, sid: Sid) -> ApiResult<Event> {
        self.read(move |state, _| {
            state.core.workspace(ws)?;
            let found = state.events.iter().find(|e| e.workspace_sid == ws && e.sid == sid);
            found.map(|e| Event::clone(e)).ok_or_else(|| not_found(format!("/Workspaces/{ws}/Events/{sid}")))
        })
        .await
    }

    /// The retained events `filter` selects, oldest first; by default those of the last 15 minutes.
    pub async fn events(&self, ws: Sid, filter: EventFilter) -> ApiResult<Vec<Event>> {
        self.read(move |state, now| {
            state.core.workspace(ws)?;
            Ok(list_events(state.events.iter().map(|e| &**e), ws, &filter, now))
        })
        .await
    }

    pub async fn api_key(&self, sid: Sid) -> ApiResult<ApiKey> {
        self.core(move |core| Ok(core.api_key(sid)?.clone())).await
    }

    pub async fn api_keys(&self) -> ApiResult<Vec<ApiKey>> {
        self.core(|core| Ok(owned(core.api_keys()))).await
    }

    /// The secret of API key `sid`, to verify an AccessToken that names it as its issuer (`iss`); `None`
    /// when there is no such key (or the engine has stopped).
    pub async fn api_key_secret(&self, sid: Sid) -> Option<String> {
        self.core(move |core| Ok(core.api_key(sid)?.secret.expose().to_owned())).await.ok()
    }

    /// A conference by SID or friendly name; by name, the live one wins over ended ones, then the newest.
    pub async fn conference(&self, key: String) -> ApiResult<Conference> {
        self.core(move |core| Ok(conference(core, &key)?.clone())).await
    }

    pub async fn conferences(&self, filter: ConferenceFilter) -> ApiResult<Vec<Conference>> {
        let within = |t: Timestamp, from: Option<Timestamp>, until: Option<Timestamp>| {
            from.is_none_or(|f| t >= f) && until.is_none_or(|u| t <= u)
        };
        self.core(move |core| {
            let f = filter;
            Ok(core
                .conferences(f.status, f.friendly_name.as_deref())
                .into_iter()
                .filter(|c| within(c.date_created, f.created_from, f.created_until))
                .filter(|c| within(c.date_updated, f.updated_from, f.updated_until))
                .cloned()
                .collect())
        })
        .await
    }

    /// A participant of a conference (SID or friendly name) by call SID or label.
    pub async fn participant(&self, conference_key: String, call: String) -> ApiResult<Participant> {
        self.core(move |core| {
            let cf = conference(core, &conference_key)?.sid;
            Ok(core.participant(cf, &call)?.clone())
        })
        .await
    }

    /// A conference's participants, filtered by their flags.
    pub async fn participants(
        &self,
        conference_key: String,
        muted: Option<bool>,
        hold: Option<bool>,
        coaching: Option<bool>,
    ) -> ApiResult<Vec<Participant>> {
        self.core(move |core| {
            let cf = conference(core, &conference_key)?.sid;
            Ok(core
                .participants(cf)?
                .into_iter()
                .filter(|p| muted.is_none_or(|m| p.muted == m))
                .filter(|p| hold.is_none_or(|h| p.hold == h))
                .filter(|p| coaching.is_none_or(|c| p.coaching == c))
                .cloned()
                .collect())
        })
        .await
    }

    /// The statistics of a workspace.
    pub async fn workspace_statistics(
        &self,
        ws: Sid,
        window: Window,
    ) -> ApiResult<Statistics<RealTimeStats>> {
        self.statistics(ws, Scope::Workspace, window, move |core, now| core.workspace_realtime(ws, now)).await
    }

    /// The statistics of `scope` in `ws`: `realtime` reads its real-time part, the event log its cumulative
    /// part over `window`.
    async fn statistics<R: Send + 'static>(
        &self,
        ws: Sid,
        scope: Scope,
        window: Window,
        realtime: impl FnOnce(&Core, Timestamp) -> Result<R, engine::Error> + Send + 'static,
    ) -> ApiResult<Statistics<R>> {
        self.read(move |state, now| {
            state.core.workspace(ws)?;
            let realtime = realtime(&state.core, now)?;
            Ok(Statistics { realtime, cumulative: cumulative(state, ws, scope, window) })
        })
        .await
    }

    /// The statistics of a task queue.
    pub async fn task_queue_statistics(
        &self,
        ws: Sid,
        queue: Sid,
        window: Window,
    ) -> ApiResult<Statistics<QueueRealTime>> {
        let realtime = move |core: &Core, now| core.queue_realtime(ws, queue, now);
        self.statistics(ws, Scope::Queue(queue), window, realtime).await
    }

    /// The statistics of a workflow.
    pub async fn workflow_statistics(
        &self,
        ws: Sid,
        workflow: Sid,
        window: Window,
    ) -> ApiResult<Statistics<RealTimeStats>> {
        let realtime = move |core: &Core, now| core.workflow_realtime(ws, workflow, now);
        self.statistics(ws, Scope::Workflow(workflow), window, realtime).await
    }

    /// The statistics of every worker of a workspace (real time: workers per activity).
    pub async fn workers_statistics(
        &self,
        ws: Sid,
        window: Window,
    ) -> ApiResult<(RealTimeStats, WorkersCumulative)> {
        self.read(move |state, now| {
            let cumulative = workers_cumulative(state, ws, None, window)?;
            Ok((state.core.workers_realtime(ws, now)?, cumulative))
        })
        .await
    }

    /// The cumulative statistics of one worker.
    pub async fn worker_statistics(
        &self,
        ws: Sid,
        worker: Sid,
        window: Window,
    ) -> ApiResult<WorkersCumulative> {
        self.read(move |state, _| workers_cumulative(state, ws, Some(worker), window)).await
    }

    /// The statistics of every queue `friendly_name` selects (one pass over the event log for them all).
    pub async fn task_queues_statistics(
        &self,
        ws: Sid,
        friendly_name: Option<String>,
        window: Window,
    ) -> ApiResult<Vec<(Sid, Statistics<QueueRealTime>)>> {
        self.read(move |state, now| {
            let core = &state.core;
            core.workspace(ws)?;
            let filter = TaskQueueFilter { friendly_name, ..Default::default() };
            let queues: Vec<Sid> = core.task_queues(ws, &filter)?.iter().map(|q| q.sid).collect();
            let events: Vec<&Event> = state
                .events
                .iter()
                .map(|e| &**e)
                .filter(|e| e.workspace_sid == ws && e.at >= window.start)
                .collect();
            let mut list = Vec::with_capacity(queues.len());
            for queue in queues {
                let scope = Scope::Queue(queue);
                let tally = tally(events.iter().copied(), ws, scope, &window);
                let realtime = core.queue_realtime(ws, queue, now)?;
                list.push((
                    queue,
                    Statistics { realtime, cumulative: Cumulative { tally, scope, window: window.clone() } },
                ));
            }
            Ok(list)
        })
        .await
    }

    /// The real-time statistics of the queues named in `wanted` (every queue when `None`), at most 50.
    pub async fn task_queues_real_time(
        &self,
        ws: Sid,
        wanted: Option<Vec<String>>,
    ) -> ApiResult<Vec<(Sid, QueueRealTime)>> {
        self.read(move |state, now| {
            let core = &state.core;
            core.workspace(ws)?;
            let queues = core.task_queues(ws, &TaskQueueFilter::default())?;
            let chosen =
                queues.iter().filter(|q| wanted.as_ref().is_none_or(|w| w.contains(&q.sid.to_string())));
            chosen.take(50).map(|q| Ok((q.sid, core.queue_realtime(ws, q.sid, now)?))).collect()
        })
        .await
    }
}

fn owned<T: Clone>(v: Vec<&T>) -> Vec<T> {
    v.into_iter().cloned().collect()
}

fn sorted<T: engine::core::Ordered>(mut items: Vec<T>, ordering: &str) -> Result<Vec<T>, engine::Error> {
    order_by(&mut items, ordering)?;
    Ok(items)
}

fn not_found(what: String) -> engine::Error {
    engine::Error::NotFound { what }
}

fn cumulative(state: &State, ws: Sid, scope: Scope, window: Window) -> Cumulative {
    Cumulative { tally: tally(state.events.iter().map(|e| &**e), ws, scope, &window), scope, window }
}

fn workers_cumulative(
    state: &State,
    ws: Sid,
    worker: Option<Sid>,
    window: Window,
) -> Result<WorkersCumulative, engine::Error> {
    let core = &state.core;
    core.workspace(ws)?;
    let workers = match worker {
        Some(sid) => vec![core.worker(ws, sid)?],
        None => core.workers(ws, &WorkerFilter::default())?,
    };
    let mut tally = tally(state.events.iter().map(|e| &**e), ws, Scope::Workers(worker), &window);
    tally.add_current_activities(workers.iter().copied(), &window);
    let activities = owned(core.activities(ws, &ActivityFilter::default())?);
    Ok(WorkersCumulative { tally, activities, window })
}

fn conference<'a>(core: &'a Core, key: &str) -> Result<&'a Conference, engine::Error> {
    if let Ok(sid) = Sid::parse_as(key, Prefix::Conference) {
        return core.conference(sid);
    }
    let named = core.conferences(None, Some(key));
    named.iter().rev().find(|c| c.status != ConferenceStatus::Completed).or_else(|| named.last()).copied().ok_or_else(
        || {
            not_found(format!(
                "/2010-04-01/Accounts/{}/Conferences/{key}.json (no conference has that SID or friendly name)",
                core.account_sid()
            ))
        },
    )
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
