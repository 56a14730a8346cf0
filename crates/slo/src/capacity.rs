//! Capacity search: the highest open-model arrival rate at which every budget holds.
//!
//! The rate climbs a ladder (`start`, then by a fixed step or a factor, up to a maximum)
//! until a step breaches a budget or the generator cannot hold the rate; then the
//! interval between the last passing and the first failing rate is bisected a bounded
//! number of times. Pure: the caller runs each step and judges it ([`StepResult`]); this
//! module decides which rate comes next and what the search found ([`CapacityReport`],
//! `capacity.json`).

use loadgate_metrics::EndpointShard;
use serde::{Deserialize, Serialize};

use crate::judge::Judgement;
use crate::summary::{EndpointSummary, Verdict};

/// Version of the `capacity.json` layout.
pub const CAPACITY_SCHEMA_VERSION: u32 = 1;

/// How one step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepVerdict {
    /// A valid step on which every budget held.
    Pass,
    /// A valid step on which at least one budget was breached: a limit of the target.
    Breach,
    /// loadgate could not send at this rate (late, dropped or missing sends): a limit of
    /// the generator, which says nothing about the target.
    GeneratorLimit,
}

/// One step of the search, as measured after its settle time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepResult {
    /// Offered arrival rate.
    pub rate_rps: f64,
    /// Rate the generator actually sent at.
    pub achieved_rps: f64,
    /// Rate of successful requests: the sent rate times the share that succeeded.
    pub success_rps: f64,
    /// Latency percentiles in milliseconds (from intended send time).
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// Streams: the 95th percentile of time to first token, ms (from intended send
    /// time); absent when no stream succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_p95_ms: Option<f64>,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Share of completed requests that were not successes (0..1).
    pub error_rate: f64,
    /// The verdict.
    pub verdict: StepVerdict,
    /// Budgets breached, as `scope: expr (measured)`.
    pub breached: Vec<String>,
    /// Why the generator could not hold the rate.
    pub invalid_reasons: Vec<String>,
    /// Whether this step bisected between a passing and a failing rate.
    pub refinement: bool,
}

impl StepResult {
    /// The step at `rate` as judged (`j`), with its figures taken from `all` (the whole
    /// step's measured data, `measured_s` long): a limit of the generator when the step
    /// is invalid, else a breach when a budget failed.
    pub fn judged(
        rate: f64,
        refinement: bool,
        j: Judgement,
        all: &EndpointShard,
        measured_s: f64,
    ) -> StepResult {
        let e = EndpointSummary::of("all", all, measured_s);
        let verdict = if !j.invalid_reasons.is_empty() {
            StepVerdict::GeneratorLimit
        } else if j.slo.iter().all(|b| b.pass) {
            StepVerdict::Pass
        } else {
            StepVerdict::Breach
        };
        let ms = |q: f64| all.latency().quantile(q) as f64 / 1000.0;
        let error_rate = if e.requests > 0 {
            e.errors as f64 / e.requests as f64
        } else {
            0.0
        };
        StepResult {
            rate_rps: rate,
            achieved_rps: j.rate.as_ref().map_or(0.0, |r| r.achieved_rps),
            // Requests due in the measured phase that succeeded, per second (a backlog
            // left by the settle phase counts in the settle phase).
            success_rps: e.success_rps,
            p50_ms: ms(0.50),
            p95_ms: ms(0.95),
            ttft_p95_ms: {
                let h = &all.timings[loadgate_metrics::Timing::Ttft];
                (!h.is_empty()).then(|| h.quantile(0.95) as f64 / 1000.0)
            },
            p99_ms: ms(0.99),
            error_rate,
            verdict,
            breached: j
                .slo
                .iter()
                .filter(|b| !b.pass)
                .map(|b| format!("{}: {} (measured {})", b.scope, b.expr, b.measured_text))
                .collect(),
            invalid_reasons: j.invalid_reasons,
            refinement,
        }
    }
}

/// Where the search stopped climbing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Limit {
    /// The lowest rate that failed.
    pub rate_rps: f64,
    /// `breach` (the target) or `generator_limit` (loadgate).
    pub kind: StepVerdict,
    /// What broke first, at that rate: budgets, or the generator's reasons.
    pub what: Vec<String>,
}

