//! The TaskRouter expression language: queue `target_workers`, workflow filter and target expressions,
//! `skip_if`, `order_by` and known-worker references.
//!
//! An expression is parsed once, when the queue or workflow is created or updated (so a bad one is a 400 at
//! that moment, with the position of the mistake), and evaluated many times: a queue's `target_workers` runs
//! against every worker of the workspace. So parsing does all the work it can (paths are split, constants are
//! JSON values, aliases folded) and [`Expr::eval`] against a plain [`serde_json::Value`] does not allocate.
//!
//! # Syntax
//!
//! - Constants: strings in single or double quotes (escapes `\\ \" \' \n \t \r`), integers and floats
//!   (`1`, `-2`, `1.0`, `3.141529`, `1e3`; integers beyond 64 bits are read as floats), `true`, `false`,
//!   `null`, arrays of those (`["en", 'es', 3]`).
//! - References: keys (`language`), dotted paths (`object.param`), indexes (`object.array[2]`). A key may
//!   contain letters, digits and `_`; the first key may not start with a digit. Hyphens are not supported
//!   (as in Twilio). A missing key, or an index past the end, is NULL.
//! - Operators: `==` (also `=`), `!=`, `<`, `<=`, `>`, `>=`, `CONTAINS`, `HAS` (also `>-`), `IN` (also `<-`),
//!   `NOT IN`, `AND`, `OR`, parentheses. Keywords are case-insensitive (`in`, `And`). Comparisons bind
//!   tighter than `AND`, `AND` tighter than `OR`. Operators are read greedily, so `x<-1` is `x IN 1`;
//!   write `x < -1`.
//! - Extensions Twilio does not document, accepted leniently: prefix `NOT` (`NOT (a == 1)`, binding
//!   tighter than `AND` and looser than comparisons), and a bare reference or `true`/`false` as a
//!   condition (true when the value is JSON `true`). Expressions meant for real Twilio should not use them.
//! - An empty expression is a parse error; what an absent expression means (a queue with no
//!   `target_workers` matches nobody) is the caller's rule.
//!
//! # Semantics (Twilio documents few of these; the choices are ours)
//!
//! - NULL is a missing key or JSON `null`. `x == null` is true when `x` is NULL, `x != null` when it is
//!   not, whatever the type of `x` (so `preferred_agents != null` works on arrays).
//! - `==`/`!=` on scalars: numbers compare numerically (`1 == 1.0`), strings exactly (case-sensitive),
//!   booleans with booleans. Across scalar types `==` is false and **`!=` is true**: `!=` is always the
//!   negation of `==` for scalars and NULL, so `object.param != "apple"` holds when `param` is missing.
//!   `==` and `!=` with an array or object on either side are false (Twilio: "scalar operators applied to
//!   arrays are false"), except the NULL tests above.
//! - `<`, `<=`, `>`, `>=`: numbers numerically, strings lexicographically by Unicode code point; anything
//!   else (NULL, booleans, arrays, mixed types) is false.
//! - `CONTAINS`: left string contains right string (case-sensitive); false for anything else, including an
//!   array on the left (use `HAS`).
//! - `HAS`: left array has an element `==` to the right scalar (string, number or boolean); false when the
//!   left is not an array or the right is not such a scalar.
//! - `IN`: left scalar (string, number or boolean) `==` to an element of the right array; false otherwise.
//!   The array may be a constant or a reference (`task.lang IN worker.languages`).
//! - `NOT IN`: true when the left is a scalar or NULL, the right is an array or NULL (NULL counts as the
//!   empty list), and the left is not in it. False when the left is an array/object or the right is a
//!   non-null scalar (type mismatch). So a worker with no `excluded` list passes `task.x NOT IN
//!   worker.excluded`, and `NOT IN` is the negation of `IN` exactly when the types fit.
//! - Evaluation never fails and never panics: every type mismatch is false.
//!
//! # Where expressions are evaluated
//!
//! | use | parse with | scope |
//! |---|---|---|
//! | queue `target_workers`, workflow filter, `EvaluateTaskAttributes` | [`Expr::parse`] | the attributes [`serde_json::Value`] |
//! | Worker list `TargetWorkersExpression` | [`Expr::parse`] | [`WorkerScope`] |
//! | workflow target `expression` | [`Expr::parse_target`] | [`TargetScope`] |
//! | target `skip_if` | [`Expr::parse`] | [`WorkerCounts`] |
//! | target `order_by` | [`OrderBy::parse`] | worker attributes |
//! | `known_worker_sid` / `known_worker_friendly_name` | [`TaskRef::parse`] | task attributes |

mod eval;
mod lexer;
mod order;
mod parser;
#[cfg(test)]
mod tests;

pub use eval::{Scope, TargetScope, WorkerCounts, WorkerScope};
pub use order::{Direction, OrderBy, OrderClause, TaskRef};

use parser::{Node, Operand, RefRule};
use serde_json::Value;
use std::fmt;
use std::str::FromStr;

/// Why an expression could not be parsed: where, what the parser wanted there, and what it saw.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at position {position}: expected {expected}, found {found}")]
pub struct ParseError {
    /// Char offset (not byte offset), 0-based, of the mistake.
    pub position: usize,
    /// What would have been valid there, e.g. "a value after HAS".
    pub expected: String,
    /// What was there, e.g. "`)`" or "end of expression".
    pub found: String,
}

