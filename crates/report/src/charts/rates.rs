//! The charts of counts over time: throughput (target, sent, completed, succeeded),
//! errors by outcome class, late and dropped sends, and the bar chart of status codes
//! (drawn directly: it has no budgets or time axis to plan).

use plotters::prelude::*;

use loadgate_metrics::Outcome;
use loadgate_slo::{Budget, Metric};

use super::draw::{svg_message, H, W};
use super::{
    drawn, phases, rule, series, time_range, within, worst_windows, Axis, Budgets, Line, LineChart,
    Look, BROKEN, PALETTE,
};
use crate::rundir::{RunDir, SeriesRow};

/// Throughput over time: target (a band under sent) and sent over the schedule only;
/// completed (a band under succeeded) and succeeded through the drain.
pub(crate) fn throughput_plan(run: &RunDir, baseline: Option<&RunDir>) -> LineChart {
    let all = drawn(run);
    let scheduled: Vec<&SeriesRow> = run.series.iter().filter(|r| !r.drain).collect();
    let mut c = LineChart::new(
        "Throughput over time",
        "time (s)",
        "requests per second",
        Axis::Count,
    );
    c.x_range = time_range(run);
    let x_range = c.x_range.clone();
    let mut line = |key: &str, label: &str, rows: &[&SeriesRow], look, f: fn(&SeriesRow) -> f64| {
        c.lines.push(Line {
            key: key.into(),
            label: label.into(),
            points: series(rows, false, |r| Some(f(r))),
            look,
            end_dot: None,
        });
    };
    if run.summary.model == "open" {
        line("target", "target rate", &scheduled, Look::Band, |r| {
            r.target
        });
    }
    line("sent", "sent", &scheduled, Look::Line, |r| r.sent as f64);
    line(
        "completed",
        "completed (any outcome)",
        &all,
        Look::Band,
        |r| r.completed as f64,
    );
    line("succeeded", "succeeded", &all, Look::Line, |r| {
        r.outcomes.get(Outcome::Success) as f64
    });
    if let Some(b) = baseline {
        let rows = within(b, &x_range);
        line("baseline", "baseline succeeded", &rows, Look::Line, |r| {
            r.outcomes.get(Outcome::Success) as f64
        });
    }
    // Without goodput limits every success is good, and there is no goodput chart:
    // goodput is the successes.
    let goodput = has_goodput(run);
    let here = |b: &Budget| match b.metric {
        Metric::Throughput => true,
        Metric::Goodput | Metric::Attainment => !goodput,
        _ => false,
    };
    for (b, broken) in Budgets::of(run).global() {
        if here(b) && b.metric != Metric::Attainment {
            c.rules
                .push(rule("global", b, Some("succeeded".into()), broken));
        }
    }
    c.shades = phases(run);
    c.shades.extend(worst_windows(run, &here));
    c
}

/// Whether the run's scenario set goodput limits on any endpoint (else every success
/// is good, and goodput is the successes).
pub(crate) fn has_goodput(run: &RunDir) -> bool {
    !run.summary.goodput_limits.is_empty()
}

/// Goodput over time, when the scenario sets goodput limits: each second's good
/// requests (successes within their endpoint's limits) as a line over its successes
/// (a band beneath it: what goodput would be were every success good), by the second
/// they completed, as goodput windows count them; the goodput budgets on the line and
/// the worst windows of goodput and attainment shaded. `None` without limits.
pub(crate) fn goodput_plan(run: &RunDir) -> Option<LineChart> {
    if !has_goodput(run) {
        return None;
    }
    let rows = drawn(run);
    let mut c = LineChart::new(
        "Goodput over time",
        "time (s)",
        "requests per second",
        Axis::Count,
    );
    c.x_range = time_range(run);
    c.lines.push(Line {
        key: "succeeded".into(),
        label: "succeeded".into(),
        points: series(&rows, false, |r| {
            Some(r.outcomes.get(Outcome::Success) as f64)
        }),
        look: Look::Band,
        end_dot: None,
    });
    c.lines.push(Line {
        key: "good".into(),
        // The whole run's figure, as the goodput table states it.
        label: format!(
            "good, within limits ({:.1} rps overall)",
            run.summary.overall.goodput_rps
        ),
        points: series(&rows, false, |r| Some(r.good as f64)),
        look: Look::Line,
        end_dot: None,
    });
    for (b, broken) in Budgets::of(run).global() {
        if b.metric == Metric::Goodput {
            c.rules.push(rule("global", b, Some("good".into()), broken));
        }
    }
    c.shades = phases(run);
    c.shades.extend(worst_windows(run, &|b| {
        matches!(b.metric, Metric::Goodput | Metric::Attainment)
    }));
    Some(c)
}

