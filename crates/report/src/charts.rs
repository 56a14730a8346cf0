//! Charts as standalone SVG documents (plotters' SVG backend).
//!
//! Every chart is planned first ([`LineChart`]: lines, budget rules, shaded stretches,
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

use std::ops::Range;

use plotters::coord::ranged1d::{AsRangedCoord, Ranged, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use loadgate_metrics::{LatencyHistogram, LatencyStats, Outcome, Timing};
use loadgate_slo::{Budget, Metric, Unit};

use crate::rundir::{Percentiles, RunDir, SeriesRow};
use crate::text::us;

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

const W: u32 = 1000;
const H: u32 = 380;
/// Width of the legend panel right of the plot.
const LEGEND_W: u32 = 270;
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
/// The legend's own words (what it left out).
const NOTE: RGBColor = RGBColor(87, 96, 106);
/// Dash and gap lengths (px) of the budget rules, one pattern per rule in turn.
const DASHES: [(u32, u32); 4] = [(12, 6), (4, 4), (22, 6), (2, 6)];
/// Most characters of a legend entry (the panel's width).
const LEGEND_CHARS: usize = 40;
/// Most characters of a budget's label on the plot.
const ON_PLOT_CHARS: usize = 60;
/// Width (px) allowed per character of a label on the plot, and the height of its row.
const RULE_CHAR_PX: i32 = 7;
const RULE_ROW_PX: i32 = 13;
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

    fn draw(&self) -> String {
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (W, H)).into_drawing_area();
            let _ = root.fill(&WHITE);
            let Ok(body) = root.titled(&self.title, ("sans-serif", 20)) else {
                return svg_message(&self.title, "nothing to draw");
            };
            let (plot, legend) = body.split_horizontally(W - LEGEND_W);
            let y = self.y_range();
            if self.log_scale() {
                self.plot(&plot, y.clone().log_scale(), &y);
            } else {
                self.plot(&plot, y.clone(), &y);
            }
            self.legend(&legend);
            let _ = root.present();
        }
        svg
    }

    fn plot<Y>(&self, area: &DrawingArea<SVGBackend<'_>, Shift>, y_spec: Y, y: &Range<f64>)
    where
        Y: AsRangedCoord<Value = f64>,
        Y::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
    {
        let x = self.x_range.clone();
        let Ok(mut chart) = ChartBuilder::on(area)
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(x.clone(), y_spec)
        else {
            return;
        };
        let nines = |v: &f64| nines(*v);
        let count = |v: &f64| count_tick(*v, y.end);
        let y_desc = if self.log_scale() {
            format!("{} (log scale)", self.y_desc)
        } else {
            self.y_desc.clone()
        };
        let mut mesh = chart.configure_mesh();
        mesh.x_desc(self.x_desc.as_str())
            .y_desc(y_desc)
            .label_style(("sans-serif", 14))
            .axis_desc_style(("sans-serif", 14))
            .light_line_style(WHITE.mix(0.0))
            .x_label_formatter(&tick)
            .y_label_formatter(&tick);
        if self.x_labels == XLabels::Nines {
            // Ticks at whole nines only: 0%, 90%, 99%, 99.9%.
            mesh.x_label_formatter(&nines)
                .x_labels(self.x_range.end.floor() as usize + 1);
        }
        if self.axis == Axis::Count {
            mesh.y_label_formatter(&count);
        }
        let _ = mesh.draw();
        for s in &self.shades {
            let fill = s.color.mix(0.22).filled();
            let _ = chart.draw_series(std::iter::once(Rectangle::new(
                [(s.from.max(x.start), y.start), (s.to.min(x.end), y.end)],
                fill,
            )));
        }
        let colors = self.colors();
        // Bands first, so the lines they often equal are drawn over them.
        for look in [Look::Band, Look::Line] {
            for (l, &color) in self
                .lines
                .iter()
                .zip(&colors)
                .filter(|(l, _)| l.look == look)
            {
                let style = match look {
                    Look::Band => color.mix(0.3).stroke_width(9),
                    Look::Line => color.stroke_width(2),
                };
                for run in runs(&l.points) {
                    if run.len() == 1 {
                        // A lone second between gaps: a dot, or it would not show.
                        let _ = chart.draw_series(std::iter::once(Circle::new(
                            run[0],
                            3,
                            color.filled(),
                        )));
                    } else {
                        let _ = chart.draw_series(LineSeries::new(run, style));
                    }
                }
                if let Some(d) = l.end_dot {
                    let _ = chart.draw_series(std::iter::once(Circle::new(d, 4, color.filled())));
                }
            }
        }
        for (i, r) in self.rules.iter().enumerate() {
            let color = self.rule_color(r);
            let (dash, gap) = DASHES[i % DASHES.len()];
            let _ = chart.draw_series(DashedLineSeries::new(
                [(x.start, r.y), (x.end, r.y)],
                dash,
                gap,
                color.stroke_width(2),
            ));
        }
        // Each rule's label sits on it at the right end, moved left of any label already
        // there: budgets with one threshold would otherwise print over each other.
        let base = area.get_base_pixel();
        let mut placed: Vec<(i32, i32, i32)> = Vec::new();
        for r in &self.rules {
            let color = self.rule_color(r);
            let suffix = if r.broken { " (broken)" } else { "" };
            let words = format!("{}{suffix}", fit(&r.label, ON_PLOT_CHARS - suffix.len()));
            let (px, py) = chart.backend_coord(&(x.end, r.y));
            let (mut right, y) = (px - base.0, py - base.1);
            let width = words.chars().count() as i32 * RULE_CHAR_PX;
            while let Some(p) = placed
                .iter()
                .find(|p| (p.2 - y).abs() < RULE_ROW_PX && right > p.0 && right - width < p.1)
            {
                right = p.0 - RULE_CHAR_PX;
            }
            placed.push((right - width, right, y));
            let style = ("sans-serif", 13)
                .into_font()
                .color(if r.broken { &BROKEN } else { &color })
                .pos(Pos::new(HPos::Right, VPos::Bottom));
            let _ = area.draw(&Text::new(words, (right, y), style));
        }
        for m in &self.marks {
            let _ = chart.draw_series(DashedLineSeries::new(
                [(m.x, y.start), (m.x, y.end)],
                6,
                4,
                m.color.stroke_width(2),
            ));
        }
    }

    /// The legend, in its own panel: shaded stretches, series, budgets, markers. Past
    /// what fits, one line says how many were left out.
    fn legend(&self, area: &DrawingArea<SVGBackend<'_>, Shift>) {
        const ROW: i32 = 18;
        let font = ("sans-serif", 14).into_font();
        let fits = ((H as i32 - 40) / ROW).max(1) as usize;
        let colors = self.colors();
        let mut entries: Vec<(Swatch, String, RGBColor)> = Vec::new();
        // Stretches of one kind after the first are unlabelled: one entry names them all.
        for s in self.shades.iter().filter(|s| !s.label.is_empty()) {
            entries.push((Swatch::Box(s.color), s.label.clone(), BLACK));
        }
        for (l, &c) in self.lines.iter().zip(&colors) {
            entries.push((Swatch::Stroke(c, l.look), l.label.clone(), BLACK));
        }
        for (i, r) in self.rules.iter().enumerate() {
            // A long endpoint name is cut, not the budget or whether it broke.
            let (suffix, ink) = if r.broken {
                (" (broken)", BROKEN)
            } else {
                ("", BLACK)
            };
            let room = LEGEND_CHARS - "budget ".len() - suffix.len();
            let text = format!("budget {}{suffix}", fit(&r.label, room));
            entries.push((
                Swatch::Dash(self.rule_color(r), DASHES[i % DASHES.len()]),
                text,
                ink,
            ));
            // What broke it, beneath: a standalone chart of successful answers can sit
            // under a budget its failed requests broke.
            if let Some(why) = &r.why {
                let why = match why.strip_prefix("not reached: ") {
                    Some(failed) => failed.to_string(),
                    None => format!("measured {why}"),
                };
                entries.push((Swatch::None, format!("– {why}"), NOTE));
            }
        }
        for m in &self.marks {
            entries.push((Swatch::Mark(m.color), m.label.clone(), BLACK));
        }
        if let Some(n) = &self.note {
            entries.push((Swatch::None, n.clone(), NOTE));
        }
        let left_out = entries.len().saturating_sub(fits);
        if left_out > 0 {
            entries.truncate(fits - 1);
        }
        for (i, (swatch, text, ink)) in entries.iter().enumerate() {
            let y = 30 + i as i32 * ROW;
            let x = 8;
            let _ = match *swatch {
                Swatch::Box(c) => area.draw(&Rectangle::new(
                    [(x, y - 5), (x + 20, y + 5)],
                    c.mix(0.35).filled(),
                )),
                Swatch::Stroke(c, Look::Line) => area.draw(&PathElement::new(
                    vec![(x, y), (x + 20, y)],
                    c.stroke_width(2),
                )),
                Swatch::Stroke(c, Look::Band) => area.draw(&PathElement::new(
                    vec![(x, y), (x + 20, y)],
                    c.mix(0.3).stroke_width(9),
                )),
                Swatch::Dash(c, (dash, gap)) => {
                    let (dash, gap) = ((dash as i32).min(8), gap as i32);
                    let mut r = Ok(());
                    let mut from = x;
                    while from < x + 20 {
                        r = area.draw(&PathElement::new(
                            vec![(from, y), ((from + dash).min(x + 20), y)],
                            c.stroke_width(2),
                        ));
                        from += dash + gap.min(4);
                    }
                    r
                }
                Swatch::Mark(c) => area.draw(&PathElement::new(
                    vec![(x + 10, y - 7), (x + 10, y + 7)],
                    c.stroke_width(2),
                )),
                Swatch::None => Ok(()),
            };
            let (at, room) = match swatch {
                Swatch::None => (x, LEGEND_CHARS + 4),
                _ => (x + 28, LEGEND_CHARS),
            };
            let _ = area.draw(&Text::new(
                clip(text, room),
                (at, y - 7),
                font.clone().color(ink),
            ));
        }
        if left_out > 0 {
            let y = 30 + (fits as i32 - 1) * ROW;
            let _ = area.draw(&Text::new(
                format!("and {} more (see the tables)", left_out + 1),
                (8, y - 7),
                font.clone().color(&NOTE),
            ));
        }
    }
}

