//! The run summary (`summary.json`) and the verdict.
//!
//! A run is **invalid** when the generator could not hold the load it was asked for
//! (achieved send rate below target, too many late or dropped sends, arrivals never
//! sent, requests that failed for want of loadgate's own descriptors or ports): its
//! latency figures then describe the generator, not the target, so it must never pass.
//! Otherwise it **fails** when any budget is breached and **passes** when all hold.

use std::collections::BTreeMap;

use loadgate_metrics::{EndpointShard, LatencyStats, OutcomeCounts, Pauses, Shard};
use serde::{Deserialize, Serialize};

use crate::{Budget, BudgetResult, Observed};

/// Version of the `summary.json` layout.
pub const SCHEMA_VERSION: u32 = 1;

/// The verdict of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Valid run, every budget held.
    Pass,
    /// Valid run, at least one budget breached.
    Fail,
    /// The generator could not keep up, or the target was never healthy.
    Invalid,
    /// Valid, every budget held, but worse than the baseline beyond the regression
    /// budgets and beyond noise.
    Regression,
}

impl Verdict {
    /// Upper-case word for people.
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Invalid => "INVALID",
            Verdict::Regression => "REGRESSION",
        }
    }
}

/// Figures for one endpoint (or all of them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EndpointSummary {
    /// Endpoint name, or `all`.
    pub name: String,
    /// Completed requests (every outcome class).
    pub requests: u64,
    /// Requests sent.
    pub sent: u64,
    /// Completed requests per second over the measured phase.
    pub rps: f64,
    /// Successful requests per second over the measured phase.
    pub success_rps: f64,
    /// Requests whose outcome is not success.
    pub errors: u64,
    /// `errors / requests`.
    pub error_rate: f64,
    /// Count per outcome class.
    pub outcomes: OutcomeCounts,
    /// Count per HTTP status.
    pub statuses: BTreeMap<String, u64>,
    /// Latency in µs (from the intended send time in the open model).
    pub latency_us: LatencyStats,
    /// Service time in µs (from the actual send).
    pub service_us: LatencyStats,
    /// Response body bytes.
    pub bytes: u64,
    /// Sends later than the tolerance.
    pub late: u64,
    /// Arrivals dropped at `max_in_flight`.
    pub dropped: u64,
    /// Requests that failed because loadgate ran out of a local resource (a file
    /// descriptor, a local port, socket memory) while connecting; also counted as
    /// `connect_error`. Any makes the run invalid.
    #[serde(default)]
    pub local_errors: u64,
    /// Latencies above the histogram's bound (recorded at the bound).
    pub saturated: u64,
}

impl EndpointSummary {
    /// Figures of one shard over `measured_s` seconds.
    pub fn of(name: &str, e: &EndpointShard, measured_s: f64) -> EndpointSummary {
        let requests = e.completed();
        let per_s = |n: u64| {
            if measured_s > 0.0 {
                n as f64 / measured_s
            } else {
                0.0
            }
        };
        EndpointSummary {
            name: name.to_string(),
            requests,
            sent: e.sent,
            rps: per_s(requests),
            success_rps: per_s(e.outcomes.get(loadgate_metrics::Outcome::Success)),
            errors: e.outcomes.errors(),
            error_rate: if requests > 0 {
                e.outcomes.errors() as f64 / requests as f64
            } else {
                0.0
            },
            outcomes: e.outcomes,
            statuses: e
                .statuses
                .iter()
                .filter(|(_, &n)| n > 0)
                .map(|(c, n)| (c.to_string(), *n))
                .collect(),
            latency_us: e.latency.stats(),
            service_us: e.service.stats(),
            bytes: e.bytes,
            late: e.late,
            dropped: e.dropped,
            local_errors: e.local_errors,
            saturated: e.latency.saturated(),
        }
    }
}

/// How well the generator held the open model's schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RateSummary {
    /// Mean target rate over the measured phase.
    pub target_rps: f64,
    /// Sends per second over the measured phase.
    pub achieved_rps: f64,
    /// Arrivals the schedule asked for.
    pub scheduled: f64,
    /// Requests sent.
    pub sent: u64,
    /// `sent / scheduled`.
    pub achieved_ratio: f64,
    /// Sends later than `late_tolerance_ms` behind schedule.
    pub late: u64,
    /// `late / sent`.
    pub late_ratio: f64,
    /// Arrivals dropped because `max_in_flight` was reached.
    pub dropped: u64,
    /// `dropped / scheduled`.
    pub dropped_ratio: f64,
    /// Arrivals never sent because the generator fell behind the end of the schedule.
    pub missed: u64,
    /// The lateness tolerance in milliseconds.
    pub late_tolerance_ms: f64,
    /// How long after its intended time a send may wait to share a wake-up with the
    /// arrivals due meanwhile (milliseconds; 0: every send wakes on time). Latency is
    /// measured from the intended time either way.
    #[serde(default)]
    pub send_window_ms: f64,
}

