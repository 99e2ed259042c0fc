//! TaskRouter v1 operations on the configured workspace, with their parameter types.
//!
//! Parameter structs mirror the spec's PascalCase parameters in snake_case; `None` and empty lists are not
//! sent, so the server's defaults apply. `attributes` and `configuration` take JSON values and are sent as
//! JSON strings, as Twilio expects.

use serde_json::Value;

use super::{segment, Client, Form, Paged};
use crate::error::Error;
use crate::models::{
    Activity, Event, QueueOrder, Reservation, ReservationStatus, Task, TaskAssignmentStatus, TaskQueue,
    Worker, Workflow, Workspace,
};

/// Parameters of a workspace update; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
#[allow(missing_docs)]
pub struct UpdateWorkspace {
    pub friendly_name: Option<String>,
    pub default_activity_sid: Option<String>,
    pub timeout_activity_sid: Option<String>,
    /// Where TaskRouter POSTs events; `Some("")` clears it.
    pub event_callback_url: Option<String>,
    /// Comma-separated event types to send.
    pub events_filter: Option<String>,
    pub multi_task_enabled: Option<bool>,
    pub prioritize_queue_order: Option<QueueOrder>,
}

/// Parameters of a workspace creation.
#[derive(Debug, Clone, Default)]
#[allow(missing_docs)]
pub struct CreateWorkspace {
    pub friendly_name: String,
    pub event_callback_url: Option<String>,
    pub events_filter: Option<String>,
    pub multi_task_enabled: Option<bool>,
    /// `NONE` (default) or `FIFO`.
    pub template: Option<String>,
    pub prioritize_queue_order: Option<QueueOrder>,
}

/// Filters of the activity list.
#[derive(Debug, Clone, Default)]
#[allow(missing_docs)]
pub struct ActivityFilter {
    pub friendly_name: Option<String>,
    pub available: Option<bool>,
    pub page_size: Option<u32>,
}

/// Parameters of an activity creation.
#[derive(Debug, Clone, Default)]
#[allow(missing_docs)]
pub struct CreateActivity {
    pub friendly_name: String,
    /// Whether workers in this activity can take tasks; immutable after creation.
    pub available: Option<bool>,
}

/// Filters of the worker list.
#[derive(Debug, Clone, Default)]
#[allow(missing_docs)]
pub struct WorkerFilter {
    pub activity_name: Option<String>,
    pub activity_sid: Option<String>,
    pub available: Option<bool>,
    pub friendly_name: Option<String>,
    /// A TaskRouter expression over worker attributes.
    pub target_workers_expression: Option<String>,
    pub task_queue_name: Option<String>,
    pub task_queue_sid: Option<String>,
    pub ordering: Option<String>,
    pub page_size: Option<u32>,
}

/// Parameters of a worker creation.
#[derive(Debug, Clone, Default)]
#[allow(missing_docs)]
pub struct CreateWorker {
    pub friendly_name: String,
    pub activity_sid: Option<String>,
    pub attributes: Option<Value>,
}

/// Parameters of a worker update; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
#[allow(missing_docs)]
pub struct UpdateWorker {
    pub activity_sid: Option<String>,
    pub attributes: Option<Value>,
    pub friendly_name: Option<String>,
    /// Reject the worker's pending reservations; only valid with an unavailable activity.
    pub reject_pending_reservations: Option<bool>,
    /// Apply only if the worker's version still equals this `ETag` (else HTTP 412).
    pub if_match: Option<String>,
}

/// Parameters of a task creation.
#[derive(Debug, Clone, Default)]
#[allow(missing_docs)]
pub struct CreateTask {
    pub attributes: Option<Value>,
    pub workflow_sid: Option<String>,
    pub task_queue_sid: Option<String>,
    pub priority: Option<i64>,
    /// Seconds the task may live (default 86,400).
    pub timeout: Option<u64>,
    /// Task channel SID or unique name (default `default`).
    pub task_channel: Option<String>,
    /// ISO-8601.
    pub virtual_start_time: Option<String>,
    pub routing_target: Option<String>,
    pub ignore_capacity: Option<bool>,
}

