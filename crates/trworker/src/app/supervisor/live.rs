//! The live picture: the workspace's event channel, open while at least one supervisor page is connected,
//! and the supervisor WebSocket at `/api/supervisor/ws`.
//!
//! - **Source.** In twilio mode the v1 workspace channel (`WS…`) on TaskRouter's event bridge, through
//!   [`twilio::eventbridge::Channel`] with a workspace capability token minted with the auth token; in local
//!   mode the embedded engine's [`WorkspaceFeed`] in process, the same event types and payloads
//!   ([`attach_local`]); with channels turned off (`TWILIO_EVENT_BRIDGE_URL=off`), a rebuild every
//!   reconciliation interval.
//! - **Lifetime.** The first supervisor socket opens the channel, the last one to close closes it and drops
//!   the picture: nobody watching costs nothing.
//! - **Picture.** When the channel connects (or reconnects, or an event could not be read) the picture is
//!   rebuilt over REST ([`board::load`]) and sent whole (`picture`); each event then updates it and the
//!   rows it changed are sent (`worker`, `worker_removed`); queue figures and totals are read again after
//!   events that may change them, at most every [`STATS_SPACING`] (`stats`). A lost channel is told to the
//!   pages (`channel` `reconnecting`): they keep the last picture, marked stale, until the next `picture`.
//! - **Protocol.** The page's first message is `{"type":"hello","token"}` with a supervisor token. Every
//!   message after it has a `seq`; a `picture`'s `seq` is the last change it includes, so a page drops the
//!   updates numbered at or below it. A socket that falls behind gets the whole picture again. When the
//!   server shuts down, sockets get `{"type":"shutdown"}` and close with 1001, as the workers' do.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use twilio::eventbridge::{self, Channel, ChannelEvent, ChannelUpdate, Token};
use twilio_server::worker_feed::{FeedEnd, WorkspaceFeed};

use super::board::{self, Board, Sample};
use crate::app::channels::Source;
use crate::app::{auth, AppState};

/// Messages a socket may fall behind by before it gets the whole picture instead.
const CAPACITY: usize = 256;
/// The least time between two reads of the statistics: a burst of events costs one read, and a change is
/// still on the page well within a second.
const STATS_SPACING: Duration = Duration::from_millis(250);
/// Updates waiting for the consumer of the in-process feed.
const QUEUE: usize = 1024;
/// Close code for a refused or expired token (as the worker socket's).
const CLOSE_UNAUTHORIZED: u16 = 4401;
/// Close code for a worker's token on the supervisor socket.
const CLOSE_FORBIDDEN: u16 = 4403;

/// Makes the in-process feed of local mode, once per opening of the channel.
type LocalFeed = Arc<dyn Fn() -> WorkspaceFeed + Send + Sync>;

/// The picture and what is sent of it.
#[derive(Default)]
struct Picture {
    board: Option<Board>,
    /// Number of the last message sent.
    seq: u64,
    /// Whether the channel is connected now.
    connected: bool,
    /// The chart's samples while no page is open, for the next picture.
    history: VecDeque<Sample>,
}

/// The running channel: dropped to close it.
struct Running {
    _client: Option<Channel>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Everything live about the supervisor page. Std mutexes: held for updates, never across an await.
pub(crate) struct Live {
    picture: Mutex<Picture>,
    tx: broadcast::Sender<(u64, Arc<str>)>,
    sockets: AtomicUsize,
    running: Mutex<Option<Running>>,
    local: OnceLock<LocalFeed>,
    /// Whether a statistics read runs, and whether another was asked for meanwhile.
    stats: Mutex<(bool, bool)>,
}

impl Live {
    pub(crate) fn new() -> Live {
        let (tx, _) = broadcast::channel(CAPACITY);
        Live {
            picture: Mutex::new(Picture::default()),
            tx,
            sockets: AtomicUsize::new(0),
            running: Mutex::new(None),
            local: OnceLock::new(),
            stats: Mutex::new((false, false)),
        }
    }

