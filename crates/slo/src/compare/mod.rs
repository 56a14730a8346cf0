//! Baseline comparison: per endpoint and per metric, baseline vs new vs delta, judged
//! against relative or absolute regression budgets (`p95:+10%`, `p95:+50ms`,
//! `throughput:-5%`, `error_rate:+0.5pp`).
//!
//! A latency delta beyond its budget is called a regression only when the two latency
//! distributions also differ beyond noise: a two-sample Kolmogorov–Smirnov test computed
//! exactly from the two HdrHistograms (D = the largest gap between the two empirical
//! CDFs; the runs differ when D exceeds the critical value c(α)·√((n+m)/(n·m)) with
//! α = 0.01, c = 1.628). A small run whose p95 wobbles past the budget by chance is
//! reported as "within noise", not as a regression.

use std::collections::BTreeMap;

use loadgate_metrics::{LatencyHistogram, Timing, Timings};
use serde::{Deserialize, Serialize};

use crate::summary::{EndpointSummary, RunSummary};

/// The budgets used when none are given.
pub const DEFAULT_BUDGETS: [&str; 5] = [
    "p50:+10%",
    "p95:+10%",
    "p99:+20%",
    "throughput:-5%",
    "error_rate:+0.5pp",
];

/// c(α) of the two-sample KS test at α = 0.01.
const KS_C_ALPHA: f64 = 1.628;

/// What a regression budget watches.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum CompareMetric {
    /// A latency percentile (50, 90, 95, 99, 99.9).
    Percentile(f64),
    /// Mean latency.
    Mean,
    /// Largest latency.
    Max,
    /// Successful requests per second (lower is worse).
    Throughput,
    /// Share of failed requests (higher is worse).
    ErrorRate,
}

/// How much worse a metric may get.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Allowance {
    /// A fraction of the baseline (0.10 for `+10%`).
    Relative(f64),
    /// Microseconds (`+50ms`).
    Micros(f64),
    /// Percentage points as a fraction (0.005 for `+0.5pp`).
    Points(f64),
}

/// One regression budget.
#[derive(Debug, Clone, PartialEq)]
pub struct CompareBudget {
    /// As written.
    pub text: String,
    /// Which timing a latency metric watches (`ttfb_p95:+10%`); latency otherwise.
    pub timing: Timing,
    /// What it watches.
    pub metric: CompareMetric,
    /// How much worse it may get.
    pub allowance: Allowance,
}

/// Parses `p95:+10%`, `p95:+50ms`, `throughput:-5%`, `error_rate:+0.5pp`.
pub fn parse_budget(text: &str) -> Result<CompareBudget, String> {
    let hint = "write METRIC:+N% or METRIC:+Nms for latency (p50, p95, p99, p99.9, mean, max; another timing prefixes its name: ttfb_p95, service_p99, ttft_p95, tpot_p50, connect_p99), throughput:-N%, error_rate:+Npp, a stream's speed tokens_per_s_p10:-N%";
    let (m, a) = text
        .split_once(':')
        .ok_or_else(|| format!("`{text}` has no `:`; {hint}"))?;
    if let Some(stat) = m.trim().strip_prefix("tokens_per_s_") {
        return speed_budget(text, stat, a.trim());
    }
    let (timing, stat) = crate::expr::split_timing(m.trim());
    let plain = stat == m.trim();
    let metric = match stat {
        "mean" | "avg" => CompareMetric::Mean,
        "max" => CompareMetric::Max,
        "throughput" | "rps" if plain => CompareMetric::Throughput,
        "error_rate" if plain => CompareMetric::ErrorRate,
        p => CompareMetric::Percentile(
            p.strip_prefix('p')
                .and_then(|n| n.parse::<f64>().ok())
                .filter(|n| (0.0..=100.0).contains(n))
                .ok_or_else(|| format!("unknown metric `{p}` in `{text}`; {hint}"))?,
        ),
    };
    let a = a.trim();
    let (sign, rest) = match a.chars().next() {
        Some('+') => (1.0, &a[1..]),
        Some('-') => (-1.0, &a[1..]),
        _ => {
            return Err(format!(
            "`{a}` in `{text}` needs a sign: + for latency and errors, - for throughput; {hint}"
        ))
        }
    };
    let worse_is_up = metric != CompareMetric::Throughput;
    if (sign > 0.0) != worse_is_up {
        return Err(format!(
            "`{text}`: {} gets worse when it goes {}, so write {}",
            m.trim(),
            if worse_is_up { "up" } else { "down" },
            if worse_is_up { "+" } else { "-" }
        ));
    }
    let num_end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let n: f64 = rest[..num_end]
        .parse()
        .map_err(|_| format!("`{a}` in `{text}` is not a number with a unit; {hint}"))?;
    let allowance = match (&rest[num_end..], metric) {
        ("%", _) => Allowance::Relative(n / 100.0),
        ("pp", CompareMetric::ErrorRate) => Allowance::Points(n / 100.0),
        ("us" | "µs", CompareMetric::Percentile(_) | CompareMetric::Mean | CompareMetric::Max) => {
            Allowance::Micros(n)
        }
        ("ms", CompareMetric::Percentile(_) | CompareMetric::Mean | CompareMetric::Max) => {
            Allowance::Micros(n * 1e3)
        }
        ("s", CompareMetric::Percentile(_) | CompareMetric::Mean | CompareMetric::Max) => {
            Allowance::Micros(n * 1e6)
        }
        (u, _) => {
            return Err(format!(
                "unit `{u}` does not fit `{}` in `{text}`; {hint}",
                m.trim()
            ))
        }
    };
    Ok(CompareBudget {
        text: text.trim().to_string(),
        timing,
        metric,
        allowance,
    })
}

