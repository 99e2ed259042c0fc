//! The port between the HTTP facade and the engine: the Twilio operations the facade needs ([`Op`]), the
//! resource views it renders ([`Out`]) and the failures it maps to Twilio errors ([`Failure`]).
//!
//! Why a port of its own rather than the engine's `Command`/`Reply` directly: the facade was written while
//! the engine core was being written in parallel, and this keeps the two decoupled. An adapter over
//! `engine::Handle` (one `match` from [`Op`] to commands and reads, one from replies to views) is all it takes
//! to plug the real engine in; tests plug in a double. The views are plain data in the spec's terms: the
//! facade owns the wire format, the engine owns every rule.
//!
//! What an adapter must do (the contract the facade relies on):
//! - Answer each [`Op`] with the matching [`Out`] variant (`Create*`/`Fetch*`/`Update*` -> the resource,
//!   `List*` -> the full filtered list in a stable order, `Delete*` -> [`Out::Deleted`]). The facade pages
//!   lists itself, keyed by SID, so the order must not change between pages.
//! - Apply every filter of the list ops (expressions, `Ordering`, ...) and every rule (transitions,
//!   immutability, uniqueness); the facade only checks the syntax of parameters.
//! - Turn `engine::Error` into a [`Failure`] with its `status()` and `code()`; a 404 message names the
//!   Twilio path without `/v1` (`The requested resource /Workspaces/WS…/Tasks/WT… was not found`).
//! - Compare `if_match` with the resource's version and answer [`Failure::version_mismatch`] (412).
//! - Publish every event as a [`CallbackEvent`] whose `fields` are the §9.2 form fields; a
//!   `reservation.created` event must carry `WorkflowSid`, `TaskSid` and `ReservationSid` (plus the other §6
//!   parameters) for [`super::assignment`].

use std::sync::Arc;

use engine::{Sid, Timestamp};
use futures_util::future::BoxFuture;
use serde_json::Value;
use tokio::sync::broadcast;

/// Why the engine refused an operation. `status` and `code` become the HTTP status and Twilio code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    /// HTTP status (400, 404, 409, 410, 412, 503, ...).
    pub status: u16,
    /// Twilio error code (20001, 20404, ...).
    pub code: u32,
    /// What was wrong and what to do.
    pub message: String,
}

impl Failure {
    /// 404/20404 for a resource named by its Twilio path.
    pub fn not_found(path: impl std::fmt::Display) -> Failure {
        Failure { status: 404, code: 20404, message: format!("The requested resource {path} was not found") }
    }

    /// 400/20001.
    pub fn invalid(message: impl Into<String>) -> Failure {
        Failure { status: 400, code: 20001, message: message.into() }
    }

    /// 412: `If-Match` does not name the current version.
    pub fn version_mismatch(current: u64) -> Failure {
        Failure {
            status: 412,
            code: 20001,
            message: format!(
                "If-Match does not match the current version {current}; fetch the resource and retry with its ETag"
            ),
        }
    }
}

/// The engine as the facade sees it. Implemented by the adapter over the engine actor and by test doubles.
pub trait Engine: Send + Sync + 'static {
    /// Performs one operation.
    fn call(&self, op: Op) -> BoxFuture<'_, Result<Out, Failure>>;
    /// Follows the event stream from now on (for callback delivery).
    fn subscribe(&self) -> broadcast::Receiver<Arc<CallbackEvent>>;
    /// The engine's current time (for `age` fields).
    fn now(&self) -> Timestamp;
}

/// One engine event as the callback deliverer needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct CallbackEvent {
    /// Position in the engine's event log.
    pub seq: u64,
    /// The workspace the event belongs to.
    pub workspace_sid: Sid,
    /// `task.created`, `reservation.accepted`, ...
    pub event_type: String,
    /// The §9.2 form fields, PascalCase names, in order (`EventType`, `AccountSid`, `Sid`, ...).
    pub fields: Vec<(String, String)>,
}