    /// Supervisor sockets open now.
    pub(crate) fn sockets(&self) -> usize {
        self.sockets.load(Ordering::Relaxed)
    }

    /// Whether the workspace's channel is open.
    pub(crate) fn is_open(&self) -> bool {
        self.running.lock().map(|r| r.is_some()).unwrap_or(false)
    }

    /// Runs `f` on the picture and sends what it returns as the next message.
    fn publish(&self, f: impl FnOnce(&mut Picture) -> Option<Value>) {
        let Ok(mut picture) = self.picture.lock() else { return };
        if let Some(mut message) = f(&mut picture) {
            picture.seq += 1;
            message["seq"] = json!(picture.seq);
            // Sent under the lock so that sockets see messages in order.
            let _ = self.tx.send((picture.seq, message.to_string().into()));
        }
    }

    /// The whole picture as a message, if there is one, with its `seq`.
    fn picture_message(&self) -> Option<(u64, String)> {
        let picture = self.picture.lock().ok()?;
        let board = picture.board.as_ref()?;
        let mut message = board.to_json();
        message["type"] = json!("picture");
        message["seq"] = json!(picture.seq);
        message["connected"] = json!(picture.connected);
        Some((picture.seq, message.to_string()))
    }
}

/// Local mode: the workspace channel comes from the embedded engine in process. `start` calls this once.
pub fn attach_local(state: &AppState, feed: impl Fn() -> WorkspaceFeed + Send + Sync + 'static) {
    let _ = state.inner.supervisor.live.local.set(Arc::new(feed));
}

/// Counts a socket in, and opens the channel if it is not open. The count and the channel change under
/// one lock, so a socket arriving while the last one leaves never finds the channel closed under it.
fn arrive(state: &AppState) {
    let live = &state.inner.supervisor.live;
    let Ok(mut running) = live.running.lock() else { return };
    live.sockets.fetch_add(1, Ordering::SeqCst);
    if running.is_some() {
        return;
    }
    let (client, updates, producer) = match updates(state) {
        Ok(opened) => opened,
        Err(error) => {
            tracing::warn!(%error, "cannot open the workspace's event channel for the supervisor page");
            return;
        }
    };
    let consumer = tokio::spawn(consume(state.clone(), updates));
    let tasks = producer.into_iter().chain(std::iter::once(consumer)).collect();
    *running = Some(Running { _client: client, tasks });
    tracing::debug!("workspace event channel opened for the supervisor page");
}

/// Counts a socket out; the last one closes the channel and drops the picture.
fn leave(state: &AppState) {
    let live = &state.inner.supervisor.live;
    let Ok(mut running) = live.running.lock() else { return };
    if live.sockets.fetch_sub(1, Ordering::SeqCst) != 1 {
        return;
    }
    if running.take().is_some() {
        if let Ok(mut picture) = live.picture.lock() {
            if let Some(mut board) = picture.board.take() {
                picture.history = board.take_history();
            }
            picture.connected = false;
        }
        tracing::debug!("workspace event channel closed: no supervisor page is open");
    }
}

type Opened = (Option<Channel>, mpsc::Receiver<ChannelUpdate>, Option<JoinHandle<()>>);

/// Where the updates come from, per the app's event source.
fn updates(state: &AppState) -> Result<Opened, eventbridge::ConfigError> {
    let config = state.config();
    let local = state.inner.supervisor.live.local.get().cloned();
    match (config.event_source(), local) {
        (_, Some(make)) => {
            let (sender, updates) = mpsc::channel(QUEUE);
            let producer = tokio::spawn(follow_local(make(), sender));
            Ok((None, updates, Some(producer)))
        }
        (Source::Bridge { base_url }, None) => {
            let capability = twilio::token::ChannelCapability::workspace(
                &config.account_sid,
                &config.auth_token,
                &config.workspace_sid,
            );
            let tokens = move |now: u64| -> Result<Token, eventbridge::SourceError> {
                // Valid from a little before now, for a TaskRouter whose clock is behind ours.
                let from = now.saturating_sub(300);
                let expires_at = capability.claims(from)?.exp;
                Ok(Token { jwt: capability.to_jwt(from)?, expires_at })
            };
            let app = state.clone();
            let options = eventbridge::Config::new(&config.account_sid, &config.workspace_sid)
                .bridge_url(base_url)
                .buffer(QUEUE)
                .clock(move || app.now_secs());
            let (client, updates) = Channel::open(options, tokens)?;
            Ok((Some(client), updates, None))
        }
        (Source::InProcess | Source::Off, None) => {
            let (sender, updates) = mpsc::channel(QUEUE);
            let every = config.reconcile_interval.max(Duration::from_secs(1));
            let producer = tokio::spawn(async move {
                let mut reconnect = false;
                loop {
                    if sender.send(ChannelUpdate::Connected { reconnect }).await.is_err() {
                        return;
                    }
                    reconnect = true;
                    tokio::time::sleep(every).await;
                }
            });
            Ok((None, updates, Some(producer)))
        }
    }
}

/// Local mode: the engine's workspace feed as channel updates.
async fn follow_local(mut feed: WorkspaceFeed, sender: mpsc::Sender<ChannelUpdate>) {
    if sender.send(ChannelUpdate::Connected { reconnect: false }).await.is_err() {
        return;
    }
    loop {
        let update = match feed.next().await {
            Ok(event) => match ChannelEvent::read(event.event_type, event.payload) {
                Ok(event) => ChannelUpdate::Event(event),
                Err(error) => ChannelUpdate::Skipped { error },
            },
            Err(FeedEnd::Lagged(missed)) => {
                tracing::warn!(missed, "the supervisor page fell behind the engine's events; rebuilding");
                ChannelUpdate::Connected { reconnect: true }
            }
            Err(FeedEnd::Closed) => return,
        };
        if sender.send(update).await.is_err() {
            return;
        }
    }
}

/// The wait before a failed rebuild is tried again: the first, and the longest.
const REBUILD_RETRY: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(30));

