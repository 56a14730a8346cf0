//! The load engine: runs a validated scenario against a base URL and returns what was
//! measured.
//!
//! One worker thread per core, each with a single-threaded tokio runtime, its own
//! hyper connection pool and its own metrics shard (no lock per request). In the open
//! model every arrival has an intended time from [`Schedule`] and latency is
//! measured from it (coordinated-omission corrected, as wrk2 does); service time from
//! the actual send is kept beside it. Shards are merged by the aggregator at 1-second
//! boundaries and handed to every [`Observer`] of the run (the live budget watch,
//! progress, time series files) without keeping any per-request sample; an observer may
//! ask the run to stop ([`Control::Stop`]).
//!
//! Not here: parsing scenarios, judging SLOs (not even `abort_on_fail`: that is an
//! observer's decision), writing reports.

mod affinity;
pub mod auth;
mod call;
pub mod capture;
mod classify;
mod client;
mod deadline;
mod decode;
pub mod fds;
mod gate;
mod h1;
mod h2;
mod mix;
mod pause;
mod request;
mod run;
mod runqueue;
mod schedule;
mod segment;
mod session;
pub mod stream;
mod worker;

pub use call::{execute, Call, Exchange};
pub use client::{
    ClientOptions, HttpClient, Response, SendError, TlsFileError, TlsFiles, TlsProblem,
};
pub use deadline::Deadlines;
pub use loadgate_metrics::{Abort, Control, IntervalView, Observer, RunStarted};
pub use request::{Built, Prepared, ACCEPT_ENCODING, USER_AGENT};
pub use run::{run, worker_count, RunConfig, RunData, StopReason, StopSignal};
pub use schedule::Schedule;
pub use segment::Segment;
pub use session::{Jar, MAX_COOKIES, MAX_COOKIE_BYTES};

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// TLS could not be configured.
    #[error("cannot configure TLS: {0}")]
    Tls(String),
    /// An endpoint cannot be turned into a request.
    #[error("endpoint `{endpoint}`: {message}")]
    Request {
        /// Endpoint name.
        endpoint: String,
        /// What is wrong.
        message: String,
    },
    /// A worker failed to start.
    #[error("worker {worker} failed: {message}")]
    Worker {
        /// Worker index.
        worker: usize,
        /// What happened.
        message: String,
    },
    /// A worker found no descriptor to start with: the open-file limit is too small.
    #[error(
        "worker {worker} cannot start: {message}: loadgate ran out of file descriptors\n  hint: {}",
        fds::HINT
    )]
    Descriptors {
        /// Worker index.
        worker: usize,
        /// What failed.
        message: String,
    },
    /// A worker panicked (a bug in loadgate).
    #[error("worker {worker} panicked: {message}")]
    Panicked {
        /// Worker index.
        worker: usize,
        /// The panic's message.
        message: String,
    },
    /// A worker ended before the load began without saying why.
    #[error("a worker stopped before the run began")]
    NotStarted,
    /// The segment cannot be run as asked.
    #[error("{0}")]
    Segment(String),
    /// A thread could not be started.
    #[error("cannot start a thread: {0}\n  hint: the machine or its limits (`ulimit -u`, a container's pids limit, memory) allow no more threads")]
    Thread(#[from] std::io::Error),
}
