//! Activities: the states a Worker is in, and whether each counts as available.

use super::space::{validate_name, verb, Space, MAX_ACTIVITIES};
use super::{Effects, Key, Reply};
use crate::error::Error;
use crate::event::{EventData, EventType, Field, Part};
use crate::model::*;
use crate::sid::{Prefix, Sid};
use crate::time::Timestamp;

impl Space {
    pub(crate) fn create_activity(
        &mut self,
        out: &mut Effects,
        now: Timestamp,
        friendly_name: Option<String>,
        available: Option<bool>,
    ) -> Result<Reply, Error> {
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
                message: format!("An Activity named '{name}' already exists in workspace {}", self.ws.sid),
            });
        }
        let sid = out.sid(Prefix::Activity);
        self.insert_activity(out, now, sid, name, available.unwrap_or(false));
        Ok(Reply::Activity(self.activities[&sid].clone()))
    }

    pub(crate) fn insert_activity(
        &mut self,
        out: &mut Effects,
        now: Timestamp,
        sid: Sid,
        name: String,
        available: bool,
    ) {
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

    fn emit_activity(&self, out: &mut Effects, now: Timestamp, t: EventType, a: &Activity) {
        let mut data = EventData::with_capacity(7, 64);
        data.desc(&[Part::S("Activity "), Part::S(&a.friendly_name), Part::S(" "), Part::S(verb(t))])
            .sid(Field::ActivitySid, a.sid)
            .text(Field::ActivityName, &a.friendly_name)
            .bool(Field::ActivityAvailable, a.available);
        out.emit(&self.ws, now, t, "activity", a.sid, data);
    }

    pub(crate) fn update_activity(
        &mut self,
        out: &mut Effects,
        now: Timestamp,
        sid: Sid,
        name: Option<String>,
    ) -> Result<Reply, Error> {
        if !self.activities.contains_key(&sid) {
            return Err(self.missing("Activities", sid));
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

    pub(crate) fn delete_activity(
        &mut self,
        out: &mut Effects,
        now: Timestamp,
        sid: Sid,
    ) -> Result<Reply, Error> {
        let a = self.activities.get(&sid).ok_or_else(|| self.missing("Activities", sid))?;
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
}
