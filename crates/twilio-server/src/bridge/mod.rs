//! TaskRouter's event bridge, v2 addressing: what Twilio's worker SDK (`twilio-taskrouter` 2.x and 3.x)
//! talks to when pointed at the engine with `ebServer: {base}/v1/wschannels` and `wsServer:
//! ws://…/v1/wschannels` (`shared/reference/eventbridge.md`, cited here as "eb §n").
//!
//! One path, two uses, told apart by the `Upgrade` header:
//! - `GET /v1/wschannels?token=…` upgrades to the worker's event channel ([`channel`]): one `init` frame,
//!   whitespace heartbeats, then this worker's events in the SDK's internal format.
//! - `POST /v1/wschannels` is the REST envelope `{url, method, params, token}` ([`envelope`]), answered
//!   `{"payload": …}` in the same format; `OPTIONS` is its CORS preflight.
//!
//! Neither uses Basic auth: the bearer is the token in the query or the body ([`token`]). Domain rules stay
//! in the engine: the envelope parses its parameters with the REST resources' own parsers and applies the
//! same engine commands.
//!
//! Channels of both addressings share one reader of the engine's event stream, which hands each channel the
//! events that name it ([`dispatch`]), and the sessions ([`Sessions`]): which channels each worker has open,
//! for `closeExistingSessions`, the last close, and an updated token's new expiry.
//!
//! v1 addressing (taskrouter.js v1: `/v1/wschannels/{AC}/{channel}`, worker, task queue and workspace
//! channels, capability-token policies, public REST JSON) is in [`v1`], reusing this module's socket loop,
//! sessions, dispatcher, CORS and error bodies.
//!
//! Besides a worker's own calls, the envelope serves the SDK's task transfers (the engine's, whose events go
//! to the transferring worker's channel), its `Workspace` class (a workspace token, role `admin` and no
//! worker: lists of workers and queues, a worker, a queue, a task) and its `Supervisor` (another worker's
//! activity and attributes, and `monitor` through the engine's `supervise` instruction).

mod channel;
mod dispatch;
mod envelope;
mod format;
mod token;
mod v1;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use engine::Sid;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::ServerState;

/// The path of a URL an SDK names: without its scheme, host, query and fragment. Both addressings route an
/// envelope and compare a policy by path, so a client may name Twilio's hosts or the engine's own base.
pub(super) fn url_path(url: &str) -> &str {
    let path = match url.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("", |i| &rest[i..]),
        None => url,
    };
    path.split(['?', '#']).next().unwrap_or("")
}

/// The path of both the channel and the envelope (eb §3.1, §4.1).
pub const PATH: &str = "/v1/wschannels";

/// Tunables of the event bridge.
#[derive(Debug, Clone)]
pub struct Options {
    /// How often an idle channel gets a whitespace frame. The SDK closes a channel that has been silent for
    /// 30 s and Twilio sends one every 15 s (eb §3.6); 10 s leaves room for a slow network.
    pub heartbeat: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options { heartbeat: Duration::from_secs(10) }
    }
}

/// The bridge's shared state: its options, the open channels of each worker, and the one reader of the
/// engine's event stream that hands the channels their events.
pub struct Bridge {
    options: Options,
    sessions: Sessions,
    engine: crate::Engine,
    /// Started by the first channel: a server no SDK connects to reads no event stream for the bridge and
    /// scans no reservations (and the bridge can be made outside a Tokio runtime).
    dispatch: OnceLock<dispatch::Dispatch>,
}

impl Bridge {
    /// A bridge over `engine` with no channel open.
    pub fn new(options: Options, engine: crate::Engine) -> Bridge {
        Bridge { options, sessions: Sessions::default(), engine, dispatch: OnceLock::new() }
    }

    /// Subscribes a channel to the events that name one of `keys` (see [`dispatch`]); resolves once the
    /// subscription is in force, so a snapshot read after it misses nothing.
    async fn subscribe(&self, keys: Vec<Sid>) -> dispatch::Subscription {
        let dispatch = self.dispatch.get_or_init(|| dispatch::Dispatch::start(self.engine.clone()));
        dispatch.subscribe(keys).await
    }
}

/// The routes of the event bridge, without Basic auth (the token is the credential).
pub fn routes() -> Router<ServerState> {
    Router::new()
        .route(PATH, get(channel::upgrade).post(envelope::post_envelope).options(envelope::preflight))
        .route(
            v1::PATH,
            get(v1::channel::upgrade).post(v1::envelope::post_envelope).options(envelope::preflight),
        )
}

/// The open channels of each worker (and, for v1, of each task queue and workspace channel), so
/// `closeExistingSessions` can close the others, `setWorkerOfflineIfDisconnected` knows when the last one
/// closed, and an updated token can move their expiry. A `std` mutex: it is held for a map operation, never
/// across an await.
#[derive(Default)]
struct Sessions {
    next: AtomicU64,
    open: Mutex<HashMap<Sid, Vec<Arc<Session>>>>,
}

