//! What one event's payload says: whether it carries content, ends the stream, reports
//! an error or a token count. Every path the endpoint cares about (the built-in shapes of
//! OpenAI, Anthropic and Ollama, or the scenario's own paths) is compiled once into a
//! tree of keys, and a payload is read in one pass over it with serde: values under
//! keys off the tree are skipped without being built, values on it are looked at where
//! they lie, so reading an event allocates nothing.
//!
//! Not here: where events begin and end (the framing is `mod.rs`), or time.

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::Step;
use super::{ContentRule, SseType, Terminator, TokenRule};

/// A bit in [`Facts::flags`]: something was seen at one of the paths that set it.
mod flag {
    /// A non-empty OpenAI chat delta (content, reasoning, refusal, tool calls) or legacy
    /// completion text.
    pub(super) const CHOICE: u16 = 1 << 0;
    /// Non-empty `delta.text`, `delta.partial_json` or `delta.thinking` (Anthropic).
    pub(super) const BLOCK: u16 = 1 << 1;
    /// `delta` is a non-empty string (OpenAI Responses API).
    pub(super) const DELTA_TEXT: u16 = 1 << 2;
    /// Non-empty Ollama `message.content`, `message.thinking`, `message.tool_calls` or
    /// `response` text.
    pub(super) const OLLAMA: u16 = 1 << 3;
    /// `done` is a boolean: the event has Ollama's shape.
    pub(super) const OLLAMA_SHAPE: u16 = 1 << 4;
    /// `done` is `true` (Ollama's last line).
    pub(super) const DONE: u16 = 1 << 5;
    /// A non-null top-level `error` (OpenAI, Ollama).
    pub(super) const ERROR: u16 = 1 << 6;
    /// The scenario's content path found a non-empty value.
    pub(super) const USER: u16 = 1 << 7;
}

/// An index into [`Facts::counts`]: a token count found at one path.
mod count {
    pub(super) const OPENAI: usize = 0;
    pub(super) const ANTHROPIC: usize = 1;
    pub(super) const OLLAMA: usize = 2;
    pub(super) const RESPONSES: usize = 3;
    pub(super) const USER: usize = 4;
    pub(super) const N: usize = 5;
}

/// What to note about the value found at a node of the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Probe {
    /// Set the flag if the value is not null, `""`, `[]` or `{}`.
    NonEmpty(u16),
    /// Set the flag if the value is a non-empty string.
    Text(u16),
    /// Set the flag if the value is a boolean.
    Bool(u16),
    /// Set the flag if the value is `true`.
    True(u16),
    /// Keep the value if it is a whole number from 0 to 2^64-1.
    Count(usize),
    /// Add the value to the count if it is a whole number from 0 to 2^64-1 (a path
    /// with `[*]`: the numbers at every element it reaches, summed, saturating).
    Sum(usize),
    /// Classify the value as an event type (`type`).
    Kind,
}

/// The known values of a top-level `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Kind {
    #[default]
    Other,
    /// Anthropic `content_block_delta`.
    ContentBlockDelta,
    /// Anthropic `message_stop`.
    MessageStop,
    /// Anthropic or OpenAI Responses `error`.
    Error,
    /// OpenAI Responses `response.<something>.delta`.
    ResponseDelta,
    /// OpenAI Responses `response.completed` or `response.incomplete`.
    ResponseEnd,
    /// OpenAI Responses `response.failed`.
    ResponseFailed,
}

impl Kind {
    fn of(s: &str) -> Kind {
        match s {
            "content_block_delta" => Kind::ContentBlockDelta,
            "message_stop" => Kind::MessageStop,
            "error" => Kind::Error,
            "response.completed" | "response.incomplete" => Kind::ResponseEnd,
            "response.failed" => Kind::ResponseFailed,
            s if s.starts_with("response.") && s.ends_with(".delta") => Kind::ResponseDelta,
            _ => Kind::Other,
        }
    }
}

/// What one payload showed at the paths of the tree.
#[derive(Debug, Default)]
struct Facts {
    flags: u16,
    counts: [Option<u64>; count::N],
    kind: Kind,
}

/// A node of the path tree: what to note about the value here, and where to go below
/// it. An element of an array goes to `at` for its index if there is one, else to
/// `each`; a path with `[*]` is added to `each` and to every `at`, so an element meets
/// every path that reaches it.
#[derive(Debug, Clone, Default)]
struct Node {
    probes: Vec<Probe>,
    keys: Vec<(Box<str>, Node)>,
    each: Option<Box<Node>>,
    at: Vec<(usize, Node)>,
}

