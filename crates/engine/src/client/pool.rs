//! One worker's connections to each origin: a stack of idle HTTP/1.1 connections, at most
//! one shared HTTP/2 connection, who may open a new one (at most [`CONNECTS_AT_ONCE`] at a
//! time, and with `connections = N` only while the fixed pool has room), and who waits
//! for one given back.
//!
//! Not here: how a connection is opened (the caller passes that in) or what is sent on
//! it. Single-threaded: every worker has its own pools.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::uri::{Authority, Scheme};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use super::{Origin, SendError};
use crate::h1::H1;
use crate::h2::Sender;

/// How many connections one worker may be opening to one origin at once.
///
/// A request that finds no idle connection opens one if fewer than this many are being
/// opened; otherwise it takes whichever comes first, a connection another request gives
/// back or a free attempt. Without the limit, a burst of sends (the catch-up after the
/// machine or the target stalled) opens a connection for each send that finds the rest
/// busy: hundreds of connects, which cost the client and the target more than the
/// requests and make the burst later still. (A limit of 4 against none, eight
/// alternating 15 s runs at 20,000/s against nginx: late sends in the seconds of a
/// whole-machine stall fell from a median 1.9x to 1.3x the arrivals due during the
/// stall itself, connects per run from up to 1,381 to up to 343.) Too low a limit
/// starves the other kind of burst: when the target alone stalls (nginx on a vCPU the
/// host holds), every send needs a new connection and the pool must grow at the arrival
/// rate. At 4, 5 of 16 runs at 20,000/s had 0.03-0.10% late sends outside whole-machine
/// stalls; at 16, none of 16 had over 0.016%, with whole-machine catch-up about the
/// same (1.06x vs 1.14x the stalls' own arrivals, medians) and connects per run up to
/// 285. The pool grows by this many per connect time (~50 µs on loopback; one round
/// trip across a network, two or three with TLS), thousands of connections a second for
/// slow endpoints that need them. The wait is not hidden: latency runs from the
/// intended send time. A request that times out while waiting is a timeout, even if the
/// attempts ahead of it end in connect errors.
pub(crate) const CONNECTS_AT_ONCE: usize = 16;

/// How many origins no endpoint names (reached by following a redirect) one worker
/// keeps a pool for; a redirect to one more gets a connection for that exchange alone,
/// so a target that redirects to ever new origins costs connects, never memory.
pub(crate) const EXTRA_ORIGINS: usize = 8;

/// A connection ready for a request.
pub(crate) enum Conn {
    H1(H1),
    H2(Sender),
}

/// A request's turn for a connection ([`HttpClient::wait_turn`](super::HttpClient::wait_turn)):
/// an idle connection, a place in the fixed pool to open one, or (no fixed pool,
/// nothing idle) nothing yet.
pub struct Turn(Option<Result<Conn, OwnedSemaphorePermit>>);

/// Shows the type only: its parts are connections, nothing a log should print.
impl std::fmt::Debug for Turn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Turn").finish_non_exhaustive()
    }
}

/// How a request came by its connection ([`Pools::acquire`]).
#[derive(Debug, Clone, Copy)]
pub(super) enum Acquired {
    /// At hand, without a wait: an idle connection, or the turn the caller waited for.
    AtHand,
    /// After a wait, ready at this instant: given back by another request, or shared.
    Waited(Instant),
    /// Opened for it, ready at `ready` after `took` (TCP, TLS, the HTTP/2 handshake).
    Opened { ready: Instant, took: Duration },
}

/// Every origin's connections of one client.
pub(super) struct Pools {
    /// A fixed pool's size per origin (`connections = N`, this worker's share).
    connections: Option<usize>,
    pools: RefCell<Vec<Pool>>,
    /// Pools made for origins only a redirect led to.
    extra: Cell<usize>,
}

/// The connections to one origin.
struct Pool {
    scheme: Scheme,
    authority: Authority,
    /// Idle HTTP/1.1 connections, most recently used last.
    idle: Vec<H1>,
    /// The HTTP/2 connection, shared by every request.
    h2: Option<Sender>,
    gate: Rc<Gate>,
}

