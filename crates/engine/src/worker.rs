//! One worker: a thread with its own single-threaded tokio runtime, its own connection
//! pool and its own [`Shard`]. Nothing is shared between workers while requests run, so
//! recording a sample takes no lock; the shard is handed to the aggregator at each
//! 1-second boundary and a recycled one takes its place.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use loadgate_metrics::{Sample, Shard, StreamSample};
use loadgate_scenario::{Checks, DataMode, GoodLimits, LoadModel, RenderCtx, Scenario};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::sync::{watch, Notify};

use crate::call::{execute, Call, Exchange};
use crate::client::{ClientOptions, HttpClient, Turn};
use crate::deadline::Deadlines;
use crate::gate::Gate;
use crate::mix::Mix;
use crate::request::{Built, Prepared};
use crate::schedule::{wake_time, Schedule};
use crate::segment::Segment;
use crate::session::Jar;

/// What a worker tells the aggregator.
pub(crate) enum Msg {
    /// The worker's data for interval `index` (second `index` of the run).
    Interval {
        worker: usize,
        index: u64,
        shard: Shard,
    },
    /// The worker has finished; `missed` arrivals were never sent because the generator
    /// fell more than the grace period behind the end of the schedule, and `abandoned`
    /// requests were still in flight when it stopped waiting for them.
    Done {
        worker: usize,
        missed: u64,
        abandoned: u64,
        /// The CPU the worker ran pinned to, if it was.
        pinned: Option<usize>,
    },
    /// Requests due (open model) or sent (closed model) in the warm-up that completed
    /// after it: warm-up data, sent once at the end so that no measured second holds
    /// them.
    WarmupTail { shard: Shard },
    /// The worker could not start, or panicked.
    Failed { worker: usize, failure: Failure },
}

/// Why a worker stopped before its time.
pub(crate) enum Failure {
    /// Its client or requests could not be built.
    Setup(String),
    /// It found no descriptor for its runtime.
    Descriptors(String),
    /// It panicked (a bug).
    Panicked(String),
}

impl Failure {
    pub(crate) fn into_error(self, worker: usize) -> crate::EngineError {
        use crate::EngineError;
        match self {
            Failure::Setup(message) => EngineError::Worker { worker, message },
            Failure::Descriptors(message) => EngineError::Descriptors { worker, message },
            Failure::Panicked(message) => EngineError::Panicked { worker, message },
        }
    }
}

pub(crate) struct WorkerSpec {
    pub index: usize,
    pub workers: usize,
    pub scenario: Arc<Scenario>,
    pub base_url: String,
    pub insecure: bool,
    pub seed: u64,
    /// Set by the aggregator between the two waits on `ready`.
    pub start: Arc<std::sync::OnceLock<Instant>>,
    /// Every worker and the aggregator: once when ready, once after `start` is set.
    pub ready: Arc<Gate>,
    pub histogram_max_us: u64,
    pub tx: mpsc::Sender<Msg>,
    pub spare: mpsc::Receiver<Shard>,
    pub stop: watch::Receiver<u8>,
    /// When a stop was first asked for (see `StopSignal::triggered_at`).
    pub stopped_at: Arc<std::sync::OnceLock<Instant>>,
    /// How long to wait for in-flight requests once a stop was asked for.
    pub grace: Duration,
    /// Open model: the next arrival no worker has claimed yet (counted in this
    /// segment's arrivals). Shared by all workers.
    pub arrivals: Arc<AtomicU64>,
    /// This process's share of the load.
    pub segment: Segment,
    /// The CPU this worker is pinned to, if any (see `affinity`).
    pub cpu: Option<usize>,
    /// Open model: where the worker enlists its run-queue wait for the pause meter.
    pub run_delays: Option<crate::runqueue::Roll>,
    /// CAs trusted beside the built-in roots, and the client certificate.
    pub tls_files: Arc<crate::TlsFiles>,
    /// `[auth]` with `scope = "run"`: the run's token, shared by every worker.
    pub auth_cell: Option<crate::auth::TokenCell>,
}

/// Claimed by a worker that gave up on the rest of the schedule, so that every other
/// worker's next claim falls past the end.
const GAVE_UP: u64 = u64::MAX >> 1;

/// How far behind the end of its schedule an open-model worker may run before it gives up
/// on the remaining arrivals (and counts them as missed).
const END_GRACE: Duration = Duration::from_secs(1);

/// How long before a send the coarse timer should fire. tokio's timer wheel has 1 ms
/// granularity and rounds deadlines up, and a thread woken from epoll can be scheduled a
/// little late on a busy machine; 2 ms of margin keeps sends within the 1 ms tolerance.
const EARLY_WAKE: Duration = Duration::from_millis(2);

/// Sleep until `deadline` with sub-millisecond accuracy: sleep to just before the
/// deadline and yield the rest of the way (the runtime keeps polling I/O meanwhile).
async fn sleep_precise(deadline: Instant) {
    let coarse = deadline.checked_sub(EARLY_WAKE).unwrap_or(deadline);
    if Instant::now() < coarse {
        tokio::time::sleep_until(coarse.into()).await;
    }
    while Instant::now() < deadline {
        tokio::task::yield_now().await;
    }
}

