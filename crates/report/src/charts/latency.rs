//! The latency charts over time: the run's percentiles per second (with the statistics
//! its global budgets name and a baseline's p95 and p99), and p95 per endpoint with each
//! endpoint's own p95 budgets. The spectrum and the capacity knee are elsewhere.

use loadgate_metrics::{LatencyStats, Outcome, Timing};
use loadgate_slo::{Budget, Metric, Op};

use super::{
    drawn, left_out, phases, pick, rule, series, stat_key, time_range, within, worst_windows, Axis,
    Budgets, Line, LineChart, Look, PALETTE,
};
use crate::rundir::{Percentiles, RunDir, SeriesRow};
use crate::text::us;

/// Latency over time: p50, p95 and p99 from each second's successful answers, plus any
/// other statistic a global budget names; each labelled with its whole-run value, as the
/// tables give it.
pub(crate) fn latency_plan(run: &RunDir, baseline: Option<&RunDir>) -> LineChart {
    let sm = &run.summary;
    let rows = drawn(run);
    let budgets = Budgets::of(run);
    let mut keys: Vec<String> = vec!["p50".into(), "p95".into(), "p99".into()];
    for (b, _) in budgets.global() {
        if let Some(k) = stat_key(b) {
            let stat = k.strip_prefix("service ").unwrap_or(&k);
            if row_stat(&Percentiles::default(), stat).is_some() && !keys.contains(&k) {
                keys.push(k);
            }
        }
    }
    let order = |k: &String| {
        let stat = k.strip_prefix("service ").unwrap_or(k);
        let rank = ["p50", "p90", "p95", "p99", "max"]
            .iter()
            .position(|s| *s == stat)
            .unwrap_or(9);
        (k.starts_with("service "), rank)
    };
    keys.sort_by_key(order);
    let what = if sm.model == "open" {
        "from intended send time"
    } else {
        "closed model"
    };
    let mut c = LineChart::new(
        format!("Latency over time, per second ({what})"),
        "time (s)",
        "latency (ms)",
        Axis::Latency,
    );
    c.x_range = time_range(run);
    for k in &keys {
        let (service, stat) = match k.strip_prefix("service ") {
            Some(s) => (true, s.to_string()),
            None => (false, k.clone()),
        };
        let whole = run_stat(
            if service {
                &sm.overall.service_us
            } else {
                &sm.overall.latency_us
            },
            &stat,
        )
        .filter(|_| sm.overall.latency_us.count > 0)
        .map(|v| format!(" (whole run {})", us(v)))
        .unwrap_or_default();
        c.lines.push(Line {
            key: k.clone(),
            label: format!("{k}{whole}"),
            points: series(&rows, true, |r| {
                let p = if service {
                    &r.service_us
                } else {
                    &r.latency_us
                };
                successes(r).then(|| row_stat(p, &stat)).flatten().map(ms)
            }),
            look: Look::Line,
            end_dot: None,
        });
    }
    if let Some(b) = baseline {
        let rows = within(b, &c.x_range);
        for (key, f) in [
            (
                "baseline p95",
                (|p: &Percentiles| p.p95) as fn(&Percentiles) -> u64,
            ),
            ("baseline p99", |p: &Percentiles| p.p99),
        ] {
            c.lines.push(Line {
                key: key.into(),
                label: key.into(),
                points: series(&rows, true, |r| successes(r).then(|| ms(f(&r.latency_us)))),
                look: Look::Line,
                end_dot: None,
            });
        }
    }
    // A mean budget has no per-second series: the whole run's mean, flat over the
    // measured phase, is what it is judged on.
    let from = sm.warmup_s;
    let to = sm.warmup_s + sm.measured_s;
    for (b, _) in budgets.global() {
        let Some(k) = stat_key(b).filter(|_| b.metric == Metric::Mean) else {
            continue;
        };
        let stats = sm.overall.timing(b.timing);
        if stats.count == 0 || c.lines.iter().any(|l| l.key == k) || to <= from {
            continue;
        }
        let v = stats.mean / 1000.0;
        c.lines.push(Line {
            key: k.clone(),
            label: format!("{k} of the whole run ({})", us(stats.mean)),
            points: vec![(from, Some(v)), (to, Some(v))],
            look: Look::Line,
            end_dot: None,
        });
    }
    // Only latency and service-time budgets belong on this chart: a first-byte or a
    // first-token threshold drawn here would read as a latency limit.
    for (b, broken) in budgets.global() {
        if !matches!(b.timing, Timing::Latency | Timing::Service) {
            continue;
        }
        if let Some(k) = stat_key(b) {
            let series = c.lines.iter().any(|l| l.key == k).then_some(k);
            c.rules.push(rule("global", b, series, broken));
        }
    }
    c.shades = phases(run);
    c.shades.extend(worst_windows(run, &|b| b.is_latency()));
    c
}

