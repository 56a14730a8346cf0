//! Redirects against real servers on 127.0.0.1:0, over HTTP/1.1 and HTTP/2: each
//! status and its method and body rule, relative and absolute `Location`s, the headers
//! left out on a hop to another origin (a second server echoes what it received), the
//! limit (exactly N hops, then N + 1), a loop, `redirects = 0`, a redirect without a
//! `Location` or to another scheme, and what the chain's timings cover.
//!
//! No timed assertion on the machine's speed: the one bound on time is a server's own
//! fixed delay, as a lower bound.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
mod common;

use common::{block_on, Target};
use loadgate_engine::Exchange;
use loadgate_metrics::{Outcome, Protocol};

/// What a test server answers: status, headers, body, and a delay before the head.
type Answer = (u16, Vec<(&'static str, String)>, String, Duration);

/// How a test server answers a request (method, path and query, headers, body).
type Handler = Arc<dyn Fn(&str, &str, &http::HeaderMap, &[u8]) -> Answer + Send + Sync>;

/// A server on 127.0.0.1:0 answering as `handler` says, over HTTP/1.1 or HTTP/2 (prior
/// knowledge). Its base URL.
async fn server(h2: bool, handler: Handler) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let handler = handler.clone();
            let service =
                hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let handler = handler.clone();
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = body
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let pq = parts.uri.path_and_query().map_or("/", |p| p.as_str());
                        let (status, headers, text, delay) =
                            handler(parts.method.as_str(), pq, &parts.headers, &body);
                        tokio::time::sleep(delay).await;
                        let mut resp = http::Response::builder().status(status);
                        for (n, v) in headers {
                            resp = resp.header(n, v);
                        }
                        Ok::<_, Infallible>(resp.body(Full::new(Bytes::from(text))).unwrap())
                    }
                });
            common::serve(sock, service, h2);
        }
    });
    format!("http://{addr}")
}

/// A hop's body: an SSE event, so a stream reader fed a hop's body would count it.
const HOP_BODY: &str = "data: {\"choices\":[{\"delta\":{\"content\":\"hop\"}}]}\n\n";

/// The request as JSON: method, path, body, and the headers a hop may drop or change.
fn echo(method: &str, pq: &str, headers: &http::HeaderMap, body: &[u8]) -> Answer {
    let h = |n: &str| {
        headers
            .get(n)
            .map(|v| v.to_str().unwrap_or("?").to_string())
    };
    let json = serde_json::json!({
        "method": method,
        "path": pq,
        "body": String::from_utf8_lossy(body),
        "authorization": h("authorization"),
        "cookie": h("cookie"),
        "proxy_authorization": h("proxy-authorization"),
        "x_keep": h("x-keep"),
        "x_api_key": h("x-api-key"),
        "x_session": h("x-session"),
        "x_env": h("x-env"),
        "host": h("host"),
        "content_type": h("content-type"),
    });
    (200, vec![], json.to_string(), Duration::ZERO)
}

