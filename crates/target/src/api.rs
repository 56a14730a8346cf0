//! The built-in routes for user journeys, served beside the profile's routes (which win
//! on the same method and path): a login issuing expiring JWTs, signed session cookies,
//! httpbin-like cookie and redirect helpers and a request echo, jobs that are pending
//! for a while then done, compressed bodies, and the checks in front of every route:
//! paths that need a bearer token (`[auth] protect`) and per-user rate limits
//! (`[rate_limit]`).
//!
//! Nothing here grows with requests: tokens, sessions and job ids are signed and carry
//! their own state (`tokens.rs`), rate limits live in fixed-size tables (`limit.rs`),
//! compressed bodies are encoded once at start-up. Not here: the profile's routes, the
//! stall, TLS (`server.rs`).

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};

use crate::limit::{retry_after, Limiter};
use crate::server::{json, Body};
use crate::tokens::{Keys, Rejected};
use crate::Profile;

/// The session cookie's name.
pub(crate) const SESSION_COOKIE: &str = "lg_session";

/// The longest redirect chain `/redirect/<n>` serves.
pub(crate) const MAX_REDIRECTS: u32 = 100;

/// The longest request body a built-in route reads.
const MAX_BODY: usize = 64 << 10;

/// The longest user name a login takes (it travels in every token and cookie).
const MAX_USER: usize = 256;

/// What the built-in routes keep: the signing key, the rate limits' tables, the
/// compressed bodies, the jobs' serial numbers.
pub(crate) struct Api {
    keys: Keys,
    started: Instant,
    limiters: Vec<Limiter>,
    compressed: Compressed,
    jobs: AtomicU64,
}

impl Api {
    pub(crate) fn new(profile: &Profile, started: Instant) -> std::io::Result<Api> {
        Ok(Api {
            keys: Keys::new()?,
            started,
            limiters: profile
                .rate_limits
                .iter()
                .map(|l| Limiter::new(l.clone(), started))
                .collect(),
            compressed: Compressed::new()?,
            jobs: AtomicU64::new(0),
        })
    }
}

/// The checks every request passes before any route: a protected path's bearer token
/// (401), then the rate limits (429). `None`: go on to the route.
pub(crate) fn gate(
    api: &Api,
    profile: &Profile,
    req: &Request<Incoming>,
    peer: SocketAddr,
) -> Option<Response<Body>> {
    let path = req.uri().path();
    // Read the clock only for a request a check applies to: most have none.
    if profile.auth.protects(path) {
        if let Err(why) = bearer(api, req.headers(), SystemTime::now()) {
            return Some(unauthorized(why));
        }
    }
    let method = req.method().as_str();
    let mut applying = api
        .limiters
        .iter()
        .filter(|l| l.limit.applies(method, path))
        .peekable();
    applying.peek()?;
    let user = user(api, req.headers(), peer, SystemTime::now());
    for limiter in applying {
        if let Err(wait) = limiter.check(&user, Instant::now()) {
            let secs = retry_after(wait);
            let mut resp = json(
                StatusCode::TOO_MANY_REQUESTS,
                json!({
                    "error": "rate limit exceeded",
                    "limit": limiter.limit.per_user,
                    "per_s": limiter.limit.per.as_secs(),
                    "retry_after_s": secs,
                })
                .to_string(),
            );
            resp.headers_mut()
                .insert("retry-after", HeaderValue::from(secs));
            return Some(resp);
        }
    }
    None
}

/// Who a rate limit counts a request against: the bearer token's `sub`, else the
/// session cookie's user, else the client's IP address.
fn user(api: &Api, headers: &HeaderMap, peer: SocketAddr, now: SystemTime) -> String {
    if let Ok(sub) = bearer(api, headers, now) {
        return format!("user:{sub}");
    }
    if let Some(user) =
        cookie(headers, SESSION_COOKIE).and_then(|v| api.keys.check_session(&v, now).ok())
    {
        return format!("user:{user}");
    }
    format!("ip:{}", peer.ip())
}

