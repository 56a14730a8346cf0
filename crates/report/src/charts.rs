//! Charts as standalone SVG documents (plotters' SVG backend). Every chart has a title,
//! axis titles with units and a legend; budgets are drawn as dashed lines on the charts
//! they constrain; the warm-up and the drain after the measured phase are shaded, and so
//! is the worst window of each windowed budget on the charts of its metric. Text is
//! escaped by the SVG backend.

use plotters::prelude::*;

use loadgate_metrics::{LatencyHistogram, Outcome};
use loadgate_slo::{Budget, Metric, Op, Unit};

use crate::rundir::{RunDir, SeriesRow};

/// One rendered chart.
#[derive(Debug, Clone)]
pub struct Chart {
    /// File name for the standalone copy, e.g. `latency.svg`.
    pub file: &'static str,
    /// Title.
    pub title: String,
    /// The SVG document.
    pub svg: String,
}

const W: u32 = 900;
const H: u32 = 360;
/// Most points per line; longer series are bucketed (max for latency, mean for rates).
const MAX_POINTS: usize = 720;

const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];
const BUDGET: RGBColor = RGBColor(200, 0, 0);

struct Line {
    label: String,
    points: Vec<(f64, f64)>,
}

struct Rule {
    label: String,
    y: f64,
}

/// A shaded stretch of the time axis.
#[derive(Clone)]
struct Shade {
    label: String,
    from: f64,
    to: f64,
    color: RGBColor,
}

const GREY: RGBColor = RGBColor(160, 160, 160);
const DRAIN: RGBColor = RGBColor(120, 160, 220);
const WORST: RGBColor = RGBColor(230, 80, 80);

struct LineChart<'a> {
    title: String,
    x_desc: &'a str,
    y_desc: &'a str,
    lines: Vec<Line>,
    rules: Vec<Rule>,
    shades: Vec<Shade>,
    x_labels: Option<&'a dyn Fn(&f64) -> String>,
    /// Vertical markers: label, x, colour.
    marks: Vec<(String, f64, RGBColor)>,
}

fn draw_line_chart(c: &LineChart<'_>) -> String {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (W, H)).into_drawing_area();
        let _ = root.fill(&WHITE);
        let x_max = c
            .lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.0))
            .fold(1.0f64, f64::max);
        let y_max = c
            .lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.1))
            .chain(c.rules.iter().map(|r| r.y))
            .fold(0.0f64, f64::max);
        let y_max = if y_max > 0.0 { y_max * 1.1 } else { 1.0 };
        let built = ChartBuilder::on(&root)
            .caption(&c.title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..x_max, 0f64..y_max);
        let Ok(mut chart) = built else {
            return svg_message(&c.title, "nothing to draw");
        };
        let mut mesh = chart.configure_mesh();
        mesh.x_desc(c.x_desc)
            .y_desc(c.y_desc)
            .light_line_style(WHITE.mix(0.0))
            .y_label_formatter(&tick)
            .x_label_formatter(&tick);
        if let Some(f) = c.x_labels {
            mesh.x_label_formatter(f);
        }
        let _ = mesh.draw();
        for shade in &c.shades {
            let fill = shade.color.mix(0.25).filled();
            let _ = chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(shade.from, 0.0), (shade.to.min(x_max), y_max)],
                    fill,
                )))
                .map(|s| {
                    s.label(shade.label.as_str())
                        .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 16, y + 5)], fill))
                });
        }
        for (i, l) in c.lines.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            if let Ok(s) = chart.draw_series(LineSeries::new(
                l.points.iter().copied(),
                color.stroke_width(2),
            )) {
                s.label(l.label.as_str()).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                });
            }
        }
        for r in &c.rules {
            let dashes = (0..)
                .map(|k| k as f64 * x_max / 60.0)
                .take_while(|&x| x < x_max)
                .map(|x| {
                    PathElement::new(
                        vec![(x, r.y), ((x + x_max / 120.0).min(x_max), r.y)],
                        BUDGET.stroke_width(2),
                    )
                });
            if let Ok(s) = chart.draw_series(dashes) {
                s.label(format!("budget {}", r.label)).legend(|(x, y)| {
                    PathElement::new(vec![(x, y), (x + 6, y)], BUDGET.stroke_width(2))
                });
            }
        }
        for (label, x, color) in &c.marks {
            let color = *color;
            let dashes = (0..)
                .map(|k| k as f64 * y_max / 30.0)
                .take_while(|&y| y < y_max)
                .map(|y| {
                    PathElement::new(
                        vec![(*x, y), (*x, (y + y_max / 60.0).min(y_max))],
                        color.stroke_width(2),
                    )
                });
            if let Ok(s) = chart.draw_series(dashes) {
                s.label(label.as_str()).legend(move |(x, y)| {
                    PathElement::new(vec![(x + 5, y - 5), (x + 5, y + 5)], color.stroke_width(2))
                });
            }
        }
        let _ = chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .draw();
        let _ = root.present();
    }
    svg
}

