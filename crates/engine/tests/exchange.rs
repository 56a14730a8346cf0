//! `execute` against real servers on 127.0.0.1:0: what an exchange gives back (status,
//! headers, kept body, byte count) and the instants of its path (connect time only on a
//! new connection, the first byte of the response, latency from the intended send).
//!
//! Bounds are the servers' own fixed delays, never the machine's speed.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::Frame;
use loadgate_engine::{execute, Call, ClientOptions, Deadlines, Exchange, HttpClient, Prepared};
use loadgate_metrics::Outcome;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long the slow-body servers wait between a response's head and its body.
const DELAY: Duration = Duration::from_millis(300);

/// The first endpoint of a scenario aimed at `base` (`${BASE}`), and a client for it.
struct Target {
    client: HttpClient,
    prepared: Prepared,
    timeout: Duration,
}

/// `scenario`: TOML after `target`; `${BASE}` is `base`.
fn target(base: &str, scenario: &str) -> Target {
    let b = base.to_string();
    let text = format!("name = \"x\"\ntarget = \"${{BASE}}\"\n{scenario}");
    let s = loadgate_scenario::parse(std::path::Path::new("t.toml"), &text, &move |_| {
        Some(b.clone())
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let client = HttpClient::new(ClientOptions {
        connect_timeout: s.connect_timeout,
        http: s.http,
        insecure: false,
        connections: None,
        tls_files: Default::default(),
    })
    .unwrap();
    let prepared = Prepared::all(&s, base).unwrap().remove(0);
    Target {
        client,
        prepared,
        timeout: s.timeout,
    }
}

/// One `GET {path}` endpoint over `http` (auto, http1, http2) with `timeout`.
fn get(base: &str, path: &str, http: &str, timeout: &str) -> Target {
    target(
        base,
        &format!("[defaults]\nhttp = \"{http}\"\ntimeout = \"{timeout}\"\nconnect_timeout = \"1s\"\n[[endpoint]]\nname = \"e\"\npath = \"{path}\"\n"),
    )
}

impl Target {
    /// One request, sent `lag` after it was due, within the timeout (which fires: the
    /// deadlines are watched meanwhile).
    async fn call_late(&self, lag: Duration) -> Exchange {
        self.call_with(lag, &mut Vec::new()).await
    }

    /// One request, as [`Target::call_late`], with the gaps its stream closed in `gaps`.
    async fn call_with(&self, lag: Duration, gaps: &mut Vec<Duration>) -> Exchange {
        use rand::SeedableRng;
        let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
        let mut ctx = loadgate_scenario::RenderCtx {
            seq: 0,
            rng: &mut rng,
            row: None,
            lists: &[],
            vars: &[],
        };
        let req = self.prepared.build(&mut ctx, &mut Vec::new()).unwrap();
        let deadlines = Deadlines::new(self.timeout);
        let sent = Instant::now();
        let intended = sent - lag;
        let mut record = |_: Instant, gap: Duration| gaps.push(gap);
        let call = execute(
            &self.client,
            &self.prepared,
            Call::Http(req),
            (intended, sent),
            &deadlines,
            None,
            &mut record,
            None,
        );
        tokio::select! {
            exchange = call => exchange,
            () = deadlines.watch() => unreachable!("the watch never ends"),
        }
    }

    async fn call(&self) -> Exchange {
        self.call_late(Duration::ZERO).await
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// A server on 127.0.0.1:0 that answers every request at once with a head that sets
/// `x-head: first`, and [`DELAY`] later with its 4-byte body: HTTP/1.1 written by hand
/// (keep-alive), or HTTP/2 (prior knowledge) by hyper, whose stream sends the head as
/// soon as the response is returned. Runs on the caller's runtime; its base URL.
async fn slow_body(h2: bool) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            if h2 {
                tokio::spawn(serve_h2(sock));
            } else {
                tokio::spawn(serve_h1(sock));
            }
        }
    });
    format!("http://{addr}")
}

