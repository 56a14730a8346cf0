//! The embedded demo target: an HTTP server that behaves like the seeds' services
//! (`/api/intelligence/analyze`, `/api/agent/query`, `/api/health`, ...) with latency,
//! errors, rate limiting, degraded health and periodic stalls taken from a profile, and
//! answers streamed token by token as an LLM API streams a completion (OpenAI's
//! chat-completion chunks over server-sent events, or NDJSON), with a known time to
//! first token, gap between tokens, share of cut-off streams and concurrency limit.
//! For user journeys (`api.rs`): a login issuing expiring JWTs, signed session cookies,
//! protected paths, jobs that are pending for a while then done, redirects, compressed
//! bodies and per-user rate limits, all stateless or in fixed-size tables.
//!
//! It is what `target = "embedded"` and `loadgate serve-target` run, and what the
//! integration tests measure against. It speaks HTTP/1.1 and HTTP/2 prior knowledge
//! (h2c) on the same port. Not here: anything that generates load.

mod api;
mod faults;
mod limit;
mod profile;
mod server;
mod stream;
mod tokens;

pub use faults::{spawn_fault, Fault, FaultCounts, FaultServer};
pub use profile::{
    path_matches, Auth, Burst, Jobs, Latency, Profile, ProfileError, RateLimit, Route, Stall,
    Stream, StreamFormat, Tokens, TruncateMode, Validate,
};
pub use server::{
    loopback, spawn, spawn_tls, spawn_with_tls, RunningTarget, RELEASE_LAG_PATH, VERSION_PATH,
};
