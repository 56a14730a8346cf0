//! The seam between a worker and the protocols: the kinds of call a worker makes
//! ([`Call`]: today an HTTP request) and what one gives back ([`Exchange`]): the response
//! or why there is none, and the instants of its path, from which every phase is derived
//! (as oha records them: intended start, send, connection ready, first byte, end), never
//! a timer per phase. A stream reader or another protocol is another kind of call here.
//!
//! Not here: connections (`client`), encoding (`request.rs`), what a response means
//! (`classify.rs`), recording (the worker turns an exchange into its sample).

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::time::{Duration, Instant};

use loadgate_metrics::Outcome;
use loadgate_scenario::GoodLimits;

use crate::client::{Hop, HttpClient, Noted, Origin, Response, SendError, Tap, Turn};
use crate::deadline::Deadlines;
use crate::request::{Built, Prepared, Watch};
use crate::session::Jar;
use crate::stream::{StreamEnd, StreamReader};

/// One call a worker makes to the target.
#[derive(Debug)]
pub enum Call {
    /// An HTTP request, over HTTP/1.1 or HTTP/2 as the client negotiates.
    Http(Built),
}

/// What one call gave: the response or why there is none, and what happened on its way.
#[derive(Debug)]
pub struct Exchange {
    /// When it was due (open model; when it was sent in the closed model): latency runs
    /// from here.
    pub intended: Instant,
    /// When the generator got to it (with a fixed pool, when its turn for a connection
    /// came): service time and the timeout run from here.
    pub sent: Instant,
    /// When a connection was ready for it: `sent` when one was at hand (idle, or the
    /// turn it waited for), else when a connection given back or opened for it was
    /// ready; `None` when it never got one.
    pub ready: Option<Instant>,
    /// When the first bytes of the response arrived; `None` when none did (also when the
    /// call failed before), `Some` when a response began and then failed or timed out.
    pub first_byte: Option<Instant>,
    /// When it ended: the response read to its end, the failure, or the timeout.
    pub end: Instant,
    /// How long opening the new connection it went out on took (TCP, and TLS); `None`
    /// when it reused one. Noted also when the call then failed or timed out.
    pub connect: Option<Duration>,
    /// It went out a second time, on a new connection, because the target provably never
    /// read the first.
    pub resent: bool,
    /// The response, or why there is none.
    pub result: Result<Response, SendError>,
    /// A streamed endpoint's stream as read, up to the end or the failure; `None` for
    /// an endpoint read whole.
    pub stream: Option<StreamEnd>,
    /// Redirects followed on the way to the answer (or the failure).
    pub redirects: u8,
    /// Cookies its answers (every hop's) set that the session's jar dropped for its
    /// bounds; 0 without a jar.
    pub cookies_dropped: u32,
}

impl Exchange {
    /// From the intended send to the end (in the closed model the same as the service
    /// time).
    pub fn latency(&self) -> Duration {
        self.end.saturating_duration_since(self.intended)
    }

    /// From the send to the end.
    pub fn service_time(&self) -> Duration {
        self.end.saturating_duration_since(self.sent)
    }

    /// From the intended send (the start latency runs from) to the first bytes of the
    /// response; `None` when none arrived.
    pub fn time_to_first_byte(&self) -> Option<Duration> {
        self.first_byte
            .map(|t| t.saturating_duration_since(self.intended))
    }

    /// Whether it met every limit of `l`, each time taken from `from` (the intended send
    /// for goodput, the actual send for its twin); a stream's mean gap between tokens
    /// does not depend on `from`. A limit on a phase that never came is not met.
    pub fn within(&self, l: &GoodLimits, from: Instant) -> bool {
        let by = |at: Option<Instant>, limit: Option<Duration>| {
            limit.is_none_or(|limit| at.is_some_and(|t| t.saturating_duration_since(from) <= limit))
        };
        let stream = self.stream.as_ref();
        let mean_gap_ok = l.itl.is_none_or(|limit| {
            let Some(s) = stream else { return false };
            match (s.first_content, s.last_content) {
                (Some(first), Some(last)) if s.content_events >= 2 => {
                    (last - first) / (s.content_events - 1) as u32 <= limit
                }
                // One token or none: no gap to be slow.
                _ => true,
            }
        });
        by(Some(self.end), l.latency)
            && by(self.first_byte, l.ttfb)
            && by(stream.and_then(|s| s.first_content), l.ttft)
            && mean_gap_ok
    }

