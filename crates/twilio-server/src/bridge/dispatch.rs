//! One subscriber of the engine's durable event stream for the whole bridge, handing each event only to the
//! channels it may concern.
//!
//! Each channel used to hold its own subscription to the stream, so every event woke every channel, to be
//! dropped by all but one or two: with 1,000 connected channels a task's five or so events cost 5,000
//! wake-ups, 2.1 ms of CPU per task, and that grows with every channel (docs/PERFORMANCE.md, "One reader of
//! the event stream for the bridge's channels").
//! Here one task reads the stream and routes each event by the SIDs it names to the channels subscribed
//! under them; a channel still decides for itself what it sends (its `concern`), so routing only has to be
//! generous enough never to withhold an event a channel could want.
//!
//! A channel subscribes under keys: a worker's channel (v2 or v1) under the worker, a v1 task queue channel
//! under the queue, a v1 workspace channel under the workspace. An event reaches a key when it names it: its
//! workspace, its resource, or its `WorkerSid` or `TaskQueueSid` field. A task's events name no worker, so
//! the dispatcher keeps which workers hold a reservation of each task (read from the engine when it starts,
//! and again after it fell behind the stream and so missed reservation events; kept from reservation events
//! meanwhile, dropped when the task is deleted) and a `task.*` event reaches those workers too: the tasks a
//! v2 channel follows (eb §3.3).
//!
//! Ordering is the stream's own: a subscription takes effect after every event already broadcast has been
//! routed, and the channel waits for that before reading its snapshot, as it waited for its own subscription
//! before. A channel that falls [`BACKLOG`] events behind, or all of them when the dispatcher itself falls
//! behind the stream, is dropped and told so ([`Ended::Behind`]): it closes, and the SDK reconnects and
//! fetches everything again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use engine::{Event, Sid};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::Engine;

/// Events a channel may have waiting before it counts as fallen behind. A channel gets only its own events,
/// a handful per task, so this is far more than a live client ever has queued.
pub(super) const BACKLOG: usize = 256;

/// Why a subscription ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ended {
    /// The channel, or the dispatcher, fell behind the stream: events were lost.
    Behind,
    /// The engine stopped.
    Stopped,
}

/// What the dispatcher is asked. A subscription is acknowledged once in force.
enum Request {
    Subscribe {
        id: u64,
        keys: Vec<Sid>,
        sender: mpsc::Sender<Arc<Event>>,
        behind: Arc<AtomicBool>,
        ack: oneshot::Sender<()>,
    },
    Unsubscribe(u64),
}

/// The dispatcher as the bridge holds it: where to send requests.
pub(super) struct Dispatch {
    requests: mpsc::UnboundedSender<Request>,
    next: AtomicU64,
}

impl Dispatch {
    /// Starts the dispatcher over `engine`'s durable stream.
    pub(super) fn start(engine: Engine) -> Dispatch {
        let (requests, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(engine, rx));
        Dispatch { requests, next: AtomicU64::new(0) }
    }

    /// Subscribes under `keys`; resolves once every event broadcast so far has been routed without it.
    pub(super) async fn subscribe(&self, keys: Vec<Sid>) -> Subscription {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (sender, events) = mpsc::channel(BACKLOG);
        let behind = Arc::new(AtomicBool::new(false));
        let (ack, acked) = oneshot::channel();
        let request = Request::Subscribe { id, keys, sender, behind: behind.clone(), ack };
        // A dispatcher that is gone drops the sender: the subscription ends at once as stopped.
        let _ = self.requests.send(request);
        let _ = acked.await;
        Subscription { id, events, behind, requests: self.requests.clone() }
    }
}

/// A channel's share of the stream. Unsubscribes when dropped.
pub(super) struct Subscription {
    id: u64,
    events: mpsc::Receiver<Arc<Event>>,
    behind: Arc<AtomicBool>,
    requests: mpsc::UnboundedSender<Request>,
}

impl Subscription {
    /// The next event routed to this channel.
    pub(super) async fn recv(&mut self) -> Result<Arc<Event>, Ended> {
        match self.events.recv().await {
            Some(event) => Ok(event),
            None if self.behind.load(Ordering::Relaxed) => Err(Ended::Behind),
            None => Err(Ended::Stopped),
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let _ = self.requests.send(Request::Unsubscribe(self.id));
    }
}

/// A subscribed channel, as the dispatcher holds it.
struct Subscriber {
    keys: Vec<Sid>,
    sender: mpsc::Sender<Arc<Event>>,
    behind: Arc<AtomicBool>,
}

/// The dispatcher's state: subscribers by key, and the workers holding a reservation of each task.
#[derive(Default)]
struct Routes {
    subscribers: HashMap<u64, Subscriber>,
    by_key: HashMap<Sid, Vec<u64>>,
    task_workers: HashMap<Sid, Vec<Sid>>,
    /// `task_workers` must be read from the engine again: at the start, and after events were lost.
    relearn: bool,
    /// The engine stopped: new subscriptions end at once.
    stopped: bool,
}

impl Routes {
    fn add(&mut self, id: u64, keys: Vec<Sid>, sender: mpsc::Sender<Arc<Event>>, behind: Arc<AtomicBool>) {
        if self.stopped {
            return;
        }
        for key in &keys {
            self.by_key.entry(*key).or_default().push(id);
        }
        self.subscribers.insert(id, Subscriber { keys, sender, behind });
    }

