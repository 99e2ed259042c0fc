//! `twilio::eventbridge::Channel`, the app's event channel client, against the engine's real bridge (v1
//! addressing): typed events, a refused token, a server that drops the session or goes away, token renewal
//! and, with a listener of its own, a server that goes silent.
//!
//! No test waits for a fixed time to pass and then expects something to have happened: each waits (with a
//! generous cap) for the update it expects, and the one bound on a count (no hot loop) holds however slow the
//! machine is, since slowness only lowers the count.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::mpsc::Receiver;
use tokio::task::{JoinHandle, JoinSet};
use twilio::eventbridge::{
    Channel, ChannelEvent, ChannelUpdate, Config, EventPayload, SourceError, Token, TokenSource,
};
use twilio::token::WorkerCapability;

use crate::helpers::{spawn_bridge_app as app, TestApp, ACCOUNT, NOW, TOKEN};

/// The longest any one expected update may take: far above what any of them needs.
const PATIENCE: Duration = Duration::from_secs(20);

/// The client's settings for `channel` on the bridge at `base`, on the engine's clock, with short backoff.
fn config(base: &str, channel: &str) -> Config {
    Config::new(ACCOUNT, channel)
        .bridge_url(format!("{base}/v1/wschannels"))
        .clock(|| NOW)
        .backoff(Duration::from_millis(100), Duration::from_millis(400))
}

/// A workspace whose `support` queue sends its tasks to one available worker; returns both SIDs.
async fn call_centre(app: &TestApp) -> (String, String) {
    let (ws, _, [worker]) = app.staffed_centre(["alice"]).await;
    (ws, worker)
}

/// A token source that counts its calls.
fn counting(mut source: impl TokenSource) -> (impl TokenSource, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let source = move |now: u64| -> Result<Token, SourceError> {
        counter.fetch_add(1, Ordering::SeqCst);
        source.token(now)
    };
    (source, calls)
}

async fn next(updates: &mut Receiver<ChannelUpdate>) -> ChannelUpdate {
    tokio::time::timeout(PATIENCE, updates.recv())
        .await
        .unwrap_or_else(|_| panic!("no update within {PATIENCE:?}"))
        .expect("the channel's task is running")
}

/// The next update, which must be `Connected`; returns its `reconnect`.
async fn connected(updates: &mut Receiver<ChannelUpdate>) -> bool {
    match next(updates).await {
        ChannelUpdate::Connected { reconnect } => reconnect,
        other => panic!("expected Connected, got {other:?}"),
    }
}

/// Skips updates up to the event `event_type`; panics on a disconnection meanwhile.
async fn event(updates: &mut Receiver<ChannelUpdate>, event_type: &str) -> ChannelEvent {
    loop {
        match next(updates).await {
            ChannelUpdate::Event(e) if e.event_type == event_type => return e,
            ChannelUpdate::Event(_) => continue,
            other => panic!("waiting for {event_type}, got {other:?}"),
        }
    }
}

/// Updates up to and including the next `Connected { reconnect: true }`.
async fn until_reconnected(updates: &mut Receiver<ChannelUpdate>) -> Vec<ChannelUpdate> {
    let mut seen = Vec::new();
    loop {
        let update = next(updates).await;
        let done = update == ChannelUpdate::Connected { reconnect: true };
        seen.push(update);
        if done {
            return seen;
        }
    }
}

