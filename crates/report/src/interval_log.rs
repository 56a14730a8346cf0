//! The interval log (`intervals.hlog`): each second's histograms of every timing, per
//! endpoint and for all endpoints, in HdrHistogram's interval-log format. Written as the
//! run goes ([`IntervalLogWriter`]); read back with the time series to rebuild each
//! second of a run (merge, the recovery of a killed run).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use hdrhistogram::serialization::interval_log::{
    IntervalLogWriter as HdrLogWriter, IntervalLogWriterBuilder, Tag,
};
use hdrhistogram::serialization::V2DeflateSerializer;
use loadgate_metrics::{EndpointShard, LatencyHistogram, Shard, Timing};

use crate::file;
use crate::merge::MergeError;
use crate::outdir::{Interval, LogEvent, Pending, Stream};
use crate::rundir::{RunDir, SeriesRow};

/// `intervals.hlog` as a run writes it ([`crate::outdir::OutDir::interval_log`]): the
/// header once the run's start is known, then each interval's histograms, each interval
/// appended whole.
#[derive(Debug)]
pub struct IntervalLogWriter {
    stream: Stream,
    /// Each endpoint's log tag (`loadgate_metrics::log_tag`).
    tags: Vec<String>,
    /// The log's start time if whoever drives the writer does not say.
    fallback_start: SystemTime,
    /// The first error of the log's own writer.
    error: Option<String>,
}

impl IntervalLogWriter {
    pub(crate) fn new(
        stream: Stream,
        names: &[String],
        fallback_start: SystemTime,
    ) -> IntervalLogWriter {
        IntervalLogWriter {
            stream,
            tags: names.iter().map(|n| loadgate_metrics::log_tag(n)).collect(),
            fallback_start,
            error: None,
        }
    }

    /// Writes the whole log from `events`, in order (a channel's receiver, drained as
    /// the run tells it): the header once the start is known (else at the fallback
    /// start: a run that ended before its start still leaves a valid, empty, log), then
    /// each interval's histograms. HdrHistogram's writer borrows the file's buffer for
    /// as long as it writes, hence one call for the whole log. Returns the log, for
    /// [`crate::outdir::OutDir::close_streams`].
    pub fn write_all(mut self, events: impl IntoIterator<Item = LogEvent>) -> IntervalLogWriter {
        let mut sink = self.stream.pending();
        let mut serializer = V2DeflateSerializer::new();
        let mut hlog = Hlog::Unstarted(&mut sink, &mut serializer);
        for event in events {
            match event {
                LogEvent::Started(at) => hlog.begin(at, &mut self.error),
                LogEvent::Interval(v) => self.interval(&mut hlog, &v),
            }
        }
        hlog.begin(self.fallback_start, &mut self.error);
        drop(hlog);
        self.stream.commit();
        self
    }

