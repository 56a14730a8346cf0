//! Issue 22: one run against two origins, each endpoint with its own timeout: the app
//! (the scenario's target) and a separate ML service (an endpoint's `base`), both real
//! servers on 127.0.0.1. One run, one summary, one verdict; and an origin that is down
//! refuses the run before any load, named.

mod common;

use common::*;

/// The app: a health route that answers in 1.5 s.
const APP: &str = r#"
[[route]]
path = "/api/health"
latency = { dist = "fixed", value = "1500ms" }
response = '{"status":"ok"}'
"#;

/// The ML service: an agent route that answers in 1.5 s too.
const ML: &str = r#"
[[route]]
method = "POST"
path = "/api/agent/query"
latency = { dist = "fixed", value = "1500ms" }
response = '{"answer":"ok"}'
"#;

/// The password of the ML service's URL, from the environment: never shown.
const ML_PASSWORD: &str = "ml-secret-42424242";

/// `health` (timeout 1 s) against the target, `agent` (timeout 5 s) against `${ML_URL}`,
/// 3 s at 4 requests/s.
const TWO_ORIGINS: &str = r#"name = "two-origins"
target = "${APP_URL}"
[defaults]
timeout = "10s"
connect_timeout = "1s"
[[endpoint]]
name = "health"
path = "/api/health"
timeout = "1s"
[[endpoint]]
name = "agent"
method = "POST"
base = "${ML_URL}"
path = "/api/agent/query"
json = { query = "What is my savings rate?" }
timeout = "5s"
[load]
model = "open"
stages = [{ duration = "3s", target_rps = 4 }]
max_late_ratio = 0.5
"#;

#[test]
fn two_origins_with_their_own_timeouts_make_one_run_and_one_verdict() {
    let app = loadgate_target::loopback(APP);
    let ml = loadgate_target::loopback(ML);
    let ml_url = ml
        .base_url()
        .replace("http://", &format!("http://svc:{ML_PASSWORD}@"));
    let c = Case::new(TWO_ORIGINS);
    let o = c.loadgate(
        &["run", "{s}", "--out", "{out}"],
        &[("APP_URL", &app.base_url()), ("ML_URL", &ml_url)],
    );
    // The health endpoint's every request timed out: its implicit error budget fails.
    assert_eq!(code(&o), 1, "{}", text(&o));
    let s = c.summary();
    let (health, agent) = (row(&s, "health"), row(&s, "agent"));
    let sent = |e: &serde_json::Value| e["sent"].as_u64().unwrap();
    let outcome = |e: &serde_json::Value, o: &str| e["outcomes"][o].as_u64().unwrap_or(0);
    assert!(sent(health) > 0 && sent(agent) > 0, "{s}");
    // 1.5 s is past health's 1 s and within agent's 5 s.
    assert_eq!(outcome(health, "timeout"), sent(health), "{health}");
    assert_eq!(outcome(health, "success"), 0, "{health}");
    assert_eq!(outcome(agent, "success"), sent(agent), "{agent}");
    assert_eq!(outcome(agent, "timeout"), 0, "{agent}");
    // Each origin saw its own endpoint's requests and nothing else.
    assert_eq!(app.requests(), sent(health), "the app");
    assert_eq!(ml.requests(), sent(agent), "the ML service");
    // Every origin is listed, without credentials; the endpoints' timeouts are in the
    // plan run.json keeps for recovery and merge.
    assert_eq!(s["target"], app.base_url());
    assert_eq!(s["bases"]["agent"], ml.base_url());
    let start: serde_json::Value =
        serde_json::from_slice(&std::fs::read(c.out().join("run.json")).unwrap()).unwrap();
    assert_eq!(start["bases"]["agent"], ml.base_url());
    assert_eq!(start["plan"]["timeouts_ms"]["health"], 1000.0);
    assert_eq!(start["plan"]["timeouts_ms"]["agent"], 5000.0);
    assert!(text(&o).contains(&format!("endpoint `agent` to {}", ml.base_url())));
    // The password of the ML service's URL is in no output and no file.
    assert!(!text(&o).contains(ML_PASSWORD), "{}", text(&o));
    for f in std::fs::read_dir(c.out()).unwrap() {
        let f = f.unwrap().path();
        let bytes = std::fs::read(&f).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(ML_PASSWORD),
            "{} holds the password",
            f.display()
        );
    }
    // The report's key facts name both origins.
    let html = std::fs::read_to_string(c.out().join("report.html")).unwrap();
    assert!(
        html.contains(&format!("{}; agent: {}", app.base_url(), ml.base_url())),
        "report.html"
    );
}

/// The health check waits for the target only: an endpoint's base that refuses
/// connections is refused before any load, named, with or without one.
#[test]
fn an_origin_that_is_down_refuses_the_run_before_any_load_naming_it() {
    let app = loadgate_target::loopback(APP);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = format!("http://127.0.0.1:{port}");
    let c = Case::new(TWO_ORIGINS);
    let env = [("APP_URL", app.base_url()), ("ML_URL", down.clone())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    for extra in [&[][..], &["--wait-healthy", "/api/health"][..]] {
        let mut args = vec!["run", "{s}", "--out", "{out}", "-q"];
        args.extend_from_slice(extra);
        let o = c.loadgate(&args, &env);
        assert_eq!(code(&o), 6, "{}", text(&o));
        assert!(
            text(&o).contains(&format!(
                "cannot connect to endpoint `agent`'s base 127.0.0.1:{port}"
            )),
            "{}",
            text(&o)
        );
        assert_never_started(&c);
    }
    assert_eq!(app.requests(), 0, "no load was sent");
}
