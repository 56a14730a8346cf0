//! The run directory's writing side: every file a command writes into an output folder
//! goes through [`OutDir`], by a method that says what it writes ([`OutDir::write_start`],
//! [`OutDir::write_results`], [`OutDir::series`], ...), so each file's name is spelled in
//! [`crate::file`] alone, and its writer sits beside its reader in this crate.
//!
//! - **Nothing written elsewhere.** A file is created new (`O_CREAT|O_EXCL|O_NOFOLLOW`),
//!   never opened through a link or over a file this process did not make: a whole file
//!   is written under a temporary name private to this process and renamed into place
//!   (the rename replaces a planted link itself, never what it points to).
//! - **A reader never sees half a file.** Whole files (`summary.json`, reports) appear by
//!   rename; streamed files (`timeseries.jsonl`, `intervals.hlog`) grow an interval at a
//!   time, each interval appended whole and flushed, so a kill leaves every finished
//!   interval on disk and no cut line.
//! - **A write failure is the environment's, not a bug.** It is recorded, not fatal: the
//!   command goes on, writes what it can, removes its temporary file, and says what is
//!   missing ([`OutDir::problem_lines`]); the binary then turns a would-be pass into its
//!   "output not written" exit code ([`OutDir::is_whole`]).
//! - **One writer per folder.** A held [`OutDir`] holds the folder's lock (`flock`), so
//!   two loadgate commands never mix their files in one folder.
//! - **Nothing leaked.** What is written is written as given: the caller masks the free
//!   text of what it writes (the target as shown, reasons, stop details) before it is
//!   serialized or rendered. A blind replace here would reach numbers, dates and keys.
//!
//! Not here: what the files hold (the types of [`crate::rundir`], the renderers), which
//! thread writes a streamed file (the caller's), printing, exit codes.

mod fs;
mod stream;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use loadgate_slo::capacity::CapacityReport;
use loadgate_slo::compare::Comparison;
use loadgate_slo::summary::{RunStart, RunSummary};
use serde::Serialize;

use crate::file;
use crate::rundir::{series_line, HistogramsFile, RunDir};
use crate::Artifact;

pub use crate::interval_log::IntervalLogWriter;
pub use crate::rundir::SeriesWriter;
pub use stream::{Interval, LogEvent};
pub(crate) use stream::{Pending, Stream};

/// Bytes a run of `seconds` with `endpoints` endpoints writes, generously: per second a
/// time-series row and two interval-log lines per endpoint (and for all of them), then
/// the summary, histograms and reports.
pub fn bytes_needed(seconds: f64, endpoints: usize) -> u64 {
    let per_second = 600 + 2_500 * (endpoints as u64 + 1);
    let fixed = 2 * 1024 * 1024 + 40_000 * endpoints as u64;
    (seconds.max(1.0).ceil() as u64) * per_second + fixed
}

/// An output folder that cannot be written into.
#[derive(Debug, thiserror::Error)]
pub enum OutError {
    /// A new run's directory cannot be made ready (created, locked, proven writable,
    /// with room, emptied of an earlier run), or its first file not written.
    #[error("cannot write the run directory {}: {why}\n  hint: pass --out DIR with a writable folder that has room", path.display())]
    RunDir {
        /// The folder.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// A folder to add files to cannot be created or locked.
    #[error("cannot write into {}: {why}", path.display())]
    Folder {
        /// The folder.
        path: PathBuf,
        /// Why.
        why: String,
    },
}

/// `reports/latest` could not be pointed at the newest run: something other than a
/// link loadgate made is there.
#[derive(Debug, thiserror::Error)]
#[error("{} was not updated to this run ({source}): it is not a link loadgate made; remove it to have it follow the newest run", latest.display())]
pub struct LatestError {
    latest: PathBuf,
    source: io::Error,
}

/// A file that could not be written, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file's name in the folder (or what else was written to: `--summary-md PATH`).
    pub file: String,
    /// Why.
    pub error: String,
}

/// An output folder and what could not be written in it. Held, it keeps the folder's
/// lock: one loadgate at a time writes into a folder.
#[derive(Debug)]
pub struct OutDir {
    path: PathBuf,
    problems: Mutex<Vec<Problem>>,
    _lock: std::fs::File,
    /// Made for a new run by [`OutDir::new_run`]: removed again if the run is refused.
    made: bool,
}

