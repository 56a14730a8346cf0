//! HTTP: one worker's client. It sends an encoded request ([`Built`]) to an origin on a
//! connection of its own pools and reads the response to its end: the status, the
//! headers and the first body bytes when asked for, the byte count, and on the way the
//! instants a caller derives phases from (connection ready, first byte: [`Noted`]).
//!
//! A worker talks to its origins (the target's, and any endpoint's own `base`) from one
//! thread, so it keeps its own connections (`pool.rs`), per origin: a stack of idle
//! HTTP/1.1 connections, driven by `h1.rs` in the task that
//! sends each request, and at most one HTTP/2 connection, driven by hyper (`h2.rs`).
//! Connections are opened here, over TCP or TLS (`tls.rs`). A request is sent a second
//! time only when the target provably never read it.
//!
//! Not here: encoding requests (`request.rs`), what a response means (`classify.rs`),
//! timeouts (the caller's, `deadline.rs`), recording (the worker's).

mod pool;
#[cfg(test)]
mod tests;
mod tls;

use std::cell::Cell;
use std::error::Error as StdError;
use std::io;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderMap, Uri};
use loadgate_metrics::{Outcome, Protocol};
use loadgate_scenario::HttpVersion;
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;

use crate::decode::{Codings, DecodeError, Decoder};
use crate::h1::{H1Error, Stream, H1};
use crate::h2::{self, H2Error};
use crate::request::Built;
use crate::{classify, EngineError};
use pool::{Acquired, Conn, Pools};

pub(crate) use pool::Turn;
pub use tls::{TlsFileError, TlsFiles, TlsProblem};

pub(crate) type BoxError = Box<dyn StdError + Send + Sync>;

/// What sees each piece of a response body as it is read (a stream's reader, a watch),
/// and whether it is the first piece of the read that brought it (`false`: more of the
/// same read, such as the next chunk of a chunked body).
pub(crate) type Tap<'a> = dyn FnMut(&[u8], bool) + 'a;

/// One worker's connections: HTTP/1.1 and HTTP/2, over TCP or TLS. Not `Sync`; each
/// worker thread has its own.
pub struct HttpClient {
    tls: tokio_rustls::TlsConnector,
    http: HttpVersion,
    connect_timeout: Duration,
    pools: Pools,
    /// The client certificate the connector sends, and whether a server asked for one.
    cert: Arc<tls::ClientCert>,
    /// The bytes this worker's stream readers may hold of unfinished events.
    stream_budget: crate::stream::HeldBudget,
}

/// How to connect.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// TCP (with name resolution) and TLS connect timeout, each.
    pub connect_timeout: Duration,
    /// HTTP versions.
    pub http: HttpVersion,
    /// Skip TLS certificate verification.
    pub insecure: bool,
    /// A fixed pool: at most this many HTTP/1.1 connections per origin for this client
    /// (this worker's share of `connections = N`); `None` opens one per request in
    /// flight, `CONNECTS_AT_ONCE` at a time.
    pub connections: Option<usize>,
    /// CAs trusted beside the built-in roots, and the client certificate (mTLS).
    pub tls_files: Arc<TlsFiles>,
}

/// Where requests go.
#[derive(Debug, Clone)]
pub struct Origin {
    pub(crate) scheme: Scheme,
    pub(crate) authority: Authority,
    /// The host to resolve and to name in TLS, without IPv6 brackets.
    host: String,
    port: u16,
    tls: bool,
}

impl Origin {
    /// Whether `other` is the same origin: scheme, host (in any case) and port.
    pub(crate) fn same(&self, other: &Origin) -> bool {
        self.tls == other.tls
            && self.port == other.port
            && self.host.eq_ignore_ascii_case(&other.host)
    }

    /// The origin of an absolute `http` or `https` URI.
    pub fn of(uri: &Uri) -> Result<Origin, String> {
        let scheme = uri.scheme().cloned().ok_or("the URL has no scheme")?;
        let tls = match scheme.as_str() {
            "http" => false,
            "https" => true,
            other => return Err(format!("unsupported scheme {other}: use http or https")),
        };
        let authority = uri.authority().cloned().ok_or("the URL has no host")?;
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
        Ok(Origin {
            scheme,
            authority,
            host,
            port,
            tls,
        })
    }
}

