//! Windowed budgets: `p95 < 2s over 30s` must hold in every window of 30 seconds of the
//! measured phase, sliding by one second, so an outage that a whole-run figure averages
//! away still breaks the gate.
//!
//! Each window is judged exactly: its histograms are the per-second histograms added
//! (HDR add, never averaged percentiles) and its counts the per-second counts summed.
//! Memory is bounded by the window, not the run: the judge keeps a running sum and, for
//! each second still inside a window, a sparse copy of its histograms to subtract when
//! it leaves. `loadgate run` feeds it the aggregator's intervals as they finish;
//! `loadgate merge` feeds it the same seconds read back from the run directory, so both
//! judge alike.
//!
//! Seconds are pushed in order, the measured phase only. Requests still in flight when
//! the schedule ended complete in drain seconds; [`WindowJudge::fold_drain`] adds them to
//! the last measured second, where they were due. A window is judged when the next
//! second arrives (or at [`WindowJudge::finish`]), so drain can still join the last one.
//! A measured phase shorter than the window is judged once, as one shorter window.

use std::collections::VecDeque;

use loadgate_metrics::{EndpointShard, LatencyHistogram, OutcomeCounts, Shard};
use serde::{Deserialize, Serialize};

use crate::{Budget, Measure, Observed, Op};

/// How a windowed budget fared, for `summary.json` and the reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WindowSummary {
    /// Window length in seconds.
    pub length_s: u64,
    /// Windows judged.
    pub windows: u64,
    /// Windows in which the budget did not hold.
    pub breaching: u64,
    /// Where the worst window began, in seconds since the run started (warm-up
    /// included), as the time series counts them.
    pub worst_start_s: f64,
    /// Where it ended.
    pub worst_end_s: f64,
    /// The measured phase was shorter than the window: judged once over all of it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
}

/// One measured second as the judge takes it.
#[derive(Debug, Clone, Copy)]
pub struct Second<'a> {
    /// Where the second begins, in seconds since the run started.
    pub start_s: f64,
    /// Where it ends (less than a whole second at a partial end).
    pub end_s: f64,
    /// What completed in it (requests due in the measured phase only).
    pub shard: &'a Shard,
}

/// The verdict on one windowed budget.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowOutcome {
    /// The budget's position in the order the judge was given them.
    pub position: usize,
    /// The worst window's measurement.
    pub worst: Measure,
    /// Whether every window met the budget.
    pub pass: bool,
    /// False when some window failed on latency from the intended send but every
    /// window held on service time (see `BudgetResult::robust`).
    pub robust: bool,
    /// Counts and the worst window's place.
    pub summary: WindowSummary,
}

/// Judges every windowed budget of a run as its seconds arrive.
#[derive(Debug)]
pub struct WindowJudge {
    tracks: Vec<Track>,
    entries: Vec<Entry>,
}

/// One scope's seconds for one window length, shared by the budgets that need them.
#[derive(Debug)]
struct Track {
    /// `None`: all endpoints.
    scope: Option<usize>,
    length: usize,
    slots: VecDeque<Slot>,
    latency: LatencyHistogram,
    service: LatencyHistogram,
    outcomes: OutcomeCounts,
    scratch: LatencyHistogram,
    /// Whether the newest slot's window has been judged.
    judged: bool,
}

#[derive(Debug)]
struct Slot {
    start_s: f64,
    end_s: f64,
    latency: Vec<(u64, u64)>,
    service: Vec<(u64, u64)>,
    outcomes: OutcomeCounts,
}

#[derive(Debug)]
struct Entry {
    position: usize,
    track: usize,
    budget: Budget,
    /// The same budget on service time, to tell the generator's lag from the target.
    twin: Option<Budget>,
    windows: u64,
    breaching: u64,
    twin_breaching: u64,
    worst: Option<(Measure, f64, f64)>,
    partial: bool,
    last_breached: bool,
}