/// Filters of the task list.
#[derive(Debug, Clone, Default)]
#[allow(missing_docs)]
pub struct TaskFilter {
    /// Any of these statuses; empty for all.
    pub assignment_status: Vec<TaskAssignmentStatus>,
    pub priority: Option<i64>,
    pub workflow_sid: Option<String>,
    pub workflow_name: Option<String>,
    pub task_queue_sid: Option<String>,
    pub task_queue_name: Option<String>,
    /// A TaskRouter expression over task attributes.
    pub evaluate_task_attributes: Option<String>,
    pub routing_target: Option<String>,
    /// E.g. `Priority:desc,DateCreated:asc`.
    pub ordering: Option<String>,
    pub has_addons: Option<bool>,
    pub page_size: Option<u32>,
}

/// Parameters of a task update; `None` leaves a field as it is. Twilio wants a status change and an
/// attribute change in separate requests.
#[derive(Debug, Clone, Default)]
#[allow(missing_docs)]
pub struct UpdateTask {
    pub attributes: Option<Value>,
    pub assignment_status: Option<TaskAssignmentStatus>,
    /// Required when canceling or completing.
    pub reason: Option<String>,
    pub priority: Option<i64>,
    pub task_channel: Option<String>,
    pub virtual_start_time: Option<String>,
    /// Apply only if the task's version still equals this `ETag` (else HTTP 412).
    pub if_match: Option<String>,
}

/// Filters of a reservation list (task or worker view; `worker_sid` applies to the task view only).
#[derive(Debug, Clone, Default)]
#[allow(missing_docs)]
pub struct ReservationFilter {
    pub reservation_status: Option<ReservationStatus>,
    pub worker_sid: Option<String>,
    pub page_size: Option<u32>,
}

/// Parameters of a reservation update: a status change, an instruction, or both.
#[derive(Debug, Clone, Default)]
pub struct UpdateReservation {
    /// `accepted`, `rejected`, `wrapping`, `completed`, ...
    pub reservation_status: Option<ReservationStatus>,
    /// The activity to move the worker to (with `rejected`).
    pub worker_activity_sid: Option<String>,
    /// A call-handling instruction.
    pub instruction: Option<Instruction>,
    /// Apply only if the reservation's version still equals this `ETag` (else HTTP 412).
    pub if_match: Option<String>,
    /// Further parameters sent verbatim (e.g. `ConferenceRecord`, `SipAuthUsername`), for options this
    /// struct does not model.
    pub extra: Vec<(String, String)>,
}

/// The instructions a reservation update can carry (reference §7).
#[derive(Debug, Clone)]
// Built once per request, so the size of the conference options does not matter; boxing would only make
// every caller write `Box::new`.
#[allow(clippy::large_enum_variant)]
pub enum Instruction {
    /// Dial the worker and bridge worker and caller in a conference named after the task.
    Conference(ConferenceInstruction),
    /// Connect the queued call to the worker.
    Dequeue(DequeueInstruction),
    /// Place a new call to the worker.
    Call(CallInstruction),
    /// Redirect a call to new TwiML.
    Redirect(RedirectInstruction),
}

/// Options of the conference instruction; they apply to the worker's leg.
#[derive(Debug, Clone, Default)]
#[allow(missing_docs)]
pub struct ConferenceInstruction {
    /// Whom to dial; the worker's `contact_uri` attribute when `None`.
    pub to: Option<String>,
    /// Caller ID.
    pub from: Option<String>,
    /// Activity for the worker when the conference ends (single-tasking workspaces only).
    pub post_work_activity_sid: Option<String>,
    /// Ring timeout in seconds.
    pub timeout: Option<u32>,
    pub status_callback: Option<String>,
    pub status_callback_method: Option<String>,
    pub status_callback_event: Vec<String>,
    pub record: Option<bool>,
    pub muted: Option<bool>,
    /// `true`, `false`, `onEnter` or `onExit`.
    pub beep: Option<String>,
    pub start_conference_on_enter: Option<bool>,
    pub end_conference_on_exit: Option<bool>,
    pub end_conference_on_customer_exit: Option<bool>,
    pub beep_on_customer_entrance: Option<bool>,
    pub wait_url: Option<String>,
    pub wait_method: Option<String>,
    pub early_media: Option<bool>,
    pub max_participants: Option<u32>,
    pub conference_status_callback: Option<String>,
    pub conference_status_callback_method: Option<String>,
    pub conference_status_callback_event: Vec<String>,
    pub conference_record: Option<String>,
    pub region: Option<String>,
}

