//! One `[[endpoint]]`: its method, path, headers (with `[defaults]` merged in), body or
//! `json` (with `${VAR}` in every string and key), weight and response checks.
//!
//! Not here: sending it or running its checks (the engine).

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use super::scenario::{Checks, Endpoint, Header, JsonCheck, JsonExpect};
use super::value::{
    duration, interp, no_control_chars, path_problem, place, shorten, template, written,
};
use crate::check;
use crate::diag::Sink;
use crate::interp::{interpolate, InterpError};
use crate::raw;
use crate::secrets::Secrets;
use crate::template::{Escape, Names, Template};

/// Where an endpoint's table is written: an `[[endpoint]]`, or a flow's `[[flow.step]]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Where {
    /// The `index`th `[[endpoint]]`.
    Endpoint(usize),
    /// Step `step` of the `flow`th `[[flow]]`.
    Step { flow: usize, step: usize },
    /// `[auth]`'s request.
    Auth,
}

/// What every endpoint is built with.
#[derive(Clone, Copy)]
pub(super) struct EndpointCx<'a> {
    pub(super) default_headers: &'a BTreeMap<String, raw::S<String>>,
    pub(super) names: &'a Names<'a>,
    pub(super) env: &'a dyn Fn(&str) -> Option<String>,
    pub(super) is_secret: &'a dyn Fn(&str) -> bool,
    /// The target URL's path, which the engine puts before every path of an endpoint
    /// without a `base` of its own.
    pub(super) prefix: &'a str,
    /// The whole request timeout (`[defaults] timeout`).
    pub(super) timeout: std::time::Duration,
    /// `[defaults] first_byte_timeout` and `idle_timeout`.
    pub(super) first_byte_timeout: Option<std::time::Duration>,
    pub(super) idle_timeout: Option<std::time::Duration>,
    /// `[defaults] goodput`.
    pub(super) goodput: Option<super::stream::GoodLimits>,
    /// `[defaults] compression` (on when unset).
    pub(super) compression: bool,
    /// `[defaults] redirects` (10 when unset).
    pub(super) redirects: u8,
    /// `[auth]`'s header, as written, when the scenario has an `[auth]`: every request
    /// carries its token unless it says `auth = false`.
    pub(super) auth_header: Option<&'a str>,
}

/// One step from the top of a `json` body to a value in it.
#[derive(Debug, Clone)]
enum JsonStep {
    Key(String),
    Index(usize),
}

/// A `${VAR}` in a `json` body that could not be resolved: where, and why.
struct JsonInterpError {
    at: Vec<JsonStep>,
    in_key: bool,
    error: InterpError,
}

/// Interpolates `${VAR}` in every string and key of a `json` body.
struct JsonInterp<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
    /// Where the walk is.
    at: Vec<JsonStep>,
    /// Whether any value came from the environment.
    from_env: bool,
    /// What could not be resolved.
    problems: Vec<JsonInterpError>,
    /// Every value that came from the environment, with its variable's name.
    values: Vec<(String, String)>,
}

impl JsonInterp<'_> {
    fn text(&mut self, s: &str, in_key: bool) -> String {
        match interpolate(s, self.env) {
            Ok(i) => {
                self.from_env |= i.from_env;
                for e in &i.env {
                    self.values
                        .push((e.name.clone(), i.value[e.value.clone()].to_string()));
                }
                i.value
            }
            Err(error) => {
                self.problems.push(JsonInterpError {
                    at: self.at.clone(),
                    in_key,
                    error,
                });
                s.to_string()
            }
        }
    }

    /// `v` as JSON, interpolated.
    fn value(&mut self, v: &toml::Value) -> serde_json::Value {
        match v {
            toml::Value::String(s) => serde_json::Value::String(self.text(s, false)),
            toml::Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, x) in items.iter().enumerate() {
                    self.at.push(JsonStep::Index(i));
                    out.push(self.value(x));
                    self.at.pop();
                }
                serde_json::Value::Array(out)
            }
            toml::Value::Table(t) => {
                let mut out = serde_json::Map::new();
                for (k, x) in t {
                    self.at.push(JsonStep::Key(k.clone()));
                    let key = self.text(k, true);
                    let value = self.value(x);
                    self.at.pop();
                    out.insert(key, value);
                }
                serde_json::Value::Object(out)
            }
            other => serde_json::to_value(other).expect("TOML values convert to JSON"),
        }
    }
}