impl WindowJudge {
    /// A judge for the windowed budgets among `budgets` (scope: `None` for all
    /// endpoints, else the endpoint's index), numbered in the order given. `open`: the
    /// open model, where latency budgets are also judged on service time to see whether
    /// the generator's lag could explain a breach. Histograms are bounded at `max_us`.
    pub fn new<'a>(
        budgets: impl IntoIterator<Item = (Option<usize>, &'a Budget)>,
        open: bool,
        max_us: u64,
    ) -> WindowJudge {
        let mut tracks: Vec<Track> = Vec::new();
        let mut entries = Vec::new();
        for (position, (scope, b)) in budgets.into_iter().enumerate() {
            let Some(length) = b.window_s else { continue };
            let length = length as usize;
            let track = match tracks
                .iter()
                .position(|t| t.scope == scope && t.length == length)
            {
                Some(t) => t,
                None => {
                    tracks.push(Track {
                        scope,
                        length,
                        slots: VecDeque::with_capacity(length.min(4096)),
                        latency: LatencyHistogram::new(max_us),
                        service: LatencyHistogram::new(max_us),
                        outcomes: OutcomeCounts::default(),
                        scratch: LatencyHistogram::new(max_us),
                        judged: true,
                    });
                    tracks.len() - 1
                }
            };
            let twin = (open && b.is_latency() && !b.service).then(|| Budget {
                service: true,
                ..b.clone()
            });
            entries.push(Entry {
                position,
                track,
                budget: b.clone(),
                twin,
                windows: 0,
                breaching: 0,
                twin_breaching: 0,
                worst: None,
                partial: false,
                last_breached: false,
            });
        }
        WindowJudge { tracks, entries }
    }

    /// Whether there is any windowed budget to judge.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Takes the next measured second. Judges the windows that ended with the second
    /// before it.
    pub fn push(&mut self, second: Second<'_>) {
        if self.entries.is_empty() {
            return;
        }
        self.judge_full_windows();
        let overall = self
            .tracks
            .iter()
            .any(|t| t.scope.is_none())
            .then(|| second.shard.overall());
        for t in &mut self.tracks {
            let e = scope_of(t.scope, second.shard, overall.as_ref());
            if t.slots.len() == t.length {
                let old = t
                    .slots
                    .pop_front()
                    .expect("a full window has a first second");
                t.latency.subtract_sparse(&old.latency, &mut t.scratch);
                t.service.subtract_sparse(&old.service, &mut t.scratch);
                t.outcomes.subtract(&old.outcomes);
            }
            t.latency.add(&e.latency);
            t.service.add(&e.service);
            t.outcomes.add(&e.outcomes);
            t.slots.push_back(Slot {
                start_s: second.start_s,
                end_s: second.end_s,
                latency: e.latency.to_sparse(),
                service: e.service.to_sparse(),
                outcomes: e.outcomes,
            });
            t.judged = false;
        }
    }

    /// Adds what completed after the measured phase (drain) to its last second.
    pub fn fold_drain(&mut self, shard: &Shard) {
        if self.entries.is_empty() {
            return;
        }
        let overall = self
            .tracks
            .iter()
            .any(|t| t.scope.is_none())
            .then(|| shard.overall());
        for t in &mut self.tracks {
            let Some(last) = t.slots.back_mut() else {
                continue;
            };
            let e = scope_of(t.scope, shard, overall.as_ref());
            t.latency.add(&e.latency);
            t.service.add(&e.service);
            t.outcomes.add(&e.outcomes);
            let mut latency = LatencyHistogram::new(e.latency.high());
            latency.add_sparse(&last.latency);
            latency.add(&e.latency);
            last.latency = latency.to_sparse();
            let mut service = LatencyHistogram::new(e.service.high());
            service.add_sparse(&last.service);
            service.add(&e.service);
            last.service = service.to_sparse();
            last.outcomes.add(&e.outcomes);
        }
    }

    /// The position of a budget whose most recently judged window broke it, if any:
    /// a sustained breach, for `abort_on_fail`. `abortable(position)` says which
    /// budgets may abort.
    pub fn breach(&self, abortable: impl Fn(usize) -> bool) -> Option<usize> {
        self.entries
            .iter()
            .find(|e| e.last_breached && abortable(e.position))
            .map(|e| e.position)
    }

