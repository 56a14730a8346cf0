//! A route's streamed answer ([`crate::Stream`]): the body that sends tokens over time,
//! as an LLM API streams a completion, and the bytes of each event.
//!
//! **Timing.** Every event is due at an absolute instant on the server's clock: the
//! first content token `first_token` after the stream's start (the request's arrival,
//! or the moment a `max_streams` slot freed for a stream that had to wait), and token
//! `k + 1` one drawn `token_gap` after token `k`'s *due time*, not after the moment it
//! actually left. So the runtime timer's slop (tokio rounds a sleep up to the next
//! millisecond and fires when its thread next looks) makes one event late, never early,
//! and does not add up over a stream: token `k` leaves at `start + first_token + gap_2 +
//! ... + gap_k` plus that one event's slop. A client that reads slowly holds the body
//! back (HTTP flow control); the events overdue by then leave at once, in order. Pings are
//! due `ping_every` after the previous event's due time, and one due before the next
//! token goes first, so how many pings a stream carries depends only on its schedule.
//!
//! **Memory.** A stream is one struct, a boxed timer and, while it waits for a slot, a
//! boxed semaphore wait; each event costs the one buffer it is formatted into.
//!
//! Not here: deciding whether a request gets a stream (`server.rs`) or reading the
//! profile (`profile.rs`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::{Frame, SizeHint};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::profile::{Stream, StreamFormat, TruncateMode};

/// The words content tokens cycle through (JSON-safe, each with its trailing space).
const WORDS: [&str; 12] = [
    "You ", "spent ", "$1,240 ", "last ", "month, ", "8% ", "less ", "than ", "the ", "month ",
    "before. ", "Nice! ",
];

/// An SSE comment, which clients must ignore.
const PING: &[u8] = b": ping\n\n";

/// The end of an SSE completion.
const DONE: &[u8] = b"data: [DONE]\n\n";

/// The error a body returns to make hyper abort its answer (`truncate_mode = "abort"`):
/// HTTP/1.1 closes the connection without the last chunk, HTTP/2 resets the stream.
#[derive(Debug)]
pub(crate) struct Aborted;

impl std::fmt::Display for Aborted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stream cut off (truncate_mode = \"abort\")")
    }
}

impl std::error::Error for Aborted {}

/// A wait for one of a route's `max_streams` slots.
type SlotWait =
    Pin<Box<dyn Future<Output = Result<OwnedSemaphorePermit, tokio::sync::AcquireError>> + Send>>;

/// What a stream holds of its route's `max_streams`.
enum Slot {
    /// No limit, or the slot was given back.
    None,
    /// Waiting in line.
    Waiting(SlotWait),
    /// Generating; the slot frees when the permit drops.
    Held { _permit: OwnedSemaphorePermit },
}

/// Where a stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The role-only event, at once.
    Role,
    /// Waiting for a slot.
    Queued,
    /// Sending content tokens, the next due at `next`.
    Tokens,
    /// Truncated: the end (clean or abort) is due at `next`.
    Cut,
    /// The usage event, at once after the last token.
    Usage,
    /// `data: [DONE]` (SSE), at once after the usage.
    Done,
    /// Nothing more.
    Finished,
}

/// A streamed answer's body. Dropping it (hyper does when the client goes) ends the
/// stream and frees its slot.
pub(crate) struct TokenStream {
    spec: Stream,
    id: u64,
    created: u64,
    prompt_tokens: u32,
    /// Content tokens of a whole stream.
    tokens: u32,
    /// From the stream's start to its first content token.
    first_token: Duration,
    /// Truncated: how many whole content tokens go before the cut.
    cut: Option<u32>,
    /// Content tokens sent so far.
    sent: u32,
    phase: Phase,
    slot: Slot,
    /// When the next event of the phase is due.
    next: Instant,
    /// When the last event was due (pings count from it).
    last: Instant,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Abort only: a `Pending` was returned since the cut's partial event, so hyper has
    /// written it before the abort.
    flushed: bool,
}

