//! Target profiles: routes and their behaviour, from TOML.
//!
//! A profile is `[[route]]` tables (method, path, latency, faults) and an optional
//! `[stall]`. A route may stream its answer (`[route.stream]`, [`Stream`]): the head at
//! once, then tokens over time as an LLM API streams a completion, in OpenAI's
//! chat-completion chunk shape over server-sent events or as NDJSON:
//!
//! ```toml
//! [[route]]
//! method = "POST"
//! path = "/v1/chat/completions"
//! [route.stream]
//! format = "sse"                                  # or "ndjson"
//! first_token = { dist = "fixed", value = "300ms" }   # any latency dist
//! token_gap = { dist = "lognormal", median = "30ms", p99 = "120ms" }
//! tokens = 40                                     # or { min = 20, max = 60 }
//! truncate = 0.2                                  # share of streams cut after half their tokens
//! truncate_mode = "clean"                         # or "abort"
//! max_streams = 8                                 # at most 8 generate at once, the rest queue
//! ping_every = "1s"                               # `: ping` after 1 s without an event (sse)
//! when = "always"                                 # or "asked"
//! ```
//!
//! Beside the routes, the built-in user-journey routes (`api.rs`: login, sessions,
//! jobs, redirects, compressed bodies) take `[auth]` (password, token lifetime, which
//! paths need a bearer token), `[jobs]` (how long a job stays pending) and
//! `[rate_limit]` (per-user windows on paths):
//!
//! ```toml
//! [auth]
//! password = "demo"                         # the default
//! token_ttl = "60s"                         # JWTs and session cookies (default 300s)
//! protect = ["/api/agent/*", "/api/me"]     # 401 without a valid unexpired bearer token
//! [jobs]
//! time = "2s"                               # or any latency dist
//! [rate_limit]
//! "/api/agent/*" = { per_user = 10, per = "1m", method = "POST" }
//! ```
//!
//! Every mistake is reported with file:line:column and a hint; unknown keys are refused.
//! Not here: serving (`server.rs`) or the streamed bytes (`stream.rs`).

use std::path::Path;
use std::time::Duration;

use loadgate_scenario::line_col;
use rand::Rng;
use rand_distr::{Distribution, LogNormal};
use serde::Deserialize;

/// The built-in profile text.
pub(crate) const DEMO_PROFILE: &str = include_str!("../../profiles/demo.toml");

/// What the target does.
#[derive(Debug, Clone)]
pub struct Profile {
    /// Routes, matched by method and path (query ignored).
    pub routes: Vec<Route>,
    /// Periodic freeze of every response.
    pub stall: Option<Stall>,
    /// Login, tokens and the paths that need one (`[auth]`).
    pub auth: Auth,
    /// The built-in jobs (`[jobs]`).
    pub jobs: Jobs,
    /// Per-user request limits on paths (`[rate_limit]`), sorted by path.
    pub rate_limits: Vec<RateLimit>,
}

/// `[auth]`: the built-in login (`POST /api/auth/login`, `POST /api/auth/session`) and
/// the paths that answer 401 without a valid unexpired bearer token.
#[derive(Debug, Clone)]
pub struct Auth {
    /// The one password every user logs in with (default "demo").
    pub password: String,
    /// How long a token and a session cookie are valid (default 300 s).
    pub token_ttl: Duration,
    /// Path patterns (`/api/me`, or a prefix `/api/agent/*`) that need
    /// `Authorization: Bearer <token>` (default none).
    pub protect: Vec<String>,
}

impl Default for Auth {
    fn default() -> Auth {
        Auth {
            password: "demo".into(),
            token_ttl: Duration::from_secs(300),
            protect: Vec::new(),
        }
    }
}

impl Auth {
    /// Whether `path` needs a bearer token.
    pub fn protects(&self, path: &str) -> bool {
        self.protect.iter().any(|p| path_matches(p, path))
    }
}

/// `[jobs]`: the built-in jobs (`POST /api/agent/jobs`) stay pending this long.
#[derive(Debug, Clone, Copy)]
pub struct Jobs {
    /// From a job's creation to its answer, drawn per job (default 2 s).
    pub time: Latency,
}

impl Default for Jobs {
    fn default() -> Jobs {
        Jobs {
            time: Latency::Fixed(Duration::from_secs(2)),
        }
    }
}