/// The search as run, with what it found.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Search {
    /// Every step, in the order run.
    pub steps: Vec<StepResult>,
    /// Highest rate that passed.
    pub sustainable_rps: Option<f64>,
    /// The lowest failing rate and why, if any step failed.
    pub limit: Option<Limit>,
}

/// Runs the search: `ladder` gives the climbing rates in order (ending at the maximum);
/// `refine` bounds the bisection steps; `probe(rate, refinement)` runs and judges one
/// step. A probe error (an interruption, say) ends the search with what was measured.
pub fn search<E>(
    ladder: impl IntoIterator<Item = f64>,
    refine: u32,
    mut probe: impl FnMut(f64, bool) -> Result<StepResult, E>,
) -> (Search, Option<E>) {
    let mut s = Search::default();
    let mut lo: Option<f64> = None;
    let mut hi: Option<StepResult> = None;
    for rate in ladder {
        match probe(rate, false) {
            Ok(step) => {
                let pass = step.verdict == StepVerdict::Pass;
                s.steps.push(step.clone());
                if pass {
                    lo = Some(rate);
                } else {
                    hi = Some(step);
                    break;
                }
            }
            Err(e) => return (finish(s, lo, hi), Some(e)),
        }
    }
    if let Some(mut failed) = hi.take() {
        let mut floor = lo.unwrap_or(0.0);
        for _ in 0..refine {
            let Some(mid) = midpoint(floor, failed.rate_rps) else {
                break;
            };
            match probe(mid, true) {
                Ok(step) => {
                    s.steps.push(step.clone());
                    if step.verdict == StepVerdict::Pass {
                        floor = mid;
                        lo = Some(mid);
                    } else {
                        failed = step;
                    }
                }
                Err(e) => return (finish(s, lo, Some(failed)), Some(e)),
            }
        }
        hi = Some(failed);
    }
    (finish(s, lo, hi), None)
}

fn finish(mut s: Search, lo: Option<f64>, hi: Option<StepResult>) -> Search {
    s.sustainable_rps = lo;
    s.limit = hi.map(|h| Limit {
        rate_rps: h.rate_rps,
        kind: h.verdict,
        what: if h.verdict == StepVerdict::GeneratorLimit {
            h.invalid_reasons
        } else {
            h.breached
        },
    });
    s
}

/// The rate halfway between `lo` and `hi`, in whole requests per second when the gap
/// allows; `None` when they are too close to tell apart (under 1 rps, or 1% of `hi`).
fn midpoint(lo: f64, hi: f64) -> Option<f64> {
    let gap = hi - lo;
    if gap < 1.0 || gap < hi * 0.01 {
        return None;
    }
    let mid = lo + gap / 2.0;
    let mid = if gap >= 2.0 { mid.round() } else { mid };
    (mid > lo && mid < hi).then_some(mid)
}

/// The rates a plan climbs: `start`, then `next(rate)` while at most `max` (the maximum
/// itself is always tried last).
pub fn ladder(start: f64, max: f64, next: impl Fn(f64) -> f64) -> Vec<f64> {
    let mut rates = Vec::new();
    let mut r = start;
    while r < max && rates.len() < 1000 {
        rates.push(r);
        let n = next(r);
        // A step that does not raise the rate (or is NaN) would never end.
        if n.partial_cmp(&r) != Some(std::cmp::Ordering::Greater) {
            break;
        }
        r = n;
    }
    rates.push(max);
    rates
}

/// The verdict of a search: interrupted when it was; pass when the sustainable rate
/// reaches `require` (or, with no requirement, when any rate passed); invalid when the
/// generator gave out before the requirement could be shown either way; fail otherwise.
pub fn verdict(s: &Search, require: Option<f64>, interrupted: bool) -> Verdict {
    if interrupted {
        return Verdict::Interrupted;
    }
    let sustained = s.sustainable_rps.unwrap_or(0.0);
    let need = require.unwrap_or(f64::MIN_POSITIVE);
    if s.sustainable_rps.is_some() && sustained >= need {
        return Verdict::Pass;
    }
    match &s.limit {
        Some(l) if l.kind == StepVerdict::GeneratorLimit => Verdict::Invalid,
        _ => Verdict::Fail,
    }
}