impl Node {
    fn add(&mut self, steps: &[Step], probe: Probe) {
        match steps.split_first() {
            None => self.probes.push(probe),
            Some((Step::Key(k), rest)) => {
                let i = match self.keys.iter().position(|(key, _)| key == k) {
                    Some(i) => i,
                    None => {
                        self.keys.push((k.clone(), Node::default()));
                        self.keys.len() - 1
                    }
                };
                self.keys[i].1.add(rest, probe);
            }
            Some((Step::Each, rest)) => {
                self.each.get_or_insert_default().add(rest, probe);
                for (_, node) in &mut self.at {
                    node.add(rest, probe);
                }
            }
            Some((Step::Index(n), rest)) => {
                let i = match self.at.iter().position(|(i, _)| i == n) {
                    Some(i) => i,
                    None => {
                        let like_each = self.each.as_deref().cloned().unwrap_or_default();
                        self.at.push((*n, like_each));
                        self.at.len() - 1
                    }
                };
                self.at[i].1.add(rest, probe);
            }
        }
    }

    /// Adds a built-in path, written as its keys with `*` for `[*]`.
    fn add_keys(&mut self, keys: &[&str], probe: Probe) {
        let steps: Vec<Step> = keys
            .iter()
            .map(|k| match *k {
                "*" => Step::Each,
                k => Step::Key(k.into()),
            })
            .collect();
        self.add(&steps, probe);
    }

    fn element(&self, i: usize) -> Option<&Node> {
        self.at
            .iter()
            .find(|(n, _)| *n == i)
            .map(|(_, node)| node)
            .or(self.each.as_deref())
    }

    fn key(&self, k: &str) -> Option<&Node> {
        self.keys
            .iter()
            .find(|(key, _)| &**key == k)
            .map(|(_, node)| node)
    }

    fn note(&self, value: Leaf<'_>, facts: &mut Facts) {
        for probe in &self.probes {
            match (*probe, value) {
                (Probe::NonEmpty(f), v) if v.non_empty() => facts.flags |= f,
                (Probe::Text(f), Leaf::Str(s)) if !s.is_empty() => facts.flags |= f,
                (Probe::Bool(f), Leaf::Bool(_)) => facts.flags |= f,
                (Probe::True(f), Leaf::Bool(true)) => facts.flags |= f,
                (Probe::Count(i), Leaf::Number(Some(n))) => facts.counts[i] = Some(n),
                (Probe::Sum(i), Leaf::Number(Some(n))) => {
                    facts.counts[i] = Some(facts.counts[i].unwrap_or(0).saturating_add(n));
                }
                (Probe::Kind, Leaf::Str(s)) => facts.kind = Kind::of(s),
                _ => {}
            }
        }
    }
}

/// A value as a probe sees it: scalars as they are, arrays and objects only as empty or
/// not (their insides are the tree's business).
#[derive(Debug, Clone, Copy)]
enum Leaf<'s> {
    Null,
    Bool(bool),
    /// A whole number that fits a `u64`, or `None` for any other number.
    Number(Option<u64>),
    Str(&'s str),
    /// An array or object, and whether it has anything in it.
    Container(bool),
}

impl Leaf<'_> {
    fn non_empty(self) -> bool {
        match self {
            Leaf::Null => false,
            Leaf::Bool(_) | Leaf::Number(_) => true,
            Leaf::Str(s) => !s.is_empty(),
            Leaf::Container(any) => any,
        }
    }
}

/// Reads one value at `node`, noting what its probes ask and going down the tree.
struct Walk<'a> {
    node: &'a Node,
    facts: &'a mut Facts,
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<(), E> {
        self.node.note(Leaf::Bool(v), self.facts);
        Ok(())
    }

    fn visit_i64<E>(self, v: i64) -> Result<(), E> {
        self.node
            .note(Leaf::Number(u64::try_from(v).ok()), self.facts);
        Ok(())
    }

    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        self.node.note(Leaf::Number(Some(v)), self.facts);
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        self.node.note(Leaf::Number(None), self.facts);
        Ok(())
    }

    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        self.node.note(Leaf::Str(v), self.facts);
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        self.node.note(Leaf::Null, self.facts);
        Ok(())
    }

    fn visit_none<E>(self) -> Result<(), E> {
        self.node.note(Leaf::Null, self.facts);
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0usize;
        loop {
            let more = match self.node.element(i) {
                Some(node) => seq
                    .next_element_seed(Walk {
                        node,
                        facts: &mut *self.facts,
                    })?
                    .is_some(),
                None => seq.next_element::<IgnoredAny>()?.is_some(),
            };
            if !more {
                break;
            }
            i = i.saturating_add(1);
        }
        self.node.note(Leaf::Container(i > 0), self.facts);
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut any = false;
        while let Some(child) = map.next_key_seed(Key(self.node))? {
            any = true;
            match child {
                Some(node) => map.next_value_seed(Walk {
                    node,
                    facts: &mut *self.facts,
                })?,
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        self.node.note(Leaf::Container(any), self.facts);
        Ok(())
    }
}

/// Reads an object's key and finds the node below it, without building the key.
struct Key<'a>(&'a Node);

