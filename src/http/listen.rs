//! The accept loop of `belong serve`: HTTP/1.1 connections with the limits `axum::serve` does
//! not expose — a cap on open connections, a header-read timeout, an idle timeout — and an
//! `accept` that backs off when the process runs out of file descriptors instead of spinning.
//! Without these, clients that send half a request and stall hold a descriptor each forever.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;
use tower::ServiceExt;

/// How long connections may take and how many may be open at once.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// Connections open at once; further clients wait in the listen backlog until one closes
    /// (accepting them would only trade a queued client for an `EMFILE`).
    pub max_connections: usize,
    /// Time a client has to send a complete request head, from the moment the connection waits
    /// for one (hyper's timer: it also runs while a kept-alive connection waits for its next
    /// request).
    pub header_timeout: Duration,
    /// A connection with no request in flight and no bytes moving for this long is closed.
    pub idle_timeout: Duration,
}

/// Clients that may wait in the kernel for a place under `--max-connections` (the kernel caps it
/// at `net.core.somaxconn`); `TcpListener::bind` leaves 128, after which clients' SYNs are
/// dropped and their connects stall for seconds.
const BACKLOG: u32 = 1024;

/// Listen on `addr` with a [`BACKLOG`] of queued connections.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    // As `TcpListener::bind` does: a restarted service need not wait out TIME_WAIT.
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Accept connections on `listener` and serve `app` on each until `stop` completes; then stop
/// accepting, let every connection finish the request it is on, and return once all are closed.
pub async fn run(listener: TcpListener, app: Router, limits: ConnLimits, stop: impl Future<Output = ()>) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    // Every connection holds a receiver: `closed()` on the sender says they are all gone.
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let mut stop = pin!(stop);
    let mut backoff = Backoff::default();
    loop {
        // The permit comes first: at the cap, clients stay queued in the kernel, not accepted.
        let permit = tokio::select! {
            () = &mut stop => break,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((tcp, _peer)) => {
                backoff.reset();
                tokio::spawn(serve_connection(tcp, app.clone(), limits, shutdown_rx.clone(), permit));
            }
            // The client gave up between SYN and accept: nothing wrong on our side.
            Err(e) if is_connection_error(&e) => tracing::debug!("accept: {e}"),
            // Out of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM): retrying at once
            // would spin a core; open connections time out meanwhile and free descriptors.
            Err(e) => {
                let wait = backoff.next();
                tracing::warn!(
                    "accepting a connection failed: {e}; retrying in {wait:?} \
                     (if this says 'Too many open files', lower --max-connections below `ulimit -n`)"
                );
                tokio::select! {
                    () = &mut stop => break,
                    () = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
    drop(listener);
    let _ = shutdown_tx.send(true);
    drop(shutdown_rx);
    shutdown_tx.closed().await;
}

fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    matches!(e.kind(), ConnectionAborted | ConnectionRefused | ConnectionReset)
}

/// Growing pause between failed accepts: 50 ms doubling to 1 s, back to 50 ms after a success.
#[derive(Debug)]
struct Backoff(Duration);

impl Default for Backoff {
    fn default() -> Self {
        Backoff(Backoff::FIRST)
    }
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(50);
    const MAX: Duration = Duration::from_secs(1);

    fn next(&mut self) -> Duration {
        let wait = self.0;
        self.0 = (self.0 * 2).min(Backoff::MAX);
        wait
    }

    fn reset(&mut self) {
        self.0 = Backoff::FIRST;
    }
}

/// Serve one connection until it closes, times out or the service stops. `_permit` is its
/// place under `--max-connections`, given back when this returns.
async fn serve_connection(
    tcp: TcpStream,
    app: Router,
    limits: ConnLimits,
    mut shutdown: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Tracked { inner: tcp, activity: activity.clone() });
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |req: Request<Incoming>| {
            let busy = Busy::begin(&activity);
            let app = app.clone();
            async move {
                let res = app.oneshot(req.map(Body::new)).await?;
                Ok::<_, Infallible>(res.map(|body| WhileBusy { body, _busy: busy }))
            }
        })
    };
    // Oversized heads: `head_limits` (src/http/mod.rs) answers 414/431 with problem+json for
    // targets over `MAX_URI` (8 KiB) and headers over `MAX_HEADERS` (32 KiB), which hyper lets
    // through. Beyond hyper's own limits it answers by itself, with an empty body, before any
    // service sees the request: a request target over 65,534 bytes (a constant in hyper, not
    // configurable), more than 100 header lines (`max_headers`: raising it makes hyper allocate
    // the header array on the heap for every request) and a head over ~400 KiB (`max_buf_size`:
    // raising it raises what each of `--max-connections` connections may buffer). So those keep
    // hyper's empty 414/431: a body there would cost memory or speed on every connection.
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).keep_alive(true);
    let mut conn = pin!(builder.serve_connection(io, service));
    let mut stopping = false;
    let mut check = Instant::now() + limits.idle_timeout;
    loop {
        tokio::select! {
            served = conn.as_mut() => {
                // Header timeouts, resets and parse errors end up here; they are the client's.
                if let Err(e) = served {
                    tracing::debug!("connection closed: {e}");
                }
                break;
            }
            // An error means the loop is gone, which is a stop too.
            _ = shutdown.changed(), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
            () = tokio::time::sleep_until(check) => match activity.idle_since() {
                // Nothing in flight: closing loses no request.
                Some(since) if since.elapsed() >= limits.idle_timeout => {
                    tracing::debug!("closing a connection idle for {:?}", since.elapsed());
                    break;
                }
                Some(since) => check = since + limits.idle_timeout,
                None => check = Instant::now() + limits.idle_timeout,
            },
        }
    }
}

