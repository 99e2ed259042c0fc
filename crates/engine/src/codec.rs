//! The compact binary forms the store keeps: the primitives ([`put_varint`], [`put_str`], [`put_sid`],
//! [`Reader`]) shared by events ([`crate::event::Event::encode`]) and tasks ([`Task::encode`]).
//!
//! Numbers are LEB128 varints (signed ones zigzagged first, so small negatives stay short), strings their
//! byte length and the bytes, SIDs their prefix's index in [`Prefix::ALL`] and the 128-bit number in 16
//! little-endian bytes. Every form starts with a version byte, so a later build can tell the forms apart.
//! Reading never panics: bytes that are not a value give a [`DecodeError`].

use std::sync::Arc;

use crate::model::{RoutingPos, Task, TaskStatus};
use crate::sid::{Prefix, Sid};
use crate::time::Timestamp;

/// Why stored bytes cannot be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stored data is not readable: {0}")]
pub struct DecodeError(pub(crate) &'static str);

/// Signed to unsigned so small negative numbers stay short as varints.
pub(crate) fn zigzag(i: i64) -> u64 {
    ((i << 1) ^ (i >> 63)) as u64
}

pub(crate) fn unzigzag(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

/// LEB128: 7 bits a byte, low first, high bit set on all but the last.
pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(crate) fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// A timestamp: its milliseconds since the epoch, zigzagged (read back with [`Reader::time`]).
pub(crate) fn put_time(out: &mut Vec<u8>, t: Timestamp) {
    put_varint(out, zigzag(t.millis()));
}

pub(crate) fn put_sid(out: &mut Vec<u8>, sid: Sid) {
    out.push(Prefix::ALL.iter().position(|p| *p == sid.prefix()).unwrap_or(0) as u8);
    out.extend_from_slice(&sid.number().to_le_bytes());
}

/// A bounds-checked cursor over stored bytes.
pub(crate) struct Reader<'a> {
    pub(crate) bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader past the form's first byte, which must be `version`; `unknown` says what it is otherwise.
    pub(crate) fn versioned(
        bytes: &'a [u8],
        version: u8,
        unknown: &'static str,
    ) -> Result<Self, DecodeError> {
        let mut reader = Reader { bytes };
        if reader.u8()? != version {
            return Err(DecodeError(unknown));
        }
        Ok(reader)
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.bytes.len() < n {
            return Err(DecodeError("truncated"));
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        self.take(N)?.try_into().map_err(|_| DecodeError("truncated"))
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(DecodeError("varint too long"))
    }

    pub(crate) fn str(&mut self) -> Result<&'a str, DecodeError> {
        let len = usize::try_from(self.varint()?).map_err(|_| DecodeError("truncated"))?;
        std::str::from_utf8(self.take(len)?).map_err(|_| DecodeError("text is not UTF-8"))
    }

    pub(crate) fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError("not a flag")),
        }
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        u32::try_from(self.varint()?).map_err(|_| DecodeError("number out of range"))
    }

    pub(crate) fn time(&mut self) -> Result<Timestamp, DecodeError> {
        Ok(Timestamp(unzigzag(self.varint()?)))
    }

    /// An optional value: a 0 byte, or a 1 byte and the value.
    pub(crate) fn opt<T>(
        &mut self,
        read: impl FnOnce(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Option<T>, DecodeError> {
        match self.u8()? {
            0 => Ok(None),
            1 => read(self).map(Some),
            _ => Err(DecodeError("not an optional value")),
        }
    }

    /// An entry of `table` named by its index in one byte (the stored forms name enum values so); `unknown`
    /// says what the byte is otherwise.
    pub(crate) fn one_of<T: Copy>(&mut self, table: &[T], unknown: &'static str) -> Result<T, DecodeError> {
        table.get(usize::from(self.u8()?)).copied().ok_or(DecodeError(unknown))
    }

    pub(crate) fn sid(&mut self) -> Result<Sid, DecodeError> {
        let prefix = self.one_of(&Prefix::ALL, "unknown SID prefix")?;
        Ok(Sid::new(prefix, u128::from_le_bytes(self.array()?)))
    }
}

/// Version byte of a task's binary form. A JSON record starts with `{` (0x7b), so the two never meet.
/// Adding a field to [`Task`] means a new version here, read beside this one.
const TASK_ENCODING: u8 = 1;

/// The task statuses in the order their index is stored.
const TASK_STATUSES: [TaskStatus; 6] = [
    TaskStatus::Pending,
    TaskStatus::Reserved,
    TaskStatus::Assigned,
    TaskStatus::Canceled,
    TaskStatus::Completed,
    TaskStatus::Wrapping,
];

/// Tasks are the one record kind the engine writes at the rate of its traffic (every create, every status
/// change), so they are stored in binary: about 280 bytes for a typical call task instead of about 970 as
/// JSON, and a small fraction of the CPU to write. Every other kind stays JSON, readable in a `sqlite3` shell.
impl Task {
    /// The binary form the store keeps (read back with [`Task::decode`]). Fields in declaration order;
    /// an absent optional value is a 0 byte, a present one a 1 byte and the value.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(192 + self.attributes.len());
        out.push(TASK_ENCODING);
        put_sid(&mut out, self.account_sid);
        put_sid(&mut out, self.workspace_sid);
        put_sid(&mut out, self.sid);
        out.push(TASK_STATUSES.iter().position(|s| *s == self.assignment_status).unwrap_or(0) as u8);
        put_str(&mut out, &self.attributes);
        put_varint(&mut out, zigzag(self.priority));
        put_varint(&mut out, zigzag(self.timeout));
        put_opt(&mut out, self.reason.as_deref(), put_str);
        put_opt(&mut out, self.task_queue_sid, put_sid);
        put_opt(&mut out, self.task_queue_friendly_name.as_deref(), put_str);
        put_opt(&mut out, self.task_queue_entered_date, put_time);
        put_opt(&mut out, self.workflow_sid, put_sid);
        put_opt(&mut out, self.workflow_friendly_name.as_deref(), put_str);
        put_sid(&mut out, self.task_channel_sid);
        put_str(&mut out, &self.task_channel_unique_name);
        put_time(&mut out, self.virtual_start_time);
        put_opt(&mut out, self.routing_target, put_sid);
        out.push(u8::from(self.ignore_capacity));
        put_str(&mut out, &self.addons);
        put_time(&mut out, self.date_created);
        put_time(&mut out, self.date_updated);
        put_varint(&mut out, self.version);
        put_opt(&mut out, self.routing, |out, r| {
            put_opt(out, r.filter, |out, f| put_varint(out, u64::from(f)));
            put_varint(out, u64::from(r.target));
            put_opt(out, r.timeout_at, put_time);
            put_time(out, r.filter_entered_at);
        });
        put_varint(&mut out, u64::from(self.assignment_count));
        put_opt(&mut out, self.terminal_at, put_time);
        put_opt(&mut out, self.assigned_at, put_time);
        out
    }

    /// Reads the binary form written by [`Task::encode`]. Never panics: bytes that are not a task give an
    /// error.
    pub fn decode(bytes: &[u8]) -> Result<Task, DecodeError> {
        let mut r = Reader::versioned(bytes, TASK_ENCODING, "unknown task encoding version")?;
        // Fields are read in the order they are written: a struct expression evaluates its fields in order.
        let task = Task {
            account_sid: r.sid()?,
            workspace_sid: r.sid()?,
            sid: r.sid()?,
            assignment_status: r.one_of(&TASK_STATUSES, "unknown task status")?,
            attributes: r.str()?.into(),
            priority: unzigzag(r.varint()?),
            timeout: unzigzag(r.varint()?),
            reason: r.opt(|r| Ok(Box::from(r.str()?)))?,
            task_queue_sid: r.opt(Reader::sid)?,
            task_queue_friendly_name: r.opt(|r| Ok(Arc::from(r.str()?)))?,
            task_queue_entered_date: r.opt(Reader::time)?,
            workflow_sid: r.opt(Reader::sid)?,
            workflow_friendly_name: r.opt(|r| Ok(Arc::from(r.str()?)))?,
            task_channel_sid: r.sid()?,
            task_channel_unique_name: r.str()?.into(),
            virtual_start_time: r.time()?,
            routing_target: r.opt(Reader::sid)?,
            ignore_capacity: r.bool()?,
            addons: r.str()?.into(),
            date_created: r.time()?,
            date_updated: r.time()?,
            version: r.varint()?,
            routing: r.opt(|r| {
                Ok(RoutingPos {
                    filter: r.opt(Reader::u32)?,
                    target: r.u32()?,
                    timeout_at: r.opt(Reader::time)?,
                    filter_entered_at: r.time()?,
                })
            })?,
            assignment_count: r.u32()?,
            terminal_at: r.opt(Reader::time)?,
            assigned_at: r.opt(Reader::time)?,
            waiting: None,
        };
        if !r.bytes.is_empty() {
            return Err(DecodeError("trailing bytes"));
        }
        Ok(task)
    }
}

