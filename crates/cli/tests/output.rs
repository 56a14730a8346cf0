//! The run directory under a hostile environment: a full disk before and during the load,
//! links planted in the output folder, a kill mid-run, a reused folder, and re-rendering
//! a run (with its baseline) or a capacity search as the command wrote it.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

const OPEN_4S: &str = "model = \"open\"\nstages = [{ duration = \"4s\", target_rps = 50 }]";

/// Runs `script` (sh) in a mount namespace of its own, as root there, so it can mount a
/// small tmpfs that disappears with it. `$LG` is the loadgate binary, `$CASE` the case
/// folder.
fn in_private_mounts(c: &Case, script: &str) -> std::process::Output {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let o = Command::new("unshare")
        .args(["-rm", "sh", "-c", script])
        .current_dir(c.dir.path())
        .env("LG", env!("CARGO_BIN_EXE_loadgate"))
        .env("CASE", c.dir.path())
        .env_remove("LOADGATE_TARGET")
        .output()
        .expect("unshare (util-linux) runs");
    assert!(
        !String::from_utf8_lossy(&o.stderr).contains("unshare failed"),
        "this machine allows no private mount namespace: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Files whose names start with `.` and end with `.partial` under `dir`.
fn temporaries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".partial"))
                .collect()
        })
        .unwrap_or_default()
}

/// Every line of `timeseries.jsonl` in `dir` is a whole JSON row; returns their `t`.
fn whole_rows(dir: &Path) -> Vec<u64> {
    read(&dir.join("timeseries.jsonl"))
        .lines()
        .map(|l| {
            let row: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("cut row `{l}`: {e}"));
            row["t"].as_u64().unwrap()
        })
        .collect()
}

#[test]
fn a_disk_too_full_for_the_run_is_refused_before_any_load_with_exit_7() {
    let c = Case::new(&scenario(OPEN_4S, "budgets = [\"p95 < 2s\"]"));
    let o = in_private_mounts(
        &c,
        r#"mkdir -p disk && mount -t tmpfs -o size=16k tmpfs disk || exit 99
"$LG" run s.toml --out disk/run -q > stdout 2> stderr; echo $? > rc
ls -A disk/run > listing"#,
    );
    assert_eq!(code(&o), 0, "{}", text(&o));
    let dir = c.dir.path();
    assert_eq!(
        read(&dir.join("rc")).trim(),
        "7",
        "{}",
        read(&dir.join("stderr"))
    );
    let err = read(&dir.join("stderr"));
    assert!(err.contains("free") && err.contains("--out"), "{err}");
    assert_eq!(
        read(&dir.join("listing")),
        "",
        "nothing written, no load sent"
    );
}

