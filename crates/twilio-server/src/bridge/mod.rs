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
//! v1 addressing (taskrouter.js v1: `/v1/wschannels/{AC}/{channel}`, worker, task queue and workspace
//! channels, capability-token policies, public REST JSON) is in [`v1`], reusing this module's socket loop,
//! sessions, CORS and error bodies.
//!
//! Not here yet (issue 22): the §4.3 calls beyond the Worker flow (transfers, participants, supervisor).

mod channel;
mod envelope;
mod format;
mod token;
mod v1;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use engine::Sid;
use tokio::sync::Notify;

use crate::ServerState;

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

/// The bridge's shared state: its options and the open channels of each worker.
pub struct Bridge {
    options: Options,
    sessions: Sessions,
}

impl Bridge {
    /// A bridge with no channel open.
    pub fn new(options: Options) -> Bridge {
        Bridge { options, sessions: Sessions::default() }
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

/// The open channels of each worker (and, for v1, of each task queue and workspace channel), so `closeExistingSessions` can close the others and
/// `setWorkerOfflineIfDisconnected` knows when the last one closed. A `std` mutex: it is held for a map
/// operation, never across an await.
#[derive(Default)]
struct Sessions {
    next: AtomicU64,
    open: Mutex<HashMap<Sid, Vec<Session>>>,
}

/// An open channel: its id and what tells it to close.
type Session = (u64, Arc<Notify>);

impl Sessions {
    /// Registers a channel of `worker`; with `close_others`, tells the worker's other channels to close.
    /// Returns the channel's id and what tells it to close.
    fn open(&self, worker: Sid, close_others: bool) -> (u64, Arc<Notify>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let kick = Arc::new(Notify::new());
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let list = open.entry(worker).or_default();
        if close_others {
            // `notify_one` keeps a permit, so a channel busy sending sees it on its next turn.
            list.drain(..).for_each(|(_, other)| other.notify_one());
        }
        list.push((id, kick.clone()));
        (id, kick)
    }

    /// Forgets a channel; true when it was the worker's last.
    fn close(&self, worker: Sid, id: u64) -> bool {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let Some(list) = open.get_mut(&worker) else { return true };
        list.retain(|(other, _)| *other != id);
        let last = list.is_empty();
        if last {
            open.remove(&worker);
        }
        last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_existing_sessions_tells_the_others_and_the_last_close_is_known() {
        let s = Sessions::default();
        let wk = Sid::new(engine::Prefix::Worker, 1);
        let (a, kick_a) = s.open(wk, false);
        let (b, _kick_b) = s.open(wk, true);
        // A was told to close (the permit is stored), and forgetting it leaves B open.
        assert!(futures_util::FutureExt::now_or_never(kick_a.notified()).is_some());
        assert!(!s.close(wk, a));
        assert!(s.close(wk, b));
    }
}
