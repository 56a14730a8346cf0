//! Failures explained: per endpoint, the first few distinct explanations of its
//! failures (which check failed and what was found, which status and the start of its
//! body, why a connection failed), each with a count, and a count of the failures whose
//! explanation came after those were taken.
//!
//! Fixed, small memory: at most [`KEPT`] explanations of at most [`EXCERPT`] bytes of
//! text each, however many requests fail. Recording compares a cheap key (the caller's
//! hash of what it will explain) before anything is formatted, so a failure already
//! explained costs a comparison, and a success costs nothing (it is never recorded
//! here). Merging is exact: counts add, and the earlier side's explanations come first.
//!
//! Not here: what a failure means (the engine explains it) or masking secrets (the
//! caller redacts text before it is kept: cutting first could leave half a secret).

use serde::{Deserialize, Serialize};

use crate::Outcome;

/// How many distinct explanations an endpoint keeps.
pub const KEPT: usize = 5;

/// The most bytes of an explanation's text (`what`, `found`), a cut marked with `…`.
pub const EXCERPT: usize = 120;

/// One explanation of failures, and how many failed so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Failure {
    /// The outcome class of these failures.
    pub outcome: Outcome,
    /// What was expected or what went wrong: the check (`json $.status equals
    /// "healthy"`), the status (`status 503`), the transport's reason (`tls: invalid
    /// peer certificate: UnknownIssuer`). At most 120 bytes, control characters
    /// escaped, secrets masked.
    pub what: String,
    /// What was found instead: the value at a JSON path, the start of a body. At most
    /// 120 bytes, control characters escaped, secrets masked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub found: Option<String>,
    /// Failures so explained.
    pub count: u64,
    /// The recorder's cheap key of this explanation (not written: keys are compared
    /// only within one worker's shard).
    #[serde(skip)]
    #[schemars(skip)]
    key: u64,
}

/// An endpoint's failures explained ([`KEPT`] at most) and the count of the others.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Failures {
    /// The first distinct explanations, earliest first.
    #[serde(default)]
    pub examples: Vec<Failure>,
    /// Failures whose explanation was none of those (it came after they were taken).
    #[serde(default)]
    pub other: u64,
}

impl Failures {
    /// Counts one failure as `outcome`, whose explanation has the cheap `key` (equal
    /// keys must explain alike): to the explanation with that key, else to a new one
    /// from `explain` (`what`, `found`, called only then) while fewer than [`KEPT`]
    /// are kept, else to `other`.
    pub fn record(
        &mut self,
        outcome: Outcome,
        key: u64,
        explain: impl FnOnce() -> (String, Option<String>),
    ) {
        if let Some(f) = self
            .examples
            .iter_mut()
            .find(|f| f.key == key && f.outcome == outcome)
        {
            f.count += 1;
            return;
        }
        if self.examples.len() >= KEPT {
            self.other += 1;
            return;
        }
        let (what, found) = explain();
        let (what, found) = (excerpt(&what), found.as_deref().map(excerpt));
        if let Some(f) = self.same(outcome, &what, &found) {
            f.count += 1;
            return;
        }
        self.examples.push(Failure {
            outcome,
            what,
            found,
            count: 1,
            key,
        });
    }

    /// Adds `other`'s failures: to the same explanation, else as a new one while there
    /// is room, else to `other`; `self`'s come first (it is the earlier).
    pub fn merge_from(&mut self, other: &Failures) {
        for f in &other.examples {
            if let Some(g) = self.same(f.outcome, &f.what, &f.found) {
                g.count += f.count;
            } else if self.examples.len() < KEPT {
                self.examples.push(f.clone());
            } else {
                self.other += f.count;
            }
        }
        self.other += other.other;
    }

    /// Every failure counted: those explained and the others.
    pub fn total(&self) -> u64 {
        self.examples.iter().map(|f| f.count).sum::<u64>() + self.other
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.examples.is_empty() && self.other == 0
    }

    /// Applies `f` to every text kept (to mask secrets once more before output).
    pub fn texts_mut(&mut self, mut f: impl FnMut(&mut String)) {
        for e in &mut self.examples {
            f(&mut e.what);
            if let Some(found) = &mut e.found {
                f(found);
            }
        }
    }

    /// Forgets everything (keeps the list's room).
    pub fn clear(&mut self) {
        self.examples.clear();
        self.other = 0;
    }

    /// Bytes the explanations hold: at most [`KEPT`] times two excerpts.
    pub fn allocated_bytes(&self) -> usize {
        self.examples.capacity() * std::mem::size_of::<Failure>()
            + self
                .examples
                .iter()
                .map(|f| f.what.capacity() + f.found.as_ref().map_or(0, String::capacity))
                .sum::<usize>()
    }

    fn same(
        &mut self,
        outcome: Outcome,
        what: &str,
        found: &Option<String>,
    ) -> Option<&mut Failure> {
        self.examples
            .iter_mut()
            .find(|f| f.outcome == outcome && f.what == what && &f.found == found)
    }
}

/// `text` as an excerpt: control characters escaped (`\n`, `\t`, `\u{1b}`), at most
/// [`EXCERPT`] bytes, cut at a character boundary and marked with `…`.
pub fn excerpt(text: &str) -> String {
    const MORE: &str = "…";
    let mut out = String::with_capacity(text.len().min(EXCERPT + 8));
    for c in text.chars() {
        if out.len() > EXCERPT {
            break;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                use std::fmt::Write as _;
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    if out.len() > EXCERPT {
        let mut cut = EXCERPT - MORE.len();
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push_str(MORE);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_short_valid_and_escaped() {
        assert_eq!(excerpt("a\nb\u{1b}c"), "a\\nb\\u{1b}c");
        let long = "é".repeat(200);
        let e = excerpt(&long);
        assert!(e.len() <= EXCERPT && e.ends_with('…'), "{e}");
        assert_eq!(excerpt(&"x".repeat(EXCERPT)), "x".repeat(EXCERPT));
        let e = excerpt(&"x".repeat(EXCERPT + 1));
        assert!(e.len() <= EXCERPT && e.ends_with('…'));
    }

    #[test]
    fn memory_is_bounded_and_merge_is_exact() {
        let mut a = Failures::default();
        for i in 0..10_000u64 {
            a.record(Outcome::Http5xx, i % 50, || {
                (format!("status 5{:02}", i % 50), None)
            });
        }
        assert_eq!(a.examples.len(), KEPT);
        assert_eq!(a.total(), 10_000);
        // Explained once per key: the text of the first.
        assert_eq!(a.examples[0].what, "status 500");
        let before = a.allocated_bytes();
        for i in 0..10_000u64 {
            a.record(Outcome::Http5xx, 1_000 + i, || {
                unreachable!("no room: not formatted")
            });
        }
        assert_eq!(a.allocated_bytes(), before);
        let mut b = Failures::default();
        b.record(Outcome::Timeout, 7, || ("no answer".into(), None));
        b.record(Outcome::Http5xx, 99, || ("status 500".into(), None));
        let mut m = Failures::default();
        m.merge_from(&b);
        m.merge_from(&a);
        assert_eq!(m.total(), a.total() + b.total());
        assert_eq!(m.examples[0].what, "no answer");
        assert_eq!(m.examples[1].count, 1 + a.examples[0].count);
    }
}
