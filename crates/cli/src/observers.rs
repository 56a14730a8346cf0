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
//! alike. A write error stops that file (cut back to its last whole interval, see
//! [`Stream`]) and is recorded; its thread still takes every interval, so the run never
//! waits on a file that can no longer grow. A kill (SIGKILL) loses only what was still
//! queued: nothing, unless the disk had fallen behind.
//!
//! Not here: what the files hold (`loadgate_report`'s `SeriesRow`, the HdrHistogram log
//! format), judging.

use std::io::Write as _;
use std::sync::mpsc;
use std::thread::{Scope, ScopedJoinHandle};
use std::time::{Duration, SystemTime};

use hdrhistogram::serialization::interval_log::{IntervalLogWriter, IntervalLogWriterBuilder, Tag};
use hdrhistogram::serialization::V2DeflateSerializer;
use loadgate_engine::{Control, IntervalView, Observer, RunStarted};
use loadgate_metrics::{Pauses, Shard, Timing};
use loadgate_report::{file, SeriesRow};

use crate::output::{self, OutDir, Stream};
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
    let series = dir.stream(file::SERIES);
    let hlog_file = dir.stream(file::INTERVALS);
    let tags = names
        .iter()
        .map(|n| loadgate_scenario::log_tag(n))
        .collect();
    let (result, series, (hlog_file, error)) = std::thread::scope(|scope| {
        let (feed, rows) = spawn(scope, "loadgate-series", |told| {
            write_rows(series, names, told)
        })?;
        let mut rows_observer = SeriesObserver(feed);
        let (feed, log) = spawn(scope, "loadgate-hlog", move |told| {
            write_log(hlog_file, tags, started, told)
        })?;
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
        Ok::<_, std::io::Error>((result, join(rows), join(log)))
    })?;
    if let Some(e) = error {
        dir.note(file::INTERVALS, e);
    }
    dir.close(series);
    dir.close(hlog_file);
    Ok(result)
}

/// One interval as a writer thread takes it: a copy of what completed in it.
struct Interval {
    index: u64,
    warmup: bool,
    drain: bool,
    target: f64,
    pauses: Option<Pauses>,
    data: Shard,
}

impl Interval {
    fn of(v: &IntervalView<'_>) -> Interval {
        Interval {
            index: v.index,
            warmup: v.warmup,
            drain: v.drain,
            target: v.target,
            pauses: v.pauses,
            data: v.data.clone(),
        }
    }
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
fn write_rows(
    mut series: Stream,
    names: &[String],
    told: mpsc::Receiver<Told<Interval>>,
) -> Stream {
    for t in told {
        let Told::Interval(v) = t else { continue };
        let row = SeriesRow {
            pauses: v.pauses,
            drain: v.drain,
            ..SeriesRow::of(v.index, v.warmup, v.target, names, &v.data)
        };
        if let Ok(mut line) = serde_json::to_string(&row) {
            line.push('\n');
            let _ = series.pending().write_all(line.as_bytes());
        }
        series.commit();
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

/// The interval-log thread: the header once the start is known (else at
/// `fallback_start`: a run that ended before its start still leaves a valid, empty,
/// log), then each interval's histograms, appended whole. Returns the file and the
/// first error of the log's own writer.
fn write_log(
    mut hlog_file: Stream,
    tags: Vec<String>,
    fallback_start: SystemTime,
    told: mpsc::Receiver<Told<Interval>>,
) -> (Stream, Option<String>) {
    let mut hlog_sink = hlog_file.pending();
    let mut serializer = V2DeflateSerializer::new();
    let mut log = HlogFile {
        tags,
        hlog_file: &mut hlog_file,
        hlog: Hlog::Unstarted(&mut hlog_sink, &mut serializer),
        fallback_start,
        error: None,
    };
    for t in told {
        match t {
            Told::Started(at) => log.hlog.begin(at, &mut log.error),
            Told::Interval(v) => log.interval(&v),
        }
    }
    log.hlog.begin(fallback_start, &mut log.error);
    log.hlog_file.commit();
    let error = log.error.take();
    drop(log);
    (hlog_file, error)
}

/// The interval log being written.
struct HlogFile<'f, 'w, 's> {
    tags: Vec<String>,
    hlog_file: &'f mut Stream,
    hlog: Hlog<'w, 's>,
    /// The log's start time if whoever drives this observer does not say.
    fallback_start: SystemTime,
    error: Option<String>,
}

impl HlogFile<'_, '_, '_> {
    /// Appends interval `v`'s histograms: all endpoints', then each endpoint's.
    fn interval(&mut self, v: &Interval) {
        let all = v.data.overall();
        let start = Duration::from_secs(v.index);
        let one = Duration::from_secs(1);
        self.hlog.begin(self.fallback_start, &mut self.error);
        let Hlog::Started(hlog) = &mut self.hlog else {
            return;
        };
        let mut write = |h: &loadgate_metrics::LatencyHistogram, tag: Option<&str>| {
            if let Err(e) = hlog.write_histogram(&h.to_hdr(), start, one, tag.and_then(Tag::new)) {
                self.error.get_or_insert(format!("{e:?}"));
            }
        };
        // Every second has its untagged entry (all endpoints' latency). A timing with no
        // value this second has no line of its own (readers take a missing tag as
        // empty): a scenario of many endpoints writes, and copies to full range, only
        // what the second holds.
        write(all.latency(), None);
        let scopes = std::iter::once((None, &all)).chain(
            self.tags
                .iter()
                .map(|t| Some(t.as_str()))
                .zip(v.data.endpoints()),
        );
        for (scope, e) in scopes {
            for (t, h) in e.timings.iter() {
                if !h.is_empty() && (scope.is_some() || t != Timing::Latency) {
                    write(h, Some(&file::interval_key(scope, t)));
                }
            }
        }
        self.hlog_file.commit();
    }
}

type HlogWriter<'w, 's> = IntervalLogWriter<'w, 's, output::Pending, V2DeflateSerializer>;

/// The interval log. Its header states the start time, and interval timestamps count
/// from it, so the header is written only once the run knows when its schedule starts
/// (with `--start-at`, possibly well after the command began).
enum Hlog<'w, 's> {
    Unstarted(&'w mut output::Pending, &'s mut V2DeflateSerializer),
    Started(HlogWriter<'w, 's>),
    Failed,
}

impl Hlog<'_, '_> {
    /// Writes the header with `at` as the start time, unless it is written already.
    fn begin(&mut self, at: std::time::SystemTime, error: &mut Option<String>) {
        let (file, serializer) = match std::mem::replace(self, Hlog::Failed) {
            Hlog::Unstarted(file, serializer) => (file, serializer),
            begun => {
                *self = begun;
                return;
            }
        };
        let mut builder = IntervalLogWriterBuilder::new();
        builder
            .add_comment(&format!("loadgate {} interval log; tags are endpoint names (spaces and commas as _), `all` for all endpoints, with `.<timing>` (`.service`, `.ttfb`, `.ttfb_service`, `.send_lag`, `.connect`) for timings other than latency; untagged = all endpoints' latency", env!("CARGO_PKG_VERSION")))
            .with_start_time(at)
            .with_base_time(at)
            .with_max_value_divisor(1000.0);
        match builder.begin_log_with(file, serializer) {
            Ok(w) => *self = Hlog::Started(w),
            Err(e) => {
                error.get_or_insert(e.to_string());
            }
        }
    }
}
