//! The HTTP server: hyper's HTTP/1 connections with a header-read timeout, a whole-request timeout and
//! a cap on open connections, so that slow or idle clients cannot hold every connection of an exposed
//! dashboard.
//!
//! - **Header read**: a connection whose request head is not complete within `header_read_timeout`
//!   (a half-sent request, or a kept-alive connection that sends nothing) is closed.
//! - **Whole request**: a request not answered within `request_timeout` (a body sent slowly included)
//!   gets `408`.
//! - **Connections**: at most `max_connections` are served at once; beyond that, new connections wait
//!   in the listen queue until one closes.
//! - **Sizes**: a request head over [`MAX_HEAD_BYTES`] gets `431`; a body over [`MAX_BODY_BYTES`] (the
//!   login form is the only one read) gets `413`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::sync::Semaphore;

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
}

/// The default header-read timeout, in seconds.
pub const DEFAULT_HEADER_TIMEOUT_SECS: u64 = 10;
/// The default whole-request timeout, in seconds.
pub const DEFAULT_REQUEST_TIMEOUT_SECS: u64 = 30;
/// The default cap on open connections.
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;

impl Default for ServerLimits {
    fn default() -> ServerLimits {
        ServerLimits {
            header_read_timeout: Duration::from_secs(DEFAULT_HEADER_TIMEOUT_SECS),
            request_timeout: Duration::from_secs(DEFAULT_REQUEST_TIMEOUT_SECS),
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// Serve `app` on `listener` within `limits` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: ServerLimits,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let connections = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
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
        let service = TowerToHyperService::new(
            app.clone()
                .layer(axum::Extension(ConnectInfo::<SocketAddr>(peer))),
        );
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            let _permit = permit;
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
