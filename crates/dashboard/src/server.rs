//! The HTTP server: hyper's HTTP/1 connections with a header-read timeout, a whole-request timeout and
//! a cap on open connections, so that slow or idle clients cannot hold every connection of an exposed
//! dashboard.
//!
//! - **Header read**: a connection whose request head is not complete within `header_read_timeout`
//!   (a half-sent request, or a kept-alive connection that sends nothing) is closed.
//! - **Whole request**: a request not answered within `request_timeout` (a body sent slowly included)
//!   gets `408`.
//! - **Connections**: at most `max_connections` are served at once; beyond that, new connections wait
//!   in the listen queue until one closes. One client (an IPv4 address, an IPv6 /64) holds at most
//!   `connections_per_client` of them: a connection beyond its share gets one `503` with `Retry-After`
//!   outside the pool and is closed, so one client cannot take every slot (a trusted proxy, which
//!   carries every client, is not held to it).
//! - **Idle**: a kept-alive connection that sends no new request within `idle_timeout` is closed.
//! - **Writes**: a response that cannot be written for `write_timeout` (a client that stops reading)
//!   closes its connection.
//! - **Sizes**: a request head over [`MAX_HEAD_BYTES`] gets `431`; a body over [`MAX_BODY_BYTES`] (the
//!   login form is the only one read) gets `413`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::{Context as _, Result};
use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Semaphore;

use crate::exposure::Network;
use crate::throttle::ClientKey;

/// The largest request head read (request line and headers).
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// The largest request body read.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// How long open connections get to finish when the dashboard stops.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The server's timeouts and connection cap (see the module's documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// A request's head must arrive within this.
    pub header_read_timeout: Duration,
    /// A request must be answered within this.
    pub request_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// Connections one client may hold open at once.
    pub connections_per_client: usize,
    /// How long a kept-alive connection may wait for its next request.
    pub idle_timeout: Duration,
    /// How long a response may wait on a client that does not read it.
    pub write_timeout: Duration,
}

/// The default header-read timeout, in seconds.
pub const DEFAULT_HEADER_TIMEOUT_SECS: u64 = 10;
/// The default whole-request timeout, in seconds.
pub const DEFAULT_REQUEST_TIMEOUT_SECS: u64 = 30;
/// The default cap on open connections.
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;
/// The default share of one client: 16 of the 256 (a browser opens 6 per host; 16 leaves room for a
/// few tabs and devices behind one address, and 16 clients can still fill the server only together).
pub const DEFAULT_CONNECTIONS_PER_CLIENT: u64 = 16;
/// The default idle keep-alive timeout, in seconds (browsers reuse a connection within a page's
/// loading; nginx's own default is 75 s, but a dashboard page loads in well under a second).
pub const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 5;
/// The default write timeout, in seconds.
pub const DEFAULT_WRITE_TIMEOUT_SECS: u64 = 10;

impl Default for ServerLimits {
    fn default() -> ServerLimits {
        ServerLimits {
            header_read_timeout: Duration::from_secs(DEFAULT_HEADER_TIMEOUT_SECS),
            request_timeout: Duration::from_secs(DEFAULT_REQUEST_TIMEOUT_SECS),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            connections_per_client: DEFAULT_CONNECTIONS_PER_CLIENT as usize,
            idle_timeout: Duration::from_secs(DEFAULT_IDLE_TIMEOUT_SECS),
            write_timeout: Duration::from_secs(DEFAULT_WRITE_TIMEOUT_SECS),
        }
    }
}

/// Open connections per client, for the per-client cap.
#[derive(Debug, Default, Clone)]
struct PerClient(Arc<Mutex<HashMap<ClientKey, usize>>>);

/// One open connection counted against its client; uncounted when dropped.
struct Counted {
    table: PerClient,
    client: ClientKey,
}

impl PerClient {
    /// Count a connection of `client`, unless it holds `cap` already.
    fn open(&self, client: ClientKey, cap: usize) -> Option<Counted> {
        let mut table = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let open = table.entry(client).or_default();
        if *open >= cap {
            return None;
        }
        *open += 1;
        Some(Counted {
            table: self.clone(),
            client,
        })
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        let mut table = self.table.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(open) = table.get_mut(&self.client) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                table.remove(&self.client);
            }
        }
    }
}

