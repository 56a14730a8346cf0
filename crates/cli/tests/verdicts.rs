//! Every verdict right (issue 17): against real servers on 127.0.0.1, each case that
//! once gave a wrong PASS, a wrong INVALID or a misleading figure. Each test names the
//! bug it pins.

mod common;

use std::time::Duration;

use common::*;

/// A scenario of one GET endpoint at `path` against the embedded target with `profile`,
/// with `defaults`, `load` and `slo` lines as given. A case that a busy machine's bunched
/// sends must not decide says `max_late_ratio = 0.5` in `load`.
fn get_case(profile: &str, path: &str, defaults: &str, load: &str, slo: &str) -> Case {
    Case::with_profile(
        &format!(
            "name = \"v\"\ntarget = \"embedded\"\ntarget_profile = \"profile.toml\"\n[defaults]\n{defaults}\n\
             [[endpoint]]\nname = \"get\"\npath = \"{path}\"\n[load]\n{load}\n[slo]\n{slo}\n"
        ),
        profile,
    )
}

fn run_q(c: &Case, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["run", "{s}", "--out", "{out}", "-q"];
    args.extend_from_slice(extra);
    c.loadgate(&args, &[])
}

fn f64_at(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// Regression: every request timing out (`timeout = "1s"` against a 3 s endpoint)
/// passed `p95 < 2s` at 2.01 s: failed requests were timed like answers.
#[test]
fn a_target_whose_every_request_times_out_fails_its_latency_budget() {
    let c = get_case(
        "[[route]]\npath = \"/slow\"\nlatency = { dist = \"fixed\", value = \"3s\" }\n",
        "/slow",
        "timeout = \"1s\"",
        "model = \"open\"\nstages = [{ duration = \"2s\", target_rps = 5 }]\nmax_late_ratio = 0.5",
        "budgets = [\"p95 < 2s\"]",
    );
    let o = run_q(&c, &[]);
    assert_eq!(code(&o), 1, "{}", text(&o));
    let s = c.summary();
    assert_eq!(s["overall"]["outcomes"]["timeout"], 10, "{}", s["overall"]);
    assert_eq!(s["slo"][0]["pass"], false);
    assert_eq!(
        s["slo"][0]["measured_text"],
        "not reached: 100.00% of requests failed"
    );
    assert!(
        text(&o).contains("verdict: FAIL (breached: p95 < 2s (global): not reached"),
        "{}",
        text(&o)
    );
}

/// Regression: a server that answers the first request on each connection and resets
/// the second after reading it counted 511 requests and 255 resets; loadgate reported
/// 256 requests and 0% errors (it sent the reset ones again, silently), and PASS. The
/// closed model lost about half of its resets the same way.
#[test]
fn a_request_reset_after_it_was_written_is_counted_as_the_targets_failure() {
    for load in [
        "model = \"open\"\nstages = [{ duration = \"2s\", target_rps = 50 }]\nmax_late_ratio = 0.5",
        "model = \"closed\"\nstages = [{ duration = \"2s\", vus = 4 }]\nthink_time = \"20ms\"\nmax_late_ratio = 0.5",
    ] {
        let server = loadgate_target::spawn_fault(
            loadgate_target::Fault::ResetSecond,
            "127.0.0.1:0".parse().unwrap(),
        )
        .unwrap();
        let c = get_case("", "/", "", load, "budgets = [\"error_rate < 1%\"]");
        let o = run_q(&c, &["--target", &server.base_url()]);
        assert_eq!(code(&o), 1, "{load}: {}", text(&o));
        let s = c.summary();
        let outcomes = &s["overall"]["outcomes"];
        assert!(server.resets() > 10, "{load}: {} resets", server.resets());
        assert_eq!(
            s["overall"]["requests"].as_u64().unwrap(),
            server.requests(),
            "{load}: every request the server read is counted once: {outcomes}"
        );
        assert_eq!(
            outcomes["io_error"].as_u64().unwrap(),
            server.resets(),
            "{load}: {outcomes}"
        );
        assert_eq!(s["overall"]["resent"], 0);
    }
}

/// Regression (issue 17 review): a server that closes keep-alive connections left idle
/// (Node's `keepAliveTimeout`, here 50 ms) is healthy: the close is found before the
/// connection is used again, and nothing counts against the target. (A request that
/// races such a close is sent again once, counted as `resent`: see the client's tests;
/// a request the target resets after it was written is its failure: see above.)
#[test]
fn a_server_that_closes_idle_connections_is_not_failed() {
    let server = loadgate_target::spawn_fault(
        loadgate_target::Fault::IdleClose(Duration::from_millis(50)),
        "127.0.0.1:0".parse().unwrap(),
    )
    .unwrap();
    let c = get_case(
        "",
        "/",
        "",
        "model = \"closed\"\nstages = [{ duration = \"3s\", vus = 4 }]\nthink_time = \"150ms\"\nmax_late_ratio = 0.5",
        "budgets = [\"error_rate < 1%\"]",
    );
    let o = run_q(&c, &["--target", &server.base_url()]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let s = c.summary();
    let all = &s["overall"];
    assert_eq!(all["errors"], 0, "{all}");
    assert_eq!(
        all["requests"].as_u64().unwrap(),
        server.requests(),
        "{all}"
    );
    assert!(
        all["connects"].as_u64().unwrap() > 8,
        "the server closed connections between requests: {all}"
    );
}

/// Regression: 1 s responses at 20/s with a 2 s warm-up reported 160 requests against
/// 140 sent and 22.9 rps, so `throughput > 22rps` passed at a 20/s target: warm-up
/// requests that completed after the warm-up, and the drain after the schedule, were
/// judged and divided by the measured time.
#[test]
fn warm_up_and_drain_traffic_is_not_judged_and_throughput_never_exceeds_what_was_sent() {
    let c = get_case(
        "[[route]]\npath = \"/second\"\nlatency = { dist = \"fixed\", value = \"1s\" }\n",
        "/second",
        "timeout = \"5s\"",
        "model = \"open\"\nstages = [{ duration = \"5s\", target_rps = 20 }]\nwarmup = \"2s\"\nmax_late_ratio = 0.5",
        "budgets = [\"throughput > 20.5rps\"]",
    );
    let o = run_q(&c, &[]);
    assert_eq!(code(&o), 1, "{}", text(&o));
    let s = c.summary();
    let all = &s["overall"];
    assert_eq!(all["sent"], 60, "{all}");
    assert_eq!(
        all["requests"], 60,
        "exactly the requests due in the measured phase"
    );
    assert!(f64_at(&all["success_rps"]) <= 20.0 + 1e-9, "{all}");
    assert_eq!(s["warmup"]["requests"], 40, "{}", s["warmup"]);
    // The last requests were sent up to the schedule's end and each takes 1 s.
    assert!(f64_at(&s["drain_s"]) >= 0.9, "{}", s["drain_s"]);
    let series = std::fs::read_to_string(c.out().join("timeseries.jsonl")).unwrap();
    let rows: Vec<serde_json::Value> = series
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        rows.iter().any(|r| r["drain"] == true),
        "drain seconds are marked"
    );
    assert!(rows
        .iter()
        .filter(|r| r["drain"] == true)
        .all(|r| r["t"].as_u64().unwrap() >= 5));
}

/// Regression: a target that returns 503 for part of every few seconds passed
/// `error_rate < 30%`; a budget with a window catches it in run and merge alike, names
/// the worst window, and can abort the run.
#[test]
fn an_outage_that_a_whole_run_figure_hides_breaks_a_windowed_budget() {
    let profile =
        "[[route]]\npath = \"/\"\nburst = { every = \"5s\", for = \"1s\", status = 503 }\n";
    let c = get_case(
        profile,
        "/",
        "",
        "model = \"open\"\nstages = [{ duration = \"8s\", target_rps = 20 }]\nmax_late_ratio = 0.5",
        "budgets = [\"error_rate < 30%\", \"error_rate < 30% over 3s\"]",
    );
    let o = run_q(&c, &["--segment", "1/1"]);
    assert_eq!(code(&o), 1, "{}", text(&o));
    let s = c.summary();
    assert_eq!(s["slo"][0]["pass"], true, "{}", s["slo"]);
    let w = &s["slo"][1];
    assert_eq!(w["pass"], false, "{w}");
    assert_eq!(w["window"]["length_s"], 3);
    assert_eq!(w["window"]["windows"], 6, "8 s, slid by one second: {w}");
    assert!(w["window"]["breaching"].as_u64().unwrap() >= 1, "{w}");
    assert!(f64_at(&w["measured"]) > 0.3);
    let end = f64_at(&w["window"]["worst_end_s"]);
    assert_eq!(end - f64_at(&w["window"]["worst_start_s"]), 3.0);
    assert!(
        text(&o).contains("windows of 3 s; the worst was"),
        "{}",
        text(&o)
    );
    let html = std::fs::read_to_string(c.out().join("report.html")).unwrap();
    assert!(html.contains("windows of 3 s; the worst was"));
    // merge reads the same seconds back from the run directory and judges alike.
    let merged = c.dir.path().join("merged");
    let o = merge(
        c.dir.path(),
        &[c.out().to_str().unwrap()],
        merged.to_str().unwrap(),
        &["--no-report"],
    );
    assert_eq!(code(&o), 1, "{}", text(&o));
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(merged.join("summary.json")).unwrap()).unwrap();
    assert_eq!(
        m["slo"], s["slo"],
        "the merge judges the windows exactly as the run"
    );

    // A healthy target slower than the window: no window reads as empty, and the drain
    // counts in no rate (issue 17 review: the first windows failed as "no data").
    let c = get_case(
        "[[route]]\npath = \"/\"\nlatency = { dist = \"fixed\", value = \"1500ms\" }\n",
        "/",
        "timeout = \"5s\"",
        "model = \"open\"\nstages = [{ duration = \"6s\", target_rps = 10 }]\nwarmup = \"1s\"\nmax_late_ratio = 0.5",
        "budgets = [\"p95 < 3s over 1s\", \"throughput > 9rps over 2s\", \"error_rate < 1% over 1s\"]",
    );
    let o = run_q(&c, &[]);
    assert_eq!(code(&o), 0, "{}", text(&o));

    // abort_on_fail on a window: stopped at the first breached window.
    let c = get_case(
        profile,
        "/",
        "",
        "model = \"open\"\nstages = [{ duration = \"30s\", target_rps = 20 }]\nmax_late_ratio = 0.5",
        "budgets = [{ expr = \"error_rate < 30% over 3s\", abort_on_fail = true, abort_delay = \"0s\" }]",
    );
    let o = run_q(&c, &[]);
    assert_eq!(code(&o), 1, "{}", text(&o));
    let s = c.summary();
    assert_eq!(s["stop"], "aborted");
    assert!(f64_at(&s["measured_s"]) < 12.0, "{}", s["measured_s"]);
}

