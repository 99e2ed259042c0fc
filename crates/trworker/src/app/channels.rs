//! Event channels: how the app hears what TaskRouter does to a signed-in worker without a public webhook,
//! as the original app's page did: one channel per signed-in worker on TaskRouter's event bridge (v1
//! addressing, eb §7), opened with a worker capability token the app signs itself with the auth token, so
//! the original four variables suffice.
//!
//! - **Lifetime.** A worker's channel opens at sign-in or at its first socket ([`ensure`], from
//!   [`AppState::note_signed_in`]), stays open while the worker has a tab, and through a grace period after
//!   the last tab closed, or after a sign-in no tab followed ([`idle`], [`sweep`]): a reload or a short
//!   network loss keeps it. It closes at sign-out ([`close`]), once the worker's last token has expired
//!   (the next [`sweep`]), and when the server stops ([`close_all`]).
//! - **Transport.** In twilio mode, [`twilio::eventbridge`]'s client over a WebSocket to
//!   `TWILIO_EVENT_BRIDGE_URL` (Twilio's bridge by default), which watches heartbeats, reconnects with
//!   backoff and renews its token. In local mode, the embedded engine's channel in process
//!   ([`twilio_server::worker_feed`]: the same event types and the same public REST payloads, parsed into
//!   the same typed events), which spares a WebSocket to itself and the disk's sync on the way to the page.
//! - **Events.** Each typed event becomes a [`TaskRouterEvent`] and goes through [`EventIntake::ingest`],
//!   as a webhook's would: the page gets the frame at once. A (re)connected channel rebuilds the worker's
//!   state over REST, since events may have been missed while it was down; otherwise REST is only used by
//!   reconciliation and by frames that do not say everything.
//! - **The webhook** stays supported: an `EventCallbackUrl` event is ignored for a worker whose channel is
//!   connected here, so that nobody's page shows an event twice ([`connected`]).
//! - **Several instances.** Each holds the channels of the workers connected to it; what they do on the
//!   same event (wrap-up completion) tolerates the other having done it first ([`super::wrapup`]).
//! - **State changes** are logged once per change (connected, lost with a reason), not once per retry; the
//!   worker's tabs get `{"type":"channel","status":"connected"|"reconnecting","reason"}`; `/readyz` says
//!   not ready while every open channel is down ([`health`]), and `/metrics` counts open channels,
//!   reconnects and events by source.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use engine::Timestamp;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use twilio::eventbridge::{self, Channel, ChannelEvent, ChannelUpdate, EventPayload, Token};

use super::{live, AppState, EventIntake, TaskRouterEvent};
use crate::metrics::EventSource;

/// How long a channel stays open after its worker's last tab closed, when the app has no leave grace.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(120);

/// Skew allowed between this server's clock and TaskRouter's: channel tokens are valid from this long
/// before now, so that a TaskRouter whose clock is behind does not refuse a token as not yet valid.
const CLOCK_SKEW: u64 = 300;

/// Where channels come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Twilio's event bridge, or another's (`TWILIO_EVENT_BRIDGE_URL`): the v1 channels' base, e.g.
    /// `https://event-bridge.twilio.com/v1/wschannels`.
    Bridge { base_url: String },
    /// The embedded engine, in process: [`spawn_local`] delivers each worker's events.
    InProcess,
    /// No channels (`TWILIO_EVENT_BRIDGE_URL=off`): events come by the webhook alone, and reconciliation.
    Off,
}

/// The open channels of this instance.
pub(crate) struct Registry {
    source: Source,
    channels: Mutex<HashMap<String, Entry>>,
}

/// One worker's channel.
struct Entry {
    /// The WebSocket client (bridge), dropped to close it.
    _client: Option<Channel>,
    /// The task that takes the client's updates (bridge only; in process, [`spawn_local`] hands them over
    /// itself, so an idle worker costs no task and no queue); aborted when the entry goes.
    consumer: Option<JoinHandle<()>>,
    /// How the channel is, shared with whoever takes its updates.
    status: Arc<Status>,
    /// When the worker's last tab closed, if it has none now.
    idle_since: Option<Timestamp>,
}

/// How a channel is.
#[derive(Default)]
struct Status {
    /// Connected now.
    connected: AtomicBool,
    /// Why it is down, when it is (its last `Disconnected`): also what keeps a retry failing the same way
    /// from logging again.
    down: Mutex<Option<String>>,
}

impl Drop for Entry {
    fn drop(&mut self) {
        if let Some(consumer) = &self.consumer {
            consumer.abort();
        }
    }
}

