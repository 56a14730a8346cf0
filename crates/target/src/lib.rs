//! The embedded demo target: an HTTP server that behaves like the seeds' services
//! (`/api/intelligence/analyze`, `/api/agent/query`, `/api/health`, ...) with latency,
//! errors, rate limiting, degraded health and periodic stalls taken from a profile, and
//! answers streamed token by token as an LLM API streams a completion (OpenAI's
//! chat-completion chunks over server-sent events, or NDJSON), with a known time to
//! first token, gap between tokens, share of cut-off streams and concurrency limit.
//!
//! It is what `target = "embedded"` and `loadgate serve-target` run, and what the
//! integration tests measure against. It speaks HTTP/1.1 and HTTP/2 prior knowledge
//! (h2c) on the same port. Not here: anything that generates load.

mod faults;
mod profile;
mod server;
mod stream;

pub use faults::{spawn_fault, Fault, FaultCounts, FaultServer};
pub use profile::{
    Burst, Latency, Profile, ProfileError, Route, Stall, Stream, StreamFormat, Tokens,
    TruncateMode, Validate,
};
pub use server::{
    loopback, spawn, spawn_tls, spawn_with_tls, RunningTarget, RELEASE_LAG_PATH, VERSION_PATH,
};
