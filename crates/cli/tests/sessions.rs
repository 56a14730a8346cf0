//! Issue 22: sessions. A cookie jar per flow iteration (open model) or per VU (closed
//! model), against the embedded target's cookie and session routes: what a step was
//! set is sent by the later steps, never by another iteration; a session cookie holds
//! with the jar and fails with `cookies = false`; a VU keeps its cookies across its
//! iterations; a cookie the target echoes in a failure is never shown.

mod common;

use common::*;

/// The embedded target with its journey routes: a login with password `pw-secret`.
const PROFILE: &str = r#"
[auth]
password = "pw-secret"
token_ttl = "60s"
[[route]]
path = "/"
response = '{"status":"ok"}'
"#;

fn case(scenario: &str) -> Case {
    Case::with_profile(scenario, PROFILE)
}

fn scenario(defaults: &str, flow: &str, load: &str) -> String {
    format!(
        "name = \"sessions\"\ntarget = \"embedded\"\ntarget_profile = \"profile.toml\"\n[defaults]\n{defaults}\n{flow}\n[load]\n{load}\n"
    )
}

const OPEN: &str =
    "model = \"open\"\nstages = [{ duration = \"2s\", target_rps = 10 }]\nmax_late_ratio = 0.5";

/// Every file of the run folder, as text.
fn outputs(c: &Case) -> Vec<(std::path::PathBuf, String)> {
    std::fs::read_dir(c.out())
        .unwrap()
        .map(|f| {
            let path = f.unwrap().path();
            let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
            (path, text)
        })
        .collect()
}

