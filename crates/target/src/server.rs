//! The HTTP server behind the embedded target.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::sync::{oneshot, Notify, Semaphore};

use crate::stream::{Aborted, TokenStream};
use crate::Profile;

/// A target server running on its own threads; stopped when dropped.
pub struct RunningTarget {
    addr: SocketAddr,
    certificate: Option<Vec<u8>>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// With a stall: the thread that ends each freeze ([`thaw`]) and its stop line.
    thaw: Option<(mpsc::Sender<()>, std::thread::JoinHandle<()>)>,
    state: Arc<State>,
    /// Whether it serves TLS.
    tls: bool,
}

impl RunningTarget {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`, or `https://ADDR` over TLS.
    pub fn base_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// When the target's clock began. With a stall, freeze `k` (counted from 0) holds
    /// every response due to leave from `started + k * every` until it ends at
    /// `started + k * every + freeze`.
    pub fn started(&self) -> Instant {
        self.state.started
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.state.accepted.load(Ordering::Relaxed)
    }

    /// Requests received so far, on any route.
    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::Relaxed)
    }

    /// The self-signed certificate (DER) when serving TLS.
    pub fn certificate(&self) -> Option<&[u8]> {
        self.certificate.as_deref()
    }

    /// How long after the end of a freeze ([`crate::profile::Stall`]) the held responses
    /// were let go, in microseconds, at quantile `q` of all held responses so far (`None`
    /// before any was held). Frozen responses are released in about the order their
    /// requests arrived, so the one held from mid-freeze leaves about the median lag
    /// later: what a coordinated-omission check must add to its analytic truth.
    pub fn release_lag_us(&self, q: f64) -> Option<u64> {
        let h = self.state.release_lag();
        (!h.is_empty()).then(|| h.value_at_quantile(q))
    }

    /// Blocks until the server stops (it never does on its own).
    pub fn wait(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for RunningTarget {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some((stop, t)) = self.thaw.take() {
            drop(stop);
            let _ = t.join();
        }
    }
}

struct State {
    profile: Profile,
    started: Instant,
    windows: Vec<Mutex<(u64, u32)>>,
    /// Per route with `capacity_rps`: when its single server is next free.
    free_at: Vec<Mutex<std::time::Instant>>,
    /// Microseconds from a freeze's end to each held response's release.
    release_lag: Mutex<hdrhistogram::Histogram<u64>>,
    /// How many freezes have ended, from [`thaw`], and the held responses waiting for
    /// the next: one `Notify`, whose waiters leave oldest first, so held responses go
    /// in the order their requests arrived.
    thawed: Arc<Thawed>,
    /// Connections accepted so far.
    accepted: AtomicU64,
    /// Requests received so far.
    requests: AtomicU64,
    /// Per route with a stream's `max_streams`: its slots.
    slots: Vec<Option<Arc<Semaphore>>>,
    /// Streams started so far (each completion's id).
    streams: AtomicU64,
    /// The built-in routes' key, tables and bodies.
    api: crate::api::Api,
}

/// The stall mode's end-of-freeze signal (see [`thaw`]).
#[derive(Default)]
struct Thawed {
    ended: AtomicU64,
    notify: Notify,
}

