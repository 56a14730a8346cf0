//! The run summary (`summary.json`): what a run measured, how it was judged, and the
//! verdict (decided by [`crate::judge`]).

use std::collections::BTreeMap;

use loadgate_metrics::{
    EndpointShard, Failures, LatencyStats, OutcomeCounts, Pauses, Protocol, Protocols, Timing,
};
use serde::{Deserialize, Serialize};

use crate::judge::{OpenFacts, ValidityMode};
use crate::BudgetResult;

/// Version of the `summary.json` layout. 2: latency figures cover successful requests
/// only, requests belong to the phase they were due in, budgets carry windows and
/// robustness, the verdict can be `interrupted`, send lag is recorded. 3: every timing
/// of the timing axis (`ttfb_us`, `ttfb_service_us` beside latency, service time, send
/// lag and connect time) per endpoint and overall, and in `histograms.json`. 4: streams
/// (`ttft_us`, `ttft_service_us`, `itl_us`; tokens and content events). 5: time per
/// output token (`tpot_us`) and each stream's speed (`stream.request_tokens_per_s`).
/// Older summaries read with the timings they lack empty.
pub const SCHEMA_VERSION: u32 = 5;

/// What an endpoint's successful streamed responses held.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StreamSummary {
    /// Successful streamed responses.
    pub streams: u64,
    /// Their content events (tokens, or chunks of tokens, as the server sent them).
    pub events: u64,
    /// Their output tokens: as the server reported them (usage), else content events.
    pub tokens: u64,
    /// Content events per successful stream.
    pub events_per_stream: f64,
    /// Output tokens of successful streams per second of the measured phase.
    pub tokens_per_s: f64,
    /// Each stream's own speed, tokens per second after its first token (the inverse of
    /// its `tpot_us`): `p10` is the speed 90% of the streams of two tokens or more
    /// reached or beat, as a `tokens_per_s_p10 > 20` budget measures it. Absent when no
    /// stream had two tokens, and in runs before schema 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_tokens_per_s: Option<TokenSpeeds>,
    /// Events of the endpoint's streamed responses (successful or not) larger than the
    /// bound on one event (1 MiB), skipped unread: each counted as a content event whose
    /// tokens were not read. The target's big events, not an error. 0 in runs before
    /// they were counted.
    #[serde(default)]
    pub oversized: u64,
    /// Events loadgate skipped unread to keep the bytes a worker holds of unfinished
    /// events within its budget (64 MiB): loadgate's doing, never the target's; each
    /// counted as a content event whose tokens were not read. 0 in runs before they
    /// were counted.
    #[serde(default)]
    pub skipped: u64,
}

/// Streams' own speeds, tokens per second, at the slow end (`p1`, `p10`), the middle and
/// the fast end: `pN` is the speed that `100 - N`% of the streams reached or beat.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TokenSpeeds {
    /// The speed 99% of the streams reached or beat.
    pub p1: f64,
    /// The speed 90% reached or beat.
    pub p10: f64,
    /// The median speed.
    pub p50: f64,
    /// The speed 10% reached or beat.
    pub p90: f64,
    /// The speed 1% reached or beat.
    pub p99: f64,
}

impl TokenSpeeds {
    /// The speeds of the streams whose times per token `tpot` holds (µs); `None` when it
    /// holds none.
    pub fn of(tpot: &loadgate_metrics::LatencyHistogram) -> Option<TokenSpeeds> {
        let n = tpot.len();
        let at = |p: f64| {
            let us = tpot.value_at_rank(loadgate_metrics::nearest_rank(1.0 - p / 100.0, n));
            1e6 / us.max(1) as f64
        };
        (n > 0).then(|| TokenSpeeds {
            p1: at(1.0),
            p10: at(10.0),
            p50: at(50.0),
            p90: at(90.0),
            p99: at(99.0),
        })
    }
}

impl StreamSummary {
    /// The counts, as recorded.
    pub fn counts(&self) -> loadgate_metrics::StreamCounts {
        loadgate_metrics::StreamCounts {
            streams: self.streams,
            events: self.events,
            tokens: self.tokens,
            oversized: self.oversized,
            skipped: self.skipped,
        }
    }
}

/// The verdict of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Valid run, every budget held.
    Pass,
    /// Valid run, at least one budget breached.
    Fail,
    /// The generator could not keep up, or the target was never healthy.
    Invalid,
    /// Valid, every budget held, but worse than the baseline beyond the regression
    /// budgets and beyond noise.
    Regression,
    /// Stopped from outside (Ctrl-C, SIGTERM) before the end of the profile: the budgets
    /// judge only what was measured up to the stop, and the run neither passes nor
    /// fails.
    Interrupted,
}

