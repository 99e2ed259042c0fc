//! The worker's event channel (eb §3): `GET /v1/wschannels?token=…` upgraded to a WebSocket.
//!
//! The token is checked before the upgrade: a bad, expired or other-account token, or one for a worker the
//! engine does not have, is a 401 with `{message}`, and the socket never opens. Once open, the channel sends
//! exactly one `init` frame (a second one would make the SDK attach its handlers twice, eb §3.4), a
//! whitespace frame whenever it has been quiet for [`super::Options::heartbeat`], and this worker's events.
//! It closes with a reason when the token expires (code 4001; an updated token, which the SDK carries in its
//! later envelopes, not on the socket, moves that moment: see [`super::envelope`]), when a newer session of
//! the worker asked for `closeExistingSessions` (4002), when it fell behind the event stream (4003: the SDK
//! reconnects and fetches everything again, so nothing is lost), and when the engine stops (1011).
//!
//! Events come from the durable stream ([`engine::handle::Handle::subscribe`], through the bridge's one
//! reader of it, [`super::dispatch`]), not the applied one: an
//! event leaves once its change is on disk, which is also when the REST reply for it leaves, so the SDK never
//! hears of a change that a crash could still take back or that its own fetch could not yet see. The
//! subscription is taken before the upgrade answers, so before the SDK's first fetch: nothing between the
//! fetch and the stream is missed. Each event is answered with the object as it is in the engine when the
//! event is sent (one read on the actor), which is what a fetch at that moment would show: the SDK validates
//! whole objects and throws on a missing key, so the channel sends what REST would, never a partial copy
//! built from the event's fields.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use engine::command::{Command, WorkerParams};
use engine::core::ActivityFilter;
use engine::model::Worker;
use engine::{Event, Sid};
use serde_json::{json, Map, Value};

use super::dispatch::{Ended, Subscription};
use super::envelope::error_response;
use super::format;
use super::token::{self, Bearer};
use super::{deadline_in, Addressing, Session};
use crate::params::Params;
use crate::worker_feed::{worker_concern, WorkerRender};
use crate::{ApiError, ServerState};

/// The largest frame or message a client may send. The SDK sends none (only the close handshake, whose
/// reason is at most 123 bytes), so anything longer is refused and closes the socket with 1009.
pub(super) const MAX_CLIENT_MESSAGE: usize = 1024;

/// Close codes in the application range, one per reason the server closes.
const CLOSE_EXPIRED: u16 = 4001;
const CLOSE_REPLACED: u16 = 4002;
const CLOSE_BEHIND: u16 = 4003;

/// The query of the upgrade (eb §3.1).
struct Query {
    token: String,
    close_existing: bool,
    offline_on_disconnect: bool,
}

fn query(raw: Option<&str>) -> Result<Query, ApiError> {
    let mut p = Params::parse(raw.unwrap_or(""))?;
    let token = p.str("token").filter(|t| !t.is_empty());
    let close_existing = p.bool("closeExistingSessions").unwrap_or(false);
    // Absent means leave the worker as it is: the SDK's JSDoc says true by default, but it sends the
    // parameter only when the application set it, and a local engine that turned workers offline behind the
    // application's back would surprise more than one that does not.
    let offline_on_disconnect = p.bool("setWorkerOfflineIfDisconnected").unwrap_or(false);
    // `clientVersion` and anything a later SDK adds are accepted and not acted on.
    let token = token.ok_or_else(|| token::unauthorized("the query has no token parameter"))?;
    Ok(Query { token, close_existing, offline_on_disconnect })
}

/// `GET /v1/wschannels`: checks the token, subscribes, then upgrades.
pub(super) async fn upgrade(
    State(state): State<ServerState>,
    RawQuery(raw): RawQuery,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    open(state, raw, upgrade).await.unwrap_or_else(|e| error_response(e, None))
}

