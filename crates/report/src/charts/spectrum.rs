//! The latency percentile spectrum of the measured phase, from its histograms: the line
//! of all endpoints and of the slowest few, each ending at its maximum.

use loadgate_metrics::{LatencyHistogram, Timing};
use loadgate_slo::Metric;

use super::{left_out, pick, rule, Axis, Budgets, Line, LineChart, Look, XLabels, PALETTE};
use crate::rundir::RunDir;
use crate::text::us;

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

/// (nines, ms) from 0% to 99.99% (or as far as the sample count supports).
fn spectrum(h: &LatencyHistogram) -> Vec<(f64, f64)> {
    let max_nines = (h.len() as f64).log10().clamp(1.0, 4.0);
    (0..=200)
        .map(|i| i as f64 * max_nines / 200.0)
        .map(|x| (x, h.quantile(1.0 - 10f64.powf(-x)) as f64 / 1000.0))
        .collect()
}
