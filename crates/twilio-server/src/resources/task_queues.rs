//! `/v1/Workspaces/{WS}/TaskQueues[/{Sid}]`.

use engine::command::{Command, TaskQueueParams};
use engine::core::TaskQueueFilter;
use engine::model::TaskQueue;
use engine::{Prefix, Sid};
use serde_json::{json, Value};

use super::crud::{self, collection, Editable, Resource};
use super::friendly_name;
use crate::extract::opt_sid;
use crate::handle::Engine;
use crate::params::Params;
use crate::{ApiResult, ServerState};

collection!(TaskQueue at "TaskQueues"/{queue}, listed as "task_queues", Sid of Prefix::TaskQueue);

impl Resource for TaskQueue {
    /// The filters and the `Ordering`.
    type Filter = (TaskQueueFilter, String);

    fn render(&self, state: &ServerState) -> Value {
        let q = self;
        let urls = state.urls();
        crud::render(q, state, (q.date_created, q.date_updated), |url| {
            let link = |rest: &str| format!("{url}/{rest}");
            let mut links = json!({
                "workspace": urls.workspace(q.workspace_sid, ""),
                "statistics": link("Statistics"),
                "real_time_statistics": link("RealTimeStatistics"),
                "cumulative_statistics": link("CumulativeStatistics"),
                "list_statistics": urls.workspace(q.workspace_sid, "/TaskQueues/Statistics"),
                "bulk_real_time_statistics": urls.workspace(q.workspace_sid, "/TaskQueues/RealTimeStatistics"),
            });
            // A link to an activity the queue does not have is left out rather than null: `links` is a map of
            // URLs.
            for (name, sid) in [
                ("assignment_activity", q.assignment_activity_sid),
                ("reservation_activity", q.reservation_activity_sid),
            ] {
                if let (Some(sid), Some(map)) = (sid, links.as_object_mut()) {
                    map.insert(
                        name.into(),
                        json!(urls.workspace(q.workspace_sid, &format!("/Activities/{sid}"))),
                    );
                }
            }
            json!({
                "friendly_name": q.friendly_name,
                "target_workers": q.target_workers,
                "max_reserved_workers": q.max_reserved_workers,
                "task_order": q.task_order.as_str(),
                "reservation_activity_sid": q.reservation_activity_sid.map(|s| s.to_string()),
                "reservation_activity_name": q.reservation_activity_name,
                "assignment_activity_sid": q.assignment_activity_sid.map(|s| s.to_string()),
                "assignment_activity_name": q.assignment_activity_name,
                "links": links,
            })
        })
    }

    async fn fetch(engine: &Engine, ws: Sid, sid: Sid) -> ApiResult<TaskQueue> {
        engine.task_queue(ws, sid).await
    }

    fn filter(p: &mut Params) -> ApiResult<(TaskQueueFilter, String)> {
        let filter = TaskQueueFilter {
            friendly_name: p.str("FriendlyName"),
            evaluate_worker_attributes: p.json_object("EvaluateWorkerAttributes")?,
            worker_sid: opt_sid(p.str("WorkerSid"), Prefix::Worker, "WorkerSid")?,
        };
        Ok((filter, p.str("Ordering").unwrap_or_default()))
    }

    async fn list(engine: &Engine, ws: Sid, (filter, ordering): Self::Filter) -> ApiResult<Vec<TaskQueue>> {
        engine.task_queues(ws, filter, ordering).await
    }
}

impl Editable for TaskQueue {
    fn create(ws: Sid, p: &mut Params) -> ApiResult<Command> {
        Ok(Command::CreateTaskQueue { workspace_sid: ws, params: params(p, true)? })
    }

    fn update(ws: Sid, sid: Sid, p: &mut Params, _: Option<String>) -> ApiResult<Command> {
        Ok(Command::UpdateTaskQueue { workspace_sid: ws, sid, params: params(p, false)? })
    }

    fn delete(ws: Sid, sid: Sid, _: Option<String>) -> Command {
        Command::DeleteTaskQueue { workspace_sid: ws, sid }
    }
}

fn params(p: &mut Params, create: bool) -> ApiResult<TaskQueueParams> {
    Ok(TaskQueueParams {
        friendly_name: friendly_name(p, create)?,
        target_workers: p.str("TargetWorkers"),
        max_reserved_workers: p.int("MaxReservedWorkers", 1, 50)?,
        task_order: p.choice("TaskOrder", &["FIFO", "LIFO"])?,
        reservation_activity_sid: opt_sid(
            p.str("ReservationActivitySid"),
            Prefix::Activity,
            "ReservationActivitySid",
        )?,
        assignment_activity_sid: opt_sid(
            p.str("AssignmentActivitySid"),
            Prefix::Activity,
            "AssignmentActivitySid",
        )?,
    })
}
