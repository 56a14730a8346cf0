//! The stream reader (`loadgate_engine::stream`) on real streaming payloads (written
//! from the documented shapes of OpenAI's chat, completions and Responses APIs,
//! Anthropic's Messages API and Ollama), the SSE rules of the WHATWG spec, truncation,
//! the memory bound (an event past it skipped, the stream read on), the times it
//! reports, and, by property, that how a body is split into reads changes nothing but
//! the times (skipped events included), and that no input panics.

use std::time::{Duration, Instant};

use loadgate_engine::stream::{
    ContentRule, Ending, Fed, JsonPath, StreamEnd, StreamKind, StreamReader, StreamSpec,
    Terminator, TokenRule, Truncation,
};
use proptest::prelude::*;

fn spec(kind: StreamKind) -> StreamSpec {
    StreamSpec::new(kind, ContentRule::Auto, TokenRule::Auto, Terminator::Auto)
}

fn path(p: &str) -> JsonPath {
    JsonPath::parse(p).unwrap()
}

/// Feeds `chunks` one read each, a millisecond apart.
fn feed(spec: &StreamSpec, chunks: &[&[u8]]) -> (Vec<Fed>, StreamEnd) {
    let t0 = Instant::now();
    let mut reader = StreamReader::new(spec);
    let fed = chunks
        .iter()
        .enumerate()
        .map(|(i, c)| reader.feed(c, t0 + Duration::from_millis(i as u64)))
        .collect();
    (fed, reader.finish())
}

/// The totals of a stream, as one line (with the events skipped past the bound, when
/// there were any).
fn totals(end: &StreamEnd) -> String {
    let ending = match end.ending {
        Ending::Complete => "complete".to_string(),
        Ending::Truncated { why } => format!("truncated {why:?}"),
    };
    let tokens = end.tokens.map_or("-".to_string(), |t| t.to_string());
    let skipped = match (end.oversized, end.skipped) {
        (0, 0) => String::new(),
        (n, 0) => format!("{n} oversized, "),
        (n, k) => format!("{n} oversized, {k} skipped, "),
    };
    format!(
        "{} events, {} content, tokens {tokens}, {} errors, {skipped}{ending}",
        end.events, end.content_events, end.errors
    )
}

/// Reads `input` whole, then at every split into two reads, then a byte per read, and
/// checks the totals are `expect` every time.
fn check_with(spec: &StreamSpec, input: &str, expect: &str) {
    let input = input.as_bytes();
    let (_, end) = feed(spec, &[input]);
    assert_eq!(
        totals(&end),
        expect,
        "whole: {}",
        String::from_utf8_lossy(input)
    );
    for at in 1..input.len() {
        let (_, end) = feed(spec, &[&input[..at], &input[at..]]);
        assert_eq!(totals(&end), expect, "split at {at}");
    }
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    let (_, end) = feed(spec, &bytes);
    assert_eq!(totals(&end), expect, "a byte per read");
}

fn check(kind: StreamKind, input: &str, expect: &str) {
    check_with(&spec(kind), input, expect);
}

// OpenAI chat completions, `stream: true` with `stream_options: {"include_usage": true}`:
// a role-only first chunk (content ""), content chunks, a finish chunk with an empty
// delta, a usage-only chunk with no choices, then `[DONE]`.
const OPENAI_CHAT: &str = r#"data: {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}

data: {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}],"usage":null}

data: {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[{"index":0,"delta":{"content":"!"},"logprobs":null,"finish_reason":null}],"usage":null}

data: {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[{"index":0,"delta":{"content":" How can I help?"},"logprobs":null,"finish_reason":null}],"usage":null}

data: {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}

