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
    // The target's hint also names the flag that replaces it unread.
    let e = parse(
        Path::new("s.toml"),
        &HEAD.replace("http://127.0.0.1:9", "${NOT_SET_ANYWHERE}"),
        &env,
    )
    .unwrap_err();
    assert!(e.to_string().contains("or pass --target URL"), "{e}");
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
    // Room for every request running into its 10 s timeout, with a quarter to spare.
    assert_eq!((before < 5000, s.load.max_in_flight), (true, 6313));
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
                ..LoadOptions::default()
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
    // Paths are checked under the override's path, as the engine will send them.
    let long = text.replace(
        "path = \"/\"",
        &format!("path = \"/{}\"", "a".repeat(65_000)),
    );
    with(Target::Embedded, &long).unwrap_or_else(|e| panic!("{e}"));
    let deep = Target::parse(&format!("http://h/{}", "p".repeat(600))).unwrap();
    let e = with(deep, &long).unwrap_err();
    assert!(e.to_string().contains("too long"), "{e}");

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

/// The diagnostic at `line:col` whose message contains `msg` (fails the test if none).
#[track_caller]
fn diag_at(text: &str, line: usize, col: usize, msg: &str) -> loadgate_scenario::Diagnostic {
    let e = parse(Path::new("s.toml"), text, &env).expect_err("should fail");
    e.0.iter()
        .find(|d| d.line == line && d.column == col && d.message.contains(msg))
        .cloned()
        .unwrap_or_else(|| panic!("want {line}:{col} containing {msg:?}, got:\n{e}"))
}

/// Issue 17: `path = "/a b"` passed `validate` and failed at run time with "worker 1
/// failed: invalid uri character". Paths are checked as the engine builds them: the
/// target's path, then the path, through `http`'s own URI check.
#[test]
fn regression_paths_the_engine_would_refuse_are_refused_at_load_time() {
    let endpoint = |path: &str| format!("{HEAD}[[endpoint]]\nname = \"a\"\npath = {path}\n");
    let d = diag_at(&endpoint("\"/a b\""), 8, 11, "a space");
    assert!(d.hint.as_deref().unwrap_or("").contains("%20"), "{d}");
    // `"` may stand in a path but not in a query (the engine's rule, from `http`).
    ok(&endpoint("'/a\"b'"));
    diag_at(&endpoint("'/q?a=\"b\"'"), 8, 14, "in its query");
    // Only the literal parts of a template: rendered values are percent-encoded.
    diag_at(&endpoint("\"/x/{{seq}}/a b\""), 8, 21, "a space");
    diag_at(&endpoint("\"/x/{{seq}}\\u0001\""), 8, 19, "U+0001");
    ok(&endpoint("\"/w/{{pick(w)}}?q={{pick(w)}}\"").replace(
        "[[endpoint]]",
        "[lists]\nw = [\"a b\", \"<\\\"#?>\"]\n[[endpoint]]",
    ));
    // A fragment is not checked by the engine (nor sent differently), so not here either.
    ok(&endpoint("\"/a#b c\""));
    // The target's own path comes first and counts towards the URI's length limit.
    let long = format!("\"/{}\"", "a".repeat(65_530));
    ok(&endpoint(&long));
    let under_prefix = endpoint(&long).replace("http://127.0.0.1:9", "http://127.0.0.1:9/base");
    diag_at(&under_prefix, 8, 8, "too long");
    // The health check's path goes through the same check.
    diag_at(
        &one_endpoint("[health]\npath = \"/up now\"\n"),
        10,
        12,
        "a space",
    );
}