/// Axis tick labels without spurious decimals: `5000`, `2.5`, `0.25`.
fn tick(v: &f64) -> String {
    let a = v.abs();
    if a >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn svg_message(title: &str, message: &str) -> String {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (W, 80)).into_drawing_area();
        let _ = root.fill(&WHITE);
        let _ = root.draw(&Text::new(
            format!("{title}: {message}"),
            (10, 30),
            ("sans-serif", 16),
        ));
        let _ = root.present();
    }
    svg
}

/// Buckets `rows` into at most `MAX_POINTS` points of `f(row)`, taking the max of each
/// bucket (`peak`) or the mean.
fn series(rows: &[SeriesRow], peak: bool, f: impl Fn(&SeriesRow) -> f64) -> Vec<(f64, f64)> {
    let bucket = rows.len().div_ceil(MAX_POINTS).max(1);
    rows.chunks(bucket)
        .map(|chunk| {
            let vals = chunk.iter().map(&f);
            let v = if peak {
                vals.fold(0.0, f64::max)
            } else {
                vals.sum::<f64>() / chunk.len() as f64
            };
            // Plot at the middle of the bucket's seconds.
            (chunk[0].t as f64 + chunk.len() as f64 / 2.0, v)
        })
        .collect()
}

/// A budget as a rule's legend: the expression, prefixed by its endpoint unless global.
fn budget_label(scope: &str, b: &Budget) -> String {
    if scope == "global" {
        b.text.clone()
    } else {
        format!("{scope}: {}", b.text)
    }
}

fn latency_rules<'a>(budgets: impl Iterator<Item = (&'a str, &'a Budget)>) -> Vec<Rule> {
    budgets
        .filter(|(_, b)| {
            b.unit == Unit::Duration
                && matches!(b.op, Op::Lt | Op::Le)
                && !matches!(b.metric, Metric::Min)
        })
        .map(|(scope, b)| Rule {
            label: budget_label(scope, b),
            y: b.threshold / 1000.0,
        })
        .collect()
}

fn parsed(run: &RunDir, scope: Option<&str>) -> Vec<(String, Budget)> {
    run.summary
        .slo
        .iter()
        .filter(|r| scope.is_none_or(|s| r.scope == s))
        .filter_map(|r| {
            loadgate_slo::parse(&r.expr)
                .ok()
                .map(|b| (r.scope.clone(), b))
        })
        .collect()
}

