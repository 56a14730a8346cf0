//! The small JSON path a scenario names a streamed field with: dotted keys and `[N]` or
//! `[*]` indices, `$.choices[*].delta.content`, the same spelling the scenario's JSON
//! checks take (`$.a.b[0]` or `a.b[0]`), plus `[*]` for every element. Parsed once,
//! when the endpoint is set up, with an error that says where and what was expected.
//!
//! Not here: evaluating a path against a payload (`json.rs` walks every path of an
//! endpoint in one pass over the payload). No filters, slices, quoted keys or `..`.

use std::fmt;
use std::str::FromStr;

/// One step of a [`JsonPath`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The value under this key of an object.
    Key(Box<str>),
    /// The element at this index of an array.
    Index(usize),
    /// Every element of an array (`[*]`): a content path finds content when any element
    /// has it, and a token path sums the whole numbers it finds.
    Each,
}

/// A JSON path: `$` (the whole value), then `.key`, `[N]` and `[*]` steps. The leading
/// `$` may be left out (`choices[*].text`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath {
    text: Box<str>,
    steps: Vec<Step>,
}

/// Why a JSON path does not parse: where (a 1-based column in the path) and what was
/// expected there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("json path `{path}`: column {column}: expected {expected}, found {found}")]
pub struct PathError {
    /// The path as written.
    pub path: String,
    /// 1-based column (in characters) of the first character that does not fit.
    pub column: usize,
    /// What the path needed there.
    pub expected: &'static str,
    /// What it had: a quoted character or `the end`.
    pub found: String,
}

impl JsonPath {
    /// Parses `text`: `$`, `$.a.b[0]`, `a.b[*].c`.
    pub fn parse(text: &str) -> Result<JsonPath, PathError> {
        let chars: Vec<char> = text.chars().collect();
        let err = |at: usize, expected: &'static str| PathError {
            path: text.to_string(),
            column: at + 1,
            expected,
            found: chars
                .get(at)
                .map_or_else(|| "the end".to_string(), |c| format!("`{c}`")),
        };
        let mut steps = Vec::new();
        let mut at = 0;
        if chars.first() == Some(&'$') {
            at = 1;
        } else {
            // A bare first key: `choices[*].text`.
            let key = key(&chars, &mut at);
            if key.is_empty() {
                return Err(err(at, "`$` or a key"));
            }
            steps.push(Step::Key(key.into()));
        }
        while at < chars.len() {
            match chars[at] {
                '.' => {
                    at += 1;
                    let key = key(&chars, &mut at);
                    if key.is_empty() {
                        return Err(err(at, "a key after `.`"));
                    }
                    steps.push(Step::Key(key.into()));
                }
                '[' => {
                    at += 1;
                    if chars.get(at) == Some(&'*') {
                        at += 1;
                        steps.push(Step::Each);
                    } else {
                        let start = at;
                        let mut n: usize = 0;
                        while let Some(d) = chars.get(at).and_then(|c| c.to_digit(10)) {
                            n = n
                                .checked_mul(10)
                                .and_then(|n| n.checked_add(d as usize))
                                .ok_or_else(|| err(start, "an index that fits in memory"))?;
                            at += 1;
                        }
                        if at == start {
                            return Err(err(at, "an index or `*` after `[`"));
                        }
                        steps.push(Step::Index(n));
                    }
                    if chars.get(at) != Some(&']') {
                        return Err(err(at, "`]`"));
                    }
                    at += 1;
                }
                _ => return Err(err(at, "`.` or `[`")),
            }
        }
        Ok(JsonPath {
            text: text.into(),
            steps,
        })
    }

    /// The steps from the whole value down; none for `$`.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// A key: the characters up to the next `.`, `[` or `]`.
fn key(chars: &[char], at: &mut usize) -> String {
    let start = *at;
    while *at < chars.len() && !matches!(chars[*at], '.' | '[' | ']') {
        *at += 1;
    }
    chars[start..*at].iter().collect()
}

impl FromStr for JsonPath {
    type Err = PathError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JsonPath::parse(s)
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(path: &str, expect: &str) {
        let got = match JsonPath::parse(path) {
            Ok(p) => p
                .steps()
                .iter()
                .map(|s| match s {
                    Step::Key(k) => format!(".{k}"),
                    Step::Index(n) => format!("[{n}]"),
                    Step::Each => "[*]".to_string(),
                })
                .collect::<String>(),
            Err(e) => e.to_string(),
        };
        assert_eq!(got, expect, "{path}");
    }

    #[test]
    fn paths_parse_to_steps_or_say_where_they_went_wrong() {
        check("$", "");
        check("$.choices[*].delta.content", ".choices[*].delta.content");
        check("choices[0].text", ".choices[0].text");
        check("$.a[12][*]", ".a[12][*]");
        check("$.usage.output_tokens", ".usage.output_tokens");
        check("$.tähti", ".tähti");
        check(
            "",
            "json path ``: column 1: expected `$` or a key, found the end",
        );
        check(
            "$.",
            "json path `$.`: column 3: expected a key after `.`, found the end",
        );
        check(
            "$.a..b",
            "json path `$.a..b`: column 5: expected a key after `.`, found `.`",
        );
        check(
            "$.a[x]",
            "json path `$.a[x]`: column 5: expected an index or `*` after `[`, found `x`",
        );
        check(
            "$.a[1",
            "json path `$.a[1`: column 6: expected `]`, found the end",
        );
        check(
            "$.a[*x]",
            "json path `$.a[*x]`: column 6: expected `]`, found `x`",
        );
        check(
            "$a",
            "json path `$a`: column 2: expected `.` or `[`, found `a`",
        );
        check(
            "$.a]",
            "json path `$.a]`: column 4: expected `.` or `[`, found `]`",
        );
        check(
            "[0]",
            "json path `[0]`: column 1: expected `$` or a key, found `[`",
        );
        check(
            "$[99999999999999999999999]",
            "json path `$[99999999999999999999999]`: column 3: expected an index that fits in memory, found `9`",
        );
    }
}
