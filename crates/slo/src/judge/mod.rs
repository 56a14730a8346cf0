//! The verdict: every budget judged on what the target did in the measured phase, the
//! generator's own validity, and how the run stopped. `loadgate run`, `merge` and
//! `capacity` all decide here.
//!
//! - **Pass**: a valid, complete run in which every budget held, the implicit one
//!   included (see [`IMPLICIT_ERROR_RATE`]).
//! - **Fail**: a valid run in which the target broke a budget, whatever the failure
//!   looked like: a failed request ranks above every latency threshold (see the crate
//!   documentation), so a dead, refusing, resetting or hanging target fails its latency
//!   budgets as well as its error budgets.
//! - **Invalid**: loadgate's own shortfall could have changed the verdict or the load the
//!   target saw. By default (`robust` validity) that is: sends below
//!   `min_achieved_ratio` of the schedule, drops at `max_in_flight`, arrivals never sent,
//!   requests that could not be built or found no local descriptor or port, sends lagging
//!   so far that the target saw bursts (more than `max_late_ratio` of sends over ten
//!   arrival spacings late), or a budget whose breach the send lag alone could explain
//!   (it fails on latency from the intended send but holds on service time). Late sends
//!   themselves do not invalidate a run: their lag is inside the measured latency.
//!   `strict` validity also makes a run invalid past `max_late_ratio` sends later than
//!   the late tolerance, as loadgate did before.
//! - **Interrupted**: stopped from outside; budgets judge what was measured up to the
//!   stop, and the run neither passes nor fails.

#[cfg(test)]
mod tests;
mod validity;

use loadgate_metrics::{EndpointShard, Pauses, Shard, Timing};

use crate::summary::{RateSummary, Verdict};
use crate::window::WindowOutcome;
use crate::{Budget, BudgetResult, Measure, Metric, Observed, Op, Unit};
use validity::{could_hold, generator, lag_reason, not_robust, Slack};

/// The error rate above which a scope fails when the scenario gives it no `error_rate`
/// budget of its own: a run in which the target served half of its requests or fewer
/// never passes, whatever else it was asked.
pub const IMPLICIT_ERROR_RATE: f64 = 0.5;

/// How the generator's validity is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidityMode {
    /// Invalid only when the generator's error could have changed the verdict or the
    /// load the target saw.
    Robust,
    /// Also invalid when more than `max_late_ratio` of sends were later than the late
    /// tolerance.
    Strict,
}

impl ValidityMode {
    /// `robust` or `strict`.
    pub fn name(self) -> &'static str {
        match self {
            ValidityMode::Robust => "robust",
            ValidityMode::Strict => "strict",
        }
    }

    /// The mode named `name`.
    pub fn from_name(name: &str) -> Option<ValidityMode> {
        match name {
            "robust" => Some(ValidityMode::Robust),
            "strict" => Some(ValidityMode::Strict),
            _ => None,
        }
    }
}

/// Open-model facts and the thresholds that make a run invalid.
#[derive(Debug, Clone, Copy)]
pub struct OpenFacts {
    /// Arrivals the schedule asked for in the measured phase.
    pub scheduled: f64,
    /// Arrivals never sent.
    pub missed: u64,
    /// Lateness tolerance in milliseconds.
    pub late_tolerance_ms: f64,
    /// The send window in milliseconds.
    pub send_window_ms: f64,
    /// Below this achieved/target ratio the run is invalid.
    pub min_achieved_ratio: f64,
    /// Strict: above this late/sent ratio the run is invalid. Robust: above this share
    /// of bunched sends.
    pub max_late_ratio: f64,
    /// Above this dropped/scheduled ratio the run is invalid.
    pub max_dropped_ratio: f64,
    /// Robust or strict.
    pub validity: ValidityMode,
    /// Pauses of the generating process in the measured phase, to say how many late
    /// sends they alone explain; `None` when no one process ran the load (a merge, whose
    /// segments each judged their own).
    pub pauses: Option<Pauses>,
}

/// How the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The profile ran to its end.
    Completed,
    /// An `abort_on_fail` budget stopped it: a breach.
    Aborted,
    /// Stopped from outside.
    Interrupted,
}

/// Everything a verdict rests on.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// Endpoint names, in scenario order.
    pub names: &'a [String],
    /// The measured phase: requests due (open) or sent (closed) after the warm-up and
    /// before the end or stop, whenever they completed.
    pub measured: &'a Shard,
    /// Length of the measured phase in seconds.
    pub measured_s: f64,
    /// Every budget with its scope (`None`: the whole run; else the endpoint index), in
    /// the order the results are listed.
    pub budgets: &'a [(Option<usize>, &'a Budget)],
    /// The windowed budgets' outcomes (`WindowJudge::finish`), by position in `budgets`.
    pub windows: &'a [WindowOutcome],
    /// Open model: the schedule and validity thresholds.
    pub open: Option<OpenFacts>,
    /// How the run ended.
    pub stop: Stop,
    /// Reasons the run is invalid that were known before judging (a segment of a merged
    /// run that was invalid on its own); they stand whatever the budgets show.
    pub invalid_before: &'a [String],
    /// Each endpoint's goodput limits by name, as `summary.json` states them (empty when
    /// unknown): how far above a limit a held-up answer may lie and still be mended.
    pub goodput_limits: &'a std::collections::BTreeMap<String, crate::summary::GoodputLimits>,
}