/// When to try a rebuild again: `None` after one that worked, else later than the last wait, doubled.
fn retry_after(rebuilt: bool, last: Option<Duration>) -> Option<(tokio::time::Instant, Duration)> {
    if rebuilt {
        return None;
    }
    let wait = last.map_or(REBUILD_RETRY.0, |w| (w * 2).min(REBUILD_RETRY.1));
    Some((tokio::time::Instant::now() + wait, wait))
}

/// Takes the channel's updates into the picture until the channel is closed. A rebuild that failed (REST
/// unreachable) is tried again with backoff, since a connected channel sends no other reason to.
async fn consume(state: AppState, mut updates: mpsc::Receiver<ChannelUpdate>) {
    let live = &state.inner.supervisor.live;
    let mut down: Option<String> = None;
    let mut retry: Option<(tokio::time::Instant, Duration)> = None;
    loop {
        let update = match retry {
            None => updates.recv().await,
            Some((at, wait)) => tokio::select! {
                update = updates.recv() => update,
                _ = tokio::time::sleep_until(at) => {
                    retry = retry_after(rebuild(&state).await, Some(wait));
                    continue;
                }
            },
        };
        let Some(update) = update else { return };
        match update {
            ChannelUpdate::Connected { .. } => {
                if down.take().is_some() {
                    tracing::info!("workspace event channel connected again");
                }
                retry = retry_after(rebuild(&state).await, None);
            }
            ChannelUpdate::Event(event) => {
                let mut stats = false;
                live.publish(|picture| {
                    let board = picture.board.as_mut()?;
                    let change = board.apply(&event);
                    stats = change.stats;
                    if change.workers.is_empty() && change.removed.is_empty() {
                        return None;
                    }
                    let rows: Vec<Value> =
                        change.workers.iter().filter_map(|w| board.worker_json(w)).collect();
                    Some(json!({ "type": "workers", "workers": rows, "removed": change.removed }))
                });
                if stats {
                    refresh_stats(&state);
                }
            }
            ChannelUpdate::Skipped { error } => {
                tracing::debug!(%error, "a workspace channel frame did not read; rebuilding");
                retry = retry_after(rebuild(&state).await, None);
            }
            ChannelUpdate::Disconnected { reason, .. } => {
                if down.as_deref() != Some(reason.as_str()) {
                    tracing::warn!(%reason, "workspace event channel lost; reconnecting");
                    live.publish(|picture| {
                        picture.connected = false;
                        Some(json!({ "type": "channel", "status": "reconnecting", "reason": reason }))
                    });
                    down = Some(reason);
                }
            }
        }
    }
}

