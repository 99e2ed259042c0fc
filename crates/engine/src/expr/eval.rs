//! Evaluation: the [`Scope`]s references resolve in, and the comparison rules of the module doc.
//!
//! Everything here works on borrowed `&Value`s; constants are JSON values built at parse time, and NULL is
//! one static value, so evaluating against a plain attributes object does not allocate.

use super::lexer::numeric_string;
use super::parser::{Node, Op, Operand};
use super::{Path, Segment};
use serde_json::{Number, Value};
use std::borrow::Cow;
use std::cmp::Ordering;

static NULL: Value = Value::Null;

/// Where references get their values. `None` (or JSON `null`) is NULL.
pub trait Scope {
    /// The value `path` names, borrowed where possible.
    fn resolve(&self, path: &Path) -> Option<Cow<'_, Value>>;
}

/// A bare lookup into an attributes object: `language` is `attributes["language"]`, `task.x` is
/// `attributes["task"]["x"]`. What queue `target_workers` and workflow filters use. Never allocates.
impl Scope for Value {
    fn resolve(&self, path: &Path) -> Option<Cow<'_, Value>> {
        path.lookup(self).map(Cow::Borrowed)
    }
}

impl<T: Scope + ?Sized> Scope for &T {
    fn resolve(&self, path: &Path) -> Option<Cow<'_, Value>> {
        (**self).resolve(path)
    }
}

/// A worker as the Worker list's `TargetWorkersExpression` and workflow targets (`worker.…`) see it: its
/// attributes plus four of its own fields.
///
/// `sid`, `friendly_name`, `activity_sid` and `activity_name` name the worker's own fields and **win over**
/// attributes of the same name, so a worker cannot pose as another by setting `{"sid": …}`. A path below
/// one of them (`sid.x`) is NULL. Resolving those four copies the string (they are not JSON values);
/// attribute lookups borrow.
#[derive(Debug, Clone, Copy)]
pub struct WorkerScope<'a> {
    /// The worker's attributes object.
    pub attributes: &'a Value,
    /// `WK…`
    pub sid: &'a str,
    /// The worker's friendly name.
    pub friendly_name: &'a str,
    /// `WA…` of its current activity.
    pub activity_sid: &'a str,
    /// Friendly name of its current activity.
    pub activity_name: &'a str,
}

impl Scope for WorkerScope<'_> {
    fn resolve(&self, path: &Path) -> Option<Cow<'_, Value>> {
        let own = match path.root() {
            "sid" => self.sid,
            "friendly_name" => self.friendly_name,
            "activity_sid" => self.activity_sid,
            "activity_name" => self.activity_name,
            _ => return self.attributes.resolve(path),
        };
        if path.segments().is_empty() {
            Some(Cow::Owned(Value::String(own.to_owned())))
        } else {
            None
        }
    }
}

/// The scope of a workflow target expression: `task.x.y` resolves `x.y` in `task`, `worker.x` resolves `x`
/// in `worker`; anything else (including bare `task`) is NULL.
#[derive(Clone, Copy)]
pub struct TargetScope<'a> {
    /// The task's scope, usually its attributes [`Value`].
    pub task: &'a dyn Scope,
    /// The candidate worker's scope, usually a [`WorkerScope`].
    pub worker: &'a dyn Scope,
}

impl Scope for TargetScope<'_> {
    fn resolve(&self, path: &Path) -> Option<Cow<'_, Value>> {
        let tail = path.tail()?;
        match path.root() {
            "task" => self.task.resolve(tail),
            "worker" => self.worker.resolve(tail),
            _ => None,
        }
    }
}

/// The counters a `skip_if` expression sees, for the step's queue: `workers.available`,
/// `workers.unavailable` and `workers.WA…` (workers in that activity).
///
/// An activity SID missing from `by_activity` counts 0, so callers may leave out empty activities; any
/// other name is NULL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerCounts {
    /// Queue members whose activity is available.
    pub available: u64,
    /// Queue members whose activity is not available.
    pub unavailable: u64,
    /// Queue members per activity SID.
    pub by_activity: Vec<(String, u64)>,
}

impl Scope for WorkerCounts {
    fn resolve(&self, path: &Path) -> Option<Cow<'_, Value>> {
        let [Segment::Key(key)] = path.segments() else { return None };
        if path.root() != "workers" {
            return None;
        }
        let count = match key.as_str() {
            "available" => self.available,
            "unavailable" => self.unavailable,
            sid => match self.by_activity.iter().find(|(s, _)| s == sid) {
                Some((_, n)) => *n,
                None if sid.starts_with("WA") => 0,
                None => return None,
            },
        };
        Some(Cow::Owned(Value::Number(count.into())))
    }
}

fn operand<'s>(operand: &'s Operand, scope: &'s dyn Scope) -> Cow<'s, Value> {
    match operand {
        Operand::Literal(value) => Cow::Borrowed(value),
        Operand::Ref(path) => scope.resolve(path).unwrap_or(Cow::Borrowed(&NULL)),
    }
}