/// Draws what one stream will do. `arrived` is when the request arrived, `slots` the
/// route's `max_streams` semaphore, `id` a number for the completion's id.
pub(crate) fn start(
    spec: Stream,
    arrived: Instant,
    slots: Option<&Arc<Semaphore>>,
    id: u64,
    prompt_tokens: u32,
) -> TokenStream {
    let (tokens, first_token, cut) = {
        let mut rng = rand::thread_rng();
        let tokens = spec.tokens.sample(&mut rng).max(1);
        let cut = rand::Rng::gen_bool(&mut rng, spec.truncate).then_some(tokens / 2);
        (tokens, spec.first_token.sample(&mut rng), cut)
    };
    let slot = match slots {
        None => Slot::None,
        // A free slot now means the stream starts at its arrival; otherwise it waits in
        // line (tokio's semaphore is fair: a freed permit goes to the oldest waiter, and
        // `try_acquire` never takes one ahead of a waiter).
        Some(s) => match s.clone().try_acquire_owned() {
            Ok(permit) => Slot::Held { _permit: permit },
            Err(_) => Slot::Waiting(Box::pin(s.clone().acquire_owned())),
        },
    };
    let queued = matches!(slot, Slot::Waiting(_));
    let phase = match (spec.role_event, queued) {
        (true, _) => Phase::Role,
        (false, true) => Phase::Queued,
        (false, false) => Phase::Tokens,
    };
    TokenStream {
        spec,
        id,
        created: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        prompt_tokens,
        tokens,
        first_token,
        cut,
        sent: 0,
        phase,
        slot,
        next: later(arrived, first_token),
        last: arrived,
        sleep: None,
        flushed: false,
    }
}

