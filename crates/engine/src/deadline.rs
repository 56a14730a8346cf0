//! Request timeouts for one worker without a timer per request.
//!
//! A tokio timeout registers every request in the runtime's timer wheel and takes it out
//! again when the answer comes, under the driver's lock: about 4% of a worker's CPU in a
//! closed loop against nginx (measured by removing it). Nearly every request finishes
//! long before its timeout, so a worker keeps its in-flight
//! deadlines in a slab instead and one task of its own ([`Deadlines::watch`]) looks at
//! them every [`Deadlines::tick`]: a request is failed as timed out at most one tick after
//! its deadline, never before it, unless the worker was kept from running when the
//! deadline passed: then one tick more, so that an answer that came in time and waited
//! unread in its socket is read, not called a timeout. Each request brings its own
//! deadline (its endpoint's timeout after its send); the tick follows the shortest
//! timeout.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// The request did not finish before its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed;

/// One worker's in-flight deadlines (not `Send`: each worker has its own).
pub struct Deadlines {
    tick: Duration,
    slots: RefCell<Slots>,
}

#[derive(Default)]
struct Slots {
    entries: Vec<Slot>,
    free: Vec<usize>,
}

struct Slot {
    deadline: Instant,
    waker: Option<Waker>,
    expired: bool,
    /// Found past its deadline by a look that came late (the worker was kept from
    /// running): given one more tick before it expires.
    grace: bool,
}

pin_project_lite::pin_project! {
    /// A request with a deadline ([`Deadlines::run`]). The request's future is polled
    /// where it lies: no copy of it is made per request.
    pub struct Within<'a, F> {
        #[pin]
        fut: F,
        slot: Release<'a>,
    }
}

impl<F: Future> Future for Within<'_, F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(v) = this.fut.poll(cx) {
            return Poll::Ready(Ok(v));
        }
        let Release(deadlines, slot) = this.slot;
        let mut slots = deadlines.slots.borrow_mut();
        let entry = &mut slots.entries[*slot];
        if entry.expired {
            return Poll::Ready(Err(Elapsed));
        }
        match &entry.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => entry.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

/// Gives a slot back when its request ends, however it ends (answered, timed out or
/// dropped by an abandoned run).
struct Release<'a>(&'a Deadlines, usize);

impl Drop for Release<'_> {
    fn drop(&mut self) {
        let mut slots = self.0.slots.borrow_mut();
        slots.entries[self.1].waker = None;
        slots.free.push(self.1);
    }
}

/// How much later than its tick a look may come before the worker counts as having been
/// kept from running.
const HELD: Duration = Duration::from_millis(2);

impl Deadlines {
    /// Deadlines checked every hundredth of `shortest`, the shortest timeout any request
    /// will have (between 1 ms and 10 ms).
    pub fn new(shortest: Duration) -> Deadlines {
        Deadlines {
            tick: (shortest / 100).clamp(Duration::from_millis(1), Duration::from_millis(10)),
            slots: RefCell::default(),
        }
    }

    /// How often [`Deadlines::watch`] looks: the most a timeout can fire late.
    pub fn tick(&self) -> Duration {
        self.tick
    }

    /// Runs `fut` until it finishes or `deadline` passes. Timeouts fire only while
    /// [`Deadlines::watch`] runs on the same thread.
    #[inline]
    pub fn run<F: Future>(&self, deadline: Instant, fut: F) -> Within<'_, F> {
        // Inlined, so the caller builds `Within` where it will lie and the request's
        // future (kilobytes) is not copied; the slot's bookkeeping stays out of line.
        Within {
            fut,
            slot: Release(self, self.take_slot(deadline)),
        }
    }

    fn take_slot(&self, deadline: Instant) -> usize {
        let mut slots = self.slots.borrow_mut();
        let entry = Slot {
            deadline,
            waker: None,
            expired: false,
            grace: false,
        };
        match slots.free.pop() {
            Some(i) => {
                slots.entries[i] = entry;
                i
            }
            None => {
                slots.entries.push(entry);
                slots.entries.len() - 1
            }
        }
    }

    /// Every tick, marks the requests past their deadline and wakes them. Never returns:
    /// spawn it beside the requests and drop or abort it with them.
    pub async fn watch(&self) {
        let mut due = Vec::new();
        loop {
            tokio::time::sleep(self.tick).await;
            let now = Instant::now();
            {
                let mut slots = self.slots.borrow_mut();
                for entry in &mut slots.entries {
                    if let Some(w) = entry
                        .waker
                        .as_ref()
                        .filter(|_| !entry.expired && entry.deadline <= now)
                    {
                        // A deadline this look finds passed by more than a tick and
                        // the slop went by while the worker was not running (held in a
                        // run queue, or the process stopped): an answer that arrived
                        // before it may be waiting in its socket, unread. It gets one
                        // more tick, in which the runtime hands the request what
                        // arrived; only a request still unanswered then timed out.
                        let late = now.saturating_duration_since(entry.deadline) > self.tick + HELD;
                        if late && !entry.grace {
                            entry.grace = true;
                            continue;
                        }
                        entry.expired = true;
                        due.push(w.clone());
                    }
                }
            }
            // Woken after the borrow ends: a waker may run code that takes a slot.
            for w in due.drain(..) {
                w.wake();
            }
        }
    }
}

/// Shows the type only: its parts are connections, sockets and encoded requests (whose
/// headers may hold secrets), nothing a log should print.
impl std::fmt::Debug for Deadlines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deadlines").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local<F: Future>(f: F) -> F::Output {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        tokio::task::LocalSet::new().block_on(&rt, f)
    }

    #[test]
    fn a_request_past_its_deadline_times_out_never_before_it() {
        local(async {
            let d = std::rc::Rc::new(Deadlines::new(Duration::from_millis(50)));
            let watch = tokio::task::spawn_local({
                let d = d.clone();
                async move { d.watch().await }
            });
            let sent = Instant::now();
            let timeout = Duration::from_millis(50);
            let r = d.run(sent + timeout, std::future::pending::<()>()).await;
            assert_eq!(r, Err(Elapsed));
            assert!(
                sent.elapsed() >= Duration::from_millis(50),
                "fired early: {:?}",
                sent.elapsed()
            );
            // A request that answers in time is not failed, and slots are reused.
            for _ in 0..100 {
                let r = d
                    .run(
                        Instant::now() + timeout,
                        tokio::time::sleep(Duration::from_millis(0)),
                    )
                    .await;
                assert_eq!(r, Ok(()));
            }
            assert_eq!(
                d.slots.borrow().entries.len(),
                1,
                "one request at a time, one slot"
            );
            watch.abort();
        });
    }

    #[test]
    fn the_tick_is_a_hundredth_of_the_timeout_within_1_to_10_ms() {
        assert_eq!(
            Deadlines::new(Duration::from_secs(30)).tick(),
            Duration::from_millis(10)
        );
        assert_eq!(
            Deadlines::new(Duration::from_millis(500)).tick(),
            Duration::from_millis(5)
        );
        assert_eq!(
            Deadlines::new(Duration::from_millis(20)).tick(),
            Duration::from_millis(1)
        );
    }
}
