//! TaskRouter events (reference §9): the ordered log every change appends to.
//!
//! An [`Event`] yields the §9.2 callback fields as PascalCase name/value pairs ([`Event::fields`]), so the
//! callback deliverer posts them as they are and the Events resource renders them (snake_cased) as
//! `event_data`.
//!
//! Why the fields are not stored as text: every routed task emits about five events of some twenty fields
//! each, and most events are never looked at field by field (only the store and a few subscribers see
//! them). So an event keeps a compact typed payload ([`EventData`]): SIDs, numbers and flags as values, and
//! every string copied into one buffer. The text pairs are built on first use and cached, and the store
//! writes the payload in a small binary form ([`Event::encode`], [`Event::decode`]).

use std::fmt::Write as _;
use std::sync::OnceLock;

pub use crate::codec::DecodeError;
use crate::codec::{put_sid, put_str, put_time, put_varint, unzigzag, zigzag, Reader};
use crate::sid::{Prefix, Sid};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

macro_rules! event_types {
    ($($variant:ident => $name:literal),* $(,)?) => {
        /// Every event type of reference §9.1 the engine emits.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum EventType { $(#[doc = $name] $variant),* }

        impl EventType {
            /// Every event type, in declaration order (the binary form stores the index).
            const ALL: &'static [EventType] = &[$(EventType::$variant),*];

            /// The wire name, e.g. `reservation.created`.
            pub fn as_str(self) -> &'static str {
                match self { $(EventType::$variant => $name),* }
            }

            /// Parses the wire name.
            pub fn parse(s: &str) -> Option<EventType> {
                match s { $($name => Some(EventType::$variant),)* _ => None }
            }
        }
    };
}

event_types! {
    ActivityCreated => "activity.created",
    ActivityUpdated => "activity.updated",
    ActivityDeleted => "activity.deleted",
    ReservationCreated => "reservation.created",
    ReservationAccepted => "reservation.accepted",
    ReservationRejected => "reservation.rejected",
    ReservationTimeout => "reservation.timeout",
    ReservationCanceled => "reservation.canceled",
    ReservationRescinded => "reservation.rescinded",
    ReservationCompleted => "reservation.completed",
    ReservationWrapup => "reservation.wrapup",
    TaskCreated => "task.created",
    TaskUpdated => "task.updated",
    TaskCanceled => "task.canceled",
    TaskWrapup => "task.wrapup",
    TaskCompleted => "task.completed",
    TaskDeleted => "task.deleted",
    TaskSystemDeleted => "task.system-deleted",
    TaskChannelCreated => "task-channel.created",
    TaskChannelUpdated => "task-channel.updated",
    TaskChannelDeleted => "task-channel.deleted",
    TaskQueueCreated => "task-queue.created",
    TaskQueueDeleted => "task-queue.deleted",
    TaskQueueEntered => "task-queue.entered",
    TaskQueueTimeout => "task-queue.timeout",
    TaskQueueMoved => "task-queue.moved",
    TaskQueueExpressionUpdated => "task-queue.expression.updated",
    WorkerCreated => "worker.created",
    WorkerActivityUpdate => "worker.activity.update",
    WorkerAttributesUpdate => "worker.attributes.update",
    WorkerCapacityUpdate => "worker.capacity.update",
    WorkerChannelAvailabilityUpdate => "worker.channel.availability.update",
    WorkerDeleted => "worker.deleted",
    WorkflowCreated => "workflow.created",
    WorkflowUpdated => "workflow.updated",
    WorkflowDeleted => "workflow.deleted",
    WorkflowTargetMatched => "workflow.target-matched",
    WorkflowEntered => "workflow.entered",
    WorkflowTimeout => "workflow.timeout",
    WorkflowSkipped => "workflow.skipped",
    WorkspaceCreated => "workspace.created",
    WorkspaceUpdated => "workspace.updated",
    WorkspaceDeleted => "workspace.deleted",
    TaskTransferInitiated => "task.transfer-initiated",
    TaskTransferAttemptFailed => "task.transfer-attempt-failed",
    TaskTransferCompleted => "task.transfer-completed",
    TaskTransferFailed => "task.transfer-failed",
    TaskTransferCanceled => "task.transfer-canceled",
}

