//! Rendering a fixed, synthetic run directory: snapshots of the CI formats, escaping of
//! hostile names, and a self-contained HTML page.

use std::path::PathBuf;

use loadgate_report::testing::{one_hour, synthetic};
use loadgate_report::{render, RunDir};

/// A deterministic run: 10 s, 2 s warm-up, two endpoints, one failing budget.
fn fixture(names: &[&str]) -> RunDir {
    synthetic(names, 10, 2, 50)
}

fn artifact(run: &RunDir, name: &str) -> String {
    render(run, None)
        .into_iter()
        .find(|a| a.name == name)
        .unwrap_or_else(|| panic!("no {name}"))
        .contents
}

#[test]
fn summary_md_snapshot() {
    insta::assert_snapshot!(artifact(
        &fixture(&["analyze", "agent_query"]),
        "summary.md"
    ));
}

#[test]
fn junit_xml_snapshot() {
    insta::assert_snapshot!(artifact(&fixture(&["analyze", "agent_query"]), "junit.xml"));
}

#[test]
fn a_hostile_endpoint_name_renders_as_text_everywhere() {
    let evil = "<script>alert(1)</script>";
    let run = fixture(&[evil, "x\" onload=\"alert(2)"]);
    for a in render(&run, None) {
        assert!(
            !a.contents.contains("<script"),
            "{} has a raw <script>",
            a.name
        );
        assert!(
            !a.contents.contains("\" onload=\""),
            "{} has a raw attribute break",
            a.name
        );
    }
    let html = artifact(&run, "report.html");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "the name is shown, escaped"
    );
    assert!(artifact(&run, "summary.md").contains("&lt;script&gt;"));
    assert!(artifact(&run, "junit.xml").contains("&lt;script&gt;"));
}

#[test]
fn the_html_report_is_self_contained() {
    let run = fixture(&["analyze", "agent_query"]);
    let html = artifact(&run, "report.html");
    for banned in [
        "<script",
        "<link",
        "<img",
        "<iframe",
        "@import",
        "url(",
        "src=",
        "href=\"http",
    ] {
        assert!(!html.contains(banned), "report.html contains {banned}");
    }
    assert!(
        html.contains("default-src 'none'"),
        "a CSP forbids any load"
    );
    // Every chart is inline and has content.
    let charts = render(&run, None)
        .into_iter()
        .filter(|a| a.name.ends_with(".svg"))
        .collect::<Vec<_>>();
    assert!(charts.len() >= 7, "{}", charts.len());
    for c in &charts {
        assert!(
            html.contains(&format!("data-chart=\"{}\"", c.name)),
            "{} is not in the page",
            c.name
        );
        assert!(
            c.contents.starts_with("<svg") && c.contents.matches("<text").count() >= 3,
            "{} looks empty",
            c.name
        );
    }
    // The verdict is stated in words, with its colour class.
    assert!(html.contains("class=\"verdict fail\""));
    assert!(html.contains("FAIL — analyze-scenario"));
    assert!(html.contains("0123abc"));
    // Where the workers ran is a key fact.
    assert!(
        html.contains("<dd>2, pinned to CPUs 0, 1</dd>"),
        "no pinning fact"
    );
}

#[test]
fn budgets_are_drawn_on_the_charts_they_constrain() {
    let run = fixture(&["analyze", "agent_query"]);
    assert!(artifact(&run, "latency.svg").contains("budget p99 &lt; 60ms"));
    assert!(artifact(&run, "throughput.svg").contains("budget throughput &gt; 40rps"));
    assert!(artifact(&run, "latency.svg").contains("warm-up"));
}