impl Registry {
    pub(crate) fn new(source: Source) -> Registry {
        Registry { source, channels: Mutex::new(HashMap::new()) }
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, Entry>) -> T) -> Option<T> {
        self.channels.lock().ok().map(|mut map| f(&mut map))
    }

    /// Open channels, and how many of them are connected.
    pub(crate) fn counts(&self) -> (usize, usize) {
        self.with(|map| {
            let connected = map.values().filter(|e| e.status.connected.load(Ordering::Relaxed)).count();
            (map.len(), connected)
        })
        .unwrap_or((0, 0))
    }

    /// Whether `worker_sid` has a channel open here (connected or not).
    pub(crate) fn is_open(&self, worker_sid: &str) -> bool {
        self.with(|map| map.contains_key(worker_sid)).unwrap_or(false)
    }
}

/// Opens `worker_sid`'s channel unless it is open. Outside a Tokio runtime (nothing to run it on) it does
/// nothing.
pub(crate) fn ensure(state: &AppState, worker_sid: &str) {
    let registry = &state.inner.channels;
    if registry.source == Source::Off || tokio::runtime::Handle::try_current().is_err() {
        return;
    }
    let opened = registry.with(|map| {
        if map.contains_key(worker_sid) {
            return Ok::<bool, eventbridge::ConfigError>(false);
        }
        let status = Arc::new(Status::default());
        let (client, consumer) = match &registry.source {
            Source::Off => return Ok(false),
            Source::Bridge { base_url } => {
                let (client, updates) = open_bridge(state, base_url, worker_sid)?;
                let consume = consume(state.clone(), worker_sid.to_owned(), updates, status.clone());
                (Some(client), Some(tokio::spawn(consume)))
            }
            // Connected from the start: the feed is the engine's own stream; the state is built below.
            Source::InProcess => (None, None),
        };
        // Idle from the start unless a tab is open: a sign-in no page follows (a script, the original's
        // token URL) does not hold a channel for the token's whole life.
        let idle_since = (!state.inner.hub.has_tabs(worker_sid)).then(|| state.now());
        map.insert(worker_sid.to_owned(), Entry { _client: client, consumer, status, idle_since });
        Ok(true)
    });
    if opened == Some(Ok(true)) && registry.source == Source::InProcess {
        deliver(state, worker_sid, ChannelUpdate::Connected { reconnect: false });
    }
    match opened {
        Some(Ok(true)) => tracing::debug!(%worker_sid, "event channel opened"),
        Some(Err(error)) => tracing::warn!(%worker_sid, %error, "cannot open the worker's event channel"),
        _ => {}
    }
}

/// The bridge client for `worker_sid`, minting its tokens with this app's credentials on the app's clock.
fn open_bridge(
    state: &AppState,
    base_url: &str,
    worker_sid: &str,
) -> Result<(Channel, mpsc::Receiver<ChannelUpdate>), eventbridge::ConfigError> {
    let config = state.config();
    let capability = config.worker_capability(worker_sid);
    let tokens = move |now: u64| -> Result<Token, eventbridge::SourceError> {
        // Valid from a little before now: a TaskRouter whose clock is behind this one's still takes it.
        let from = now.saturating_sub(CLOCK_SKEW);
        let expires_at = capability.claims(from)?.exp;
        Ok(Token { jwt: capability.to_jwt(from)?, expires_at })
    };
    let app = state.clone();
    let options = eventbridge::Config::new(&config.account_sid, worker_sid)
        .bridge_url(base_url)
        .clock(move || app.now_secs());
    Channel::open(options, tokens)
}

/// Closes `worker_sid`'s channel (sign-out).
pub(crate) fn close(state: &AppState, worker_sid: &str) {
    if state.inner.channels.with(|map| map.remove(worker_sid)).flatten().is_some() {
        tracing::debug!(%worker_sid, "event channel closed");
    }
}

/// Closes every channel (the server is stopping).
pub(crate) fn close_all(state: &AppState) {
    let closed = state.inner.channels.with(std::mem::take).unwrap_or_default();
    if !closed.is_empty() {
        tracing::debug!(channels = closed.len(), "event channels closed: the server is stopping");
    }
}

/// `worker_sid` has a tab again: its channel is not idle.
pub(crate) fn active(state: &AppState, worker_sid: &str) {
    state.inner.channels.with(|map| {
        if let Some(entry) = map.get_mut(worker_sid) {
            entry.idle_since = None;
        }
    });
}

