//! Exit codes: the one place where outcomes become numbers.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | pass: a valid run, every SLO budget held |
//! | 1 | fail: at least one budget breached (including an `abort_on_fail` stop) |
//! | 2 | usage or configuration error: bad flags, invalid scenario, a TLS file that cannot be used |
//! | 3 | invalid run: the generator could not hold the load (rate, late or dropped sends, its own descriptors); also a run refused before any load because loadgate's own resources cannot start it (open-file limit, threads) |
//! | 4 | target never healthy: `--wait-healthy` gave up |
//! | 5 | regression: valid and within budgets, but worse than the baseline beyond noise |
//! | 6 | the target cannot be reached before any load: its host name does not resolve, or the TLS handshake fails |
//! | 7 | output not written: the output folder is unwritable or too full before any load, or a run that would have exited 0 (or 5) could not write all its files; the verdict and tables are still printed, and a breach (1), an invalid run (3) or an interrupt (130) keeps its own code |
//! | 70 | internal error: a bug in loadgate (a worker panicked) |
//! | 130 | interrupted (Ctrl-C / SIGTERM): results up to the stop are written, marked `interrupted` |

use std::fmt;
use std::process::ExitCode;

use loadgate_report::outdir::{OutDir, OutError};

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// 0
    Pass,
    /// 1
    SloFail,
    /// 2
    Config,
    /// 3
    Invalid,
    /// 4
    Unhealthy,
    /// 5
    Regression,
    /// 6
    Unreachable,
    /// 7
    Unwritten,
    /// 130
    Interrupted,
    /// 70
    Internal,
}

impl Exit {
    /// The exit code of a finished run (or search) with `verdict`; an interrupted one
    /// exits 130 whatever it measured.
    pub(crate) fn of(verdict: loadgate_slo::summary::Verdict, interrupted: bool) -> Exit {
        use loadgate_slo::summary::Verdict;
        match verdict {
            _ if interrupted => Exit::Interrupted,
            Verdict::Pass => Exit::Pass,
            Verdict::Fail => Exit::SloFail,
            Verdict::Invalid => Exit::Invalid,
            Verdict::Regression => Exit::Regression,
            Verdict::Interrupted => Exit::Interrupted,
        }
    }

    /// The exit code of a command that ended with `self`, given what `dir` could not
    /// write: a would-be 0 or 5 becomes [`Exit::Unwritten`], any other code stands (a
    /// breach or an invalid run is never hidden behind a disk problem).
    pub(crate) fn after_writing(self, dir: &OutDir) -> Exit {
        match self {
            Exit::Pass | Exit::Regression if !dir.is_whole() => Exit::Unwritten,
            e => e,
        }
    }

    pub(crate) fn code(self) -> ExitCode {
        ExitCode::from(match self {
            Exit::Pass => 0,
            Exit::SloFail => 1,
            Exit::Config => 2,
            Exit::Invalid => 3,
            Exit::Unhealthy => 4,
            Exit::Regression => 5,
            Exit::Unreachable => 6,
            Exit::Unwritten => 7,
            Exit::Interrupted => 130,
            Exit::Internal => 70,
        })
    }
}

/// An error for a person, with the exit code it maps to.
#[derive(Debug)]
pub(crate) struct Failure {
    pub exit: Exit,
    pub message: String,
}

impl Failure {
    pub(crate) fn config(message: impl Into<String>) -> Failure {
        Failure {
            exit: Exit::Config,
            message: message.into(),
        }
    }
    pub(crate) fn internal(message: impl Into<String>) -> Failure {
        Failure {
            exit: Exit::Internal,
            message: message.into(),
        }
    }
}

/// An output folder that cannot be written into: exit 7, before any load.
impl From<OutError> for Failure {
    fn from(e: OutError) -> Failure {
        Failure {
            exit: Exit::Unwritten,
            message: e.to_string(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}