/// One step of a [`Path`] after its root.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    /// `.key`
    Key(String),
    /// `[n]`
    Index(usize),
}

/// A reference such as `task.object.array[2]`: a root key and the steps below it.
///
/// The path without its root ([`Path::tail`]) is built at parse time, so [`TargetScope`] can hand
/// `object.array[2]` to the task's scope without allocating per evaluation.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Path {
    root: String,
    segments: Vec<Segment>,
    /// `segments` re-rooted at their first key; `None` when there are no segments or the first is an index.
    tail: Option<Box<Path>>,
}

impl Path {
    pub(crate) fn new(root: String, segments: Vec<Segment>) -> Path {
        let tail = match segments.split_first() {
            Some((Segment::Key(key), rest)) => Some(Box::new(Path::new(key.clone(), rest.to_vec()))),
            _ => None,
        };
        Path { root, segments, tail }
    }

    /// The first key, e.g. `task` in `task.language`.
    pub fn root(&self) -> &str {
        &self.root
    }

    /// The steps after the root.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The path without its root (`language` for `task.language`); `None` for a one-key path or when an
    /// index follows the root (`x[0]`).
    pub fn tail(&self) -> Option<&Path> {
        self.tail.as_deref()
    }

    /// Looks the path up in a JSON object: the root is a key of `value`, then each segment in turn.
    /// `None` when any step is missing or of the wrong type. Borrows; never allocates.
    pub fn lookup<'v>(&self, value: &'v Value) -> Option<&'v Value> {
        let mut at = value.as_object()?.get(&self.root)?;
        for segment in &self.segments {
            at = match segment {
                Segment::Key(key) => at.as_object()?.get(key)?,
                Segment::Index(index) => at.as_array()?.get(*index)?,
            };
        }
        Some(at)
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.root)?;
        for segment in &self.segments {
            match segment {
                Segment::Key(key) => write!(f, ".{key}")?,
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Path({self})")
    }
}

/// A parsed expression. Keeps the text it was parsed from, which is what the API shows back.
///
/// Two expressions are equal when their source texts are equal (and so their trees).
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    source: String,
    root: Node,
}

impl Expr {
    /// Parses an expression whose references may be bare (`language`) or prefixed (`task.language`); a
    /// prefix is just the first key of the path.
    pub fn parse(src: &str) -> Result<Expr, ParseError> {
        Ok(Expr { source: src.to_owned(), root: parser::parse(src, RefRule::Any)? })
    }

    /// Parses a workflow target expression: every reference must start with `task.` or `worker.` and name
    /// something below it; the error gives the position and text of the first one that does not.
    pub fn parse_target(src: &str) -> Result<Expr, ParseError> {
        Ok(Expr { source: src.to_owned(), root: parser::parse(src, RefRule::TaskOrWorker)? })
    }

    /// The text this expression was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates against a scope. Never panics; type mismatches are false (see the module doc).
    pub fn eval(&self, scope: &dyn Scope) -> bool {
        eval::node(&self.root, scope)
    }

    /// Whether the expression is true whatever the scope, judged from its constants alone (`1==1`,
    /// `1 = 1`, `true`, `"a" != "b" OR x == 1`). Lets the engine skip evaluation for match-all queues.
    /// `false` means "not provably always true", not "sometimes false".
    pub fn is_always_true(&self) -> bool {
        eval::constant(&self.root) == Some(true)
    }

    /// Every reference in the expression, in source order (repeats included).
    pub fn references(&self) -> impl Iterator<Item = &Path> {
        let mut out = Vec::new();
        collect_refs(&self.root, &mut out);
        out.into_iter()
    }

    /// The canonical text of the tree (for tests of the parser).
    #[cfg(test)]
    pub(crate) fn canonical(&self) -> String {
        self.root.to_string()
    }

    #[cfg(test)]
    pub(crate) fn tree(&self) -> &Node {
        &self.root
    }
}

fn collect_refs<'a>(node: &'a Node, out: &mut Vec<&'a Path>) {
    let operand = |operand: &'a Operand, out: &mut Vec<&'a Path>| {
        if let Operand::Ref(path) = operand {
            out.push(path);
        }
    };
    match node {
        Node::Or(children) | Node::And(children) => children.iter().for_each(|c| collect_refs(c, out)),
        Node::Not(inner) => collect_refs(inner, out),
        Node::Compare { left, right, .. } => {
            operand(left, out);
            operand(right, out);
        }
        Node::Truthy(o) => operand(o, out),
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl FromStr for Expr {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Expr, ParseError> {
        Expr::parse(s)
    }
}

/// Serialized as its source text, so stored queues and workflows keep what the user wrote.
impl serde::Serialize for Expr {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}

/// Deserialized with [`Expr::parse`] (bare or prefixed references).
impl<'de> serde::Deserialize<'de> for Expr {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Expr, D::Error> {
        let src = String::deserialize(deserializer)?;
        Expr::parse(&src).map_err(serde::de::Error::custom)
    }
}
