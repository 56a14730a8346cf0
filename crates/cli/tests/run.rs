//! `loadgate run` end to end: exit codes, the run directory, budgets and flags, secrets,
//! runs of a URL, and stopping a run (SIGINT, SIGTERM).
//!
//! Runs take a lock so they do not compete for the two cores (which would make sends
//! late and the runs rightly invalid).

mod common;

use common::*;

#[test]
fn a_passing_run_exits_0_and_writes_its_run_directory() {
    let c = Case::new(&scenario(
        OPEN_2S,
        "budgets = [\"p95 < 2s\", \"error_rate < 1%\", \"throughput > 40rps\"]",
    ));
    let o = c.loadgate(&["run", "{s}", "--out", "{out}", "-q"], &[]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(text(&o).contains("verdict: PASS"), "{}", text(&o));
    let s = c.summary();
    assert_eq!(s["schema_version"], 5);
    assert_eq!(s["verdict"], "pass");
    assert_eq!(s["overall"]["requests"], 100);
    assert_eq!(s["slo"].as_array().unwrap().len(), 3);
    assert!(s["drain_s"].as_f64().is_some_and(|d| d >= 0.0));
    assert!(s["rate"]["achieved_ratio"].as_f64().unwrap() > 0.95);
    // Real output validates against the published schema.
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../schemas/summary.schema.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema is a valid JSON Schema");
    let errors: Vec<String> = validator
        .iter_errors(&s)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "summary.json does not match the schema: {errors:?}"
    );
    // The schema is not vacuous: a wrong type is rejected.
    let mut broken = s.clone();
    broken["overall"]["requests"] = serde_json::json!("many");
    assert!(!validator.is_valid(&broken));
    // CI formats are well-formed XML, and every chart is a well-formed SVG document.
    for f in std::fs::read_dir(c.out())
        .unwrap()
        .map(|e| e.unwrap().path())
    {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".svg") || name == "junit.xml" {
            let text = std::fs::read_to_string(&f).unwrap();
            roxmltree::Document::parse(&text)
                .unwrap_or_else(|e| panic!("{name} is not well-formed XML: {e}"));
        }
    }
    for f in [
        "report.html",
        "junit.xml",
        "summary.md",
        "latency.svg",
        "throughput.svg",
        "spectrum.svg",
    ] {
        assert!(c.out().join(f).exists(), "{f} was not rendered");
    }
    for f in ["histograms.json", "timeseries.jsonl", "intervals.hlog"] {
        assert!(c.out().join(f).metadata().unwrap().len() > 0, "{f}");
    }
    // No temp files are left behind.
    let leftovers: Vec<_> = std::fs::read_dir(c.out())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".partial"))
        .collect();
    assert!(leftovers.is_empty());
    let lines = std::fs::read_to_string(c.out().join("timeseries.jsonl")).unwrap();
    assert!(lines.lines().count() >= 2);
    serde_json::from_str::<serde_json::Value>(lines.lines().next().unwrap()).unwrap();
}

#[test]
fn a_breached_budget_exits_1() {
    let c = Case::new(&scenario(OPEN_2S, "budgets = [\"p95 < 2s\"]"));
    let o = c.loadgate(
        &["run", "{s}", "--out", "{out}", "-q", "--slo", "p95 < 100us"],
        &[],
    );
    assert_eq!(code(&o), 1, "{}", text(&o));
    let s = c.summary();
    assert_eq!(s["verdict"], "fail");
    // --slo replaced the file's p95 budget instead of adding a second one (the other
    // row is the implicit error budget).
    assert_eq!(s["slo"].as_array().unwrap().len(), 2);
    assert_eq!(s["slo"][0]["expr"], "p95 < 100us");
    assert_eq!(s["slo"][0]["pass"], false);
    assert_eq!(s["slo"][1]["implicit"], true);
    assert!(
        text(&o).contains("verdict: FAIL (breached: p95 < 100us (global): "),
        "the verdict names the breach: {}",
        text(&o)
    );
}