impl<'de, 'a> DeserializeSeed<'de> for Key<'a> {
    type Value = Option<&'a Node>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de, 'a> Visitor<'de> for Key<'a> {
    type Value = Option<&'a Node>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E>(self, k: &str) -> Result<Self::Value, E> {
        Ok(self.0.key(k))
    }
}

/// What one event meant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Judged {
    /// It carries content (a token, or text of any length).
    pub(super) content: bool,
    /// It is the stream's terminator.
    pub(super) done: bool,
    /// It reports an error inside the stream.
    pub(super) error: bool,
    /// The output token count it reports.
    pub(super) tokens: Option<u64>,
}

/// An endpoint's rules, compiled: the path tree and what to make of what it finds.
#[derive(Debug, Clone)]
pub(super) struct Rules {
    tree: Node,
    content_auto: bool,
    tokens_auto: bool,
    done: Terminator,
    /// Read every payload as JSON, not only those that look like an object: the
    /// scenario named a path, and a path may start at an array.
    any_json: bool,
}

impl Rules {
    pub(super) fn new(content: &ContentRule, tokens: &TokenRule, done: &Terminator) -> Rules {
        let mut tree = Node::default();
        // What every event is looked at for: its type, Ollama's `done`, an error.
        tree.add_keys(&["type"], Probe::Kind);
        tree.add_keys(&["done"], Probe::True(flag::DONE));
        tree.add_keys(&["done"], Probe::Bool(flag::OLLAMA_SHAPE));
        tree.add_keys(&["error"], Probe::NonEmpty(flag::ERROR));
        match content {
            ContentRule::Auto => {
                for field in [
                    "content",
                    "reasoning_content",
                    "reasoning",
                    "refusal",
                    "tool_calls",
                ] {
                    tree.add_keys(
                        &["choices", "*", "delta", field],
                        Probe::NonEmpty(flag::CHOICE),
                    );
                }
                tree.add_keys(&["choices", "*", "text"], Probe::NonEmpty(flag::CHOICE));
                for field in ["text", "partial_json", "thinking"] {
                    tree.add_keys(&["delta", field], Probe::NonEmpty(flag::BLOCK));
                }
                tree.add_keys(&["delta"], Probe::Text(flag::DELTA_TEXT));
                for field in ["content", "thinking", "tool_calls"] {
                    tree.add_keys(&["message", field], Probe::NonEmpty(flag::OLLAMA));
                }
                tree.add_keys(&["response"], Probe::Text(flag::OLLAMA));
            }
            ContentRule::Path(path) => tree.add(path.steps(), Probe::NonEmpty(flag::USER)),
        }
        match tokens {
            TokenRule::Auto => {
                let paths: [(&[&str], usize); 4] = [
                    (&["usage", "completion_tokens"], count::OPENAI),
                    (&["usage", "output_tokens"], count::ANTHROPIC),
                    (&["eval_count"], count::OLLAMA),
                    (&["response", "usage", "output_tokens"], count::RESPONSES),
                ];
                for (keys, i) in paths {
                    tree.add_keys(keys, Probe::Count(i));
                }
            }
            // A path with `[*]` may find a count in every element: their sum is the
            // event's (the tokens of every choice).
            TokenRule::Path(path) => {
                let probe = match path.steps().contains(&Step::Each) {
                    true => Probe::Sum(count::USER),
                    false => Probe::Count(count::USER),
                };
                tree.add(path.steps(), probe);
            }
        }
        Rules {
            tree,
            content_auto: matches!(content, ContentRule::Auto),
            tokens_auto: matches!(tokens, TokenRule::Auto),
            done: done.clone(),
            any_json: !matches!(content, ContentRule::Auto) || !matches!(tokens, TokenRule::Auto),
        }
    }

    /// The terminator the stream ends with.
    pub(super) fn terminator(&self) -> &Terminator {
        &self.done
    }

