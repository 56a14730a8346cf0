//! Scenario files: what load to send, to which endpoints, and which SLO budgets to hold.
//!
//! [`load`] reads a TOML scenario, rejects unknown keys, interpolates `${VAR}` from the
//! environment, compiles request templates once, loads the data file, parses SLO budgets,
//! and reports *every* problem it finds with file:line:column and a hint. The result is
//! a validated [`Scenario`] that the engine can run without further checks: paths and
//! headers are checked with the rules the engine sends them by. [`load_with`] takes a
//! target that replaces the file's (`--target`).
//!
//! Values from the environment are secrets: a diagnostic shows the scenario's text
//! (`${API_TOKEN}`), never the value, and [`Scenario::secrets`] holds every value that
//! was substituted so callers can keep it out of what they print and write
//! ([`Secrets::redact`]).
//!
//! Not here: sending requests, measuring, rendering.

mod check;
mod diag;
mod interp;
mod json_path;
mod judging;
mod model;
mod raw;
mod secrets;
mod template;

pub use diag::{line_col, Diagnostic, Diagnostics};
pub use interp::{interpolate, EnvValue, InterpError, Interpolated, Origin};
pub use json_path::{JsonPath, PathError, Step as PathStep};
pub use judging::{RunFacts, WeightlessBudget};
pub use model::auth::{Auth, AuthScope};
pub use model::flow::{Capture, CaptureFrom, Flow, Step, Until, Var};
pub use model::load::{default_max_in_flight, default_send_window, whole_seconds};
pub use model::scenario::{
    CapacityPlan, CapacityStep, Checks, DataFeed, DataMode, Endpoint, Header, HealthWait,
    HttpVersion, JsonCheck, JsonExpect, Load, LoadModel, Overrides, Scenario, Slo, SloBudget,
    Stage, TlsPaths, Validity,
};
pub use model::stream::{GoodLimits, Stream, StreamDone, StreamKind};
pub use model::target::{redact_url, without_credentials, LoadOptions, Target, TargetError};
pub use model::value::parse_duration;
pub use model::{log_tag, MAX_NAME_BYTES};
pub use secrets::{Secrets, MIN_SECRET_LEN};
pub use template::{Escape, Names, RenderCtx, Template, TemplateError};
// The type of `Validity::mode`, nameable without depending on loadgate-slo.
pub use loadgate_slo::judge::ValidityMode;

use std::path::{Path, PathBuf};

/// A scenario file that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read scenario {}: {source}{}", path.display(), url_hint(path))]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file was read but is not a valid scenario.
    #[error("{0}")]
    Invalid(#[from] Diagnostics),
}

/// A hint for a scenario path that looks like a URL without its scheme
/// (`127.0.0.1:8080/api/health`, `staging.example.com/api`).
fn url_hint(path: &Path) -> String {
    let s = path.to_string_lossy();
    let host = s.split('/').next().unwrap_or("");
    let looks_like_host = !s.ends_with(".toml")
        && !host.is_empty()
        && (host.contains(':') || host.contains('.') || host == "localhost")
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    if looks_like_host {
        format!("\n  hint: for a URL run, give the scheme: http://{s}")
    } else {
        String::new()
    }
}

/// Reads and validates the scenario at `path`, taking `${VAR}` values from the process
/// environment.
pub fn load(path: &Path) -> Result<Scenario, LoadError> {
    load_with(path, &LoadOptions::default())
}

/// Like [`load`], with what the caller decides beyond the file: with a target in
/// `options`, the file's `target` is not read (see [`LoadOptions::target`]). `run` and
/// `validate` both load through here, so they accept and refuse the same files.
pub fn load_with(path: &Path, options: &LoadOptions) -> Result<Scenario, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(parse_with(
        path,
        &text,
        &|name| std::env::var(name).ok(),
        options,
    )?)
}

/// Validates scenario `text` as if read from `path` (relative data files resolve against
/// its folder), with `${VAR}` values from `env`.
pub fn parse(
    path: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Scenario, Diagnostics> {
    parse_with(path, text, env, &LoadOptions::default())
}

/// Like [`parse`], with `options` as in [`load_with`].
pub fn parse_with(
    path: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
    options: &LoadOptions,
) -> Result<Scenario, Diagnostics> {
    model::build(path, text, env, options)
}
