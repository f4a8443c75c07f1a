//! # pando-web
//!
//! Pando's HTTP face, on the master's port: the volunteer page at `/`
//! (a browser tab becomes a worker), the monitoring page at `/monitor`, and
//! the WebSocket endpoints of native and browser workers.

#![forbid(unsafe_code)]

pub mod monitor;