/// What the verdict is based on.
#[derive(Debug, Clone)]
pub struct Judgement {
    /// Every budget's result, the implicit one last.
    pub slo: Vec<BudgetResult>,
    /// Open model rate figures.
    pub rate: Option<RateSummary>,
    /// Why the run is invalid (empty when valid).
    pub invalid_reasons: Vec<String>,
    /// The verdict.
    pub verdict: Verdict,
}

/// Judges measured data against budgets and the generator's validity.
pub fn judge(input: &Input<'_>) -> Judgement {
    let all = input.measured.overall();
    let scope_name = |s: Option<usize>| s.map_or("global", |i| input.names[i].as_str());
    let data = |s: Option<usize>| s.map_or(&all, |i| &input.measured.endpoints()[i]);
    let open = input.open.filter(|f| f.scheduled > 0.0 || all.sent > 0);
    // A flow's iteration is one arrival, however many steps it sends.
    let arrivals = input.measured.arrivals();
    let unsent = open.map_or(0.0, |f| (f.scheduled - arrivals.0 as f64).max(0.0));

    let mut slo = Vec::new();
    let mut reasons = Vec::new();
    let mut robust_breach = false;
    for (position, &(scope, b)) in input.budgets.iter().enumerate() {
        let e = data(scope);
        let o = Observed::of(e, input.measured_s);
        let mut r = match input.windows.iter().find(|w| w.position == position) {
            Some(w) => {
                let mut r = b.result(scope_name(scope), w.worst);
                r.pass = w.pass;
                r.robust = w.robust;
                r.window = Some(w.summary.clone());
                r
            }
            // A windowed budget nobody fed seconds to (nothing was measured).
            None if b.window_s.is_some() => b.result(scope_name(scope), Measure::NoData),
            None => b.evaluate(scope_name(scope), &o),
        };
        let pauses = open.and_then(|f| f.pauses);
        let slack = Slack::of(
            e,
            input.measured_s,
            scope.is_none().then_some(unsent.ceil() as u64),
            pauses,
            near_limits(input, scope, pauses.map_or(0, |p| p.max_us)),
        );
        let why = match (r.pass, r.robust, &r.window, open) {
            (true, ..) | (_, _, _, None) => None,
            // The window judge found every window held from the actual send (service
            // time; goodput limits timed from the actual send).
            (false, false, Some(_), _) => Some(lag_reason(&r, b, &all)),
            (false, true, Some(_), _) => None,
            (false, _, None, _) => not_robust(b, &r, e, input.measured_s, &all, slack, pauses),
        };
        // A breach the generator's best case would not have mended is the target's,
        // whatever else went wrong with the generator.
        let mendable =
            !slack.is_empty() && (r.window.is_some() || could_hold(b, e, input.measured_s, slack));
        if !r.pass && why.is_none() && !mendable {
            robust_breach = true;
        }
        if let Some(why) = why {
            r.robust = false;
            reasons.push(why);
        }
        slo.push(r);
    }
    // The implicit budget is the target's breach on the same terms as any other.
    if let Some((r, b, scope)) = implicit(input, &all) {
        let e = data(scope);
        let slack = Slack::of(
            e,
            input.measured_s,
            scope.is_none().then_some(unsent.ceil() as u64),
            open.and_then(|f| f.pauses),
            0,
        );
        let mendable = !slack.is_empty() && could_hold(&b, e, input.measured_s, slack);
        if !r.pass && !mendable {
            robust_breach = true;
        }
        slo.push(r);
    }

    let mut invalid_reasons = Vec::new();
    let rate = open.map(|f| generator(f, &all, arrivals, input.measured_s, &mut invalid_reasons));
    invalid_reasons.extend(reasons);
    if all.local_errors > 0 {
        invalid_reasons.push(format!(
            "{} of {} requests failed because loadgate ran out of its own resources while connecting \
             (no free file descriptor, local port or socket memory: EMFILE, ENFILE, EADDRNOTAVAIL, ENOBUFS or ENOMEM); \
             the target never saw them. Raise the open-file limit (ulimit -Hn, or LimitNOFILE= in a systemd unit) \
             or use fewer connections (max_in_flight, vus)",
            all.local_errors,
            all.completed()
        ));
    }
    if all.unbuilt > 0 {
        let which: Vec<String> = input
            .names
            .iter()
            .zip(input.measured.endpoints())
            .filter(|(_, e)| e.unbuilt > 0)
            .map(|(n, e)| format!("`{n}` {}", e.unbuilt))
            .collect();
        invalid_reasons.push(format!(
            "{} arrivals were never sent because their request could not be built ({}): a template rendered \
             something that is not a valid URL or header value (from a data file or list); \
             `loadgate validate` checks data files and lists for this",
            all.unbuilt,
            which.join(", ")
        ));
    }
    // A breach that holds whatever the generator did wrong makes a valid FAIL: the
    // generator's shortfalls are shown (rate line, counts) but decide nothing.
    if robust_breach {
        invalid_reasons.clear();
    }
    invalid_reasons.extend(input.invalid_before.iter().cloned());
    let verdict = verdict(
        !invalid_reasons.is_empty(),
        slo.iter().all(|r| r.pass),
        input.stop,
    );
    Judgement {
        slo,
        rate,
        invalid_reasons,
        verdict,
    }
}

