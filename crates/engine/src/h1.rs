//! HTTP/1.1 on the hot path: the request is written as bytes encoded once per endpoint
//! (or rendered into one buffer), and the response is parsed with httparse from a buffer
//! the connection keeps, in the task that sent the request: no channel to a connection
//! task, no header map (unless the caller keeps the headers), no allocation per request.
//! A head byte-identical to the connection's last one is not parsed again
//! ([`LastHead`]). The body is handed to a sink piece by piece and never buffered whole.
//!
//! Framing follows RFC 9112 section 6: no body for HEAD, 1xx, 204 and 304; chunked when
//! it is the final transfer coding; else Content-Length; else until the server closes.

use std::cell::Cell;
use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use http::header::{HeaderName, HeaderValue};
use http::HeaderMap;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use crate::client::Location;
use crate::decode::Codings;

/// Initial read buffer; it grows only while a response head does not fit.
const BUF: usize = 16 * 1024;
/// Largest response head accepted (status line and headers).
pub(crate) const MAX_HEAD: usize = 64 * 1024;
/// Most response headers accepted.
const MAX_HEADERS: usize = 100;
/// Longest chunk-size or trailer line accepted.
const MAX_LINE: usize = 4 * 1024;

/// A connection's byte stream: TCP, or TLS over TCP.
pub(crate) enum Stream {
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Tcp(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum H1Error {
    /// The request could not be written, or the connection ended before any byte of
    /// the response. The target may have read the request: it is counted as the
    /// target's failure, never sent again.
    #[error("connection closed before the response began: {0}")]
    NoResponse(io::Error),
    /// The connection failed part way through the response.
    #[error("{0}")]
    Io(io::Error),
    /// The connection ended part way through the response.
    #[error("connection closed before the response was complete")]
    Incomplete,
    /// Bytes that are not a valid HTTP/1.x response.
    #[error("invalid HTTP response: {0}")]
    Protocol(&'static str),
}

/// How the response body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(u64),
    Chunked,
    UntilClose,
}

/// What a response head says: the bytes it takes, the status, the body framing,
/// whether the server keeps the connection open, and the body's content codings.
type Head = (usize, u16, Framing, bool, Codings);

/// The last response head parsed on a connection, byte for byte, and what it said.
///
/// A server answering the same request usually sends the same head again: a health
/// check, a static file, a cached answer, all with a `Date` that changes once a second.
/// Parsing depends only on the head's bytes, so a head that is byte-identical to the
/// last one is taken as it (one `memcmp`) instead of being parsed again, which is about
/// a third of the client's user-space instructions per request against nginx. A head
/// that differs (a new `Date`, another length, a request id) is parsed in full and
/// becomes the new one; that costs a copy of its bytes.
#[derive(Default)]
struct LastHead {
    bytes: Vec<u8>,
    head_only: bool,
    head: Option<Head>,
}

impl LastHead {
    /// Heads longer than this are parsed every time, so the copy stays small.
    const MAX: usize = 1024;

    /// [`parse_head`] of `buf`, remembering a complete head for the next call.
    fn parse(&mut self, buf: &[u8], head_only: bool) -> Result<Option<Head>, H1Error> {
        if let Some(head) = self.head {
            // `bytes` is a whole head (ending in its empty line), so a buffer that
            // starts with it parses, up to the same point, to the same thing.
            if self.head_only == head_only && buf.starts_with(&self.bytes) {
                return Ok(Some(head));
            }
        }
        let parsed = parse_head(buf, head_only)?;
        if let Some(head) = parsed {
            self.bytes.clear();
            if head.0 <= Self::MAX {
                self.bytes.extend_from_slice(&buf[..head.0]);
                self.head_only = head_only;
                self.head = Some(head);
            } else {
                self.head = None;
            }
        }
        Ok(parsed)
    }
}

/// One HTTP/1.1 connection and its read buffer.
pub(crate) struct H1 {
    io: Stream,
    buf: Vec<u8>,
    /// Unread bytes are `buf[pos..end]`.
    pos: usize,
    end: usize,
    /// Reads so far (wrapping): body pieces handed over under one count came in one read.
    reads: u32,
    /// Boxed: connections move in and out of the pool on every request, and a
    /// connection this small moves without a `memcpy` call.
    last_head: Box<LastHead>,
    /// With a fixed pool (`connections = N`): this connection's place in it, given back
    /// when the connection is dropped.
    slot: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl H1 {
    /// Bytes its read buffer holds.
    pub(crate) fn buffer_bytes(&self) -> usize {
        self.buf.capacity()
    }

    pub(crate) fn new(io: Stream) -> H1 {
        H1 {
            io,
            buf: vec![0; BUF],
            pos: 0,
            end: 0,
            reads: 0,
            last_head: Box::default(),
            slot: None,
        }
    }

    /// The connection, holding its place in a fixed pool while it lives.
    pub(crate) fn holding(mut self, slot: Option<tokio::sync::OwnedSemaphorePermit>) -> H1 {
        self.slot = slot;
        self
    }

    /// Whether an idle connection can no longer be used: the server closed it, reset
    /// it, or sent bytes nobody asked for. Does not wait. On a connection whose last
    /// read drained the socket this costs no system call: the runtime already knows
    /// there is nothing to read.
    pub(crate) fn is_stale(&mut self) -> bool {
        if self.pos < self.end {
            return true;
        }
        self.pos = 0;
        self.end = 0;
        let mut cx = Context::from_waker(Waker::noop());
        let mut rb = ReadBuf::new(&mut self.buf[..]);
        !matches!(
            Pin::new(&mut self.io).poll_read(&mut cx, &mut rb),
            Poll::Pending
        )
    }

    /// Writes one request (`head` then `body`) and reads its response, handing body
    /// bytes to `sink` with whether they are the first this exchange hands over from the
    /// read that brought them (a chunked body hands over each chunk apart, and several
    /// may come in one read), the header fields to `headers` if given, and noting in
    /// `first_byte` when the first bytes of the answer arrived and in `codings` the
    /// body's `Content-Encoding` (before any body byte is handed over), and in
    /// `location`, when given, whether the status is a redirect's and its `Location`.
    /// Returns the status and whether the connection may be reused.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn exchange(
        &mut self,
        head: &[u8],
        body: &[u8],
        head_only: bool,
        headers: Option<&mut HeaderMap>,
        first_byte: &Cell<Option<Instant>>,
        codings: &Cell<Codings>,
        location: Option<&Location>,
        sink: &mut impl FnMut(&[u8], bool),
    ) -> Result<(u16, bool), H1Error> {
        self.write(head, body).await.map_err(H1Error::NoResponse)?;
        let (status, framing, keep_alive, coded) = self
            .read_head(head_only, headers, first_byte, location)
            .await?;
        codings.set(coded);
        let mut last = None;
        let mut piece = |data: &[u8], read: u32| {
            sink(data, last != Some(read));
            last = Some(read);
        };
        self.read_body(framing, &mut piece).await?;
        let reusable = keep_alive && framing != Framing::UntilClose && self.pos == self.end;
        Ok((status, reusable))
    }

    async fn write(&mut self, head: &[u8], body: &[u8]) -> io::Result<()> {
        if body.is_empty() {
            self.io.write_all(head).await?;
        } else {
            let mut bufs = [IoSlice::new(head), IoSlice::new(body)];
            let mut rest = &mut bufs[..];
            while !rest.is_empty() {
                let n = self.io.write_vectored(rest).await?;
                if n == 0 {
                    return Err(io::ErrorKind::WriteZero.into());
                }
                IoSlice::advance_slices(&mut rest, n);
            }
        }
        // A no-op on TCP; TLS may hold the last record until flushed.
        self.io.flush().await
    }

    /// Reads more bytes into the buffer, making room first. Returns how many (0 at the
    /// end of the stream).
    async fn fill(&mut self) -> io::Result<usize> {
        if self.pos == self.end {
            self.pos = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            if self.pos > 0 {
                self.buf.copy_within(self.pos..self.end, 0);
                self.end -= self.pos;
                self.pos = 0;
            } else {
                let grown = (self.buf.len() * 2).min(MAX_HEAD);
                self.buf.resize(grown, 0);
            }
        }
        let n = self.io.read(&mut self.buf[self.end..]).await?;
        self.end += n;
        self.reads = self.reads.wrapping_add(1);
        Ok(n)
    }

    /// Reads up to the end of a final (non-1xx) response head, noting when its first
    /// bytes (or an interim response's) arrived; its header fields into `headers`.
    async fn read_head(
        &mut self,
        head_only: bool,
        mut headers: Option<&mut HeaderMap>,
        first_byte: &Cell<Option<Instant>>,
        location: Option<&Location>,
    ) -> Result<(u16, Framing, bool, Codings), H1Error> {
        let mut began = false;
        loop {
            if self.end > self.pos {
                if !began {
                    // Right after the read that returned them: no await in between.
                    first_byte.set(Some(Instant::now()));
                    began = true;
                }
                if let Some((used, status, framing, keep_alive, codings)) = self
                    .last_head
                    .parse(&self.buf[self.pos..self.end], head_only)?
                {
                    let head = self.pos..self.pos + used;
                    self.pos += used;
                    if status == 101 {
                        return Err(H1Error::Protocol(
                            "101 Switching Protocols was not asked for",
                        ));
                    }
                    if (100..200).contains(&status) {
                        continue;
                    }
                    if let Some(l) = location {
                        l.note(status, || find_location(&self.buf[head.clone()]));
                    }
                    if let Some(map) = headers.as_deref_mut() {
                        read_headers(&self.buf[head], map);
                    }
                    return Ok((status, framing, keep_alive, codings));
                }
                if self.end - self.pos >= MAX_HEAD {
                    return Err(H1Error::Protocol("response head larger than 64 KiB"));
                }
            }
            match self.fill().await {
                Ok(0) if began => return Err(H1Error::Incomplete),
                Ok(0) => {
                    return Err(H1Error::NoResponse(io::ErrorKind::UnexpectedEof.into()));
                }
                Ok(_) => {}
                Err(e) if began => return Err(H1Error::Io(e)),
                Err(e) => return Err(H1Error::NoResponse(e)),
            }
        }
    }

    /// Reads the body, handing each piece to `sink` with the count of the read that
    /// brought it.
    async fn read_body(
        &mut self,
        framing: Framing,
        sink: &mut impl FnMut(&[u8], u32),
    ) -> Result<(), H1Error> {
        match framing {
            Framing::Length(n) => self.read_exact_into(n, sink).await,
            Framing::UntilClose => loop {
                if self.pos < self.end {
                    sink(&self.buf[self.pos..self.end], self.reads);
                    self.pos = self.end;
                }
                if self.fill().await.map_err(H1Error::Io)? == 0 {
                    return Ok(());
                }
            },
            Framing::Chunked => loop {
                let size = self.read_chunk_size().await?;
                if size == 0 {
                    return self.read_trailers().await;
                }
                self.read_exact_into(size, sink).await?;
                while self.end - self.pos < 2 {
                    self.more().await?;
                }
                if &self.buf[self.pos..self.pos + 2] != b"\r\n" {
                    return Err(H1Error::Protocol("chunk data not followed by CRLF"));
                }
                self.pos += 2;
            },
        }
    }

    /// Reads more bytes; the end of the stream here cuts a response short.
    async fn more(&mut self) -> Result<(), H1Error> {
        match self.fill().await {
            Ok(0) => Err(H1Error::Incomplete),
            Ok(_) => Ok(()),
            Err(e) => Err(H1Error::Io(e)),
        }
    }

    async fn read_exact_into(
        &mut self,
        mut left: u64,
        sink: &mut impl FnMut(&[u8], u32),
    ) -> Result<(), H1Error> {
        while left > 0 {
            if self.pos == self.end {
                self.more().await?;
            }
            let n = (self.end - self.pos).min(usize::try_from(left).unwrap_or(usize::MAX));
            sink(&self.buf[self.pos..self.pos + n], self.reads);
            self.pos += n;
            left -= n as u64;
        }
        Ok(())
    }

    async fn read_chunk_size(&mut self) -> Result<u64, H1Error> {
        loop {
            match httparse::parse_chunk_size(&self.buf[self.pos..self.end]) {
                Ok(httparse::Status::Complete((used, size))) => {
                    self.pos += used;
                    return Ok(size);
                }
                Ok(httparse::Status::Partial) if self.end - self.pos < MAX_LINE => {
                    self.more().await?;
                }
                Ok(httparse::Status::Partial) => {
                    return Err(H1Error::Protocol("chunk-size line too long"));
                }
                Err(_) => return Err(H1Error::Protocol("invalid chunk size")),
            }
        }
    }

    /// Skips trailer fields up to the empty line that ends a chunked body.
    async fn read_trailers(&mut self) -> Result<(), H1Error> {
        loop {
            let line = &self.buf[self.pos..self.end];
            match memchr::memmem::find(line, b"\r\n") {
                Some(0) => {
                    self.pos += 2;
                    return Ok(());
                }
                Some(i) => self.pos += i + 2,
                None if line.len() < MAX_LINE => self.more().await?,
                None => return Err(H1Error::Protocol("trailer line too long")),
            }
        }
    }
}

/// The header fields of a complete response head into `map`, for a caller that keeps
/// them. The head's framing was read without a map, so they are parsed again, only when
/// asked for: out of line, so that the usual path does not carry it.
#[cold]
#[inline(never)]
fn read_headers(head: &[u8], map: &mut HeaderMap) {
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut []);
    if httparse::ParserConfig::default()
        .parse_response_with_uninit_headers(&mut resp, head, &mut slots)
        .is_ok()
    {
        map.reserve(resp.headers.len());
        for h in resp.headers.iter() {
            // httparse's names and values are HTTP's; a value http refuses is skipped.
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(h.name.as_bytes()),
                HeaderValue::from_bytes(h.value),
            ) {
                map.append(name, value);
            }
        }
    }
}