#[test]
fn a_flow_iteration_sends_what_its_steps_were_set_and_never_another_iterations() {
    let flow = r#"[[flow]]
name = "jar"
[[flow.step]]
name = "fresh"
path = "/cookies"
checks = { json = [{ path = "$.cookies.k", exists = false }] }
[[flow.step]]
name = "set"
path = "/cookies/set?k=v{{seq}}"
[[flow.step]]
name = "sent"
path = "/cookies"
checks = { json = [{ path = "$.cookies.k", exists = true }] }
"#;
    let c = case(&scenario("", flow, OPEN));
    let o = c.loadgate(&["run", "{s}", "--out", "{out}"], &[]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let s = c.summary();
    for step in ["fresh", "set", "sent", "jar"] {
        let r = row(&s, step);
        assert_eq!(outcome(r, "success"), 20, "{r}");
    }
}

#[test]
fn a_session_cookie_holds_with_the_jar_and_not_with_cookies_off() {
    let flow = r#"[[flow]]
name = "visit"
[[flow.step]]
name = "login"
method = "POST"
path = "/api/auth/session"
json = { username = "u{{seq}}", password = "pw-secret" }
[[flow.step]]
name = "me"
path = "/api/session"
"#;
    let c = case(&scenario("", flow, OPEN));
    let o = c.loadgate(&["run", "{s}", "--out", "{out}"], &[]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let s = c.summary();
    assert_eq!(outcome(row(&s, "me"), "success"), 20, "{s}");

    let c = case(&scenario("cookies = false", flow, OPEN));
    let o = c.loadgate(&["run", "{s}", "--out", "{out}"], &[]);
    assert_eq!(code(&o), 1, "{}", text(&o));
    let s = c.summary();
    assert_eq!(outcome(row(&s, "me"), "http_4xx"), 20, "{s}");
    // A flow's own `cookies` wins over the defaults.
    let on = flow.replace("name = \"visit\"", "name = \"visit\"\ncookies = true");
    let c = case(&scenario("cookies = false", &on, OPEN));
    let o = c.loadgate(&["run", "{s}", "--out", "{out}"], &[]);
    assert_eq!(code(&o), 0, "{}", text(&o));
}

#[test]
fn a_closed_model_vu_keeps_its_cookies_across_its_iterations() {
    // The one VU runs on the first worker and its first iteration is number 0: the
    // cookie `n0` it sets then is sent by every later iteration only if the VU's jar
    // outlives the iteration.
    let flow = r#"[[flow]]
name = "visit"
[[flow.step]]
name = "set"
path = "/cookies/set?n{{seq}}=held"
[[flow.step]]
name = "look"
path = "/cookies"
checks = { json = [{ path = "$.cookies.n0", equals = "held" }] }
"#;
    let load =
        "model = \"closed\"\nstages = [{ duration = \"2s\", vus = 1 }]\nthink_time = \"50ms\"\nmax_late_ratio = 0.5";
    let c = case(&scenario("", flow, load));
    let o = c.loadgate(&["run", "{s}", "--out", "{out}"], &[]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let s = c.summary();
    let look = row(&s, "look");
    let n = look["requests"].as_u64().unwrap();
    assert!(n >= 2, "{look}");
    assert_eq!(outcome(look, "success"), n, "{look}");
}

#[test]
fn a_cookie_the_target_echoes_in_a_failure_is_never_shown() {
    let flow = r#"[[flow]]
name = "leak"
[[flow.step]]
name = "set"
path = "/cookies/set?k=crumb-{{seq}}-xyz"
[[flow.step]]
name = "echo"
path = "/cookies"
checks = { json = [{ path = "$.cookies.k", equals = "nope" }] }
"#;
    let c = case(&scenario("", flow, OPEN));
    let o = c.loadgate(&["run", "{s}", "--out", "{out}"], &[]);
    assert_eq!(code(&o), 1, "{}", text(&o));
    let s = c.summary();
    let echo = row(&s, "echo");
    assert_eq!(outcome(echo, "check_failed"), 20, "{echo}");
    let found = echo["failures"]["examples"][0]["found"]
        .as_str()
        .unwrap_or("");
    assert!(found.contains("${cookie}"), "{echo}");
    // A value, not the template (`crumb-{{seq}}-xyz`, which outputs may show).
    let shows = |t: &str| {
        t.match_indices("crumb-")
            .any(|(i, m)| t[i + m.len()..].starts_with(|c: char| c.is_ascii_digit()))
    };
    assert!(!shows(&text(&o)), "{}", text(&o));
    for (path, content) in outputs(&c) {
        assert!(!shows(&content), "{} shows a cookie", path.display());
    }
}

#[test]
fn validate_refuses_a_cookies_setting_that_is_not_a_boolean() {
    let c = case(&scenario(
        "cookies = \"yes\"",
        "[[endpoint]]\nname = \"a\"\npath = \"/\"\n",
        OPEN,
    ));
    let o = c.loadgate(&["validate", "{s}"], &[]);
    assert_ne!(code(&o), 0, "{}", text(&o));
    assert!(text(&o).contains("s.toml:5:"), "{}", text(&o));
}

/// A login that sets its cookie on a redirect: `GET /login` answers 302 to `/home` with
/// `Set-Cookie: sid=hop-cookie-1`; `GET /home` answers 200 with that cookie, 401
/// without. One thread per connection, until the client closes it.
fn redirecting_login() -> String {
    http_server(|asked| {
        Some(if asked.is("GET", "/login") {
            http_reply(
                302,
                "location: /home\r\nset-cookie: sid=hop-cookie-1; Path=/\r\n",
                "",
            )
        } else if asked.is("GET", "/home") && asked.header("cookie") == Some("sid=hop-cookie-1") {
            http_reply(200, "", "ok")
        } else {
            http_reply(401, "", "no")
        })
    })
}

#[test]
fn a_cookie_set_on_a_redirect_is_sent_on_the_next_hop() {
    let url = redirecting_login();
    let c = Case::new(&format!(
        "name = \"hop\"\ntarget = \"{url}\"\n[[flow]]\nname = \"in\"\n[[flow.step]]\nname = \"login\"\npath = \"/login\"\n[load]\n{OPEN}\n"
    ));
    let o = c.loadgate(&["run", "{s}", "--out", "{out}"], &[]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let s = c.summary();
    let login = row(&s, "login");
    assert_eq!(outcome(login, "success"), 20, "{login}");
}

/// A cookie's value captured by name (`{ cookie = "lg_session" }`) and sent by a later
/// step in a header of its own, with the jar off: the session holds; a cookie the
/// answer does not set is `capture_failed`, and the captured value is never shown.
#[test]
fn a_cookie_is_captured_by_name_and_sent_by_a_later_step() {
    let flow = |name: &str| {
        format!(
            r#"[[flow]]
name = "visit"
cookies = false
[[flow.step]]
name = "login"
method = "POST"
path = "/api/auth/session"
json = {{ username = "u{{{{seq}}}}", password = "pw-secret" }}
capture = {{ sid = {{ cookie = "{name}" }} }}
[[flow.step]]
name = "me"
path = "/api/session"
headers = {{ Cookie = "lg_session={{{{sid}}}}" }}
"#
        )
    };
    let c = case(&scenario("", &flow("lg_session"), OPEN));
    let o = c.loadgate(&["run", "{s}", "--out", "{out}"], &[]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let s = c.summary();
    assert_eq!(outcome(row(&s, "me"), "success"), 20, "{s}");
    let c = case(&scenario("", &flow("other"), OPEN));
    let o = c.loadgate(&["run", "{s}", "--out", "{out}"], &[]);
    assert_eq!(code(&o), 1, "{}", text(&o));
    let s = c.summary();
    let login = row(&s, "login");
    assert_eq!(outcome(login, "capture_failed"), 20, "{login}");
    assert!(
        login["failures"]
            .to_string()
            .contains("cookie other found nothing"),
        "{login}"
    );
}

/// A target that sets more cookies than a jar holds: `GET /many` answers with 60
/// `Set-Cookie`s (`c0` to `c59`), `GET /count` answers `{"n":N}`, N the cookies its
/// request sent. One thread per connection, until the client closes it.
fn sixty_cookies() -> String {
    http_server(|asked| {
        let cookies = asked
            .header("cookie")
            .map_or(0, |v| v.split(';').filter(|c| c.contains('=')).count());
        Some(if asked.is("GET", "/many") {
            let set: String = (0..60)
                .map(|i| format!("set-cookie: c{i}=v{i}; Path=/\r\n"))
                .collect();
            http_reply(200, &set, "ok")
        } else {
            let body = format!("{{\"n\":{cookies}}}");
            http_reply(200, "content-type: application/json\r\n", &body)
        })
    })
}

/// The jar holds 50 cookies: the 10 more a response set are dropped, and that is
/// said per endpoint in summary.json, the time series, the report and the console
/// (it was counted by the jar and reported nowhere).
#[test]
fn cookies_the_jar_dropped_are_reported_for_the_step_whose_answer_set_them() {
    let url = sixty_cookies();
    let c = Case::new(&format!(
        r#"name = "crumbs"
target = "{url}"
[[flow]]
name = "crumbs"
[[flow.step]]
name = "many"
path = "/many"
[[flow.step]]
name = "count"
path = "/count"
checks = {{ json = [{{ path = "$.n", equals = 50 }}] }}
[load]
{OPEN}
"#
    ));
    let o = c.loadgate(&["run", "{s}", "--out", "{out}"], &[]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let s = c.summary();
    let (many, count) = (row(&s, "many"), row(&s, "count"));
    assert_eq!(outcome(many, "success"), 20, "{many}");
    // The later step sent the 50 the jar held.
    assert_eq!(outcome(count, "success"), 20, "{count}");
    assert_eq!(many["cookies_dropped"], 200, "{many}");
    assert!(
        count.get("cookies_dropped").is_none(),
        "omitted when 0: {count}"
    );
    let series = std::fs::read_to_string(c.out().join("timeseries.jsonl")).unwrap();
    let in_series: u64 = series
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .flat_map(|r| r["endpoints"].as_array().unwrap().clone())
        .filter(|e| e["name"] == "many")
        .map(|e| e["cookies_dropped"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(in_series, 200, "{series}");
    let said = "200 cookies dropped: the cookie jar holds 50 cookies of up to 4 KiB each";
    let report = std::fs::read_to_string(c.out().join("report.html")).unwrap();
    assert!(report.contains(said), "the report says it");
    assert!(text(&o).contains(said), "the console says it: {}", text(&o));
}
