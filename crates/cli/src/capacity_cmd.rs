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
use loadgate_slo::summary::{EndpointSummary, Verdict};

use crate::exit::{Exit, Failure};
use crate::reach::{preflight, start_target};
use crate::run_cmd::{budget_watch, judge_run, watch_signals};
use crate::run_flags::apply_flags;
use crate::{output, CapacityArgs};

/// Grace for in-flight requests at the end of each step.
const STEP_GRACE: Duration = Duration::from_secs(5);

/// Why the search stopped before its end.
enum Halt {
    Interrupted,
    Failed(Failure),
}

pub(crate) fn run(args: CapacityArgs) -> Result<Exit, Failure> {
    let options = loadgate_scenario::LoadOptions {
        target: crate::run_flags::target_flag(args.load.target.as_deref())?,
    };
    let mut scenario = loadgate_scenario::load_with(&args.scenario, &options)
        .map_err(|e| Failure::config(e.to_string()))?;
    crate::run_flags::mask_secrets(&mut scenario, &options);
    let run_args = args.as_run_args();
    apply_flags(&mut scenario, &run_args)?;
    let mut plan = plan(scenario.capacity, &args)?;
    let budgets = crate::run_cmd::budget_labels(&scenario);
    // A throughput budget asks for a rate: no step below it can show it, so the ladder
    // starts there, and the search passes only if it is sustained.
    let floor = throughput_floor(&scenario)?;
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
    preflight(
        &scenario,
        args.load.insecure,
        args.load.wait_healthy.is_some() || scenario.health.is_some(),
    )?;
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
    let stop = StopSignal::default();
    watch_signals(stop.clone());
    let (base_url, _target) = start_target(&scenario, &run_args, &stop)?;
    if !args.quiet {
        say_err!(
            "loadgate {}: capacity of `{}` against {} ({}): from {} rps, {} per step, up to {} rps; {} measured after {} settling per step",
            env!("CARGO_PKG_VERSION"),
            scenario.name,
            scenario.target_display(),
            base_url,
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
                "  {:>9} rps{}: sent {:.1} rps, p95 {:.2} ms, errors {:.2}%: {}",
                num(rate),
                if refinement { " (bisect)" } else { "" },
                step.achieved_rps,
                step.p95_ms,
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
    let verdict = if interrupted {
        Verdict::Interrupted
    } else {
        capacity::verdict(&search, require_rps)
    };
    let stop_text = if interrupted {
        "interrupted"
    } else {
        match &search.limit {
            Some(l) if l.kind == StepVerdict::GeneratorLimit => "generator limit",
            Some(_) => "budget breached",
            None => "max_rps reached",
        }
    };
    let report = CapacityReport {
        schema_version: CAPACITY_SCHEMA_VERSION,
        loadgate_version: env!("CARGO_PKG_VERSION").to_string(),
        scenario: scenario.name.clone(),
        scenario_file: args.scenario.display().to_string(),
        target: scenario.target_display(),
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

/// The rate the scenario's throughput budgets ask for, as a rate of the whole load: a
/// global `throughput > T` asks for T, an endpoint's for T over its share of the weight.
/// An endpoint with no weight gets no arrivals, so its budget could never be met.
fn throughput_floor(scenario: &Scenario) -> Result<Option<f64>, Failure> {
    let mut floor: Option<f64> = None;
    for (scope, b) in scenario.slo.scoped() {
        if !is_throughput_floor(&b.budget) {
            continue;
        }
        let share = share(scenario, scope);
        if share <= 0.0 {
            let name = scope.map_or("global", |i| scenario.endpoints[i].name.as_str());
            return Err(Failure::config(format!(
                "endpoint `{name}` has weight 0, so it gets no arrivals and its budget `{}` can never be met\n  hint: give it a weight, or remove the budget",
                b.budget.text
            )));
        }
        let rate = b.budget.threshold / share;
        floor = Some(floor.map_or(rate, |f| f.max(rate)));
    }
    Ok(floor)
}

fn is_throughput_floor(b: &loadgate_slo::Budget) -> bool {
    b.metric == loadgate_slo::Metric::Throughput
        && matches!(b.op, loadgate_slo::Op::Gt | loadgate_slo::Op::Ge)
}

/// The share of the arrivals that goes to `scope` (all of them for the whole run).
fn share(scenario: &Scenario, scope: Option<usize>) -> f64 {
    let total: f64 = scenario.endpoints.iter().map(|e| f64::from(e.weight)).sum();
    match scope {
        Some(i) if total > 0.0 => f64::from(scenario.endpoints[i].weight) / total,
        _ => 1.0,
    }
}

/// A step's throughput budgets, judged against the rate offered at that step: the
/// target must serve what it was sent (within the generator's own `min_achieved_ratio`
/// tolerance), since a step below the asked-for rate cannot show the rate itself (the
/// search's verdict does, see `throughput_floor`).
fn offered_throughput(scenario: &mut Scenario, rate: f64) {
    let tolerance = scenario.load.validity.min_achieved_ratio;
    let shares: Vec<f64> = (0..scenario.endpoints.len())
        .map(|i| share(scenario, Some(i)))
        .collect();
    let budgets = scenario.slo.global.iter_mut().map(|b| (None, b)).chain(
        scenario
            .slo
            .endpoints
            .iter_mut()
            .map(|(i, b)| (Some(*i), b)),
    );
    for (scope, b) in budgets.filter(|(_, b)| is_throughput_floor(&b.budget)) {
        let offered = rate * scope.map_or(1.0, |i| shares[i]);
        b.budget.threshold = offered * tolerance;
        b.budget.op = loadgate_slo::Op::Ge;
        b.budget.text = format!(
            "{} (at this step: served {:.0}% of the {} rps offered)",
            b.budget.text,
            tolerance * 100.0,
            num(offered)
        );
    }
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
    offered_throughput(&mut s, rate);
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
    };
    // A step is watched by its budgets alone: `abort_on_fail` ends it as it ends a run.
    let mut watch = budget_watch(&s);
    let data = loadgate_engine::run(cfg, &mut [&mut watch])
        .map_err(|e| Halt::Failed(crate::startup::engine_failure(e)))?;
    let windows = watch.finish();
    if data.stop == StopReason::Interrupted {
        return Err(Halt::Interrupted);
    }
    let names: Vec<String> = s.endpoints.iter().map(|e| e.name.clone()).collect();
    let j = judge_run(&s, &names, &data, &windows);
    let all = data.measured.overall();
    let e = EndpointSummary::of("all", &all, data.measured_s);
    let verdict = if !j.invalid_reasons.is_empty() {
        StepVerdict::GeneratorLimit
    } else if j.slo.iter().all(|b| b.pass) {
        StepVerdict::Pass
    } else {
        StepVerdict::Breach
    };
    let ms = |q: f64| all.latency().quantile(q) as f64 / 1000.0;
    let error_rate = if e.requests > 0 {
        e.errors as f64 / e.requests as f64
    } else {
        0.0
    };
    let achieved_rps = j.rate.as_ref().map_or(0.0, |r| r.achieved_rps);
    Ok(StepResult {
        rate_rps: rate,
        achieved_rps,
        // Requests due in the measured phase that succeeded, per second (a backlog left
        // by the settle phase counts in the settle phase).
        success_rps: e.success_rps,
        p50_ms: ms(0.50),
        p95_ms: ms(0.95),
        p99_ms: ms(0.99),
        error_rate,
        verdict,
        breached: j
            .slo
            .iter()
            .filter(|b| !b.pass)
            .map(|b| format!("{}: {} (measured {})", b.scope, b.expr, b.measured_text))
            .collect(),
        invalid_reasons: j.invalid_reasons,
        refinement,
    })
}
