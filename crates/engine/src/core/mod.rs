//! The sans-IO state machine: every workspace's resources, the routing indexes and the timers.
//!
//! [`Core::apply`] validates a [`Command`] fully before it mutates anything, so a refused command changes
//! nothing and emits nothing. Work that follows from a change (offering a task to a freed worker, offering a
//! re-queued task) is collected in work lists and drained at the end of each call, so every path routes the
//! same way. Time only moves through the `now` arguments; timers fire in [`Core::advance`].
//!
//! Submodules: `space` (one workspace: its maps and indexes, the Workspace itself, command dispatch), then
//! one file per resource with its `impl Space` block: `activities`, `workers` (task channels, workers, worker
//! channels), `task_queues` (and queue membership), `workflows` (and stepping a task through one), `tasks`
//! (task commands and lifecycle), `reservations`; `routing` (eligibility and offering), `timers` (every
//! deadline), `telephony` (simulated conferences), `query` (read-only views and statistics), `api_keys`
//! (the account's API keys).

mod activities;
mod api_keys;
mod query;
mod reservations;
mod routing;
mod space;
mod task_queues;
mod tasks;
mod telephony;
#[cfg(test)]
mod tests;
mod timers;
mod transfers;
mod workers;
mod workflows;

use crate::command::Command;
use crate::error::Error;
use crate::event::{Event, EventData, EventType};
use crate::expr::Origin;
use crate::model::*;
use crate::sid::{Prefix, Sid, SidGen};
use crate::time::Timestamp;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

pub use query::{
    order_by, ActivityFilter, ActivityStat, Compare, Ordered, QueueRealTime, RealTimeStats, TaskFilter,
    TaskQueueFilter, WorkerFilter,
};
pub(crate) use space::Space;
pub(crate) use timers::{Timer, Timers};

/// Tunables of the core.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// Simulated telephony: how long a dialled worker leg rings before it answers.
    pub worker_answer_delay_ms: i64,
    /// Canceled/completed tasks are deleted this long after entering the state.
    pub terminal_task_purge_ms: i64,
    /// Pending -> reserved transitions after which a task is canceled.
    pub max_assignment_count: u32,
    /// Assigned/wrapping tasks are system-deleted this long after assignment (`task.system-deleted`).
    pub assigned_task_ttl_ms: i64,
}

impl Default for CoreConfig {
    fn default() -> Self {
        CoreConfig {
            worker_answer_delay_ms: 2000,
            terminal_task_purge_ms: 300_000,
            max_assignment_count: 1000,
            assigned_task_ttl_ms: 86_400_000,
        }
    }
}

/// One record to write to (or, `value: None`, delete from) the store.
#[derive(Debug, Clone)]
pub struct Change {
    /// `workspace`, `activity`, `task_channel`, `worker`, `worker_channel`, `task_queue`, `workflow`, `task`,
    /// `reservation`, `conference`, `participant`, `api_key`.
    pub kind: &'static str,
    /// The SID (participants: `CF…/CA…`).
    pub key: String,
    /// The record; `None` = deleted.
    pub value: Option<Record>,
}

/// The resources a command changes, named once for [`Record`] (the stored copy of a changed one),
/// [`Reply`] (a command's answer) and [`FromReply`] (the answer as its type).
macro_rules! resources {
    ($($variant:ident),* $(,)?) => {
        /// A changed record, as a copy of the resource. It is turned into its stored form
        /// ([`Record::encode`], what [`Core::restore`] reads) only when the store writes it, on the store's
        /// thread: serializing every changed record on the engine's thread took about a quarter of the time
        /// of routing a task.
        #[derive(Debug, Clone)]
        pub enum Record {
            $($variant($variant),)*
        }

        /// What a successful command returns: the resource it created or changed.
        #[derive(Debug, Clone)]
        pub enum Reply {
            $($variant($variant),)*
            /// The resource was deleted.
            Deleted,
        }

        $(impl FromReply for $variant {
            fn from_reply(reply: Reply) -> Option<Self> {
                match reply {
                    Reply::$variant(x) => Some(x),
                    _ => None,
                }
            }
        })*
    };
}

resources! {
    Workspace, Activity, TaskChannel, Worker, WorkerChannel, TaskQueue, Workflow, Task, Reservation,
    Conference, Participant, ApiKey,
}

