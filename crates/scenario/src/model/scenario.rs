//! The validated scenario: what `load` returns and the engine, the binary and the reports
//! read. Plain data with the few methods that answer questions about it (a stage's rate
//! at a time, whether a status passes the checks, which header is secret) and the
//! command-line overrides.
//!
//! Not here: how a file becomes one (the sibling modules) or where load goes (`target`).

use std::path::PathBuf;
use std::time::Duration;

use loadgate_slo::Budget;

use super::load::{default_max_in_flight, whole_seconds};
use super::target::{redact_url, Target};
use crate::secrets::Secrets;
use crate::template::Template;

/// A validated scenario.
///
/// Its `Debug` print shows `${NAME}` in place of every value in [`Scenario::secrets`].
#[derive(Clone)]
pub struct Scenario {
    /// Scenario name (used for run directory names).
    pub name: String,
    /// The file it came from.
    pub source: PathBuf,
    /// Where load goes.
    pub target: Target,
    /// Profile of the embedded target (used only when the target is embedded); the
    /// built-in demo profile when `None`.
    pub target_profile: Option<PathBuf>,
    /// Wait for this health check to answer 200 before any load.
    pub health: Option<HealthWait>,
    /// `[defaults] timeout`: the request timeout of every endpoint without one of its
    /// own (each endpoint's is [`Endpoint::timeout`]; the longest, [`Scenario::longest_timeout`]).
    pub timeout: Duration,
    /// TCP (and TLS) connect timeout.
    pub connect_timeout: Duration,
    /// Which HTTP versions to speak.
    pub http: HttpVersion,
    /// Most response-body bytes kept in memory for checks; the rest is read and counted.
    pub max_body: usize,
    /// Requests: the `[[endpoint]]`s in file order, then the steps the flows write in
    /// place (weight 0: sent only by their flow).
    pub endpoints: Vec<Endpoint>,
    /// `[[flow]]`s, in file order. Every table and budget has a row per endpoint, then
    /// one per flow (see [`Scenario::row_names`]).
    pub flows: Vec<super::flow::Flow>,
    /// `[auth]`: the token every request carries unless it says `auth = false`.
    pub auth: Option<super::auth::Auth>,
    /// Named lists for `{{pick(name)}}`, by index; names in `list_names`.
    pub lists: Vec<Vec<String>>,
    /// Names of `lists`.
    pub list_names: Vec<String>,
    /// The data-file feeder, if any.
    pub data: Option<DataFeed>,
    /// The load profile.
    pub load: Load,
    /// SLO budgets.
    pub slo: Slo,
    /// Lower-cased header names whose values must never be shown.
    pub redact_headers: Vec<String>,
    /// How `loadgate capacity` steps the rate (`[capacity]`; defaults when absent).
    pub capacity: CapacityPlan,
    /// Every value substituted from the environment (`${VAR}`, defaults excluded) with its
    /// variable's name, wherever it was used; of a target from the environment, only its
    /// secret parts (see [`Secrets::add_url`]). A target given in [`LoadOptions`](crate::LoadOptions) is the
    /// caller's to add.
    pub secrets: Secrets,
    /// `[tls]`: files for TLS, resolved against the scenario's folder.
    pub tls: TlsPaths,
    /// `[defaults] cookies` (on by default): a flow's iterations keep a cookie jar (a
    /// flow's own `cookies` decides for it).
    pub cookies: bool,
    /// `[defaults] cookies = true` written out: a closed-model VU's standalone
    /// endpoints keep its jar too. Off unless asked for: a jar makes every answer's
    /// headers kept (a second parse of each HTTP/1.1 head), a cost the closed model's
    /// full-throughput runs should not pay for cookies nobody asked to keep.
    pub endpoint_cookies: bool,
}

impl std::fmt::Debug for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        /// The fields as they are, to be redacted before they are shown.
        struct Fields<'a>(&'a Scenario);
        impl std::fmt::Debug for Fields<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let s = self.0;
                f.debug_struct("Scenario")
                    .field("name", &s.name)
                    .field("source", &s.source)
                    .field("target", &s.target)
                    .field("target_profile", &s.target_profile)
                    .field("health", &s.health)
                    .field("timeout", &s.timeout)
                    .field("connect_timeout", &s.connect_timeout)
                    .field("http", &s.http)
                    .field("max_body", &s.max_body)
                    .field("endpoints", &s.endpoints)
                    .field("lists", &s.lists)
                    .field("list_names", &s.list_names)
                    .field("data", &s.data)
                    .field("load", &s.load)
                    .field("slo", &s.slo)
                    .field("redact_headers", &s.redact_headers)
                    .field("capacity", &s.capacity)
                    .field("secrets", &s.secrets)
                    .field("tls", &s.tls)
                    .finish()
            }
        }
        let text = if f.alternate() {
            format!("{:#?}", Fields(self))
        } else {
            format!("{:?}", Fields(self))
        };
        f.write_str(&self.secrets.redact(&text))
    }
}

