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
//! Seconds are pushed in order, the measured phase only, and a request counts in the
//! second it completed, as in the interval log. Hence the edges:
//! - Windows begin with the first second in which a request of the scope completed, so
//!   requests slower than a window are not read as a window with nothing in it.
//! - A window in which nothing completed is not judged on latency, errors or checks (its
//!   requests are judged in the window where they complete or time out); on throughput
//!   it is judged, at zero: the target served nothing in it.
//! - Requests still in flight when the schedule ended complete in drain seconds;
//!   [`WindowJudge::fold_drain`] adds them to the last measured second for every metric
//!   but throughput (the drain counts in no rate). A window is judged when the next
//!   second arrives (or at [`WindowJudge::finish`]), so drain can still join the last.
//! - A measured phase shorter than the window is judged once, as one shorter window.
//!   If no window could be judged, the budget has no data and fails.
//!
//! Throughput is the exception: a throughput window counts the requests *due* in it
//! (open model; sent in it, closed model) that succeeded, per second of the window, as
//! the whole-run throughput does. It never counts more than was sent in it, its first
//! seconds are not short when answers take longer than a second, and the drain counts
//! where it was due. Such a window is judged once every request due in it has completed
//! or timed out.

use std::collections::VecDeque;

use loadgate_metrics::{EndpointShard, LatencyHistogram, OutcomeCounts, Shard, Timing, Timings};
use serde::{Deserialize, Serialize};

use crate::{Budget, Measure, Metric, Observed, Op};

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
    due_tracks: Vec<DueTrack>,
    entries: Vec<Entry>,
    /// Seconds after a window's end by which every request due in it has completed or
    /// timed out (the request timeout, rounded up, and one more); throughput windows are
    /// judged then (for `abort_on_fail`), or all at [`WindowJudge::finish`].
    settle_s: u64,
}

/// One scope's successes by the second they were due in, for throughput windows: a
/// window counts the requests due in it that succeeded, as the whole-run throughput
/// does, so it never counts more than was sent in it, and answers slower than a second
/// do not leave its first seconds short. A window is judged once every request due in it
/// has completed (`settle_s` after its end, or at the end of the run).
#[derive(Debug)]
struct DueTrack {
    scope: Option<usize>,
    length: u64,
    /// Each measured second's start and end (seconds of the run).
    seconds: std::collections::BTreeMap<u64, (f64, f64)>,
    /// Successes by due second.
    counts: std::collections::BTreeMap<u64, u64>,
    /// The first window start not judged yet.
    next: Option<u64>,
}

/// One scope's seconds for one window length, shared by the budgets that need them.
#[derive(Debug)]
struct Track {
    /// `None`: all endpoints.
    scope: Option<usize>,
    length: usize,
    slots: VecDeque<Slot>,
    /// The timings its budgets (and their service twins) measure.
    used: Vec<Timing>,
    /// The window's histogram of each timing (only those `used` hold values).
    timings: Timings<LatencyHistogram>,
    outcomes: OutcomeCounts,
    scratch: LatencyHistogram,
    /// Whether the newest slot's window has been judged.
    judged: bool,
    /// Whether a request of this scope has completed yet (windows begin there).
    begun: bool,
}

#[derive(Debug)]
struct Slot {
    start_s: f64,
    end_s: f64,
    /// A sparse copy of the second's histogram of each timing in `Track::used`.
    timings: Vec<Vec<(u64, u64)>>,
    outcomes: OutcomeCounts,
}

