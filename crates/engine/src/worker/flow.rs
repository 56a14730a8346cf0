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
//! fail, it was not let finish), only its steps that ran are. An iteration one of
//! whose steps never had its turn in a fixed pool (`connections = N`) is the
//! generator's shortfall: the step's row counts the request dropped (the run's drops
//! count it there, once), and the flow's row counts the iteration dropped, never as an
//! outcome of the target's.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use loadgate_metrics::{Outcome, Sample};
use loadgate_scenario::{CaptureFrom, JsonExpect, Step, Until};

use super::auth::{self, VuToken};
use super::{
    execute_step, micros, pick_row, render, roll_over, shard_for, start_of, Ctx, Pacer, STOP,
};
use crate::call::Exchange;
use crate::capture;
use crate::session::Jar;

/// Runs one iteration of the flow whose row is `row`, due at `due`; `seq` and `local`
/// number it as a request would be (they pick its data row, once for every step).
/// `tolerance`: the open model's late tolerance (`None` in the closed model, which has
/// no schedule to be late for). `in_flight` covers it until it is recorded. `vu_jar`:
/// the closed model's VU's cookie jar; in the open model an iteration of a flow with
/// `cookies` keeps one of its own (see `session.rs`). `vu_token`: the closed model's
/// VU's `[auth]` token (`scope = "vu"`).
#[allow(clippy::too_many_arguments)]
pub(super) async fn run(
    ctx: Rc<Ctx>,
    row: usize,
    seq: u64,
    local: u64,
    due: Instant,
    tolerance: Option<Duration>,
    vu_jar: Option<&RefCell<Jar>>,
    vu_token: Option<&VuToken>,
) {
    ctx.in_flight.set(ctx.in_flight.get() + 1);
    match iterate(&ctx, row, seq, local, due, tolerance, vu_jar, vu_token).await {
        // The generator's shortfall, never an outcome of the target's.
        Err(Cut::Dropped) => {
            roll_over(&ctx, Instant::now());
            shard_for(&ctx, due).record_drop(row);
        }
        Err(Cut::Stopped | Cut::Unbuilt) => {}
        Ok((outcome, first_sent, end)) => {
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
    }
    ctx.in_flight.set(ctx.in_flight.get() - 1);
    ctx.drained.notify_one();
}

/// An iteration's variables, empty at its start: a vector (and its strings' buffers)
/// an earlier iteration of this worker gave back, so that an iteration allocates
/// neither.
struct Vars(Vec<String>);

thread_local! {
    /// Vectors of variables given back by the iterations that ended (each worker
    /// thread its own), at most [`SPARE_VARS`].
    static SPARE: RefCell<Vec<Vec<String>>> = const { RefCell::new(Vec::new()) };
}

/// The most vectors of variables a worker keeps for its next iterations: as many as
/// it has iterations in flight at once, beyond which they are freed.
const SPARE_VARS: usize = 256;

impl Vars {
    /// `n` empty variables.
    fn take(n: usize) -> Vars {
        let mut v = SPARE.with(|s| s.borrow_mut().pop()).unwrap_or_default();
        v.iter_mut().for_each(String::clear);
        v.resize_with(n, String::new);
        Vars(v)
    }
}

impl Drop for Vars {
    fn drop(&mut self) {
        let v = std::mem::take(&mut self.0);
        // A variable's buffer kept at most 4 KiB: a huge capture is not held on to.
        if v.iter().all(|s| s.capacity() <= 4096) {
            SPARE.with(|s| {
                let mut spare = s.borrow_mut();
                if spare.len() < SPARE_VARS {
                    spare.push(v);
                }
            });
        }
    }
}

impl std::ops::Deref for Vars {
    type Target = Vec<String>;
    fn deref(&self) -> &Vec<String> {
        &self.0
    }
}

impl std::ops::DerefMut for Vars {
    fn deref_mut(&mut self) -> &mut Vec<String> {
        &mut self.0
    }
}

/// Why an iteration ended without an outcome of its flow's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    /// A stop came before its next step was due.
    Stopped,
    /// A request could not be built from the scenario's own data (counted unbuilt).
    Unbuilt,
    /// A step waited a whole timeout for its turn in the fixed pool (counted dropped).
    Dropped,
}

