//! Charts as standalone SVG documents (plotters' SVG backend).
//!
//! Every chart is planned first (`LineChart`: lines, budget rules, shaded stretches,
//! markers) and drawn second, so tests can check what a chart says without reading SVG.
//! What a chart must never do, and the plan makes checkable:
//! - draw a zero where there was no data: a second with no successful answer is a gap in
//!   a latency line, not a drop to 0 and a spike after it;
//! - draw a send rate over the drain, where nothing is sent by design: the drain is
//!   shaded and named, and only answers are drawn in it;
//! - hide one series under another: a series that usually equals another (the target
//!   rate under the sent rate, completed under succeeded) is a wide pale band beneath it;
//! - cover the data with its legend: the legend has its own panel right of the plot;
//! - lose a budget: each rule takes the colour of the series it constrains (dark grey when
//!   the chart has none), has its own dash and is labelled on the plot, and a latency axis
//!   turns logarithmic when a rule or a whole series would otherwise lie on its floor;
//! - draw a budget of one endpoint on a chart of all of them;
//! - print one budget's label over another's (labels at one height are set side by side);
//! - draw more lines than it has colours: of many endpoints it draws those with a budget
//!   and the slowest, and its legend says how many it left out;
//! - draw a latency of 0 for a capacity step in which nothing succeeded.
//!
//! Red is kept for what is wrong: a broken budget's label, the worst window, the first
//! failing rate. Text is escaped by the SVG backend.
//!
//! Here: the plan types and what the time charts share (buckets, budgets as rules,
//! shaded phases). Each chart is planned in its own module (`latency`, `rates`,
//! `spectrum`, `capacity`) and drawn by `draw`.

mod capacity;
mod draw;
mod latency;
mod rates;
mod spectrum;
#[cfg(test)]
mod tests;

use std::ops::Range;

use plotters::style::RGBColor;

use loadgate_metrics::Timing;
use loadgate_slo::{Budget, Metric, Unit};

use crate::rundir::{RunDir, SeriesRow};

pub(crate) use capacity::answered;
pub use capacity::capacity;
use draw::svg_message;
use latency::{endpoints_plan, latency_plan, streams_plan};
use rates::{errors_plan, goodput_plan, late_plan, status_chart, throughput_plan};
use spectrum::spectrum_plan;

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

/// Every chart for `run`, in report order.
pub fn all(run: &RunDir, baseline: Option<&RunDir>) -> Vec<Chart> {
    let mut charts = Vec::new();
    // A chart with nothing to plot says so under its short name.
    let mut push =
        |file: &'static str, title: &str, plan: Option<LineChart>, empty: (&str, &str)| {
            charts.push(Chart {
                file,
                title: title.into(),
                svg: plan.map_or_else(|| svg_message(empty.0, empty.1), |p| p.draw()),
            });
        };
    // Latency lines of a run in which nothing succeeded would be an empty plot under a
    // legend of series: the chart says why instead.
    let answered = |p: LineChart| {
        let any = p.values().next().is_some();
        any.then_some(p)
    };
    push(
        "latency.svg",
        "Latency over time: percentiles of each second's successful answers, by the second they completed (the tables give the whole measured phase, and a latency budget also counts each failed request as slower than its threshold)",
        answered(latency_plan(run, baseline)),
        ("Latency over time", "no successful answer to plot"),
    );
    push(
        "latency-endpoints.svg",
        "p95 latency per endpoint, of each second's successful answers",
        answered(endpoints_plan(run)),
        ("p95 latency per endpoint", "no successful answer to plot"),
    );
    if let Some(plan) = streams_plan(run) {
        push(
            "streams.svg",
            "Streams over time: time to first token of each second's successful streams, and the gaps between tokens that ended in it",
            Some(plan),
            ("", ""),
        );
    }
    push(
        "throughput.svg",
        "Throughput over time",
        Some(throughput_plan(run, baseline)),
        ("", ""),
    );
    if let Some(plan) = goodput_plan(run) {
        push(
            "goodput.svg",
            "Goodput over time: each second's good requests (successes within their endpoint's goodput limits) over its successes, by the second they completed, as windowed goodput budgets count them",
            Some(plan),
            ("", ""),
        );
    }
    push(
        "errors.svg",
        "Errors over time",
        errors_plan(run),
        ("Errors over time", "no errors"),
    );
    if run.histograms.is_some() {
        let empty = if run.summary.overall.requests > 0 {
            "no successful answer in the measured phase"
        } else {
            "no requests measured"
        };
        push(
            "spectrum.svg",
            "Latency percentile spectrum of the measured phase's successful answers (a latency budget also counts each failed request as slower than its threshold)",
            spectrum_plan(run),
            ("Latency percentile spectrum", empty),
        );
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
            svg: late_plan(run).draw(),
        });
    }
    charts
}

