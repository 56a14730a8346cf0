//! `loadgate run`: scenario + flags -> target -> engine -> run directory -> exit code.

use loadgate_report::file;
use std::sync::Arc;
use std::time::{Duration, Instant};

use loadgate_engine::{EngineError, Observer, RunConfig, StopReason, StopSignal};
use loadgate_scenario::{Header, LoadModel, Overrides, Scenario, Target, Template};
use loadgate_slo::judge::{judge, Input, Stop};
use loadgate_slo::summary::{
    LoadSummary, Measured, RunStart, RunSummary, SegmentInfo, SegmentPlan, Stopped, Verdict,
    SCHEMA_VERSION,
};
use loadgate_slo::watch::{BudgetWatch, Watched};
use loadgate_slo::window::WindowOutcome;

use crate::exit::{Exit, Failure};
use crate::output::{self, OutDir};
use crate::progress::Progress;
use crate::{console, observers, RunArgs};
use loadgate_report::{HistogramsFile, RunDir};

pub(crate) fn run(args: RunArgs) -> Result<Exit, Failure> {
    let options = loadgate_scenario::LoadOptions {
        target: target_flag(args.load.target.as_deref())?,
    };
    let mut scenario = load_scenario(&args, &options)?;
    mask_secrets(&mut scenario, &options);
    apply_flags(&mut scenario, &args)?;
    // What every segment must share is the whole load's plan, taken before this
    // segment's budgets are scaled to its share.
    let plan = args.segment.map(|_| segment_plan(&scenario));
    if let Some(seg) = args.segment {
        share_throughput_budgets(&mut scenario, seg);
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
    preflight(
        &scenario,
        args.load.insecure,
        health_of(&scenario, &args).is_some(),
    )?;
    let started = std::time::SystemTime::now();
    let needs = output::bytes_needed(
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
        model: model_name(scenario.load.model).to_string(),
        duration_s: scenario.load.duration().as_secs_f64(),
        load: load_summary(&scenario),
        endpoints: scenario.endpoints.iter().map(|e| e.name.clone()).collect(),
        plan: plan.clone().unwrap_or_else(|| segment_plan(&scenario)),
        segment: args.segment.map(|seg| SegmentInfo {
            index: seg.index + 1,
            count: seg.count,
            start_at: args
                .start_at
                .map(|t| humantime::format_rfc3339_seconds(t).to_string()),
            started_unix_ms: 0,
            plan: plan.clone().expect("a segment run has a plan"),
        }),
        histogram_max_us: loadgate_engine::histogram_max_us(&scenario),
        git_commit: ci_commit(),
        ci_run: ci_run_id(),
    });
    if !dir.write_json(file::RUN, &start) {
        return Err(Failure {
            exit: Exit::Unwritten,
            message: format!(
                "cannot write the run directory {}: {}\n  hint: pass --out DIR with a writable folder that has room",
                dir.path().display(),
                dir.problem_lines().trim_end()
            ),
        });
    }
    // The embedded target lives as long as this function.
    // Signals are watched from here: a Ctrl-C while the target is awaited ends the wait.
    let stop = StopSignal::default();
    watch_signals(stop.clone());
    let (base_url, _target) = start_target(&scenario, &args, &stop)?;

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
            },
            model_name(scenario.load.model),
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
    let names: Vec<String> = scenario.endpoints.iter().map(|e| e.name.clone()).collect();
    let open = scenario.load.model == LoadModel::Open;
    // The budgets are watched beside the files: windows judged as seconds finish, and
    // the run stopped at an `abort_on_fail` breach.
    let mut watch = budget_watch(&scenario);
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
            // A run that never ran leaves no file that looks like a finished one.
            for name in [file::SERIES, file::INTERVALS] {
                let _ = std::fs::remove_file(dir.path().join(name));
            }
            crate::startup::engine_failure(e)
        })?;

    // Judge.
    let windows = watch.finish();
    let j = judge_run(&scenario, &names, &data, &windows);
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
    let mut verdict = j.verdict;
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
        ..start.unmeasured(file::summary_files())
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
            dir.note(file::REPORT, format!("the reports were not rendered: {e}"));
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
        if c.regression && verdict == Verdict::Pass {
            verdict = Verdict::Regression;
            summary.verdict = verdict;
            if let Some(this) = &mut this {
                this.summary.verdict = verdict;
            }
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
    dir.write_json(file::HISTOGRAMS, &histograms);
    if dir.write_json(file::SUMMARY, &summary) {
        output::link_latest(&args.reports_dir, dir.path());
    }
    if let Some(this) = &this {
        let b = baseline
            .as_ref()
            .zip(comparison.as_ref())
            .map(|(run, comparison)| loadgate_report::Baseline { run, comparison });
        if let Some(b) = &b {
            crate::report_cmd::keep_baseline(&dir, b.run, b.comparison);
        }
        if !args.no_report {
            crate::report_cmd::write_reports(this, &dir, args.summary_md.as_deref(), b.as_ref());
            if dir.problems().iter().all(|p| p.file != file::REPORT) {
                report_note.push_str(&format!(
                    "report: {}\n",
                    dir.path().join(file::REPORT).display()
                ));
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
        return Ok(dir.exit(Exit::of(summary.verdict, summary.stop == "interrupted")));
    }
    Ok(dir.exit(tell(&summary, dir.path(), &report_note)))
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

/// The load asked for, in words and at its peak.
pub(crate) fn load_summary(scenario: &Scenario) -> LoadSummary {
    LoadSummary {
        profile: segment_plan(scenario).profile,
        peak: scenario.load.peak(),
    }
}

/// The health check to wait for before load: `--wait-healthy` wins over `[health]`.
fn health_of(scenario: &Scenario, args: &RunArgs) -> Option<(String, Duration)> {
    match (&args.load.wait_healthy, &scenario.health) {
        (Some(path), _) => Some((path.clone(), args.load.health_timeout)),
        (None, Some(h)) => Some((h.path.clone(), h.timeout)),
        (None, None) => None,
    }
}

/// A start time must lie ahead (one second of slack for clocks and start-up) and within
/// a day, so a typo cannot make a run wait for a year.
fn check_start_at(at: Option<std::time::SystemTime>) -> Result<(), Failure> {
    let Some(at) = at else { return Ok(()) };
    let shown = humantime::format_rfc3339_seconds(at);
    match at.duration_since(std::time::SystemTime::now()) {
        Err(e) if e.duration() > Duration::from_secs(1) => Err(Failure::config(format!(
            "--start-at {shown}: that time passed {} ago, so this segment could not keep the shared schedule\n  hint: start every segment before the agreed time, e.g. --start-at $(date -u -d '+2 min' +%Y-%m-%dT%H:%M:%SZ)",
            humantime::format_duration(Duration::from_secs(e.duration().as_secs()))
        ))),
        Ok(ahead) if ahead > Duration::from_secs(86_400) => Err(Failure::config(format!(
            "--start-at {shown}: that is more than a day ahead\n  hint: pick a time a few minutes from now, in UTC"
        ))),
        _ => Ok(()),
    }
}

/// Checks a URL target before anything is written, without sending it a request: its
/// name resolves, a connection opens and, for https, the TLS handshake succeeds. A
/// target that refuses or cannot be reached is exit 6, like an unresolvable host;
/// when a health check will be waited for, only a failed TLS handshake is (the target
/// may still be starting).
pub(crate) fn preflight(scenario: &Scenario, insecure: bool, health: bool) -> Result<(), Failure> {
    if let Target::Url(u) = &scenario.target {
        resolve(u)?;
        reach(scenario, u, insecure, health)?;
    }
    Ok(())
}

/// The base URL to send load to, starting the embedded target if the scenario asks for
/// it (it runs as long as the returned handle lives), then waiting for health.
pub(crate) fn start_target(
    scenario: &Scenario,
    args: &RunArgs,
    stop: &StopSignal,
) -> Result<(String, Option<loadgate_target::RunningTarget>), Failure> {
    let (base_url, target) = match &scenario.target {
        Target::Embedded => {
            let profile = match &scenario.target_profile {
                Some(p) => {
                    loadgate_target::Profile::load(p).map_err(|e| Failure::config(e.to_string()))?
                }
                None => loadgate_target::Profile::demo(),
            };
            let server = loadgate_target::spawn(
                profile,
                "127.0.0.1:0".parse().expect("valid address"),
                2,
            )
            .map_err(|e| Failure::internal(format!("cannot start the embedded target: {e}")))?;
            (server.base_url(), Some(server))
        }
        Target::Url(u) => (strip_credentials(u), None),
    };

    if let Some((path, timeout)) = health_of(scenario, args) {
        wait_healthy(
            scenario,
            &base_url,
            &path,
            timeout,
            args.load.insecure,
            stop,
        )?;
    }
    Ok((base_url, target))
}

/// The observer that watches `scenario`'s budgets while it runs: it judges the windowed
/// ones as seconds finish (its [`BudgetWatch::finish`] is [`judge_run`]'s `windows`) and
/// stops the run at an `abort_on_fail` breach.
pub(crate) fn budget_watch(scenario: &Scenario) -> BudgetWatch {
    let budgets = scenario
        .slo
        .scoped()
        .into_iter()
        .map(|(scope, b)| Watched {
            scope,
            budget: b.budget.clone(),
            abort_after: b.abort_on_fail.then_some(b.abort_delay),
        })
        .collect();
    BudgetWatch::new(
        budgets,
        scenario.load.model == LoadModel::Open,
        loadgate_engine::histogram_max_us(scenario),
        Some(scenario.timeout),
    )
}

/// Judges a finished run against the scenario's budgets (`windows`: the windowed ones'
/// outcomes, from its [`budget_watch`]) and, in the open model, the generator's validity
/// thresholds.
pub(crate) fn judge_run(
    scenario: &Scenario,
    names: &[String],
    data: &loadgate_engine::RunData,
    windows: &[WindowOutcome],
) -> loadgate_slo::judge::Judgement {
    let budgets: Vec<_> = scenario
        .slo
        .scoped()
        .into_iter()
        .map(|(scope, b)| (scope, &b.budget))
        .collect();
    let open = data
        .scheduled
        .map(|scheduled| segment_plan(scenario).open_facts(scheduled, data.missed, data.pauses));
    judge(&Input {
        names,
        measured: &data.measured,
        measured_s: data.measured_s,
        budgets: &budgets,
        windows,
        open,
        stop: match data.stop {
            StopReason::Completed => Stop::Completed,
            StopReason::Aborted { .. } => Stop::Aborted,
            StopReason::Interrupted => Stop::Interrupted,
        },
        invalid_before: &[],
    })
}

/// A segment sends 1/N of the load, so a throughput budget (and its `abort_on_fail`) is
/// judged on 1/N of its threshold there; `loadgate merge` judges the whole against the
/// budget as written.
fn share_throughput_budgets(scenario: &mut Scenario, seg: loadgate_engine::Segment) {
    if seg.is_whole() {
        return;
    }
    let budgets = scenario
        .slo
        .global
        .iter_mut()
        .chain(scenario.slo.endpoints.iter_mut().map(|(_, b)| b));
    for b in budgets.filter(|b| b.budget.metric == loadgate_slo::Metric::Throughput) {
        b.budget.threshold /= seg.count as f64;
        b.budget.text = format!(
            "{} (segment {seg}'s share: {} rps)",
            b.budget.text,
            loadgate_slo::capacity::num(b.budget.threshold)
        );
    }
}

/// The scenario's budgets as `scope: expression` (`global: p95 < 2s`, `analyze: p99 <
/// 1s`), global ones first: how `capacity.json` and a segment's plan list them.
pub(crate) fn budget_labels(scenario: &Scenario) -> Vec<String> {
    let global = scenario
        .slo
        .global
        .iter()
        .map(|b| format!("global: {}", b.budget.text));
    let per_endpoint = scenario
        .slo
        .endpoints
        .iter()
        .map(|(i, b)| format!("{}: {}", scenario.endpoints[*i].name, b.budget.text));
    global.chain(per_endpoint).collect()
}

/// What every segment of one split load must share (see `loadgate merge`); also what a
/// single run is judged by, so that a run and a merge judge alike.
fn segment_plan(scenario: &Scenario) -> SegmentPlan {
    let load = &scenario.load;
    let unit = match load.model {
        LoadModel::Open => "rps",
        LoadModel::Closed => "VUs",
    };
    let mut profile = format!("from {} {unit}", load.start);
    for s in &load.stages {
        profile.push_str(&format!(
            ", {} to {} {unit}",
            humantime::format_duration(s.duration),
            s.target
        ));
    }
    if load.model == LoadModel::Closed && !load.think_time.is_zero() {
        profile.push_str(&format!(
            ", think {}",
            humantime::format_duration(load.think_time)
        ));
    }
    SegmentPlan {
        model: model_name(load.model).to_string(),
        profile,
        warmup_s: load.warmup.as_secs_f64(),
        endpoints: scenario
            .endpoints
            .iter()
            .map(|e| format!("{}*{}", e.name, e.weight))
            .collect(),
        budgets: budget_labels(scenario),
        data_rows: scenario.data.as_ref().map(|d| d.rows.len() as u64),
        late_tolerance_ms: load.late_tolerance.as_secs_f64() * 1000.0,
        send_window_ms: load.send_window.as_secs_f64() * 1000.0,
        min_achieved_ratio: load.validity.min_achieved_ratio,
        max_late_ratio: load.validity.max_late_ratio,
        max_dropped_ratio: load.validity.max_dropped_ratio,
        validity: load.validity.mode.name().to_string(),
    }
}

pub(crate) fn model_name(m: LoadModel) -> &'static str {
    match m {
        LoadModel::Open => "open",
        LoadModel::Closed => "closed",
    }
}

/// Applies `--target`, `--duration`, `--rps`, `--vus` and `--slo`.
pub(crate) fn apply_flags(scenario: &mut Scenario, args: &RunArgs) -> Result<(), Failure> {
    let mut o = Overrides {
        duration: args.duration,
        rps: args.rps,
        vus: args.vus,
        connections: args.connections,
        ..Overrides::default()
    };
    if args.connections == Some(0) {
        return Err(Failure::config(
            "--connections 0: expected at least one connection",
        ));
    }
    if let Some(r) = args.rps {
        if !(r.is_finite() && r > 0.0) {
            return Err(Failure::config(format!(
                "--rps {r}: expected a rate above zero"
            )));
        }
    }
    if args.vus == Some(0) {
        return Err(Failure::config(
            "--vus 0: expected at least one virtual user",
        ));
    }
    if args.duration.is_some_and(|d| d.is_zero()) {
        return Err(Failure::config(
            "--duration: expected a duration above zero",
        ));
    }
    match target_flag(args.load.target.as_deref())? {
        None => {}
        Some(Target::Embedded) => scenario.target = Target::Embedded,
        Some(Target::Url(u)) => o.target = Some(u),
    }
    for expr in &args.load.slo {
        let b = loadgate_slo::parse(expr).map_err(|e| {
            Failure::config(format!(
                "--slo '{expr}': {} (at column {})\n  hint: {}",
                e.message,
                e.offset + 1,
                e.hint
            ))
        })?;
        if let Some((message, hint)) = b
            .closed_model_problem()
            .filter(|_| scenario.load.model == LoadModel::Closed)
        {
            return Err(Failure::config(format!(
                "--slo '{expr}': {message}\n  hint: {hint}"
            )));
        }
        o.slo.push(b);
    }
    scenario.apply(&o);
    if let Target::Url(u) = &scenario.target {
        add_basic_auth(scenario, &u.clone());
    }
    Ok(())
}

/// The scenario file, or the one-request scenario of a URL run (`loadgate run URL`).
fn load_scenario(
    args: &RunArgs,
    options: &loadgate_scenario::LoadOptions,
) -> Result<Scenario, Failure> {
    let given = args.scenario.to_string_lossy();
    if !(given.starts_with("http://") || given.starts_with("https://")) {
        for (flag, set) in [
            ("--method", args.method.is_some()),
            ("--header", !args.headers.is_empty()),
            ("--body", args.body.is_some()),
            ("--json", args.json.is_some()),
        ] {
            if set {
                return Err(Failure::config(format!(
                    "{flag} applies to a URL run (`loadgate run https://host/path {flag} ...`)\n  hint: set it on the endpoint in {}",
                    args.scenario.display()
                )));
            }
        }
        return loadgate_scenario::load_with(&args.scenario, options)
            .map_err(|e| Failure::config(e.to_string()));
    }
    let text = url_scenario(&given, args)?;
    loadgate_scenario::parse_with(
        std::path::Path::new("(command line)"),
        &text,
        &|name| std::env::var(name).ok(),
        options,
    )
    .map_err(|e| Failure::config(flag_errors(&e, &text)))
}

/// A URL run's scenario errors, each named by the flag that wrote the line it is on
/// (the generated scenario's lines and columns mean nothing to the user).
fn flag_errors(e: &loadgate_scenario::Diagnostics, text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    e.0.iter()
        .map(|d| {
            let line = lines.get(d.line.saturating_sub(1)).copied().unwrap_or("");
            let flag = match line.split('=').next().unwrap_or("").trim() {
                "headers" => "-H/--header",
                "body" => "--body/--json",
                "method" => "-m/--method",
                "path" | "target" | "name" => "the URL",
                _ => "the command line",
            };
            let hint = d
                .hint
                .as_ref()
                .map(|h| format!("\n  hint: {h}"))
                .unwrap_or_default();
            format!("{flag}: {}{hint}", d.message)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The scenario a URL run stands for: one endpoint, the URL's path and query, the
/// method, headers and body the flags give, 10 VUs for 10 s unless `--rps`, `--vus` or
/// `--duration` say otherwise (they are applied after, as to any scenario), and the
/// `--slo` budgets.
fn url_scenario(given: &str, args: &RunArgs) -> Result<String, Failure> {
    let bad = |why: String| {
        Failure::config(format!(
            "{given}: {why}\n  hint: write a URL such as https://staging.example.com/api/health"
        ))
    };
    let u = url::Url::parse(given).map_err(|e| bad(e.to_string()))?;
    if u.host_str().is_none() {
        return Err(bad("no host".into()));
    }
    // TOML basic strings take JSON's escapes.
    let q = |s: &str| serde_json::to_string(s).expect("strings serialize");
    let origin = u.origin().ascii_serialization();
    let name: String = u
        .host_str()
        .unwrap_or("url")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let path = match u.query() {
        Some(query) => format!("{}?{query}", u.path()),
        None => u.path().to_string(),
    };
    let method = args.method.as_deref().unwrap_or("GET").to_ascii_uppercase();
    let mut headers = Vec::new();
    for h in &args.headers {
        let (k, v) = h.split_once(':').ok_or_else(|| {
            Failure::config(format!(
                "--header `{h}`: expected `Name: value`\n  hint: e.g. -H 'Authorization: Bearer ${{API_TOKEN}}'"
            ))
        })?;
        headers.push(format!("{} = {}", q(k.trim()), q(v.trim())));
    }
    let body = match (&args.body, &args.json) {
        (Some(b), _) => format!("body = {}\n", q(b)),
        (None, Some(j)) => {
            serde_json::from_str::<serde_json::Value>(j).map_err(|e| {
                Failure::config(format!(
                    "--json: not JSON ({e})\n  hint: e.g. --json '{{\"query\": \"hello\"}}'"
                ))
            })?;
            headers.push(format!("{} = {}", q("content-type"), q("application/json")));
            format!("body = {}\n", q(j))
        }
        (None, None) => String::new(),
    };
    let mut text = format!("name = {}\ntarget = {}\n", q(&name), q(&origin));
    text.push_str(&format!(
        "[[endpoint]]\nname = {}\nmethod = {}\npath = {}\n{body}",
        q(&format!("{method} {}", u.path())),
        q(&method),
        q(&path)
    ));
    if !headers.is_empty() {
        text.push_str(&format!("headers = {{ {} }}\n", headers.join(", ")));
    }
    text.push_str("[load]\nmodel = \"closed\"\nstages = [{ duration = \"10s\", vus = 10 }]\n");
    Ok(text)
}

/// From here on, everything printed or written masks the scenario's secrets: every
/// value it took from the environment, and the secret parts of a `--target` URL (or
/// `LOADGATE_TARGET`: user, password, query values, fragment).
pub(crate) fn mask_secrets(scenario: &mut Scenario, options: &loadgate_scenario::LoadOptions) {
    if let Some(Target::Url(u)) = &options.target {
        scenario.secrets.add_url("LOADGATE_TARGET", u);
    }
    let secrets = scenario.secrets.clone();
    output::set_redactor(Box::new(move |text| secrets.redact(text)));
}

/// `--target` (or `LOADGATE_TARGET`), checked as a scenario's `target` is: `embedded` or
/// an http(s) URL with a host. The message never shows the value (it may hold a password).
pub(crate) fn target_flag(value: Option<&str>) -> Result<Option<Target>, Failure> {
    value
        .map(|t| {
            Target::parse(t).map_err(|e| {
                Failure::config(format!(
                    "--target: {e}\n  hint: write e.g. --target https://staging.example.com, or --target embedded (LOADGATE_TARGET gives it when the flag does not)"
                ))
            })
        })
        .transpose()
}

/// Credentials in the target URL become a (secret) Basic Authorization header, as curl
/// does; the URL itself is never shown with them.
fn add_basic_auth(scenario: &mut Scenario, u: &url::Url) {
    if u.username().is_empty() && u.password().is_none() {
        return;
    }
    use base64::Engine as _;
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let pair = format!(
        "{}:{}",
        decode(u.username()),
        decode(u.password().unwrap_or(""))
    );
    let value = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    );
    for e in &mut scenario.endpoints {
        if !e
            .headers
            .iter()
            .any(|h| h.name.eq_ignore_ascii_case("authorization"))
        {
            e.headers.push(Header {
                name: "authorization".into(),
                value: Template::literal(&value),
                secret: true,
            });
        }
    }
}

fn strip_credentials(u: &url::Url) -> String {
    loadgate_scenario::without_credentials(u)
}

/// Polls `path` until it answers 200, or gives up after `timeout` (exit 4).
fn wait_healthy(
    scenario: &Scenario,
    base: &str,
    path: &str,
    timeout: Duration,
    insecure: bool,
    stop: &StopSignal,
) -> Result<(), Failure> {
    let uri: http::Uri = format!(
        "{}{}{}",
        base,
        if path.starts_with('/') { "" } else { "/" },
        path
    )
    .parse()
    .map_err(|e| Failure::config(format!("--wait-healthy {path}: not a valid path ({e})")))?;
    let (rt, client) = probe_client(
        scenario,
        insecure,
        scenario.connect_timeout.min(Duration::from_secs(5)),
    )?;
    rt.block_on(async {
        let deadline = Instant::now() + timeout;
        let mut last;
        loop {
            match client.probe(uri.clone(), Duration::from_secs(5).min(timeout)).await {
                Ok(200) => {
                    say_err!("target healthy: GET {base}{path} answered 200");
                    return Ok(());
                }
                Ok(code) => last = format!("status {code}"),
                Err(e) => last = format!("{} ({})", e.outcome.name(), e.detail),
            }
            if stop.is_triggered() {
                return Err(Failure {
                    exit: Exit::Interrupted,
                    message: format!(
                        "interrupted while waiting for GET {path} to answer 200 (last: {last}); no load was sent"
                    ),
                });
            }
            if Instant::now() >= deadline {
                return Err(Failure {
                    exit: Exit::Unhealthy,
                    message: format!(
                        "target never became healthy: GET {base}{path} did not answer 200 within {} (last: {last})\n  hint: check the deployment (and that this is the host you meant: --target or the scenario's `target`), or raise --health-timeout",
                        humantime::format_duration(timeout)
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
}

/// A summary with its free text masked of secrets (see [`output::mask`]): the target as
/// shown, the scenario file's name, the stop detail and the reasons. Budgets, names,
/// words and numbers are loadgate's or the scenario file's own, and stay as they are.
pub(crate) fn mask_summary(s: &mut RunSummary) {
    output::mask(&mut s.target);
    output::mask(&mut s.scenario_file);
    if let Some(d) = &mut s.stop_detail {
        output::mask(d);
    }
    s.invalid_reasons.iter_mut().for_each(output::mask);
}

/// `run.json` with its free text masked, as [`mask_summary`] masks a summary.
fn masked_start(mut start: RunStart) -> RunStart {
    output::mask(&mut start.target);
    output::mask(&mut start.scenario_file);
    start
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

/// Fails before any load when the target's host name does not resolve.
fn resolve(u: &url::Url) -> Result<(), Failure> {
    let host = u
        .host_str()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = u.port_or_known_default().unwrap_or(80);
    let (tx, rx) = std::sync::mpsc::channel();
    let h = host.clone();
    // getaddrinfo cannot be cancelled; bound the wait instead.
    std::thread::spawn(move || {
        let _ = tx.send(
            std::net::ToSocketAddrs::to_socket_addrs(&(h.as_str(), port))
                .map(|mut a| a.next().is_some()),
        );
    });
    let unresolvable = |why: String| {
        Failure {
        exit: Exit::Unreachable,
        message: format!("cannot resolve the target host `{host}`: {why}\n  hint: check the URL (--target / LOADGATE_TARGET / target) and this machine's DNS"),
    }
    };
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(Ok(true)) => Ok(()),
        Ok(Ok(false)) => Err(unresolvable("no addresses".into())),
        Ok(Err(e)) => Err(unresolvable(e.to_string())),
        Err(_) => Err(unresolvable("no answer within 10 s".into())),
    }
}

/// One connection before any load (TCP, and TLS for https), no request: a target that
/// refuses or cannot be reached would otherwise show up as nothing but connect errors,
/// and a failed TLS handshake too, so say why and how to fix it. Anything a request
/// would show (404, slow, resets) is left to the run, where it is data.
fn reach(scenario: &Scenario, u: &url::Url, insecure: bool, health: bool) -> Result<(), Failure> {
    let base = strip_credentials(u);
    let uri: http::Uri = format!("{base}/")
        .parse()
        .map_err(|e| Failure::config(format!("target {base}: {e}")))?;
    let (rt, client) = probe_client(scenario, insecure, scenario.connect_timeout)?;
    let result = rt.block_on(client.reach(&uri, scenario.connect_timeout));
    let port = u.port_or_known_default().unwrap_or(80);
    let host = u.host_str().unwrap_or_default();
    match result {
        Err(e) if e.tls.is_none() && !health => Err(Failure {
            exit: Exit::Unreachable,
            message: format!(
                "cannot connect to the target {host}:{port}{}: {}\n  hint: check that the service is running and listening there, or pass --wait-healthy PATH to wait for it to come up",
                // The URL only when it says more than the address (a scheme or a path).
                if base == format!("http://{host}:{port}") {
                    String::new()
                } else {
                    format!(" ({base})")
                },
                e.detail
            ),
        }),
        Err(e) if e.tls.is_some() => {
            let tls = e.tls.unwrap_or_default();
            let hint = if tls.contains("certificate") {
                "the server's certificate is not trusted (self-signed, expired, or for another name); for a staging host you trust, pass --insecure"
            } else {
                "check that this port speaks TLS (an http:// URL?) and that the server accepts TLS 1.2 or 1.3"
            };
            Err(Failure {
                exit: Exit::Unreachable,
                message: format!("TLS handshake with {base} failed: {tls}\n  hint: {hint}"),
            })
        }
        _ => Ok(()),
    }
}

/// A single-threaded runtime and an HTTP client for one-off probes before the run.
fn probe_client(
    scenario: &Scenario,
    insecure: bool,
    connect_timeout: Duration,
) -> Result<(tokio::runtime::Runtime, loadgate_engine::HttpClient), Failure> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::internal(e.to_string()))?;
    let options = loadgate_engine::ClientOptions {
        connect_timeout,
        http: scenario.http,
        insecure,
        connections: None,
    };
    let client = rt
        .block_on(async { loadgate_engine::HttpClient::new(options) })
        .map_err(|e| Failure::config(e.to_string()))?;
    Ok((rt, client))
}
