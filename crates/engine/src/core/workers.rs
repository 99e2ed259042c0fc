//! Task channels, Workers and their per-channel capacity (WorkerChannels).

use super::space::{parse_attributes, validate_name, verb, Space, WORKER_FIELDS};
use super::{check_if_match, Effects, Key, Reply};
use crate::command::*;
use crate::error::Error;
use crate::event::{EventData, EventType, Field, Part};
use crate::model::*;
use crate::sid::{Prefix, Sid};
use crate::time::Timestamp;

impl Space {
    pub(crate) fn create_channel(
        &mut self,
        out: &mut Effects,
        now: Timestamp,
        friendly_name: Option<String>,
        unique_name: Option<String>,
        channel_optimized_routing: Option<bool>,
    ) -> Result<Reply, Error> {
        let name = friendly_name.ok_or_else(|| Error::invalid("FriendlyName", "is required"))?;
        let unique = unique_name.ok_or_else(|| Error::invalid("UniqueName", "is required"))?;
        validate_name("FriendlyName", &name)?;
        validate_name("UniqueName", &unique)?;
        if self.channels.values().any(|c| c.unique_name == unique) {
            return Err(Error::Conflict {
                message: format!("A TaskChannel with UniqueName '{unique}' already exists"),
            });
        }
        let sid = self.insert_channel(out, now, name, unique, channel_optimized_routing.unwrap_or(false));
        Ok(Reply::TaskChannel(self.channels[&sid].clone()))
    }

    pub(crate) fn insert_channel(
        &mut self,
        out: &mut Effects,
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

    pub(crate) fn update_channel(
        &mut self,
        out: &mut Effects,
        now: Timestamp,
        sid: String,
        friendly_name: Option<String>,
        channel_optimized_routing: Option<bool>,
    ) -> Result<Reply, Error> {
        let c = self.channel_by_name(&sid).ok_or_else(|| self.missing("TaskChannels", &sid))?.sid;
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

    pub(crate) fn delete_channel(
        &mut self,
        out: &mut Effects,
        now: Timestamp,
        sid: String,
    ) -> Result<Reply, Error> {
        let c = self.channel_by_name(&sid).ok_or_else(|| self.missing("TaskChannels", &sid))?.clone();
        if self.tasks.values().any(|t| t.task_channel_sid == c.sid && !t.assignment_status.is_terminal()) {
            return Err(Error::illegal(format!(
                "Cannot delete TaskChannel {} because tasks on it are still active",
                c.sid
            )));
        }
        self.channels.remove(&c.sid);
        out.touch(Key::TaskChannel(self.ws.sid, c.sid));
        let wcs: Vec<Sid> =
            self.worker_channels.values().filter(|w| w.task_channel_sid == c.sid).map(|w| w.sid).collect();
        for wc in wcs {
            if let Some(w) = self.worker_channels.remove(&wc) {
                self.channel_of.remove(&(w.worker_sid, c.sid));
            }
            out.touch(Key::WorkerChannel(self.ws.sid, wc));
        }
        self.emit_channel(out, now, EventType::TaskChannelDeleted, &c);
        Ok(Reply::Deleted)
    }

    pub(crate) fn emit_channel(&self, out: &mut Effects, now: Timestamp, t: EventType, c: &TaskChannel) {
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
        out: &mut Effects,
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
        out: &mut Effects,
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

    pub(crate) fn create_worker(
        &mut self,
        out: &mut Effects,
        now: Timestamp,
        p: WorkerParams,
    ) -> Result<Reply, Error> {
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
    pub(crate) fn set_worker_activity(
        &mut self,
        out: &mut Effects,
        now: Timestamp,
        worker: Sid,
        activity: Sid,
    ) {
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

    pub(crate) fn update_worker(
        &mut self,
        out: &mut Effects,
        now: Timestamp,
        sid: Sid,
        p: WorkerParams,
        if_match: Option<String>,
    ) -> Result<Reply, Error> {
        let w = self.workers.get(&sid).ok_or_else(|| self.missing("Workers", sid))?;
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

    pub(crate) fn delete_worker(
        &mut self,
        out: &mut Effects,
        now: Timestamp,
        sid: Sid,
        if_match: Option<String>,
    ) -> Result<Reply, Error> {
        let w = self.workers.get(&sid).ok_or_else(|| self.missing("Workers", sid))?;
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

    pub(crate) fn update_worker_channel(
        &mut self,
        out: &mut Effects,
        now: Timestamp,
        worker: Sid,
        sid: &str,
        capacity: Option<i64>,
        available: Option<bool>,
    ) -> Result<Reply, Error> {
        let w = self.workers.get(&worker).ok_or_else(|| self.missing("Workers", worker))?.clone();
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
}
