//! Turns expression text into tokens, one at a time, with char positions for error messages.
//!
//! Paths (`object.array[2]`) are lexed as one token so that keys after a dot may start with a digit and may
//! be keywords (`task.in`), and so that the parser never has to ask whether whitespace separated them.
//! The lexer is pulled by the parser, so the first error reported is the leftmost one.

use super::parser::Op;
use super::{Origin, ParseError, Path, Segment, MAX_EXPRESSION_BYTES, MAX_PATH_SEGMENTS};
use serde_json::Number;

/// Largest index accepted in `[n]`; larger ones cannot exist in any JSON array the engine holds.
const MAX_INDEX: usize = u32::MAX as usize;

/// The words that are not references. Matched case-insensitively.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keyword {
    And,
    Or,
    Not,
    In,
    Has,
    Contains,
    True,
    False,
    Null,
}

impl Keyword {
    fn from_word(word: &str) -> Option<Keyword> {
        const WORDS: [(&str, Keyword); 9] = [
            ("and", Keyword::And),
            ("or", Keyword::Or),
            ("not", Keyword::Not),
            ("in", Keyword::In),
            ("has", Keyword::Has),
            ("contains", Keyword::Contains),
            ("true", Keyword::True),
            ("false", Keyword::False),
            ("null", Keyword::Null),
        ];
        WORDS.iter().find(|(w, _)| w.eq_ignore_ascii_case(word)).map(|(_, k)| *k)
    }
}

/// One token. Literals are already JSON values so evaluation compares `&Value` with `&Value`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Str(String),
    Num(Number),
    Path(Path),
    Word(Keyword),
    /// A symbolic comparison, its alias folded: `==` and `=` are [`Op::Eq`], `>-` is HAS and `<-` is IN.
    Op(Op),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    End,
}

/// A token and the char range `[start, end)` it came from.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub tok: Tok,
    pub start: usize,
    pub end: usize,
}

pub(crate) struct Lexer {
    chars: Vec<char>,
    pos: usize,
    /// Most steps after a path's root: [`MAX_PATH_SEGMENTS`] for input, none for stored text.
    max_segments: usize,
}

/// The value of a number's text as [`Lexer::number`] scanned it: an integer within 64 bits stays exact
/// (`float` false), anything else is read as a finite `f64`.
fn number_value(text: &str, float: bool) -> Option<Number> {
    let exact = if float {
        None
    } else {
        text.parse::<i64>().ok().map(Number::from).or_else(|| text.parse::<u64>().ok().map(Number::from))
    };
    exact.or_else(|| text.parse::<f64>().ok().and_then(Number::from_f64))
}

/// The number a whole string spells in the form of a number constant (`6`, `-2`, `5.1`, `1e3`; no sign
/// `+`, no spaces, no `.5` or `5.`), or `None`. What evaluation calls a numeric string. Does not allocate.
pub(super) fn numeric_string(text: &str) -> Option<Number> {
    let bytes = text.as_bytes();
    let digits = |from: usize| from + bytes[from..].iter().take_while(|b| b.is_ascii_digit()).count();
    let mut pos = usize::from(bytes.first() == Some(&b'-'));
    let end = digits(pos);
    if end == pos {
        return None;
    }
    pos = end;
    let mut float = false;
    if bytes.get(pos) == Some(&b'.') {
        let end = digits(pos + 1);
        if end == pos + 1 {
            return None;
        }
        (pos, float) = (end, true);
    }
    if matches!(bytes.get(pos), Some(b'e' | b'E')) {
        let sign = usize::from(matches!(bytes.get(pos + 1), Some(b'+' | b'-')));
        let end = digits(pos + 1 + sign);
        if end == pos + 1 + sign {
            return None;
        }
        (pos, float) = (end, true);
    }
    if pos != bytes.len() {
        return None;
    }
    number_value(text, float)
}

fn is_key_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn is_key_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

