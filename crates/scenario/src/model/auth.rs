//! `[auth]`: a token fetched by a request of its own (a login), found in its answer,
//! and sent in a header by every other request (`Authorization: Bearer <token>`, unless
//! a request says `auth = false`). The engine fetches it once per scope, reuses it,
//! fetches it again before a JWT's `exp` and after a 401.
//!
//! Not here: fetching, holding or refreshing the token (the engine's `auth`).

use std::time::Duration;

use super::endpoint::{endpoint, EndpointCx, Where};
use super::flow::{capture_from, CaptureFrom};
use super::scenario::Endpoint;
use super::value::duration;
use crate::diag::Sink;
use crate::raw;
use crate::secrets::Secrets;

/// A validated `[auth]`.
#[derive(Debug, Clone)]
pub struct Auth {
    /// The request that answers with a token (`name`, `auth` by default): a row of
    /// its own, apart from the load's (each of its requests a fetch).
    pub endpoint: Endpoint,
    /// Where the token is in its answer (`token = "$.token"`, or a table as a
    /// capture's: `{ header = "x-token" }`, `{ regex = "..." }`).
    pub token: CaptureFrom,
    /// The header the token goes in (`Authorization` by default).
    pub header: String,
    /// What goes before the token in it (`Bearer` by default; empty: the token alone).
    pub scheme: String,
    /// Who shares one token.
    pub scope: AuthScope,
    /// How long before a JWT's `exp` it is fetched again (default: when a tenth of its
    /// lifetime is left).
    pub refresh_before: Option<Duration>,
}

impl Auth {
    /// The header's value for `token`: `Bearer <token>`, or the token alone.
    pub fn header_value(&self, token: &str) -> String {
        if self.scheme.is_empty() {
            token.to_string()
        } else {
            format!("{} {token}", self.scheme)
        }
    }
}

/// Who shares one token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthScope {
    /// The whole run: one token (one login) for every request (the default).
    Run,
    /// Each virtual user of the closed model its own (a login per VU).
    Vu,
}

impl AuthScope {
    /// As written in `scope`.
    pub fn name(self) -> &'static str {
        match self {
            AuthScope::Run => "run",
            AuthScope::Vu => "vu",
        }
    }
}

/// Headers the token cannot go in: loadgate writes them itself (a second `Host` or
/// `Content-Length` makes every request one a server refuses), or they are the
/// connection's (HTTP/2 leaves them out, the token with them).
const FRAMING: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
];

/// The row name `[auth]`'s request takes unless it names one.
pub(crate) const DEFAULT_NAME: &str = "auth";

/// `[auth]` as the scenario wrote it; `cx` is every endpoint's context (its own
/// request carries no token), `taken` the rows' names, `open` whether the load runs
/// open (no VUs).
pub(super) fn auth(
    sink: &mut Sink<'_>,
    a: raw::S<raw::Auth>,
    cx: &EndpointCx<'_>,
    secrets: &mut Secrets,
    taken: &[&str],
    open: bool,
) -> Option<Auth> {
    let span = a.span();
    let a = a.into_inner();
    let before = sink.found.len();
    let header = match &a.header {
        None => "Authorization".to_string(),
        Some(h) if FRAMING.contains(&h.get_ref().to_ascii_lowercase().as_str()) => {
            sink.span(
                h.span(),
                format!(
                    "`{}` frames the request (or the connection): a token there would break every request",
                    h.get_ref()
                ),
                Some("write e.g. header = \"Authorization\" or header = \"x-api-token\"".into()),
            );
            String::new()
        }
        Some(h) if crate::check::header_name_ok(h.get_ref()) => h.get_ref().clone(),
        Some(h) => {
            sink.span(
                h.span(),
                format!("`{}` is not a header name", h.get_ref()),
                Some("write e.g. header = \"Authorization\" or header = \"x-api-token\"".into()),
            );
            String::new()
        }
    };
    let scheme = match &a.scheme {
        None => "Bearer".to_string(),
        Some(s) => {
            let v = s.get_ref().trim();
            if v.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
                v.to_string()
            } else {
                sink.span(
                    s.span(),
                    "a scheme holds printable characters only",
                    Some(
                        "write e.g. scheme = \"Bearer\", or scheme = \"\" for the token alone"
                            .into(),
                    ),
                );
                String::new()
            }
        }
    };
    let scope = match a.scope.as_ref().map(|s| (s, s.get_ref().as_str())) {
        None | Some((_, "run")) => AuthScope::Run,
        Some((s, "vu")) if open => {
            sink.span(
                s.span(),
                "scope = \"vu\" needs virtual users, and this load runs open (arrivals, no VUs)",
                Some("write scope = \"run\" (one token shared by the run), run the closed model (vus), or log in as a flow's first step and capture the token".into()),
            );
            AuthScope::Run
        }
        Some((_, "vu")) => AuthScope::Vu,
        Some((s, other)) => {
            sink.span(
                s.span(),
                format!("scope `{other}` is not one [auth] knows"),
                Some("write scope = \"run\" (one token for the run, the default) or scope = \"vu\" (one per virtual user, closed model)".into()),
            );
            AuthScope::Run
        }
    };
    let refresh_before = a
        .refresh_before
        .as_ref()
        .and_then(|r| duration(sink, r, "refresh_before"));
    let token = match &a.token {
        Some(t) => capture_from(sink, t, "token"),
        None => {
            sink.span(
                span.clone(),
                "[auth] needs `token`: where the token is in its answer",
                Some("write e.g. token = \"$.token\" (a JSON path), or token = { header = \"x-auth-token\" }".into()),
            );
            None
        }
    };
    // The request: an endpoint's keys, POST unless it says otherwise (a login).
    let request = raw::Endpoint {
        name: Some(
            a.name
                .unwrap_or_else(|| raw::S::new(span.clone(), DEFAULT_NAME.to_string())),
        ),
        endpoint: None,
        capture: Default::default(),
        until: None,
        method: Some(
            a.method
                .unwrap_or_else(|| raw::S::new(span.clone(), "POST".to_string())),
        ),
        path: a.path,
        base: a.base,
        timeout: a.timeout,
        headers: a.headers,
        body: a.body,
        json: a.json,
        weight: None,
        checks: a.checks,
        stream: None,
        stream_content: None,
        stream_tokens: None,
        stream_done: None,
        first_byte_timeout: None,
        idle_timeout: None,
        goodput: None,
        compression: a.compression,
        redirects: a.redirects,
        auth: None,
    };
    let name_span = request.name.as_ref().map_or(0..0, |n| n.span());
    let endpoint = endpoint(sink, Where::Auth, span, &request, cx, secrets);
    if let Some(e) = &endpoint {
        super::row_name_ok(sink, name_span, &e.name, taken);
    }
    if sink.found.len() != before {
        return None;
    }
    Some(Auth {
        endpoint: endpoint?,
        token: token?,
        header,
        scheme,
        scope,
        refresh_before,
    })
}
