//! The run directory's files as types: written by `loadgate run` (through
//! [`crate::outdir::OutDir`]), read back by `loadgate report`, `compare` and `merge`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use loadgate_metrics::{
    BySecond, DecodeError, EndpointShard, LatencyHistogram, OutcomeCounts, Pauses, Shard, Timing,
    Timings,
};
use loadgate_slo::capacity::CapacityReport;
use loadgate_slo::compare::Comparison;
use loadgate_slo::summary::RunSummary;
use serde::{Deserialize, Serialize};

use crate::file;
use crate::outdir::{Interval, Stream};

/// One endpoint's (or all endpoints') histograms, encoded: one per timing (see
/// [`Timing`]), each HdrHistogram V2-deflate base64 under the timing's name (`latency`,
/// `service`, `ttfb`, `send_lag`, `connect`, ...). Runs before schema 3 have fewer; a
/// timing a run did not keep reads as an empty histogram.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncodedPair {
    /// Endpoint name, or `all`.
    pub name: String,
    /// Latencies recorded at the histogram's bound.
    pub saturated: u64,
    /// Each timing's histogram by timing name; empty ones are left out.
    #[serde(flatten)]
    pub timings: BTreeMap<String, String>,
}

/// The bound of an empty histogram whose run left no other to take it from (60 s).
const DEFAULT_MAX_US: u64 = 60_000_000;

impl EncodedPair {
    fn of(name: &str, e: &EndpointShard) -> EncodedPair {
        EncodedPair {
            name: name.to_string(),
            saturated: e.latency().saturated(),
            timings: e
                .timings
                .iter()
                .filter(|(t, h)| *t == Timing::Latency || !h.is_empty())
                .map(|(t, h)| (t.name().to_string(), h.to_base64()))
                .collect(),
        }
    }

    /// The histogram of timing `t`; empty (bounded at `max_us`) when the run kept none.
    pub fn timing(&self, t: Timing, max_us: u64) -> Result<LatencyHistogram, DecodeError> {
        let saturated = if t == Timing::Latency {
            self.saturated
        } else {
            0
        };
        match self.timings.get(t.name()).filter(|text| !text.is_empty()) {
            Some(text) => LatencyHistogram::from_base64(text, saturated),
            None => Ok(LatencyHistogram::new(max_us)),
        }
    }

    /// Every timing's histogram; those the run did not keep empty, bounded as its
    /// latency histogram is.
    pub fn decode(&self) -> Result<Timings<LatencyHistogram>, DecodeError> {
        let latency = self.latency()?;
        let max_us = latency.high();
        let mut out = Timings::from_fn(|_| LatencyHistogram::new(max_us));
        for (t, h) in out.iter_mut().filter(|(t, _)| *t != Timing::Latency) {
            *h = self.timing(t, max_us)?;
        }
        out[Timing::Latency] = latency;
        Ok(out)
    }

    /// The latency histogram (every run keeps one; a missing one reads as empty).
    pub fn latency(&self) -> Result<LatencyHistogram, DecodeError> {
        self.timing(Timing::Latency, DEFAULT_MAX_US)
    }
}

/// Histograms of one phase (measured or warm-up).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Phase {
    /// All endpoints together.
    pub all: EncodedPair,
    /// Each endpoint, in scenario order.
    pub endpoints: Vec<EncodedPair>,
}

impl Phase {
    fn of(names: &[String], shard: &Shard) -> Phase {
        let all = shard.overall();
        Phase {
            all: EncodedPair::of("all", &all),
            endpoints: names
                .iter()
                .zip(shard.endpoints())
                .map(|(n, e)| EncodedPair::of(n, e))
                .collect(),
        }
    }
}

/// `histograms.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistogramsFile {
    /// Layout version (2: histograms of successful requests, with send lag; 3: every
    /// timing, time to first byte among them).
    pub schema_version: u32,
    /// `us`.
    pub unit: String,
    /// `hdr-v2-deflate-base64`.
    pub encoding: String,
    /// After warm-up.
    pub measured: Phase,
    /// During warm-up.
    pub warmup: Phase,
}

impl HistogramsFile {
    /// Encodes a run's shards.
    pub fn new(names: &[String], measured: &Shard, warmup: &Shard) -> HistogramsFile {
        HistogramsFile {
            schema_version: 3,
            unit: "us".into(),
            encoding: "hdr-v2-deflate-base64".into(),
            measured: Phase::of(names, measured),
            warmup: Phase::of(names, warmup),
        }
    }
}

