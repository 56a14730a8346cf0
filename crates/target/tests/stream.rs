//! Streamed answers (`[route.stream]`) over real sockets: what a client reads, in what
//! order, and no earlier than the profile says.
//!
//! Every time bound is a lower bound from the test's own clock: a request is sent before
//! the target sees it, so an event due `d` after the target's arrival cannot be read
//! earlier than `d` after the send, however slow or busy the machine. Nothing asserts
//! how late an event may be, except that a stream ends within a generous read timeout.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use loadgate_target::{loopback, Latency, Profile, Tokens};
use serde_json::Value;

const MS: fn(u64) -> Duration = Duration::from_millis;

/// How a streamed body ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// HTTP/1.1's last chunk arrived.
    LastChunk,
    /// The connection closed before it.
    Closed,
}

/// What a client saw of one streamed HTTP/1.1 answer.
struct Seen {
    /// When the request was written (before the target could see it).
    sent: Instant,
    /// Status line and headers.
    head: String,
    /// Each whole event (SSE: up to its blank line; NDJSON: its line) and when the read
    /// that completed it returned.
    events: Vec<(String, Instant)>,
    /// Body bytes after the last whole event.
    rest: String,
    end: End,
}

/// An event's JSON chunk (SSE `data:` or an NDJSON line), unless it is a ping or `[DONE]`.
fn chunk(event: &str) -> Option<Value> {
    let text = event.strip_prefix("data: ").unwrap_or(event);
    serde_json::from_str::<Value>(text.trim_end()).ok()
}

/// An event's chunk if it carries a content token (non-empty `delta.content`).
fn token(event: &str) -> Option<Value> {
    chunk(event).filter(|j| {
        j["choices"][0]["delta"]["content"]
            .as_str()
            .is_some_and(|c| !c.is_empty())
    })
}

impl Seen {
    /// The events that carry a content token, parsed, with when they were read.
    fn content(&self) -> Vec<(Value, Instant)> {
        self.events
            .iter()
            .filter_map(|(e, at)| token(e).map(|j| (j, *at)))
            .collect()
    }

    /// Every event that is a JSON chunk (not a ping or `[DONE]`), parsed.
    fn json(&self) -> Vec<(Value, Instant)> {
        self.events
            .iter()
            .filter_map(|(e, at)| chunk(e).map(|j| (j, *at)))
            .collect()
    }

    /// The events' texts.
    fn texts(&self) -> Vec<&str> {
        self.events.iter().map(|(e, _)| e.as_str()).collect()
    }
}

/// Sends `request` (a whole HTTP/1.1 request) to `addr` and reads the streamed answer
/// to its end, splitting the chunked body into events at `separator` ("\n\n" for SSE,
/// "\n" for NDJSON) as they arrive. With `stop_after` content events, stops reading
/// there and drops the connection (`end` is then `Closed`).
fn read_stream(
    addr: SocketAddr,
    request: &str,
    separator: &str,
    stop_after: Option<usize>,
) -> Seen {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let sent = Instant::now();
    s.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let mut head = None;
    let mut body = Vec::new();
    let mut events = Vec::new();
    let mut end = None;
    let mut buf = [0u8; 4096];
    while end.is_none() {
        let n = match s.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => 0,
            Err(e) => panic!("no end of the stream within 30 s: {e}"),
        };
        let at = Instant::now();
        if n == 0 {
            end = Some(End::Closed);
        }
        raw.extend_from_slice(&buf[..n]);
        if head.is_none() {
            let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            head = Some(String::from_utf8(raw[..i].to_vec()).unwrap());
            raw.drain(..i + 4);
        }
        // Whole chunks: `size\r\n data \r\n`; a zero size is the last chunk.
        while let Some(line) = raw.windows(2).position(|w| w == b"\r\n") {
            let size = usize::from_str_radix(std::str::from_utf8(&raw[..line]).unwrap(), 16)
                .unwrap_or_else(|e| panic!("bad chunk size: {e}"));
            if raw.len() < line + 2 + size + 2 {
                break;
            }
            body.extend_from_slice(&raw[line + 2..line + 2 + size]);
            raw.drain(..line + 2 + size + 2);
            if size == 0 {
                end = Some(End::LastChunk);
            }
        }
        while let Some(i) = body
            .windows(separator.len())
            .position(|w| w == separator.as_bytes())
        {
            let event: Vec<u8> = body.drain(..i + separator.len()).collect();
            events.push((String::from_utf8(event).unwrap(), at));
        }
        let tokens = events.iter().filter(|(e, _)| token(e).is_some()).count();
        if stop_after.is_some_and(|stop| tokens >= stop) {
            end = Some(End::Closed);
        }
    }
    Seen {
        sent,
        head: head.expect("a response head"),
        events,
        rest: String::from_utf8(body).unwrap(),
        end: end.unwrap(),
    }
}

