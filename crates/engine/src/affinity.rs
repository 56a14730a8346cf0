//! Pinning open-model workers to CPUs of their own.
//!
//! On a virtual machine the host may leave an idle vCPU halted for milliseconds after
//! something wakes a thread there. Unpinned, the kernel places a waking worker on
//! whichever CPU looks idle, and a worker's timerfd fires on the CPU it last ran on, so
//! both workers of a 2-vCPU machine can end up waiting on the one the host holds while
//! the other sits free: every arrival due meanwhile goes out late (ftrace showed 150 in
//! one 15 ms hold). Pinned, a held vCPU holds one worker and the arrival it waits for;
//! the others go on claiming arrivals from the shared counter. The closed model is not
//! pinned: against a target on the same cores that cost 9% of its throughput.

/// The CPUs this process may run on, in order.
#[cfg(target_os = "linux")]
pub(crate) fn allowed_cpus() -> Vec<usize> {
    use rustix::thread::{sched_getaffinity, CpuSet};
    match sched_getaffinity(None) {
        Ok(set) => (0..CpuSet::MAX_CPU).filter(|&c| set.is_set(c)).collect(),
        Err(_) => Vec::new(),
    }
}

/// Restricts the calling thread to `cpu`; whether that worked.
#[cfg(target_os = "linux")]
pub(crate) fn pin_current(cpu: usize) -> bool {
    use rustix::thread::{sched_setaffinity, CpuSet};
    let mut set = CpuSet::new();
    set.set(cpu);
    sched_setaffinity(None, &set).is_ok()
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn allowed_cpus() -> Vec<usize> {
    Vec::new()
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn pin_current(_cpu: usize) -> bool {
    false
}

/// The CPU for each of `workers` workers, or `None` for all when they are not to be
/// pinned: only when asked, and only when every worker can have a CPU of its own.
pub(crate) fn plan(asked: bool, workers: usize, cpus: &[usize]) -> Vec<Option<usize>> {
    let pin = asked && workers <= cpus.len();
    (0..workers).map(|i| pin.then(|| cpus[i])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_worker_gets_a_cpu_of_its_own_or_none_does() {
        assert_eq!(plan(true, 2, &[0, 1]), vec![Some(0), Some(1)]);
        assert_eq!(plan(true, 2, &[3, 5, 7]), vec![Some(3), Some(5)]);
        // More workers than CPUs, or not asked: nobody is pinned.
        assert_eq!(plan(true, 3, &[0, 1]), vec![None, None, None]);
        assert_eq!(plan(false, 2, &[0, 1]), vec![None, None]);
        assert_eq!(plan(true, 1, &[]), vec![None]);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_pinned_thread_may_run_on_its_cpu_only() {
        let cpus = allowed_cpus();
        assert!(!cpus.is_empty());
        let last = *cpus.last().unwrap();
        let seen = std::thread::spawn(move || {
            assert!(pin_current(last));
            allowed_cpus()
        })
        .join()
        .unwrap();
        assert_eq!(seen, vec![last]);
        // The calling thread is untouched.
        assert_eq!(allowed_cpus(), cpus);
    }
}
