//! Generator pauses: stretches in which the generating process, or one of its workers,
//! did not run at all.

use serde::{Deserialize, Serialize};

/// Pauses longer than a threshold of the generating process, or of one of its workers
/// held from its CPU. The process's, as jHiccup measures a platform's hiccups: a thread
/// that does nothing else sleeps 1 ms at a time and notes how much later than asked it
/// woke. What keeps that thread from running (a host that deschedules the machine, a
/// stopped process, other work on every CPU) keeps the workers from sending too, so
/// arrivals due in a pause go out late whatever the generator does. A worker's (Linux):
/// its wait in its CPU's run queue (`schedstat`), read each 1 ms by the same thread and
/// counted when it grew by more than the threshold. That delays only the worker's own
/// sends and reads, so taken as a pause of the process it overstates what was held up;
/// a hold of every CPU counts once for the thread and once for each worker that waited.
/// Mergeable like the rest of the measurements; a fixed size, however long the run.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct Pauses {
    /// Only wake-ups later, and run-queue waits longer, than this were counted, µs (the
    /// run's late tolerance).
    pub threshold_us: u64,
    /// Pauses longer than the threshold.
    pub count: u64,
    /// Their summed length, µs.
    pub total_us: u64,
    /// The longest, µs.
    pub max_us: u64,
}

impl Pauses {
    /// No pauses yet, counting those longer than `threshold_us`.
    pub fn new(threshold_us: u64) -> Self {
        Pauses {
            threshold_us,
            ..Pauses::default()
        }
    }

    /// Counts a pause of `us` if it is longer than the threshold.
    pub fn record(&mut self, us: u64) {
        if us > self.threshold_us {
            self.count += 1;
            self.total_us += us;
            self.max_us = self.max_us.max(us);
        }
    }

    /// Adds another interval's or process's pauses.
    pub fn add(&mut self, other: &Pauses) {
        self.threshold_us = self.threshold_us.max(other.threshold_us);
        self.count += other.count;
        self.total_us += other.total_us;
        self.max_us = self.max_us.max(other.max_us);
    }

    /// Time inside the pauses beyond their first `tolerance_us` each, µs: at a steady
    /// rate, the arrivals due in it are the ones the pauses alone made late by more
    /// than the tolerance.
    pub fn beyond(&self, tolerance_us: u64) -> u64 {
        self.total_us
            .saturating_sub(self.count.saturating_mul(tolerance_us))
    }

    /// One plain-text phrase for people (escape it for HTML or Markdown): the counts
    /// only; the caller says whose pauses they are.
    pub fn describe(&self) -> String {
        let ms = |us: u64| us as f64 / 1000.0;
        match self.count {
            0 => format!("none longer than {} ms", ms(self.threshold_us)),
            n => format!(
                "{n} longer than {} ms, {:.1} ms in all, the longest {:.1} ms",
                ms(self.threshold_us),
                ms(self.total_us),
                ms(self.max_us)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_only_pauses_over_the_threshold_and_merges() {
        let mut a = Pauses::new(1_000);
        for us in [100, 1_000, 1_001, 47_000] {
            a.record(us);
        }
        assert_eq!((a.count, a.total_us, a.max_us), (2, 48_001, 47_000));
        assert_eq!(a.beyond(1_000), 46_001);
        let mut b = Pauses::new(1_000);
        b.record(5_000);
        b.add(&a);
        assert_eq!((b.count, b.total_us, b.max_us), (3, 53_001, 47_000));
        assert_eq!(
            b.describe(),
            "3 longer than 1 ms, 53.0 ms in all, the longest 47.0 ms"
        );
        assert_eq!(Pauses::new(1_000).describe(), "none longer than 1 ms");
    }
}
