//! `loadgate capacity`: steps the open-model rate until a budget breaks or loadgate
//! cannot hold the rate, bisects the knee, and writes `capacity.json` and a report.
//! The search itself is `loadgate_slo::capacity`; this module runs and judges each step.

use std::sync::Arc;
use std::time::Duration;

use loadgate_engine::{RunConfig, StopReason, StopSignal};
use loadgate_report::outdir::{self, OutDir};
use loadgate_scenario::{CapacityPlan, CapacityStep, Overrides, Scenario};
use loadgate_slo::capacity::{
    self, num, CapacityReport, PlanSummary, StepResult, StepVerdict, CAPACITY_SCHEMA_VERSION,
};

use crate::exit::{Exit, Failure};
use crate::reach::{preflight, start_target};
use crate::run_cmd::{run_facts, watch_signals};
use crate::run_flags::apply_load_flags;
use crate::{output, CapacityArgs};

/// Grace for in-flight requests at the end of each step.
const STEP_GRACE: Duration = Duration::from_secs(5);

/// Why the search stopped before its end.
enum Halt {
    Interrupted,
    Failed(Failure),
}

pub(crate) fn run(mut args: CapacityArgs) -> Result<Exit, Failure> {
    // Every step runs the open model, whatever the scenario's `[load]` says.
    let options = loadgate_scenario::LoadOptions {
        target: crate::run_flags::target_flag(args.load.target.as_deref())?,
        open_load: true,
    };
    let mut scenario = loadgate_scenario::load_with(&args.scenario, &options)
        .map_err(|e| Failure::config(e.to_string()))?;
    crate::run_flags::mask_secrets(&mut scenario, &options);
    apply_load_flags(&mut scenario, &args.load, Overrides::default(), true)?;
    let mut plan = plan(scenario.capacity, &args)?;
    let budgets = scenario.budget_labels();
    // A throughput budget asks for a rate: no step below it can show it, so the ladder
    // starts there, and the search passes only if it is sustained.
    let floor = scenario
        .throughput_floor()
        .map_err(|e| Failure::config(e.to_string()))?;
    if let Some(f) = floor.filter(|f| *f > plan.max_rps) {
        return Err(Failure::config(format!(
            "the throughput budgets ask for {} rps, above max_rps {}: no step of the search could meet them\n  hint: raise --max-rps to at least {}",
            num(f),
            num(plan.max_rps),
            num(f)
        )));
    }
    let require_rps = match (args.require_rps, floor) {
        (Some(r), Some(f)) => Some(r.max(f)),
        (r, f) => r.or(f),
    };
    if let Some(f) = floor.filter(|f| *f > plan.start_rps) {
        if !args.quiet {
            say_err!(
                "the throughput budgets ask for {} rps: the search starts there, not at {} rps",
                num(f),
                num(plan.start_rps)
            );
        }
        plan.start_rps = f.min(plan.max_rps);
    }
    if budgets.is_empty() {
        say_err!("warning: the scenario has no SLO budgets: the search can only stop at max_rps or at loadgate's own limit");
    }
    crate::startup::check_descriptors(&scenario, args.load.workers, true)?;
    args.load.load_tls(&scenario)?;
    preflight(
        &scenario,
        &args.load,
        crate::reach::health_of(&scenario, &args.load).is_some(),
    )?;
    // The target before the folder, as for a run: a search whose target never becomes
    // healthy sent no load and makes no folder.
    let stop = StopSignal::default();
    watch_signals(stop.clone());
    let (base_url, _target) = start_target(&scenario, &args.load, &stop)?;
    let started = std::time::SystemTime::now();
    // Each step writes nothing but its line in capacity.json; the search's own files are
    // the summary and the report.
    let dir = OutDir::new_run(
        args.out.as_deref(),
        &args.reports_dir,
        &format!("{}-capacity", scenario.name),
        started,
        outdir::bytes_needed(0.0, scenario.endpoints.len()),
    )?;
    if !args.quiet {
        say_err!(
            "loadgate {}: capacity of `{}` against {} ({}){}: from {} rps, {} per step, up to {} rps; {} measured after {} settling per step",
            env!("CARGO_PKG_VERSION"),
            scenario.name,
            scenario.target_display(),
            base_url,
            crate::run_cmd::bases_shown(&scenario),
            num(plan.start_rps),
            step_text(plan.step),
            num(plan.max_rps),
            humantime::format_duration(plan.step_duration),
            humantime::format_duration(plan.settle),
        );
    }

    let ladder = capacity::ladder(plan.start_rps, plan.max_rps, |r| plan.next(r));
    let (search, halt) = capacity::search(ladder, plan.refine, |rate, refinement| {
        let step = run_step(&scenario, &plan, &base_url, &args, &stop, rate, refinement)?;
        if !args.quiet {
            say_err!(
                "  {:>9} rps{}: sent {:.1} rps, p95 {:.2} ms{}, errors {:.2}%: {}",
                num(rate),
                if refinement { " (bisect)" } else { "" },
                step.achieved_rps,
                step.p95_ms,
                step.ttft_p95_ms
                    .map(|t| format!(", first token p95 {t:.2} ms"))
                    .unwrap_or_default(),
                step.error_rate * 100.0,
                match step.verdict {
                    StepVerdict::Pass => "pass".to_string(),
                    StepVerdict::Breach => format!("breach: {}", step.breached.join(", ")),
                    StepVerdict::GeneratorLimit =>
                        format!("generator limit: {}", step.invalid_reasons.join("; ")),
                }
            );
        }
        Ok(step)
    });
    if let Some(Halt::Failed(f)) = halt {
        return Err(f);
    }
    let interrupted = matches!(halt, Some(Halt::Interrupted));
    let verdict = capacity::verdict(&search, require_rps, interrupted);
    let stop_text = search.stop_text(interrupted);
    let report = CapacityReport {
        schema_version: CAPACITY_SCHEMA_VERSION,
        loadgate_version: env!("CARGO_PKG_VERSION").to_string(),
        scenario: scenario.name.clone(),
        scenario_file: args.scenario.display().to_string(),
        target: scenario.origins_display(),
        started_at: humantime::format_rfc3339_seconds(started).to_string(),
        ended_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        plan: PlanSummary {
            start_rps: plan.start_rps,
            step: step_text(plan.step),
            max_rps: plan.max_rps,
            step_duration_s: plan.step_duration.as_secs_f64(),
            settle_s: plan.settle.as_secs_f64(),
            refine: plan.refine,
        },
        budgets,
        steps: search.steps.clone(),
        sustainable_rps: search.sustainable_rps,
        limit: search.limit.clone(),
        require_rps,
        verdict,
        stop: stop_text.to_string(),
    };
    let mut report = report;
    output::mask(&mut report.target);
    output::mask(&mut report.scenario_file);
    // `reports/latest` follows the newest run directory of every command.
    if dir.write_capacity(&report) {
        output::link_latest(&args.reports_dir, &dir);
    }
    for a in loadgate_report::render_capacity(&report) {
        dir.write_artifact(&a);
    }
    let mut out = String::new();
    out.push_str(&format!("\n{}\n", report.headline()));
    if let Some(req) = require_rps {
        out.push_str(&format!("required: {} rps\n", num(req)));
    }
    out.push_str(&format!("results: {}\n", dir.path().display()));
    if dir.report_written() {
        out.push_str(&format!("report: {}\n", dir.report_path().display()));
    }
    out.push_str(&dir.problem_lines());
    out.push_str(&crate::console::verdict_line(verdict, ""));
    output::print_out(&out);
    Ok(Exit::of(verdict, interrupted).after_writing(&dir))
}