#[test]
fn the_drain_and_a_broken_windows_worst_are_shaded_on_the_charts_of_its_metric() {
    let mut run = fixture(&["analyze", "agent_query"]);
    let budget = loadgate_slo::parse("error_rate < 1% over 3s").unwrap();
    let mut r = budget.result("global", loadgate_slo::Measure::Value(0.4));
    r.window = Some(loadgate_slo::window::WindowSummary {
        length_s: 3,
        windows: 6,
        breaching: 2,
        worst_start_s: 4.0,
        worst_end_s: 7.0,
        partial: false,
    });
    run.summary.slo.push(r);
    // The last two seconds are drain.
    run.summary.measured_s = 6.0;
    for row in run.series.iter_mut().filter(|r| r.t >= 8) {
        row.drain = true;
    }
    let errors = artifact(&run, "errors.svg");
    assert!(
        errors.contains("worst window: error_rate &lt; 1% over 3s"),
        "{errors}"
    );
    assert!(errors.contains("drain: answers to earlier sends"));
    assert!(!artifact(&run, "latency.svg").contains("worst window"));
    let html = artifact(&run, "report.html");
    assert!(html.contains("broken in 2 of 6 windows of 3 s; the worst was 4-7 s"));
}

/// What headless Chromium saw when it loaded a page.
struct Page {
    dom: String,
    console: Vec<String>,
    /// http(s) requests the page made (Chromium's own background requests excluded).
    requests: Vec<String>,
}

fn chromium() -> Option<PathBuf> {
    // `LOADGATE_CHROMIUM=none` runs the suite as on a machine without one.
    if let Ok(p) = std::env::var("LOADGATE_CHROMIUM") {
        return (p != "none").then(|| PathBuf::from(p));
    }
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// Loads `url` in headless Chromium with every host but 127.0.0.1 unresolvable, and
/// returns the DOM, console messages and page-initiated requests (from its net log).
fn load(bin: &std::path::Path, url: &str, screenshot: Option<&std::path::Path>) -> Page {
    let work = tempfile::tempdir().unwrap();
    let netlog = work.path().join("netlog.json");
    let mut cmd = std::process::Command::new(bin);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ])
    .arg(format!(
        "--user-data-dir={}",
        work.path().join("profile").display()
    ))
    .arg("--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1")
    .args(["--enable-logging=stderr", "--v=0"])
    .arg(format!("--log-net-log={}", netlog.display()));
    match screenshot {
        Some(p) => cmd
            .arg("--window-size=1200,4200")
            .arg(format!("--screenshot={}", p.display())),
        None => cmd.arg("--dump-dom"),
    };
    // Files, not pipes: chromium writes a lot to stderr, and a full pipe would block it.
    let (out_path, err_path) = (work.path().join("stdout"), work.path().join("stderr"));
    cmd.arg(url)
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap());
    let mut child = cmd.spawn().expect("start chromium");
    // Bounded: a hung browser fails the test instead of hanging it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish within 90 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    let console = stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_string)
        .collect();
    let log: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&netlog).expect("chromium wrote a net log"))
            .expect("the net log is JSON");
    let start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
        .as_u64()
        .expect("known event type");
    let requests = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"].as_u64() == Some(start_job))
        .filter(|e| e["params"]["initiator"].as_str() != Some("not an origin"))
        .filter_map(|e| e["params"]["url"].as_str().map(str::to_string))
        .collect();
    Page {
        dom: std::fs::read_to_string(&out_path).unwrap_or_default(),
        console,
        requests,
    }
}