/// Where the string at `at` in the `json` of the endpoint at `place` is written in
/// scenario `text` (its key when `in_key`). The file is parsed again, with every span,
/// only to place an error.
fn json_span(text: &str, place: Where, at: &[JsonStep], in_key: bool) -> Option<Range<usize>> {
    let doc = toml::de::DeTable::parse(text).ok()?;
    let endpoint = match place {
        Where::Endpoint(index) => doc.get_ref().get("endpoint")?.get_ref().get(index)?,
        Where::Step { flow, step } => doc
            .get_ref()
            .get("flow")?
            .get_ref()
            .get(flow)?
            .get_ref()
            .get("step")?
            .get_ref()
            .get(step)?,
        Where::Auth => doc.get_ref().get("auth")?,
    };
    let mut node = endpoint.get_ref().get("json")?;
    for (i, step) in at.iter().enumerate() {
        match step {
            JsonStep::Index(n) => node = node.get_ref().get(*n)?,
            JsonStep::Key(k) if in_key && i + 1 == at.len() => {
                let toml::de::DeValue::Table(t) = node.get_ref() else {
                    return None;
                };
                let (key, _) = t.iter().find(|(key, _)| key.get_ref() == k)?;
                return Some(key.span());
            }
            JsonStep::Key(k) => node = node.get_ref().get(k.as_str())?,
        }
    }
    Some(node.span())
}

/// The body of a `json` endpoint, interpolated, and whether it holds an environment value.
fn json_body(
    sink: &mut Sink<'_>,
    place: Where,
    j: &raw::S<toml::Value>,
    env: &dyn Fn(&str) -> Option<String>,
    secrets: &mut Secrets,
) -> Option<(serde_json::Value, bool)> {
    let mut walk = JsonInterp {
        env,
        at: Vec::new(),
        from_env: false,
        problems: Vec::new(),
        values: Vec::new(),
    };
    let json = walk.value(j.get_ref());
    for (name, value) in &walk.values {
        secrets.add(name, value);
    }
    for p in &walk.problems {
        let span = json_span(sink.text, place, &p.at, p.in_key).unwrap_or_else(|| j.span());
        let at = sink.string_body_start(&span) + p.error.offset;
        sink.at(
            at.min(span.end),
            p.error.message.clone(),
            p.error.hint.clone(),
        );
    }
    walk.problems.is_empty().then_some((json, walk.from_env))
}