/// Parameters that update a resource: `None` means "leave unchanged".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkspaceChange {
    pub friendly_name: Option<String>,
    pub event_callback_url: Option<String>,
    pub events_filter: Option<String>,
    pub multi_task_enabled: Option<bool>,
    pub prioritize_queue_order: Option<String>,
    pub default_activity_sid: Option<Sid>,
    pub timeout_activity_sid: Option<Sid>,
    /// Create only: `NONE` or `FIFO`.
    pub template: Option<String>,
}

/// Worker create/update parameters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkerChange {
    pub friendly_name: Option<String>,
    pub activity_sid: Option<Sid>,
    pub attributes: Option<String>,
    pub reject_pending_reservations: Option<bool>,
}

/// TaskQueue create/update parameters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskQueueChange {
    pub friendly_name: Option<String>,
    pub target_workers: Option<String>,
    pub max_reserved_workers: Option<u32>,
    pub task_order: Option<String>,
    pub reservation_activity_sid: Option<Sid>,
    pub assignment_activity_sid: Option<Sid>,
}

/// Workflow create/update parameters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkflowChange {
    pub friendly_name: Option<String>,
    pub configuration: Option<String>,
    pub assignment_callback_url: Option<String>,
    pub fallback_assignment_callback_url: Option<String>,
    pub task_reservation_timeout: Option<u32>,
    /// Update only.
    pub re_evaluate_tasks: Option<bool>,
}

/// Task create parameters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskCreate {
    pub timeout: Option<u32>,
    pub priority: Option<i64>,
    pub task_channel: Option<String>,
    pub workflow_sid: Option<Sid>,
    pub attributes: Option<String>,
    pub virtual_start_time: Option<Timestamp>,
    pub routing_target: Option<Sid>,
    pub ignore_capacity: Option<bool>,
    pub task_queue_sid: Option<Sid>,
}

/// Task update parameters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskChange {
    pub attributes: Option<String>,
    pub assignment_status: Option<String>,
    pub reason: Option<String>,
    pub priority: Option<i64>,
    pub task_channel: Option<String>,
    pub virtual_start_time: Option<Timestamp>,
}

/// Reservation update parameters (REST accept/reject/instructions, reference §7).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReservationChange {
    pub reservation_status: Option<String>,
    pub worker_activity_sid: Option<Sid>,
    /// `conference`, `dequeue`, `call`, `redirect`, `accept`, `reject`, `supervise`, ...
    pub instruction: Option<String>,
    pub to: Option<String>,
    pub from: Option<String>,
    pub post_work_activity_sid: Option<Sid>,
    /// Every other parameter the spec allows (dequeue/call/redirect/conference options), as sent.
    pub options: Vec<(String, String)>,
}

/// List filters of the Tasks list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskFilter {
    pub priority: Option<i64>,
    pub assignment_status: Vec<String>,
    pub workflow_sid: Option<Sid>,
    pub workflow_name: Option<String>,
    pub task_queue_sid: Option<Sid>,
    pub task_queue_name: Option<String>,
    pub evaluate_task_attributes: Option<String>,
    pub routing_target: Option<String>,
    pub ordering: Option<String>,
    pub has_addons: Option<bool>,
}

/// List filters of the Workers list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkerFilter {
    pub activity_name: Option<String>,
    pub activity_sid: Option<Sid>,
    pub available: Option<bool>,
    pub friendly_name: Option<String>,
    pub target_workers_expression: Option<String>,
    pub task_queue_name: Option<String>,
    pub task_queue_sid: Option<Sid>,
    pub ordering: Option<String>,
}

/// List filters of the Events list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventFilter {
    pub start_date: Option<Timestamp>,
    pub end_date: Option<Timestamp>,
    pub event_type: Option<String>,
    pub minutes: Option<u32>,
    pub reservation_sid: Option<Sid>,
    pub task_queue_sid: Option<Sid>,
    pub task_sid: Option<Sid>,
    pub worker_sid: Option<Sid>,
    pub workflow_sid: Option<Sid>,
    pub task_channel: Option<String>,
    pub sid: Option<Sid>,
}

/// List filters of the Conferences list (dates are bounds in ms, inclusive).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConferenceFilter {
    pub status: Option<String>,
    pub friendly_name: Option<String>,
    pub created_from: Option<Timestamp>,
    pub created_until: Option<Timestamp>,
    pub updated_from: Option<Timestamp>,
    pub updated_until: Option<Timestamp>,
}