/// Every chart for `run`, in report order.
pub fn all(run: &RunDir, baseline: Option<&RunDir>) -> Vec<Chart> {
    let rows = &run.series;
    let sm = &run.summary;
    let mut phases = Vec::new();
    if sm.warmup_s > 0.0 {
        phases.push(Shade {
            label: "warm-up".into(),
            from: 0.0,
            to: sm.warmup_s,
            color: GREY,
        });
    }
    let end = sm.warmup_s + sm.measured_s;
    if let Some(last) = rows.iter().filter(|r| r.drain).map(|r| r.t + 1).max() {
        phases.push(Shade {
            label: "drain (counted where due)".into(),
            from: end,
            to: last as f64,
            color: DRAIN,
        });
    }
    // The worst window of each broken windowed budget, on the charts of its metric.
    let worst = |pick: &dyn Fn(&Budget) -> bool| -> Vec<Shade> {
        let mut v = phases.clone();
        for r in sm.slo.iter().filter(|r| !r.pass) {
            let (Some(w), Ok(b)) = (&r.window, loadgate_slo::parse(&r.expr)) else {
                continue;
            };
            if pick(&b) {
                v.push(Shade {
                    label: format!("worst window: {}", budget_label(&r.scope, &b)),
                    from: w.worst_start_s,
                    to: w.worst_end_s,
                    color: WORST,
                });
            }
        }
        v
    };
    let warm = phases.clone();
    let ms = |us: u64| us as f64 / 1000.0;
    let mut charts = Vec::new();
    let global = parsed(run, Some("global"));
    let every = parsed(run, None);

    charts.push(Chart {
        file: "latency.svg",
        title: "Latency over time".into(),
        svg: draw_line_chart(&LineChart {
            title: format!(
                "Latency over time ({})",
                if run.summary.model == "open" {
                    "from intended send time"
                } else {
                    "closed model"
                }
            ),
            x_desc: "time (s)",
            y_desc: "latency (ms)",
            lines: vec![
                Line {
                    label: "p50".into(),
                    points: series(rows, true, |r| ms(r.latency_us.p50)),
                },
                Line {
                    label: "p95".into(),
                    points: series(rows, true, |r| ms(r.latency_us.p95)),
                },
                Line {
                    label: "p99".into(),
                    points: series(rows, true, |r| ms(r.latency_us.p99)),
                },
            ]
            .into_iter()
            .chain(baseline.into_iter().flat_map(|b| {
                [
                    Line {
                        label: "baseline p95".into(),
                        points: series(&b.series, true, |r| ms(r.latency_us.p95)),
                    },
                    Line {
                        label: "baseline p99".into(),
                        points: series(&b.series, true, |r| ms(r.latency_us.p99)),
                    },
                ]
            }))
            .collect(),
            rules: latency_rules(global.iter().map(|(s, b)| (s.as_str(), b))),
            shades: worst(&|b| b.is_latency()),
            x_labels: None,
            marks: Vec::new(),
        }),
    });

    let names = run.summary.endpoint_names();
    charts.push(Chart {
        file: "latency-endpoints.svg",
        title: "p95 latency per endpoint".into(),
        svg: draw_line_chart(&LineChart {
            title: "p95 latency per endpoint".into(),
            x_desc: "time (s)",
            y_desc: "p95 latency (ms)",
            lines: names
                .iter()
                .enumerate()
                .map(|(i, n)| Line {
                    label: n.clone(),
                    points: series(rows, true, |r| {
                        r.endpoints.get(i).map_or(0.0, |e| ms(e.p95_us))
                    }),
                })
                .collect(),
            rules: latency_rules(
                every
                    .iter()
                    .filter(|(s, b)| s != "global" && b.metric == Metric::Percentile(95.0))
                    .map(|(s, b)| (s.as_str(), b)),
            ),
            shades: warm.clone(),
            x_labels: None,
            marks: Vec::new(),
        }),
    });

    let mut lines = Vec::new();
    if run.summary.model == "open" {
        lines.push(Line {
            label: "target".into(),
            points: series(rows, false, |r| r.target),
        });
    }
    lines.push(Line {
        label: "sent".into(),
        points: series(rows, false, |r| r.sent as f64),
    });
    lines.push(Line {
        label: "completed".into(),
        points: series(rows, false, |r| r.completed as f64),
    });
    lines.push(Line {
        label: "succeeded".into(),
        points: series(rows, false, |r| r.outcomes.get(Outcome::Success) as f64),
    });
    if let Some(b) = baseline {
        lines.push(Line {
            label: "baseline succeeded".into(),
            points: series(&b.series, false, |r| {
                r.outcomes.get(Outcome::Success) as f64
            }),
        });
    }
    charts.push(Chart {
        file: "throughput.svg",
        title: "Throughput over time".into(),
        svg: draw_line_chart(&LineChart {
            title: "Throughput over time".into(),
            x_desc: "time (s)",
            y_desc: "requests per second",
            lines,
            rules: global
                .iter()
                .filter(|(_, b)| b.metric == Metric::Throughput)
                .map(|(_, b)| Rule {
                    label: b.text.clone(),
                    y: b.threshold,
                })
                .collect(),
            shades: worst(&|b| b.metric == Metric::Throughput),
            x_labels: None,
            marks: Vec::new(),
        }),
    });

    let classes: Vec<Outcome> = Outcome::ALL
        .iter()
        .copied()
        .filter(|&o| o != Outcome::Success && rows.iter().any(|r| r.outcomes.get(o) > 0))
        .collect();
    charts.push(Chart {
        file: "errors.svg",
        title: "Errors over time".into(),
        svg: if classes.is_empty() {
            svg_message("Errors over time", "no errors")
        } else {
            draw_line_chart(&LineChart {
                title: "Errors over time by outcome class".into(),
                x_desc: "time (s)",
                y_desc: "errors per second",
                lines: classes
                    .iter()
                    .map(|&o| Line {
                        label: o.name().into(),
                        points: series(rows, false, |r| r.outcomes.get(o) as f64),
                    })
                    .collect(),
                rules: Vec::new(),
                shades: worst(&|b| matches!(b.metric, Metric::ErrorRate | Metric::CheckRate)),
                x_labels: None,
                marks: Vec::new(),
            })
        },
    });

    if let Some(h) = &run.histograms {
        let nines = |x: &f64| match *x {
            x if x.fract().abs() > 1e-9 => String::new(),
            x => {
                let pct = 100.0 * (1.0 - 10f64.powf(-x));
                let digits = (x as usize).saturating_sub(2);
                format!("{pct:.digits$}%")
            }
        };
        let mut lines = Vec::new();
        for pair in std::iter::once(&h.measured.all).chain(h.measured.endpoints.iter()) {
            if let Ok(hist) = pair.latency() {
                if !hist.is_empty() {
                    lines.push(Line {
                        label: pair.name.clone(),
                        points: spectrum(&hist),
                    });
                }
            }
        }
        charts.push(Chart {
            file: "spectrum.svg",
            title: "Latency percentile spectrum".into(),
            svg: if lines.is_empty() {
                svg_message("Latency percentile spectrum", "no requests measured")
            } else {
                draw_line_chart(&LineChart {
                    title: "Latency by percentile (measured phase)".into(),
                    x_desc: "percentile",
                    y_desc: "latency (ms)",
                    lines,
                    rules: latency_rules(
                        global
                            .iter()
                            .filter(|(_, b)| {
                                matches!(b.metric, Metric::Percentile(_) | Metric::Max)
                            })
                            .map(|(s, b)| (s.as_str(), b)),
                    ),
                    shades: Vec::new(),
                    x_labels: Some(&nines),
                    marks: Vec::new(),
                })
            },
        });
    }

    charts.push(Chart {
        file: "status.svg",
        title: "Status codes".into(),
        svg: status_chart(run),
    });

    if run.summary.model == "open" {
        charts.push(Chart {
            file: "late-dropped.svg",
            title: "Late and dropped sends".into(),
            svg: draw_line_chart(&LineChart {
                title: "Late and dropped sends (generator health)".into(),
                x_desc: "time (s)",
                y_desc: "sends per second",
                lines: vec![
                    Line {
                        label: format!(
                            "late (> {} ms)",
                            run.summary
                                .rate
                                .as_ref()
                                .map_or(1.0, |r| r.late_tolerance_ms)
                        ),
                        points: series(rows, false, |r| r.late as f64),
                    },
                    Line {
                        label: "dropped (max_in_flight)".into(),
                        points: series(rows, false, |r| r.dropped as f64),
                    },
                ],
                rules: Vec::new(),
                shades: warm.clone(),
                x_labels: None,
                marks: Vec::new(),
            }),
        });
    }
    charts
}