/// The endpoint written at `place` (`fallback`: where to point when a required key is
/// missing: the list it is in). The keys only a step takes (`endpoint`, `capture`) are
/// the flow's to read; here they are refused on an `[[endpoint]]`, as `weight` is on a
/// step (a flow is weighted as a whole).
pub(super) fn endpoint(
    sink: &mut Sink<'_>,
    loc: Where,
    fallback: Range<usize>,
    e: &raw::Endpoint,
    cx: &EndpointCx<'_>,
    secrets: &mut Secrets,
) -> Option<Endpoint> {
    let (names, env) = (cx.names, cx.env);
    let what = match loc {
        Where::Endpoint(_) => "an [[endpoint]]",
        Where::Step { .. } => "a [[flow.step]]",
        Where::Auth => "[auth]",
    };
    let (e_name, e_path) = match (&e.name, &e.path) {
        (Some(n), Some(p)) => (n, p),
        (n, p) => {
            let at = n
                .as_ref()
                .map(|n| n.span())
                .or_else(|| p.as_ref().map(|p| p.span()))
                .unwrap_or(fallback);
            let missing = if n.is_none() { "name" } else { "path" };
            let hint = match loc {
                Where::Endpoint(_) => "write e.g. name = \"health\" and path = \"/api/health\"",
                Where::Step { .. } => "write e.g. name = \"login\" and path = \"/api/auth/login\", or endpoint = \"NAME\" to send an [[endpoint]] as this step",
                Where::Auth => "write e.g. path = \"/api/auth/login\": the request that answers with a token",
            };
            sink.span(at, format!("{what} needs a `{missing}`"), Some(hint.into()));
            return None;
        }
    };
    match loc {
        Where::Endpoint(_) => {
            if let Some(r) = &e.endpoint {
                sink.span(
                    r.span(),
                    "`endpoint` names an endpoint from a flow's step, not from an [[endpoint]]",
                    Some("move it into a [[flow.step]], or remove it".into()),
                );
            }
            if let Some(u) = &e.until {
                sink.span(
                    u.span(),
                    "`until` belongs to a flow's step: an [[endpoint]] is sent once per arrival",
                    Some("define a [[flow]] whose [[flow.step]] polls with until".into()),
                );
            }
            if let Some((_, c)) = e.capture.iter().next() {
                sink.span(
                    c.span(),
                    "`capture` belongs to a flow's step: an [[endpoint]] is sent on its own, with nothing after it to use the value",
                    Some("define a [[flow]] whose [[flow.step]] captures the value".into()),
                );
            }
        }
        Where::Step { .. } => {
            if let Some(w) = &e.weight {
                sink.span(
                    w.span(),
                    "a step has no weight: its flow is weighted as a whole",
                    Some("remove it, and set weight on the [[flow]]".into()),
                );
            }
        }
        Where::Auth => {}
    }
    let name = e_name.get_ref().trim().to_string();
    let mut ok = true;
    if name.is_empty() {
        sink.span(e_name.span(), "endpoint name is empty", None);
        ok = false;
    }
    let before = sink.found.len();
    no_control_chars(
        sink,
        e_name,
        "endpoint name",
        "remove it: reports show endpoint names, and junit.xml cannot hold control characters",
    );
    ok &= sink.found.len() == before;
    let method = e
        .method
        .as_ref()
        .map_or("GET".to_string(), |m| m.get_ref().to_ascii_uppercase());
    let bad_method = method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic());
    if let Some(m) = e.method.as_ref().filter(|_| bad_method) {
        sink.span(
            m.span(),
            format!("`{method}` is not an HTTP method"),
            Some("use GET, POST, PUT, PATCH, DELETE, HEAD or OPTIONS".into()),
        );
        ok = false;
    }
    let before = sink.found.len();
    let base = e
        .base
        .as_ref()
        .and_then(|b| base_url(sink, b, env, secrets));
    let timeout = own_timeout(sink, e, cx.timeout);
    ok &= sink.found.len() == before;
    // The path is joined to the endpoint's own base, when it has one.
    let prefix = match &base {
        Some(u) => check::path_prefix(&crate::Target::Url(u.clone())),
        None => cx.prefix.to_string(),
    };
    let path_text = interp(sink, e_path, env, Some(&mut *secrets));
    let path = path_text.and_then(|p| {
        if !p.value.starts_with('/') {
            sink.span(
                e_path.span(),
                format!("path {} must start with `/`", written(e_path)),
                Some("the path is appended to the target URL, e.g. \"/api/health\"".into()),
            );
            return None;
        }
        let t = template(sink, e_path, &p, Escape::Url, names)?;
        if let Some(problem) = check::path(&prefix, &p.value, true) {
            path_problem(sink, e_path, &p, "path", problem);
            return None;
        }
        Some(t)
    });

    let mut headers = Vec::new();
    let mut merged: BTreeMap<String, &raw::S<String>> = BTreeMap::new();
    for (k, v) in cx.default_headers.iter().chain(e.headers.iter()) {
        merged.retain(|existing, _| !existing.eq_ignore_ascii_case(k));
        merged.insert(k.clone(), v);
    }
    for (k, v) in merged {
        if !check::header_name_ok(&k) {
            let hint = if k.len() > 65_535 {
                "a header name holds at most 65535 bytes"
            } else {
                "a header name holds letters, digits and !#$%&'*+-.^_`|~ only"
            };
            sink.span(
                v.span(),
                format!("{} is not a valid header name", shorten(&k)),
                Some(hint.into()),
            );
            ok = false;
            continue;
        }
        if let Some(value) = interp(sink, v, env, Some(&mut *secrets)) {
            // The value may be a secret: say which character, never the value; and of a
            // value from the environment not even the character.
            if let Some(bad) = check::header_template(&value.value) {
                let hint = "remove it: a header value holds tab and printable characters only";
                match place(sink, v, &value, bad.offset) {
                    (at, None) => sink.at(
                        at,
                        format!(
                            "header `{k}` has {} in its value, which a header cannot hold",
                            check::describe(bad.c)
                        ),
                        Some(hint.into()),
                    ),
                    (at, Some(name)) => sink.at(
                        at,
                        format!(
                            "header `{k}` ({}) has a character a header cannot hold in the value of `${{{name}}}`",
                            written(v)
                        ),
                        Some(format!("{hint}; fix {name}")),
                    ),
                }
                ok = false;
                continue;
            }
            if let Some(t) = template(sink, v, &value, Escape::None, names) {
                headers.push(Header {
                    // A flow's captured variable is a credential as often as not (a
                    // login's token): held secret whether or not it was marked so.
                    secret: value.from_env || (cx.is_secret)(&k) || t.vars().next().is_some(),
                    name: k,
                    value: t,
                });
            }
        }
    }

    let mut body_secret = false;
    let body = match (&e.body, &e.json) {
        (Some(b), Some(j)) => {
            sink.span(
                j.span(),
                "an endpoint takes `body` or `json`, not both",
                None,
            );
            let _ = b;
            None
        }
        (Some(b), None) => interp(sink, b, env, Some(&mut *secrets)).and_then(|text| {
            body_secret = text.from_env;
            template(sink, b, &text, Escape::None, names)
        }),
        (None, Some(j)) => {
            let t = json_body(sink, loc, j, env, secrets).and_then(|(json, from_env)| {
                body_secret = from_env;
                let text = serde_json::to_string(&json).expect("JSON values serialize");
                match Template::compile(&text, Escape::JsonString, names) {
                    Ok(t) => Some(t),
                    Err(err) => {
                        sink.span(j.span(), format!("in `json`: {}", err.message), err.hint);
                        None
                    }
                }
            });
            if !headers
                .iter()
                .any(|h| h.name.eq_ignore_ascii_case("content-type"))
            {
                headers.push(Header {
                    name: "content-type".into(),
                    value: Template::literal("application/json"),
                    secret: false,
                });
            }
            t
        }
        (None, None) => None,
    };

    let weight = match loc {
        // A step is sent by its flow, never picked on its own; `[auth]`'s when a token
        // is needed.
        Where::Step { .. } | Where::Auth => 0,
        Where::Endpoint(_) => super::value::weight(sink, e.weight.as_ref()).unwrap_or_else(|| {
            ok = false;
            0
        }),
    };

    let mut checks = Checks {
        body_contains: e.checks.body_contains.clone(),
        ..Checks::default()
    };
    if let Some(st) = &e.checks.status {
        for &code in st.get_ref() {
            if !(100..=599).contains(&code) {
                sink.span(
                    st.span(),
                    format!("status {code} is not an HTTP status code"),
                    Some("use codes from 100 to 599".into()),
                );
                ok = false;
            } else {
                checks.status.push(code as u16);
            }
        }
    }
    for jc in &e.checks.json {
        let c = jc.get_ref();
        let Some(pointer) = json_pointer(c.path.get_ref()) else {
            sink.span(
                c.path.span(),
                format!("`{}` is not a supported JSON path", c.path.get_ref()),
                Some("write e.g. \"$.status\" or \"$.data.items[0].id\"".into()),
            );
            ok = false;
            continue;
        };
        let expect = match (&c.equals, c.exists) {
            (Some(v), None) => {
                JsonExpect::Equals(serde_json::to_value(v).expect("TOML values convert to JSON"))
            }
            (None, Some(b)) => JsonExpect::Exists(b),
            _ => {
                sink.span(
                    jc.span(),
                    "a JSON check needs exactly one of `equals` or `exists`",
                    Some("write e.g. { path = \"$.status\", equals = \"ok\" }".into()),
                );
                ok = false;
                continue;
            }
        };
        checks.json.push(JsonCheck {
            path: c.path.get_ref().clone(),
            pointer,
            expect,
        });
    }

    let path = path?;
    let before = sink.found.len();
    let stream = super::stream::stream(sink, e);
    // Checked against the endpoint's own timeout, when it sets one.
    let whose = match e.timeout {
        Some(_) => "the endpoint's timeout",
        None => "[defaults] timeout",
    };
    let first_byte_timeout = super::stream::stream_timeout(
        sink,
        e.first_byte_timeout.as_ref(),
        "first_byte_timeout",
        timeout,
        whose,
    );
    let idle_timeout = super::stream::stream_timeout(
        sink,
        e.idle_timeout.as_ref(),
        "idle_timeout",
        timeout,
        whose,
    );
    // `[defaults]`' own are below `[defaults] timeout`; an endpoint's shorter timeout
    // must still leave room for those it takes.
    let mut take = |own: Option<Duration>, set: bool, default: Option<Duration>, what: &str| {
        if set {
            return own;
        }
        let d = default?;
        if d < timeout {
            return Some(d);
        }
        if let Some(t) = &e.timeout {
            sink.span(
                t.span(),
                format!(
                    "timeout {} is not above [defaults] {what} {}, which this endpoint takes",
                    humantime::format_duration(timeout),
                    humantime::format_duration(d)
                ),
                Some(format!(
                    "raise the endpoint's timeout, or set a lower {what} on the endpoint"
                )),
            );
        }
        None
    };
    let first_byte_timeout = take(
        first_byte_timeout,
        e.first_byte_timeout.is_some(),
        cx.first_byte_timeout,
        "first_byte_timeout",
    );
    let idle_timeout = take(
        idle_timeout,
        e.idle_timeout.is_some(),
        cx.idle_timeout,
        "idle_timeout",
    );
    let goodput = super::stream::good_limits(sink, e.goodput.as_ref())
        .or(cx.goodput)
        .unwrap_or_default();
    if stream.is_none() && (goodput.ttft.is_some() || goodput.itl.is_some()) {
        if let Some(g) = &e.goodput {
            if let Some(v) = g.ttft.as_ref().or(g.itl.as_ref()) {
                sink.span(
                    v.span(),
                    "goodput ttft and itl limits apply to a streamed response",
                    Some("add stream = \"sse\" to the endpoint, or limit latency or ttfb".into()),
                );
            }
        }
    }
    ok &= sink.found.len() == before;
    let before = sink.found.len();
    let auth = auth_taken(sink, e, cx, &headers, loc);
    ok &= sink.found.len() == before;
    ok.then_some(Endpoint {
        auth,
        name,
        method,
        path,
        base,
        timeout,
        headers,
        body,
        body_secret,
        weight,
        checks,
        stream,
        first_byte_timeout,
        idle_timeout,
        goodput,
        compression: e
            .compression
            .as_ref()
            .map_or(cx.compression, |c| *c.get_ref()),
        redirects: e
            .redirects
            .as_ref()
            .and_then(|r| redirects(sink, r))
            .unwrap_or(cx.redirects),
    })
}

