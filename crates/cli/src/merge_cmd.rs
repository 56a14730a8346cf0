//! `loadgate merge DIR... [--out DIR]`: the run directories of the segments of one split
//! load (`loadgate run --segment I/N`) merged into one run directory, as if one machine
//! had sent the whole load.
//!
//! - Histograms are added (HDR add: exact, never averaged percentiles), per endpoint and
//!   phase, and per interval from each segment's `intervals.hlog`.
//! - Counts are summed per interval, with intervals aligned by wall-clock second.
//! - The SLO budgets and the open model's validity are judged again on the merged data;
//!   a segment that was invalid on its own makes the merged run invalid.
//! - Every file is written as `loadgate run` writes it, by the same code, and the reports
//!   are rendered from them; the summary lists each segment with its achieved rate.
//!
//! Inputs are taken in segment order, whatever order they were given in, so the same
//! inputs always give byte-identical files. Inputs that are not the segments of one
//! load (other scenario, plan, target or version; a segment missing or given twice) are
//! refused before anything is written.

use loadgate_report::file;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use loadgate_engine::{IntervalView, RunStarted};
use loadgate_metrics::{EndpointShard, LatencyHistogram, Pauses, Shard};
use loadgate_report::{HistogramsFile, RunDir, SeriesRow};
use loadgate_slo::judge::{judge, Input as Judged, Stop};
use loadgate_slo::summary::{
    EndpointSummary, RunStart, RunSummary, SegmentInfo, SegmentRun, Verdict,
};
use loadgate_slo::window::{Second, WindowJudge};
use loadgate_slo::Budget;

use crate::exit::{Exit, Failure};
use crate::output;
use crate::progress::Progress;
use crate::MergeArgs;

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
    std::borrow::Cow::Owned(Shard::from_endpoints(endpoints.collect()))
}

/// One wall-clock second of the merged run.
struct Slot {
    /// Every segment's row for this second was warm-up.
    warmup: bool,
    /// Every segment's row for this second was drain.
    drain: bool,
    target: f64,
    /// Every segment's data for the second, drain included (the time series row).
    data: Shard,
    /// What segments in their measured phase recorded in it.
    measured: Shard,
    /// What segments already in their drain recorded in it.
    drained: Shard,
    pauses: Option<Pauses>,
}

/// Each second of a run's time series with its data.
type Intervals = Vec<(SeriesRow, Shard)>;

/// One segment's run directory, read back.
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

pub(crate) fn run(args: MergeArgs) -> Result<Exit, Failure> {
    let mut inputs = args
        .runs
        .iter()
        .map(|p| load_input(p))
        .collect::<Result<Vec<_>, _>>()?;
    inputs.sort_by_key(|i| i.info.index);
    check_inputs(&inputs)?;
    combine(inputs, Dest::Merge(&args))
}

/// Where the combined run goes.
enum Dest<'a> {
    /// A merge: a new run directory, as the flags say.
    Merge(&'a MergeArgs),
    /// A killed run recovered in its own directory: its streamed files stay as they are,
    /// and the summary, histograms and reports are added beside them.
    Recover(&'a Path, Option<&'a Path>),
}

