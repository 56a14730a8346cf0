//! Scenario files, good and bad: every mistake must be reported with file:line:column.

use std::path::Path;

use loadgate_scenario::{parse, DataMode, LoadModel, Scenario, Target};

const HEAD: &str = r#"name = "t"
target = "http://127.0.0.1:9"
[load]
model = "open"
stages = [{ duration = "2s", target_rps = 10 }]
"#;

fn env(name: &str) -> Option<String> {
    match name {
        "TOKEN" => Some("tok-123".into()),
        "BASE" => Some("http://127.0.0.1:1234".into()),
        _ => None,
    }
}

fn ok(text: &str) -> Scenario {
    parse(Path::new("s.toml"), text, &env).unwrap_or_else(|e| panic!("{e}"))
}

/// Asserts that `text` fails with a diagnostic at `line:col` whose message contains `msg`.
#[track_caller]
fn check_err(text: &str, line: usize, col: usize, msg: &str) {
    let e = parse(Path::new("s.toml"), text, &env).expect_err("should fail");
    let found =
        e.0.iter()
            .any(|d| d.line == line && d.column == col && d.message.contains(msg));
    assert!(found, "want {line}:{col} containing {msg:?}, got:\n{e}");
    assert!(e.to_string().starts_with("s.toml:"), "{e}");
}

