//! Local workers: workers in the master's own process, over the in-process
//! transport, with the same protocol as remote ones.

use std::future::Future;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::join::join_url;
use crate::master::DistributedMap;
use crate::transport::memory;
use crate::worker::Worker;

impl<In, Out, E> DistributedMap<In, Out, E>
where
    In: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    Out: Serialize + DeserializeOwned + Send + 'static,
    E: Clone + Send + 'static,
{
    /// Runs `n` workers in this process (over the in-process transport, with
    /// the same handshake and heartbeats as remote ones), applying `f`. With
    /// `start_idle`, they only start once the first remote worker has joined.
    ///
    /// See the [crate documentation](crate) for an example.
    pub fn local_workers<F, Fut, Err>(&self, n: usize, start_idle: bool, f: F)
    where
        F: Fn(In) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<Out, Err>> + Send + 'static,
        Err: std::fmt::Display + Send + 'static,
    {
        if n == 0 {
            return;
        }
        let (listener, connector) = memory::endpoint("local");
        self.serve_as(listener, false);
        let url = join_url("memory://local", &self.config.token);
        for i in 0..n {
            let connector = connector.clone();
            let url = url.clone();
            let f = f.clone();
            let map = self.clone();
            let max_frame = self.config.max_frame;
            tokio::spawn(async move {
                if start_idle {
                    map.remote_worker_joined().await;
                }
                let worker = Worker::new(format!("local-{i}")).max_frame(max_frame);
                if let Err(e) = worker.run_with(&connector, &url, f).await {
                    tracing::warn!("local worker {i} stopped: {e}");
                }
            });
        }
    }
}