/// What of a response to keep beyond its status and size.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Keep {
    /// The first this many body bytes.
    pub(crate) body: usize,
    /// The header fields.
    pub(crate) headers: bool,
    /// Decode a body sent with a `Content-Encoding` before it is kept or tapped (a
    /// check or a stream reads it), counting the decoded bytes.
    pub(crate) decode: bool,
    /// Follow redirects: a 301, 302, 303, 307 or 308 is a hop ([`Hop`]), its `Location`
    /// kept and its body counted but neither kept, decoded nor tapped.
    pub(crate) follow: bool,
}

/// Whether a status is one a redirect is followed on.
pub(crate) fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

/// The most bytes kept of a body with a status of 400 or above, whatever the endpoint
/// keeps otherwise, so that its failure can be explained (`found`, cut shorter after
/// secrets are masked).
pub(crate) const FAILED_BODY: usize = 512;

/// What a response head said, noted by the protocol as it reads the head (before any
/// body byte): its status, and for a request that follows redirects, whether it is one
/// and where to.
#[derive(Default)]
pub(crate) struct Location {
    /// Redirects are followed.
    follow: bool,
    /// The final head's status (0 before it came).
    pub(crate) status: Cell<u16>,
    /// The status is a redirect's: the body is not the answer.
    pub(crate) hop: Cell<bool>,
    /// Its `Location` header's value, when it had one.
    pub(crate) value: Cell<Option<bytes::Bytes>>,
}

/// Whether a response is a redirect to follow.
#[derive(Debug, Default)]
pub(crate) enum Hop {
    /// The answer (also every response of a request that does not follow redirects).
    #[default]
    Answer,
    /// A redirect to the raw `Location` value (boxed: every exchange moves a
    /// `Response` through its futures, and few are redirects).
    To(Box<bytes::Bytes>),
    /// A redirect status without a `Location`: nowhere to go.
    Nowhere,
}

/// What a request did on its way, noted as it happens ([`HttpClient::exchange`]), so that
/// a request given up on for its timeout still has it.
#[derive(Debug)]
pub(crate) struct Noted {
    /// When it was sent: the start of its service time.
    pub(crate) sent: Instant,
    /// How long opening the new connection it went out on took (TCP, and TLS).
    pub(crate) connect: Cell<Option<Duration>>,
    /// Whether it went out a second time, on a new connection.
    pub(crate) resent: Cell<bool>,
    /// When a connection was ready for it (the last one, if it went out again): when it
    /// was sent, if one was at hand then.
    pub(crate) ready: Cell<Option<Instant>>,
    /// When the first bytes of its response arrived.
    pub(crate) first_byte: Cell<Option<Instant>>,
}

impl Noted {
    /// Nothing noted yet of a request sent at `sent`.
    pub(crate) fn new(sent: Instant) -> Noted {
        Noted {
            sent,
            connect: Cell::new(None),
            resent: Cell::new(false),
            ready: Cell::new(None),
            first_byte: Cell::new(None),
        }
    }
}

/// A response read to its end.
#[derive(Default)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// The header fields, only when kept. Boxed: a map held inline (96 bytes) made every
    /// exchange larger to move through the futures that carry it, a measurable cost per
    /// request for the many that keep none.
    headers: Option<Box<HeaderMap>>,
    /// The first body bytes, up to the limit kept: the endpoint's `max_body` when a check
    /// reads the body, none otherwise.
    pub body: Vec<u8>,
    /// Body bytes received, all of them, as they came over the wire (before any
    /// `Content-Encoding` was undone; HTTP/1.1 chunk framing not counted).
    pub bytes: u64,
    /// Body bytes after undoing its `Content-Encoding` (the wire bytes when it has
    /// none), all of them, also past what is kept; `None` when the endpoint does not
    /// decode (no check reads the body and it does not stream).
    pub decoded: Option<u64>,
    /// The protocol the response came over.
    pub protocol: Protocol,
    /// Whether it is a redirect to follow (only when the request follows them).
    pub(crate) hop: Hop,
    /// The `Content-Encoding` of the kept body when it was kept as it came (the endpoint
    /// does not decode: a failing status's first bytes), for a failure's explanation to
    /// decode; identity otherwise.
    pub(crate) coded: Codings,
}