struct Ctx {
    spec: WorkerSpec,
    client: HttpClient,
    prepared: Vec<Prepared>,
    mix: Mix,
    shard: RefCell<Shard>,
    /// The interval `shard` belongs to.
    interval: Cell<u64>,
    /// Whole seconds of warm-up: intervals before this are the warm-up's.
    warmup_secs: u64,
    /// What warm-up requests recorded after the warm-up ended (see `Msg::WarmupTail`).
    warm_tail: RefCell<Option<Shard>>,
    in_flight: Cell<usize>,
    drained: Notify,
    /// Every in-flight request's timeout, watched by one task.
    deadlines: Deadlines,
    rng: RefCell<SmallRng>,
    scratch: RefCell<Vec<u8>>,
    /// `[auth]`: its request, row and (run scope) token.
    auth: Option<auth::AuthRt>,
}

pub(crate) fn run(spec: WorkerSpec) {
    let (tx, worker, gate) = (spec.tx.clone(), spec.index, spec.ready.clone());
    // A panic anywhere in the worker must not leave the aggregator waiting: before the
    // start it breaks the gate (so no one waits for this worker there), after it the
    // `Failed` message ends the run.
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(spec)));
    if let Err(panic) = outcome {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into());
        let _ = tx.send(Msg::Failed {
            worker,
            failure: Failure::Panicked(message),
        });
        gate.fail();
    }
}

fn work(spec: WorkerSpec) {
    // Best effort: a container may forbid it, and the run is valid either way.
    let pinned = spec.cpu.filter(|&cpu| crate::affinity::pin_current(cpu));
    // Before the start gate, where the run takes the roll to start the pause meter.
    if let Some(roll) = &spec.run_delays {
        roll.enlist_this_thread();
    }
    let tx = spec.tx.clone();
    let worker = spec.index;
    let gate = spec.ready.clone();
    // A worker that cannot start says why, then breaks the gate: the run ends before
    // any load, and no one waits for this worker.
    let fail = |failure: Failure| {
        let _ = tx.send(Msg::Failed { worker, failure });
        gate.fail();
    };
    // With tokio's `signal` feature every runtime with I/O also duplicates the signal
    // pipe; the binary creates that pipe first thing (`startup::prepare`), so a build
    // short of descriptors fails here with EMFILE instead of panicking in tokio.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) if crate::fds::is_exhaustion(&e) => {
            return fail(Failure::Descriptors(format!("cannot start a runtime: {e}")));
        }
        Err(e) => return fail(Failure::Setup(format!("cannot start a runtime: {e}"))),
    };
    let local = tokio::task::LocalSet::new();
    let (fail, gate) = (&fail, &gate);
    local.block_on(&rt, async move {
        let scenario = spec.scenario.clone();
        let (client, prepared, auth) = match setup(&scenario, &spec) {
            Ok(parts) => parts,
            Err(error) => return fail(Failure::Setup(error)),
        };
        // Endpoints' rows, then flows': a pick of a flow's row runs one iteration of it.
        let weights = scenario.row_weights();
        let ctx = Rc::new(Ctx {
            shard: RefCell::new(Shard::with_rows(
                scenario.row_layout(),
                spec.histogram_max_us,
            )),
            rng: RefCell::new(SmallRng::seed_from_u64(
                spec.seed.wrapping_add(spec.index as u64 * 0x9E37_79B9),
            )),
            spec,
            client,
            prepared,
            mix: Mix::new(&weights),
            interval: Cell::new(0),
            warmup_secs: scenario.load.warmup.as_secs_f64().ceil() as u64,
            warm_tail: RefCell::new(None),
            in_flight: Cell::new(0),
            drained: Notify::new(),
            deadlines: Deadlines::new(
                scenario
                    .endpoints
                    .iter()
                    .map(|e| e.timeout)
                    .min()
                    .unwrap_or(scenario.timeout),
            ),
            scratch: RefCell::new(Vec::with_capacity(512)),
            auth,
        });
        // Ready: the client and requests are built. The aggregator fixes the start time
        // only once every worker is here, so no first send is late because of start-up.
        // A broken gate: another worker (or the aggregator) could not start; no load.
        if !(gate.wait() && gate.wait()) {
            return;
        }
        // No coarse sleep to `start` here: tokio rounds timers up by up to 1 ms, which
        // would make arrival 0 (due exactly at `start`) late. Each model waits precisely.

        let ticker = tokio::task::spawn_local(tick(ctx.clone()));
        let watch = tokio::task::spawn_local({
            let ctx = ctx.clone();
            async move { ctx.deadlines.watch().await }
        });
        let missed = match scenario.load.model {
            LoadModel::Open => open(ctx.clone()).await,
            LoadModel::Closed => {
                closed(ctx.clone()).await;
                0
            }
        };
        let abandoned = drain(&ctx).await;
        for task in [ticker, watch] {
            task.abort();
            let _ = task.await;
        }
        roll_over(&ctx, Instant::now());
        let index = ctx.interval.get();
        let shard = ctx.shard.replace(Shard::new(0, 1));
        let _ = ctx.spec.tx.send(Msg::Interval {
            worker,
            index,
            shard,
        });
        if let Some(shard) = ctx.warm_tail.take() {
            let _ = ctx.spec.tx.send(Msg::WarmupTail { shard });
        }
        let _ = ctx.spec.tx.send(Msg::Done {
            worker,
            missed,
            abandoned,
            pinned,
        });
    });
}

