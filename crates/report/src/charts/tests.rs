//! Tests of the chart plans: what each chart draws, where, and in which colour, checked
//! on the plan rather than the SVG (the drawing's own tests are in `draw`).

use super::capacity::capacity_plans;
use super::*;
use crate::rundir::Percentiles;
use crate::testing::{synthetic, synthetic_with};
use crate::text::us;
use loadgate_metrics::Outcome;

/// The run most tests draw: two endpoints over 10 s (2 s of warm-up), 50 requests a
/// second, under `synthetic`'s budgets.
pub(super) fn run() -> RunDir {
    synthetic(&["analyze", "health"], 10, 2, 50)
}

/// Adds each of `exprs` to `run`'s results as a budget of `scope`, measured at 1.
pub(super) fn with_budgets(run: &mut RunDir, scope: &str, exprs: &[&str]) {
    for e in exprs {
        let b = loadgate_slo::parse(e).unwrap();
        run.summary
            .slo
            .push(b.result(scope, loadgate_slo::Measure::Value(1.0)));
    }
}

/// Where nothing succeeded (a second of a run, a step of a capacity search), a latency
/// line has a gap, not a drop to 0 and a spike after it; counts stay counts, and
/// nothing succeeded is a true zero.
#[test]
fn nothing_answered_is_a_gap_in_latency_and_a_zero_in_counts() {
    let mut run = run();
    let quiet = &mut run.series[5];
    quiet.outcomes = Default::default();
    quiet.latency_us = Percentiles::default();
    for e in &mut quiet.endpoints {
        e.outcomes = Default::default();
        e.p95_us = 0;
    }
    let mut cap = crate::testing::capacity("svc");
    let s = cap.steps.iter_mut().find(|s| s.rate_rps == 400.0).unwrap();
    (s.p50_ms, s.p95_ms, s.p99_ms, s.success_rps) = (0.0, 0.0, 0.0, 0.0);
    let latency = latency_plan(&run, None);
    let endpoints = endpoints_plan(&run);
    let [knee, _] = capacity_plans(&cap);
    let throughput = throughput_plan(&run, None);
    let succeeded = throughput
        .lines
        .iter()
        .find(|l| l.key == "succeeded")
        .unwrap();
    // (chart, the lines checked, where nothing succeeded, what is drawn there)
    for (chart, lines, x, want) in [
        ("latency", &latency.lines[..], 5.5, None),
        ("p95 per endpoint", &endpoints.lines[..], 5.5, None),
        ("knee latency", &knee.lines[..], 400.0, None),
        (
            "throughput",
            std::slice::from_ref(succeeded),
            5.5,
            Some(0.0),
        ),
    ] {
        assert!(!lines.is_empty(), "{chart}");
        for l in lines {
            let p = l.points.iter().find(|p| p.0 == x).unwrap();
            assert_eq!(p.1, want, "{chart}, {}: {p:?}", l.key);
            if want.is_none() {
                assert!(
                    l.points.iter().filter_map(|p| p.1).all(|v| v > 0.0),
                    "{chart}, {}: a zero drawn",
                    l.key
                );
            }
        }
    }
}

#[test]
fn the_drain_shows_answers_and_no_sends() {
    let mut run = run();
    run.summary.measured_s = 6.0;
    for row in run.series.iter_mut().filter(|r| r.t >= 8) {
        row.drain = true;
    }
    let t = throughput_plan(&run, None);
    for key in ["target", "sent"] {
        let l = t.lines.iter().find(|l| l.key == key).unwrap();
        assert!(
            l.points.iter().all(|p| p.0 < 8.0),
            "{key} drawn in the drain"
        );
    }
    let done = t.lines.iter().find(|l| l.key == "succeeded").unwrap();
    assert!(done.points.iter().any(|p| p.0 > 8.0));
    assert_eq!(t.x_range, 0.0..10.0, "the axis ends with the last second");
    assert!(t
        .shades
        .iter()
        .any(|s| s.label.starts_with("drain") && s.from == 8.0));
    // Series that usually coincide are bands under the lines.
    assert_eq!(t.lines[0].look, Look::Band);
    assert_eq!(
        t.lines.iter().find(|l| l.key == "completed").unwrap().look,
        Look::Band
    );
}

