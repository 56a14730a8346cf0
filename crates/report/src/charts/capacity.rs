//! The knee charts of a capacity search: latency and throughput against the offered
//! rate, planned from the search's steps rather than a run's time series.

use loadgate_slo::{Budget, Metric};

use super::{
    rule, stat_key, Axis, Chart, Line, LineChart, Look, Mark, Points, BROKEN, SUSTAINABLE,
};

/// The knee charts of a capacity search: latency percentiles and throughput against the
/// offered rate, with the global budgets (the lines are of all endpoints), the
/// sustainable maximum and the first failing rate.
pub fn capacity(r: &loadgate_slo::capacity::CapacityReport) -> Vec<Chart> {
    capacity_plans(r)
        .into_iter()
        .zip([
            ("knee-latency.svg", "Latency against offered rate"),
            ("knee-throughput.svg", "Throughput against offered rate"),
        ])
        .map(|(plan, (file, title))| Chart {
            file,
            title: title.into(),
            svg: plan.draw(),
        })
        .collect()
}

/// Whether any request of a capacity step succeeded: its percentiles are of successful
/// answers, all 0 when there was none.
pub(crate) fn answered(s: &loadgate_slo::capacity::StepResult) -> bool {
    s.p99_ms > 0.0
}

pub(crate) fn capacity_plans(r: &loadgate_slo::capacity::CapacityReport) -> [LineChart; 2] {
    use loadgate_slo::capacity::{num, StepResult, StepVerdict};
    let steps = r.steps_by_rate();
    let pts = |f: &dyn Fn(&StepResult) -> f64| -> Points {
        steps.iter().map(|s| (s.rate_rps, Some(f(s)))).collect()
    };
    // A step in which nothing succeeded has no latency: a gap, not a drop to 0.
    let latency_pts = |f: &dyn Fn(&StepResult) -> f64| -> Points {
        steps
            .iter()
            .map(|s| (s.rate_rps, answered(s).then(|| f(s))))
            .collect()
    };
    let global: Vec<Budget> = r
        .budgets
        .iter()
        .filter_map(|b| {
            let (scope, expr) = b.split_once(": ")?;
            (scope == "global")
                .then(|| loadgate_slo::parse(expr).ok())
                .flatten()
        })
        .collect();
    let mut marks = Vec::new();
    if let Some(s) = r.sustainable_rps {
        marks.push(Mark {
            label: format!("sustainable {} rps", num(s)),
            x: s,
            color: SUSTAINABLE,
        });
    }
    if let Some(l) = &r.limit {
        let what = if l.kind == StepVerdict::GeneratorLimit {
            "generator limit"
        } else {
            "first breach"
        };
        marks.push(Mark {
            label: format!("{what} {} rps", num(l.rate_rps)),
            x: l.rate_rps,
            color: BROKEN,
        });
    }
    let top = steps.iter().map(|s| s.rate_rps).fold(1.0f64, f64::max) * 1.05;
    let line = |key: &str, points: Points, look| Line {
        key: key.into(),
        label: key.into(),
        points,
        look,
        end_dot: None,
    };
    let mut latency = LineChart::new(
        "Latency against offered rate (from intended send time)",
        "offered rate (requests/s)",
        "latency (ms)",
        Axis::Latency,
    );
    latency.x_range = 0.0..top;
    latency.lines = vec![
        line("p50", latency_pts(&|s| s.p50_ms), Look::Line),
        line("p95", latency_pts(&|s| s.p95_ms), Look::Line),
        line("p99", latency_pts(&|s| s.p99_ms), Look::Line),
    ];
    // Streams: the first token against the offered rate, where queueing before the
    // first token shows apart from slow generation.
    if steps.iter().any(|s| s.ttft_p95_ms.is_some()) {
        let pts = steps.iter().map(|s| (s.rate_rps, s.ttft_p95_ms)).collect();
        latency.lines.push(line("ttft p95", pts, Look::Line));
        for b in global
            .iter()
            .filter(|b| stat_key(b).as_deref() == Some("ttft p95"))
        {
            latency
                .rules
                .push(rule("global", b, Some("ttft p95".into()), None));
        }
    }
    for b in &global {
        if let Some(k) = stat_key(b).filter(|k| k.starts_with('p') || k == "mean") {
            let series = ["p50", "p95", "p99"].contains(&k.as_str()).then_some(k);
            latency.rules.push(rule("global", b, series, None));
        }
    }
    latency.marks = marks.clone();
    let mut throughput = LineChart::new(
        "Throughput against offered rate",
        "offered rate (requests/s)",
        "requests/s",
        Axis::Count,
    );
    throughput.x_range = 0.0..top;
    throughput.lines = vec![
        line("offered", pts(&|s| s.rate_rps), Look::Band),
        line("sent", pts(&|s| s.achieved_rps), Look::Line),
        line("succeeded", pts(&|s| s.success_rps), Look::Line),
    ];
    for b in global.iter().filter(|b| b.metric == Metric::Throughput) {
        throughput
            .rules
            .push(rule("global", b, Some("succeeded".into()), None));
    }
    throughput.marks = marks;
    [latency, throughput]
}
