//! The actor that owns the engine: one thread applies commands to the [`Core`] in order, fires its timers,
//! makes every change durable before acknowledging it, and publishes events.
//!
//! Why a dedicated OS thread rather than a Tokio task: the core is CPU-bound and synchronous, so a thread of
//! its own keeps routing latency independent of the HTTP runtime's scheduling, and `recv_timeout` gives the
//! timer wheel for free. Callers stay async: replies travel on Tokio oneshots, events on a broadcast channel,
//! both of which work from any thread.
//!
//! Ordering and durability: commands are applied in arrival order. The changes of everything applied in one
//! pass over the queue go to the store as one batch; the replies and the events of that pass are released
//! only when the store reports the batch durable (group commit), so no client ever sees an acknowledgement
//! or an event that a crash could take back.
//!
//! One exception, for in-process views only: [`Handle::subscribe_applied`] hands out each event as soon as its
//! change is applied, before it is durable. Reads ([`Handle::read`]) already see applied state at that moment,
//! so such a subscriber learns nothing a read would not show; it is for live displays (the worker page's
//! socket), which then show a call one disk sync sooner. Acknowledgements, callbacks to other systems and
//! [`Handle::subscribe`] keep waiting for the disk.
//!
//! # When a write fails
//!
//! A change is applied in memory before it is written, so when the store cannot write it (disk full,
//! read-only, I/O error) memory is ahead of disk, and the passes applied after it were built on it. The
//! store then refuses every later batch until told to resume (its batches on disk are always a prefix of
//! those submitted), so nothing built on the lost change reaches the disk, and every pass it refuses fails
//! its commands: none of them is acknowledged. The actor, at its next message (or timer), stops applying,
//! drops its state and reloads it from the store with the restore that runs at start ([`open`]: records,
//! indexes, timers, recent events), then lets the store resume and goes on with the queue. So reads never
//! show the refused change once its command has been answered (the answer is sent after the failure is
//! flagged, and a read sent after it is taken after the reload), and once the operator frees space the
//! engine works again without a restart.
//!
//! Why reload instead of undoing the change in memory: the core keeps no undo log, and keeping one would
//! cost every command work (copies of what it changes) on the hot path for a rare fault; reloading costs
//! nothing until a write fails, and reuses the restore every start already exercises. What it costs: the
//! reload takes as long as a start (seconds for millions of tasks), during which commands wait. The success
//! path gains nothing but one epoch number per pass; the per-message check was there before (one atomic
//! load).
//!
//! If the reload itself fails (the disk cannot even be read, or what is on it does not load), memory
//! cannot be made to agree with disk: the actor refuses every request ([`Error::Halted`]) until it is
//! stopped, and [`Stats::poisoned`] says so.
//!
//! Time: the actor reads its injected [`Clock`]. With a [`crate::ManualClock`] timers fire only when a test
//! moves the clock and calls [`Handle::tick`]; nothing in the tests waits for real time.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, oneshot};

use crate::core::{Core, CoreConfig, Reply};
use crate::store::{ErrorKind, Store, StoreError, Value, Write};
use crate::{Clock, Command, Event, SequentialSids, Sid, SidGen, Timestamp};

/// How long retained events are kept, as Twilio does: 30 days.
const EVENT_RETENTION_MS: i64 = 30 * 24 * 60 * 60 * 1000;

/// Why a call to the actor failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The engine refused the command; nothing changed.
    #[error(transparent)]
    Engine(#[from] crate::Error),
    /// The change could not be written to disk (or was built on one that could not), so it was not
    /// acknowledged, and the engine reloaded its state from disk: nothing of it remains. The kind
    /// ([`StoreError::kind`]) tells a disk that refused (full, read-only, I/O error: the same request
    /// succeeds once the operator has fixed it, without a restart) from a damaged store or a bug. The
    /// message names no file, so it can go to a client; the [`StoreError`] does, for the server's log.
    #[error("the engine could not save the change: {}; nothing was changed", describe(.0.kind()))]
    Store(StoreError),
    /// After a failed write the engine could not reload its state from disk, so it refuses every request
    /// until restarted. The text says why and names the files: for the server's log, not for clients.
    #[error(
        "the engine could not reload its state after a failed write, so it refuses every request; fix the \
         data directory's disk, then restart trworker"
    )]
    Halted(Arc<str>),
    /// The engine has stopped (shutdown or a fatal store error).
    #[error("the engine has stopped; restart trworker")]
    Stopped,
}

