//! A small JSON path (`$.choices[*].delta.content`): dotted keys, array indices and the
//! `[*]` wildcard, parsed once when the scenario loads, so that a mistake is reported at
//! file:line:column and the engine only walks values.
//!
//! Not here: filters, recursive descent or slices (no scenario needs them), reading
//! bodies (the engine).

use serde_json::Value;

/// One step of a [`JsonPath`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathStep {
    /// An object's member.
    Key(String),
    /// An array's element.
    Index(usize),
    /// Every element of an array (or every member of an object).
    Any,
}

/// A parsed JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath {
    /// As written.
    pub text: String,
    /// Its steps from the top of the document.
    pub steps: Vec<PathStep>,
}

/// Why a path could not be parsed: where in it (a byte offset), and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at character {})", offset + 1)]
pub struct PathError {
    /// Byte offset in the path.
    pub offset: usize,
    /// What was wrong.
    pub message: String,
}

impl JsonPath {
    /// Parses `$.a.b[0].c[*]` (the leading `$` or `$.` is optional).
    pub fn parse(text: &str) -> Result<JsonPath, PathError> {
        let err = |offset: usize, message: &str| PathError {
            offset,
            message: message.to_string(),
        };
        let bytes = text.as_bytes();
        let mut i = 0;
        if bytes.first() == Some(&b'$') {
            i = 1;
            if bytes.get(1) == Some(&b'.') {
                i = 2;
            }
        }
        let mut steps = Vec::new();
        let mut key = String::new();
        let mut key_start = i;
        let flush = |key: &mut String, steps: &mut Vec<PathStep>| {
            if !key.is_empty() {
                steps.push(PathStep::Key(std::mem::take(key)));
            }
        };
        let chars: Vec<(usize, char)> = text.char_indices().filter(|(at, _)| *at >= i).collect();
        let mut k = 0;
        while k < chars.len() {
            let (at, c) = chars[k];
            match c {
                '.' => {
                    if key.is_empty()
                        && !matches!(steps.last(), Some(PathStep::Index(_) | PathStep::Any))
                    {
                        return Err(err(at, "expected a key before `.`"));
                    }
                    flush(&mut key, &mut steps);
                    key_start = at + 1;
                }
                '[' => {
                    flush(&mut key, &mut steps);
                    let close = chars[k..]
                        .iter()
                        .find(|(_, c)| *c == ']')
                        .map(|(end, _)| *end)
                        .ok_or_else(|| err(at, "`[` is not closed by `]`"))?;
                    let inside = &text[at + 1..close];
                    let step = if inside == "*" {
                        PathStep::Any
                    } else if !inside.is_empty() && inside.bytes().all(|b| b.is_ascii_digit()) {
                        PathStep::Index(
                            inside
                                .parse()
                                .map_err(|_| err(at + 1, "the index is too large"))?,
                        )
                    } else {
                        return Err(err(
                            at + 1,
                            "expected an index such as [0] or the wildcard [*]",
                        ));
                    };
                    steps.push(step);
                    while k < chars.len() && chars[k].0 < close {
                        k += 1;
                    }
                    // A key right after `]` must follow a `.`.
                    key_start = usize::MAX;
                }
                ']' => return Err(err(at, "`]` without `[`")),
                c => {
                    if key.is_empty() && key_start != at {
                        return Err(err(at, "expected `.` or `[` between steps"));
                    }
                    key.push(c);
                }
            }
            k += 1;
        }
        if text[i..].ends_with('.') {
            return Err(err(text.len() - 1, "expected a key after `.`"));
        }
        flush(&mut key, &mut steps);
        if steps.is_empty() {
            return Err(err(
                0,
                "expected at least one step, e.g. $.usage.completion_tokens",
            ));
        }
        Ok(JsonPath {
            text: text.to_string(),
            steps,
        })
    }

    /// Calls `f` with every value the path selects in `v`, in document order.
    pub fn each<'a>(&self, v: &'a Value, f: &mut impl FnMut(&'a Value)) {
        walk(&self.steps, v, f);
    }

    /// The first value the path selects in `v`.
    pub fn first<'a>(&self, v: &'a Value) -> Option<&'a Value> {
        let mut found = None;
        self.each(v, &mut |x| {
            if found.is_none() {
                found = Some(x);
            }
        });
        found
    }
}

fn walk<'a>(steps: &[PathStep], v: &'a Value, f: &mut impl FnMut(&'a Value)) {
    let Some((step, rest)) = steps.split_first() else {
        f(v);
        return;
    };
    match (step, v) {
        (PathStep::Key(k), Value::Object(m)) => {
            if let Some(x) = m.get(k) {
                walk(rest, x, f);
            }
        }
        (PathStep::Index(i), Value::Array(a)) => {
            if let Some(x) = a.get(*i) {
                walk(rest, x, f);
            }
        }
        (PathStep::Any, Value::Array(a)) => a.iter().for_each(|x| walk(rest, x, f)),
        (PathStep::Any, Value::Object(m)) => m.values().for_each(|x| walk(rest, x, f)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_parse_into_steps_or_say_where_they_are_wrong() {
        use PathStep::*;
        let key = |k: &str| Key(k.to_string());
        for (text, want) in [
            ("$.status", Ok(vec![key("status")])),
            ("status", Ok(vec![key("status")])),
            (
                "$.choices[*].delta.content",
                Ok(vec![key("choices"), Any, key("delta"), key("content")]),
            ),
            ("$.a[0][1]", Ok(vec![key("a"), Index(0), Index(1)])),
            ("$[0].x", Ok(vec![Index(0), key("x")])),
            ("$", Err(0)),
            ("$.a..b", Err(4)),
            ("$.a[x]", Err(4)),
            ("$.a[0", Err(3)),
            ("$.a]", Err(3)),
            ("$.a.", Err(3)),
            ("$.a[0]b", Err(6)),
        ] {
            let got = JsonPath::parse(text).map(|p| p.steps).map_err(|e| e.offset);
            assert_eq!(got, want, "{text}");
        }
    }

    #[test]
    fn a_wildcard_selects_every_element_in_order() {
        let v = json!({"choices": [{"delta": {"content": "a"}}, {"delta": {}}, {"delta": {"content": "b"}}]});
        let p = JsonPath::parse("$.choices[*].delta.content").unwrap();
        let mut seen = Vec::new();
        p.each(&v, &mut |x| seen.push(x.clone()));
        assert_eq!(seen, [json!("a"), json!("b")]);
        assert_eq!(p.first(&v), Some(&json!("a")));
        assert_eq!(JsonPath::parse("$.nope").unwrap().first(&v), None);
    }
}
