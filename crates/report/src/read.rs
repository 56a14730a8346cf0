//! Reading a run directory's files back: only regular files, opened without waiting, so
//! a FIFO (or a device, a socket, a folder) by a run file's name in a folder the user
//! names is refused at once, never read and never waited on.

use std::fs::{FileType, OpenOptions};
use std::io::{self, Read as _};
use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};
use std::path::Path;

/// The bytes of the regular file `path` (a link to one is followed). Anything else is
/// refused with an error that says what it is: the file is opened with `O_NONBLOCK`
/// (opening a FIFO then returns at once instead of waiting for a writer) and what was
/// opened is checked (`fstat`), so no swap between a check and the open can make the
/// read wait.
pub(crate) fn bytes(path: &Path) -> io::Result<Vec<u8>> {
    let mut f = OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)?;
    let kind = f.metadata()?.file_type();
    if !kind.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a regular file ({})", what(kind)),
        ));
    }
    let mut out = Vec::new();
    f.read_to_end(&mut out)?;
    Ok(out)
}

/// [`bytes`] as UTF-8 text.
pub(crate) fn text(path: &Path) -> io::Result<String> {
    String::from_utf8(bytes(path)?).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// What a file that is not a regular file is, for people.
fn what(kind: FileType) -> &'static str {
    if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_dir() {
        "a folder"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else {
        "not a file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_are_read() {
        let tmp = tempfile::tempdir().unwrap();
        let plain = tmp.path().join("summary.json");
        std::fs::write(&plain, "{}").unwrap();
        assert_eq!(text(&plain).unwrap(), "{}");
        let link = tmp.path().join("link.json");
        std::os::unix::fs::symlink(&plain, &link).unwrap();
        assert_eq!(text(&link).unwrap(), "{}", "a link to a file is followed");
        // Read on this thread: a read that waited would hang the test, not fail it, so
        // the open itself must not wait.
        let fifo = tmp.path().join("fifo.json");
        rustix::fs::mkfifoat(rustix::fs::CWD, &fifo, 0o644.into()).unwrap();
        let e = bytes(&fifo).unwrap_err();
        assert_eq!(e.to_string(), "not a regular file (a FIFO)");
        let e = bytes(Path::new("/dev/zero")).unwrap_err();
        assert_eq!(e.to_string(), "not a regular file (a device)");
        let e = bytes(tmp.path()).unwrap_err();
        assert_eq!(e.to_string(), "not a regular file (a folder)");
        assert_eq!(
            bytes(&tmp.path().join("missing")).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }
}