/// Issue 19 (a second new user): a closed-model run said `0.0 s drain`, and its
/// charts shaded a whole drain second with the last answers sloping to zero in it.
#[test]
fn a_run_without_a_drain_draws_none() {
    let mut run = run();
    run.summary.measured_s = 7.0;
    run.summary.drain_s = 0.0;
    run.series[9].drain = true;
    for plan in [latency_plan(&run, None), throughput_plan(&run, None)] {
        assert_eq!(plan.x_range, 0.0..9.0, "{}", plan.title);
        assert!(plan.shades.iter().all(|s| !s.label.starts_with("drain")));
        assert!(plan
            .lines
            .iter()
            .all(|l| l.points.iter().all(|p| p.0 < 9.0)));
    }
}

/// A latency axis turns logarithmic when a budget, or the whole of a line, would lie
/// within a tenth of its height above the floor (answers at 20-70 ms under `p95 < 2s`
/// are a flat line on the floor of a linear axis); otherwise it is linear from 0.
#[test]
fn a_latency_axis_is_logarithmic_when_something_would_lie_on_its_floor() {
    let mut budget_under_the_data = run();
    let b = loadgate_slo::parse("p95 < 1ms").unwrap();
    budget_under_the_data
        .summary
        .slo
        .push(b.result("global", loadgate_slo::Measure::Value(60_000.0)));
    let near = synthetic_with(&["a"], 10, 2, 20, &["p95 < 100ms"], |_, i| {
        (Outcome::Success, 50_000 + i * 1_000, 49_000)
    });
    let far = synthetic_with(&["a"], 10, 2, 20, &["p95 < 2s"], |_, i| {
        (Outcome::Success, 20_000 + i * 2_500, 19_000)
    });
    // (case, run, `None` for a linear axis, or the highest a logarithmic axis's floor
    // may be)
    for (case, run, floor) in [
        (
            "p95 < 1ms over answers of 20 ms and more",
            budget_under_the_data,
            Some(1.0),
        ),
        (
            "data near its budget: 50-69 ms under p95 < 100ms",
            near,
            None,
        ),
        (
            "data far under its budget: 20-68 ms under p95 < 2s",
            far,
            Some(20.0),
        ),
    ] {
        let plan = latency_plan(&run, None);
        let y = plan.y_range();
        assert_eq!(plan.log_scale(), floor.is_some(), "{case}: {y:?}");
        match floor {
            Some(highest) => assert!(y.start > 0.0 && y.start <= highest, "{case}: {y:?}"),
            None => assert_eq!(y.start, 0.0, "{case}"),
        }
    }
}