/// Regression: open model at 200/s with `timeout = "2s"` against a target that never
/// answers was INVALID (0.7% dropped at `max_in_flight`, whose default was exactly
/// peak x timeout while timeouts fire up to 10 ms late) instead of FAIL.
#[test]
fn a_hanging_target_is_a_failure_not_an_invalid_run() {
    let server =
        loadgate_target::spawn_fault(loadgate_target::Fault::Hang, "127.0.0.1:0".parse().unwrap())
            .unwrap();
    let c = get_case(
        "",
        "/",
        "timeout = \"2s\"",
        "model = \"open\"\nstages = [{ duration = \"3s\", target_rps = 200 }]\nmax_late_ratio = 0.5",
        "budgets = [\"p95 < 5s\"]",
    );
    let o = run_q(&c, &["--target", &server.base_url()]);
    assert_eq!(code(&o), 1, "{}", text(&o));
    let s = c.summary();
    assert_eq!(s["verdict"], "fail");
    assert_eq!(s["overall"]["dropped"], 0, "{}", s["overall"]);
    assert_eq!(s["overall"]["outcomes"]["timeout"], 600);
    // Regression (issue 18 review): a request given up on for its timeout lost the
    // connection it had opened: 0 connects against a target that hangs. Each of the 600
    // opened one (none came back to be reused).
    assert_eq!(s["overall"]["connects"], 600, "{}", s["overall"]);
}