/// Issue 17: header names and static header values are checked as the engine checks them
/// (`HeaderName::from_bytes`, `HeaderValue::from_bytes`); any control character but tab
/// in a value's literal text is refused, not only a line break.
#[test]
fn regression_header_names_and_values_the_engine_would_refuse_are_refused() {
    let text = one_endpoint("headers = { \"X-A\" = \"a\\u0001b\", \"X-B\" = \"{{seq}}\\u007f\", \"X-C\" = \"a\\tb\" }\n");
    diag_at(
        &text,
        9,
        23,
        "header `X-A` has the control character U+0001",
    );
    diag_at(
        &text,
        9,
        49,
        "header `X-B` has the control character U+007F",
    );
    let e = parse(Path::new("s.toml"), &text, &env).unwrap_err();
    assert_eq!(e.0.len(), 2, "a tab is a legal header character:\n{e}");
    let long_name = "x".repeat(65_536);
    let d = diag_at(
        &one_endpoint(&format!("headers = {{ \"{long_name}\" = \"v\" }}\n")),
        9,
        65_554,
        "header name",
    );
    assert!(
        d.message.len() < 200,
        "the name is not echoed whole: {}",
        d.message.len()
    );
}

/// Issue 17: a data-file value with a control character, put into a header by a
/// template, made every request that drew its row a `check_failed` with 0 µs latency and
/// no message. Every row of every column a header uses is checked at load time, and the
/// first bad value of each column is reported at its place in the CSV file.
#[test]
fn regression_data_values_that_cannot_be_header_values_are_refused_in_the_csv() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("s.toml");
    let text =
        one_endpoint("headers = { \"X-User\" = \"u={{user}}\", \"X-Plan\" = \"{{plan}}\" }\n")
            .replace("path = \"/\"", "path = \"/u/{{path}}\"")
            .replace("[load]", "data = { file = \"users.csv\" }\n[load]");
    std::fs::write(
        dir.path().join("users.csv"),
        "user,plan,path\nu1,pro,a b\n\"u\u{1}x\",free,\"\u{1}\"\nu3,\"fr\"\"e\re\",c\nu4,\"\u{7}\",d\n",
    )
    .unwrap();
    let e = parse(&scenario, &text, &env).unwrap_err();
    let found: Vec<_> =
        e.0.iter()
            .map(|d| {
                assert!(d.file.ends_with("users.csv"), "{d}");
                assert!(d.hint.is_some(), "{d}");
                (d.line, d.column, d.message.clone())
            })
            .collect();
    assert_eq!(
        found.len(),
        2,
        "one per column, the `path` column is escaped:\n{e}"
    );
    assert_eq!((found[0].0, found[0].1), (3, 3), "{e}");
    assert!(
        found[0].2.contains("U+0001") && found[0].2.contains("X-User"),
        "{e}"
    );
    assert_eq!(
        (found[1].0, found[1].1),
        (4, 10),
        "the bare CR after an escaped quote:\n{e}"
    );
    assert!(
        found[1].2.contains("U+000D") && found[1].2.contains("2 rows"),
        "{e}"
    );

    std::fs::write(
        dir.path().join("users.csv"),
        "user,plan,path\nu1,pro,\"\u{1}\"\n",
    )
    .unwrap();
    parse(&scenario, &text, &env).unwrap_or_else(|e| panic!("{e}"));
}

/// The same for `[lists]` values a header picks.
#[test]
fn list_values_that_cannot_be_header_values_are_refused() {
    let text = one_endpoint("headers = { \"X-L\" = \"{{pick(l)}}\" }\n").replace(
        "[[endpoint]]",
        "[lists]\nl = [\"ok\", \"a\\u0001\"]\nm = [\"b\\u0001\"]\n[[endpoint]]",
    );
    diag_at(&text, 7, 14, "U+0001");
    let e = parse(Path::new("s.toml"), &text, &env).unwrap_err();
    assert_eq!(e.0.len(), 1, "list `m` is not used by a header:\n{e}");
}

/// Issue 17: a scenario name of 300 characters failed only at run time ("File name too
/// long": the run directory is `NAME-20261122T024107Z`, and a file name holds 255 bytes),
/// a NUL failed creating the directory, and any other control character in the scenario
/// name, or in an endpoint name that has budgets, made `junit.xml` unreadable XML.
#[test]
fn regression_names_that_break_the_run_directory_or_reports_are_refused() {
    let named =
        |name: &str| one_endpoint("").replace("name = \"t\"", &format!("name = \"{name}\""));
    ok(&named(&"n".repeat(200)));
    diag_at(&named(&"n".repeat(201)), 1, 8, "201 bytes");
    diag_at(&named(&"é".repeat(101)), 1, 8, "202 bytes");
    diag_at(&named("a\\u0000b"), 1, 10, "U+0000");
    diag_at(&named("a\\u001bb"), 1, 10, "U+001B");
    let endpoint =
        |name: &str| one_endpoint("").replace("name = \"a\"", &format!("name = \"{name}\""));
    diag_at(
        &endpoint("x\\u0000"),
        7,
        10,
        "endpoint name has the control character U+0000",
    );
    diag_at(&endpoint("x\\ny"), 7, 10, "a line break");
    // Endpoint names name no file: a long one runs (and reports) fine.
    ok(&endpoint(&"e".repeat(300)));
}

