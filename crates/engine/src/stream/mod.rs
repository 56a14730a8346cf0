//! Reading a streamed response (an LLM's tokens) as it arrives, to time it: time to first
//! token, the gaps between tokens, whether the stream ended as its protocol says, and
//! the output token count the server reported. The HTTP readers hand each piece of the
//! body to a [`StreamReader`] with the instant it was read; the reader says how many
//! content events that piece completed, and at the body's end how the stream ended.
//!
//! Pure and I/O-free: no socket, no clock (the caller passes the instant of each read),
//! no allocation per event once its buffers have grown to the stream's largest event.
//! Not here: reading the socket (`h1.rs`, `h2.rs`), recording times (the worker), the
//! scenario keys that choose a [`StreamSpec`].
//!
//! # Framing ([`StreamKind`])
//!
//! - **SSE**: the WHATWG "event stream" parsing. Lines end with `\n`, `\r\n` or `\r` (a
//!   `\r\n` split across two reads is one line end); a leading UTF-8 BOM is skipped;
//!   `:` lines are comments (keep-alives); fields `data`, `event`, `id`, `retry` (one
//!   space after the colon is dropped; `data` lines join with `\n`; `id` and `retry`
//!   are read and ignored, there is no reconnection); a blank line dispatches the event,
//!   and an event without a `data` line is no event.
//! - **NDJSON**: one JSON value per `\n`-ended line (a `\r` before it is dropped);
//!   blank lines are skipped. A last line without its `\n` is not an event.
//! - **Chunks**: every non-empty read is one content event; there is no terminator.
//!   A read is what [`StreamReader::feed`] is given with what [`StreamReader::feed_more`]
//!   adds to it: the HTTP/1.1 reader hands a chunked body over chunk by chunk, and the
//!   chunks one read brought are one event (over HTTP/2, each DATA frame is a read).
//!
//! # What an event means ([`ContentRule`], [`TokenRule`], [`Terminator`])
//!
//! With [`ContentRule::Auto`] an event is content when its JSON object has a non-empty
//! (not null, `""`, `[]` or `{}`) value at one of:
//!
//! | API | content at |
//! |---|---|
//! | OpenAI chat | `choices[*].delta.content`, `.reasoning_content`, `.reasoning`, `.refusal`, `.tool_calls` |
//! | OpenAI completions | `choices[*].text` |
//! | OpenAI Responses | `delta` (a string), when `type` is `response.*.delta` |
//! | Anthropic | `delta.text`, `delta.partial_json`, `delta.thinking`, when `type` is `content_block_delta` |
//! | Ollama | `message.content`, `.thinking`, `.tool_calls`, or `response` (a string), when `done` is a boolean |
//!
//! So role-only deltas, empty content, `ping`, `message_start`, `content_block_start`,
//! `message_delta`, `message_stop`, `signature_delta` and usage-only chunks are not
//! content. Data that is not a JSON object (not JSON at all, or a bare string or
//! number) is raw text: content when non-empty, unless it is a terminator or `[DONE]`.
//! A JSON object of no known shape is not content: name a [`ContentRule::Path`] for
//! such an API (then content is a non-empty value at that path, and data that is not
//! JSON is not content).
//!
//! [`Terminator::Auto`] ends the stream at `data: [DONE]` (OpenAI chat), an `event:
//! message_stop` or `"type":"message_stop"` (Anthropic), `"done":true` (Ollama), or a
//! `type` of `response.completed`, `response.incomplete` or `response.failed` (OpenAI
//! Responses). Events after the terminator are counted as events and mean nothing
//! more (no content, count or error). An event of SSE type `error`, a non-null
//! top-level `error`, or a `type` of `error` or `response.failed` counts in
//! [`StreamEnd::errors`].
//!
//! A [`TokenRule::Path`] with `[*]` sums the whole numbers it finds in an event (the
//! tokens of every choice); the last event that reports a count gives the stream's, as
//! for the built-in paths.
//!
//! [`TokenRule::Auto`] takes the output token count of the last event that reports one:
//! `usage.completion_tokens` (OpenAI chat, with `stream_options.include_usage`),
//! `usage.output_tokens` (Anthropic `message_delta`, cumulative), `eval_count`
//! (Ollama), `response.usage.output_tokens` (OpenAI Responses). When no event reports
//! one, [`StreamEnd::tokens`] is `None` and the caller may count content events instead
//! (one per token for most servers, but a server may put several tokens in one event).
//!
//! # Time
//!
//! An event completes in the read that brings its last byte (its blank line in SSE, its
//! `\n` in NDJSON), so that read's instant is the event's time: the first content
//! event's gives time to first token, and every later content event a gap from the
//! previous one ([`Fed::gaps`]). Content events completed by the same read arrived
//! together, so the gaps between them are zero: that is what was observed at the
//! granularity of a read, and any client sees the same (AIPerf and GuideLLM stamp a
//! message when their reader hands it over, and events already in the buffer are
//! handed over back to back). It keeps the gaps summing to the time from the first
//! content event to the last, so their mean is the inter-token latency those tools
//! report ((last - first) / (events - 1)), while their distribution shows the bursts.
//!
//! # Memory
//!
//! The reader holds at most one unfinished line and one unfinished event's data: a line
//! and the data before it together at most [`StreamSpec::max_event`] bytes (1 MiB unless
//! set), checked on whole lines, so where a stream is cut into reads does not change
//! where the bound strikes. Each buffer thus holds at most `max_event` bytes; a finished
//! reader keeps 16 KiB of each for the next response and gives back the rest.
//!
//! An event that needs more (an SSE event, an NDJSON line: a big tool result, an image)
//! is skipped and the stream read on: what is held of it is dropped and its remaining
//! bytes are passed over unheld (SSE: only its line ends are looked at, to find the
//! blank line that ends it). Where it ends it counts as one event and, before the
//! terminator, one content event, unread: its content, its token count and whether it
//! was the terminator or an error are not known (every API above puts a big payload in
//! a content event; its usage, end and error events are small).
//! [`StreamEnd::oversized`] counts them. A body that ends inside a skipped event is cut
//! there ([`Truncation::MidLine`] or [`Truncation::MidEvent`]). An SSE comment line past
//! the bound is passed over alone: it carries nothing, and the event around it keeps
//! its data.

