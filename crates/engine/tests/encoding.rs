//! Compressed responses against real servers on 127.0.0.1:0, over HTTP/1.1 and HTTP/2:
//! gzip, br, zstd, deflate and a stack decoded before the checks; a corrupt body as the
//! target's `protocol_error`; a 1 GiB gzip bomb read to its end with only `max_body`
//! kept; SSE over gzip; a server that compresses unasked; the scenario's own
//! `Accept-Encoding` winning; the default `User-Agent`; the protocol of each response.
//!
//! No timed assertion: every check is on bytes and counts.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::io::Write as _;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::Frame;
mod common;

use common::{block_on, Target};
use loadgate_engine::Exchange;
use loadgate_metrics::{Outcome, Protocol};

/// `endpoint`: the keys of one `[[endpoint]]` after its name; `http`: http1 or http2.
fn target(base: &str, http: &str, defaults: &str, endpoint: &str) -> Target {
    let text = format!(
        "name = \"x\"\ntarget = \"{base}\"\n[defaults]\nhttp = \"{http}\"\ntimeout = \"60s\"\n{defaults}\n[[endpoint]]\nname = \"e\"\n{endpoint}\n"
    );
    common::target_of(&text, base)
}

/// The body checks of the endpoint, on what the exchange kept.
fn passes(t: &Target, x: &Exchange) -> bool {
    let r = x.result.as_ref().expect("answered");
    let body = std::str::from_utf8(&r.body).unwrap_or("");
    t.checks
        .body_contains
        .as_ref()
        .is_none_or(|n| body.contains(n.as_str()))
        && t.checks.json.iter().all(|c| {
            let doc: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
            match &c.expect {
                loadgate_scenario::JsonExpect::Equals(v) => doc.pointer(&c.pointer) == Some(v),
                loadgate_scenario::JsonExpect::Exists(e) => doc.pointer(&c.pointer).is_some() == *e,
            }
        })
}

/// A body of frames handed over one by one, made as they are asked for.
struct Frames(Box<dyn Iterator<Item = Bytes> + Send>);

impl hyper::body::Body for Frames {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.next().map(|b| Ok(Frame::data(b))))
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn br(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
    w.write_all(data).unwrap();
    drop(w);
    out
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn zstd(data: &[u8]) -> Vec<u8> {
    ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
}

const GIB: u64 = 1 << 30;

/// 1 GiB of zeros, gzip, made as it is sent: a gzip header, one 1 MiB block of zeros
/// (compressed once, ending on a byte) 1024 times, the final block and the trailer.
fn bomb() -> impl Iterator<Item = Bytes> + Send {
    let mib = vec![0u8; 1 << 20];
    let mut c = flate2::Compress::new(flate2::Compression::best(), false);
    let mut block = Vec::with_capacity(64 * 1024);
    c.compress_vec(&mib, &mut block, flate2::FlushCompress::Sync)
        .unwrap();
    assert_eq!(c.total_in(), 1 << 20, "the block holds the whole MiB");
    let mut one = flate2::Crc::new();
    one.update(&mib);
    let mut crc = flate2::Crc::new();
    for _ in 0..1024 {
        crc.combine(&one);
    }
    let mut tail = vec![0x03, 0x00];
    tail.extend_from_slice(&crc.sum().to_le_bytes());
    tail.extend_from_slice(&((GIB & 0xffff_ffff) as u32).to_le_bytes());
    let block = Bytes::from(block);
    std::iter::once(Bytes::from_static(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]))
        .chain(std::iter::repeat_n(block, 1024))
        .chain(std::iter::once(Bytes::from(tail)))
}

const SSE: &[&str] = &[
    "data: {\"choices\":[{\"delta\":{\"content\":\"Hello\"}}]}\n\n",
    "data: {\"choices\":[{\"delta\":{\"content\":\" there\"}}]}\n\n",
    "data: {\"choices\":[{\"delta\":{\"content\":\"!\"}}]}\n\n",
    "data: [DONE]\n\n",
];

/// SSE events gzip-compressed, each flushed into a frame of its own.
fn sse_gzip() -> Vec<Bytes> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut frames = Vec::new();
    for ev in SSE {
        e.write_all(ev.as_bytes()).unwrap();
        e.flush().unwrap();
        frames.push(Bytes::from(std::mem::take(e.get_mut())));
    }
    frames.push(Bytes::from(e.finish().unwrap()));
    frames
}