#[test]
fn budgets_take_their_series_colour_and_differ_from_each_other() {
    let mut run = run();
    for (expr, v) in [("p95 < 2s", 50_000.0), ("mean < 10ms", 40_000.0)] {
        let b = loadgate_slo::parse(expr).unwrap();
        run.summary
            .slo
            .push(b.result("global", loadgate_slo::Measure::Value(v)));
    }
    let plan = latency_plan(&run, None);
    let find = |label: &str| plan.rules.iter().find(|r| r.label == label).unwrap();
    let p95 = find("p95 < 2s");
    let p95_line = plan.lines.iter().position(|l| l.key == "p95").unwrap();
    assert_eq!(plan.rule_color(p95), plan.colors()[p95_line]);
    // A mean budget has the whole run's mean drawn for it, in its colour, and its
    // legend says what broke it.
    let mean = plan.lines.iter().position(|l| l.key == "mean").unwrap();
    assert_eq!(plan.rule_color(find("mean < 10ms")), plan.colors()[mean]);
    let m = run.summary.overall.latency_us.mean / 1000.0;
    assert!(plan.lines[mean].points.iter().all(|p| p.1 == Some(m)));
    assert!(find("mean < 10ms").broken);
    assert!(find("mean < 10ms").why.is_some());
    // A budget with no series at all (min) stays neutral.
    let mut run2 = run.clone();
    let b = loadgate_slo::parse("min < 1ms").unwrap();
    run2.summary
        .slo
        .push(b.result("global", loadgate_slo::Measure::Value(20_000.0)));
    let plan2 = latency_plan(&run2, None);
    let min = plan2.rules.iter().find(|r| r.label == "min < 1ms").unwrap();
    assert_eq!(plan2.rule_color(min), NEUTRAL);
    assert!(!PALETTE.contains(&BROKEN), "red is not a series colour");
    let colors: Vec<RGBColor> = plan.rules.iter().map(|r| plan.rule_color(r)).collect();
    assert!(colors.len() >= 3);
    // Every line's legend gives the whole-run figure the table gives.
    let p95 = &plan.lines[p95_line];
    assert_eq!(
        p95.label,
        format!(
            "p95 (whole run {})",
            us(run.summary.overall.latency_us.p95 as f64)
        )
    );
}

/// Each budget is drawn on the line it constrains, and only on a chart of its scope: an
/// endpoint's budget on its endpoint's line, never on a chart of all endpoints.
/// Regression (issue 19, a second new user): a one-endpoint URL run's p95 chart left out
/// the budget it broke, a global one; with one endpoint, the global p95 budgets are
/// drawn on its line, named as global.
#[test]
fn budgets_are_drawn_on_the_lines_they_constrain() {
    let mut one = synthetic(&["GET /x"], 10, 2, 20);
    let mut two = synthetic(&["a", "b"], 10, 2, 20);
    let b = loadgate_slo::parse("p95 < 1ms").unwrap();
    for run in [&mut one, &mut two] {
        run.summary
            .slo
            .push(b.result("global", loadgate_slo::Measure::Value(60_000.0)));
    }
    let mut health = run();
    let b = loadgate_slo::parse("p95 < 100ms").unwrap();
    health
        .summary
        .slo
        .push(b.result("health", loadgate_slo::Measure::Value(1.0)));
    let mut cap = crate::testing::capacity("svc");
    cap.budgets.push("svc: p95 < 100ms".into());
    let [knee_latency, knee_throughput] = capacity_plans(&cap);
    let (one, two) = (endpoints_plan(&one), endpoints_plan(&two));
    let (latency, endpoints) = (latency_plan(&health, None), endpoints_plan(&health));
    // (chart, budget, each rule drawn for it: its label and the line it constrains)
    for (chart, plan, expr, want) in [
        // With one endpoint, the global ones are its too (all requests are its requests).
        (
            "p95 per endpoint, one",
            &one,
            "p95 < 1ms",
            &[("p95 < 1ms", "GET /x")][..],
        ),
        ("p95 per endpoint, two", &two, "p95 < 1ms", &[]),
        ("latency", &latency, "p95 < 100ms", &[]),
        (
            "p95 per endpoint",
            &endpoints,
            "p95 < 100ms",
            &[("health: p95 < 100ms", "health")],
        ),
        // The knee charts are of all endpoints: global budgets only.
        (
            "knee latency",
            &knee_latency,
            "p95 < 2s",
            &[("p95 < 2s", "p95")],
        ),
        ("knee latency", &knee_latency, "p95 < 100ms", &[]),
        ("knee throughput", &knee_throughput, "p95 < 2s", &[]),
        ("knee throughput", &knee_throughput, "p95 < 100ms", &[]),
    ] {
        let drawn: Vec<(&str, Option<&str>)> = plan
            .rules
            .iter()
            .filter(|r| r.label.ends_with(expr))
            .map(|r| (r.label.as_str(), r.series.as_deref()))
            .collect();
        let want: Vec<(&str, Option<&str>)> = want.iter().map(|&(l, s)| (l, Some(s))).collect();
        assert_eq!(drawn, want, "{chart}: {expr}");
    }
}