/// Writes `artifacts` to a folder, loads its report.html in headless Chromium, and checks
/// that the page made no request, logged nothing, has no script, shows the hostile
/// `<script>alert(..)</script>` named by `hostile` as text, and draws every chart.
/// Returns the folder (kept alive by the caller) and the page's URL.
fn assert_renders_offline(
    bin: &std::path::Path,
    artifacts: &[loadgate_report::Artifact],
    hostile: &str,
) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    for a in artifacts {
        std::fs::write(dir.path().join(&a.name), &a.contents).unwrap();
    }
    let url = format!("file://{}", dir.path().join("report.html").display());
    let page = load(bin, &url, None);
    assert!(
        page.requests.is_empty(),
        "report.html made network requests: {:?}",
        page.requests
    );
    assert!(
        page.console.is_empty(),
        "console messages: {:?}",
        page.console
    );
    assert!(
        !page.dom.contains("<script"),
        "a script element exists in the DOM"
    );
    assert!(
        page.dom
            .contains(&format!("&lt;script&gt;{hostile}&lt;/script&gt;")),
        "the hostile name {hostile} is text"
    );
    for chart in artifacts.iter().filter(|a| a.name.ends_with(".svg")) {
        let at = page
            .dom
            .find(&format!("data-chart=\"{}\"", chart.name))
            .unwrap_or_else(|| panic!("{} missing from the DOM", chart.name));
        let figure = &page.dom[at..at + page.dom[at..].find("</figure>").expect("figure closes")];
        let shapes = ["<path", "<polyline", "<rect", "<line"]
            .iter()
            .map(|t| figure.matches(t).count())
            .sum::<usize>();
        assert!(
            figure.contains("<svg") && shapes > 3,
            "{} is empty in the DOM",
            chart.name
        );
    }
    (dir, url)
}

#[test]
fn the_html_report_renders_offline_in_headless_chromium() {
    let Some(bin) = chromium() else {
        assert!(
            std::env::var_os("LOADGATE_REQUIRE_CHROMIUM").is_none(),
            "LOADGATE_REQUIRE_CHROMIUM is set but no chromium was found"
        );
        // Straight to the process's stderr, past the test harness's capture: a skipped
        // check says so in the output of every `cargo test`, passing or not.
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "\nSKIPPED the_html_report_renders_offline_in_headless_chromium: no chromium found, so the report page was not loaded in a browser (install Debian's `chromium`; .ci/run does and requires it)"
        );
        return;
    };
    // The check itself can fail: a page that loads from the network and logs an error.
    let canary_dir = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let canary = canary_dir.path().join("canary.html");
    std::fs::write(
        &canary,
        format!(
            "<!DOCTYPE html><img src=\"http://{}/x.png\"><script>console.error('canary')</script>",
            listener.local_addr().unwrap()
        ),
    )
    .unwrap();
    // Answer the canary's request so the page finishes loading.
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        if let Ok((mut conn, _)) = listener.accept() {
            let _ = conn.set_read_timeout(Some(std::time::Duration::from_secs(5)));
            let _ = conn.read(&mut [0u8; 2048]);
            let _ = conn.write_all(
                b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            );
        }
    });
    let page = load(&bin, &format!("file://{}", canary.display()), None);
    assert_eq!(
        page.requests.len(),
        1,
        "the canary's request was not seen: {:?}",
        page.requests
    );
    assert!(
        page.console.iter().any(|l| l.contains("canary")),
        "the canary's console error was not seen"
    );
    let _ = server.join();

    let run = fixture(&["analyze", "<script>alert(1)</script>"]);
    let (_dir, url) = assert_renders_offline(&bin, &render(&run, None), "alert(1)");

    // A merged run's page, with its segment table.
    let mut merged = fixture(&["analyze"]);
    merged.summary.merged_from = (1..=2)
        .map(|i| loadgate_slo::summary::SegmentRun {
            segment: format!("{i}/2"),
            run: format!("<script>alert({})</script>", 10 + i),
            started_at: "2026-11-22T10:00:00Z".into(),
            verdict: loadgate_slo::summary::Verdict::Pass,
            workers: 2,
            sent: 250,
            requests: 250,
            target_rps: Some(25.0),
            achieved_rps: 25.0,
            achieved_ratio: Some(1.0),
            late: 0,
            dropped: 0,
            error_rate: 0.0,
        })
        .collect();
    let (_merged_dir, _) = assert_renders_offline(&bin, &render(&merged, None), "alert(12)");

    // A capacity search's page.
    let cap = loadgate_report::testing::capacity("<script>alert(3)</script>");
    let (_cap_dir, _) =
        assert_renders_offline(&bin, &loadgate_report::render_capacity(&cap), "alert(3)");

    // A screenshot for people (kept as a CI artifact, not compared).
    let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/report-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let png = shots.join("report.png");
    let _ = std::fs::remove_file(&png);
    load(&bin, &url, Some(&png));
    assert!(
        png.metadata().map(|m| m.len() > 10_000).unwrap_or(false),
        "no screenshot at {}",
        png.display()
    );
}