#[derive(Debug)]
struct Entry {
    position: usize,
    track: usize,
    /// `track` indexes `due_tracks` (a throughput budget), not `tracks`.
    due: bool,
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
    /// `timeout`: the request timeout, after which a throughput window is final while
    /// the run goes on; `None` judges them all at the end (a merge, which has every
    /// second already).
    pub fn new<'a>(
        budgets: impl IntoIterator<Item = (Option<usize>, &'a Budget)>,
        open: bool,
        max_us: u64,
        timeout: Option<std::time::Duration>,
    ) -> WindowJudge {
        let mut tracks: Vec<Track> = Vec::new();
        let mut due_tracks: Vec<DueTrack> = Vec::new();
        let mut entries = Vec::new();
        for (position, (scope, b)) in budgets.into_iter().enumerate() {
            let Some(length) = b.window_s else { continue };
            if b.metric == Metric::Throughput {
                let track = match due_tracks
                    .iter()
                    .position(|t| t.scope == scope && t.length == length)
                {
                    Some(t) => t,
                    None => {
                        due_tracks.push(DueTrack {
                            scope,
                            length,
                            seconds: Default::default(),
                            counts: Default::default(),
                            next: None,
                        });
                        due_tracks.len() - 1
                    }
                };
                entries.push(Entry::new(position, track, true, b.clone(), None));
                continue;
            }
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
                        used: Vec::new(),
                        timings: Timings::from_fn(|_| LatencyHistogram::new(max_us)),
                        outcomes: OutcomeCounts::default(),
                        scratch: LatencyHistogram::new(max_us),
                        judged: true,
                        begun: false,
                    });
                    tracks.len() - 1
                }
            };
            let twin = b
                .timing
                .service_twin()
                .filter(|_| open && b.is_latency())
                .map(|timing| Budget {
                    timing,
                    ..b.clone()
                });
            let t = &mut tracks[track];
            for timing in std::iter::once(b.timing).chain(twin.as_ref().map(|b| b.timing)) {
                if !t.used.contains(&timing) {
                    t.used.push(timing);
                }
            }
            entries.push(Entry::new(position, track, false, b.clone(), twin));
        }
        WindowJudge {
            tracks,
            due_tracks,
            entries,
            settle_s: timeout.map_or(u64::MAX, |t| t.as_secs_f64().ceil() as u64 + 1),
        }
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
        let overall = (self.tracks.iter().any(|t| t.scope.is_none())
            || self.due_tracks.iter().any(|t| t.scope.is_none()))
        .then(|| second.shard.overall());
        let index = second.start_s as u64;
        for (ti, t) in self.due_tracks.iter_mut().enumerate() {
            let e = scope_of(t.scope, second.shard, overall.as_ref());
            t.seconds.insert(index, (second.start_s, second.end_s));
            t.next.get_or_insert(index);
            for (s, n) in e.due_successes.iter() {
                *t.counts.entry(s).or_insert(0) += n;
            }
            // Every request due before `index + 1 - settle_s` has completed by now.
            let settled = (index + 1).saturating_sub(self.settle_s);
            judge_due(t, ti, &mut self.entries, Some(settled));
        }
        for t in &mut self.tracks {
            let e = scope_of(t.scope, second.shard, overall.as_ref());
            t.begun |= e.completed() > 0;
            if !t.begun {
                continue;
            }
            if t.slots.len() == t.length {
                let old = t
                    .slots
                    .pop_front()
                    .expect("a full window has a first second");
                for (&timing, old) in t.used.iter().zip(&old.timings) {
                    t.timings[timing].subtract_sparse(old, &mut t.scratch);
                }
                t.outcomes.subtract(&old.outcomes);
            }
            for &timing in &t.used {
                t.timings[timing].add(&e.timings[timing]);
            }
            t.outcomes.add(&e.outcomes);
            t.slots.push_back(Slot {
                start_s: second.start_s,
                end_s: second.end_s,
                timings: t.used.iter().map(|&u| e.timings[u].to_sparse()).collect(),
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
        let overall = (self.tracks.iter().any(|t| t.scope.is_none())
            || self.due_tracks.iter().any(|t| t.scope.is_none()))
        .then(|| shard.overall());
        for t in &mut self.due_tracks {
            let e = scope_of(t.scope, shard, overall.as_ref());
            for (s, n) in e.due_successes.iter() {
                *t.counts.entry(s).or_insert(0) += n;
            }
        }
        for t in &mut self.tracks {
            let Some(last) = t.slots.back_mut() else {
                continue;
            };
            let e = scope_of(t.scope, shard, overall.as_ref());
            for (&timing, kept) in t.used.iter().zip(last.timings.iter_mut()) {
                let h = &e.timings[timing];
                t.timings[timing].add(h);
                let mut both = LatencyHistogram::new(h.high());
                both.add_sparse(kept);
                both.add(h);
                *kept = both.to_sparse();
            }
            t.outcomes.add(&e.outcomes);
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
        // Every request has completed: the remaining throughput windows are final.
        for (ti, t) in self.due_tracks.iter_mut().enumerate() {
            judge_due(t, ti, &mut self.entries, None);
        }
        // A measured phase shorter than the window: one window over all of it.
        for ti in 0..self.tracks.len() {
            let t = &self.tracks[ti];
            if t.slots.is_empty() || t.slots.len() == t.length {
                continue;
            }
            for e in self
                .entries
                .iter_mut()
                .filter(|e| !e.due && e.track == ti && e.windows == 0)
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
                    // No window at all is no data, not the generator's doing.
                    robust: pass || e.windows == 0 || e.twin.is_none() || e.twin_breaching > 0,
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
            for e in self.entries.iter_mut().filter(|e| !e.due && e.track == ti) {
                judge(e, t);
            }
        }
    }
}

impl Entry {
    fn new(
        position: usize,
        track: usize,
        due: bool,
        budget: Budget,
        twin: Option<Budget>,
    ) -> Entry {
        Entry {
            position,
            track,
            due,
            budget,
            twin,
            windows: 0,
            breaching: 0,
            twin_breaching: 0,
            worst: None,
            partial: false,
            last_breached: false,
        }
    }

    /// Counts one judged window, from `start_s` to `end_s`, that measured `m`.
    fn judged(&mut self, m: Measure, start_s: f64, end_s: f64) {
        let held = self.budget.holds(m);
        self.windows += 1;
        self.last_breached = !held;
        if !held {
            self.breaching += 1;
        }
        let worse = match &self.worst {
            None => true,
            Some((w, _, _)) => badness(&self.budget, m) > badness(&self.budget, *w),
        };
        if worse {
            self.worst = Some((m, start_s, end_s));
        }
    }
}

/// Judges the throughput windows of due track `ti` that are final: those that end at or
/// before `settled` (a second index), or every one left when `settled` is `None` (the
/// run is over). A measured phase shorter than the window is judged once, whole.
fn judge_due(t: &mut DueTrack, ti: usize, entries: &mut [Entry], settled: Option<u64>) {
    let Some(last) = t.seconds.keys().next_back().copied() else {
        return;
    };
    let first = *t.seconds.keys().next().expect("not empty");
    let mut judge_window = |from: u64, to: u64, partial: bool| {
        let (mut successes, mut duration) = (0u64, 0f64);
        for (_, &(a, b)) in t.seconds.range(from..to) {
            duration += b - a;
        }
        for (_, &n) in t.counts.range(from..to) {
            successes += n;
        }
        let m = if duration > 0.0 {
            Measure::Value(successes as f64 / duration)
        } else {
            Measure::NoData
        };
        // Seconds missing from the middle (a merge of segments that share none) are
        // skipped, never indexed.
        let (Some(&(start_s, _)), Some(&(_, end_s))) = (
            t.seconds.range(from..to).next().map(|(_, v)| v),
            t.seconds.range(from..to).next_back().map(|(_, v)| v),
        ) else {
            return;
        };
        for e in entries.iter_mut().filter(|e| e.due && e.track == ti) {
            e.partial |= partial;
            e.judged(m, start_s, end_s);
        }
    };
    while let Some(from) = t.next {
        let to = from + t.length;
        let full = to <= last + 1;
        let fin = settled.is_none_or(|s| to <= s);
        if !full || !fin {
            break;
        }
        judge_window(from, to, false);
        t.next = Some(from + 1);
    }
    // The run is over and shorter than one window: judge it whole, once.
    if settled.is_none() && t.next == Some(first) && last + 1 - first < t.length {
        judge_window(first, last + 1, true);
        t.next = None;
    }
    // Seconds no window to come can reach.
    if let Some(next) = t.next {
        t.seconds.retain(|&s, _| s >= next);
        t.counts.retain(|&s, _| s >= next);
    }
}

/// Judges `e` on the window `t` holds now.
fn judge(e: &mut Entry, t: &Track) {
    let (Some(first), Some(last)) = (t.slots.front(), t.slots.back()) else {
        return;
    };
    if t.outcomes.total() == 0 {
        // Nothing completed: nothing to judge here (see the module documentation).
        return;
    }
    let duration: f64 = t.slots.iter().map(|s| s.end_s - s.start_s).sum();
    let o = Observed {
        timings: &t.timings,
        outcomes: &t.outcomes,
        duration_s: duration,
        // Goodput and attainment take no window (refused by the parser).
        good: 0,
    };
    if let Some(twin) = &e.twin {
        if !twin.holds(twin.measure(&o)) {
            e.twin_breaching += 1;
        }
    }
    e.judged(e.budget.measure(&o), first.start_s, last.end_s);
}

/// Orders measurements from best to worst for `b` (a larger key is worse).
fn badness(b: &Budget, m: Measure) -> (u8, f64) {
    let upper = matches!(b.op, Op::Lt | Op::Le);
    match m {
        Measure::NoData => (3, 0.0),
        Measure::Failed { failed, total } => (2, failed as f64 / total.max(1) as f64),
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
            service_us: us / 2,
            status: Some(200),
            ..Sample::new(0, outcome, us)
        };
        for _ in 0..ok {
            s.record(&sample(Outcome::Success));
        }
        for _ in 0..bad {
            s.record(&sample(Outcome::Http5xx));
        }
        s
    }

    /// `shard` with its successes counted as due `lag_s` seconds before second `t`,
    /// unless it says when they were due already.
    fn due(shard: &Shard, t: u64, lag_s: u64) -> Shard {
        let mut s = shard.clone();
        let e = &s.endpoints()[0];
        if e.due_successes.is_empty() {
            for _ in 0..e.successes() {
                s.record_due_success(0, t.saturating_sub(lag_s));
            }
        }
        s
    }

    /// Seconds 2, 3, ... of a run with `seconds` (their successes due in the second they
    /// completed, unless they say otherwise), then `drain` (due in the last second).
    fn run(expr: &str, seconds: &[Shard], drain: Option<&Shard>) -> WindowOutcome {
        let b = crate::parse(expr).unwrap();
        let mut j = WindowJudge::new([(None, &b)], true, 60_000_000, None);
        for (i, s) in seconds.iter().enumerate() {
            let t = i as u64 + 2;
            j.push(Second {
                start_s: t as f64,
                end_s: t as f64 + 1.0,
                shard: &due(s, t, 0),
            });
        }
        if let Some(d) = drain {
            j.fold_drain(&due(d, seconds.len() as u64 + 1, 0));
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
            service_us: 1,
            status: Some(200),
            ..Sample::new(0, Outcome::Success, 5_000_000)
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

    /// Regression (issue 17 review): requests slower than the window made the first
    /// windows "no data" and failed a healthy target; a second with nothing due failed
    /// a low-rate run.
    #[test]
    fn windows_begin_at_the_first_completion_and_skip_seconds_with_nothing_completed() {
        // 3 s answers at 10/s, seconds 2..11: nothing completes in the first 3 seconds,
        // then 10 a second, each due 3 s before; the last 30 complete in the drain.
        let mut seconds = vec![second(0, 0, 0), second(0, 0, 0), second(0, 0, 0)];
        seconds.extend((5..12).map(|t| due(&second(10, 3_000_000, 0), t, 3)));
        let mut drain = second(30, 3_000_000, 0);
        for t in 9..12 {
            for _ in 0..10 {
                drain.record_due_success(0, t);
            }
        }
        let w = run("p95 < 5s over 2s", &seconds, Some(&drain));
        assert!(w.pass, "{w:?}");
        assert_eq!(w.summary.windows, 6, "from the first completion on");
        assert_eq!(w.summary.worst_start_s, 5.0);
        // Throughput counts each success in the second it was due: no window is short.
        let w = run("throughput >= 10rps over 3s", &seconds, Some(&drain));
        assert!(w.pass && w.summary.windows == 8, "{w:?}");
        assert_eq!(
            (w.worst, w.summary.worst_start_s),
            (Measure::Value(10.0), 2.0)
        );
        // An empty second in the middle is skipped for latency, and is zero throughput.
        let seconds = [second(10, 1_000, 0), second(0, 0, 0), second(10, 1_000, 0)];
        let w = run("p95 < 1s over 1s", &seconds, None);
        assert!(w.pass && w.summary.windows == 2, "{w:?}");
        let w = run("throughput > 5rps over 1s", &seconds, None);
        assert!(!w.pass, "the target served nothing that second: {w:?}");
        assert_eq!(w.worst, Measure::Value(0.0));
        assert_eq!(w.summary.worst_start_s, 3.0);
        // Nothing completed at all: no data, and no window judged.
        let w = run("p95 < 1s over 1s", &[second(0, 0, 0)], None);
        assert!(!w.pass && w.robust && w.summary.windows == 0, "{w:?}");
        assert_eq!(w.worst, Measure::NoData);
    }

    #[test]
    fn drain_counts_in_the_last_window_and_throughput_where_it_was_due() {
        let seconds = [second(10, 1_000, 0), second(10, 1_000, 0)];
        // Five more due in the last second (3) completed in the drain.
        let w = run(
            "throughput < 15rps over 1s",
            &seconds,
            Some(&second(5, 1_000, 0)),
        );
        assert!(!w.pass && w.worst == Measure::Value(15.0), "{w:?}");
        assert_eq!(w.summary.worst_start_s, 3.0);
        let w = run("error_rate < 1% over 1s", &seconds, Some(&second(0, 0, 5)));
        assert!(!w.pass && w.summary.worst_start_s == 3.0, "{w:?}");
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
        let mut j = WindowJudge::new([(None, &b)], false, 60_000_000, None);
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