/// Regression: with other work on the cores, a few sends a few milliseconds late made
/// short runs INVALID (one late send of 60), though that lag is inside every latency
/// measured from the intended time. Robust validity keeps the verdict; strict keeps the
/// old rule for those who want it.
#[test]
fn late_sends_that_cannot_change_the_verdict_do_not_invalidate_the_run() {
    let profile = "[[route]]\npath = \"/\"\nlatency = { dist = \"fixed\", value = \"2ms\" }\n";
    for (validity, want) in [("robust", 0), ("strict", 3)] {
        let c = get_case(
            profile,
            "/",
            "",
            &format!(
                "model = \"open\"\nstages = [{{ duration = \"6s\", target_rps = 10 }}]\nvalidity = \"{validity}\""
            ),
            "budgets = [\"p95 < 2s\", \"error_rate < 1%\"]",
        );
        let (_serial, child) = start_run(&c, &["-q"], 2000);
        // The whole process stops for 250 ms: two or three sends go out late, by less
        // than the 1 s (ten arrival spacings) after which the target would see bursts.
        signal(&child, "-STOP");
        std::thread::sleep(Duration::from_millis(250));
        signal(&child, "-CONT");
        let (o, _) = wait_bounded(child, Duration::from_secs(30));
        assert_eq!(code(&o), want, "{validity}: {}", text(&o));
        let s = c.summary();
        assert!(s["rate"]["late"].as_u64().unwrap() >= 2, "{}", s["rate"]);
        assert_eq!(s["rate"]["bunched"], 0, "{}", s["rate"]);
        assert_eq!(s["rate"]["validity"], validity);
        // Arrivals are 100 ms apart, so one fell due in the first 100 ms of the stop
        // (at least 250 ms long) and was sent at least 150 ms late; how much more
        // depends on where the stop fell, which the test does not choose.
        let max = f64_at(&s["rate"]["send_lag_us"]["max"]);
        assert!(max >= 150_000.0, "{}", s["rate"]);
    }
}

