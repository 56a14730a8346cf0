//! Requests encoded once: an endpoint with everything that does not change per request
//! rendered ahead ([`Prepared`]), and one request as HTTP/1.1 bytes ([`Built`]), which
//! HTTP/2 reads back (`h2.rs`) so both protocols send the same method, path, headers and
//! body.
//!
//! Not here: connections, sending, or what a response means.

use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::uri::PathAndQuery;
use http::{Method, Uri};
use loadgate_scenario::{Checks, Endpoint, GoodLimits, RenderCtx, Scenario, Template};
use rand::rngs::SmallRng;

use crate::client::{Keep, Origin};
use crate::stream::StreamSpec;
use crate::EngineError;

/// The `User-Agent` every request names unless the scenario sets one.
pub const USER_AGENT: &str = concat!("loadgate/", env!("CARGO_PKG_VERSION"));

/// The `Accept-Encoding` sent by default (`compression = true`) unless the scenario sets
/// one: the codings loadgate decodes that browsers offer (`deflate` is decoded too, but
/// not asked for: servers disagree on what it means).
pub const ACCEPT_ENCODING: &str = "gzip, br, zstd";

/// One request, encoded: the HTTP/1.1 request line and headers, and the body.
#[derive(Clone)]
pub struct Built {
    pub(crate) head: Bytes,
    pub(crate) body: Bytes,
    /// HEAD: the response has no body whatever its headers say.
    pub(crate) head_only: bool,
    /// The method may be sent again when the server closed the connection without
    /// reading it (RFC 9112 section 9.3.1, RFC 9113 section 8.7).
    pub(crate) idempotent: bool,
    /// Header names whose values are secret: HTTP/2 never indexes them (HPACK), and a
    /// redirect to another origin leaves them out.
    pub(crate) secret: Arc<[HeaderName]>,
    /// The body holds a value from the environment or a flow's captured variable: a
    /// 307 or 308 never takes it to another origin.
    pub(crate) secret_body: bool,
}

impl Built {
    /// A bodiless GET of `path` (origin form) on `origin`.
    pub(crate) fn get(origin: &Origin, path: &str) -> Built {
        let mut head = Vec::with_capacity(64 + path.len());
        head.extend_from_slice(b"GET ");
        head.extend_from_slice(path.as_bytes());
        head.extend_from_slice(b" HTTP/1.1\r\nhost: ");
        head.extend_from_slice(origin.authority.as_str().as_bytes());
        head.extend_from_slice(b"\r\nuser-agent: ");
        head.extend_from_slice(USER_AGENT.as_bytes());
        head.extend_from_slice(b"\r\n\r\n");
        Built {
            head: head.into(),
            body: Bytes::new(),
            head_only: false,
            idempotent: true,
            secret: Arc::new([]),
            secret_body: false,
        }
    }
}

