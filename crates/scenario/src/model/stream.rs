//! An endpoint's streamed response (`stream = "sse"`): how its body is read as events,
//! which events carry content (tokens), where the server reports its token count, what
//! ends a complete stream, and the timeouts that fit streams (`first_byte_timeout`,
//! `idle_timeout`).
//!
//! Also the per-request limits of goodput (`goodput = { ttft = "500ms" }`): what a
//! request must meet, beyond succeeding, to count as good.
//!
//! Not here: reading streams (the engine's `stream.rs`), what the figures mean (metrics).

use std::time::Duration;

use super::value::{duration, DURATION_HINT};
use crate::diag::Sink;
use crate::json_path::JsonPath;
use crate::raw;

/// How a streamed body is cut into events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// Server-sent events (`text/event-stream`): events end at a blank line.
    Sse,
    /// Newline-delimited JSON: one value per line.
    Ndjson,
    /// Raw chunks: every read of the body is one content event.
    Chunks,
}

impl StreamKind {
    /// `sse`, `ndjson` or `chunks`.
    pub fn name(self) -> &'static str {
        match self {
            StreamKind::Sse => "sse",
            StreamKind::Ndjson => "ndjson",
            StreamKind::Chunks => "chunks",
        }
    }
}

/// What ends a complete stream; a body that ends before it is `stream_truncated`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamDone {
    /// The usual terminators: OpenAI's `data: [DONE]`, Anthropic's `message_stop`
    /// event, a JSON line with `"done": true` (Ollama). Raw chunks have none.
    Auto,
    /// None: any clean end of the body is complete.
    Nothing,
    /// An event (SSE) or line (NDJSON) whose data is exactly this.
    Data(String),
}

/// How an endpoint's response is read as a stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Stream {
    /// How the body is cut into events.
    pub kind: StreamKind,
    /// Where an event's content is: an event is a content event (a token, or a chunk of
    /// tokens) when this path selects a non-empty value. `None`: the OpenAI chat and
    /// completion chunk shapes and Anthropic's `content_block_delta`, else any non-JSON
    /// data.
    pub content: Option<JsonPath>,
    /// Where the server reports the output token count (the last one seen counts).
    /// `None`: OpenAI's `usage.completion_tokens`, Anthropic's `usage.output_tokens`,
    /// Ollama's `eval_count`; without any, the content events are counted.
    pub tokens: Option<JsonPath>,
    /// What ends a complete stream.
    pub done: StreamDone,
}

/// The stream settings of endpoint `e` (`stream`, `stream_content`, `stream_tokens`,
/// `stream_done`), each mistake reported where it is written.
pub(super) fn stream(sink: &mut Sink<'_>, e: &raw::Endpoint) -> Option<Stream> {
    let Some(kind) = &e.stream else {
        for (key, v) in [
            ("stream_content", &e.stream_content),
            ("stream_tokens", &e.stream_tokens),
            ("stream_done", &e.stream_done),
        ] {
            if let Some(v) = v {
                sink.span(
                    v.span(),
                    format!("{key} applies to a streamed response"),
                    Some("add stream = \"sse\" (or \"ndjson\", \"chunks\") to the endpoint".into()),
                );
            }
        }
        return None;
    };
    let kind = match kind.get_ref().as_str() {
        "sse" => StreamKind::Sse,
        "ndjson" | "jsonl" => StreamKind::Ndjson,
        "chunks" => StreamKind::Chunks,
        other => {
            sink.span(
                kind.span(),
                format!("unknown stream kind `{other}`"),
                Some("use \"sse\" (server-sent events), \"ndjson\" (a JSON value per line) or \"chunks\" (every read is a token)".into()),
            );
            return None;
        }
    };
    if let Some(check) = e.checks.json.first() {
        sink.span(
            check.span(),
            "checks.json reads one JSON body, and a streamed body is a sequence of events",
            Some("check the status or use body_contains (it reads the first max_body bytes of the stream), or remove stream".into()),
        );
    }
    let mut path = |v: &Option<raw::S<String>>, what: &str| -> Option<JsonPath> {
        let v = v.as_ref()?;
        match JsonPath::parse(v.get_ref()) {
            Ok(p) => Some(p),
            Err(err) => {
                let at = sink.string_body_start(&v.span()) + err.column.saturating_sub(1);
                sink.at(
                    at,
                    format!("{what}: {err}"),
                    Some("write a JSON path such as \"$.choices[*].delta.content\"".into()),
                );
                None
            }
        }
    };
    let content = path(&e.stream_content, "stream_content");
    let tokens = path(&e.stream_tokens, "stream_tokens");
    if kind == StreamKind::Chunks {
        // Every read of raw chunks is a token: there is no event to read a count or a
        // terminator from.
        for (key, v) in [
            ("stream_content", &e.stream_content),
            ("stream_tokens", &e.stream_tokens),
            ("stream_done", &e.stream_done),
        ] {
            if let Some(v) = v {
                sink.span(
                    v.span(),
                    format!("{key} applies to events, and raw chunks have none"),
                    Some(format!(
                        "use stream = \"sse\" or \"ndjson\", or remove {key}"
                    )),
                );
            }
        }
    }
    let done = match e.stream_done.as_ref().map(|d| d.get_ref().as_str()) {
        None | Some("auto") => StreamDone::Auto,
        Some("none") => StreamDone::Nothing,
        Some("") => {
            let d = e.stream_done.as_ref().expect("matched Some");
            sink.span(
                d.span(),
                "stream_done is empty",
                Some(
                    "write the data that ends a stream (e.g. \"[DONE]\"), \"auto\" or \"none\""
                        .into(),
                ),
            );
            StreamDone::Auto
        }
        Some(data) => StreamDone::Data(data.to_string()),
    };
    Some(Stream {
        kind,
        content,
        tokens,
        done,
    })
}