mod json;

use std::time::{Duration, Instant};

// The scenario's own types: how the body is framed and what ends it are said there.
pub use loadgate_scenario::{
    JsonPath, PathError, PathStep as Step, StreamDone as Terminator, StreamKind,
};

/// Which events carry content (tokens).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContentRule {
    /// The shapes of OpenAI, Anthropic and Ollama, and raw text (see the module's doc).
    Auto,
    /// A non-empty value at this path of the event's JSON.
    Path(JsonPath),
}

/// Where the output token count is reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenRule {
    /// The usage fields of OpenAI, Anthropic and Ollama (see the module's doc).
    Auto,
    /// A whole number at this path of an event's JSON; with `[*]`, the sum of the whole
    /// numbers the path finds in it.
    Path(JsonPath),
}

/// How one endpoint's stream is read: framing, rules, and the memory bound. Built once
/// per endpoint (it compiles the rules' paths); every response's [`StreamReader`]
/// borrows it.
#[derive(Debug, Clone)]
pub struct StreamSpec {
    kind: StreamKind,
    rules: json::Rules,
    max_event: usize,
}

impl StreamSpec {
    /// The default bound on what a reader holds: 1 MiB.
    pub const MAX_EVENT: usize = 1 << 20;

    /// A spec for `kind` with these rules, holding at most [`Self::MAX_EVENT`] bytes.
    /// [`StreamKind::Chunks`] ignores the rules: every read is content, there is no
    /// terminator and no token count.
    pub fn new(
        kind: StreamKind,
        content: ContentRule,
        tokens: TokenRule,
        done: Terminator,
    ) -> StreamSpec {
        StreamSpec {
            kind,
            rules: json::Rules::new(&content, &tokens, &done),
            max_event: Self::MAX_EVENT,
        }
    }

    /// The same spec holding at most `bytes` of an unfinished line and event.
    pub fn with_max_event(mut self, bytes: usize) -> StreamSpec {
        self.max_event = bytes;
        self
    }

    /// How the body is framed.
    pub fn kind(&self) -> StreamKind {
        self.kind
    }

    /// The spec an endpoint's `stream` settings ask for.
    pub fn of(stream: &loadgate_scenario::Stream) -> StreamSpec {
        let content = stream
            .content
            .clone()
            .map_or(ContentRule::Auto, ContentRule::Path);
        let tokens = stream
            .tokens
            .clone()
            .map_or(TokenRule::Auto, TokenRule::Path);
        StreamSpec::new(stream.kind, content, tokens, stream.done.clone())
    }