impl Response {
    /// The header fields, when the endpoint keeps them
    /// ([`Prepared::keep_response_headers`](crate::Prepared::keep_response_headers));
    /// empty otherwise.
    pub fn headers(&self) -> &HeaderMap {
        static NONE: LazyLock<HeaderMap> = LazyLock::new(HeaderMap::new);
        self.headers.as_deref().unwrap_or(&NONE)
    }
}

/// Shows the header names, not their values (a cookie, a token), nor the body.
impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("headers", &self.headers().keys().collect::<Vec<_>>())
            .field("bytes", &self.bytes)
            .field("decoded", &self.decoded)
            .field("protocol", &self.protocol)
            .field("kept", &self.body.len())
            .field("hop", &!matches!(self.hop, Hop::Answer))
            .finish()
    }
}

/// Why a request got no complete response.
#[derive(Debug)]
pub struct SendError {
    /// The class of the failure.
    pub outcome: Outcome,
    /// What went wrong (holds no request headers).
    pub error: BoxError,
}

impl SendError {
    fn connect(error: impl Into<BoxError>) -> SendError {
        SendError {
            outcome: Outcome::ConnectError,
            error: error.into(),
        }
    }

    fn h1(e: H1Error) -> SendError {
        let outcome = match &e {
            H1Error::Protocol(_) => Outcome::ProtocolError,
            H1Error::Incomplete => Outcome::IoError,
            H1Error::Io(io) | H1Error::NoResponse(io) => classify::failure(io),
        };
        SendError {
            outcome,
            error: e.into(),
        }
    }

    fn h2(e: hyper::Error) -> SendError {
        SendError {
            outcome: classify::failure(&e),
            error: e.into(),
        }
    }

    /// A redirect that cannot be followed (`outcome`: why), the target's failure.
    pub(crate) fn redirect(outcome: Outcome, error: impl Into<BoxError>) -> SendError {
        SendError {
            outcome,
            error: error.into(),
        }
    }

    /// No complete answer within the request's timeout.
    pub(crate) fn timeout() -> SendError {
        SendError::gave_up(Outcome::Timeout)
    }

    /// Given up on for one of the timeouts (`outcome`: which).
    pub(crate) fn gave_up(outcome: Outcome) -> SendError {
        SendError {
            outcome,
            error: io::Error::from(io::ErrorKind::TimedOut).into(),
        }
    }

    /// Whether the connection failed because loadgate ran out of something of its own
    /// (a descriptor, a local port, socket memory): the request never reached the target.
    pub fn local(&self) -> bool {
        self.outcome == Outcome::ConnectError && classify::local_exhaustion(&*self.error)
    }
}

impl HttpClient {
    /// Builds a client. Connections are made on first use, inside a tokio runtime.
    pub fn new(opts: ClientOptions) -> Result<HttpClient, EngineError> {
        let (connector, cert) = tls::connector(opts.http, opts.insecure, &opts.tls_files)?;
        Ok(HttpClient {
            tls: connector,
            http: opts.http,
            connect_timeout: opts.connect_timeout,
            pools: Pools::new(opts.connections),
            cert,
            stream_budget: crate::stream::HeldBudget::default(),
        })
    }

    /// The same client with a budget of `bytes` for what its stream readers hold of
    /// unfinished events ([`crate::stream::HeldBudget`]; 64 MiB unless set).
    pub fn with_stream_budget(mut self, bytes: usize) -> HttpClient {
        self.stream_budget = crate::stream::HeldBudget::new(bytes);
        self
    }

    /// What its stream readers hold of unfinished events, and may.
    pub fn stream_budget(&self) -> &crate::stream::HeldBudget {
        &self.stream_budget
    }

