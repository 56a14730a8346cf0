//! HTTP/2 on hyper's `client::conn::http2`: the handshake (the connection's task runs on
//! the worker's runtime), the request read back from its HTTP/1.1 encoding (so both
//! protocols send the same method, path, headers and body), one exchange on the shared
//! connection, and which failures left a request unprocessed.
//!
//! Not here: which connection a request takes, or whether it is sent again (`client`).

use std::cell::Cell;
use std::error::Error as StdError;
use std::mem::MaybeUninit;
use std::time::Instant;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::uri::Authority;
use http::{HeaderMap, Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};

use crate::client::{BoxError, Location, Origin};
use crate::decode::Codings;
use crate::h1::Stream;
use crate::request::Built;

/// A request body: the encoded request's, whole.
pub(crate) type Body = Full<Bytes>;

/// A handle on an HTTP/2 connection; clones share it.
pub(crate) type Sender = http2::SendRequest<Body>;

/// Why an HTTP/2 exchange failed.
#[derive(Debug)]
pub(crate) enum H2Error {
    /// No response head came: the connection failed first, or hyper handed the request
    /// back unwritten (`unwritten`: the target never saw it).
    Unanswered {
        unwritten: bool,
        error: hyper::Error,
    },
    /// The response's body failed part way.
    Body(hyper::Error),
}

/// The HTTP/2 handshake over `stream`; the connection is driven by a task of its own.
pub(crate) async fn handshake(stream: Stream) -> Result<Sender, hyper::Error> {
    let (sender, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

/// Sends `req` on `sender` and reads the whole response, handing body bytes to `sink`
/// (each DATA frame as hyper hands it over, as a read of its own: `true`) and the header
/// fields to `headers` if given. Notes in `first_byte` when the response
/// head arrived (hyper's response future resolved), in `codings` the body's
/// `Content-Encoding`, and in `location`, when given, whether the status is a
/// redirect's and its `Location`. Returns the status.
pub(crate) async fn exchange(
    sender: &mut Sender,
    req: Request<Body>,
    headers: Option<&mut HeaderMap>,
    first_byte: &Cell<Option<Instant>>,
    codings: &Cell<Codings>,
    location: Option<&Location>,
    sink: &mut impl FnMut(&[u8], bool),
) -> Result<u16, H2Error> {
    let resp = match sender.try_send_request(req).await {
        Ok(resp) => resp,
        Err(mut e) => {
            let unwritten = e.take_message().is_some();
            return Err(H2Error::Unanswered {
                unwritten,
                error: e.into_error(),
            });
        }
    };
    first_byte.set(Some(Instant::now()));
    let (parts, mut body) = resp.into_parts();
    let mut coded = Codings::IDENTITY;
    for v in parts.headers.get_all(http::header::CONTENT_ENCODING) {
        coded.add(v.as_bytes());
    }
    codings.set(coded);
    if let Some(l) = location {
        l.note(parts.status.as_u16(), || {
            parts
                .headers
                .get(http::header::LOCATION)
                .map(|v| Bytes::copy_from_slice(v.as_bytes()))
        });
    }
    if let Some(headers) = headers {
        *headers = parts.headers;
    }
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(H2Error::Body)?;
        if let Some(data) = frame.data_ref() {
            sink(data, true);
        }
    }
    Ok(parts.status.as_u16())
}

/// Whether an HTTP/2 stream failed before the server processed it: past the last
/// stream a GOAWAY accepted, or refused with REFUSED_STREAM.
pub(crate) fn unprocessed(e: &hyper::Error) -> bool {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(h2) = err.downcast_ref::<::h2::Error>() {
            return (h2.is_go_away() && h2.is_remote())
                || h2.reason() == Some(::h2::Reason::REFUSED_STREAM);
        }
        cur = err.source();
    }
    false
}

/// `built` for HTTP/2: absolute URI, no connection-specific headers.
pub(crate) fn request(built: &Built, origin: &Origin) -> Result<Request<Body>, BoxError> {
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; 256];
    let mut parsed = httparse::Request::new(&mut []);
    httparse::ParserConfig::default().parse_request_with_uninit_headers(
        &mut parsed,
        &built.head,
        &mut slots,
    )?;
    let mut authority = origin.authority.clone();
    let mut req = Request::new(Full::new(built.body.clone()));
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
        value.set_sensitive(built.secret.contains(&name) || name == http::header::COOKIE);
        headers.append(name, value);
    }
    *req.uri_mut() = Uri::builder()
        .scheme(origin.scheme.clone())
        .authority(authority)
        .path_and_query(parsed.path.unwrap_or("/"))
        .build()?;
    Ok(req)
}