impl RateSummary {
    /// One plain-text sentence for people (escape it for HTML or Markdown).
    pub fn describe(&self) -> String {
        let window = if self.send_window_ms > 0.0 {
            format!("; send window {} ms", self.send_window_ms)
        } else {
            String::new()
        };
        format!(
            "target {:.1} rps, sent {:.1} rps ({:.1}%), late {} ({:.2}%, > {} ms{window}), dropped {} ({:.2}%), never sent {}",
            self.target_rps,
            self.achieved_rps,
            self.achieved_ratio * 100.0,
            self.late,
            self.late_ratio * 100.0,
            self.late_tolerance_ms,
            self.dropped,
            self.dropped_ratio * 100.0,
            self.missed
        )
    }
}

/// Open-model facts and the thresholds that make a run invalid.
#[derive(Debug, Clone, Copy)]
pub struct OpenFacts {
    /// Arrivals the schedule asked for in the measured phase.
    pub scheduled: f64,
    /// Arrivals never sent.
    pub missed: u64,
    /// Lateness tolerance in milliseconds.
    pub late_tolerance_ms: f64,
    /// The send window in milliseconds.
    pub send_window_ms: f64,
    /// Below this achieved/target ratio the run is invalid.
    pub min_achieved_ratio: f64,
    /// Above this late/sent ratio the run is invalid.
    pub max_late_ratio: f64,
    /// Above this dropped/scheduled ratio the run is invalid.
    pub max_dropped_ratio: f64,
    /// Pauses of the generating process in the measured phase, to say how many late
    /// sends they alone explain; `None` when no one process ran the load (a merge, whose
    /// segments each judged their own).
    pub pauses: Option<Pauses>,
}

/// What the verdict is based on.
pub struct Judgement {
    /// Every budget's result.
    pub slo: Vec<BudgetResult>,
    /// Open model rate figures.
    pub rate: Option<RateSummary>,
    /// Why the run is invalid (empty when valid).
    pub invalid_reasons: Vec<String>,
    /// The verdict.
    pub verdict: Verdict,
}

