//! [`Site`]: the router of the master's port.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, FromRequestParts, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use pando_distributed_map::codec::Codec;
use pando_distributed_map::transport::{Incoming, TransportError};
use subtle::ConstantTimeEq;
use tokio::sync::{mpsc, oneshot};

use crate::files::{FunctionDir, FunctionError};
use crate::listener::WebListener;
use crate::page;

/// The HTTP side of a master: the volunteer page, the user's function file,
/// and the WebSocket endpoints of native and browser workers.
/// [`build`](Site::build) makes the [`Router`] to serve and the
/// [`WebListener`] to give the map.
///
/// See the [crate documentation](crate) for an example.
#[derive(Clone, Debug)]
pub struct Site {
    token: String,
    max_frame: usize,
    function: Option<FunctionDir>,
    backlog: usize,
}

/// What the handlers share.
#[derive(Debug)]
struct Shared {
    token: String,
    max_frame: usize,
    function: Option<FunctionDir>,
    incoming: mpsc::Sender<Incoming>,
}

impl Shared {
    fn token_is(&self, given: &str) -> bool {
        given.as_bytes().ct_eq(self.token.as_bytes()).into()
    }
}

impl Site {
    /// A site for a map whose join token is `token` and whose frame limit
    /// is `max_frame` bytes (both from its [`MapConfig`](pando_distributed_map::MapConfig)).
    ///
    /// ```
    /// let site = pando_web::Site::new("s3cret", 1 << 20);
    /// let (_router, _listener) = site.build("ws://127.0.0.1:8080/");
    /// ```
    pub fn new(token: &str, max_frame: usize) -> Self {
        Site {
            token: token.to_string(),
            max_frame,
            function: None,
            backlog: 256,
        }
    }

    /// The JavaScript file whose function browser workers apply: the page
    /// loads it, and may import the files of its directory (hidden files
    /// excepted), which are served too, behind the token.
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("pando-web-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// std::fs::write(dir.join("f.js"), "export default x => x").unwrap();
    /// assert!(pando_web::Site::new("t", 1 << 20).function(dir.join("f.js")).is_ok());
    /// ```
    pub fn function(mut self, path: impl AsRef<Path>) -> Result<Self, FunctionError> {
        self.function = Some(FunctionDir::new(path.as_ref())?);
        Ok(self)
    }

    /// The router of the master's port, and the listener of the worker
    /// connections it accepts; `url` is the native workers' URL, without
    /// the token (what [`Listener::url`](pando_distributed_map::transport::Listener::url) says).
    ///
    /// Serve the router with [`serve`](crate::serve), which gives the handlers the peers'
    /// addresses. Other routers (the monitoring page) can be merged into it.
    ///
    /// See [`Site::new`] for an example.
    pub fn build(self, url: &str) -> (Router, WebListener) {
        let (tx, rx) = mpsc::channel(self.backlog);
        let shared = Arc::new(Shared {
            token: self.token,
            max_frame: self.max_frame,
            function: self.function,
            incoming: tx,
        });
        let router = Router::new()
            .route("/", get(root))
            .route("/browser", get(browser))
            .route("/volunteer.js", get(|| script(page::VOLUNTEER_JS)))
            .route("/volunteer-worker.js", get(|| script(page::WORKER_JS)))
            .route("/t/{token}/fn/{*path}", get(function_file))
            .with_state(shared);
        (
            router,
            WebListener {
                incoming: rx,
                url: url.to_string(),
            },
        )
    }
}

async fn script(source: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        source,
    )
        .into_response()
}

/// The peer's address, when the router is served with [`serve`](crate::serve).
fn peer_of(parts: &axum::http::request::Parts) -> String {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "an unknown address".to_string(), |c| c.0.to_string())
}

/// `/`: a native worker's WebSocket, or the volunteer page.
async fn root(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (mut parts, _) = request.into_parts();
    let peer = peer_of(&parts);
    let upgrade = parts
        .headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if upgrade {
        return match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
            Ok(ws) => accept(&shared, ws, peer, Codec::Postcard),
            Err(rejection) => rejection.into_response(),
        };
    }
    let query = Query::<HashMap<String, String>>::try_from_uri(&parts.uri)
        .map(|q| q.0)
        .unwrap_or_default();
    match query.get("token") {
        None => refuse(
            StatusCode::UNAUTHORIZED,
            "This page needs the join token",
            "Open the whole address that pando printed: it ends with ?token=… . Without it, this tab cannot help.",
        ),
        Some(token) if !shared.token_is(token) => refuse(
            StatusCode::FORBIDDEN,
            "Wrong join token",
            "The token in this address is not this run's. Open the address pando printed for this run; an old one does not work.",
        ),
        Some(_) => {
            let name = shared.function.as_ref().map(|f| f.file.as_str());
            ([(header::CACHE_CONTROL, "no-store")], Html(page::volunteer(name))).into_response()
        }
    }
}

fn refuse(status: StatusCode, title: &str, explanation: &str) -> Response {
    (status, Html(page::refused(title, explanation))).into_response()
}

/// `/browser`: a browser worker's WebSocket (JSON frames).
async fn browser(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (mut parts, _) = request.into_parts();
    let peer = format!("browser {}", peer_of(&parts));
    match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(ws) => accept(&shared, ws, peer, Codec::Json),
        Err(rejection) => rejection.into_response(),
    }
}

/// Hands the connection to the map: the map's handshake deadline counts
/// from now, the WebSocket upgrade included.
fn accept(shared: &Shared, ws: WebSocketUpgrade, peer: String, codec: Codec) -> Response {
    let (tx, rx) = oneshot::channel();
    let gone = peer.clone();
    let incoming = Incoming::new(peer.clone(), async move {
        rx.await.map_err(|_| TransportError::Closed { peer: gone })
    })
    .with_codec(codec);
    match shared.incoming.try_send(incoming) {
        Ok(()) => ws
            .max_message_size(shared.max_frame)
            .max_frame_size(shared.max_frame)
            .read_buffer_size(8 * 1024)
            .on_upgrade(move |socket| async move {
                let _ = tx.send(crate::socket::connection(peer, socket, codec));
            }),
        Err(mpsc::error::TrySendError::Full(_)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "too many connections are in their handshake; try again",
        )
            .into_response(),
        Err(mpsc::error::TrySendError::Closed(_)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "this run is over: every value has its result",
        )
            .into_response(),
    }
}

/// `/t/TOKEN/fn/PATH`: the function file and its siblings.
async fn function_file(
    State(shared): State<Arc<Shared>>,
    axum::extract::Path((token, path)): axum::extract::Path<(String, String)>,
) -> Response {
    if !shared.token_is(&token) {
        return (StatusCode::FORBIDDEN, "wrong join token").into_response();
    }
    let Some(dir) = &shared.function else {
        return (
            StatusCode::NOT_FOUND,
            "this run has no JavaScript function (pando --js)",
        )
            .into_response();
    };
    match dir.read(&path).await {
        Some((bytes, kind)) => (
            [(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, "no-cache")],
            bytes,
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            format!("no file {path:?} beside the function file"),
        )
            .into_response(),
    }
}
