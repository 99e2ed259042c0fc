//! The TaskRouter and Conference resources as the engine holds them.
//!
//! Field names follow Twilio's JSON so the facade renders them almost one to one. Attributes are kept as
//! the caller's original JSON string (what Twilio returns). A worker also keeps them parsed, as a [`Value`]
//! (`#[serde(skip)]`, rebuilt by [`crate::core::Core::restore`]): queue membership and workflow target
//! expressions evaluate worker attributes all the time. A task keeps only the text, since a parsed tree
//! costs several hundred bytes per task and a million tasks may wait; the engine parses it where an
//! expression looks into it ([`Task::attributes_value`]). Fields marked "engine" are bookkeeping the facade
//! does not render (routing position, deadlines).

use crate::expr::Expr;
use crate::sid::{Prefix, Sid};
use crate::time::Timestamp;
use crate::workflow::WorkflowConfig;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

/// FIFO or LIFO (queue `task_order`, workspace `prioritize_queue_order`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum QueueOrder {
    /// Oldest first.
    #[default]
    #[serde(rename = "FIFO")]
    Fifo,
    /// Newest first.
    #[serde(rename = "LIFO")]
    Lifo,
}

impl QueueOrder {
    /// `FIFO` or `LIFO`.
    pub fn as_str(self) -> &'static str {
        match self {
            QueueOrder::Fifo => "FIFO",
            QueueOrder::Lifo => "LIFO",
        }
    }

    /// Parses `FIFO`/`LIFO` (case-insensitive).
    pub fn parse(s: &str) -> Option<QueueOrder> {
        if s.eq_ignore_ascii_case("fifo") {
            Some(QueueOrder::Fifo)
        } else if s.eq_ignore_ascii_case("lifo") {
            Some(QueueOrder::Lifo)
        } else {
            None
        }
    }
}

/// A workspace (reference §4.1).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Workspace {
    pub account_sid: Sid,
    pub sid: Sid,
    pub friendly_name: String,
    pub default_activity_sid: Sid,
    pub default_activity_name: String,
    pub timeout_activity_sid: Sid,
    pub timeout_activity_name: String,
    pub event_callback_url: Option<String>,
    pub events_filter: Option<String>,
    pub multi_task_enabled: bool,
    pub prioritize_queue_order: QueueOrder,
    pub date_created: Timestamp,
    pub date_updated: Timestamp,
}

/// An activity (reference §4.2).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Activity {
    pub account_sid: Sid,
    pub workspace_sid: Sid,
    pub sid: Sid,
    pub friendly_name: String,
    pub available: bool,
    pub date_created: Timestamp,
    pub date_updated: Timestamp,
}

/// A task channel (reference §4.3).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskChannel {
    pub account_sid: Sid,
    pub workspace_sid: Sid,
    pub sid: Sid,
    pub friendly_name: String,
    pub unique_name: String,
    pub channel_optimized_routing: bool,
    pub date_created: Timestamp,
    pub date_updated: Timestamp,
}

/// A worker (reference §4.4).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Worker {
    pub account_sid: Sid,
    pub workspace_sid: Sid,
    pub sid: Sid,
    pub friendly_name: String,
    pub activity_sid: Sid,
    pub activity_name: String,
    /// Derived from the activity.
    pub available: bool,
    /// The JSON object string as given.
    pub attributes: String,
    /// `attributes`, parsed once.
    #[serde(skip)]
    pub attributes_value: Value,
    pub date_status_changed: Timestamp,
    pub date_created: Timestamp,
    pub date_updated: Timestamp,
    /// ETag version, bumped on every change.
    pub version: u64,
    /// Engine: when the worker last became idle (longest-idle ordering).
    pub last_idle_at: Timestamp,
}

impl Worker {
    /// The address the worker is dialled at (its `contact_uri` attribute), for the conference and
    /// supervise instructions.
    pub fn contact_uri(&self) -> Option<&str> {
        self.attributes_value.get("contact_uri").and_then(|v| v.as_str())
    }
}

