//! The two small languages that live next to expressions in a workflow target: `order_by`
//! (`worker.level ASC, worker.english DESC`) and the known-worker reference (`task.requested_agent`).

use super::eval::cmp_numbers;
use super::parser::{parse_path_list, parse_single_path, ListItem};
use super::{Origin, ParseError, Path};
use serde_json::{Number, Value};
use std::cmp::Ordering;

/// Sort direction of one `order_by` clause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Smallest first. The default when a clause names no direction (as in SQL; Twilio's examples always
    /// name one).
    Asc,
    /// Largest first.
    Desc,
}

/// One clause of an `order_by`: a `worker.` attribute and a direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderClause {
    /// The full path as written, starting with `worker.`.
    pub path: Path,
    /// `ASC` or `DESC`.
    pub direction: Direction,
}

/// A workflow target's `order_by`: comma-separated `worker.<attr> [ASC|DESC]` clauses, later clauses
/// breaking ties of earlier ones. Directions are case-insensitive and default to `ASC`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderBy {
    source: String,
    clauses: Vec<OrderClause>,
}

impl OrderBy {
    /// Parses an `order_by`. Every clause must name a `worker.` attribute; an empty text is an error.
    pub fn parse(src: &str) -> Result<OrderBy, ParseError> {
        OrderBy::parse_from(src, Origin::Input)
    }

    /// [`OrderBy::parse`] with the limits of `origin`.
    pub(crate) fn parse_from(src: &str, origin: Origin) -> Result<OrderBy, ParseError> {
        let mut clauses = Vec::new();
        for ListItem { path, position, word } in parse_path_list(src, origin)? {
            if path.root() != "worker" || path.tail().is_none() {
                return Err(ParseError {
                    position,
                    expected: "a `worker.` attribute (order_by sorts workers by their attributes)".to_owned(),
                    found: format!("`{path}`"),
                });
            }
            let direction = match word {
                None => Direction::Asc,
                Some((w, _)) if w.eq_ignore_ascii_case("asc") => Direction::Asc,
                Some((w, _)) if w.eq_ignore_ascii_case("desc") => Direction::Desc,
                Some((w, at)) => {
                    return Err(ParseError {
                        position: at,
                        expected: "ASC, DESC, `,` or end of order_by".to_owned(),
                        found: format!("`{w}`"),
                    })
                }
            };
            clauses.push(OrderClause { path, direction });
        }
        Ok(OrderBy { source: src.to_owned(), clauses })
    }

    /// The text this was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The clauses, in priority order.
    pub fn clauses(&self) -> &[OrderClause] {
        &self.clauses
    }

    /// Orders two workers by their attribute objects, clause by clause. Values compare numerically;
    /// a worker whose value is missing or not a number sorts after one that has a number, in either
    /// direction. `Equal` when every clause ties (the caller then applies its default, longest idle).
    pub fn compare(&self, a: &Value, b: &Value) -> Ordering {
        for clause in &self.clauses {
            let Some(tail) = clause.path.tail() else { continue };
            let ordering = match (number_at(tail, a), number_at(tail, b)) {
                (Some(x), Some(y)) => {
                    let natural = cmp_numbers(x, y).unwrap_or(Ordering::Equal);
                    match clause.direction {
                        Direction::Asc => natural,
                        Direction::Desc => natural.reverse(),
                    }
                }
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            };
            if ordering != Ordering::Equal {
                return ordering;
            }
        }
        Ordering::Equal
    }
}

fn number_at<'v>(path: &Path, attributes: &'v Value) -> Option<&'v Number> {
    match path.lookup(attributes)? {
        Value::Number(n) => Some(n),
        _ => None,
    }
}

/// The value of `known_worker_sid` / `known_worker_friendly_name`: exactly one `task.<path>` reference,
/// naming the task attribute that holds the worker's SID or friendly name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRef {
    source: String,
    path: Path,
}

impl TaskRef {
    /// Parses `task.<path>` (surrounding whitespace allowed, nothing else).
    pub fn parse(src: &str) -> Result<TaskRef, ParseError> {
        TaskRef::parse_from(src, Origin::Input)
    }

    /// [`TaskRef::parse`] with the limits of `origin`.
    pub(crate) fn parse_from(src: &str, origin: Origin) -> Result<TaskRef, ParseError> {
        const EXPECTED: &str = "a `task.` reference naming the task attribute that holds the worker";
        let (path, position) = parse_single_path(src, EXPECTED, origin)?;
        if path.root() != "task" || path.tail().is_none() {
            return Err(ParseError { position, expected: EXPECTED.to_owned(), found: format!("`{path}`") });
        }
        Ok(TaskRef { source: src.to_owned(), path })
    }

    /// The text this was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The full path, starting with `task.`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The worker named by the task's attributes: the string at the path, or a number written in decimal
    /// (friendly names can be numeric). `None` when missing, null or another type; the task then waits in
    /// the target until its timeout, as in Twilio.
    pub fn resolve(&self, task_attributes: &Value) -> Option<String> {
        match self.path.tail()?.lookup(task_attributes)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
}
