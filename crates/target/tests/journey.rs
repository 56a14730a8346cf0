//! The built-in routes for user journeys over real sockets: login and expiring JWTs,
//! protected paths, session cookies and cookie helpers, jobs pending then done,
//! redirects, compressed bodies and the per-user rate limit.
//!
//! No bound here depends on the machine's speed: a token, a job or a window is judged
//! by the test's own clock around the server's (a request is sent before the server
//! sees it and read after it answered), and an assertion that needs a request to land
//! before a deadline is made only when the test's clock shows it did.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use loadgate_target::{loopback, RunningTarget};
use serde_json::{json, Value};

/// One HTTP/1.1 answer.
#[derive(Debug)]
struct Reply {
    status: u16,
    /// Header names in lower case, in order.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }
}

/// Sends one HTTP/1.1 request (`Connection: close`) and reads the whole answer.
fn send(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n");
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no head: {:?}", String::from_utf8_lossy(&raw)));
    let head = String::from_utf8(raw[..end].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.trim().to_ascii_lowercase(), v.trim().to_string())
        })
        .collect::<Vec<_>>();
    let body = raw[end + 4..].to_vec();
    let reply = Reply {
        status,
        headers,
        body,
    };
    if let Some(len) = reply.header("content-length") {
        assert_eq!(len.parse::<usize>().unwrap(), reply.body.len(), "{reply:?}");
    }
    reply
}

fn get(t: &RunningTarget, path: &str, headers: &[(&str, &str)]) -> Reply {
    send(t.addr(), "GET", path, headers, "")
}

fn post(t: &RunningTarget, path: &str, headers: &[(&str, &str)], body: Value) -> Reply {
    send(t.addr(), "POST", path, headers, &body.to_string())
}

/// Logs in as `user`: the token, and when the request was sent.
fn login(t: &RunningTarget, user: &str) -> (String, Instant) {
    let sent = Instant::now();
    let r = post(
        t,
        "/api/auth/login",
        &[],
        json!({"username": user, "password": "demo"}),
    );
    assert_eq!(r.status, 200, "{r:?}");
    (r.json()["token"].as_str().unwrap().to_string(), sent)
}

fn unix_now() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap()
}

