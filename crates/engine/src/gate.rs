//! Where the workers and the aggregator meet before the schedule starts and before it
//! ends: a barrier that any party can fail (a worker that cannot start, or panics), so
//! the others go on to an error instead of waiting forever.

/// Where every worker and the aggregator meet twice before the load: once when all are
/// ready, once after the start time is set. Unlike `std::sync::Barrier` it can be
/// failed: a party that cannot start says so, and every wait, present and future,
/// returns `false` at once instead of blocking forever.
pub(crate) struct Gate {
    parties: usize,
    state: std::sync::Mutex<GateState>,
    changed: std::sync::Condvar,
}

struct GateState {
    arrived: usize,
    round: u64,
    failed: bool,
}

impl Gate {
    pub(crate) fn new(parties: usize) -> Gate {
        Gate {
            parties,
            state: std::sync::Mutex::new(GateState {
                arrived: 0,
                round: 0,
                failed: false,
            }),
            changed: std::sync::Condvar::new(),
        }
    }

    /// Waits for every party; `false` when the gate failed instead.
    pub(crate) fn wait(&self) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.failed {
            return false;
        }
        s.arrived += 1;
        if s.arrived == self.parties {
            s.arrived = 0;
            s.round += 1;
            self.changed.notify_all();
            return true;
        }
        let round = s.round;
        while s.round == round && !s.failed {
            s = self.changed.wait(s).unwrap_or_else(|p| p.into_inner());
        }
        s.round != round
    }

    /// Fails the gate: every waiting and later `wait` returns `false`.
    pub(crate) fn fail(&self) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.failed = true;
        self.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::Gate;
    use std::sync::Arc;

    #[test]
    fn a_failed_gate_lets_every_waiter_go_instead_of_blocking_forever() {
        let gate = Arc::new(Gate::new(3));
        let waiter = {
            let gate = gate.clone();
            std::thread::spawn(move || gate.wait())
        };
        // The third party never comes: it fails the gate instead.
        gate.fail();
        assert!(!waiter.join().unwrap());
        assert!(!gate.wait(), "later waits return at once too");
    }

    #[test]
    fn a_gate_opens_twice_when_every_party_comes() {
        let gate = Arc::new(Gate::new(2));
        let other = {
            let gate = gate.clone();
            std::thread::spawn(move || gate.wait() && gate.wait())
        };
        assert!(gate.wait() && gate.wait());
        assert!(other.join().unwrap());
    }
}
