//! A deliberately broken HTTP server on raw TCP, for proving that loadgate classifies
//! every kind of target misbehaviour, never hangs and never panics. hyper cannot be
//! made to send malformed HTTP, so this writes bytes by hand.
//!
//! Not a general server: it reads one request head at a time and ignores request bodies.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// How the server misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Half a status line, then a TCP reset.
    ResetMidHeaders,
    /// Full headers promising 1000 bytes, 10 bytes of body, then a TCP reset.
    ResetMidBody,
    /// Correct responses, but every connection is closed (without `Connection: close`)
    /// after this many responses, as a server with a keep-alive request limit might.
    CloseEvery(u32),
    /// Reads the request and never answers.
    Hang,
    /// Headers, then the body one byte per second.
    Drip,
    /// A status line that is not HTTP.
    GarbageStatus,
    /// A chunked body with an invalid chunk size.
    BadChunked,
    /// `Content-Length: 100`, 10 bytes, then the connection closes.
    LengthMismatch,
    /// A valid 200 with a body of this many bytes.
    HugeBody(u64),
    /// Correct responses until this long after the first connection, then the listener
    /// and every connection close (later requests are refused). Counting from the first
    /// connection keeps the timing independent of when the client starts.
    DieAfter(Duration),
    /// Answers the first request on each connection correctly; reads the second and
    /// resets the connection (RST) without answering, as a crashing worker would.
    ResetSecond,
    /// Correct responses, but a connection idle for this long is closed (a clean close,
    /// without `Connection: close`), as Node's `keepAliveTimeout` does.
    IdleClose(Duration),
}

/// What a fault server saw, for tests that compare it with what loadgate reported.
#[derive(Debug, Default)]
pub struct FaultCounts {
    requests: AtomicU64,
    resets: AtomicU64,
}

/// A running fault server; stopped when dropped.
#[derive(Debug)]
pub struct FaultServer {
    addr: SocketAddr,
    counts: Arc<FaultCounts>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FaultServer {
    /// `http://ADDR`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Request heads read so far, on every connection.
    pub fn requests(&self) -> u64 {
        self.counts.requests.load(Ordering::SeqCst)
    }

    /// Connections reset after a request was read and not answered.
    pub fn resets(&self) -> u64 {
        self.counts.resets.load(Ordering::SeqCst)
    }
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts a fault server on `addr` (e.g. `127.0.0.1:0`).
pub fn spawn_fault(fault: Fault, addr: SocketAddr) -> std::io::Result<FaultServer> {
    let std_listener = std::net::TcpListener::bind(addr)?;
    std_listener.set_nonblocking(true)?;
    let addr = std_listener.local_addr()?;
    let (tx, rx) = oneshot::channel::<()>();
    let counts = Arc::new(FaultCounts::default());
    let seen = counts.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let thread = std::thread::Builder::new()
        .name("loadgate-faults".into())
        .spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = TcpListener::from_std(std_listener) else {
                    return;
                };
                let first = tokio::sync::Notify::new();
                let accept = async {
                    loop {
                        let Ok((stream, _)) = listener.accept().await else {
                            continue;
                        };
                        first.notify_one();
                        tokio::spawn(serve(stream, fault, seen.clone()));
                    }
                };
                match fault {
                    Fault::DieAfter(d) => {
                        tokio::select! {
                            _ = accept => {}
                            _ = async { first.notified().await; tokio::time::sleep(d).await } => {}
                            _ = rx => {}
                        }
                    }
                    _ => {
                        tokio::select! {
                            _ = accept => {}
                            _ = rx => {}
                        }
                    }
                }
            });
            // Dropping the runtime closes the listener and every connection.
            runtime.shutdown_timeout(Duration::from_millis(50));
        })?;
    Ok(FaultServer {
        addr,
        counts,
        shutdown: Some(tx),
        thread: Some(thread),
    })
}

/// Reads one request head; false when the peer closed.
async fn read_head(stream: &mut TcpStream) -> bool {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if buf.windows(4).any(|w| w == b"\r\n\r\n") {
            return true;
        }
        if buf.len() > 64 * 1024 {
            return false;
        }
    }
}

fn reset(stream: TcpStream) {
    // SO_LINGER 0: close with RST instead of FIN (a zero linger never blocks).
    let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    drop(stream);
}

const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 15\r\n\r\n{\"status\":\"ok\"}";

async fn serve(mut stream: TcpStream, fault: Fault, counts: Arc<FaultCounts>) {
    let mut served = 0u32;
    loop {
        let next = match fault {
            Fault::IdleClose(idle) if served > 0 => {
                tokio::time::timeout(idle, read_head(&mut stream)).await
            }
            _ => Ok(read_head(&mut stream).await),
        };
        if next != Ok(true) {
            return;
        }
        counts.requests.fetch_add(1, Ordering::SeqCst);
        let w = &mut stream;
        let result = match fault {
            Fault::ResetMidHeaders => {
                let _ = w.write_all(b"HTTP/1.1 200 OK\r\nContent-").await;
                let _ = w.flush().await;
                reset(stream);
                return;
            }
            Fault::ResetMidBody => {
                let _ = w
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n0123456789")
                    .await;
                let _ = w.flush().await;
                tokio::time::sleep(Duration::from_millis(5)).await;
                reset(stream);
                return;
            }
            Fault::CloseEvery(n) => {
                let r = w.write_all(OK).await;
                served += 1;
                if served >= n {
                    return;
                }
                r
            }
            Fault::Hang => {
                // Keep the connection open until the peer gives up.
                let mut sink = [0u8; 64];
                while matches!(w.read(&mut sink).await, Ok(n) if n > 0) {}
                return;
            }
            Fault::Drip => {
                let _ = w
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n")
                    .await;
                for _ in 0..100 {
                    if w.write_all(b"x").await.is_err() || w.flush().await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Ok(())
            }
            Fault::GarbageStatus => {
                let _ = w.write_all(b"HTPT/9.9 banana\r\n\r\n").await;
                return;
            }
            Fault::BadChunked => {
                let _ = w.write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n").await;
                return;
            }
            Fault::LengthMismatch => {
                let _ = w
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n0123456789")
                    .await;
                return;
            }
            Fault::HugeBody(n) => {
                let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {n}\r\n\r\n");
                let mut r = w.write_all(head.as_bytes()).await;
                let block = vec![b'x'; 64 * 1024];
                let mut left = n;
                while left > 0 && r.is_ok() {
                    let k = left.min(block.len() as u64) as usize;
                    r = w.write_all(&block[..k]).await;
                    left -= k as u64;
                }
                r
            }
            Fault::DieAfter(_) => w.write_all(OK).await,
            Fault::ResetSecond if served == 0 => {
                served += 1;
                w.write_all(OK).await
            }
            Fault::ResetSecond => {
                counts.resets.fetch_add(1, Ordering::SeqCst);
                reset(stream);
                return;
            }
            Fault::IdleClose(_) => {
                served += 1;
                w.write_all(OK).await
            }
        };
        if result.is_err() {
            return;
        }
    }
}