/// `tokens_per_s_pN:-X%` (or `_min`): a stream's speed may drop by X%, which is the
/// same as its time per token (`tpot_p(100-N)`, `tpot_max`) rising by X/(100-X).
fn speed_budget(text: &str, stat: &str, a: &str) -> Result<CompareBudget, String> {
    let hint = "write tokens_per_s_pN:-X% (the speed may drop by X%), or tokens_per_s_min:-X%";
    let metric = match stat {
        "min" => CompareMetric::Max,
        _ => CompareMetric::Percentile(
            stat.strip_prefix('p')
                .and_then(|n| n.parse::<f64>().ok())
                .filter(|n| (0.0..=100.0).contains(n))
                .map(|n| 100.0 - n)
                .ok_or_else(|| {
                    format!("unknown metric `tokens_per_s_{stat}` in `{text}`; {hint}")
                })?,
        ),
    };
    let drop = a
        .strip_prefix('-')
        .and_then(|r| r.strip_suffix('%'))
        .and_then(|n| n.parse::<f64>().ok())
        .filter(|n| (0.0..100.0).contains(n))
        .ok_or_else(|| {
            format!(
                "`{a}` in `{text}`: a speed gets worse when it goes down; {hint} with X below 100"
            )
        })?
        / 100.0;
    Ok(CompareBudget {
        text: text.trim().to_string(),
        timing: Timing::Tpot,
        metric,
        allowance: Allowance::Relative(drop / (1.0 - drop)),
    })
}

/// How one metric moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Movement {
    /// Within budget.
    Ok,
    /// Better by more than the budget, and the distributions differ.
    Improved,
    /// Worse by more than the budget, and (for latency) the distributions differ.
    Regression,
    /// Worse by more than the budget, but the distributions do not differ beyond noise.
    WithinNoise,
}

/// One metric of one endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompareRow {
    /// Endpoint name or `all`.
    pub scope: String,
    /// The budget.
    pub budget: String,
    /// Baseline value (µs, rps or a 0..1 ratio).
    pub baseline: f64,
    /// New value.
    pub new: f64,
    /// `new - baseline`.
    pub delta: f64,
    /// `delta / baseline`, when the baseline is not zero.
    pub delta_rel: Option<f64>,
    /// The verdict.
    pub movement: Movement,
}

/// The two-sample KS test on one endpoint's latency (or another timing).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DistributionTest {
    /// Endpoint name or `all`.
    pub scope: String,
    /// The timing compared (`latency`, `ttfb`, ...).
    #[serde(default = "latency_name")]
    pub timing: String,
    /// Largest gap between the two empirical CDFs.
    pub ks_distance: f64,
    /// Critical value at α = 0.01.
    pub critical: f64,
    /// Samples in the baseline.
    pub n_baseline: u64,
    /// Samples in the new run.
    pub n_new: u64,
    /// Whether the distributions differ beyond noise.
    pub differ: bool,
}

