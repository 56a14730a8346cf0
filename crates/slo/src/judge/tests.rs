//! The verdict on hand-made shards: validity, robustness against the generator's own
//! errors, the implicit error budget and how a run stopped.

use super::*;
use loadgate_metrics::{Outcome, Sample};

/// One endpoint: `sent` sends (`late` of them `lag_us` late, the rest on time),
/// each a success of `latency_us` (service time 100 µs less than the lag).
fn shard(sent: u64, late: u64, lag_us: u64, dropped: u64, latency_us: u64) -> Shard {
    let mut s = Shard::new(1, 60_000_000);
    for i in 0..sent {
        let lag = if i < late { lag_us } else { 0 };
        s.record_send(0, Some(lag), i < late);
        s.record(&Sample {
            service_us: latency_us.saturating_sub(lag),
            status: Some(200),
            bytes: 1,
            ..Sample::new(0, Outcome::Success, latency_us)
        });
    }
    for _ in 0..dropped {
        s.record_drop(0);
    }
    s
}

fn facts(scheduled: f64, validity: ValidityMode) -> OpenFacts {
    OpenFacts {
        scheduled,
        missed: 0,
        late_tolerance_ms: 1.0,
        send_window_ms: 0.25,
        min_achieved_ratio: 0.95,
        max_late_ratio: 0.01,
        max_dropped_ratio: 0.001,
        validity,
        pauses: None,
    }
}

/// `budgets` (global) against `measured` over 10 s.
fn check(measured: &Shard, budgets: &[&str], open: Option<OpenFacts>) -> Judgement {
    let parsed: Vec<Budget> = budgets.iter().map(|b| crate::parse(b).unwrap()).collect();
    let scoped: Vec<(Option<usize>, &Budget)> = parsed.iter().map(|b| (None, b)).collect();
    judge(&Input {
        names: &["a".to_string()],
        measured,
        measured_s: 10.0,
        budgets: &scoped,
        windows: &[],
        open,
        stop: Stop::Completed,
        invalid_before: &[],
        goodput_limits: &Default::default(),
    })
}

#[test]
fn a_shortfall_in_sends_drops_or_missed_arrivals_is_invalid_whatever_the_budgets() {
    let ok = check(
        &shard(1000, 0, 0, 0, 1000),
        &["p95 < 2s"],
        Some(facts(1000.0, ValidityMode::Robust)),
    );
    assert_eq!(ok.verdict, Verdict::Pass, "{:?}", ok.invalid_reasons);
    let slow = check(
        &shard(900, 0, 0, 100, 1000),
        &["p95 < 2s"],
        Some(facts(1000.0, ValidityMode::Robust)),
    );
    assert_eq!(slow.verdict, Verdict::Invalid);
    assert_eq!(slow.invalid_reasons.len(), 2, "{:?}", slow.invalid_reasons);
    let mut missed = facts(1000.0, ValidityMode::Robust);
    missed.missed = 3;
    let j = check(&shard(1000, 0, 0, 0, 1000), &[], Some(missed));
    assert_eq!(j.verdict, Verdict::Invalid);
}

