//! The seam between a worker and the protocols: the kinds of call a worker makes
//! ([`Call`]: today an HTTP request) and what one gives back ([`Exchange`]): the response
//! or why there is none, and the instants of its path, from which every phase is derived
//! (as oha records them: intended start, send, connection ready, first byte, end), never
//! a timer per phase. A stream reader or another protocol is another kind of call here.
//!
//! Not here: connections (`client`), encoding (`request.rs`), what a response means
//! (`classify.rs`), recording (the worker turns an exchange into its sample).

use std::time::{Duration, Instant};

use crate::client::{HttpClient, Noted, Response, SendError, Turn};
use crate::deadline::Deadlines;
use crate::request::{Built, Prepared};

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
}

/// Makes `call` for `prepared`'s endpoint within the request timeout, keeping of the
/// response what the endpoint needs (the body when a check reads it, the headers when
/// asked for). `(intended, sent)`: when the call was due (open model; when it was sent
/// in the closed model) and when the generator got to it. Latency runs from the first,
/// service time and the timeout from the second, so latency is the send lag plus
/// service time. `turn`: the connection (or place in the fixed pool) the request already
/// waited for ([`HttpClient::wait_turn`]), if it did.
pub async fn execute(
    client: &HttpClient,
    prepared: &Prepared,
    call: Call,
    (intended, sent): (Instant, Instant),
    deadlines: &Deadlines,
    turn: Option<Turn>,
) -> Exchange {
    let noted = Noted::new(sent);
    let result = match call {
        Call::Http(req) => {
            deadlines
                .run(
                    sent,
                    client.exchange(prepared.origin(), &req, prepared.keep(), turn, &noted),
                )
                .await
        }
    };
    let end = Instant::now();
    Exchange {
        intended,
        sent,
        ready: noted.ready.get(),
        first_byte: noted.first_byte.get(),
        end,
        connect: noted.connect.get(),
        resent: noted.resent.get(),
        // Given up on: what it did on the way (a connection it opened) still counts.
        result: result.unwrap_or_else(|_elapsed| Err(SendError::timeout())),
    }
}