/// A resource a command answers with: one variant of [`Reply`], for a caller that knows which to expect.
pub trait FromReply: Sized {
    /// The resource, or `None` when the reply is another kind.
    fn from_reply(reply: Reply) -> Option<Self>;
}

/// A delete answers nothing.
impl FromReply for () {
    fn from_reply(reply: Reply) -> Option<()> {
        matches!(reply, Reply::Deleted).then_some(())
    }
}

impl Record {
    /// The stored form: a task in its binary form ([`Task::encode`]), which is written at the rate of the
    /// traffic; every other resource as JSON.
    pub fn encode(&self) -> Vec<u8> {
        let json = match self {
            Record::Task(v) => return v.encode(),
            Record::Workspace(v) => serde_json::to_vec(v),
            Record::Activity(v) => serde_json::to_vec(v),
            Record::TaskChannel(v) => serde_json::to_vec(v),
            Record::Worker(v) => serde_json::to_vec(v),
            Record::WorkerChannel(v) => serde_json::to_vec(v),
            Record::TaskQueue(v) => serde_json::to_vec(v),
            Record::Workflow(v) => serde_json::to_vec(v),
            Record::Reservation(v) => serde_json::to_vec(v),
            Record::Conference(v) => serde_json::to_vec(v),
            Record::Participant(v) => serde_json::to_vec(v),
            Record::ApiKey(v) => serde_json::to_vec(v),
        };
        // The resources hold only strings, numbers and maps with string keys: serializing cannot fail.
        json.unwrap_or_else(|_| b"{}".to_vec())
    }
}

/// A record that changed since the last `take_changes`.
// `ApiKey` is the resource's name (Twilio's "API Key"), not a stutter of this enum's.
#[allow(clippy::enum_variant_names)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Key {
    Workspace(Sid),
    Activity(Sid, Sid),
    TaskChannel(Sid, Sid),
    Worker(Sid, Sid),
    WorkerChannel(Sid, Sid),
    TaskQueue(Sid, Sid),
    Workflow(Sid, Sid),
    Task(Sid, Sid),
    Reservation(Sid, Sid),
    Conference(Sid),
    Participant(Sid, Sid),
    ApiKey(Sid),
}

/// Everything a workspace's operations write besides the workspace itself: events, changed keys, timers,
/// new SIDs and the routing work lists.
pub(crate) struct Effects {
    pub(crate) account_sid: Sid,
    pub(crate) config: CoreConfig,
    pub(crate) sids: Box<dyn SidGen>,
    pub(crate) events: Vec<Event>,
    pub(crate) seq: u64,
    pub(crate) dirty: BTreeSet<Key>,
    pub(crate) timers: Timers,
    /// (workspace, task) to offer to workers.
    pub(crate) route_tasks: VecDeque<(Sid, Sid)>,
    /// (workspace, worker) that may take work.
    pub(crate) route_workers: VecDeque<(Sid, Sid)>,
}

impl Effects {
    pub(crate) fn sid(&mut self, prefix: Prefix) -> Sid {
        self.sids.next(prefix)
    }

    pub(crate) fn touch(&mut self, key: Key) {
        self.dirty.insert(key);
    }

    /// Appends an event to the log. `data` holds the description and the fields; the workspace name is
    /// added here.
    pub(crate) fn emit(
        &mut self,
        ws: &Workspace,
        now: Timestamp,
        event_type: EventType,
        resource_type: &'static str,
        resource_sid: Sid,
        mut data: EventData,
    ) {
        self.seq += 1;
        let sid = self.sids.next(Prefix::Event);
        data.workspace_name(&ws.friendly_name);
        self.events.push(Event::new(
            self.seq,
            sid,
            event_type,
            now,
            ws.sid,
            resource_type,
            resource_sid,
            data,
        ));
    }
}

/// Simulated telephony state (API 2010 conferences).
#[derive(Default)]
pub(crate) struct Tel {
    pub(crate) conferences: HashMap<Sid, Conference>,
    /// (conference, call) -> participant; only live legs.
    pub(crate) participants: BTreeMap<(Sid, Sid), Participant>,
    /// call -> conference it is in.
    pub(crate) calls: HashMap<Sid, Sid>,
}

/// The engine's state machine. See the module doc.
pub struct Core {
    pub(crate) spaces: HashMap<Sid, Space>,
    pub(crate) tel: Tel,
    /// The account's API keys, in SID order (the order they are listed in).
    pub(crate) api_keys: BTreeMap<Sid, ApiKey>,
    pub(crate) out: Effects,
}