/// Regression: an interrupted run whose every budget held said "FAIL ... at least one
/// SLO budget was breached", `verdict: fail` and `failures="0"` in junit.xml; with
/// requests in flight its rate counted the schedule past the interruption ("generator
/// sent 169.6 rps of 200 (84.8%)").
#[test]
fn an_interrupted_run_says_so_and_claims_no_breach() {
    let c = get_case(
        "[[route]]\npath = \"/\"\nlatency = { dist = \"fixed\", value = \"300ms\" }\n",
        "/",
        "",
        "model = \"open\"\nstages = [{ duration = \"30s\", target_rps = 50 }]\nmax_late_ratio = 0.5",
        "budgets = [\"p95 < 2s\"]",
    );
    let (serial, child) = start_run(&c, &[], 2300);
    signal(&child, "-INT");
    let (o, _) = wait_bounded(child, Duration::from_secs(20));
    assert_eq!(code(&o), 130, "{}", text(&o));
    assert!(
        text(&o).contains("verdict: INTERRUPTED (stopped after")
            && text(&o).contains("no budget was breached in what was measured"),
        "{}",
        text(&o)
    );
    let s = c.summary();
    assert_eq!(s["verdict"], "interrupted");
    assert_eq!(s["stop"], "interrupted");
    let ratio = f64_at(&s["rate"]["achieved_ratio"]);
    assert!(
        ratio > 0.97,
        "sent up to the stop, judged up to the stop: {}",
        s["rate"]
    );
    assert!(s["invalid_reasons"].as_array().unwrap().is_empty());
    let junit = std::fs::read_to_string(c.out().join("junit.xml")).unwrap();
    assert!(
        junit.contains("failures=\"0\" errors=\"1\"") && junit.contains("type=\"interrupted\""),
        "{junit}"
    );
    let html = std::fs::read_to_string(c.out().join("report.html")).unwrap();
    assert!(html.contains("INTERRUPTED") && !html.contains("at least one SLO budget was breached"));
    drop(serial);

    // Interrupted in the warm-up: nothing measured, nothing claimed, the real stop time.
    let c = get_case(
        "[[route]]\npath = \"/\"\n",
        "/",
        "",
        "model = \"open\"\nstages = [{ duration = \"30s\", target_rps = 20 }]\nwarmup = \"10s\"\nmax_late_ratio = 0.5",
        "budgets = [\"p95 < 2s\", \"p95 < 2s over 5s\"]",
    );
    let (_serial, child) = start_run(&c, &[], 2000);
    signal(&child, "-INT");
    let (o, _) = wait_bounded(child, Duration::from_secs(20));
    assert_eq!(code(&o), 130, "{}", text(&o));
    let s = c.summary();
    assert!(
        s["invalid_reasons"].as_array().unwrap().is_empty(),
        "{}",
        s["invalid_reasons"]
    );
    let stopped = f64_at(&s["warmup_s"]) + f64_at(&s["measured_s"]);
    assert!(stopped < 8.0, "stopped after {stopped} s");
    assert!(text(&o).contains("no budget was breached"), "{}", text(&o));
    // Regression (second review): "held in all 0 windows; the worst was 0-0 s"; third:
    // a bare FAIL beside "no budget was breached".
    assert!(!text(&o).contains("all 0 windows"), "{}", text(&o));
    assert!(text(&o).contains("FAIL (no data)"), "{}", text(&o));
    let junit = std::fs::read_to_string(c.out().join("junit.xml")).unwrap();
    assert!(junit.contains("failures=\"0\" errors=\"1\""), "{junit}");
}

