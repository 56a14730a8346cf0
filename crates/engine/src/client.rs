//! HTTP: this worker's connections, requests prepared once per endpoint, one request's
//! execution, and the classification of what came back.
//!
//! A worker talks to one origin from one thread, so it keeps its own connections: a
//! stack of idle HTTP/1.1 connections, driven by `h1.rs` in the task that sends
//! each request, and at most one HTTP/2 connection, driven by hyper. Requests are
//! encoded once as HTTP/1.1 bytes ([`Built`]); HTTP/2 reads them back into a
//! `http::Request`, so both protocols send exactly the same method, path, headers and
//! body.

use std::cell::{Cell, RefCell};
use std::error::Error as StdError;
use std::io::{self, Write as _};
use std::mem::MaybeUninit;
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use loadgate_metrics::{Outcome, Sample};
use loadgate_scenario::{Checks, Endpoint, HttpVersion, JsonExpect, RenderCtx, Scenario, Template};
use rand::rngs::SmallRng;
use tokio::net::TcpStream;
use tokio::sync::{Notify, Semaphore};

use crate::deadline::Deadlines;
use crate::h1::{H1Error, Stream, H1};
use crate::EngineError;

type Body = Full<Bytes>;
type BoxError = Box<dyn StdError + Send + Sync>;

/// One worker's connections: HTTP/1.1 and HTTP/2, over TCP or TLS. Not `Sync`; each
/// worker thread has its own.
pub struct HttpClient {
    tls: tokio_rustls::TlsConnector,
    http: HttpVersion,
    connect_timeout: Duration,
    connections: Option<usize>,
    pools: RefCell<Vec<Pool>>,
}

/// The connections to one origin.
struct Pool {
    scheme: Scheme,
    authority: Authority,
    /// Idle HTTP/1.1 connections, most recently used last.
    idle: Vec<H1>,
    /// The HTTP/2 connection, shared by every request.
    h2: Option<http2::SendRequest<Body>>,
    gate: Rc<Gate>,
}

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

/// What a request did on its way, noted as it happens ([`HttpClient::exchange_noting`]).
#[derive(Debug, Default)]
pub struct Noted {
    /// How long opening the last connection it opened took.
    pub connect: std::cell::Cell<Option<Duration>>,
    /// Whether it went to a second connection.
    pub resent: std::cell::Cell<bool>,
}

/// A request's turn for a connection ([`HttpClient::wait_turn`]): an idle connection, a
/// place in the fixed pool to open one, or (no fixed pool, nothing idle) nothing yet.
pub struct Turn(Option<Result<Conn, tokio::sync::OwnedSemaphorePermit>>);

/// Who may open a connection, and who is waiting for one.
struct Gate {
    connects: Semaphore,
    /// A fixed pool (`connections = N`): one permit per connection this worker may hold
    /// open to the origin; each open HTTP/1.1 connection holds one until it closes.
    slots: Option<Arc<Semaphore>>,
    /// Signalled when a connection goes back to the pool while someone waits.
    returned: Notify,
    /// Requests in [`HttpClient::acquire`]'s wait, so that giving a connection back
    /// touches no atomic when nobody waits (every request gives one back).
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

pub(crate) enum Conn {
    H1(H1),
    H2(http2::SendRequest<Body>),
}

/// Where requests go.
#[derive(Debug, Clone)]
pub struct Origin {
    scheme: Scheme,
    authority: Authority,
    /// The host to resolve and to name in TLS, without IPv6 brackets.
    host: String,
    port: u16,
    tls: bool,
}

impl Origin {
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

/// One request, encoded: the HTTP/1.1 request line and headers, and the body.
#[derive(Debug, Clone)]
pub struct Built {
    head: Bytes,
    body: Bytes,
    /// HEAD: the response has no body whatever its headers say.
    head_only: bool,
    /// The method may be sent again when the server closed the connection without
    /// reading it (RFC 9112 section 9.3.1, RFC 9113 section 8.7).
    idempotent: bool,
    /// Header names whose values HTTP/2 must never index (HPACK).
    secret: Arc<[HeaderName]>,
}

impl Built {
    /// A bodiless GET of `path` (origin form) on `origin`.
    fn get(origin: &Origin, path: &str) -> Built {
        let mut head = Vec::with_capacity(64 + path.len());
        head.extend_from_slice(b"GET ");
        head.extend_from_slice(path.as_bytes());
        head.extend_from_slice(b" HTTP/1.1\r\nhost: ");
        head.extend_from_slice(origin.authority.as_str().as_bytes());
        head.extend_from_slice(b"\r\n\r\n");
        Built {
            head: head.into(),
            body: Bytes::new(),
            head_only: false,
            idempotent: true,
            secret: Arc::new([]),
        }
    }

    /// The same request for HTTP/2: absolute URI, no connection-specific headers.
    fn to_http2(&self, origin: &Origin) -> Result<Request<Body>, BoxError> {
        let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; 256];
        let mut parsed = httparse::Request::new(&mut []);
        httparse::ParserConfig::default().parse_request_with_uninit_headers(
            &mut parsed,
            &self.head,
            &mut slots,
        )?;
        let mut authority = origin.authority.clone();
        let mut req = Request::new(Full::new(self.body.clone()));
        *req.method_mut() = Method::from_bytes(parsed.method.unwrap_or("GET").as_bytes())?;
        let headers = req.headers_mut();
        for h in parsed.headers.iter() {
            let name = HeaderName::from_bytes(h.name.as_bytes())?;
            if name == http::header::HOST {
                authority = Authority::try_from(h.value)?;
                continue;
            }
            if [
                http::header::CONNECTION,
                http::header::TRANSFER_ENCODING,
                http::header::UPGRADE,
            ]
            .contains(&name)
                || name.as_str() == "keep-alive"
                || name.as_str() == "proxy-connection"
            {
                continue;
            }
            let mut value = HeaderValue::from_bytes(h.value)?;
            value.set_sensitive(self.secret.contains(&name));
            headers.append(name, value);
        }
        *req.uri_mut() = Uri::builder()
            .scheme(origin.scheme.clone())
            .authority(authority)
            .path_and_query(parsed.path.unwrap_or("/"))
            .build()?;
        Ok(req)
    }
}

/// A response read to the end.
#[derive(Debug)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Body bytes received.
    pub bytes: u64,
    /// The first body bytes, up to the limit asked for.
    pub kept: Vec<u8>,
    /// The request was given to a second connection because the first closed before
    /// it was written (HTTP/2 only; see [`HttpClient::exchange`]).
    pub resent: bool,
    /// How long the new connection this request opened took to open (TCP, and TLS);
    /// `None` when it reused one.
    pub connect: Option<Duration>,
}