/// The `sub` of the request's `Authorization: Bearer` token.
fn bearer(api: &Api, headers: &HeaderMap, now: SystemTime) -> Result<String, Rejected> {
    let value = headers
        .get(hyper::header::AUTHORIZATION)
        .ok_or(Rejected::Missing)?;
    let value = value.to_str().map_err(|_| Rejected::Invalid)?.trim();
    let (scheme, token) = value.split_once(' ').ok_or(Rejected::Invalid)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Rejected::Invalid);
    }
    api.keys.check_token(token.trim(), now)
}

/// 401 for a refused bearer token, saying why.
fn unauthorized(why: Rejected) -> Response<Body> {
    let mut resp = json(
        StatusCode::UNAUTHORIZED,
        json!({"error": format!("token {}", why.word())}).to_string(),
    );
    resp.headers_mut().insert(
        hyper::header::WWW_AUTHENTICATE,
        HeaderValue::from_static(r#"Bearer error="invalid_token""#),
    );
    resp
}

/// A JSON error.
fn error(status: StatusCode, message: &str) -> Response<Body> {
    json(status, json!({ "error": message }).to_string())
}

/// 405 for a built-in path asked with another method.
fn not_allowed(allow: &'static str) -> Response<Body> {
    let mut resp = error(
        StatusCode::METHOD_NOT_ALLOWED,
        &format!("method not allowed; use {allow}"),
    );
    resp.headers_mut()
        .insert(hyper::header::ALLOW, HeaderValue::from_static(allow));
    resp
}

/// Serves a built-in route, or `None` when the path is none of them.
pub(crate) async fn serve(
    api: &Api,
    profile: &Profile,
    req: Request<Incoming>,
) -> Option<Response<Body>> {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    // The 405 for a built-in path asked with another method.
    let wrong = |m: Method, allow: &'static str| (method != m).then(|| not_allowed(allow));
    let now = SystemTime::now();
    let resp = match path.as_str() {
        "/api/auth/login" => match wrong(Method::POST, "POST") {
            Some(r) => r,
            None => match credentials(profile, req).await {
                Err(r) => r,
                Ok(user) => {
                    let ttl = profile.auth.token_ttl;
                    json(
                        StatusCode::OK,
                        json!({
                            "token": api.keys.token(&user, ttl, now),
                            "token_type": "Bearer",
                            "expires_in": ttl.as_secs(),
                        })
                        .to_string(),
                    )
                }
            },
        },
        "/api/auth/session" => match wrong(Method::POST, "POST") {
            Some(r) => r,
            None => match credentials(profile, req).await {
                Err(r) => r,
                Ok(user) => {
                    let ttl = profile.auth.token_ttl;
                    let value = api.keys.session(&user, ttl, now);
                    let mut resp = json(
                        StatusCode::OK,
                        json!({"user": user, "expires_in": ttl.as_secs()}).to_string(),
                    );
                    let cookie =
                        format!("{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax");
                    if let Ok(v) = HeaderValue::from_str(&cookie) {
                        resp.headers_mut().append(hyper::header::SET_COOKIE, v);
                    }
                    resp
                }
            },
        },
        "/api/session" => match wrong(Method::GET, "GET") {
            Some(r) => r,
            None => {
                let checked = cookie(req.headers(), SESSION_COOKIE)
                    .ok_or(Rejected::Missing)
                    .and_then(|v| api.keys.check_session(&v, now));
                match checked {
                    Ok(user) => json(StatusCode::OK, json!({ "user": user }).to_string()),
                    Err(why) => error(StatusCode::UNAUTHORIZED, &format!("session {}", why.word())),
                }
            }
        },
        "/api/me" => match wrong(Method::GET, "GET") {
            Some(r) => r,
            None => match bearer(api, req.headers(), now) {
                Ok(sub) => json(StatusCode::OK, json!({ "user": sub }).to_string()),
                Err(why) => unauthorized(why),
            },
        },
        "/api/agent/jobs" => match wrong(Method::POST, "POST") {
            Some(r) => r,
            None => create_job(api, profile, req).await,
        },
        "/cookies" => match wrong(Method::GET, "GET") {
            Some(r) => r,
            None => {
                let all: BTreeMap<String, String> = cookies(req.headers()).into_iter().collect();
                json(StatusCode::OK, json!({ "cookies": all }).to_string())
            }
        },
        "/cookies/set" => match wrong(Method::GET, "GET") {
            Some(r) => r,
            None => set_cookies(&req),
        },
        "/cookies/delete" => match wrong(Method::GET, "GET") {
            Some(r) => r,
            None => delete_cookies(&req),
        },
        "/get" => echo(req).await,
        "/redirect-loop" => redirect(&req, "/redirect-loop".into(), true),
        "/redirect-to" => redirect_to(&req),
        "/compressed" => match wrong(Method::GET, "GET") {
            Some(r) => r,
            None => api.compressed.negotiated(req.headers()),
        },
        p => {
            if let Some(id) = p.strip_prefix("/api/agent/jobs/") {
                match wrong(Method::GET, "GET") {
                    Some(r) => r,
                    None => poll_job(api, id),
                }
            } else if let Some(n) = p.strip_prefix("/redirect/") {
                redirect_n(&req, n)
            } else if let Some(coding) = p.strip_prefix("/compressed/") {
                match wrong(Method::GET, "GET") {
                    Some(r) => r,
                    None => match Coding::ALL.iter().find(|c| c.name() == coding) {
                        Some(c) => api.compressed.encoded(*c, false),
                        None => error(
                            StatusCode::NOT_FOUND,
                            "no such encoding; use gzip, deflate, br or zstd",
                        ),
                    },
                }
            } else {
                return None;
            }
        }
    };
    Some(resp)
}

/// A request body, at most [`MAX_BODY`] bytes.
async fn body(req: Request<Incoming>) -> Result<Bytes, Response<Body>> {
    match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => Ok(b.to_bytes()),
        Err(_) => Err(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body unreadable or over 64 KiB",
        )),
    }
}