/// What a store failure was, in words for a client: no file names, no SQLite codes.
fn describe(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Full => "its disk is full",
        ErrorKind::ReadOnly => "its data directory is read-only",
        ErrorKind::Io => "its disk reported an I/O error",
        ErrorKind::Corrupt => "its database is damaged",
        ErrorKind::Other => "its store failed",
    }
}

/// What the read-only closures of [`Handle::read`] see.
pub struct State {
    /// The routing state.
    pub core: Core,
    /// The most recent events, oldest first, up to [`Options::event_memory`] of them. The Events resource and
    /// reconnecting subscribers read from here; the store keeps 30 days.
    pub events: VecDeque<Arc<Event>>,
}

/// Tunables of the actor.
#[derive(Debug, Clone)]
pub struct Options {
    /// Events kept in memory for reads and catch-up.
    pub event_memory: usize,
    /// Capacity of the broadcast channel; a subscriber that falls further behind gets `Lagged` and must
    /// catch up from [`Handle::events_after`].
    pub broadcast_capacity: usize,
    /// The most commands one pass applies before it hands their changes to the store (at least 1). See
    /// [`PASS_COMMANDS`], the default.
    pub pass_commands: usize,
}

/// How many commands a pass applies, at most, before handing their changes to the store.
///
/// A pass used to take everything queued. Under steady load that made the work move in one wave: every
/// request in flight reached the actor at about the same time, one long pass applied them all, the store
/// could not start writing until that pass ended, and every reply waited for the one commit that followed,
/// while the HTTP threads (and the clients) had nothing to do. A profile of the task-create benchmark showed
/// one CPU idle for the whole commit of each wave: 15-21% of the machine idle.
///
/// Bounded passes turn the wave into a pipeline: the store starts on the first commands while the actor
/// applies the next ones, and their replies go out while the rest are written. The store still groups
/// whatever passes queue up behind a commit, so this does not make commits smaller when the disk is the
/// bottleneck; it only stops a commit waiting for a long pass. With 64 connections creating tasks, 32 left
/// 9-13% of the machine idle and gave 3-20% more creates per second in eight alternating pairs; 8 was
/// slower (more commits, more context switches), and 64 left as much idle time as no bound; with 16 or 256
/// connections 32 made no difference (docs/PERFORMANCE.md, "Group commit, and engine passes of at most 32
/// commands"). Reads, ticks and flushes are not counted: they write nothing.
pub const PASS_COMMANDS: usize = 32;

impl Default for Options {
    fn default() -> Self {
        Options { event_memory: 100_000, broadcast_capacity: 16_384, pass_commands: PASS_COMMANDS }
    }
}

/// A read: given the state, or the reason the engine refuses (see [`Error::Halted`]).
type ReadFn = Box<dyn FnOnce(Result<&State, Error>) + Send>;
type ReplyTx = oneshot::Sender<Result<Reply, Error>>;
type SeedTx = oneshot::Sender<Result<Sid, Error>>;

// A message is moved once, through the channel; a 256-byte move is cheaper than boxing every command.
#[allow(clippy::large_enum_variant)]
enum Msg {
    Apply(Command, ReplyTx),
    SeedDemo(SeedTx),
    Read(ReadFn),
    Tick(oneshot::Sender<()>),
    /// Recent events loaded from disk at start, for the in-memory log.
    Restore(VecDeque<Arc<Event>>),
    Flush(oneshot::Sender<Result<(), Error>>),
    Stop(oneshot::Sender<Result<(), Error>>),
}