#[test]
fn the_spectrum_ends_at_each_lines_maximum() {
    let run = run();
    let plan = spectrum_plan(&run).unwrap();
    let all = &plan.lines[0];
    let max = run.summary.overall.latency_us.max as f64 / 1000.0;
    assert_eq!(all.end_dot.map(|d| d.1), Some(max));
    assert!(all.label.contains("max"));
}

#[test]
fn a_baseline_longer_than_the_run_is_cut_to_the_run() {
    let run = run();
    let mut long = synthetic(&["analyze", "health"], 600, 2, 20);
    // A spike after the run's end must not set the axis.
    long.series[500].latency_us.p95 = 90_000_000;
    long.series[500].latency_us.p99 = 90_000_000;
    let plan = latency_plan(&run, Some(&long));
    for l in plan.lines.iter().filter(|l| l.key.starts_with("baseline")) {
        assert!(!l.points.is_empty());
        assert!(
            l.points.iter().all(|p| plan.x_range.contains(&p.0)),
            "{}: ends at {:?}",
            l.key,
            l.points.last()
        );
        // Second by second, as the run is.
        assert_eq!(l.points.len(), run.series.len());
    }
    assert_eq!(plan.y_range(), latency_plan(&run, None).y_range());
    let t = throughput_plan(&run, Some(&long));
    let b = t.lines.iter().find(|l| l.key == "baseline").unwrap();
    assert!(b.points.iter().all(|p| t.x_range.contains(&p.0)));
}

#[test]
fn a_run_whose_every_request_failed_says_so_on_the_spectrum() {
    let run = synthetic_with(&["a", "b"], 10, 2, 20, &["p95 < 2s"], |_, _| {
        (Outcome::Timeout, 10_000_000, 10_000_000)
    });
    assert!(spectrum_plan(&run).is_none());
    let chart = all(&run, None)
        .into_iter()
        .find(|c| c.file == "spectrum.svg")
        .unwrap();
    assert!(!chart.svg.contains("no requests measured"), "{}", chart.svg);
    assert!(chart.svg.contains("no successful answer"), "{}", chart.svg);
    // Nor do the latency charts draw an empty plot under a legend of series.
    for file in ["latency.svg", "latency-endpoints.svg"] {
        let chart = all(&run, None)
            .into_iter()
            .find(|c| c.file == file)
            .unwrap();
        assert!(chart.svg.contains("no successful answer to plot"), "{file}");
    }
}

#[test]
fn one_endpoint_is_not_drawn_twice_on_the_spectrum() {
    // Its line would equal the line of all endpoints and hide it.
    let run = synthetic(&["only"], 10, 2, 50);
    let plan = spectrum_plan(&run).unwrap();
    assert_eq!(plan.lines.len(), 1);
    assert!(
        plan.lines[0].label.contains("only"),
        "{}",
        plan.lines[0].label
    );
    // The rules still take its colour.
    let r = &plan.rules[0];
    assert_eq!(plan.rule_color(r), plan.colors()[0]);
}

#[test]
fn hundreds_of_endpoints_draw_the_ones_that_matter() {
    let names: Vec<String> = (0..200).map(|i| format!("e{i:03}")).collect();
    let refs: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
    // The higher the index, the slower; e050 has a budget of its own.
    let mut run = synthetic_with(&refs, 20, 2, 400, &["p95 < 2s"], |_, i| {
        let l = 10_000 + (i % 200) * 500;
        (Outcome::Success, l, l)
    });
    with_budgets(&mut run, "e050", &["p95 < 100ms"]);
    for plan in [endpoints_plan(&run), spectrum_plan(&run).unwrap()] {
        // No colour is used twice, so every line drawn can be told apart.
        assert!(plan.lines.len() <= PALETTE.len(), "{}", plan.lines.len());
        let keys: Vec<&str> = plan.lines.iter().map(|l| l.key.as_str()).collect();
        assert!(keys.contains(&"e199"), "the slowest: {keys:?}");
        // And the chart says how many it left out.
        assert!(plan.draw().contains("in the tables"));
    }
    let e = endpoints_plan(&run);
    assert!(
        e.lines.iter().any(|l| l.key == "e050"),
        "the one with a budget"
    );
    assert_eq!(e.rules[0].series.as_deref(), Some("e050"));
}

