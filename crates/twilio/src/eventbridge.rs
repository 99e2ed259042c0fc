//! A client for one channel of TaskRouter's event bridge in v1 addressing (the channel taskrouter.js v1
//! opens), so an app hears about its workers' reservations and activity changes without a public webhook.
//!
//! [`Channel::open`] spawns a task that holds the WebSocket and hands typed [`ChannelUpdate`]s to a bounded
//! `mpsc` receiver. It works against Twilio (`wss://event-bridge.twilio.com`) and against trworker's engine,
//! whose bridge speaks the same protocol.
//!
//! # Protocol (reference eb §7, §3.6)
//!
//! - URL: `{bridge}/{AccountSid}/{ChannelSid}?token={jwt}&closeExistingSessions=false`, where `{bridge}` is
//!   [`EVENT_BRIDGE_URL`] unless [`Config::bridge_url`] says otherwise and `http(s)` becomes `ws(s)` (what
//!   taskrouter.js does with a plain string replace). The channel is a worker (`WK…`), a task queue (`WQ…`)
//!   or a workspace (`WS…`); the token is a capability token for it ([`crate::token::WorkerCapability`],
//!   [`crate::token::ChannelCapability`]). `closeExistingSessions=false`: this client never kicks another
//!   session of the same channel (a browser of the same worker keeps its own).
//! - Server to client: text frames, either whitespace (the heartbeat, about every 15 s on Twilio) or
//!   `{"event_type": …, "payload": …}`. Nothing is sent to the server but the close handshake.
//! - On a worker channel, `worker.*` events carry the worker's public REST JSON (the worker channel's for
//!   `worker.capacity.update` and `worker.channel.availability.update`), and `reservation.*` events carry
//!   the reservation's **task** with a `reservation_sid` member added. [`EventPayload`] types them by the
//!   payload's SID prefix rather than by event name, so a payload the name does not predict is still read
//!   for what it is.
//! - A bad token is refused on the upgrade (401, 403 for a policy that does not allow the channel). The
//!   engine closes with 4001 when the token expires, 4002 when a newer session asked for
//!   `closeExistingSessions`, 4003 when this session fell behind, 1011 when it stops; Twilio's codes are not
//!   documented, so every close is handled alike: report it and reconnect.
//!
//! # Choices where Twilio's docs are silent
//!
//! - **Token renewal.** The bridge closes a socket when its token expires, and a socket cannot be given a
//!   new token. So the client reconnects with a fresh token (from the [`TokenSource`], called at every
//!   connect) ahead of `exp`: at `exp − min(60 s, lifetime / 2)`. An 8-hour token is renewed a minute before
//!   it expires, which leaves room for clock skew and a slow handshake; a short token at half its life, so
//!   a renewal never races the expiry. Renewal closes the old socket first and opens the new one after it
//!   (an overlap would deliver the same events twice with no way to tell them apart), so it is reported as
//!   a reconnect: [`ChannelUpdate::Connected`] with `reconnect: true`, with no `Disconnected` before it.
//! - **Liveness.** Any frame (heartbeat, event, WebSocket ping) proves the connection alive. With none for
//!   [`Config::liveness_timeout`] (default 60 s, as taskrouter.js v1) the connection counts as lost. Time
//!   spent waiting for a slow consumer does not count against the server.
//! - **Reconnect backoff.** Attempt `n` after a loss waits a uniformly random time in `[b/2, b]`, where
//!   `b = min · 2^(n−1)` capped at `max` (defaults 1 s and 30 s), and never less than `min`. A connection
//!   that stayed up for [`HEALTHY_AFTER`] resets `n`; a shorter one does not, so a server that accepts and
//!   drops at once (or keeps kicking the session) is retried ever more slowly. A refused token is retried
//!   on the same schedule, since the next token may be good (a clock set right, a secret rotated back);
//!   twilio-taskrouter (v2) in practice retries about every second forever (eb §3.6).
//! - **Size cap.** A message or frame over [`MAX_MESSAGE`] (1 MiB) is a protocol error that drops the
//!   connection (the bytes cannot be skipped without reading them), so a hostile or broken server cannot grow
//!   this process's memory; the client reconnects as for any loss.
//!
//! # Updates and a slow consumer
//!
//! Updates go through a bounded `mpsc` channel ([`Config::buffer`], default [`DEFAULT_BUFFER`]). When it is
//! full the client stops reading the socket until there is room: nothing is dropped on this side, the
//! socket's buffers fill, and a server that cannot deliver either falls behind and closes the session (the
//! engine's 4003) or stops hearing from it. Either way the consumer then gets `Connected { reconnect: true }`
//! and rebuilds its picture. While waiting for room the client does not renew its token either, so a
//! consumer stuck for longer than the renewal margin may see the token expire first; that too ends in a
//! reconnect.
//!
//! A frame that cannot be read (not JSON, no `event_type`, a payload that does not match the model its SID
//! names) becomes [`ChannelUpdate::Skipped`]; the channel carries on. This crate does not log, so the
//! consumer decides what to do with it; an event was lost, so a consumer that keeps a picture should
//! refresh it as after a reconnect.
//!
//! # Lifetime
//!
//! The task ends when [`Channel::close`] is called (it sends a close frame first), when the [`Channel`] is
//! dropped (the task is aborted and the socket dropped), or when the receiver is dropped. It never ends on
//! its own otherwise: every failure is reported and retried.
//!
//! # TLS
//!
//! `wss://` goes through rustls with the ring provider and the webpki root certificates, the stack reqwest
//! uses in this crate, set up here rather than through tokio-tungstenite's TLS features (which default to
//! aws-lc). No proxy support: the connection goes straight to the bridge's host.
//!
//! [`EVENT_BRIDGE_URL`]: crate::token::EVENT_BRIDGE_URL

