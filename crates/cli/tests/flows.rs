//! Issue 22: flows. A journey whose steps reuse what earlier steps captured (a login's
//! token in a header and a path, an id from JSON, a header's value), against a real
//! server on 127.0.0.1 that refuses a step sent without the right value; each step a
//! row of its own, the flow a row counted apart from the requests; a capture that finds
//! nothing fails its step with its own outcome and ends the iteration; budgets on a
//! flow; segments that partition flows exactly.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use common::*;

/// A server for journeys: `POST /login` answers `{"token":"tok-N"}` and header
/// `x-session: s-N`; `GET /items/tok-N` with `authorization: Bearer tok-N` and
/// `x-session: s-N` answers `{"id":7}` (401 otherwise); `GET /done/7` answers 200 (400
/// for another id); `GET /empty` answers `{}`. Counts every request. Each connection is
/// served by a thread of its own until the client closes it.
struct Journeys {
    url: String,
    requests: Arc<AtomicU64>,
}

fn journeys() -> Journeys {
    let requests = Arc::new(AtomicU64::new(0));
    let count = requests.clone();
    let logins = AtomicU64::new(0);
    let url = http_server(move |asked| {
        count.fetch_add(1, Ordering::Relaxed);
        let header = |n: &str| asked.header(n).unwrap_or("");
        let path = asked.path();
        let (status, extra, body) = if asked.is("POST", "/login") {
            let n = logins.fetch_add(1, Ordering::Relaxed);
            (
                200,
                format!("x-session: s-{n}\r\n"),
                format!("{{\"token\":\"tok-{n}\"}}"),
            )
        } else if let Some(tok) = path.strip_prefix("/items/") {
            let n = tok.strip_prefix("tok-").unwrap_or("?");
            let authorized = header("authorization") == format!("Bearer {tok}")
                && header("x-session") == format!("s-{n}");
            if authorized {
                (
                    200,
                    String::new(),
                    "{\"id\":7,\"tags\":[{\"x\":1},{\"k\":\"v\"}]}".into(),
                )
            } else {
                (401, String::new(), "{\"error\":\"who are you\"}".into())
            }
        } else if path == "/crlf-login" {
            (
                200,
                String::new(),
                "{\"token\":\"tok-1\\r\\nX-Evil: 1\"}".into(),
            )
        } else if path == "/leak" {
            let seen = header("authorization");
            (
                401,
                String::new(),
                format!("{{\"error\":\"bad token {seen}\"}}"),
            )
        } else if path == "/done/7" || path == "/empty" {
            (200, String::new(), "{}".into())
        } else {
            (400, String::new(), "{}".into())
        };
        let headers = format!("content-type: application/json\r\n{extra}");
        Some(http_reply(status, &headers, &body))
    });
    Journeys { url, requests }
}

/// A journey of three steps, `extra` after its `[[flow]]` steps, and `load`.
fn journey(load: &str, extra: &str) -> String {
    format!(
        r#"name = "journey"
target = "${{URL}}"
[[endpoint]]
name = "alone"
path = "/done/7"
weight = 0
[[flow]]
name = "shop"
[[flow.step]]
name = "login"
method = "POST"
path = "/login"
json = {{ user = "u-{{{{seq}}}}" }}
capture = {{ token = "$.token", session = {{ header = "x-session" }} }}
[[flow.step]]
name = "item"
path = "/items/{{{{token}}}}"
headers = {{ Authorization = "Bearer {{{{token}}}}", X-Session = "{{{{session}}}}" }}
capture = {{ id = "$.id", tag = "$.tags[*].k" }}
[[flow.step]]
endpoint = "alone"
{extra}
[load]
{load}
"#
    )
}