/// The user of a login's `{"username": "...", "password": "..."}`: any non-empty user
/// name with the profile's password; else 401 (400 for a body that is not such JSON).
async fn credentials(profile: &Profile, req: Request<Incoming>) -> Result<String, Response<Body>> {
    let body = body(req).await?;
    let shape = r#"body must be JSON {"username": "...", "password": "..."}"#;
    let j: Value =
        serde_json::from_slice(&body).map_err(|_| error(StatusCode::BAD_REQUEST, shape))?;
    let (Some(user), Some(password)) = (j["username"].as_str(), j["password"].as_str()) else {
        return Err(error(StatusCode::BAD_REQUEST, shape));
    };
    if user.len() > MAX_USER {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "username over 256 bytes; use a shorter one",
        ));
    }
    // Both compared whole; the demo password is no secret worth a constant-time compare.
    if user.is_empty() || password != profile.auth.password {
        return Err(error(StatusCode::UNAUTHORIZED, "invalid credentials"));
    }
    Ok(user.to_string())
}

/// `POST /api/agent/jobs` with `{"query": "..."}`: 202 and a job id that says when it
/// was created and how long it takes.
async fn create_job(api: &Api, profile: &Profile, req: Request<Incoming>) -> Response<Body> {
    let body = match body(req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let has_query = serde_json::from_slice::<Value>(&body)
        .ok()
        .is_some_and(|j| j["query"].is_string());
    if !has_query {
        return error(
            StatusCode::BAD_REQUEST,
            r#"body must be JSON with a string field "query""#,
        );
    }
    let time = profile.jobs.time.sample(&mut rand::thread_rng());
    let created = api.started.elapsed().as_millis() as u64;
    let serial = api.jobs.fetch_add(1, Ordering::Relaxed);
    let id = api.keys.job_id(
        created,
        time.as_millis().min(u128::from(u64::MAX / 2)) as u64,
        serial,
    );
    let mut resp = json(
        StatusCode::ACCEPTED,
        json!({"job_id": id, "status": "pending"}).to_string(),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("/api/agent/jobs/{id}")) {
        resp.headers_mut().insert(hyper::header::LOCATION, v);
    }
    resp
}

/// `GET /api/agent/jobs/<id>`: pending until the job's time has passed since its
/// creation, then done; 404 for an id this target did not issue.
fn poll_job(api: &Api, id: &str) -> Response<Body> {
    let Some((created, time)) = api.keys.check_job(id) else {
        return error(StatusCode::NOT_FOUND, "no such job");
    };
    let now = api.started.elapsed().as_millis() as u64;
    if now < created.saturating_add(time) {
        return json(StatusCode::OK, json!({"status": "pending"}).to_string());
    }
    json(
        StatusCode::OK,
        json!({"status": "done", "answer": "You spent $1,240 last month."}).to_string(),
    )
}

/// The request's cookies (every `Cookie` header, HTTP/2 may send several), in order.
fn cookies(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .get_all(hyper::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (!name.trim().is_empty()).then(|| (name.trim().to_string(), value.trim().to_string()))
        })
        .collect()
}