impl Verdict {
    /// Upper-case word for people.
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Invalid => "INVALID",
            Verdict::Regression => "REGRESSION",
            Verdict::Interrupted => "INTERRUPTED",
        }
    }
}

/// Figures for one endpoint (or all of them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EndpointSummary {
    /// Endpoint name, or `all`.
    pub name: String,
    /// Completed requests (every outcome class) that were due (open model) or sent
    /// (closed model) in this phase, whenever they completed.
    pub requests: u64,
    /// Requests sent in this phase.
    pub sent: u64,
    /// Completed requests per second over the phase.
    pub rps: f64,
    /// Successful requests per second over the measured phase.
    pub success_rps: f64,
    /// Requests whose outcome is not success.
    pub errors: u64,
    /// `errors / requests`.
    pub error_rate: f64,
    /// Count per outcome class.
    pub outcomes: OutcomeCounts,
    /// Count per HTTP status.
    pub statuses: BTreeMap<String, u64>,
    /// Latency of successful requests in µs (from the intended send time in the open
    /// model).
    pub latency_us: LatencyStats,
    /// Service time of successful requests in µs (from the moment the generator started
    /// the request).
    pub service_us: LatencyStats,
    /// Open model: how long after its intended time each request was started, µs.
    #[serde(default)]
    pub send_lag_us: LatencyStats,
    /// Connections opened for these requests (a reused one counts nothing).
    #[serde(default)]
    pub connects: u64,
    /// How long each of those took to open (TCP connect, and the TLS handshake), µs.
    #[serde(default)]
    pub connect_us: LatencyStats,
    /// Time to the first byte of the response of successful requests, µs, from the
    /// same start as `latency_us`. Empty in runs before schema 3.
    #[serde(default)]
    pub ttfb_us: LatencyStats,
    /// Time to the first byte from the moment the generator started the request, µs.
    #[serde(default)]
    pub ttfb_service_us: LatencyStats,
    /// Streams: time to the first content event (token) of successful streams, µs,
    /// from the same start as `latency_us`. Empty for endpoints that do not stream and
    /// in runs before schema 4.
    #[serde(default)]
    pub ttft_us: LatencyStats,
    /// Time to first token from the moment the generator started the request, µs.
    #[serde(default)]
    pub ttft_service_us: LatencyStats,
    /// Streams: every gap between two content events, µs (one value per gap).
    #[serde(default)]
    pub itl_us: LatencyStats,
    /// Streams: time per output token after the first, µs, one value per successful
    /// stream of two tokens or more: `(end - first token) / (tokens - 1)`. Empty in
    /// runs before schema 5.
    #[serde(default)]
    pub tpot_us: LatencyStats,
    /// Requests that succeeded within every per-request limit of the endpoint's
    /// `goodput` table (every success when it has none).
    #[serde(default)]
    pub good: u64,
    /// Those that did so timed from their actual send (the generator's twin).
    #[serde(default)]
    pub good_service: u64,
    /// `good` per second of the measured phase.
    #[serde(default)]
    pub goodput_rps: f64,
    /// `good` as a share of the completed requests (0..1).
    #[serde(default)]
    pub attainment: f64,
    /// Streams (endpoints with `stream`): what the successful streamed responses held;
    /// absent when none succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<StreamSummary>,
    /// Response body bytes as they came over the wire (compressed when the target
    /// compressed them; HTTP/1.1 chunk framing not counted).
    pub bytes: u64,
    /// Response body bytes after undoing their `Content-Encoding` (gzip, br, zstd,
    /// deflate), all of them, also past `max_body`: of the endpoints whose responses are
    /// decoded (a body check or a stream reads them); absent for the others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoded_bytes: Option<u64>,
    /// Responses by the protocol they came over: `HTTP/1.1` and `h2`. Empty in runs
    /// before it was counted.
    #[serde(default)]
    pub protocols: BTreeMap<String, u64>,
    /// Sends later than the tolerance.
    pub late: u64,
    /// Arrivals dropped at `max_in_flight`.
    pub dropped: u64,
    /// Requests that failed because loadgate ran out of a local resource (a file
    /// descriptor, a local port, socket memory) while connecting; also counted as
    /// `connect_error`. Any makes the run invalid.
    #[serde(default)]
    pub local_errors: u64,
    /// Arrivals whose request could not be built (never sent; makes the run invalid).
    #[serde(default)]
    pub unbuilt: u64,
    /// Requests sent again on a new connection because the first closed before the
    /// request was written.
    #[serde(default)]
    pub resent: u64,
    /// Redirects followed on the way to the answers (every hop of every request; see
    /// the endpoint's `redirects`).
    #[serde(default)]
    pub redirects: u64,
    /// Cookies the answers set that the session's cookie jar dropped for its bounds (it
    /// holds at most 50 cookies of 4 KiB each): later requests of the session went
    /// without them. Absent when none was.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cookies_dropped: u64,
    /// The first few (5) distinct explanations of the failures, each with its count
    /// (which check failed and what was found, which status and the start of its body,
    /// why the connection failed; texts at most 120 bytes, secrets masked), and the
    /// count of the failures explained otherwise; absent when nothing failed.
    #[serde(default, skip_serializing_if = "Failures::is_empty")]
    pub failures: Failures,
    /// Latencies above the histogram's bound (recorded at the bound).
    pub saturated: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl EndpointSummary {
    /// The responses by protocol, as counted (`protocols` read back).
    pub fn protocol_counts(&self) -> Protocols {
        let get = |p: Protocol| self.protocols.get(p.name()).copied().unwrap_or(0);
        Protocols {
            http1: get(Protocol::Http1),
            h2: get(Protocol::H2),
        }
    }

    /// Figures of one shard over `measured_s` seconds.
    pub fn of(name: &str, e: &EndpointShard, measured_s: f64) -> EndpointSummary {
        let requests = e.completed();
        let per_s = |n: u64| {
            if measured_s > 0.0 {
                n as f64 / measured_s
            } else {
                0.0
            }
        };
        let mut s = EndpointSummary {
            name: name.to_string(),
            requests,
            sent: e.sent,
            rps: per_s(requests),
            success_rps: per_s(e.outcomes.get(loadgate_metrics::Outcome::Success)),
            errors: e.outcomes.errors(),
            error_rate: if requests > 0 {
                e.outcomes.errors() as f64 / requests as f64
            } else {
                0.0
            },
            outcomes: e.outcomes,
            statuses: e
                .statuses
                .iter()
                .filter(|(_, &n)| n > 0)
                .map(|(c, n)| (c.to_string(), *n))
                .collect(),
            latency_us: LatencyStats::default(),
            service_us: LatencyStats::default(),
            send_lag_us: LatencyStats::default(),
            connects: e.connects,
            connect_us: LatencyStats::default(),
            ttfb_us: LatencyStats::default(),
            ttfb_service_us: LatencyStats::default(),
            ttft_us: LatencyStats::default(),
            ttft_service_us: LatencyStats::default(),
            itl_us: LatencyStats::default(),
            tpot_us: LatencyStats::default(),
            good: e.good,
            good_service: e.good_service,
            goodput_rps: per_s(e.good),
            attainment: if requests > 0 {
                e.good as f64 / requests as f64
            } else {
                0.0
            },
            stream: (e.streams.streams > 0).then(|| StreamSummary {
                streams: e.streams.streams,
                events: e.streams.events,
                tokens: e.streams.tokens,
                events_per_stream: e.streams.events as f64 / e.streams.streams as f64,
                tokens_per_s: per_s(e.streams.tokens),
                request_tokens_per_s: TokenSpeeds::of(&e.timings[Timing::Tpot]),
                oversized: e.streams.oversized,
                skipped: e.streams.skipped,
            }),
            bytes: e.bytes,
            decoded_bytes: e.decoded_bytes,
            protocols: Protocol::ALL
                .iter()
                .map(|&p| (p.name().to_string(), e.protocols.get(p)))
                .collect(),
            late: e.late,
            dropped: e.dropped,
            local_errors: e.local_errors,
            unbuilt: e.unbuilt,
            resent: e.resent,
            redirects: e.redirects,
            cookies_dropped: e.cookies_dropped,
            failures: e.failures.as_deref().cloned().unwrap_or_default(),
            saturated: e.latency().saturated(),
        };
        for (t, h) in e.timings.iter() {
            *s.timing_mut(t) = h.stats();
        }
        s
    }

    /// The figures of timing `t` (`latency_us`, `ttfb_us`, ...).
    pub fn timing(&self, t: Timing) -> &LatencyStats {
        match t {
            Timing::Latency => &self.latency_us,
            Timing::Service => &self.service_us,
            Timing::Ttfb => &self.ttfb_us,
            Timing::TtfbService => &self.ttfb_service_us,
            Timing::Ttft => &self.ttft_us,
            Timing::TtftService => &self.ttft_service_us,
            Timing::Itl => &self.itl_us,
            Timing::Tpot => &self.tpot_us,
            Timing::SendLag => &self.send_lag_us,
            Timing::Connect => &self.connect_us,
        }
    }

    /// The figures of timing `t`, to fill in.
    pub fn timing_mut(&mut self, t: Timing) -> &mut LatencyStats {
        match t {
            Timing::Latency => &mut self.latency_us,
            Timing::Service => &mut self.service_us,
            Timing::Ttfb => &mut self.ttfb_us,
            Timing::TtfbService => &mut self.ttfb_service_us,
            Timing::Ttft => &mut self.ttft_us,
            Timing::TtftService => &mut self.ttft_service_us,
            Timing::Itl => &mut self.itl_us,
            Timing::Tpot => &mut self.tpot_us,
            Timing::SendLag => &mut self.send_lag_us,
            Timing::Connect => &mut self.connect_us,
        }
    }
}