/// Latency percentiles of one interval, µs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Median.
    pub p50: u64,
    /// 90th.
    pub p90: u64,
    /// 95th.
    pub p95: u64,
    /// 99th.
    pub p99: u64,
    /// Largest.
    pub max: u64,
}

impl Percentiles {
    /// Of one histogram. Only the quantiles: written once a second per histogram, it
    /// skips the mean and deviation passes of [`LatencyHistogram::stats`].
    pub fn of(h: &LatencyHistogram) -> Percentiles {
        Percentiles {
            p50: h.quantile(0.50),
            p90: h.quantile(0.90),
            p95: h.quantile(0.95),
            p99: h.quantile(0.99),
            max: h.max(),
        }
    }

    /// Of one histogram, when it holds a value.
    pub fn of_any(h: &LatencyHistogram) -> Option<Percentiles> {
        (!h.is_empty()).then(|| Percentiles::of(h))
    }
}

/// One endpoint in one interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointRow {
    /// Endpoint name.
    pub name: String,
    /// Requests sent.
    pub sent: u64,
    /// Requests completed.
    pub completed: u64,
    /// Completed with an outcome other than success.
    pub errors: u64,
    /// Per outcome class.
    pub outcomes: OutcomeCounts,
    /// Median latency, µs.
    pub p50_us: u64,
    /// 95th percentile, µs.
    pub p95_us: u64,
    /// 99th percentile, µs.
    pub p99_us: u64,
    /// Successes that completed in this second, by the second they were due in (what
    /// throughput windows count; see `loadgate_slo::window`).
    #[serde(default, skip_serializing_if = "BySecond::is_empty")]
    pub due_successes: BySecond,
    /// Requests that completed in this second good: successes within the endpoint's
    /// goodput limits (every success when it sets none), what goodput and attainment
    /// windows count. 0 in files written before goodput windows.
    #[serde(default)]
    pub good: u64,
    /// Those good with the limits timed from the actual send (the windows' twin).
    #[serde(default)]
    pub good_service: u64,
    /// Streams: the successful streams that completed in this second, and their content
    /// events and tokens (what a killed run's recovery sums into `stream`). Absent when
    /// none did, and in files written before they were kept.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub streams: u64,
    /// Their content events.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub events: u64,
    /// Their output tokens.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub tokens: u64,
    /// Events of streamed responses that completed in this second (successful or not)
    /// skipped for their size ([`loadgate_metrics::StreamCounts::oversized`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub oversized: u64,
    /// Those loadgate skipped for its memory budget
    /// ([`loadgate_metrics::StreamCounts::skipped`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub skipped: u64,
    /// Responses that completed in this second over HTTP/1.1 (what a killed run's
    /// recovery sums into `protocols`). Absent when none did, and in files written
    /// before they were kept.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub http1: u64,
    /// Those over HTTP/2.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub h2: u64,
    /// Cookies the answers that completed in this second set that the session's jar
    /// dropped for its bounds (what a killed run's recovery sums into
    /// `cookies_dropped`). Absent when none was.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cookies_dropped: u64,
    /// Arrivals (or a flow's step requests) due in this second and dropped: at
    /// `max_in_flight`, or waiting a whole timeout for a fixed pool's turn. Absent when
    /// none was, and in files written before it was kept per row (the run's drops
    /// were then read from the row's total).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dropped: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One line of `timeseries.jsonl`: one second of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesRow {
    /// Second of the run, from 0.
    pub t: u64,
    /// In the warm-up.
    pub warmup: bool,
    /// After the measured phase: what completed here was due earlier, and counts there.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub drain: bool,
    /// Arrivals due (open model) or VUs (closed model).
    pub target: f64,
    /// Requests sent.
    pub sent: u64,
    /// Requests completed.
    pub completed: u64,
    /// Late sends.
    pub late: u64,
    /// Dropped arrivals.
    pub dropped: u64,
    /// Per outcome class.
    pub outcomes: OutcomeCounts,
    /// Requests that completed in this second good (within their endpoint's goodput
    /// limits): the goodput of the second. 0 in files written before it was kept.
    #[serde(default)]
    pub good: u64,
    /// Latency percentiles (corrected in the open model).
    pub latency_us: Percentiles,
    /// Service-time percentiles.
    pub service_us: Percentiles,
    /// Streams: time-to-first-token percentiles of the successful streams that
    /// completed in this second; absent when none did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_us: Option<Percentiles>,
    /// Streams: percentiles of the gaps between tokens that ended in this second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub itl_us: Option<Percentiles>,
    /// Streams: time-per-output-token percentiles (each stream's speed, inverted) of the
    /// successful streams of two tokens or more that completed in this second; absent
    /// when none did, and in files written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpot_us: Option<Percentiles>,
    /// Each endpoint.
    pub endpoints: Vec<EndpointRow>,
    /// Open model: pauses of the generating process that ended in this second (summed
    /// over the processes of a merged run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pauses: Option<Pauses>,
}

