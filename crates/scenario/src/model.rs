//! The validated scenario and how a raw file becomes one.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use loadgate_slo::Budget;

use crate::check;
use crate::diag::{Diagnostics, Sink};
use crate::interp::{interpolate, InterpError, Interpolated, Origin};
use crate::raw;
use crate::secrets::{url_secrets, Secrets};
use crate::template::{Escape, Names, Template};

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
    /// Per-request timeout (from send to the end of the body).
    pub timeout: Duration,
    /// TCP (and TLS) connect timeout.
    pub connect_timeout: Duration,
    /// Which HTTP versions to speak.
    pub http: HttpVersion,
    /// Most response-body bytes kept in memory for checks; the rest is read and counted.
    pub max_body: usize,
    /// Requests, in file order.
    pub endpoints: Vec<Endpoint>,
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
    /// secret parts (see [`Secrets::add_url`]). A target given in [`LoadOptions`] is the
    /// caller's to add.
    pub secrets: Secrets,
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

/// Where to send load.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// The embedded demo target, started in-process with `Scenario::target_profile`.
    Embedded,
    /// A base URL such as `https://staging.example.com`.
    Url(url::Url),
}

impl Target {
    /// Reads a target as a scenario's `target` and the `--target` flag take it:
    /// `embedded`, or an http:// or https:// URL with a host that the engine can send to.
    pub fn parse(text: &str) -> Result<Target, TargetError> {
        if text == "embedded" {
            return Ok(Target::Embedded);
        }
        let u = url::Url::parse(text).map_err(|e| TargetError::NotUrl(e.to_string()))?;
        if !matches!(u.scheme(), "http" | "https") {
            return Err(TargetError::Scheme(u.scheme().to_string()));
        }
        if u.host().is_none() {
            return Err(TargetError::NotUrl("no host".into()));
        }
        // Each endpoint's path is joined to the target, so a query or fragment here
        // would end up in the middle of every request's path.
        if u.query().is_some() || u.fragment().is_some() {
            return Err(TargetError::Query);
        }
        // The engine and the health check parse the URL (without credentials) again.
        without_credentials(&u)
            .parse::<http::Uri>()
            .map_err(|e| TargetError::NotUrl(e.to_string()))?;
        Ok(Target::Url(u))
    }
}

/// Why a target is not usable. Never holds the URL itself, which may carry a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// Not a URL the engine can send to; the parser's reason.
    #[error("not a valid URL ({0})")]
    NotUrl(String),
    /// A URL whose scheme is not http or https; the scheme.
    #[error("scheme `{0}` is not supported")]
    Scheme(String),
    /// A URL with a query (`?…`) or fragment (`#…`).
    #[error("a target is a base URL that each endpoint's path is joined to, so it takes no query (`?…`) or fragment (`#…`); put the query in the endpoints' paths, e.g. path = \"/api/health?key=${{API_KEY}}\"")]
    Query,
}

/// What a caller decides about a scenario beyond its file (see [`crate::load_with`]).
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Send load here instead of to the file's `target` (`--target`, `LOADGATE_TARGET`).
    /// The file's `target` is then neither interpolated nor checked, so a scenario with
    /// `target = "${TARGET_URL}"` loads while `TARGET_URL` is unset; paths are checked
    /// under this target's path.
    pub target: Option<Target>,
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
}

/// One request header.
#[derive(Debug, Clone)]
pub struct Header {
    /// Header name as written.
    pub name: String,
    /// Value template.
    pub value: Template,
    /// Whether the value must never be shown (from the environment, an auth header, or
    /// listed in `redact_headers`).
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
    /// (see [`default_max_in_flight`]), also when a flag changes the rate.
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
    /// arrival at its own wake-up. See [`default_send_window`].
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
                self.load.max_in_flight = default_max_in_flight(self.load.peak(), self.timeout);
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
}

/// A URL for people (the scenario's target and `--target` alike):
/// `scheme://host[:port]/path`, never a user name or password, every query value shown
/// as `***` (keys kept; a query piece without `=` is all value), no fragment. A trailing
/// `/` is dropped when there is no query.
pub fn redact_url(u: &url::Url) -> String {
    let mut out = format!("{}://{}", u.scheme(), u.host_str().unwrap_or(""));
    if let Some(port) = u.port() {
        out.push_str(&format!(":{port}"));
    }
    match u.query() {
        None => out.push_str(u.path().trim_end_matches('/')),
        Some(q) => {
            out.push_str(u.path());
            out.push('?');
            let shown: Vec<String> = q
                .split('&')
                .map(|piece| match piece.split_once('=') {
                    Some((key, _)) => format!("{key}=***"),
                    None if piece.is_empty() => String::new(),
                    None => "***".to_string(),
                })
                .collect();
            out.push_str(&shown.join("&"));
        }
    }
    out
}

/// The URL the engine sends to: `u` without its user name and password (which go in an
/// authorization header instead) and without a trailing `/`. Not for people: it keeps
/// the query and fragment (see [`redact_url`]).
pub fn without_credentials(u: &url::Url) -> String {
    let mut u = u.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.to_string().trim_end_matches('/').to_string()
}

/// The send window when the scenario sets none: a quarter of the late tolerance, at most
/// 250 µs. Waking the thread costs tens of microseconds of CPU on a virtual machine, so
/// at 20,000 requests/s one wake-up per send takes most of a core; a 250 µs window sends
/// several arrivals per wake-up. Each such send is at most the window behind its
/// intended time, and its latency is still measured from that intended time.
pub fn default_send_window(late_tolerance: Duration) -> Duration {
    (late_tolerance / 4).min(Duration::from_micros(250))
}

const DURATION_HINT: &str =
    "write a duration with a unit (us, ms, s, m or h), e.g. \"30s\", \"500ms\", \"2m\" or \"1m30s\"";

/// A duration as flags and scenario files write it (`30s`, `500ms`, `2m`, `1m30s`,
/// `10sec`); the error says what was wrong without the parser's own examples.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|e| {
        let why = match e {
            humantime::DurationError::UnknownUnit { unit, .. } => format!("unknown unit `{unit}`"),
            humantime::DurationError::NumberExpected(_) => "a number was expected".into(),
            humantime::DurationError::InvalidCharacter(_) => {
                "it has a character a duration cannot hold".into()
            }
            humantime::DurationError::NumberOverflow => "it is too long".into(),
            humantime::DurationError::Empty => "it is empty".into(),
        };
        let why =
            if s.trim().chars().all(|c| c.is_ascii_digit() || c == '.') && !s.trim().is_empty() {
                "it has no unit".to_string()
            } else {
                why
            };
        format!("`{s}` is not a duration: {why}")
    })
}

fn duration(sink: &mut Sink<'_>, v: &raw::S<String>, what: &str) -> Option<Duration> {
    match parse_duration(v.get_ref()) {
        Ok(d) => Some(d),
        Err(e) => {
            sink.span(v.span(), format!("{what}: {e}"), DURATION_HINT.to_string());
            None
        }
    }
}

/// `v` interpolated; every value it took from the environment is registered in
/// `secrets` (unless `secrets` is `None`: the caller registers what is secret).
fn interp(
    sink: &mut Sink<'_>,
    v: &raw::S<String>,
    env: &dyn Fn(&str) -> Option<String>,
    secrets: Option<&mut Secrets>,
) -> Option<Interpolated> {
    match interpolate(v.get_ref(), env) {
        Ok(i) => {
            if let Some(secrets) = secrets {
                for e in &i.env {
                    secrets.add(&e.name, &i.value[e.value.clone()]);
                }
            }
            Some(i)
        }
        Err(e) => {
            let at = sink.string_body_start(&v.span()) + e.offset;
            sink.at(at, e.message, e.hint);
            None
        }
    }
}

