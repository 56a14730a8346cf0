//! Combining run directories into one: the segments of one split load (`loadgate run
//! --segment I/N`) merged as if one machine had sent the whole load, and a run killed
//! before it wrote `summary.json` recovered from what it streamed.
//!
//! - Histograms are added (HDR add: exact, never averaged percentiles), per endpoint and
//!   phase, and per interval from each segment's `intervals.hlog`.
//! - Counts are summed per interval, with intervals aligned by wall-clock second.
//! - The SLO budgets and the open model's validity are judged again on the combined
//!   data (`loadgate_slo::judge`, as a run is); a segment that was invalid on its own
//!   makes the merged run invalid.
//!
//! Inputs are taken in segment order, whatever order they were given in, so the same
//! inputs always give byte-identical files. Inputs that are not the segments of one
//! load (other scenario, plan, target or version; a segment missing or given twice) are
//! refused before anything is written. Writing the combined run is the caller's: the
//! result holds the summary, the histograms and every second's data.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use loadgate_metrics::{EndpointShard, LatencyHistogram, Pauses, Shard, Timings};
use loadgate_slo::judge::{judge, Input as Judged, Stop};
use loadgate_slo::summary::{
    EndpointSummary, Measured, RunStart, RunSummary, SegmentInfo, SegmentRun, Stopped, Verdict,
};
use loadgate_slo::window::{Second, WindowJudge};
use loadgate_slo::Budget;

use crate::file;
use crate::interval_log::{intervals_of, intervals_of_until};
use crate::rundir::{EncodedPair, HistogramsFile, RunDir, SeriesRow};

/// Run directories that cannot be combined: what is wrong, with a hint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MergeError(String);

impl MergeError {
    pub(crate) fn new(message: impl Into<String>) -> MergeError {
        MergeError(message.into())
    }
}

/// How the combined run came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The segments of one load, merged into a new run.
    Merge,
    /// A killed run, judged from its own streamed files.
    Recover,
}

/// A combined run, judged, ready to be written.
#[derive(Debug)]
pub struct Combined {
    /// Its summary (verdict, budgets, figures; `files` as a run lists them).
    pub summary: RunSummary,
    /// Its histograms.
    pub histograms: HistogramsFile,
    /// Every second, by its index from the combined start (a merge writes its time
    /// series and interval log from them).
    pub seconds: BTreeMap<u64, MergedSecond>,
    /// Endpoint names, in scenario order.
    pub names: Vec<String>,
    /// The open model.
    pub open: bool,
    /// When second 0 began.
    pub started_at: SystemTime,
    /// The histograms' bound, µs.
    pub max_us: u64,
    /// How many run directories were combined.
    pub segments: usize,
    /// Where the combined measured phase ends, in seconds from second 0 (where the last
    /// segment's does).
    pub measured_end_s: f64,
}

/// The run directories at `paths`, the segments of one load, merged into one run and
/// judged as one.
pub fn merge(paths: &[&Path]) -> Result<Combined, MergeError> {
    let mut inputs = paths
        .iter()
        .map(|p| load_input(p))
        .collect::<Result<Vec<_>, _>>()?;
    inputs.sort_by_key(|i| i.info.index);
    check_inputs(&inputs)?;
    combine(inputs, Kind::Merge)
}