#[test]
fn a_journey_reuses_what_its_steps_captured_each_step_a_row_and_the_flow_apart() {
    let server = journeys();
    let c = Case::new(&journey(
        "model = \"open\"\nstages = [{ duration = \"2s\", target_rps = 10 }]\nmax_late_ratio = 0.5",
        "",
    ));
    let o = c.loadgate(&["run", "{s}", "--out", "{out}"], &[("URL", &server.url)]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let s = c.summary();
    assert_eq!(s["flows"], serde_json::json!(["shop"]), "{s}");
    let (login, item, alone, shop) = (
        row(&s, "login"),
        row(&s, "item"),
        row(&s, "shop_alone"),
        row(&s, "shop"),
    );
    // The [[endpoint]] the last step names has weight 0: no arrival of its own.
    assert_eq!(row(&s, "alone")["requests"], 0, "{s}");
    assert_eq!(
        s["steps"],
        serde_json::json!(["login", "item", "shop_alone"]),
        "{s}"
    );
    // One arrival per iteration: the rate counts 20 sends, not 60.
    assert_eq!(s["rate"]["sent"], 20, "{}", s["rate"]);
    let iterations = shop["requests"].as_u64().unwrap();
    assert_eq!(iterations, 20, "one iteration per arrival: {shop}");
    assert_eq!(outcome(shop, "success"), 20, "{shop}");
    // Every step succeeded: the server refused any step without the captured values.
    for step in [login, item, alone] {
        assert_eq!(outcome(step, "success"), 20, "{step}");
        assert_eq!(step["requests"].as_u64().unwrap(), 20, "{step}");
    }
    // The flow's row is not a request: the run's totals count the 60 requests only.
    assert_eq!(
        s["overall"]["requests"].as_u64().unwrap(),
        60,
        "{}",
        s["overall"]
    );
    assert_eq!(server.requests.load(Ordering::Relaxed), 60);
    // An iteration takes at least as long as its steps' latencies.
    let p50 = |e: &serde_json::Value| e["latency_us"]["p50"].as_f64().unwrap();
    assert!(p50(shop) >= p50(login) + p50(item), "{shop} {login} {item}");
}

#[test]
fn a_capture_that_finds_nothing_fails_its_step_and_ends_the_iteration() {
    let server = journeys();
    let scenario = journey(
        "model = \"open\"\nstages = [{ duration = \"1s\", target_rps = 10 }]\nmax_late_ratio = 0.5",
        "[[flow.step]]\nname = \"nothing\"\npath = \"/empty\"\ncapture = { job = \"$.job_id\" }\n[[flow.step]]\nname = \"never\"\npath = \"/done/{{job}}\"\n",
    );
    let c = Case::new(&scenario);
    let o = c.loadgate(&["run", "{s}", "--out", "{out}"], &[("URL", &server.url)]);
    // Half the requests sent failed: the implicit error budget breaks.
    assert_eq!(code(&o), 1, "{}", text(&o));
    let s = c.summary();
    let nothing = row(&s, "nothing");
    assert_eq!(outcome(nothing, "capture_failed"), 10, "{nothing}");
    let never = row(&s, "never");
    assert_eq!(never["sent"].as_u64().unwrap(), 0, "{never}");
    let shop = row(&s, "shop");
    assert_eq!(outcome(shop, "capture_failed"), 10, "{shop}");
    assert_eq!(outcome(shop, "success"), 0, "{shop}");
    assert!(text(&o).contains("capture_failed"), "{}", text(&o));
    // Explained: which capture found nothing.
    assert_eq!(
        nothing["failures"]["examples"][0]["what"], "capture `job`: json $.job_id found nothing",
        "{nothing}"
    );
}

#[test]
fn a_captured_token_the_target_echoes_in_a_failure_is_never_shown() {
    let server = journeys();
    let scenario = journey(
        "model = \"open\"\nstages = [{ duration = \"1s\", target_rps = 5 }]\nmax_late_ratio = 0.5",
        "[[flow.step]]\nname = \"leak\"\npath = \"/leak\"\nheaders = { Authorization = \"Bearer {{token}}\" }\n",
    );
    let c = Case::new(&scenario);
    let o = c.loadgate(&["run", "{s}", "--out", "{out}"], &[("URL", &server.url)]);
    assert_eq!(code(&o), 1, "{}", text(&o));
    let s = c.summary();
    let leak = row(&s, "leak");
    assert_eq!(outcome(leak, "http_4xx"), 5, "{leak}");
    let found = leak["failures"]["examples"][0]["found"]
        .as_str()
        .unwrap_or("");
    assert!(found.contains("bad token Bearer ${token}"), "{leak}");
    // No token reached any file or the console.
    assert!(!text(&o).contains("tok-"), "{}", text(&o));
    for f in std::fs::read_dir(c.out()).unwrap() {
        let path = f.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let content = String::from_utf8_lossy(&bytes);
        assert!(
            !content.contains("bad token Bearer tok-"),
            "{} shows a token",
            path.display()
        );
    }
}

#[test]
fn a_flow_budget_judges_the_iteration() {
    let server = journeys();
    let c = Case::new(&journey(
        "model = \"open\"\nstages = [{ duration = \"1s\", target_rps = 10 }]\nmax_late_ratio = 0.5",
        "[slo.flow.shop]\nbudgets = [\"throughput > 100rps\"]\n[slo.endpoint.login]\nbudgets = [\"error_rate < 1%\"]\n",
    ));
    let o = c.loadgate(&["run", "{s}", "--out", "{out}"], &[("URL", &server.url)]);
    assert_eq!(code(&o), 1, "{}", text(&o));
    let s = c.summary();
    let failed: Vec<&serde_json::Value> = s["slo"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["pass"] == false)
        .collect();
    assert_eq!(failed.len(), 1, "{}", s["slo"]);
    assert_eq!(failed[0]["scope"], "shop", "{}", s["slo"]);
}

#[test]
fn validate_refuses_what_a_flow_cannot_run() {
    let cases = [
        // A template naming a variable no earlier step captured.
        ("[[flow.step]]\nname = \"x\"\npath = \"/done/{{later}}\"\ncapture = { later = \"$.a\" }\n", "unknown placeholder `{{later}}`"),
        // A step naming an endpoint that does not exist.
        ("[[flow.step]]\nendpoint = \"nope\"\n", "step names endpoint `nope`"),
        // A step naming an endpoint may not also be written out.
        ("[[flow.step]]\nendpoint = \"alone\"\npath = \"/x\"\n", "cannot be set beside `endpoint`"),
        // Steps have no weight of their own.
        ("[[flow.step]]\nname = \"w\"\npath = \"/x\"\nweight = 3\n", "a step has no weight"),
        // A capture's path must parse.
        ("[[flow.step]]\nname = \"p\"\npath = \"/x\"\ncapture = { a = \"$.[\" }\n", "json path"),
        ("[[flow.step]]\nname = \"r\"\npath = \"/x\"\ncapture = { a = { regex = \"(\" } }\n", "capture regex does not compile"),
        ("[[flow.step]]\nname = \"login\"\npath = \"/x\"\n", "endpoint name `login` is used twice"),
        ("[slo.flow.nope]\nbudgets = [\"p95 < 1s\"]\n", "SLO for flow `nope`, which does not exist"),
    ];
    for (extra, expected) in cases {
        let c = Case::new(&journey(
            "model = \"open\"\nstages = [{ duration = \"1s\", target_rps = 1 }]",
            extra,
        ));
        let o = c.loadgate(&["validate", "{s}"], &[("URL", "http://127.0.0.1:9")]);
        assert_eq!(code(&o), 2, "{extra}: {}", text(&o));
        assert!(text(&o).contains(expected), "{extra}: {}", text(&o));
        assert!(text(&o).contains("s.toml:"), "{extra}: {}", text(&o));
    }
}

/// The embedded target behind a login, with jobs that take `job_time`.
fn job_profile(job_time: &str) -> String {
    format!(
        r#"[auth]
password = "demo"
token_ttl = "60s"
protect = ["/api/agent/*"]
[jobs]
time = "{job_time}"
[[route]]
path = "/api/health"
"#
    )
}

/// Log in, submit a job with the token, poll it until done (`until`), at 4 flows/s.
fn poll_journey(until: &str) -> String {
    format!(
        r#"name = "poll"
target = "embedded"
target_profile = "profile.toml"
[[flow]]
name = "ask"
[[flow.step]]
name = "login"
method = "POST"
path = "/api/auth/login"
json = {{ username = "user-{{{{seq}}}}", password = "demo" }}
capture = {{ token = "$.token" }}
[[flow.step]]
name = "submit"
method = "POST"
path = "/api/agent/jobs"
headers = {{ Authorization = "Bearer {{{{token}}}}" }}
json = {{ query = "Can I afford a vacation in June?" }}
checks = {{ status = [202] }}
capture = {{ job = "$.job_id" }}
[[flow.step]]
name = "result"
path = "/api/agent/jobs/{{{{job}}}}"
headers = {{ Authorization = "Bearer {{{{token}}}}" }}
until = {until}
capture = {{ answer = "$.answer" }}
[load]
model = "open"
stages = [{{ duration = "2s", target_rps = 4 }}]
max_late_ratio = 0.5
"#
    )
}

#[test]
fn a_poll_ends_when_the_job_is_done_timed_as_a_whole_and_per_attempt() {
    let c = Case::new(&poll_journey(
        r#"{ path = "$.status", equals = "done", every = "50ms", max = 100 }"#,
    ));
    c.profile(&job_profile("300ms"));
    let o = c.loadgate(&["run", "{s}", "--out", "{out}"], &[]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let s = c.summary();
    assert_eq!(
        s["flows"],
        serde_json::json!(["ask", "result_ready"]),
        "{s}"
    );
    let (ask, result, ready) = (row(&s, "ask"), row(&s, "result"), row(&s, "result_ready"));
    assert_eq!(outcome(ask, "success"), 8, "{ask}");
    assert_eq!(outcome(ready, "success"), 8, "{ready}");
    // Each attempt is a request of the step: the job is pending at least once first.
    assert!(outcome(result, "success") >= 16, "{result}");
    assert_eq!(result["errors"], 0, "{result}");
    // Ready no sooner than the job's 300 ms, which the target enforces.
    let min_ms = ready["latency_us"]["min"].as_f64().unwrap() / 1000.0;
    assert!(min_ms >= 300.0, "{ready}");
    // The requests count every attempt; the iterations and polls are apart from them.
    let steps: u64 = ["login", "submit", "result"]
        .iter()
        .map(|n| row(&s, n)["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(
        s["overall"]["requests"].as_u64().unwrap(),
        steps,
        "{}",
        s["overall"]
    );
}

#[test]
fn a_poll_that_exhausts_its_attempts_fails_the_run_and_says_why() {
    let c = Case::new(&poll_journey(
        r#"{ path = "$.status", equals = "done", every = "10ms", max = 2 }"#,
    ));
    c.profile(&job_profile("1h"));
    let o = c.loadgate(&["run", "{s}", "--out", "{out}"], &[]);
    assert_eq!(code(&o), 1, "{}", text(&o));
    let s = c.summary();
    let (ask, result, ready) = (row(&s, "ask"), row(&s, "result"), row(&s, "result_ready"));
    assert_eq!(outcome(ask, "poll_exhausted"), 8, "{ask}");
    assert_eq!(outcome(ready, "poll_exhausted"), 8, "{ready}");
    // Two attempts each: the first not ready (a success), the last exhausted.
    assert_eq!(outcome(result, "success"), 8, "{result}");
    assert_eq!(outcome(result, "poll_exhausted"), 8, "{result}");
    assert_eq!(
        result["failures"]["examples"][0]["what"],
        "until $.status equals \"done\": not met in 2 attempts",
        "{result}"
    );
}

#[test]
fn segments_split_flows_by_whole_iterations_and_merge_exactly() {
    let server = journeys();
    let c = Case::new(&journey(
        "model = \"open\"\nstages = [{ duration = \"2s\", target_rps = 10 }]\nmax_late_ratio = 0.5",
        "",
    ));
    let dir = c.dir.path();
    let outputs = run_segments(dir, 2, &["--target", &server.url], &[]);
    for (i, o) in outputs.iter().enumerate() {
        assert_eq!(code(o), 0, "segment {}/2: {}", i + 1, text(o));
        let s = summary_in(dir, &format!("seg{}", i + 1));
        // Half the iterations each, whole: every step of an iteration in one segment.
        assert_eq!(row(&s, "shop")["requests"], 10, "{s}");
        assert_eq!(row(&s, "login")["requests"], 10, "{s}");
        assert_eq!(row(&s, "shop_alone")["requests"], 10, "{s}");
        // Each segment sent its share of the arrivals: 10 iterations, not 30 requests.
        assert_eq!(s["rate"]["sent"], 10, "{}", s["rate"]);
    }
    let m = merge(dir, &["seg1", "seg2"], "merged", &["--no-report"]);
    assert_eq!(code(&m), 0, "{}", text(&m));
    let s = summary_in(dir, "merged");
    assert_eq!(s["flows"], serde_json::json!(["shop"]), "{s}");
    assert_eq!(row(&s, "shop")["requests"], 20, "{s}");
    assert_eq!(outcome(row(&s, "shop"), "success"), 20, "{s}");
    assert_eq!(s["overall"]["requests"], 60, "{}", s["overall"]);
    assert_eq!(s["rate"]["scheduled"], 20.0, "{}", s["rate"]);
    assert_eq!(s["rate"]["sent"], 20, "{}", s["rate"]);
    assert_eq!(s["verdict"], "pass");
}

/// Review: a flow's steps are not arrivals. Arrivals dropped at `max_in_flight` were
/// counted on the flow's row only, and every step's send counted as an arrival sent,
/// so a generator that sent a third of its iterations passed. It is INVALID.
#[test]
fn a_generator_that_drops_most_iterations_is_invalid_whatever_the_steps_sent() {
    let c = Case::new(
        r#"name = "drops"
target = "embedded"
target_profile = "profile.toml"
[[flow]]
name = "slowly"
[[flow.step]]
name = "a"
path = "/slow"
[[flow.step]]
name = "b"
path = "/slow"
[[flow.step]]
name = "c"
path = "/slow"
[load]
model = "open"
stages = [{ duration = "2s", target_rps = 20 }]
max_in_flight = 4
max_late_ratio = 0.5
"#,
    );
    let o = c.loadgate(&["run", "{s}", "--out", "{out}"], &[]);
    assert_eq!(code(&o), 3, "{}", text(&o));
    let s = c.summary();
    assert_eq!(s["verdict"], "invalid");
    let rate = &s["rate"];
    assert!(rate["dropped"].as_u64().unwrap() >= 20, "{rate}");
    assert!(rate["achieved_ratio"].as_f64().unwrap() < 0.95, "{rate}");
}

/// Review: a captured value a header cannot hold (a CR LF in a token) is what the
/// target answered: the step fails as its capture, the run FAILs (it was counted as a
/// request loadgate could not build, INVALID).
#[test]
fn a_captured_value_a_header_cannot_hold_fails_the_step_not_the_generator() {
    let server = journeys();
    let c = Case::new(
        r#"name = "crlf"
target = "${URL}"
[[flow]]
name = "f"
[[flow.step]]
name = "login"
path = "/crlf-login"
capture = { token = "$.token" }
[[flow.step]]
name = "use"
path = "/done/7"
headers = { Authorization = "Bearer {{token}}" }
[load]
model = "open"
stages = [{ duration = "1s", target_rps = 5 }]
max_late_ratio = 0.5
"#,
    );
    let o = c.loadgate(&["run", "{s}", "--out", "{out}"], &[("URL", &server.url)]);
    assert_eq!(code(&o), 1, "{}", text(&o));
    let s = c.summary();
    let used = row(&s, "use");
    assert_eq!(outcome(used, "capture_failed"), 5, "{used}");
    assert_eq!(used["unbuilt"], 0, "{used}");
    assert_eq!(outcome(row(&s, "f"), "capture_failed"), 5, "{s}");
    assert!(!text(&o).contains("X-Evil"), "{}", text(&o));
}

/// A budget on a row no arrival reaches (weight 0) could never be judged: `validate`
/// (and `run`, before any load) refuses it where it is written, for a flow as for an
/// endpoint, and says where the budget belongs.
#[test]
fn validate_refuses_a_budget_on_a_weightless_flow_or_endpoint() {
    let load = "model = \"open\"\nstages = [{ duration = \"2s\", target_rps = 10 }]";
    let idle_flow = journey(load, "[slo.flow.shop]\nbudgets = [\"throughput > 5rps\"]")
        .replace("name = \"shop\"\n", "name = \"shop\"\nweight = 0\n")
        .replace("weight = 0\n[[flow]]", "[[flow]]");
    let c = Case::new(&idle_flow);
    for cmd in [&["validate", "{s}"][..], &["run", "{s}", "--out", "{out}"]] {
        let o = c.loadgate(cmd, &[("URL", "http://127.0.0.1:9")]);
        assert_eq!(code(&o), 2, "{cmd:?}: {}", text(&o));
        let t = text(&o);
        assert!(
            t.contains("s.toml:23:13: flow `shop` has weight 0: no arrival starts it, so its budget `throughput > 5rps` can never be judged"),
            "{cmd:?}: {t}"
        );
        assert!(t.contains("hint: give flow `shop` a weight"), "{t}");
        assert_never_started(&c);
    }
    // The weightless endpoint the flow's last step sends: its requests are the step's.
    let c = Case::new(&journey(
        load,
        "[slo.endpoint.alone]\nbudgets = [\"p95 < 1s\"]",
    ));
    let o = c.loadgate(&["validate", "{s}"], &[("URL", "http://127.0.0.1:9")]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("endpoint `alone` has weight 0: no arrival sends it"),
        "{t}"
    );
    assert!(
        t.contains("put the budget under [slo.endpoint.shop_alone]"),
        "{t}"
    );
}

/// A server whose `GET /slow` answers after 300 ms and anything else at once.
fn slow_then_quick() -> String {
    http_server(|asked| {
        if asked.is("GET", "/slow") {
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
        Some(http_reply(200, "", "ok"))
    })
}

/// A later step that never had its turn in a fixed pool (`connections = 1`: while an
/// iteration thinks, the first step of one due meanwhile takes the one connection and
/// holds it 300 ms, longer than the later step's 50 ms timeout) was not recorded on
/// its flow's row at all. The drop
/// is loadgate's: the step's row counts its request dropped, the flow's row the
/// iteration it cut short (never an outcome of the target's), and the run's drops
/// count each iteration once.
#[test]
fn a_later_step_that_never_had_its_turn_is_a_dropped_iteration_counted_once() {
    let url = slow_then_quick();
    let c = Case::new(&format!(
        r#"name = "pool"
target = "{url}"
[defaults]
timeout = "2s"
[[flow]]
name = "shop"
think_time = "20ms"
[[flow.step]]
name = "slowly"
path = "/slow"
[[flow.step]]
name = "quick"
path = "/quick"
timeout = "50ms"
[load]
model = "open"
stages = [{{ duration = "2s", target_rps = 20 }}]
connections = 1
max_late_ratio = 1.0
"#
    ));
    let o = c.loadgate(&["run", "{s}", "--out", "{out}", "--workers", "1"], &[]);
    assert_eq!(code(&o), 3, "{}", text(&o));
    let s = c.summary();
    let (slowly, quick, shop) = (row(&s, "slowly"), row(&s, "quick"), row(&s, "shop"));
    let dropped = |r: &serde_json::Value| r["dropped"].as_u64().unwrap();
    assert!(dropped(quick) >= 1, "{quick}");
    assert_eq!(
        dropped(shop),
        dropped(slowly) + dropped(quick),
        "every iteration a drop cut short: {shop}"
    );
    // Once each: not the steps' and the flow's.
    assert_eq!(
        s["rate"]["dropped"].as_u64().unwrap(),
        dropped(shop),
        "{}",
        s["rate"]
    );
    assert_eq!(shop["sent"], slowly["sent"], "iterations started: {shop}");
    // Never the target's failure.
    for r in [slowly, quick, shop] {
        assert_eq!(r["errors"], 0, "{r}");
    }
    assert!(
        shop["requests"].as_u64().unwrap() + dropped(quick) <= shop["sent"].as_u64().unwrap(),
        "{shop}"
    );
    assert_eq!(s["verdict"], "invalid");
}