/// Regression: `compare` of a 60 rps baseline with a 40,000 rps invalid run said
/// REGRESSION; a half-load segment against a full run said throughput -50%.
#[test]
fn runs_of_different_loads_are_not_compared() {
    let profile = "[[route]]\npath = \"/\"\n";
    let load = |rps: u32| {
        format!("model = \"open\"\nstages = [{{ duration = \"1s\", target_rps = {rps} }}]\nmax_late_ratio = 0.5")
    };
    let base = get_case(profile, "/", "", &load(20), "budgets = [\"p95 < 2s\"]");
    assert_eq!(code(&run_q(&base, &[])), 0);
    let other = get_case(profile, "/", "", &load(60), "budgets = [\"p95 < 2s\"]");
    assert_eq!(code(&run_q(&other, &[])), 0);
    let o = base.loadgate(&["compare", "{out}", other.out().to_str().unwrap()], &[]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(
        text(&o).contains("not comparable") && text(&o).contains("peak 20 rps and 60 rps"),
        "{}",
        text(&o)
    );
    // The same load compares.
    let again = get_case(profile, "/", "", &load(20), "budgets = [\"p95 < 2s\"]");
    assert_eq!(code(&run_q(&again, &[])), 0);
    let o = base.loadgate(&["compare", "{out}", again.out().to_str().unwrap()], &[]);
    assert!(matches!(code(&o), 0 | 5), "{}", text(&o));

    // A run directory of summary layout 1 (before latency covered successes only) still
    // renders, and is not compared with a new one.
    let old = again.out();
    let path = old.join("summary.json");
    let mut s: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    s["schema_version"] = 1.into();
    let o = s.as_object_mut().unwrap();
    for key in ["drain_s", "load"] {
        o.remove(key);
    }
    let strip = |e: &mut serde_json::Value| {
        for key in ["send_lag_us", "connects", "connect_us", "unbuilt", "resent"] {
            e.as_object_mut().unwrap().remove(key);
        }
    };
    strip(&mut o["overall"]);
    o["endpoints"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .for_each(strip);
    std::fs::write(&path, serde_json::to_vec(&s).unwrap()).unwrap();
    let o = base.loadgate(&["report", old.to_str().unwrap()], &[]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let o = base.loadgate(&["compare", old.to_str().unwrap(), "{out}"], &[]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(text(&o).contains("summary layouts 1 and 5"), "{}", text(&o));
}

/// Regression: `capacity --max-rps 400` of a scenario with `throughput > 50rps` started
/// at 10/s, which cannot meet it, bisected down to 2/s and reported "first breach at 2
/// rps". A throughput budget is judged against each step's offered rate, the ladder
/// starts where the budget can be met, and the search passes only if it is sustained.
#[test]
fn capacity_judges_throughput_against_the_offered_rate_and_starts_where_it_can_pass() {
    let c = get_case(
        "[[route]]\npath = \"/\"\nlatency = { dist = \"fixed\", value = \"2ms\" }\n",
        "/",
        "",
        "model = \"open\"\nstages = [{ duration = \"1s\", target_rps = 10 }]\nmax_late_ratio = 0.5",
        "budgets = [\"throughput > 50rps\", \"p95 < 1s\"]",
    );
    let o = c.loadgate(
        &[
            "capacity",
            "{s}",
            "--out",
            "{out}",
            "--start-rps",
            "10",
            "--max-rps",
            "100",
            "--step-duration",
            "1s",
            "--settle",
            "0s",
            "-q",
        ],
        &[],
    );
    assert_eq!(code(&o), 0, "{}", text(&o));
    let cap: serde_json::Value =
        serde_json::from_slice(&std::fs::read(c.out().join("capacity.json")).unwrap()).unwrap();
    let steps = cap["steps"].as_array().unwrap();
    assert_eq!(f64_at(&steps[0]["rate_rps"]), 50.0, "{cap}");
    assert!(
        steps.iter().all(|s| f64_at(&s["rate_rps"]) >= 50.0),
        "{cap}"
    );
    assert_eq!(f64_at(&cap["require_rps"]), 50.0);
    assert_eq!(cap["verdict"], "pass");
    // A budget above max_rps can never be shown: refused before any load.
    let o = c.loadgate(
        &["capacity", "{s}", "--out", "{out}", "--max-rps", "40", "-q"],
        &[],
    );
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(text(&o).contains("above max_rps 40"), "{}", text(&o));
}

/// Regression (second review): a target slower than its budget on every answer was
/// INVALID when the generating process paused: the figure minus the longest pause would
/// have met the budget, though a pause holds up only the answers it overlaps.
#[test]
fn a_slow_target_is_a_failure_even_when_the_generator_paused() {
    let c = get_case(
        "[[route]]\npath = \"/slow\"\nlatency = { dist = \"fixed\", value = \"500ms\" }\n",
        "/slow",
        "",
        "model = \"open\"\nstages = [{ duration = \"4s\", target_rps = 20 }]\nmax_late_ratio = 0.5",
        "budgets = [\"p50 < 300ms\"]",
    );
    // Every answer takes 500 ms; a 300 ms stop of the whole process in the middle.
    let (_serial, child) = start_run(&c, &["-q"], 1500);
    signal(&child, "-STOP");
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, "-CONT");
    let (o, _) = wait_bounded(child, Duration::from_secs(60));
    assert_eq!(code(&o), 1, "{}", text(&o));
    let s = c.summary();
    assert_eq!(s["verdict"], "fail");
    assert!(
        s["pauses"]["max_us"].as_u64().unwrap() >= 250_000,
        "{}",
        s["pauses"]
    );
    assert_eq!(s["slo"][0]["robust"], true);
}

/// A target in a thread of the test's own, outside loadgate's process (a stop of
/// loadgate does not stop it): every request answered `200` after `delay`, over
/// HTTP/1.1 keep-alive. Serves until the returned flag is set.
fn slow_target(delay: Duration) -> (String, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicBool, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    listener.set_nonblocking(true).unwrap();
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let done = stop.clone();
    std::thread::spawn(move || {
        let started = std::time::Instant::now();
        while !done.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(120) {
            let Ok((mut conn, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(2));
                continue;
            };
            std::thread::spawn(move || {
                let _ = conn.set_nonblocking(false);
                let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // One request at a time: a head ends at a blank line (GETs, no body).
                while let Ok(n) = conn.read(&mut chunk) {
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.drain(..end + 4);
                        std::thread::sleep(delay);
                        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        if conn.write_all(answer).is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (url, stop)
}

/// Regression (hostile review of issue 21): a request whose deadline passed while
/// loadgate was stopped, its answer (in 0.5 s, against a 1 s timeout) already waiting
/// in its socket, was failed as a timeout (50 at 100/s across a 1.5 s stop), and the
/// judge had to excuse "timeouts that may have run out while paused", which on a busy
/// machine excused real ones. A deadline found passed by a look that came late now gets
/// one more tick, in which the answer is read: no timeout, and none to excuse.
#[test]
fn answers_that_came_in_time_are_read_after_a_stop_not_timed_out() {
    let (url, stop) = slow_target(Duration::from_millis(500));
    let c = Case::new(&format!(
        "name = \"v\"\ntarget = \"{url}\"\n[defaults]\ntimeout = \"1s\"\n\
         [[endpoint]]\nname = \"get\"\npath = \"/\"\n\
         [load]\nmodel = \"open\"\nstages = [{{ duration = \"5s\", target_rps = 100 }}]\nmax_late_ratio = 1.0\n\
         [slo]\nbudgets = [\"error_rate < 1%\"]\n"
    ));
    let (_serial, child) = start_run(&c, &["-q"], 2500);
    signal(&child, "-STOP");
    std::thread::sleep(Duration::from_millis(1500));
    signal(&child, "-CONT");
    let (o, _) = wait_bounded(child, Duration::from_secs(60));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let s = c.summary();
    assert!(
        s["pauses"]["max_us"].as_u64().unwrap() >= 1_000_000,
        "{}",
        s["pauses"]
    );
    let outcomes = &s["overall"]["outcomes"];
    assert_eq!(outcomes["timeout"], 0, "{outcomes} {}", text(&o));
    assert!(outcomes["success"].as_u64().unwrap() > 100, "{outcomes}");
}

/// Regression (second review): Ctrl-C while waiting for the target to become healthy
/// killed loadgate outright (no handler yet), or was ignored until the health timeout.
#[test]
fn ctrl_c_during_the_health_wait_ends_it_with_exit_130() {
    let c = get_case(
        "[[route]]\npath = \"/sick\"\nhealth = { unhealthy_for = \"1h\" }\n",
        "/sick",
        "",
        "model = \"open\"\nstages = [{ duration = \"2s\", target_rps = 5 }]\nmax_late_ratio = 0.5",
        "",
    );
    let (_serial, child) = start_run(
        &c,
        &["-q", "--wait-healthy", "/sick", "--health-timeout", "5m"],
        2000,
    );
    signal(&child, "-INT");
    let (o, _) = wait_bounded(child, Duration::from_secs(30));
    assert_eq!(o.status.code(), Some(130), "{}", text(&o));
    assert!(
        text(&o).contains("interrupted while waiting for GET /sick"),
        "{}",
        text(&o)
    );
    // No load was sent: no run directory either.
    assert_never_started(&c);
}

/// Regression (second review): with `connections = 2` against a 200 ms target at 20/s,
/// requests that timed out waiting for a connection of loadgate's own pool were counted
/// as sent and as the target's timeouts (FAIL, "sent 100%"). The wait is the generator's:
/// a request is sent when its turn comes, one that waits a whole timeout is dropped, and
/// the run is INVALID. A hanging target with the same pool still fails.
#[test]
fn a_full_connection_pool_is_the_generators_shortfall_and_a_hanging_target_still_fails() {
    let profile =
        "[[route]]\npath = \"/slow\"\nlatency = { dist = \"fixed\", value = \"200ms\" }\n\
                   [[route]]\npath = \"/hang\"\nlatency = { dist = \"fixed\", value = \"30s\" }\n";
    let load =
        "model = \"open\"\nstages = [{ duration = \"6s\", target_rps = 20 }]\nmax_late_ratio = 0.5";
    let slo = "budgets = [\"p95 < 1s\", \"error_rate < 1%\"]";
    let c = get_case(profile, "/slow", "timeout = \"2s\"", load, slo);
    let o = run_q(&c, &["--connections", "2"]);
    assert_eq!(code(&o), 3, "{}", text(&o));
    let s = c.summary();
    assert_eq!(
        s["overall"]["errors"], 0,
        "no timeout is the target's: {}",
        s["overall"]
    );
    let dropped = s["overall"]["dropped"].as_u64().unwrap();
    assert!(dropped > 0, "{}", s["overall"]);
    let sent = s["overall"]["sent"].as_u64().unwrap();
    // Two connections carry at most 2 / 0.2 s = 10 requests a second, over the 6 s and
    // the 2 s timeout after them: never the 120 due.
    assert!(sent <= 10 * (6 + 2) + 2, "sent {sent}");
    assert!(
        s["invalid_reasons"]
            .to_string()
            .contains("no connection of the fixed pool"),
        "{}",
        s["invalid_reasons"]
    );
    let c = get_case(profile, "/hang", "timeout = \"2s\"", load, slo);
    let o = run_q(&c, &["--connections", "2"]);
    assert_eq!(code(&o), 1, "{}", text(&o));
    assert_eq!(c.summary()["verdict"], "fail");
}
