//! The open model's arrival schedule: when arrival number `i` is due.
//!
//! The rate r(t) is piecewise linear (a linear ramp per stage), so the expected number of
//! arrivals by time t, N(t) = ∫r, is piecewise quadratic; arrival `i` is due at the t
//! where N(t) = i. Every arrival therefore has an exact intended time that does not
//! depend on what the target or the generator did before it: that is what lets latency
//! be measured from the intended time (coordinated-omission correction), and what lets
//! a schedule be split exactly across workers and machines.

use std::time::Duration;

use loadgate_scenario::Load;

#[derive(Debug, Clone, Copy)]
struct Segment {
    begin: f64,
    len: f64,
    r0: f64,
    r1: f64,
    /// N(begin)
    n0: f64,
}

/// Arrival times for a rate profile.
#[derive(Debug, Clone)]
pub struct Schedule {
    segments: Vec<Segment>,
    total: f64,
}

impl Schedule {
    /// The schedule of `load` (whose model should be open).
    pub fn new(load: &Load) -> Schedule {
        let mut segments = Vec::new();
        let (mut begin, mut n0, mut r0) = (0.0, 0.0, load.start.max(0.0));
        for s in &load.stages {
            let len = s.duration.as_secs_f64();
            let r1 = s.target.max(0.0);
            segments.push(Segment {
                begin,
                len,
                r0,
                r1,
                n0,
            });
            n0 += (r0 + r1) / 2.0 * len;
            begin += len;
            r0 = r1;
        }
        Schedule {
            segments,
            total: n0,
        }
    }

    /// Expected number of arrivals in `[0, t)` seconds.
    pub fn count_before(&self, t: f64) -> f64 {
        for s in &self.segments {
            if t < s.begin + s.len {
                let tau = (t - s.begin).max(0.0);
                return s.n0 + s.r0 * tau + (s.r1 - s.r0) * tau * tau / (2.0 * s.len);
            }
        }
        self.total
    }

    /// Number of arrivals in the whole schedule.
    pub fn len(&self) -> u64 {
        // Arrival i is due at N(t) = i, so arrivals 0..ceil(total) fall inside.
        let n = self.total.ceil() as u64;
        if (n as f64 - self.total).abs() < 1e-9 {
            n
        } else {
            n.max(1)
        }
    }

    /// Whether the schedule has no arrivals.
    pub fn is_empty(&self) -> bool {
        self.total <= 0.0
    }

    /// When arrival `i` (0-based) is due, from the start of the run; `None` past the end.
    pub fn due(&self, i: u64) -> Option<Duration> {
        let n = i as f64;
        if n >= self.total {
            return None;
        }
        // Last segment whose start count is <= n (segments of zero rate are skipped).
        let s = self
            .segments
            .iter()
            .rev()
            .find(|s| s.n0 <= n && (s.r0 > 0.0 || s.r1 > 0.0))?;
        let k = n - s.n0;
        let a = (s.r1 - s.r0) / (2.0 * s.len);
        // Solve a·τ² + r0·τ = k in the form that is stable as a → 0.
        let disc = (s.r0 * s.r0 + 4.0 * a * k).max(0.0);
        let denom = s.r0 + disc.sqrt();
        let tau = if denom > 0.0 { 2.0 * k / denom } else { 0.0 };
        Some(Duration::from_secs_f64(s.begin + tau.clamp(0.0, s.len)))
    }
}

