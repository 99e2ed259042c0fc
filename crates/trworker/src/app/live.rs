//! Live updates: the per-worker hub and the WebSocket at `/api/ws`.
//!
//! Protocol. The client's first message is `{"type":"hello","token","last_seq"}` (the token never goes in
//! the URL). The server then sends the events the client missed, when its buffer still holds all of them,
//! and a `state` (the worker's whole state, [`super::snapshot`]); afterwards an `event` per TaskRouter event
//! concerning the worker, and a new `state` after every change that the event frame does not describe in
//! full. An `event` frame carries what the event itself says (`reservation` with its task, `worker` with its
//! new activity: [`super::events::frame`]); a `state`'s `seq` is the last event it is known to reflect, so
//! the page applies the event frames numbered above it on top of it. `error` reports a problem, `shutdown`
//! says the server is going away. A later `hello` with a fresh token extends the socket's life past the first
//! token's expiry and is answered with a fresh `state`; at expiry the socket gets an `error` and is closed
//! with code 4401.
//!
//! Sequence numbers count per worker. They start at the process start time in microseconds, so numbers
//! from a restarted server are always higher than the old ones and an old `last_seq` just gets a fresh
//! state. A socket subscribes to its worker's broadcast *before* it builds the state, so nothing that
//! happens meanwhile is lost; every socket of a worker gets the same pushes.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use engine::Timestamp;
use serde_json::{json, Value};
use tokio::sync::broadcast;

use super::snapshot::{self, Snapshot};
use super::{auth, leave, AppState};

/// Pushes a socket may fall behind by before it gets a fresh state instead. Every worker's channel holds this
/// many slots from the start, so it is kept small: 10,000 idle workers cost 16 slots each.
const CHANNEL_CAPACITY: usize = 16;
/// Close code for a refused or expired token (the page then checks its session).
const CLOSE_UNAUTHORIZED: u16 = 4401;

/// One message for every socket of a worker.
#[derive(Debug, Clone)]
pub(crate) enum Push {
    /// A numbered event (already serialized).
    Event { seq: u64, text: Arc<str> },
    /// A state or error message (already serialized).
    Message(Arc<str>),
    /// The server is going away.
    Shutdown,
}

/// The buffered events of a worker.
struct Log {
    seq: u64,
    events: VecDeque<(u64, Arc<str>)>,
}

/// A worker's broadcast, event buffer and refresh bookkeeping.
pub(crate) struct Channel {
    tx: broadcast::Sender<Push>,
    /// Std mutexes throughout: held for a few field updates, never across an await.
    log: Mutex<Log>,
    refresh: Mutex<Refresh>,
    /// A fingerprint of the last state pushed ([`Snapshot::fingerprint`]), not the state itself: one word
    /// per worker instead of its JSON.
    last_state: Mutex<Option<u64>>,
}

#[derive(Default)]
struct Refresh {
    running: bool,
    dirty: bool,
}

impl Channel {
    /// Sockets of the worker open now.
    pub(crate) fn sockets(&self) -> usize {
        self.tx.receiver_count()
    }

    /// The events after `last_seq`, if the buffer still holds all of them.
    fn missed(&self, last_seq: Option<u64>) -> Vec<(u64, Arc<str>)> {
        let Some(last) = last_seq else { return Vec::new() };
        let Ok(log) = self.log.lock() else { return Vec::new() };
        let oldest = log.events.front().map(|(seq, _)| *seq);
        match oldest {
            Some(oldest) if last.saturating_add(1) >= oldest && last < log.seq => {
                log.events.iter().filter(|(seq, _)| *seq > last).cloned().collect()
            }
            _ => Vec::new(),
        }
    }

    fn seq(&self) -> u64 {
        self.log.lock().map(|log| log.seq).unwrap_or(0)
    }
}

/// Every worker's channel, and which worker each known task belongs to.
pub(crate) struct Hub {
    workers: Mutex<HashMap<String, Arc<Channel>>>,
    task_owners: Mutex<HashMap<String, String>>,
    buffer: usize,
    seq_base: u64,
}

/// Task owners remembered before the map is cleared (they are relearned from states and events).
const MAX_TASK_OWNERS: usize = 100_000;