/// This worker's connection pool, prepared requests and `[auth]`.
fn setup(
    scenario: &Scenario,
    spec: &WorkerSpec,
) -> Result<(HttpClient, Vec<Prepared>, Option<auth::AuthRt>), String> {
    // This worker's share of a fixed pool: the run has at least as many connections
    // as workers (`run` sees to it), so every share holds one or more.
    let connections = scenario
        .load
        .connections
        .map(|n| n / spec.workers + usize::from(spec.index < n % spec.workers));
    let client = HttpClient::new(ClientOptions {
        connect_timeout: scenario.connect_timeout,
        http: scenario.http,
        insecure: spec.insecure,
        connections,
        tls_files: spec.tls_files.clone(),
    })
    .map_err(|e| e.to_string())?;
    let mut prepared = Prepared::all(scenario, &spec.base_url).map_err(|e| e.to_string())?;
    // What the flows' steps capture, or poll for, must be kept of their responses.
    for step in scenario.flows.iter().flat_map(|f| &f.steps) {
        if step.until.is_some() {
            prepared[step.endpoint].keep_body();
        }
        for c in &step.captures {
            let p = &mut prepared[step.endpoint];
            if c.from.needs_body() {
                p.keep_body();
            } else {
                p.keep_response_headers();
            }
        }
    }
    // A jar reads every Set-Cookie of the requests it is used with.
    for flow in scenario.flows.iter().filter(|f| f.cookies) {
        for step in &flow.steps {
            prepared[step.endpoint].keep_response_headers();
        }
    }
    if scenario.endpoint_cookies && matches!(scenario.load.model, LoadModel::Closed) {
        for p in &mut prepared {
            p.keep_response_headers();
        }
    }
    let auth = match (&scenario.auth, scenario.auth_row()) {
        (Some(a), Some(row)) => {
            let mut p =
                Prepared::of(scenario, &a.endpoint, &spec.base_url).map_err(|e| e.to_string())?;
            if a.token.needs_body() {
                p.keep_body();
            } else {
                p.keep_response_headers();
            }
            Some(auth::AuthRt {
                prepared: p,
                row,
                run_cell: spec.auth_cell.clone(),
            })
        }
        _ => None,
    };
    Ok((client, prepared, auth))
}

/// The prepared request of a row of requests: an endpoint's, or `[auth]`'s.
fn prepared_of(ctx: &Ctx, row: usize) -> &Prepared {
    match &ctx.auth {
        Some(a) if a.row == row => &a.prepared,
        _ => &ctx.prepared[row],
    }
}

/// Level of the stop signal that ends issuing (in-flight requests may finish).
pub(crate) const STOP: u8 = 1;
/// Level that also gives up on in-flight requests.
pub(crate) const ABANDON: u8 = 2;

/// Waits for in-flight requests: each is bounded by the request timeout; after a stop,
/// by the grace period too; after a second stop, not at all. Returns how many were
/// given up on.
async fn drain(ctx: &Ctx) -> u64 {
    let mut stop = ctx.spec.stop.clone();
    let mut deadline: Option<Instant> = None;
    while ctx.in_flight.get() > 0 {
        let level = *stop.borrow();
        if level >= ABANDON {
            break;
        }
        if level >= STOP && deadline.is_none() {
            deadline = Some(Instant::now() + ctx.spec.grace);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let far = Instant::now() + Duration::from_secs(3600);
        tokio::select! {
            _ = ctx.drained.notified() => {}
            _ = stop.changed() => {}
            _ = tokio::time::sleep_until(deadline.unwrap_or(far).into()) => {}
        }
    }
    ctx.in_flight.get() as u64
}

fn start_of(ctx: &Ctx) -> Instant {
    *ctx.spec.start.get().expect("set before any task runs")
}

/// The shard that records a request due (open model) or sent (closed model) at `due`:
/// the current interval's, unless the request belongs to the warm-up and the warm-up
/// is over. A request belongs to the phase it was due in, whenever it completes, so no
/// warm-up request is judged with the measured phase.
fn shard_for(ctx: &Ctx, due: Instant) -> std::cell::RefMut<'_, Shard> {
    let past_warmup = ctx.interval.get() >= ctx.warmup_secs;
    if past_warmup && due < start_of(ctx) + Duration::from_secs(ctx.warmup_secs) {
        std::cell::RefMut::map(ctx.warm_tail.borrow_mut(), |t| {
            t.get_or_insert_with(|| {
                Shard::with_rows(ctx.spec.scenario.row_layout(), ctx.spec.histogram_max_us)
            })
        })
    } else {
        ctx.shard.borrow_mut()
    }
}