/// The target's `${VAR}`s: like any value's, and an unset one's hint also names the
/// flag that replaces the target unread.
fn target_interp(
    sink: &mut Sink<'_>,
    v: &raw::S<String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<Interpolated> {
    let before = sink.found.len();
    let i = interp(sink, v, env, None);
    for d in &mut sink.found[before..] {
        if let Some(h) = d.hint.as_mut().filter(|h| h.starts_with("export ")) {
            h.push_str(", or pass --target URL (or set LOADGATE_TARGET)");
        }
    }
    i
}

/// Where byte `at` of interpolated value `i` of `v` is written in the file, and the
/// variable whose value holds it (if one does): then the file position is its reference.
fn place<'i>(
    sink: &Sink<'_>,
    v: &raw::S<String>,
    i: &'i Interpolated,
    at: usize,
) -> (usize, Option<&'i str>) {
    let body = sink.string_body_start(&v.span());
    let (offset, name) = match i.origin(at) {
        Origin::Text(o) => (o, None),
        Origin::Env(n) => (i.env[n].reference.start, Some(i.env[n].name.as_str())),
    };
    ((body + offset).min(v.span().end), name)
}

/// Compiles interpolated value `i` of `v` as a template. An error inside a value from the
/// environment names the variable, never the value.
fn template(
    sink: &mut Sink<'_>,
    v: &raw::S<String>,
    i: &Interpolated,
    escape: Escape,
    names: &Names<'_>,
) -> Option<Template> {
    match Template::compile(&i.value, escape, names) {
        Ok(t) => Some(t),
        Err(e) => {
            match place(sink, v, i, e.offset) {
                (at, None) => sink.at(at, e.message, e.hint),
                (at, Some(name)) => sink.at(
                    at,
                    format!("the value of `${{{name}}}` holds a template placeholder that does not compile"),
                    Some(format!("placeholders such as `{{{{seq}}}}` belong in the scenario file: remove `{{{{` from {name}")),
                ),
            }
            None
        }
    }
}

/// `v` as written in the scenario, for a message: the `${NAME}` text, never a value.
fn written(v: &raw::S<String>) -> String {
    shorten(v.get_ref())
}