impl Built {
    /// The request that follows a `status` redirect from `from` to `to`'s `path`
    /// (origin form): 303, and 301 or 302 after a POST, become a GET without a body (as
    /// browsers and k6 do; HEAD stays HEAD), 307 and 308 keep the method and body. The
    /// `Host` names `to`; on a hop to another origin (scheme, host or port)
    /// `Authorization`, `Cookie` and `Proxy-Authorization` are left out, and so is every
    /// header the scenario holds secret (`X-Api-Key`, `redact_headers`, a value from the
    /// environment or a flow's captured variable: [`Built::secret`]), so a token never
    /// reaches a host it was not written for. `None` when the head cannot be read
    /// back (it was encoded by [`Prepared`], so never).
    pub(crate) fn redirected(
        &self,
        status: u16,
        from: &Origin,
        to: &Origin,
        path: &str,
    ) -> Option<Built> {
        let mut slots = [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; 256];
        let mut parsed = httparse::Request::new(&mut []);
        httparse::ParserConfig::default()
            .parse_request_with_uninit_headers(&mut parsed, &self.head, &mut slots)
            .ok()?;
        let method = parsed.method?;
        let to_get = match status {
            303 => method != "HEAD",
            301 | 302 => method == "POST",
            _ => false,
        };
        let method = if to_get { "GET" } else { method };
        let cross = !from.same(to);
        let mut head = Vec::with_capacity(self.head.len() + path.len());
        head.extend_from_slice(method.as_bytes());
        head.push(b' ');
        head.extend_from_slice(path.as_bytes());
        head.extend_from_slice(b" HTTP/1.1\r\n");
        let named = |h: &httparse::Header<'_>, names: &[&str]| {
            names.iter().any(|n| h.name.eq_ignore_ascii_case(n))
        };
        for h in parsed.headers.iter() {
            let host = named(h, &["host"]);
            let secret = || {
                self.secret
                    .iter()
                    .any(|n| h.name.eq_ignore_ascii_case(n.as_str()))
            };
            let dropped = (cross
                && (named(h, &["authorization", "cookie", "proxy-authorization"]) || secret()))
                || (to_get
                    && named(
                        h,
                        &[
                            "content-length",
                            "content-type",
                            "content-encoding",
                            "transfer-encoding",
                        ],
                    ));
            // To the same origin, the scenario's own Host stays.
            if dropped || (host && cross) {
                continue;
            }
            head.extend_from_slice(h.name.as_bytes());
            head.extend_from_slice(b": ");
            head.extend_from_slice(h.value);
            head.extend_from_slice(b"\r\n");
        }
        if cross {
            head.extend_from_slice(b"host: ");
            head.extend_from_slice(to.authority.as_str().as_bytes());
            head.extend_from_slice(b"\r\n");
        }
        head.extend_from_slice(b"\r\n");
        Some(Built {
            head: head.into(),
            body: if to_get {
                Bytes::new()
            } else {
                self.body.clone()
            },
            head_only: method == "HEAD",
            idempotent: Method::from_bytes(method.as_bytes()).is_ok_and(|m| m.is_idempotent()),
            secret: self.secret.clone(),
            secret_body: self.secret_body && !to_get,
        })
    }

    /// This request with the cookies of a jar (`jar`, a `Cookie` header value) sent.
    /// `own`: whether a `Cookie` header already in the head is the scenario's own,
    /// kept with the jar's cookies of other names after its own (as k6 merges: the
    /// scenario's value wins for a name in both); else (a redirect's hop, which carries
    /// the previous request's jar cookies) it is replaced by the jar's. A request with
    /// neither is returned as it is.
    pub(crate) fn with_cookies(&self, jar: Option<&str>, own: bool) -> Built {
        let head = &self.head[..];
        let end = head.len().saturating_sub(2);
        let mut at = 0;
        let mut found: Option<(usize, usize)> = None;
        while at < end {
            let stop = memchr::memmem::find(&head[at..], b"\r\n").map_or(end, |i| at + i);
            if at > 0 && stop - at > 7 && head[at..at + 7].eq_ignore_ascii_case(b"cookie:") {
                found = Some((at, stop + 2));
            }
            at = stop + 2;
        }
        let value = match (found, jar) {
            (None, None) => return self.clone(),
            (None, Some(j)) => j.to_string(),
            (Some(_), None) if own => return self.clone(),
            (Some(_), None) => String::new(),
            (Some((from, to)), Some(j)) if own => {
                let mine = String::from_utf8_lossy(&head[from + 7..to - 2])
                    .trim()
                    .to_string();
                let names: Vec<&str> = mine
                    .split(';')
                    .filter_map(|p| p.split('=').next())
                    .map(str::trim)
                    .collect();
                let mut v = mine.clone();
                for pair in j.split("; ") {
                    let name = pair.split('=').next().unwrap_or("");
                    if !names.contains(&name) {
                        v.push_str("; ");
                        v.push_str(pair);
                    }
                }
                v
            }
            (Some(_), Some(j)) => j.to_string(),
        };
        let mut out = Vec::with_capacity(head.len() + value.len() + 10);
        match found {
            Some((from, to)) => {
                out.extend_from_slice(&head[..from]);
                if !value.is_empty() {
                    out.extend_from_slice(b"cookie: ");
                    out.extend_from_slice(value.as_bytes());
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(&head[to..]);
            }
            None => {
                out.extend_from_slice(&head[..end]);
                out.extend_from_slice(b"cookie: ");
                out.extend_from_slice(value.as_bytes());
                out.extend_from_slice(b"\r\n\r\n");
            }
        }
        Built {
            head: out.into(),
            ..self.clone()
        }
    }

    /// This request with header `name: value` added (`[auth]`'s token); the caller
    /// made sure the value is one a header can hold.
    pub(crate) fn with_header(&self, name: &str, value: &str) -> Built {
        let end = self.head.len().saturating_sub(2);
        let mut out = Vec::with_capacity(self.head.len() + name.len() + value.len() + 4);
        out.extend_from_slice(&self.head[..end]);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n\r\n");
        Built {
            head: out.into(),
            ..self.clone()
        }
    }

    /// The path (origin form) of the request line.
    pub(crate) fn path(&self) -> &[u8] {
        let line = self.head.split(|&b| b == b'\r').next().unwrap_or_default();
        let mut parts = line.splitn(3, |&b| b == b' ');
        parts.nth(1).unwrap_or(b"/")
    }
}