    /// The most bytes a reader holds.
    pub fn max_event(&self) -> usize {
        self.max_event
    }
}

/// What one read of the body completed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fed {
    /// Events completed (content or not: pings, usage, the terminator).
    pub events: u32,
    /// Content events completed.
    pub content_events: u32,
    /// The first of them is the stream's first content event: this read's instant is
    /// the time of the first token.
    pub first_content: bool,
    /// From the previous content event, in an earlier read, to this read: the gap before
    /// this read's first content event. `None` when it had none, or the first was the
    /// stream's first.
    pub gap: Option<Duration>,
    /// The terminator was in this read.
    pub done: bool,
}

impl Fed {
    /// The gaps between content events this read closes: [`Self::gap`], then a zero for
    /// every further content event in it (they arrived in the same read). Over a whole
    /// stream there is one gap fewer than content events.
    pub fn gaps(&self) -> impl Iterator<Item = Duration> {
        let zeros = self
            .content_events
            .saturating_sub(u32::from(self.gap.is_some() || self.first_content));
        self.gap
            .into_iter()
            .chain(std::iter::repeat_n(Duration::ZERO, zeros as usize))
    }
}

/// Why a stream is not complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truncation {
    /// The body ended inside a line (NDJSON: a last line without its `\n`).
    MidLine,
    /// The body ended inside an SSE event: after a field line, before its blank line.
    MidEvent,
    /// The body ended between events, without the terminator.
    NoTerminator,
}

/// How a stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The terminator was seen (or none is expected) and the body ended between events.
    Complete,
    /// It did not end as its protocol says.
    Truncated {
        /// Where it was cut.
        why: Truncation,
    },
}

/// A whole stream, at the end of its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamEnd {
    /// Complete or cut short.
    pub ending: Ending,
    /// Events, content or not.
    pub events: u64,
    /// Content events.
    pub content_events: u64,
    /// The output token count the last reporting event gave; `None` when none did (the
    /// caller may use `content_events`).
    pub tokens: Option<u64>,
    /// Events that reported an error inside the stream.
    pub errors: u64,
    /// Of `events`, those skipped unread because they passed [`StreamSpec::max_event`]:
    /// each counted as a content event (before the terminator) whose tokens were not read.
    pub oversized: u64,
    /// Of `events`, those loadgate skipped unread because the bytes its worker holds of
    /// unfinished events reached its budget ([`HeldBudget`]): counted as `oversized`
    /// ones are, but loadgate's doing, not the target's.
    pub skipped: u64,
    /// The read that completed the first content event.
    pub first_content: Option<Instant>,
    /// The read that completed the last content event.
    pub last_content: Option<Instant>,
}

/// The event type an SSE `event:` field gave, as far as the rules care.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum SseType {
    #[default]
    Other,
    /// `message_stop` (Anthropic's end).
    MessageStop,
    /// `error`.
    Error,
}

/// A UTF-8 byte order mark.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Capacity a reader keeps between responses; more is given back at [`StreamReader::finish`].
const KEEP: usize = 16 * 1024;

/// Reads one response's stream, read by read. Reusable: [`Self::finish`] readies it for
/// the next response and keeps its buffers.
#[derive(Debug)]
pub struct StreamReader<'s> {
    spec: &'s StreamSpec,
    /// The unfinished line (at the start, possibly the first bytes of a BOM).
    line: Vec<u8>,
    /// SSE: the unfinished event's data lines, joined with `\n`.
    data: Vec<u8>,
    /// SSE: a `data` field was seen since the last dispatch (`data` may be empty).
    has_data: bool,
    /// SSE: a field line was seen since the last dispatch.
    in_event: bool,
    sse_type: SseType,
    /// The last read ended with `\r`: a `\n` starting the next is part of that line end.
    after_cr: bool,
    /// Nothing has been read but a BOM's first bytes (held in `line`).
    at_start: bool,
    /// The current line passed the bound (or is part of a skipped event): its bytes are
    /// passed over, not held, up to its line end. Set at the end of a read.
    drop_line: bool,
    /// SSE: the current event passed the bound; it is skipped up to its blank line.
    /// Its lines are then held only up to [`SMALL`] bytes each, in `line` (`long_line`
    /// says one passed that), to read their field names, its small `event` type and its
    /// last data line (in `data`).
    skip_event: bool,
    /// SSE, in a skipped event: the current line passed [`SMALL`].
    long_line: bool,
    /// In a skipped event: its first data bytes, at most [`HEAD`], to tell whether it
    /// was the terminator.
    head: Vec<u8>,
    /// SSE, in a skipped event: what its last data line was.
    last_data: LastData,
    /// SSE, in a skipped event: it had a data line before its last one.
    data_before: bool,
    /// The event being skipped is skipped for the worker's memory budget, not its size.
    unheld: bool,
    /// What this reader took of the worker's budget.
    reservation: Reservation<'s>,
    done: bool,
    /// Chunks: the current read has been counted as its content event.
    read_counted: bool,
    events: u64,
    content_events: u64,
    errors: u64,
    oversized: u64,
    skipped: u64,
    tokens: Option<u64>,
    first_content: Option<Instant>,
    last_content: Option<Instant>,
}

