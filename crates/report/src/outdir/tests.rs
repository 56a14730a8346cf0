use std::path::Path;
use std::time::{Duration, SystemTime};

use loadgate_metrics::{Outcome, Sample, Shard, StreamSample, Timing};

use super::*;
use crate::rundir::{Holds, KeptBaseline};
use crate::testing::synthetic;

/// The names in `dir`, sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// The file `name` in `dir`.
fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap()
}

/// `value` as [`OutDir`] writes a JSON file: pretty, with a final newline. (Read back,
/// a float may differ in its last bit: serde_json's parser is not exact.)
fn pretty(value: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(value).unwrap() + "\n"
}

/// Second `t` of a two-endpoint run: a few requests of every timing, `t` of them late.
fn second(t: u64) -> Interval {
    let mut data = Shard::new(2, 60_000_000);
    for i in 0..(20 + t) {
        let endpoint = (i % 2) as usize;
        data.record_send(endpoint, Some(100 + i), i < t);
        let outcome = if i == 3 {
            Outcome::Http5xx
        } else {
            Outcome::Success
        };
        data.record(&Sample {
            service_us: 900 * (i + 1),
            status: Some(200),
            bytes: 10,
            connect_us: (i == 0).then_some(250),
            ttfb_us: Some(500 * (i + 1)),
            stream: Some(StreamSample {
                ttft_us: Some(300 * (i + 1)),
                events: 3,
                tokens: 4,
                oversized: u64::from(i % 3 == 0),
                skipped: u64::from(i % 4 == 0),
            }),
            // Some successes over their goodput limits, fewer from the actual send.
            good: outcome == Outcome::Success && i % 5 != 1,
            good_service: outcome == Outcome::Success && i % 10 != 1,
            cookies_dropped: u32::from(i % 7 == 0) * 3,
            ..Sample::new(endpoint, outcome, 1_000 * (i + 1))
        });
        data.record_gap(endpoint, 40 * (i + 1));
    }
    // Drops on the second endpoint's row (a flow's, say): read back on it.
    for _ in 0..t {
        data.record_drop(1);
    }
    Interval {
        index: t,
        warmup: t == 0,
        drain: false,
        target: 20.0,
        pauses: None,
        data,
    }
}

#[test]
fn streamed_files_read_back_as_they_were_written() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = OutDir::at(tmp.path().to_path_buf()).unwrap();
    let names = vec!["a".to_string(), "b c".to_string()];
    let started = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let seconds: Vec<Interval> = (0..3).map(second).collect();

    let mut series = dir.series(&names);
    for s in &seconds {
        series.append(s);
    }
    let log = dir.interval_log(&names, SystemTime::UNIX_EPOCH).write_all(
        std::iter::once(LogEvent::Started(started))
            .chain(seconds.iter().cloned().map(LogEvent::Interval)),
    );
    dir.close_streams(series, log);
    assert!(dir.is_whole(), "{}", dir.problem_lines());

    let summary = synthetic(&["a", "b c"], 3, 1, 10).summary;
    let run = RunDir::with(tmp.path(), summary, None, "").unwrap();
    assert_eq!(run.series.len(), 3);
    for (row, s) in run.series.iter().zip(&seconds) {
        assert_eq!(
            *row,
            crate::SeriesRow::of(s.index, s.warmup, s.target, &names, &s.data)
        );
    }
    let (read, start_ms) = crate::interval_log::intervals_of(&run, 60_000_000).unwrap();
    assert_eq!(start_ms, Some(1_800_000_000_000), "the start the run told");
    assert_eq!(read.len(), 3);
    for ((_, shard), s) in read.iter().zip(&seconds) {
        for (e, written) in shard.endpoints().iter().zip(s.data.endpoints()) {
            for t in Timing::ALL {
                assert_eq!(
                    e.timings[t], written.timings[t],
                    "{t:?} of second {}",
                    s.index
                );
            }
            assert_eq!(e.connects, written.connects);
            // Said in a recovered run's summary too.
            assert_eq!(e.cookies_dropped, written.cookies_dropped);
            assert_eq!(e.dropped, written.dropped, "second {}", s.index);
            assert!(written.cookies_dropped > 0);
            // What goodput and attainment windows count, in merge and recovery too.
            assert_eq!(
                (e.good, e.good_service),
                (written.good, written.good_service),
                "second {}",
                s.index
            );
            assert!(written.good <= written.good_service && written.good < written.successes());
        }
    }
}