/// A streamed run gets a chart of its first tokens and gaps over time, whose lines carry
/// the whole run's figures and whose rules are its ttft/itl budgets; those budgets are
/// not drawn on the latency chart, where they would read as latency limits. A run
/// without streams has no such chart.
#[test]
fn streams_have_their_own_chart_and_their_budgets_stay_off_the_latency_chart() {
    let mut run =
        crate::testing::synthetic_streamed(&["agent"], 10, 2, 20, &["p95 < 2s"], |_, i| {
            (Outcome::Success, 300_000 + 1_000 * i, 290_000 + 1_000 * i)
        });
    with_budgets(&mut run, "global", &["ttft_p95 < 500ms", "itl_p99 < 100ms"]);
    let plan = latency::streams_plan(&run).expect("a streamed run");
    let keys: Vec<&str> = plan.lines.iter().map(|l| l.key.as_str()).collect();
    assert_eq!(
        keys,
        ["ttft p50", "ttft p95", "ttft p99", "itl p50", "itl p99", "tpot p50", "tpot p90"]
    );
    let whole = us(run.summary.overall.ttft_us.p95 as f64);
    assert!(
        plan.lines[1].label.contains(&whole),
        "{}",
        plan.lines[1].label
    );
    // Each second's first tokens are a third of its latencies.
    let drawn = plan.lines[0].points.iter().filter_map(|p| p.1).count();
    assert!(drawn >= 8, "{drawn} points");
    let rules: Vec<(&str, Option<&str>)> = plan
        .rules
        .iter()
        .map(|r| (r.label.as_str(), r.series.as_deref()))
        .collect();
    assert_eq!(
        rules,
        [
            ("ttft_p95 < 500ms", Some("ttft p95")),
            ("itl_p99 < 100ms", Some("itl p99"))
        ]
    );
    let latency = latency::latency_plan(&run, None);
    assert!(
        latency
            .rules
            .iter()
            .all(|r| !r.label.starts_with("ttft") && !r.label.starts_with("itl")),
        "{:?}",
        latency.rules.iter().map(|r| &r.label).collect::<Vec<_>>()
    );
    assert!(latency::streams_plan(&super::tests::run()).is_none());
    // The only endpoint that streamed: its own budgets are on the chart too.
    with_budgets(&mut run, "agent", &["ttft_p99 < 1s"]);
    let plan = latency::streams_plan(&run).unwrap();
    assert!(
        plan.rules
            .iter()
            .any(|r| r.label == "agent: ttft_p99 < 1s" && r.series.as_deref() == Some("ttft p99")),
        "{:?}",
        plan.rules.iter().map(|r| &r.label).collect::<Vec<_>>()
    );
    // The chart is in the report, as a file of its own too.
    assert!(all(&run, None).iter().any(|c| c.file == "streams.svg"));
}