/// A cheap, cloneable handle to the running engine.
#[derive(Clone)]
pub struct Handle {
    tx: mpsc::Sender<Msg>,
    events: broadcast::Sender<Arc<Event>>,
    applied: broadcast::Sender<Arc<Event>>,
    clock: Arc<dyn Clock>,
    gauges: Arc<Gauges>,
}

/// Depths the actor keeps up to date for monitoring: two relaxed atomic operations per message, nothing more.
#[derive(Default)]
struct Gauges {
    /// Messages sent to the actor and not yet taken from its mailbox.
    mailbox: AtomicUsize,
    /// Batches handed to the store and not yet durable.
    unsaved_batches: AtomicUsize,
    /// Set by the actor when it could not reload its state after a failed write.
    poisoned: AtomicBool,
}

/// A point-in-time view of the actor's queues, for health checks and metrics ([`Handle::stats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Commands and reads waiting in the actor's mailbox.
    pub mailbox: usize,
    /// Batches of changes on their way to disk (their replies wait for them).
    pub unsaved_batches: usize,
    /// A write to disk failed and the engine could not reload its state from disk: it refuses every request
    /// until restarted. (A failed write alone does not set this: the engine reloads and goes on.)
    pub poisoned: bool,
}

impl Handle {
    /// Starts the actor thread around `core`. With a `store`, every acknowledged change is durable first, and
    /// `core` must hold what the store holds: after a failed write the actor rebuilds the core from the store
    /// (with `core`'s account, configuration and SID generator).
    pub fn start(core: Core, store: Option<Store>, clock: Arc<dyn Clock>, options: Options) -> Handle {
        let (tx, rx) = mpsc::channel();
        let (events, _) = broadcast::channel(options.broadcast_capacity.max(1));
        let (applied, _) = broadcast::channel(options.broadcast_capacity.max(1));
        let gauges = Arc::new(Gauges::default());
        let actor = Actor {
            state: State { core, events: VecDeque::new() },
            store,
            clock: clock.clone(),
            events: events.clone(),
            applied: applied.clone(),
            options,
            last_prune: Timestamp(i64::MIN),
            last_pass: (0, 0, 0),
            epoch: 1,
            diverged: Arc::new(AtomicU64::new(0)),
            gauges: gauges.clone(),
        };
        std::thread::Builder::new()
            .name("engine".into())
            .spawn(move || actor.run(rx))
            .map(|_| ())
            .unwrap_or_else(|e| panic!("cannot start the engine thread: {e}"));
        Handle { tx, events, applied, clock, gauges }
    }

    /// Sends a message to the actor, counting it in the mailbox depth.
    fn post(&self, msg: Msg) -> Result<(), Error> {
        self.gauges.mailbox.fetch_add(1, Ordering::Relaxed);
        self.tx.send(msg).map_err(|_| {
            self.gauges.mailbox.fetch_sub(1, Ordering::Relaxed);
            Error::Stopped
        })
    }

    /// The actor's queue depths and whether it is poisoned; reads three atomics, never waits for the actor.
    pub fn stats(&self) -> Stats {
        Stats {
            mailbox: self.gauges.mailbox.load(Ordering::Relaxed),
            unsaved_batches: self.gauges.unsaved_batches.load(Ordering::Relaxed),
            poisoned: self.gauges.poisoned.load(Ordering::SeqCst),
        }
    }

    /// Applies a command; resolves once it is applied and durable.
    pub async fn apply(&self, cmd: Command) -> Result<Reply, Error> {
        let (reply, rx) = oneshot::channel();
        self.post(Msg::Apply(cmd, reply))?;
        rx.await.map_err(|_| Error::Stopped)?
    }

