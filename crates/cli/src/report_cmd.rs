//! `loadgate report`, `loadgate compare`, and the report step of `loadgate run`: render a
//! run directory into HTML, SVG, JUnit and Markdown files (each written atomically), and
//! compare a run with a baseline.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use loadgate_report::{Baseline, RunDir};
use loadgate_slo::compare::{compare, parse_budget, CompareBudget, Comparison, DEFAULT_BUDGETS};

use crate::exit::{Exit, Failure};
use crate::output::{write_atomic, write_json};

/// Reads a run directory (or the folder of a `summary.json`) for `what` (a flag or role).
pub fn load_run(path: &Path, what: &str) -> Result<RunDir, Failure> {
    RunDir::load(path).map_err(|e| {
        Failure::config(format!(
            "{what}: {e}\n  hint: pass a folder written by `loadgate run`, or its summary.json"
        ))
    })
}

/// `--budget` values, or the default set when none are given.
pub fn budgets(given: &[String]) -> Result<Vec<CompareBudget>, Failure> {
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
pub fn compare_runs(
    baseline: &RunDir,
    new: &RunDir,
    budgets: &[CompareBudget],
) -> Result<Comparison, Failure> {
    let hists = |r: &RunDir| {
        r.latency_histograms()
            .map_err(|e| Failure::config(e.to_string()))
    };
    Ok(compare(
        &baseline.summary,
        &hists(baseline)?,
        &new.summary,
        &hists(new)?,
        budgets,
    ))
}

/// Renders `run` into `out`, and `summary.md` also appended to `summary_md`.
pub fn write_reports(
    run: &RunDir,
    out: &Path,
    summary_md: Option<&Path>,
    baseline: Option<&Baseline<'_>>,
) -> Result<Vec<PathBuf>, Failure> {
    std::fs::create_dir_all(out)
        .map_err(|e| Failure::config(format!("cannot create {}: {e}", out.display())))?;
    let mut written = Vec::new();
    for a in loadgate_report::render(run, baseline) {
        let path = out.join(&a.name);
        write_atomic(&path, a.contents.as_bytes())
            .map_err(|e| Failure::config(format!("cannot write {}: {e}", path.display())))?;
        if a.name == "summary.md" {
            if let Some(extra) = summary_md {
                // Appending suits $GITHUB_STEP_SUMMARY, which collects several steps.
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(extra)
                    .map_err(|e| {
                        Failure::config(format!("--summary-md {}: {e}", extra.display()))
                    })?;
                f.write_all(a.contents.as_bytes()).map_err(|e| {
                    Failure::config(format!("--summary-md {}: {e}", extra.display()))
                })?;
            }
        }
        written.push(path);
    }
    if let Some(b) = baseline {
        write_json(&out.join("compare.json"), b.comparison)
            .map_err(|e| Failure::config(format!("cannot write compare.json: {e}")))?;
    }
    Ok(written)
}

/// `loadgate report RUN_DIR [--out DIR] [--summary-md PATH]`.
pub fn report(run: &Path, out: Option<&Path>, summary_md: Option<&Path>) -> Result<Exit, Failure> {
    let dir = load_run(run, "report")?;
    let out = out.map_or_else(|| dir.dir.clone(), Path::to_path_buf);
    write_reports(&dir, &out, summary_md, None)?;
    println!("report: {}", out.join("report.html").display());
    Ok(Exit::Pass)
}

/// `loadgate compare BASELINE NEW [--budget ...] [--out DIR]`: exit 5 on a regression.
pub fn compare_cmd(
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
    let out = out.map_or_else(|| new.dir.clone(), Path::to_path_buf);
    std::fs::create_dir_all(&out)
        .map_err(|e| Failure::config(format!("cannot create {}: {e}", out.display())))?;
    write_atomic(&out.join("compare.md"), text.as_bytes())
        .map_err(|e| Failure::config(format!("cannot write compare.md: {e}")))?;
    write_json(&out.join("compare.json"), &c)
        .map_err(|e| Failure::config(format!("cannot write compare.json: {e}")))?;
    print!("{text}");
    println!("\ncompare: {}", out.join("compare.md").display());
    Ok(if c.regression {
        Exit::Regression
    } else {
        Exit::Pass
    })
}