/// [`upgrade`], with a refusal as the error.
async fn open(
    state: ServerState,
    raw: Option<String>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let query = query(raw.as_deref())?;
    let engine = state.engine();
    let bearer = token::verify(&state, &query.token, engine.now()).await?;
    let upgrade = limited(upgrade)?;
    // Subscribe before anything is read, so nothing between the read and the stream is missed.
    let (ws, wk) = (bearer.workspace_sid, bearer.worker_sid);
    let events = state.bridge().subscribe(vec![wk]).await;
    // The tasks whose events concern this worker: those it holds a reservation for (the SDK finds a task
    // through the worker's reservations, eb §3.3). Kept up to date from reservation events.
    let known = engine.handle().read(move |s| {
        s.core
            .worker_reservations(ws, wk, None)
            .map(|rs| rs.iter().map(|r| r.task_sid).collect::<HashSet<_>>())
    });
    let tasks = match known.await {
        Ok(Ok(tasks)) => tasks,
        Ok(Err(engine::Error::NotFound { .. })) => {
            return Err(token::unauthorized(format!("workspace {ws} has no worker {wk}")));
        }
        Ok(Err(e)) => return Err(e.into()),
        Err(e) => return Err(e.into()),
    };
    Ok(upgrade.on_upgrade(move |socket| async move {
        let channel = Channel { state, bearer, events, tasks };
        channel.run(socket, query.close_existing, query.offline_on_disconnect).await;
    }))
}

struct Channel {
    state: ServerState,
    bearer: Bearer,
    events: Subscription,
    tasks: HashSet<Sid>,
}

/// What one event means to the worker's channel.
enum Concern {
    Worker,
    /// A worker channel, by task channel SID.
    WorkerChannel(Sid),
    Reservation(Sid),
    Task(Sid),
    /// A transfer this worker made, by its initiating reservation, with what the event says of it: the
    /// transfer the reservation holds may have moved on since, or been replaced by the worker's next one.
    Transfer(Sid, Map<String, Value>),
}

impl Channel {
    async fn run(mut self, mut socket: WebSocket, close_existing: bool, offline_on_disconnect: bool) {
        let state = self.state.clone();
        let bridge = state.bridge();
        let wk = self.bearer.worker_sid;
        let lifetime = self.bearer.lifetime_ms(state.engine().now());
        let deadline = deadline_in(u64::try_from(lifetime).unwrap_or(0));
        let session = bridge.sessions.open(wk, Addressing::V2, close_existing, deadline);
        if self.init(&mut socket, lifetime).await {
            pump(&mut socket, &session, bridge.options.heartbeat, &mut self).await;
        }
        let last = bridge.sessions.close(wk, session.id);
        if last && offline_on_disconnect {
            self.set_offline().await;
        }
    }

    /// Sends `init` with the token's remaining `lifetime` (ms); false when the socket is already gone.
    async fn init(&self, socket: &mut WebSocket, lifetime: i64) -> bool {
        let init = json!({
            "event_type": "init",
            "payload": {
                "channel_id": self.bearer.worker_sid.to_string(),
                "account_sid": self.state.credentials().account_sid,
                "workspace_sid": self.bearer.workspace_sid.to_string(),
                "token_lifetime": lifetime,
            }
        });
        socket.send(Message::Text(init.to_string().into())).await.is_ok()
    }

    /// What `event` means to this worker, if anything.
    fn concern(&mut self, event: &Event) -> Option<Concern> {
        let bearer = self.bearer;
        if event.workspace_sid != bearer.workspace_sid {
            return None;
        }
        // The worker's own events, as its v1 channel takes them.
        if let Some((worker, render)) = worker_concern(event) {
            return (worker == bearer.worker_sid).then(|| match render {
                WorkerRender::Worker => Concern::Worker,
                WorkerRender::WorkerChannel { task_channel } => Concern::WorkerChannel(task_channel),
                WorkerRender::ReservationTask { reservation, task } => {
                    self.tasks.insert(task);
                    Concern::Reservation(reservation)
                }
            });
        }
        let name = event.event_type.as_str();
        match name {
            "task.updated" | "task.canceled" | "task.completed" | "task.wrapup"
                if self.tasks.contains(&event.resource_sid) =>
            {
                Some(Concern::Task(event.resource_sid))
            }
            "task.deleted" | "task.system-deleted" => {
                self.tasks.remove(&event.resource_sid);
                None
            }
            // A transfer's events go to the worker that made it (eb §3.3: the SDK finds the task through
            // `initiating_reservation_sid`).
            _ if name.starts_with("task.transfer-") => {
                if event.field("WorkerSid") != Some(bearer.worker_sid.to_string().as_str()) {
                    return None;
                }
                let from = event.field("ReservationSid").and_then(|s| Sid::parse(s).ok())?;
                let said = [
                    ("sid", "TransferSid"),
                    ("transfer_to", "TransferTo"),
                    ("transfer_type", "TransferType"),
                    ("transfer_mode", "TransferMode"),
                    ("transfer_status", "TransferStatus"),
                    ("transfer_failed_reason", "TransferFailedReason"),
                ];
                let said = said.iter().map(|(key, field)| ((*key).to_owned(), json!(event.field(field))));
                Some(Concern::Transfer(from, said.collect()))
            }
            _ => None,
        }
    }