    /// Sends `req` to `origin` and reads the whole response, keeping what `keep` says:
    /// on the connection `turn` holds, else an idle one, else a new one. Notes in
    /// `noted` as it goes what the caller derives its timings from (a connection opened
    /// and how long that took, when one was ready, when the first bytes of the response
    /// arrived, a resend), so that a request given up on for its timeout still counts
    /// them. `tap`, if given, sees every piece of the body as it is read (a stream's
    /// reader, a timeout's watch).
    ///
    /// A request written on a connection is never sent again: if the target closes or
    /// resets the connection before answering, that is the target's failure and is
    /// counted as such. An idle HTTP/1.1 connection the peer closed is found before it is
    /// reused (`H1::is_stale`). Only a request the target provably never read goes to a
    /// new connection, once: an idempotent HTTP/1.1 request whose reused connection ended
    /// cleanly before any byte of an answer, an HTTP/2 request hyper hands back unwritten,
    /// or an idempotent one a GOAWAY or REFUSED_STREAM left unprocessed.
    ///
    /// `redirected`: the request is a redirect's next hop, whose origin may be one no
    /// endpoint names: it gets a pool of its own only while the worker keeps fewer than
    /// `EXTRA_ORIGINS` such pools, else a connection for this one exchange.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn exchange(
        &self,
        origin: &Origin,
        req: &Built,
        keep: Keep,
        turn: Option<Turn>,
        noted: &Noted,
        mut tap: Option<&mut Tap<'_>>,
        redirected: bool,
    ) -> Result<Response, SendError> {
        let pool = match redirected {
            false => Some(self.pools.of(origin)),
            true => self.pools.of_redirect(origin),
        };
        let mut resent = false;
        let mut turn = turn;
        loop {
            let (conn, acquired) = match pool {
                Some(pool) => {
                    self.pools
                        .acquire(pool, turn.take(), |slot| {
                            self.connect(Some(pool), origin, slot)
                        })
                        .await?
                }
                None => {
                    let started = Instant::now();
                    let conn = self.connect(None, origin, None).await?;
                    let ready = Instant::now();
                    let took = ready - started;
                    (conn, Acquired::Opened { ready, took })
                }
            };
            let (ready, connect) = match acquired {
                // At hand when the request went out: ready as it was sent.
                Acquired::AtHand if !resent => (noted.sent, None),
                Acquired::AtHand => (Instant::now(), None),
                Acquired::Waited(ready) => (ready, None),
                Acquired::Opened { ready, took } => (ready, Some(took)),
            };
            noted.ready.set(Some(ready));
            if let Some(took) = connect {
                // Every connection a request opened on its way counts: a redirect's
                // hops each may open one.
                noted
                    .connect
                    .set(Some(noted.connect.get().unwrap_or_default() + took));
            }
            let reused = connect.is_none();
            let mut response = Response {
                headers: keep.headers.then(Box::default),
                decoded: keep.decode.then_some(0),
                ..Response::default()
            };
            let codings = Cell::new(Codings::IDENTITY);
            let location = Location {
                follow: keep.follow,
                ..Location::default()
            };
            let follow = Some(&location);
            // The closures take the body and the counts, the exchange the headers.
            let headers = response.headers.as_deref_mut();
            let mut tap = tap.as_deref_mut();
            let (body, decoded) = (&mut response.body, &mut response.decoded);
            // What the checks and the stream see: the decoded body when it is decoded.
            // A failing status's first bytes are kept to explain it.
            let failed = || location.status.get() >= 400;
            let mut deliver = |data: &[u8], fresh: bool| {
                if let Some(tap) = tap.as_mut() {
                    tap(data, fresh);
                }
                if let Some(n) = decoded.as_mut() {
                    *n += data.len() as u64;
                }
                let limit = match failed() {
                    true => keep.body.max(FAILED_BODY),
                    false => keep.body,
                };
                if body.len() < limit {
                    let room = limit - body.len();
                    body.extend_from_slice(&data[..data.len().min(room)]);
                }
            };
            let mut decoding = Decoding::default();
            let wire = &mut response.bytes;
            let mut sink = |data: &[u8], fresh: bool| {
                *wire += data.len() as u64;
                // A redirect's body is no answer: counted, never read.
                if !location.hop.get() {
                    decoding.feed(keep.decode, &codings, data, fresh, &mut deliver);
                }
            };
            match conn {
                Conn::H1(mut h1) => {
                    match h1
                        .exchange(
                            &req.head,
                            &req.body,
                            req.head_only,
                            headers,
                            &noted.first_byte,
                            &codings,
                            follow,
                            &mut sink,
                        )
                        .await
                    {
                        Ok((status, reusable)) => {
                            if let (true, Some(pool)) = (reusable, pool) {
                                self.pools.give_back(pool, h1);
                            }
                            decoding.finish(&mut deliver)?;
                            response.status = status;
                            response.protocol = Protocol::Http1;
                            response.coded = undecoded(keep, &codings);
                            response.hop = location.hop();
                            return Ok(response);
                        }
                        // The server had closed this idle connection (a clean end, no
                        // byte of an answer): it never read the request. Sent again
                        // once, on a new connection, and counted. A reset is not this:
                        // the target may have read the request, and it is its failure.
                        Err(H1Error::NoResponse(e))
                            if reused && req.idempotent && !resent && closed_cleanly(&e) => {}
                        Err(e) => return Err(SendError::h1(e)),
                    }
                }
                Conn::H2(mut sender) => {
                    let http = h2::request(req, origin).map_err(|error| SendError {
                        outcome: Outcome::CheckFailed,
                        error,
                    })?;
                    match h2::exchange(
                        &mut sender,
                        http,
                        headers,
                        &noted.first_byte,
                        &codings,
                        follow,
                        &mut sink,
                    )
                    .await
                    {
                        Ok(status) => {
                            decoding.finish(&mut deliver)?;
                            response.status = status;
                            response.protocol = Protocol::H2;
                            response.coded = undecoded(keep, &codings);
                            response.hop = location.hop();
                            return Ok(response);
                        }
                        Err(H2Error::Unanswered { unwritten, error }) => {
                            if let Some(pool) = pool {
                                self.pools.forget_h2(pool);
                            }
                            // Handed back unwritten, or refused unprocessed (after a
                            // GOAWAY, or REFUSED_STREAM): the target never saw it.
                            let safe = unwritten || (req.idempotent && h2::unprocessed(&error));
                            if !(reused && !resent && safe) {
                                return Err(SendError::h2(error));
                            }
                        }
                        Err(H2Error::Body(e)) => return Err(SendError::h2(e)),
                    }
                }
            }
            resent = true;
            noted.resent.set(true);
        }
    }

    /// One GET of `uri` within `timeout`: the status, or what went wrong.
    pub async fn probe(&self, uri: Uri, timeout: Duration) -> Result<u16, ProbeError> {
        let origin = Origin::of(&uri).map_err(|detail| ProbeError {
            outcome: Outcome::CheckFailed,
            tls: None,
            detail,
            tls_problem: None,
        })?;
        let path = uri.path_and_query().map_or("/", PathAndQuery::as_str);
        let req = Built::get(&origin, path);
        let noted = Noted::new(Instant::now());
        let exchange = self.exchange(&origin, &req, Keep::default(), None, &noted, None, false);
        match tokio::time::timeout(timeout, exchange).await {
            Ok(Ok(response)) => Ok(response.status),
            Ok(Err(e)) => Err(ProbeError::of(e.outcome, &*e.error, &self.cert)),
            Err(_) => Err(ProbeError {
                outcome: Outcome::Timeout,
                tls: None,
                detail: "no answer in time".into(),
                tls_problem: None,
            }),
        }
    }

    /// Opens one connection to `uri`'s origin (TCP, and the TLS handshake for https)
    /// within `timeout` and closes it, without sending a request: proof that the target
    /// can be reached before any load, and nothing in the target's logs.
    pub async fn reach(&self, uri: &Uri, timeout: Duration) -> Result<(), ProbeError> {
        let origin = Origin::of(uri).map_err(|detail| ProbeError {
            outcome: Outcome::CheckFailed,
            tls: None,
            detail,
            tls_problem: None,
        })?;
        let attempt = async {
            let tcp = tcp_connect(&origin.host, origin.port)
                .await
                .map_err(SendError::connect)?;
            if origin.tls {
                let mut stream = tls::handshake(&self.tls, &origin.host, tcp)
                    .await
                    .map_err(SendError::connect)?;
                // In TLS 1.3 the client's handshake ends before the server has judged
                // its certificate: a server that asked for one says no in an alert
                // right after (or yes, with its session tickets or HTTP/2 settings).
                // A server that sends nothing at all costs the probe a second.
                if self.cert.asked() {
                    use tokio::io::AsyncReadExt;
                    let mut first = [0u8; 1];
                    let wait = Duration::from_secs(1).min(timeout / 2);
                    if let Ok(Err(e)) = tokio::time::timeout(wait, stream.read(&mut first)).await {
                        return Err(SendError::connect(e));
                    }
                }
            }
            Ok::<(), SendError>(())
        };
        match tokio::time::timeout(timeout, attempt).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(ProbeError::of(e.outcome, &*e.error, &self.cert)),
            Err(_) => Err(ProbeError {
                outcome: Outcome::Timeout,
                tls: None,
                detail: format!(
                    "no connection within {}",
                    humantime::format_duration(timeout)
                ),
                tls_problem: None,
            }),
        }
    }

    /// Bytes held by this client's idle connections' read buffers: what a connection
    /// keeps between requests, however large the answers it read (each buffer holds at
    /// most a response head, `h1::MAX_HEAD`).
    pub fn idle_buffer_bytes(&self) -> usize {
        self.pools.idle_buffer_bytes()
    }

    /// Whether requests wait for a place in a fixed pool (`connections = N`).
    pub fn fixed_pool(&self) -> bool {
        self.pools.fixed()
    }

    /// A request's turn at `origin`: an idle connection, or (with a fixed pool) a place
    /// in it to open one, waiting for either as long as it takes. With a fixed pool that
    /// wait is the generator's, not the target's: the caller times it like a late send
    /// (inside latency, outside service time) and starts the request's timeout once the
    /// turn has come. Without one there is nothing to wait for here.
    pub async fn wait_turn(&self, origin: &Origin) -> Turn {
        let pool = self.pools.of(origin);
        self.pools.wait_turn(pool).await
    }

    /// Opens a connection to `origin` (TCP, TLS, and the HTTP/2 handshake when HTTP/2 is
    /// spoken), each step within the connect timeout. A new HTTP/1.1 connection holds
    /// `slot`, its place in a fixed pool; a new HTTP/2 connection becomes the one
    /// `pool` shares (none: a connection for one exchange).
    async fn connect(
        &self,
        pool: Option<usize>,
        origin: &Origin,
        slot: Option<OwnedSemaphorePermit>,
    ) -> Result<Conn, SendError> {
        let limit = self.connect_timeout;
        let timed_out = || io::Error::new(io::ErrorKind::TimedOut, "connect timed out");
        let tcp = tokio::time::timeout(limit, tcp_connect(&origin.host, origin.port))
            .await
            .map_err(|_| SendError::connect(timed_out()))?
            .map_err(SendError::connect)?;
        tcp.set_nodelay(true).map_err(SendError::connect)?;
        let (stream, alpn_h2) = if origin.tls {
            let tls = tokio::time::timeout(limit, tls::handshake(&self.tls, &origin.host, tcp))
                .await
                .map_err(|_| SendError::connect(timed_out()))?
                .map_err(SendError::connect)?;
            let h2 = tls::chose_h2(&tls);
            (Stream::Tls(Box::new(tls)), h2)
        } else {
            (Stream::Tcp(tcp), false)
        };
        let h2 = match self.http {
            HttpVersion::Http1 => false,
            HttpVersion::Http2 => true,
            HttpVersion::Auto => alpn_h2,
        };
        if !h2 {
            return Ok(Conn::H1(H1::new(stream).holding(slot)));
        }
        let sender = h2::handshake(stream).await.map_err(SendError::h2)?;
        if let Some(pool) = pool {
            self.pools.share_h2(pool, &sender);
        }
        Ok(Conn::H2(sender))
    }
}

