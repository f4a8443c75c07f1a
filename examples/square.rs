//! The smallest distributed map: square the numbers 1 to N.
//!
//! ```text
//! cargo run --release --example square [-- N]        # master with 2 local workers over loopback WebSocket
//! cargo run --release --example square -- work URL   # join from another terminal or machine
//! ```

use std::process::ExitCode;

use pando_distributed_map::transport::{Listener, ws};
use pando_distributed_map::{DistributedMap, MapConfig, Worker, join_url};
use pando_pull_stream::{count, for_each, pull};

async fn square(x: u64) -> Result<u64, String> {
    x.checked_mul(x).ok_or_else(|| format!("{x} squared overflows"))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [work, url] = args.as_slice() {
        if work == "work" {
            return match Worker::new("square-worker").connect(url).await {
                Ok(session) => match session.run(square).await {
                    Ok(s) => {
                        eprintln!("square: squared {} numbers", s.done);
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("square: {e}");
                        ExitCode::FAILURE
                    }
                },
                Err(e) => {
                    eprintln!("square: cannot join {url}: {e}");
                    ExitCode::FAILURE
                }
            };
        }
    }
    let n: u64 = match args.first().map(|a| a.parse()) {
        None => 100,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            eprintln!("square: usage: square [N] | square work URL");
            return ExitCode::from(2);
        }
    };
    let map = DistributedMap::<u64, u64, String>::new(MapConfig::default());
    let listener = match ws::WsListener::bind("127.0.0.1:0", map.config().max_frame).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("square: {e}");
            return ExitCode::FAILURE;
        }
    };
    let url = join_url(&listener.url(), &map.config().token);
    eprintln!("square: join with: cargo run --release --example square -- work '{url}'");
    map.serve(listener);
    map.local_workers(2, false, square);
    let result = pull!(count(n), map.clone(), for_each(|x: u64| println!("{x}"))).await;
    map.finish(std::time::Duration::from_secs(5)).await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("square: {e}");
            ExitCode::FAILURE
        }
    }
}