/// An endpoint's tag in the interval log (`intervals.hlog`): its name with spaces and
/// commas as `_`, as the log's tags hold neither.
pub fn log_tag(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c == ',' || c.is_whitespace() {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// The longest scenario name, in bytes. It names the run directory, and the longest
/// suffix a command adds (`-capacity-20261122T024107Z`, 26 bytes) must still fit in a
/// file name's 255 bytes; the rest is room for a longer time stamp.
pub const MAX_NAME_BYTES: usize = 200;

/// Refuses a control character in name `v` (trimmed as names are), pointing at it.
fn no_control_chars(sink: &mut Sink<'_>, v: &raw::S<String>, what: &str, hint: &str) {
    let raw = v.get_ref();
    let lead = raw.len() - raw.trim_start().len();
    if let Some((i, c)) = raw.trim().char_indices().find(|(_, c)| c.is_control()) {
        let at = sink.string_body_start(&v.span()) + lead + i;
        sink.at(
            at.min(v.span().end),
            format!("{what} has {}", check::describe(c)),
            Some(hint.to_string()),
        );
    }
}

/// Reports a path the engine would refuse (`Some` problem from [`check::path`] on
/// interpolated value `i` of `v`).
fn path_problem(
    sink: &mut Sink<'_>,
    v: &raw::S<String>,
    i: &Interpolated,
    what: &str,
    p: check::PathProblem,
) {
    match p {
        check::PathProblem::Char { bad, in_query } => match place(sink, v, i, bad.offset) {
            (at, None) => sink.at(
                at,
                format!(
                    "{what} has {}{}, which a URL cannot hold",
                    check::describe(bad.c),
                    if in_query { " in its query" } else { "" }
                ),
                Some(check::percent_hint(bad.c)),
            ),
            // Not even the character: it is part of a secret.
            (at, Some(name)) => sink.at(
                at,
                format!(
                    "{what} {} has a character a URL cannot hold{} in the value of `${{{name}}}`",
                    written(v),
                    if in_query { " in its query" } else { "" }
                ),
                Some(format!(
                    "percent-encode it in {name} (e.g. %20 for a space)"
                )),
            ),
        },
        check::PathProblem::TooLong { len } => sink.span(
            v.span(),
            format!(
                "{what} is too long: {len} bytes after the target's own path, at most {}",
                check::MAX_PATH_LEN
            ),
            Some("shorten the path (or the target URL's path)".into()),
        ),
    }
}

pub(crate) fn build(
    path: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
    options: &LoadOptions,
) -> Result<Scenario, Diagnostics> {
    let mut sink = Sink::new(path, text);
    // Every structural mistake at once: the parser stops at the first, so the line it
    // points at (an unknown key, a value of the wrong type) is blanked, offsets kept,
    // and the file read again. A mistake that blanking cannot get past (TOML syntax, a
    // missing table) ends the search; so does anything that only blanking caused.
    let mut blanked = text.as_bytes().to_vec();
    let mut structural = 0;
    // The keys of the lines blanked: what they leave missing was reported already.
    let mut blanked_keys: Vec<String> = Vec::new();
    let file: raw::File = loop {
        let now = String::from_utf8_lossy(&blanked).into_owned();
        match toml::from_str(&now) {
            Ok(f) => break f,
            Err(e) => {
                let span = e.span();
                let msg = e
                    .message()
                    .trim()
                    .replace("expected i64", "expected a whole number")
                    .replace("expected u64", "expected a whole number, 0 or more")
                    .replace("expected u32", "expected a whole number, 0 or more")
                    .replace("expected u16", "expected a whole number, 0 or more")
                    .replace("expected f64", "expected a number");
                let line_local = [
                    "unknown field",
                    "invalid type",
                    "invalid value",
                    "unknown variant",
                ]
                .iter()
                .any(|k| msg.starts_with(k));
                if structural > 0 && !line_local {
                    return Err(Diagnostics(sink.found));
                }
                let load_flat = ["duration", "vus", "target_rps", "rps"]
                    .iter()
                    .any(|k| msg.starts_with(&format!("unknown field `{k}`")))
                    && msg.contains("`stages`");
                let hint = if load_flat {
                    Some("a load's lengths and levels go in its stages: stages = [{ duration = \"30s\", target_rps = 60 }] (open model), or stages = [{ duration = \"30s\", vus = 20 }] (closed)".to_string())
                } else if msg.starts_with("invalid type: string")
                    && (msg.ends_with("expected a whole number")
                        || msg.ends_with("0 or more")
                        || msg.ends_with("expected a number"))
                {
                    Some("write the number without quotes (e.g. 5, not \"5\")".to_string())
                } else if msg.starts_with("invalid type: integer")
                    || msg.starts_with("invalid type: floating point")
                {
                    if msg.ends_with("expected a string") {
                        Some("write it in quotes (e.g. \"10s\" for a duration)".to_string())
                    } else {
                        None
                    }
                } else if ["timeout", "timout", "connect_timeout"]
                    .iter()
                    .any(|k| msg.starts_with(&format!("unknown field `{k}`")))
                    && msg.contains("`checks`")
                {
                    Some("timeouts are set for every endpoint in [defaults]: timeout = \"10s\", connect_timeout = \"3s\"".to_string())
                } else if msg.starts_with("unknown field") {
                    Some("check the spelling; unknown keys are rejected so typos cannot be silently ignored".to_string())
                } else if msg.starts_with("missing field") {
                    Some("add it; see the scenario reference in README.md".to_string())
                } else {
                    None
                };
                sink.at(span.clone().map_or(0, |s| s.start), msg, hint);
                structural += 1;
                let Some(span) = span.filter(|_| line_local && structural < 50) else {
                    return Err(Diagnostics(sink.found));
                };
                let start = blanked[..span.start]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |i| i + 1);
                let end = blanked[span.end.min(blanked.len())..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(blanked.len(), |i| span.end + i);
                if let Some((key, _)) =
                    String::from_utf8_lossy(&blanked[start..end]).split_once('=')
                {
                    blanked_keys.push(key.trim().to_string());
                }
                for b in &mut blanked[start..end] {
                    *b = b' ';
                }
            }
        }
    };

    // No `name`: the file's name without `.toml` names the run.
    let stem = || {
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "scenario".into())
    };
    let name = file
        .name
        .as_ref()
        .map_or_else(stem, |n| n.get_ref().trim().to_string());
    let name_span = file.name.as_ref().map_or(0..0, |n| n.span());
    if name.is_empty() || name.contains(['/', '\\']) {
        sink.span(
            name_span.clone(),
            "name must be non-empty and must not contain `/` or `\\`",
            Some("it names the run directory".into()),
        );
    } else if name.len() > MAX_NAME_BYTES {
        sink.span(
            name_span,
            format!(
                "name is {} bytes long, at most {MAX_NAME_BYTES}",
                name.len()
            ),
            Some("shorten it: it names the run directory (NAME-20261122T024107Z), and a file name holds at most 255 bytes".into()),
        );
    }
    if let Some(n) = &file.name {
        no_control_chars(
            &mut sink,
            n,
            "name",
            "remove it: the name becomes the run directory's name, and junit.xml cannot hold control characters",
        );
    }

    let mut secrets = Secrets::new();
    // An override replaces the file's target unread: `${TARGET_URL}` may be unset.
    let target = match &options.target {
        Some(t) => Some(t.clone()),
        None => target_interp(&mut sink, &file.target, env).and_then(|t| {
            let parsed = Target::parse(&t.value)
                .map_err(|e| match e {
                    TargetError::Scheme(_) if t.from_env => sink.span(
                        file.target.span(),
                        format!(
                            "target {} has a scheme that is not supported",
                            written(&file.target)
                        ),
                        Some("use an http:// or https:// URL, or \"embedded\"".into()),
                    ),
                    TargetError::Scheme(scheme) => sink.span(
                        file.target.span(),
                        format!("target scheme `{scheme}` is not supported"),
                        Some("use an http:// or https:// URL, or \"embedded\"".into()),
                    ),
                    TargetError::Query => sink.span(
                        file.target.span(),
                        format!(
                            "target {} has a query (`?…`) or fragment (`#…`): a target is a base URL that each endpoint's path is joined to",
                            written(&file.target)
                        ),
                        Some("put the query in the endpoints' paths, e.g. path = \"/api/health?key=${API_KEY}\"".into()),
                    ),
                    TargetError::NotUrl(why) => sink.span(
                        file.target.span(),
                        format!("target is not a valid URL ({why})"),
                        Some("write e.g. \"https://staging.example.com\" or \"embedded\"".into()),
                    ),
                })
                .ok()?;
            if let Target::Url(u) = &parsed {
                register_target(&mut secrets, &t, u);
            }
            Some(parsed)
        }),
    };
    let prefix = target.as_ref().map(check::path_prefix).unwrap_or_default();

    let d = &file.defaults;
    let timeout = d
        .timeout
        .as_ref()
        .and_then(|t| duration(&mut sink, t, "timeout"))
        .unwrap_or(Duration::from_secs(30));
    let connect_timeout = d
        .connect_timeout
        .as_ref()
        .and_then(|t| duration(&mut sink, t, "connect_timeout"))
        .unwrap_or(Duration::from_secs(5));
    if let Some(t) = d.timeout.as_ref().filter(|_| timeout.is_zero()) {
        sink.span(t.span(), "timeout must be greater than zero", None);
    }
    let http = match d.http.as_ref().map(|h| (h.get_ref().as_str(), h.span())) {
        None | Some(("auto", _)) => HttpVersion::Auto,
        Some(("http1", _)) => HttpVersion::Http1,
        Some(("http2", _)) => HttpVersion::Http2,
        Some((other, span)) => {
            sink.span(
                span,
                format!("unknown http version `{other}`"),
                Some("use \"auto\", \"http1\" or \"http2\"".into()),
            );
            HttpVersion::Auto
        }
    };

    let max_body = match &d.max_body {
        None => 4 << 20,
        Some(v) => match v.get_ref().trim().parse::<bytesize::ByteSize>() {
            Ok(b) if b.as_u64() > 0 && b.as_u64() <= 1 << 30 => b.as_u64() as usize,
            _ => {
                sink.span(
                    v.span(),
                    format!(
                        "max_body `{}` is not a size between 1 byte and 1 GiB",
                        v.get_ref()
                    ),
                    Some("write e.g. \"4MiB\", \"512KiB\" or \"100MB\"".into()),
                );
                4 << 20
            }
        },
    };
    let redact_headers: Vec<String> = file
        .redact_headers
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .collect();

    let mut list_names = Vec::new();
    let mut lists = Vec::new();
    for (n, v) in &file.lists {
        if v.get_ref().is_empty() {
            sink.span(
                v.span(),
                format!("list `{n}` is empty"),
                Some("give it at least one value".into()),
            );
        }
        list_names.push(n.clone());
        lists.push(v.get_ref().iter().map(|x| x.get_ref().clone()).collect());
    }

    let (data, csv_rows) = file
        .data
        .as_ref()
        .and_then(|d| data_feed(&mut sink, path, d, env, &mut secrets))
        .unzip();
    let columns: Vec<String> = data.as_ref().map(|d| d.columns.clone()).unwrap_or_default();
    let names = Names {
        lists: &list_names,
        columns: &columns,
    };

    let is_secret = |name: &str| is_secret_name(name, &redact_headers);
    let cx = EndpointCx {
        default_headers: &d.headers,
        names: &names,
        env,
        is_secret: &is_secret,
        prefix: &prefix,
    };
    let mut endpoints = Vec::new();
    match &file.endpoints {
        None => sink.at(
            0,
            "the scenario has no endpoints",
            Some("add at least one [[endpoint]] table with a name and a path".into()),
        ),
        Some(eps) if eps.get_ref().is_empty() => sink.span(
            eps.span(),
            "the endpoint list is empty",
            Some("add at least one [[endpoint]] table with a name and a path".into()),
        ),
        Some(_) => {}
    }
    for (index, e) in file
        .endpoints
        .as_ref()
        .map(|e| e.get_ref().as_slice())
        .unwrap_or(&[])
        .iter()
        .enumerate()
    {
        if let Some(ep) = endpoint(&mut sink, index, e, &cx, &mut secrets) {
            if endpoints.iter().any(|x: &Endpoint| x.name == ep.name) {
                sink.span(
                    e.name.span(),
                    format!("endpoint name `{}` is used twice", ep.name),
                    Some("endpoint names must be unique".into()),
                );
            } else if ep.name == "all" || ep.name == "global" {
                sink.span(
                    e.name.span(),
                    format!(
                        "endpoint name `{}` is taken: it names every endpoint together in the reports and budgets",
                        ep.name
                    ),
                    Some("choose another name".into()),
                );
            } else if let Some(other) = endpoints.iter().find(|x| {
                let (a, b) = (log_tag(&x.name), log_tag(&ep.name));
                a == b || a == format!("{b}.service") || b == format!("{a}.service")
            }) {
                sink.span(
                    e.name.span(),
                    format!(
                        "endpoint names `{}` and `{}` would share a tag of the interval log (`{}`), where spaces and commas become `_` and `.service` marks service time",
                        other.name,
                        ep.name,
                        log_tag(&ep.name)
                    ),
                    Some("rename one of them".into()),
                );
            }
            endpoints.push(ep);
        }
    }
    if let (Some(data), Some(rows)) = (&data, &csv_rows) {
        header_columns(&mut sink, data, rows, &endpoints);
    }
    header_lists(&mut sink, &file.lists, &endpoints);
    if !endpoints.is_empty() && endpoints.iter().all(|e| e.weight == 0) {
        let span = file.endpoints.as_ref().unwrap().span();
        sink.span(
            span,
            "endpoint weights sum to zero",
            Some("give at least one endpoint a positive weight".into()),
        );
    }

    // No `[load]`: ten virtual users for ten seconds (flags such as --rps, --vus and
    // --duration replace it, as they replace any load).
    let default_load = raw::S::new(
        0..0,
        raw::Load {
            model: Some(raw::S::new(0..0, "closed".to_string())),
            stages: Some(raw::S::new(
                0..0,
                vec![raw::S::new(
                    0..0,
                    raw::Stage {
                        duration: raw::S::new(0..0, "10s".to_string()),
                        target_rps: None,
                        vus: Some(raw::S::new(0..0, 10)),
                    },
                )],
            )),
            start_rps: None,
            start_vus: None,
            max_in_flight: None,
            connections: None,
            think_time: None,
            warmup: None,
            late_tolerance: None,
            send_window: None,
            min_achieved_ratio: None,
            max_late_ratio: None,
            max_dropped_ratio: None,
            validity: None,
            seed: None,
        },
    );
    let raw_load = file.load.as_ref().unwrap_or(&default_load);
    // Stages that blanking took away were reported as what was wrong with them.
    // Stages that blanking took away were reported as what was wrong with them.
    // So were stage figures written flat in [load] (`vus = 5`, `duration = "10s"`).
    let stages_blanked = raw_load.get_ref().stages.is_none()
        && blanked_keys
            .iter()
            .any(|k| ["stages", "duration", "vus", "target_rps", "rps"].contains(&k.as_str()));
    let load = load(&mut sink, raw_load, timeout, stages_blanked);
    let slo = slo(
        &mut sink,
        &file.slo,
        &file
            .endpoints
            .as_ref()
            .map(|e| {
                e.get_ref()
                    .iter()
                    .map(|e| e.name.get_ref().clone())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default(),
    );

    let target_profile = file
        .target_profile
        .as_ref()
        .map(|p| resolve(path, p.get_ref()));
    // The profile matters only to the embedded target; it must be there for it.
    if let (Some(Target::Embedded), Some(raw), Some(resolved)) =
        (&target, file.target_profile.as_ref(), &target_profile)
    {
        if let Err(e) = std::fs::metadata(resolved) {
            sink.span(
                raw.span(),
                format!("cannot read target profile {}: {e}", resolved.display()),
                Some("the path is relative to the scenario file; leave target_profile out for the built-in demo profile".into()),
            );
        }
    }
    let health = file.health.as_ref().and_then(|h| {
        let timeout = match &h.timeout {
            Some(t) => duration(&mut sink, t, "health timeout")?,
            None => Duration::from_secs(60),
        };
        let path = interp(&mut sink, &h.path, env, Some(&mut secrets))?;
        if !path.value.starts_with('/') {
            sink.span(
                h.path.span(),
                format!("health path {} must start with `/`", written(&h.path)),
                Some("write e.g. \"/api/health\"".into()),
            );
            return None;
        }
        // Polled as the target URL followed by this path, never templated.
        if let Some(p) = check::path(&prefix, &path.value, false) {
            path_problem(&mut sink, &h.path, &path, "health path", p);
            return None;
        }
        Some(HealthWait {
            path: path.value,
            timeout,
        })
    });

    let capacity = file
        .capacity
        .as_ref()
        .map(|c| capacity_plan(&mut sink, c))
        .unwrap_or_default();

    // Every message above shows the scenario's text, not a value from the environment;
    // this catches any that a value still reached (a parser's message, say).
    for d in &mut sink.found {
        d.message = secrets.redact(&d.message).into_owned();
        d.hint = d.hint.as_deref().map(|h| secrets.redact(h).into_owned());
        if let Some(f) = d.file.to_str() {
            d.file = PathBuf::from(secrets.redact(f).into_owned());
        }
    }
    sink.finish()?;
    Ok(Scenario {
        secrets,
        capacity,
        target_profile,
        health,
        name,
        source: path.to_path_buf(),
        target: target.expect("no diagnostics means the target parsed"),
        timeout,
        connect_timeout,
        http,
        max_body,
        endpoints,
        lists,
        list_names,
        data,
        load: load.expect("no diagnostics means the load parsed"),
        slo,
        redact_headers,
    })
}

/// Registers the secret parts of target `u`, interpolated as `t`, when any part of it came
/// from the environment: each under the variable whose value holds it (else the first).
fn register_target(secrets: &mut Secrets, t: &Interpolated, u: &url::Url) {
    let Some(first) = t.env.first() else {
        return;
    };
    for part in url_secrets(u) {
        let name = t
            .env
            .iter()
            .find(|e| t.value[e.value.clone()].contains(part.as_str()))
            .unwrap_or(first);
        secrets.add(&name.name, &part);
    }
}

/// Whether header `name` carries a credential: an auth or cookie header, or one listed
/// (lower-cased) in `redact`.
fn is_secret_name(name: &str, redact: &[String]) -> bool {
    let lower = name.to_ascii_lowercase();
    matches!(
        lower.as_str(),
        "authorization" | "proxy-authorization" | "cookie" | "x-api-key"
    ) || redact.contains(&lower)
}

fn resolve(scenario: &Path, rel: &str) -> PathBuf {
    let p = Path::new(rel);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        scenario.parent().unwrap_or(Path::new(".")).join(p)
    }
}

/// Where a data file's rows are, to point at a value in it.
struct CsvRows {
    /// The data file.
    path: PathBuf,
    /// The data file for people: as the scenario names it (`${VAR}` not replaced).
    shown: PathBuf,
    /// Byte offset of each row in it.
    starts: Vec<usize>,
}

fn data_feed(
    sink: &mut Sink<'_>,
    path: &Path,
    d: &raw::Data,
    env: &dyn Fn(&str) -> Option<String>,
    secrets: &mut Secrets,
) -> Option<(DataFeed, CsvRows)> {
    let mode = match d.mode.as_ref().map(|m| (m.get_ref().as_str(), m.span())) {
        None | Some(("sequential", _)) => DataMode::Sequential,
        Some(("random", _)) => DataMode::Random,
        Some((other, span)) => {
            sink.span(
                span,
                format!("unknown data mode `{other}`"),
                Some("use \"sequential\" or \"random\"".into()),
            );
            DataMode::Sequential
        }
    };
    let rel = interp(sink, &d.file, env, Some(secrets))?;
    let csv_path = resolve(path, &rel.value);
    // A name from the environment is shown as written: `data/${DATASET}.csv`.
    let shown = if rel.from_env {
        resolve(path, d.file.get_ref())
    } else {
        csv_path.clone()
    };
    let mut reader = match csv::ReaderBuilder::new()
        .flexible(false)
        .from_path(&csv_path)
    {
        Ok(r) => r,
        Err(e) => {
            sink.span(
                d.file.span(),
                format!("cannot read data file {}: {e}", shown.display()),
                Some("the path is relative to the scenario file".into()),
            );
            return None;
        }
    };
    let columns: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(|s| s.trim().to_string()).collect(),
        Err(e) => {
            sink.span(
                d.file.span(),
                format!(
                    "data file {} has no readable header row: {e}",
                    shown.display()
                ),
                None,
            );
            return None;
        }
    };
    let mut rows = Vec::new();
    let mut starts = Vec::new();
    for rec in reader.records() {
        match rec {
            Ok(r) => {
                starts.push(r.position().map_or(0, |p| p.byte() as usize));
                rows.push(r.iter().map(str::to_string).collect());
            }
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line() as usize);
                let csv_text = std::fs::read_to_string(&csv_path).unwrap_or_default();
                let mut csv_sink = Sink::new(&shown, &csv_text);
                let offset = e.position().map_or(0, |p| p.byte() as usize);
                let message = match e.kind() {
                    csv::ErrorKind::UnequalLengths {
                        expected_len, len, ..
                    } => {
                        format!(
                            "row on line {line} has {len} fields, the header has {expected_len}"
                        )
                    }
                    _ => format!("cannot parse the data file: {e}"),
                };
                csv_sink.at(
                    offset,
                    message,
                    Some("every row needs one value per header column".into()),
                );
                sink.found.extend(csv_sink.found);
                return None;
            }
        }
    }
    if rows.is_empty() {
        sink.span(
            d.file.span(),
            format!("data file {} has no rows", shown.display()),
            Some("add rows below the header".into()),
        );
        return None;
    }
    Some((
        DataFeed {
            columns,
            rows,
            mode,
        },
        CsvRows {
            path: csv_path,
            shown,
            starts,
        },
    ))
}