impl Hub {
    pub(crate) fn new(buffer: usize, started: Timestamp) -> Hub {
        Hub {
            workers: Mutex::new(HashMap::new()),
            task_owners: Mutex::new(HashMap::new()),
            buffer: buffer.max(1),
            seq_base: u64::try_from(started.millis()).unwrap_or(0).saturating_mul(1000),
        }
    }

    /// Whether `worker_sid` has a page open on this server (a socket on its channel). Creates no channel.
    pub(crate) fn has_tabs(&self, worker_sid: &str) -> bool {
        let workers = self.workers.lock();
        workers.is_ok_and(|w| w.get(worker_sid).is_some_and(|c| c.sockets() > 0))
    }

    /// The channel of `worker_sid`, created on first use.
    pub(crate) fn channel(&self, worker_sid: &str) -> Option<Arc<Channel>> {
        let mut workers = self.workers.lock().ok()?;
        let channel = workers.entry(worker_sid.to_owned()).or_insert_with(|| {
            let (tx, _) = broadcast::channel(CHANNEL_CAPACITY);
            Arc::new(Channel {
                tx,
                log: Mutex::new(Log { seq: self.seq_base, events: VecDeque::new() }),
                refresh: Mutex::new(Refresh::default()),
                last_state: Mutex::new(None),
            })
        });
        Some(channel.clone())
    }

    /// Workers with at least one open socket.
    pub(crate) fn connected(&self) -> Vec<String> {
        self.workers
            .lock()
            .map(|w| w.iter().filter(|(_, c)| c.tx.receiver_count() > 0).map(|(k, _)| k.clone()).collect())
            .unwrap_or_default()
    }

    /// Numbers, buffers and sends an event to `worker_sid`'s sockets: one `event` frame, serialized once for
    /// all of them, with `extra`'s members after the standard ones.
    pub(crate) fn push_event(
        &self,
        worker_sid: &str,
        at_ms: i64,
        event_type: &str,
        description: &str,
        extra: serde_json::Map<String, Value>,
    ) {
        let Some(channel) = self.channel(worker_sid) else { return };
        let mut frame = extra;
        frame.insert("type".into(), Value::from("event"));
        frame.insert("at".into(), Value::from(at_ms));
        frame.insert("event_type".into(), Value::from(event_type));
        frame.insert("description".into(), Value::from(description));
        let Ok(mut log) = channel.log.lock() else { return };
        log.seq += 1;
        let seq = log.seq;
        frame.insert("seq".into(), Value::from(seq));
        let text: Arc<str> = Value::Object(frame).to_string().into();
        log.events.push_back((seq, text.clone()));
        while log.events.len() > self.buffer {
            log.events.pop_front();
        }
        // Sent under the lock so that sockets see events in sequence order.
        let _ = channel.tx.send(Push::Event { seq, text });
    }

    /// Notes that `worker_sid`'s state changed without a rebuild (the sockets were told by an event frame),
    /// so the next state built is pushed even if it equals the last one pushed.
    pub(crate) fn state_changed(&self, worker_sid: &str) {
        if let Some(channel) = self.channel(worker_sid) {
            if let Ok(mut last) = channel.last_state.lock() {
                *last = None;
            }
        }
    }

    /// Sends `message` (an `error`) to `worker_sid`'s sockets, unbuffered.
    pub(crate) fn push_message(&self, worker_sid: &str, message: Value) {
        if let Some(channel) = self.channel(worker_sid) {
            let _ = channel.tx.send(Push::Message(message.to_string().into()));
        }
    }

    /// Sends `snapshot`, which reflects at least the events up to `seq`, to `worker_sid`'s sockets unless it
    /// equals the last one sent.
    fn push_state(&self, worker_sid: &str, snapshot: Snapshot, seq: u64, now: Timestamp) {
        let Some(channel) = self.channel(worker_sid) else { return };
        let fingerprint = snapshot.fingerprint();
        if let Ok(mut last) = channel.last_state.lock() {
            if *last == Some(fingerprint) {
                return;
            }
            *last = Some(fingerprint);
        }
        self.learn_tasks(worker_sid, &snapshot.task_sids);
        let text = state_message(&snapshot, seq, now);
        let _ = channel.tx.send(Push::Message(text.into()));
    }