/// Streams over time: time to first token (p50, p95, p99), the gaps between tokens
/// (p50, p99) and time per output token (p50, p90: each stream's speed, inverted, as
/// the report's `tpot` table shows it) of each second, each labelled with its whole-run
/// value, with the stream budgets on them (a `tokens_per_s_` budget drawn as the bound on
/// time per token it is judged as) and their worst windows shaded; `None` for a run
/// without streams.
pub(crate) fn streams_plan(run: &RunDir) -> Option<LineChart> {
    let sm = &run.summary;
    let (ttft, itl, tpot) = (&sm.overall.ttft_us, &sm.overall.itl_us, &sm.overall.tpot_us);
    if ttft.count == 0 && itl.count == 0 {
        return None;
    }
    let stream_timing = |t: Timing| matches!(t, Timing::Ttft | Timing::Itl | Timing::Tpot);
    let rows = drawn(run);
    let what = if sm.model == "open" {
        "first token from intended send time"
    } else {
        "closed model"
    };
    let mut c = LineChart::new(
        format!("Streams over time, per second ({what})"),
        "time (s)",
        "time (ms); tpot: time per output token (ms)",
        Axis::Latency,
    );
    c.x_range = time_range(run);
    let budgets = Budgets::of(run);
    let mut lines: Vec<(Timing, String, &LatencyStats)> = vec![
        (Timing::Ttft, "p50".into(), ttft),
        (Timing::Ttft, "p95".into(), ttft),
        (Timing::Ttft, "p99".into(), ttft),
        (Timing::Itl, "p50".into(), itl),
        (Timing::Itl, "p99".into(), itl),
        (Timing::Tpot, "p50".into(), tpot),
        (Timing::Tpot, "p90".into(), tpot),
    ];
    // A budget on a statistic the time series keeps gets its line, so its rule has one
    // to constrain (`tokens_per_s_p1 > 5` is `tpot_p99 < 200ms`).
    for (_, b, _) in &budgets.0 {
        let Some(stat) = stat_key(b).and_then(|k| k.split(' ').nth(1).map(str::to_string)) else {
            continue;
        };
        let whole = match b.timing {
            Timing::Ttft => ttft,
            Timing::Itl => itl,
            Timing::Tpot => tpot,
            _ => continue,
        };
        let kept = Percentiles::default();
        if row_stat(&kept, &stat).is_some()
            && !lines.iter().any(|(t, s, _)| *t == b.timing && *s == stat)
        {
            lines.push((b.timing, stat, whole));
        }
    }
    lines.sort_by_key(|(t, s, _)| (Timing::ALL.iter().position(|x| x == t), s.clone()));
    for (t, stat, whole) in lines {
        let stat = stat.as_str();
        if whole.count == 0 {
            continue;
        }
        let key = format!("{} {stat}", t.name());
        let label = run_stat(whole, stat)
            .map(|v| format!("{key} (whole run {})", us(v)))
            .unwrap_or_else(|| key.clone());
        c.lines.push(Line {
            key,
            label,
            points: series(&rows, true, |r| {
                let p = match t {
                    Timing::Ttft => r.ttft_us.as_ref(),
                    Timing::Tpot => r.tpot_us.as_ref(),
                    _ => r.itl_us.as_ref(),
                };
                p.and_then(|p| row_stat(p, stat)).map(ms)
            }),
            look: Look::Line,
            end_dot: None,
        });
    }
    // The lines are every stream's: an endpoint's budgets are drawn only when it is the
    // one endpoint that streamed (its streams are then all the streams).
    let streamed: Vec<&str> = sm
        .endpoints
        .iter()
        .filter(|e| e.ttft_us.count > 0 || e.itl_us.count > 0)
        .map(|e| e.name.as_str())
        .collect();
    for (scope, b, broken) in &budgets.0 {
        let drawn_here = scope == "global" || streamed == [scope.as_str()];
        if !drawn_here || !stream_timing(b.timing) {
            continue;
        }
        if let Some(k) = stat_key(b) {
            let series = c.lines.iter().any(|l| l.key == k).then_some(k);
            let mut r = rule(scope, b, series, broken.as_deref());
            if b.speed.is_some() {
                // Drawn in the chart's unit: the bound on time per token it is judged as.
                let op = match b.op {
                    Op::Lt => "<",
                    Op::Le => "<=",
                    Op::Gt => ">",
                    Op::Ge => ">=",
                };
                r.label = format!("{} (time per token {op} {})", r.label, us(b.threshold));
            }
            c.rules.push(r);
        }
    }
    c.shades = phases(run);
    c.shades.extend(worst_windows(run, &|b| {
        b.is_latency() && stream_timing(b.timing)
    }));
    Some(c)
}