    /// Judges the last windows and returns every windowed budget's outcome, in position
    /// order.
    pub fn finish(mut self) -> Vec<WindowOutcome> {
        self.judge_full_windows();
        // A measured phase shorter than the window: one window over all of it.
        for ti in 0..self.tracks.len() {
            let t = &self.tracks[ti];
            if t.slots.is_empty() || t.slots.len() == t.length {
                continue;
            }
            for e in self
                .entries
                .iter_mut()
                .filter(|e| e.track == ti && e.windows == 0)
            {
                e.partial = true;
                judge(e, t);
            }
        }
        self.entries
            .into_iter()
            .map(|e| {
                let worst = e.worst.map_or(Measure::NoData, |w| w.0);
                let pass = e.windows > 0 && e.breaching == 0;
                let (worst_start_s, worst_end_s) = e.worst.map_or((0.0, 0.0), |w| (w.1, w.2));
                WindowOutcome {
                    position: e.position,
                    worst,
                    pass,
                    robust: pass || e.twin.is_none() || e.twin_breaching > 0,
                    summary: WindowSummary {
                        length_s: e.budget.window_s.unwrap_or(0),
                        windows: e.windows,
                        breaching: e.breaching,
                        worst_start_s,
                        worst_end_s,
                        partial: e.partial,
                    },
                }
            })
            .collect()
    }

    fn judge_full_windows(&mut self) {
        for (ti, t) in self.tracks.iter_mut().enumerate() {
            if t.judged || t.slots.len() != t.length {
                continue;
            }
            t.judged = true;
            for e in self.entries.iter_mut().filter(|e| e.track == ti) {
                judge(e, t);
            }
        }
    }
}

/// Judges `e` on the window `t` holds now.
fn judge(e: &mut Entry, t: &Track) {
    let (Some(first), Some(last)) = (t.slots.front(), t.slots.back()) else {
        return;
    };
    let duration: f64 = t.slots.iter().map(|s| s.end_s - s.start_s).sum();
    let o = Observed {
        latency: &t.latency,
        service: &t.service,
        outcomes: &t.outcomes,
        duration_s: duration,
    };
    let m = e.budget.measure(&o);
    let held = e.budget.holds(m);
    e.windows += 1;
    e.last_breached = !held;
    if !held {
        e.breaching += 1;
    }
    if let Some(twin) = &e.twin {
        if !twin.holds(twin.measure(&o)) {
            e.twin_breaching += 1;
        }
    }
    let worse = match &e.worst {
        None => true,
        Some((w, _, _)) => badness(&e.budget, m) > badness(&e.budget, *w),
    };
    if worse {
        e.worst = Some((m, first.start_s, last.end_s));
    }
}

/// Orders measurements from best to worst for `b` (a larger key is worse).
fn badness(b: &Budget, m: Measure) -> (u8, f64) {
    let upper = matches!(b.op, Op::Lt | Op::Le);
    match m {
        Measure::NoData => (3, 0.0),
        Measure::Failed { failed, total } if upper => (2, failed as f64 / total.max(1) as f64),
        Measure::Failed { .. } => (0, f64::NEG_INFINITY),
        Measure::Value(v) if upper => (1, v),
        Measure::Value(v) => (1, -v),
    }
}

