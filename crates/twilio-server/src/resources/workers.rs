//! `/v1/Workspaces/{WS}/Workers[/{Sid}]`, with `ETag` and `If-Match`.

use axum::http::StatusCode;
use axum::response::Response;
use engine::command::{Command, WorkerParams};
use engine::core::WorkerFilter;
use engine::model::Worker;
use engine::{Prefix, Sid};
use serde_json::{json, Value};

use super::crud::{self, collection, Editable, Resource};
use super::friendly_name;
use crate::extract::{json_etag, opt_sid};
use crate::handle::Engine;
use crate::params::Params;
use crate::render::iso8601;
use crate::{ApiResult, ServerState};

collection!(Worker at "Workers"/{worker}, listed as "workers", Sid of Prefix::Worker);

impl Resource for Worker {
    /// The filters and the `Ordering`.
    type Filter = (WorkerFilter, String);

    fn render(&self, state: &ServerState) -> Value {
        let w = self;
        let urls = state.urls();
        crud::render(w, state, (w.date_created, w.date_updated), |url| {
            let link = |rest: &str| format!("{url}/{rest}");
            json!({
                "friendly_name": w.friendly_name,
                "activity_sid": w.activity_sid.to_string(),
                "activity_name": w.activity_name,
                "available": w.available,
                "attributes": w.attributes,
                "date_status_changed": iso8601(w.date_status_changed),
                "links": {
                    "channels": link("Channels"),
                    "worker_channels": link("Channels"),
                    "reservations": link("Reservations"),
                    "statistics": link("Statistics"),
                    "worker_statistics": link("Statistics"),
                    "real_time_statistics": urls.workspace(w.workspace_sid, "/Workers/RealTimeStatistics"),
                    "cumulative_statistics": urls.workspace(w.workspace_sid, "/Workers/CumulativeStatistics"),
                    "activity": urls.workspace(w.workspace_sid, &format!("/Activities/{}", w.activity_sid)),
                    "workspace": urls.workspace(w.workspace_sid, ""),
                },
            })
        })
    }

    fn respond(&self, state: &ServerState, status: StatusCode) -> Response {
        json_etag(status, self.render(state), self.version)
    }

    async fn fetch(engine: &Engine, ws: Sid, sid: Sid) -> ApiResult<Worker> {
        engine.worker(ws, sid).await
    }

    fn filter(p: &mut Params) -> ApiResult<(WorkerFilter, String)> {
        let filter = WorkerFilter {
            activity_name: p.str("ActivityName"),
            activity_sid: opt_sid(p.str("ActivitySid"), Prefix::Activity, "ActivitySid")?,
            available: p.bool("Available"),
            friendly_name: p.str("FriendlyName"),
            target_workers_expression: p.str("TargetWorkersExpression"),
            task_queue_name: p.str("TaskQueueName"),
            task_queue_sid: opt_sid(p.str("TaskQueueSid"), Prefix::TaskQueue, "TaskQueueSid")?,
        };
        Ok((filter, p.str("Ordering").unwrap_or_default()))
    }

    async fn list(engine: &Engine, ws: Sid, (filter, ordering): Self::Filter) -> ApiResult<Vec<Worker>> {
        engine.workers(ws, filter, ordering).await
    }
}

impl Editable for Worker {
    fn create(ws: Sid, p: &mut Params) -> ApiResult<Command> {
        Ok(Command::CreateWorker { workspace_sid: ws, params: params(p, true)? })
    }

    fn update(ws: Sid, sid: Sid, p: &mut Params, if_match: Option<String>) -> ApiResult<Command> {
        Ok(Command::UpdateWorker { workspace_sid: ws, sid, params: params(p, false)?, if_match })
    }

    fn delete(ws: Sid, sid: Sid, if_match: Option<String>) -> Command {
        Command::DeleteWorker { workspace_sid: ws, sid, if_match }
    }
}

fn params(p: &mut Params, create: bool) -> ApiResult<WorkerParams> {
    Ok(WorkerParams {
        friendly_name: friendly_name(p, create)?,
        activity_sid: opt_sid(p.str("ActivitySid"), Prefix::Activity, "ActivitySid")?,
        attributes: p.json_object("Attributes")?,
        reject_pending_reservations: if create { None } else { p.bool("RejectPendingReservations") },
    })
}