impl State {
    /// The release-lag histogram (a panic elsewhere while it was held leaves it usable).
    fn release_lag(&self) -> std::sync::MutexGuard<'_, hdrhistogram::Histogram<u64>> {
        self.release_lag.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Starts the target on `addr` (e.g. `127.0.0.1:0`) with `threads` runtime threads.
pub fn spawn(profile: Profile, addr: SocketAddr, threads: usize) -> std::io::Result<RunningTarget> {
    start(profile, addr, threads, None)
}

/// A target on 127.0.0.1 (a free port, one thread) serving `profile`, a profile's TOML
/// text. For tests and benches: panics on a bad profile or a failed bind.
pub fn loopback(profile: &str) -> RunningTarget {
    let profile = Profile::parse("profile.toml", profile).unwrap_or_else(|e| panic!("{e}"));
    spawn(profile, SocketAddr::from(([127, 0, 0, 1], 0)), 1)
        .unwrap_or_else(|e| panic!("cannot start a target on 127.0.0.1: {e}"))
}

/// Like [`spawn`], but over TLS with a freshly generated self-signed certificate for
/// `localhost` and `127.0.0.1`, offering `h2` and `http/1.1` by ALPN. Clients must
/// trust [`RunningTarget::certificate`] or skip verification.
pub fn spawn_tls(
    profile: Profile,
    addr: SocketAddr,
    threads: usize,
) -> std::io::Result<RunningTarget> {
    let (acceptor, certificate) = tls_acceptor()?;
    start(profile, addr, threads, Some((acceptor, Some(certificate))))
}

/// Like [`spawn`], but over TLS with the caller's server configuration (its
/// certificate, its client-certificate policy, its ALPN protocols): for tests of a
/// private CA or of client certificates. [`RunningTarget::certificate`] is `None`.
pub fn spawn_with_tls(
    profile: Profile,
    addr: SocketAddr,
    threads: usize,
    config: rustls::ServerConfig,
) -> std::io::Result<RunningTarget> {
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    start(profile, addr, threads, Some((acceptor, None)))
}

fn tls_acceptor() -> std::io::Result<(tokio_rustls::TlsAcceptor, Vec<u8>)> {
    let key =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .map_err(std::io::Error::other)?;
    let cert = key.cert.der().to_vec();
    let private = rustls::pki_types::PrivateKeyDer::Pkcs8(key.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone().into()], private)
        .map_err(std::io::Error::other)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((tokio_rustls::TlsAcceptor::from(Arc::new(config)), cert))
}

fn start(
    profile: Profile,
    addr: SocketAddr,
    threads: usize,
    tls: Option<(tokio_rustls::TlsAcceptor, Option<Vec<u8>>)>,
) -> std::io::Result<RunningTarget> {
    let (acceptor, certificate) = match tls {
        Some((a, c)) => (Some(a), c),
        None => (None, None),
    };
    let tls = acceptor.is_some();
    let std_listener = std::net::TcpListener::bind(addr)?;
    let started = Instant::now();
    std_listener.set_nonblocking(true)?;
    let addr = std_listener.local_addr()?;
    let (tx, rx) = oneshot::channel();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .thread_name("loadgate-target")
        .enable_all()
        .build()?;
    let thawed = Arc::new(Thawed::default());
    let thaw = match profile.stall {
        Some(stall) => {
            let (stop, stopped) = mpsc::channel();
            let thawed = thawed.clone();
            let t = std::thread::Builder::new()
                .name("loadgate-thaw".into())
                .spawn(move || thaw(started, stall, &thawed, &stopped))?;
            Some((stop, t))
        }
        None => None,
    };
    let api = crate::api::Api::new(&profile, started)?;
    let state = Arc::new(State {
        api,
        slots: profile
            .routes
            .iter()
            .map(|r| {
                let max = r.stream.and_then(|s| s.max_streams)?;
                Some(Arc::new(Semaphore::new(max as usize)))
            })
            .collect(),
        streams: AtomicU64::new(0),
        windows: profile.routes.iter().map(|_| Mutex::new((0, 0))).collect(),
        free_at: profile
            .routes
            .iter()
            .map(|_| Mutex::new(std::time::Instant::now()))
            .collect(),
        profile,
        started,
        thawed,
        accepted: AtomicU64::new(0),
        requests: AtomicU64::new(0),
        release_lag: Mutex::new(
            hdrhistogram::Histogram::new_with_bounds(1, 60_000_000, 3)
                .expect("static histogram bounds are valid"),
        ),
    });
    let served = state.clone();
    let thread = std::thread::Builder::new()
        .name("loadgate-target".into())
        .spawn(move || {
            runtime.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(std_listener) {
                    Ok(l) => l,
                    Err(e) => {
                        eprintln!("loadgate target: cannot listen: {e}");
                        return;
                    }
                };
                tokio::select! {
                    _ = accept_loop(listener, served, acceptor) => {}
                    _ = rx => {}
                }
            });
            runtime.shutdown_timeout(Duration::from_millis(100));
        })?;
    Ok(RunningTarget {
        state,
        addr,
        certificate,
        shutdown: Some(tx),
        thread: Some(thread),
        thaw,
        tls,
    })
}

