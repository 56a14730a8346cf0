//! Issue 22: an endpoint's own `base` (another origin) and `timeout`, good and bad, each
//! mistake at file:line:column with a hint; a secret in a base never shown; and what the
//! run derives from the longest timeout.

use std::path::Path;
use std::time::Duration;

use loadgate_scenario::{parse, Diagnostics, Scenario};

/// The secret the base URLs below hold.
const LEAK: &str = "ml-pass-LEAK-987654";

fn env(name: &str) -> Option<String> {
    Some(match name {
        "ML_URL" => format!("http://svc:{LEAK}@ml.internal:8000/v1"),
        "ML_QUERY" => format!("http://ml.internal:8000/?key={LEAK}"),
        "ML_SCHEME" => format!("ftp-{LEAK}://ml.internal"),
        "APP_URL" => "http://app.internal:3000".to_string(),
        _ => return None,
    })
}

fn load(text: &str) -> Result<Scenario, Diagnostics> {
    parse(Path::new("s.toml"), text, &env)
}

fn ok(text: &str) -> Scenario {
    load(text).unwrap_or_else(|e| panic!("{e}"))
}

/// A scenario against the app with `[defaults]` lines `defaults`, an endpoint `health`
/// (its own lines after `path`: `health`) and an endpoint `agent` (`agent`).
fn two(defaults: &str, health: &str, agent: &str) -> String {
    format!(
        "name = \"t\"\ntarget = \"http://app.internal:3000\"\n[defaults]\n{defaults}\n\
         [[endpoint]]\nname = \"health\"\npath = \"/api/health\"\n{health}\n\
         [[endpoint]]\nname = \"agent\"\nmethod = \"POST\"\npath = \"/api/agent/query\"\n{agent}\n\
         [load]\nmodel = \"open\"\nstages = [{{ duration = \"10s\", target_rps = 20 }}]\n"
    )
}

/// Asserts that `text` fails with a diagnostic at `line:col` whose message contains
/// `msg` and which has a hint, and that nothing shown holds the secret.
#[track_caller]
fn check_err(text: &str, line: usize, col: usize, msg: &str) {
    let e = load(text).map(|_| ()).expect_err("should fail");
    let shown = format!("{e}\n{e:?}");
    assert!(!shown.contains(LEAK), "the secret is shown:\n{shown}");
    let found = e
        .0
        .iter()
        .any(|d| d.line == line && d.column == col && d.message.contains(msg) && d.hint.is_some());
    assert!(
        found,
        "want {line}:{col} containing {msg:?} with a hint, got:\n{shown}"
    );
}

#[test]
fn an_endpoint_takes_its_own_base_and_timeout() {
    let s = ok(&two(
        "timeout = \"10s\"",
        "timeout = \"1s\"",
        "base = \"http://ml.internal:8000\"\ntimeout = \"60s\"",
    ));
    let (health, agent) = (&s.endpoints[0], &s.endpoints[1]);
    assert_eq!(health.base, None, "without `base`: the target");
    assert_eq!(health.timeout, Duration::from_secs(1));
    assert_eq!(
        agent.base.as_ref().map(|u| u.as_str()),
        Some("http://ml.internal:8000/")
    );
    assert_eq!(agent.timeout, Duration::from_secs(60));
    assert_eq!(s.timeout, Duration::from_secs(10), "[defaults] is kept");
    assert_eq!(s.longest_timeout(), Duration::from_secs(60));
    assert_eq!(
        s.origins_display(),
        "http://app.internal:3000; agent: http://ml.internal:8000"
    );
    assert_eq!(s.other_bases().len(), 1);
    // Everything derived from "the" timeout follows the longest: the histograms' bound,
    // the in-flight room for the peak rate, and each endpoint's timeout is in the plan
    // that segments share and merge compares.
    assert_eq!(s.histogram_max_us(), 180_000_000);
    assert_eq!(
        s.load.max_in_flight,
        loadgate_scenario::default_max_in_flight(20.0, Duration::from_secs(60))
    );
    let plan = s.segment_plan();
    assert_eq!(plan.timeouts_ms["health"], 1000.0);
    assert_eq!(plan.timeouts_ms["agent"], 60_000.0);

    // Without an own timeout, `[defaults]`' (or 30 s).
    let s = ok(&two("", "", "base = \"https://ml.example.com/v1\""));
    assert_eq!(s.endpoints[0].timeout, Duration::from_secs(30));
    assert_eq!(s.endpoints[1].timeout, Duration::from_secs(30));
    assert_eq!(s.histogram_max_us(), 90_000_000);
}

