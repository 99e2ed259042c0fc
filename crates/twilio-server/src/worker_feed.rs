//! Workers' event channels in process: what the event bridge's v1 worker channel (`WK`,
//! [`crate::bridge`]) sends a worker, for a consumer in the same process that would otherwise open a
//! WebSocket to itself (the worker app in local mode: `trworker::app::channels`).
//!
//! One [`WorkerFeed`] follows the engine's event stream for a whole workspace and hands out each event of a
//! worker the consumer asks for, as the v1 channel frames it: the TaskRouter event type unchanged and the
//! payload in public REST JSON, the worker for `worker.activity.update` and `worker.attributes.update`, the
//! worker channel for `worker.capacity.update` and `worker.channel.availability.update`, and for every
//! `reservation.*` the reservation's task with `reservation_sid` added. One feed for all workers, not one
//! subscription each: an event is looked at once, and rendered only when its worker is wanted.
//!
//! A [`WorkspaceFeed`] is the same for the v1 workspace channel (`WS`): every event of the workspace, with
//! the public JSON of the resource it names (a worker, task, reservation, queue, …), or the public Event
//! resource when that object is gone (the supervisor page in local mode: `trworker::app::supervisor`).
//!
//! The feed may follow the stream of events as applied ([`WorkerFeed::applied`]), where the bridge follows
//! the durable one: an in-process view may show a change a crash in the next milliseconds would take back,
//! exactly as a read at that moment would (`engine::handle`), and it saves the disk's sync on the way to
//! the page.

use std::sync::Arc;

use engine::model::{Activity, Task, TaskQueue, Worker, Workflow};
use engine::{Event, Prefix, Sid};
use serde_json::Value;
use tokio::sync::broadcast::{error::RecvError, Receiver};

use crate::handle::Parent;
use crate::resources::{render_reservation, render_worker_channel, render_workspace, Resource};
use crate::ServerState;

/// One event for one worker, framed as the v1 worker channel frames it.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerEvent {
    /// The worker whose channel it is for (`WK…`).
    pub worker_sid: String,
    /// TaskRouter's event type (`reservation.created`, `worker.activity.update`, …).
    pub event_type: String,
    /// The public REST JSON of what the event names, as a fetch would show it now.
    pub payload: Value,
}

/// Why [`WorkerFeed::next`] returned no event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedEnd {
    /// The feed fell behind the stream and this many events were lost: the consumer must read its
    /// workers' state again.
    Lagged(u64),
    /// The engine has stopped.
    Closed,
}

/// What the worker channel renders for an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WorkerRender {
    /// The worker itself.
    Worker,
    /// One of its worker channels, by task channel SID.
    WorkerChannel { task_channel: Sid },
    /// A reservation as v1's worker takes it: its task with `reservation_sid`.
    ReservationTask { reservation: Sid, task: Sid },
}

/// Whose worker channel gets `event`, and what it renders: the v1 worker channel's event set (see
/// [`crate::bridge`]'s v1 channel docs).
pub(crate) fn worker_concern(event: &Event) -> Option<(Sid, WorkerRender)> {
    let name = event.event_type.as_str();
    let field_sid = |name: &str| event.field(name).and_then(|s| Sid::parse(s).ok());
    match name {
        "worker.activity.update" | "worker.attributes.update" => {
            Some((event.resource_sid, WorkerRender::Worker))
        }
        "worker.capacity.update" | "worker.channel.availability.update" => Some((
            event.resource_sid,
            WorkerRender::WorkerChannel { task_channel: field_sid("TaskChannelSid")? },
        )),
        _ if name.starts_with("reservation.") => Some((
            field_sid("WorkerSid")?,
            WorkerRender::ReservationTask { reservation: event.resource_sid, task: field_sid("TaskSid")? },
        )),
        _ => None,
    }
}

/// The public JSON of what `render` names for `worker` in workspace `ws`, or `None` when it is gone.
pub(crate) async fn worker_payload(
    state: &ServerState,
    ws: Sid,
    worker: Sid,
    render: WorkerRender,
) -> Option<Value> {
    let engine = state.engine();
    match render {
        WorkerRender::Worker => Worker::fetch(engine, ws, worker).await.ok().map(|w| w.render(state)),
        WorkerRender::WorkerChannel { task_channel } => {
            let channel = engine.worker_channel(ws, worker, task_channel.to_string()).await.ok()?;
            Some(render_worker_channel(state, &channel))
        }
        WorkerRender::ReservationTask { reservation, task } => {
            let mut task = engine.task(ws, task).await.ok()?.render(state);
            task["reservation_sid"] = Value::String(reservation.to_string());
            Some(task)
        }
    }
}

/// One workspace's stream of events, as applied or once durable: what both feeds follow.
struct Follow {
    state: ServerState,
    workspace_sid: Sid,
    events: Receiver<Arc<Event>>,
}

impl Follow {
    fn applied(state: ServerState, workspace_sid: Sid) -> Follow {
        let events = state.engine().handle().subscribe_applied();
        Follow { state, workspace_sid, events }
    }

