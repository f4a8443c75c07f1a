//! Helpers shared by the map's integration tests.
#![allow(dead_code)]

use futures::{SinkExt, StreamExt};
use pando_distributed_map::codec::Codec;
use pando_distributed_map::frame::{Frame, PROTOCOL_VERSION};
use pando_distributed_map::transport::{Connection, Connector, Listener, ws};
use pando_distributed_map::{
    DistributedMap, JoinError, MapConfig, MapStats, Worker, WorkerReport, WorkerSummary, join_url,
    split_join_url,
};
use pando_lend_stream::LendError;
use pando_pull_stream::{collect, count, pull};

/// The frame limit the tests' raw clients accept.
pub(crate) const RAW_MAX: usize = 1 << 22;

/// The frame limit of the tests' masters.
pub(crate) const MAX: usize = 1 << 20;

/// A master with `config` on a loopback WebSocket listener, mapping
/// `count(n)`: the map, its join URL, and the output still to be pulled.
pub(crate) async fn ws_master(
    config: MapConfig,
    n: u64,
) -> (
    DistributedMap<u64, u64, ()>,
    String,
    impl std::future::Future<Output = Result<Vec<u64>, LendError<()>>>,
) {
    let map = DistributedMap::<u64, u64, ()>::new(config);
    let listener = ws::WsListener::bind("127.0.0.1:0", MAX).await.unwrap();
    let url = join_url(&listener.url(), &map.config().token);
    map.serve(listener);
    let output = pull!(count(n), map.clone(), collect::<Vec<_>>());
    (map, url, output)
}

/// A raw client that joins `url` as `name` over `connector` (the handshake
/// only), to play a misbehaving worker by hand: the connection and the
/// master's reply.
pub(crate) async fn raw_join(connector: &dyn Connector, url: &str, name: &str) -> (Connection, Frame) {
    let (base, token) = split_join_url(url);
    let mut raw = connector.connect(&base).await.unwrap();
    let hello = Frame::Hello {
        version: PROTOCOL_VERSION,
        token,
        name: name.into(),
    };
    raw.sink.send(Codec::Postcard.encode(&hello)).await.unwrap();
    let reply = Codec::Postcard
        .decode(&raw.stream.next().await.unwrap().unwrap(), RAW_MAX)
        .unwrap();
    (raw, reply)
}

/// A worker that joins `url` as `name` and squares what it gets.
pub(crate) fn spawn_squarer(
    url: String,
    name: &'static str,
) -> tokio::task::JoinHandle<Result<WorkerSummary, JoinError>> {
    tokio::spawn(async move {
        Worker::new(name)
            .connect(&url)
            .await?
            .run(|x: u64| async move { Ok::<_, String>(x * x) })
            .await
    })
}

/// 1², 2², …, n².
pub(crate) fn squares(n: u64) -> Vec<u64> {
    (1..=n).map(|x| x * x).collect()
}

/// The report of the worker named `name`.
pub(crate) fn report(stats: MapStats, name: &str) -> WorkerReport {
    stats
        .workers
        .into_iter()
        .find(|w| w.name == name)
        .unwrap_or_else(|| panic!("no worker named {name}"))
}

/// The ids of the values a frame from the master carries: one for a
/// `Value`, each of a `Values`, none for the others.
pub(crate) fn value_ids(frame: &Frame) -> Vec<u64> {
    match frame {
        Frame::Value { id, .. } => vec![*id],
        Frame::Values { values } => values.iter().map(|v| v.id).collect(),
        _ => vec![],
    }
}