#[test]
fn a_base_is_interpolated_and_its_path_prefixes_the_endpoints_path() {
    let s = ok(&two(
        "",
        "base = \"${ML_URL}\"",
        "base = \"${ML_HOST:-http://ml.internal:8000}\"",
    ));
    assert_eq!(s.endpoints[0].base.as_ref().unwrap().path(), "/v1");
    // Shown without its credentials; the password is a secret of the variable.
    assert_eq!(s.endpoint_bases()["health"], "http://ml.internal:8000/v1");
    assert_eq!(s.endpoint_bases()["agent"], "http://ml.internal:8000");
    assert_eq!(s.secrets.redact(LEAK), "${ML_URL}");
    assert_eq!(s.secrets.redact("ml.internal"), "ml.internal");
    assert!(!format!("{s:?}").contains(LEAK), "Debug redacts it");
    // One origin for both (same scheme, host and port).
    assert_eq!(s.other_bases().len(), 1);
}

#[test]
fn bad_bases_are_refused_where_they_are_written() {
    // Line 7 is the health endpoint's first line after its path.
    check_err(
        &two("", "base = \"ml.internal\"", ""),
        8,
        8,
        "base is not a valid URL",
    );
    check_err(
        &two("", "base = \"ftp://ml.internal\"", ""),
        8,
        8,
        "base scheme `ftp` is not supported",
    );
    check_err(
        &two("", "base = \"embedded\"", ""),
        8,
        8,
        "base `embedded` is not a URL",
    );
    check_err(
        &two("", "base = \"http://ml.internal/?k=1\"", ""),
        8,
        8,
        "has a query",
    );
    check_err(&two("", "base = \"${NOT_SET}\"", ""), 8, 9, "NOT_SET");
}

#[test]
fn a_secret_in_a_base_is_never_shown() {
    // A query or an unsupported scheme from the environment: the scenario's text is
    // shown, never the value.
    check_err(
        &two("", "base = \"${ML_QUERY}\"", ""),
        8,
        8,
        "base `${ML_QUERY}` has a query",
    );
    check_err(
        &two("", "base = \"${ML_SCHEME}\"", ""),
        8,
        8,
        "base `${ML_SCHEME}` has a scheme that is not supported",
    );
    // A good base holding a password, with a mistake elsewhere: no diagnostic shows it.
    let text = two("", "base = \"${ML_URL}\"\nweight = -1", "");
    let e = load(&text).map(|_| ()).unwrap_err();
    assert!(!format!("{e}\n{e:?}").contains(LEAK), "{e}");
}

#[test]
fn bad_timeouts_are_refused_where_they_are_written() {
    check_err(
        &two("", "timeout = \"0s\"", ""),
        8,
        11,
        "timeout must be greater than zero",
    );
    check_err(&two("", "timeout = \"fast\"", ""), 8, 11, "timeout");
    // An endpoint's stream timeouts are checked against its own timeout...
    check_err(
        &two("", "timeout = \"1s\"\nfirst_byte_timeout = \"2s\"", ""),
        9,
        22,
        "first_byte_timeout 2s is not below the request timeout 1s",
    );
    // ...and may exceed `[defaults] timeout` when the endpoint's own is longer.
    let s = ok(&two(
        "timeout = \"10s\"",
        "",
        "timeout = \"60s\"\nidle_timeout = \"30s\"",
    ));
    assert_eq!(s.endpoints[1].idle_timeout, Some(Duration::from_secs(30)));
    // `[defaults]`' stream timeouts must fit under an endpoint's shorter timeout.
    check_err(
        &two(
            "timeout = \"10s\"\nidle_timeout = \"5s\"",
            "timeout = \"1s\"",
            "",
        ),
        9,
        11,
        "timeout 1s is not above [defaults] idle_timeout 5s",
    );
    // Where they fit, they are taken.
    let s = ok(&two("idle_timeout = \"5s\"", "timeout = \"6s\"", ""));
    assert_eq!(s.endpoints[0].idle_timeout, Some(Duration::from_secs(5)));
}