async fn serve_h1(mut sock: tokio::net::TcpStream) {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        while memchr::memmem::find(&seen, b"\r\n\r\n").is_none() {
            match sock.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
        let end = memchr::memmem::find(&seen, b"\r\n\r\n").unwrap() + 4;
        seen.drain(..end);
        let head = b"HTTP/1.1 200 OK\r\nx-head: first\r\ncontent-length: 4\r\n\r\n";
        if sock.write_all(head).await.is_err() {
            return;
        }
        tokio::time::sleep(DELAY).await;
        if sock.write_all(b"body").await.is_err() {
            return;
        }
    }
}

async fn serve_h2(sock: tokio::net::TcpStream) {
    let service = hyper::service::service_fn(|_req| async {
        let body = Later {
            sleep: Box::pin(tokio::time::sleep(DELAY)),
            data: Some(Bytes::from_static(b"body")),
        };
        Ok::<_, Infallible>(
            http::Response::builder()
                .header("x-head", "first")
                .body(body)
                .unwrap(),
        )
    });
    let _ = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
        .serve_connection(hyper_util::rt::TokioIo::new(sock), service)
        .await;
}

/// A body that is one frame, `data`, once `sleep` has elapsed.
struct Later {
    sleep: Pin<Box<tokio::time::Sleep>>,
    data: Option<Bytes>,
}

impl hyper::body::Body for Later {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.data.is_none() {
            return Poll::Ready(None);
        }
        std::task::ready!(self.sleep.as_mut().poll(cx));
        Poll::Ready(self.data.take().map(|d| Ok(Frame::data(d))))
    }
}

/// Time to first byte is when the head arrived, not the body: under the server's delay
/// between the two, while latency is over it; both from the intended send.
#[test]
fn time_to_first_byte_is_when_the_head_arrived_not_the_body() {
    block_on(async {
        for (h2, http) in [(false, "http1"), (true, "http2")] {
            let base = slow_body(h2).await;
            let t = get(&base, "/", http, "5s");
            // Twice: on a new connection, then on the same one again.
            for _ in 0..2 {
                let x = t.call().await;
                let response = x.result.as_ref().expect("answered");
                assert_eq!((response.status, response.bytes), (200, 4), "{http}");
                let ttfb = x.time_to_first_byte().expect("a head arrived");
                assert!(ttfb < DELAY, "{http}: first byte after {ttfb:?}: {x:?}");
                assert!(x.latency() >= DELAY, "{http}: {x:?}");
                let (ready, first) = (x.ready.unwrap(), x.first_byte.unwrap());
                assert!(x.sent <= ready && ready <= first && first <= x.end, "{x:?}");
            }
            // Sent 100 ms after it was due (a late generator): the first byte counts from
            // when it was due, as latency does.
            let lag = Duration::from_millis(100);
            let x = t.call_late(lag).await;
            let ttfb = x.time_to_first_byte().unwrap();
            assert!(ttfb >= lag && ttfb < lag + DELAY, "{http}: {x:?}");
        }
    });
}

/// Regression guard for the failure path: a response whose head came and whose body
/// then stalled past the timeout is a timeout that still says when its first byte came.
#[test]
fn a_response_that_times_out_after_its_head_keeps_its_first_byte() {
    let server =
        loadgate_target::spawn_fault(loadgate_target::Fault::Drip, "127.0.0.1:0".parse().unwrap())
            .unwrap();
    block_on(async {
        let t = get(&server.base_url(), "/", "http1", "500ms");
        let x = t.call().await;
        let e = x.result.as_ref().expect_err("the body drips for 100 s");
        assert_eq!(e.outcome, Outcome::Timeout);
        let ttfb = x.time_to_first_byte().expect("the head came at once");
        assert!(ttfb < Duration::from_millis(500), "{x:?}");
        assert!(x.latency() >= Duration::from_millis(500), "{x:?}");
        assert!(x.connect.is_some(), "{x:?}");
    });
}

/// The headers a server sets are read from what `execute` returns, over HTTP/1.1 and
/// HTTP/2, when the endpoint keeps them; without that nothing builds a header map.
#[test]
fn response_headers_can_be_read_from_the_exchange() {
    let embedded = loadgate_target::loopback("");
    block_on(async {
        let slow = slow_body(false).await;
        for (base, path, http, name, value) in [
            (&slow, "/", "http1", "x-head", "first"),
            (
                &embedded.base_url(),
                loadgate_target::VERSION_PATH,
                "http1",
                "content-type",
                "application/json",
            ),
            (
                &embedded.base_url(),
                loadgate_target::VERSION_PATH,
                "http2",
                "content-type",
                "application/json",
            ),
        ] {
            let mut t = get(base, path, http, "5s");
            let x = t.call().await;
            assert!(x.result.unwrap().headers().is_empty(), "{http}: not kept");
            t.prepared.keep_response_headers();
            for _ in 0..2 {
                let x = t.call().await;
                let response = x.result.unwrap();
                assert_eq!(response.headers()[name], value, "{http}: {response:?}");
            }
        }
    });
}

