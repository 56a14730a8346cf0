//! The run: start workers, merge their interval shards in order, tell every observer,
//! stop when one asks, and return the totals.
//!
//! What a breach means (`abort_on_fail`, windowed budgets) is not decided here: an
//! observer that judges budgets (`loadgate_slo::watch`) asks for the stop, and the run
//! reports its reason.

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use loadgate_metrics::{Control, IntervalView, Observer, Pauses, RunStarted, Shard};
use loadgate_scenario::{LoadModel, Scenario};
use tokio::sync::watch;

use crate::pause::PauseMeter;
use crate::schedule::Schedule;
use crate::segment::Segment;
use crate::worker::{self, Msg, WorkerSpec};
use crate::EngineError;

/// What to run.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The scenario (overrides already applied).
    pub scenario: Arc<Scenario>,
    /// Base URL requests are sent to: scheme://authority[/prefix].
    pub base_url: String,
    /// Skip TLS certificate verification.
    pub insecure: bool,
    /// Worker threads (0 = one per available core).
    pub workers: usize,
    /// Stops the run early when triggered.
    pub stop: StopSignal,
    /// After a stop, how long in-flight requests may still finish.
    pub grace: Duration,
    /// This process's share of the load ([`Segment::WHOLE`] unless several machines
    /// share it).
    pub segment: Segment,
    /// When the schedule begins (so that segments started at different moments begin
    /// together); `None` for as soon as the workers are ready.
    pub start_at: Option<SystemTime>,
    /// Open model: pin each worker to a CPU of its own when there are enough
    /// (`affinity`). The closed model never pins.
    pub pin_workers: bool,
    /// CAs trusted beside the built-in roots, and the client certificate (mTLS).
    pub tls_files: Arc<crate::TlsFiles>,
}

/// A shared signal that stops a run: first issuing ends and in-flight requests may
/// finish within the grace period; [`StopSignal::abandon`] stops waiting for them too.
/// The moment of the first stop ends the measured phase.
#[derive(Debug, Clone)]
pub struct StopSignal(Arc<watch::Sender<u8>>, Arc<std::sync::OnceLock<Instant>>);

impl Default for StopSignal {
    fn default() -> Self {
        StopSignal(Arc::new(watch::channel(0).0), Arc::default())
    }
}

impl StopSignal {
    /// Asks the run to stop.
    pub fn trigger(&self) {
        let _ = self.1.set(Instant::now());
        self.0.send_if_modified(|l| {
            let changed = *l < worker::STOP;
            *l = (*l).max(worker::STOP);
            changed
        });
    }

    /// Asks the run to stop now, without waiting for in-flight requests.
    pub fn abandon(&self) {
        let _ = self.1.set(Instant::now());
        self.0.send_replace(worker::ABANDON);
    }

    /// When a stop was first asked for.
    pub fn triggered_at(&self) -> Option<Instant> {
        self.1.get().copied()
    }

    /// Whether a stop was asked for.
    pub fn is_triggered(&self) -> bool {
        *self.0.borrow() >= worker::STOP
    }

    fn subscribe(&self) -> watch::Receiver<u8> {
        self.0.subscribe()
    }
}

/// Why the run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum StopReason {
    /// The profile ran to its end.
    Completed,
    /// An observer asked the run to stop ([`Control::Stop`]): an `abort_on_fail`
    /// budget was breached.
    Aborted {
        /// `global` or the endpoint name.
        scope: String,
        /// The budget expression.
        budget: String,
    },
    /// Stopped from outside (e.g. Ctrl-C).
    Interrupted,
}

/// Everything a run measured.
#[derive(Debug)]
pub struct RunData {
    /// After warm-up: what SLOs are judged on.
    pub measured: Shard,
    /// During warm-up.
    pub warmup: Shard,
    /// Wall-clock start.
    pub started_at: SystemTime,
    /// Wall-clock end.
    pub ended_at: SystemTime,
    /// Length of the measured phase in seconds (issuing time, not the drain).
    pub measured_s: f64,
    /// Where the schedule ended, in seconds since it began: its full length, or the
    /// stop.
    pub ended_s: f64,
    /// Seconds from the end of the measured phase until the last request in flight
    /// completed or was given up.
    pub drain_s: f64,
    /// Length of the warm-up in seconds (whole seconds).
    pub warmup_s: f64,
    /// Open model: arrivals the schedule asked for in the measured phase.
    pub scheduled: Option<f64>,
    /// Open model: arrivals never sent because the generator fell behind the schedule end.
    pub missed: u64,
    /// Why the run ended.
    pub stop: StopReason,
    /// Requests still in flight when the run stopped waiting for them (sent, never
    /// completed, so in no outcome class).
    pub abandoned: u64,
    /// Number of worker threads.
    pub workers: usize,
    /// The CPU each worker ran pinned to, in worker order (`None` for one that was not
    /// pinned): see `RunConfig::pin_workers`.
    pub pinned: Vec<Option<usize>>,
    /// Open model: pauses of the process, or of one of its workers held from its CPU,
    /// that ended in the measured phase.
    pub pauses: Option<Pauses>,
}