use std::error::Error as StdError;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use rand::Rng;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{timeout, Instant};
use tokio_rustls::rustls;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;
use url::Url;

use crate::models::{self, is_sid};
use crate::token::{self, WorkerCapability};

/// The largest message (and frame) accepted from the bridge. Twilio's payloads are a resource's JSON, a few
/// KiB; the cap leaves room for large attributes while bounding what a server can make this process hold.
pub const MAX_MESSAGE: usize = 1 << 20;

/// How long without any frame before the connection counts as lost: taskrouter.js v1's `interval: 60`
/// (eb §7). Twilio sends a heartbeat about every 15 s, the engine as configured.
pub const DEFAULT_LIVENESS_TIMEOUT: Duration = Duration::from_secs(60);

/// The first reconnect delay, and the floor of every one.
pub const DEFAULT_BACKOFF_MIN: Duration = Duration::from_secs(1);

/// The cap of the reconnect delay: taskrouter.js's `min(30, 2^k − 1)` seconds (eb §7).
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(30);

/// How long a TCP connect, TLS handshake and WebSocket upgrade may take together.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Updates the receiver holds before the client waits for the consumer. Events come a few at a time (a
/// reservation, an activity change); 64 absorbs a burst without letting a stuck consumer hide for long.
pub const DEFAULT_BUFFER: usize = 64;

/// How long a connection must stay up to count as healthy and reset the backoff. Twice the heartbeat
/// interval of Twilio's bridge: long enough that a connection was really working, short enough that a loss
/// after a normal session is retried quickly.
pub const HEALTHY_AFTER: Duration = Duration::from_secs(30);

/// The most a renewal is done ahead of the token's `exp` (see the module docs).
pub const RENEW_AHEAD: Duration = Duration::from_secs(60);

/// How long a close handshake may take when the client closes (on [`Channel::close`] or a renewal).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// At most this many characters of a refused upgrade's body go into a reason.
const MAX_REASON_BODY: usize = 200;

/// A token for the channel and its expiry, from a [`TokenSource`].
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    /// The capability JWT.
    pub jwt: String,
    /// Its `exp`, unix seconds on the same clock as the `now` the source was given.
    pub expires_at: u64,
}