/// The whole comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// Baseline scenario name and start time.
    pub baseline: String,
    /// New scenario name and start time.
    pub new: String,
    /// Budgets applied.
    pub budgets: Vec<String>,
    /// One row per scope and budget.
    pub rows: Vec<CompareRow>,
    /// One test per scope with histograms on both sides.
    pub distributions: Vec<DistributionTest>,
    /// Endpoints only the baseline has.
    pub only_in_baseline: Vec<String>,
    /// Endpoints only the new run has.
    pub only_in_new: Vec<String>,
    /// Why the two runs cannot be compared (empty when they can): an invalid or
    /// interrupted side, another scenario, model, endpoint set, segment share or load.
    /// Rows are still listed, but no movement counts as a regression.
    #[serde(default)]
    pub incomparable: Vec<String>,
    /// Whether any row is a regression (never when the runs are incomparable).
    pub regression: bool,
}

impl Comparison {
    /// A run's verdict once compared with its baseline: a pass becomes a regression when
    /// this comparison found one; a regression never hides a failure or an invalid run.
    pub fn verdict(&self, judged: crate::summary::Verdict) -> crate::summary::Verdict {
        use crate::summary::Verdict;
        if self.regression && judged == Verdict::Pass {
            Verdict::Regression
        } else {
            judged
        }
    }
}

fn latency_name() -> String {
    Timing::Latency.name().to_string()
}

/// How far apart two runs' peak loads may be and still be compared: 10%.
pub const LOAD_TOLERANCE: f64 = 0.10;

/// Why `base` and `new` are not two runs of the same load against the same target
/// (empty when they are).
pub fn incomparable(base: &RunSummary, new: &RunSummary) -> Vec<String> {
    use crate::summary::Verdict;
    let mut why = Vec::new();
    for (side, s) in [("the baseline", base), ("the new run", new)] {
        match s.verdict {
            Verdict::Invalid => why.push(format!(
                "{side} is INVALID: its figures describe loadgate's own shortfall, not the target"
            )),
            Verdict::Interrupted => why.push(format!(
                "{side} was interrupted: it measured only part of its load"
            )),
            _ => {}
        }
        if s.overall.requests <= s.overall.errors {
            why.push(format!(
                "{side} has no successful request: it has no latency to compare, and its rates describe an outage"
            ));
        }
    }
    // Layout 2 changed what latency covers; layouts 3 to 5 only added timings (a timing
    // one side lacks has no row).
    let measures = |v: u32| v.min(2);
    if measures(base.schema_version) != measures(new.schema_version) {
        why.push(format!(
            "they were written by loadgate versions that measure differently (summary layouts {} and {}; since layout 2, latency figures cover successful requests only): run the baseline again with this version",
            base.schema_version, new.schema_version
        ));
    }
    if base.scenario != new.scenario {
        why.push(format!(
            "they ran different scenarios (`{}` and `{}`)",
            base.scenario, new.scenario
        ));
    }
    if base.model != new.model {
        why.push(format!(
            "they ran different load models ({} and {})",
            base.model, new.model
        ));
    }
    let names = |s: &RunSummary| {
        s.endpoints
            .iter()
            .map(|e| e.name.clone())
            .collect::<Vec<_>>()
    };
    let (mut bn, mut nn) = (names(base), names(new));
    bn.sort();
    nn.sort();
    if bn != nn {
        why.push(format!(
            "they sent to different endpoints ({} and {})",
            bn.join(", "),
            nn.join(", ")
        ));
    }
    let share = |s: &RunSummary| {
        s.segment
            .as_ref()
            .filter(|g| g.count > 1)
            .map_or("the whole load".to_string(), |g| {
                format!("segment {}/{}", g.index, g.count)
            })
    };
    if share(base) != share(new) {
        why.push(format!(
            "they sent different shares of the load ({} and {})",
            share(base),
            share(new)
        ));
    }
    // The peak the profile asked for; for summaries written before it was recorded,
    // the open model's target rate.
    let peak = |s: &RunSummary| {
        Some(s.load.peak)
            .filter(|p| *p > 0.0)
            .or_else(|| s.rate.as_ref().map(|r| r.target_rps))
    };
    // The same peak reached differently (a ramp against a constant rate) is another
    // load too: the mean rate offered over the measured phase must agree as well.
    if let (Some(a), Some(b)) = (&base.rate, &new.rate) {
        let (a, b) = (a.target_rps, b.target_rps);
        if (a - b).abs() > LOAD_TOLERANCE * a.max(b) {
            why.push(format!(
                "they offered different mean rates over the measured phase ({} rps and {} rps, more than {:.0}% apart)",
                crate::capacity::num((a * 10.0).round() / 10.0),
                crate::capacity::num((b * 10.0).round() / 10.0),
                LOAD_TOLERANCE * 100.0
            ));
        }
    }
    if let (Some(a), Some(b)) = (peak(base), peak(new)) {
        if base.model == new.model && (a - b).abs() > LOAD_TOLERANCE * a.max(b) {
            let unit = if base.model == "closed" { "VUs" } else { "rps" };
            why.push(format!(
                "they ran different loads (peak {} {unit} and {} {unit}, more than {:.0}% apart)",
                crate::capacity::num(a),
                crate::capacity::num(b),
                LOAD_TOLERANCE * 100.0
            ));
        }
    }
    why
}