impl OutDir {
    /// The run directory of a new run: `out`, or `reports/<name>-<UTC time>`, created and
    /// proven writable before any traffic, with room for `needs` bytes (see
    /// [`bytes_needed`]), and emptied of an earlier run's files ([`file::every`]).
    pub fn new_run(
        out: Option<&Path>,
        reports: &Path,
        name: &str,
        at: SystemTime,
        needs: u64,
    ) -> Result<OutDir, OutError> {
        let path = match out {
            Some(p) => p.to_path_buf(),
            None => {
                // 2026-11-22T02:41:07Z -> 20261122T024107Z: sortable and path-safe
                let stamp: String = humantime::format_rfc3339_seconds(at)
                    .to_string()
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric())
                    .collect();
                reports.join(format!("{name}-{stamp}"))
            }
        };
        let refuse = |why: String| OutError::RunDir {
            path: path.clone(),
            why,
        };
        let existed = path.exists();
        std::fs::create_dir_all(&path).map_err(|e| refuse(e.to_string()))?;
        let checked = (|| {
            let lock = fs::lock(&path)?;
            // Prove it is writable now, not after the load has been sent.
            let (probe, _) =
                fs::create_temp(&path.join(file::WRITE_TEST)).map_err(|e| e.to_string())?;
            let _ = std::fs::remove_file(probe);
            if let Some(free) = fs::free_bytes(&path) {
                if free < needs {
                    return Err(format!(
                        "{} free, and this run writes up to about {}",
                        bytesize::ByteSize(free),
                        bytesize::ByteSize(needs)
                    ));
                }
            }
            let dir = OutDir {
                path: path.clone(),
                problems: Mutex::new(Vec::new()),
                _lock: lock,
                made: !existed,
            };
            dir.clear_previous()?;
            Ok(dir)
        })();
        checked.map_err(|why| {
            // A folder made for a run that never started is not left behind.
            if !existed {
                let _ = std::fs::remove_file(path.join(file::LOCK));
                let _ = std::fs::remove_dir(&path);
            }
            refuse(why)
        })
    }

    /// An existing or new folder to add files to (`report`, `compare --out`), created if
    /// missing and locked against another loadgate writing into it.
    pub fn at(path: PathBuf) -> Result<OutDir, OutError> {
        let refuse = |why: String| OutError::Folder {
            path: path.clone(),
            why,
        };
        std::fs::create_dir_all(&path).map_err(|e| refuse(e.to_string()))?;
        let lock = fs::lock(&path).map_err(refuse)?;
        Ok(OutDir {
            path,
            problems: Mutex::new(Vec::new()),
            _lock: lock,
            made: false,
        })
    }

    /// Where the folder is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the report page is (or would be).
    pub fn report_path(&self) -> PathBuf {
        self.path.join(file::REPORT)
    }

    /// Where the comparison for people is (or would be).
    pub fn compare_path(&self) -> PathBuf {
        self.path.join(file::COMPARE_MD)
    }

    /// Removes what an earlier run left in this folder: its files and any temporary file.
    fn clear_previous(&self) -> Result<(), String> {
        // Only a folder that holds a run: a user's own `report.html` in `--out .` stays
        // (until this run's own file of that name replaces it).
        // Evidence of a run: a summary of loadgate's own (its `loadgate_version`).
        // Only a regular file: a FIFO planted by that name would hang the read.
        let ours = |f: &str| {
            fs::read_regular(&self.path.join(f), 64 << 20)
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .is_some_and(|v| v.get("loadgate_version").is_some())
        };
        if !file::WRITTEN_BY_LOADGATE.iter().any(|f| ours(f)) {
            return Ok(());
        }
        let entries = std::fs::read_dir(&self.path).map_err(|e| e.to_string())?;
        let run_files = file::every();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            // Temporary files of ours: `.<one of our names>.<pid>-<n>.partial`.
            let temporary = name.ends_with(".partial")
                && run_files
                    .iter()
                    .map(String::as_str)
                    .chain([file::WRITE_TEST, file::LATEST])
                    .any(|f| name.starts_with(&format!(".{f}.")));
            let ours = run_files.contains(&name) || temporary;
            if !ours {
                continue;
            }
            // A folder by one of these names is not ours to remove.
            let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
            if is_dir {
                return Err(format!("`{name}` is a folder"));
            }
            std::fs::remove_file(entry.path())
                .map_err(|e| format!("cannot remove the earlier `{name}`: {e}"))?;
        }
        Ok(())
    }

    /// Records that `file` (a name in this folder, or another destination such as
    /// `--summary-md PATH`) could not be written, and why.
    pub fn note(&self, file: &str, error: impl ToString) {
        if let Ok(mut p) = self.problems.lock() {
            p.push(Problem {
                file: file.to_string(),
                error: error.to_string(),
            });
        }
    }

    /// Records that the reports could not be rendered, and why (the run's own files
    /// could not be read back).
    pub fn note_unrendered(&self, error: impl fmt::Display) {
        self.note(
            file::REPORT,
            format!("the reports were not rendered: {error}"),
        );
    }

    /// Writes `text` as the file `name`, atomically; a failure is recorded. The text is
    /// made from masked values: it is written as it is, never masked here.
    fn write(&self, name: &str, text: &str) -> bool {
        match fs::write_atomic(&self.path.join(name), text.as_bytes()) {
            Ok(()) => true,
            Err(e) => {
                self.note(name, e);
                false
            }
        }
    }

    /// Writes `value` as pretty JSON into the file `name`.
    fn write_json(&self, name: &str, value: &impl Serialize) -> bool {
        match serde_json::to_string_pretty(value) {
            Ok(mut text) => {
                text.push('\n');
                self.write(name, &text)
            }
            Err(e) => {
                self.note(name, e);
                false
            }
        }
    }

    /// Writes `run.json`, what a run is about to do, before any load: without it a
    /// killed run could not be judged, so a failure refuses the run as an unwritable
    /// folder is refused.
    pub fn write_start(&self, start: &RunStart) -> Result<(), OutError> {
        if self.write_json(file::RUN, start) {
            return Ok(());
        }
        let why = self.problem_lines().trim_end().to_string();
        // A folder made for a run that never started is not left behind (nothing else
        // is in it: the failed write removed its temporary file).
        if self.made {
            let _ = std::fs::remove_file(self.path.join(file::LOCK));
            let _ = std::fs::remove_dir(&self.path);
        }
        Err(OutError::RunDir {
            path: self.path.clone(),
            why,
        })
    }

    /// Writes a judged run: `histograms.json`, then `summary.json` (a reader that finds
    /// the summary finds the histograms beside it). Says whether the summary was written.
    pub fn write_results(&self, summary: &RunSummary, histograms: &HistogramsFile) -> bool {
        self.write_json(file::HISTOGRAMS, histograms);
        self.write_json(file::SUMMARY, summary)
    }

    /// Writes a capacity search's `capacity.json`; says whether it was written.
    pub fn write_capacity(&self, report: &CapacityReport) -> bool {
        self.write_json(file::CAPACITY, report)
    }

    /// Writes a comparison: `compare.md` (`markdown`, its text for people) and
    /// `compare.json`.
    pub fn write_compare(&self, markdown: &str, comparison: &Comparison) {
        self.write(file::COMPARE_MD, markdown);
        self.write_json(file::COMPARE_JSON, comparison);
    }

    /// Keeps `base` (the baseline `comparison` was made with) beside the run, with the
    /// comparison (`compare.json`, `baseline.*`), so the comparison renders again
    /// without the baseline's folder ([`crate::rundir::KeptBaseline`]).
    pub fn keep_baseline(&self, base: &RunDir, comparison: &Comparison) {
        let kept = |name: &str| format!("{}{name}", file::BASELINE_PREFIX);
        self.write_json(file::COMPARE_JSON, comparison);
        self.write_json(&kept(file::SUMMARY), &base.summary);
        if let Some(h) = &base.histograms {
            self.write_json(&kept(file::HISTOGRAMS), h);
        }
        let series: String = base.series.iter().filter_map(series_line).collect();
        self.write(&kept(file::SERIES), &series);
    }

    /// Writes a rendered file ([`crate::render`], [`crate::render_capacity`]); says
    /// whether it was written.
    pub fn write_artifact(&self, a: &Artifact) -> bool {
        self.write(&a.name, &a.contents)
    }

    /// A file that grows an interval at a time (see [`Stream`]).
    fn stream(&self, name: &'static str) -> Stream {
        let path = self.path.join(name);
        // The name is this run's, as a whole file's rename would make it: whatever is
        // there (a link, an earlier file) is removed, never followed, and the file is
        // then created new.
        let _ = std::fs::remove_file(&path);
        let file = match fs::create_new(&path) {
            Ok(f) => Some(f),
            Err(e) => {
                self.note(name, e);
                None
            }
        };
        Stream::new(name, file)
    }

    /// Creates `timeseries.jsonl` for a run of the endpoints `names`: a row per interval.
    pub fn series(&self, names: &[String]) -> SeriesWriter {
        SeriesWriter::new(self.stream(file::SERIES), names)
    }

    /// Creates `intervals.hlog` for a run of the endpoints `names`: each interval's
    /// histograms. Its start time is the one the run reports ([`LogEvent::Started`]),
    /// else `fallback_start`.
    pub fn interval_log(&self, names: &[String], fallback_start: SystemTime) -> IntervalLogWriter {
        IntervalLogWriter::new(self.stream(file::INTERVALS), names, fallback_start)
    }

    /// Records how the streamed files ended: synced, or cut short (and why).
    pub fn close_streams(&self, series: SeriesWriter, log: IntervalLogWriter) {
        let (log, error) = log.into_parts();
        if let Some(e) = error {
            self.note(file::INTERVALS, e);
        }
        self.close(series.into_stream());
        self.close(log);
    }

    /// Removes what a run that never ran wrote (`run.json`, the streamed files), and the
    /// folder itself when it was made for the run, so that nothing looks like a run's
    /// (`loadgate report` of it would judge a killed run from them).
    pub fn abandon(&self) {
        for name in [file::RUN, file::SERIES, file::INTERVALS] {
            let _ = std::fs::remove_file(self.path.join(name));
        }
        if self.made {
            let _ = std::fs::remove_file(self.path.join(file::LOCK));
            let _ = std::fs::remove_dir(&self.path);
        }
    }

    /// Records how a stream ended: synced, or cut short (and why).
    fn close(&self, stream: Stream) {
        let Stream {
            name, file, error, ..
        } = stream;
        match (file, error) {
            (_, Some(e)) => self.note(name, e),
            (Some(f), None) => {
                if let Err(e) = f.sync_all() {
                    self.note(name, e);
                }
            }
            (None, None) => {}
        }
    }

    /// What could not be written so far.
    pub fn problems(&self) -> Vec<Problem> {
        self.problems.lock().map(|p| p.clone()).unwrap_or_default()
    }

    /// Whether everything so far was written.
    pub fn is_whole(&self) -> bool {
        self.problems().is_empty()
    }

    /// Whether the report page was rendered and written (so far).
    pub fn report_written(&self) -> bool {
        self.problems().iter().all(|p| p.file != file::REPORT)
    }

    /// One line per file that is missing or incomplete, for the console.
    pub fn problem_lines(&self) -> String {
        self.problems()
            .iter()
            .map(|p| {
                format!(
                    "not written: {} in {}: {}\n",
                    p.file,
                    self.path.display(),
                    p.error
                )
            })
            .collect()
    }

    /// Points `reports/latest` at this folder, when it is in `reports` (best effort: a
    /// symlink where the OS allows it). The new link is made under a private name and
    /// renamed over `latest`, so a link planted by that name is replaced, never
    /// followed; something else there (a real folder) is left, and said.
    pub fn link_latest(&self, reports: &Path) -> Result<(), LatestError> {
        let dir = &self.path;
        let Some(name) = dir.file_name() else {
            return Ok(());
        };
        if dir.parent() != Some(reports) {
            return Ok(());
        }
        let tmp = fs::partial_name(reports, file::LATEST);
        let latest = reports.join(file::LATEST);
        if std::os::unix::fs::symlink(name, &tmp).is_ok() {
            if let Err(source) = std::fs::rename(&tmp, &latest) {
                let _ = std::fs::remove_file(&tmp);
                return Err(LatestError { latest, source });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
