//! SLO budgets: the expression language (`p95 < 2s`, `throughput > 50rps`,
//! `error_rate < 1%`, `p95 < 2s over 30s`), measuring a budget's metric from recorded
//! histograms and counters, windowed budgets over per-second data, the live watch that
//! judges them while a run goes and decides `abort_on_fail` ([`watch`]), and the verdict.
//!
//! Pure and I/O-free. Parse errors carry a byte offset into the expression so callers can
//! turn it into file:line:column. Not here: reading scenario files, running load.
//!
//! # Which requests each metric covers
//!
//! Latency histograms hold **successful** requests only (the expected status, every
//! check passed). A latency budget still counts every request:
//! - `pN < T` holds when at least N% of *all* completed requests succeeded within T. A
//!   failed request (refused, reset, timed out, malformed, an unexpected status, a failed
//!   check) ranks above every success, so when more than (100 − N)% of the requests
//!   failed, the percentile is not reached and the budget fails.
//! - `min`, `mean` and `max` describe the successful requests, and fail when none
//!   succeeded.
//! - A failed request never helps a latency budget hold, in either direction: `p50 > 1ms`
//!   is not met by requests that failed.
//! - `throughput` counts successful requests per second of the measured phase;
//!   `error_rate` is the share of completed requests that did not succeed; `check_rate`
//!   the share of received responses that passed every check.

pub mod capacity;
pub mod compare;
mod expr;
mod format;
pub mod judge;
pub mod summary;
pub mod watch;
pub mod window;

pub use expr::{parse, Budget, Metric, Op, ParseError, Unit};
pub use format::format_value;

use loadgate_metrics::{nearest_rank, LatencyHistogram, Outcome, OutcomeCounts, Timing, Timings};
use serde::{Deserialize, Serialize};

use crate::window::WindowSummary;

/// What a budget is measured against: one endpoint's (or the whole run's) data over the
/// measured (post-warm-up) phase, or over one window of it.
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    /// A histogram per timing (see [`loadgate_metrics::Timing`]).
    pub timings: &'a Timings<LatencyHistogram>,
    /// Outcome counters of every completed request.
    pub outcomes: &'a OutcomeCounts,
    /// Length of the measured phase (or window) in seconds.
    pub duration_s: f64,
    /// Requests that succeeded within every per-request limit (goodput).
    pub good: u64,
}

impl<'a> Observed<'a> {
    /// One endpoint's (or all endpoints') recorded data over `duration_s` seconds.
    pub fn of(e: &'a loadgate_metrics::EndpointShard, duration_s: f64) -> Observed<'a> {
        Observed {
            timings: &e.timings,
            outcomes: &e.outcomes,
            duration_s,
            good: e.good,
        }
    }
}

/// What measuring a budget found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Measure {
    /// A value in the budget's base unit (µs, rps or a 0..1 ratio).
    Value(f64),
    /// Too many requests failed for the metric to be reached: a percentile whose rank
    /// falls among the failed requests, a mean, minimum or maximum with no success. It
    /// meets no latency budget, upper or lower.
    Failed {
        /// Requests that did not succeed.
        failed: u64,
        /// Every completed request.
        total: u64,
    },
    /// Nothing to measure: no request completed (or no response arrived, for
    /// `check_rate`), or no time passed.
    NoData,
}

