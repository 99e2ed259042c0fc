//! The SDK's internal data format (eb §3.5), not the public REST JSON: snake_case, dates as epoch seconds
//! (a channel's `last_reserved_time` in milliseconds), `attributes` and `addons` as JSON strings, a
//! `version` on every versioned object, a reservation with its task nested. The SDK checks that every
//! key is present (`null` passes) and throws out of its socket handler when one is missing, so every
//! object carries every key its class checks.

use engine::model::{
    Activity, QueueOrder, Reservation, Task, TaskQueue, Transfer, TransferStatus, Worker, WorkerChannel,
};
use engine::{Core, Sid, Timestamp};
use serde_json::{json, Value};

fn secs(ts: Timestamp) -> i64 {
    ts.secs()
}

pub(super) fn worker(w: &Worker) -> Value {
    json!({
        "account_sid": w.account_sid.to_string(),
        "workspace_sid": w.workspace_sid.to_string(),
        "sid": w.sid.to_string(),
        "friendly_name": w.friendly_name,
        "activity_sid": w.activity_sid.to_string(),
        "activity_name": w.activity_name,
        "available": w.available,
        "attributes": w.attributes,
        "date_created": secs(w.date_created),
        "date_updated": secs(w.date_updated),
        "date_status_changed": secs(w.date_status_changed),
        "version": w.version.to_string(),
    })
}

pub(super) fn activity(a: &Activity) -> Value {
    json!({
        "account_sid": a.account_sid.to_string(),
        "workspace_sid": a.workspace_sid.to_string(),
        "sid": a.sid.to_string(),
        "friendly_name": a.friendly_name,
        "available": a.available,
        "date_created": secs(a.date_created),
        "date_updated": secs(a.date_updated),
    })
}

/// A task queue, as the SDK's `Workspace` class reads it (`TaskQueueDescriptor`).
pub(super) fn task_queue(q: &TaskQueue) -> Value {
    json!({
        "account_sid": q.account_sid.to_string(),
        "workspace_sid": q.workspace_sid.to_string(),
        "sid": q.sid.to_string(),
        "friendly_name": q.friendly_name,
        "target_workers": q.target_workers,
        "max_reserved_workers": q.max_reserved_workers,
        "task_order": q.task_order.as_str(),
        "lifo_queue": q.task_order == QueueOrder::Lifo,
        "reservation_activity_sid": q.reservation_activity_sid.map(|s| s.to_string()),
        "reservation_activity_name": q.reservation_activity_name,
        "assignment_activity_sid": q.assignment_activity_sid.map(|s| s.to_string()),
        "assignment_activity_name": q.assignment_activity_name,
        "date_created": secs(q.date_created),
        "date_updated": secs(q.date_updated),
    })
}

pub(super) fn worker_channel(c: &WorkerChannel) -> Value {
    json!({
        "account_sid": c.account_sid.to_string(),
        "workspace_sid": c.workspace_sid.to_string(),
        "sid": c.sid.to_string(),
        "worker_sid": c.worker_sid.to_string(),
        "task_channel_sid": c.task_channel_sid.to_string(),
        "task_channel_unique_name": &*c.task_channel_unique_name,
        "configured_capacity": c.configured_capacity,
        "assigned_tasks": c.assigned_tasks,
        "available": c.available,
        "available_capacity_percentage": c.available_capacity_percentage(),
        // The engine does not keep when a channel was last reserved; the SDK accepts null.
        "last_reserved_time": Value::Null,
        "date_created": secs(c.date_created),
        "date_updated": secs(c.date_updated),
    })
}

pub(super) fn task(t: &Task, now: Timestamp) -> Value {
    json!({
        "account_sid": t.account_sid.to_string(),
        "workspace_sid": t.workspace_sid.to_string(),
        "sid": t.sid.to_string(),
        "assignment_status": t.assignment_status.as_str(),
        "attributes": &*t.attributes,
        "addons": &*t.addons,
        "age": t.age(now),
        "priority": t.priority,
        "timeout": t.timeout,
        "reason": t.reason.as_deref(),
        "queue_sid": t.task_queue_sid.map(|s| s.to_string()),
        "queue_name": t.task_queue_friendly_name.as_deref(),
        "workflow_sid": t.workflow_sid.map(|s| s.to_string()),
        "workflow_name": t.workflow_friendly_name.as_deref(),
        "task_channel_sid": t.task_channel_sid.to_string(),
        "task_channel_unique_name": &*t.task_channel_unique_name,
        "routing_target": t.routing_target.map(|s| s.to_string()),
        "virtual_start_time": secs(t.virtual_start_time),
        "date_created": secs(t.date_created),
        "date_updated": secs(t.date_updated),
        "version": t.version.to_string(),
    })
}

