//! `loadgate run` against a target that is not there, not ready or misbehaving: an
//! unresolvable host, refused connections, TLS failures, a health check that never
//! passes, and every fault class, each ending in its documented exit code.

mod common;

use common::*;

/// A run whose target never became healthy never started: it leaves no run directory
/// (regression: it left `run.json`, and `loadgate report` of the folder then failed on
/// a missing `timeseries.jsonl`), and a folder used again keeps the run it held.
#[test]
fn a_target_that_never_becomes_healthy_exits_4_and_leaves_nothing_behind() {
    let c = Case::new(&scenario(OPEN_2S, ""));
    let unhealthy = [
        "run",
        "{s}",
        "--out",
        "{out}",
        "--wait-healthy",
        "/sick",
        "--health-timeout",
        "1s",
    ];
    let o = c.loadgate(&unhealthy, &[]);
    assert_eq!(code(&o), 4, "{}", text(&o));
    assert!(text(&o).contains("status 503"), "{}", text(&o));
    assert!(text(&o).contains("no load was sent"), "{}", text(&o));
    assert_never_started(&c);
    // `report` of the folder the run named says there is no run there, and makes none.
    let o = c.loadgate(&["report", "{out}"], &[]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(
        text(&o).contains("does not exist") && text(&o).contains("never started"),
        "{}",
        text(&o)
    );
    assert_never_started(&c);
    // So does a capacity search.
    let o = c.loadgate(
        &[
            "capacity",
            "{s}",
            "--out",
            "{out}",
            "-q",
            "--wait-healthy",
            "/sick",
            "--health-timeout",
            "1s",
        ],
        &[],
    );
    assert_eq!(code(&o), 4, "{}", text(&o));
    assert_never_started(&c);

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
    let summary = std::fs::read(c.out().join("summary.json")).unwrap();
    let o = c.loadgate(&unhealthy, &[]);
    assert_eq!(code(&o), 4, "{}", text(&o));
    assert_eq!(
        std::fs::read(c.out().join("summary.json")).unwrap(),
        summary,
        "the run the folder held is kept"
    );
    let o = c.loadgate(&["report", "{out}"], &[]);
    assert_eq!(code(&o), 0, "{}", text(&o));
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
            "model = \"open\"\nstages = [{ duration = \"1s\", target_rps = 10 }]\nmax_late_ratio = 0.5",
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
            "model = \"open\"\nstages = [{ duration = \"1s\", target_rps = 10 }]\nmax_late_ratio = 0.5",
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
        "model = \"open\"\nstages = [{ duration = \"3s\", target_rps = 10 }]\nmax_late_ratio = 0.5",
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