/// Most points per line; longer series are bucketed (max for latency, mean for rates).
const MAX_POINTS: usize = 720;

/// Series colours (no red: red means a broken budget or a failing rate).
const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];
/// A budget rule with no series of its own on the chart.
const NEUTRAL: RGBColor = RGBColor(60, 60, 60);
/// A broken budget's label, the first failing rate.
const BROKEN: RGBColor = RGBColor(200, 0, 0);
const GREY: RGBColor = RGBColor(160, 160, 160);
const DRAIN: RGBColor = RGBColor(120, 160, 220);
const WORST: RGBColor = RGBColor(230, 80, 80);
const PAUSED: RGBColor = RGBColor(240, 170, 40);
const SUSTAINABLE: RGBColor = RGBColor(26, 127, 55);
/// A generator pause at least this long is shaded on the time charts.
const PAUSE_SHADED_US: u64 = 100_000;

/// A value per x; `None` where there was nothing to measure (a gap, never a zero).
pub(crate) type Points = Vec<(f64, Option<f64>)>;

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Look {
    /// A 2 px line.
    Line,
    /// A wide pale band beneath the lines, for a series that often equals another.
    Band,
}

#[derive(Debug, Clone)]
pub(crate) struct Line {
    /// What budgets name it by (`p95`, `service p99`, an endpoint's name, `succeeded`).
    pub key: String,
    /// The legend's words.
    pub label: String,
    pub points: Points,
    pub look: Look,
    /// A dot at this point, labelled in the legend (the spectrum's maximum).
    pub end_dot: Option<(f64, f64)>,
}

/// A budget drawn across the plot.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub label: String,
    pub y: f64,
    /// The key of the line it constrains, whose colour it takes.
    pub series: Option<String>,
    pub broken: bool,
    /// What was measured, when it broke (the legend says it: a chart of successful
    /// answers can sit under a budget that failed on its failed requests).
    pub why: Option<String>,
}

/// A shaded stretch of the x axis.
#[derive(Debug, Clone)]
pub(crate) struct Shade {
    pub label: String,
    pub from: f64,
    pub to: f64,
    pub color: RGBColor,
}

/// A vertical marker.
#[derive(Debug, Clone)]
pub(crate) struct Mark {
    pub label: String,
    pub x: f64,
    pub color: RGBColor,
}

/// What the y axis counts, which decides its tick labels and whether it may be
/// logarithmic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Axis {
    /// Milliseconds; logarithmic when something would lie on the floor.
    Latency,
    /// Requests or errors per second: whole numbers only.
    Count,
}

/// How x ticks are labelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum XLabels {
    Plain,
    /// x is a number of nines: 1 is 90%, 2 is 99%, 2.5 is 99.7%.
    Nines,
}

/// A line chart before it is drawn.
#[derive(Debug, Clone)]
pub(crate) struct LineChart {
    pub title: String,
    pub x_desc: String,
    pub y_desc: String,
    pub axis: Axis,
    pub x_range: Range<f64>,
    pub x_labels: XLabels,
    pub lines: Vec<Line>,
    pub rules: Vec<Rule>,
    pub shades: Vec<Shade>,
    pub marks: Vec<Mark>,
    /// A last word for the legend, e.g. how many endpoints were left out.
    pub note: Option<String>,
}

impl LineChart {
    fn new(title: impl Into<String>, x_desc: &str, y_desc: &str, axis: Axis) -> Self {
        LineChart {
            title: title.into(),
            x_desc: x_desc.into(),
            y_desc: y_desc.into(),
            axis,
            x_range: 0.0..1.0,
            x_labels: XLabels::Plain,
            lines: Vec::new(),
            rules: Vec::new(),
            shades: Vec::new(),
            marks: Vec::new(),
            note: None,
        }
    }