/// Byte offset in CSV `text` of byte `at` of the value of field `field` in the record
/// that starts at `start` (comma-separated, `"` quotes, `""` inside quotes).
fn csv_offset(text: &str, start: usize, field: usize, at: usize) -> usize {
    let b = text.as_bytes();
    let mut i = start;
    for _ in 0..field {
        let mut quoted = false;
        while i < b.len() {
            match b[i] {
                b'"' => quoted = !quoted,
                b',' if !quoted => break,
                _ => {}
            }
            i += 1;
        }
        i += 1;
    }
    if b.get(i) != Some(&b'"') {
        return (i + at).min(text.len());
    }
    i += 1;
    let mut n = 0;
    while i < b.len() && n < at {
        i += if b[i] == b'"' { 2 } else { 1 };
        n += 1;
    }
    i.min(text.len())
}

/// Refuses data-file values a header template would insert but a header cannot hold:
/// the first bad value of each such column, at its place in the data file.
fn header_columns(sink: &mut Sink<'_>, data: &DataFeed, csv: &CsvRows, endpoints: &[Endpoint]) {
    let mut users: BTreeMap<usize, (&str, &str)> = BTreeMap::new();
    for e in endpoints {
        for h in &e.headers {
            for c in h.value.columns() {
                users.entry(c).or_insert((h.name.as_str(), e.name.as_str()));
            }
        }
    }
    let mut text = None;
    for (col, (header, endpoint)) in users {
        let mut bad = data
            .rows
            .iter()
            .enumerate()
            .filter_map(|(r, row)| Some((r, check::header_value(row.get(col)?)?)));
        let Some((row, first)) = bad.next() else {
            continue;
        };
        let more = bad.count();
        let text: &String =
            text.get_or_insert_with(|| std::fs::read_to_string(&csv.path).unwrap_or_default());
        let mut csv_sink = Sink::new(&csv.shown, text);
        let at = csv_offset(text, csv.starts[row], col, first.offset);
        csv_sink.at(
            at,
            format!(
                "a `{}` value has {}, which header `{header}` of endpoint `{endpoint}` cannot send{}",
                data.columns[col],
                check::describe(first.c),
                if more > 0 {
                    format!(" ({} rows have such values; this is the first)", more + 1)
                } else {
                    String::new()
                }
            ),
            Some("remove it from the data file, or use the column only in paths and bodies: a header value holds tab and printable characters only".into()),
        );
        sink.found.extend(csv_sink.found);
    }
}

