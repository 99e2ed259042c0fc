//! Commands: one per mutating REST operation of TaskRouter v1 and API 2010 Conferences, plus simulation
//! commands, with typed parameters whose fields mirror Twilio's PascalCase names (snake_cased).
//!
//! `None` means "not given". Enumerated parameters (`TaskOrder`, `AssignmentStatus`, ...) stay strings so the
//! core, which owns the rules, names the parameter when a value is wrong.

use crate::model::Secret;
use crate::sid::Sid;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// Workspace create/update (`Template` and create-only fields ignored on update).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkspaceParams {
    pub friendly_name: Option<String>,
    pub event_callback_url: Option<String>,
    pub events_filter: Option<String>,
    pub multi_task_enabled: Option<bool>,
    pub template: Option<String>,
    pub prioritize_queue_order: Option<String>,
    pub default_activity_sid: Option<Sid>,
    pub timeout_activity_sid: Option<Sid>,
}

/// Worker create/update.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerParams {
    pub friendly_name: Option<String>,
    pub activity_sid: Option<Sid>,
    pub attributes: Option<String>,
    pub reject_pending_reservations: Option<bool>,
}

/// TaskQueue create/update.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskQueueParams {
    pub friendly_name: Option<String>,
    pub target_workers: Option<String>,
    pub max_reserved_workers: Option<i64>,
    pub task_order: Option<String>,
    pub reservation_activity_sid: Option<Sid>,
    pub assignment_activity_sid: Option<Sid>,
}

/// Workflow create/update.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkflowParams {
    pub friendly_name: Option<String>,
    pub configuration: Option<String>,
    pub assignment_callback_url: Option<String>,
    pub fallback_assignment_callback_url: Option<String>,
    pub task_reservation_timeout: Option<i64>,
    pub re_evaluate_tasks: Option<bool>,
}

/// Task create.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateTaskParams {
    pub timeout: Option<i64>,
    pub priority: Option<i64>,
    /// SID or unique name.
    pub task_channel: Option<String>,
    pub workflow_sid: Option<Sid>,
    pub attributes: Option<String>,
    pub virtual_start_time: Option<Timestamp>,
    pub routing_target: Option<Sid>,
    pub ignore_capacity: Option<bool>,
    pub task_queue_sid: Option<Sid>,
}

/// Task update.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UpdateTaskParams {
    pub attributes: Option<String>,
    pub assignment_status: Option<String>,
    pub reason: Option<String>,
    pub priority: Option<i64>,
    pub task_channel: Option<String>,
    pub virtual_start_time: Option<Timestamp>,
}

/// Reservation update (reference §7). Conference parameters apply to the worker leg.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UpdateReservationParams {
    pub reservation_status: Option<String>,
    pub worker_activity_sid: Option<Sid>,
    /// `accept`, `reject`, `conference`, `dequeue`, `call`, `redirect`, `supervise`.
    pub instruction: Option<String>,
    pub to: Option<String>,
    pub from: Option<String>,
    pub post_work_activity_sid: Option<Sid>,
    pub timeout: Option<i64>,
    pub end_conference_on_exit: Option<bool>,
    pub end_conference_on_customer_exit: Option<bool>,
    pub start_conference_on_enter: Option<bool>,
    pub muted: Option<bool>,
    pub dequeue_from: Option<String>,
    pub dequeue_to: Option<String>,
    pub dequeue_post_work_activity_sid: Option<Sid>,
    pub call_from: Option<String>,
    pub call_to: Option<String>,
    pub call_url: Option<String>,
    pub call_accept: Option<bool>,
    pub redirect_call_sid: Option<Sid>,
    pub redirect_url: Option<String>,
    pub redirect_accept: Option<bool>,
    /// The `supervise` instruction's supervisor: a worker SID (its `contact_uri` is dialled) or an address.
    pub supervisor: Option<String>,
    /// `monitor` (muted, the default), `whisper` (heard by the worker only) or `barge` (heard by both).
    pub supervisor_mode: Option<String>,
}

/// A task transfer (the worker SDK's `Task.transfer`, eb §4.3): the worker's accepted reservation of the
/// task hands it to `to`, a worker or a task queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransferParams {
    pub reservation_sid: Sid,
    pub task_sid: Sid,
    /// A worker (`WK…`) or task queue (`WQ…`) SID, as the worker gave it.
    pub to: String,
    /// `WARM` (the default) or `COLD`.
    pub mode: Option<String>,
    /// The task's priority from the transfer on.
    pub priority: Option<i64>,
    /// The task's attributes from the transfer on (a JSON object).
    pub attributes: Option<String>,
}

/// Participant create (API 2010).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateParticipantParams {
    pub from: String,
    pub to: String,
    pub label: Option<String>,
    pub muted: Option<bool>,
    pub start_conference_on_enter: Option<bool>,
    pub end_conference_on_exit: Option<bool>,
}

/// Participant update (API 2010).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UpdateParticipantParams {
    pub muted: Option<bool>,
    pub hold: Option<bool>,
    pub end_conference_on_exit: Option<bool>,
    pub coaching: Option<bool>,
    pub call_sid_to_coach: Option<Sid>,
}