/// Judges measured data against budgets and, for the open model, generator validity.
pub fn judge(
    names: &[String],
    measured: &Shard,
    measured_s: f64,
    global: &[&Budget],
    per_endpoint: &[(usize, &Budget)],
    open: Option<OpenFacts>,
) -> Judgement {
    let all = measured.overall();
    let mut slo = Vec::new();
    for b in global {
        let o = Observed::of(&all, measured_s);
        slo.push(b.evaluate("global", &o));
    }
    for (i, b) in per_endpoint {
        let e = &measured.endpoints()[*i];
        let o = Observed::of(e, measured_s);
        slo.push(b.evaluate(&names[*i], &o));
    }
    let mut invalid_reasons = Vec::new();
    let rate = open.map(|f| {
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
        let r = RateSummary {
            target_rps: ratio(f.scheduled, measured_s),
            achieved_rps: ratio(all.sent as f64, measured_s),
            scheduled: f.scheduled,
            sent: all.sent,
            achieved_ratio: if f.scheduled > 0.0 { all.sent as f64 / f.scheduled } else { 1.0 },
            late: all.late,
            late_ratio: ratio(all.late as f64, all.sent as f64),
            dropped: all.dropped,
            dropped_ratio: ratio(all.dropped as f64, f.scheduled),
            missed: f.missed,
            late_tolerance_ms: f.late_tolerance_ms,
            send_window_ms: f.send_window_ms,
        };
        if r.achieved_ratio < f.min_achieved_ratio {
            invalid_reasons.push(format!(
                "generator sent {:.1} rps of the {:.1} rps target ({:.1}%, below the {:.0}% minimum)",
                r.achieved_rps,
                r.target_rps,
                r.achieved_ratio * 100.0,
                f.min_achieved_ratio * 100.0
            ));
        }
        if r.late_ratio > f.max_late_ratio {
            let mut reason = format!(
                "{} of {} sends ({:.2}%) were more than {} ms behind schedule (limit {:.2}%)",
                r.late,
                r.sent,
                r.late_ratio * 100.0,
                f.late_tolerance_ms,
                f.max_late_ratio * 100.0
            );
            if let Some(p) = f.pauses.filter(|p| p.count > 0) {
                let forced = p.beyond((f.late_tolerance_ms * 1000.0) as u64) as f64 / 1e6 * r.target_rps;
                reason.push_str(&format!(
                    "; the machine kept loadgate from running {} time{} for more than {} ms ({:.1} ms in all, the longest {:.1} ms), \
                     which alone makes about {:.0} sends ({:.2}%) late: such pauses come from the generator's machine \
                     (a host that deschedules it, other work on every CPU), not from the target",
                    p.count,
                    if p.count == 1 { "" } else { "s" },
                    f.late_tolerance_ms,
                    p.total_us as f64 / 1000.0,
                    p.max_us as f64 / 1000.0,
                    forced,
                    ratio(forced, all.sent as f64) * 100.0
                ));
            }
            invalid_reasons.push(reason);
        }
        if r.dropped_ratio > f.max_dropped_ratio {
            invalid_reasons.push(format!(
                "{} arrivals ({:.2}%) were dropped because max_in_flight was reached (limit {:.2}%); raise max_in_flight or lower the rate",
                r.dropped,
                r.dropped_ratio * 100.0,
                f.max_dropped_ratio * 100.0
            ));
        }
        if r.missed > 0 {
            invalid_reasons.push(format!("{} arrivals were never sent: the generator fell behind the end of the schedule", r.missed));
        }
        r
    });
    if all.local_errors > 0 {
        invalid_reasons.push(format!(
            "{} of {} requests failed because loadgate ran out of its own resources while connecting \
             (no free file descriptor, local port or socket memory: EMFILE, ENFILE, EADDRNOTAVAIL, ENOBUFS or ENOMEM); \
             the target never saw them. Raise the open-file limit (ulimit -Hn, or LimitNOFILE= in a systemd unit) \
             or use fewer connections (max_in_flight, vus)",
            all.local_errors,
            all.completed()
        ));
    }
    let verdict = if !invalid_reasons.is_empty() {
        Verdict::Invalid
    } else if slo.iter().all(|r| r.pass) {
        Verdict::Pass
    } else {
        Verdict::Fail
    };
    Judgement {
        slo,
        rate,
        invalid_reasons,
        verdict,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use loadgate_metrics::{Outcome, Sample};

    fn shard(sent: u64, late: u64, dropped: u64) -> Shard {
        let mut s = Shard::new(1, 60_000_000);
        for i in 0..sent {
            s.record_send(0, i < late);
            s.record(&Sample {
                endpoint: 0,
                latency_us: 1000,
                service_us: 900,
                outcome: Outcome::Success,
                status: Some(200),
                bytes: 1,
                local: false,
            });
        }
        for _ in 0..dropped {
            s.record_drop(0);
        }
        s
    }

    fn facts(scheduled: f64) -> OpenFacts {
        OpenFacts {
            scheduled,
            missed: 0,
            late_tolerance_ms: 1.0,
            send_window_ms: 0.25,
            min_achieved_ratio: 0.95,
            max_late_ratio: 0.01,
            max_dropped_ratio: 0.001,
            pauses: None,
        }
    }

    #[test]
    fn an_invalid_run_never_passes_even_when_budgets_hold() {
        let budget = crate::parse("p95 < 2s").unwrap();
        let names = vec!["a".to_string()];
        let ok = judge(
            &names,
            &shard(1000, 0, 0),
            10.0,
            &[&budget],
            &[],
            Some(facts(1000.0)),
        );
        assert_eq!(ok.verdict, Verdict::Pass);
        let slow = judge(
            &names,
            &shard(900, 0, 100),
            10.0,
            &[&budget],
            &[],
            Some(facts(1000.0)),
        );
        assert_eq!(slow.verdict, Verdict::Invalid);
        assert_eq!(slow.invalid_reasons.len(), 2, "{:?}", slow.invalid_reasons);
        let late = judge(
            &names,
            &shard(1000, 50, 0),
            10.0,
            &[&budget],
            &[],
            Some(facts(1000.0)),
        );
        assert_eq!(late.verdict, Verdict::Invalid);
        assert!(late.invalid_reasons[0].contains("behind schedule"));
    }

    #[test]
    fn requests_failed_for_want_of_local_resources_make_any_run_invalid() {
        let connect_error = |local: bool| Sample {
            endpoint: 0,
            latency_us: 5,
            service_us: 5,
            outcome: Outcome::ConnectError,
            status: None,
            bytes: 0,
            local,
        };
        // A closed-model run (no rate facts) whose budgets hold: one request that never
        // got a socket makes it invalid, with the count and the fix.
        let budget = crate::parse("error_rate < 5%").unwrap();
        let names = vec!["a".to_string()];
        let mut s = shard(1000, 0, 0);
        s.record(&connect_error(true));
        let judged = judge(&names, &s, 10.0, &[&budget], &[], None);
        assert!(judged.slo.iter().all(|r| r.pass));
        assert_eq!(judged.verdict, Verdict::Invalid);
        assert_eq!(judged.invalid_reasons.len(), 1);
        let reason = &judged.invalid_reasons[0];
        assert!(
            reason.starts_with("1 of 1001 requests failed because loadgate ran out")
                && reason.contains("ulimit -Hn"),
            "{reason}"
        );
        // A connect error of the target's (refused, say) is data, not invalidity.
        let mut s = shard(1000, 0, 0);
        s.record(&connect_error(false));
        let judged = judge(&names, &s, 10.0, &[&budget], &[], None);
        assert_eq!(judged.verdict, Verdict::Pass);
    }

    #[test]
    fn a_late_run_says_how_many_late_sends_its_process_pauses_alone_explain() {
        let budget = crate::parse("p95 < 2s").unwrap();
        let names = vec!["a".to_string()];
        // 100 rps for 10 s; one 41 ms pause: 40 ms beyond the 1 ms tolerance, 4 sends.
        let mut pauses = Pauses::new(1_000);
        pauses.record(41_000);
        let judged = |p: Option<Pauses>| {
            let facts = OpenFacts {
                pauses: p,
                ..facts(1000.0)
            };
            judge(
                &names,
                &shard(1000, 50, 0),
                10.0,
                &[&budget],
                &[],
                Some(facts),
            )
        };
        let with = judged(Some(pauses));
        assert_eq!(
            with.verdict,
            Verdict::Invalid,
            "pauses never excuse a late run"
        );
        assert!(
            with.invalid_reasons[0].contains("kept loadgate from running 1 time for more than 1 ms (41.0 ms in all, the longest 41.0 ms), which alone makes about 4 sends (0.40%) late"),
            "{}",
            with.invalid_reasons[0]
        );
        for quiet in [None, Some(Pauses::new(1_000))] {
            assert!(!judged(quiet).invalid_reasons[0].contains("kept loadgate from running"));
        }
    }

    #[test]
    fn a_breached_budget_fails() {
        let budget = crate::parse("p95 < 500us").unwrap();
        let j = judge(
            &["a".to_string()],
            &shard(10, 0, 0),
            1.0,
            &[],
            &[(0, &budget)],
            None,
        );
        assert_eq!(j.verdict, Verdict::Fail);
        assert_eq!(j.slo[0].scope, "a");
    }
}

/// Everything `summary.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunSummary {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Version of loadgate that ran.
    pub loadgate_version: String,
    /// Scenario name.
    pub scenario: String,
    /// Scenario file as given.
    pub scenario_file: String,
    /// Target base URL without credentials, or `embedded`.
    pub target: String,
    /// `open` or `closed`.
    pub model: String,
    /// RFC 3339 UTC start.
    pub started_at: String,
    /// RFC 3339 UTC end.
    pub ended_at: String,
    /// Configured length of the profile in seconds.
    pub duration_s: f64,
    /// Warm-up in seconds (excluded from SLO evaluation).
    pub warmup_s: f64,
    /// Measured phase in seconds.
    pub measured_s: f64,
    /// Worker threads.
    pub workers: usize,
    /// The CPU each pinned worker was restricted to, in worker order (a merged run lists
    /// its segments' in segment order). Empty when no worker was pinned: the closed
    /// model, `--no-pin`, fewer CPUs than workers, or a system that refused.
    #[serde(default)]
    pub pinned_cpus: Vec<usize>,
    /// The verdict.
    pub verdict: Verdict,
    /// `completed`, `aborted` or `interrupted`.
    pub stop: String,
    /// Why the run stopped early, if it did.
    pub stop_detail: Option<String>,
    /// Requests still in flight when the run stopped waiting for them (interrupted runs).
    #[serde(default)]
    pub abandoned: u64,
    /// Why the run is invalid.
    pub invalid_reasons: Vec<String>,
    /// Open model: how well the schedule was held.
    pub rate: Option<RateSummary>,
    /// Open model: pauses of the generating process (seen by a thread that does nothing
    /// else) that ended in the measured phase; summed over the processes of a merged run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pauses: Option<Pauses>,
    /// Every SLO budget with its measured value and verdict.
    pub slo: Vec<BudgetResult>,
    /// All endpoints together, measured phase.
    pub overall: EndpointSummary,
    /// Each endpoint, measured phase.
    pub endpoints: Vec<EndpointSummary>,
    /// All endpoints together during the warm-up, if there was one.
    pub warmup: Option<EndpointSummary>,
    /// Other files of the run directory, by role.
    pub files: BTreeMap<String, String>,
    /// Commit being tested, from the CI environment (`GITHUB_SHA`, `CI_COMMIT_SHA`, `GIT_COMMIT`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_commit: Option<String>,
    /// CI run identifier (`GITHUB_RUN_ID`, `CI_PIPELINE_ID`, `BUILD_ID`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci_run: Option<String>,
    /// This run's share of a load split across processes (`loadgate run --segment`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<SegmentInfo>,
    /// The segment runs this run was merged from (`loadgate merge`), in segment order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_from: Vec<SegmentRun>,
}

