//! `/v1/Workspaces/{WS}/Tasks[/{Sid}]`, with `ETag` and `If-Match`.

use std::io::Write as _;

use axum::http::StatusCode;
use axum::response::Response;
use engine::command::{Command, CreateTaskParams, UpdateTaskParams};
use engine::core::TaskFilter;
use engine::model::Task;
use engine::{Prefix, Sid, Timestamp};
use serde_json::Value;

use super::crud::{collection, Editable, Resource};
use crate::extract::{json_bytes, opt_sid, with_etag};
use crate::handle::Engine;
use crate::params::{one_of, Params};
use crate::render::{parse_iso8601, put_iso8601, Urls};
use crate::{ApiError, ApiResult, ServerState};

const STATUSES: [&str; 6] = ["pending", "reserved", "assigned", "canceled", "completed", "wrapping"];

collection!(Task at "Tasks"/{task}, listed as "tasks", Sid of Prefix::Task);

impl Resource for Task {
    /// The filters and the `Ordering`.
    type Filter = (TaskFilter, String);

    /// The task as a JSON value, for list pages: [`task_json`] read back, so a task has one rendering.
    fn render(&self, state: &ServerState) -> Value {
        let json = task_json(&state.credentials().account_sid, state.urls(), state.engine().now(), self);
        // Cannot fail: `task_json` writes valid JSON (a test checks it against `serde_json`'s).
        serde_json::from_slice(&json).unwrap_or(Value::Null)
    }

    fn respond(&self, state: &ServerState, status: StatusCode) -> Response {
        task_response(state, status, self)
    }

    async fn fetch(engine: &Engine, ws: Sid, sid: Sid) -> ApiResult<Task> {
        engine.task(ws, sid).await
    }

    fn filter(p: &mut Params) -> ApiResult<(TaskFilter, String)> {
        let assignment_status = p.list("AssignmentStatus");
        for s in &assignment_status {
            one_of("AssignmentStatus", Some(s.clone()), &STATUSES)?;
        }
        let filter = TaskFilter {
            priority: p.integer("Priority")?,
            assignment_status,
            workflow_sid: opt_sid(p.str("WorkflowSid"), Prefix::Workflow, "WorkflowSid")?,
            workflow_name: p.str("WorkflowName"),
            task_queue_sid: opt_sid(p.str("TaskQueueSid"), Prefix::TaskQueue, "TaskQueueSid")?,
            task_queue_name: p.str("TaskQueueName"),
            evaluate_task_attributes: p.str("EvaluateTaskAttributes"),
            routing_target: routing_target_param(p.str("RoutingTarget"))?,
            has_addons: p.bool("HasAddons"),
        };
        Ok((filter, p.str("Ordering").unwrap_or_default()))
    }

    async fn list(engine: &Engine, ws: Sid, (filter, ordering): Self::Filter) -> ApiResult<Vec<Task>> {
        engine.tasks(ws, filter, ordering).await
    }
}

impl Editable for Task {
    fn create(ws: Sid, p: &mut Params) -> ApiResult<Command> {
        let params = CreateTaskParams {
            timeout: p.integer("Timeout")?,
            priority: p.integer("Priority")?,
            task_channel: p.str("TaskChannel"),
            workflow_sid: opt_sid(p.str("WorkflowSid"), Prefix::Workflow, "WorkflowSid")?,
            attributes: p.json_object("Attributes")?,
            virtual_start_time: virtual_start_time(p)?,
            routing_target: routing_target_param(p.str("RoutingTarget"))?,
            ignore_capacity: p.bool("IgnoreCapacity"),
            task_queue_sid: opt_sid(p.str("TaskQueueSid"), Prefix::TaskQueue, "TaskQueueSid")?,
        };
        Ok(Command::CreateTask { workspace_sid: ws, params })
    }

    fn update(ws: Sid, sid: Sid, p: &mut Params, if_match: Option<String>) -> ApiResult<Command> {
        let params = UpdateTaskParams {
            attributes: p.json_object("Attributes")?,
            assignment_status: p.choice("AssignmentStatus", &STATUSES)?,
            reason: p.str("Reason"),
            priority: p.integer("Priority")?,
            task_channel: p.str("TaskChannel"),
            virtual_start_time: virtual_start_time(p)?,
        };
        Ok(Command::UpdateTask { workspace_sid: ws, sid, params, if_match })
    }