#[test]
fn an_interval_log_told_no_start_begins_at_the_fallback_and_is_valid_when_empty() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = OutDir::at(tmp.path().to_path_buf()).unwrap();
    let fallback = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let log = dir
        .interval_log(&["a".to_string()], fallback)
        .write_all(std::iter::empty());
    dir.close_streams(dir.series(&["a".to_string()]), log);
    let text = std::fs::read_to_string(tmp.path().join(file::INTERVALS)).unwrap();
    assert!(text.starts_with("#loadgate "), "{text}");
    assert!(text.contains("#[StartTime: 1700000000.000"), "{text}");
    assert_eq!(
        std::fs::read(tmp.path().join(file::SERIES)).unwrap(),
        b"",
        "no interval, no row"
    );
}

#[test]
fn a_whole_file_replaces_a_planted_link_and_leaves_no_temporary_file() {
    let tmp = tempfile::tempdir().unwrap();
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::write(&elsewhere, "theirs").unwrap();
    let out = tmp.path().join("out");
    let dir = OutDir::at(out.clone()).unwrap();
    std::os::unix::fs::symlink(&elsewhere, out.join(file::SUMMARY)).unwrap();
    let run = synthetic(&["a"], 3, 1, 10);
    assert!(dir.write_results(&run.summary, run.histograms.as_ref().unwrap()));
    assert_eq!(std::fs::read_to_string(&elsewhere).unwrap(), "theirs");
    assert!(std::fs::symlink_metadata(out.join(file::SUMMARY))
        .unwrap()
        .is_file());
    assert_eq!(
        names_in(&out),
        [file::LOCK, file::HISTOGRAMS, file::SUMMARY],
        "no temporary file stays"
    );
    assert_eq!(read(&out, file::SUMMARY), pretty(&run.summary));
    assert_eq!(read(&out, file::HISTOGRAMS), pretty(&run.histograms));
    assert_eq!(RunDir::load(&out).unwrap().histograms, run.histograms);
}

#[test]
fn one_loadgate_at_a_time_writes_into_a_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let _first = OutDir::at(tmp.path().to_path_buf()).unwrap();
    let second = OutDir::at(tmp.path().to_path_buf()).unwrap_err();
    assert_eq!(
        second.to_string(),
        format!(
            "cannot write into {}: another loadgate is writing into it now; two runs in one folder would mix their files (give each its own --out)",
            tmp.path().display()
        )
    );
}

#[test]
fn a_new_run_clears_an_earlier_runs_files_and_nothing_else() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    for (name, text) in [
        (file::REPORT, "<html>"),
        ("notes.txt", "mine"),
        (".summary.json.12-3.partial", "{"),
        (".other.12-3.partial", "not ours"),
    ] {
        std::fs::write(out.join(name), text).unwrap();
    }
    // No summary of loadgate's own: the folder is not a run's, and its files stay.
    let kept = OutDir::new_run(Some(&out), tmp.path(), "s", SystemTime::now(), 0).unwrap();
    drop(kept);
    assert!(out.join(file::REPORT).exists());

    std::fs::write(out.join(file::SUMMARY), r#"{"loadgate_version": "0.1.0"}"#).unwrap();
    let _dir = OutDir::new_run(Some(&out), tmp.path(), "s", SystemTime::now(), 0).unwrap();
    assert_eq!(
        names_in(&out),
        [".loadgate.lock", ".other.12-3.partial", "notes.txt"]
    );
}

/// Review: a FIFO planted as `run.json` (or `summary.json`, `capacity.json`) in
/// `--out` hung `loadgate run` before any load: telling whether the folder held a run
/// read it, and a read of a FIFO waits for a writer that never comes. (A link to
/// `/dev/zero` by that name read without end.) Only a regular file is evidence.
#[test]
fn a_fifo_planted_by_a_run_files_name_neither_hangs_nor_counts_as_a_run() {
    for name in file::WRITTEN_BY_LOADGATE {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        std::fs::create_dir(&out).unwrap();
        rustix::fs::mkfifoat(rustix::fs::CWD, out.join(name), 0o644.into()).unwrap();
        std::fs::write(out.join(file::REPORT), "<html>").unwrap();
        let (tell, told) = std::sync::mpsc::channel();
        let (dir, reports) = (out.clone(), tmp.path().to_path_buf());
        std::thread::spawn(move || {
            let made = OutDir::new_run(Some(&dir), &reports, "s", SystemTime::now(), 0);
            let _ = tell.send(made.map(drop).map_err(|e| e.to_string()));
        });
        let made = told
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("a FIFO named {name} hung the new run"));
        assert!(made.is_ok(), "{name}: {made:?}");
        // Not a run of loadgate's own: nothing else in the folder was removed.
        assert!(out.join(file::REPORT).exists(), "{name}");
    }
}