/// The Kolmogorov–Smirnov distance between two histograms, exact at bucket resolution.
pub fn ks_distance(a: &LatencyHistogram, b: &LatencyHistogram) -> f64 {
    let (na, nb) = (a.len() as f64, b.len() as f64);
    if na == 0.0 || nb == 0.0 {
        return 0.0;
    }
    let mut pa = a
        .inner()
        .iter_recorded()
        .map(|v| (v.value_iterated_to(), v.count_at_value()))
        .peekable();
    let mut pb = b
        .inner()
        .iter_recorded()
        .map(|v| (v.value_iterated_to(), v.count_at_value()))
        .peekable();
    let (mut ca, mut cb, mut d) = (0u64, 0u64, 0f64);
    loop {
        let next = match (pa.peek(), pb.peek()) {
            (None, None) => break,
            (Some(x), None) => x.0,
            (None, Some(y)) => y.0,
            (Some(x), Some(y)) => x.0.min(y.0),
        };
        while let Some(&(_, c)) = pa.peek().filter(|p| p.0 == next) {
            ca += c;
            pa.next();
        }
        while let Some(&(_, c)) = pb.peek().filter(|p| p.0 == next) {
            cb += c;
            pb.next();
        }
        d = d.max((ca as f64 / na - cb as f64 / nb).abs());
    }
    d
}

/// The metric from a run's summary figures. A percentile the summary does not list (it
/// lists p50, p90, p95, p99 and p99.9) needs the histogram: NaN without it, never a
/// neighbouring percentile.
fn value(e: &EndpointSummary, t: Timing, m: CompareMetric) -> f64 {
    let l = e.timing(t);
    match m {
        CompareMetric::Percentile(50.0) => l.p50 as f64,
        CompareMetric::Percentile(90.0) => l.p90 as f64,
        CompareMetric::Percentile(95.0) => l.p95 as f64,
        CompareMetric::Percentile(99.0) => l.p99 as f64,
        CompareMetric::Percentile(99.9) => l.p999 as f64,
        CompareMetric::Percentile(_) => f64::NAN,
        CompareMetric::Mean => l.mean,
        CompareMetric::Max => l.max as f64,
        CompareMetric::Throughput => e.success_rps,
        CompareMetric::ErrorRate => e.error_rate,
    }
}

fn value_from_hist(
    h: Option<&LatencyHistogram>,
    e: &EndpointSummary,
    t: Timing,
    m: CompareMetric,
) -> f64 {
    match (h, m) {
        (Some(h), CompareMetric::Percentile(p)) if !h.is_empty() => h.quantile(p / 100.0) as f64,
        _ => value(e, t, m),
    }
}

/// Each endpoint's (and `all`'s) histogram of every timing, as a run directory keeps
/// them.
pub type Histograms = BTreeMap<String, Timings<LatencyHistogram>>;