/// The steps of one iteration: the flow's outcome, when its first step was sent and
/// when its last ended; or why it was cut short.
#[allow(clippy::too_many_arguments)]
async fn iterate(
    ctx: &Rc<Ctx>,
    row: usize,
    seq: u64,
    local: u64,
    due: Instant,
    tolerance: Option<Duration>,
    vu_jar: Option<&RefCell<Jar>>,
    vu_token: Option<&VuToken>,
) -> Result<(Outcome, Instant, Instant), Cut> {
    let scenario = ctx.spec.scenario.clone();
    let flow = scenario.flow_of_row(row).expect("the row of a flow");
    // A jar of its own per iteration in the open model (a VU's in the closed one).
    let own_jar =
        (vu_jar.is_none() && tolerance.is_some() && flow.cookies).then(|| RefCell::new(Jar::new()));
    let mut it = Iteration {
        ctx,
        flow,
        seq,
        data_row: pick_row(ctx, local),
        vars: Vars::take(flow.vars.len()),
        due,
        tolerance,
        pacer: None,
        jar: vu_jar.or(own_jar.as_ref()),
        vu: vu_token,
        token: None,
    };
    let mut intended = due;
    let mut first_sent = None;
    for (k, step) in flow.steps.iter().enumerate() {
        if k > 0 {
            it.wait(intended).await?;
        }
        let first = (k == 0).then_some(row);
        let (outcome, sent, end) = match &step.until {
            None => it.attempt(k, step, intended, first).await?,
            Some(until) => {
                // Attempts until the answer is ready; the whole is its `_ready` row's.
                let ready_row = scenario.ready_row(until.poll);
                let start = intended;
                let mut poll_sent = None;
                let mut n = 1;
                let (outcome, end) = loop {
                    // A poll's row counts no send: it is not an arrival.
                    let poll = Some((until, n == until.max));
                    let (outcome, sent, end) = it
                        .attempt_rows(k, step, intended, first.as_slice(), poll)
                        .await?;
                    poll_sent.get_or_insert(sent);
                    first_sent.get_or_insert(sent);
                    match outcome {
                        // Not ready yet: again once `every` has passed.
                        None => {
                            n += 1;
                            intended = end + until.every;
                            it.wait(intended).await?;
                        }
                        Some(o) => break (o, end),
                    }
                };
                let sent = poll_sent.unwrap_or(start);
                let sample = Sample {
                    service_us: micros(end.saturating_duration_since(sent)),
                    ..Sample::new(
                        ready_row,
                        outcome,
                        micros(end.saturating_duration_since(start)),
                    )
                };
                roll_over(ctx, end);
                let mut shard = shard_for(ctx, due);
                shard.record(&sample);
                if outcome == Outcome::Success {
                    let due_s = start.saturating_duration_since(start_of(ctx)).as_secs();
                    shard.record_due_success(ready_row, due_s);
                }
                (outcome, sent, end)
            }
        };
        first_sent.get_or_insert(sent);
        if outcome != Outcome::Success || k + 1 == flow.steps.len() {
            return Ok((outcome, first_sent.unwrap_or(sent), end));
        }
        intended = end + flow.think_time;
    }
    // A flow has at least one step: the last one returned.
    Err(Cut::Stopped)
}

