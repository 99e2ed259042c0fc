//! `/v1/Workspaces/{WS}/Events[/{Sid}]`: the engine's event log.

use engine::event::Event;
use engine::{Prefix, Sid};
use serde_json::{json, Value};

use super::crud::{collection, Resource};
use crate::extract::opt_sid;
use crate::handle::{Engine, EventFilter};
use crate::params::Params;
use crate::render::{iso8601, parse_iso8601};
use crate::{ApiResult, ServerState};

collection!(Event at "Events"/{sid}, listed as "events", Sid of Prefix::Event, read);

impl Resource for Event {
    type Filter = EventFilter;

    fn render(&self, state: &ServerState) -> Value {
        let e = self;
        let urls = state.urls();
        let ws = e.workspace_sid;
        let data: serde_json::Map<String, Value> =
            e.fields().iter().map(|(k, v)| (snake_case(k), Value::String(v.clone()))).collect();
        json!({
            "account_sid": state.credentials().account_sid,
            "workspace_sid": ws.to_string(),
            "sid": e.sid.to_string(),
            "event_type": e.event_type.as_str(),
            "description": e.description(),
            "event_date": iso8601(e.at),
            "event_date_ms": e.at.millis(),
            "event_data": data,
            "resource_type": e.resource_type,
            "resource_sid": e.resource_sid.to_string(),
            "resource_url": resource_path(e).map(|p| urls.workspace(ws, &p)),
            "actor_type": "workspace",
            "actor_sid": ws.to_string(),
            "actor_url": urls.workspace(ws, ""),
            "source": "twilio",
            "source_ip_address": Value::Null,
            "url": urls.workspace(ws, &format!("/Events/{}", e.sid)),
        })
    }

    async fn fetch(engine: &Engine, ws: Sid, sid: Sid) -> ApiResult<Event> {
        engine.event(ws, sid).await
    }

    fn filter(p: &mut Params) -> ApiResult<EventFilter> {
        let filter = EventFilter {
            start_date: date(p, "StartDate")?,
            end_date: date(p, "EndDate")?,
            event_type: p.str("EventType"),
            minutes: p.int("Minutes", 1, 43_200)?.map(|n| n as u32),
            reservation_sid: opt_sid(p.str("ReservationSid"), Prefix::Reservation, "ReservationSid")?,
            task_queue_sid: opt_sid(p.str("TaskQueueSid"), Prefix::TaskQueue, "TaskQueueSid")?,
            task_sid: opt_sid(p.str("TaskSid"), Prefix::Task, "TaskSid")?,
            worker_sid: opt_sid(p.str("WorkerSid"), Prefix::Worker, "WorkerSid")?,
            workflow_sid: opt_sid(p.str("WorkflowSid"), Prefix::Workflow, "WorkflowSid")?,
            task_channel: p.str("TaskChannel"),
            sid: opt_sid(p.str("Sid"), Prefix::Event, "Sid")?,
        };
        Ok(filter)
    }

    async fn list(engine: &Engine, ws: Sid, filter: EventFilter) -> ApiResult<Vec<Event>> {
        engine.events(ws, filter).await
    }
}

/// `WorkerActivitySid` -> `worker_activity_sid`, as Twilio names `event_data` keys.
fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The path of an event's resource under the workspace, when it has one.
fn resource_path(e: &Event) -> Option<String> {
    let sid = e.resource_sid;
    Some(match e.resource_type {
        "task" => format!("/Tasks/{sid}"),
        "worker" => format!("/Workers/{sid}"),
        "reservation" => format!("/Tasks/{}/Reservations/{sid}", e.field("TaskSid")?),
        "activity" => format!("/Activities/{sid}"),
        "workflow" => format!("/Workflows/{sid}"),
        "taskqueue" => format!("/TaskQueues/{sid}"),
        "taskchannel" => format!("/TaskChannels/{sid}"),
        "workspace" => String::new(),
        _ => return None,
    })
}

fn date(p: &mut Params, name: &str) -> ApiResult<Option<engine::Timestamp>> {
    p.parsed(name, parse_iso8601, "an ISO-8601 time")
}
