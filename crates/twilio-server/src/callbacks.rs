//! Event callback delivery: every engine event is POSTed, form-encoded and signed with `X-Twilio-Signature`,
//! to its workspace's `EventCallbackUrl`, filtered by the workspace's `EventsFilter`.
//!
//! Shape: one dispatcher task follows the engine's event broadcast and hands each event to its workspace's
//! sender task through a bounded queue. A sender posts its events one at a time, in the order the engine
//! produced them, retrying a failed post (transport error, timeout or non-2xx answer) with exponential
//! backoff before moving to the next one, so a receiver sees a workspace's events in order.
//!
//! Routing is never slowed down: the engine publishes on a broadcast channel that never waits for readers,
//! and the dispatcher never waits for a sender. Drop policy, logged with `tracing::warn!` each time:
//! - when a workspace's queue is full (its receiver is down or slow), the new event is dropped;
//! - when the dispatcher falls behind the broadcast (`Lagged`), the skipped events are lost;
//! - after [`Options::max_attempts`] failed posts, the event is given up.
//!
//! The workspace's callback URL and filter are cached and refreshed whenever a `workspace.*` event passes, so
//! an update takes effect from the events that follow it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use engine::Sid;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

use super::auth::Credentials;
use super::page::encode_component;
use engine::event::Event;

use super::handle::Engine;

/// Tunables of delivery.
#[derive(Debug, Clone)]
pub struct Options {
    /// Events waiting per workspace before new ones are dropped.
    pub queue_capacity: usize,
    /// Posts of one event before it is given up (first try included).
    pub max_attempts: u32,
    /// Wait before the first retry; doubles after every failure.
    pub backoff: Duration,
    /// Longest wait between retries.
    pub max_backoff: Duration,
    /// How long one post may take (Twilio gives receivers 15 s).
    pub timeout: Duration,
    /// Where deliveries, failures and drops are counted (for `/metrics`).
    pub stats: Arc<DeliveryStats>,
}

/// Counters of callback delivery, shared with whoever reports them. Relaxed atomics: one add per post.
#[derive(Debug, Default)]
pub struct DeliveryStats {
    delivered: AtomicU64,
    failed_attempts: AtomicU64,
    given_up: AtomicU64,
    dropped: AtomicU64,
}

/// The values of [`DeliveryStats`] at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeliveryCounts {
    /// Posts answered with a 2xx.
    pub delivered: u64,
    /// Posts that failed (transport error, timeout, non-2xx); every retry counts.
    pub failed_attempts: u64,
    /// Events abandoned after [`Options::max_attempts`] failed posts.
    pub given_up: u64,
    /// Events never posted: a workspace's queue was full, or the dispatcher fell behind the engine.
    pub dropped: u64,
}

