//! One workspace ([`Space`]): its resource maps, the routing indexes over them, the limits every resource
//! checks, the Workspace's own create, update and delete, and [`Space::apply`], which hands each workspace
//! command to the file of its resource (`activities`, `workers`, `task_queues`, `workflows`, `tasks`).
//!
//! Indexes (all maintained incrementally):
//! - `members[queue]`: workers whose attributes match the queue's `target_workers`, recomputed only when a
//!   worker's attributes or a queue's expression change;
//! - `available[queue]`: available members ordered by `(last_idle_at, sid)`: longest idle first;
//! - `waiting[queue]`: tasks in the queue that want more reservations: in a FIFO queue by priority, then
//!   oldest `virtual_start_time`; in a LIFO queue by newest `virtual_start_time` alone; then SID.

use super::{Effects, Key, Reply, Timer};
use crate::command::*;
use crate::error::{quote, Error};
use crate::event::{EventData, EventType, Field, Part};
use crate::expr::{Expr, Origin};
use crate::model::*;
use crate::sharded::Sharded;
use crate::sid::{Prefix, Sid};
use crate::time::Timestamp;
use serde_json::Value;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

/// Max friendly name length.
pub(crate) const MAX_NAME: usize = 64;
/// Max attributes length.
pub(crate) const MAX_ATTRIBUTES: usize = 4096;
/// Max activities per workspace.
pub(crate) const MAX_ACTIVITIES: usize = 100;

/// Order of a waiting task: priority desc (a constant in a LIFO queue), then age key, then SID.
pub(crate) type TaskKey = (Reverse<i64>, i64, Sid);

/// A map keyed by engine-made SIDs (or tuples of them), hashed with [`SidHash`] instead of SipHash.
pub(crate) type SidMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<SidHash>>;

/// A [`SidMap`] split into 256 tables ([`Sharded`]), for the maps that grow with the number of tasks.
pub(crate) type ShardedSidMap<K, V> = Sharded<K, V, std::hash::BuildHasherDefault<SidHash>>;

/// Multiply-rotate hasher for SID keys (the hot index lookups of routing). Not DoS-resistant, so used only
/// for maps whose keys the engine generates: SIDs are 128-bit numbers the engine assigns, never names a
/// client chooses (`worker_names` keeps SipHash).
#[derive(Default, Clone, Copy)]
pub(crate) struct SidHash(u64);

impl SidHash {
    const K: u64 = 0x517c_c1b7_2722_0a95;

    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(Self::K);
    }
}