// Never prints the JWT: it is a bearer credential.
debug_fields!(Token { expires_at });

/// Why a [`TokenSource`] could not produce a token: anything that is an error, shown in
/// [`ChannelUpdate::Disconnected`]'s reason.
pub type SourceError = Box<dyn StdError + Send + Sync>;

/// Where the client gets a token, at every connect and reconnect. `now` is [`Config::clock`]'s reading
/// (unix seconds), so a token minted with it expires on the clock the client renews by.
///
/// A [`WorkerCapability`] is a source as it is: it mints a worker token signed with the auth token. A
/// closure `FnMut(u64) -> Result<Token, SourceError>` is one too, e.g. for a token fetched from elsewhere.
pub trait TokenSource: Send + 'static {
    /// A token valid from `now`.
    fn token(&mut self, now: u64) -> Result<Token, SourceError>;
}

impl<F> TokenSource for F
where
    F: FnMut(u64) -> Result<Token, SourceError> + Send + 'static,
{
    fn token(&mut self, now: u64) -> Result<Token, SourceError> {
        self(now)
    }
}

impl TokenSource for WorkerCapability {
    fn token(&mut self, now: u64) -> Result<Token, SourceError> {
        let expires_at = self.claims(now)?.exp;
        let jwt = self.to_jwt(now)?;
        Ok(Token { jwt, expires_at })
    }
}

/// What [`Channel::open`] needs: the channel, where the bridge is, and the timings.
#[derive(Clone)]
pub struct Config {
    account_sid: String,
    channel_sid: String,
    bridge_url: String,
    liveness_timeout: Duration,
    backoff_min: Duration,
    backoff_max: Duration,
    connect_timeout: Duration,
    buffer: usize,
    /// Unix seconds. Injected so tests can run on the engine's manual clock; tokens are minted and renewed
    /// by this reading (see [`TokenSource`]).
    clock: Arc<dyn Fn() -> u64 + Send + Sync>,
}

// Leaves out the clock, which has no `Debug`.
debug_fields!(Config {
    account_sid,
    channel_sid,
    bridge_url,
    liveness_timeout,
    backoff_min,
    backoff_max,
    connect_timeout,
    buffer,
});

impl Config {
    /// The channel `channel_sid` (a worker `WK…`, task queue `WQ…` or workspace `WS…`) of `account_sid` on
    /// Twilio's bridge, with the defaults: liveness 60 s, backoff 1 s to 30 s, connect timeout 15 s, buffer
    /// 64, the system clock.
    pub fn new(account_sid: impl Into<String>, channel_sid: impl Into<String>) -> Self {
        Self {
            account_sid: account_sid.into(),
            channel_sid: channel_sid.into(),
            bridge_url: token::EVENT_BRIDGE_URL.to_owned(),
            liveness_timeout: DEFAULT_LIVENESS_TIMEOUT,
            backoff_min: DEFAULT_BACKOFF_MIN,
            backoff_max: DEFAULT_BACKOFF_MAX,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            buffer: DEFAULT_BUFFER,
            clock: Arc::new(system_now),
        }
    }

    /// The bridge's channel base, e.g. `http://127.0.0.1:8080/v1/wschannels` for the local engine; default
    /// [`token::EVENT_BRIDGE_URL`]. `http`, `https`, `ws` and `wss` are accepted; any query is dropped.
    pub fn bridge_url(mut self, url: impl Into<String>) -> Self {
        self.bridge_url = url.into();
        self
    }

    /// How long without any frame before the connection counts as lost (default 60 s).
    pub fn liveness_timeout(mut self, timeout: Duration) -> Self {
        self.liveness_timeout = timeout;
        self
    }