/// Connect time is noted on the request that opened a connection, and on no request
/// that reused one, over HTTP/1.1 (the idle stack) and HTTP/2 (the shared connection).
#[test]
fn connect_time_is_noted_only_on_new_connections() {
    let embedded = loadgate_target::loopback("");
    block_on(async {
        for http in ["http1", "http2"] {
            let t = get(
                &embedded.base_url(),
                loadgate_target::VERSION_PATH,
                http,
                "5s",
            );
            let first = t.call().await;
            assert!(first.connect.is_some(), "{http}: {first:?}");
            let connect = first.connect.unwrap();
            assert!(
                connect <= first.ready.unwrap() - first.sent,
                "{http}: {first:?}"
            );
            for _ in 0..3 {
                let again = t.call().await;
                assert!(again.result.is_ok(), "{http}: {again:?}");
                assert_eq!(again.connect, None, "{http}: reused: {again:?}");
                assert!(!again.resent);
            }
        }
    });
}

/// Latency runs from the intended send, service time from the actual one: a request
/// sent 100 ms late is exactly 100 ms slower in latency, whatever the machine's speed.
#[test]
fn latency_counts_from_the_intended_send_time_not_the_actual_one() {
    let embedded = loadgate_target::loopback("[[route]]\npath = \"/\"\n");
    block_on(async {
        let t = get(&embedded.base_url(), "/", "auto", "10s");
        let lag = Duration::from_millis(100);
        let x = t.call_late(lag).await;
        assert_eq!(x.result.as_ref().unwrap().status, 200, "{x:?}");
        assert_eq!(x.latency() - x.service_time(), lag, "{x:?}");
        let ttfb = x.time_to_first_byte().expect("a response came");
        assert!(ttfb >= lag && ttfb <= x.latency(), "{x:?}");
    });
}

/// Memory stays bounded, measured where it is held (issue 19: not the process's peak
/// RSS): one exchange of a 100 MiB answer keeps exactly the check window of its body,
/// counts every byte, and leaves the connection a read buffer the size of a response
/// head at most.
#[test]
fn a_huge_body_is_counted_but_only_the_check_window_is_kept() {
    let n = 100 << 20;
    let server = loadgate_target::spawn_fault(
        loadgate_target::Fault::HugeBody(n),
        "127.0.0.1:0".parse().unwrap(),
    )
    .unwrap();
    block_on(async {
        let t = target(
            &server.base_url(),
            "[defaults]\nmax_body = \"1MiB\"\ntimeout = \"20s\"\n[[endpoint]]\nname = \"r\"\npath = \"/\"\nchecks = { body_contains = \"xxxx\" }\n",
        );
        let x = t.call().await;
        let reply = x.result.unwrap();
        assert_eq!(reply.bytes, n, "every byte read and counted");
        assert_eq!(reply.body.len(), 1 << 20, "only the check window kept");
        assert!(
            reply.body.capacity() <= 2 << 20,
            "{}",
            reply.body.capacity()
        );
        let held = t.client.idle_buffer_bytes();
        assert!(
            (1..=64 * 1024).contains(&held),
            "the idle connection's read buffer: {held} bytes"
        );
    });
}

/// A profile whose `/chat` streams `tokens` tokens in the OpenAI chunk shape, the first
/// `first` after the request, then one every `gap` (the target's own fixed schedule),
/// with `extra` keys in its stream table.
fn sse_profile(first: &str, gap: &str, tokens: u32, extra: &str) -> String {
    format!(
        "[[route]]\nmethod = \"POST\"\npath = \"/chat\"\n[route.stream]\nformat = \"sse\"\nfirst_token = {{ dist = \"fixed\", value = \"{first}\" }}\ntoken_gap = {{ dist = \"fixed\", value = \"{gap}\" }}\ntokens = {tokens}\n{extra}"
    )
}

