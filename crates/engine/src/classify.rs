//! What a response or a failure means for the run: the outcome class of a response
//! (its status against the endpoint's checks, its body against the body and JSON
//! checks), of a transport failure (by the errors in its chain), and whether a failed
//! connect was loadgate's own shortage rather than the target's.
//!
//! Not here: budgets and verdicts (`loadgate-slo` evaluates those), and nothing that
//! touches a socket: every function is pure.

use std::error::Error as StdError;

use loadgate_metrics::Outcome;
use loadgate_scenario::{Checks, JsonExpect, Secrets};

use crate::client::{Response, SendError};

use crate::stream::{Ending, StreamEnd};

/// The outcome class of a response with `status` and (possibly truncated) `body`, and,
/// for a streamed endpoint, its `stream` as read: an expected status whose stream ended
/// before its terminator (or mid-event) is `stream_truncated`, one whose stream carried
/// an error event, or no token at all, `check_failed`.
pub(crate) fn response(
    checks: &Checks,
    status: u16,
    body: &[u8],
    stream: Option<&StreamEnd>,
) -> Outcome {
    if !checks.status_ok(status) {
        return match status {
            429 => Outcome::Http429,
            400..=499 => Outcome::Http4xx,
            500..=599 => Outcome::Http5xx,
            _ => Outcome::CheckFailed,
        };
    }
    if let Some(s) = stream {
        if s.ending != Ending::Complete {
            return Outcome::StreamTruncated;
        }
        // An error event, or no token: no answer was served (and a success must have a
        // time to first token for a `ttft_` budget to rank it).
        if s.errors > 0 || s.content_events == 0 {
            return Outcome::CheckFailed;
        }
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

/// The outcome class of a transport failure, by walking the error's source chain. A
/// certificate refused after the handshake (TLS 1.3 ends the client's handshake before
/// the server judges its certificate, so the server's alert comes with the first read)
/// is a connection that could not be established, as it is in the handshake.
pub(crate) fn failure(err: &(dyn StdError + 'static)) -> Outcome {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            if io
                .get_ref()
                .and_then(|i| i.downcast_ref::<rustls::Error>())
                .is_some_and(certificate_refused)
            {
                return Outcome::ConnectError;
            }
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

/// A cheap key of what [`explain`] would say of a failed `result` (and its `stream`):
/// equal keys explain alike, so a failure already explained is counted without
/// formatting anything. Hashes the status and at most the first 128 body bytes of a
/// response, the kind of a transport failure (its I/O error kind, its TLS error).
pub(crate) fn failure_key(
    outcome: Outcome,
    result: &Result<Response, SendError>,
    stream: Option<&StreamEnd>,
) -> u64 {
    use std::hash::{Hash, Hasher};
    // SipHash with fixed keys: the same key in every worker and run.
    let mut h = std::hash::DefaultHasher::new();
    outcome.hash(&mut h);
    match result {
        Ok(r) => {
            r.status.hash(&mut h);
            r.body[..r.body.len().min(128)].hash(&mut h);
            if let Some(s) = stream {
                (
                    s.ending == Ending::Complete,
                    s.errors > 0,
                    s.content_events == 0,
                )
                    .hash(&mut h);
            }
        }
        Err(e) => {
            let mut cur: Option<&(dyn StdError + 'static)> = Some(&*e.error);
            while let Some(err) = cur {
                if let Some(t) = err.downcast_ref::<rustls::Error>() {
                    std::mem::discriminant(t).hash(&mut h);
                    if let rustls::Error::InvalidCertificate(c) = t {
                        std::mem::discriminant(c).hash(&mut h);
                    }
                }
                if let Some(io) = err.downcast_ref::<std::io::Error>() {
                    io.kind().hash(&mut h);
                    if let Some(inner) = io.get_ref() {
                        cur = Some(inner);
                        continue;
                    }
                }
                cur = err.source();
            }
        }
    }
    h.finish()
}

/// What a failed request was expected to do and what it did instead (`what`, and
/// `found` when something was): which check failed and what the body held there, the
/// status and the start of its body, why the transport failed. Texts are masked of
/// `secrets` here, before they are cut short (a cut could leave half a secret that no
/// mask then finds); called only for a failure not yet explained.
pub(crate) fn explain(
    checks: &Checks,
    outcome: Outcome,
    result: &Result<Response, SendError>,
    stream: Option<&StreamEnd>,
    timeout: std::time::Duration,
    secrets: &Secrets,
) -> (String, Option<String>) {
    let masked = |s: &str| secrets.redact(s).into_owned();
    let body = |b: &[u8]| (!b.is_empty()).then(|| masked(&String::from_utf8_lossy(b)));
    let (what, found) = match result {
        Err(e) => (transport(outcome, &*e.error, timeout), None),
        Ok(r) => {
            let kept = decoded_start(r);
            response_explained(checks, r.status, &kept, stream, &body)
        }
    };
    (masked(&what), found)
}

/// The kept body as text would show it: decoded when it was kept as it came with a
/// `Content-Encoding` (its start decodes; what does not is left out, and a coding
/// loadgate does not decode is said as such).
fn decoded_start(r: &Response) -> std::borrow::Cow<'_, [u8]> {
    if !r.coded.any() || r.body.is_empty() {
        return std::borrow::Cow::Borrowed(&r.body);
    }
    let Ok(mut d) = r.coded.decoder() else {
        return std::borrow::Cow::Borrowed(b"(a body in a coding loadgate does not decode)");
    };
    let mut out = Vec::new();
    let mut keep = |piece: &[u8]| {
        let room = crate::client::FAILED_BODY.saturating_sub(out.len());
        out.extend_from_slice(&piece[..piece.len().min(room)]);
    };
    // What the decoders hold comes out at the finish; a body cut at the kept bytes
    // then fails, which is no matter: its start is out.
    if d.push(&r.body, &mut keep).is_ok() {
        let _ = d.finish(&mut keep);
    }
    std::borrow::Cow::Owned(out)
}

fn response_explained(
    checks: &Checks,
    status: u16,
    body: &[u8],
    stream: Option<&StreamEnd>,
    shown: &dyn Fn(&[u8]) -> Option<String>,
) -> (String, Option<String>) {
    if !checks.status_ok(status) {
        let what = match (status, checks.status.as_slice()) {
            (400..=599, _) => format!("status {status}"),
            (_, []) => format!("status {status}, expected 2xx"),
            (_, want) => format!("status {status}, expected {want:?}"),
        };
        return (what, shown(body));
    }
    if let Some(s) = stream {
        if s.ending != Ending::Complete {
            return ("the stream ended before its terminator".into(), None);
        }
        if s.errors > 0 {
            return ("the stream carried an error event".into(), None);
        }
        if s.content_events == 0 {
            return ("the stream carried no token".into(), None);
        }
    }
    if let Some(needle) = &checks.body_contains {
        if memchr::memmem::find(body, needle.as_bytes()).is_none() {
            return (format!("body contains {needle:?}"), shown(body));
        }
    }
    if !checks.json.is_empty() {
        let Ok(doc) = serde_json::from_slice::<serde_json::Value>(body) else {
            return ("a JSON body".into(), shown(body));
        };
        for c in &checks.json {
            let found = doc.pointer(&c.pointer);
            let (ok, what) = match &c.expect {
                JsonExpect::Exists(true) => (found.is_some(), format!("json {} exists", c.path)),
                JsonExpect::Exists(false) => {
                    (found.is_none(), format!("json {} is absent", c.path))
                }
                JsonExpect::Equals(v) => (found == Some(v), format!("json {} equals {v}", c.path)),
            };
            if !ok {
                let value = found.map_or_else(|| "nothing".to_string(), |v| v.to_string());
                return (what, shown(value.as_bytes()));
            }
        }
    }
    ("the response".into(), None)
}

/// A transport failure in words: the timeout, or its error chain (a TLS error named
/// as such).
fn transport(
    outcome: Outcome,
    err: &(dyn StdError + 'static),
    timeout: std::time::Duration,
) -> String {
    match outcome {
        Outcome::Timeout if err.to_string().contains("timed out") || err.source().is_none() => {
            return format!(
                "no complete answer within the timeout ({})",
                humantime::format_duration(timeout)
            );
        }
        Outcome::FirstByteTimeout => return "no first byte within first_byte_timeout".into(),
        Outcome::IdleTimeout => return "silent for longer than idle_timeout".into(),
        _ => {}
    }
    let mut parts: Vec<String> = Vec::new();
    let mut tls = false;
    let mut cur = Some(err);
    while let Some(e) = cur {
        tls |= e.downcast_ref::<rustls::Error>().is_some();
        let text = e.to_string();
        // A wrapper often repeats its source's text: keep the outer words only once.
        if !parts.last().is_some_and(|p| p.ends_with(&text)) {
            parts.push(text);
        }
        cur = match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => {
                tls |= inner.downcast_ref::<rustls::Error>().is_some();
                Some(inner as &(dyn StdError + 'static))
            }
            None => e.source(),
        };
    }
    parts.dedup();
    let text = parts.join(": ");
    match tls {
        true => format!("tls: {text}"),
        false => text,
    }
}

/// Counts a failed `exchange` of `endpoint` (`prepared`) as `outcome` in `shard`'s
/// failures explained: a comparison of its key for one already explained, the words
/// (and the `secrets` they are masked with) only for a new one.
pub(crate) fn record_failure<S: std::borrow::Borrow<Secrets>>(
    shard: &mut loadgate_metrics::Shard,
    endpoint: usize,
    prepared: &crate::Prepared,
    exchange: &crate::Exchange,
    outcome: Outcome,
    secrets: impl FnOnce() -> S,
) {
    let stream = exchange.stream.as_ref();
    let key = failure_key(outcome, &exchange.result, stream);
    shard.record_failure(endpoint, outcome, key, || {
        explain(
            prepared.checks(),
            outcome,
            &exchange.result,
            stream,
            prepared.timeout(),
            secrets().borrow(),
        )
    });
}

/// Whether the peer's alert `e` refused a certificate (the client's, or ours of it).
fn certificate_refused(e: &rustls::Error) -> bool {
    use rustls::AlertDescription as A;
    matches!(
        e,
        rustls::Error::AlertReceived(
            A::CertificateRequired
                | A::BadCertificate
                | A::UnknownCA
                | A::CertificateUnknown
                | A::CertificateExpired
                | A::CertificateRevoked
                | A::UnsupportedCertificate
                | A::AccessDenied
        )
    )
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

#[cfg(test)]
mod tests {
    use super::*;
    use loadgate_scenario::JsonCheck;

    /// Issue 22: a client certificate refused after a TLS 1.3 handshake came with the
    /// first read, as bytes that are not valid HTTP (`protocol_error`); it is the
    /// connection's failure, as a refusal in the handshake is.
    #[test]
    fn a_certificate_refused_after_the_handshake_is_a_connect_error() {
        use rustls::AlertDescription as A;
        let alert = |a: A| -> Box<dyn StdError + Send + Sync> {
            Box::new(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                rustls::Error::AlertReceived(a),
            ))
        };
        for a in [A::CertificateRequired, A::UnknownCA, A::BadCertificate] {
            assert_eq!(failure(&*alert(a)), Outcome::ConnectError, "{a:?}");
        }
        // Any other alert or bad data is what it was.
        assert_eq!(failure(&*alert(A::DecodeError)), Outcome::ProtocolError);
        let bad: Box<dyn StdError + Send + Sync> =
            Box::new(std::io::Error::from(std::io::ErrorKind::InvalidData));
        assert_eq!(failure(&*bad), Outcome::ProtocolError);
    }

    #[test]
    fn running_out_of_descriptors_or_ports_is_local_a_refusal_is_not() {
        use rustix::io::Errno;
        let wrapped =
            |n: Errno| -> Box<dyn StdError + Send + Sync> { Box::new(std::io::Error::from(n)) };
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
        assert_eq!(response(&c, 200, b"", None), Outcome::Success);
        assert_eq!(response(&c, 429, b"", None), Outcome::Http429);
        assert_eq!(response(&c, 404, b"", None), Outcome::Http4xx);
        assert_eq!(response(&c, 503, b"", None), Outcome::Http5xx);
        assert_eq!(response(&c, 302, b"", None), Outcome::CheckFailed);
        let c = Checks {
            status: vec![404],
            ..Checks::default()
        };
        assert_eq!(response(&c, 404, b"", None), Outcome::Success);
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
            response(&c, 200, br#"{"s":"ok","a":[1,2]}"#, None),
            Outcome::Success
        );
        assert_eq!(
            response(&c, 200, br#"{"s":"ok","a":[1,3]}"#, None),
            Outcome::CheckFailed
        );
        assert_eq!(
            response(&c, 200, br#"{"s":"no"}"#, None),
            Outcome::CheckFailed
        );
        assert_eq!(
            response(&c, 200, b"ok but not json", None),
            Outcome::CheckFailed
        );
    }

    /// A stream with an event past the reader's bound, read on to its terminator, is a
    /// success: the target served it whole; the bound is loadgate's.
    #[test]
    fn a_stream_with_a_skipped_event_is_a_success() {
        use crate::stream::{
            ContentRule, StreamKind, StreamReader, StreamSpec, Terminator, TokenRule,
        };
        let spec = StreamSpec::new(
            StreamKind::Sse,
            ContentRule::Auto,
            TokenRule::Auto,
            Terminator::Auto,
        )
        .with_max_event(64);
        let token =
            |t: &str| format!("data: {{\"choices\":[{{\"delta\":{{\"content\":\"{t}\"}}}}]}}\n\n");
        let body = token("a") + &token(&"x".repeat(500)) + "data: [DONE]\n\n";
        let mut reader = StreamReader::new(&spec);
        reader.feed(body.as_bytes(), std::time::Instant::now());
        let end = reader.finish();
        assert_eq!((end.content_events, end.oversized), (2, 1));
        let c = Checks::default();
        assert_eq!(response(&c, 200, b"", Some(&end)), Outcome::Success);
    }
}