/// The value of the request's cookie `name` (the first one sent).
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    cookies(headers)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
}

/// The request's query parameters, percent-decoded, in order (a key without `=` has an
/// empty value).
fn query(req: &Request<Incoming>) -> Vec<(String, String)> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    req.uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// Whether `name` is a cookie name (an RFC 9110 token).
fn cookie_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Whether `value` is a cookie value (RFC 6265 cookie-octets: no space, quote, comma,
/// semicolon or backslash).
fn cookie_value(value: &str) -> bool {
    value
        .bytes()
        .all(|b| matches!(b, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E))
}

/// `GET /cookies/set?name=value&...`: sets each (`Path=/`) and lists them.
fn set_cookies(req: &Request<Incoming>) -> Response<Body> {
    let pairs = query(req);
    if pairs.is_empty() || pairs.len() > 50 {
        return error(
            StatusCode::BAD_REQUEST,
            "give 1 to 50 cookies to set as a query: /cookies/set?name=value",
        );
    }
    if let Some((n, v)) = pairs
        .iter()
        .find(|(n, v)| !cookie_name(n) || !cookie_value(v))
    {
        return error(
            StatusCode::BAD_REQUEST,
            &format!(
                "cannot set cookie {n:?}={v:?}: a name is a token, a value has no space, quote, comma, semicolon or backslash"
            ),
        );
    }
    let set: BTreeMap<&str, &str> = pairs
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let mut resp = json(StatusCode::OK, json!({ "cookies": set }).to_string());
    for (n, v) in &pairs {
        if let Ok(h) = HeaderValue::from_str(&format!("{n}={v}; Path=/")) {
            resp.headers_mut().append(hyper::header::SET_COOKIE, h);
        }
    }
    resp
}

/// `GET /cookies/delete?name&...`: expires each and lists the request's other cookies.
fn delete_cookies(req: &Request<Incoming>) -> Response<Body> {
    let names: Vec<String> = query(req).into_iter().map(|(n, _)| n).collect();
    if names.is_empty() || names.len() > 50 || !names.iter().all(|n| cookie_name(n)) {
        return error(
            StatusCode::BAD_REQUEST,
            "give 1 to 50 cookie names to delete as a query: /cookies/delete?name",
        );
    }
    let left: BTreeMap<String, String> = cookies(req.headers())
        .into_iter()
        .filter(|(n, _)| !names.contains(n))
        .collect();
    let mut resp = json(StatusCode::OK, json!({ "cookies": left }).to_string());
    for n in &names {
        if let Ok(h) = HeaderValue::from_str(&format!("{n}=; Path=/; Max-Age=0")) {
            resp.headers_mut().append(hyper::header::SET_COOKIE, h);
        }
    }
    resp
}

/// `/get` (any method): the request as JSON, `method`, `url` (path and query), `args`,
/// `headers` (every one, `Authorization` and `Cookie` too: it is the client's own) and
/// `body` (as text).
async fn echo(req: Request<Incoming>) -> Response<Body> {
    let method = req.method().to_string();
    let url = req
        .uri()
        .path_and_query()
        .map_or_else(|| "/get".to_string(), ToString::to_string);
    let args: BTreeMap<String, String> = query(&req).into_iter().collect();
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in req.headers() {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        let join = if name == hyper::header::COOKIE {
            "; "
        } else {
            ", "
        };
        headers
            .entry(name.as_str().to_string())
            .and_modify(|v| {
                v.push_str(join);
                v.push_str(&value);
            })
            .or_insert(value);
    }
    // HTTP/2 carries the host as `:authority`.
    if let Some(authority) = req.uri().authority() {
        headers
            .entry("host".into())
            .or_insert_with(|| authority.to_string());
    }
    let body = match body(req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    json(
        StatusCode::OK,
        json!({
            "method": method,
            "url": url,
            "args": args,
            "headers": headers,
            "body": String::from_utf8_lossy(&body),
        })
        .to_string(),
    )
}

/// The redirect status a request asks for with `?status=` (302 without), or a 400.
fn redirect_status(req: &Request<Incoming>) -> Result<Option<u16>, String> {
    match query(req).into_iter().find(|(k, _)| k == "status") {
        None => Ok(None),
        Some((_, s)) => match s.parse::<u16>() {
            Ok(code @ (301 | 302 | 303 | 307 | 308)) => Ok(Some(code)),
            _ => Err(format!(
                "redirect status {s:?} is not one of 301, 302, 303, 307, 308"
            )),
        },
    }
}

/// A redirect to `location`; with `keep`, the request's `?status=` goes along.
fn redirect(req: &Request<Incoming>, location: String, keep: bool) -> Response<Body> {
    let code = match redirect_status(req) {
        Ok(c) => c,
        Err(message) => return error(StatusCode::BAD_REQUEST, &message),
    };
    let location = match code {
        Some(c) if keep => format!("{location}?status={c}"),
        _ => location,
    };
    moved(code.unwrap_or(302), &location)
}

/// A `status` answer with `Location: location`.
fn moved(status: u16, location: &str) -> Response<Body> {
    let Ok(value) = HeaderValue::from_str(location) else {
        return error(
            StatusCode::BAD_REQUEST,
            "the redirect's url is not a valid header value",
        );
    };
    let mut resp = json(
        StatusCode::from_u16(status).unwrap_or(StatusCode::FOUND),
        json!({ "location": location }).to_string(),
    );
    resp.headers_mut().insert(hyper::header::LOCATION, value);
    resp
}

/// `/redirect/<n>`: to `/redirect/<n-1>`, and from `/redirect/1` to `/get`.
fn redirect_n(req: &Request<Incoming>, n: &str) -> Response<Body> {
    let n = match n.parse::<u32>() {
        Ok(n @ 1..=MAX_REDIRECTS) => n,
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("/redirect/<n> takes n from 1 to {MAX_REDIRECTS}"),
            )
        }
    };
    if n == 1 {
        return redirect(req, "/get".into(), false);
    }
    redirect(req, format!("/redirect/{}", n - 1), true)
}