/// A streamed `POST /chat` endpoint over `http` with `endpoint_extra` keys.
fn chat(base: &str, http: &str, endpoint_extra: &str) -> Target {
    target(
        base,
        &format!("[defaults]\nhttp = \"{http}\"\ntimeout = \"20s\"\n[[endpoint]]\nname = \"chat\"\nmethod = \"POST\"\npath = \"/chat\"\nstream = \"sse\"\n{endpoint_extra}"),
    )
}

/// Time to first token is the first *content* event: the role-only chunk the target
/// sends with the head at once is not a token. One gap per token after the first,
/// tokens as the server's usage says, over HTTP/1.1 and HTTP/2.
#[test]
fn a_stream_gives_its_first_token_and_one_gap_per_later_token() {
    let embedded = loadgate_target::loopback(&sse_profile("300ms", "20ms", 8, ""));
    block_on(async {
        for http in ["http1", "http2"] {
            let t = chat(&embedded.base_url(), http, "");
            let mut gaps = Vec::new();
            let x = t.call_with(Duration::ZERO, &mut gaps).await;
            assert_eq!(x.result.as_ref().unwrap().status, 200, "{http}: {x:?}");
            let s = x.stream.as_ref().expect("a streamed endpoint");
            assert_eq!(
                s.ending,
                loadgate_engine::stream::Ending::Complete,
                "{http}"
            );
            assert_eq!(s.content_events, 8, "{http}: {s:?}");
            assert_eq!(s.tokens, Some(8), "{http}: usage.completion_tokens");
            let ttft = x.time_to_first_token().expect("a token came");
            let ttfb = x.time_to_first_byte().expect("a head came");
            // The head (and the role chunk) left at once, the first token 300 ms later.
            assert!(ttft >= Duration::from_millis(300), "{http}: {ttft:?}");
            assert!(ttfb < ttft, "{http}: {ttfb:?} {ttft:?}");
            assert!(ttft <= x.latency(), "{http}");
            assert_eq!(gaps.len(), 7, "{http}: {gaps:?}");
            // The gaps add up to the time from the first token to the last.
            let spread = s.last_content.unwrap() - s.first_content.unwrap();
            assert_eq!(gaps.iter().sum::<Duration>(), spread, "{http}");
        }
    });
}

/// A stream cut off halfway, whether its body ends cleanly or the connection is
/// aborted, is never a success; a clean end without `[DONE]` is `stream_truncated`.
#[test]
fn a_cut_stream_is_truncated_not_a_success() {
    for (mode, want) in [
        ("clean", &[Outcome::StreamTruncated][..]),
        ("abort", &[Outcome::StreamTruncated, Outcome::IoError][..]),
    ] {
        let embedded = loadgate_target::loopback(&sse_profile(
            "10ms",
            "10ms",
            10,
            &format!("truncate = 1.0\ntruncate_mode = \"{mode}\"\n"),
        ));
        block_on(async {
            let t = chat(&embedded.base_url(), "http1", "");
            let x = t.call().await;
            let outcome = match &x.result {
                Ok(r) => {
                    assert_eq!(r.status, 200);
                    let s = x.stream.as_ref().unwrap();
                    assert_ne!(
                        s.ending,
                        loadgate_engine::stream::Ending::Complete,
                        "{mode}"
                    );
                    Outcome::StreamTruncated
                }
                Err(e) => e.outcome,
            };
            assert!(want.contains(&outcome), "{mode}: {outcome:?} {x:?}");
        });
    }
}

/// A server that answers a head and `events` SSE content events at once, then holds the
/// connection open without a byte more. Its base URL.
async fn stalling_sse(events: usize) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let mut out = String::from(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n",
                );
                for i in 0..events {
                    let ev = format!(
                        "data: {{\"choices\":[{{\"delta\":{{\"content\":\"t{i}\"}}}}]}}\n\n"
                    );
                    out.push_str(&format!("{:x}\r\n{ev}\r\n", ev.len()));
                }
                let _ = sock.write_all(out.as_bytes()).await;
                tokio::time::sleep(Duration::from_secs(30)).await;
            });
        }
    });
    format!("http://{addr}")
}