/// One `[rate_limit]` entry: at most `per_user` requests to paths matching `path`
/// (and of `method`, when given) per user in a window of `per` that starts at the
/// user's first request; past that, 429 with `Retry-After` until the window ends. The
/// user is the bearer token's `sub`, else the session cookie's user, else the client's
/// IP address.
#[derive(Debug, Clone)]
pub struct RateLimit {
    /// Path pattern (`/api/agent/query`, or a prefix `/api/agent/*`).
    pub path: String,
    /// Only requests of this method count (upper case); `None`: every method.
    pub method: Option<String>,
    /// Requests a user may send in one window.
    pub per_user: u32,
    /// The window's length.
    pub per: Duration,
}

impl RateLimit {
    /// Whether a request counts against this limit.
    pub fn applies(&self, method: &str, path: &str) -> bool {
        self.method.as_deref().is_none_or(|m| m == method) && path_matches(&self.path, path)
    }
}

/// Whether `path` matches `pattern`: the same path, or, for a pattern ending in `*`,
/// any path that starts with what comes before it (`/api/agent/*` matches
/// `/api/agent/jobs/1`, not `/api/agents`).
pub fn path_matches(pattern: &str, path: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => path.starts_with(prefix),
        None => pattern == path,
    }
}

/// Freeze all responses for `freeze` at the start of every `every` period.
#[derive(Debug, Clone, Copy)]
pub struct Stall {
    /// Period.
    pub every: Duration,
    /// Length of the freeze at the start of each period.
    pub freeze: Duration,
    /// `mode = "world"`: the whole server stops, as a stop-the-world GC pause or a
    /// stopped process does: no response leaves and no connection is accepted (new ones
    /// wait in the kernel's listen queue, and past its length their SYNs are dropped).
    /// The default, `"responses"`, holds responses and keeps accepting.
    pub world: bool,
}

/// One route.
#[derive(Debug, Clone)]
pub struct Route {
    /// HTTP method.
    pub method: String,
    /// Path, without query.
    pub path: String,
    /// Response time before any stall.
    pub latency: Latency,
    /// Share of requests answered with `error_status`.
    pub error_rate: f64,
    /// Status for injected errors.
    pub error_status: u16,
    /// Requests per second above which 429 with `Retry-After` is returned (per 1 s window).
    pub rate_limit_rps: Option<u32>,
    /// A capacity model: the route serves one request at a time, each taking
    /// `1 / capacity_rps` seconds, first come first served. Below the rate, latency is
    /// one service time; above it, the queue (and latency) grows without bound.
    pub capacity_rps: Option<u32>,
    /// Request-body validation (400 when it fails).
    pub validate: Option<Validate>,
    /// Response body.
    pub response: String,
    /// A health route: JSON status, 503 while degraded.
    pub unhealthy_for: Option<Duration>,
    /// Periodic bursts of an error status.
    pub burst: Option<Burst>,
    /// The head (and the body's first byte) leave after `latency`; the rest of the body
    /// this much later: a slow body behind a quick first byte, as a streaming answer.
    pub body_after: Option<Duration>,
    /// Answer with a token stream instead of `response` (always, or when the request
    /// asks for one).
    pub stream: Option<Stream>,
}