/// What the last data line of a skipped SSE event was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum LastData {
    /// It has none (yet).
    #[default]
    None,
    /// Small: its value is held in `data`.
    Small,
    /// Past [`SMALL`], or dropped when the event passed the bound.
    Long,
}

/// A skipped SSE event's lines are read up to this many bytes each: enough for any
/// field name, `event: message_stop` and `data: [DONE]`.
const SMALL: usize = 256;

/// The first bytes of a skipped event kept to tell whether it was the terminator:
/// enough for the keys before a big payload (Ollama's `done`, a `type`).
pub const HEAD: usize = 1024;

/// A worker's budget for the bytes its stream readers hold of unfinished events, shared
/// by the readers of every stream it has open (one thread: a [`Cell`]). A reader's
/// first [`KEEP`] bytes of each buffer are its own; beyond that it takes from the budget
/// at the end of each read, and when the budget is spent the event it is assembling is
/// skipped (counted in [`StreamEnd::skipped`], loadgate's doing) and its bytes given
/// back. A read may pass the budget by what it brought until its end, one read at a
/// time per worker: at most the budget, one [`StreamSpec::max_event`] and [`KEEP`]
/// twice per open stream in all.
#[derive(Debug)]
pub struct HeldBudget {
    limit: usize,
    held: std::cell::Cell<usize>,
}

impl HeldBudget {
    /// A worker's default: 64 MiB.
    pub const DEFAULT: usize = 64 << 20;

    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> HeldBudget {
        HeldBudget {
            limit,
            held: std::cell::Cell::new(0),
        }
    }

    /// Bytes its readers hold beyond their own.
    pub fn held(&self) -> usize {
        self.held.get()
    }

    fn take(&self, n: usize) -> bool {
        let after = self.held.get().saturating_add(n);
        let ok = after <= self.limit;
        if ok {
            self.held.set(after);
        }
        ok
    }

    fn give(&self, n: usize) {
        self.held.set(self.held.get().saturating_sub(n));
    }
}

impl Default for HeldBudget {
    fn default() -> HeldBudget {
        HeldBudget::new(HeldBudget::DEFAULT)
    }
}

/// What one reader took of its worker's budget, given back when it is dropped (a
/// request given up on mid-stream never reaches [`StreamReader::finish`]).
#[derive(Debug, Default)]
struct Reservation<'s> {
    budget: Option<&'s HeldBudget>,
    bytes: usize,
}

impl Reservation<'_> {
    /// Holds `bytes` in all; false, holding what it held, when the budget is spent.
    fn hold(&mut self, bytes: usize) -> bool {
        let Some(budget) = self.budget else {
            return true;
        };
        if bytes <= self.bytes {
            budget.give(self.bytes - bytes);
        } else if !budget.take(bytes - self.bytes) {
            return false;
        }
        self.bytes = bytes;
        true
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if let Some(b) = self.budget {
            b.give(self.bytes);
        }
    }
}

impl<'s> StreamReader<'s> {
    /// A reader for one response of an endpoint with `spec`.
    pub fn new(spec: &'s StreamSpec) -> StreamReader<'s> {
        StreamReader {
            spec,
            line: Vec::new(),
            data: Vec::new(),
            has_data: false,
            in_event: false,
            sse_type: SseType::Other,
            after_cr: false,
            at_start: true,
            drop_line: false,
            skip_event: false,
            long_line: false,
            head: Vec::new(),
            last_data: LastData::None,
            data_before: false,
            unheld: false,
            reservation: Reservation::default(),
            done: false,
            read_counted: false,
            events: 0,
            content_events: 0,
            errors: 0,
            oversized: 0,
            skipped: 0,
            tokens: None,
            first_content: None,
            last_content: None,
        }
    }

    /// A reader that holds what its events need beyond [`KEEP`] bytes a buffer only as
    /// far as `budget`, its worker's, allows.
    pub fn with_budget(spec: &'s StreamSpec, budget: &'s HeldBudget) -> StreamReader<'s> {
        StreamReader {
            reservation: Reservation {
                budget: Some(budget),
                bytes: 0,
            },
            ..StreamReader::new(spec)
        }
    }

