//! What a run of a scenario is judged by: the scenario's budgets, validity thresholds and
//! load plan, turned into `loadgate-slo`'s inputs.
//!
//! `run`, each `capacity` step and (through the plan written in `run.json`) `merge` and
//! the recovery of a killed run judge alike because they all take their inputs here:
//! [`Scenario::judge`] (the verdict's input), [`Scenario::budget_watch`] (windows and
//! `abort_on_fail` while the run goes), [`Scenario::segment_plan`] (what every segment
//! of a split load shares, and what a single run is judged by), and the capacity
//! search's rewriting of throughput budgets ([`Scenario::throughput_floor`],
//! [`Scenario::offer_throughput`]).
//!
//! Not here: the verdict itself (`loadgate_slo::judge`), sending load, writing files.

use loadgate_metrics::{Pauses, Shard};
use loadgate_slo::capacity::num;
use loadgate_slo::judge::{judge, Input, Judgement, Stop};
use loadgate_slo::summary::{GoodputLimits, LoadSummary, SegmentPlan};
use loadgate_slo::watch::{BudgetWatch, Watched};
use loadgate_slo::window::WindowOutcome;
use loadgate_slo::{Budget, Metric, Op};

use crate::{LoadModel, Scenario};

/// What a finished run measured and how it ended: with the scenario, everything its
/// verdict depends on.
#[derive(Debug, Clone, Copy)]
pub struct RunFacts<'a> {
    /// Endpoint names, in the scenario's order.
    pub names: &'a [String],
    /// The measured phase (after warm-up).
    pub measured: &'a Shard,
    /// Length of the measured phase in seconds.
    pub measured_s: f64,
    /// Open model: arrivals the schedule asked for in the measured phase.
    pub scheduled: Option<f64>,
    /// Open model: arrivals never sent because the generator fell behind.
    pub missed: u64,
    /// The pause meter's counts, when it ran.
    pub pauses: Option<Pauses>,
    /// How the run ended.
    pub stop: Stop,
    /// The windowed budgets' outcomes, from the run's [`Scenario::budget_watch`].
    pub windows: &'a [WindowOutcome],
}

/// A throughput budget that the capacity search could never meet: its endpoint gets no
/// arrivals.
#[derive(Debug, Clone, thiserror::Error)]
#[error("endpoint `{endpoint}` has weight 0, so it gets no arrivals and its budget `{budget}` can never be met\n  hint: give it a weight, or remove the budget")]
pub struct WeightlessBudget {
    /// The endpoint's name.
    pub endpoint: String,
    /// The budget as written.
    pub budget: String,
}

impl LoadModel {
    /// `open` or `closed`, as `summary.json` and the console name it.
    pub fn name(self) -> &'static str {
        match self {
            LoadModel::Open => "open",
            LoadModel::Closed => "closed",
        }
    }
}

impl Scenario {
    /// The bound of a run's histograms, µs: three times the longest endpoint timeout, at
    /// least a minute.
    pub fn histogram_max_us(&self) -> u64 {
        (self.longest_timeout().as_micros() as u64)
            .saturating_mul(3)
            .max(60_000_000)
    }

    /// Judges a finished run against the scenario's budgets and, in the open model, the
    /// generator's validity thresholds.
    pub fn judge(&self, run: &RunFacts<'_>) -> Judgement {
        let budgets: Vec<_> = self
            .slo
            .scoped()
            .into_iter()
            .map(|(scope, b)| (scope, &b.budget))
            .collect();
        let open = run.scheduled.map(|scheduled| {
            self.segment_plan()
                .open_facts(scheduled, run.missed, run.pauses)
        });
        let goodput_limits = self.goodput_limits();
        judge(&Input {
            goodput_limits: &goodput_limits,
            names: run.names,
            measured: run.measured,
            measured_s: run.measured_s,
            budgets: &budgets,
            windows: run.windows,
            open,
            stop: run.stop,
            invalid_before: &[],
        })
    }