/// When a connection last moved bytes, and how many of its requests are being answered.
#[derive(Debug)]
struct Activity {
    opened: Instant,
    /// Milliseconds from `opened` to the last read or write.
    last: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    fn new() -> Activity {
        Activity { opened: Instant::now(), last: AtomicU64::new(0), in_flight: AtomicUsize::new(0) }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(ms, Ordering::Relaxed);
    }

    /// The last time bytes moved, or `None` while a request is being answered (a slow query
    /// moves no bytes and is not idle).
    fn idle_since(&self) -> Option<Instant> {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return None;
        }
        Some(self.opened + Duration::from_millis(self.last.load(Ordering::Relaxed)))
    }
}

/// One request being answered, from its head until its response body is written (or dropped).
#[derive(Debug)]
struct Busy(Arc<Activity>);

impl Busy {
    fn begin(activity: &Arc<Activity>) -> Busy {
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        Busy(activity.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        // Idle time counts from the end of the response.
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A response body that keeps its request counted as in flight until hyper is done with it.
struct WhileBusy {
    body: Body,
    _busy: Busy,
}

impl http_body::Body for WhileBusy {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// The socket, noting in [`Activity`] every time bytes move.
struct Tracked {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl Tracked {
    fn moved<T>(&self, poll: Poll<std::io::Result<T>>, bytes: impl FnOnce(&T) -> usize) -> Poll<std::io::Result<T>> {
        if let Poll::Ready(Ok(n)) = &poll
            && bytes(n) > 0
        {
            self.activity.touch();
        }
        poll
    }
}

impl AsyncRead for Tracked {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = buf.filled().len() - before;
        self.moved(poll, |()| read)
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.moved(poll, |n| *n)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.moved(poll, |n| *n)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_backoff_grows_to_a_second_and_resets() {
        let mut b = Backoff::default();
        let waits: Vec<u64> = (0..7).map(|_| b.next().as_millis() as u64).collect();
        assert_eq!(waits, [50, 100, 200, 400, 800, 1000, 1000]);
        b.reset();
        assert_eq!(b.next(), Duration::from_millis(50));
    }
}