/// Shows whether it is a hop, not where to (a URL may hold a token).
impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Location")
            .field("hop", &self.hop.get())
            .finish_non_exhaustive()
    }
}

impl Location {
    /// What the head said, once the exchange is over.
    fn hop(&self) -> Hop {
        match (self.hop.get(), self.value.take()) {
            (false, _) => Hop::Answer,
            (true, Some(to)) => Hop::To(Box::new(to)),
            (true, None) => Hop::Nowhere,
        }
    }

    /// Notes a final response head's `status` and, for a redirect, its `Location`
    /// (`location` is asked only then).
    pub(crate) fn note(&self, status: u16, location: impl FnOnce() -> Option<bytes::Bytes>) {
        self.status.set(status);
        if self.follow && is_redirect(status) {
            self.hop.set(true);
            self.value.set(location());
        }
    }
}

/// The codings of a body kept as it came: those of its head unless the endpoint
/// decodes.
fn undecoded(keep: Keep, codings: &Cell<Codings>) -> Codings {
    match keep.decode {
        true => Codings::IDENTITY,
        false => codings.get(),
    }
}

/// A body's decoding as it is read: started at its first byte, from the codings its
/// head named; a failure stops it (the rest is only counted) and is the response's.
#[derive(Default)]
enum Decoding {
    /// No body byte yet.
    #[default]
    Idle,
    /// Handed over as read: not decoded (the endpoint does not decode, or no coding).
    Plain,
    Active(Decoder),
    Failed(DecodeError),
}

