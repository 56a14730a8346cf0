//! The run directory: where it is, and writing its files atomically (temp file + rename
//! in the same folder), so a reader never sees half a `summary.json`.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Serialize;

/// Chooses and creates the run directory.
pub fn create_run_dir(
    out: Option<&Path>,
    reports: &Path,
    scenario: &str,
    at: SystemTime,
) -> io::Result<PathBuf> {
    let dir = match out {
        Some(p) => p.to_path_buf(),
        None => {
            // 2026-11-22T02:41:07Z -> 20261122T024107Z: sortable and path-safe
            let stamp: String = humantime::format_rfc3339_seconds(at)
                .to_string()
                .chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .collect();
            reports.join(format!("{scenario}-{stamp}"))
        }
    };
    fs::create_dir_all(&dir)?;
    // Prove it is writable now, not after the load has been sent.
    let probe = dir.join(".loadgate-write-test");
    File::create(&probe)?;
    fs::remove_file(probe)?;
    Ok(dir)
}

/// Points `reports/latest` at `dir` (best effort: a symlink where the OS allows it).
pub fn link_latest(reports: &Path, dir: &Path) {
    let Some(name) = dir.file_name() else { return };
    if dir.parent() != Some(reports) {
        return;
    }
    let link = reports.join("latest");
    let tmp = reports.join(".latest.tmp");
    let _ = fs::remove_file(&tmp);
    #[cfg(unix)]
    if std::os::unix::fs::symlink(name, &tmp).is_ok() {
        let _ = fs::rename(&tmp, &link);
    }
}

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = temp_path(path);
    {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)
}

/// Serializes `value` as pretty JSON into `path` atomically.
pub fn write_json(path: &Path, value: &impl Serialize) -> io::Result<()> {
    let mut text = serde_json::to_vec_pretty(value).map_err(io::Error::other)?;
    text.push(b'\n');
    write_atomic(path, &text)
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.partial"))
}

/// A file written while the run goes on, renamed into place when finished.
pub struct StreamFile {
    path: PathBuf,
    writer: BufWriter<File>,
}

impl StreamFile {
    pub fn create(path: PathBuf) -> io::Result<StreamFile> {
        let writer = BufWriter::new(File::create(temp_path(&path))?);
        Ok(StreamFile { path, writer })
    }

    pub fn writer(&mut self) -> &mut BufWriter<File> {
        &mut self.writer
    }

    pub fn finish(mut self) -> io::Result<()> {
        self.writer.flush()?;
        self.writer.get_ref().sync_all()?;
        fs::rename(temp_path(&self.path), &self.path)
    }
}