/// Which share of a split load a run sent, and what every share must agree on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SegmentInfo {
    /// 1-based segment number.
    pub index: u64,
    /// Number of segments.
    pub count: u64,
    /// The agreed start (`--start-at`), RFC 3339 UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_at: Option<String>,
    /// When this segment's schedule began, in milliseconds since the Unix epoch.
    pub started_unix_ms: u64,
    /// The settings every segment of one load must share.
    pub plan: SegmentPlan,
}

/// The settings that make segments parts of the same load. `loadgate merge` refuses
/// inputs whose plans differ, naming the field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SegmentPlan {
    /// `open` or `closed`.
    pub model: String,
    /// The load profile: start and stages, as rates (open) or VUs (closed).
    pub profile: String,
    /// Warm-up in seconds.
    pub warmup_s: f64,
    /// Endpoints as `name*weight`, in order.
    pub endpoints: Vec<String>,
    /// SLO budgets as `scope: expression`, in order.
    pub budgets: Vec<String>,
    /// Rows in the data file, if there is one.
    pub data_rows: Option<u64>,
    /// Open model: lateness tolerance in milliseconds.
    pub late_tolerance_ms: f64,
    /// Open model: the send window in milliseconds.
    #[serde(default)]
    pub send_window_ms: f64,
    /// Open model: below this achieved/target ratio a run is invalid.
    pub min_achieved_ratio: f64,
    /// Open model: above this late/sent ratio a run is invalid.
    pub max_late_ratio: f64,
    /// Open model: above this dropped/scheduled ratio a run is invalid.
    pub max_dropped_ratio: f64,
}