/// Regression (issue 17): a busy CI runner made 18 of 780 sends more than 1 ms late
/// and the demo INVALID, though the lag is inside every latency it measured.
#[test]
fn late_sends_invalidate_only_in_strict_mode_or_when_they_bunch() {
    // 5% of sends 5 ms late at 100 rps (10 ms spacing): no burst, budgets robust.
    let busy = shard(1000, 50, 5_000, 0, 20_000);
    let robust = check(
        &busy,
        &["p95 < 2s"],
        Some(facts(1000.0, ValidityMode::Robust)),
    );
    assert_eq!(
        robust.verdict,
        Verdict::Pass,
        "{:?}",
        robust.invalid_reasons
    );
    let rate = robust.rate.unwrap();
    assert_eq!((rate.late, rate.bunched, rate.burst_lag_ms), (50, 0, 100.0));
    assert!((5_000..5_010).contains(&rate.send_lag_us.max));
    let strict = check(
        &busy,
        &["p95 < 2s"],
        Some(facts(1000.0, ValidityMode::Strict)),
    );
    assert_eq!(strict.verdict, Verdict::Invalid);
    assert!(strict.invalid_reasons[0].contains("behind schedule (limit 1.00%, strict validity)"));
    // 5% of sends 300 ms late: thirty spacings, the target saw bursts.
    let bunched = shard(1000, 50, 300_000, 0, 400_000);
    let j = check(
        &bunched,
        &["p95 < 2s"],
        Some(facts(1000.0, ValidityMode::Robust)),
    );
    assert_eq!(j.verdict, Verdict::Invalid);
    assert!(
        j.invalid_reasons[0].starts_with("50 of 1000 sends (5.00%) were more than 100.0 ms"),
        "{:?}",
        j.invalid_reasons
    );
    // Regression (issue 19, a new user's run with `--connections 1`): the reason
    // blamed the machine's pauses ("which alone makes about 0 sends that late: such
    // pauses come from the generator's machine") when none explained the late sends;
    // it now says they waited inside loadgate, and for what.
    let mut few = Pauses::new(1_000);
    few.record(2_000);
    for p in [Pauses::new(1_000), few] {
        let f = OpenFacts {
            pauses: Some(p),
            ..facts(1000.0, ValidityMode::Robust)
        };
        let j = check(&bunched, &["p95 < 2s"], Some(f));
        let why = &j.invalid_reasons[0];
        assert!(why.contains("waited inside loadgate"), "{why}");
        assert!(why.contains("raise `connections`"), "{why}");
        assert!(!why.contains("such pauses come from"), "{why}");
    }
    // Pauses long enough to explain them are named as the cause.
    let mut long = Pauses::new(1_000);
    for _ in 0..20 {
        long.record(400_000);
    }
    let f = OpenFacts {
        pauses: Some(long),
        ..facts(1000.0, ValidityMode::Robust)
    };
    let j = check(&bunched, &["p95 < 2s"], Some(f));
    assert!(
        j.invalid_reasons[0].contains("such pauses come from"),
        "{:?}",
        j.invalid_reasons
    );
}

#[test]
fn a_breach_that_the_send_lag_alone_explains_is_invalid_one_the_target_shares_is_a_fail() {
    // Every request 1.5 s late to send, 1.6 s from the intended time: the service
    // time (100 ms) meets `p95 < 1s`, latency does not.
    let lagged = shard(1000, 1000, 1_500_000, 0, 1_600_000);
    let mut f = facts(1000.0, ValidityMode::Robust);
    f.max_late_ratio = 1.0; // look past the bursts: this is about the budget
    let j = check(&lagged, &["p95 < 1s"], Some(f));
    assert!(!j.slo[0].pass && !j.slo[0].robust);
    assert_eq!(j.verdict, Verdict::Invalid);
    assert!(j.invalid_reasons[0].contains("holds on the same requests' service time"));
    // `p95 < 50ms` fails on service time too: the target's breach.
    let j = check(&lagged, &["p95 < 50ms"], Some(f));
    assert!(!j.slo[0].pass && j.slo[0].robust);
    assert_eq!(j.verdict, Verdict::Fail);
    // Service-time budgets do not depend on the lag.
    let j = check(&lagged, &["service_p95 < 50ms"], Some(f));
    assert_eq!(j.verdict, Verdict::Fail);
}