impl std::hash::Hasher for SidHash {
    fn finish(&self) -> u64 {
        // Fold the well-mixed high bits into the low ones the table indexes by.
        self.0 ^ (self.0 >> 32)
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    fn write_u128(&mut self, i: u128) {
        self.add(i as u64);
        self.add((i >> 64) as u64);
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn write_isize(&mut self, i: isize) {
        self.add(i as u64);
    }
}

/// How many fields [`Space::push_worker_fields`] appends.
pub(crate) const WORKER_FIELDS: usize = 6;

/// One shared copy of each name that tasks and worker channels repeat (queue, workflow and channel names,
/// `{}` addons): a million tasks in one queue hold one string between them, not a million.
#[derive(Debug, Default)]
pub(crate) struct Names(HashSet<Arc<str>>);

impl Names {
    /// The shared copy of `name`, made on first use. Never shrinks: the set holds one entry per distinct
    /// name ever used in the workspace, a handful.
    pub(crate) fn get(&mut self, name: &str) -> Arc<str> {
        if let Some(n) = self.0.get(name) {
            return n.clone();
        }
        let n: Arc<str> = Arc::from(name);
        self.0.insert(n.clone());
        n
    }
}

/// (worker, task channel) -> worker channel, grouped by worker: one small list per worker instead of one
/// hash slot per pair (a workspace has five channels by default, so five pairs per worker). Same calls as
/// the map it replaces.
#[derive(Debug, Default)]
pub(crate) struct ChannelOf(SidMap<Sid, Vec<(Sid, Sid)>>);

impl ChannelOf {
    pub(crate) fn get(&self, key: &(Sid, Sid)) -> Option<&Sid> {
        self.0.get(&key.0)?.iter().find(|(c, _)| *c == key.1).map(|(_, wc)| wc)
    }

    /// The worker's (task channel, worker channel) pairs.
    pub(crate) fn of(&self, worker: Sid) -> &[(Sid, Sid)] {
        self.0.get(&worker).map(Vec::as_slice).unwrap_or(&[])
    }

    pub(crate) fn insert(&mut self, key: (Sid, Sid), wc: Sid) {
        let list = self.0.entry(key.0).or_default();
        match list.iter_mut().find(|(c, _)| *c == key.1) {
            Some(slot) => slot.1 = wc,
            None => {
                // Exact growth: lists are short and made once per worker and channel.
                list.reserve_exact(1);
                list.push((key.1, wc));
            }
        }
    }

    pub(crate) fn remove(&mut self, key: &(Sid, Sid)) {
        if let Some(list) = self.0.get_mut(&key.0) {
            list.retain(|(c, _)| *c != key.1);
            if list.is_empty() {
                self.0.remove(&key.0);
            }
        }
    }
}

/// Per-queue routing index.
#[derive(Debug, Default, Clone)]
pub(crate) struct QueueIndex {
    pub(crate) members: BTreeSet<Sid>,
    pub(crate) available: BTreeSet<(Timestamp, Sid)>,
    pub(crate) waiting: BTreeSet<TaskKey>,
}

/// One workspace's state.
pub(crate) struct Space {
    pub(crate) ws: Workspace,
    pub(crate) activities: BTreeMap<Sid, Activity>,
    pub(crate) channels: BTreeMap<Sid, TaskChannel>,
    pub(crate) workers: SidMap<Sid, Worker>,
    /// Boxed for the same reason as `tasks`: five per worker, so half a million at 100,000 workers.
    pub(crate) worker_channels: SidMap<Sid, Box<WorkerChannel>>,
    pub(crate) queues: BTreeMap<Sid, TaskQueue>,
    pub(crate) workflows: BTreeMap<Sid, Workflow>,
    /// Boxed: a million waiting tasks in a hash table sized by powers of two would otherwise leave up to
    /// half its slots of a full `Task` each empty; a boxed slot is 32 bytes.
    pub(crate) tasks: ShardedSidMap<Sid, Box<Task>>,
    pub(crate) reservations: SidMap<Sid, Reservation>,
    // Indexes.
    pub(crate) qidx: SidMap<Sid, QueueIndex>,
    pub(crate) worker_queues: SidMap<Sid, Vec<Sid>>,
    pub(crate) worker_names: HashMap<String, Sid>,
    pub(crate) channel_of: ChannelOf,
    pub(crate) task_reservations: SidMap<Sid, Vec<Sid>>,
    pub(crate) worker_reservations: SidMap<Sid, Vec<Sid>>,
    /// worker -> idle key while in `available` sets.
    pub(crate) idle_key: SidMap<Sid, Timestamp>,
    // Statistics.
    /// Shared names (see [`Names`]).
    pub(crate) names: Names,
}

pub(crate) fn validate_name(param: &str, name: &str) -> Result<(), Error> {
    if name.trim().is_empty() {
        return Err(Error::invalid(param, "must not be empty"));
    }
    if name.chars().count() > MAX_NAME {
        return Err(Error::invalid(param, format!("must be at most {MAX_NAME} characters")));
    }
    Ok(())
}

/// Parses an `Attributes` parameter: a JSON object of at most 4096 characters.
pub(crate) fn parse_attributes(text: &str) -> Result<Value, Error> {
    if text.chars().count() > MAX_ATTRIBUTES {
        return Err(Error::invalid(
            "Attributes",
            format!("is {} characters long; the limit is {MAX_ATTRIBUTES}", text.chars().count()),
        ));
    }
    match serde_json::from_str::<Value>(text) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(Error::invalid("Attributes", "must be a JSON object, e.g. {\"skills\":[\"support\"]}")),
        Err(e) => Err(Error::invalid("Attributes", format!("is not valid JSON: {e}"))),
    }
}

/// Parses `TargetWorkers` with the limits of `origin`; empty = matches nobody.
pub(crate) fn parse_target_workers(text: &str, origin: Origin) -> Result<Option<Expr>, Error> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    Expr::parse_from(text, origin)
        .map(Some)
        .map_err(|e| Error::invalid("TargetWorkers", format!("{} {e}", quote(text))))
}

