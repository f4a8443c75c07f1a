//! The accept loop: every connection gets a task of its own at once, with a
//! deadline for its handshake (the WebSocket upgrade included), within the
//! connection limits; then the master's adapter serves it.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

use pando_limiter::limit;
use pando_pull_stream::{Duplex, pull};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::connection::{Conn, FromWorker, RejectFailures, ToWorker, Work, lock, poll_drive};
use crate::io::{FrameIo, now};
use crate::master::DistributedMap;
use crate::session::{MasterSession, at};
use crate::stats::WorkerStats;
use crate::transport::{Incoming, Listener, TransportError};

/// Counts one connection (pending or connected) until dropped.
struct Counted(Arc<AtomicUsize>);

impl Counted {
    /// Counts one more, unless `limit` are counted already.
    fn try_new(counter: &Arc<AtomicUsize>, limit: usize) -> Option<Counted> {
        counter
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()
            .map(|_| Counted(counter.clone()))
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl<In, Out, E> DistributedMap<In, Out, E>
where
    In: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    Out: Serialize + DeserializeOwned + Send + 'static,
    E: Clone + Send + 'static,
{
    pub(crate) fn serve_as<L: Listener>(&self, mut listener: L, remote: bool) -> tokio::task::JoinHandle<()> {
        let map = self.clone();
        tokio::spawn(async move {
            let settled = map.lender.settled();
            tokio::pin!(settled);
            let pending = Arc::new(AtomicUsize::new(0));
            let mut backoff = Duration::from_millis(10);
            loop {
                let incoming = tokio::select! {
                    _ = &mut settled => break,
                    c = listener.accept() => c,
                };
                match incoming {
                    Ok(incoming) => {
                        backoff = Duration::from_millis(10);
                        let accepted_at = now();
                        let Some(counted) = Counted::try_new(&pending, map.config.max_pending) else {
                            tracing::warn!(
                                "connection from {} closed at once: {} connections are already in their handshake (max_pending)",
                                incoming.peer(),
                                map.config.max_pending
                            );
                            continue;
                        };
                        let served = map.clone();
                        let task = tokio::spawn(async move {
                            served
                                .serve_connection(incoming, accepted_at, counted, remote)
                                .await;
                        });
                        let mut connections = map.connections.lock().unwrap_or_else(|p| p.into_inner());
                        connections.retain(|t| !t.is_finished());
                        connections.push(task);
                    }
                    Err(TransportError::Closed { .. }) => break,
                    Err(e) => {
                        // Out of file descriptors, for example: wait a little, go on.
                        tracing::error!(
                            "cannot accept a worker on {}: {e}; retrying in {backoff:?}",
                            listener.url()
                        );
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(1));
                    }
                }
            }
        })
    }

    async fn serve_connection(
        self,
        mut incoming: Incoming,
        accepted_at: Instant,
        pending: Counted,
        remote: bool,
    ) {
        let config = self.config.clone();
        let peer = incoming.peer().to_string();
        let codec = incoming.codec();
        // A paused connection hears the end once nothing is left to lend
        // (the watcher stops with the connection: `_watching` is dropped).
        let (_watching, connection_gone) = tokio::sync::oneshot::channel::<()>();
        let throttle = match incoming.take_throttle() {
            Some(t) => {
                let (settled, ended) = (self.lender.settled(), t.clone());
                tokio::spawn(async move {
                    tokio::select! {
                        () = settled => ended.end(),
                        _ = connection_gone => {}
                    }
                });
                t
            }
            None => crate::Throttle::default(),
        };
        let deadline = tokio::time::Instant::from_std(at(accepted_at, config.heartbeat_timeout));
        let connection = match tokio::time::timeout_at(deadline, incoming.upgrade()).await {
            Ok(Ok(connection)) => connection,
            Ok(Err(e)) => {
                tracing::warn!("connection from {peer} failed before its handshake: {e}");
                return;
            }
            Err(_) => {
                tracing::warn!(
                    "connection from {peer} closed: no handshake within {:?}",
                    config.heartbeat_timeout
                );
                return;
            }
        };
        let mut io = FrameIo::new(connection, codec, config.max_frame);
        let conn = Arc::new(std::sync::Mutex::new(Conn::<Out>::new(
            MasterSession::new(config.clone(), accepted_at),
            &peer,
        )));

        // The handshake.
        let mut slot = None;
        let mut admit = |_: &str| match Counted::try_new(&self.workers, config.max_workers) {
            Some(counted) => {
                slot = Some(counted);
                Ok(())
            }
            None => Err(format!("the master is full ({} workers)", config.max_workers)),
        };
        std::future::poll_fn(|cx| poll_drive(&conn, &mut io, &mut admit, true, cx)).await;
        drop(pending);
        let (joined, worker, name) = {
            let c = lock(&conn);
            (c.session.is_running(), c.worker.clone(), c.name.clone())
        };
        if !joined {
            let c = lock(&conn);
            match c.ended() {
                Some(Err(reason)) => {
                    tracing::warn!("worker {worker} {reason}")
                }
                _ => tracing::warn!("worker {worker} left during its handshake"),
            }
            return;
        }
        let _slot = slot;
        if remote {
            self.remote_joined.cancel();
        }
        let stats = Arc::new(WorkerStats::new(name, peer));
        self.registry.add(stats.clone());

        let sub = self.lender.lend_stream::<crate::WorkerError>();
        sub.source
            .rejecter()
            .count_disagreements(stats.disagreements.clone());
        let reclaimer = sub.source.rejecter();
        let ender = sub.source.rejecter();
        lock(&conn).attach(
            stats.clone(),
            move |id, reason| {
                reclaimer.reclaim(id, reason);
            },
            move |reason| ender.set_end_reason(reason),
        );
        let rejections = RejectFailures {
            rejecter: sub.source.rejecter(),
            worker: worker.clone(),
        };
        let from = FromWorker::<Out> {
            conn: conn.clone(),
            termination: None,
        };
        let to = ToWorker::<In, Out> {
            conn: conn.clone(),
            codec: io.codec(),
            _in: std::marker::PhantomData,
        };
        let limited = limit(Duplex::new(from, to), config.batch_size.get()).expect("batch_size is nonzero");
        throttle.attach(limited.handle(), config.batch_size.get());
        let _ = stats.limit.set(limited.handle());
        let pipeline = pull!(sub.source, throttle.gate(), limited, rejections, sub.sink);
        let mut never = |_: &str| Err("already joined".to_string());
        // The pipeline (the lender's side) and the driver (the session's I/O)
        // run in this one task, and go round again while either changed
        // something for the other: no wake-up between them, no extra task poll.
        let mut pipeline = std::pin::pin!(pipeline);
        let mut result = None;
        let mut driven = false;
        std::future::poll_fn(|cx| {
            // Woken from outside (the lender, the socket, a timer): both parts
            // look; then only the part the other one changed something for.
            let mut work = Work {
                pipeline: true,
                driver: true,
            };
            for _ in 0..64 {
                if work.pipeline && result.is_none() {
                    if let Poll::Ready(r) = pipeline.as_mut().poll(cx) {
                        result = Some(r);
                    }
                }
                if work.driver && !driven {
                    driven = poll_drive(&conn, &mut io, &mut never, false, cx).is_ready();
                }
                if result.is_some() && driven {
                    return Poll::Ready(());
                }
                work = lock(&conn).take_work();
                if !work.pipeline && !work.driver {
                    return Poll::Pending;
                }
            }
            // Busy: let the other tasks have a turn.
            cx.waker().wake_by_ref();
            Poll::Pending
        })
        .await;
        let result = result.expect("the pipeline finished");
        stats.disconnected();
        let ended = lock(&conn).ended().cloned();
        match (ended, result) {
            (Some(Err(reason)), _) => {
                // After the run ended (done, or stopped by a poisoned value),
                // nothing is lent again: say only why the worker went.
                let s = self.lender.state();
                if s.input_ended && s.in_flight == 0 {
                    tracing::warn!("worker {worker} dropped: it {reason}")
                } else {
                    tracing::warn!("worker {worker} dropped: it {reason}; its values are lent again")
                }
            }
            (_, Err(e)) => tracing::warn!("worker {worker} dropped: {e}"),
            _ => match stats.disagreements.load(std::sync::atomic::Ordering::Relaxed) {
                0 => tracing::info!("worker {worker} finished"),
                n => {
                    tracing::warn!("worker {worker} finished; {n} of its answers were outvoted (--replicas)")
                }
            },
        }
    }
}