/// A connection whose writes fail with `TimedOut` once one has waited `limit` on the client.
struct WriteTimeout<S> {
    inner: S,
    limit: Duration,
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<S> WriteTimeout<S> {
    fn new(inner: S, limit: Duration) -> WriteTimeout<S> {
        WriteTimeout {
            inner,
            limit,
            stalled: None,
        }
    }

    /// After a write poll: progress clears the clock; waiting starts it, and too long fails.
    fn watch<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<std::io::Result<T>>,
    ) -> Poll<std::io::Result<T>> {
        match poll {
            Poll::Ready(result) => {
                self.stalled = None;
                Poll::Ready(result)
            }
            Poll::Pending => {
                let limit = self.limit;
                let stalled = self
                    .stalled
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                if stalled.as_mut().poll(cx).is_ready() {
                    Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the client did not read its response",
                    )))
                } else {
                    Poll::Pending
                }
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteTimeout<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteTimeout<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.watch(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.watch(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.watch(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.watch(cx, poll)
    }
}

/// The answer on a connection beyond its client's share.
async fn too_many(
    _request: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<axum::body::Body>, std::convert::Infallible> {
    let mut response = hyper::Response::new(axum::body::Body::from(
        "Too many connections from your address at once. Try again in a moment.\n",
    ));
    *response.status_mut() = hyper::StatusCode::SERVICE_UNAVAILABLE;
    response.headers_mut().insert(
        hyper::header::RETRY_AFTER,
        hyper::header::HeaderValue::from_static("1"),
    );
    Ok(response)
}

/// Serve `app` on `listener` within `limits` until `shutdown` completes; connections from
/// `trusted_proxies` are not held to the per-client cap.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: ServerLimits,
    trusted_proxies: &[Network],
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let connections = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    // Connections beyond a client's share get one `503` each, outside the pool of served ones (and
    // at most as many at once as the pool holds; beyond that they are closed unanswered).
    let overflow = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let per_client = PerClient::default();
    let is_proxy = |ip: IpAddr| trusted_proxies.iter().any(|net| net.contains(ip));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    // hyper's header-read timer runs from the moment it waits for a request's head, so it bounds
    // both a head sent slowly and a kept-alive connection that sends nothing: the shorter of the two
    // limits applies while no request has started.
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout.min(limits.idle_timeout))
        .max_buf_size(MAX_HEAD_BYTES);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => permit.context("the connection cap")?,
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: wait a moment rather than spin.
                    tracing::warn!(error = %err, "Could not accept a connection.");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let counted = if is_proxy(peer.ip()) {
            None
        } else {
            let client = ClientKey::of(peer.ip());
            match per_client.open(client, limits.connections_per_client.max(1)) {
                Some(counted) => Some(counted),
                None => {
                    tracing::debug!(client = %client, "A connection beyond the client's share: 503.");
                    drop(permit);
                    if let Ok(spare) = overflow.clone().try_acquire_owned() {
                        let mut busy = hyper::server::conn::http1::Builder::new();
                        busy.timer(TokioTimer::new())
                            .header_read_timeout(
                                limits.header_read_timeout.min(limits.idle_timeout),
                            )
                            .keep_alive(false)
                            .max_buf_size(MAX_HEAD_BYTES);
                        let io = TokioIo::new(WriteTimeout::new(stream, limits.write_timeout));
                        tokio::spawn(async move {
                            let _spare = spare;
                            let _ = busy
                                .serve_connection(io, hyper::service::service_fn(too_many))
                                .await;
                        });
                    }
                    continue;
                }
            }
        };
        let service = TowerToHyperService::new(
            app.clone()
                .layer(axum::Extension(ConnectInfo::<SocketAddr>(peer))),
        );
        let io = TokioIo::new(WriteTimeout::new(stream, limits.write_timeout));
        let connection = graceful.watch(http.serve_connection(io, service));
        tokio::spawn(async move {
            let _permit = permit;
            let _counted = counted;
            if let Err(err) = connection.await {
                tracing::debug!(client = %peer, error = %err, "A connection ended with an error.");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("Connections still open at shutdown were closed.");
    }
    Ok(())
}
