use super::*;

#[test]
fn budgets_parse_with_signs_and_units() {
    use Allowance::{Micros, Points, Relative};
    use CompareMetric::{ErrorRate, Max, Percentile, Throughput};
    use Timing::{Connect, Latency, Tpot, Ttfb};
    for (text, timing, metric, allowance) in [
        ("p95:+10%", Latency, Percentile(95.0), Relative(0.10)),
        ("p95:+50ms", Latency, Percentile(95.0), Micros(50_000.0)),
        ("throughput:-5%", Latency, Throughput, Relative(0.05)),
        ("error_rate:+0.5pp", Latency, ErrorRate, Points(0.005)),
        ("p99.9:+1s", Latency, Percentile(99.9), Micros(1e6)),
        ("ttfb_p95:+10%", Ttfb, Percentile(95.0), Relative(0.10)),
        ("connect_max:+5ms", Connect, Max, Micros(5_000.0)),
        // A stream's speed dropping 20% is its time per token rising 25%.
        (
            "tokens_per_s_p10:-20%",
            Tpot,
            Percentile(90.0),
            Relative(0.25),
        ),
        ("tokens_per_s_min:-50%", Tpot, Max, Relative(1.0)),
    ] {
        let b = parse_budget(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(
            (b.timing, b.metric, b.allowance),
            (timing, metric, allowance),
            "{text}"
        );
    }
    for bad in [
        "p95",
        "p95:10%",
        "throughput:+5%",
        "p95:+5pp",
        "p101:+1%",
        "lat:+1%",
        "p95:+x%",
        "ttfb_throughput:-5%",
        "tokens_per_s_p50:+10%",
        "tokens_per_s_p50:-100%",
        "tokens_per_s_p50:-10ms",
        "tokens_per_s_mean:-10%",
    ] {
        assert!(parse_budget(bad).is_err(), "{bad}");
    }
    for d in DEFAULT_BUDGETS {
        parse_budget(d).unwrap();
    }
}

fn hist(values: impl Iterator<Item = u64>) -> LatencyHistogram {
    let mut h = LatencyHistogram::new(60_000_000);
    values.for_each(|v| h.record(v));
    h
}

#[test]
fn ks_distance_is_zero_for_equal_and_one_for_disjoint() {
    let a = hist(1000..2000);
    assert_eq!(ks_distance(&a, &a.clone()), 0.0);
    let b = hist(5000..6000);
    assert!((ks_distance(&a, &b) - 1.0).abs() < 1e-12);
    let c = hist((1000..2000).map(|v| v + 100));
    let d = ks_distance(&a, &c);
    assert!((d - 0.1).abs() < 0.01, "{d}");
}

fn run(values: &[u64]) -> (RunSummary, Histograms) {
    use loadgate_metrics::{Outcome, Sample, Shard};
    let mut shard = Shard::new(1, 60_000_000);
    for &v in values {
        shard.record_send(0, Some(0), false);
        shard.record(&Sample {
            status: Some(200),
            ..Sample::new(0, Outcome::Success, v)
        });
    }
    let e = &shard.endpoints()[0];
    let judged = crate::judge::Judgement {
        slo: Vec::new(),
        rate: None,
        invalid_reasons: Vec::new(),
        verdict: crate::summary::Verdict::Pass,
    };
    let summary = RunSummary {
        schema_version: 1,
        ..RunSummary::fixture("s", "open", &["root".into()], &shard, 1.0, judged)
    };
    let hists = [
        ("all".to_string(), e.timings.clone()),
        ("root".to_string(), e.timings.clone()),
    ]
    .into_iter()
    .collect();
    (summary, hists)
}

#[test]
fn a_wobble_past_the_budget_on_few_samples_is_within_noise() {
    // 20 samples each; only the top one moves, so p95 jumps by 30% but the
    // distributions are the same within noise (KS distance 0.05, critical 0.51).
    let base: Vec<u64> = (1..=20).map(|v| v * 1000).collect();
    let mut new = base.clone();
    *new.last_mut().unwrap() = 26_000;
    new[18] = 25_000;
    let (bs, bh) = run(&base);
    let (ns, nh) = run(&new);
    let budgets = [parse_budget("p95:+10%").unwrap()];
    let c = compare(&bs, &bh, &ns, &nh, &budgets);
    assert!(
        c.rows.iter().all(|r| r.delta_rel.unwrap() > 0.10),
        "{:?}",
        c.rows
    );
    assert!(
        c.rows.iter().all(|r| r.movement == Movement::WithinNoise),
        "{:?}",
        c.rows
    );
    assert!(!c.regression);
    // The same shift on every sample, with enough of them, is a regression.
    let base: Vec<u64> = (0..2000).map(|v| 10_000 + v * 10).collect();
    let new: Vec<u64> = base.iter().map(|v| v * 13 / 10).collect();
    let (bs, bh) = run(&base);
    let (ns, nh) = run(&new);
    assert!(compare(&bs, &bh, &ns, &nh, &budgets).regression);
}

/// Regression (issue 17): a 60 rps baseline against a 40,000 rps invalid run was
/// called a regression; a half-load segment against a full run, throughput -50%.
#[test]
fn runs_of_other_loads_or_invalid_runs_are_not_compared() {
    let values: Vec<u64> = (0..2000).map(|v| 10_000 + v * 10).collect();
    let slower: Vec<u64> = values.iter().map(|v| v * 2).collect();
    let budgets = [parse_budget("p95:+10%").unwrap()];
    let (bs, bh) = run(&values);
    let (mut ns, nh) = run(&slower);
    assert!(compare(&bs, &bh, &ns, &nh, &budgets)
        .incomparable
        .is_empty());
    ns.load.peak = 40_000.0;
    ns.verdict = crate::summary::Verdict::Invalid;
    let c = compare(&bs, &bh, &ns, &nh, &budgets);
    assert!(!c.regression);
    assert_eq!(c.incomparable.len(), 2, "{:?}", c.incomparable);
    assert!(c.incomparable[0].starts_with("the new run is INVALID"));
    assert!(c.incomparable[1].contains("peak 100 rps and 40000 rps"));
    let (mut ns, nh) = run(&slower);
    ns.load.peak = 105.0;
    ns.segment = Some(crate::summary::SegmentInfo {
        index: 1,
        count: 2,
        start_at: None,
        started_unix_ms: 0,
        plan: crate::summary::SegmentPlan {
            model: "open".into(),
            profile: String::new(),
            warmup_s: 0.0,
            endpoints: vec![],
            budgets: vec![],
            data_rows: None,
            timeouts_ms: Default::default(),
            late_tolerance_ms: 1.0,
            send_window_ms: 0.25,
            min_achieved_ratio: 0.95,
            max_late_ratio: 0.01,
            max_dropped_ratio: 0.001,
            validity: "robust".into(),
        },
    });
    let c = compare(&bs, &bh, &ns, &nh, &budgets);
    assert_eq!(
        c.incomparable,
        ["they sent different shares of the load (the whole load and segment 1/2)"]
    );
}

/// Regression (second issue 17 review): a baseline in which every request failed
/// (an empty latency histogram, read as 0 µs) made a healthy new run a regression
/// on every percentile.
#[test]
fn a_side_with_no_successful_request_is_not_compared_and_has_no_latency_rows() {
    let values: Vec<u64> = (0..2000).map(|v| 10_000 + v * 10).collect();
    let budgets = [
        parse_budget("p95:+10%").unwrap(),
        parse_budget("error_rate:+0.5pp").unwrap(),
    ];
    let (mut bs, _) = run(&values);
    let (ns, nh) = run(&values);
    bs.overall.errors = bs.overall.requests;
    bs.overall.error_rate = 1.0;
    let empty: Histograms = nh
        .keys()
        .map(|k| {
            (
                k.clone(),
                Timings::from_fn(|_| LatencyHistogram::new(60_000_000)),
            )
        })
        .collect();
    let c = compare(&bs, &empty, &ns, &nh, &budgets);
    assert!(!c.regression);
    assert!(
        c.incomparable
            .iter()
            .any(|r| r.starts_with("the baseline has no successful request")),
        "{:?}",
        c.incomparable
    );
    assert!(
        c.rows.iter().all(|r| r.budget != "p95:+10%"),
        "{:?}",
        c.rows
    );
}

#[test]
fn a_percentile_the_summary_does_not_list_is_never_a_neighbour() {
    let (bs, _) = run(&[1_000, 2_000]);
    let e = &bs.overall;
    assert_eq!(
        value(e, Timing::Latency, CompareMetric::Percentile(95.0)),
        e.latency_us.p95 as f64
    );
    assert!(value(e, Timing::Latency, CompareMetric::Percentile(97.0)).is_nan());
}

#[test]
fn a_regression_turns_only_a_pass_into_regression() {
    let comparison = |regression| Comparison {
        baseline: "b".into(),
        new: "n".into(),
        budgets: Vec::new(),
        rows: Vec::new(),
        distributions: Vec::new(),
        only_in_baseline: Vec::new(),
        only_in_new: Vec::new(),
        incomparable: Vec::new(),
        regression,
    };
    use crate::summary::Verdict::*;
    for (regression, judged, want) in [
        (true, Pass, Regression),
        (true, Fail, Fail),
        (true, Invalid, Invalid),
        (true, Interrupted, Interrupted),
        (false, Pass, Pass),
        (false, Fail, Fail),
    ] {
        assert_eq!(
            comparison(regression).verdict(judged),
            want,
            "{regression} {judged:?}"
        );
    }
}

/// Review (schema 4): `loadgate compare BASE NEW --budget ttft_p95:+10%` of two runs
/// whose responses do not stream printed "no regression" over an empty table, exit 0
/// (before schema 4 the budget was refused): a budget neither run has figures for
/// would pass on silence, as one the baseline lacks would (issue 20 review).
#[test]
fn a_timing_budget_neither_run_has_figures_for_is_not_compared() {
    let values: Vec<u64> = (0..200).map(|v| 10_000 + v * 10).collect();
    let (bs, bh) = run(&values);
    let (ns, nh) = run(&values);
    for budget in ["ttft_p95:+10%", "itl_p99:+10%", "connect_p99:+5ms"] {
        let budgets = [
            parse_budget("p95:+10%").unwrap(),
            parse_budget(budget).unwrap(),
        ];
        let c = compare(&bs, &bh, &ns, &nh, &budgets);
        assert!(!c.regression);
        assert_eq!(c.incomparable.len(), 1, "{budget}: {:?}", c.incomparable);
        assert!(
            c.incomparable[0].starts_with("neither run has `")
                && c.incomparable[0].contains(budget),
            "{:?}",
            c.incomparable
        );
    }
    // Latency alone compares as before.
    let c = compare(&bs, &bh, &ns, &nh, &[parse_budget("p95:+10%").unwrap()]);
    assert!(c.incomparable.is_empty(), "{:?}", c.incomparable);
}
