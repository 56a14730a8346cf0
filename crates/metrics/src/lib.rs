//! Measurement maths for loadgate: what a sample is, where it is recorded, and how
//! recorded data is merged, summarised and serialized.
//!
//! This crate is pure: no sockets, no clocks, no files. The engine records samples into
//! a [`Shard`] owned by one worker (no lock per request); at each interval boundary the
//! shard is merged into the aggregator's totals with [`Shard::merge_from`]. Histograms
//! are HdrHistogram with 3 significant digits in microseconds and are serialized in the
//! standard V2-deflate encoding, so runs can be re-rendered or merged exactly later.
//!
//! It also holds the interface between a running load and what watches it ([`Observer`]:
//! the start, each finished [`IntervalView`], a request to stop), so that the engine and
//! the live budget judge meet here without depending on each other.
//!
//! Not here: scheduling, HTTP, SLO evaluation, rendering.

mod by_second;
pub mod failures;
mod histogram;
mod observe;
mod outcome;
mod pauses;
mod shard;
mod timing;

pub use by_second::BySecond;
pub use failures::{Failure, Failures};
pub use histogram::{nearest_rank, DecodeError, LatencyHistogram, LatencyStats};
pub use observe::{Abort, Control, IntervalView, Observer, RunStarted};
pub use outcome::{Outcome, OutcomeCounts};
pub use pauses::Pauses;
pub use shard::{
    add_some, EndpointShard, Protocol, Protocols, Rows, Sample, Shard, StreamCounts, StreamSample,
};
pub use timing::{log_tag, Timing, Timings};
