//! `/v1/Workspaces/{WS}/TaskChannels[/{Sid}]`; the path `Sid` may be a TC SID or the unique name.

use engine::command::Command;
use engine::model::TaskChannel;
use engine::{Prefix, Sid};
use serde_json::{json, Value};

use super::crud::{self, collection, Editable, Resource};
use super::friendly_name;
use crate::handle::Engine;
use crate::params::Params;
use crate::{ApiResult, ServerState};

collection!(TaskChannel at "TaskChannels"/{sid}, listed as "channels", String of Prefix::TaskChannel);

impl Resource for TaskChannel {
    type Filter = ();

    fn render(&self, state: &ServerState) -> Value {
        let c = self;
        crud::render(c, state, (c.date_created, c.date_updated), |_| {
            json!({
                "friendly_name": c.friendly_name,
                "unique_name": c.unique_name,
                "channel_optimized_routing": c.channel_optimized_routing,
                "links": { "workspace": state.urls().workspace(c.workspace_sid, "") },
            })
        })
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
