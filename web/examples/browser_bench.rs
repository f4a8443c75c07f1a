//! Items per second of browser tabs (headless chromium) and of native
//! workers on a trivial function (squaring the input line), in the same run
//! and through the same port: 1, 2 and 4 of each.
//!
//! ```text
//! cargo run --release -p pando-web --example browser_bench [-- ITEMS]
//! ```
//!
//! It needs chromium and chromedriver on the `PATH` (or `PANDO_CHROMIUM`
//! and `PANDO_CHROMEDRIVER`), and says so otherwise. The browser and
//! the master share the machine's cores, as they would on one laptop;
//! compare only figures of the same run.

use std::time::{Duration, Instant};

use futures::StreamExt;
use pando_distributed_map::codec::Line;
use pando_distributed_map::{MapConfig, Worker};
use pando_pull_stream::{for_each, from_try_stream, pull};
use tokio::sync::oneshot;

#[path = "../tests/support/mod.rs"]
mod support;
use support::{Browser, Master, tools, within};

const SQUARE: &str = "export default (x) => Number(x) * Number(x);";
const BATCH: usize = 16;

async fn master() -> Master {
    let config = MapConfig {
        batch_size: std::num::NonZeroUsize::new(BATCH).unwrap(),
        ..MapConfig::default()
    };
    Master::start(config, SQUARE, &[]).await
}

/// Runs `items` values once the gate opens; the time from then to the last result.
async fn timed(master: &Master, items: u64, gate: oneshot::Receiver<()>) -> Duration {
    let (started_tx, started) = oneshot::channel();
    let input = futures::stream::once(async move {
        let _ = gate.await;
        let _ = started_tx.send(Instant::now());
    })
    .flat_map(move |()| futures::stream::iter((1..=items).map(|x| Ok(Line(x.to_string().into_bytes())))));
    let mut count = 0u64;
    let mut last = String::new();
    pull!(
        from_try_stream(input),
        master.map.clone(),
        for_each(|line: Line| {
            count += 1;
            last = String::from_utf8(line.0).unwrap();
        })
    )
    .await
    .expect("the run succeeds");
    let end = Instant::now();
    assert_eq!(count, items);
    assert_eq!(last, (items * items).to_string());
    end - started.await.expect("the gate opened")
}

async fn browser_run(browser: &Browser, tabs: usize, items: u64) -> Duration {
    let master = master().await;
    let home = browser.client.window().await.unwrap();
    let mut opened = Vec::new();
    for _ in 0..tabs {
        opened.push(browser.open_tab(&master.page).await);
        browser.wait_status("working").await;
    }
    let (open, gate) = oneshot::channel();
    let run = timed(&master, items, gate);
    let _ = open.send(());
    let took = within(600, "the browser run", run).await;
    for tab in opened {
        browser.client.switch_to_window(tab).await.unwrap();
        browser.client.close_window().await.unwrap();
    }
    browser.client.switch_to_window(home).await.unwrap();
    master.map.finish(Duration::from_secs(5)).await;
    took
}

async fn native_run(workers: usize, items: u64) -> Duration {
    let master = master().await;
    let (joined_tx, mut joined) = tokio::sync::mpsc::unbounded_channel();
    for i in 0..workers {
        let url = master.native.clone();
        let joined_tx = joined_tx.clone();
        tokio::spawn(async move {
            let session = Worker::new(format!("native-{i}")).connect(&url).await?;
            let _ = joined_tx.send(());
            session
                .jobs(BATCH)
                .run(|x: Vec<u8>| async move {
                    let x: u64 = std::str::from_utf8(&x)
                        .map_err(|e| e.to_string())?
                        .parse()
                        .map_err(|e: std::num::ParseIntError| e.to_string())?;
                    Ok::<_, String>((x * x).to_string().into_bytes())
                })
                .await
        });
    }
    // Every worker joined before the values flow.
    within(30, "every native worker to join", async {
        for _ in 0..workers {
            joined.recv().await.expect("a worker joined");
        }
    })
    .await;
    let (open, gate) = oneshot::channel();
    let run = timed(&master, items, gate);
    let _ = open.send(());
    let took = within(600, "the native run", run).await;
    master.map.finish(Duration::from_secs(5)).await;
    took
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let items: u64 = std::env::args()
        .nth(1)
        .map_or(20_000, |n| n.parse().expect("ITEMS is a number"));
    let Some(tools) = tools() else {
        return;
    };
    let browser = Browser::start(&tools).await;
    let web_workers = browser
        .client
        .execute(
            "return Math.max(1, (navigator.hardwareConcurrency || 2) - 1)",
            vec![],
        )
        .await
        .unwrap();
    println!(
        "{items} items, trivial function (square the line), batch size {BATCH}, {} core(s), {web_workers} Web Worker(s) per tab",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("| workers | browser tabs items/s | native workers items/s |");
    println!("|---:|---:|---:|");
    for n in [1usize, 2, 4] {
        let tabs = browser_run(&browser, n, items).await;
        let native = native_run(n, items).await;
        let rate = |d: Duration| items as f64 / d.as_secs_f64();
        println!("| {n} | {:.0} | {:.0} |", rate(tabs), rate(native));
    }
    browser.end().await;
}