/// What one iteration carries from step to step.
struct Iteration<'a> {
    ctx: &'a Rc<Ctx>,
    flow: &'a loadgate_scenario::Flow,
    seq: u64,
    data_row: Option<usize>,
    vars: Vars,
    /// When the iteration was due: the phase every step is recorded in.
    due: Instant,
    tolerance: Option<Duration>,
    /// A timer for the waits between steps, made at the first wait.
    pacer: Option<Pacer>,
    /// The cookies it keeps: its own (open model) or its VU's (closed model).
    jar: Option<&'a RefCell<Jar>>,
    /// Its VU's `[auth]` token (`scope = "vu"`).
    vu: Option<&'a VuToken>,
    /// The last `[auth]` token a step carried (masked in what failures show).
    token: Option<crate::auth::Token>,
}

impl Iteration<'_> {
    /// Waits until `intended` (a later step's due time), unless a stop comes first or
    /// has come: nothing due at or after a stop is sent.
    async fn wait(&mut self, intended: Instant) -> Result<(), Cut> {
        let mut stop = self.ctx.spec.stop.clone();
        if Instant::now() < intended {
            let pacer = self.pacer.get_or_insert_with(Pacer::new);
            tokio::select! {
                biased;
                _ = stop.wait_for(|s| *s >= STOP) => return Err(Cut::Stopped),
                _ = pacer.until(intended, intended) => {}
            }
        }
        let stopped = self
            .ctx
            .spec
            .stopped_at
            .get()
            .is_some_and(|&t| intended >= t);
        match !stopped && *stop.borrow() < STOP {
            true => Ok(()),
            false => Err(Cut::Stopped),
        }
    }

    /// Step `k` sent once (its send counted for the row `first` too, a flow's at its
    /// first step): its outcome, when it was sent and when it ended.
    async fn attempt(
        &mut self,
        k: usize,
        step: &Step,
        intended: Instant,
        first: Option<usize>,
    ) -> Result<(Outcome, Instant, Instant), Cut> {
        let (outcome, sent, end) = self
            .attempt_rows(k, step, intended, first.as_slice(), None)
            .await?;
        Ok((outcome.unwrap_or(Outcome::Success), sent, end))
    }

    /// One attempt of step `k` (its send counted for the rows `also` too), recorded in
    /// the step's row with its failure explained; with `poll` (the step's rule, and
    /// whether this is its last attempt), an answer that does not meet the rule yet is
    /// a success that is not ready (`None`), or at the last attempt `poll_exhausted`.
    /// Captures are taken from the answer that is ready.
    async fn attempt_rows(
        &mut self,
        k: usize,
        step: &Step,
        intended: Instant,
        also: &[usize],
        poll: Option<(&Until, bool)>,
    ) -> Result<(Option<Outcome>, Instant, Instant), Cut> {
        let ctx = self.ctx;
        let endpoint = step.endpoint;
        let req = match render(ctx, endpoint, self.seq, self.data_row, &self.vars) {
            Ok(req) => req,
            // After a capture, what the target answered made it so (a CR or LF in a
            // token bound for a header): the step fails as its capture did.
            Err(_) if k > 0 && !self.vars.is_empty() => {
                self.unusable(k, endpoint);
                return Ok((Some(Outcome::CaptureFailed), intended, intended));
            }
            // Else the scenario's own data made it: counted unbuilt, never sent.
            Err(_) => {
                shard_for(ctx, self.due).record_unbuilt(endpoint);
                return Err(Cut::Unbuilt);
            }
        };
        let auth::Carried { token, waited } = match auth::token(ctx, endpoint, self.vu).await {
            Ok(t) => t,
            Err(auth::NoToken) => {
                auth::record_no_token(ctx, endpoint, self.due, false, also);
                return Ok((Some(Outcome::AuthFailed), intended, intended));
            }
        };
        let req = auth::carry(ctx, req, token.as_ref());
        if token.is_some() {
            self.token.clone_from(&token);
        }
        let (exchange, sent) = execute_step(
            ctx,
            endpoint,
            req,
            intended,
            self.due,
            self.tolerance,
            also,
            self.jar,
            waited,
        )
        .await
        .ok_or(Cut::Dropped)?;
        auth::answered(ctx, token.as_ref(), self.vu, &exchange);
        let prepared = &ctx.prepared[endpoint];
        let mut sample = super::sample(endpoint, prepared.checks(), prepared.goodput(), &exchange);
        let mut why: Option<Why<'_>> = None;
        let mut ready = true;
        if sample.outcome == Outcome::Success {
            if let Some((until, last)) = poll {
                ready = holds(until, &exchange);
                if !ready && last {
                    sample.outcome = Outcome::PollExhausted;
                    why = Some(Why::Exhausted(until));
                }
            }
        }
        if sample.outcome == Outcome::Success && ready {
            if let Err(c) = capture(step, &exchange, &mut self.vars) {
                sample.outcome = Outcome::CaptureFailed;
                why = Some(Why::Capture(c));
            }
        }
        if sample.outcome != Outcome::Success {
            sample.good = false;
            sample.good_service = false;
        }
        roll_over(ctx, exchange.end);
        let mut shard = shard_for(ctx, self.due);
        shard.record(&sample);
        match why {
            Some(Why::Capture(c)) => {
                let capture = &step.captures[c];
                let name = &self.flow.vars[capture.slot].name;
                // A body loadgate kept only in part may hold the value past the cut.
                let cut = exchange.result.as_ref().is_ok_and(|r| {
                    let whole = r.decoded.unwrap_or(r.bytes);
                    capture.from.needs_body() && (r.body.len() as u64) < whole
                });
                // Keyed by the capture: one explanation per capture that finds nothing.
                let key = 0xCA97_0000_0000_0000 | ((k as u64) << 16) | c as u64;
                let max_body = ctx.spec.scenario.max_body;
                shard.record_failure(endpoint, sample.outcome, key, || {
                    let what = if cut {
                        format!(
                            "capture `{name}`: {} found nothing in the first {max_body} bytes kept (max_body): raise max_body",
                            capture.from.describe()
                        )
                    } else {
                        format!("capture `{name}`: {} found nothing", capture.from.describe())
                    };
                    (what, None)
                });
            }
            Some(Why::Exhausted(until)) => {
                let key = 0x9011_0000_0000_0000 | k as u64;
                shard.record_failure(endpoint, sample.outcome, key, || {
                    let what = format!(
                        "until {} {}: not met in {} attempts",
                        until.path.as_str(),
                        describe(&until.expect),
                        until.max
                    );
                    (what, None)
                });
            }
            None if sample.outcome != Outcome::Success => {
                // What the target answered may hold what earlier steps captured (a
                // token echoed back): masked as the environment's values are, the
                // masks made only for a failure not explained yet.
                let secrets = || self.secrets();
                crate::classify::record_failure(
                    &mut shard,
                    endpoint,
                    prepared,
                    &exchange,
                    sample.outcome,
                    secrets,
                );
            }
            None => {}
        }
        if sample.outcome == Outcome::Success {
            let due_s = intended.saturating_duration_since(start_of(ctx)).as_secs();
            shard.record_due_success(endpoint, due_s);
        }
        let outcome = (sample.outcome != Outcome::Success || ready).then_some(sample.outcome);
        Ok((outcome, sent, exchange.end))
    }
}

