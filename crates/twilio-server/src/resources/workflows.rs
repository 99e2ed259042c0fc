//! `/v1/Workspaces/{WS}/Workflows[/{Sid}]`.

use engine::command::{Command, WorkflowParams};
use engine::model::Workflow;
use engine::{Prefix, Sid};
use serde_json::{json, Value};

use super::crud::{self, collection, Editable, Resource};
use super::{friendly_name, url_param};
use crate::handle::Engine;
use crate::params::Params;
use crate::{ApiError, ApiResult, ServerState};

collection!(Workflow at "Workflows"/{workflow}, listed as "workflows", Sid of Prefix::Workflow);

impl Resource for Workflow {
    /// `FriendlyName`.
    type Filter = Option<String>;

    fn render(&self, state: &ServerState) -> Value {
        let w = self;
        crud::render(w, state, (w.date_created, w.date_updated), |url| {
            let link = |rest: &str| format!("{url}/{rest}");
            json!({
                "friendly_name": w.friendly_name,
                "configuration": w.configuration,
                "assignment_callback_url": w.assignment_callback_url,
                "fallback_assignment_callback_url": w.fallback_assignment_callback_url,
                "task_reservation_timeout": w.task_reservation_timeout,
                "document_content_type": w.document_content_type,
                "links": {
                    "statistics": link("Statistics"),
                    "real_time_statistics": link("RealTimeStatistics"),
                    "cumulative_statistics": link("CumulativeStatistics"),
                },
            })
        })
    }

    async fn fetch(engine: &Engine, ws: Sid, sid: Sid) -> ApiResult<Workflow> {
        engine.workflow(ws, sid).await
    }

    fn filter(p: &mut Params) -> ApiResult<Option<String>> {
        Ok(p.str("FriendlyName"))
    }

    async fn list(engine: &Engine, ws: Sid, friendly_name: Option<String>) -> ApiResult<Vec<Workflow>> {
        engine.workflows(ws, friendly_name).await
    }
}

impl Editable for Workflow {
    fn create(ws: Sid, p: &mut Params) -> ApiResult<Command> {
        Ok(Command::CreateWorkflow { workspace_sid: ws, params: params(p, true)? })
    }

    fn update(ws: Sid, sid: Sid, p: &mut Params, _: Option<String>) -> ApiResult<Command> {
        Ok(Command::UpdateWorkflow { workspace_sid: ws, sid, params: params(p, false)? })
    }

    fn delete(ws: Sid, sid: Sid, _: Option<String>) -> Command {
        Command::DeleteWorkflow { workspace_sid: ws, sid }
    }
}

fn params(p: &mut Params, create: bool) -> ApiResult<WorkflowParams> {
    let configuration = if create { Some(p.required("Configuration")?) } else { p.str("Configuration") };
    if let Some(c) = &configuration {
        serde_json::from_str::<serde_json::Map<String, Value>>(c).map_err(|e| {
            ApiError::invalid(format!("Invalid parameter Configuration: it must be a JSON object ({e})"))
        })?;
    }
    Ok(WorkflowParams {
        friendly_name: friendly_name(p, create)?,
        configuration,
        assignment_callback_url: url_param(p, "AssignmentCallbackUrl")?,
        fallback_assignment_callback_url: url_param(p, "FallbackAssignmentCallbackUrl")?,
        task_reservation_timeout: p.int("TaskReservationTimeout", 1, 86_400)?,
        re_evaluate_tasks: if create { None } else { p.bool("ReEvaluateTasks") },
    })
}