/// Options of the dequeue instruction.
#[derive(Debug, Clone, Default)]
#[allow(missing_docs)]
pub struct DequeueInstruction {
    /// Caller ID shown to the worker (required by Twilio).
    pub from: String,
    pub to: Option<String>,
    pub post_work_activity_sid: Option<String>,
    /// `record-from-answer` or `do-not-record`.
    pub record: Option<String>,
    pub timeout: Option<u32>,
    pub status_callback_url: Option<String>,
    pub status_callback_event: Vec<String>,
}

/// Options of the call instruction.
#[derive(Debug, Clone, Default)]
#[allow(missing_docs)]
pub struct CallInstruction {
    pub from: String,
    /// TwiML URL for the new call.
    pub url: String,
    pub to: Option<String>,
    pub accept: Option<bool>,
    pub record: Option<String>,
    pub timeout: Option<u32>,
    pub status_callback_url: Option<String>,
}

/// Options of the redirect instruction.
#[derive(Debug, Clone, Default)]
#[allow(missing_docs)]
pub struct RedirectInstruction {
    pub call_sid: String,
    pub url: String,
    pub accept: Option<bool>,
}

/// Filters of the event list.
#[derive(Debug, Clone, Default)]
#[allow(missing_docs)]
pub struct EventFilter {
    pub event_type: Option<String>,
    /// How far back, in minutes (server default 15).
    pub minutes: Option<u32>,
    /// ISO-8601.
    pub start_date: Option<String>,
    /// ISO-8601.
    pub end_date: Option<String>,
    pub reservation_sid: Option<String>,
    pub task_sid: Option<String>,
    pub task_queue_sid: Option<String>,
    pub worker_sid: Option<String>,
    pub workflow_sid: Option<String>,
    pub task_channel: Option<String>,
    pub sid: Option<String>,
    pub page_size: Option<u32>,
}

/// Filters of the task queue list.
#[derive(Debug, Clone, Default)]
#[allow(missing_docs)]
pub struct TaskQueueFilter {
    pub friendly_name: Option<String>,
    /// A worker-attributes JSON document: only queues that would take such a worker.
    pub evaluate_worker_attributes: Option<String>,
    pub worker_sid: Option<String>,
    pub ordering: Option<String>,
    pub page_size: Option<u32>,
}

/// Parameters of a task queue creation.
#[derive(Debug, Clone, Default)]
#[allow(missing_docs)]
pub struct CreateTaskQueue {
    pub friendly_name: String,
    /// Expression over worker attributes (server default `1==1`).
    pub target_workers: Option<String>,
    pub max_reserved_workers: Option<u32>,
    pub task_order: Option<QueueOrder>,
    pub reservation_activity_sid: Option<String>,
    pub assignment_activity_sid: Option<String>,
}

/// Filters of the workflow list.
#[derive(Debug, Clone, Default)]
#[allow(missing_docs)]
pub struct WorkflowFilter {
    pub friendly_name: Option<String>,
    pub page_size: Option<u32>,
}

/// Parameters of a workflow creation.
#[derive(Debug, Clone, Default)]
#[allow(missing_docs)]
pub struct CreateWorkflow {
    pub friendly_name: String,
    /// The routing document (`{"task_routing": {...}}`).
    pub configuration: Value,
    pub assignment_callback_url: Option<String>,
    pub fallback_assignment_callback_url: Option<String>,
    /// Seconds a reservation waits for the worker (server default 120).
    pub task_reservation_timeout: Option<u32>,
}