/// Hands the shard to the aggregator for every 1-second boundary at or before `t`.
/// Called by the ticker with the current time and by the open model with each
/// arrival's intended time, so an arrival due exactly on a boundary is counted in the
/// interval it belongs to, whichever of the two runs first.
fn roll_over(ctx: &Ctx, t: Instant) {
    let start = start_of(ctx);
    loop {
        let index = ctx.interval.get();
        if t < start + Duration::from_secs(index + 1) {
            return;
        }
        let fresh = ctx.spec.spare.try_recv().unwrap_or_else(|_| {
            Shard::with_rows(ctx.spec.scenario.row_layout(), ctx.spec.histogram_max_us)
        });
        let shard = ctx.shard.replace(fresh);
        let _ = ctx.spec.tx.send(Msg::Interval {
            worker: ctx.spec.index,
            index,
            shard,
        });
        ctx.interval.set(index + 1);
    }
}

/// Rolls the shard over at every 1-second boundary of the run.
async fn tick(ctx: Rc<Ctx>) {
    loop {
        let boundary = start_of(&ctx) + Duration::from_secs(ctx.interval.get() + 1);
        tokio::time::sleep_until(boundary.into()).await;
        roll_over(&ctx, Instant::now().max(boundary));
    }
}

/// Waits for the next send without spinning. On Linux a timerfd, armed to the
/// nanosecond and registered in this worker's epoll, wakes the runtime at the deadline
/// (tokio's own timers round up to the millisecond); elsewhere the early-wake-and-yield
/// fallback. One timer per worker, re-armed for each send.
struct Pacer {
    #[cfg(target_os = "linux")]
    delay: Option<tokio_timerfd::Delay>,
}

impl Pacer {
    fn new() -> Pacer {
        Pacer {
            #[cfg(target_os = "linux")]
            delay: tokio_timerfd::Delay::new(Instant::now()).ok(),
        }
    }

    /// Returns at once if `deadline` has passed; otherwise sleeps until `wake` (at or
    /// after `deadline`, see [`wake_time`]).
    async fn until(&mut self, deadline: Instant, wake: Instant) {
        if Instant::now() >= deadline {
            // Catching up: send without waiting, but let the runtime read answers and
            // roll intervals over every so often (tokio's task budget decides).
            tokio::task::consume_budget().await;
            return;
        }
        #[cfg(target_os = "linux")]
        if let Some(delay) = self.delay.as_mut() {
            delay.reset(wake);
            if delay.await.is_ok() {
                return;
            }
        }
        sleep_precise(wake).await;
    }
}

/// Open model. Workers claim arrivals from one shared counter, each holding at most the
/// one it is waiting to send. A worker that the machine leaves unscheduled for a while
/// therefore delays only the arrival it holds: the others go on claiming and sending on
/// time. (A fixed split, arrival i to worker i mod W, would make every arrival of the
/// stalled worker late.) Returns how many arrivals were never sent because the generator
/// fell hopelessly behind.
async fn open(ctx: Rc<Ctx>) -> u64 {
    let scenario = &ctx.spec.scenario;
    let schedule = Schedule::new(&scenario.load);
    let start = start_of(&ctx);
    let end = start + scenario.load.duration();
    let tolerance = scenario.load.late_tolerance;
    let window = scenario.load.send_window;
    let workers = ctx.spec.workers as u64;
    let cap = scenario
        .load
        .max_in_flight
        .div_ceil(ctx.spec.workers)
        .max(1);
    let mut stop = ctx.spec.stop.clone();
    let claims = &ctx.spec.arrivals;
    let segment = ctx.spec.segment;
    let mut pacer = Pacer::new();
    let mut k = claims.fetch_add(1, Ordering::Relaxed);
    loop {
        // Arrival number `k` of this segment is arrival `i` of the whole schedule.
        let i = segment.global(k);
        let Some(due) = schedule.due(i) else { break };
        let intended = start + due;
        let next = schedule.due(segment.global(k + workers));
        let wake = start + wake_time(due, next, window);
        tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s >= STOP) => return 0,
            _ = pacer.until(intended, wake) => {}
        }
        // Nothing due at or after a stop is sent, so the stop ends the measured phase.
        if ctx.spec.stopped_at.get().is_some_and(|&t| intended >= t) {
            return 0;
        }
        let now = Instant::now();
        if now > end + END_GRACE {
            // The generator is hopelessly behind: what is left was never sent. The one
            // held here, and every arrival not yet claimed (counted by one worker only).
            let unclaimed = claims.swap(GAVE_UP, Ordering::Relaxed);
            return 1 + segment.len_of(schedule.len()).saturating_sub(unclaimed);
        }
        roll_over(&ctx, intended);
        let endpoint = ctx.mix.pick(i, &mut *ctx.rng.borrow_mut());
        if ctx.in_flight.get() >= cap {
            shard_for(&ctx, intended).record_drop(endpoint);
        } else if endpoint >= ctx.prepared.len() {
            // A flow's row: one iteration of it, counted in flight now as a request is.
            ctx.in_flight.set(ctx.in_flight.get() + 1);
            let c = ctx.clone();
            tokio::task::spawn_local(async move {
                c.in_flight.set(c.in_flight.get() - 1);
                flow::run(c, endpoint, i, k, intended, Some(tolerance), None, None).await;
            });
        } else if let Some(req) = build_request(&ctx, endpoint, i, k, intended) {
            // Counted in flight now, not when the task first runs, so the cap holds.
            ctx.in_flight.set(ctx.in_flight.get() + 1);
            let c = ctx.clone();
            if c.client.fixed_pool() {
                // Sent, and timed, once it has its turn in the pool.
                tokio::task::spawn_local(async move {
                    c.in_flight.set(c.in_flight.get() - 1);
                    send_in_turn(c, endpoint, req, intended, tolerance).await;
                });
            } else {
                let lag = now.saturating_duration_since(intended);
                shard_for(&ctx, intended).record_send(endpoint, Some(micros(lag)), lag > tolerance);
                tokio::task::spawn_local(async move {
                    c.in_flight.set(c.in_flight.get() - 1);
                    send_open(c, endpoint, req, intended, now).await;
                });
            }
        }
        k = claims.fetch_add(1, Ordering::Relaxed);
    }
    // The schedule may end before the profile does (a low rate's last arrival): stay to
    // the end, so that every second of the profile is an interval of its own.
    tokio::select! {
        biased;
        _ = stop.wait_for(|s| *s >= STOP) => {}
        _ = tokio::time::sleep_until(end.into()) => {}
    }
    0
}