impl Iteration<'_> {
    /// Records step `k` (of `endpoint`) as failed before it was sent: a value the
    /// earlier steps captured cannot go in its request.
    fn unusable(&self, k: usize, endpoint: usize) {
        let ctx = self.ctx;
        let sample = Sample::new(endpoint, Outcome::CaptureFailed, 0);
        let mut shard = shard_for(ctx, self.due);
        shard.record_send(endpoint, None, false);
        shard.record(&sample);
        let key = 0xBAD0_0000_0000_0000 | k as u64;
        shard.record_failure(endpoint, Outcome::CaptureFailed, key, || {
            let what = "a captured value cannot go in this step's request (a character a URL or header cannot hold): not sent".to_string();
            (what, None)
        });
    }

    /// The scenario's secrets, this iteration's cookies' and secret variables' values.
    fn secrets(&self) -> loadgate_scenario::Secrets {
        let scenario = &self.ctx.spec.scenario;
        let mut secrets = match self.jar {
            Some(jar) => crate::session::masked(&scenario.secrets, &jar.borrow()),
            None => scenario.secrets.clone(),
        };
        for (var, value) in self.flow.vars.iter().zip(self.vars.iter()) {
            if var.secret {
                secrets.add(&var.name, value);
            }
        }
        if self.ctx.auth.is_some() {
            auth::mask(self.ctx, self.vu, self.token.as_ref(), &mut secrets);
        }
        secrets
    }
}

