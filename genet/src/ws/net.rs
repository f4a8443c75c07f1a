//! The network under the nodes and the relay: tokio's TCP by default, any
//! other (turmoil's simulated one, in the tests) through [`Network`].

use std::net::SocketAddr;

use async_trait::async_trait;
use pando_distributed_map::transport::{Dialer, StreamListener};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// The network a [`WsNode`](super::WsNode) or a [`Relay`](super::Relay)
/// runs over: it opens byte streams to `HOST:PORT` addresses (as a
/// [`Dialer`]: the relay connection, a child's connection to its parent)
/// and binds listeners ([`Network::bind`]: the relay's, and a node's for
/// its children). Every WebSocket of Genet runs over it, with the same
/// framing and the same library; the timers stay tokio's. [`TcpNetwork`]
/// (tokio's TCP) is the default; a simulated network plugs in by
/// implementing this and pando-distributed-map's [`Dialer`] and
/// [`StreamListener`], which its WebSocket and TCP transports use too.
///
/// A child connects to its parent at the address its parent's listener
/// gives as its [`local_addr`](StreamListener::local_addr): a listener
/// bound to a wildcard address must give one its children can reach
/// instead.
///
/// A network that counts the connections it opens, over tokio's TCP:
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use pando_genet::ws::{Dialer, Network, Relay, RelayConfig, TcpNetwork, WsNode, WsNodeConfig};
///
/// #[derive(Clone, Default)]
/// struct Counting(Arc<AtomicUsize>);
///
/// #[async_trait::async_trait]
/// impl Dialer for Counting {
///     type Stream = tokio::net::TcpStream;
///     async fn dial(&self, addr: &str) -> std::io::Result<tokio::net::TcpStream> {
///         self.0.fetch_add(1, Ordering::Relaxed);
///         TcpNetwork.dial(addr).await
///     }
/// }
///
/// #[async_trait::async_trait]
/// impl Network for Counting {
///     type Listener = tokio::net::TcpListener;
///     async fn bind(&self, addr: &str) -> std::io::Result<tokio::net::TcpListener> {
///         TcpNetwork.bind(addr).await
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let net = Counting::default();
/// let relay = Relay::bind_with("127.0.0.1:0", RelayConfig::new("s", "t"), net.clone()).await.unwrap();
/// let _node = WsNode::start_with(WsNodeConfig::new(relay.url(), "t", 1), net.clone()).await.unwrap();
/// assert_eq!(net.0.load(Ordering::Relaxed), 1); // the node's relay connection
/// # }
/// ```
#[async_trait]
pub trait Network: Dialer {
    /// What [`bind`](Network::bind) gives.
    type Listener: StreamListener;

    /// Binds a listener on `addr` (`HOST:PORT`; port 0 for any free port).
    async fn bind(&self, addr: &str) -> std::io::Result<Self::Listener>;
}

/// tokio's TCP, the default [`Network`]: Nagle's algorithm off both ways,
/// listeners with a backlog of 4096 (a thousand nodes may connect at once)
/// and `SO_REUSEADDR`.
///
/// ```
/// use pando_genet::ws::{Dialer, Network, TcpNetwork, StreamListener};
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let mut listener = TcpNetwork.bind("127.0.0.1:0").await.unwrap();
/// let addr = listener.local_addr().unwrap().to_string();
/// let _client = TcpNetwork.dial(&addr).await.unwrap();
/// let (_stream, peer) = StreamListener::accept(&mut listener).await.unwrap();
/// assert!(peer.starts_with("127.0.0.1:"));
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct TcpNetwork;

/// The backlog of every listener of [`TcpNetwork`].
const BACKLOG: u32 = 4096;

#[async_trait]
impl Dialer for TcpNetwork {
    type Stream = TcpStream;

    async fn dial(&self, addr: &str) -> std::io::Result<TcpStream> {
        let tcp = TcpStream::connect(addr).await?;
        let _ = tcp.set_nodelay(true);
        Ok(tcp)
    }
}

#[async_trait]
impl Network for TcpNetwork {
    type Listener = TcpListener;

    async fn bind(&self, addr: &str) -> std::io::Result<TcpListener> {
        let mut last = None;
        for a in tokio::net::lookup_host(addr).await? {
            let socket = if a.is_ipv4() {
                TcpSocket::new_v4()
            } else {
                TcpSocket::new_v6()
            }?;
            socket.set_reuseaddr(true)?;
            match socket.bind(a).and_then(|()| socket.listen(BACKLOG)) {
                Ok(listener) => return Ok(listener),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::other("the address resolves to nothing")))
    }
}

/// Binds on `net` and reads the address the listener got.
pub(crate) async fn listen<N: Network>(
    net: &N,
    addr: &str,
) -> Result<(N::Listener, SocketAddr), super::WsError> {
    let io = |source| super::WsError::Io {
        context: format!("cannot listen on {addr}"),
        source,
    };
    let listener = net.bind(addr).await.map_err(io)?;
    let local = listener.local_addr().map_err(io)?;
    Ok((listener, local))
}

/// The `HOST:PORT` of a `ws://` URL (port 80 by default).
pub(crate) fn address(url: &str) -> Result<String, String> {
    let uri: tokio_tungstenite::tungstenite::http::Uri =
        url.parse().map_err(|e| format!("bad URL {url:?}: {e}"))?;
    if uri.scheme_str() != Some("ws") {
        return Err(format!("bad URL {url:?}: expected ws://HOST:PORT/"));
    }
    let host = uri
        .host()
        .ok_or_else(|| format!("bad URL {url:?}: expected ws://HOST:PORT/ (no host)"))?;
    Ok(format!("{host}:{}", uri.port_u16().unwrap_or(80)))
}

#[cfg(test)]
mod tests {
    use super::address;

    #[test]
    fn addresses_of_urls() {
        assert_eq!(address("ws://127.0.0.1:9000/").unwrap(), "127.0.0.1:9000");
        assert_eq!(address("ws://relay:9000/").unwrap(), "relay:9000");
        assert_eq!(address("ws://relay/").unwrap(), "relay:80");
        assert_eq!(address("ws://[::1]:9/").unwrap(), "[::1]:9");
        assert!(address("wss://relay/").unwrap_err().contains("expected ws://"));
        assert!(address("not a url").is_err());
    }
}