/// Renders request `seq` (numbered across all segments) for `endpoint`, due at `due`;
/// `local` is its number within this segment, which picks the segment's own data rows.
/// A template that renders into an invalid URL or header cannot become a request: it is
/// never sent, counted as unbuilt (the generator's input, not the target), and `None`
/// returned.
fn build_request(ctx: &Ctx, endpoint: usize, seq: u64, local: u64, due: Instant) -> Option<Built> {
    let row = if ctx.prepared[endpoint].uses_row() {
        pick_row(ctx, local)
    } else {
        None
    };
    build_with(ctx, endpoint, seq, row, &[], due)
}

/// The data row (its index) of request or flow iteration number `local` of this
/// segment: the segment's own rows, in turn or at random; `None` without a data file.
fn pick_row(ctx: &Ctx, local: u64) -> Option<usize> {
    let d = ctx.spec.scenario.data.as_ref()?;
    let segment = ctx.spec.segment;
    Some(match d.mode {
        DataMode::Sequential => segment.row(local, d.rows.len()),
        DataMode::Random => {
            let mine = segment.len_of(d.rows.len() as u64).max(1);
            segment.global(ctx.rng.borrow_mut().gen_range(0..mine)) as usize
        }
    })
}

/// [`build_request`] with its data row chosen (`row`) and a flow's variables (`vars`).
fn build_with(
    ctx: &Ctx,
    endpoint: usize,
    seq: u64,
    row: Option<usize>,
    vars: &[String],
    due: Instant,
) -> Option<Built> {
    let built = render(ctx, endpoint, seq, row, vars);
    if built.is_err() {
        shard_for(ctx, due).record_unbuilt(endpoint);
    }
    built.ok()
}

/// Renders request `seq` of `endpoint` with data row `row` and a flow's `vars`.
fn render(
    ctx: &Ctx,
    endpoint: usize,
    seq: u64,
    row: Option<usize>,
    vars: &[String],
) -> Result<Built, crate::request::InvalidRequest> {
    render_prepared(ctx, &ctx.prepared[endpoint], seq, row, vars)
}

/// Renders request `seq` of `prepared` with data row `row` and a flow's `vars`.
fn render_prepared(
    ctx: &Ctx,
    prepared: &Prepared,
    seq: u64,
    row: Option<usize>,
    vars: &[String],
) -> Result<Built, crate::request::InvalidRequest> {
    {
        let scenario = &ctx.spec.scenario;
        let mut rng = ctx.rng.borrow_mut();
        let row = scenario
            .data
            .as_ref()
            .zip(row)
            .map(|(d, i)| d.rows[i].as_slice());
        let mut rctx = RenderCtx {
            seq,
            rng: &mut *rng,
            row,
            lists: &scenario.lists,
            vars,
        };
        prepared.build(&mut rctx, &mut ctx.scratch.borrow_mut())
    }
}

