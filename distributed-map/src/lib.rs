//! # pando-distributed-map
//!
//! DistributedMap (seed 000, §4.5, Abstraction 3): map a function over a
//! stream with the devices that join. This crate is being built in layers;
//! this release has the transport layer:
//!
//! * [`frame`]: the wire protocol's frames (versioned handshake, values,
//!   results, failures, done, error, heartbeats), encoded with postcard, with
//!   a maximum frame size (see `docs/PROTOCOL.md`);
//! * [`transport`]: a small transport trait ([`transport::Listener`],
//!   [`transport::Connector`]) with in-process, WebSocket and TCP
//!   implementations. The framing is the transport's, the codec is
//!   [`frame`]'s; the lender never sees bytes.
//!
//! ```
//! use futures::{SinkExt, StreamExt};
//! use pando_distributed_map::frame::{Frame, DEFAULT_MAX_FRAME, PROTOCOL_VERSION};
//! use pando_distributed_map::transport::{Connector, Listener, ws};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let mut master = ws::WsListener::bind("127.0.0.1:0", DEFAULT_MAX_FRAME).await.unwrap();
//! let url = master.url();
//! let worker = tokio::spawn(async move {
//!     let mut c = ws::WsConnector::new(DEFAULT_MAX_FRAME).connect(&url).await.unwrap();
//!     let hello = Frame::Hello { version: PROTOCOL_VERSION, token: "t".into(), name: "w".into() };
//!     c.sink.send(hello.encode()).await.unwrap();
//! });
//! let mut c = master.accept().await.unwrap();
//! let first = c.stream.next().await.unwrap().unwrap();
//! assert!(matches!(Frame::decode(&first, DEFAULT_MAX_FRAME).unwrap(), Frame::Hello { .. }));
//! worker.await.unwrap();
//! # }
//! ```

#![warn(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    rust_2018_idioms
)]
#![forbid(unsafe_code)]

pub mod frame;
pub mod transport;