data: {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":6,"total_tokens":15,"completion_tokens_details":{"reasoning_tokens":0}}}

data: [DONE]

"#;

// Anthropic Messages, `stream: true`: the documented event flow for a text answer.
const ANTHROPIC_TEXT: &str = r#"event: message_start
data: {"type": "message_start", "message": {"id": "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY", "type": "message", "role": "assistant", "content": [], "model": "claude-sonnet-4-5", "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 25, "output_tokens": 1}}}

event: content_block_start
data: {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}

event: ping
data: {"type": "ping"}

event: content_block_delta
data: {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}}

event: content_block_delta
data: {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "!"}}

event: content_block_stop
data: {"type": "content_block_stop", "index": 0}

event: message_delta
data: {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence":null}, "usage": {"output_tokens": 15}}

event: message_stop
data: {"type": "message_stop"}

"#;

// Anthropic with extended thinking and a tool call: thinking deltas, a signature delta
// (not content), then the tool's input as partial JSON (the first one empty).
const ANTHROPIC_THINKING_TOOL: &str = r#"event: message_start
data: {"type":"message_start","message":{"id":"msg_01","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":472,"output_tokens":2}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"The user wants the weather"}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: content_block_start
data: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"get_weather","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"location\": \"San Fra"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"ncisco, CA\"}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":1}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":89}}

event: message_stop
data: {"type":"message_stop"}

"#;

// OpenAI Responses API: lifecycle events, text deltas, and the usage in the last event.
const OPENAI_RESPONSES: &str = r#"event: response.created
data: {"type":"response.created","sequence_number":0,"response":{"id":"resp_67c9fdcecf488190bdd9a0409de3a1ec07b8b0ad4e5eb654","object":"response","created_at":1741290958,"status":"in_progress","model":"gpt-4.1-2025-04-14","output":[],"usage":null}}

event: response.in_progress
data: {"type":"response.in_progress","sequence_number":1,"response":{"id":"resp_67c9fdcecf488190bdd9a0409de3a1ec07b8b0ad4e5eb654","object":"response","status":"in_progress","output":[],"usage":null}}

event: response.output_item.added
data: {"type":"response.output_item.added","sequence_number":2,"output_index":0,"item":{"id":"msg_67c9fdcf37fc8190ba82116e33fb28c507b8b0ad4e5eb654","type":"message","status":"in_progress","role":"assistant","content":[]}}

event: response.content_part.added
data: {"type":"response.content_part.added","sequence_number":3,"item_id":"msg_67c9fdcf37fc8190ba82116e33fb28c507b8b0ad4e5eb654","output_index":0,"content_index":0,"part":{"type":"output_text","text":"","annotations":[]}}

event: response.output_text.delta
data: {"type":"response.output_text.delta","sequence_number":4,"item_id":"msg_67c9fdcf37fc8190ba82116e33fb28c507b8b0ad4e5eb654","output_index":0,"content_index":0,"delta":"Hi"}

event: response.output_text.delta
data: {"type":"response.output_text.delta","sequence_number":5,"item_id":"msg_67c9fdcf37fc8190ba82116e33fb28c507b8b0ad4e5eb654","output_index":0,"content_index":0,"delta":" there!"}

event: response.output_text.done
data: {"type":"response.output_text.done","sequence_number":6,"item_id":"msg_67c9fdcf37fc8190ba82116e33fb28c507b8b0ad4e5eb654","output_index":0,"content_index":0,"text":"Hi there!"}

event: response.completed
data: {"type":"response.completed","sequence_number":7,"response":{"id":"resp_67c9fdcecf488190bdd9a0409de3a1ec07b8b0ad4e5eb654","object":"response","status":"completed","output":[{"type":"message","content":[{"type":"output_text","text":"Hi there!"}]}],"usage":{"input_tokens":37,"output_tokens":3,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":40}}}

"#;

// Ollama `/api/chat`, one JSON object per line; the last one has `done: true` and counts.
const OLLAMA_CHAT: &str = r#"{"model":"llama3.2","created_at":"2023-08-04T08:52:19.385406455-07:00","message":{"role":"assistant","content":"The"},"done":false}
{"model":"llama3.2","created_at":"2023-08-04T08:52:19.485406455-07:00","message":{"role":"assistant","content":" sky"},"done":false}
{"model":"llama3.2","created_at":"2023-08-04T08:52:19.585406455-07:00","message":{"role":"assistant","content":" is blue."},"done":false}
{"model":"llama3.2","created_at":"2023-08-04T19:22:45.499127Z","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","total_duration":4883583458,"load_duration":1334875,"prompt_eval_count":26,"prompt_eval_duration":342546000,"eval_count":282,"eval_duration":4535599000}
"#;

#[test]
fn openai_chat_counts_content_deltas_and_takes_usage() {
    check(
        StreamKind::Sse,
        OPENAI_CHAT,
        "7 events, 3 content, tokens 6, 0 errors, complete",
    );
    // Without `include_usage` every chunk has `"usage":null` and no usage chunk comes.
    let no_usage: String = OPENAI_CHAT
        .split("\n\n")
        .filter(|e| !e.contains("completion_tokens"))
        .map(|e| format!("{e}\n\n"))
        .collect();
    // Cut after `data: [DONE]`'s line, before its blank line: `[DONE]` was not
    // dispatched.
    check(
        StreamKind::Sse,
        &format!("{}\n", no_usage.trim_end_matches('\n')),
        "5 events, 3 content, tokens -, 0 errors, truncated MidEvent",
    );
    check(
        StreamKind::Sse,
        &no_usage,
        "6 events, 3 content, tokens -, 0 errors, complete",
    );
}

#[test]
fn openai_chat_reasoning_tool_calls_refusals_and_legacy_text_are_content() {
    let events = [
        // DeepSeek / vLLM reasoning models stream their reasoning first.
        r#"{"id":"1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":null,"reasoning_content":"Let me think"},"finish_reason":null}]}"#,
        // A tool call: the first chunk names it with empty arguments, later ones add to them.
        r#"{"id":"1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_DdmO9pD3xa9XTPNJ32zg2hcA","type":"function","function":{"name":"get_weather","arguments":""}}]},"finish_reason":null}]}"#,
        r#"{"id":"1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"location\":"}}]},"finish_reason":null}]}"#,
        r#"{"id":"1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"refusal":"I can't"},"finish_reason":null}]}"#,
        // Legacy completions.
        r#"{"id":"cmpl-7iA7iJjj8V2zOkCGvWF2hAkDWBQZe","object":"text_completion","created":1690759702,"choices":[{"text":"This","index":0,"logprobs":null,"finish_reason":null}],"model":"gpt-3.5-turbo-instruct"}"#,
        r#"{"id":"cmpl-7iA7iJjj8V2zOkCGvWF2hAkDWBQZe","object":"text_completion","created":1690759702,"choices":[{"text":"","index":0,"logprobs":null,"finish_reason":"length"}],"model":"gpt-3.5-turbo-instruct"}"#,
        // n = 2: content in the second choice only still makes the event content.
        r#"{"id":"1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":""}},{"index":1,"delta":{"content":"Hi"}}]}"#,
        // Not content: role only, empty tool calls, null content.
        r#"{"id":"1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant"}}]}"#,
        r#"{"id":"1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"tool_calls":[]}}]}"#,
        r#"{"id":"1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":null}}]}"#,
    ];
    let body: String = events.iter().map(|e| format!("data: {e}\n\n")).collect();
    check(
        StreamKind::Sse,
        &(body + "data: [DONE]\n\n"),
        "11 events, 6 content, tokens -, 0 errors, complete",
    );
}

#[test]
fn anthropic_counts_text_thinking_and_tool_input_deltas_and_takes_message_delta_usage() {
    check(
        StreamKind::Sse,
        ANTHROPIC_TEXT,
        "8 events, 2 content, tokens 15, 0 errors, complete",
    );
    // Not message_start's `output_tokens: 1`: only a top-level usage counts.
    check(
        StreamKind::Sse,
        ANTHROPIC_TEXT.split("event: message_delta").next().unwrap(),
        "6 events, 2 content, tokens -, 0 errors, truncated NoTerminator",
    );
    check(
        StreamKind::Sse,
        ANTHROPIC_THINKING_TOOL,
        "12 events, 3 content, tokens 89, 0 errors, complete",
    );
}

#[test]
fn anthropic_message_stop_ends_the_stream_by_event_type_or_by_data_and_errors_count() {
    check(
        StreamKind::Sse,
        "event: message_stop\ndata: {}\n\n",
        "1 events, 0 content, tokens -, 0 errors, complete",
    );
    check(
        StreamKind::Sse,
        "data: {\"type\":\"message_stop\"}\n\n",
        "1 events, 0 content, tokens -, 0 errors, complete",
    );
    let overloaded = ANTHROPIC_TEXT.split("event: content_block_stop").next().unwrap().to_string()
        + "event: error\ndata: {\"type\": \"error\", \"error\": {\"type\": \"overloaded_error\", \"message\": \"Overloaded\"}}\n\n";
    check(
        StreamKind::Sse,
        &overloaded,
        "6 events, 2 content, tokens -, 1 errors, truncated NoTerminator",
    );
    // OpenAI-compatible servers send an `error` object.
    check(
        StreamKind::Sse,
        "data: {\"error\":{\"message\":\"The server had an error\",\"type\":\"server_error\"}}\n\n",
        "1 events, 0 content, tokens -, 1 errors, truncated NoTerminator",
    );
}

#[test]
fn openai_responses_api_counts_text_deltas_and_ends_at_response_completed() {
    check(
        StreamKind::Sse,
        OPENAI_RESPONSES,
        "8 events, 2 content, tokens 3, 0 errors, complete",
    );
    check(
        StreamKind::Sse,
        "event: response.failed\ndata: {\"type\":\"response.failed\",\"response\":{\"status\":\"failed\",\"usage\":null}}\n\n",
        "1 events, 0 content, tokens -, 1 errors, complete",
    );
}

#[test]
fn ollama_ndjson_counts_message_content_and_takes_eval_count() {
    check(
        StreamKind::Ndjson,
        OLLAMA_CHAT,
        "4 events, 3 content, tokens 282, 0 errors, complete",
    );
    // `/api/generate` streams `response` text; blank lines and CRLF are fine.
    check(
        StreamKind::Ndjson,
        "{\"model\":\"llama3.2\",\"response\":\"The\",\"done\":false}\r\n\n   \n{\"model\":\"llama3.2\",\"response\":\"\",\"done\":true,\"eval_count\":2}\r\n",
        "2 events, 1 content, tokens 2, 0 errors, complete",
    );
    // A last line without its `\n` is not an event.
    check(
        StreamKind::Ndjson,
        OLLAMA_CHAT.trim_end(),
        "3 events, 3 content, tokens -, 0 errors, truncated MidLine",
    );
    check(
        StreamKind::Ndjson,
        "{\"error\":\"model 'llama9' not found\"}\n",
        "1 events, 0 content, tokens -, 1 errors, truncated NoTerminator",
    );
}

#[test]
fn sse_follows_the_whatwg_event_stream_rules() {
    let none = StreamSpec::new(
        StreamKind::Sse,
        ContentRule::Auto,
        TokenRule::Auto,
        Terminator::Nothing,
    );
    // Comments are keep-alives; `data` lines join with `\n` (one event); no space after
    // the colon is fine; `id`, `retry` and unknown fields change nothing.
    check_with(
        &none,
        ": keep-alive\n\n:\n\ndata: a\ndata:b\nid: 7\nretry: 1000\nfoo: bar\n\n",
        "1 events, 1 content, tokens -, 0 errors, complete",
    );
    // An event without data is no event; a `data` line without a colon is empty data:
    // an event, not content.
    check_with(
        &none,
        "event: ping\nid: 1\n\ndata\n\n",
        "1 events, 0 content, tokens -, 0 errors, complete",
    );
    // Lines may end with \r\n or \r alone; a BOM at the start is skipped, one
    // elsewhere is part of the line (a field named "\u{feff}data", ignored).
    check_with(
        &none,
        "\u{feff}data: a\r\n\r\ndata: b\r\rdata: c\r\n\n",
        "3 events, 3 content, tokens -, 0 errors, complete",
    );
    check_with(
        &none,
        "data: a\n\n\u{feff}data: b\n\n",
        "1 events, 1 content, tokens -, 0 errors, complete",
    );
    // Only one leading space is dropped: "data:  x" has data " x".
    check_with(
        &none,
        "data:  \n\n",
        "1 events, 1 content, tokens -, 0 errors, complete",
    );
    check_with(
        &none,
        "data: \n\n",
        "1 events, 0 content, tokens -, 0 errors, complete",
    );
}

#[test]
fn raw_text_streams_are_content_and_terminators_are_not() {
    let body = "data: Hello\n\ndata: 42\n\ndata: \"quoted\"\n\ndata: [DONE]\n\n";
    check(
        StreamKind::Sse,
        body,
        "4 events, 3 content, tokens -, 0 errors, complete",
    );
    // With no terminator expected, `[DONE]` is still never a token.
    let none = StreamSpec::new(
        StreamKind::Sse,
        ContentRule::Auto,
        TokenRule::Auto,
        Terminator::Nothing,
    );
    check_with(
        &none,
        body,
        "4 events, 3 content, tokens -, 0 errors, complete",
    );
    let end = StreamSpec::new(
        StreamKind::Sse,
        ContentRule::Auto,
        TokenRule::Auto,
        Terminator::Data("END".into()),
    );
    check_with(
        &end,
        "data: a\n\ndata: END\n\n",
        "2 events, 1 content, tokens -, 0 errors, complete",
    );
    check_with(
        &end,
        "data: a\n\ndata: [DONE]\n\n",
        "2 events, 1 content, tokens -, 0 errors, truncated NoTerminator",
    );
    // A JSON object of no known shape is not content: name a path for such an API.
    check(
        StreamKind::Sse,
        "data: {\"token\":\"hi\"}\n\ndata: [DONE]\n\n",
        "2 events, 0 content, tokens -, 0 errors, complete",
    );
}

/// Regression (review of issue 21): events a server sent after the terminator were
/// counted as tokens, and their gaps recorded, although the stream had ended there. The
/// stream is complete at its terminator: what follows is no token, no count, no error.
#[test]
fn nothing_after_the_terminator_counts() {
    let token = r#"data: {"choices":[{"delta":{"content":"a"}}]}"#;
    let late = format!(
        "{token}\n\ndata: [DONE]\n\n{token}\n\ndata: {{\"usage\":{{\"completion_tokens\":9}}}}\n\nevent: error\ndata: x\n\n"
    );
    check(
        StreamKind::Sse,
        &late,
        "5 events, 1 content, tokens -, 0 errors, complete",
    );
    let ndjson = "{\"message\":{\"content\":\"a\"},\"done\":false}\n{\"message\":{\"content\":\"\"},\"done\":true,\"eval_count\":1}\n{\"message\":{\"content\":\"b\"},\"done\":false}\n";
    check(
        StreamKind::Ndjson,
        ndjson,
        "3 events, 1 content, tokens 1, 0 errors, complete",
    );
}

#[test]
fn named_paths_choose_content_and_tokens() {
    let custom = StreamSpec::new(
        StreamKind::Sse,
        ContentRule::Path(path("$.token.text")),
        TokenRule::Path(path("$.stats[0].generated")),
        Terminator::Data("[END]".into()),
    );
    check_with(
        &custom,
        concat!(
            "data: {\"token\":{\"text\":\"Hi\"}}\n\n",
            "data: {\"token\":{\"text\":\"\"}}\n\n",
            "data: {\"token\":null}\n\n",
            "data: plain text\n\n",
            "data: {\"stats\":[{\"generated\":2},{\"generated\":99}]}\n\n",
            "data: [END]\n\n",
        ),
        "6 events, 1 content, tokens 2, 0 errors, complete",
    );
    // A path may start at an array; numbers, booleans and non-empty arrays are content.
    let array = StreamSpec::new(
        StreamKind::Ndjson,
        ContentRule::Path(path("$[*].t")),
        TokenRule::Auto,
        Terminator::Nothing,
    );
    check_with(
        &array,
        "[{\"t\":1}]\n[{\"t\":[]}]\n[{},{\"t\":false}]\n[{\"t\":[0]}]\n{\"t\":\"x\"}\n",
        "5 events, 3 content, tokens -, 0 errors, complete",
    );
}

/// A content path with `[*]` and a token path with `[1]` under the same array (in
/// either order): element 1 meets both (and a token path with `[*]` sums every
/// element's count, each counted once).
#[test]
fn paths_through_the_same_array_each_see_their_elements() {
    for (content, tokens, body, expect) in [
        (
            "$.a[*].t",
            "$.a[1].n",
            "{\"a\":[{\"t\":\"\",\"n\":3},{\"t\":\"x\",\"n\":5}]}\n",
            "1 events, 1 content, tokens 5, 0 errors, complete",
        ),
        (
            "$.a[1].t",
            "$.a[*].n",
            "{\"a\":[{\"t\":\"x\",\"n\":3},{\"t\":\"\",\"n\":4}]}\n",
            "1 events, 0 content, tokens 7, 0 errors, complete",
        ),
    ] {
        let s = StreamSpec::new(
            StreamKind::Ndjson,
            ContentRule::Path(path(content)),
            TokenRule::Path(path(tokens)),
            Terminator::Nothing,
        );
        check_with(&s, body, expect);
    }
}

/// Regression: a token path with `[*]` kept the last number it found. It sums them:
/// the tokens of every choice (or of every part a server reports apart) in one event.
/// Values that are not whole numbers are not counted; a path that finds no number
/// reports nothing; a later event's report replaces an earlier one, as for every
/// token path (usage is cumulative).
#[test]
fn a_token_path_with_a_wildcard_sums_the_numbers_it_finds() {
    let spec = |tokens: &str| {
        StreamSpec::new(
            StreamKind::Sse,
            ContentRule::Auto,
            TokenRule::Path(path(tokens)),
            Terminator::Auto,
        )
    };
    let chunk = "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n";
    for (tokens, usage, expect) in [
        (
            "$.choices[*].usage.tokens",
            r#"{"choices":[{"usage":{"tokens":3}},{"usage":{"tokens":4}},{"usage":{"tokens":5}}]}"#,
            "tokens 12",
        ),
        // Every element of every array on the way.
        (
            "$.parts[*].n[*]",
            r#"{"parts":[{"n":[1,2]},{"n":[]},{"n":[10]}]}"#,
            "tokens 13",
        ),
        // What is not a whole number is not counted.
        (
            "$.choices[*].n",
            r#"{"choices":[{"n":2},{"n":"7"},{"n":1.5},{"n":-1},{"n":null},{},{"n":3}]}"#,
            "tokens 5",
        ),
        (
            "$.choices[*].n",
            r#"{"choices":[{"n":"7"},{}]}"#,
            "tokens -",
        ),
        ("$.choices[*].n", r#"{"choices":[]}"#, "tokens -"),
        // Without a wildcard, the one value at the path.
        (
            "$.choices[1].n",
            r#"{"choices":[{"n":2},{"n":3}]}"#,
            "tokens 3",
        ),
    ] {
        let body = format!("{chunk}data: {usage}\n\ndata: [DONE]\n\n");
        check_with(
            &spec(tokens),
            &body,
            &format!("3 events, 1 content, {expect}, 0 errors, complete"),
        );
    }
    // The last event that reports a count gives the stream's: each event's own sum.
    check_with(
        &spec("$.choices[*].n"),
        concat!(
            "data: {\"choices\":[{\"n\":1},{\"n\":1}]}\n\n",
            "data: {\"choices\":[{\"n\":4},{\"n\":5}]}\n\n",
            "data: [DONE]\n\n",
        ),
        "3 events, 0 content, tokens 9, 0 errors, complete",
    );
    // A huge sum saturates, never wraps.
    check_with(
        &spec("$[*]"),
        &format!("data: [{}, 2]\n\ndata: [DONE]\n\n", u64::MAX),
        &format!(
            "2 events, 0 content, tokens {}, 0 errors, complete",
            u64::MAX
        ),
    );
}

#[test]
fn truncation_says_where_the_body_was_cut() {
    check(
        StreamKind::Sse,
        "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\ndata: {\"choi",
        "1 events, 1 content, tokens -, 0 errors, truncated MidLine",
    );
    check(
        StreamKind::Sse,
        "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\ndata: [DONE]\n",
        "1 events, 1 content, tokens -, 0 errors, truncated MidEvent",
    );
    check(
        StreamKind::Sse,
        "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n",
        "1 events, 1 content, tokens -, 0 errors, truncated NoTerminator",
    );
    check(
        StreamKind::Sse,
        "",
        "0 events, 0 content, tokens -, 0 errors, truncated NoTerminator",
    );
    check(
        StreamKind::Sse,
        "\u{feff}",
        "0 events, 0 content, tokens -, 0 errors, truncated NoTerminator",
    );
    // The start of a BOM and nothing else is a cut line.
    let (_, end) = feed(&spec(StreamKind::Sse), &[b"\xEF\xBB"]);
    assert_eq!(
        end.ending,
        Ending::Truncated {
            why: Truncation::MidLine
        }
    );
    // A comment after the terminator is not an event in progress.
    check(
        StreamKind::Sse,
        "data: [DONE]\n\n: bye\n",
        "1 events, 0 content, tokens -, 0 errors, complete",
    );
}

/// Regression: a `\r\n` whose `\r` ends one read and `\n` starts the next is one line
/// end; counted as two, the blank line between them would dispatch the event early.
#[test]
fn crlf_split_across_reads_is_one_line_end() {
    let none = StreamSpec::new(
        StreamKind::Sse,
        ContentRule::Auto,
        TokenRule::Auto,
        Terminator::Nothing,
    );
    let (fed, end) = feed(&none, &[b"data: a\r", b"\ndata: b\r\n\r\n"]);
    assert_eq!(
        totals(&end),
        "1 events, 1 content, tokens -, 0 errors, complete"
    );
    assert_eq!((fed[0].events, fed[1].events), (0, 1));
    // A lone `\r` at the end of a read followed by another line is a line end too.
    let (_, end) = feed(&none, &[b"data: a\r", b"\r", b"data: b\r", b"\r"]);
    assert_eq!(
        totals(&end),
        "2 events, 2 content, tokens -, 0 errors, complete"
    );
}

fn token(t: &str) -> String {
    format!("data: {{\"choices\":[{{\"delta\":{{\"content\":\"{t}\"}}}}]}}\n\n")
}

/// An event past the bound (a big tool result, an image) is skipped, not the stream:
/// it is one event and one content event, unread, and the stream is read on to its
/// terminator; the same however the body is cut into reads, with any SSE line end, when
/// it is many short data lines, and in NDJSON.
#[test]
fn an_event_over_the_bound_is_skipped_and_the_stream_read_on() {
    let small = spec(StreamKind::Sse).with_max_event(64);
    let big = token(&"x".repeat(100));
    let body = token("a") + &big + &token("b") + "data: [DONE]\n\n";
    for eol in ["\n", "\r\n", "\r"] {
        check_with(
            &small,
            &body.replace('\n', eol),
            "4 events, 3 content, tokens -, 0 errors, 1 oversized, complete",
        );
    }
    let many = "data: xxxxxxxx\n".repeat(10) + "\n";
    check_with(
        &small,
        &(token("a") + &many + &many + "data: [DONE]\n\n"),
        "4 events, 3 content, tokens -, 0 errors, 2 oversized, complete",
    );
    // Read whole with the default bound, the same stream has the same counts.
    let (_, unbound) = feed(&spec(StreamKind::Sse), &[body.as_bytes()]);
    assert_eq!(
        totals(&unbound),
        "4 events, 3 content, tokens -, 0 errors, complete"
    );
    let ndjson = spec(StreamKind::Ndjson).with_max_event(64);
    let line = |t: &str| format!("{{\"response\":\"{t}\",\"done\":false}}\n");
    let body = line("a") + &line(&"y".repeat(80)) + "{\"done\":true,\"eval_count\":7}\n";
    check_with(
        &ndjson,
        &body,
        "3 events, 2 content, tokens 7, 0 errors, 1 oversized, complete",
    );
    check_with(
        &ndjson,
        &body.replace('\n', "\r\n"),
        "3 events, 2 content, tokens 7, 0 errors, 1 oversized, complete",
    );
    // The server's usage in a later event is read: tokens are its count, not the
    // content events.
    let usage = "data: {\"choices\":[],\"usage\":{\"completion_tokens\":9}}\n\n";
    check_with(
        &small,
        &(token("a") + &big + usage + "data: [DONE]\n\n"),
        "4 events, 2 content, tokens 9, 0 errors, 1 oversized, complete",
    );
    // The bound is on a line and the data held before it: a line of exactly the bound
    // is read, one byte more is not; an event past the bound whose last data line is the
    // terminator still ends the stream (the skipped event's small lines are read).
    let body = "data: 12345\n\ndata: [DONE]\n\n";
    check_with(
        &spec(StreamKind::Sse).with_max_event(12),
        body,
        "2 events, 1 content, tokens -, 0 errors, complete",
    );
    check_with(
        &spec(StreamKind::Sse).with_max_event(11),
        body,
        "2 events, 1 content, tokens -, 0 errors, 1 oversized, complete",
    );
    // After the terminator a skipped event is an event and nothing more.
    check_with(
        &small,
        &(token("a") + "data: [DONE]\n\n" + &big),
        "3 events, 1 content, tokens -, 0 errors, 1 oversized, complete",
    );
}

/// Issue 21: an event past the bound that is (or ends in) the terminator was skipped
/// unread, so the stream had no terminator and was counted `stream_truncated`, the
/// target blamed for loadgate's limit. A skipped event keeps its SSE type, its last
/// data line when small, and the first bytes of its data, and ends the stream when
/// those say it is the terminator: `data: [DONE]` after a huge data line, `event:
/// message_stop`, a JSON object whose keys before the cut say it ends (Ollama's final
/// line with `"done": true` before a huge `context`, OpenAI Responses'
/// `response.completed` before the whole response). The same at every split.
#[test]
fn a_terminator_in_an_event_past_the_bound_still_ends_the_stream() {
    let small = spec(StreamKind::Sse).with_max_event(64);
    let huge = "x".repeat(200);
    // The huge data line is content, and the event ends the stream.
    check_with(
        &small,
        &(token("a") + &format!("data: {huge}\ndata: [DONE]\n\n")),
        "2 events, 2 content, tokens -, 0 errors, 1 oversized, complete",
    );
    check_with(
        &small,
        &(token("a")
            + &format!(
                "event: message_stop\ndata: {{\"type\":\"message_stop\",\"pad\":\"{huge}\"}}\n\n"
            )),
        "2 events, 1 content, tokens -, 0 errors, 1 oversized, complete",
    );
    check_with(
        &small,
        &(token("a")
            + &format!("data: {{\"type\":\"response.completed\",\"response\":{{\"output\":\"{huge}\"}}}}\n\n")),
        "2 events, 1 content, tokens -, 0 errors, 1 oversized, complete",
    );
    // A huge event that is not the end is content, and the stream still needs its end.
    check_with(
        &small,
        &(token("a") + &format!("data: {huge}\ndata: more\n\n")),
        "2 events, 2 content, tokens -, 0 errors, 1 oversized, truncated NoTerminator",
    );
    // A terminator of the scenario's own, as the last data line.
    let own = StreamSpec::new(
        StreamKind::Sse,
        ContentRule::Auto,
        TokenRule::Auto,
        Terminator::Data("END".into()),
    )
    .with_max_event(64);
    check_with(
        &own,
        &(token("a") + &format!("data: {huge}\ndata: END\n\n")),
        "2 events, 2 content, tokens -, 0 errors, 1 oversized, complete",
    );
    // Ollama's last line: `done` before a huge `context`; its empty response is no
    // content.
    let ndjson = spec(StreamKind::Ndjson).with_max_event(64);
    let context = vec!["1"; 100].join(",");
    let last = format!("{{\"model\":\"m\",\"response\":\"\",\"done\":true,\"context\":[{context}],\"eval_count\":3}}\n");
    check_with(
        &ndjson,
        &("{\"response\":\"a\",\"done\":false}\n".to_string() + &last),
        "2 events, 1 content, tokens -, 0 errors, 1 oversized, complete",
    );
    let not_last = last.replace("\"done\":true", "\"done\":false");
    check_with(
        &ndjson,
        &("{\"response\":\"a\",\"done\":false}\n".to_string() + &not_last),
        "2 events, 2 content, tokens -, 0 errors, 1 oversized, truncated NoTerminator",
    );
    // Only the head is read: a `done` past its first 1 KiB is not seen (the stream is
    // then cut, as before).
    let late = format!(
        "{{\"context\":[{}],\"done\":true}}\n",
        vec!["1"; 600].join(",")
    );
    let (_, end) = feed(&ndjson, &[late.as_bytes()]);
    assert_eq!(
        totals(&end),
        "1 events, 1 content, tokens -, 0 errors, 1 oversized, truncated NoTerminator"
    );
}

/// Issue 21: every open stream could hold up to 1 MiB of an unfinished event, so a
/// worker with 1,000 streams open could hold 1 GiB. A worker's readers share one budget
/// (`HeldBudget`): beyond their own 16 KiB a buffer, they hold an unfinished event only
/// while the budget allows, and an event it cannot hold is skipped as one past the
/// bound is, counted in `skipped` (loadgate's doing), never as oversized or a truncated
/// stream; every stream still ends complete, and the readers give back all they took,
/// also one dropped mid-event (a request given up on).
#[test]
fn a_workers_readers_hold_unfinished_events_only_within_its_budget() {
    use loadgate_engine::stream::HeldBudget;
    const LIMIT: usize = 100 << 10;
    let budget = HeldBudget::new(LIMIT);
    let sse = spec(StreamKind::Sse);
    let t0 = Instant::now();
    let part = format!("data: {}", "x".repeat(40 << 10));
    let mut readers: Vec<StreamReader<'_>> = (0..10)
        .map(|_| StreamReader::with_budget(&sse, &budget))
        .collect();
    for r in &mut readers {
        r.feed(token("a").as_bytes(), t0);
        r.feed(part.as_bytes(), t0);
        assert!(budget.held() <= LIMIT, "{}", budget.held());
    }
    assert!(budget.held() > 0, "the first readers hold their events");
    let rest = "xxx\n\n".to_string() + &token("b") + "data: [DONE]\n\n";
    let ends: Vec<StreamEnd> = readers
        .iter_mut()
        .map(|r| {
            r.feed(rest.as_bytes(), t0 + Duration::from_millis(1));
            r.finish()
        })
        .collect();
    let skipped: u64 = ends.iter().map(|e| e.skipped).sum();
    assert!(
        (1..10).contains(&skipped),
        "some held, some skipped: {skipped}"
    );
    for e in &ends {
        assert_eq!(e.ending, Ending::Complete, "{e:?}");
        assert_eq!(
            (e.events, e.content_events, e.oversized),
            (4, 3, 0),
            "{e:?}"
        );
    }
    assert_eq!(budget.held(), 0, "every reader gave back what it took");
    // Without a budget (or a roomy one) nothing is skipped.
    let roomy = HeldBudget::default();
    let mut r = StreamReader::with_budget(&sse, &roomy);
    r.feed(part.as_bytes(), t0);
    assert!(roomy.held() > 0);
    r.feed(rest.as_bytes(), t0);
    let end = r.finish();
    assert_eq!((end.skipped, end.content_events), (0, 2));
    assert_eq!(roomy.held(), 0);
    // NDJSON, and a reader dropped mid-event gives its bytes back.
    let ndjson = spec(StreamKind::Ndjson);
    let line = format!("{{\"response\":\"{}\"", "y".repeat(80 << 10));
    {
        let mut held = StreamReader::with_budget(&ndjson, &budget);
        held.feed(line.as_bytes(), t0);
        assert!(budget.held() > 0);
        let mut refused = StreamReader::with_budget(&ndjson, &budget);
        refused.feed(line.as_bytes(), t0);
        refused.feed(b",\"done\":false}\n{\"done\":true}\n", t0);
        let end = refused.finish();
        assert_eq!(
            (end.skipped, end.oversized, end.ending),
            (1, 0, Ending::Complete),
            "{end:?}"
        );
    }
    assert_eq!(
        budget.held(),
        0,
        "a reader dropped mid-event gave back its bytes"
    );
}

/// A body that ends inside a skipped event is cut there, as any other: in its line, or
/// between its lines before the blank one; the event is not counted.
#[test]
fn a_body_that_ends_inside_a_skipped_event_is_truncated() {
    let small = spec(StreamKind::Sse).with_max_event(64);
    let big = format!("data: {}", "x".repeat(100));
    check_with(
        &small,
        &(token("a") + &big),
        "1 events, 1 content, tokens -, 0 errors, truncated MidLine",
    );
    for eol in ["\n", "\r\n", "\r"] {
        check_with(
            &small,
            &(token("a") + &big + eol + "id: 1" + eol),
            "1 events, 1 content, tokens -, 0 errors, truncated MidEvent",
        );
    }
    check_with(
        &spec(StreamKind::Ndjson).with_max_event(64),
        &("{\"response\":\"a\",\"done\":false}\n".to_string() + &"y".repeat(100)),
        "1 events, 1 content, tokens -, 0 errors, truncated MidLine",
    );
}

/// An SSE comment line past the bound carries nothing: it is passed over alone, and the
/// event around it keeps its data (no event is made of it, none is skipped).
#[test]
fn a_comment_over_the_bound_is_passed_over_alone() {
    let small = spec(StreamKind::Sse).with_max_event(64);
    let pad = format!(": {}\n", "p".repeat(100));
    check_with(
        &small,
        &(pad.clone() + "\n" + &token("a") + &pad + "data: [DONE]\n\n"),
        "2 events, 1 content, tokens -, 0 errors, complete",
    );
    let inside = "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n".to_string()
        + &pad
        + "\ndata: [DONE]\n\n";
    check_with(
        &small,
        &inside,
        "2 events, 1 content, tokens -, 0 errors, complete",
    );
}

/// A skipped event is timed as any other: it completes in the read that brings its
/// blank line, and closes a gap.
#[test]
fn a_skipped_event_completes_in_the_read_of_its_blank_line() {
    let small = spec(StreamKind::Sse).with_max_event(64);
    let big = token(&"x".repeat(100));
    let (head, tail) = big.split_at(big.len() - 1);
    let first = token("a") + head;
    let last = tail.to_string() + &token("b") + "data: [DONE]\n\n";
    let (fed, end) = feed(&small, &[first.as_bytes(), last.as_bytes()]);
    assert_eq!(
        fed.iter().map(|f| f.content_events).collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!(fed[1].gap, Some(Duration::from_millis(1)));
    assert_eq!(end.oversized, 1);
}

#[test]
fn times_first_token_and_gaps_with_zero_gaps_inside_one_read() {
    let token =
        |t: &str| format!("data: {{\"choices\":[{{\"delta\":{{\"content\":\"{t}\"}}}}]}}\n\n");
    let role = "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\n";
    let reads = [
        role.to_string(),
        token("a") + &token("b")[..10],
        token("b")[10..].to_string() + &token("c") + &token("d"),
        ": keep-alive\n\n".to_string(),
        token("e") + "data: [DONE]\n\n",
    ];
    let reads: Vec<&[u8]> = reads.iter().map(|r| r.as_bytes()).collect();
    let (fed, end) = feed(&spec(StreamKind::Sse), &reads);
    let ms = Duration::from_millis;
    let gaps: Vec<Vec<Duration>> = fed.iter().map(|f| f.gaps().collect()).collect();
    assert_eq!(
        fed.iter().map(|f| f.content_events).collect::<Vec<_>>(),
        [0, 1, 3, 0, 1]
    );
    assert!(fed[1].first_content && fed.iter().filter(|f| f.first_content).count() == 1);
    // Read 2 completes b, c and d: b 1 ms after a, then c and d with it.
    assert_eq!(
        gaps,
        [
            vec![],
            vec![],
            vec![ms(1), ms(0), ms(0)],
            vec![],
            vec![ms(2)]
        ]
    );
    assert!(fed[4].done && !fed[3].done);
    // The gaps add up to the time from the first content event to the last.
    let total: Duration = gaps.iter().flatten().sum();
    assert_eq!(
        Some(total),
        end.last_content.zip(end.first_content).map(|(l, f)| l - f)
    );
    assert_eq!(gaps.iter().flatten().count() as u64, end.content_events - 1);
}

#[test]
fn chunks_are_one_content_event_per_read() {
    let s = spec(StreamKind::Chunks);
    let (fed, end) = feed(&s, &[b"Hel", b"", b"lo", b"\n\n"]);
    assert_eq!(
        totals(&end),
        "3 events, 3 content, tokens -, 0 errors, complete"
    );
    assert_eq!(fed[1], Fed::default());
    assert_eq!(fed[2].gap, Some(Duration::from_millis(2)));
}

/// A chunked body is handed over chunk by chunk: the chunks one read brought (`feed`,
/// then `feed_more`) are one read, so one content event for raw chunks, and events
/// that arrived together with no gap between them for SSE.
#[test]
fn the_chunks_of_one_read_arrive_together() {
    let t0 = Instant::now();
    let t1 = t0 + Duration::from_millis(100);
    let s = spec(StreamKind::Chunks);
    let mut reader = StreamReader::new(&s);
    assert!(reader.feed(b"Hel", t0).first_content);
    let fed = reader.feed(b"lo", t1);
    assert_eq!(fed.gaps().collect::<Vec<_>>(), [Duration::from_millis(100)]);
    // " wor" and "ld" in one read after an empty piece: one event, no gap of its own.
    assert_eq!(
        reader.feed(b"", t1 + Duration::from_millis(100)),
        Fed::default()
    );
    let fed = reader.feed_more(b" wor", t1 + Duration::from_millis(100));
    assert_eq!(fed.gaps().collect::<Vec<_>>(), [Duration::from_millis(100)]);
    assert_eq!(
        reader.feed_more(b"ld", t1 + Duration::from_millis(100)),
        Fed::default()
    );
    assert_eq!(
        totals(&reader.finish()),
        "3 events, 3 content, tokens -, 0 errors, complete"
    );

    let s = spec(StreamKind::Sse);
    let mut reader = StreamReader::new(&s);
    let event =
        |c: &str| format!("data: {{\"choices\":[{{\"delta\":{{\"content\":\"{c}\"}}}}]}}\n\n");
    assert!(reader.feed(event("a").as_bytes(), t0).first_content);
    let fed = reader.feed(event("b").as_bytes(), t1);
    assert_eq!(fed.gaps().collect::<Vec<_>>(), [Duration::from_millis(100)]);
    let fed = reader.feed_more(event("c").as_bytes(), t1);
    assert_eq!(fed.gaps().collect::<Vec<_>>(), [Duration::ZERO]);
    reader.feed_more(b"data: [DONE]\n\n", t1);
    assert_eq!(
        totals(&reader.finish()),
        "4 events, 3 content, tokens -, 0 errors, complete"
    );
}

#[test]
fn a_finished_reader_reads_the_next_response_afresh() {
    let s = spec(StreamKind::Sse);
    let mut reader = StreamReader::new(&s);
    let t0 = Instant::now();
    reader.feed(b"data: cut off in the mid", t0);
    assert_eq!(
        reader.finish().ending,
        Ending::Truncated {
            why: Truncation::MidLine
        }
    );
    let fed = reader.feed(ANTHROPIC_TEXT.as_bytes(), t0);
    assert!(fed.first_content && fed.done);
    assert_eq!(
        totals(&reader.finish()),
        "8 events, 2 content, tokens 15, 0 errors, complete"
    );
}

#[test]
fn deeply_nested_json_does_not_overflow_the_stack() {
    for kind in [StreamKind::Sse, StreamKind::Ndjson] {
        let deep = "[".repeat(100_000) + &"]".repeat(100_000);
        let objects = "{\"choices\":".repeat(50_000) + "1" + &"}".repeat(50_000);
        for data in [deep, objects] {
            let body = match kind {
                StreamKind::Sse => format!("data: {data}\n\n"),
                _ => format!("{data}\n"),
            };
            let (_, end) = feed(&spec(kind), &[body.as_bytes()]);
            assert_eq!(end.events, 1);
        }
    }
}

/// Every stream above, for the properties.
fn streams() -> Vec<(StreamKind, &'static str)> {
    vec![
        (StreamKind::Sse, OPENAI_CHAT),
        (StreamKind::Sse, ANTHROPIC_TEXT),
        (StreamKind::Sse, ANTHROPIC_THINKING_TOOL),
        (StreamKind::Sse, OPENAI_RESPONSES),
        (StreamKind::Ndjson, OLLAMA_CHAT),
    ]
}

/// Cuts `body` at `cuts` (any positions, sorted and clamped here).
fn cut<'a>(body: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
    at.sort_unstable();
    let mut pieces = Vec::new();
    let mut from = 0;
    for a in at.into_iter().chain([body.len()]) {
        pieces.push(&body[from..a]);
        from = a;
    }
    pieces
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// However a valid stream is cut into reads, and with whichever line ends, the
    /// totals are those of reading it whole.
    #[test]
    fn any_split_gives_the_totals_of_the_whole(
        which in 0usize..5,
        cuts in prop::collection::vec(any::<usize>(), 0..40),
        crlf in prop::sample::select(vec!["\n", "\r\n", "\r"]),
    ) {
        let (kind, body) = streams()[which];
        let body = if kind == StreamKind::Sse { body.replace('\n', crlf) } else { body.to_string() };
        let s = spec(kind);
        let (_, whole) = feed(&s, &[body.as_bytes()]);
        prop_assert_eq!(whole.ending, Ending::Complete);
        let (fed, split) = feed(&s, &cut(body.as_bytes(), &cuts));
        prop_assert_eq!(totals(&split), totals(&whole));
        let content: u64 = fed.iter().map(|f| u64::from(f.content_events)).sum();
        prop_assert_eq!(content, split.content_events);
        prop_assert_eq!(fed.iter().filter(|f| f.first_content).count(), usize::from(content > 0));
        prop_assert_eq!(fed.iter().map(|f| f.gaps().count() as u64).sum::<u64>(), content.saturating_sub(1));
    }

    /// A generated token stream, cut anywhere, with keep-alives between events: every
    /// token is one content event.
    #[test]
    fn generated_streams_count_every_token(
        tokens in prop::collection::vec("[a-zA-Z0-9 .,!?\"\\\\\u{e9}\u{4e16}]{0,12}", 0..30),
        keepalive in any::<bool>(),
        cuts in prop::collection::vec(any::<usize>(), 0..20),
    ) {
        let mut body = String::new();
        for t in &tokens {
            let delta = serde_json::json!({"choices": [{"index": 0, "delta": {"content": t}}]});
            body += &format!("data: {delta}\n\n");
            if keepalive {
                body += ": ping\n\n";
            }
        }
        body += "data: [DONE]\n\n";
        let (_, end) = feed(&spec(StreamKind::Sse), &cut(body.as_bytes(), &cuts));
        let non_empty = tokens.iter().filter(|t| !t.is_empty()).count() as u64;
        prop_assert_eq!(end.content_events, non_empty);
        prop_assert_eq!(end.events, tokens.len() as u64 + 1);
        prop_assert_eq!(end.ending, Ending::Complete);
    }

    /// No input panics, whatever the kind, the bound or the cuts, and what is reported
    /// holds together.
    #[test]
    fn arbitrary_bytes_never_panic(
        body in prop::collection::vec(any::<u8>(), 0..600),
        cuts in prop::collection::vec(any::<usize>(), 0..20),
        kind in prop::sample::select(vec![StreamKind::Sse, StreamKind::Ndjson, StreamKind::Chunks]),
        max in prop::sample::select(vec![0usize, 1, 16, 1 << 20]),
    ) {
        let s = spec(kind).with_max_event(max);
        let (fed, end) = feed(&s, &cut(&body, &cuts));
        prop_assert!(end.content_events <= end.events);
        prop_assert_eq!(fed.iter().map(|f| u64::from(f.events)).sum::<u64>(), end.events);
    }

    /// Bytes made of the characters that matter to the framing, to reach its corners.
    #[test]
    fn framing_characters_never_panic(
        body in prop::collection::vec(prop::sample::select(b"data:event \r\n{}[]\"\xEF\xBB\xBF".to_vec()), 0..300),
        cuts in prop::collection::vec(any::<usize>(), 0..20),
        kind in prop::sample::select(vec![StreamKind::Sse, StreamKind::Ndjson]),
        max in prop::sample::select(vec![4usize, 12, 64]),
    ) {
        let s = spec(kind).with_max_event(max);
        let (_, whole) = feed(&s, &[&body]);
        let (_, split) = feed(&s, &cut(&body, &cuts));
        // The bound applies to whole lines, so it strikes at the same place too.
        prop_assert_eq!(totals(&split), totals(&whole));
    }

    /// A generated stream of tokens, some past the bound (one long line, or many short
    /// data lines), with comments past it or not, between events and inside them, cut
    /// anywhere, with any line end: every token is one content event whether it was read
    /// or skipped, the skipped ones are counted, the stream is complete, and the totals
    /// are those of reading it whole.
    #[test]
    fn skipped_events_do_not_depend_on_the_cuts(
        items in prop::collection::vec((0u8..4, 1usize..120), 0..12),
        eol in prop::sample::select(vec!["\n", "\r\n", "\r"]),
        cuts in prop::collection::vec(any::<usize>(), 0..30),
    ) {
        const MAX: usize = 64;
        let mut body = String::new();
        let (mut tokens, mut skipped) = (0u64, 0u64);
        for &(kind, len) in &items {
            let x = "x".repeat(len);
            match kind {
                // One data line: skipped when the line passes the bound.
                0 => {
                    let line = format!("data: {{\"choices\":[{{\"delta\":{{\"content\":\"{x}\"}}}}]}}");
                    skipped += u64::from(line.len() > MAX);
                    body += &format!("{line}{eol}{eol}");
                    tokens += 1;
                }
                // `len / 5 + 1` data lines of 11 bytes (raw text, content): the
                // 59 bytes of data held before an eleventh line and it pass 64.
                1 => {
                    let lines = len / 5 + 1;
                    skipped += u64::from(lines > 10);
                    body += &format!("data: xxxxx{eol}").repeat(lines);
                    body += eol;
                    tokens += 1;
                }
                // A comment between events, past the bound or not: nothing.
                2 => body += &format!(": {x}{eol}"),
                // A comment inside an event: the event is read.
                _ => {
                    body += &format!("data: t{eol}: {x}{eol}{eol}");
                    tokens += 1;
                }
            }
        }
        body += &format!("data: [DONE]{eol}{eol}");
        let s = spec(StreamKind::Sse).with_max_event(MAX);
        let (_, whole) = feed(&s, &[body.as_bytes()]);
        let (fed, split) = feed(&s, &cut(body.as_bytes(), &cuts));
        prop_assert_eq!(totals(&split), totals(&whole));
        prop_assert_eq!(split.content_events, tokens);
        prop_assert_eq!(split.events, tokens + 1);
        prop_assert_eq!(split.oversized, skipped);
        prop_assert_eq!(split.ending, Ending::Complete);
        prop_assert_eq!(fed.iter().map(|f| u64::from(f.content_events)).sum::<u64>(), tokens);
        // Without the bound, the same counts.
        let (_, unbound) = feed(&spec(StreamKind::Sse), &[body.as_bytes()]);
        prop_assert_eq!(
            (unbound.events, unbound.content_events, unbound.oversized),
            (split.events, split.content_events, 0)
        );
    }

    /// The same for NDJSON: lines past the bound are one content event each.
    #[test]
    fn skipped_ndjson_lines_do_not_depend_on_the_cuts(
        lens in prop::collection::vec(1usize..120, 0..12),
        crlf in any::<bool>(),
        cuts in prop::collection::vec(any::<usize>(), 0..30),
    ) {
        const MAX: usize = 64;
        let eol = if crlf { "\r\n" } else { "\n" };
        let mut body = String::new();
        let mut skipped = 0u64;
        for &len in &lens {
            let line = format!("{{\"message\":{{\"content\":\"{}\"}},\"done\":false}}{eol}", "y".repeat(len));
            // The bound is on the line without its `\n` (a `\r` before it counts).
            skipped += u64::from(line.len() - 1 > MAX);
            body += &line;
        }
        body += &format!("{{\"done\":true,\"eval_count\":3}}{eol}");
        let s = spec(StreamKind::Ndjson).with_max_event(MAX);
        let (_, whole) = feed(&s, &[body.as_bytes()]);
        let (_, split) = feed(&s, &cut(body.as_bytes(), &cuts));
        prop_assert_eq!(totals(&split), totals(&whole));
        prop_assert_eq!(split.content_events, lens.len() as u64);
        prop_assert_eq!(split.events, lens.len() as u64 + 1);
        prop_assert_eq!(split.oversized, skipped);
        prop_assert_eq!(split.tokens, Some(3));
        prop_assert_eq!(split.ending, Ending::Complete);
    }
}