/// Whether endpoint `e` carries `[auth]`'s token: when the scenario has an `[auth]`,
/// unless it says `auth = false` (`[auth]`'s own request never does). Refused: `auth =
/// true` without an `[auth]`, and a header of its own where the token goes.
fn auth_taken(
    sink: &mut Sink<'_>,
    e: &raw::Endpoint,
    cx: &EndpointCx<'_>,
    headers: &[Header],
    loc: Where,
) -> bool {
    let asked = e.auth.as_ref().map(|a| *a.get_ref());
    let Some(header) = cx.auth_header.filter(|_| loc != Where::Auth) else {
        if let Some(a) = e.auth.as_ref().filter(|a| *a.get_ref()) {
            sink.span(
                a.span(),
                "`auth = true`, but the scenario has no [auth] to fetch a token",
                Some(
                    "add an [auth] table (path, json, token = \"$.token\"), or remove this line"
                        .into(),
                ),
            );
        }
        return false;
    };
    if asked == Some(false) {
        return false;
    }
    if headers.iter().any(|h| h.name.eq_ignore_ascii_case(header)) {
        let span = e
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(header))
            .map_or_else(
                || e.name.as_ref().map_or(0..0, |n| n.span()),
                |(_, v)| v.span(),
            );
        sink.span(
            span,
            format!("header `{header}` carries [auth]'s token, and this request sets its own"),
            Some(format!(
                "set auth = false on it to send your own `{header}`, or remove the header (from [defaults] headers too)"
            )),
        );
    }
    true
}