    /// The reconnect delay's floor and cap (defaults 1 s and 30 s). A `max` below `min` is raised to it; a
    /// zero `min` is raised to 10 ms, so no setting makes a hot loop.
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.backoff_min = min.max(Duration::from_millis(10));
        self.backoff_max = max.max(self.backoff_min);
        self
    }

    /// How long connecting (TCP, TLS, upgrade) may take before the attempt fails (default 15 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How many updates wait for the consumer before the client stops reading (default 64, at least 1).
    pub fn buffer(mut self, updates: usize) -> Self {
        self.buffer = updates.max(1);
        self
    }

    /// The clock tokens are minted and renewed by, unix seconds (default the system clock).
    pub fn clock(mut self, now: impl Fn() -> u64 + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(now);
        self
    }

    /// The channel's WebSocket URL without its query: `ws(s)://…/{AccountSid}/{ChannelSid}`.
    pub fn channel_url(&self) -> Result<Url, ConfigError> {
        if !is_sid("AC", &self.account_sid) {
            return Err(ConfigError::Sid { what: "an account SID (AC…)", value: self.account_sid.clone() });
        }
        if !["WK", "WQ", "WS"].iter().any(|p| is_sid(p, &self.channel_sid)) {
            let what = "a worker, task queue or workspace SID (WK…, WQ…, WS…)";
            return Err(ConfigError::Sid { what, value: self.channel_sid.clone() });
        }
        let bad =
            |reason: &str| ConfigError::BridgeUrl { url: self.bridge_url.clone(), reason: reason.into() };
        let mut url = Url::parse(&self.bridge_url).map_err(|e| bad(&e.to_string()))?;
        let scheme = match url.scheme() {
            "https" | "wss" => "wss",
            "http" | "ws" => "ws",
            _ => return Err(bad("the scheme must be https, http, wss or ws")),
        };
        url.set_scheme(scheme).map_err(|()| bad("the scheme cannot become a WebSocket scheme"))?;
        if url.host().is_none() {
            return Err(bad("it has no host"));
        }
        url.set_query(None);
        url.set_fragment(None);
        url.path_segments_mut()
            .map_err(|()| bad("it cannot have a path"))?
            .pop_if_empty()
            .push(&self.account_sid)
            .push(&self.channel_sid);
        Ok(url)
    }
}

fn system_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Why [`Channel::open`] refused a [`Config`]: nothing is retried, the configuration is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The bridge URL cannot be turned into the channel's WebSocket URL.
    #[error(
        "the event bridge URL {url:?} is not usable: {reason}; give its channel base, e.g. {}",
        token::EVENT_BRIDGE_URL
    )]
    BridgeUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The account or channel SID is malformed.
    #[error("{value:?} is not {what}")]
    Sid {
        /// What was expected.
        what: &'static str,
        /// What was given.
        value: String,
    },
    /// rustls refused the TLS setup (it should not: the settings are fixed).
    #[error("could not set up TLS for wss://: {0}")]
    Tls(String),
}

/// What the channel reports, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum ChannelUpdate {
    /// The socket is open (the upgrade succeeded). `reconnect` is false for the first connection of this
    /// [`Channel`] only: after a loss or a token renewal events may have been missed, so a consumer that
    /// keeps a picture rebuilds it over REST. The consumer should build it after the first one too, since
    /// events from before it were never sent.
    Connected {
        /// Not the first connection.
        reconnect: bool,
    },
    /// An event frame.
    Event(ChannelEvent),
    /// A frame that could not be read; the channel carries on. An event was lost: a consumer that keeps a
    /// picture should refresh it.
    Skipped {
        /// What was wrong with the frame.
        error: String,
    },
    /// The connection failed or was lost and the client will retry in `retry_in`. Sent once per change of
    /// state, not once per retry: when a working connection is lost (`attempt` 1, or more if it had not been
    /// up for [`HEALTHY_AFTER`]) and when a later attempt fails for another `reason`; retries that fail alike
    /// are silent until the next `Connected`. The reason never contains the token.
    Disconnected {
        /// What happened, for a log line.
        reason: String,
        /// Consecutive failed attempts, this one included.
        attempt: u32,
        /// The wait before the next attempt.
        retry_in: Duration,
    },
}