fn disconnections(updates: &[ChannelUpdate]) -> Vec<(&str, u32, Duration)> {
    updates
        .iter()
        .filter_map(|u| match u {
            ChannelUpdate::Disconnected { reason, attempt, retry_in } => {
                Some((reason.as_str(), *attempt, *retry_in))
            }
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_worker_channel_gets_its_reservation_and_activity_as_typed_events() {
    let app = app().await;
    let (ws, wk) = call_centre(&app).await;
    let cap = WorkerCapability::new(ACCOUNT, TOKEN, &ws, &wk);
    let (channel, mut updates) = Channel::open(config(&app.base, &wk), cap).unwrap();
    assert!(!connected(&mut updates).await, "the first connection is not a reconnect");

    let task = app.task(&ws).await;
    let wt = task["sid"].as_str().unwrap();
    let created = event(&mut updates, "reservation.created").await;
    let wr = app.first_reservation(&ws, wt).await;
    let EventPayload::Reservation { task, reservation_sid } = &created.kind else {
        panic!("not a reservation: {created:?}")
    };
    assert_eq!((task.sid.as_str(), reservation_sid.as_str()), (wt, wr.as_str()));
    assert_eq!(task.workspace_sid.as_deref(), Some(ws.as_str()));
    assert_eq!(task.attributes_json().unwrap()["type"], "support");
    assert_eq!(created.payload["reservation_sid"], wr.as_str(), "the raw payload is kept");

    let offline = app.move_worker(&ws, &wk, "Offline").await;
    let update = event(&mut updates, "worker.activity.update").await;
    let EventPayload::Worker(worker) = &update.kind else { panic!("not a worker: {update:?}") };
    assert_eq!(worker.sid, wk);
    assert_eq!(worker.activity_sid.as_deref(), Some(offline.as_str()));
    assert_eq!(worker.activity_name.as_deref(), Some("Offline"));
    assert_eq!(worker.available, Some(false));

    // Closing ends the task: the receiver sees the end, promptly.
    tokio::time::timeout(PATIENCE, channel.close()).await.expect("close returns");
    while let Some(update) = tokio::time::timeout(PATIENCE, updates.recv()).await.expect("the end") {
        assert!(matches!(update, ChannelUpdate::Event(_)), "only events were still buffered: {update:?}");
    }
}

#[tokio::test]
async fn a_refused_token_is_reported_once_and_retried_with_backoff() {
    let app = app().await;
    let (ws, wk) = call_centre(&app).await;
    let (source, calls) = counting(WorkerCapability::new(ACCOUNT, "not-the-auth-token", &ws, &wk));
    let (channel, mut updates) = Channel::open(config(&app.base, &wk), source).unwrap();

    let ChannelUpdate::Disconnected { reason, attempt, retry_in } = next(&mut updates).await else {
        panic!("the refusal is reported first")
    };
    assert!(reason.contains("refused the token (HTTP 401)"), "{reason}");
    assert_eq!(attempt, 1);
    assert!(retry_in >= Duration::from_millis(100), "{retry_in:?}");

    // The client keeps trying, but at the backoff's pace (100 ms at least between tries), and says nothing
    // more while the reason stays the same. Watched for two seconds: a hot loop would make hundreds of
    // calls; a slow machine can only make fewer.
    let watch = Duration::from_secs(2);
    match tokio::time::timeout(watch, updates.recv()).await {
        Err(_) => {}
        Ok(update) => panic!("a repeated refusal was reported again: {update:?}"),
    }
    let tries = calls.load(Ordering::SeqCst);
    assert!((2..=30).contains(&tries), "{tries} tries in {watch:?}");
    drop(channel);
    assert!(tokio::time::timeout(PATIENCE, updates.recv()).await.expect("the end").is_none());
}

#[tokio::test]
async fn a_session_the_server_closes_is_reopened_as_a_reconnect() {
    let app = app().await;
    let (ws, wk) = call_centre(&app).await;
    let cap = WorkerCapability::new(ACCOUNT, TOKEN, &ws, &wk);
    let (_channel, mut updates) = Channel::open(config(&app.base, &wk), cap.clone()).unwrap();
    assert!(!connected(&mut updates).await);

    // Another session of the worker asks for the existing ones to be closed: the engine closes ours (4002).
    let url = format!(
        "{}/v1/wschannels/{ACCOUNT}/{wk}?token={}&closeExistingSessions=true",
        app.base.replacen("http", "ws", 1),
        cap.to_jwt(NOW).unwrap()
    );
    let _other = tokio_tungstenite::connect_async(url).await.unwrap();
    let seen = until_reconnected(&mut updates).await;
    let lost = disconnections(&seen);
    assert_eq!(lost.len(), 1, "{seen:?}");
    assert!(lost[0].0.contains("4002"), "{seen:?}");
    assert_eq!(lost[0].1, 1);

    // The new session (which does not close the other one in turn) carries events.
    let task = app.task(&ws).await;
    let created = event(&mut updates, "reservation.created").await;
    assert!(matches!(&created.kind, EventPayload::Reservation { task: t, .. } if t.sid == task["sid"]));
}

/// A TCP relay to `upstream`: stopping it drops every connection through it and closes its port, which is
/// what a client sees of a server restart; starting it again on the same port brings the server back.
struct Relay {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Relay {
    async fn start(addr: SocketAddr, upstream: SocketAddr) -> Relay {
        // The port was just closed: bind until the system lets it go (at once, in practice).
        let mut tries = 0;
        let listener = loop {
            match TcpListener::bind(addr).await {
                Ok(listener) => break listener,
                Err(_) if tries < 100 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("could not bind {addr} again: {e}"),
            }
        };
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            // Dropped with the task: every relayed connection is aborted with it.
            let mut connections = JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                connections.spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Relay { addr, task }
    }

    fn stop(self) -> SocketAddr {
        self.task.abort();
        self.addr
    }
}

#[tokio::test]
async fn a_server_that_goes_away_and_comes_back_is_reconnected_to() {
    let app = app().await;
    let (ws, wk) = call_centre(&app).await;
    let upstream: SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();
    let relay = Relay::start("127.0.0.1:0".parse().unwrap(), upstream).await;
    let base = format!("http://{}", relay.addr);
    let cap = WorkerCapability::new(ACCOUNT, TOKEN, &ws, &wk);
    let (_channel, mut updates) = Channel::open(config(&base, &wk), cap).unwrap();
    assert!(!connected(&mut updates).await);

    let addr = relay.stop();
    let ChannelUpdate::Disconnected { reason, attempt, .. } = next(&mut updates).await else {
        panic!("the loss is reported")
    };
    assert_eq!(attempt, 1, "{reason}");
    let relay = Relay::start(addr, upstream).await;
    let seen = until_reconnected(&mut updates).await;
    // Once per change of state: the loss above, then at most "connection refused" while the port was shut.
    assert!(disconnections(&seen).len() <= 1, "{seen:?}");

    let task = app.task(&ws).await;
    let created = event(&mut updates, "reservation.created").await;
    assert!(matches!(&created.kind, EventPayload::Reservation { task: t, .. } if t.sid == task["sid"]));
    relay.stop();
}

#[tokio::test]
async fn the_token_is_renewed_before_the_bridge_would_close_at_its_expiry() {
    let app = app().await;
    let (ws, wk) = call_centre(&app).await;
    // 6 s by the engine's clock: the engine closes a session with 4001 six seconds of real time after it
    // accepted it; the client renews at half that, three seconds ahead.
    let ttl = Duration::from_secs(6);
    let (source, calls) = counting(WorkerCapability::new(ACCOUNT, TOKEN, &ws, &wk).ttl(ttl));
    let (_channel, mut updates) = Channel::open(config(&app.base, &wk), source).unwrap();
    assert!(!connected(&mut updates).await);

    // Two renewals: the second comes after the first token's expiry, so a socket that had not been renewed
    // in time would have been closed with 4001, which would show as a Disconnected here.
    let mut seen = until_reconnected(&mut updates).await;
    seen.extend(until_reconnected(&mut updates).await);
    assert!(disconnections(&seen).is_empty(), "{seen:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 3, "one fresh token per connection");

    let task = app.task(&ws).await;
    let created = event(&mut updates, "reservation.created").await;
    assert!(matches!(&created.kind, EventPayload::Reservation { task: t, .. } if t.sid == task["sid"]));
}

#[tokio::test]
async fn a_silent_server_is_given_up_on_and_reconnected_to() {
    // Accepts the upgrade and never sends a frame: no heartbeat, no event.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    let server = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            if let Ok(socket) = tokio_tungstenite::accept_async(stream).await {
                counter.fetch_add(1, Ordering::SeqCst);
                held.push(socket);
            }
        }
    });
    let token =
        |now: u64| -> Result<Token, SourceError> { Ok(Token { jwt: "any".into(), expires_at: now + 3600 }) };
    let config =
        config(&base, "WK00000000000000000000000000000001").liveness_timeout(Duration::from_millis(300));
    let (channel, mut updates) = Channel::open(config, token).unwrap();
    assert!(!connected(&mut updates).await);
    let seen = until_reconnected(&mut updates).await;
    let lost = disconnections(&seen);
    assert_eq!(lost.len(), 1, "{seen:?}");
    assert!(lost[0].0.contains("no frame"), "{seen:?}");
    assert!(accepted.load(Ordering::SeqCst) >= 2);

    // Dropping the handle ends the task: the receiver sees the end.
    drop(channel);
    assert!(tokio::time::timeout(PATIENCE, updates.recv()).await.expect("the end").is_none());
    server.abort();
}
