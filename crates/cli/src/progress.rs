//! Live progress: a bar on a terminal, a line every few seconds in CI logs.
//!
//! An observer of the run: what a line shows is taken from each interval on the
//! aggregator's path ([`Tick`]), and drawn on a thread of its own, since a terminal or a
//! CI log's pipe can keep a write waiting.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use loadgate_engine::{Control, IntervalView, Observer};
use loadgate_slo::format_value;

use crate::observers::{Feed, Told};

/// Where progress goes.
pub(crate) enum Progress {
    /// Nothing (`--quiet`).
    Off,
    /// An indicatif bar (stderr is a terminal).
    Bar(ProgressBar, u64),
    /// One line to stderr every `every` intervals.
    Lines { every: u64, total_s: u64 },
}

impl Progress {
    pub(crate) fn new(quiet: bool, total: Duration) -> Progress {
        let total_s = total.as_secs().max(1);
        if quiet {
            Progress::Off
        } else if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(total_s);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len}s {msg}",
                )
                .expect("the template is valid"),
            );
            Progress::Bar(bar, total_s)
        } else {
            Progress::Lines {
                every: if total_s > 60 { 10 } else { 5 },
                total_s,
            }
        }
    }

    /// Shows interval `t` (`open`: the open model, with late and dropped sends).
    fn show(&self, t: &Tick, open: bool) {
        if matches!(self, Progress::Off) {
            return;
        }
        let p95 = format_value(t.p95_us as f64, loadgate_slo::Unit::Duration);
        let target = if open {
            format!(" (target {:.1})", t.target)
        } else {
            format!(" ({} VUs)", t.target)
        };
        let draining = t.drain;
        let target = if draining { String::new() } else { target };
        let phase = if draining {
            " (draining in-flight requests)"
        } else if t.warmup {
            " warm-up"
        } else {
            ""
        };
        // Answers in this second (a second can answer more than its schedule sent, when
        // earlier requests finish in it); late and dropped sends exist only in the open
        // model.
        let sends = if open {
            format!(" · late {} · dropped {}", t.late, t.dropped)
        } else {
            String::new()
        };
        let msg = format!(
            "{} answers/s{target}{phase} · p95 so far {p95} · errors {}{sends}",
            t.completed, t.errors,
        );
        match self {
            Progress::Off => {}
            Progress::Bar(b, total) => {
                b.set_position((t.index + 1).min(*total));
                b.set_message(msg);
            }
            Progress::Lines { every, total_s } => {
                if (t.index + 1).is_multiple_of(*every) {
                    eprintln!("[{:>4}s/{}s] {msg}", t.index + 1, total_s);
                }
            }
        }
    }

    pub(crate) fn finish(&self) {
        if let Progress::Bar(b, _) = self {
            b.finish_and_clear();
        }
    }
}

/// What the progress line shows of one interval: its counts, and the phase's so far.
pub(crate) struct Tick {
    index: u64,
    warmup: bool,
    drain: bool,
    target: f64,
    /// Answers in this interval.
    completed: u64,
    /// In the phase so far.
    p95_us: u64,
    late: u64,
    dropped: u64,
    errors: u64,
}

impl Tick {
    fn of(v: &IntervalView<'_>) -> Tick {
        let cumulative = v.cumulative.overall();
        Tick {
            index: v.index,
            warmup: v.warmup,
            drain: v.drain,
            target: v.target,
            completed: v.data.endpoints().iter().map(|e| e.completed()).sum(),
            p95_us: cumulative.latency().quantile(0.95),
            late: cumulative.late,
            dropped: cumulative.dropped,
            errors: cumulative.outcomes.errors(),
        }
    }
}

/// Shows each interval through a [`Progress`] drawn on its own thread.
pub(crate) struct ProgressObserver(pub(crate) Feed<Tick>);

impl Observer for ProgressObserver {
    fn interval(&mut self, v: &IntervalView<'_>) -> Control {
        self.0.send(Told::Interval(Tick::of(v)));
        Control::Continue
    }

    fn finished(&mut self) {
        self.0.close();
    }
}

/// The progress thread: shows what it is told until the run's end.
pub(crate) fn show_all(
    progress: &Progress,
    open: bool,
    told: impl IntoIterator<Item = Told<Tick>>,
) {
    for t in told {
        if let Told::Interval(t) = t {
            progress.show(&t, open);
        }
    }
}
