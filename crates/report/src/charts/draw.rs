//! Drawing a planned chart with plotters: the plot (shaded stretches, bands under lines,
//! budget rules with their labels set side by side, markers), the legend in its own
//! panel, tick labels, and the one-line SVG that stands in for a chart with nothing to
//! draw. What a chart shows is decided by its plan ([`LineChart`]), not here.

use std::ops::Range;

use plotters::coord::ranged1d::{AsRangedCoord, Ranged, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{Axis, LineChart, Look, Points, XLabels, BROKEN};

pub(super) const W: u32 = 1000;
pub(super) const H: u32 = 380;
/// Width of the legend panel right of the plot.
const LEGEND_W: u32 = 270;
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

impl LineChart {
    pub(super) fn draw(&self) -> String {
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

pub(super) fn svg_message(title: &str, message: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::charts::tests::{run, with_budgets};
    use crate::charts::{endpoints_plan, latency_plan, throughput_plan, PAUSED};
    use crate::testing::{synthetic, synthetic_with};
    use loadgate_metrics::Outcome;

    /// Which labeller a tick is on: a plain axis, a nines axis, or a count axis that ends
    /// at the given top.
    #[derive(Debug, Clone, Copy)]
    enum Ticks {
        Plain,
        Nines,
        Count(f64),
    }

    #[track_caller]
    fn check(ticks: Ticks, v: f64, want: &str) {
        let label = match ticks {
            Ticks::Plain => tick(&v),
            Ticks::Nines => nines(v),
            Ticks::Count(top) => count_tick(v, top),
        };
        assert_eq!(label, want, "{ticks:?} tick at {v}");
    }

    #[test]
    fn ticks_are_labelled_without_spurious_decimals() {
        use Ticks::*;
        for (ticks, v, want) in [
            // No trailing zeros: `0.5` beside `1.5`, not `0.50`.
            (Plain, 0.5, "0.5"),
            (Plain, 0.25, "0.25"),
            (Plain, 1.5, "1.5"),
            (Plain, 2.0, "2"),
            (Plain, 0.1, "0.1"),
            (Plain, 5000.0, "5000"),
            // Nines label every tick as a percentile.
            (Nines, 0.0, "0%"),
            (Nines, 1.0, "90%"),
            (Nines, 2.0, "99%"),
            (Nines, 2.5, "99.7%"),
            (Nines, 3.0, "99.9%"),
            (Nines, 4.0, "99.99%"),
            // A count axis below one still has a scale: a long run's rates are means over
            // several seconds, and 0.4 errors a second is an axis up to 0.44, which must
            // not be labelled 0 alone.
            (Count(0.44), 0.0, "0"),
            (Count(0.44), 0.1, "0.1"),
            (Count(0.44), 0.2, "0.2"),
            (Count(0.44), 0.3, "0.3"),
            (Count(0.44), 0.4, "0.4"),
            // Above, whole numbers only, even when the sum that made them is not exact.
            (Count(33.0), 0.5, ""),
            (Count(33.0), 3.0000000000000004, "3"),
            (Count(33.0), 30.0, "30"),
            // An axis of nothing but zeros still says what its top is.
            (Count(1.0), 1.0, "1"),
            (Count(1.0), 0.5, "0.5"),
        ] {
            check(ticks, v, want);
        }
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