/// A worker's capacity on one task channel (reference §4.5).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerChannel {
    pub account_sid: Sid,
    pub workspace_sid: Sid,
    pub sid: Sid,
    pub worker_sid: Sid,
    pub task_channel_sid: Sid,
    /// Shared with the other copies of the name (the engine interns them).
    pub task_channel_unique_name: Arc<str>,
    pub configured_capacity: u32,
    /// Tasks assigned or wrapping on this channel.
    pub assigned_tasks: u32,
    /// Engine: pending reservations on this channel (they count against capacity too).
    #[serde(default)]
    pub reserved_tasks: u32,
    pub available: bool,
    pub date_created: Timestamp,
    pub date_updated: Timestamp,
}

impl WorkerChannel {
    /// 0..100: the share of capacity still free (0 when unavailable or no capacity).
    pub fn available_capacity_percentage(&self) -> u32 {
        if !self.available || self.configured_capacity == 0 {
            return 0;
        }
        let free = self.configured_capacity.saturating_sub(self.assigned_tasks);
        free * 100 / self.configured_capacity
    }
}

/// A task queue (reference §4.6).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskQueue {
    pub account_sid: Sid,
    pub workspace_sid: Sid,
    pub sid: Sid,
    pub friendly_name: String,
    /// The expression as given; empty matches nobody.
    pub target_workers: String,
    /// `target_workers`, parsed once (None when empty).
    #[serde(skip)]
    pub target_expr: Option<Expr>,
    pub max_reserved_workers: u32,
    pub task_order: QueueOrder,
    pub reservation_activity_sid: Option<Sid>,
    pub reservation_activity_name: Option<String>,
    pub assignment_activity_sid: Option<Sid>,
    pub assignment_activity_name: Option<String>,
    pub date_created: Timestamp,
    pub date_updated: Timestamp,
}

/// A workflow (reference §4.7).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Workflow {
    pub account_sid: Sid,
    pub workspace_sid: Sid,
    pub sid: Sid,
    pub friendly_name: String,
    /// The configuration JSON as given.
    pub configuration: String,
    /// `configuration`, parsed and validated.
    #[serde(skip)]
    pub config: std::sync::Arc<WorkflowConfig>,
    pub assignment_callback_url: Option<String>,
    pub fallback_assignment_callback_url: Option<String>,
    /// Seconds.
    pub task_reservation_timeout: u32,
    pub document_content_type: String,
    pub date_created: Timestamp,
    pub date_updated: Timestamp,
}

/// `assignment_status` of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskStatus {
    Pending,
    Reserved,
    Assigned,
    Canceled,
    Completed,
    Wrapping,
}

impl TaskStatus {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Pending => "pending",
            TaskStatus::Reserved => "reserved",
            TaskStatus::Assigned => "assigned",
            TaskStatus::Canceled => "canceled",
            TaskStatus::Completed => "completed",
            TaskStatus::Wrapping => "wrapping",
        }
    }

    /// Parses the wire value.
    pub fn parse(s: &str) -> Option<TaskStatus> {
        Some(match s {
            "pending" => TaskStatus::Pending,
            "reserved" => TaskStatus::Reserved,
            "assigned" => TaskStatus::Assigned,
            "canceled" => TaskStatus::Canceled,
            "completed" => TaskStatus::Completed,
            "wrapping" => TaskStatus::Wrapping,
            _ => return None,
        })
    }

    /// Canceled or completed.
    pub fn is_terminal(self) -> bool {
        matches!(self, TaskStatus::Canceled | TaskStatus::Completed)
    }
}

/// Where a task stands in its workflow (engine). The indexes are `u32` (a workflow's filters and targets
/// come from a configuration of bounded size) to keep [`Task`] within a smaller allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutingPos {
    /// Index of the matched filter; `None` = the default filter.
    pub filter: Option<u32>,
    /// Index of the target within the filter.
    pub target: u32,
    /// When the current target times out (cumulative, from when the filter was entered).
    pub timeout_at: Option<Timestamp>,
    /// When the filter was entered.
    pub filter_entered_at: Timestamp,
}