/// An endpoint's `first_byte_timeout` or `idle_timeout` (or `[defaults]`'): above zero
/// and below the whole `timeout`, which would fire first; `whose`: which timeout that is
/// (`[defaults] timeout`, `the endpoint's timeout`), for the hint.
pub(super) fn stream_timeout(
    sink: &mut Sink<'_>,
    v: Option<&raw::S<String>>,
    what: &str,
    timeout: Duration,
    whose: &str,
) -> Option<Duration> {
    let v = v?;
    let d = duration(sink, v, what)?;
    if d.is_zero() {
        sink.span(
            v.span(),
            format!("{what} must be greater than zero"),
            DURATION_HINT.to_string(),
        );
        return None;
    }
    if d >= timeout {
        sink.span(
            v.span(),
            format!(
                "{what} {} is not below the request timeout {}, which would end the request first",
                humantime::format_duration(d),
                humantime::format_duration(timeout)
            ),
            Some(format!("lower {what}, or raise {whose}")),
        );
        return None;
    }
    Some(d)
}

/// What a request must meet, beyond succeeding, to count toward goodput (its endpoint's
/// `goodput` table, else `[defaults]`'s): each limit on a time measured from the
/// intended send, as latency. With none, every success is good.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GoodLimits {
    /// The whole response.
    pub latency: Option<Duration>,
    /// Its first byte.
    pub ttfb: Option<Duration>,
    /// A stream's first token (a stream without one is not good).
    pub ttft: Option<Duration>,
    /// A stream's mean gap between tokens: from its first token to its last, over the
    /// gaps (AIPerf's per-request inter-token latency).
    pub itl: Option<Duration>,
}

/// The `goodput` table `g`, each limit read where it is written.
pub(super) fn good_limits(sink: &mut Sink<'_>, g: Option<&raw::Goodput>) -> Option<GoodLimits> {
    let g = g?;
    let mut limit = |v: &Option<raw::S<String>>, what: &str| -> Option<Duration> {
        let v = v.as_ref()?;
        let d = duration(sink, v, &format!("goodput {what}"))?;
        if d.is_zero() {
            sink.span(
                v.span(),
                format!("goodput {what} must be greater than zero"),
                DURATION_HINT.to_string(),
            );
            return None;
        }
        Some(d)
    };
    Some(GoodLimits {
        latency: limit(&g.latency, "latency"),
        ttfb: limit(&g.ttfb, "ttfb"),
        ttft: limit(&g.ttft, "ttft"),
        itl: limit(&g.itl, "itl"),
    })
}