/// Errors per second by outcome class; `None` when there were none.
pub(crate) fn errors_plan(run: &RunDir) -> Option<LineChart> {
    let rows = drawn(run);
    let classes: Vec<Outcome> = Outcome::ALL
        .iter()
        .copied()
        .filter(|&o| o != Outcome::Success && rows.iter().any(|r| r.outcomes.get(o) > 0))
        .collect();
    if classes.is_empty() {
        return None;
    }
    let mut c = LineChart::new(
        "Errors over time by outcome class",
        "time (s)",
        "errors per second",
        Axis::Count,
    );
    c.x_range = time_range(run);
    for o in classes {
        c.lines.push(Line {
            key: o.name().into(),
            label: o.name().into(),
            points: series(&rows, false, |r| Some(r.outcomes.get(o) as f64)),
            look: Look::Line,
            end_dot: None,
        });
    }
    c.shades = phases(run);
    c.shades.extend(worst_windows(run, &|b| {
        matches!(b.metric, Metric::ErrorRate | Metric::CheckRate)
    }));
    Some(c)
}

/// Late and dropped sends per second (open model).
pub(crate) fn late_plan(run: &RunDir) -> LineChart {
    let rows: Vec<&SeriesRow> = run.series.iter().filter(|r| !r.drain).collect();
    let mut c = LineChart::new(
        "Late and dropped sends (generator health)",
        "time (s)",
        "sends per second",
        Axis::Count,
    );
    c.x_range = time_range(run);
    let tolerance = run
        .summary
        .rate
        .as_ref()
        .map_or(1.0, |r| r.late_tolerance_ms);
    c.lines.push(Line {
        key: "late".into(),
        label: format!("late (> {tolerance} ms)"),
        points: series(&rows, false, |r| Some(r.late as f64)),
        look: Look::Line,
        end_dot: None,
    });
    c.lines.push(Line {
        key: "dropped".into(),
        label: "dropped (max_in_flight)".into(),
        points: series(&rows, false, |r| Some(r.dropped as f64)),
        look: Look::Line,
        end_dot: None,
    });
    c.shades = phases(run);
    c
}

pub(super) fn status_chart(run: &RunDir) -> String {
    let statuses: Vec<(String, u64)> = run
        .summary
        .overall
        .statuses
        .iter()
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    let no_response = run
        .summary
        .overall
        .requests
        .saturating_sub(statuses.iter().map(|s| s.1).sum());
    let mut bars = statuses;
    if no_response > 0 {
        bars.push(("no response".into(), no_response));
    }
    if bars.is_empty() {
        return svg_message("Status codes", "no requests measured");
    }
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (W, H)).into_drawing_area();
        let _ = root.fill(&WHITE);
        let y_max = bars.iter().map(|b| b.1).max().unwrap_or(1) as f64 * 1.15;
        let n = bars.len();
        let Ok(mut chart) = ChartBuilder::on(&root)
            .caption(
                "Responses by status code (measured phase)",
                ("sans-serif", 20),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..n as f64, 0f64..y_max)
        else {
            return svg_message("Status codes", "nothing to draw");
        };
        let labels = |x: &f64| {
            let i = x.floor() as usize;
            if (x - i as f64 - 0.5).abs() < 0.01 {
                bars.get(i)
                    .map(|b| format!("{} ({})", b.0, b.1))
                    .unwrap_or_default()
            } else {
                String::new()
            }
        };
        let count = |v: &f64| {
            if v.fract() == 0.0 {
                format!("{v:.0}")
            } else {
                String::new()
            }
        };
        let _ = chart
            .configure_mesh()
            .x_desc("status (responses)")
            .y_desc("responses")
            .x_labels(n * 2 + 1)
            .x_label_formatter(&labels)
            .y_label_formatter(&count)
            .label_style(("sans-serif", 14))
            .axis_desc_style(("sans-serif", 14))
            .light_line_style(WHITE.mix(0.0))
            .draw();
        let color = |code: &str| match code.as_bytes().first() {
            Some(b'2') => PALETTE[2],
            Some(b'3') => PALETTE[0],
            Some(b'4') => PALETTE[1],
            Some(b'5') => BROKEN,
            _ => RGBColor(127, 127, 127),
        };
        let _ = chart.draw_series(bars.iter().enumerate().map(|(i, (code, count))| {
            Rectangle::new(
                [(i as f64 + 0.15, 0.0), (i as f64 + 0.85, *count as f64)],
                color(code).filled(),
            )
        }));
        let _ = root.present();
    }
    svg
}
