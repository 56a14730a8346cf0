//! The binary's observers of a run, one per job: live progress (`progress.rs`),
//! `timeseries.jsonl` and `intervals.hlog`. `run` composes them with the budget watch
//! (`loadgate_slo::watch`) and hands all of them to the engine; `merge` tells them the
//! seconds it read back, so both write their files alike.
//!
//! Each of them may block (a file write, a full pipe on stderr), so none does its work
//! on the engine's aggregator: its observer takes what it needs from the interval (a
//! copy of the second's shard, or the few figures of a progress line) and sends it over
//! a bounded channel ([`Feed`]) to a thread of its own. At most [`QUEUE`] intervals wait
//! for a writer; past that the aggregator waits for it, so nothing is ever dropped. The
//! run's end closes the channels, and [`write_series`] returns only once every thread
//! has written all it was sent, on a normal end, after Ctrl-C or after a write error
//! alike. A write error stops that file (cut back to its last whole interval) and is
//! recorded; its thread still takes every interval, so the run never waits on a file
//! that can no longer grow. A kill (SIGKILL) loses only what was still queued: nothing,
//! unless the disk had fallen behind.
//!
//! Not here: the files and what they hold (`loadgate_report::outdir`: `SeriesWriter`,
//! `IntervalLogWriter`), judging.

use std::sync::mpsc;
use std::thread::{Scope, ScopedJoinHandle};
use std::time::SystemTime;

use loadgate_engine::{Control, IntervalView, Observer, RunStarted};
use loadgate_report::outdir::{Interval, IntervalLogWriter, LogEvent, OutDir, SeriesWriter};

use crate::progress::{self, Progress, ProgressObserver};

/// Intervals that may wait for a writer thread before the aggregator waits for it.
const QUEUE: usize = 8;

/// What a writer thread is told, in the order the run told its observer.
pub(crate) enum Told<T> {
    /// The run's start ([`RunStarted::at`]).
    Started(SystemTime),
    /// What the observer took from one interval.
    Interval(T),
}

/// The aggregator's end of a writer thread's bounded channel. A send waits while the
/// channel is full; once the thread is gone, sends are dropped (it ended by a panic,
/// which [`join`] passes on).
pub(crate) struct Feed<T>(Option<mpsc::SyncSender<Told<T>>>);

impl<T> Feed<T> {
    /// Hands `told` to the thread, waiting while its queue is full.
    pub(crate) fn send(&mut self, told: Told<T>) {
        if let Some(tx) = &self.0 {
            if tx.send(told).is_err() {
                self.0 = None;
            }
        }
    }

    /// Tells the thread nothing more is coming.
    pub(crate) fn close(&mut self) {
        self.0 = None;
    }
}

/// Starts `body` on a thread of `scope` named `name`, fed by the returned [`Feed`].
fn spawn<'scope, T, R>(
    scope: &'scope Scope<'scope, '_>,
    name: &str,
    body: impl FnOnce(mpsc::Receiver<Told<T>>) -> R + Send + 'scope,
) -> std::io::Result<(Feed<T>, ScopedJoinHandle<'scope, R>)>
where
    T: Send + 'scope,
    R: Send + 'scope,
{
    let (tx, rx) = mpsc::sync_channel(QUEUE);
    let handle = std::thread::Builder::new()
        .name(name.into())
        .spawn_scoped(scope, move || body(rx))?;
    Ok((Feed(Some(tx)), handle))
}

/// What a writer thread returned; its panic, passed on.
fn join<R>(handle: ScopedJoinHandle<'_, R>) -> R {
    handle
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Creates `timeseries.jsonl` and `intervals.hlog` in `dir` and lets `f` stream
/// intervals into them through the observers it is given (with a progress observer
/// updating `progress`, unless it is off), each writing on a thread of its own; returns
/// once every interval `f` told them is written, and both files are closed. The log's
/// start time is the one the run reports ([`Observer::started`]), else `started`. Each
/// interval reaches the disk whole; a write error is recorded in `dir` and the run goes
/// on (its totals are kept in memory). Fails, before `f` runs, when a writer thread
/// cannot be started.
pub(crate) fn write_series<R>(
    dir: &OutDir,
    started: SystemTime,
    names: &[String],
    open: bool,
    progress: &Progress,
    f: impl FnOnce(&mut [&mut dyn Observer]) -> R,
) -> std::io::Result<R> {
    let series = dir.series(names);
    let log = dir.interval_log(names, started);
    let (result, series, log) = std::thread::scope(|scope| {
        let (feed, rows) = spawn(scope, "loadgate-series", |told| write_rows(series, told))?;
        let mut rows_observer = SeriesObserver(feed);
        let (feed, logged) = spawn(scope, "loadgate-hlog", |told| write_log(log, told))?;
        let mut log_observer = HlogObserver(feed);
        let (feed, shown) = match progress {
            Progress::Off => None,
            _ => Some(spawn(scope, "loadgate-progress", |told| {
                progress::show_all(progress, open, told);
            })?),
        }
        .unzip();
        let mut progress_observer = feed.map(ProgressObserver);
        let mut observers: Vec<&mut dyn Observer> = vec![&mut rows_observer, &mut log_observer];
        if let Some(p) = &mut progress_observer {
            observers.push(p);
        }
        let result = f(&mut observers);
        // Whether or not `f` ran a whole run, its end: every thread finishes its queue.
        drop(observers);
        drop((rows_observer, log_observer, progress_observer));
        if let Some(handle) = shown {
            join(handle);
        }
        Ok::<_, std::io::Error>((result, join(rows), join(logged)))
    })?;
    dir.close_streams(series, log);
    Ok(result)
}

/// Streams each interval to `timeseries.jsonl`, on its own thread.
struct SeriesObserver(Feed<Interval>);

impl Observer for SeriesObserver {
    fn interval(&mut self, v: &IntervalView<'_>) -> Control {
        self.0.send(Told::Interval(Interval::of(v)));
        Control::Continue
    }

    fn finished(&mut self) {
        self.0.close();
    }
}

/// The time-series thread: a row per interval, each appended whole.
fn write_rows(mut series: SeriesWriter, told: mpsc::Receiver<Told<Interval>>) -> SeriesWriter {
    for t in told {
        if let Told::Interval(v) = t {
            series.append(&v);
        }
    }
    series
}

/// Streams each interval to `intervals.hlog`, on its own thread.
struct HlogObserver(Feed<Interval>);

impl Observer for HlogObserver {
    fn started(&mut self, run: &RunStarted<'_>) {
        self.0.send(Told::Started(run.at));
    }

    fn interval(&mut self, v: &IntervalView<'_>) -> Control {
        self.0.send(Told::Interval(Interval::of(v)));
        Control::Continue
    }

    fn finished(&mut self) {
        self.0.close();
    }
}

/// The interval-log thread: everything it is told, in order, until the run ends.
fn write_log(log: IntervalLogWriter, told: mpsc::Receiver<Told<Interval>>) -> IntervalLogWriter {
    log.write_all(told.into_iter().map(|t| match t {
        Told::Started(at) => LogEvent::Started(at),
        Told::Interval(v) => LogEvent::Interval(v),
    }))
}