/// p95 per endpoint over time, with each endpoint's own p95 budget in its colour.
pub(crate) fn endpoints_plan(run: &RunDir) -> LineChart {
    let rows = drawn(run);
    let mut c = LineChart::new(
        "p95 latency per endpoint, per second",
        "time (s)",
        "p95 latency (ms)",
        Axis::Latency,
    );
    c.x_range = time_range(run);
    let budgets = Budgets::of(run);
    let names = run.summary.endpoint_names();
    // An endpoint's p95 budgets on its line; with one endpoint, the global ones are its
    // too (all requests are its requests).
    let only = (names.len() == 1).then(|| names[0].clone());
    // (scope, the line it constrains, budget, what broke it)
    let p95_budgets: Vec<(&str, String, &Budget, Option<&str>)> = budgets
        .0
        .iter()
        .filter(|(_, b, _)| stat_key(b).as_deref() == Some("p95"))
        .filter_map(|(scope, b, broken)| {
            let line = if scope == "global" {
                only.clone()?
            } else {
                scope.clone()
            };
            Some((scope.as_str(), line, b, broken.as_deref()))
        })
        .collect();
    // As many lines as there are colours: first the endpoints with a broken budget here,
    // then those with a budget, then the slowest.
    let chosen = pick(&run.summary.endpoints, PALETTE.len(), |i| {
        let mine = p95_budgets.iter().filter(|b| b.1 == names[i]);
        (
            mine.clone().any(|b| b.3.is_some()),
            mine.count() > 0,
            run.summary.endpoints[i].latency_us.p95,
        )
    });
    c.note = left_out(names.len(), chosen.len());
    for (i, n) in names.iter().enumerate() {
        if !chosen.contains(&i) {
            continue;
        }
        c.lines.push(Line {
            key: n.clone(),
            label: n.clone(),
            points: series(&rows, true, |r| {
                r.endpoints
                    .get(i)
                    .filter(|e| e.outcomes.get(Outcome::Success) > 0)
                    .map(|e| ms(e.p95_us))
            }),
            look: Look::Line,
            end_dot: None,
        });
    }
    for (scope, line, b, broken) in p95_budgets {
        c.rules.push(rule(scope, b, Some(line), broken));
    }
    c.shades = phases(run);
    c
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// A per-second statistic of a row's percentiles, when the time series keeps it.
fn row_stat(p: &Percentiles, stat: &str) -> Option<u64> {
    Some(match stat {
        "p50" => p.p50,
        "p90" => p.p90,
        "p95" => p.p95,
        "p99" => p.p99,
        "max" => p.max,
        _ => return None,
    })
}

/// A whole-run statistic, in µs.
fn run_stat(l: &LatencyStats, stat: &str) -> Option<f64> {
    Some(match stat {
        "p50" => l.p50 as f64,
        "p90" => l.p90 as f64,
        "p95" => l.p95 as f64,
        "p99" => l.p99 as f64,
        "p99.9" => l.p999 as f64,
        "max" => l.max as f64,
        "mean" => l.mean,
        "min" => l.min as f64,
        _ => return None,
    })
}

fn successes(r: &SeriesRow) -> bool {
    r.outcomes.get(Outcome::Success) > 0
}