    fn remove(&mut self, id: u64) {
        let Some(subscriber) = self.subscribers.remove(&id) else { return };
        for key in subscriber.keys {
            if let Some(ids) = self.by_key.get_mut(&key) {
                ids.retain(|other| *other != id);
                if ids.is_empty() {
                    self.by_key.remove(&key);
                }
            }
        }
    }

    fn learn(&mut self, task: Sid, worker: Sid) {
        let workers = self.task_workers.entry(task).or_default();
        if !workers.contains(&worker) {
            workers.push(worker);
        }
    }

    /// Hands `event` to every channel subscribed under a SID it names.
    fn route(&mut self, event: &Arc<Event>) {
        let name = event.event_type.as_str();
        let field = |name: &str| event.field(name).and_then(|s| Sid::parse(s).ok());
        if name.starts_with("reservation.") {
            if let (Some(task), Some(worker)) = (field("TaskSid"), field("WorkerSid")) {
                self.learn(task, worker);
            }
        }
        let mut keys = vec![event.workspace_sid, event.resource_sid];
        keys.extend(field("WorkerSid"));
        keys.extend(field("TaskQueueSid"));
        if name.starts_with("task.") {
            keys.extend(self.task_workers.get(&event.resource_sid).into_iter().flatten().copied());
        }
        let mut ids: Vec<u64> = keys.iter().filter_map(|k| self.by_key.get(k)).flatten().copied().collect();
        ids.sort_unstable();
        ids.dedup();
        for id in ids {
            let Some(subscriber) = self.subscribers.get(&id) else { continue };
            match subscriber.sender.try_send(event.clone()) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    subscriber.behind.store(true, Ordering::Relaxed);
                    self.remove(id);
                }
                Err(mpsc::error::TrySendError::Closed(_)) => self.remove(id),
            }
        }
        if matches!(name, "task.deleted" | "task.system-deleted") {
            self.task_workers.remove(&event.resource_sid);
        }
    }

    /// Ends every subscription, as fallen behind or because the engine stopped.
    fn end_all(&mut self, why: Ended) {
        for (_, subscriber) in self.subscribers.drain() {
            subscriber.behind.store(why == Ended::Behind, Ordering::Relaxed);
        }
        self.by_key.clear();
        self.stopped |= why == Ended::Stopped;
        if why == Ended::Behind {
            // The lost events may have reserved tasks for workers: who holds what is read anew.
            self.task_workers.clear();
            self.relearn = true;
        }
    }

    /// Routes what the stream already holds.
    fn drain(&mut self, events: &mut broadcast::Receiver<Arc<Event>>) {
        loop {
            match events.try_recv() {
                Ok(event) => self.route(&event),
                Err(TryRecvError::Empty) => return,
                Err(TryRecvError::Lagged(_)) => self.end_all(Ended::Behind),
                Err(TryRecvError::Closed) => return self.end_all(Ended::Stopped),
            }
        }
    }
}

/// Reads from the engine which workers hold a reservation of each task now; the reservation events
/// broadcast after the stream was subscribed keep it from there.
async fn learn_holders(engine: &Engine, routes: &mut Routes) {
    let held = engine.handle().read(|s| {
        let core = &s.core;
        let mut held = Vec::new();
        for ws in core.workspaces(None) {
            for worker in core.workers(ws.sid, &Default::default()).unwrap_or_default() {
                for r in core.worker_reservations(ws.sid, worker.sid, None).unwrap_or_default() {
                    held.push((r.task_sid, worker.sid));
                }
            }
        }
        held
    });
    match held.await {
        Ok(held) => held.into_iter().for_each(|(task, worker)| routes.learn(task, worker)),
        Err(_) => routes.end_all(Ended::Stopped),
    }
}

