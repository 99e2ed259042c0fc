//! The event channel of v1 addressing (eb §7): `GET /v1/wschannels/{AccountSid}/{ChannelSid}?token=…&
//! closeExistingSessions=…[&disconnectActivitySid=WA…]` upgraded to a WebSocket.
//!
//! Checked before the upgrade: the token (401, as on v2's channel: bad signature, expired, another account,
//! another channel, or a worker or queue the workspace does not have) and that its policies allow `GET` on
//! the channel's URL (403). Unlike v2 there is no `init`: taskrouter.js v1 posts its `ready` envelope when
//! the socket opens. Then the socket carries whitespace heartbeats and `{event_type, payload}` frames, and
//! closes as v2's does (the same [`pump`]): 4001 when the token expires, 4002 when a newer session of the
//! channel asked for `closeExistingSessions`, 4003 when it fell behind the stream, 1011 when the engine
//! stops.
//!
//! # Which events each channel gets
//!
//! Event types are TaskRouter's own (`worker.activity.update`, `reservation.created`, …): the SDK's
//! `Worker` strips the `worker.` prefix itself (it emits `activity.update`; \[V1\]
//! `WorkerClient._emitMessage`, eb §7), so the bridge sends the names unchanged. Payloads are the public
//! REST JSON of the object as the engine has it when the event is sent (what a fetch would show), rendered by
//! the REST resources.
//!
//! - **Worker (`WK`)**: the worker's own `worker.activity.update` and `worker.attributes.update` (payload:
//!   the worker), `worker.capacity.update` and `worker.channel.availability.update` (the worker channel),
//!   and every `reservation.*` of the worker, whose payload is, as v1 expects, the reservation's **task**
//!   with `reservation_sid` added: the SDK takes `payload.sid` as the task and `payload.reservation_sid` as
//!   the reservation and fetches both (\[V1\] module 6, eb §7). That list is the v1 Worker's documented
//!   event set (taskrouter.js v1 Worker page: `activity.update`, `attributes.update`, `capacity.update`,
//!   `reservation.*`); `task.*` events are not sent to a worker (the v1 Worker has no task events).
//! - **Task queue (`WQ`)**: `task.*`, `reservation.*` and `task-queue.*` events whose `TaskQueueSid` is
//!   the queue (a task's events once it is in the queue, from `task-queue.entered` on: `task.created`
//!   comes before the workflow puts the task in a queue, so a queue's channel does not get it) or whose
//!   resource is the queue (`task-queue.created`, `.expression.updated`, …); payload: the resource the
//!   event names, a task, a reservation (public JSON, `sid` `WR…`, which the SDK's `TaskQueue` turns into a
//!   `Reservation`) or the queue. The reference does not list a queue's events; this set is the engine's
//!   choice.
//! - **Workspace (`WS`)**: every event of the workspace, with the public JSON of the resource it names.
//!   The reference does not list these either ("inferred": the SDK's `Workspace` emits whatever arrives).
//!
//! An event whose object is gone (a deleted task, worker, …) is sent only on the workspace channel, with
//! the public Event resource (`/Events/{EV}`) as its payload, since there is nothing else to render.
//!
//! `disconnectActivitySid`: taskrouter.js v1 applies it itself, from the page's `unload` (eb §7). The docs
//! say nothing of the server, so the engine also applies it when the worker's last channel closes, which
//! covers a browser that crashed or lost its network; a page that closed normally has already done it.

use std::sync::Arc;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{WebSocket, WebSocketUpgrade};
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use engine::{Event, Prefix, Sid};
use serde_json::{json, Value};

use super::capability::{self, Capability, Channel};
use crate::bridge::channel::{limited, move_disconnected, pump, Framer};
use crate::bridge::dispatch::Subscription;
use crate::bridge::envelope::{error_response, forbidden};
use crate::bridge::token::unauthorized;
use crate::bridge::{deadline_in, Addressing};
use crate::params::Params;
use crate::resources::Resource;
use crate::worker_feed::{resource_payload, worker_concern, worker_payload, WorkerRender};
use crate::{ApiError, ServerState};

/// The query of the upgrade (eb §7).
struct Query {
    token: String,
    close_existing: bool,
    disconnect_activity: Option<Sid>,
}

fn query(raw: Option<&str>) -> Result<Query, ApiError> {
    let mut p = Params::parse(raw.unwrap_or(""))?;
    let token = p.str("token").filter(|t| !t.is_empty());
    let close_existing = p.bool("closeExistingSessions").unwrap_or(false);
    let disconnect_activity = match p.str("disconnectActivitySid").filter(|s| !s.is_empty()) {
        Some(s) => Some(Sid::parse_as(&s, Prefix::Activity).map_err(|e| {
            ApiError::invalid(format!(
                "Invalid parameter disconnectActivitySid: {s} is not an activity SID ({e})"
            ))
        })?),
        None => None,
    };
    let token = token.ok_or_else(|| unauthorized("the query has no token parameter"))?;
    Ok(Query { token, close_existing, disconnect_activity })
}