#[test]
fn a_full_scenario_loads() {
    let s = ok(r#"name = "full"
target = "${BASE}"
[defaults]
timeout = "2s"
headers = { Authorization = "Bearer ${TOKEN}", "User-Agent" = "loadgate" }
[lists]
topics = ["budget", "savings"]
[[endpoint]]
name = "analyze"
method = "post"
path = "/api/intelligence/analyze?n={{seq}}"
json = { userId = "user-{{seq}}", topic = "{{pick(topics)}}" }
weight = 3
checks = { status = [200], json = [{ path = "$.status", equals = "ok" }] }
[[endpoint]]
name = "health"
path = "/api/health"
[load]
model = "closed"
stages = [{ duration = "10s", vus = 5 }, { duration = "5s", vus = 1 }]
think_time = "100ms"
warmup = "2s"
[slo]
budgets = ["p95 < 2s", { expr = "error_rate < 1%", abort_on_fail = true }]
[slo.endpoint.analyze]
budgets = ["p99 < 5s"]
"#);
    assert_eq!(
        s.target,
        Target::Url("http://127.0.0.1:1234".parse().unwrap())
    );
    assert_eq!(s.endpoints.len(), 2);
    assert_eq!(s.endpoints[0].method, "POST");
    let auth = s.endpoints[0]
        .headers
        .iter()
        .find(|h| h.name == "Authorization")
        .unwrap();
    assert!(auth.secret);
    assert!(s.endpoints[0]
        .headers
        .iter()
        .any(|h| h.name == "content-type"));
    assert_eq!(s.load.model, LoadModel::Closed);
    assert_eq!(s.load.duration().as_secs(), 15);
    assert_eq!(s.load.target_at(12.5), 3.0);
    assert_eq!(s.slo.global.len(), 2);
    assert!(s.slo.global[1].abort_on_fail);
    assert_eq!(s.slo.endpoints.len(), 1);
}

#[test]
fn open_model_ramps_linearly_between_stages() {
    let s = ok(r#"name = "ramp"
target = "embedded"
[[endpoint]]
name = "h"
path = "/"
[load]
model = "open"
start_rps = 0
stages = [{ duration = "10s", target_rps = 100 }, { duration = "10s", target_rps = 100 }]
"#);
    assert_eq!(s.load.target_at(0.0), 0.0);
    assert_eq!(s.load.target_at(5.0), 50.0);
    assert_eq!(s.load.target_at(15.0), 100.0);
    assert_eq!(s.load.target_at(99.0), 100.0);
}

#[test]
fn unknown_keys_are_errors() {
    check_err(
        &format!("{HEAD}[defaults]\ntimout = \"1s\"\n"),
        7,
        1,
        "unknown field `timout`",
    );
}

#[test]
fn wrong_types_are_errors() {
    check_err(
        &format!("{HEAD}[[endpoint]]\nname = 3\npath = \"/\"\n"),
        7,
        8,
        "invalid type",
    );
}

#[test]
fn bad_durations_point_at_the_value() {
    let text = "name = \"t\"\ntarget = \"embedded\"\n[[endpoint]]\nname = \"a\"\npath = \"/\"\n[load]\nmodel = \"open\"\nstages = [{ duration = \"30 parsecs\", target_rps = 1 }]\n";
    check_err(text, 8, 24, "is not a duration");
}

#[test]
fn empty_endpoint_list() {
    check_err(HEAD, 1, 1, "no endpoints");
}

#[test]
fn zero_and_negative_rates() {
    let base = "name = \"t\"\ntarget = \"embedded\"\n[[endpoint]]\nname = \"a\"\npath = \"/\"\n[load]\nmodel = \"open\"\n";
    check_err(
        &format!("{base}stages = [{{ duration = \"1s\", target_rps = -5.0 }}]\n"),
        8,
        43,
        "must be zero or more",
    );
    check_err(
        &format!("{base}stages = [{{ duration = \"1s\", target_rps = 0.0 }}]\n"),
        8,
        10,
        "never rises above zero",
    );
}

#[test]
fn weights_that_sum_to_zero() {
    let text = "name = \"t\"\ntarget = \"embedded\"\n[[endpoint]]\nname = \"a\"\npath = \"/\"\nweight = 0\n[load]\nmodel = \"open\"\nstages = [{ duration = \"1s\", target_rps = 1 }]\n";
    check_err(text, 3, 1, "weights sum to zero");
}

#[test]
fn slo_on_a_missing_endpoint() {
    let text = format!("{HEAD}[[endpoint]]\nname = \"a\"\npath = \"/\"\n[slo.endpoint.nope]\nbudgets = [\"p95 < 1s\"]\n");
    check_err(&text, 9, 1, "`nope`, which does not exist");
}

#[test]
fn bad_slo_expressions_point_into_the_string() {
    let text =
        format!("{HEAD}[[endpoint]]\nname = \"a\"\npath = \"/\"\n[slo]\nbudgets = [\"p95 < 2\"]\n");
    check_err(&text, 10, 20, "missing unit");
}

#[test]
fn template_naming_a_missing_list() {
    let text = format!("{HEAD}[[endpoint]]\nname = \"a\"\npath = \"/q/{{{{pick(nope)}}}}\"\n");
    check_err(&text, 8, 12, "`nope`, which is not defined");
}

#[test]
fn missing_environment_variable() {
    check_err(
        &HEAD.replace("http://127.0.0.1:9", "${NOT_SET_ANYWHERE}"),
        2,
        11,
        "`NOT_SET_ANYWHERE` is not set",
    );
}

#[test]
fn every_error_in_a_file_is_reported() {
    let text = "name = \"t\"\ntarget = \"embedded\"\n[[endpoint]]\nname = \"a\"\npath = \"nope\"\n[load]\nmodel = \"open\"\nstages = [{ duration = \"x\", target_rps = 1 }]\n[slo]\nbudgets = [\"p95 < \"]\n";
    let e = parse(Path::new("s.toml"), text, &env).unwrap_err();
    assert_eq!(e.0.len(), 3, "{e}");
}

#[test]
fn csv_data_file_missing_and_ragged() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("s.toml");
    let text = format!("{HEAD}data = {{ file = \"users.csv\", mode = \"random\" }}\n[[endpoint]]\nname = \"a\"\npath = \"/u/{{{{userId}}}}\"\n")
        .replace("data = ", "")
        .replace("[load]", "data = { file = \"users.csv\", mode = \"random\" }\n[load]");
    let text = text.replace(
        "{ file = \"users.csv\", mode = \"random\" }\n[[endpoint]]",
        "[[endpoint]]",
    );
    let e = parse(&scenario, &text, &env).unwrap_err();
    assert!(e.to_string().contains("cannot read data file"), "{e}");

    std::fs::write(dir.path().join("users.csv"), "userId,plan\nu1,pro\nu2\n").unwrap();
    let e = parse(&scenario, &text, &env).unwrap_err();
    let d = &e.0[0];
    assert!(d.file.ends_with("users.csv") && d.line == 3, "{e}");
    assert!(d.message.contains("1 fields, the header has 2"), "{e}");

    std::fs::write(
        dir.path().join("users.csv"),
        "userId,plan\nu1,pro\nu2,free\n",
    )
    .unwrap();
    let s = parse(&scenario, &text, &env).unwrap();
    let data = s.data.unwrap();
    assert_eq!((data.rows.len(), data.mode), (2, DataMode::Random));
}

#[test]
fn overrides_replace_stages_and_budgets() {
    let mut s = ok(&format!(
        "{HEAD}[[endpoint]]\nname = \"a\"\npath = \"/\"\n[slo]\nbudgets = [\"p95 < 2s\"]\n"
    ));
    s.apply(&loadgate_scenario::Overrides {
        rps: Some(77.0),
        duration: Some(std::time::Duration::from_secs(3)),
        slo: vec![
            loadgate_slo::parse("p95 < 1s").unwrap(),
            loadgate_slo::parse("error_rate < 1%").unwrap(),
        ],
        ..Default::default()
    });
    assert_eq!(s.load.target_at(1.0), 77.0);
    assert_eq!(s.load.duration().as_secs(), 3);
    assert_eq!(s.slo.global.len(), 2);
    assert_eq!(s.slo.global[0].budget.threshold, 1_000_000.0);
}

/// Regression: `--rps 20000` on a closed-model scenario of 50 VUs kept the in-flight cap
/// computed for 50 (500), so a 25 ms hiccup dropped arrivals. An unset cap now follows
/// the overridden rate; a cap the scenario sets is kept.
#[test]
fn an_unset_in_flight_cap_follows_a_rate_override() {
    let base =
        format!("{HEAD}[defaults]\ntimeout = \"10s\"\n[[endpoint]]\nname = \"a\"\npath = \"/\"\n");
    let mut s = ok(&base);
    let before = s.load.max_in_flight;
    s.apply(&loadgate_scenario::Overrides {
        rps: Some(500.0),
        ..Default::default()
    });
    assert_eq!((before < 5000, s.load.max_in_flight), (true, 5000));
    let mut s = ok(&base.replace("[load]", "[load]\nmax_in_flight = 300"));
    s.apply(&loadgate_scenario::Overrides {
        rps: Some(500.0),
        ..Default::default()
    });
    assert_eq!(s.load.max_in_flight, 300);
}

#[test]
fn credentials_are_stripped_from_the_displayed_target() {
    let s = ok(&format!("{HEAD}[[endpoint]]\nname = \"a\"\npath = \"/\"\n")
        .replace("http://127.0.0.1:9", "https://user:pw@example.com"));
    assert_eq!(s.target_display(), "https://example.com");
}

#[test]
fn max_body_takes_sizes_with_units() {
    let s = ok(&format!("{HEAD}[[endpoint]]\nname = \"a\"\npath = \"/\"\n")
        .replace("[load]", "[defaults]\nmax_body = \"512KiB\"\n[load]"));
    assert_eq!(s.max_body, 512 * 1024);
    check_err(
        &format!("{HEAD}[[endpoint]]\nname = \"a\"\npath = \"/\"\n")
            .replace("[load]", "[defaults]\nmax_body = \"lots\"\n[load]"),
        4,
        12,
        "not a size",
    );
}

/// Regression: a zero-length stage with no `warmup` key panicked (found by the proptest
/// `a_valid_file_with_one_byte_changed_never_panics`: "2s" became "0s").
#[test]
fn regression_zero_length_run_without_warmup_is_an_error_not_a_panic() {
    let text = HEAD.replace("duration = \"2s\"", "duration = \"0s\"")
        + "[[endpoint]]\nname = \"a\"\npath = \"/\"\n";
    check_err(&text, 5, 24, "must be greater than zero");
}

#[test]
fn the_capacity_table_is_checked_with_positions() {
    let base = format!("{HEAD}[[endpoint]]\nname = \"a\"\npath = \"/\"\n");
    let s = ok(&format!(
        "{base}[capacity]\nstart_rps = 20\nfactor = 1.5\nmax_rps = 900\nstep_duration = \"20s\"\nsettle = \"0s\"\nrefine = 4\n"
    ));
    assert_eq!(s.capacity.start_rps, 20.0);
    assert_eq!(
        s.capacity.step,
        loadgate_scenario::CapacityStep::Multiply(1.5)
    );
    assert_eq!(s.capacity.next(20.0), 30.0);
    assert_eq!((s.capacity.max_rps, s.capacity.refine), (900.0, 4));
    assert_eq!(s.capacity.settle, std::time::Duration::ZERO);
    let lines = base.lines().count();
    check_err(
        &format!("{base}[capacity]\nstep_rps = 10\nfactor = 2\n"),
        lines + 3,
        10,
        "either step_rps or factor",
    );
    check_err(
        &format!("{base}[capacity]\nfactor = 1\n"),
        lines + 2,
        10,
        "factor must be above 1",
    );
    check_err(
        &format!("{base}[capacity]\nstart_rps = 100\nmax_rps = 10\n"),
        lines + 3,
        11,
        "below start_rps",
    );
    check_err(
        &format!("{base}[capacity]\nrefine = 50\n"),
        lines + 2,
        10,
        "between 0 and 10",
    );
    check_err(
        &format!("{base}[capacity]\nsteps = 3\n"),
        lines + 2,
        1,
        "unknown field",
    );
}

#[test]
fn the_send_window_defaults_to_a_quarter_of_the_tolerance_and_stays_below_it() {
    use std::time::Duration;
    let base = "name = \"t\"\ntarget = \"embedded\"\n[[endpoint]]\nname = \"a\"\npath = \"/\"\n[load]\nmodel = \"open\"\nstages = [{ duration = \"1s\", target_rps = 1 }]\n";
    assert_eq!(ok(base).load.send_window, Duration::from_micros(250));
    let loose = ok(&format!("{base}late_tolerance = \"20ms\"\n"));
    assert_eq!(loose.load.send_window, Duration::from_micros(250));
    let tight = ok(&format!("{base}late_tolerance = \"400us\"\n"));
    assert_eq!(tight.load.send_window, Duration::from_micros(100));
    let exact = ok(&format!("{base}send_window = \"0s\"\n"));
    assert_eq!(exact.load.send_window, Duration::ZERO);
    check_err(
        &format!("{base}send_window = \"1ms\"\n"),
        9,
        15,
        "must be shorter than late_tolerance (1ms)",
    );
    check_err(
        &format!("{base}send_window = \"soon\"\n"),
        9,
        15,
        "is not a duration",
    );
    let closed = base
        .replace("\"open\"", "\"closed\"")
        .replace("target_rps", "vus");
    check_err(
        &format!("{closed}send_window = \"100us\"\n"),
        9,
        15,
        "applies to the open model only",
    );
}

fn one_endpoint(extra: &str) -> String {
    format!("{HEAD}[[endpoint]]\nname = \"a\"\npath = \"/\"\n{extra}")
}

/// Issue 17: `target = "${TARGET_URL}"` with the variable unset failed to load even when
/// `--target` replaced the target. With a target in `LoadOptions` the file's `target` is
/// not read at all, and the override's path is the one paths are checked under.
#[test]
fn regression_a_target_override_rescues_an_unset_target_variable() {
    use loadgate_scenario::{parse_with, LoadOptions, TargetError};
    let text = one_endpoint("").replace("http://127.0.0.1:9", "${TARGET_URL_UNSET}");
    check_err(&text, 2, 11, "`TARGET_URL_UNSET` is not set");
    let with = |target: Target, text: &str| {
        parse_with(
            Path::new("s.toml"),
            text,
            &env,
            &LoadOptions {
                target: Some(target),
            },
        )
    };
    let s = with(Target::Embedded, &text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.target, Target::Embedded);
    let staging = Target::parse("https://staging.example.com/api").unwrap();
    assert_eq!(with(staging.clone(), &text).unwrap().target, staging);
    // Not validated either: the file's target is replaced, whatever it says.
    let ftp = one_endpoint("").replace("http://127.0.0.1:9", "ftp://x");
    assert!(parse(Path::new("s.toml"), &ftp, &env).is_err());
    assert_eq!(
        with(Target::Embedded, &ftp).unwrap().target,
        Target::Embedded
    );
    assert_eq!(
        Target::parse("ftp://x"),
        Err(TargetError::Scheme("ftp".into()))
    );
    assert!(matches!(
        Target::parse("staging.example.com"),
        Err(TargetError::NotUrl(_))
    ));
    assert_eq!(Target::parse("embedded"), Ok(Target::Embedded));
}