/// Ends freeze `k` (counted from 0) at `started + k * every + freeze`: sets
/// `thawed.ended` to `k + 1` and wakes the held responses, until `stop` is dropped.
///
/// A thread of its own that sleeps to each end, rather than a tokio timer per held
/// response: the runtime's timer rounds up to whole milliseconds and fires only when
/// its thread next looks, which let the first held responses go 1-2 ms after the
/// freeze's end; and this thread wakes the held tasks while the runtime's thread is
/// already writing the first answers. With the coordinated-omission check of
/// `benches/peers` (six alternating runs each), the lag at p0.5/p5/p50 of the held
/// responses went from about 1.6/2.3/7.5 ms to 0.4/1.0/6.5 ms.
fn thaw(
    started: Instant,
    stall: crate::profile::Stall,
    thawed: &Thawed,
    stop: &mpsc::Receiver<()>,
) {
    let mut end = started + stall.freeze;
    for k in 1u64.. {
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match stop.recv_timeout(left) {
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                _ => return,
            }
        }
        thawed.ended.store(k, Ordering::SeqCst);
        thawed.notify.notify_waiters();
        end += stall.every;
    }
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    state: Arc<State>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    loop {
        if let Some(stall) = state.profile.stall.filter(|s| s.world) {
            stopped_world(&state, stall).await;
        }
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            // Out of file descriptors or similar: back off instead of spinning.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        state.accepted.fetch_add(1, Ordering::Relaxed);
        let state = state.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| handle(state.clone(), req, peer));
            let builder = auto::Builder::new(TokioExecutor::new());
            match tls {
                None => {
                    let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                }
                // A failed handshake (say, a client that rejects the certificate) just
                // closes this connection.
                Some(acceptor) => {
                    if let Ok(stream) = acceptor.accept(stream).await {
                        let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                    }
                }
            }
        });
    }
}

/// With a stop-the-world stall: returns once no freeze is on (at once outside one, at the
/// thaw inside one), so no connection is accepted during a freeze.
async fn stopped_world(state: &State, stall: crate::profile::Stall) {
    loop {
        let elapsed = state.started.elapsed().as_nanos();
        let window = elapsed / stall.every.as_nanos();
        if elapsed % stall.every.as_nanos() >= stall.freeze.as_nanos() {
            return;
        }
        // Registered before the check, so a thaw between the two still wakes it.
        let mut thawed = std::pin::pin!(state.thawed.notify.notified());
        thawed.as_mut().enable();
        if u128::from(state.thawed.ended.load(Ordering::SeqCst)) > window {
            return;
        }
        thawed.await;
    }
}

/// Built-in route that answers with the HTTP version the request arrived in.
pub const VERSION_PATH: &str = "/__loadgate/version";

/// Built-in route that answers with [`RunningTarget::release_lag_us`] as JSON, for a
/// coordinated-omission check run from outside the process: `held` (responses held by a
/// freeze so far) and `lag_us`, the release lag at the quantiles that matter for p90,
/// p99 and p99.9 of a 1-in-5 freeze (`p50`, `p5`, `p0.5`) and its `max`.
pub const RELEASE_LAG_PATH: &str = "/__loadgate/release-lag";

pub(crate) fn json(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::Whole(Full::new(body.into())))
        .expect("static response parts are valid")
}

/// A body whose first byte leaves at once and the rest `after` later (a route's
/// `body_after`): the time to first byte and the whole answer's time differ by it.
pub(crate) struct Delayed {
    first: Option<Bytes>,
    rest: Option<Bytes>,
    sleep: std::pin::Pin<Box<tokio::time::Sleep>>,
    len: u64,
}

impl Delayed {
    fn new(body: Bytes, after: Duration) -> Delayed {
        let split = body.len().min(1);
        Delayed {
            len: body.len() as u64,
            first: Some(body.slice(..split)),
            rest: Some(body.slice(split..)),
            sleep: Box::pin(tokio::time::sleep(after)),
        }
    }
}

impl hyper::body::Body for Delayed {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        use std::task::Poll;
        if let Some(first) = self.first.take().filter(|b| !b.is_empty()) {
            return Poll::Ready(Some(Ok(Frame::data(first))));
        }
        if self.rest.is_none() {
            return Poll::Ready(None);
        }
        match std::future::Future::poll(self.sleep.as_mut(), cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => Poll::Ready(self.rest.take().map(|b| Ok(Frame::data(b)))),
        }
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.len)
    }
}

