//! The interval log (`intervals.hlog`): each second's histograms of every timing, per
//! endpoint and for all endpoints, in HdrHistogram's interval-log format. Read back with
//! the time series to rebuild each second of a run (merge, the recovery of a killed run).

use std::collections::BTreeMap;

use loadgate_metrics::{EndpointShard, LatencyHistogram, Shard};

use crate::file;
use crate::merge::MergeError;
use crate::rundir::{RunDir, SeriesRow};

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
    let hlog = std::fs::read(&hlog_path).map_err(|e| bad(file::INTERVALS, e.to_string()))?;
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
            }
            shard_endpoints.push(e);
        }
        // Late and dropped are counted per interval for all endpoints only; they are
        // carried on the first endpoint, which is where the row reads them back from.
        if let Some(e) = shard_endpoints.first_mut() {
            e.late = row.late;
            e.dropped = row.dropped;
        }
        intervals.push((row.clone(), Shard::from_endpoints(shard_endpoints)));
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
