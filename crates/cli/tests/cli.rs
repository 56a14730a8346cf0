//! The `loadgate` binary end to end: exit codes, run directory, secrets.
//!
//! Runs take a lock so they do not compete for the two cores (which would make sends
//! late and the runs rightly invalid).

mod common;

use std::process::{Command, Output};

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
    assert_eq!(s["schema_version"], 2);
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
fn an_overdriven_generator_makes_the_run_invalid_not_passing() {
    // 100 rps against a 500 ms route with at most 4 requests in flight: most arrivals
    // cannot be sent. The budgets would pass on what was measured; the run must not.
    let mut text_s = scenario(
        "model = \"open\"\nstages = [{ duration = \"2s\", target_rps = 100 }]\nmax_in_flight = 4",
        "budgets = [\"p95 < 2s\"]",
    );
    text_s = text_s
        .replace("path = \"/api/intelligence/analyze\"", "path = \"/slow\"")
        .replace("method = \"POST\"", "method = \"GET\"")
        .replace(
            "checks = { json = [{ path = \"$.status\", equals = \"ok\" }] }",
            "",
        );
    let c = Case::new(&text_s);
    let o = c.loadgate(&["run", "{s}", "--out", "{out}", "-q"], &[]);
    assert_eq!(code(&o), 3, "{}", text(&o));
    let s = c.summary();
    assert_eq!(s["verdict"], "invalid");
    assert_eq!(s["slo"][0]["pass"], true, "the budget itself held");
    let reasons = s["invalid_reasons"].to_string();
    assert!(reasons.contains("max_in_flight"), "{reasons}");
    assert!(s["rate"]["dropped"].as_u64().unwrap() > 100);
}