/// `[capacity]`: the open-model rates `loadgate capacity` tries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CapacityPlan {
    /// First rate tried.
    pub start_rps: f64,
    /// How the next rate follows from the last.
    pub step: CapacityStep,
    /// Highest rate tried.
    pub max_rps: f64,
    /// Measured length of each step.
    pub step_duration: Duration,
    /// Time at each step's rate before measuring (its warm-up).
    pub settle: Duration,
    /// Extra steps that bisect between the last passing and the first failing rate.
    pub refine: u32,
}

/// The next rate of a capacity search.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CapacityStep {
    /// Add this many requests per second.
    Add(f64),
    /// Multiply by this factor (> 1).
    Multiply(f64),
}

impl Default for CapacityPlan {
    fn default() -> CapacityPlan {
        CapacityPlan {
            start_rps: 10.0,
            step: CapacityStep::Multiply(2.0),
            max_rps: 10_000.0,
            step_duration: Duration::from_secs(10),
            settle: Duration::from_secs(5),
            refine: 3,
        }
    }
}

impl CapacityPlan {
    /// The rate after `rate`.
    pub fn next(&self, rate: f64) -> f64 {
        match self.step {
            CapacityStep::Add(d) => rate + d,
            CapacityStep::Multiply(f) => rate * f,
        }
    }
}

/// Which HTTP versions to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpVersion {
    /// HTTP/1.1, or HTTP/2 when TLS ALPN offers it.
    Auto,
    /// HTTP/1.1 only.
    Http1,
    /// HTTP/2 only: ALPN over TLS, prior knowledge (h2c) over plain TCP.
    Http2,
}

/// `[tls]`: the files TLS is set up with, each resolved against the scenario's folder.
/// Only their paths: the binary reads them (and refuses a bad one) before any load.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TlsPaths {
    /// A PEM file (or bundle) of CAs trusted beside the built-in roots.
    pub ca_file: Option<PathBuf>,
    /// The client certificate chain (PEM) sent to servers that ask for one.
    pub cert_file: Option<PathBuf>,
    /// The client certificate's private key (PEM); `None`: in `cert_file`.
    pub key_file: Option<PathBuf>,
}

/// A health check to wait for before sending load.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthWait {
    /// Path polled with GET until it answers 200.
    pub path: String,
    /// How long to wait before giving up.
    pub timeout: Duration,
}

/// One request of the traffic mix.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Name used in reports and `[slo.endpoint.NAME]`.
    pub name: String,
    /// HTTP method.
    pub method: String,
    /// Path and query, templated, URL-escaped substitutions.
    pub path: Template,
    /// The endpoint's own base URL (`base`), another origin than the scenario's target;
    /// `None`: the target. `--target` replaces the target, never this.
    pub base: Option<url::Url>,
    /// The whole request's limit, from the send to the end of the body: the endpoint's
    /// `timeout`, else `[defaults] timeout`.
    pub timeout: Duration,
    /// Headers (defaults merged in), templated.
    pub headers: Vec<Header>,
    /// Request body, templated.
    pub body: Option<Template>,
    /// Whether the body holds a value from the environment (`${VAR}` in `body` or
    /// `json`): like a secret header's value, it must never be shown.
    pub body_secret: bool,
    /// Relative share of the mix.
    pub weight: u32,
    /// What a successful response looks like.
    pub checks: Checks,
    /// How a streamed response is read (`stream = "sse"`); `None`: read whole.
    pub stream: Option<super::stream::Stream>,
    /// The longest wait from the send for the first token of a stream, or the first
    /// byte of the response body of an endpoint that does not stream (or the end of a
    /// response without one): beyond it, `first_byte_timeout`.
    pub first_byte_timeout: Option<Duration>,
    /// The longest gap between two reads of the response once it began (its first
    /// token, or body byte, when `first_byte_timeout` is set; else its head): beyond
    /// it, `idle_timeout` (a stalled stream).
    pub idle_timeout: Option<Duration>,
    /// What a success must meet to count toward goodput.
    pub goodput: super::stream::GoodLimits,
    /// Whether requests say `Accept-Encoding: gzip, br, zstd` (unless a header of the
    /// endpoint names its own): `compression`, on by default.
    pub compression: bool,
    /// How many redirects (301, 302, 303, 307, 308 with a `Location`) a request
    /// follows before its answer: `redirects`, 10 by default; 0 takes a 3xx as the
    /// answer.
    pub redirects: u8,
    /// Whether it carries `[auth]`'s token (see [`Auth`](super::auth::Auth)).
    pub auth: bool,
}

