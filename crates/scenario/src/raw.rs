//! The scenario file exactly as written: serde structs that reject unknown keys and keep
//! source spans for every value validated after parsing.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_spanned::Spanned;

pub(crate) type S<T> = Spanned<T>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct File {
    pub name: Option<S<String>>,
    pub target: S<String>,
    pub target_profile: Option<S<String>>,
    #[serde(default)]
    pub redact_headers: Vec<String>,
    #[serde(default)]
    pub defaults: Defaults,
    #[serde(default)]
    pub lists: BTreeMap<String, S<Vec<S<String>>>>,
    pub data: Option<Data>,
    #[serde(rename = "endpoint")]
    pub endpoints: Option<S<Vec<Endpoint>>>,
    #[serde(rename = "flow")]
    pub flows: Option<S<Vec<Flow>>>,
    pub load: Option<S<Load>>,
    #[serde(default)]
    pub slo: Slo,
    pub health: Option<Health>,
    pub capacity: Option<Capacity>,
    pub tls: Option<Tls>,
    pub auth: Option<S<Auth>>,
}

/// `[auth]`: the request that fetches a token, where the token is in its answer, and
/// how the other requests carry it. The request's keys are an endpoint's.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Auth {
    pub name: Option<S<String>>,
    pub token: Option<S<Capture>>,
    pub header: Option<S<String>>,
    pub scheme: Option<S<String>>,
    pub scope: Option<S<String>>,
    pub refresh_before: Option<S<String>>,
    pub method: Option<S<String>>,
    pub path: Option<S<String>>,
    pub base: Option<S<String>>,
    pub timeout: Option<S<String>>,
    #[serde(default)]
    pub headers: BTreeMap<String, S<String>>,
    pub body: Option<S<String>>,
    pub json: Option<S<toml::Value>>,
    #[serde(default)]
    pub checks: Checks,
    pub compression: Option<S<bool>>,
    pub redirects: Option<S<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Tls {
    pub ca_file: Option<S<String>>,
    pub cert_file: Option<S<String>>,
    pub key_file: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Capacity {
    pub start_rps: Option<S<f64>>,
    pub step_rps: Option<S<f64>>,
    pub factor: Option<S<f64>>,
    pub max_rps: Option<S<f64>>,
    pub step_duration: Option<S<String>>,
    pub settle: Option<S<String>>,
    pub refine: Option<S<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Health {
    pub path: S<String>,
    pub timeout: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Defaults {
    pub timeout: Option<S<String>>,
    pub first_byte_timeout: Option<S<String>>,
    pub idle_timeout: Option<S<String>>,
    pub goodput: Option<Goodput>,
    pub connect_timeout: Option<S<String>>,
    #[serde(default)]
    pub headers: BTreeMap<String, S<String>>,
    pub http: Option<S<String>>,
    pub max_body: Option<S<String>>,
    pub compression: Option<S<bool>>,
    pub redirects: Option<S<i64>>,
    /// A cookie jar per flow iteration (open model) or VU (closed model).
    pub cookies: Option<S<bool>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Data {
    pub file: S<String>,
    #[serde(default)]
    pub mode: Option<S<String>>,
}

/// A `[[flow]]`: a weighted journey of `[[flow.step]]`s.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Flow {
    pub name: S<String>,
    pub weight: Option<S<i64>>,
    /// The pause between one step's end and the next step's send.
    pub think_time: Option<S<String>>,
    /// Its own cookie jar setting (else `[defaults] cookies`).
    pub cookies: Option<S<bool>>,
    #[serde(rename = "step")]
    pub steps: Option<S<Vec<Endpoint>>>,
}

/// A polling step's condition, interval and most attempts.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Until {
    pub path: S<String>,
    pub equals: Option<toml::Value>,
    pub exists: Option<bool>,
    pub every: Option<S<String>>,
    pub max: Option<S<i64>>,
}

/// A value a step captures: a JSON path, or a table naming where it comes from.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum Capture {
    Path(String),
    Table(CaptureTable),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CaptureTable {
    // Plain strings: an untagged enum's content loses its spans; errors point at the
    // capture as a whole.
    pub json: Option<String>,
    pub header: Option<String>,
    pub cookie: Option<String>,
    pub regex: Option<String>,
    pub secret: Option<bool>,
}

/// An `[[endpoint]]`, or a `[[flow.step]]` (which may instead name an endpoint with
/// `endpoint`, and may `capture`): `name` and `path` are required of both but checked
/// after parsing, so that a step naming an endpoint needs neither.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Endpoint {
    pub name: Option<S<String>>,
    /// A step only: the `[[endpoint]]` this step sends.
    pub endpoint: Option<S<String>>,
    /// A step only: values of the response the later steps use, by variable name.
    #[serde(default)]
    pub capture: BTreeMap<String, S<Capture>>,
    /// A step only: send it again until its answer meets this.
    pub until: Option<S<Until>>,
    #[serde(default)]
    pub method: Option<S<String>>,
    pub path: Option<S<String>>,
    /// Another origin than the target's (`base = "http://ml:8000"`).
    pub base: Option<S<String>>,
    /// The endpoint's own request timeout, in place of `[defaults] timeout`.
    pub timeout: Option<S<String>>,
    #[serde(default)]
    pub headers: BTreeMap<String, S<String>>,
    pub body: Option<S<String>>,
    pub json: Option<S<toml::Value>>,
    pub weight: Option<S<i64>>,
    #[serde(default)]
    pub checks: Checks,
    pub stream: Option<S<String>>,
    pub stream_content: Option<S<String>>,
    pub stream_tokens: Option<S<String>>,
    pub stream_done: Option<S<String>>,
    pub first_byte_timeout: Option<S<String>>,
    pub idle_timeout: Option<S<String>>,
    pub goodput: Option<Goodput>,
    pub compression: Option<S<bool>>,
    pub redirects: Option<S<i64>>,
    /// Whether `[auth]`'s token goes with it (on by default when there is an `[auth]`).
    pub auth: Option<S<bool>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Goodput {
    pub latency: Option<S<String>>,
    pub ttfb: Option<S<String>>,
    pub ttft: Option<S<String>>,
    pub itl: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Checks {
    pub status: Option<S<Vec<i64>>>,
    pub body_contains: Option<String>,
    #[serde(default)]
    pub json: Vec<S<JsonCheck>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct JsonCheck {
    pub path: S<String>,
    pub equals: Option<toml::Value>,
    pub exists: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Load {
    pub model: Option<S<String>>,
    /// Optional here so a `[load]` without stages is one error among the others, not the
    /// parser's stop (see `model::load`).
    pub stages: Option<S<Vec<S<Stage>>>>,
    pub start_rps: Option<S<f64>>,
    pub start_vus: Option<S<i64>>,
    pub max_in_flight: Option<S<i64>>,
    pub connections: Option<S<i64>>,
    pub think_time: Option<S<String>>,
    pub warmup: Option<S<String>>,
    pub late_tolerance: Option<S<String>>,
    pub send_window: Option<S<String>>,
    pub min_achieved_ratio: Option<S<f64>>,
    pub max_late_ratio: Option<S<f64>>,
    pub max_dropped_ratio: Option<S<f64>>,
    pub validity: Option<S<String>>,
    pub seed: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Stage {
    pub duration: S<String>,
    pub target_rps: Option<S<f64>>,
    pub vus: Option<S<i64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Slo {
    #[serde(default)]
    pub budgets: Vec<S<BudgetItem>>,
    #[serde(default)]
    pub abort_delay: Option<S<String>>,
    #[serde(default)]
    pub endpoint: BTreeMap<String, S<EndpointSlo>>,
    #[serde(default)]
    pub flow: BTreeMap<String, S<EndpointSlo>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EndpointSlo {
    #[serde(default)]
    pub budgets: Vec<S<BudgetItem>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum BudgetItem {
    Expr(String),
    Table(BudgetTable),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BudgetTable {
    pub expr: String,
    #[serde(default)]
    pub abort_on_fail: bool,
    pub abort_delay: Option<String>,
}