fn step_text(s: CapacityStep) -> String {
    match s {
        CapacityStep::Add(d) => format!("+{} rps", num(d)),
        CapacityStep::Multiply(f) => format!("x{f}"),
    }
}

/// The scenario's `[capacity]` with the flags applied on top.
fn plan(mut p: CapacityPlan, args: &CapacityArgs) -> Result<CapacityPlan, Failure> {
    let rate = |v: Option<f64>, flag: &str| -> Result<Option<f64>, Failure> {
        match v {
            Some(r) if !(r.is_finite() && r > 0.0) => Err(Failure::config(format!(
                "{flag} {r}: expected a rate above zero"
            ))),
            other => Ok(other),
        }
    };
    if let Some(r) = rate(args.start_rps, "--start-rps")? {
        p.start_rps = r;
    }
    if let Some(r) = rate(args.max_rps, "--max-rps")? {
        p.max_rps = r;
    }
    if let Some(r) = rate(args.step_rps, "--step-rps")? {
        p.step = CapacityStep::Add(r);
    }
    if let Some(f) = args.factor {
        if !(f.is_finite() && f > 1.0) {
            return Err(Failure::config(format!(
                "--factor {f}: expected a factor above 1, e.g. 1.5"
            )));
        }
        p.step = CapacityStep::Multiply(f);
    }
    if let Some(d) = args.step_duration {
        if d.is_zero() {
            return Err(Failure::config(
                "--step-duration: expected a duration above zero",
            ));
        }
        p.step_duration = d;
    }
    if let Some(d) = args.settle {
        p.settle = d;
    }
    if let Some(n) = args.refine {
        if n > 10 {
            return Err(Failure::config(format!(
                "--refine {n}: expected at most 10 bisection steps"
            )));
        }
        p.refine = n;
    }
    if p.max_rps < p.start_rps {
        return Err(Failure::config(format!(
            "max_rps {} is below start_rps {}\n  hint: the search climbs from start_rps to max_rps; raise --max-rps or lower --start-rps",
            num(p.max_rps),
            num(p.start_rps)
        )));
    }
    Ok(p)
}

/// One step: an open-model run at `rate` for settle + step, judged after the settle.
fn run_step(
    scenario: &Scenario,
    plan: &CapacityPlan,
    base_url: &str,
    args: &CapacityArgs,
    stop: &StopSignal,
    rate: f64,
    refinement: bool,
) -> Result<StepResult, Halt> {
    if stop.is_triggered() {
        return Err(Halt::Interrupted);
    }
    let mut s = scenario.clone();
    s.apply(&Overrides {
        rps: Some(rate),
        duration: Some(plan.settle + plan.step_duration),
        ..Overrides::default()
    });
    s.load.warmup = plan.settle;
    s.offer_throughput(rate);
    let s = Arc::new(s);
    let cfg = RunConfig {
        scenario: s.clone(),
        base_url: base_url.to_string(),
        insecure: args.load.insecure,
        workers: args.load.workers,
        stop: stop.clone(),
        grace: STEP_GRACE,
        segment: loadgate_engine::Segment::WHOLE,
        start_at: None,
        pin_workers: !args.load.no_pin,
        tls_files: args.load.tls_files.clone(),
    };
    // A step is watched by its budgets alone: `abort_on_fail` ends it as it ends a run.
    let mut watch = s.budget_watch();
    let data = loadgate_engine::run(cfg, &mut [&mut watch])
        .map_err(|e| Halt::Failed(crate::startup::engine_failure(e)))?;
    let windows = watch.finish();
    if data.stop == StopReason::Interrupted {
        return Err(Halt::Interrupted);
    }
    let names: Vec<String> = s.row_names();
    let j = s.judge(&run_facts(&names, &data, &windows));
    Ok(StepResult::judged(
        rate,
        refinement,
        j,
        &data.measured.overall(),
        data.measured_s,
    ))
}
