//! The run directory and what people and CI read from it. One crate owns the format:
//! every file's name ([`mod@file`]), its writer ([`outdir::OutDir`]: the atomic write, the
//! streamed files, the folder's lock and what could not be written) and its reader
//! ([`RunDir`], [`merge`]: the segments of a split load, the recovery of a killed run).
//! From a run directory, without sending any traffic, it renders the HTML report with
//! inline SVG charts, each chart as a standalone SVG, `junit.xml` and `summary.md`.
//!
//! Rendering is pure: it returns file names and contents; [`outdir::OutDir`] writes them.
//! Not here: running load, judging budgets (that is `loadgate-slo`), printing, exit
//! codes.

mod capacity;
pub mod charts;
mod compare;
pub mod file;
mod html;
mod interval_log;
mod junit;
mod markdown;
pub mod merge;
pub mod outdir;
mod read;
pub mod rundir;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod text;

pub use capacity::render_capacity;
pub use compare::{compare_md, compare_section};
pub use file::{summary_files, BASELINE_PREFIX};
pub use html::report_html;
pub use junit::junit_xml;
pub use markdown::summary_md;
pub use rundir::{EncodedPair, HistogramsFile, ReadError, RunDir, SeriesRow};

/// One rendered file.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// File name within the output folder.
    pub name: String,
    /// Contents.
    pub contents: String,
}

impl Artifact {
    /// Whether it is Markdown for a CI step summary (`summary.md`, `compare.md`).
    pub fn is_markdown(&self) -> bool {
        self.name == file::SUMMARY_MD || self.name == file::COMPARE_MD
    }
}

/// A baseline to show a run against.
#[derive(Debug)]
pub struct Baseline<'a> {
    /// The baseline's run directory (its curves are overlaid on the charts).
    pub run: &'a RunDir,
    /// The comparison of the run with it.
    pub comparison: &'a loadgate_slo::compare::Comparison,
}

/// Every report of `run`: `report.html`, one `.svg` per chart, `junit.xml`, `summary.md`,
/// and with a baseline `compare.md`.
pub fn render(run: &RunDir, baseline: Option<&Baseline<'_>>) -> Vec<Artifact> {
    let charts = charts::all(run, baseline.map(|b| b.run));
    let html = report_html(run, &charts, baseline.map(|b| b.comparison));
    let mut out = vec![
        Artifact {
            name: file::REPORT.into(),
            contents: html,
        },
        Artifact {
            name: file::JUNIT.into(),
            contents: junit_xml(&run.summary),
        },
        Artifact {
            name: file::SUMMARY_MD.into(),
            contents: summary_md(&run.summary),
        },
    ];
    if let Some(b) = baseline {
        out.push(Artifact {
            name: file::COMPARE_MD.into(),
            contents: compare_md(b.comparison),
        });
    }
    out.extend(charts.into_iter().map(|c| Artifact {
        name: c.file.to_string(),
        contents: c.svg,
    }));
    out
}
