//! TaskRouter events (reference §9): the ordered log every change appends to.
//!
//! An [`Event`] carries the §9.2 callback fields as PascalCase name/value pairs, so the callback deliverer
//! posts them as they are and the Events resource renders them (snake_cased) as `event_data`.

use crate::sid::Sid;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

macro_rules! event_types {
    ($($variant:ident => $name:literal),* $(,)?) => {
        /// Every event type of reference §9.1 the engine emits.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum EventType { $(#[doc = $name] $variant),* }

        impl EventType {
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
}

/// One entry of the event log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the log, increasing from 1.
    pub seq: u64,
    /// `EV…`
    pub sid: Sid,
    /// What happened.
    pub event_type: EventType,
    /// Human description, e.g. "Reservation WR… created for Worker WK…".
    pub description: String,
    /// When.
    pub at: Timestamp,
    /// The workspace.
    pub workspace_sid: Sid,
    /// The workspace's friendly name (`WorkspaceName`).
    pub workspace_name: String,
    /// `task`, `worker`, `reservation`, `activity`, `workflow`, `taskqueue`, `workspace`, `taskchannel`.
    pub resource_type: String,
    /// The resource's SID.
    pub resource_sid: Sid,
    /// The §9.2 fields beyond the base ones, PascalCase names in order.
    pub fields: Vec<(String, String)>,
}

impl Event {
    /// The value of one field, if present.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}
