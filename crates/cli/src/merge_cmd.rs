//! `loadgate merge DIR... [--out DIR]` and the recovery of a killed run: combining and
//! judging is `loadgate_report::merge`'s; this writes the combined run as `loadgate run`
//! writes one, by the same code, and says what it found.

use std::path::Path;
use std::time::Duration;

use loadgate_engine::{IntervalView, RunStarted};
use loadgate_report::merge::{self, Combined, MergeError};
use loadgate_report::outdir::{self, OutDir};
use loadgate_report::RunDir;

use crate::exit::{Exit, Failure};
use crate::output;
use crate::progress::Progress;
use crate::MergeArgs;

/// Where the combined run goes.
enum Dest<'a> {
    /// A merge: a new run directory, as the flags say.
    Merge(&'a MergeArgs),
    /// A killed run recovered in its own directory: its streamed files stay as they are,
    /// and the summary, histograms and reports are added beside them.
    Recover(&'a Path, Option<&'a Path>),
}

fn refused(e: MergeError) -> Failure {
    Failure::config(e.to_string())
}

pub(crate) fn run(args: MergeArgs) -> Result<Exit, Failure> {
    let paths: Vec<&Path> = args.runs.iter().map(|p| p.as_path()).collect();
    let combined = merge::merge(&paths).map_err(refused)?;
    write(combined, Dest::Merge(&args))
}

/// `loadgate report DIR` of a run killed before it wrote `summary.json`: `run.json` says
/// what it was asked, its streamed files what it measured up to the kill. It is judged
/// as an interrupted run (it never passes), and its summary, histograms and reports are
/// written beside the streamed files, which stay as they are.
pub(crate) fn recover(folder: &Path, summary_md: Option<&Path>) -> Result<Exit, Failure> {
    let combined = merge::recover(folder).map_err(refused)?;
    write(combined, Dest::Recover(folder, summary_md))
}

/// Writes a combined run, renders its reports and tells what it found.
fn write(c: Combined, into: Dest<'_>) -> Result<Exit, Failure> {
    let Combined {
        summary,
        histograms,
        seconds,
        names,
        open,
        started_at,
        max_us,
        segments,
        measured_end_s,
    } = c;
    let dir = match &into {
        Dest::Merge(args) => OutDir::new_run(
            args.out.as_deref(),
            &args.reports_dir,
            &format!("{}-merged", summary.scenario),
            started_at,
            outdir::bytes_needed(seconds.len() as f64, names.len()),
        )?,
        Dest::Recover(folder, _) => OutDir::at(folder.to_path_buf())?,
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
                warmup_intervals: seconds.values().filter(|s| s.warmup).count() as u64,
            };
            for o in observers.iter_mut() {
                o.started(&run);
            }
            let mut cumulative = summary.empty_shard(max_us);
            for (&index, second) in &seconds {
                cumulative.merge_from(&second.data);
                let end_s = ((index + 1) as f64).min(measured_end_s);
                let view = IntervalView {
                    index,
                    warmup: second.warmup,
                    drain: second.drain,
                    end_s: if second.drain {
                        end_s
                    } else {
                        end_s.max(index as f64)
                    },
                    data: &second.data,
                    target: second.target,
                    cumulative: &cumulative,
                    pauses: second.pauses,
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

    if dir.write_results(&summary, &histograms) {
        if let Dest::Merge(args) = into {
            output::link_latest(&args.reports_dir, &dir);
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
                if dir.report_written() {
                    note.push_str(&format!("report: {}\n", dir.report_path().display()));
                }
            }
            Err(e) => dir.note_unrendered(e),
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
    let mut out = format!("merged {segments} segments of `{}`:\n", summary.scenario);
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
    Ok(crate::run_cmd::tell(&summary, dir.path(), &note).after_writing(&dir))
}
