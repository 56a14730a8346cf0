//! Live progress: a bar on a terminal, a line every few seconds in CI logs.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use loadgate_engine::IntervalView;
use loadgate_slo::format_value;

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

    /// Shows interval `v`, in which `completed` requests completed.
    pub(crate) fn update(&self, v: &IntervalView<'_>, open: bool, completed: u64) {
        if matches!(self, Progress::Off) {
            return;
        }
        let cumulative = v.cumulative.overall();
        let p95 = format_value(
            cumulative.latency().quantile(0.95) as f64,
            loadgate_slo::Unit::Duration,
        );
        let target = if open {
            format!(" (target {:.1})", v.target)
        } else {
            format!(" ({} VUs)", v.target)
        };
        let draining = v.drain;
        let target = if draining { String::new() } else { target };
        let phase = if draining {
            " (draining in-flight requests)"
        } else if v.warmup {
            " warm-up"
        } else {
            ""
        };
        // Answers in this second (a second can answer more than its schedule sent, when
        // earlier requests finish in it); late and dropped sends exist only in the open
        // model.
        let sends = if open {
            format!(
                " · late {} · dropped {}",
                cumulative.late, cumulative.dropped
            )
        } else {
            String::new()
        };
        let msg = format!(
            "{completed} answers/s{target}{phase} · p95 so far {p95} · errors {}{sends}",
            cumulative.outcomes.errors(),
        );
        match self {
            Progress::Off => {}
            Progress::Bar(b, total) => {
                b.set_position((v.index + 1).min(*total));
                b.set_message(msg);
            }
            Progress::Lines { every, total_s } => {
                if (v.index + 1).is_multiple_of(*every) {
                    eprintln!("[{:>4}s/{}s] {msg}", v.index + 1, total_s);
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