impl UpdateReservation {
    fn form(&self) -> Form {
        let mut form = Form::new();
        form.opt("ReservationStatus", self.reservation_status.as_ref())
            .opt("WorkerActivitySid", self.worker_activity_sid.as_ref());
        match &self.instruction {
            None => {}
            Some(Instruction::Conference(c)) => {
                form.add("Instruction", "conference")
                    .opt("To", c.to.as_ref())
                    .opt("From", c.from.as_ref())
                    .opt("PostWorkActivitySid", c.post_work_activity_sid.as_ref())
                    .opt("Timeout", c.timeout)
                    .opt("StatusCallback", c.status_callback.as_ref())
                    .opt("StatusCallbackMethod", c.status_callback_method.as_ref())
                    .each("StatusCallbackEvent", &c.status_callback_event)
                    .opt("Record", c.record)
                    .opt("Muted", c.muted)
                    .opt("Beep", c.beep.as_ref())
                    .opt("StartConferenceOnEnter", c.start_conference_on_enter)
                    .opt("EndConferenceOnExit", c.end_conference_on_exit)
                    .opt("EndConferenceOnCustomerExit", c.end_conference_on_customer_exit)
                    .opt("BeepOnCustomerEntrance", c.beep_on_customer_entrance)
                    .opt("WaitUrl", c.wait_url.as_ref())
                    .opt("WaitMethod", c.wait_method.as_ref())
                    .opt("EarlyMedia", c.early_media)
                    .opt("MaxParticipants", c.max_participants)
                    .opt("ConferenceStatusCallback", c.conference_status_callback.as_ref())
                    .opt("ConferenceStatusCallbackMethod", c.conference_status_callback_method.as_ref())
                    .each("ConferenceStatusCallbackEvent", &c.conference_status_callback_event)
                    .opt("ConferenceRecord", c.conference_record.as_ref())
                    .opt("Region", c.region.as_ref());
            }
            Some(Instruction::Dequeue(d)) => {
                form.add("Instruction", "dequeue")
                    .add("DequeueFrom", &d.from)
                    .opt("DequeueTo", d.to.as_ref())
                    .opt("DequeuePostWorkActivitySid", d.post_work_activity_sid.as_ref())
                    .opt("DequeueRecord", d.record.as_ref())
                    .opt("DequeueTimeout", d.timeout)
                    .opt("DequeueStatusCallbackUrl", d.status_callback_url.as_ref())
                    .each("DequeueStatusCallbackEvent", &d.status_callback_event);
            }
            Some(Instruction::Call(c)) => {
                form.add("Instruction", "call")
                    .add("CallFrom", &c.from)
                    .add("CallUrl", &c.url)
                    .opt("CallTo", c.to.as_ref())
                    .opt("CallAccept", c.accept)
                    .opt("CallRecord", c.record.as_ref())
                    .opt("CallTimeout", c.timeout)
                    .opt("CallStatusCallbackUrl", c.status_callback_url.as_ref());
            }
            Some(Instruction::Redirect(r)) => {
                form.add("Instruction", "redirect")
                    .add("RedirectCallSid", &r.call_sid)
                    .add("RedirectUrl", &r.url)
                    .opt("RedirectAccept", r.accept);
            }
        }
        form.extra(&self.extra);
        form.if_match = self.if_match.clone();
        form
    }
}

fn json_string(value: Option<&Value>) -> Option<String> {
    value.map(Value::to_string)
}

impl Client {
    // ---- Workspace ----

    /// `GET /v1/Workspaces/{WS}`.
    pub async fn fetch_workspace(&self) -> Result<Workspace, Error> {
        self.get(self.workspace_url("")?).await
    }

    /// `POST /v1/Workspaces/{WS}`.
    pub async fn update_workspace(&self, params: &UpdateWorkspace) -> Result<Workspace, Error> {
        let mut form = Form::new();
        form.opt("FriendlyName", params.friendly_name.as_ref())
            .opt("DefaultActivitySid", params.default_activity_sid.as_ref())
            .opt("TimeoutActivitySid", params.timeout_activity_sid.as_ref())
            .opt("EventCallbackUrl", params.event_callback_url.as_ref())
            .opt("EventsFilter", params.events_filter.as_ref())
            .opt("MultiTaskEnabled", params.multi_task_enabled)
            .opt("PrioritizeQueueOrder", params.prioritize_queue_order.as_ref());
        self.post(self.workspace_url("")?, form).await
    }