/// `GET /v1/wschannels/{AccountSid}/{ChannelSid}`: checks the token and its policy, subscribes, upgrades.
pub(crate) async fn upgrade(
    State(state): State<ServerState>,
    Path((account, channel)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    open(state, &account, &channel, raw, upgrade).await.unwrap_or_else(|e| error_response(e, None))
}

/// [`upgrade`], with a refusal as the error.
async fn open(
    state: ServerState,
    account: &str,
    channel: &str,
    raw: Option<String>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let query = query(raw.as_deref())?;
    let engine = state.engine();
    let cap = capability::verify(&state, &query.token, engine.now(), account, channel)?;
    let path = format!("/v1/wschannels/{account}/{channel}");
    if !cap.allows("GET", &path, &[]) {
        return Err(forbidden(format!("the token's policies do not allow GET {path}")));
    }
    // The channel's object must exist: a token for another workspace's worker or queue is refused here.
    let ws = cap.workspace_sid;
    let exists = match cap.channel {
        Channel::Worker(wk) => engine.worker(ws, wk).await.map(drop),
        Channel::TaskQueue(wq) => engine.task_queue(ws, wq).await.map(drop),
        Channel::Workspace => engine.workspace(ws).await.map(drop),
    };
    exists.map_err(|e| {
        if e.status == StatusCode::NOT_FOUND {
            unauthorized(format!(
                "workspace {ws} has no {} (the token is for another workspace?)",
                cap.channel_sid
            ))
        } else {
            e
        }
    })?;
    let upgrade = limited(upgrade)?;
    // Subscribe before the upgrade answers, so before the SDK's `ready` fetch (as on v2's channel), under
    // the SID whose events the channel gets (the module doc's list).
    let key = match cap.channel {
        Channel::Worker(_) | Channel::TaskQueue(_) => cap.channel_sid,
        Channel::Workspace => cap.workspace_sid,
    };
    let events = state.bridge().subscribe(vec![key]).await;
    Ok(upgrade.on_upgrade(move |socket| async move {
        let channel = V1Channel { state, cap, events };
        channel.run(socket, query.close_existing, query.disconnect_activity).await;
    }))
}

struct V1Channel {
    state: ServerState,
    cap: Capability,
    events: Subscription,
}

/// What to render for one event.
enum Render {
    /// The resource the event names ([`resource_payload`]).
    Resource,
    /// What a worker's channel takes for it ([`worker_payload`]).
    Worker(Sid, WorkerRender),
}

impl V1Channel {
    async fn run(mut self, mut socket: WebSocket, close_existing: bool, disconnect_activity: Option<Sid>) {
        let state = self.state.clone();
        let bridge = state.bridge();
        let key = self.cap.channel_sid;
        let deadline = deadline_in(self.cap.lifetime_ms(state.engine().now()));
        let session = bridge.sessions.open(key, Addressing::V1, close_existing, deadline);
        pump(&mut socket, &session, bridge.options.heartbeat, &mut self).await;
        let last = bridge.sessions.close(key, session.id);
        if let (true, Channel::Worker(wk), Some(activity)) = (last, self.cap.channel, disconnect_activity) {
            let ws = self.cap.workspace_sid;
            move_disconnected(&state, ws, wk, activity, "disconnectActivitySid").await;
        }
    }

    /// What this channel sends for `event`, if anything (the module doc's table).
    fn concern(&self, event: &Event) -> Option<Render> {
        if event.workspace_sid != self.cap.workspace_sid {
            return None;
        }
        match self.cap.channel {
            // The worker channel's events, as the in-process feed has them (`worker_feed`).
            Channel::Worker(wk) => {
                let (worker, render) = worker_concern(event).filter(|(worker, _)| *worker == wk)?;
                Some(Render::Worker(worker, render))
            }
            Channel::TaskQueue(wq) => {
                let name = event.event_type.as_str();
                let kind = ["task.", "reservation.", "task-queue."].iter().any(|k| name.starts_with(k));
                let queue = event.field("TaskQueueSid").and_then(|s| Sid::parse(s).ok());
                let ours = queue == Some(wq) || event.resource_sid == wq;
                (kind && ours).then_some(Render::Resource)
            }
            Channel::Workspace => Some(Render::Resource),
        }
    }

    /// The public JSON of what `render` names for `event`, or `None` when it is gone.
    async fn payload(&self, render: Render, event: &Event) -> Option<Value> {
        let ws = self.cap.workspace_sid;
        match render {
            Render::Worker(worker, render) => worker_payload(&self.state, ws, worker, render).await,
            Render::Resource => resource_payload(&self.state, ws, event).await,
        }
    }
}

impl Framer for V1Channel {
    async fn frame(&mut self, event: Arc<Event>) -> Option<String> {
        let render = self.concern(&event)?;
        let payload = match self.payload(render, &event).await {
            Some(payload) => payload,
            // Gone: only the workspace channel, which promises every event, sends the event itself.
            None if self.cap.channel == Channel::Workspace => (*event).render(&self.state),
            None => return None,
        };
        Some(json!({ "event_type": event.event_type.as_str(), "payload": payload }).to_string())
    }

    fn events(&mut self) -> &mut Subscription {
        &mut self.events
    }
}