impl Lexer {
    /// A lexer over `src`, or the length-limit error when `src` is input longer than
    /// [`MAX_EXPRESSION_BYTES`]: checked before anything is read, so the work of refusing a long text does
    /// not grow with it. Stored text meets neither that limit nor [`MAX_PATH_SEGMENTS`] (see [`Origin`]).
    pub fn new(src: &str, origin: Origin) -> Result<Lexer, ParseError> {
        if origin == Origin::Input && src.len() > MAX_EXPRESSION_BYTES {
            // Positions are in chars: the first char that does not fit.
            let position =
                src.char_indices().take_while(|(at, c)| at + c.len_utf8() <= MAX_EXPRESSION_BYTES).count();
            return Err(ParseError {
                position,
                expected: format!(
                    "an expression of at most {MAX_EXPRESSION_BYTES} bytes (the limit on an expression's length)"
                ),
                found: format!("one of {} bytes; shorten it, e.g. by moving long lists into attributes", src.len()),
            });
        }
        let max_segments = match origin {
            Origin::Input => MAX_PATH_SEGMENTS,
            Origin::Stored => usize::MAX,
        };
        Ok(Lexer { chars: src.chars().collect(), pos: 0, max_segments })
    }

    /// The source text of chars `[start, end)`, shortened for error messages.
    pub fn excerpt(&self, start: usize, end: usize) -> String {
        const MAX: usize = 30;
        let end = end.min(self.chars.len());
        let start = start.min(end);
        let text: String = self.chars[start..end].iter().take(MAX).collect();
        if end - start > MAX {
            format!("`{text}…`")
        } else {
            format!("`{text}`")
        }
    }

    /// How a token is named in "found …".
    pub fn describe(&self, token: &Token) -> String {
        match token.tok {
            Tok::End => "end of expression".to_owned(),
            _ => self.excerpt(token.start, token.end),
        }
    }

    fn peek_at(&self, offset: usize) -> Option<char> {
        self.chars.get(self.pos + offset).copied()
    }

    fn error(&self, position: usize, expected: impl Into<String>, found: impl Into<String>) -> ParseError {
        ParseError { position, expected: expected.into(), found: found.into() }
    }

    fn found_char(&self, at: usize) -> String {
        match self.chars.get(at) {
            None => "end of expression".to_owned(),
            Some(c) => format!("`{c}`"),
        }
    }

    pub fn next_token(&mut self) -> Result<Token, ParseError> {
        while self.peek_at(0).is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
        let start = self.pos;
        let Some(c) = self.peek_at(0) else {
            return Ok(Token { tok: Tok::End, start, end: start });
        };
        let two = self.peek_at(1);
        let (tok, len) = match (c, two) {
            ('=', Some('=')) => (Tok::Op(Op::Eq), 2),
            ('=', _) => (Tok::Op(Op::Eq), 1),
            ('!', Some('=')) => (Tok::Op(Op::Ne), 2),
            ('!', _) => return Err(self.error(start + 1, "`=` after `!`", self.found_char(start + 1))),
            ('<', Some('=')) => (Tok::Op(Op::Le), 2),
            ('<', Some('-')) => (Tok::Op(Op::In), 2),
            ('<', _) => (Tok::Op(Op::Lt), 1),
            ('>', Some('=')) => (Tok::Op(Op::Ge), 2),
            ('>', Some('-')) => (Tok::Op(Op::Has), 2),
            ('>', _) => (Tok::Op(Op::Gt), 1),
            ('(', _) => (Tok::LParen, 1),
            (')', _) => (Tok::RParen, 1),
            ('[', _) => (Tok::LBracket, 1),
            (']', _) => (Tok::RBracket, 1),
            (',', _) => (Tok::Comma, 1),
            ('"' | '\'', _) => return self.string(c),
            ('0'..='9', _) => return self.number(),
            ('-', Some('0'..='9')) => return self.number(),
            ('-', _) => {
                return Err(self.error(
                    start,
                    "a value, an operator or a parenthesis (hyphens are not supported in keys)",
                    "`-`",
                ))
            }
            _ if is_key_start(c) => return self.word(),
            _ => {
                return Err(self.error(start, "a value, an operator or a parenthesis", format!("`{c}`")));
            }
        };
        self.pos += len;
        Ok(Token { tok, start, end: self.pos })
    }