fn scope_of<'s>(
    scope: Option<usize>,
    shard: &'s Shard,
    overall: Option<&'s EndpointShard>,
) -> &'s EndpointShard {
    match scope {
        Some(i) => &shard.endpoints()[i],
        None => overall.expect("computed when a track is global"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use loadgate_metrics::{Outcome, Sample};

    /// One second of a single endpoint: `ok` successes at `us`, `bad` 503s.
    fn second(ok: u64, us: u64, bad: u64) -> Shard {
        let mut s = Shard::new(1, 60_000_000);
        let sample = |outcome| Sample {
            endpoint: 0,
            latency_us: us,
            service_us: us / 2,
            outcome,
            status: Some(200),
            bytes: 0,
            local: false,
            resent: false,
            connect_us: None,
        };
        for _ in 0..ok {
            s.record(&sample(Outcome::Success));
        }
        for _ in 0..bad {
            s.record(&sample(Outcome::Http5xx));
        }
        s
    }

    fn run(expr: &str, seconds: &[Shard], drain: Option<&Shard>) -> WindowOutcome {
        let b = crate::parse(expr).unwrap();
        let mut j = WindowJudge::new([(None, &b)], true, 60_000_000);
        for (i, s) in seconds.iter().enumerate() {
            let t = i as f64 + 2.0;
            j.push(Second {
                start_s: t,
                end_s: t + 1.0,
                shard: s,
            });
        }
        if let Some(d) = drain {
            j.fold_drain(d);
        }
        j.finish().remove(0)
    }

    /// Regression (issue 17): 503s for 2 s of every 10 s passed `error_rate < 30%` over
    /// the whole run (20%); in a 5-second window they are 40%.
    #[test]
    fn an_outage_that_the_whole_run_hides_breaks_a_window() {
        let mut seconds = Vec::new();
        for i in 0..30 {
            seconds.push(if i % 10 >= 8 {
                second(0, 0, 100)
            } else {
                second(100, 1_000, 0)
            });
        }
        let whole = run("error_rate < 30% over 30s", &seconds, None);
        assert!(whole.pass, "{whole:?}");
        assert_eq!(whole.summary.windows, 1);
        let w = run("error_rate < 30% over 5s", &seconds, None);
        assert!(!w.pass);
        assert_eq!(w.summary.windows, 26);
        assert_eq!(w.worst, Measure::Value(0.4));
        // The first window holding both seconds of a burst: s5..s9, run seconds 7..12.
        assert_eq!(
            (w.summary.worst_start_s, w.summary.worst_end_s),
            (7.0, 12.0)
        );
        // Windows that hold both seconds of a burst: four per burst, one for the last.
        assert_eq!(w.summary.breaching, 4 + 4 + 1);
    }

    #[test]
    fn windows_are_added_histograms_not_averaged_percentiles() {
        // s0: 99 fast + 1 slow; s1: 100 fast. The p99 of the two together is fast; the
        // mean of the per-second p99s is not.
        let seconds = [second(99, 1_000, 0), second(100, 1_000, 0)];
        let mut slow = second(0, 0, 0);
        slow.record(&Sample {
            endpoint: 0,
            latency_us: 5_000_000,
            service_us: 1,
            outcome: Outcome::Success,
            status: Some(200),
            bytes: 0,
            local: false,
            resent: false,
            connect_us: None,
        });
        let mut s0 = seconds[0].clone();
        s0.merge_from(&slow);
        let w = run("p99 < 2s over 2s", &[s0, seconds[1].clone()], None);
        assert!(w.pass, "{w:?}");
        assert_eq!(w.worst, Measure::Value(1_000.0));
    }

    #[test]
    fn a_run_shorter_than_the_window_is_judged_once_and_drain_joins_the_last_second() {
        let seconds = [second(10, 1_000, 0), second(10, 1_000, 0)];
        let w = run("throughput > 9rps over 1m", &seconds, None);
        assert!(
            w.pass && w.summary.partial && w.summary.windows == 1,
            "{w:?}"
        );
        assert_eq!(w.worst, Measure::Value(10.0));
        // A slow drain after the last second lands in the last window.
        let drain = second(1, 9_000_000, 0);
        let w = run("max < 5s over 1s", &seconds, Some(&drain));
        assert!(!w.pass);
        assert_eq!(w.summary.breaching, 1);
        assert_eq!(w.summary.worst_start_s, 3.0);
    }

    #[test]
    fn a_window_with_nothing_completed_fails_and_is_the_worst() {
        let seconds = [second(10, 1_000, 0), second(0, 0, 0), second(10, 1_000, 0)];
        let w = run("p95 < 1s over 1s", &seconds, None);
        assert!(!w.pass);
        assert_eq!(w.worst, Measure::NoData);
        assert_eq!(w.summary.worst_start_s, 3.0);
    }

    #[test]
    fn a_latency_breach_that_service_time_does_not_share_is_not_robust() {
        // Latency 3 s, service 1.5 s: the generator's lag alone could be the breach.
        let seconds = [second(10, 3_000_000, 0), second(10, 3_000_000, 0)];
        let w = run("p95 < 2s over 1s", &seconds, None);
        assert!(!w.pass && !w.robust);
        let w = run("p95 < 1s over 1s", &seconds, None);
        assert!(!w.pass && w.robust, "fails on service time too");
    }

    #[test]
    fn the_newest_breach_is_reported_for_aborts() {
        let b = crate::parse("error_rate < 10% over 2s").unwrap();
        let mut j = WindowJudge::new([(None, &b)], false, 60_000_000);
        let bad = second(0, 0, 10);
        let good = second(10, 1_000, 0);
        for (i, s) in [&good, &good, &bad, &bad].into_iter().enumerate() {
            j.push(Second {
                start_s: i as f64,
                end_s: i as f64 + 1.0,
                shard: s,
            });
        }
        // Windows judged so far: [0,2) fine, [1,3) breached.
        assert_eq!(j.breach(|_| true), Some(0));
        assert_eq!(j.breach(|_| false), None);
    }
}
