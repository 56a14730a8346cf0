//! Diagnostics that point at a place in a file.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One problem in a file, with its position and a hint on how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// What is wrong, or what was expected.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.message
        )?;
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

/// Every problem found in a file (at least one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    /// In the order of the file: by file (as first met), then line and column.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut files: Vec<&PathBuf> = Vec::new();
        for d in &self.0 {
            if !files.contains(&&d.file) {
                files.push(&d.file);
            }
        }
        let mut sorted: Vec<&Diagnostic> = self.0.iter().collect();
        sorted.sort_by_key(|d| (files.iter().position(|f| **f == d.file), d.line, d.column));
        for (i, d) in sorted.into_iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

/// Collects diagnostics for one source text.
pub(crate) struct Sink<'a> {
    pub file: &'a Path,
    pub text: &'a str,
    pub found: Vec<Diagnostic>,
}

impl<'a> Sink<'a> {
    pub(crate) fn new(file: &'a Path, text: &'a str) -> Self {
        Sink {
            file,
            text,
            found: Vec::new(),
        }
    }

    /// Records a problem at byte offset `at`.
    pub(crate) fn at(
        &mut self,
        at: usize,
        message: impl Into<String>,
        hint: impl Into<Option<String>>,
    ) {
        let (line, column) = line_col(self.text, at);
        self.found.push(Diagnostic {
            file: self.file.to_path_buf(),
            line,
            column,
            message: message.into(),
            hint: hint.into(),
        });
    }

    /// Records a problem at the start of `span`.
    pub(crate) fn span(
        &mut self,
        span: Range<usize>,
        message: impl Into<String>,
        hint: impl Into<Option<String>>,
    ) {
        self.at(span.start, message, hint);
    }

    /// Offset of the first character inside a quoted string value at `span`.
    pub(crate) fn string_body_start(&self, span: &Range<usize>) -> usize {
        let src = self.text.get(span.clone()).unwrap_or("");
        if src.starts_with("\"\"\"") || src.starts_with("'''") {
            span.start + 3
        } else if src.starts_with('"') || src.starts_with('\'') {
            span.start + 1
        } else {
            span.start
        }
    }

    pub(crate) fn finish(self) -> Result<(), Diagnostics> {
        if self.found.is_empty() {
            Ok(())
        } else {
            Err(Diagnostics(self.found))
        }
    }
}

/// 1-based (line, column) of byte offset `at` in `text`; column counts characters.
pub fn line_col(text: &str, at: usize) -> (usize, usize) {
    let at = at.min(text.len());
    let at = (0..=at)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::line_col;

    #[test]
    fn positions_are_one_based_and_count_characters() {
        assert_eq!(line_col("abc", 0), (1, 1));
        assert_eq!(line_col("a\nbc", 3), (2, 2));
        assert_eq!(line_col("µs = 1", 3), (1, 3));
        assert_eq!(line_col("x", 99), (1, 2));
    }
}