/// How well the generator held the open model's schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RateSummary {
    /// Mean target rate over the measured phase.
    pub target_rps: f64,
    /// Sends per second over the measured phase.
    pub achieved_rps: f64,
    /// Arrivals the schedule asked for.
    pub scheduled: f64,
    /// Requests sent.
    pub sent: u64,
    /// `sent / scheduled`.
    pub achieved_ratio: f64,
    /// Sends later than `late_tolerance_ms` behind schedule.
    pub late: u64,
    /// `late / sent`.
    pub late_ratio: f64,
    /// Arrivals dropped because `max_in_flight` was reached.
    pub dropped: u64,
    /// `dropped / scheduled`.
    pub dropped_ratio: f64,
    /// Arrivals never sent because the generator fell behind the end of the schedule.
    pub missed: u64,
    /// The lateness tolerance in milliseconds.
    pub late_tolerance_ms: f64,
    /// How long after its intended time a send may wait to share a wake-up with the
    /// arrivals due meanwhile (milliseconds; 0: every send wakes on time). Latency is
    /// measured from the intended time either way.
    #[serde(default)]
    pub send_window_ms: f64,
    /// How the generator's validity was judged: `robust` (invalid only when its own
    /// error could have changed the verdict or the load the target saw) or `strict`
    /// (also invalid past `max_late_ratio` late sends).
    #[serde(default = "robust_name")]
    pub validity: String,
    /// How long after its intended time each send was started, µs.
    #[serde(default)]
    pub send_lag_us: LatencyStats,
    /// Sends more than `burst_lag_ms` behind schedule: the target saw them bunched with
    /// the arrivals after them.
    #[serde(default)]
    pub bunched: u64,
    /// The lag beyond which a send counts as bunched: ten arrival spacings at the target
    /// rate, at least the late tolerance (ms).
    #[serde(default)]
    pub burst_lag_ms: f64,
}