    /// Reads `bytes`, the next piece of the body, which arrived at `at` in a read of its
    /// own; returns what it completed.
    pub fn feed(&mut self, bytes: &[u8], at: Instant) -> Fed {
        self.read(bytes, at, true)
    }

    /// Reads `bytes`, more of the read [`Self::feed`] was last given (which arrived at
    /// `at`): the next chunk of a chunked body that came in the same read. What it
    /// completes arrived with what that read completed (gaps of zero), and for
    /// [`StreamKind::Chunks`] it is part of that read's one event.
    pub fn feed_more(&mut self, bytes: &[u8], at: Instant) -> Fed {
        self.read(bytes, at, false)
    }

    fn read(&mut self, bytes: &[u8], at: Instant, fresh: bool) -> Fed {
        let mut fed = Fed::default();
        if fresh {
            self.read_counted = false;
        }
        if bytes.is_empty() {
            return fed;
        }
        match self.spec.kind {
            StreamKind::Chunks => {
                if !std::mem::replace(&mut self.read_counted, true) {
                    self.events = self.events.saturating_add(1);
                    fed.events = 1;
                    self.content(at, &mut fed);
                }
            }
            StreamKind::Sse => self.feed_sse(bytes, at, &mut fed),
            StreamKind::Ndjson => self.feed_ndjson(bytes, at, &mut fed),
        }
        self.settle();
        fed
    }

    /// At the end of a read: takes from the worker's budget what the buffers hold beyond
    /// their own [`KEEP`] bytes, or gives back what they no longer hold; when the budget
    /// is spent, skips the event being assembled and gives its bytes back.
    fn settle(&mut self) {
        if self.reservation.budget.is_none() {
            return;
        }
        // A buffer that grew for a big event and holds nothing now gives its room back.
        if self.line.is_empty() {
            self.line.shrink_to(KEEP);
        }
        if self.data.is_empty() {
            self.data.shrink_to(KEEP);
        }
        if self.reservation.hold(self.beyond_keep()) {
            return;
        }
        self.unhold();
        self.line.shrink_to(KEEP);
        self.data.shrink_to(KEEP);
        let _ = self.reservation.hold(self.beyond_keep());
    }

    fn beyond_keep(&self) -> usize {
        self.line.capacity().saturating_sub(KEEP) + self.data.capacity().saturating_sub(KEEP)
    }

    /// The worker's budget is spent: the event being assembled is skipped as one past the
    /// bound would be, counted as loadgate's ([`StreamEnd::skipped`]).
    fn unhold(&mut self) {
        match self.spec.kind {
            StreamKind::Chunks => {}
            StreamKind::Ndjson => {
                if !self.line.is_empty() && !self.drop_line {
                    self.keep_head(&[]);
                    self.line.clear();
                    self.drop_line = true;
                    self.unheld = true;
                }
            }
            StreamKind::Sse => {
                if self.skip_event || self.drop_line {
                    // Skipped already, or a comment passed over: nothing big is held.
                } else if !self.in_event && !self.has_data && self.line.first() == Some(&b':') {
                    self.line.clear();
                    self.drop_line = true;
                } else if self.in_event || self.has_data || !self.line.is_empty() {
                    self.unheld = true;
                    let ended = self.line.is_empty();
                    self.skip_sse_event(&[], ended);
                }
            }
        }
    }

    /// Keeps the first [`HEAD`] bytes of the current line, `more` of it in hand, as the
    /// head of the event being skipped (NDJSON).
    fn keep_head(&mut self, more: &[u8]) {
        self.head.clear();
        let from_line = self.line.len().min(HEAD);
        self.head.extend_from_slice(&self.line[..from_line]);
        let rest = (HEAD - from_line).min(more.len());
        self.head.extend_from_slice(&more[..rest]);
    }

