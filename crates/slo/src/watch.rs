//! Budgets watched while the run goes: an [`Observer`] that judges the windowed budgets
//! as each measured second finishes and stops the run when an `abort_on_fail` budget is
//! breached.
//!
//! The engine only produces intervals and honours a stop; whether a breach ends the run
//! is decided here, beside the budgets, from the same seconds the verdict is later given
//! ([`BudgetWatch::finish`] hands the windows' outcomes to [`crate::judge`]). Windows are
//! judged by [`WindowJudge`] (warm-up skipped, drain folded into the last measured
//! second); a whole-run budget is judged on everything measured so far, a windowed one
//! by its latest window, so a windowed abort is a sustained breach.
//!
//! Not here: the verdict, how intervals are produced, what else watches them.

use std::time::Duration;

use loadgate_metrics::{Abort, Control, IntervalView, Observer, RunStarted, Shard};

use crate::window::{Second, WindowJudge, WindowOutcome};
use crate::{Budget, Observed};

/// A budget as [`BudgetWatch`] takes it.
#[derive(Debug, Clone)]
pub struct Watched {
    /// `None`: all endpoints; else the endpoint's index.
    pub scope: Option<usize>,
    /// The budget.
    pub budget: Budget,
    /// `abort_on_fail`: `Some(delay)` stops the run at a breach once the measured phase
    /// is `delay` old; `None` never stops it.
    pub abort_after: Option<Duration>,
}

/// Judges a run's budgets as its intervals finish: every windowed budget's windows, and
/// each `abort_on_fail` budget after every measured second.
#[derive(Debug)]
pub struct BudgetWatch {
    budgets: Vec<Watched>,
    windows: WindowJudge,
    /// Endpoint names, as the run tells them at its start.
    names: Vec<String>,
    warmup_intervals: u64,
    /// This watch has asked the run to stop.
    stopped: bool,
}

impl BudgetWatch {
    /// A watch over `budgets`, numbered in the order given (the order the verdict lists
    /// them: `Slo::scoped`'s). `open`, `max_us` and `timeout` are [`WindowJudge::new`]'s.
    pub fn new(
        budgets: Vec<Watched>,
        open: bool,
        max_us: u64,
        timeout: Option<Duration>,
    ) -> BudgetWatch {
        let windows = WindowJudge::new(
            budgets.iter().map(|w| (w.scope, &w.budget)),
            open,
            max_us,
            timeout,
        );
        BudgetWatch {
            budgets,
            windows,
            names: Vec::new(),
            warmup_intervals: 0,
            stopped: false,
        }
    }

    /// Judges the last windows and returns every windowed budget's outcome, in position
    /// order (see [`WindowJudge::finish`]).
    pub fn finish(self) -> Vec<WindowOutcome> {
        self.windows.finish()
    }

    /// Where a budget of `scope` applies, as a stop reason names it.
    fn scope_name(&self, scope: Option<usize>) -> String {
        match scope {
            None => "global".into(),
            Some(i) => self
                .names
                .get(i)
                .cloned()
                .unwrap_or_else(|| format!("endpoint {i}")),
        }
    }

    /// The first `abort_on_fail` budget breached after `elapsed_s` measured seconds, if
    /// any: a windowed one by its latest window, then the whole-run ones on `measured`.
    fn breach(&self, measured: &Shard, elapsed_s: f64) -> Option<Abort> {
        let elapsed = Duration::from_secs_f64(elapsed_s);
        let may_abort = |w: &Watched| w.abort_after.is_some_and(|delay| elapsed >= delay);
        let abort = |w: &Watched| Abort {
            scope: self.scope_name(w.scope),
            budget: w.budget.text.clone(),
        };
        if let Some(p) = self.windows.breach(|p| may_abort(&self.budgets[p])) {
            return Some(abort(&self.budgets[p]));
        }
        let mut overall = None;
        for w in &self.budgets {
            if w.budget.window_s.is_some() || !may_abort(w) {
                continue;
            }
            let e = match w.scope {
                None => &*overall.get_or_insert_with(|| measured.overall()),
                Some(i) => &measured.endpoints()[i],
            };
            let o = Observed::of(e, elapsed_s);
            if !w.budget.evaluate(&self.scope_name(w.scope), &o).pass {
                return Some(abort(w));
            }
        }
        None
    }
}

impl Observer for BudgetWatch {
    fn started(&mut self, run: &RunStarted<'_>) {
        self.names = run.endpoints.to_vec();
        self.warmup_intervals = run.warmup_intervals;
    }

