//! Any text as an SLO budget or a regression budget: an error or a budget, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = loadgate_slo::parse(text);
    let _ = loadgate_slo::compare::parse_budget(text);
});