fn robust_name() -> String {
    ValidityMode::Robust.name().to_string()
}

impl RateSummary {
    /// One plain-text sentence for people (escape it for HTML or Markdown).
    pub fn describe(&self) -> String {
        let window = if self.send_window_ms > 0.0 {
            format!("; send window {} ms", self.send_window_ms)
        } else {
            String::new()
        };
        format!(
            "target {:.1} rps, sent {:.1} rps ({:.1}%), send lag p99 {:.1} ms, max {:.1} ms; late {} ({:.2}%, > {} ms{window}), dropped {} ({:.2}%), never sent {}",
            self.target_rps,
            self.achieved_rps,
            self.achieved_ratio * 100.0,
            self.send_lag_us.p99 as f64 / 1000.0,
            self.send_lag_us.max as f64 / 1000.0,
            self.late,
            self.late_ratio * 100.0,
            self.late_tolerance_ms,
            self.dropped,
            self.dropped_ratio * 100.0,
            self.missed
        )
    }
}

/// Everything `summary.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunSummary {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Version of loadgate that ran.
    pub loadgate_version: String,
    /// Scenario name.
    pub scenario: String,
    /// Scenario file as given.
    pub scenario_file: String,
    /// Target base URL without credentials, or `embedded`.
    pub target: String,
    /// The endpoints sent to a base URL of their own (`base`), by name, each base shown
    /// as `target` is: with the target, every origin the run sent to.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub bases: BTreeMap<String, String>,
    /// `open` or `closed`.
    pub model: String,
    /// RFC 3339 UTC start.
    pub started_at: String,
    /// RFC 3339 UTC end.
    pub ended_at: String,
    /// Configured length of the profile in seconds.
    pub duration_s: f64,
    /// Warm-up in seconds (excluded from SLO evaluation).
    pub warmup_s: f64,
    /// Measured phase in seconds: from the end of the warm-up to the end of the
    /// schedule, or to the stop.
    pub measured_s: f64,
    /// Seconds after the measured phase until the last request in flight completed
    /// (drain): its requests count in the measured phase, where they were due, but its
    /// time does not count in any rate.
    #[serde(default)]
    pub drain_s: f64,
    /// The load asked for, to tell whether two runs are comparable.
    #[serde(default)]
    pub load: LoadSummary,
    /// Worker threads.
    pub workers: usize,
    /// The CPU each pinned worker was restricted to, in worker order (a merged run lists
    /// its segments' in segment order). Empty when no worker was pinned: the closed
    /// model, `--no-pin`, fewer CPUs than workers, or a system that refused.
    #[serde(default)]
    pub pinned_cpus: Vec<usize>,
    /// The verdict.
    pub verdict: Verdict,
    /// `completed`, `aborted` or `interrupted`.
    pub stop: String,
    /// Why the run stopped early, if it did.
    pub stop_detail: Option<String>,
    /// Requests still in flight when the run stopped waiting for them (interrupted runs).
    #[serde(default)]
    pub abandoned: u64,
    /// Why the run is invalid.
    pub invalid_reasons: Vec<String>,
    /// Open model: how well the schedule was held.
    pub rate: Option<RateSummary>,
    /// Open model: pauses of the generating process (seen by a thread that does nothing
    /// else) or of one of its workers (held in a CPU's run queue) that ended in the
    /// measured phase; summed over the processes of a merged run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pauses: Option<Pauses>,
    /// Every SLO budget with its measured value and verdict.
    pub slo: Vec<BudgetResult>,
    /// All endpoints together, measured phase.
    pub overall: EndpointSummary,
    /// Each endpoint, measured phase; then each flow (see [`RunSummary::flows`]).
    pub endpoints: Vec<EndpointSummary>,
    /// The names of the flows, whose rows end `endpoints`: a flow's row counts one
    /// iteration per sample (its duration from the intended start of its first step to
    /// the end of its last, and its outcome: its first failed step's), and is left out
    /// of `overall`, which counts requests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flows: Vec<String>,
    /// The names of the rows only flows send (each step of a flow), which come after
    /// the endpoints that arrivals pick and before the flows: requests, but not
    /// arrivals (the rate achieved counts a flow's iteration once).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<String>,
    /// The names of the rows of requests loadgate sends for itself, which end
    /// `endpoints` (after the flows'): `[auth]`'s token fetches. Requests, but neither
    /// arrivals nor the load measured: left out of `overall`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub auth: Vec<String>,
    /// All endpoints together during the warm-up, if there was one.
    pub warmup: Option<EndpointSummary>,
    /// The goodput limits (`goodput = {...}`) of each endpoint that sets any, by endpoint
    /// name: what its `good` requests met. Absent when no endpoint sets one (every
    /// success is then good).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub goodput_limits: BTreeMap<String, GoodputLimits>,
    /// Other files of the run directory, by role.
    pub files: BTreeMap<String, String>,
    /// Commit being tested, from the CI environment (`GITHUB_SHA`, `CI_COMMIT_SHA`, `GIT_COMMIT`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_commit: Option<String>,
    /// CI run identifier (`GITHUB_RUN_ID`, `CI_PIPELINE_ID`, `BUILD_ID`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci_run: Option<String>,
    /// This run's share of a load split across processes (`loadgate run --segment`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<SegmentInfo>,
    /// The segment runs this run was merged from (`loadgate merge`), in segment order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_from: Vec<SegmentRun>,
}