macro_rules! field_names {
    ($($variant:ident),* $(,)?) => {
        /// The name of a §9.2 callback field beyond the base ones.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum Field { $(#[doc = stringify!($variant)] $variant),* }

        impl Field {
            /// Every field name, in declaration order (the binary form stores the index).
            const ALL: &'static [Field] = &[$(Field::$variant),*];

            /// The PascalCase name, e.g. `TaskSid`.
            pub fn as_str(self) -> &'static str {
                match self { $(Field::$variant => stringify!($variant)),* }
            }
        }
    };
}

field_names! {
    ActivityAvailable,
    ActivityName,
    ActivitySid,
    ReservationSid,
    ReservationVersion,
    TaskAge,
    TaskAssignmentStatus,
    TaskAttributes,
    TaskCanceledReason,
    TaskChannelName,
    TaskChannelOptimizedRouting,
    TaskChannelSid,
    TaskChannelUniqueName,
    TaskCompletedReason,
    TaskDateCreated,
    TaskIgnoreCapacity,
    TaskPriority,
    TaskQueueEnteredDate,
    TaskQueueName,
    TaskQueueSid,
    TaskQueueTargetExpression,
    TaskSid,
    TaskVersion,
    TaskVirtualStartTime,
    WorkerActivityName,
    WorkerActivitySid,
    WorkerAttributes,
    WorkerChannelAvailable,
    WorkerChannelAvailableCapacity,
    WorkerChannelPreviousCapacity,
    WorkerChannelTaskCount,
    WorkerName,
    WorkerPreviousActivityName,
    WorkerPreviousActivitySid,
    WorkerSid,
    WorkerTimeInPreviousActivity,
    WorkerTimeInPreviousActivityMs,
    WorkerVersion,
    WorkflowName,
    WorkflowSid,
    WorkspaceName,
    WorkspaceSid,
    TransferSid,
    TransferMode,
    TransferType,
    TransferTo,
    TransferStatus,
    TransferFailedReason,
}

/// The `resource_type` values events carry.
const RESOURCE_TYPES: [&str; 8] =
    ["task", "worker", "reservation", "activity", "workflow", "taskqueue", "workspace", "taskchannel"];

/// One value of the payload. Strings live in [`EventData::text`]; a SID is kept as its prefix and number
/// halves so the value stays 8-byte aligned (a `u128` would make every value 48 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Val {
    Sid(Prefix, [u64; 2]),
    Int(i64),
    Bool(bool),
    Static(&'static str),
    /// A byte range of the text buffer.
    Text(u32, u32),
}

/// The item code of a description part (field items use their [`Field`] index).
const DESC: u8 = u8::MAX;

/// A piece of an event's description: text, or a SID written out.
#[derive(Debug, Clone, Copy)]
pub enum Part<'a> {
    /// Text, copied as is.
    S(&'a str),
    /// A SID in its text form.
    Sid(Sid),
}

/// An event's payload: its description, workspace name and fields, as typed values with one text buffer.
/// Built by the core when it emits the event; read through [`Event`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventData {
    text: String,
    workspace_name: (u32, u32),
    /// (field index or [`DESC`], value), in order.
    items: Vec<(u8, Val)>,
}

impl EventData {
    /// An empty payload with room for `items` values and `text` bytes of strings.
    pub fn with_capacity(items: usize, text: usize) -> EventData {
        EventData {
            text: String::with_capacity(text),
            workspace_name: (0, 0),
            items: Vec::with_capacity(items),
        }
    }