/// An optional parameter `param` that `parse` reads, or an error saying the value is not `expected` (e.g.
/// "one of canceled, wrapping, completed").
pub(crate) fn parse_param<T>(
    param: &str,
    value: Option<&str>,
    parse: impl Fn(&str) -> Option<T>,
    expected: &str,
) -> Result<Option<T>, Error> {
    value
        .map(|s| parse(s).ok_or_else(|| Error::invalid(param, format!("'{s}' is not {expected}"))))
        .transpose()
}

/// Checks an `If-Match` header value (`"3"`, `W/"3"` or `3`) against a version.
pub(crate) fn check_if_match(if_match: &Option<String>, version: u64) -> Result<(), Error> {
    let Some(given) = if_match else { return Ok(()) };
    let trimmed = given.trim();
    if trimmed == "*" {
        return Ok(());
    }
    let bare = trimmed.trim_start_matches("W/").trim_matches('"');
    if bare == version.to_string() {
        Ok(())
    } else {
        Err(Error::PreconditionFailed { given: given.clone(), current: version })
    }
}

impl Core {
    /// An empty engine for one account.
    pub fn new(account_sid: Sid, sids: Box<dyn SidGen>, config: CoreConfig) -> Core {
        Core {
            spaces: HashMap::new(),
            tel: Tel::default(),
            api_keys: BTreeMap::new(),
            out: Effects {
                account_sid,
                config,
                sids,
                events: Vec::new(),
                seq: 0,
                dirty: BTreeSet::new(),
                timers: Timers::default(),
                route_tasks: VecDeque::new(),
                route_workers: VecDeque::new(),
            },
        }
    }

    /// The account every resource belongs to.
    pub fn account_sid(&self) -> Sid {
        self.out.account_sid
    }

    /// Applies one command. On `Err` nothing changed and no events were emitted.
    pub fn apply(&mut self, now: Timestamp, cmd: Command) -> Result<Reply, Error> {
        let reply = self.dispatch(now, cmd)?;
        self.drain(now);
        Ok(self.refresh(reply))
    }

    /// Fires every timer whose deadline is `<= now`, in deadline order (each at its own deadline).
    pub fn advance(&mut self, now: Timestamp) {
        while let Some((at, timer)) = self.out.timers.first() {
            if at > now {
                break;
            }
            self.out.timers.cancel(timer);
            self.fire(at, timer);
            self.drain(at);
        }
    }