/// Sends one step of a flow, due at `intended`, and returns its exchange and when it
/// was sent; the send is counted (with its lag in the open model, `tolerance` set) in
/// the phase of `phase_due` (the iteration's), and for the rows `also` too (a flow's
/// row at its first step, a poll's at its first attempt). With a fixed pool it waits
/// for its turn first, as [`send_in_turn`] does; one that waits a whole timeout is
/// dropped (`None`). `waited`: how long it waited for its `[auth]` token, the target's
/// time (inside its latency, but no lag of the generator's).
#[allow(clippy::too_many_arguments)]
async fn execute_step(
    ctx: &Rc<Ctx>,
    endpoint: usize,
    req: Built,
    intended: Instant,
    phase_due: Instant,
    tolerance: Option<Duration>,
    also: &[usize],
    jar: Option<&RefCell<Jar>>,
    waited: Duration,
) -> Option<(Exchange, Instant)> {
    let prepared = prepared_of(ctx, endpoint);
    let turn = if ctx.client.fixed_pool() {
        let turn = ctx
            .deadlines
            .run(
                intended + waited + prepared.timeout(),
                ctx.client.wait_turn(prepared.origin()),
            )
            .await;
        match turn {
            Ok(turn) => Some(turn),
            Err(_elapsed) => {
                let mut shard = shard_for(ctx, phase_due);
                // The run's drop, counted once: the step's (`Shard::arrivals`); the
                // flow's row counts the iteration it cut short apart (`flow::run`).
                shard.record_drop(endpoint);
                return None;
            }
        }
    } else {
        None
    };
    let now = Instant::now();
    roll_over(ctx, now);
    {
        let mut shard = shard_for(ctx, phase_due);
        let lag = now
            .saturating_duration_since(intended)
            .saturating_sub(waited);
        let (lag_us, late) = match tolerance {
            Some(t) => (Some(micros(lag)), lag > t),
            None => (None, false),
        };
        shard.record_send(endpoint, lag_us, late);
        // The flow's row counts the iteration sent; its lag is its first step's.
        for &row in also {
            shard.record_send(row, None, false);
        }
    }
    let mut exchange = exchange(ctx, endpoint, req, (intended, now), phase_due, turn, jar).await;
    auth::waited_for(&mut exchange, waited);
    let sent = exchange.sent;
    Some((exchange, sent))
}

/// Runs one request of `endpoint` sent at `times` (intended, actual): a stream's gaps
/// go into the interval each ends in, as they end, in the phase of `phase_due`.
async fn exchange(
    ctx: &Ctx,
    endpoint: usize,
    req: Built,
    times: (Instant, Instant),
    phase_due: Instant,
    turn: Option<Turn>,
    jar: Option<&RefCell<Jar>>,
) -> Exchange {
    let mut gaps = |at: Instant, gap: Duration| {
        roll_over(ctx, at);
        shard_for(ctx, phase_due).record_gap(endpoint, micros(gap));
    };
    let prepared = prepared_of(ctx, endpoint);
    let call = Call::Http(req);
    execute(
        &ctx.client,
        prepared,
        call,
        times,
        &ctx.deadlines,
        turn,
        &mut gaps,
        jar,
    )
    .await
}

/// Open model with a fixed pool (`connections = N`): waits for the request's turn at a
/// connection, then sends it. The wait is the generator's (its pool is full), not the
/// target's: the request is counted sent when its turn comes, its send lag runs to then
/// (inside latency, outside service time), and its timeout starts then. One still
/// waiting a whole timeout after it was due is never sent: counted as dropped, as an
/// arrival at `max_in_flight` is, never as a timeout of the target's.
async fn send_in_turn(
    ctx: Rc<Ctx>,
    endpoint: usize,
    req: Built,
    intended: Instant,
    tolerance: Duration,
) {
    ctx.in_flight.set(ctx.in_flight.get() + 1);
    // Its token first: no connection is held while it is fetched.
    let (req, carried) = match auth::token(&ctx, endpoint, None).await {
        Ok(carried) => (auth::carry(&ctx, req, carried.token.as_ref()), carried),
        Err(auth::NoToken) => {
            ctx.in_flight.set(ctx.in_flight.get() - 1);
            auth::record_no_token(&ctx, endpoint, intended, false, &[]);
            ctx.drained.notify_one();
            return;
        }
    };
    let waited = carried.waited;
    let prepared = &ctx.prepared[endpoint];
    let turn = ctx
        .deadlines
        .run(
            intended + waited + prepared.timeout(),
            ctx.client.wait_turn(prepared.origin()),
        )
        .await;
    ctx.in_flight.set(ctx.in_flight.get() - 1);
    let now = Instant::now();
    roll_over(&ctx, now);
    match turn {
        Ok(turn) => {
            // The wait for a token is the target's (its login), no lag of the generator's.
            let lag = now
                .saturating_duration_since(intended)
                .saturating_sub(waited);
            shard_for(&ctx, intended).record_send(endpoint, Some(micros(lag)), lag > tolerance);
            send_and_record(
                ctx,
                endpoint,
                req,
                intended,
                now,
                Some(turn),
                None,
                carried,
                None,
            )
            .await;
        }
        Err(_elapsed) => {
            shard_for(&ctx, intended).record_drop(endpoint);
            ctx.drained.notify_one();
        }
    }
}