/// The routes of the test servers: `/s/<status>` redirects with that status to
/// `/echo`; `/rel/a/b` to `../echo?x=1`; `/chain/<n>` through n hops to `/echo`;
/// `/loop` to itself; `/nowhere` a 302 without `Location`; `/ftp` to an ftp URL; `/bad`
/// to a URL whose port does not parse;
/// `/to?<url>` to that URL (`/to307?<url>` with a 307); `/slow-echo` the echo after 300 ms; anything else the echo.
fn routes() -> Handler {
    Arc::new(|method, pq, headers, body| {
        let to = |status: u16, location: &str| {
            (
                status,
                vec![("location", location.to_string())],
                HOP_BODY.to_string(),
                Duration::ZERO,
            )
        };
        let path = pq.split('?').next().unwrap_or("/");
        if let Some(code) = path.strip_prefix("/s/") {
            return to(code.parse().unwrap(), "/echo");
        }
        if let Some(n) = path.strip_prefix("/chain/") {
            let n: u32 = n.parse().unwrap();
            return match n {
                0 => echo(method, pq, headers, body),
                n => to(302, &format!("/chain/{}", n - 1)),
            };
        }
        match path {
            "/rel/a/b" => to(302, "../echo?x=1"),
            "/loop" => to(302, "/loop"),
            "/nowhere" => (302, vec![], String::new(), Duration::ZERO),
            "/ftp" => to(302, "ftp://127.0.0.1/file"),
            "/bad" => to(302, "http://127.0.0.1:99999/"),
            "/to" => to(302, pq.split_once('?').map_or("", |(_, q)| q)),
            "/to307" => to(307, pq.split_once('?').map_or("", |(_, q)| q)),
            "/to-slow" => to(302, "/slow-echo"),
            "/to-sse" => to(307, "/sse"),
            "/sse" => (
                200,
                vec![("content-type", "text/event-stream".to_string())],
                "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"!\"}}]}\n\ndata: [DONE]\n\n".to_string(),
                Duration::ZERO,
            ),
            "/slow-echo" => {
                let mut a = echo(method, pq, headers, body);
                a.3 = Duration::from_millis(300);
                a
            }
            _ => echo(method, pq, headers, body),
        }
    })
}

/// The one endpoint `endpoint` (its keys after its name) of a scenario aimed at
/// `base`, with `defaults` (keys of `[defaults]`), over `http`.
fn target(base: &str, http: &str, defaults: &str, endpoint: &str) -> Target {
    target_with(base, http, "", defaults, endpoint, &|_| None)
}

