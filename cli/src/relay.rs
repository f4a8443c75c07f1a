//! `pando relay`: Genet's bootstrap/relay server (root registration with a
//! secret, relaying of join requests and replies; see docs/PROTOCOL.md,
//! "Genet over WebSocket"), until SIGINT or SIGTERM.

use std::io::Write;
use std::process::ExitCode;

use clap::Args;
use pando_distributed_map::{generate_token, join_url};
use pando_genet::ws::{Relay, RelayConfig};

/// `pando relay`'s options.
#[derive(Args, Debug)]
pub(crate) struct RelayArgs {
    /// The address to listen on.
    #[arg(long, default_value = "0.0.0.0", value_name = "ADDR")]
    bind: String,
    /// The port to listen on (0: any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// The secret that lets a node become the root (default: a fresh random secret).
    #[arg(long)]
    secret: Option<String>,
    /// The join token that lets a node join (default: a fresh random token).
    #[arg(long)]
    token: Option<String>,
}

/// Runs the relay; prints its join URL and the root secret on stdout, one
/// line each, then serves until a signal.
pub(crate) async fn relay(args: RelayArgs) -> ExitCode {
    let secret = args.secret.unwrap_or_else(generate_token);
    let token = args.token.unwrap_or_else(generate_token);
    let addr = format!("{}:{}", args.bind, args.port);
    let relay = match Relay::bind(&addr, RelayConfig::new(&secret, &token)).await {
        Ok(r) => r,
        Err(e) => return crate::fail(format!("cannot start the relay on {addr}: {e}")),
    };
    let mut out = std::io::stdout().lock();
    let printed = writeln!(out, "relay: {}", join_url(relay.url(), &token))
        .and_then(|()| writeln!(out, "root secret: {secret}"))
        .and_then(|()| out.flush());
    drop(out);
    if let Err(e) = printed {
        return crate::fail(format!("cannot write the relay's URL: {e}"));
    }
    tracing::info!("Genet relay listening on {}", relay.url());
    let code = crate::shutdown_signal().await;
    drop(relay);
    code
}