    /// `GET /v1/Workspaces` (the account's workspaces, whatever workspace is configured).
    pub fn list_workspaces(&self, friendly_name: Option<&str>) -> Paged<Workspace> {
        let mut query = Form::new();
        query.opt("FriendlyName", friendly_name);
        self.paged_v1(Ok(self.v1_url("Workspaces")), query)
    }

    /// `POST /v1/Workspaces`.
    pub async fn create_workspace(&self, params: &CreateWorkspace) -> Result<Workspace, Error> {
        let mut form = Form::new();
        form.add("FriendlyName", &params.friendly_name)
            .opt("EventCallbackUrl", params.event_callback_url.as_ref())
            .opt("EventsFilter", params.events_filter.as_ref())
            .opt("MultiTaskEnabled", params.multi_task_enabled)
            .opt("Template", params.template.as_ref())
            .opt("PrioritizeQueueOrder", params.prioritize_queue_order.as_ref());
        self.post(self.v1_url("Workspaces"), form).await
    }

    // ---- Activities ----

    /// `GET …/Activities`.
    pub fn list_activities(&self, filter: &ActivityFilter) -> Paged<Activity> {
        let mut query = Form::new();
        query
            .opt("FriendlyName", filter.friendly_name.as_ref())
            .opt("Available", filter.available)
            .opt("PageSize", filter.page_size);
        self.paged_v1(self.workspace_url("/Activities"), query)
    }

    /// `POST …/Activities`.
    pub async fn create_activity(&self, params: &CreateActivity) -> Result<Activity, Error> {
        let mut form = Form::new();
        form.add("FriendlyName", &params.friendly_name).opt("Available", params.available);
        self.post(self.workspace_url("/Activities")?, form).await
    }

    // ---- Workers ----

    /// `GET …/Workers`.
    pub fn list_workers(&self, filter: &WorkerFilter) -> Paged<Worker> {
        let mut query = Form::new();
        query
            .opt("ActivityName", filter.activity_name.as_ref())
            .opt("ActivitySid", filter.activity_sid.as_ref())
            .opt("Available", filter.available)
            .opt("FriendlyName", filter.friendly_name.as_ref())
            .opt("TargetWorkersExpression", filter.target_workers_expression.as_ref())
            .opt("TaskQueueName", filter.task_queue_name.as_ref())
            .opt("TaskQueueSid", filter.task_queue_sid.as_ref())
            .opt("Ordering", filter.ordering.as_ref())
            .opt("PageSize", filter.page_size);
        self.paged_v1(self.workspace_url("/Workers"), query)
    }

    /// `GET …/Workers/{WK}`; the result's `etag` is set from the response.
    pub async fn fetch_worker(&self, worker_sid: &str) -> Result<Worker, Error> {
        self.get_versioned(self.workspace_url(&format!("/Workers/{}", segment(worker_sid)))?).await
    }

    /// `POST …/Workers`.
    pub async fn create_worker(&self, params: &CreateWorker) -> Result<Worker, Error> {
        let mut form = Form::new();
        form.add("FriendlyName", &params.friendly_name)
            .opt("ActivitySid", params.activity_sid.as_ref())
            .opt("Attributes", json_string(params.attributes.as_ref()));
        self.post_versioned(self.workspace_url("/Workers")?, form).await
    }

    /// `POST …/Workers/{WK}` (activity, attributes, name), with `If-Match` when `params.if_match` is set.
    pub async fn update_worker(&self, worker_sid: &str, params: &UpdateWorker) -> Result<Worker, Error> {
        let mut form = Form::new();
        form.opt("ActivitySid", params.activity_sid.as_ref())
            .opt("Attributes", json_string(params.attributes.as_ref()))
            .opt("FriendlyName", params.friendly_name.as_ref())
            .opt("RejectPendingReservations", params.reject_pending_reservations);
        form.if_match = params.if_match.clone();
        self.post_versioned(self.workspace_url(&format!("/Workers/{}", segment(worker_sid)))?, form).await
    }

    // ---- Tasks ----

