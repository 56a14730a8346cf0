//! The output folder's one owner: every file a command writes goes through [`OutDir`].
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
//!   missing; the exit code is [`Exit::Unwritten`] when the verdict would have been 0.
//! - **Nothing leaked.** The free text a command writes is masked ([`mask`]) before it
//!   is serialized or rendered; what it prints passes through the redactor ([`redact`]).

use loadgate_report::file;
use std::borrow::Cow;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::SystemTime;

use serde::Serialize;

use crate::exit::{Exit, Failure};

type Redactor = Box<dyn Fn(&str) -> Cow<'_, str> + Send + Sync>;

static REDACTOR: OnceLock<Redactor> = OnceLock::new();

/// Sets the function that masks secrets in everything written or printed from now on
/// (once per process; later calls are ignored).
pub(crate) fn set_redactor(f: Redactor) {
    let _ = REDACTOR.set(f);
}

/// `text` with every secret masked.
pub(crate) fn redact(text: &str) -> Cow<'_, str> {
    match REDACTOR.get() {
        Some(f) => f(text),
        None => Cow::Borrowed(text),
    }
}

/// Masks every secret in `text`, in place. Only the free text a command writes is masked
/// this way (the target as shown, the scenario file's name, reasons and stop details):
/// never a number, a date, a budget, a name or a word of loadgate's own, so what is
/// written keeps its meaning and reads back.
pub(crate) fn mask(text: &mut String) {
    if let Cow::Owned(masked) = redact(text) {
        *text = masked;
    }
}

/// Prints `text` to standard output, redacted.
pub(crate) fn print_out(text: &str) {
    let _ = io::stdout().write_all(redact(text).as_bytes());
}

/// Prints `text` and a newline to standard error, redacted.
pub(crate) fn print_err(text: &str) {
    let mut line = redact(text).into_owned();
    line.push('\n');
    let _ = io::stderr().write_all(line.as_bytes());
}

/// Bytes a run of `seconds` with `endpoints` endpoints writes, generously: per second a
/// time-series row and two interval-log lines per endpoint (and for all of them), then
/// the summary, histograms and reports.
pub(crate) fn bytes_needed(seconds: f64, endpoints: usize) -> u64 {
    let per_second = 600 + 2_500 * (endpoints as u64 + 1);
    let fixed = 2 * 1024 * 1024 + 40_000 * endpoints as u64;
    (seconds.max(1.0).ceil() as u64) * per_second + fixed
}

/// A file that could not be written, and why.
#[derive(Debug, Clone)]
pub(crate) struct Problem {
    pub file: String,
    pub error: String,
}

/// An output folder and what could not be written in it. Held, it keeps the folder's
/// lock: one loadgate at a time writes into a folder.
pub(crate) struct OutDir {
    path: PathBuf,
    problems: Mutex<Vec<Problem>>,
    _lock: Option<File>,
}

/// Takes the folder's lock, or says which process holds it... as far as it can: flock
/// does not name its holder, so the message says what to do.
fn lock(dir: &Path) -> Result<File, String> {
    // Non-blocking: a FIFO planted by that name must not hang the open.
    let f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags((rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits() as i32)
        .mode(0o644)
        .open(dir.join(file::LOCK))
        .map_err(|e| format!("cannot open its lock file {}: {e}", file::LOCK))?;
    if !f.metadata().is_ok_and(|m| m.is_file()) {
        return Err(format!(
            "its lock file {} is not a regular file",
            file::LOCK
        ));
    }
    match rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(f),
        Err(rustix::io::Errno::WOULDBLOCK) => Err(
            "another loadgate is writing into it now; two runs in one folder would mix their files (give each its own --out)".into(),
        ),
        // A file system without locks (some network mounts): go on without one.
        Err(_) => Ok(f),
    }
}

static SEQ: AtomicU64 = AtomicU64::new(0);

/// Creates `path` new: no link followed, no existing file reused, readable by all.
fn create_new(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .mode(0o644)
        .open(path)
}

