//! What a running load tells the code watching it: the run's start, each finished
//! interval in order, its end; and how a watcher asks the run to stop.
//!
//! This is the interface between the engine, which produces intervals, and whatever
//! consumes them while the run goes on (the live budget judge in `loadgate-slo`, the
//! binary's progress display and streamed files, later a live exporter). It lives here,
//! beside the `Shard` an interval is made of, so that both sides can depend on it and
//! neither on the other: the engine never learns what an observer does with an
//! interval, and the budget judge never learns how intervals are produced.
//!
//! Not here: producing intervals, threads, files. An observer is called on the
//! aggregator's path, once per interval; one that may block (a file write, a network
//! send) hands its work to a thread of its own.

use std::time::{Duration, SystemTime};

use crate::{Pauses, Shard};

/// What an observer is told once, before the first interval.
#[derive(Debug, Clone, Copy)]
pub struct RunStarted<'a> {
    /// Wall-clock time of the schedule's start: the beginning of interval 0.
    pub at: SystemTime,
    /// The length of every interval.
    pub interval: Duration,
    /// The endpoints' names, in the order of each shard's endpoints.
    pub endpoints: &'a [String],
    /// How many intervals, from interval 0, are the warm-up.
    pub warmup_intervals: u64,
}

/// One finished interval, merged across workers.
#[derive(Debug)]
pub struct IntervalView<'a> {
    /// Interval of the run (0-based; each [`RunStarted::interval`] long).
    pub index: u64,
    /// Whether the interval is in the warm-up.
    pub warmup: bool,
    /// Whether the interval is after the measured phase (the schedule's end, or the
    /// stop): what completed in it was due earlier and counts there.
    pub drain: bool,
    /// Where the measured part of this interval ends, in seconds since the schedule
    /// began: `index + 1`, or the instant of a stop that fell inside the interval. A
    /// drain interval has no measured part; for it this is where the measured phase
    /// ended.
    pub end_s: f64,
    /// What completed in this interval.
    pub data: &'a Shard,
    /// Arrivals the schedule asked for in this interval (open) or VUs (closed).
    pub target: f64,
    /// Everything measured so far in the current phase (warm-up or measured).
    pub cumulative: &'a Shard,
    /// Open model: pauses of the process that ended in this interval.
    pub pauses: Option<Pauses>,
}

/// Why an observer asks the run to stop: a rule it watches was broken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Abort {
    /// Where: `global`, or an endpoint's name.
    pub scope: String,
    /// What: the rule as written (a budget expression).
    pub budget: String,
}

/// What an observer wants after an interval.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Control {
    /// Go on.
    Continue,
    /// Stop issuing, as a stop from outside would (in-flight requests get the grace
    /// period); the run reports this as its reason unless it was already stopping.
    Stop(Abort),
}

/// Receives a run's intervals as they finish: told the start, then every interval in
/// order, then the end. Several observers can watch one run; each is told everything.
pub trait Observer {
    /// Called once, before any interval.
    fn started(&mut self, _run: &RunStarted<'_>) {}
    /// Called once per interval, in order (drain intervals last, flagged).
    fn interval(&mut self, view: &IntervalView<'_>) -> Control;
    /// Called once after the last interval: nothing follows.
    fn finished(&mut self) {}
}