/// The verdict from validity, the budgets and how the run stopped.
pub fn verdict(invalid: bool, every_budget_held: bool, stop: Stop) -> Verdict {
    match stop {
        Stop::Interrupted => Verdict::Interrupted,
        _ if invalid => Verdict::Invalid,
        Stop::Aborted => Verdict::Fail,
        Stop::Completed if every_budget_held => Verdict::Pass,
        Stop::Completed => Verdict::Fail,
    }
}

/// `error_rate < 50%` on the run and on every endpoint that has no error-rate budget of
/// its own (the run only when it has no global one; a lone endpoint is the run), as one
/// row naming the worst scope; none when every scope has a budget of its own.
fn implicit(
    input: &Input<'_>,
    all: &EndpointShard,
) -> Option<(BudgetResult, Budget, Option<usize>)> {
    let explicit = |scope: Option<usize>| {
        input
            .budgets
            .iter()
            .any(|(s, b)| *s == scope && b.metric == Metric::ErrorRate)
    };
    let budget = Budget {
        text: format!("error_rate < {}% (implicit)", IMPLICIT_ERROR_RATE * 100.0),
        metric: Metric::ErrorRate,
        timing: Timing::Latency,
        op: Op::Lt,
        threshold: IMPLICIT_ERROR_RATE,
        unit: Unit::Ratio,
        window_s: None,
        speed: None,
    };
    let mut scopes: Vec<(String, &EndpointShard, Option<usize>)> = Vec::new();
    if !explicit(None) {
        scopes.push(("global".to_string(), all, None));
    }
    let lone = input.measured.endpoints().len() == 1;
    for (i, e) in input.measured.endpoints().iter().enumerate() {
        // An endpoint with nothing completed is judged within the run, not alone.
        if !explicit(Some(i)) && e.completed() > 0 && !(lone && explicit(None)) {
            scopes.push((input.names[i].clone(), e, Some(i)));
        }
    }
    let measure = |e: &EndpointShard| budget.measure(&Observed::of(e, input.measured_s));
    // The worst scope: no data first, then the highest error rate.
    let key = |e: &EndpointShard| match measure(e) {
        Measure::Value(v) => v,
        Measure::NoData | Measure::Failed { .. } => f64::INFINITY,
    };
    // The first of the worst: the run before its endpoints.
    let worst = scopes.iter().fold(
        None::<&(String, &EndpointShard, Option<usize>)>,
        |worst, s| match worst {
            Some(w) if key(w.1) >= key(s.1) => Some(w),
            _ => Some(s),
        },
    );
    let (name, e, scope) = worst?;
    let mut r = budget.result(name, measure(e));
    r.implicit = true;
    Some((r, budget, *scope))
}

/// How many of a scope's successes lie above one of their endpoint's goodput limits by
/// at most `pause_max_us` (latency, first byte, first token): the most that a pause that
/// long could have kept from being good. Counted per limit, so an answer over two limits
/// may count twice (an upper bound).
fn near_limits(input: &Input<'_>, scope: Option<usize>, pause_max_us: u64) -> u64 {
    if pause_max_us == 0 {
        return 0;
    }
    let endpoints = input.measured.endpoints();
    let which: Vec<usize> = match scope {
        Some(i) => vec![i],
        None => (0..endpoints.len()).collect(),
    };
    which
        .into_iter()
        .filter_map(|k| {
            Some((
                endpoints.get(k)?,
                input.goodput_limits.get(input.names.get(k)?)?,
            ))
        })
        .map(|(e, l)| {
            [
                (Timing::Latency, l.latency_us),
                (Timing::Ttfb, l.ttfb_us),
                (Timing::Ttft, l.ttft_us),
            ]
            .into_iter()
            .filter_map(|(t, limit)| {
                let h = &e.timings[t];
                let limit = limit?;
                Some(h.count_above(limit) - h.count_above(limit.saturating_add(pause_max_us)))
            })
            .sum::<u64>()
        })
        .sum()
}