impl SeriesRow {
    /// The row for interval `t` of `shard`.
    pub fn of(t: u64, warmup: bool, target: f64, names: &[String], shard: &Shard) -> SeriesRow {
        SeriesRow::with_overall(t, warmup, target, names, shard, &shard.overall())
    }

    /// Like [`SeriesRow::of`], with the shard's all-endpoint merge already computed.
    pub fn with_overall(
        t: u64,
        warmup: bool,
        target: f64,
        names: &[String],
        shard: &Shard,
        all: &loadgate_metrics::EndpointShard,
    ) -> SeriesRow {
        SeriesRow {
            t,
            warmup,
            drain: false,
            target,
            sent: all.sent,
            completed: all.completed(),
            late: all.late,
            dropped: all.dropped,
            outcomes: all.outcomes,
            good: all.good,
            latency_us: Percentiles::of(all.latency()),
            service_us: Percentiles::of(&all.timings[Timing::Service]),
            ttft_us: Percentiles::of_any(&all.timings[Timing::Ttft]),
            itl_us: Percentiles::of_any(&all.timings[Timing::Itl]),
            tpot_us: Percentiles::of_any(&all.timings[Timing::Tpot]),
            endpoints: names
                .iter()
                .zip(shard.endpoints())
                .map(|(n, e)| EndpointRow {
                    name: n.clone(),
                    sent: e.sent,
                    completed: e.completed(),
                    errors: e.outcomes.errors(),
                    outcomes: e.outcomes,
                    p50_us: e.latency().quantile(0.5),
                    p95_us: e.latency().quantile(0.95),
                    p99_us: e.latency().quantile(0.99),
                    due_successes: e.due_successes.clone(),
                    good: e.good,
                    good_service: e.good_service,
                    streams: e.streams.streams,
                    events: e.streams.events,
                    tokens: e.streams.tokens,
                    oversized: e.streams.oversized,
                    skipped: e.streams.skipped,
                    http1: e.protocols.http1,
                    h2: e.protocols.h2,
                    cookies_dropped: e.cookies_dropped,
                    dropped: e.dropped,
                })
                .collect(),
            pauses: None,
        }
    }
}

/// The line of `timeseries.jsonl` that holds `row`.
pub(crate) fn series_line(row: &SeriesRow) -> Option<String> {
    let mut line = serde_json::to_string(row).ok()?;
    line.push('\n');
    Some(line)
}

/// `timeseries.jsonl` as a run writes it ([`crate::outdir::OutDir::series`]): a
/// [`SeriesRow`] per interval, each appended whole.
#[derive(Debug)]
pub struct SeriesWriter {
    stream: Stream,
    names: Vec<String>,
}

impl SeriesWriter {
    pub(crate) fn new(stream: Stream, names: &[String]) -> SeriesWriter {
        SeriesWriter {
            stream,
            names: names.to_vec(),
        }
    }

    /// Appends interval `v`'s row.
    pub fn append(&mut self, v: &Interval) {
        let row = SeriesRow {
            pauses: v.pauses,
            drain: v.drain,
            ..SeriesRow::of(v.index, v.warmup, v.target, &self.names, &v.data)
        };
        if let Some(line) = series_line(&row) {
            use std::io::Write as _;
            let _ = self.stream.pending().write_all(line.as_bytes());
        }
        self.stream.commit();
    }

    pub(crate) fn into_stream(self) -> Stream {
        self.stream
    }
}

/// A run directory that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file is not what loadgate writes.
    #[error("{}:{line}: {message}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// 1-based line (1 for whole-file JSON).
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// Everything in a run directory.
#[derive(Debug, Clone)]
pub struct RunDir {
    /// Where it is.
    pub dir: PathBuf,
    /// `summary.json`.
    pub summary: RunSummary,
    /// `histograms.json`, when present.
    pub histograms: Option<HistogramsFile>,
    /// `timeseries.jsonl`, one row per second.
    pub series: Vec<SeriesRow>,
}

fn read(path: &Path) -> Result<String, ReadError> {
    crate::read::text(path).map_err(|source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn json<T: for<'de> Deserialize<'de>>(
    path: &Path,
    text: &str,
    line: usize,
) -> Result<T, ReadError> {
    serde_json::from_str(text).map_err(|e| ReadError::Format {
        path: path.to_path_buf(),
        line: if line == 0 { e.line() } else { line },
        message: format!("{e}; is this a loadgate run directory of a compatible version?"),
    })
}

/// A run directory asked for as `what` (a flag or role) that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error(
    "{what}: {source}\n  hint: pass a folder written by `loadgate run`, or its {}",
    file::SUMMARY
)]
pub struct NotARun {
    what: String,
    source: ReadError,
}