/// A stream that stalls is given up on at its idle timeout, not at the whole timeout,
/// and the gap it stalled in counts as at least that long; a response whose body never
/// begins is given up on at its first-byte timeout.
#[test]
fn a_stalled_stream_ends_at_its_idle_timeout_and_a_silent_one_at_its_first_byte_timeout() {
    block_on(async {
        let base = stalling_sse(2).await;
        let t = chat(&base, "http1", "idle_timeout = \"300ms\"\n");
        let mut gaps = Vec::new();
        let x = t.call_with(Duration::ZERO, &mut gaps).await;
        assert_eq!(
            x.result.as_ref().unwrap_err().outcome,
            Outcome::IdleTimeout,
            "{x:?}"
        );
        assert!(x.service_time() >= Duration::from_millis(300), "{x:?}");
        assert!(
            x.service_time() < Duration::from_secs(20),
            "not the whole timeout: {x:?}"
        );
        assert_eq!(x.stream.as_ref().unwrap().content_events, 2);
        // The two events arrived together (a zero gap), then the stall.
        assert_eq!(gaps.len(), 2, "{gaps:?}");
        assert!(gaps[1] >= Duration::from_millis(300), "{gaps:?}");

        let base = stalling_sse(0).await;
        let t = chat(&base, "http1", "first_byte_timeout = \"300ms\"\n");
        let x = t.call().await;
        assert_eq!(
            x.result.as_ref().unwrap_err().outcome,
            Outcome::FirstByteTimeout,
            "{x:?}"
        );
        assert!(x.service_time() >= Duration::from_millis(300), "{x:?}");
        assert!(x.first_byte.is_some(), "the head came, the body did not");
    });
}

/// A server that answers every request with a chunked SSE head at once, then each
/// `(ms, event)` of `script` that many milliseconds after the one before, then (with
/// `end`) the last chunk, keeping the connection; without `end` it holds the
/// connection open without a byte more. Its base URL.
async fn scripted_sse(script: &'static [(u64, &'static str)], end: bool) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while sock.read(&mut buf).await.unwrap_or(0) > 0 {
                    let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
                    if sock.write_all(head.as_bytes()).await.is_err() {
                        return;
                    }
                    for (ms, ev) in script {
                        tokio::time::sleep(Duration::from_millis(*ms)).await;
                        let chunk = format!("{:x}\r\n{ev}\r\n", ev.len());
                        if sock.write_all(chunk.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                    if !end {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                        return;
                    }
                    if sock.write_all(b"0\r\n\r\n").await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    format!("http://{addr}")
}

const TOKEN: &str = "data: {\"choices\":[{\"delta\":{\"content\":\"t\"}}]}\n\n";

/// Regression (review of issue 21): with `first_byte_timeout` set, the watch slept to
/// the first-byte deadline and only then looked at the idle timer, so a stream that
/// began at once and stalled was given up on at the first-byte timeout (10 s), not 300
/// ms after its last read. And the idle timer runs from the first body byte when a
/// first-byte timeout waits for it: a head sent at once and a first token after a
/// longer wait than the idle timeout is within the first-byte timeout, not a stall.
#[test]
fn the_idle_timeout_watches_a_stream_whose_first_byte_timeout_is_set() {
    block_on(async {
        let base = stalling_sse(2).await;
        let t = chat(
            &base,
            "http1",
            "first_byte_timeout = \"10s\"\nidle_timeout = \"300ms\"\n",
        );
        let x = t.call().await;
        assert_eq!(
            x.result.as_ref().unwrap_err().outcome,
            Outcome::IdleTimeout,
            "{x:?}"
        );
        assert!(x.service_time() >= Duration::from_millis(300), "{x:?}");
        assert!(
            x.service_time() < Duration::from_secs(10),
            "not at the first-byte timeout: {x:?}"
        );

        // The head at once, the first token 700 ms later: within the first-byte timeout.
        static LATE_FIRST: &[(u64, &str)] = &[(700, TOKEN), (10, TOKEN), (10, "data: [DONE]\n\n")];
        let base = scripted_sse(LATE_FIRST, true).await;
        let t = chat(
            &base,
            "http1",
            "first_byte_timeout = \"10s\"\nidle_timeout = \"300ms\"\n",
        );
        let x = t.call().await;
        assert_eq!(x.result.as_ref().map(|r| r.status).ok(), Some(200), "{x:?}");
        assert!(x.time_to_first_token().unwrap() >= Duration::from_millis(700));

        // The head and no body: the first-byte timeout, whichever deadline is earlier.
        let base = stalling_sse(0).await;
        let t = chat(
            &base,
            "http1",
            "first_byte_timeout = \"600ms\"\nidle_timeout = \"200ms\"\n",
        );
        let x = t.call().await;
        assert_eq!(
            x.result.as_ref().unwrap_err().outcome,
            Outcome::FirstByteTimeout,
            "{x:?}"
        );
        assert!(x.service_time() >= Duration::from_millis(600), "{x:?}");
    });
}

/// A server that answers a head and two SSE tokens at once, then a `: ping` comment
/// every 50 ms and never a token more. Its base URL.
async fn pinging_sse() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let mut out = String::from("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n");
                for _ in 0..2 {
                    out.push_str(&format!("{:x}\r\n{TOKEN}\r\n", TOKEN.len()));
                }
                let mut bytes = out.into_bytes();
                loop {
                    if sock.write_all(&bytes).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    bytes = b"8\r\n: ping\n\n\r\n".to_vec();
                }
            });
        }
    });
    format!("http://{addr}")
}

