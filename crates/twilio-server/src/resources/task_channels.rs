//! `/v1/Workspaces/{WS}/TaskChannels[/{Sid}]`; the path `Sid` may be a TC SID or the unique name.

use engine::command::Command;
use engine::model::TaskChannel;
use engine::Sid;
use serde_json::{json, Value};

use super::crud::{self, Editable, Resource};
use super::{base, friendly_name};
use crate::handle::Engine;
use crate::params::Params;
use crate::{ApiResult, ServerState};

pub fn router() -> axum::Router<ServerState> {
    crud::router::<TaskChannel>()
}

impl Resource for TaskChannel {
    const COLLECTION: &'static str = "TaskChannels";
    const SEGMENT: &'static str = "sid";
    const LIST_KEY: &'static str = "channels";
    /// A TC SID or the unique name.
    type Id = String;
    type Filter = ();

    fn id(segment: &str) -> ApiResult<String> {
        Ok(segment.to_owned())
    }

    fn sid(&self) -> Sid {
        self.sid
    }

    fn render(&self, state: &ServerState) -> Value {
        let c = self;
        let url = state.urls().workspace(c.workspace_sid, &format!("/TaskChannels/{}", c.sid));
        let mut m = base(state, Some(c.workspace_sid), c.sid, (c.date_created, c.date_updated), url);
        m.insert("friendly_name".into(), json!(c.friendly_name));
        m.insert("unique_name".into(), json!(c.unique_name));
        m.insert("channel_optimized_routing".into(), json!(c.channel_optimized_routing));
        m.insert("links".into(), json!({ "workspace": state.urls().workspace(c.workspace_sid, "") }));
        Value::Object(m)
    }

    async fn fetch(engine: &Engine, ws: Sid, key: String) -> ApiResult<TaskChannel> {
        engine.task_channel(ws, key).await
    }

    fn filter(_: &mut Params) -> ApiResult<()> {
        Ok(())
    }

    async fn list(engine: &Engine, ws: Sid, (): ()) -> ApiResult<Vec<TaskChannel>> {
        engine.task_channels(ws).await
    }
}

impl Editable for TaskChannel {
    fn create(ws: Sid, p: &mut Params) -> ApiResult<Command> {
        let friendly_name = friendly_name(p, true)?;
        let unique_name = Some(p.required("UniqueName")?);
        let channel_optimized_routing = p.bool("ChannelOptimizedRouting");
        Ok(Command::CreateTaskChannel {
            workspace_sid: ws,
            friendly_name,
            unique_name,
            channel_optimized_routing,
        })
    }

    fn update(ws: Sid, key: String, p: &mut Params, _: Option<String>) -> ApiResult<Command> {
        let friendly_name = friendly_name(p, false)?;
        let channel_optimized_routing = p.bool("ChannelOptimizedRouting");
        Ok(Command::UpdateTaskChannel {
            workspace_sid: ws,
            sid: key,
            friendly_name,
            channel_optimized_routing,
        })
    }

    fn delete(ws: Sid, key: String, _: Option<String>) -> Command {
        Command::DeleteTaskChannel { workspace_sid: ws, sid: key }
    }
}