    fn interval(&mut self, v: &IntervalView<'_>) -> Control {
        if v.warmup {
            return Control::Continue;
        }
        if v.drain {
            self.windows.fold_drain(v.data);
            return Control::Continue;
        }
        self.windows.push(Second {
            start_s: v.index as f64,
            end_s: v.end_s,
            shard: v.data,
        });
        if self.stopped {
            return Control::Continue;
        }
        let elapsed_s = (v.index + 1).saturating_sub(self.warmup_intervals) as f64;
        match self.breach(v.cumulative, elapsed_s) {
            Some(abort) => {
                self.stopped = true;
                Control::Stop(abort)
            }
            None => Control::Continue,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use loadgate_metrics::{Outcome, Sample};

    const MAX_US: u64 = 60_000_000;

    /// One second of endpoints `api` (0) and `img` (1): `ok` successes of `api` at `us`,
    /// `bad` 503s of `api`, and one quick success of `img`.
    fn second(t: u64, ok: u64, us: u64, bad: u64) -> Shard {
        let mut s = Shard::new(2, MAX_US);
        for (n, outcome) in [(ok, Outcome::Success), (bad, Outcome::Http5xx)] {
            for _ in 0..n {
                s.record(&Sample::new(0, outcome, us));
                s.record_send(0, None, false);
            }
        }
        for _ in 0..ok {
            s.record_due_success(0, t);
        }
        s.record(&Sample::new(1, Outcome::Success, 1_000));
        s.record_send(1, None, false);
        s.record_due_success(1, t);
        s
    }

    fn watched(scope: Option<usize>, expr: &str, abort_after: Option<u64>) -> Watched {
        Watched {
            scope,
            budget: crate::parse(expr).unwrap(),
            abort_after: abort_after.map(Duration::from_secs),
        }
    }

    /// Feeds `watch` a run of `seconds` after `warmup` warm-up seconds (of the same
    /// second's data), then `drain` drain seconds, as the engine would; returns what it
    /// answered to each interval, by index.
    fn drive(
        watch: &mut BudgetWatch,
        warmup: u64,
        seconds: &[Shard],
        drain: u64,
    ) -> Vec<(u64, Control)> {
        let names = ["api".to_string(), "img".to_string()];
        watch.started(&RunStarted {
            at: std::time::UNIX_EPOCH,
            interval: Duration::from_secs(1),
            endpoints: &names,
            warmup_intervals: warmup,
        });
        let mut answers = Vec::new();
        let mut warm = Shard::new(2, MAX_US);
        let mut measured = Shard::new(2, MAX_US);
        let end = (warmup + seconds.len() as u64) as f64;
        let quiet = second(0, 0, 0, 0);
        let all = (0..warmup)
            .map(|_| (true, false, &seconds[0]))
            .chain(seconds.iter().map(|s| (false, false, s)))
            .chain((0..drain).map(|_| (false, true, &quiet)));
        for (index, (warmup, drain, data)) in all.enumerate() {
            let index = index as u64;
            let cumulative = if warmup { &mut warm } else { &mut measured };
            cumulative.merge_into_totals(data);
            let answer = watch.interval(&IntervalView {
                index,
                warmup,
                drain,
                end_s: ((index + 1) as f64).min(end),
                data,
                target: 0.0,
                cumulative,
                pauses: None,
            });
            answers.push((index, answer));
        }
        answers
    }

    fn stops(answers: &[(u64, Control)]) -> Vec<(u64, Abort)> {
        answers
            .iter()
            .filter_map(|(i, c)| match c {
                Control::Stop(a) => Some((*i, a.clone())),
                Control::Continue => None,
            })
            .collect()
    }

    fn abort(scope: &str, budget: &str) -> Abort {
        Abort {
            scope: scope.into(),
            budget: budget.into(),
        }
    }

    #[test]
    fn an_endpoint_budget_stops_the_run_once_its_delay_is_past_and_only_once() {
        let mut w = BudgetWatch::new(
            vec![
                watched(None, "p50 < 1s", Some(0)),
                watched(Some(0), "p50 < 10ms", Some(2)),
            ],
            true,
            MAX_US,
            None,
        );
        let slow: Vec<Shard> = (2..8).map(|t| second(t, 10, 50_000, 0)).collect();
        let answers = drive(&mut w, 2, &slow, 1);
        // Warm-up seconds 0 and 1 are never judged; measured second 3 is the second one.
        assert_eq!(stops(&answers), vec![(3, abort("api", "p50 < 10ms"))]);
    }

    #[test]
    fn a_global_budget_is_judged_on_every_endpoint_and_named_global() {
        let mut w = BudgetWatch::new(
            vec![watched(None, "error_rate < 10%", Some(0))],
            true,
            MAX_US,
            None,
        );
        // 1 of 12 requests fails (8%), then 4 of 15 over both seconds (27%).
        let seconds = [second(0, 10, 1_000, 1), second(1, 8, 1_000, 3)];
        let answers = drive(&mut w, 0, &seconds, 0);
        assert_eq!(
            stops(&answers),
            vec![(1, abort("global", "error_rate < 10%"))]
        );
    }

    #[test]
    fn a_windowed_budget_stops_at_its_first_breached_window() {
        let mut w = BudgetWatch::new(
            vec![watched(Some(0), "error_rate < 30% over 2s", Some(0))],
            true,
            MAX_US,
            None,
        );
        let mut seconds: Vec<Shard> = (0..4).map(|t| second(t, 10, 1_000, 0)).collect();
        seconds.extend((4..8).map(|t| second(t, 5, 1_000, 5)));
        let answers = drive(&mut w, 0, &seconds, 0);
        // Seconds 3 and 4 hold (25% errors); seconds 4 and 5 do not (50%), and that
        // window is judged when second 6 arrives.
        assert_eq!(
            stops(&answers),
            vec![(6, abort("api", "error_rate < 30% over 2s"))]
        );
    }

    /// A goodput window stops the run as any windowed budget does: 10 successes of `api`
    /// a second, good until second 4 and none good after (their first token too late).
    #[test]
    fn a_goodput_window_stops_the_run_at_its_first_breached_window() {
        let mut w = BudgetWatch::new(
            vec![
                watched(Some(0), "goodput > 4rps over 2s", Some(0)),
                watched(None, "goodput > 1rps", Some(0)),
            ],
            true,
            MAX_US,
            None,
        );
        let seconds: Vec<Shard> = (0..8)
            .map(|t| {
                let mut s = second(t, 0, 0, 0);
                for _ in 0..10 {
                    s.record(&Sample {
                        good: t < 4,
                        good_service: t < 4,
                        ..Sample::new(0, Outcome::Success, 1_000)
                    });
                }
                s
            })
            .collect();
        let answers = drive(&mut w, 0, &seconds, 0);
        // Seconds 3 and 4 hold (5 rps); 4 and 5 do not (0), judged when 6 arrives. The
        // whole run's goodput (over 1 rps with `img`) never breaks.
        assert_eq!(
            stops(&answers),
            vec![(6, abort("api", "goodput > 4rps over 2s"))]
        );
    }

    #[test]
    fn a_budget_without_abort_on_fail_never_stops_the_run() {
        let mut w = BudgetWatch::new(
            vec![
                watched(None, "p50 < 1ms", None),
                watched(Some(0), "error_rate < 1% over 2s", None),
            ],
            true,
            MAX_US,
            None,
        );
        let seconds: Vec<Shard> = (0..5).map(|t| second(t, 5, 50_000, 5)).collect();
        assert_eq!(stops(&drive(&mut w, 1, &seconds, 2)), vec![]);
    }

    /// The verdict gets the windows the watch judged: the same outcomes as a
    /// [`WindowJudge`] given the measured seconds and the drain directly.
    #[test]
    fn the_watch_hands_the_verdict_the_windows_a_window_judge_would() {
        let budgets = vec![
            watched(None, "p95 < 20ms over 3s", Some(60)),
            watched(Some(0), "error_rate < 20% over 2s", None),
            watched(Some(1), "throughput > 0.5rps over 2s", None),
            watched(None, "p99 < 1s", None),
            watched(None, "goodput > 5rps over 2s", None),
            watched(Some(0), "attainment > 90% over 3s", None),
        ];
        let seconds: Vec<Shard> = (1..9)
            .map(|t| second(t, 10, 1_000 * t * t, t % 3))
            .collect();
        let mut w = BudgetWatch::new(budgets.clone(), true, MAX_US, Some(Duration::from_secs(2)));
        drive(&mut w, 1, &seconds, 2);
        let mut direct = WindowJudge::new(
            budgets.iter().map(|b| (b.scope, &b.budget)),
            true,
            MAX_US,
            Some(Duration::from_secs(2)),
        );
        for (i, s) in seconds.iter().enumerate() {
            let t = i as f64 + 1.0;
            direct.push(Second {
                start_s: t,
                end_s: t + 1.0,
                shard: s,
            });
        }
        let quiet = second(0, 0, 0, 0);
        direct.fold_drain(&quiet);
        direct.fold_drain(&quiet);
        let (watched, direct) = (w.finish(), direct.finish());
        assert_eq!(watched.len(), 5);
        assert_eq!(watched, direct);
    }
}