/// One request header.
#[derive(Debug, Clone)]
pub struct Header {
    /// Header name as written.
    pub name: String,
    /// Value template.
    pub value: Template,
    /// Whether the value must never be shown (from the environment, an auth header,
    /// listed in `redact_headers`, or holding a flow's captured variable); a redirect to
    /// another origin leaves such a header out.
    pub secret: bool,
}

/// Response checks.
#[derive(Debug, Clone, Default)]
pub struct Checks {
    /// Accepted status codes; empty means any 2xx.
    pub status: Vec<u16>,
    /// A substring the body must contain.
    pub body_contains: Option<String>,
    /// JSON assertions on the body.
    pub json: Vec<JsonCheck>,
}

impl Checks {
    /// Whether `status` is one the endpoint expects.
    pub fn status_ok(&self, status: u16) -> bool {
        if self.status.is_empty() {
            (200..300).contains(&status)
        } else {
            self.status.contains(&status)
        }
    }

    /// Whether the checks need the response body.
    pub fn needs_body(&self) -> bool {
        self.body_contains.is_some() || !self.json.is_empty()
    }
}

/// One JSON assertion.
#[derive(Debug, Clone)]
pub struct JsonCheck {
    /// The path as written (`$.data.items[0].id`).
    pub path: String,
    /// The same path as a JSON pointer (`/data/items/0/id`).
    pub pointer: String,
    /// What must hold there.
    pub expect: JsonExpect,
}

/// What a JSON assertion requires.
#[derive(Debug, Clone, PartialEq)]
pub enum JsonExpect {
    /// The value equals this.
    Equals(serde_json::Value),
    /// The value exists (true) or does not (false).
    Exists(bool),
}

/// Rows of a CSV data file.
#[derive(Debug, Clone)]
pub struct DataFeed {
    /// Column names from the header row.
    pub columns: Vec<String>,
    /// Rows, each with one value per column.
    pub rows: Vec<Vec<String>>,
    /// How rows are picked.
    pub mode: DataMode,
}

/// How data-file rows are assigned to requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataMode {
    /// Request `seq` uses row `seq % rows`.
    Sequential,
    /// A uniformly random row.
    Random,
}

/// Open (arrival rate) or closed (virtual users).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadModel {
    /// Requests arrive on a schedule regardless of responses.
    Open,
    /// A number of users each send, wait for the response, think, and repeat.
    Closed,
}

/// One stage of the load profile: ramp linearly to `target` over `duration`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stage {
    /// Stage length.
    pub duration: Duration,
    /// Requests per second (open) or virtual users (closed) at the end of the stage.
    pub target: f64,
}

/// When a run is invalid because the generator could not keep up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Validity {
    /// Achieved/target send rate below this makes the run invalid.
    pub min_achieved_ratio: f64,
    /// A larger share of late sends makes the run invalid.
    pub max_late_ratio: f64,
    /// A larger share of dropped sends makes the run invalid.
    pub max_dropped_ratio: f64,
    /// `robust` (the default: invalid only when the generator's error could change the
    /// verdict or the load) or `strict` (also past `max_late_ratio` late sends).
    pub mode: loadgate_slo::judge::ValidityMode,
}

