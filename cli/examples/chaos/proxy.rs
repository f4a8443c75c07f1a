//! A TCP proxy between one worker and the master, whose connections the
//! schedule can cut. It carries bytes, so it serves the WebSocket and the
//! plain TCP transports alike.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinHandle};

/// A listening proxy to the master.
#[derive(Debug)]
pub(crate) struct Proxy {
    /// The port workers connect to.
    pub(crate) port: u16,
    accept: JoinHandle<()>,
    connections: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Proxy {
    /// A proxy on a free loopback port, forwarding to `master`.
    pub(crate) async fn start(master: SocketAddr) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let connections = Arc::new(Mutex::new(Vec::<AbortHandle>::new()));
        let held = connections.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut worker, _)) = listener.accept().await {
                let _ = worker.set_nodelay(true);
                let task = tokio::spawn(async move {
                    // A master that is gone (the run ended) refuses: the
                    // worker's connection is closed.
                    let Ok(mut to_master) = TcpStream::connect(master).await else {
                        return;
                    };
                    let _ = to_master.set_nodelay(true);
                    let _ = tokio::io::copy_bidirectional(&mut worker, &mut to_master).await;
                });
                let mut held = held.lock().unwrap_or_else(|p| p.into_inner());
                held.retain(|c| !c.is_finished());
                held.push(task.abort_handle());
            }
        });
        Ok(Proxy {
            port,
            accept,
            connections,
        })
    }

    /// Closes every open connection (both ends, at once); how many there were.
    pub(crate) fn cut(&self) -> usize {
        let mut held = self.connections.lock().unwrap_or_else(|p| p.into_inner());
        let open = held.iter().filter(|c| !c.is_finished()).count();
        for c in held.drain(..) {
            c.abort();
        }
        open
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}