    /// How the stream ended, at the end of its body; readies the reader for another
    /// response.
    pub fn finish(&mut self) -> StreamEnd {
        let mid_line = self.drop_line
            || match self.spec.kind {
                StreamKind::Sse => !self.line.is_empty(),
                // A blank last line would have been skipped.
                StreamKind::Ndjson => !self.line.iter().all(u8::is_ascii_whitespace),
                StreamKind::Chunks => false,
            };
        let why = if mid_line {
            Some(Truncation::MidLine)
        } else if self.in_event {
            Some(Truncation::MidEvent)
        } else if self.spec.kind != StreamKind::Chunks
            && !matches!(self.spec.rules.terminator(), Terminator::Nothing)
            && !self.done
        {
            Some(Truncation::NoTerminator)
        } else {
            None
        };
        let end = StreamEnd {
            ending: why.map_or(Ending::Complete, |why| Ending::Truncated { why }),
            events: self.events,
            content_events: self.content_events,
            tokens: self.tokens,
            errors: self.errors,
            oversized: self.oversized,
            skipped: self.skipped,
            first_content: self.first_content,
            last_content: self.last_content,
        };
        let (mut line, mut data) = (
            std::mem::take(&mut self.line),
            std::mem::take(&mut self.data),
        );
        line.clear();
        line.shrink_to(KEEP);
        data.clear();
        data.shrink_to(KEEP);
        let mut head = std::mem::take(&mut self.head);
        head.clear();
        let mut reservation = std::mem::take(&mut self.reservation);
        let _ = reservation.hold(0);
        *self = StreamReader {
            line,
            data,
            head,
            reservation,
            ..StreamReader::new(self.spec)
        };
        end
    }

    /// Notes a content event completed by the read at `at`.
    fn content(&mut self, at: Instant, fed: &mut Fed) {
        fed.content_events = fed.content_events.saturating_add(1);
        self.content_events = self.content_events.saturating_add(1);
        if fed.content_events == 1 {
            match self.last_content {
                None => fed.first_content = true,
                Some(prev) => fed.gap = Some(at.saturating_duration_since(prev)),
            }
        }
        self.first_content.get_or_insert(at);
        self.last_content = Some(at);
    }

    /// One event, with its data and SSE type.
    fn event(&mut self, data: &[u8], sse: SseType, at: Instant, fed: &mut Fed) {
        self.events = self.events.saturating_add(1);
        fed.events = fed.events.saturating_add(1);
        if self.done {
            // The stream ended at its terminator: nothing after it is the answer's.
            return;
        }
        let judged = self.spec.rules.judge(data, sse);
        if judged.done {
            self.done = true;
            fed.done = true;
        }
        if judged.error {
            self.errors = self.errors.saturating_add(1);
        }
        if judged.tokens.is_some() {
            self.tokens = judged.tokens;
        }
        if judged.content {
            self.content(at, fed);
        }
    }

    /// An event that passed the bound ended (at the read at `at`): one event, and before
    /// the terminator one content event, its content and meaning unread.
    /// Whether it was the terminator is told from what was kept of it (its head, its last
    /// small data line, its SSE type).
    fn skipped(&mut self, at: Instant, fed: &mut Fed) {
        match std::mem::take(&mut self.unheld) {
            true => self.skipped = self.skipped.saturating_add(1),
            false => self.oversized = self.oversized.saturating_add(1),
        }
        self.events = self.events.saturating_add(1);
        fed.events = fed.events.saturating_add(1);
        let last = (self.last_data == LastData::Small).then_some(&self.data[..]);
        let judged = self
            .spec
            .rules
            .skipped(&self.head, last, self.data_before, self.sse_type);
        self.head.clear();
        self.data.clear();
        self.last_data = LastData::None;
        self.data_before = false;
        self.sse_type = SseType::Other;
        if self.done {
            return;
        }
        if judged.done {
            self.done = true;
            fed.done = true;
        }
        if judged.content {
            self.content(at, fed);
        }
    }

    /// Whether holding `more` bytes of the current line beyond what is held would pass
    /// the bound.
    fn over(&self, more: usize) -> bool {
        let held = self.line.len().saturating_add(self.data.len());
        held.saturating_add(more) > self.spec.max_event
    }

    /// Drops a BOM at the start of the body; false while the bytes so far are only its
    /// beginning (they are held in `line`).
    fn skip_bom(&mut self, bytes: &mut &[u8]) -> bool {
        if !self.at_start {
            return true;
        }
        let held = self.line.len();
        let take = (BOM.len() - held).min(bytes.len());
        if BOM[held..held + take] != bytes[..take] {
            // Not a BOM: what was held is the first line's start.
            self.at_start = false;
            return true;
        }
        if held + take < BOM.len() {
            self.line.extend_from_slice(&bytes[..take]);
            return false;
        }
        self.line.clear();
        *bytes = &bytes[take..];
        self.at_start = false;
        true
    }