impl TokenStream {
    /// Ready once `until` has passed, on the stream's one timer.
    fn wait(&mut self, until: Instant, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= until {
            return Poll::Ready(());
        }
        let until = tokio::time::Instant::from_std(until);
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(until)));
        if sleep.deadline() != until {
            sleep.as_mut().reset(until);
        }
        sleep.as_mut().poll(cx)
    }

    /// A ping due before `before`, once it is due: `Ready(true)` to send it now,
    /// `Ready(false)` when none comes first, `Pending` while one is not yet due.
    fn ping(&mut self, before: Option<Instant>, cx: &mut Context<'_>) -> Poll<bool> {
        let Some(every) = self.spec.ping_every else {
            return Poll::Ready(false);
        };
        let due = later(self.last, every);
        if before.is_some_and(|b| due >= b) {
            return Poll::Ready(false);
        }
        match self.wait(due, cx) {
            Poll::Ready(()) => {
                self.last = due;
                Poll::Ready(true)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    /// One event: a chunk object whose `choices` hold `choice`, then `tail` (more
    /// top-level fields), framed for the stream's format. Formatted straight into the
    /// one buffer the event is sent in.
    fn chunk(&self, choice: std::fmt::Arguments<'_>, tail: std::fmt::Arguments<'_>) -> Bytes {
        use std::fmt::Write;
        let mut out = String::with_capacity(320);
        let (before, after) = match self.spec.format {
            StreamFormat::Sse => ("data: ", "\n\n"),
            StreamFormat::Ndjson => ("", "\n"),
        };
        // Writing to a String cannot fail.
        let _ = write!(
            out,
            r#"{before}{{"id":"chatcmpl-loadgate-{}","object":"chat.completion.chunk","created":{},"model":"loadgate-target","choices":[{choice}]{tail}{}}}{after}"#,
            self.id,
            self.created,
            self.ndjson_done(self.phase == Phase::Finished),
        );
        Bytes::from(out)
    }

    /// Content token `k` (from 0).
    fn content(&self, k: u32) -> Bytes {
        let word = WORDS[k as usize % WORDS.len()];
        self.chunk(
            format_args!(r#"{{"index":0,"delta":{{"content":"{word}"}},"finish_reason":null}}"#),
            format_args!(""),
        )
    }

    /// NDJSON's `done` field (true on the last line); nothing in SSE.
    fn ndjson_done(&self, done: bool) -> &'static str {
        match (self.spec.format, done) {
            (StreamFormat::Sse, _) => "",
            (StreamFormat::Ndjson, false) => r#","done":false"#,
            (StreamFormat::Ndjson, true) => r#","done":true"#,
        }
    }

    /// A data frame.
    fn frame(bytes: Bytes) -> Poll<Option<Result<Frame<Bytes>, Aborted>>> {
        Poll::Ready(Some(Ok(Frame::data(bytes))))
    }
}

impl hyper::body::Body for TokenStream {
    type Data = Bytes;
    type Error = Aborted;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Aborted>>> {
        let this = &mut *self;
        loop {
            match this.phase {
                Phase::Role => {
                    this.phase = match this.slot {
                        Slot::Waiting(_) => Phase::Queued,
                        _ => Phase::Tokens,
                    };
                    return Self::frame(this.chunk(
                        format_args!(
                            r#"{{"index":0,"delta":{{"role":"assistant","content":""}},"finish_reason":null}}"#
                        ),
                        format_args!(""),
                    ));
                }
                Phase::Queued => {
                    let Slot::Waiting(wait) = &mut this.slot else {
                        this.phase = Phase::Tokens;
                        continue;
                    };
                    match wait.as_mut().poll(cx) {
                        Poll::Ready(Ok(permit)) => {
                            // The stream starts now: its first token is `first_token` on.
                            this.next = later(Instant::now(), this.first_token);
                            this.slot = Slot::Held { _permit: permit };
                            this.phase = Phase::Tokens;
                        }
                        // The semaphore is never closed; end the stream if it were.
                        Poll::Ready(Err(_)) => {
                            this.phase = Phase::Finished;
                            return Poll::Ready(None);
                        }
                        Poll::Pending => {
                            return match this.ping(None, cx) {
                                Poll::Ready(true) => Self::frame(Bytes::from_static(PING)),
                                _ => Poll::Pending,
                            };
                        }
                    }
                }
                Phase::Tokens => {
                    let due = this.next;
                    match this.ping(Some(due), cx) {
                        Poll::Ready(true) => return Self::frame(Bytes::from_static(PING)),
                        Poll::Ready(false) => {}
                        Poll::Pending => return Poll::Pending,
                    }
                    if this.wait(due, cx).is_pending() {
                        return Poll::Pending;
                    }
                    this.last = due;
                    let gap = this.spec.token_gap.sample(&mut rand::thread_rng());
                    this.next = later(due, gap);
                    let event = this.content(this.sent);
                    if this.cut == Some(this.sent) {
                        // Cut mid-event: half of this token's event, and the end when
                        // the next token would have been due.
                        this.phase = Phase::Cut;
                        this.flushed = false;
                        return Self::frame(event.slice(..event.len() / 2));
                    }
                    this.sent += 1;
                    if this.sent == this.tokens {
                        this.phase = Phase::Usage;
                    }
                    return Self::frame(event);
                }
                Phase::Cut => {
                    // Give hyper a `Pending` first, so the partial event is written
                    // before an abort drops the connection.
                    if !this.flushed {
                        this.flushed = true;
                        cx.waker().wake_by_ref();
                        return Poll::Pending;
                    }
                    if this.wait(this.next, cx).is_pending() {
                        return Poll::Pending;
                    }
                    this.slot = Slot::None;
                    this.phase = Phase::Finished;
                    return match this.spec.truncate_mode {
                        TruncateMode::Clean => Poll::Ready(None),
                        TruncateMode::Abort => Poll::Ready(Some(Err(Aborted))),
                    };
                }
                Phase::Usage => {
                    // Generation is over: the slot goes to the next in line.
                    this.slot = Slot::None;
                    this.phase = match this.spec.format {
                        StreamFormat::Sse => Phase::Done,
                        StreamFormat::Ndjson => Phase::Finished,
                    };
                    let (prompt, completion) = (this.prompt_tokens, this.sent);
                    // NDJSON's last line: `done` is true once the phase is `Finished`.
                    return Self::frame(this.chunk(
                        format_args!(r#"{{"index":0,"delta":{{}},"finish_reason":"stop"}}"#),
                        format_args!(
                            r#","usage":{{"prompt_tokens":{prompt},"completion_tokens":{completion},"total_tokens":{}}}"#,
                            u64::from(prompt) + u64::from(completion)
                        ),
                    ));
                }
                Phase::Done => {
                    this.phase = Phase::Finished;
                    return Self::frame(Bytes::from_static(DONE));
                }
                Phase::Finished => return Poll::Ready(None),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.phase == Phase::Finished
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// `at + d`, or a year after `at` where that is past the clock's end (a profile's absurd
/// duration must not panic the server).
fn later(at: Instant, d: Duration) -> Instant {
    at.checked_add(d)
        .or_else(|| at.checked_add(Duration::from_secs(365 * 86_400)))
        .unwrap_or(at)
}

/// Prompt tokens a request body stands for: a quarter of its bytes, rounded up (about
/// four bytes a token, the usual rule of thumb for English text).
pub(crate) fn prompt_tokens(body: &[u8]) -> u32 {
    u32::try_from(body.len().div_ceil(4)).unwrap_or(u32::MAX)
}