/// How many worker threads a run of `scenario` starts when asked for `requested` (0: one
/// per available core).
pub fn worker_count(requested: usize, scenario: &Scenario) -> usize {
    let workers = if requested == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        requested
    };
    // A fixed pool smaller than the worker count: a worker without a connection could
    // send nothing, so fewer workers share it.
    workers
        .min(scenario.load.connections.unwrap_or(usize::MAX))
        .max(1)
}

/// Why the run could not start, once the workers that did start have been let go: the
/// first failure a worker reported, else `fallback`.
fn start_failure(
    rx: &mpsc::Receiver<Msg>,
    handles: Vec<std::thread::JoinHandle<()>>,
    fallback: EngineError,
) -> EngineError {
    // The gate has failed, so no worker waits at it; each returns without load.
    for h in handles {
        let _ = h.join();
    }
    rx.try_iter()
        .find_map(|m| match m {
            Msg::Failed { worker, failure } => Some(failure.into_error(worker)),
            _ => None,
        })
        .unwrap_or(fallback)
}

/// The length of every interval a run reports.
const INTERVAL: Duration = Duration::from_secs(1);

/// Runs `cfg`, telling every one of `observers` the start, then each interval in order
/// (the same interval to each, in slice order), then the end. The first observer to ask
/// for a stop ([`Control::Stop`]) stops the run as a [`StopSignal`] would, and its
/// reason is the run's, unless the run was stopping already. Blocks until the run ends.
pub fn run(cfg: RunConfig, observers: &mut [&mut dyn Observer]) -> Result<RunData, EngineError> {
    let scenario = cfg.scenario.clone();
    let layout = scenario.row_layout();
    let rows = scenario.rows();
    let workers = worker_count(cfg.workers, &scenario);
    let histogram_max_us = scenario.histogram_max_us();
    let seed = scenario.load.seed.unwrap_or_else(rand::random);
    let segment = cfg.segment;
    if let Some(data) = &scenario.data {
        if (data.rows.len() as u64) < segment.count {
            return Err(EngineError::Segment(format!(
                "the data file has {} rows, fewer than the {} segments: each segment needs rows of its own",
                data.rows.len(),
                segment.count
            )));
        }
    }
    let start_cell = Arc::new(std::sync::OnceLock::new());
    let ready = Arc::new(crate::gate::Gate::new(workers + 1));
    let arrivals = Arc::new(std::sync::atomic::AtomicU64::new(0));
    // `[auth] scope = "run"`: one token for every worker.
    let auth_cell = scenario
        .auth
        .as_ref()
        .filter(|a| a.scope == loadgate_scenario::AuthScope::Run)
        .map(|_| crate::auth::TokenCell::new());

    let cpus = crate::affinity::plan(
        cfg.pin_workers && scenario.load.model == LoadModel::Open,
        workers,
        &crate::affinity::allowed_cpus(),
    );

    // Room for every socket the run will open, made now: growing the descriptor table
    // while the workers send would stall them all for an RCU grace period.
    crate::fds::prepare();

    // Each open-model worker's run-queue wait, for the pause meter (`runqueue`).
    let run_delays = crate::runqueue::Roll::default();
    let (tx, rx) = mpsc::channel();
    let mut spares = Vec::new();
    let mut handles = Vec::new();
    for (index, &cpu) in cpus.iter().enumerate() {
        let (spare_tx, spare_rx) = mpsc::channel();
        spares.push(spare_tx);
        let spec = WorkerSpec {
            index,
            workers,
            scenario: scenario.clone(),
            base_url: cfg.base_url.clone(),
            insecure: cfg.insecure,
            seed,
            start: start_cell.clone(),
            ready: ready.clone(),
            histogram_max_us,
            tx: tx.clone(),
            spare: spare_rx,
            stop: cfg.stop.subscribe(),
            stopped_at: cfg.stop.1.clone(),
            grace: cfg.grace,
            arrivals: arrivals.clone(),
            segment,
            cpu,
            run_delays: (scenario.load.model == LoadModel::Open).then(|| run_delays.clone()),
            tls_files: cfg.tls_files.clone(),
            auth_cell: auth_cell.clone(),
        };
        match std::thread::Builder::new()
            .name(format!("loadgate-worker-{index}"))
            .spawn(move || worker::run(spec))
        {
            Ok(h) => handles.push(h),
            Err(e) => {
                ready.fail();
                return Err(start_failure(&rx, handles, EngineError::Thread(e)));
            }
        }
    }
    drop(tx);
    if !ready.wait() {
        return Err(start_failure(&rx, handles, EngineError::NotStarted));
    }
    // Every worker has its client and requests built; begin a moment from now, or at
    // the agreed time.
    let started_at;
    let start = match cfg.start_at {
        Some(at) => {
            let (now, wall) = (Instant::now(), SystemTime::now());
            started_at = at;
            match at.duration_since(wall) {
                Ok(ahead) => now + ahead,
                Err(behind) => now.checked_sub(behind.duration()).unwrap_or(now),
            }
        }
        None => {
            // Both clocks read together, so `started_at` is the wall-clock time of the
            // schedule's start, not of the moment the workers were spawned.
            let lead = Duration::from_millis(10);
            started_at = SystemTime::now() + lead;
            Instant::now() + lead
        }
    };
    let _ = start_cell.set(start); // set here only
                                   // The open model's lateness is what pauses explain; a closed model has no schedule
                                   // to be late for, and its full-throughput runs would pay for a thread that wakes
                                   // 1,000 times a second on cores that are already busy.
    let meter = match scenario.load.model {
        // Every worker enlisted its run-queue wait before its first wait at the gate.
        LoadModel::Open => {
            match PauseMeter::start(start, scenario.load.late_tolerance, run_delays.take()) {
                Ok(m) => Some(m),
                Err(e) => {
                    ready.fail();
                    return Err(start_failure(&rx, handles, EngineError::Thread(e)));
                }
            }
        }
        LoadModel::Closed => None,
    };
    if !ready.wait() {
        return Err(start_failure(&rx, handles, EngineError::NotStarted));
    }
    let warmup_secs = scenario.load.warmup.as_secs_f64().ceil() as u64;
    let names: Vec<String> = scenario.row_names();
    let run_started = RunStarted {
        at: started_at,
        interval: INTERVAL,
        endpoints: &names,
        warmup_intervals: warmup_secs,
    };
    for o in observers.iter_mut() {
        o.started(&run_started);
    }

    let open = scenario.load.model == LoadModel::Open;
    let schedule = open.then(|| Schedule::new(&scenario.load));
    let total = scenario.load.duration().as_secs_f64();
    // Where the measured phase ends, in seconds of the run: the schedule's end, or the
    // stop. Known for an interval by the time it is finalized (after it ended).
    let measured_end = |stop: &StopSignal| match stop.triggered_at() {
        Some(t) => t.saturating_duration_since(start).as_secs_f64().min(total),
        None => total,
    };
    let mut measured = Shard::with_rows(layout, histogram_max_us);
    let mut warmup = Shard::with_rows(layout, histogram_max_us);
    let mut pending: BTreeMap<u64, Shard> = BTreeMap::new();
    let mut last_seen: Vec<Option<u64>> = vec![None; workers];
    let mut pinned: Vec<Option<usize>> = vec![None; workers];
    let mut done = vec![false; workers];
    let mut next = 0u64;
    let mut missed = 0;
    let mut abandoned = 0;
    let mut stop = StopReason::Completed;
    let mut failure = None;
    let mut pauses = meter.as_ref().map(PauseMeter::none);

    let mut finalize = |index: u64,
                        data: Shard,
                        stop: &mut StopReason,
                        measured: &mut Shard,
                        warmup: &mut Shard,
                        measured_pauses: &mut Option<Pauses>| {
        let in_warmup = index < warmup_secs;
        let end = measured_end(&cfg.stop);
        // An interval that begins at or after the measured phase's end.
        let drain = !in_warmup && index as f64 >= end;
        let interval_pauses = meter.as_ref().map(|m| m.take_through(index));
        if let (false, Some(sum), Some(p)) = (
            in_warmup || drain,
            measured_pauses.as_mut(),
            &interval_pauses,
        ) {
            sum.add(p);
        }
        let cumulative = if in_warmup {
            &mut *warmup
        } else {
            &mut *measured
        };
        cumulative.merge_into_totals(&data);
        let target = match &schedule {
            Some(s) => segment.share(
                s.count_before(index as f64),
                s.count_before((index + 1) as f64),
            ),
            None => {
                segment.len_of(scenario.load.target_at(index as f64 + 0.5).floor() as u64) as f64
            }
        };
        let view = IntervalView {
            index,
            warmup: in_warmup,
            drain,
            end_s: ((index + 1) as f64).min(end),
            data: &data,
            target,
            cumulative,
            pauses: interval_pauses,
        };
        let mut asked = None;
        for o in observers.iter_mut() {
            if let Control::Stop(abort) = o.interval(&view) {
                asked.get_or_insert(abort);
            }
        }
        // A stop asked in the drain changes nothing: the measured phase is over.
        if let Some(abort) = asked.filter(|_| !drain && *stop == StopReason::Completed) {
            *stop = StopReason::Aborted {
                scope: abort.scope,
                budget: abort.budget,
            };
            cfg.stop.trigger();
        }
        data
    };

    while done.iter().any(|d| !d) {
        let msg = match rx.recv() {
            Ok(m) => m,
            Err(_) => break, // every worker is gone
        };
        match msg {
            Msg::Interval {
                worker,
                index,
                mut shard,
            } => {
                if shard.endpoints().len() == rows {
                    // An interval that was already finalized (a late tail) joins the next one.
                    let slot = index.max(next);
                    pending
                        .entry(slot)
                        .or_insert_with(|| Shard::with_rows(layout, histogram_max_us))
                        .merge_from(&shard);
                    shard.reset();
                    let _ = spares[worker].send(shard);
                }
                last_seen[worker] = Some(last_seen[worker].map_or(index, |l| l.max(index)));
            }
            Msg::Done {
                worker,
                missed: m,
                abandoned: a,
                pinned: cpu,
            } => {
                done[worker] = true;
                pinned[worker] = cpu;
                missed += m;
                abandoned += a;
            }
            Msg::WarmupTail { shard } => {
                if shard.endpoints().len() == rows {
                    warmup.merge_into_totals(&shard);
                }
            }
            Msg::Failed { worker, failure: f } => {
                done[worker] = true;
                failure.get_or_insert(f.into_error(worker));
                cfg.stop.trigger();
            }
        }
        // Interval `next` is complete once every live worker has reported it (reports
        // from one worker arrive in order). Keys in `pending` are always >= `next`.
        while !pending.is_empty()
            && (0..workers).all(|w| done[w] || last_seen[w].is_some_and(|l| l >= next))
        {
            let data = pending
                .remove(&next)
                .unwrap_or_else(|| Shard::with_rows(layout, histogram_max_us));
            finalize(
                next,
                data,
                &mut stop,
                &mut measured,
                &mut warmup,
                &mut pauses,
            );
            next += 1;
        }
    }
    for (index, data) in std::mem::take(&mut pending) {
        finalize(
            index,
            data,
            &mut stop,
            &mut measured,
            &mut warmup,
            &mut pauses,
        );
    }
    for o in observers.iter_mut() {
        o.finished();
    }
    let finished = Instant::now();
    for h in handles {
        let _ = h.join();
    }
    if let Some(f) = failure {
        return Err(f);
    }
    if stop == StopReason::Completed && cfg.stop.is_triggered() {
        stop = StopReason::Interrupted;
    }

    let end_s = measured_end(&cfg.stop);
    let warmup_s = (warmup_secs as f64).min(end_s);
    let measured_s = (end_s - warmup_s).max(0.0);
    let drain_s = finished
        .saturating_duration_since(start + Duration::from_secs_f64(end_s))
        .as_secs_f64();
    let scheduled =
        schedule.map(|s| segment.share(s.count_before(warmup_s), s.count_before(end_s)));
    Ok(RunData {
        measured,
        warmup,
        started_at,
        ended_at: SystemTime::now(),
        measured_s,
        ended_s: end_s,
        drain_s,
        warmup_s,
        scheduled,
        missed,
        stop,
        abandoned,
        workers,
        pinned,
        pauses,
    })
}