/// Open model without a fixed pool: a request counted sent at `started` (its arrival),
/// sent once it has its `[auth]` token (at once, unless one is being fetched; then its
/// timeout runs from when the token came, its service time still from `started`: the
/// wait is the target's login).
async fn send_open(ctx: Rc<Ctx>, endpoint: usize, req: Built, intended: Instant, started: Instant) {
    ctx.in_flight.set(ctx.in_flight.get() + 1);
    let authed = auth::token(&ctx, endpoint, None).await;
    ctx.in_flight.set(ctx.in_flight.get() - 1);
    match authed {
        Ok(carried) => {
            let req = auth::carry(&ctx, req, carried.token.as_ref());
            let started = if carried.waited.is_zero() {
                started
            } else {
                Instant::now()
            };
            send_and_record(
                ctx, endpoint, req, intended, started, None, None, carried, None,
            )
            .await;
        }
        Err(auth::NoToken) => {
            auth::record_no_token(&ctx, endpoint, intended, true, &[]);
            ctx.drained.notify_one();
        }
    }
}

/// Sends one request and records it; `in_flight` covers it until the sample is recorded.
/// `intended` is when it was due (open model) or sent (closed), `started` when the
/// generator got to it: latency runs from the first, service time from the second.
/// `carried`: the `[auth]` token it carries (a 401 drops it from `vu`'s or the run's
/// cell), masked in what its failure shows, and the wait for it before `started`
/// (counted in its service time).
#[allow(clippy::too_many_arguments)]
async fn send_and_record(
    ctx: Rc<Ctx>,
    endpoint: usize,
    req: Built,
    intended: Instant,
    started: Instant,
    turn: Option<Turn>,
    jar: Option<&RefCell<Jar>>,
    carried: auth::Carried,
    vu: Option<&auth::VuToken>,
) {
    ctx.in_flight.set(ctx.in_flight.get() + 1);
    let prepared = &ctx.prepared[endpoint];
    let auth::Carried { token, waited } = carried;
    let mut exchange = exchange(
        &ctx,
        endpoint,
        req,
        (intended, started),
        intended,
        turn,
        jar,
    )
    .await;
    auth::waited_for(&mut exchange, waited);
    auth::answered(&ctx, token.as_ref(), vu, &exchange);
    let sample = sample(endpoint, prepared.checks(), prepared.goodput(), &exchange);
    // The interval of the completion, even if the ticker has not woken yet.
    roll_over(&ctx, exchange.end);
    let mut shard = shard_for(&ctx, intended);
    shard.record(&sample);
    if sample.outcome != loadgate_metrics::Outcome::Success {
        // Masks made only for a failure not explained yet.
        let secrets = || {
            let scenario = &ctx.spec.scenario.secrets;
            let mut s = match jar {
                Some(jar) => {
                    std::borrow::Cow::Owned(crate::session::masked(scenario, &jar.borrow()))
                }
                None => std::borrow::Cow::Borrowed(scenario),
            };
            if ctx.auth.is_some() {
                auth::mask(&ctx, vu, token.as_ref(), s.to_mut());
            }
            s
        };
        crate::classify::record_failure(
            &mut shard,
            endpoint,
            prepared,
            &exchange,
            sample.outcome,
            secrets,
        );
    }
    if sample.outcome == loadgate_metrics::Outcome::Success {
        let due_s = intended.saturating_duration_since(start_of(&ctx)).as_secs();
        shard.record_due_success(endpoint, due_s);
    }
    drop(shard);
    ctx.in_flight.set(ctx.in_flight.get() - 1);
    ctx.drained.notify_one();
}