/// `worker_sid`'s last tab closed at `now`.
pub(crate) fn idle(state: &AppState, worker_sid: &str, now: Timestamp) {
    state.inner.channels.with(|map| {
        if let Some(entry) = map.get_mut(worker_sid) {
            entry.idle_since = Some(now);
        }
    });
}

/// Closes the channels of workers with no unexpired token, and of those whose last tab closed more than
/// the grace ago (the leave grace, else [`DEFAULT_GRACE`]). A reconciliation round calls it.
pub(crate) fn sweep(state: &AppState) {
    let grace = state.config().leave_grace.unwrap_or(DEFAULT_GRACE);
    let cutoff = state.now().plus_millis(-i64::try_from(grace.as_millis()).unwrap_or(i64::MAX / 4));
    let closed: Vec<String> = state
        .inner
        .channels
        .with(|map| {
            let due: Vec<String> = map
                .iter()
                .filter(|(worker, entry)| {
                    entry.idle_since.is_some_and(|at| at <= cutoff) || !state.is_signed_in(worker)
                })
                .map(|(worker, _)| worker.clone())
                .collect();
            for worker in &due {
                map.remove(worker);
            }
            due
        })
        .unwrap_or_default();
    for worker_sid in closed {
        tracing::debug!(%worker_sid, "event channel closed: signed out, or no tab past the grace");
    }
}

/// Whether `worker_sid`'s channel is connected here: its events come that way, so the webhook's copies are
/// not shown again.
pub(crate) fn connected(state: &AppState, worker_sid: &str) -> bool {
    state
        .inner
        .channels
        .with(|map| map.get(worker_sid).is_some_and(|e| e.status.connected.load(Ordering::Relaxed)))
        .unwrap_or(false)
}

/// `Err` with a reason while channels are open and none is connected (the bridge is unreachable or
/// refuses this app's tokens): what `/readyz` reports.
pub(crate) fn health(state: &AppState) -> Result<(), String> {
    let (open, connected) = state.inner.channels.counts();
    if open > 0 && connected == 0 {
        return Err(format!(
            "none of the {open} workers' event channels is connected to TaskRouter's event bridge, so pages \
             will not hear of new calls: check that this server reaches TWILIO_EVENT_BRIDGE_URL (Twilio's \
             event bridge when unset) and that AUTH_TOKEN is the account's"
        ));
    }
    Ok(())
}

/// The `{"type":"channel",…}` message for a page: `connected`, or `reconnecting` with the reason. `None`
/// when the worker has no channel, or it has not connected nor failed yet.
fn channel_message(connected: bool, down: Option<&str>) -> Option<Value> {
    match (connected, down) {
        (true, _) => Some(json!({ "type": "channel", "status": "connected" })),
        (false, Some(reason)) => {
            Some(json!({ "type": "channel", "status": "reconnecting", "reason": reason }))
        }
        (false, None) => None,
    }
}

/// How `worker_sid`'s channel is, as the message a newly opened page gets after its first state (later
/// changes are pushed to every page as they happen).
pub(crate) fn status_message(state: &AppState, worker_sid: &str) -> Option<Value> {
    state
        .inner
        .channels
        .with(|map| {
            let status = &map.get(worker_sid)?.status;
            let down = status.down.lock().ok().and_then(|d| d.clone());
            channel_message(status.connected.load(Ordering::Relaxed), down.as_deref())
        })
        .flatten()
}

/// Takes one worker's bridge channel updates until the channel is closed.
async fn consume(
    state: AppState,
    worker_sid: String,
    mut updates: mpsc::Receiver<ChannelUpdate>,
    status: Arc<Status>,
) {
    while let Some(update) = updates.recv().await {
        handle(&state, &worker_sid, &status, update);
    }
}