/// One `{event_type, payload}` frame.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelEvent {
    /// TaskRouter's event type, e.g. `reservation.created`, `worker.activity.update`.
    pub event_type: String,
    /// The payload as sent.
    pub payload: serde_json::Value,
    /// The payload read as the resource it is.
    pub kind: EventPayload,
}

/// An event's payload as a typed resource, by the prefix of its `sid`. Boxed: a task is large and updates
/// are moved through a channel.
#[derive(Debug, Clone, PartialEq)]
pub enum EventPayload {
    /// A worker (`WK`): `worker.activity.update`, `worker.attributes.update`.
    Worker(Box<models::Worker>),
    /// A worker channel (`WC`): `worker.capacity.update`, `worker.channel.availability.update`.
    WorkerChannel(Box<models::WorkerChannel>),
    /// A task (`WT`) with a `reservation_sid`: v1's form of a `reservation.*` event.
    Reservation {
        /// The reservation's task.
        task: Box<models::Task>,
        /// The reservation (`WR…`).
        reservation_sid: String,
    },
    /// A task (`WT`) without a `reservation_sid`: `task.*` events (queue and workspace channels).
    Task(Box<models::Task>),
    /// Anything else (a reservation, queue, workflow, … or the Event resource on a workspace channel): read
    /// [`ChannelEvent::payload`].
    Other,
}

/// What one text frame is.
#[derive(Debug)]
enum Frame {
    Heartbeat,
    Event(ChannelEvent),
    Bad(String),
}

/// Reads one text frame (pure, so the parsing is tested without a socket).
fn read_frame(text: &str) -> Frame {
    if text.trim().is_empty() {
        return Frame::Heartbeat;
    }
    let mut frame = match serde_json::from_str(text) {
        Ok(serde_json::Value::Object(frame)) => frame,
        Ok(_) => return Frame::Bad("a frame that is not a JSON object".into()),
        Err(e) => return Frame::Bad(format!("a frame that is not JSON: {e}")),
    };
    let Some(serde_json::Value::String(event_type)) = frame.remove("event_type") else {
        return Frame::Bad("a frame without an event_type string".into());
    };
    let payload = frame.remove("payload").unwrap_or_default();
    match ChannelEvent::read(event_type, payload) {
        Ok(event) => Frame::Event(event),
        Err(e) => Frame::Bad(e),
    }
}

impl ChannelEvent {
    /// The event of type `event_type` whose payload is `payload`, typed by the payload's `sid`: what a frame
    /// `{event_type, payload}` carries, for a consumer that has the two apart (an in-process channel).
    /// `Err` says what did not read.
    pub fn read(event_type: String, payload: serde_json::Value) -> Result<ChannelEvent, String> {
        match typed(&payload) {
            Ok(kind) => Ok(ChannelEvent { event_type, payload, kind }),
            Err(e) => Err(format!("{event_type} whose payload does not read: {e}")),
        }
    }
}

fn typed(payload: &serde_json::Value) -> Result<EventPayload, serde_json::Error> {
    let sid = payload.get("sid").and_then(|s| s.as_str()).unwrap_or_default();
    fn read<T: serde::de::DeserializeOwned>(
        payload: &serde_json::Value,
    ) -> Result<Box<T>, serde_json::Error> {
        T::deserialize(payload).map(Box::new)
    }
    Ok(match sid.get(..2) {
        Some("WK") => EventPayload::Worker(read(payload)?),
        Some("WC") => EventPayload::WorkerChannel(read(payload)?),
        Some("WT") => match payload.get("reservation_sid").and_then(|s| s.as_str()) {
            Some(wr) => EventPayload::Reservation { task: read(payload)?, reservation_sid: wr.to_owned() },
            None => EventPayload::Task(read(payload)?),
        },
        _ => EventPayload::Other,
    })
}

