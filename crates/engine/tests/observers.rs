//! Observers that compose: several watch one run against a real target on
//! 127.0.0.1:0, each told the start (with the endpoint names), every interval in order
//! and the end; one of them can stop the run, and the run reports its reason. The engine
//! judges no budget itself: it builds without `loadgate-slo`.

mod common;

use loadgate_engine::{
    run, Abort, Control, IntervalView, Observer, RunStarted, StopReason, StopSignal,
};

/// What an observer was told, in order.
#[derive(Debug, Clone, PartialEq)]
enum Told {
    Started {
        endpoints: Vec<String>,
        warmup_intervals: u64,
    },
    Interval {
        index: u64,
        warmup: bool,
        drain: bool,
    },
    Finished,
}

/// Notes everything it is told; asks for a stop after interval `stop_after`, if set.
#[derive(Default)]
struct Log {
    told: Vec<Told>,
    stop_after: Option<u64>,
}

impl Observer for Log {
    fn started(&mut self, run: &RunStarted<'_>) {
        self.told.push(Told::Started {
            endpoints: run.endpoints.to_vec(),
            warmup_intervals: run.warmup_intervals,
        });
    }

    fn interval(&mut self, v: &IntervalView<'_>) -> Control {
        self.told.push(Told::Interval {
            index: v.index,
            warmup: v.warmup,
            drain: v.drain,
        });
        match self.stop_after {
            Some(i) if v.index >= i && !v.drain => Control::Stop(Abort {
                scope: "test".into(),
                budget: format!("stop after interval {i}"),
            }),
            _ => Control::Continue,
        }
    }

    fn finished(&mut self) {
        self.told.push(Told::Finished);
    }
}

/// An open-model scenario of two endpoints against `base`: `seconds` long at 20/s, the
/// first second warm-up.
fn two_endpoints(base: &str, seconds: u64) -> String {
    format!(
        r#"name = "observers"
target = "{base}"
[[endpoint]]
name = "first"
path = "/a"
[[endpoint]]
name = "second one"
path = "/b"
[load]
model = "open"
warmup = "1s"
stages = [{{ duration = "{seconds}s", target_rps = 20 }}]
"#
    )
}

/// The intervals in `told`, checked to come between the start and the end.
fn intervals(told: &[Told]) -> Vec<(u64, bool, bool)> {
    assert_eq!(
        told.first(),
        Some(&Told::Started {
            endpoints: vec!["first".into(), "second one".into()],
            warmup_intervals: 1,
        }),
        "told the endpoint names first: {told:?}"
    );
    assert_eq!(told.last(), Some(&Told::Finished), "told the end last");
    told[1..told.len() - 1]
        .iter()
        .map(|t| match t {
            Told::Interval {
                index,
                warmup,
                drain,
            } => (*index, *warmup, *drain),
            other => panic!("{other:?} between the intervals: {told:?}"),
        })
        .collect()
}

#[test]
fn two_observers_are_each_told_the_endpoints_then_every_interval_in_order() {
    let target = loadgate_target::loopback("[[route]]\npath = \"/a\"\n[[route]]\npath = \"/b\"\n");
    let base = target.base_url();
    let cfg = common::config(&two_endpoints(&base, 3), &base, 2, false);
    let (mut one, mut two) = (Log::default(), Log::default());
    let data = run(cfg, &mut [&mut one, &mut two]).expect("run");
    assert_eq!(data.stop, StopReason::Completed);
    assert_eq!(one.told, two.told, "both observers were told the same");
    let seen = intervals(&one.told);
    let indices: Vec<u64> = seen.iter().map(|s| s.0).collect();
    assert_eq!(
        indices,
        (0..seen.len() as u64).collect::<Vec<_>>(),
        "every interval, in order"
    );
    assert!(seen.len() >= 3, "{seen:?}");
    assert_eq!(
        seen.iter().filter(|s| s.1).count(),
        1,
        "interval 0 alone is warm-up: {seen:?}"
    );
    assert!(seen[0].1);
    // Drain intervals, if any, come after every measured one.
    let first_drain = seen.iter().position(|s| s.2).unwrap_or(seen.len());
    assert!(seen[first_drain..].iter().all(|s| s.2), "{seen:?}");
    assert!(
        first_drain >= 3,
        "the 3 s profile's intervals are measured: {seen:?}"
    );
}

#[test]
fn an_observer_that_asks_for_a_stop_ends_the_run_with_its_reason() {
    let target = loadgate_target::loopback("[[route]]\npath = \"/a\"\n[[route]]\npath = \"/b\"\n");
    let base = target.base_url();
    let cfg = common::config(&two_endpoints(&base, 60), &base, 2, false);
    let stop: StopSignal = cfg.stop.clone();
    let mut watcher = Log::default();
    let mut stopper = Log {
        stop_after: Some(1),
        ..Log::default()
    };
    let data = run(cfg, &mut [&mut watcher, &mut stopper]).expect("run");
    assert_eq!(
        data.stop,
        StopReason::Aborted {
            scope: "test".into(),
            budget: "stop after interval 1".into(),
        }
    );
    assert!(stop.is_triggered(), "stopped as a stop signal stops a run");
    assert!(
        data.ended_s < 30.0,
        "the 60 s schedule ended at the stop, after interval 1: {}",
        data.ended_s
    );
    // The run went on telling every observer until its end, drain included.
    assert_eq!(watcher.told, stopper.told);
    let seen = intervals(&watcher.told);
    assert!(seen.len() >= 2 && seen.len() < 30, "{seen:?}");
}

/// The engine judges no budget (`abort_on_fail` is an observer's decision): its manifest
/// names no `loadgate-slo`, so no code of the engine can use it.
#[test]
fn the_engine_builds_without_loadgate_slo() {
    let manifest = include_str!("../Cargo.toml");
    let named: Vec<&str> = manifest
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.starts_with('#') && (l.contains("loadgate-slo") || l.contains("loadgate_slo"))
        })
        .collect();
    assert_eq!(named, Vec::<&str>::new(), "crates/engine/Cargo.toml");
}
