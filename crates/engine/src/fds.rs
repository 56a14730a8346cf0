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

/// The most descriptors [`prepare`] makes room for: 8 bytes of kernel memory each, 512 KiB
/// in all, and more than the connections of any run [`default_max_in_flight`] sizes
/// (10,000 at most, one descriptor each, and as many again for the embedded target's side
/// when it serves in the same process).
///
/// [`default_max_in_flight`]: loadgate_scenario::default_max_in_flight
pub const RESERVE: u64 = 65_536;

/// Raises the soft descriptor limit to the hard one and grows the descriptor table to hold
/// `min(limit, RESERVE)` descriptors. Neither step is needed for correctness, so a failure
/// (a sandbox that forbids `setrlimit`, no `/dev/null`) leaves things as they were.
#[cfg(target_os = "linux")]
pub fn prepare() {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let old = getrlimit(Resource::Nofile);
    let raised = Rlimit {
        current: old.maximum,
        maximum: old.maximum,
    };
    // A limit that cannot be raised (a sandbox, a hard limit over the kernel's nr_open)
    // stays as it was; the table is still grown to it.
    let limit = if old.current != old.maximum && setrlimit(Resource::Nofile, raised).is_ok() {
        old.maximum
    } else {
        old.current
    };
    reserve(limit.map_or(RESERVE, |l| l.min(RESERVE)));
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
