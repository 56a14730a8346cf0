//! Issue 22: `[auth]`. A token fetched by a login of its own, carried by every request
//! that does not say `auth = false`, fetched again before its JWT expires (against the
//! embedded target's 2-second tokens: no 401 in the run) and after a 401 (against a
//! server that revokes tokens), never sent again silently, never shown; a broken login
//! FAILs the run (not INVALID); the token fetches are a row of their own, left out of
//! the load's figures, and merge across segments.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use common::*;

/// The embedded target with tokens that live 2 s, and a protected `/api/me`.
const PROFILE: &str = r#"
[auth]
password = "pw-secret-42"
token_ttl = "2s"
protect = ["/api/me"]
[[route]]
path = "/"
response = '{"status":"ok"}'
"#;

fn case(scenario: &str) -> Case {
    Case::with_profile(scenario, PROFILE)
}

/// `[auth]` against the embedded target's login (password from `$PW`), `extra` in the
/// table, then `rest` (endpoints, flows, load, slo).
fn embedded(extra: &str, rest: &str) -> String {
    format!(
        r#"name = "auth"
target = "embedded"
target_profile = "profile.toml"
[auth]
path = "/api/auth/login"
json = {{ username = "ana", password = "${{PW}}" }}
token = "$.token"
{extra}
{rest}
"#
    )
}

/// Every file of run folder `dir`, as text.
fn outputs(dir: &std::path::Path) -> Vec<(std::path::PathBuf, String)> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|f| {
            let path = f.unwrap().path();
            let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
            (path, text)
        })
        .collect()
}

/// No file of the run holds the password or a JWT the target issued (each begins with
/// its header, `{"alg":"HS256","typ":"JWT"}` in base64url: long enough that the base64
/// of the interval log cannot hold it by chance, as it can hold `eyJ`).
const JWT_HEADER: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

#[track_caller]
fn nothing_leaked(dir: &std::path::Path, out: &str) {
    for (path, text) in outputs(dir) {
        for secret in ["pw-secret-42", JWT_HEADER] {
            assert!(!text.contains(secret), "{secret} in {}", path.display());
        }
    }
    for secret in ["pw-secret-42", JWT_HEADER] {
        assert!(!out.contains(secret), "{secret} on the console");
    }
}