/// Rebuilds the picture over REST and sends it whole; a failure is told to the pages, which keep the last
/// picture as stale. Whether it worked.
async fn rebuild(state: &AppState) -> bool {
    let live = &state.inner.supervisor.live;
    let now = state.now().millis();
    match Box::pin(board::load(state)).await {
        Ok(mut board) => live.publish(|picture| {
            let history = match picture.board.as_mut() {
                Some(old) => old.take_history(),
                None => std::mem::take(&mut picture.history),
            };
            board.continue_history(history, now);
            let mut message = board.to_json();
            picture.board = Some(board);
            picture.connected = true;
            message["type"] = json!("picture");
            message["connected"] = json!(true);
            Some(message)
        }),
        Err(error) => {
            tracing::warn!(%error, "could not build the supervisor's picture; trying again");
            live.publish(|picture| {
                picture.connected = false;
                Some(json!({ "type": "channel", "status": "reconnecting", "reason": error.message() }))
            });
            return false;
        }
    }
    true
}

/// Reads the statistics again, coalesced: while one read runs, further requests make it run once more
/// after it, no sooner than [`STATS_SPACING`].
fn refresh_stats(state: &AppState) {
    let live = &state.inner.supervisor.live;
    {
        let Ok(mut flags) = live.stats.lock() else { return };
        if flags.0 {
            flags.1 = true;
            return;
        }
        *flags = (true, false);
    }
    let state = state.clone();
    tokio::spawn(async move {
        let live = &state.inner.supervisor.live;
        loop {
            match board::load_stats(&state).await {
                Ok(stats) => {
                    let now = state.now().millis();
                    live.publish(|picture| {
                        let board = picture.board.as_mut()?;
                        board.set_stats(stats, now);
                        let mut message = board.stats_json();
                        message["type"] = json!("stats");
                        Some(message)
                    });
                }
                Err(error) => tracing::warn!(%error, "could not read the statistics for the supervisor page"),
            }
            tokio::time::sleep(STATS_SPACING).await;
            let Ok(mut flags) = live.stats.lock() else { return };
            if flags.1 && live.sockets() > 0 {
                flags.1 = false;
            } else {
                *flags = (false, false);
                return;
            }
        }
    });
}

/// `GET /api/supervisor/ws`.
pub(crate) async fn upgrade(State(state): State<AppState>, upgrade: WebSocketUpgrade) -> Response {
    crate::app::live::sized(&state, upgrade).on_upgrade(move |mut socket| async move {
        if let Err(reason) = session(&state, &mut socket).await {
            tracing::debug!(%reason, "supervisor websocket ended");
        }
    })
}

/// Counts a socket while it lives ([`arrive`], [`leave`]).
struct Watching {
    state: AppState,
}

impl Watching {
    fn arrive(state: &AppState) -> Watching {
        arrive(state);
        Watching { state: state.clone() }
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        leave(&self.state);
    }
}

async fn send(socket: &mut WebSocket, text: &str) -> Result<(), String> {
    socket.send(Message::Text(text.into())).await.map_err(|e| format!("send failed: {e}"))
}

async fn refuse(socket: &mut WebSocket, code: u16, message: &str) -> String {
    let _ = send(socket, &json!({ "type": "error", "message": message }).to_string()).await;
    let frame = CloseFrame { code, reason: "refused".into() };
    let _ = socket.send(Message::Close(Some(frame))).await;
    message.to_owned()
}