    /// The frame for `event`, with the object as the engine has it now; `None` when the event does not
    /// concern this worker or its object is gone.
    async fn frame_for(&mut self, event: &Event) -> Option<String> {
        let concern = self.concern(event)?;
        let (ws, wk) = (self.bearer.workspace_sid, self.bearer.worker_sid);
        let now = self.state.engine().now();
        let payload = self.state.engine().handle().read(move |s| {
            let core = &s.core;
            match concern {
                Concern::Worker => core.worker(ws, wk).map(format::worker),
                Concern::WorkerChannel(channel) => {
                    core.worker_channel(ws, wk, &channel.to_string()).map(format::worker_channel)
                }
                Concern::Reservation(sid) => format::reservation_in(core, ws, sid, now),
                Concern::Task(sid) => core.task(ws, sid).map(|t| format::task(t, now)),
                Concern::Transfer(from, said) => core.reservation(ws, from).and_then(|r| {
                    let transfer = r.outgoing_transfer.as_deref().ok_or(engine::Error::NotFound {
                        what: format!("the transfer of reservation {from}"),
                    })?;
                    let mut payload = format::transfer(transfer);
                    if let Some(fields) = payload.as_object_mut() {
                        fields.extend(said);
                    }
                    Ok(payload)
                }),
            }
        });
        let payload: Value = payload.await.ok()?.ok()?;
        Some(json!({ "event_type": event.event_type.as_str(), "payload": payload }).to_string())
    }

    /// `setWorkerOfflineIfDisconnected`: the worker's last channel closed. The SDK documents "set the
    /// worker's availability to Offline"; the choices the docs leave open are made here:
    /// - at once, with no grace period, so a test (and a supervisor) sees it as soon as the socket is gone;
    ///   an SDK that reconnects restores its activity with `connectActivitySid`;
    /// - only when the worker is in an available activity: a worker on Break stays on Break;
    /// - to the workspace's activity named `Offline`, else its first unavailable one.
    async fn set_offline(&self) {
        let (ws, wk) = (self.bearer.workspace_sid, self.bearer.worker_sid);
        let engine = self.state.engine();
        let target = engine.handle().read(move |s| {
            let core = &s.core;
            let worker = core.worker(ws, wk).ok()?;
            if !worker.available {
                return None;
            }
            let activities = core.activities(ws, &ActivityFilter::default()).ok()?;
            let unavailable = || activities.iter().filter(|a| !a.available);
            let named = unavailable().find(|a| a.friendly_name.eq_ignore_ascii_case("offline"));
            named.or_else(|| unavailable().next()).map(|a| a.sid)
        });
        let Ok(Some(activity)) = target.await else { return };
        move_disconnected(&self.state, ws, wk, activity, "setWorkerOfflineIfDisconnected").await;
    }
}

impl Framer for Channel {
    async fn frame(&mut self, event: Arc<Event>) -> Option<String> {
        self.frame_for(&event).await
    }

    fn events(&mut self) -> &mut Subscription {
        &mut self.events
    }
}

