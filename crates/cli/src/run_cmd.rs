//! `loadgate run`: scenario + flags -> target -> engine -> run directory -> exit code.

use std::sync::Arc;
use std::time::Duration;

use loadgate_engine::{EngineError, Observer, RunConfig, StopReason, StopSignal};
use loadgate_scenario::{LoadModel, RunFacts};
use loadgate_slo::judge::Stop;
use loadgate_slo::summary::{Measured, RunStart, RunSummary, SegmentInfo, Stopped, SCHEMA_VERSION};
use loadgate_slo::window::WindowOutcome;

use crate::exit::{Exit, Failure};
use crate::output;
use crate::progress::Progress;
use crate::reach::{check_start_at, health_of, preflight, start_target};
use crate::run_flags::{apply_flags, load_scenario, mask_secrets, target_flag};
use crate::{console, observers, RunArgs};
use loadgate_report::outdir::{self, OutDir};
use loadgate_report::{HistogramsFile, RunDir};

pub(crate) fn run(mut args: RunArgs) -> Result<Exit, Failure> {
    let options = loadgate_scenario::LoadOptions {
        target: target_flag(args.load.target.as_deref())?,
        open_load: false,
    };
    let mut scenario = load_scenario(&args, &options)?;
    mask_secrets(&mut scenario, &options);
    apply_flags(&mut scenario, &args)?;
    // What every segment must share is the whole load's plan, taken before this
    // segment's budgets are scaled to its share.
    let plan = args.segment.map(|_| scenario.segment_plan());
    if let Some(seg) = args.segment {
        scenario.share_throughput(&seg.to_string(), seg.count);
    }
    let scenario = Arc::new(scenario);
    // Fail fast, before any traffic, on a bad baseline or budget.
    let budgets = crate::report_cmd::budgets(&args.budgets)?;
    let baseline = match &args.baseline {
        Some(b) => Some(crate::report_cmd::load_run(b, "--baseline")?),
        None => None,
    };

    check_start_at(args.start_at)?;
    let open = scenario.load.model == LoadModel::Open;
    crate::startup::check_descriptors(&scenario, args.load.workers, open)?;
    if let (Some(seg), Some(data)) = (args.segment, &scenario.data) {
        if (data.rows.len() as u64) < seg.count {
            return Err(Failure::config(format!(
                "--segment {seg}: the data file has {} rows, fewer than the {} segments, and each segment sends rows of its own\n  hint: add rows, or split the load into at most {} segments",
                data.rows.len(),
                seg.count,
                data.rows.len()
            )));
        }
    }
    args.load.load_tls(&scenario)?;
    preflight(
        &scenario,
        &args.load,
        health_of(&scenario, &args.load).is_some(),
    )?;
    // The target before the folder: a run whose target never starts or never becomes
    // healthy (exit 4), or that is interrupted while waiting, sent no load, so it makes
    // no run directory and leaves a folder used again with the run it held.
    // The embedded target lives as long as this function.
    // Signals are watched from here: a Ctrl-C while the target is awaited ends the wait.
    let stop = StopSignal::default();
    watch_signals(stop.clone());
    let (base_url, _target) = start_target(&scenario, &args.load, &stop)?;
    let started = std::time::SystemTime::now();
    let needs = outdir::bytes_needed(
        (scenario.load.duration() + scenario.load.warmup).as_secs_f64(),
        scenario.endpoints.len(),
    );
    let dir = OutDir::new_run(
        args.out.as_deref(),
        &args.reports_dir,
        &scenario.name,
        started,
        needs,
    )?;
    // What the run was asked, before it starts: with the streamed files, enough to judge
    // it again if the process is killed before it writes its summary.
    // Without it a killed run could not be judged: refused, as an unwritable folder is.
    let start = masked_start(RunStart {
        schema_version: SCHEMA_VERSION,
        loadgate_version: env!("CARGO_PKG_VERSION").to_string(),
        scenario: scenario.name.clone(),
        scenario_file: args.scenario.display().to_string(),
        target: scenario.target_display(),
        bases: scenario.endpoint_bases(),
        model: scenario.load.model.name().to_string(),
        duration_s: scenario.load.duration().as_secs_f64(),
        load: scenario.load_summary(),
        endpoints: scenario.row_names(),
        flows: scenario.composite_names(),
        steps: scenario.step_names(),
        auth: scenario.auth_names(),
        plan: plan.clone().unwrap_or_else(|| scenario.segment_plan()),
        segment: args.segment.map(|seg| SegmentInfo {
            index: seg.index + 1,
            count: seg.count,
            start_at: args
                .start_at
                .map(|t| humantime::format_rfc3339_seconds(t).to_string()),
            started_unix_ms: 0,
            plan: plan.clone().expect("a segment run has a plan"),
        }),
        histogram_max_us: scenario.histogram_max_us(),
        goodput_limits: scenario.goodput_limits(),
        git_commit: ci_commit(),
        ci_run: ci_run_id(),
    });
    dir.write_start(&start)?;

    let progress = Progress::new(args.quiet, scenario.load.duration());
    if !args.quiet {
        say_err!(
            "loadgate {}: scenario `{}` against {}{}, {} model for {}{}",
            env!("CARGO_PKG_VERSION"),
            scenario.name,
            scenario.target_display(),
            // The address sent to, when the target's name does not say it (embedded).
            if base_url == scenario.target_display() {
                String::new()
            } else {
                format!(" ({base_url})")
            } + &bases_shown(&scenario),
            scenario.load.model.name(),
            humantime::format_duration(scenario.load.duration()),
            if scenario.load.warmup.is_zero() {
                String::new()
            } else {
                format!(
                    " (warm-up {})",
                    humantime::format_duration(scenario.load.warmup)
                )
            }
        );
    }

    if let Some(ahead) = args
        .start_at
        .and_then(|t| t.duration_since(std::time::SystemTime::now()).ok())
        .filter(|_| !args.quiet)
    {
        say_err!(
            "waiting {} for --start-at {} before the first request",
            humantime::format_duration(Duration::from_secs(ahead.as_secs())),
            humantime::format_rfc3339_seconds(args.start_at.unwrap_or(started))
        );
    }
    let names: Vec<String> = scenario.row_names();
    let open = scenario.load.model == LoadModel::Open;
    // The budgets are watched beside the files: windows judged as seconds finish, and
    // the run stopped at an `abort_on_fail` breach.
    let mut watch = scenario.budget_watch();
    let data = observers::write_series(&dir, started, &names, open, &progress, |files| {
        let cfg = RunConfig {
            scenario: scenario.clone(),
            base_url: base_url.clone(),
            insecure: args.load.insecure,
            workers: args.load.workers,
            stop: stop.clone(),
            grace: args.grace,
            segment: args.segment.unwrap_or_default(),
            start_at: args.start_at,
            pin_workers: !args.load.no_pin,
            tls_files: args.load.tls_files.clone(),
        };
        let mut observers: Vec<&mut dyn Observer> = vec![&mut watch];
        observers.extend(files.iter_mut().map(|o| &mut **o as &mut dyn Observer));
        loadgate_engine::run(cfg, &mut observers)
    });
    progress.finish();
    let data = data
        .map_err(EngineError::Thread)
        .and_then(|run| run)
        .map_err(|e| {
            // A run that never ran leaves no run directory (nor a file that looks like
            // a run's in a folder used again).
            dir.abandon();
            crate::startup::engine_failure(e)
        })?;

    // Judge.
    let windows = watch.finish();
    let j = scenario.judge(&run_facts(&names, &data, &windows));
    let (stop, stop_detail) = match &data.stop {
        StopReason::Completed => ("completed", None),
        StopReason::Aborted { scope, budget } => (
            "aborted",
            Some(format!(
                "abort_on_fail budget `{budget}` ({scope}) was breached"
            )),
        ),
        StopReason::Interrupted => (
            "interrupted",
            Some(format!(
                "interrupted after {:.1} s of the {:.1} s profile; the budgets judge what was measured until then",
                data.ended_s,
                scenario.load.duration().as_secs_f64()
            )),
        ),
    };
    let warm = data.warmup.overall();
    // What run.json said before the load (its segment now with the instant its schedule
    // began), with what the run measured.
    let identity = RunSummary {
        segment: start.segment.clone().map(|seg| SegmentInfo {
            started_unix_ms: data
                .started_at
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            ..seg
        }),
        ..start.unmeasured(loadgate_report::summary_files())
    };
    let measured = Measured {
        names: &names,
        measured: &data.measured,
        warmup: Some(&warm),
        started_at: humantime::format_rfc3339_seconds(data.started_at).to_string(),
        ended_at: humantime::format_rfc3339_seconds(data.ended_at).to_string(),
        warmup_s: data.warmup_s,
        measured_s: data.measured_s,
        drain_s: data.drain_s,
        workers: data.workers,
        pinned_cpus: data.pinned.iter().flatten().copied().collect(),
        abandoned: data.abandoned,
        pauses: data.pauses,
    };
    let summary = RunSummary::judged(
        identity,
        &measured,
        j,
        Stopped {
            stop: stop.to_string(),
            detail: stop_detail,
        },
    );
    // Its free text is masked of secrets before anything is written or rendered.
    let mut summary = summary;
    mask_summary(&mut summary);
    // The comparison may turn a pass into a regression, so it comes before the files.
    let histograms = HistogramsFile::new(&names, &data.measured, &data.warmup);
    let mut report_note = String::new();
    let this = match RunDir::with(dir.path(), summary.clone(), Some(histograms.clone()), "") {
        Ok(this) => Some(this),
        Err(e) => {
            dir.note_unrendered(e);
            None
        }
    };
    let mut this = this;
    let comparison = match (&baseline, &this) {
        (Some(base), Some(this)) => Some(crate::report_cmd::compare_runs(base, this, &budgets)?),
        _ => None,
    };
    if let (Some(base), Some(c)) = (&baseline, &comparison) {
        // A regression never hides a failure or an invalid run.
        summary.verdict = c.verdict(summary.verdict);
        if let Some(this) = &mut this {
            this.summary.verdict = summary.verdict;
        }
        report_note.push_str(&format!(
            "baseline: {}: {}\n",
            base.dir.display(),
            if !c.incomparable.is_empty() {
                format!("not comparable ({})", c.incomparable.join("; "))
            } else if c.regression {
                "REGRESSION".to_string()
            } else {
                "no regression".to_string()
            }
        ));
    }
    if dir.write_results(&summary, &histograms) {
        output::link_latest(&args.reports_dir, &dir);
    }
    if let Some(this) = &this {
        let b = baseline
            .as_ref()
            .zip(comparison.as_ref())
            .map(|(run, comparison)| loadgate_report::Baseline { run, comparison });
        if let Some(b) = &b {
            dir.keep_baseline(b.run, b.comparison);
        }
        if !args.no_report {
            crate::report_cmd::write_reports(this, &dir, args.summary_md.as_deref(), b.as_ref());
            if dir.report_written() {
                report_note.push_str(&format!("report: {}\n", dir.report_path().display()));
            }
        }
    }
    report_note.push_str(&dir.problem_lines());
    if args.format == "json" {
        // The document on stdout, everything for people on stderr.
        let human = tell_text(&summary, dir.path(), &report_note);
        output::print_err(human.trim_end());
        let mut doc =
            serde_json::to_string_pretty(&summary).map_err(|e| Failure::internal(e.to_string()))?;
        doc.push('\n');
        output::print_out(&doc);
        return Ok(Exit::of(summary.verdict, summary.stop == "interrupted").after_writing(&dir));
    }
    Ok(tell(&summary, dir.path(), &report_note).after_writing(&dir))
}