pub(super) fn node(node: &Node, scope: &dyn Scope) -> bool {
    match node {
        Node::Or(children) => children.iter().any(|c| self::node(c, scope)),
        Node::And(children) => children.iter().all(|c| self::node(c, scope)),
        Node::Not(inner) => !self::node(inner, scope),
        Node::Compare { left, op, right } => compare(&operand(left, scope), *op, &operand(right, scope)),
        Node::Truthy(o) => *operand(o, scope) == Value::Bool(true),
    }
}

/// The value of a node that depends on no reference, or `None`. AND/OR are decided by their constant
/// children when those settle it (`1==1 OR x` is true).
pub(super) fn constant(node: &Node) -> Option<bool> {
    match node {
        Node::Or(children) => settled(children, true),
        Node::And(children) => settled(children, false),
        Node::Not(inner) => constant(inner).map(|b| !b),
        Node::Compare { left: Operand::Literal(l), op, right: Operand::Literal(r) } => {
            Some(compare(l, *op, r))
        }
        Node::Truthy(Operand::Literal(v)) => Some(*v == Value::Bool(true)),
        Node::Compare { .. } | Node::Truthy(_) => None,
    }
}

/// The constant value of an OR (`by` true) or an AND (`by` false): `by` when a child is constantly `by`,
/// the other value when every child is constantly that, `None` otherwise.
fn settled(children: &[Node], by: bool) -> Option<bool> {
    let values: Vec<Option<bool>> = children.iter().map(constant).collect();
    if values.contains(&Some(by)) {
        Some(by)
    } else if values.iter().all(|v| *v == Some(!by)) {
        Some(!by)
    } else {
        None
    }
}

/// Numeric order of two JSON numbers: exact for integers, through `f64` when either is a float.
pub(crate) fn cmp_numbers(a: &Number, b: &Number) -> Option<Ordering> {
    fn int(n: &Number) -> Option<i128> {
        n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from))
    }
    match (int(a), int(b)) {
        (Some(x), Some(y)) => Some(x.cmp(&y)),
        _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}

fn is_scalar(v: &Value) -> bool {
    matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_))
}

/// A number against a string that spells one ([`numeric_string`]): the two numbers, the number on the
/// string's side in its place. `None` for any other pair, so two strings still compare as strings.
///
/// Twilio's TaskQueue resource page lists the queues `EvaluateWorkerAttributes={"tech_support_skill": "6"}`
/// targets, and names the `tech_support_skill > 5` queue among them: a numeric string attribute compares
/// as a number with a number constant. That is the one documented case; the rule is applied to every
/// scalar comparison (see the module doc) so that `==`, `!=` and the orderings agree with each other.
fn mixed_numbers(a: &Value, b: &Value) -> Option<(Number, Number)> {
    match (a, b) {
        (Value::Number(x), Value::String(y)) => Some((x.clone(), numeric_string(y)?)),
        (Value::String(x), Value::Number(y)) => Some((numeric_string(x)?, y.clone())),
        _ => None,
    }
}

/// `==` between two scalars; false across types, except a number and a numeric string.
fn scalar_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => cmp_numbers(x, y) == Some(Ordering::Equal),
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        _ => mixed_numbers(a, b).is_some_and(|(x, y)| cmp_numbers(&x, &y) == Some(Ordering::Equal)),
    }
}

fn ordering(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => cmp_numbers(x, y),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => mixed_numbers(a, b).and_then(|(x, y)| cmp_numbers(&x, &y)),
    }
}

fn contains(array: &[Value], item: &Value) -> bool {
    array.iter().any(|element| scalar_eq(element, item))
}

fn equality(a: &Value, b: &Value) -> Option<bool> {
    match (a.is_null(), b.is_null()) {
        (true, true) => Some(true),
        (true, false) | (false, true) => Some(false),
        (false, false) if is_scalar(a) && is_scalar(b) => Some(scalar_eq(a, b)),
        (false, false) => None,
    }
}

/// One comparison, by the rules in the module doc.
pub(crate) fn compare(a: &Value, op: Op, b: &Value) -> bool {
    match op {
        Op::Eq => equality(a, b) == Some(true),
        Op::Ne => equality(a, b) == Some(false),
        Op::Lt => ordering(a, b) == Some(Ordering::Less),
        Op::Le => matches!(ordering(a, b), Some(Ordering::Less | Ordering::Equal)),
        Op::Gt => ordering(a, b) == Some(Ordering::Greater),
        Op::Ge => matches!(ordering(a, b), Some(Ordering::Greater | Ordering::Equal)),
        Op::Contains => match (a, b) {
            (Value::String(haystack), Value::String(needle)) => haystack.contains(needle.as_str()),
            _ => false,
        },
        Op::Has => match a {
            Value::Array(items) if is_scalar(b) => contains(items, b),
            _ => false,
        },
        Op::In => match b {
            Value::Array(items) if is_scalar(a) => contains(items, a),
            _ => false,
        },
        Op::NotIn => match b {
            _ if !(is_scalar(a) || a.is_null()) => false,
            Value::Null => true,
            Value::Array(items) => a.is_null() || !contains(items, a),
            _ => false,
        },
    }
}