/// Regression (issue 17 review): on a starved machine, the time a response waited for
/// loadgate to read it counted as the target's: `p99 < 5ms` failed at 6.2 ms of
/// service time with the process held for up to 8 ms at a time. Regression (second
/// review): a target slower than its budget on every answer was called INVALID
/// because its figure minus the longest pause would have met the budget; a pause
/// holds up the few answers it overlaps, not the whole run.
#[test]
fn a_breach_the_generators_pauses_could_explain_is_not_robust_one_they_cannot_is_a_fail() {
    // 1000 answers in 10 s at 6.2 ms each.
    let slow = shard(1000, 0, 0, 0, 6_200);
    let f = |p: Option<Pauses>| OpenFacts {
        pauses: p,
        ..facts(1000.0, ValidityMode::Robust)
    };
    // 1250 pauses of 8 ms (10 s held in all): every answer may have been read late.
    let mut starved = Pauses::new(1_000);
    for _ in 0..1250 {
        starved.record(8_000);
    }
    for budget in ["p99 < 5ms", "service_p99 < 5ms", "p50 < 5ms"] {
        let j = check(&slow, &[budget], Some(f(Some(starved))));
        assert_eq!(j.verdict, Verdict::Invalid, "{budget}");
        assert!(!j.slo[0].robust);
        assert!(
            j.invalid_reasons[0].contains("could have held had the generator not erred")
                && j.invalid_reasons[0].contains("pauses"),
            "{:?}",
            j.invalid_reasons
        );
        assert_eq!(
            check(&slow, &[budget], Some(f(None))).verdict,
            Verdict::Fail
        );
    }
    // 100 pauses (0.8 s) held up about 100 × 0.8 = 80 answers (at most 108): the other
    // 892 were as slow, more than 1% or half of them. One holds up one or two.
    let mut some = Pauses::new(1_000);
    for _ in 0..100 {
        some.record(8_000);
    }
    for budget in ["p99 < 5ms", "p50 < 5ms"] {
        let j = check(&slow, &[budget], Some(f(Some(some))));
        assert_eq!(
            j.verdict,
            Verdict::Fail,
            "{budget}: {:?}",
            j.invalid_reasons
        );
    }
    let mut once = Pauses::new(1_000);
    once.record(8_000);
    for budget in ["p99 < 5ms", "p50 < 5ms", "mean < 5ms"] {
        let j = check(&slow, &[budget], Some(f(Some(once))));
        assert_eq!(
            j.verdict,
            Verdict::Fail,
            "{budget}: {:?}",
            j.invalid_reasons
        );
        assert!(j.slo[0].robust);
    }
    // Pauses delay answers, not errors: an error budget is not excused by them.
    let mut errors = shard(1000, 0, 0, 0, 1_000);
    for _ in 0..100 {
        errors.record(&Sample {
            status: Some(503),
            ..Sample::new(0, Outcome::Http5xx, 1)
        });
    }
    let j = check(&errors, &["error_rate < 1%"], Some(f(Some(starved))));
    assert_eq!(j.verdict, Verdict::Fail, "{:?}", j.invalid_reasons);
}

/// Regression (clean-clone CI run): a 1.3 ms pause "mended" a 2.33 s answer against
/// `p95 < 2s` in a run of twelve (INVALID); a held-up answer is at most the longest
/// pause quicker.
#[test]
fn a_pause_mends_only_answers_within_its_length_of_the_threshold() {
    let mut run = shard(11, 0, 0, 0, 100_000);
    run.record_send(0, Some(0), false);
    run.record(&Sample {
        status: Some(200),
        ..Sample::new(0, Outcome::Success, 2_330_000)
    });
    let mut blip = Pauses::new(1_000);
    blip.record(1_300);
    let f = OpenFacts {
        pauses: Some(blip),
        ..facts(12.0, ValidityMode::Robust)
    };
    let j = check(&run, &["p95 < 2s", "max < 2s"], Some(f));
    assert_eq!(j.verdict, Verdict::Fail, "{:?}", j.invalid_reasons);
}

/// Timeouts are the target's, pauses or not. (Third review: a 1.5 s stop at 100/s made
/// the 50 requests in flight time out while their answers waited in their sockets; the
/// judge then excused as many timeouts as the pauses held answers, which on a busy
/// machine, its workers held in run queues, excused real ones (hostile review of issue
/// 21: 8.8% timeouts of a target slower than its timeout, INVALID). The engine now reads
/// such answers before it times their requests out, so the judge excuses none:
/// `answers_that_came_in_time_are_read_after_a_stop_not_timed_out` in the binary's
/// tests.)
#[test]
fn timeouts_are_the_targets_even_when_the_generator_paused() {
    let mut slow = shard(550, 0, 0, 0, 500_000);
    for _ in 0..50 {
        slow.record_send(0, Some(0), false);
        slow.record(&Sample::new(0, Outcome::Timeout, 1_000_000));
    }
    let mut holds = Pauses::new(1_000);
    for _ in 0..400 {
        holds.record(10_000);
    }
    for pauses in [Some(holds), None] {
        let f = OpenFacts {
            pauses,
            max_late_ratio: 1.0,
            ..facts(600.0, ValidityMode::Robust)
        };
        let j = check(&slow, &["error_rate < 5%"], Some(f));
        assert_eq!(j.verdict, Verdict::Fail, "{:?}", j.invalid_reasons);
        assert!(j.slo[0].robust);
    }
}