/// Prints a finished run's tables, rate, reasons and verdict (with `note`: where the
/// reports are, or why they are not), and returns its exit code. `merge` shares it.
pub(crate) fn tell(summary: &RunSummary, dir: &std::path::Path, note: &str) -> Exit {
    output::print_out(&tell_text(summary, dir, note));
    Exit::of(summary.verdict, summary.stop == "interrupted")
}

/// What [`tell`] prints.
fn tell_text(summary: &RunSummary, dir: &std::path::Path, note: &str) -> String {
    let mut out = String::new();
    out.push('\n');
    out.push_str(&console::endpoint_table(
        &summary.endpoints,
        &summary.overall,
        summary.model == "open",
    ));
    out.push('\n');
    out.push_str(&console::slo_table(&summary.slo));
    if let Some(r) = &summary.rate {
        out.push_str(&console::rate_line(r));
    }
    if let Some(p) = summary.pauses.filter(|p| p.count > 0) {
        out.push_str(&format!("generator pauses: {}\n", p.describe()));
    }
    if summary.drain_s >= 0.1 {
        out.push_str(&format!(
            "drain: {:.1} s after the measured phase for the requests still in flight (counted where they were due, not in any rate)\n",
            summary.drain_s
        ));
    }
    for reason in &summary.invalid_reasons {
        out.push_str(&format!("invalid: {reason}\n"));
    }
    if let Some(d) = &summary.stop_detail {
        out.push_str(&format!("stopped early: {d}\n"));
    }
    out.push_str(&format!("results: {}\n", dir.display()));
    out.push_str(note);
    out.push_str(&console::verdict_line(
        summary.verdict,
        &console::verdict_detail(summary),
    ));
    out
}

