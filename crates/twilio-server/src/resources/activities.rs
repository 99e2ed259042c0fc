//! `/v1/Workspaces/{WS}/Activities[/{Sid}]`.

use engine::command::Command;
use engine::core::ActivityFilter;
use engine::model::Activity;
use engine::{Prefix, Sid};
use serde_json::{json, Value};

use super::crud::{self, collection, Editable, Resource};
use super::friendly_name;
use crate::handle::Engine;
use crate::params::Params;
use crate::{ApiResult, ServerState};

collection!(Activity at "Activities"/{sid}, listed as "activities", Sid of Prefix::Activity);

impl Resource for Activity {
    type Filter = ActivityFilter;

    fn render(&self, state: &ServerState) -> Value {
        let a = self;
        crud::render(a, state, (a.date_created, a.date_updated), |_| {
            json!({
                "friendly_name": a.friendly_name,
                "available": a.available,
                "links": { "workspace": state.urls().workspace(a.workspace_sid, "") },
            })
        })
    }

    async fn fetch(engine: &Engine, ws: Sid, sid: Sid) -> ApiResult<Activity> {
        engine.activity(ws, sid).await
    }

    fn filter(p: &mut Params) -> ApiResult<ActivityFilter> {
        Ok(ActivityFilter { friendly_name: p.str("FriendlyName"), available: p.bool("Available") })
    }

    async fn list(engine: &Engine, ws: Sid, filter: ActivityFilter) -> ApiResult<Vec<Activity>> {
        engine.activities(ws, filter).await
    }
}

impl Editable for Activity {
    fn create(ws: Sid, p: &mut Params) -> ApiResult<Command> {
        let friendly_name = friendly_name(p, true)?;
        Ok(Command::CreateActivity { workspace_sid: ws, friendly_name, available: p.bool("Available") })
    }

    fn update(ws: Sid, sid: Sid, p: &mut Params, _: Option<String>) -> ApiResult<Command> {
        Ok(Command::UpdateActivity { workspace_sid: ws, sid, friendly_name: friendly_name(p, false)? })
    }

    fn delete(ws: Sid, sid: Sid, _: Option<String>) -> Command {
        Command::DeleteActivity { workspace_sid: ws, sid }
    }
}