/// [`target`] with `top` (top-level keys) and the environment `env`.
fn target_with(
    base: &str,
    http: &str,
    top: &str,
    defaults: &str,
    endpoint: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Target {
    let text = format!(
        "name = \"x\"\ntarget = \"{base}\"\n{top}\n[defaults]\nhttp = \"{http}\"\ntimeout = \"10s\"\n{defaults}\n[[endpoint]]\nname = \"e\"\n{endpoint}\n"
    );
    common::target_in(&text, base, env)
}

fn answer(x: &Exchange) -> serde_json::Value {
    let r = x
        .result
        .as_ref()
        .unwrap_or_else(|e| panic!("answered: {e:?}"));
    assert_eq!(r.status, 200);
    serde_json::from_slice(&r.body).expect("the echo's JSON")
}

/// An endpoint whose body a check reads (so the echo is kept).
const READ: &str = "checks = { json = [{ path = \"$.method\", exists = true }] }";

const PROTOCOLS: [(&str, bool, Protocol); 2] = [
    ("http1", false, Protocol::Http1),
    ("http2", true, Protocol::H2),
];

/// 303, and 301 or 302 after a POST, become a GET without a body (or its
/// Content-Type); 307 and 308 keep the method and the body; a GET stays a GET. Over
/// both protocols; each a hop counted, the answer the echo's.
#[test]
fn each_status_follows_with_the_method_and_body_browsers_use() {
    block_on(async {
        for (http, h2, protocol) in PROTOCOLS {
            let base = server(h2, routes()).await;
            for (code, method, kept) in [
                (301, "GET", false),
                (302, "GET", false),
                (303, "GET", false),
                (307, "POST", true),
                (308, "POST", true),
            ] {
                let t = target(
                    &base,
                    http,
                    "",
                    &format!("method = \"POST\"\npath = \"/s/{code}\"\nbody = \"payload\"\nheaders = {{ \"Content-Type\" = \"text/plain\" }}\n{READ}"),
                );
                let x = t.call().await;
                let a = answer(&x);
                assert_eq!(a["method"], method, "{http} {code}");
                assert_eq!(a["path"], "/echo", "{http} {code}");
                let body = if kept { "payload" } else { "" };
                assert_eq!(a["body"], body, "{http} {code}");
                assert_eq!(a["content_type"].is_null(), !kept, "{http} {code}");
                assert_eq!(x.redirects, 1);
                assert_eq!(x.result.as_ref().unwrap().protocol, protocol);
            }
            // A GET (and a PUT on 302: only POST changes) keeps its method.
            for (method, code) in [("GET", 303), ("GET", 301), ("PUT", 302)] {
                let t = target(
                    &base,
                    http,
                    "",
                    &format!("method = \"{method}\"\npath = \"/s/{code}\"\n{READ}"),
                );
                assert_eq!(
                    answer(&t.call().await)["method"],
                    method,
                    "{http} {method} {code}"
                );
            }
        }
    });
}

/// A relative `Location` is resolved against the URL that answered it (dot segments,
/// a query); an absolute one to the same origin keeps every header.
#[test]
fn relative_and_absolute_locations() {
    block_on(async {
        for (http, h2, _) in PROTOCOLS {
            let base = server(h2, routes()).await;
            let t = target(&base, http, "", &format!("path = \"/rel/a/b\"\n{READ}"));
            let x = t.call().await;
            assert_eq!(answer(&x)["path"], "/rel/echo?x=1", "{http}");
            let t = target(
                &base,
                http,
                "",
                &format!("path = \"/to?{base}/echo%3Fy=2\"\nheaders = {{ Authorization = \"Bearer same-origin\" }}\n{READ}"),
            );
            let a = answer(&t.call().await);
            assert_eq!(a["path"], "/echo%3Fy=2", "{http}");
            assert_eq!(a["authorization"], "Bearer same-origin", "{http}");
        }
    });
}

/// Issue 22: a hop to another origin (another port on loopback) leaves out
/// `Authorization`, `Cookie` and `Proxy-Authorization` (a token never reaches a host it
/// was not written for) and names the new host; other headers go on.
#[test]
fn a_hop_to_another_origin_drops_the_credentials() {
    block_on(async {
        for (http, h2, _) in PROTOCOLS {
            let other = server(h2, routes()).await;
            let base = server(h2, routes()).await;
            let t = target(
                &base,
                http,
                "",
                &format!(
                    "path = \"/to?{other}/echo\"\nheaders = {{ Authorization = \"Bearer t0ken-secret\", Cookie = \"sid=abc\", Proxy-Authorization = \"Basic cHJveHk=\", X-Keep = \"yes\" }}\n{READ}"
                ),
            );
            let x = t.call().await;
            let a = answer(&x);
            assert!(a["authorization"].is_null(), "{http}: {a}");
            assert!(a["cookie"].is_null(), "{http}: {a}");
            assert!(a["proxy_authorization"].is_null(), "{http}: {a}");
            assert_eq!(a["x_keep"], "yes", "{http}");
            let authority = other.trim_start_matches("http://");
            if !h2 {
                assert_eq!(a["host"], authority, "{http}");
            }
            assert_eq!(x.redirects, 1);
            // The new origin's connection was opened on the way, and timed.
            assert!(x.connect.is_some());
        }
    });
}

/// Review of issue 22: a hop to another origin also leaves out every header the
/// scenario holds secret, not only the three credential headers: `X-Api-Key`, a header
/// listed in `redact_headers`, and one whose value came from the environment (an
/// `X-Env: ${TOKEN}` went on to whatever host the target redirected to). To the same
/// origin they all go on.
#[test]
fn a_hop_to_another_origin_drops_every_secret_header() {
    let env = |name: &str| (name == "TOKEN").then(|| "env-secret-value".to_string());
    block_on(async {
        for (http, h2, _) in PROTOCOLS {
            let other = server(h2, routes()).await;
            let base = server(h2, routes()).await;
            let headers = "headers = { X-Api-Key = \"key-1234\", X-Session = \"sess-5678\", X-Env = \"${TOKEN}\", X-Keep = \"yes\" }";
            let top = "redact_headers = [\"X-Session\"]";
            let t = target_with(
                &base,
                http,
                top,
                "",
                &format!("path = \"/to?{other}/echo\"\n{headers}\n{READ}"),
                &env,
            );
            let a = answer(&t.call().await);
            for h in ["x_api_key", "x_session", "x_env"] {
                assert!(a[h].is_null(), "{http}: {h} reached another origin: {a}");
            }
            assert_eq!(a["x_keep"], "yes", "{http}");
            // The same origin is who the headers were written for.
            let t = target_with(
                &base,
                http,
                top,
                "",
                &format!("path = \"/s/302\"\n{headers}\n{READ}"),
                &env,
            );
            let a = answer(&t.call().await);
            assert_eq!(a["x_api_key"], "key-1234", "{http}");
            assert_eq!(a["x_session"], "sess-5678", "{http}");
            assert_eq!(a["x_env"], "env-secret-value", "{http}");
        }
    });
}

/// Exactly `redirects` hops are followed; one more is `too_many_redirects`, and so is a
/// loop (it ends at the limit); `redirects = 0` takes the 3xx as the answer.
#[test]
fn the_limit_a_loop_and_redirects_off() {
    block_on(async {
        for (http, h2, _) in PROTOCOLS {
            let base = server(h2, routes()).await;
            let t = target(
                &base,
                http,
                "redirects = 3",
                &format!("path = \"/chain/3\"\n{READ}"),
            );
            let x = t.call().await;
            assert_eq!(answer(&x)["path"], "/chain/0");
            assert_eq!(x.redirects, 3);
            // The endpoint's own key wins over [defaults].
            let t = target(
                &base,
                http,
                "redirects = 3",
                "path = \"/chain/3\"\nredirects = 2",
            );
            let x = t.call().await;
            let e = x.result.as_ref().expect_err("one hop too many");
            assert_eq!(e.outcome, Outcome::TooManyRedirects, "{http}");
            assert_eq!(x.redirects, 2);
            let t = target(&base, http, "", "path = \"/loop\"");
            let x = t.call().await;
            assert_eq!(
                x.result.as_ref().unwrap_err().outcome,
                Outcome::TooManyRedirects
            );
            assert_eq!(x.redirects, 10, "the default limit");
            let t = target(&base, http, "redirects = 0", "path = \"/s/302\"");
            let x = t.call().await;
            assert_eq!(x.result.as_ref().unwrap().status, 302, "{http}");
            assert_eq!(x.redirects, 0);
        }
    });
}

/// A redirect without a `Location`, to another scheme, or to a `Location` that does not
/// parse (a port past 65535) is the target's `protocol_error`, never a hang.
#[test]
fn nowhere_to_go_is_a_protocol_error() {
    block_on(async {
        for (http, h2, _) in PROTOCOLS {
            let base = server(h2, routes()).await;
            for path in ["/nowhere", "/ftp", "/bad"] {
                let t = target(&base, http, "", &format!("path = \"{path}\""));
                let x = t.call().await;
                let e = x.result.as_ref().expect_err("nowhere to go");
                assert_eq!(e.outcome, Outcome::ProtocolError, "{http} {path}: {e:?}");
            }
        }
    });
}

/// The chain is timed as one request: the first byte is the final answer's (held back
/// 300 ms by its server, the hop answers at once), and latency covers it.
#[test]
fn the_first_byte_is_the_final_answers() {
    block_on(async {
        for (http, h2, _) in PROTOCOLS {
            let base = server(h2, routes()).await;
            let t = target(&base, http, "", "path = \"/to-slow\"");
            let x = t.call().await;
            assert_eq!(x.result.as_ref().unwrap().status, 200, "{http}");
            let ttfb = x.time_to_first_byte().expect("a first byte");
            assert!(ttfb >= Duration::from_millis(300), "{http}: {ttfb:?}");
            assert!(x.latency() >= ttfb);
            // The hop's body was counted on the wire, not kept.
            assert!(x.result.as_ref().unwrap().bytes >= HOP_BODY.len() as u64);
        }
    });
}

/// A target that redirects to ever new origins costs connects, never memory: a worker
/// keeps a pool for at most 8 origins no endpoint names; past that, a hop gets a
/// connection for its one exchange. Twelve origins, each answered through one client
/// (as a worker has); it keeps an idle connection for the target and eight of them (16
/// KiB of read buffer each), not thirteen.
#[test]
fn redirects_to_ever_new_origins_keep_a_bounded_pool_map() {
    block_on(async {
        let base = server(false, routes()).await;
        let mut t = target(&base, "http1", "", "path = \"/\"");
        for _ in 0..12 {
            let other = server(false, routes()).await;
            t.prepared = target(
                &base,
                "http1",
                "",
                &format!("path = \"/to?{other}/echo\"\n{READ}"),
            )
            .prepared;
            let x = t.call().await;
            assert_eq!(answer(&x)["path"], "/echo");
            assert_eq!(x.redirects, 1);
        }
        let kept = t.client.idle_buffer_bytes();
        assert!(kept <= 9 * 16 * 1024, "{kept} bytes of idle connections");
        assert!(
            kept >= 9 * 16 * 1024,
            "the target and eight origins are pooled: {kept}"
        );
    });
}

/// A stream reads the final answer only: the hop's body (an event itself) is not read, and the
/// stream's two tokens and terminator are the answer's.
#[test]
fn a_stream_reads_the_final_answer() {
    block_on(async {
        for (http, h2, _) in PROTOCOLS {
            let base = server(h2, routes()).await;
            let t = target(&base, http, "", "path = \"/to-sse\"\nstream = \"sse\"");
            let x = t.call().await;
            assert_eq!(x.result.as_ref().unwrap().status, 200, "{http}");
            let s = x.stream.as_ref().expect("streamed");
            assert_eq!(s.content_events, 2, "{http}: {s:?}");
            assert_eq!(x.redirects, 1);
        }
    });
}

/// Issue 22: a 307 or 308 keeps its body; one holding a secret (a value from the
/// environment, a flow's captured variable) is never taken to another origin: the
/// hop is not followed and the request fails as `check_failed`, saying why. To the
/// same origin, and a body without a secret, it is followed.
#[test]
fn a_body_holding_a_secret_never_follows_a_307_to_another_origin() {
    let env = |name: &str| (name == "PASSWORD").then(|| "pw-not-for-them".to_string());
    block_on(async {
        for (http, h2, _) in PROTOCOLS {
            let other = server(h2, routes()).await;
            let base = server(h2, routes()).await;
            let secret = "method = \"POST\"\njson = { password = \"${PASSWORD}\" }";
            let t = target_with(
                &base,
                http,
                "",
                "",
                &format!("path = \"/to307?{other}/echo\"\n{secret}\n{READ}"),
                &env,
            );
            let x = t.call().await;
            let e = x.result.as_ref().expect_err("not followed");
            assert_eq!(e.outcome, Outcome::CheckFailed, "{http}");
            assert!(format!("{e:?}").contains("holds a secret"), "{http}: {e:?}");
            assert_eq!(x.redirects, 0, "{http}");
            // To the same origin it goes on, body and all.
            let t = target_with(
                &base,
                http,
                "",
                "",
                &format!("path = \"/to307?{base}/echo\"\n{secret}\n{READ}"),
                &env,
            );
            let a = answer(&t.call().await);
            assert_eq!(a["body"], "{\"password\":\"pw-not-for-them\"}", "{http}");
            // A body without a secret follows to another origin, as browsers do.
            let t = target(
                &base,
                http,
                "",
                &format!(
                    "method = \"POST\"\npath = \"/to307?{other}/echo\"\nbody = \"plain\"\n{READ}"
                ),
            );
            assert_eq!(answer(&t.call().await)["body"], "plain", "{http}");
        }
    });
}
