//! One workspace: its resources, the routing indexes over them, and the CRUD commands.
//!
//! Indexes (all maintained incrementally):
//! - `members[queue]`: workers whose attributes match the queue's `target_workers`, recomputed only when a
//!   worker's attributes or a queue's expression change;
//! - `available[queue]`: available members ordered by `(last_idle_at, sid)`: longest idle first;
//! - `waiting[queue]`: tasks in the queue that want more reservations, ordered by priority, then age
//!   (FIFO/LIFO by `virtual_start_time`), then SID.

use super::{check_if_match, Key, Out, Reply, Timer};
use crate::command::*;
use crate::error::{quote, Error};
use crate::event::{EventData, EventType, Field, Part};
use crate::expr::{Expr, Origin, WorkerScope};
use crate::model::*;
use crate::sharded::Sharded;
use crate::sid::{Prefix, Sid};
use crate::time::Timestamp;
use crate::workflow::WorkflowConfig;
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

/// Order of a waiting task: priority desc, then age key, then SID.
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
    pub(crate) fn create(out: &mut Out, now: Timestamp, p: WorkspaceParams) -> Result<Space, Error> {
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
            let config =
                format!(r#"{{"task_routing":{{"filters":[],"default_filter":{{"queue":"{}"}}}}}}"#, q.sid);
            sp.create_workflow(
                out,
                now,
                WorkflowParams {
                    friendly_name: Some("Default Fifo Workflow".into()),
                    configuration: Some(config),
                    ..Default::default()
                },
            )?;
        }
        Ok(sp)
    }

    fn emit_workspace(&self, out: &mut Out, now: Timestamp, t: EventType) {
        let mut data = EventData::with_capacity(6, 64);
        data.desc(&[Part::S("Workspace "), Part::S(&self.ws.friendly_name), Part::S(" "), Part::S(verb(t))])
            .sid(Field::WorkspaceSid, self.ws.sid)
            .text(Field::WorkspaceName, &self.ws.friendly_name);
        out.emit(&self.ws, now, t, "workspace", self.ws.sid, data);
    }

    pub(crate) fn update_workspace(
        &mut self,
        out: &mut Out,
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
    pub(crate) fn delete_all(self, out: &mut Out, now: Timestamp) {
        let ws = self.ws.sid;
        self.emit_workspace(out, now, EventType::WorkspaceDeleted);
        out.touch(Key::Workspace(ws));
        for s in self.activities.keys() {
            out.touch(Key::Activity(ws, *s));
        }
        for s in self.channels.keys() {
            out.touch(Key::TaskChannel(ws, *s));
        }
        for s in self.workers.keys() {
            out.touch(Key::Worker(ws, *s));
        }
        for s in self.worker_channels.keys() {
            out.touch(Key::WorkerChannel(ws, *s));
        }
        for s in self.queues.keys() {
            out.touch(Key::TaskQueue(ws, *s));
        }
        for s in self.workflows.keys() {
            out.touch(Key::Workflow(ws, *s));
        }
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
    pub(crate) fn apply(&mut self, out: &mut Out, now: Timestamp, cmd: Command) -> Result<Reply, Error> {
        match cmd {
            Command::CreateActivity { friendly_name, available, .. } => {
                let name = friendly_name.ok_or_else(|| Error::invalid("FriendlyName", "is required"))?;
                validate_name("FriendlyName", &name)?;
                if self.activities.len() >= MAX_ACTIVITIES {
                    return Err(Error::invalid(
                        "FriendlyName",
                        format!("a workspace holds at most {MAX_ACTIVITIES} activities; delete one first"),
                    ));
                }
                if self.activities.values().any(|a| a.friendly_name.eq_ignore_ascii_case(&name)) {
                    return Err(Error::Conflict {
                        message: format!(
                            "An Activity named '{name}' already exists in workspace {}",
                            self.ws.sid
                        ),
                    });
                }
                let sid = out.sid(Prefix::Activity);
                self.insert_activity(out, now, sid, name, available.unwrap_or(false));
                Ok(Reply::Activity(self.activities[&sid].clone()))
            }
            Command::UpdateActivity { sid, friendly_name, .. } => {
                self.update_activity(out, now, sid, friendly_name)
            }
            Command::DeleteActivity { sid, .. } => self.delete_activity(out, now, sid),
            Command::CreateTaskChannel { friendly_name, unique_name, channel_optimized_routing, .. } => {
                let name = friendly_name.ok_or_else(|| Error::invalid("FriendlyName", "is required"))?;
                let unique = unique_name.ok_or_else(|| Error::invalid("UniqueName", "is required"))?;
                validate_name("FriendlyName", &name)?;
                validate_name("UniqueName", &unique)?;
                if self.channels.values().any(|c| c.unique_name == unique) {
                    return Err(Error::Conflict {
                        message: format!("A TaskChannel with UniqueName '{unique}' already exists"),
                    });
                }
                let sid =
                    self.insert_channel(out, now, name, unique, channel_optimized_routing.unwrap_or(false));
                Ok(Reply::TaskChannel(self.channels[&sid].clone()))
            }
            Command::UpdateTaskChannel { sid, friendly_name, channel_optimized_routing, .. } => {
                let c = self
                    .channel_by_name(&sid)
                    .ok_or_else(|| Error::not_found(self.path(format!("TaskChannels/{sid}"))))?
                    .sid;
                if let Some(n) = &friendly_name {
                    validate_name("FriendlyName", n)?;
                }
                let Some(ch) = self.channels.get_mut(&c) else { return Err(Error::not_found(sid)) };
                if let Some(n) = friendly_name {
                    ch.friendly_name = n;
                }
                if let Some(o) = channel_optimized_routing {
                    ch.channel_optimized_routing = o;
                }
                ch.date_updated = now;
                let ch = ch.clone();
                out.touch(Key::TaskChannel(self.ws.sid, c));
                self.emit_channel(out, now, EventType::TaskChannelUpdated, &ch);
                Ok(Reply::TaskChannel(ch))
            }
            Command::DeleteTaskChannel { sid, .. } => {
                let c = self
                    .channel_by_name(&sid)
                    .ok_or_else(|| Error::not_found(self.path(format!("TaskChannels/{sid}"))))?
                    .clone();
                if self
                    .tasks
                    .values()
                    .any(|t| t.task_channel_sid == c.sid && !t.assignment_status.is_terminal())
                {
                    return Err(Error::illegal(format!(
                        "Cannot delete TaskChannel {} because tasks on it are still active",
                        c.sid
                    )));
                }
                self.channels.remove(&c.sid);
                out.touch(Key::TaskChannel(self.ws.sid, c.sid));
                let wcs: Vec<Sid> = self
                    .worker_channels
                    .values()
                    .filter(|w| w.task_channel_sid == c.sid)
                    .map(|w| w.sid)
                    .collect();
                for wc in wcs {
                    if let Some(w) = self.worker_channels.remove(&wc) {
                        self.channel_of.remove(&(w.worker_sid, c.sid));
                    }
                    out.touch(Key::WorkerChannel(self.ws.sid, wc));
                }
                self.emit_channel(out, now, EventType::TaskChannelDeleted, &c);
                Ok(Reply::Deleted)
            }
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

    // ---- activities -------------------------------------------------------------------------------

    fn insert_activity(&mut self, out: &mut Out, now: Timestamp, sid: Sid, name: String, available: bool) {
        let a = Activity {
            account_sid: out.account_sid,
            workspace_sid: self.ws.sid,
            sid,
            friendly_name: name,
            available,
            date_created: now,
            date_updated: now,
        };
        out.touch(Key::Activity(self.ws.sid, sid));
        self.emit_activity(out, now, EventType::ActivityCreated, &a);
        self.activities.insert(sid, a);
    }

    fn emit_activity(&self, out: &mut Out, now: Timestamp, t: EventType, a: &Activity) {
        let mut data = EventData::with_capacity(7, 64);
        data.desc(&[Part::S("Activity "), Part::S(&a.friendly_name), Part::S(" "), Part::S(verb(t))])
            .sid(Field::ActivitySid, a.sid)
            .text(Field::ActivityName, &a.friendly_name)
            .bool(Field::ActivityAvailable, a.available);
        out.emit(&self.ws, now, t, "activity", a.sid, data);
    }

    fn update_activity(
        &mut self,
        out: &mut Out,
        now: Timestamp,
        sid: Sid,
        name: Option<String>,
    ) -> Result<Reply, Error> {
        if !self.activities.contains_key(&sid) {
            return Err(Error::not_found(self.path(format!("Activities/{sid}"))));
        }
        if let Some(n) = &name {
            validate_name("FriendlyName", n)?;
            if self.activities.values().any(|a| a.sid != sid && a.friendly_name.eq_ignore_ascii_case(n)) {
                return Err(Error::Conflict { message: format!("An Activity named '{n}' already exists") });
            }
        }
        let wsid = self.ws.sid;
        let Some(a) = self.activities.get_mut(&sid) else { return Err(Error::not_found(sid.to_string())) };
        if let Some(n) = name {
            a.friendly_name = n;
        }
        a.date_updated = now;
        let a = a.clone();
        out.touch(Key::Activity(wsid, sid));
        // Names are denormalized into workers, queues and the workspace.
        if self.ws.default_activity_sid == sid || self.ws.timeout_activity_sid == sid {
            if self.ws.default_activity_sid == sid {
                self.ws.default_activity_name = a.friendly_name.clone();
            }
            if self.ws.timeout_activity_sid == sid {
                self.ws.timeout_activity_name = a.friendly_name.clone();
            }
            out.touch(Key::Workspace(wsid));
        }
        for w in self.workers.values_mut().filter(|w| w.activity_sid == sid) {
            w.activity_name = a.friendly_name.clone();
            out.touch(Key::Worker(wsid, w.sid));
        }
        for q in self.queues.values_mut() {
            let mut touched = false;
            if q.reservation_activity_sid == Some(sid) {
                q.reservation_activity_name = Some(a.friendly_name.clone());
                touched = true;
            }
            if q.assignment_activity_sid == Some(sid) {
                q.assignment_activity_name = Some(a.friendly_name.clone());
                touched = true;
            }
            if touched {
                out.touch(Key::TaskQueue(wsid, q.sid));
            }
        }
        self.emit_activity(out, now, EventType::ActivityUpdated, &a);
        Ok(Reply::Activity(a))
    }

    fn delete_activity(&mut self, out: &mut Out, now: Timestamp, sid: Sid) -> Result<Reply, Error> {
        let a = self
            .activities
            .get(&sid)
            .ok_or_else(|| Error::not_found(self.path(format!("Activities/{sid}"))))?;
        let in_use = self.ws.default_activity_sid == sid
            || self.ws.timeout_activity_sid == sid
            || self.workers.values().any(|w| w.activity_sid == sid)
            || self
                .queues
                .values()
                .any(|q| q.reservation_activity_sid == Some(sid) || q.assignment_activity_sid == Some(sid));
        if in_use {
            return Err(Error::illegal(format!(
                "Cannot delete Activity {sid} ('{}') in workspace {} because it is in use by the workspace, a worker or a task queue",
                a.friendly_name, self.ws.sid
            )));
        }
        let a = a.clone();
        self.activities.remove(&sid);
        out.touch(Key::Activity(self.ws.sid, sid));
        self.emit_activity(out, now, EventType::ActivityDeleted, &a);
        Ok(Reply::Deleted)
    }

    // ---- task channels ------------------------------------------------------------------------------

    fn insert_channel(
        &mut self,
        out: &mut Out,
        now: Timestamp,
        name: String,
        unique: String,
        optimized: bool,
    ) -> Sid {
        let sid = out.sid(Prefix::TaskChannel);
        let c = TaskChannel {
            account_sid: out.account_sid,
            workspace_sid: self.ws.sid,
            sid,
            friendly_name: name,
            unique_name: unique,
            channel_optimized_routing: optimized,
            date_created: now,
            date_updated: now,
        };
        out.touch(Key::TaskChannel(self.ws.sid, sid));
        self.emit_channel(out, now, EventType::TaskChannelCreated, &c);
        let workers: Vec<Sid> = self.workers.keys().copied().collect();
        let unique = c.unique_name.clone();
        self.channels.insert(sid, c);
        for w in workers {
            self.insert_worker_channel(out, now, w, sid, &unique);
        }
        sid
    }

    fn emit_channel(&self, out: &mut Out, now: Timestamp, t: EventType, c: &TaskChannel) {
        let mut data = EventData::with_capacity(8, 96);
        data.desc(&[Part::S("TaskChannel "), Part::S(&c.unique_name), Part::S(" "), Part::S(verb(t))])
            .sid(Field::TaskChannelSid, c.sid)
            .text(Field::TaskChannelName, &c.friendly_name)
            .text(Field::TaskChannelUniqueName, &c.unique_name)
            .bool(Field::TaskChannelOptimizedRouting, c.channel_optimized_routing);
        out.emit(&self.ws, now, t, "taskchannel", c.sid, data);
    }

    fn insert_worker_channel(
        &mut self,
        out: &mut Out,
        now: Timestamp,
        worker: Sid,
        channel: Sid,
        unique: &str,
    ) {
        let sid = out.sid(Prefix::WorkerChannel);
        let wc = WorkerChannel {
            account_sid: out.account_sid,
            workspace_sid: self.ws.sid,
            sid,
            worker_sid: worker,
            task_channel_sid: channel,
            task_channel_unique_name: self.names.get(unique),
            configured_capacity: 1,
            assigned_tasks: 0,
            reserved_tasks: 0,
            available: true,
            date_created: now,
            date_updated: now,
        };
        self.channel_of.insert((worker, channel), sid);
        self.worker_channels.insert(sid, Box::new(wc));
        out.touch(Key::WorkerChannel(self.ws.sid, sid));
    }

    // ---- workers ------------------------------------------------------------------------------------

    /// Appends a worker's [`WORKER_FIELDS`] event fields.
    pub(crate) fn push_worker_fields(&self, w: &Worker, f: &mut EventData) {
        f.sid(Field::WorkerSid, w.sid)
            .text(Field::WorkerName, &w.friendly_name)
            .text(Field::WorkerAttributes, &w.attributes)
            .sid(Field::WorkerActivitySid, w.activity_sid)
            .text(Field::WorkerActivityName, &w.activity_name)
            .int(Field::WorkerVersion, w.version as i64);
    }

    pub(crate) fn emit_worker(
        &self,
        out: &mut Out,
        now: Timestamp,
        t: EventType,
        w: &Worker,
        extra: impl FnOnce(&mut EventData),
    ) {
        let mut data = EventData::with_capacity(WORKER_FIELDS + 12, 128 + w.attributes.len());
        match t {
            EventType::WorkerActivityUpdate => data.desc(&[
                Part::S("Worker "),
                Part::S(&w.friendly_name),
                Part::S(" updated to "),
                Part::S(&w.activity_name),
                Part::S(" Activity"),
            ]),
            _ => data.desc(&[Part::S("Worker "), Part::S(&w.friendly_name), Part::S(" "), Part::S(verb(t))]),
        };
        self.push_worker_fields(w, &mut data);
        extra(&mut data);
        out.emit(&self.ws, now, t, "worker", w.sid, data);
    }

    fn queue_matches(q: &TaskQueue, scope: &WorkerScope<'_>) -> bool {
        q.target_expr.as_ref().is_some_and(|e| e.eval(scope))
    }

    /// Evaluates `f` with the worker's expression scope (its attributes plus sid, names, activity).
    fn with_scope<R>(w: &Worker, f: impl FnOnce(&WorkerScope<'_>) -> R) -> R {
        let sid = w.sid.to_string();
        let act = w.activity_sid.to_string();
        f(&WorkerScope {
            attributes: &w.attributes_value,
            sid: &sid,
            friendly_name: &w.friendly_name,
            activity_sid: &act,
            activity_name: &w.activity_name,
        })
    }

    /// Recomputes which queues a worker belongs to and updates the queue indexes.
    pub(crate) fn refresh_membership(&mut self, worker: Sid) {
        let Some(w) = self.workers.get(&worker) else { return };
        let new: Vec<Sid> = Self::with_scope(w, |scope| {
            self.queues.values().filter(|q| Self::queue_matches(q, scope)).map(|q| q.sid).collect()
        });
        let old = self.worker_queues.remove(&worker).unwrap_or_default();
        let idle = self.idle_key.get(&worker).copied();
        for q in &old {
            if let Some(ix) = self.qidx.get_mut(q) {
                ix.members.remove(&worker);
                if let Some(t) = idle {
                    ix.available.remove(&(t, worker));
                }
            }
        }
        for q in &new {
            if let Some(ix) = self.qidx.get_mut(q) {
                ix.members.insert(worker);
                if let Some(t) = idle {
                    ix.available.insert((t, worker));
                }
            }
        }
        self.worker_queues.insert(worker, new);
    }

    /// Puts a worker into (or takes it out of) the `available` sets of its queues: a worker is routable
    /// when its activity is available and it has capacity left. Keyed by `last_idle_at`, so a worker that
    /// just got a reservation moves to the back (round robin by idle time).
    pub(crate) fn refresh_availability(&mut self, worker: Sid) {
        let Some(w) = self.workers.get(&worker) else { return };
        let want = if w.available && self.has_capacity(worker, None) { Some(w.last_idle_at) } else { None };
        let have = self.idle_key.get(&worker).copied();
        if want == have {
            return;
        }
        let Space { worker_queues, qidx, idle_key, .. } = self;
        for q in worker_queues.get(&worker).map(Vec::as_slice).unwrap_or(&[]) {
            if let Some(ix) = qidx.get_mut(q) {
                if let Some(t) = have {
                    ix.available.remove(&(t, worker));
                }
                if let Some(t) = want {
                    ix.available.insert((t, worker));
                }
            }
        }
        match want {
            Some(t) => idle_key.insert(worker, t),
            None => idle_key.remove(&worker),
        };
    }

    fn create_worker(&mut self, out: &mut Out, now: Timestamp, p: WorkerParams) -> Result<Reply, Error> {
        let name = p.friendly_name.ok_or_else(|| Error::invalid("FriendlyName", "is required"))?;
        validate_name("FriendlyName", &name)?;
        if self.worker_names.contains_key(&name.to_lowercase()) {
            return Err(Error::Conflict {
                message: format!(
                    "A Worker named '{name}' already exists in workspace {}; worker names are unique (case-insensitive)",
                    self.ws.sid
                ),
            });
        }
        let attributes = p.attributes.unwrap_or_else(|| "{}".into());
        let value = parse_attributes(&attributes)?;
        let activity =
            self.activity(p.activity_sid.unwrap_or(self.ws.default_activity_sid), "ActivitySid")?.clone();
        let sid = out.sid(Prefix::Worker);
        let w = Worker {
            account_sid: out.account_sid,
            workspace_sid: self.ws.sid,
            sid,
            friendly_name: name.clone(),
            activity_sid: activity.sid,
            activity_name: activity.friendly_name,
            available: activity.available,
            attributes,
            attributes_value: value,
            date_status_changed: now,
            date_created: now,
            date_updated: now,
            version: 1,
            last_idle_at: now,
        };
        self.worker_names.insert(name.to_lowercase(), sid);
        self.emit_worker(out, now, EventType::WorkerCreated, &w, |_: &mut EventData| {});
        self.workers.insert(sid, w);
        out.touch(Key::Worker(self.ws.sid, sid));
        let channels: Vec<(Sid, String)> =
            self.channels.values().map(|c| (c.sid, c.unique_name.clone())).collect();
        for (c, unique) in channels {
            self.insert_worker_channel(out, now, sid, c, &unique);
        }
        self.refresh_membership(sid);
        self.refresh_availability(sid);
        out.route_workers.push_back((self.ws.sid, sid));
        Ok(Reply::Worker(self.workers[&sid].clone()))
    }

    /// Moves a worker to an activity (emits `worker.activity.update`); routing follows via the work list.
    pub(crate) fn set_worker_activity(&mut self, out: &mut Out, now: Timestamp, worker: Sid, activity: Sid) {
        let Some(a) = self.activities.get(&activity).cloned() else { return };
        let Some(w) = self.workers.get_mut(&worker) else { return };
        if w.activity_sid == activity {
            return;
        }
        let prev_sid = w.activity_sid;
        let prev_name = std::mem::replace(&mut w.activity_name, a.friendly_name.clone());
        let in_prev = now.millis_since(w.date_status_changed);
        let was_available = w.available;
        w.activity_sid = a.sid;
        w.available = a.available;
        w.date_status_changed = now;
        w.date_updated = now;
        w.version += 1;
        if a.available && !was_available {
            w.last_idle_at = now;
        }
        let w = w.clone();
        out.touch(Key::Worker(self.ws.sid, worker));
        let extra = |d: &mut EventData| {
            d.sid(Field::WorkerPreviousActivitySid, prev_sid)
                .text(Field::WorkerPreviousActivityName, &prev_name)
                .int(Field::WorkerTimeInPreviousActivity, in_prev / 1000)
                .int(Field::WorkerTimeInPreviousActivityMs, in_prev);
        };
        self.emit_worker(out, now, EventType::WorkerActivityUpdate, &w, extra);
        self.refresh_availability(worker);
        if w.available {
            out.route_workers.push_back((self.ws.sid, worker));
        }
    }

    fn update_worker(
        &mut self,
        out: &mut Out,
        now: Timestamp,
        sid: Sid,
        p: WorkerParams,
        if_match: Option<String>,
    ) -> Result<Reply, Error> {
        let w =
            self.workers.get(&sid).ok_or_else(|| Error::not_found(self.path(format!("Workers/{sid}"))))?;
        check_if_match(&if_match, w.version)?;
        if let Some(n) = &p.friendly_name {
            validate_name("FriendlyName", n)?;
            if let Some(other) = self.worker_names.get(&n.to_lowercase()) {
                if *other != sid {
                    return Err(Error::Conflict { message: format!("A Worker named '{n}' already exists") });
                }
            }
        }
        let value = match &p.attributes {
            Some(a) => Some(parse_attributes(a)?),
            None => None,
        };
        let activity = match p.activity_sid {
            Some(a) => Some(self.activity(a, "ActivitySid")?.clone()),
            None => None,
        };
        if p.reject_pending_reservations == Some(true) {
            match &activity {
                Some(a) if !a.available => {}
                _ => {
                    return Err(Error::invalid(
                        "RejectPendingReservations",
                        "is only valid together with an ActivitySid of an unavailable activity",
                    ))
                }
            }
        }
        // Validated; now mutate.
        let wsid = self.ws.sid;
        if let Some(n) = p.friendly_name {
            if let Some(w) = self.workers.get_mut(&sid) {
                self.worker_names.remove(&w.friendly_name.to_lowercase());
                self.worker_names.insert(n.to_lowercase(), sid);
                w.friendly_name = n;
                w.version += 1;
                w.date_updated = now;
            }
            out.touch(Key::Worker(wsid, sid));
        }
        if let (Some(text), Some(v)) = (p.attributes, value) {
            if let Some(w) = self.workers.get_mut(&sid) {
                w.attributes = text;
                w.attributes_value = v;
                w.version += 1;
                w.date_updated = now;
                let w = w.clone();
                self.emit_worker(out, now, EventType::WorkerAttributesUpdate, &w, |_: &mut EventData| {});
            }
            out.touch(Key::Worker(wsid, sid));
            self.refresh_membership(sid);
            out.route_workers.push_back((wsid, sid));
        }
        if let Some(a) = activity {
            if p.reject_pending_reservations == Some(true) {
                let pending: Vec<Sid> = self
                    .worker_reservations
                    .get(&sid)
                    .map(|v| {
                        v.iter()
                            .filter(|r| {
                                self.reservations.get(r).map(|r| r.reservation_status)
                                    == Some(ReservationStatus::Pending)
                            })
                            .copied()
                            .collect()
                    })
                    .unwrap_or_default();
                for r in pending {
                    self.reject_reservation(out, now, r, None, false);
                }
            }
            self.set_worker_activity(out, now, sid, a.sid);
        }
        Ok(Reply::Worker(self.workers[&sid].clone()))
    }

    fn delete_worker(
        &mut self,
        out: &mut Out,
        now: Timestamp,
        sid: Sid,
        if_match: Option<String>,
    ) -> Result<Reply, Error> {
        let w =
            self.workers.get(&sid).ok_or_else(|| Error::not_found(self.path(format!("Workers/{sid}"))))?;
        check_if_match(&if_match, w.version)?;
        let busy = self.worker_reservations.get(&sid).is_some_and(|v| {
            v.iter().any(|r| self.reservations.get(r).is_some_and(|r| r.reservation_status.is_active()))
        });
        if busy {
            return Err(Error::illegal(format!(
                "Cannot delete worker {sid} in workspace {} because it has pending or accepted reservations; \
                 complete or reject them first",
                self.ws.sid
            )));
        }
        let w = w.clone();
        if let Some(w) = self.workers.get_mut(&sid) {
            w.available = false;
        }
        self.refresh_availability(sid);
        for q in self.worker_queues.remove(&sid).unwrap_or_default() {
            if let Some(ix) = self.qidx.get_mut(&q) {
                ix.members.remove(&sid);
            }
        }
        self.workers.remove(&sid);
        self.worker_names.remove(&w.friendly_name.to_lowercase());
        let wcs: Vec<Sid> =
            self.worker_channels.values().filter(|c| c.worker_sid == sid).map(|c| c.sid).collect();
        for wc in wcs {
            if let Some(c) = self.worker_channels.remove(&wc) {
                self.channel_of.remove(&(sid, c.task_channel_sid));
            }
            out.touch(Key::WorkerChannel(self.ws.sid, wc));
        }
        out.touch(Key::Worker(self.ws.sid, sid));
        self.emit_worker(out, now, EventType::WorkerDeleted, &w, |_: &mut EventData| {});
        Ok(Reply::Deleted)
    }

    fn update_worker_channel(
        &mut self,
        out: &mut Out,
        now: Timestamp,
        worker: Sid,
        sid: &str,
        capacity: Option<i64>,
        available: Option<bool>,
    ) -> Result<Reply, Error> {
        let w = self
            .workers
            .get(&worker)
            .ok_or_else(|| Error::not_found(self.path(format!("Workers/{worker}"))))?
            .clone();
        let wc_sid = match Sid::parse_as(sid, Prefix::WorkerChannel) {
            Ok(s) if self.worker_channels.get(&s).is_some_and(|c| c.worker_sid == worker) => s,
            _ => self
                .channel_by_name(sid)
                .and_then(|c| self.channel_of.get(&(worker, c.sid)).copied())
                .ok_or_else(|| Error::not_found(self.path(format!("Workers/{worker}/Channels/{sid}"))))?,
        };
        if let Some(c) = capacity {
            if !(0..=1000).contains(&c) {
                return Err(Error::invalid("Capacity", format!("must be between 0 and 1000, not {c}")));
            }
        }
        let Some(wc) = self.worker_channels.get_mut(&wc_sid) else {
            return Err(Error::not_found(sid.to_owned()));
        };
        let prev = wc.configured_capacity;
        if let Some(c) = capacity {
            wc.configured_capacity = c as u32;
        }
        if let Some(a) = available {
            wc.available = a;
        }
        wc.date_updated = now;
        let wc = wc.clone();
        out.touch(Key::WorkerChannel(self.ws.sid, wc_sid));
        let extra = |d: &mut EventData| {
            d.sid(Field::TaskChannelSid, wc.task_channel_sid)
                .text(Field::TaskChannelUniqueName, &wc.task_channel_unique_name)
                .bool(Field::WorkerChannelAvailable, wc.available)
                .int(Field::WorkerChannelAvailableCapacity, i64::from(wc.available_capacity_percentage()))
                .int(Field::WorkerChannelPreviousCapacity, i64::from(prev))
                .int(Field::WorkerChannelTaskCount, i64::from(wc.assigned_tasks));
        };
        if capacity.is_some() {
            self.emit_worker(out, now, EventType::WorkerCapacityUpdate, &w, extra);
        }
        if available.is_some() {
            self.emit_worker(out, now, EventType::WorkerChannelAvailabilityUpdate, &w, extra);
        }
        self.refresh_availability(worker);
        out.route_workers.push_back((self.ws.sid, worker));
        Ok(Reply::WorkerChannel(*wc))
    }

    // ---- task queues --------------------------------------------------------------------------------

    fn emit_queue(&self, out: &mut Out, now: Timestamp, t: EventType, q: &TaskQueue) {
        let mut data = EventData::with_capacity(7, 64 + q.target_workers.len());
        data.desc(&[Part::S("TaskQueue "), Part::S(&q.friendly_name), Part::S(" "), Part::S(verb(t))])
            .sid(Field::TaskQueueSid, q.sid)
            .text(Field::TaskQueueName, &q.friendly_name)
            .text(Field::TaskQueueTargetExpression, &q.target_workers);
        out.emit(&self.ws, now, t, "taskqueue", q.sid, data);
    }

    fn queue_params(&self, p: &TaskQueueParams) -> Result<(Option<Option<Expr>>, Option<QueueOrder>), Error> {
        if let Some(n) = &p.friendly_name {
            validate_name("FriendlyName", n)?;
        }
        if let Some(m) = p.max_reserved_workers {
            if !(1..=50).contains(&m) {
                return Err(Error::invalid(
                    "MaxReservedWorkers",
                    format!("must be between 1 and 50, not {m}"),
                ));
            }
        }
        let order = match &p.task_order {
            Some(o) => Some(
                QueueOrder::parse(o)
                    .ok_or_else(|| Error::invalid("TaskOrder", format!("must be FIFO or LIFO, not '{o}'")))?,
            ),
            None => None,
        };
        for (param, a) in [
            ("ReservationActivitySid", p.reservation_activity_sid),
            ("AssignmentActivitySid", p.assignment_activity_sid),
        ] {
            if let Some(a) = a {
                self.activity(a, param)?;
            }
        }
        let expr = match &p.target_workers {
            Some(t) => Some(parse_target_workers(t, Origin::Input)?),
            None => None,
        };
        Ok((expr, order))
    }

    pub(crate) fn create_queue(
        &mut self,
        out: &mut Out,
        now: Timestamp,
        p: TaskQueueParams,
    ) -> Result<TaskQueue, Error> {
        let name = p.friendly_name.clone().ok_or_else(|| Error::invalid("FriendlyName", "is required"))?;
        let (expr, order) = self.queue_params(&p)?;
        let target = p.target_workers.clone().unwrap_or_else(|| "1==1".into());
        let expr = match expr {
            Some(e) => e,
            None => parse_target_workers(&target, Origin::Input)?,
        };
        let act_name =
            |a: Option<Sid>| a.and_then(|a| self.activities.get(&a)).map(|a| a.friendly_name.clone());
        let sid = out.sid(Prefix::TaskQueue);
        let q = TaskQueue {
            account_sid: out.account_sid,
            workspace_sid: self.ws.sid,
            sid,
            friendly_name: name,
            target_workers: target,
            target_expr: expr,
            max_reserved_workers: p.max_reserved_workers.unwrap_or(1) as u32,
            task_order: order.unwrap_or_default(),
            reservation_activity_sid: p.reservation_activity_sid,
            reservation_activity_name: act_name(p.reservation_activity_sid),
            assignment_activity_sid: p.assignment_activity_sid,
            assignment_activity_name: act_name(p.assignment_activity_sid),
            date_created: now,
            date_updated: now,
        };
        self.emit_queue(out, now, EventType::TaskQueueCreated, &q);
        self.queues.insert(sid, q.clone());
        self.qidx.insert(sid, QueueIndex::default());
        out.touch(Key::TaskQueue(self.ws.sid, sid));
        self.rebuild_queue_members(out, sid);
        Ok(q)
    }

    /// Recomputes a queue's members over all workers (queue create / expression change only).
    fn rebuild_queue_members(&mut self, out: &mut Out, queue: Sid) {
        let Some(q) = self.queues.get(&queue) else { return };
        let members: BTreeSet<Sid> = self
            .workers
            .values()
            .filter(|w| Self::with_scope(w, |scope| Self::queue_matches(q, scope)))
            .map(|w| w.sid)
            .collect();
        let mut ix =
            QueueIndex { members: members.clone(), available: BTreeSet::new(), waiting: BTreeSet::new() };
        if let Some(old) = self.qidx.remove(&queue) {
            ix.waiting = old.waiting;
        }
        for w in self.workers.keys() {
            let list = self.worker_queues.entry(*w).or_default();
            list.retain(|q| *q != queue);
            if members.contains(w) {
                list.push(queue);
                if let Some(t) = self.idle_key.get(w) {
                    ix.available.insert((*t, *w));
                }
                out.route_workers.push_back((self.ws.sid, *w));
            }
        }
        self.qidx.insert(queue, ix);
    }

    fn update_queue(
        &mut self,
        out: &mut Out,
        now: Timestamp,
        sid: Sid,
        p: TaskQueueParams,
    ) -> Result<Reply, Error> {
        if !self.queues.contains_key(&sid) {
            return Err(Error::not_found(self.path(format!("TaskQueues/{sid}"))));
        }
        let (expr, order) = self.queue_params(&p)?;
        let names: Vec<Option<String>> = [p.reservation_activity_sid, p.assignment_activity_sid]
            .iter()
            .map(|a| a.and_then(|a| self.activities.get(&a)).map(|a| a.friendly_name.clone()))
            .collect();
        let Some(q) = self.queues.get_mut(&sid) else { return Err(Error::not_found(sid.to_string())) };
        if let Some(n) = p.friendly_name {
            q.friendly_name = n;
        }
        if let Some(m) = p.max_reserved_workers {
            q.max_reserved_workers = m as u32;
        }
        if let Some(o) = order {
            q.task_order = o;
        }
        if let Some(a) = p.reservation_activity_sid {
            q.reservation_activity_sid = Some(a);
            q.reservation_activity_name = names[0].clone();
        }
        if let Some(a) = p.assignment_activity_sid {
            q.assignment_activity_sid = Some(a);
            q.assignment_activity_name = names[1].clone();
        }
        let expr_changed = if let (Some(t), Some(e)) = (p.target_workers, expr) {
            q.target_workers = t;
            q.target_expr = e;
            true
        } else {
            false
        };
        q.date_updated = now;
        let q = q.clone();
        out.touch(Key::TaskQueue(self.ws.sid, sid));
        if expr_changed {
            self.emit_queue(out, now, EventType::TaskQueueExpressionUpdated, &q);
            self.rebuild_queue_members(out, sid);
        }
        // Order or max reservations may have changed: re-key waiting tasks.
        let tasks: Vec<Sid> =
            self.qidx.get(&sid).map(|ix| ix.waiting.iter().map(|k| k.2).collect()).unwrap_or_default();
        for t in tasks {
            self.reindex_task(t);
            out.route_tasks.push_back((self.ws.sid, t));
        }
        Ok(Reply::TaskQueue(q))
    }

    fn delete_queue(&mut self, out: &mut Out, now: Timestamp, sid: Sid) -> Result<Reply, Error> {
        let q = self
            .queues
            .get(&sid)
            .ok_or_else(|| Error::not_found(self.path(format!("TaskQueues/{sid}"))))?
            .clone();
        if self.tasks.values().any(|t| t.task_queue_sid == Some(sid) && !t.assignment_status.is_terminal()) {
            return Err(Error::illegal(format!(
                "Cannot delete TaskQueue {sid} because tasks are still routed against it; complete or cancel them first"
            )));
        }
        if let Some(wf) = self.workflows.values().find(|w| w.config.queues().any(|q| q == sid)) {
            return Err(Error::illegal(format!(
                "Cannot delete TaskQueue {sid} because Workflow {} ('{}') targets it; update the workflow first",
                wf.sid, wf.friendly_name
            )));
        }
        self.queues.remove(&sid);
        self.qidx.remove(&sid);
        for list in self.worker_queues.values_mut() {
            list.retain(|q| *q != sid);
        }
        out.touch(Key::TaskQueue(self.ws.sid, sid));
        self.emit_queue(out, now, EventType::TaskQueueDeleted, &q);
        Ok(Reply::Deleted)
    }

    // ---- workflows ----------------------------------------------------------------------------------

    fn emit_workflow(&self, out: &mut Out, now: Timestamp, t: EventType, w: &Workflow) {
        let mut data = EventData::with_capacity(6, 64);
        data.desc(&[Part::S("Workflow "), Part::S(&w.friendly_name), Part::S(" "), Part::S(verb(t))])
            .sid(Field::WorkflowSid, w.sid)
            .text(Field::WorkflowName, &w.friendly_name);
        out.emit(&self.ws, now, t, "workflow", w.sid, data);
    }

    fn parse_config(&self, text: &str) -> Result<WorkflowConfig, Error> {
        WorkflowConfig::parse(text, &|q| self.queues.contains_key(&q))
            .map_err(|e| Error::invalid("Configuration", e))
    }

    fn check_reservation_timeout(t: Option<i64>) -> Result<(), Error> {
        if let Some(t) = t {
            if !(1..=86_400).contains(&t) {
                return Err(Error::invalid(
                    "TaskReservationTimeout",
                    format!("must be between 1 and 86400 seconds, not {t}"),
                ));
            }
        }
        Ok(())
    }

    pub(crate) fn create_workflow(
        &mut self,
        out: &mut Out,
        now: Timestamp,
        p: WorkflowParams,
    ) -> Result<Workflow, Error> {
        let name = p.friendly_name.ok_or_else(|| Error::invalid("FriendlyName", "is required"))?;
        validate_name("FriendlyName", &name)?;
        let text = p.configuration.ok_or_else(|| Error::invalid("Configuration", "is required"))?;
        let config = self.parse_config(&text)?;
        Self::check_reservation_timeout(p.task_reservation_timeout)?;
        let sid = out.sid(Prefix::Workflow);
        let w = Workflow {
            account_sid: out.account_sid,
            workspace_sid: self.ws.sid,
            sid,
            friendly_name: name,
            configuration: text,
            config: std::sync::Arc::new(config),
            assignment_callback_url: p.assignment_callback_url.filter(|u| !u.is_empty()),
            fallback_assignment_callback_url: p.fallback_assignment_callback_url.filter(|u| !u.is_empty()),
            task_reservation_timeout: p.task_reservation_timeout.unwrap_or(120) as u32,
            document_content_type: "application/json".into(),
            date_created: now,
            date_updated: now,
        };
        self.emit_workflow(out, now, EventType::WorkflowCreated, &w);
        self.workflows.insert(sid, w.clone());
        out.touch(Key::Workflow(self.ws.sid, sid));
        Ok(w)
    }

    fn update_workflow(
        &mut self,
        out: &mut Out,
        now: Timestamp,
        sid: Sid,
        p: WorkflowParams,
    ) -> Result<Reply, Error> {
        if !self.workflows.contains_key(&sid) {
            return Err(Error::not_found(self.path(format!("Workflows/{sid}"))));
        }
        if let Some(n) = &p.friendly_name {
            validate_name("FriendlyName", n)?;
        }
        let config = match &p.configuration {
            Some(t) => Some(self.parse_config(t)?),
            None => None,
        };
        Self::check_reservation_timeout(p.task_reservation_timeout)?;
        let Some(w) = self.workflows.get_mut(&sid) else { return Err(Error::not_found(sid.to_string())) };
        if let Some(n) = p.friendly_name {
            w.friendly_name = n;
        }
        if let (Some(t), Some(c)) = (p.configuration, config) {
            w.configuration = t;
            w.config = std::sync::Arc::new(c);
        }
        if let Some(u) = p.assignment_callback_url {
            w.assignment_callback_url = Some(u).filter(|u| !u.is_empty());
        }
        if let Some(u) = p.fallback_assignment_callback_url {
            w.fallback_assignment_callback_url = Some(u).filter(|u| !u.is_empty());
        }
        if let Some(t) = p.task_reservation_timeout {
            w.task_reservation_timeout = t as u32;
        }
        w.date_updated = now;
        let w = w.clone();
        out.touch(Key::Workflow(self.ws.sid, sid));
        self.emit_workflow(out, now, EventType::WorkflowUpdated, &w);
        if p.re_evaluate_tasks == Some(true) {
            let mut tasks: Vec<&Task> = self
                .tasks
                .values()
                .map(|t| &**t)
                .filter(|t| t.workflow_sid == Some(sid) && t.assignment_status == TaskStatus::Pending)
                .collect();
            tasks.sort_by_key(|t| (t.date_created, t.sid));
            let tasks: Vec<Sid> = tasks.into_iter().map(|t| t.sid).collect();
            for t in tasks {
                self.reevaluate(out, now, t);
            }
        }
        Ok(Reply::Workflow(w))
    }

    fn delete_workflow(&mut self, out: &mut Out, now: Timestamp, sid: Sid) -> Result<Reply, Error> {
        let w = self
            .workflows
            .get(&sid)
            .ok_or_else(|| Error::not_found(self.path(format!("Workflows/{sid}"))))?
            .clone();
        if self.tasks.values().any(|t| t.workflow_sid == Some(sid) && !t.assignment_status.is_terminal()) {
            return Err(Error::illegal(format!(
                "Cannot delete Workflow {sid} because tasks are still in it; complete or cancel them first"
            )));
        }
        self.workflows.remove(&sid);
        out.touch(Key::Workflow(self.ws.sid, sid));
        self.emit_workflow(out, now, EventType::WorkflowDeleted, &w);
        Ok(Reply::Deleted)
    }

    /// Rebuilds every index and timer after a restore.
    pub(crate) fn rebuild_indexes(&mut self, out: &mut Out) {
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