    /// Remembers that these tasks belong to `worker_sid`.
    pub(crate) fn learn_tasks(&self, worker_sid: &str, task_sids: &[String]) {
        if let Ok(mut owners) = self.task_owners.lock() {
            if owners.len() > MAX_TASK_OWNERS {
                owners.clear();
            }
            for task in task_sids {
                owners.insert(task.clone(), worker_sid.to_owned());
            }
        }
    }

    /// The worker a task was last seen with.
    pub(crate) fn task_owner(&self, task_sid: &str) -> Option<String> {
        self.task_owners.lock().ok()?.get(task_sid).cloned()
    }

    /// Forgets a finished task.
    pub(crate) fn forget_task(&self, task_sid: &str) {
        if let Ok(mut owners) = self.task_owners.lock() {
            owners.remove(task_sid);
        }
    }

    /// Workers with an open socket, and open sockets: counted when `/metrics` is read, so sockets pay
    /// nothing for it.
    pub(crate) fn connections(&self) -> (usize, usize) {
        let Ok(workers) = self.workers.lock() else { return (0, 0) };
        workers
            .values()
            .map(|c| c.tx.receiver_count())
            .filter(|n| *n > 0)
            .fold((0, 0), |(w, s), n| (w + 1, s + n))
    }

    /// Tells every socket that the server is going away.
    pub(crate) fn shutdown(&self) {
        if let Ok(workers) = self.workers.lock() {
            for channel in workers.values() {
                let _ = channel.tx.send(Push::Shutdown);
            }
        }
    }
}

/// The `state` message. `seq` is the number of the last event the snapshot is known to reflect (taken
/// before it was built): the page re-applies the event frames it has with higher numbers on top of it.
fn state_message(snapshot: &Snapshot, seq: u64, now: Timestamp) -> String {
    json!({
        "type": "state",
        "seq": seq,
        "server_time": now.millis(),
        "worker": snapshot.worker,
        "reservations": snapshot.reservations,
        "conference": snapshot.conference,
    })
    .to_string()
}

fn error_message(message: &str) -> Value {
    json!({ "type": "error", "message": message })
}

/// Rebuilds `worker_sid`'s state over REST and pushes it if it changed. Coalesced: while one rebuild runs,
/// further requests make it run once more when it is done. Does nothing when the worker has no socket.
pub(crate) fn refresh(state: &AppState, worker_sid: &str) {
    let hub = &state.inner.hub;
    let Some(channel) = hub.channel(worker_sid) else { return };
    if channel.tx.receiver_count() == 0 {
        return;
    }
    {
        let Ok(mut refresh) = channel.refresh.lock() else { return };
        if refresh.running {
            refresh.dirty = true;
            return;
        }
        refresh.running = true;
    }
    let state = state.clone();
    let worker_sid = worker_sid.to_owned();
    tokio::spawn(async move {
        loop {
            refresh_now(&state, &worker_sid).await;
            let Ok(mut refresh) = channel.refresh.lock() else { return };
            if refresh.dirty {
                refresh.dirty = false;
            } else {
                refresh.running = false;
                return;
            }
        }
    });
}

/// Rebuilds and pushes `worker_sid`'s state now (reporting a failure to its sockets).
pub(crate) async fn refresh_now(state: &AppState, worker_sid: &str) {
    let hub = &state.inner.hub;
    let Some(channel) = hub.channel(worker_sid) else { return };
    let seq = channel.seq();
    match snapshot::build(state, worker_sid).await {
        Ok(snapshot) => hub.push_state(worker_sid, snapshot, seq, state.now()),
        Err(error) => {
            tracing::warn!(%worker_sid, %error, "could not rebuild a worker's state");
            hub.push_message(worker_sid, error_message(&error.message()));
        }
    }
}

/// `/api/ws`.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/ws", get(upgrade))
}

async fn upgrade(State(state): State<AppState>, upgrade: WebSocketUpgrade) -> Response {
    sized(&state, upgrade).on_upgrade(move |mut socket| async move {
        if let Err(reason) = session(&state, &mut socket).await {
            tracing::debug!(%reason, "websocket ended");
        }
    })
}

