//! `loadgate report`, `loadgate compare`, and the report step of `loadgate run`: render a
//! run directory into HTML, SVG, JUnit and Markdown files (each written atomically), and
//! compare a run with a baseline.
//!
//! A run compared with a baseline keeps the baseline's summary, histograms and time
//! series beside its own (`OutDir::keep_baseline`), so `loadgate report` renders the
//! same files again without the baseline's folder (`KeptBaseline`).

use std::io::Write as _;
use std::path::Path;

use loadgate_report::outdir::OutDir;
use loadgate_report::rundir::{read_capacity, Holds, KeptBaseline};
use loadgate_report::{Baseline, RunDir};
use loadgate_slo::compare::{compare, parse_budget, CompareBudget, Comparison, DEFAULT_BUDGETS};

use crate::exit::{Exit, Failure};
use crate::output;

/// Reads a run directory (or the folder of a `summary.json`) for `what` (a flag or role).
pub(crate) fn load_run(path: &Path, what: &str) -> Result<RunDir, Failure> {
    RunDir::load_for(path, what).map_err(|e| Failure::config(e.to_string()))
}

/// `--budget` values, or the default set when none are given.
pub(crate) fn budgets(given: &[String]) -> Result<Vec<CompareBudget>, Failure> {
    if given.is_empty() {
        return Ok(DEFAULT_BUDGETS
            .iter()
            .map(|b| parse_budget(b).expect("default budgets parse"))
            .collect());
    }
    given
        .iter()
        .map(|b| parse_budget(b).map_err(|e| Failure::config(format!("--budget {e}"))))
        .collect()
}

/// Compares `new` with the baseline run at `baseline`.
pub(crate) fn compare_runs(
    baseline: &RunDir,
    new: &RunDir,
    budgets: &[CompareBudget],
) -> Result<Comparison, Failure> {
    let hists = |r: &RunDir| r.histograms().map_err(|e| Failure::config(e.to_string()));
    Ok(compare(
        &baseline.summary,
        &hists(baseline)?,
        &new.summary,
        &hists(new)?,
        budgets,
    ))
}

/// Renders `run` into `out` (a file that cannot be written is recorded there), and
/// appends its Markdown summary, with the comparison when there is one, to
/// `summary_md`.
pub(crate) fn write_reports(
    run: &RunDir,
    out: &OutDir,
    summary_md: Option<&Path>,
    baseline: Option<&Baseline<'_>>,
) {
    let mut markdown = String::new();
    for a in loadgate_report::render(run, baseline) {
        if a.is_markdown() {
            markdown.push_str(&a.contents);
        }
        out.write_artifact(&a);
    }
    if let Some(extra) = summary_md.filter(|p| !p.as_os_str().is_empty()) {
        append_markdown(out, extra, &markdown);
    }
}

/// Appends `text` to the file `extra` (as `$GITHUB_STEP_SUMMARY`, which collects several
/// steps, wants); a failure is recorded with `out`'s.
fn append_markdown(out: &OutDir, extra: &Path, text: &str) {
    let appended = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(extra)
        .and_then(|mut f| f.write_all(text.as_bytes()));
    if let Err(e) = appended {
        out.note(&format!("--summary-md {}", extra.display()), e);
    }
}

/// `loadgate report RUN_DIR [--out DIR] [--summary-md PATH]`: a run directory, or a
/// capacity search's, rendered again as the command wrote it.
pub(crate) fn report(
    run: &Path,
    out: Option<&Path>,
    summary_md: Option<&Path>,
) -> Result<Exit, Failure> {
    let folder = if run.is_file() {
        run.parent().unwrap_or(Path::new(".")).to_path_buf()
    } else {
        run.to_path_buf()
    };
    // Never made here: a folder that is not there holds no run.
    match std::fs::metadata(&folder) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Failure::config(format!(
                "report: {} does not exist: there is no run to render (a run that never started, refused before any load or its target unreachable or never healthy, writes no run directory)",
                folder.display()
            )))
        }
        Ok(m) if !m.is_dir() => {
            return Err(Failure::config(format!(
                "report: {} is not a folder: name a run directory (or its summary.json)",
                folder.display()
            )))
        }
        _ => {}
    }
    if Holds::of(&folder) == Holds::Unfinished {
        // A run killed before its summary: judged again from what it streamed, and
        // written beside it (a copy elsewhere would leave the streamed files behind).
        if let Some(out) = out.filter(|o| *o != folder.as_path()) {
            return Err(Failure::config(format!(
                "report --out {}: {} is a run that did not finish, and its summary is written beside its streamed files\n  hint: copy the folder to where it should go, then `loadgate report` the copy",
                out.display(),
                folder.display()
            )));
        }
        return crate::merge_cmd::recover(&folder, summary_md);
    }
    let out = OutDir::at(out.map_or_else(|| folder.clone(), Path::to_path_buf))?;
    let holds = Holds::to_render(&folder).map_err(|e| Failure::config(format!("report: {e}")))?;
    match holds {
        Holds::Capacity => {
            let report =
                read_capacity(&folder).map_err(|e| Failure::config(format!("report: {e}")))?;
            for a in loadgate_report::render_capacity(&report) {
                out.write_artifact(&a);
            }
        }
        _ => {
            let dir = load_run(&folder, "report")?;
            let kept =
                KeptBaseline::load(&folder).map_err(|e| Failure::config(format!("report: {e}")))?;
            let baseline = kept.as_ref().map(KeptBaseline::baseline);
            write_reports(&dir, &out, summary_md, baseline.as_ref());
        }
    }
    let problems = out.problem_lines();
    if !problems.is_empty() {
        output::print_err(problems.trim_end());
    }
    output::print_out(&format!("report: {}\n", out.report_path().display()));
    Ok(Exit::Pass.after_writing(&out))
}

/// `loadgate compare BASELINE NEW [--budget ...] [--out DIR]`: exit 5 on a regression.
pub(crate) fn compare_cmd(
    baseline: &Path,
    new: &Path,
    given: &[String],
    out: Option<&Path>,
) -> Result<Exit, Failure> {
    let budgets = budgets(given)?;
    let base = load_run(baseline, "baseline")?;
    let new = load_run(new, "new run")?;
    let c = compare_runs(&base, &new, &budgets)?;
    if !c.incomparable.is_empty() {
        return Err(Failure::config(format!(
            "the runs are not comparable, so no difference between them would mean anything:\n{}\n  hint: compare two valid, complete runs of the same scenario and load (a baseline kept from the last good deploy, run the same way)",
            c.incomparable
                .iter()
                .map(|r| format!("  - {r}"))
                .collect::<Vec<_>>()
                .join("\n")
        )));
    }
    let text = loadgate_report::compare_md(&c);
    let out = OutDir::at(out.map_or_else(|| new.dir.clone(), Path::to_path_buf))?;
    out.write_compare(&text, &c);
    output::print_out(&text);
    let problems = out.problem_lines();
    if !problems.is_empty() {
        output::print_err(problems.trim_end());
    }
    output::print_out(&format!("\ncompare: {}\n", out.compare_path().display()));
    Ok(if c.regression {
        Exit::Regression
    } else {
        Exit::Pass
    }
    .after_writing(&out))
}
