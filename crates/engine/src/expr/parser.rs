//! Recursive-descent parser from tokens to the syntax tree, and the canonical rendering of that tree.
//!
//! Grammar (keywords case-insensitive):
//!
//! ```text
//! or         := and (OR and)*
//! and        := unary (AND unary)*
//! unary      := NOT unary | '(' or ')' | condition
//! condition  := operand (op operand | NOT IN operand)?     -- a bare operand only for paths and true/false
//! operand    := string | number | true | false | null | path | '[' (literal (',' literal)*)? ']'
//! op         := == | = | != | < | <= | > | >= | CONTAINS | HAS | >- | IN | <-
//! ```
//!
//! Nesting (parentheses and `NOT`) is limited to [`MAX_DEPTH`] so hostile input cannot overflow the stack.

use super::lexer::{Keyword, Lexer, Tok, Token};
use super::{Origin, ParseError, Path, MAX_DEPTH};
use serde_json::Value;
use std::fmt;

/// A comparison operator. Aliases (`=`, `>-`, `<-`) are folded into their canonical form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Contains,
    Has,
    In,
    NotIn,
}

impl Op {
    #[cfg(test)]
    pub(crate) const ALL: [Op; 10] =
        [Op::Eq, Op::Ne, Op::Lt, Op::Le, Op::Gt, Op::Ge, Op::Contains, Op::Has, Op::In, Op::NotIn];

    fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Contains => "CONTAINS",
            Op::Has => "HAS",
            Op::In => "IN",
            Op::NotIn => "NOT IN",
        }
    }
}

/// One side of a comparison: a constant (already a JSON value) or a reference resolved at evaluation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Operand {
    Literal(Value),
    Ref(Path),
}

/// The syntax tree. `And`/`Or` hold at least two children; parentheses leave no node of their own.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Or(Vec<Node>),
    And(Vec<Node>),
    Not(Box<Node>),
    Compare {
        left: Operand,
        op: Op,
        right: Operand,
    },
    /// A bare path or `true`/`false`: true when the value is JSON `true`.
    Truthy(Operand),
}

/// Which references a parse accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefRule {
    /// Any path.
    Any,
    /// Only `task.…` and `worker.…` (workflow target expressions).
    TaskOrWorker,
}

pub(crate) struct Parser {
    lexer: Lexer,
    current: Token,
    rule: RefRule,
    depth: usize,
}

/// Parses a whole expression.
pub(crate) fn parse(src: &str, rule: RefRule, origin: Origin) -> Result<Node, ParseError> {
    let mut lexer = Lexer::new(src, origin)?;
    let current = lexer.next_token()?;
    let mut parser = Parser { lexer, current, rule, depth: 0 };
    let node = parser.or("a condition")?;
    if parser.current.tok != Tok::End {
        let expected = if matches!(parser.current.tok, Tok::RParen) {
            "AND, OR or end of expression (this `)` has no matching `(`)"
        } else {
            "AND, OR or end of expression"
        };
        return Err(parser.unexpected(expected));
    }
    Ok(node)
}

impl Parser {
    fn advance(&mut self) -> Result<Token, ParseError> {
        let next = self.lexer.next_token()?;
        Ok(std::mem::replace(&mut self.current, next))
    }

    fn unexpected(&self, expected: impl Into<String>) -> ParseError {
        ParseError {
            position: self.current.start,
            expected: expected.into(),
            found: self.lexer.describe(&self.current),
        }
    }

    fn at_word(&self, keyword: Keyword) -> bool {
        self.current.tok == Tok::Word(keyword)
    }

    /// `what` names what must come next, for the error when nothing valid does.
    fn or(&mut self, what: &str) -> Result<Node, ParseError> {
        self.joined(what, Keyword::Or, "a condition after OR", Self::and, Node::Or)
    }

    fn and(&mut self, what: &str) -> Result<Node, ParseError> {
        self.joined(what, Keyword::And, "a condition after AND", Self::unary, Node::And)
    }

    /// `part (keyword part)*`: a single part as itself, more than one under `join`. `after` names what
    /// must follow the keyword.
    fn joined(
        &mut self,
        what: &str,
        keyword: Keyword,
        after: &str,
        part: fn(&mut Self, &str) -> Result<Node, ParseError>,
        join: fn(Vec<Node>) -> Node,
    ) -> Result<Node, ParseError> {
        let mut children = vec![part(self, what)?];
        while self.at_word(keyword) {
            self.advance()?;
            children.push(part(self, after)?);
        }
        Ok(if children.len() == 1 { children.remove(0) } else { join(children) })
    }