/// A task (reference §4.8).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Task {
    pub account_sid: Sid,
    pub workspace_sid: Sid,
    pub sid: Sid,
    pub assignment_status: TaskStatus,
    /// The JSON object string as given (or as merged by the engine); parse with [`Task::attributes_value`].
    pub attributes: Box<str>,
    pub priority: i64,
    /// TTL in seconds.
    pub timeout: i64,
    pub reason: Option<Box<str>>,
    pub task_queue_sid: Option<Sid>,
    /// The queue's name when the task entered it. This and the other two names are shared with every other
    /// task in the same queue, workflow and channel (the engine interns them).
    pub task_queue_friendly_name: Option<Arc<str>>,
    pub task_queue_entered_date: Option<Timestamp>,
    pub workflow_sid: Option<Sid>,
    pub workflow_friendly_name: Option<Arc<str>>,
    pub task_channel_sid: Sid,
    pub task_channel_unique_name: Arc<str>,
    pub virtual_start_time: Timestamp,
    pub routing_target: Option<Sid>,
    pub ignore_capacity: bool,
    /// `{}` for every task the engine makes (shared).
    pub addons: Arc<str>,
    pub date_created: Timestamp,
    pub date_updated: Timestamp,
    /// ETag version.
    pub version: u64,
    /// Engine: position in the workflow while pending/reserved.
    pub routing: Option<RoutingPos>,
    /// Engine: pending -> reserved transitions so far (max assignment count).
    pub assignment_count: u32,
    /// Engine: when the task became canceled/completed (purge timer).
    pub terminal_at: Option<Timestamp>,
    /// Engine: when the task was assigned (assigned tasks are system-deleted after 24 h).
    #[serde(default)]
    pub assigned_at: Option<Timestamp>,
    /// Engine: the task's entry in a queue's waiting index, if it has one (rebuilt on restore).
    #[serde(skip)]
    pub(crate) waiting: Option<Waiting>,
}

/// Engine: where a task sits in a queue's waiting index. Kept on the task (not in a map beside it) so the
/// entry can be found again after the fields it was keyed by change, for no more than its own size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Waiting {
    /// The queue whose index holds the entry.
    pub(crate) queue: Sid,
    /// The entry's priority and age key (its SID is the task's).
    pub(crate) key: (std::cmp::Reverse<i64>, i64),
}

impl Task {
    /// `attributes` parsed. Parses on every call (the task does not keep the tree); `Value::Null` if the
    /// text is not JSON, which the engine never stores.
    pub fn attributes_value(&self) -> Value {
        serde_json::from_str(&self.attributes).unwrap_or_default()
    }

    /// `age` in seconds at `now`.
    pub fn age(&self, now: Timestamp) -> i64 {
        now.millis_since(self.date_created) / 1000
    }

    /// The conference the `conference` instruction recorded in the attributes (reference §7), if whole:
    /// `{"conference": {"sid", "participants": {"worker", "customer"}}}`.
    pub fn conference(&self) -> Option<TaskConference> {
        let attributes = self.attributes_value();
        let c = &attributes["conference"];
        let read = |v: &Value, prefix| v.as_str().and_then(|s| Sid::parse_as(s, prefix).ok());
        Some(TaskConference {
            sid: read(&c["sid"], Prefix::Conference)?,
            worker: read(&c["participants"]["worker"], Prefix::Call)?,
            customer: read(&c["participants"]["customer"], Prefix::Call)?,
        })
    }
}

/// A task's conference as its attributes record it: the conference and the calls of its two legs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskConference {
    pub sid: Sid,
    pub worker: Sid,
    pub customer: Sid,
}

/// `reservation_status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReservationStatus {
    Pending,
    Accepted,
    Rejected,
    Timeout,
    Canceled,
    Rescinded,
    Wrapping,
    Completed,
}

