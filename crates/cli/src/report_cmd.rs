//! `loadgate report` and the report step of `loadgate run`: render a run directory into
//! HTML, SVG, JUnit and Markdown files, each written atomically.

use std::path::{Path, PathBuf};

use crate::exit::{Exit, Failure};
use crate::output::write_atomic;

/// Renders the run directory `run` into `out` (default: the run directory itself), and
/// `summary.md` also to `summary_md` when given. Returns the paths written.
pub fn write_reports(
    run: &Path,
    out: Option<&Path>,
    summary_md: Option<&Path>,
) -> Result<Vec<PathBuf>, Failure> {
    let dir = loadgate_report::RunDir::load(run).map_err(|e| {
        Failure::config(format!(
            "{e}\n  hint: pass a folder written by `loadgate run`"
        ))
    })?;
    let out = out.map_or_else(|| dir.dir.clone(), Path::to_path_buf);
    std::fs::create_dir_all(&out)
        .map_err(|e| Failure::config(format!("cannot create {}: {e}", out.display())))?;
    let mut written = Vec::new();
    for a in loadgate_report::render(&dir) {
        let path = out.join(&a.name);
        write_atomic(&path, a.contents.as_bytes())
            .map_err(|e| Failure::config(format!("cannot write {}: {e}", path.display())))?;
        if a.name == "summary.md" {
            if let Some(extra) = summary_md {
                // Appending suits $GITHUB_STEP_SUMMARY, which collects several steps.
                use std::io::Write as _;
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
    Ok(written)
}

/// `loadgate report RUN_DIR [--out DIR] [--summary-md PATH]`.
pub fn report(run: &Path, out: Option<&Path>, summary_md: Option<&Path>) -> Result<Exit, Failure> {
    let written = write_reports(run, out, summary_md)?;
    if let Some(html) = written.iter().find(|p| p.ends_with("report.html")) {
        println!("report: {}", html.display());
    }
    Ok(Exit::Pass)
}
