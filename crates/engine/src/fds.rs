//! The process's file-descriptor table, grown once before a run instead of during it.
//!
//! Linux keeps a process's descriptors in one table that starts with 64 slots and doubles
//! (128, 256, 512, ...) when a new descriptor does not fit. In a multi-threaded process
//! each growth waits out an RCU grace period (`expand_files` calls `synchronize_rcu`), and
//! every other thread that opens a descriptor meanwhile (a `socket()` for a connection, an
//! `accept()` in the embedded target) sleeps until it is over. On a busy 2-vCPU virtual
//! machine a grace period took 12-18 ms. Traced with ftrace: in the catch-up after a stall
//! the connection pool grew past 64, 128 and 256 descriptors, and both workers sat in
//! uninterruptible sleep in `socket()` three times in a row (18, 14 and 13 ms) with the
//! CPUs idle: 1,279 and 467 late sends in seconds 1 and 2 of a 20,000/s run. That is the
//! burst early in a run that the whole-machine stall probe could not explain.
//!
//! So before the workers start, [`prepare`] raises the soft `RLIMIT_NOFILE` to the hard
//! limit (as Go's runtime does; the common soft default of 1,024 is below what a run with
//! thousands of connections needs) and makes the table cover `min(soft limit,`
//! [`RESERVE`]`)` descriptors at once, by duplicating a descriptor to the highest number
//! and closing it again. The table never shrinks, so no later socket grows it.
//!
//! It also knows how few descriptors a run can start with ([`minimum`]) so that a limit
//! too small to start is refused before any load ([`check`]) instead of failing half-way
//! through start-up, and says how to fix it ([`HINT`]).

/// The most descriptors [`prepare`] makes room for: 8 bytes of kernel memory each, 512 KiB
/// in all, and more than the connections of any run [`default_max_in_flight`] sizes
/// (10,000 at most, one descriptor each, and as many again for the embedded target's side
/// when it serves in the same process).
///
/// [`default_max_in_flight`]: loadgate_scenario::default_max_in_flight
pub const RESERVE: u64 = 65_536;

/// How to get more descriptors, for every message about running out of them.
pub const HINT: &str = "raise the open-file limit (`ulimit -Hn` shows the hard limit; raise it with `ulimit -n`, `prlimit --nofile`, or `LimitNOFILE=` in a systemd unit) or use fewer connections (`--connections N`, fewer VUs or workers)";

/// Raises the soft descriptor limit to the hard one and returns the soft limit now in
/// force (`None`: unlimited). Best effort: a limit that cannot be raised (a sandbox, a
/// hard limit over the kernel's `nr_open`) stays as it was. The binary calls it first
/// thing, before any thread or runtime opens a descriptor.
#[cfg(target_os = "linux")]
pub fn raise() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let old = getrlimit(Resource::Nofile);
    let raised = Rlimit {
        current: old.maximum,
        maximum: old.maximum,
    };
    if old.current != old.maximum && setrlimit(Resource::Nofile, raised).is_ok() {
        old.maximum
    } else {
        old.current
    }
}

/// Raises the soft descriptor limit to the hard one and grows the descriptor table to hold
/// `min(limit, RESERVE)` descriptors. Neither step is needed for correctness, so a failure
/// (a sandbox that forbids `setrlimit`, no `/dev/null`) leaves things as they were.
#[cfg(target_os = "linux")]
pub fn prepare() {
    reserve(raise().map_or(RESERVE, |l| l.min(RESERVE)));
}

/// Grows the table to hold descriptors `0..n`: `F_DUPFD_CLOEXEC` with `n - 1` as the
/// lowest number to use puts the duplicate at `n - 1` or above (nothing is open that
/// high), and the kernel grows the table to fit it before the duplicate is closed.
#[cfg(target_os = "linux")]
fn reserve(n: u64) {
    if let (Ok(highest), Ok(null)) = (
        i32::try_from(n.saturating_sub(1)),
        std::fs::File::open("/dev/null"),
    ) {
        let _ = rustix::io::fcntl_dupfd_cloexec(&null, highest);
    }
}

#[cfg(not(target_os = "linux"))]
pub fn prepare() {}

#[cfg(not(target_os = "linux"))]
pub fn raise() -> Option<u64> {
    None
}

/// How many descriptors below `limit` the process has open now (only those take a
/// number a new descriptor could have: one inherited above the limit takes none), or
/// `None` when that cannot be counted (no `/proc`, or no descriptor free to read it).
pub fn open_now(limit: u64) -> Option<u64> {
    let dir = std::fs::read_dir("/proc/self/fd").ok()?;
    let below = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok())
        .filter(|&fd| fd < limit)
        .count() as u64;
    // The directory being read holds one of them.
    Some(below.saturating_sub(1))
}