/// The `Location` of a complete redirect head: parsed again, only for a redirect.
#[cold]
#[inline(never)]
fn find_location(head: &[u8]) -> Option<bytes::Bytes> {
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut []);
    httparse::ParserConfig::default()
        .parse_response_with_uninit_headers(&mut resp, head, &mut slots)
        .ok()?;
    resp.headers
        .iter()
        .find(|h| is_name(h.name.as_bytes(), b"location"))
        .map(|h| bytes::Bytes::copy_from_slice(h.value.trim_ascii()))
}

/// Parses one response head from the start of `buf`: `None` if more bytes are needed.
fn parse_head(buf: &[u8], head_only: bool) -> Result<Option<Head>, H1Error> {
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut []);
    let used = match httparse::ParserConfig::default()
        .parse_response_with_uninit_headers(&mut resp, buf, &mut slots)
    {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(H1Error::Protocol("more than 100 response headers"))
        }
        Err(_) => return Err(H1Error::Protocol("malformed status line or header")),
    };
    let status = resp.code.unwrap_or(0);
    let http11 = resp.version == Some(1);
    let mut length: Option<u64> = None;
    let mut coded = false;
    let mut chunked = false;
    let mut close = false;
    let mut keep_alive = false;
    let mut codings = Codings::IDENTITY;
    for h in resp.headers.iter() {
        let name = h.name.as_bytes();
        if is_name(name, b"content-length") {
            let n = parse_length(h.value).ok_or(H1Error::Protocol("invalid Content-Length"))?;
            if length.is_some_and(|m| m != n) {
                return Err(H1Error::Protocol("conflicting Content-Length headers"));
            }
            length = Some(n);
        } else if is_name(name, b"transfer-encoding") {
            coded = true;
            chunked = tokens(h.value)
                .last()
                .is_some_and(|t| t.eq_ignore_ascii_case(b"chunked"));
        } else if is_name(name, b"content-encoding") {
            codings.add(h.value);
        } else if is_name(name, b"connection") {
            for t in tokens(h.value) {
                close |= t.eq_ignore_ascii_case(b"close");
                keep_alive |= t.eq_ignore_ascii_case(b"keep-alive");
            }
        }
    }
    let framing = if head_only || status < 200 || status == 204 || status == 304 {
        Framing::Length(0)
    } else if coded {
        // Transfer-Encoding overrides Content-Length; without chunked last, the body
        // runs to the end of the connection.
        if chunked {
            Framing::Chunked
        } else {
            Framing::UntilClose
        }
    } else {
        length.map_or(Framing::UntilClose, Framing::Length)
    };
    let reusable = !close && (http11 || keep_alive);
    Ok(Some((used, status, framing, reusable, codings)))
}