/// The verdict on one budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BudgetResult {
    /// `"global"` or the endpoint name.
    pub scope: String,
    /// The expression as written.
    pub expr: String,
    /// The measured value in the budget's base unit (µs, rps or a 0..1 ratio); `None`
    /// when there was nothing to measure or too many requests failed to reach it
    /// (`measured_text` says which). For a windowed budget, the worst window's value.
    pub measured: Option<f64>,
    /// The measured value for people, in the budget's unit.
    pub measured_text: String,
    /// The threshold in the base unit.
    pub threshold: f64,
    /// Headroom as a fraction of the threshold: positive when passing.
    pub margin: Option<f64>,
    /// Whether the budget holds.
    pub pass: bool,
    /// Whether the result could not have been changed by the generator's own delay in
    /// sending (open model): false for a latency budget that fails on latency from the
    /// intended send time but holds on the same requests' service time, and for a
    /// throughput budget that only the unsent part of the schedule could have met. A
    /// non-robust result makes the run invalid.
    #[serde(default = "yes")]
    pub robust: bool,
    /// Nothing was measured for it (no request completed in its scope), so it fails;
    /// in an interrupted run it says nothing either way.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_data: bool,
    /// Whether loadgate added this budget itself (see `judge::IMPLICIT_ERROR_RATE`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub implicit: bool,
    /// For a budget with a window (`over 30s`): how many windows were judged, how many
    /// broke the budget, and which was the worst.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<WindowSummary>,
}

fn yes() -> bool {
    true
}

impl Budget {
    /// Measures this budget's metric over `o` (see the crate documentation for which
    /// requests each metric covers). A window is not applied here: `o` is what to
    /// measure.
    pub fn measure(&self, o: &Observed<'_>) -> Measure {
        let hist = &o.timings[self.timing];
        // A timing of successful requests ranks the failed ones above any threshold; a
        // timing of every send or connection ranks what it holds.
        let (total, failed) = if self.timing == Timing::Tpot {
            // Streams of one token have no time per token: ranked are the streams
            // that have one and the failed requests.
            (hist.len() + o.outcomes.errors(), o.outcomes.errors())
        } else if self.timing.of_successes() {
            (o.outcomes.total(), o.outcomes.errors())
        } else {
            (hist.len(), 0)
        };
        let ok = total - failed;
        // A timing that recorded nothing for requests that succeeded (first token of
        // responses that do not stream) has no data: its successes are not failures.
        let unrecorded = self.timing.of_successes() && ok > 0 && hist.is_empty();
        let latency = |f: &dyn Fn() -> f64| {
            if total == 0 || unrecorded {
                Measure::NoData
            } else if ok == 0 || hist.is_empty() {
                Measure::Failed { failed, total }
            } else {
                Measure::Value(f())
            }
        };
        match self.metric {
            Metric::Percentile(p) => {
                if total == 0 || unrecorded {
                    return Measure::NoData;
                }
                let rank = nearest_rank(p / 100.0, total);
                if rank > ok || hist.is_empty() {
                    Measure::Failed { failed, total }
                } else {
                    Measure::Value(hist.value_at_rank(rank) as f64)
                }
            }
            Metric::Mean => latency(&|| hist.mean()),
            Metric::Min => latency(&|| hist.inner().min() as f64),
            Metric::Max => latency(&|| hist.max() as f64),
            Metric::Throughput if o.duration_s > 0.0 => {
                Measure::Value(o.outcomes.get(Outcome::Success) as f64 / o.duration_s)
            }
            Metric::ErrorRate if total > 0 => Measure::Value(failed as f64 / total as f64),
            Metric::Goodput if o.duration_s > 0.0 => Measure::Value(o.good as f64 / o.duration_s),
            Metric::Attainment if total > 0 => Measure::Value(o.good as f64 / total as f64),
            Metric::CheckRate => {
                let responses = o.outcomes.responses();
                if responses == 0 {
                    return Measure::NoData;
                }
                let failed = responses - o.outcomes.get(Outcome::Success);
                Measure::Value(1.0 - failed as f64 / responses as f64)
            }
            Metric::Throughput | Metric::ErrorRate | Metric::Goodput | Metric::Attainment => {
                Measure::NoData
            }
        }
    }

    /// Whether `m` meets this budget; no data is a failure (a gate must not pass on
    /// silence), and so is a metric that failed requests kept from being reached.
    pub fn holds(&self, m: Measure) -> bool {
        match m {
            Measure::Value(v) => self.op.holds(v, self.threshold),
            Measure::Failed { .. } | Measure::NoData => false,
        }
    }