impl ReservationStatus {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            ReservationStatus::Pending => "pending",
            ReservationStatus::Accepted => "accepted",
            ReservationStatus::Rejected => "rejected",
            ReservationStatus::Timeout => "timeout",
            ReservationStatus::Canceled => "canceled",
            ReservationStatus::Rescinded => "rescinded",
            ReservationStatus::Wrapping => "wrapping",
            ReservationStatus::Completed => "completed",
        }
    }

    /// Parses the wire value.
    pub fn parse(s: &str) -> Option<ReservationStatus> {
        Some(match s {
            "pending" => ReservationStatus::Pending,
            "accepted" => ReservationStatus::Accepted,
            "rejected" => ReservationStatus::Rejected,
            "timeout" => ReservationStatus::Timeout,
            "canceled" => ReservationStatus::Canceled,
            "rescinded" => ReservationStatus::Rescinded,
            "wrapping" => ReservationStatus::Wrapping,
            "completed" => ReservationStatus::Completed,
            _ => return None,
        })
    }

    /// Pending, accepted or wrapping: the reservation occupies the worker.
    pub fn is_active(self) -> bool {
        matches!(self, ReservationStatus::Pending | ReservationStatus::Accepted | ReservationStatus::Wrapping)
    }
}

/// A reservation (reference §4.9); the task and worker views are the same object.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reservation {
    pub account_sid: Sid,
    pub workspace_sid: Sid,
    pub sid: Sid,
    pub task_sid: Sid,
    pub worker_sid: Sid,
    pub worker_name: String,
    pub reservation_status: ReservationStatus,
    pub date_created: Timestamp,
    pub date_updated: Timestamp,
    /// ETag version.
    pub version: u64,
    /// Engine: the queue the reservation was made from.
    pub task_queue_sid: Option<Sid>,
    /// Engine: the task channel it occupies.
    pub task_channel_sid: Sid,
    /// Engine: when a pending reservation times out.
    pub timeout_at: Option<Timestamp>,
    /// Engine: the worker's activity before a single-tasking reservation activity switch.
    pub worker_previous_activity_sid: Option<Sid>,
    /// The transfer this reservation's worker made of the task (the SDK's `active_outgoing_task_transfer`
    /// while initiated); kept once it ends, as the record of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outgoing_transfer: Option<Box<Transfer>>,
    /// For a reservation a transfer made: the initiating reservation, which holds the transfer (the SDK's
    /// `task_transfer`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transferred_from: Option<Sid>,
}

/// `status` of a conference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConferenceStatus {
    #[serde(rename = "init")]
    Init,
    #[serde(rename = "in-progress")]
    InProgress,
    #[serde(rename = "completed")]
    Completed,
}

impl ConferenceStatus {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            ConferenceStatus::Init => "init",
            ConferenceStatus::InProgress => "in-progress",
            ConferenceStatus::Completed => "completed",
        }
    }
}

/// A simulated API 2010 conference (reference §12.1).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Conference {
    pub account_sid: Sid,
    pub sid: Sid,
    pub friendly_name: String,
    pub status: ConferenceStatus,
    pub region: String,
    pub api_version: String,
    pub date_created: Timestamp,
    pub date_updated: Timestamp,
    /// `conference-ended-via-api`, `participant-with-end-conference-on-exit-left`, ...
    pub reason_conference_ended: Option<String>,
    pub call_sid_ending_conference: Option<Sid>,
    /// Engine: the task it was created for, if any.
    pub workspace_sid: Option<Sid>,
    pub task_sid: Option<Sid>,
    pub reservation_sid: Option<Sid>,
    /// Engine: where the worker goes when the conference ends (single-tasking).
    pub post_work_activity_sid: Option<Sid>,
}

impl Conference {
    /// A conference started at `now` in the simulated region, tied to no task.
    pub fn new(
        account_sid: Sid,
        sid: Sid,
        friendly_name: String,
        status: ConferenceStatus,
        now: Timestamp,
    ) -> Self {
        Conference {
            account_sid,
            sid,
            friendly_name,
            status,
            region: "us1".into(),
            api_version: "2010-04-01".into(),
            date_created: now,
            date_updated: now,
            reason_conference_ended: None,
            call_sid_ending_conference: None,
            workspace_sid: None,
            task_sid: None,
            reservation_sid: None,
            post_work_activity_sid: None,
        }
    }
}