    fn push_text(&mut self, s: &str) -> Val {
        let start = self.text.len();
        self.text.push_str(s);
        // Events are built from the engine's own strings; one over 4 GiB is not possible in practice, and
        // would only make the range empty.
        let to_u32 = |n: usize| u32::try_from(n).unwrap_or(0);
        Val::Text(to_u32(start), to_u32(self.text.len()))
    }

    /// Sets the workspace's friendly name (`WorkspaceName` of the base fields).
    pub fn workspace_name(&mut self, name: &str) -> &mut Self {
        if let Val::Text(a, b) = self.push_text(name) {
            self.workspace_name = (a, b);
        }
        self
    }

    /// Appends parts of the description.
    pub fn desc(&mut self, parts: &[Part<'_>]) -> &mut Self {
        for part in parts {
            let val = match part {
                Part::S(s) => self.push_text(s),
                Part::Sid(sid) => sid_val(*sid),
            };
            self.items.push((DESC, val));
        }
        self
    }

    /// Appends a SID field.
    pub fn sid(&mut self, name: Field, sid: Sid) -> &mut Self {
        self.items.push((name as u8, sid_val(sid)));
        self
    }

    /// Appends a string field (copied into the buffer).
    pub fn text(&mut self, name: Field, value: &str) -> &mut Self {
        let val = self.push_text(value);
        self.items.push((name as u8, val));
        self
    }

    /// Appends a string field that is a constant (not copied).
    pub fn fixed(&mut self, name: Field, value: &'static str) -> &mut Self {
        self.items.push((name as u8, Val::Static(value)));
        self
    }

    /// Appends a number field.
    pub fn int(&mut self, name: Field, value: i64) -> &mut Self {
        self.items.push((name as u8, Val::Int(value)));
        self
    }

    /// Appends a `true`/`false` field.
    pub fn bool(&mut self, name: Field, value: bool) -> &mut Self {
        self.items.push((name as u8, Val::Bool(value)));
        self
    }

    fn str_of(&self, (a, b): (u32, u32)) -> &str {
        self.text.get(a as usize..b as usize).unwrap_or("")
    }

    fn render(&self, val: Val, out: &mut String) {
        match val {
            Val::Sid(prefix, [hi, lo]) => {
                let _ = write!(out, "{}", Sid::new(prefix, (u128::from(hi) << 64) | u128::from(lo)));
            }
            Val::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Val::Bool(b) => out.push_str(if b { "true" } else { "false" }),
            Val::Static(s) => out.push_str(s),
            Val::Text(a, b) => out.push_str(self.str_of((a, b))),
        }
    }
}

fn sid_val(sid: Sid) -> Val {
    let n = sid.number();
    Val::Sid(sid.prefix(), [(n >> 64) as u64, n as u64])
}

/// The text form of an event, built on first use.
#[derive(Debug, Clone, PartialEq)]
struct Rendered {
    description: String,
    fields: Vec<(&'static str, String)>,
}

/// One entry of the event log.
#[derive(Debug, Clone)]
pub struct Event {
    /// Position in the log, increasing from 1.
    pub seq: u64,
    /// `EV…`
    pub sid: Sid,
    /// What happened.
    pub event_type: EventType,
    /// When.
    pub at: Timestamp,
    /// The workspace.
    pub workspace_sid: Sid,
    /// `task`, `worker`, `reservation`, `activity`, `workflow`, `taskqueue`, `workspace`, `taskchannel`.
    pub resource_type: &'static str,
    /// The resource's SID.
    pub resource_sid: Sid,
    /// Description, workspace name and fields.
    data: EventData,
    rendered: OnceLock<Rendered>,
}

/// Two events are equal when every base field, the description and the fields (as text) are.
impl PartialEq for Event {
    fn eq(&self, other: &Event) -> bool {
        self.seq == other.seq
            && self.sid == other.sid
            && self.event_type == other.event_type
            && self.at == other.at
            && self.workspace_sid == other.workspace_sid
            && self.resource_type == other.resource_type
            && self.resource_sid == other.resource_sid
            && self.workspace_name() == other.workspace_name()
            && self.rendered() == other.rendered()
    }
}

/// Version byte of the binary form.
const ENCODING: u8 = 1;

// The kinds of an item's value in the binary form.
/// A SID: prefix and 16 bytes.
const SID: u8 = 0;
/// A signed number: zigzag varint.
const INT: u8 = 1;
/// A flag: one byte.
const BOOL: u8 = 2;
/// A string: length and bytes.
const TEXT: u8 = 3;
/// The event's resource SID again: nothing follows. Written since store schema version 4, which older
/// builds do not open, so the encoding version stayed 1 (an older event never holds it).
const RESOURCE_SID: u8 = 4;
/// The event's workspace SID again: nothing follows (as [`RESOURCE_SID`]).
const WORKSPACE_SID: u8 = 5;

impl Event {
    /// An event with its payload.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        seq: u64,
        sid: Sid,
        event_type: EventType,
        at: Timestamp,
        workspace_sid: Sid,
        resource_type: &'static str,
        resource_sid: Sid,
        data: EventData,
    ) -> Event {
        Event {
            seq,
            sid,
            event_type,
            at,
            workspace_sid,
            resource_type,
            resource_sid,
            data,
            rendered: OnceLock::new(),
        }
    }

