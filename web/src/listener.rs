//! [`WebListener`]: the connections the HTTP server's WebSocket endpoints
//! accept, as a [`Listener`] for the map.

use async_trait::async_trait;
use pando_distributed_map::transport::{Incoming, Listener, TransportError};
use tokio::sync::mpsc;

/// The worker connections that reach the [`Site`](crate::Site)'s WebSocket
/// endpoints, native and browser alike, each with its codec: give it to
/// [`DistributedMap::serve`](pando_distributed_map::DistributedMap::serve).
///
/// When the map stops accepting (every value has its result), the listener
/// is dropped, and the endpoints answer `503 Service Unavailable`.
///
/// See the [crate documentation](crate) for an example.
#[derive(Debug)]
pub struct WebListener {
    pub(crate) incoming: mpsc::Receiver<Incoming>,
    pub(crate) url: String,
}

#[async_trait]
impl Listener for WebListener {
    async fn accept(&mut self) -> Result<Incoming, TransportError> {
        self.incoming.recv().await.ok_or_else(|| TransportError::Closed {
            peer: self.url.clone(),
        })
    }

    fn url(&self) -> String {
        self.url.clone()
    }
}