/// The run killed in `folder` before it wrote its summary, judged from its `run.json`
/// and the seconds its time series and interval log both hold. It never passes: it is
/// judged as an interrupted run.
pub fn recover(folder: &Path) -> Result<Combined, MergeError> {
    let path = folder.join(file::RUN);
    let start: RunStart = crate::read::text(&path)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
        .map_err(|e| MergeError::new(format!("report: {}: {e}", path.display())))?;
    let max_us = start.histogram_max_us;
    let skeleton = start.unmeasured(file::summary_files());
    // Its series is read below, as far as it is whole.
    let mut run = RunDir {
        dir: folder.to_path_buf(),
        summary: skeleton,
        histograms: None,
        series: Vec::new(),
    };
    // The time series as far as it is whole: a line cut by the kill, or the zeros a lost
    // machine's file system can leave, ends it.
    let series_path = folder.join(file::SERIES);
    let text = crate::read::bytes(&series_path)
        .map_err(|e| MergeError::new(format!("report: {}: {e}", series_path.display())))?;
    for line in String::from_utf8_lossy(&text).lines() {
        match serde_json::from_str::<SeriesRow>(line) {
            Ok(row) => run.series.push(row),
            Err(_) => break,
        }
    }
    let (intervals, start_ms) = intervals_of_until(&run, max_us, true)?;
    if intervals.is_empty() {
        return Err(MergeError::new(format!(
            "report: {} holds no whole second of a run in both its time series and its interval log (it stopped before its first second ended): nothing to judge",
            folder.display()
        )));
    }
    // The measured phase: the seconds after the warm-up and before the drain.
    let mut measured = run.summary.empty_shard(max_us);
    let mut warmup = run.summary.empty_shard(max_us);
    let mut scheduled = 0.0;
    let (mut warm_s, mut measured_s) = (0.0, 0.0);
    for (row, shard) in &intervals {
        if row.warmup {
            warmup.merge_from(shard);
            warm_s += 1.0;
        } else {
            measured.merge_from(shard);
            if !row.drain {
                measured_s += 1.0;
                scheduled += row.target;
            }
        }
        if let Some(p) = &row.pauses {
            run.summary
                .pauses
                .get_or_insert_with(|| Pauses::new(p.threshold_us))
                .add(p);
        }
    }
    let started_unix_ms = start_ms.unwrap_or(0);
    let at = |s: f64| {
        humantime::format_rfc3339_seconds(
            UNIX_EPOCH + Duration::from_millis(started_unix_ms) + Duration::from_secs_f64(s),
        )
        .to_string()
    };
    run.summary.started_at = at(0.0);
    run.summary.ended_at = at(intervals.len() as f64);
    run.summary.warmup_s = warm_s;
    run.summary.measured_s = measured_s;
    let warmup_all = (warm_s > 0.0).then(|| warmup.overall());
    let info = SegmentInfo {
        started_unix_ms,
        ..start.segment.clone().unwrap_or(SegmentInfo {
            index: 1,
            count: 1,
            start_at: None,
            started_unix_ms,
            plan: start.plan.clone(),
        })
    };
    let input = Input {
        run,
        info,
        measured,
        warmup,
        warmup_all,
        intervals,
        scheduled: Some(scheduled),
    };
    combine(vec![input], Kind::Recover)
}

/// `shard` with the seconds its successes were due in moved `offset` seconds later (a
/// segment that began that much after the first), as its intervals are.
fn shifted(shard: &Shard, offset: u64) -> std::borrow::Cow<'_, Shard> {
    if offset == 0 {
        return std::borrow::Cow::Borrowed(shard);
    }
    let endpoints = shard.endpoints().iter().map(|e| {
        let mut e = e.clone();
        let mut due = loadgate_metrics::BySecond::default();
        due.merge_shifted(&e.due_successes, offset);
        e.due_successes = due;
        e
    });
    std::borrow::Cow::Owned(Shard::from_endpoints(endpoints.collect(), shard.rows()))
}

/// One wall-clock second of the combined run.
#[derive(Debug)]
pub struct MergedSecond {
    /// Every segment's row for this second was warm-up.
    pub warmup: bool,
    /// Every segment's row for this second was drain.
    pub drain: bool,
    /// Arrivals due (open model) or VUs (closed), summed over the segments.
    pub target: f64,
    /// Every segment's data for the second, drain included (the time series row).
    pub data: Shard,
    /// What segments in their measured phase recorded in it.
    measured: Shard,
    /// What segments already in their drain recorded in it.
    drained: Shard,
    /// Pauses of the generating processes that ended in it.
    pub pauses: Option<Pauses>,
}

