//! HTTP: the pooled hyper client, requests prepared once per endpoint, one request's
//! execution, and the classification of what came back.

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use loadgate_metrics::{Outcome, Sample};
use loadgate_scenario::{Checks, Endpoint, HttpVersion, JsonExpect, RenderCtx, Scenario, Template};
use rand::rngs::SmallRng;

use crate::EngineError;
use hyper_rustls::ConfigBuilderExt as _;

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// A pooled HTTP/1.1 + HTTP/2 client (one per worker, so pools are not shared).
#[derive(Clone)]
pub struct HttpClient {
    inner: Client<Connector, Full<Bytes>>,
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
    /// Builds a client. Must be called inside a tokio runtime context.
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
        let connector = match opts.http {
            HttpVersion::Http1 => connector.enable_http1().wrap_connector(http),
            HttpVersion::Http2 => connector.enable_http2().wrap_connector(http),
            HttpVersion::Auto => connector.enable_all_versions().wrap_connector(http),
        };
        let mut b = Client::builder(TokioExecutor::new());
        b.pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(usize::MAX);
        if opts.http == HttpVersion::Http2 {
            // h2c with prior knowledge over plain TCP; ALPN h2 over TLS.
            b.http2_only(true);
        }
        Ok(HttpClient {
            inner: b.build(connector),
        })
    }

    /// One GET of `uri` within `timeout`: the status, or what went wrong.
    pub async fn probe(&self, uri: Uri, timeout: Duration) -> Result<u16, ProbeError> {
        let req = Request::get(uri)
            .body(Full::new(Bytes::new()))
            .map_err(|e| ProbeError::of(Outcome::CheckFailed, &e))?;
        let fut = async {
            let resp = self
                .inner
                .request(req)
                .await
                .map_err(|e| ProbeError::of(classify(&e), &e))?;
            let status = resp.status().as_u16();
            resp.into_body()
                .collect()
                .await
                .map_err(|e| ProbeError::of(classify(&e), &e))?;
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

/// An endpoint with everything that does not change per request parsed once.
pub struct Prepared {
    method: Method,
    base: String,
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
        let base = base.trim_end_matches('/').to_string();
        let static_uri = if e.path.is_static() {
            let mut s = base.clone().into_bytes();
            s.extend_from_slice(&render_static(&e.path));
            Some(Uri::try_from(s).map_err(|err| bad(format!("invalid URL: {err}")))?)
        } else {
            None
        };
        let mut headers = Vec::new();
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
            base,
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

    /// Renders one request. A rendering that yields an invalid URL or header is returned
    /// as `Err` and counted as a check failure by the caller.
    pub fn build(
        &self,
        ctx: &mut RenderCtx<'_, SmallRng>,
        scratch: &mut Vec<u8>,
    ) -> Result<Request<Full<Bytes>>, InvalidRequest> {
        let uri = match &self.static_uri {
            Some(u) => u.clone(),
            None => {
                scratch.clear();
                scratch.extend_from_slice(self.base.as_bytes());
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
        let mut req = Request::builder()
            .method(self.method.clone())
            .uri(uri)
            .body(Full::new(body))
            .map_err(|_| InvalidRequest)?;
        let h = req.headers_mut();
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
    req: Request<Full<Bytes>>,
    intended: Instant,
    timeout: Duration,
) -> Sample {
    let sent = Instant::now();
    let needs_body = prepared.checks.needs_body();
    let result = tokio::time::timeout(timeout, async {
        let resp = client.inner.request(req).await.map_err(|e| classify(&e))?;
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
    if let Some(e) = err.downcast_ref::<hyper_util::client::legacy::Error>() {
        if e.is_connect() {
            return Outcome::ConnectError;
        }
    }
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