/// Issue 17: `${VAR}` was sent literally inside `json` bodies, even when unset. It is
/// interpolated in string values at any depth and in keys, with defaults and `$${`, and
/// a body that holds an environment value is marked secret.
#[test]
fn regression_json_bodies_interpolate_variables_at_any_depth() {
    use rand::SeedableRng;
    let s = ok(&one_endpoint(
        "json = { plain = \"${TOKEN}\", deep = { list = [\"x-${TOKEN}\", { \"${KEY:-k}\" = \"$${lit}\" }] }, n = 1, q = \"{{seq}}\" }\n",
    ));
    let body = s.endpoints[0].body.as_ref().unwrap();
    let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
    let rendered = body.render_string(&mut loadgate_scenario::RenderCtx {
        seq: 7,
        rng: &mut rng,
        row: None,
        lists: &[],
        vars: &[],
    });
    let v: serde_json::Value = serde_json::from_str(&rendered).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"plain": "tok-123", "deep": {"list": ["x-tok-123", {"k": "${lit}"}]}, "n": 1, "q": "7"})
    );
    assert!(s.endpoints[0].body_secret);
    assert!(!ok(&one_endpoint("json = { a = \"${KEY:-k}\" }\n")).endpoints[0].body_secret);
    assert!(ok(&one_endpoint("body = \"t=${TOKEN}\"\n")).endpoints[0].body_secret);
    assert!(!ok(&one_endpoint("body = \"t\"\n")).endpoints[0].body_secret);

    // Missing variables are reported where they are written: a nested value, a key.
    check_err(
        &one_endpoint("json = { a = { b = [\"ok\", \"x${NOPE_V}\"] } }\n"),
        9,
        29,
        "`NOPE_V` is not set",
    );
    check_err(
        &one_endpoint("json = { a = 1, \"k-${NOPE_K}\" = 2 }\n"),
        9,
        20,
        "`NOPE_K` is not set",
    );
    // ... also in a second endpoint written as a table with dotted keys.
    let text = format!(
        "{}[[endpoint]]\nname = \"b\"\npath = \"/\"\n[endpoint.json]\nuser = \"u\"\nnested.deep = \"${{NOPE_D}}\"\n",
        one_endpoint("")
    );
    let e = parse(Path::new("s.toml"), &text, &env).unwrap_err();
    assert_eq!(e.0.len(), 1, "{e}");
    check_err(&text, 14, 16, "`NOPE_D` is not set");
}

/// Issue 17: `[health] path` was used as written, `${VAR}` and all.
#[test]
fn regression_the_health_path_interpolates_variables() {
    let s = ok(&one_endpoint(
        "[health]\npath = \"${HEALTH_PATH:-/api/health}\"\n",
    ));
    assert_eq!(s.health.unwrap().path, "/api/health");
    check_err(
        &one_endpoint("[health]\npath = \"/${NOPE_H}\"\n"),
        10,
        10,
        "`NOPE_H` is not set",
    );
}

/// Issue 19: a target profile that is not there is reported where the scenario names it
/// (it was "cannot read target profile ..." with no file, line or column), and only for
/// the embedded target, the one that reads it.
#[test]
fn a_missing_target_profile_is_placed_in_the_scenario() {
    let text = "name = \"x\"\ntarget = \"embedded\"\ntarget_profile = \"profiles/none.toml\"\n[[endpoint]]\nname = \"a\"\npath = \"/\"\n[load]\nmodel = \"open\"\nstages = [{ duration = \"1s\", target_rps = 1 }]\n";
    check_err(text, 3, 18, "cannot read target profile");
    ok(&text.replace(
        "target = \"embedded\"",
        "target = \"https://staging.example.com\"",
    ));
}