/// Refuses `[lists]` values a header template would insert but a header cannot hold.
fn header_lists(
    sink: &mut Sink<'_>,
    lists: &BTreeMap<String, raw::S<Vec<raw::S<String>>>>,
    endpoints: &[Endpoint],
) {
    let mut users: BTreeMap<usize, (&str, &str)> = BTreeMap::new();
    for e in endpoints {
        for h in &e.headers {
            for l in h.value.lists() {
                users.entry(l).or_insert((h.name.as_str(), e.name.as_str()));
            }
        }
    }
    for (index, (header, endpoint)) in users {
        let Some((name, values)) = lists.iter().nth(index) else {
            continue;
        };
        for v in values.get_ref() {
            if let Some(bad) = check::header_value(v.get_ref()) {
                let at = sink.string_body_start(&v.span()) + bad.offset;
                sink.at(
                    at.min(v.span().end),
                    format!(
                        "a value of list `{name}` has {}, which header `{header}` of endpoint `{endpoint}` cannot send",
                        check::describe(bad.c)
                    ),
                    Some("remove it: a value put into a header holds tab and printable characters only".into()),
                );
            }
        }
    }
}

/// What every endpoint is built with.
struct EndpointCx<'a> {
    default_headers: &'a BTreeMap<String, raw::S<String>>,
    names: &'a Names<'a>,
    env: &'a dyn Fn(&str) -> Option<String>,
    is_secret: &'a dyn Fn(&str) -> bool,
    /// The target URL's path, which the engine puts before every path.
    prefix: &'a str,
}

/// One step from the top of a `json` body to a value in it.
#[derive(Debug, Clone)]
enum JsonStep {
    Key(String),
    Index(usize),
}

/// A `${VAR}` in a `json` body that could not be resolved: where, and why.
struct JsonInterpError {
    at: Vec<JsonStep>,
    in_key: bool,
    error: InterpError,
}

/// Interpolates `${VAR}` in every string and key of a `json` body.
struct JsonInterp<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
    /// Where the walk is.
    at: Vec<JsonStep>,
    /// Whether any value came from the environment.
    from_env: bool,
    /// What could not be resolved.
    problems: Vec<JsonInterpError>,
    /// Every value that came from the environment, with its variable's name.
    values: Vec<(String, String)>,
}

impl JsonInterp<'_> {
    fn text(&mut self, s: &str, in_key: bool) -> String {
        match interpolate(s, self.env) {
            Ok(i) => {
                self.from_env |= i.from_env;
                for e in &i.env {
                    self.values
                        .push((e.name.clone(), i.value[e.value.clone()].to_string()));
                }
                i.value
            }
            Err(error) => {
                self.problems.push(JsonInterpError {
                    at: self.at.clone(),
                    in_key,
                    error,
                });
                s.to_string()
            }
        }
    }

    /// `v` as JSON, interpolated.
    fn value(&mut self, v: &toml::Value) -> serde_json::Value {
        match v {
            toml::Value::String(s) => serde_json::Value::String(self.text(s, false)),
            toml::Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, x) in items.iter().enumerate() {
                    self.at.push(JsonStep::Index(i));
                    out.push(self.value(x));
                    self.at.pop();
                }
                serde_json::Value::Array(out)
            }
            toml::Value::Table(t) => {
                let mut out = serde_json::Map::new();
                for (k, x) in t {
                    self.at.push(JsonStep::Key(k.clone()));
                    let key = self.text(k, true);
                    let value = self.value(x);
                    self.at.pop();
                    out.insert(key, value);
                }
                serde_json::Value::Object(out)
            }
            other => serde_json::to_value(other).expect("TOML values convert to JSON"),
        }
    }
}

/// Where the string at `at` in the `json` of endpoint `index` is written in scenario
/// `text` (its key when `in_key`). The file is parsed again, with every span, only to
/// place an error.
fn json_span(text: &str, index: usize, at: &[JsonStep], in_key: bool) -> Option<Range<usize>> {
    let doc = toml::de::DeTable::parse(text).ok()?;
    let endpoint = doc.get_ref().get("endpoint")?.get_ref().get(index)?;
    let mut node = endpoint.get_ref().get("json")?;
    for (i, step) in at.iter().enumerate() {
        match step {
            JsonStep::Index(n) => node = node.get_ref().get(*n)?,
            JsonStep::Key(k) if in_key && i + 1 == at.len() => {
                let toml::de::DeValue::Table(t) = node.get_ref() else {
                    return None;
                };
                let (key, _) = t.iter().find(|(key, _)| key.get_ref() == k)?;
                return Some(key.span());
            }
            JsonStep::Key(k) => node = node.get_ref().get(k.as_str())?,
        }
    }
    Some(node.span())
}

/// The body of a `json` endpoint, interpolated, and whether it holds an environment value.
fn json_body(
    sink: &mut Sink<'_>,
    index: usize,
    j: &raw::S<toml::Value>,
    env: &dyn Fn(&str) -> Option<String>,
    secrets: &mut Secrets,
) -> Option<(serde_json::Value, bool)> {
    let mut walk = JsonInterp {
        env,
        at: Vec::new(),
        from_env: false,
        problems: Vec::new(),
        values: Vec::new(),
    };
    let json = walk.value(j.get_ref());
    for (name, value) in &walk.values {
        secrets.add(name, value);
    }
    for p in &walk.problems {
        let span = json_span(sink.text, index, &p.at, p.in_key).unwrap_or_else(|| j.span());
        let at = sink.string_body_start(&span) + p.error.offset;
        sink.at(
            at.min(span.end),
            p.error.message.clone(),
            p.error.hint.clone(),
        );
    }
    walk.problems.is_empty().then_some((json, walk.from_env))
}