    fn delete(ws: Sid, sid: Sid, if_match: Option<String>) -> Command {
        Command::DeleteTask { workspace_sid: ws, sid, if_match }
    }
}

/// A single task's response: the bytes `serde_json` makes of its `TaskBody` (the tests' typed body), written
/// straight into the buffer: the one rendering of a Task. Task creates are the API's hot path, and this skips
/// the body's nine `String`s (URLs and dates) and serde's per-field calls: in profiles of the create load,
/// building and serializing the body took 11-13% of the HTTP threads' samples, and this takes about 6%, the
/// response's headers included. A test checks that it writes the bytes `serde_json` makes of the same fields.
fn task_response(state: &ServerState, status: StatusCode, t: &Task) -> Response {
    let json = task_json(&state.credentials().account_sid, state.urls(), state.engine().now(), t);
    with_etag(json_bytes(status, json), t.version)
}

fn task_json(account_sid: &str, urls: &Urls, now: Timestamp, t: &Task) -> Vec<u8> {
    let mut o = Json(Vec::with_capacity(2048));
    let (sid, ws) = (t.sid.text(), t.workspace_sid.text());
    // Every URL is the workspaces' prefix (from the public base URL), then SIDs and fixed paths.
    let (workspaces, plain) = urls.workspaces();
    let workspaces = workspaces.as_bytes();
    o.key("{\"account_sid\"").str(account_sid);
    o.key(",\"addons\"").str(&t.addons);
    o.key(",\"age\"").int(t.age(now));
    o.key(",\"assignment_status\"").str(t.assignment_status.as_str());
    o.key(",\"attributes\"").str(&t.attributes);
    o.key(",\"date_created\"").date(t.date_created);
    o.key(",\"date_updated\"").date(t.date_updated);
    o.key(",\"ignore_capacity\"").raw(if t.ignore_capacity { "true" } else { "false" });
    o.key(",\"links\":{\"reservations\"").url(plain, &[workspaces, &ws, b"/Tasks/", &sid, b"/Reservations"]);
    o.key(",\"task_queue\"")
        .opt(t.task_queue_sid, |o, q| o.url(plain, &[workspaces, &ws, b"/TaskQueues/", &q.text()]));
    o.key(",\"workflow\"")
        .opt(t.workflow_sid, |o, w| o.url(plain, &[workspaces, &ws, b"/Workflows/", &w.text()]));
    o.key(",\"workspace\"").url(plain, &[workspaces, &ws]);
    o.key("},\"priority\"").int(t.priority);
    o.key(",\"reason\"").opt(t.reason.as_deref(), Json::str);
    o.key(",\"routing_target\"").opt(t.routing_target, Json::sid);
    o.key(",\"sid\"").sid(t.sid);
    o.key(",\"task_channel_sid\"").sid(t.task_channel_sid);
    o.key(",\"task_channel_unique_name\"").str(&t.task_channel_unique_name);
    o.key(",\"task_queue_entered_date\"").opt(t.task_queue_entered_date, Json::date);
    o.key(",\"task_queue_friendly_name\"").opt(t.task_queue_friendly_name.as_deref(), Json::str);
    o.key(",\"task_queue_sid\"").opt(t.task_queue_sid, Json::sid);
    o.key(",\"timeout\"").int(t.timeout);
    o.key(",\"url\"").url(plain, &[workspaces, &ws, b"/Tasks/", &sid]);
    o.key(",\"virtual_start_time\"").date(t.virtual_start_time);
    o.key(",\"workflow_friendly_name\"").opt(t.workflow_friendly_name.as_deref(), Json::str);
    o.key(",\"workflow_sid\"").opt(t.workflow_sid, Json::sid);
    o.key(",\"workspace_sid\"").sid(t.workspace_sid);
    o.raw("}");
    o.0
}

/// JSON written by hand, escaped exactly as `serde_json` escapes.
struct Json(Vec<u8>);