/// A POST of `body` to `path`.
fn post(path: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// A route at `/s` with `stream`'s keys.
fn profile(stream: &str) -> String {
    format!("[[route]]\nmethod = \"POST\"\npath = \"/s\"\n[route.stream]\n{stream}\n")
}

const PROMPT: &str =
    r#"{"messages":[{"role":"user","content":"How much did I spend last month?"}]}"#;

#[test]
fn sse_tokens_leave_on_schedule_after_a_role_event_and_end_with_usage_and_done() {
    let target = loopback(&profile(
        "first_token = { dist = \"fixed\", value = \"1s\" }\ntoken_gap = { dist = \"fixed\", value = \"50ms\" }\ntokens = 8",
    ));
    let seen = read_stream(target.addr(), &post("/s", PROMPT), "\n\n", None);
    assert!(seen.head.starts_with("HTTP/1.1 200"), "{}", seen.head);
    assert!(
        seen.head.contains("content-type: text/event-stream"),
        "{}",
        seen.head
    );
    assert!(
        seen.head.contains("transfer-encoding: chunked"),
        "{}",
        seen.head
    );
    assert_eq!(seen.end, End::LastChunk);
    assert_eq!(seen.rest, "");

    // The role-only event first, alone: the first token is a second later, so only a
    // client held for that second could read the two together.
    let json = seen.json();
    assert_eq!(
        json[0].0["choices"][0]["delta"],
        serde_json::json!({"role": "assistant", "content": ""})
    );
    let content = seen.content();
    assert!(
        json[0].1 < content[0].1,
        "the role event came with the first token"
    );

    // Each token no earlier than its due time: 1 s, then 50 ms apart.
    assert_eq!(content.len(), 8);
    for (k, (chunk, at)) in content.iter().enumerate() {
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!(chunk["id"], json[0].0["id"], "one completion id");
        assert_eq!(chunk["choices"][0]["finish_reason"], Value::Null);
        let due = MS(1000) + MS(50) * k as u32;
        assert!(
            *at - seen.sent >= due,
            "token {k} read {:?} after the send, due at {due:?}",
            *at - seen.sent
        );
    }

    // Then the usage, counting what was sent, and `[DONE]`.
    let (last, _) = json.last().unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    let prompt = PROMPT.len().div_ceil(4) as u64;
    assert_eq!(
        last["usage"],
        serde_json::json!({"prompt_tokens": prompt, "completion_tokens": 8, "total_tokens": prompt + 8})
    );
    let texts = seen.texts();
    assert_eq!(texts.last(), Some(&"data: [DONE]\n\n"));
    assert_eq!(
        texts.len(),
        1 + 8 + 1 + 1,
        "role, tokens, usage, done: {texts:?}"
    );
}

#[test]
fn pings_fill_the_silence_and_are_no_tokens() {
    // Pings are due 100 ms after the event before: four before the token due at 450 ms,
    // none in the 30 ms gaps. The count follows from the schedule, not the machine.
    let target = loopback(&profile(
        "first_token = { dist = \"fixed\", value = \"450ms\" }\ntoken_gap = { dist = \"fixed\", value = \"30ms\" }\ntokens = 3\nping_every = \"100ms\"",
    ));
    let seen = read_stream(target.addr(), &post("/s", "{}"), "\n\n", None);
    let texts = seen.texts();
    let kinds: Vec<&str> = texts
        .iter()
        .map(|t| match *t {
            ": ping\n\n" => "ping",
            "data: [DONE]\n\n" => "done",
            t if t.contains("\"role\"") => "role",
            t if t.contains("\"usage\"") => "usage",
            _ => "token",
        })
        .collect();
    assert_eq!(
        kinds,
        ["role", "ping", "ping", "ping", "ping", "token", "token", "token", "usage", "done"]
    );
    let content = seen.content();
    assert!(content[0].1 - seen.sent >= MS(450));
}

#[test]
fn truncated_streams_stop_mid_event_without_usage_or_done() {
    let route = |path: &str, mode: &str| {
        format!(
            "[[route]]\nmethod = \"POST\"\npath = \"{path}\"\n[route.stream]\nfirst_token = {{ dist = \"fixed\", value = \"10ms\" }}\ntoken_gap = {{ dist = \"fixed\", value = \"10ms\" }}\ntokens = 7\ntruncate = 1.0\ntruncate_mode = \"{mode}\"\n"
        )
    };
    let target = loopback(&format!(
        "{}{}",
        route("/clean", "clean"),
        route("/abort", "abort")
    ));
    for (path, end) in [("/clean", End::LastChunk), ("/abort", End::Closed)] {
        let seen = read_stream(target.addr(), &post(path, "{}"), "\n\n", None);
        assert_eq!(seen.end, end, "{path}");
        // Half of 7 tokens, rounded down, then half of the fourth token's event.
        assert_eq!(seen.content().len(), 3, "{path}: {:?}", seen.texts());
        assert!(
            seen.rest.starts_with("data: {\"id\":\"chatcmpl-loadgate-")
                && !seen.rest.contains('\n'),
            "{path}: ends mid-event: {:?}",
            seen.rest
        );
        assert!(
            seen.texts()
                .iter()
                .all(|t| !t.contains("[DONE]") && !t.contains("usage")),
            "{path}: {:?}",
            seen.texts()
        );
    }
}

#[test]
fn ndjson_lines_carry_the_chunk_shape_and_the_last_is_done_with_usage() {
    let target = loopback(&profile(
        "format = \"ndjson\"\nfirst_token = { dist = \"fixed\", value = \"20ms\" }\ntoken_gap = { dist = \"fixed\", value = \"10ms\" }\ntokens = { min = 5, max = 5 }",
    ));
    let seen = read_stream(target.addr(), &post("/s", "{}"), "\n", None);
    assert!(
        seen.head.contains("content-type: application/x-ndjson"),
        "{}",
        seen.head
    );
    assert_eq!(seen.end, End::LastChunk);
    assert_eq!(seen.rest, "");
    let json = seen.json();
    assert_eq!(json.len(), seen.events.len(), "every line is JSON");
    assert_eq!(json.len(), 1 + 5 + 1);
    assert_eq!(json[0].0["choices"][0]["delta"]["role"], "assistant");
    for (k, (line, at)) in seen.content().iter().enumerate() {
        assert_eq!(line["done"], false);
        assert!(*at - seen.sent >= MS(20) + MS(10) * k as u32);
    }
    let (last, _) = json.last().unwrap();
    assert_eq!(last["done"], true);
    assert_eq!(last["usage"]["completion_tokens"], 5);
    assert_eq!(last["usage"]["prompt_tokens"], 1);
    assert!(!seen.texts().iter().any(|t| t.contains("[DONE]")));
}

#[test]
fn with_max_streams_the_next_stream_waits_for_a_slot_before_its_first_token() {
    // Two slots, three streams: the third to arrive waits until one of the first two has
    // sent its last token (no earlier than 300 + 4 * 20 ms after the first send), and
    // only then starts its own 300 ms to the first token. Without the limit every first
    // token would be due 300 ms after its own send.
    let target = loopback(&profile(
        "first_token = { dist = \"fixed\", value = \"300ms\" }\ntoken_gap = { dist = \"fixed\", value = \"20ms\" }\ntokens = 5\nmax_streams = 2",
    ));
    let addr = target.addr();
    let first_sent = Instant::now();
    let readers: Vec<_> = (0..3)
        .map(|_| std::thread::spawn(move || read_stream(addr, &post("/s", "{}"), "\n\n", None)))
        .collect();
    let seen: Vec<Seen> = readers.into_iter().map(|r| r.join().unwrap()).collect();
    for s in &seen {
        assert_eq!(s.end, End::LastChunk);
        assert_eq!(s.content().len(), 5, "{:?}", s.texts());
        assert_eq!(s.texts().last(), Some(&"data: [DONE]\n\n"));
        // A waiting stream gets its head and role event before it waits.
        assert!(s.texts()[0].contains("\"role\":\"assistant\""));
    }
    let last_first_token = seen.iter().map(|s| s.content()[0].1).max().unwrap();
    let bound = MS(300) + MS(20) * 4 + MS(300);
    assert!(
        last_first_token - first_sent >= bound,
        "the third stream's first token came {:?} after the first send, before a slot freed and its first_token passed ({bound:?})",
        last_first_token - first_sent
    );
    // Its tokens still follow each other by the gap.
    let queued = seen
        .iter()
        .find(|s| s.content()[0].1 == last_first_token)
        .unwrap();
    let c = queued.content();
    assert!(c[4].1 - first_sent >= bound + MS(20) * 4);
}

#[test]
fn a_client_that_leaves_mid_stream_frees_its_slot() {
    // One slot and a stream of 100,000 tokens (1,000 s): the second client gets a token
    // only if the first one's leaving ended its stream.
    let target = loopback(&profile(
        "first_token = { dist = \"fixed\", value = \"0ms\" }\ntoken_gap = { dist = \"fixed\", value = \"10ms\" }\ntokens = 100000\nmax_streams = 1",
    ));
    let first = read_stream(target.addr(), &post("/s", "{}"), "\n\n", Some(2));
    // (A read may bring more than asked for.)
    assert!(first.content().len() >= 2);
    let second = read_stream(target.addr(), &post("/s", "{}"), "\n\n", Some(3));
    assert!(second.content().len() >= 3);
    // And the server still answers.
    let third = read_stream(target.addr(), &post("/s", "{}"), "\n\n", Some(1));
    assert!(third.head.starts_with("HTTP/1.1 200"), "{}", third.head);
}

#[test]
fn the_demo_streams_agent_queries_that_ask_for_it() {
    let mut demo = Profile::demo();
    let agent = demo
        .routes
        .iter_mut()
        .find(|r| r.path == "/api/agent/query")
        .unwrap();
    let stream = agent
        .stream
        .as_mut()
        .expect("the demo's agent query streams");
    assert!(stream.asked_only);
    // Quick and certain: no injected errors or cuts.
    stream.first_token = Latency::Fixed(MS(5));
    stream.token_gap = Latency::Fixed(MS(1));
    stream.tokens = Tokens::Fixed(4);
    stream.truncate = 0.0;
    agent.error_rate = 0.0;
    agent.latency = Latency::Fixed(MS(1));
    let target = loadgate_target::spawn(demo, "127.0.0.1:0".parse().unwrap(), 1).unwrap();
    let query = r#"{"query": "How much did I spend last month?"}"#;
    let streamed = r#"{"query": "How much did I spend last month?", "stream": true}"#;

    let whole = read_stream(
        target.addr(),
        &post("/api/agent/query", query),
        "\n\n",
        None,
    );
    assert!(
        whole.head.contains("content-type: application/json"),
        "{}",
        whole.head
    );

    let asked_in_body = read_stream(
        target.addr(),
        &post("/api/agent/query", streamed),
        "\n\n",
        None,
    );
    let asked_by_accept = read_stream(
        target.addr(),
        &post("/api/agent/query", query).replacen("\r\n", "\r\nAccept: text/event-stream\r\n", 1),
        "\n\n",
        None,
    );
    for seen in [asked_in_body, asked_by_accept] {
        assert!(
            seen.head.contains("content-type: text/event-stream"),
            "{}",
            seen.head
        );
        assert_eq!(seen.content().len(), 4);
        assert_eq!(seen.texts().last(), Some(&"data: [DONE]\n\n"));
    }

    // Validation still applies to a request that asks for a stream.
    let refused = read_stream(
        target.addr(),
        &post("/api/agent/query", r#"{"stream": true}"#),
        "\n\n",
        None,
    );
    assert!(refused.head.starts_with("HTTP/1.1 400"), "{}", refused.head);
}

#[tokio::test]
async fn over_h2_each_event_is_a_data_frame_of_its_own_and_an_abort_resets_the_stream() {
    use http_body_util::{BodyExt, Full};
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let target = loopback(&format!(
        "{}[[route]]\nmethod = \"POST\"\npath = \"/cut\"\n[route.stream]\nfirst_token = {{ dist = \"fixed\", value = \"10ms\" }}\ntoken_gap = {{ dist = \"fixed\", value = \"10ms\" }}\ntokens = 4\ntruncate = 1.0\ntruncate_mode = \"abort\"\n",
        profile(
            "first_token = { dist = \"fixed\", value = \"200ms\" }\ntoken_gap = { dist = \"fixed\", value = \"40ms\" }\ntokens = 4",
        )
    ));
    let tcp = tokio::net::TcpStream::connect(target.addr()).await.unwrap();
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    let request = |path: &str| {
        hyper::Request::post(format!("http://{}{path}", target.addr()))
            .body(Full::new(bytes::Bytes::from_static(b"{}")))
            .unwrap()
    };

    let sent = Instant::now();
    let resp = send.send_request(request("/s")).await.unwrap();
    assert_eq!(resp.version(), hyper::Version::HTTP_2);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut body = resp.into_body();
    let mut frames = Vec::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.unwrap().into_data() {
            frames.push((String::from_utf8(data.to_vec()).unwrap(), Instant::now()));
        }
    }
    let whole: Vec<&str> = frames
        .iter()
        .map(|(f, _)| f.as_str())
        .filter(|f| !f.is_empty())
        .collect();
    assert_eq!(whole.len(), 1 + 4 + 1 + 1, "one frame per event: {whole:?}");
    assert!(whole.iter().all(|f| f.starts_with("data: ")
        && f.ends_with("\n\n")
        && f.matches("data: ").count() == 1));
    let tokens: Vec<Instant> = frames
        .iter()
        .filter(|(f, _)| f.contains("\"content\":\"") && !f.contains("\"content\":\"\""))
        .map(|(_, at)| *at)
        .collect();
    assert_eq!(tokens.len(), 4);
    for (k, at) in tokens.iter().enumerate() {
        assert!(*at - sent >= MS(200) + MS(40) * k as u32, "token {k}");
    }
    assert_eq!(whole.last(), Some(&"data: [DONE]\n\n"));

    // An aborted stream is reset: its body ends in an error after two tokens and half.
    let resp = send.send_request(request("/cut")).await.unwrap();
    let mut body = resp.into_body();
    let mut got = String::new();
    let error = loop {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    got.push_str(std::str::from_utf8(&data).unwrap());
                }
            }
            Some(Err(e)) => break e,
            None => panic!("an aborted stream ended cleanly: {got}"),
        }
    };
    let error = format!("{error:?}");
    assert!(
        error.contains("Reset(") && error.contains("Remote"),
        "not a reset from the target: {error}"
    );
    assert_eq!(
        got.matches("\n\n").count(),
        1 + 2,
        "role and two tokens: {got}"
    );
    assert!(!got.ends_with("\n\n") && !got.contains("[DONE]"), "{got}");
}
