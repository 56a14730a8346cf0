//! The pause meter: a thread of its own that sleeps 1 ms at a time and notes how much
//! later than asked it woke (jHiccup's method). The workers cannot tell a pause of the
//! whole process from their own slowness; this thread, doing nothing else, can.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use loadgate_metrics::Pauses;

const TICK: Duration = Duration::from_millis(1);

/// Pauses by the run's second in which they ended; the aggregator takes each second's
/// as it finalizes it, so at most a few seconds are ever held.
type Log = Arc<Mutex<BTreeMap<u64, Pauses>>>;

pub(crate) struct PauseMeter {
    stop: Arc<AtomicBool>,
    log: Log,
    threshold_us: u64,
    thread: Option<JoinHandle<()>>,
}

impl PauseMeter {
    /// Starts measuring; pauses that end before `start` (the schedule's start) are not
    /// counted.
    pub(crate) fn start(start: Instant, threshold: Duration) -> std::io::Result<PauseMeter> {
        let stop = Arc::new(AtomicBool::new(false));
        let log: Log = Arc::default();
        let threshold_us = threshold.as_micros() as u64;
        let thread = {
            let (stop, log) = (stop.clone(), log.clone());
            std::thread::Builder::new()
                .name("loadgate-pauses".into())
                .spawn(move || {
                    let mut last = Instant::now();
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(TICK);
                        let now = Instant::now();
                        let over = now.saturating_duration_since(last + TICK).as_micros() as u64;
                        last = now;
                        if over > threshold_us && now > start {
                            let second = (now - start).as_secs();
                            let mut log = log.lock().unwrap_or_else(|p| p.into_inner());
                            log.entry(second)
                                .or_insert_with(|| Pauses::new(threshold_us))
                                .record(over);
                        }
                    }
                })?
        };
        Ok(PauseMeter {
            stop,
            log,
            threshold_us,
            thread: Some(thread),
        })
    }

    /// No pauses, counted as this meter counts them.
    pub(crate) fn none(&self) -> Pauses {
        Pauses::new(self.threshold_us)
    }

    /// The pauses that ended in second `index` or before and were not taken yet.
    pub(crate) fn take_through(&self, index: u64) -> Pauses {
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        let later = log.split_off(&(index + 1));
        let mut sum = self.none();
        for p in std::mem::replace(&mut *log, later).values() {
            sum.add(p);
        }
        sum
    }
}

impl Drop for PauseMeter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_each_second_once_and_in_order() {
        let m = PauseMeter {
            stop: Arc::new(AtomicBool::new(true)),
            log: Arc::default(),
            threshold_us: 1_000,
            thread: None,
        };
        {
            let mut log = m.log.lock().unwrap();
            for (second, us) in [(0, 2_000), (2, 30_000), (2, 5_000), (5, 9_000)] {
                log.entry(second)
                    .or_insert_with(|| Pauses::new(1_000))
                    .record(us);
            }
        }
        assert_eq!(m.take_through(0).total_us, 2_000);
        assert_eq!(m.take_through(1).count, 0);
        let two = m.take_through(3);
        assert_eq!((two.count, two.total_us, two.max_us), (2, 35_000, 30_000));
        assert_eq!(m.take_through(3).count, 0, "a second is taken once");
        assert_eq!(m.take_through(9).max_us, 9_000);
    }
}