impl Json {
    /// Punctuation and literals, copied as they are.
    fn raw(&mut self, text: &str) {
        self.0.extend_from_slice(text.as_bytes());
    }

    /// A key with what comes before it (`,"name"`), then the `:`; the value follows on the same line.
    fn key(&mut self, text: &str) -> &mut Json {
        self.raw(text);
        self.0.push(b':');
        self
    }

    fn str(&mut self, value: &str) {
        // A `Vec` writer cannot fail.
        let _ = serde_json::to_writer(&mut self.0, value);
    }

    /// A URL made of `parts` (each from a `str`): copied as they are when `plain` (nothing in them needs
    /// escaping: serde_json escapes only `"`, `\\` and the control characters), otherwise escaped whole.
    fn url(&mut self, plain: bool, parts: &[&[u8]]) {
        if plain {
            self.0.push(b'"');
            parts.iter().for_each(|part| self.0.extend_from_slice(part));
            self.0.push(b'"');
        } else {
            self.str(&String::from_utf8_lossy(&parts.concat()));
        }
    }

    /// A SID's text is two capital letters and 32 hex digits: nothing to escape.
    fn sid(&mut self, sid: Sid) {
        self.url(true, &[&sid.text()]);
    }

    fn date(&mut self, ts: Timestamp) {
        self.0.push(b'"');
        put_iso8601(&mut self.0, ts);
        self.0.push(b'"');
    }

    fn int(&mut self, n: i64) {
        // A `Vec` writer cannot fail.
        let _ = write!(self.0, "{n}");
    }

    fn opt<T>(&mut self, value: Option<T>, write: impl FnOnce(&mut Json, T)) {
        match value {
            Some(v) => write(self, v),
            None => self.raw("null"),
        }
    }
}

fn virtual_start_time(p: &mut Params) -> ApiResult<Option<engine::Timestamp>> {
    p.parsed("VirtualStartTime", parse_iso8601, "an ISO-8601 time like 2024-01-31T12:00:00Z")
}