/// An endpoint's goodput limits: what a success must also meet to be good, each timed
/// from the intended send, as latency (`<=`: a request at the limit is good).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct GoodputLimits {
    /// The whole response, µs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_us: Option<u64>,
    /// Its first byte, µs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttfb_us: Option<u64>,
    /// A stream's first token, µs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_us: Option<u64>,
    /// A stream's mean gap between tokens, µs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub itl_us: Option<u64>,
}

impl GoodputLimits {
    /// Whether it sets no limit (every success is good).
    pub fn is_empty(&self) -> bool {
        *self == GoodputLimits::default()
    }

    /// The limits in words: `ttft ≤ 500.0ms, itl ≤ 50.0ms`.
    pub fn describe(&self) -> String {
        [
            ("latency", self.latency_us),
            ("ttfb", self.ttfb_us),
            ("ttft", self.ttft_us),
            ("itl", self.itl_us),
        ]
        .iter()
        .filter_map(|(name, us)| {
            let us = (*us)?;
            Some(format!(
                "{name} ≤ {}",
                crate::format_value(us as f64, crate::Unit::Duration)
            ))
        })
        .collect::<Vec<_>>()
        .join(", ")
    }
}

/// The load a run was asked for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LoadSummary {
    /// The profile in words: start and stages, as rates (open) or VUs (closed).
    pub profile: String,
    /// The highest rate (requests per second, open model) or VU count (closed model)
    /// of the whole load (all segments together).
    pub peak: f64,
}

/// Which share of a split load a run sent, and what every share must agree on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SegmentInfo {
    /// 1-based segment number.
    pub index: u64,
    /// Number of segments.
    pub count: u64,
    /// The agreed start (`--start-at`), RFC 3339 UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_at: Option<String>,
    /// When this segment's schedule began, in milliseconds since the Unix epoch.
    pub started_unix_ms: u64,
    /// The settings every segment of one load must share.
    pub plan: SegmentPlan,
}

