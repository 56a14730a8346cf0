//! What the engine's integration tests share: a run's configuration from scenario text.

use std::path::Path;
use std::sync::Arc;

use loadgate_engine::{RunConfig, StopSignal};

/// The whole load of `scenario` (TOML; `${BASE}` is `base`) against `base` with `workers`
/// workers, pinned or not, a 5 s grace and certificates checked.
pub(crate) fn config(scenario: &str, base: &str, workers: usize, pin_workers: bool) -> RunConfig {
    let b = base.to_string();
    let s = loadgate_scenario::parse(Path::new("test.toml"), scenario, &move |n| {
        (n == "BASE").then(|| b.clone())
    })
    .unwrap_or_else(|e| panic!("{e}"));
    RunConfig {
        scenario: Arc::new(s),
        base_url: base.to_string(),
        insecure: false,
        workers,
        stop: StopSignal::default(),
        grace: std::time::Duration::from_secs(5),
        segment: loadgate_engine::Segment::WHOLE,
        start_at: None,
        pin_workers,
        tls_files: Default::default(),
    }
}
