//! HTTP: this worker's connections, requests prepared once per endpoint, one request's
//! execution, and the classification of what came back.
//!
//! The connections are hyper's own (`hyper::client::conn`), kept by the worker rather
//! than by hyper-util's pooled client: a worker talks to one origin from one thread, so
//! the pool is a stack of idle HTTP/1.1 connections and at most one HTTP/2 connection,
//! with no hashing, locking or boxing per request (it was a quarter of the client's
//! instructions per request).

use std::cell::RefCell;
use std::error::Error as StdError;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, HOST};
use http::uri::{Authority, Scheme};
use http::{Method, Request, Response, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::client::legacy::connect::{Connection as _, HttpConnector};
use hyper_util::rt::TokioExecutor;
use loadgate_metrics::{Outcome, Sample};
use loadgate_scenario::{Checks, Endpoint, HttpVersion, JsonExpect, RenderCtx, Scenario, Template};
use rand::rngs::SmallRng;
use tower_service::Service as _;

use crate::EngineError;
use hyper_rustls::ConfigBuilderExt as _;

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;
type Body = Full<Bytes>;
type BoxError = Box<dyn StdError + Send + Sync>;

/// One worker's connections: HTTP/1.1 and HTTP/2, over TCP or TLS. Not `Sync`; each
/// worker thread has its own.
pub struct HttpClient {
    connector: Connector,
    http: HttpVersion,
    pools: RefCell<Vec<Pool>>,
}

/// The connections to one origin.
struct Pool {
    scheme: Scheme,
    authority: Authority,
    /// Idle HTTP/1.1 connections, most recently used last.
    idle: Vec<http1::SendRequest<Body>>,
    /// The HTTP/2 connection, shared by every request.
    h2: Option<http2::SendRequest<Body>>,
}

enum Conn {
    H1(http1::SendRequest<Body>),
    H2(http2::SendRequest<Body>),
}

/// Where requests go, and the `Host` header an HTTP/1.1 request to it carries.
#[derive(Debug, Clone)]
pub struct Origin {
    scheme: Scheme,
    authority: Authority,
    host: HeaderValue,
}

impl Origin {
    /// The origin of an absolute URI.
    pub fn of(uri: &Uri) -> Result<Origin, String> {
        let scheme = uri.scheme().cloned().ok_or("the URL has no scheme")?;
        let authority = uri.authority().cloned().ok_or("the URL has no host")?;
        let host = HeaderValue::from_str(authority.as_str()).map_err(|e| e.to_string())?;
        Ok(Origin {
            scheme,
            authority,
            host,
        })
    }
}

/// An HTTP/1.1 connection on loan to one request: back to the pool once its response
/// has been read to the end; closed if the request is dropped half way.
pub struct Lease {
    pool: usize,
    conn: Option<http1::SendRequest<Body>>,
}

/// Why a request got no response.
#[derive(Debug)]
pub enum SendError {
    /// No connection: refused, unreachable, TLS handshake failed, connect timeout.
    Connect(BoxError),
    /// The connection failed while the request was sent or the response head read.
    Http(hyper::Error),
}

impl SendError {
    fn outcome(&self) -> Outcome {
        match self {
            SendError::Connect(_) => Outcome::ConnectError,
            SendError::Http(e) => classify(e),
        }
    }

    fn source_error(&self) -> &(dyn StdError + 'static) {
        match self {
            SendError::Connect(e) => &**e,
            SendError::Http(e) => e,
        }
    }
}

/// How to connect.
#[derive(Debug, Clone, Copy)]
pub struct ClientOptions {
    /// TCP + TLS connect timeout.
    pub connect_timeout: Duration,
    /// HTTP versions.
    pub http: HttpVersion,
    /// Skip TLS certificate verification.
    pub insecure: bool,
}

impl HttpClient {
    /// Builds a client. Connections are made on first use, inside a tokio runtime.
    pub fn new(opts: ClientOptions) -> Result<HttpClient, EngineError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| EngineError::Tls(e.to_string()))?;
        let tls = if opts.insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
                .with_no_client_auth()
        } else {
            builder.with_webpki_roots().with_no_client_auth()
        };
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(opts.connect_timeout));
        http.set_nodelay(true);
        http.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http();
        // Over TLS, ALPN offers what the version setting allows; over plain TCP,
        // `h2` means HTTP/2 with prior knowledge (h2c).
        let connector = match opts.http {
            HttpVersion::Http1 => connector.enable_http1().wrap_connector(http),
            HttpVersion::Http2 => connector.enable_http2().wrap_connector(http),
            HttpVersion::Auto => connector.enable_all_versions().wrap_connector(http),
        };
        Ok(HttpClient {
            connector,
            http: opts.http,
            pools: RefCell::new(Vec::new()),
        })
    }

    /// Sends `req` (origin-form URI, `Host` header set) to `origin`: on an idle
    /// connection if there is one, else on a new one. A request that an idle connection
    /// closed by the server could not take is sent again on another; one that was
    /// written is never sent twice.
    pub async fn send(
        &self,
        origin: &Origin,
        mut req: Request<Body>,
    ) -> Result<(Response<Incoming>, Lease), SendError> {
        let pool = self.pool_of(origin);
        let mut absolute = false;
        loop {
            let (conn, pooled) = match self.checkout(pool) {
                Some(conn) => (conn, true),
                None => (self.connect(pool, origin).await?, false),
            };
            let result = match conn {
                Conn::H1(mut sender) => {
                    if let Err(e) = sender.ready().await {
                        if pooled {
                            continue;
                        }
                        return Err(SendError::Http(e));
                    }
                    match sender.try_send_request(req).await {
                        Ok(resp) => {
                            return Ok((
                                resp,
                                Lease {
                                    pool,
                                    conn: Some(sender),
                                },
                            ))
                        }
                        Err(e) => e,
                    }
                }
                Conn::H2(mut sender) => {
                    if !absolute {
                        // HTTP/2 carries scheme and authority as pseudo-headers.
                        absolute = true;
                        let mut parts = std::mem::take(req.uri_mut()).into_parts();
                        parts.scheme = Some(origin.scheme.clone());
                        parts.authority = Some(origin.authority.clone());
                        *req.uri_mut() = Uri::from_parts(parts).expect("origin-form plus origin");
                        if req.headers().get(HOST) == Some(&origin.host) {
                            req.headers_mut().remove(HOST);
                        }
                    }
                    match sender.try_send_request(req).await {
                        Ok(resp) => return Ok((resp, Lease { pool, conn: None })),
                        Err(e) => {
                            self.pools.borrow_mut()[pool].h2 = None;
                            e
                        }
                    }
                }
            };
            let mut failed = result;
            match failed.take_message() {
                Some(unsent) if pooled => req = unsent,
                _ => return Err(SendError::Http(failed.into_error())),
            }
        }
    }

    /// One GET of `uri` within `timeout`: the status, or what went wrong.
    pub async fn probe(&self, uri: Uri, timeout: Duration) -> Result<u16, ProbeError> {
        let origin = Origin::of(&uri).map_err(|e| ProbeError {
            outcome: Outcome::CheckFailed,
            tls: None,
            detail: e,
        })?;
        let path = uri
            .path_and_query()
            .map_or_else(|| Uri::from_static("/"), |p| Uri::from(p.clone()));
        let mut req = Request::get(path)
            .body(Full::new(Bytes::new()))
            .map_err(|e| ProbeError::of(Outcome::CheckFailed, &e))?;
        req.headers_mut().insert(HOST, origin.host.clone());
        let fut = async {
            let (resp, lease) = self
                .send(&origin, req)
                .await
                .map_err(|e| ProbeError::of(e.outcome(), e.source_error()))?;
            let status = resp.status().as_u16();
            resp.into_body()
                .collect()
                .await
                .map_err(|e| ProbeError::of(classify(&e), &e))?;
            self.release(lease);
            Ok(status)
        };
        tokio::time::timeout(timeout, fut)
            .await
            .unwrap_or_else(|_| {
                Err(ProbeError {
                    outcome: Outcome::Timeout,
                    tls: None,
                    detail: "no answer in time".into(),
                })
            })
    }

    /// Returns a connection whose response was read to the end.
    pub fn release(&self, lease: Lease) {
        if let Some(conn) = lease.conn {
            if !conn.is_closed() {
                self.pools.borrow_mut()[lease.pool].idle.push(conn);
            }
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
        });
        pools.len() - 1
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
        while let Some(conn) = p.idle.pop() {
            if !conn.is_closed() {
                return Some(Conn::H1(conn));
            }
        }
        None
    }

    async fn connect(&self, pool: usize, origin: &Origin) -> Result<Conn, SendError> {
        let uri = Uri::builder()
            .scheme(origin.scheme.clone())
            .authority(origin.authority.clone())
            .path_and_query("/")
            .build()
            .map_err(|e| SendError::Connect(e.into()))?;
        let mut connector = self.connector.clone();
        let io = connector.call(uri).await.map_err(SendError::Connect)?;
        let h2 = match self.http {
            HttpVersion::Http1 => false,
            HttpVersion::Http2 => true,
            HttpVersion::Auto => io.connected().is_negotiated_h2(),
        };
        if h2 {
            let (sender, conn) = http2::handshake(TokioExecutor::new(), io)
                .await
                .map_err(SendError::Http)?;
            tokio::spawn(conn);
            self.pools.borrow_mut()[pool]
                .h2
                .get_or_insert_with(|| sender.clone());
            Ok(Conn::H2(sender))
        } else {
            let (sender, conn) = http1::handshake(io).await.map_err(SendError::Http)?;
            tokio::spawn(conn);
            Ok(Conn::H1(sender))
        }
    }
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
/// (which `source()` does not show): tokio-rustls and hyper-rustls nest two of them.
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