    /// Evaluates the budget over `o` (the whole measured phase).
    pub fn evaluate(&self, scope: &str, o: &Observed<'_>) -> BudgetResult {
        self.result(scope, self.measure(o))
    }

    /// The result of this budget for a measurement `m`.
    pub fn result(&self, scope: &str, m: Measure) -> BudgetResult {
        // As written: a speed budget's figures in tokens per second, its comparison
        // the way round it was written.
        let measured = match m {
            Measure::Value(v) => Some(self.shown(v)),
            _ => None,
        };
        let threshold = self.speed.unwrap_or(self.threshold);
        let upper = matches!(self.op, Op::Lt | Op::Le) != self.speed.is_some();
        let margin = measured.and_then(|v| {
            (threshold != 0.0).then(|| match upper {
                true => (threshold - v) / threshold,
                false => (v - threshold) / threshold,
            })
        });
        BudgetResult {
            scope: scope.to_string(),
            expr: self.text.clone(),
            measured,
            measured_text: self.describe(m),
            threshold,
            margin,
            pass: self.holds(m),
            no_data: m == Measure::NoData,
            robust: true,
            implicit: false,
            window: None,
        }
    }

    /// A measurement in words, in this budget's unit.
    pub fn describe(&self, m: Measure) -> String {
        match m {
            Measure::Value(v) if self.speed.is_some() => format!("{:.1} tokens/s", self.shown(v)),
            Measure::Value(v) => format_value(v, self.unit),
            Measure::NoData => match (self.unit, self.timing) {
                (Unit::Duration, Timing::Connect) => {
                    "no data: no connection was opened in the measured phase (every request reused one)".to_string()
                }
                (Unit::Duration, Timing::SendLag) => "no data: nothing was sent".to_string(),
                (Unit::Duration, Timing::Ttft | Timing::TtftService) => {
                    "no data: no response had a first token (only streamed responses do)"
                        .to_string()
                }
                (Unit::Duration, Timing::Itl) => {
                    "no data: no streamed response had two content events".to_string()
                }
                (Unit::Duration, Timing::Tpot) => {
                    "no data: no streamed response had two tokens".to_string()
                }
                _ => "no data".to_string(),
            },
            Measure::Failed { failed, total } => match self.metric {
                Metric::Percentile(_) => format!(
                    "not reached: {:.2}% of requests failed",
                    failed as f64 * 100.0 / total.max(1) as f64
                ),
                _ => "no request succeeded".to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Data {
        timings: Timings<LatencyHistogram>,
        outcomes: OutcomeCounts,
        /// Successes within their per-request limits.
        good: u64,
    }

    impl Data {
        /// `ok` successes at `us` each and `failed` timeouts.
        fn new(ok: &[u64], failed: u64) -> Data {
            let mut lat = LatencyHistogram::new(60_000_000);
            let mut outcomes = OutcomeCounts::default();
            for &us in ok {
                lat.record(us);
                outcomes.incr(Outcome::Success);
            }
            for _ in 0..failed {
                outcomes.incr(Outcome::Timeout);
            }
            // Every timing holds the same values here.
            let timings = Timings::from_fn(|_| lat.clone());
            let good = ok.len() as u64;
            Data {
                timings,
                outcomes,
                good,
            }
        }

        fn check(&self, expr: &str) -> BudgetResult {
            parse(expr).unwrap().evaluate(
                "global",
                &Observed {
                    timings: &self.timings,
                    outcomes: &self.outcomes,
                    duration_s: 10.0,
                    good: self.good,
                },
            )
        }
    }

    /// A budget on a timing of successful requests ranks the failed requests above its
    /// threshold, as latency budgets do; one on send lag or connect time ranks what it
    /// holds (every send, every new connection), whatever failed.
    #[test]
    fn each_timing_is_judged_on_its_own_population() {
        use loadgate_metrics::{Sample, Shard};
        let mut shard = Shard::new(1, 60_000_000);
        for i in 0..100u64 {
            let outcome = if i < 10 {
                Outcome::Timeout
            } else {
                Outcome::Success
            };
            shard.record_send(0, Some(if i < 2 { 50_000 } else { 100 }), false);
            shard.record(&Sample {
                ttfb_us: Some(20_000),
                service_us: 99_900,
                connect_us: (i < 4).then_some(if i == 0 { 90_000 } else { 1_000 }),
                ..Sample::new(0, outcome, 100_000)
            });
        }
        let e = &shard.endpoints()[0];
        let o = Observed::of(e, 10.0);
        let check = |expr: &str| parse(expr).unwrap().evaluate("global", &o);
        for (expr, pass, measured) in [
            // 10% failed: p95 of successes-and-failures is not reached.
            ("ttfb_p95 < 1s", false, None),
            ("ttfb_p50 < 30ms", true, Some(20_000.0)),
            ("ttfb_service_p50 < 30ms", true, Some(19_900.0)),
            ("p50 < 30ms", false, Some(100_000.0)),
            // Sends: 2 of 100 lagged 50 ms; every send counts, failed or not.
            ("send_lag_p95 < 1ms", true, Some(100.0)),
            ("send_lag_p99 < 1ms", false, Some(50_000.0)),
            // Four new connections, one slow: its own population of four.
            ("connect_p50 < 2ms", true, Some(1_000.0)),
            ("connect_max < 50ms", false, Some(90_000.0)),
        ] {
            let r = check(expr);
            assert_eq!(r.pass, pass, "{expr}: {r:?}");
            if let Some(m) = measured {
                let got = r.measured.unwrap_or_else(|| panic!("{expr}: {r:?}"));
                assert!((got - m).abs() <= m * 0.001 + 1.0, "{expr}: {got} vs {m}");
            } else {
                assert_eq!(r.measured, None, "{expr}");
            }
        }
        // Nothing recorded for a timing is no data, never a pass.
        let empty = Shard::new(1, 60_000_000);
        let r = parse("connect_p99 < 1s")
            .unwrap()
            .evaluate("global", &Observed::of(&empty.endpoints()[0], 10.0));
        assert!(!r.pass && r.no_data, "{r:?}");
    }

    /// A stream's speed is measured per stream of two tokens or more, `(end - first
    /// token) / (tokens - 1)` inverted; a stream of one token has none and is not
    /// ranked, a failed request is ranked the slowest, and `tokens_per_s_pN` is the
    /// speed `100 - N`% of them reached or beat.
    #[test]
    fn a_speed_budget_ranks_the_streams_that_have_a_speed_and_the_failures() {
        use loadgate_metrics::{Sample, Shard, StreamSample};
        let mut shard = Shard::new(1, 60_000_000);
        let stream = |ttft_us, tokens| StreamSample {
            ttft_us: Some(ttft_us),
            events: tokens,
            tokens,
            ..StreamSample::default()
        };
        // Six streams of 11 tokens: first token at 100 ms, the end 100 ms + 10 gaps.
        for gap_ms in [10, 20, 25, 40, 50, 100] {
            shard.record(&Sample {
                stream: Some(stream(100_000, 11)),
                ..Sample::new(0, Outcome::Success, 100_000 + 10 * gap_ms * 1000)
            });
        }
        // Three streams of one token: no speed, not ranked.
        for _ in 0..3 {
            shard.record(&Sample {
                stream: Some(stream(100_000, 1)),
                ..Sample::new(0, Outcome::Success, 100_000)
            });
        }
        let e = &shard.endpoints()[0];
        let o = Observed::of(e, 10.0);
        let speed = |expr: &str| parse(expr).unwrap().evaluate("global", &o);
        // Speeds 100, 50, 40, 25, 20, 10 tokens/s: the median of six by nearest rank
        // is the third slowest time per token, 25 ms (40 tokens/s).
        let r = speed("tokens_per_s_p50 > 30");
        assert!(r.pass, "{r:?}");
        assert_eq!(r.measured_text, "40.0 tokens/s");
        assert!(!speed("tokens_per_s_p50 > 45").pass);
        // (Histograms keep three significant digits.)
        let near = |got: f64, want: f64| (got - want).abs() <= want * 0.002;
        assert!(near(speed("tokens_per_s_min > 5").measured.unwrap(), 10.0));
        assert!(near(speed("tokens_per_s_max > 5").measured.unwrap(), 100.0));
        let s = crate::summary::TokenSpeeds::of(&e.timings[Timing::Tpot]).unwrap();
        assert!(
            near(s.p1, 10.0) && near(s.p50, 40.0) && near(s.p99, 100.0),
            "{s:?}"
        );
        // Two cut streams are ranked slower than any: of eight, the median (rank 4 of
        // the times per token) is now 40 ms, 25 tokens/s.
        let mut cut = shard.clone();
        for _ in 0..2 {
            cut.record(&Sample::new(0, Outcome::StreamTruncated, 500_000));
        }
        let e = &cut.endpoints()[0];
        let r = parse("tokens_per_s_p50 > 30")
            .unwrap()
            .evaluate("global", &Observed::of(e, 10.0));
        assert!(!r.pass && near(r.measured.unwrap(), 25.0), "{r:?}");
        // Streams of one token only: no data, never a pass.
        let mut one = Shard::new(1, 60_000_000);
        one.record(&Sample {
            stream: Some(stream(100_000, 1)),
            ..Sample::new(0, Outcome::Success, 100_000)
        });
        let r = parse("tokens_per_s_p50 > 1")
            .unwrap()
            .evaluate("global", &Observed::of(&one.endpoints()[0], 10.0));
        assert!(!r.pass && r.no_data, "{r:?}");
    }

    #[test]
    fn latency_budget_passes_and_fails_on_the_measured_percentile() {
        let mut ok = vec![100_000; 94];
        ok.extend([3_000_000; 6]);
        let r = Data::new(&ok, 0).check("p95 < 2s");
        assert!(!r.pass, "p95 is 3s: {r:?}");
        assert_eq!(r.measured_text, "3.00s");
        let r = Data::new(&[100_000; 100], 0).check("p95 < 2s");
        assert!(r.pass);
        assert!(r.margin.unwrap() > 0.9);
    }

    #[test]
    fn no_data_fails() {
        let r = Data::new(&[], 0).check("p95 < 2s");
        assert!(!r.pass);
        assert_eq!(r.measured_text, "no data");
        assert!(!Data::new(&[], 0).check("error_rate < 1%").pass);
    }

    /// Regression (issue 17): a dead target passed `p95 < 500ms` because its refusals
    /// were timed in microseconds; a hanging one passed because its timeouts were.
    #[test]
    fn failed_requests_rank_above_every_threshold() {
        let dead = Data::new(&[], 250);
        for expr in [
            "p95 < 500ms",
            "p50 < 1h",
            "mean < 1s",
            "min < 1s",
            "max < 1h",
            "p50 > 1us",
            "max > 1us",
        ] {
            let r = dead.check(expr);
            assert!(!r.pass, "{expr}: {r:?}");
            assert_eq!(r.measured, None);
        }
        assert_eq!(
            dead.check("p95 < 500ms").measured_text,
            "not reached: 100.00% of requests failed"
        );
        assert_eq!(
            dead.check("mean < 1s").measured_text,
            "no request succeeded"
        );
        // Half timed out, half fast: the 95th percentile lies among the failures.
        let half = Data::new(&[1_000; 50], 50);
        assert!(!half.check("p95 < 2s").pass);
        assert!(half.check("p50 < 2s").pass, "the 50th is the last success");
        assert!(!half.check("p51 < 2s").pass);
        // 3 failed of 100: p95 is the 95th of all, the 95th success here.
        let mut ok: Vec<u64> = (1..=97).map(|i| i * 1_000).collect();
        ok.sort();
        let few = Data::new(&ok, 3);
        let r = few.check("p95 < 2s");
        assert!(r.pass);
        // The 95th success, as its bucket's highest value (3 significant digits).
        assert!((95_000.0..95_100.0).contains(&r.measured.unwrap()), "{r:?}");
        assert!(!few.check("p97.1 < 2s").pass, "rank 98 > 97 successes");
        assert!(few.check("mean < 1s").pass, "mean is over successes");
        assert!(few.check("max < 1s").pass, "max is the slowest success");
        // A failed request helps no lower bound either.
        assert!(!few.check("p99 > 1ms").pass);
    }

    #[test]
    fn rates_and_ratios() {
        let mut d = Data::new(&[1_000; 990], 0);
        for _ in 0..10 {
            d.outcomes.incr(Outcome::Http5xx);
        }
        assert!(d.check("throughput > 50rps").pass);
        assert!(!d.check("throughput > 100rps").pass);
        // exactly 1% errors: `< 1%` fails, `<= 1%` holds
        assert!(!d.check("error_rate < 1%").pass);
        assert!(d.check("error_rate <= 1%").pass);
        assert!(d.check("check_rate > 98%").pass);
    }

    /// Goodput counts the successes within their per-request limits, per second of the
    /// measured phase; attainment their share of every completed request. A success
    /// over its limits is not good; nothing completed is no data.
    #[test]
    fn goodput_and_attainment_count_good_requests() {
        let mut d = Data::new(&[1_000; 990], 10);
        d.good = 900;
        for (expr, pass, measured) in [
            ("goodput > 89rps", true, 90.0),
            ("goodput > 90rps", false, 90.0),
            ("attainment >= 90%", true, 0.9),
            ("attainment > 90%", false, 0.9),
        ] {
            let r = d.check(expr);
            assert_eq!((r.pass, r.measured), (pass, Some(measured)), "{expr}");
        }
        let none = Data::new(&[], 0);
        assert!(none.check("attainment > 0%").no_data);
        assert!(parse("attainment > 99%").is_ok());
        assert!(parse("goodput > 5%").is_err(), "goodput is a rate");
    }

    /// Goodput and attainment take a window like every other budget (they were refused
    /// one before), and a mistake in it is pointed at as for any window.
    #[test]
    fn goodput_and_attainment_take_a_window() {
        for (input, metric, window) in [
            ("goodput > 40rps over 30s", Metric::Goodput, 30),
            ("goodput >= 2.5 rps over 1m", Metric::Goodput, 60),
            ("attainment > 99% over 10s", Metric::Attainment, 10),
            ("attainment>=90% over 1h", Metric::Attainment, 3600),
        ] {
            let b = parse(input).unwrap_or_else(|e| panic!("{input}: {e:?}"));
            assert_eq!((b.metric, b.window_s), (metric, Some(window)), "{input}");
        }
        assert_ne!(
            parse("goodput > 40rps over 30s").unwrap().key(),
            parse("goodput > 40rps").unwrap().key(),
            "a windowed goodput budget does not replace the whole-run one"
        );
        for (input, offset, message) in [
            ("goodput > 40rps over 30", 23, "missing unit"),
            ("attainment > 99% over 0.5s", 22, "whole number of seconds"),
            ("goodput > 40rps over 30ms", 23, "not a window unit"),
            ("attainment > 99% over", 21, "expected a window length"),
            ("goodput > 40% over 30s", 12, "does not fit"),
        ] {
            let e = parse(input).expect_err(input);
            assert_eq!(e.offset, offset, "{input}: {e:?}");
            assert!(e.message.contains(message), "{input}: {e:?}");
        }
    }
}
