//! A Limiter around a connection to a slow "worker", as DistributedMap uses
//! it: at most `limit` values are in flight on the connection, the limit is
//! raised while the stream runs, and the flow rate is observed from a
//! monitoring task.
//!
//! Run with `cargo run -p pando-limiter --example limited_worker`.

use std::time::Duration;

use pando_limiter::limit;
use pando_pull_stream::{Answer, SourceExt, async_map, count, duplex_pair, pull};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The worker squares each value after 20 ms of "computation".
    let (near, far) = duplex_pair::<u64, u64, String>(32);
    let worker = tokio::spawn(pull!(
        far.source,
        async_map(|x: u64| async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok(x * x)
        }),
        far.sink,
    ));

    let limited = limit(near, 1)?;
    let handle = limited.handle();
    let mut results = pull!(count(100), limited);

    let monitor = handle.clone();
    let mut got = Vec::new();
    loop {
        match results.ask().await {
            Answer::Value(v) => got.push(v),
            Answer::Done => break,
            Answer::Error(e) => return Err(e.into()),
        }
        if got.len() == 50 {
            // The worker is sequential: more values in flight only queue up,
            // but hide the connection's latency.
            handle.update_limit(4)?;
        }
        if got.len() % 25 == 0 {
            println!(
                "{:3} results, limit {}, {} in process, {:.1} results/s",
                monitor.results(),
                monitor.limit(),
                monitor.in_process(),
                monitor.flow_rate()
            );
        }
    }
    worker.await??;
    assert_eq!(got, (1..=100u64).map(|x| x * x).collect::<Vec<_>>());
    println!("all {} results in order", got.len());
    Ok(())
}