/// `RoutingTarget`: a worker's SID, or empty for none.
fn routing_target_param(value: Option<String>) -> ApiResult<Option<Sid>> {
    value
        .filter(|v| !v.is_empty())
        .map(|v| {
            Sid::parse(&v).map_err(|e| ApiError::invalid(format!("Invalid parameter RoutingTarget: {e}")))
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::iso8601;

    /// A Task as the API shows it. A typed body rather than a `serde_json::Value` map because task creates are the
    /// API's hot path: building ~25 map entries (each key and value its own allocation) and serializing the map
    /// took about a fifth of the HTTP threads' time per create. Fields are in alphabetical order, the order the
    /// `Value` maps of the other resources serialize in, so every resource reads the same way.
    #[derive(serde::Serialize)]
    struct TaskBody<'a> {
        account_sid: &'a str,
        addons: &'a str,
        age: i64,
        assignment_status: &'static str,
        attributes: &'a str,
        date_created: String,
        date_updated: String,
        ignore_capacity: bool,
        links: TaskLinks,
        priority: i64,
        reason: Option<&'a str>,
        routing_target: Option<Sid>,
        sid: Sid,
        task_channel_sid: Sid,
        task_channel_unique_name: &'a str,
        task_queue_entered_date: Option<String>,
        task_queue_friendly_name: Option<&'a str>,
        task_queue_sid: Option<Sid>,
        timeout: i64,
        url: String,
        virtual_start_time: String,
        workflow_friendly_name: Option<&'a str>,
        workflow_sid: Option<Sid>,
        workspace_sid: Sid,
    }

    #[derive(serde::Serialize)]
    struct TaskLinks {
        reservations: String,
        task_queue: Option<String>,
        workflow: Option<String>,
        workspace: String,
    }

    fn body_of<'a>(account_sid: &'a str, workspace: String, now: Timestamp, t: &'a Task) -> TaskBody<'a> {
        let ws = t.workspace_sid;
        let url = format!("{workspace}/Tasks/{}", t.sid);
        TaskBody {
            account_sid,
            addons: &t.addons,
            age: t.age(now),
            assignment_status: t.assignment_status.as_str(),
            attributes: &t.attributes,
            date_created: iso8601(t.date_created),
            date_updated: iso8601(t.date_updated),
            ignore_capacity: t.ignore_capacity,
            links: TaskLinks {
                reservations: format!("{url}/Reservations"),
                task_queue: t.task_queue_sid.map(|q| format!("{workspace}/TaskQueues/{q}")),
                workflow: t.workflow_sid.map(|w| format!("{workspace}/Workflows/{w}")),
                workspace,
            },
            priority: t.priority,
            reason: t.reason.as_deref(),
            routing_target: t.routing_target,
            sid: t.sid,
            task_channel_sid: t.task_channel_sid,
            task_channel_unique_name: &t.task_channel_unique_name,
            task_queue_entered_date: t.task_queue_entered_date.map(iso8601),
            task_queue_friendly_name: t.task_queue_friendly_name.as_deref(),
            task_queue_sid: t.task_queue_sid,
            timeout: t.timeout,
            url,
            virtual_start_time: iso8601(t.virtual_start_time),
            workflow_friendly_name: t.workflow_friendly_name.as_deref(),
            workflow_sid: t.workflow_sid,
            workspace_sid: ws,
        }
    }

    fn task(changes: serde_json::Value) -> Task {
        let mut t = serde_json::json!({
            "account_sid": "AC0123456789abcdef0123456789abcdef",
            "workspace_sid": "WS0123456789abcdef0123456789abcdef",
            "sid": "WTfedcba9876543210fedcba9876543210",
            "assignment_status": "pending",
            "attributes": "{\"type\":\"call\"}",
            "priority": 5,
            "timeout": 86400,
            "reason": null,
            "task_queue_sid": "WQ0123456789abcdef0123456789abcdef",
            "task_queue_friendly_name": "support",
            "task_queue_entered_date": 1_700_000_001_000i64,
            "workflow_sid": "WW0123456789abcdef0123456789abcdef",
            "workflow_friendly_name": "main",
            "task_channel_sid": "TC0123456789abcdef0123456789abcdef",
            "task_channel_unique_name": "voice",
            "virtual_start_time": 1_700_000_000_000i64,
            "routing_target": null,
            "ignore_capacity": false,
            "addons": "{}",
            "date_created": 1_700_000_000_000i64,
            "date_updated": 1_700_000_002_500i64,
            "version": 3,
            "routing": null,
            "assignment_count": 0,
            "terminal_at": null,
        });
        for (key, value) in changes.as_object().expect("an object") {
            t[key] = value.clone();
        }
        serde_json::from_value(t).expect("a task")
    }

    #[test]
    fn a_single_task_is_written_as_its_body_serializes() {
        let cases = [
            serde_json::json!({}),
            // Every optional field absent.
            serde_json::json!({
                "task_queue_sid": null, "task_queue_friendly_name": null, "task_queue_entered_date": null,
                "workflow_sid": null, "workflow_friendly_name": null,
            }),
            // Every optional field present, strings that need escaping, a year the fast date path leaves.
            serde_json::json!({
                "reason": "said \"no\"\n\\ \u{1} ünï",
                "routing_target": "WK0123456789abcdef0123456789abcdef",
                "ignore_capacity": true,
                "attributes": "{\"q\":\"a\\\"b\",\"tab\":\"\t\",\"emoji\":\"🙂\"}",
                "task_queue_friendly_name": "</script>\u{7f}",
                "workflow_friendly_name": "",
                "assignment_status": "wrapping",
                "priority": -1,
                "virtual_start_time": 253_402_300_800_000i64,
                "date_created": -1_000i64,
            }),
        ];
        let now = Timestamp::from_secs(1_700_000_100);
        for base in ["http://127.0.0.1:8080", "https://taskrouter.example.com/\"odd\\base\u{1}"] {
            for case in &cases {
                let t = task(case.clone());
                let urls = Urls::new(base);
                let workspace = urls.workspace(t.workspace_sid, "");
                let expected = serde_json::to_vec(&body_of("AC\"x", workspace, now, &t)).unwrap();
                let got = task_json("AC\"x", &urls, now, &t);
                assert_eq!(String::from_utf8(got).unwrap(), String::from_utf8(expected).unwrap(), "{case}");
            }
        }
    }
}