/// (nines, ms) from 0% to 99.99% (or as far as the sample count supports).
fn spectrum(h: &LatencyHistogram) -> Vec<(f64, f64)> {
    let max_nines = (h.len() as f64).log10().clamp(1.0, 4.0);
    (0..=200)
        .map(|i| i as f64 * max_nines / 200.0)
        .map(|x| (x, h.quantile(1.0 - 10f64.powf(-x)) as f64 / 1000.0))
        .collect()
}

fn status_chart(run: &RunDir) -> String {
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
                ("sans-serif", 18),
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
                bars.get(i).map(|b| b.0.clone()).unwrap_or_default()
            } else {
                String::new()
            }
        };
        let _ = chart
            .configure_mesh()
            .x_desc("status")
            .y_desc("responses")
            .x_labels(n * 2 + 1)
            .x_label_formatter(&labels)
            .light_line_style(WHITE.mix(0.0))
            .draw();
        let color = |code: &str| match code.as_bytes().first() {
            Some(b'2') => PALETTE[2],
            Some(b'4') => PALETTE[1],
            Some(b'5') => PALETTE[3],
            _ => PALETTE[7],
        };
        let _ = chart
            .draw_series(bars.iter().enumerate().map(|(i, (code, count))| {
                Rectangle::new(
                    [(i as f64 + 0.15, 0.0), (i as f64 + 0.85, *count as f64)],
                    color(code).filled(),
                )
            }))
            .map(|s| {
                s.label("responses").legend(|(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 16, y + 5)], PALETTE[2].filled())
                })
            });
        let _ = chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .border_style(BLACK.mix(0.3))
            .draw();
        let _ = root.present();
    }
    svg
}