/// Regression (second issue 17 review): a target that hung made requests pile up to
/// `max_in_flight` and arrivals were dropped; the run was INVALID though even every
/// dropped arrival answered at once would not have met the error budget.
#[test]
fn drops_that_could_not_have_mended_a_breach_leave_a_fail() {
    // 34 answered, 54 timed out, 32 dropped.
    let mut hung = shard(34, 0, 0, 32, 1_000);
    for _ in 0..54 {
        hung.record_send(0, Some(0), false);
        hung.record(&Sample::new(0, Outcome::Timeout, 3_000_000));
    }
    let f = facts(120.0, ValidityMode::Robust);
    for budget in ["error_rate < 1%", "p95 < 1s"] {
        let j = check(&hung, &[budget], Some(f));
        assert_eq!(
            j.verdict,
            Verdict::Fail,
            "{budget}: {:?}",
            j.invalid_reasons
        );
        assert!(j.invalid_reasons.is_empty());
    }
    // Regression (issue 18 review): the implicit error budget is judged the same way.
    let mut failing = shard(0, 0, 0, 20, 1_000);
    for _ in 0..60 {
        failing.record_send(0, Some(0), false);
        failing.record(&Sample::new(0, Outcome::Http5xx, 300_000));
    }
    let j = check(&failing, &[], Some(facts(80.0, ValidityMode::Robust)));
    assert_eq!(j.verdict, Verdict::Fail, "{:?}", j.invalid_reasons);
    // A budget the dropped arrivals could have met keeps the run invalid.
    let j = check(&hung, &["error_rate < 50%"], Some(f));
    assert_eq!(j.verdict, Verdict::Invalid, "{:?}", j.invalid_reasons);
    assert!(
        j.invalid_reasons
            .iter()
            .any(|r| r.contains("32 arrivals not sent")),
        "{:?}",
        j.invalid_reasons
    );
}

#[test]
fn a_throughput_breach_only_unsent_arrivals_could_have_rescued_is_not_robust() {
    // 96% sent (valid), 96 rps successful against `throughput > 99rps`.
    let j = check(
        &shard(960, 0, 0, 0, 1000),
        &["throughput > 99rps"],
        Some(facts(1000.0, ValidityMode::Robust)),
    );
    assert!(!j.slo[0].robust);
    assert_eq!(j.verdict, Verdict::Invalid);
    let j = check(
        &shard(960, 0, 0, 0, 1000),
        &["throughput > 101rps"],
        Some(facts(1000.0, ValidityMode::Robust)),
    );
    assert_eq!(
        j.verdict,
        Verdict::Fail,
        "not even everything sent reaches 101"
    );
}

#[test]
fn requests_failed_for_want_of_local_resources_make_any_run_invalid() {
    let connect_error = |local: bool| Sample {
        local,
        ..Sample::new(0, Outcome::ConnectError, 5)
    };
    // A closed-model run (no rate facts) whose budgets hold: one request that never
    // got a socket makes it invalid, with the count and the fix.
    let mut s = shard(1000, 0, 0, 0, 1000);
    s.record(&connect_error(true));
    let judged = check(&s, &["error_rate < 5%"], None);
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
    let mut s = shard(1000, 0, 0, 0, 1000);
    s.record(&connect_error(false));
    assert_eq!(check(&s, &["error_rate < 5%"], None).verdict, Verdict::Pass);
}

/// A request that could not be built is the generator's input's fault, never the
/// target's: invalid, naming the endpoint.
#[test]
fn requests_that_could_not_be_built_make_the_run_invalid_and_say_where() {
    let mut s = shard(100, 0, 0, 0, 1_000);
    s.record_unbuilt(0);
    s.record_unbuilt(0);
    let j = check(&s, &["p95 < 2s"], None);
    assert_eq!(j.verdict, Verdict::Invalid);
    assert!(
        j.invalid_reasons[0].starts_with(
            "2 arrivals were never sent because their request could not be built (`a` 2)"
        ),
        "{:?}",
        j.invalid_reasons
    );
}

#[test]
fn a_late_run_says_how_many_late_sends_its_process_pauses_alone_explain() {
    // 100 rps for 10 s; one 41 ms pause: 40 ms beyond the 1 ms tolerance, 4 sends.
    let mut pauses = Pauses::new(1_000);
    pauses.record(41_000);
    let judged = |p: Option<Pauses>| {
        let f = OpenFacts {
            pauses: p,
            ..facts(1000.0, ValidityMode::Strict)
        };
        check(&shard(1000, 50, 5_000, 0, 20_000), &["p95 < 2s"], Some(f))
    };
    let with = judged(Some(pauses));
    assert_eq!(
        with.verdict,
        Verdict::Invalid,
        "pauses never excuse a late run"
    );
    assert!(
        with.invalid_reasons[0].contains("kept loadgate from running 1 time for more than 1 ms (the whole process, or one worker held from its CPU: 41.0 ms in all, the longest 41.0 ms), which alone makes about 4 sends (0.40%) that late"),
        "{}",
        with.invalid_reasons[0]
    );
    for quiet in [None, Some(Pauses::new(1_000))] {
        assert!(!judged(quiet).invalid_reasons[0].contains("kept loadgate from running"));
    }
}