/// Regression (review of issue 21): a stream kept alive by pings but with no token
/// after its second is not silent, so its idle timeout never fires and the whole
/// timeout ends it; the gap it stalled in was then dropped (only an idle timeout
/// recorded one), so `itl_` budgets saw nothing of the stall. It is recorded as at
/// least as long as it had lasted.
#[test]
fn a_stream_kept_alive_by_pings_records_its_stalled_gap_at_the_whole_timeout() {
    block_on(async {
        let base = pinging_sse().await;
        let t = target(
            &base,
            "[defaults]\nhttp = \"http1\"\ntimeout = \"2s\"\n[[endpoint]]\nname = \"chat\"\nmethod = \"POST\"\npath = \"/chat\"\nstream = \"sse\"\nidle_timeout = \"300ms\"\n",
        );
        let mut gaps = Vec::new();
        let x = t.call_with(Duration::ZERO, &mut gaps).await;
        assert_eq!(
            x.result.as_ref().unwrap_err().outcome,
            Outcome::Timeout,
            "pings are reads: {x:?}"
        );
        assert_eq!(x.stream.as_ref().unwrap().content_events, 2);
        assert_eq!(gaps.len(), 2, "the stalled gap counts: {gaps:?}");
        assert!(gaps[1] >= Duration::from_secs(1), "{gaps:?}");
    });
}

const ROLE: &str =
    "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n";

/// Review of issue 21: a server that sends the role-only chunk with its head (the
/// embedded target does, and seed-001 sets first_byte_timeout 5s and idle_timeout 2s)
/// began its body at once, so the wait for the first token was an idle timeout's: a
/// first token 2.1 s after the send was `idle_timeout`, and one never sent behind
/// pings ran to the whole timeout. A stream's answer begins at its first token: a
/// `first_byte_timeout` waits for that (a role chunk or a ping does not end the wait),
/// the idle timeout watches the silences after it.
#[test]
fn a_streams_first_byte_timeout_waits_for_its_first_token() {
    block_on(async {
        static ROLE_THEN_LATE: &[(u64, &str)] = &[
            (0, ROLE),
            (700, TOKEN),
            (10, TOKEN),
            (0, "data: [DONE]\n\n"),
        ];
        let base = scripted_sse(ROLE_THEN_LATE, true).await;
        let t = chat(
            &base,
            "http1",
            "first_byte_timeout = \"10s\"\nidle_timeout = \"300ms\"\n",
        );
        let x = t.call().await;
        assert_eq!(x.result.as_ref().map(|r| r.status).ok(), Some(200), "{x:?}");
        assert!(x.time_to_first_token().unwrap() >= Duration::from_millis(700));

        // A role chunk and a ping every 100 ms, never a token.
        static PINGS: [(u64, &str); 60] = {
            let mut p = [(100, ": ping\n\n"); 60];
            p[0] = (0, ROLE);
            p
        };
        let base = scripted_sse(&PINGS, false).await;
        let t = chat(
            &base,
            "http1",
            "first_byte_timeout = \"1s\"\nidle_timeout = \"300ms\"\n",
        );
        let x = t.call().await;
        assert_eq!(
            x.result.as_ref().unwrap_err().outcome,
            Outcome::FirstByteTimeout,
            "{x:?}"
        );
        assert!(x.service_time() >= Duration::from_secs(1), "{x:?}");
        assert!(x.service_time() < Duration::from_secs(20), "{x:?}");
    });
}