/// The delay before attempt `attempt` (1 for the first retry): uniform in `[b/2, b]` with
/// `b = min · 2^(attempt−1)` capped at `max`, and at least `min`.
fn backoff(attempt: u32, min: Duration, max: Duration, rng: &mut impl Rng) -> Duration {
    let doublings = attempt.saturating_sub(1).min(31);
    let base = min.saturating_mul(1 << doublings).min(max);
    let half = base / 2;
    let jitter = Duration::from_nanos(rng.gen_range(0..=u64::try_from(half.as_nanos()).unwrap_or(u64::MAX)));
    (half + jitter).max(min).min(max)
}

/// When to renew a token with `lifetime` left: `min(60 s, lifetime / 2)` before it expires.
fn renew_after(lifetime: Duration) -> Duration {
    lifetime - RENEW_AHEAD.min(lifetime / 2)
}

/// The handle of an open channel. Dropping it ends the channel's task at once; [`Channel::close`] ends it
/// with a close frame.
#[derive(Debug)]
pub struct Channel {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Channel {
    /// Checks `config`, spawns the channel's task on the current Tokio runtime and returns its handle and
    /// the receiver of its updates. The first connect starts at once; its outcome is the first update.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime (as `tokio::spawn` does).
    pub fn open(
        config: Config,
        tokens: impl TokenSource,
    ) -> Result<(Channel, mpsc::Receiver<ChannelUpdate>), ConfigError> {
        let url = config.channel_url()?;
        let tls = if url.scheme() == "wss" { Some(tls_connector()?) } else { None };
        let (updates, receiver) = mpsc::channel(config.buffer);
        let (stop, stopped) = oneshot::channel();
        let runner =
            Runner { config, url, tls, tokens: Box::new(tokens), updates, stopped, connected: false };
        let task = tokio::spawn(runner.run());
        Ok((Channel { stop: Some(stop), task }, receiver))
    }