/// Issue 19: a minimal scenario took four tries (`missing field name`, then `load`, then
/// `model`). The name defaults to the file's, the load to 10 virtual users for 10 s
/// (flags replace it), the model to what the stages say.
#[test]
fn a_minimal_scenario_needs_a_target_and_an_endpoint() {
    let s = ok("target = \"embedded\"\n[[endpoint]]\nname = \"h\"\npath = \"/\"\n");
    assert_eq!(s.name, "s");
    assert_eq!(s.load.model, LoadModel::Closed);
    assert_eq!(s.load.peak(), 10.0);
    assert_eq!(s.load.duration(), std::time::Duration::from_secs(10));
    let open = ok("target = \"embedded\"\n[[endpoint]]\nname = \"h\"\npath = \"/\"\n[load]\nstages = [{ duration = \"5s\", target_rps = 20 }]\n");
    assert_eq!(open.load.model, LoadModel::Open);
    check_err(
        "target = \"embedded\"\n[[endpoint]]\nname = \"h\"\npath = \"/\"\n[load]\nstages = [{ duration = \"5s\", target_rps = 20 }, { duration = \"5s\", vus = 2 }]\n",
        5,
        1,
        "has no `model`",
    );
}

/// Regression (third review): endpoints named `slow one` and `slow_one` shared the
/// interval log's tag, so a merge judged one with the other's seconds; `x.service` is
/// the tag of `x`'s service time (now `x.service` is tagged `x_service`), and `all`
/// names every endpoint together.
#[test]
fn endpoint_names_that_would_share_a_log_tag_are_refused() {
    let two = |a: &str, b: &str| {
        format!("target = \"embedded\"\n[[endpoint]]\nname = \"{a}\"\npath = \"/\"\n[[endpoint]]\nname = \"{b}\"\npath = \"/x\"\n")
    };
    check_err(&two("slow one", "slow_one"), 6, 8, "would share a tag");
    check_err(&two("x.service", "x_service"), 6, 8, "would share a tag");
    // A dot is escaped, so `x.ttfb` is its own endpoint, never `x`'s time to first byte
    // (review: both wrote the tag `x.ttfb`, and a recovery mixed them).
    ok(&two("x", "x.ttfb"));
    check_err(&two("all", "b"), 3, 8, "`all` is taken");
    // `global` is the scope of the budgets of all endpoints: an endpoint of that name
    // would have its budgets judged and drawn as everyone's.
    check_err(&two("a", "global"), 6, 8, "`global` is taken");
    ok(&two("slow one", "slow two"));
}

/// Issue 19: a file with `timout`, `methd` and a rate written as a string took three
/// rounds, one error each; the parser's first mistake no longer hides the next ones.
#[test]
fn structural_mistakes_are_reported_together() {
    let text = "target = \"embedded\"\n[defaults]\ntimout = \"1s\"\n[[endpoint]]\nname = \"a\"\nmethd = \"POST\"\npath = \"/\"\n[load]\nmodel = \"open\"\nstages = [{ duration = \"5s\", target_rps = \"5\" }]\n";
    let e = parse(Path::new("s.toml"), text, &env).expect_err("three mistakes");
    let at: Vec<(usize, usize)> = e.0.iter().map(|d| (d.line, d.column)).collect();
    assert_eq!(at, [(3, 1), (6, 1), (10, 43)], "{e}");
}