/// A response body: whole, late ([`Delayed`]) or streamed ([`TokenStream`]).
pub(crate) enum Body {
    Whole(Full<Bytes>),
    Delayed(Delayed),
    Stream(TokenStream),
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = Aborted;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Aborted>>> {
        use std::pin::Pin;
        let infallible = |p: std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>>| {
            p.map(|f| f.map(|f| f.map_err(|e| match e {})))
        };
        match self.get_mut() {
            Body::Whole(b) => infallible(Pin::new(b).poll_frame(cx)),
            Body::Delayed(b) => infallible(Pin::new(b).poll_frame(cx)),
            Body::Stream(b) => Pin::new(b).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Whole(b) => b.is_end_stream(),
            Body::Delayed(b) => b.is_end_stream(),
            Body::Stream(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Whole(b) => b.size_hint(),
            Body::Delayed(b) => b.size_hint(),
            Body::Stream(b) => b.size_hint(),
        }
    }
}

async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Result<Response<Body>, Infallible> {
    let arrived = Instant::now();
    state.requests.fetch_add(1, Ordering::Relaxed);
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let resp = route(&state, req, arrived, peer).await;
    // Freeze every response that would leave during a stall window, until the thaw
    // thread says that window has ended.
    if let Some(stall) = state.profile.stall {
        let elapsed = state.started.elapsed().as_nanos();
        let window = elapsed / stall.every.as_nanos();
        let phase = Duration::from_nanos((elapsed % stall.every.as_nanos()) as u64);
        if phase < stall.freeze {
            let end = Instant::now() + (stall.freeze - phase);
            // Registered before the check, so a thaw between the two still wakes it.
            let thawed = state.thawed.notify.notified();
            let ended = state.thawed.ended.load(Ordering::SeqCst);
            if u128::from(ended) <= window {
                thawed.await;
            }
            let lag = end.elapsed().as_micros() as u64;
            let mut h = state.release_lag();
            h.saturating_record(lag.max(1));
        }
    }
    let after = state
        .profile
        .routes
        .iter()
        .find(|r| r.path == path && r.method == method.as_str())
        .and_then(|r| r.body_after);
    Ok(match after {
        Some(after) if resp.status() == StatusCode::OK => resp.map(|body| match body {
            Body::Whole(full) => {
                Body::Delayed(Delayed::new(full.into_inner().unwrap_or_default(), after))
            }
            other => other,
        }),
        _ => resp,
    })
}

async fn route(
    state: &State,
    req: Request<Incoming>,
    arrived: Instant,
    peer: SocketAddr,
) -> Response<Body> {
    // A protected path without a valid token, or a user over a rate limit, goes no
    // further, whatever the route.
    if let Some(refused) = crate::api::gate(&state.api, &state.profile, &req, peer) {
        return refused;
    }
    let found = state
        .profile
        .routes
        .iter()
        .position(|r| r.method == req.method().as_str() && r.path == req.uri().path());
    if found.is_none() && req.uri().path() == RELEASE_LAG_PATH {
        let h = state.release_lag();
        let at = |q: f64| h.value_at_quantile(q);
        return json(
            StatusCode::OK,
            format!(
                r#"{{"held":{},"lag_us":{{"p0.5":{},"p5":{},"p50":{},"max":{}}}}}"#,
                h.len(),
                at(0.005),
                at(0.05),
                at(0.5),
                h.max()
            ),
        );
    }
    if found.is_none() && req.uri().path() == VERSION_PATH {
        return json(
            StatusCode::OK,
            format!(r#"{{"http_version":"{:?}"}}"#, req.version()),
        );
    }
    let Some(i) = found else {
        return match crate::api::serve(&state.api, &state.profile, req).await {
            Some(resp) => resp,
            None => json(StatusCode::NOT_FOUND, r#"{"error":"not found"}"#),
        };
    };
    let r = &state.profile.routes[i];

    if let Some(limit) = r.rate_limit_rps {
        let second = state.started.elapsed().as_secs();
        let mut w = state.windows[i].lock().unwrap_or_else(|p| p.into_inner());
        if w.0 != second {
            *w = (second, 0);
        }
        w.1 += 1;
        if w.1 > limit {
            let mut resp = json(
                StatusCode::TOO_MANY_REQUESTS,
                r#"{"error":"rate limit exceeded"}"#,
            );
            resp.headers_mut()
                .insert("retry-after", hyper::header::HeaderValue::from_static("1"));
            return resp;
        }
    }

    if let Some(b) = r.burst {
        let phase = state.started.elapsed().as_nanos() % b.every.as_nanos();
        if phase < b.len.as_nanos() {
            let status = StatusCode::from_u16(b.status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            let mut resp = json(status, r#"{"error":"overloaded"}"#);
            resp.headers_mut()
                .insert("retry-after", hyper::header::HeaderValue::from_static("1"));
            return resp;
        }
    }

    // A stream's request may ask for it by its `Accept` header.
    let accepts_stream = r.stream.is_some_and(|st| {
        req.headers()
            .get_all(hyper::header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.contains(st.format.content_type()))
    });
    let body = if r.validate.is_some() || r.stream.is_some() {
        match Limited::new(req.into_body(), 1 << 20).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => return json(StatusCode::BAD_REQUEST, r#"{"error":"unreadable body"}"#),
        }
    } else {
        Bytes::new()
    };
    let parsed = || serde_json::from_slice::<serde_json::Value>(&body).ok();
    if let Some(v) = &r.validate {
        let ok = parsed()
            .and_then(|j| {
                j.get(&v.json_string)
                    .and_then(|f| f.as_str())
                    .map(|s| s.chars().count())
            })
            .is_some_and(|len| v.max_len.is_none_or(|m| len <= m));
        if !ok {
            let msg = format!(
                r#"{{"error":"body must be JSON with a string field \"{}\""}}"#,
                v.json_string
            );
            return json(StatusCode::BAD_REQUEST, msg);
        }
    }

    if let Some(st) = r.stream {
        let asked = || {
            accepts_stream
                || parsed().is_some_and(|j| j.get("stream") == Some(&serde_json::Value::Bool(true)))
        };
        if !st.asked_only || asked() {
            return streamed(state, i, st, arrived, &body);
        }
    }

    if let Some(cap) = r.capacity_rps {
        let service = Duration::from_secs_f64(1.0 / f64::from(cap));
        let done = {
            let mut free = state.free_at[i].lock().unwrap_or_else(|p| p.into_inner());
            *free = (*free).max(std::time::Instant::now()) + service;
            *free
        };
        tokio::time::sleep_until(done.into()).await;
    }

    let (delay, fail) = {
        let mut rng = rand::thread_rng();
        (
            r.latency.sample(&mut rng),
            rand::Rng::gen_bool(&mut rng, r.error_rate),
        )
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }

    if let Some(unhealthy_for) = r.unhealthy_for {
        let degraded = state.started.elapsed() < unhealthy_for;
        let (status, text) = if degraded {
            (StatusCode::SERVICE_UNAVAILABLE, "degraded")
        } else {
            (StatusCode::OK, "healthy")
        };
        let body = format!(
            r#"{{"status":"{text}","services":{{"database":"{db}","redis":"connected","intelligence":"ok"}},"version":"{v}"}}"#,
            db = if degraded { "error" } else { "connected" },
            v = env!("CARGO_PKG_VERSION"),
        );
        return json(status, body);
    }
    if fail {
        let status =
            StatusCode::from_u16(r.error_status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return json(status, r#"{"error":"injected failure"}"#);
    }
    json(StatusCode::OK, r.response.clone())
}

/// A streamed answer of route `i`: an injected error (the route's `error_rate`) at once,
/// otherwise the head at once and the tokens over time.
fn streamed(
    state: &State,
    i: usize,
    spec: crate::Stream,
    arrived: Instant,
    request_body: &[u8],
) -> Response<Body> {
    let r = &state.profile.routes[i];
    if rand::Rng::gen_bool(&mut rand::thread_rng(), r.error_rate) {
        let status =
            StatusCode::from_u16(r.error_status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return json(status, r#"{"error":"injected failure"}"#);
    }
    let id = state.streams.fetch_add(1, Ordering::Relaxed);
    let body = crate::stream::start(
        spec,
        arrived,
        state.slots[i].as_ref(),
        id,
        crate::stream::prompt_tokens(request_body),
    );
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", spec.format.content_type())
        .header("cache-control", "no-cache")
        .body(Body::Stream(body))
        .expect("static response parts are valid")
}

/// Shows the type only: its parts are connections, sockets and encoded requests (whose
/// headers may hold secrets), nothing a log should print.
impl std::fmt::Debug for RunningTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningTarget").finish_non_exhaustive()
    }
}