/// Adds the inputs up, judges them as one run, and writes that run.
fn combine(inputs: Vec<Input>, into: Dest<'_>) -> Result<Exit, Failure> {
    let first = &inputs[0];
    let names = first.run.summary.endpoint_names();
    let open = first.run.summary.model == "open";
    let plan = first.info.plan.clone();
    let max_us = first
        .measured
        .endpoints()
        .first()
        .map_or(60_000_000, |e| e.latency.high());

    // Totals.
    let mut measured = Shard::new(names.len(), max_us);
    let mut warmup = Shard::new(names.len(), max_us);
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
    let mut intervals: BTreeMap<u64, Slot> = BTreeMap::new();
    for i in &inputs {
        let offset = (i.info.started_unix_ms - t0 + 500) / 1000;
        for (row, shard) in &i.intervals {
            let slot = intervals.entry(row.t + offset).or_insert_with(|| Slot {
                warmup: true,
                drain: true,
                target: 0.0,
                data: Shard::new(names.len(), max_us),
                measured: Shard::new(names.len(), max_us),
                drained: Shard::new(names.len(), max_us),
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
    });
    let mut invalid_reasons = j.invalid_reasons.clone();
    for i in &inputs {
        let s = &i.run.summary;
        if s.verdict == Verdict::Invalid {
            invalid_reasons.push(format!(
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
    let (stop, stop_detail) = match (stopped, &into) {
        (None, _) => ("completed".to_string(), None),
        (Some(i), Dest::Recover(..)) => (
            i.run.summary.stop.clone(),
            Some(format!(
                "the run did not finish writing its summary (killed, or its disk filled) after {:.0} s of its {:.0} s profile; judged by `loadgate report` from the {} whole seconds its time series and interval log both hold: status codes, bytes, send lag and connect times are not in them",
                warmup_s + measured_s,
                i.run.summary.duration_s,
                i.intervals.len()
            )),
        ),
        (Some(i), Dest::Merge(_)) => (
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
    let verdict = match j.verdict {
        Verdict::Pass | Verdict::Fail if !invalid_reasons.is_empty() => Verdict::Invalid,
        v => v,
    };

    let started_at = UNIX_EPOCH + Duration::from_millis(t0);
    let seconds = intervals.len() as f64;
    let dir = match &into {
        Dest::Merge(args) => output::OutDir::new_run(
            args.out.as_deref(),
            &args.reports_dir,
            &format!("{}-merged", first.run.summary.scenario),
            started_at,
            output::bytes_needed(seconds, names.len()),
        )?,
        Dest::Recover(folder, _) => output::OutDir::at(folder.to_path_buf())?,
    };

    // The time series, through the same writer as `loadgate run` (a recovered run keeps
    // its own).
    if let Dest::Merge(_) = into {
        let quiet = Progress::new(true, Duration::ZERO);
        crate::observers::write_series(&dir, started_at, &names, open, &quiet, |observers| {
            let run = RunStarted {
                at: started_at,
                interval: Duration::from_secs(1),
                endpoints: &names,
                warmup_intervals: intervals.values().filter(|s| s.warmup).count() as u64,
            };
            for o in observers.iter_mut() {
                o.started(&run);
            }
            let mut cumulative = Shard::new(names.len(), max_us);
            for (&index, slot) in &intervals {
                cumulative.merge_from(&slot.data);
                let end_s = ((index + 1) as f64).min(measured_end);
                let view = IntervalView {
                    index,
                    warmup: slot.warmup,
                    drain: slot.drain,
                    end_s: if slot.drain {
                        end_s
                    } else {
                        end_s.max(index as f64)
                    },
                    data: &slot.data,
                    target: slot.target,
                    cumulative: &cumulative,
                    pauses: slot.pauses,
                };
                // The file observers never ask for a stop: the seconds are all written.
                for o in observers.iter_mut() {
                    let _ = o.interval(&view);
                }
            }
            for o in observers.iter_mut() {
                o.finished();
            }
        })
        .map_err(|e| crate::startup::engine_failure(loadgate_engine::EngineError::Thread(e)))?;
    }

    let overall = measured.overall();
    let s = &first.run.summary;
    let summary = RunSummary {
        schema_version: s.schema_version,
        loadgate_version: s.loadgate_version.clone(),
        scenario: s.scenario.clone(),
        scenario_file: s.scenario_file.clone(),
        target: s.target.clone(),
        model: s.model.clone(),
        started_at: humantime::format_rfc3339_seconds(started_at).to_string(),
        ended_at: inputs
            .iter()
            .map(|i| i.run.summary.ended_at.clone())
            .max()
            .unwrap_or_default(),
        duration_s: s.duration_s,
        warmup_s,
        measured_s,
        drain_s: inputs
            .iter()
            .map(|i| i.run.summary.drain_s)
            .fold(0.0, f64::max),
        load: s.load.clone(),
        workers: inputs.iter().map(|i| i.run.summary.workers).sum(),
        pinned_cpus: inputs
            .iter()
            .flat_map(|i| i.run.summary.pinned_cpus.iter().copied())
            .collect(),
        verdict,
        stop,
        stop_detail: stop_detail.clone(),
        abandoned: inputs.iter().map(|i| i.run.summary.abandoned).sum(),
        invalid_reasons: invalid_reasons.clone(),
        rate: j.rate.clone(),
        pauses: inputs
            .iter()
            .filter_map(|i| i.run.summary.pauses)
            .reduce(|mut sum, p| {
                sum.add(&p);
                sum
            }),
        slo: j.slo.clone(),
        overall: EndpointSummary::of("all", &overall, measured_s),
        endpoints: names
            .iter()
            .zip(measured.endpoints())
            .map(|(n, e)| EndpointSummary::of(n, e, measured_s))
            .collect(),
        warmup: warmup_all.map(|w| EndpointSummary::of("all", &w, warmup_s)),
        files: s.files.clone(),
        git_commit: s.git_commit.clone(),
        ci_run: s.ci_run.clone(),
        segment: match into {
            Dest::Recover(..) => first.run.summary.segment.clone(),
            Dest::Merge(_) => None,
        },
        merged_from: match into {
            Dest::Recover(..) => Vec::new(),
            Dest::Merge(_) => inputs.iter().map(segment_run).collect(),
        },
    };
    let histograms = HistogramsFile::new(&names, &measured, &warmup);
    dir.write_json(file::HISTOGRAMS, &histograms);
    if dir.write_json(file::SUMMARY, &summary) {
        if let Dest::Merge(args) = into {
            output::link_latest(&args.reports_dir, dir.path());
        }
    }

    let (report, summary_md) = match into {
        Dest::Merge(args) => (!args.no_report, args.summary_md.as_deref()),
        Dest::Recover(_, md) => (true, md),
    };
    let mut note = String::new();
    if report {
        match RunDir::with(dir.path(), summary.clone(), Some(histograms), "") {
            Ok(merged) => {
                crate::report_cmd::write_reports(&merged, &dir, summary_md, None);
                if dir.problems().iter().all(|p| p.file != file::REPORT) {
                    note.push_str(&format!(
                        "report: {}\n",
                        dir.path().join(file::REPORT).display()
                    ));
                }
            }
            Err(e) => dir.note(file::REPORT, format!("the reports were not rendered: {e}")),
        }
    }
    note.push_str(&dir.problem_lines());

    if let Dest::Recover(..) = into {
        // The report command's own outcome: the recovered run's verdict is in its files
        // and on the console, and a killed run never passes.
        crate::run_cmd::tell(&summary, dir.path(), &note);
        // A run that did not finish never passes: 130, as an interrupted run.
        return Ok(Exit::Interrupted);
    }
    let mut out = format!(
        "merged {} segments of `{}`:\n",
        inputs.len(),
        summary.scenario
    );
    for r in &summary.merged_from {
        out.push_str(&format!(
            "  {:>7}  {}  sent {:.1} rps{}  {}\n",
            r.segment,
            r.run,
            r.achieved_rps,
            r.achieved_ratio
                .map(|a| format!(" ({:.1}% of its share)", a * 100.0))
                .unwrap_or_default(),
            r.verdict.word()
        ));
    }
    output::print_out(&out);
    Ok(dir.exit(crate::run_cmd::tell(&summary, dir.path(), &note)))
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
fn plan_budgets(budgets: &[String], names: &[String]) -> Result<PlanBudgets, Failure> {
    let mut global = Vec::new();
    let mut per_endpoint = Vec::new();
    for b in budgets {
        let parse = |expr: &str| {
            loadgate_slo::parse(expr).map_err(|e| {
                Failure::config(format!(
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
                return Err(Failure::config(format!(
                    "the segments' budget `{b}` names no endpoint of the scenario"
                )))
            }
        }
    }
    Ok((global, per_endpoint))
}

/// Reads one segment's run directory and rebuilds its shards.
fn load_input(path: &Path) -> Result<Input, Failure> {
    let run = crate::report_cmd::load_run(path, "merge")?;
    let shown = run.dir.display().to_string();
    let info = run.summary.segment.clone().ok_or_else(|| {
        Failure::config(format!(
            "merge: {shown} was not run with --segment\n  hint: merge combines the segments of one load: run each with `loadgate run --segment I/N` and pass every run directory"
        ))
    })?;
    let hist = run.histograms.as_ref().ok_or_else(|| {
        Failure::config(format!(
            "merge: {shown} has no histograms.json, so its latencies cannot be merged exactly\n  hint: pass the run directory as `loadgate run` wrote it"
        ))
    })?;
    let bad = |what: &str, e: String| {
        Failure::config(format!("merge: {shown}/{what}: {e}\n  hint: the file was changed or cut short; run the segment again"))
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
    let decode = |h: Result<LatencyHistogram, loadgate_metrics::DecodeError>| {
        h.map_err(|e| bad(file::HISTOGRAMS, e.to_string()))
    };
    let mut endpoints = Vec::new();
    for (pair, e) in hist.measured.endpoints.iter().zip(&s.endpoints) {
        endpoints.push(counted(
            [
                decode(pair.latency())?,
                decode(pair.service())?,
                decode(pair.send_lag(60_000_000))?,
                decode(pair.connect(60_000_000))?,
            ],
            e,
        )?);
    }
    let measured = Shard::from_endpoints(endpoints);
    let max_us = measured
        .endpoints()
        .first()
        .map_or(60_000_000, |e| e.latency.high());
    let mut warm = Vec::new();
    for pair in &hist.warmup.endpoints {
        let mut e = EndpointShard::new(max_us);
        e.latency = decode(pair.latency())?;
        e.service = decode(pair.service())?;
        warm.push(e);
    }
    let warmup_all = match &s.warmup {
        Some(w) => Some(counted(
            [
                decode(hist.warmup.all.latency())?,
                decode(hist.warmup.all.service())?,
                decode(hist.warmup.all.send_lag(max_us))?,
                decode(hist.warmup.all.connect(max_us))?,
            ],
            w,
        )?),
        None => None,
    };

    let (intervals, _) = intervals_of(&run, max_us)?;
    Ok(Input {
        run,
        info,
        measured,
        warmup: Shard::from_endpoints(warm),
        warmup_all,
        intervals,
        scheduled: None,
    })
}

/// An endpoint's histograms (latency, service time, send lag, connect time) with the
/// counts its summary kept.
fn counted(
    [latency, service, send_lag, connect]: [LatencyHistogram; 4],
    e: &EndpointSummary,
) -> Result<EndpointShard, Failure> {
    let mut statuses = BTreeMap::new();
    for (code, n) in &e.statuses {
        let code: u16 = code.parse().map_err(|_| {
            Failure::config(format!(
                "merge: summary.json lists the status `{code}`, which is not an HTTP status"
            ))
        })?;
        statuses.insert(code, *n);
    }
    Ok(EndpointShard {
        latency,
        service,
        send_lag,
        connect,
        connects: e.connects,
        due_successes: Default::default(),
        outcomes: e.outcomes,
        statuses,
        bytes: e.bytes,
        sent: e.sent,
        late: e.late,
        dropped: e.dropped,
        local_errors: e.local_errors,
        unbuilt: e.unbuilt,
        resent: e.resent,
    })
}

/// Each second of a run directory's time series, rebuilt: counts from
/// `timeseries.jsonl`, histograms from `intervals.hlog`; and the log's start time, in
/// milliseconds since the Unix epoch.
fn intervals_of(run: &RunDir, max_us: u64) -> Result<(Intervals, Option<u64>), Failure> {
    intervals_of_until(run, max_us, false)
}

/// [`intervals_of`]; with `cut` (a killed run's files), the interval log may end in a
/// cut entry, and only the seconds both files hold are taken.
fn intervals_of_until(
    run: &RunDir,
    max_us: u64,
    cut: bool,
) -> Result<(Intervals, Option<u64>), Failure> {
    let shown = run.dir.display().to_string();
    let bad = |what: &str, e: String| {
        Failure::config(format!(
            "{shown}/{what}: {e}\n  hint: the file was changed or cut short"
        ))
    };
    let names = run.summary.endpoint_names();
    let hlog_path = run.dir.join(file::INTERVALS);
    let hlog = std::fs::read(&hlog_path).map_err(|e| bad(file::INTERVALS, e.to_string()))?;
    let (mut by_interval, start_ms) =
        read_hlog_until(&hlog, cut).map_err(|e| bad(file::INTERVALS, e))?;
    let tags: Vec<String> = names
        .iter()
        .map(|n| loadgate_scenario::log_tag(n))
        .collect();
    let mut intervals = Vec::new();
    for row in &run.series {
        // Every second the log holds has its untagged (all endpoints) entry.
        if cut
            && !by_interval
                .get(&row.t)
                .is_some_and(|h| h.contains_key("all"))
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
            e.latency = take(tag);
            e.service = take(&format!("{tag}.service"));
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

/// `loadgate report DIR` of a run killed before it wrote `summary.json`: `run.json` says
/// what it was asked, its streamed files what it measured up to the kill. It is judged
/// as an interrupted run (it never passes), and its summary, histograms and reports are
/// written beside the streamed files, which stay as they are.
pub(crate) fn recover(folder: &Path, summary_md: Option<&Path>) -> Result<Exit, Failure> {
    let path = folder.join(file::RUN);
    let start: RunStart = std::fs::read_to_string(&path)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
        .map_err(|e| Failure::config(format!("report: {}: {e}", path.display())))?;
    let max_us = start.histogram_max_us;
    let skeleton = start.unmeasured(crate::run_cmd::run_files());
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
    let text = std::fs::read(&series_path)
        .map_err(|e| Failure::config(format!("report: {}: {e}", series_path.display())))?;
    for line in String::from_utf8_lossy(&text).lines() {
        match serde_json::from_str::<SeriesRow>(line) {
            Ok(row) => run.series.push(row),
            Err(_) => break,
        }
    }
    let (intervals, start_ms) = intervals_of_until(&run, max_us, true)?;
    if intervals.is_empty() {
        return Err(Failure::config(format!(
            "report: {} holds no whole second of a run in both its time series and its interval log (it stopped before its first second ended): nothing to judge",
            folder.display()
        )));
    }
    // The measured phase: the seconds after the warm-up and before the drain.
    let mut measured = Shard::new(start.endpoints.len(), max_us);
    let mut warmup = Shard::new(start.endpoints.len(), max_us);
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
    combine(vec![input], Dest::Recover(folder, summary_md))
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
                let tag = h.tag().map_or("all", |t| t.as_str()).to_string();
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

/// Refuses inputs that are not exactly the N segments of one load.
fn check_inputs(inputs: &[Input]) -> Result<(), Failure> {
    let Some(first) = inputs.first() else {
        return Err(Failure::config("merge: no run directories given"));
    };
    let name = |i: &Input| i.run.dir.display().to_string();
    let n = first.info.count;
    for i in inputs {
        if i.info.count != n {
            return Err(Failure::config(format!(
                "merge: {} is segment {}/{} but {} is {}/{}: they split the load differently\n  hint: pass the run directories of one split (every segment of the same N)",
                name(first), first.info.index, n, name(i), i.info.index, i.info.count
            )));
        }
        let (a, b) = (&first.run.summary, &i.run.summary);
        for (what, x, y) in [
            ("scenario", &a.scenario, &b.scenario),
            ("target", &a.target, &b.target),
            ("loadgate version", &a.loadgate_version, &b.loadgate_version),
        ] {
            if x != y {
                return Err(Failure::config(format!(
                    "merge: {} and {} ran different {what}s (`{x}` and `{y}`)\n  hint: merge only the segments of one load",
                    name(first),
                    name(i)
                )));
            }
        }
        if a.schema_version != b.schema_version {
            return Err(Failure::config(format!(
                "merge: {} and {} have different summary layouts ({} and {})",
                name(first),
                name(i),
                a.schema_version,
                b.schema_version
            )));
        }
        if first.info.start_at != i.info.start_at {
            return Err(Failure::config(format!(
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
                return Err(Failure::config(format!(
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
            return Err(Failure::config(format!(
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
        return Err(Failure::config(format!(
            "merge: segment{} {} missing, so the merged load would not be the whole load\n  hint: pass the run directories of all {n} segments",
            if missing.len() > 1 { "s" } else { "" },
            missing.join(", ")
        )));
    }
    Ok(())
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
