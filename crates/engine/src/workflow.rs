//! Workflow configuration documents (reference §4.7, §5.2): parsed and validated once, at create/update.
//!
//! Errors name the filter (by index and `filter_friendly_name`) and the problem, so a developer can fix the
//! document without guessing.

use crate::error::quote;
use crate::expr::{Expr, OrderBy, Origin, TaskRef};
use crate::sid::{Prefix, Sid};
use serde_json::Value;

/// Maximum configuration size (reference §13).
pub const MAX_CONFIGURATION_BYTES: usize = 1_038_576;

/// A parsed `task_routing` document.
#[derive(Debug, Clone, Default)]
pub struct WorkflowConfig {
    /// Tested top to bottom; first match wins.
    pub filters: Vec<Filter>,
    /// Used when no filter matched.
    pub default_filter: Option<Target>,
}

/// One filter.
#[derive(Debug, Clone)]
pub struct Filter {
    /// `filter_friendly_name` (may be empty).
    pub name: String,
    /// Over the task's attributes.
    pub expression: Expr,
    /// At least one.
    pub targets: Vec<Target>,
}

/// `known_worker_sid` or `known_worker_friendly_name`.
#[derive(Debug, Clone)]
pub enum KnownWorker {
    /// The reference resolves to a worker SID.
    Sid(TaskRef),
    /// The reference resolves to a worker friendly name.
    FriendlyName(TaskRef),
}

/// One routing step.
#[derive(Debug, Clone)]
pub struct Target {
    /// The queue (inherited from the previous target when absent).
    pub queue: Sid,
    /// Sets the task's priority when the step applies.
    pub priority: Option<i64>,
    /// Seconds; cumulative across the filter's targets.
    pub timeout: Option<i64>,
    /// `task.`/`worker.` expression.
    pub expression: Option<Expr>,
    /// Worker order.
    pub order_by: Option<OrderBy>,
    /// Skip condition over `workers.*` counters.
    pub skip_if: Option<Expr>,
    /// Known-worker routing.
    pub known_worker: Option<KnownWorker>,
}

impl WorkflowConfig {
    /// Every queue SID the document names.
    pub fn queues(&self) -> impl Iterator<Item = Sid> + '_ {
        self.filters
            .iter()
            .flat_map(|f| f.targets.iter().map(|t| t.queue))
            .chain(self.default_filter.iter().map(|t| t.queue))
    }

    /// Parses and validates a configuration; `queue_exists` checks queue SIDs against the workspace.
    pub fn parse(text: &str, queue_exists: &dyn Fn(Sid) -> bool) -> Result<WorkflowConfig, String> {
        WorkflowConfig::parse_from(text, Origin::Input, queue_exists)
    }

    /// [`WorkflowConfig::parse`] with the expression limits of `origin`: restore parses what was stored
    /// with [`Origin::Stored`], so a workflow accepted before a limit existed still loads.
    pub(crate) fn parse_from(
        text: &str,
        origin: Origin,
        queue_exists: &dyn Fn(Sid) -> bool,
    ) -> Result<WorkflowConfig, String> {
        if text.len() > MAX_CONFIGURATION_BYTES {
            return Err(format!(
                "the configuration is {} bytes; the limit is {MAX_CONFIGURATION_BYTES}",
                text.len()
            ));
        }
        let doc: Value = serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
        let routing =
            doc.get("task_routing").ok_or("the document must be an object with a \"task_routing\" object")?;
        let filters_json = match routing.get("filters") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a.clone(),
            Some(_) => return Err("\"task_routing.filters\" must be an array".into()),
        };
        let mut filters = Vec::new();
        for (i, f) in filters_json.iter().enumerate() {
            let name = f.get("filter_friendly_name").and_then(Value::as_str).unwrap_or("").to_owned();
            let label = if name.is_empty() {
                format!("filter {i}")
            } else {
                format!("filter {i} ({})", quote(&name))
            };
            let expr_text = f
                .get("expression")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("{label}: \"expression\" (a string) is required"))?;
            let expression = Expr::parse_from(expr_text, origin)
                .map_err(|e| format!("{label}: invalid expression {}: {e}", quote(expr_text)))?;
            let targets_json = f
                .get("targets")
                .and_then(Value::as_array)
                .filter(|a| !a.is_empty())
                .ok_or_else(|| format!("{label}: \"targets\" must be a non-empty array"))?;
            let mut targets: Vec<Target> = Vec::new();
            for (j, t) in targets_json.iter().enumerate() {
                let inherited = targets.last().map(|p| p.queue);
                let target = parse_target(t, inherited, true, origin, queue_exists)
                    .map_err(|e| format!("{label}, target {j}: {e}"))?;
                targets.push(target);
            }
            filters.push(Filter { name, expression, targets });
        }
        let default_filter = match routing.get("default_filter") {
            None | Some(Value::Null) => None,
            Some(t) => Some(
                parse_target(t, None, false, origin, queue_exists)
                    .map_err(|e| format!("default_filter: {e}"))?,
            ),
        };
        Ok(WorkflowConfig { filters, default_filter })
    }
}

fn int_field(t: &Value, key: &str) -> Result<Option<i64>, String> {
    match t.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| format!("\"{key}\" must be an integer")),
        Some(Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| format!("\"{key}\" must be an integer, not {}", quote(s))),
        Some(_) => Err(format!("\"{key}\" must be an integer")),
    }
}

