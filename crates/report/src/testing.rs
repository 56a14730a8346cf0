//! Synthetic run directories for tests and benchmarks: deterministic, built in memory
//! with the same code paths a real run uses for its files.

use std::path::PathBuf;

use loadgate_metrics::{Outcome, Sample, Shard};
use loadgate_slo::judge::{judge, Input, OpenFacts, Stop, ValidityMode};
use loadgate_slo::summary::{GoodputLimits, LoadSummary, RunSummary};
use loadgate_slo::window::{Second, WindowJudge};

use crate::{HistogramsFile, RunDir, SeriesRow};

/// A deterministic open-model run over `seconds` seconds (the first `warmup` of them
/// warm-up) with `per_second` requests a second spread over `names`; a p99 < 60ms budget
/// fails, the others hold.
pub fn synthetic(names: &[&str], seconds: u64, warmup: u64, per_second: u64) -> RunDir {
    synthetic_with(
        names,
        seconds,
        warmup,
        per_second,
        &[
            "p95 < 2s",
            "p99 < 60ms",
            "error_rate < 5%",
            "throughput > 40rps",
        ],
        |t, i| {
            let outcome = if i == 7 && t % 3 == 0 {
                Outcome::Http5xx
            } else {
                Outcome::Success
            };
            let service = 19_000 + (i % 50) * 1_000;
            (outcome, service + 1_000 + (t % 10) * 5_000, service)
        },
    )
}

/// Like [`synthetic`], with the global `budgets` given and request `i` of second `t`
/// answered as `answer(t, i)` says: its outcome, latency and service time in µs. The
/// first endpoint keeps a `p50 < 1s` budget of its own.
pub fn synthetic_with(
    names: &[&str],
    seconds: u64,
    warmup: u64,
    per_second: u64,
    budgets: &[&str],
    answer: impl Fn(u64, u64) -> (Outcome, u64, u64),
) -> RunDir {
    build(
        names, seconds, warmup, per_second, budgets, answer, false, None,
    )
}

/// Like [`synthetic_with`], every endpoint with a goodput limit on latency of
/// `limit_us`: a success within it (from the intended send) is good, and good from the
/// actual send when its service time is within it. Windowed budgets are judged.
pub fn synthetic_goodput(
    names: &[&str],
    seconds: u64,
    warmup: u64,
    per_second: u64,
    budgets: &[&str],
    limit_us: u64,
    answer: impl Fn(u64, u64) -> (Outcome, u64, u64),
) -> RunDir {
    build(
        names,
        seconds,
        warmup,
        per_second,
        budgets,
        answer,
        false,
        Some(limit_us),
    )
}

/// Like [`synthetic_with`], every request a stream: its first token a third of its
/// latency in, then four gaps of a tenth of it each.
pub fn synthetic_streamed(
    names: &[&str],
    seconds: u64,
    warmup: u64,
    per_second: u64,
    budgets: &[&str],
    answer: impl Fn(u64, u64) -> (Outcome, u64, u64),
) -> RunDir {
    build(
        names, seconds, warmup, per_second, budgets, answer, true, None,
    )
}

