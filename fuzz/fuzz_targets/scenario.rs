//! Any bytes as a scenario file: an error or a scenario, never a panic or a hang.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = loadgate_scenario::parse(std::path::Path::new("fuzz.toml"), text, &|_| None);
    }
});
