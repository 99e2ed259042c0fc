//! TaskRouter v1 operations on the configured workspace, with their parameter types.
//!
//! Parameter structs mirror the spec's PascalCase parameters in snake_case, each declared with the name it is
//! sent under; `None` and empty lists are not sent, so the server's defaults apply. `attributes` and
//! `configuration` take JSON values and are sent as JSON strings, as Twilio expects.

use serde_json::Value;

use super::{segment, Client, Form, Paged};
use crate::error::Error;
use crate::models::{
    Activity, Event, QueueOrder, Reservation, ReservationStatus, Task, TaskAssignmentStatus, TaskQueue,
    Worker, Workflow, Workspace,
};

params! {
    /// Parameters of a workspace update; `None` leaves a field as it is.
    pub struct UpdateWorkspace {
        pub friendly_name: Option<String> => "FriendlyName",
        pub default_activity_sid: Option<String> => "DefaultActivitySid",
        pub timeout_activity_sid: Option<String> => "TimeoutActivitySid",
        /// Where TaskRouter POSTs events; `Some("")` clears it.
        pub event_callback_url: Option<String> => "EventCallbackUrl",
        /// Comma-separated event types to send.
        pub events_filter: Option<String> => "EventsFilter",
        pub multi_task_enabled: Option<bool> => "MultiTaskEnabled",
        pub prioritize_queue_order: Option<QueueOrder> => "PrioritizeQueueOrder",
    }
}

params! {
    /// Parameters of a workspace creation.
    pub struct CreateWorkspace {
        pub friendly_name: String => "FriendlyName",
        pub event_callback_url: Option<String> => "EventCallbackUrl",
        pub events_filter: Option<String> => "EventsFilter",
        pub multi_task_enabled: Option<bool> => "MultiTaskEnabled",
        /// `NONE` (default) or `FIFO`.
        pub template: Option<String> => "Template",
        pub prioritize_queue_order: Option<QueueOrder> => "PrioritizeQueueOrder",
    }
}

params! {
    /// Filters of the activity list.
    pub struct ActivityFilter {
        pub friendly_name: Option<String> => "FriendlyName",
        pub available: Option<bool> => "Available",
        pub page_size: Option<u32> => "PageSize",
    }
}

params! {
    /// Parameters of an activity creation.
    pub struct CreateActivity {
        pub friendly_name: String => "FriendlyName",
        /// Whether workers in this activity can take tasks; immutable after creation.
        pub available: Option<bool> => "Available",
    }
}

params! {
    /// Filters of the worker list.
    pub struct WorkerFilter {
        pub activity_name: Option<String> => "ActivityName",
        pub activity_sid: Option<String> => "ActivitySid",
        pub available: Option<bool> => "Available",
        pub friendly_name: Option<String> => "FriendlyName",
        /// A TaskRouter expression over worker attributes.
        pub target_workers_expression: Option<String> => "TargetWorkersExpression",
        pub task_queue_name: Option<String> => "TaskQueueName",
        pub task_queue_sid: Option<String> => "TaskQueueSid",
        pub ordering: Option<String> => "Ordering",
        pub page_size: Option<u32> => "PageSize",
    }
}

params! {
    /// Parameters of a worker creation.
    pub struct CreateWorker {
        pub friendly_name: String => "FriendlyName",
        pub activity_sid: Option<String> => "ActivitySid",
        pub attributes: Option<Value> => "Attributes",
    }
}

params! {
    /// Parameters of a worker update; `None` leaves a field as it is.
    pub struct UpdateWorker {
        pub activity_sid: Option<String> => "ActivitySid",
        pub attributes: Option<Value> => "Attributes",
        pub friendly_name: Option<String> => "FriendlyName",
        /// Reject the worker's pending reservations; only valid with an unavailable activity.
        pub reject_pending_reservations: Option<bool> => "RejectPendingReservations",
        /// Apply only if the worker's version still equals this `ETag` (else HTTP 412).
        pub if_match: Option<String>,
    }
}