/// An endpoint with everything that does not change per request parsed once. Requests
/// are built in origin form (`/path?query`) with a `Host` header, as HTTP/1.1 sends
/// them; [`HttpClient::send`] makes them absolute for HTTP/2.
pub struct Prepared {
    method: Method,
    origin: Origin,
    /// The base URL's path, without a trailing slash, put before every path.
    prefix: String,
    path: Template,
    static_uri: Option<Uri>,
    headers: Vec<(HeaderName, HeaderPart)>,
    body: Option<Template>,
    static_body: Option<Bytes>,
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
        let static_uri = if e.path.is_static() {
            let mut s = prefix.clone().into_bytes();
            s.extend_from_slice(&render_static(&e.path));
            Some(Uri::try_from(s).map_err(|err| bad(format!("invalid URL: {err}")))?)
        } else {
            None
        };
        let mut headers = Vec::new();
        if !e
            .headers
            .iter()
            .any(|h| h.name.eq_ignore_ascii_case("host"))
        {
            headers.push((HOST, HeaderPart::Static(origin.host.clone())));
        }
        for h in &e.headers {
            let name = HeaderName::from_bytes(h.name.as_bytes())
                .map_err(|_| bad(format!("invalid header name {}", h.name)))?;
            let part = if h.value.is_static() {
                let v = render_static(&h.value);
                // Never echo the value: it may be a secret.
                let mut value = HeaderValue::from_bytes(&v)
                    .map_err(|_| bad(format!("invalid value for header {}", h.name)))?;
                value.set_sensitive(h.secret);
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
        Ok(Prepared {
            method,
            origin,
            prefix,
            path: e.path.clone(),
            static_uri,
            headers,
            body: e.body.clone(),
            static_body,
            checks: e.checks.clone(),
            uses_row,
            max_body,
        })
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
    ) -> Result<Request<Body>, InvalidRequest> {
        let uri = match &self.static_uri {
            Some(u) => u.clone(),
            None => {
                scratch.clear();
                scratch.extend_from_slice(self.prefix.as_bytes());
                self.path.render(ctx, scratch);
                Uri::try_from(scratch.as_slice()).map_err(|_| InvalidRequest)?
            }
        };
        let body = match (&self.static_body, &self.body) {
            (Some(b), _) => b.clone(),
            (None, Some(t)) => {
                let mut v = Vec::with_capacity(256);
                t.render(ctx, &mut v);
                Bytes::from(v)
            }
            (None, None) => Bytes::new(),
        };
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = uri;
        let h = req.headers_mut();
        h.reserve(self.headers.len());
        for (name, part) in &self.headers {
            match part {
                HeaderPart::Static(v) => {
                    h.append(name.clone(), v.clone());
                }
                HeaderPart::Dynamic(t) => {
                    scratch.clear();
                    t.render(ctx, scratch);
                    h.append(
                        name.clone(),
                        HeaderValue::from_bytes(scratch).map_err(|_| InvalidRequest)?,
                    );
                }
            }
        }
        Ok(req)
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

/// Sends `req`, reads the whole response within `timeout`, and classifies the result.
/// `intended` is when the request should have been sent (open model) or `sent`.
pub async fn execute(
    client: &HttpClient,
    endpoint: usize,
    prepared: &Prepared,
    req: Request<Body>,
    intended: Instant,
    timeout: Duration,
) -> Sample {
    let sent = Instant::now();
    let needs_body = prepared.checks.needs_body();
    let result = tokio::time::timeout(timeout, async {
        let (resp, lease) = client
            .send(&prepared.origin, req)
            .await
            .map_err(|e| e.outcome())?;
        let status = resp.status().as_u16();
        let mut body = resp.into_body();
        let mut kept = Vec::new();
        let mut bytes = 0u64;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| classify(&e))?;
            if let Some(data) = frame.data_ref() {
                bytes += data.len() as u64;
                if needs_body && kept.len() < prepared.max_body {
                    let room = prepared.max_body - kept.len();
                    kept.extend_from_slice(&data[..data.len().min(room)]);
                }
            }
        }
        client.release(lease);
        Ok::<_, Outcome>((status, bytes, kept))
    })
    .await;
    let done = Instant::now();
    let (outcome, status, bytes) = match result {
        Err(_elapsed) => (Outcome::Timeout, None, 0),
        Ok(Err(outcome)) => (outcome, None, 0),
        Ok(Ok((status, bytes, body))) => (
            evaluate(&prepared.checks, status, &body),
            Some(status),
            bytes,
        ),
    };
    Sample {
        endpoint,
        latency_us: micros(done.saturating_duration_since(intended)),
        service_us: micros(done.saturating_duration_since(sent)),
        outcome,
        status,
        bytes,
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The outcome class for a response with `status` and (possibly truncated) `body`.
pub fn evaluate(checks: &Checks, status: u16, body: &[u8]) -> Outcome {
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
pub fn classify(err: &(dyn StdError + 'static)) -> Outcome {
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

#[cfg(test)]
mod tests {
    use super::*;
    use loadgate_scenario::JsonCheck;

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
}