/// Issue 19, the rest of that file: a misspelt model, a budget without a unit and a
/// load written flat (`vus`, `duration` outside its stages) came only after the
/// structure was right. Every mistake is reported in one round, in file order, and the
/// flat load says where its figures go.
#[test]
fn structural_and_value_mistakes_are_reported_together() {
    let text = "target = \"embedded\"\n[[endpoint]]\nname = \"a\"\nmethd = \"GET\"\npath = \"/\"\nweight = \"5\"\n[load]\nmodel = \"opne\"\nvus = 5\nduration = \"10s\"\n[slo]\nbudgets = [\"p95 < 2\"]\n";
    let e = parse(Path::new("s.toml"), text, &env).expect_err("six mistakes");
    let shown = e.to_string();
    let lines: Vec<&str> = shown.lines().filter(|l| l.starts_with("s.toml:")).collect();
    let at: Vec<&str> = lines
        .iter()
        .map(|l| l.split(": ").next().unwrap())
        .collect();
    assert_eq!(
        at,
        [
            "s.toml:4:1",
            "s.toml:6:10",
            "s.toml:8:9",
            "s.toml:9:1",
            "s.toml:10:1",
            "s.toml:12:20"
        ],
        "{shown}"
    );
    assert!(shown.contains("unknown load model `opne`"), "{shown}");
    assert!(shown.contains("missing unit"), "{shown}");
    assert!(shown.contains("go in its stages"), "{shown}");
    assert!(shown.contains("without quotes"), "{shown}");
    // A flat load without a model: its figures' place is the fix, not a model (the
    // stages it lacks are those figures). An endpoint's own `timeout` is a key of its
    // own; a `connect_timeout` there points at [defaults].
    let text = "target = \"embedded\"\n[[endpoint]]\nname = \"a\"\npath = \"/\"\ntimeout = \"5s\"\nconnect_timeout = \"1s\"\n[load]\nvus = 5\nduration = \"10s\"\n";
    let e = parse(Path::new("s.toml"), text, &env).expect_err("three mistakes");
    let shown = e.to_string();
    let at: Vec<(usize, usize)> = e.0.iter().map(|d| (d.line, d.column)).collect();
    assert_eq!(at.len(), 3, "{shown}");
    assert!(!shown.contains("no `model`"), "{shown}");
    assert!(!at.iter().any(|&(line, _)| line == 5), "{shown}");
    assert!(
        shown.contains("connect_timeout goes in [defaults]"),
        "{shown}"
    );
}