/// Each stream's speed over time: the chart draws time per output token per second (the
/// unit of the report's `tpot` table), a `tokens_per_s_` budget as the bound on time per
/// token it is judged as (50 ms for 20 tokens/s, on the mirrored percentile's line), and
/// a windowed one's worst window shaded as every windowed budget's is. Without
/// `tpot_us` in the time series rows there is nothing to draw; without the shading the
/// chart could not say when the streams were slow.
#[test]
fn a_streams_speed_is_drawn_over_time_with_its_budget_and_worst_window() {
    // 10 s, 2 of warm-up; seconds 5 and 6 ten times slower: 5 tokens, the first at a
    // third of the latency, so time per token is a sixth of it (20 ms, then 200 ms).
    let run = crate::testing::synthetic_streamed(
        &["agent"],
        10,
        2,
        20,
        &["tokens_per_s_p10 > 20 over 2s"],
        |t, _| {
            let l = if t == 5 || t == 6 { 1_200_000 } else { 120_000 };
            (Outcome::Success, l, l)
        },
    );
    let plan = latency::streams_plan(&run).expect("a streamed run");
    let tpot = plan
        .lines
        .iter()
        .find(|l| l.key == "tpot p90")
        .expect("a time-per-token line");
    let by_second: Vec<(f64, f64)> = tpot
        .points
        .iter()
        .filter_map(|p| Some((p.0, p.1?)))
        .collect();
    assert!(
        by_second.iter().any(|&(_, ms)| (ms - 20.0).abs() < 0.1)
            && by_second.iter().any(|&(_, ms)| (ms - 200.0).abs() < 0.5),
        "{by_second:?}"
    );
    let rule = plan
        .rules
        .iter()
        .find(|r| r.label.starts_with("tokens_per_s_p10 > 20 over 2s"))
        .expect("the speed budget's rule");
    assert_eq!(rule.series.as_deref(), Some("tpot p90"));
    assert!(
        (rule.y - 50.0).abs() < 1e-9,
        "drawn in ms per token: {}",
        rule.y
    );
    assert!(
        rule.broken && rule.label.contains("time per token < 50"),
        "{}",
        rule.label
    );
    let worst: Vec<(f64, f64)> = plan
        .shades
        .iter()
        .filter(|s| s.label == "worst window: tokens_per_s_p10 > 20 over 2s")
        .map(|s| (s.from, s.to))
        .collect();
    // A window of the slow seconds (every window holding one is as slow at p10).
    assert!(
        worst.len() == 1 && worst[0].1 - worst[0].0 == 2.0 && worst[0].0 < 7.0 && worst[0].1 > 5.0,
        "{worst:?}"
    );
    // The rows carry it, and rows written before it still read.
    let row = &run.series[5];
    let p90 = row.tpot_us.map_or(0, |p| p.p90);
    assert!(p90.abs_diff(200_000) < 500, "{p90}");
    let mut old = serde_json::to_value(row).unwrap();
    old.as_object_mut().unwrap().remove("tpot_us");
    let read: crate::rundir::SeriesRow = serde_json::from_value(old).unwrap();
    assert_eq!(read.tpot_us, None);
}

/// A capacity search of a streamed endpoint draws its first token against the offered
/// rate beside latency, with the global first-token budget on that line; a search
/// without streams draws no such line.
#[test]
fn a_streamed_capacity_search_draws_its_first_token_against_the_rate() {
    let mut cap = crate::testing::capacity("svc");
    assert!(capacity_plans(&cap)[0]
        .lines
        .iter()
        .all(|l| l.key != "ttft p95"));
    for s in &mut cap.steps {
        s.ttft_p95_ms = Some(100.0 + (s.rate_rps - 100.0).max(0.0));
    }
    cap.budgets.push("global: ttft_p95 < 500ms".into());
    let [latency, _] = capacity_plans(&cap);
    let line = latency
        .lines
        .iter()
        .find(|l| l.key == "ttft p95")
        .expect("a ttft line");
    assert_eq!(line.points.len(), cap.steps_by_rate().len());
    assert!(latency
        .rules
        .iter()
        .any(|r| r.label == "ttft_p95 < 500ms" && r.series.as_deref() == Some("ttft p95")));
}

/// A run whose scenario sets goodput limits: 10 s (2 of warm-up) at 20 requests a
/// second within a 1 s latency limit, but for seconds 5 and 6 every answer takes 3 s
/// (over it, from either send). A goodput budget over the whole run holds (15 rps), its
/// 2-second window breaks.
fn goodput_run() -> RunDir {
    crate::testing::synthetic_goodput(
        &["chat"],
        10,
        2,
        20,
        &["goodput > 10rps", "goodput > 10rps over 2s"],
        1_000_000,
        |t, _| match (5..7).contains(&t) {
            true => (Outcome::Success, 3_000_000, 2_900_000),
            false => (Outcome::Success, 50_000, 40_000),
        },
    )
}