/// Asserts a 401 for a refused bearer token, and its reason.
fn refused(r: &Reply, why: &str) {
    assert_eq!(r.status, 401, "{r:?}");
    assert_eq!(
        r.header("www-authenticate"),
        Some(r#"Bearer error="invalid_token""#)
    );
    assert_eq!(r.json(), json!({ "error": format!("token {why}") }));
}

const AUTH: &str = "[auth]\ntoken_ttl = \"2s\"\nprotect = [\"/api/agent/*\", \"/api/me\"]\n\
[[route]]\nmethod = \"POST\"\npath = \"/api/agent/query\"\nresponse = '{\"answer\":\"42\"}'\n";

#[test]
fn a_login_token_opens_protected_paths_until_it_expires() {
    let t = loopback(AUTH);
    // Wrong credentials, and a body that is not a login.
    for body in [
        json!({"username": "alice", "password": "wrong"}),
        json!({"username": "", "password": "demo"}),
    ] {
        let r = post(&t, "/api/auth/login", &[], body);
        assert_eq!(r.status, 401, "{r:?}");
        assert_eq!(r.json(), json!({"error": "invalid credentials"}));
    }
    let r = send(t.addr(), "POST", "/api/auth/login", &[], "not json");
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(get(&t, "/api/auth/login", &[]).status, 405);

    let sent = Instant::now();
    let r = post(
        &t,
        "/api/auth/login",
        &[],
        json!({"username": "alice", "password": "demo"}),
    );
    assert_eq!(r.status, 200, "{r:?}");
    let j = r.json();
    assert_eq!(
        (j["token_type"].clone(), j["expires_in"].clone()),
        (json!("Bearer"), json!(2))
    );
    let token = j["token"].as_str().unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "{token}");
    assert_eq!(
        B64.decode(parts[0]).unwrap(),
        br#"{"alg":"HS256","typ":"JWT"}"#
    );
    let claims: Value = serde_json::from_slice(&B64.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(claims["sub"], "alice");
    let (iat, exp) = (
        claims["iat"].as_u64().unwrap(),
        claims["exp"].as_u64().unwrap(),
    );
    assert!((2..=3).contains(&(exp - iat)), "{claims}");
    let bearer = format!("Bearer {token}");

    // Missing, garbled and forged tokens; another scheme.
    refused(&get(&t, "/api/me", &[]), "missing");
    refused(
        &post(&t, "/api/agent/query", &[], json!({"query": "q"})),
        "missing",
    );
    refused(
        &post(&t, "/api/agent/jobs", &[], json!({"query": "q"})),
        "missing",
    );
    refused(
        &get(&t, "/api/me", &[("Authorization", "Bearer nope")]),
        "invalid",
    );
    refused(
        &get(&t, "/api/me", &[("Authorization", "Basic YTpi")]),
        "invalid",
    );
    let forged_claims =
        B64.encode(json!({"sub": "root", "iat": iat, "exp": exp + 3600}).to_string());
    let forged = format!("Bearer {}.{forged_claims}.{}", parts[0], parts[2]);
    refused(
        &get(&t, "/api/me", &[("Authorization", &forged)]),
        "invalid",
    );
    let unsigned = format!(
        "Bearer {}.{forged_claims}.",
        B64.encode(r#"{"alg":"none","typ":"JWT"}"#)
    );
    refused(
        &get(&t, "/api/me", &[("Authorization", &unsigned)]),
        "invalid",
    );
    // A token of another target (another key) is not this one's.
    let other = loopback("");
    let (foreign, _) = login(&other, "alice");
    refused(
        &get(
            &t,
            "/api/me",
            &[("Authorization", &format!("Bearer {foreign}"))],
        ),
        "invalid",
    );

    // The token opens every protected path, built-in or the profile's, while it is
    // valid: at least 2 s after the login was sent.
    let me = get(&t, "/api/me", &[("Authorization", &bearer)]);
    let query = post(
        &t,
        "/api/agent/query",
        &[("Authorization", &bearer)],
        json!({"query": "q"}),
    );
    if sent.elapsed() < Duration::from_secs(2) {
        assert_eq!((me.status, me.json()), (200, json!({"user": "alice"})));
        assert_eq!((query.status, query.json()), (200, json!({"answer": "42"})));
    }
    // A path that is not protected needs nothing.
    assert_eq!(get(&t, "/get", &[]).status, 200);

    // Past `exp`, the same token is refused as expired (bounded wait: exp is at most
    // 3 s after the login).
    let wait = Duration::from_secs(exp).saturating_sub(unix_now()) + Duration::from_millis(50);
    assert!(wait < Duration::from_secs(5), "{wait:?}");
    std::thread::sleep(wait);
    refused(
        &get(&t, "/api/me", &[("Authorization", &bearer)]),
        "expired",
    );
    refused(
        &post(
            &t,
            "/api/agent/query",
            &[("Authorization", &bearer)],
            json!({"query": "q"}),
        ),
        "expired",
    );
    // A fresh login opens them again: what an engine's token refresh does.
    let (fresh, _) = login(&t, "alice");
    let me = get(
        &t,
        "/api/me",
        &[("Authorization", &format!("Bearer {fresh}"))],
    );
    assert_eq!(me.status, 200, "{me:?}");
}

#[test]
fn api_me_needs_a_token_even_unprotected_and_nothing_else_is_protected_by_default() {
    let t = loopback("[[route]]\nmethod = \"POST\"\npath = \"/api/agent/query\"\n");
    refused(&get(&t, "/api/me", &[]), "missing");
    let (token, _) = login(&t, "bob");
    let me = get(
        &t,
        "/api/me",
        &[("Authorization", &format!("Bearer {token}"))],
    );
    assert_eq!((me.status, me.json()), (200, json!({"user": "bob"})));
    assert_eq!(
        post(&t, "/api/agent/query", &[], json!({"query": "q"})).status,
        200
    );
    assert_eq!(
        post(&t, "/api/agent/jobs", &[], json!({"query": "q"})).status,
        202
    );
    // The profile's password, not the default's.
    let t = loopback("[auth]\npassword = \"hunter22\"\n");
    let r = post(
        &t,
        "/api/auth/login",
        &[],
        json!({"username": "a", "password": "demo"}),
    );
    assert_eq!(r.status, 401);
    let r = post(
        &t,
        "/api/auth/login",
        &[],
        json!({"username": "a", "password": "hunter22"}),
    );
    assert_eq!(r.status, 200);
}

#[test]
fn a_session_cookie_is_set_read_back_and_expires() {
    let t = loopback("[auth]\ntoken_ttl = \"1s\"\n");
    let r = post(
        &t,
        "/api/auth/session",
        &[],
        json!({"username": "carol", "password": "wrong"}),
    );
    assert_eq!(r.status, 401);
    assert!(r.header("set-cookie").is_none());
    let sent = Instant::now();
    let r = post(
        &t,
        "/api/auth/session",
        &[],
        json!({"username": "carol", "password": "demo"}),
    );
    assert_eq!(r.status, 200, "{r:?}");
    let set = r.header("set-cookie").unwrap();
    let (pair, attributes) = set.split_once("; ").unwrap();
    assert_eq!(attributes, "Path=/; HttpOnly; SameSite=Lax");
    let value = pair.strip_prefix("lg_session=").unwrap();
    assert!(
        !value.is_empty() && !value.contains("carol"),
        "opaque: {value}"
    );

    let cookie = format!("theme=dark; lg_session={value}");
    let s = get(&t, "/api/session", &[("Cookie", &cookie)]);
    if sent.elapsed() < Duration::from_secs(1) {
        assert_eq!((s.status, s.json()), (200, json!({"user": "carol"})));
    }
    let s = get(&t, "/api/session", &[]);
    assert_eq!(
        (s.status, s.json()),
        (401, json!({"error": "session missing"}))
    );
    let mut tampered = value.to_string();
    tampered.insert(0, 'x');
    let s = get(
        &t,
        "/api/session",
        &[("Cookie", &format!("lg_session={tampered}"))],
    );
    assert_eq!(
        (s.status, s.json()),
        (401, json!({"error": "session invalid"}))
    );
    // A JWT is no session.
    let (token, _) = login(&t, "carol");
    let s = get(
        &t,
        "/api/session",
        &[("Cookie", &format!("lg_session={token}"))],
    );
    assert_eq!(s.status, 401);
    // Expired at most 2 s after it was issued (1 s, rounded up to whole seconds).
    std::thread::sleep(Duration::from_millis(2100).saturating_sub(sent.elapsed()));
    let s = get(&t, "/api/session", &[("Cookie", &cookie)]);
    assert_eq!(
        (s.status, s.json()),
        (401, json!({"error": "session expired"}))
    );
}

#[test]
fn cookies_are_set_listed_and_deleted_as_httpbin_does() {
    let t = loopback("");
    let r = get(&t, "/cookies/set?a=1&b=x%3Dy&c=", &[]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.json(),
        json!({"cookies": {"a": "1", "b": "x=y", "c": ""}})
    );
    assert_eq!(
        r.all("set-cookie"),
        ["a=1; Path=/", "b=x=y; Path=/", "c=; Path=/"]
    );
    // What a client sends back, in one header or several.
    let r = get(&t, "/cookies", &[("Cookie", "a=1; b=x=y")]);
    assert_eq!(r.json(), json!({"cookies": {"a": "1", "b": "x=y"}}));
    let r = get(&t, "/cookies", &[("Cookie", "a=1"), ("Cookie", "z=26")]);
    assert_eq!(r.json(), json!({"cookies": {"a": "1", "z": "26"}}));
    assert_eq!(get(&t, "/cookies", &[]).json(), json!({"cookies": {}}));
    // What a cookie cannot hold is refused, not set.
    for bad in [
        "/cookies/set?a=x%3By",
        "/cookies/set?a=x%20y",
        "/cookies/set?a%20b=1",
        "/cookies/set",
    ] {
        let r = get(&t, bad, &[]);
        assert_eq!(r.status, 400, "{bad}: {r:?}");
        assert!(r.header("set-cookie").is_none(), "{bad}");
    }
    let r = get(&t, "/cookies/delete?a", &[("Cookie", "a=1; b=2")]);
    assert_eq!(r.json(), json!({"cookies": {"b": "2"}}));
    assert_eq!(r.all("set-cookie"), ["a=; Path=/; Max-Age=0"]);
}

#[test]
fn a_job_is_pending_then_done_and_its_id_cannot_be_forged() {
    let t = loopback("[jobs]\ntime = \"1s\"\n");
    let r = post(&t, "/api/agent/jobs", &[], json!({"nope": 1}));
    assert_eq!(r.status, 400, "{r:?}");
    let sent = Instant::now();
    let r = post(
        &t,
        "/api/agent/jobs",
        &[],
        json!({"query": "how much did I spend?"}),
    );
    assert_eq!(r.status, 202, "{r:?}");
    let j = r.json();
    assert_eq!(j["status"], "pending");
    let id = j["job_id"].as_str().unwrap().to_string();
    let path = format!("/api/agent/jobs/{id}");
    assert_eq!(r.header("location"), Some(path.as_str()));

    // Polled until done: at most 200 polls, 50 ms apart, and 30 s.
    let mut seen = Vec::new();
    for _ in 0..200 {
        let r = get(&t, &path, &[]);
        assert_eq!(r.status, 200, "{r:?}");
        let j = r.json();
        let status = j["status"].as_str().unwrap().to_string();
        seen.push((status.clone(), sent.elapsed()));
        if status == "done" {
            assert!(j["answer"].as_str().is_some_and(|a| !a.is_empty()), "{j}");
            break;
        }
        assert_eq!(j, json!({"status": "pending"}));
        if sent.elapsed() > Duration::from_secs(30) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let (last, done_at) = seen.last().unwrap();
    assert_eq!(last, "done", "{seen:?}");
    // Never done before its time (the job was created after `sent`).
    assert!(*done_at >= Duration::from_secs(1), "{seen:?}");
    // Pending first, whenever the first poll came back within the job's time.
    if seen[0].1 < Duration::from_secs(1) {
        assert_eq!(seen[0].0, "pending", "{seen:?}");
    }
    // Done stays done.
    assert_eq!(get(&t, &path, &[]).json()["status"], "done");

    // Garbled, altered and foreign ids are no job.
    let mut bytes = B64.decode(&id).unwrap();
    bytes[15] ^= 0x40; // the job's time
    let altered = format!("/api/agent/jobs/{}", B64.encode(&bytes));
    let other = loopback("");
    let foreign = post(&other, "/api/agent/jobs", &[], json!({"query": "q"})).json()["job_id"]
        .as_str()
        .unwrap()
        .to_string();
    for bad in [
        "/api/agent/jobs/nope".to_string(),
        "/api/agent/jobs/".to_string(),
        altered,
        format!("/api/agent/jobs/{foreign}"),
    ] {
        let r = get(&t, &bad, &[]);
        assert_eq!(
            (r.status, r.json()),
            (404, json!({"error": "no such job"})),
            "{bad}"
        );
    }
}

#[test]
fn redirects_keep_their_status_along_the_chain() {
    let t = loopback("");
    for status in [301u16, 302, 303, 307, 308] {
        let mut path = format!("/redirect/3?status={status}");
        let mut hops = 0;
        let last = loop {
            let r = get(&t, &path, &[]);
            if !(300..400).contains(&r.status) {
                break r;
            }
            assert_eq!(r.status, status, "{path}: {r:?}");
            path = r.header("location").unwrap().to_string();
            hops += 1;
            assert!(hops <= 3, "{path}");
        };
        assert_eq!(hops, 3);
        assert_eq!(last.status, 200);
        assert_eq!(last.json()["url"], "/get");
    }
    // The chain's links, default status 302.
    let r = get(&t, "/redirect/2", &[]);
    assert_eq!((r.status, r.header("location")), (302, Some("/redirect/1")));
    let r = get(&t, "/redirect/1", &[]);
    assert_eq!((r.status, r.header("location")), (302, Some("/get")));
    let r = get(&t, "/redirect/100?status=307", &[]);
    assert_eq!(
        (r.status, r.header("location")),
        (307, Some("/redirect/99?status=307"))
    );
    // A method-keeping redirect takes a POST along.
    let r = send(t.addr(), "POST", "/redirect/1?status=308", &[], "{}");
    assert_eq!((r.status, r.header("location")), (308, Some("/get")));
    for bad in [
        "/redirect/0",
        "/redirect/101",
        "/redirect/x",
        "/redirect/2?status=200",
        "/redirect-to",
        "/redirect-to?url=/get&status=304",
    ] {
        assert_eq!(get(&t, bad, &[]).status, 400, "{bad}");
    }
    // Anywhere, by any status.
    let r = get(
        &t,
        "/redirect-to?url=http%3A%2F%2F127.0.0.1%3A9%2Fget%3Fa%3D1&status=307",
        &[],
    );
    assert_eq!(
        (r.status, r.header("location")),
        (307, Some("http://127.0.0.1:9/get?a=1"))
    );
    let r = get(&t, "/redirect-to?url=/cookies", &[]);
    assert_eq!((r.status, r.header("location")), (302, Some("/cookies")));
    let r = get(&t, "/redirect-loop", &[]);
    assert_eq!(
        (r.status, r.header("location")),
        (302, Some("/redirect-loop"))
    );
    let r = get(&t, "/redirect-loop?status=301", &[]);
    assert_eq!(
        (r.status, r.header("location")),
        (301, Some("/redirect-loop?status=301"))
    );
}

#[test]
fn get_echoes_the_request() {
    let t = loopback("");
    let r = send(
        t.addr(),
        "POST",
        "/get?x=1&y=a%20b",
        &[
            ("X-Test", "abc"),
            ("Cookie", "a=1"),
            ("Authorization", "Bearer t"),
        ],
        r#"{"k":"v"}"#,
    );
    assert_eq!(r.status, 200, "{r:?}");
    let j = r.json();
    assert_eq!(j["method"], "POST");
    assert_eq!(j["url"], "/get?x=1&y=a%20b");
    assert_eq!(j["args"], json!({"x": "1", "y": "a b"}));
    assert_eq!(j["headers"]["x-test"], "abc");
    assert_eq!(j["headers"]["cookie"], "a=1");
    assert_eq!(j["headers"]["authorization"], "Bearer t");
    assert_eq!(j["headers"]["host"], "t");
    assert_eq!(j["body"], r#"{"k":"v"}"#);
}

/// Decodes `body` sent with `coding`.
fn decode(coding: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match coding {
        "gzip" => {
            flate2::read::GzDecoder::new(body)
                .read_to_end(&mut out)
                .unwrap();
        }
        "deflate" => {
            flate2::read::ZlibDecoder::new(body)
                .read_to_end(&mut out)
                .unwrap();
        }
        "br" => {
            brotli_decompressor::Decompressor::new(body, 4096)
                .read_to_end(&mut out)
                .unwrap();
        }
        "zstd" => {
            ruzstd::decoding::StreamingDecoder::new(body)
                .unwrap()
                .read_to_end(&mut out)
                .unwrap();
        }
        other => panic!("{other}"),
    }
    out
}

#[test]
fn compressed_bodies_decode_to_their_json() {
    let t = loopback("");
    for coding in ["gzip", "deflate", "br", "zstd"] {
        // Whatever the client accepts, as httpbin's /gzip.
        let r = get(
            &t,
            &format!("/compressed/{coding}"),
            &[("Accept-Encoding", "identity")],
        );
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.header("content-encoding"), Some(coding));
        assert_eq!(r.header("content-type"), Some("application/json"));
        let plain = decode(coding, &r.body);
        assert!(
            r.body.len() * 2 < plain.len(),
            "{coding}: {} of {}",
            r.body.len(),
            plain.len()
        );
        let j: Value = serde_json::from_slice(&plain).unwrap();
        assert_eq!(
            (j["compressed"].clone(), j["encoding"].clone()),
            (json!(true), json!(coding))
        );
        assert!(j["data"].as_str().unwrap().len() > 2000);
    }
    assert_eq!(get(&t, "/compressed/lz4", &[]).status, 404);
    // Negotiated: the client's first served coding it does not refuse.
    for (accept, coding) in [
        ("br;q=0, zstd, gzip", Some("zstd")),
        ("deflate, gzip", Some("deflate")),
        ("x-gzip", Some("gzip")),
        ("GZIP;q=0.5", Some("gzip")),
        ("gzip;q=0", None),
        ("identity", None),
        ("", None),
    ] {
        let headers: &[(&str, &str)] = if accept.is_empty() {
            &[]
        } else {
            &[("Accept-Encoding", accept)]
        };
        let r = get(&t, "/compressed", headers);
        assert_eq!(r.status, 200);
        assert_eq!(r.header("vary"), Some("Accept-Encoding"), "{accept}");
        assert_eq!(r.header("content-encoding"), coding, "{accept}");
        let plain = match coding {
            Some(c) => decode(c, &r.body),
            None => r.body.clone(),
        };
        let j: Value = serde_json::from_slice(&plain).unwrap();
        assert_eq!(j["encoding"], coding.unwrap_or("identity"), "{accept}");
        assert_eq!(j["compressed"], coding.is_some());
    }
}

#[test]
fn the_rate_limit_refuses_a_users_11th_query_in_a_minute() {
    let t = loopback(
        "[rate_limit]\n\"/api/agent/*\" = { per_user = 10, per = \"1m\", method = \"POST\" }\n\
         [[route]]\nmethod = \"POST\"\npath = \"/api/agent/query\"\n",
    );
    let (alice, _) = login(&t, "alice");
    let (bob, _) = login(&t, "bob");
    let alice = format!("Bearer {alice}");
    let as_alice = [("Authorization", alice.as_str())];
    let first = Instant::now();
    // Jobs and queries share the window: 5 of each.
    let mut job = String::new();
    for i in 0..10 {
        let r = if i % 2 == 0 {
            post(&t, "/api/agent/query", &as_alice, json!({"query": "q"}))
        } else {
            post(&t, "/api/agent/jobs", &as_alice, json!({"query": "q"}))
        };
        assert!(matches!(r.status, 200 | 202), "request {i}: {r:?}");
        if r.status == 202 {
            job = r.json()["job_id"].as_str().unwrap().to_string();
        }
    }
    let r = post(&t, "/api/agent/jobs", &as_alice, json!({"query": "q"}));
    if first.elapsed() < Duration::from_secs(60) {
        assert_eq!(r.status, 429, "{r:?}");
        let secs: u64 = r.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=60).contains(&secs), "{secs}");
        assert_eq!(r.json()["error"], "rate limit exceeded");
        assert_eq!(r.json()["retry_after_s"], secs);
    }
    // Polling is a GET: not limited. Bob has a window of his own.
    assert_eq!(
        get(&t, &format!("/api/agent/jobs/{job}"), &as_alice).status,
        200
    );
    let r = post(
        &t,
        "/api/agent/jobs",
        &[("Authorization", &format!("Bearer {bob}"))],
        json!({"query": "q"}),
    );
    assert_eq!(r.status, 202, "{r:?}");
    // Without a token the client's address is the user.
    let anonymous = Instant::now();
    let statuses: Vec<u16> = (0..11)
        .map(|_| post(&t, "/api/agent/query", &[], json!({"query": "q"})).status)
        .collect();
    if anonymous.elapsed() < Duration::from_secs(60) {
        assert_eq!(statuses[..10], [200; 10]);
        assert_eq!(statuses[10], 429);
    }
}

/// Sends `req` over HTTP/2 and reads the whole answer (20 s at most).
async fn send_h2(
    h2: &mut hyper::client::conn::http2::SendRequest<http_body_util::Full<bytes::Bytes>>,
    req: hyper::Request<http_body_util::Full<bytes::Bytes>>,
) -> (hyper::http::response::Parts, bytes::Bytes) {
    use http_body_util::BodyExt;
    let read = async {
        let resp = h2.send_request(req).await.unwrap();
        let (parts, body) = resp.into_parts();
        (parts, body.collect().await.unwrap().to_bytes())
    };
    let (parts, body) = tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .unwrap();
    assert_eq!(parts.version, hyper::Version::HTTP_2);
    (parts, body)
}

/// Every route above is served over HTTP/2 too (prior knowledge, as `h2c`).
#[tokio::test]
async fn the_journey_routes_answer_over_http2() {
    use http_body_util::Full;
    use hyper::Request;

    let t = loopback("[auth]\nprotect = [\"/api/me\"]\n");
    let tcp = tokio::net::TcpStream::connect(t.addr()).await.unwrap();
    let (mut h2, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tcp),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let uri = |p: &str| format!("http://{}{p}", t.addr());
    let (parts, body) = send_h2(
        &mut h2,
        Request::post(uri("/api/auth/login"))
            .body(Full::from(r#"{"username":"dave","password":"demo"}"#))
            .unwrap(),
    )
    .await;
    assert_eq!(parts.status, 200);
    let token = serde_json::from_slice::<Value>(&body).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let (parts, _) = send_h2(
        &mut h2,
        Request::get(uri("/api/me")).body(Full::default()).unwrap(),
    )
    .await;
    assert_eq!(parts.status, 401);
    let (parts, body) = send_h2(
        &mut h2,
        Request::get(uri("/api/me"))
            .header("authorization", format!("Bearer {token}"))
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(parts.status, 200);
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap(),
        json!({"user": "dave"})
    );
    let (_, body) = send_h2(
        &mut h2,
        Request::get(uri("/cookies"))
            .header("cookie", "a=1")
            .header("cookie", "b=2")
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap(),
        json!({"cookies": {"a": "1", "b": "2"}})
    );
    let (parts, body) = send_h2(
        &mut h2,
        Request::get(uri("/compressed/br"))
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(parts.headers["content-encoding"], "br");
    let j: Value = serde_json::from_slice(&decode("br", &body)).unwrap();
    assert_eq!(j["encoding"], "br");
    let (parts, _) = send_h2(
        &mut h2,
        Request::get(uri("/redirect/2?status=307"))
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(
        (
            parts.status.as_u16(),
            parts.headers["location"].to_str().unwrap()
        ),
        (307, "/redirect/1?status=307")
    );
    let (_, body) = send_h2(
        &mut h2,
        Request::get(uri("/get")).body(Full::default()).unwrap(),
    )
    .await;
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap()["headers"]["host"],
        t.addr().to_string()
    );
}