    /// Appends interval `v`'s histograms: all endpoints', then each endpoint's.
    fn interval(&mut self, hlog: &mut Hlog<'_, '_>, v: &Interval) {
        let all = v.data.overall();
        let start = Duration::from_secs(v.index);
        let one = Duration::from_secs(1);
        hlog.begin(self.fallback_start, &mut self.error);
        let Hlog::Started(hlog) = hlog else {
            return;
        };
        let error = &mut self.error;
        let mut write = |h: &LatencyHistogram, tag: Option<&str>| {
            if let Err(e) = hlog.write_histogram(&h.to_hdr(), start, one, tag.and_then(Tag::new)) {
                error.get_or_insert(format!("{e:?}"));
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
        self.stream.commit();
    }

    /// The file, and the first error of the log's own writer.
    pub(crate) fn into_parts(self) -> (Stream, Option<String>) {
        (self.stream, self.error)
    }
}

type HdrWriter<'w, 's> = HdrLogWriter<'w, 's, Pending, V2DeflateSerializer>;

/// The interval log being written. Its header states the start time, and interval
/// timestamps count from it, so the header is written only once the run knows when its
/// schedule starts (with `--start-at`, possibly well after the command began).
enum Hlog<'w, 's> {
    Unstarted(&'w mut Pending, &'s mut V2DeflateSerializer),
    Started(HdrWriter<'w, 's>),
    Failed,
}

impl Hlog<'_, '_> {
    /// Writes the header with `at` as the start time, unless it is written already.
    fn begin(&mut self, at: SystemTime, error: &mut Option<String>) {
        let (file, serializer) = match std::mem::replace(self, Hlog::Failed) {
            Hlog::Unstarted(file, serializer) => (file, serializer),
            begun => {
                *self = begun;
                return;
            }
        };
        let mut builder = IntervalLogWriterBuilder::new();
        builder
            .add_comment(&format!("loadgate {} interval log; tags are endpoint names (spaces and commas as _), `all` for all endpoints, with `.<timing>` ({}) for timings other than latency; untagged = all endpoints' latency", env!("CARGO_PKG_VERSION"), other_timings()))
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

/// Each second of a run's time series with its data.
pub(crate) type Intervals = Vec<(SeriesRow, Shard)>;

/// Each second of a run directory's time series, rebuilt: counts from
/// `timeseries.jsonl`, histograms from `intervals.hlog`; and the log's start time, in
/// milliseconds since the Unix epoch.
pub(crate) fn intervals_of(
    run: &RunDir,
    max_us: u64,
) -> Result<(Intervals, Option<u64>), MergeError> {
    intervals_of_until(run, max_us, false)
}

/// [`intervals_of`]; with `cut` (a killed run's files), the interval log may end in a
/// cut entry, and only the seconds both files hold are taken.
pub(crate) fn intervals_of_until(
    run: &RunDir,
    max_us: u64,
    cut: bool,
) -> Result<(Intervals, Option<u64>), MergeError> {
    let shown = run.dir.display().to_string();
    let bad = |what: &str, e: String| {
        MergeError::new(format!(
            "{shown}/{what}: {e}\n  hint: the file was changed or cut short"
        ))
    };
    let names = run.summary.endpoint_names();
    let hlog_path = run.dir.join(file::INTERVALS);
    let hlog = crate::read::bytes(&hlog_path).map_err(|e| bad(file::INTERVALS, e.to_string()))?;
    let (mut by_interval, start_ms) =
        read_hlog_until(&hlog, cut).map_err(|e| bad(file::INTERVALS, e))?;
    let tags: Vec<String> = names.iter().map(|n| loadgate_metrics::log_tag(n)).collect();
    let mut intervals = Vec::new();
    for row in &run.series {
        // Every second the log holds has its untagged (all endpoints) entry.
        if cut
            && !by_interval
                .get(&row.t)
                .is_some_and(|h| h.contains_key(file::INTERVALS_ALL))
        {
            continue;
        }
        let mut hists = by_interval.remove(&row.t).unwrap_or_default();
        let mut take = |tag: &str| {
            hists
                .remove(tag)
                .unwrap_or_else(|| LatencyHistogram::new(max_us))
        };
        let mut shard_endpoints = Vec::new();
        for (k, tag) in tags.iter().enumerate() {
            let mut e = EndpointShard::new(max_us);
            for (t, h) in e.timings.iter_mut() {
                *h = take(&file::interval_key(Some(tag), t));
            }
            // The log holds a connect time per connection opened, not the count.
            e.connects = e.timings[loadgate_metrics::Timing::Connect].len();
            if let Some(r) = row.endpoints.get(k) {
                e.outcomes = r.outcomes;
                e.sent = r.sent;
                e.due_successes = r.due_successes.clone();
                e.good = r.good;
                e.good_service = r.good_service;
                e.streams = loadgate_metrics::StreamCounts {
                    streams: r.streams,
                    events: r.events,
                    tokens: r.tokens,
                    oversized: r.oversized,
                    skipped: r.skipped,
                };
                e.protocols = loadgate_metrics::Protocols {
                    http1: r.http1,
                    h2: r.h2,
                };
                e.cookies_dropped = r.cookies_dropped;
                e.dropped = r.dropped;
            }
            shard_endpoints.push(e);
        }
        // Late sends are counted per interval for all endpoints only: carried on the
        // first endpoint, which is where the row reads them back from. So were drops in
        // files written before each row kept its own (a flow's row among them).
        let per_row = shard_endpoints.iter().any(|e| e.dropped > 0);
        if let Some(e) = shard_endpoints.first_mut() {
            e.late = row.late;
            if !per_row {
                e.dropped = row.dropped;
            }
        }
        intervals.push((
            row.clone(),
            Shard::from_endpoints(shard_endpoints, run.summary.row_layout()),
        ));
    }
    Ok((intervals, start_ms))
}

/// Every interval histogram of an interval log, by whole second and tag (`all` for the
/// untagged one), and the log's start time in milliseconds since the Unix epoch.
type ByInterval = BTreeMap<u64, BTreeMap<String, LatencyHistogram>>;

/// With `cut`, a log that ends in a cut or damaged entry (a killed run's) gives the
/// entries before it.
fn read_hlog_until(bytes: &[u8], cut: bool) -> Result<(ByInterval, Option<u64>), String> {
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    let mut out: ByInterval = BTreeMap::new();
    let mut start = None;
    for entry in IntervalLogIterator::new(bytes) {
        let entry = match entry {
            Ok(e) => e,
            Err(_) if cut => break,
            Err(e) => return Err(format!("{e:?}")),
        };
        match entry {
            LogEntry::Interval(h) => {
                let hist = LatencyHistogram::from_base64(h.encoded_histogram(), 0)
                    .map_err(|e| e.to_string())?;
                let tag = h
                    .tag()
                    .map_or(file::INTERVALS_ALL, |t| t.as_str())
                    .to_string();
                out.entry(h.start_timestamp().as_secs())
                    .or_default()
                    .insert(tag, hist);
            }
            LogEntry::StartTime(t) => start = Some(t.as_millis() as u64),
            LogEntry::BaseTime(_) => {}
        }
    }
    Ok((out, start))
}

/// The tags of the timings other than latency, as the log's header lists them:
/// `` `.service`, `.ttfb`, ... ``, from the timing axis itself.
fn other_timings() -> String {
    loadgate_metrics::Timing::ALL
        .iter()
        .filter(|t| **t != loadgate_metrics::Timing::Latency)
        .map(|t| format!("`.{}`", t.name()))
        .collect::<Vec<_>>()
        .join(", ")
}