    fn nest(&mut self) -> Result<(), ParseError> {
        if self.depth >= MAX_DEPTH {
            return Err(self.unexpected(format!(
                "at most {MAX_DEPTH} levels of parentheses and NOT (the limit on nesting)"
            )));
        }
        self.depth += 1;
        Ok(())
    }

    fn unary(&mut self, what: &str) -> Result<Node, ParseError> {
        match self.current.tok {
            Tok::Word(Keyword::Not) => {
                self.nest()?;
                self.advance()?;
                let inner = self.unary("a condition after NOT")?;
                self.depth -= 1;
                Ok(Node::Not(Box::new(inner)))
            }
            Tok::LParen => {
                self.nest()?;
                let open = self.advance()?;
                let inner = self.or("a condition after `(`")?;
                if self.current.tok != Tok::RParen {
                    return Err(self
                        .unexpected(format!("AND, OR or `)` to close the `(` at position {}", open.start)));
                }
                self.advance()?;
                self.depth -= 1;
                Ok(inner)
            }
            _ => self.condition(what),
        }
    }

    fn condition(&mut self, what: &str) -> Result<Node, ParseError> {
        let left_token = self.current.clone();
        let left = self.operand(what)?;
        let op = match self.current.tok {
            Tok::Op(op) => op,
            Tok::Word(Keyword::Has) => Op::Has,
            Tok::Word(Keyword::In) => Op::In,
            Tok::Word(Keyword::Contains) => Op::Contains,
            Tok::Word(Keyword::Not) => {
                self.advance()?;
                if !self.at_word(Keyword::In) {
                    return Err(self.unexpected("IN after NOT"));
                }
                Op::NotIn
            }
            _ => {
                // A bare condition only where one can end, so `language 'en'` asks for an operator.
                let bare_allowed = matches!(left, Operand::Ref(_) | Operand::Literal(Value::Bool(_)));
                let at_end = matches!(
                    self.current.tok,
                    Tok::End | Tok::RParen | Tok::Word(Keyword::And | Keyword::Or)
                );
                if bare_allowed && at_end {
                    return Ok(Node::Truthy(left));
                }
                return Err(self.unexpected(format!(
                    "an operator (==, !=, <, <=, >, >=, CONTAINS, HAS, IN, NOT IN) after {}",
                    self.lexer.describe(&left_token)
                )));
            }
        };
        self.advance()?;
        let right = self.operand(&format!("a value after {}", op.as_str()))?;
        Ok(Node::Compare { left, op, right })
    }

    fn operand(&mut self, what: &str) -> Result<Operand, ParseError> {
        let operand = match &self.current.tok {
            Tok::Path(path) => {
                if self.rule == RefRule::TaskOrWorker
                    && !(matches!(path.root(), "task" | "worker") && path.tail().is_some())
                {
                    return Err(ParseError {
                        position: self.current.start,
                        expected: "a reference starting with `task.` or `worker.` \
                                   (workflow target expressions name whose attribute they mean)"
                            .to_owned(),
                        found: self.lexer.describe(&self.current),
                    });
                }
                Operand::Ref(path.clone())
            }
            Tok::LBracket => return self.array().map(Operand::Literal),
            _ => match self.literal() {
                Some(value) => Operand::Literal(value),
                None => return Err(self.unexpected(what)),
            },
        };
        self.advance()?;
        Ok(operand)
    }

    /// The current token as a scalar constant, if it is one.
    fn literal(&self) -> Option<Value> {
        match &self.current.tok {
            Tok::Str(s) => Some(Value::String(s.clone())),
            Tok::Num(n) => Some(Value::Number(n.clone())),
            Tok::Word(Keyword::True) => Some(Value::Bool(true)),
            Tok::Word(Keyword::False) => Some(Value::Bool(false)),
            Tok::Word(Keyword::Null) => Some(Value::Null),
            _ => None,
        }
    }

    fn array(&mut self) -> Result<Value, ParseError> {
        let open = self.advance()?;
        let mut items = Vec::new();
        if self.current.tok == Tok::RBracket {
            self.advance()?;
            return Ok(Value::Array(items));
        }
        loop {
            let Some(item) = self.literal() else {
                return Err(self.unexpected("a string, number, true, false or null in the array"));
            };
            items.push(item);
            self.advance()?;
            match self.current.tok {
                Tok::Comma => {
                    self.advance()?;
                }
                Tok::RBracket => {
                    self.advance()?;
                    return Ok(Value::Array(items));
                }
                _ => {
                    return Err(self.unexpected(format!(
                        "`,` or `]` to close the array that starts at position {}",
                        open.start
                    )))
                }
            }
        }
    }
}

