//! What a flow's step reads out of an answer by JSON path: the value at the path, found
//! in one pass over the body that builds nothing but the value found (a login's token
//! costs its own bytes, not a tree of the whole answer), and that value as a template
//! inserts it.
//!
//! It answers exactly as parsing the whole body into a `serde_json::Value` and walking
//! the path would: `None` for a body that is not one JSON document (also for bytes that
//! are not UTF-8 anywhere in it), the last of duplicate keys, the first element of a
//! `[*]` that has the rest of the path (a `null` there included), a `null` found as
//! `Value::Null`. [`find_in`] is that walk, for a document already parsed.
//!
//! Not here: which captures a step takes or what a failed one means (`worker/flow.rs`),
//! stream events (`stream/`, whose paths are compiled into a key tree).

use std::fmt;

use loadgate_scenario::PathStep;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

/// The value at `steps` of the JSON document `body`, `null` included; `None` when the
/// path leads nowhere or `body` is not one JSON document.
pub fn find(body: &[u8], steps: &[PathStep]) -> Option<Value> {
    match seek(body, steps, None)? {
        Found::Value(v) => Some(v),
        Found::Written => None,
    }
}

/// [`find`] then [`text`], into `out`: a string found is copied into `out`'s own
/// buffer (a variable reused from one iteration to the next allocates nothing), any
/// other value written as [`text`] writes it. Whether a value was found; when none
/// was, `out` may hold part of one.
pub fn text_into(body: &[u8], steps: &[PathStep], out: &mut String) -> bool {
    match seek(body, steps, Some(out)) {
        Some(Found::Written) => true,
        Some(Found::Value(v)) => match text(v) {
            Some(t) => {
                *out = t;
                true
            }
            None => false,
        },
        None => false,
    }
}

fn seek(body: &[u8], steps: &[PathStep], out: Option<&mut String>) -> Option<Found> {
    // A Value parse refuses bytes that are not UTF-8 in any string; a skipped string is
    // not checked by the parser, so the whole body is (a fast check).
    let text = std::str::from_utf8(body).ok()?;
    let mut de = serde_json::Deserializer::from_str(text);
    let found = Seek { steps, out }.deserialize(&mut de).ok()?;
    de.end().ok()?;
    found
}

/// The value at `steps` of the parsed document `v`; with `[*]`, in the first element
/// that has one.
pub fn find_in<'a>(v: &'a Value, steps: &[PathStep]) -> Option<&'a Value> {
    let Some((first, rest)) = steps.split_first() else {
        return Some(v);
    };
    match first {
        PathStep::Key(k) => find_in(v.get(&**k)?, rest),
        PathStep::Index(i) => find_in(v.get(*i)?, rest),
        PathStep::Each => v.as_array()?.iter().find_map(|e| find_in(e, rest)),
    }
}

/// A found value as a template inserts it: a string as it is, a number or boolean as
/// written, an object or array as JSON; `null` is no value.
pub fn text(v: Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s),
        other => Some(other.to_string()),
    }
}

/// What a path led to.
enum Found {
    /// A value, built.
    Value(Value),
    /// A string, copied into the caller's buffer.
    Written,
}

/// Follows the rest of a path (`steps`) into the value being read: the value at its
/// end, built (a string copied into `out` when given); everything else skipped.
struct Seek<'p, 'o> {
    steps: &'p [PathStep],
    out: Option<&'o mut String>,
}

impl Seek<'_, '_> {
    /// The seek of the path's rest, into the same buffer.
    fn next<'p>(&mut self, rest: &'p [PathStep]) -> Seek<'p, '_> {
        Seek {
            steps: rest,
            out: self.out.as_deref_mut(),
        }
    }
}

impl<'de> DeserializeSeed<'de> for Seek<'_, '_> {
    type Value = Option<Found>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Option<Found>, D::Error> {
        match (self.steps.is_empty(), self.out) {
            (false, out) => d.deserialize_any(Seek {
                steps: self.steps,
                out,
            }),
            (true, None) => Value::deserialize(d).map(|v| Some(Found::Value(v))),
            (true, Some(out)) => d.deserialize_any(Leaf(out)).map(Some),
        }
    }
}