/// Compares `new` with `base`. `*_hists` map endpoint names (and `all`) to their
/// timings' histograms; without them timing rows cannot be tested for noise and count
/// as differing.
pub fn compare(
    base: &RunSummary,
    base_hists: &Histograms,
    new: &RunSummary,
    new_hists: &Histograms,
    budgets: &[CompareBudget],
) -> Comparison {
    let names = |s: &RunSummary| {
        s.endpoints
            .iter()
            .map(|e| e.name.clone())
            .collect::<Vec<_>>()
    };
    let (bn, nn) = (names(base), names(new));
    let only_in_baseline = bn.iter().filter(|n| !nn.contains(n)).cloned().collect();
    let only_in_new = nn.iter().filter(|n| !bn.contains(n)).cloned().collect();
    let mut scopes: Vec<(&EndpointSummary, &EndpointSummary)> = vec![(&base.overall, &new.overall)];
    for b in &base.endpoints {
        if let Some(n) = new.endpoints.iter().find(|n| n.name == b.name) {
            scopes.push((b, n));
        }
    }
    let mut rows = Vec::new();
    let mut distributions = Vec::new();
    for (b, n) in scopes {
        let scope = if std::ptr::eq(b, &base.overall) {
            "all".to_string()
        } else {
            b.name.clone()
        };
        let key = if scope == "all" {
            "all"
        } else {
            scope.as_str()
        };
        // One distribution test per timing the budgets watch, in timing order.
        let mut differ: Timings<bool> = Timings::from_fn(|_| true);
        for t in Timing::ALL {
            if !budgets.iter().any(|b| is_timing(b) && b.timing == t) {
                continue;
            }
            let pair = (
                base_hists.get(key).map(|h| &h[t]),
                new_hists.get(key).map(|h| &h[t]),
            );
            if let (Some(x), Some(y)) = pair {
                if !x.is_empty() && !y.is_empty() {
                    let d = ks_distance(x, y);
                    let (n1, n2) = (x.len() as f64, y.len() as f64);
                    let critical = KS_C_ALPHA * ((n1 + n2) / (n1 * n2)).sqrt();
                    distributions.push(DistributionTest {
                        scope: scope.clone(),
                        timing: t.name().to_string(),
                        ks_distance: d,
                        critical,
                        n_baseline: x.len(),
                        n_new: y.len(),
                        differ: d > critical,
                    });
                    differ[t] = d > critical;
                }
            }
        }
        for budget in budgets {
            let latency = is_timing(budget);
            let (bh, nh) = (
                base_hists.get(key).map(|h| &h[budget.timing]),
                new_hists.get(key).map(|h| &h[budget.timing]),
            );
            let differ = differ[budget.timing];
            // A scope with no successful request on one side has no latency: no row
            // rather than a 0 µs one (its error rate row shows what happened).
            let empty = |h: Option<&LatencyHistogram>| h.is_none_or(|h| h.is_empty());
            if latency && (empty(bh) || empty(nh)) {
                continue;
            }
            let bv = value_from_hist(bh, b, budget.timing, budget.metric);
            let nv = value_from_hist(nh, n, budget.timing, budget.metric);
            let allowed = match budget.allowance {
                Allowance::Relative(r) => bv * r,
                Allowance::Micros(u) => u,
                Allowance::Points(p) => p,
            };
            let worse = if budget.metric == CompareMetric::Throughput {
                bv - nv
            } else {
                nv - bv
            };
            let movement = if worse > allowed {
                if latency && !differ {
                    Movement::WithinNoise
                } else {
                    Movement::Regression
                }
            } else if -worse > allowed && (!latency || differ) {
                Movement::Improved
            } else {
                Movement::Ok
            };
            rows.push(CompareRow {
                scope: scope.clone(),
                budget: budget.text.clone(),
                baseline: bv,
                new: nv,
                delta: nv - bv,
                delta_rel: (bv != 0.0).then(|| (nv - bv) / bv),
                movement,
            });
        }
    }
    let mut incomparable = incomparable(base, new);
    // A timing one run measured and the other did not (a run written before loadgate
    // measured it), or neither did (first tokens of responses that do not stream), has
    // no row: its budget would pass on silence.
    let served = |s: &RunSummary| s.overall.requests > s.overall.errors;
    for t in Timing::ALL {
        let Some(b) = budgets.iter().find(|b| is_timing(b) && b.timing == t) else {
            continue;
        };
        let (had, has) = (
            base.overall.timing(t).count > 0,
            new.overall.timing(t).count > 0,
        );
        if had != has {
            let side = if had { "the new run" } else { "the baseline" };
            incomparable.push(format!(
                "{side} has no `{}` figures (written by a loadgate that did not measure them, or none was measured), so `{}` cannot be compared",
                t.name(),
                b.text
            ));
        } else if !had && (!t.of_successes() || (served(base) && served(new))) {
            // (A side with no successful request is said above, once.)
            incomparable.push(format!(
                "neither run has `{}` figures (none was measured), so `{}` cannot be compared",
                t.name(),
                b.text
            ));
        }
    }
    let regression =
        incomparable.is_empty() && rows.iter().any(|r| r.movement == Movement::Regression);
    Comparison {
        incomparable,
        baseline: format!("{} ({})", base.scenario, base.started_at),
        new: format!("{} ({})", new.scenario, new.started_at),
        budgets: budgets.iter().map(|b| b.text.clone()).collect(),
        rows,
        distributions,
        only_in_baseline,
        only_in_new,
        regression,
    }
}

/// Whether `b` watches a timing (a percentile, mean or max), not a rate or a share.
fn is_timing(b: &CompareBudget) -> bool {
    !matches!(
        b.metric,
        CompareMetric::Throughput | CompareMetric::ErrorRate
    )
}

#[cfg(test)]
mod tests;