#[test]
fn a_one_hour_run_renders_well_under_two_megabytes() {
    let run = one_hour();
    let all = render(&run, None);
    let html = all.iter().find(|a| a.name == "report.html").unwrap();
    assert!(
        html.contents.len() < 2 << 20,
        "report.html is {} bytes",
        html.contents.len()
    );
    eprintln!("1-hour report.html: {} bytes", html.contents.len());
}

/// Issue 19: a FAIL banner said "at least one SLO budget was breached" without naming it;
/// it names every breached budget with its measured value.
#[test]
fn the_fail_banner_names_every_breach() {
    let run = fixture(&["analyze", "health"]);
    assert_eq!(run.summary.verdict, loadgate_slo::summary::Verdict::Fail);
    let page = artifact(&run, "report.html");
    let banner = page
        .split("<header class=\"verdict")
        .nth(1)
        .and_then(|h| h.split("</header>").next())
        .expect("a verdict banner");
    for r in run.summary.slo.iter().filter(|r| !r.pass) {
        assert!(
            banner.contains(&format!("{} (", r.expr.replace('<', "&lt;"))),
            "{} missing from {banner}",
            r.expr
        );
        assert!(banner.contains(&r.measured_text), "{banner}");
    }
}

/// A capacity step in which no request succeeded has no latency: its table row says so
/// (not 0.00 ms, which reads as the fastest step of all).
#[test]
fn a_capacity_step_without_answers_has_no_latency_in_the_table() {
    let mut cap = loadgate_report::testing::capacity("svc");
    let s = cap.steps.iter_mut().find(|s| s.rate_rps == 400.0).unwrap();
    (s.p50_ms, s.p95_ms, s.p99_ms, s.success_rps) = (0.0, 0.0, 0.0, 0.0);
    let page = loadgate_report::render_capacity(&cap)
        .into_iter()
        .find(|a| a.name == "report.html")
        .unwrap()
        .contents;
    let row = page
        .split("<tr><td>400</td>")
        .nth(1)
        .and_then(|r| r.split("</tr>").next())
        .expect("the 400 rps row");
    assert!(!row.contains("<td>0.00</td>"), "{row}");
    assert_eq!(row.matches("<td>—</td>").count(), 3, "{row}");
}