/// `s` for a message: whole when short, else its start and its length.
fn shorten(s: &str) -> String {
    if s.chars().count() <= 64 {
        format!("`{s}`")
    } else {
        let start: String = s.chars().take(32).collect();
        format!("`{start}...` ({} bytes)", s.len())
    }
}

fn endpoint(
    sink: &mut Sink<'_>,
    index: usize,
    e: &raw::Endpoint,
    cx: &EndpointCx<'_>,
    secrets: &mut Secrets,
) -> Option<Endpoint> {
    let (names, env) = (cx.names, cx.env);
    let name = e.name.get_ref().trim().to_string();
    let mut ok = true;
    if name.is_empty() {
        sink.span(e.name.span(), "endpoint name is empty", None);
        ok = false;
    }
    let before = sink.found.len();
    no_control_chars(
        sink,
        &e.name,
        "endpoint name",
        "remove it: reports show endpoint names, and junit.xml cannot hold control characters",
    );
    ok &= sink.found.len() == before;
    let method = e
        .method
        .as_ref()
        .map_or("GET".to_string(), |m| m.get_ref().to_ascii_uppercase());
    let bad_method = method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic());
    if let Some(m) = e.method.as_ref().filter(|_| bad_method) {
        sink.span(
            m.span(),
            format!("`{method}` is not an HTTP method"),
            Some("use GET, POST, PUT, PATCH, DELETE, HEAD or OPTIONS".into()),
        );
        ok = false;
    }
    let path_text = interp(sink, &e.path, env, Some(&mut *secrets));
    let path = path_text.and_then(|p| {
        if !p.value.starts_with('/') {
            sink.span(
                e.path.span(),
                format!("path {} must start with `/`", written(&e.path)),
                Some("the path is appended to the target URL, e.g. \"/api/health\"".into()),
            );
            return None;
        }
        let t = template(sink, &e.path, &p, Escape::Url, names)?;
        if let Some(problem) = check::path(cx.prefix, &p.value, true) {
            path_problem(sink, &e.path, &p, "path", problem);
            return None;
        }
        Some(t)
    });

    let mut headers = Vec::new();
    let mut merged: BTreeMap<String, &raw::S<String>> = BTreeMap::new();
    for (k, v) in cx.default_headers.iter().chain(e.headers.iter()) {
        merged.retain(|existing, _| !existing.eq_ignore_ascii_case(k));
        merged.insert(k.clone(), v);
    }
    for (k, v) in merged {
        if !check::header_name_ok(&k) {
            let hint = if k.len() > 65_535 {
                "a header name holds at most 65535 bytes"
            } else {
                "a header name holds letters, digits and !#$%&'*+-.^_`|~ only"
            };
            sink.span(
                v.span(),
                format!("{} is not a valid header name", shorten(&k)),
                Some(hint.into()),
            );
            ok = false;
            continue;
        }
        if let Some(value) = interp(sink, v, env, Some(&mut *secrets)) {
            // The value may be a secret: say which character, never the value; and of a
            // value from the environment not even the character.
            if let Some(bad) = check::header_template(&value.value) {
                let hint = "remove it: a header value holds tab and printable characters only";
                match place(sink, v, &value, bad.offset) {
                    (at, None) => sink.at(
                        at,
                        format!(
                            "header `{k}` has {} in its value, which a header cannot hold",
                            check::describe(bad.c)
                        ),
                        Some(hint.into()),
                    ),
                    (at, Some(name)) => sink.at(
                        at,
                        format!(
                            "header `{k}` ({}) has a character a header cannot hold in the value of `${{{name}}}`",
                            written(v)
                        ),
                        Some(format!("{hint}; fix {name}")),
                    ),
                }
                ok = false;
                continue;
            }
            if let Some(t) = template(sink, v, &value, Escape::None, names) {
                headers.push(Header {
                    secret: value.from_env || (cx.is_secret)(&k),
                    name: k,
                    value: t,
                });
            }
        }
    }

    let mut body_secret = false;
    let body = match (&e.body, &e.json) {
        (Some(b), Some(j)) => {
            sink.span(
                j.span(),
                "an endpoint takes `body` or `json`, not both",
                None,
            );
            let _ = b;
            None
        }
        (Some(b), None) => interp(sink, b, env, Some(&mut *secrets)).and_then(|text| {
            body_secret = text.from_env;
            template(sink, b, &text, Escape::None, names)
        }),
        (None, Some(j)) => {
            let t = json_body(sink, index, j, env, secrets).and_then(|(json, from_env)| {
                body_secret = from_env;
                let text = serde_json::to_string(&json).expect("JSON values serialize");
                match Template::compile(&text, Escape::JsonString, names) {
                    Ok(t) => Some(t),
                    Err(err) => {
                        sink.span(j.span(), format!("in `json`: {}", err.message), err.hint);
                        None
                    }
                }
            });
            if !headers
                .iter()
                .any(|h| h.name.eq_ignore_ascii_case("content-type"))
            {
                headers.push(Header {
                    name: "content-type".into(),
                    value: Template::literal("application/json"),
                    secret: false,
                });
            }
            t
        }
        (None, None) => None,
    };

    let weight = match &e.weight {
        None => 1,
        Some(w) if (0..=1_000_000).contains(w.get_ref()) => *w.get_ref() as u32,
        Some(w) => {
            sink.span(
                w.span(),
                format!("weight {} is out of range", w.get_ref()),
                Some("use a whole number from 0 to 1000000".into()),
            );
            ok = false;
            0
        }
    };

    let mut checks = Checks {
        body_contains: e.checks.body_contains.clone(),
        ..Checks::default()
    };
    if let Some(st) = &e.checks.status {
        for &code in st.get_ref() {
            if !(100..=599).contains(&code) {
                sink.span(
                    st.span(),
                    format!("status {code} is not an HTTP status code"),
                    Some("use codes from 100 to 599".into()),
                );
                ok = false;
            } else {
                checks.status.push(code as u16);
            }
        }
    }
    for jc in &e.checks.json {
        let c = jc.get_ref();
        let Some(pointer) = json_pointer(c.path.get_ref()) else {
            sink.span(
                c.path.span(),
                format!("`{}` is not a supported JSON path", c.path.get_ref()),
                Some("write e.g. \"$.status\" or \"$.data.items[0].id\"".into()),
            );
            ok = false;
            continue;
        };
        let expect = match (&c.equals, c.exists) {
            (Some(v), None) => {
                JsonExpect::Equals(serde_json::to_value(v).expect("TOML values convert to JSON"))
            }
            (None, Some(b)) => JsonExpect::Exists(b),
            _ => {
                sink.span(
                    jc.span(),
                    "a JSON check needs exactly one of `equals` or `exists`",
                    Some("write e.g. { path = \"$.status\", equals = \"ok\" }".into()),
                );
                ok = false;
                continue;
            }
        };
        checks.json.push(JsonCheck {
            path: c.path.get_ref().clone(),
            pointer,
            expect,
        });
    }

    let path = path?;
    ok.then_some(Endpoint {
        name,
        method,
        path,
        headers,
        body,
        body_secret,
        weight,
        checks,
    })
}

/// `$.a.b[0]` (or `a.b[0]`) to the JSON pointer `/a/b/0`.
fn json_pointer(path: &str) -> Option<String> {
    let p = path.strip_prefix('$').unwrap_or(path);
    let mut out = String::new();
    let mut seg = String::new();
    let mut chars = p.chars().peekable();
    let flush = |seg: &mut String, out: &mut String| {
        if !seg.is_empty() {
            out.push('/');
            out.push_str(&seg.replace('~', "~0").replace('/', "~1"));
            seg.clear();
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '.' => flush(&mut seg, &mut out),
            '[' => {
                flush(&mut seg, &mut out);
                let idx: String = chars.by_ref().take_while(|&c| c != ']').collect();
                if idx.is_empty() || !idx.chars().all(|c| c.is_ascii_digit()) {
                    return None;
                }
                out.push('/');
                out.push_str(&idx);
            }
            ']' => return None,
            c => seg.push(c),
        }
    }
    flush(&mut seg, &mut out);
    (!out.is_empty()).then_some(out)
}