impl Search {
    /// Why the search stopped, as `capacity.json`'s `stop` says it: `interrupted`,
    /// `generator limit`, `budget breached` or `max_rps reached`.
    pub fn stop_text(&self, interrupted: bool) -> &'static str {
        if interrupted {
            return "interrupted";
        }
        match &self.limit {
            Some(l) if l.kind == StepVerdict::GeneratorLimit => "generator limit",
            Some(_) => "budget breached",
            None => "max_rps reached",
        }
    }
}

/// `[capacity]` as it was used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanSummary {
    /// First rate.
    pub start_rps: f64,
    /// `+50 rps` or `x2`.
    pub step: String,
    /// Highest rate.
    pub max_rps: f64,
    /// Measured seconds per step.
    pub step_duration_s: f64,
    /// Settle seconds before each step's measurement.
    pub settle_s: f64,
    /// Most bisection steps.
    pub refine: u32,
}

/// Everything `capacity.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapacityReport {
    /// [`CAPACITY_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Version of loadgate that ran.
    pub loadgate_version: String,
    /// Scenario name.
    pub scenario: String,
    /// Scenario file as given.
    pub scenario_file: String,
    /// Target base URL without credentials, or `embedded`.
    pub target: String,
    /// RFC 3339 UTC start.
    pub started_at: String,
    /// RFC 3339 UTC end.
    pub ended_at: String,
    /// The plan.
    pub plan: PlanSummary,
    /// The budgets each step was judged against, as `scope: expr`.
    pub budgets: Vec<String>,
    /// Every step, in the order run.
    pub steps: Vec<StepResult>,
    /// Highest offered rate at which every budget held on a valid step.
    pub sustainable_rps: Option<f64>,
    /// The lowest failing rate and what broke first there.
    pub limit: Option<Limit>,
    /// `--require-rps`, if given.
    pub require_rps: Option<f64>,
    /// `pass`, `fail` or `invalid` (see [`verdict`]).
    pub verdict: Verdict,
    /// Why the search ended: `budget breached`, `generator limit`, `max_rps reached`
    /// or `interrupted`.
    pub stop: String,
}

impl CapacityReport {
    /// One sentence for people.
    pub fn headline(&self) -> String {
        let sustained = match self.sustainable_rps {
            Some(r) => format!("sustainable: {} rps with every budget met", num(r)),
            None => "no rate tried met every budget".to_string(),
        };
        let limit = match &self.limit {
            Some(l) if l.kind == StepVerdict::Breach => format!(
                "; first breach at {} rps: {}",
                num(l.rate_rps),
                l.what.join(", ")
            ),
            Some(l) => format!(
                "; loadgate itself could not hold {} rps (a generator limit, not the target's)",
                num(l.rate_rps)
            ),
            None => format!("; no budget broke up to max_rps {}", num(self.plan.max_rps)),
        };
        format!("{sustained}{limit}")
    }

    /// The rows of the step table sorted by rate (refinements fall into place).
    pub fn steps_by_rate(&self) -> Vec<&StepResult> {
        let mut v: Vec<&StepResult> = self.steps.iter().collect();
        v.sort_by(|a, b| a.rate_rps.total_cmp(&b.rate_rps));
        v
    }
}