/// Regression (issue 17): with nothing listening, 250 connect errors passed
/// `p95 < 500ms` and `p99 < 1s`; a run with no budgets passed whatever happened.
#[test]
fn a_target_that_served_nothing_or_little_never_passes() {
    let mut dead = Shard::new(1, 60_000_000);
    for _ in 0..250 {
        dead.record_send(0, Some(0), false);
        dead.record(&Sample::new(0, Outcome::ConnectError, 316));
    }
    let f = Some(facts(250.0, ValidityMode::Robust));
    for budgets in [&["p95 < 500ms", "p99 < 1s"][..], &[]] {
        let j = check(&dead, budgets, f);
        assert_eq!(j.verdict, Verdict::Fail, "{budgets:?}");
    }
    let j = check(&dead, &[], f);
    let implicit = j.slo.last().unwrap();
    assert!(implicit.implicit && !implicit.pass);
    assert_eq!(
        (implicit.scope.as_str(), implicit.measured_text.as_str()),
        ("global", "100.00%")
    );
    // An explicit error budget replaces the implicit one on its scope.
    // An explicit error budget replaces the implicit one on its scope (and on a
    // lone endpoint, which is the whole run).
    let j = check(&dead, &["error_rate <= 100%"], f);
    assert_eq!(j.slo.len(), 1);
    assert!(j.slo[0].pass);
    // Every request of a mostly failing endpoint failed: no pass either.
    let mut half = shard(40, 0, 0, 0, 1000);
    half.merge_from(&dead);
    let j = check(
        &half,
        &["p50 < 1h"],
        Some(facts(290.0, ValidityMode::Robust)),
    );
    assert_eq!(j.verdict, Verdict::Fail);
    assert!(!j.slo[0].pass, "the median request failed");
}

#[test]
fn an_interrupted_run_is_interrupted_and_an_abort_is_a_breach() {
    assert_eq!(
        verdict(false, true, Stop::Interrupted),
        Verdict::Interrupted
    );
    assert_eq!(
        verdict(true, false, Stop::Interrupted),
        Verdict::Interrupted
    );
    assert_eq!(verdict(false, true, Stop::Aborted), Verdict::Fail);
    assert_eq!(verdict(true, true, Stop::Aborted), Verdict::Invalid);
    assert_eq!(verdict(false, true, Stop::Completed), Verdict::Pass);
    assert_eq!(verdict(false, false, Stop::Completed), Verdict::Fail);
}

/// Review (schema 4): a first-token budget on a run whose responses do not stream (no
/// `ttft` recorded, every request a success) read "not reached: 0.00% of requests
/// failed" and, with the process's pauses, "could have held had the generator not
/// erred": INVALID (exit 3) for a figure no generator could have produced;
/// `ttft_mean` read "no request succeeded" of 1000 successes. A timing nothing
/// recorded while requests succeeded is no data: a FAIL, the target's configuration
/// and not the generator's error.
#[test]
fn a_timing_nothing_recorded_for_successful_requests_is_no_data_not_the_generators() {
    let served = shard(1000, 0, 0, 0, 1_000);
    let mut paused = Pauses::new(1_000);
    for _ in 0..20 {
        paused.record(8_000);
    }
    let open = [
        None,
        Some(facts(1000.0, ValidityMode::Robust)),
        Some(OpenFacts {
            pauses: Some(paused),
            ..facts(1000.0, ValidityMode::Robust)
        }),
    ];
    for budget in [
        "ttft_p95 < 1s",
        "ttft_service_p99 < 1s",
        "ttft_mean < 1s",
        "ttft_max < 1s",
        "itl_p99 < 1s",
    ] {
        for facts in open {
            let j = check(&served, &[budget], facts);
            let r = &j.slo[0];
            assert_eq!(
                j.verdict,
                Verdict::Fail,
                "{budget}: {:?} {r:?}",
                j.invalid_reasons
            );
            assert!(r.no_data && r.robust && !r.pass, "{budget}: {r:?}");
            assert!(
                r.measured_text.starts_with("no data"),
                "{budget}: {}",
                r.measured_text
            );
        }
    }
}

