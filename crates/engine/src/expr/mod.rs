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
//! - Limits, each a parse error that names it: [`MAX_EXPRESSION_BYTES`] of text, [`MAX_DEPTH`] levels of
//!   parentheses and `NOT`, [`MAX_PATH_SEGMENTS`] steps in a reference. Within them, parsing costs time
//!   and memory linear in the length of the text, and no recursion goes deeper than [`MAX_DEPTH`]. Text
//!   read back from the store is held only to [`MAX_DEPTH`] (see `Origin`).
//!
//! # Semantics (Twilio documents few of these; the choices are ours)
//!
//! - NULL is a missing key or JSON `null`. `x == null` is true when `x` is NULL, `x != null` when it is
//!   not, whatever the type of `x` (so `preferred_agents != null` works on arrays).
//! - A **numeric string** is a string that is, whole, a number constant as written above (`"6"`, `"-2"`,
//!   `"5.1"`, `"1e3"`, `"007"`; not `" 6"`, `"+6"`, `".5"`, `"5."`, `"0x10"`, `"NaN"`). Against a number,
//!   in every scalar comparison (`==`, `!=`, `<`, `<=`, `>`, `>=`, and the element tests of `HAS`, `IN`,
//!   `NOT IN`), it compares as that number, on either side: Twilio's TaskQueue resource page matches
//!   `EvaluateWorkerAttributes={"tech_support_skill": "6"}` to the queue `tech_support_skill > 5`. The
//!   docs show only `>`; applying it to all of them keeps `x == 6` in step with `x >= 6 AND x <= 6`. Two
//!   strings still compare as strings (`"10" < "9"`), and booleans never as numbers.
//! - `==`/`!=` on scalars: numbers compare numerically (`1 == 1.0`), strings exactly (case-sensitive),
//!   booleans with booleans. Across other scalar types `==` is false and **`!=` is true**: `!=` is always
//!   the negation of `==` for scalars and NULL, so `object.param != "apple"` holds when `param` is missing.
//!   `==` and `!=` with an array or object on either side are false (Twilio: "scalar operators applied to
//!   arrays are false"), except the NULL tests above.
//! - `<`, `<=`, `>`, `>=`: numbers numerically (a numeric string against a number too), strings
//!   lexicographically by Unicode code point; anything else (NULL, booleans, arrays, other mixed types) is
//!   false.
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
use std::hash::{Hash, Hasher};
use std::str::FromStr;
use std::sync::Arc;

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

/// Longest expression accepted, in bytes of UTF-8: queue `target_workers`, workflow filter and target
/// expressions, `skip_if`, `order_by`, known-worker references and the Worker list's
/// `TargetWorkersExpression`.
///
/// Twilio publishes no limit. Expressions are evaluated against task and worker attributes, which Twilio
/// caps at 4,096 characters; the longest real expressions are `IN` lists of names or SIDs (400 SIDs of 34
/// characters plus quotes is 15 KB), so 16 KiB is four times the attributes they read and still bounds
/// the work of one parse. A 1 MB form field is refused before it is read into tokens.
pub const MAX_EXPRESSION_BYTES: usize = 16 * 1024;

/// Deepest nesting of parentheses and prefix `NOT` accepted.
///
/// The parser, the evaluator and the renderer recurse once per level, so this bounds their stack (a few
/// hundred bytes per level, so well under 100 KB even in a debug build, on any thread). Real expressions
/// nest two or three levels; 64 is what this engine has always accepted.
pub const MAX_DEPTH: usize = 64;

/// Most keys and indexes after a reference's root (`task.a.b[0]` has three).
///
/// Real paths have one to four (`task.customer.address.city`); 32 is eight times that. Worker and task
/// attributes (at most 4,096 characters) can nest deeper than that only as a curiosity, and a path is
/// looked up step by step at every evaluation, against every worker of a queue, so its length is work.
pub const MAX_PATH_SEGMENTS: usize = 32;

/// Where a text to parse comes from, which decides the limits it must meet.
///
/// [`MAX_EXPRESSION_BYTES`] and [`MAX_PATH_SEGMENTS`] are input validation at the API: they came after
/// versions that accepted and stored longer expressions. Data once accepted must load as it was accepted:
/// restore re-parses every stored queue and workflow, and enforcing those two there would stop the engine
/// from starting on one old workflow, or leave an old queue quietly matching nobody. Stored text costs
/// what it cost when it was accepted (parsing is linear in its length), so waiving them risks nothing new.
/// [`MAX_DEPTH`] holds for both: it protects the stack, and nothing deeper was ever accepted.
///
/// Crate-private, so nothing outside the engine can parse past the limits; only `Core::restore` says
/// [`Origin::Stored`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// A request: every limit applies.
    Input,
    /// Text the engine accepted and stored before: only [`MAX_DEPTH`] applies.
    Stored,
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
/// `object.array[2]` to the task's scope without allocating per evaluation. A path and all its tails share
/// one list of steps, each tail adding one small box: the tails of an `n`-step path cost `O(n)`, where
/// copying the remaining steps into each tail cost `O(n²)` (5,000 steps took 1.2 GB).
pub struct Path {
    /// The root as a [`Segment::Key`], then the segments; shared by the path and every tail below it.
    steps: Arc<[Segment]>,
    /// Where this path's root is in `steps`: 0 for a parsed path, `n` for its `n`-th tail. Always a key.
    start: usize,
    /// The path rooted at the next step, when that step is a key.
    tail: Option<Box<Path>>,
}