impl RunDir {
    /// [`RunDir::load`] of the run asked for as `what` (a flag or role); the error says
    /// what to pass instead.
    pub fn load_for(dir: &Path, what: &str) -> Result<RunDir, NotARun> {
        RunDir::load(dir).map_err(|source| NotARun {
            what: what.to_string(),
            source,
        })
    }

    /// Measured-phase histograms of every timing by endpoint name, plus `all`.
    pub fn histograms(&self) -> Result<BTreeMap<String, Timings<LatencyHistogram>>, ReadError> {
        let mut out = BTreeMap::new();
        if let Some(h) = &self.histograms {
            let bad = |e: DecodeError| ReadError::Format {
                path: self.dir.join(file::HISTOGRAMS),
                line: 1,
                message: e.to_string(),
            };
            for p in std::iter::once(&h.measured.all).chain(&h.measured.endpoints) {
                out.insert(p.name.clone(), p.decode().map_err(bad)?);
            }
        }
        Ok(out)
    }

    /// Reads the run directory `dir`, or the run directory holding `dir` when it names a
    /// `summary.json`.
    pub fn load(dir: &Path) -> Result<RunDir, ReadError> {
        let dir = if dir.is_file() {
            dir.parent().unwrap_or(Path::new(".")).to_path_buf()
        } else {
            dir.to_path_buf()
        };
        RunDir::load_kept(&dir, "")
    }

    /// Reads the run whose files in `dir` are named with `prefix` before the usual
    /// names: `""` for the run itself, [`file::BASELINE_PREFIX`] for the baseline a run was
    /// compared with, kept beside it.
    pub fn load_kept(dir: &Path, prefix: &str) -> Result<RunDir, ReadError> {
        let summary_path = dir.join(format!("{prefix}{}", file::SUMMARY));
        let summary: RunSummary = json(&summary_path, &read(&summary_path)?, 0)?;
        let hist_path = dir.join(format!("{prefix}{}", file::HISTOGRAMS));
        let histograms = if hist_path.exists() {
            Some(json(&hist_path, &read(&hist_path)?, 0)?)
        } else {
            None
        };
        let mut run = RunDir::with(dir, summary, histograms, prefix)?;
        run.dir = dir.to_path_buf();
        Ok(run)
    }