impl Space {
    pub(crate) fn new(ws: Workspace) -> Space {
        Space {
            ws,
            activities: BTreeMap::new(),
            channels: BTreeMap::new(),
            workers: SidMap::default(),
            worker_channels: SidMap::default(),
            queues: BTreeMap::new(),
            workflows: BTreeMap::new(),
            tasks: ShardedSidMap::default(),
            reservations: SidMap::default(),
            qidx: SidMap::default(),
            worker_queues: SidMap::default(),
            worker_names: HashMap::new(),
            channel_of: ChannelOf::default(),
            task_reservations: SidMap::default(),
            worker_reservations: SidMap::default(),
            idle_key: SidMap::default(),
            names: Names::default(),
        }
    }

    pub(crate) fn sid(&self) -> Sid {
        self.ws.sid
    }

    pub(crate) fn path(&self, rest: impl std::fmt::Display) -> String {
        format!("/Workspaces/{}/{rest}", self.ws.sid)
    }

    /// The 404 of the resource `{collection}/{id}` of this workspace.
    pub(crate) fn missing(&self, collection: &str, id: impl std::fmt::Display) -> Error {
        Error::not_found(self.path(format!("{collection}/{id}")))
    }

    pub(crate) fn activity(&self, sid: Sid, param: &str) -> Result<&Activity, Error> {
        self.activities.get(&sid).ok_or_else(|| {
            Error::invalid(param, format!("Activity {sid} does not exist in workspace {}", self.ws.sid))
        })
    }

    pub(crate) fn channel_by_name(&self, sid_or_name: &str) -> Option<&TaskChannel> {
        match Sid::parse_as(sid_or_name, Prefix::TaskChannel) {
            Ok(sid) => self.channels.get(&sid),
            Err(_) => self.channels.values().find(|c| c.unique_name == sid_or_name),
        }
    }

    /// Creates a workspace with the default activities and task channels.
    pub(crate) fn create(out: &mut Effects, now: Timestamp, p: WorkspaceParams) -> Result<Space, Error> {
        let name = p.friendly_name.ok_or_else(|| Error::invalid("FriendlyName", "is required"))?;
        validate_name("FriendlyName", &name)?;
        let order = match &p.prioritize_queue_order {
            Some(o) => QueueOrder::parse(o).ok_or_else(|| {
                Error::invalid("PrioritizeQueueOrder", format!("must be FIFO or LIFO, not '{o}'"))
            })?,
            None => QueueOrder::Fifo,
        };
        let fifo = match p.template.as_deref() {
            None | Some("NONE") => false,
            Some("FIFO") => true,
            Some(t) => return Err(Error::invalid("Template", format!("must be NONE or FIFO, not '{t}'"))),
        };
        let sid = out.sid(Prefix::Workspace);
        let offline = out.sid(Prefix::Activity);
        let ws = Workspace {
            account_sid: out.account_sid,
            sid,
            friendly_name: name,
            default_activity_sid: offline,
            default_activity_name: "Offline".into(),
            timeout_activity_sid: offline,
            timeout_activity_name: "Offline".into(),
            event_callback_url: p.event_callback_url,
            events_filter: p.events_filter,
            multi_task_enabled: p.multi_task_enabled.unwrap_or(true),
            prioritize_queue_order: order,
            date_created: now,
            date_updated: now,
        };
        let mut sp = Space::new(ws);
        out.touch(Key::Workspace(sid));
        sp.emit_workspace(out, now, EventType::WorkspaceCreated);
        for (name, available) in [("Offline", false), ("Available", true), ("Unavailable", false)] {
            let a = if name == "Offline" { offline } else { out.sid(Prefix::Activity) };
            sp.insert_activity(out, now, a, name.into(), available);
        }
        for unique in ["default", "voice", "chat", "sms", "video"] {
            sp.insert_channel(out, now, unique.into(), unique.into(), false);
        }
        if fifo {
            let q = sp.create_queue(
                out,
                now,
                TaskQueueParams {
                    friendly_name: Some("Sample Queue".into()),
                    target_workers: Some("1==1".into()),
                    ..Default::default()
                },
            )?;
            sp.create_workflow(out, now, WorkflowParams::single_queue("Default Fifo Workflow", q.sid))?;
        }
        Ok(sp)
    }