/// One segment's run directory, read back.
#[derive(Debug)]
struct Input {
    run: RunDir,
    info: SegmentInfo,
    /// Measured phase, per endpoint.
    measured: Shard,
    /// Warm-up histograms per endpoint (counts are only kept for all endpoints).
    warmup: Shard,
    /// Warm-up, all endpoints, with counts.
    warmup_all: Option<EndpointShard>,
    /// Each second of its time series, rebuilt from `timeseries.jsonl` and
    /// `intervals.hlog`.
    intervals: Vec<(SeriesRow, Shard)>,
    /// Arrivals scheduled in its measured phase, when its summary does not say (a
    /// recovered run).
    scheduled: Option<f64>,
}

/// Adds the inputs up and judges them as one run.
fn combine(inputs: Vec<Input>, kind: Kind) -> Result<Combined, MergeError> {
    let first = &inputs[0];
    let names = first.run.summary.endpoint_names();
    let open = first.run.summary.model == "open";
    let plan = first.info.plan.clone();
    let max_us = first
        .measured
        .endpoints()
        .first()
        .map_or(60_000_000, |e| e.latency().high());

    // Totals.
    let mut measured = first.run.summary.empty_shard(max_us);
    let mut warmup = first.run.summary.empty_shard(max_us);
    let mut warmup_all: Option<EndpointShard> = None;
    for i in &inputs {
        measured.merge_from(&i.measured);
        warmup.merge_from(&i.warmup);
        if let Some(w) = &i.warmup_all {
            warmup_all
                .get_or_insert_with(|| EndpointShard::new(max_us))
                .merge_from(w);
        }
    }
    let measured_s = inputs
        .iter()
        .map(|i| i.run.summary.measured_s)
        .fold(0.0, f64::max);
    let warmup_s = first.run.summary.warmup_s;

    // Intervals, aligned by wall-clock second from the earliest start.
    let t0 = inputs
        .iter()
        .map(|i| i.info.started_unix_ms)
        .min()
        .unwrap_or(0);
    let mut intervals: BTreeMap<u64, MergedSecond> = BTreeMap::new();
    for i in &inputs {
        let offset = (i.info.started_unix_ms - t0 + 500) / 1000;
        for (row, shard) in &i.intervals {
            let slot = intervals
                .entry(row.t + offset)
                .or_insert_with(|| MergedSecond {
                    warmup: true,
                    drain: true,
                    target: 0.0,
                    data: first.run.summary.empty_shard(max_us),
                    measured: first.run.summary.empty_shard(max_us),
                    drained: first.run.summary.empty_shard(max_us),
                    pauses: None,
                });
            // A second is drain only when no segment was still sending in it: one
            // segment's drain may fall in another's measured phase (they need not start
            // together), and those answers are drain, the others' measured.
            slot.drain &= row.drain;
            slot.warmup &= row.warmup;
            slot.target += row.target;
            let shard = shifted(shard, offset);
            slot.data.merge_from(&shard);
            if row.drain {
                slot.drained.merge_from(&shard);
            } else if !row.warmup {
                slot.measured.merge_from(&shard);
            }
            if let Some(p) = &row.pauses {
                slot.pauses
                    .get_or_insert_with(|| Pauses::new(p.threshold_us))
                    .add(p);
            }
        }
    }

    // Judge on the merged data.
    let (global, per_endpoint) = plan_budgets(&plan.budgets, &names)?;
    let scheduled: f64 = inputs
        .iter()
        .filter_map(|i| {
            i.run
                .summary
                .rate
                .as_ref()
                .map(|r| r.scheduled)
                .or(i.scheduled)
        })
        .sum();
    let missed: u64 = inputs
        .iter()
        .filter_map(|i| i.run.summary.rate.as_ref())
        .map(|r| r.missed)
        .sum();
    let facts = open.then(|| plan.open_facts(scheduled, missed, None));
    let scoped: Vec<(Option<usize>, &Budget)> = global
        .iter()
        .map(|b| (None, b))
        .chain(per_endpoint.iter().map(|(i, b)| (Some(*i), b)))
        .collect();
    // The windowed budgets over the merged seconds, as one run would have judged them.
    let mut windows = WindowJudge::new(scoped.iter().copied(), open, max_us, None);
    // The merged measured phase ends where the last segment's does.
    let measured_end = inputs
        .iter()
        .map(|i| {
            let offset = (i.info.started_unix_ms - t0 + 500) / 1000;
            offset as f64 + i.run.summary.warmup_s + i.run.summary.measured_s
        })
        .fold(0.0, f64::max);
    for (&index, slot) in &intervals {
        if !slot.drain && !slot.warmup {
            windows.push(Second {
                start_s: index as f64,
                end_s: ((index + 1) as f64).min(measured_end).max(index as f64),
                shard: &slot.measured,
            });
        }
        windows.fold_drain(&slot.drained);
    }
    // A segment that was invalid on its own makes the merged run invalid.
    let mut segments_invalid = Vec::new();
    for i in &inputs {
        let s = &i.run.summary;
        if s.verdict == Verdict::Invalid {
            segments_invalid.push(format!(
                "segment {}/{} ({}) was invalid on its own: {}",
                i.info.index,
                i.info.count,
                dir_name(&i.run.dir),
                if s.invalid_reasons.is_empty() {
                    "see its summary".to_string()
                } else {
                    s.invalid_reasons.join("; ")
                }
            ));
        }
    }
    let stopped = inputs.iter().find(|i| i.run.summary.stop != "completed");
    let j = judge(&Judged {
        names: &names,
        measured: &measured,
        measured_s,
        budgets: &scoped,
        windows: &windows.finish(),
        open: facts,
        stop: match stopped.map(|i| i.run.summary.stop.as_str()) {
            None => Stop::Completed,
            Some("aborted") => Stop::Aborted,
            Some(_) => Stop::Interrupted,
        },
        invalid_before: &segments_invalid,
        goodput_limits: &inputs[0].run.summary.goodput_limits,
    });
    let (stop, stop_detail) = match (stopped, kind) {
        (None, _) => ("completed".to_string(), None),
        (Some(i), Kind::Recover) => (
            i.run.summary.stop.clone(),
            Some(format!(
                "the run did not finish writing its summary (killed, or its disk filled) after {:.0} s of its {:.0} s profile; judged by `loadgate report` from the {} whole seconds its time series and interval log both hold: status codes and bytes are not in them",
                warmup_s + measured_s,
                i.run.summary.duration_s,
                i.intervals.len()
            )),
        ),
        (Some(i), Kind::Merge) => (
            i.run.summary.stop.clone(),
            Some(format!(
                "segment {}/{}: {}",
                i.info.index,
                i.info.count,
                i.run
                    .summary
                    .stop_detail
                    .clone()
                    .unwrap_or_else(|| i.run.summary.stop.clone())
            )),
        ),
    };

    let started_at = UNIX_EPOCH + Duration::from_millis(t0);
    // What the first segment was asked (scenario, target, load, CI facts), with what
    // the segments measured together.
    let identity = RunSummary {
        segment: match kind {
            Kind::Recover => first.run.summary.segment.clone(),
            Kind::Merge => None,
        },
        merged_from: match kind {
            Kind::Recover => Vec::new(),
            Kind::Merge => inputs.iter().map(segment_run).collect(),
        },
        ..first.run.summary.clone()
    };
    let m = Measured {
        names: &names,
        measured: &measured,
        warmup: warmup_all.as_ref(),
        started_at: humantime::format_rfc3339_seconds(started_at).to_string(),
        ended_at: inputs
            .iter()
            .map(|i| i.run.summary.ended_at.clone())
            .max()
            .unwrap_or_default(),
        warmup_s,
        measured_s,
        drain_s: inputs
            .iter()
            .map(|i| i.run.summary.drain_s)
            .fold(0.0, f64::max),
        workers: inputs.iter().map(|i| i.run.summary.workers).sum(),
        pinned_cpus: inputs
            .iter()
            .flat_map(|i| i.run.summary.pinned_cpus.iter().copied())
            .collect(),
        abandoned: inputs.iter().map(|i| i.run.summary.abandoned).sum(),
        pauses: inputs
            .iter()
            .filter_map(|i| i.run.summary.pauses)
            .reduce(|mut sum, p| {
                sum.add(&p);
                sum
            }),
    };
    let summary = RunSummary::judged(
        identity,
        &m,
        j,
        Stopped {
            stop,
            detail: stop_detail,
        },
    );
    let histograms = HistogramsFile::new(&names, &measured, &warmup);
    Ok(Combined {
        started_at,
        summary,
        histograms,
        seconds: intervals,
        names,
        open,
        max_us,
        segments: inputs.len(),
        measured_end_s: measured_end,
    })
}