    /// The earliest pending deadline.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.out.timers.first().map(|(at, _)| at)
    }

    /// Events since the last call, `seq` increasing.
    pub fn take_events(&mut self) -> Vec<Event> {
        // The next command likely emits as many: start the new log at that size instead of regrowing it.
        let cap = self.out.events.len();
        std::mem::replace(&mut self.out.events, Vec::with_capacity(cap))
    }

    /// The sequence number of the last event emitted.
    pub fn last_event_seq(&self) -> u64 {
        self.out.seq
    }

    /// Records changed since the last call, for the store.
    pub fn take_changes(&mut self) -> Vec<Change> {
        let dirty = std::mem::take(&mut self.out.dirty);
        dirty.into_iter().map(|key| self.change_for(key)).collect()
    }

    fn change_for(&self, key: Key) -> Change {
        let space = |ws: Sid| self.spaces.get(&ws);
        // A resource of a workspace, keyed by its SID.
        let in_space = |kind, ws: Sid, s: Sid, get: fn(&Space, Sid) -> Option<Record>| {
            (kind, s.to_string(), space(ws).and_then(|x| get(x, s)))
        };
        let (kind, key_text, value) = match key {
            Key::Workspace(ws) => {
                ("workspace", ws.to_string(), space(ws).map(|s| Record::Workspace(s.ws.clone())))
            }
            Key::Activity(ws, s) => {
                in_space("activity", ws, s, |x, s| x.activities.get(&s).cloned().map(Record::Activity))
            }
            Key::TaskChannel(ws, s) => {
                in_space("task_channel", ws, s, |x, s| x.channels.get(&s).cloned().map(Record::TaskChannel))
            }
            Key::Worker(ws, s) => {
                in_space("worker", ws, s, |x, s| x.workers.get(&s).cloned().map(Record::Worker))
            }
            Key::WorkerChannel(ws, s) => in_space("worker_channel", ws, s, |x, s| {
                x.worker_channels.get(&s).map(|w| Record::WorkerChannel(WorkerChannel::clone(w)))
            }),
            Key::TaskQueue(ws, s) => {
                in_space("task_queue", ws, s, |x, s| x.queues.get(&s).cloned().map(Record::TaskQueue))
            }
            Key::Workflow(ws, s) => {
                in_space("workflow", ws, s, |x, s| x.workflows.get(&s).cloned().map(Record::Workflow))
            }
            Key::Task(ws, s) => {
                in_space("task", ws, s, |x, s| x.tasks.get(&s).map(|t| Record::Task(Task::clone(t))))
            }
            Key::Reservation(ws, s) => in_space("reservation", ws, s, |x, s| {
                x.reservations.get(&s).cloned().map(Record::Reservation)
            }),
            Key::Conference(s) => {
                ("conference", s.to_string(), self.tel.conferences.get(&s).cloned().map(Record::Conference))
            }
            Key::Participant(c, s) => (
                "participant",
                format!("{c}/{s}"),
                self.tel.participants.get(&(c, s)).cloned().map(Record::Participant),
            ),
            Key::ApiKey(s) => ("api_key", s.to_string(), self.api_keys.get(&s).cloned().map(Record::ApiKey)),
        };
        Change { kind, key: key_text, value }
    }

    /// Rebuilds an engine from stored records (as `take_changes` produced them): state, indexes and timers.
    /// A deadline that passed while the engine was down fires at the next [`Core::advance`].
    pub fn restore(
        account_sid: Sid,
        sids: Box<dyn SidGen>,
        config: CoreConfig,
        records: impl IntoIterator<Item = (String, String, Vec<u8>)>,
        last_event_seq: u64,
    ) -> Result<Core, Error> {
        let mut core = Core::new(account_sid, sids, config);
        core.out.seq = last_event_seq;
        let mut by_kind: BTreeMap<u8, Vec<(String, Vec<u8>)>> = BTreeMap::new();
        for (kind, key, stored) in records {
            let rank = match kind.as_str() {
                "workspace" => 0,
                "activity" => 1,
                "task_channel" => 2,
                "task_queue" => 3,
                "workflow" => 4,
                "worker" => 5,
                "worker_channel" => 6,
                "task" => 7,
                "reservation" => 8,
                "conference" => 9,
                "participant" => 10,
                "api_key" => 11,
                other => {
                    return Err(Error::invalid("kind", format!("unknown record kind '{other}' (key {key})")));
                }
            };
            by_kind.entry(rank).or_default().push((key, stored));
        }
        fn parse<T: serde::de::DeserializeOwned>(key: &str, json: &[u8]) -> Result<T, Error> {
            serde_json::from_slice(json)
                .map_err(|e| Error::invalid("record", format!("record {key} is corrupt: {e}")))
        }
        // Tasks written before schema version 4 are JSON; they stay so until the task next changes.
        fn parse_task(key: &str, stored: &[u8]) -> Result<Task, Error> {
            match stored.first() {
                Some(b'{') => parse(key, stored),
                _ => Task::decode(stored)
                    .map_err(|e| Error::invalid("record", format!("record {key} is corrupt: {e}"))),
            }
        }
        fn space<'a>(core: &'a mut Core, ws: Sid, key: &str) -> Result<&'a mut Space, Error> {
            core.spaces
                .get_mut(&ws)
                .ok_or_else(|| Error::invalid("record", format!("record {key} names missing workspace {ws}")))
        }
        for (rank, list) in by_kind {
            for (key, stored) in list {
                match rank {
                    0 => {
                        let ws: Workspace = parse(&key, &stored)?;
                        core.spaces.insert(ws.sid, Space::new(ws));
                    }
                    1 => {
                        let a: Activity = parse(&key, &stored)?;
                        space(&mut core, a.workspace_sid, &key)?.activities.insert(a.sid, a);
                    }
                    2 => {
                        let c: TaskChannel = parse(&key, &stored)?;
                        space(&mut core, c.workspace_sid, &key)?.channels.insert(c.sid, c);
                    }
                    3 => {
                        let mut q: TaskQueue = parse(&key, &stored)?;
                        // Stored expressions load as they were accepted, past the length and path limits
                        // added since (see `Origin`): the limits guard the API, not data already kept.
                        q.target_expr =
                            space::parse_target_workers(&q.target_workers, Origin::Stored).ok().flatten();
                        let sp = space(&mut core, q.workspace_sid, &key)?;
                        sp.qidx.insert(q.sid, Default::default());
                        sp.queues.insert(q.sid, q);
                    }
                    4 => {
                        let mut w: Workflow = parse(&key, &stored)?;
                        let sp = space(&mut core, w.workspace_sid, &key)?;
                        // As for queues: one workflow stored before a limit existed must not stop the start.
                        w.config = std::sync::Arc::new(
                            crate::workflow::WorkflowConfig::parse_from(
                                &w.configuration,
                                Origin::Stored,
                                &|q| sp.queues.contains_key(&q),
                            )
                            .map_err(|e| Error::invalid("record", format!("workflow {key}: {e}")))?,
                        );
                        sp.workflows.insert(w.sid, w);
                    }
                    5 => {
                        let mut w: Worker = parse(&key, &stored)?;
                        w.attributes_value = serde_json::from_str(&w.attributes).unwrap_or_default();
                        let sp = space(&mut core, w.workspace_sid, &key)?;
                        sp.worker_names.insert(w.friendly_name.to_lowercase(), w.sid);
                        sp.workers.insert(w.sid, w);
                    }
                    6 => {
                        let mut c: WorkerChannel = parse(&key, &stored)?;
                        let sp = space(&mut core, c.workspace_sid, &key)?;
                        c.task_channel_unique_name = sp.names.get(&c.task_channel_unique_name);
                        sp.channel_of.insert((c.worker_sid, c.task_channel_sid), c.sid);
                        sp.worker_channels.insert(c.sid, Box::new(c));
                    }
                    7 => {
                        let mut t = parse_task(&key, &stored)?;
                        let sp = space(&mut core, t.workspace_sid, &key)?;
                        // Share the names again, as when the tasks were made.
                        let names = &mut sp.names;
                        for n in [&mut t.task_queue_friendly_name, &mut t.workflow_friendly_name] {
                            if let Some(v) = n.as_mut() {
                                *v = names.get(v);
                            }
                        }
                        t.task_channel_unique_name = names.get(&t.task_channel_unique_name);
                        t.addons = names.get(&t.addons);
                        sp.tasks.insert(t.sid, Box::new(t));
                    }
                    8 => {
                        let r: Reservation = parse(&key, &stored)?;
                        let sp = space(&mut core, r.workspace_sid, &key)?;
                        sp.task_reservations.entry(r.task_sid).or_default().push(r.sid);
                        sp.worker_reservations.entry(r.worker_sid).or_default().push(r.sid);
                        sp.reservations.insert(r.sid, r);
                    }
                    9 => {
                        let c: Conference = parse(&key, &stored)?;
                        core.tel.conferences.insert(c.sid, c);
                    }
                    11 => {
                        let k: ApiKey = parse(&key, &stored)?;
                        core.api_keys.insert(k.sid, k);
                    }
                    _ => {
                        let p: Participant = parse(&key, &stored)?;
                        core.tel.calls.insert(p.call_sid, p.conference_sid);
                        core.tel.participants.insert((p.conference_sid, p.call_sid), p);
                    }
                }
            }
        }
        let Core { spaces, tel, out, .. } = &mut core;
        for sp in spaces.values_mut() {
            sp.rebuild_indexes(out);
        }
        for p in tel.participants.values() {
            if let Some(at) = p.answer_at {
                out.timers.set(Timer::Answer(p.conference_sid, p.call_sid), at);
            }
        }
        Ok(core)
    }

    fn dispatch(&mut self, now: Timestamp, cmd: Command) -> Result<Reply, Error> {
        match cmd {
            Command::CreateWorkspace { params } => self.create_workspace(now, params),
            Command::UpdateWorkspace { workspace_sid, params } => {
                let Core { spaces, out, .. } = self;
                space_mut(spaces, workspace_sid)?.update_workspace(out, now, params)
            }
            Command::DeleteWorkspace { workspace_sid } => self.delete_workspace(now, workspace_sid),
            Command::CallerHangup { call_sid } => self.caller_hangup(now, call_sid),
            Command::CreateApiKey { friendly_name, secret } => {
                self.create_api_key(now, friendly_name, secret)
            }
            Command::UpdateApiKey { sid, friendly_name } => self.update_api_key(now, sid, friendly_name),
            Command::DeleteApiKey { sid } => self.delete_api_key(sid),
            cmd @ (Command::CreateTransfer { .. } | Command::CancelTransfer { .. }) => {
                self.apply_transfer(now, cmd)
            }
            Command::UpdateConference { sid, status } => self.update_conference(now, sid, status),
            Command::CreateParticipant { conference, params } => {
                self.create_participant(now, &conference, params)
            }
            Command::UpdateParticipant { conference_sid, call_sid, params } => {
                self.update_participant(now, conference_sid, call_sid, params)
            }
            Command::DeleteParticipant { conference_sid, call_sid } => {
                self.kick_participant(now, conference_sid, call_sid)
            }
            Command::UpdateReservation { workspace_sid, task_sid, worker_sid, sid, params, if_match } => {
                self.update_reservation(now, workspace_sid, task_sid, worker_sid, sid, *params, if_match)
            }
            other => {
                let ws = match &other {
                    Command::CreateActivity { workspace_sid, .. }
                    | Command::UpdateActivity { workspace_sid, .. }
                    | Command::DeleteActivity { workspace_sid, .. }
                    | Command::CreateTaskChannel { workspace_sid, .. }
                    | Command::UpdateTaskChannel { workspace_sid, .. }
                    | Command::DeleteTaskChannel { workspace_sid, .. }
                    | Command::CreateWorker { workspace_sid, .. }
                    | Command::UpdateWorker { workspace_sid, .. }
                    | Command::DeleteWorker { workspace_sid, .. }
                    | Command::UpdateWorkerChannel { workspace_sid, .. }
                    | Command::CreateTaskQueue { workspace_sid, .. }
                    | Command::UpdateTaskQueue { workspace_sid, .. }
                    | Command::DeleteTaskQueue { workspace_sid, .. }
                    | Command::CreateWorkflow { workspace_sid, .. }
                    | Command::UpdateWorkflow { workspace_sid, .. }
                    | Command::DeleteWorkflow { workspace_sid, .. }
                    | Command::CreateTask { workspace_sid, .. }
                    | Command::UpdateTask { workspace_sid, .. }
                    | Command::DeleteTask { workspace_sid, .. } => *workspace_sid,
                    _ => return Err(Error::illegal("unsupported command")),
                };
                let Core { spaces, out, .. } = self;
                space_mut(spaces, ws)?.apply(out, now, other)
            }
        }
    }

    /// After a command the reply should show the state after routing (e.g. a new task already reserved).
    fn refresh(&self, reply: Reply) -> Reply {
        match reply {
            Reply::Task(t) => match self.spaces.get(&t.workspace_sid).and_then(|s| s.tasks.get(&t.sid)) {
                Some(cur) => Reply::Task(Task::clone(cur)),
                None => Reply::Task(t),
            },
            Reply::Worker(w) => match self.spaces.get(&w.workspace_sid).and_then(|s| s.workers.get(&w.sid)) {
                Some(cur) => Reply::Worker(cur.clone()),
                None => Reply::Worker(w),
            },
            Reply::Reservation(r) => {
                match self.spaces.get(&r.workspace_sid).and_then(|s| s.reservations.get(&r.sid)) {
                    Some(cur) => Reply::Reservation(cur.clone()),
                    None => Reply::Reservation(r),
                }
            }
            other => other,
        }
    }

    /// Runs the routing work lists until nothing is left to offer.
    fn drain(&mut self, now: Timestamp) {
        let Core { spaces, out, .. } = self;
        let mut guard = 0usize;
        loop {
            guard += 1;
            if guard > 1_000_000 {
                break;
            }
            if let Some((ws, task)) = out.route_tasks.pop_front() {
                if let Some(sp) = spaces.get_mut(&ws) {
                    sp.route_task(out, now, task);
                }
                continue;
            }
            if let Some((ws, worker)) = out.route_workers.pop_front() {
                if let Some(sp) = spaces.get_mut(&ws) {
                    sp.route_worker(out, now, worker);
                }
                continue;
            }
            break;
        }
    }

    fn fire(&mut self, at: Timestamp, timer: Timer) {
        match timer {
            Timer::Answer(cf, ca) => self.answer(at, cf, ca),
            Timer::ReservationTimeout(ws, r) => {
                if let Some(sp) = self.spaces.get_mut(&ws) {
                    sp.reservation_timed_out(&mut self.out, at, r);
                }
            }
            Timer::TaskTtl(ws, t) => {
                if let Some(sp) = self.spaces.get_mut(&ws) {
                    sp.task_ttl(&mut self.out, at, t);
                }
            }
            Timer::TargetTimeout(ws, t) => {
                if let Some(sp) = self.spaces.get_mut(&ws) {
                    sp.target_timed_out(&mut self.out, at, t);
                }
            }
            Timer::Purge(ws, t) => {
                if let Some(sp) = self.spaces.get_mut(&ws) {
                    sp.purge_task(&mut self.out, t);
                }
            }
        }
    }

    fn create_workspace(
        &mut self,
        now: Timestamp,
        params: crate::command::WorkspaceParams,
    ) -> Result<Reply, Error> {
        let sp = Space::create(&mut self.out, now, params)?;
        let ws = sp.ws.clone();
        self.spaces.insert(ws.sid, sp);
        Ok(Reply::Workspace(ws))
    }

    fn delete_workspace(&mut self, now: Timestamp, ws: Sid) -> Result<Reply, Error> {
        let sp = self.spaces.remove(&ws).ok_or_else(|| Error::not_found(format!("/Workspaces/{ws}")))?;
        sp.delete_all(&mut self.out, now);
        // Conferences of the workspace's tasks are left to end on their own.
        Ok(Reply::Deleted)
    }

    /// Creates the demo workspace of the seed's README (see issue 2) and returns its SID.
    pub fn seed_demo(&mut self, now: Timestamp) -> Result<Sid, Error> {
        use crate::command::*;
        let Reply::Workspace(ws) = self.apply(
            now,
            Command::CreateWorkspace {
                params: WorkspaceParams { friendly_name: Some("writers".into()), ..Default::default() },
            },
        )?
        else {
            return Err(Error::illegal("seed: workspace not created"));
        };
        let wsid = ws.sid;
        let unavailable = self
            .spaces
            .get(&wsid)
            .and_then(|s| s.activities.values().find(|a| a.friendly_name == "Unavailable"))
            .map(|a| a.sid)
            .ok_or_else(|| Error::illegal("seed: no Unavailable activity"))?;
        self.apply(
            now,
            Command::UpdateWorkspace {
                workspace_sid: wsid,
                params: WorkspaceParams { timeout_activity_sid: Some(unavailable), ..Default::default() },
            },
        )?;
        let queue = |core: &mut Core, name: &str, expr: &str| -> Result<Sid, Error> {
            let params = TaskQueueParams {
                friendly_name: Some(name.into()),
                target_workers: Some(expr.into()),
                max_reserved_workers: Some(1),
                ..Default::default()
            };
            let reply = core.apply(now, Command::CreateTaskQueue { workspace_sid: wsid, params })?;
            reply.sid().ok_or_else(|| Error::illegal("seed: queue not created"))
        };
        let support = queue(self, "support", r#"skills HAS "support""#)?;
        let sales = queue(self, "sales", r#"skills HAS "sales""#)?;
        let config = serde_json::json!({
            "task_routing": {
                "filters": [
                    {"filter_friendly_name": "sales", "expression": "selected_product == \"sales\"",
                     "targets": [{"queue": sales.to_string()}]}
                ],
                "default_filter": {"queue": support.to_string()}
            }
        });
        let params = WorkflowParams {
            friendly_name: Some("support".into()),
            configuration: Some(config.to_string()),
            task_reservation_timeout: Some(10),
            ..Default::default()
        };
        self.apply(now, Command::CreateWorkflow { workspace_sid: wsid, params })?;
        let workers = [
            ("charles", r#"{"skills":["support"],"contact_uri":"+15005550006"}"#),
            ("ada", r#"{"skills":["support"],"contact_uri":"+15005550007"}"#),
            ("grace", r#"{"skills":["support"],"contact_uri":"+15005550008"}"#),
            ("linus", r#"{"skills":["sales"],"contact_uri":"+15005550009"}"#),
        ];
        for (name, attrs) in workers {
            let params = WorkerParams {
                friendly_name: Some(name.into()),
                attributes: Some(attrs.into()),
                ..Default::default()
            };
            self.apply(now, Command::CreateWorker { workspace_sid: wsid, params })?;
        }
        Ok(wsid)
    }
}

pub(crate) fn space_mut(spaces: &mut HashMap<Sid, Space>, ws: Sid) -> Result<&mut Space, Error> {
    spaces.get_mut(&ws).ok_or_else(|| Error::not_found(format!("/Workspaces/{ws}")))
}