#[test]
fn abort_on_fail_stops_early_with_the_breach_code() {
    let c = Case::new(&scenario(
        "model = \"open\"\nstages = [{ duration = \"20s\", target_rps = 20 }]\nmax_late_ratio = 0.5",
        "budgets = [{ expr = \"p50 < 1us\", abort_on_fail = true, abort_delay = \"1s\" }]",
    ));
    let o = c.loadgate(&["run", "{s}", "--out", "{out}", "-q"], &[]);
    assert_eq!(code(&o), 1, "{}", text(&o));
    let s = c.summary();
    let measured = s["measured_s"].as_f64().unwrap();
    assert!(
        measured < 5.0,
        "stopped after {measured} s of a 20 s profile"
    );
    assert_eq!(s["stop"], "aborted");
    // The budget watch's reason, as the engine's own abort check worded it.
    let detail = "abort_on_fail budget `p50 < 1us` (global) was breached";
    assert_eq!(s["stop_detail"], detail);
    assert!(
        text(&o).contains(&format!("stopped early: {detail}")),
        "{}",
        text(&o)
    );
}

#[test]
fn a_closed_model_run_passes() {
    let c = Case::new(&scenario(
        "model = \"closed\"\nstages = [{ duration = \"2s\", vus = 3 }]\nthink_time = \"10ms\"\nmax_late_ratio = 0.5",
        "budgets = [\"p99 < 1s\"]",
    ));
    let o = c.loadgate(&["run", "{s}", "--out", "{out}", "-q"], &[]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let s = c.summary();
    assert_eq!(s["model"], "closed");
    assert!(s["overall"]["requests"].as_u64().unwrap() > 100);
    assert!(s["rate"].is_null());
    assert!(s["pauses"].is_null(), "no pause meter without a schedule");
}

/// A closed-model VU follows the mix whatever worker it runs on: one VU on two workers
/// with two endpoints of weight 1 sent only the first (its worker's request numbers
/// were all even), and three VUs two thirds of the first.
#[test]
fn a_closed_model_vu_follows_the_mix_on_any_worker() {
    for vus in [1, 3] {
        let written = scenario(
            &format!("model = \"closed\"\nstages = [{{ duration = \"1s\", vus = {vus} }}]\nthink_time = \"20ms\""),
            "",
        )
        .replace(
            "[load]",
            "[[endpoint]]\nname = \"root\"\npath = \"/\"\n[load]",
        );
        let c = Case::new(&written);
        let o = c.loadgate(
            &["run", "{s}", "--out", "{out}", "-q", "--workers", "2"],
            &[],
        );
        assert_eq!(code(&o), 0, "{}", text(&o));
        let s = c.summary();
        let (a, b) = (
            row(&s, "analyze")["requests"].as_u64().unwrap(),
            row(&s, "root")["requests"].as_u64().unwrap(),
        );
        // Each worker alternates: at most one apart per worker.
        assert!(a.abs_diff(b) <= 2, "{vus} VUs: analyze {a}, root {b}");
        assert!(a + b >= 10, "{vus} VUs: {a} + {b}");
    }
}

#[test]
fn an_invalid_scenario_exits_2_with_file_line_column() {
    let c = Case::new(&scenario(OPEN_2S, "budgets = [\"p95 < 2 fortnights\"]"));
    let o = c.loadgate(&["run", "{s}", "--out", "{out}"], &[]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(
        text(&o).contains("s.toml:15:21: invalid SLO budget"),
        "{}",
        text(&o)
    );
    assert_never_started(&c);
}

#[test]
fn bad_flags_are_usage_errors_not_panics() {
    let c = Case::new(&scenario(OPEN_2S, ""));
    let o = c.loadgate(&["run", "{s}", "--slo", "p95 <"], &[]);
    assert_eq!(code(&o), 2);
    assert!(text(&o).contains("--slo 'p95 <'"), "{}", text(&o));
    let o = c.loadgate(&["run", "{s}", "--rps", "10", "--vus", "2"], &[]);
    assert_eq!(code(&o), 2, "conflicting flags: {}", text(&o));
    let o = c.loadgate(&["run", "{s}", "--target", "ftp://x"], &[]);
    assert_eq!(code(&o), 2);
    let o = c.loadgate(&["run", "{s}", "--duration", "soon"], &[]);
    assert_eq!(code(&o), 2);
    assert!(!text(&o).contains("panicked"));
    for (flag, value, says) in [
        ("--segment", "5/4", "between 1 and 4"),
        ("--segment", "1/8:3/8", "1/4 boundary"),
        ("--segment", "half", "hint: write I/N"),
        ("--start-at", "tomorrow", "RFC 3339"),
        ("--start-at", "2020-01-01T00:00:00Z", "that time passed"),
        (
            "--start-at",
            "2999-01-01T00:00:00Z",
            "more than a day ahead",
        ),
    ] {
        let o = c.loadgate(&["run", "{s}", "--out", "{out}", flag, value], &[]);
        assert_eq!(code(&o), 2, "{flag} {value}: {}", text(&o));
        assert!(text(&o).contains(says), "{flag} {value}: {}", text(&o));
        assert_never_started(&c);
    }
    // Issue 19 (a new user's session): each message names the flag and says what fits.
    for (args, says) in [
        (
            &["run", "{s}", "-d", "10"][..],
            "it has no unit; write e.g. 30s",
        ),
        (
            &["run", "{s}", "--slo", "P95 < 2s"],
            "metric names are lower case: `p95`",
        ),
        (
            &["run", "{s}", "--wait-healthy", "api/health"],
            "must start with `/`",
        ),
        (
            &["run", "127.0.0.1:9/api/health"],
            "give the scheme: http://127.0.0.1:9/api/health",
        ),
        (
            &[
                "run",
                "http://127.0.0.1:9/x",
                "-H",
                "Authorization: Bearer ${LG_UNSET_19}",
            ],
            "-H/--header: environment variable `LG_UNSET_19` is not set",
        ),
    ] {
        let o = c.loadgate(args, &[]);
        assert_eq!(code(&o), 2, "{args:?}: {}", text(&o));
        assert!(text(&o).contains(says), "{args:?}: {}", text(&o));
        assert!(!text(&o).contains("(command line)"), "{}", text(&o));
        assert_never_started(&c);
    }
    // `10sec` is a duration in a flag, so it is one in a budget too.
    assert!(loadgate_slo::parse("p95 < 2sec").is_ok());
    std::fs::write(c.dir.path().join("file"), "").unwrap();
    let o = c.loadgate(&["run", "{s}", "--out", "file/run"], &[]);
    assert_eq!(code(&o), 7, "unwritable output: {}", text(&o));
    assert!(
        text(&o).contains("cannot write the run directory"),
        "{}",
        text(&o)
    );
}

#[test]
fn secrets_never_reach_outputs() {
    let target = loadgate_target::loopback(FAST_PROFILE);
    let url = format!("http://admin:hunter2-pw@{}", target.addr());
    let c = Case::new(
        &scenario(OPEN_2S, "budgets = [\"p95 < 2s\"]")
            .replace("target = \"embedded\"", "target = \"${URL}\"")
            .replace(
                "[[endpoint]]",
                "[defaults]\nheaders = { \"X-Token\" = \"${LG_TOKEN}\" }\n[[endpoint]]",
            ),
    );
    let o = c.loadgate(
        &["run", "{s}", "--out", "{out}"],
        &[("LG_TOKEN", "tok-s3cr3t-value"), ("URL", &url)],
    );
    assert_eq!(code(&o), 0, "{}", text(&o));
    let mut all = text(&o);
    for f in std::fs::read_dir(c.out()).unwrap() {
        all.push_str(&String::from_utf8_lossy(
            &std::fs::read(f.unwrap().path()).unwrap(),
        ));
    }
    for secret in ["tok-s3cr3t-value", "hunter2-pw", "admin:"] {
        assert!(!all.contains(secret), "`{secret}` leaked");
    }
    assert_eq!(c.summary()["target"], format!("http://{}", target.addr()));
}

#[test]
fn sigint_stops_the_run_and_writes_everything_measured() {
    let c = Case::new(&scenario(
        "model = \"open\"\nstages = [{ duration = \"30s\", target_rps = 50 }]\nmax_late_ratio = 0.5",
        "budgets = [\"p95 < 2s\"]",
    ));
    let (_serial, child) = start_run(&c, &[], 2500);
    sigint(&child);
    let (o, after) = wait_bounded(child, std::time::Duration::from_secs(20));
    assert_eq!(code(&o), 130, "{}", text(&o));
    assert!(after.as_secs() < 10, "took {after:?} of a 30 s profile");
    assert!(text(&o).contains("interrupted"), "{}", text(&o));
    let s = c.summary();
    assert_eq!(s["stop"], "interrupted");
    assert!(
        s["overall"]["requests"].as_u64().unwrap() >= 50,
        "{}",
        s["overall"]
    );
    assert_eq!(
        s["abandoned"], 0,
        "fast requests all finished within the grace period"
    );
    for f in [
        "report.html",
        "junit.xml",
        "summary.md",
        "histograms.json",
        "timeseries.jsonl",
        "intervals.hlog",
    ] {
        assert!(c.out().join(f).exists(), "{f} missing");
    }
    // The streamed files, written on threads of their own, lost no second at the stop:
    // every second in order, holding every request the summary counts, and a log line
    // (all endpoints, untagged) for each.
    let read = |f: &str| std::fs::read_to_string(c.out().join(f)).unwrap();
    let rows: Vec<serde_json::Value> = read("timeseries.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let seconds: Vec<u64> = rows.iter().map(|r| r["t"].as_u64().unwrap()).collect();
    assert_eq!(seconds, (0..rows.len() as u64).collect::<Vec<_>>());
    let completed: u64 = rows.iter().map(|r| r["completed"].as_u64().unwrap()).sum();
    assert_eq!(completed, s["overall"]["requests"].as_u64().unwrap());
    let untagged = read("intervals.hlog")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with('"') && !l.starts_with("Tag="))
        .count();
    assert_eq!(untagged, rows.len());
}

#[test]
fn a_second_sigint_stops_waiting_for_in_flight_requests() {
    let mut s = scenario(
        "model = \"open\"\nstages = [{ duration = \"30s\", target_rps = 20 }]\nmax_late_ratio = 0.5",
        "",
    );
    s = s.replace("[[endpoint]]", "[defaults]\ntimeout = \"60s\"\n[[endpoint]]\nname = \"hang\"\npath = \"/hang\"\n[[endpoint]]");
    let c = Case::new(&s);
    c.profile(&format!("{FAST_PROFILE}\n[[route]]\npath = \"/hang\"\nlatency = {{ dist = \"fixed\", value = \"50s\" }}\n"));
    let (_serial, child) = start_run(&c, &["--grace", "60s"], 2000);
    sigint(&child);
    std::thread::sleep(std::time::Duration::from_millis(700));
    sigint(&child);
    let (o, after) = wait_bounded(child, std::time::Duration::from_secs(20));
    assert_eq!(code(&o), 130, "{}", text(&o));
    assert!(
        after.as_secs() < 8,
        "a second Ctrl-C must not wait for 50 s requests: {after:?}"
    );
    let s = c.summary();
    assert_eq!(s["stop"], "interrupted");
    assert!(
        s["abandoned"].as_u64().unwrap() > 0,
        "the hanging requests were given up on"
    );
    assert!(c.out().join("report.html").exists());
}

#[test]
fn sigterm_stops_the_run_like_ctrl_c() {
    let c = Case::new(&scenario(
        "model = \"open\"\nstages = [{ duration = \"30s\", target_rps = 20 }]\nmax_late_ratio = 0.5",
        "",
    ));
    let (_serial, child) = start_run(&c, &["--no-report"], 1500);
    signal(&child, "-TERM");
    let (o, after) = wait_bounded(child, std::time::Duration::from_secs(20));
    assert_eq!(code(&o), 130, "{}", text(&o));
    assert!(after.as_secs() < 10);
    assert_eq!(c.summary()["stop"], "interrupted");
}

/// `--connections N`: a fixed pool, whatever the load asks for. The target also sees the
/// one connection of the check before the load (it sends no request).
#[test]
fn a_fixed_pool_opens_the_connections_it_was_given_and_no_more() {
    let target = loadgate_target::loopback(
        "[[route]]\npath = \"/\"\nlatency = { dist = \"fixed\", value = \"5ms\" }\nresponse = '{\"status\":\"ok\"}'\n",
    );
    let c = get_root_case(
        "model = \"closed\"\nstages = [{ duration = \"2s\", vus = 8 }]\nmax_late_ratio = 0.5",
        "budgets = [\"error_rate < 1%\"]",
        "",
    );
    let o = c.loadgate(
        &[
            "run",
            "{s}",
            "--out",
            "{out}",
            "-q",
            "--target",
            &target.base_url(),
            "--connections",
            "2",
        ],
        &[],
    );
    assert_eq!(code(&o), 0, "{}", text(&o));
    let s = c.summary();
    assert_eq!(s["overall"]["connects"], 2, "{}", s["overall"]);
    assert_eq!(target.accepted(), 3);
    assert!(
        text(&o).contains("connections opened in the measured phase: 2,"),
        "{}",
        text(&o)
    );
}

/// Issue 19: `loadgate run URL` as users of oha, hey and wrk expect: `-d`, `-c` (closed
/// loop) or `--rps` (open model), `-m`, `-H`, `--json`/`--body` and `--slo`, with the
/// same tables, verdict and run directory as a scenario.
#[test]
fn a_url_runs_without_a_scenario_file() {
    let target = loadgate_target::loopback(FAST_PROFILE);
    let c = Case::new("");
    let url = format!("{}/api/health", target.base_url());
    let o = c.loadgate(
        &["run", &url, "-d", "2s", "-c", "2", "--out", "{out}", "-q"],
        &[],
    );
    assert_eq!(code(&o), 0, "{}", text(&o));
    let s = c.summary();
    assert_eq!(s["model"], "closed");
    assert_eq!(s["endpoints"][0]["name"], "GET /api/health");
    assert!(s["overall"]["requests"].as_u64().unwrap() > 0);
    std::fs::remove_dir_all(c.out()).unwrap();

    let url = format!("{}/api/intelligence/analyze", target.base_url());
    let o = c.loadgate(
        &[
            "run",
            &url,
            "-m",
            "post",
            "--json",
            r#"{"userId": "u-1"}"#,
            "-H",
            "X-Token: ${LG_TOK}",
            "--rps",
            "20",
            "-d",
            "2s",
            "--slo",
            "p95 < 2s",
            "--slo",
            "error_rate < 1%",
            "--out",
            "{out}",
            "-q",
        ],
        &[("LG_TOK", "tok-from-env")],
    );
    assert_eq!(code(&o), 0, "{}", text(&o));
    let s = c.summary();
    assert_eq!(s["model"], "open");
    assert_eq!(
        s["overall"]["outcomes"]["success"], s["overall"]["requests"],
        "the JSON body was sent as JSON"
    );
    assert_eq!(s["slo"].as_array().unwrap().len(), 2, "{}", s["slo"]);

    // Flags of a URL run are refused with a scenario file, and a bad header is explained.
    let c = Case::new(&scenario(OPEN_2S, ""));
    let o = c.loadgate(&["run", "{s}", "-m", "POST"], &[]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(
        text(&o).contains("--method applies to a URL run"),
        "{}",
        text(&o)
    );
    let o = c.loadgate(&["run", &url, "-H", "no colon"], &[]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(text(&o).contains("expected `Name: value`"), "{}", text(&o));
}

/// Issue 19: a result for scripts: `--format json` writes the summary.json document on
/// stdout, the tables and verdict on stderr, and exits as the run does.
#[test]
fn format_json_prints_the_summary_document_on_stdout() {
    let c = Case::new(&scenario(OPEN_2S, "budgets = [\"p95 < 1us\"]"));
    let o = c.loadgate(
        &["run", "{s}", "--out", "{out}", "-q", "--format", "json"],
        &[],
    );
    assert_eq!(code(&o), 1, "{}", text(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("stdout is one JSON document ({e}): {}", text(&o)));
    assert_eq!(doc["verdict"], "fail");
    assert_eq!(doc, c.summary(), "the same document as summary.json");
    assert!(String::from_utf8_lossy(&o.stderr).contains("verdict: FAIL"));
}

/// `summary.json` counts the responses by the protocol they came over, per endpoint and
/// overall, HTTP/1.1 and h2 (h2c against the embedded target); an endpoint whose body a
/// check reads counts its decoded bytes beside the wire bytes (the embedded target does
/// not compress: the same); the report's key facts name the protocol.
#[test]
fn summary_counts_responses_by_protocol() {
    for (http, used, unused) in [("http1", "HTTP/1.1", "h2"), ("http2", "h2", "HTTP/1.1")] {
        let s = scenario(OPEN_2S, "").replace(
            "[[endpoint]]",
            &format!("[defaults]\nhttp = \"{http}\"\n[[endpoint]]"),
        );
        let c = Case::new(&s);
        let o = c.loadgate(&["run", "{s}", "--out", "{out}", "-q"], &[]);
        assert_eq!(code(&o), 0, "{http}: {}", text(&o));
        let s = c.summary();
        for part in [&s["overall"], &s["endpoints"][0]] {
            assert_eq!(part["protocols"][used], 100, "{http}: {part}");
            assert_eq!(part["protocols"][unused], 0, "{http}: {part}");
            assert!(part["bytes"].as_u64().unwrap() > 0, "{http}: {part}");
            assert_eq!(part["decoded_bytes"], part["bytes"], "{http}: {part}");
        }
        let report = std::fs::read_to_string(c.out().join("report.html")).unwrap();
        assert!(
            report.contains(&format!("responses over {used} 100")),
            "{http}: the key facts name the protocol"
        );
    }
}