/// The settings that make segments parts of the same load. `loadgate merge` refuses
/// inputs whose plans differ, naming the field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SegmentPlan {
    /// `open` or `closed`.
    pub model: String,
    /// The load profile: start and stages, as rates (open) or VUs (closed).
    pub profile: String,
    /// Warm-up in seconds.
    pub warmup_s: f64,
    /// Endpoints as `name*weight`, in order.
    pub endpoints: Vec<String>,
    /// SLO budgets as `scope: expression`, in order.
    pub budgets: Vec<String>,
    /// Rows in the data file, if there is one.
    pub data_rows: Option<u64>,
    /// Each endpoint's request timeout in milliseconds, by name (its own `timeout`, or
    /// `[defaults]`'). Empty in a plan written before endpoints had timeouts of their own.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub timeouts_ms: BTreeMap<String, f64>,
    /// Open model: lateness tolerance in milliseconds.
    pub late_tolerance_ms: f64,
    /// Open model: the send window in milliseconds.
    #[serde(default)]
    pub send_window_ms: f64,
    /// Open model: below this achieved/target ratio a run is invalid.
    pub min_achieved_ratio: f64,
    /// Open model: above this late/sent ratio a run is invalid.
    pub max_late_ratio: f64,
    /// Open model: above this dropped/scheduled ratio a run is invalid.
    pub max_dropped_ratio: f64,
    /// `robust` or `strict` (see [`RateSummary::validity`]).
    #[serde(default = "robust_name")]
    pub validity: String,
}

impl SegmentPlan {
    /// The open model's facts to judge a run of this plan by, given what was scheduled
    /// and never sent. A single run and a merge of segments both judge through here.
    pub fn open_facts(&self, scheduled: f64, missed: u64, pauses: Option<Pauses>) -> OpenFacts {
        OpenFacts {
            pauses,
            scheduled,
            missed,
            late_tolerance_ms: self.late_tolerance_ms,
            send_window_ms: self.send_window_ms,
            min_achieved_ratio: self.min_achieved_ratio,
            max_late_ratio: self.max_late_ratio,
            max_dropped_ratio: self.max_dropped_ratio,
            validity: ValidityMode::from_name(&self.validity).unwrap_or(ValidityMode::Robust),
        }
    }
}

/// One input of a merged run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SegmentRun {
    /// `I/N`.
    pub segment: String,
    /// The run directory's name.
    pub run: String,
    /// RFC 3339 UTC start of that run.
    pub started_at: String,
    /// Its verdict on its own.
    pub verdict: Verdict,
    /// Worker threads it used.
    pub workers: usize,
    /// Requests it sent.
    pub sent: u64,
    /// Requests it completed.
    pub requests: u64,
    /// Open model: its share of the target rate, per second.
    pub target_rps: Option<f64>,
    /// Sends per second over its measured phase.
    pub achieved_rps: f64,
    /// Open model: sent / scheduled for its share.
    pub achieved_ratio: Option<f64>,
    /// Its late sends.
    pub late: u64,
    /// Its dropped arrivals.
    pub dropped: u64,
    /// Its error rate.
    pub error_rate: f64,
}

impl RunSummary {
    /// Where the run sent load, for people: the target, then each endpoint sent to a
    /// base of its own (`https://app.example.com; agent: http://ml:8000`).
    pub fn origins_shown(&self) -> String {
        let mut out = self.target.clone();
        for (name, base) in &self.bases {
            out.push_str(&format!("; {name}: {base}"));
        }
        out
    }

    /// The endpoints' names, in scenario order (then the flows').
    pub fn endpoint_names(&self) -> Vec<String> {
        self.endpoints.iter().map(|e| e.name.clone()).collect()
    }

