//! Stubborn processing of the Pando dissertation's image-processing example
//! (seed 000, §5.3): workers compute results, but a result is usable only if
//! its download succeeds; failed downloads send the input back for
//! recomputation, and the outputs still come in input order.
//!
//! Run with `cargo run -p pando-stubborn --example flaky_downloads`.

use std::time::Duration;

use pando_pull_stream::{SourceExt, async_map, pull, values};
use pando_stubborn::{StubbornError, Tagged, Verdict, stubborn};

#[derive(Debug, thiserror::Error)]
enum JobError {
    #[error(transparent)]
    Stubborn(#[from] StubbornError),
}

/// A tiny deterministic PRNG (SplitMix64) standing in for the network.
fn coin(seed: u64) -> bool {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) % 2 == 0
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), JobError> {
    let images = ["alps.png", "coast.png", "delta.png", "forest.png", "glacier.png"];

    // The "workers": blur an image and publish the result under a URL.
    let workers = async_map(|job: Tagged<&'static str>| async move {
        tokio::time::sleep(Duration::from_millis(5)).await;
        Ok::<_, JobError>(job.map(|name| format!("dat://results/{name}.blurred")))
    });

    // The tester: download the result; half of the downloads fail.
    let download = |input: &'static str, url: String| async move {
        tokio::time::sleep(Duration::from_millis(2)).await;
        if coin(next_download()) {
            println!("  downloaded {url}");
            Verdict::Accept(url)
        } else {
            println!("  download of {url} failed: resubmitting {input}");
            Verdict::Resubmit(input)
        }
    };

    let module = stubborn(workers, download);
    let stats = module.handle();
    let results: Vec<String> = pull!(values(images), module).collect().await?;
    for r in &results {
        println!("{r}");
    }
    let s = stats.stats();
    println!(
        "{} outputs, {} submissions, {} resubmissions, {} stale results dropped",
        s.output, s.submissions, s.resubmissions, s.stale
    );
    Ok(())
}

/// The number of the download, so that a resubmitted download may succeed.
fn next_download() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static CALLS: AtomicU64 = AtomicU64::new(0);
    CALLS.fetch_add(1, Ordering::Relaxed)
}