params! {
    /// Parameters of a task creation.
    pub struct CreateTask {
        pub attributes: Option<Value> => "Attributes",
        pub workflow_sid: Option<String> => "WorkflowSid",
        pub task_queue_sid: Option<String> => "TaskQueueSid",
        pub priority: Option<i64> => "Priority",
        /// Seconds the task may live (default 86,400).
        pub timeout: Option<u64> => "Timeout",
        /// Task channel SID or unique name (default `default`).
        pub task_channel: Option<String> => "TaskChannel",
        /// ISO-8601.
        pub virtual_start_time: Option<String> => "VirtualStartTime",
        pub routing_target: Option<String> => "RoutingTarget",
        pub ignore_capacity: Option<bool> => "IgnoreCapacity",
    }
}

params! {
    /// Filters of the task list.
    pub struct TaskFilter {
        /// Any of these statuses, sent as repeated keys; empty for all.
        pub assignment_status: Vec<TaskAssignmentStatus> => "AssignmentStatus",
        pub priority: Option<i64> => "Priority",
        pub workflow_sid: Option<String> => "WorkflowSid",
        pub workflow_name: Option<String> => "WorkflowName",
        pub task_queue_sid: Option<String> => "TaskQueueSid",
        pub task_queue_name: Option<String> => "TaskQueueName",
        /// A TaskRouter expression over task attributes.
        pub evaluate_task_attributes: Option<String> => "EvaluateTaskAttributes",
        pub routing_target: Option<String> => "RoutingTarget",
        /// E.g. `Priority:desc,DateCreated:asc`.
        pub ordering: Option<String> => "Ordering",
        pub has_addons: Option<bool> => "HasAddons",
        pub page_size: Option<u32> => "PageSize",
    }
}

params! {
    /// Parameters of a task update; `None` leaves a field as it is. Twilio wants a status change and an
    /// attribute change in separate requests.
    pub struct UpdateTask {
        pub attributes: Option<Value> => "Attributes",
        pub assignment_status: Option<TaskAssignmentStatus> => "AssignmentStatus",
        /// Required when canceling or completing.
        pub reason: Option<String> => "Reason",
        pub priority: Option<i64> => "Priority",
        pub task_channel: Option<String> => "TaskChannel",
        pub virtual_start_time: Option<String> => "VirtualStartTime",
        /// Apply only if the task's version still equals this `ETag` (else HTTP 412).
        pub if_match: Option<String>,
    }
}