/// Regression (review of issue 21): a 400 ms pause of the generating process, seen
/// and reported, made every stream in flight read its next token 400 ms late, and the
/// `itl_max < 100ms` it broke was called the target's (FAIL) while a latency budget
/// broken the same way is not robust (INVALID). A gap between tokens is held up by a
/// pause as an answer is; gaps further over the threshold than the longest pause, or
/// more of them than the pauses could hold up, are still the target's.
#[test]
fn a_token_gap_breach_the_generators_pauses_could_explain_is_not_robust() {
    // 1000 streams in 10 s, 19 gaps of 10 ms each, and `slow` gaps of `slow_us`.
    let streams = |slow: u64, slow_us: u64| {
        let mut s = shard(1000, 0, 0, 0, 200_000);
        for _ in 0..19_000 {
            s.record_gap(0, 10_000);
        }
        for _ in 0..slow {
            s.record_gap(0, slow_us);
        }
        s
    };
    let f = |p: Option<Pauses>| OpenFacts {
        pauses: p,
        ..facts(1000.0, ValidityMode::Robust)
    };
    let mut pause = Pauses::new(1_000);
    pause.record(400_000);
    for budget in ["itl_max < 100ms", "itl_p99.99 < 100ms"] {
        let j = check(&streams(20, 410_000), &[budget], Some(f(Some(pause))));
        assert_eq!(j.verdict, Verdict::Invalid, "{budget}: {:?}", j.slo);
        assert!(!j.slo[0].robust);
        assert!(
            j.invalid_reasons[0].contains("could have held had the generator not erred")
                && j.invalid_reasons[0].contains("gaps between tokens ending during"),
            "{:?}",
            j.invalid_reasons
        );
        // Without the pause, the same gaps are the target's.
        let j = check(&streams(20, 410_000), &[budget], Some(f(None)));
        assert_eq!(j.verdict, Verdict::Fail, "{budget}");
        // Gaps 2 s long: 400 ms sooner they would still break it.
        let j = check(&streams(20, 2_000_000), &[budget], Some(f(Some(pause))));
        assert_eq!(
            j.verdict,
            Verdict::Fail,
            "{budget}: {:?}",
            j.invalid_reasons
        );
    }
    // 0.4 s of pauses hold up about 19,000 / 10 s × 0.4 s = 760 gaps (at most 844):
    // 5,000 slow ones are not theirs.
    let j = check(
        &streams(5_000, 410_000),
        &["itl_p90 < 100ms"],
        Some(f(Some(pause))),
    );
    assert_eq!(j.verdict, Verdict::Fail, "{:?}", j.invalid_reasons);
}

/// The defect the worker-hold meter mends (traced: one pinned worker held in its CPU's
/// run queue for 376 ms by another process while the pause meter ran on the other CPU):
/// that worker's streams read their first token, their next token and their end late,
/// and with no pause seen the breach was FAIL. The meter now counts the hold as a pause
/// (`Pauses`, the same as the whole process's), and the judge needs nothing new: a
/// breach within the hold's length of its threshold is not robust, one further over it
/// is still the target's. Taken as the whole process's, the hold is said to hold up
/// about twice the answers the one worker of two had in flight; only answers within
/// 376 ms of the threshold can be mended by it, so that errs toward INVALID only there.
#[test]
fn a_breach_one_held_workers_late_reads_could_explain_is_not_robust_one_beyond_is_a_fail() {
    let mut hold = Pauses::new(1_000);
    hold.record(376_000);
    // 1000 streams in 10 s: first token at 50 ms, 19 gaps of 10 ms, done at 250 ms;
    // 20 of them (the held worker's, in flight in the hold) read `late_us` late.
    let streams = |late_us: u64| {
        let mut s = Shard::new(1, 60_000_000);
        for i in 0..1000 {
            let late = if i < 20 { late_us } else { 0 };
            s.record_send(0, Some(0), false);
            s.record(&Sample {
                service_us: 250_000 + late,
                status: Some(200),
                bytes: 1,
                stream: Some(loadgate_metrics::StreamSample {
                    ttft_us: Some(50_000 + late),
                    events: 20,
                    tokens: 20,
                    ..loadgate_metrics::StreamSample::default()
                }),
                ..Sample::new(0, Outcome::Success, 250_000 + late)
            });
            for g in 0..19 {
                s.record_gap(0, 10_000 + if g == 0 { late } else { 0 });
            }
        }
        s
    };
    let f = |p: Option<Pauses>| OpenFacts {
        pauses: p,
        ..facts(1000.0, ValidityMode::Robust)
    };
    for budget in ["ttft_p99 < 100ms", "p99 < 300ms", "itl_max < 100ms"] {
        // 300 ms late: within 376 ms of every threshold.
        let j = check(&streams(300_000), &[budget], Some(f(Some(hold))));
        assert_eq!(j.verdict, Verdict::Invalid, "{budget}: {:?}", j.slo);
        assert!(!j.slo[0].pass && !j.slo[0].robust, "{budget}");
        assert!(
            j.invalid_reasons[0].contains("could have held had the generator not erred")
                && j.invalid_reasons[0].contains("or of one of its workers held from its CPU"),
            "{budget}: {:?}",
            j.invalid_reasons
        );
        // Without the hold seen (as before), the target's.
        let j = check(&streams(300_000), &[budget], Some(f(None)));
        assert_eq!(j.verdict, Verdict::Fail, "{budget}");
        // 600 ms late: 376 ms sooner they would still break it.
        let j = check(&streams(600_000), &[budget], Some(f(Some(hold))));
        assert_eq!(
            j.verdict,
            Verdict::Fail,
            "{budget}: {:?}",
            j.invalid_reasons
        );
        assert!(j.slo[0].robust, "{budget}");
    }
}