    /// From the intended send to the first content event of a stream; `None` when it
    /// had none.
    pub fn time_to_first_token(&self) -> Option<Duration> {
        let first = self.stream.as_ref()?.first_content?;
        Some(first.saturating_duration_since(self.intended))
    }
}

/// Makes `call` for `prepared`'s endpoint within its request timeout, keeping of the
/// response what the endpoint needs (the body when a check reads it, the headers when
/// asked for). `(intended, sent)`: when the call was due (open model; when it was sent
/// in the closed model) and when the generator got to it. Latency runs from the first,
/// service time and the timeout from the second, so latency is the send lag plus
/// service time. `turn`: the connection (or place in the fixed pool) the request already
/// waited for ([`HttpClient::wait_turn`]), if it did.
///
/// A streamed endpoint's body goes through its stream reader as it is read: `gaps` is
/// told each gap between two content events as it ends (the instant, and the gap), so
/// that no gap is kept in the call. The endpoint's `first_byte_timeout` and
/// `idle_timeout` are watched beside the whole timeout.
///
/// `jar`: the session's cookies, when the request has one: every hop sends the
/// cookies that match its URL, and every hop's `Set-Cookie`s are stored (the endpoint
/// must keep its response headers, [`Prepared::keep_response_headers`]).
#[allow(clippy::too_many_arguments)]
pub async fn execute(
    client: &HttpClient,
    prepared: &Prepared,
    call: Call,
    (intended, sent): (Instant, Instant),
    deadlines: &Deadlines,
    turn: Option<Turn>,
    gaps: &mut dyn FnMut(Instant, Duration),
    jar: Option<&RefCell<Jar>>,
) -> Exchange {
    let noted = Noted::new(sent);
    let watch = prepared.watch();
    let budget = client.stream_budget();
    let mut reader = prepared
        .stream()
        .map(|spec| StreamReader::with_budget(spec, budget));
    // When the answer began (the first body read; a stream's first token: a role
    // chunk or a ping is no answer yet) and the latest body read, for the watch.
    let body_began: Cell<Option<Instant>> = Cell::new(None);
    let last_read: Cell<Option<Instant>> = Cell::new(None);
    let tapped = reader.is_some() || watch.is_set();
    let mut tap = |data: &[u8], fresh: bool| {
        // Pieces of one read (a chunked body's chunks) arrived together: one instant.
        let now = match (fresh, last_read.get()) {
            (false, Some(then)) => then,
            _ => Instant::now(),
        };
        last_read.set(Some(now));
        let began = match reader.as_mut() {
            Some(reader) => {
                let fed = match fresh {
                    true => reader.feed(data, now),
                    false => reader.feed_more(data, now),
                };
                for gap in fed.gaps() {
                    gaps(now, gap);
                }
                fed.first_content
            }
            None => true,
        };
        if began && body_began.get().is_none() {
            body_began.set(Some(now));
        }
    };
    let hops = Cell::new(0u8);
    let cookies_dropped = Cell::new(0u32);
    let result = match call {
        Call::Http(req) => {
            let exchange = follow(
                client,
                prepared,
                req,
                turn,
                &noted,
                tapped.then_some(&mut tap as &mut Tap<'_>),
                &hops,
                jar.map(|j| (j, &cookies_dropped)),
            );
            if watch.is_set() {
                let progress = Progress {
                    sent,
                    head: &noted.first_byte,
                    body_began: &body_began,
                    last_read: &last_read,
                };
                deadlines
                    .run(
                        sent + prepared.timeout(),
                        watched(exchange, watch, progress),
                    )
                    .await
            } else {
                deadlines.run(sent + prepared.timeout(), exchange).await
            }
        }
    };
    let end = Instant::now();
    // Given up on: what it did on the way (a connection it opened) still counts.
    let result = result.unwrap_or_else(|_elapsed| Err(SendError::timeout()));
    let stream = reader.as_mut().map(|r| r.finish());
    if let (Err(e), Some(s)) = (&result, &stream) {
        // A stream that stalled (silent, or kept alive by pings until the whole
        // timeout): the gap it was in is at least this long, and is one.
        if matches!(e.outcome, Outcome::IdleTimeout | Outcome::Timeout) {
            if let Some(last) = s.last_content {
                gaps(end, end.saturating_duration_since(last));
            }
        }
    }
    Exchange {
        intended,
        sent,
        ready: noted.ready.get(),
        first_byte: noted.first_byte.get(),
        end,
        connect: noted.connect.get(),
        resent: noted.resent.get(),
        result,
        stream,
        redirects: hops.get(),
        cookies_dropped: cookies_dropped.get(),
    }
}

/// `req` sent to `prepared`'s origin, and each redirect its answer names followed, up
/// to the endpoint's `redirects`: the chain's last answer, its wire bytes those of every
/// hop. Counts in `hops` the redirects followed (also when the caller gives up on the
/// chain). Every hop notes its connect time (added up), and the first byte noted is
/// the final answer's: each hop forgets the one before. The caller's timeout covers the
/// whole chain.
///
/// `jar`: the session's cookies, and where to count those of the answers it dropped
/// for its bounds.
///
/// A redirect past the limit (a loop ends there too) is `too_many_redirects`; one
/// without a `Location`, or with one that is not an http or https URL, the target's
/// `protocol_error`.
#[allow(clippy::too_many_arguments)]
async fn follow(
    client: &HttpClient,
    prepared: &Prepared,
    req: Built,
    turn: Option<Turn>,
    noted: &Noted,
    mut tap: Option<&mut Tap<'_>>,
    hops: &Cell<u8>,
    jar: Option<(&RefCell<Jar>, &Cell<u32>)>,
) -> Result<Response, SendError> {
    let keep = prepared.keep();
    let mut origin = std::borrow::Cow::Borrowed(prepared.origin());
    let mut req = req;
    let mut turn = turn;
    let mut wire = 0u64;
    loop {
        let redirected = hops.get() > 0;
        if let Some((jar, _)) = jar {
            // The first request merges the scenario's own Cookie; a hop's is the jar's.
            let own = !redirected && prepared.own_cookie();
            let cookies = jar.borrow().header_for(&origin, req.path());
            // A first request the jar adds nothing to is sent as it was encoded.
            if cookies.is_some() || redirected {
                req = req.with_cookies(cookies.as_deref(), own);
            }
        }
        let mut r = client
            .exchange(
                &origin,
                &req,
                keep,
                turn.take(),
                noted,
                tap.as_deref_mut(),
                redirected,
            )
            .await?;
        if let Some((jar, dropped)) = jar {
            let mut jar = jar.borrow_mut();
            let before = jar.dropped();
            jar.store(&origin, req.path(), r.headers());
            let new = u32::try_from(jar.dropped() - before).unwrap_or(u32::MAX);
            dropped.set(dropped.get().saturating_add(new));
        }
        let to = match std::mem::take(&mut r.hop) {
            Hop::Answer => {
                r.bytes += wire;
                return Ok(r);
            }
            Hop::Nowhere => {
                return Err(SendError::redirect(
                    Outcome::ProtocolError,
                    format!("a {} redirect without a Location header", r.status),
                ))
            }
            Hop::To(to) => to,
        };
        if hops.get() >= prepared.redirects() {
            return Err(SendError::redirect(
                Outcome::TooManyRedirects,
                format!("more than {} redirects", prepared.redirects()),
            ));
        }
        let (next, path) = resolve(&origin, req.path(), &to)
            .map_err(|e| SendError::redirect(Outcome::ProtocolError, e))?;
        // A body holding a secret is never taken to a host it was not written for.
        if req.secret_body && matches!(r.status, 307 | 308) && !origin.same(&next) {
            return Err(SendError::redirect(
                Outcome::CheckFailed,
                format!(
                    "a {} to another origin ({}) would send this request's body, which holds a secret, again: not followed",
                    r.status, next.authority
                ),
            ));
        }
        req = req
            .redirected(r.status, &origin, &next, &path)
            .ok_or_else(|| {
                SendError::redirect(Outcome::ProtocolError, "the request cannot be sent again")
            })?;
        origin = std::borrow::Cow::Owned(next);
        wire += r.bytes;
        hops.set(hops.get() + 1);
        noted.first_byte.set(None);
    }
}

/// Where a redirect's `location` leads from `path` (origin form) on `from`: its origin
/// and path (origin form, without the fragment). A relative reference is resolved as
/// RFC 3986 says; an absolute one may name any http or https origin.
fn resolve(from: &Origin, path: &[u8], location: &[u8]) -> Result<(Origin, String), String> {
    let location = std::str::from_utf8(location)
        .map_err(|_| "a redirect whose Location is not UTF-8".to_string())?;
    let here = format!(
        "{}://{}{}",
        from.scheme,
        from.authority,
        String::from_utf8_lossy(path)
    );
    let base = url::Url::parse(&here).map_err(|e| format!("the request's URL: {e}"))?;
    let next = base
        .join(location)
        .map_err(|e| format!("a redirect whose Location is not a URL ({e})"))?;
    if !matches!(next.scheme(), "http" | "https") {
        return Err(format!(
            "a redirect to a {} URL: only http and https are followed",
            next.scheme()
        ));
    }
    let mut path = next.path().to_string();
    if let Some(q) = next.query() {
        path.push('?');
        path.push_str(q);
    }
    let authority = &next[url::Position::BeforeHost..url::Position::AfterPort];
    let uri: http::Uri = format!("{}://{authority}{path}", next.scheme())
        .parse()
        .map_err(|e| format!("a redirect whose Location is not a URL ({e})"))?;
    let origin = Origin::of(&uri)?;
    Ok((origin, path))
}

/// How far a response has come, for its watch.
struct Progress<'a> {
    sent: Instant,
    /// When the first bytes of the response (its head) arrived.
    head: &'a Cell<Option<Instant>>,
    /// When the answer began: the first body read, or a stream's first token.
    body_began: &'a Cell<Option<Instant>>,
    last_read: &'a Cell<Option<Instant>>,
}