fn str_field<'a>(t: &'a Value, key: &str) -> Result<Option<&'a str>, String> {
    match t.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("\"{key}\" must be a string")),
    }
}

fn parse_target(
    t: &Value,
    inherited: Option<Sid>,
    allow_timeout: bool,
    origin: Origin,
    queue_exists: &dyn Fn(Sid) -> bool,
) -> Result<Target, String> {
    if !t.is_object() {
        return Err("a target must be an object".into());
    }
    let queue = match str_field(t, "queue")? {
        Some(q) => {
            let sid = Sid::parse_as(q, Prefix::TaskQueue).map_err(|e| format!("\"queue\": {e}"))?;
            if !queue_exists(sid) {
                return Err(format!("\"queue\": TaskQueue {sid} does not exist in this workspace"));
            }
            sid
        }
        None => inherited.ok_or("\"queue\" is required on the first target")?,
    };
    let priority = int_field(t, "priority")?;
    if let Some(p) = priority {
        if !(0..=i64::from(i32::MAX)).contains(&p) {
            return Err(format!("\"priority\" {p} is out of range 0..2147483647"));
        }
    }
    let timeout = int_field(t, "timeout")?;
    if let Some(s) = timeout {
        if s <= 0 {
            return Err(format!("\"timeout\" must be a positive number of seconds, not {s}"));
        }
        if !allow_timeout {
            return Err("the default filter cannot have a \"timeout\"".into());
        }
    }
    let expression = match str_field(t, "expression")? {
        Some(e) => Some(
            Expr::parse_target_from(e, origin)
                .map_err(|err| format!("invalid \"expression\" {}: {err}", quote(e)))?,
        ),
        None => None,
    };
    let order_by = match str_field(t, "order_by")? {
        Some(o) => Some(
            OrderBy::parse_from(o, origin)
                .map_err(|err| format!("invalid \"order_by\" {}: {err}", quote(o)))?,
        ),
        None => None,
    };
    let skip_if = match str_field(t, "skip_if")? {
        Some(s) => Some(
            Expr::parse_from(s, origin).map_err(|err| format!("invalid \"skip_if\" {}: {err}", quote(s)))?,
        ),
        None => None,
    };
    let known_worker = match (str_field(t, "known_worker_sid")?, str_field(t, "known_worker_friendly_name")?)
    {
        (Some(_), Some(_)) => {
            return Err("give \"known_worker_sid\" or \"known_worker_friendly_name\", not both".into())
        }
        (Some(r), None) => Some(KnownWorker::Sid(
            TaskRef::parse_from(r, origin)
                .map_err(|err| format!("invalid \"known_worker_sid\" {}: {err}", quote(r)))?,
        )),
        (None, Some(r)) => Some(KnownWorker::FriendlyName(
            TaskRef::parse_from(r, origin)
                .map_err(|err| format!("invalid \"known_worker_friendly_name\" {}: {err}", quote(r)))?,
        )),
        (None, None) => None,
    };
    Ok(Target { queue, priority, timeout, expression, order_by, skip_if, known_worker })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(n: u128) -> Sid {
        Sid::new(Prefix::TaskQueue, n)
    }

    #[test]
    fn parses_filters_targets_and_inherits_queues() {
        let text = format!(
            r#"{{"task_routing":{{"filters":[{{"filter_friendly_name":"Gold","expression":"type == 'ticket'",
            "targets":[{{"queue":"{}","priority":"10","timeout":300,"order_by":"worker.level DESC"}},{{"timeout":5}}]}}],
            "default_filter":{{"queue":"{}"}}}}}}"#,
            q(1),
            q(2)
        );
        let cfg = WorkflowConfig::parse(&text, &|_| true).unwrap();
        assert_eq!(cfg.filters.len(), 1);
        assert_eq!(cfg.filters[0].targets[1].queue, q(1));
        assert_eq!(cfg.filters[0].targets[0].priority, Some(10));
        assert_eq!(cfg.default_filter.unwrap().queue, q(2));
    }

    #[test]
    fn errors_name_the_filter_and_the_problem() {
        let text = r#"{"task_routing":{"filters":[{"filter_friendly_name":"Sales","expression":"a ==","targets":[]}]}}"#;
        let err = WorkflowConfig::parse(text, &|_| true).unwrap_err();
        assert!(err.starts_with("filter 0 (\"Sales\"): invalid expression"), "{err}");
        let text = format!(
            r#"{{"task_routing":{{"filters":[{{"expression":"1==1","targets":[{{"queue":"{}"}}]}}]}}}}"#,
            q(9)
        );
        let err = WorkflowConfig::parse(&text, &|_| false).unwrap_err();
        assert!(err.contains("does not exist"), "{err}");
        assert!(WorkflowConfig::parse("[]", &|_| true).is_err());
        // A long expression is quoted in part, so the error is not as long as the document.
        let long = format!("a IN [{}1]", "1, ".repeat(6_000));
        let text = serde_json::json!({"task_routing": {"filters": [{"expression": long, "targets": []}]}});
        let err = WorkflowConfig::parse(&text.to_string(), &|_| true).unwrap_err();
        assert!(err.starts_with("filter 0: invalid expression \"a IN [1, 1, "), "{err:.300}");
        assert!(err.contains(&format!("…\" ({} characters)", long.len())), "{err:.300}");
        assert!(err.len() < 500, "{err}");
    }
}