#[test]
fn abort_on_fail_stops_early_with_the_breach_code() {
    let c = Case::new(&scenario(
        "model = \"open\"\nstages = [{ duration = \"20s\", target_rps = 20 }]",
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
        "model = \"closed\"\nstages = [{ duration = \"2s\", vus = 3 }]\nthink_time = \"10ms\"",
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
fn validate_reports_every_error_and_sends_nothing() {
    let c = Case::new("name = \"t\"\ntarget = \"embedded\"\n[[endpoint]]\nname = \"a\"\npath = \"x\"\n[load]\nmodel = \"open\"\nstages = [{ duration = \"soon\", target_rps = 5 }]\n[slo]\nbudgets = [\"p95 < 2\"]\n");
    let o = c.loadgate(&["validate", "{s}"], &[]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    let t = text(&o);
    for want in ["s.toml:5:8:", "s.toml:8:24:", "s.toml:10:20:"] {
        assert!(t.contains(want), "missing {want} in:\n{t}");
    }
    let good = Case::new(&scenario(OPEN_2S, ""));
    let o = good.loadgate(&["validate", "{s}"], &[]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(text(&o).contains("ok: scenario `t`"));
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
fn a_target_that_never_becomes_healthy_exits_4() {
    let c = Case::new(&scenario(OPEN_2S, ""));
    let o = c.loadgate(
        &[
            "run",
            "{s}",
            "--out",
            "{out}",
            "--wait-healthy",
            "/sick",
            "--health-timeout",
            "1s",
        ],
        &[],
    );
    assert_eq!(code(&o), 4, "{}", text(&o));
    assert!(text(&o).contains("status 503"), "{}", text(&o));
    let o = c.loadgate(
        &[
            "run",
            "{s}",
            "--out",
            "{out}",
            "-q",
            "--wait-healthy",
            "/api/health",
        ],
        &[],
    );
    assert_eq!(code(&o), 0, "{}", text(&o));
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
fn every_shipped_scenario_validates() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios");
    let mut files: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 8, "{files:?}");
    let o = Command::new(env!("CARGO_BIN_EXE_loadgate"))
        .arg("validate")
        .args(&files)
        .env("TARGET_URL", "https://staging.example.com")
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", text(&o));
    // Every embedded-target profile they name loads too.
    for f in std::fs::read_dir(root.join("profiles")).unwrap() {
        let p = f.unwrap().path();
        loadgate_target::Profile::load(&p).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn the_scenario_health_table_waits_before_load() {
    let mut s = scenario(OPEN_2S, "");
    s = s.replace(
        "[load]",
        "[health]\npath = \"/sick\"\ntimeout = \"1s\"\n[load]",
    );
    let c = Case::new(&s);
    let o = c.loadgate(&["run", "{s}", "--out", "{out}", "-q"], &[]);
    assert_eq!(code(&o), 4, "{}", text(&o));
}

/// A 2 s, 100 rps run against a route with a fixed latency, into `dir/out`.
fn fixed_latency_run(dir: &std::path::Path, ms: u32, out: &str, extra: &[&str]) -> Output {
    let profile = dir.join(format!("p{ms}.toml"));
    std::fs::write(
        &profile,
        format!("[[route]]\npath = \"/\"\nlatency = {{ dist = \"fixed\", value = \"{ms}ms\" }}\n"),
    )
    .unwrap();
    let scenario = dir.join(format!("s{ms}.toml"));
    std::fs::write(
        &scenario,
        format!("name = \"c\"\ntarget = \"embedded\"\ntarget_profile = \"p{ms}.toml\"\n[[endpoint]]\nname = \"root\"\npath = \"/\"\n[load]\nmodel = \"open\"\nstages = [{{ duration = \"2s\", target_rps = 100 }}]\nmax_late_ratio = 0.5\n[slo]\nbudgets = [\"p95 < 1s\"]\n"),
    )
    .unwrap();
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    Command::new(env!("CARGO_BIN_EXE_loadgate"))
        .current_dir(dir)
        .args(["run", scenario.to_str().unwrap(), "-q", "--out", out])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn compare_passes_an_identical_pair_and_fails_a_30_percent_slower_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(code(&fixed_latency_run(d, 20, "base", &[])), 0);
    let loadgate = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_loadgate"))
            .current_dir(d)
            .args(args)
            .output()
            .unwrap()
    };

    let same = loadgate(&["compare", "base", "base/summary.json", "--out", "cmp-same"]);
    assert_eq!(code(&same), 0, "{}", text(&same));
    assert!(text(&same).contains("no regression"));

    // +30% latency, found by `run --baseline` and by `compare`.
    let slow = fixed_latency_run(d, 26, "slow", &["--baseline", "base"]);
    assert_eq!(code(&slow), 5, "{}", text(&slow));
    assert!(text(&slow).contains("verdict: REGRESSION"));
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("slow/summary.json")).unwrap()).unwrap();
    assert_eq!(summary["verdict"], "regression");
    let html = std::fs::read_to_string(d.join("slow/report.html")).unwrap();
    assert!(
        html.contains("id=\"baseline\"") && html.contains("baseline p95"),
        "deltas and overlay in the report"
    );
    let c = loadgate(&["compare", "base", "slow", "--budget", "p95:+10%"]);
    assert_eq!(code(&c), 5, "{}", text(&c));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("slow/compare.json")).unwrap()).unwrap();
    assert_eq!(json["regression"], true);
    assert!(json["distributions"][0]["differ"].as_bool().unwrap());
    // A generous budget lets the same pair through.
    let c = loadgate(&["compare", "base", "slow", "--budget", "p95:+50%"]);
    assert_eq!(code(&c), 0, "{}", text(&c));

    // Bad input is a usage error, before any traffic.
    let c = loadgate(&["compare", "base", "slow", "--budget", "p95:10%"]);
    assert_eq!(code(&c), 2);
    assert!(text(&c).contains("needs a sign"), "{}", text(&c));
    let o = fixed_latency_run(d, 20, "never", &["--baseline", "nope"]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(
        !d.join("never").exists(),
        "no traffic was sent for a missing baseline"
    );
}

#[test]
fn sigint_stops_the_run_and_writes_everything_measured() {
    let c = Case::new(&scenario(
        "model = \"open\"\nstages = [{ duration = \"30s\", target_rps = 50 }]",
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
fn a_stopped_generator_process_is_an_invalid_run_that_names_the_pause() {
    // SIGSTOP holds every thread of the process, as a host that deschedules the machine
    // does: the arrivals due meanwhile go out late. The pause meter must see the pause,
    // the run must be invalid, and the reason must say the pause alone explains them.
    // (A closed-model run has no meter: see `a_closed_model_run_passes`.)
    let c = Case::new(&scenario(
        "model = \"open\"\nstages = [{ duration = \"4s\", target_rps = 200 }]\nmax_late_ratio = 0.01",
        "budgets = [\"p95 < 2s\"]",
    ));
    // Well into the 4 s schedule (the embedded target starts in milliseconds).
    let (_serial, child) = start_run(&c, &[], 1500);
    signal(&child, "-STOP");
    std::thread::sleep(std::time::Duration::from_millis(300));
    signal(&child, "-CONT");
    let (o, _) = wait_bounded(child, std::time::Duration::from_secs(30));
    assert_eq!(code(&o), 3, "{}", text(&o));
    let s = c.summary();
    assert_eq!(s["verdict"], "invalid");
    let pauses = &s["pauses"];
    assert!(pauses["count"].as_u64().unwrap() >= 1, "{pauses}");
    assert!(pauses["max_us"].as_u64().unwrap() >= 290_000, "{pauses}");
    assert_eq!(pauses["threshold_us"], 1000, "the late tolerance");
    let reasons = s["invalid_reasons"].to_string();
    assert!(reasons.contains("behind schedule"), "{reasons}");
    assert!(
        reasons.contains("the machine kept loadgate from running"),
        "{reasons}"
    );
    assert!(reasons.contains("which alone makes about"), "{reasons}");
    assert!(text(&o).contains("generator pauses: "), "{}", text(&o));
    // The second it ended in carries it in the time series, and the report says it.
    let rows: Vec<serde_json::Value> = std::fs::read_to_string(c.out().join("timeseries.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let worst = rows
        .iter()
        .map(|r| r["pauses"]["max_us"].as_u64().unwrap())
        .max()
        .unwrap();
    assert_eq!(worst, pauses["max_us"].as_u64().unwrap(), "{rows:?}");
    let html = std::fs::read_to_string(c.out().join("report.html")).unwrap();
    assert!(
        html.contains("Generator pauses (the machine kept loadgate from running): ")
            && html.contains(" ms in all, the longest "),
        "no pause line in the report"
    );
}

#[test]
fn a_second_sigint_stops_waiting_for_in_flight_requests() {
    let mut s = scenario(
        "model = \"open\"\nstages = [{ duration = \"30s\", target_rps = 20 }]",
        "",
    );
    s = s.replace("[[endpoint]]", "[defaults]\ntimeout = \"60s\"\n[[endpoint]]\nname = \"hang\"\npath = \"/hang\"\n[[endpoint]]");
    let c = Case::new(&s);
    std::fs::write(c.dir.path().join("profile.toml"), format!("{FAST_PROFILE}\n[[route]]\npath = \"/hang\"\nlatency = {{ dist = \"fixed\", value = \"50s\" }}\n")).unwrap();
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
fn an_unresolvable_host_fails_before_any_load() {
    let c = Case::new(&scenario(OPEN_2S, ""));
    let o = c.loadgate(
        &[
            "run",
            "{s}",
            "--out",
            "{out}",
            "--target",
            "http://loadgate-test.invalid:8080",
        ],
        &[],
    );
    assert_eq!(code(&o), 6, "{}", text(&o));
    assert!(
        text(&o).contains("cannot resolve the target host `loadgate-test.invalid`"),
        "{}",
        text(&o)
    );
    assert_never_started(&c);
}

/// Regression (issue 17): with nothing listening, 250 connect errors made a PASS.
/// Refused before any load is exit 6 with the address, like an unresolvable host; with a
/// health check to wait for, the wait decides (the target may still be starting).
#[test]
fn a_target_that_refuses_before_any_load_exits_6_with_its_address() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let c = Case::new(&scenario(
        OPEN_2S,
        "budgets = [\"p95 < 500ms\", \"p99 < 1s\"]",
    ));
    let o = c.loadgate(&["run", "{s}", "--out", "{out}", "--target", &url], &[]);
    assert_eq!(code(&o), 6, "{}", text(&o));
    assert!(
        text(&o).contains(&format!("cannot connect to the target 127.0.0.1:{port}"))
            && text(&o).contains("refused"),
        "{}",
        text(&o)
    );
    assert_never_started(&c);
    let o = c.loadgate(
        &[
            "run",
            "{s}",
            "--out",
            "{out}",
            "--target",
            &url,
            "--wait-healthy",
            "/api/health",
            "--health-timeout",
            "1s",
        ],
        &[],
    );
    assert_eq!(code(&o), 4, "{}", text(&o));
}

#[test]
fn tls_failures_are_explained_before_any_load() {
    let c = Case::new(&scenario(OPEN_2S, "budgets = [\"p95 < 2s\"]"));
    let tls = loadgate_target::spawn_tls(
        loadgate_target::Profile::parse("p", FAST_PROFILE).unwrap(),
        "127.0.0.1:0".parse().unwrap(),
        1,
    )
    .unwrap();
    // An untrusted (self-signed) certificate: a clear message naming --insecure, exit 6.
    let o = c.loadgate(
        &[
            "run",
            "{s}",
            "--out",
            "{out}",
            "-q",
            "--target",
            &tls.base_url(),
        ],
        &[],
    );
    assert_eq!(code(&o), 6, "{}", text(&o));
    assert!(
        text(&o).contains("TLS handshake with https://127.0.0.1"),
        "{}",
        text(&o)
    );
    assert!(
        text(&o).contains("certificate") && text(&o).contains("--insecure"),
        "{}",
        text(&o)
    );
    assert_never_started(&c);
    // With --insecure it runs.
    let o = c.loadgate(
        &[
            "run",
            "{s}",
            "--out",
            "{out}",
            "-q",
            "--target",
            &tls.base_url(),
            "--insecure",
        ],
        &[],
    );
    assert_eq!(code(&o), 0, "{}", text(&o));
    // Issue 18: checking the target sends it no request of its own (it once sent `GET /`
    // over https): the target saw exactly the requests the run counts as sent.
    assert_eq!(
        tls.requests(),
        c.summary()["overall"]["sent"].as_u64().unwrap(),
        "a request the scenario did not ask for"
    );
    // TLS to a port that speaks plain HTTP: a handshake failure.
    let plain = loadgate_target::loopback(FAST_PROFILE);
    let https_to_plain = plain.base_url().replace("http://", "https://");
    let o = c.loadgate(
        &[
            "run",
            "{s}",
            "--out",
            "{out}-2",
            "-q",
            "--target",
            &https_to_plain,
        ],
        &[],
    );
    assert_eq!(code(&o), 6, "{}", text(&o));
    assert!(text(&o).contains("speaks TLS"), "{}", text(&o));
}

#[test]
fn a_cpu_starved_generator_is_invalid_with_its_figures() {
    // One worker asked for 200,000 requests per second cannot keep the schedule: the run
    // must say so, with the figures, and never pass.
    let c = Case::new(&scenario("model = \"open\"\nstages = [{ duration = \"1s\", target_rps = 200000 }]\nmax_in_flight = 200\nmax_late_ratio = 0.01", "budgets = [\"p99 < 10s\"]"));
    let o = c.loadgate(
        &[
            "run",
            "{s}",
            "--out",
            "{out}",
            "-q",
            "--workers",
            "1",
            "--no-report",
        ],
        &[],
    );
    assert_eq!(code(&o), 3, "{}", text(&o));
    let s = c.summary();
    assert_eq!(s["verdict"], "invalid");
    let reasons = s["invalid_reasons"].to_string();
    assert!(
        reasons.contains("behind schedule") || reasons.contains("rps of the"),
        "{reasons}"
    );
    assert!(
        s["rate"]["achieved_ratio"].as_f64().unwrap() < 1.0
            || s["rate"]["late"].as_u64().unwrap() > 0
    );
}

#[test]
fn running_out_of_descriptors_is_the_generators_failure_not_the_targets() {
    // 100 VUs need 100 connections; with 48 descriptors in all, loadgate cannot open them
    // (EMFILE). The requests that never got a socket are connect errors the target never
    // saw: the run is invalid, says why and how to fix it, and still writes its results.
    let target = loadgate_target::loopback("[[route]]\npath = \"/\"\n");
    let c = get_root_case(
        "model = \"closed\"\nstages = [{ duration = \"1s\", vus = 100 }]\nthink_time = \"10ms\"",
        "",
        "",
    );
    let url = format!("http://{}", target.addr());
    let o = c.loadgate_under(
        &["prlimit", "--nofile=48:48", "--"],
        &["run", "{s}", "--out", "{out}", "-q", "--target", &url],
        &[],
    );
    assert_eq!(code(&o), 3, "{}", text(&o));
    let s = c.summary();
    assert_eq!(s["verdict"], "invalid");
    let local = s["overall"]["local_errors"].as_u64().unwrap();
    assert!(local > 0, "{}", s["overall"]);
    assert!(
        s["overall"]["outcomes"]["connect_error"].as_u64().unwrap() >= local,
        "local failures are connect errors too"
    );
    assert!(
        s["overall"]["outcomes"]["success"].as_u64().unwrap() > 0,
        "the connections that did open carried requests"
    );
    let reasons = s["invalid_reasons"].to_string();
    assert!(
        reasons.contains("ran out of its own resources") && reasons.contains("ulimit -Hn"),
        "{reasons}"
    );
    assert!(c.out().join("report.html").exists());
    // The console says which connect errors were loadgate's own, whatever the verdict.
    assert!(text(&o).contains("of them loadgate's own"), "{}", text(&o));

    // The same run with the descriptors it needs is valid, with no local failure.
    let o = c.loadgate(
        &["run", "{s}", "--out", "{out}", "-q", "--target", &url],
        &[],
    );
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert_eq!(c.summary()["overall"]["local_errors"], 0);
}

/// Issue 18: under a small open-file limit, loadgate panicked ("failed to create
/// UnixStream"), hung waiting for a worker that had died, or failed with "cannot start a
/// runtime" (exit 2) leaving an empty `timeseries.jsonl` behind. Now every limit too
/// small to start ends quickly, without a panic, as exit 3 with the fix, and writes
/// nothing that looks like a finished run.
#[test]
fn a_descriptor_limit_too_small_to_start_is_refused_with_the_fix_never_a_panic_or_a_hang() {
    let c = Case::new(&scenario(
        "model = \"closed\"\nstages = [{ duration = \"2s\", vus = 1 }]",
        "",
    ));
    let run_under = |limit: u32| {
        let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let out = c.dir.path().join(format!("run-{limit}"));
        let mut child = Command::new("prlimit")
            .arg(format!("--nofile={limit}:{limit}"))
            .arg("--")
            .arg(env!("CARGO_BIN_EXE_loadgate"))
            .args(["run", "s.toml", "-q", "--workers", "2", "--out"])
            .arg(&out)
            .current_dir(c.dir.path())
            .env_remove("LOADGATE_TARGET")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // A hang fails the test instead of hanging it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while child.try_wait().unwrap().is_none() {
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let o = child.wait_with_output().unwrap();
                panic!("limit {limit}: still running after 60 s\n{}", text(&o));
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        (child.wait_with_output().unwrap(), out)
    };
    for limit in [6, 8, 10, 12, 16, 20, 24] {
        let (o, out) = run_under(limit);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(!stderr.contains("panicked"), "limit {limit}: {}", text(&o));
        assert_eq!(code(&o), 3, "limit {limit}: {}", text(&o));
        assert!(
            stderr.contains("ulimit -Hn") && stderr.contains("LimitNOFILE="),
            "limit {limit}: {stderr}"
        );
        for name in ["summary.json", "timeseries.jsonl", "intervals.hlog"] {
            assert!(!out.join(name).exists(), "limit {limit}: {name} was left");
        }
    }
    // With enough descriptors the same run passes.
    let (o, out) = run_under(64);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(out.join("summary.json").exists());
}

#[test]
fn validate_checks_the_target_profile_too() {
    let c = Case::new(&scenario(OPEN_2S, ""));
    std::fs::write(
        c.dir.path().join("profile.toml"),
        "[[route]]\npath = \"/\"\nlatency = { dist = \"gamma\" }\n",
    )
    .unwrap();
    let o = c.loadgate(&["validate", "{s}"], &[]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(
        text(&o).contains("profile.toml:3:11: unknown latency dist `gamma`"),
        "{}",
        text(&o)
    );
}

#[test]
fn every_fault_ends_in_a_classified_written_run_with_the_breach_code() {
    use loadgate_target::Fault::*;
    let faults = [
        (ResetMidHeaders, "io_error"),
        (ResetMidBody, "io_error"),
        (Hang, "timeout"),
        (Drip, "timeout"),
        (GarbageStatus, "protocol_error"),
        (BadChunked, "protocol_error"),
        (LengthMismatch, "io_error"),
    ];
    for (fault, class) in faults {
        let server = loadgate_target::spawn_fault(fault, "127.0.0.1:0".parse().unwrap()).unwrap();
        let c = get_root_case(
            "model = \"open\"\nstages = [{ duration = \"1s\", target_rps = 10 }]",
            "budgets = [\"error_rate < 1%\"]",
            "timeout = \"700ms\"\n",
        );
        let o = run_against(&c, &server.base_url());
        assert_eq!(code(&o), 1, "{fault:?}: {}", text(&o));
        let s = c.summary();
        assert_eq!(
            s["overall"]["outcomes"][class], 10,
            "{fault:?}: {}",
            s["overall"]["outcomes"]
        );
        assert!(s["measured_s"].as_f64().unwrap() <= 1.0);
        let html = std::fs::read_to_string(c.out().join("report.html")).unwrap();
        assert!(
            html.contains(&format!("{class} 10")),
            "{fault:?}: the class is shown in the report"
        );
    }
}

/// (label, server kept alive for the run, base URL, class of the requests, exit code)
type FaultCase = (
    &'static str,
    Box<dyn std::any::Any>,
    String,
    &'static str,
    i32,
);

#[test]
fn more_faults_end_in_written_runs_with_their_documented_codes() {
    use loadgate_target::Fault::*;
    let limited = loadgate_target::Profile::parse(
        "p",
        "[[route]]\npath = \"/\"\nrate_limit_rps = 3\nresponse = '{\"status\":\"ok\"}'\n",
    )
    .unwrap();
    let bursty = loadgate_target::Profile::parse(
        "p",
        "[[route]]\npath = \"/\"\nburst = { every = \"1s\", for = \"1s\", status = 503 }\n",
    )
    .unwrap();
    let mut cases: Vec<FaultCase> = Vec::new();
    for (label, fault, class, exit) in [
        ("keep-alive closes", CloseEvery(2), "success", 0),
        ("100 MiB bodies", HugeBody(100 << 20), "check_failed", 1),
    ] {
        let s = loadgate_target::spawn_fault(fault, "127.0.0.1:0".parse().unwrap()).unwrap();
        let url = s.base_url();
        cases.push((label, Box::new(s), url, class, exit));
    }
    for (label, profile) in [("429 rate limit", limited), ("503 bursts", bursty)] {
        let s = loadgate_target::spawn(profile, "127.0.0.1:0".parse().unwrap(), 1).unwrap();
        let url = s.base_url();
        let class = if label.starts_with("429") {
            "http_429"
        } else {
            "http_5xx"
        };
        cases.push((label, Box::new(s), url, class, 1));
    }
    for (label, _server, url, class, exit) in &cases {
        let c = get_root_case(
            "model = \"open\"\nstages = [{ duration = \"1s\", target_rps = 10 }]",
            "budgets = [\"error_rate < 1%\"]",
            "timeout = \"5s\"\nconnect_timeout = \"1s\"\n",
        );
        let o = run_against(&c, url);
        assert_eq!(code(&o), *exit, "{label}: {}", text(&o));
        let s = c.summary();
        let n = s["overall"]["outcomes"][class].as_u64().unwrap();
        // A rate limit lets the first few of each second through.
        let want = if class == &"http_429" { 4 } else { 10 };
        assert!(
            n >= want,
            "{label}: {class} {n}: {}",
            s["overall"]["outcomes"]
        );
        assert_eq!(
            s["overall"]["requests"], 10,
            "{label}: every request is classified"
        );
        assert!(
            c.out().join("report.html").exists(),
            "{label}: report written"
        );
    }
    // The dying target: early answers, then refusals, all classified.
    let dying = loadgate_target::spawn_fault(
        DieAfter(std::time::Duration::from_millis(1500)),
        "127.0.0.1:0".parse().unwrap(),
    )
    .unwrap();
    let c = get_root_case(
        "model = \"open\"\nstages = [{ duration = \"3s\", target_rps = 10 }]",
        "budgets = [\"error_rate < 1%\"]",
        "connect_timeout = \"1s\"\n",
    );
    let o = run_against(&c, &dying.base_url());
    assert_eq!(code(&o), 1, "{}", text(&o));
    let s = c.summary();
    assert_eq!(s["overall"]["requests"], 30);
    assert!(
        s["overall"]["outcomes"]["success"].as_u64().unwrap() >= 5,
        "{}",
        s["overall"]["outcomes"]
    );
    assert!(
        s["overall"]["outcomes"]["connect_error"].as_u64().unwrap() >= 5,
        "{}",
        s["overall"]["outcomes"]
    );
}

#[test]
fn sigterm_stops_the_run_like_ctrl_c() {
    let c = Case::new(&scenario(
        "model = \"open\"\nstages = [{ duration = \"30s\", target_rps = 20 }]",
        "",
    ));
    let (_serial, child) = start_run(&c, &["--no-report"], 1500);
    signal(&child, "-TERM");
    let (o, after) = wait_bounded(child, std::time::Duration::from_secs(20));
    assert_eq!(code(&o), 130, "{}", text(&o));
    assert!(after.as_secs() < 10);
    assert_eq!(c.summary()["stop"], "interrupted");
}

#[test]
fn capacity_search_finds_the_knee_of_a_capacity_model_within_one_step() {
    // One server at 200 requests/s, first come first served: below 200 rps the latency
    // is one service time (5 ms); above it the queue grows for the whole step.
    let c = Case::new(
        r#"name = "cap"
target = "embedded"
target_profile = "cap-profile.toml"
[[endpoint]]
name = "work"
path = "/work"
[load]
model = "open"
stages = [{ duration = "1s", target_rps = 10 }]
max_late_ratio = 0.5
[slo]
budgets = ["p95 < 100ms", "error_rate < 1%"]
[capacity]
start_rps = 50
step_rps = 50
max_rps = 400
step_duration = "1s"
settle = "1s"
refine = 2
"#,
    );
    std::fs::write(
        c.dir.path().join("cap-profile.toml"),
        "[[route]]\npath = \"/work\"\ncapacity_rps = 200\n",
    )
    .unwrap();
    let reports = c.dir.path().to_str().unwrap().to_string();
    let o = c.loadgate(
        &[
            "capacity",
            "{s}",
            "--out",
            "{out}",
            "--reports-dir",
            &reports,
            "-q",
            "--require-rps",
            "300",
        ],
        &[],
    );
    assert_eq!(code(&o), 1, "below the required rate: {}", text(&o));
    // `reports/latest` follows a capacity search as it follows a run (issue 19).
    assert_eq!(
        std::fs::read_link(c.dir.path().join("latest")).unwrap(),
        std::path::Path::new("run")
    );
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(c.out().join("capacity.json")).unwrap()).unwrap();
    let sustainable = r["sustainable_rps"].as_f64().unwrap();
    assert!(
        (150.0..=250.0).contains(&sustainable),
        "sustainable {sustainable} rps, knee at 200: {}",
        text(&o)
    );
    assert_eq!(r["limit"]["kind"], "breach");
    assert!(r["limit"]["what"][0]
        .as_str()
        .unwrap()
        .contains("p95 < 100ms"));
    assert_eq!(r["verdict"], "fail");
    assert_eq!(r["stop"], "budget breached");
    // The climb stopped at the first breach (250), then bisected twice below it.
    let rates: Vec<f64> = r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["rate_rps"].as_f64().unwrap())
        .collect();
    assert_eq!(
        &rates[..5],
        &[50.0, 100.0, 150.0, 200.0, 250.0],
        "{rates:?}"
    );
    assert_eq!(rates.len(), 7, "{rates:?}");
    let page = std::fs::read_to_string(c.out().join("report.html")).unwrap();
    assert!(page.contains("Latency against offered rate"));
    assert!(page.contains(&format!("sustainable {sustainable:.0} rps")));
    assert!(c.out().join("knee-throughput.svg").exists());
    assert!(text(&o).contains("sustainable:"), "{}", text(&o));
    // `loadgate report` renders a capacity directory again, the same.
    let svg = std::fs::read_to_string(c.out().join("knee-latency.svg")).unwrap();
    for f in ["report.html", "knee-latency.svg", "knee-throughput.svg"] {
        std::fs::remove_file(c.out().join(f)).unwrap();
    }
    let o = c.loadgate(&["report", "{out}"], &[]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert_eq!(
        std::fs::read_to_string(c.out().join("report.html")).unwrap(),
        page
    );
    assert_eq!(
        std::fs::read_to_string(c.out().join("knee-latency.svg")).unwrap(),
        svg
    );
}

#[test]
fn capacity_flags_are_checked_before_any_load() {
    let c = Case::new(&scenario(OPEN_2S, ""));
    for (flags, needle) in [
        (&["--start-rps", "0"][..], "--start-rps 0"),
        (&["--factor", "1"][..], "--factor 1"),
        (
            &["--start-rps", "100", "--max-rps", "50"][..],
            "below start_rps",
        ),
        (&["--refine", "11"][..], "--refine 11"),
    ] {
        let mut args = vec!["capacity", "{s}", "--out", "{out}", "-q"];
        args.extend_from_slice(flags);
        let o = c.loadgate(&args, &[]);
        assert_eq!(code(&o), 2, "{flags:?}: {}", text(&o));
        assert!(text(&o).contains(needle), "{flags:?}: {}", text(&o));
        assert_never_started(&c);
    }
}

#[test]
fn four_segment_processes_merge_into_exactly_the_whole_load() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    // One target for all four processes, as one deployment would be.
    let target = loadgate_target::loopback(
        "[[route]]\npath = \"/\"\nlatency = { dist = \"fixed\", value = \"2ms\" }\n",
    );
    let url = target.base_url();
    let c = Case::new(
        r#"name = "split"
target = "embedded"
[[endpoint]]
name = "root"
path = "/"
[load]
model = "open"
stages = [{ duration = "3s", target_rps = 400 }]
max_late_ratio = 0.5
[slo]
budgets = ["p95 < 1s", "error_rate < 1%"]
"#,
    );
    let dir = c.dir.path();
    // Every process begins its schedule at the same second, a little ahead.
    let start = std::time::SystemTime::now() + std::time::Duration::from_millis(2500);
    let start_at = humantime::format_rfc3339_seconds(start).to_string();
    let children: Vec<_> = (1..=4)
        .map(|i| {
            let args: Vec<String> = [
                "run",
                "s.toml",
                "--target",
                &url,
                "--segment",
                &format!("{i}/4"),
                "--start-at",
                &start_at,
                "--out",
                &format!("seg{i}"),
                "-q",
                "--no-report",
                "--workers",
                "1",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            spawn_in(dir, &args)
        })
        .collect();
    for (i, child) in children.into_iter().enumerate() {
        let o = child.wait_with_output().unwrap();
        assert_eq!(code(&o), 0, "segment {}/4: {}", i + 1, text(&o));
    }
    for i in 1..=4 {
        let s: serde_json::Value = serde_json::from_slice(
            &std::fs::read(dir.join(format!("seg{i}/summary.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(s["segment"]["index"], i);
        assert_eq!(s["segment"]["count"], 4);
        assert_eq!(s["overall"]["sent"], 300, "segment {i} sends a quarter");
        assert_eq!(s["started_at"].as_str().unwrap(), start_at);
        // The interval log starts where the schedule did, not when the command began.
        let hlog = std::fs::read_to_string(dir.join(format!("seg{i}/intervals.hlog"))).unwrap();
        let logged: f64 = hlog
            .lines()
            .find_map(|l| l.strip_prefix("#[StartTime: "))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .expect("a StartTime line");
        let agreed = humantime::parse_rfc3339(&start_at)
            .unwrap()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(
            (logged - agreed).abs() < 0.001,
            "segment {i}: StartTime {logged}, agreed {agreed}"
        );
    }

    // Any order gives the same files, byte for byte.
    let a = merge(
        dir,
        &["seg3", "seg1", "seg4", "seg2"],
        "m1",
        &["--no-report"],
    );
    assert_eq!(code(&a), 0, "{}", text(&a));
    let b = merge(dir, &["seg1", "seg2", "seg3", "seg4"], "m2", &[]);
    assert_eq!(code(&b), 0, "{}", text(&b));
    for f in [
        "summary.json",
        "histograms.json",
        "timeseries.jsonl",
        "intervals.hlog",
    ] {
        assert!(
            std::fs::read(dir.join("m1").join(f)).unwrap()
                == std::fs::read(dir.join("m2").join(f)).unwrap(),
            "{f} differs between merge orders"
        );
    }
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("m1/summary.json")).unwrap()).unwrap();
    // Exactly the single-process schedule: 3 s at 400 rps.
    assert_eq!(m["overall"]["sent"], 1200);
    assert_eq!(m["overall"]["requests"], 1200);
    assert_eq!(m["rate"]["scheduled"], 1200.0);
    let rps = m["rate"]["achieved_rps"].as_f64().unwrap();
    assert!((rps / 400.0 - 1.0).abs() < 0.02, "merged rate {rps}");
    assert_eq!(m["verdict"], "pass");
    assert_eq!(m["workers"], 4);
    // Each segment's one open-model worker ran pinned; the merge lists them in order.
    let pinned: Vec<serde_json::Value> = (1..=4)
        .flat_map(|i| {
            let s: serde_json::Value = serde_json::from_slice(
                &std::fs::read(dir.join(format!("seg{i}/summary.json"))).unwrap(),
            )
            .unwrap();
            assert_eq!(s["pinned_cpus"].as_array().unwrap().len(), 1, "seg{i}");
            s["pinned_cpus"].as_array().unwrap().clone()
        })
        .collect();
    assert_eq!(m["pinned_cpus"], serde_json::Value::Array(pinned));
    let from = m["merged_from"].as_array().unwrap();
    let segs: Vec<&str> = from
        .iter()
        .map(|r| r["segment"].as_str().unwrap())
        .collect();
    assert_eq!(segs, ["1/4", "2/4", "3/4", "4/4"]);
    // The merged latency histogram is the HDR sum of the four.
    let counts: u64 = (1..=4)
        .map(|i| {
            let s: serde_json::Value = serde_json::from_slice(
                &std::fs::read(dir.join(format!("seg{i}/summary.json"))).unwrap(),
            )
            .unwrap();
            s["overall"]["requests"].as_u64().unwrap()
        })
        .sum();
    assert_eq!(counts, 1200);
    let series = std::fs::read_to_string(dir.join("m1/timeseries.jsonl")).unwrap();
    let sent: u64 = series
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["sent"]
                .as_u64()
                .unwrap()
        })
        .sum();
    assert_eq!(sent, 1200, "the time series adds up to the whole load");
    // The report names every segment and its rate.
    let html = std::fs::read_to_string(dir.join("m2/report.html")).unwrap();
    for i in 1..=4 {
        assert!(
            html.contains(&format!("seg{i}")),
            "report names segment run seg{i}"
        );
    }

    // Not the whole load: refused, naming what is missing; nothing written.
    let o = merge(dir, &["seg1", "seg2", "seg4"], "m3", &[]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(text(&o).contains("segment 3/4 missing"), "{}", text(&o));
    assert!(!dir.join("m3").exists());
    let o = merge(dir, &["seg1", "seg2", "seg2", "seg3", "seg4"], "m3", &[]);
    assert_eq!(code(&o), 2);
    assert!(text(&o).contains("given twice"), "{}", text(&o));
    // A run that was not a segment.
    let o = merge(dir, &["seg1", "m1"], "m3", &[]);
    assert_eq!(code(&o), 2);
    assert!(text(&o).contains("not run with --segment"), "{}", text(&o));
}

#[test]
fn closed_model_segments_split_the_vus_and_data_rows_must_go_round() {
    let c = get_root_case(
        "model = \"closed\"\nstages = [{ duration = \"1s\", vus = 3 }]",
        "",
        "",
    );
    for (seg, vus) in [("1/2", 2.0), ("2/2", 1.0)] {
        let o = c.loadgate(
            &[
                "run",
                "{s}",
                "--out",
                "{out}",
                "-q",
                "--no-report",
                "--segment",
                seg,
            ],
            &[],
        );
        assert_eq!(code(&o), 0, "{}", text(&o));
        let series = std::fs::read_to_string(c.out().join("timeseries.jsonl")).unwrap();
        let first: serde_json::Value =
            serde_json::from_str(series.lines().next().unwrap()).unwrap();
        assert_eq!(
            first["target"], vus,
            "segment {seg} runs {vus} of the 3 VUs"
        );
        std::fs::remove_dir_all(c.out()).unwrap();
    }
    // Two data rows cannot be split four ways without sharing rows.
    std::fs::write(c.dir.path().join("rows.csv"), "id\n1\n2\n").unwrap();
    let s = std::fs::read_to_string(c.dir.path().join("s.toml")).unwrap();
    std::fs::write(
        c.dir.path().join("s.toml"),
        s.replace("[[endpoint]]", "[data]\nfile = \"rows.csv\"\n[[endpoint]]"),
    )
    .unwrap();
    let o = c.loadgate(&["run", "{s}", "--out", "{out}", "--segment", "1/4"], &[]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(
        text(&o).contains("fewer than the 4 segments"),
        "{}",
        text(&o)
    );
    assert_never_started(&c);
}

/// Issue 17: with `target = "${TARGET_URL}"` and the variable unset, `--target` (or
/// `LOADGATE_TARGET`) must rescue `run`, as the shipped scenarios' comments promise, and
/// `validate` takes the same flag, so the two accept and refuse the same files.
#[test]
fn regression_a_target_override_rescues_an_unset_target_variable_in_validate_and_run() {
    let c = Case::new(&scenario(OPEN_2S, "").replace(
        "target = \"embedded\"",
        "target = \"${LG_UNSET_TARGET_URL}\"",
    ));
    let o = c.loadgate(&["validate", "{s}"], &[]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(
        text(&o).contains("s.toml:2:11: environment variable `LG_UNSET_TARGET_URL` is not set"),
        "{}",
        text(&o)
    );
    let by_flag = ["validate", "{s}", "--target", "embedded"];
    let by_url = ["validate", "{s}", "--target", "https://staging.example.com"];
    for args in [&by_flag[..], &by_url[..]] {
        let o = c.loadgate(args, &[]);
        assert_eq!(code(&o), 0, "{args:?}: {}", text(&o));
    }
    let o = c.loadgate(&["validate", "{s}"], &[("LOADGATE_TARGET", "embedded")]);
    assert_eq!(code(&o), 0, "LOADGATE_TARGET: {}", text(&o));
    for (value, says) in [
        ("ftp://x", "--target: scheme `ftp` is not supported"),
        ("staging.example.com", "--target: not a valid URL"),
    ] {
        for cmd in [&["validate", "{s}"][..], &["run", "{s}", "--out", "{out}"]] {
            let o = c.loadgate(&[cmd, &["--target", value]].concat(), &[]);
            assert_eq!(code(&o), 2, "{cmd:?} {value}: {}", text(&o));
            assert!(text(&o).contains(says), "{cmd:?} {value}: {}", text(&o));
            assert!(text(&o).contains("hint: "), "{cmd:?} {value}: {}", text(&o));
        }
    }
    assert_never_started(&c);
    let o = c.loadgate(
        &["run", "{s}", "--out", "{out}", "-q", "--duration", "1s"],
        &[("LOADGATE_TARGET", "embedded")],
    );
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert_eq!(c.summary()["target"], "embedded");
}

/// Issue 17: what `run` refuses, `validate` refuses first, with file:line:column and a
/// hint. A path with a space passed `validate`, then failed after the run directory was
/// made ("worker 1 failed: invalid uri character"); a 300-character name failed to make
/// the run directory at all.
#[test]
fn regression_validate_refuses_what_run_would_refuse() {
    let spaced = Case::new(&scenario(OPEN_2S, "").replace(
        "path = \"/api/intelligence/analyze\"",
        "path = \"/api/intelligence analyze\"",
    ));
    for cmd in [&["validate", "{s}"][..], &["run", "{s}", "--out", "{out}"]] {
        let o = spaced.loadgate(cmd, &[]);
        assert_eq!(code(&o), 2, "{cmd:?}: {}", text(&o));
        let t = text(&o);
        assert!(t.contains("s.toml:7:26: path has a space"), "{cmd:?}: {t}");
        assert!(t.contains("hint: write %20 for a space"), "{cmd:?}: {t}");
        assert_never_started(&spaced);
    }
    let long = Case::new(
        &scenario(OPEN_2S, "").replace("name = \"t\"", &format!("name = \"{}\"", "n".repeat(300))),
    );
    for cmd in [
        &["validate", "{s}"][..],
        &["run", "{s}", "--reports-dir", "reports"],
    ] {
        let o = long.loadgate(cmd, &[]);
        assert_eq!(code(&o), 2, "{cmd:?}: {}", text(&o));
        let t = text(&o);
        assert!(
            t.contains("s.toml:1:8: name is 300 bytes long"),
            "{cmd:?}: {t}"
        );
        assert!(!long.dir.path().join("reports").exists(), "{cmd:?}");
    }
}

/// `--connections N`: a fixed pool, whatever the load asks for. The target also sees the
/// one connection of the check before the load (it sends no request).
#[test]
fn a_fixed_pool_opens_the_connections_it_was_given_and_no_more() {
    let target = loadgate_target::loopback(
        "[[route]]\npath = \"/\"\nlatency = { dist = \"fixed\", value = \"5ms\" }\nresponse = '{\"status\":\"ok\"}'\n",
    );
    let c = get_root_case(
        "model = \"closed\"\nstages = [{ duration = \"2s\", vus = 8 }]",
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

/// Regression (second issue 17 review): segments started without `--start-at`, the second
/// two seconds after the first, put one segment's drain in the other's measured second;
/// the merge folded that whole second as drain and then panicked judging a window over
/// the gap (exit 101).
#[test]
fn segments_started_apart_merge_with_windows_and_drain_without_a_panic() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let c = get_root_case(
        "model = \"open\"\nstages = [{ duration = \"4s\", target_rps = 40 }]",
        "budgets = [\"p95 < 2s over 2s\", \"throughput > 30rps over 2s\", \"throughput > 30rps\"]",
        "",
    );
    // Answers take half a second, so each segment ends with a drain.
    let s = std::fs::read_to_string(c.dir.path().join("s.toml")).unwrap();
    std::fs::write(
        c.dir.path().join("s.toml"),
        s.replace("path = \"/\"", "path = \"/slow\"").replace(
            "checks = { json = [{ path = \"$.status\", equals = \"ok\" }] }",
            "",
        ),
    )
    .unwrap();
    let args = |seg: &str, out: &str| -> Vec<String> {
        [
            "run",
            "s.toml",
            "--out",
            out,
            "-q",
            "--no-report",
            "--segment",
            seg,
        ]
        .iter()
        .map(|a| a.to_string())
        .collect()
    };
    let first = spawn_in(c.dir.path(), &args("1/2", "a"));
    let series = c.dir.path().join("a").join("timeseries.jsonl");
    for _ in 0..1200 {
        if std::fs::read_to_string(&series).map_or(0, |t| t.lines().count()) >= 2 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let second = spawn_in(c.dir.path(), &args("2/2", "b"));
    for child in [first, second] {
        let (o, _) = wait_bounded(child, std::time::Duration::from_secs(120));
        assert!([0, 1].contains(&code(&o)), "{}", text(&o));
    }
    let o = merge(c.dir.path(), &["a", "b"], "ab", &[]);
    assert!(!text(&o).contains("panicked"), "{}", text(&o));
    assert!([0, 1].contains(&code(&o)), "a merged verdict: {}", text(&o));
    let merged: serde_json::Value =
        serde_json::from_slice(&std::fs::read(c.dir.path().join("ab/summary.json")).unwrap())
            .unwrap();
    assert!(merged["slo"].as_array().unwrap().len() >= 3);
}

/// Issue 19: every TOML block of the README is what it says: the scenario reference
/// validates as copied (beside the files it names), the `[capacity]` table validates
/// inside a scenario, and the target profile parses. A block of a new kind fails here
/// until this test checks it too.
#[test]
fn every_toml_block_in_the_readme_is_valid() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let blocks: Vec<&str> = readme
        .split("```toml\n")
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap())
        .collect();
    assert!(blocks.len() >= 3, "{} blocks", blocks.len());
    for block in blocks {
        if block.contains("[[endpoint]]") {
            let c = Case::new(block);
            std::fs::write(c.dir.path().join("users.csv"), "userId\nu-1\nu-2\n").unwrap();
            std::fs::create_dir_all(c.dir.path().join("profiles")).unwrap();
            std::fs::copy(
                concat!(env!("CARGO_MANIFEST_DIR"), "/../target/profiles/demo.toml"),
                c.dir.path().join("profiles/demo.toml"),
            )
            .unwrap();
            let env = [
                ("TARGET_URL", "https://staging.example.com"),
                ("API_TOKEN", "tok-1234"),
            ];
            let o = c.loadgate(&["validate", "{s}"], &env);
            assert_eq!(code(&o), 0, "the scenario reference: {}", text(&o));
            let o = c.loadgate(&["validate", "{s}", "--target", "embedded"], &env);
            assert_eq!(code(&o), 0, "with the embedded target: {}", text(&o));
        } else if block.trim_start().starts_with("[capacity]") {
            let c = Case::new(&format!("{}\n{block}", scenario(OPEN_2S, "")));
            let o = c.loadgate(&["validate", "{s}"], &[]);
            assert_eq!(code(&o), 0, "the [capacity] table: {}", text(&o));
        } else if block.contains("[[route]]") {
            loadgate_target::Profile::parse("README profile", block)
                .unwrap_or_else(|e| panic!("the target profile: {e}"));
        } else {
            panic!("a README TOML block no test checks:\n{block}");
        }
    }
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

/// Issue 19: `loadgate init URL` writes a commented starter scenario that validates and
/// runs as written, and never replaces a file.
#[test]
fn init_writes_a_scenario_that_validates_and_runs() {
    let target = loadgate_target::loopback(FAST_PROFILE);
    let c = Case::new("");
    let url = format!("{}/api/health", target.base_url());
    let o = c.loadgate(&["init", &url, "--out", "gate.toml"], &[]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let o = c.loadgate(&["validate", "gate.toml"], &[]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let o = c.loadgate(
        &["run", "gate.toml", "-d", "2s", "--out", "{out}", "-q"],
        &[],
    );
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert_eq!(c.summary()["scenario"], "gate");
    let o = c.loadgate(&["init", &url, "--out", "gate.toml"], &[]);
    assert_eq!(code(&o), 2, "an existing file stays: {}", text(&o));
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