    /// The observer that watches the budgets while the run goes: it judges the windowed
    /// ones as seconds finish (its [`BudgetWatch::finish`] is [`RunFacts::windows`]) and
    /// stops the run at an `abort_on_fail` breach.
    pub fn budget_watch(&self) -> BudgetWatch {
        let budgets = self
            .slo
            .scoped()
            .into_iter()
            .map(|(scope, b)| Watched {
                scope,
                budget: b.budget.clone(),
                abort_after: b.abort_on_fail.then_some(b.abort_delay),
            })
            .collect();
        BudgetWatch::new(
            budgets,
            self.load.model == LoadModel::Open,
            self.histogram_max_us(),
            // A throughput window is final once the last request due in it has had
            // the longest timeout of any endpoint to end.
            Some(self.longest_timeout()),
        )
    }

    /// The budgets as `scope: expression` (`global: p95 < 2s`, `analyze: p99 < 1s`),
    /// global ones first: how `capacity.json` and a segment's plan list them.
    pub fn budget_labels(&self) -> Vec<String> {
        self.slo
            .scoped()
            .into_iter()
            .map(|(scope, b)| format!("{}: {}", self.scope_name(scope), b.budget.text))
            .collect()
    }

    /// The goodput limits of each endpoint that sets any, by name, as `summary.json`
    /// states them (what its good requests met).
    pub fn goodput_limits(&self) -> std::collections::BTreeMap<String, GoodputLimits> {
        let us = |d: Option<std::time::Duration>| d.map(|d| d.as_micros() as u64);
        self.endpoints
            .iter()
            .map(|e| {
                let g = &e.goodput;
                let limits = GoodputLimits {
                    latency_us: us(g.latency),
                    ttfb_us: us(g.ttfb),
                    ttft_us: us(g.ttft),
                    itl_us: us(g.itl),
                };
                (e.name.clone(), limits)
            })
            .filter(|(_, l)| !l.is_empty())
            .collect()
    }

    /// `global`, or the endpoint's name.
    fn scope_name(&self, scope: Option<usize>) -> &str {
        scope.map_or("global", |i| {
            if let Some(e) = self.endpoints.get(i) {
                e.name.as_str()
            } else if let Some(f) = self.flow_of_row(i) {
                f.name.as_str()
            } else {
                let poll = i - self.endpoints.len() - self.flows.len();
                self.polls().nth(poll).map_or("?", |(_, u)| u.name.as_str())
            }
        })
    }

    /// The load asked for, in words and at its peak.
    pub fn load_summary(&self) -> LoadSummary {
        LoadSummary {
            profile: self.segment_plan().profile,
            peak: self.load.peak(),
        }
    }

    /// What every segment of one split load must share (see `loadgate merge`); also what
    /// a single run is judged by, so that a run and a merge judge alike.
    pub fn segment_plan(&self) -> SegmentPlan {
        let load = &self.load;
        let unit = match load.model {
            LoadModel::Open => "rps",
            LoadModel::Closed => "VUs",
        };
        let mut profile = format!("from {} {unit}", load.start);
        for s in &load.stages {
            profile.push_str(&format!(
                ", {} to {} {unit}",
                humantime::format_duration(s.duration),
                s.target
            ));
        }
        if load.model == LoadModel::Closed && !load.think_time.is_zero() {
            profile.push_str(&format!(
                ", think {}",
                humantime::format_duration(load.think_time)
            ));
        }
        SegmentPlan {
            model: load.model.name().to_string(),
            profile,
            warmup_s: load.warmup.as_secs_f64(),
            endpoints: self
                .endpoints
                .iter()
                .map(|e| format!("{}*{}", e.name, e.weight))
                .chain(self.flows.iter().map(|f| {
                    let steps: Vec<&str> = f
                        .steps
                        .iter()
                        .map(|s| self.endpoints[s.endpoint].name.as_str())
                        .collect();
                    format!("flow {}*{} ({})", f.name, f.weight, steps.join(", "))
                }))
                .chain(
                    self.auth
                        .iter()
                        .map(|a| format!("auth {} (scope {})", a.endpoint.name, a.scope.name())),
                )
                .collect(),
            budgets: self.budget_labels(),
            data_rows: self.data.as_ref().map(|d| d.rows.len() as u64),
            timeouts_ms: self
                .endpoints
                .iter()
                .map(|e| (e.name.clone(), e.timeout.as_secs_f64() * 1000.0))
                .chain(
                    self.composite_names()
                        .into_iter()
                        .enumerate()
                        .map(|(i, name)| {
                            let bound = self.row_bound(self.endpoints.len() + i);
                            (name, bound.as_secs_f64() * 1000.0)
                        }),
                )
                .chain(self.auth.iter().map(|a| {
                    (
                        a.endpoint.name.clone(),
                        a.endpoint.timeout.as_secs_f64() * 1000.0,
                    )
                }))
                .collect(),
            late_tolerance_ms: load.late_tolerance.as_secs_f64() * 1000.0,
            send_window_ms: load.send_window.as_secs_f64() * 1000.0,
            min_achieved_ratio: load.validity.min_achieved_ratio,
            max_late_ratio: load.validity.max_late_ratio,
            max_dropped_ratio: load.validity.max_dropped_ratio,
            validity: load.validity.mode.name().to_string(),
        }
    }