/// The closed model has no schedule, so no send lag: a send-lag budget there could only
/// fail for want of data. It is refused where it is written; every other timing is taken.
#[test]
fn a_send_lag_budget_in_the_closed_model_is_refused_where_it_is_written() {
    let text = |model: &str, load: &str| {
        format!(
            "name = \"t\"\ntarget = \"http://localhost\"\n[[endpoint]]\nname = \"a\"\npath = \"/\"\n\
             [load]\nmodel = \"{model}\"\nstages = [{load}]\n[slo]\n\
             budgets = [\"ttfb_p95 < 1s\", \"connect_p99 < 50ms\", \"send_lag_p99 < 5ms\"]\n"
        )
    };
    check_err(
        &text("closed", "{ duration = \"10s\", vus = 2 }"),
        10,
        52,
        "measures send lag, which the closed model does not have",
    );
    let open = ok(&text("open", "{ duration = \"10s\", target_rps = 5 }"));
    assert_eq!(open.slo.global.len(), 3);
    // A capacity search's steps run open whatever `[load]` says: it takes them.
    let closed = loadgate_scenario::parse_with(
        Path::new("s.toml"),
        &text("closed", "{ duration = \"10s\", vus = 2 }"),
        &env,
        &loadgate_scenario::LoadOptions {
            open_load: true,
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(closed.slo.global.len(), 3);
    assert_eq!(closed.load.model, LoadModel::Closed);
}

/// Regression (review of issue 21): a `ttft_` budget on an endpoint that does not
/// stream failed "not reached: 0.00% of requests failed" (and was even called the
/// generator's: INVALID), and one on the whole run of a scenario that also has plain
/// endpoints ranked the first tokens among every request, reading the highest first
/// token as its p50. Budgets on streams are refused where no endpoint of their scope
/// streams, and a first-token budget where not every endpoint does; gaps between
/// tokens, ranked among the gaps alone, may be budgeted on the whole run.
#[test]
fn budgets_on_streams_are_refused_where_their_scope_does_not_stream() {
    let text = |global: &str, endpoint: &str, budgets: &str, second: &str| {
        format!(
            "name = \"t\"\ntarget = \"http://localhost\"\n\
             [[endpoint]]\nname = \"chat\"\npath = \"/\"\nstream = \"sse\"\n\
             [[endpoint]]\nname = \"other\"\npath = \"/\"\n{second}\
             [load]\nmodel = \"open\"\nstages = [{{ duration = \"10s\", target_rps = 5 }}]\n\
             [slo]\nbudgets = [{global}]\n[slo.endpoint.{endpoint}]\nbudgets = [{budgets}]\n"
        )
    };
    let fine = ok(&text(
        "\"itl_p99 < 1s\", \"p95 < 1s\"",
        "chat",
        "\"ttft_p95 < 1s\", \"ttft_service_p95 < 1s\", \"itl_p99 < 1s\", \"tokens_per_s_p10 > 20\"",
        "",
    ));
    assert_eq!(fine.slo.global.len() + fine.slo.endpoints.len(), 6);
    check_err(
        &text("\"ttft_p95 < 1s\"", "chat", "\"p95 < 1s\"", ""),
        14,
        13,
        "measures the first token, which endpoint `other` does not stream",
    );
    check_err(
        &text("\"tokens_per_s_p50 > 20\"", "chat", "\"p95 < 1s\"", ""),
        14,
        13,
        "measures each stream's speed, which endpoint `other` does not stream",
    );
    for budget in [
        "ttft_p95 < 1s",
        "ttft_service_p95 < 1s",
        "itl_p99 < 1s",
        "tokens_per_s_p50 > 20",
        "tpot_p50 < 50ms",
    ] {
        check_err(
            &text("", "other", &format!("\"{budget}\""), ""),
            16,
            13,
            "measures streams, and endpoint `other` does not stream",
        );
    }
    // Every endpoint streams: the whole run's first tokens are every request's.
    let all = ok(&text(
        "\"ttft_p95 < 1s\"",
        "other",
        "\"ttft_p95 < 1s\"",
        "stream = \"ndjson\"\n",
    ));
    assert_eq!(all.slo.global.len() + all.slo.endpoints.len(), 2);
}

#[test]
fn a_streamed_endpoint_loads_with_its_paths_terminator_and_timeouts() {
    use loadgate_scenario::{PathStep, StreamDone, StreamKind};
    let s = ok(&format!(
        r#"{HEAD}[defaults]
timeout = "60s"
idle_timeout = "5s"
[[endpoint]]
name = "agent"
method = "POST"
path = "/api/agent/query"
stream = "sse"
stream_content = "$.choices[*].delta.content"
stream_tokens = "$.usage.completion_tokens"
stream_done = "[DONE]"
first_byte_timeout = "10s"
[[endpoint]]
name = "health"
path = "/api/health"
"#
    ));
    let agent = &s.endpoints[0];
    let stream = agent.stream.as_ref().expect("streamed");
    assert_eq!(stream.kind, StreamKind::Sse);
    assert_eq!(stream.content.as_ref().unwrap().steps()[1], PathStep::Each);
    assert_eq!(
        stream.tokens.as_ref().unwrap().as_str(),
        "$.usage.completion_tokens"
    );
    assert_eq!(stream.done, StreamDone::Data("[DONE]".into()));
    assert_eq!(
        agent.first_byte_timeout,
        Some(std::time::Duration::from_secs(10))
    );
    // [defaults] idle_timeout applies to every endpoint that does not set its own.
    assert_eq!(agent.idle_timeout, Some(std::time::Duration::from_secs(5)));
    assert!(s.endpoints[1].stream.is_none());
    assert_eq!(
        s.endpoints[1].idle_timeout,
        Some(std::time::Duration::from_secs(5))
    );
}

#[test]
fn stream_mistakes_point_at_the_value() {
    let endpoint = |lines: &str| format!("{HEAD}[[endpoint]]\nname = \"a\"\npath = \"/\"\n{lines}");
    // HEAD is 5 lines; the endpoint's own keys start on line 9.
    for (lines, line, col, msg) in [
        (
            "stream = \"websocket\"\n",
            9,
            10,
            "unknown stream kind `websocket`",
        ),
        (
            "stream = \"sse\"\nstream_content = \"$.a[x]\"\n",
            10,
            23,
            "stream_content: json path `$.a[x]`: column 5",
        ),
        (
            "stream_done = \"[DONE]\"\n",
            9,
            15,
            "stream_done applies to a streamed response",
        ),
        (
            "idle_timeout = \"0s\"\n",
            9,
            16,
            "idle_timeout must be greater than zero",
        ),
        (
            "first_byte_timeout = \"40s\"\n",
            9,
            22,
            "is not below the request timeout 30s",
        ),
        (
            "stream = \"chunks\"\nstream_content = \"$.a\"\n",
            10,
            18,
            "raw chunks have none",
        ),
        // Raw chunks have no events: a token count or a terminator in one cannot be
        // read (they were taken and ignored).
        (
            "stream = \"chunks\"\nstream_tokens = \"$.n\"\n",
            10,
            17,
            "stream_tokens applies to events, and raw chunks have none",
        ),
        (
            "stream = \"chunks\"\nstream_done = \"[DONE]\"\n",
            10,
            15,
            "stream_done applies to events, and raw chunks have none",
        ),
        (
            "stream = \"sse\"\nchecks = { json = [{ path = \"$.a\", exists = true }] }\n",
            10,
            20,
            "a streamed body is a sequence of events",
        ),
        (
            "goodput = { ttft = \"500ms\" }\n",
            9,
            20,
            "goodput ttft and itl limits apply to a streamed response",
        ),
        (
            "goodput = { latency = \"0s\" }\n",
            9,
            23,
            "goodput latency must be greater than zero",
        ),
        ("goodput = { p95 = \"1s\" }\n", 9, 13, "unknown field `p95`"),
        (
            "[slo]\nbudgets = [\"p95 < 1s\", \"ttft_p95 < 1s\"]\n",
            10,
            25,
            "budget `ttft_p95 < 1s` measures streams, and endpoint `a` does not stream",
        ),
        (
            "[slo.endpoint.a]\nbudgets = [\"itl_p99 < 1s\"]\n",
            10,
            13,
            "and endpoint `a` does not stream",
        ),
    ] {
        check_err(&endpoint(lines), line, col, msg);
    }
}

/// Issue 22: `[tls]` paths are relative to the scenario file, not to where loadgate runs;
/// one that cannot be read, or a key without its certificate, is placed in the file.
#[test]
fn tls_paths_are_relative_to_the_scenario_and_placed_when_unreadable() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("conf/certs")).unwrap();
    for f in ["ca.pem", "client.pem", "client.key"] {
        std::fs::write(dir.path().join("conf/certs").join(f), "-----BEGIN x").unwrap();
    }
    let base = "target = \"https://staging.example.com\"\n[[endpoint]]\nname = \"a\"\npath = \"/\"\n[tls]\n";
    let text = format!("{base}ca_file = \"certs/ca.pem\"\ncert_file = \"certs/client.pem\"\nkey_file = \"certs/client.key\"\n");
    let scenario = dir.path().join("conf/s.toml");
    let s = parse(&scenario, &text, &env).unwrap_or_else(|e| panic!("{e}"));
    let certs = dir.path().join("conf/certs");
    assert_eq!(s.tls.ca_file, Some(certs.join("ca.pem")));
    assert_eq!(s.tls.cert_file, Some(certs.join("client.pem")));
    assert_eq!(s.tls.key_file, Some(certs.join("client.key")));
    // From the current folder these paths are not there: placed, with the resolved path.
    check_err(
        &format!("{base}ca_file = \"certs/ca.pem\"\n"),
        6,
        11,
        "cannot read [tls] ca_file certs/ca.pem",
    );
    check_err(
        &format!("{base}key_file = \"k.pem\"\n"),
        6,
        12,
        "key_file without cert_file",
    );
    check_err(&format!("{base}ca = \"x.pem\"\n"), 6, 1, "unknown field");
    assert_eq!(ok(base).tls, loadgate_scenario::TlsPaths::default());
}

