//! `loadgate capacity`: the search finds the knee of a capacity model, renders again with
//! `loadgate report`, and checks its flags before any load.

mod common;

use common::*;

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

/// Regression: a capacity search of a closed-model scenario refused a send-lag budget
/// (by `--slo` or in the file) as the closed model has no send lag, although every step
/// of the search runs the open model. `run` and `validate` of that scenario still refuse
/// it, with the closed model's reason.
#[test]
fn capacity_of_a_closed_scenario_takes_send_lag_budgets_which_run_refuses() {
    let closed =
        "model = \"closed\"\nstages = [{ duration = \"2s\", vus = 2 }]\nmax_late_ratio = 0.5";
    let c = Case::new(&format!(
        "{}[capacity]\nstart_rps = 20\nmax_rps = 20\nstep_duration = \"1s\"\nsettle = \"0s\"\nrefine = 0\n",
        scenario(closed, "budgets = [\"send_lag_p90 < 10s\", \"p99 < 10s\"]")
    ));
    let reason = "measures send lag, which the closed model does not have";
    let o = c.loadgate(&["validate", "{s}"], &[]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(text(&o).contains(reason), "{}", text(&o));
    let o = c.loadgate(&["run", "{s}", "--out", "{out}", "-q"], &[]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(text(&o).contains(reason), "{}", text(&o));
    assert_never_started(&c);

    let o = c.loadgate(
        &[
            "capacity",
            "{s}",
            "--out",
            "{out}",
            "-q",
            "--slo",
            "send_lag_p99 < 5s",
        ],
        &[],
    );
    assert_eq!(code(&o), 0, "{}", text(&o));
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(c.out().join("capacity.json")).unwrap()).unwrap();
    let budgets: Vec<&str> = r["budgets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_str().unwrap())
        .collect();
    for b in ["send_lag_p90 < 10s", "send_lag_p99 < 5s", "p99 < 10s"] {
        assert!(budgets.iter().any(|x| x.contains(b)), "{b} in {budgets:?}");
    }
    assert_eq!(r["steps"].as_array().unwrap().len(), 1, "{r}");
    assert_eq!(r["steps"][0]["verdict"], "pass", "{r}");
}