/// The load of `l`. `stages_blanked`: its stages were unreadable and are reported
/// already, so their absence is not reported again and no load is built.
fn load(
    sink: &mut Sink<'_>,
    l: &raw::S<raw::Load>,
    timeout: Duration,
    stages_blanked: bool,
) -> Option<Load> {
    let span = l.span();
    let l = l.get_ref();
    let none = Vec::new();
    let (raw_stages, stages_span) = l
        .stages
        .as_ref()
        .map_or((&none, span.clone()), |s| (s.get_ref(), s.span()));
    let model = match l.model.as_ref().map(|m| (m.get_ref().as_str(), m.span())) {
        Some(("open", _)) => LoadModel::Open,
        Some(("closed", _)) => LoadModel::Closed,
        Some((other, at)) => {
            sink.span(
                at,
                format!("unknown load model `{other}`"),
                Some("use \"open\" (arrival rate) or \"closed\" (virtual users)".into()),
            );
            return None;
        }
        // No `model`: the stages say which (rates are open, virtual users closed).
        None => {
            let stages = raw_stages;
            if !stages.is_empty() && stages.iter().all(|s| s.get_ref().target_rps.is_some()) {
                LoadModel::Open
            } else if !stages.is_empty() && stages.iter().all(|s| s.get_ref().vus.is_some()) {
                LoadModel::Closed
            } else if stages_blanked {
                return None;
            } else {
                sink.span(
                    span.clone(),
                    "the load has no `model`, and its stages do not say which (target_rps for open, vus for closed)",
                    Some("add model = \"open\" (arrival rate) or model = \"closed\" (virtual users)".into()),
                );
                return None;
            }
        }
    };
    let mut stages = Vec::new();
    if stages_blanked {
        return None;
    }
    if raw_stages.is_empty() {
        sink.span(
            stages_span.clone(),
            "no stages",
            Some("add e.g. stages = [{ duration = \"30s\", target_rps = 60 }]".into()),
        );
    }
    for st in raw_stages {
        let s = st.get_ref();
        let d = duration(sink, &s.duration, "stage duration");
        let target = match (model, &s.target_rps, &s.vus) {
            (LoadModel::Open, Some(r), None) => {
                if !(r.get_ref().is_finite() && *r.get_ref() >= 0.0) {
                    sink.span(
                        r.span(),
                        format!("target_rps {} must be zero or more", r.get_ref()),
                        None,
                    );
                }
                Some(*r.get_ref())
            }
            (LoadModel::Closed, None, Some(v)) => {
                if !(0..=100_000).contains(v.get_ref()) {
                    sink.span(
                        v.span(),
                        format!("vus {} must be between 0 and 100000", v.get_ref()),
                        None,
                    );
                }
                Some(*v.get_ref() as f64)
            }
            (LoadModel::Open, _, _) => {
                sink.span(
                    st.span(),
                    "an open-model stage needs `target_rps` (and no `vus`)",
                    Some("write { duration = \"30s\", target_rps = 60 }".into()),
                );
                None
            }
            (LoadModel::Closed, _, _) => {
                sink.span(
                    st.span(),
                    "a closed-model stage needs `vus` (and no `target_rps`)",
                    Some("write { duration = \"30s\", vus = 10 }".into()),
                );
                None
            }
        };
        if let (Some(d), Some(target)) = (d, target) {
            if d.is_zero() {
                sink.span(
                    s.duration.span(),
                    "stage duration must be greater than zero",
                    Some(DURATION_HINT.into()),
                );
            }
            stages.push(Stage {
                duration: d,
                target,
            });
        }
    }
    let start = match model {
        LoadModel::Open => l.start_rps.as_ref().map(|s| *s.get_ref()),
        LoadModel::Closed => l.start_vus.as_ref().map(|s| *s.get_ref() as f64),
    }
    .unwrap_or_else(|| stages.first().map_or(0.0, |s| s.target));
    if l.start_rps.is_some() && (start < 0.0 || !start.is_finite()) {
        sink.at(
            span.start,
            "the start rate or VU count must be zero or more",
            None,
        );
    }
    let peak = stages.iter().map(|s| s.target).fold(start, f64::max);
    if !stages.is_empty() && peak <= 0.0 {
        sink.span(
            stages_span,
            "the load never rises above zero",
            Some(match model {
                LoadModel::Open => "give a stage a positive target_rps".to_string(),
                LoadModel::Closed => "give a stage a positive vus".to_string(),
            }),
        );
    }
    let max_in_flight = match &l.max_in_flight {
        Some(m) if *m.get_ref() >= 1 => *m.get_ref() as usize,
        Some(m) => {
            sink.span(
                m.span(),
                format!("max_in_flight {} must be at least 1", m.get_ref()),
                None,
            );
            1
        }
        None => default_max_in_flight(peak, timeout),
    };
    let connections = match &l.connections {
        None => None,
        Some(c) if (1..=1_000_000).contains(c.get_ref()) => Some(*c.get_ref() as usize),
        Some(c) => {
            sink.span(
                c.span(),
                format!("connections {} must be between 1 and 1000000", c.get_ref()),
                Some("a fixed pool of N connections for the run, e.g. connections = 64".into()),
            );
            None
        }
    };
    let ratio = |sink: &mut Sink<'_>, v: &Option<raw::S<f64>>, default: f64, name: &str| match v {
        Some(r) if (0.0..=1.0).contains(r.get_ref()) => *r.get_ref(),
        Some(r) => {
            sink.span(
                r.span(),
                format!("{name} {} must be between 0 and 1", r.get_ref()),
                None,
            );
            default
        }
        None => default,
    };
    let validity = Validity {
        min_achieved_ratio: ratio(sink, &l.min_achieved_ratio, 0.95, "min_achieved_ratio"),
        max_late_ratio: ratio(sink, &l.max_late_ratio, 0.01, "max_late_ratio"),
        max_dropped_ratio: ratio(sink, &l.max_dropped_ratio, 0.001, "max_dropped_ratio"),
        mode: match &l.validity {
            None => loadgate_slo::judge::ValidityMode::Robust,
            Some(v) => match loadgate_slo::judge::ValidityMode::from_name(v.get_ref()) {
                Some(m) => m,
                None => {
                    sink.span(
                        v.span(),
                        format!("unknown validity `{}`", v.get_ref()),
                        Some("use \"robust\" (the default) or \"strict\"".into()),
                    );
                    loadgate_slo::judge::ValidityMode::Robust
                }
            },
        },
    };
    let think_time = l
        .think_time
        .as_ref()
        .and_then(|t| duration(sink, t, "think_time"))
        .unwrap_or(Duration::ZERO);
    if let (LoadModel::Open, Some(t)) = (model, &l.think_time) {
        sink.span(
            t.span(),
            "think_time applies to the closed model only",
            Some("remove it, or use model = \"closed\"".into()),
        );
    }
    let warmup = l
        .warmup
        .as_ref()
        .and_then(|t| duration(sink, t, "warmup"))
        .unwrap_or(Duration::ZERO);
    let total: Duration = stages.iter().map(|s| s.duration).sum();
    // Only a warm-up that was written can be too long; a zero-length run without one is
    // reported by its stage (regression: this unwrapped the missing warm-up's span).
    if let Some(w) = l
        .warmup
        .as_ref()
        .filter(|_| !stages.is_empty() && whole_seconds(warmup) >= total)
    {
        sink.span(
            w.span(),
            format!(
                "warmup ({}, {} as whole seconds) is not shorter than the run ({})",
                humantime::format_duration(warmup),
                humantime::format_duration(whole_seconds(warmup)),
                humantime::format_duration(total)
            ),
            Some("the warm-up counts whole seconds: shorten it or lengthen the stages".into()),
        );
    }
    let late_tolerance = l
        .late_tolerance
        .as_ref()
        .and_then(|t| duration(sink, t, "late_tolerance"))
        .unwrap_or(Duration::from_millis(1));
    let send_window = match &l.send_window {
        Some(w) => match duration(sink, w, "send_window") {
            Some(d) if d >= late_tolerance => {
                sink.span(
                    w.span(),
                    format!(
                        "send_window ({}) must be shorter than late_tolerance ({})",
                        humantime::format_duration(d),
                        humantime::format_duration(late_tolerance)
                    ),
                    Some(
                        "a quarter of late_tolerance or less, or \"0s\" to wake for every send"
                            .into(),
                    ),
                );
                Duration::ZERO
            }
            Some(d) => d,
            None => Duration::ZERO,
        },
        None => default_send_window(late_tolerance),
    };
    if let (LoadModel::Closed, Some(w)) = (model, &l.send_window) {
        sink.span(
            w.span(),
            "send_window applies to the open model only",
            Some("remove it, or use model = \"open\"".into()),
        );
    }
    Some(Load {
        model,
        start,
        stages,
        max_in_flight,
        max_in_flight_set: l.max_in_flight.is_some(),
        connections,
        think_time,
        warmup,
        late_tolerance,
        send_window,
        validity,
        seed: l.seed,
    })
}

