//! Issue 22: failures explained, from whole runs against real servers on 127.0.0.1:0:
//! a JSON check that finds `"degraded"`, a 503 with a body, a TLS endpoint whose
//! certificate is not trusted (the reason, not just `connect_error`), a target that stops
//! listening mid-run; every failure counted in an explanation or in `other`, and no
//! more than five explanations however many distinct bodies.
//!
//! No timed assertion: every check is on counts and words.

mod common;

use std::io::{Read, Write};
use std::sync::Mutex;

use loadgate_engine::{run, RunData};
use loadgate_metrics::{EndpointShard, Outcome};

static SERIAL: Mutex<()> = Mutex::new(());

fn run_at(scenario: &str, base: &str) -> RunData {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let text = format!(
        "name = \"t\"\ntarget = \"${{BASE}}\"\n[defaults]\ntimeout = \"2s\"\nconnect_timeout = \"1s\"\n{scenario}[load]\nmodel = \"open\"\nstages = [{{ duration = \"2s\", target_rps = 20 }}]\n"
    );
    run(common::config(&text, base, 2, false), &mut []).expect("run")
}

/// Every endpoint's totals, warm-up and measured.
fn totals(d: &RunData, endpoint: usize) -> EndpointShard {
    let mut e = d.measured.endpoints()[endpoint].clone();
    e.merge_from(&d.warmup.endpoints()[endpoint]);
    e
}

/// Every failure is counted once: in an explanation or in `other`.
#[track_caller]
fn all_counted(e: &EndpointShard) -> &loadgate_metrics::Failures {
    let f = e.failures.as_deref().expect("failures explained");
    assert_eq!(f.total(), e.outcomes.errors(), "{f:?}");
    assert!(f.examples.len() <= loadgate_metrics::failures::KEPT);
    f
}

/// A raw HTTP/1.1 server: each connection gets one answer (`answer(n, path)` for the
/// n-th connection, asking for `path`) and is closed; after `serve` connections it stops listening (`None`:
/// never). Its base URL.
fn raw_server(serve: Option<usize>, answer: fn(usize, &str) -> Vec<u8>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for n in 0.. {
            if serve.is_some_and(|s| n >= s) {
                return;
            }
            let Ok((mut sock, _)) = listener.accept() else {
                return;
            };
            let mut buf = [0u8; 4096];
            let mut got = Vec::new();
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                match sock.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(k) => got.extend_from_slice(&buf[..k]),
                }
            }
            let head = String::from_utf8_lossy(&got);
            let path = head.split(' ').nth(1).unwrap_or("/");
            let _ = sock.write_all(b"HTTP/1.1 ");
            let _ = sock.write_all(&answer(n, path));
        }
    });
    format!("http://{addr}")
}