impl SegmentPlan {
    /// The open model's facts to judge a run of this plan by, given what was scheduled
    /// and never sent. A single run and a merge of segments both judge through here.
    pub fn open_facts(&self, scheduled: f64, missed: u64, pauses: Option<Pauses>) -> OpenFacts {
        OpenFacts {
            pauses,
            scheduled,
            missed,
            late_tolerance_ms: self.late_tolerance_ms,
            send_window_ms: self.send_window_ms,
            min_achieved_ratio: self.min_achieved_ratio,
            max_late_ratio: self.max_late_ratio,
            max_dropped_ratio: self.max_dropped_ratio,
        }
    }
}

/// One input of a merged run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SegmentRun {
    /// `I/N`.
    pub segment: String,
    /// The run directory's name.
    pub run: String,
    /// RFC 3339 UTC start of that run.
    pub started_at: String,
    /// Its verdict on its own.
    pub verdict: Verdict,
    /// Worker threads it used.
    pub workers: usize,
    /// Requests it sent.
    pub sent: u64,
    /// Requests it completed.
    pub requests: u64,
    /// Open model: its share of the target rate, per second.
    pub target_rps: Option<f64>,
    /// Sends per second over its measured phase.
    pub achieved_rps: f64,
    /// Open model: sent / scheduled for its share.
    pub achieved_ratio: Option<f64>,
    /// Its late sends.
    pub late: u64,
    /// Its dropped arrivals.
    pub dropped: u64,
    /// Its error rate.
    pub error_rate: f64,
}
