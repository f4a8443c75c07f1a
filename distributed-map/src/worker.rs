//! The worker (seed 000, Algorithm 15): connect to a master, then apply a
//! function to the values it sends.

use std::collections::VecDeque;
use std::fmt::Display;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::time::{Instant, sleep_until};

use crate::error::JoinError;
use crate::frame::{DEFAULT_MAX_FRAME, Frame, PROTOCOL_VERSION, decode_payload, encode_payload};
use crate::master::split_join_url;
use crate::transport::{Connection, Connector, TransportError};

/// A worker: joins a master with [`connect`](Worker::connect), then
/// processes the values it sends with [`Session::run`].
///
/// ```no_run
/// use pando_distributed_map::Worker;
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let session = Worker::new("laptop").connect("ws://192.0.2.1:9000/?token=…").await?;
/// println!("the master runs {:?}", session.command());
/// let summary = session.run(|x: u64| async move { Ok::<_, String>(x * x) }).await?;
/// println!("{} values processed", summary.done);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Worker {
    name: String,
    max_frame: usize,
}

/// What a worker did, once the master said it was done.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerSummary {
    /// Values processed successfully.
    pub done: u64,
    /// Values whose processing failed (reported to the master).
    pub failed: u64,
}

/// A worker connected to a master, after the handshake.
pub struct Session {
    connection: Connection,
    heartbeat: Duration,
    command: Vec<String>,
    max_frame: usize,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("master", &self.connection.peer)
            .field("heartbeat", &self.heartbeat)
            .field("command", &self.command)
            .finish()
    }
}

impl Worker {
    /// A worker named `name` (shown in the master's monitoring).
    ///
    /// ```
    /// let w = pando_distributed_map::Worker::new("phone");
    /// # let _ = w;
    /// ```
    pub fn new(name: impl Into<String>) -> Self {
        Worker {
            name: name.into(),
            max_frame: DEFAULT_MAX_FRAME,
        }
    }

    /// Refuses frames larger than `max_frame` bytes (default 16 MiB).
    ///
    /// ```
    /// let w = pando_distributed_map::Worker::new("phone").max_frame(1 << 20);
    /// # let _ = w;
    /// ```
    pub fn max_frame(mut self, max_frame: usize) -> Self {
        self.max_frame = max_frame;
        self
    }

    /// Connects to the master at a join URL (`ws://…/?token=…` or
    /// `tcp://…?token=…`) and performs the handshake.
    ///
    /// See [`Worker`] for an example.
    pub async fn connect(&self, url: &str) -> Result<Session, JoinError> {
        let (base, _) = split_join_url(url);
        #[cfg(feature = "ws")]
        if base.starts_with("ws://") {
            return self
                .connect_with(&crate::transport::ws::WsConnector::new(self.max_frame), url)
                .await;
        }
        #[cfg(feature = "tcp")]
        if base.starts_with("tcp://") {
            return self
                .connect_with(&crate::transport::tcp::TcpConnector::new(self.max_frame), url)
                .await;
        }
        Err(JoinError::Transport(TransportError::BadUrl {
            url: url.to_string(),
            reason: "expected ws://HOST:PORT/?token=… or tcp://HOST:PORT?token=…".to_string(),
        }))
    }

    /// Connects with a given transport and performs the handshake.
    ///
    /// See the [crate documentation](crate) for an example.
    pub async fn connect_with<C: Connector>(&self, connector: &C, url: &str) -> Result<Session, JoinError> {
        let (base, token) = split_join_url(url);
        let mut connection = connector.connect(base).await?;
        let hello = Frame::Hello {
            version: PROTOCOL_VERSION,
            token: token.to_string(),
            name: self.name.clone(),
        };
        connection.sink.send(hello.encode()).await?;
        let reply = match connection.stream.next().await {
            Some(bytes) => Frame::decode(&bytes?, self.max_frame)?,
            None => {
                return Err(JoinError::Protocol(
                    "the master closed the connection during the handshake".into(),
                ));
            }
        };
        match reply {
            Frame::Welcome {
                version,
                heartbeat_ms,
                command,
            } if version == PROTOCOL_VERSION => Ok(Session {
                connection,
                heartbeat: Duration::from_millis(heartbeat_ms.max(1)),
                command,
                max_frame: self.max_frame,
            }),
            Frame::Welcome { version, .. } => Err(JoinError::Protocol(format!(
                "the master speaks protocol version {version}"
            ))),
            Frame::Reject { reason } => Err(JoinError::Rejected(reason)),
            other => Err(JoinError::Protocol(format!(
                "expected Welcome or Reject, got {}",
                other.name()
            ))),
        }
    }