/// A streamed answer (`[route.stream]`): the head and an optional role-only event at
/// once, then `tokens` content events, the first `first_token` after the request
/// arrived (after its wait for a slot, with `max_streams`) and each next one
/// `token_gap` after the one before, then a final event with the usage and, in SSE,
/// `data: [DONE]`. Each event leaves as its own HTTP/1.1 chunk or HTTP/2 DATA frame.
///
/// On such an answer the route's `error_rate` fails the request at once, as a JSON error
/// with `error_status` and no stream; `rate_limit_rps`, `burst` and `validate` apply as to
/// any answer, and a `[stall]` holds the head like any response (the tokens then leave
/// at their due times, those overdue at once). `latency`, `capacity_rps`, `body_after`
/// and `response` describe only the answers that are not streamed (`when = "asked"`).
#[derive(Debug, Clone, Copy)]
pub struct Stream {
    /// Wire format (`format`).
    pub format: StreamFormat,
    /// `when = "asked"`: stream only when the request asks for it (a JSON body with
    /// `"stream": true`, as OpenAI's API takes it, or an `Accept` header naming the
    /// format's content type); otherwise answer `response` as a route without a stream
    /// does. The default, `"always"`, streams every answer.
    pub asked_only: bool,
    /// From the request's arrival (or its slot, with `max_streams`) to the first content
    /// token, drawn once per stream.
    pub first_token: Latency,
    /// From one content token to the next, drawn per token.
    pub token_gap: Latency,
    /// Content tokens per stream.
    pub tokens: Tokens,
    /// Share of streams cut off after half their tokens (rounded down): the first half
    /// of the next token's event leaves when that token is due, and the body ends (see
    /// `truncate_mode`) when the one after would have been; no usage, no `[DONE]`.
    pub truncate: f64,
    /// How a cut stream ends.
    pub truncate_mode: TruncateMode,
    /// At most this many streams of the route generate at once; a further one gets its
    /// head (and role event) at once, then waits first come first served for a free slot
    /// before its `first_token` starts: under overload the time to first token grows and
    /// the gaps do not. A slot frees when its stream's last event leaves or its client
    /// goes.
    pub max_streams: Option<u32>,
    /// SSE only: a comment event `: ping` whenever the stream has been this long without
    /// an event (each due this long after the one before), as proxies' keep-alives do. A
    /// client must not take one for a token.
    pub ping_every: Option<Duration>,
    /// A first event with `"delta":{"role":"assistant","content":""}` and no token, sent
    /// with the head, as OpenAI's API does (default true). A client must not take it for
    /// the first token.
    pub role_event: bool,
}

/// How a streamed answer is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamFormat {
    /// `text/event-stream`: `data: {chunk}` events, `data: [DONE]` at the end.
    Sse,
    /// `application/x-ndjson`: one chunk object per line, the last with `"done":true`.
    Ndjson,
}

impl StreamFormat {
    /// The answer's content type.
    pub fn content_type(self) -> &'static str {
        match self {
            StreamFormat::Sse => "text/event-stream",
            StreamFormat::Ndjson => "application/x-ndjson",
        }
    }
}

/// How a truncated stream ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TruncateMode {
    /// The body ends properly (HTTP/1.1's last chunk, HTTP/2's END_STREAM): a complete
    /// HTTP response whose stream is not.
    Clean,
    /// The connection is closed without HTTP/1.1's last chunk (HTTP/2: the stream is
    /// reset), as a crashed upstream does.
    Abort,
}

/// How many content tokens a stream has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tokens {
    /// Always the same.
    Fixed(u32),
    /// Uniform between two bounds, both included.
    Uniform(u32, u32),
}

impl Tokens {
    /// Draws one count.
    pub fn sample<R: Rng>(&self, rng: &mut R) -> u32 {
        match *self {
            Tokens::Fixed(n) => n,
            Tokens::Uniform(a, b) => rng.gen_range(a..=b.max(a)),
        }
    }
}

/// For `len` at the start of every `every`, the route answers `status` (with
/// `Retry-After: 1`), as an overloaded backend behind a load balancer does.
#[derive(Debug, Clone, Copy)]
pub struct Burst {
    /// Period.
    pub every: Duration,
    /// Length of each burst.
    pub len: Duration,
    /// Status during a burst.
    pub status: u16,
}

/// Body validation.
#[derive(Debug, Clone)]
pub struct Validate {
    /// A top-level JSON field that must be a string.
    pub json_string: String,
    /// Longest accepted string, in characters.
    pub max_len: Option<usize>,
}

/// A latency distribution.
#[derive(Debug, Clone, Copy)]
pub enum Latency {
    /// Always the same.
    Fixed(Duration),
    /// Uniform between two bounds.
    Uniform(Duration, Duration),
    /// Log-normal with the given median, and `p99` at the 99th percentile.
    LogNormal {
        /// Median.
        median: Duration,
        /// 99th percentile.
        p99: Duration,
    },
}

impl Latency {
    /// Draws one latency.
    pub fn sample<R: Rng>(&self, rng: &mut R) -> Duration {
        match *self {
            Latency::Fixed(d) => d,
            Latency::Uniform(a, b) => {
                if b <= a {
                    a
                } else {
                    rng.gen_range(a..=b)
                }
            }
            Latency::LogNormal { median, p99 } => {
                let m = median.as_secs_f64().max(1e-6);
                // z(0.99) = 2.3263: p99 = median * exp(2.3263 * sigma)
                let sigma = ((p99.as_secs_f64().max(m) / m).ln() / 2.326_348).max(1e-9);
                let d = LogNormal::new(m.ln(), sigma).expect("sigma is positive");
                Duration::from_secs_f64(d.sample(rng).min(3600.0))
            }
        }
    }
}