    fn values(&self) -> impl Iterator<Item = f64> + '_ {
        self.lines.iter().flat_map(|l| {
            l.points
                .iter()
                .filter_map(|p| p.1)
                .chain(l.end_dot.map(|d| d.1))
        })
    }

    /// The highest value drawn, rules included.
    fn top(&self) -> f64 {
        self.values()
            .chain(self.rules.iter().map(|r| r.y))
            .fold(0.0f64, f64::max)
    }

    /// Whether the y axis is logarithmic: a latency axis on which a rule, or the whole
    /// of a line, would lie within a tenth of its height above the floor (data at
    /// 50-110 ms under a `p95 < 2s` budget is a flat line on a linear axis).
    pub(crate) fn log_scale(&self) -> bool {
        if self.axis != Axis::Latency {
            return false;
        }
        let top = self.top();
        if top <= 0.0 {
            return false;
        }
        let line_tops = self
            .lines
            .iter()
            .map(|l| l.points.iter().filter_map(|p| p.1).fold(0.0f64, f64::max));
        self.rules
            .iter()
            .map(|r| r.y)
            .chain(line_tops)
            .any(|v| v > 0.0 && v < top / 10.0)
    }

    /// The y range drawn.
    pub(crate) fn y_range(&self) -> Range<f64> {
        let top = self.top();
        if self.log_scale() {
            let low = self
                .values()
                .chain(self.rules.iter().map(|r| r.y))
                .filter(|v| *v > 0.0)
                .fold(f64::INFINITY, f64::min);
            let floor = 10f64.powf((low * 0.9).log10().floor());
            floor..top * 1.6
        } else if top > 0.0 {
            0.0..top * 1.1
        } else {
            0.0..1.0
        }
    }

    /// Each line's colour, in order (bands and lines share the palette).
    fn colors(&self) -> Vec<RGBColor> {
        (0..self.lines.len())
            .map(|i| PALETTE[i % PALETTE.len()])
            .collect()
    }

    /// The colour of a rule: that of the line it constrains, else neutral.
    pub(crate) fn rule_color(&self, r: &Rule) -> RGBColor {
        let colors = self.colors();
        r.series
            .as_ref()
            .and_then(|k| self.lines.iter().position(|l| &l.key == k))
            .map_or(NEUTRAL, |i| colors[i])
    }
}

/// Buckets `rows` into at most `MAX_POINTS` points of `f(row)` at the middle of their
/// seconds, taking the max of each bucket (`peak`) or the mean. A bucket in which `f`
/// had nothing is a gap.
fn series(rows: &[&SeriesRow], peak: bool, f: impl Fn(&SeriesRow) -> Option<f64>) -> Points {
    let bucket = rows.len().div_ceil(MAX_POINTS).max(1);
    rows.chunks(bucket)
        .map(|chunk| {
            let vals: Vec<f64> = chunk.iter().filter_map(|r| f(r)).collect();
            let v = if vals.is_empty() {
                None
            } else if peak {
                Some(vals.iter().copied().fold(0.0, f64::max))
            } else {
                Some(vals.iter().sum::<f64>() / chunk.len() as f64)
            };
            (chunk[0].t as f64 + chunk.len() as f64 / 2.0, v)
        })
        .collect()
}

/// A budget's statistic as a line key: `p95`, `max`, `service p99`; `None` for a budget
/// that is not on latency.
fn stat_key(b: &Budget) -> Option<String> {
    if b.unit != Unit::Duration {
        return None;
    }
    let stat = match b.metric {
        Metric::Percentile(p) => format!("p{p}"),
        Metric::Mean => "mean".into(),
        Metric::Min => "min".into(),
        Metric::Max => "max".into(),
        _ => return None,
    };
    Some(match b.timing {
        Timing::Latency => stat,
        t => format!("{} {stat}", t.name()),
    })
}

/// A budget as a rule's legend: the expression, prefixed by its endpoint unless global.
fn budget_label(scope: &str, b: &Budget) -> String {
    if scope == "global" {
        b.text.clone()
    } else {
        format!("{scope}: {}", b.text)
    }
}

/// The run's budgets, parsed, with whether each held.
/// Each budget with, when it broke, what was measured.
struct Budgets(Vec<(String, Budget, Option<String>)>);

impl Budgets {
    fn of(run: &RunDir) -> Budgets {
        Budgets(
            run.summary
                .slo
                .iter()
                .filter_map(|r| {
                    let b = loadgate_slo::parse(&r.expr).ok()?;
                    Some((
                        r.scope.clone(),
                        b,
                        (!r.pass).then(|| r.measured_text.clone()),
                    ))
                })
                .collect(),
        )
    }

