//! Split loads: `loadgate run --segment` processes, and `loadgate merge`, which adds
//! their run directories into exactly the whole load or refuses.

mod common;

use common::*;

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
        "model = \"closed\"\nstages = [{ duration = \"1s\", vus = 3 }]\nmax_late_ratio = 0.5",
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

/// Regression (second issue 17 review): segments started without `--start-at`, the second
/// two seconds after the first, put one segment's drain in the other's measured second;
/// the merge folded that whole second as drain and then panicked judging a window over
/// the gap (exit 101).
#[test]
fn segments_started_apart_merge_with_windows_and_drain_without_a_panic() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let c = get_root_case(
        "model = \"open\"\nstages = [{ duration = \"4s\", target_rps = 40 }]\nmax_late_ratio = 0.5",
        "budgets = [\"p95 < 2s over 2s\", \"throughput > 30rps over 2s\", \"throughput > 30rps\", \"attainment > 50% over 2s\"]",
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
    assert!(merged["slo"].as_array().unwrap().len() >= 4);
    // The good requests of each second come through the segments' time series: every
    // success is good (no goodput limits), so each window's attainment is its share of
    // successes, not the zero a lost count would read.
    let attainment = merged["slo"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["expr"] == "attainment > 50% over 2s")
        .unwrap();
    assert!(
        attainment["window"]["windows"].as_u64().unwrap() > 0,
        "{attainment}"
    );
    assert!(
        attainment["measured"].as_f64().unwrap() > 0.5,
        "{attainment}"
    );
}