/// `/redirect-to?url=<url>&status=<code>`: a redirect to any URL.
fn redirect_to(req: &Request<Incoming>) -> Response<Body> {
    match query(req).into_iter().find(|(k, _)| k == "url") {
        Some((_, url)) if !url.is_empty() => redirect(req, url, false),
        _ => error(
            StatusCode::BAD_REQUEST,
            "give the target as a query: /redirect-to?url=/get&status=302",
        ),
    }
}

/// A content coding the compressed routes serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Coding {
    Gzip,
    Deflate,
    Br,
    Zstd,
}

impl Coding {
    const ALL: [Coding; 4] = [Coding::Gzip, Coding::Deflate, Coding::Br, Coding::Zstd];

    fn name(self) -> &'static str {
        match self {
            Coding::Gzip => "gzip",
            Coding::Deflate => "deflate",
            Coding::Br => "br",
            Coding::Zstd => "zstd",
        }
    }
}

/// The compressed routes' bodies, encoded once: for each coding, a JSON document of a
/// few KB that names it, encoded with it; and an identity one.
struct Compressed {
    identity: Bytes,
    encoded: [Bytes; 4],
}

/// The JSON document served encoded with `encoding`.
fn document(encoding: &str) -> String {
    let data: String = (1..=60)
        .map(|i| format!("line {i:02}: the quick brown fox jumps over the lazy dog. "))
        .collect();
    json!({
        "compressed": encoding != "identity",
        "encoding": encoding,
        "data": data,
    })
    .to_string()
}