    /// Creates the demo workspace (see [`Core::seed_demo`]), durably; returns its SID.
    pub async fn seed_demo(&self) -> Result<Sid, Error> {
        let (reply, rx) = oneshot::channel();
        self.post(Msg::SeedDemo(reply))?;
        rx.await.map_err(|_| Error::Stopped)?
    }

    /// Runs a read-only closure against the current state, in order with the commands.
    pub async fn read<R: Send + 'static>(
        &self,
        f: impl FnOnce(&State) -> R + Send + 'static,
    ) -> Result<R, Error> {
        let (tx, rx) = oneshot::channel();
        let job: ReadFn = Box::new(move |state| {
            let _ = tx.send(state.map(f));
        });
        self.post(Msg::Read(job))?;
        rx.await.map_err(|_| Error::Stopped)?
    }

    /// Fires every timer that is due by the clock now. The actor also does this on its own when a real clock
    /// reaches a deadline; tests with a manual clock call it after moving the clock.
    pub async fn tick(&self) -> Result<(), Error> {
        let (tx, rx) = oneshot::channel();
        self.post(Msg::Tick(tx))?;
        rx.await.map_err(|_| Error::Stopped)
    }

    /// Waits until everything acknowledged so far is on disk.
    pub async fn flush(&self) -> Result<(), Error> {
        let (tx, rx) = oneshot::channel();
        self.post(Msg::Flush(tx))?;
        rx.await.map_err(|_| Error::Stopped)?
    }

    /// Flushes and stops the actor. Later calls on any clone return [`Error::Stopped`].
    pub async fn stop(&self) -> Result<(), Error> {
        let (tx, rx) = oneshot::channel();
        self.post(Msg::Stop(tx))?;
        rx.await.map_err(|_| Error::Stopped)?
    }

    /// Follows the event stream from now on. Subscribe *before* reading a snapshot, then skip events whose
    /// `seq` the snapshot already covers, and nothing is missed.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.events.subscribe()
    }

    /// Follows the event stream as changes are applied, before they are durable (see the module doc): for
    /// in-process live views, which may then show a change a crash in the next few milliseconds would take
    /// back, exactly as a read at that moment would. Anything that acknowledges or forwards events to other
    /// systems uses [`Handle::subscribe`].
    pub fn subscribe_applied(&self) -> broadcast::Receiver<Arc<Event>> {
        self.applied.subscribe()
    }

    /// Retained in-memory events with `seq > after`, oldest first, at most `limit`.
    pub async fn events_after(&self, after: u64, limit: usize) -> Result<Vec<Arc<Event>>, Error> {
        self.read(move |state| {
            let start = state.events.partition_point(|e| e.seq <= after);
            state.events.iter().skip(start).take(limit).cloned().collect()
        })
        .await
    }

    /// The injected clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }
}

/// Why a data directory could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The store refused (in use, corrupt, newer version, disk).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored record could not be read back into the engine.
    #[error("the engine state in {dir} cannot be loaded: {cause}; move the directory aside to start afresh")]
    Restore {
        /// The data directory.
        dir: String,
        /// What was wrong.
        cause: crate::Error,
    },
}

/// Opens the engine kept in `dir` (creating an empty one) and starts its actor. Returns the handle and
/// whether the directory held no state yet, so the caller can seed it.
pub fn open(
    dir: &std::path::Path,
    account_sid: Sid,
    sids: Box<dyn SidGen>,
    config: CoreConfig,
    clock: Arc<dyn Clock>,
    options: Options,
) -> Result<(Handle, bool), OpenError> {
    let store = Store::open(dir)?;
    let (state, fresh) = restore(&store, account_sid, sids, config, options.event_memory)?;
    let handle = Handle::start(state.core, Some(store), clock, options);
    if !state.events.is_empty() {
        let _ = handle.post(Msg::Restore(state.events));
    }
    Ok((handle, fresh))
}