/// An event past the reader's bound (1 MiB), a 2 MiB content event (a big tool result,
/// an image) between normal tokens, is skipped unread, not the stream's end: the stream
/// is read on to its `[DONE]`, complete, every token counted (the big one as one), so
/// the target that served it is not blamed for loadgate's own limit.
#[test]
fn a_stream_with_an_event_past_the_bound_is_read_on_to_its_end() {
    let big = format!(
        "data: {{\"choices\":[{{\"delta\":{{\"content\":\"{}\"}}}}]}}\n\n",
        "x".repeat(2 << 20)
    );
    let big: &'static str = Box::leak(big.into_boxed_str());
    let script: &'static [(u64, &'static str)] = Box::leak(Box::new([
        (0, ROLE),
        (0, TOKEN),
        (0, big),
        (0, TOKEN),
        (0, "data: [DONE]\n\n"),
    ]));
    block_on(async {
        let base = scripted_sse(script, true).await;
        let t = chat(&base, "http1", "");
        let x = t.call().await;
        let r = x.result.as_ref().expect("a response");
        assert_eq!(r.status, 200);
        assert!(r.bytes > 2 << 20, "the whole body was read: {}", r.bytes);
        let s = x.stream.as_ref().expect("a streamed endpoint");
        // What the classifier asks of a success: complete, no error event, a token.
        assert_eq!(s.ending, loadgate_engine::stream::Ending::Complete, "{s:?}");
        assert_eq!(s.errors, 0);
        assert_eq!(
            (s.events, s.content_events, s.oversized),
            (5, 3, 1),
            "role, token, the skipped one, token, [DONE]: {s:?}"
        );
        assert_eq!(s.tokens, None, "no usage: tokens are the content events");
        assert!(x.time_to_first_token().is_some());
    });
}

/// Issue 21: a terminator in an event past the reader's bound (1 MiB) was skipped with
/// the event, so a complete stream was counted `stream_truncated`: against a real server,
/// `data: [DONE]` as the last data line of a 2 MiB SSE event, and Ollama's final NDJSON
/// line with `"done": true` before a 2 MiB `context`, end their streams complete.
#[test]
fn a_terminator_in_an_event_past_the_bound_ends_the_stream_against_a_real_server() {
    let sse_end = format!("data: {}\ndata: [DONE]\n\n", "x".repeat(2 << 20));
    let sse: &'static [(u64, &'static str)] = Box::leak(Box::new([
        (0, ROLE),
        (0, TOKEN),
        (0, &*Box::leak(sse_end.into_boxed_str())),
    ]));
    let context = vec!["7"; 1 << 20].join(",");
    let last = format!(
        "{{\"model\":\"m\",\"created_at\":\"2024-01-01T00:00:00Z\",\"response\":\"\",\"done\":true,\"done_reason\":\"stop\",\"context\":[{context}],\"eval_count\":2}}\n"
    );
    let ndjson: &'static [(u64, &'static str)] = Box::leak(Box::new([
        (0, "{\"response\":\"a\",\"done\":false}\n"),
        (0, "{\"response\":\"b\",\"done\":false}\n"),
        (0, &*Box::leak(last.into_boxed_str())),
    ]));
    block_on(async {
        let base = scripted_sse(sse, true).await;
        let x = chat(&base, "http1", "").call().await;
        assert_eq!(x.result.as_ref().map(|r| r.status).ok(), Some(200), "{x:?}");
        let s = x.stream.as_ref().unwrap();
        assert_eq!(s.ending, loadgate_engine::stream::Ending::Complete, "{s:?}");
        assert_eq!((s.content_events, s.oversized), (2, 1), "{s:?}");

        let base = scripted_sse(ndjson, true).await;
        let t = target(
            &base,
            "[defaults]\ntimeout = \"20s\"\n[[endpoint]]\nname = \"gen\"\nmethod = \"POST\"\npath = \"/api/generate\"\nstream = \"ndjson\"\n",
        );
        let x = t.call().await;
        assert_eq!(x.result.as_ref().map(|r| r.status).ok(), Some(200), "{x:?}");
        let s = x.stream.as_ref().unwrap();
        assert_eq!(s.ending, loadgate_engine::stream::Ending::Complete, "{s:?}");
        assert_eq!(
            (s.events, s.content_events, s.oversized),
            (3, 2, 1),
            "two tokens, and the last line ends it: {s:?}"
        );
    });
}