impl<'de> Visitor<'de> for Seek<'_, '_> {
    type Value = Option<Found>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    // A path that goes on into a scalar leads nowhere.
    fn visit_bool<E>(self, _: bool) -> Result<Option<Found>, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Option<Found>, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Option<Found>, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Option<Found>, E> {
        Ok(None)
    }
    fn visit_str<E>(self, _: &str) -> Result<Option<Found>, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Option<Found>, E> {
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Option<Found>, A::Error> {
        let (first, rest) = self.steps.split_first().expect("a step to take");
        let key = match first {
            PathStep::Key(k) => Some(&**k),
            PathStep::Index(_) | PathStep::Each => None,
        };
        let mut found = None;
        while let Some(matched) = map.next_key_seed(KeyIs(key))? {
            if matched {
                // The last of duplicate keys, as a parsed object keeps it.
                found = map.next_value_seed(self.next(rest))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Option<Found>, A::Error> {
        let (first, rest) = self.steps.split_first().expect("a step to take");
        let mut found = None;
        match first {
            PathStep::Index(i) => {
                let mut n = 0;
                loop {
                    if n == *i {
                        match seq.next_element_seed(self.next(rest))? {
                            Some(f) => found = f,
                            None => break,
                        }
                    } else if seq.next_element::<IgnoredAny>()?.is_none() {
                        break;
                    }
                    n += 1;
                }
            }
            PathStep::Each => {
                while found.is_none() {
                    match seq.next_element_seed(self.next(rest))? {
                        Some(f) => found = f,
                        None => return Ok(None),
                    }
                }
                while seq.next_element::<IgnoredAny>()?.is_some() {}
            }
            PathStep::Key(_) => while seq.next_element::<IgnoredAny>()?.is_some() {},
        }
        Ok(found)
    }
}

/// The value at a path's end, a string copied into the buffer, any other value built
/// as `Value` builds it.
struct Leaf<'o>(&'o mut String);

impl<'de> Visitor<'de> for Leaf<'_> {
    type Value = Found;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_str<E>(self, v: &str) -> Result<Found, E> {
        self.0.clear();
        self.0.push_str(v);
        Ok(Found::Written)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Found, E> {
        Ok(Found::Value(Value::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Found, E> {
        Ok(Found::Value(Value::Number(v.into())))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Found, E> {
        Ok(Found::Value(Value::Number(v.into())))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Found, E> {
        Ok(Found::Value(
            serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number),
        ))
    }
    fn visit_unit<E>(self) -> Result<Found, E> {
        Ok(Found::Value(Value::Null))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Found, A::Error> {
        Value::deserialize(de::value::MapAccessDeserializer::new(map)).map(Found::Value)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Found, A::Error> {
        Value::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(Found::Value)
    }
}

/// Whether an object's key is the one a path's step names (`None`: no key is).
struct KeyIs<'k>(Option<&'k str>);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E>(self, key: &str) -> Result<bool, E> {
        Ok(self.0 == Some(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use loadgate_scenario::JsonPath;

    /// Every path over every document: what the one pass finds is what parsing the
    /// whole document and walking the path finds.
    #[test]
    fn one_pass_finds_what_the_parsed_document_holds() {
        let docs: &[&[u8]] = &[
            br#"{"token":"tok-1","n":7}"#,
            br#"{"a":{"b":[1,{"c":"x"},{"c":null},{"c":2.50}]},"a2":true}"#,
            br#"{"k":1,"k":{"z":"last"}}"#,
            br#"{"items":[{"id":7,"tags":["a","b"]},{"id":8}],"next":null}"#,
            br#"[{"x":1},{"k":"v"},{"k":"w"}]"#,
            br#"[[1,2],[3,[4,5]]]"#,
            br#"{"s":"esc\"aped\n\u00e9","e":"","o":{"b":1,"a":[2,{}]},"big":1e3,"neg":-0}"#,
            br#"{"token":"t"} trailing"#,
            br#"{"token":"t","#,
            b"{\"token\":\"t\",\"bad\":\"\xff\"}",
            b"",
            br#""just a string""#,
            br#"42"#,
            br#"null"#,
            br#"{"ke\u0079":"escaped key"}"#,
        ];
        let paths = [
            "$",
            "$.token",
            "$.n",
            "$.a.b[1].c",
            "$.a.b[*].c",
            "$.a.b[2].c",
            "$.a.b[3].c",
            "$.a.b[9]",
            "$.a",
            "$.a2",
            "$.k",
            "$.k.z",
            "$.items[*].id",
            "$.items[1].id",
            "$.items[0].tags",
            "$.items[*].tags[1]",
            "$.next",
            "$[*].k",
            "$[1].k",
            "$[0]",
            "$[1][1][0]",
            "$[*][1]",
            "$.s",
            "$.e",
            "$.o",
            "$.big",
            "$.neg",
            "$.missing",
            "$.token.deeper",
            "$[0].x",
            "$.key",
        ];
        for doc in docs {
            let parsed: Option<Value> = serde_json::from_slice(doc).ok();
            for p in paths {
                let path = JsonPath::parse(p).unwrap();
                let whole = parsed
                    .as_ref()
                    .and_then(|d| find_in(d, path.steps()))
                    .cloned();
                let one_pass = find(doc, path.steps());
                assert_eq!(one_pass, whole, "{p} in {}", String::from_utf8_lossy(doc));
                let mut out = "stale".to_string();
                let written = text_into(doc, path.steps(), &mut out);
                let want = whole.clone().and_then(text);
                assert_eq!(written, want.is_some(), "{p}");
                if let Some(want) = &want {
                    assert_eq!(&out, want, "{p}");
                }
                assert_eq!(one_pass.and_then(text), want);
            }
        }
    }

    #[test]
    fn a_value_reads_as_a_template_inserts_it() {
        let at = |doc: &str, p: &str| find(doc.as_bytes(), JsonPath::parse(p).unwrap().steps());
        assert_eq!(
            at(r#"{"t":"a\"b"}"#, "$.t").and_then(text).as_deref(),
            Some("a\"b")
        );
        assert_eq!(
            at(r#"{"t":12}"#, "$.t").and_then(text).as_deref(),
            Some("12")
        );
        assert_eq!(at(r#"{"t":null}"#, "$.t"), Some(Value::Null));
        assert_eq!(at(r#"{"t":null}"#, "$.t").and_then(text), None);
        assert_eq!(
            at(r#"{"t":{"b":1,"a":[true]}}"#, "$.t")
                .and_then(text)
                .as_deref(),
            Some(r#"{"a":[true],"b":1}"#)
        );
    }
}