    fn feed_sse(&mut self, mut bytes: &[u8], at: Instant, fed: &mut Fed) {
        if !self.skip_bom(&mut bytes) {
            return;
        }
        if std::mem::take(&mut self.after_cr) && bytes.first() == Some(&b'\n') {
            bytes = &bytes[1..];
        }
        while let Some(i) = memchr::memchr2(b'\n', b'\r', bytes) {
            let mut rest = &bytes[i + 1..];
            if bytes[i] == b'\r' {
                match rest.first() {
                    Some(b'\n') => rest = &rest[1..],
                    None => self.after_cr = true,
                    Some(_) => {}
                }
            }
            self.sse_line_end(&bytes[..i], at, fed);
            bytes = rest;
        }
        if bytes.is_empty() || self.drop_line {
            // Nothing left, or more of a comment past the bound: passed over.
        } else if self.skip_event {
            self.hold_small(bytes);
        } else if !self.over(bytes.len()) {
            self.line.extend_from_slice(bytes);
        } else if self.line.first().or(bytes.first()) == Some(&b':') {
            // A comment past the bound carries nothing: passed over alone, the event
            // around it keeps its data.
            self.line.clear();
            self.drop_line = true;
        } else {
            self.skip_sse_event(bytes, false);
        }
    }

    /// In a skipped SSE event: holds `bytes`, more of the current line, up to [`SMALL`].
    fn hold_small(&mut self, bytes: &[u8]) {
        let room = SMALL.saturating_sub(self.line.len());
        self.line.extend_from_slice(&bytes[..room.min(bytes.len())]);
        self.long_line |= bytes.len() > room;
    }

    /// A line end in SSE, `tail` the bytes of its line in this read.
    fn sse_line_end(&mut self, tail: &[u8], at: Instant, fed: &mut Fed) {
        if std::mem::take(&mut self.drop_line) {
            // The end of a comment past the bound, which is nothing.
            return;
        }
        if self.skip_event {
            self.skipped_line(tail, at, fed);
            return;
        }
        // The bound holds for the whole line however it was read.
        if self.over(tail.len()) {
            if self.line.first().or(tail.first()) == Some(&b':') {
                self.line.clear();
            } else {
                self.skip_sse_event(tail, true);
            }
            return;
        }
        if self.line.is_empty() {
            self.sse_line(tail, at, fed);
        } else {
            let mut line = std::mem::take(&mut self.line);
            line.extend_from_slice(tail);
            self.sse_line(&line, at, fed);
            line.clear();
            self.line = line;
        }
    }

    /// A line of a skipped SSE event ended, `tail` its bytes in this read: its blank line
    /// ends the event; of its other lines only the names, a small `event` type and the
    /// last data line (when small) are kept.
    fn skipped_line(&mut self, tail: &[u8], at: Instant, fed: &mut Fed) {
        self.hold_small(tail);
        if self.line.is_empty() {
            self.skip_event = false;
            self.in_event = false;
            self.skipped(at, fed);
        } else {
            self.skipped_field();
        }
    }

    /// The line held (its first [`SMALL`] bytes) of a skipped SSE event ended.
    fn skipped_field(&mut self) {
        let long = std::mem::take(&mut self.long_line);
        let mut line = std::mem::take(&mut self.line);
        if line.first().is_some_and(|&b| b != b':') {
            let (name, value) = field(&line);
            match name {
                b"data" => {
                    self.data_before |= self.last_data != LastData::None;
                    self.data.clear();
                    self.last_data = if long {
                        LastData::Long
                    } else {
                        self.data.extend_from_slice(value);
                        LastData::Small
                    };
                }
                b"event" if !long => self.sse_type = sse_type(value),
                _ => {}
            }
        }
        line.clear();
        self.line = line;
    }