/// The token of a `{"type":"hello","token"}` message.
fn hello_token(text: &str) -> Result<String, String> {
    let value: Value = serde_json::from_str(text)
        .map_err(|_| "The first message must be JSON: {\"type\":\"hello\",\"token\":…}.".to_owned())?;
    if value.get("type").and_then(Value::as_str) != Some("hello") {
        return Err("The first message must be {\"type\":\"hello\",\"token\":…}.".to_owned());
    }
    value
        .get("token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| "The hello message has no token: sign in first.".to_owned())
}

async fn session(state: &AppState, socket: &mut WebSocket) -> Result<(), String> {
    let supervisor = {
        let first = match tokio::time::timeout(state.config().ws_hello_timeout, socket.recv()).await {
            Ok(Some(Ok(Message::Text(text)))) => text,
            Ok(_) => return Err("closed before hello".into()),
            Err(_) => return Err(refuse(socket, 1008, "No hello in time.").await),
        };
        let token = match hello_token(first.as_str()) {
            Ok(token) => token,
            Err(message) => return Err(refuse(socket, 1008, &message).await),
        };
        match auth::verify_supervisor(state, &token) {
            Ok(supervisor) => supervisor,
            Err(error) => {
                let code = match error.status() {
                    axum::http::StatusCode::FORBIDDEN => CLOSE_FORBIDDEN,
                    _ => CLOSE_UNAUTHORIZED,
                };
                return Err(refuse(socket, code, &error.message()).await);
            }
        }
    };
    let mut stop = state.inner.shutdown.subscribe();
    if *stop.borrow() {
        return Err(refuse(socket, 1001, "The server is shutting down.").await);
    }
    let live = &state.inner.supervisor.live;
    let mut rx = live.tx.subscribe();
    let _watching = Watching::arrive(state);
    let mut sent_up_to = 0;
    if let Some((seq, text)) = live.picture_message() {
        send(socket, &text).await?;
        sent_up_to = seq;
    }
    let left = supervisor.exp.saturating_sub(state.now_secs());
    let expiry = tokio::time::sleep(Duration::from_secs(left));
    tokio::pin!(expiry);
    loop {
        tokio::select! {
            message = rx.recv() => match message {
                Ok((seq, text)) => {
                    if seq > sent_up_to {
                        send(socket, &text).await?;
                        sent_up_to = seq;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    if let Some((seq, text)) = live.picture_message() {
                        send(socket, &text).await?;
                        sent_up_to = seq;
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
            },
            incoming = socket.recv() => match incoming {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return Ok(()),
                Some(Ok(_)) => {}
            },
            _ = stop.changed() => {
                send(socket, &json!({ "type": "shutdown" }).to_string()).await?;
                let frame = CloseFrame { code: 1001, reason: "server shutdown".into() };
                let _ = socket.send(Message::Close(Some(frame))).await;
                return Ok(());
            }
            _ = &mut expiry => {
                return Err(refuse(socket, CLOSE_UNAUTHORIZED, "Your sign-in has expired. Sign in again.").await);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failed_rebuild_is_tried_again_ever_later_up_to_a_cap() {
        assert!(retry_after(true, Some(Duration::from_secs(8))).is_none(), "done once it works");
        let mut last = None;
        let mut waits = Vec::new();
        for _ in 0..8 {
            let (_, wait) = retry_after(false, last).unwrap_or_else(|| panic!("a failure is tried again"));
            waits.push(wait.as_secs());
            last = Some(wait);
        }
        assert_eq!(waits, vec![1, 2, 4, 8, 16, 30, 30, 30]);
    }

    #[test]
    fn hello_needs_type_and_token() {
        assert!(hello_token("nonsense").is_err());
        assert!(hello_token(r#"{"type":"hi","token":"t"}"#).is_err());
        assert!(hello_token(r#"{"type":"hello","token":""}"#).is_err());
        assert_eq!(hello_token(r#"{"type":"hello","token":"t"}"#), Ok("t".to_owned()));
    }
}