params! {
    /// Filters of a reservation list (task or worker view; `worker_sid` applies to the task view only).
    pub struct ReservationFilter {
        pub reservation_status: Option<ReservationStatus> => "ReservationStatus",
        pub worker_sid: Option<String> => "WorkerSid",
        pub page_size: Option<u32> => "PageSize",
    }
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

params! {
    /// Options of the conference instruction; they apply to the worker's leg.
    pub struct ConferenceInstruction {
        /// Whom to dial; the worker's `contact_uri` attribute when `None`.
        pub to: Option<String> => "To",
        /// Caller ID.
        pub from: Option<String> => "From",
        /// Activity for the worker when the conference ends (single-tasking workspaces only).
        pub post_work_activity_sid: Option<String> => "PostWorkActivitySid",
        /// Ring timeout in seconds.
        pub timeout: Option<u32> => "Timeout",
        pub status_callback: Option<String> => "StatusCallback",
        pub status_callback_method: Option<String> => "StatusCallbackMethod",
        pub status_callback_event: Vec<String> => "StatusCallbackEvent",
        pub record: Option<bool> => "Record",
        pub muted: Option<bool> => "Muted",
        /// `true`, `false`, `onEnter` or `onExit`.
        pub beep: Option<String> => "Beep",
        pub start_conference_on_enter: Option<bool> => "StartConferenceOnEnter",
        pub end_conference_on_exit: Option<bool> => "EndConferenceOnExit",
        pub end_conference_on_customer_exit: Option<bool> => "EndConferenceOnCustomerExit",
        pub beep_on_customer_entrance: Option<bool> => "BeepOnCustomerEntrance",
        pub wait_url: Option<String> => "WaitUrl",
        pub wait_method: Option<String> => "WaitMethod",
        pub early_media: Option<bool> => "EarlyMedia",
        pub max_participants: Option<u32> => "MaxParticipants",
        pub conference_status_callback: Option<String> => "ConferenceStatusCallback",
        pub conference_status_callback_method: Option<String> => "ConferenceStatusCallbackMethod",
        pub conference_status_callback_event: Vec<String> => "ConferenceStatusCallbackEvent",
        pub conference_record: Option<String> => "ConferenceRecord",
        pub region: Option<String> => "Region",
    }
}

params! {
    /// Options of the dequeue instruction.
    pub struct DequeueInstruction {
        /// Caller ID shown to the worker (required by Twilio).
        pub from: String => "DequeueFrom",
        pub to: Option<String> => "DequeueTo",
        pub post_work_activity_sid: Option<String> => "DequeuePostWorkActivitySid",
        /// `record-from-answer` or `do-not-record`.
        pub record: Option<String> => "DequeueRecord",
        pub timeout: Option<u32> => "DequeueTimeout",
        pub status_callback_url: Option<String> => "DequeueStatusCallbackUrl",
        pub status_callback_event: Vec<String> => "DequeueStatusCallbackEvent",
    }
}

params! {
    /// Options of the call instruction.
    pub struct CallInstruction {
        pub from: String => "CallFrom",
        /// TwiML URL for the new call.
        pub url: String => "CallUrl",
        pub to: Option<String> => "CallTo",
        pub accept: Option<bool> => "CallAccept",
        pub record: Option<String> => "CallRecord",
        pub timeout: Option<u32> => "CallTimeout",
        pub status_callback_url: Option<String> => "CallStatusCallbackUrl",
    }
}

params! {
    /// Options of the redirect instruction.
    pub struct RedirectInstruction {
        pub call_sid: String => "RedirectCallSid",
        pub url: String => "RedirectUrl",
        pub accept: Option<bool> => "RedirectAccept",
    }
}

params! {
    /// Filters of the event list.
    pub struct EventFilter {
        pub event_type: Option<String> => "EventType",
        /// How far back, in minutes (server default 15).
        pub minutes: Option<u32> => "Minutes",
        /// ISO-8601.
        pub start_date: Option<String> => "StartDate",
        /// ISO-8601.
        pub end_date: Option<String> => "EndDate",
        pub reservation_sid: Option<String> => "ReservationSid",
        pub task_sid: Option<String> => "TaskSid",
        pub task_queue_sid: Option<String> => "TaskQueueSid",
        pub worker_sid: Option<String> => "WorkerSid",
        pub workflow_sid: Option<String> => "WorkflowSid",
        pub task_channel: Option<String> => "TaskChannel",
        pub sid: Option<String> => "Sid",
        pub page_size: Option<u32> => "PageSize",
    }
}

params! {
    /// Filters of the task queue list.
    pub struct TaskQueueFilter {
        pub friendly_name: Option<String> => "FriendlyName",
        /// A worker-attributes JSON document: only queues that would take such a worker.
        pub evaluate_worker_attributes: Option<String> => "EvaluateWorkerAttributes",
        pub worker_sid: Option<String> => "WorkerSid",
        pub ordering: Option<String> => "Ordering",
        pub page_size: Option<u32> => "PageSize",
    }
}

params! {
    /// Parameters of a task queue creation.
    pub struct CreateTaskQueue {
        pub friendly_name: String => "FriendlyName",
        /// Expression over worker attributes (server default `1==1`).
        pub target_workers: Option<String> => "TargetWorkers",
        pub max_reserved_workers: Option<u32> => "MaxReservedWorkers",
        pub task_order: Option<QueueOrder> => "TaskOrder",
        pub reservation_activity_sid: Option<String> => "ReservationActivitySid",
        pub assignment_activity_sid: Option<String> => "AssignmentActivitySid",
    }
}

params! {
    /// Filters of the workflow list.
    pub struct WorkflowFilter {
        pub friendly_name: Option<String> => "FriendlyName",
        pub page_size: Option<u32> => "PageSize",
    }
}

params! {
    /// Parameters of a workflow creation.
    pub struct CreateWorkflow {
        pub friendly_name: String => "FriendlyName",
        /// The routing document (`{"task_routing": {...}}`).
        pub configuration: Value => "Configuration",
        pub assignment_callback_url: Option<String> => "AssignmentCallbackUrl",
        pub fallback_assignment_callback_url: Option<String> => "FallbackAssignmentCallbackUrl",
        /// Seconds a reservation waits for the worker (server default 120).
        pub task_reservation_timeout: Option<u32> => "TaskReservationTimeout",
    }
}

impl UpdateReservation {
    fn form(&self) -> Form {
        let mut form = Form::new();
        form.opt("ReservationStatus", self.reservation_status.as_ref())
            .opt("WorkerActivitySid", self.worker_activity_sid.as_ref());
        if let Some(instruction) = &self.instruction {
            form.extra(&instruction.form().pairs);
        }
        form.extra(&self.extra);
        form.if_match = self.if_match.clone();
        form
    }
}

impl Instruction {
    /// `Instruction={name}`, then the instruction's options.
    fn form(&self) -> Form {
        let (name, options) = match self {
            Self::Conference(c) => ("conference", c.form()),
            Self::Dequeue(d) => ("dequeue", d.form()),
            Self::Call(c) => ("call", c.form()),
            Self::Redirect(r) => ("redirect", r.form()),
        };
        let mut form = Form::new();
        form.add("Instruction", name).extra(&options.pairs);
        form
    }
}

impl Client {
    // ---- Workspace ----

    /// `GET /v1/Workspaces/{WS}`.
    pub async fn fetch_workspace(&self) -> Result<Workspace, Error> {
        self.get(self.workspace_url("")?).await
    }

    /// `POST /v1/Workspaces/{WS}`.
    pub async fn update_workspace(&self, params: &UpdateWorkspace) -> Result<Workspace, Error> {
        self.post(self.workspace_url("")?, params.form()).await
    }

    /// `GET /v1/Workspaces` (the account's workspaces, whatever workspace is configured).
    pub fn list_workspaces(&self, friendly_name: Option<&str>) -> Paged<Workspace> {
        let mut query = Form::new();
        query.opt("FriendlyName", friendly_name);
        self.paged_v1(Ok(self.v1_url("Workspaces")), query)
    }

    /// `POST /v1/Workspaces`.
    pub async fn create_workspace(&self, params: &CreateWorkspace) -> Result<Workspace, Error> {
        self.post(self.v1_url("Workspaces"), params.form()).await
    }

    // ---- Activities ----

    /// `GET …/Activities`.
    pub fn list_activities(&self, filter: &ActivityFilter) -> Paged<Activity> {
        self.paged_v1(self.workspace_url("/Activities"), filter.form())
    }

    /// `POST …/Activities`.
    pub async fn create_activity(&self, params: &CreateActivity) -> Result<Activity, Error> {
        self.post(self.workspace_url("/Activities")?, params.form()).await
    }

    // ---- Workers ----

    /// `GET …/Workers`.
    pub fn list_workers(&self, filter: &WorkerFilter) -> Paged<Worker> {
        self.paged_v1(self.workspace_url("/Workers"), filter.form())
    }

    /// `GET …/Workers/{WK}`; the result's `etag` is set from the response.
    pub async fn fetch_worker(&self, worker_sid: &str) -> Result<Worker, Error> {
        self.get_versioned(self.workspace_url(&format!("/Workers/{}", segment(worker_sid)))?).await
    }

    /// `POST …/Workers`.
    pub async fn create_worker(&self, params: &CreateWorker) -> Result<Worker, Error> {
        self.post_versioned(self.workspace_url("/Workers")?, params.form()).await
    }

    /// `POST …/Workers/{WK}` (activity, attributes, name), with `If-Match` when `params.if_match` is set.
    pub async fn update_worker(&self, worker_sid: &str, params: &UpdateWorker) -> Result<Worker, Error> {
        let mut form = params.form();
        form.if_match = params.if_match.clone();
        self.post_versioned(self.workspace_url(&format!("/Workers/{}", segment(worker_sid)))?, form).await
    }

    // ---- Tasks ----

    /// `POST …/Tasks`.
    pub async fn create_task(&self, params: &CreateTask) -> Result<Task, Error> {
        self.post_versioned(self.workspace_url("/Tasks")?, params.form()).await
    }

    /// `GET …/Tasks`; several `assignment_status` values are sent as repeated keys.
    pub fn list_tasks(&self, filter: &TaskFilter) -> Paged<Task> {
        self.paged_v1(self.workspace_url("/Tasks"), filter.form())
    }

    /// `GET …/Tasks/{WT}`; the result's `etag` is set from the response.
    pub async fn fetch_task(&self, task_sid: &str) -> Result<Task, Error> {
        self.get_versioned(self.workspace_url(&format!("/Tasks/{}", segment(task_sid)))?).await
    }

    /// `POST …/Tasks/{WT}`, with `If-Match` when `params.if_match` is set.
    pub async fn update_task(&self, task_sid: &str, params: &UpdateTask) -> Result<Task, Error> {
        let mut form = params.form();
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
        self.paged_v1(
            self.workspace_url(&format!("/Tasks/{}/Reservations", segment(task_sid))),
            filter.form(),
        )
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
        let query = ReservationFilter { worker_sid: None, ..filter.clone() }.form();
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
        self.paged_v1(self.workspace_url("/Events"), filter.form())
    }

    // ---- Task queues and workflows ----

    /// `GET …/TaskQueues`.
    pub fn list_task_queues(&self, filter: &TaskQueueFilter) -> Paged<TaskQueue> {
        self.paged_v1(self.workspace_url("/TaskQueues"), filter.form())
    }

    /// `POST …/TaskQueues`.
    pub async fn create_task_queue(&self, params: &CreateTaskQueue) -> Result<TaskQueue, Error> {
        self.post(self.workspace_url("/TaskQueues")?, params.form()).await
    }

    /// `GET …/Workflows`.
    pub fn list_workflows(&self, filter: &WorkflowFilter) -> Paged<Workflow> {
        self.paged_v1(self.workspace_url("/Workflows"), filter.form())
    }

    /// `POST …/Workflows`.
    pub async fn create_workflow(&self, params: &CreateWorkflow) -> Result<Workflow, Error> {
        self.post(self.workspace_url("/Workflows")?, params.form()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(form: &Form) -> Vec<(&str, &str)> {
        form.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }

    /// An update that carries `instruction` and nothing else.
    fn instructed(instruction: Instruction) -> UpdateReservation {
        UpdateReservation { instruction: Some(instruction), ..Default::default() }
    }

    #[test]
    fn forms_send_the_set_fields_under_their_wire_names_in_order() {
        let filter = TaskFilter {
            assignment_status: vec![TaskAssignmentStatus::Pending, TaskAssignmentStatus::Reserved],
            page_size: Some(50),
            ..Default::default()
        };
        assert_eq!(
            pairs(&filter.form()),
            vec![("AssignmentStatus", "pending"), ("AssignmentStatus", "reserved"), ("PageSize", "50")]
        );
        let worker = CreateWorker {
            friendly_name: "alice".into(),
            attributes: Some(serde_json::json!({"skills": ["support"]})),
            ..Default::default()
        };
        assert_eq!(
            pairs(&worker.form()),
            vec![("FriendlyName", "alice"), ("Attributes", r#"{"skills":["support"]}"#)]
        );
        let update = UpdateTask { if_match: Some("3".into()), ..Default::default() };
        assert!(update.form().pairs.is_empty(), "If-Match is a header, not a parameter");
    }

    #[test]
    fn conference_instruction_form() {
        let update = UpdateReservation {
            if_match: Some("3".into()),
            ..instructed(Instruction::Conference(ConferenceInstruction {
                to: Some("client:alice".into()),
                from: Some("+15550100".into()),
                post_work_activity_sid: Some("WA1".into()),
                end_conference_on_exit: Some(true),
                conference_status_callback_event: vec!["start".into(), "end".into()],
                ..Default::default()
            }))
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
        let dequeue = instructed(Instruction::Dequeue(DequeueInstruction {
            from: "+1555".into(),
            status_callback_event: vec!["answered".into()],
            ..Default::default()
        }));
        assert_eq!(
            pairs(&dequeue.form()),
            vec![
                ("Instruction", "dequeue"),
                ("DequeueFrom", "+1555"),
                ("DequeueStatusCallbackEvent", "answered")
            ]
        );
        let call = instructed(Instruction::Call(CallInstruction {
            from: "+1".into(),
            url: "https://x/twiml".into(),
            accept: Some(true),
            ..Default::default()
        }));
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
            extra: vec![("Foo".into(), "bar".into())],
            ..instructed(Instruction::Redirect(RedirectInstruction {
                call_sid: "CA1".into(),
                url: "https://x/r".into(),
                accept: None,
            }))
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