    /// `POST …/Tasks`.
    pub async fn create_task(&self, params: &CreateTask) -> Result<Task, Error> {
        let mut form = Form::new();
        form.opt("Attributes", json_string(params.attributes.as_ref()))
            .opt("WorkflowSid", params.workflow_sid.as_ref())
            .opt("TaskQueueSid", params.task_queue_sid.as_ref())
            .opt("Priority", params.priority)
            .opt("Timeout", params.timeout)
            .opt("TaskChannel", params.task_channel.as_ref())
            .opt("VirtualStartTime", params.virtual_start_time.as_ref())
            .opt("RoutingTarget", params.routing_target.as_ref())
            .opt("IgnoreCapacity", params.ignore_capacity);
        self.post_versioned(self.workspace_url("/Tasks")?, form).await
    }

    /// `GET …/Tasks`; several `assignment_status` values are sent as repeated keys.
    pub fn list_tasks(&self, filter: &TaskFilter) -> Paged<Task> {
        let mut query = Form::new();
        query
            .each("AssignmentStatus", &filter.assignment_status)
            .opt("Priority", filter.priority)
            .opt("WorkflowSid", filter.workflow_sid.as_ref())
            .opt("WorkflowName", filter.workflow_name.as_ref())
            .opt("TaskQueueSid", filter.task_queue_sid.as_ref())
            .opt("TaskQueueName", filter.task_queue_name.as_ref())
            .opt("EvaluateTaskAttributes", filter.evaluate_task_attributes.as_ref())
            .opt("RoutingTarget", filter.routing_target.as_ref())
            .opt("Ordering", filter.ordering.as_ref())
            .opt("HasAddons", filter.has_addons)
            .opt("PageSize", filter.page_size);
        self.paged_v1(self.workspace_url("/Tasks"), query)
    }

    /// `GET …/Tasks/{WT}`; the result's `etag` is set from the response.
    pub async fn fetch_task(&self, task_sid: &str) -> Result<Task, Error> {
        self.get_versioned(self.workspace_url(&format!("/Tasks/{}", segment(task_sid)))?).await
    }

    /// `POST …/Tasks/{WT}`, with `If-Match` when `params.if_match` is set.
    pub async fn update_task(&self, task_sid: &str, params: &UpdateTask) -> Result<Task, Error> {
        let mut form = Form::new();
        form.opt("Attributes", json_string(params.attributes.as_ref()))
            .opt("AssignmentStatus", params.assignment_status.as_ref())
            .opt("Reason", params.reason.as_ref())
            .opt("Priority", params.priority)
            .opt("TaskChannel", params.task_channel.as_ref())
            .opt("VirtualStartTime", params.virtual_start_time.as_ref());
        form.if_match = params.if_match.clone();
        self.post_versioned(self.workspace_url(&format!("/Tasks/{}", segment(task_sid)))?, form).await
    }

    /// `DELETE …/Tasks/{WT}`, with `If-Match` when given.
    pub async fn delete_task(&self, task_sid: &str, if_match: Option<&str>) -> Result<(), Error> {
        self.delete(self.workspace_url(&format!("/Tasks/{}", segment(task_sid)))?, if_match).await
    }

    // ---- Reservations ----

    /// `GET …/Tasks/{WT}/Reservations`.
    pub fn list_task_reservations(&self, task_sid: &str, filter: &ReservationFilter) -> Paged<Reservation> {
        let mut query = Form::new();
        query
            .opt("ReservationStatus", filter.reservation_status.as_ref())
            .opt("WorkerSid", filter.worker_sid.as_ref())
            .opt("PageSize", filter.page_size);
        self.paged_v1(self.workspace_url(&format!("/Tasks/{}/Reservations", segment(task_sid))), query)
    }

    /// `GET …/Tasks/{WT}/Reservations/{WR}`; the result's `etag` is set from the response.
    pub async fn fetch_task_reservation(
        &self,
        task_sid: &str,
        reservation_sid: &str,
    ) -> Result<Reservation, Error> {
        self.get_versioned(self.reservation_url("Tasks", task_sid, reservation_sid)?).await
    }