impl Path {
    pub(crate) fn new(root: String, segments: Vec<Segment>) -> Path {
        let mut steps = Vec::with_capacity(1 + segments.len());
        steps.push(Segment::Key(root));
        steps.extend(segments);
        Path::rooted_at(steps.into(), 0)
    }

    /// The path whose root is `steps[start]` (a key), with its chain of tails. Built from the last step
    /// back, so no recursion however long the path.
    fn rooted_at(steps: Arc<[Segment]>, start: usize) -> Path {
        let mut tail = None;
        for at in (start + 1..steps.len()).rev() {
            tail = match steps[at] {
                Segment::Key(_) => Some(Box::new(Path { steps: steps.clone(), start: at, tail })),
                Segment::Index(_) => None,
            };
        }
        Path { steps, start, tail }
    }

    /// The first key, e.g. `task` in `task.language`.
    pub fn root(&self) -> &str {
        match &self.steps[self.start] {
            Segment::Key(key) => key,
            // `start` always names a key (see `rooted_at`'s callers); an empty root would match nothing.
            Segment::Index(_) => "",
        }
    }

    /// The steps after the root.
    pub fn segments(&self) -> &[Segment] {
        &self.steps[self.start + 1..]
    }

    /// The path without its root (`language` for `task.language`); `None` for a one-key path or when an
    /// index follows the root (`x[0]`).
    pub fn tail(&self) -> Option<&Path> {
        self.tail.as_deref()
    }

    /// Looks the path up in a JSON object: the root is a key of `value`, then each segment in turn.
    /// `None` when any step is missing or of the wrong type. Borrows; never allocates.
    pub fn lookup<'v>(&self, value: &'v Value) -> Option<&'v Value> {
        let mut at = value.as_object()?.get(self.root())?;
        for segment in self.segments() {
            at = match segment {
                Segment::Key(key) => at.as_object()?.get(key)?,
                Segment::Index(index) => at.as_array()?.get(*index)?,
            };
        }
        Some(at)
    }

    /// What the parsed form holds, in steps and key bytes, counting the shared steps once and each tail
    /// as one: the measure the resource tests bound by the length of the source.
    #[cfg(test)]
    pub(crate) fn cost(&self) -> usize {
        let keys: usize = self.steps[self.start..]
            .iter()
            .map(|s| match s {
                Segment::Key(key) => key.len(),
                Segment::Index(_) => 1,
            })
            .sum();
        let tails = std::iter::successors(self.tail(), |t| t.tail()).count();
        self.steps.len() - self.start + keys + tails
    }

    /// Whether `other` shares this path's steps rather than holding a copy (for the resource tests).
    #[cfg(test)]
    pub(crate) fn shares_steps_with(&self, other: &Path) -> bool {
        Arc::ptr_eq(&self.steps, &other.steps)
    }
}

/// Rebuilds the chain of tails over the same shared steps, without recursion.
impl Clone for Path {
    fn clone(&self) -> Path {
        Path::rooted_at(self.steps.clone(), self.start)
    }
}

/// Unlinks the chain of tails one by one: the derived drop would recurse once per step.
impl Drop for Path {
    fn drop(&mut self) {
        let mut next = self.tail.take();
        while let Some(mut path) = next {
            next = path.tail.take();
        }
    }
}

/// Equal when the root and segments are (a tail equals a parsed path with the same text).
impl PartialEq for Path {
    fn eq(&self, other: &Path) -> bool {
        self.steps[self.start..] == other.steps[other.start..]
    }
}

impl Eq for Path {}

impl Hash for Path {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.steps[self.start..].hash(state);
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.root())?;
        for segment in self.segments() {
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
        Expr::parse_from(src, Origin::Input)
    }

    /// [`Expr::parse`] with the limits of `origin`.
    pub(crate) fn parse_from(src: &str, origin: Origin) -> Result<Expr, ParseError> {
        Ok(Expr { source: src.to_owned(), root: parser::parse(src, RefRule::Any, origin)? })
    }

    /// Parses a workflow target expression: every reference must start with `task.` or `worker.` and name
    /// something below it; the error gives the position and text of the first one that does not.
    pub fn parse_target(src: &str) -> Result<Expr, ParseError> {
        Expr::parse_target_from(src, Origin::Input)
    }

    /// [`Expr::parse_target`] with the limits of `origin`.
    pub(crate) fn parse_target_from(src: &str, origin: Origin) -> Result<Expr, ParseError> {
        Ok(Expr { source: src.to_owned(), root: parser::parse(src, RefRule::TaskOrWorker, origin)? })
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

/// `Display`, `FromStr` and serde for the parsed forms that keep their source text (`source()`) and are
/// made by `parse`: shown and serialized as that text, so stored queues and workflows keep what the user
/// wrote, and read back with `parse` (for [`Expr`], bare or prefixed references).
macro_rules! source_text {
    ($($ty:ident),*) => {$(
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.source())
            }
        }

        impl FromStr for $ty {
            type Err = ParseError;

            fn from_str(s: &str) -> Result<$ty, ParseError> {
                $ty::parse(s)
            }
        }

        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.source())
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<$ty, D::Error> {
                let src = String::deserialize(deserializer)?;
                $ty::parse(&src).map_err(serde::de::Error::custom)
            }
        }
    )*};
}

source_text!(Expr, OrderBy, TaskRef);
