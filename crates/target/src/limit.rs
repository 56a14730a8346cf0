//! Per-user request windows for `[rate_limit]`, in a table of fixed size.
//!
//! Each limit keeps [`WINDOWS`] windows (4,096: 1,024 sets of 4), found by a keyed hash
//! of the user, whatever how many users come: about 100 KiB a limit, allocated at
//! start-up, never grown. A user's window starts at its first counted request and
//! holds `per_user` requests for `per`; past that the request is refused until the
//! window ends. When the 4 windows of a user's set all belong to other users still in
//! their windows, the one that started first is forgotten: with more users at once
//! than the table holds, a user may be let through early, never refused for another's
//! requests (a fingerprint is 64 bits). Not here: who the user is (`api.rs`).

use std::hash::BuildHasher;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::RateLimit;

/// Sets of windows, each behind its own lock.
const SETS: usize = 1024;
/// Windows per set.
const WAYS: usize = 4;
/// Windows a limit keeps at once.
pub(crate) const WINDOWS: usize = SETS * WAYS;

/// One user's window; `user == 0` is a free one.
#[derive(Clone, Copy, Default)]
struct Window {
    /// The user's fingerprint (never 0).
    user: u64,
    /// When the window started, in ms from the limiter's creation.
    start: u64,
    /// Requests counted in it.
    count: u32,
}

/// One `[rate_limit]` entry and its windows.
pub(crate) struct Limiter {
    pub(crate) limit: RateLimit,
    base: Instant,
    hasher: std::collections::hash_map::RandomState,
    sets: Vec<Mutex<[Window; WAYS]>>,
}

impl Limiter {
    pub(crate) fn new(limit: RateLimit, base: Instant) -> Limiter {
        Limiter {
            limit,
            base,
            hasher: std::collections::hash_map::RandomState::new(),
            sets: (0..WINDOWS / WAYS)
                .map(|_| Mutex::new([Window::default(); WAYS]))
                .collect(),
        }
    }

    /// Counts a request of `user` at `now`, or refuses it: `Err(wait)` until a request
    /// would be counted again (the end of the user's window).
    pub(crate) fn check(&self, user: &str, now: Instant) -> Result<(), Duration> {
        let hash = self.hasher.hash_one(user);
        let fingerprint = hash | 1;
        // The set from other bits than the fingerprint's lowest.
        let set = (hash >> 40) as usize % SETS;
        let now = now.saturating_duration_since(self.base).as_millis() as u64;
        let per = self.limit.per.as_millis() as u64;
        let mut ways = self.sets[set].lock().unwrap_or_else(|p| p.into_inner());
        let live = |w: &Window| w.user != 0 && now < w.start.saturating_add(per);
        if let Some(w) = ways.iter_mut().find(|w| w.user == fingerprint) {
            if !live(w) {
                *w = Window {
                    user: fingerprint,
                    start: now,
                    count: 0,
                };
            }
            if w.count >= self.limit.per_user {
                return Err(Duration::from_millis(w.start + per - now));
            }
            w.count += 1;
            return Ok(());
        }
        // A free or ended window, else the one that started first.
        let slot = ways
            .iter_mut()
            .min_by_key(|w| {
                if live(w) {
                    w.start.saturating_add(1)
                } else {
                    0
                }
            })
            .expect("a set has windows");
        *slot = Window {
            user: fingerprint,
            start: now,
            count: 1,
        };
        Ok(())
    }
}

/// `Retry-After` for a wait: whole seconds, rounded up, at least 1.
pub(crate) fn retry_after(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_user: u32, per: u64) -> (Limiter, Instant) {
        let base = Instant::now();
        let limit = RateLimit {
            path: "/api/agent/*".into(),
            method: None,
            per_user,
            per: Duration::from_secs(per),
        };
        (Limiter::new(limit, base), base)
    }

    #[test]
    fn a_user_gets_per_user_requests_a_window_then_waits_for_its_end() {
        let (l, base) = limiter(10, 60);
        let at = |ms: u64| base + Duration::from_millis(ms);
        for i in 0..10 {
            assert_eq!(l.check("alice", at(1000 + i * 100)), Ok(()), "request {i}");
        }
        // The 11th, 5 s into the window: refused until the window's end, 55 s later.
        assert_eq!(l.check("alice", at(6000)), Err(Duration::from_secs(55)));
        assert_eq!(retry_after(Duration::from_secs(55)), 55);
        // Another user has a window of its own.
        assert_eq!(l.check("bob", at(6000)), Ok(()));
        // The window ends 60 s after its first request: counted again.
        assert_eq!(l.check("alice", at(60_999)), Err(Duration::from_millis(1)));
        assert_eq!(retry_after(Duration::from_millis(1)), 1);
        assert_eq!(l.check("alice", at(61_000)), Ok(()));
    }

    /// More users than the table holds: nobody is refused for the others' requests, and
    /// the table does not grow.
    #[test]
    fn more_users_than_windows_are_never_refused_for_others() {
        let (l, base) = limiter(1, 60);
        for u in 0..(WINDOWS * 4) {
            assert_eq!(l.check(&format!("user-{u}"), base), Ok(()), "user {u}");
        }
        assert_eq!(l.sets.len() * WAYS, WINDOWS);
        // The last user's window is still there.
        assert!(l.check(&format!("user-{}", WINDOWS * 4 - 1), base).is_err());
    }
}