    fn rendered(&self) -> &Rendered {
        self.rendered.get_or_init(|| {
            let d = &self.data;
            let mut description = String::new();
            let mut fields = Vec::with_capacity(d.items.len());
            for &(code, val) in &d.items {
                if code == DESC {
                    d.render(val, &mut description);
                } else if let Some(name) = Field::ALL.get(usize::from(code)) {
                    let mut value = String::new();
                    d.render(val, &mut value);
                    fields.push((name.as_str(), value));
                }
            }
            Rendered { description, fields }
        })
    }

    /// Human description, e.g. "Reservation WR… created for Worker WK…".
    pub fn description(&self) -> &str {
        &self.rendered().description
    }

    /// The workspace's friendly name (`WorkspaceName`).
    pub fn workspace_name(&self) -> &str {
        self.data.str_of(self.data.workspace_name)
    }

    /// The §9.2 fields beyond the base ones: PascalCase names and values, in order.
    pub fn fields(&self) -> &[(&'static str, String)] {
        &self.rendered().fields
    }

    /// The value of one field, if present.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields().iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    /// The compact binary form the store keeps (read back with [`Event::decode`]): numbers as varints,
    /// strings inline with their length, SIDs as prefix and 16 bytes, except that a value repeating the
    /// event's resource or workspace SID (the task's SID in a task event's fields and description, say) is
    /// one byte. Each item is its code, a kind byte ([`SID`], [`INT`], ...) and the value.
    pub fn encode(&self) -> Vec<u8> {
        let d = &self.data;
        let mut out = Vec::with_capacity(64 + d.text.len() + d.items.len() * 8);
        out.push(ENCODING);
        put_varint(&mut out, self.seq);
        put_time(&mut out, self.at);
        put_sid(&mut out, self.sid);
        out.push(EventType::ALL.iter().position(|t| *t == self.event_type).unwrap_or(0) as u8);
        put_sid(&mut out, self.workspace_sid);
        out.push(RESOURCE_TYPES.iter().position(|t| *t == self.resource_type).unwrap_or(0) as u8);
        put_sid(&mut out, self.resource_sid);
        put_str(&mut out, self.workspace_name());
        put_varint(&mut out, d.items.len() as u64);
        for &(code, val) in &d.items {
            out.push(code);
            match val {
                Val::Sid(prefix, [hi, lo]) => {
                    let sid = Sid::new(prefix, (u128::from(hi) << 64) | u128::from(lo));
                    if sid == self.resource_sid {
                        out.push(RESOURCE_SID);
                    } else if sid == self.workspace_sid {
                        out.push(WORKSPACE_SID);
                    } else {
                        out.push(SID);
                        put_sid(&mut out, sid);
                    }
                }
                Val::Int(i) => {
                    out.push(INT);
                    put_varint(&mut out, zigzag(i));
                }
                Val::Bool(b) => {
                    out.push(BOOL);
                    out.push(u8::from(b));
                }
                Val::Text(a, b) => {
                    out.push(TEXT);
                    put_str(&mut out, d.str_of((a, b)));
                }
                Val::Static(s) => {
                    out.push(TEXT);
                    put_str(&mut out, s);
                }
            }
        }
        out
    }

    /// Reads the binary form written by [`Event::encode`]. Never panics: bytes that are not an event give
    /// an error.
    pub fn decode(bytes: &[u8]) -> Result<Event, DecodeError> {
        let mut r = Reader::versioned(bytes, ENCODING, "unknown encoding version")?;
        let seq = r.varint()?;
        let at = r.time()?;
        let sid = r.sid()?;
        let event_type =
            *EventType::ALL.get(usize::from(r.u8()?)).ok_or(DecodeError("unknown event type"))?;
        let workspace_sid = r.sid()?;
        let resource_type =
            *RESOURCE_TYPES.get(usize::from(r.u8()?)).ok_or(DecodeError("unknown resource type"))?;
        let resource_sid = r.sid()?;
        let mut data = EventData::with_capacity(0, r.bytes.len());
        data.workspace_name(r.str()?);
        let n = usize::try_from(r.varint()?).map_err(|_| DecodeError("too many fields"))?;
        // Each item takes at least 2 bytes: a count beyond that is damage, not a reason to allocate.
        if n > r.bytes.len() / 2 {
            return Err(DecodeError("truncated"));
        }
        data.items.reserve_exact(n);
        for _ in 0..n {
            let code = r.u8()?;
            if code != DESC && usize::from(code) >= Field::ALL.len() {
                return Err(DecodeError("unknown field"));
            }
            let val = match r.u8()? {
                SID => sid_val(r.sid()?),
                INT => Val::Int(unzigzag(r.varint()?)),
                BOOL => Val::Bool(r.u8()? != 0),
                TEXT => {
                    let text = r.str()?;
                    data.push_text(text)
                }
                RESOURCE_SID => sid_val(resource_sid),
                WORKSPACE_SID => sid_val(workspace_sid),
                _ => return Err(DecodeError("unknown value kind")),
            };
            data.items.push((code, val));
        }
        if !r.bytes.is_empty() {
            return Err(DecodeError("trailing bytes"));
        }
        Ok(Event::new(seq, sid, event_type, at, workspace_sid, resource_type, resource_sid, data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Event {
        let mut d = EventData::with_capacity(8, 64);
        d.workspace_name("writers")
            .desc(&[Part::S("Task "), Part::Sid(Sid::new(Prefix::Task, 7)), Part::S(" created")])
            .sid(Field::TaskSid, Sid::new(Prefix::Task, 7))
            .text(Field::TaskAttributes, r#"{"x":"é"}"#)
            .int(Field::TaskAge, -3)
            .fixed(Field::TaskAssignmentStatus, "pending")
            .bool(Field::TaskIgnoreCapacity, false)
            .sid(Field::WorkflowSid, Sid::new(Prefix::Workflow, u128::MAX));
        Event::new(
            42,
            Sid::new(Prefix::Event, 9),
            EventType::TaskCreated,
            Timestamp(1_700_000_000_123),
            Sid::new(Prefix::Workspace, 1),
            "task",
            Sid::new(Prefix::Task, 7),
            d,
        )
    }

    #[test]
    fn fields_render_in_order_with_their_text_values() {
        let e = sample();
        let task = Sid::new(Prefix::Task, 7).to_string();
        assert_eq!(e.description(), format!("Task {task} created"));
        assert_eq!(e.workspace_name(), "writers");
        let names: Vec<&str> = e.fields().iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "TaskSid",
                "TaskAttributes",
                "TaskAge",
                "TaskAssignmentStatus",
                "TaskIgnoreCapacity",
                "WorkflowSid"
            ]
        );
        assert_eq!(e.field("TaskSid"), Some(task.as_str()));
        assert_eq!(e.field("TaskAttributes"), Some(r#"{"x":"é"}"#));
        assert_eq!(e.field("TaskAge"), Some("-3"));
        assert_eq!(e.field("TaskAssignmentStatus"), Some("pending"));
        assert_eq!(e.field("TaskIgnoreCapacity"), Some("false"));
        assert_eq!(e.field("WorkflowSid"), Some(format!("WW{}", "f".repeat(32)).as_str()));
        assert_eq!(e.field("WorkerSid"), None);
    }

    #[test]
    fn the_binary_form_round_trips() {
        let e = sample();
        let back = Event::decode(&e.encode()).unwrap();
        assert_eq!(back, e);
        assert_eq!(back.at, e.at);
        assert_eq!(back.fields(), e.fields());
    }

    #[test]
    fn repeated_resource_and_workspace_sids_are_stored_once() {
        let task = Sid::new(Prefix::Task, 0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        let ws = Sid::new(Prefix::Workspace, 0xfedc_ba98_7654_3210_fedc_ba98_7654_3210);
        let other = Sid::new(Prefix::Task, 5);
        let mut d = EventData::with_capacity(8, 16);
        d.workspace_name("w")
            .desc(&[Part::S("Task "), Part::Sid(task), Part::S(" after "), Part::Sid(other)])
            .sid(Field::TaskSid, task)
            .sid(Field::WorkspaceSid, ws)
            .sid(Field::WorkflowSid, other);
        let e = Event::new(
            1,
            Sid::new(Prefix::Event, 2),
            EventType::TaskCreated,
            Timestamp(3),
            ws,
            "task",
            task,
            d,
        );
        let bytes = e.encode();
        let count = |sid: Sid| bytes.windows(16).filter(|w| *w == sid.number().to_le_bytes()).count();
        assert_eq!(
            (count(task), count(ws), count(other)),
            (1, 1, 2),
            "once in the header, then by reference"
        );
        let back = Event::decode(&bytes).unwrap();
        assert_eq!(back, e);
        assert_eq!(back.description(), format!("Task {task} after {other}"));
        assert_eq!(back.field("TaskSid"), Some(task.to_string().as_str()));
        assert_eq!(back.field("WorkspaceSid"), Some(ws.to_string().as_str()));
    }

    #[test]
    fn extreme_numbers_and_empty_strings_round_trip() {
        let mut d = EventData::with_capacity(4, 0);
        d.int(Field::TaskPriority, i64::MIN).int(Field::TaskVersion, i64::MAX).text(Field::TaskQueueName, "");
        let e = Event::new(
            u64::MAX,
            Sid::new(Prefix::Event, u128::MAX),
            EventType::WorkspaceDeleted,
            Timestamp(i64::MIN),
            Sid::new(Prefix::Workspace, 0),
            "taskchannel",
            Sid::new(Prefix::Call, 1),
            d,
        );
        let back = Event::decode(&e.encode()).unwrap();
        assert_eq!(back, e);
        assert_eq!(back.at, Timestamp(i64::MIN));
        assert_eq!(back.field("TaskPriority"), Some(i64::MIN.to_string().as_str()));
        assert_eq!(back.field("TaskQueueName"), Some(""));
        assert_eq!(back.workspace_name(), "");
    }

    #[test]
    fn damaged_bytes_are_an_error_not_a_panic() {
        let bytes = sample().encode();
        for len in 0..bytes.len() {
            assert!(Event::decode(&bytes[..len]).is_err(), "a prefix of {len} bytes was accepted");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Event::decode(&longer).is_err());
        // Flipping any byte gives an error or some event, never a panic.
        for i in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[i] ^= 0xff;
            let _ = Event::decode(&flipped);
        }
        assert_eq!(Event::decode(b"{\"seq\":1}"), Err(DecodeError("unknown encoding version")));
    }
}