/// Every mutation the core accepts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    CreateWorkspace {
        params: WorkspaceParams,
    },
    UpdateWorkspace {
        workspace_sid: Sid,
        params: WorkspaceParams,
    },
    DeleteWorkspace {
        workspace_sid: Sid,
    },
    CreateActivity {
        workspace_sid: Sid,
        friendly_name: Option<String>,
        available: Option<bool>,
    },
    UpdateActivity {
        workspace_sid: Sid,
        sid: Sid,
        friendly_name: Option<String>,
    },
    DeleteActivity {
        workspace_sid: Sid,
        sid: Sid,
    },
    CreateTaskChannel {
        workspace_sid: Sid,
        friendly_name: Option<String>,
        unique_name: Option<String>,
        channel_optimized_routing: Option<bool>,
    },
    UpdateTaskChannel {
        workspace_sid: Sid,
        /// SID or unique name.
        sid: String,
        friendly_name: Option<String>,
        channel_optimized_routing: Option<bool>,
    },
    DeleteTaskChannel {
        workspace_sid: Sid,
        sid: String,
    },
    CreateWorker {
        workspace_sid: Sid,
        params: WorkerParams,
    },
    UpdateWorker {
        workspace_sid: Sid,
        sid: Sid,
        params: WorkerParams,
        if_match: Option<String>,
    },
    DeleteWorker {
        workspace_sid: Sid,
        sid: Sid,
        if_match: Option<String>,
    },
    UpdateWorkerChannel {
        workspace_sid: Sid,
        worker_sid: Sid,
        /// WC SID or the task channel's unique name.
        sid: String,
        capacity: Option<i64>,
        available: Option<bool>,
    },
    CreateTaskQueue {
        workspace_sid: Sid,
        params: TaskQueueParams,
    },
    UpdateTaskQueue {
        workspace_sid: Sid,
        sid: Sid,
        params: TaskQueueParams,
    },
    DeleteTaskQueue {
        workspace_sid: Sid,
        sid: Sid,
    },
    CreateWorkflow {
        workspace_sid: Sid,
        params: WorkflowParams,
    },
    UpdateWorkflow {
        workspace_sid: Sid,
        sid: Sid,
        params: WorkflowParams,
    },
    DeleteWorkflow {
        workspace_sid: Sid,
        sid: Sid,
    },
    CreateTask {
        workspace_sid: Sid,
        params: CreateTaskParams,
    },
    UpdateTask {
        workspace_sid: Sid,
        sid: Sid,
        params: UpdateTaskParams,
        if_match: Option<String>,
    },
    DeleteTask {
        workspace_sid: Sid,
        sid: Sid,
        if_match: Option<String>,
    },
    /// Either view: `task_sid` or `worker_sid` names the parent the URL used (checked when given).
    UpdateReservation {
        workspace_sid: Sid,
        task_sid: Option<Sid>,
        worker_sid: Option<Sid>,
        sid: Sid,
        params: Box<UpdateReservationParams>,
        if_match: Option<String>,
    },
    /// The event bridge's `POST Workers/{WK}/Transfers`: `worker_sid` transfers a task it holds.
    CreateTransfer {
        workspace_sid: Sid,
        worker_sid: Sid,
        params: Box<TransferParams>,
    },
    /// The event bridge's `POST Workers/{WK}/Transfers/{TT}` with `TransferStatus=canceled`.
    CancelTransfer {
        workspace_sid: Sid,
        worker_sid: Sid,
        task_sid: Sid,
        sid: Sid,
    },
    /// `Status=completed` ends the conference.
    UpdateConference {
        sid: Sid,
        status: Option<String>,
    },
    /// `conference` is a CF SID or a friendly name.
    CreateParticipant {
        conference: String,
        params: CreateParticipantParams,
    },
    UpdateParticipant {
        conference_sid: Sid,
        call_sid: Sid,
        params: UpdateParticipantParams,
    },
    /// Kick.
    DeleteParticipant {
        conference_sid: Sid,
        call_sid: Sid,
    },
    /// Simulation: the customer on `call_sid` hangs up.
    CallerHangup {
        call_sid: Sid,
    },
    /// API 2010 `POST /Keys`. The caller draws the secret from the operating system's random source: the
    /// core takes no randomness from anywhere but its commands and its injected SID generator.
    CreateApiKey {
        friendly_name: Option<String>,
        secret: Secret,
    },
    /// API 2010 `POST /Keys/{Sid}`: `FriendlyName`, the only field that changes.
    UpdateApiKey {
        sid: Sid,
        friendly_name: Option<String>,
    },
    DeleteApiKey {
        sid: Sid,
    },
}

impl WorkflowParams {
    /// A workflow that sends every task to one queue: no filters, a `default_filter` only. The workspace
    /// template's "Default Fifo Workflow", and where most set-ups start.
    pub fn single_queue(friendly_name: impl Into<String>, queue: Sid) -> Self {
        let configuration =
            format!(r#"{{"task_routing":{{"filters":[],"default_filter":{{"queue":"{queue}"}}}}}}"#);
        WorkflowParams {
            friendly_name: Some(friendly_name.into()),
            configuration: Some(configuration),
            ..Default::default()
        }
    }
}