/// Participant create/update parameters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParticipantChange {
    pub from: Option<String>,
    pub to: Option<String>,
    pub label: Option<String>,
    pub muted: Option<bool>,
    pub hold: Option<bool>,
    pub coaching: Option<bool>,
    pub call_sid_to_coach: Option<String>,
    pub start_conference_on_enter: Option<bool>,
    pub end_conference_on_exit: Option<bool>,
}

/// Which statistics resource (`kind` = `Statistics`, `RealTimeStatistics` or `CumulativeStatistics`).
#[derive(Debug, Clone, PartialEq)]
pub struct StatisticsQuery {
    pub kind: String,
    /// Query parameters as sent (`Minutes`, `StartDate`, `EndDate`, `TaskChannel`, `SplitByWaitTime`, ...).
    pub params: Vec<(String, String)>,
}

/// Every operation of the facade. `ws` is the workspace SID; `key` fields accept a SID or a unique name where
/// Twilio does (TaskChannels, WorkerChannels, Conferences, Participants).
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    CreateWorkspace(WorkspaceChange),
    FetchWorkspace(Sid),
    UpdateWorkspace(Sid, WorkspaceChange),
    DeleteWorkspace(Sid),
    ListWorkspaces {
        friendly_name: Option<String>,
    },

    CreateActivity {
        ws: Sid,
        friendly_name: String,
        available: bool,
    },
    FetchActivity {
        ws: Sid,
        sid: Sid,
    },
    UpdateActivity {
        ws: Sid,
        sid: Sid,
        friendly_name: Option<String>,
    },
    DeleteActivity {
        ws: Sid,
        sid: Sid,
    },
    ListActivities {
        ws: Sid,
        friendly_name: Option<String>,
        available: Option<bool>,
    },

    CreateTaskChannel {
        ws: Sid,
        friendly_name: String,
        unique_name: String,
        channel_optimized_routing: Option<bool>,
    },
    FetchTaskChannel {
        ws: Sid,
        key: String,
    },
    UpdateTaskChannel {
        ws: Sid,
        key: String,
        friendly_name: Option<String>,
        channel_optimized_routing: Option<bool>,
    },
    DeleteTaskChannel {
        ws: Sid,
        key: String,
    },
    ListTaskChannels {
        ws: Sid,
    },

    CreateWorker {
        ws: Sid,
        change: WorkerChange,
    },
    FetchWorker {
        ws: Sid,
        sid: Sid,
    },
    UpdateWorker {
        ws: Sid,
        sid: Sid,
        change: WorkerChange,
        if_match: Option<String>,
    },
    DeleteWorker {
        ws: Sid,
        sid: Sid,
        if_match: Option<String>,
    },
    ListWorkers {
        ws: Sid,
        filter: WorkerFilter,
    },

    FetchWorkerChannel {
        ws: Sid,
        worker: Sid,
        key: String,
    },
    UpdateWorkerChannel {
        ws: Sid,
        worker: Sid,
        key: String,
        capacity: Option<u32>,
        available: Option<bool>,
    },
    ListWorkerChannels {
        ws: Sid,
        worker: Sid,
    },

    CreateTaskQueue {
        ws: Sid,
        change: TaskQueueChange,
    },
    FetchTaskQueue {
        ws: Sid,
        sid: Sid,
    },
    UpdateTaskQueue {
        ws: Sid,
        sid: Sid,
        change: TaskQueueChange,
    },
    DeleteTaskQueue {
        ws: Sid,
        sid: Sid,
    },
    ListTaskQueues {
        ws: Sid,
        friendly_name: Option<String>,
        evaluate_worker_attributes: Option<String>,
        worker_sid: Option<Sid>,
        ordering: Option<String>,
    },

    CreateWorkflow {
        ws: Sid,
        change: WorkflowChange,
    },
    FetchWorkflow {
        ws: Sid,
        sid: Sid,
    },
    UpdateWorkflow {
        ws: Sid,
        sid: Sid,
        change: WorkflowChange,
    },
    DeleteWorkflow {
        ws: Sid,
        sid: Sid,
    },
    ListWorkflows {
        ws: Sid,
        friendly_name: Option<String>,
    },

    CreateTask {
        ws: Sid,
        create: TaskCreate,
    },
    FetchTask {
        ws: Sid,
        sid: Sid,
    },
    UpdateTask {
        ws: Sid,
        sid: Sid,
        change: TaskChange,
        if_match: Option<String>,
    },
    DeleteTask {
        ws: Sid,
        sid: Sid,
        if_match: Option<String>,
    },
    ListTasks {
        ws: Sid,
        filter: TaskFilter,
    },

    /// Reservations of a task (`task: Some`) or of a worker (`worker: Some`).
    FetchReservation {
        ws: Sid,
        task: Option<Sid>,
        worker: Option<Sid>,
        sid: Sid,
    },
    UpdateReservation {
        ws: Sid,
        task: Option<Sid>,
        worker: Option<Sid>,
        sid: Sid,
        change: ReservationChange,
        if_match: Option<String>,
    },
    ListReservations {
        ws: Sid,
        task: Option<Sid>,
        worker: Option<Sid>,
        reservation_status: Option<String>,
        worker_sid: Option<Sid>,
    },

    FetchEvent {
        ws: Sid,
        sid: Sid,
    },
    ListEvents {
        ws: Sid,
        filter: EventFilter,
    },

    /// Any statistics resource; `scope` is the workspace itself, `TaskQueues/{WQ}`, `Workflows/{WW}`,
    /// `Workers`, `Workers/{WK}` or `TaskQueues` (the list), as a path under the workspace.
    Statistics {
        ws: Sid,
        scope: String,
        query: StatisticsQuery,
    },

    FetchConference {
        key: String,
    },
    EndConference {
        key: String,
    },
    ListConferences {
        filter: ConferenceFilter,
    },
    CreateParticipant {
        conference: String,
        change: ParticipantChange,
    },
    FetchParticipant {
        conference: String,
        call: String,
    },
    UpdateParticipant {
        conference: String,
        call: String,
        change: ParticipantChange,
    },
    DeleteParticipant {
        conference: String,
        call: String,
    },
    ListParticipants {
        conference: String,
        muted: Option<bool>,
        hold: Option<bool>,
        coaching: Option<bool>,
    },
}

