//! Whether a breach is the target's or could be the generator's: what the generator may
//! have done wrong to a scope's requests ([`Slack`]: arrivals it did not send, local
//! failures, answers its pauses held up), whether a budget could have held without it,
//! and the open model's rate figures with the shortfalls that make a run invalid. The
//! verdict that weighs these is in the parent module.

use loadgate_metrics::{nearest_rank, EndpointShard, Pauses, Timing};

use super::{OpenFacts, ValidityMode};
use crate::summary::RateSummary;
use crate::{Budget, BudgetResult, Measure, Metric, Observed, Op};

/// What the generator may have done wrong to one scope's requests, and so what a
/// budget's best case is: every arrival it did not send (`unsent`: dropped, never sent,
/// never built) answered at once, every request that failed for want of a local resource
/// (`excused`) answered at once, and every answer a pause of the generating process, or
/// of one of its workers held from its CPU, may have held up (`held`) quick.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Slack {
    unsent: u64,
    excused: u64,
    held: u64,
    /// Gaps between a stream's tokens the pauses may have held up, as they hold up
    /// answers: a token read late makes its gap as much longer.
    held_gaps: u64,
    /// The longest pause, µs: how much quicker each held-up answer could have been.
    pause_max_us: u64,
    /// Successes that were not good but lie within the longest pause above one of their
    /// endpoint's goodput limits, at most as many as the pauses held up: the good
    /// requests the pauses may have cost.
    held_bad: u64,
}

