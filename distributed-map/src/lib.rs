//! # pando-distributed-map
//!
//! **DistributedMap** (seed 000, §4.5, Abstraction 3): map a function over a
//! stream with the devices that join: other processes, laptops, servers.
//!
//! ```text
//!  input ─▶ StreamLender ─▶ output (results, in input order)
//!               │ one sub-stream per worker connection:
//!               └─ Sk O ⇒ Limiter(batch_size)( ToWorker ⇄ transport ⇄ FromWorker ) ⇒ Sk I
//! ```
//!
//! * **The master** is [`DistributedMap`], a through: `pull!(input, map.clone(), output)`.
//!   [`DistributedMap::serve`] accepts workers from any [`transport::Listener`];
//!   [`DistributedMap::local_workers`] runs workers in this process (over the
//!   in-process transport, with the same protocol).
//! * **A worker** is [`Worker`]: `Worker::new(name).connect(url).await?.run(f).await`.
//! * **The wire protocol** (`docs/PROTOCOL.md`) is two sans-IO state
//!   machines, [`session::MasterSession`] and [`session::WorkerSession`],
//!   over the [`frame::Frame`]s of a versioned handshake with a join token,
//!   then values, results, failures, done, error and heartbeats. A
//!   [`codec::Codec`] (postcard) turns frames into bytes, with a maximum
//!   frame size.
//! * **Transports** ([`transport`]): in-process channels, WebSocket (the
//!   default network transport) and TCP with length-delimited frames. The
//!   lender never sees bytes.
//!
//! ## Properties (Abstraction 3)
//!
//! Unbounded and dynamic (workers join and leave at any time), lazy (inputs
//! are read as workers ask), conservative, fault-tolerant (a worker that
//! disconnects, stops answering heartbeats, or sends a malformed, oversized
//! or unexpected frame is dropped with a logged reason naming it, and its
//! values are lent again), ordered, and capability-balanced (faster workers
//! ask for more; the Limiter bounds each worker to `batch_size` values).
//! A value that fails more than `max_retries` times (its function fails, or
//! workers die holding it) ends the map with an error naming its position, or
//! is skipped ([`PoisonPolicy::Skip`]): it never loops forever. Workers need
//! the join token, part of the join URL; others are rejected before any value
//! is sent.
//!
//! ## Example
//!
//! A master on a loopback WebSocket port, with two local workers and one
//! remote worker:
//!
//! ```
//! use pando_distributed_map::{DistributedMap, MapConfig, Worker, join_url, transport::{Listener, ws}};
//! use pando_pull_stream::{collect, count, pull};
//!
//! # #[tokio::main] async fn main() {
//! let map = DistributedMap::<u64, u64, ()>::new(MapConfig::default());
//! let listener = ws::WsListener::bind("127.0.0.1:0", map.config().max_frame).await.unwrap();
//! let url = join_url(&listener.url(), &map.config().token); // what remote workers use
//! map.serve(listener);
//! map.local_workers(2, false, |x: u64| async move { Ok::<_, String>(x * x) });
//!
//! let remote = tokio::spawn(async move {
//!     // It may arrive after the local workers did everything: then it is turned away.
//!     let session = Worker::new("laptop").connect(&url).await?;
//!     session.run(|x: u64| async move { Ok::<_, String>(x * x) }).await
//! });
//! let squares = pull!(count(1000), map.clone(), collect::<Vec<_>>()).await.unwrap();
//! assert_eq!(squares, (1..=1000).map(|x| x * x).collect::<Vec<_>>());
//! let _ = remote.await;
//! println!("{}", map.stats());
//! # }
//! ```

#![forbid(unsafe_code)]

mod accept;
pub mod codec;
mod config;
mod connection;
mod error;
pub mod frame;
mod io;
pub mod join;
mod local;
mod master;
pub mod session;
mod stats;
mod throttle;
pub mod transport;
mod worker;

pub use config::{ConfigError, MAX_REPLICAS, MapConfig, default_workers};
pub use error::{JoinError, WorkerError};
pub use frame::CommandMode;
pub use join::{generate_token, join_url, split_join_url};
pub use master::DistributedMap;
pub use pando_lend_stream::PoisonPolicy;
pub use stats::{MapStats, ReplicaWait, WorkerReport};
pub use throttle::Throttle;
pub use worker::{Backoff, Reconnect, Session, Worker, WorkerSummary};