/// What an operation returns.
#[derive(Debug, Clone, PartialEq)]
pub enum Out {
    Workspace(Workspace),
    Workspaces(Vec<Workspace>),
    Activity(Activity),
    Activities(Vec<Activity>),
    TaskChannel(TaskChannel),
    TaskChannels(Vec<TaskChannel>),
    Worker(Worker),
    Workers(Vec<Worker>),
    WorkerChannel(WorkerChannel),
    WorkerChannels(Vec<WorkerChannel>),
    TaskQueue(TaskQueue),
    TaskQueues(Vec<TaskQueue>),
    Workflow(Workflow),
    Workflows(Vec<Workflow>),
    Task(Task),
    Tasks(Vec<Task>),
    Reservation(Reservation),
    Reservations(Vec<Reservation>),
    Event(Event),
    Events(Vec<Event>),
    /// A statistics document: the spec's fields except `account_sid`, `workspace_sid` and `url`, which the
    /// facade adds. For the `TaskQueues/Statistics` list: one object per queue.
    Statistics(Value),
    StatisticsList(Vec<Value>),
    Conference(Conference),
    Conferences(Vec<Conference>),
    Participant(Participant),
    Participants(Vec<Participant>),
    /// A delete succeeded.
    Deleted,
}

/// Dates every resource carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Dates {
    pub created: Timestamp,
    pub updated: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Workspace {
    pub sid: Sid,
    pub friendly_name: String,
    pub default_activity_sid: Option<Sid>,
    pub default_activity_name: Option<String>,
    pub timeout_activity_sid: Option<Sid>,
    pub timeout_activity_name: Option<String>,
    pub event_callback_url: Option<String>,
    pub events_filter: Option<String>,
    pub multi_task_enabled: bool,
    pub prioritize_queue_order: String,
    pub dates: Dates,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Activity {
    pub sid: Sid,
    pub workspace_sid: Sid,
    pub friendly_name: String,
    pub available: bool,
    pub dates: Dates,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TaskChannel {
    pub sid: Sid,
    pub workspace_sid: Sid,
    pub friendly_name: String,
    pub unique_name: String,
    pub channel_optimized_routing: bool,
    pub dates: Dates,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Worker {
    pub sid: Sid,
    pub workspace_sid: Sid,
    pub friendly_name: String,
    pub activity_sid: Sid,
    pub activity_name: String,
    pub available: bool,
    pub attributes: String,
    pub date_status_changed: Timestamp,
    pub version: u64,
    pub dates: Dates,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WorkerChannel {
    pub sid: Sid,
    pub workspace_sid: Sid,
    pub worker_sid: Sid,
    pub task_channel_sid: Sid,
    pub task_channel_unique_name: String,
    pub configured_capacity: u32,
    pub assigned_tasks: u32,
    pub available: bool,
    pub available_capacity_percentage: u32,
    pub dates: Dates,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TaskQueue {
    pub sid: Sid,
    pub workspace_sid: Sid,
    pub friendly_name: String,
    pub target_workers: String,
    pub max_reserved_workers: u32,
    pub task_order: String,
    pub reservation_activity_sid: Option<Sid>,
    pub reservation_activity_name: Option<String>,
    pub assignment_activity_sid: Option<Sid>,
    pub assignment_activity_name: Option<String>,
    pub dates: Dates,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Workflow {
    pub sid: Sid,
    pub workspace_sid: Sid,
    pub friendly_name: String,
    pub configuration: String,
    pub assignment_callback_url: Option<String>,
    pub fallback_assignment_callback_url: Option<String>,
    pub task_reservation_timeout: u32,
    pub dates: Dates,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    pub sid: Sid,
    pub workspace_sid: Sid,
    pub assignment_status: String,
    pub attributes: String,
    pub priority: i64,
    pub timeout: u32,
    pub reason: Option<String>,
    pub task_queue_sid: Option<Sid>,
    pub task_queue_friendly_name: Option<String>,
    pub task_queue_entered_date: Option<Timestamp>,
    pub workflow_sid: Option<Sid>,
    pub workflow_friendly_name: Option<String>,
    pub task_channel_sid: Option<Sid>,
    pub task_channel_unique_name: Option<String>,
    pub virtual_start_time: Timestamp,
    pub routing_target: Option<String>,
    pub ignore_capacity: Option<bool>,
    pub addons: String,
    pub version: u64,
    pub dates: Dates,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Reservation {
    pub sid: Sid,
    pub workspace_sid: Sid,
    pub task_sid: Sid,
    pub worker_sid: Sid,
    pub worker_name: String,
    pub reservation_status: String,
    pub version: u64,
    pub dates: Dates,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub sid: Sid,
    pub workspace_sid: Sid,
    pub event_type: String,
    pub description: String,
    pub event_date: Timestamp,
    pub event_data: Value,
    pub resource_type: String,
    pub resource_sid: Option<Sid>,
    /// Resource path under the workspace, e.g. `/Tasks/WT…`, made absolute by the facade.
    pub resource_path: Option<String>,
    pub actor_type: Option<String>,
    pub actor_sid: Option<Sid>,
    pub actor_path: Option<String>,
    pub source: String,
    pub source_ip_address: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Conference {
    pub sid: Sid,
    pub friendly_name: String,
    /// `init`, `in-progress` or `completed`.
    pub status: String,
    pub region: String,
    pub reason_conference_ended: Option<String>,
    pub call_sid_ending_conference: Option<Sid>,
    pub dates: Dates,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Participant {
    pub call_sid: Sid,
    pub conference_sid: Sid,
    pub label: Option<String>,
    pub call_sid_to_coach: Option<Sid>,
    pub coaching: bool,
    pub end_conference_on_exit: bool,
    pub muted: bool,
    pub hold: bool,
    pub start_conference_on_enter: bool,
    pub status: String,
    /// Milliseconds in queue; only in the create response.
    pub queue_time: Option<String>,
    pub dates: Dates,
}