/// What `exchange`, a request of `endpoint`, records: its timings from the instants of
/// its path, its outcome (a response classified by the endpoint's `checks`, or the
/// class of its failure), and whether it was good (a success within `limits`).
fn sample(endpoint: usize, checks: &Checks, limits: &GoodLimits, exchange: &Exchange) -> Sample {
    let (outcome, status, bytes, local) = match &exchange.result {
        Ok(r) => (
            crate::classify::response(checks, r.status, &r.body, exchange.stream.as_ref()),
            Some(r.status),
            r.bytes,
            false,
        ),
        Err(e) => (e.outcome, None, 0, e.local()),
    };
    let (decoded_bytes, protocol) = match &exchange.result {
        Ok(r) => (r.decoded, Some(r.protocol)),
        Err(_) => (None, None),
    };
    let stream = exchange.stream.as_ref().map(|s| StreamSample {
        ttft_us: exchange.time_to_first_token().map(micros),
        events: s.content_events,
        tokens: s.tokens.unwrap_or(s.content_events),
        oversized: s.oversized,
        skipped: s.skipped,
    });
    Sample {
        endpoint,
        latency_us: micros(exchange.latency()),
        service_us: micros(exchange.service_time()),
        outcome,
        status,
        bytes,
        decoded_bytes,
        protocol,
        local,
        resent: exchange.resent,
        connect_us: exchange.connect.map(micros),
        ttfb_us: exchange.time_to_first_byte().map(micros),
        good: outcome == loadgate_metrics::Outcome::Success
            && exchange.within(limits, exchange.intended),
        good_service: outcome == loadgate_metrics::Outcome::Success
            && exchange.within(limits, exchange.sent),
        stream,
        redirects: exchange.redirects,
        cookies_dropped: exchange.cookies_dropped,
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Closed model: this worker runs VUs `index, index + W, ...` of the profile's VU count.
async fn closed(ctx: Rc<Ctx>) {
    let scenario = ctx.spec.scenario.clone();
    let start = start_of(&ctx);
    let end = start + scenario.load.duration();
    let workers = ctx.spec.workers;
    let mut stop = ctx.spec.stop.clone();
    let seq = Rc::new(Cell::new(0u64));
    let mut vus: Vec<Rc<Cell<bool>>> = Vec::new();
    let mut started = 0u64;
    tokio::select! {
        _ = sleep_precise(start) => {}
        _ = stop.wait_for(|s| *s >= STOP) => return,
    }
    let segment = ctx.spec.segment;
    loop {
        let now = Instant::now();
        if now >= end || (*stop.borrow() >= STOP) {
            break;
        }
        let t = now.duration_since(start).as_secs_f64();
        // This segment's VUs of the profile's count, then this worker's of those.
        let global = (scenario.load.target_at(t) + 1e-9).floor() as u64;
        let global = segment.len_of(global) as usize;
        let mine = (global + workers - 1 - ctx.spec.index.min(global + workers - 1)) / workers;
        while vus.len() < mine {
            let flag = Rc::new(Cell::new(false));
            vus.push(flag.clone());
            // Numbered across workers: a VU's login picks its own data row.
            let id = started * workers as u64 + ctx.spec.index as u64;
            started += 1;
            tokio::task::spawn_local(vu(ctx.clone(), flag, seq.clone(), end, id));
        }
        while vus.len() > mine {
            vus.pop().expect("len > mine >= 0").set(true);
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            _ = stop.wait_for(|s| *s >= STOP) => break,
        }
    }
    for v in &vus {
        v.set(true);
    }
}

async fn vu(ctx: Rc<Ctx>, stopped: Rc<Cell<bool>>, seq: Rc<Cell<u64>>, end: Instant, id: u64) {
    let think = ctx.spec.scenario.load.think_time;
    let workers = ctx.spec.workers as u64;
    let mut stop = ctx.spec.stop.clone();
    // A VU is one user: its cookies last across its iterations.
    let scenario = &ctx.spec.scenario;
    let jar = (scenario.endpoint_cookies || scenario.flows.iter().any(|f| f.cookies))
        .then(|| RefCell::new(Jar::new()));
    // `[auth] scope = "vu"`: its own token.
    let token = ctx
        .auth
        .as_ref()
        .filter(|a| a.run_cell.is_none())
        .map(|_| auth::VuToken {
            cell: crate::auth::TokenCell::new(),
            id,
        });
    while !stopped.get() && Instant::now() < end && *stop.borrow() < STOP {
        let n = seq.get();
        seq.set(n + 1);
        let local = n * workers + ctx.spec.index as u64;
        let global_seq = ctx.spec.segment.global(local);
        // The worker's own count picks from the mix: its numbers across workers
        // (`local`) all leave the same remainder by the worker count, which would give
        // a worker only some endpoints of a mix whose weights sum to a multiple of it
        // (one VU, weights 1 and 1, two workers: never the second endpoint).
        let endpoint = ctx.mix.pick(n, &mut *ctx.rng.borrow_mut());
        let now = Instant::now();
        roll_over(&ctx, now);
        if endpoint >= ctx.prepared.len() {
            let own = scenario
                .flow_of_row(endpoint)
                .is_some_and(|f| f.cookies)
                .then_some(jar.as_ref())
                .flatten();
            let vu_token = token.as_ref();
            flow::run(
                ctx.clone(),
                endpoint,
                global_seq,
                local,
                now,
                None,
                own,
                vu_token,
            )
            .await;
        } else {
            // Its token first: a VU that waited for it is timed from when it wanted to
            // send, the wait in its latency and service time (the target's login), its
            // timeout from its send.
            let wanted = Instant::now();
            let authed = auth::token(&ctx, endpoint, token.as_ref()).await;
            let now = Instant::now();
            roll_over(&ctx, now);
            match (
                authed,
                build_request(&ctx, endpoint, global_seq, local, wanted),
            ) {
                (Ok(carried), Some(req)) => {
                    shard_for(&ctx, wanted).record_send(endpoint, None, false);
                    let own = jar.as_ref().filter(|_| scenario.endpoint_cookies);
                    let req = auth::carry(&ctx, req, carried.token.as_ref());
                    send_and_record(
                        ctx.clone(),
                        endpoint,
                        req,
                        wanted,
                        now,
                        None,
                        own,
                        carried,
                        token.as_ref(),
                    )
                    .await;
                }
                (Err(auth::NoToken), _) => {
                    auth::record_no_token(&ctx, endpoint, now, false, &[]);
                    // No token before the next fetch may begin: wait for it rather
                    // than count a failure per spin.
                    tokio::select! {
                        _ = tokio::time::sleep(crate::auth::RETRY) => {}
                        _ = stop.wait_for(|s| *s >= STOP) => break,
                    }
                }
                // Counted; let the rest of the worker run rather than spin.
                (Ok(_), None) => tokio::task::yield_now().await,
            }
        }
        if !think.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(think) => {}
                _ = stop.wait_for(|s| *s >= STOP) => break,
            }
        }
    }
}

mod auth;
mod flow;
#[cfg(test)]
mod sample_tests;