/// Why a step whose answer passed its checks failed.
enum Why<'a> {
    /// Its capture number `.0` found nothing.
    Capture(usize),
    /// Its last attempt was still not ready.
    Exhausted(&'a Until),
}

/// How an `until` condition reads in an explanation.
fn describe(expect: &JsonExpect) -> String {
    match expect {
        JsonExpect::Equals(v) => format!("equals {v}"),
        JsonExpect::Exists(true) => "exists".into(),
        JsonExpect::Exists(false) => "does not exist".into(),
    }
}

/// Whether `exchange`'s answer meets `until`.
fn holds(until: &Until, exchange: &Exchange) -> bool {
    let Ok(response) = &exchange.result else {
        return false;
    };
    let found = capture::find(&response.body, until.path.steps()).filter(|v| !v.is_null());
    match &until.expect {
        JsonExpect::Equals(v) => found.as_ref() == Some(v),
        JsonExpect::Exists(b) => found.is_some() == *b,
    }
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
    // A JSON path's value is found in one pass that builds nothing else; a step of
    // many JSON captures parses the body once for all of them instead.
    let paths = step
        .captures
        .iter()
        .filter(|c| matches!(c.from, CaptureFrom::Json(_)))
        .count();
    let mut json: Option<Option<serde_json::Value>> = None;
    for (i, c) in step.captures.iter().enumerate() {
        let found = match &c.from {
            // Into the variable's own buffer: the iteration ends if it finds nothing.
            CaptureFrom::Json(path) if paths <= ONE_PASS_PATHS => {
                match capture::text_into(&response.body, path.steps(), &mut vars[c.slot]) {
                    true => continue,
                    false => return Err(i),
                }
            }
            from => found(from, response, &mut json),
        };
        match found {
            Some(v) => vars[c.slot] = v,
            None => return Err(i),
        }
    }
    Ok(())
}

/// The value `from` finds in `response`; `json`: the body parsed as JSON, once, by the
/// first lookup that needs it (see [`capture`] for the one-pass lookup of a few).
pub(super) fn found(
    from: &CaptureFrom,
    response: &crate::client::Response,
    json: &mut Option<Option<serde_json::Value>>,
) -> Option<String> {
    match from {
        CaptureFrom::Json(path) => {
            let doc = json.get_or_insert_with(|| serde_json::from_slice(&response.body).ok());
            doc.as_ref()
                .and_then(|d| capture::find_in(d, path.steps()))
                .cloned()
                .and_then(capture::text)
        }
        CaptureFrom::Header(name) => response
            .headers()
            .get(name.as_str())
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        CaptureFrom::Cookie(name) => response
            .headers()
            .get_all(http::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| {
                let pair = v.split(';').next()?;
                let (n, value) = pair.split_once('=')?;
                (n.trim() == name).then(|| value.trim().trim_matches('"').to_string())
            })
            .next_back(),
        CaptureFrom::Regex(re) => {
            let body = String::from_utf8_lossy(&response.body);
            re.captures(&body).map(|m| {
                m.get(1)
                    .or_else(|| m.get(0))
                    .map_or(String::new(), |g| g.as_str().to_string())
            })
        }
    }
}

/// The most JSON captures of one step that are each found in a pass of their own
/// (`capture::find`, several times cheaper than building the whole document); a step
/// of more parses its body once for all of them.
const ONE_PASS_PATHS: usize = 2;
