//! Where worker threads run, read from the kernel during real runs against a real
//! target: an open-model run pins each worker to a CPU of its own; `pin_workers: false`
//! and the closed model leave every worker free to run on any CPU the process may use.
#![cfg(target_os = "linux")]

mod common;

use loadgate_engine::{run, Control, IntervalView, Observer, RunData};

/// Parses a `Cpus_allowed_list` value such as `0-1,4`.
fn cpu_list(s: &str) -> Vec<usize> {
    let mut out = Vec::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        out.extend(lo.parse::<usize>().unwrap()..=hi.parse::<usize>().unwrap());
    }
    out
}

fn allowed_of(status: &str) -> Vec<usize> {
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .expect("a Cpus_allowed_list line");
    cpu_list(line)
}

/// On the first interval, while every worker is running, reads each worker thread's
/// allowed CPUs from /proc.
#[derive(Default)]
struct Affinities(Option<Vec<Vec<usize>>>);

impl Observer for Affinities {
    fn interval(&mut self, _: &IntervalView<'_>) -> Control {
        if self.0.is_some() {
            return Control::Continue;
        }
        let mut seen = Vec::new();
        for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
            let path = task.path();
            // `comm` holds 15 bytes of the name: "loadgate-worker".
            let Ok(comm) = std::fs::read_to_string(path.join("comm")) else {
                continue;
            };
            if comm.trim_end() != "loadgate-worker" {
                continue;
            }
            if let Ok(status) = std::fs::read_to_string(path.join("status")) {
                seen.push(allowed_of(&status));
            }
        }
        seen.sort();
        self.0 = Some(seen);
        Control::Continue
    }
}

fn run_with(base: &str, model: &str, workers: usize, pin: bool) -> (RunData, Vec<Vec<usize>>) {
    let load = match model {
        "open" => "[load]\nmodel = \"open\"\nstages = [{ duration = \"2s\", target_rps = 100 }]\n",
        _ => "[load]\nmodel = \"closed\"\nstages = [{ duration = \"2s\", vus = 2 }]\nthink_time = \"10ms\"\n",
    };
    let text = format!(
        "name = \"pin\"\ntarget = \"{base}\"\n[[endpoint]]\nname = \"root\"\npath = \"/\"\n{load}"
    );
    let cfg = common::config(&text, base, workers, pin);
    let mut seen = Affinities::default();
    let data = run(cfg, &mut [&mut seen]).expect("run");
    let seen = seen.0.expect("the observer saw an interval");
    assert_eq!(seen.len(), workers, "worker threads found: {seen:?}");
    (data, seen)
}

#[test]
fn open_model_workers_are_pinned_and_others_are_not() {
    let target = loadgate_target::loopback("[[route]]\npath = \"/\"\n");
    let base = target.base_url();
    let process = allowed_of(&std::fs::read_to_string("/proc/self/status").unwrap());
    // As many workers as there are CPUs to pin them to, but no more than two.
    let workers = process.len().min(2);

    let (data, seen) = run_with(&base, "open", workers, true);
    let expected: Vec<Vec<usize>> = process[..workers].iter().map(|&c| vec![c]).collect();
    assert_eq!(seen, expected, "each open-model worker on a CPU of its own");
    let pinned: Vec<Option<usize>> = process[..workers].iter().map(|&c| Some(c)).collect();
    assert_eq!(data.pinned, pinned, "the run reports where its workers ran");
    assert!(data.measured.overall().sent > 100, "the run sent its load");

    for (model, pin) in [("open", false), ("closed", true)] {
        let (data, seen) = run_with(&base, model, workers, pin);
        assert_eq!(
            seen,
            vec![process.clone(); workers],
            "{model} model, pin_workers {pin}: workers free to run anywhere"
        );
        assert_eq!(data.pinned, vec![None; workers], "{model}, {pin}");
        assert!(data.measured.overall().completed() > 0, "{model}, {pin}");
    }
}

#[test]
fn cpu_lists_parse_as_the_kernel_prints_them() {
    assert_eq!(cpu_list("0-1\n"), vec![0, 1]);
    assert_eq!(cpu_list("0,2-4,7"), vec![0, 2, 3, 4, 7]);
    assert_eq!(cpu_list("3"), vec![3]);
}