    fn global(&self) -> impl Iterator<Item = (&Budget, Option<&str>)> {
        self.0
            .iter()
            .filter(|(s, _, _)| s == "global")
            .map(|(_, b, broken)| (b, broken.as_deref()))
    }
}

/// A rule for budget `b` of `scope`, constraining line `series`.
fn rule(scope: &str, b: &Budget, series: Option<String>, broken: Option<&str>) -> Rule {
    Rule {
        why: broken.map(str::to_string),
        label: budget_label(scope, b),
        y: if b.unit == Unit::Duration {
            b.threshold / 1000.0
        } else {
            b.threshold
        },
        series,
        broken: broken.is_some(),
    }
}

/// The rows the time charts draw: every second, but a drain's seconds only when the run
/// had a drain worth the name (a run that reports `0.0 s drain` would otherwise show a
/// whole shaded second with its last few answers).
fn drawn(run: &RunDir) -> Vec<&SeriesRow> {
    let keep_drain = run.summary.drain_s >= 0.05;
    run.series
        .iter()
        .filter(|r| keep_drain || !r.drain)
        .collect()
}

/// The shaded stretches of a run's time axis: warm-up, drain and the generator's long
/// pauses.
fn phases(run: &RunDir) -> Vec<Shade> {
    let sm = &run.summary;
    let mut v = Vec::new();
    if sm.warmup_s > 0.0 {
        v.push(Shade {
            label: "warm-up (not judged)".into(),
            from: 0.0,
            to: sm.warmup_s,
            color: GREY,
        });
    }
    let end = sm.warmup_s + sm.measured_s;
    if let Some(last) = drawn(run).iter().filter(|r| r.drain).map(|r| r.t + 1).max() {
        v.push(Shade {
            label: "drain: answers to earlier sends".into(),
            from: end,
            to: last as f64,
            color: DRAIN,
        });
    }
    // A pause that ended in second t began up to its length before t.
    let mut first = true;
    for r in &run.series {
        if let Some(p) = r.pauses.as_ref().filter(|p| p.max_us >= PAUSE_SHADED_US) {
            v.push(Shade {
                label: if first {
                    format!("loadgate paused ({} ms or more)", PAUSE_SHADED_US / 1000)
                } else {
                    String::new()
                },
                from: (r.t as f64 - p.max_us as f64 / 1e6).max(0.0),
                to: r.t as f64 + 1.0,
                color: PAUSED,
            });
            first = false;
        }
    }
    v
}

/// The time axis: from 0 to the end of the last second with a row, or of the schedule.
fn time_range(run: &RunDir) -> Range<f64> {
    let sm = &run.summary;
    let last = drawn(run).last().map_or(0, |r| r.t + 1) as f64;
    0.0..last.max(sm.warmup_s + sm.measured_s).max(1.0)
}

/// The rows of a baseline within the run's time axis: a longer baseline is cut to the
/// run's length (bucketed over its own length, and with an axis set by seconds not shown,
/// it would not be comparable).
fn within<'a>(baseline: &'a RunDir, x: &Range<f64>) -> Vec<&'a SeriesRow> {
    baseline
        .series
        .iter()
        .filter(|r| (r.t as f64) < x.end)
        .collect()
}

/// The worst window of each broken windowed budget that `pick` selects.
fn worst_windows(run: &RunDir, pick: &dyn Fn(&Budget) -> bool) -> Vec<Shade> {
    let mut v = Vec::new();
    for r in run.summary.slo.iter().filter(|r| !r.pass) {
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
}

/// The indices of the `n` endpoints ranking highest by `rank`, in scenario order. A chart
/// draws at most one line per colour: more could not be told apart, nor all be named in
/// the legend.
fn pick<K: Ord>(
    endpoints: &[loadgate_slo::summary::EndpointSummary],
    n: usize,
    rank: impl Fn(usize) -> K,
) -> Vec<usize> {
    let mut order: Vec<usize> = (0..endpoints.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(rank(i)));
    order.truncate(n);
    order.sort_unstable();
    order
}

/// The legend's word on the endpoints a chart left out.
fn left_out(all: usize, drawn: usize) -> Option<String> {
    (drawn < all).then(|| format!("{} more endpoints not drawn: in the tables", all - drawn))
}