    /// What the event with `data` (and, in SSE, event type `sse`) means.
    pub(super) fn judge(&self, data: &[u8], sse: SseType) -> Judged {
        let mut judged = Judged {
            error: sse == SseType::Error,
            ..Judged::default()
        };
        match &self.done {
            Terminator::Data(want) if data == want.as_bytes() => {
                judged.done = true;
                return judged;
            }
            Terminator::Auto if data == b"[DONE]" => {
                judged.done = true;
                return judged;
            }
            // Never content, whatever the terminator: it is OpenAI's end marker.
            _ if data == b"[DONE]" => return judged,
            Terminator::Auto if sse == SseType::MessageStop => judged.done = true,
            _ => {}
        }
        let looks_like_object = data
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|&b| b == b'{');
        let mut facts = Facts::default();
        let json = (self.any_json || looks_like_object) && self.read(data, &mut facts);
        if !json {
            // Not JSON: raw text, content when there is any (and it is no marker).
            judged.content =
                self.content_auto && !data.is_empty() && !judged.done && sse != SseType::Error;
            return judged;
        }
        judged.error |= facts.flags & flag::ERROR != 0
            || matches!(facts.kind, Kind::Error | Kind::ResponseFailed);
        if matches!(self.done, Terminator::Auto) {
            judged.done |= facts.flags & flag::DONE != 0
                || matches!(
                    facts.kind,
                    Kind::MessageStop | Kind::ResponseEnd | Kind::ResponseFailed
                );
        }
        judged.tokens = if self.tokens_auto {
            [
                count::OPENAI,
                count::ANTHROPIC,
                count::OLLAMA,
                count::RESPONSES,
            ]
            .iter()
            .find_map(|&i| facts.counts[i])
        } else {
            facts.counts[count::USER]
        };
        judged.content = self.content(&facts);
        judged
    }

    /// Whether an event with these facts carries content.
    fn content(&self, facts: &Facts) -> bool {
        let has = |f: u16| facts.flags & f != 0;
        if self.content_auto {
            has(flag::CHOICE)
                || (has(flag::BLOCK) && facts.kind == Kind::ContentBlockDelta)
                || (has(flag::DELTA_TEXT) && facts.kind == Kind::ResponseDelta)
                || (has(flag::OLLAMA) && has(flag::OLLAMA_SHAPE))
        } else {
            has(flag::USER)
        }
    }

    /// What an event skipped unread (past the bound on one event, or loadgate's memory
    /// budget) means, from what the reader kept of it: `head`, the first bytes of its
    /// data (at most [`super::HEAD`]); `last`, its last data line when that was small
    /// (SSE), and whether it had data lines before that; its SSE type. Only whether it
    /// ends the stream is looked for, and whether it then also carried content: an
    /// event whose last data line is the terminator's (`data: [DONE]` after a huge
    /// data line), an `event: message_stop`, or, with [`Terminator::Auto`], a JSON
    /// object whose keys within the head say it is the end (`"done": true` before a huge
    /// `context`, a `type` of `response.completed` before the whole response). Any other
    /// skipped event is one content event.
    pub(super) fn skipped(
        &self,
        head: &[u8],
        last: Option<&[u8]>,
        data_before: bool,
        sse: SseType,
    ) -> Judged {
        let end = |content: bool| Judged {
            content,
            done: true,
            ..Judged::default()
        };
        if let Some(last) = last {
            let terminator = match &self.done {
                Terminator::Data(want) => last == want.as_bytes(),
                Terminator::Auto => last == b"[DONE]",
                Terminator::Nothing => false,
            };
            if terminator {
                return end(data_before);
            }
        }
        let content = Judged {
            content: true,
            ..Judged::default()
        };
        if !matches!(self.done, Terminator::Auto) {
            return content;
        }
        if sse == SseType::MessageStop {
            return end(false);
        }
        let object = head
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|&b| b == b'{');
        if object {
            // The head is the start of the object: what it read before the cut stands.
            let mut facts = Facts::default();
            let _ = self.read(head, &mut facts);
            let done = facts.flags & flag::DONE != 0
                || matches!(
                    facts.kind,
                    Kind::MessageStop | Kind::ResponseEnd | Kind::ResponseFailed
                );
            if done {
                return end(self.content(&facts));
            }
        }
        content
    }

    /// Reads `data` as one JSON value along the tree; false when it is not JSON.
    fn read(&self, data: &[u8], facts: &mut Facts) -> bool {
        let mut de = serde_json::Deserializer::from_slice(data);
        let read = Walk {
            node: &self.tree,
            facts,
        }
        .deserialize(&mut de)
        .and_then(|()| de.end());
        read.is_ok()
    }
}