/// The most redirects a request follows (`redirects = N`): 0 to [`MAX_REDIRECTS`].
pub(super) fn redirects(sink: &mut Sink<'_>, v: &raw::S<i64>) -> Option<u8> {
    match u8::try_from(*v.get_ref()) {
        Ok(n) if n <= MAX_REDIRECTS => Some(n),
        _ => {
            sink.span(
                v.span(),
                format!(
                    "redirects must be a whole number from 0 to {MAX_REDIRECTS}, not {}",
                    v.get_ref()
                ),
                Some(format!(
                    "write e.g. redirects = {DEFAULT_REDIRECTS} (the default), or redirects = 0 to take a 3xx as the answer"
                )),
            );
            None
        }
    }
}

/// How many redirects a request follows unless `redirects` says otherwise (as k6 and
/// oha do).
pub(crate) const DEFAULT_REDIRECTS: u8 = 10;

/// The most `redirects` may say: a chain longer than this is no page a user waits for.
pub(crate) const MAX_REDIRECTS: u8 = 50;

/// An endpoint's `base`: an http:// or https:// URL (interpolated as the target is), as
/// the target is checked; its secret parts (credentials) registered as the target's are.
fn base_url(
    sink: &mut Sink<'_>,
    v: &raw::S<String>,
    env: &dyn Fn(&str) -> Option<String>,
    secrets: &mut Secrets,
) -> Option<url::Url> {
    let t = interp(sink, v, env, None)?;
    match crate::Target::parse(&t.value) {
        Ok(crate::Target::Url(u)) => {
            super::register_target(secrets, &t, &u);
            Some(u)
        }
        Ok(crate::Target::Embedded) => {
            sink.span(
                v.span(),
                "base `embedded` is not a URL: the embedded target is the scenario's `target`",
                Some("leave base out to send this endpoint to the target, or write an http:// or https:// URL".into()),
            );
            None
        }
        Err(err) => {
            super::url_error(sink, v, "base", t.from_env, err);
            None
        }
    }
}