/// Issue 20: a run directory written before the timing axis (schema 2: no `ttfb_us` in
/// summary.json, histograms.json with latency, service, send lag and connect only) still
/// opens, renders and compares; the timings it lacks read as empty, never as zero
/// figures of a timing it measured.
#[test]
fn a_schema_2_run_directory_opens_renders_and_compares() {
    use loadgate_metrics::Timing;
    let run = fixture(&["analyze"]);
    let dir = tempfile::tempdir().unwrap();
    let mut summary = serde_json::to_value(&run.summary).unwrap();
    summary["schema_version"] = 2.into();
    let strip = |scope: &mut serde_json::Value| {
        let scope = scope.as_object_mut().unwrap();
        assert!(scope.remove("ttfb_us").is_some() && scope.remove("ttfb_service_us").is_some());
    };
    strip(&mut summary["overall"]);
    summary["endpoints"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .for_each(strip);
    let mut hist = serde_json::to_value(run.histograms.as_ref().unwrap()).unwrap();
    hist["schema_version"] = 2.into();
    for phase in ["measured", "warmup"] {
        let strip = |pair: &mut serde_json::Value| {
            let pair = pair.as_object_mut().unwrap();
            pair.remove("ttfb");
            pair.remove("ttfb_service");
            assert!(pair.contains_key("latency"));
        };
        strip(&mut hist[phase]["all"]);
        hist[phase]["endpoints"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .for_each(strip);
    }
    let write = |name: &str, v: &serde_json::Value| {
        std::fs::write(dir.path().join(name), serde_json::to_string(v).unwrap()).unwrap();
    };
    write(loadgate_report::file::SUMMARY, &summary);
    write(loadgate_report::file::HISTOGRAMS, &hist);

    let old = RunDir::load(dir.path()).expect("a schema-2 run directory opens");
    assert_eq!(old.summary.overall.ttfb_us.count, 0);
    assert_eq!(
        old.summary.overall.latency_us,
        run.summary.overall.latency_us
    );
    let hists = old.histograms().unwrap();
    assert!(hists["analyze"][Timing::Ttfb].is_empty());
    assert_eq!(
        hists["analyze"][Timing::Latency].len(),
        run.histograms().unwrap()["analyze"][Timing::Latency].len()
    );
    let page = artifact(&old, "report.html");
    assert!(
        !page.contains("first byte"),
        "no row for a timing the run did not keep"
    );
    assert!(artifact(&run, "report.html").contains("first byte"));

    // Compared with a new run on time to first byte: no row (the old run has none),
    // and latency compares as before.
    let budgets: Vec<_> = ["p95:+10%", "ttfb_p95:+10%"]
        .iter()
        .map(|b| loadgate_slo::compare::parse_budget(b).unwrap())
        .collect();
    let c = loadgate_slo::compare::compare(
        &old.summary,
        &hists,
        &run.summary,
        &run.histograms().unwrap(),
        &budgets,
    );
    assert!(c.rows.iter().any(|r| r.budget == "p95:+10%"));
    assert!(
        !c.rows.iter().any(|r| r.budget == "ttfb_p95:+10%"),
        "{:?}",
        c.rows
    );
    // ... and a time-to-first-byte budget cannot pass on the old run's silence (review:
    // it printed "no regression" with an empty table).
    assert!(
        c.incomparable.len() == 1
            && c.incomparable[0].contains("the baseline has no `ttfb` figures"),
        "{:?}",
        c.incomparable
    );
    assert!(!c.regression);
    // On latency alone the two layouts compare.
    let c = loadgate_slo::compare::compare(
        &old.summary,
        &hists,
        &run.summary,
        &run.histograms().unwrap(),
        &budgets[..1],
    );
    assert!(c.incomparable.is_empty(), "{:?}", c.incomparable);
}

/// A run whose scenario sets goodput limits has a goodput table (the limits, good
/// requests, goodput and attainment per endpoint and overall) and a goodput chart that
/// states the same figure; a run without limits has neither.
#[test]
fn goodput_limits_give_a_goodput_table_and_chart() {
    let run = loadgate_report::testing::synthetic_goodput(
        &["chat", "embed"],
        10,
        2,
        20,
        &["goodput > 10rps over 2s"],
        1_000_000,
        |t, _| match t == 5 {
            true => (loadgate_metrics::Outcome::Success, 3_000_000, 2_900_000),
            false => (loadgate_metrics::Outcome::Success, 50_000, 40_000),
        },
    );
    let html = artifact(&run, "report.html");
    assert!(
        html.contains("<h2>Goodput (measured phase)</h2>"),
        "no goodput table"
    );
    // chat: 80 requests, 70 good, 8.8 rps, 87.50%; its limit in words.
    assert!(
        html.contains("<tr><td>chat</td><td class=\"l\">latency ≤ 1.00s</td><td>80</td><td>70</td><td>8.8</td><td>87.50%</td></tr>"),
        "{html}"
    );
    assert!(html.contains("<tr class=\"total\"><td>all</td><td class=\"l\"></td><td>160</td><td>140</td><td>17.5</td><td>87.50%</td></tr>"));
    let svg = artifact(&run, "goodput.svg");
    assert!(
        svg.contains("good, within limits (17.5 rps overall)"),
        "{svg}"
    );
    assert!(html.contains("data-chart=\"goodput.svg\""));
    let plain = fixture(&["analyze"]);
    assert!(!artifact(&plain, "report.html").contains("goodput"));
    assert!(render(&plain, None).iter().all(|a| a.name != "goodput.svg"));
}