/// What the engine's `data` says about the run, as the verdict takes it.
pub(crate) fn run_facts<'a>(
    names: &'a [String],
    data: &'a loadgate_engine::RunData,
    windows: &'a [WindowOutcome],
) -> RunFacts<'a> {
    RunFacts {
        names,
        measured: &data.measured,
        measured_s: data.measured_s,
        scheduled: data.scheduled,
        missed: data.missed,
        pauses: data.pauses,
        stop: match data.stop {
            StopReason::Completed => Stop::Completed,
            StopReason::Aborted { .. } => Stop::Aborted,
            StopReason::Interrupted => Stop::Interrupted,
        },
        windows,
    }
}

/// A summary with its free text masked of secrets (see [`output::mask`]): the target as
/// shown, the scenario file's name, the stop detail and the reasons. Budgets, names,
/// words and numbers are loadgate's or the scenario file's own, and stay as they are.
pub(crate) fn mask_summary(s: &mut RunSummary) {
    output::mask(&mut s.target);
    s.bases.values_mut().for_each(output::mask);
    output::mask(&mut s.scenario_file);
    if let Some(d) = &mut s.stop_detail {
        output::mask(d);
    }
    s.invalid_reasons.iter_mut().for_each(output::mask);
    // Masked in the engine before they were cut short; again here, as all free text.
    for e in s
        .endpoints
        .iter_mut()
        .chain(std::iter::once(&mut s.overall))
    {
        e.failures.texts_mut(output::mask);
    }
}