async fn run(engine: Engine, mut requests: mpsc::UnboundedReceiver<Request>) {
    let mut events = engine.subscribe();
    let mut routes = Routes { relearn: true, ..Routes::default() };
    loop {
        if std::mem::take(&mut routes.relearn) && !routes.stopped {
            learn_holders(&engine, &mut routes).await;
        }
        tokio::select! {
            request = requests.recv() => match request {
                Some(Request::Subscribe { id, keys, sender, behind, ack }) => {
                    // What was broadcast before this request goes to the channels there were before it.
                    routes.drain(&mut events);
                    routes.add(id, keys, sender, behind);
                    let _ = ack.send(());
                }
                Some(Request::Unsubscribe(id)) => routes.remove(id),
                None => return,
            },
            event = events.recv(), if !routes.stopped => match event {
                Ok(event) => routes.route(&event),
                Err(RecvError::Lagged(_)) => routes.end_all(Ended::Behind),
                Err(RecvError::Closed) => routes.end_all(Ended::Stopped),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::event::{EventData, Field};
    use engine::{EventType, Prefix, Timestamp};

    fn sid(prefix: Prefix, n: u128) -> Sid {
        Sid::new(prefix, n)
    }

    /// An event of workspace 1 about `resource`, with `fields`.
    fn event(name: &str, resource: Sid, fields: &[(Field, Sid)]) -> Arc<Event> {
        let mut data = EventData::with_capacity(fields.len(), 0);
        for (field, value) in fields {
            data.sid(*field, *value);
        }
        let kind = EventType::parse(name).unwrap();
        let at = Timestamp::from_secs(1_700_000_000);
        let ws = sid(Prefix::Workspace, 1);
        Arc::new(Event::new(1, sid(Prefix::Event, 1), kind, at, ws, "test", resource, data))
    }

    fn subscribe(routes: &mut Routes, id: u64, key: Sid) -> (mpsc::Receiver<Arc<Event>>, Arc<AtomicBool>) {
        let (sender, events) = mpsc::channel(BACKLOG);
        let behind = Arc::new(AtomicBool::new(false));
        routes.add(id, vec![key], sender, behind.clone());
        (events, behind)
    }

    fn got(events: &mut mpsc::Receiver<Arc<Event>>) -> Vec<&'static str> {
        std::iter::from_fn(|| events.try_recv().ok()).map(|e| e.event_type.as_str()).collect()
    }

    #[test]
    fn events_reach_the_channels_they_name_and_a_tasks_reach_its_workers() {
        let mut routes = Routes::default();
        let (a, b, queue) = (sid(Prefix::Worker, 1), sid(Prefix::Worker, 2), sid(Prefix::TaskQueue, 1));
        let (task, other_task) = (sid(Prefix::Task, 1), sid(Prefix::Task, 2));
        let (mut to_a, _) = subscribe(&mut routes, 1, a);
        let (mut to_b, _) = subscribe(&mut routes, 2, b);
        let (mut to_queue, _) = subscribe(&mut routes, 3, queue);
        let (mut to_workspace, _) = subscribe(&mut routes, 4, sid(Prefix::Workspace, 1));

        routes.route(&event("task.created", task, &[(Field::TaskQueueSid, queue)]));
        let reservation = sid(Prefix::Reservation, 1);
        let fields = [(Field::TaskSid, task), (Field::WorkerSid, a), (Field::TaskQueueSid, queue)];
        routes.route(&event("reservation.created", reservation, &fields));
        routes.route(&event("worker.activity.update", b, &[]));
        routes.route(&event("task.updated", task, &[]));
        routes.route(&event("task.updated", other_task, &[]));
        routes.route(&event("task.deleted", task, &[]));
        routes.route(&event("task.updated", task, &[]));

        assert_eq!(got(&mut to_a), ["reservation.created", "task.updated", "task.deleted"]);
        assert_eq!(got(&mut to_b), ["worker.activity.update"]);
        assert_eq!(got(&mut to_queue), ["task.created", "reservation.created"]);
        assert_eq!(got(&mut to_workspace).len(), 7, "the workspace's channel gets everything");
    }

    #[test]
    fn a_channel_that_falls_behind_is_dropped_and_told_and_unsubscribing_forgets_it() {
        let mut routes = Routes::default();
        let a = sid(Prefix::Worker, 1);
        let (mut to_a, behind) = subscribe(&mut routes, 1, a);
        for _ in 0..=BACKLOG {
            routes.route(&event("worker.attributes.update", a, &[]));
        }
        assert!(behind.load(Ordering::Relaxed));
        assert!(routes.subscribers.is_empty() && routes.by_key.is_empty());
        assert!(!routes.relearn, "one channel behind loses the dispatcher nothing");
        assert_eq!(got(&mut to_a).len(), BACKLOG);
        assert!(to_a.try_recv().is_err(), "the sender is gone: the channel sees the end");

        let (_to_b, _) = subscribe(&mut routes, 2, a);
        routes.remove(2);
        assert!(routes.subscribers.is_empty() && routes.by_key.is_empty());
        routes.end_all(Ended::Stopped);
        assert!(!routes.relearn, "a stop asks nothing of an engine that is gone");
        let (mut late, behind) = subscribe(&mut routes, 3, a);
        assert!(
            late.try_recv().is_err() && !behind.load(Ordering::Relaxed),
            "after a stop, nothing subscribes"
        );
    }

    #[test]
    fn a_dispatcher_behind_the_stream_forgets_who_holds_each_task_and_reads_it_again() {
        let mut routes = Routes::default();
        let (a, task) = (sid(Prefix::Worker, 1), sid(Prefix::Task, 1));
        let (_to_a, behind) = subscribe(&mut routes, 1, a);
        let fields = [(Field::TaskSid, task), (Field::WorkerSid, a)];
        routes.route(&event("reservation.created", sid(Prefix::Reservation, 1), &fields));
        assert_eq!(routes.task_workers[&task], [a]);

        routes.end_all(Ended::Behind);
        assert!(behind.load(Ordering::Relaxed));
        assert!(routes.task_workers.is_empty(), "what it knew may be wrong after lost events");
        assert!(routes.relearn, "the dispatcher reads the holders from the engine before its next event");
    }
}