/// The fewest descriptors a run can start with beyond those open when it is checked:
/// enough to set everything up and to hold one connection per worker that has load to
/// send. A run with fewer connections than it asks for still starts and counts the
/// sends that find no socket (`local_errors`, an invalid run); a run below this could
/// not start at all, or could send nothing.
///
/// A tokio runtime with I/O holds [`RUNTIME`] (counted with `ls -l /proc/PID/fd` during
/// a run).
///
/// - the signal thread's runtime;
/// - the output written while the run goes on: the time series and the interval log
///   (the other files are written after the workers have closed theirs): 2;
/// - the embedded target, when it serves in this process: its listener and its
///   runtime;
/// - each worker: its runtime, and an open-model worker's timerfd and its run-queue
///   counter (`/proc/thread-self/schedstat`, which the pause meter reads);
/// - one connection to each of `origins` (the target, and each other origin an
///   endpoint's `base` names) for each of `senders` (workers with load to send), and
///   against the embedded target the target's end of its connection too;
/// - 1 to spare for what start-up opens for a moment (`/dev/null` while the table is
///   grown, a probe connection).
pub fn minimum(
    workers: usize,
    senders: usize,
    origins: usize,
    open_model: bool,
    embedded: bool,
) -> u64 {
    let per_worker = RUNTIME + 2 * u64::from(open_model);
    let per_connection = origins.max(1) as u64 + u64::from(embedded);
    RUNTIME
        + 2
        + if embedded { 1 + RUNTIME } else { 0 }
        + per_worker * workers as u64
        + per_connection * senders.min(workers) as u64
        + 1
}

/// Descriptors a tokio runtime with I/O holds: its epoll and a duplicate of it (the
/// driver's registry), its waker's eventfd, and a duplicate of tokio's signal pipe (the
/// pipe itself, a socket pair, is created once per process: the binary does it first
/// thing).
pub const RUNTIME: u64 = 4;

/// Why a run cannot start: the descriptors it needs exceed the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shortfall {
    /// The soft limit in force (already raised to the hard one where allowed).
    pub limit: u64,
    /// Descriptors open when checked.
    pub open: u64,
    /// Descriptors the run needs beyond those (see [`minimum`]).
    pub need: u64,
}

impl std::fmt::Display for Shortfall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the open-file limit is {}, too few to start this run: it needs at least {} descriptors ({} open already, {} more for its runtimes, output files and a connection per worker and origin)\n  hint: {HINT}",
            self.limit,
            self.open + self.need,
            self.open,
            self.need,
        )
    }
}

/// Checks that `need` more descriptors fit under the limit, after raising it to the hard
/// one. Unknown counts (no `/proc`) pass: the run then fails, if it must, where a
/// descriptor is missing, with the same hint.
pub fn check(need: u64) -> Result<(), Shortfall> {
    let Some(limit) = raise() else { return Ok(()) };
    let open = match open_now(limit) {
        Some(n) => n,
        // Reading /proc/self/fd needs a descriptor: none is free at all.
        None if std::path::Path::new("/proc/self/fd").exists() => limit,
        None => return Ok(()),
    };
    if open.saturating_add(need) > limit {
        return Err(Shortfall { limit, open, need });
    }
    Ok(())
}

/// Whether `e` means the process (EMFILE) or the system (ENFILE) is out of descriptors.
#[cfg(target_os = "linux")]
pub fn is_exhaustion(e: &std::io::Error) -> bool {
    use rustix::io::Errno;
    e.raw_os_error()
        .is_some_and(|c| c == Errno::MFILE.raw_os_error() || c == Errno::NFILE.raw_os_error())
}

/// Whether `e` means the process (EMFILE) or the system (ENFILE) is out of descriptors.
#[cfg(not(target_os = "linux"))]
pub fn is_exhaustion(_: &std::io::Error) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_minimum_counts_workers_model_and_target() {
        // signal thread 4, files 2, spare 1; target 5; worker: runtime 4 (+ timerfd and
        // schedstat in the open model)
        assert_eq!(minimum(1, 1, 1, false, false), 7 + 4 + 1);
        assert_eq!(minimum(1, 1, 1, false, true), 7 + 5 + 4 + 2);
        // two workers, one VU: one connection
        assert_eq!(minimum(2, 1, 1, false, true), 7 + 5 + 2 * 4 + 2);
        assert_eq!(minimum(2, 9, 1, true, true), 7 + 5 + 2 * 6 + 2 * 2);
        // Two origins (the embedded target and an endpoint's own base): a connection to
        // each per sending worker, and the embedded target's end of its own.
        assert_eq!(minimum(2, 9, 2, true, true), 7 + 5 + 2 * 6 + 2 * 3);
    }

    #[test]
    fn a_shortfall_says_how_many_and_how_to_fix_it() {
        let s = Shortfall {
            limit: 8,
            open: 3,
            need: 20,
        };
        let text = s.to_string();
        assert!(text.contains("the open-file limit is 8"), "{text}");
        assert!(text.contains("at least 23"), "{text}");
        assert!(
            text.contains("ulimit -Hn") && text.contains("LimitNOFILE="),
            "{text}"
        );
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn exhaustion_is_emfile_or_enfile() {
        assert!(is_exhaustion(&std::io::Error::from_raw_os_error(24)));
        assert!(is_exhaustion(&std::io::Error::from_raw_os_error(23)));
        assert!(!is_exhaustion(&std::io::Error::from_raw_os_error(2)));
    }
}
