//! The files a run writes while it goes on (`timeseries.jsonl`, `intervals.hlog`):
//! [`Stream`], which appends an interval at a time, whole, and what their writers are
//! told ([`Interval`], [`LogEvent`]).
//!
//! Not here: what a line of either file holds (`rundir::SeriesWriter`,
//! `interval_log::IntervalLogWriter`), or which thread writes (the caller's).

use std::fs::File;
use std::io::{self, Write};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use loadgate_metrics::{IntervalView, Pauses, Shard};

/// One interval as the streamed files take it: a copy of what completed in it, so that
/// an observer on the run's path can hand it to a thread of its own that writes.
#[derive(Debug, Clone)]
pub struct Interval {
    /// Second of the run, from 0.
    pub index: u64,
    /// In the warm-up.
    pub warmup: bool,
    /// After the measured phase.
    pub drain: bool,
    /// Arrivals due (open model) or VUs (closed model).
    pub target: f64,
    /// Pauses of the generating process that ended in this second (open model).
    pub pauses: Option<Pauses>,
    /// What completed in it.
    pub data: Shard,
}

impl Interval {
    /// A copy of interval `v`.
    pub fn of(v: &IntervalView<'_>) -> Interval {
        Interval {
            index: v.index,
            warmup: v.warmup,
            drain: v.drain,
            target: v.target,
            pauses: v.pauses,
            data: v.data.clone(),
        }
    }
}

/// What the interval log is told, in the order the run told its observer.
#[derive(Debug, Clone)]
pub enum LogEvent {
    /// The run's start: the wall-clock time of interval 0 (`RunStarted::at`).
    Started(SystemTime),
    /// One interval.
    Interval(Interval),
}

/// Bytes waiting for the end of an interval, shared with writers that hold a `Write`
/// of their own (the interval log's). A stream is written on a thread of its own, so
/// this is `Send`; only that thread ever holds it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Pending(Arc<Mutex<Vec<u8>>>);

impl Pending {
    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Write for Pending {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A file written while the run goes on. Text is gathered in [`Stream::pending`] and
/// appended by [`Stream::commit`] at the end of each interval, whole: a write that
/// fails part-way is cut back to the last whole interval, and the file then stops
/// growing (a gap in the middle would mislead more than an early end).
#[derive(Debug)]
pub(crate) struct Stream {
    pub(super) name: &'static str,
    /// `None` when it could not be created (recorded then).
    pub(super) file: Option<File>,
    pending: Pending,
    /// Bytes on disk that end with a whole interval.
    whole: u64,
    pub(super) error: Option<String>,
}

impl Stream {
    pub(super) fn new(name: &'static str, file: Option<File>) -> Stream {
        Stream {
            name,
            file,
            pending: Pending::default(),
            whole: 0,
            error: None,
        }
    }

    /// Where the next interval's bytes go.
    pub(crate) fn pending(&self) -> Pending {
        self.pending.clone()
    }

    /// Appends the interval gathered so far to the file.
    pub(crate) fn commit(&mut self) {
        let bytes = self.pending.take();
        if self.error.is_some() || bytes.is_empty() {
            return;
        }
        let Some(f) = &mut self.file else { return };
        match f.write_all(&bytes) {
            Ok(()) => self.whole += bytes.len() as u64,
            Err(e) => {
                let _ = f.set_len(self.whole);
                self.error = Some(format!("{e}; it holds the intervals written before that"));
            }
        }
    }
}