/// Rebuilds the state from what `store` holds: the core (records, indexes, timers) and the most recent
/// `event_memory` events. The one restore, at start and after a failed write. Also says whether the store
/// held no records.
fn restore(
    store: &Store,
    account_sid: Sid,
    sids: Box<dyn SidGen>,
    config: CoreConfig,
    event_memory: usize,
) -> Result<(State, bool), OpenError> {
    let loaded = store.load()?;
    let fresh = loaded.records.is_empty();
    let records = loaded.records.into_iter().map(|r| (r.kind, r.key, r.value));
    let core = Core::restore(account_sid, sids, config, records, loaded.last_event_seq)
        .map_err(|cause| OpenError::Restore { dir: store.dir().display().to_string(), cause })?;
    let mut events = VecDeque::new();
    let from = loaded.last_event_seq.saturating_sub(event_memory as u64);
    for stored in store.events_after(from, event_memory)? {
        // An event that no longer parses (written by another version) is left out of memory, not fatal:
        // it is still on disk, and routing does not depend on the log.
        if let Ok(event) = Event::decode(&stored.value) {
            events.push_back(Arc::new(event));
        }
    }
    Ok((State { core, events }, fresh))
}

struct Actor {
    state: State,
    store: Option<Store>,
    clock: Arc<dyn Clock>,
    events: broadcast::Sender<Arc<Event>>,
    /// Events as applied, before durable ([`Handle::subscribe_applied`]).
    applied: broadcast::Sender<Arc<Event>>,
    options: Options,
    last_prune: Timestamp,
    /// How many writes, events and replies the previous pass had: the next pass starts with room for as many, so a
    /// busy pass does not regrow (and copy) its lists a dozen times.
    last_pass: (usize, usize, usize),
    /// Counts the reloads after failed writes, from 1: the passes applied since the last reload. Each pass's
    /// callback carries the epoch it was applied in, so a failure reported late for a pass of an earlier
    /// epoch (refused by the store before it resumed) does not start another reload, which would drop
    /// passes of this epoch still on their way to disk.
    epoch: u64,
    /// Set by the store's writer thread, to the epoch of a pass whose batch failed: memory is then ahead of
    /// disk, and the actor reloads before it applies or answers anything else (see the module doc).
    diverged: Arc<AtomicU64>,
    /// Depths reported by [`Handle::stats`].
    gauges: Arc<Gauges>,
}

/// What one pass over the queue produced and must release once durable.
#[derive(Default)]
struct Pass {
    writes: Vec<Write>,
    replies: Vec<(ReplyTx, Result<Reply, crate::Error>)>,
    events: Vec<Arc<Event>>,
    seeds: Vec<(SeedTx, Result<Sid, crate::Error>)>,
    ticks: Vec<oneshot::Sender<()>>,
}

