//! The port between the HTTP facade and the engine: the Twilio operations the facade needs ([`Op`]), the
//! resource views it renders ([`Out`]) and the failures it maps to Twilio errors ([`Failure`]).
//!
//! Mutations travel as the engine's own [`Command`]s ([`Op::Apply`]); reads are named by the [`Op`] read
//! variants, because the facade needs whole filtered lists and lookups by name that the engine's query
//! methods answer; results come back as the engine's own model types ([`Out`]). An adapter over
//! `engine::Handle` (apply commands, run reads against the core, map the reply to an [`Out`]) is all it takes
//! to plug the real engine in; tests plug in a double. The facade owns the wire format, the engine owns every
//! rule.
//!
//! What an adapter must do (the contract the facade relies on):
//! - Answer each [`Op`] with the matching [`Out`] variant (`Create*`/`Fetch*`/`Update*` -> the resource,
//!   `List*` -> the full filtered list in a stable order, `Delete*` -> [`Out::Deleted`]). The facade pages
//!   lists itself, keyed by SID, so the order must not change between pages.
//! - Apply every filter of the list ops (expressions, `Ordering`, ...) and every rule (transitions,
//!   immutability, uniqueness); the facade only checks the syntax of parameters.
//! - Turn `engine::error::Error` into a [`Failure`] (`From` is implemented here).
//! - Compare `if_match` with the resource's version and answer [`Failure::version_mismatch`] (412).
//! - Publish every event ([`Engine::subscribe`], as `engine::Handle::subscribe` does); a `reservation.created`
//!   event must carry `WorkflowSid` and `TaskSid` (plus the other §6 parameters) in its fields for
//!   [`super::assignment`].

use std::sync::Arc;

use engine::command::Command;
use engine::event::Event;
use engine::model::{
    Activity, Conference, Participant, Reservation, Task, TaskChannel, TaskQueue, Worker, WorkerChannel,
    Workflow, Workspace,
};
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

impl From<engine::error::Error> for Failure {
    fn from(e: engine::error::Error) -> Failure {
        Failure { status: e.status(), code: e.code(), message: e.to_string() }
    }
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
    fn subscribe(&self) -> broadcast::Receiver<Arc<Event>>;
    /// The engine's current time (for `age` fields).
    fn now(&self) -> Timestamp;
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

/// Which statistics resource (`kind` = `Statistics`, `RealTimeStatistics` or `CumulativeStatistics`).
#[derive(Debug, Clone, PartialEq)]
pub struct StatisticsQuery {
    pub kind: String,
    /// Query parameters as sent (`Minutes`, `StartDate`, `EndDate`, `TaskChannel`, `SplitByWaitTime`, ...).
    pub params: Vec<(String, String)>,
}

/// Every operation of the facade: the engine's commands, and the reads. `key` fields accept a SID or a unique
/// name where Twilio does (TaskChannels, WorkerChannels, Conferences, Participants).
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// A mutation. The answer is the created or updated resource, or [`Out::Deleted`].
    Apply(Command),
    FetchWorkspace(Sid),
    ListWorkspaces {
        friendly_name: Option<String>,
    },
    FetchActivity {
        ws: Sid,
        sid: Sid,
    },
    ListActivities {
        ws: Sid,
        friendly_name: Option<String>,
        available: Option<bool>,
    },
    FetchTaskChannel {
        ws: Sid,
        key: String,
    },
    ListTaskChannels {
        ws: Sid,
    },
    FetchWorker {
        ws: Sid,
        sid: Sid,
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
    ListWorkerChannels {
        ws: Sid,
        worker: Sid,
    },
    FetchTaskQueue {
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
    FetchWorkflow {
        ws: Sid,
        sid: Sid,
    },
    ListWorkflows {
        ws: Sid,
        friendly_name: Option<String>,
    },
    FetchTask {
        ws: Sid,
        sid: Sid,
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
    /// Any statistics resource; `scope` is empty (the workspace), `TaskQueues/{WQ}`, `Workflows/{WW}`,
    /// `Workers`, `Workers/{WK}` or `TaskQueues` (the list), as a path under the workspace.
    Statistics {
        ws: Sid,
        scope: String,
        query: StatisticsQuery,
    },
    FetchConference {
        key: String,
    },
    ListConferences {
        filter: ConferenceFilter,
    },
    /// `call` is a CA SID or the participant's label.
    FetchParticipant {
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

/// What an operation returns: the engine's own resources.
// Moved once per request from the engine to the handler: boxing the big variants would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
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