/// `status` of a participant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParticipantStatus {
    Queued,
    Connecting,
    Ringing,
    Connected,
    Complete,
    Failed,
}

impl ParticipantStatus {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            ParticipantStatus::Queued => "queued",
            ParticipantStatus::Connecting => "connecting",
            ParticipantStatus::Ringing => "ringing",
            ParticipantStatus::Connected => "connected",
            ParticipantStatus::Complete => "complete",
            ParticipantStatus::Failed => "failed",
        }
    }
}

/// A conference participant (reference §12.2).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Participant {
    pub account_sid: Sid,
    pub call_sid: Sid,
    pub conference_sid: Sid,
    pub label: Option<String>,
    pub call_sid_to_coach: Option<Sid>,
    pub coaching: bool,
    pub date_created: Timestamp,
    pub date_updated: Timestamp,
    pub end_conference_on_exit: bool,
    pub muted: bool,
    pub hold: bool,
    pub start_conference_on_enter: bool,
    pub status: ParticipantStatus,
    /// Engine: the number dialled.
    pub to: String,
    /// Engine: when a ringing leg answers.
    pub answer_at: Option<Timestamp>,
}

/// An API key (API 2010 `/Keys`): a SID (`SK…`) and a secret that sign AccessTokens, as Twilio's helper
/// libraries make them for the worker SDKs. Account-wide, like conferences.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiKey {
    pub sid: Sid,
    /// `null` until one is given: `FriendlyName` is optional on create.
    pub friendly_name: Option<String>,
    pub secret: Secret,
    pub date_created: Timestamp,
    pub date_updated: Timestamp,
}

/// An API key's secret. Its own type so that it never appears in a `Debug` print (a logged command or
/// resource): read it with [`Secret::expose`]. Stored as the plain string, since verifying a token
/// signed with it needs the secret itself.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(secret: String) -> Secret {
        Secret(secret)
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// `transfer_mode` of a task transfer: warm, the transferring worker stays on the call until the new one
/// accepts; cold, it leaves at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TransferMode {
    #[serde(rename = "WARM")]
    Warm,
    #[serde(rename = "COLD")]
    Cold,
}

impl TransferMode {
    pub fn as_str(self) -> &'static str {
        match self {
            TransferMode::Warm => "WARM",
            TransferMode::Cold => "COLD",
        }
    }
}

/// `transfer_status` of a task transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransferStatus {
    Initiated,
    Failed,
    Complete,
    Canceled,
}

impl TransferStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TransferStatus::Initiated => "initiated",
            TransferStatus::Failed => "failed",
            TransferStatus::Complete => "complete",
            TransferStatus::Canceled => "canceled",
        }
    }
}

/// A worker's transfer of its task to another worker or a task queue (the worker SDK's `Task.transfer`;
/// Twilio has it on the event bridge only, not in the public REST API). Kept on the initiating reservation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transfer {
    pub sid: Sid,
    pub task_sid: Sid,
    pub initiating_reservation_sid: Sid,
    pub initiating_worker_sid: Sid,
    /// The task's queue and workflow when the transfer was made (a warm transfer that fails goes back to
    /// them).
    pub initiating_queue_sid: Option<Sid>,
    pub initiating_workflow_sid: Option<Sid>,
    /// A worker (`WK…`, type WORKER) or a task queue (`WQ…`, type QUEUE).
    pub transfer_to: Sid,
    pub transfer_mode: TransferMode,
    pub transfer_status: TransferStatus,
    pub transfer_failed_reason: Option<String>,
    /// Engine: the task's routing target before the transfer, restored when a warm transfer fails.
    pub previous_routing_target: Option<Sid>,
    pub date_created: Timestamp,
    pub date_updated: Timestamp,
}

impl Transfer {
    /// `transfer_type`: `WORKER` or `QUEUE`.
    pub fn transfer_type(&self) -> &'static str {
        if self.transfer_to.prefix() == Prefix::Worker {
            "WORKER"
        } else {
            "QUEUE"
        }
    }
}