impl Slack {
    /// `unsent`: the run's arrivals not sent (dropped, never sent or never built) for
    /// the whole run, `None` for one endpoint (its dropped and unbuilt arrivals).
    pub(super) fn of(
        e: &EndpointShard,
        measured_s: f64,
        unsent: Option<u64>,
        pauses: Option<Pauses>,
        near_limits: u64,
    ) -> Slack {
        let p = pauses.unwrap_or_default();
        let held = held_up(e.completed(), measured_s, &p);
        // Timeouts are the target's: a deadline that passed while the worker was kept
        // from running gets one more tick (`loadgate_engine`'s deadlines), in which an
        // answer that came in time and waited in its socket is read (regression, third
        // review: a 1.5 s stop made 50 timeouts of a target that always answered in
        // 0.5 s; excusing timeouts instead excused real ones on a busy machine).
        Slack {
            unsent: unsent.unwrap_or(e.dropped + e.unbuilt),
            excused: e.local_errors,
            held,
            held_gaps: held_up(e.timings[Timing::Itl].len(), measured_s, &p),
            pause_max_us: p.max_us,
            held_bad: held
                .min(near_limits)
                .min(e.successes().saturating_sub(e.good)),
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.unsent == 0 && self.excused == 0 && self.held == 0 && self.held_gaps == 0
    }

    /// The parts that are not zero, in words; `gaps`: of a budget on the gaps between
    /// tokens, whose held-up values are gaps.
    fn describe(&self, pauses: Option<Pauses>, gaps: bool) -> String {
        let mut parts = Vec::new();
        let (held, what) = match gaps {
            true => (self.held_gaps, "gaps between tokens ending"),
            false => (self.held, "answers in flight"),
        };
        if held > 0 {
            if let Some(p) = pauses {
                parts.push(format!(
                    "about {held} {what} during pauses of the generating process or of one of its workers held from its CPU ({}) read late",
                    p.describe()
                ));
            }
        }
        if self.unsent > 0 {
            parts.push(format!("{} arrivals not sent", self.unsent));
        }
        if self.excused > 0 {
            parts.push(format!(
                "{} requests failed for want of a local resource",
                self.excused
            ));
        }
        parts.join("; ")
    }
}

/// How many of a scope's `n` answers (or gaps between tokens) the pauses of the
/// generating process could have held up: those that arrived while it was paused, read
/// when it ran again. Answers arrive at about the scope's rate, so pauses of `T` s in
/// all hold up about `λ = rate × T` of them; the count taken is a generous upper bound on that (a Poisson count's mean plus
/// three standard deviations, plus one), at most every answer. A pause delays the few
/// answers it overlaps, never the whole run; requests due during it are sent late, which
/// the service time leaves out. A worker held from its CPU holds up only its own share
/// of them, but its hold is counted as a pause of the process (`Pauses`): an
/// overstatement by the number of workers, which errs toward a breach not robust, and
/// only for one within the longest pause of its threshold ([`still_slow`]).
fn held_up(n: u64, measured_s: f64, p: &Pauses) -> u64 {
    if measured_s <= 0.0 || p.count == 0 {
        return 0;
    }
    let lambda = n as f64 / measured_s * p.total_us as f64 / 1e6;
    let k = lambda + 3.0 * lambda.sqrt() + 1.0;
    (k.ceil() as u64).min(n)
}

/// Whether budget `b` could have held on scope `e` had the generator erred nowhere
/// (see [`Slack`]); latency is taken as service time, without the send lag.
pub(super) fn could_hold(b: &Budget, e: &EndpointShard, measured_s: f64, slack: Slack) -> bool {
    // A timing that recorded nothing for the scope's successes (first token of
    // responses that do not stream) is no one's delay: nothing the generator did kept
    // it from being measured.
    if b.timing.of_successes() && e.successes() > 0 && e.timings[b.timing].is_empty() {
        return false;
    }
    if b.timing == Timing::Itl {
        return gaps_could_hold(b, &e.timings[Timing::Itl], slack);
    }
    // Time per token ranks only the streams that have one and the failed requests (as
    // `Budget::measure` does).
    let ranked = match b.timing {
        Timing::Tpot => e.timings[Timing::Tpot].len() + e.outcomes.errors(),
        _ => e.outcomes.total(),
    };
    let total = ranked + slack.unsent;
    let failed = e.outcomes.errors().saturating_sub(slack.excused);
    let ok = total - failed;
    // The same phase without the send lag (service time for latency); a timing of
    // sends or connections has no twin and no requests to rescue.
    let timing = b.timing.service_twin().unwrap_or(b.timing);
    let hist = &e.timings[timing];
    let upper = matches!(b.op, Op::Lt | Op::Le) && b.timing.of_successes();
    let at = b.threshold.max(0.0) as u64;
    match b.metric {
        Metric::Percentile(p) if b.is_latency() && upper => {
            if total == 0 {
                return false;
            }
            ok.saturating_sub(still_slow(hist, at, slack)) >= nearest_rank(p / 100.0, total)
        }
        Metric::Max if upper => still_slow(hist, at, slack) == 0,
        Metric::Mean if upper => {
            let n = hist.len() + slack.unsent + slack.excused;
            if n == 0 {
                return false;
            }
            let saved = slack.held.min(hist.len()) as f64 * slack.pause_max_us as f64;
            let sum = (hist.mean() * hist.len() as f64 - saved).max(0.0);
            b.holds(Measure::Value(sum / n as f64))
        }
        Metric::ErrorRate => total > 0 && b.holds(Measure::Value(failed as f64 / total as f64)),
        // Good on the service-time side of every limit, plus what the generator's own
        // errors cost (an unsent or excused request might have been good).
        Metric::Goodput => {
            let good = e.good_service.max(e.good + slack.held_bad) + slack.unsent + slack.excused;
            measured_s > 0.0 && b.holds(Measure::Value(good as f64 / measured_s))
        }
        Metric::Attainment => {
            let good = e.good_service.max(e.good + slack.held_bad) + slack.unsent + slack.excused;
            total > 0 && b.holds(Measure::Value(good as f64 / total as f64))
        }
        Metric::Throughput => {
            measured_s > 0.0
                && b.holds(Measure::Value(
                    (e.successes() + slack.unsent + slack.excused) as f64 / measured_s,
                ))
        }
        _ => {
            let twin = Budget {
                timing,
                ..b.clone()
            };
            twin.holds(twin.measure(&Observed::of(e, measured_s)))
        }
    }
}

/// Whether an upper budget on the gaps between tokens could have held had the pauses
/// held none up (the only error of the generator's a gap shows): each of the gaps
/// they held up at most the longest pause shorter.
fn gaps_could_hold(b: &Budget, hist: &loadgate_metrics::LatencyHistogram, slack: Slack) -> bool {
    let slack = Slack {
        held: slack.held_gaps,
        ..slack
    };
    let total = hist.len();
    let at = b.threshold.max(0.0) as u64;
    match (b.metric, b.op) {
        (_, Op::Gt | Op::Ge) => false,
        (Metric::Percentile(p), _) => {
            total > 0 && total - still_slow(hist, at, slack) >= nearest_rank(p / 100.0, total)
        }
        (Metric::Max, _) => still_slow(hist, at, slack) == 0,
        (Metric::Mean, _) => {
            let saved = slack.held.min(total) as f64 * slack.pause_max_us as f64;
            total > 0
                && b.holds(Measure::Value(
                    (hist.mean() * total as f64 - saved).max(0.0) / total as f64,
                ))
        }
        _ => false,
    }
}

/// How many answers would still be slower than `at` µs had the pauses held none up: a
/// held-up answer is at most the longest pause quicker, so only those within that of
/// the threshold can be made quick, and at most `held` of them (regression: a 1.3 ms
/// pause "mended" a 2.33 s answer against `p95 < 2s` in a run of twelve).
fn still_slow(hist: &loadgate_metrics::LatencyHistogram, at: u64, slack: Slack) -> u64 {
    let slow = hist.count_above(at);
    let beyond_reach = hist.count_above(at.saturating_add(slack.pause_max_us));
    slow - (slow - beyond_reach).min(slack.held)
}

/// Why a failed budget might not be the target's breach, if it might not: the
/// generator's own error could explain it. A latency budget that holds on service time
/// (the same requests with the send lag taken out), a goodput or attainment budget that
/// holds on the requests good from the actual send (the same limits, the send lag taken
/// out); or any budget that could have held in the generator's best case ([`Slack`]:
/// the arrivals it did not send answered at once, its local failures answered, the
/// answers its pauses may have held up quick). Timeouts run from the actual send, so the
/// send lag never causes one.
pub(super) fn not_robust(
    b: &Budget,
    r: &BudgetResult,
    e: &EndpointShard,
    measured_s: f64,
    all: &EndpointShard,
    slack: Slack,
    pauses: Option<Pauses>,
) -> Option<String> {
    if let Some(timing) = b.timing.service_twin().filter(|_| b.is_latency()) {
        let twin = Budget {
            timing,
            ..b.clone()
        };
        if twin.holds(twin.measure(&Observed::of(e, measured_s))) {
            return Some(lag_reason(r, b, all));
        }
    }
    if matches!(b.metric, Metric::Goodput | Metric::Attainment) {
        let from_send = Observed {
            good: e.good_service,
            ..Observed::of(e, measured_s)
        };
        if b.holds(b.measure(&from_send)) {
            return Some(lag_reason(r, b, all));
        }
    }
    (!slack.is_empty() && could_hold(b, e, measured_s, slack)).then(|| {
        format!(
            "budget `{}` ({}) failed at {}, but could have held had the generator not erred: {}",
            r.expr,
            r.scope,
            r.measured_text,
            slack.describe(pauses, b.timing == Timing::Itl)
        )
    })
}

/// A breach that the send lag alone could explain: of latency (or another timing from
/// the intended send) that holds on the same requests' service time, or of goodput or
/// attainment that holds with the same limits timed from the actual send.
pub(super) fn lag_reason(r: &BudgetResult, b: &Budget, all: &EndpointShard) -> String {
    let lag = all.timings[Timing::SendLag].stats();
    let failed = match b.metric {
        Metric::Goodput | Metric::Attainment => format!(
            "failed ({}) with its endpoints' goodput limits timed from the intended send but holds with them timed from the actual send",
            r.measured_text
        ),
        _ => format!(
            "failed on {} from the intended send time ({}) but holds on the same requests' service time",
            b.timing.label(),
            r.measured_text
        ),
    };
    format!(
        "budget `{}` ({}) {failed}: the generator's own delay in sending (send lag p99 {:.1} ms, max {:.1} ms; with `connections = N`, the wait for a free connection of the pool) could be the breach",
        r.expr,
        r.scope,
        lag.p99 as f64 / 1000.0,
        lag.max as f64 / 1000.0
    )
}

/// The open model's rate figures, with the reasons its shortfall makes the run invalid:
/// `arrivals` (sent, dropped) against the schedule (see `Shard::arrivals`), every send
/// of `all` for lateness.
pub(super) fn generator(
    f: OpenFacts,
    all: &EndpointShard,
    arrivals: (u64, u64),
    measured_s: f64,
    reasons: &mut Vec<String>,
) -> RateSummary {
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    let target_rps = ratio(f.scheduled, measured_s);
    // Ten arrival spacings at the target rate, at least the late tolerance.
    let burst_lag_ms = if target_rps > 0.0 {
        (10_000.0 / target_rps).max(f.late_tolerance_ms)
    } else {
        f.late_tolerance_ms
    };
    let bunched = all.timings[Timing::SendLag].count_above((burst_lag_ms * 1000.0) as u64);
    let r = RateSummary {
        target_rps,
        achieved_rps: ratio(arrivals.0 as f64, measured_s),
        scheduled: f.scheduled,
        sent: arrivals.0,
        achieved_ratio: if f.scheduled > 0.0 {
            arrivals.0 as f64 / f.scheduled
        } else {
            1.0
        },
        late: all.late,
        late_ratio: ratio(all.late as f64, all.sent as f64),
        dropped: arrivals.1,
        dropped_ratio: ratio(arrivals.1 as f64, f.scheduled),
        missed: f.missed,
        late_tolerance_ms: f.late_tolerance_ms,
        send_window_ms: f.send_window_ms,
        validity: f.validity.name().to_string(),
        send_lag_us: all.timings[Timing::SendLag].stats(),
        bunched,
        burst_lag_ms,
    };
    if r.achieved_ratio < f.min_achieved_ratio {
        reasons.push(format!(
            "generator sent {:.1} rps of the {:.1} rps target ({:.1}%, below the {:.0}% minimum): the target saw less load than asked",
            r.achieved_rps,
            r.target_rps,
            r.achieved_ratio * 100.0,
            f.min_achieved_ratio * 100.0
        ));
    }
    // What made `late` of the `count` sends later than `bound_ms`: the machine's pauses,
    // or (when they explain too few) a wait inside loadgate.
    let pauses = |count: u64, late: u64, bound_ms: f64| -> String {
        let why = "with `connections = N`, for a free connection of a pool too small for the load (raise `connections`), otherwise for CPU (lower the rate or add workers)";
        let Some(p) = f.pauses.filter(|p| p.count > 0) else {
            return if f.pauses.is_some() {
                format!(
                    "; no pause of the machine explains them: they waited inside loadgate, {why}"
                )
            } else {
                String::new()
            };
        };
        // Every pause taken as the whole process's: a worker's hold made only its own
        // share late, so this overstates what such holds alone explain.
        let forced = p.beyond((bound_ms * 1000.0) as u64) as f64 / 1e6 * target_rps;
        let pausing = format!(
            "; the machine kept loadgate from running {} time{} for more than {} ms (the whole process, or one worker held from its CPU: \
             {:.1} ms in all, the longest {:.1} ms), which alone makes about {:.0} sends ({:.2}%) that late",
            p.count,
            if p.count == 1 { "" } else { "s" },
            f.late_tolerance_ms,
            p.total_us as f64 / 1000.0,
            p.max_us as f64 / 1000.0,
            forced,
            ratio(forced, count.max(1) as f64) * 100.0
        );
        if forced * 2.0 < late as f64 {
            format!("{pausing}; the rest waited inside loadgate, {why}")
        } else {
            format!(
                "{pausing}: such pauses come from the generator's machine \
                 (a host that deschedules it, other work on every CPU or on a worker's), not from the target"
            )
        }
    };
    match f.validity {
        ValidityMode::Strict if r.late_ratio > f.max_late_ratio => reasons.push(format!(
            "{} of {} sends ({:.2}%) were more than {} ms behind schedule (limit {:.2}%, strict validity){}",
            r.late,
            all.sent,
            r.late_ratio * 100.0,
            f.late_tolerance_ms,
            f.max_late_ratio * 100.0,
            pauses(all.sent, r.late, f.late_tolerance_ms)
        )),
        _ if ratio(bunched as f64, all.sent as f64) > f.max_late_ratio => reasons.push(format!(
            "{} of {} sends ({:.2}%) were more than {:.1} ms behind schedule, ten arrival spacings (limit {:.2}%): \
             the target saw them in bursts the schedule did not ask for{}",
            bunched,
            all.sent,
            ratio(bunched as f64, all.sent as f64) * 100.0,
            burst_lag_ms,
            f.max_late_ratio * 100.0,
            pauses(all.sent, bunched, burst_lag_ms)
        )),
        _ => {}
    }
    if r.dropped_ratio > f.max_dropped_ratio {
        reasons.push(format!(
            "{} arrivals ({:.2}%) were dropped, never sent: max_in_flight was reached, or (with `connections = N`) no connection of the fixed pool came free within the timeout (limit {:.2}%); raise max_in_flight or connections, or lower the rate",
            r.dropped,
            r.dropped_ratio * 100.0,
            f.max_dropped_ratio * 100.0
        ));
    }
    if r.missed > 0 {
        reasons.push(format!(
            "{} arrivals were never sent: the generator fell behind the end of the schedule",
            r.missed
        ));
    }
    r
}