/// Shows the type only: its head may hold secret header values.
impl std::fmt::Debug for Built {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Built").finish_non_exhaustive()
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
    /// Its body holds a secret (see [`Built::secret_body`]).
    secret_body: bool,
    checks: Checks,
    uses_row: bool,
    /// Most body bytes kept for checks.
    max_body: usize,
    /// Whether each response's headers are kept ([`Prepared::keep_response_headers`]).
    keep_headers: bool,
    /// Whether each response's body is kept, up to `max_body`, though no check reads
    /// it ([`Prepared::keep_body`]).
    keep_body: bool,
    /// How a streamed response is read (`stream = "sse"`).
    stream: Option<StreamSpec>,
    /// The endpoint's `first_byte_timeout` and `idle_timeout`.
    watch: Watch,
    /// The whole request's limit (the endpoint's `timeout`).
    timeout: Duration,
    /// What a success must meet to count toward goodput.
    goodput: GoodLimits,
    /// The most redirects a request follows (0: a 3xx is the answer).
    redirects: u8,
    /// Whether the endpoint writes its own `Cookie` header (merged with a jar's).
    own_cookie: bool,
}

/// The timeouts within a request: for its first body byte, and for each gap once the
/// response began.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Watch {
    /// From the send to the first token of a stream, or the first byte of the body of
    /// an endpoint that does not stream (or the end of a response without one).
    pub first_byte: Option<Duration>,
    /// The longest silence once the response began: its first token (or body byte)
    /// when `first_byte` is set, else its head.
    pub idle: Option<Duration>,
}

impl Watch {
    /// Whether there is anything to watch.
    pub fn is_set(&self) -> bool {
        self.first_byte.is_some() || self.idle.is_some()
    }
}

impl Prepared {
    /// Prepares every endpoint of `scenario`: each against its own `base` when it has
    /// one, else against `base` (the target: scheme://authority[/prefix]).
    pub fn all(scenario: &Scenario, base: &str) -> Result<Vec<Prepared>, EngineError> {
        scenario
            .endpoints
            .iter()
            .map(|e| Prepared::of(scenario, e, base))
            .collect()
    }