impl Decoding {
    /// The next piece of the body, as read (`fresh`: the first of its read), to
    /// `deliver` decoded when `decode` and the body is coded.
    fn feed(
        &mut self,
        decode: bool,
        codings: &Cell<Codings>,
        data: &[u8],
        fresh: bool,
        deliver: &mut dyn FnMut(&[u8], bool),
    ) {
        if let Decoding::Idle = self {
            let c = codings.get();
            *self = match (decode && c.any(), c.decoder()) {
                (false, _) => Decoding::Plain,
                (true, Ok(d)) => Decoding::Active(d),
                (true, Err(e)) => Decoding::Failed(e),
            };
        }
        match self {
            Decoding::Plain => deliver(data, fresh),
            Decoding::Active(d) => {
                // Decoded pieces of one read share its instant.
                let mut first = fresh;
                let r = d.push(data, &mut |piece| {
                    if !piece.is_empty() {
                        deliver(piece, first);
                        first = false;
                    }
                });
                if let Err(e) = r {
                    *self = Decoding::Failed(e);
                }
            }
            Decoding::Idle | Decoding::Failed(_) => {}
        }
    }

    /// The body ended: what the decoders held goes out, and a body that could not be
    /// decoded fails the response as the target's `protocol_error`.
    fn finish(&mut self, deliver: &mut dyn FnMut(&[u8], bool)) -> Result<(), SendError> {
        let failed = match self {
            Decoding::Active(d) => {
                let mut first = true;
                d.finish(&mut |piece| {
                    if !piece.is_empty() {
                        deliver(piece, first);
                        first = false;
                    }
                })
                .err()
            }
            Decoding::Failed(e) => Some(*e),
            Decoding::Idle | Decoding::Plain => None,
        };
        match failed {
            None => Ok(()),
            Some(e) => Err(SendError {
                outcome: Outcome::ProtocolError,
                error: e.into(),
            }),
        }
    }
}