#[test]
fn a_disk_that_fills_during_the_run_still_gets_the_verdict_and_exit_7() {
    let c = Case::new(&scenario(OPEN_4S, "budgets = [\"p95 < 2s\"]"));
    // The disk fills once the run has written its first interval.
    let o = in_private_mounts(
        &c,
        r#"mkdir -p disk && mount -t tmpfs -o size=8m tmpfs disk || exit 99
"$LG" run s.toml --out disk/run -q > stdout 2> stderr &
pid=$!
i=0
while [ ! -s disk/run/timeseries.jsonl ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done
dd if=/dev/zero of=disk/fill bs=4k 2>/dev/null
wait $pid; echo $? > rc
rm -f disk/fill
cp -a disk/run copy"#,
    );
    assert_eq!(code(&o), 0, "{}", text(&o));
    let dir = c.dir.path();
    let (out, err) = (read(&dir.join("stdout")), read(&dir.join("stderr")));
    // The console has the whole result, and says what is missing.
    assert!(out.contains("verdict: PASS"), "{out}\n{err}");
    assert!(out.contains("p95 < 2s"), "{out}");
    assert!(out.contains("not written: summary.json"), "{out}");
    assert_eq!(
        read(&dir.join("rc")).trim(),
        "7",
        "a pass without its files is not 0"
    );
    let copy = dir.join("copy");
    assert_eq!(
        temporaries(&copy),
        Vec::<String>::new(),
        "no temporary file left"
    );
    assert!(!copy.join("summary.json").exists());
    // What did reach the disk is whole.
    assert!(!whole_rows(&copy).is_empty());
}

#[test]
fn links_planted_in_the_output_folder_are_never_followed() {
    let c = Case::new(&scenario(
        "model = \"open\"\nstages = [{ duration = \"1s\", target_rps = 20 }]",
        "budgets = [\"p95 < 2s\"]",
    ));
    let victim = c.dir.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    let reports = c.dir.path().join("reports");
    let run = reports.join("planted");
    std::fs::create_dir_all(&run).unwrap();
    let mut names: Vec<String> = [
        ".loadgate-write-test",
        "summary.json",
        "histograms.json",
        "timeseries.jsonl",
        "intervals.hlog",
        "report.html",
        "junit.xml",
        "summary.md",
        "latency.svg",
    ]
    .iter()
    .map(|n| n.to_string())
    .collect();
    // The temporary names of earlier versions, and this one's for the next few process ids.
    for n in [
        "summary.json",
        "report.html",
        "timeseries.jsonl",
        "histograms.json",
    ] {
        names.push(format!(".{n}.partial"));
    }
    for n in &names {
        std::os::unix::fs::symlink(&victim, run.join(n)).unwrap();
    }
    std::os::unix::fs::symlink(&victim, reports.join(".latest.tmp")).unwrap();
    let o = c.loadgate(
        &[
            "run",
            "{s}",
            "--out",
            run.to_str().unwrap(),
            "-q",
            "--reports-dir",
            reports.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert_eq!(
        read(&victim),
        "precious",
        "the file outside was not touched"
    );
    for f in [
        "summary.json",
        "histograms.json",
        "timeseries.jsonl",
        "intervals.hlog",
        "report.html",
    ] {
        let meta = std::fs::symlink_metadata(run.join(f)).unwrap();
        assert!(meta.file_type().is_file(), "{f} is a file of its own");
    }
    assert_eq!(temporaries(&run), Vec::<String>::new());
}

#[test]
fn a_killed_run_leaves_every_finished_interval_whole_on_disk() {
    let c = Case::new(&scenario(
        "model = \"open\"\nstages = [{ duration = \"60s\", target_rps = 20 }]",
        "budgets = [\"p95 < 2s\"]",
    ));
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let child = spawn_loadgate(&c, &["run", "{s}", "--out", "{out}", "-q"]);
    let series = c.out().join("timeseries.jsonl");
    let rows = |p: &PathBuf| std::fs::read_to_string(p).map_or(0, |t| t.lines().count());
    for _ in 0..1200 {
        if rows(&series) >= 3 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let seen = rows(&series);
    signal(&child, "-KILL");
    assert!(
        seen >= 3,
        "three intervals on disk while the run went on (saw {seen})"
    );
    let (o, _) = wait_bounded(child, Duration::from_secs(30));
    assert_eq!(o.status.code(), None, "killed");
    let t = whole_rows(&c.out());
    assert!(
        t.len() >= 3,
        "three seconds were on disk before the kill: {t:?}"
    );
    assert_eq!(t, (0..t.len() as u64).collect::<Vec<_>>());
    // The interval log holds the same seconds, each histogram line whole.
    let hlog = read(&c.out().join("intervals.hlog"));
    let untagged: Vec<&str> = hlog
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with('"') && !l.starts_with("Tag="))
        .collect();
    assert!(untagged.len() >= t.len(), "{hlog}");
    for l in untagged {
        assert_eq!(l.split(',').count(), 4, "whole line: {l}");
    }
}

/// A run of `c` at `out` with extra flags.
fn run_into(c: &Case, out: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["run", "{s}", "--out", out, "-q"];
    args.extend_from_slice(extra);
    c.loadgate(&args, &[])
}

#[test]
fn a_baseline_run_renders_again_the_same_and_a_reused_folder_holds_only_the_new_run() {
    let c = Case::new(&scenario(
        "model = \"open\"\nstages = [{ duration = \"2s\", target_rps = 30 }]",
        "budgets = [\"p95 < 2s\"]",
    ));
    let dir = c.dir.path();
    let o = run_into(&c, "base", &[]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let md = dir.join("step-summary.md");
    let o = run_into(
        &c,
        "new",
        &[
            "--baseline",
            "base",
            "--summary-md",
            md.to_str().unwrap(),
            "--budget",
            "p95:+1000%",
        ],
    );
    assert_eq!(code(&o), 0, "{}", text(&o));
    let step = read(&md);
    assert!(
        step.contains("loadgate compare:"),
        "the step summary has the comparison: {step}"
    );
    let rendered: Vec<(String, String)> = [
        "report.html",
        "summary.md",
        "compare.md",
        "junit.xml",
        "latency.svg",
    ]
    .iter()
    .map(|f| (f.to_string(), read(&dir.join("new").join(f))))
    .collect();
    assert!(
        rendered[0].1.contains("aseline"),
        "the report shows the baseline"
    );
    // The baseline's folder is gone; the run directory renders the same files again.
    std::fs::remove_dir_all(dir.join("base")).unwrap();
    let o = c.loadgate(&["report", "new"], &[]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    for (f, before) in &rendered {
        assert_eq!(
            &read(&dir.join("new").join(f)),
            before,
            "{f} rendered again differs"
        );
    }
    // A new run in the same folder leaves nothing of the comparison behind.
    let o = run_into(&c, "new", &[]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    for f in [
        "compare.json",
        "compare.md",
        "baseline.summary.json",
        "baseline.timeseries.jsonl",
    ] {
        assert!(
            !dir.join("new").join(f).exists(),
            "{f} of the earlier run is left"
        );
    }
}
