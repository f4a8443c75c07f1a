//! [`serve`] and [`serve_with`]: the HTTP server of the master's port, with
//! a deadline on each request's header and a cap on the connections that
//! have not sent a whole one ([`ServeConfig`]).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt;

use crate::throttle::{Throttle, and_more};

/// How the master's port treats connections before their request is whole.
///
/// A connection is *pending* from its acceptance until the header of its
/// request has arrived (a WebSocket upgrade or an event stream then lives
/// on, uncounted here: the map counts the WebSocket handshakes in its own
/// `max_pending`, the monitor caps its streams). At most
/// [`max_pending`](ServeConfig::max_pending) connections are pending at
/// once: a connection beyond it is closed at once. A request whose header
/// is not whole within [`header_timeout`](ServeConfig::header_timeout) of
/// its connection's start is dropped with its connection. Each connection
/// serves one request (no keep-alive), so a connection that is not pending
/// is busy with its one response, upgrade or stream. Both drops are logged
/// with the peer's address, at most one line a second for each kind.
///
/// ```
/// use std::time::Duration;
/// let config = pando_web::ServeConfig::default()
///     .header_timeout(Duration::from_secs(5))
///     .max_pending(64);
/// assert_eq!(config.get_header_timeout(), Duration::from_secs(5));
/// assert_eq!(config.get_max_pending(), 64);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServeConfig {
    header_timeout: Duration,
    max_pending: usize,
}

impl Default for ServeConfig {
    /// A header within 10 s (the map's default handshake deadline), at
    /// most 256 connections pending (the map's default `max_pending`).
    ///
    /// ```
    /// let config = pando_web::ServeConfig::default();
    /// assert_eq!(config.get_header_timeout(), std::time::Duration::from_secs(10));
    /// assert_eq!(config.get_max_pending(), 256);
    /// ```
    fn default() -> Self {
        ServeConfig {
            header_timeout: Duration::from_secs(10),
            max_pending: 256,
        }
    }
}

impl ServeConfig {
    /// The time a connection has to send the whole header of its request,
    /// from its acceptance (at least 1 ms).
    ///
    /// See [`ServeConfig`] for an example.
    #[must_use]
    pub fn header_timeout(mut self, timeout: Duration) -> Self {
        self.header_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// The most connections whose request header has not arrived yet (at
    /// least 1).
    ///
    /// See [`ServeConfig`] for an example.
    #[must_use]
    pub fn max_pending(mut self, max: usize) -> Self {
        self.max_pending = max.max(1);
        self
    }

    /// See [`header_timeout`](ServeConfig::header_timeout).
    ///
    /// See [`ServeConfig`] for an example.
    pub fn get_header_timeout(&self) -> Duration {
        self.header_timeout
    }

    /// See [`max_pending`](ServeConfig::max_pending).
    ///
    /// See [`ServeConfig`] for an example.
    pub fn get_max_pending(&self) -> usize {
        self.max_pending
    }
}

/// Serves `router` on `listener` with the default [`ServeConfig`] until the
/// task is dropped: see [`serve_with`].
///
/// See the [crate documentation](crate) for an example.
pub async fn serve(listener: TcpListener, router: Router) -> std::io::Result<()> {
    serve_with(listener, router, ServeConfig::default()).await
}

/// Serves `router` on `listener` until the task is dropped, over HTTP/1.1
/// with upgrades (WebSocket), with the peers' addresses for the handlers
/// (`ConnectInfo<SocketAddr>`), Nagle's algorithm off, and the limits of
/// `config`. Errors accepting a connection are logged, not returned: when
/// the process is out of file descriptors it tries again a second later.
///
/// ```
/// # #[tokio::main] async fn main() {
/// use std::time::Duration;
/// let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
/// let router = axum::Router::new().route("/", axum::routing::get(|| async { "hi" }));
/// let config = pando_web::ServeConfig::default().header_timeout(Duration::from_secs(2));
/// let server = tokio::spawn(pando_web::serve_with(tcp, router, config));
/// server.abort();
/// # }
/// ```
pub async fn serve_with(listener: TcpListener, router: Router, config: ServeConfig) -> std::io::Result<()> {
    let pending = Arc::new(Semaphore::new(config.max_pending));
    let logs = Arc::new(Logs {
        full: Mutex::new(Throttle::new(LOG_PERIOD)),
        slow: Mutex::new(Throttle::new(LOG_PERIOD)),
    });
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                // Out of file descriptors, most likely: wait for some to
                // be released rather than spin.
                tracing::error!("cannot accept a connection: {e}; trying again in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let Ok(permit) = pending.clone().try_acquire_owned() else {
            drop(tcp);
            if let Some(unlogged) = logs.full.lock().unwrap_or_else(|p| p.into_inner()).event(now()) {
                tracing::warn!(
                    "closed the connection of {peer}: {} connections have not sent a whole request yet{}",
                    config.max_pending,
                    and_more(unlogged)
                );
            }
            continue;
        };
        tokio::spawn(connection(
            tcp,
            peer,
            permit,
            router.clone(),
            config,
            logs.clone(),
        ));
    }
}

/// At most one line per period for each kind of dropped connection.
const LOG_PERIOD: Duration = Duration::from_secs(1);

#[derive(Debug)]
struct Logs {
    /// Connections closed because too many were pending.
    full: Mutex<Throttle>,
    /// Connections dropped at the header deadline.
    slow: Mutex<Throttle>,
}

fn now() -> tokio::time::Instant {
    tokio::time::Instant::now()
}

/// Serves one connection: its one request, upgrade included. `permit` (one
/// of the pending connections) is released when the request's header has
/// arrived.
async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    permit: OwnedSemaphorePermit,
    router: Router,
    config: ServeConfig,
    logs: Arc<Logs>,
) {
    let _ = tcp.set_nodelay(true);
    let permit = Mutex::new(Some(permit));
    let service = hyper::service::service_fn(move |mut request: axum::http::Request<Incoming>| {
        // The header is whole: the connection is not pending any more.
        drop(permit.lock().unwrap_or_else(|p| p.into_inner()).take());
        request.extensions_mut().insert(ConnectInfo(peer));
        let answered = router.clone().oneshot(request.map(Body::new));
        async move {
            let mut response = answered.await?;
            // One request per connection: hyper closes it after a response
            // that says so. (Its own keep-alive switch would also write
            // `close` over a WebSocket upgrade's `Connection: upgrade`.)
            if response.status() != StatusCode::SWITCHING_PROTOCOLS {
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            Ok::<_, std::convert::Infallible>(response)
        }
    });
    let served = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_timeout)
        .serve_connection(TokioIo::new(tcp), service)
        .with_upgrades()
        .await;
    match served {
        Err(e) if e.is_timeout() => {
            if let Some(unlogged) = logs.slow.lock().unwrap_or_else(|p| p.into_inner()).event(now()) {
                tracing::warn!(
                    "closed the connection of {peer}: its request header did not arrive within {:?}{}",
                    config.header_timeout,
                    and_more(unlogged)
                );
            }
        }
        Err(e) => tracing::debug!("the connection of {peer} ended: {e}"),
        Ok(()) => {}
    }
}

/// Errors of one connection that `accept` reports, after which the next
/// accept can go on at once.
fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}
