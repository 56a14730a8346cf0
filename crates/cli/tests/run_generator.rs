//! `loadgate run` when the generator falls short (arrivals dropped, sends late, the process
//! stopped or starved of CPU, too few file descriptors): the run is INVALID, says why with
//! its figures, and never passes.

mod common;

use std::process::Command;

use common::*;

#[test]
fn an_overdriven_generator_makes_the_run_invalid_not_passing() {
    // 100 rps against a 500 ms route with at most 4 requests in flight: most arrivals
    // cannot be sent. The budgets would pass on what was measured; the run must not.
    // Late sends are tolerated: what makes it invalid here is the dropped arrivals.
    let mut text_s = scenario(
        "model = \"open\"\nstages = [{ duration = \"2s\", target_rps = 100 }]\nmax_in_flight = 4\nmax_late_ratio = 0.5",
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
        html.contains(
            "Generator pauses (the machine kept loadgate, or one of its workers, from running): "
        ) && html.contains(" ms in all, the longest "),
        "no pause line in the report"
    );
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
        "model = \"closed\"\nstages = [{ duration = \"1s\", vus = 100 }]\nthink_time = \"10ms\"\nmax_late_ratio = 0.5",
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
        "model = \"closed\"\nstages = [{ duration = \"2s\", vus = 1 }]\nmax_late_ratio = 0.5",
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
