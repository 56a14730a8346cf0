//! One iteration of a flow: its steps in order, each a request recorded in its own
//! endpoint's row, and the iteration itself recorded in the flow's row.
//!
//! Timing honesty: the first step is due when the arrival was (open model) or when the
//! VU began the iteration (closed), as any request; each later step is due at the
//! previous step's end plus the flow's think time, the moment it would have been sent
//! had the generator been on time, and its latency runs from there (its lag behind it
//! is recorded as any send's). The iteration's duration runs from its first step's due
//! time to its last step's end. Every step, and the iteration, is recorded in the phase
//! the arrival was due in, so no warm-up iteration is judged with the measured phase.
//!
//! An iteration stops at its first step that fails (the later steps may need what it
//! did not capture): the flow's outcome is that step's. Nothing due at or after a stop
//! is sent; an iteration a stop cuts short is not recorded as a flow sample (it did not
//! fail, it was not let finish), only its steps that ran are.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use loadgate_metrics::{Outcome, Sample};
use loadgate_scenario::{CaptureFrom, PathStep, Step};

use super::{
    build_with, execute_step, micros, pick_row, roll_over, shard_for, start_of, Ctx, Pacer, STOP,
};
use crate::call::Exchange;
use crate::session::Jar;

/// Runs one iteration of the flow whose row is `row`, due at `due`; `seq` and `local`
/// number it as a request would be (they pick its data row, once for every step).
/// `tolerance`: the open model's late tolerance (`None` in the closed model, which has
/// no schedule to be late for). `in_flight` covers it until it is recorded. `vu_jar`:
/// the closed model's VU's cookie jar; in the open model an iteration of a flow with
/// `cookies` keeps one of its own (see `session.rs`).
pub(super) async fn run(
    ctx: Rc<Ctx>,
    row: usize,
    seq: u64,
    local: u64,
    due: Instant,
    tolerance: Option<Duration>,
    vu_jar: Option<&RefCell<Jar>>,
) {
    ctx.in_flight.set(ctx.in_flight.get() + 1);
    let ended = iterate(&ctx, row, seq, local, due, tolerance, vu_jar).await;
    if let Some((outcome, first_sent, end)) = ended {
        let sample = Sample {
            service_us: micros(end.saturating_duration_since(first_sent)),
            ..Sample::new(row, outcome, micros(end.saturating_duration_since(due)))
        };
        roll_over(&ctx, end);
        let mut shard = shard_for(&ctx, due);
        shard.record(&sample);
        if outcome == Outcome::Success {
            let due_s = due.saturating_duration_since(start_of(&ctx)).as_secs();
            shard.record_due_success(row, due_s);
        }
    }
    ctx.in_flight.set(ctx.in_flight.get() - 1);
    ctx.drained.notify_one();
}