/// A JSON check that finds another value says which check and what it found; a 503
/// says its status and the start of its body; distinct bodies past the fifth are
/// counted in `other`, never kept.
#[test]
fn a_degraded_json_and_a_503_with_a_body_are_explained() {
    let base = raw_server(None, |n, path| {
        // The health check's degraded answer; else a 503 whose body differs each time
        // (a request id) and holds a control character.
        let text = if path == "/health" {
            let body = "{\"status\":\"degraded\"}";
            format!(
                "200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
        } else {
            let body = format!("upstream down\n\u{1b}[31mrequest {n}");
            format!(
                "503 Service Unavailable\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
        };
        text.into_bytes()
    });
    let d = run_at(
        "[[endpoint]]\nname = \"health\"\npath = \"/health\"\nchecks = { json = [{ path = \"$.status\", equals = \"healthy\" }] }\n[[endpoint]]\nname = \"fail\"\npath = \"/fail\"\n",
        &base,
    );
    let e = totals(&d, 0);
    let f = all_counted(&e);
    assert_eq!(f.examples.len(), 1, "one explanation: {f:#?}");
    let check = f
        .examples
        .iter()
        .find(|x| x.outcome == Outcome::CheckFailed)
        .expect("the check explained");
    assert_eq!(check.what, "json $.status equals \"healthy\"");
    assert_eq!(check.found.as_deref(), Some("\"degraded\""));
    assert_eq!(check.count, e.outcomes.get(Outcome::CheckFailed), "{f:#?}");
    let e = totals(&d, 1);
    let f = all_counted(&e);
    let fives: Vec<_> = f
        .examples
        .iter()
        .filter(|x| x.outcome == Outcome::Http5xx)
        .collect();
    assert_eq!(fives.len(), loadgate_metrics::failures::KEPT);
    for x in &fives {
        assert_eq!(x.what, "status 503");
        let found = x.found.as_deref().unwrap();
        assert!(
            found.starts_with("upstream down\\n\\u{1b}[31mrequest "),
            "{found}"
        );
        assert!(!found.contains('\u{1b}') && found.len() <= 120);
    }
    // About 20 requests, each body its own: the rest are `other`.
    assert!(f.other > 0, "{f:?}");
}

/// A certificate nobody trusts, during the load: the TLS reason, not just
/// `connect_error`.
#[test]
fn an_untrusted_certificate_says_why() {
    let target = loadgate_target::spawn_tls(
        loadgate_target::Profile::parse("p", "").unwrap(),
        "127.0.0.1:0".parse().unwrap(),
        1,
    )
    .unwrap();
    let d = run_at(
        "[[endpoint]]\nname = \"e\"\npath = \"/\"\n",
        &target.base_url(),
    );
    let e = totals(&d, 0);
    let f = all_counted(&e);
    assert_eq!(f.examples.len(), 1, "one reason: {f:?}");
    let x = &f.examples[0];
    assert_eq!(x.outcome, Outcome::ConnectError);
    assert!(x.what.starts_with("tls: "), "{}", x.what);
    assert!(x.what.contains("UnknownIssuer"), "{}", x.what);
    assert_eq!(x.count, e.outcomes.get(Outcome::ConnectError));
}

/// A target that stops listening mid-run: the refused connections say so, beside the
/// successes before.
#[test]
fn connections_refused_mid_run_say_so() {
    let base = raw_server(Some(10), |_, _| {
        b"200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok".to_vec()
    });
    let d = run_at("[[endpoint]]\nname = \"e\"\npath = \"/\"\n", &base);
    let e = totals(&d, 0);
    assert!(e.outcomes.get(Outcome::Success) > 0);
    let f = all_counted(&e);
    let refused = f
        .examples
        .iter()
        .find(|x| x.outcome == Outcome::ConnectError)
        .expect("refused explained");
    assert!(
        refused.what.to_lowercase().contains("refused"),
        "{}",
        refused.what
    );
}

/// A 503 with a gzip body, on an endpoint that reads no body (so does not decode it):
/// the explanation shows its start decoded; one whose gzip is corrupt stays the
/// target's `http_5xx` (explaining never changes an outcome).
#[test]
fn a_compressed_error_body_is_shown_decoded_and_a_corrupt_one_changes_nothing() {
    let base = raw_server(None, |_, path| {
        let body = match path {
            "/gz" => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(b"service down: maintenance").unwrap();
                e.finish().unwrap()
            }
            _ => b"this is not gzip at all".to_vec(),
        };
        let mut out = format!(
            "503 Service Unavailable\r\ncontent-encoding: gzip\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        out.extend_from_slice(&body);
        out
    });
    let d = run_at(
        "[[endpoint]]\nname = \"gz\"\npath = \"/gz\"\n[[endpoint]]\nname = \"bad\"\npath = \"/bad\"\n",
        &base,
    );
    let gz = totals(&d, 0);
    let f = all_counted(&gz);
    assert_eq!(f.examples.len(), 1, "{f:#?}");
    assert_eq!(f.examples[0].what, "status 503");
    assert_eq!(
        f.examples[0].found.as_deref(),
        Some("service down: maintenance")
    );
    let bad = totals(&d, 1);
    assert_eq!(
        bad.outcomes.get(Outcome::Http5xx),
        bad.outcomes.total(),
        "{:?}",
        bad.outcomes
    );
    let f = all_counted(&bad);
    assert_eq!(f.examples[0].outcome, Outcome::Http5xx);
}