/// Issue 22: `redirects = N` in `[defaults]` and per endpoint: 10 by default, 0 turns
/// following off, the endpoint's own wins; a negative, fractional or huge count is
/// refused where it is written, with the fix.
#[test]
fn redirects_default_to_ten_and_are_checked_where_written() {
    assert_eq!(ok(&one_endpoint("")).endpoints[0].redirects, 10);
    let off = one_endpoint("").replace("[[endpoint]]", "[defaults]\nredirects = 0\n[[endpoint]]");
    assert_eq!(ok(&off).endpoints[0].redirects, 0);
    let own = format!("{off}redirects = 3\n");
    assert_eq!(ok(&own).endpoints[0].redirects, 3);
    let d = diag_at(
        &one_endpoint("redirects = -1\n"),
        9,
        13,
        "redirects must be a whole number from 0 to 50",
    );
    assert!(
        d.hint.as_deref().unwrap_or("").contains("redirects = 0"),
        "{d}"
    );
    check_err(&one_endpoint("redirects = 51\n"), 9, 13, "not 51");
    let huge =
        one_endpoint("").replace("[[endpoint]]", "[defaults]\nredirects = 1000\n[[endpoint]]");
    check_err(&huge, 7, 13, "not 1000");
    // Not a number at all: the file's own type error, where it is.
    let e = parse(
        Path::new("s.toml"),
        &one_endpoint("redirects = \"ten\"\n"),
        &env,
    )
    .unwrap_err();
    assert!(e.to_string().contains("s.toml:9"), "{e}");
}

