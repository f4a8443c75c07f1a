//! Errors of the master's output and of workers.

use thiserror::Error;

use crate::frame::FrameError;
use crate::transport::TransportError;

/// Why a worker's connection ended abnormally. Its values are lent to other
/// workers in every case; the master keeps serving the others.
#[derive(Debug, Error)]
pub enum WorkerError {
    /// The connection failed.
    #[error("worker {worker}: {source}")]
    Transport {
        /// The worker (its name and address).
        worker: String,
        /// The transport's error.
        #[source]
        source: TransportError,
    },
    /// The worker sent a frame that is not a frame of the protocol.
    #[error("worker {worker} sent a malformed frame: {source}")]
    Malformed {
        /// The worker.
        worker: String,
        /// The decoder's error.
        #[source]
        source: FrameError,
    },
    /// The worker sent a frame that is not allowed at this point.
    #[error("worker {worker} sent an unexpected {frame} frame")]
    Unexpected {
        /// The worker.
        worker: String,
        /// The frame's name.
        frame: &'static str,
    },
    /// The worker reported a failure for a value it does not hold.
    #[error("worker {worker} reported a failure for value #{id}, which it does not hold")]
    UnknownValue {
        /// The worker.
        worker: String,
        /// The id.
        id: u64,
    },
    /// Nothing was heard from the worker for too long.
    #[error("worker {worker} sent nothing for {after_ms} ms (heartbeat timeout)")]
    Timeout {
        /// The worker.
        worker: String,
        /// The timeout.
        after_ms: u64,
    },
    /// The worker closed the connection before saying it was done.
    #[error("worker {worker} disconnected")]
    Disconnected {
        /// The worker.
        worker: String,
    },
    /// The worker stopped with an error of its own.
    #[error("worker {worker} stopped: {message}")]
    Remote {
        /// The worker.
        worker: String,
        /// Its message.
        message: String,
    },
}

/// Why a worker could not join, or stopped, on the worker's side.
#[derive(Debug, Error)]
pub enum JoinError {
    /// The master could not be reached, or the connection failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The master refused the worker (wrong token, other protocol version).
    #[error("the master refused this worker: {0}")]
    Rejected(String),
    /// The master broke the protocol.
    #[error("the master broke the protocol: {0}")]
    Protocol(String),
    /// The master sent a value this worker cannot decode.
    #[error("the master sent a malformed frame: {0}")]
    Malformed(#[from] FrameError),
}
