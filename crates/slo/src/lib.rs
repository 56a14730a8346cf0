//! SLO budgets: the expression language (`p95 < 2s`, `throughput > 50rps`,
//! `error_rate < 1%`), measuring a budget's metric from recorded histograms and counters,
//! and the pass/fail verdict.
//!
//! Pure and I/O-free. Parse errors carry a byte offset into the expression so callers can
//! turn it into file:line:column. Not here: reading scenario files, running load.

pub mod capacity;
pub mod compare;
mod expr;
mod format;
pub mod summary;

pub use expr::{parse, Budget, Metric, Op, ParseError, Unit};
pub use format::format_value;

use loadgate_metrics::{LatencyHistogram, OutcomeCounts};
use serde::{Deserialize, Serialize};

/// What a budget is measured against: one endpoint's (or the whole run's) data over the
/// measured (post-warm-up) phase.
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    /// Latency histogram (corrected in the open model).
    pub latency: &'a LatencyHistogram,
    /// Service-time histogram.
    pub service: &'a LatencyHistogram,
    /// Outcome counters.
    pub outcomes: &'a OutcomeCounts,
    /// Length of the measured phase in seconds.
    pub duration_s: f64,
}

/// The verdict on one budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BudgetResult {
    /// `"global"` or the endpoint name.
    pub scope: String,
    /// The expression as written.
    pub expr: String,
    /// The measured value in the budget's base unit (µs, rps or a 0..1 ratio);
    /// `None` when there was nothing to measure.
    pub measured: Option<f64>,
    /// The measured value for people, in the budget's unit.
    pub measured_text: String,
    /// The threshold in the base unit.
    pub threshold: f64,
    /// Headroom as a fraction of the threshold: positive when passing.
    pub margin: Option<f64>,
    /// Whether the budget holds.
    pub pass: bool,
}

impl<'a> Observed<'a> {
    /// One endpoint's (or all endpoints') recorded data over `duration_s` seconds.
    pub fn of(e: &'a loadgate_metrics::EndpointShard, duration_s: f64) -> Observed<'a> {
        Observed {
            latency: &e.latency,
            service: &e.service,
            outcomes: &e.outcomes,
            duration_s,
        }
    }
}

impl Budget {
    /// Measures this budget's metric. `None` when there is no data (no requests, or no
    /// responses for `check_rate`).
    pub fn measure(&self, o: &Observed<'_>) -> Option<f64> {
        let hist = if self.service { o.service } else { o.latency };
        let total = o.outcomes.total();
        match self.metric {
            Metric::Percentile(p) => (!hist.is_empty()).then(|| hist.quantile(p / 100.0) as f64),
            Metric::Mean => (!hist.is_empty()).then(|| hist.mean()),
            Metric::Min => (!hist.is_empty()).then(|| hist.stats().min as f64),
            Metric::Max => (!hist.is_empty()).then(|| hist.stats().max as f64),
            Metric::Throughput => (o.duration_s > 0.0)
                .then(|| o.outcomes.get(loadgate_metrics::Outcome::Success) as f64 / o.duration_s),
            Metric::ErrorRate => (total > 0).then(|| o.outcomes.errors() as f64 / total as f64),
            Metric::CheckRate => {
                let responses = o.outcomes.responses();
                (responses > 0).then(|| {
                    let failed = responses - o.outcomes.get(loadgate_metrics::Outcome::Success);
                    1.0 - failed as f64 / responses as f64
                })
            }
        }
    }

    /// Evaluates the budget; no data is a failure (a gate must not pass on silence).
    pub fn evaluate(&self, scope: &str, o: &Observed<'_>) -> BudgetResult {
        let measured = self.measure(o);
        let pass = measured.is_some_and(|v| self.op.holds(v, self.threshold));
        let margin = measured.and_then(|v| {
            (self.threshold != 0.0).then(|| match self.op {
                Op::Lt | Op::Le => (self.threshold - v) / self.threshold,
                Op::Gt | Op::Ge => (v - self.threshold) / self.threshold,
            })
        });
        BudgetResult {
            scope: scope.to_string(),
            expr: self.text.clone(),
            measured,
            measured_text: measured
                .map_or_else(|| "no data".to_string(), |v| format_value(v, self.unit)),
            threshold: self.threshold,
            margin,
            pass,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use loadgate_metrics::Outcome;

    fn observed(lat: &LatencyHistogram, outcomes: &OutcomeCounts) -> BudgetResult {
        parse("p95 < 2s").unwrap().evaluate(
            "global",
            &Observed {
                latency: lat,
                service: lat,
                outcomes,
                duration_s: 10.0,
            },
        )
    }

    #[test]
    fn latency_budget_passes_and_fails_on_the_measured_percentile() {
        let mut lat = LatencyHistogram::new(60_000_000);
        let mut outcomes = OutcomeCounts::default();
        for i in 0..100 {
            lat.record(if i < 94 { 100_000 } else { 3_000_000 });
            outcomes.incr(Outcome::Success);
        }
        let r = observed(&lat, &outcomes);
        assert!(!r.pass, "p95 is 3s: {r:?}");
        assert_eq!(r.measured_text, "3.00s");
        lat.reset();
        for _ in 0..100 {
            lat.record(100_000);
        }
        let r = observed(&lat, &outcomes);
        assert!(r.pass);
        assert!(r.margin.unwrap() > 0.9);
    }

    #[test]
    fn no_data_fails() {
        let lat = LatencyHistogram::new(60_000_000);
        let r = observed(&lat, &OutcomeCounts::default());
        assert!(!r.pass);
        assert_eq!(r.measured_text, "no data");
    }

    #[test]
    fn rates_and_ratios() {
        let lat = LatencyHistogram::new(60_000_000);
        let mut outcomes = OutcomeCounts::default();
        for _ in 0..990 {
            outcomes.incr(Outcome::Success);
        }
        for _ in 0..10 {
            outcomes.incr(Outcome::Http5xx);
        }
        let o = Observed {
            latency: &lat,
            service: &lat,
            outcomes: &outcomes,
            duration_s: 10.0,
        };
        assert!(parse("throughput > 50rps").unwrap().evaluate("g", &o).pass);
        assert!(!parse("throughput > 100rps").unwrap().evaluate("g", &o).pass);
        // exactly 1% errors: `< 1%` fails, `<= 1%` holds
        assert!(!parse("error_rate < 1%").unwrap().evaluate("g", &o).pass);
        assert!(parse("error_rate <= 1%").unwrap().evaluate("g", &o).pass);
        assert!(parse("check_rate > 98%").unwrap().evaluate("g", &o).pass);
    }
}