fn dir_name(p: &Path) -> String {
    p.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn segment_run(i: &Input) -> SegmentRun {
    let s = &i.run.summary;
    let per_s = |n: u64| {
        if s.measured_s > 0.0 {
            n as f64 / s.measured_s
        } else {
            0.0
        }
    };
    SegmentRun {
        segment: format!("{}/{}", i.info.index, i.info.count),
        run: dir_name(&i.run.dir),
        started_at: s.started_at.clone(),
        verdict: s.verdict,
        workers: s.workers,
        sent: s.overall.sent,
        requests: s.overall.requests,
        target_rps: s.rate.as_ref().map(|r| r.target_rps),
        achieved_rps: s
            .rate
            .as_ref()
            .map_or(per_s(s.overall.sent), |r| r.achieved_rps),
        achieved_ratio: s.rate.as_ref().map(|r| r.achieved_ratio),
        late: s.overall.late,
        dropped: s.overall.dropped,
        error_rate: s.overall.error_rate,
    }
}

/// Global budgets, and per-endpoint ones by endpoint index.
type PlanBudgets = (Vec<Budget>, Vec<(usize, Budget)>);

/// The budgets of a segment plan (`scope: expression`), global and per endpoint.
fn plan_budgets(budgets: &[String], names: &[String]) -> Result<PlanBudgets, MergeError> {
    let mut global = Vec::new();
    let mut per_endpoint = Vec::new();
    for b in budgets {
        let parse = |expr: &str| {
            loadgate_slo::parse(expr).map_err(|e| {
                MergeError::new(format!(
                    "the segments' budget `{b}` does not parse ({}); were they written by another loadgate version?",
                    e.message
                ))
            })
        };
        if let Some(expr) = b.strip_prefix("global: ") {
            global.push(parse(expr)?);
            continue;
        }
        // The longest endpoint name that prefixes it (names may contain ": ").
        let hit = names
            .iter()
            .enumerate()
            .filter(|(_, n)| b.starts_with(&format!("{n}: ")))
            .max_by_key(|(_, n)| n.len());
        match hit {
            Some((i, n)) => per_endpoint.push((i, parse(&b[n.len() + 2..])?)),
            None => {
                return Err(MergeError::new(format!(
                    "the segments' budget `{b}` names no endpoint of the scenario"
                )))
            }
        }
    }
    Ok((global, per_endpoint))
}

/// Reads one segment's run directory and rebuilds its shards.
fn load_input(path: &Path) -> Result<Input, MergeError> {
    let run = RunDir::load(path).map_err(|e| {
        MergeError::new(format!(
            "merge: {e}\n  hint: pass a folder written by `loadgate run`, or its summary.json"
        ))
    })?;
    let shown = run.dir.display().to_string();
    let info = run.summary.segment.clone().ok_or_else(|| {
        MergeError::new(format!(
            "merge: {shown} was not run with --segment\n  hint: merge combines the segments of one load: run each with `loadgate run --segment I/N` and pass every run directory"
        ))
    })?;
    let hist = run.histograms.as_ref().ok_or_else(|| {
        MergeError::new(format!(
            "merge: {shown} has no histograms.json, so its latencies cannot be merged exactly\n  hint: pass the run directory as `loadgate run` wrote it"
        ))
    })?;
    let bad = |what: &str, e: String| {
        MergeError::new(format!("merge: {shown}/{what}: {e}\n  hint: the file was changed or cut short; run the segment again"))
    };
    let s = &run.summary;
    if hist.measured.endpoints.len() != s.endpoints.len()
        || hist.warmup.endpoints.len() != s.endpoints.len()
    {
        return Err(bad(
            file::HISTOGRAMS,
            format!(
                "{} endpoints, but summary.json has {}",
                hist.measured.endpoints.len(),
                s.endpoints.len()
            ),
        ));
    }
    let decode = |pair: &EncodedPair| {
        pair.decode()
            .map_err(|e| bad(file::HISTOGRAMS, e.to_string()))
    };
    let mut endpoints = Vec::new();
    for (pair, e) in hist.measured.endpoints.iter().zip(&s.endpoints) {
        endpoints.push(counted(decode(pair)?, e)?);
    }
    let rows = s.row_layout();
    let measured = Shard::from_endpoints(endpoints, rows);
    let max_us = measured
        .endpoints()
        .first()
        .map_or(60_000_000, |e| e.latency().high());
    let mut warm = Vec::new();
    for pair in &hist.warmup.endpoints {
        let mut e = EndpointShard::new(max_us);
        e.timings = decode(pair)?;
        warm.push(e);
    }
    let warmup_all = match &s.warmup {
        Some(w) => Some(counted(decode(&hist.warmup.all)?, w)?),
        None => None,
    };

    let (intervals, _) = intervals_of(&run, max_us)?;
    Ok(Input {
        run,
        info,
        measured,
        warmup: Shard::from_endpoints(warm, rows),
        warmup_all,
        intervals,
        scheduled: None,
    })
}

/// An endpoint's histograms with the counts its summary kept.
fn counted(
    timings: Timings<LatencyHistogram>,
    e: &EndpointSummary,
) -> Result<EndpointShard, MergeError> {
    let mut statuses = BTreeMap::new();
    for (code, n) in &e.statuses {
        let code: u16 = code.parse().map_err(|_| {
            MergeError::new(format!(
                "merge: summary.json lists the status `{code}`, which is not an HTTP status"
            ))
        })?;
        statuses.insert(code, *n);
    }
    Ok(EndpointShard {
        timings,
        connects: e.connects,
        due_successes: Default::default(),
        outcomes: e.outcomes,
        statuses,
        bytes: e.bytes,
        decoded_bytes: e.decoded_bytes,
        protocols: e.protocol_counts(),
        sent: e.sent,
        late: e.late,
        dropped: e.dropped,
        local_errors: e.local_errors,
        unbuilt: e.unbuilt,
        resent: e.resent,
        streams: e.stream.map(|s| s.counts()).unwrap_or_default(),
        good: e.good,
        good_service: e.good_service,
        redirects: e.redirects,
        cookies_dropped: e.cookies_dropped,
        failures: (!e.failures.is_empty()).then(|| Box::new(e.failures.clone())),
    })
}

/// Refuses inputs that are not exactly the N segments of one load.
fn check_inputs(inputs: &[Input]) -> Result<(), MergeError> {
    let Some(first) = inputs.first() else {
        return Err(MergeError::new("merge: no run directories given"));
    };
    let name = |i: &Input| i.run.dir.display().to_string();
    let n = first.info.count;
    for i in inputs {
        if i.info.count != n {
            return Err(MergeError::new(format!(
                "merge: {} is segment {}/{} but {} is {}/{}: they split the load differently\n  hint: pass the run directories of one split (every segment of the same N)",
                name(first), first.info.index, n, name(i), i.info.index, i.info.count
            )));
        }
        let (a, b) = (&first.run.summary, &i.run.summary);
        for (what, x, y) in [
            ("scenario", &a.scenario, &b.scenario),
            ("target", &a.target, &b.target),
            ("endpoint base", &bases(a), &bases(b)),
            ("loadgate version", &a.loadgate_version, &b.loadgate_version),
        ] {
            if x != y {
                return Err(MergeError::new(format!(
                    "merge: {} and {} ran different {what}s (`{x}` and `{y}`)\n  hint: merge only the segments of one load",
                    name(first),
                    name(i)
                )));
            }
        }
        if a.schema_version != b.schema_version {
            return Err(MergeError::new(format!(
                "merge: {} and {} have different summary layouts ({} and {})",
                name(first),
                name(i),
                a.schema_version,
                b.schema_version
            )));
        }
        if first.info.start_at != i.info.start_at {
            return Err(MergeError::new(format!(
                "merge: {} and {} were given different --start-at times ({} and {})\n  hint: start every segment with the same --start-at",
                name(first),
                name(i),
                first.info.start_at.as_deref().unwrap_or("none"),
                i.info.start_at.as_deref().unwrap_or("none")
            )));
        }
        let pa = serde_json::to_value(&first.info.plan).unwrap_or_default();
        let pb = serde_json::to_value(&i.info.plan).unwrap_or_default();
        if let (Some(pa), Some(pb)) = (pa.as_object(), pb.as_object()) {
            if let Some((key, va)) = pa.iter().find(|(k, v)| pb.get(*k) != Some(v)) {
                return Err(MergeError::new(format!(
                    "merge: {} and {} ran different loads: `{key}` is {va} in one and {} in the other\n  hint: run every segment with the same scenario file and flags",
                    name(first),
                    name(i),
                    pb.get(key).cloned().unwrap_or_default()
                )));
            }
        }
    }
    for w in inputs.windows(2) {
        if w[0].info.index == w[1].info.index {
            return Err(MergeError::new(format!(
                "merge: segment {}/{n} was given twice: {} and {}\n  hint: pass each segment's run directory once",
                w[0].info.index,
                name(&w[0]),
                name(&w[1])
            )));
        }
    }
    let missing: Vec<String> = (1..=n)
        .filter(|k| !inputs.iter().any(|i| i.info.index == *k))
        .map(|k| format!("{k}/{n}"))
        .collect();
    if !missing.is_empty() {
        return Err(MergeError::new(format!(
            "merge: segment{} {} missing, so the merged load would not be the whole load\n  hint: pass the run directories of all {n} segments",
            if missing.len() > 1 { "s" } else { "" },
            missing.join(", ")
        )));
    }
    Ok(())
}

/// A summary's endpoint bases (`name=base, ...`; `none` without any), to compare and name.
fn bases(s: &RunSummary) -> String {
    match s.bases.is_empty() {
        true => "none".into(),
        false => s
            .bases
            .iter()
            .map(|(name, base)| format!("{name}={base}"))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_budgets_find_their_endpoint_even_with_a_colon_in_its_name() {
        let names = vec!["a".to_string(), "a: b".to_string()];
        let (g, e) = plan_budgets(
            &[
                "global: p95 < 2s".to_string(),
                "a: b: p99 < 1s".to_string(),
                "a: error_rate < 1%".to_string(),
            ],
            &names,
        )
        .unwrap();
        assert_eq!(g.len(), 1);
        assert_eq!(e.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [1, 0]);
        assert!(plan_budgets(&["nope: p95 < 1s".to_string()], &names).is_err());
    }
}