/// Goodput over time has a chart of its own, only when the scenario sets goodput
/// limits: each second's good requests (those that completed in it, as a goodput window
/// counts them) as a line over its successes (a band beneath: they usually coincide),
/// the legend stating the run's goodput as the table does, the goodput budgets on that
/// line and a broken window's worst shaded. Without limits every success is good: no
/// such chart, and a goodput budget is drawn on the successes of the throughput chart.
#[test]
fn goodput_has_its_own_chart_when_the_scenario_sets_limits() {
    let good_run = goodput_run();
    assert_eq!(good_run.summary.overall.goodput_rps, 15.0);
    let verdicts: Vec<(&str, bool)> = good_run
        .summary
        .slo
        .iter()
        .map(|r| (r.expr.as_str(), r.pass))
        .collect();
    assert_eq!(
        &verdicts[..2],
        [
            ("goodput > 10rps", true),
            ("goodput > 10rps over 2s", false)
        ]
    );
    let plan = rates::goodput_plan(&good_run).expect("goodput limits");
    assert_eq!(plan.title, "Goodput over time");
    let keys: Vec<(&str, Look)> = plan
        .lines
        .iter()
        .map(|l| (l.key.as_str(), l.look))
        .collect();
    assert_eq!(keys, [("succeeded", Look::Band), ("good", Look::Line)]);
    let good = &plan.lines[1];
    assert!(good.label.contains("(15.0 rps overall)"), "{}", good.label);
    let at = |x: f64| good.points.iter().find(|p| p.0 == x).unwrap().1;
    assert_eq!(
        (at(4.5), at(5.5), at(6.5), at(7.5)),
        (Some(20.0), Some(0.0), Some(0.0), Some(20.0))
    );
    // The successes did not stop: only the good requests did.
    assert!(plan.lines[0].points.iter().all(|p| p.1 == Some(20.0)));
    let rules: Vec<(&str, Option<&str>, bool)> = plan
        .rules
        .iter()
        .map(|r| (r.label.as_str(), r.series.as_deref(), r.broken))
        .collect();
    assert_eq!(
        rules,
        [
            ("goodput > 10rps", Some("good"), false),
            ("goodput > 10rps over 2s", Some("good"), true),
        ]
    );
    let worst: Vec<(f64, f64)> = plan
        .shades
        .iter()
        .filter(|s| s.label == "worst window: goodput > 10rps over 2s")
        .map(|s| (s.from, s.to))
        .collect();
    assert_eq!(worst, [(5.0, 7.0)]);
    // The throughput chart keeps to throughput.
    let t = throughput_plan(&good_run, None);
    assert!(t.lines.iter().all(|l| l.key != "good"));
    assert!(t.rules.is_empty() && t.shades.iter().all(|s| !s.label.contains("goodput")));
    // In the report, after the throughput chart, with a caption that says what it is.
    let charts = all(&good_run, None);
    let files: Vec<&str> = charts.iter().map(|c| c.file).collect();
    let at = files.iter().position(|f| *f == "throughput.svg").unwrap();
    assert_eq!(files[at + 1], "goodput.svg");
    assert!(charts[at + 1].title.starts_with("Goodput over time"));
    assert!(charts[at + 1]
        .svg
        .contains("good, within limits (15.0 rps overall)"));

    // No limits: no goodput chart; a goodput budget is on the successes.
    let mut plain = run();
    with_budgets(&mut plain, "global", &["goodput > 30rps"]);
    assert!(rates::goodput_plan(&plain).is_none());
    assert!(all(&plain, None).iter().all(|c| c.file != "goodput.svg"));
    let plan = throughput_plan(&plain, None);
    assert!(plan
        .rules
        .iter()
        .any(|r| r.label == "goodput > 30rps" && r.series.as_deref() == Some("succeeded")));
}