impl Actor {
    fn run(mut self, rx: mpsc::Receiver<Msg>) {
        // A message taken off the queue after a write failed, kept for the pass after the reload.
        let mut carried = None;
        loop {
            let first = match carried.take() {
                Some(msg) => Some(msg),
                None => match self.wait_for_message(&rx) {
                    Waited::Message(msg) => Some(msg),
                    Waited::Deadline => None,
                    Waited::Disconnected => break,
                },
            };
            if self.diverged() {
                if let Err(why) = self.reload() {
                    return self.refuse_until_stopped(rx, first, why);
                }
            }
            let mut pass = Pass {
                writes: Vec::with_capacity(self.last_pass.0),
                events: Vec::with_capacity(self.last_pass.1),
                replies: Vec::with_capacity(self.last_pass.2),
                ..Pass::default()
            };
            let mut stop = None;
            let mut flushes = Vec::new();
            let mut next = first;
            // Drain what is queued, applying commands and answering reads in arrival order. Bounded twice:
            // by messages, so a flood of reads still lets timers fire in between, and by commands
            // ([`PASS_COMMANDS`]), so the store starts on their changes while the next pass is applied.
            let mut budget = 4096usize;
            let mut commands = 0usize;
            loop {
                if let Some(msg) = next.take() {
                    if self.diverged() {
                        // Nothing more on top of the lost change: this pass ends (the store refuses it),
                        // and the message waits for the reload.
                        carried = Some(msg);
                        break;
                    }
                    self.gauges.mailbox.fetch_sub(1, Ordering::Relaxed);
                    match msg {
                        Msg::SeedDemo(reply) => {
                            let now = self.clock.now();
                            let result = self.state.core.seed_demo(now);
                            pass.seeds.push((reply, result));
                            commands += 1;
                        }
                        Msg::Apply(cmd, reply) => {
                            let now = self.clock.now();
                            self.state.core.advance(now);
                            let result = self.state.core.apply(now, cmd);
                            pass.replies.push((reply, result));
                            commands += 1;
                        }
                        // A read may see a change whose batch is still on its way to disk. If that write fails,
                        // the actor reloads before the next message, so a read sent after the change's
                        // command was answered never sees it.
                        Msg::Read(job) => job(Ok(&self.state)),
                        Msg::Tick(done) => pass.ticks.push(done),
                        Msg::Restore(mut recent) => {
                            recent.append(&mut self.state.events);
                            self.state.events = recent;
                        }
                        Msg::Flush(done) => flushes.push(done),
                        Msg::Stop(done) => {
                            stop = Some(done);
                        }
                    }
                    self.collect(&mut pass);
                }
                if stop.is_some() || budget == 0 || commands >= self.options.pass_commands.max(1) {
                    break;
                }
                budget -= 1;
                match rx.try_recv() {
                    Ok(msg) => next = Some(msg),
                    Err(_) => break,
                }
            }
            let now = self.clock.now();
            self.state.core.advance(now);
            self.prune_events(now, &mut pass);
            self.collect(&mut pass);
            self.last_pass = (pass.writes.len(), pass.events.len(), pass.replies.len());
            self.release(pass);
            if !flushes.is_empty() || stop.is_some() {
                let result = self.flush_store();
                for done in flushes {
                    let _ = done.send(copy(&result));
                }
                if let Some(done) = stop {
                    // Close the store (its writer thread and the directory lock) before answering, so a
                    // caller may reopen the same directory as soon as `stop` returns.
                    drop(self.store.take());
                    // Close the mailbox before answering too, so a message sent once `stop` has returned is
                    // refused by the channel (and not counted in the mailbox gauge) rather than queued for
                    // a receiver that is about to go away.
                    drop(rx);
                    let _ = done.send(result);
                    return;
                }
            }
        }
        if let Some(store) = &self.store {
            let _ = store.flush();
        }
    }

    /// Whether a batch of this epoch failed: memory is ahead of disk until [`Actor::reload`]. One atomic
    /// load per message.
    fn diverged(&self) -> bool {
        self.diverged.load(Ordering::Acquire) >= self.epoch
    }

    /// Makes memory equal to disk again after a failed write: replaces the state with the one the store
    /// holds (the restore of [`open`]), then lets the store write again. The passes applied since the
    /// failed one were submitted before the resume, so the store refuses them and their commands fail.
    /// Returns why, for the log, if the store could not be read back.
    fn reload(&mut self) -> Result<(), Arc<str>> {
        let Some(store) = &self.store else {
            // Without a store nothing is written, so nothing can fail.
            return Ok(());
        };
        let account_sid = self.state.core.account_sid();
        let config = self.state.core.out.config.clone();
        // The generator goes on where it was, so no SID of a refused change is ever handed out again.
        let sids = std::mem::replace(&mut self.state.core.out.sids, Box::new(SequentialSids::new()));
        let (state, _) = restore(store, account_sid, sids, config, self.options.event_memory)
            .map_err(|e| Arc::<str>::from(e.to_string()))?;
        self.state = state;
        store.resume();
        self.epoch += 1;
        Ok(())
    }