impl DeliveryStats {
    /// Counts a post answered with a 2xx.
    pub fn count_delivered(&self) {
        self.delivered.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a post that failed.
    pub fn count_failed_attempt(&self) {
        self.failed_attempts.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a callback abandoned after its last attempt.
    pub fn count_given_up(&self) {
        self.given_up.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts callbacks never posted.
    pub fn count_dropped(&self, n: u64) {
        self.dropped.fetch_add(n, Ordering::Relaxed);
    }

    /// The current counts.
    pub fn snapshot(&self) -> DeliveryCounts {
        DeliveryCounts {
            delivered: self.delivered.load(Ordering::Relaxed),
            failed_attempts: self.failed_attempts.load(Ordering::Relaxed),
            given_up: self.given_up.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            queue_capacity: 10_000,
            max_attempts: 6,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            timeout: Duration::from_secs(15),
            stats: Arc::default(),
        }
    }
}

/// Starts delivery for every event published from now on. Runs until the engine's broadcast closes.
pub fn spawn(engine: Engine, credentials: Credentials, options: Options) -> JoinHandle<()> {
    let events = engine.subscribe();
    tokio::spawn(dispatch(engine, events, Arc::new(credentials), options))
}

/// Where a workspace's events go, as last read from the engine.
#[derive(Debug, Clone, Default)]
struct Target {
    url: Option<String>,
    filter: Option<Vec<String>>,
}

impl Target {
    fn wants(&self, event_type: &str) -> bool {
        self.url.as_deref().is_some_and(|u| !u.is_empty())
            && self.filter.as_ref().is_none_or(|f| f.iter().any(|t| t == event_type))
    }
}

async fn target(engine: &Engine, ws: Sid) -> Target {
    match engine.workspace(ws).await {
        Ok(w) => Target {
            url: w.event_callback_url,
            filter: w
                .events_filter
                .filter(|f| !f.trim().is_empty())
                .map(|f| f.split(',').map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()).collect()),
        },
        Err(_) => Target::default(),
    }
}

struct Post {
    url: String,
    event: Arc<Event>,
}

/// The §9.2 form fields of an event: the base fields, then the event's own.
pub fn event_fields(account_sid: &str, event: &Event) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = vec![
        ("EventType".into(), event.event_type.as_str().into()),
        ("AccountSid".into(), account_sid.into()),
        ("WorkspaceSid".into(), event.workspace_sid.to_string()),
        ("WorkspaceName".into(), event.workspace_name().into()),
        ("EventDescription".into(), event.description().into()),
        ("ResourceType".into(), event.resource_type.into()),
        ("ResourceSid".into(), event.resource_sid.to_string()),
        ("Sid".into(), event.sid.to_string()),
        ("Timestamp".into(), event.at.secs().to_string()),
        ("TimestampMs".into(), event.at.millis().to_string()),
    ];
    for (name, value) in event.fields() {
        if !fields.iter().any(|(n, _)| n == name) {
            fields.push(((*name).into(), value.clone()));
        }
    }
    fields
}

async fn dispatch(
    engine: Engine,
    mut events: broadcast::Receiver<Arc<Event>>,
    credentials: Arc<Credentials>,
    options: Options,
) {
    let client = match reqwest::Client::builder().timeout(options.timeout).build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "event callbacks are disabled: cannot build the HTTP client");
            return;
        }
    };
    let mut targets: HashMap<Sid, Target> = HashMap::new();
    let mut senders: HashMap<Sid, mpsc::Sender<Post>> = HashMap::new();
    loop {
        let event = match events.recv().await {
            Ok(e) => e,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                options.stats.dropped.fetch_add(n, Ordering::Relaxed);
                tracing::warn!(
                    skipped = n,
                    "event callbacks fell behind the engine; {n} events were not delivered"
                );
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let ws = event.workspace_sid;
        let event_type = event.event_type.as_str();
        if event_type.starts_with("workspace.") {
            targets.remove(&ws);
        }
        let target = match targets.get(&ws) {
            Some(t) => t.clone(),
            None => {
                let t = target(&engine, ws).await;
                targets.insert(ws, t.clone());
                t
            }
        };
        if !target.wants(event_type) {
            continue;
        }
        let Some(url) = target.url else { continue };
        let sender = senders.entry(ws).or_insert_with(|| {
            let (tx, rx) = mpsc::channel(options.queue_capacity.max(1));
            tokio::spawn(send_loop(rx, client.clone(), credentials.clone(), options.clone()));
            tx
        });
        if let Err(e) = sender.try_send(Post { url, event }) {
            options.stats.dropped.fetch_add(1, Ordering::Relaxed);
            let dropped = match &e {
                mpsc::error::TrySendError::Full(p) | mpsc::error::TrySendError::Closed(p) => p.event.clone(),
            };
            tracing::warn!(
                workspace = %ws,
                event_type = %dropped.event_type.as_str(),
                seq = dropped.seq,
                "event callback dropped: the workspace's delivery queue is full (is its EventCallbackUrl down?)"
            );
        }
    }
}

/// The form body of an event.
pub fn form_body(fields: &[(String, String)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", encode_component(k), encode_component(v)))
        .collect::<Vec<_>>()
        .join("&")
}

async fn send_loop(
    mut rx: mpsc::Receiver<Post>,
    client: reqwest::Client,
    credentials: Arc<Credentials>,
    options: Options,
) {
    while let Some(post) = rx.recv().await {
        let fields = event_fields(&credentials.account_sid, &post.event);
        let signature = twilio::signature::sign(&credentials.auth_token, &post.url, &fields);
        let body = form_body(&fields);
        let mut wait = options.backoff;
        for attempt in 1..=options.max_attempts.max(1) {
            let result = client
                .post(&post.url)
                .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(twilio::signature::HEADER, &signature)
                .body(body.clone())
                .send()
                .await;
            let failure = match result {
                Ok(r) if r.status().is_success() => None,
                Ok(r) => Some(format!("the receiver answered {}", r.status())),
                Err(e) => Some(e.to_string()),
            };
            let Some(failure) = failure else {
                options.stats.delivered.fetch_add(1, Ordering::Relaxed);
                break;
            };
            options.stats.failed_attempts.fetch_add(1, Ordering::Relaxed);
            if attempt == options.max_attempts.max(1) {
                options.stats.given_up.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    url = %post.url, event_type = %post.event.event_type.as_str(), seq = post.event.seq, %failure,
                    "event callback given up after {attempt} attempts"
                );
                break;
            }
            tracing::debug!(url = %post.url, attempt, %failure, "event callback failed; retrying");
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(options.max_backoff);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_and_url_decide_what_is_sent() {
        let none = Target::default();
        assert!(!none.wants("task.created"));
        let all = Target { url: Some("http://x/cb".into()), filter: None };
        assert!(all.wants("task.created"));
        let some = Target { url: Some("http://x/cb".into()), filter: Some(vec!["task.created".into()]) };
        assert!(some.wants("task.created"));
        assert!(!some.wants("worker.activity.update"));
    }

    #[test]
    fn body_is_form_encoded() {
        let fields = vec![("EventType".to_owned(), "task.created".to_owned()), ("A".into(), "x y&z".into())];
        assert_eq!(form_body(&fields), "EventType=task.created&A=x+y%26z");
    }
}