#[test]
fn a_run_directory_without_room_is_refused_and_not_left_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let e = OutDir::new_run(None, tmp.path(), "shop", at, u64::MAX).unwrap_err();
    let shown = tmp.path().join("shop-20270115T080000Z");
    let text = e.to_string();
    assert!(
        text.starts_with(&format!(
            "cannot write the run directory {}: ",
            shown.display()
        )),
        "{text}"
    );
    assert!(
        text.ends_with(
            "free, and this run writes up to about 16.0 EiB\n  hint: pass --out DIR with a writable folder that has room"
        ),
        "{text}"
    );
    assert!(!shown.exists());
}

#[test]
fn what_could_not_be_written_is_said_per_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = OutDir::at(tmp.path().to_path_buf()).unwrap();
    assert!(dir.is_whole() && dir.report_written());
    dir.note("--summary-md /x", "denied");
    assert!(dir.report_written());
    dir.note_unrendered("cannot read it");
    assert!(!dir.is_whole() && !dir.report_written());
    assert_eq!(
        dir.problem_lines(),
        format!(
            "not written: --summary-md /x in {0}: denied\nnot written: report.html in {0}: the reports were not rendered: cannot read it\n",
            tmp.path().display()
        )
    );
}

#[test]
fn a_kept_baseline_renders_again_without_its_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = OutDir::at(tmp.path().to_path_buf()).unwrap();
    assert!(KeptBaseline::load(tmp.path()).unwrap().is_none());
    let base = synthetic(&["a", "b"], 5, 1, 10);
    let new = synthetic(&["a", "b"], 5, 1, 12);
    let comparison = loadgate_slo::compare::compare(
        &base.summary,
        &base.histograms().unwrap(),
        &new.summary,
        &new.histograms().unwrap(),
        &[],
    );
    dir.keep_baseline(&base, &comparison);
    let kept = KeptBaseline::load(tmp.path()).unwrap().unwrap();
    assert_eq!(
        read(tmp.path(), "baseline.summary.json"),
        pretty(&base.summary)
    );
    assert_eq!(read(tmp.path(), file::COMPARE_JSON), pretty(&comparison));
    assert_eq!(kept.run.summary.endpoint_names(), ["a", "b"]);
    assert_eq!(kept.run.histograms, base.histograms);
    assert_eq!(kept.run.series, base.series);
    assert_eq!(kept.comparison.regression, comparison.regression);
}

#[test]
fn a_folder_says_what_it_holds() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path();
    assert_eq!(Holds::of(p), Holds::Unknown);
    let dir = OutDir::at(p.to_path_buf()).unwrap();
    assert_eq!(Holds::of(p), Holds::Nothing);
    assert!(dir.write_capacity(&crate::testing::capacity("svc")));
    assert_eq!(Holds::of(p), Holds::Capacity);
    std::fs::write(p.join(file::RUN), "{}").unwrap();
    assert_eq!(Holds::of(p), Holds::Unfinished);
    std::fs::write(p.join(file::SUMMARY), "{}").unwrap();
    assert_eq!(Holds::of(p), Holds::Run);
}

#[test]
fn latest_follows_the_newest_run_and_leaves_a_real_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let reports = tmp.path();
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let dir = OutDir::new_run(None, reports, "a", at, 0).unwrap();
    dir.link_latest(reports).unwrap();
    let latest = reports.join(file::LATEST);
    assert_eq!(
        std::fs::read_link(&latest).unwrap(),
        Path::new("a-20270115T080000Z")
    );
    let elsewhere = OutDir::at(reports.join("x").join("b")).unwrap();
    elsewhere.link_latest(reports).unwrap();
    assert_eq!(
        std::fs::read_link(&latest).unwrap(),
        Path::new("a-20270115T080000Z"),
        "a folder outside reports is not linked"
    );

    std::fs::remove_file(&latest).unwrap();
    std::fs::create_dir(&latest).unwrap();
    std::fs::write(latest.join("kept"), "").unwrap();
    let e = dir.link_latest(reports).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!(
            "{} was not updated to this run (",
            latest.display()
        )) && e.ends_with(
            "): it is not a link loadgate made; remove it to have it follow the newest run"
        ),
        "{e}"
    );
    assert!(latest.join("kept").exists());
    assert!(
        !names_in(reports).iter().any(|n| n.ends_with(".partial")),
        "{:?}",
        names_in(reports)
    );
}