    /// Closes the channel: sends a close frame if connected (waiting at most 2 s for the handshake) and waits
    /// for the task to end.
    pub async fn close(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn tls_connector() -> Result<tokio_rustls::TlsConnector, ConfigError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// A plain or TLS stream, boxed so one WebSocket type serves both.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

type Socket = WebSocketStream<Box<dyn Io>>;

/// How one connection ended.
enum End {
    /// The handle closed the channel, or the receiver is gone.
    Stop,
    /// The token is due for renewal: reconnect at once.
    Renew,
    /// The connection failed (`up_for` is `None`) or was lost after being up for `up_for`.
    Lost { reason: String, up_for: Option<Duration> },
}

/// The channel's task.
struct Runner {
    config: Config,
    /// The channel's URL without the query.
    url: Url,
    tls: Option<tokio_rustls::TlsConnector>,
    tokens: Box<dyn TokenSource>,
    updates: mpsc::Sender<ChannelUpdate>,
    stopped: oneshot::Receiver<()>,
    /// Whether a connection has been made before (for `Connected::reconnect`).
    connected: bool,
}

impl Runner {
    async fn run(mut self) {
        let mut attempt = 0u32;
        // The reason last reported while down; `None` while up.
        let mut reported: Option<String> = None;
        loop {
            let (reason, up_for) = match self.connection().await {
                End::Stop => return,
                End::Renew => {
                    attempt = 0;
                    reported = None;
                    continue;
                }
                End::Lost { reason, up_for } => (reason, up_for),
            };
            if let Some(up_for) = up_for {
                reported = None;
                if up_for >= HEALTHY_AFTER {
                    attempt = 0;
                }
            }
            attempt = attempt.saturating_add(1);
            let retry_in =
                backoff(attempt, self.config.backoff_min, self.config.backoff_max, &mut rand::thread_rng());
            if reported.as_deref() != Some(reason.as_str()) {
                reported = Some(reason.clone());
                let update = ChannelUpdate::Disconnected { reason, attempt, retry_in };
                if !self.send(update).await {
                    return;
                }
            }
            if !self.wait(tokio::time::sleep(retry_in)).await {
                return;
            }
        }
    }

    /// Runs `fut` unless the channel is closed first; `false` when it was.
    async fn wait(&mut self, fut: impl Future<Output = ()>) -> bool {
        tokio::select! {
            biased;
            _ = &mut self.stopped => false,
            () = self.updates.closed() => false,
            () = fut => true,
        }
    }

    /// Hands `update` to the consumer, waiting for room; `false` when the channel was closed meanwhile.
    async fn send(&mut self, update: ChannelUpdate) -> bool {
        tokio::select! {
            biased;
            _ = &mut self.stopped => false,
            sent = self.updates.send(update) => sent.is_ok(),
        }
    }

    /// One connection: a token, the upgrade, then frames until it ends.
    async fn connection(&mut self) -> End {
        let now = (self.config.clock)();
        let token = match self.tokens.token(now) {
            Ok(token) => token,
            Err(e) => return End::Lost { reason: format!("the token source failed: {e}"), up_for: None },
        };
        let Some(lifetime) = token.expires_at.checked_sub(now).filter(|&s| s > 0) else {
            let reason = format!(
                "the token source gave a token that has expired (exp {}, now {now}): it must mint a fresh one",
                token.expires_at
            );
            return End::Lost { reason, up_for: None };
        };
        let renew_at = Instant::now() + renew_after(Duration::from_secs(lifetime));
        let mut url = self.url.clone();
        url.query_pairs_mut().append_pair("token", &token.jwt).append_pair("closeExistingSessions", "false");
        let connect = timeout(self.config.connect_timeout, connect(&url, self.tls.as_ref()));
        let mut socket = tokio::select! {
            biased;
            _ = &mut self.stopped => return End::Stop,
            () = self.updates.closed() => return End::Stop,
            connected = connect => match connected {
                Ok(Ok(socket)) => socket,
                Ok(Err(reason)) => return End::Lost { reason, up_for: None },
                Err(_) => {
                    let reason = format!("could not connect within {:?}", self.config.connect_timeout);
                    return End::Lost { reason, up_for: None };
                }
            },
        };
        let up = Instant::now();
        let reconnect = std::mem::replace(&mut self.connected, true);
        if !self.send(ChannelUpdate::Connected { reconnect }).await {
            close(&mut socket, "closed by the client").await;
            return End::Stop;
        }
        let liveness = self.config.liveness_timeout;
        let lost = |reason: String| End::Lost { reason, up_for: Some(up.elapsed()) };
        loop {
            let message = tokio::select! {
                biased;
                _ = &mut self.stopped => {
                    close(&mut socket, "closed by the client").await;
                    return End::Stop;
                }
                () = self.updates.closed() => return End::Stop,
                () = tokio::time::sleep_until(renew_at) => {
                    close(&mut socket, "renewing the token").await;
                    return End::Renew;
                }
                message = timeout(liveness, socket.next()) => message,
            };
            let text = match message {
                Err(_) => {
                    return lost(format!("no frame from the bridge for {liveness:?} (not even a heartbeat)"))
                }
                Ok(None) => return lost("the bridge closed the connection without a close frame".into()),
                Ok(Some(Err(e))) => return lost(format!("the connection failed: {e}")),
                Ok(Some(Ok(Message::Close(frame)))) => return lost(closed_reason(frame.as_ref())),
                Ok(Some(Ok(Message::Text(text)))) => text.to_string(),
                Ok(Some(Ok(Message::Binary(bytes)))) => match String::from_utf8(bytes.to_vec()) {
                    Ok(text) => text,
                    Err(_) => {
                        let error = format!("a binary frame of {} bytes that is not UTF-8", bytes.len());
                        if !self.send(ChannelUpdate::Skipped { error }).await {
                            return End::Stop;
                        }
                        continue;
                    }
                },
                // Pings are answered by tungstenite; like pongs they only prove the connection alive.
                Ok(Some(Ok(_))) => continue,
            };
            let update = match read_frame(&text) {
                Frame::Heartbeat => continue,
                Frame::Event(event) => ChannelUpdate::Event(event),
                Frame::Bad(error) => ChannelUpdate::Skipped { error },
            };
            if !self.send(update).await {
                close(&mut socket, "closed by the client").await;
                return End::Stop;
            }
        }
    }
}

/// TCP (and TLS for `wss`), then the upgrade. The error is a reason for [`ChannelUpdate::Disconnected`]:
/// it names the host, never the URL (whose query has the token).
async fn connect(url: &Url, tls: Option<&tokio_rustls::TlsConnector>) -> Result<Socket, String> {
    let host = url.host().ok_or("the URL has no host")?;
    let port = url.port_or_known_default().ok_or("the URL has no port")?;
    let tcp = match &host {
        url::Host::Domain(name) => TcpStream::connect((*name, port)).await,
        url::Host::Ipv4(ip) => TcpStream::connect((*ip, port)).await,
        url::Host::Ipv6(ip) => TcpStream::connect((*ip, port)).await,
    }
    .map_err(|e| format!("could not connect to {host}:{port}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let stream: Box<dyn Io> = match tls {
        Some(tls) => {
            let name = match &host {
                url::Host::Domain(name) => rustls::pki_types::ServerName::try_from(name.to_string()),
                url::Host::Ipv4(ip) => Ok(rustls::pki_types::ServerName::from(std::net::IpAddr::V4(*ip))),
                url::Host::Ipv6(ip) => Ok(rustls::pki_types::ServerName::from(std::net::IpAddr::V6(*ip))),
            }
            .map_err(|e| format!("{host} is not a TLS server name: {e}"))?;
            let stream =
                tls.connect(name, tcp).await.map_err(|e| format!("TLS with {host}:{port} failed: {e}"))?;
            Box::new(stream)
        }
        None => Box::new(tcp),
    };
    let config =
        WebSocketConfig::default().max_message_size(Some(MAX_MESSAGE)).max_frame_size(Some(MAX_MESSAGE));
    match tokio_tungstenite::client_async_with_config(url.as_str(), stream, Some(config)).await {
        Ok((socket, _)) => Ok(socket),
        Err(tungstenite::Error::Http(response)) => {
            Err(refused_reason(response.status().as_u16(), response.body().as_deref().unwrap_or_default()))
        }
        Err(e) => Err(format!("the WebSocket upgrade with {host}:{port} failed: {e}")),
    }
}

/// The reason for an upgrade answered with `status` and `body` instead of 101.
fn refused_reason(status: u16, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
        .unwrap_or_else(|| text.trim().chars().take(MAX_REASON_BODY).collect());
    let message = if message.is_empty() { String::new() } else { format!(": {message}") };
    match status {
        401 | 403 => format!("the bridge refused the token (HTTP {status}){message}"),
        _ => format!("the bridge answered HTTP {status} instead of upgrading{message}"),
    }
}

/// The reason for a close frame from the bridge, with the engine's codes spelled out.
fn closed_reason(frame: Option<&CloseFrame>) -> String {
    let Some(frame) = frame else {
        return "the bridge closed the connection".into();
    };
    let code = u16::from(frame.code);
    let what = match code {
        4001 => "the token expired",
        4002 => "a newer session of this channel replaced it",
        4003 => "it fell behind the event stream",
        1011 => "the bridge is stopping",
        _ => "",
    };
    match (what, frame.reason.as_str()) {
        ("", "") => format!("the bridge closed the connection ({code})"),
        ("", reason) => format!("the bridge closed the connection ({code}: {reason})"),
        (what, "") => format!("the bridge closed the connection: {what} ({code})"),
        (what, reason) => format!("the bridge closed the connection: {what} ({code}: {reason})"),
    }
}

/// Closes `socket` with a normal close frame, waiting a bounded time for the handshake.
async fn close(socket: &mut Socket, reason: &str) {
    let frame = CloseFrame { code: CloseCode::Normal, reason: reason.to_owned().into() };
    let _ = timeout(CLOSE_TIMEOUT, async {
        if socket.send(Message::Close(Some(frame))).await.is_ok() {
            // Until the server's close frame (or the end): the handshake completes.
            while let Some(Ok(_)) = socket.next().await {}
        }
    })
    .await;
}

#[cfg(test)]
mod tests;