impl Compressed {
    fn new() -> std::io::Result<Compressed> {
        let encode = |c: Coding| -> std::io::Result<Bytes> {
            let plain = document(c.name());
            let bytes = match c {
                Coding::Gzip => {
                    let mut e =
                        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                    e.write_all(plain.as_bytes())?;
                    e.finish()?
                }
                Coding::Deflate => {
                    let mut e =
                        flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
                    e.write_all(plain.as_bytes())?;
                    e.finish()?
                }
                Coding::Br => {
                    let mut e = brotli::CompressorWriter::new(Vec::new(), 4096, 5, 22);
                    e.write_all(plain.as_bytes())?;
                    e.flush()?;
                    e.into_inner()
                }
                Coding::Zstd => ruzstd::encoding::compress_to_vec(
                    plain.as_bytes(),
                    ruzstd::encoding::CompressionLevel::Fastest,
                ),
            };
            Ok(Bytes::from(bytes))
        };
        Ok(Compressed {
            identity: Bytes::from(document("identity")),
            encoded: [
                encode(Coding::Gzip)?,
                encode(Coding::Deflate)?,
                encode(Coding::Br)?,
                encode(Coding::Zstd)?,
            ],
        })
    }

    /// The body encoded with `coding`, `Content-Encoding` set; with `vary`, also `Vary:
    /// Accept-Encoding`.
    fn encoded(&self, coding: Coding, vary: bool) -> Response<Body> {
        let i = Coding::ALL.iter().position(|c| *c == coding).unwrap_or(0);
        let mut resp = Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "application/json")
            .header("content-encoding", coding.name());
        if vary {
            resp = resp.header("vary", "Accept-Encoding");
        }
        resp.body(Body::Whole(Full::new(self.encoded[i].clone())))
            .expect("static response parts are valid")
    }

    /// `GET /compressed`: the first coding of the client's `Accept-Encoding` (with a
    /// non-zero `q`) that is served here, else identity.
    fn negotiated(&self, headers: &HeaderMap) -> Response<Body> {
        match accepted(headers) {
            Some(c) => self.encoded(c, true),
            None => {
                let mut resp = json(StatusCode::OK, self.identity.clone());
                resp.headers_mut()
                    .insert("vary", HeaderValue::from_static("Accept-Encoding"));
                resp
            }
        }
    }
}

/// The first served coding in `Accept-Encoding`, in the client's order, skipping those
/// it refuses (`q=0`).
fn accepted(headers: &HeaderMap) -> Option<Coding> {
    headers
        .get_all(hyper::header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|item| {
            let mut parts = item.split(';');
            let name = parts.next()?.trim().to_ascii_lowercase();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            let name = if name == "x-gzip" {
                "gzip".into()
            } else {
                name
            };
            Coding::ALL
                .into_iter()
                .find(|c| c.name() == name)
                .filter(|_| !refused)
        })
}