    /// The actor once a reload has failed: memory cannot be made to agree with disk, so every request is
    /// refused with [`Error::Halted`] (`first` too, if any) until the engine is stopped.
    fn refuse_until_stopped(mut self, rx: mpsc::Receiver<Msg>, first: Option<Msg>, why: Arc<str>) {
        self.gauges.poisoned.store(true, Ordering::SeqCst);
        let mut next = first;
        loop {
            let Some(msg) = next.take().or_else(|| rx.recv().ok()) else {
                return;
            };
            self.gauges.mailbox.fetch_sub(1, Ordering::Relaxed);
            let halted = || Error::Halted(why.clone());
            match msg {
                Msg::Apply(_, reply) => {
                    let _ = reply.send(Err(halted()));
                }
                Msg::SeedDemo(reply) => {
                    let _ = reply.send(Err(halted()));
                }
                Msg::Read(job) => job(Err(halted())),
                Msg::Tick(done) => {
                    let _ = done.send(());
                }
                Msg::Restore(_) => {}
                Msg::Flush(done) => {
                    let _ = done.send(Err(halted()));
                }
                Msg::Stop(done) => {
                    // As in `run`: the store and the mailbox are closed before the answer.
                    drop(self.store.take());
                    drop(rx);
                    let _ = done.send(Err(halted()));
                    return;
                }
            }
        }
    }

    /// The next message, or the next deadline, whichever comes first; sleeps only when the mailbox is empty.
    fn wait_for_message(&mut self, rx: &mpsc::Receiver<Msg>) -> Waited {
        // A message already queued is taken at once: the actor is busy, and the pass will drain the rest.
        match rx.try_recv() {
            Ok(msg) => return Waited::Message(msg),
            Err(mpsc::TryRecvError::Disconnected) => return Waited::Disconnected,
            Err(mpsc::TryRecvError::Empty) => {}
        }
        let waited = self.block_for_message(rx);
        if let Waited::Message(_) = waited {
            // Woken from sleep by a sender. Linux often runs the woken actor at once on the sender's CPU, in
            // its place, so the pass would find that one message, and the actor would sleep and be woken
            // again by the next request: two context switches per request. Yielding once lets the senders
            // go on first; the pass then takes what they queued meanwhile. With nothing else to run it
            // returns at once. Under HTTP load: 0.21 futex calls per task create instead of 0.39, 17% fewer
            // context switches, 15% fewer store commits (docs/PERFORMANCE.md, "The engine yields once after
            // being woken").
            std::thread::yield_now();
        }
        waited
    }

    /// Sleeps until a message arrives or the next deadline is due.
    fn block_for_message(&mut self, rx: &mpsc::Receiver<Msg>) -> Waited {
        match self.state.core.next_deadline() {
            None => match rx.recv() {
                Ok(msg) => Waited::Message(msg),
                Err(_) => Waited::Disconnected,
            },
            Some(deadline) => {
                let wait_ms = deadline.millis_since(self.clock.now());
                if wait_ms == 0 {
                    // The mailbox was empty a moment ago (`wait_for_message`).
                    return Waited::Deadline;
                }
                // Re-check at least every second: a manual clock may have been moved without a tick, and a
                // wall clock may jump.
                let wait = Duration::from_millis(wait_ms.clamp(1, 1000) as u64);
                match rx.recv_timeout(wait) {
                    Ok(msg) => Waited::Message(msg),
                    Err(mpsc::RecvTimeoutError::Timeout) => Waited::Deadline,
                    Err(mpsc::RecvTimeoutError::Disconnected) => Waited::Disconnected,
                }
            }
        }
    }

