//! The run directory's file names: the one place they are spelled. Every command writes
//! and reads a run directory (or a capacity search's folder) through these.

/// What a run is about to do, written before any load (`RunStart`): a killed run is
/// recognised, and recovered, by it.
pub const RUN: &str = "run.json";
/// The judged run (`RunSummary`).
pub const SUMMARY: &str = "summary.json";
/// The measured, warm-up and drain histograms of every endpoint, serialized.
pub const HISTOGRAMS: &str = "histograms.json";
/// One row per second (`SeriesRow`), appended as the run goes.
pub const SERIES: &str = "timeseries.jsonl";
/// Each second's histograms in HdrHistogram's interval-log format, appended as the run
/// goes; merge and the recovery of a killed run read it.
pub const INTERVALS: &str = "intervals.hlog";
/// The key an interval-log entry of `scope`'s timing `t` is filed under, as its reader
/// sees it: `all` for all endpoints' latency (untagged in the log), `all.<timing>` for
/// their other timings; an endpoint's log tag (`loadgate_scenario::log_tag`) for its
/// latency, `<tag>.<timing>` for the others (`analyze.ttfb`).
pub fn interval_key(endpoint_tag: Option<&str>, t: loadgate_metrics::Timing) -> String {
    match (endpoint_tag, t) {
        (None, loadgate_metrics::Timing::Latency) => INTERVALS_ALL.to_string(),
        (Some(tag), loadgate_metrics::Timing::Latency) => tag.to_string(),
        (scope, t) => format!("{}.{}", scope.unwrap_or(INTERVALS_ALL), t.name()),
    }
}

/// The key of the untagged interval-log entries: all endpoints' latency.
pub const INTERVALS_ALL: &str = "all";

/// A capacity search's result.
pub const CAPACITY: &str = "capacity.json";
/// A comparison with a baseline.
pub const COMPARE_JSON: &str = "compare.json";
/// The same comparison for people.
pub const COMPARE_MD: &str = "compare.md";
/// The page.
pub const REPORT: &str = "report.html";
/// One testcase per budget, for CI.
pub const JUNIT: &str = "junit.xml";
/// The verdict and tables in Markdown, for a CI step summary or a PR comment.
pub const SUMMARY_MD: &str = "summary.md";
/// The name prefix of a baseline's files kept in the run directory compared with it
/// (`baseline.summary.json`, `baseline.histograms.json`, `baseline.timeseries.jsonl`), so
/// that `loadgate report` renders the comparison again without the baseline's folder.
pub const BASELINE_PREFIX: &str = "baseline.";
/// Held (flock) by the one command writing into a folder.
pub const LOCK: &str = ".loadgate.lock";
/// The link in the reports folder to the newest run directory.
pub const LATEST: &str = "latest";
/// The name a new run directory's write probe is made beside (under a temporary name of
/// its own, removed at once).
pub const WRITE_TEST: &str = "loadgate-write-test";
/// The charts, each also a standalone file.
pub const CHARTS: [&str; 11] = [
    "latency.svg",
    "latency-endpoints.svg",
    "streams.svg",
    "throughput.svg",
    "goodput.svg",
    "errors.svg",
    "spectrum.svg",
    "status.svg",
    "late-dropped.svg",
    "knee-latency.svg",
    "knee-throughput.svg",
];

/// The files a run's summary lists (`RunSummary::files`), by what they hold.
pub fn summary_files() -> std::collections::BTreeMap<String, String> {
    [
        ("histograms", HISTOGRAMS),
        ("timeseries", SERIES),
        ("interval_log", INTERVALS),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The files whose presence says a folder holds a run loadgate wrote.
pub const WRITTEN_BY_LOADGATE: [&str; 3] = [RUN, SUMMARY, CAPACITY];

/// Every name a loadgate command writes into an output folder. A folder that already
/// holds a run loses these (and only these) before a new run starts, so no file of the
/// old run is read as the new one's.
pub fn every() -> Vec<String> {
    let mut v: Vec<String> = [
        RUN,
        SUMMARY,
        HISTOGRAMS,
        SERIES,
        INTERVALS,
        CAPACITY,
        COMPARE_JSON,
        COMPARE_MD,
        REPORT,
        JUNIT,
        SUMMARY_MD,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend(
        [SUMMARY, HISTOGRAMS, SERIES]
            .iter()
            .map(|s| format!("{BASELINE_PREFIX}{s}")),
    );
    v.extend(CHARTS.iter().map(|s| s.to_string()));
    v
}

#[cfg(test)]
mod tests {
    /// Every file the renderers make is a name this module spells, so a folder that is
    /// cleared for a new run loses all of an old run's files and nothing else.
    #[test]
    fn every_rendered_file_is_a_known_name() {
        let every = super::every();
        let run = crate::testing::synthetic(&["a", "b"], 10, 2, 20);
        // Goodput limits and streams add a chart each.
        let good = crate::testing::synthetic_goodput(&["a"], 10, 2, 20, &[], 1_000, |_, _| {
            (loadgate_metrics::Outcome::Success, 500, 400)
        });
        let streamed = crate::testing::synthetic_streamed(&["a"], 10, 2, 20, &[], |_, _| {
            (loadgate_metrics::Outcome::Success, 500, 400)
        });
        let cap = crate::testing::capacity("svc");
        let rendered = [&run, &good, &streamed]
            .into_iter()
            .flat_map(|r| crate::render(r, None));
        for a in rendered.chain(crate::render_capacity(&cap)) {
            assert!(
                every.contains(&a.name),
                "{} is not in file::every()",
                a.name
            );
        }
    }
}