/// One item of a path list: a path, where it starts, and the word after it with its position.
pub(crate) struct ListItem {
    pub path: Path,
    pub position: usize,
    pub word: Option<(String, usize)>,
}

/// Parses a comma-separated list of paths, each optionally followed by one word (`ASC`/`DESC`), for
/// `order_by`.
pub(crate) fn parse_path_list(src: &str, origin: Origin) -> Result<Vec<ListItem>, ParseError> {
    let mut lexer = Lexer::new(src, origin)?;
    let mut out = Vec::new();
    loop {
        let token = lexer.next_token()?;
        let Tok::Path(path) = token.tok.clone() else {
            return Err(ParseError {
                position: token.start,
                expected: "a `worker.` attribute".to_owned(),
                found: lexer.describe(&token),
            });
        };
        let mut next = lexer.next_token()?;
        let mut word = None;
        if let Tok::Path(w) = &next.tok {
            if w.segments().is_empty() {
                word = Some((w.root().to_owned(), next.start));
                next = lexer.next_token()?;
            }
        }
        out.push(ListItem { path, position: token.start, word });
        match next.tok {
            Tok::Comma => continue,
            Tok::End => return Ok(out),
            _ => {
                return Err(ParseError {
                    position: next.start,
                    expected: "ASC, DESC, `,` or end of order_by".to_owned(),
                    found: lexer.describe(&next),
                })
            }
        }
    }
}

/// Parses exactly one path and nothing else. Returns it with its position.
pub(crate) fn parse_single_path(
    src: &str,
    expected: &str,
    origin: Origin,
) -> Result<(Path, usize), ParseError> {
    let mut lexer = Lexer::new(src, origin)?;
    let token = lexer.next_token()?;
    let Tok::Path(path) = token.tok.clone() else {
        return Err(ParseError {
            position: token.start,
            expected: expected.to_owned(),
            found: lexer.describe(&token),
        });
    };
    let next = lexer.next_token()?;
    if next.tok != Tok::End {
        return Err(ParseError {
            position: next.start,
            expected: "end of expression after the reference".to_owned(),
            found: lexer.describe(&next),
        });
    }
    Ok((path, token.start))
}

/// Writes a string constant so that the lexer reads it back unchanged.
fn write_string(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\t' => f.write_str("\\t")?,
            '\r' => f.write_str("\\r")?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("\"")
}

fn write_value(f: &mut fmt::Formatter<'_>, value: &Value) -> fmt::Result {
    match value {
        Value::String(s) => write_string(f, s),
        Value::Array(items) => {
            f.write_str("[")?;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write_value(f, item)?;
            }
            f.write_str("]")
        }
        // serde_json's writer keeps floats recognisable (`1.0`, not `1`), so they read back as floats.
        other => f.write_str(&serde_json::to_string(other).map_err(|_| fmt::Error)?),
    }
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Literal(value) => write_value(f, value),
            Operand::Ref(path) => write!(f, "{path}"),
        }
    }
}

impl Node {
    /// Whether this node needs parentheses when it appears inside AND, OR or NOT.
    fn is_compound(&self) -> bool {
        matches!(self, Node::Or(_) | Node::And(_))
    }

    fn write_child(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_compound() {
            write!(f, "({self})")
        } else {
            write!(f, "{self}")
        }
    }
}

/// The canonical text: one space around operators, `==` for `=`, upper-case keywords, double quotes, and
/// parentheses exactly where the tree has a nested AND/OR. Parsing it gives back the same tree.
impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::Or(children) | Node::And(children) => {
                let sep = if matches!(self, Node::Or(_)) { " OR " } else { " AND " };
                for (i, child) in children.iter().enumerate() {
                    if i > 0 {
                        f.write_str(sep)?;
                    }
                    child.write_child(f)?;
                }
                Ok(())
            }
            Node::Not(inner) => {
                f.write_str("NOT ")?;
                inner.write_child(f)
            }
            Node::Compare { left, op, right } => write!(f, "{left} {} {right}", op.as_str()),
            Node::Truthy(operand) => write!(f, "{operand}"),
        }
    }
}