    /// `POST …/Tasks/{WT}/Reservations/{WR}`: accept, reject, complete, or an instruction.
    pub async fn update_task_reservation(
        &self,
        task_sid: &str,
        reservation_sid: &str,
        params: &UpdateReservation,
    ) -> Result<Reservation, Error> {
        self.post_versioned(self.reservation_url("Tasks", task_sid, reservation_sid)?, params.form()).await
    }

    /// `GET …/Workers/{WK}/Reservations` (`filter.worker_sid` is ignored: the path names the worker).
    pub fn list_worker_reservations(
        &self,
        worker_sid: &str,
        filter: &ReservationFilter,
    ) -> Paged<Reservation> {
        let mut query = Form::new();
        query.opt("ReservationStatus", filter.reservation_status.as_ref()).opt("PageSize", filter.page_size);
        self.paged_v1(self.workspace_url(&format!("/Workers/{}/Reservations", segment(worker_sid))), query)
    }

    /// `GET …/Workers/{WK}/Reservations/{WR}`; the result's `etag` is set from the response.
    pub async fn fetch_worker_reservation(
        &self,
        worker_sid: &str,
        reservation_sid: &str,
    ) -> Result<Reservation, Error> {
        self.get_versioned(self.reservation_url("Workers", worker_sid, reservation_sid)?).await
    }

    /// `POST …/Workers/{WK}/Reservations/{WR}`: accept, reject, complete, or an instruction.
    pub async fn update_worker_reservation(
        &self,
        worker_sid: &str,
        reservation_sid: &str,
        params: &UpdateReservation,
    ) -> Result<Reservation, Error> {
        self.post_versioned(self.reservation_url("Workers", worker_sid, reservation_sid)?, params.form())
            .await
    }

    /// `…/{view}/{sid}/Reservations/{WR}`: a reservation in the task's (`Tasks`) or the worker's (`Workers`) view.
    fn reservation_url(&self, view: &str, sid: &str, reservation_sid: &str) -> Result<String, Error> {
        self.workspace_url(&format!("/{view}/{}/Reservations/{}", segment(sid), segment(reservation_sid)))
    }

    // ---- Events ----

    /// `GET …/Events`.
    pub fn list_events(&self, filter: &EventFilter) -> Paged<Event> {
        let mut query = Form::new();
        query
            .opt("EventType", filter.event_type.as_ref())
            .opt("Minutes", filter.minutes)
            .opt("StartDate", filter.start_date.as_ref())
            .opt("EndDate", filter.end_date.as_ref())
            .opt("ReservationSid", filter.reservation_sid.as_ref())
            .opt("TaskSid", filter.task_sid.as_ref())
            .opt("TaskQueueSid", filter.task_queue_sid.as_ref())
            .opt("WorkerSid", filter.worker_sid.as_ref())
            .opt("WorkflowSid", filter.workflow_sid.as_ref())
            .opt("TaskChannel", filter.task_channel.as_ref())
            .opt("Sid", filter.sid.as_ref())
            .opt("PageSize", filter.page_size);
        self.paged_v1(self.workspace_url("/Events"), query)
    }

    // ---- Task queues and workflows ----

    /// `GET …/TaskQueues`.
    pub fn list_task_queues(&self, filter: &TaskQueueFilter) -> Paged<TaskQueue> {
        let mut query = Form::new();
        query
            .opt("FriendlyName", filter.friendly_name.as_ref())
            .opt("EvaluateWorkerAttributes", filter.evaluate_worker_attributes.as_ref())
            .opt("WorkerSid", filter.worker_sid.as_ref())
            .opt("Ordering", filter.ordering.as_ref())
            .opt("PageSize", filter.page_size);
        self.paged_v1(self.workspace_url("/TaskQueues"), query)
    }

    /// `POST …/TaskQueues`.
    pub async fn create_task_queue(&self, params: &CreateTaskQueue) -> Result<TaskQueue, Error> {
        let mut form = Form::new();
        form.add("FriendlyName", &params.friendly_name)
            .opt("TargetWorkers", params.target_workers.as_ref())
            .opt("MaxReservedWorkers", params.max_reserved_workers)
            .opt("TaskOrder", params.task_order.as_ref())
            .opt("ReservationActivitySid", params.reservation_activity_sid.as_ref())
            .opt("AssignmentActivitySid", params.assignment_activity_sid.as_ref());
        self.post(self.workspace_url("/TaskQueues")?, form).await
    }