/// One second of one endpoint: `n` sends on time, each a success of 1 ms; the first
/// `good` met the endpoint's goodput limits timed from the intended send, the first
/// `service` timed from the actual send.
fn graded(n: u64, good: u64, service: u64) -> Shard {
    let mut s = Shard::new(1, 60_000_000);
    for i in 0..n {
        s.record_send(0, Some(0), false);
        s.record(&Sample {
            good: i < good,
            good_service: i < service,
            status: Some(200),
            ..Sample::new(0, Outcome::Success, 1_000)
        });
    }
    s
}

/// `budgets` (global) against ten seconds at 100 requests/s, `seconds` as given, with
/// the windowed ones judged by a [`crate::window::WindowJudge`] as a run's watch does.
fn check_seconds(seconds: &[Shard], budgets: &[&str]) -> Judgement {
    use crate::window::{Second, WindowJudge};
    let parsed: Vec<Budget> = budgets.iter().map(|b| crate::parse(b).unwrap()).collect();
    let scoped: Vec<(Option<usize>, &Budget)> = parsed.iter().map(|b| (None, b)).collect();
    let mut windows = WindowJudge::new(scoped.iter().copied(), true, 60_000_000, None);
    let mut measured = Shard::new(1, 60_000_000);
    for (i, s) in seconds.iter().enumerate() {
        measured.merge_from(s);
        windows.push(Second {
            start_s: i as f64,
            end_s: i as f64 + 1.0,
            shard: s,
        });
    }
    judge(&Input {
        names: &["a".to_string()],
        measured: &measured,
        measured_s: seconds.len() as f64,
        budgets: &scoped,
        windows: &windows.finish(),
        open: Some(facts(100.0 * seconds.len() as f64, ValidityMode::Robust)),
        stop: Stop::Completed,
        invalid_before: &[],
        goodput_limits: &Default::default(),
    })
}