/// The load profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Load {
    /// Open or closed.
    pub model: LoadModel,
    /// Rate or VUs at t = 0.
    pub start: f64,
    /// Stages, run in order.
    pub stages: Vec<Stage>,
    /// Open model: most requests in flight at once; arrivals beyond it are dropped.
    pub max_in_flight: usize,
    /// Whether the scenario set `max_in_flight`; if not, it follows the peak rate
    /// (see [`default_max_in_flight`](crate::default_max_in_flight)), also when a flag changes the rate.
    pub max_in_flight_set: bool,
    /// `connections = N`: a fixed pool of at most N HTTP/1.1 connections for the whole
    /// run (split among the workers); a request that finds every one busy waits for one,
    /// and is still timed from its intended send. `None`: a connection for each request
    /// in flight, opened as needed (the open model of k6 and Gatling).
    pub connections: Option<usize>,
    /// Closed model: pause between a user's requests.
    pub think_time: Duration,
    /// The first part of the run, measured but kept out of SLO evaluation.
    pub warmup: Duration,
    /// Open model: a send later than this behind schedule counts as late.
    pub late_tolerance: Duration,
    /// Open model: at high rates a worker may wake up to this long after an arrival's
    /// intended time, to send it together with the arrivals due meanwhile (one wake-up
    /// for several sends). Always shorter than `late_tolerance`; zero sends every
    /// arrival at its own wake-up. See [`default_send_window`](crate::default_send_window).
    pub send_window: Duration,
    /// Thresholds for an invalid run.
    pub validity: Validity,
    /// Random seed for the mix and templates (random when `None`).
    pub seed: Option<u64>,
}

impl Load {
    /// Total length of all stages.
    pub fn duration(&self) -> Duration {
        self.stages.iter().map(|s| s.duration).sum()
    }

    /// The rate (open) or VU count (closed) the profile asks for at `t` seconds.
    pub fn target_at(&self, t: f64) -> f64 {
        let mut from = self.start;
        let mut begin = 0.0;
        for s in &self.stages {
            let d = s.duration.as_secs_f64();
            if t < begin + d {
                return from + (s.target - from) * ((t - begin) / d);
            }
            begin += d;
            from = s.target;
        }
        from
    }

    /// The highest rate or VU count of the profile.
    pub fn peak(&self) -> f64 {
        self.stages
            .iter()
            .map(|s| s.target)
            .fold(self.start, f64::max)
    }
}

/// SLO budgets of a scenario.
#[derive(Debug, Clone, Default)]
pub struct Slo {
    /// Budgets on the whole run.
    pub global: Vec<SloBudget>,
    /// Budgets on one endpoint (index into `Scenario::endpoints`).
    pub endpoints: Vec<(usize, SloBudget)>,
}

impl Slo {
    /// Every budget with its scope (`None`: the whole run; else the endpoint's index), in
    /// the order budgets are judged and listed: the global ones, then per endpoint.
    pub fn scoped(&self) -> Vec<(Option<usize>, &SloBudget)> {
        let global = self.global.iter().map(|b| (None, b));
        let endpoints = self.endpoints.iter().map(|(i, b)| (Some(*i), b));
        global.chain(endpoints).collect()
    }
}

/// A budget with its abort policy.
#[derive(Debug, Clone)]
pub struct SloBudget {
    /// The budget.
    pub budget: Budget,
    /// Stop the run as soon as this budget is breached (after `abort_delay`).
    pub abort_on_fail: bool,
    /// How long into the measured phase before an abort may happen.
    pub abort_delay: Duration,
}

/// Quick-run overrides from the command line.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// Replace the target.
    pub target: Option<url::Url>,
    /// Total run length.
    pub duration: Option<Duration>,
    /// Constant arrival rate (switches to the open model).
    pub rps: Option<f64>,
    /// Constant VU count (switches to the closed model).
    pub vus: Option<u32>,
    /// Budgets that add to, or replace (same metric and direction), the global ones.
    pub slo: Vec<Budget>,
    /// A fixed connection pool (see [`Load::connections`]).
    pub connections: Option<usize>,
}

impl Scenario {
    /// Applies command-line overrides. A rate, VU count or duration replaces the stages
    /// by one constant stage (at the profile's peak unless given).
    pub fn apply(&mut self, o: &Overrides) {
        if o.connections.is_some() {
            self.load.connections = o.connections;
        }
        if let Some(t) = &o.target {
            self.target = Target::Url(t.clone());
        }
        if o.rps.is_some() || o.vus.is_some() || o.duration.is_some() {
            let (model, level) = match (o.rps, o.vus) {
                (Some(r), _) => (LoadModel::Open, r),
                (None, Some(v)) => (LoadModel::Closed, f64::from(v)),
                (None, None) => (self.load.model, self.load.peak()),
            };
            let duration = o.duration.unwrap_or_else(|| self.load.duration());
            self.load.model = model;
            self.load.start = level;
            self.load.stages = vec![Stage {
                duration,
                target: level,
            }];
            if whole_seconds(self.load.warmup) >= duration {
                self.load.warmup = Duration::ZERO;
            }
            if !self.load.max_in_flight_set {
                self.load.max_in_flight =
                    default_max_in_flight(self.load.peak(), self.longest_timeout());
            }
        }
        for b in &o.slo {
            let key = b.key();
            self.slo.global.retain(|s| s.budget.key() != key);
            self.slo.global.push(SloBudget {
                budget: b.clone(),
                abort_on_fail: false,
                abort_delay: Duration::ZERO,
            });
        }
    }