/// Why a request got no complete response.
#[derive(Debug)]
pub struct SendError {
    /// The class of the failure.
    pub outcome: Outcome,
    /// What went wrong (holds no request headers).
    pub error: BoxError,
    /// As [`Reply::resent`].
    pub resent: bool,
    /// As [`Reply::connect`].
    pub connect: Option<Duration>,
}

impl SendError {
    fn connect(error: impl Into<BoxError>) -> SendError {
        SendError {
            outcome: Outcome::ConnectError,
            error: error.into(),
            resent: false,
            connect: None,
        }
    }

    fn h1(e: H1Error) -> SendError {
        let outcome = match &e {
            H1Error::Protocol(_) => Outcome::ProtocolError,
            H1Error::Incomplete => Outcome::IoError,
            H1Error::Io(io) | H1Error::NoResponse(io) => classify(io),
        };
        SendError {
            outcome,
            error: e.into(),
            resent: false,
            connect: None,
        }
    }

    fn h2(e: hyper::Error) -> SendError {
        SendError {
            outcome: classify(&e),
            error: e.into(),
            resent: false,
            connect: None,
        }
    }
}

/// How to connect.
#[derive(Debug, Clone, Copy)]
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
}

impl HttpClient {
    /// Builds a client. Connections are made on first use, inside a tokio runtime.
    pub fn new(opts: ClientOptions) -> Result<HttpClient, EngineError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| EngineError::Tls(e.to_string()))?;
        let mut tls = if opts.insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
                .with_no_client_auth()
        } else {
            let roots =
                rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            builder.with_root_certificates(roots).with_no_client_auth()
        };
        // Over TLS, ALPN offers what the version setting allows; over plain TCP,
        // `h2` means HTTP/2 with prior knowledge (h2c) and `auto` means HTTP/1.1.
        tls.alpn_protocols = match opts.http {
            HttpVersion::Http1 => vec![b"http/1.1".to_vec()],
            HttpVersion::Http2 => vec![b"h2".to_vec()],
            HttpVersion::Auto => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        };
        Ok(HttpClient {
            tls: tokio_rustls::TlsConnector::from(Arc::new(tls)),
            http: opts.http,
            connect_timeout: opts.connect_timeout,
            connections: opts.connections,
            pools: RefCell::new(Vec::new()),
        })
    }

    /// Sends `req` to `origin` and reads the whole response, keeping the first `keep`
    /// body bytes: on an idle connection if there is one, else on a new one.
    ///
    /// A request written on a connection is never sent again: if the target closes or
    /// resets the connection before answering, that is the target's failure and is
    /// counted as such. An idle HTTP/1.1 connection the peer closed is found before it is
    /// reused (`H1::is_stale`). Only an HTTP/2 request that hyper hands back unwritten
    /// (the shared connection closed first) goes to a new connection, and the reply says
    /// so (`resent`).
    pub async fn exchange(
        &self,
        origin: &Origin,
        req: &Built,
        keep: usize,
        turn: Option<Turn>,
    ) -> Result<Reply, SendError> {
        self.exchange_noting(origin, req, keep, turn, &Noted::default())
            .await
    }

    /// [`HttpClient::exchange`], noting in `noted` as it goes what the reply would say
    /// (a connection opened, a resend), so that a request given up on for its timeout
    /// still counts them.
    pub async fn exchange_noting(
        &self,
        origin: &Origin,
        req: &Built,
        keep: usize,
        turn: Option<Turn>,
        noted: &Noted,
    ) -> Result<Reply, SendError> {
        let pool = self.pool_of(origin);
        let mut resent = false;
        let mut turn = turn;
        loop {
            let (conn, connect) = self
                .acquire(pool, origin, turn.take())
                .await
                .map_err(|e| SendError { resent, ..e })?;
            if connect.is_some() {
                noted.connect.set(connect);
            }
            noted.resent.set(resent);
            let reused = connect.is_none();
            let stamp = |e: SendError| SendError {
                resent,
                connect,
                ..e
            };
            let mut reply = Reply {
                status: 0,
                bytes: 0,
                kept: Vec::new(),
                resent,
                connect,
            };
            let mut sink = |data: &[u8]| {
                reply.bytes += data.len() as u64;
                if reply.kept.len() < keep {
                    let room = keep - reply.kept.len();
                    reply.kept.extend_from_slice(&data[..data.len().min(room)]);
                }
            };
            match conn {
                Conn::H1(mut h1) => {
                    match h1
                        .exchange(&req.head, &req.body, req.head_only, &mut sink)
                        .await
                    {
                        Ok((status, reusable)) => {
                            if reusable {
                                self.give_back(pool, h1);
                            }
                            reply.status = status;
                            return Ok(reply);
                        }
                        // The server had closed this idle connection (a clean end, no
                        // byte of an answer): it never read the request. Sent again
                        // once, on a new connection, and counted. A reset is not this:
                        // the target may have read the request, and it is its failure.
                        Err(H1Error::NoResponse(e))
                            if reused && req.idempotent && !resent && closed_cleanly(&e) =>
                        {
                            resent = true;
                            continue;
                        }
                        Err(e) => return Err(stamp(SendError::h1(e))),
                    }
                }
                Conn::H2(mut sender) => {
                    let http = req.to_http2(origin).map_err(|error| {
                        stamp(SendError {
                            outcome: Outcome::CheckFailed,
                            error,
                            resent,
                            connect,
                        })
                    })?;
                    let resp = match sender.try_send_request(http).await {
                        Ok(resp) => resp,
                        Err(mut e) => {
                            self.pools.borrow_mut()[pool].h2 = None;
                            // Handed back unwritten, or refused unprocessed (after a
                            // GOAWAY, or REFUSED_STREAM): the target never saw it.
                            let unwritten = e.take_message().is_some();
                            let e = e.into_error();
                            let safe = unwritten || (req.idempotent && h2_unprocessed(&e));
                            if reused && !resent && safe {
                                resent = true;
                                continue;
                            }
                            return Err(stamp(SendError::h2(e)));
                        }
                    };
                    reply.status = resp.status().as_u16();
                    let mut body = resp.into_body();
                    while let Some(frame) = body.frame().await {
                        let frame = frame.map_err(|e| stamp(SendError::h2(e)))?;
                        if let Some(data) = frame.data_ref() {
                            sink(data);
                        }
                    }
                    return Ok(reply);
                }
            }
        }
    }

    /// One GET of `uri` within `timeout`: the status, or what went wrong.
    pub async fn probe(&self, uri: Uri, timeout: Duration) -> Result<u16, ProbeError> {
        let origin = Origin::of(&uri).map_err(|detail| ProbeError {
            outcome: Outcome::CheckFailed,
            tls: None,
            detail,
        })?;
        let path = uri.path_and_query().map_or("/", PathAndQuery::as_str);
        let req = Built::get(&origin, path);
        match tokio::time::timeout(timeout, self.exchange(&origin, &req, 0, None)).await {
            Ok(Ok(reply)) => Ok(reply.status),
            Ok(Err(e)) => Err(ProbeError::of(e.outcome, &*e.error)),
            Err(_) => Err(ProbeError {
                outcome: Outcome::Timeout,
                tls: None,
                detail: "no answer in time".into(),
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
        })?;
        let attempt = async {
            let tcp = tcp_connect(&origin.host, origin.port)
                .await
                .map_err(SendError::connect)?;
            if origin.tls {
                let name = rustls::pki_types::ServerName::try_from(origin.host.clone())
                    .map_err(SendError::connect)?;
                self.tls
                    .connect(name, tcp)
                    .await
                    .map_err(SendError::connect)?;
            }
            Ok::<(), SendError>(())
        };
        match tokio::time::timeout(timeout, attempt).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(ProbeError::of(e.outcome, &*e.error)),
            Err(_) => Err(ProbeError {
                outcome: Outcome::Timeout,
                tls: None,
                detail: format!(
                    "no connection within {}",
                    humantime::format_duration(timeout)
                ),
            }),
        }
    }

    fn pool_of(&self, origin: &Origin) -> usize {
        let mut pools = self.pools.borrow_mut();
        if let Some(i) = pools.iter().position(|p| {
            p.authority.as_str() == origin.authority.as_str() && p.scheme == origin.scheme
        }) {
            return i;
        }
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

    /// A connection for the next request, and how long opening it took (`None` for one
    /// used before): an idle one, else a new one if an attempt is free (and, with a fixed
    /// pool, a place in it), else whichever comes first: a connection given back, or a
    /// free attempt (see [`CONNECTS_AT_ONCE`]).
    async fn acquire(
        &self,
        pool: usize,
        origin: &Origin,
        turn: Option<Turn>,
    ) -> Result<(Conn, Option<Duration>), SendError> {
        let slot = match turn {
            Some(Turn(Some(Ok(conn)))) => return Ok((conn, None)),
            Some(Turn(Some(Err(slot)))) => Some(slot),
            Some(Turn(None)) | None => match self.wait_turn_in(pool).await.0 {
                Some(Ok(conn)) => return Ok((conn, None)),
                Some(Err(slot)) => Some(slot),
                None => None,
            },
        };
        let gate = self.pools.borrow()[pool].gate.clone();
        let attempt = match self.first_of(pool, &gate, gate.connects.acquire()).await {
            Ok(conn) => return Ok((conn, None)),
            Err(permit) => permit.expect("the semaphore is never closed"),
        };
        // A connection may have come back while this waited (its signal woke another).
        if let Some(conn) = self.checkout(pool) {
            return Ok((conn, None));
        }
        let started = Instant::now();
        let conn = self.connect(pool, origin, slot).await?;
        drop(attempt);
        Ok((conn, Some(started.elapsed())))
    }

    /// Bytes held by this client's idle connections' read buffers: what a connection
    /// keeps between requests, however large the answers it read (each buffer holds at
    /// most a response head, `h1::MAX_HEAD`).
    pub fn idle_buffer_bytes(&self) -> usize {
        self.pools
            .borrow()
            .iter()
            .flat_map(|p| p.idle.iter())
            .map(H1::buffer_bytes)
            .sum()
    }

    /// Whether requests wait for a place in a fixed pool (`connections = N`).
    pub fn fixed_pool(&self) -> bool {
        self.connections.is_some()
    }

    /// A request's turn at `origin`: an idle connection, or (with a fixed pool) a place
    /// in it to open one, waiting for either as long as it takes. With a fixed pool that
    /// wait is the generator's, not the target's: the caller times it like a late send
    /// (inside latency, outside service time) and starts the request's timeout once the
    /// turn has come. Without one there is nothing to wait for here.
    pub async fn wait_turn(&self, origin: &Origin) -> Turn {
        let pool = self.pool_of(origin);
        self.wait_turn_in(pool).await
    }

    async fn wait_turn_in(&self, pool: usize) -> Turn {
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
        permit: impl std::future::Future<Output = P>,
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
    fn give_back(&self, pool: usize, h1: H1) {
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

    async fn connect(
        &self,
        pool: usize,
        origin: &Origin,
        slot: Option<tokio::sync::OwnedSemaphorePermit>,
    ) -> Result<Conn, SendError> {
        let limit = self.connect_timeout;
        let timed_out = || io::Error::new(io::ErrorKind::TimedOut, "connect timed out");
        let tcp = tokio::time::timeout(limit, tcp_connect(&origin.host, origin.port))
            .await
            .map_err(|_| SendError::connect(timed_out()))?
            .map_err(SendError::connect)?;
        tcp.set_nodelay(true).map_err(SendError::connect)?;
        let (stream, alpn_h2) = if origin.tls {
            let name = rustls::pki_types::ServerName::try_from(origin.host.clone())
                .map_err(SendError::connect)?;
            let tls = tokio::time::timeout(limit, self.tls.connect(name, tcp))
                .await
                .map_err(|_| SendError::connect(timed_out()))?
                .map_err(SendError::connect)?;
            let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
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
        let (sender, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .map_err(SendError::h2)?;
        tokio::spawn(conn);
        let mut pools = self.pools.borrow_mut();
        let p = &mut pools[pool];
        p.h2.get_or_insert_with(|| sender.clone());
        // Every request waiting for a connection can share this one.
        p.gate.returned.notify_waiters();
        Ok(Conn::H2(sender))
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

/// Whether an HTTP/2 stream failed before the server processed it: past the last
/// stream a GOAWAY accepted, or refused with REFUSED_STREAM.
fn h2_unprocessed(e: &hyper::Error) -> bool {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(h2) = err.downcast_ref::<h2::Error>() {
            return (h2.is_go_away() && h2.is_remote())
                || h2.reason() == Some(h2::Reason::REFUSED_STREAM);
        }
        cur = err.source();
    }
    false
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
}

impl ProbeError {
    fn of(outcome: Outcome, err: &(dyn StdError + 'static)) -> ProbeError {
        let mut parts = Vec::new();
        let mut tls = None;
        let mut cur = Some(err);
        while let Some(e) = cur {
            parts.push(e.to_string());
            if let Some(t) = find_tls(e, 4) {
                tls.get_or_insert_with(|| t.to_string());
            }
            cur = e.source();
        }
        parts.dedup();
        ProbeError {
            outcome,
            tls,
            detail: parts.join(": "),
        }
    }
}

/// The rustls error inside `e`, looking through `io::Error`s that carry another error
/// (which `source()` does not show): tokio-rustls nests them.
fn find_tls<'a>(e: &'a (dyn StdError + 'static), depth: u8) -> Option<&'a rustls::Error> {
    if let Some(t) = e.downcast_ref::<rustls::Error>() {
        return Some(t);
    }
    if depth == 0 {
        return None;
    }
    let io = e.downcast_ref::<std::io::Error>()?;
    let inner: &(dyn StdError + 'static) = io.get_ref()?;
    find_tls(inner, depth - 1)
}

/// `--insecure`: accepts any server certificate (signatures are still checked).
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

enum HeaderPart {
    Static(HeaderValue),
    Dynamic(Template),
}

/// A template rendered into something that is not a valid URL or header value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the rendered request is not valid HTTP (URL or header value)")]
pub struct InvalidRequest;

/// An endpoint with everything that does not change per request encoded once. A fully
/// static endpoint is one `Bytes` clone per request.
pub struct Prepared {
    method: Method,
    origin: Origin,
    /// The base URL's path, without a trailing slash, put before every path.
    prefix: String,
    path: Template,
    /// The rendered path, when it has no placeholders.
    static_path: Option<Vec<u8>>,
    headers: Vec<(HeaderName, HeaderPart)>,
    body: Option<Template>,
    static_body: Option<Bytes>,
    /// The whole request head, when nothing in it changes.
    static_head: Option<Bytes>,
    /// Whether a body-less request still says `content-length: 0` (POST, PUT, PATCH).
    empty_body_length: bool,
    secret: Arc<[HeaderName]>,
    checks: Checks,
    uses_row: bool,
    /// Most body bytes kept for checks.
    max_body: usize,
}

impl Prepared {
    /// Prepares every endpoint of `scenario` against `base` (scheme://authority[/prefix]).
    pub fn all(scenario: &Scenario, base: &str) -> Result<Vec<Prepared>, EngineError> {
        scenario
            .endpoints
            .iter()
            .map(|e| Prepared::new(e, base, scenario.max_body))
            .collect()
    }

    fn new(e: &Endpoint, base: &str, max_body: usize) -> Result<Prepared, EngineError> {
        let bad = |what: String| EngineError::Request {
            endpoint: e.name.clone(),
            message: what,
        };
        let method = Method::from_bytes(e.method.as_bytes())
            .map_err(|_| bad(format!("invalid method {}", e.method)))?;
        let base_uri: Uri = base
            .parse()
            .map_err(|err| bad(format!("invalid target URL: {err}")))?;
        let origin =
            Origin::of(&base_uri).map_err(|err| bad(format!("invalid target URL: {err}")))?;
        let prefix = base_uri.path().trim_end_matches('/').to_string();
        let static_path = if e.path.is_static() {
            let mut s = prefix.clone().into_bytes();
            s.extend_from_slice(&render_static(&e.path));
            PathAndQuery::try_from(s.as_slice())
                .map_err(|err| bad(format!("invalid URL: {err}")))?;
            Some(s)
        } else {
            None
        };
        let mut headers = Vec::new();
        if !e
            .headers
            .iter()
            .any(|h| h.name.eq_ignore_ascii_case("host"))
        {
            let host = HeaderValue::from_str(origin.authority.as_str())
                .map_err(|err| bad(format!("invalid target host: {err}")))?;
            headers.push((http::header::HOST, HeaderPart::Static(host)));
        }
        let mut secret = Vec::new();
        for h in &e.headers {
            let name = HeaderName::from_bytes(h.name.as_bytes())
                .map_err(|_| bad(format!("invalid header name {}", h.name)))?;
            if h.secret {
                secret.push(name.clone());
            }
            let part = if h.value.is_static() {
                let v = render_static(&h.value);
                // Never echo the value: it may be a secret.
                let value = HeaderValue::from_bytes(&v)
                    .map_err(|_| bad(format!("invalid value for header {}", h.name)))?;
                HeaderPart::Static(value)
            } else {
                HeaderPart::Dynamic(h.value.clone())
            };
            headers.push((name, part));
        }
        let static_body = e
            .body
            .as_ref()
            .filter(|b| b.is_static())
            .map(|b| Bytes::from(render_static(b)));
        let uses_row = e.path.uses_row()
            || e.body.as_ref().is_some_and(Template::uses_row)
            || e.headers.iter().any(|h| h.value.uses_row());
        let mut p = Prepared {
            empty_body_length: [Method::POST, Method::PUT, Method::PATCH].contains(&method),
            method,
            origin,
            prefix,
            path: e.path.clone(),
            static_path,
            headers,
            body: e.body.clone(),
            static_body,
            static_head: None,
            secret: secret.into(),
            checks: e.checks.clone(),
            uses_row,
            max_body,
        };
        let all_static = p.static_path.is_some()
            && (p.body.is_none() || p.static_body.is_some())
            && p.headers
                .iter()
                .all(|(_, h)| matches!(h, HeaderPart::Static(_)));
        if all_static {
            let body_len = p.static_body.as_ref().map_or(0, Bytes::len);
            let mut head = Vec::new();
            let mut rng = <SmallRng as rand::SeedableRng>::seed_from_u64(0);
            let mut ctx = RenderCtx {
                seq: 0,
                rng: &mut rng,
                row: None,
                lists: &[],
            };
            p.encode_head(&mut ctx, &mut head, body_len)
                .map_err(|_| bad("the request is not valid HTTP".into()))?;
            p.static_head = Some(head.into());
        }
        Ok(p)
    }

    /// Whether this endpoint reads the data file.
    pub fn uses_row(&self) -> bool {
        self.uses_row
    }

    /// Where this endpoint's requests go.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// Renders one request. A rendering that yields an invalid URL or header is returned
    /// as `Err` and counted as a check failure by the caller.
    pub fn build(
        &self,
        ctx: &mut RenderCtx<'_, SmallRng>,
        scratch: &mut Vec<u8>,
    ) -> Result<Built, InvalidRequest> {
        let body = match (&self.static_body, &self.body) {
            (Some(b), _) => b.clone(),
            (None, Some(t)) => {
                let mut v = Vec::with_capacity(256);
                t.render(ctx, &mut v);
                Bytes::from(v)
            }
            (None, None) => Bytes::new(),
        };
        let head = match &self.static_head {
            Some(h) => h.clone(),
            None => {
                scratch.clear();
                self.encode_head(ctx, scratch, body.len())?;
                Bytes::copy_from_slice(scratch)
            }
        };
        Ok(Built {
            head,
            body,
            head_only: self.method == Method::HEAD,
            idempotent: self.method.is_idempotent(),
            secret: self.secret.clone(),
        })
    }

    /// Writes the HTTP/1.1 request line and headers, validating what templates rendered.
    fn encode_head(
        &self,
        ctx: &mut RenderCtx<'_, SmallRng>,
        out: &mut Vec<u8>,
        body_len: usize,
    ) -> Result<(), InvalidRequest> {
        out.extend_from_slice(self.method.as_str().as_bytes());
        out.push(b' ');
        match &self.static_path {
            Some(p) => out.extend_from_slice(p),
            None => {
                let at = out.len();
                out.extend_from_slice(self.prefix.as_bytes());
                self.path.render(ctx, out);
                PathAndQuery::try_from(&out[at..]).map_err(|_| InvalidRequest)?;
            }
        }
        out.extend_from_slice(b" HTTP/1.1\r\n");
        for (name, part) in &self.headers {
            out.extend_from_slice(name.as_str().as_bytes());
            out.extend_from_slice(b": ");
            match part {
                HeaderPart::Static(v) => out.extend_from_slice(v.as_bytes()),
                HeaderPart::Dynamic(t) => {
                    let at = out.len();
                    t.render(ctx, out);
                    HeaderValue::from_bytes(&out[at..]).map_err(|_| InvalidRequest)?;
                }
            }
            out.extend_from_slice(b"\r\n");
        }
        if body_len > 0 || self.empty_body_length {
            write!(out, "content-length: {body_len}\r\n").map_err(|_| InvalidRequest)?;
        }
        out.extend_from_slice(b"\r\n");
        Ok(())
    }
}

/// Renders a template that has no placeholders.
fn render_static(t: &Template) -> Vec<u8> {
    use rand::SeedableRng;
    let mut rng = SmallRng::seed_from_u64(0);
    let mut out = Vec::new();
    t.render(
        &mut RenderCtx {
            seq: 0,
            rng: &mut rng,
            row: None,
            lists: &[],
        },
        &mut out,
    );
    out
}

/// Sends `req`, reads the whole response within the timeout, and classifies the result.
/// `(intended, started)`: when the request was due (open model; when it was sent in the
/// closed model) and when the generator got to it. Latency runs from the first, service
/// time and the timeout from the second, so latency is the send lag plus service time.
/// `turn`: the connection (or place in the fixed pool) the request already waited for
/// ([`HttpClient::wait_turn`]), if it did.
pub async fn execute(
    client: &HttpClient,
    endpoint: usize,
    prepared: &Prepared,
    req: Built,
    (intended, sent): (Instant, Instant),
    deadlines: &Deadlines,
    turn: Option<Turn>,
) -> Sample {
    let keep = if prepared.checks.needs_body() {
        prepared.max_body
    } else {
        0
    };
    let noted = Noted::default();
    let result = deadlines
        .run(
            sent,
            client.exchange_noting(&prepared.origin, &req, keep, turn, &noted),
        )
        .await;
    let done = Instant::now();
    let (outcome, status, bytes, local, resent, connect) = match result {
        // Given up on: what it did on the way still counts (a connection it opened).
        Err(_elapsed) => (
            Outcome::Timeout,
            None,
            0,
            false,
            noted.resent.get(),
            noted.connect.get(),
        ),
        Ok(Err(e)) => (
            e.outcome,
            None,
            0,
            e.outcome == Outcome::ConnectError && local_exhaustion(&*e.error),
            e.resent,
            e.connect,
        ),
        Ok(Ok(reply)) => (
            evaluate(&prepared.checks, reply.status, &reply.kept),
            Some(reply.status),
            reply.bytes,
            false,
            reply.resent,
            reply.connect,
        ),
    };
    Sample {
        endpoint,
        latency_us: micros(done.saturating_duration_since(intended)),
        service_us: micros(done.saturating_duration_since(sent)),
        outcome,
        status,
        bytes,
        local,
        resent,
        connect_us: connect.map(micros),
        ttfb_us: None,
    }
}

/// Whether a connection failed because this process or machine ran out of something of
/// its own, not because of the target: no free descriptor for the socket (`EMFILE`,
/// `ENFILE`), no free local port (`EADDRNOTAVAIL` from `connect`), no socket memory
/// (`ENOBUFS`, `ENOMEM`). The request never reached the target.
pub(crate) fn local_exhaustion(err: &(dyn StdError + 'static)) -> bool {
    use rustix::io::Errno;
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return Errno::from_io_error(io).is_some_and(|n| {
                [
                    Errno::MFILE,
                    Errno::NFILE,
                    Errno::ADDRNOTAVAIL,
                    Errno::NOBUFS,
                    Errno::NOMEM,
                ]
                .contains(&n)
            });
        }
        cur = e.source();
    }
    false
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The outcome class for a response with `status` and (possibly truncated) `body`.
pub(crate) fn evaluate(checks: &Checks, status: u16, body: &[u8]) -> Outcome {
    if !checks.status_ok(status) {
        return match status {
            429 => Outcome::Http429,
            400..=499 => Outcome::Http4xx,
            500..=599 => Outcome::Http5xx,
            _ => Outcome::CheckFailed,
        };
    }
    if let Some(needle) = &checks.body_contains {
        if memchr::memmem::find(body, needle.as_bytes()).is_none() {
            return Outcome::CheckFailed;
        }
    }
    if !checks.json.is_empty() {
        let Ok(doc) = serde_json::from_slice::<serde_json::Value>(body) else {
            return Outcome::CheckFailed;
        };
        for c in &checks.json {
            let found = doc.pointer(&c.pointer);
            let ok = match &c.expect {
                JsonExpect::Exists(want) => found.is_some() == *want,
                JsonExpect::Equals(v) => found == Some(v),
            };
            if !ok {
                return Outcome::CheckFailed;
            }
        }
    }
    Outcome::Success
}

/// Classifies a transport failure by walking the error's source chain.
pub(crate) fn classify(err: &(dyn StdError + 'static)) -> Outcome {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            return match io.kind() {
                ConnectionRefused | AddrNotAvailable | NotFound => Outcome::ConnectError,
                TimedOut => Outcome::Timeout,
                // hyper reports bytes that are not valid HTTP (a bad chunk size, say)
                // as InvalidData or InvalidInput while reading a response.
                InvalidData | InvalidInput => Outcome::ProtocolError,
                _ => Outcome::IoError,
            };
        }
        if let Some(h) = e.downcast_ref::<hyper::Error>() {
            if h.is_parse() || h.is_parse_status() || h.is_parse_too_large() {
                return Outcome::ProtocolError;
            }
            if h.is_timeout() {
                return Outcome::Timeout;
            }
            if h.is_incomplete_message()
                || h.is_body_write_aborted()
                || h.is_closed()
                || h.is_canceled()
            {
                return Outcome::IoError;
            }
        }
        cur = e.source();
    }
    Outcome::IoError
}

/// Shows the type only: its parts are connections, sockets and encoded requests (whose
/// headers may hold secrets), nothing a log should print.
impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient").finish_non_exhaustive()
    }
}

/// Shows the type only: its parts are connections, sockets and encoded requests (whose
/// headers may hold secrets), nothing a log should print.
impl std::fmt::Debug for Turn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Turn").finish_non_exhaustive()
    }
}

/// Shows the type only: its parts are connections, sockets and encoded requests (whose
/// headers may hold secrets), nothing a log should print.
impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use loadgate_scenario::JsonCheck;

    #[test]
    fn running_out_of_descriptors_or_ports_is_local_a_refusal_is_not() {
        use rustix::io::Errno;
        let wrapped = |n: Errno| SendError::connect(io::Error::from(n)).error;
        for n in [
            Errno::MFILE,
            Errno::NFILE,
            Errno::ADDRNOTAVAIL,
            Errno::NOBUFS,
            Errno::NOMEM,
        ] {
            assert!(local_exhaustion(&*wrapped(n)), "{n:?}");
        }
        for n in [
            Errno::CONNREFUSED,
            Errno::CONNRESET,
            Errno::HOSTUNREACH,
            Errno::TIMEDOUT,
        ] {
            assert!(!local_exhaustion(&*wrapped(n)), "{n:?}");
        }
    }

    #[test]
    fn status_classes_and_checks() {
        let c = Checks::default();
        assert_eq!(evaluate(&c, 200, b""), Outcome::Success);
        assert_eq!(evaluate(&c, 429, b""), Outcome::Http429);
        assert_eq!(evaluate(&c, 404, b""), Outcome::Http4xx);
        assert_eq!(evaluate(&c, 503, b""), Outcome::Http5xx);
        assert_eq!(evaluate(&c, 302, b""), Outcome::CheckFailed);
        let c = Checks {
            status: vec![404],
            ..Checks::default()
        };
        assert_eq!(evaluate(&c, 404, b""), Outcome::Success);
        let c = Checks {
            body_contains: Some("ok".into()),
            json: vec![JsonCheck {
                path: "$.a[1]".into(),
                pointer: "/a/1".into(),
                expect: JsonExpect::Equals(serde_json::json!(2)),
            }],
            ..Checks::default()
        };
        assert_eq!(
            evaluate(&c, 200, br#"{"s":"ok","a":[1,2]}"#),
            Outcome::Success
        );
        assert_eq!(
            evaluate(&c, 200, br#"{"s":"ok","a":[1,3]}"#),
            Outcome::CheckFailed
        );
        assert_eq!(evaluate(&c, 200, br#"{"s":"no"}"#), Outcome::CheckFailed);
        assert_eq!(evaluate(&c, 200, b"ok but not json"), Outcome::CheckFailed);
    }

    /// A raw HTTP/1.x server on 127.0.0.1:0: for each request (read up to the blank
    /// line) it writes the next canned answer, in the pieces given, with a pause
    /// between pieces; `close` after an answer ends that connection. Counts
    /// connections.
    struct Canned {
        origin: Origin,
        accepted: Arc<std::sync::atomic::AtomicUsize>,
    }

    struct Answer {
        pieces: Vec<Vec<u8>>,
        close: bool,
    }

    fn answer(text: &str, close: bool) -> Answer {
        Answer {
            pieces: vec![text.as_bytes().to_vec()],
            close,
        }
    }

    async fn canned(answers: Vec<Answer>) -> Canned {
        use std::sync::atomic::Ordering;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = accepted.clone();
        let answers = Arc::new(std::sync::Mutex::new(answers.into_iter()));
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let answers = answers.clone();
                tokio::spawn(async move {
                    let mut seen = Vec::new();
                    let mut buf = [0u8; 4096];
                    loop {
                        while memchr::memmem::find(&seen, b"\r\n\r\n").is_none() {
                            match sock.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => seen.extend_from_slice(&buf[..n]),
                            }
                        }
                        let end = memchr::memmem::find(&seen, b"\r\n\r\n").unwrap() + 4;
                        seen.drain(..end);
                        let Some(a) = answers.lock().unwrap().next() else {
                            return;
                        };
                        for (i, piece) in a.pieces.iter().enumerate() {
                            if i > 0 {
                                tokio::time::sleep(Duration::from_millis(20)).await;
                            }
                            if sock.write_all(piece).await.is_err() {
                                return;
                            }
                        }
                        if a.close {
                            return;
                        }
                    }
                });
            }
        });
        let uri: Uri = format!("http://{addr}/").parse().unwrap();
        Canned {
            origin: Origin::of(&uri).unwrap(),
            accepted,
        }
    }

    fn request(method: &str, origin: &Origin) -> Built {
        let mut b = Built::get(origin, "/");
        let head = String::from_utf8(b.head.to_vec()).unwrap();
        b.head = head.replacen("GET", method, 1).into();
        b.head_only = method == "HEAD";
        b.idempotent = method != "POST";
        b
    }

    fn client() -> HttpClient {
        HttpClient::new(ClientOptions {
            connect_timeout: Duration::from_secs(1),
            http: HttpVersion::Http1,
            insecure: false,
            connections: None,
        })
        .unwrap()
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn every_kind_of_http1_framing_is_read_to_its_end() {
        block_on(async {
            let chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n";
            let big_header = format!(
                "HTTP/1.1 200 OK\r\nX-Big: {}\r\nContent-Length: 2\r\n\r\nok",
                "b".repeat(40 * 1024)
            );
            let server = canned(vec![
                answer(chunked, false),
                answer("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok", false),
                answer("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", false),
                Answer {
                    pieces: vec![
                        b"HTTP/1.1 200 OK\r\nContent-Le".to_vec(),
                        b"ngth: 4\r\n\r\nab".to_vec(),
                        b"cd".to_vec(),
                    ],
                    close: false,
                },
                answer(&big_header, false),
                answer("HTTP/1.1 200 OK\r\n\r\nuntil close", true),
                answer("HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nold", false),
                answer("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false),
            ])
            .await;
            let c = client();
            let o = &server.origin;
            let get = request("GET", o);
            let r = c.exchange(o, &get, 64, None).await.unwrap();
            assert_eq!(
                (r.status, r.bytes, &r.kept[..]),
                (200, 11, &b"hello world"[..])
            );
            let r = c.exchange(o, &get, 64, None).await.unwrap();
            assert_eq!((r.status, &r.kept[..]), (201, &b"ok"[..]), "1xx skipped");
            let r = c.exchange(o, &request("HEAD", o), 64, None).await.unwrap();
            assert_eq!((r.status, r.bytes), (200, 0), "HEAD has no body");
            let r = c.exchange(o, &get, 64, None).await.unwrap();
            assert_eq!(&r.kept[..], b"abcd", "an answer split anywhere");
            let r = c.exchange(o, &get, 2, None).await.unwrap();
            assert_eq!((r.bytes, &r.kept[..]), (2, &b"ok"[..]), "a 40 KiB head");
            // One connection so far: every answer above left it reusable.
            assert_eq!(server.accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
            let r = c.exchange(o, &get, 64, None).await.unwrap();
            assert_eq!(&r.kept[..], b"until close");
            let r = c.exchange(o, &get, 64, None).await.unwrap();
            assert_eq!(&r.kept[..], b"old");
            c.exchange(o, &get, 64, None).await.unwrap();
            // A body read to the close and an HTTP/1.0 answer each end their connection.
            assert_eq!(server.accepted.load(std::sync::atomic::Ordering::SeqCst), 3);
        });
    }

    #[test]
    fn broken_http1_answers_are_classified() {
        block_on(async {
            let huge_head = format!(
                "HTTP/1.1 200 OK\r\nX-Big: {}\r\n\r\n",
                "b".repeat(crate::h1::MAX_HEAD)
            );
            for (text, want) in [
                (
                    "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
                    Outcome::IoError,
                ),
                (
                    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                    Outcome::ProtocolError,
                ),
                (
                    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXX",
                    Outcome::ProtocolError,
                ),
                (
                    "HTTP/1.1 101 Switching Protocols\r\n\r\n",
                    Outcome::ProtocolError,
                ),
                ("HTTP/1.1 200 OK\r\nContent-Type: te", Outcome::IoError),
                ("", Outcome::IoError),
                (huge_head.as_str(), Outcome::ProtocolError),
            ] {
                let server = canned(vec![answer(text, true)]).await;
                let o = &server.origin;
                let e = client()
                    .exchange(o, &request("GET", o), 0, None)
                    .await
                    .unwrap_err();
                assert_eq!(
                    e.outcome,
                    want,
                    "{:?}: {}",
                    &text[..text.len().min(60)],
                    e.error
                );
            }
        });
    }

    #[test]
    fn a_connection_the_server_closed_while_idle_is_not_used() {
        block_on(async {
            // Each answer is followed by a close without `Connection: close`.
            let ok = || answer("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", true);
            let server = canned(vec![ok(), ok(), ok()]).await;
            let c = client();
            let o = &server.origin;
            // A POST is never sent twice, so it must not be sent on the dead connection.
            let post = request("POST", o);
            for _ in 0..3 {
                let r = c.exchange(o, &post, 0, None).await.unwrap();
                assert_eq!(r.status, 200);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert_eq!(server.accepted.load(std::sync::atomic::Ordering::SeqCst), 3);
        });
    }

    /// Regression (issue 17 review): a server that closes a keep-alive connection as the
    /// next request arrives (an idle timeout racing the request) never read it; counting
    /// that as the target's io_error failed healthy Node-style servers. A clean close
    /// before any byte of an answer, on a reused connection, sends an idempotent request
    /// once more, on a new connection, and says so. A POST is never sent twice.
    #[test]
    fn a_request_the_server_closed_unread_is_sent_again_once_and_counted() {
        block_on(async {
            let ok = || answer("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false);
            // The second request on the first connection: a close with no answer.
            let unread = || Answer {
                pieces: vec![],
                close: true,
            };
            let server = canned(vec![ok(), unread(), ok()]).await;
            let c = client();
            let o = &server.origin;
            let get = request("GET", o);
            let r = c.exchange(o, &get, 0, None).await.unwrap();
            assert!(!r.resent && r.connect.is_some());
            let r = c.exchange(o, &get, 0, None).await.unwrap();
            assert_eq!(r.status, 200);
            assert!(r.resent, "sent again, and said so");
            assert!(r.connect.is_some(), "on a new connection");
            assert_eq!(server.accepted.load(std::sync::atomic::Ordering::SeqCst), 2);

            let server = canned(vec![ok(), unread(), ok()]).await;
            let o = &server.origin;
            let post = request("POST", o);
            c.exchange(o, &post, 0, None).await.unwrap();
            let e = c.exchange(o, &post, 0, None).await.unwrap_err();
            assert_eq!(e.outcome, Outcome::IoError);
            assert!(!e.resent);
        });
    }

    #[test]
    fn a_burst_opens_at_most_a_few_connections_at_once_and_the_rest_wait() {
        block_on(async {
            use std::sync::atomic::{AtomicUsize, Ordering};
            use tokio::io::AsyncReadExt;
            // A TLS origin whose server reads each ClientHello and never answers: every
            // connection attempt stays in progress, so the server sees how many a
            // client makes at once.
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let hellos = Arc::new(AtomicUsize::new(0));
            let seen = hellos.clone();
            tokio::spawn(async move {
                while let Ok((mut sock, _)) = listener.accept().await {
                    let seen = seen.clone();
                    tokio::spawn(async move {
                        let mut buf = [0u8; 1024];
                        if matches!(sock.read(&mut buf).await, Ok(n) if n > 0) {
                            seen.fetch_add(1, Ordering::SeqCst);
                        }
                        // Hold the connection open without a word.
                        let _ = sock.read(&mut buf).await;
                    });
                }
            });
            let uri: Uri = format!("https://127.0.0.1:{}/", addr.port())
                .parse()
                .unwrap();
            let origin = Origin::of(&uri).unwrap();
            let c = Rc::new(client());
            let local = tokio::task::LocalSet::new();
            local
                .run_until(async {
                    for _ in 0..3 * CONNECTS_AT_ONCE {
                        let (c, origin) = (c.clone(), origin.clone());
                        tokio::task::spawn_local(async move {
                            let req = Built::get(&origin, "/");
                            let _ = c.exchange(&origin, &req, 0, None).await;
                        });
                    }
                    tokio::time::sleep(Duration::from_millis(300)).await;
                })
                .await;
            // Three times the limit in requests, none answered: only the first attempts
            // were made.
            assert_eq!(hellos.load(Ordering::SeqCst), CONNECTS_AT_ONCE);
        });
    }
}