/// `run.json` with its free text masked, as [`mask_summary`] masks a summary.
fn masked_start(mut start: RunStart) -> RunStart {
    output::mask(&mut start.target);
    start.bases.values_mut().for_each(output::mask);
    output::mask(&mut start.scenario_file);
    start
}

/// The endpoints sent to a base of their own, for the start line: `, and agent to
/// http://ml:8000` (empty without any).
pub(crate) fn bases_shown(scenario: &loadgate_scenario::Scenario) -> String {
    scenario
        .endpoint_bases()
        .iter()
        .map(|(name, base)| format!(", endpoint `{name}` to {base}"))
        .collect()
}

/// The commit CI built, as CI systems name it.
fn ci_commit() -> Option<String> {
    first_env(&[
        "GITHUB_SHA",
        "CI_COMMIT_SHA",
        "GIT_COMMIT",
        "BUILDKITE_COMMIT",
    ])
}

/// The CI run, as CI systems name it.
fn ci_run_id() -> Option<String> {
    first_env(&[
        "GITHUB_RUN_ID",
        "CI_PIPELINE_ID",
        "BUILD_ID",
        "BUILDKITE_BUILD_ID",
    ])
}

/// The first of `names` set (and non-empty) in the environment.
fn first_env(names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| std::env::var(n).ok().filter(|v| !v.trim().is_empty()))
}

/// SIGINT / SIGTERM: the first stops issuing (in-flight requests get the grace period),
/// the second stops waiting. Either way the run's results are written. Returns once the
/// handlers are in place (so the thread's descriptors are taken before the workers'),
/// or with a warning when they cannot be: the run goes on, and a signal then ends it
/// the default way. Never panics: tokio's signal pipe exists already
/// (`startup::prepare`), so a runtime short of descriptors is an error here.
pub(crate) fn watch_signals(stop: StopSignal) {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
    let spawned = std::thread::Builder::new().name("loadgate-signals".into()).spawn(move || {
        let rt = match tokio::runtime::Builder::new_current_thread().enable_io().build() {
            Ok(rt) => rt,
            Err(e) => {
                let _ = ready_tx.send(Err(format!("cannot start its runtime: {e}")));
                return;
            }
        };
        rt.block_on(async move {
            #[cfg(unix)]
            let (mut int, mut term) = {
                use tokio::signal::unix::{signal, SignalKind};
                match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
                    (Ok(i), Ok(t)) => (i, t),
                    (Err(e), _) | (_, Err(e)) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                }
            };
            let _ = ready_tx.send(Ok(()));
            loop {
                #[cfg(unix)]
                let what = tokio::select! {
                    _ = int.recv() => "interrupted (Ctrl-C)",
                    _ = term.recv() => "terminated (SIGTERM)",
                };
                #[cfg(not(unix))]
                let what = match tokio::signal::ctrl_c().await {
                    Ok(()) => "interrupted (Ctrl-C)",
                    Err(_) => return,
                };
                if stop.is_triggered() {
                    say_err!("\nstopping now; writing what was measured");
                    stop.abandon();
                    return;
                }
                say_err!("\n{what}: no new requests; waiting for in-flight ones (a second Ctrl-C or SIGTERM stops now)");
                stop.trigger();
            }
        });
    });
    let why = match spawned {
        Err(e) => e.to_string(),
        Ok(_) => match ready_rx.recv() {
            Ok(Ok(())) => return,
            Ok(Err(why)) => why,
            Err(_) => "the signal thread ended".into(),
        },
    };
    say_err!(
        "warning: Ctrl-C and SIGTERM will not stop the run gracefully (no results written): {why}"
    );
}