    /// A run whose summary and histograms are in hand (just measured, whether or not
    /// they reached the disk), with the time series `dir` holds under `prefix`.
    pub fn with(
        dir: &Path,
        summary: RunSummary,
        histograms: Option<HistogramsFile>,
        prefix: &str,
    ) -> Result<RunDir, ReadError> {
        let series_path = dir.join(format!("{prefix}{}", file::SERIES));
        let mut series = Vec::new();
        // A run recovered after a kill (stop `killed`, `RunStart::unmeasured`) was
        // judged from its series as far as it is whole (`merge::recover`): a line the
        // kill cut, or the zeros a lost machine left, end it here too.
        let recovered = summary.stop == "killed";
        if series_path.exists() {
            let text = match recovered {
                true => crate::read::bytes(&series_path)
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .map_err(|source| ReadError::Io {
                        path: series_path.clone(),
                        source,
                    })?,
                false => read(&series_path)?,
            };
            for (i, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                match json(&series_path, line, i + 1) {
                    Ok(row) => series.push(row),
                    Err(_) if recovered => break,
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(RunDir {
            dir: dir.to_path_buf(),
            summary,
            histograms,
            series,
        })
    }
}

/// What a folder holds, by the files loadgate writes into one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holds {
    /// A finished run: its `summary.json`.
    Run,
    /// A run that did not finish: `run.json` without a summary (killed, or still
    /// running).
    Unfinished,
    /// A capacity search's result (`capacity.json`), and no run.
    Capacity,
    /// None of those, but a loadgate command has held it (its lock file): a capacity
    /// search still going, or a run stopped before its first file.
    Nothing,
    /// None of loadgate's files.
    Unknown,
}

/// A folder that holds nothing to render (see [`Holds::Nothing`]).
#[derive(Debug, thiserror::Error)]
#[error("{} holds no run to render: a capacity search writes {} only when it ends, and a run stopped before its first file wrote none", folder.display(), file::CAPACITY)]
pub struct NothingToRender {
    folder: PathBuf,
}

impl Holds {
    /// What `folder` holds, refused when it is [`Holds::Nothing`].
    pub fn to_render(folder: &Path) -> Result<Holds, NothingToRender> {
        match Holds::of(folder) {
            Holds::Nothing => Err(NothingToRender {
                folder: folder.to_path_buf(),
            }),
            holds => Ok(holds),
        }
    }

    /// What `folder` holds now.
    pub fn of(folder: &Path) -> Holds {
        let has = |name: &str| folder.join(name).exists();
        if has(file::SUMMARY) {
            Holds::Run
        } else if has(file::RUN) {
            Holds::Unfinished
        } else if has(file::CAPACITY) {
            Holds::Capacity
        } else if has(file::LOCK) {
            Holds::Nothing
        } else {
            Holds::Unknown
        }
    }
}

/// A file loadgate wrote that cannot be read back: where, and why.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct FileError {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub message: String,
}

/// Reads the JSON file `path` as a `T`.
fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, FileError> {
    crate::read::text(path)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
        .map_err(|message| FileError {
            path: path.to_path_buf(),
            message,
        })
}

/// The capacity search whose `capacity.json` is in `folder`.
pub fn read_capacity(folder: &Path) -> Result<CapacityReport, FileError> {
    read_json(&folder.join(file::CAPACITY))
}

/// The baseline a run was compared with, kept beside it
/// ([`crate::outdir::OutDir::keep_baseline`]), and the comparison made with it.
#[derive(Debug, Clone)]
pub struct KeptBaseline {
    /// The baseline's run, read from its kept files.
    pub run: RunDir,
    /// `compare.json`.
    pub comparison: Comparison,
}

/// A kept baseline that cannot be read back.
#[derive(Debug, thiserror::Error)]
pub enum KeptError {
    /// The baseline's files.
    #[error("the kept baseline: {0}")]
    Baseline(#[source] ReadError),
    /// `compare.json`.
    #[error(transparent)]
    Comparison(#[from] FileError),
}

impl KeptBaseline {
    /// The baseline kept in the run directory `dir`, if the run was compared with one.
    pub fn load(dir: &Path) -> Result<Option<KeptBaseline>, KeptError> {
        let compare_path = dir.join(file::COMPARE_JSON);
        let kept_summary = dir.join(format!("{}{}", file::BASELINE_PREFIX, file::SUMMARY));
        if !kept_summary.exists() || !compare_path.exists() {
            return Ok(None);
        }
        let run = RunDir::load_kept(dir, file::BASELINE_PREFIX).map_err(KeptError::Baseline)?;
        let comparison = read_json(&compare_path)?;
        Ok(Some(KeptBaseline { run, comparison }))
    }

    /// The run shown against it, as the renderers take it.
    pub fn baseline(&self) -> crate::Baseline<'_> {
        crate::Baseline {
            run: &self.run,
            comparison: &self.comparison,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_the_summary_figures_without_the_mean_passes() {
        let mut h = LatencyHistogram::new(60_000_000);
        assert_eq!(Percentiles::of(&h).max, 0, "empty");
        for i in 0..10_000u64 {
            h.record(100 + (i * 7919) % 2_000_000);
        }
        let s = h.stats();
        let p = Percentiles::of(&h);
        assert_eq!(
            (p.p50, p.p90, p.p95, p.p99, p.max),
            (s.p50, s.p90, s.p95, s.p99, s.max)
        );
    }

    /// A time series written before rows counted their good requests still reads: its
    /// rows have none (and its plan no budget that needs them: goodput windows were
    /// refused then).
    #[test]
    fn a_series_row_without_good_counts_reads_as_none() {
        let mut shard = Shard::new(1, 60_000_000);
        shard.record(&loadgate_metrics::Sample::new(
            0,
            loadgate_metrics::Outcome::Success,
            1_000,
        ));
        let mut row =
            serde_json::to_value(SeriesRow::of(3, false, 10.0, &["a".into()], &shard)).unwrap();
        assert_eq!(
            (row["good"].clone(), row["endpoints"][0]["good"].clone()),
            (1.into(), 1.into())
        );
        row.as_object_mut().unwrap().remove("good");
        let e = row["endpoints"][0].as_object_mut().unwrap();
        e.remove("good");
        e.remove("good_service");
        let line = row.to_string();
        let row: SeriesRow = serde_json::from_str(&line).unwrap();
        assert_eq!((row.t, row.good), (3, 0));
        assert_eq!(
            (row.endpoints[0].good, row.endpoints[0].good_service),
            (0, 0)
        );
    }
}