    /// Whether header `name` must be redacted.
    pub fn is_secret_header(&self, name: &str) -> bool {
        is_secret_name(name, &self.redact_headers)
    }

    /// The target for people: `embedded` or the URL as [`redact_url`] shows it.
    pub fn target_display(&self) -> String {
        match &self.target {
            Target::Embedded => "embedded".to_string(),
            Target::Url(u) => redact_url(u),
        }
    }

    /// The longest request timeout of any endpoint (`[defaults] timeout` without
    /// endpoints): what bounds the last request of a run, so what the in-flight room, the
    /// histograms' bound and the settling of throughput windows follow.
    pub fn longest_timeout(&self) -> Duration {
        self.endpoints
            .iter()
            .map(|e| e.timeout)
            .chain(self.flows.iter().map(|f| f.bound(&self.endpoints)))
            .chain(self.auth.iter().map(|a| a.endpoint.timeout))
            .max()
            .unwrap_or(self.timeout)
    }

    /// How many rows a run's tables have: one per endpoint, then one per flow, then
    /// one per polling step (its time until ready), then `[auth]`'s token fetches.
    pub fn rows(&self) -> usize {
        self.endpoints.len() + self.flows.len() + self.polls().count() + self.auth.iter().count()
    }

    /// How the rows are laid out: the `[[endpoint]]`s, the flows' steps (each step a
    /// row of its own, also one that names an endpoint), the flows and polls, the
    /// token fetches.
    pub fn row_layout(&self) -> loadgate_metrics::Rows {
        let steps: usize = self.flows.iter().map(|f| f.steps.len()).sum();
        let auth = self.auth.iter().count();
        loadgate_metrics::Rows {
            endpoints: self.endpoints.len() - steps,
            steps,
            flows: self.rows() - self.endpoints.len() - auth,
            auth,
        }
    }

    /// The row of `[auth]`'s token fetches (the last), when there is an `[auth]`.
    pub fn auth_row(&self) -> Option<usize> {
        self.auth.as_ref().map(|_| self.rows() - 1)
    }

    /// The names of the rows of requests loadgate sends for itself: `[auth]`'s.
    pub fn auth_names(&self) -> Vec<String> {
        self.auth.iter().map(|a| a.endpoint.name.clone()).collect()
    }

    /// The names of the rows only flows send (their steps).
    pub fn step_names(&self) -> Vec<String> {
        let first = self.row_layout().endpoints;
        self.endpoints[first..]
            .iter()
            .map(|e| e.name.clone())
            .collect()
    }

    /// The rows that are not requests, by name: each flow's, then each polling step's
    /// `_ready` (see [`Until`](super::flow::Until)).
    pub fn composite_names(&self) -> Vec<String> {
        self.flows
            .iter()
            .map(|f| f.name.clone())
            .chain(self.polls().map(|(_, u)| u.name.clone()))
            .collect()
    }

    /// Every row's name: the endpoints', then the flows' and polls', then `[auth]`'s.
    pub fn row_names(&self) -> Vec<String> {
        self.endpoints
            .iter()
            .map(|e| e.name.clone())
            .chain(self.composite_names())
            .chain(self.auth_names())
            .collect()
    }

    /// Every polling step's rule with the flow it is in, in order.
    pub fn polls(&self) -> impl Iterator<Item = (&super::flow::Flow, &super::flow::Until)> {
        self.flows.iter().flat_map(|f| {
            f.steps
                .iter()
                .filter_map(move |s| Some((f, s.until.as_ref()?)))
        })
    }

    /// The row of polling step number `poll`'s time until ready.
    pub fn ready_row(&self, poll: usize) -> usize {
        self.endpoints.len() + self.flows.len() + poll
    }