    /// What a row is, for people, when it is not an endpoint: `flow step`, `flow`
    /// (a flow's iterations), `poll` (a polling step's time until ready, named
    /// `<step>_ready`) or `auth` (`[auth]`'s token fetches).
    pub fn row_kind(&self, name: &str) -> Option<&'static str> {
        if self.auth.iter().any(|s| s == name) {
            return Some("auth");
        }
        if self.steps.iter().any(|s| s == name) {
            return Some("flow step");
        }
        if !self.flows.iter().any(|f| f == name) {
            return None;
        }
        let poll = name
            .strip_suffix("_ready")
            .is_some_and(|step| self.steps.iter().any(|s| s == step));
        Some(if poll { "poll" } else { "flow" })
    }

    /// How this run's rows are laid out (see [`loadgate_metrics::Rows`]).
    pub fn row_layout(&self) -> loadgate_metrics::Rows {
        let auth = self.auth.len().min(self.endpoints.len());
        let flows = self.flows.len().min(self.endpoints.len() - auth);
        let steps = self.steps.len().min(self.endpoints.len() - auth - flows);
        loadgate_metrics::Rows {
            endpoints: self.endpoints.len() - auth - flows - steps,
            steps,
            flows,
            auth,
        }
    }

    /// An empty shard of this run's rows.
    pub fn empty_shard(&self, max_us: u64) -> loadgate_metrics::Shard {
        loadgate_metrics::Shard::with_rows(self.row_layout(), max_us)
    }

    /// The one place a summary is assembled: `identity` (what the run was asked, as
    /// [`RunStart::unmeasured`] gives it, or a merge's first segment) with what was
    /// measured and how it was judged. Run, merge and the recovery of a killed run all
    /// come through here, so a figure or a verdict is never assembled twice.
    pub fn judged(
        identity: RunSummary,
        m: &Measured<'_>,
        j: crate::judge::Judgement,
        stop: Stopped,
    ) -> RunSummary {
        let overall = m.measured.overall();
        RunSummary {
            schema_version: SCHEMA_VERSION,
            started_at: m.started_at.clone(),
            ended_at: m.ended_at.clone(),
            warmup_s: m.warmup_s,
            measured_s: m.measured_s,
            drain_s: m.drain_s,
            workers: m.workers,
            pinned_cpus: m.pinned_cpus.clone(),
            verdict: j.verdict,
            stop: stop.stop,
            stop_detail: stop.detail,
            abandoned: m.abandoned,
            invalid_reasons: j.invalid_reasons,
            rate: j.rate,
            pauses: m.pauses,
            slo: j.slo,
            overall: EndpointSummary::of("all", &overall, m.measured_s),
            endpoints: m
                .names
                .iter()
                .zip(m.measured.endpoints())
                .map(|(n, e)| EndpointSummary::of(n, e, m.measured_s))
                .collect(),
            warmup: m
                .warmup
                .filter(|w| w.sent + w.completed() > 0)
                .map(|w| EndpointSummary::of("all", w, m.warmup_s)),
            ..identity
        }
    }
}

impl RunSummary {
    /// A test's summary, through [`RunSummary::judged`] like a run's: scenario `name`,
    /// `model`, `measured_s` seconds of `measured` for endpoints `names`, judged as `j`
    /// says; every other field a fixed placeholder. The one summary tests build, so a new
    /// field is added here and nowhere else.
    #[cfg(any(test, feature = "testing"))]
    pub fn fixture(
        name: &str,
        model: &str,
        names: &[String],
        measured: &loadgate_metrics::Shard,
        measured_s: f64,
        j: crate::judge::Judgement,
    ) -> RunSummary {
        let empty = EndpointSummary::of("all", &EndpointShard::new(60_000_000), 0.0);
        let identity = RunSummary {
            schema_version: SCHEMA_VERSION,
            loadgate_version: "0.1.0".into(),
            scenario: name.into(),
            scenario_file: "scenarios/fixture.toml".into(),
            target: "https://staging.example.com".into(),
            bases: BTreeMap::new(),
            model: model.into(),
            started_at: String::new(),
            ended_at: String::new(),
            duration_s: measured_s,
            warmup_s: 0.0,
            measured_s: 0.0,
            drain_s: 0.0,
            load: LoadSummary {
                profile: "from 100 rps, 1s to 100 rps".into(),
                peak: 100.0,
            },
            workers: 1,
            pinned_cpus: Vec::new(),
            verdict: Verdict::Interrupted,
            stop: String::new(),
            stop_detail: None,
            abandoned: 0,
            invalid_reasons: Vec::new(),
            rate: None,
            pauses: None,
            slo: Vec::new(),
            overall: empty.clone(),
            endpoints: Vec::new(),
            flows: Vec::new(),
            steps: Vec::new(),
            auth: Vec::new(),
            warmup: None,
            goodput_limits: BTreeMap::new(),
            files: BTreeMap::new(),
            git_commit: None,
            ci_run: None,
            segment: None,
            merged_from: Vec::new(),
        };
        let m = Measured {
            names,
            measured,
            warmup: None,
            started_at: "2026-11-22T00:00:00Z".into(),
            ended_at: "2026-11-22T00:00:10Z".into(),
            warmup_s: 0.0,
            measured_s,
            drain_s: 0.0,
            workers: 1,
            pinned_cpus: Vec::new(),
            abandoned: 0,
            pauses: None,
        };
        let stop = Stopped {
            stop: "completed".into(),
            detail: None,
        };
        RunSummary::judged(identity, &m, j, stop)
    }
}