/// `upgrade` sized for what a page sends (the worker's and the supervisor's): a hello and later refreshed
/// tokens, never more than `ws_max_message_bytes`.
pub(crate) fn sized(state: &AppState, upgrade: WebSocketUpgrade) -> WebSocketUpgrade {
    twilio_server::http::small_client_socket(upgrade, state.config().ws_max_message_bytes)
}

/// The first message of a socket.
#[derive(Debug)]
struct Hello {
    token: String,
    last_seq: Option<u64>,
}

fn parse_hello(text: &str) -> Result<Hello, String> {
    let value: Value = serde_json::from_str(text)
        .map_err(|_| "The first message must be JSON: {\"type\":\"hello\",\"token\":…}.".to_owned())?;
    if value.get("type").and_then(Value::as_str) != Some("hello") {
        return Err("The first message must be {\"type\":\"hello\",\"token\":…,\"last_seq\":…}.".to_owned());
    }
    let token = value
        .get("token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| "The hello message has no token: sign in first.".to_owned())?;
    let last_seq = value.get("last_seq").and_then(|v| v.as_u64().or_else(|| v.as_f64().map(|f| f as u64)));
    Ok(Hello { token: token.to_owned(), last_seq })
}

async fn send(socket: &mut WebSocket, text: &str) -> Result<(), String> {
    socket.send(Message::Text(text.into())).await.map_err(|e| format!("send failed: {e}"))
}

async fn close(socket: &mut WebSocket, code: u16, reason: &str) {
    let frame = CloseFrame { code, reason: reason.into() };
    let _ = socket.send(Message::Close(Some(frame))).await;
}

/// Waits for `exp` (unix seconds, on the app's clock).
async fn until_expiry(state: &AppState, exp: u64) {
    let left = exp.saturating_sub(state.now_secs());
    tokio::time::sleep(Duration::from_secs(left)).await;
}

async fn session(state: &AppState, socket: &mut WebSocket) -> Result<(), String> {
    // In a block: the hello's text and token are not kept for the socket's whole life.
    let (mut bearer, last_seq) = {
        let first = match tokio::time::timeout(state.config().ws_hello_timeout, socket.recv()).await {
            Ok(Some(Ok(Message::Text(text)))) => text,
            Ok(_) => return Err("closed before hello".into()),
            Err(_) => {
                close(socket, 1008, "no hello").await;
                return Err("no hello in time".into());
            }
        };
        let hello = match parse_hello(first.as_str()) {
            Ok(hello) => hello,
            Err(message) => {
                send(socket, &error_message(&message).to_string()).await?;
                close(socket, 1008, "bad hello").await;
                return Err(message);
            }
        };
        match auth::verify(state, &hello.token) {
            Ok(bearer) => (bearer, hello.last_seq),
            Err(error) => {
                send(socket, &error_message(&error.message()).to_string()).await?;
                close(socket, CLOSE_UNAUTHORIZED, "token refused").await;
                return Err(error.message());
            }
        }
    };
    let worker_sid = bearer.worker_sid.clone();
    let hub = &state.inner.hub;
    let channel = hub.channel(&worker_sid).ok_or("hub unavailable")?;
    // Before the subscription, so that it is dropped after it: its drop asks whether this was the worker's
    // last socket.
    let _departure = leave::Departure::arrive(state, &worker_sid);
    // Subscribe first: whatever happens while the state is built arrives through `rx`.
    let mut rx = channel.tx.subscribe();
    let missed = channel.missed(last_seq);
    let seq_at_start = channel.seq();
    // Boxed here and below: the rebuild's future is large and only lives while it runs, so the idle
    // session's own future stays small (10,000 idle sockets are 10,000 of them).
    let snapshot = match Box::pin(snapshot::build(state, &worker_sid)).await {
        Ok(snapshot) => snapshot,
        Err(error) => {
            send(socket, &error_message(&error.message()).to_string()).await?;
            close(socket, 1011, "state unavailable").await;
            return Err(error.message());
        }
    };
    hub.learn_tasks(&worker_sid, &snapshot.task_sids);
    let mut sent_up_to = last_seq.unwrap_or(0);
    for (seq, text) in &missed {
        send(socket, text).await?;
        sent_up_to = sent_up_to.max(*seq);
    }
    drop(missed);
    send(socket, &state_message(&snapshot, seq_at_start, state.now())).await?;
    // How the server's own link to TaskRouter for this worker is (later changes are pushed as they come).
    if let Some(status) = super::channels::status_message(state, &worker_sid) {
        send(socket, &status.to_string()).await?;
    }
    if let Ok(mut last) = channel.last_state.lock() {
        *last = Some(snapshot.fingerprint());
    }
    drop(snapshot);

    loop {
        tokio::select! {
            push = rx.recv() => match push {
                Ok(Push::Event { seq, text }) => {
                    if seq > sent_up_to {
                        send(socket, &text).await?;
                        sent_up_to = seq;
                    }
                }
                Ok(Push::Message(text)) => send(socket, &text).await?,
                Ok(Push::Shutdown) => {
                    send(socket, &json!({ "type": "shutdown" }).to_string()).await?;
                    close(socket, 1001, "server shutdown").await;
                    return Ok(());
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    // Too far behind: a whole state makes the client right again.
                    let seq = channel.seq();
                    match Box::pin(snapshot::build(state, &worker_sid)).await {
                        Ok(snapshot) => send(socket, &state_message(&snapshot, seq, state.now())).await?,
                        Err(error) => send(socket, &error_message(&error.message()).to_string()).await?,
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
            },
            incoming = socket.recv() => match incoming {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return Ok(()),
                Some(Ok(Message::Text(text))) => {
                    // A later hello carries a refreshed token for the same worker; a fresh state
                    // acknowledges it.
                    if let Ok(again) = parse_hello(text.as_str()) {
                        match auth::verify(state, &again.token) {
                            Ok(fresh) if fresh.worker_sid == worker_sid => {
                                bearer = fresh;
                                let seq = channel.seq();
                                match Box::pin(snapshot::build(state, &worker_sid)).await {
                                    Ok(snapshot) => {
                                        let text = state_message(&snapshot, seq, state.now());
                                        send(socket, &text).await?;
                                    }
                                    Err(error) => send(socket, &error_message(&error.message()).to_string()).await?,
                                }
                            }
                            Ok(_) => send(socket, &error_message("That token is for another worker.").to_string()).await?,
                            Err(error) => send(socket, &error_message(&error.message()).to_string()).await?,
                        }
                    }
                }
                Some(Ok(_)) => {}
            },
            _ = until_expiry(state, bearer.exp) => {
                send(socket, &error_message("Your sign-in has expired. Sign in again.").to_string()).await?;
                close(socket, CLOSE_UNAUTHORIZED, "token expired").await;
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_needs_type_and_token() {
        assert!(parse_hello("nonsense").is_err());
        assert!(parse_hello(r#"{"type":"hi","token":"t"}"#).is_err());
        assert!(parse_hello(r#"{"type":"hello"}"#).is_err());
        let hello = parse_hello(r#"{"type":"hello","token":"t","last_seq":12}"#);
        assert!(matches!(hello, Ok(Hello { ref token, last_seq: Some(12) }) if token == "t"));
        let hello = parse_hello(r#"{"type":"hello","token":"t","last_seq":null}"#);
        assert!(matches!(hello, Ok(Hello { last_seq: None, .. })));
    }

    #[test]
    fn missed_events_only_when_the_buffer_holds_them_all() {
        let hub = Hub::new(3, Timestamp(0));
        for i in 0..5 {
            hub.push_event("WK1", i, "worker.activity.update", "x", serde_json::Map::new());
        }
        let Some(channel) = hub.channel("WK1") else { panic!("no channel") };
        // Buffer holds 3, 4, 5.
        assert_eq!(channel.missed(Some(2)).iter().map(|(s, _)| *s).collect::<Vec<_>>(), vec![3, 4, 5]);
        assert_eq!(channel.missed(Some(4)).len(), 1);
        assert!(channel.missed(Some(1)).is_empty(), "1 and earlier are gone: fresh state only");
        assert!(channel.missed(Some(5)).is_empty());
        assert!(channel.missed(Some(99)).is_empty(), "a number from the future: fresh state only");
        assert!(channel.missed(None).is_empty());
    }
}
