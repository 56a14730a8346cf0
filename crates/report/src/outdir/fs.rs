//! The file-system moves [`super::OutDir`] is made of: the folder's lock, files created
//! new without following a link, temporary names private to this process, the atomic
//! write, and the free space of a folder. Nothing here knows a run directory's files.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::file;

/// Takes the folder's lock, or says which process holds it... as far as it can: flock
/// does not name its holder, so the message says what to do.
pub(super) fn lock(dir: &Path) -> Result<File, String> {
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

/// A temporary name for `name` in `dir`, private to this process:
/// `.<name>.<pid>-<n>.partial` (what clearing a folder recognises as ours).
pub(super) fn partial_name(dir: &Path, name: &str) -> PathBuf {
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(".{name}.{}-{seq}.partial", std::process::id()))
}

/// Creates `path` new: no link followed, no existing file reused, readable by all.
pub(super) fn create_new(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .mode(0o644)
        .open(path)
}

/// Creates a temporary file beside `path`, under a name of this process's own.
pub(super) fn create_temp(path: &Path) -> io::Result<(PathBuf, File)> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dir = path.parent().unwrap_or(Path::new(""));
    let mut last = None;
    for _ in 0..64 {
        let tmp = partial_name(dir, &name);
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
pub(super) fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
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

/// The bytes of `path` when it is a regular file (a link is followed) shorter than
/// `limit` bytes, else `None`: opened without waiting, so a FIFO planted by that name
/// never blocks the read, and a device (a link to `/dev/zero`) is never read.
pub(super) fn read_regular(path: &Path, limit: u64) -> Option<Vec<u8>> {
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
        .ok()?;
    let meta = f.metadata().ok()?;
    if !meta.is_file() || meta.len() >= limit {
        return None;
    }
    let mut bytes = Vec::new();
    f.take(limit).read_to_end(&mut bytes).ok()?;
    (bytes.len() < limit as usize).then_some(bytes)
}

/// Free bytes for an unprivileged writer in the file system of `path`.
pub(super) fn free_bytes(path: &Path) -> Option<u64> {
    let s = rustix::fs::statvfs(path).ok()?;
    Some(s.f_bavail.saturating_mul(s.f_frsize))
}