    fn string(&mut self, quote: char) -> Result<Token, ParseError> {
        let start = self.pos;
        self.pos += 1;
        let mut text = String::new();
        loop {
            match self.peek_at(0) {
                None => {
                    return Err(self.error(
                        self.pos,
                        format!("a closing {quote} for the string that starts at position {start}"),
                        "end of expression",
                    ))
                }
                Some(c) if c == quote => {
                    self.pos += 1;
                    return Ok(Token { tok: Tok::Str(text), start, end: self.pos });
                }
                Some('\\') => {
                    let escaped = match self.peek_at(1) {
                        Some('\\') => '\\',
                        Some('"') => '"',
                        Some('\'') => '\'',
                        Some('n') => '\n',
                        Some('t') => '\t',
                        Some('r') => '\r',
                        _ => {
                            return Err(self.error(
                                self.pos + 1,
                                "one of \\\\ \\\" \\' \\n \\t \\r after a backslash",
                                self.found_char(self.pos + 1),
                            ))
                        }
                    };
                    text.push(escaped);
                    self.pos += 2;
                }
                Some(c) => {
                    text.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    fn digits(&mut self) -> usize {
        let from = self.pos;
        while self.peek_at(0).is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        self.pos - from
    }

    fn number(&mut self) -> Result<Token, ParseError> {
        let start = self.pos;
        if self.peek_at(0) == Some('-') {
            self.pos += 1;
        }
        self.digits();
        let mut float = false;
        if self.peek_at(0) == Some('.') && self.peek_at(1).is_some_and(|c| c.is_ascii_digit()) {
            float = true;
            self.pos += 1;
            self.digits();
        }
        if matches!(self.peek_at(0), Some('e' | 'E')) {
            let sign = usize::from(matches!(self.peek_at(1), Some('+' | '-')));
            if self.peek_at(1 + sign).is_some_and(|c| c.is_ascii_digit()) {
                float = true;
                self.pos += 1 + sign;
                self.digits();
            }
        }
        let text: String = self.chars[start..self.pos].iter().collect();
        match number_value(&text, float) {
            Some(n) => Ok(Token { tok: Tok::Num(n), start, end: self.pos }),
            None => {
                Err(self.error(start, "a number within the range of a 64-bit float", format!("`{text}`")))
            }
        }
    }

    fn key(&mut self) -> String {
        let from = self.pos;
        while self.peek_at(0).is_some_and(is_key_char) {
            self.pos += 1;
        }
        self.chars[from..self.pos].iter().collect()
    }

    /// A keyword or a path: `root(.key | [n])*`. Keys after a dot may start with a digit.
    fn word(&mut self) -> Result<Token, ParseError> {
        let start = self.pos;
        let root = self.key();
        let mut segments = Vec::new();
        loop {
            if segments.len() == self.max_segments && matches!(self.peek_at(0), Some('.' | '[')) {
                return Err(self.error(
                    self.pos,
                    format!(
                        "the end of the reference: it may have at most {MAX_PATH_SEGMENTS} keys and indexes \
                         after its root (the limit on a reference's length)"
                    ),
                    format!("key or index number {}", MAX_PATH_SEGMENTS + 1),
                ));
            }
            match self.peek_at(0) {
                Some('.') => {
                    self.pos += 1;
                    if !self.peek_at(0).is_some_and(is_key_char) {
                        return Err(self.error(self.pos, "a key after `.`", self.found_char(self.pos)));
                    }
                    segments.push(Segment::Key(self.key()));
                }
                Some('[') => {
                    self.pos += 1;
                    let digits_start = self.pos;
                    if self.digits() == 0 {
                        return Err(self.error(
                            self.pos,
                            "an array index (0, 1, 2, …) after `[`",
                            self.found_char(self.pos),
                        ));
                    }
                    let text: String = self.chars[digits_start..self.pos].iter().collect();
                    let index = match text.parse::<usize>() {
                        Ok(i) if i <= MAX_INDEX => i,
                        _ => {
                            return Err(self.error(
                                digits_start,
                                format!("an array index of at most {MAX_INDEX}"),
                                format!("`{text}`"),
                            ))
                        }
                    };
                    if self.peek_at(0) != Some(']') {
                        return Err(self.error(
                            self.pos,
                            "`]` after the array index",
                            self.found_char(self.pos),
                        ));
                    }
                    self.pos += 1;
                    segments.push(Segment::Index(index));
                }
                Some('-') if self.peek_at(1).is_some_and(is_key_start) => {
                    return Err(self.error(
                        self.pos,
                        "an operator (hyphens are not supported in keys; use `_`)",
                        "`-`",
                    ));
                }
                _ => break,
            }
        }
        let tok = match (segments.is_empty(), Keyword::from_word(&root)) {
            (true, Some(keyword)) => Tok::Word(keyword),
            _ => Tok::Path(Path::new(root, segments)),
        };
        Ok(Token { tok, start, end: self.pos })
    }
}