    fn emit_workspace(&self, out: &mut Effects, now: Timestamp, t: EventType) {
        let mut data = EventData::with_capacity(6, 64);
        data.desc(&[Part::S("Workspace "), Part::S(&self.ws.friendly_name), Part::S(" "), Part::S(verb(t))])
            .sid(Field::WorkspaceSid, self.ws.sid)
            .text(Field::WorkspaceName, &self.ws.friendly_name);
        out.emit(&self.ws, now, t, "workspace", self.ws.sid, data);
    }

    pub(crate) fn update_workspace(
        &mut self,
        out: &mut Effects,
        now: Timestamp,
        p: WorkspaceParams,
    ) -> Result<Reply, Error> {
        if let Some(n) = &p.friendly_name {
            validate_name("FriendlyName", n)?;
        }
        let order = match &p.prioritize_queue_order {
            Some(o) => Some(QueueOrder::parse(o).ok_or_else(|| {
                Error::invalid("PrioritizeQueueOrder", format!("must be FIFO or LIFO, not '{o}'"))
            })?),
            None => None,
        };
        let default = match p.default_activity_sid {
            Some(a) => Some(self.activity(a, "DefaultActivitySid")?.clone()),
            None => None,
        };
        let timeout = match p.timeout_activity_sid {
            Some(a) => Some(self.activity(a, "TimeoutActivitySid")?.clone()),
            None => None,
        };
        if p.multi_task_enabled == Some(false) && self.ws.multi_task_enabled {
            return Err(Error::invalid(
                "MultiTaskEnabled",
                "a multitasking workspace cannot go back to single-tasking; create a new workspace instead",
            ));
        }
        let ws = &mut self.ws;
        if let Some(n) = p.friendly_name {
            ws.friendly_name = n;
        }
        if let Some(u) = p.event_callback_url {
            ws.event_callback_url = if u.is_empty() { None } else { Some(u) };
        }
        if let Some(f) = p.events_filter {
            ws.events_filter = if f.is_empty() { None } else { Some(f) };
        }
        if let Some(m) = p.multi_task_enabled {
            ws.multi_task_enabled = m;
        }
        if let Some(o) = order {
            ws.prioritize_queue_order = o;
        }
        if let Some(a) = default {
            ws.default_activity_sid = a.sid;
            ws.default_activity_name = a.friendly_name;
        }
        if let Some(a) = timeout {
            ws.timeout_activity_sid = a.sid;
            ws.timeout_activity_name = a.friendly_name;
        }
        ws.date_updated = now;
        out.touch(Key::Workspace(ws.sid));
        self.emit_workspace(out, now, EventType::WorkspaceUpdated);
        Ok(Reply::Workspace(self.ws.clone()))
    }

    /// Removes every record of the workspace (store deletions, timers).
    pub(crate) fn delete_all(self, out: &mut Effects, now: Timestamp) {
        let ws = self.ws.sid;
        self.emit_workspace(out, now, EventType::WorkspaceDeleted);
        out.touch(Key::Workspace(ws));
        let mut touch_all = |sids: &mut dyn Iterator<Item = &Sid>, key: fn(Sid, Sid) -> Key| {
            sids.for_each(|s| out.touch(key(ws, *s)));
        };
        touch_all(&mut self.activities.keys(), Key::Activity);
        touch_all(&mut self.channels.keys(), Key::TaskChannel);
        touch_all(&mut self.workers.keys(), Key::Worker);
        touch_all(&mut self.worker_channels.keys(), Key::WorkerChannel);
        touch_all(&mut self.queues.keys(), Key::TaskQueue);
        touch_all(&mut self.workflows.keys(), Key::Workflow);
        for s in self.tasks.keys() {
            out.touch(Key::Task(ws, *s));
            for t in [Timer::TaskTtl(ws, *s), Timer::TargetTimeout(ws, *s), Timer::Purge(ws, *s)] {
                out.timers.cancel(t);
            }
        }
        for s in self.reservations.keys() {
            out.touch(Key::Reservation(ws, *s));
            out.timers.cancel(Timer::ReservationTimeout(ws, *s));
        }
    }

