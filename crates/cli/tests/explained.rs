//! Issue 22: failures explained and redirects counted, end to end against a real server
//! on 127.0.0.1:0: a JSON check that finds `"degraded"`, a 503 whose body echoes the
//! request's `Authorization` (a token from the environment: it must appear in no
//! output), a redirect followed; and two segments merged keep the explanations.

mod common;

use std::io::{BufRead, BufReader, Read, Write};

use common::*;

/// The token the target echoes back in its 503 bodies.
const TOKEN: &str = "tok-9f8e7d6c5b4a-very-secret";

/// What the 503 body says before the token: the token then straddles the 120-byte cut
/// of an excerpt, so a mask applied only after the cut would leave half of it.
const PAD: &str =
    "---------------------------------------------------------------------------------------";

/// The start of the token: no output may hold even this much.
const TOKEN_START: &str = "tok-9f8e7d";

/// A keep-alive HTTP/1.1 server: `/health` answers `{"status":"degraded"}`, `/fail` a
/// 503 whose body echoes the request's Authorization, `/moved` a 302 to `/ok`, anything
/// else 200 `ok`. Its base URL.
fn server() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        while let Ok((sock, _)) = listener.accept() {
            std::thread::spawn(move || {
                let mut r = BufReader::new(sock.try_clone().unwrap());
                let mut w = sock;
                loop {
                    let (mut path, mut auth, mut length) = (String::new(), String::new(), 0usize);
                    let mut first = true;
                    loop {
                        let mut line = String::new();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if first {
                            path = line.split(' ').nth(1).unwrap_or("/").to_string();
                            first = false;
                        }
                        let lower = line.to_ascii_lowercase();
                        if let Some(v) = lower.strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap();
                        }
                        if lower.starts_with("authorization:") {
                            auth = line["authorization:".len()..].trim().to_string();
                        }
                        if line == "\r\n" {
                            break;
                        }
                    }
                    let mut skip = vec![0; length];
                    if r.read_exact(&mut skip).is_err() {
                        return;
                    }
                    let (status, extra, body) = match path.as_str() {
                        "/health" => ("200 OK", "", "{\"status\":\"degraded\"}".to_string()),
                        "/fail" => (
                            "503 Service Unavailable",
                            "",
                            format!("{PAD}denied for {auth}"),
                        ),
                        "/moved" => ("302 Found", "location: /ok\r\n", String::new()),
                        _ => ("200 OK", "", "ok".to_string()),
                    };
                    let answer = format!(
                        "HTTP/1.1 {status}\r\ncontent-length: {}\r\n{extra}\r\n{body}",
                        body.len()
                    );
                    if w.write_all(answer.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    format!("http://{addr}")
}

const SCENARIO: &str = r#"name = "explained"
target = "${URL}"
[defaults]
timeout = "2s"
connect_timeout = "1s"
[[endpoint]]
name = "health"
path = "/health"
checks = { json = [{ path = "$.status", equals = "healthy" }] }
[[endpoint]]
name = "fail"
path = "/fail"
headers = { Authorization = "Bearer ${TOKEN}" }
[[endpoint]]
name = "moved"
path = "/moved"
[load]
model = "open"
stages = [{ duration = "2s", target_rps = 15 }]
max_late_ratio = 0.5
"#;

/// No file of `dir` holds the token.
#[track_caller]
fn no_token_in(dir: &std::path::Path) {
    for f in std::fs::read_dir(dir).unwrap() {
        let p = f.unwrap().path();
        if p.is_file() {
            let bytes = std::fs::read(&p).unwrap();
            assert!(
                !String::from_utf8_lossy(&bytes).contains(TOKEN_START),
                "{} holds the token",
                p.display()
            );
        }
    }
}

#[test]
fn failures_are_explained_with_secrets_masked_in_every_output() {
    let url = server();
    let c = Case::new(SCENARIO);
    let o = c.loadgate(
        &["run", "{s}", "--out", "{out}"],
        &[("URL", &url), ("TOKEN", TOKEN)],
    );
    assert_eq!(code(&o), 1, "{}", text(&o));
    let out = text(&o);
    assert!(
        !out.contains(TOKEN_START),
        "the console shows the token: {out}"
    );
    let s = c.summary();
    let health = &row(&s, "health")["failures"]["examples"][0];
    assert_eq!(health["outcome"], "check_failed");
    assert_eq!(health["what"], "json $.status equals \"healthy\"");
    assert_eq!(health["found"], "\"degraded\"");
    assert_eq!(
        health["count"],
        row(&s, "health")["outcomes"]["check_failed"]
    );
    let fail = &row(&s, "fail")["failures"]["examples"][0];
    assert_eq!(fail["outcome"], "http_5xx");
    assert_eq!(fail["what"], "status 503");
    assert_eq!(
        fail["found"],
        format!("{PAD}denied for Bearer ${{TOKEN}}"),
        "{fail}"
    );
    // The redirect was followed to its answer, each hop counted.
    let moved = row(&s, "moved");
    assert_eq!(moved["outcomes"]["success"], moved["requests"], "{moved}");
    assert_eq!(moved["redirects"], moved["requests"]);
    assert!(moved.get("failures").is_none(), "{moved}");
    // Shown where people look, masked.
    assert!(
        out.contains("json $.status equals \"healthy\", found \"degraded\""),
        "{out}"
    );
    assert!(out.contains("redirects followed"), "{out}");
    let html = std::fs::read_to_string(c.out().join("report.html")).unwrap();
    assert!(
        html.contains("failure: check_failed"),
        "the report shows it"
    );
    let md = std::fs::read_to_string(c.out().join("summary.md")).unwrap();
    assert!(md.contains("status 503"), "{md}");
    no_token_in(&c.out());
}

/// Two segments of one load merged: the explanations of both, counts added.
#[test]
fn two_segments_merged_keep_the_explanations() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let url = server();
    let c = Case::new(SCENARIO);
    let dir = c.dir.path();
    let outputs = run_segments(dir, 2, &[], &[("URL", &url), ("TOKEN", TOKEN)]);
    let mut counts = 0;
    for (i, o) in outputs.iter().enumerate() {
        assert_eq!(code(o), 1, "segment {}: {}", i + 1, text(o));
        let s = summary_in(dir, &format!("seg{}", i + 1));
        counts += row(&s, "health")["failures"]["examples"][0]["count"]
            .as_u64()
            .unwrap();
    }
    let o = merge(dir, &["seg1", "seg2"], "merged", &[]);
    assert_eq!(code(&o), 1, "{}", text(&o));
    let s = summary_in(dir, "merged");
    let health = row(&s, "health");
    assert_eq!(health["failures"]["examples"][0]["count"], counts);
    assert_eq!(health["failures"]["examples"][0]["found"], "\"degraded\"");
    assert_eq!(
        row(&s, "fail")["failures"]["examples"][0]["found"],
        format!("{PAD}denied for Bearer ${{TOKEN}}")
    );
    assert!(row(&s, "moved")["redirects"].as_u64().unwrap() > 0);
    no_token_in(&dir.join("merged"));
}