/// A flow no arrival starts: each of its budgets, its steps' and its polls' too.
const IDLE_FLOW: &str = "name = \"t\"\ntarget = \"embedded\"\n[[endpoint]]\nname = \"a\"\npath = \"/\"\n[[endpoint]]\nname = \"b\"\npath = \"/b\"\nweight = 0\n[[flow]]\nname = \"f\"\nweight = 0\n[[flow.step]]\nname = \"s\"\npath = \"/s\"\n[[flow]]\nname = \"g\"\n[[flow.step]]\nendpoint = \"b\"\n[load]\nmodel = \"open\"\nstages = [{ duration = \"1s\", target_rps = 1 }]\n";

/// A budget on a row that gets no arrival (weight 0) can never be judged: no data
/// fails it (a throughput floor too), a rate ceiling on nothing holds trivially.
/// Endpoints and flows alike are refused where the budget is written.
#[test]
fn a_budget_on_a_weightless_flow_or_endpoint_is_refused_where_it_is_written() {
    let text = format!("{IDLE_FLOW}[slo.flow.f]\nbudgets = [\"throughput > 5rps\"]\n");
    check_err(&text, 24, 13, "flow `f` has weight 0: no arrival starts it, so its budget `throughput > 5rps` can never be judged");
    let e = parse(Path::new("s.toml"), &text, &env)
        .unwrap_err()
        .to_string();
    assert!(e.contains("hint: give flow `f` a weight"), "{e}");
    let text = format!("{IDLE_FLOW}[slo.endpoint.s]\nbudgets = [\"p95 < 1s\"]\n");
    check_err(&text, 24, 13, "step `s` is in flow `f`, which has weight 0");
    // A weightless endpoint a flow sends: the budget belongs on the step's row.
    let text = format!("{IDLE_FLOW}[slo.endpoint.b]\nbudgets = [\"throughput < 5rps\"]\n");
    check_err(
        &text,
        24,
        13,
        "endpoint `b` has weight 0: no arrival sends it",
    );
    let e = parse(Path::new("s.toml"), &text, &env)
        .unwrap_err()
        .to_string();
    assert!(e.contains("put the budget under [slo.endpoint.g_b]"), "{e}");
    // A table written item: the error is at the item.
    let text = format!(
        "{IDLE_FLOW}[slo.endpoint.b]\nbudgets = [{{ expr = \"p95 < 1s\", abort_on_fail = true }}]\n"
    );
    check_err(&text, 24, 12, "endpoint `b` has weight 0");
    // The step's row is sent: its budget stands, as does the weighted flow's.
    let s = ok(&format!(
        "{IDLE_FLOW}[slo.endpoint.g_b]\nbudgets = [\"throughput > 0.5rps\"]\n[slo.flow.g]\nbudgets = [\"p95 < 1s\"]\n"
    ));
    assert_eq!(s.slo.endpoints.len(), 2);
}