/// The answer to a request for `path` that sent `ae` and `ua`: its `Content-Encoding`
/// and body frames. JSON routes echo what the request said.
fn answer(path: &str, ae: &str, ua: &str) -> (Option<&'static str>, VecDeque<Bytes>) {
    let json = serde_json::json!({"ok": true, "ua": ua, "ae": ae, "pad": "x".repeat(4000)})
        .to_string()
        .into_bytes();
    let one = |b: Vec<u8>| VecDeque::from([Bytes::from(b)]);
    match path {
        "/plain" => (None, one(json)),
        "/gzip" => (Some("gzip"), one(gzip(&json))),
        "/br" => (Some("br"), one(br(&json))),
        "/zstd" => (Some("zstd"), one(zstd(&json))),
        "/deflate" => (Some("deflate"), one(zlib(&json))),
        // gzip applied first, then br.
        "/stack" => (Some("gzip, br"), one(br(&gzip(&json)))),
        // Compressed only when asked for.
        "/negotiate" if ae.contains("gzip") => (Some("gzip"), one(gzip(&json))),
        "/negotiate" => (None, one(json)),
        "/corrupt" => {
            let mut z = gzip(&json);
            let n = z.len();
            z[n / 2] ^= 0x55;
            z[n - 5] ^= 0x55;
            (Some("gzip"), one(z))
        }
        "/sse" => (Some("gzip"), sse_gzip().into()),
        _ => (None, one(b"not found".to_vec())),
    }
}

/// A server on 127.0.0.1:0 that answers as [`answer`] says, over HTTP/1.1 or HTTP/2
/// (prior knowledge); `/bomb` streams the gzip bomb. Its base URL.
async fn server(h2: bool) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let service =
                hyper::service::service_fn(|req: http::Request<hyper::body::Incoming>| {
                    let header = |n: &str| {
                        req.headers()
                            .get_all(n)
                            .iter()
                            .map(|v| v.to_str().unwrap_or("?"))
                            .collect::<Vec<_>>()
                            .join(" | ")
                    };
                    let (ae, ua) = (header("accept-encoding"), header("user-agent"));
                    let path = req.uri().path().to_string();
                    async move {
                        let (coding, frames): (_, Box<dyn Iterator<Item = Bytes> + Send>) =
                            if path == "/bomb" {
                                (Some("gzip"), Box::new(bomb()))
                            } else {
                                let (c, f) = answer(&path, &ae, &ua);
                                (c, Box::new(f.into_iter()))
                            };
                        let mut resp =
                            http::Response::builder().header("content-type", "application/json");
                        if let Some(c) = coding {
                            resp = resp.header("content-encoding", c);
                        }
                        Ok::<_, Infallible>(resp.body(Frames(frames)).unwrap())
                    }
                });
            common::serve(sock, service, h2);
        }
    });
    format!("http://{addr}")
}

/// Each protocol: (`http` key, whether the server speaks HTTP/2, what the response
/// should say it came over).
const PROTOCOLS: [(&str, bool, Protocol); 2] = [
    ("http1", false, Protocol::Http1),
    ("http2", true, Protocol::H2),
];

fn body_json(x: &Exchange) -> serde_json::Value {
    serde_json::from_slice(&x.result.as_ref().expect("answered").body).expect("decoded JSON")
}

/// Every coding the client decodes, and a stack of two, pass a JSON check and a
/// `body_contains` on the decoded body, over both protocols; `bytes` counts the wire,
/// `decoded` the decoded body. The requests said `Accept-Encoding: gzip, br, zstd` and
/// `User-Agent: loadgate/<version>`.
#[test]
fn gzip_br_zstd_deflate_and_a_stack_are_decoded_before_the_checks() {
    block_on(async {
        for (http, h2, protocol) in PROTOCOLS {
            let base = server(h2).await;
            for path in ["/plain", "/gzip", "/br", "/zstd", "/deflate", "/stack"] {
                let t = target(
                    &base,
                    http,
                    "",
                    &format!(
                        "path = \"{path}\"\nchecks = {{ body_contains = \"xxxx\", json = [{{ path = \"$.ok\", equals = true }}] }}"
                    ),
                );
                let x = t.call().await;
                assert!(passes(&t, &x), "{http} {path}: {x:?}");
                let r = x.result.as_ref().unwrap();
                assert_eq!(r.protocol, protocol);
                let decoded = r.decoded.expect("a checked body is decoded");
                assert!(decoded > 4000, "{http} {path}: {r:?}");
                if path == "/plain" {
                    assert_eq!(r.bytes, decoded);
                } else {
                    assert!(r.bytes < decoded / 4, "{http} {path}: {r:?}");
                }
                let doc = body_json(&x);
                assert_eq!(doc["ae"], loadgate_engine::ACCEPT_ENCODING, "{http} {path}");
                assert_eq!(doc["ua"], loadgate_engine::USER_AGENT, "{http} {path}");
                assert_eq!(doc["ua"], format!("loadgate/{}", env!("CARGO_PKG_VERSION")));
            }
        }
    });
}

/// A gzip body with corrupt data fails to decode: the target's `protocol_error`, not a
/// check failure, not loadgate's error.
#[test]
fn a_corrupt_gzip_body_is_a_protocol_error() {
    block_on(async {
        for (http, h2, _) in PROTOCOLS {
            let base = server(h2).await;
            let t = target(
                &base,
                http,
                "",
                "path = \"/corrupt\"\nchecks = { body_contains = \"ok\" }",
            );
            let x = t.call().await;
            let e = x.result.as_ref().expect_err("the body does not decode");
            assert_eq!(e.outcome, Outcome::ProtocolError, "{http}: {e:?}");
            assert!(e.error.to_string().contains("gzip"), "{http}: {e:?}");
        }
    });
}