    /// Moves the core's new events and changes into the pass and the in-memory log.
    fn collect(&mut self, pass: &mut Pass) {
        // Records and events are serialized by the store's writer thread (`Value::Later`), not here: the
        // engine's thread goes on routing while the writer encodes and writes.
        for change in self.state.core.take_changes() {
            if self.store.is_none() {
                continue;
            }
            pass.writes.push(match change.value {
                Some(record) => Write::Put {
                    kind: change.kind,
                    key: change.key,
                    value: Value::Later(Box::new(move || record.encode())),
                },
                None => Write::Delete { kind: change.kind, key: change.key },
            });
        }
        for event in self.state.core.take_events() {
            let event = Arc::new(event);
            if self.store.is_some() {
                let stored = event.clone();
                pass.writes.push(Write::Event {
                    seq: event.seq,
                    at_ms: event.at.millis(),
                    value: Value::Later(Box::new(move || stored.encode())),
                });
            }
            if self.state.events.len() >= self.options.event_memory.max(1) {
                self.state.events.pop_front();
            }
            self.state.events.push_back(event.clone());
            if self.applied.receiver_count() > 0 {
                let _ = self.applied.send(event.clone());
            }
            pass.events.push(event);
        }
    }

    fn prune_events(&mut self, now: Timestamp, pass: &mut Pass) {
        // Once an hour is plenty for a 30-day retention.
        if now.millis_since(self.last_prune) < 60 * 60 * 1000 && self.last_prune.millis() != i64::MIN {
            return;
        }
        self.last_prune = now;
        if self.store.is_some() {
            pass.writes.push(Write::PruneEvents { before_ms: now.millis() - EVENT_RETENTION_MS });
        }
    }

    /// Releases replies and events: at once without a store, after the batch is durable with one.
    fn release(&self, pass: Pass) {
        let Pass { writes, replies, events, seeds, ticks } = pass;
        let publish = {
            let sender = self.events.clone();
            let diverged = self.diverged.clone();
            let epoch = self.epoch;
            move |ok: Result<(), StoreError>| {
                match ok {
                    Ok(()) => {
                        for event in events {
                            // No subscribers is fine.
                            let _ = sender.send(event);
                        }
                        for (reply, result) in replies {
                            let _ = reply.send(result.map_err(Error::Engine));
                        }
                        for (reply, result) in seeds {
                            let _ = reply.send(result.map_err(Error::Engine));
                        }
                    }
                    Err(failure) => {
                        // Before any answer goes out, so a read sent after one is taken after the reload.
                        diverged.fetch_max(epoch, Ordering::AcqRel);
                        for (reply, _) in replies {
                            let _ = reply.send(Err(Error::Store(failure.clone())));
                        }
                        for (reply, _) in seeds {
                            let _ = reply.send(Err(Error::Store(failure.clone())));
                        }
                    }
                }
                for done in ticks {
                    let _ = done.send(());
                }
            }
        };
        match (&self.store, writes.is_empty()) {
            (Some(store), false) => {
                let gauges = self.gauges.clone();
                gauges.unsaved_batches.fetch_add(1, Ordering::Relaxed);
                store.submit(
                    writes,
                    Box::new(move |result: Result<(), StoreError>| {
                        gauges.unsaved_batches.fetch_sub(1, Ordering::Relaxed);
                        publish(result)
                    }),
                );
            }
            _ => publish(Ok(())),
        }
    }

    fn flush_store(&self) -> Result<(), Error> {
        match &self.store {
            Some(store) => store.flush().map_err(Error::Store),
            None => Ok(()),
        }
    }
}

#[allow(clippy::large_enum_variant)]
enum Waited {
    Message(Msg),
    Deadline,
    Disconnected,
}

/// A copy of a flush result for each waiter (`Error` is not `Clone` because an engine error may grow).
fn copy(result: &Result<(), Error>) -> Result<(), Error> {
    match result {
        Ok(()) => Ok(()),
        Err(Error::Store(failure)) => Err(Error::Store(failure.clone())),
        Err(Error::Halted(why)) => Err(Error::Halted(why.clone())),
        Err(_) => Err(Error::Stopped),
    }
}
