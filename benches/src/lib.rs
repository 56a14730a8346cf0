//! Criterion benchmarks live in `hot_paths.rs`; this library is empty.