/// 1 GiB of zeros sent as about 1 MiB of gzip is read to its end and every decoded byte
/// counted, with only `max_body` of it kept.
#[test]
fn a_gzip_bomb_is_counted_to_its_end_and_kept_only_to_max_body() {
    block_on(async {
        for (http, h2, _) in PROTOCOLS {
            let base = server(h2).await;
            let t = target(
                &base,
                http,
                "max_body = \"64KiB\"",
                "path = \"/bomb\"\nchecks = { body_contains = \"never there\" }",
            );
            let x = t.call().await;
            let r = x.result.as_ref().expect("read to its end");
            assert_eq!(r.decoded, Some(GIB), "{http}: {r:?}");
            assert!(r.bytes < 4 << 20, "{http}: {r:?}");
            assert_eq!(r.body.len(), 64 * 1024, "{http}: only max_body kept");
            assert!(
                r.body.capacity() <= 128 * 1024,
                "{http}: {}",
                r.body.capacity()
            );
            assert!(!passes(&t, &x));
        }
    });
}

/// An SSE stream sent gzip-compressed, an event a flush: the stream reader reads the
/// decoded events, each token, to the terminator.
#[test]
fn sse_over_gzip_is_read_decoded() {
    block_on(async {
        for (http, h2, _) in PROTOCOLS {
            let base = server(h2).await;
            let t = target(&base, http, "", "path = \"/sse\"\nstream = \"sse\"");
            let x = t.call().await;
            let r = x.result.as_ref().expect("answered");
            let s = x.stream.as_ref().expect("a stream");
            assert_eq!(
                s.ending,
                loadgate_engine::stream::Ending::Complete,
                "{http}: {s:?}"
            );
            assert_eq!(s.content_events, 3, "{http}: {s:?}");
            let plain: usize = SSE.iter().map(|e| e.len()).sum();
            assert_eq!(r.decoded, Some(plain as u64), "{http}");
        }
    });
}

/// `compression = false` sends no `Accept-Encoding`; a server that compresses anyway is
/// still decoded. A scenario's own `Accept-Encoding` (and `User-Agent`) is sent instead
/// of loadgate's, once.
#[test]
fn compression_off_a_server_that_compresses_anyway_and_the_scenarios_own_headers() {
    block_on(async {
        for (http, h2, _) in PROTOCOLS {
            let base = server(h2).await;
            let check = "checks = { json = [{ path = \"$.ok\", equals = true }] }";
            // Off: nothing asked, gzip sent anyway, decoded.
            let t = target(
                &base,
                http,
                "compression = false",
                &format!("path = \"/gzip\"\n{check}"),
            );
            let x = t.call().await;
            assert!(passes(&t, &x), "{http}: {x:?}");
            assert_eq!(body_json(&x)["ae"], "", "{http}");
            // Off in [defaults], on for this endpoint.
            let t = target(
                &base,
                http,
                "compression = false",
                &format!("path = \"/negotiate\"\ncompression = true\n{check}"),
            );
            let x = t.call().await;
            assert_eq!(body_json(&x)["ae"], "gzip, br, zstd", "{http}");
            assert!(
                x.result.as_ref().unwrap().bytes < 4000,
                "{http}: compressed"
            );
            // The scenario's own headers win.
            let t = target(
                &base,
                http,
                "",
                &format!(
                    "path = \"/negotiate\"\nheaders = {{ Accept-Encoding = \"identity\", User-Agent = \"mine/1\" }}\n{check}"
                ),
            );
            let x = t.call().await;
            let doc = body_json(&x);
            assert_eq!(
                (doc["ae"].as_str(), doc["ua"].as_str()),
                (Some("identity"), Some("mine/1")),
                "{http}"
            );
            let r = x.result.as_ref().unwrap();
            assert_eq!(Some(r.bytes), r.decoded, "{http}: not compressed");
        }
    });
}

/// An endpoint no check or stream reads is not decoded: its wire bytes are counted, its
/// decoded bytes absent, and a corrupt body goes unnoticed (nothing reads it).
#[test]
fn a_body_nothing_reads_is_not_decoded() {
    block_on(async {
        for (http, h2, protocol) in PROTOCOLS {
            let base = server(h2).await;
            for path in ["/gzip", "/corrupt"] {
                let t = target(&base, http, "", &format!("path = \"{path}\""));
                let x = t.call().await;
                let r = x.result.as_ref().expect("answered");
                assert_eq!(
                    (r.status, r.decoded, r.protocol),
                    (200, None, protocol),
                    "{http} {path}"
                );
                assert!(r.bytes > 0 && r.body.is_empty());
            }
        }
    });
}