    /// Every workspace-scoped command.
    pub(crate) fn apply(&mut self, out: &mut Effects, now: Timestamp, cmd: Command) -> Result<Reply, Error> {
        match cmd {
            Command::CreateActivity { friendly_name, available, .. } => {
                self.create_activity(out, now, friendly_name, available)
            }
            Command::UpdateActivity { sid, friendly_name, .. } => {
                self.update_activity(out, now, sid, friendly_name)
            }
            Command::DeleteActivity { sid, .. } => self.delete_activity(out, now, sid),
            Command::CreateTaskChannel { friendly_name, unique_name, channel_optimized_routing, .. } => {
                self.create_channel(out, now, friendly_name, unique_name, channel_optimized_routing)
            }
            Command::UpdateTaskChannel { sid, friendly_name, channel_optimized_routing, .. } => {
                self.update_channel(out, now, sid, friendly_name, channel_optimized_routing)
            }
            Command::DeleteTaskChannel { sid, .. } => self.delete_channel(out, now, sid),
            Command::CreateWorker { params, .. } => self.create_worker(out, now, params),
            Command::UpdateWorker { sid, params, if_match, .. } => {
                self.update_worker(out, now, sid, params, if_match)
            }
            Command::DeleteWorker { sid, if_match, .. } => self.delete_worker(out, now, sid, if_match),
            Command::UpdateWorkerChannel { worker_sid, sid, capacity, available, .. } => {
                self.update_worker_channel(out, now, worker_sid, &sid, capacity, available)
            }
            Command::CreateTaskQueue { params, .. } => {
                self.create_queue(out, now, params).map(Reply::TaskQueue)
            }
            Command::UpdateTaskQueue { sid, params, .. } => self.update_queue(out, now, sid, params),
            Command::DeleteTaskQueue { sid, .. } => self.delete_queue(out, now, sid),
            Command::CreateWorkflow { params, .. } => {
                self.create_workflow(out, now, params).map(Reply::Workflow)
            }
            Command::UpdateWorkflow { sid, params, .. } => self.update_workflow(out, now, sid, params),
            Command::DeleteWorkflow { sid, .. } => self.delete_workflow(out, now, sid),
            Command::CreateTask { params, .. } => self.create_task(out, now, params),
            Command::UpdateTask { sid, params, if_match, .. } => {
                self.update_task(out, now, sid, params, if_match)
            }
            Command::DeleteTask { sid, if_match, .. } => self.delete_task(out, now, sid, if_match),
            _ => Err(Error::illegal("not a workspace command")),
        }
    }

    /// Rebuilds every index and timer after a restore.
    pub(crate) fn rebuild_indexes(&mut self, out: &mut Effects) {
        let ws = self.ws.sid;
        for q in self.queues.keys() {
            self.qidx.entry(*q).or_default();
        }
        let workers: Vec<Sid> = self.workers.keys().copied().collect();
        for w in workers {
            self.refresh_membership(w);
            self.refresh_availability(w);
        }
        let tasks: Vec<Sid> = self.tasks.keys().copied().collect();
        for t in tasks {
            self.reindex_task(t);
            let Some(task) = self.tasks.get(&t) else { continue };
            if let (TaskStatus::Assigned | TaskStatus::Wrapping, Some(at)) =
                (task.assignment_status, task.assigned_at)
            {
                out.timers.set(Timer::TaskTtl(ws, t), at.plus_millis(out.config.assigned_task_ttl_ms));
            }
            if matches!(task.assignment_status, TaskStatus::Pending | TaskStatus::Reserved) {
                out.timers.set(Timer::TaskTtl(ws, t), task.date_created.plus_secs(task.timeout));
                if let Some(at) = task.routing.and_then(|r| r.timeout_at) {
                    out.timers.set(Timer::TargetTimeout(ws, t), at);
                }
            }
            if let Some(at) = task.terminal_at {
                out.timers.set(Timer::Purge(ws, t), at.plus_millis(out.config.terminal_task_purge_ms));
            }
        }
        for r in self.reservations.values() {
            if r.reservation_status == ReservationStatus::Pending {
                if let Some(at) = r.timeout_at {
                    out.timers.set(Timer::ReservationTimeout(ws, r.sid), at);
                }
            }
        }
        let mut lists: Vec<(Sid, Vec<Sid>)> =
            self.task_reservations.iter().map(|(k, v)| (*k, v.clone())).collect();
        for (t, list) in lists.iter_mut() {
            list.sort_by_key(|r| self.reservations.get(r).map(|r| (r.date_created, r.sid)));
            self.task_reservations.insert(*t, list.clone());
        }
    }
}

pub(crate) fn verb(t: EventType) -> &'static str {
    let s = t.as_str();
    match s.rsplit('.').next() {
        Some("created") => "created",
        Some("updated") => "updated",
        Some("deleted") => "deleted",
        _ => "changed",
    }
}