/// Whether an HTTP/1.1 connection ended with the peer's clean close (end of stream, or
/// a broken pipe after it), not a reset: the server closed it before reading what was
/// written on it.
fn closed_cleanly(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof | io::ErrorKind::BrokenPipe
    )
}

/// Resolves `host` and connects to the first address that answers.
async fn tcp_connect(host: &str, port: u16) -> io::Result<TcpStream> {
    let mut last = None;
    for addr in tokio::net::lookup_host((host, port)).await? {
        match TcpStream::connect(addr).await {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            "the host name resolved to no address",
        )
    }))
}

/// Why a probe failed.
#[derive(Debug, Clone)]
pub struct ProbeError {
    /// The class of the failure.
    pub outcome: Outcome,
    /// The TLS error, when the handshake failed.
    pub tls: Option<String>,
    /// The error chain, for people (holds no request headers).
    pub detail: String,
    /// What the TLS error means, when the handshake failed.
    pub tls_problem: Option<TlsProblem>,
}

impl ProbeError {
    fn of(outcome: Outcome, err: &(dyn StdError + 'static), cert: &tls::ClientCert) -> ProbeError {
        let mut parts = Vec::new();
        let mut tls = None;
        let mut tls_problem = None;
        let mut cur = Some(err);
        while let Some(e) = cur {
            parts.push(e.to_string());
            if let Some(t) = tls::find_tls(e, 4) {
                tls.get_or_insert_with(|| t.to_string());
                tls_problem.get_or_insert_with(|| tls::problem(t, cert));
            }
            cur = e.source();
        }
        parts.dedup();
        ProbeError {
            outcome,
            tls,
            detail: parts.join(": "),
            tls_problem,
        }
    }
}

/// Shows the type only: its parts are connections, sockets and encoded requests (whose
/// headers may hold secrets), nothing a log should print.
impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient").finish_non_exhaustive()
    }
}