/// When a worker holding an arrival due at `due` should wake to send it. `next` is when
/// the arrival it will most likely hold next is due (the one `workers` further on), if
/// there is one. If that one falls within `window`, the worker wakes `window` after
/// `due` and sends, in that one wake-up, every arrival due by then; otherwise it wakes at
/// `due` itself, so at low rates no send waits for a batch that will not come.
pub(crate) fn wake_time(due: Duration, next: Option<Duration>, window: Duration) -> Duration {
    match next {
        Some(next) if !window.is_zero() && next <= due + window => due + window,
        _ => due,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use loadgate_scenario::{LoadModel, Stage, Validity};

    fn load(start: f64, stages: &[(u64, f64)]) -> Load {
        Load {
            model: LoadModel::Open,
            start,
            stages: stages
                .iter()
                .map(|&(d, t)| Stage {
                    duration: Duration::from_secs(d),
                    target: t,
                })
                .collect(),
            max_in_flight: 100,
            max_in_flight_set: true,
            connections: None,
            think_time: Duration::ZERO,
            warmup: Duration::ZERO,
            late_tolerance: Duration::from_millis(1),
            send_window: Duration::from_micros(250),
            validity: Validity {
                min_achieved_ratio: 0.95,
                max_late_ratio: 0.01,
                max_dropped_ratio: 0.001,
                mode: loadgate_scenario::ValidityMode::Robust,
            },
            seed: None,
        }
    }

    #[test]
    fn constant_rate_is_evenly_spaced() {
        let s = Schedule::new(&load(100.0, &[(10, 100.0)]));
        assert_eq!(s.len(), 1000);
        assert_eq!(s.due(0), Some(Duration::ZERO));
        assert_eq!(s.due(1).unwrap().as_micros(), 10_000);
        assert_eq!(s.due(999).unwrap().as_micros(), 9_990_000);
        assert_eq!(s.due(1000), None);
    }

    #[test]
    fn ramps_follow_the_integral() {
        // 0 -> 100 rps over 10 s: 500 arrivals, N(t) = 5 t².
        let s = Schedule::new(&load(0.0, &[(10, 100.0), (5, 100.0)]));
        assert_eq!(s.len(), 1000);
        let t = s.due(125).unwrap().as_secs_f64();
        assert!((t - 5.0).abs() < 1e-9, "{t}");
        let t = s.due(750).unwrap().as_secs_f64();
        assert!((t - 12.5).abs() < 1e-9, "{t}");
        // monotone
        let times: Vec<_> = (0..1000).map(|i| s.due(i).unwrap()).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]));
        // ramp down to zero
        let s = Schedule::new(&load(100.0, &[(10, 0.0)]));
        assert_eq!(s.len(), 500);
        assert!(s.due(499).unwrap().as_secs_f64() < 10.0);
    }

    #[test]
    fn striding_by_worker_partitions_the_schedule() {
        let s = Schedule::new(&load(0.0, &[(3, 333.0), (2, 50.0)]));
        let mut all: Vec<_> = (0..4u64)
            .flat_map(|w| (w..).step_by(4).map_while(|i| s.due(i).map(|t| (t, i))))
            .collect();
        all.sort();
        assert_eq!(all.len() as u64, s.len());
        assert!(all.iter().enumerate().all(|(k, &(_, i))| k as u64 == i));
    }

    #[test]
    fn a_worker_waits_the_window_only_when_another_arrival_falls_in_it() {
        let us = Duration::from_micros;
        // 20,000/s on 2 workers: the next arrival is 100 µs on, inside a 250 µs window.
        let s = Schedule::new(&load(20_000.0, &[(1, 20_000.0)]));
        let (due, next) = (s.due(10).unwrap(), s.due(12));
        assert_eq!(wake_time(due, next, us(250)), due + us(250));
        // 50/s: the next one is 40 ms on, so the send is not held back.
        let s = Schedule::new(&load(50.0, &[(1, 50.0)]));
        let (due, next) = (s.due(10).unwrap(), s.due(12));
        assert_eq!(wake_time(due, next, us(250)), due);
        // The last arrival, and a zero window, wake exactly on time.
        assert_eq!(wake_time(us(7), None, us(250)), us(7));
        assert_eq!(wake_time(us(7), Some(us(8)), Duration::ZERO), us(7));
        // On the window's edge it still batches.
        assert_eq!(wake_time(us(7), Some(us(257)), us(250)), us(257));
    }
}
