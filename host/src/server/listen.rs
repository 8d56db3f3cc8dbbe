//! Accepting connections, with what a client can make the gateway hold counted and
//! capped before it is held: open connections (`max_connections`, a permit taken before
//! `accept`), time to send a request's headers, on a new connection and between
//! kept-alive requests (`header_read_timeout_ms`: hyper closes the connection), time
//! to a response (`request_timeout_ms`, in `server::router`), and time a write to the
//! client may stall (`write_timeout_ms`: a client that stops reading a stream has its
//! connection closed, which drops the response body and so cancels the pipeline).
//!
//! hyper-util's connection builder rather than `axum::serve`, which sets no timer, so a
//! client that sends half a request line and then nothing held its connection forever.

use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_io_timeout::TimeoutStream;

use crate::config::ServerConfig;

/// Serves `app` on `listener` until `shutdown` resolves, then waits up to `grace` for the
/// open connections' requests to finish.
pub(super) async fn run(
    listener: TcpListener,
    app: axum::Router,
    limits: &ServerConfig,
    grace: Duration,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(limits.header_read_timeout_ms));
    // HTTP/2 (prior knowledge) has no header timeout: its pings find dead peers, and a
    // connection's streams are capped like OpenAI's own.
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Duration::from_millis(limits.header_read_timeout_ms))
        .keep_alive_timeout(Duration::from_millis(limits.header_read_timeout_ms))
        .max_concurrent_streams(100);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let write_timeout = Duration::from_millis(limits.write_timeout_ms);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let tcp = tokio::select! {
            r = listener.accept() => match r {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Streams are many small writes: with Nagle's algorithm each waits for the
        // client's delayed ACK (~40 ms per response on Linux).
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        // hyper stops polling a response body while the socket is not writable, so only a
        // timeout on the socket itself notices a client that stopped reading.
        let mut io = TimeoutStream::new(tcp);
        io.set_write_timeout(Some(write_timeout));
        let service = TowerToHyperService::new(app.clone());
        let conn = builder.serve_connection_with_upgrades(TokioIo::new(Box::pin(io)), service);
        let conn = graceful.watch(conn.into_owned());
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("in-flight requests did not finish within {grace:?}; stopping");
    }
}