/// A profile file that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// Unreadable.
    #[error("cannot read target profile {path}: {source}")]
    Io {
        /// File.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Several problems, each with its position.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Many(Vec<ProfileError>),
    /// Invalid, with position.
    #[error("{file}:{line}:{column}: {message}")]
    Invalid {
        /// File.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
}

mod raw {
    use serde::Deserialize;
    use serde_spanned::Spanned;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct File {
        #[serde(default)]
        pub route: Vec<Route>,
        pub stall: Option<Spanned<Stall>>,
        pub auth: Option<Auth>,
        pub jobs: Option<Jobs>,
        #[serde(default)]
        pub rate_limit: std::collections::BTreeMap<String, Spanned<RateLimit>>,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Auth {
        pub password: Option<Spanned<String>>,
        pub token_ttl: Option<Spanned<String>>,
        #[serde(default)]
        pub protect: Vec<Spanned<String>>,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Jobs {
        pub time: Option<Spanned<toml::Value>>,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct RateLimit {
        pub per_user: Spanned<i64>,
        pub per: Spanned<String>,
        pub method: Option<String>,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Stall {
        pub every: Spanned<String>,
        pub freeze: Spanned<String>,
        pub mode: Option<Spanned<String>>,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Route {
        #[serde(default = "get")]
        pub method: String,
        pub path: String,
        pub latency: Option<Spanned<super::RawLatency>>,
        pub error_rate: Option<Spanned<f64>>,
        pub error_status: Option<u16>,
        pub rate_limit_rps: Option<u32>,
        pub capacity_rps: Option<Spanned<u32>>,
        pub validate: Option<Validate>,
        pub response: Option<Spanned<String>>,
        pub health: Option<Spanned<Health>>,
        pub burst: Option<Spanned<Burst>>,
        pub body_after: Option<Spanned<String>>,
        pub stream: Option<Spanned<Stream>>,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Stream {
        pub format: Option<Spanned<String>>,
        pub when: Option<Spanned<String>>,
        pub first_token: Option<Spanned<super::RawLatency>>,
        pub token_gap: Option<Spanned<super::RawLatency>>,
        pub tokens: Option<Spanned<toml::Value>>,
        pub truncate: Option<Spanned<f64>>,
        pub truncate_mode: Option<Spanned<String>>,
        pub max_streams: Option<Spanned<u32>>,
        pub ping_every: Option<Spanned<String>>,
        pub role_event: Option<bool>,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Burst {
        pub every: Spanned<String>,
        #[serde(rename = "for")]
        pub len: Spanned<String>,
        pub status: Option<u16>,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Validate {
        pub json_string: String,
        pub max_len: Option<usize>,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Health {
        pub unhealthy_for: Spanned<String>,
    }
    fn get() -> String {
        "GET".into()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[doc(hidden)]
pub(crate) struct RawLatency {
    dist: String,
    value: Option<String>,
    min: Option<String>,
    max: Option<String>,
    median: Option<String>,
    p99: Option<String>,
}

impl Profile {
    /// The built-in demo profile.
    pub fn demo() -> Profile {
        Profile::parse("demo.toml", DEMO_PROFILE).expect("the built-in profile is valid")
    }

    /// Reads a profile file.
    pub fn load(path: &Path) -> Result<Profile, ProfileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Profile::parse(&path.display().to_string(), &text)
    }

    /// Parses profile `text` (`file` is used in messages).
    pub fn parse(file: &str, text: &str) -> Result<Profile, ProfileError> {
        let invalid = |at: usize, message: String| {
            let (line, column) = line_col(text, at);
            ProfileError::Invalid {
                file: file.to_string(),
                line,
                column,
                message,
            }
        };
        let raw: raw::File = toml::from_str(text).map_err(|e| {
            invalid(
                e.span().map_or(0, |s| s.start),
                e.message().trim().to_string(),
            )
        })?;
        let dur = |s: &serde_spanned::Spanned<String>| {
            humantime::parse_duration(s.get_ref()).map_err(|e| {
                invalid(
                    s.span().start,
                    format!(
                        "`{}` is not a duration ({e}); write e.g. \"50ms\"",
                        s.get_ref()
                    ),
                )
            })
        };
        let dist = |l: &serde_spanned::Spanned<RawLatency>, field: &str| {
            let at = l.span().start;
            let l = l.get_ref();
            let need = |v: &Option<String>, name: &str| -> Result<Duration, ProfileError> {
                let v = v.as_ref().ok_or_else(|| {
                    invalid(at, format!("{field} dist `{}` needs `{name}`", l.dist))
                })?;
                humantime::parse_duration(v).map_err(|e| {
                    invalid(at, format!("{field} {name} `{v}` is not a duration ({e})"))
                })
            };
            Ok(match l.dist.as_str() {
                "fixed" => Latency::Fixed(need(&l.value, "value")?),
                "uniform" => Latency::Uniform(need(&l.min, "min")?, need(&l.max, "max")?),
                "lognormal" => Latency::LogNormal {
                    median: need(&l.median, "median")?,
                    p99: need(&l.p99, "p99")?,
                },
                other => {
                    return Err(invalid(
                        at,
                        format!("unknown {field} dist `{other}`; use fixed, uniform or lognormal"),
                    ))
                }
            })
        };
        let mut errors = Vec::new();
        let stall = (|| -> Result<Option<Stall>, ProfileError> {
            Ok(match &raw.stall {
                None => None,
                Some(s) => {
                    let world = match s.get_ref().mode.as_ref() {
                        None => false,
                        Some(m) if m.get_ref() == "responses" => false,
                        Some(m) if m.get_ref() == "world" => true,
                        Some(m) => {
                            return Err(invalid(
                                m.span().start,
                                format!(
                                    "unknown stall mode `{}`; write \"responses\" (hold responses, keep accepting) or \"world\" (stop everything)",
                                    m.get_ref()
                                ),
                            ))
                        }
                    };
                    let st = Stall {
                        every: dur(&s.get_ref().every)?,
                        freeze: dur(&s.get_ref().freeze)?,
                        world,
                    };
                    if st.every.is_zero() || st.freeze >= st.every {
                        return Err(invalid(
                            s.span().start,
                            "stall needs 0 < freeze < every".into(),
                        ));
                    }
                    Some(st)
                }
            })
        })()
        .unwrap_or_else(|e| {
            errors.push(e);
            None
        });
        let auth = auth(raw.auth.as_ref(), &invalid, &dur).unwrap_or_else(|e| {
            errors.push(e);
            Auth::default()
        });
        let jobs = jobs(raw.jobs.as_ref(), &invalid, &dist).unwrap_or_else(|e| {
            errors.push(e);
            Jobs::default()
        });
        let mut rate_limits = Vec::new();
        for (path, limit) in &raw.rate_limit {
            match rate_limit(path, limit, &invalid, &dur) {
                Ok(l) => rate_limits.push(l),
                Err(e) => errors.push(e),
            }
        }
        let mut routes = Vec::new();
        for r in raw.route {
            // Each route is checked on its own, so every broken route is reported.
            let parsed = (|| -> Result<Route, ProfileError> {
                let latency = match &r.latency {
                    None => Latency::Fixed(Duration::ZERO),
                    Some(l) => dist(l, "latency")?,
                };
                let error_rate = r.error_rate.as_ref().map_or(0.0, |e| *e.get_ref());
                if let Some(e) = r
                    .error_rate
                    .as_ref()
                    .filter(|e| !(0.0..=1.0).contains(e.get_ref()))
                {
                    return Err(invalid(
                        e.span().start,
                        format!("error_rate {} must be between 0 and 1", e.get_ref()),
                    ));
                }
                let unhealthy_for = r
                    .health
                    .as_ref()
                    .map(|h| dur(&h.get_ref().unhealthy_for))
                    .transpose()?;
                let burst = match &r.burst {
                    None => None,
                    Some(b) => {
                        let (every, len) = (dur(&b.get_ref().every)?, dur(&b.get_ref().len)?);
                        if every.is_zero() || len > every {
                            return Err(invalid(
                                b.span().start,
                                "burst needs 0 < for <= every".into(),
                            ));
                        }
                        Some(Burst {
                            every,
                            len,
                            status: b.get_ref().status.unwrap_or(503),
                        })
                    }
                };
                let capacity_rps = match &r.capacity_rps {
                    Some(c) if *c.get_ref() == 0 => {
                        return Err(invalid(
                            c.span().start,
                            "capacity_rps must be at least 1".into(),
                        ));
                    }
                    c => c.as_ref().map(|c| *c.get_ref()),
                };
                let stream = match &r.stream {
                    None => None,
                    Some(st) => {
                        let stream = stream(st, &invalid, &dur, &dist)?;
                        // Keys that would mean nothing: every answer of the route is a
                        // stream (or it is a health route's status).
                        let unused: [(&str, Option<usize>); 4] = [
                            ("latency", r.latency.as_ref().map(|v| v.span().start)),
                            (
                                "capacity_rps",
                                r.capacity_rps.as_ref().map(|v| v.span().start),
                            ),
                            ("body_after", r.body_after.as_ref().map(|v| v.span().start)),
                            ("response", r.response.as_ref().map(|v| v.span().start)),
                        ];
                        if let Some(h) = &r.health {
                            return Err(invalid(
                                h.span().start,
                                "a health route cannot stream; drop `health` or `[route.stream]`"
                                    .into(),
                            ));
                        }
                        if !stream.asked_only {
                            if let Some((key, Some(at))) =
                                unused.iter().find(|(_, at)| at.is_some())
                            {
                                return Err(invalid(
                                    *at,
                                    format!(
                                        "`{key}` is unused: every answer of this route streams \
                                         (its timing is `first_token` and `token_gap`); drop it, \
                                         or set `when = \"asked\"` in `[route.stream]` to stream \
                                         only when a request asks"
                                    ),
                                ));
                            }
                        }
                        Some(stream)
                    }
                };
                Ok(Route {
                    stream,
                    capacity_rps,
                    method: r.method.to_ascii_uppercase(),
                    path: r.path,
                    latency,
                    error_rate,
                    error_status: r.error_status.unwrap_or(500),
                    rate_limit_rps: r.rate_limit_rps,
                    validate: r.validate.map(|v| Validate {
                        json_string: v.json_string,
                        max_len: v.max_len,
                    }),
                    response: r
                        .response
                        .map_or_else(|| "{\"status\":\"ok\"}".into(), |v| v.into_inner()),
                    unhealthy_for,
                    burst,
                    body_after: r.body_after.as_ref().map(dur).transpose()?,
                })
            })();
            match parsed {
                Ok(route) => routes.push(route),
                Err(e) => errors.push(e),
            }
        }
        if errors.len() == 1 {
            return Err(errors.remove(0));
        }
        if !errors.is_empty() {
            return Err(ProfileError::Many(errors));
        }
        Ok(Profile {
            routes,
            stall,
            auth,
            jobs,
            rate_limits,
        })
    }
}

/// Checks a path pattern: a path, or a prefix followed by one `*` at its end.
fn pattern(
    p: &serde_spanned::Spanned<String>,
    key: &str,
    invalid: &impl Fn(usize, String) -> ProfileError,
) -> Result<String, ProfileError> {
    let text = p.get_ref();
    let star = text.find('*');
    if !text.starts_with('/') || star.is_some_and(|at| at + 1 != text.len()) {
        return Err(invalid(
            p.span().start,
            format!(
                "{key} `{text}` is not a path pattern; write a path (\"/api/me\") or a prefix \
                 ending in `*` (\"/api/agent/*\")"
            ),
        ));
    }
    Ok(text.clone())
}

/// Reads `[auth]`.
fn auth(
    raw: Option<&raw::Auth>,
    invalid: &impl Fn(usize, String) -> ProfileError,
    dur: &impl Fn(&serde_spanned::Spanned<String>) -> Result<Duration, ProfileError>,
) -> Result<Auth, ProfileError> {
    let mut auth = Auth::default();
    let Some(raw) = raw else { return Ok(auth) };
    if let Some(p) = &raw.password {
        if p.get_ref().is_empty() {
            return Err(invalid(
                p.span().start,
                "password must not be empty; write e.g. password = \"demo\"".into(),
            ));
        }
        auth.password.clone_from(p.get_ref());
    }
    if let Some(t) = &raw.token_ttl {
        auth.token_ttl = dur(t)?;
        if auth.token_ttl < Duration::from_secs(1) {
            return Err(invalid(
                t.span().start,
                "token_ttl must be at least 1s (a token's `exp` is in whole seconds); write e.g. \"60s\""
                    .into(),
            ));
        }
    }
    auth.protect = raw
        .protect
        .iter()
        .map(|p| pattern(p, "protect", invalid))
        .collect::<Result<_, _>>()?;
    Ok(auth)
}

/// Reads `[jobs]`: `time` is a duration (`"2s"`) or a latency dist.
fn jobs(
    raw: Option<&raw::Jobs>,
    invalid: &impl Fn(usize, String) -> ProfileError,
    dist: &impl Fn(&serde_spanned::Spanned<RawLatency>, &str) -> Result<Latency, ProfileError>,
) -> Result<Jobs, ProfileError> {
    let Some(t) = raw.and_then(|r| r.time.as_ref()) else {
        return Ok(Jobs::default());
    };
    let at = t.span().start;
    let hint = "write a duration (time = \"2s\") or a latency dist (time = { dist = \"uniform\", min = \"1s\", max = \"3s\" })";
    let time = match t.get_ref() {
        toml::Value::String(s) => Latency::Fixed(humantime::parse_duration(s).map_err(|e| {
            invalid(
                at,
                format!("jobs time `{s}` is not a duration ({e}); {hint}"),
            )
        })?),
        toml::Value::Table(table) => {
            let raw: RawLatency =
                toml::Value::Table(table.clone())
                    .try_into()
                    .map_err(|e: toml::de::Error| {
                        invalid(at, format!("jobs time: {}; {hint}", e.message().trim()))
                    })?;
            dist(&serde_spanned::Spanned::new(t.span(), raw), "jobs time")?
        }
        v => {
            return Err(invalid(
                at,
                format!("jobs time `{v}` is not a duration; {hint}"),
            ))
        }
    };
    Ok(Jobs { time })
}

/// Reads one `[rate_limit]` entry, `"PATTERN" = { per_user = N, per = "1m" }`.
fn rate_limit(
    path: &str,
    raw: &serde_spanned::Spanned<raw::RateLimit>,
    invalid: &impl Fn(usize, String) -> ProfileError,
    dur: &impl Fn(&serde_spanned::Spanned<String>) -> Result<Duration, ProfileError>,
) -> Result<RateLimit, ProfileError> {
    let r = raw.get_ref();
    let path = pattern(
        &serde_spanned::Spanned::new(raw.span(), path.to_string()),
        "rate_limit path",
        invalid,
    )?;
    let per_user = u32::try_from(*r.per_user.get_ref())
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| {
            invalid(
                r.per_user.span().start,
                format!(
                    "per_user {} must be a count of at least 1 (requests a user may send per window)",
                    r.per_user.get_ref()
                ),
            )
        })?;
    let per = dur(&r.per)?;
    if per < Duration::from_secs(1) || per > Duration::from_secs(86_400) {
        return Err(invalid(
            r.per.span().start,
            "per must be between 1s and 24h (the window); write e.g. \"1m\"".into(),
        ));
    }
    Ok(RateLimit {
        path,
        method: r.method.as_ref().map(|m| m.to_ascii_uppercase()),
        per_user,
        per,
    })
}

/// Reads a route's `[route.stream]` table.
fn stream(
    raw: &serde_spanned::Spanned<raw::Stream>,
    invalid: &impl Fn(usize, String) -> ProfileError,
    dur: &impl Fn(&serde_spanned::Spanned<String>) -> Result<Duration, ProfileError>,
    dist: &impl Fn(&serde_spanned::Spanned<RawLatency>, &str) -> Result<Latency, ProfileError>,
) -> Result<Stream, ProfileError> {
    let table = raw.span().start;
    let s = raw.get_ref();
    let one_of = |v: &Option<serde_spanned::Spanned<String>>,
                  key: &str,
                  choices: &[&str]|
     -> Result<usize, ProfileError> {
        let Some(v) = v else { return Ok(0) };
        choices
            .iter()
            .position(|c| *c == v.get_ref())
            .ok_or_else(|| {
                invalid(
                    v.span().start,
                    format!(
                        "unknown {key} `{}`; write {}",
                        v.get_ref(),
                        choices
                            .iter()
                            .map(|c| format!("\"{c}\""))
                            .collect::<Vec<_>>()
                            .join(" or ")
                    ),
                )
            })
    };
    let format = match one_of(&s.format, "stream format", &["sse", "ndjson"])? {
        0 => StreamFormat::Sse,
        _ => StreamFormat::Ndjson,
    };
    let asked_only = one_of(&s.when, "stream `when`", &["always", "asked"])? == 1;
    let truncate_mode = match one_of(&s.truncate_mode, "truncate_mode", &["clean", "abort"])? {
        0 => TruncateMode::Clean,
        _ => TruncateMode::Abort,
    };
    let needed = |key: &str, example: &str| {
        invalid(
            table,
            format!("a stream needs `{key}`; write e.g. {key} = {example}"),
        )
    };
    let first_token = match &s.first_token {
        Some(l) => dist(l, "first_token")?,
        None => {
            return Err(needed(
                "first_token",
                "{ dist = \"fixed\", value = \"300ms\" }",
            ))
        }
    };
    let token_gap = match &s.token_gap {
        Some(l) => dist(l, "token_gap")?,
        None => {
            return Err(needed(
                "token_gap",
                "{ dist = \"fixed\", value = \"30ms\" }",
            ))
        }
    };
    let tokens = match &s.tokens {
        Some(t) => tokens(t, invalid)?,
        None => return Err(needed("tokens", "40 (or { min = 20, max = 60 })")),
    };
    let truncate = s.truncate.as_ref().map_or(Ok(0.0), |t| {
        let v = *t.get_ref();
        if (0.0..=1.0).contains(&v) {
            Ok(v)
        } else {
            Err(invalid(
                t.span().start,
                format!("truncate {v} must be between 0 and 1 (the share of streams cut off)"),
            ))
        }
    })?;
    let max_streams = match &s.max_streams {
        Some(m) if *m.get_ref() == 0 => {
            return Err(invalid(
                m.span().start,
                "max_streams must be at least 1 (leave it out for no limit)".into(),
            ))
        }
        m => m.as_ref().map(|m| *m.get_ref()),
    };
    let ping_every = match &s.ping_every {
        None => None,
        Some(p) => {
            let every = dur(p)?;
            if format == StreamFormat::Ndjson {
                return Err(invalid(
                    p.span().start,
                    "NDJSON has no comment lines to ping with; ping_every needs format = \"sse\""
                        .into(),
                ));
            }
            if every.is_zero() {
                return Err(invalid(
                    p.span().start,
                    "ping_every must be above zero; write e.g. \"1s\"".into(),
                ));
            }
            Some(every)
        }
    };
    Ok(Stream {
        format,
        asked_only,
        first_token,
        token_gap,
        tokens,
        truncate,
        truncate_mode,
        max_streams,
        ping_every,
        role_event: s.role_event.unwrap_or(true),
    })
}

/// Reads `tokens`: a count, or `{ min = A, max = B }`.
fn tokens(
    raw: &serde_spanned::Spanned<toml::Value>,
    invalid: &impl Fn(usize, String) -> ProfileError,
) -> Result<Tokens, ProfileError> {
    let at = raw.span().start;
    let hint =
        "write a count of at least 1 (tokens = 40) or a range (tokens = { min = 20, max = 60 })";
    let count = |v: &toml::Value| {
        v.as_integer()
            .filter(|n| *n >= 1)
            .and_then(|n| u32::try_from(n).ok())
    };
    match raw.get_ref() {
        toml::Value::Table(t) => {
            if let Some(key) = t.keys().find(|k| *k != "min" && *k != "max") {
                return Err(invalid(at, format!("unknown tokens key `{key}`; {hint}")));
            }
            match (t.get("min").and_then(count), t.get("max").and_then(count)) {
                (Some(a), Some(b)) if a <= b => Ok(Tokens::Uniform(a, b)),
                (Some(_), Some(_)) => Err(invalid(at, format!("tokens needs min <= max; {hint}"))),
                _ => Err(invalid(
                    at,
                    format!("tokens range needs `min` and `max` of at least 1; {hint}"),
                )),
            }
        }
        v => count(v)
            .map(Tokens::Fixed)
            .ok_or_else(|| invalid(at, format!("tokens `{v}` is not a count; {hint}"))),
    }
}

#[cfg(test)]
mod tests;