    /// Prepares `e`, one of `scenario`'s requests (an endpoint, or `[auth]`'s), against
    /// its own `base` or `base`. One that carries `[auth]`'s token keeps its header
    /// secret (never indexed, never taken to another origin).
    pub fn of(scenario: &Scenario, e: &Endpoint, base: &str) -> Result<Prepared, EngineError> {
        let base = match &e.base {
            Some(own) => loadgate_scenario::without_credentials(own),
            None => base.to_string(),
        };
        let mut p = Prepared::new(e, &base, scenario.max_body)?;
        if let Some(a) = scenario.auth.as_ref().filter(|_| e.auth) {
            let name =
                HeaderName::from_bytes(a.header.as_bytes()).map_err(|_| EngineError::Request {
                    endpoint: e.name.clone(),
                    message: format!("invalid [auth] header name {}", a.header),
                })?;
            let mut secret = p.secret.to_vec();
            secret.push(name);
            p.secret = secret.into();
        }
        Ok(p)
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
        let named = |n: &str| e.headers.iter().any(|h| h.name.eq_ignore_ascii_case(n));
        if !named("user-agent") {
            headers.push((
                http::header::USER_AGENT,
                HeaderPart::Static(HeaderValue::from_static(USER_AGENT)),
            ));
        }
        if e.compression && !named("accept-encoding") {
            headers.push((
                http::header::ACCEPT_ENCODING,
                HeaderPart::Static(HeaderValue::from_static(ACCEPT_ENCODING)),
            ));
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
            secret_body: e.body_secret
                || e.body.as_ref().is_some_and(|b| b.vars().next().is_some()),
            checks: e.checks.clone(),
            uses_row,
            max_body,
            keep_headers: false,
            keep_body: false,
            stream: e.stream.as_ref().map(StreamSpec::of),
            watch: Watch {
                first_byte: e.first_byte_timeout,
                idle: e.idle_timeout,
            },
            timeout: e.timeout,
            goodput: e.goodput,
            redirects: e.redirects,
            own_cookie: named("cookie"),
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
                vars: &[],
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

    /// How its responses are read as streams, if they are.
    pub fn stream(&self) -> Option<&StreamSpec> {
        self.stream.as_ref()
    }

    /// Its timeouts within a request.
    pub fn watch(&self) -> Watch {
        self.watch
    }

    /// The whole request's limit, from its send to the end of its body.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// What a success must meet to count toward goodput.
    pub fn goodput(&self) -> &GoodLimits {
        &self.goodput
    }

    /// Keeps every response's headers in its [`Response`](crate::Response), for a step
    /// that reads one. Off by default: HTTP/1.1 answers are read without a header map,
    /// and building one costs allocations on every request.
    pub fn keep_response_headers(&mut self) {
        self.keep_headers = true;
    }

    /// Keeps every response's body (up to `max_body`, decoded), for a flow's step that
    /// captures from it.
    pub fn keep_body(&mut self) {
        self.keep_body = true;
    }

    /// What of a response to keep: the body up to `max_body` when a check reads it, the
    /// headers when asked for; a body with a `Content-Encoding` is decoded when a check
    /// or the stream reader reads it (and only then: decoding costs the generator CPU).
    pub(crate) fn keep(&self) -> Keep {
        let body = self.checks.needs_body() || self.keep_body;
        Keep {
            body: if body { self.max_body } else { 0 },
            headers: self.keep_headers,
            decode: body || self.stream.is_some(),
            follow: self.redirects > 0,
        }
    }

    /// Whether the endpoint writes its own `Cookie` header.
    pub(crate) fn own_cookie(&self) -> bool {
        self.own_cookie
    }

    /// The most redirects a request follows before its answer.
    pub fn redirects(&self) -> u8 {
        self.redirects
    }

    /// The checks a response must pass to be a success.
    pub(crate) fn checks(&self) -> &Checks {
        &self.checks
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
            secret_body: self.secret_body,
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
                    if !header_value_ok(&out[at..]) {
                        return Err(InvalidRequest);
                    }
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

/// Whether `value` can be a header's value, as `HeaderValue::from_bytes` decides (a
/// tab, or visible and high bytes, nothing below a space and no DEL), without the copy
/// it makes of every rendered value.
fn header_value_ok(value: &[u8]) -> bool {
    // No early return, so the loop vectorizes (as http's own).
    let mut bad = false;
    for &b in value {
        bad |= !(b >= 32 && b != 127 || b == b'\t');
    }
    !bad
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
            vars: &[],
        },
        &mut out,
    );
    out
}

/// Shows the type only: its parts are encoded requests (whose headers may hold
/// secrets), nothing a log should print.
impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    /// The check that replaced `HeaderValue::from_bytes` on every rendered header
    /// refuses exactly what it refuses, byte by byte.
    #[test]
    fn a_rendered_header_value_is_refused_as_http_refuses_it() {
        for b in 0..=255u8 {
            let value = [b'a', b, b'z'];
            assert_eq!(
                super::header_value_ok(&value),
                http::HeaderValue::from_bytes(&value).is_ok(),
                "byte {b}"
            );
        }
        assert!(super::header_value_ok(b""));
    }
}