fn put_opt<T>(out: &mut Vec<u8>, value: Option<T>, put: impl FnOnce(&mut Vec<u8>, T)) {
    match value {
        None => out.push(0),
        Some(v) => {
            out.push(1);
            put(out, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Tasks have no `PartialEq` (the engine never compares them); their JSON form names every stored field.
    fn json(t: &Task) -> serde_json::Value {
        serde_json::to_value(t).unwrap()
    }

    fn sid(prefix: Prefix, n: u128) -> Sid {
        Sid::new(prefix, n)
    }

    fn task(full: bool) -> Task {
        let opt = |v| if full { Some(Timestamp(v)) } else { None };
        Task {
            account_sid: sid(Prefix::Account, 1),
            workspace_sid: sid(Prefix::Workspace, u128::MAX),
            sid: sid(Prefix::Task, 3),
            assignment_status: if full { TaskStatus::Wrapping } else { TaskStatus::Pending },
            attributes: r#"{"from":"+15005550006","name":"Zoë \"Z\""}"#.into(),
            priority: if full { -7 } else { 0 },
            timeout: 86_400,
            reason: full.then(|| "caller hung up".into()),
            task_queue_sid: full.then(|| sid(Prefix::TaskQueue, 4)),
            task_queue_friendly_name: full.then(|| "support".into()),
            task_queue_entered_date: opt(1_795_588_857_107),
            workflow_sid: full.then(|| sid(Prefix::Workflow, 5)),
            workflow_friendly_name: full.then(|| "support".into()),
            task_channel_sid: sid(Prefix::TaskChannel, 6),
            task_channel_unique_name: "voice".into(),
            virtual_start_time: Timestamp(-1),
            routing_target: full.then(|| sid(Prefix::Worker, 7)),
            ignore_capacity: full,
            addons: "{}".into(),
            date_created: Timestamp(1_795_588_857_107),
            date_updated: Timestamp(i64::MAX),
            version: u64::MAX,
            routing: full.then_some(RoutingPos {
                filter: Some(u32::MAX),
                target: 2,
                timeout_at: Some(Timestamp(i64::MIN)),
                filter_entered_at: Timestamp(0),
            }),
            assignment_count: u32::MAX,
            terminal_at: opt(9),
            assigned_at: opt(10),
            waiting: None,
        }
    }

    #[test]
    fn a_task_reads_back_as_written_with_and_without_its_optional_fields() {
        for full in [true, false] {
            let t = task(full);
            let bytes = t.encode();
            assert_eq!(json(&Task::decode(&bytes).unwrap()), json(&t), "full: {full}");
        }
        let json_len = serde_json::to_vec(&task(true)).unwrap().len();
        assert!(task(true).encode().len() * 2 < json_len, "the binary form is less than half the JSON");
    }

    #[test]
    fn damaged_bytes_are_an_error_never_a_panic() {
        let bytes = task(true).encode();
        for cut in 0..bytes.len() {
            assert!(Task::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(Task::decode(&longer).unwrap_err(), DecodeError("trailing bytes"));
        assert_eq!(Task::decode(b"{\"sid\":1}").unwrap_err(), DecodeError("unknown task encoding version"));
        // The status byte follows the version and three SIDs of 17 bytes each.
        let mut status = bytes.clone();
        status[1 + 3 * 17] = 6;
        assert_eq!(Task::decode(&status).unwrap_err(), DecodeError("unknown task status"));
    }

    proptest! {
        #[test]
        fn any_task_reads_back(
            attributes in ".{0,40}",
            priority in any::<i64>(),
            times in proptest::array::uniform4(any::<i64>()),
            some in proptest::array::uniform8(any::<bool>()),
            n in any::<u128>(),
            counts in (any::<u32>(), any::<u32>(), any::<u64>()),
        ) {
            let mut t = task(some[0]);
            t.attributes = attributes.clone().into();
            t.priority = priority;
            t.sid = sid(Prefix::Task, n);
            t.date_created = Timestamp(times[0]);
            t.virtual_start_time = Timestamp(times[1]);
            t.terminal_at = some[1].then_some(Timestamp(times[2]));
            t.reason = some[2].then(|| attributes.clone().into());
            t.workflow_friendly_name = some[3].then(|| attributes.as_str().into());
            t.ignore_capacity = some[4];
            t.routing = some[5].then_some(RoutingPos {
                filter: some[6].then_some(counts.0),
                target: counts.1,
                timeout_at: some[7].then_some(Timestamp(times[3])),
                filter_entered_at: Timestamp(times[2]),
            });
            t.version = counts.2;
            prop_assert_eq!(json(&Task::decode(&t.encode()).unwrap()), json(&t));
        }

        #[test]
        fn any_bytes_decode_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = Task::decode(&bytes);
        }
    }
}
