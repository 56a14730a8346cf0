//! Start-up before any load: the descriptor limit raised, tokio's signal pipe created
//! while descriptors are plentiful, a limit too small to start a run refused with the
//! fix, and the engine's start-up failures mapped to exit codes.
//!
//! Not here: the signal thread itself (`run_cmd::watch_signals`).

use std::sync::atomic::{AtomicBool, Ordering};

use loadgate_engine::{fds, EngineError};
use loadgate_scenario::{Scenario, Target};

use crate::exit::{Exit, Failure};

/// Descriptors tokio's signal pipe needs to be created: the pipe (a socket pair), and
/// the runtime that creates it.
const SIGNAL_PIPE: u64 = 2 + fds::RUNTIME;

/// First thing in `main`, while the process is one thread: raises the soft descriptor
/// limit to the hard one, then has tokio create its process-wide signal pipe. tokio
/// creates that pipe with the first runtime that has I/O and panics when it cannot
/// (`failed to create UnixStream`); made here, every later runtime only duplicates it,
/// and a runtime short of descriptors fails with EMFILE, which is an error, not a panic.
/// Remembers whether the pipe exists: when not even that fits, nothing can run.
pub(crate) fn prepare() {
    SIGNAL_PIPE_MADE.store(make_signal_pipe(), Ordering::Relaxed);
}

/// Whether [`prepare`] created tokio's signal pipe.
static SIGNAL_PIPE_MADE: AtomicBool = AtomicBool::new(false);

fn make_signal_pipe() -> bool {
    let limit = fds::raise();
    let free = match (limit, limit.and_then(fds::open_now)) {
        (Some(limit), Some(open)) => limit.saturating_sub(open),
        (None, _) => u64::MAX,
        // Reading /proc/self/fd takes a descriptor: with none free it cannot be read.
        (Some(_), None) if std::path::Path::new("/proc/self/fd").exists() => 0,
        (Some(_), None) => u64::MAX,
    };
    if free < SIGNAL_PIPE {
        return false;
    }
    // Counted above, so this should not panic; if it does anyway (no /proc to count
    // with), say nothing here: the check before the run says what is wrong. The hook is
    // swapped while no other thread exists.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let made = std::panic::catch_unwind(|| {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
        else {
            return false;
        };
        // A file-size limit (`ulimit -f`) would kill the process with SIGXFSZ at the
        // first write past it: with a handler registered (it stays for the process's
        // life), the write fails with EFBIG instead, and that is a write failure like a
        // full disk (tables and verdict still printed, exit 7).
        let xfsz =
            tokio::signal::unix::SignalKind::from_raw(rustix::process::Signal::XFSZ.as_raw());
        let _ = rt.block_on(async { tokio::signal::unix::signal(xfsz) });
        true
    });
    std::panic::set_hook(hook);
    matches!(made, Ok(true))
}

/// Refuses, before anything is written or sent, a run the descriptor limit is too small
/// to start (exit 3, with the fix).
/// `open_model`: whether the run is open-model (a capacity search always is).
pub(crate) fn check_descriptors(
    scenario: &Scenario,
    requested_workers: usize,
    open_model: bool,
) -> Result<(), Failure> {
    let workers = loadgate_engine::worker_count(requested_workers, scenario);
    // A closed-model worker without a VU sends nothing and opens no connection.
    let senders = match open_model {
        true => workers,
        false => (scenario.load.peak().ceil() as usize).max(1),
    };
    let need = fds::minimum(
        workers,
        senders,
        1 + scenario.other_bases().len(),
        open_model,
        scenario.target == Target::Embedded,
    );
    match fds::check(need) {
        Err(short) => Err(Failure {
            exit: Exit::Invalid,
            message: short.to_string(),
        }),
        Ok(()) if !SIGNAL_PIPE_MADE.load(Ordering::Relaxed) => Err(Failure {
            exit: Exit::Invalid,
            message: format!(
                "the open-file limit is too small to start anything: not even tokio's signal pipe could be created\n  hint: {}",
                fds::HINT
            ),
        }),
        Ok(()) => Ok(()),
    }
}

/// The exit code of a run that could not start: loadgate's own resources running out
/// is an invalid run (3), a panic is a bug (70), anything else a configuration error.
pub(crate) fn engine_failure(e: EngineError) -> Failure {
    let exit = match e {
        EngineError::Descriptors { .. } | EngineError::Thread(_) => Exit::Invalid,
        EngineError::Panicked { .. } | EngineError::NotStarted => Exit::Internal,
        _ => Exit::Config,
    };
    Failure {
        exit,
        message: e.to_string(),
    }
}