/// What a channel sends for each event of the engine's stream: v2's worker channel and v1's channels differ
/// in which events concern them and in the payload's format, not in how the socket is served.
pub(super) trait Framer {
    /// The text frame for `event`, or `None` when the channel does not send it.
    fn frame(&mut self, event: Arc<Event>) -> impl std::future::Future<Output = Option<String>> + Send;
    /// The channel's share of the durable event stream.
    fn events(&mut self) -> &mut Subscription;
}

/// The upgrade with the limits of what a client may send, or the 400 of a request that is not a WebSocket
/// upgrade.
pub(super) fn limited(
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<WebSocketUpgrade, ApiError> {
    match upgrade {
        Ok(upgrade) => Ok(crate::http::small_client_socket(upgrade, MAX_CLIENT_MESSAGE)),
        Err(rejection) => {
            let message = format!("This is the event bridge's WebSocket: {rejection}");
            Err(ApiError::new(StatusCode::BAD_REQUEST, 20001, message))
        }
    }
}

/// Moves worker `wk` of `ws` to `activity` because its last channel closed and the channel's `parameter`
/// (`setWorkerOfflineIfDisconnected`, `disconnectActivitySid`) asked for it. A failure is logged: the
/// socket is already gone, there is no one to tell.
pub(super) async fn move_disconnected(state: &ServerState, ws: Sid, wk: Sid, activity: Sid, parameter: &str) {
    let params = WorkerParams { activity_sid: Some(activity), ..WorkerParams::default() };
    let command = Command::UpdateWorker { workspace_sid: ws, sid: wk, params, if_match: None };
    if let Err(e) = state.engine().apply::<Worker>(command).await {
        tracing::warn!(worker = %wk, error = %e, "could not apply {parameter} to a disconnected worker");
    }
}

/// Serves an open channel until the client goes or the server closes, then sends the close frame, if
/// any: when the session's token runs out (4001; an updated token moves that, see
/// [`super::Sessions::extend`]), when a newer session replaced it (4002), when it fell behind the stream
/// (4003), when the engine stops (1011). Between events it sends a whitespace frame whenever it has been
/// quiet for `heartbeat` (both SDK generations treat whitespace as a heartbeat).
///
/// Token expiry runs on real time from the engine's reading of the clock when the token was presented: a
/// manual clock decides whether a token is valid when presented, not how long the socket waits.
pub(super) async fn pump(
    socket: &mut WebSocket,
    session: &Session,
    heartbeat: Duration,
    framer: &mut impl Framer,
) {
    if let Some((code, reason)) = serve(socket, session, heartbeat, framer).await {
        let frame = CloseFrame { code, reason: reason.into() };
        let _ = socket.send(Message::Close(Some(frame))).await;
    }
}

/// [`pump`]'s loop; returns the close frame to send, if any.
async fn serve(
    socket: &mut WebSocket,
    session: &Session,
    heartbeat: Duration,
    framer: &mut impl Framer,
) -> Option<(u16, String)> {
    let expired = session.expired();
    tokio::pin!(expired);
    let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = &mut expired => {
                return Some((CLOSE_EXPIRED, "Token expired: update the token and reconnect".into()));
            }
            () = session.kick.notified() => {
                return Some((CLOSE_REPLACED, "Closed by a newer session of this channel (closeExistingSessions)".into()));
            }
            _ = beat.tick() => {
                if socket.send(Message::Text(" ".into())).await.is_err() {
                    return None;
                }
            }
            event = framer.events().recv() => {
                let event = match event {
                    Ok(event) => event,
                    Err(Ended::Behind) => {
                        return Some((CLOSE_BEHIND, "Fell behind the event stream; reconnect to resynchronise".into()));
                    }
                    Err(Ended::Stopped) => return Some((1011, "The engine stopped".into())),
                };
                if let Some(text) = framer.frame(event).await {
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        return None;
                    }
                    beat.reset();
                }
            }
            message = socket.recv() => match message {
                // Neither SDK sends anything but the close handshake; pings are answered by the socket itself.
                Some(Ok(Message::Close(_))) | None => return None,
                Some(Err(_)) => return None,
                Some(Ok(_)) => {}
            },
        }
    }
}