fn capacity_plan(sink: &mut Sink<'_>, c: &raw::Capacity) -> CapacityPlan {
    let mut plan = CapacityPlan::default();
    let positive = |sink: &mut Sink<'_>, v: &Option<raw::S<f64>>, name: &str| {
        let r = v.as_ref()?;
        if r.get_ref().is_finite() && *r.get_ref() > 0.0 {
            Some(*r.get_ref())
        } else {
            sink.span(
                r.span(),
                format!("{name} must be a rate above zero, not {}", r.get_ref()),
                Some("write requests per second, e.g. 50".into()),
            );
            None
        }
    };
    if let Some(v) = positive(sink, &c.start_rps, "start_rps") {
        plan.start_rps = v;
    }
    if let Some(v) = positive(sink, &c.max_rps, "max_rps") {
        plan.max_rps = v;
    }
    let step = positive(sink, &c.step_rps, "step_rps");
    match (&c.step_rps, &c.factor) {
        (Some(_), Some(f)) => sink.span(
            f.span(),
            "give either step_rps or factor, not both",
            Some("step_rps adds a fixed rate at each step; factor multiplies it".into()),
        ),
        (None, Some(f)) if f.get_ref().is_finite() && *f.get_ref() > 1.0 => {
            plan.step = CapacityStep::Multiply(*f.get_ref());
        }
        (None, Some(f)) => sink.span(
            f.span(),
            format!("factor must be above 1, not {}", f.get_ref()),
            Some("write e.g. factor = 1.5".into()),
        ),
        (Some(_), None) => {
            if let Some(d) = step {
                plan.step = CapacityStep::Add(d);
            }
        }
        (None, None) => {}
    }
    if plan.max_rps < plan.start_rps {
        let span = c
            .max_rps
            .as_ref()
            .or(c.start_rps.as_ref())
            .map(|v| v.span());
        if let Some(span) = span {
            sink.span(
                span,
                format!(
                    "max_rps ({}) is below start_rps ({})",
                    plan.max_rps, plan.start_rps
                ),
                Some("the search steps up from start_rps to max_rps".into()),
            );
        }
    }
    if let Some(d) = c.step_duration.as_ref() {
        match duration(sink, d, "step_duration") {
            Some(v) if v.is_zero() => sink.span(
                d.span(),
                "step_duration must be greater than zero",
                Some("write e.g. \"30s\"".into()),
            ),
            Some(v) => plan.step_duration = v,
            None => {}
        }
    }
    if let Some(d) = c.settle.as_ref() {
        if let Some(v) = duration(sink, d, "settle") {
            plan.settle = v;
        }
    }
    if let Some(r) = c.refine.as_ref() {
        match u32::try_from(*r.get_ref()) {
            Ok(v) if v <= 10 => plan.refine = v,
            _ => sink.span(
                r.span(),
                format!("refine must be between 0 and 10, not {}", r.get_ref()),
                Some("each refinement is one more step, bisecting the last interval".into()),
            ),
        }
    }
    plan
}

/// The in-flight cap when a scenario sets none: room for the peak rate with every
/// request running into its timeout, with a quarter to spare (a timeout fires up to
/// 10 ms late, and the workers' shares of arrivals are not exactly equal), between 64
/// and 50,000. The cap never binds when the target merely hangs: every request then
/// times out, the target's failure, and no arrival is dropped for want of room.
pub fn default_max_in_flight(peak: f64, timeout: Duration) -> usize {
    let room = peak * (timeout.as_secs_f64() + 0.1) * 1.25;
    (room.ceil() as usize).clamp(64, 50_000)
}

fn budgets(
    sink: &mut Sink<'_>,
    items: &[raw::S<raw::BudgetItem>],
    default_delay: Duration,
) -> Vec<SloBudget> {
    let mut out = Vec::new();
    for item in items {
        let (expr, abort, delay, body_start) = match item.get_ref() {
            raw::BudgetItem::Expr(e) => (
                e.as_str(),
                false,
                None,
                sink.string_body_start(&item.span()),
            ),
            raw::BudgetItem::Table(t) => (
                t.expr.as_str(),
                t.abort_on_fail,
                t.abort_delay.as_deref(),
                item.span().start,
            ),
        };
        let abort_delay = match delay {
            None => default_delay,
            Some(d) => match humantime::parse_duration(d) {
                Ok(d) => d,
                Err(e) => {
                    sink.span(
                        item.span(),
                        format!("abort_delay `{d}` is not a duration ({e})"),
                        DURATION_HINT.to_string(),
                    );
                    continue;
                }
            },
        };
        match loadgate_slo::parse(expr) {
            Ok(budget) => out.push(SloBudget {
                budget,
                abort_on_fail: abort,
                abort_delay,
            }),
            Err(e) => {
                let at = if matches!(item.get_ref(), raw::BudgetItem::Expr(_)) {
                    body_start + e.offset
                } else {
                    body_start
                };
                sink.at(
                    at,
                    format!("invalid SLO budget `{expr}`: {}", e.message),
                    e.hint,
                );
            }
        }
    }
    out
}

fn slo(sink: &mut Sink<'_>, s: &raw::Slo, endpoint_names: &[String]) -> Slo {
    let default_delay = s
        .abort_delay
        .as_ref()
        .and_then(|d| duration(sink, d, "abort_delay"))
        .unwrap_or(Duration::from_secs(10));
    let global = budgets(sink, &s.budgets, default_delay);
    let mut endpoints = Vec::new();
    for (name, table) in &s.endpoint {
        let parsed = budgets(sink, &table.get_ref().budgets, default_delay);
        match endpoint_names.iter().position(|n| n == name) {
            Some(i) => endpoints.extend(parsed.into_iter().map(|b| (i, b))),
            None => sink.span(
                table.span(),
                format!("SLO for endpoint `{name}`, which does not exist"),
                Some(format!("the endpoints are: {}", endpoint_names.join(", "))),
            ),
        }
    }
    Slo { global, endpoints }
}

/// The warm-up as the run measures it: whole seconds, rounded up.
pub fn whole_seconds(warmup: Duration) -> Duration {
    Duration::from_secs(warmup.as_secs_f64().ceil() as u64)
}

#[cfg(test)]
mod tests {
    use super::json_pointer;

    #[test]
    fn json_paths_become_pointers() {
        assert_eq!(json_pointer("$.status").as_deref(), Some("/status"));
        assert_eq!(
            json_pointer("$.data.items[0].id").as_deref(),
            Some("/data/items/0/id")
        );
        assert_eq!(json_pointer("a/b").as_deref(), Some("/a~1b"));
        assert_eq!(json_pointer("$.x[a]"), None);
        assert_eq!(json_pointer("$"), None);
    }
}