#[allow(clippy::too_many_arguments)]
fn build(
    names: &[&str],
    seconds: u64,
    warmup: u64,
    per_second: u64,
    budgets: &[&str],
    answer: impl Fn(u64, u64) -> (Outcome, u64, u64),
    streamed: bool,
    good_within_us: Option<u64>,
) -> RunDir {
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let budgets: Vec<_> = budgets
        .iter()
        .map(|b| loadgate_slo::parse(b).unwrap())
        .collect();
    let per_endpoint = loadgate_slo::parse("p50 < 1s").unwrap();
    let mut scoped: Vec<(Option<usize>, &loadgate_slo::Budget)> =
        budgets.iter().map(|b| (None, b)).collect();
    scoped.push((Some(0), &per_endpoint));
    let mut windows = WindowJudge::new(scoped.iter().copied(), true, 60_000_000, None);
    let mut measured = Shard::new(names.len(), 60_000_000);
    let warmup_shard = Shard::new(names.len(), 60_000_000);
    let mut series = Vec::new();
    let mut second = Shard::new(names.len(), 60_000_000);
    let within = |us: u64| good_within_us.is_none_or(|limit| us <= limit);
    for t in 0..seconds {
        second.reset();
        for i in 0..per_second {
            let endpoint = (i % names.len() as u64) as usize;
            let (outcome, latency_us, service_us) = answer(t, i);
            second.record_send(endpoint, Some(100 + i % 300), false);
            second.record(&Sample {
                service_us,
                status: Some(if outcome == Outcome::Success {
                    200
                } else {
                    503
                }),
                bytes: 100,
                ttfb_us: Some(latency_us / 2),
                stream: streamed.then_some(loadgate_metrics::StreamSample {
                    ttft_us: Some(latency_us / 3),
                    events: 5,
                    tokens: 5,
                    ..loadgate_metrics::StreamSample::default()
                }),
                good: outcome == Outcome::Success && within(latency_us),
                good_service: outcome == Outcome::Success && within(service_us),
                ..Sample::new(endpoint, outcome, latency_us)
            });
            if streamed {
                for _ in 0..4 {
                    second.record_gap(endpoint, latency_us / 10);
                }
            }
        }
        if t >= warmup {
            measured.merge_from(&second);
            windows.push(Second {
                start_s: t as f64,
                end_s: t as f64 + 1.0,
                shard: &second,
            });
        }
        series.push(SeriesRow::of(
            t,
            t < warmup,
            per_second as f64,
            &names,
            &second,
        ));
    }
    let measured_s = (seconds - warmup) as f64;
    let facts = OpenFacts {
        scheduled: (per_second * (seconds - warmup)) as f64,
        missed: 0,
        late_tolerance_ms: 1.0,
        send_window_ms: 0.25,
        min_achieved_ratio: 0.95,
        max_late_ratio: 0.01,
        max_dropped_ratio: 0.001,
        validity: ValidityMode::Robust,
        pauses: None,
    };
    let j = judge(&Input {
        names: &names,
        measured: &measured,
        measured_s,
        budgets: &scoped,
        windows: &windows.finish(),
        open: Some(facts),
        stop: Stop::Completed,
        invalid_before: &[],
        goodput_limits: &Default::default(),
    });
    let summary = RunSummary {
        duration_s: seconds as f64,
        warmup_s: warmup as f64,
        drain_s: 0.4,
        load: LoadSummary {
            profile: format!("from {per_second} rps, {seconds}s to {per_second} rps"),
            peak: per_second as f64,
        },
        workers: 2,
        pinned_cpus: vec![0, 1],
        pauses: Some(loadgate_metrics::Pauses {
            threshold_us: 1_000,
            count: 2,
            total_us: 12_500,
            max_us: 9_000,
        }),
        git_commit: Some("0123abc".into()),
        goodput_limits: match good_within_us {
            Some(limit) => names
                .iter()
                .map(|n| {
                    let limits = GoodputLimits {
                        latency_us: Some(limit),
                        ..GoodputLimits::default()
                    };
                    (n.clone(), limits)
                })
                .collect(),
            None => Default::default(),
        },
        ..RunSummary::fixture(
            &(names[0].clone() + "-scenario"),
            "open",
            &names,
            &measured,
            measured_s,
            j,
        )
    };
    RunDir {
        dir: PathBuf::from("fixture"),
        summary,
        histograms: Some(HistogramsFile::new(&names, &measured, &warmup_shard)),
        series,
    }
}

/// The synthetic 1-hour run of the render benchmark and the report-size test: 3600
/// one-second intervals, 5 endpoints, 20 requests a second, 60 s of warm-up.
pub fn one_hour() -> RunDir {
    synthetic(
        &[
            "analyze",
            "agent_query",
            "health",
            "predictions",
            "patterns",
        ],
        3600,
        60,
        20,
    )
}

/// A capacity search over a synthetic knee at 300 rps: steps of 100 rps to 400, then
/// two bisection steps; `name` is the scenario name (for escaping tests).
pub fn capacity(name: &str) -> loadgate_slo::capacity::CapacityReport {
    use loadgate_slo::capacity::{CapacityReport, Limit, PlanSummary, StepResult, StepVerdict};
    let step = |rate: f64, refinement: bool| {
        let over = (rate - 300.0).max(0.0);
        let breach = over > 0.0;
        StepResult {
            rate_rps: rate,
            achieved_rps: rate,
            success_rps: rate.min(300.0),
            p50_ms: 20.0 + over * 4.0,
            p95_ms: 80.0 + over * 40.0,
            ttft_p95_ms: None,
            p99_ms: 120.0 + over * 60.0,
            error_rate: 0.0,
            verdict: if breach {
                StepVerdict::Breach
            } else {
                StepVerdict::Pass
            },
            breached: if breach {
                vec!["global: p95 < 2s".into()]
            } else {
                Vec::new()
            },
            invalid_reasons: Vec::new(),
            refinement,
        }
    };
    let steps = vec![
        step(100.0, false),
        step(200.0, false),
        step(300.0, false),
        step(400.0, false),
        step(350.0, true),
        step(325.0, true),
    ];
    CapacityReport {
        schema_version: loadgate_slo::capacity::CAPACITY_SCHEMA_VERSION,
        loadgate_version: "0.0.0-test".into(),
        scenario: name.into(),
        scenario_file: "capacity.toml".into(),
        target: "embedded".into(),
        started_at: "2026-11-22T10:00:00Z".into(),
        ended_at: "2026-11-22T10:05:00Z".into(),
        plan: PlanSummary {
            start_rps: 100.0,
            step: "+100 rps".into(),
            max_rps: 400.0,
            step_duration_s: 10.0,
            settle_s: 5.0,
            refine: 2,
        },
        budgets: vec!["global: p95 < 2s".into()],
        steps,
        sustainable_rps: Some(300.0),
        limit: Some(Limit {
            rate_rps: 325.0,
            kind: StepVerdict::Breach,
            what: vec!["global: p95 < 2s".into()],
        }),
        require_rps: Some(250.0),
        verdict: loadgate_slo::summary::Verdict::Pass,
        stop: "budget breached".into(),
    }
}