/// Who may open a connection, and who is waiting for one.
struct Gate {
    connects: Semaphore,
    /// A fixed pool (`connections = N`): one permit per connection this worker may hold
    /// open to the origin; each open HTTP/1.1 connection holds one until it closes.
    slots: Option<Arc<Semaphore>>,
    /// Signalled when a connection goes back to the pool while someone waits.
    returned: Notify,
    /// Requests in [`Pools::acquire`]'s wait, so that giving a connection back touches
    /// no atomic when nobody waits (every request gives one back).
    waiting: Cell<usize>,
}

/// Counts a request as waiting for a connection while it lives.
struct Waiting<'a>(&'a Gate);

impl<'a> Waiting<'a> {
    fn enter(gate: &'a Gate) -> Waiting<'a> {
        gate.waiting.set(gate.waiting.get() + 1);
        Waiting(gate)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.set(self.0.waiting.get() - 1);
    }
}

impl Pools {
    pub(super) fn new(connections: Option<usize>) -> Pools {
        Pools {
            connections,
            pools: RefCell::new(Vec::new()),
            extra: Cell::new(0),
        }
    }

    /// Whether requests wait for a place in a fixed pool (`connections = N`).
    pub(super) fn fixed(&self) -> bool {
        self.connections.is_some()
    }

    /// The pool of `origin`, made on first use.
    pub(super) fn of(&self, origin: &Origin) -> usize {
        if let Some(i) = self.find(origin) {
            return i;
        }
        self.make(origin)
    }

    /// The pool of `origin`, reached by a redirect: made on first use while fewer than
    /// [`EXTRA_ORIGINS`] were made so; `None` past that (a connection for one exchange).
    pub(super) fn of_redirect(&self, origin: &Origin) -> Option<usize> {
        if let Some(i) = self.find(origin) {
            return Some(i);
        }
        if self.extra.get() >= EXTRA_ORIGINS {
            return None;
        }
        self.extra.set(self.extra.get() + 1);
        Some(self.make(origin))
    }

    fn find(&self, origin: &Origin) -> Option<usize> {
        self.pools.borrow().iter().position(|p| {
            p.authority.as_str() == origin.authority.as_str() && p.scheme == origin.scheme
        })
    }

    fn make(&self, origin: &Origin) -> usize {
        let mut pools = self.pools.borrow_mut();
        pools.push(Pool {
            scheme: origin.scheme.clone(),
            authority: origin.authority.clone(),
            idle: Vec::new(),
            h2: None,
            gate: Rc::new(Gate {
                connects: Semaphore::new(CONNECTS_AT_ONCE),
                slots: self.connections.map(|n| Arc::new(Semaphore::new(n))),
                returned: Notify::new(),
                waiting: Cell::new(0),
            }),
        });
        pools.len() - 1
    }

    /// A connection for the next request, and how it came ([`Acquired`]): the turn the
    /// caller already waited for, else an idle one, else a new one from `connect` if an
    /// attempt is free (and, with a fixed pool, a place in it, which the new connection
    /// holds), else whichever comes first: a connection given back, or a free attempt
    /// (see [`CONNECTS_AT_ONCE`]). The clock is read only when the request had to wait
    /// or connect: a connection at hand costs no clock read.
    pub(super) async fn acquire<F, C>(
        &self,
        pool: usize,
        turn: Option<Turn>,
        connect: C,
    ) -> Result<(Conn, Acquired), SendError>
    where
        C: FnOnce(Option<OwnedSemaphorePermit>) -> F,
        F: Future<Output = Result<Conn, SendError>>,
    {
        let waited = |conn| Ok((conn, Acquired::Waited(Instant::now())));
        let slot = match turn {
            Some(Turn(Some(Ok(conn)))) => return Ok((conn, Acquired::AtHand)),
            Some(Turn(Some(Err(slot)))) => Some(slot),
            Some(Turn(None)) | None => {
                if let Some(conn) = self.checkout(pool) {
                    return Ok((conn, Acquired::AtHand));
                }
                match self.wait_turn(pool).await.0 {
                    Some(Ok(conn)) => return waited(conn),
                    Some(Err(slot)) => Some(slot),
                    None => None,
                }
            }
        };
        let gate = self.pools.borrow()[pool].gate.clone();
        let attempt = match self.first_of(pool, &gate, gate.connects.acquire()).await {
            Ok(conn) => return waited(conn),
            Err(permit) => permit.expect("the semaphore is never closed"),
        };
        // A connection may have come back while this waited (its signal woke another).
        if let Some(conn) = self.checkout(pool) {
            return waited(conn);
        }
        let started = Instant::now();
        let conn = connect(slot).await?;
        drop(attempt);
        let ready = Instant::now();
        Ok((
            conn,
            Acquired::Opened {
                ready,
                took: ready - started,
            },
        ))
    }