    /// Every row's weight in the mix of arrivals: an endpoint's own (0 for a flow's step
    /// written in place), then each flow's (then 0 for each poll's).
    pub fn row_weights(&self) -> Vec<u32> {
        self.endpoints
            .iter()
            .map(|e| e.weight)
            .chain(self.flows.iter().map(|f| f.weight))
            .chain(self.polls().map(|_| 0))
            .chain(self.auth.iter().map(|_| 0))
            .collect()
    }

    /// The flow row `row` is, if it is one.
    pub fn flow_of_row(&self, row: usize) -> Option<&super::flow::Flow> {
        row.checked_sub(self.endpoints.len())
            .and_then(|f| self.flows.get(f))
    }

    /// The longest a row's sample may take: an endpoint's timeout, a flow's
    /// [`bound`](super::flow::Flow::bound), a poll's step's.
    pub fn row_bound(&self, row: usize) -> Duration {
        if let Some(e) = self.endpoints.get(row) {
            return e.timeout;
        }
        if let Some(f) = self.flow_of_row(row) {
            return f.bound(&self.endpoints);
        }
        if let Some(a) = self.auth.as_ref().filter(|_| self.auth_row() == Some(row)) {
            return a.endpoint.timeout;
        }
        let poll = row - self.endpoints.len() - self.flows.len();
        self.flows
            .iter()
            .flat_map(|f| &f.steps)
            .filter(|s| s.until.is_some())
            .nth(poll)
            .map_or(self.timeout, |s| s.bound(&self.endpoints))
    }

    /// The requests row `row` gets per arrival, on average: an endpoint's own weight
    /// and once for every step of a flow that sends it, over all weights; a flow's row,
    /// its weight's share.
    pub fn arrival_share(&self, row: usize) -> f64 {
        let total: f64 = self.row_weights().iter().map(|w| f64::from(*w)).sum();
        if total <= 0.0 {
            return 0.0;
        }
        if let Some(f) = self.flow_of_row(row) {
            return f64::from(f.weight) / total;
        }
        if self.auth_row() == Some(row) {
            // Fetched when a token is needed, never per arrival.
            return 0.0;
        }
        if row >= self.endpoints.len() {
            // A poll's row: once per iteration of its flow.
            let poll = row - self.endpoints.len() - self.flows.len();
            return self
                .polls()
                .nth(poll)
                .map_or(0.0, |(f, _)| f64::from(f.weight) / total);
        }
        let own = self.endpoints.get(row).map_or(0, |e| e.weight);
        let by_flows: f64 = self
            .flows
            .iter()
            .map(|f| {
                let times = f.steps.iter().filter(|s| s.endpoint == row).count();
                f64::from(f.weight) * times as f64
            })
            .sum();
        (f64::from(own) + by_flows) / total
    }

    /// The endpoints sent to their own `base`, by name, each base as [`redact_url`]
    /// shows it: with the target, every origin a run sends to.
    pub fn endpoint_bases(&self) -> std::collections::BTreeMap<String, String> {
        self.endpoints
            .iter()
            .filter_map(|e| Some((e.name.clone(), redact_url(e.base.as_ref()?))))
            .collect()
    }

    /// Where a run sends load, for people: the target, then each endpoint sent to a base
    /// of its own (`https://app.example.com; agent: http://ml:8000`), as a summary's
    /// `origins_shown` says it.
    pub fn origins_display(&self) -> String {
        let mut out = self.target_display();
        for (name, base) in self.endpoint_bases() {
            out.push_str(&format!("; {name}: {base}"));
        }
        out
    }

    /// Every distinct base URL the run sends to besides the target, in endpoint order,
    /// as given (with credentials: not for people).
    pub fn other_bases(&self) -> Vec<&url::Url> {
        let mut out: Vec<&url::Url> = Vec::new();
        for b in self.endpoints.iter().filter_map(|e| e.base.as_ref()) {
            if !out.iter().any(|o| o.origin() == b.origin()) {
                out.push(b);
            }
        }
        out
    }
}

/// Whether header `name` carries a credential: an auth or cookie header, or one listed
/// (lower-cased) in `redact`.
pub(super) fn is_secret_name(name: &str, redact: &[String]) -> bool {
    let lower = name.to_ascii_lowercase();
    matches!(
        lower.as_str(),
        "authorization" | "proxy-authorization" | "cookie" | "x-api-key"
    ) || redact.contains(&lower)
}
