//! # pando-web
//!
//! Pando's HTTP face, on the master's one port: the volunteer page at `/`
//! (a browser tab becomes a worker), the monitoring page at `/monitor`, and
//! the WebSocket endpoints of native and browser workers.
//!
//! | path | what |
//! |---|---|
//! | `GET /?token=T` | the volunteer page; without the token, or with a wrong one, a page that says so |
//! | `GET /` with a WebSocket upgrade | native workers (`pando work`): postcard frames in binary messages |
//! | `GET /browser` with a WebSocket upgrade | browser workers: JSON frames in text messages |
//! | `GET /t/T/fn/FILE` | the user's JavaScript function file and the files beside it |
//! | `GET /volunteer.js`, `/volunteer-worker.js` | the page's own scripts |
//!
//! Both WebSocket endpoints hand their connections to the same
//! [`DistributedMap`](pando_distributed_map::DistributedMap), through
//! [`WebListener`], where the same session core
//! ([`MasterSession`](pando_distributed_map::session::MasterSession)) serves
//! them: the endpoint chooses the [`Codec`](pando_distributed_map::codec::Codec),
//! nothing else differs.
//!
//! ```
//! use pando_distributed_map::{DistributedMap, MapConfig, Worker, codec::Line, join_url};
//! use pando_pull_stream::{collect, pull, values};
//! use pando_web::Site;
//!
//! # #[tokio::main] async fn main() {
//! let map = DistributedMap::<Line, Line, ()>::new(MapConfig::default());
//! let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//! let url = format!("ws://{}/", tcp.local_addr().unwrap());
//! let (router, listener) = Site::new(&map.config().token, map.config().max_frame).build(&url);
//! map.serve(listener);
//! tokio::spawn(pando_web::serve(tcp, router));
//!
//! // A native worker joins through the same port as the browsers.
//! let joined = join_url(&url, &map.config().token);
//! tokio::spawn(async move {
//!     let session = Worker::new("native").connect(&joined).await?;
//!     session.run(|x: Vec<u8>| async move { Ok::<_, String>([x.clone(), x].concat()) }).await
//! });
//! let input = values(vec![Line(b"ab".to_vec()), Line(b"c".to_vec())]);
//! let out = pull!(input, map.clone(), collect::<Vec<_>>()).await.unwrap();
//! assert_eq!(out, [Line(b"abab".to_vec()), Line(b"cc".to_vec())]);
//! # }
//! ```

#![forbid(unsafe_code)]

mod files;
mod listener;
pub mod monitor;
mod page;
mod serve;
mod site;
mod socket;
mod throttle;

pub use files::FunctionError;
pub use listener::WebListener;
pub use serve::{ServeConfig, serve, serve_with};
pub use site::Site;