/// A server that answers every request with an SSE stream: a role chunk, then the first
/// `part` bytes of a content event (no line end), then, once `go` says so, the rest of
/// that event, a token and `[DONE]`. Runs on the caller's runtime; its base URL.
async fn held_sse(part: usize, go: tokio::sync::watch::Receiver<bool>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let mut go = go.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                if sock.read(&mut buf).await.unwrap_or(0) == 0 {
                    return;
                }
                let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
                let first = format!(
                    "{ROLE}data: {{\"choices\":[{{\"delta\":{{\"content\":\"{}",
                    "x".repeat(part)
                );
                let rest = format!("\"}}}}]}}\n\n{TOKEN}data: [DONE]\n\n");
                let chunk = |s: &str| format!("{:x}\r\n{s}\r\n", s.len());
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(chunk(&first).as_bytes()).await;
                let _ = go.wait_for(|g| *g).await;
                let _ = sock.write_all(chunk(&rest).as_bytes()).await;
                let _ = sock.write_all(b"0\r\n\r\n").await;
            });
        }
    });
    format!("http://{addr}")
}

/// Issue 21: the bytes a worker's readers hold of unfinished events are bounded per
/// worker, not only per stream. Twenty streams each hold 200 KiB of an unfinished event
/// at once against a worker budget of 1 MiB: the events the budget cannot hold are
/// skipped and counted as loadgate's (`skipped`, never `oversized`), every stream still
/// ends complete with all its tokens counted, and the budget is whole again after.
#[test]
fn a_workers_budget_bounds_what_many_open_streams_hold() {
    const STREAMS: usize = 20;
    const LIMIT: usize = 1 << 20;
    block_on(async {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let base = held_sse(200 << 10, rx).await;
        let mut t = chat(&base, "http1", "");
        t.client = t.client.with_stream_budget(LIMIT);
        let t = std::rc::Rc::new(t);
        let local = tokio::task::LocalSet::new();
        let ends = local
            .run_until(async {
                let calls: Vec<_> = (0..STREAMS)
                    .map(|_| {
                        let t = t.clone();
                        tokio::task::spawn_local(async move {
                            let x = t.call().await;
                            (x.result.map(|r| r.status).ok(), x.stream)
                        })
                    })
                    .collect();
                // Let the streams read their first parts: until the budget is nearly
                // spent, at most 10 s (the counts below hold either way but for
                // `skipped`, which needs the streams open together).
                let mut most = 0;
                for _ in 0..1000 {
                    most = most.max(t.client.stream_budget().held());
                    if most + (200 << 10) > LIMIT {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                // Give the other streams' first parts, already sent, time to be read.
                tokio::time::sleep(Duration::from_millis(200)).await;
                tx.send(true).unwrap();
                let mut ends = Vec::new();
                for c in calls {
                    ends.push(c.await.unwrap());
                }
                ends
            })
            .await;
        let mut skipped = 0;
        for (status, s) in &ends {
            assert_eq!(*status, Some(200));
            let s = s.as_ref().unwrap();
            assert_eq!(s.ending, loadgate_engine::stream::Ending::Complete, "{s:?}");
            assert_eq!((s.content_events, s.oversized), (2, 0), "{s:?}");
            skipped += s.skipped;
        }
        assert!(
            (1..STREAMS as u64).contains(&skipped),
            "some held within the budget, the rest skipped: {skipped}"
        );
        assert_eq!(t.client.stream_budget().held(), 0);
    });
}