    fn durable(state: ServerState, workspace_sid: Sid) -> Follow {
        let events = state.engine().subscribe();
        Follow { state, workspace_sid, events }
    }

    /// The next event of the workspace (those of other workspaces are skipped).
    async fn next(&mut self) -> Result<Arc<Event>, FeedEnd> {
        loop {
            match self.events.recv().await {
                Ok(event) if event.workspace_sid == self.workspace_sid => return Ok(event),
                Ok(_) => continue,
                Err(RecvError::Lagged(missed)) => return Err(FeedEnd::Lagged(missed)),
                Err(RecvError::Closed) => return Err(FeedEnd::Closed),
            }
        }
    }
}

/// Follows one workspace's events and frames those of the workers a consumer wants.
pub struct WorkerFeed {
    follow: Follow,
}

/// `applied` and `durable`, the two ways to start a feed that wraps a [`Follow`].
macro_rules! follow_constructors {
    ($($feed:ident),*) => {$(
        impl $feed {
            /// A feed of `workspace_sid` following the events as applied, from now on.
            pub fn applied(state: ServerState, workspace_sid: Sid) -> $feed {
                $feed { follow: Follow::applied(state, workspace_sid) }
            }

            /// A feed of `workspace_sid` following the events once durable, from now on, as the event bridge
            /// does.
            pub fn durable(state: ServerState, workspace_sid: Sid) -> $feed {
                $feed { follow: Follow::durable(state, workspace_sid) }
            }
        }
    )*};
}

follow_constructors!(WorkerFeed, WorkspaceFeed);

impl WorkerFeed {
    /// The next event of a worker for whom `wanted` (given the `WK…` SID) is true. Events of other
    /// workspaces and workers, and events whose object is gone by the time it is rendered, are skipped.
    pub async fn next(&mut self, wanted: impl Fn(&str) -> bool) -> Result<WorkerEvent, FeedEnd> {
        loop {
            let event = self.follow.next().await?;
            let Some((worker, render)) = worker_concern(&event) else { continue };
            let worker_sid = worker.to_string();
            if !wanted(&worker_sid) {
                continue;
            }
            let follow = &self.follow;
            let Some(payload) = worker_payload(&follow.state, follow.workspace_sid, worker, render).await
            else {
                continue;
            };
            return Ok(WorkerEvent { worker_sid, event_type: event.event_type.as_str().to_owned(), payload });
        }
    }
}

/// One event of a workspace, framed as the v1 workspace channel frames it.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkspaceEvent {
    /// TaskRouter's event type (`task.created`, `reservation.accepted`, `worker.activity.update`, …).
    pub event_type: String,
    /// The public REST JSON of the resource the event names, as a fetch would show it now; the public
    /// Event resource when that is gone.
    pub payload: Value,
}

/// The public JSON of the resource `event` names in workspace `ws`, or `None` when it is gone or of a kind
/// the workspace channel does not render: what the v1 workspace channel sends, for the bridge to share.
pub(crate) async fn resource_payload(state: &ServerState, ws: Sid, event: &Event) -> Option<Value> {
    async fn fetch<R: Resource<Id = Sid>>(state: &ServerState, ws: Sid, sid: Sid) -> Option<Value> {
        R::fetch(state.engine(), ws, sid).await.ok().map(|r| r.render(state))
    }
    let engine = state.engine();
    let sid = event.resource_sid;
    match sid.prefix() {
        Prefix::Worker => fetch::<Worker>(state, ws, sid).await,
        Prefix::Task => fetch::<Task>(state, ws, sid).await,
        Prefix::TaskQueue => fetch::<TaskQueue>(state, ws, sid).await,
        Prefix::Workflow => fetch::<Workflow>(state, ws, sid).await,
        Prefix::Activity => fetch::<Activity>(state, ws, sid).await,
        Prefix::TaskChannel => Some(engine.task_channel(ws, sid.to_string()).await.ok()?.render(state)),
        Prefix::Workspace => Some(render_workspace(state, &engine.workspace(ws).await.ok()?)),
        Prefix::Reservation => {
            let task = event.field("TaskSid").and_then(|s| Sid::parse(s).ok())?;
            let reservation = engine.reservation(ws, Parent::Task(task), sid).await.ok()?;
            Some(render_reservation(state, Parent::Task(task), &reservation))
        }
        _ => None,
    }
}

/// Follows one workspace's events and frames every one of them as the v1 workspace channel does.
pub struct WorkspaceFeed {
    follow: Follow,
}

impl WorkspaceFeed {
    /// The next event of the workspace (those of other workspaces are skipped).
    pub async fn next(&mut self) -> Result<WorkspaceEvent, FeedEnd> {
        let event = self.follow.next().await?;
        let Follow { state, workspace_sid, .. } = &self.follow;
        let payload = match resource_payload(state, *workspace_sid, &event).await {
            Some(payload) => payload,
            None => (*event).render(state),
        };
        Ok(WorkspaceEvent { event_type: event.event_type.as_str().to_owned(), payload })
    }
}