/// Which addressing opened a channel: a token updates only the channels of its own addressing, since an
/// AccessToken (v2) and a capability token with its policies (v1) do not grant the same thing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Addressing {
    V2,
    V1,
}

/// An open channel, as its socket loop and the rest of the bridge share it.
struct Session {
    id: u64,
    addressing: Addressing,
    /// Tells the channel to close: a newer session asked for `closeExistingSessions`.
    kick: Notify,
    /// When the channel's token runs out. A `std` mutex, held to read or write an `Instant`.
    deadline: Mutex<Instant>,
    /// Tells the channel its deadline moved.
    moved: Notify,
}

impl Session {
    fn deadline(&self) -> Instant {
        *self.deadline.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Resolves when the channel's token runs out, following every move of its deadline.
    async fn expired(&self) {
        loop {
            let deadline = self.deadline();
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => {
                    if self.deadline() <= deadline {
                        return;
                    }
                }
                // `notify_one` keeps a permit, so a move between two turns of this loop is not missed.
                () = self.moved.notified() => {}
            }
        }
    }
}

/// The instant `lifetime_ms` from now; a lifetime too long for the clock is as good as never.
fn deadline_in(lifetime_ms: u64) -> Instant {
    let now = Instant::now();
    now.checked_add(Duration::from_millis(lifetime_ms))
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

impl Sessions {
    /// Registers a channel of `key` (a worker, task queue or workspace SID) whose token runs out at
    /// `deadline`; with `close_others`, tells the key's other channels to close.
    fn open(&self, key: Sid, addressing: Addressing, close_others: bool, deadline: Instant) -> Arc<Session> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let session = Arc::new(Session {
            id,
            addressing,
            kick: Notify::new(),
            deadline: Mutex::new(deadline),
            moved: Notify::new(),
        });
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let list = open.entry(key).or_default();
        if close_others {
            // `notify_one` keeps a permit, so a channel busy sending sees it on its next turn.
            list.drain(..).for_each(|other| other.kick.notify_one());
        }
        list.push(session.clone());
        session
    }

    /// Forgets a channel; true when it was the key's last.
    fn close(&self, key: Sid, id: u64) -> bool {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let Some(list) = open.get_mut(&key) else { return true };
        list.retain(|other| other.id != id);
        let last = list.is_empty();
        if last {
            open.remove(&key);
        }
        last
    }

    /// An updated token (eb §2, §7): neither SDK sends it on the socket; both carry it in every later
    /// envelope. So a verified envelope token for `key` moves the deadline of `key`'s channels of the same
    /// addressing to the token's, when that is later: a request still in flight with the old token must not
    /// take the new one's time back. Returns how many channels moved.
    fn extend(&self, key: Sid, addressing: Addressing, deadline: Instant) -> usize {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let Some(list) = open.get(&key) else { return 0 };
        let mut moved = 0;
        for session in list.iter().filter(|s| s.addressing == addressing) {
            let mut current = session.deadline.lock().unwrap_or_else(|e| e.into_inner());
            if deadline > *current {
                *current = deadline;
                session.moved.notify_one();
                moved += 1;
            }
        }
        moved
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn later(secs: u64) -> Instant {
        Instant::now() + Duration::from_secs(secs)
    }

    #[test]
    fn close_existing_sessions_tells_the_others_and_the_last_close_is_known() {
        let s = Sessions::default();
        let wk = Sid::new(engine::Prefix::Worker, 1);
        let a = s.open(wk, Addressing::V2, false, later(60));
        let b = s.open(wk, Addressing::V2, true, later(60));
        // A was told to close (the permit is stored), and forgetting it leaves B open.
        assert!(futures_util::FutureExt::now_or_never(a.kick.notified()).is_some());
        assert!(!s.close(wk, a.id));
        assert!(s.close(wk, b.id));
    }

    #[test]
    fn an_updated_token_moves_its_own_channels_later_and_nothing_else() {
        let s = Sessions::default();
        let (wk, other) = (Sid::new(engine::Prefix::Worker, 1), Sid::new(engine::Prefix::Worker, 2));
        let first = later(60);
        let mine = s.open(wk, Addressing::V2, false, first);
        let theirs = s.open(other, Addressing::V2, false, first);
        let v1 = s.open(wk, Addressing::V1, false, first);

        let new = later(3600);
        assert_eq!(s.extend(wk, Addressing::V2, new), 1);
        assert_eq!(mine.deadline(), new);
        assert!(futures_util::FutureExt::now_or_never(mine.moved.notified()).is_some());
        // Another worker's channel and the other addressing's are untouched.
        assert_eq!((theirs.deadline(), v1.deadline()), (first, first));
        // An older token, still in flight, does not take the time back.
        assert_eq!(s.extend(wk, Addressing::V2, first), 0);
        assert_eq!(mine.deadline(), new);
        // Nothing open, nothing moved.
        assert_eq!(s.extend(Sid::new(engine::Prefix::Worker, 3), Addressing::V2, new), 0);
    }
}