/// The steps of one iteration: the flow's outcome, when its first step was sent and
/// when its last ended; `None` when it was cut short by a stop, a request that could
/// not be built, or a full pool.
async fn iterate(
    ctx: &Rc<Ctx>,
    row: usize,
    seq: u64,
    local: u64,
    due: Instant,
    tolerance: Option<Duration>,
    vu_jar: Option<&RefCell<Jar>>,
) -> Option<(Outcome, Instant, Instant)> {
    let scenario = ctx.spec.scenario.clone();
    let flow = scenario.flow_of_row(row).expect("the row of a flow");
    let own_jar =
        (vu_jar.is_none() && tolerance.is_some() && flow.cookies).then(|| RefCell::new(Jar::new()));
    let jar = vu_jar.or(own_jar.as_ref());
    let data_row = pick_row(ctx, local);
    let mut vars = vec![String::new(); flow.vars.len()];
    let mut intended = due;
    let mut first_sent = None;
    let mut pacer: Option<Pacer> = None;
    let stop = ctx.spec.stop.clone();
    for (k, step) in flow.steps.iter().enumerate() {
        if k > 0 && !flow.think_time.is_zero() {
            let mut stop = stop.clone();
            let pacer = pacer.get_or_insert_with(Pacer::new);
            tokio::select! {
                biased;
                _ = stop.wait_for(|s| *s >= STOP) => return None,
                _ = pacer.until(intended, intended) => {}
            }
        }
        if ctx.spec.stopped_at.get().is_some_and(|&t| intended >= t)
            || *stop.borrow() >= STOP && k > 0
        {
            return None;
        }
        let endpoint = step.endpoint;
        let req = build_with(ctx, endpoint, seq, data_row, &vars, due)?;
        let (exchange, sent) = execute_step(
            ctx,
            endpoint,
            req,
            intended,
            due,
            tolerance,
            (k == 0).then_some(row),
            jar,
        )
        .await?;
        first_sent.get_or_insert(sent);
        let prepared = &ctx.prepared[endpoint];
        let mut sample = super::sample(endpoint, prepared.checks(), prepared.goodput(), &exchange);
        let mut missing = None;
        if sample.outcome == Outcome::Success {
            if let Err(c) = capture(step, &exchange, &mut vars) {
                sample.outcome = Outcome::CaptureFailed;
                sample.good = false;
                sample.good_service = false;
                missing = Some(c);
            }
        }
        roll_over(ctx, exchange.end);
        let mut shard = shard_for(ctx, due);
        shard.record(&sample);
        match missing {
            Some(c) => {
                let capture = &step.captures[c];
                let name = &flow.vars[capture.slot].name;
                // Keyed by the capture: one explanation per capture that finds nothing.
                let key = 0xCA97_0000_0000_0000 | ((k as u64) << 16) | c as u64;
                shard.record_failure(endpoint, sample.outcome, key, || {
                    let what = format!(
                        "capture `{name}`: {} found nothing",
                        capture.from.describe()
                    );
                    (what, None)
                });
            }
            None if sample.outcome != Outcome::Success => {
                // What the target answered may hold what earlier steps captured (a
                // token echoed back): masked as the environment's values are.
                let mut secrets = match jar {
                    Some(jar) => crate::session::masked(&scenario.secrets, &jar.borrow()),
                    None => scenario.secrets.clone(),
                };
                for (var, value) in flow.vars.iter().zip(&vars) {
                    if var.secret {
                        secrets.add(&var.name, value);
                    }
                }
                crate::classify::record_failure(
                    &mut shard,
                    endpoint,
                    prepared,
                    &exchange,
                    sample.outcome,
                    &secrets,
                );
            }
            None => {}
        }
        if sample.outcome == Outcome::Success {
            let due_s = intended.saturating_duration_since(start_of(ctx)).as_secs();
            shard.record_due_success(endpoint, due_s);
        }
        drop(shard);
        if sample.outcome != Outcome::Success || k + 1 == flow.steps.len() {
            return Some((sample.outcome, first_sent.unwrap_or(sent), exchange.end));
        }
        intended = exchange.end + flow.think_time;
    }
    None
}

/// Takes every value `step` captures from `exchange`'s response into `vars`; the
/// first capture (its index) that finds nothing stops it.
fn capture(step: &Step, exchange: &Exchange, vars: &mut [String]) -> Result<(), usize> {
    if step.captures.is_empty() {
        return Ok(());
    }
    let Ok(response) = &exchange.result else {
        return Err(0);
    };
    // Parsed once for every JSON capture of the step.
    let mut json: Option<Option<serde_json::Value>> = None;
    for (i, c) in step.captures.iter().enumerate() {
        let found = match &c.from {
            CaptureFrom::Json(path) => {
                let doc = json.get_or_insert_with(|| serde_json::from_slice(&response.body).ok());
                doc.as_ref()
                    .and_then(|d| find(d, path.steps()))
                    .and_then(text)
            }
            CaptureFrom::Header(name) => response
                .headers()
                .get(name.as_str())
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            CaptureFrom::Regex(re) => {
                let body = String::from_utf8_lossy(&response.body);
                re.captures(&body).map(|m| {
                    m.get(1)
                        .or_else(|| m.get(0))
                        .map_or(String::new(), |g| g.as_str().to_string())
                })
            }
        };
        match found {
            Some(v) => vars[c.slot] = v,
            None => return Err(i),
        }
    }
    Ok(())
}

/// The value at `steps` of `v`; with `[*]`, in the first element that has one.
fn find<'a>(v: &'a serde_json::Value, steps: &[PathStep]) -> Option<&'a serde_json::Value> {
    let Some((first, rest)) = steps.split_first() else {
        return Some(v);
    };
    match first {
        PathStep::Key(k) => find(v.get(&**k)?, rest),
        PathStep::Index(i) => find(v.get(*i)?, rest),
        PathStep::Each => v.as_array()?.iter().find_map(|e| find(e, rest)),
    }
}

/// A found value as a template inserts it: a string as it is, a number or boolean as
/// written, an object or array as JSON; `null` is no value.
fn text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}