/// Whether header name `name` is `lower` (lowercase letters and `-`) in any case.
/// Setting bit 0x20 lowercases a letter; among the token characters httparse lets into
/// a name, only a letter's two cases and `-` itself map onto a lowercase letter or `-`
/// that way. Folding the whole name before one test lets the compiler compare it in
/// wide words, where a byte-by-byte `eq_ignore_ascii_case` stops at each byte.
fn is_name(name: &[u8], lower: &[u8]) -> bool {
    name.len() == lower.len()
        && name
            .iter()
            .zip(lower)
            .fold(0, |diff, (&a, &b)| diff | ((a | 0x20) ^ b))
            == 0
}

/// The comma-separated tokens of a header value, trimmed.
fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(|t| t.trim_ascii())
        .filter(|t| !t.is_empty())
}

fn parse_length(value: &[u8]) -> Option<u64> {
    let v = value.trim_ascii();
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(s: &str, head_only: bool) -> Result<Option<Head>, H1Error> {
        parse_head(s.as_bytes(), head_only)
    }

    #[test]
    fn framing_follows_rfc_9112() {
        let ok = |s: &str| head(s, false).unwrap().unwrap();
        assert_eq!(
            ok("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello").2,
            Framing::Length(5)
        );
        assert_eq!(
            ok("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 5\r\n\r\n")
                .2,
            Framing::Chunked
        );
        assert_eq!(
            ok("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n").2,
            Framing::UntilClose
        );
        assert_eq!(ok("HTTP/1.1 200 OK\r\n\r\n").2, Framing::UntilClose);
        assert_eq!(
            ok("HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n").2,
            Framing::Length(0)
        );
        assert_eq!(
            head("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", true)
                .unwrap()
                .unwrap()
                .2,
            Framing::Length(0)
        );
        assert!(head("HTTP/1.1 200 OK\r\nContent-Le", false)
            .unwrap()
            .is_none());
    }

    #[test]
    fn keep_alive_depends_on_version_and_connection() {
        let ka = |s: &str| head(s, false).unwrap().unwrap().3;
        assert!(ka("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
        assert!(!ka(
            "HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 0\r\n\r\n"
        ));
        assert!(!ka("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"));
        assert!(ka(
            "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n"
        ));
    }

    #[test]
    fn bad_heads_are_protocol_errors() {
        for bad in [
            "HTTX/1.1 200 OK\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "HTTP/1.1 2000 OK\r\n\r\n",
        ] {
            assert!(
                matches!(head(bad, false), Err(H1Error::Protocol(_))),
                "{bad:?}"
            );
        }
        let many = format!(
            "HTTP/1.1 200 OK\r\n{}\r\n",
            "a: b\r\n".repeat(MAX_HEADERS + 1)
        );
        assert!(matches!(head(&many, false), Err(H1Error::Protocol(_))));
    }

    #[test]
    fn a_head_identical_to_the_last_is_reused_and_any_other_is_parsed() {
        let mut last = LastHead::default();
        let a = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";
        let parsed = |last: &mut LastHead, s: &str, head_only| last.parse(s.as_bytes(), head_only);
        let first = parsed(&mut last, &format!("{a}hello"), false)
            .unwrap()
            .unwrap();
        assert_eq!(
            first,
            (a.len(), 200, Framing::Length(5), true, Codings::IDENTITY)
        );
        assert_eq!(last.bytes, a.as_bytes());

        // Byte-identical: the remembered answer is returned without parsing (marked
        // here so that a parse would show).
        last.head = Some((a.len(), 299, Framing::Length(5), true, Codings::IDENTITY));
        assert_eq!(
            parsed(&mut last, &format!("{a}HTTP/1.1"), false)
                .unwrap()
                .unwrap()
                .1,
            299
        );
        last.head = Some(first);

        // Anything else is parsed: another length, the same head cut short, the same
        // head for a HEAD request, a malformed one.
        let b = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n";
        assert_eq!(
            parsed(&mut last, b, false).unwrap().unwrap().2,
            Framing::Length(6)
        );
        assert_eq!(last.bytes, b.as_bytes());
        assert!(parsed(&mut last, &b[..b.len() - 1], false)
            .unwrap()
            .is_none());
        assert_eq!(
            parsed(&mut last, b, true).unwrap().unwrap().2,
            Framing::Length(0)
        );
        assert_eq!(
            parsed(&mut last, b, false).unwrap().unwrap().2,
            Framing::Length(6)
        );
        assert!(parsed(
            &mut last,
            "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            false
        )
        .is_err());
        assert_eq!(
            parsed(&mut last, b, false).unwrap().unwrap().2,
            Framing::Length(6)
        );

        // A head longer than the limit is not kept.
        let long = format!(
            "HTTP/1.1 200 OK\r\nX: {}\r\nContent-Length: 0\r\n\r\n",
            "y".repeat(LastHead::MAX)
        );
        assert_eq!(
            parsed(&mut last, &long, false).unwrap().unwrap().2,
            Framing::Length(0)
        );
        assert!(last.head.is_none() && last.bytes.is_empty());
    }

    #[test]
    fn header_names_match_in_any_case_and_nothing_else() {
        assert!(is_name(b"Content-Length", b"content-length"));
        assert!(is_name(b"CONTENT-LENGTH", b"content-length"));
        assert!(is_name(b"connection", b"connection"));
        assert!(!is_name(b"Content-Lengths", b"content-length"));
        assert!(!is_name(b"Content_Length", b"content-length"));
        assert!(!is_name(b"Connectiom", b"connection"));
        // No other token byte (RFC 9110's tchar, all httparse lets into a name) does.
        let others = b"!#$%&'*+.^_`|~0123456789";
        for &b in others {
            assert!(!is_name(&[b], b"-") && !is_name(&[b], b"c"), "{b:#x}");
        }
        assert!(!is_name(b"C", b"d") && is_name(b"C", b"c") && is_name(b"c", b"c"));
    }
}