#[derive(Clone, Copy)]
enum Swatch {
    Box(RGBColor),
    Stroke(RGBColor, Look),
    Dash(RGBColor, (u32, u32)),
    Mark(RGBColor),
    /// Words alone.
    None,
}

/// A budget's label (`scope: expression` or `expression`) in at most `n` characters:
/// the scope is cut before the expression is.
fn fit(label: &str, n: usize) -> String {
    let len = label.chars().count();
    if len <= n {
        return label.to_string();
    }
    match label.rsplit_once(": ") {
        Some((scope, expr)) if expr.chars().count() + 2 + 4 <= n => {
            let room = n - expr.chars().count() - 2;
            format!("{}: {expr}", clip(scope, room))
        }
        _ => clip(label, n),
    }
}

/// `s` cut to `n` characters with an ellipsis (the tables hold every name whole).
fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}

/// The stretches of consecutive points with a value.
fn runs(points: &Points) -> Vec<Vec<(f64, f64)>> {
    let mut out: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut cur = Vec::new();
    for &(x, v) in points {
        match v {
            Some(v) => cur.push((x, v)),
            None if !cur.is_empty() => out.push(std::mem::take(&mut cur)),
            None => {}
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Axis tick labels without spurious decimals: `5000`, `2.5`, `0.25`, `0.5` (not `0.50`
/// beside `1.5`).
fn tick(v: &f64) -> String {
    let a = v.abs();
    let text = if a >= 100.0 || v.fract() == 0.0 {
        return format!("{v:.0}");
    } else if a >= 1.0 {
        format!("{v:.1}")
    } else if a >= 0.01 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    };
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A tick of a count axis whose top is `top`: whole numbers only, unless the axis ends
/// below 2, where that would leave it with no scale (a long run's rates are means over
/// several seconds, often below 1).
fn count_tick(v: f64, top: f64) -> String {
    if top < 2.0 {
        tick(&v)
    } else if (v - v.round()).abs() < 1e-9 {
        format!("{:.0}", v.round())
    } else {
        String::new()
    }
}

/// A number of nines as a percentile: 0 is 0%, 1 is 90%, 2.5 is 99.7%, 3 is 99.9%.
fn nines(x: f64) -> String {
    let pct = 100.0 * (1.0 - 10f64.powf(-x));
    let digits = (x.ceil() as i64 - 2).max(0) as usize;
    format!("{pct:.digits$}%")
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

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
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

fn successes(r: &SeriesRow) -> bool {
    r.outcomes.get(Outcome::Success) > 0
}

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
    for (b, broken) in budgets.global() {
        if let Some(k) = stat_key(b) {
            let series = c.lines.iter().any(|l| l.key == k).then_some(k);
            c.rules.push(rule("global", b, series, broken));
        }
    }
    c.shades = phases(run);
    c.shades.extend(worst_windows(run, &|b| b.is_latency()));
    c
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
    for (b, broken) in Budgets::of(run).global() {
        if b.metric == Metric::Throughput {
            c.rules
                .push(rule("global", b, Some("succeeded".into()), broken));
        }
    }
    c.shades = phases(run);
    c.shades
        .extend(worst_windows(run, &|b| b.metric == Metric::Throughput));
    c
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

/// The latency percentile spectrum of the measured phase, overall and per endpoint, each
/// ending in a dot at its maximum; global percentile budgets in the overall line's colour.
pub(crate) fn spectrum_plan(run: &RunDir) -> Option<LineChart> {
    let h = run.histograms.as_ref()?;
    let mut c = LineChart::new(
        "Latency by percentile (measured phase)",
        "percentile",
        "latency (ms)",
        Axis::Latency,
    );
    c.x_labels = XLabels::Nines;
    let mut x_end = 1.0f64;
    // One endpoint's line would be the line of all of them, drawn over it: the one line
    // says whose it is. Of many, as many as there are colours, the slowest at the top.
    let eps = &h.measured.endpoints;
    let only = (eps.len() == 1).then(|| eps[0].name.clone());
    let chosen = if only.is_some() {
        Vec::new()
    } else {
        // One colour is the line of all endpoints'.
        pick(&run.summary.endpoints, PALETTE.len() - 1, |i| {
            let l = &run.summary.endpoints[i].latency_us;
            (l.p999, l.max)
        })
    };
    if only.is_none() {
        c.note = left_out(eps.len(), chosen.len().min(eps.len()));
    }
    let drawn = chosen.iter().filter_map(|&i| eps.get(i));
    for pair in std::iter::once(&h.measured.all).chain(drawn) {
        let Ok(hist) = pair.latency() else { continue };
        if hist.is_empty() {
            continue;
        }
        let points = spectrum(&hist);
        let end = points.last().map_or(1.0, |p| p.0);
        x_end = x_end.max(end);
        let max = hist.max() as f64 / 1000.0;
        let name = match &only {
            Some(n) => format!("{} ({n})", pair.name),
            None => pair.name.clone(),
        };
        c.lines.push(Line {
            key: pair.name.clone(),
            label: format!("{name} (max {})", us(hist.max() as f64)),
            points: points.into_iter().map(|(x, v)| (x, Some(v))).collect(),
            look: Look::Line,
            end_dot: Some((end, max)),
        });
    }
    if c.lines.is_empty() {
        return None;
    }
    c.x_range = 0.0..x_end;
    let all = c.lines[0].key.clone();
    for (b, broken) in Budgets::of(run).global() {
        if b.timing == Timing::Latency && matches!(b.metric, Metric::Percentile(_) | Metric::Max) {
            c.rules.push(rule("global", b, Some(all.clone()), broken));
        }
    }
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
    push(
        "throughput.svg",
        "Throughput over time",
        Some(throughput_plan(run, baseline)),
        ("", ""),
    );
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{synthetic, synthetic_with};

    fn run() -> RunDir {
        synthetic(&["analyze", "health"], 10, 2, 50)
    }

    #[test]
    fn nines_label_every_tick() {
        assert_eq!(nines(0.0), "0%");
        assert_eq!(nines(1.0), "90%");
        assert_eq!(nines(2.0), "99%");
        assert_eq!(nines(2.5), "99.7%");
        assert_eq!(nines(3.0), "99.9%");
        assert_eq!(nines(4.0), "99.99%");
    }

    #[test]
    fn a_second_without_an_answer_is_a_gap_not_a_zero() {
        let mut run = run();
        let quiet = &mut run.series[5];
        quiet.outcomes = Default::default();
        quiet.latency_us = Percentiles::default();
        for e in &mut quiet.endpoints {
            e.outcomes = Default::default();
            e.p95_us = 0;
        }
        for plan in [latency_plan(&run, None), endpoints_plan(&run)] {
            for l in &plan.lines {
                let p = l.points.iter().find(|p| p.0 == 5.5).unwrap();
                assert_eq!(p.1, None, "{}: {p:?}", l.key);
                assert!(l.points.iter().filter_map(|p| p.1).all(|v| v > 0.0));
            }
        }
        // Counts stay counts: nothing completed is a true zero.
        let t = throughput_plan(&run, None);
        let done = t.lines.iter().find(|l| l.key == "succeeded").unwrap();
        assert_eq!(
            done.points.iter().find(|p| p.0 == 5.5).unwrap().1,
            Some(0.0)
        );
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

    #[test]
    fn a_rule_near_the_floor_turns_the_latency_axis_logarithmic() {
        let mut run = run();
        let b = loadgate_slo::parse("p95 < 1ms").unwrap();
        run.summary
            .slo
            .push(b.result("global", loadgate_slo::Measure::Value(60_000.0)));
        let plan = latency_plan(&run, None);
        assert!(plan.log_scale());
        let y = plan.y_range();
        assert!(y.start <= 1.0 && y.start > 0.0, "{y:?}");
        // Data near its budget is linear from 0.
        let near = synthetic_with(&["a"], 10, 2, 20, &["p95 < 100ms"], |_, i| {
            (Outcome::Success, 50_000 + i * 1_000, 49_000)
        });
        let plain = latency_plan(&near, None);
        assert!(!plain.log_scale());
        assert_eq!(plain.y_range().start, 0.0);
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

    /// Issue 19 (a second new user): a one-endpoint URL run's p95 chart left out the
    /// budget it broke, a global one; with one endpoint, the global p95 budgets are drawn
    /// on its line, named as global.
    #[test]
    fn one_endpoint_carries_the_global_p95_budget() {
        let mut run = synthetic(&["GET /x"], 10, 2, 20);
        let b = loadgate_slo::parse("p95 < 1ms").unwrap();
        run.summary
            .slo
            .push(b.result("global", loadgate_slo::Measure::Value(60_000.0)));
        let plan = endpoints_plan(&run);
        let r = plan.rules.iter().find(|r| r.label == "p95 < 1ms").unwrap();
        assert_eq!(r.series.as_deref(), Some("GET /x"));
        // With two endpoints it is on no line of theirs.
        let mut two = synthetic(&["a", "b"], 10, 2, 20);
        two.summary
            .slo
            .push(b.result("global", loadgate_slo::Measure::Value(60_000.0)));
        assert!(endpoints_plan(&two)
            .rules
            .iter()
            .all(|r| r.label != "p95 < 1ms"));
    }

    #[test]
    fn an_endpoint_budget_is_drawn_only_on_its_endpoints_line() {
        let mut run = run();
        let b = loadgate_slo::parse("p95 < 100ms").unwrap();
        run.summary
            .slo
            .push(b.result("health", loadgate_slo::Measure::Value(1.0)));
        assert!(latency_plan(&run, None)
            .rules
            .iter()
            .all(|r| !r.label.starts_with("health")));
        let e = endpoints_plan(&run);
        let r = e
            .rules
            .iter()
            .find(|r| r.label == "health: p95 < 100ms")
            .unwrap();
        assert_eq!(r.series.as_deref(), Some("health"));
        let cap = crate::testing::capacity("svc");
        for plan in capacity_plans(&cap) {
            assert!(
                plan.rules.iter().all(|r| !r.label.contains(": ")),
                "an endpoint's budget on a chart of all endpoints: {:?}",
                plan.rules
            );
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

    /// The `<text>` elements of an SVG whose content contains `needle`: (x, y, content
    /// unescaped).
    fn texts(svg: &str, needle: &str) -> Vec<(f64, f64, String)> {
        let attr = |t: &str, name: &str| -> f64 {
            t.split(&format!(" {name}=\""))
                .nth(1)
                .and_then(|s| s.split('"').next())
                .and_then(|s| s.parse().ok())
                .unwrap()
        };
        svg.split("<text")
            .skip(1)
            .filter_map(|t| {
                let (head, rest) = t.split_once('>')?;
                let body = rest.split("</text>").next()?.trim();
                let body = body
                    .replace("&lt;", "<")
                    .replace("&gt;", ">")
                    .replace("&amp;", "&");
                body.contains(needle)
                    .then(|| (attr(head, "x"), attr(head, "y"), body))
            })
            .collect()
    }

    fn with_budgets(run: &mut RunDir, scope: &str, exprs: &[&str]) {
        for e in exprs {
            let b = loadgate_slo::parse(e).unwrap();
            run.summary
                .slo
                .push(b.result(scope, loadgate_slo::Measure::Value(1.0)));
        }
    }

    #[test]
    fn many_pauses_leave_the_series_in_the_legend() {
        // A long run on a busy machine: 30 long pauses. Each is shaded, but the legend
        // names the pauses once, and every series still has its entry.
        let mut run = synthetic(&["analyze", "health"], 120, 2, 20);
        for r in run.series.iter_mut().step_by(4) {
            r.pauses = Some(loadgate_metrics::Pauses {
                threshold_us: 1_000,
                count: 1,
                total_us: 150_000,
                max_us: 150_000,
            });
        }
        let plan = throughput_plan(&run, None);
        assert_eq!(plan.shades.iter().filter(|s| s.color == PAUSED).count(), 30);
        let svg = plan.draw();
        for l in &plan.lines {
            assert_eq!(texts(&svg, &l.label).len(), 1, "{} left out", l.label);
        }
        assert!(!svg.contains("more (see the tables)"));
        assert_eq!(texts(&svg, "loadgate paused").len(), 1);
    }

    #[test]
    fn a_count_axis_below_one_still_has_a_scale() {
        // A long run's rates are means over several seconds: 0.4 errors a second is an
        // axis up to 0.44, which must not be labelled 0 alone.
        let labels: Vec<String> = [0.0, 0.1, 0.2, 0.3, 0.4]
            .iter()
            .map(|v| count_tick(*v, 0.44))
            .collect();
        assert_eq!(labels, ["0", "0.1", "0.2", "0.3", "0.4"]);
        // Above, whole numbers only, even when the sum that made them is not exact.
        assert_eq!(count_tick(0.5, 33.0), "");
        assert_eq!(count_tick(3.0000000000000004, 33.0), "3");
        assert_eq!(count_tick(30.0, 33.0), "30");
        // An axis of nothing but zeros still says what its top is.
        assert_eq!(count_tick(1.0, 1.0), "1");
        assert_eq!(count_tick(0.5, 1.0), "0.5");
    }

    #[test]
    fn ticks_have_no_trailing_zeros() {
        assert_eq!(tick(&0.5), "0.5");
        assert_eq!(tick(&0.25), "0.25");
        assert_eq!(tick(&1.5), "1.5");
        assert_eq!(tick(&2.0), "2");
        assert_eq!(tick(&0.1), "0.1");
        assert_eq!(tick(&5000.0), "5000");
    }

    #[test]
    fn rule_labels_at_the_same_threshold_do_not_overprint() {
        let mut run = synthetic_with(&["a"], 10, 2, 50, &[], |_, i| {
            (Outcome::Success, 20_000 + i * 1_000, 19_000 + i * 1_000)
        });
        with_budgets(
            &mut run,
            "global",
            &["p95 < 50ms", "p99 < 50ms", "mean < 50ms", "max < 51ms"],
        );
        let plan = latency_plan(&run, None);
        let svg = plan.draw();
        let mut boxes = Vec::new();
        for r in &plan.rules {
            // The one on the plot (the legend's says "budget ...").
            let (x, y, body) = texts(&svg, &r.label)
                .into_iter()
                .find(|t| !t.2.starts_with("budget"))
                .unwrap_or_else(|| panic!("{} not on the plot", r.label));
            let w = body.chars().count() as f64 * 5.0;
            boxes.push((x - w, x, y, body));
        }
        for (i, a) in boxes.iter().enumerate() {
            for b in &boxes[i + 1..] {
                let apart = (a.2 - b.2).abs() >= 12.0 || a.1 <= b.0 || b.1 <= a.0;
                assert!(apart, "{a:?} overprints {b:?}");
            }
        }
    }

    #[test]
    fn a_long_endpoint_name_keeps_its_budget_readable() {
        let long = "x".repeat(300);
        let mut run = synthetic(&[&long, "health"], 10, 2, 50);
        with_budgets(&mut run, &long, &["p95 < 100ms"]);
        let plan = endpoints_plan(&run);
        let svg = plan.draw();
        let on_plot: Vec<_> = texts(&svg, "p95 < 100ms");
        assert_eq!(
            on_plot.len(),
            2,
            "on the plot and in the legend: {on_plot:?}"
        );
        for (x, _, body) in on_plot {
            assert!(body.chars().count() <= 60, "{body}");
            assert!(x > 70.0, "{body} starts left of the plot");
        }
        // The legend's line keeps the expression; the name is what is cut.
        let svg_legend = texts(&svg, "budget ");
        assert_eq!(svg_legend.len(), 1);
        assert!(
            svg_legend[0].2.ends_with(": p95 < 100ms"),
            "{}",
            svg_legend[0].2
        );
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
    fn data_far_under_its_budget_is_drawn_on_a_log_axis() {
        // 20-70 ms answers under `p95 < 2s`: on a linear axis, a flat line on the floor.
        let run = synthetic_with(&["a"], 10, 2, 20, &["p95 < 2s"], |_, i| {
            (Outcome::Success, 20_000 + i * 2_500, 19_000)
        });
        assert!(latency_plan(&run, None).log_scale());
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

    #[test]
    fn a_capacity_step_without_answers_is_a_gap_not_a_zero() {
        let mut cap = crate::testing::capacity("svc");
        let s = cap.steps.iter_mut().find(|s| s.rate_rps == 400.0).unwrap();
        (s.p50_ms, s.p95_ms, s.p99_ms, s.success_rps) = (0.0, 0.0, 0.0, 0.0);
        let [latency, _] = capacity_plans(&cap);
        for l in &latency.lines {
            let p = l.points.iter().find(|p| p.0 == 400.0).unwrap();
            assert_eq!(p.1, None, "{}", l.key);
            assert!(l.points.iter().filter_map(|p| p.1).all(|v| v > 0.0));
        }
    }

    #[test]
    fn the_legend_leaves_the_plot_alone() {
        // Nothing of the legend is inside the plot: every legend text starts right of it.
        let svg = latency_plan(&run(), None).draw();
        let legend_x = (W - LEGEND_W) as f64;
        let texts = svg.split("<text").skip(1);
        let mut seen = 0;
        for t in texts {
            if t.contains("p50 (whole run") {
                let x: f64 = t
                    .split("x=\"")
                    .nth(1)
                    .and_then(|s| s.split('"').next())
                    .and_then(|s| s.parse().ok())
                    .unwrap();
                assert!(x > legend_x, "legend text at x={x}");
                seen += 1;
            }
        }
        assert_eq!(seen, 1);
    }
}