    /// A request's turn at `pool`: an idle connection, or (with a fixed pool) a place in
    /// it to open one, waiting for either as long as it takes; without a fixed pool and
    /// nothing idle, nothing to wait for.
    pub(super) async fn wait_turn(&self, pool: usize) -> Turn {
        if let Some(conn) = self.checkout(pool) {
            return Turn(Some(Ok(conn)));
        }
        let gate = self.pools.borrow()[pool].gate.clone();
        match &gate.slots {
            Some(slots) => Turn(Some(
                self.first_of(pool, &gate, slots.clone().acquire_owned())
                    .await
                    .map_err(|slot| slot.expect("the semaphore is never closed")),
            )),
            None => Turn(None),
        }
    }

    /// Waits for whichever comes first: a connection given back to `pool` (taken at
    /// once: `Ok`), or `permit` (`Err`). The request keeps its place in both queues
    /// across wake-ups.
    async fn first_of<P>(
        &self,
        pool: usize,
        gate: &Gate,
        permit: impl Future<Output = P>,
    ) -> Result<Conn, P> {
        let _waiting = Waiting::enter(gate);
        let mut permit = pin!(permit);
        let mut returned = pin!(gate.returned.notified());
        loop {
            tokio::select! {
                biased;
                () = &mut returned => {
                    if let Some(conn) = self.checkout(pool) {
                        return Ok(conn);
                    }
                    returned.set(gate.returned.notified());
                }
                p = &mut permit => return Err(p),
            }
        }
    }

    /// Puts a connection back after its exchange, waking a request that waits for one.
    pub(super) fn give_back(&self, pool: usize, h1: H1) {
        let mut pools = self.pools.borrow_mut();
        let p = &mut pools[pool];
        p.idle.push(h1);
        if p.gate.waiting.get() > 0 {
            p.gate.returned.notify_one();
        }
    }

    fn checkout(&self, pool: usize) -> Option<Conn> {
        let mut pools = self.pools.borrow_mut();
        let p = &mut pools[pool];
        if let Some(h2) = &p.h2 {
            if !h2.is_closed() {
                return Some(Conn::H2(h2.clone()));
            }
            p.h2 = None;
        }
        while let Some(mut conn) = p.idle.pop() {
            if !conn.is_stale() {
                return Some(Conn::H1(conn));
            }
        }
        None
    }

    /// Makes a new HTTP/2 connection the one `pool` shares (unless another got there
    /// first), and lets every request waiting for a connection use it.
    pub(super) fn share_h2(&self, pool: usize, sender: &Sender) {
        let mut pools = self.pools.borrow_mut();
        let p = &mut pools[pool];
        p.h2.get_or_insert_with(|| sender.clone());
        p.gate.returned.notify_waiters();
    }

    /// Forgets `pool`'s HTTP/2 connection: it failed a request.
    pub(super) fn forget_h2(&self, pool: usize) {
        self.pools.borrow_mut()[pool].h2 = None;
    }

    /// Bytes held by the idle connections' read buffers.
    pub(super) fn idle_buffer_bytes(&self) -> usize {
        self.pools
            .borrow()
            .iter()
            .flat_map(|p| p.idle.iter())
            .map(H1::buffer_bytes)
            .sum()
    }
}