impl Progress<'_> {
    /// When the watch gives up on the response, as far as it has come now, and as what.
    fn deadline(&self, watch: Watch) -> Option<(Instant, Outcome)> {
        let first_byte = watch
            .first_byte
            .filter(|_| self.body_began.get().is_none())
            .map(|t| (self.sent + t, Outcome::FirstByteTimeout));
        // From the last read, and before the body from the head; but a first-byte
        // timeout alone governs until the answer began.
        let active = match watch.first_byte {
            Some(_) => self.body_began.get().and(self.last_read.get()),
            None => self.last_read.get().or(self.head.get()),
        };
        let idle = watch
            .idle
            .zip(active)
            .map(|(t, at)| (at + t, Outcome::IdleTimeout));
        match (first_byte, idle) {
            (Some(a), Some(b)) => Some(if b.0 < a.0 { b } else { a }),
            (a, b) => a.or(b),
        }
    }
}

/// `exchange`, given up on with `first_byte_timeout` when the answer did not begin in
/// time (no body byte; for a stream, no token), or `idle_timeout` when the response
/// went silent for longer than allowed. Only endpoints that set one pay for this
/// timer.
async fn watched<F: Future<Output = Result<Response, SendError>>>(
    exchange: F,
    watch: Watch,
    progress: Progress<'_>,
) -> Result<Response, SendError> {
    let mut exchange = std::pin::pin!(exchange);
    loop {
        let Some((at, outcome)) = progress.deadline(watch) else {
            // Nothing to watch yet (an idle timeout before the response began): look
            // again soon, the whole timeout bounds the wait.
            let soon = Instant::now() + watch.idle.unwrap_or(Duration::from_millis(100));
            tokio::select! {
                r = &mut exchange => return r,
                _ = tokio::time::sleep_until(soon.into()) => continue,
            }
        };
        // The idle timer may start before `at` (the answer begins while the first-byte
        // timer runs), and no idle deadline can then be earlier than a look `idle`
        // from now: look again by then.
        let at = match watch.idle {
            Some(idle) if outcome != Outcome::IdleTimeout => at.min(Instant::now() + idle),
            _ => at,
        };
        tokio::select! {
            r = &mut exchange => return r,
            _ = tokio::time::sleep_until(at.into()) => {
                // It may have moved on while the timer ran: look again, and give up as
                // what is due now.
                if let Some((again, why)) = progress.deadline(watch) {
                    if again <= Instant::now() {
                        return Err(SendError::gave_up(why));
                    }
                }
            }
        }
    }
}