/// Creates a temporary file beside `path`, under a name of this process's own.
fn create_temp(path: &Path) -> io::Result<(PathBuf, File)> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut last = None;
    for _ in 0..64 {
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let tmp = path.with_file_name(format!(".{name}.{}-{seq}.partial", std::process::id()));
        match create_new(&tmp) {
            Ok(f) => return Ok((tmp, f)),
            // Someone else's file (or a planted link) by that name: leave it, pick another.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free temporary name")))
}

/// Writes `bytes` to `path` atomically: a private temporary file, synced, renamed into
/// place; on failure the temporary file is removed and `path` is left as it was.
fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let (tmp, mut f) = create_temp(path)?;
    let written = f
        .write_all(bytes)
        .and_then(|_| f.sync_all())
        .and_then(|_| fs::rename(&tmp, path));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

impl OutDir {
    /// The run directory of a new run: `out`, or `reports/<name>-<UTC time>`, created and
    /// proven writable before any traffic, with room for `needs` bytes, and emptied of
    /// an earlier run's files ([`file::every`]). Refused with [`Exit::Unwritten`].
    pub(crate) fn new_run(
        out: Option<&Path>,
        reports: &Path,
        name: &str,
        at: SystemTime,
        needs: u64,
    ) -> Result<OutDir, Failure> {
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
        let shown = path.display().to_string();
        let refuse = |why: String| {
            Failure {
            exit: Exit::Unwritten,
            message: format!(
                "cannot write the run directory {shown}: {why}\n  hint: pass --out DIR with a writable folder that has room"
            ),
        }
        };
        let existed = path.exists();
        fs::create_dir_all(&path).map_err(|e| refuse(e.to_string()))?;
        let checked = (|| {
            let lock = lock(&path)?;
            // Prove it is writable now, not after the load has been sent.
            let (probe, _) =
                create_temp(&path.join("loadgate-write-test")).map_err(|e| e.to_string())?;
            let _ = fs::remove_file(probe);
            if let Some(free) = free_bytes(&path) {
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
                _lock: Some(lock),
            };
            dir.clear_previous()?;
            Ok(dir)
        })();
        checked.map_err(|why| {
            // A folder made for a run that never started is not left behind.
            if !existed {
                let _ = fs::remove_file(path.join(file::LOCK));
                let _ = fs::remove_dir(&path);
            }
            refuse(why)
        })
    }

    /// An existing or new folder to add files to (`report`, `compare --out`), created if
    /// missing and locked against another loadgate writing into it.
    pub(crate) fn at(path: PathBuf) -> Result<OutDir, Failure> {
        let refuse = |why: String| Failure {
            exit: Exit::Unwritten,
            message: format!("cannot write into {}: {why}", path.display()),
        };
        fs::create_dir_all(&path).map_err(|e| refuse(e.to_string()))?;
        let lock = lock(&path).map_err(refuse)?;
        Ok(OutDir {
            path,
            problems: Mutex::new(Vec::new()),
            _lock: Some(lock),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Removes what an earlier run left in this folder: its files and any temporary file.
    fn clear_previous(&self) -> Result<(), String> {
        // Only a folder that holds a run: a user's own `report.html` in `--out .` stays
        // (until this run's own file of that name replaces it).
        // Evidence of a run: a summary of loadgate's own (its `loadgate_version`).
        let ours = |f: &str| {
            fs::read(self.path.join(f))
                .ok()
                .filter(|b| b.len() < 64 << 20)
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .is_some_and(|v| v.get("loadgate_version").is_some())
        };
        if !file::WRITTEN_BY_LOADGATE.iter().any(|f| ours(f)) {
            return Ok(());
        }
        let entries = fs::read_dir(&self.path).map_err(|e| e.to_string())?;
        let run_files = file::every();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            // Temporary files of ours: `.<one of our names>.<pid>-<n>.partial`.
            let temporary = name.ends_with(".partial")
                && run_files
                    .iter()
                    .map(String::as_str)
                    .chain(["loadgate-write-test", "latest"])
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
            fs::remove_file(entry.path())
                .map_err(|e| format!("cannot remove the earlier `{name}`: {e}"))?;
        }
        Ok(())
    }

    /// Records that `file` could not be written, and why.
    pub(crate) fn note(&self, file: &str, error: impl ToString) {
        if let Ok(mut p) = self.problems.lock() {
            p.push(Problem {
                file: file.to_string(),
                error: error.to_string(),
            });
        }
    }

    /// Writes `text` as the file `name`, atomically; a failure is recorded. The text is
    /// made from masked values ([`mask`]): it is written as it is, never masked here (a
    /// blind replace would reach numbers, dates and keys).
    pub(crate) fn write(&self, name: &str, text: &str) -> bool {
        match write_atomic(&self.path.join(name), text.as_bytes()) {
            Ok(()) => true,
            Err(e) => {
                self.note(name, e);
                false
            }
        }
    }

    /// Writes `value` as pretty JSON into the file `name`.
    pub(crate) fn write_json(&self, name: &str, value: &impl Serialize) -> bool {
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

    /// A file that grows an interval at a time (see [`Stream`]).
    pub(crate) fn stream(&self, name: &str) -> Stream {
        let path = self.path.join(name);
        // The name is this run's, as a whole file's rename would make it: whatever is
        // there (a link, an earlier file) is removed, never followed, and the file is
        // then created new.
        let _ = fs::remove_file(&path);
        let file = match create_new(&path) {
            Ok(f) => Some(f),
            Err(e) => {
                self.note(name, e);
                None
            }
        };
        Stream {
            name: name.to_string(),
            file,
            pending: Pending::default(),
            whole: 0,
            error: None,
        }
    }

    /// Records how a stream ended: synced, or cut short (and why).
    pub(crate) fn close(&self, stream: Stream) {
        let Stream {
            name, file, error, ..
        } = stream;
        match (file, error) {
            (_, Some(e)) => self.note(&name, e),
            (Some(f), None) => {
                if let Err(e) = f.sync_all() {
                    self.note(&name, e);
                }
            }
            (None, None) => {}
        }
    }

    /// What could not be written so far.
    pub(crate) fn problems(&self) -> Vec<Problem> {
        self.problems.lock().map(|p| p.clone()).unwrap_or_default()
    }

    /// One line per file that is missing or incomplete, for the console.
    pub(crate) fn problem_lines(&self) -> String {
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

    /// The exit code of a command that ended with `exit`, given what could not be
    /// written: a would-be 0 or 5 becomes [`Exit::Unwritten`], any other code stands
    /// (a breach or an invalid run is never hidden behind a disk problem).
    pub(crate) fn exit(&self, exit: Exit) -> Exit {
        match exit {
            Exit::Pass | Exit::Regression if !self.problems().is_empty() => Exit::Unwritten,
            e => e,
        }
    }
}

/// Free bytes for an unprivileged writer in the file system of `path`.
fn free_bytes(path: &Path) -> Option<u64> {
    let s = rustix::fs::statvfs(path).ok()?;
    Some(s.f_bavail.saturating_mul(s.f_frsize))
}

/// Bytes waiting for the end of an interval, shared with writers that hold a `Write`
/// of their own (the interval log's). A stream is written on a thread of its own
/// (`observers`), so this is `Send`; only that thread ever holds it.
#[derive(Clone, Default)]
pub(crate) struct Pending(Arc<Mutex<Vec<u8>>>);

impl Pending {
    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Write for Pending {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A file written while the run goes on. Text is gathered in [`Stream::pending`] and
/// appended by [`Stream::commit`] at the end of each interval, whole: a write that
/// fails part-way is cut back to the last whole interval, and the file then stops
/// growing (a gap in the middle would mislead more than an early end).
pub(crate) struct Stream {
    name: String,
    file: Option<File>,
    pending: Pending,
    /// Bytes on disk that end with a whole interval.
    whole: u64,
    error: Option<String>,
}

impl Stream {
    /// Where the next interval's bytes go.
    pub(crate) fn pending(&self) -> Pending {
        self.pending.clone()
    }

    /// Appends the interval gathered so far to the file.
    pub(crate) fn commit(&mut self) {
        let bytes = self.pending.take();
        if self.error.is_some() || bytes.is_empty() {
            return;
        }
        let Some(f) = &mut self.file else { return };
        match f.write_all(&bytes) {
            Ok(()) => self.whole += bytes.len() as u64,
            Err(e) => {
                let _ = f.set_len(self.whole);
                self.error = Some(format!("{e}; it holds the intervals written before that"));
            }
        }
    }
}

/// Points `reports/latest` at `dir` (best effort: a symlink where the OS allows it). The
/// new link is made under a private name and renamed over `latest`, so a link planted
/// by that name is replaced, never followed.
pub(crate) fn link_latest(reports: &Path, dir: &Path) {
    let Some(name) = dir.file_name() else { return };
    if dir.parent() != Some(reports) {
        return;
    }
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let tmp = reports.join(format!(".latest.{}-{seq}.partial", std::process::id()));
    let latest = reports.join("latest");
    if std::os::unix::fs::symlink(name, &tmp).is_ok() {
        if let Err(e) = fs::rename(&tmp, &latest) {
            let _ = fs::remove_file(&tmp);
            // A real folder by that name (a copy, an upload step's): say it is stale.
            print_err(&format!(
                "warning: {} was not updated to this run ({e}): it is not a link loadgate made; remove it to have it follow the newest run",
                latest.display()
            ));
        }
    }
}