/// A rate without spurious decimals.
pub fn num(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A target that holds every budget up to `knee` rps and breaches above it; the
    /// generator gives out above `gen`.
    fn probe(knee: f64, gen: f64) -> impl FnMut(f64, bool) -> Result<StepResult, ()> {
        move |rate, refinement| {
            let verdict = if rate > gen {
                StepVerdict::GeneratorLimit
            } else if rate > knee {
                StepVerdict::Breach
            } else {
                StepVerdict::Pass
            };
            Ok(StepResult {
                rate_rps: rate,
                achieved_rps: rate.min(gen),
                success_rps: rate.min(knee),
                p50_ms: 1.0,
                p95_ms: if rate > knee { 5000.0 } else { 10.0 },
                ttft_p95_ms: None,
                p99_ms: 20.0,
                error_rate: 0.0,
                verdict,
                breached: if verdict == StepVerdict::Breach {
                    vec!["global: p95 < 2s".into()]
                } else {
                    vec![]
                },
                invalid_reasons: if verdict == StepVerdict::GeneratorLimit {
                    vec!["late".into()]
                } else {
                    vec![]
                },
                refinement,
            })
        }
    }

    #[test]
    fn the_ladder_climbs_by_step_or_factor_and_ends_at_the_maximum() {
        assert_eq!(
            ladder(50.0, 200.0, |r| r + 50.0),
            vec![50.0, 100.0, 150.0, 200.0]
        );
        assert_eq!(
            ladder(10.0, 100.0, |r| r * 2.0),
            vec![10.0, 20.0, 40.0, 80.0, 100.0]
        );
        assert_eq!(ladder(100.0, 100.0, |r| r * 2.0), vec![100.0]);
    }

    #[test]
    fn the_search_stops_at_the_first_breach_and_bisects_towards_the_knee() {
        let (s, err) = search(ladder(100.0, 1000.0, |r| r + 100.0), 3, probe(333.0, 1e9));
        assert!(err.is_none());
        // 100, 200, 300 pass, 400 breaches; then 350 (breach), 325 (pass), 338 (breach).
        let rates: Vec<f64> = s.steps.iter().map(|x| x.rate_rps).collect();
        assert_eq!(rates, vec![100.0, 200.0, 300.0, 400.0, 350.0, 325.0, 338.0]);
        assert_eq!(s.sustainable_rps, Some(325.0));
        let l = s.limit.as_ref().unwrap();
        assert_eq!((l.rate_rps, l.kind), (338.0, StepVerdict::Breach));
        assert_eq!(l.what, vec!["global: p95 < 2s".to_string()]);
        assert!(s.steps[4..].iter().all(|x| x.refinement));
        assert_eq!(verdict(&s, Some(300.0), false), Verdict::Pass);
        assert_eq!(verdict(&s, Some(330.0), false), Verdict::Fail);
    }

    #[test]
    fn a_generator_limit_is_not_a_target_limit() {
        let (s, _) = search(ladder(100.0, 1000.0, |r| r * 2.0), 0, probe(1e9, 250.0));
        let l = s.limit.as_ref().unwrap();
        assert_eq!((l.rate_rps, l.kind), (400.0, StepVerdict::GeneratorLimit));
        assert_eq!(s.sustainable_rps, Some(200.0));
        // Asked for more than the generator could show: unknown, so invalid, never fail.
        assert_eq!(verdict(&s, Some(300.0), false), Verdict::Invalid);
        assert_eq!(verdict(&s, Some(150.0), false), Verdict::Pass);
    }

    #[test]
    fn no_breach_up_to_the_maximum_and_a_breach_at_the_first_step() {
        let (s, _) = search(ladder(10.0, 40.0, |r| r * 2.0), 3, probe(1e9, 1e9));
        assert_eq!((s.sustainable_rps, s.limit.is_none()), (Some(40.0), true));
        assert_eq!(s.steps.len(), 3);
        let (s, _) = search(ladder(100.0, 400.0, |r| r * 2.0), 2, probe(10.0, 1e9));
        // 100 breaches; bisect 0..100: 50 and 25 breach too.
        assert_eq!(s.sustainable_rps, None);
        assert_eq!(s.limit.as_ref().unwrap().rate_rps, 25.0);
        assert_eq!(verdict(&s, None, false), Verdict::Fail);
        assert_eq!(verdict(&s, None, true), Verdict::Interrupted);
        assert_eq!(s.stop_text(true), "interrupted");
    }

    #[test]
    fn an_interrupted_search_keeps_what_it_measured() {
        let mut inner = probe(333.0, 1e9);
        let mut calls = 0;
        let (s, err) = search(ladder(100.0, 1000.0, |r| r + 100.0), 3, |r, f| {
            calls += 1;
            if calls == 3 {
                Err("interrupted")
            } else {
                inner(r, f).map_err(|_| "x")
            }
        });
        assert_eq!(err, Some("interrupted"));
        assert_eq!(s.steps.len(), 2);
        assert_eq!(s.sustainable_rps, Some(200.0));
    }
}