    /// The current SSE event passed the bound (or the worker's budget): drops what is held
    /// of it and skips it, keeping the head of its data and its type. `more`: the bytes
    /// of the current line in hand beyond those held; `ended`: the line ended with them.
    fn skip_sse_event(&mut self, more: &[u8], ended: bool) {
        // The start of the current line: its field name and the head of its value.
        let mut start = std::mem::take(&mut self.head);
        start.clear();
        let want = HEAD + 8;
        start.extend_from_slice(&self.line[..self.line.len().min(want)]);
        start.extend_from_slice(&more[..more.len().min(want - start.len())]);
        let is_data = start.starts_with(b"data:") || (ended && start == b"data");
        let value = match is_data {
            true => {
                let v = start.get(5..).unwrap_or_default();
                v.strip_prefix(b" ").unwrap_or(v).to_vec()
            }
            false => Vec::new(),
        };
        let mut head = Vec::with_capacity(HEAD.min(self.data.len() + value.len() + 1));
        head.extend_from_slice(&self.data[..self.data.len().min(HEAD)]);
        if is_data {
            if self.has_data && head.len() < HEAD {
                head.push(b'\n');
            }
            let room = HEAD.saturating_sub(head.len());
            head.extend_from_slice(&value[..value.len().min(room)]);
        }
        self.head = head;
        // The data before the current line is dropped; the current line is read as a
        // skipped event's line (its first bytes), where it ends, so that where the bound
        // struck does not change what it is taken for.
        self.last_data = match std::mem::replace(&mut self.has_data, false) {
            true => LastData::Long,
            false => LastData::None,
        };
        self.data_before = false;
        self.data.clear();
        self.data.shrink_to(KEEP);
        self.in_event = true;
        self.skip_event = true;
        let total = self.line.len() + more.len();
        self.line.truncate(SMALL);
        self.hold_small(more);
        self.long_line = total > SMALL;
        if ended && !self.line.is_empty() {
            self.skipped_field();
        }
        self.line.shrink_to(KEEP);
    }

    /// One complete SSE line.
    fn sse_line(&mut self, line: &[u8], at: Instant, fed: &mut Fed) {
        if line.is_empty() {
            if self.has_data {
                let data = std::mem::take(&mut self.data);
                self.event(&data, self.sse_type, at, fed);
                self.data = data;
            }
            self.data.clear();
            self.has_data = false;
            self.in_event = false;
            self.sse_type = SseType::Other;
            return;
        }
        if line[0] == b':' {
            return;
        }
        let (name, value) = field(line);
        self.in_event = true;
        match name {
            b"data" => {
                // Within the bound: the line (longer than its value and a `\n`) was.
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
            }
            b"event" => self.sse_type = sse_type(value),
            // `id` and `retry` serve reconnection, which a load test does not do; the
            // spec ignores any other field.
            _ => {}
        }
    }

    fn feed_ndjson(&mut self, mut bytes: &[u8], at: Instant, fed: &mut Fed) {
        if !self.skip_bom(&mut bytes) {
            return;
        }
        while let Some(i) = memchr::memchr(b'\n', bytes) {
            // The bound holds for the whole line however it was read; a line past it
            // (passed over since an earlier read, or now) is one event, unread but for
            // its head.
            if std::mem::take(&mut self.drop_line) {
                self.line.clear();
                self.skipped(at, fed);
            } else if self.over(i) {
                self.keep_head(&bytes[..i]);
                self.line.clear();
                self.skipped(at, fed);
            } else if self.line.is_empty() {
                self.ndjson_line(&bytes[..i], at, fed);
            } else {
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(&bytes[..i]);
                self.ndjson_line(&line, at, fed);
                line.clear();
                self.line = line;
            }
            bytes = &bytes[i + 1..];
        }
        if bytes.is_empty() || self.drop_line {
            // Nothing left, or more of a line past the bound: passed over.
        } else if self.over(bytes.len()) {
            self.keep_head(bytes);
            self.line.clear();
            self.drop_line = true;
        } else {
            self.line.extend_from_slice(bytes);
        }
    }

    /// One complete NDJSON line, without its `\n`.
    fn ndjson_line(&mut self, line: &[u8], at: Instant, fed: &mut Fed) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if !line.iter().all(u8::is_ascii_whitespace) {
            self.event(line, SseType::Other, at, fed);
        }
    }
}

/// An SSE field line's name and value (one space after the colon dropped).
fn field(line: &[u8]) -> (&[u8], &[u8]) {
    match memchr::memchr(b':', line) {
        Some(c) => {
            let value = &line[c + 1..];
            (&line[..c], value.strip_prefix(b" ").unwrap_or(value))
        }
        None => (line, &b""[..]),
    }
}

/// What an SSE `event` field's value means to the rules.
fn sse_type(value: &[u8]) -> SseType {
    match value {
        b"message_stop" => SseType::MessageStop,
        b"error" => SseType::Error,
        _ => SseType::Other,
    }
}
