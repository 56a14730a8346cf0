//! `loadgate init URL`: a starter scenario that validates and runs as written.

mod common;

use common::*;

/// Issue 19: `loadgate init URL` writes a commented starter scenario that validates and
/// runs as written, and never replaces a file.
#[test]
fn init_writes_a_scenario_that_validates_and_runs() {
    let target = loadgate_target::loopback(FAST_PROFILE);
    let c = Case::new("");
    let url = format!("{}/api/health", target.base_url());
    let o = c.loadgate(&["init", &url, "--out", "gate.toml"], &[]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let o = c.loadgate(&["validate", "gate.toml"], &[]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let o = c.loadgate(
        &["run", "gate.toml", "-d", "2s", "--out", "{out}", "-q"],
        &[],
    );
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert_eq!(c.summary()["scenario"], "gate");
    let o = c.loadgate(&["init", &url, "--out", "gate.toml"], &[]);
    assert_eq!(code(&o), 2, "an existing file stays: {}", text(&o));
}
