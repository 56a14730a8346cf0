//! How long each worker thread waited in its CPU's run queue, for the pause meter.
//!
//! A pinned worker can be held off its CPU by another process while the pause meter
//! runs happily on another CPU (traced: 376 ms): its socket reads happen late, so its
//! answers, first tokens and token gaps look slow, and the meter, watching only its own
//! lateness, sees nothing. Linux counts each thread's wait in `/proc/thread-self/schedstat`
//! (time on CPU ns, time runnable but waiting in a run queue ns, timeslices); the wait is
//! added only when the waiting thread finally runs, so a 376 ms hold shows as one jump of
//! about 376 ms at its end. Each open-model worker opens its own file at its start,
//! after pinning ([`Roll::enlist_this_thread`]), and the pause meter reads every
//! worker's wait each tick (a `pread` at offset 0 of the open file, under 1 µs). A
//! tick's growth may sum a wait that began before the last read and shorter ones after
//! it; over the threshold, the worker spent that much of the last moments off its CPU
//! all the same.
//!
//! Not for judging anything: the meter records the jumps as pauses, as it records its own
//! lateness. Where the file cannot be read (another OS, no `/proc`) no worker's wait is
//! measured and the run goes on as before, silently; a kernel without scheduler
//! statistics reads `0 0 0`, which never grows. The file takes one descriptor per
//! worker while the run lasts.

use std::sync::{Arc, Mutex};

/// The run-queue wait in a `schedstat` line (`<on cpu ns> <run delay ns> <timeslices>`),
/// ns; `None` for anything else.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(crate) fn run_delay_ns(line: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(line).ok()?;
    let mut fields = text.split_ascii_whitespace();
    let (_on_cpu, delay, _slices) = (fields.next()?, fields.next()?, fields.next()?);
    if fields.next().is_some() {
        return None;
    }
    delay.parse().ok()
}

/// One thread's run-queue wait, read from its own `schedstat` file kept open.
#[cfg(target_os = "linux")]
pub(crate) struct RunDelay {
    file: std::fs::File,
    /// The wait read last, ns.
    last_ns: u64,
}

#[cfg(target_os = "linux")]
impl RunDelay {
    /// The calling thread's, or `None` when its `schedstat` cannot be read.
    pub(crate) fn of_this_thread() -> Option<RunDelay> {
        let file = std::fs::File::open("/proc/thread-self/schedstat")
            .or_else(|_| {
                let tid = rustix::thread::gettid().as_raw_nonzero();
                std::fs::File::open(format!("/proc/self/task/{tid}/schedstat"))
            })
            .ok()?;
        let mut delay = RunDelay { file, last_ns: 0 };
        delay.last_ns = delay.read()?;
        Some(delay)
    }

    fn read(&self) -> Option<u64> {
        use std::os::unix::fs::FileExt;
        // Three u64 in decimal and two spaces: at most 62 bytes.
        let mut buf = [0u8; 80];
        let n = self.file.read_at(&mut buf, 0).ok()?;
        run_delay_ns(&buf[..n])
    }

    /// How much longer the thread has waited since the last call (or since it was
    /// opened), ns; `None` once it cannot be read (the thread has ended).
    pub(crate) fn growth_ns(&mut self) -> Option<u64> {
        let now = self.read()?;
        let grew = now.saturating_sub(self.last_ns);
        self.last_ns = now;
        Some(grew)
    }
}

/// No run-queue wait is measured off Linux.
#[cfg(not(target_os = "linux"))]
pub(crate) enum RunDelay {}

#[cfg(not(target_os = "linux"))]
impl RunDelay {
    pub(crate) fn of_this_thread() -> Option<RunDelay> {
        None
    }

    pub(crate) fn growth_ns(&mut self) -> Option<u64> {
        match *self {}
    }
}

/// The workers' run delays, handed over from each worker thread to the pause meter:
/// every worker enlists before it waits at the start gate, and the run takes the roll
/// once every worker is there, to start the meter with.
#[derive(Clone, Default)]
pub(crate) struct Roll(Arc<Mutex<Vec<RunDelay>>>);

impl Roll {
    /// Adds the calling thread, if its wait can be read.
    pub(crate) fn enlist_this_thread(&self) {
        if let Some(delay) = RunDelay::of_this_thread() {
            self.0.lock().unwrap_or_else(|p| p.into_inner()).push(delay);
        }
    }

    /// Everyone enlisted so far.
    pub(crate) fn take(&self) -> Vec<RunDelay> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_run_delay_of_a_schedstat_line_and_nothing_else() {
        assert_eq!(run_delay_ns(b"10253706 376012345 42\n"), Some(376_012_345));
        assert_eq!(run_delay_ns(b"0 0 0\n"), Some(0));
        assert_eq!(run_delay_ns(b"1 2 3"), Some(2));
        assert_eq!(
            run_delay_ns(b"18446744073709551615 18446744073709551615 1\n"),
            Some(u64::MAX)
        );
        for bad in [
            &b""[..],
            b"\n",
            b"1 2\n",
            b"1 2 3 4\n",
            b"1 -2 3\n",
            b"1 x 3\n",
            b"1 18446744073709551616 3\n",
            b"\xff 2 3\n",
        ] {
            assert_eq!(
                run_delay_ns(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_thread_reads_its_own_wait_and_a_roll_hands_it_over() {
        let roll = Roll::default();
        let (done, ended) = std::sync::mpsc::channel::<()>();
        let worker = {
            let roll = roll.clone();
            std::thread::spawn(move || {
                roll.enlist_this_thread();
                let _ = ended.recv();
            })
        };
        // Enlisted before the first `recv` returns: wait for the roll to fill, bounded.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut taken = roll.take();
        while taken.is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(1));
            taken = roll.take();
        }
        assert_eq!(taken.len(), 1, "this machine's schedstat is readable");
        assert!(taken[0].growth_ns().is_some(), "readable while it lives");
        drop(done);
        worker.join().unwrap();
        assert_eq!(taken[0].growth_ns(), None, "an ended thread reads as gone");
        assert!(roll.take().is_empty(), "taken once");
    }
}
