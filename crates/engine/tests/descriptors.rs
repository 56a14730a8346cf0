//! The descriptor table is grown before a run, not while its workers open sockets (see
//! `loadgate_engine::fds`): read from the kernel (`FDSize` in /proc/self/status) around a
//! real run that opens hundreds of connections to a real target in this process.
//! One test in this binary, so nothing else grows the table or changes the limit.
#![cfg(target_os = "linux")]

mod common;

use loadgate_engine::{fds, run, Control, IntervalView, Observer};
use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

/// The number of descriptor slots the kernel holds for this process.
fn table_size() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("FDSize:"))
        .expect("an FDSize line")
        .trim()
        .parse()
        .unwrap()
}

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// The table size and the open descriptors at every interval of the run.
#[derive(Default)]
struct Seen(Vec<(u64, usize)>);

impl Observer for Seen {
    fn interval(&mut self, _: &IntervalView<'_>) -> Control {
        self.0.push((table_size(), open_descriptors()));
        Control::Continue
    }
}

#[test]
fn the_table_is_grown_once_before_the_workers_open_their_sockets() {
    const VUS: usize = 300;
    // Start from the soft limit many systems give a process, to see it raised.
    let hard = getrlimit(Resource::Nofile).maximum;
    let lowered = hard.is_some_and(|h| h > 1024);
    if lowered {
        setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(1024),
                maximum: hard,
            },
        )
        .unwrap();
    }
    let before = table_size();
    assert!(
        before < 2 * VUS as u64,
        "a fresh test process should not yet hold {} descriptor slots (has {before}), or this test proves nothing",
        2 * VUS
    );

    let target = loadgate_target::loopback("[[route]]\npath = \"/\"\n");
    let base = target.base_url();
    let text = format!(
        "name = \"fds\"\ntarget = \"{base}\"\n[[endpoint]]\nname = \"root\"\npath = \"/\"\n\
         [load]\nmodel = \"closed\"\nstages = [{{ duration = \"2s\", vus = {VUS} }}]\nthink_time = \"20ms\"\n"
    );
    let cfg = common::config(&text, &base, 2, false);
    let mut seen = Seen::default();
    let data = run(cfg, &mut [&mut seen]).expect("run");
    let completed = data.measured.overall().completed();
    assert!(completed > VUS as u64, "the run completed {completed}");

    let limit = getrlimit(Resource::Nofile).current;
    if lowered {
        assert_eq!(limit, hard, "the soft limit is raised to the hard one");
    }
    let want = limit.map_or(fds::RESERVE, |l| l.min(fds::RESERVE));
    // Every interval saw the table at its final size: it was grown before the first
    // send, to hold every descriptor the run opened (client and target sides both).
    assert!(!seen.0.is_empty());
    let peak_open = seen.0.iter().map(|&(_, open)| open).max().unwrap();
    assert!(
        peak_open > VUS,
        "the run held {peak_open} descriptors at most; it should hold one per connection"
    );
    for &(size, open) in &seen.0 {
        assert!(
            size >= want,
            "{size} descriptor slots during the run ({open} open); {want} were to be reserved"
        );
        assert_eq!(size, table_size(), "the table grew during the run");
    }
}