/// A goodput or attainment breach that holds with the same limits timed from the
/// actual send is the generator's (INVALID), as a latency breach that holds on service
/// time: over the whole run and in a window alike. One the requests good from the
/// actual send share is the target's (FAIL).
#[test]
fn a_goodput_breach_the_send_lag_alone_explains_is_invalid_in_a_window_too() {
    // Whole run: 1000 successes, none good from the intended send, all from the send.
    let lagged = graded(1000, 0, 1000);
    for expr in ["goodput > 50rps", "attainment > 90%"] {
        let j = check(&lagged, &[expr], Some(facts(1000.0, ValidityMode::Robust)));
        assert!(!j.slo[0].pass && !j.slo[0].robust, "{expr}: {:?}", j.slo[0]);
        assert_eq!(j.verdict, Verdict::Invalid, "{expr}");
        let why = &j.invalid_reasons[0];
        assert!(
            why.contains("goodput limits timed from the intended send"),
            "{why}"
        );
        assert!(
            why.contains("holds with them timed from the actual send"),
            "{why}"
        );
    }
    let late = graded(1000, 0, 100);
    let j = check(
        &late,
        &["goodput > 50rps"],
        Some(facts(1000.0, ValidityMode::Robust)),
    );
    assert!(!j.slo[0].pass && j.slo[0].robust, "{:?}", j.slo[0]);
    assert_eq!(j.verdict, Verdict::Fail);

    // A window: seconds 4 and 5 of ten have no request good from the intended send,
    // every one good from the actual send. The whole run holds (80 rps).
    let mut seconds: Vec<Shard> = (0..10).map(|_| graded(100, 100, 100)).collect();
    seconds[4] = graded(100, 0, 100);
    seconds[5] = graded(100, 0, 100);
    let budgets = ["goodput > 60rps", "goodput > 60rps over 2s"];
    let j = check_seconds(&seconds, &budgets);
    assert!(j.slo[0].pass, "{:?}", j.slo[0]);
    let w = &j.slo[1];
    assert!(!w.pass && !w.robust, "{w:?}");
    assert_eq!(w.measured, Some(0.0));
    assert_eq!(j.verdict, Verdict::Invalid, "{:?}", j.invalid_reasons);
    assert!(
        j.invalid_reasons[0].contains("holds with them timed from the actual send"),
        "{:?}",
        j.invalid_reasons
    );
    // The same seconds bad from the actual send too: the target's breach, a FAIL, and
    // the whole-run budget still holds.
    seconds[4] = graded(100, 0, 0);
    seconds[5] = graded(100, 0, 0);
    let j = check_seconds(&seconds, &budgets);
    assert!(
        j.slo[0].pass && !j.slo[1].pass && j.slo[1].robust,
        "{:?}",
        j.slo
    );
    assert_eq!(j.verdict, Verdict::Fail, "{:?}", j.invalid_reasons);
    assert_eq!(j.slo[1].window.as_ref().unwrap().worst_start_s, 4.0);
}

/// Hostile review of issue 21: a 0.4 s stop of loadgate kept the first tokens of the
/// streams in flight from being read in time, so they missed the endpoint's `ttft`
/// goodput limit, and `attainment > 99%` was a robust breach: FAIL, the target blamed for
/// the generator's pause. The judge now takes the endpoint's goodput limits and mends at
/// most the held-up answers that lie within the longest pause above a limit; answers
/// further over it stay the target's.
#[test]
fn a_goodput_breach_a_pause_explains_is_not_robust_one_beyond_it_is_a_fail() {
    // 1000 streams in 10 s, first token at 200 ms (limit 300 ms); 40 of them read
    // `late_us` late.
    let streams = |late_us: u64| {
        let mut s = Shard::new(1, 60_000_000);
        for i in 0..1000 {
            let late = if i < 40 { late_us } else { 0 };
            s.record_send(0, Some(0), false);
            s.record(&Sample {
                service_us: 1_000_000 + late,
                stream: Some(loadgate_metrics::StreamSample {
                    ttft_us: Some(200_000 + late),
                    events: 10,
                    tokens: 10,
                    ..loadgate_metrics::StreamSample::default()
                }),
                good: late == 0,
                good_service: late == 0,
                ..Sample::new(0, Outcome::Success, 1_000_000 + late)
            });
        }
        s
    };
    let mut stop = Pauses::new(1_000);
    stop.record(400_000);
    let limits: std::collections::BTreeMap<String, crate::summary::GoodputLimits> = [(
        "a".to_string(),
        crate::summary::GoodputLimits {
            ttft_us: Some(300_000),
            ..Default::default()
        },
    )]
    .into();
    let judged = |shard: &Shard| {
        let parsed = [crate::parse("attainment > 99%").unwrap()];
        let scoped = [(None, &parsed[0])];
        judge(&Input {
            names: &["a".to_string()],
            measured: shard,
            measured_s: 10.0,
            budgets: &scoped,
            windows: &[],
            open: Some(OpenFacts {
                pauses: Some(stop),
                ..facts(1000.0, ValidityMode::Robust)
            }),
            stop: Stop::Completed,
            invalid_before: &[],
            goodput_limits: &limits,
        })
    };
    // 390 ms late: 590 ms, within 400 ms of the 300 ms limit.
    let j = judged(&streams(390_000));
    assert_eq!(j.verdict, Verdict::Invalid, "{:?}", j.slo);
    assert!(!j.slo[0].pass && !j.slo[0].robust);
    // 2 s late: a 400 ms pause could not have made them good.
    let j = judged(&streams(2_000_000));
    assert_eq!(j.verdict, Verdict::Fail, "{:?}", j.invalid_reasons);
    assert!(j.slo[0].robust);
}