/// A task transfer (the SDK's `TransferDescriptor`, with the `task_sid` its transfers need).
pub(super) fn transfer(t: &Transfer) -> Value {
    json!({
        "sid": t.sid.to_string(),
        "task_sid": t.task_sid.to_string(),
        "initiating_reservation_sid": t.initiating_reservation_sid.to_string(),
        "initiating_worker_sid": t.initiating_worker_sid.to_string(),
        "initiating_queue_sid": t.initiating_queue_sid.map(|s| s.to_string()),
        "initiating_workflow_sid": t.initiating_workflow_sid.map(|s| s.to_string()),
        "transfer_to": t.transfer_to.to_string(),
        "transfer_type": t.transfer_type(),
        "transfer_mode": t.transfer_mode.as_str(),
        "transfer_status": t.transfer_status.as_str(),
        "transfer_failed_reason": t.transfer_failed_reason,
        "date_created": secs(t.date_created),
        "date_updated": secs(t.date_updated),
    })
}

/// A reservation with its task (`null` when the task is gone). `incoming` is the transfer that made it:
/// sent as `task_transfer` only then, as the SDK keeps a transfer object only for a reservation created
/// with one (eb §3.5). A transfer of its own in progress is `active_outgoing_task_transfer`.
fn reservation(r: &Reservation, task: Option<&Task>, incoming: Option<&Transfer>, now: Timestamp) -> Value {
    // The reservation's timeout in seconds, as configured; an accepted one no longer has a deadline.
    let timeout = r.timeout_at.map(|at| at.millis_since(r.date_created) / 1000);
    let mut value = json!({
        "account_sid": r.account_sid.to_string(),
        "workspace_sid": r.workspace_sid.to_string(),
        "sid": r.sid.to_string(),
        "task_sid": r.task_sid.to_string(),
        "worker_sid": r.worker_sid.to_string(),
        "worker_name": r.worker_name,
        "worker_previous_activity_sid": r.worker_previous_activity_sid.map(|s| s.to_string()),
        "reservation_status": r.reservation_status.as_str(),
        "reservation_timeout": timeout,
        "date_created": secs(r.date_created),
        "date_updated": secs(r.date_updated),
        "version": r.version.to_string(),
        "task": task.map(|t| self::task(t, now)),
    });
    if let (Some(t), Some(map)) = (incoming, value.as_object_mut()) {
        map.insert("task_transfer".into(), transfer(t));
    }
    let outgoing = r.outgoing_transfer.as_deref().filter(|t| t.transfer_status == TransferStatus::Initiated);
    if let (Some(t), Some(map)) = (outgoing, value.as_object_mut()) {
        map.insert("active_outgoing_task_transfer".into(), transfer(t));
    }
    value
}

/// A reservation and its task as they are in `core` now.
pub(super) fn reservation_in(core: &Core, ws: Sid, sid: Sid, now: Timestamp) -> Result<Value, engine::Error> {
    Ok(reservation_of(core, core.reservation(ws, sid)?, now))
}

/// Reservation `r` of `core`, with its task and the transfer that made it.
pub(super) fn reservation_of(core: &Core, r: &Reservation, now: Timestamp) -> Value {
    let ws = r.workspace_sid;
    let from = r.transferred_from.and_then(|f| core.reservation(ws, f).ok());
    reservation(r, core.task(ws, r.task_sid).ok(), from.and_then(|f| f.outgoing_transfer.as_deref()), now)
}

/// A list as the SDK pages it (eb §4.2): `{"contents": [...], "after_sid": …}`, where `after_sid` is set
/// when more follow and is what the next request passes as `AfterSid`.
pub(super) fn page(contents: Vec<Value>, more: Option<Sid>) -> Value {
    json!({
        "contents": contents,
        "after_sid": more.map(|s| s.to_string()),
        // `next_token` is where the SDK looks once it orders a list (it then sends `NextToken`).
        "meta": { "list_key": "contents", "next_token": more.map(|s| s.to_string()) },
    })
}