#[test]
fn a_token_that_expires_mid_run_is_fetched_again_before_it_does_and_no_request_is_refused() {
    let rest = r#"refresh_before = "1s"
[[endpoint]]
name = "me"
path = "/api/me"
weight = 3
[[endpoint]]
name = "open"
path = "/"
auth = false
weight = 1
[[flow]]
name = "visit"
weight = 1
[[flow.step]]
name = "me_again"
path = "/api/me"
checks = { json = [{ path = "$.user", equals = "ana" }] }
[load]
model = "open"
stages = [{ duration = "7s", target_rps = 20 }]
max_late_ratio = 0.5
[slo]
budgets = ["error_rate < 0.01%"]
"#;
    let c = case(&embedded("", rest));
    let o = c.loadgate(&["run", "{s}", "--out", "{out}"], &[("PW", "pw-secret-42")]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let s = c.summary();
    assert_eq!(s["verdict"], "pass", "{s}");
    for name in ["me", "me_again", "open", "visit"] {
        let r = row(&s, name);
        assert!(outcome(r, "success") > 0, "{r}");
        assert_eq!(r["errors"], 0, "{name}: {r}");
    }
    // Tokens live 2 to 3 s (their exp is a whole second): refreshed a second ahead,
    // at least 3 fetches in 7 s, each a request of the auth row; none refused.
    let auth = row(&s, "auth");
    assert_eq!(auth["errors"], 0, "{auth}");
    assert!(auth["requests"].as_u64().unwrap() >= 3, "{auth}");
    assert_eq!(s["auth"], serde_json::json!(["auth"]), "{s}");
    // The load's figures leave the fetches out.
    let load: u64 = ["me", "me_again", "open"]
        .iter()
        .map(|n| row(&s, n)["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(s["overall"]["requests"], load, "{}", s["overall"]);
    let report = std::fs::read_to_string(c.out().join("report.html")).unwrap();
    assert!(
        report.contains("<span class=\"kind\">auth</span>") && report.contains("token fetches"),
        "the report marks the auth row and says what it is"
    );
    nothing_leaked(&c.out(), &text(&o));
}

#[test]
fn a_login_that_fails_fails_the_run_with_every_request_counted_and_the_login_not_hammered() {
    let rest = r#"[[endpoint]]
name = "me"
path = "/api/me"
[load]
model = "open"
stages = [{ duration = "3s", target_rps = 30 }]
max_late_ratio = 0.5
[slo]
budgets = ["error_rate < 1%"]
"#;
    let c = case(&embedded("", rest));
    let o = c.loadgate(
        &["run", "{s}", "--out", "{out}"],
        &[("PW", "wrong-password")],
    );
    assert_eq!(code(&o), 1, "FAIL, not INVALID: {}", text(&o));
    let s = c.summary();
    assert_eq!(s["verdict"], "fail", "{s}");
    let me = row(&s, "me");
    // Every arrival is counted (the rate achieved holds), each failed for want of a token.
    assert_eq!(outcome(me, "auth_failed"), 90, "{me}");
    assert_eq!(s["rate"]["sent"], 90, "{}", s["rate"]);
    let explained = me["failures"].to_string();
    assert!(explained.contains("no token"), "{explained}");
    let auth = row(&s, "auth");
    assert_eq!(
        outcome(auth, "http_4xx"),
        auth["requests"].as_u64().unwrap(),
        "{auth}"
    );
    // One login at a time, none sooner than a second after the last failed.
    assert!(auth["requests"].as_u64().unwrap() <= 5, "{auth}");
    assert!(auth["failures"].to_string().contains("401"), "{auth}");
    nothing_leaked(&c.out(), &text(&o));
}

#[test]
fn each_virtual_user_logs_in_once_with_scope_vu() {
    let rest = r#"scope = "vu"
[[endpoint]]
name = "me"
path = "/api/me"
[load]
model = "closed"
stages = [{ duration = "2s", vus = 3 }]
think_time = "50ms"
"#;
    let c = case(&embedded("", rest));
    // Tokens of 10 s. A 2 s token (`exp` rounded up to a whole second, `iat` down: a
    // lifetime of 3 s) is refreshed a tenth of that before `exp`, 1.7 to 2.7 s after
    // its login: within a 2 s run now and then (6 logins, not 3, seen once in three
    // runs). A 10 s token is refreshed after 8 s at the soonest.
    let profile = PROFILE.replace("token_ttl = \"2s\"", "token_ttl = \"10s\"");
    c.profile(&profile);
    let o = c.loadgate(&["run", "{s}", "--out", "{out}"], &[("PW", "pw-secret-42")]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let s = c.summary();
    let auth = row(&s, "auth");
    // One login per VU.
    assert_eq!(auth["requests"], 3, "{auth}");
    assert_eq!(row(&s, "me")["errors"], 0, "{}", row(&s, "me"));
    nothing_leaked(&c.out(), &text(&o));
}

/// A server whose tokens are opaque (`tok-N`, no expiry) and revoked after 5 uses:
/// `POST /login` answers `{"token":"tok-N"}` (400 if it carries an Authorization
/// header), `POST /notoken` a 200 without one, `POST /hang` nothing; `GET /data` answers 200 for the current token's first 5 uses, 401 for any
/// other; `GET /public` answers 400 if an Authorization header came. Records every
/// Authorization value it saw for `/data`.
struct Revoking {
    url: String,
    logins: Arc<AtomicU64>,
    seen: Arc<Mutex<Vec<String>>>,
}

fn revoking() -> Revoking {
    let logins = Arc::new(AtomicU64::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let uses = Mutex::new((String::new(), 0u32));
    let (l, sn) = (logins.clone(), seen.clone());
    let url = http_server(move |asked| {
        let auth = asked.header("authorization");
        // A login: the token it issues becomes the current one, unused.
        let login = || {
            let n = l.fetch_add(1, Ordering::SeqCst);
            *uses.lock().unwrap() = (format!("Bearer tok-{n}"), 0);
            format!("{{\"token\":\"tok-{n}\"}}")
        };
        let (status, body) = if asked.is("POST", "/slow-login") {
            std::thread::sleep(std::time::Duration::from_millis(400));
            (200, login())
        } else if asked.is("POST", "/hang") {
            // Never answers (within the login's timeout); bounded.
            std::thread::sleep(std::time::Duration::from_secs(4));
            return None;
        } else if asked.is("POST", "/notoken") {
            (200, "{\"access\":\"tok-elsewhere\"}".to_string())
        } else if asked.is("POST", "/login") {
            match auth {
                Some(_) => (400, "{}".to_string()),
                None => (200, login()),
            }
        } else if asked.is("GET", "/data") {
            let auth = auth.unwrap_or_default().to_string();
            sn.lock().unwrap().push(auth.clone());
            let mut u = uses.lock().unwrap();
            if u.0 == auth && u.1 < 5 {
                u.1 += 1;
                (200, "{}".to_string())
            } else {
                (401, format!("{{\"error\":\"revoked {auth}\"}}"))
            }
        } else if asked.is("GET", "/tell") {
            // Tells anyone the current token, asked with it or not.
            let current = uses.lock().unwrap().0.clone();
            match current.is_empty() {
                true => (200, "{}".to_string()),
                false => (403, format!("{{\"current\":\"{current}\"}}")),
            }
        } else if asked.is("GET", "/public") {
            (if auth.is_some() { 400 } else { 200 }, "{}".to_string())
        } else {
            (404, "{}".to_string())
        };
        Some(http_reply(
            status,
            "content-type: application/json\r\n",
            &body,
        ))
    });
    Revoking { url, logins, seen }
}

#[test]
fn a_401_drops_the_token_so_the_next_requests_carry_a_new_one_and_nothing_is_sent_again() {
    let server = revoking();
    let scenario = r#"name = "revoked"
target = "http://127.0.0.1:9"
[auth]
name = "login"
path = "/login"
json = { user = "ana" }
token = "$.token"
[[endpoint]]
name = "data"
path = "/data"
weight = 4
[[endpoint]]
name = "public"
path = "/public"
auth = false
weight = 1
[load]
model = "closed"
stages = [{ duration = "2s", vus = 1 }]
think_time = "20ms"
"#;
    let c = Case::new(scenario);
    let o = run_against(&c, &server.url);
    let s = c.summary();
    let data = row(&s, "data");
    let seen = server.seen.lock().unwrap().clone();
    // Every request the server saw is one counted: a 401 is never sent again.
    assert_eq!(data["requests"], seen.len() as u64, "{data}");
    assert_eq!(
        outcome(data, "http_4xx") + outcome(data, "success"),
        seen.len() as u64
    );
    // Revoked after 5 uses: a 401 each time, and then a new login and a new token.
    let logins = server.logins.load(Ordering::SeqCst);
    assert!(outcome(data, "http_4xx") >= 1, "{data}");
    assert_eq!(row(&s, "login")["requests"], logins, "{s}");
    assert!(logins >= 2, "{logins} logins");
    let tokens: std::collections::BTreeSet<&String> = seen.iter().collect();
    assert!(tokens.len() >= 2, "{tokens:?}");
    assert!(
        seen.iter().all(|a| a.starts_with("Bearer tok-")),
        "{seen:?}"
    );
    // `auth = false` sends none; the login itself carries none (400 otherwise).
    assert_eq!(row(&s, "public")["errors"], 0, "{}", row(&s, "public"));
    assert_eq!(row(&s, "login")["errors"], 0, "{}", row(&s, "login"));
    // The 401 echoes the token: masked where it is explained.
    let explained = data["failures"].to_string();
    assert!(explained.contains("401"), "{explained}");
    assert!(!explained.contains("tok-"), "{explained}");
    assert_ne!(
        code(&o),
        3,
        "a 401 is the target's, never INVALID: {}",
        text(&o)
    );
}

#[test]
fn segments_split_the_load_and_the_merge_keeps_the_auth_row_apart() {
    let rest = r#"[[endpoint]]
name = "me"
path = "/api/me"
[load]
model = "open"
stages = [{ duration = "2s", target_rps = 10 }]
max_late_ratio = 0.5
"#;
    let c = case(&embedded("", rest));
    let dir = c.dir.path();
    let outputs = run_segments(dir, 2, &[], &[("PW", "pw-secret-42")]);
    for (i, o) in outputs.iter().enumerate() {
        assert_eq!(code(o), 0, "segment {}/2: {}", i + 1, text(o));
    }
    let m = merge(dir, &["seg1", "seg2"], "merged", &["--no-report"]);
    assert_eq!(code(&m), 0, "{}", text(&m));
    let s = summary_in(dir, "merged");
    assert_eq!(row(&s, "me")["requests"], 20, "{s}");
    assert_eq!(s["overall"]["requests"], 20, "{}", s["overall"]);
    // One login per segment process.
    assert_eq!(row(&s, "auth")["requests"], 2, "{s}");
    assert_eq!(s["rate"]["sent"], 20, "{}", s["rate"]);
}

#[test]
fn validate_refuses_what_auth_cannot_do_with_where_and_how() {
    let cases = [
        (
            "scope = \"vu\"\n[[endpoint]]\nname = \"me\"\npath = \"/api/me\"\n[load]\nmodel = \"open\"\nstages = [{ duration = \"2s\", target_rps = 5 }]\n",
            "scope = \"vu\" needs virtual users",
        ),
        (
            "[[endpoint]]\nname = \"me\"\npath = \"/api/me\"\nheaders = { Authorization = \"Bearer x\" }\n",
            "carries [auth]'s token, and this request sets its own",
        ),
        (
            "scope = \"team\"\n[[endpoint]]\nname = \"me\"\npath = \"/api/me\"\n",
            "scope `team` is not one [auth] knows",
        ),
        (
            "name = \"me\"\n[[endpoint]]\nname = \"me\"\npath = \"/api/me\"\n",
            "is used twice",
        ),
        // Regression: accepted, then every request carried a second Host (or
        // Content-Length) that the target refused.
        (
            "header = \"Host\"\n[[endpoint]]\nname = \"me\"\npath = \"/api/me\"\n",
            "`Host` frames the request",
        ),
        (
            "header = \"content-length\"\n[[endpoint]]\nname = \"me\"\npath = \"/api/me\"\n",
            "`content-length` frames the request",
        ),
    ];
    for (extra, expected) in cases {
        let c = case(&embedded(extra, ""));
        let o = c.loadgate(&["validate", "{s}"], &[("PW", "pw")]);
        let out = text(&o);
        assert_eq!(code(&o), 2, "{out}");
        assert!(out.contains(expected), "{expected}: {out}");
        assert!(out.contains("s.toml:"), "file:line:col: {out}");
    }
    // No [auth] to carry: `auth = true` is refused; a missing token too.
    let c = Case::new(
        "name = \"x\"\ntarget = \"embedded\"\n[[endpoint]]\nname = \"me\"\npath = \"/\"\nauth = true\n",
    );
    let o = c.loadgate(&["validate", "{s}"], &[]);
    assert!(text(&o).contains("has no [auth]"), "{}", text(&o));
    let c = Case::new(
        "name = \"x\"\ntarget = \"embedded\"\n[auth]\npath = \"/login\"\n[[endpoint]]\nname = \"me\"\npath = \"/\"\n",
    );
    let o = c.loadgate(&["validate", "{s}"], &[]);
    assert!(text(&o).contains("needs `token`"), "{}", text(&o));
}

#[test]
fn a_login_that_hangs_or_answers_without_a_token_fails_the_run_and_never_makes_it_invalid() {
    let server = revoking();
    for (login, outcome_of_login, why) in [
        ("/hang", "timeout", "timeout"),
        ("/notoken", "capture_failed", "json $.token found nothing"),
    ] {
        let scenario = format!(
            r#"name = "broken"
target = "http://127.0.0.1:9"
[auth]
path = "{login}"
timeout = "1s"
token = "$.token"
[[endpoint]]
name = "data"
path = "/data"
[load]
model = "open"
stages = [{{ duration = "3s", target_rps = 20 }}]
max_late_ratio = 0.5
"#
        );
        let c = Case::new(&scenario);
        let o = c.loadgate(
            &["run", "{s}", "--out", "{out}", "--target", &server.url],
            &[],
        );
        assert_eq!(code(&o), 1, "{login}: FAIL, never INVALID: {}", text(&o));
        let s = c.summary();
        assert_eq!(s["verdict"], "fail", "{login}: {s}");
        let data = row(&s, "data");
        assert_eq!(outcome(data, "auth_failed"), 60, "{login}: {data}");
        assert_eq!(s["rate"]["sent"], 60, "{login}: {}", s["rate"]);
        let auth = row(&s, "auth");
        assert!(outcome(auth, outcome_of_login) >= 1, "{login}: {auth}");
        assert!(
            auth["failures"].to_string().contains(why),
            "{login}: {auth}"
        );
    }
    let c = Case::new(
        "name = \"x\"\ntarget = \"embedded\"\n[auth]\npath = \"/login\"\ntoken = \"$.token\"\nscope = \"vu\"\n[[endpoint]]\nname = \"me\"\npath = \"/\"\n",
    );
    // A VU's token cannot be held by arrivals: --rps (open) is refused before any load.
    let o = c.loadgate(
        &[
            "run",
            "{s}",
            "--rps",
            "5",
            "--duration",
            "1s",
            "--out",
            "{out}",
        ],
        &[],
    );
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(text(&o).contains("--vus"), "{}", text(&o));
    assert_never_started(&c);
}

/// A server that answers each request with what `answer` makes of its line and its
/// Authorization header: a status, a body, and how long to wait before answering
/// (bounded by the caller). Returns its URL.
fn scripted(
    answer: impl Fn(&str, Option<&str>) -> (u16, String, std::time::Duration) + Send + Sync + 'static,
) -> String {
    http_server(move |asked| {
        let (status, body, wait) = answer(&asked.line, asked.header("authorization"));
        std::thread::sleep(wait);
        Some(http_reply(
            status,
            "content-type: application/json\r\n",
            &body,
        ))
    })
}

/// Regression: a request that waited for a slow login had its service time counted
/// from when the token came, so a latency breach the login caused held on service time
/// and the judge blamed the generator: INVALID (exit 3) for a target whose login took
/// 2 s. The wait is the target's: the breach holds on service time too, FAIL.
#[test]
fn a_slow_login_is_the_targets_time_and_the_breach_it_causes_fails_the_run_never_invalid() {
    let logins = Arc::new(AtomicU64::new(0));
    let l = logins.clone();
    let url = scripted(move |line, _| {
        let none = std::time::Duration::ZERO;
        if line.starts_with("POST /login ") {
            // The first login takes 2 s; any later one answers at once.
            let n = l.fetch_add(1, Ordering::SeqCst);
            let wait = std::time::Duration::from_secs(if n == 0 { 2 } else { 0 });
            (200, "{\"token\":\"tok-slow-login\"}".into(), wait)
        } else {
            (200, "{}".into(), none)
        }
    });
    let scenario = r#"name = "slow-login"
target = "http://127.0.0.1:9"
[auth]
path = "/login"
token = "$.token"
[[endpoint]]
name = "data"
path = "/data"
[load]
model = "open"
stages = [{ duration = "4s", target_rps = 40 }]
max_late_ratio = 0.5
[slo]
budgets = ["p95 < 500ms"]
"#;
    let c = Case::new(scenario);
    let o = c.loadgate(&["run", "{s}", "--out", "{out}", "--target", &url], &[]);
    let s = c.summary();
    assert_eq!(code(&o), 1, "FAIL, the target's login: {}", text(&o));
    assert_eq!(s["verdict"], "fail", "{}", s["invalid_reasons"]);
    let data = row(&s, "data");
    assert_eq!(data["requests"], 160, "{data}");
    assert_eq!(data["errors"], 0, "{data}");
    // The first 2 s of arrivals waited for the token: inside latency and service time.
    let service_p95 = data["service_us"]["p95"].as_u64().unwrap();
    assert!(service_p95 >= 500_000, "{}", data["service_us"]);
    // And no send lag of the generator's: the wait is not the generator's.
    assert_eq!(s["rate"]["dropped"], 0, "{}", s["rate"]);
    assert_eq!(logins.load(Ordering::SeqCst), 1);
}

/// Regression: a target that refuses every token (a 401 storm) made a login of about
/// every third request (51 logins for 150 requests at 50 rps): the login hammered at
/// the load's rate. A token refused within a second of its fetch is used until then
/// and fetched again once; every request is still sent and counted as the 401 it is.
#[test]
fn a_401_storm_makes_at_most_a_login_a_second_and_every_request_is_the_401_it_got() {
    let logins = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let (l, r) = (logins.clone(), refused.clone());
    let url = scripted(move |line, auth| {
        let none = std::time::Duration::ZERO;
        if line.starts_with("POST /login ") {
            let n = l.fetch_add(1, Ordering::SeqCst);
            (200, format!("{{\"token\":\"tok-storm-{n}\"}}"), none)
        } else {
            r.fetch_add(1, Ordering::SeqCst);
            let body = format!("{{\"error\":\"refused {}\"}}", auth.unwrap_or_default());
            (401, body, none)
        }
    });
    for load in [
        "model = \"open\"\nstages = [{ duration = \"3s\", target_rps = 50 }]\nmax_late_ratio = 0.5",
        "model = \"closed\"\nstages = [{ duration = \"3s\", vus = 4 }]\nthink_time = \"5ms\"",
    ] {
        logins.store(0, Ordering::SeqCst);
        refused.store(0, Ordering::SeqCst);
        let scenario = format!(
            "name = \"storm\"\ntarget = \"http://127.0.0.1:9\"\n[auth]\npath = \"/login\"\ntoken = \"$.token\"\n[[endpoint]]\nname = \"data\"\npath = \"/data\"\n[load]\n{load}\n"
        );
        let c = Case::new(&scenario);
        let o = c.loadgate(&["run", "{s}", "--out", "{out}", "--target", &url], &[]);
        assert_eq!(code(&o), 1, "{load}: {}", text(&o));
        let s = c.summary();
        let data = row(&s, "data");
        let n = logins.load(Ordering::SeqCst);
        // One at the start, then at most one a second (3 s, and the drain).
        assert!(
            n <= 5,
            "{load}: {n} logins for {} requests",
            data["requests"]
        );
        assert_eq!(row(&s, "auth")["requests"], n, "{load}");
        let sent = refused.load(Ordering::SeqCst);
        assert!(sent >= 20, "{load}: {sent}");
        assert_eq!(outcome(data, "http_4xx"), sent, "{load}: {data}");
        assert_eq!(data["requests"], sent, "{load}: {data}");
        let explained = data["failures"].to_string();
        assert!(!explained.contains("tok-storm"), "{explained}");
    }
}

/// Regression: a stop while requests waited for a login that never came in the grace
/// period counted them as `auth_failed` (a failure of the target's login, "its row says
/// why" with nothing in the row), beside counting them abandoned. They are abandoned
/// only: the run ends within the grace period and writes what it measured.
#[test]
fn a_stop_while_requests_wait_for_a_hanging_login_abandons_them_and_blames_no_login() {
    let url = scripted(|line, _| {
        let none = std::time::Duration::ZERO;
        if line.starts_with("POST /login ") {
            // Longer than the run waits after the stop; bounded.
            (
                200,
                "{\"token\":\"tok-late\"}".into(),
                std::time::Duration::from_secs(8),
            )
        } else {
            (200, "{}".into(), none)
        }
    });
    let scenario = r#"name = "stopped"
target = "http://127.0.0.1:9"
[auth]
path = "/login"
token = "$.token"
timeout = "30s"
[[endpoint]]
name = "data"
path = "/data"
[load]
model = "open"
stages = [{ duration = "20s", target_rps = 40 }]
max_late_ratio = 0.5
"#;
    let c = Case::new(scenario);
    let (_serial, child) = start_run(&c, &["--target", &url, "--grace", "1s"], 1500);
    sigint(&child);
    let (o, took) = wait_bounded(child, std::time::Duration::from_secs(20));
    assert!(took < std::time::Duration::from_secs(6), "{took:?}");
    assert_eq!(code(&o), 130, "{}", text(&o));
    let s = c.summary();
    let data = row(&s, "data");
    assert_eq!(outcome(data, "auth_failed"), 0, "{data}");
    assert!(s["abandoned"].as_u64().unwrap() >= 40, "{}", s["abandoned"]);
}

/// A closed-model VU's first request waits for a login that takes 400 ms: the wait is
/// in its latency and service time (a lower bound, the server's own delay), as it is
/// for a flow's step and an open-model arrival.
#[test]
fn a_virtual_users_wait_for_its_token_is_in_its_requests_time() {
    let server = revoking();
    let scenario = r#"name = "slow"
target = "http://127.0.0.1:9"
[auth]
path = "/slow-login"
token = "$.token"
[[endpoint]]
name = "data"
path = "/data"
[load]
model = "closed"
stages = [{ duration = "1s", vus = 1 }]
think_time = "3s"
"#;
    let c = Case::new(scenario);
    let o = run_against(&c, &server.url);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let s = c.summary();
    let data = row(&s, "data");
    assert_eq!(data["requests"], 1, "{data}");
    assert!(
        data["latency_us"]["max"].as_u64().unwrap() >= 400_000,
        "{data}"
    );
    assert!(
        data["service_us"]["max"].as_u64().unwrap() >= 400_000,
        "{data}"
    );
}

/// A target that shows the run's token (once there is one) to a request that did not
/// carry it (`auth = false`): masked there too.
#[test]
fn a_token_shown_to_a_request_that_did_not_carry_it_is_masked_too() {
    let server = revoking();
    let scenario = r#"name = "tell"
target = "http://127.0.0.1:9"
[auth]
path = "/login"
token = "$.token"
[[endpoint]]
name = "data"
path = "/data"
[[endpoint]]
name = "tell"
path = "/tell"
auth = false
[load]
model = "closed"
stages = [{ duration = "1s", vus = 1 }]
think_time = "50ms"
"#;
    let c = Case::new(scenario);
    let o = c.loadgate(
        &["run", "{s}", "--out", "{out}", "--target", &server.url],
        &[],
    );
    let s = c.summary();
    let tell = row(&s, "tell");
    assert!(outcome(tell, "http_4xx") > 0, "{}", text(&o));
    let explained = tell["failures"].to_string();
    assert!(explained.contains("current"), "{explained}");
    assert!(!explained.contains("tok-"), "{explained}");
    for (path, text) in outputs(&c.out()) {
        assert!(!text.contains("Bearer tok-"), "{}", path.display());
    }
    assert!(!text(&o).contains("Bearer tok-"));
}