/// An endpoint's `timeout`, above zero; `[defaults] timeout` (`default`) without one.
fn own_timeout(sink: &mut Sink<'_>, e: &raw::Endpoint, default: Duration) -> Duration {
    let Some(t) = &e.timeout else {
        return default;
    };
    match duration(sink, t, "timeout") {
        Some(d) if d.is_zero() => {
            sink.span(
                t.span(),
                "timeout must be greater than zero",
                Some("write e.g. timeout = \"60s\"".into()),
            );
            default
        }
        Some(d) => d,
        None => default,
    }
}

/// `$.a.b[0]` (or `a.b[0]`) to the JSON pointer `/a/b/0`.
fn json_pointer(path: &str) -> Option<String> {
    let p = path.strip_prefix('$').unwrap_or(path);
    let mut out = String::new();
    let mut seg = String::new();
    let mut chars = p.chars().peekable();
    let flush = |seg: &mut String, out: &mut String| {
        if !seg.is_empty() {
            out.push('/');
            out.push_str(&seg.replace('~', "~0").replace('/', "~1"));
            seg.clear();
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '.' => flush(&mut seg, &mut out),
            '[' => {
                flush(&mut seg, &mut out);
                let idx: String = chars.by_ref().take_while(|&c| c != ']').collect();
                if idx.is_empty() || !idx.chars().all(|c| c.is_ascii_digit()) {
                    return None;
                }
                out.push('/');
                out.push_str(&idx);
            }
            ']' => return None,
            c => seg.push(c),
        }
    }
    flush(&mut seg, &mut out);
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::json_pointer;

    #[test]
    fn json_paths_become_pointers() {
        assert_eq!(json_pointer("$.status").as_deref(), Some("/status"));
        assert_eq!(
            json_pointer("$.data.items[0].id").as_deref(),
            Some("/data/items/0/id")
        );
        assert_eq!(json_pointer("a/b").as_deref(), Some("/a~1b"));
        assert_eq!(json_pointer("$.x[a]"), None);
        assert_eq!(json_pointer("$"), None);
    }
}