    /// Segment `segment` (`I/N`, as written) of `count` sends 1/`count` of the load, so
    /// each throughput and goodput budget (and its `abort_on_fail`, and its windows) is
    /// judged on that share of its threshold there; `loadgate merge` judges the whole
    /// against the budget as written.
    pub fn share_throughput(&mut self, segment: &str, count: u64) {
        if count <= 1 {
            return;
        }
        for b in self.budgets_mut().filter(|(_, b)| is_rate(b)) {
            b.1.threshold /= count as f64;
            b.1.text = format!(
                "{} (segment {segment}'s share: {} rps)",
                b.1.text,
                num(b.1.threshold)
            );
        }
    }

    /// Every budget, mutably, with its scope.
    fn budgets_mut(&mut self) -> impl Iterator<Item = (Option<usize>, &mut Budget)> {
        let global = self.slo.global.iter_mut().map(|b| (None, &mut b.budget));
        let endpoints = self
            .slo
            .endpoints
            .iter_mut()
            .map(|(i, b)| (Some(*i), &mut b.budget));
        global.chain(endpoints)
    }

    /// The share of the arrivals that goes to `scope` (all of them for the whole run).
    fn share(&self, scope: Option<usize>) -> f64 {
        scope.map_or(1.0, |i| self.arrival_share(i))
    }

    /// The rate the throughput budgets ask for, as a rate of the whole load: a global
    /// `throughput > T` asks for T, an endpoint's for T over its share of the weight.
    /// An endpoint with no weight gets no arrivals, so its budget could never be met.
    pub fn throughput_floor(&self) -> Result<Option<f64>, WeightlessBudget> {
        let mut floor: Option<f64> = None;
        for (scope, b) in self.slo.scoped() {
            if !is_throughput_floor(&b.budget) {
                continue;
            }
            let share = self.share(scope);
            if share <= 0.0 {
                return Err(WeightlessBudget {
                    endpoint: self.scope_name(scope).to_string(),
                    budget: b.budget.text.clone(),
                });
            }
            let rate = b.budget.threshold / share;
            floor = Some(floor.map_or(rate, |f| f.max(rate)));
        }
        Ok(floor)
    }

    /// A capacity step's throughput budgets, judged against the rate offered at that
    /// step: the target must serve what it was sent (within the generator's own
    /// `min_achieved_ratio` tolerance), since a step below the asked-for rate cannot
    /// show the rate itself (the search's verdict does, see
    /// [`Scenario::throughput_floor`]).
    pub fn offer_throughput(&mut self, rate: f64) {
        let tolerance = self.load.validity.min_achieved_ratio;
        let shares: Vec<f64> = (0..self.rows()).map(|i| self.share(Some(i))).collect();
        for (scope, b) in self.budgets_mut().filter(|(_, b)| is_throughput_floor(b)) {
            let offered = rate * scope.map_or(1.0, |i| shares[i]);
            b.threshold = offered * tolerance;
            b.op = Op::Ge;
            b.text = format!(
                "{} (at this step: served {:.0}% of the {} rps offered)",
                b.text,
                tolerance * 100.0,
                num(offered)
            );
        }
    }
}

/// A budget on a rate of the whole load (throughput, goodput): a segment sends its
/// share of it, a capacity step the rate offered.
fn is_rate(b: &Budget) -> bool {
    matches!(b.metric, Metric::Throughput | Metric::Goodput)
}

/// A budget that asks for at least a rate.
fn is_throughput_floor(b: &Budget) -> bool {
    is_rate(b) && matches!(b.op, Op::Gt | Op::Ge)
}
