//! `/v1/Workspaces/{WS}/Activities[/{Sid}]`.

use engine::command::Command;
use engine::core::ActivityFilter;
use engine::model::Activity;
use engine::{Prefix, Sid};
use serde_json::{json, Value};

use super::crud::{self, sid_segment, Editable, Resource};
use super::{base, friendly_name};
use crate::handle::Engine;
use crate::params::Params;
use crate::{ApiResult, ServerState};

pub fn router() -> axum::Router<ServerState> {
    crud::router::<Activity>()
}

impl Resource for Activity {
    const COLLECTION: &'static str = "Activities";
    const SEGMENT: &'static str = "sid";
    const LIST_KEY: &'static str = "activities";
    type Id = Sid;
    type Filter = ActivityFilter;

    fn id(segment: &str) -> ApiResult<Sid> {
        sid_segment(segment, Prefix::Activity)
    }

    fn sid(&self) -> Sid {
        self.sid
    }

    fn render(&self, state: &ServerState) -> Value {
        let a = self;
        let url = state.urls().workspace(a.workspace_sid, &format!("/Activities/{}", a.sid));
        let mut m = base(state, Some(a.workspace_sid), a.sid, (a.date_created, a.date_updated), url);
        m.insert("friendly_name".into(), json!(a.friendly_name));
        m.insert("available".into(), json!(a.available));
        m.insert("links".into(), json!({ "workspace": state.urls().workspace(a.workspace_sid, "") }));
        Value::Object(m)
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