    /// `GET …/Workflows`.
    pub fn list_workflows(&self, filter: &WorkflowFilter) -> Paged<Workflow> {
        let mut query = Form::new();
        query.opt("FriendlyName", filter.friendly_name.as_ref()).opt("PageSize", filter.page_size);
        self.paged_v1(self.workspace_url("/Workflows"), query)
    }

    /// `POST …/Workflows`.
    pub async fn create_workflow(&self, params: &CreateWorkflow) -> Result<Workflow, Error> {
        let mut form = Form::new();
        form.add("FriendlyName", &params.friendly_name)
            .json("Configuration", Some(&params.configuration))
            .opt("AssignmentCallbackUrl", params.assignment_callback_url.as_ref())
            .opt("FallbackAssignmentCallbackUrl", params.fallback_assignment_callback_url.as_ref())
            .opt("TaskReservationTimeout", params.task_reservation_timeout);
        self.post(self.workspace_url("/Workflows")?, form).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(form: &Form) -> Vec<(&str, &str)> {
        form.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }

    #[test]
    fn conference_instruction_form() {
        let update = UpdateReservation {
            instruction: Some(Instruction::Conference(ConferenceInstruction {
                to: Some("client:alice".into()),
                from: Some("+15550100".into()),
                post_work_activity_sid: Some("WA1".into()),
                end_conference_on_exit: Some(true),
                conference_status_callback_event: vec!["start".into(), "end".into()],
                ..Default::default()
            })),
            if_match: Some("3".into()),
            ..Default::default()
        };
        let form = update.form();
        assert_eq!(
            pairs(&form),
            vec![
                ("Instruction", "conference"),
                ("To", "client:alice"),
                ("From", "+15550100"),
                ("PostWorkActivitySid", "WA1"),
                ("EndConferenceOnExit", "true"),
                ("ConferenceStatusCallbackEvent", "start"),
                ("ConferenceStatusCallbackEvent", "end"),
            ]
        );
        assert_eq!(form.if_match.as_deref(), Some("3"));
    }

    #[test]
    fn reject_dequeue_call_redirect_forms() {
        let reject = UpdateReservation {
            reservation_status: Some(ReservationStatus::Rejected),
            worker_activity_sid: Some("WA2".into()),
            ..Default::default()
        };
        assert_eq!(
            pairs(&reject.form()),
            vec![("ReservationStatus", "rejected"), ("WorkerActivitySid", "WA2")]
        );
        let dequeue = UpdateReservation {
            instruction: Some(Instruction::Dequeue(DequeueInstruction {
                from: "+1555".into(),
                status_callback_event: vec!["answered".into()],
                ..Default::default()
            })),
            ..Default::default()
        };
        assert_eq!(
            pairs(&dequeue.form()),
            vec![
                ("Instruction", "dequeue"),
                ("DequeueFrom", "+1555"),
                ("DequeueStatusCallbackEvent", "answered")
            ]
        );
        let call = UpdateReservation {
            instruction: Some(Instruction::Call(CallInstruction {
                from: "+1".into(),
                url: "https://x/twiml".into(),
                accept: Some(true),
                ..Default::default()
            })),
            ..Default::default()
        };
        assert_eq!(
            pairs(&call.form()),
            vec![
                ("Instruction", "call"),
                ("CallFrom", "+1"),
                ("CallUrl", "https://x/twiml"),
                ("CallAccept", "true")
            ]
        );
        let redirect = UpdateReservation {
            instruction: Some(Instruction::Redirect(RedirectInstruction {
                call_sid: "CA1".into(),
                url: "https://x/r".into(),
                accept: None,
            })),
            extra: vec![("Foo".into(), "bar".into())],
            ..Default::default()
        };
        assert_eq!(
            pairs(&redirect.form()),
            vec![
                ("Instruction", "redirect"),
                ("RedirectCallSid", "CA1"),
                ("RedirectUrl", "https://x/r"),
                ("Foo", "bar")
            ]
        );
    }
}