/// What a run (or several combined) measured, as [`RunSummary::judged`] states it.
#[derive(Debug, Clone)]
pub struct Measured<'a> {
    /// Endpoint names, in scenario order.
    pub names: &'a [String],
    /// The measured phase, per endpoint.
    pub measured: &'a loadgate_metrics::Shard,
    /// The warm-up, all endpoints (none when nothing was sent in it).
    pub warmup: Option<&'a EndpointShard>,
    /// RFC 3339 UTC start and end.
    pub started_at: String,
    /// See `started_at`.
    pub ended_at: String,
    /// Warm-up, measured phase and drain, seconds.
    pub warmup_s: f64,
    /// See `warmup_s`.
    pub measured_s: f64,
    /// See `warmup_s`.
    pub drain_s: f64,
    /// Worker threads (summed over segments).
    pub workers: usize,
    /// The CPUs the workers were pinned to.
    pub pinned_cpus: Vec<usize>,
    /// Requests in flight when the run stopped waiting.
    pub abandoned: u64,
    /// Pauses of the generating process(es).
    pub pauses: Option<Pauses>,
}

/// How a run stopped, as its summary says it: `completed`, `aborted`, `interrupted` or
/// `killed`, and why it stopped early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stopped {
    /// The word.
    pub stop: String,
    /// Why, for an early stop.
    pub detail: Option<String>,
}

/// `run.json`: what a run was asked to do, written before its load. With the streamed
/// `timeseries.jsonl` and `intervals.hlog` it is enough to judge a run that was killed
/// before it wrote `summary.json` (`loadgate report` recovers it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunStart {
    /// Layout of the summary a recovery writes.
    pub schema_version: u32,
    /// The loadgate that ran it.
    pub loadgate_version: String,
    /// Scenario name.
    pub scenario: String,
    /// Scenario file as given.
    pub scenario_file: String,
    /// The target, as shown.
    pub target: String,
    /// The endpoints sent to a base URL of their own, by name (see [`RunSummary::bases`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub bases: BTreeMap<String, String>,
    /// `open` or `closed`.
    pub model: String,
    /// The profile's length after the warm-up, seconds.
    pub duration_s: f64,
    /// The load asked for.
    pub load: LoadSummary,
    /// Endpoint names, in order, then the flows'.
    pub endpoints: Vec<String>,
    /// The flows' and polls' names (the last rows of `endpoints`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flows: Vec<String>,
    /// The flows' steps' names (the rows before the flows').
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<String>,
    /// `[auth]`'s row's name (the last row), if any (see [`RunSummary::auth`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub auth: Vec<String>,
    /// Budgets, phases and validity settings (as segments share them).
    pub plan: SegmentPlan,
    /// The segment this run is, if it is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<SegmentInfo>,
    /// The latency histograms' bound, µs.
    pub histogram_max_us: u64,
    /// The goodput limits of each endpoint that sets any (see
    /// [`RunSummary::goodput_limits`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub goodput_limits: BTreeMap<String, GoodputLimits>,
    /// CI commit and run, as the summary keeps them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_commit: Option<String>,
    /// CI run id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci_run: Option<String>,
}

impl RunStart {
    /// The summary of this run before anything was measured: its identity as run.json
    /// gives it, every figure empty, the verdict `interrupted` (stopped `killed`). A
    /// finished run and a recovered one both start from it, so the identity is copied in
    /// one place.
    pub fn unmeasured(&self, files: BTreeMap<String, String>) -> RunSummary {
        let empty = EndpointShard::new(self.histogram_max_us);
        let zero = |name: &str| EndpointSummary::of(name, &empty, 0.0);
        RunSummary {
            schema_version: self.schema_version,
            loadgate_version: self.loadgate_version.clone(),
            scenario: self.scenario.clone(),
            scenario_file: self.scenario_file.clone(),
            target: self.target.clone(),
            bases: self.bases.clone(),
            flows: self.flows.clone(),
            steps: self.steps.clone(),
            auth: self.auth.clone(),
            model: self.model.clone(),
            started_at: String::new(),
            ended_at: String::new(),
            duration_s: self.duration_s,
            warmup_s: self.plan.warmup_s,
            measured_s: 0.0,
            drain_s: 0.0,
            load: self.load.clone(),
            workers: 0,
            pinned_cpus: Vec::new(),
            verdict: Verdict::Interrupted,
            stop: "killed".to_string(),
            stop_detail: None,
            abandoned: 0,
            invalid_reasons: Vec::new(),
            rate: None,
            pauses: None,
            slo: Vec::new(),
            overall: zero("all"),
            endpoints: self.endpoints.iter().map(|n| zero(n)).collect(),
            warmup: None,
            goodput_limits: self.goodput_limits.clone(),
            files,
            git_commit: self.git_commit.clone(),
            ci_run: self.ci_run.clone(),
            segment: self.segment.clone(),
            merged_from: Vec::new(),
        }
    }
}