    /// Connects with `connector` and runs `f` until the master is done.
    ///
    /// See the [crate documentation](crate) for an example.
    pub async fn run_with<C, In, Out, F, Fut, Err>(
        &self,
        connector: &C,
        url: &str,
        f: F,
    ) -> Result<WorkerSummary, JoinError>
    where
        C: Connector,
        In: DeserializeOwned,
        Out: Serialize,
        F: FnMut(In) -> Fut,
        Fut: Future<Output = Result<Out, Err>>,
        Err: Display,
    {
        self.connect_with(connector, url).await?.run(f).await
    }
}

impl Session {
    /// The command the master's workers run (`pando`'s COMMAND), for a
    /// volunteer to review before agreeing to run it.
    ///
    /// See [`Worker`] for an example.
    pub fn command(&self) -> &[String] {
        &self.command
    }

    /// Applies `f` to each value the master sends, one at a time, and sends
    /// back each result (or the failure, which counts towards that value's
    /// retries). Values the master sends ahead (its batch) wait in a queue.
    /// Heartbeats are sent while idle or computing. Returns when the master
    /// says it is done and every value received has its answer.
    ///
    /// See [`Worker`] for an example.
    pub async fn run<In, Out, F, Fut, Err>(self, mut f: F) -> Result<WorkerSummary, JoinError>
    where
        In: DeserializeOwned,
        Out: Serialize,
        F: FnMut(In) -> Fut,
        Fut: Future<Output = Result<Out, Err>>,
        Err: Display,
    {
        let Session {
            connection,
            heartbeat,
            max_frame,
            ..
        } = self;
        let Connection {
            mut sink,
            mut stream,
            peer,
        } = connection;
        let timeout = heartbeat * 10;
        let mut summary = WorkerSummary::default();
        let mut queue: VecDeque<(u64, Result<In, String>)> = VecDeque::new();
        let mut computing: Option<(u64, Pin<Box<Fut>>)> = None;
        let mut master_done = false;
        let mut last_sent = Instant::now();
        let mut last_heard = Instant::now();
        loop {
            if computing.is_none() {
                while let Some((id, value)) = queue.pop_front() {
                    match value {
                        Ok(value) => {
                            computing = Some((id, Box::pin(f(value))));
                            break;
                        }
                        Err(reason) => {
                            summary.failed += 1;
                            sink.send(Frame::Failed { id, reason }.encode()).await?;
                            last_sent = Instant::now();
                        }
                    }
                }
            }
            if master_done && computing.is_none() && queue.is_empty() {
                sink.send(Frame::Done.encode()).await?;
                let _ = sink.close().await;
                return Ok(summary);
            }
            let compute = async {
                match computing.as_mut() {
                    Some((id, fut)) => (*id, fut.as_mut().await),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                (id, result) = compute => {
                    computing = None;
                    let frame = match result {
                        Ok(out) => {
                            summary.done += 1;
                            Frame::Result { id, payload: encode_payload(&out) }
                        }
                        Err(e) => {
                            summary.failed += 1;
                            Frame::Failed { id, reason: e.to_string() }
                        }
                    };
                    sink.send(frame.encode()).await?;
                    last_sent = Instant::now();
                }
                frame = stream.next() => {
                    last_heard = Instant::now();
                    let bytes = match frame {
                        Some(bytes) => bytes?,
                        None => return Err(JoinError::Transport(TransportError::Closed { peer })),
                    };
                    match Frame::decode(&bytes, max_frame)? {
                        Frame::Value { id, payload } => {
                            let value = decode_payload::<In>(&payload).map_err(|e| e.to_string());
                            queue.push_back((id, value));
                        }
                        Frame::Heartbeat => {}
                        Frame::Done => master_done = true,
                        Frame::Error { message } => {
                            return Err(JoinError::Protocol(format!("the master stopped: {message}")));
                        }
                        other => {
                            let message = format!("unexpected {} frame", other.name());
                            let _ = sink.send(Frame::Error { message: message.clone() }.encode()).await;
                            return Err(JoinError::Protocol(message));
                        }
                    }
                }
                _ = sleep_until(last_sent + heartbeat) => {
                    sink.send(Frame::Heartbeat.encode()).await?;
                    last_sent = Instant::now();
                }
                _ = sleep_until(last_heard + timeout) => {
                    return Err(JoinError::Protocol(format!("nothing heard from the master for {timeout:?}")));
                }
            }
        }
    }
}
