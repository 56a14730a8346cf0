//! Rendering every report of a synthetic 1-hour run (3600 one-second intervals, 5
//! endpoints): `report.html` with 7 inline charts, the standalone SVGs, `junit.xml` and
//! `summary.md`. Budget: well under 1 s.
//!
//! Run: `cargo bench -p loadgate-benches --bench render`.

// criterion's macros generate undocumented items (`main`, the group function).
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use loadgate_report::testing::one_hour;

fn render_one_hour(c: &mut Criterion) {
    let run = one_hour();
    let bytes: usize = loadgate_report::render(&run, None)
        .iter()
        .map(|a| a.contents.len())
        .sum();
    eprintln!("one render writes {bytes} bytes in all");
    c.bench_function("render_one_hour_run", |b| {
        b.iter(|| black_box(loadgate_report::render(black_box(&run), None)));
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(Duration::from_secs(8));
    targets = render_one_hour
}
criterion_main!(benches);