const SUSTAINABLE: RGBColor = RGBColor(26, 127, 55);

/// The knee charts of a capacity search: latency percentiles and throughput against the
/// offered rate, with the budgets, the sustainable maximum and the first failing rate.
pub fn capacity(r: &loadgate_slo::capacity::CapacityReport) -> Vec<Chart> {
    use loadgate_slo::capacity::{num, StepVerdict};
    let steps = r.steps_by_rate();
    let pts = |f: &dyn Fn(&loadgate_slo::capacity::StepResult) -> f64| -> Vec<(f64, f64)> {
        steps.iter().map(|s| (s.rate_rps, f(s))).collect()
    };
    let budgets: Vec<(String, Budget)> = r
        .budgets
        .iter()
        .filter_map(|b| {
            let (scope, expr) = b.split_once(": ")?;
            Some((scope.to_string(), loadgate_slo::parse(expr).ok()?))
        })
        .collect();
    let mut marks = Vec::new();
    if let Some(s) = r.sustainable_rps {
        marks.push((format!("sustainable {} rps", num(s)), s, SUSTAINABLE));
    }
    if let Some(l) = &r.limit {
        let what = if l.kind == StepVerdict::GeneratorLimit {
            "generator limit"
        } else {
            "first breach"
        };
        marks.push((
            format!("{what} {} rps", num(l.rate_rps)),
            l.rate_rps,
            BUDGET,
        ));
    }
    let latency = draw_line_chart(&LineChart {
        title: "Latency against offered rate (from intended send time)".into(),
        x_desc: "offered rate (requests/s)",
        y_desc: "latency (ms)",
        lines: vec![
            Line {
                label: "p50".into(),
                points: pts(&|s| s.p50_ms),
            },
            Line {
                label: "p95".into(),
                points: pts(&|s| s.p95_ms),
            },
            Line {
                label: "p99".into(),
                points: pts(&|s| s.p99_ms),
            },
        ],
        rules: latency_rules(
            budgets
                .iter()
                .filter(|(_, b)| matches!(b.metric, Metric::Percentile(_) | Metric::Mean))
                .map(|(s, b)| (s.as_str(), b)),
        ),
        shades: Vec::new(),
        x_labels: None,
        marks: marks.clone(),
    });
    let throughput = draw_line_chart(&LineChart {
        title: "Throughput against offered rate".into(),
        x_desc: "offered rate (requests/s)",
        y_desc: "requests/s",
        lines: vec![
            Line {
                label: "offered".into(),
                points: pts(&|s| s.rate_rps),
            },
            Line {
                label: "sent".into(),
                points: pts(&|s| s.achieved_rps),
            },
            Line {
                label: "succeeded".into(),
                points: pts(&|s| s.success_rps),
            },
        ],
        rules: budgets
            .iter()
            .filter(|(_, b)| b.metric == Metric::Throughput)
            .map(|(scope, b)| Rule {
                label: budget_label(scope, b),
                y: b.threshold,
            })
            .collect(),
        shades: Vec::new(),
        x_labels: None,
        marks,
    });
    vec![
        Chart {
            file: "knee-latency.svg",
            title: "Latency against offered rate".into(),
            svg: latency,
        },
        Chart {
            file: "knee-throughput.svg",
            title: "Throughput against offered rate".into(),
            svg: throughput,
        },
    ]
}