/// What one update of `worker_sid`'s channel does. Never blocks: rebuilds and pushes run as tasks.
fn handle(state: &AppState, worker_sid: &str, status: &Status, update: ChannelUpdate) {
    match update {
        ChannelUpdate::Connected { reconnect } => {
            status.connected.store(true, Ordering::Relaxed);
            let was_down = status.down.lock().ok().and_then(|mut down| down.take()).is_some();
            if reconnect {
                state.metrics().count_channel_reconnect();
            }
            if was_down {
                tracing::info!(%worker_sid, "event channel connected again");
            }
            if let Some(message) = channel_message(true, None) {
                state.inner.hub.push_message(worker_sid, message);
            }
            // Whatever happened while it was down (or before it opened) shows now.
            live::refresh(state, worker_sid);
        }
        ChannelUpdate::Event(event) => {
            state.metrics().count_event_from(EventSource::Channel);
            if let Some(event) = to_event(worker_sid, event, state.now()) {
                state.ingest(event);
            }
        }
        ChannelUpdate::Skipped { error } => {
            tracing::debug!(%worker_sid, %error, "an event channel frame did not read; rebuilding");
            live::refresh(state, worker_sid);
        }
        ChannelUpdate::Disconnected { reason, .. } => {
            status.connected.store(false, Ordering::Relaxed);
            let Ok(mut down) = status.down.lock() else { return };
            if down.as_deref() == Some(reason.as_str()) {
                return;
            }
            tracing::warn!(%worker_sid, %reason, "event channel lost; reconnecting");
            if let Some(message) = channel_message(false, Some(&reason)) {
                state.inner.hub.push_message(worker_sid, message);
            }
            *down = Some(reason);
        }
    }
}

/// The [`TaskRouterEvent`] a channel event of `worker_sid` stands for, as the webhook would have carried
/// it. `None` for an event the app has no use for (one whose payload did not parse).
pub(crate) fn to_event(worker_sid: &str, event: ChannelEvent, now: Timestamp) -> Option<TaskRouterEvent> {
    let mut out = TaskRouterEvent {
        description: event.event_type.clone(),
        at_ms: Some(now.millis()),
        worker_sid: Some(worker_sid.to_owned()),
        event_type: event.event_type,
        ..TaskRouterEvent::default()
    };
    match event.kind {
        EventPayload::Worker(worker) => {
            let worker = *worker;
            if worker.sid != worker_sid {
                tracing::debug!(%worker_sid, other = %worker.sid, "a channel event for another worker; ignored");
                return None;
            }
            out.worker_activity_sid = worker.activity_sid;
            out.worker_activity_name = worker.activity_name;
        }
        EventPayload::Reservation { task, reservation_sid } => {
            let task = *task;
            out.reservation_sid = Some(reservation_sid);
            out.task_sid = Some(task.sid);
            out.task_attributes = task.attributes;
            out.task_assignment_status = task.assignment_status.map(|s| s.as_str().to_owned());
            out.task_priority = Some(task.priority);
            out.task_age = Some(task.age);
            out.workflow_sid = task.workflow_sid;
        }
        EventPayload::Task(task) => {
            let task = *task;
            out.task_sid = Some(task.sid);
            out.task_attributes = task.attributes;
            out.task_assignment_status = task.assignment_status.map(|s| s.as_str().to_owned());
        }
        EventPayload::WorkerChannel(_) | EventPayload::Other => {}
    }
    Some(out)
}

/// Local mode: delivers the embedded engine's events to the open channels of `state`, in process, until
/// the engine stops. When the feed falls behind, every open channel is told to rebuild.
pub fn spawn_local(state: AppState, mut feed: twilio_server::worker_feed::WorkerFeed) -> JoinHandle<()> {
    tokio::spawn(async move {
        let registry = &state.inner.channels;
        loop {
            match feed.next(|worker| registry.is_open(worker)).await {
                Ok(event) => {
                    let worker_sid = event.worker_sid.clone();
                    let update = match ChannelEvent::read(event.event_type, event.payload) {
                        Ok(event) => ChannelUpdate::Event(event),
                        Err(error) => ChannelUpdate::Skipped { error },
                    };
                    deliver(&state, &worker_sid, update);
                }
                Err(twilio_server::worker_feed::FeedEnd::Lagged(missed)) => {
                    tracing::warn!(
                        missed,
                        "the app fell behind the engine's events; rebuilding every worker"
                    );
                    let workers: Vec<String> =
                        registry.with(|map| map.keys().cloned().collect()).unwrap_or_default();
                    for worker in workers {
                        deliver(&state, &worker, ChannelUpdate::Connected { reconnect: true });
                    }
                }
                Err(twilio_server::worker_feed::FeedEnd::Closed) => return,
            }
        }
    })
}

/// Hands an in-process `update` to `worker_sid`'s channel, if it is open (outside the registry's lock:
/// what the update does may look at the registry).
fn deliver(state: &AppState, worker_sid: &str, update: ChannelUpdate) {
    let status = state.inner.channels.with(|map| map.get(worker_sid).map(|e| e.status.clone())).flatten();
    if let Some(status) = status {
        handle(state, worker_sid, &status, update);
    }
}
