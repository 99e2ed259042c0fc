//! How ops commands print: aligned plain tables for people, `--json` for scripts, colours only when stdout
//! is a terminal and `NO_COLOR` is unset, and a progress line on stderr (only when stderr is a terminal) for
//! bulk operations.
//!
//! The colours are a handful of hand-written ANSI codes: a terminal-styling crate would be a dependency for
//! four escape sequences.

use std::io::{IsTerminal as _, Write as _};

use serde::Serialize;

/// A colour for a table cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// No colour.
    Plain,
    /// Good news: available, completed, created.
    Green,
    /// Needs attention: wrapping, reserved, changed.
    Yellow,
    /// Bad news: unavailable, failed, differs.
    Red,
    /// Less important: SIDs, reservations under their task.
    Dim,
}

impl Style {
    fn code(self) -> &'static str {
        match self {
            Style::Plain => "",
            Style::Green => "\x1b[32m",
            Style::Yellow => "\x1b[33m",
            Style::Red => "\x1b[31m",
            Style::Dim => "\x1b[2m",
        }
    }
}

/// Where and how a command prints.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    /// `--json`.
    pub json: bool,
    /// Colours on stdout.
    pub colour: bool,
}

impl Output {
    /// JSON when asked; colours only for a terminal without `NO_COLOR`.
    pub fn new(json: bool) -> Output {
        let colour = !json && std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        Output { json, colour }
    }

    /// Prints `value` as pretty JSON with a final newline.
    pub fn json<T: Serialize>(&self, value: &T) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(value)?;
        println!("{text}");
        Ok(())
    }

    /// `text` in `style`, when colours are on.
    pub fn paint(&self, text: &str, style: Style) -> String {
        if self.colour && style != Style::Plain {
            format!("{}{text}\x1b[0m", style.code())
        } else {
            text.to_owned()
        }
    }

    /// Prints a table (or nothing when it has no rows).
    pub fn table(&self, table: &Table) {
        print!("{}", table.render(self.colour));
    }
}

/// An aligned plain-text table: a header row and rows of cells, columns padded to their widest cell.
#[derive(Debug, Clone, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<(String, Style)>>,
}

impl Table {
    /// A table with these column titles.
    pub fn new(header: &[&str]) -> Table {
        Table { header: header.iter().map(|h| (*h).to_owned()).collect(), rows: Vec::new() }
    }

    /// Appends a row of uncoloured cells.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells.into_iter().map(|c| (c, Style::Plain)).collect());
    }

    /// Appends a row of coloured cells.
    pub fn styled(&mut self, cells: Vec<(String, Style)>) {
        self.rows.push(cells);
    }

    /// Whether no row was added.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as text; padding counts characters, so colour codes never break alignment.
    pub fn render(&self, colour: bool) -> String {
        let columns = self.rows.iter().map(Vec::len).chain([self.header.len()]).max().unwrap_or(0);
        let mut widths = vec![0usize; columns];
        let all = std::iter::once(self.header.iter().map(|h| h.as_str()).collect::<Vec<_>>())
            .chain(self.rows.iter().map(|r| r.iter().map(|(c, _)| c.as_str()).collect()));
        for row in all {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let out = Output { json: false, colour };
        let mut text = String::new();
        let mut line = |cells: Vec<(&str, Style)>| {
            let mut parts = Vec::new();
            let last = cells.len().saturating_sub(1);
            for (i, ((cell, style), width)) in cells.into_iter().zip(&widths).enumerate() {
                let pad = if i == last { 0 } else { width - cell.chars().count().min(*width) };
                parts.push(format!("{}{}", out.paint(cell, style), " ".repeat(pad)));
            }
            text.push_str(parts.join("  ").trim_end());
            text.push('\n');
        };
        line(self.header.iter().map(|h| (h.as_str(), Style::Plain)).collect());
        for row in &self.rows {
            line(row.iter().map(|(c, s)| (c.as_str(), *s)).collect());
        }
        text
    }
}

/// A one-line progress report on stderr (`label 3/10`), redrawn in place; silent unless stderr is a
/// terminal, so logs and pipes stay clean.
#[derive(Debug)]
pub struct Progress {
    label: String,
    total: usize,
    done: usize,
    active: bool,
}

impl Progress {
    /// Starts a progress line for `total` steps.
    pub fn new(label: &str, total: usize) -> Progress {
        let active = std::io::stderr().is_terminal() && total > 0;
        let progress = Progress { label: label.to_owned(), total, done: 0, active };
        progress.draw();
        progress
    }

    /// One more step done.
    pub fn step(&mut self) {
        self.done += 1;
        self.draw();
    }

    fn draw(&self) {
        if self.active {
            let mut err = std::io::stderr();
            let _ = write!(err, "\r{} {}/{}", self.label, self.done, self.total);
            let _ = err.flush();
        }
    }
}

impl Drop for Progress {
    /// Erases the line, so the report that follows starts clean.
    fn drop(&mut self) {
        if self.active {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_and_colours_do_not_count() {
        let mut table = Table::new(&["NAME", "STATUS"]);
        table.row(vec!["charles".into(), "Available".into()]);
        table.styled(vec![("ada".into(), Style::Plain), ("Offline".into(), Style::Red)]);
        assert_eq!(table.render(false), "NAME     STATUS\ncharles  Available\nada      Offline\n");
        let coloured = table.render(true);
        assert!(coloured.contains("ada      \x1b[31mOffline\x1b[0m"), "{coloured:?}");
    }
}
